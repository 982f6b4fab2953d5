import assert from "node:assert/strict";
import Module from "node:module";
import { afterEach, describe, it } from "node:test";
import fc from "fast-check";
import { AccessDeniedError, attestIdentity, createGovernance, GovernedBedrockRuntimeClient, memoryUsageStore, runAs, workloadIdentity } from "../src/index.js";
import type { CredentialFacts } from "../src/credentials/credential-facts.js";
import type { ActiveScope, TaskScope } from "../src/identity/call-scope.js";
import type { WorkloadIdentity } from "../src/identity/workload-identity.js";
import { authorizeFacts, frontMemoStats } from "../src/policy/call-memo.js";
import { commandSpec, type CommandSpec, type InputFacts, type ResourceEntity } from "../src/policy/commands.js";
import { reinstantiateWasm, wasm } from "../src/policy/cedar-wasm.js";
import { buildCedarRequest, callFactsKey, type CallFacts } from "../src/policy/request-builder.js";
import { WARDEN } from "../src/telemetry/semconv.js";
import { BASE_POLICIES, converseInput, CREDENTIALS, harness, HAIKU, researchAgent, TITAN } from "./support/governance.js";
import { countEvaluations } from "./support/evaluations.js";
import { MemoryHandler } from "./support/memory-handler.js";
import { exporter } from "./support/tracing.js";

const original = { ...wasm };
afterEach(() => Object.assign(wasm, original));


// ---- the key: equal keys, equal requests --------------------------------------------------------

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0, 300);
// Strings that look like the key's own pieces: a key that joined its pieces ambiguously would take one for another.
const TEXTS = ["", "a", "ab", "s1:a", "u", "n1;", "l1;s1:a", "a;b", "undefined", "é"] as const;

const declared = workloadIdentity({ id: "spiffe://acme.test/agents/a", groups: ["billing"], environment: "test" });
const IDENTITIES: readonly WorkloadIdentity[] = [
  declared,
  workloadIdentity({ id: "spiffe://acme.test/agents/a", groups: ["billing"], environment: "test" }), // the same fields, another object
  workloadIdentity({ id: "spiffe://acme.test/agents/a", groups: ["research"], environment: "test" }),
  attestIdentity(
    { id: "spiffe://acme.test/agents/verified" },
    { method: "tpm-attestation", issuer: "https://attest.acme.test", subject: "v", audience: ["bedrock-warden"], expiresAt: new Date(NOW + 90_500), delegation: { depth: 0, actors: [] } },
  ),
  { id: "spiffe://acme.test/agents/unfrozen", groups: ["billing"] }, // never keyed: its entity is built each time
];
const converse = commandSpec("ConverseCommand")!;
const RESOURCES: readonly ResourceEntity[] = [
  converse.resource({ modelId: HAIKU }),
  converse.resource({ modelId: TITAN }),
  { ...converse.resource({ modelId: HAIKU }) }, // not frozen: never keyed
];
const SPECS: readonly CommandSpec[] = ["ConverseCommand", "ConverseStreamCommand", "InvokeModelCommand", "StartAsyncInvokeCommand"].map((name) => commandSpec(name)!);
const task = (name: string): TaskScope => ({ name, ended: false, onEnd: () => undefined });

const text = fc.constantFrom(...TEXTS);
const factsArbitrary = fc.record({
  identity: fc.constantFrom(...IDENTITIES),
  resource: fc.constantFrom(...RESOURCES),
  spec: fc.constantFrom(...SPECS),
  purpose: fc.option(text, { nil: undefined }),
  dataSensitivity: fc.array(text, { maxLength: 3 }),
  actionType: fc.constantFrom("read" as const, "mutate" as const),
  task: fc.option(text, { nil: undefined }),
  maxTokens: fc.option(fc.constantFrom(0, 512, 513, -0, 1.5), { nil: undefined }),
  toolsOffered: fc.array(text, { maxLength: 3 }),
  toolsUnreadable: fc.option(fc.constant(true), { nil: undefined }),
  guardrail: fc.option(text, { nil: undefined }),
  guardrailVersion: fc.option(fc.constantFrom("DRAFT", "1", "2"), { nil: undefined }),
  guardrailSelective: fc.option(fc.boolean(), { nil: undefined }),
  outputLocation: fc.option(fc.constantFrom("s3://a1b/x", "s3://a1b/y", "s3://a1b/x "), { nil: undefined }),
  payloadInspected: fc.boolean(),
  environment: text,
  region: fc.constantFrom("us-east-1", "eu-west-1"),
  credentialKind: fc.constantFrom("long-term" as const, "temporary" as const, "bearer" as const),
  brokered: fc.boolean(),
  // Seconds after NOW when the credentials expire (a new Date each time, as each call's facts are).
  expiresInMs: fc.option(fc.constantFrom(30_000, 30_600, 31_000), { nil: undefined }),
  nowOffsetMs: fc.constantFrom(0, 400, 800, 1_000, 61_000),
  usage: fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 5 },
    { arbitrary: fc.record({ callsLastMinute: fc.constantFrom(1, 2), tokensLastHour: fc.constant(0) }), weight: 1 },
  ),
});
type GeneratedFacts = typeof factsArbitrary extends fc.Arbitrary<infer T> ? T : never;

function callFacts(g: GeneratedFacts): CallFacts {
  const scope: ActiveScope = { identity: g.identity, purpose: g.purpose, dataSensitivity: [...g.dataSensitivity], actionType: g.actionType, task: g.task === undefined ? undefined : task(g.task) };
  const facts: InputFacts = {
    toolsOffered: [...g.toolsOffered],
    payloadInspected: g.payloadInspected,
    ...(g.maxTokens !== undefined && { maxTokens: g.maxTokens }),
    ...(g.toolsUnreadable !== undefined && { toolsUnreadable: g.toolsUnreadable }),
    ...(g.guardrail !== undefined && { guardrail: g.guardrail }),
    ...(g.guardrailVersion !== undefined && { guardrailVersion: g.guardrailVersion }),
    ...(g.guardrailSelective !== undefined && { guardrailSelective: g.guardrailSelective }),
    ...(g.outputLocation !== undefined && { outputLocation: g.outputLocation }),
  };
  const credentials: CredentialFacts = {
    kind: g.credentialKind,
    brokered: g.brokered,
    ...(g.expiresInMs !== undefined && { expiresAt: new Date(NOW + g.expiresInMs) }),
  };
  return {
    identity: g.identity,
    scope,
    spec: g.spec,
    resource: g.resource,
    facts,
    environment: g.environment,
    region: g.region,
    credentials,
    nowMs: NOW + g.nowOffsetMs,
    ...(g.usage && { usage: g.usage }),
  };
}


describe("the front memo's key (callFactsKey)", () => {
  it("calls with equal keys get equal Cedar requests, to the byte (property, thousands of pairs that differ in a field or two)", () => {
    const fields = Object.keys(fc.sample(factsArbitrary, { numRuns: 1, seed: 1 })[0]!) as (keyof GeneratedFacts)[];
    let equalKeys = 0;
    let keyed = 0;
    let differentRequests = 0;
    fc.assert(
      fc.property(factsArbitrary, factsArbitrary, fc.subarray(fields, { maxLength: 2 }), (first, redrawn, changed) => {
        const second = { ...first };
        for (const field of changed) (second as Record<string, unknown>)[field] = redrawn[field];
        const a = callFacts(first);
        const b = callFacts(second);
        const keyA = callFactsKey(a);
        const keyB = callFactsKey(b);
        const requestA = JSON.stringify(buildCedarRequest(a));
        const requestB = JSON.stringify(buildCedarRequest(b));
        if (keyA !== undefined) keyed++;
        if (requestA !== requestB) differentRequests++;
        if (keyA !== undefined && keyA === keyB) {
          equalKeys++;
          assert.equal(requestB, requestA, `equal keys, different requests:\n${keyA}`);
        }
        assert.equal(callFactsKey(callFacts(first)), keyA, "the same facts, built again: the same key");
      }),
      { numRuns: 4000, seed: 20261128 },
    );
    // Not vacuous: many pairs shared a key, many were keyed at all, many differed.
    assert.ok(equalKeys > 150, `pairs with equal keys: ${equalKeys}`);
    assert.ok(keyed > 1200, `keyed calls: ${keyed}`);
    assert.ok(differentRequests > 1500, `pairs with different requests: ${differentRequests}`);
  });

  it("strings that join alike are keyed apart (each written with its length)", () => {
    const base: CallFacts = { ...callFacts(fc.sample(factsArbitrary, { numRuns: 1, seed: 9 })[0]!), identity: declared, resource: RESOURCES[0]!, usage: undefined };
    const withLabels = (labels: string[]) => callFactsKey({ ...base, scope: { ...base.scope, dataSensitivity: labels } });
    assert.notEqual(withLabels(["b", "sc"]), withLabels(["bs", "c"]));
    const withTools = (tools: string[], guardrail?: string) => callFactsKey({ ...base, facts: { ...base.facts, toolsOffered: tools, ...(guardrail !== undefined ? { guardrail } : { guardrail: undefined }) } });
    assert.notEqual(withTools(["b", "sc"]), withTools(["bs", "c"]));
    assert.notEqual(withTools(["s1:a"]), withTools(["s"]));
    const withPlace = (environment: string, region: string) => callFactsKey({ ...base, environment, region });
    assert.notEqual(withPlace("prods", "9:eu-west-1"), withPlace("prod", "eu-west-1"));
    assert.notEqual(withPlace("ab", "c"), withPlace("a", "bc"));
  });

  it("keys only what it can key exactly: no key for an identity or resource that is not frozen, for usage counters, or for a value of an unexpected type", () => {
    const base = callFacts(fc.sample(factsArbitrary, { numRuns: 1, seed: 7 })[0]!);
    const keyable: CallFacts = { ...base, identity: declared, resource: RESOURCES[0]!, usage: undefined };
    assert.ok(callFactsKey(keyable) !== undefined);
    assert.equal(callFactsKey({ ...keyable, identity: { id: "spiffe://acme.test/agents/unfrozen" } }), undefined);
    assert.equal(callFactsKey({ ...keyable, resource: { ...RESOURCES[0]! } }), undefined);
    assert.equal(callFactsKey({ ...keyable, usage: { callsLastMinute: 1, tokensLastHour: 0 } }), undefined);
    assert.equal(callFactsKey({ ...keyable, facts: { ...keyable.facts, maxTokens: 10n as never } }), undefined);
    assert.equal(callFactsKey({ ...keyable, scope: { ...keyable.scope, dataSensitivity: [{ label: "x" }] as never } }), undefined);
    assert.equal(callFactsKey({ ...keyable, credentials: { ...keyable.credentials, expiresAt: "tomorrow" as never } }), undefined);
    assert.equal(callFactsKey({ ...keyable, facts: { ...keyable.facts, toolsOffered: Array(400).fill("a-long-tool-name") } }), undefined, "over 4,096 characters");
  });

  it("a token's or credentials' remaining lifetime is keyed by the seconds the request carries", () => {
    const verified = IDENTITIES[3]!;
    const at = (nowMs: number, expiresAt?: Date) =>
      callFactsKey({ ...callFacts(fc.sample(factsArbitrary, { numRuns: 1, seed: 3 })[0]!), identity: verified, resource: RESOURCES[0]!, usage: undefined, nowMs, credentials: { kind: "temporary", brokered: true, ...(expiresAt && { expiresAt }) } });
    // The token expires at NOW + 90.5 s: 90 seconds left from NOW to NOW + 0.5 s, then 89.
    assert.equal(at(NOW), at(NOW + 400));
    assert.notEqual(at(NOW), at(NOW + 600));
    // The credentials: 30 seconds left until 31 s after NOW.
    assert.equal(at(NOW, new Date(NOW + 30_000)), at(NOW, new Date(NOW + 30_900)), "another Date, the same seconds left: the same key");
    assert.notEqual(at(NOW, new Date(NOW + 30_000)), at(NOW, new Date(NOW + 31_000)));
    assert.notEqual(at(NOW, new Date(NOW + 30_000)), at(NOW + 1, new Date(NOW + 30_000)), "29.999 seconds left: 29");
  });
});

// ---- the engine: what it keeps, and what it no longer gives back --------------------------------

describe("the engine's kept decisions", () => {
  it("a clean decision is kept under a key; none is kept with memoization off, or for a Cedar failure", () => {
    const { governance } = harness();
    const request = buildCedarRequest({ ...callFacts(fc.sample(factsArbitrary, { numRuns: 1, seed: 5 })[0]!), usage: undefined });
    const { decision, memoKey } = governance.engine.authorizeKept(request);
    assert.ok(memoKey !== undefined);
    assert.equal(governance.engine.memoized(memoKey), decision);

    const off = createGovernance({ environment: "test", policies: BASE_POLICIES, decisionCacheSize: 0 });
    assert.equal(off.engine.authorizeKept(request).memoKey, undefined);
    assert.equal(off.engine.memoCapacity, 0);

    // A Cedar failure is injected in wasm: the JavaScript evaluator would decide this request without it.
    const failing = createGovernance({ environment: "test", policies: BASE_POLICIES, evaluator: "wasm" });
    wasm.statefulIsAuthorized = () => ({ type: "failure", errors: [{ message: "bad request", help: null, code: null, url: null, severity: null }], warnings: [] });
    const failed = failing.engine.authorizeKept(request);
    assert.equal(failed.decision.effect, "deny");
    assert.equal(failed.memoKey, undefined);
  });
});

// ---- standing aside where nearly every call is new ---------------------------------------------

describe("the front memo where nearly every call is new", () => {
  it("stands aside after a window of misses, deciding exactly as the engine does, and comes back when calls repeat", () => {
    const { governance } = harness();
    const engine = governance.engine;
    const base: CallFacts = { ...callFacts(fc.sample(factsArbitrary, { numRuns: 1, seed: 11 })[0]!), identity: declared, resource: RESOURCES[0]!, usage: undefined };
    const withMaxTokens = (maxTokens: number): CallFacts => ({ ...base, facts: { ...base.facts, maxTokens } });
    const evaluations = countEvaluations(engine);
    // 256 new calls: every lookup a miss, so the front stands aside for the next 2,048.
    for (let n = 0; n < 256; n++) authorizeFacts(engine, withMaxTokens(n));
    assert.equal(frontMemoStats(engine).size, 256);
    for (let n = 256; n < 256 + 2_048; n++) {
      const decision = authorizeFacts(engine, withMaxTokens(n));
      assert.equal(decision, engine.authorize(buildCedarRequest(withMaxTokens(n))), "decided as the engine decides");
    }
    assert.deepEqual(frontMemoStats(engine), { size: 256, hits: 0, bypassed: 2_048 });
    // Then it looks again: one call repeated, all hits after the first, and it stays.
    for (let i = 0; i < 3 * 256; i++) authorizeFacts(engine, withMaxTokens(7));
    const stats = frontMemoStats(engine);
    assert.equal(stats.bypassed, 2_048, "it did not stand aside again");
    assert.equal(stats.hits, 3 * 256, "maxTokens 7 was kept before the pause: every call a hit");
    assert.ok(evaluations.all <= 2, `the engine's memo answered the rest (${evaluations.all} evaluations)`);
  });
});

// ---- through the client -------------------------------------------------------------------------

describe("the front memo, through the client", () => {
  const call = (client: ReturnType<typeof harness>["client"], labels: string[] = ["pii"], modelId = HAIKU) =>
    runAs(researchAgent, () => client.converse(converseInput(modelId)), { purpose: "reconcile", dataSensitivity: labels });

  it("repeated calls are answered from it, allowed or denied, each with one span and one record; nothing denied is sent", async () => {
    exporter.reset();
    const { client, governance, handler, records } = harness();
    const evaluations = countEvaluations(governance.engine);
    for (let i = 0; i < 5; i++) await call(client);
    for (let i = 0; i < 3; i++) await assert.rejects(call(client, ["phi"]), AccessDeniedError);
    assert.equal(evaluations.all, 2, "each call evaluated once");
    assert.deepEqual(frontMemoStats(governance.engine), { size: 2, hits: 6, bypassed: 0 });
    assert.equal(handler.requests.length, 5);
    assert.deepEqual(records.map((record) => record.decision), ["allow", "allow", "allow", "allow", "allow", "deny", "deny", "deny"]);
    assert.deepEqual(records.slice(-3).map((record) => record.policies), [["no-phi-for-research"], ["no-phi-for-research"], ["no-phi-for-research"]]);
    const spans = exporter.getFinishedSpans();
    assert.deepEqual(spans.map((span) => span.attributes[WARDEN.DECISION]), records.map((record) => record.decision));
  });

  it("a reload starts it empty: the next call is decided by the new policies, not replayed", async () => {
    const { client, governance, handler } = harness();
    await call(client);
    await call(client);
    assert.equal(frontMemoStats(governance.engine).hits, 1);
    governance.reload(`@id("nothing-for-research") forbid (principal in Bedrock::Group::"research", action, resource);`);
    await assert.rejects(call(client), (e: unknown) => e instanceof AccessDeniedError && e.decision.policies.includes("nothing-for-research"));
    assert.equal(handler.requests.length, 2);
    assert.deepEqual(frontMemoStats(governance.engine), { size: 1, hits: 0, bypassed: 0 });
  });

  it("when the wasm instance is lost (a trap it could not recover from), no engine replays a call it answered before, until an instance is loaded again", async () => {
    // In wasm: a request the JavaScript evaluator decides never meets the trap (once the instance is
    // lost, every engine denies every call, whichever evaluator would decide it).
    const { client, handler } = harness(undefined, undefined, undefined, "wasm");
    // Another governance in the process: its own engine and memo, the same wasm instance.
    const other = harness(undefined, undefined, undefined, "wasm");
    await call(client);
    await call(other.client);
    wasm.statefulIsAuthorized = () => {
      const trap = new Error("unreachable");
      trap.name = "RuntimeError";
      throw trap;
    };
    // The restart cannot load the module again.
    const moduleLoader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
    const load = moduleLoader._load;
    moduleLoader._load = function (request: string, ...rest: unknown[]) {
      if (request.includes("cedar_wasm")) throw new Error("cannot load the module");
      return load.call(this, request, ...rest);
    };
    try {
      await assert.rejects(call(client, ["new-label"], TITAN), AccessDeniedError);
    } finally {
      moduleLoader._load = load;
    }
    for (const governed of [client, other.client]) {
      const replayed = await call(governed).catch((e: unknown) => e);
      assert.ok(replayed instanceof AccessDeniedError, "the call allowed before is denied now, by either engine");
      assert.match(replayed.decision.errors.join(), /could not be restarted.*restart the process/);
    }
    assert.equal(handler.requests.length, 1);
    assert.equal(other.handler.requests.length, 1);
    // A fresh instance: both engines preparse their policies again in it and decide again.
    reinstantiateWasm();
    await call(client);
    await call(other.client);
    assert.equal(handler.requests.length, 2);
    assert.equal(other.handler.requests.length, 2);
  });

  it("is not used with memoization off, nor for calls whose usage is counted", async () => {
    const off = createGovernance({ environment: "test", policies: BASE_POLICIES, decisionCacheSize: 0 });
    const client = (governance: typeof off) => new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: new MemoryHandler(), governance });
    const evaluations = countEvaluations(off.engine);
    const unmemoized = client(off);
    for (let i = 0; i < 3; i++) await call(unmemoized);
    assert.equal(evaluations.all, 3);
    assert.deepEqual(frontMemoStats(off.engine), { size: 0, hits: 0, bypassed: 0 });

    const counted = createGovernance({ environment: "test", policies: BASE_POLICIES, usage: { store: memoryUsageStore() } });
    const countedClient = client(counted);
    for (let i = 0; i < 3; i++) await call(countedClient);
    assert.deepEqual(frontMemoStats(counted.engine), { size: 0, hits: 0, bypassed: 0 });
  });
});
