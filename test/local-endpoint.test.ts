import assert from "node:assert/strict";
import http from "node:http";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  ApplyGuardrailCommand,
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  CountTokensCommand,
  GetAsyncInvokeCommand,
  InvokeGuardrailChecksCommand,
  InvokeModelCommand,
  InvokeModelWithBidirectionalStreamCommand,
  InvokeModelWithResponseStreamCommand,
  ListAsyncInvokesCommand,
  ModelStreamErrorException,
  StartAsyncInvokeCommand,
  ThrottlingException,
  ValidationException,
  type BedrockRuntimeClientConfig,
  type ConverseStreamOutput,
} from "@aws-sdk/client-bedrock-runtime";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import {
  LOCAL_BEDROCK_CREDENTIALS,
  startLocalBedrock,
  type LocalBedrock,
  type ReceivedRequest,
} from "../src/local-endpoint/index.js";

const MODEL_ARN = "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0";
const USER = [{ role: "user" as const, content: [{ text: "What is the weather in Lyon?" }] }];
const TOOL_INPUT = { city: "Lyon", units: "metric", days: [1, 2, 3], note: "naïve café ☕ — 東京" };

type Protocol = "h2" | "h1";
const PROTOCOLS: Protocol[] = ["h2", "h1"];

interface CapturedResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: { destroy(): void };
}

let server: LocalBedrock;
const clients: BedrockRuntimeClient[] = [];

/** A client against the local endpoint, over HTTP/2 (the SDK's default handler) or HTTP/1.1. */
function clientFor(protocol: Protocol, config: Partial<BedrockRuntimeClientConfig> = {}) {
  const client = new BedrockRuntimeClient({
    endpoint: server.url,
    region: server.region,
    credentials: server.credentials,
    maxAttempts: 1,
    ...(protocol === "h1" ? { requestHandler: new NodeHttpHandler() } : {}),
    ...config,
  });
  clients.push(client);
  // Keeps each raw HTTP response, so tests can read headers the SDK does not surface and destroy
  // the body of an abandoned stream.
  const responses: CapturedResponse[] = [];
  client.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      responses.push(result.response as CapturedResponse);
      return result;
    },
    { step: "deserialize", name: "captureRawResponse" },
  );
  return { client, responses };
}

function lastRequest(): ReceivedRequest {
  const request = server.requests.at(-1);
  assert.ok(request, "the endpoint recorded no request");
  return request;
}

async function collect<T>(stream: AsyncIterable<T> | undefined): Promise<T[]> {
  const events: T[] = [];
  for await (const event of stream ?? []) events.push(event);
  return events;
}

function anthropicEvents(chunks: { chunk?: { bytes?: Uint8Array } }[]): Array<Record<string, any>> {
  return chunks.map((event) => JSON.parse(new TextDecoder().decode(event.chunk?.bytes)) as Record<string, any>);
}

before(async () => {
  server = await startLocalBedrock();
});

after(async () => {
  for (const client of clients) client.destroy();
  await server.close();
});

beforeEach(() => server.reset());

for (const protocol of PROTOCOLS) {
  describe(`every operation through the SDK over ${protocol === "h2" ? "HTTP/2" : "HTTP/1.1"}`, () => {
    const httpVersion = protocol === "h2" ? "2.0" : "1.1";

    test("Converse returns text and tool uses", async () => {
      const { client } = clientFor(protocol);
      server.reply = () => ({
        text: "Checking.",
        toolUses: [{ toolUseId: "tooluse_1", name: "get_weather", input: TOOL_INPUT }],
        usage: { inputTokens: 12, outputTokens: 7 },
      });
      const out = await client.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER }));
      assert.deepEqual(out.output?.message, {
        role: "assistant",
        content: [{ text: "Checking." }, { toolUse: { toolUseId: "tooluse_1", name: "get_weather", input: TOOL_INPUT } }],
      });
      assert.equal(out.stopReason, "tool_use");
      assert.deepEqual(out.usage, { inputTokens: 12, outputTokens: 7, totalTokens: 19 });
      assert.equal(typeof out.metrics?.latencyMs, "number");
      assert.match(out.$metadata.requestId ?? "", /^[0-9a-f-]{36}$/);

      const request = lastRequest();
      assert.equal(request.operation, "Converse");
      assert.equal(request.modelId, MODEL_ARN);
      assert.equal(request.httpVersion, httpVersion);
      assert.deepEqual(request.signature, { status: "valid", scheme: "sigv4", accessKeyId: LOCAL_BEDROCK_CREDENTIALS.accessKeyId });
      assert.deepEqual(request.body, { messages: USER });
      assert.equal(request.status, 200);
      assert.equal(request.completed, true);
      assert.equal(request.closedByClient, false);
    });

    test("the default reply echoes the last user text", async () => {
      const { client } = clientFor(protocol);
      const out = await client.send(new ConverseCommand({ modelId: "amazon.nova-lite-v1:0", messages: USER }));
      assert.deepEqual(out.output?.message?.content, [{ text: "Echo: What is the weather in Lyon?" }]);
      assert.equal(out.stopReason, "end_turn");
    });

    test("ConverseStream streams text and tool-use deltas", async () => {
      const { client } = clientFor(protocol);
      server.reply = () => ({ text: "Hello there", toolUses: [{ toolUseId: "t1", name: "lookup", input: { q: 1 } }], chunkSize: 4 });
      const out = await client.send(new ConverseStreamCommand({ modelId: MODEL_ARN, messages: USER }));
      const events = await collect(out.stream);
      const kinds = events.map((event) => Object.keys(event).find((key) => key !== "$unknown"));
      assert.deepEqual(kinds, [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
      ]);
      const text = events.flatMap((e) => (e.contentBlockDelta?.delta?.text !== undefined ? [e.contentBlockDelta.delta.text] : [])).join("");
      assert.equal(text, "Hello there");
      assert.deepEqual(events[5]?.contentBlockStart, { contentBlockIndex: 1, start: { toolUse: { toolUseId: "t1", name: "lookup" } } });
      assert.equal(events.at(-2)?.messageStop?.stopReason, "tool_use");
      assert.equal(events.at(-1)?.metadata?.usage?.totalTokens, (events.at(-1)?.metadata?.usage?.inputTokens ?? 0) + (events.at(-1)?.metadata?.usage?.outputTokens ?? 0));
      await server.whenIdle();
      assert.equal(lastRequest().eventsSent, events.length);
      assert.equal(lastRequest().completed, true);
    });

    test("InvokeModel returns an Anthropic Messages body and token-count headers", async () => {
      const { client, responses } = clientFor(protocol);
      server.reply = () => ({ text: "Sunny.", toolUses: [{ toolUseId: "toolu_1", name: "get_weather", input: TOOL_INPUT }], usage: { inputTokens: 9, outputTokens: 4 } });
      const requestBody = { anthropic_version: "bedrock-2023-05-31", max_tokens: 100, messages: [{ role: "user", content: "Weather?" }] };
      const out = await client.send(
        new InvokeModelCommand({
          modelId: MODEL_ARN,
          body: JSON.stringify(requestBody),
          contentType: "application/json",
          accept: "application/json",
          // A JSON string here (a map on Converse), sent as is in X-Amzn-Bedrock-Request-Metadata.
          requestMetadata: JSON.stringify({ team: "search" }),
        }),
      );
      assert.equal(out.contentType, "application/json");
      const body = JSON.parse(new TextDecoder().decode(out.body)) as Record<string, unknown>;
      assert.equal(body["type"], "message");
      assert.equal(body["role"], "assistant");
      assert.deepEqual(body["content"], [
        { type: "text", text: "Sunny." },
        { type: "tool_use", id: "toolu_1", name: "get_weather", input: TOOL_INPUT },
      ]);
      assert.equal(body["stop_reason"], "tool_use");
      assert.deepEqual(body["usage"], { input_tokens: 9, output_tokens: 4 });
      const headers = responses.at(-1)!.headers;
      assert.equal(headers["x-amzn-bedrock-input-token-count"], "9");
      assert.equal(headers["x-amzn-bedrock-output-token-count"], "4");

      const request = lastRequest();
      assert.equal(request.operation, "InvokeModel");
      assert.deepEqual(request.body, requestBody);
      assert.deepEqual(JSON.parse(request.headers["x-amzn-bedrock-request-metadata"]!), { team: "search" });
    });

    test("InvokeModelWithResponseStream streams Anthropic events in chunks", async () => {
      const { client } = clientFor(protocol);
      server.reply = () => ({ text: "abcdefg", toolUses: [{ toolUseId: "toolu_2", name: "f", input: TOOL_INPUT }], chunkSize: 3 });
      const out = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: MODEL_ARN, body: JSON.stringify({ messages: [] }) }));
      assert.equal(out.contentType, "application/json");
      const events = anthropicEvents(await collect(out.body));
      assert.equal(events[0]?.["type"], "message_start");
      const text = events.filter((e) => e["delta"]?.type === "text_delta").map((e) => e["delta"].text as string);
      assert.deepEqual(text, ["abc", "def", "g"]);
      const json = events.filter((e) => e["delta"]?.type === "input_json_delta").map((e) => e["delta"].partial_json as string);
      assert.ok(json.length > 5);
      assert.deepEqual(JSON.parse(json.join("")), TOOL_INPUT);
      assert.equal(events.at(-2)?.["type"], "message_delta");
      assert.equal(events.at(-2)?.["delta"].stop_reason, "tool_use");
      const last = events.at(-1)!;
      assert.equal(last["type"], "message_stop");
      assert.equal(typeof last["amazon-bedrock-invocationMetrics"].inputTokenCount, "number");
      assert.equal(typeof last["amazon-bedrock-invocationMetrics"].outputTokenCount, "number");
    });

    test("CountTokens, ApplyGuardrail and InvokeGuardrailChecks", async () => {
      const { client } = clientFor(protocol);
      server.reply = () => ({ usage: { inputTokens: 42, outputTokens: 0 } });
      const counted = await client.send(new CountTokensCommand({ modelId: MODEL_ARN, input: { converse: { messages: USER } } }));
      assert.equal(counted.inputTokens, 42);
      assert.equal(lastRequest().operation, "CountTokens");
      assert.equal(lastRequest().modelId, MODEL_ARN);

      const guarded = await client.send(
        new ApplyGuardrailCommand({ guardrailIdentifier: "gr-123", guardrailVersion: "DRAFT", source: "INPUT", content: [{ text: { text: "hi" } }] }),
      );
      assert.equal(guarded.action, "NONE");
      assert.deepEqual(guarded.outputs, []);
      assert.equal(guarded.usage?.topicPolicyUnits, 0);
      assert.equal(lastRequest().operation, "ApplyGuardrail");
      assert.deepEqual(lastRequest().pathParameters, { guardrailIdentifier: "gr-123", guardrailVersion: "DRAFT" });

      const checked = await client.send(
        new InvokeGuardrailChecksCommand({
          messages: [{ role: "user", content: [{ text: "hello" }] }],
          checks: { contentFilter: { categories: [{ category: "HATE" }] }, sensitiveInformation: { entities: [{ type: "EMAIL" }] } },
        }),
      );
      assert.deepEqual(checked.results?.contentFilter, { results: [] });
      assert.deepEqual(checked.results?.sensitiveInformation, { results: [], truncated: false });
      assert.equal(checked.results?.promptAttack, undefined);
      assert.equal(checked.usage?.contentFilter?.textUnits, 1);
      assert.equal(lastRequest().operation, "InvokeGuardrailChecks");
    });

    test("StartAsyncInvoke, GetAsyncInvoke and ListAsyncInvokes", async () => {
      const { client } = clientFor(protocol);
      const started = await client.send(
        new StartAsyncInvokeCommand({
          modelId: "amazon.nova-reel-v1:1",
          modelInput: { taskType: "TEXT_VIDEO" },
          outputDataConfig: { s3OutputDataConfig: { s3Uri: "s3://bucket/out/" } },
        }),
      );
      assert.match(started.invocationArn ?? "", /^arn:aws:bedrock:us-east-1:\d{12}:async-invoke\/\w+$/);
      assert.equal(lastRequest().operation, "StartAsyncInvoke");
      assert.equal(lastRequest().modelId, "amazon.nova-reel-v1:1");

      const job = await client.send(new GetAsyncInvokeCommand({ invocationArn: started.invocationArn }));
      assert.equal(job.invocationArn, started.invocationArn);
      assert.equal(job.status, "Completed");
      assert.equal(job.modelArn, "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-reel-v1:1");
      assert.ok(job.submitTime instanceof Date && !Number.isNaN(job.submitTime.getTime()));
      assert.deepEqual(job.outputDataConfig, { s3OutputDataConfig: { s3Uri: "s3://bucket/out/" } });
      assert.equal(lastRequest().operation, "GetAsyncInvoke");
      assert.equal(lastRequest().pathParameters["invocationArn"], started.invocationArn);

      const listed = await client.send(new ListAsyncInvokesCommand({ statusEquals: "Completed", maxResults: 10, submitTimeAfter: new Date(0) }));
      assert.deepEqual(listed.asyncInvokeSummaries?.map((summary) => summary.invocationArn), [started.invocationArn]);
      assert.equal(lastRequest().operation, "ListAsyncInvokes");
      assert.equal(lastRequest().query["statusEquals"], "Completed");
      // The SDK drops the milliseconds from query timestamps.
      assert.equal(lastRequest().query["submitTimeAfter"], "1970-01-01T00:00:00Z");
      assert.ok(server.requests.every((request) => request.signature.status === "valid" && request.httpVersion === httpVersion));
    });

    test("a stream the client abandons is closed, and the endpoint stops writing", async () => {
      const { client, responses } = clientFor(protocol);
      server.reply = () => ({ text: "x".repeat(400), chunkSize: 2, eventDelayMs: 5 });
      const out = await client.send(new ConverseStreamCommand({ modelId: MODEL_ARN, messages: USER }));
      let seen = 0;
      for await (const _event of out.stream ?? []) {
        if (++seen === 3) break;
      }
      responses.at(-1)!.body.destroy();
      await server.whenIdle();
      const request = lastRequest();
      assert.equal(request.closedByClient, true);
      assert.equal(request.completed, false);
      const written = request.eventsSent;
      assert.ok(written >= 3 && written < 100, `the endpoint wrote ${written} of 203 events`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(request.eventsSent, written, "the endpoint kept writing after the client left");
    });
  });
}

describe("streamed tool use", () => {
  test("a tool input split over many deltas arrives in order and reassembles", async () => {
    const { client } = clientFor("h2");
    const input = { query: "SELECT * FROM t WHERE a = 'b'", limit: 25, nested: { list: Array.from({ length: 20 }, (_, i) => i), emoji: "🚀🚀" } };
    server.reply = () => ({
      toolUses: [
        { toolUseId: "tooluse_a", name: "sql", input },
        { toolUseId: "tooluse_b", name: "noop", input: {} },
      ],
      chunkSize: 3,
      eventDelayMs: 1,
    });
    const out = await client.send(new ConverseStreamCommand({ modelId: MODEL_ARN, messages: USER }));
    const events: ConverseStreamOutput[] = await collect(out.stream);
    const deltas = events.filter((e) => e.contentBlockDelta?.contentBlockIndex === 0).map((e) => e.contentBlockDelta!.delta!.toolUse!.input!);
    assert.ok(deltas.length > 30, `only ${deltas.length} deltas`);
    assert.ok(deltas.every((chunk) => Array.from(chunk).length <= 3));
    assert.deepEqual(JSON.parse(deltas.join("")), input);
    // No text block: the tool uses are blocks 0 and 1, each opened by a contentBlockStart.
    const starts = events.filter((e) => e.contentBlockStart).map((e) => e.contentBlockStart!);
    assert.deepEqual(starts, [
      { contentBlockIndex: 0, start: { toolUse: { toolUseId: "tooluse_a", name: "sql" } } },
      { contentBlockIndex: 1, start: { toolUse: { toolUseId: "tooluse_b", name: "noop" } } },
    ]);
    const indices = events.flatMap((e) => (e.contentBlockDelta ? [e.contentBlockDelta.contentBlockIndex] : []));
    assert.deepEqual(indices, [...indices].sort((a, b) => a! - b!), "deltas arrived out of order");
  });
});

describe("authentication", () => {
  test("an unsigned request through the SDK is refused with 403 and recorded as missing", async () => {
    const { client } = clientFor("h2", {
      httpAuthSchemes: [
        {
          schemeId: "aws.auth#sigv4",
          identityProvider: () => async () => ({ accessKeyId: "unused", secretAccessKey: "unused", expiration: new Date(Date.now() + 3_600_000) }),
          signer: { sign: async (request) => request },
        },
      ],
    });
    await assert.rejects(client.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER })), (error: any) => {
      assert.equal(error.name, "MissingAuthenticationTokenException");
      assert.equal(error.$metadata.httpStatusCode, 403);
      return true;
    });
    assert.equal(lastRequest().signature.status, "missing");
    assert.equal(lastRequest().status, 403);
    assert.equal(lastRequest().operation, "Converse");
  });

  test("a raw unsigned HTTP/1.1 request is refused with 403 and recorded as missing", async () => {
    const { status, headers } = await rawRequest("POST", "/model/amazon.nova-lite-v1%3A0/converse", JSON.stringify({ messages: USER }));
    assert.equal(status, 403);
    assert.equal(headers["x-amzn-errortype"], "MissingAuthenticationTokenException");
    assert.equal(lastRequest().signature.status, "missing");
    assert.equal(lastRequest().modelId, "amazon.nova-lite-v1:0");
    assert.equal(lastRequest().httpVersion, "1.1");

    const unknown = await rawRequest("GET", "/not-an-operation", "");
    assert.equal(unknown.status, 403);
    assert.equal(lastRequest().operation, "Unknown");
  });

  for (const protocol of PROTOCOLS) {
    test(`a wrong secret is invalid over ${protocol}`, async () => {
      const { client } = clientFor(protocol, { credentials: { ...LOCAL_BEDROCK_CREDENTIALS, secretAccessKey: "wrong" } });
      await assert.rejects(client.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER })), (error: any) => {
        assert.equal(error.name, "InvalidSignatureException");
        assert.equal(error.$metadata.httpStatusCode, 403);
        return true;
      });
      assert.equal(lastRequest().signature.status, "invalid");
      assert.equal(lastRequest().signature.accessKeyId, LOCAL_BEDROCK_CREDENTIALS.accessKeyId);
    });
  }

  for (const protocol of PROTOCOLS) {
    test(`a 1 MB body is read whole and verifies over ${protocol}`, async () => {
      const { client } = clientFor(protocol);
      const big = "z".repeat(1 << 20);
      await client.send(new ConverseCommand({ modelId: MODEL_ARN, messages: [{ role: "user", content: [{ text: big }] }] }));
      assert.equal(lastRequest().signature.status, "valid");
      assert.equal((lastRequest().body as any).messages[0].content[0].text, big);
    });
  }

  test("a signed request to a path Bedrock does not have is answered 404 UnknownOperationException", async () => {
    const { client } = clientFor("h2");
    // Rewritten before signing, so the signature covers the odd path and still verifies.
    client.middlewareStack.add(
      (next) => async (args) => {
        (args.request as { path: string }).path = "/model/x/not-an-operation";
        return next(args);
      },
      { step: "build", name: "rewritePath" },
    );
    await assert.rejects(client.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER })), (error: any) => {
      assert.equal(error.name, "UnknownOperationException");
      assert.equal(error.$metadata.httpStatusCode, 404);
      return true;
    });
    assert.equal(lastRequest().operation, "Unknown");
    assert.equal(lastRequest().signature.status, "valid");
  });

  test("a signature from a skewed clock is refused, and the SDK corrects its clock and retries", async () => {
    const { client } = clientFor("h1", { systemClockOffset: -20 * 60_000, maxAttempts: 2 });
    await client.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER }));
    const [first, second] = server.requests;
    assert.equal(first?.signature.status, "invalid");
    assert.match(first?.signature.reason ?? "", /^Signature expired/);
    assert.equal(second?.signature.status, "valid");
  });

  test("an unknown key is unknown-key", async () => {
    const { client } = clientFor("h2", { credentials: { accessKeyId: "AKIANOTREGISTERED000", secretAccessKey: "whatever" } });
    await assert.rejects(client.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER })), { name: "UnrecognizedClientException" });
    assert.deepEqual(lastRequest().signature, {
      status: "unknown-key",
      scheme: "sigv4",
      accessKeyId: "AKIANOTREGISTERED000",
      reason: "access key id was never registered",
    });
  });

  test("a region other than the endpoint's is invalid", async () => {
    const { client } = clientFor("h1", { region: "eu-west-1" });
    await assert.rejects(client.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER })), { name: "InvalidSignatureException" });
    assert.equal(lastRequest().signature.status, "invalid");
  });

  test("temporary credentials: accepted with their session token, refused once expired or removed", async () => {
    const temporary = { accessKeyId: "ASIALOCALTEMPORARY01", secretAccessKey: "temp-secret", sessionToken: "session-token-1" };
    server.addCredentials({ ...temporary, expiration: new Date(Date.now() + 60_000) });
    try {
      const good = clientFor("h2", { credentials: temporary }).client;
      await good.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER }));
      assert.deepEqual(lastRequest().signature, { status: "valid", scheme: "sigv4", accessKeyId: temporary.accessKeyId });
      assert.equal(lastRequest().headers["x-amz-security-token"], "session-token-1");

      const wrongToken = clientFor("h2", { credentials: { ...temporary, sessionToken: "other" } }).client;
      await assert.rejects(wrongToken.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER })), { name: "UnrecognizedClientException" });
      assert.equal(lastRequest().signature.status, "unknown-key");

      server.addCredentials({ ...temporary, expiration: new Date(Date.now() - 1000) });
      await assert.rejects(good.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER })), { name: "ExpiredTokenException" });
      assert.equal(lastRequest().signature.status, "expired");

      server.removeCredentials(temporary.accessKeyId);
      await assert.rejects(good.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER })), { name: "UnrecognizedClientException" });
      assert.equal(lastRequest().signature.status, "unknown-key");
    } finally {
      server.removeCredentials(temporary.accessKeyId);
    }
  });

  test("a registered Bedrock API key is accepted as a bearer token, an unknown one is not", async () => {
    server.addBearerToken("bedrock-api-key-local");
    try {
      const bearer = (token: string) =>
        clientFor("h2", { token: { token }, authSchemePreference: ["httpBearerAuth"] }).client.send(
          new ConverseCommand({ modelId: MODEL_ARN, messages: USER }),
        );
      await bearer("bedrock-api-key-local");
      assert.equal(lastRequest().headers["authorization"], "Bearer bedrock-api-key-local");
      assert.deepEqual(lastRequest().signature, { status: "valid", scheme: "bearer" });
      await assert.rejects(bearer("nope"), (error: any) => error.$metadata.httpStatusCode === 403);
      assert.equal(lastRequest().signature.status, "unknown-key");
    } finally {
      server.removeBearerToken("bedrock-api-key-local");
    }
  });
});

describe("scripted errors", () => {
  for (const protocol of PROTOCOLS) {
    test(`a 429 surfaces as the SDK's ThrottlingException over ${protocol}`, async () => {
      const { client } = clientFor(protocol);
      server.reply = () => ({ error: { status: 429, type: "ThrottlingException", message: "Slow down" } });
      await assert.rejects(client.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER })), (error: unknown) => {
        assert.ok(error instanceof ThrottlingException);
        assert.equal(error.message, "Slow down");
        assert.equal(error.$metadata.httpStatusCode, 429);
        return true;
      });
      assert.equal(lastRequest().status, 429);
      assert.equal(server.requests.length, 1);
    });
  }

  test("queued replies come first: throttled once, then retried successfully", async () => {
    const { client } = clientFor("h2", { maxAttempts: 2 });
    server.queueReplies({ error: { status: 429, type: "ThrottlingException", message: "once" } });
    server.reply = () => ({ text: "after retry" });
    const out = await client.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER }));
    assert.deepEqual(out.output?.message?.content, [{ text: "after retry" }]);
    assert.deepEqual(server.requests.map((request) => request.status), [429, 200]);
    assert.equal(server.requests[1]?.headers["amz-sdk-request"], "attempt=2; max=2");
  });

  test("an in-stream error arrives after the content as the SDK's typed exception", async () => {
    const { client } = clientFor("h2");
    server.reply = () => ({ text: "partial", chunkSize: 100, error: { status: 424, type: "ModelStreamErrorException", message: "model failed", inStream: true } });
    const out = await client.send(new ConverseStreamCommand({ modelId: MODEL_ARN, messages: USER }));
    const seen: ConverseStreamOutput[] = [];
    await assert.rejects(
      (async () => {
        for await (const event of out.stream ?? []) seen.push(event);
      })(),
      (error: unknown) => error instanceof ModelStreamErrorException && error.message === "model failed",
    );
    assert.equal(seen[1]?.contentBlockDelta?.delta?.text, "partial");
    assert.ok(!seen.some((event) => event.messageStop));
  });

  test("InvokeModelWithResponseStream maps in-stream errors too", async () => {
    const { client } = clientFor("h1");
    server.reply = () => ({ text: "x", error: { status: 429, type: "ThrottlingException", message: "mid-stream", inStream: true } });
    const out = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: MODEL_ARN, body: "{}" }));
    await assert.rejects(collect(out.body), (error: unknown) => error instanceof ThrottlingException && error.message === "mid-stream");
  });

  test("a failing reply function answers 500 InternalServerException", async () => {
    const { client } = clientFor("h1");
    server.reply = () => {
      throw new Error("script bug");
    };
    await assert.rejects(client.send(new ConverseCommand({ modelId: MODEL_ARN, messages: USER })), (error: any) => {
      assert.equal(error.name, "InternalServerException");
      assert.match(error.message, /script bug/);
      return true;
    });
  });

  test("a reply that cannot be rendered answers 500 instead of hanging", async () => {
    const { client } = clientFor("h2");
    server.reply = () => ({ toolUses: [{ toolUseId: "t", name: "n", input: { big: 1n } }] });
    await assert.rejects(client.send(new ConverseStreamCommand({ modelId: MODEL_ARN, messages: USER })), { name: "InternalServerException" });
    assert.equal(lastRequest().status, 500);
  });

  test("InvokeModelWithBidirectionalStream is refused with a ValidationException", async () => {
    // Quiet: the SDK warns on the console about any failed request with a streaming body.
    const quiet = { debug() {}, info() {}, warn() {}, error() {} };
    const { client } = clientFor("h2", { logger: quiet });
    async function* input() {
      yield { chunk: { bytes: new TextEncoder().encode(JSON.stringify({ event: { sessionStart: {} } })) } };
    }
    await assert.rejects(
      client.send(new InvokeModelWithBidirectionalStreamCommand({ modelId: "amazon.nova-sonic-v1:0", body: input() })),
      (error: unknown) => {
        assert.ok(error instanceof ValidationException, String(error));
        assert.match(error.message, /not supported by the local endpoint/);
        return true;
      },
    );
    const request = lastRequest();
    assert.equal(request.operation, "InvokeModelWithBidirectionalStream");
    assert.equal(request.signature.status, "valid");
    assert.equal(request.status, 400);
  });
});

describe("lifecycle", () => {
  test("close() ends open HTTP/2 and HTTP/1.1 streams at once", async () => {
    const own = await startLocalBedrock({ reply: () => ({ text: "y".repeat(100), chunkSize: 1, eventDelayMs: 1000 }) });
    const clientsHere = (["h2", "h1"] as const).map(
      (protocol) =>
        new BedrockRuntimeClient({
          endpoint: own.url,
          region: own.region,
          credentials: own.credentials,
          maxAttempts: 1,
          ...(protocol === "h1" ? { requestHandler: new NodeHttpHandler() } : {}),
        }),
    );
    const outputs = await Promise.all(clientsHere.map((client) => client.send(new ConverseStreamCommand({ modelId: MODEL_ARN, messages: USER }))));
    const reading = outputs.map((out) => collect(out.stream).then(() => "ended", () => "failed"));
    const startedAt = Date.now();
    await own.close();
    assert.ok(Date.now() - startedAt < 500, "close() took too long");
    // The readers learn it too, instead of waiting for the next event a second later.
    assert.deepEqual(await Promise.all(reading), ["failed", "failed"]);
    assert.ok(Date.now() - startedAt < 900, "the streams outlived close()");
    await own.whenIdle();
    assert.equal(own.requests.length, 2);
    for (const request of own.requests) {
      assert.equal(request.completed, false);
      assert.equal(request.closedByClient, false, "a server-side close is not the client's doing");
    }
    for (const client of clientsHere) client.destroy();
  });
});

function rawRequest(method: string, path: string, body: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, server.url);
    const request = http.request(url, { method, headers: { "content-type": "application/json" }, agent: false }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
    });
    request.on("error", reject);
    request.end(body);
  });
}
