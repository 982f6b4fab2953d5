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
    assert.match(out, /Decision log: 13 records, hash-chained, in \S+decisions\.jsonl; verified: ok/);
    // Two agents with their own tokens and just-in-time credentials (examples/workload-credentials.ts).
    assert.match(out, /▶ spiffe:\/\/acme\.example\/agents\/invoice \(groups: billing\): token verified/);
    const invoiceKey = /✔ ALLOW  invoice  Converse us\.anthropic\S+  signed with (ASIA\w{4})…/.exec(out)?.[1];
    const researchKey = /✔ ALLOW  research Converse us\.amazon\.nova-lite-v1:0  signed with (ASIA\w{4})…/.exec(out)?.[1];
    assert.ok(invoiceKey && researchKey && invoiceKey !== researchKey, "each agent signs with its own temporary key");
    assert.match(out, new RegExp(`again \\(cached credentials\\)  signed with ${invoiceKey}…`));
    assert.match(out, /✘ DENY   research Converse us\.anthropic/);
    assert.match(out, /STS session reconcile-invoices\.acme\.example-agents-invoice\.[0-9a-f]{10} [^\n]*\n\s+may bedrock:InvokeModel, bedrock:InvokeModelWithResponseStream on [^\n]*foundation-model\/anthropic\.claude-3-5-haiku/);
    assert.match(out, /STS session market-research\.[^\n]*\n\s+may bedrock:CountTokens, bedrock:InvokeModel on [^\n]*us\.amazon\.nova-lite-v1:0/);
    assert.match(out, /3 requests reached Bedrock, each signed with a key STS issued to the calling workload: true/);
    assert.match(out, /credential pairs held after the tasks ended: 0/);
    assert.match(out, /✘ a token signed with another key: refused \(bad-signature\) \[ERR_TOKEN_INVALID\]/);
    assert.match(out, /✘ the same call signed with a long-term access key: denied by no-standing-keys/);
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

  it("identity sources: GitHub Actions, a Kubernetes token file, a SPIFFE JWT-SVID and a delegated token, verified offline", async () => {
    const out = await runExample("examples/identity-sources.ts");
    const allow = (id: string, policy: string) => new RegExp(`✔ ALLOW  Converse \\S+ as ${id.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} \\(task [^)]+\\)\\n\\s+by ${policy}:`);
    // 1. GitHub Actions: the token endpoint and the JWKS are the local stand-ins; the claims mapped onto the identity.
    assert.match(out, /✔ verified repo:acme\/invoices:ref:refs\/heads\/main\n\s+groups\s+repo:acme\/invoices; attributes ref=refs\/heads\/main, workflow=acme\/invoices\/\.github\/workflows\/nightly-eval\.yml@refs\/heads\/main\n\s+method\s+oidc, issuer https:\/\/token\.actions\.githubusercontent\.com\n\s+expires\s+\S+Z \(in \d+ s\)\n\s+delegation\s+none/);
    assert.match(out, allow("repo:acme/invoices:ref:refs/heads/main", "ci-main-branch"));
    // 2. Kubernetes: the namespace as a group, and a rotated token picked up by the next identity().
    assert.match(out, /✔ verified system:serviceaccount:billing:invoice-agent\n\s+groups\s+k8s:billing; attributes namespace=billing, serviceAccount=invoice-agent\n\s+method\s+oidc, issuer https:\/\/oidc\.eks\.us-east-1\.amazonaws\.com\/id\/EXAMPLE/);
    assert.match(out, allow("system:serviceaccount:billing:invoice-agent", "billing-namespace"));
    const rotation = /system:serviceaccount:billing:invoice-agent: expiry (\S+) → (\S+)\n/.exec(out);
    assert.ok(rotation, out);
    assert.ok(Date.parse(rotation[2]!) - Date.parse(rotation[1]!) >= 47 * 60_000, `the rotated token expires later: ${rotation[0]}`);
    // 3. SPIFFE: the trust domain and path from the SVID; the delegated token's chain.
    assert.match(out, /✔ verified spiffe:\/\/acme\.example\/agents\/invoice\n\s+groups\s+\(none\)\n\s+method\s+spiffe-jwt-svid, issuer https:\/\/oidc-discovery\.acme\.example \(trust domain acme\.example, path \/agents\/invoice\)/);
    assert.match(out, allow("spiffe://acme.example/agents/invoice", "acme-agents"));
    assert.match(
      out,
      /authenticationOf\(identity\)\.delegation = \{"depth":2,"actors":\[\{"subject":"spiffe:\/\/acme\.example\/agents\/orchestrator"\},\{"subject":"spiffe:\/\/acme\.example\/agents\/invoice"\}\],"onBehalfOf":"alice@acme\.example"\}/,
    );
    assert.match(out, allow("spiffe://acme.example/agents/invoice", "agents-acting-for-people"));
    assert.match(out, /✘ DENY   Converse \S+ as spiffe:\/\/acme\.example\/agents\/payments, a third hop \(delegation depth 3\) \(task check-alice-invoice\)\n\s+by at-most-two-hops:/);
    // Refusals: a declared identity by policy, a forged token before any call.
    assert.match(out, /✘ DENY   Converse \S+ as spiffe:\/\/acme\.example\/agents\/invoice, declared in code, not proven \(task reconcile-invoices\)\n\s+by verified-identities-only:/);
    assert.match(out, /✘ REFUSED a forged JWT-SVID: TokenVerificationError reason "bad-signature" \[ERR_TOKEN_INVALID\]\n\s+Token refused: its signature does not verify[^\n]*\n\s+the task never started: 0 requests reached Bedrock/);
    assert.match(out, /6 decisions: 4 allowed, 2 denied; the endpoint received 4 requests \(only the allowed calls\)\./);
  });

  it("the OTLP export: a trace backend receives the GenAI and bedrock_warden attributes", async () => {
    const out = await runExample("examples/otlp-export.ts");
    assert.match(out, /span "chat us\.anthropic\.claude-3-5-haiku-20241022-v1:0" \(kind CLIENT, status OK\)/);
    assert.match(out, /gen_ai\.provider\.name = "aws\.bedrock"/);
    assert.match(out, /bedrock_warden\.decision = "deny"/);
    assert.match(out, /bedrock_warden\.workload\.id = "spiffe:\/\/acme\.example\/agents\/invoice"/);
  });
});
