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
