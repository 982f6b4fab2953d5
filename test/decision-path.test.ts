import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import fc from "fast-check";
import { createGovernance, runAs, shippedSchema } from "../src/index.js";
import { wasm } from "../src/policy/cedar-wasm.js";
import { DecisionCache } from "../src/policy/decision-cache.js";
import type { CedarRequest } from "../src/policy/request-shape.js";
import { countEvaluations } from "./support/evaluations.js";
import { converseInput, harness, invoiceAgent } from "./support/governance.js";

const POLICIES = `
@id("p1") permit (principal in Bedrock::Group::"g1", action in Bedrock::Action::"ModelInvocation", resource) when { context.environment == "prod" && resource.kind == "foundation-model" };
@id("p2") permit (principal, action == Bedrock::Action::"Converse", resource in Bedrock::Provider::"anthropic") when { principal has owner && principal.owner == "team-a" };
@id("p3") forbid (principal, action, resource) when { context.dataSensitivity.contains("secret") };
@id("p4") forbid (principal, action, resource) when { context has maxTokens && context.maxTokens > 1000 && !(principal.hasTag("unlimited")) };
@id("p5") permit (principal, action, resource) when { principal.hasTag("tier") && principal.getTag("tier") == "gold" && context.region like "eu-*" };
@id("p6") forbid (principal, action, resource) when { resource has geo && resource.geo == "global" && context.environment == "prod" };
@id("p7") permit (principal, action == Bedrock::Action::"CountTokens", resource) when { context["region"] == "us-east-1" && context["toolsOffered"].contains("none") };
@id("p8") forbid (principal, action, resource) when { context.credentials.kind == "long-term" && context.environment == "prod" && !context.authentication.verified };
@id("p9") forbid (principal, action == Bedrock::Action::"StartAsyncInvoke", resource) when { context.delegation.depth >= 2 };
`;

const requestArbitrary = fc.record({
  principalId: fc.constantFrom("w1", "w2", "w3"),
  groups: fc.subarray(["g1", "g2"]),
  owner: fc.option(fc.constantFrom("team-a", "team-b"), { nil: undefined }),
  tags: fc.dictionary(fc.constantFrom("tier", "unlimited", "team"), fc.constantFrom("gold", "silver", "x"), { maxKeys: 3 }),
  action: fc.constantFrom("Converse", "ConverseStream", "InvokeModel", "CountTokens", "StartAsyncInvoke"),
  model: fc.record({
    id: fc.constantFrom("anthropic.claude-3-haiku-20240307-v1:0", "global.anthropic.claude-3-haiku-20240307-v1:0", "amazon.nova-lite-v1:0"),
    kind: fc.constantFrom("foundation-model", "inference-profile"),
    provider: fc.constantFrom("anthropic", "amazon"),
    geo: fc.option(fc.constantFrom("us", "global"), { nil: undefined }),
  }),
  environment: fc.constantFrom("prod", "dev"),
  region: fc.constantFrom("us-east-1", "eu-west-1"),
  dataSensitivity: fc.subarray(["pii", "secret"]),
  maxTokens: fc.option(fc.integer({ min: 0, max: 5000 }), { nil: undefined }),
  credentials: fc.constantFrom("long-term", "temporary", "bearer"),
  verified: fc.boolean(),
  delegationDepth: fc.integer({ min: 0, max: 3 }),
});

type GeneratedRequest = typeof requestArbitrary extends fc.Arbitrary<infer T> ? T : never;

function toRequest(r: GeneratedRequest): CedarRequest {
  const principal = { type: "Bedrock::Workload", id: r.principalId };
  const resource = { type: "Bedrock::Model", id: r.model.id };
  return {
    principal,
    action: { type: "Bedrock::Action", id: r.action },
    resource,
    context: {
      environment: r.environment,
      region: r.region,
      streaming: false,
      actionType: "read",
      dataSensitivity: r.dataSensitivity,
      toolsOffered: r.action === "CountTokens" ? ["none"] : [],
      payloadInspected: true,
      ...(r.maxTokens !== undefined && { maxTokens: r.maxTokens }),
      authentication: r.verified ? { verified: true, method: "oidc", issuer: "https://issuer.example", expiresInSeconds: 600 } : { verified: false, method: "declared" },
      delegation: { depth: r.delegationDepth, actors: ["a0", "a1", "a2"].slice(0, r.delegationDepth), ...(r.delegationDepth > 0 && { onBehalfOf: "alice" }) },
      credentials: r.credentials === "temporary" ? { kind: "temporary", brokered: true, expiresInSeconds: 900 } : { kind: r.credentials, brokered: false },
    },
    entities: [
      {
        uid: principal,
        attrs: { environment: "prod", ...(r.owner && { owner: r.owner }) },
        parents: r.groups.map((id: string) => ({ type: "Bedrock::Group", id })),
        ...(Object.keys(r.tags).length > 0 && { tags: r.tags }),
      },
      {
        uid: resource,
        attrs: { kind: r.model.kind, provider: r.model.provider, ...(r.model.geo && { geo: r.model.geo }) },
        parents: [{ type: "Bedrock::Provider", id: r.model.provider }],
      },
    ],
  };
}

describe("the decision path", () => {
  const original = { ...wasm };
  afterEach(() => Object.assign(wasm, original));

  it("pruning unread attributes and memoizing never change a decision (differential, against Cedar with the full request)", () => {
    const governance = createGovernance({ environment: "test", policies: POLICIES });
    const schema = shippedSchema();
    const seen = { allow: 0, deny: 0 };
    fc.assert(
      fc.property(requestArbitrary, (generated) => {
        const request = toRequest(generated);
        const ours = governance.engine.authorize(request);
        const reference = cedar.isAuthorized({
          ...request,
          context: request.context as cedar.Context,
          entities: request.entities as cedar.EntityJson[],
          schema,
          validateRequest: true,
          policies: { staticPolicies: POLICIES },
        });
        assert.equal(reference.type, "success", JSON.stringify(reference));
        if (reference.type !== "success") return;
        const errored = reference.response.diagnostics.errors.length > 0;
        const expected = errored ? "deny" : reference.response.decision;
        assert.equal(ours.effect, expected, JSON.stringify({ request, ours, reference: reference.response }));
        seen[ours.effect]++;
        // Cedar numbers the text's policies policy0..policyN; ours are named by @id p1..pN.
        if (!errored) assert.deepEqual([...ours.policies].sort(), reference.response.diagnostics.reason.map((id) => `p${Number(id.slice(6)) + 1}`).sort());
      }),
      { numRuns: 1000 },
    );
    assert.ok(seen.allow > 50 && seen.deny > 50, `both outcomes exercised: ${JSON.stringify(seen)}`);
  });

  it("a repeated request is answered from memory, without evaluating again (in wasm or in JavaScript)", async () => {
    for (const evaluator of ["javascript", "wasm"] as const) {
      const { client, governance } = harness(undefined, undefined, undefined, evaluator);
      // Counted from here: the warm-up at construction evaluated once.
      const evaluations = countEvaluations(governance.engine);
      await runAs(invoiceAgent, () => client.converse(converseInput()));
      await runAs(invoiceAgent, () => client.converse(converseInput()));
      assert.equal(evaluations.all, 1);
      // The only policy that applies to the invoice agent reads no context: the label is pruned away.
      await runAs(invoiceAgent, () => client.converse(converseInput()), { dataSensitivity: ["phi"] });
      assert.equal(evaluations.all, 1, "a context key no applicable policy reads is not part of the request");
      await runAs(invoiceAgent, () => client.converse(converseInput("anthropic.claude-3-sonnet-20240229-v1:0")));
      assert.equal(evaluations.all, 2, "a different model is a different request");
      assert.equal(evaluations.inWasm, evaluator === "wasm" ? 2 : 0, `${evaluator}: where the two evaluations ran`);
    }
  });

  it("decisions cannot be changed by whoever holds them (a cached decision is shared)", async () => {
    const { client } = harness();
    const error = (await runAs(invoiceAgent, () => client.converse(converseInput("amazon.titan-text-express-v1"))).catch((e: unknown) => e)) as {
      decision: { effect: string; reasons: string[] };
    };
    assert.throws(() => {
      (error.decision as { effect: string }).effect = "allow";
    }, TypeError);
    assert.throws(() => error.decision.reasons.push("tampered"), TypeError);
  });

  it("memoization can be turned off, and the cache is bounded, evicting the least recently used", async () => {
    const governance = createGovernance({ environment: "test", policies: POLICIES, decisionCacheSize: 0 });
    const evaluations = countEvaluations(governance.engine);
    const request = toRequest(fc.sample(requestArbitrary, { numRuns: 1, seed: 1 })[0]!);
    governance.engine.authorize(request);
    governance.engine.authorize(request);
    assert.equal(evaluations.all, 2, "no memoization with decisionCacheSize: 0");
    assert.equal(governance.engine.cachedDecisions, 0);

    const cache = new DecisionCache(2);
    const decision = governance.engine.authorize(request);
    cache.set("a", decision);
    cache.set("b", decision);
    cache.get("a");
    cache.set("c", decision);
    assert.equal(cache.size, 2);
    assert.equal(cache.get("b"), undefined, "the least recently used entry went first");
    assert.ok(cache.get("a") && cache.get("c"));
    assert.throws(() => createGovernance({ environment: "test", policies: POLICIES, decisionCacheSize: -1 }), /decisionCacheSize/);
  });
});

describe("pruning inside tool inputs", () => {
  it("a tool input pruned to what the policies read decides exactly as the whole input (differential, against Cedar)", async () => {
    const { authorizeTool } = await import("../src/tools/authorize-tool.js");
    const { declareTools, schemaWithTools } = await import("../src/tools/tool-definitions.js");
    const { toCedarValue } = await import("../src/tools/json-schema-to-cedar.js");
    const { currentScope } = await import("../src/index.js");
    const tools = [
      {
        name: "search_orders",
        effect: "read" as const,
        inputSchema: {
          type: "object",
          properties: {
            amount: { type: "number" },
            filters: { type: "object", properties: { from: { type: "string" }, to: { type: "string" }, region: { type: "string" } }, required: ["from", "to", "region"] },
            lines: { type: "array", items: { type: "object", properties: { sku: { type: "string" }, qty: { type: "integer" } }, required: ["sku", "qty"] } },
            note: { type: "string" },
          },
          required: ["amount", "filters", "lines"],
        },
      },
    ];
    const policies = `
      @id("q1") permit (principal, action == Bedrock::Action::"tool:search_orders", resource)
        when { context has input && context.input.filters.from like "2026-*" && context.input.amount.lessThan(decimal("500.0")) };
      @id("q2") permit (principal, action == Bedrock::Action::"tool:search_orders", resource)
        when { context has input && context.input.filters == { "from": "x", "to": "y", "region": "eu" } };
      @id("q3") forbid (principal, action == Bedrock::Action::"tool:search_orders", resource)
        when { context has input && context.input.lines.contains({ "sku": "banned", "qty": 1 }) };
      @id("q4") forbid (principal, action == Bedrock::Action::"tool:search_orders", resource)
        when { context has input && context.input has note && context.input.note like "*drop*" };
    `;
    const governance = createGovernance({ environment: "test", policies, tools });
    const declared = declareTools(tools);
    const schema = schemaWithTools(shippedSchema(), declared);
    const inputType = declared.get("search_orders")!.inputType!;
    const inputs = fc.record(
      {
        amount: fc.constantFrom(1, 99.5, 499.9999, 500, 10_000),
        filters: fc.record({ from: fc.constantFrom("2026-01-01", "2025-12-31", "x"), to: fc.constantFrom("y", "z"), region: fc.constantFrom("eu", "us") }),
        lines: fc.array(fc.record({ sku: fc.constantFrom("a", "banned"), qty: fc.constantFrom(1, 2) }), { maxLength: 3 }),
        note: fc.constantFrom("fine", "please drop table"),
      },
      { requiredKeys: ["amount", "filters", "lines"] },
    );
    const seen = { allow: 0, deny: 0 };
    fc.assert(
      fc.property(inputs, (input) => {
        const ours = runAs({ id: "agent" }, () =>
          authorizeTool({ engine: governance.engine, tools: governance.tools, environment: "test", region: "us-east-1", identity: currentScope().identity, scope: currentScope(), name: "search_orders", phase: "call", input }),
        ).decision;
        const converted = toCedarValue(input, inputType);
        assert.ok(converted.ok);
        const reference = cedar.isAuthorized({
          principal: { type: "Bedrock::Workload", id: "agent" },
          action: { type: "Bedrock::Action", id: "tool:search_orders" },
          resource: { type: "Bedrock::Tool", id: "search_orders" },
          context: {
            environment: "test", region: "us-east-1", streaming: false, actionType: "read", dataSensitivity: [], toolsOffered: [],
            payloadInspected: true, phase: "call", input: converted.value as cedar.CedarValueJson,
            authentication: { verified: false, method: "declared" }, delegation: { depth: 0, actors: [] }, credentials: { kind: "none", brokered: false },
          },
          schema: schema as cedar.Schema,
          validateRequest: true,
          entities: [
            { uid: { type: "Bedrock::Workload", id: "agent" }, attrs: {}, parents: [] },
            { uid: { type: "Bedrock::Tool", id: "search_orders" }, attrs: { effect: "read", serverSide: false }, parents: [] },
          ],
          policies: { staticPolicies: policies },
        });
        assert.equal(reference.type, "success", JSON.stringify(reference));
        if (reference.type !== "success") return;
        const expected = reference.response.diagnostics.errors.length > 0 ? "deny" : reference.response.decision;
        assert.equal(ours.effect, expected, JSON.stringify({ input, ours, reference: reference.response }));
        seen[ours.effect]++;
      }),
      { numRuns: 400 },
    );
    assert.ok(seen.allow > 20 && seen.deny > 20, `both outcomes exercised: ${JSON.stringify(seen)}`);
  });
});
