/**
 * The JavaScript evaluator answers only when its answer is Cedar's. Differential, over generated
 * policies (every operator of the subset, nested, with operands of the wrong kind, attributes that
 * may be missing, entities that may not be in the request, integers near 2^53 and 2^63, operators
 * outside the subset) and generated requests (entity hierarchies, tags, entity references in
 * context and attributes, entities given twice): each answer is compared with cedar-wasm's for
 * the same policies and the same request. Where Cedar errors or refuses the request, the evaluator
 * must not answer.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import fc from "fast-check";
import { compilePolicy, SubsetProgram, type CompiledPolicy, type SubsetPolicy } from "../src/policy/subset-evaluator.js";
import { createGovernance, GovernedBedrockRuntimeClient, runAs, shippedSchema } from "../src/index.js";
import { CedarEngine } from "../src/policy/cedar-engine.js";
import { markWasmLost, reinstantiateWasm, wasm, wasmGeneration } from "../src/policy/cedar-wasm.js";
import type { CedarEntity, CedarRequest, CedarValue } from "../src/policy/request-shape.js";
import { CREDENTIALS, invoiceAgent, converseInput } from "./support/governance.js";
import { countEvaluations } from "./support/evaluations.js";
import { MemoryHandler } from "./support/memory-handler.js";

const USERS = ["u0", "u1", "u2"];
const GROUPS = ["g0", "g1", "g2"];
const DOCS = ["d0", "d1"];
const user = (id: string) => `A::User::"${id}"`;
const group = (id: string) => `A::Group::"${id}"`;
const doc = (id: string) => `A::Doc::"${id}"`;

/** Decimal texts: what Cedar reads (leading zeros, -0.0, four digits), what it refuses, what this evaluator leaves to it (beyond 2^53 ten-thousandths). */
const DECIMAL_TEXTS = ["1.0", "1.00", "1.5", "-0.5", "0.0", "-0.0", "01.5", "1.2345", "500.0", "1.", ".5", "1.00000", "+1.0", "922337203685477.5807", "900719925474.0991", "900719925474.0992"];

const integer = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom(9007199254740991, -9007199254740991, 4503599627370496, 3037000499, 9223372036854775807n, 9007199254740993n),
);
const text = fc.oneof(fc.constantFrom("", "a", "ab", "a*b", "é", "💡", "x\\*y"), fc.string({ maxLength: 3 }));
const literal: fc.Arbitrary<string> = fc.oneof(
  integer.map(String),
  text.map((s) => JSON.stringify(s)),
  fc.constantFrom("true", "false"),
  fc.constantFrom(...USERS).map(user),
  fc.constantFrom(...GROUPS).map(group),
  fc.constantFrom(...DOCS).map(doc),
);
const path = fc.constantFrom(
  "context.n",
  "context.s",
  "context.b",
  "context.r",
  "context.e",
  "context.set",
  "context.es",
  "context.missing",
  "principal.name",
  "principal.level",
  "principal.boss",
  "resource.owner",
  "resource.meta",
  "resource.meta.k",
  "context.rec",
  "context.rec.x",
  "principal",
  "resource",
  "action",
  "context",
);
/** Expressions, deliberately loose in their kinds: many evaluations error in Cedar. */
const expression: fc.Arbitrary<string> = fc.letrec<{ expr: string }>((tie) => ({
  expr: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    literal,
    path,
    path,
    fc.tuple(tie("expr"), fc.constantFrom("==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "&&", "||", "in"), tie("expr")).map(([a, op, b]) => `(${a} ${op} ${b})`),
    tie("expr").map((a) => `(!${a})`),
    tie("expr").map((a) => `(-${a})`),
    fc.tuple(tie("expr"), tie("expr"), tie("expr")).map(([a, b, c]) => `(if ${a} then ${b} else ${c})`),
    fc.tuple(tie("expr"), fc.constantFrom("n", "s", "b", "r", "name", "level", "boss", "owner", "meta", "k", "x", "rec", "missing", "meta.k", "rec.x")).map(([a, attr]) => `(${a} has ${attr})`),
    fc.tuple(tie("expr"), fc.constantFrom("A::User", "A::Group", "A::Doc")).map(([a, type]) => `(${a} is ${type})`),
    fc.tuple(tie("expr"), fc.constantFrom(...GROUPS).map(group)).map(([a, g]) => `(${a} is A::User in ${g})`),
    fc.tuple(tie("expr"), fc.constantFrom('"a*"', '"*b"', '"*"', '"a\\*b"', '"*💡*"', '""', '"a*b*"')).map(([a, p]) => `(${a} like ${p})`),
    fc.tuple(tie("expr"), fc.constantFrom("contains", "containsAll", "containsAny"), tie("expr")).map(([a, m, b]) => `${wrap(a)}.${m}(${b})`),
    tie("expr").map((a) => `${wrap(a)}.isEmpty()`),
    fc.tuple(tie("expr"), fc.constantFrom("hasTag", "getTag"), fc.oneof(fc.constantFrom('"t"', '"u"'), tie("expr"))).map(([a, m, b]) => `${wrap(a)}.${m}(${b})`),
    fc.array(tie("expr"), { maxLength: 3 }).map((items) => `[${items.join(", ")}]`),
    fc.tuple(tie("expr"), tie("expr")).map(([a, b]) => `{x: ${a}, "y z": ${b}}`),
    fc.tuple(tie("expr"), fc.constantFrom("name", "level", "x", "k", "owner")).map(([a, attr]) => `${wrap(a)}.${attr}`),
    // Decimals: literal text Cedar reads or refuses, text from the request, compared and tested for equality.
    fc.oneof(fc.constantFrom(...DECIMAL_TEXTS).map((d) => `decimal("${d}")`), fc.constant("decimal(context.s)"), fc.constant("context.d")),
    fc.tuple(tie("expr"), fc.constantFrom("lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"), tie("expr")).map(([a, m, b]) => `${wrap(a)}.${m}(${b})`),
    // Outside the subset: the whole set goes to Cedar.
    fc.constantFrom('ip("10.0.0.1").isIpv4()', 'datetime("2024-01-01") < datetime("2025-01-01")'),
  ),
})).expr;

function wrap(expression: string): string {
  return expression.startsWith("(") || /^[\w:."]+$/.test(expression) ? expression : `(${expression})`;
}

const principalScope = fc.oneof(
  fc.constant("principal"),
  fc.constantFrom(...USERS).map((u) => `principal == ${user(u)}`),
  fc.constantFrom(...GROUPS).map((g) => `principal in ${group(g)}`),
  fc.constant("principal is A::User"),
  fc.constantFrom(...GROUPS).map((g) => `principal is A::User in ${group(g)}`),
);
const actionScope = fc.oneof(
  fc.constant("action"),
  fc.constant(`action == A::Action::"read"`),
  fc.constant(`action in A::Action::"all"`),
  fc.constant(`action in [A::Action::"write", A::Action::"all"]`),
);
const resourceScope = fc.oneof(fc.constant("resource"), fc.constantFrom(...DOCS).map((d) => `resource == ${doc(d)}`), fc.constant(`resource in A::Folder::"f"`));

const policyArbitrary = fc.record({
  effect: fc.constantFrom("permit", "permit", "forbid"),
  principal: principalScope,
  action: actionScope,
  resource: resourceScope,
  conditions: fc.array(fc.tuple(fc.constantFrom("when", "unless"), expression), { maxLength: 2 }),
  shadow: fc.boolean(),
});

const valueArbitrary: fc.Arbitrary<CedarValue> = fc.letrec<{ value: CedarValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.integer({ min: -3, max: 3 }),
    fc.constantFrom(9007199254740991, -9007199254740991, 4503599627370496),
    text,
    fc.boolean(),
    fc.constantFrom(...USERS, ...GROUPS).map((id) => ({ __entity: { type: id.startsWith("u") ? "A::User" : "A::Group", id } })),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom("x", "k", "y z"), tie("value"), { maxKeys: 2 }),
    // Decimals as the request shape admits them (Cedar reads each).
    fc.constantFrom("1.5", "1.50", "-0.5", "-0.0", "500.0", "900719925474.0992", "922337203685477.5807").map((arg) => ({ __extn: { fn: "decimal", arg } })),
  ),
})).value;

const entityArbitrary = (type: string, id: string) =>
  fc.record({
    uid: fc.constant({ type, id }),
    attrs: fc.dictionary(fc.constantFrom("name", "level", "boss", "owner", "meta"), valueArbitrary, { maxKeys: 3 }),
    parents: fc.subarray([...GROUPS.map((g) => ({ type: "A::Group", id: g })), { type: "A::Folder", id: "f" }], { maxLength: 2 }),
    tags: fc.option(fc.dictionary(fc.constantFrom("t", "u"), valueArbitrary, { maxKeys: 2 }), { nil: undefined }),
  });

const requestArbitrary = fc.record({
  principal: fc.constantFrom(...USERS),
  action: fc.constantFrom("read", "write"),
  resource: fc.constantFrom(...DOCS),
  context: fc.tuple(
    fc.dictionary(fc.constantFrom("n", "s", "b", "r", "e", "set", "es", "rec", "d"), valueArbitrary, { maxKeys: 6 }),
    fc.option(fc.constantFrom(...DECIMAL_TEXTS), { nil: undefined }),
  ).map(([context, text]) => (text === undefined ? context : { ...context, s: text })),
  // Some entities are left out of the request: `has` is then false, `.` an error.
  users: fc.subarray(USERS),
  groups: fc.subarray(GROUPS),
  docs: fc.subarray(DOCS),
  seeds: fc.array(fc.integer(), { minLength: 10, maxLength: 10 }),
  repeat: fc.integer({ min: 0, max: 9 }),
});

type GeneratedRequest = typeof requestArbitrary extends fc.Arbitrary<infer T> ? T : never;

const ACTIONS: CedarEntity[] = [
  { uid: { type: "A::Action", id: "read" }, attrs: {}, parents: [{ type: "A::Action", id: "all" }] },
  { uid: { type: "A::Action", id: "write" }, attrs: {}, parents: [{ type: "A::Action", id: "all" }] },
  { uid: { type: "A::Action", id: "all" }, attrs: {}, parents: [] },
];

function toRequest(generated: GeneratedRequest): CedarRequest {
  let seed = 0;
  const entity = (type: string, id: string): CedarEntity => {
    const { tags, ...rest } = fc.sample(entityArbitrary(type, id), { numRuns: 1, seed: generated.seeds[seed++ % 10]! + seed })[0]!;
    return tags === undefined ? rest : { ...rest, tags };
  };
  const entities: CedarEntity[] = [
    ...generated.users.map((id) => entity("A::User", id)),
    // Groups in groups, never in a cycle (Cedar refuses a cycle; the engine refuses it before).
    ...generated.groups.map((id) => ({ ...entity("A::Group", id), parents: id === "g0" ? [{ type: "A::Group", id: "g1" }] : id === "g1" ? [{ type: "A::Group", id: "g2" }] : [] })),
    ...generated.docs.map((id) => ({ ...entity("A::Doc", id), parents: [{ type: "A::Folder", id: "f" }] })),
    ...ACTIONS,
  ];
  // An entity given twice: the same (Cedar accepts it) or not (Cedar refuses the request).
  if (generated.repeat === 0 && entities.length > 0) entities.push(entities[0]!);
  if (generated.repeat === 1 && entities.length > 0) entities.push({ ...entities[0]!, attrs: { other: 1 } });
  return {
    principal: { type: "A::User", id: generated.principal },
    action: { type: "A::Action", id: generated.action },
    resource: { type: "A::Doc", id: generated.resource },
    context: generated.context,
    entities,
  };
}

function policyText(policy: typeof policyArbitrary extends fc.Arbitrary<infer T> ? T : never): string {
  return `${policy.effect} (${policy.principal}, ${policy.action}, ${policy.resource}) ${policy.conditions.map(([kind, body]) => `${kind} { ${body} }`).join(" ")};`;
}

function parsed(id: string, text: string, shadow: boolean): SubsetPolicy | undefined {
  const answer = cedar.policyToJson(text);
  if (answer.type !== "success") return undefined;
  const json = answer.json as unknown as Omit<SubsetPolicy, "id" | "shadow">;
  return { id, shadow, effect: json.effect, principal: json.principal, action: json.action, resource: json.resource, conditions: json.conditions };
}

/** Cedar's answer for one set of texts, or "failure" when it refuses the request. */
function cedarAnswer(texts: Readonly<Record<string, string>>, request: CedarRequest) {
  const answer = cedar.isAuthorized({
    principal: request.principal,
    action: request.action,
    resource: request.resource,
    context: request.context as cedar.Context,
    entities: request.entities as cedar.EntityJson[],
    policies: { staticPolicies: { ...texts } },
  });
  if (answer.type !== "success") return "failure" as const;
  return { allowed: answer.response.decision === "allow", determining: [...answer.response.diagnostics.reason].sort(), errors: answer.response.diagnostics.errors.length };
}

describe("the JavaScript evaluator", () => {
  it("answers only when its answer is Cedar's: decision and determining policies, enforced and with @shadow policies (differential, thousands of cases)", () => {
    const seen = { cases: 0, answered: 0, allowed: 0, denied: 0, cedarErrored: 0, cedarFailed: 0, outsideSubset: 0, shadowDiffers: 0, answeredWithDecimals: 0 };
    fc.assert(
      fc.property(fc.array(policyArbitrary, { minLength: 1, maxLength: 5 }), fc.array(requestArbitrary, { minLength: 8, maxLength: 8 }), (generated, requests) => {
        const policies: SubsetPolicy[] = [];
        const texts: Record<string, string> = {};
        for (const [i, policy] of generated.entries()) {
          const text = policyText(policy);
          const json = parsed(`p${i}`, text, policy.shadow);
          if (json === undefined) continue;
          policies.push(json);
          texts[json.id] = text;
        }
        if (policies.length === 0) return;
        const compiled = policies.map((policy) => compilePolicy(policy, false));
        if (compiled.some((policy) => policy === undefined)) {
          seen.outsideSubset++;
          return;
        }
        const program = new SubsetProgram(compiled as CompiledPolicy[]);
        const enforcedTexts = Object.fromEntries(Object.entries(texts).filter(([id]) => !policies.find((p) => p.id === id)!.shadow));
        for (const generatedRequest of requests) {
          const request = toRequest(generatedRequest);
          const ours = program.evaluate(request);
          const enforced = cedarAnswer(enforcedTexts, request);
          const full = cedarAnswer(texts, request);
          const where = JSON.stringify({ texts, request, ours, enforced, full });
          seen.cases++;
          if (enforced === "failure" || full === "failure") {
            seen.cedarFailed++;
            assert.equal(ours, undefined, `Cedar refused the request: ${where}`);
            continue;
          }
          if (enforced.errors > 0 || full.errors > 0) {
            seen.cedarErrored++;
            assert.equal(ours, undefined, `Cedar errored: ${where}`);
            continue;
          }
          if (ours === undefined) continue;
          seen.answered++;
          if (Object.values(texts).some((text) => /lessThan|greaterThan|decimal\(/.test(text))) seen.answeredWithDecimals++;
          seen[ours.enforced.allowed ? "allowed" : "denied"]++;
          assert.equal(ours.enforced.allowed, enforced.allowed, where);
          assert.deepEqual([...ours.enforced.determining].sort(), enforced.determining, where);
          assert.equal(ours.full.allowed, full.allowed, where);
          assert.deepEqual([...ours.full.determining].sort(), full.determining, where);
          if (ours.full.allowed !== ours.enforced.allowed) seen.shadowDiffers++;
        }
      }),
      { numRuns: 1500 },
    );
    const summary = JSON.stringify(seen);
    assert.ok(seen.cases >= 3000, `thousands of cases: ${summary}`);
    assert.ok(seen.answered > seen.cases / 4 && seen.allowed > 200 && seen.denied > 200, `the evaluator answers most clean cases, both ways: ${summary}`);
    assert.ok(seen.cedarErrored > 200 && seen.cedarFailed > 50 && seen.outsideSubset > 20 && seen.shadowDiffers > 10 && seen.answeredWithDecimals > 100, `every path exercised: ${summary}`);
  });

  it("leaves a policy outside the subset to Cedar: extension functions other than decimal's, template slots, integers beyond 2^53, record literals with escape keys", () => {
    for (const text of [
      `permit (principal, action, resource) when { ip("10.0.0.1").isIpv4() };`,
      `permit (principal, action, resource) when { context.d.isInRange(ip("10.0.0.0/8")) };`,
      // Decimal literals Cedar refuses, or beyond what the evaluator holds exactly (2^53 ten-thousandths).
      `permit (principal, action, resource) when { context.d.lessThan(decimal("900719925474.0992")) };`,
      `permit (principal, action, resource) when { context.d.lessThan(decimal("1.")) };`,
      `permit (principal, action, resource) when { datetime("2024-01-01") < datetime("2025-01-01") };`,
      `permit (principal, action, resource) when { context.n == 9007199254740993 };`,
      `permit (principal, action, resource) when { context.n < -9223372036854775808 };`,
      `permit (principal, action, resource) when { {"__entity": {"type": "A::User", "id": "u0"}} == context.r };`,
    ]) {
      const answer = cedar.policyToJson(text);
      assert.equal(answer.type, "success", text);
      if (answer.type !== "success") continue;
      const json = answer.json as unknown as SubsetPolicy;
      assert.equal(compilePolicy({ ...json, id: "p", shadow: false }, false), undefined, text);
    }
    // A template slot (Cedar's JSON of `principal == ?principal`).
    const slot = { id: "p", shadow: false, effect: "permit" as const, principal: { op: "==", slot: "?principal" }, action: { op: "All" }, resource: { op: "All" }, conditions: [] };
    assert.equal(compilePolicy(slot, false), undefined);
    assert.ok(compilePolicy(slot, true), "a slot in a scope the slice decided is not evaluated");
    // A chain Cedar parses, too deep for the compiler's budget: left to Cedar, not a stack overflow.
    const chain = Array.from({ length: 220 }, (_, i) => `context.n == ${i}`).join(" || ");
    const json = cedar.policyToJson(`permit (principal, action, resource) when { ${chain} };`);
    assert.equal(json.type, "success");
    if (json.type === "success") assert.equal(compilePolicy({ ...(json.json as unknown as SubsetPolicy), id: "p", shadow: false }, false), undefined);
  });

  it("through the client: a new request is decided in JavaScript, a policy outside the subset in wasm, and both decide as Cedar does", async () => {
    const policies = `@id("invoices") permit (principal in Bedrock::Group::"billing", action, resource) when { context has maxTokens && context.maxTokens <= 500 };
@id("no-phi") forbid (principal, action, resource) when { context.dataSensitivity.contains("phi") };`;
    const outside = `${policies}\n@id("office") forbid (principal, action, resource) when { ip("10.0.0.1").isLoopback() };`;
    for (const [text, inJavaScript] of [[policies, true], [outside, false]] as const) {
      for (const evaluator of ["javascript", "wasm"] as const) {
        const handler = new MemoryHandler();
        const governance = createGovernance({ environment: "test", policies: text, evaluator });
        const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: handler, governance, maxAttempts: 1 });
        const before = governance.engine.evaluationsInJavaScript;
        await runAs(invoiceAgent, () => client.converse(converseInput(undefined, { inferenceConfig: { maxTokens: 100 } })));
        await assert.rejects(runAs(invoiceAgent, () => client.converse(converseInput(undefined, { inferenceConfig: { maxTokens: 501 } }))), /default deny|no policy permits/);
        await assert.rejects(
          runAs(invoiceAgent, () => client.converse(converseInput(undefined, { inferenceConfig: { maxTokens: 100 } })), { dataSensitivity: ["phi"] }),
          (error: { decision?: { policies: string[] } }) => error.decision?.policies.includes("no-phi") === true,
        );
        assert.equal(handler.requests.length, 1, "only the allowed call was sent");
        const inJs = governance.engine.evaluationsInJavaScript - before;
        assert.equal(inJs, evaluator === "javascript" && inJavaScript ? 3 : 0, `${evaluator}, ${inJavaScript ? "in the subset" : "outside it"}: evaluations in JavaScript`);
      }
    }
  });

  it("refuses, before either evaluator, a request Cedar would refuse whole: a reserved word in an entity type, a decimal beyond 64 bits", () => {
    const governance = createGovernance({ environment: "test", policies: `@id("all") permit (principal, action, resource);` });
    const request = (principalType: string, context: Record<string, CedarValue> = {}) => ({
      principal: { type: principalType, id: "w" },
      action: { type: "Bedrock::Action", id: "Converse" },
      resource: { type: "Bedrock::Model", id: "m" },
      context,
      entities: [],
    });
    for (const type of ["Bedrock::if", "in", "__cedar::X", "Bedrock::has::Y"]) {
      // Cedar refuses the name, whatever the policies.
      assert.equal(cedarAnswer({ p: `permit (principal, action, resource);` }, request(type)), "failure", type);
      const decision = governance.engine.authorize(request(type));
      assert.equal(decision.effect, "deny", type);
      assert.match(decision.errors.join(), /principal\.type has a part Cedar reserves/, type);
    }
    for (const type of ["Bedrock::Iffy", "principal", "__cedarx"]) assert.equal(governance.engine.authorize(request(type)).effect, "allow", `${type} is a name Cedar reads`);
    const decimal = (arg: string) => ({ amount: { __extn: { fn: "decimal", arg } } });
    for (const arg of ["922337203685477.5808", "-922337203685477.5809", "999999999999999.9999"]) {
      assert.equal(cedarAnswer({ p: `permit (principal, action, resource);` }, request("Bedrock::Workload", decimal(arg))), "failure", arg);
      const decision = governance.engine.authorize(request("Bedrock::Workload", decimal(arg)));
      assert.equal(decision.effect, "deny", arg);
      assert.match(decision.errors.join(), /context\.amount: decimal\(".*"\) is outside Cedar's range/, arg);
    }
    for (const arg of ["922337203685477.5807", "-922337203685477.5808", "0.5"]) assert.equal(governance.engine.authorize(request("Bedrock::Workload", decimal(arg))).effect, "allow", arg);
    // A context holding an escape key: Cedar reads it as that value (the evaluator would have read
    // it as an entity), or refuses it. Review finding: a forbid reading the context whole was bypassed.
    const readsContextWhole = createGovernance({
      environment: "test",
      policies: `@id("all") permit (principal, action, resource);
@id("whole") forbid (principal, action, resource) when { [context].isEmpty() || context has environment && context.environment == "dev" };`,
    });
    for (const key of ["__entity", "__extn", "__expr"]) {
      const value = key === "__entity" ? { type: "Bedrock::Workload", id: "w" } : key === "__extn" ? { fn: "decimal", arg: "1.0" } : "1";
      for (const engine of [governance.engine, readsContextWhole.engine]) {
        const decision = engine.authorize(request("Bedrock::Workload", { [key]: value, environment: "dev" } as Record<string, CedarValue>));
        assert.equal(decision.effect, "deny", key);
        assert.match(decision.errors.join(), new RegExp(`context has a key "${key}", which Cedar reads as an escape`), key);
      }
    }
    assert.equal(readsContextWhole.engine.authorize(request("Bedrock::Workload", { environment: "dev" })).effect, "deny");
    assert.equal(readsContextWhole.engine.authorize(request("Bedrock::Workload", { environment: "prod" })).effect, "allow");
  });

  it("leaves comparisons past its budget to Cedar (nested sets compared with == multiply their cost), which then decides", () => {
    // n sets of n integers each, the other side in reverse order: each outer member is found after
    // scanning about half the other side, each scan comparing sets of n.
    const nested = (n: number, reversed: boolean): CedarValue => {
      const sets = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => i * n + j));
      return reversed ? sets.reverse().map((inner) => inner.reverse()) : sets;
    };
    const text = `permit (principal, action, resource) when { context.a == context.b };`;
    const json = cedar.policyToJson(text);
    assert.equal(json.type, "success");
    if (json.type !== "success") return;
    const program = new SubsetProgram([compilePolicy({ ...(json.json as unknown as SubsetPolicy), id: "p", shadow: false }, false)!]);
    const request = (n: number): CedarRequest => ({
      principal: { type: "A::User", id: "u" },
      action: { type: "A::Action", id: "read" },
      resource: { type: "A::Doc", id: "d" },
      context: { a: nested(n, false), b: nested(n, true) },
      entities: [],
    });
    assert.deepEqual(program.evaluate(request(8))?.enforced, { allowed: true, determining: ["p"] });
    // 60 × 60 integers: millions of comparisons without a budget.
    assert.equal(program.evaluate(request(60)), undefined);
    const cedarDecides = cedarAnswer({ p: text }, request(60));
    assert.ok(cedarDecides !== "failure" && cedarDecides.allowed, "Cedar decides it (the engine's fallback)");
  });

  it("refuses an evaluator option it does not know, naming the choices", () => {
    assert.throws(() => createGovernance({ environment: "test", policies: `permit (principal, action, resource);`, evaluator: "fast" as never }), /evaluator.*"javascript" or "wasm"/);
  });
});

/** A request of the shipped schema: workload `w`, Converse, model `m`. */
function engineRequest(context: Record<string, CedarValue>, workload = "w", model = "m", entities: CedarEntity[] = []): CedarRequest {
  return {
    principal: { type: "Bedrock::Workload", id: workload },
    action: { type: "Bedrock::Action", id: "Converse" },
    resource: { type: "Bedrock::Model", id: model },
    context,
    entities,
  };
}

describe("the JavaScript evaluator in the engine", () => {
  const schema = shippedSchema();
  const original = { ...wasm };
  afterEach(() => Object.assign(wasm, original));

  it("decides as the engine does in wasm, to the decision's texts, when a slice's parts go to different evaluators (differential: parts outside the subset, errors, @shadow, both enforcement modes)", () => {
    const evaluations = countEvaluations();
    const condition = fc.constantFrom(
      "",
      "when { context.streaming }",
      // Outside the subset: the part holding it goes to wasm.
      'when { ip("10.0.0.1").isInRange(ip("10.0.0.0/8")) }',
      // An evaluation error for maxTokens >= 2: Cedar names it, the call denies.
      "when { context has maxTokens && context.maxTokens * 4611686018427387904 > 0 }",
      'when { principal has owner && principal.owner == "a" }',
      'when { principal.hasTag("t") && principal.getTag("t") == "x" }',
      "when { context has maxTokens && context.maxTokens > 10 }",
    );
    const policy = fc.record({
      effect: fc.constantFrom("permit", "permit", "forbid"),
      anchored: fc.boolean(),
      workload: fc.constantFrom("w0", "w1"),
      condition,
      shadow: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
    });
    const generated = fc.record({
      workload: fc.constantFrom("w0", "w1"),
      streaming: fc.boolean(),
      maxTokens: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
      owner: fc.option(fc.constantFrom("a", "b"), { nil: undefined }),
      tag: fc.option(fc.constantFrom("x", "y"), { nil: undefined }),
    });
    const seen = { cases: 0, mixed: 0, inJavaScript: 0 };
    fc.assert(
      fc.property(fc.array(policy, { minLength: 1, maxLength: 10 }), fc.array(generated, { minLength: 10, maxLength: 10 }), fc.constantFrom("enforce", "shadow"), (policies, requests, enforcement) => {
        const text = policies
          .map((p, i) => `@id("p${i}")${p.shadow ? "\n@shadow" : ""}\n${p.effect} (principal${p.anchored ? ` == Bedrock::Workload::"${p.workload}"` : ""}, action, resource) ${p.condition};`)
          .join("\n");
        // Every slice in two parts as soon as it holds a policy naming no principal.
        const options = { sliceLimits: { sharedPart: 1 }, enforcement } as const;
        const javascript = new CedarEngine([{ source: "t", text }], schema, options);
        const inWasm = new CedarEngine([{ source: "t", text }], schema, { ...options, evaluator: "wasm" });
        for (const r of [...requests, ...requests]) {
          const request = engineRequest({ streaming: r.streaming, ...(r.maxTokens !== undefined && { maxTokens: r.maxTokens }) }, r.workload, "m", [
            { uid: { type: "Bedrock::Workload", id: r.workload }, attrs: { ...(r.owner && { owner: r.owner }) }, parents: [], ...(r.tag && { tags: { t: r.tag } }) },
          ]);
          const [inJavaScript, inWasmBefore] = [javascript.evaluationsInJavaScript, evaluations.inWasm];
          const ours = javascript.authorize(request);
          if (javascript.evaluationsInJavaScript > inJavaScript) seen.inJavaScript++;
          if (javascript.evaluationsInJavaScript > inJavaScript && evaluations.inWasm > inWasmBefore) seen.mixed++;
          const expected = inWasm.authorize(request);
          assert.deepEqual(ours, { ...expected, policySetVersion: ours.policySetVersion }, JSON.stringify({ text, request, ours, expected }));
          seen.cases++;
        }
      }),
      { numRuns: 200 },
    );
    assert.ok(seen.cases >= 4000 && seen.inJavaScript > 500 && seen.mixed > 100, `every path exercised: ${JSON.stringify(seen)}`);
  });

  it("a fault in wasm, for the part of a slice the JavaScript evaluator hands it, denies the whole call unmemoized (or records a would-be denial in shadow mode)", () => {
    const text = `@id("shared") permit (principal, action, resource) when { context.streaming == false };
@id("mine") forbid (principal == Bedrock::Workload::"w", action, resource) when { ip("127.0.0.1").isLoopback() && context.streaming };`;
    const trap = () => {
      const error = new Error("unreachable");
      error.name = "RuntimeError";
      throw error;
    };
    for (const enforcement of ["enforce", "shadow"] as const) {
      const engine = new CedarEngine([{ source: "t", text }], schema, { sliceLimits: { sharedPart: 1 }, enforcement });
      let model = 0;
      const request = () => engineRequest({ streaming: false }, "w", `m${model++}`);
      const clean = engine.authorizeKept(request());
      assert.equal(clean.decision.effect, "allow");
      assert.ok(engine.evaluationsInParts > 0 && engine.evaluationsInJavaScript > 0, "one part in JavaScript, one in wasm");
      const faults: [string, () => void, RegExp][] = [
        ["an engine error", () => void (wasm.statefulIsAuthorized = () => { throw new Error("injected"); }), /injected/],
        ["a Cedar failure", () => void (wasm.statefulIsAuthorized = () => ({ type: "failure", errors: [{ message: "bad request", help: null, code: null, url: null, severity: null }], warnings: [] })), /bad request/],
        ["a trap", () => void (wasm.statefulIsAuthorized = trap), /restarted/],
        ["a preparse failure after a restart", () => void (wasm.preparsePolicySet = () => { throw new Error("out of memory"); }), /could not preparse.*out of memory/],
      ];
      for (const [name, inject, cause] of faults) {
        const current = { ...wasm };
        inject();
        const kept = engine.authorizeKept(request());
        Object.assign(wasm, current);
        const denial = enforcement === "enforce" ? kept.decision : kept.decision.shadow;
        assert.equal(kept.decision.effect, enforcement === "enforce" ? "deny" : "allow", `${enforcement}, ${name}`);
        assert.equal(denial?.effect, "deny", `${enforcement}, ${name}`);
        assert.match(denial?.errors.join() ?? "", cause, `${enforcement}, ${name}`);
        assert.equal(kept.memoKey, undefined, `${enforcement}, ${name}: not memoized`);
      }
      assert.equal(engine.authorize(request()).effect, "allow", "decides again once wasm is healthy");
    }
  });

  it("goes on deciding in JavaScript across a wasm restart, preparses again when wasm is needed, and denies everything once the instance is lost", () => {
    const text = `@id("p") permit (principal, action, resource) when { context has maxTokens && (context.maxTokens < 1000 || context.maxTokens * 3037000500 * 3037000500 > 0) };`;
    const engine = new CedarEngine([{ source: "a", text }], schema);
    const other = new CedarEngine([{ source: "b", text: "permit (principal, action, resource);" }], schema, { evaluator: "wasm" });
    const request = (maxTokens: number) => engineRequest({ maxTokens });
    let evaluations = countEvaluations();
    assert.equal(engine.authorize(request(1)).effect, "allow");
    assert.equal(evaluations.inWasm, 0, "decided in JavaScript");
    // An overflow: Cedar's to name.
    assert.match(engine.authorize(request(5000)).errors.join(), /overflow/);
    assert.equal(evaluations.inWasm, 1);
    // Another engine traps: the instance is replaced.
    const generation = wasmGeneration();
    wasm.statefulIsAuthorized = () => {
      const error = new Error("unreachable");
      error.name = "RuntimeError";
      throw error;
    };
    assert.equal(other.authorize(request(3)).effect, "deny");
    assert.equal(wasmGeneration(), generation + 1);
    wasm.statefulIsAuthorized = original.statefulIsAuthorized;
    evaluations = countEvaluations();
    assert.equal(engine.authorize(request(4)).effect, "allow");
    assert.equal(evaluations.inWasm, 0, "still decided in JavaScript");
    assert.match(engine.authorize(request(6000)).errors.join(), /overflow/, "its slice preparsed again in the new instance");
    // Lost: every call denied, those JavaScript could decide too, and nothing replayed.
    const kept = engine.authorizeKept(request(5));
    assert.equal(kept.decision.effect, "allow");
    try {
      markWasmLost("the instance is lost (test)");
      const lost = engine.authorizeKept(request(7));
      assert.equal(lost.decision.effect, "deny");
      assert.match(lost.decision.errors.join(), /the instance is lost \(test\)/);
      assert.equal(lost.memoKey, undefined);
      assert.equal(engine.memoized(kept.memoKey!), undefined);
      assert.equal(engine.authorize(request(5)).effect, "deny", "not replayed from the memo");
    } finally {
      reinstantiateWasm();
    }
    assert.equal(engine.authorize(request(5)).effect, "allow");
  });

  it("warms wasm up at construction, even for policies the JavaScript evaluator decides", () => {
    const evaluations = countEvaluations();
    const governance = createGovernance({ environment: "test", policies: `permit (principal, action, resource) when { context.streaming == false };` });
    assert.equal(evaluations.inWasm, 1);
    assert.equal(governance.engine.evaluationsInJavaScript, 0);
  });

  it("keeps the slices it decides within the policies limit, as those preparsed in wasm are", () => {
    // 100 workloads, a slice of 20 policies each; room for 50 policies in all.
    const text = Array.from({ length: 100 }, (_, w) =>
      Array.from({ length: 20 }, (_, k) => `@id("w${w}-${k}") permit (principal == Bedrock::Workload::"w${w}", action, resource) when { !context.streaming || ${k} == 0 };`).join("\n"),
    ).join("\n");
    for (const evaluator of ["javascript", "wasm"] as const) {
      const engine = new CedarEngine([{ source: "t", text }], schema, { evaluator, sliceLimits: { policies: 50 } });
      const round = () => {
        for (let w = 0; w < 100; w++) assert.equal(engine.authorize(engineRequest({ streaming: false }, `w${w}`)).effect, "allow");
      };
      const evaluations = countEvaluations(engine);
      round();
      evaluations.reset();
      round();
      // The memo keys on the slice: each evicted slice is cut again and its request evaluated again.
      assert.equal(evaluations.all, 100, `${evaluator}: 2,000 policies are never held at once against a limit of 50`);
    }
  });
});
