import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runInNewContext } from "node:vm";
import { MAX_INPUT_DEPTH, snapshotInput } from "../src/middleware/input-snapshot.js";

/** The copy as plain data (Dates and bytes aside, what JSON holds). */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe("the input snapshot", () => {
  it("is a deep copy of objects and arrays; binary payloads are shared, a top-level body is copied", () => {
    const image = new Uint8Array([1, 2, 3]);
    const input = { modelId: "m", messages: [{ role: "user", content: [{ text: "hi" }, { image: { source: { bytes: image } } }] }], body: new Uint8Array([4]) };
    const copy = snapshotInput(input) as typeof input;
    assert.deepEqual(plain(copy), plain(input));
    assert.notEqual(copy.messages, input.messages);
    assert.notEqual(copy.messages[0], input.messages[0]);
    assert.equal((copy.messages[0]!.content[1] as { image: { source: { bytes: Uint8Array } } }).image.source.bytes, image);
    assert.notEqual(copy.body, input.body);
    assert.deepEqual([...copy.body], [4]);
    input.messages[0]!.content[0] = { text: "changed" };
    assert.deepEqual(plain(copy.messages[0]!.content[0]), { text: "hi" });
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
    assert.deepEqual(plain(snapshotInput(input)), { modelId: "m1" });
    assert.equal(reads, 1);
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i <= MAX_INPUT_DEPTH + 1; i++) deep = (deep["next"] = {}) as Record<string, unknown>;
    assert.throws(() => snapshotInput(root), RangeError);
    assert.deepEqual(snapshotInput(null), {});
  });

  it("copies objects that are not plain too — class instances, other realms, Object.create, proxies — by their own properties, once", () => {
    class InferenceConfig {
      constructor(public maxTokens: number) {}
      get temperature(): number {
        return 1; // on the prototype: not an own property, not copied
      }
    }
    let reads = 0;
    const proxied = new Proxy({ name: "lookup" }, { getPrototypeOf: () => Array.prototype, get: (t, k) => (k === "name" ? `lookup${++reads}` : Reflect.get(t, k)) });
    const foreign = runInNewContext("({ maxTokens: 10, nested: { a: [1] } })") as Record<string, unknown>;
    const input = { inferenceConfig: new InferenceConfig(100), fromVm: foreign, derived: Object.assign(Object.create({ inherited: 1 }), { own: 2 }), tool: proxied };
    const copy = snapshotInput(input) as Record<string, Record<string, unknown>>;
    input.inferenceConfig.maxTokens = 200_000;
    (foreign["nested"] as { a: number[] }).a.push(2);
    assert.deepEqual(plain(copy), { inferenceConfig: { maxTokens: 100 }, fromVm: { maxTokens: 10, nested: { a: [1] } }, derived: { own: 2 }, tool: { name: "lookup1" } });
    assert.equal(reads, 1);
    for (const value of Object.values(copy)) assert.equal(Object.getPrototypeOf(value), Object.prototype);
  });

  it("an inherited (polluted) property is no own property of a copy: the copies are plain objects, for middleware after ours too", () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto["toolConfig"] = { tools: [{ toolSpec: { name: "wire_money" } }] };
    try {
      const copy = snapshotInput({ modelId: "m", inferenceConfig: {} }) as Record<string, Record<string, unknown>>;
      assert.equal(Object.hasOwn(copy, "toolConfig"), false);
      assert.equal(Object.hasOwn(copy["inferenceConfig"]!, "toolConfig"), false);
      assert.equal(copy.hasOwnProperty("modelId"), true);
      assert.ok(copy instanceof Object);
    } finally {
      delete proto["toolConfig"];
    }
  });

  it("a body of any binary type becomes a fresh Uint8Array of its bytes; CountTokens' InvokeModel body too; the caller's object is never written", () => {
    const bytes = new TextEncoder().encode('{"max_tokens":100}');
    const as = {
      arrayBuffer: bytes.slice().buffer,
      dataView: new DataView(bytes.slice().buffer),
      int8: new Int8Array(bytes.slice().buffer),
      buffer: Buffer.from(bytes),
      offsetView: new Uint8Array([9, 9, ...bytes, 9]).subarray(2, 2 + bytes.length),
    };
    for (const [name, body] of Object.entries(as)) {
      const input = Object.freeze({ modelId: "m", body });
      const copy = snapshotInput(input);
      assert.ok(copy["body"] instanceof Uint8Array && Object.getPrototypeOf(copy["body"]) === Uint8Array.prototype, name);
      assert.equal(new TextDecoder().decode(copy["body"] as Uint8Array), '{"max_tokens":100}', name);
      assert.equal(input.body, body, `${name}: the caller's body is untouched`);
    }
    const counted = { modelId: "m", input: { invokeModel: { body: as.arrayBuffer } } };
    const copy = snapshotInput(counted) as { input: { invokeModel: { body: unknown } } };
    assert.ok(copy.input.invokeModel.body instanceof Uint8Array);
    assert.equal(counted.input.invokeModel.body, as.arrayBuffer);
    new Uint8Array(as.arrayBuffer)[14] = 0x39; // "100" → "190" after the snapshot
    assert.equal(new TextDecoder().decode(copy.input.invokeModel.body as Uint8Array), '{"max_tokens":100}');
  });

  it("a top-level body that is a stream or a Blob is kept as it is; elsewhere nothing is kept by reference but bytes; a Date is copied", () => {
    const stream = (async function* () {})();
    const blob = new Blob(["{}"]);
    assert.equal(snapshotInput({ body: stream })["body"], stream);
    assert.equal(snapshotInput({ body: blob })["body"], blob);
    // A proxy that says it is a stream or a buffer is an object like any other: copied, read once.
    let reads = 0;
    const pretender = new Proxy(
      { tools: [] as unknown[] },
      { get: (t, k) => (k === "pipe" || k === "getReader" ? () => undefined : k === Symbol.toStringTag ? "ArrayBuffer" : k === "tools" ? (reads++, [{ n: reads }]) : Reflect.get(t, k)) },
    );
    const when = new Date(0);
    const copy = snapshotInput({ toolConfig: pretender, submitTimeAfter: when });
    assert.notEqual(copy["toolConfig"], pretender);
    assert.deepEqual(plain(copy["toolConfig"]), { tools: [{ n: 1 }] });
    assert.equal(reads, 1);
    assert.notEqual(copy["submitTimeAfter"], when);
    assert.equal((copy["submitTimeAfter"] as Date).getTime(), 0);
  });
});
