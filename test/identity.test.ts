import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { exporter } from "./support/tracing.js";
import { jsonResponse, converseReply, MemoryHandler } from "./support/memory-handler.js";
import { ConfigurationError, currentScope, runAs, WARDEN, withCallScope, workloadIdentity } from "../src/index.js";
import { bodyJson, converseInput, harness, invoiceAgent, researchAgent } from "./support/governance.js";

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
