import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, it } from "node:test";

const root = fileURLToPath(new URL("..", import.meta.url));
const exec = promisify(execFile);
const runExample = async (file: string) => {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: "" };
  delete env["BEDROCK_WARDEN_TARGET"];
  const { stdout } = await exec(process.execPath, ["--import", "tsx", file], { cwd: root, env, timeout: 60_000 });
  return stdout;
};

describe("examples run on the embedded endpoint", () => {
  it("the demo: allowed and denied calls, each decision, and the trace tree", async () => {
    const out = await runExample("examples/demo.ts");
    assert.match(out, /✔ ALLOW  Converse us\.anthropic\.claude-3-5-haiku/);
    assert.match(out, /✘ DENY   Converse anthropic\.claude-3-opus/);
    assert.match(out, /by pii-needs-a-guardrail/);
    assert.match(out, /\[ERR_NO_IDENTITY\]/);
    assert.match(out, /11 decisions: 4 allowed, 7 denied\./);
    assert.match(out, /The endpoint received 4 requests \(only the allowed calls\), each SigV4-signed: true\./);
    assert.match(out, /task reconcile invoices[\s\S]*├─ chat us\.anthropic/);
    // The tool story: a tool withheld from the model, a tool call the model asked for denied with its reason.
    assert.match(out, /offers the model 3 tools: lookup_invoice, issue_refund, delete_customer/);
    assert.match(out, /✂ WITHHELD delete_customer: removed from the request, the model never sees it/);
    assert.match(out, /✔ ALLOW  Converse us\.anthropic\.claude-3-5-haiku-20241022-v1:0 with tools lookup_invoice, issue_refund\n/);
    assert.match(
      out,
      /✘ DENY   tool call issue_refund \{"invoiceId":"INV-4711","amount":5000\}, as the model asked\n\s+by no-refunds-over-100: refunds over 100 need a person's approval: no agent may issue them \[ERR_TOOL_CALL_DENIED\]/,
    );
    assert.match(out, /Tools: 1 tool call the model asked for decided, 1 denied \(send\(\) threw ToolCallDeniedError\); refunds issued: 0\./);
    assert.match(out, /task refund a duplicate payment[^\n]*\n└─ chat us\.anthropic[^\n]*tools withheld: delete_customer · error ERR_TOOL_CALL_DENIED\n\s+⋯ model asked for issue_refund \(tooluse_refund_1\): DENY by no-refunds-over-100/);
  });

  // Both tool examples run the same scripted model: lookup_invoice (allowed) and a refund of 5000 (denied), then an answer.
  const assertToolTrace = (out: string) => {
    const tree = out.slice(out.indexOf("Trace tree:"));
    const lines = tree.split("\n");
    const chat = /^├─ chat us\.anthropic\S+ (#[0-9a-f]{8})  \[CLIENT/m.exec(tree);
    assert.ok(chat, `the first chat span shows the id that execute_tool spans link to:\n${tree}`);
    const roots = lines.slice(1).filter((l) => l.trim() !== "" && !/^[├└│ ]/.test(l));
    assert.deepEqual(roots.map((l) => l.split("  [")[0]), ["task resolve a duplicate payment"], "one root: the task span");
    // execute_tool spans are children of the task span (not of the chat span), linked to the chat span that asked.
    const executed = lines.find((l) => /^[├└]─ execute_tool lookup_invoice /.test(l));
    assert.ok(executed, `execute_tool lookup_invoice under the task span:\n${tree}`);
    assert.match(executed, /ALLOW by billing-may-use-read-tools · as spiffe:\/\/acme\.example\/agents\/invoice · call tooluse_1_lookup/);
    assert.ok(executed.endsWith(`← requested by chat us.anthropic.claude-3-5-haiku-20241022-v1:0 ${chat[1]}`), executed);
    assert.match(tree, /⋯ model asked for lookup_invoice \(tooluse_1_lookup\): ALLOW by billing-may-use-read-tools/);
    assert.match(tree, /⋯ model asked for issue_refund \(tooluse_1_refund\): DENY by no-refunds-over-100/);
    const refused = lines.find((l) => /^[├└]─ execute_tool issue_refund /.test(l));
    assert.ok(refused, `the denied execution has its span too:\n${tree}`);
    assert.match(refused, /DENY by no-refunds-over-100 .*error ERR_ACCESS_DENIED .*← requested by chat \S+ #[0-9a-f]{8}$/);
  };

  it("the agent loop on the raw SDK: allowed and denied tool calls, the denial fed back, a final answer, linked spans", async () => {
    const out = await runExample("examples/agent-loop.ts");
    assert.match(out, /tools offered: 3; the model sees lookup_invoice, issue_refund \(withheld: delete_customer\)/);
    assert.match(out, /model asked for lookup_invoice \{"invoiceId":"INV-4711"\} \(tooluse_1_lookup\)\n\s+→ ✔ ALLOW by billing-may-use-read-tools/);
    assert.match(out, /model asked for issue_refund \{"invoiceId":"INV-4711","amount":5000\} \(tooluse_1_refund\)\n\s+→ ✘ DENY  by no-refunds-over-100: refunds over 100 need a person's approval/);
    assert.match(out, /ran lookup_invoice \(execute: ALLOW by billing-may-use-read-tools\) → \{"invoiceId":"INV-4711","customer":"ACME GmbH"/);
    assert.match(out, /not run: issue_refund — the model is told: "Denied by policy: refunds over 100 need a person's approval: no agent may issue them\. Do not retry this call\."/);
    assert.match(out, /sent back: 2 tool results \(1 denied\)/);
    assert.match(out, /final answer \(stop reason end_turn\): "ACME GmbH paid INV-4711 \(5000 EUR\) 2 times\. I did not refund the duplicate payment: refunds over 100 need a person's approval/);
    assert.match(out, /a careless loop runs the denied call issue_refund .*\n\s+issue_refund did not run: Denied by policy/);
    assert.match(out, /Billing system: 0 refunds issued, 0 customers deleted\./);
    assert.match(out, /6 decisions: 2 model calls, 2 tool calls the model asked for, 2 tool executions decided; 2 denied\./);
    assertToolTrace(out);
  });

  it("LangChain.js: ChatBedrockConverse on a governed client, tools wrapped with governTool", async () => {
    const out = await runExample("examples/langchain-agent.ts");
    assert.match(out, /LangChain offered 3 tools; the model sees lookup_invoice, issue_refund \(withheld: delete_customer\)/);
    assert.match(out, /model asked for issue_refund \{"invoiceId":"INV-4711","amount":5000\} \(tooluse_1_refund\)\n\s+→ DENY by no-refunds-over-100/);
    assert.match(out, /ran lookup_invoice \(execute: ALLOW by billing-may-use-read-tools/);
    assert.match(out, /not run: issue_refund — ERR_ACCESS_DENIED; the model is told: "Denied by policy: refunds over 100/);
    assert.match(out, /final answer: "ACME GmbH paid INV-4711 \(5000 EUR\) 2 times\. I did not refund the duplicate payment: refunds over 100/);
    assert.match(out, /Billing system: 0 refunds issued, 0 customers deleted\./);
    assert.match(out, /The endpoint received 2 requests, each offering only: lookup_invoice, issue_refund\./);
    assertToolTrace(out);
  });

  it("the OTLP export: a trace backend receives the GenAI and bedrock_warden attributes", async () => {
    const out = await runExample("examples/otlp-export.ts");
    assert.match(out, /span "chat us\.anthropic\.claude-3-5-haiku-20241022-v1:0" \(kind CLIENT, status OK\)/);
    assert.match(out, /gen_ai\.provider\.name = "aws\.bedrock"/);
    assert.match(out, /bedrock_warden\.decision = "deny"/);
    assert.match(out, /bedrock_warden\.workload\.id = "spiffe:\/\/acme\.example\/agents\/invoice"/);
  });
});
