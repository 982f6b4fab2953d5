/**
 * Decisions memoized by what the policies compare: a context value that the policies only compare
 * with literals is keyed by the outcomes of those comparisons, so a new value with the same
 * outcomes is decided from the memo. It must never change a decision: differential against Cedar
 * with the whole set and the whole request, over generated policy sets that compare, read whole and
 * error on the same values, and requests whose values fall on both sides of every literal (and are
 * of the wrong type, or absent).
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import fc from "fast-check";
import { createGovernance, shippedSchema } from "../src/index.js";
import { comparedContextPaths, contextKey } from "../src/policy/context-comparisons.js";
import { wasm } from "../src/policy/cedar-wasm.js";
import type { CedarRequest, CedarValue } from "../src/policy/request-shape.js";
import { wholeSetAnswer } from "./support/cedar-reference.js";
import { countEvaluations } from "./support/evaluations.js";
import { AccessDeniedError, runAs } from "../src/index.js";
import { WARDEN } from "../src/telemetry/semconv.js";
import { HAIKU, harness, researchAgent } from "./support/governance.js";
import { exporter } from "./support/tracing.js";

const schema = shippedSchema();

/** The `conditions` of one policy, in Cedar's JSON form. */
function conditionsOf(text: string): unknown[] {
  const json = cedar.policyToJson(text);
  if (json.type !== "success") throw new Error(`not a policy: ${text}`);
  return json.json.conditions;
}

const paths = (...conditions: string[]) =>
  comparedContextPaths(conditions.map((condition) => ({ conditions: conditionsOf(`permit (principal, action, resource) ${condition};`) })));

describe("context comparisons: which values the policies only compare", () => {
  it("finds values compared with integer and string literals, on either side, nested in records", () => {
    const found = paths(
      `when { context.maxTokens <= 4096 && 10 < context.maxTokens }`,
      `when { context has usage && context.usage.callsLastMinute >= 60 }`,
      `unless { context.environment == "production" || context.region != "us-east-1" }`,
    );
    assert.deepEqual(
      found.map(({ path, comparisons }) => ({ path, comparisons })),
      [
        {
          path: ["maxTokens"],
          comparisons: [
            { operator: "<=", literal: 4096, literalFirst: false },
            { operator: "<", literal: 10, literalFirst: true },
          ],
        },
        { path: ["usage", "callsLastMinute"], comparisons: [{ operator: ">=", literal: 60, literalFirst: false }] },
        { path: ["environment"], comparisons: [{ operator: "==", literal: "production", literalFirst: false }] },
        { path: ["region"], comparisons: [{ operator: "!=", literal: "us-east-1", literalFirst: false }] },
      ],
    );
  });

  it("finds values only tested for members with literals: contains, containsAny, containsAll, isEmpty, a literal set's contains", () => {
    const found = paths(
      `when { context.dataSensitivity.contains("pii") || context.dataSensitivity.containsAny(["phi", "secret"]) }`,
      `unless { context.dataSensitivity.containsAll([]) && context.toolsOffered.isEmpty() }`,
      `when { ["us-east-1", "eu-west-1"].contains(context.region) && [1, 2].contains(context.maxTokens) }`,
    );
    assert.deepEqual(
      found.map(({ path, comparisons }) => ({ path, comparisons })),
      [
        {
          path: ["dataSensitivity"],
          comparisons: [
            { operator: "contains", literals: ["pii"] },
            { operator: "containsAny", literals: ["phi", "secret"] },
            { operator: "containsAll", literals: [] },
          ],
        },
        { path: ["toolsOffered"], comparisons: [{ operator: "isEmpty", literals: [] }] },
        { path: ["region"], comparisons: [{ operator: "memberOf", literals: ["us-east-1", "eu-west-1"] }] },
        { path: ["maxTokens"], comparisons: [{ operator: "memberOf", literals: [1, 2] }] },
      ],
    );
    const left = (...conditions: string[]) => paths(...conditions).map((p) => p.path.join("."));
    // Tested with another context value, a set holding one, or compared with a set literal: read whole.
    assert.deepEqual(left(`when { context.dataSensitivity.contains("pii") }`, `when { context.dataSensitivity.contains(context.region) }`), []);
    assert.deepEqual(left(`when { context.dataSensitivity.containsAny(["pii", context.region]) }`), []);
    assert.deepEqual(left(`when { context.dataSensitivity.containsAll(context.toolsOffered) }`), []);
    assert.deepEqual(left(`when { context.dataSensitivity == ["pii"] }`), []);
    assert.deepEqual(left(`when { [context.region, "x"].contains("x") }`), []);
    assert.deepEqual(left(`when { context.dataSensitivity.contains(true) }`), []);
  });

  it("leaves out a value used any other way, anywhere in the slice: it is keyed by itself", () => {
    const left = (...conditions: string[]) => paths(...conditions).map((p) => p.path.join("."));
    assert.deepEqual(left(`when { context.maxTokens <= 4096 }`, `when { [context.maxTokens].contains(100) }`), []);
    assert.deepEqual(left(`when { context.maxTokens <= 4096 }`, `when { context.maxTokens + 1 > 200 }`), []);
    assert.deepEqual(left(`when { context.maxTokens == 5 }`, `when { context.maxTokens == context.usage.callsLastMinute }`), []);
    assert.deepEqual(left(`when { context.maxTokens == 5 }`, `when { {"a": context.maxTokens} == {"a": 5} }`), []);
    assert.deepEqual(left(`when { context.maxTokens == 5 }`, `when { (if context.streaming then context.maxTokens else 0) > 1 }`), []);
    // A record holding the value used whole: the value is part of it.
    assert.deepEqual(left(`when { context.usage.callsLastMinute < 60 }`, `when { context.usage == {"callsLastMinute": 1, "tokensLastHour": 2} }`), []);
    // `context` itself used whole: nothing is left out.
    assert.deepEqual(left(`when { context.maxTokens < 60 }`, `when { context == {"maxTokens": 1} }`), []);
    // Not literals Cedar's JSON keeps exactly (beyond 2^53), not comparable as here (a string ordered, an entity, a bool).
    assert.deepEqual(left(`when { context.maxTokens < 9007199254740993 }`), []);
    assert.deepEqual(left(`when { context.streaming == true }`), []);
    assert.deepEqual(left(`when { context.maxTokens < context.maxTokens }`), []);
    // `has` asks whether a value is there, never what it is; a longer path read whole leaves the shorter one compared.
    assert.deepEqual(left(`when { context has maxTokens && context has usage.callsLastMinute && context.maxTokens < 5 }`), ["maxTokens"]);
    assert.deepEqual(left(`when { context.usage.callsLastMinute < 5 }`, `when { [context.usage.callsLastMinute.foo].isEmpty() }`), ["usage.callsLastMinute"]);
  });

  it("keys a value by its type and its comparisons' outcomes: the same outcomes, the same key; any other, another", () => {
    const compared = paths(`when { context.maxTokens <= 4096 && context.maxTokens > 10 && context.environment == "prod" }`);
    const key = (context: Record<string, CedarValue>) => contextKey(context, compared);
    const base = { environment: "prod", region: "us-east-1" };
    assert.equal(key({ ...base, maxTokens: 512 }), key({ ...base, maxTokens: 4096 }));
    assert.equal(key({ ...base, maxTokens: 11 }), key({ ...base, maxTokens: 3000 }));
    assert.notEqual(key({ ...base, maxTokens: 512 }), key({ ...base, maxTokens: 4097 }));
    assert.notEqual(key({ ...base, maxTokens: 512 }), key({ ...base, maxTokens: 10 }));
    assert.notEqual(key({ ...base, maxTokens: 512 }), key(base), "absent");
    assert.notEqual(key({ ...base, maxTokens: 512 }), key({ ...base, maxTokens: "512" }), "another type");
    // A string where an integer is ordered: the comparison errors, whatever the string.
    assert.equal(key({ ...base, maxTokens: "a" }), key({ ...base, maxTokens: "b" }));
    assert.equal(key({ ...base, environment: "dev" }), key({ ...base, environment: "staging" }));
    assert.notEqual(key({ ...base, environment: "dev" }), key({ ...base, environment: "prod" }));
    // What is not compared is keyed by itself.
    assert.notEqual(key({ ...base, maxTokens: 512 }), key({ ...base, region: "eu-west-1", maxTokens: 512 }));
    // A value of another type where an integer is compared (a record): keyed by itself.
    assert.notEqual(key({ ...base, maxTokens: { a: 1 } }), key({ ...base, maxTokens: { a: 2 } }));
  });

  it("finds values matched with like, and keys a string by whether it matches: a new purpose matching alike is the same key", () => {
    const found = paths(`when { context has purpose && context.purpose like "invoice-*" }`, `unless { context.region == "x" || context.region like "us-*-1" }`);
    assert.deepEqual(
      found.map(({ path, comparisons }) => ({ path, comparisons })),
      [
        { path: ["purpose"], comparisons: [{ operator: "like", pieces: ["invoice-", ""] }] },
        {
          path: ["region"],
          comparisons: [
            { operator: "==", literal: "x", literalFirst: false },
            { operator: "like", pieces: ["us-", "-1"] },
          ],
        },
      ],
    );
    // A long piece between wildcards (its search is super-linear on hostile text): keyed by the value itself.
    assert.deepEqual(paths(`when { context has purpose && context.purpose like "*${"a".repeat(201)}*" }`), []);
    assert.equal(paths(`when { context has purpose && context.purpose like "*${"a".repeat(200)}*" }`).length, 1);
    assert.equal(paths(`when { context has purpose && context.purpose like "${"a".repeat(500)}*" }`).length, 1, "a prefix or suffix is a plain comparison");
    const key = (purpose: CedarValue) => contextKey({ region: "us-east-1", purpose }, found);
    assert.equal(key("invoice-1"), key("invoice-reconciliation-42"));
    assert.notEqual(key("invoice-1"), key("refund-1"));
    assert.equal(key("refund-1"), key("audit"));
    assert.notEqual(key("invoice-1"), key(7), "not a string: like errors, another key");
  });

  it("matches like patterns exactly as Cedar does (differential: wildcards, escaped stars, emoji, empty strings)", () => {
    const alphabet = ["a", "b", "*", "\\", "\u{1F600}"];
    // Pattern text in Cedar syntax: a wildcard `*`, an escaped star `\*`, or one of the characters.
    const patternPart = fc.constantFrom("*", "\\*", "a", "b", "\u{1F600}", "ab");
    let cases = 0;
    let matched = 0;
    fc.assert(
      fc.property(fc.array(patternPart, { maxLength: 6 }), fc.array(fc.array(fc.constantFrom(...alphabet), { maxLength: 7 }), { minLength: 10, maxLength: 10 }), (pattern, texts) => {
        const patternText = pattern.join("");
        const policy = `permit (principal, action, resource) when { context.s like "${patternText}" };`;
        const [compared] = comparedContextPaths([{ conditions: conditionsOf(policy) }]);
        const test = compared!.comparisons[0]!;
        // Texts the pattern matches too: each wildcard filled in, an escaped star as a star.
        const filled = ["", "a", "*b\\"].map((fill) => pattern.map((part) => (part === "*" ? fill : part === "\\*" ? "*" : part)));
        for (const chars of [...texts, ...filled]) {
          const text = chars.join("");
          const answer = cedar.isAuthorized({
            principal: { type: "P", id: "p" },
            action: { type: "A", id: "a" },
            resource: { type: "R", id: "r" },
            context: { s: text },
            entities: [],
            policies: { staticPolicies: { p: policy } },
          });
          assert.equal(answer.type, "success");
          const cedarMatches = answer.type === "success" && answer.response.decision === "allow";
          const ours = contextKey({ s: text }, [{ path: ["s"], comparisons: [test] }]).endsWith("sT");
          assert.equal(ours, cedarMatches, JSON.stringify({ patternText, text }));
          cases++;
          if (cedarMatches) matched++;
        }
      }),
      { numRuns: 300 },
    );
    assert.ok(cases === 3900 && matched > 900 && matched < 3000, `both outcomes: ${matched} of ${cases} matched`);
  });

  it("keys a set of integers and strings by its tests' outcomes; a set holding anything else, or another type, by itself", () => {
    const compared = paths(`when { context.dataSensitivity.contains("pii") && !context.dataSensitivity.containsAny(["secret", "phi"]) }`);
    const key = (dataSensitivity: CedarValue) => contextKey({ region: "us-east-1", dataSensitivity }, compared);
    assert.equal(key(["pii"]), key(["pii", "label-1"]));
    assert.equal(key(["label-1", "pii"]), key(["pii", "label-2", "label-3"]), "order and labels no policy names do not matter");
    assert.equal(key([]), key(["label-1"]));
    assert.notEqual(key(["pii"]), key(["label-1"]));
    assert.notEqual(key(["pii"]), key(["pii", "secret"]));
    assert.notEqual(key(["pii"]), key("pii"), "a string where a set is tested: an error, another key");
    assert.equal(key("pii"), key("label-1"), "the tests of a string all error, whatever it is");
    assert.notEqual(key([{ a: 1 }]), key([{ a: 2 }]), "a set holding a record: keyed by itself");
    assert.notEqual(key([true]), key([false]));
    const member = paths(`when { ["us-east-1", "eu-west-1"].contains(context.region) }`);
    const regionKey = (region: CedarValue) => contextKey({ region, dataSensitivity: [] }, member);
    assert.equal(regionKey("ap-south-1"), regionKey("sa-east-1"));
    assert.notEqual(regionKey("ap-south-1"), regionKey("eu-west-1"));
    assert.equal(regionKey(["us-east-1"]), regionKey([]), "a set is never equal to a literal");
  });
});

// ---- differential -------------------------------------------------------------------------------

/** A generated context value that stands for a key left out. */
const ABSENT = Symbol("absent");

const LIMITS = [0, 3, 5, 8];
const comparisonArbitrary = fc.oneof(
  fc.tuple(fc.constantFrom("<", "<=", ">", ">=", "==", "!="), fc.constantFrom(...LIMITS), fc.boolean()).map(([op, limit, flipped]) =>
    flipped ? `${limit} ${op} context.maxTokens` : `context.maxTokens ${op} ${limit}`,
  ),
  fc.tuple(fc.constantFrom("<", ">=", "=="), fc.constantFrom(...LIMITS)).map(([op, limit]) => `context.usage.callsLastMinute ${op} ${limit}`),
  fc.tuple(fc.constantFrom("==", "!="), fc.constantFrom("prod", "dev")).map(([op, env]) => `context.environment ${op} "${env}"`),
  fc.constantFrom("context has maxTokens", "context has usage", "context has usage.callsLastMinute", "context.streaming"),
  // Membership tests with literals: on the data labels (a set), and of the region and maxTokens in a literal set.
  fc.constantFrom(`context.dataSensitivity.contains("pii")`, `context.dataSensitivity.contains("secret")`, "context.dataSensitivity.isEmpty()"),
  fc
    .tuple(fc.constantFrom("containsAny", "containsAll"), fc.subarray(["pii", "secret", "phi"]))
    .map(([method, labels]) => `context.dataSensitivity.${method}([${labels.map((label) => `"${label}"`).join(", ")}])`),
  fc.constantFrom(`["us-east-1", "eu-west-1"].contains(context.region)`, "[0, 5].contains(context.maxTokens)"),
  // like, with wildcards where a string may have none, one or many characters, and an escaped star.
  fc.constantFrom(`context.environment like "pro*"`, `context.region like "us-*"`, `context.region like "*-1"`, `context.region like "*east*"`),
  fc.constantFrom(`context.purpose like "invoice-*"`, `context.purpose like "*\\**"`, `context.purpose like ""`, `context.purpose like "*-*-*"`, `context.purpose == "invoice-1"`),
);
/** Uses of the same values that are not comparisons with a literal (one of them errors for maxTokens ≥ 2). */
const rawUseArbitrary = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constantFrom(
      "[context.maxTokens].contains(4)",
      "context.maxTokens + 1 > 4",
      "context.maxTokens * 4611686018427387904 > 0",
      `context.usage == {"callsLastMinute": 3, "tokensLastHour": 0}`,
      `context.region.isEmpty()`,
      `context.purpose < "x"`,
    ),
  },
  // Rarer: with the data labels read whole, every new set of labels is evaluated (none is memoized).
  { weight: 1, arbitrary: fc.constantFrom(`context.dataSensitivity == ["pii"]`, "context.dataSensitivity.contains(context.environment)") },
);
const conditionArbitrary = fc
  .tuple(fc.array(comparisonArbitrary, { minLength: 1, maxLength: 3 }), fc.constantFrom("&&", "||"), fc.option(rawUseArbitrary, { freq: 2, nil: undefined }), fc.constantFrom("when", "unless"))
  .map(([parts, join, raw, kind]) => {
    // Guarded so that most policies evaluate cleanly: an absent value would error otherwise.
    const guarded = parts.map((part) =>
      part.includes("context.maxTokens") && !part.startsWith("context has")
        ? `(context has maxTokens && ${part})`
        : part.includes("context.usage.") && !part.startsWith("context has")
          ? `(context has usage && ${part})`
          : part.includes("context.purpose") && !part.startsWith("context has")
            ? `(context has purpose && ${part})`
            : part,
    );
    const body = raw === undefined ? guarded.join(` ${join} `) : `${guarded.join(` ${join} `)} ${join} (context has maxTokens && context has usage && ${raw})`;
    return `${kind} { ${body} }`;
  });
const policiesArbitrary = fc.array(fc.tuple(fc.constantFrom("permit", "permit", "forbid"), conditionArbitrary), { minLength: 1, maxLength: 6 });

/** Contexts of one run: the same environment and streaming flag, values on both sides of every limit (now and then of another type, or absent). */
const contextsArbitrary = fc
  .tuple(
    fc.constantFrom("prod", "dev", "staging"),
    fc.boolean(),
    fc.array(
      fc.record(
        {
          maxTokens: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: -1, max: 10 }) }, { weight: 1, arbitrary: fc.constantFrom("5", true) }),
          usage: fc.record({ callsLastMinute: fc.integer({ min: 0, max: 9 }), tokensLastHour: fc.constantFrom(0, 7) }),
          dataSensitivity: fc.oneof(
            { weight: 12, arbitrary: fc.shuffledSubarray(["pii", "secret", "phi", "label-1"]) },
            { weight: 1, arbitrary: fc.constantFrom<unknown>("pii", [5, "pii"], [{ pii: true }], ABSENT) },
          ),
          region: fc.oneof({ weight: 10, arbitrary: fc.constantFrom("us-east-1", "eu-west-1", "ap-south-1", "sa-east-1") }, { weight: 1, arbitrary: fc.constantFrom<unknown>(7, ABSENT) }),
          purpose: fc.oneof(
            { weight: 10, arbitrary: fc.constantFrom("invoice-1", "invoice-", "invoice-a-b", "a*b", "*", "", "refund-2-3", "\u{1F600}-x-\u{1F600}", "invoice") },
            { weight: 1, arbitrary: fc.constantFrom<unknown>(7, ABSENT) },
          ),
        },
        { requiredKeys: [] },
      ),
      { minLength: 150, maxLength: 150 },
    ),
  )
  .map(([environment, streaming, values]) => values.map((value) => ({ environment, streaming, ...value })));

function requestWith(context: Record<string, unknown>): CedarRequest {
  const principal = { type: "Bedrock::Workload", id: "w0" };
  const resource = { type: "Bedrock::Model", id: "m0" };
  const merged: Record<string, unknown> = { region: "us-east-1", actionType: "read", dataSensitivity: [], toolsOffered: [], payloadInspected: true, ...context };
  for (const key of Object.keys(merged)) if (merged[key] === ABSENT) delete merged[key];
  return {
    principal,
    action: { type: "Bedrock::Action", id: "Converse" },
    resource,
    context: merged as Record<string, CedarValue>,
    entities: [
      { uid: principal, attrs: {}, parents: [] },
      { uid: resource, attrs: { kind: "foundation-model" }, parents: [] },
    ],
  };
}

describe("context comparisons: decisions from the memo are Cedar's (differential)", () => {
  const original = { ...wasm };
  afterEach(() => Object.assign(wasm, original));

  it("a decision memoized for one value is the decision for every value with the same outcomes", () => {
    let evaluations = 0;
    let counting = false;
    wasm.statefulIsAuthorized = (call) => {
      if (counting) evaluations++;
      return original.statefulIsAuthorized(call);
    };
    const seen = { cases: 0, distinct: 0, allow: 0, deny: 0, errored: 0 };
    fc.assert(
      fc.property(policiesArbitrary, contextsArbitrary, (generated, contexts) => {
        const texts = generated.map(([effect, condition]) => `${effect} (principal, action == Bedrock::Action::"Converse", resource) ${condition};`);
        const valid = texts.filter((text) => {
          const answer = cedar.validate({ schema, policies: { staticPolicies: { p: text } } });
          return answer.type === "success" && answer.validationErrors.length === 0;
        });
        if (valid.length === 0) return;
        const policies = Object.fromEntries(valid.map((text, i) => [`p${i}`, text]));
        const text = valid.map((text, i) => `@id("p${i}")\n${text}`).join("\n");
        const governance = createGovernance({ environment: "test", policies: text });
        // The same engine without a memo: a decision replayed from the memo is the one evaluated, to its texts.
        const unmemoized = createGovernance({ environment: "test", policies: text, decisionCacheSize: 0 });
        const distinct = new Set<string>();
        for (const context of contexts) {
          const request = requestWith(context);
          counting = true;
          const inJavaScript = governance.engine.evaluationsInJavaScript;
          const ours = governance.engine.authorize(request);
          evaluations += governance.engine.evaluationsInJavaScript - inJavaScript;
          counting = false;
          const expected = wholeSetAnswer(policies, request);
          const where = JSON.stringify({ policies, context, ours, expected });
          assert.equal(ours.effect, expected.effect, where);
          assert.equal(ours.errors.length > 0, expected.errored, where);
          assert.deepEqual([...ours.policies].sort(), expected.policies, where);
          assert.deepEqual(ours, unmemoized.engine.authorize(request), where);
          distinct.add(JSON.stringify(request.context));
          seen[ours.effect]++;
          if (expected.errored) seen.errored++;
          seen.cases++;
        }
        seen.distinct += distinct.size;
      }),
      { numRuns: 60 },
    );
    assert.ok(seen.cases >= 7000, `thousands of cases: ${JSON.stringify(seen)}`);
    assert.ok(seen.allow > 300 && seen.deny > 300 && seen.errored > 50, `every outcome exercised: ${JSON.stringify(seen)}`);
    // Many distinct requests were decided without crossing into wasm (~40–45% in runs here).
    assert.ok(evaluations < seen.distinct * 0.75, `memoized by comparisons: ${evaluations} evaluations for ${seen.distinct} distinct requests`);
  });

  it("a new maxTokens under a limit, a usage counter one higher, a data label no policy names: decided once, then from the memo; a value read whole is evaluated every time", () => {
    const limits = `permit (principal, action, resource) when { context has maxTokens && context.maxTokens <= 4096 && context.environment == "prod" };
      forbid (principal, action, resource) when { context has usage && context.usage.callsLastMinute > 60 };
      forbid (principal, action, resource) when { context.dataSensitivity.containsAny(["phi", "secret"]) };`;
    const governance = createGovernance({ environment: "test", policies: limits });
    // Evaluations in wasm and in JavaScript: the memo's misses.
    let evaluated = countEvaluations(governance.engine);
    const decide = (maxTokens: number, calls: number, labels: string[] = [`label-${maxTokens}`]) =>
      governance.engine.authorize(
        requestWith({ environment: "prod", streaming: false, maxTokens, usage: { callsLastMinute: calls, tokensLastHour: calls * 100 }, dataSensitivity: labels }),
      ).effect;
    for (let n = 1; n <= 200; n++) assert.equal(decide(n * 20, n % 60), "allow");
    assert.equal(evaluated.all, 1, "200 new requests, one class: one evaluation");
    assert.equal(decide(4097, 1), "deny");
    assert.equal(decide(100, 61), "deny");
    assert.equal(decide(100, 1, ["pii", "phi"]), "deny");
    assert.equal(evaluated.all, 4, "each new class is evaluated once");
    assert.equal(decide(120, 2, ["secret", "label-7"]), "deny", "the same class as pii and phi: from the memo");
    assert.equal(evaluated.all, 4);

    const readWhole = createGovernance({ environment: "test", policies: `${limits}
permit (principal, action, resource) when { context has maxTokens && context.maxTokens + 1 == 2 };` });
    evaluated = countEvaluations(readWhole.engine);
    for (let n = 1; n <= 50; n++) readWhole.engine.authorize(requestWith({ environment: "prod", streaming: false, maxTokens: n * 20 }));
    assert.equal(evaluated.all, 50, "maxTokens read whole by one policy of the slice: keyed by its value");
  });

  it("through the client: calls with data labels no policy names are decided once, then from the memo; a label a forbid names is denied, nothing sent", async () => {
    exporter.reset();
    // BASE_POLICIES: research agents may call anything, and are forbidden data labelled "phi".
    const { client, handler, records, governance } = harness();
    const converse = (labels: string[]) =>
      runAs(researchAgent, () => client.converse({ modelId: HAIKU, messages: [{ role: "user", content: [{ text: "hi" }] }] }), { dataSensitivity: labels });
    await converse(["label-0"]);
    const evaluated = countEvaluations(governance.engine);
    for (let n = 1; n <= 20; n++) await converse([`label-${n}`, "pii"]);
    assert.equal(evaluated.all, 0, "20 calls with new labels, the same outcomes: all from the memo");
    await assert.rejects(converse(["label-21", "phi"]), AccessDeniedError);
    assert.equal(evaluated.all, 1, "a label the forbid names is a new class: Cedar decides it");
    await assert.rejects(converse(["phi", "label-22"]), AccessDeniedError);
    assert.equal(evaluated.all, 1, "the same class again, labels in another order: from the memo");
    assert.equal(handler.requests.length, 21, "the denied calls sent nothing");
    assert.deepEqual(
      records.map((record) => record.decision),
      [...Array<string>(21).fill("allow"), "deny", "deny"],
      "one record per call",
    );
    const spans = exporter.getFinishedSpans();
    assert.equal(spans.length, 23, "one span per call");
    assert.deepEqual(
      spans.slice(-2).map((span) => span.attributes[WARDEN.DECISION]),
      ["deny", "deny"],
    );
  });
});

