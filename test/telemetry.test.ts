import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { CountTokensCommand } from "@aws-sdk/client-bedrock-runtime";
import { SpanKind } from "@opentelemetry/api";
import { exporter, tracerProvider } from "./support/tracing.js";
import { MemoryHandler } from "./support/memory-handler.js";
import { createGovernance, GEN_AI, GovernedBedrockRuntimeClient, runAs, WARDEN } from "../src/index.js";
import { BASE_POLICIES, converseInput, CREDENTIALS, harness, HAIKU, invoiceAgent, TITAN } from "./support/governance.js";

beforeEach(() => exporter.reset());

const SECRET_PROMPT = "canary-prompt-7f3a";

describe("spans", () => {
  it("an allowed Converse: `chat {model}` CLIENT span with GenAI request, usage and identity/decision attributes", async () => {
    const { client, records } = harness();
    await runAs(invoiceAgent, () =>
      client.converse(converseInput(HAIKU, { inferenceConfig: { maxTokens: 256, temperature: 0.2, topP: 0.9, stopSequences: ["END"] } })),
      { purpose: "month-end close", dataSensitivity: ["financial"] },
    );
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.name, `chat ${HAIKU}`);
    assert.equal(span?.kind, SpanKind.CLIENT);
    const a = span!.attributes;
    assert.equal(a[GEN_AI.OPERATION_NAME], "chat");
    assert.equal(a[GEN_AI.PROVIDER_NAME], "aws.bedrock");
    assert.equal(a[GEN_AI.REQUEST_MODEL], HAIKU);
    assert.equal(a[GEN_AI.REQUEST_MAX_TOKENS], 256);
    assert.equal(a[GEN_AI.REQUEST_TEMPERATURE], 0.2);
    assert.equal(a[GEN_AI.REQUEST_TOP_P], 0.9);
    assert.deepEqual(a[GEN_AI.REQUEST_STOP_SEQUENCES], ["END"]);
    assert.equal(a[GEN_AI.USAGE_INPUT_TOKENS], 11);
    assert.equal(a[GEN_AI.USAGE_OUTPUT_TOKENS], 7);
    assert.deepEqual(a[GEN_AI.RESPONSE_FINISH_REASONS], ["end_turn"]);
    assert.equal(a[WARDEN.WORKLOAD_ID], invoiceAgent.id);
    assert.deepEqual(a[WARDEN.WORKLOAD_GROUPS], ["billing"]);
    assert.equal(a[WARDEN.PURPOSE], "month-end close");
    assert.deepEqual(a[WARDEN.DATA_SENSITIVITY], ["financial"]);
    assert.equal(a[WARDEN.ENVIRONMENT], "test");
    assert.equal(a[WARDEN.DECISION], "allow");
    assert.deepEqual(a[WARDEN.DECISION_POLICIES], ["billing-anthropic"]);
    assert.deepEqual(a[WARDEN.DECISION_REASONS], ["billing agents may invoke Anthropic models"]);
    assert.equal(a[WARDEN.ACTION], 'Bedrock::Action::"Converse"');
    assert.equal(a[WARDEN.RESOURCE], `Bedrock::Model::"${HAIKU}"`);
    assert.equal(a[WARDEN.POLICY_SET_VERSION], records[0]?.policySetVersion);
    assert.equal(a[WARDEN.DECISION_ID], records[0]?.id);
    assert.equal(a[WARDEN.ATTRIBUTION], "full");
    assert.equal(span?.status.code, 0);
    assert.equal(records[0]?.traceId, span?.spanContext().traceId);
    assert.equal(records[0]?.spanId, span?.spanContext().spanId);
  });

  it("a denied call gets a span too, with status error and error.type", async () => {
    const { client } = harness();
    await assert.rejects(runAs(invoiceAgent, () => client.converse(converseInput(TITAN))));
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.name, `chat ${TITAN}`);
    assert.equal(span?.status.code, 2);
    assert.equal(span?.attributes[GEN_AI.ERROR_TYPE], "ERR_ACCESS_DENIED");
    assert.equal(span?.attributes[WARDEN.DECISION], "deny");
  });

  it("a failed call (the service answers an error) ends its span with the error type and is recorded as failed", async () => {
    const { jsonResponse } = await import("./support/memory-handler.js");
    const handler = new MemoryHandler(() => jsonResponse({ message: "slow down" }, 429, { "x-amzn-errortype": "ThrottlingException" }));
    const { client, records } = harness(BASE_POLICIES, handler);
    await assert.rejects(runAs(invoiceAgent, () => client.converse(converseInput())), /slow down/);
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.attributes[GEN_AI.ERROR_TYPE], "ThrottlingException");
    assert.equal(records[0]?.outcome, "failed");
    assert.equal(records[0]?.error, "ThrottlingException");
    assert.equal(records[0]?.decision, "allow");
  });

  it("commands that invoke no model get an RPC-style span", async () => {
    const { client } = harness(`permit (principal, action == Bedrock::Action::"CountTokens", resource);`);
    await runAs(invoiceAgent, () => client.send(new CountTokensCommand({ modelId: HAIKU, input: { converse: { messages: converseInput().messages } } })));
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.name, "BedrockRuntime.CountTokens");
    assert.equal(span?.attributes[GEN_AI.RPC_METHOD], "CountTokens");
    assert.equal(span?.attributes[GEN_AI.OPERATION_NAME], undefined);
  });

  it("never records prompt or response content unless captureContent is on", async () => {
    const input = { modelId: HAIKU, system: [{ text: `system ${SECRET_PROMPT}` }], messages: [{ role: "user" as const, content: [{ text: SECRET_PROMPT }] }] };
    const { client, records } = harness();
    await runAs(invoiceAgent, () => client.converse(input));
    assert.equal(records.length, 1);
    assert.ok(!JSON.stringify(records).includes(SECRET_PROMPT), "records never hold content");
    assert.ok(!JSON.stringify(exporter.getFinishedSpans().map((s) => [s.attributes, s.events])).includes(SECRET_PROMPT));
    exporter.reset();

    const capturing = new GovernedBedrockRuntimeClient({
      region: "us-east-1",
      credentials: CREDENTIALS,
      requestHandler: new MemoryHandler(),
      governance: createGovernance({ environment: "test", policies: BASE_POLICIES, tracerProvider, captureContent: true }),
    });
    await runAs(invoiceAgent, () => capturing.converse(input));
    const [span] = exporter.getFinishedSpans();
    assert.match(String(span?.attributes[GEN_AI.INPUT_MESSAGES]), new RegExp(SECRET_PROMPT));
    assert.match(String(span?.attributes[GEN_AI.SYSTEM_INSTRUCTIONS]), new RegExp(SECRET_PROMPT));
    assert.match(String(span?.attributes[GEN_AI.OUTPUT_MESSAGES]), /hello/);
  });

  it("the call runs inside its span: spans made beneath it are its children", async () => {
    const { trace } = await import("@opentelemetry/api");
    const inner = {
      requests: 0,
      async handle() {
        trace.getTracer("http").startSpan("inner-http").end();
        return { response: (await new MemoryHandler().handle({} as never)).response };
      },
    };
    const { client } = harness(BASE_POLICIES, inner as unknown as MemoryHandler);
    await runAs(invoiceAgent, () => client.converse(converseInput()));
    const spans = exporter.getFinishedSpans();
    const chat = spans.find((s) => s.name.startsWith("chat"));
    const http = spans.find((s) => s.name === "inner-http");
    assert.equal(http?.parentSpanContext?.spanId, chat?.spanContext().spanId);
  });
});
