/**
 * A complete agent loop on the raw AWS SDK, governed: the invoice agent offers the model three
 * tools, the model asks for some, each tool call is decided with the model's input, the allowed
 * ones run through `governTool` executors (decided again, with the input actually run), the
 * denials go back to the model as error `toolResult`s, and the model answers in text.
 *
 *   npx tsx examples/agent-loop.ts
 *       on the embedded local Bedrock endpoint, with a scripted model (examples/support/scripted-invoice-model.ts)
 *       that asks for lookup_invoice (allowed) and a refund of 5000 (denied), then answers
 *   BEDROCK_WARDEN_TARGET=aws npx tsx examples/agent-loop.ts
 *       on real Amazon Bedrock (your AWS credentials, AWS_REGION; billed; Claude 3.5 Haiku through the
 *       us. inference profile must be enabled in the account): a real model chooses its own tools, so
 *       the turns differ from run to run — the loop and the governance are the same
 *
 * Policies: examples/policies (billing may run read tools and issue refunds; no refund over 100;
 * nobody may delete customers). Tools: examples/support/invoice-tools.ts.
 */
import { fileURLToPath } from "node:url";
import { ConverseCommand, type ContentBlock, type Message, type ToolResultContentBlock } from "@aws-sdk/client-bedrock-runtime";
import type { DocumentType } from "@smithy/types";
import {
  AccessDeniedError,
  createGovernance,
  deniedToolResults,
  governTool,
  GovernedBedrockRuntimeClient,
  policiesFromDirectory,
  runAs,
  toolDecisions,
  WARDEN,
  type DecisionRecord,
  type Decision,
  type GovernedTool,
  type ToolCallDecision,
  type WorkloadIdentity,
} from "bedrock-warden";
import { bedrockTarget } from "./support/bedrock-target.js";
import { billing, converseTools, deleteCustomer, INVOICE_TOOLS, issueRefund, lookupInvoice } from "./support/invoice-tools.js";
import { scriptedInvoiceModel } from "./support/scripted-invoice-model.js";
import { startMemoryTracing } from "./support/memory-tracing.js";
import { formatTraceTree } from "./support/trace-tree.js";

process.removeAllListeners("warning"); // the SDK's notice about Node 20 support is not part of the example

// Spans go to memory, to be printed as a tree at the end.
const { exporter, provider, tracer } = startMemoryTracing("bedrock-warden-agent-loop");

const MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
const MAX_TURNS = 6;
const invoiceAgent: WorkloadIdentity = { id: "spiffe://acme.example/agents/invoice", groups: ["billing"], owner: "team-billing" };

const target = await bedrockTarget(scriptedInvoiceModel);
const policyDir = fileURLToPath(new URL("./policies", import.meta.url));
const records: DecisionRecord[] = [];
const governance = createGovernance({
  environment: "production",
  policies: policiesFromDirectory(policyDir),
  tools: INVOICE_TOOLS,
  toolEnforcement: "result", // a denied tool call becomes an error toolResult for the model, not an exception
  onDecision: (r) => records.push(r),
});
const bedrock = new GovernedBedrockRuntimeClient({ ...target.clientConfig, governance });

// The executors, governed: each execution is decided with the input actually run, in an
// execute_tool span linked to the chat span that asked for it. A denied execution never runs.
// (The inputs are typed `any`: the model wrote them; the governance checked them against the schemas.)
const executors: Record<string, GovernedTool<any, unknown>> = {
  lookup_invoice: governTool({ name: "lookup_invoice" }, lookupInvoice, { governance }),
  issue_refund: governTool({ name: "issue_refund" }, issueRefund, { governance }),
  delete_customer: governTool({ name: "delete_customer" }, deleteCustomer, { governance }),
};

const by = (d: Decision) => `${d.policies.length ? d.policies.join(", ") : "default"}: ${d.reasons.join("; ")}`;
const verdict = (d: Decision) => `${d.effect === "allow" ? "✔ ALLOW" : "✘ DENY "} by ${by(d)}`;
const short = (value: unknown) => {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 110 ? `${json.slice(0, 107)}...` : json;
};

console.log(`bedrock-warden agent loop — calls go to ${target.description}`);
console.log(`policies: ${policyDir} (${governance.engine.policies.size} policies), environment "production", toolEnforcement "result"`);
console.log(`tools declared: ${INVOICE_TOOLS.map((t) => `${t.name} (${t.effect})`).join(", ")}\n`);

/** The tool calls the model asked for that were denied (kept to show what a careless loop would meet). */
const deniedCalls: ToolCallDecision[] = [];
const purpose = "resolve a duplicate payment";
const question = "Invoice INV-4711 was paid twice. Look it up and refund the duplicate payment.";
console.log(`▶ ${invoiceAgent.id} (groups: ${invoiceAgent.groups?.join(", ")}) — purpose: "${purpose}"`);
console.log(`  user: ${question}\n`);

await tracer.startActiveSpan(`task ${purpose}`, async (taskSpan) => {
  await runAs(invoiceAgent, () => agentLoop(question), { purpose });
  // Defence in depth: a loop that ignored the decisions and ran a denied call anyway would still be
  // stopped, at execution, by the governed executor — which never calls the tool.
  const [ignored] = deniedCalls;
  if (ignored) {
    console.log(`  a careless loop runs the denied call ${ignored.name} ${short(ignored.input)} (${ignored.toolUseId}) anyway:`);
    await runAs(invoiceAgent, () => execute(ignored.name, ignored.input, ignored.toolUseId), { purpose });
    console.log();
  }
  taskSpan.end();
});

async function agentLoop(userText: string): Promise<void> {
  const messages: Message[] = [{ role: "user", content: [{ text: userText }] }];
  for (let turn = 1; turn <= MAX_TURNS; turn++) {
    const output = await bedrock.send(
      new ConverseCommand({
        modelId: MODEL,
        system: [{ text: "You are the invoice agent of ACME's billing team. Use the tools; never invent invoice data." }],
        messages,
        toolConfig: { tools: converseTools() }, // all three: the governance withholds the ones this workload may not use
        inferenceConfig: { maxTokens: 1024 },
      }),
    );
    const call = records.findLast((r) => r.command === "ConverseCommand");
    const chat = exporter.getFinishedSpans().findLast((s) => s.name.startsWith("chat "));
    console.log(`  turn ${turn} — Converse ${MODEL}: ${call?.decision.toUpperCase()} by ${call?.policies.join(", ")}`);
    const withheld = chat?.attributes[WARDEN.TOOLS_WITHHELD] as string[] | undefined;
    if (withheld?.length) {
      const seen = (chat?.attributes[WARDEN.TOOLS_OFFERED] as string[] | undefined) ?? [];
      console.log(`    tools offered: ${converseTools().length}; the model sees ${seen.join(", ")} (withheld: ${withheld.join(", ")})`);
    }
    const message = output.output?.message;
    if (!message) throw new Error("the model returned no message");
    messages.push(message);
    const text = message.content?.flatMap((b) => (b.text ? [b.text] : [])).join(" ");
    const decisions = toolDecisions(output);
    if (output.stopReason !== "tool_use" || decisions.length === 0) {
      console.log(`    final answer (stop reason ${output.stopReason}): "${text}"\n`);
      return;
    }
    if (text) console.log(`    model: "${text}"`);
    // Every tool call the model asked for was decided when the response arrived, with its input.
    for (const d of decisions) console.log(`    model asked for ${d.name} ${short(d.input)} (${d.toolUseId})\n      → ${verdict(d.decision)}`);

    // Run the allowed calls; the denied ones get the governance's error toolResult.
    const denied = new Map(deniedToolResults(output).map((r) => [r.toolResult.toolUseId, r]));
    const results: ContentBlock[] = [];
    for (const d of decisions) {
      if (d.serverSide) continue; // AWS ran it
      const refused = denied.get(d.toolUseId);
      if (refused) {
        deniedCalls.push(d);
        results.push(refused);
        console.log(`    not run: ${d.name} — the model is told: "${refused.toolResult.content[0]?.text}"`);
        continue;
      }
      results.push({ toolResult: await execute(d.name, d.input, d.toolUseId) });
    }
    messages.push({ role: "user", content: results });
    console.log(`    sent back: ${results.length} tool ${results.length === 1 ? "result" : "results"} (${denied.size} denied)\n`);
  }
  console.log(`  stopped after ${MAX_TURNS} turns\n`);
}

/** Runs one allowed tool call through its governed executor; every failure becomes an error result. */
async function execute(name: string, input: unknown, toolUseId: string) {
  const executor = executors[name];
  try {
    if (!executor) throw new Error(`no executor for ${name}`);
    const result = await executor(input, { toolUseId });
    const record = records.findLast((r) => r.command === `tool:${name}` && r.tool?.phase === "execute");
    console.log(`    ran ${name} (execute: ${record?.decision.toUpperCase()} by ${record?.policies.join(", ")}) → ${short(result)}`);
    return { toolUseId, status: "success" as const, content: [{ json: result as DocumentType } satisfies ToolResultContentBlock] };
  } catch (error) {
    // Denied at execution (the input changed, the policies changed) or the tool failed: the model is told.
    const text = error instanceof AccessDeniedError ? `Denied by policy: ${error.decision.reasons.join("; ")}. Do not retry this call.` : `The tool failed: ${String(error)}`;
    console.log(`    ${name} ${error instanceof AccessDeniedError ? "did not run" : "failed"}: ${text}`);
    return { toolUseId, status: "error" as const, content: [{ text }] };
  }
}

const tools = records.filter((r) => r.tool);
console.log(`Billing system: ${billing.refunds.length} refunds issued, ${billing.deletedCustomers.length} customers deleted.`);
console.log(
  `${records.length} decisions: ${records.length - tools.length} model calls, ` +
    `${tools.filter((r) => r.tool?.phase === "call").length} tool calls the model asked for, ` +
    `${tools.filter((r) => r.tool?.phase === "execute").length} tool executions decided; ` +
    `${records.filter((r) => r.decision === "deny").length} denied.`,
);
if (target.local) console.log(`The endpoint received ${target.local.requests.length} requests.`);
console.log("\nTrace tree:\n");
console.log(formatTraceTree(exporter.getFinishedSpans()));

bedrock.destroy();
await target.close();
await provider.shutdown();
