/**
 * The `bedrock-warden` CLI, run as a child process (`node --import tsx src/cli/main.ts ...`) against
 * the fixtures in test/fixtures/cli and decision logs written in a temporary directory.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ConverseCommand, CountTokensCommand, ConverseStreamCommand, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import type { DecisionRecord } from "../src/audit/decision-record.js";
import { chainEvent, chainRecord, genesisState } from "../src/audit/hash-chain.js";
import { createJsonlSink } from "../src/audit/jsonl-sink.js";
import { decideCase } from "../src/cli/decision-case.js";
import { readTools } from "../src/cli/inputs.js";
import { readCases } from "../src/cli/test.js";
import { createGovernance, GovernedBedrockRuntimeClient, policiesFromDirectory, runAs, runTask } from "../src/index.js";
import { MemoryHandler } from "./support/memory-handler.js";

// The SDK warns once per process that Node 20 support ends in 2027; tests are not the place for it.
process.removeAllListeners("warning");
process.on("warning", (warning) => {
  if (warning.name !== "NodeVersionSupportWarning") console.warn(warning);
});

const root = fileURLToPath(new URL("..", import.meta.url));
const FIXTURES = "test/fixtures/cli";
const POLICIES = `${FIXTURES}/policies`;
const TOOLS = `${FIXTURES}/tools.json`;
const CASES = `${FIXTURES}/cases.jsonl`;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI and resolves to its exit code and output, whatever the code. */
function cli(args: readonly string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", ...args],
      { cwd: root, env: { ...process.env, NODE_OPTIONS: "" }, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") reject(error);
        else resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
      },
    );
    if (stdin !== undefined) child.stdin!.end(stdin);
    else child.stdin!.end();
  });
}

const COMMANDS = ["validate", "test", "explain", "verify-log", "inventory"];

describe("bedrock-warden: usage", { concurrency: 4 }, () => {
  it("--help lists every command; no command is a usage error (exit 2)", async () => {
    const help = await cli(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: bedrock-warden <command> \[arguments\] \[options\]/);
    for (const name of COMMANDS) assert.match(help.stdout, new RegExp(`\\n  ${name} +\\S`), name);
    const none = await cli([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /Usage: bedrock-warden <command>/);
  });

  it("an unknown command prints the usage and exits 2", async () => {
    const run = await cli(["valdate", POLICIES]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^bedrock-warden: unknown command "valdate"\nUsage: bedrock-warden <command>/);
    assert.equal(run.stdout, "");
  });

  for (const name of COMMANDS) {
    it(`${name} --help prints its usage and exits 0`, async () => {
      const run = await cli([name, "--help"]);
      assert.equal(run.code, 0);
      assert.match(run.stdout, new RegExp(`^Usage: bedrock-warden ${name} <`));
      assert.match(run.stdout, /Exit codes: 0 /);
      assert.equal((await cli(["help", name])).stdout, run.stdout, "help <command> says the same");
    });
  }

  it("an unknown option, a missing or extra argument, a missing file: exit 2 with the command's usage line", async () => {
    const option = await cli(["validate", POLICIES, "--tool", TOOLS]);
    assert.equal(option.code, 2);
    assert.match(option.stderr, /^bedrock-warden validate: Unknown option '--tool'/);
    assert.match(option.stderr, /\nUsage: bedrock-warden validate <policy-dir> \[--tools tools.json\]\nRun bedrock-warden validate --help for more\.\n$/);
    const missing = await cli(["test", POLICIES]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^bedrock-warden test: missing an argument\n/);
    const extra = await cli(["verify-log", "a", "b"]);
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /unexpected argument "b"/);
    const noDir = await cli(["validate", `${FIXTURES}/nowhere`]);
    assert.equal(noDir.code, 2);
    assert.match(noDir.stderr, /^bedrock-warden validate: test\/fixtures\/cli\/nowhere: no such directory \(the policy directory\)/);
    const noCases = await cli(["test", POLICIES, `${FIXTURES}/nowhere.jsonl`]);
    assert.equal(noCases.code, 2);
    assert.match(noCases.stderr, /nowhere\.jsonl: no such file \(the cases file\)/);
  });
});

describe("bedrock-warden validate", { concurrency: 4 }, () => {
  it("valid policies with their tools: a summary and the policy set version, exit 0", async () => {
    const run = await cli(["validate", POLICIES, "--tools", TOOLS]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, "");
    assert.match(run.stdout, /^9 policies in 3 files, 3 declared tools: valid\npolicy set version: sha256:[0-9a-f]{64}\n$/);
  });

  it("warnings are printed as file:line:column: warning: message, and do not fail validation", async () => {
    const run = await cli(["validate", `${FIXTURES}/warnings`]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stderr,
      "test/fixtures/cli/warnings/impossible.cedar:2:1: warning: for policy `never`, policy is impossible: the policy expression evaluates to false for all valid requests\n",
    );
    assert.match(run.stdout, /^2 policies \(1 in shadow: recorded, not enforced\) in 1 file: valid \(1 warning\)\n/);
  });

  it("a typo and a syntax error: file:line:column: message for each, exit 1", async () => {
    const run = await cli(["validate", `${FIXTURES}/typo`]);
    assert.equal(run.code, 1);
    const lines = run.stderr.trimEnd().split("\n");
    assert.match(lines[0]!, /^test\/fixtures\/cli\/typo\/billing\.cedar:4:8: for policy `billing-in-production`, attribute `enviroment` .* \(did you mean `environment`\?\)$/);
    assert.match(lines[1]!, /^test\/fixtures\/cli\/typo\/broken\.cedar:2:58: unexpected token `resource`/);
    assert.equal(lines[2], "2 problems in 2 files: invalid");
    assert.equal(run.stdout, "");
  });

  it("policies naming tool actions without --tools: located problems and a note saying what to pass", async () => {
    const run = await cli(["validate", POLICIES]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^test\/fixtures\/cli\/policies\/billing\.cedar:18:59: for policy `billing-may-refund`, unrecognized action `Bedrock::Action::"tool:issue_refund"`/m);
    assert.match(run.stderr, /note: the tool:<name> actions exist only for declared tools: pass their definitions with --tools tools\.json/);
  });

  it("a malformed tools file: each problem at the line of its tool; JSON syntax errors at their line and column", async () => {
    const run = await cli(["validate", POLICIES, "--tools", `${FIXTURES}/bad-tools.json`]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^test\/fixtures\/cli\/bad-tools\.json:3:3: tools\[1\]: effect: tool\.effect must be "read" or "mutate"$/m);
    assert.match(run.stderr, /^test\/fixtures\/cli\/bad-tools\.json:4:3: tools\[2\]: "lookup_invoice" is already declared by tools\[0\]: declare each tool once$/m);
    const dir = mkdtempSync(join(tmpdir(), "warden-cli-"));
    try {
      writeFileSync(join(dir, "tools.json"), '[\n  { "name": "a", "effect": "read" },\n  { "name": "b" "effect": "read" }\n]\n');
      const syntax = await cli(["validate", POLICIES, "--tools", join(dir, "tools.json")]);
      assert.equal(syntax.code, 1);
      assert.match(syntax.stderr, /tools\.json:3:17: not valid JSON: Expected ',' or '}' after property value/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("bedrock-warden test", { concurrency: 4 }, () => {
  it("passing and failing cases and malformed lines: PASS/FAIL per case, located problems, a summary, exit 1", async () => {
    const run = await cli(["test", POLICIES, CASES, "--tools", TOOLS]);
    assert.equal(run.code, 1);
    const passed = [
      "billing chats with haiku through a profile",
      "billing may not use opus",
      "pii without a guardrail",
      "a long-term key in production",
      "a small refund",
      "a large refund",
      "research nova profile in a task",
      "the auditor, verified",
    ];
    for (const name of passed) assert.match(run.stdout, new RegExp(`^PASS ${name}$`, "m"), name);
    assert.match(
      run.stdout,
      /^FAIL wrong on purpose: opus expected to be allowed: expected allow, got deny \(by default: no policy permits this request \(default deny\)\)\n  at test\/fixtures\/cli\/cases\.jsonl:13$/m,
    );
    assert.match(
      run.stdout,
      /^FAIL wrong on purpose: the wrong policy: expected deny by no-such-policy, got deny \(by nobody-deletes-customers: no workload may delete customers\); no policy has the id "no-such-policy"\n  at test\/fixtures\/cli\/cases\.jsonl:14$/m,
    );
    assert.match(run.stdout, /^10 cases: 8 passed, 2 failed, 2 malformed lines \(environment production, policy set sha256:[0-9a-f]{64}\)$/m);
    assert.equal(
      run.stderr,
      'test/fixtures/cli/cases.jsonl:15: Unrecognized key: "expcet" (allowed: name, identity, authentication, scope, task, region, credentials, usage, expect, expectPolicies, command, input)\n' +
        "test/fixtures/cli/cases.jsonl:16:58: not valid JSON: Expected double-quoted property name\n",
    );
  });

  it("every case passing: exit 0; --environment reaches context.environment", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-cli-"));
    try {
      const good = readFileSync(join(root, CASES), "utf8")
        .split("\n")
        .filter((line) => !/wrong on purpose|malformed/.test(line))
        .join("\n");
      writeFileSync(join(dir, "good.jsonl"), good);
      const run = await cli(["test", POLICIES, join(dir, "good.jsonl"), "--tools", TOOLS]);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /^8 cases: 8 passed, 0 failed \(environment production/m);
      // Outside production, long-term keys are not refused.
      const dev = await cli(["test", POLICIES, join(dir, "good.jsonl"), "--tools", TOOLS, "--environment", "development"]);
      assert.equal(dev.code, 1);
      assert.match(dev.stdout, /^FAIL a long-term key in production: expected deny, got allow \(by billing-may-chat-with-haiku: /m);
      assert.match(dev.stdout, /\(environment development,/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("--evaluator wasm decides every case in cedar-wasm, with the same output as the default; another name is a usage error", async () => {
    const byDefault = await cli(["test", POLICIES, CASES, "--tools", TOOLS]);
    const inWasm = await cli(["test", POLICIES, CASES, "--tools", TOOLS, "--evaluator", "wasm"]);
    assert.equal(inWasm.code, byDefault.code);
    assert.equal(inWasm.stdout, byDefault.stdout);
    assert.equal(inWasm.stderr, byDefault.stderr);
    assert.match(inWasm.stdout, / passed, /);
    const unknown = await cli(["test", POLICIES, CASES, "--evaluator", "fast"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--evaluator must be javascript or wasm, got "fast"/);
    const explained = await cli(["explain", POLICIES, "-", "--tools", TOOLS, "--evaluator", "wasm", "--json"], readFileSync(join(root, CASES), "utf8").split("\n").find((line) => line.startsWith("{"))!);
    assert.equal(explained.code === 0 || explained.code === 1, true, explained.stderr);
    assert.match(explained.stdout, /"decision"/);
  });

  it("a case denied before the policies ran (a misspelled input field, an undeclared tool) is a FAIL, not a default deny", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-cli-"));
    const identity = '"identity": {"id": "spiffe://acme.example/agents/invoice", "groups": ["billing"]}';
    try {
      writeFileSync(
        join(dir, "structural.jsonl"),
        [
          `{"name": "typo in the input", ${identity}, "command": "Converse", "input": {"modelID": "anthropic.claude-3-haiku-20240307-v1:0"}, "expect": "deny", "expectPolicies": []}`,
          `{"name": "undeclared tool", ${identity}, "tool": "issue_refnud", "phase": "call", "input": {}, "expect": "deny"}`,
        ].join("\n"),
      );
      const run = await cli(["test", POLICIES, join(dir, "structural.jsonl"), "--tools", TOOLS]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(run.stdout, /^FAIL typo in the input: expected deny by the policies, but the case was denied before they were evaluated \(/m);
      assert.match(run.stderr, /structural\.jsonl:2: warning: the tool "issue_refnud" is not declared in the tools file: it is decided as UndeclaredTool/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a case can carry the usage a store would count, and its kill switch: budgets and rate limits are testable", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-cli-"));
    const identity = '"identity": {"id": "spiffe://acme.example/agents/invoice", "groups": ["billing"]}';
    const call = '"command": "Converse", "input": {"modelId": "anthropic.claude-3-haiku-20240307-v1:0", "messages": []}';
    try {
      mkdirSync(join(dir, "policies"));
      writeFileSync(
        join(dir, "policies", "usage.cedar"),
        `permit (principal, action, resource);\n@id("rate-cap") forbid (principal, action, resource) when { context has usage && context.usage.callsLastMinute > 3 };\n`,
      );
      writeFileSync(
        join(dir, "usage.jsonl"),
        [
          `{"name": "no store: no context.usage", ${identity}, ${call}, "expect": "allow"}`,
          `{"name": "under the cap", ${identity}, ${call}, "usage": {"callsLastMinute": 3, "tokensLastHour": 0}, "expect": "allow"}`,
          `{"name": "over the cap", ${identity}, ${call}, "usage": {"callsLastMinute": 4, "tokensLastHour": 0}, "expect": "deny", "expectPolicies": ["rate-cap"]}`,
          `{"name": "killed", ${identity}, ${call}, "usage": {"callsLastMinute": 1, "tokensLastHour": 0, "killed": "INC-7"}, "expect": "deny", "expectPolicies": []}`,
          `{"name": "killed tool", ${identity}, "tool": "lookup", "phase": "execute", "input": {}, "usage": {"callsLastMinute": 1, "tokensLastHour": 0, "killed": "INC-7"}, "expect": "deny", "expectPolicies": []}`,
        ].join("\n"),
      );
      const run = await cli(["test", join(dir, "policies"), join(dir, "usage.jsonl")]);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      // A case that turns the kill switch on expects the denial that comes before any policy: it passes.
      for (const name of ["no store: no context.usage", "under the cap", "over the cap", "killed", "killed tool"]) assert.match(run.stdout, new RegExp(`^PASS ${name}$`, "m"), run.stdout);
      // ... unless it expects a policy to have decided.
      writeFileSync(join(dir, "killed-by-policy.jsonl"), `{"name": "killed, by a policy?", ${identity}, ${call}, "usage": {"callsLastMinute": 1, "tokensLastHour": 0, "killed": "INC-7"}, "expect": "deny", "expectPolicies": ["rate-cap"]}`);
      const byPolicy = await cli(["test", join(dir, "policies"), join(dir, "killed-by-policy.jsonl")]);
      assert.equal(byPolicy.code, 1);
      assert.match(byPolicy.stdout, /^FAIL killed, by a policy\?: expected deny by rate-cap, got deny \(.*INC-7.*\(the kill switch decides before any policy\)/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("malformed cases are never a pass: each says what is wrong, with its line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-cli-"));
    const identity = '"identity": {"id": "spiffe://acme.example/agents/invoice", "groups": ["billing"]}';
    try {
      writeFileSync(
        join(dir, "bad.jsonl"),
        [
          `{"name": "unknown command", ${identity}, "command": "Convrse", "input": {"modelId": "m"}, "expect": "deny"}`,
          `{"name": "no expect", ${identity}, "command": "Converse", "input": {"modelId": "m"}}`,
          `{"name": "bad identity", "identity": {"id": ""}, "command": "Converse", "input": {"modelId": "m"}, "expect": "deny"}`,
          `{"name": "bad scope", ${identity}, "scope": {"actionType": "write"}, "command": "Converse", "input": {"modelId": "m"}, "expect": "deny"}`,
          `{"name": "bad task", ${identity}, "task": "has spaces", "command": "Converse", "input": {"modelId": "m"}, "expect": "deny"}`,
          `{"name": "neither", ${identity}, "expect": "deny"}`,
          `{"name": "bad phase", ${identity}, "tool": "issue_refund", "phase": "run", "expect": "deny"}`,
          `{"name": "no expect", ${identity}, "tool": "issue_refund", "phase": "offer", "expect": "allow"}`,
          `[1, 2]`,
        ].join("\n"),
      );
      const run = await cli(["test", POLICIES, join(dir, "bad.jsonl"), "--tools", TOOLS]);
      assert.equal(run.code, 1);
      const problems = run.stderr.trimEnd().split("\n").map((line) => line.slice(line.indexOf("bad.jsonl:")));
      assert.deepEqual(problems, [
        'bad.jsonl:1: command: "Convrse" is not a Bedrock Runtime command this version governs (one of Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream, InvokeModelWithBidirectionalStream, StartAsyncInvoke, CountTokens, ApplyGuardrail, InvokeGuardrailChecks, GetAsyncInvoke, ListAsyncInvokes)',
        'bad.jsonl:6: a case names a command ("command": "Converse") or a tool ("tool": "issue_refund", "phase": "call")',
        'bad.jsonl:7: phase: must be "offer", "call" or "execute"',
        'bad.jsonl:8: name: "no expect" is already the name of the case at line 2: give each case its own name',
        "bad.jsonl:9: a case must be a JSON object: { name, identity, command, input, expect } or { name, identity, tool, phase, input?, expect }",
        'bad.jsonl:2: expect: is required ("allow" or "deny")',
        "bad.jsonl:3: Invalid workload identity: id: identity.id must not be empty",
        'bad.jsonl:4: Invalid call scope: scope.actionType: must be "read" or "mutate"',
        "bad.jsonl:5: Invalid task: the task name must be 1-128 characters of letters, digits and _.:/=+@- (it becomes a session tag)",
      ]);
      assert.doesNotMatch(run.stdout, /PASS/);
      assert.match(run.stdout, /^0 cases: 0 passed, 0 failed, 9 malformed lines/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a file holding no case fails", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-cli-"));
    try {
      writeFileSync(join(dir, "empty.jsonl"), "// nothing yet\n\n");
      const empty = await cli(["test", POLICIES, join(dir, "empty.jsonl"), "--tools", TOOLS]);
      assert.equal(empty.code, 1);
      assert.match(empty.stderr, /empty\.jsonl: holds no case/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("bedrock-warden explain", { concurrency: 4 }, () => {
  it("the decision, its policies with file:line, the tools decided first, and the Cedar request", async () => {
    const run = await cli(["explain", POLICIES, `${FIXTURES}/case-converse-tools.json`, "--tools", TOOLS]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^case: billing chats with haiku, offering three tools\ndecision: ALLOW  Converse us\.anthropic\.claude-3-5-haiku-20241022-v1:0\n/);
    assert.match(run.stdout, /\ndetermining policies:\n  billing-may-chat-with-haiku \(test\/fixtures\/cli\/policies\/billing\.cedar:2, permit\)\n/);
    assert.match(run.stdout, /\nreasons:\n  billing agents may chat with Claude 3\.5 Haiku, up to 2,048 output tokens\nerrors: none\n/);
    assert.match(run.stdout, /  delete_customer: withheld, deny \(by nobody-deletes-customers: no workload may delete customers\)\n/);
    assert.match(run.stdout, /\nCedar request as evaluated[^\n]*\n  principal: \{"type":"Bedrock::Workload","id":"spiffe:\/\/acme\.example\/agents\/invoice"\}\n/);
    assert.match(run.stdout, /"toolsOffered": \[\n\s+"lookup_invoice",\n\s+"issue_refund"\n\s+\]/);
    assert.match(run.stdout, /\nexpected: allow: as expected\n$/);
  });

  it("--json: the whole explanation as one object", async () => {
    const run = await cli(["explain", POLICIES, `${FIXTURES}/case-converse-tools.json`, "--tools", TOOLS, "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout);
    assert.equal(out.decision.effect, "allow");
    assert.deepEqual(out.determiningPolicies, [
      {
        id: "billing-may-chat-with-haiku",
        source: "test/fixtures/cli/policies/billing.cedar",
        line: 2,
        effect: "permit",
        reason: "billing agents may chat with Claude 3.5 Haiku, up to 2,048 output tokens",
      },
    ]);
    assert.deepEqual(out.request.action, { type: "Bedrock::Action", id: "Converse" });
    assert.deepEqual(out.request.context.toolsOffered, ["lookup_invoice", "issue_refund"]);
    assert.equal(out.request.context.environment, "production");
    assert.deepEqual(out.request.entities[1].parents, [
      { type: "Bedrock::Model", id: "anthropic.claude-3-5-haiku-20241022-v1:0" },
      { type: "Bedrock::Provider", id: "anthropic" },
    ]);
    assert.deepEqual(
      out.toolOffers.map((o: { name: string; decision: { effect: string } }) => [o.name, o.decision.effect]),
      [["lookup_invoice", "allow"], ["issue_refund", "allow"], ["delete_customer", "deny"]],
    );
    assert.equal(out.toolOffers[2].request.resource.id, "delete_customer");
    assert.equal(out.asExpected, true);
  });

  it("from stdin, not as expected: exit 1; a denial decided before Cedar says so", async () => {
    const expired = JSON.stringify({
      name: "an expired token",
      identity: { id: "spiffe://acme.example/agents/auditor" },
      authentication: { issuer: "https://oidc.acme.example", expiresInSeconds: -5 },
      command: "CountTokens",
      input: { modelId: "anthropic.claude-3-5-haiku-20241022-v1:0" },
      expect: "allow",
    });
    const run = await cli(["explain", POLICIES, "-", "--tools", TOOLS], expired);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^decision: DENY  CountTokens anthropic\.claude-3-5-haiku-20241022-v1:0$/m);
    assert.match(run.stdout, /^  none \(decided before any policy was evaluated\)$/m);
    assert.match(run.stdout, /^  the token that proved spiffe:\/\/acme\.example\/agents\/auditor expired at /m);
    assert.match(run.stdout, /^Cedar request: none \(the call was denied before policy evaluation\)$/m);
    assert.match(run.stdout, /^NOT AS EXPECTED: expected allow, got deny \(the token that proved/m);
    const malformed = await cli(["explain", POLICIES, "-", "--tools", TOOLS], '{\n  "name": "x",\n  "identity": {\n}}}');
    assert.equal(malformed.code, 1);
    assert.match(malformed.stderr, /^<stdin>:4:3: not valid JSON: Unexpected non-whitespace character after JSON\n$/);
  });
});

describe("bedrock-warden test decides as the runtime does", () => {
  it("every command case of the fixture gets the decision the governed client records for the same call", async () => {
    const tools = readTools(join(root, TOOLS));
    const policies = policiesFromDirectory(join(root, POLICIES));
    const records: DecisionRecord[] = [];
    const governance = createGovernance({ environment: "production", policies, tools, onDecision: (r) => records.push(r) });
    const cliGovernance = createGovernance({ environment: "production", policies, tools });
    const { cases } = readCases(readFileSync(join(root, CASES), "utf8"), CASES);
    const commands = { Converse: ConverseCommand, ConverseStream: ConverseStreamCommand, InvokeModel: InvokeModelCommand, CountTokens: CountTokensCommand } as const;
    let compared = 0;
    for (const { value } of cases) {
      if (value.kind !== "command" || value.authentication !== undefined) continue;
      const name = value.commandName.replace(/Command$/, "") as keyof typeof commands;
      const temporary = value.credentials?.kind !== "long-term";
      const client = new GovernedBedrockRuntimeClient({
        region: value.region ?? "us-east-1",
        requestHandler: new MemoryHandler(),
        credentials: {
          accessKeyId: temporary ? "ASIATESTWARDEN" : "AKIATESTWARDEN",
          secretAccessKey: "secret",
          ...(temporary && { sessionToken: "session", expiration: new Date(Date.now() + 3_600_000) }),
        },
        governance,
      });
      const input = { ...value.input };
      if (name === "InvokeModel") input["body"] = JSON.stringify(input["body"]);
      const Command = commands[name] as new (input: never) => ConverseCommand;
      const send = () => client.send(new Command(input as never)).catch(() => undefined);
      const identity = value.identity as never;
      records.length = 0;
      if (value.task !== undefined) await runTask(identity, value.task, send, value.scope as never);
      else await runAs(identity, send, value.scope as never);
      const decided = await decideCase(cliGovernance, value);
      assert.ok(decided.ok);
      const record = records.find((r) => r.tool === undefined)!;
      assert.ok(record, value.name);
      assert.equal(decided.value.decision.effect, record.decision, value.name);
      assert.deepEqual([...decided.value.decision.policies].sort(), [...record.policies].sort(), value.name);
      assert.deepEqual(decided.value.decision.reasons, record.reasons, value.name);
      compared++;
    }
    assert.equal(compared, 6);
  });
});

// ---- decision logs -------------------------------------------------------------------------

const INVOICE = { id: "spiffe://acme.example/agents/invoice", groups: ["billing"] };
const RESEARCH = { id: "spiffe://acme.example/agents/research", groups: ["research"] };
const HAIKU_PROFILE = 'Bedrock::Model::"us.anthropic.claude-3-5-haiku-20241022-v1:0"';

function record(overrides: Partial<DecisionRecord>): DecisionRecord {
  return {
    id: randomUUID(),
    time: "2026-01-05T10:00:00.000Z",
    command: "ConverseCommand",
    workload: INVOICE,
    authentication: { verified: false, method: "declared" },
    dataSensitivity: [],
    environment: "production",
    region: "us-east-1",
    action: 'Bedrock::Action::"Converse"',
    resource: HAIKU_PROFILE,
    decision: "allow",
    policies: ["billing-may-chat-with-haiku"],
    reasons: ["billing agents may chat with Claude 3.5 Haiku, up to 2,048 output tokens"],
    errors: [],
    policySetVersion: `sha256:${"a".repeat(64)}`,
    outcome: "completed",
    durationMs: 12.5,
    ...overrides,
  };
}

/** A small log: the invoice agent (chat allowed twice, opus denied, a tool call), research, and a call with no identity. */
const RECORDS: DecisionRecord[] = [
  record({ time: "2026-01-05T10:00:00.000Z" }),
  record({ time: "2026-01-05T10:05:00.000Z", resource: 'Bedrock::Model::"anthropic.claude-3-opus-20240229-v1:0"', decision: "deny", policies: [], outcome: "denied" }),
  record({
    time: "2026-01-05T10:06:00.000Z",
    action: 'Bedrock::Action::"tool:lookup_invoice"',
    resource: 'Bedrock::Tool::"lookup_invoice"',
    policies: ["billing-may-use-read-tools"],
    outcome: "allowed",
    tool: { name: "lookup_invoice", toolUseId: "tu-1", phase: "call" },
  }),
  record({ time: "2026-01-05T11:30:00.000Z", action: 'Bedrock::Action::"ConverseStream"', outcome: "completed" }),
  record({
    time: "2026-01-04T09:00:00.000Z",
    workload: RESEARCH,
    command: "InvokeModelCommand",
    action: 'Bedrock::Action::"InvokeModel"',
    resource: 'Bedrock::Model::"us.amazon.nova-lite-v1:0"',
    // Allowed under an older policy set whose permit had another id.
    policies: ["research-legacy"],
  }),
  record({ time: "2026-01-05T12:00:00.000Z", workload: null, decision: "deny", policies: [], outcome: "denied" }),
];

function chained(records: readonly object[]): string[] {
  const state = genesisState();
  return records.map((r) => JSON.stringify(chainRecord(state, r as DecisionRecord)));
}

describe("hostile case files: a case is decided as the runtime decides it, and says so when it cannot be", { concurrency: 4 }, () => {
  const POLICIES = "test/fixtures/cli/policies";
  const TOOLS = ["--tools", "test/fixtures/cli/tools.json"];
  const billing = '"identity": {"id": "spiffe://acme.example/agents/invoice", "groups": ["billing"]}';
  const haiku = '"command": "Converse", "input": {"modelId": "anthropic.claude-3-5-haiku-20241022-v1:0", "inferenceConfig": {"maxTokens": 5}}';
  const run = async (lines: readonly string[], policies = POLICIES) => {
    const dir = mkdtempSync(join(tmpdir(), "warden-cli-hostile-"));
    try {
      writeFileSync(join(dir, "cases.jsonl"), lines.join("\n"));
      return await cli(["test", policies, join(dir, "cases.jsonl"), ...TOOLS]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it("a line that writes a key twice, or names a policy twice in expectPolicies, is malformed, never a pass", async () => {
    const result = await run([
      `{"name": "visible billing, decided as nobody", ${billing}, ${haiku}, "expect": "deny", "identity": {"id": "nobody"}}`,
      `{"name": "one id twice", ${billing}, ${haiku}, "expect": "allow", "expectPolicies": ["billing-may-chat-with-haiku", "billing-may-chat-with-haiku"]}`,
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cases\.jsonl:1: a key is written twice in one object/);
    assert.match(result.stderr, /cases\.jsonl:2: expectPolicies: names a policy twice/);
    assert.doesNotMatch(result.stdout, /^PASS/m);
  });

  it("a denial before the policies ran is a FAIL with its errors, whatever text the input puts in the reasons", async () => {
    const result = await run([
      `{"name": "a key named like a default deny", ${billing}, "tool": "issue_refund", "phase": "call", "input": {"invoiceId": "INV-1", "amount": 5, "(default deny)": 1}, "expect": "deny", "expectPolicies": []}`,
      `{"name": "a malformed region", ${billing}, ${haiku}, "region": "us-east-1\\ud800", "expect": "deny"}`,
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^FAIL a key named like a default deny: expected deny by the policies, but the case was denied before they were evaluated/m);
    assert.match(result.stdout, /^FAIL a malformed region: .*before they were evaluated .*\[errors: malformed authorization request: context\.region is not well-formed Unicode/m);
  });

  it("as the runtime: an execution without a region has none; a CountTokens body given as an object is read; an input too deep is unreadable", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-cli-runtime-"));
    try {
      mkdirSync(join(dir, "policies"));
      writeFileSync(
        join(dir, "policies", "p.cedar"),
        `permit (principal, action, resource);
@id("no-us-refunds") forbid (principal, action == Bedrock::Action::"tool:issue_refund", resource) when { context.region like "us-*" };
@id("no-huge-counts") forbid (principal, action == Bedrock::Action::"CountTokens", resource) when { context has maxTokens && context.maxTokens > 4096 };`,
      );
      const deep = `${'{"a":'.repeat(80)}1${"}".repeat(80)}`;
      const result = await run(
        [
          `{"name": "execution, no region: as governTool with no call", ${billing}, "tool": "issue_refund", "phase": "execute", "input": {"invoiceId": "I", "amount": 1}, "expect": "allow"}`,
          `{"name": "execution asked by a call in us-east-1", ${billing}, "region": "us-east-1", "tool": "issue_refund", "phase": "execute", "input": {"invoiceId": "I", "amount": 1}, "expect": "deny", "expectPolicies": ["no-us-refunds"]}`,
          `{"name": "counting a huge request", ${billing}, "command": "CountTokens", "input": {"modelId": "anthropic.claude-3-5-haiku-20241022-v1:0", "input": {"invokeModel": {"body": {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100000, "messages": []}}}}, "expect": "deny", "expectPolicies": ["no-huge-counts"]}`,
          `{"name": "too deep", ${billing}, "command": "Converse", "input": {"modelId": "anthropic.claude-3-5-haiku-20241022-v1:0", "x": ${deep}}, "expect": "allow"}`,
          `{"name": "toolUseId at offer", ${billing}, "tool": "issue_refund", "phase": "offer", "toolUseId": "t1", "expect": "allow"}`,
          `{"name": "a lifetime beyond a Date", ${billing}, ${haiku}, "credentials": {"kind": "temporary", "expiresInSeconds": -9007199254740991}, "expect": "deny"}`,
        ],
        join(dir, "policies"),
      );
      assert.match(result.stdout, /^PASS execution, no region: as governTool with no call$/m);
      assert.match(result.stdout, /^PASS execution asked by a call in us-east-1$/m);
      assert.match(result.stdout, /^PASS counting a huge request$/m);
      assert.match(result.stdout, /^FAIL too deep: expected allow, got deny \(the command input could not be read\)/m);
      assert.match(result.stderr, /cases\.jsonl:5: toolUseId: applies only to phases "call" and "execute"/);
      assert.match(result.stderr, /cases\.jsonl:6: credentials\.expiresInSeconds: must be at least -315360000/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("what a file puts in a name or a reason cannot rewrite the terminal: control characters are shown as \\uXXXX", async () => {
    const result = await run([`{"name": "opus\\r\\u001b[2KPASS all good\\u001b[8m\\u2028", ${billing}, "command": "Converse", "input": {"modelId": "anthropic.claude-3-opus-20240229-v1:0"}, "expect": "allow"}`]);
    assert.equal(result.code, 1);
    assert.ok(!/[\u0000-\u0008\u000b-\u001f\u2028]/.test(result.stdout), JSON.stringify(result.stdout));
    assert.match(result.stdout, /^FAIL opus\\u000d\\u001b\[2KPASS all good\\u001b\[8m\\u2028: expected allow/m);
  });
});

describe("inventory reads what verify-log reads", () => {
  it("follows symbolic links in a directory; a directory with no log, or a log that is not a regular file, is a usage error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-cli-inventory-"));
    try {
      mkdirSync(join(dir, "logs"));
      writeFileSync(join(dir, "real.jsonl"), chained(RECORDS).map((l) => `${l}\n`).join(""));
      symlinkSync(join(dir, "real.jsonl"), join(dir, "logs", "decisions.jsonl"));
      const linked = await cli(["inventory", join(dir, "logs")]);
      assert.equal(linked.code, 0, linked.stderr);
      assert.match(linked.stdout, /6 records in 1 file/);
      mkdirSync(join(dir, "empty"));
      const none = await cli(["inventory", join(dir, "empty")]);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /holds no decision log/);
      writeFileSync(join(dir, "d.jsonl"), "");
      symlinkSync("/dev/zero", join(dir, "d.jsonl.1-5"));
      for (const command of ["inventory", "verify-log"]) {
        const device = await cli([command, join(dir, "d.jsonl")]);
        assert.equal(device.code, 2, `${command}: ${device.stderr}`);
        assert.match(device.stderr, /d\.jsonl\.1-5 is not a regular file/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("bedrock-warden verify-log", { concurrency: 4 }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "warden-cli-log-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, lines: readonly string[]) => {
    const path = join(dir, name);
    writeFileSync(path, lines.map((l) => `${l}\n`).join(""));
    return path;
  };

  it("an intact chain: ok, the record count and the anchor to keep; exit 0", async () => {
    const lines = chained(RECORDS);
    const path = write("intact.jsonl", lines);
    const run = await cli(["verify-log", path]);
    assert.equal(run.code, 0, run.stderr);
    const last = JSON.parse(lines.at(-1)!) as { hash: string };
    assert.equal(run.stdout, `ok: 6 records in 1 file\nlast: 6:${last.hash}\n`);
    // The anchor printed is what --to takes.
    const anchored = await cli(["verify-log", path, "--to", `6:${last.hash}`]);
    assert.equal(anchored.code, 0, anchored.stderr);
    const beyond = await cli(["verify-log", path, "--to", "7"]);
    assert.equal(beyond.code, 1);
    assert.match(beyond.stderr, /intact\.jsonl:7: missing: the log ends at seq 6, but the anchor says seq 7 was written/);
  });

  it("records the writer lost, chained as a records-dropped line: ok, saying how many", async () => {
    const state = genesisState();
    const lines = [JSON.stringify(chainRecord(state, RECORDS[0] as DecisionRecord)), chainEvent(state, "records-dropped", { time: "2026-01-01T00:00:00.000Z", count: 4 }).text, JSON.stringify(chainRecord(state, RECORDS[1] as DecisionRecord))];
    const run = await cli(["verify-log", write("dropped.jsonl", lines)]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^ok: 2 records in 1 file \(and 4 records its writer could not keep, as its records-dropped lines say\)\n/);
  });

  it("an empty log verifies, with a note that it proves nothing; with --to it fails as cut", async () => {
    const path = write("emptied.jsonl", []);
    const run = await cli(["verify-log", path]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "ok: 0 records in 1 file\n");
    assert.match(run.stderr, /^note: the log holds no records, so nothing shows whether it ever held some: pass --to <seq>:<hash>/);
    const anchored = await cli(["verify-log", path, "--to", "6"]);
    assert.equal(anchored.code, 1);
    assert.match(anchored.stderr, /missing: the log ends at seq 0, but the anchor says seq 6 was written/);
    assert.doesNotMatch(anchored.stderr, /note:/);
    // A log with records gets no note.
    const intact = await cli(["verify-log", write("not-empty.jsonl", chained(RECORDS))]);
    assert.equal(intact.stderr, "");
  });

  it("--key-file verifies a log written with a chain key; without it the log fails; a short key is a usage error", async () => {
    const keyed = mkdtempSync(join(dir, "keyed-"));
    const keyFile = join(keyed, "chain.key");
    writeFileSync(keyFile, randomBytes(32));
    const sink = createJsonlSink({ path: join(keyed, "decisions.jsonl"), flushIntervalMs: 0, chainKey: readFileSync(keyFile) });
    for (const r of RECORDS) sink.write(r);
    await sink.close();
    const ok = await cli(["verify-log", join(keyed, "decisions.jsonl"), "--key-file", keyFile]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^ok: 6 records in 1 file\n/);
    const without = await cli(["verify-log", join(keyed, "decisions.jsonl")]);
    assert.equal(without.code, 1);
    assert.match(without.stderr, /decisions\.jsonl:1: hash-mismatch/);
    writeFileSync(join(keyed, "short.key"), "too short");
    const short = await cli(["verify-log", join(keyed, "decisions.jsonl"), "--key-file", join(keyed, "short.key")]);
    assert.equal(short.code, 2);
    assert.match(short.stderr, /must be at least 32 bytes/);
    const missing = await cli(["verify-log", join(keyed, "decisions.jsonl"), "--key-file", join(keyed, "nowhere.key")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--key-file: cannot read/);
  });

  it("--log-name verifies a log written with a chain key and a name; another name fails; it needs --key-file and a name's shape", async () => {
    const keyed = mkdtempSync(join(dir, "named-"));
    const keyFile = join(keyed, "chain.key");
    writeFileSync(keyFile, randomBytes(32));
    const path = join(keyed, "decisions.jsonl");
    const sink = createJsonlSink({ path, flushIntervalMs: 0, chainKey: readFileSync(keyFile), logName: "payments-prod" });
    for (const r of RECORDS) sink.write(r);
    await sink.close();
    const ok = await cli(["verify-log", path, "--key-file", keyFile, "--log-name", "payments-prod"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^ok: 6 records in 1 file\n/);
    for (const args of [["--log-name", "search-prod"], []]) {
      const other = await cli(["verify-log", path, "--key-file", keyFile, ...args]);
      assert.equal(other.code, 1, args.join(" "));
      assert.match(other.stderr, /decisions\.jsonl:1: hash-mismatch: .*not written with this key and log name/);
    }
    const noKey = await cli(["verify-log", path, "--log-name", "payments-prod"]);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /--log-name needs --key-file/);
    const badName = await cli(["verify-log", path, "--key-file", keyFile, "--log-name", "payments prod"]);
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /--log-name must be 1 to 200 letters/);
  });

  it("a directory with a file named like a rotated file beside a log holds two logs: refused, never verified as the decoy alone", async () => {
    const lines = chained(RECORDS);
    const decoyDir = mkdtempSync(join(dir, "decoy-"));
    const tampered = [...lines];
    tampered[1] = JSON.stringify({ ...(JSON.parse(tampered[1]!) as object), decision: "allow" });
    writeFileSync(join(decoyDir, "decisions.jsonl"), tampered.map((l) => `${l}\n`).join(""));
    writeFileSync(join(decoyDir, "x.1-1"), `${lines[0]}\n`);
    const run = await cli(["verify-log", decoyDir]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /holds several logs \(decisions\.jsonl, x\)/);
  });

  it("a tampered copy fails at the changed line: file:line: kind: message, exit 1", async () => {
    const lines = chained(RECORDS);
    const tampered = [...lines];
    const line = JSON.parse(tampered[1]!) as Record<string, unknown>;
    tampered[1] = JSON.stringify({ ...line, decision: "allow" }); // the opus denial rewritten as an allow
    const path = write("tampered.jsonl", tampered);
    const run = await cli(["verify-log", path]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:2: hash-mismatch: seq 2: the content does not match its hash`));
    assert.equal(run.stdout, "1 record verified before the problem\n");
    const deleted = write("deleted.jsonl", [lines[0]!, lines[1]!, lines[3]!, lines[4]!]);
    const gap = await cli(["verify-log", deleted]);
    assert.equal(gap.code, 1);
    assert.match(gap.stderr, /deleted\.jsonl:3: missing: seq 4 follows seq 2/);
  });

  it("rotated files beside the log are verified in chain order; --json; no log there is a usage error", async () => {
    const lines = chained(RECORDS);
    const rotatedDir = mkdtempSync(join(dir, "rotated-"));
    writeFileSync(join(rotatedDir, "decisions.jsonl.000000000001-000000000004"), lines.slice(0, 4).map((l) => `${l}\n`).join(""));
    writeFileSync(join(rotatedDir, "decisions.jsonl"), lines.slice(4).map((l) => `${l}\n`).join(""));
    const run = await cli(["verify-log", rotatedDir]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^ok: 6 records in 2 files\n/);
    const json = await cli(["verify-log", join(rotatedDir, "decisions.jsonl"), "--json"]);
    assert.equal(json.code, 0);
    const result = JSON.parse(json.stdout);
    assert.equal(result.ok, true);
    assert.equal(result.records, 6);
    assert.equal(result.files.length, 2);
    const nothing = await cli(["verify-log", join(dir, "nowhere.jsonl")]);
    assert.equal(nothing.code, 2);
    const badAnchor = await cli(["verify-log", rotatedDir, "--from", "zero"]);
    assert.equal(badAnchor.code, 2);
    assert.match(badAnchor.stderr, /--from must be <seq> or <seq>:<hash>/);
  });
});

describe("a log written by the JSON Lines sink, rotated", { concurrency: 2 }, () => {
  let dir: string;
  let last: { seq: number; hash: string } | undefined;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "warden-cli-sink-"));
    const sink = createJsonlSink({ path: join(dir, "decisions.jsonl"), maxBytes: 2048, flushIntervalMs: 0 });
    for (let i = 0; i < 4; i++) {
      for (const r of RECORDS) {
        sink.write(r);
        await sink.flush();
      }
    }
    await sink.close();
    last = sink.last;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("verify-log reads every rotated file in chain order, and checks the sink's anchor", async () => {
    assert.ok(last);
    const run = await cli(["verify-log", join(dir, "decisions.jsonl"), "--to", `${last.seq}:${last.hash}`]);
    assert.equal(run.code, 0, run.stderr);
    const files = Number(/^ok: 24 records in (\d+) files$/m.exec(run.stdout)?.[1]);
    assert.ok(files > 2, run.stdout);
  });

  it("inventory counts every record across the rotated files", async () => {
    const run = await cli(["inventory", dir, "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout);
    assert.equal(out.records, 24);
    assert.ok(out.files.length > 2);
    assert.deepEqual(out.identities[0].calls, { allowed: 8, denied: 4 });
  });
});

describe("bedrock-warden inventory", { concurrency: 4 }, () => {
  let dir: string;
  let logPath: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "warden-cli-inv-"));
    const state = genesisState();
    const lines = RECORDS.map((r) => JSON.stringify(chainRecord(state, r)));
    // A chain event (not a record) and a line that is no record at all.
    lines.splice(3, 0, chainEvent(state, "chain-break", { reason: "truncated-line", file: "x" }).text);
    lines.splice(5, 0, '{"time": "yesterday", "workload": null}');
    logPath = join(dir, "decisions.jsonl");
    writeFileSync(logPath, lines.map((l) => `${l}\n`).join(""));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("what each identity did; a malformed line is reported with its line and skipped (exit 1)", async () => {
    const run = await cli(["inventory", logPath]);
    assert.equal(run.code, 1);
    assert.equal(run.stderr, `${logPath}:6: malformed record (time must be an ISO 8601 date; action must be an entity reference string; resource must be an entity reference string; decision must be "allow" or "deny"; policies must be an array of policy ids)\n`);
    assert.equal(
      run.stdout,
      [
        "spiffe://acme.example/agents/invoice",
        "  groups: billing",
        "  calls: 2 allowed, 1 denied; tool decisions: 1 allowed, 0 denied",
        "  last active: 2026-01-05T11:30:00.000Z",
        "  models: us.anthropic.claude-3-5-haiku-20241022-v1:0 (2)",
        "  tools: lookup_invoice (1)",
        "spiffe://acme.example/agents/research",
        "  groups: research",
        "  calls: 1 allowed, 0 denied; tool decisions: 0 allowed, 0 denied",
        "  last active: 2026-01-04T09:00:00.000Z",
        "  models: us.amazon.nova-lite-v1:0 (1)",
        "  tools: none",
        "no identity: 1 denied, 0 allowed",
        "2 identities, 6 records in 1 file, 1 malformed line",
        "",
      ].join("\n"),
    );
  });

  it("--policies: the permits each identity holds, used, in scope or unused; principals never seen", async () => {
    const run = await cli(["inventory", dir, "--policies", POLICIES, "--tools", TOOLS]);
    assert.equal(run.code, 1);
    const out = run.stdout;
    assert.match(out, /^  permissions granted by test\/fixtures\/cli\/policies \(conditions not read\):$/m);
    assert.match(
      out,
      /^    used      billing-may-chat-with-haiku \(test\/fixtures\/cli\/policies\/billing\.cedar:2\): in \[Converse, ConverseStream\] on resource in Bedrock::Model::"anthropic\.claude-3-5-haiku-20241022-v1:0"; used for Converse, ConverseStream$/m,
    );
    assert.match(out, /^    used      billing-may-use-read-tools \(test\/fixtures\/cli\/policies\/billing\.cedar:11\): in ToolUse on any resource; used for tool:lookup_invoice$/m);
    assert.match(out, /^    unused    billing-may-refund \(test\/fixtures\/cli\/policies\/billing\.cedar:16\): tool:issue_refund on any resource$/m);
    assert.match(
      out,
      /^    in-scope  research-nova-profiles \(test\/fixtures\/cli\/policies\/research\.cedar:1\): in ModelInvocation on resource in Bedrock::Provider::"amazon"; used for InvokeModel$/m,
    );
    assert.doesNotMatch(out, /^    \S+ +research-nova-profiles[^\n]*\n[^\n]*billing/m);
    assert.match(out, /^principals the policies name that the log never shows:\n  Bedrock::Workload::"spiffe:\/\/acme\.example\/agents\/auditor": auditor-verified-only$/m);
    assert.match(out, /^2 identities, 6 records in 1 file, 1 malformed line; 1 unused permission \(least-privilege candidates\)$/m);
  });

  it("--json: the same inventory as one object", async () => {
    const run = await cli(["inventory", logPath, "--policies", POLICIES, "--tools", TOOLS, "--json"]);
    assert.equal(run.code, 1);
    const out = JSON.parse(run.stdout);
    assert.equal(out.records, 6);
    assert.equal(out.chainEvents, 1);
    assert.deepEqual(out.malformed, [{ file: logPath, line: 6, message: out.malformed[0].message }]);
    const invoice = out.identities[0];
    assert.equal(invoice.id, INVOICE.id);
    assert.deepEqual(invoice.calls, { allowed: 2, denied: 1 });
    assert.deepEqual(invoice.models, { "us.anthropic.claude-3-5-haiku-20241022-v1:0": 2 });
    assert.deepEqual(
      invoice.permissions.map((p: { id: string; status: string }) => [p.id, p.status]),
      [["billing-may-chat-with-haiku", "used"], ["billing-may-use-read-tools", "used"], ["billing-may-refund", "unused"]],
    );
    assert.deepEqual(out.unidentified, { allowed: 0, denied: 1 });
    assert.deepEqual(out.principalsNeverSeen, [{ principal: 'Bedrock::Workload::"spiffe://acme.example/agents/auditor"', policies: ["auditor-verified-only"] }]);
  });

  it("a clean log exits 0; a missing log is a usage error", async () => {
    const sub = mkdtempSync(join(dir, "clean-"));
    writeFileSync(join(sub, "decisions.jsonl"), chained(RECORDS.slice(0, 2)).map((l) => `${l}\n`).join(""));
    const run = await cli(["inventory", sub]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^1 identity, 2 records in 1 file$/m);
    const missing = await cli(["inventory", join(dir, "nowhere")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nowhere: no such file or directory \(the decision log\)/);
  });
});
