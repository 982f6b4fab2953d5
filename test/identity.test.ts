import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { exporter } from "./support/tracing.js";
import { jsonResponse, converseReply, MemoryHandler } from "./support/memory-handler.js";
import { ConfigurationError, currentScope, runAs, WARDEN, withCallScope, workloadIdentity } from "../src/index.js";
import { bodyJson, converseInput, harness, invoiceAgent, researchAgent } from "./support/governance.js";
import fc from "fast-check";
import { identityBySchema, plainIdentity } from "../src/identity/workload-identity.js";

beforeEach(() => exporter.reset());

describe("runAs", () => {
  it("scopes an identity to a call tree; the innermost wins; scopes add up", async () => {
    assert.equal(currentScope().identity, undefined);
    await runAs(invoiceAgent, async () => {
      assert.equal(currentScope().identity?.id, invoiceAgent.id);
      await sleep(1);
      await runAs(
        researchAgent,
        async () => {
          await sleep(1);
          const scope = currentScope();
          assert.equal(scope.identity?.id, researchAgent.id);
          assert.equal(scope.purpose, "inner");
          assert.deepEqual([...scope.dataSensitivity].sort(), ["financial", "pii"]);
          assert.equal(scope.actionType, "mutate", "a scope can raise the action type, never lower it");
        },
        { purpose: "inner", dataSensitivity: ["pii"], actionType: "read" },
      );
      assert.equal(currentScope().identity?.id, invoiceAgent.id);
    }, { purpose: "outer", dataSensitivity: ["financial"], actionType: "mutate" });
    assert.equal(currentScope().identity, undefined);
  });

  it("withCallScope adds labels and keeps the identity", () => {
    runAs(invoiceAgent, () =>
      withCallScope({ dataSensitivity: ["phi"] }, () => {
        assert.equal(currentScope().identity?.id, invoiceAgent.id);
        assert.deepEqual(currentScope().dataSensitivity, ["phi"]);
      }),
    );
  });

  it("rejects malformed identities and scopes before running anything", () => {
    let ran = false;
    const run = () => (ran = true);
    assert.throws(() => runAs({ id: "" }, run), (e: unknown) => e instanceof ConfigurationError && /identity\.id/.test(e.message));
    assert.throws(() => runAs({ id: "a\nb" }, run), /control characters/);
    assert.throws(() => runAs({ id: "a\u2028b" }, run), /control characters/);
    assert.throws(() => runAs({ id: "agent-\ud800" }, run), /well-formed Unicode/);
    assert.throws(() => runAs(invoiceAgent, run, { purpose: "\udfff" }), /well-formed Unicode/);
    assert.throws(() => runAs({ id: "a", groups: "billing" } as never, run), /groups/);
    assert.throws(() => runAs({ id: "a", extra: 1 } as never, run), /extra/);
    assert.throws(() => runAs({ id: "a", group: ["x"] } as never, run), /Unrecognized key: "group" \(allowed: id, groups, environment, owner, attributes\)/);
    assert.throws(() => runAs(invoiceAgent, run, { actionType: "delete" as never }), /scope\.actionType/);
    assert.throws(() => runAs(invoiceAgent, run, { dataSensitivity: [""] }), /scope\.dataSensitivity/);
    assert.equal(ran, false);
  });

  it("a list with an empty slot is refused, naming the slot: a polluted Array.prototype index never becomes a group or a label", () => {
    const prototype = Array.prototype as unknown as Record<number, unknown>;
    prototype[1] = "admins";
    try {
      const groups = ["billing"];
      groups[2] = "support";
      assert.throws(() => workloadIdentity({ id: "agent", groups }), (e: unknown) => e instanceof ConfigurationError && /groups\.1: each identity group must be a string/.test(e.message));
      const labels = ["pii"];
      labels[2] = "internal";
      assert.throws(() => runAs({ id: "agent" }, () => 1, { dataSensitivity: labels }), (e: unknown) => e instanceof ConfigurationError && /dataSensitivity\.1/.test(e.message));
    } finally {
      delete prototype[1];
    }
  });

  it("reads a reused identity object at every runAs: a changed id or a removed group takes effect", async () => {
    const reused = { id: "spiffe://acme.test/agents/alice", groups: ["billing"] };
    await runAs(reused, async () => assert.deepEqual(currentScope().identity?.groups, ["billing"]));
    reused.id = "spiffe://acme.test/agents/mallory";
    reused.groups = [];
    await runAs(reused, async () => {
      assert.equal(currentScope().identity?.id, "spiffe://acme.test/agents/mallory");
      assert.deepEqual(currentScope().identity?.groups, []);
    });
    // ... and is validated again: a broken change is refused, never used.
    reused.id = "";
    assert.throws(() => runAs(reused, () => undefined), ConfigurationError);
    const frozen = workloadIdentity({ id: "x", groups: ["g"] });
    assert.ok(Object.isFrozen(frozen) && Object.isFrozen(frozen.groups));
  });
});

describe("identity checks by hand", () => {
  // Texts at and past each limit, with the characters the schema refuses.
  const text = (max: number) =>
    fc.oneof(
      { weight: 30, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) },
      fc.constantFrom("", "a\nb", "a\u0085b", "a\u2028", "x\ud800", "\udfffy", "a".repeat(max), "a".repeat(max + 1), "é".repeat(max)),
      fc.constantFrom(0, 1, null, true, {}, ["a"]),
    );
  const attributes = fc.oneof(
    { weight: 12, arbitrary: fc.dictionary(text(128) as fc.Arbitrary<string>, fc.oneof({ weight: 5, arbitrary: fc.string({ maxLength: 8 }) }, fc.constantFrom("b".repeat(1024), "b".repeat(1025), 1, null)), { maxKeys: 4 }) },
    fc.constantFrom(
      Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])),
      JSON.parse(`{"__proto__": "x"}`),
      { constructor: "c", toString: "t" },
      { [Symbol("s")]: "v", a: "b" },
      Object.assign(Object.create({ inherited: "x" }), { a: "b" }),
      Object.assign(Object.create(null), { a: "b" }),
      new Map([["a", "b"]]),
      ["a"],
      "a",
    ),
  );
  const groups = fc.oneof(
    { weight: 12, arbitrary: fc.array(text(256), { maxLength: 4 }) },
    fc.constantFrom(Array.from({ length: 64 }, (_, i) => `g${i}`), Array.from({ length: 65 }, (_, i) => `g${i}`), ["a", "a", "b"], [, "a"], "a", { 0: "a", length: 1 }),
  );
  const identity = fc
    .tuple(
      fc.record({ id: text(512), groups, environment: text(128), owner: text(256), attributes }, { requiredKeys: [] }),
      fc.constantFrom("none", "none", "none", "none", "an unknown key", "groups: undefined", "owner: undefined"),
    )
    .map(([fields, twist]) =>
      twist === "an unknown key" ? { ...fields, extra: "x" } : twist === "groups: undefined" ? { ...fields, groups: undefined } : twist === "owner: undefined" ? { ...fields, owner: undefined } : fields,
    );

  it("accepts only what the schema accepts, and returns what the schema returns (differential)", () => {
    const seen = { quick: 0, fallBack: 0, refused: 0 };
    fc.assert(
      fc.property(fc.oneof({ weight: 6, arbitrary: identity }, fc.constantFrom(null, undefined, "agent", ["agent"], 1)), (candidate) => {
        const quick = plainIdentity(candidate);
        let bySchema: unknown;
        try {
          bySchema = identityBySchema(candidate);
        } catch (error) {
          assert.ok(error instanceof ConfigurationError);
          assert.equal(quick, undefined, `the schema refuses what the hand check accepted: ${String(error)}`);
          seen.refused++;
          return;
        }
        if (quick === undefined) {
          seen.fallBack++;
          return;
        }
        seen.quick++;
        assert.deepEqual(quick, bySchema);
        assert.deepEqual(Object.keys(quick), Object.keys(bySchema as object), "the same fields, in the same order");
        assert.ok(Object.isFrozen(quick) && (quick.groups === undefined || Object.isFrozen(quick.groups)) && (quick.attributes === undefined || Object.isFrozen(quick.attributes)));
      }),
      { numRuns: 4000 },
    );
    assert.ok(seen.quick > 400 && seen.refused > 400, `both outcomes exercised: ${JSON.stringify(seen)}`);
  });

  it("a proxy is left to the schema: its answers may change between reads", () => {
    let reads = 0;
    const groups = new Proxy(["g"], { get: (target, key, receiver) => (key === "length" ? (reads++ === 0 ? 1 : 100) : Reflect.get(target, key, receiver)) });
    assert.equal(plainIdentity({ id: "a", groups }), undefined);
    assert.equal(plainIdentity(new Proxy({ id: "a" }, {})), undefined);
    assert.equal(plainIdentity({ id: "a", attributes: new Proxy({ tier: "x" }, {}) }), undefined);
    assert.deepEqual(plainIdentity({ id: "a", groups: ["g"] }), { id: "a", groups: ["g"] });
  });

  it("a getter is read once: the copy kept is the value checked", () => {
    let reads = 0;
    const shifty = {
      get id() {
        reads++;
        return reads === 1 ? "agent" : "";
      },
    };
    const frozen = workloadIdentity(shifty);
    assert.equal(frozen.id, "agent");
    assert.equal(reads, 1);
  });
});

describe("concurrent identities", () => {
  it("100 identities calling at once: every span, record and request names its own identity", async () => {
    // Replies arrive in scrambled order so that calls really interleave.
    const handler = new MemoryHandler(() => jsonResponse(converseReply("ok")));
    const slowHandler = {
      requests: handler.requests,
      async handle(request: Parameters<MemoryHandler["handle"]>[0]) {
        await sleep(Math.floor(Math.random() * 8));
        return handler.handle(request);
      },
    };
    const { client, records } = harness(
      `permit (principal in Bedrock::Group::"fleet", action, resource) when { context has purpose };`,
      slowHandler as unknown as MemoryHandler,
    );
    const identities = Array.from({ length: 100 }, (_, i) => ({ id: `spiffe://acme.test/fleet/agent-${i}`, groups: ["fleet"] }));
    await Promise.all(
      identities.map((identity, i) =>
        runAs(
          identity,
          async () => {
            await sleep(Math.floor(Math.random() * 5));
            await client.converse(converseInput());
          },
          { purpose: `task-${i}` },
        ),
      ),
    );
    assert.equal(records.length, 100);
    assert.equal(handler.requests.length, 100);
    for (const record of records) {
      assert.equal(record.decision, "allow");
      assert.equal(record.purpose, `task-${record.workload?.id.split("-").pop()}`);
    }
    for (const request of handler.requests) {
      const metadata = bodyJson(request)["requestMetadata"] as Record<string, string>;
      assert.equal(metadata["warden.purpose"], `task-${metadata["warden.workload"]?.split("-").pop()}`);
      const record = records.find((r) => r.id === metadata["warden.decision_id"]);
      assert.equal(record?.workload?.id, metadata["warden.workload"]);
    }
    const spans = exporter.getFinishedSpans();
    assert.equal(spans.length, 100);
    for (const span of spans) {
      const record = records.find((r) => r.id === span.attributes[WARDEN.DECISION_ID]);
      assert.equal(span.attributes[WARDEN.WORKLOAD_ID], record?.workload?.id);
      assert.equal(span.attributes[WARDEN.PURPOSE], record?.purpose);
    }
    assert.equal(new Set(spans.map((s) => s.attributes[WARDEN.WORKLOAD_ID])).size, 100);
  });
});
