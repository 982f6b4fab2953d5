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
  });

  it("the OTLP export: a trace backend receives the GenAI and bedrock_warden attributes", async () => {
    const out = await runExample("examples/otlp-export.ts");
    assert.match(out, /span "chat us\.anthropic\.claude-3-5-haiku-20241022-v1:0" \(kind CLIENT, status OK\)/);
    assert.match(out, /gen_ai\.provider\.name = "aws\.bedrock"/);
    assert.match(out, /bedrock_warden\.decision = "deny"/);
    assert.match(out, /bedrock_warden\.workload\.id = "spiffe:\/\/acme\.example\/agents\/invoice"/);
  });
});
