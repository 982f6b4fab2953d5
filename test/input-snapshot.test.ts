import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_INPUT_DEPTH, snapshotInput } from "../src/middleware/input-snapshot.js";

describe("the input snapshot", () => {
  it("is a deep copy of plain objects and arrays; binary payloads are shared, a top-level body is copied", () => {
    const image = new Uint8Array([1, 2, 3]);
    const input = { modelId: "m", messages: [{ role: "user", content: [{ text: "hi" }, { image: { source: { bytes: image } } }] }], body: new Uint8Array([4]) };
    const copy = snapshotInput(input) as typeof input;
    assert.deepEqual(copy, input);
    assert.notEqual(copy.messages, input.messages);
    assert.notEqual(copy.messages[0], input.messages[0]);
    assert.equal((copy.messages[0]!.content[1] as { image: { source: { bytes: Uint8Array } } }).image.source.bytes, image);
    assert.notEqual(copy.body, input.body);
    input.messages[0]!.content[0] = { text: "changed" };
    assert.deepEqual(copy.messages[0]!.content[0], { text: "hi" });
  });

  it("keeps a __proto__ key a plain key: no prototype is changed, nothing is polluted", () => {
    const hostile = JSON.parse('{"a":1,"__proto__":{"polluted":true},"b":[{"__proto__":{"x":1}}]}') as Record<string, unknown>;
    const copy = snapshotInput(hostile) as Record<string, unknown> & { b: Record<string, unknown>[] };
    assert.equal(Object.getPrototypeOf(copy), Object.prototype);
    assert.equal(Object.getPrototypeOf(copy.b[0]), Object.prototype);
    assert.equal((copy as { polluted?: unknown }).polluted, undefined);
    assert.equal(({} as { polluted?: unknown }).polluted, undefined);
    assert.deepEqual(Object.keys(copy), ["a", "__proto__", "b"]);
  });

  it("reads each property once and refuses inputs nested deeper than the limit", () => {
    let reads = 0;
    const input = Object.defineProperty({}, "modelId", { enumerable: true, get: () => `m${++reads}` });
    assert.deepEqual(snapshotInput(input), { modelId: "m1" });
    assert.equal(reads, 1);
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i <= MAX_INPUT_DEPTH + 1; i++) deep = (deep["next"] = {}) as Record<string, unknown>;
    assert.throws(() => snapshotInput(root), RangeError);
    assert.deepEqual(snapshotInput(null), {});
  });
});
