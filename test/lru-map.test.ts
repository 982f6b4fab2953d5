import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { createGovernance } from "../src/index.js";
import { MAX_MEMO_CHARACTERS } from "../src/policy/decision-cache.js";
import { LruMap } from "../src/policy/lru-map.js";

/** The obvious model: an array from the least to the most recently used; an entry weighs its key's length plus its value. */
class ModelLru {
  readonly entries: [string, number][] = [];
  /** Entries that left for the weight limit (not for the capacity). */
  evictedByWeight = 0;
  constructor(
    readonly capacity: number,
    readonly maxWeight = Number.POSITIVE_INFINITY,
  ) {}
  get weight(): number {
    return this.entries.reduce((total, [key, value]) => total + weigh(key, value), 0);
  }
  get(key: string): number | undefined {
    const index = this.entries.findIndex(([k]) => k === key);
    if (index < 0) return undefined;
    const [entry] = this.entries.splice(index, 1);
    this.entries.push(entry!);
    return entry![1];
  }
  set(key: string, value: number): void {
    if (this.capacity <= 0) return;
    const index = this.entries.findIndex(([k]) => k === key);
    if (index >= 0) this.entries.splice(index, 1);
    if (weigh(key, value) > this.maxWeight) return;
    this.entries.push([key, value]);
    while (this.entries.length > this.capacity || this.weight > this.maxWeight) {
      if (this.entries.length <= this.capacity) this.evictedByWeight++;
      this.entries.shift();
    }
  }
}

const weigh = (key: string, value: number): number => key.length + value;

describe("LruMap", () => {
  it("behaves as a least-recently-used map of its capacity (model-based, random gets and sets)", () => {
    const operation = fc.record({ get: fc.boolean(), key: fc.constantFrom("a", "b", "c", "d", "e", "f"), value: fc.integer() });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 }), fc.array(operation, { maxLength: 60 }), (capacity, operations) => {
        const lru = new LruMap<string, number>(capacity);
        const model = new ModelLru(capacity);
        for (const { get, key, value } of operations) {
          if (get) assert.equal(lru.get(key), model.get(key));
          else {
            lru.set(key, value);
            model.set(key, value);
          }
          assert.equal(lru.size, model.entries.length);
        }
        // What is kept, and in which order it goes: every key read back in model order, the least recent first.
        for (const [key, value] of [...model.entries]) assert.equal(lru.get(key), value);
      }),
      { numRuns: 2000 },
    );
  });

  it("also keeps the total weight of its entries within its limit, evicting the least recently used; an entry too heavy on its own is not kept (model-based)", () => {
    const operation = fc.record({ get: fc.boolean(), key: fc.constantFrom("a", "bb", "ccc", "dddd", "e", "ff"), value: fc.integer({ min: 0, max: 6 }) });
    let evictedByWeight = 0;
    let refused = 0;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 14 }), fc.array(operation, { maxLength: 60 }), (capacity, maxWeight, operations) => {
        const lru = new LruMap<string, number>(capacity, maxWeight, weigh);
        const model = new ModelLru(capacity, maxWeight);
        for (const { get, key, value } of operations) {
          if (get) assert.equal(lru.get(key), model.get(key));
          else {
            lru.set(key, value);
            model.set(key, value);
            if (capacity > 0 && weigh(key, value) > maxWeight) refused++;
          }
          assert.equal(lru.size, model.entries.length);
          assert.equal(lru.weight, model.weight);
          assert.ok(lru.weight <= maxWeight);
        }
        for (const [key, value] of [...model.entries]) assert.equal(lru.get(key), value);
        evictedByWeight += model.evictedByWeight;
      }),
      { numRuns: 2000 },
    );
    // Both ways of leaving were exercised.
    assert.ok(evictedByWeight > 100, `evicted by weight: ${evictedByWeight}`);
    assert.ok(refused > 100, `refused as too heavy: ${refused}`);
  });
});

describe("the decision memo's memory", () => {
  it("stays within MAX_MEMO_CHARACTERS when every request is long and new (a context value read whole: ~3.9 KB keys)", () => {
    const governance = createGovernance({
      environment: "test",
      // Compared with another context value, the purpose is read whole: each new one is its own key.
      policies: `permit (principal, action, resource) when { context has purpose && context.purpose like "reconcile-*" && context.purpose != context.region };`,
    });
    const engine = governance.engine;
    const principal = { type: "Bedrock::Workload", id: "w0" };
    const resource = { type: "Bedrock::Model", id: "m0" };
    const padding = "x".repeat(3_800);
    const requests = Math.ceil((2 * MAX_MEMO_CHARACTERS) / 3_900);
    for (let i = 0; i < requests; i++) {
      const decision = engine.authorize({
        principal,
        action: { type: "Bedrock::Action", id: "Converse" },
        resource,
        context: { purpose: `reconcile-${i}-${padding}`, region: "us-east-1", actionType: "read", dataSensitivity: [], toolsOffered: [], payloadInspected: true },
        entities: [
          { uid: principal, attrs: {}, parents: [] },
          { uid: resource, attrs: { kind: "foundation-model" }, parents: [] },
        ],
      });
      assert.equal(decision.effect, "allow");
      assert.ok(engine.memoCharacters <= MAX_MEMO_CHARACTERS, `${engine.memoCharacters} characters after ${i + 1} requests`);
    }
    // Every one was kept until the limit, then the oldest made room: ~half of them are left.
    assert.ok(engine.memoCharacters > MAX_MEMO_CHARACTERS - 4_096, `${engine.memoCharacters}`);
    assert.ok(engine.cachedDecisions < requests * 0.6, `${engine.cachedDecisions} of ${requests} kept`);
  });
});
