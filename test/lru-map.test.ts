import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { LruMap } from "../src/policy/lru-map.js";

/** The obvious model: an array from the least to the most recently used. */
class ModelLru {
  readonly entries: [string, number][] = [];
  constructor(readonly capacity: number) {}
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
    this.entries.push([key, value]);
    if (this.entries.length > this.capacity) this.entries.shift();
  }
}

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
});
