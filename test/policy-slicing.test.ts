/**
 * Policy slicing never changes a decision: each request is evaluated against only the policies
 * whose scope can match it, and the answer — effect, determining policies, errors, shadow — must be
 * what Cedar answers with the whole set. Differential, over generated policy sets (every scope form:
 * `==`, `in`, `is`, `is … in`, action groups and lists; conditions that read, that use `in`, that
 * error) and generated requests (nested hierarchies included), thousands of cases.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import fc from "fast-check";
import { createGovernance, GovernedBedrockRuntimeClient, runAs, shippedSchema } from "../src/index.js";
import { reinstantiateWasm, wasm, wasmGeneration } from "../src/policy/cedar-wasm.js";
import { PolicySlices, type Slice } from "../src/policy/policy-slices.js";
import type { CedarEntity, CedarRequest } from "../src/policy/request-shape.js";
import { sealEntity } from "../src/policy/request-builder.js";
import { CedarEngine } from "../src/policy/cedar-engine.js";
import { generatePolicies, BENCH_IDENTITY, CONVERSE_INPUT } from "../bench/policies.js";
import { wholeSetAnswer, type ReferenceAnswer } from "./support/cedar-reference.js";
import { CREDENTIALS } from "./support/governance.js";
import { MemoryHandler } from "./support/memory-handler.js";

const WORKLOADS = ["w0", "w1", "w2"];
const GROUPS = ["g0", "g1", "g2", "g3"];
const ACTIONS = ["Converse", "ConverseStream", "InvokeModel", "CountTokens", "ApplyGuardrail"];
const MODELS = ["m0", "m1", "p0"]; // p0: a profile, a member of m0
const PROVIDERS = ["anthropic", "amazon"];

const ref = (type: string, id: string) => `Bedrock::${type}::"${id}"`;

// Scopes that name no principal (or no resource) weigh more: a slice holding both kinds is cut in parts.
const principalScope = fc.oneof(
  { weight: 4, arbitrary: fc.constant("principal") },
  fc.constantFrom(...WORKLOADS).map((w) => `principal == ${ref("Workload", w)}`),
  fc.constantFrom(...WORKLOADS).map((w) => `principal in ${ref("Workload", w)}`),
  fc.constantFrom(...GROUPS).map((g) => `principal in ${ref("Group", g)}`),
  fc.constant("principal is Bedrock::Workload"),
  fc.constantFrom(...GROUPS).map((g) => `principal is Bedrock::Workload in ${ref("Group", g)}`),
);
const actionScope = fc.oneof(
  fc.constant("action"),
  fc.constantFrom(...ACTIONS).map((a) => `action == ${ref("Action", a)}`),
  fc.constantFrom("ModelInvocation", "GuardrailUse").map((a) => `action in ${ref("Action", a)}`),
  fc.subarray(ACTIONS, { minLength: 1, maxLength: 3 }).map((list) => `action in [${list.map((a) => ref("Action", a)).join(", ")}]`),
);
const resourceScope = fc.oneof(
  { weight: 4, arbitrary: fc.constant("resource") },
  fc.constantFrom(...MODELS).map((m) => `resource == ${ref("Model", m)}`),
  fc.constantFrom(...MODELS).map((m) => `resource in ${ref("Model", m)}`),
  fc.constantFrom(...PROVIDERS).map((p) => `resource in ${ref("Provider", p)}`),
  fc.constant("resource is Bedrock::Model"),
  fc.constantFrom(...PROVIDERS).map((p) => `resource is Bedrock::Model in ${ref("Provider", p)}`),
  fc.constant(`resource == Bedrock::Guardrail::"gr0"`),
);
const condition = fc.constantFrom(
  "",
  "when { context.streaming }",
  `when { context.environment == "prod" }`,
  `when { principal.hasTag("tier") && principal.getTag("tier") == "gold" }`,
  `unless { principal in Bedrock::Group::"g1" }`,
  `when { context has maxTokens && context.maxTokens > 100 }`,
  // An evaluation error for maxTokens >= 2: the policy errors, and the call must deny.
  `when { context has maxTokens && context.maxTokens * 4611686018427387904 > 0 }`,
  `when { resource in Bedrock::Provider::"amazon" }`,
  `when { principal has owner && principal.owner == "team-a" }`,
  `when { resource.kind == "inference-profile" }`,
  `when { resource has geo && resource.geo == "us" }`,
  `when { action in Bedrock::Action::"ModelInvocation" }`,
  `when { Bedrock::Group::"g0" in Bedrock::Group::"g1" }`,
  `unless { principal is Bedrock::Workload in Bedrock::Group::"g2" }`,
);
const policyArbitrary = fc.record({
  effect: fc.constantFrom("permit", "permit", "forbid"),
  principal: principalScope,
  action: actionScope,
  resource: resourceScope,
  condition,
  shadow: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
});

const validity = new Map<string, boolean>();
const schema = shippedSchema();
/** Generated policies that do not validate against the schema (an impossible scope) are left out, as a load would refuse them. */
function valid(text: string): boolean {
  let known = validity.get(text);
  if (known === undefined) {
    const answer = cedar.validate({ schema, policies: { staticPolicies: { p: text } } });
    known = answer.type === "success" && answer.validationErrors.length === 0;
    validity.set(text, known);
  }
  return known;
}

const policySetArbitrary = fc.array(policyArbitrary, { minLength: 1, maxLength: 24 }).map((generated) => {
  return generated
    .map((p) => ({ text: `${p.effect} (${p.principal}, ${p.action}, ${p.resource}) ${p.condition};`, shadow: p.shadow }))
    .filter((p) => valid(p.text))
    .map((p, i) => ({ id: `p${i}`, ...p }));
});

const requestArbitrary = fc.record({
  principal: fc.constantFrom(...WORKLOADS, "w3"),
  groups: fc.subarray(GROUPS, { maxLength: 2 }),
  // Groups in groups: Cedar follows the request's hierarchy transitively.
  nested: fc.array(fc.tuple(fc.constantFrom(...GROUPS), fc.constantFrom(...GROUPS)), { maxLength: 2 }),
  tier: fc.option(fc.constantFrom("gold", "silver"), { nil: undefined }),
  owner: fc.option(fc.constantFrom("team-a", "team-b"), { nil: undefined }),
  geo: fc.option(fc.constantFrom("us", "eu"), { nil: undefined }),
  action: fc.constantFrom(...ACTIONS),
  model: fc.constantFrom(...MODELS, "m2"),
  provider: fc.constantFrom(...PROVIDERS),
  streaming: fc.boolean(),
  environment: fc.constantFrom("prod", "dev"),
  maxTokens: fc.option(fc.integer({ min: 0, max: 300 }), { nil: undefined }),
});

type GeneratedRequest = typeof requestArbitrary extends fc.Arbitrary<infer T> ? T : never;

function toRequest(r: GeneratedRequest): CedarRequest {
  const principal = { type: "Bedrock::Workload", id: r.principal };
  const guardrail = r.action === "ApplyGuardrail";
  const resource = guardrail ? { type: "Bedrock::Guardrail", id: "gr0" } : { type: "Bedrock::Model", id: r.model };
  const groupEntities = new Map<string, CedarEntity>();
  for (const [child, parent] of r.nested) {
    const existing = groupEntities.get(child);
    groupEntities.set(child, { uid: { type: "Bedrock::Group", id: child }, attrs: {}, parents: [...(existing?.parents ?? []), { type: "Bedrock::Group", id: parent }] });
  }
  return {
    principal,
    action: { type: "Bedrock::Action", id: r.action },
    resource,
    context: {
      environment: r.environment,
      region: "us-east-1",
      streaming: r.streaming,
      actionType: "read",
      dataSensitivity: [],
      toolsOffered: [],
      payloadInspected: true,
      ...(r.maxTokens !== undefined && { maxTokens: r.maxTokens }),
    },
    entities: [
      { uid: principal, attrs: { ...(r.owner && { owner: r.owner }) }, parents: r.groups.map((id) => ({ type: "Bedrock::Group", id })), ...(r.tier && { tags: { tier: r.tier } }) },
      guardrail
        ? { uid: resource, attrs: {}, parents: [] }
        : {
            uid: resource,
            attrs: { kind: r.model === "p0" ? "inference-profile" : "foundation-model", ...(r.geo && { geo: r.geo }) },
            parents: [...(r.model === "p0" ? [{ type: "Bedrock::Model", id: "m0" }] : []), { type: "Bedrock::Provider", id: r.provider }],
          },
      ...groupEntities.values(),
    ],
  };
}

const sealedCopies = new Map<string, CedarEntity>();
/** One sealed (deep-frozen, marked) copy per distinct entity, reused like the request builder's. */
function sealedCopy(entity: CedarEntity): CedarEntity {
  const key = JSON.stringify(entity);
  let copy = sealedCopies.get(key);
  if (copy === undefined) sealedCopies.set(key, (copy = sealEntity(structuredClone(entity))));
  return copy;
}

/** The schema's action entities, as the engine sends them: Cedar needs them to decide `action in`. */
const ACTION_ENTITIES: CedarEntity[] = (() => {
  // Every action of the schema, its groups named as Cedar resolves them: the reference sees them all.
  const json = cedar.schemaToJsonWithResolvedTypes(schema);
  if (json.type !== "success") throw new Error("schema");
  return Object.entries(json.json["Bedrock"]!.actions).map(([id, action]) => ({
    uid: { type: "Bedrock::Action", id },
    attrs: {},
    parents: (action.memberOf ?? []).map((parent) => ({ type: parent.type!, id: parent.id })),
  }));
})();

/** Cedar's answer with every given policy in one set, the whole request, nothing pruned or sliced. */
function reference(policies: readonly { id: string; text: string }[], request: CedarRequest): ReferenceAnswer {
  // A hierarchy with a cycle is refused whole: a deny with errors, sliced or not.
  return wholeSetAnswer(Object.fromEntries(policies.map((p) => [p.id, p.text])), request, ACTION_ENTITIES);
}

describe("policy slicing", () => {
  const original = { ...wasm };
  afterEach(() => Object.assign(wasm, original));

  it("a sliced decision is the whole set's decision: effect, determining policies, errors and shadow (differential, thousands of cases)", () => {
    const seen = { allow: 0, deny: 0, errored: 0, shadowDiffers: 0, cases: 0, inTwoParts: 0 };
    const engines: CedarEngine[] = [];
    const evaluationsInParts = () => engines.reduce((sum, engine) => sum + engine.evaluationsInParts, 0);
    fc.assert(
      fc.property(policySetArbitrary, fc.array(requestArbitrary, { minLength: 20, maxLength: 20 }), (policies, requests) => {
        if (policies.length === 0) return;
        const text = policies.map((p) => `@id("${p.id}")${p.shadow ? "\n@shadow" : ""}\n${p.text}`).join("\n");
        const governance = createGovernance({ environment: "test", policies: text });
        // The same set with every slice cut in two parts as soon as it holds a policy that names no
        // principal and no resource (by default, from 32 of them): each part evaluated on its own.
        const inParts = new CedarEngine([{ source: "test", text }], schema, { sliceLimits: { sharedPart: 1 } });
        engines.push(inParts);
        const enforced = policies.filter((p) => !p.shadow);
        // Every request twice: the second answer comes from the memo, and must be the same.
        for (const generated of [...requests, ...requests]) {
          const request = toRequest(generated);
          const ours = governance.engine.authorize(request);
          const fromParts = inParts.authorize(request);
          assert.deepEqual({ ...fromParts, policySetVersion: ours.policySetVersion }, ours, `in parts: ${JSON.stringify({ text, request, fromParts, ours })}`);
          const expected = reference(enforced, request);
          const context = JSON.stringify({ text, request, ours, expected });
          // The request builder's entities (sealed, reused across calls) take a faster path to their slice.
          const sealed = governance.engine.authorize({ ...request, entities: request.entities.map(sealedCopy) });
          assert.deepEqual({ ...sealed, policies: [...sealed.policies].sort() }, { ...ours, policies: [...ours.policies].sort() }, context);
          assert.equal(ours.effect, expected.effect, context);
          assert.equal(ours.errors.length > 0, expected.errored, context);
          assert.deepEqual([...ours.policies].sort(), expected.policies, context);
          if (ours.shadow === undefined) {
            assert.equal(reference(policies, request).effect, ours.effect, `shadow policies would change nothing: ${context}`);
          } else {
            const full = reference(policies, request);
            assert.equal(ours.shadow.effect, full.effect, context);
            assert.deepEqual([...ours.shadow.policies].sort(), full.policies, context);
            seen.shadowDiffers++;
          }
          seen[ours.effect]++;
          if (expected.errored) seen.errored++;
          seen.cases++;
        }
      }),
      { numRuns: 120 },
    );
    seen.inTwoParts = evaluationsInParts();
    assert.ok(seen.cases >= 4000, `thousands of cases: ${JSON.stringify(seen)}`);
    assert.ok(seen.allow > 300 && seen.deny > 300 && seen.errored > 20 && seen.shadowDiffers > 5 && seen.inTwoParts > 200, `every outcome exercised: ${JSON.stringify(seen)}`);
  });

  it("a call crosses into wasm with only the policies that can apply to it, at any set size", async () => {
    const preparsed: number[] = [];
    wasm.preparsePolicySet = (id, policies) => {
      const count = Object.keys((policies as { staticPolicies: object }).staticPolicies).length;
      // An empty set is an engine of an earlier test, collected by the GC, its sets emptied: not this call's.
      if (count > 0) preparsed.push(count);
      return original.preparsePolicySet(id, policies);
    };
    for (const size of [10, 2_000]) {
      const handler = new MemoryHandler();
      // Counted in wasm: the JavaScript evaluator would decide this call without preparsing anything.
      const governance = createGovernance({ environment: "production", policies: generatePolicies(size), evaluator: "wasm" });
      const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: handler, governance, maxAttempts: 1 });
      preparsed.length = 0;
      await runAs(BENCH_IDENTITY, () => client.converse(CONVERSE_INPUT));
      assert.equal(handler.requests.length, 1);
      // Of the seven organisation-wide rules, five can apply to the bench identity calling Haiku (not
      // the Opus rule, not the one about another workload), and none of the generated ones.
      assert.deepEqual(preparsed, [5], `policies preparsed for the call at ${size} policies`);
      preparsed.length = 0;
      await runAs(BENCH_IDENTITY, () => client.converse({ ...CONVERSE_INPUT, inferenceConfig: { maxTokens: 100 } }));
      assert.deepEqual(preparsed, [], "the slice is preparsed once, then reused");
    }
  });

  it("keeps its preparsed slices within their limits, empties the evicted ones in wasm and reuses their ids, and preparses them again when needed", () => {
    const emptied: string[] = [];
    wasm.preparsePolicySet = (id, policies) => {
      if (Object.keys((policies as { staticPolicies: object }).staticPolicies).length === 0) emptied.push(id);
      return original.preparsePolicySet(id, policies);
    };
    const policies = WORKLOADS.map((w, i) => ({
      id: `only-${w}`,
      text: `permit (principal == ${ref("Workload", w)}, action, resource);`,
      effect: "permit" as const,
      shadow: false,
      principal: { op: "==", entity: { type: "Bedrock::Workload", id: w } },
      action: { op: "All" },
      resource: { op: "All" },
      conditions: [],
      annotations: { id: `only-${w}`, position: String(i) },
    }));
    const slices = new PolicySlices(policies, "slicing-test", [], { slices: 2 });
    const requestOf = (w: string): CedarRequest => ({
      principal: { type: "Bedrock::Workload", id: w },
      action: { type: "Bedrock::Action", id: "Converse" },
      resource: { type: "Bedrock::Model", id: "m0" },
      context: {},
      entities: [],
    });
    const decide = (w: string) => {
      const parts = slices.sliceFor(requestOf(w));
      assert.equal(parts.length, 1);
      slices.use(parts, true);
      const answer = wasm.statefulIsAuthorized({ ...requestOf(w), preparsedPolicySetId: parts[0]!.enforcedSetId } as never);
      assert.equal(answer.type, "success");
      return answer.type === "success" ? answer.response.decision : "failure";
    };
    assert.equal(decide("w0"), "allow");
    assert.equal(decide("w1"), "allow");
    assert.equal(slices.preparsedSlices, 2);
    assert.equal(decide("w2"), "allow");
    assert.equal(slices.preparsedSlices, 2, "bounded");
    assert.equal(emptied.length, 1, "the least recently used slice (w0's) was emptied in wasm");
    assert.equal(decide("w0"), "allow", "an evicted slice is preparsed again on its next use");
    assert.equal(decide("w9"), "deny", "a principal no policy names gets the empty slice: default deny");
    for (let round = 0; round < 20; round++) for (const w of WORKLOADS) assert.equal(decide(w), "allow");
    // cedar-wasm cannot delete a set: emptied ids are reused, so its map stays as small as the limit.
    assert.equal(slices.liveSetIds.size, 3, "set ids: the limit (2) plus the one being preparsed");
  });

  it("policies that name no principal and no resource are preparsed once for every workload, not once per workload's slice", () => {
    let preparsed = 0;
    wasm.preparsePolicySet = (id, policies) => {
      preparsed += Object.keys((policies as { staticPolicies: object }).staticPolicies).length;
      return original.preparsePolicySet(id, policies);
    };
    const WORKLOADS = 50;
    const text = [
      ...Array.from({ length: 100 }, (_, k) => `@id("shared-${k}")\nforbid (principal, action, resource) when { context has purpose && context.purpose == "banned-${k}" };`),
      ...Array.from({ length: WORKLOADS }, (_, w) => `@id("w${w}")\npermit (principal == Bedrock::Workload::"w${w}", action, resource);`),
    ].join("\n");
    const request = (w: number, purpose: string): CedarRequest => ({
      principal: { type: "Bedrock::Workload", id: `w${w}` },
      action: { type: "Bedrock::Action", id: "Converse" },
      resource: { type: "Bedrock::Model", id: "m0" },
      context: { purpose },
      entities: [],
    });
    // Room for 1,000 preparsed policies: 50 slices of 101 would never fit, and would be preparsed again on every call.
    const rounds = (sharedPart: number) => {
      const engine = new CedarEngine([{ source: "test", text }], schema, { sliceLimits: { policies: 1_000, sharedPart }, evaluator: "wasm" });
      const perRound: number[] = [];
      for (let round = 0; round < 3; round++) {
        preparsed = 0;
        for (let w = 0; w < WORKLOADS; w++) {
          assert.equal(engine.authorize(request(w, `task-${round}`)).effect, "allow");
          const denied = engine.authorize(request(w, `banned-${w}`));
          assert.deepEqual([denied.effect, denied.policies], ["deny", [`shared-${w}`]]);
        }
        perRound.push(preparsed);
      }
      return perRound;
    };
    const [first, ...later] = rounds(32);
    assert.ok(first! <= 100 + WORKLOADS, `the shared part once, then one policy per workload: ${first}`);
    assert.deepEqual(later, [0, 0], "nothing preparsed again");
    const whole = rounds(Number.POSITIVE_INFINITY);
    assert.ok(whole[2]! > 1_000, `one slice per workload, thrashing: ${whole}`);
  });

  it("review regressions: literals beyond 2^53, long operator chains, action groups in groups, entities reached through context and attributes", () => {
    const W = (id: string) => ({ type: "Bedrock::Workload", id });
    const G = (id: string) => ({ type: "Bedrock::Group", id });
    const M = (id: string) => ({ type: "Bedrock::Model", id });
    const A = (id: string) => ({ type: "Bedrock::Action", id });
    // A schema with action groups two deep and entities that hold entities.
    const schema = `namespace Bedrock {
      entity Group = { "level"?: Long, "boss"?: Workload };
      entity Workload in [Group] = { "owner"?: String, "manager"?: Workload } tags String;
      entity Provider;
      entity Model in [Model, Provider] = { "kind": String, "owner"?: Workload };
      type Ctx = { "who"?: Workload, "grp"?: Group, "act"?: Action, "maxTokens"?: Long, "region"?: String, "streaming"?: Bool };
      action Outer;
      action Inner in [Outer];
      action "Converse" in [Inner] appliesTo { principal: Workload, resource: Model, context: Ctx };
      action "Custom" appliesTo { principal: Workload, resource: Model, context: Ctx };
    }`;
    const actions = [
      { uid: A("Converse"), attrs: {}, parents: [A("Inner")] },
      { uid: A("Inner"), attrs: {}, parents: [A("Outer")] },
      { uid: A("Outer"), attrs: {}, parents: [] },
    ];
    const entities = [
      { uid: W("w1"), attrs: { owner: "a", manager: { __entity: W("boss") } }, parents: [G("g1")], tags: { t: "x" } },
      { uid: M("m1"), attrs: { kind: "fm", owner: { __entity: W("w1") } }, parents: [] },
      { uid: G("g1"), attrs: { level: 5, boss: { __entity: W("w1") } }, parents: [G("g2")] },
      { uid: W("boss"), attrs: { owner: "b" }, parents: [G("bosses")] },
    ];
    const request = (context: Record<string, unknown> = {}, action = "Converse", extra: CedarEntity[] = []): CedarRequest =>
      ({ principal: W("w1"), action: A(action), resource: M("m1"), context, entities: [...entities, ...extra] }) as CedarRequest;
    const permitAll = "permit (principal, action, resource);\n";
    const chain = Array.from({ length: 60 }, (_, i) => `context.region == "r${i}"`).join(" || ");
    const cases: [string, string, CedarRequest][] = [
      // JSON would round 9007199254740993 to ...992: the slice must be preparsed from the text.
      ["a literal beyond 2^53", permitAll + `forbid (principal, action, resource) when { context has maxTokens && context.maxTokens * 8 < 9007199254740993 };`, request({ maxTokens: 2 ** 50 })],
      ["i64::MAX", `permit (principal, action, resource) when { context has maxTokens && context.maxTokens < 9223372036854775807 };`, request({ maxTokens: 1 })],
      ["60 chained ||", `permit (principal, action, resource) when { context has region && (${chain}) };`, request({ region: "r3" })],
      ["@shadow with 60 chained ||", permitAll + `@shadow\nforbid (principal, action, resource) when { context has region && (${chain}) };`, request({ region: "r3" })],
      ["action in a group of a group (scope)", permitAll + `forbid (principal, action in Bedrock::Action::"Outer", resource);`, request()],
      ["action in a group of a group (condition)", permitAll + `forbid (principal, action, resource) when { action in Bedrock::Action::"Outer" };`, request()],
      [
        "an action the schema does not know, whose entity the request brings",
        permitAll + `forbid (principal, action, resource) when { action in Bedrock::Action::"Inner" };`,
        request({}, "Elsewhere", [{ uid: A("Elsewhere"), attrs: {}, parents: [A("Inner")] }]),
      ],
      ["context.who in a group", permitAll + `forbid (principal, action, resource) when { context has who && context.who in Bedrock::Group::"g2" };`, request({ who: { __entity: W("w1") } })],
      ["principal in context.grp", permitAll + `forbid (principal, action, resource) when { context has grp && principal in context.grp };`, request({ grp: { __entity: G("g2") } })],
      ["context.act in an action group", permitAll + `forbid (principal, action, resource) when { context has act && context.act in Bedrock::Action::"Inner" };`, request({ act: { __entity: A("Converse") } })],
      ["an attribute of an attribute", permitAll + `forbid (principal, action, resource) when { principal has manager && principal.manager has owner && principal.manager.owner == "b" };`, request()],
      ["an attribute in a group", permitAll + `forbid (principal, action, resource) when { principal has manager && principal.manager in Bedrock::Group::"bosses" };`, request()],
      ["an entity literal's attribute", permitAll + `forbid (principal, action, resource) when { Bedrock::Group::"g1" has level && Bedrock::Group::"g1".level > 3 };`, request()],
      ["an entity literal's entity in a group", permitAll + `forbid (principal, action, resource) when { Bedrock::Group::"g1" has boss && Bedrock::Group::"g1".boss in Bedrock::Group::"g2" };`, request()],
      // Any action's groups, not only the requested one's (the re-review's second finding).
      ["another action in a group", permitAll + `forbid (principal, action, resource) when { Bedrock::Action::"Converse" in Bedrock::Action::"Outer" };`, request({}, "Custom")],
      ["resource.owner == principal", permitAll + `forbid (principal, action, resource) when { resource has owner && resource.owner == principal };`, request()],
    ];
    for (const [label, text, r] of cases) {
      const engine = new CedarEngine([{ source: "case.cedar", text }], schema);
      const ours = engine.authorize(r);
      // What is enforced: the set without its @shadow policy (the one case with one has it last).
      const enforcedText = text.includes("@shadow") ? text.slice(0, text.indexOf("@shadow")) : text;
      const answer = cedar.isAuthorized({
        principal: r.principal,
        action: r.action,
        resource: r.resource,
        context: r.context as cedar.Context,
        entities: [...r.entities, ...actions.filter((a) => !r.entities.some((e) => e.uid.id === a.uid.id && e.uid.type === a.uid.type))] as cedar.EntityJson[],
        policies: { staticPolicies: enforcedText },
      });
      assert.equal(answer.type, "success", label);
      if (answer.type !== "success") continue;
      const expected = answer.response.diagnostics.errors.length > 0 ? "deny" : answer.response.decision;
      assert.equal(ours.effect, expected, `${label}: ${JSON.stringify(ours)}`);
      assert.deepEqual(ours.errors, [], `${label}: evaluated cleanly`);
    }
    // An action group named relative to its namespace is that namespace's (the re-review's first finding).
    const app = new CedarEngine(
      [{ source: "app.cedar", text: `permit (principal, action, resource);\nforbid (principal, action in App::Action::"Mutations", resource);` }],
      `namespace App { entity User; entity Doc; action Mutations; action Write in [Action::"Mutations"] appliesTo { principal: [User], resource: [Doc] }; }`,
    );
    const write = app.authorize({
      principal: { type: "App::User", id: "u" },
      action: { type: "App::Action", id: "Write" },
      resource: { type: "App::Doc", id: "d" },
      context: {},
      entities: [],
    });
    assert.equal(write.effect, "deny", JSON.stringify(write));
    assert.deepEqual(write.policies, ["app.cedar:2"]);
  });

  it("workloads no policy's scope names share one scope key, by type and groups; a named one, or other groups, gets its own", () => {
    const scope = (principal: unknown) => ({ principal, action: { op: "All" }, resource: { op: "All" } });
    const policies = [
      { id: "named", text: "", effect: "forbid" as const, shadow: false, ...scope({ op: "==", entity: { type: "Bedrock::Workload", id: "w0" } }), conditions: [], annotations: {} },
      { id: "group", text: "", effect: "permit" as const, shadow: false, ...scope({ op: "in", entity: { type: "Bedrock::Group", id: "g0" } }), conditions: [], annotations: {} },
      { id: "group-in-itself", text: "", effect: "forbid" as const, shadow: false, ...scope({ op: "is", entity_type: "Bedrock::Workload", in: { entity: { type: "Bedrock::Workload", id: "w1" } } }), conditions: [], annotations: {} },
    ];
    const slices = new PolicySlices(policies, "scope-key-test", []);
    const sliceOf = (w: string, groups: string[]) =>
      slices.sliceFor({
        principal: { type: "Bedrock::Workload", id: w },
        action: { type: "Bedrock::Action", id: "Converse" },
        resource: { type: "Bedrock::Model", id: "m0" },
        context: {},
        entities: [{ uid: { type: "Bedrock::Workload", id: w }, attrs: {}, parents: groups.map((id) => ({ type: "Bedrock::Group", id })) }],
      });
    const size = (parts: readonly Slice[]) => parts.reduce((sum, part) => sum + (part as unknown as { size: number }).size, 0);
    const unnamed = sliceOf("new-1", ["g0"]);
    assert.equal(size(unnamed), 1, "the group's permit");
    assert.equal(sliceOf("new-2", ["g0"]), unnamed, "the same parts, found once for both");
    assert.equal(size(sliceOf("new-3", [])), 0, "other groups: another key, other policies");
    // Named by a policy's scope (==, or is … in itself): each its own key, with its own policies.
    assert.equal(size(sliceOf("w0", ["g0"])), 2, "w0: the group's permit and the forbid naming it");
    assert.equal(size(sliceOf("w1", ["g0"])), 2, "w1: the group's permit and the forbid of `is … in` it");
    assert.equal(size(sliceOf("new-4", ["g0"])), 1, "and a new workload still gets the group's only");
  });

  it("a policy whose text wasm cannot be given without its scope: wasm is then given what the scope reads, whichever evaluator ran first", () => {
    const schema = `namespace Bedrock {
      entity Group;
      entity Workload in [Group];
      entity Model;
      action "Converse" appliesTo { principal: Workload, resource: Model, context: { "amount"?: decimal } };
    }`;
    // A cut Cedar's parse does not confirm is refused, and wasm decides that policy's scope itself:
    // it needs the principal's groups. (No loadable text is known to be cut wrong: the cut's reader
    // and Cedar differ only on characters the loader refuses. So the check is made to refuse it.)
    wasm.policyToJson = (policy) =>
      typeof policy === "string" && policy.startsWith(`@id("group-permit")`) && policy.includes("(principal, action, resource)")
        ? { type: "failure", errors: [{ message: "refused by the test", help: null, code: null, url: null, severity: null, sourceLocations: [], related: [] }] }
        : original.policyToJson(policy);
    const text =
      `@id("group-permit")\npermit (principal in Bedrock::Group::"g1", action, resource);\n` +
      `@id("small-amounts")\nforbid (principal, action, resource) when { context has amount && context.amount.lessThan(decimal("1000.0")) };\n`;
    const request = (principal: string, amount: string): CedarRequest => ({
      principal: { type: "Bedrock::Workload", id: principal },
      action: { type: "Bedrock::Action", id: "Converse" },
      resource: { type: "Bedrock::Model", id: "m1" },
      context: { amount: { __extn: { fn: "decimal", arg: amount } } },
      entities: [{ uid: { type: "Bedrock::Workload", id: principal }, attrs: {}, parents: [{ type: "Bedrock::Group", id: principal === "w1" ? "g1" : "g2" }] }],
    });
    const expected = (r: CedarRequest) => {
      const answer = cedar.isAuthorized({ ...r, context: r.context as cedar.Context, entities: r.entities as cedar.EntityJson[], policies: { staticPolicies: text } });
      assert.equal(answer.type, "success");
      return answer.type === "success" ? answer.response.decision : undefined;
    };
    // In order: decided in JavaScript (the scope left out); then one the JavaScript evaluator does
    // not model (beyond 2^53 ten-thousandths), so the slice is preparsed, the cut refused, and
    // wasm needs the principal's groups; then JavaScript again, with the widened plan.
    const requests = [request("w1", "2000.0"), request("w1", "5.0"), request("w1", "922337203685477.0000"), request("w2", "922337203685477.0000"), request("w1", "3000.0")];
    assert.deepEqual(requests.map(expected), ["allow", "deny", "allow", "deny", "allow"], "the reference");
    for (const evaluator of ["javascript", "wasm"] as const) {
      const engine = new CedarEngine([{ source: "widen.cedar", text }], schema, { evaluator });
      const before = engine.evaluationsInJavaScript;
      for (const r of requests) {
        const ours = engine.authorize(r);
        assert.equal(ours.effect, expected(r), `${evaluator}: ${JSON.stringify({ r, ours })}`);
        assert.deepEqual(ours.errors, [], `${evaluator}: evaluated cleanly`);
      }
      assert.equal(engine.evaluationsInJavaScript - before, evaluator === "javascript" ? 3 : 0, `${evaluator}: which requests JavaScript decided`);
    }
  });

  it("cuts the scope out only when Cedar confirms it: with cuts refused for any policies, every decision is still the whole set's (differential, both evaluators, parts, eviction, memo)", () => {
    // A refused cut keeps its policy's scope in wasm, and widens its slice to every entity, whole.
    // No loadable text is known to be cut wrong, so the check is made to refuse cuts at random.
    let refused = new Set<string>();
    let refusing = false;
    let refusals = 0;
    wasm.policyToJson = (policy) => {
      const id = typeof policy === "string" ? /^@id\("(p\d+)"\)/.exec(policy)?.[1] : undefined;
      if (refusing && id !== undefined && refused.has(id)) {
        refusals++;
        return { type: "failure", errors: [{ message: "refused by the test", help: null, code: null, url: null, severity: null, sourceLocations: [], related: [] }] };
      }
      return original.policyToJson(policy);
    };
    const configurations = [
      { evaluator: "javascript" },
      { evaluator: "wasm" },
      { evaluator: "javascript", sliceLimits: { sharedPart: 1, slices: 2, policies: 6, scopes: 3 } },
      { evaluator: "wasm", sliceLimits: { sharedPart: 1 } },
    ] as const;
    const seen = { cases: 0, errored: 0, widened: 0 };
    wasm.preparsePolicySet = (id, policies) => {
      // A set holding a policy with its scope: a slice whose plan widened.
      if (Object.values((policies as { staticPolicies: Record<string, string> }).staticPolicies).some((text) => !text.includes("(principal, action, resource)"))) seen.widened++;
      return original.preparsePolicySet(id, policies);
    };
    fc.assert(
      fc.property(policySetArbitrary, fc.array(fc.boolean(), { minLength: 24, maxLength: 24 }), fc.array(requestArbitrary, { minLength: 12, maxLength: 12 }), (policies, mask, requests) => {
        if (policies.length === 0) return;
        const text = policies.map((p) => `@id("${p.id}")${p.shadow ? "\n@shadow" : ""}\n${p.text}`).join("\n");
        refused = new Set(policies.filter((_, i) => mask[i]).map((p) => p.id));
        const engines = configurations.map((options) => new CedarEngine([{ source: "test", text }], schema, options));
        const enforced = policies.filter((p) => !p.shadow);
        refusing = true;
        try {
          for (const generated of [...requests, ...requests.slice().reverse()]) {
            const request = toRequest(generated);
            const expected = reference(enforced, request);
            const full = reference(policies, request);
            for (const [c, engine] of engines.entries()) {
              const ours = engine.authorize(c % 2 === 0 ? { ...request, entities: request.entities.map(sealedCopy) } : request);
              const context = JSON.stringify({ configuration: configurations[c], text, refused: [...refused], request, ours, expected });
              assert.equal(ours.effect, expected.effect, context);
              assert.equal(ours.errors.length > 0, expected.errored, context);
              assert.deepEqual([...ours.policies].sort(), expected.policies, context);
              assert.equal(ours.shadow?.effect ?? ours.effect, full.effect, context);
              if (expected.errored) seen.errored++;
              seen.cases++;
            }
          }
        } finally {
          refusing = false;
        }
      }),
      { numRuns: 40 },
    );
    assert.ok(seen.cases > 2000 && seen.errored > 20 && refusals > 50 && seen.widened > 50, `the refused cuts were exercised: ${JSON.stringify({ ...seen, refusals })}`);
  });

  it("a wasm restart while a request's parts are cut and preparsed: every part is preparsed in the new instance before it is evaluated", () => {
    const text = [
      `@id("shared")\nforbid (principal, action, resource) when { context has maxTokens && context.maxTokens > 1000 };`,
      `@id("w1")\npermit (principal == Bedrock::Workload::"w1", action, resource);`,
    ].join("\n");
    const engine = new CedarEngine([{ source: "t", text }], shippedSchema(), { evaluator: "wasm", sliceLimits: { sharedPart: 1 } });
    const generation = wasmGeneration();
    let restarted = false;
    // The second part's cut throws, as cedar-wasm trapping in it would: the instance is replaced.
    wasm.policyToJson = (policy) => {
      if (!restarted && typeof policy === "string" && policy.startsWith(`@id("w1")`)) {
        restarted = true;
        reinstantiateWasm();
        throw new Error("a trap in the parse (test)");
      }
      return original.policyToJson(policy);
    };
    const request = { principal: { type: "Bedrock::Workload", id: "w1" }, action: { type: "Bedrock::Action", id: "Converse" }, resource: { type: "Bedrock::Model", id: "m0" }, context: { maxTokens: 10 }, entities: [] };
    const decision = engine.authorize(request);
    assert.ok(restarted && wasmGeneration() === generation + 1);
    assert.deepEqual([decision.effect, decision.errors], ["allow", []], "not denied for a set the restart lost");
    assert.equal(engine.evaluationsInParts, 1, "decided in its two parts");
  });

  it("the JavaScript evaluator parses no policy text: a workload's first call cuts no scope out in wasm", async () => {
    let parsed = 0;
    wasm.policyToJson = (policy) => {
      parsed++;
      return original.policyToJson(policy);
    };
    // In wasm, the bench identity's slice is given without its scopes, each cut checked by a parse
    // (four of its five policies were cut already, for the engine's warm-up at construction).
    for (const [evaluator, cuts] of [["javascript", 0], ["wasm", 1]] as const) {
      const governance = createGovernance({ environment: "production", policies: generatePolicies(10), evaluator });
      const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: new MemoryHandler(), governance, maxAttempts: 1 });
      parsed = 0;
      const response = await runAs(BENCH_IDENTITY, () => client.converse(CONVERSE_INPUT));
      assert.ok(response.output, evaluator);
      assert.equal(parsed, cuts, `${evaluator}: policies parsed on the first call`);
    }
  });
});
