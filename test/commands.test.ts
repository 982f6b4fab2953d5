import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import * as sdk from "@aws-sdk/client-bedrock-runtime";
import { exporter } from "./support/tracing.js";
import { MemoryHandler, jsonResponse } from "./support/memory-handler.js";
import { AccessDeniedError, runAs, UnknownCommandError, WARDEN } from "../src/index.js";
import { COMMANDS } from "../src/policy/commands.js";
import { converseInput, harness, HAIKU, researchAgent, stranger } from "./support/governance.js";

beforeEach(() => exporter.reset());

const ASYNC_ARN = "arn:aws:bedrock:us-east-1:123456789012:async-invoke/abc123";

/** A minimal valid input for every command of the installed SDK. A command missing here fails the coverage test. */
const INPUTS: Record<string, () => object> = {
  ApplyGuardrailCommand: () => ({ guardrailIdentifier: "gr-1", guardrailVersion: "1", source: "INPUT", content: [{ text: { text: "hi" } }] }),
  ConverseCommand: () => converseInput(),
  ConverseStreamCommand: () => converseInput(),
  CountTokensCommand: () => ({ modelId: HAIKU, input: { converse: { messages: converseInput().messages } } }),
  GetAsyncInvokeCommand: () => ({ invocationArn: ASYNC_ARN }),
  InvokeGuardrailChecksCommand: () => ({ messages: [{ role: "user", content: [{ text: "hi" }] }], checks: {} }),
  InvokeModelCommand: () => ({ modelId: HAIKU, body: JSON.stringify({ max_tokens: 10, messages: [] }) }),
  InvokeModelWithResponseStreamCommand: () => ({ modelId: HAIKU, body: JSON.stringify({ max_tokens: 10, messages: [] }) }),
  InvokeModelWithBidirectionalStreamCommand: () => ({
    modelId: HAIKU,
    body: (async function* () {
      yield { chunk: { bytes: new TextEncoder().encode("{}") } };
    })(),
  }),
  ListAsyncInvokesCommand: () => ({}),
  StartAsyncInvokeCommand: () => ({ modelId: HAIKU, modelInput: {}, outputDataConfig: { s3OutputDataConfig: { s3Uri: "s3://bucket/out" } } }),
};

const sdkCommands = Object.entries(sdk).filter(([name, value]) => /^[A-Z]\w*Command$/.test(name) && typeof value === "function") as [
  string,
  new (input: object) => sdk.ConverseCommand,
][];

describe("every command of the installed SDK is governed", () => {
  it("the catalogue knows every command the SDK exports (a new SDK command fails here until it is governed)", () => {
    assert.ok(sdkCommands.length >= 11, `found ${sdkCommands.length} commands`);
    for (const [name] of sdkCommands) {
      assert.ok(COMMANDS[name], `${name} is in the governed catalogue`);
      assert.ok(INPUTS[name], `${name} has a test input`);
    }
  });

  for (const [name, Command] of sdkCommands) {
    it(`${name}: denied sends nothing; allowed sends one request and is recorded`, async () => {
      const handler = new MemoryHandler(() => jsonResponse({}));
      const { client, records } = harness(undefined, handler);
      const denied = await runAs(stranger, () => client.send(new Command(INPUTS[name]!()))).catch((e: unknown) => e);
      assert.ok(denied instanceof AccessDeniedError, `${name} denied: ${String(denied)}`);
      assert.equal(denied.decision.action, `Bedrock::Action::"${COMMANDS[name]!.action}"`);
      assert.equal(handler.requests.length, 0, `${name}: nothing sent when denied`);

      // The empty JSON reply may not deserialize for every command (streams): only the governance matters here.
      await runAs(researchAgent, () => client.send(new Command(INPUTS[name]!()))).then(
        async (output: unknown) => {
          const stream = (output as { stream?: AsyncIterable<unknown>; body?: unknown }).stream ?? (output as { body?: unknown }).body;
          if (stream && typeof (stream as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function") {
            try {
              for await (const _ of stream as AsyncIterable<unknown>);
            } catch {
              // not a real event stream
            }
          }
        },
        (error: unknown) => assert.ok(!(error instanceof AccessDeniedError), `${name} allowed: ${String(error)}`),
      );
      assert.equal(handler.requests.length, 1, `${name}: exactly one request when allowed`);
      assert.deepEqual(records.map((r) => r.decision), ["deny", "allow"]);
      const spans = exporter.getFinishedSpans();
      assert.deepEqual(spans.map((s) => s.attributes[WARDEN.DECISION]), ["deny", "allow"]);
    });
  }

  it("denies a command this version does not know, saying so, and sends nothing", async () => {
    // What a newer SDK's command looks like to this library: a real command through the real
    // pipeline, with a name the catalogue has never seen.
    class SummonDragonCommand extends sdk.ConverseCommand {
      override resolveMiddlewareWithContext(...args: Parameters<sdk.ConverseCommand["resolveMiddlewareWithContext"]>) {
        const [stack, configuration, options, context] = args;
        return super.resolveMiddlewareWithContext(stack, configuration, options, { ...context, commandName: "SummonDragonCommand" });
      }
    }
    const handler = new MemoryHandler();
    const { client, records } = harness(`permit (principal, action, resource);`, handler);
    const error = await runAs(researchAgent, () => client.send(new SummonDragonCommand(converseInput()))).catch((e: unknown) => e);
    assert.ok(error instanceof UnknownCommandError, String(error));
    assert.equal(error.code, "ERR_UNKNOWN_COMMAND");
    assert.match(error.message, /SummonDragonCommand is not a command this version of bedrock-warden governs/);
    assert.equal(handler.requests.length, 0);
    assert.equal(records[0]?.decision, "deny");
  });

  it("denies an input that does not name its resource", async () => {
    const handler = new MemoryHandler();
    const { client } = harness(`permit (principal, action, resource);`, handler);
    const error = await runAs(researchAgent, () => client.send(new sdk.ConverseCommand({ messages: [] } as never))).catch((e: unknown) => e);
    assert.ok(error instanceof AccessDeniedError);
    assert.match(error.message, /modelId must be a non-empty string/);
    assert.equal(handler.requests.length, 0);
  });
});

describe("StartAsyncInvoke: where the output goes", () => {
  const POLICY = `permit (principal, action, resource);
    @id("own-bucket-only") forbid (principal, action == Bedrock::Action::"StartAsyncInvoke", resource)
    unless { context has outputLocation && context.outputLocation like "s3://acme-video-output/*" };`;
  const start = (client: sdk.BedrockRuntimeClient, outputDataConfig: unknown) =>
    runAs(researchAgent, () => client.send(new sdk.StartAsyncInvokeCommand({ modelId: HAIKU, modelInput: {}, outputDataConfig } as never))).catch((e: unknown) => e);

  it("context.outputLocation is the output S3 URI: a policy keeps async output in the workload's bucket", async () => {
    const handler = new MemoryHandler(() => jsonResponse({ invocationArn: "arn:aws:bedrock:us-east-1:123456789012:async-invoke/abc123" }));
    const { client, records } = harness(POLICY, handler);
    const ok = await start(client, { s3OutputDataConfig: { s3Uri: "s3://acme-video-output/jobs/1" } });
    assert.ok(!(ok instanceof Error), String(ok));
    for (const elsewhere of ["s3://acme-video-output.attacker/x", "s3://attacker-bucket/acme-video-output/x"]) {
      const denied = await start(client, { s3OutputDataConfig: { s3Uri: elsewhere } });
      assert.ok(denied instanceof AccessDeniedError && denied.decision.policies.includes("own-bucket-only"), String(denied));
    }
    assert.equal(handler.requests.length, 1);
    assert.deepEqual(records.map((r) => r.decision), ["allow", "deny", "deny"]);
  });

  it("an output location that is not an S3 URI denies the call, naming the field", async () => {
    const handler = new MemoryHandler(() => jsonResponse({ invocationArn: "arn:aws:bedrock:us-east-1:123456789012:async-invoke/abc123" }));
    const { client } = harness(`permit (principal, action, resource);`, handler);
    for (const config of [undefined, {}, { s3OutputDataConfig: {} }, { s3OutputDataConfig: { s3Uri: "S3://ACME-VIDEO-OUTPUT/x" } }, { s3OutputDataConfig: { s3Uri: "https://acme-video-output.s3.amazonaws.com/x" } }, { s3OutputDataConfig: { s3Uri: "s3://acme-video-output/x\nforged" } }]) {
      const denied = await start(client, config);
      assert.ok(denied instanceof AccessDeniedError, `${JSON.stringify(config)}: ${String(denied)}`);
      assert.match(denied.message, /outputDataConfig\.s3OutputDataConfig\.s3Uri must be an S3 URI/);
    }
    assert.equal(handler.requests.length, 0);
  });
});

describe("GetAsyncInvoke: one invocation, one entity", () => {
  it("an invocation ARN spelled otherwise than Bedrock writes it denies the call, so a policy naming it cannot be stepped around", async () => {
    const handler = new MemoryHandler(() => jsonResponse({}));
    const { client } = harness(`permit (principal, action, resource);`, handler);
    for (const invocationArn of [ASYNC_ARN.toUpperCase(), ASYNC_ARN.replace("abc123", "ABC123"), `${ASYNC_ARN}/`, "abc123", ASYNC_ARN.replace(":123456789012:", "::")]) {
      const denied = await runAs(researchAgent, () => client.send(new sdk.GetAsyncInvokeCommand({ invocationArn }))).catch((e: unknown) => e);
      assert.ok(denied instanceof AccessDeniedError && /input\.invocationArn must be an async invocation ARN/.test(denied.message), `${invocationArn}: ${String(denied)}`);
    }
    assert.equal(handler.requests.length, 0);
  });
});

describe("hostile inputs and a failing client configuration", () => {
  it("an input whose getters throw is denied, with one span and one record, and nothing is sent", async () => {
    const handler = new MemoryHandler();
    const { client, records } = harness(`permit (principal, action, resource);`, handler);
    const hostile = Object.defineProperty({ messages: [] }, "modelId", {
      enumerable: true,
      get() {
        throw new Error("boom");
      },
    });
    const error = await runAs(researchAgent, () => client.send(new sdk.ConverseCommand(hostile as never))).catch((e: unknown) => e);
    assert.ok(error instanceof AccessDeniedError, String(error));
    assert.match(error.message, /the command input could not be read/);
    assert.match(error.decision.errors.join(), /boom/);
    assert.equal(handler.requests.length, 0);
    assert.equal(records.length, 1);
    assert.equal(exporter.getFinishedSpans().length, 1);
  });

  it("an input nested absurdly deep is denied, not crashed on", async () => {
    const handler = new MemoryHandler();
    const { client } = harness(`permit (principal, action, resource);`, handler);
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 10_000; i++) deep = (deep["next"] = {}) as Record<string, unknown>;
    const error = await runAs(researchAgent, () => client.send(new sdk.ConverseCommand({ ...converseInput(), additionalModelRequestFields: root } as never))).catch((e: unknown) => e);
    assert.ok(error instanceof AccessDeniedError, String(error));
    assert.match(error.decision.errors.join(), /nested deeper/);
    assert.equal(handler.requests.length, 0);
  });

  it("a region that cannot be resolved denies the call, with its record", async () => {
    const handler = new MemoryHandler();
    const { governance, records } = harness(`permit (principal, action, resource);`, handler);
    const { GovernedBedrockRuntimeClient } = await import("../src/index.js");
    const client = new GovernedBedrockRuntimeClient({
      region: async () => {
        throw new Error("no region configured");
      },
      credentials: { accessKeyId: "a", secretAccessKey: "b" },
      requestHandler: handler,
      governance,
    });
    const error = await runAs(researchAgent, () => client.converse(converseInput())).catch((e: unknown) => e);
    assert.ok(error instanceof AccessDeniedError, String(error));
    assert.match(error.decision.errors.join(), /no region configured/);
    assert.equal(handler.requests.length, 0);
    assert.equal(records.length, 1);
  });
});
