import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConverseCommand, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { createGovernance, GovernedBedrockRuntimeClient, governTool, runAs, AccessDeniedError } from "../src/index.js";
import { converseStreamFrames, eventStreamResponse } from "./support/event-stream.js";
import { memoryUsageStore } from "../src/budgets/usage-store.js";
import { redisUsageStore } from "../src/budgets/redis-store.js";
import { UsageUnavailableError, WorkloadKilledError } from "../src/errors.js";
import { MemoryHandler } from "./support/memory-handler.js";
import { CREDENTIALS, converseInput, invoiceAgent } from "./support/governance.js";
import { tracerProvider } from "./support/tracing.js";
import { redisTestServer } from "./support/redis.js";

const POLICIES = `
permit (principal in Bedrock::Group::"billing", action, resource);
@id("rate") @reason("at most 3 calls a minute")
forbid (principal, action, resource) when { context has usage && context.usage.callsLastMinute > 3 };
@id("budget") @reason("at most 40 tokens an hour")
forbid (principal, action, resource) when { context has usage && context.usage.tokensLastHour > 40 };`;

function client(usage: Parameters<typeof createGovernance>[0]["usage"]) {
  const handler = new MemoryHandler();
  const governance = createGovernance({ environment: "test", policies: POLICIES, tracerProvider, ...(usage && { usage }) });
  return { handler, client: new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: handler, governance, maxAttempts: 1 }) };
}
const call = (c: GovernedBedrockRuntimeClient) => runAs(invoiceAgent, () => c.send(new ConverseCommand(converseInput())));

describe("usage through the real pipeline", () => {
  it("a custom store answering garbage (null): the call is denied with UsageUnavailableError, nothing sent, nothing left unhandled", async () => {
    const store = { ...memoryUsageStore(), name: "naive", admit: async () => null as never };
    const { handler, client: c } = client({ store });
    await assert.rejects(call(c), (e: Error) => e instanceof UsageUnavailableError && /naive.*answered null/.test(String((e.cause as Error | undefined)?.message)));
    assert.equal(handler.requests.length, 0);
  });

  it("memory: tokens (18 a call) then the token budget deny; the kill switch denies before Cedar", async () => {
    const store = memoryUsageStore();
    const { client: c } = client({ store });
    await call(c); await call(c); await call(c); // 54 tokens
    await new Promise((r) => setTimeout(r, 10));
    assert.equal((await store.read(invoiceAgent.id, Date.now())).tokensLastHour, 54);
    await assert.rejects(call(c), (e: AccessDeniedError) => e.decision.policies.includes("budget"));
    await store.kill(invoiceAgent.id, "INC-1");
    await assert.rejects(call(c), (e: Error) => e instanceof WorkloadKilledError && /INC-1/.test(e.message));
  });
  it("streams count their tokens (from the metadata event); tools see context.usage; a killed workload runs no tool", async () => {
    const store = memoryUsageStore();
    const tools = [{ name: "issue_refund", effect: "mutate" as const }];
    const policies = `${POLICIES}
      @id("refunds") permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"tool:issue_refund", resource)
        when { context has usage && context.usage.callsLastMinute <= 3 };`;
    const handler = new MemoryHandler(() => eventStreamResponse(converseStreamFrames(["a", "b"], { inputTokens: 5, outputTokens: 6, totalTokens: 11 })).response);
    const governance = createGovernance({ environment: "test", policies, tools, usage: { store } });
    const streaming = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: handler, governance, maxAttempts: 1 });
    const { stream } = await runAs(invoiceAgent, () => streaming.send(new ConverseStreamCommand(converseInput())));
    for await (const _ of stream ?? []) void _;
    await new Promise((r) => setTimeout(r, 10));
    assert.equal((await store.read(invoiceAgent.id, Date.now())).tokensLastHour, 11);
    const refund = governTool(tools[0]!, async () => "refunded", { governance });
    assert.equal(await runAs(invoiceAgent, () => refund({})), "refunded", "the tool saw context.usage (the policy requires it)");
    // A stream left before its usage arrived is charged its output cap and an estimate of its input
    // (a token per 4 bytes sent): leaving early never dodges a budget.
    const inputEstimate = () => {
      const body = handler.requests.at(-1)!.body as Uint8Array | string;
      return Math.ceil((typeof body === "string" ? Buffer.byteLength(body) : body.byteLength) / 4);
    };
    const second = { id: "spiffe://acme.test/agents/invoice-2", groups: ["billing"] };
    const capped = await runAs(second, () => streaming.send(new ConverseStreamCommand(converseInput(undefined, { inferenceConfig: { maxTokens: 300 } }))));
    for await (const _ of capped.stream ?? []) break;
    await new Promise((r) => setTimeout(r, 10));
    assert.ok(inputEstimate() > 20);
    assert.equal((await store.read(second.id, Date.now())).tokensLastHour, 300 + inputEstimate());
    // Even left before its first event.
    const early = { id: "spiffe://acme.test/agents/invoice-early", groups: ["billing"] };
    const unread = await runAs(early, () => streaming.send(new ConverseStreamCommand(converseInput(undefined, { inferenceConfig: { maxTokens: 50 } }))));
    await unread.stream![Symbol.asyncIterator]().return!();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal((await store.read(early.id, Date.now())).tokensLastHour, 50 + inputEstimate());
    await assert.rejects(
      runAs(second, () => streaming.send(new ConverseStreamCommand(converseInput()))),
      (e: AccessDeniedError) => e.decision.policies.includes("budget"),
    );
    const third = { id: "spiffe://acme.test/agents/invoice-3", groups: ["billing"] };
    const uncapped = await runAs(third, () => streaming.send(new ConverseStreamCommand(converseInput())));
    for await (const _ of uncapped.stream ?? []) break;
    await new Promise((r) => setTimeout(r, 10));
    assert.equal((await store.read(third.id, Date.now())).tokensLastHour, 4096 + inputEstimate(), "no cap asked: the default charge");
    await store.kill(invoiceAgent.id, "INC-2");
    await assert.rejects(
      runAs(invoiceAgent, () => refund({})),
      (e: Error) => e instanceof WorkloadKilledError && /INC-2/.test(e.message),
    );
    streaming.destroy();
  });

  const redis = redisTestServer();
  describe("redis", { skip: redis.skip }, () => {
    before(() => redis.start());
    after(() => redis.stop());
    it("rate limit across two governances sharing Redis; deny when Redis is down", async () => {
      const a = redisUsageStore({ url: redis.url, keyPrefix: "e2e:" });
      const b = redisUsageStore({ url: redis.url, keyPrefix: "e2e:" });
      const ca = client({ store: a }).client, cb = client({ store: b }).client;
      await call(ca); await call(cb); await call(ca);
      await assert.rejects(call(cb), (e: AccessDeniedError) => e.decision.policies.includes("rate"));
      await redis.stop();
      await assert.rejects(call(ca), (e: Error) => e instanceof UsageUnavailableError && e.code === "ERR_USAGE_UNAVAILABLE");
      const open = client({ store: a, onStoreError: "allow-without-usage" }).client;
      await call(open);
      await a.close(); await b.close();
    });
  });
});
