import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AccessDeniedError, ConfigurationError, WardenError } from "../src/errors.js";
import { UsageStoreError, UsageUnavailableError, WorkloadKilledError } from "../src/errors.js";
import { killedDenial, usageUnavailableDenial } from "../src/budgets/kill-switch.js";
import { admitCall, CUSTOM_STORE_TIMEOUT_MS, recordTokens, responseTokens, usageContext, usageOptionsSchema } from "../src/budgets/usage-context.js";
import { HOUR_MS, memoryUsageStore, MINUTE_MS, type Usage, type UsageStore } from "../src/budgets/usage-store.js";
import { CedarEngine } from "../src/policy/cedar-engine.js";
import { commandSpec } from "../src/policy/commands.js";
import { currentScope } from "../src/identity/call-scope.js";
import { NO_AWS_CREDENTIALS } from "../src/credentials/credential-facts.js";
import { buildCedarRequest } from "../src/policy/request-builder.js";
import { shippedSchema } from "../src/policy/schema.js";
import { policiesFromText } from "../src/policy/sources.js";

const AGENT = "spiffe://acme.test/agents/invoice";
const OTHER = "spiffe://acme.test/agents/research";
/** 10:00:00.000 UTC on some day: the start of an hour (and of a minute). */
const T0 = Date.UTC(2026, 4, 1, 10, 0, 0, 0);

describe("memoryUsageStore", () => {
  it("counts calls in the current minute, this one included, and starts again in the next minute", async () => {
    const store = memoryUsageStore();
    assert.equal((await store.admit(AGENT, T0)).callsLastMinute, 1);
    assert.equal((await store.admit(AGENT, T0 + 1_000)).callsLastMinute, 2);
    assert.equal((await store.admit(AGENT, T0 + MINUTE_MS - 1)).callsLastMinute, 3);
    // Windows are aligned on the clock: 10:01:00.000 starts a new one.
    assert.equal((await store.admit(AGENT, T0 + MINUTE_MS)).callsLastMinute, 1);
    assert.equal((await store.admit(OTHER, T0 + MINUTE_MS)).callsLastMinute, 1, "per identity");
  });

  it("adds tokens to the current hour and starts again in the next hour", async () => {
    const store = memoryUsageStore();
    await store.addTokens(AGENT, 1_000, T0);
    await store.addTokens(AGENT, 500, T0 + 30 * MINUTE_MS);
    assert.deepEqual(await store.admit(AGENT, T0 + 59 * MINUTE_MS), { callsLastMinute: 1, tokensLastHour: 1_500 });
    assert.deepEqual(await store.admit(AGENT, T0 + HOUR_MS), { callsLastMinute: 1, tokensLastHour: 0 });
    assert.deepEqual(await store.read(OTHER, T0), { callsLastMinute: 0, tokensLastHour: 0 });
  });

  it("reads without counting", async () => {
    const store = memoryUsageStore();
    await store.admit(AGENT, T0);
    assert.deepEqual(await store.read(AGENT, T0), { callsLastMinute: 1, tokensLastHour: 0 });
    assert.deepEqual(await store.read(AGENT, T0), { callsLastMinute: 1, tokensLastHour: 0 });
    assert.deepEqual(await store.read(AGENT, T0 + MINUTE_MS), { callsLastMinute: 0, tokensLastHour: 0 }, "a window that ended reads 0");
  });

  it("ignores token counts that are not positive numbers, and rounds fractions down", async () => {
    const store = memoryUsageStore();
    for (const bad of [0, -500, Number.NaN, Number.POSITIVE_INFINITY, 0.5]) await store.addTokens(AGENT, bad, T0);
    assert.equal((await store.read(AGENT, T0)).tokensLastHour, 0);
    await store.addTokens(AGENT, 10.9, T0);
    assert.equal((await store.read(AGENT, T0)).tokensLastHour, 10);
    assert.equal(store.size, 1);
  });

  it("keeps memory bounded: ended windows are dropped, and at most maxIdentities are held", async () => {
    const store = memoryUsageStore();
    for (let i = 0; i < 5_000; i++) await store.admit(`spiffe://acme.test/agents/${i}`, T0 + i);
    assert.equal(store.size, 5_000);
    // The next hour: every earlier identity's windows have ended.
    await store.admit(AGENT, T0 + HOUR_MS);
    assert.equal(store.size, 1);

    const small = memoryUsageStore({ maxIdentities: 3 });
    for (const id of ["a", "b", "c"]) await small.admit(id, T0);
    await small.admit("a", T0); // a is now the most recently active
    await small.admit("d", T0); // b, the least recently active, is dropped
    assert.equal(small.size, 3);
    assert.equal((await small.read("b", T0)).callsLastMinute, 0);
    assert.equal((await small.read("a", T0)).callsLastMinute, 2);
  });

  it("kills and revives an identity; the switch is read by every admit and never dropped", async () => {
    const store = memoryUsageStore({ maxIdentities: 1 });
    await store.kill(AGENT, "INC-4711: runaway tool loop");
    const killed = await store.admit(AGENT, T0);
    assert.equal(killed.killed?.reason, "INC-4711: runaway tool loop");
    assert.match(killed.killed?.at ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await store.admit(OTHER, T0 + 2 * HOUR_MS); // evicts AGENT's counters, not its switch
    assert.equal((await store.read(AGENT, T0 + 2 * HOUR_MS)).killed?.reason, "INC-4711: runaway tool loop");
    assert.equal((await store.read(OTHER, T0)).killed, undefined, "per identity");
    await store.revive(AGENT);
    assert.equal((await store.admit(AGENT, T0)).killed, undefined);
  });

  it("refuses malformed identity ids, kill reasons and options", async () => {
    const store = memoryUsageStore();
    await assert.rejects(store.admit("", T0), ConfigurationError);
    await assert.rejects(store.admit("x".repeat(1025), T0), ConfigurationError);
    await assert.rejects(store.kill(AGENT, ""), /kill reason must be a non-empty string/);
    await assert.rejects(store.kill(AGENT, "line\nbreak"), /control characters/);
    assert.throws(() => memoryUsageStore({ maxIdentities: 0 }), ConfigurationError);
  });
});

describe("usageContext", () => {
  it("is { callsLastMinute, tokensLastHour } as Cedar Longs, without the kill switch", () => {
    const context = usageContext({ callsLastMinute: 3, tokensLastHour: 1_200, killed: { reason: "x", at: "" } });
    assert.deepEqual(context, { callsLastMinute: 3, tokensLastHour: 1_200 });
    assert.ok(Object.isFrozen(context));
    assert.deepEqual(usageContext({ callsLastMinute: -1, tokensLastHour: 2 ** 60 }), { callsLastMinute: 0, tokensLastHour: Number.MAX_SAFE_INTEGER });
  });

  it("lets policies write budgets and rate limits (with the schema lines the integration adds)", async () => {
    // Until the shipped schema has them: the lines the integration adds to CallContext and ToolContext.
    const line = `"usage"?: { "callsLastMinute": Long, "tokensLastHour": Long },`;
    const shipped = shippedSchema();
    const schema = /"usage"\?:/.test(shipped) ? shipped : shipped.replace(/("credentials": Credentials,\n)/g, `$1    ${line}\n`);
    assert.equal(schema.match(/"usage"\?:/g)?.length, 2, "usage is in CallContext and ToolContext");
    const policies = `
      permit (principal, action, resource);
      @id("interns-token-budget")
      @reason("interns may use 100,000 tokens an hour")
      forbid (principal, action, resource) when { context has usage && context.usage.tokensLastHour > 100000 };
      @id("rate-limit")
      @reason("at most 60 calls a minute")
      forbid (principal, action, resource) when { context has usage && context.usage.callsLastMinute > 60 };`;
    const engine = new CedarEngine(policiesFromText(policies), schema, { decisionCacheSize: 0 });
    // Without `has`, the validator refuses the policy at load: usage is optional.
    assert.throws(
      () => new CedarEngine(policiesFromText(`forbid (principal, action, resource) when { context.usage.callsLastMinute > 60 };`), schema),
      /usage/,
    );
    const spec = commandSpec("ConverseCommand");
    assert.ok(spec);
    const input = { modelId: "anthropic.claude-3-haiku-20240307-v1:0", messages: [] };
    const request = buildCedarRequest({
      identity: { id: AGENT, groups: ["interns"] },
      scope: currentScope(),
      spec,
      resource: spec.resource(input),
      facts: spec.facts(input),
      environment: "test",
      region: "us-east-1",
      credentials: NO_AWS_CREDENTIALS,
      nowMs: T0,
    });
    const decide = (usage: Usage | undefined) =>
      engine.authorize({ ...request, context: usage === undefined ? request.context : { ...request.context, usage: usageContext(usage) } });
    assert.equal(decide({ callsLastMinute: 1, tokensLastHour: 100_000 }).effect, "allow");
    const overBudget = decide({ callsLastMinute: 1, tokensLastHour: 100_001 });
    assert.deepEqual([overBudget.effect, overBudget.policies], ["deny", ["interns-token-budget"]]);
    assert.deepEqual(decide({ callsLastMinute: 61, tokensLastHour: 0 }).policies, ["rate-limit"]);
    assert.equal(decide(undefined).effect, "allow", "without usage (store down, allow-without-usage) the budget policies do not apply");
  });
});

describe("admitCall", () => {
  const failing = (error: unknown): UsageStore => ({
    ...memoryUsageStore(),
    name: "flaky",
    admit: async () => {
      throw error;
    },
  });

  it("admits with the usage, or says the workload is killed", async () => {
    const store = memoryUsageStore();
    assert.deepEqual(await admitCall({ store }, AGENT, T0), { outcome: "admitted", usage: { callsLastMinute: 1, tokensLastHour: 0 } });
    await store.kill(AGENT, "stop");
    const admission = await admitCall({ store }, AGENT, T0);
    assert.equal(admission.outcome, "killed");
    assert.equal(admission.outcome === "killed" && admission.killed.reason, "stop");
  });

  it("fails closed by default when the store fails, and proceeds without usage when told to", async () => {
    const error = new UsageStoreError("flaky", "admit", "usage store unavailable: connect ECONNREFUSED");
    const denied = await admitCall({ store: failing(error) }, AGENT, T0);
    assert.deepEqual(denied, { outcome: "unavailable", error });
    assert.deepEqual(await admitCall({ store: failing(error), onStoreError: "deny" }, AGENT, T0), { outcome: "unavailable", error });
    assert.deepEqual(await admitCall({ store: failing(error), onStoreError: "allow-without-usage" }, AGENT, T0), { outcome: "unmetered", error });
    // A store that throws something else is wrapped, never lets the error escape.
    const odd = await admitCall({ store: failing(new TypeError("boom")) }, AGENT, T0);
    assert.equal(odd.outcome, "unavailable");
    assert.ok(odd.outcome === "unavailable" && odd.error instanceof UsageStoreError && /boom/.test(odd.error.message));
  });

  it("treats a store's garbage as a failure, never as a count of 0: null, strings, NaN, negative counts, a kill state that is not an object", async () => {
    const answering = (answer: unknown): UsageStore => ({ ...memoryUsageStore(), name: "naive", admit: async () => answer as never });
    for (const answer of [null, undefined, 3, "3", { callsLastMinute: "999", tokensLastHour: 0 }, { callsLastMinute: Number.NaN, tokensLastHour: 0 }, { callsLastMinute: 1, tokensLastHour: -1 }, { callsLastMinute: 1 }, { callsLastMinute: 1, tokensLastHour: 0, killed: "yes" }]) {
      const admission = await admitCall({ store: answering(answer) }, AGENT, T0);
      assert.equal(admission.outcome, "unavailable", JSON.stringify(answer) ?? String(answer));
      assert.ok(admission.outcome === "unavailable" && /naive.*failed during admit: it answered/.test(admission.error.message), admission.outcome === "unavailable" ? admission.error.message : "");
    }
    // Even a thrown value that cannot be printed leaves admission resolved.
    const unprintable = { toString: () => { throw new Error("no"); } };
    assert.equal((await admitCall({ store: failing(unprintable) }, AGENT, T0)).outcome, "unavailable");
  });

  it("a store (other than the memory and Redis stores) that never answers is a failing store after CUSTOM_STORE_TIMEOUT_MS", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const hung: UsageStore = { ...memoryUsageStore(), name: "hung", admit: () => new Promise<never>(() => undefined) };
    const pending = admitCall({ store: hung }, AGENT, T0);
    await Promise.resolve();
    t.mock.timers.tick(CUSTOM_STORE_TIMEOUT_MS);
    const admission = await pending;
    assert.equal(admission.outcome, "unavailable");
    assert.ok(admission.outcome === "unavailable" && /did not answer admit within 5000 ms/.test(admission.error.message));
  });

  it("keeps a workload last seen killed denied while the store cannot answer, whatever onStoreError says", async () => {
    const lastKnownKill = { reason: "INC-4711", at: "2026-05-01T09:00:00.000Z" };
    const error = new UsageStoreError("redis", "admit", "timed out", { lastKnownKill });
    assert.deepEqual(await admitCall({ store: failing(error), onStoreError: "allow-without-usage" }, AGENT, T0), { outcome: "killed", killed: lastKnownKill });
  });

  it("validates the governance option", () => {
    assert.equal(usageOptionsSchema.safeParse({ store: memoryUsageStore() }).success, true);
    assert.equal(usageOptionsSchema.safeParse({ store: memoryUsageStore(), onStoreError: "allow" }).success, false);
    assert.equal(usageOptionsSchema.safeParse({ store: {} }).success, false);
  });
});

describe("tokens after the call", () => {
  it("sums a response's input and output tokens", () => {
    assert.equal(responseTokens({ inputTokens: 120, outputTokens: 80 }), 200);
    assert.equal(responseTokens({ outputTokens: 80 }), 80);
    assert.equal(responseTokens(undefined), 0);
    assert.equal(responseTokens({ inputTokens: -5, outputTokens: Number.NaN }), 0);
  });

  it("adds them without holding the caller, and reports a failure once as a warning", async () => {
    const store = memoryUsageStore();
    recordTokens({ store }, AGENT, 300, T0);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal((await store.read(AGENT, T0)).tokensLastHour, 300);

    const broken: UsageStore = { ...store, name: "broken", addTokens: () => Promise.reject(new UsageStoreError("broken", "addTokens", "down")) };
    const warnings: string[] = [];
    const listener = (warning: Error) => warnings.push(warning.message);
    process.on("warning", listener);
    try {
      recordTokens({ store: broken }, AGENT, 300, T0);
      recordTokens({ store: broken }, AGENT, 300, T0);
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      process.removeListener("warning", listener);
    }
    assert.deepEqual(warnings, ["bedrock-warden: tokens not counted (the budget under-counts): down"]);
  });
});

describe("denials", () => {
  const parts = {
    principal: `Bedrock::Workload::"${AGENT}"`,
    action: 'Bedrock::Action::"Converse"',
    resource: 'Bedrock::Model::"anthropic.claude-3-haiku-20240307-v1:0"',
    policySetVersion: "sha256:test",
  };

  it("a killed workload: WorkloadKilledError, an AccessDeniedError naming the reason", () => {
    const error = killedDenial(parts, AGENT, { reason: "INC-4711: runaway tool loop", at: "2026-05-01T09:00:00.000Z" });
    assert.ok(error instanceof WorkloadKilledError && error instanceof AccessDeniedError && error instanceof WardenError);
    assert.equal(error.code, "ERR_WORKLOAD_KILLED");
    assert.equal(error.name, "WorkloadKilledError");
    assert.deepEqual([error.identityId, error.killReason, error.killedAt], [AGENT, "INC-4711: runaway tool loop", "2026-05-01T09:00:00.000Z"]);
    assert.equal(error.decision.effect, "deny");
    assert.deepEqual(error.decision.reasons, [`the kill switch of ${AGENT} is on since 2026-05-01T09:00:00.000Z: INC-4711: runaway tool loop`]);
    assert.match(error.message, /may not .*Converse.*kill switch/);
  });

  it("an unavailable store with onStoreError deny: UsageUnavailableError, its cause the store's error", () => {
    const cause = new UsageStoreError("redis", "admit", 'usage store "redis" (redis://10.0.0.5:6379) unavailable during admit: admit timed out after 500 ms');
    const error = usageUnavailableDenial(parts, cause);
    assert.ok(error instanceof UsageUnavailableError && error instanceof AccessDeniedError);
    assert.equal(error.code, "ERR_USAGE_UNAVAILABLE");
    assert.equal(error.cause, cause);
    assert.equal(cause.code, "ERR_USAGE_STORE_UNAVAILABLE");
    assert.match(error.decision.errors[0] ?? "", /^usage: UsageStoreError: .*timed out after 500 ms$/);
  });
});
