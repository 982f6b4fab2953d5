/**
 * The bedrock-warden demo: three workloads under the sample policies in examples/policies, making
 * allowed and denied calls; then a short tool story (a tool withheld from the model, a tool call
 * the model asks for denied); then two agents proving who they are with tokens and calling with
 * credentials issued just in time for each of them (examples/workload-credentials.ts). Each
 * decision is printed as it happens, then the trace tree.
 *
 *   npm run demo                               # on the embedded local Bedrock endpoint
 *   BEDROCK_WARDEN_TARGET=aws npm run demo     # on real Amazon Bedrock (your AWS credentials; billed)
 *
 * The tool story's model is scripted locally (it asks for a refund of 5000); on AWS, `toolChoice`
 * makes the real model call issue_refund, with an amount of its own choosing.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConverseCommand, ConverseStreamCommand, CountTokensCommand, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import {
  AccessDeniedError,
  createGovernance,
  createJsonlSink,
  GovernedBedrockRuntimeClient,
  policiesFromDirectory,
  runAs,
  toolDecisions,
  ToolCallDeniedError,
  verifyDecisionLog,
  WARDEN,
  type DecisionRecord,
  type WorkloadIdentity,
} from "bedrock-warden";
import { bedrockTarget } from "./support/bedrock-target.js";
import { billing, converseTools, INVOICE_TOOLS } from "./support/invoice-tools.js";
import { startMemoryTracing } from "./support/memory-tracing.js";
import { formatTraceTree } from "./support/trace-tree.js";
import { workloadCredentialsStory } from "./workload-credentials.js";

process.removeAllListeners("warning"); // the SDK's notice about Node 20 support is not part of the demo

// Spans go to memory, to be printed as a tree at the end.
const { exporter, provider, tracer } = startMemoryTracing("bedrock-warden-demo");

const HAIKU_PROFILE = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
const OPUS = "anthropic.claude-3-opus-20240229-v1:0";
const NOVA = "amazon.nova-lite-v1:0";
const NOVA_PROFILE = "us.amazon.nova-lite-v1:0";

const invoiceAgent: WorkloadIdentity = { id: "spiffe://acme.example/agents/invoice", groups: ["billing"], owner: "team-billing" };
const researchAgent: WorkloadIdentity = { id: "spiffe://acme.example/agents/research", groups: ["research"], owner: "team-research" };
const supportBot: WorkloadIdentity = { id: "spiffe://acme.example/bots/support", groups: ["support"], owner: "team-support" };

const target = await bedrockTarget((request) => {
  // Offered tools, the scripted model asks for a refund (a real model is steered there by toolChoice).
  if ((request.body as { toolConfig?: unknown } | undefined)?.toolConfig) {
    return { toolUses: [{ toolUseId: "tooluse_refund_1", name: "issue_refund", input: { invoiceId: "INV-4711", amount: 5000 } }] };
  }
  return request.operation === "ConverseStream" ? { text: "Invoice 4711 matches purchase order PO-889.", chunkSize: 8 } : { text: "Done: 3 invoices reconciled." };
});
const policyDir = fileURLToPath(new URL("./policies", import.meta.url));
const records: DecisionRecord[] = [];
// The evidence: every decision in an append-only, hash-chained JSON Lines file (written off the call path).
const logDirectory = mkdtempSync(join(tmpdir(), "bedrock-warden-demo-"));
const decisionLog = createJsonlSink({ path: join(logDirectory, "decisions.jsonl") });
const governance = createGovernance({
  environment: "production",
  policies: policiesFromDirectory(policyDir),
  tools: INVOICE_TOOLS, // lookup_invoice (read), issue_refund and delete_customer (mutate): see examples/support/invoice-tools.ts
  onDecision: (r) => records.push(r),
  sinks: [decisionLog],
});
const bedrock = new GovernedBedrockRuntimeClient({ ...target.clientConfig, governance });

console.log(`bedrock-warden demo — calls go to ${target.description}`);
console.log(`policies: ${policyDir} (${governance.engine.policies.size} policies, version ${governance.policySetVersion.slice(0, 19)}…), environment "production"\n`);

const ask = (text: string) => [{ role: "user" as const, content: [{ text }] }];

/** Runs one call and prints its decision. */
async function attempt(label: string, call: () => Promise<unknown>): Promise<void> {
  try {
    const output = await call();
    const record = records.at(-1);
    console.log(`  ✔ ALLOW  ${label}\n           by ${record?.policies.join(", ")}: ${record?.reasons.join("; ")}`);
    const text = (output as { output?: { message?: { content?: { text?: string }[] } } }).output?.message?.content?.[0]?.text;
    if (text) console.log(`           model: "${text}"`);
  } catch (error) {
    if (!(error instanceof AccessDeniedError)) throw error;
    const policies = error.decision.policies.length ? `by ${error.decision.policies.join(", ")}` : "by default";
    console.log(`  ✘ DENY   ${label}\n           ${policies}: ${error.decision.reasons.join("; ")} [${error.code}]`);
  }
}

/** A workload's task: a parent span, so the trace tree groups its calls. */
async function task(identity: WorkloadIdentity, purpose: string, body: () => Promise<void>): Promise<void> {
  console.log(`▶ ${identity.id} (groups: ${identity.groups?.join(", ")}) — purpose: "${purpose}"`);
  await tracer.startActiveSpan(`task ${purpose}`, async (span) => {
    await runAs(identity, body, { purpose });
    span.end();
  });
  console.log();
}

await task(invoiceAgent, "reconcile invoices", async () => {
  await attempt(`Converse ${HAIKU_PROFILE}, maxTokens 512`, () =>
    bedrock.send(new ConverseCommand({ modelId: HAIKU_PROFILE, messages: ask("Reconcile invoice 4711"), inferenceConfig: { maxTokens: 512 } })),
  );
  await attempt(`ConverseStream ${HAIKU_PROFILE}, maxTokens 1024`, async () => {
    const { stream } = await bedrock.send(
      new ConverseStreamCommand({ modelId: HAIKU_PROFILE, messages: ask("Explain the match"), inferenceConfig: { maxTokens: 1024 } }),
    );
    let text = "";
    for await (const event of stream ?? []) text += event.contentBlockDelta?.delta?.text ?? "";
    return { output: { message: { content: [{ text }] } } };
  });
  await attempt(`Converse ${OPUS} (a model billing may not use)`, () =>
    bedrock.send(new ConverseCommand({ modelId: OPUS, messages: ask("Reconcile invoice 4711"), inferenceConfig: { maxTokens: 512 } })),
  );
  await attempt(`Converse ${HAIKU_PROFILE}, maxTokens 8000 (over the limit)`, () =>
    bedrock.send(new ConverseCommand({ modelId: HAIKU_PROFILE, messages: ask("Write a long report"), inferenceConfig: { maxTokens: 8000 } })),
  );
  await runAs(invoiceAgent, () =>
    attempt(`Converse ${HAIKU_PROFILE} carrying PII without a guardrail`, () =>
      bedrock.send(new ConverseCommand({ modelId: HAIKU_PROFILE, messages: ask("Customer IBAN is ..."), inferenceConfig: { maxTokens: 256 } })),
    ), { dataSensitivity: ["pii"] });
});

await task(researchAgent, "market research", async () => {
  await attempt(`Converse ${NOVA} (direct model id: production wants an inference profile)`, () =>
    bedrock.send(new ConverseCommand({ modelId: NOVA, messages: ask("Summarize the market") })),
  );
  await attempt(`Converse ${NOVA_PROFILE}`, () => bedrock.send(new ConverseCommand({ modelId: NOVA_PROFILE, messages: ask("Summarize the market") })));
  await attempt(`CountTokens ${OPUS}`, () =>
    bedrock.send(new CountTokensCommand({ modelId: OPUS, input: { converse: { messages: ask("How long is this?") } } })),
  );
  await attempt(`InvokeModel ${NOVA_PROFILE} with a body the policies cannot read`, () =>
    bedrock.send(new InvokeModelCommand({ modelId: NOVA_PROFILE, body: new TextEncoder().encode("\u0000binary\u0001") })),
  );
});

await task(supportBot, "answer a ticket", async () => {
  await attempt(`Converse ${HAIKU_PROFILE} (no policy grants the support bot anything)`, () =>
    bedrock.send(new ConverseCommand({ modelId: HAIKU_PROFILE, messages: ask("Where is my order?"), inferenceConfig: { maxTokens: 256 } })),
  );
});

console.log("▶ a call outside runAs, on a client with no default identity");
await attempt(`Converse ${HAIKU_PROFILE}`, () => bedrock.send(new ConverseCommand({ modelId: HAIKU_PROFILE, messages: ask("Hello?") })));
console.log();

const allowed = records.filter((r) => r.decision === "allow").length;
console.log(`${records.length} decisions: ${allowed} allowed, ${records.length - allowed} denied.`);
if (target.local) {
  const sent = target.local.requests;
  console.log(`The endpoint received ${sent.length} requests (only the allowed calls), each SigV4-signed: ${sent.every((r) => r.signature.status === "valid")}.`);
  const attributed = sent.filter((r) => JSON.stringify(r.body ?? "").includes("warden.workload") || r.headers["x-amzn-bedrock-request-metadata"]);
  console.log(`${attributed.length} of them carry the workload in Bedrock's request metadata (what the invocation logs record).`);
}

// Tools: model access and tool access are decided separately. The invoice agent may chat with
// Haiku; which tools the model may see, and each tool call it asks for, are decisions of their own.
console.log("\n── Tools: calling the model and using a tool are separate permissions ──\n");
const toolRecordsBefore = records.length;
await task(invoiceAgent, "refund a duplicate payment", async () => {
  const tools = converseTools();
  console.log(`  offers the model ${tools.length} tools: ${tools.map((t) => t.toolSpec?.name).join(", ")}`);
  let output: object | undefined;
  let denied: ToolCallDeniedError | undefined;
  try {
    output = await bedrock.send(
      new ConverseCommand({
        modelId: HAIKU_PROFILE,
        messages: ask("Invoice INV-4711 was paid twice, 5000 EUR each time: refund the duplicate payment."),
        toolConfig: { tools, toolChoice: { tool: { name: "issue_refund" } } },
        inferenceConfig: { maxTokens: 512 },
      }),
    );
  } catch (error) {
    if (!(error instanceof ToolCallDeniedError)) throw error;
    denied = error;
    output = error.output as object | undefined;
  }
  const chat = exporter.getFinishedSpans().findLast((s) => s.name.startsWith("chat "));
  for (const name of (chat?.attributes[WARDEN.TOOLS_WITHHELD] as string[] | undefined) ?? []) {
    console.log(`  ✂ WITHHELD ${name}: removed from the request, the model never sees it`);
  }
  const call = records.findLast((r) => r.command === "ConverseCommand");
  console.log(`  ✔ ALLOW  Converse ${HAIKU_PROFILE} with tools ${(chat?.attributes[WARDEN.TOOLS_OFFERED] as string[] | undefined)?.join(", ")}`);
  console.log(`           by ${call?.policies.join(", ")}: ${call?.reasons.join("; ")}`);
  for (const decided of output ? toolDecisions(output) : []) {
    const { decision } = decided;
    const label = `tool call ${decided.name} ${JSON.stringify(decided.input)}, as the model asked`;
    if (decision.effect === "allow") {
      console.log(`  ✔ ALLOW  ${label}\n           by ${decision.policies.join(", ")}: ${decision.reasons.join("; ")}`);
    } else {
      const policies = decision.policies.length ? `by ${decision.policies.join(", ")}` : "by default";
      const code = denied?.toolUseId === decided.toolUseId ? ` [${denied.code}]` : "";
      console.log(`  ✘ DENY   ${label}\n           ${policies}: ${decision.reasons.join("; ")}${code}`);
    }
  }
});
const toolRecords = records.slice(toolRecordsBefore).filter((r) => r.tool);
console.log(
  `Tools: ${toolRecords.length} tool ${toolRecords.length === 1 ? "call" : "calls"} the model asked for decided, ` +
    `${toolRecords.filter((r) => r.decision === "deny").length} denied (send() threw ToolCallDeniedError); refunds issued: ${billing.refunds.length}.`,
);

// Identities proven by tokens, and calls signed with credentials issued just in time for each
// workload and task (runs on the local STS and Bedrock endpoints; on AWS it needs an IAM role set up).
console.log();
if (target.local) await workloadCredentialsStory(policyDir);
else console.log("(The just-in-time credentials story runs locally only: on AWS it needs the IAM role described in the README.)\n");

await decisionLog.close();
const verified = await verifyDecisionLog(decisionLog.path);
console.log(
  `Decision log: ${verified.records} records, hash-chained, in ${decisionLog.path}; verified: ${verified.ok ? "ok" : `BROKEN at ${verified.firstProblem?.file}:${verified.firstProblem?.line}`} ` +
    `(npx bedrock-warden verify-log ${decisionLog.path})`,
);

console.log("\nTrace tree (what a tracing backend receives):\n");
console.log(formatTraceTree(exporter.getFinishedSpans()));

bedrock.destroy();
await target.close();
await provider.shutdown();
