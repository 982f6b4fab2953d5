/**
 * The same governance applied to an agent framework: LangChain.js. `ChatBedrockConverse` takes the
 * Bedrock Runtime client it should use, so the application builds one, governs it with
 * `withGovernance(client, governance, { identity })`, and hands it over; the LangChain tools'
 * functions are wrapped with `governTool`. The framework code is unchanged: LangChain builds the
 * Converse requests, the governance decides them, filters their tools, decides every tool call the
 * model asks for, and decides each execution again with the input actually run.
 *
 *   npx tsx examples/langchain-agent.ts
 *       on the embedded local Bedrock endpoint, with the scripted model of examples/agent-loop.ts
 *       (it asks for lookup_invoice, allowed, and a refund of 5000, denied; then answers)
 *   BEDROCK_WARDEN_TARGET=aws npx tsx examples/langchain-agent.ts
 *       on real Amazon Bedrock (your AWS credentials, AWS_REGION; billed; Claude 3.5 Haiku through the
 *       us. inference profile must be enabled): a real model chooses its own tools and turns
 *
 * Needs the dev dependencies @langchain/aws and @langchain/core (in package.json).
 */
import { fileURLToPath } from "node:url";
import { BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime";
import { ChatBedrockConverse } from "@langchain/aws";
import { HumanMessage, SystemMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { tool, type StructuredToolInterface } from "@langchain/core/tools";
import {
  AccessDeniedError,
  createGovernance,
  governTool,
  policiesFromDirectory,
  WARDEN,
  withCallScope,
  withGovernance,
  type DecisionRecord,
  type WorkloadIdentity,
} from "bedrock-warden";
import { z } from "zod";
import { bedrockTarget } from "./support/bedrock-target.js";
import { billing, deleteCustomer, DESCRIPTIONS, INVOICE_TOOLS, issueRefund, lookupInvoice } from "./support/invoice-tools.js";
import { scriptedInvoiceModel } from "./support/scripted-invoice-model.js";
import { startMemoryTracing } from "./support/memory-tracing.js";
import { formatTraceTree } from "./support/trace-tree.js";

process.removeAllListeners("warning"); // the SDK's notice about Node 20 support is not part of the example

// Spans go to memory, to be printed as a tree at the end.
const { exporter, provider, tracer } = startMemoryTracing("bedrock-warden-langchain");

const MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
const MAX_TURNS = 6;
const invoiceAgent: WorkloadIdentity = { id: "spiffe://acme.example/agents/invoice", groups: ["billing"], owner: "team-billing" };

const target = await bedrockTarget(scriptedInvoiceModel);
const records: DecisionRecord[] = [];
const governance = createGovernance({
  environment: "production",
  policies: policiesFromDirectory(fileURLToPath(new URL("./policies", import.meta.url))),
  tools: INVOICE_TOOLS,
  toolEnforcement: "result", // the model call returns; the denied call is stopped when it would run
  onDecision: (r) => records.push(r),
});

// 1. The client LangChain will use: built by the application, governed, with the agent's identity.
const client = withGovernance(new BedrockRuntimeClient(target.clientConfig), governance, { identity: invoiceAgent });
const llm = new ChatBedrockConverse({ model: MODEL, client, region: target.clientConfig.region, maxTokens: 1024 });

// 2. LangChain tools whose functions are governed executors. LangChain passes the model's tool call
//    (its id is Bedrock's toolUseId) in the config: governTool links its span to the chat span that asked.
const governed = {
  lookup_invoice: governTool({ name: "lookup_invoice" }, lookupInvoice, { governance, identity: invoiceAgent }),
  issue_refund: governTool({ name: "issue_refund" }, issueRefund, { governance, identity: invoiceAgent }),
  delete_customer: governTool({ name: "delete_customer" }, deleteCustomer, { governance, identity: invoiceAgent }),
};
const tools = [
  tool(async (input, config) => JSON.stringify(await governed.lookup_invoice(input, { toolUseId: config.toolCall?.id })), {
    name: "lookup_invoice",
    description: DESCRIPTIONS["lookup_invoice"],
    schema: z.object({ invoiceId: z.string().describe("The invoice number, e.g. INV-4711") }),
  }),
  tool(async (input, config) => JSON.stringify(await governed.issue_refund(input, { toolUseId: config.toolCall?.id })), {
    name: "issue_refund",
    description: DESCRIPTIONS["issue_refund"],
    schema: z.object({ invoiceId: z.string(), amount: z.number().describe("The amount to refund") }),
  }),
  tool(async (input, config) => JSON.stringify(await governed.delete_customer(input, { toolUseId: config.toolCall?.id })), {
    name: "delete_customer",
    description: DESCRIPTIONS["delete_customer"],
    schema: z.object({ customerId: z.string() }),
  }),
];
const toolsByName = new Map<string, StructuredToolInterface>(tools.map((t) => [t.name, t]));
const llmWithTools = llm.bindTools(tools);

const short = (value: unknown) => {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 110 ? `${json.slice(0, 107)}...` : json;
};
const by = (r: DecisionRecord | undefined) => (r ? `${r.decision.toUpperCase()} by ${r.policies.length ? r.policies.join(", ") : "default"}: ${r.reasons.join("; ")}` : "no decision");

console.log(`bedrock-warden × LangChain.js — ChatBedrockConverse on a governed client; calls go to ${target.description}`);
console.log(`LangChain tools bound: ${tools.map((t) => t.name).join(", ")} (each function wrapped with governTool)\n`);

const purpose = "resolve a duplicate payment";
const question = "Invoice INV-4711 was paid twice. Look it up and refund the duplicate payment.";
console.log(`▶ ${invoiceAgent.id} (the client's identity) — purpose: "${purpose}"`);
console.log(`  user: ${question}\n`);

await tracer.startActiveSpan(`task ${purpose}`, async (taskSpan) => {
  // No runAs: the governed client and the governed tools carry the identity; the task adds its purpose.
  await withCallScope({ purpose }, () => agentLoop(question));
  taskSpan.end();
});

async function agentLoop(userText: string): Promise<void> {
  const messages: BaseMessage[] = [
    new SystemMessage("You are the invoice agent of ACME's billing team. Use the tools; never invent invoice data."),
    new HumanMessage(userText),
  ];
  for (let turn = 1; turn <= MAX_TURNS; turn++) {
    const ai = await llmWithTools.invoke(messages);
    messages.push(ai);
    const chat = exporter.getFinishedSpans().findLast((s) => s.name.startsWith("chat "));
    console.log(`  turn ${turn} — ChatBedrockConverse.invoke → Converse ${MODEL}: ${by(records.findLast((r) => r.command === "ConverseCommand"))}`);
    const withheld = chat?.attributes[WARDEN.TOOLS_WITHHELD] as string[] | undefined;
    if (withheld?.length) {
      console.log(`    LangChain offered ${tools.length} tools; the model sees ${(chat?.attributes[WARDEN.TOOLS_OFFERED] as string[]).join(", ")} (withheld: ${withheld.join(", ")})`);
    }
    const text = typeof ai.content === "string" ? ai.content : ai.content.flatMap((b) => (b.type === "text" && typeof b["text"] === "string" ? [b["text"]] : [])).join(" ");
    if (!ai.tool_calls?.length) {
      console.log(`    final answer: "${text}"\n`);
      return;
    }
    if (text) console.log(`    model: "${text}"`);
    for (const call of ai.tool_calls) {
      // The decision made when the response arrived (phase "call"): LangChain returns an AIMessage,
      // not the SDK output, so it is read from the decision records (toolDecisions(output) is not reachable).
      const asked = records.findLast((r) => r.tool?.phase === "call" && r.tool.toolUseId === call.id);
      console.log(`    model asked for ${call.name} ${short(call.args)} (${call.id})\n      → ${by(asked)}`);
      const lcTool = toolsByName.get(call.name);
      try {
        if (!lcTool) throw new Error(`unknown tool ${call.name}`);
        const result = (await lcTool.invoke({ ...call, type: "tool_call" })) as ToolMessage;
        messages.push(result);
        const ran = records.findLast((r) => r.tool?.phase === "execute" && r.tool.toolUseId === call.id);
        console.log(`    ran ${call.name} (execute: ${by(ran)}) → ${typeof result.content === "string" ? short(JSON.parse(result.content)) : short(result.content)}`);
      } catch (error) {
        // Refused by the governed function (the executor never ran), or the tool failed: the model is told.
        // (LangChain's Bedrock converter drops ToolMessage.status: the toolResult reaches Bedrock without
        // status "error", so the text must say it.)
        const content =
          error instanceof AccessDeniedError ? `Denied by policy: ${error.decision.reasons.join("; ")}. Do not retry this call.` : `The tool failed: ${String(error)}`;
        messages.push(new ToolMessage({ tool_call_id: call.id ?? "", content, status: "error" }));
        const what = error instanceof AccessDeniedError ? `not run: ${call.name} — ${error.code}` : `${call.name} failed`;
        console.log(`    ${what}; the model is told: "${content}"`);
      }
    }
    console.log();
  }
  console.log(`  stopped after ${MAX_TURNS} turns\n`);
}

const tools_ = records.filter((r) => r.tool);
console.log(`Billing system: ${billing.refunds.length} refunds issued, ${billing.deletedCustomers.length} customers deleted.`);
console.log(
  `${records.length} decisions: ${records.length - tools_.length} model calls, ${tools_.filter((r) => r.tool?.phase === "call").length} tool calls the model asked for, ` +
    `${tools_.filter((r) => r.tool?.phase === "execute").length} tool executions decided; ${records.filter((r) => r.decision === "deny").length} denied.`,
);
if (target.local) {
  const sent = target.local.requests.map((r) => (r.body as { toolConfig?: { tools?: { toolSpec?: { name?: string } }[] } }).toolConfig?.tools?.map((t) => t.toolSpec?.name));
  console.log(`The endpoint received ${sent.length} requests, each offering only: ${[...new Set(sent.map((names) => names?.join(", ")))].join(" | ")}.`);
}
console.log("\nTrace tree:\n");
console.log(formatTraceTree(exporter.getFinishedSpans()));

client.destroy();
await target.close();
await provider.shutdown();
