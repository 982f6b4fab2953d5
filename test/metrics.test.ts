import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConverseCommand, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { AggregationTemporality, MeterProvider, MetricReader, type DataPoint, type Histogram } from "@opentelemetry/sdk-metrics";
import { AccessDeniedError, createGovernance, GovernedBedrockRuntimeClient, METRICS, runAs } from "../src/index.js";
import { converseStreamFrames, eventStreamResponse } from "./support/event-stream.js";
import { BASE_POLICIES, converseInput, CREDENTIALS, HAIKU, invoiceAgent, stranger, TITAN } from "./support/governance.js";
import { jsonResponse, MemoryHandler } from "./support/memory-handler.js";
import { wasm } from "../src/policy/cedar-wasm.js";

/** A reader collected on demand (the periodic one would make the test wait). */
class CollectingReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

async function collect(reader: CollectingReader) {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
}

describe("metrics", () => {
  it("decisions by outcome and action, token usage, operation duration and time to first chunk", async () => {
    const reader = new CollectingReader({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const governance = createGovernance({ environment: "test", policies: BASE_POLICIES, meterProvider });
    // Converse fails at the service (a call allowed, then failed); ConverseStream streams, reporting usage.
    const handler = new MemoryHandler((request) =>
      request.path.endsWith("/converse-stream")
        ? eventStreamResponse(converseStreamFrames(["hi"], { inputTokens: 3, outputTokens: 2, totalTokens: 5 })).response
        : jsonResponse({ message: "boom" }, 500, { "x-amzn-errortype": "InternalServerException" }),
    );
    const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: handler, governance, maxAttempts: 1 });
    await runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput())).catch(() => undefined));
    await assert.rejects(() => runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput(TITAN)))), AccessDeniedError);
    await assert.rejects(() => runAs(stranger, () => client.send(new ConverseCommand(converseInput()))), AccessDeniedError);
    const { stream } = await runAs(invoiceAgent, () => client.send(new ConverseStreamCommand(converseInput())));
    for await (const _ of stream ?? []) void _;

    const collected = await collect(reader);
    const decisions = collected.find((m) => m.descriptor.name === METRICS.DECISIONS)!;
    const counts = decisions.dataPoints.map((p: DataPoint<unknown>) => [p.attributes["bedrock_warden.decision"], p.attributes["bedrock_warden.outcome"], p.attributes["bedrock_warden.workload.id"], p.value]);
    assert.deepEqual(
      counts.filter(([, , , v]) => v !== 0).sort(),
      [
        ["allow", "completed", invoiceAgent.id, 1],
        ["deny", "denied", invoiceAgent.id, 1],
        ["deny", "denied", stranger.id, 1],
        ["allow", "failed", invoiceAgent.id, 1],
      ].sort(),
    );
    const tokens = collected.find((m) => m.descriptor.name === METRICS.TOKEN_USAGE)!;
    assert.equal(tokens.descriptor.unit, "{token}");
    const byType = Object.fromEntries(tokens.dataPoints.map((p) => [p.attributes["gen_ai.token.type"], (p.value as Histogram).sum]));
    assert.deepEqual(byType, { input: 3, output: 2 });
    assert.equal(tokens.dataPoints[0]?.attributes["gen_ai.request.model"], HAIKU);
    const duration = collected.find((m) => m.descriptor.name === METRICS.OPERATION_DURATION)!;
    assert.equal(duration.descriptor.unit, "s");
    const durations = duration.dataPoints.map((p) => [p.attributes["gen_ai.operation.name"], p.attributes["error.type"] ?? "", (p.value as Histogram).count]);
    assert.equal(durations.reduce((n, [, , c]) => n + (c as number), 0), 2, "the two calls that were sent (denied calls have no operation duration)");
    assert.ok(durations.some(([, e]) => e !== ""), "the failed call carries its error.type");
    const firstChunk = collected.find((m) => m.descriptor.name === METRICS.TIME_TO_FIRST_CHUNK)!;
    assert.equal((firstChunk.dataPoints[0]?.value as Histogram).count, 1);
    client.destroy();
    await meterProvider.shutdown();
  });

  it("identities beyond the cardinality cap are counted as (other)", async () => {
    const exporterless = new CollectingReader();
    const meterProvider = new MeterProvider({ readers: [exporterless] });
    const governance = createGovernance({ environment: "test", policies: `permit (principal, action, resource);`, meterProvider });
    const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: new MemoryHandler(), governance, maxAttempts: 1 });
    for (let i = 0; i < 1005; i++) await runAs({ id: `agent-${i}` }, () => client.send(new ConverseCommand(converseInput())));
    const decisions = (await collect(exporterless)).find((m) => m.descriptor.name === METRICS.DECISIONS)!;
    const ids = new Set(decisions.dataPoints.map((p) => p.attributes["bedrock_warden.workload.id"]));
    assert.equal(ids.size, 1001);
    assert.ok(ids.has("(other)"));
    client.destroy();
    await meterProvider.shutdown();
  });

  it("policy evaluations by where they ran: JavaScript, or cedar-wasm for a policy outside its subset; a memoized decision is no evaluation; a reload keeps counting", async () => {
    const reader = new CollectingReader({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const policies = `@id("all") permit (principal, action, resource) when { context has maxTokens && context.maxTokens <= 1000 };
@id("office") forbid (principal == Bedrock::Workload::"outside", action, resource) when { ip("10.0.0.1").isLoopback() };`;
    const governance = createGovernance({ environment: "test", policies, meterProvider });
    const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: new MemoryHandler(), governance, maxAttempts: 1 });
    const call = (id: string, maxTokens: number) => runAs({ id }, () => client.send(new ConverseCommand(converseInput(HAIKU, { inferenceConfig: { maxTokens } }))));
    const evaluations = async () => {
      const metric = (await collect(reader)).find((m) => m.descriptor.name === METRICS.POLICY_EVALUATIONS);
      return Object.fromEntries((metric?.dataPoints ?? []).map((p) => [p.attributes["bedrock_warden.policy.evaluator"], p.value]));
    };
    assert.deepEqual(await evaluations(), {}, "the warm-up at construction is not counted");
    await call("inside", 100);
    await call("inside", 100); // memoized
    await call("inside", 200); // the same outcome of the policy's test: memoized
    await call("outside", 100); // its slice holds ip(): wasm
    assert.deepEqual(await evaluations(), { javascript: 1, wasm: 1 });
    governance.reload(policies);
    await call("inside", 100);
    assert.deepEqual(await evaluations(), { javascript: 2, wasm: 1 });
    // A slice that cannot be preparsed is denied without an evaluation: none is counted.
    governance.reload(policies);
    const preparse = wasm.preparsePolicySet;
    wasm.preparsePolicySet = () => {
      throw new Error("out of memory");
    };
    try {
      await assert.rejects(call("outside", 100), AccessDeniedError);
    } finally {
      wasm.preparsePolicySet = preparse;
    }
    assert.deepEqual(await evaluations(), { javascript: 2, wasm: 1 });
    await call("outside", 100);
    assert.deepEqual(await evaluations(), { javascript: 2, wasm: 2 });
    const metric = (await collect(reader)).find((m) => m.descriptor.name === METRICS.POLICY_EVALUATIONS)!;
    assert.equal(metric.descriptor.unit, "{evaluation}");
    client.destroy();
    await meterProvider.shutdown();
  });
});
