import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { describe, it } from "node:test";
import { ConverseCommand, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from "@opentelemetry/sdk-logs";
import {
  createGovernance,
  createJsonlSink,
  deniedToolResults,
  governTool,
  GovernedBedrockRuntimeClient,
  otelLogsSink,
  runAs,
  type DecisionRecord,
} from "../src/index.js";
import { maskSecretShapes } from "../src/audit/secret-shapes.js";
import { converseStreamFrames, eventStreamResponse } from "./support/event-stream.js";
import { HAIKU, invoiceAgent } from "./support/governance.js";
import { converseReply, jsonResponse, MemoryHandler } from "./support/memory-handler.js";
import { exporter, tracerProvider } from "./support/tracing.js";

// Canaries: each must never appear in any evidence unless content capture is on.
const CANARY = {
  prompt: "CANARY-PROMPT-7f3a",
  system: "CANARY-SYSTEM-91bd",
  response: "CANARY-RESPONSE-c24e",
  streamed: "CANARY-STREAMED-5d10",
  toolInput: "CANARY-TOOLINPUT-e8a2",
  toolResult: "CANARY-TOOLRESULT-33f9",
  secretKey: "CANARY-SECRET-KEY-0b7c",
  sessionToken: "CANARY-SESSION-TOKEN-a6d4",
  // The model's words in a tool input's shape: a key the schema does not declare, a whole input that is a number.
  toolKey: "CANARY_TOOLKEY_4d1e",
  toolNumber: "4111111111111111",
} as const;

const TOOLS = [
  { name: "lookup_customer", effect: "read" as const, inputSchema: { type: "object", properties: { email: { type: "string" }, note: { type: "string" } } } },
];
const POLICIES = `
@id("billing") permit (principal in Bedrock::Group::"billing", action in Bedrock::Action::"ModelInvocation", resource);
@id("lookups") permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"tool:lookup_customer", resource);
@id("no-canary-notes") forbid (principal, action == Bedrock::Action::"tool:lookup_customer", resource)
  when { context has input && context.input has note && context.input.note like "*CANARY*" };
`;

async function runEverything(captureContent: boolean) {
  exporter.reset();
  const dir = mkdtempSync(join(tmpdir(), "warden-redaction-"));
  const logExporter = new InMemoryLogRecordExporter();
  const loggerProvider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter: logExporter })] });
  const file = createJsonlSink({ path: join(dir, "decisions.jsonl"), flushIntervalMs: 5 });
  const records: DecisionRecord[] = [];
  const governance = createGovernance({
    environment: "test",
    policies: POLICIES,
    tools: TOOLS,
    toolEnforcement: "result",
    tracerProvider,
    captureContent,
    onDecision: (r) => records.push(r),
    sinks: [file, otelLogsSink({ loggerProvider })],
  });
  const handler = new MemoryHandler((request) => {
    if (request.path.endsWith("/converse-stream")) return eventStreamResponse(converseStreamFrames([CANARY.streamed, " more"])).response;
    const body = JSON.parse(new TextDecoder().decode(request.body as Uint8Array)) as { toolConfig?: unknown };
    if (body.toolConfig) {
      return jsonResponse({
        ...converseReply(""),
        output: {
          message: {
            role: "assistant",
            content: [
              { toolUse: { toolUseId: "t-ok", name: "lookup_customer", input: { email: CANARY.toolInput } } },
              { toolUse: { toolUseId: "t-denied", name: "lookup_customer", input: { email: "x", note: CANARY.toolInput } } },
              { toolUse: { toolUseId: "t-key", name: "lookup_customer", input: { email: "x", [CANARY.toolKey]: "y" } } },
              { toolUse: { toolUseId: "t-number", name: "lookup_customer", input: Number(CANARY.toolNumber) } },
            ],
          },
        },
        stopReason: "tool_use",
      });
    }
    return jsonResponse(converseReply(CANARY.response));
  });
  const client = new GovernedBedrockRuntimeClient({
    region: "us-east-1",
    credentials: { accessKeyId: "ASIACANARYKEYID00001", secretAccessKey: CANARY.secretKey, sessionToken: CANARY.sessionToken, expiration: new Date(Date.now() + 600_000) },
    requestHandler: handler,
    governance,
    maxAttempts: 1,
  });
  const errors: unknown[] = [];
  const messages = [{ role: "user" as const, content: [{ text: CANARY.prompt }] }];
  const system = [{ text: CANARY.system }];
  await runAs(invoiceAgent, async () => {
    await client.send(new ConverseCommand({ modelId: HAIKU, messages, system }));
    const { stream } = await client.send(new ConverseStreamCommand({ modelId: HAIKU, messages, system }));
    for await (const _ of stream ?? []) void _;
    const withTools = await client.send(
      new ConverseCommand({ modelId: HAIKU, messages, toolConfig: { tools: [{ toolSpec: { name: "lookup_customer", inputSchema: { json: TOOLS[0]!.inputSchema } } }] } }),
    );
    errors.push(...deniedToolResults(withTools));
    const lookup = governTool(TOOLS[0]!, async () => ({ customer: CANARY.toolResult }), { governance });
    await lookup({ email: CANARY.toolInput });
    await lookup({ email: "x", note: CANARY.toolInput }).catch((error: unknown) => errors.push(error));
    await lookup({ email: "x", [CANARY.toolKey]: "y" } as never).catch((error: unknown) => errors.push(error));
    // A denied model call carrying the canary prompt: its error says why, never what was asked.
    await client.send(new ConverseCommand({ modelId: "amazon.titan-text-express-v1", messages, system })).catch((error: unknown) => errors.push(error));
  });
  await governance.flush();
  await file.close();
  const evidence = {
    spans: JSON.stringify(exporter.getFinishedSpans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status, links: s.links }))),
    records: JSON.stringify(records),
    file: readFileSync(join(dir, "decisions.jsonl"), "utf8"),
    logs: JSON.stringify(logExporter.getFinishedLogRecords().map((l) => ({ body: l.body, attributes: l.attributes }))),
    errors: errors.map((e) => `${String(e)} ${inspect(e, { depth: 6 })} ${JSON.stringify(e)}`).join("\n"),
  };
  client.destroy();
  rmSync(dir, { recursive: true, force: true });
  return { evidence, records, errors };
}

describe("redaction: canaries never reach the evidence unless content capture is on", () => {
  it("prompts, responses, streamed text, tool inputs and results, secret keys and session tokens: in no span, record, log line, log record or error", async () => {
    const { evidence, records, errors } = await runEverything(false);
    assert.ok(records.length >= 7, `calls and tool decisions were recorded (${records.length})`);
    assert.ok(errors.length >= 2, "denials happened");
    for (const [where, text] of Object.entries(evidence)) {
      for (const [name, canary] of Object.entries(CANARY)) {
        assert.ok(!text.includes(canary), `${name} leaked into ${where}`);
      }
    }
  });

  it("with captureContent, the spans do carry the content (so the test above can see a leak)", async () => {
    const { evidence } = await runEverything(true);
    for (const canary of [CANARY.prompt, CANARY.system, CANARY.response, CANARY.streamed, CANARY.toolInput, CANARY.toolResult]) {
      assert.ok(evidence.spans.includes(canary), `${canary} captured on the spans`);
    }
    // Content capture is about spans: records, logs and errors still never hold content, nor any secret.
    for (const where of ["records", "file", "logs", "errors"] as const) {
      for (const canary of Object.values(CANARY)) assert.ok(!evidence[where].includes(canary), `${canary} in ${where}`);
    }
    for (const canary of [CANARY.secretKey, CANARY.sessionToken]) assert.ok(!evidence.spans.includes(canary));
  });
});

describe("redaction: what a credentials or region provider says", () => {
  // Shaped like real credentials: a provider (ours to call, not ours to write) may quote them in its error.
  const SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  const SESSION_TOKEN = `IQoJb3JpZ2luX2VjEHcaCXVzLWVhc3QtMSJHMEUCIQDn4${"Example0Token9/+".repeat(20)}`; // real ones are 300+ characters
  const ACCESS_KEY_ID = "ASIAQEXAMPLE7KEYID42";
  const JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmUifQ.c2lnbmF0dXJlLWJ5dGVz";

  it("is recorded without what looks like a credential, keeping the words that say what failed", async () => {
    const records: DecisionRecord[] = [];
    const governance = createGovernance({ environment: "test", policies: POLICIES, tools: TOOLS, tracerProvider, onDecision: (r) => records.push(r) });
    const said = `credential_process for profile "billing-dev" printed ${ACCESS_KEY_ID} ${SECRET_ACCESS_KEY} ${SESSION_TOKEN} (web identity ${JWT})`;
    const failing = new GovernedBedrockRuntimeClient({
      region: "us-east-1",
      credentials: async () => {
        throw new Error(said);
      },
      requestHandler: new MemoryHandler(),
      governance,
      maxAttempts: 1,
    });
    const noRegion = new GovernedBedrockRuntimeClient({
      region: async () => {
        throw new Error(`region lookup failed for token ${JWT}`);
      },
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "x" },
      requestHandler: new MemoryHandler(),
      governance,
      maxAttempts: 1,
    });
    exporter.reset();
    const errors: unknown[] = [];
    await runAs(invoiceAgent, async () => {
      await failing.send(new ConverseCommand({ modelId: HAIKU, messages: [{ role: "user", content: [{ text: "hi" }] }] })).catch((e: unknown) => errors.push(e));
      await noRegion.send(new ConverseCommand({ modelId: HAIKU, messages: [{ role: "user", content: [{ text: "hi" }] }] })).catch((e: unknown) => errors.push(e));
    });
    failing.destroy();
    noRegion.destroy();
    assert.equal(records.length, 2);
    const evidence = {
      records: JSON.stringify(records),
      spans: JSON.stringify(exporter.getFinishedSpans().map((s) => ({ attributes: s.attributes, events: s.events, status: s.status }))),
      errors: errors.map((e) => `${String(e)} ${inspect(e, { depth: 6 })}`).join("\n"),
    };
    for (const [where, text] of Object.entries(evidence)) {
      for (const secret of [SECRET_ACCESS_KEY, SESSION_TOKEN, ACCESS_KEY_ID, JWT, JWT.split(".")[2]!]) assert.ok(!text.includes(secret), `${secret.slice(0, 8)}… in ${where}`);
      assert.match(text, /credential_process for profile \\?"billing-dev\\?" printed \[masked\]/, where);
    }
    assert.match(evidence.records, /region lookup failed for token \[masked\]/);
  });
});

describe("maskSecretShapes", () => {
  it("masks credential shapes and keeps ordinary words, names, ARNs and paths", () => {
    const kept = [
      "User: arn:aws:sts::123456789012:assumed-role/bedrock-warden-agents/session is not authorized to perform: sts:AssumeRole",
      "Could not load credentials from any providers; profile billing-dev in /home/app/.aws/credentials",
      "anthropic.claude-3-5-sonnet-20240620-v1:0 ExpiredTokenException InvalidClientTokenId",
      "a".repeat(40) + " " + "0123456789".repeat(5),
    ];
    for (const text of kept) assert.equal(maskSecretShapes(text), text);
    assert.equal(maskSecretShapes("key AKIAIOSFODNN7EXAMPLE."), "key [masked].");
    assert.equal(maskSecretShapes("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end"), "secret [masked] end");
    // Written URL-encoded or JSON-escaped, after an "=", or where the cut would fall: masked all the same.
    assert.equal(maskSecretShapes("SecretAccessKey=wJalrXUtnFEMI%2FK7MDENG%2FbPxRfiCYEXAMPLEKEY&x=1"), "SecretAccessKey=[masked]&x=1");
    assert.equal(maskSecretShapes('{"SecretAccessKey":"wJalrXUtnFEMI\\/K7MDENG\\/bPxRfiCYEXAMPLEKEY"}'), '{"SecretAccessKey":"[masked]"}');
    assert.ok(!maskSecretShapes(`${"x ".repeat(490)}token=${"AbCd1234".repeat(100)}`).includes("AbCd"));
    // Names joined by "-", "_" or "." keep their words (an SSO profile or role, a path).
    for (const name of ["AdministratorAccess-123456789012", "AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6a7b", "/home/Runner2/work/BedrockAgents/credentials", "BedrockWorkloadsProd2024-Readonly"]) {
      assert.equal(maskSecretShapes(`profile ${name} failed`), `profile ${name} failed`);
    }
    assert.equal(maskSecretShapes("jwt eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.sig-nature_1 end"), "jwt [masked] end");
    const long = maskSecretShapes("x ".repeat(2000));
    assert.ok(long.length < 1020 && long.endsWith("… (cut)"));
  });
});
