import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import * as cedarWasm from "@cedar-policy/cedar-wasm/nodejs";
import type { AuthorizationAnswer, CedarValueJson as WasmValue, SchemaJson, Type as WasmType } from "@cedar-policy/cedar-wasm/nodejs";
import {
  jsonSchemaToCedarType,
  toCedarValue,
  type CedarRecordType,
  type CedarSchemaType,
  type CedarValueJson,
} from "../src/tools/json-schema-to-cedar.js";

// Calls go through a Proxy, as in src/policy/cedar-wasm.ts: Node 20's V8 may otherwise inline the
// JS-to-Wasm glue into a hot caller and crash on deoptimization during thousands of calls.
const cedar = {
  isAuthorized: new Proxy(cedarWasm.isAuthorized, {}),
  validate: new Proxy(cedarWasm.validate, {}),
  checkParseSchema: new Proxy(cedarWasm.checkParseSchema, {}),
};

// Compile-time: the exported types are structural subsets of cedar-wasm's.
const asWasmType = (type: CedarSchemaType): WasmType<string> => type;
const asWasmValue = (value: CedarValueJson): WasmValue => value;

const S = { type: "String" } as const;
const L = { type: "Long" } as const;
const B = { type: "Boolean" } as const;
const D = { type: "Extension", name: "decimal" } as const;
const req = <T extends CedarSchemaType>(t: T) => ({ ...t, required: true });
const opt = <T extends CedarSchemaType>(t: T) => ({ ...t, required: false });
const rec = (attributes: CedarRecordType["attributes"]): CedarRecordType => ({ type: "Record", attributes });
const obj = (properties: Record<string, unknown>, required: string[] = []) => ({ type: "object", properties, required });
const dec = (arg: string) => ({ __extn: { fn: "decimal", arg } });

// ------------------------------------------------------------------------------------------------
// jsonSchemaToCedarType
// ------------------------------------------------------------------------------------------------

describe("jsonSchemaToCedarType: mapping table", () => {
  const table: [string, unknown, CedarSchemaType][] = [
    ["string", { type: "string" }, S],
    ["string with format date-time", { type: "string", format: "date-time" }, S],
    ["string with format date", { type: "string", format: "date", pattern: "^\\d{4}" }, S],
    ["integer", { type: "integer", minimum: 0 }, L],
    ["number", { type: "number" }, D],
    ["integer or number", { type: ["integer", "number"] }, D],
    ["boolean", { type: "boolean" }, B],
    ["string enum with type", { type: "string", enum: ["USD", "EUR"] }, S],
    ["string enum without type", { enum: ["USD", "EUR"] }, S],
    ["integer enum", { enum: [1, 2, 3] }, L],
    ["number enum (integers and fractions)", { enum: [1, 2.5] }, D],
    ["boolean enum", { enum: [true] }, B],
    ["nullable string enum", { enum: ["a", null] }, S],
    ["const string", { const: "fixed" }, S],
    ["const integer", { const: 7 }, L],
    ["const fraction", { const: 0.25 }, D],
    ["const boolean", { const: false }, B],
    ["type [string, null]", { type: ["string", "null"] }, S],
    ["array of strings", { type: "array", items: { type: "string" } }, { type: "Set", element: S }],
    ["array of arrays of integers", { type: "array", items: { type: "array", items: { type: "integer" } } }, { type: "Set", element: { type: "Set", element: L } }],
    [
      "array of objects",
      { type: "array", items: obj({ sku: { type: "string" }, qty: { type: "integer" } }, ["sku"]) },
      { type: "Set", element: rec({ sku: req(S), qty: opt(L) }) },
    ],
    [
      "object: required and optional",
      obj({ a: { type: "string" }, b: { type: "integer" }, c: { type: "boolean" } }, ["a", "c"]),
      rec({ a: req(S), b: opt(L), c: req(B) }),
    ],
    [
      "nested objects",
      obj({ outer: obj({ inner: obj({ leaf: { type: "number" } }, ["leaf"]) }, ["inner"]) }, ["outer"]),
      rec({ outer: req(rec({ inner: req(rec({ leaf: req(D) })) })) }),
    ],
    [
      "required but nullable property becomes optional",
      obj({ a: { type: ["string", "null"] }, b: { type: "integer", nullable: true }, c: { type: ["object", "null"], properties: {} } }, ["a", "b", "c"]),
      rec({ a: opt(S), b: opt(L), c: opt(rec({})) }),
    ],
    [
      "names that are not Cedar identifiers stay record keys",
      obj({ "odd-name": { type: "string" }, "with space": { type: "boolean" }, "": { type: "integer" }, if: { type: "string" } }, ["odd-name"]),
      rec({ "odd-name": req(S), "with space": opt(B), "": opt(L), if: opt(S) }),
    ],
    ["additionalProperties is ignored when properties exist", { ...obj({ a: { type: "string" } }), additionalProperties: { type: "integer" } }, rec({ a: opt(S) })],
    ["properties without type is an object", { properties: { a: { type: "string" } }, required: ["a"] }, rec({ a: req(S) })],
    ["explicitly empty properties", { type: "object", properties: {} }, rec({})],
    ["closed object without properties", { type: "object", additionalProperties: false }, rec({})],
    ["annotations and unknown keywords are ignored", { type: "string", title: "t", description: "d", default: "x", examples: ["y"], "x-vendor": 1 }, S],
    ["required naming an undeclared property is harmless", obj({ a: { type: "string" } }, ["a", "ghost"]), rec({ a: req(S) })],
  ];
  for (const [name, schema, expected] of table) {
    it(name, () => {
      const result = jsonSchemaToCedarType(schema);
      assert.deepEqual(result, { type: expected, problems: [] });
      asWasmType(result.type);
    });
  }
});

describe("jsonSchemaToCedarType: constructs Cedar cannot represent become opaque, with a problem", () => {
  const table: [string, unknown, RegExp][] = [
    ["oneOf", { oneOf: [{ type: "string" }, { type: "integer" }] }, /^input\.payload: "oneOf" is not supported; property omitted \(policies cannot read it; it is never sent\)$/],
    ["anyOf", { anyOf: [{ type: "string" }] }, /^input\.payload: "anyOf" is not supported; property omitted/],
    ["allOf", { type: "object", allOf: [{ properties: { a: { type: "string" } } }] }, /^input\.payload: "allOf" is not supported/],
    ["$ref", { $ref: "#/$defs/Money" }, /^input\.payload: "\$ref" is not supported/],
    ["patternProperties", { type: "object", patternProperties: { "^x-": { type: "string" } } }, /^input\.payload: "patternProperties" is not supported/],
    ["not", { type: "string", not: { const: "x" } }, /^input\.payload: "not" is not supported/],
    ["tuple (draft-07 items list)", { type: "array", items: [{ type: "string" }, { type: "integer" }] }, /^input\.payload: tuple/],
    ["tuple (prefixItems)", { type: "array", prefixItems: [{ type: "string" }] }, /^input\.payload: "prefixItems" is not supported/],
    ["array without items (mixed types)", { type: "array" }, /^input\.payload: array without "items"/],
    ["array of unrepresentable items", { type: "array", items: { anyOf: [{ type: "string" }] } }, /^input\.payload: its items are not representable \(input\.payload\[\*\]: "anyOf" is not supported\); property omitted/],
    ["object without properties (a map)", { type: "object", additionalProperties: { type: "string" } }, /^input\.payload: object without "properties"/],
    ["mixed type list", { type: ["string", "integer"] }, /^input\.payload: mixed types "string", "integer"/],
    ["type null", { type: "null" }, /^input\.payload: type "null" alone/],
    ["unknown type name", { type: "float" }, /^input\.payload: unknown type "float"/],
    ["no type at all", { description: "anything" }, /^input\.payload: no "type"/],
    ["boolean schema true", true, /^input\.payload: the schema `true` accepts any value/],
    ["boolean schema false", false, /^input\.payload: the schema `false` accepts no value/],
    ["enum of mixed kinds", { enum: ["a", 1] }, /^input\.payload: "enum" mixes string and integer values/],
    ["enum of objects", { enum: [{ a: 1 }] }, /^input\.payload: "enum" holds an object/],
    ["const with 5 fractional digits", { const: 0.12345 }, /^input\.payload: "const" holds a number that is neither a safe integer nor a Cedar decimal/],
    ["const array", { const: [1] }, /^input\.payload: "const" holds an array/],
    ["enum with an unsafe integer", { enum: [1, 2 ** 60] }, /^input\.payload: "enum" holds a number that is neither a safe integer nor a Cedar decimal/],
    ["not a schema object", 42, /^input\.payload: not a schema object \(an integer\)/],
  ];
  for (const [name, payload, problem] of table) {
    it(name, () => {
      const result = jsonSchemaToCedarType(obj({ keep: { type: "string" }, payload }, ["keep", "payload"]));
      assert.deepEqual(result.type, rec({ keep: req(S) }), "the other property is kept, the unrepresentable one is omitted");
      assert.equal(result.problems.length, 1, result.problems.join("\n"));
      assert.match(result.problems[0] ?? "", problem);
    });
  }

  it("nullable array items: kept as a set, with a problem saying null elements are refused", () => {
    const result = jsonSchemaToCedarType(obj({ tags: { type: "array", items: { type: ["string", "null"] } } }));
    assert.deepEqual(result.type, rec({ tags: opt({ type: "Set", element: S }) }));
    assert.match(result.problems[0] ?? "", /^input\.tags\[\*\]: items may be null/);
  });

  it("property names that are Cedar JSON escapes are omitted", () => {
    const result = jsonSchemaToCedarType(obj({ __entity: { type: "string" }, __extn: { type: "string" }, __expr: { type: "string" }, ok: { type: "string" } }));
    assert.deepEqual(result.type, rec({ ok: opt(S) }));
    assert.deepEqual(
      result.problems.map((p) => p.split(":")[0]),
      ["input.__entity", "input.__extn", "input.__expr"],
    );
  });

  it("a property name with an unpaired surrogate is omitted (cedar-wasm throws on it)", () => {
    const result = jsonSchemaToCedarType(obj({ "bad\ud800": { type: "string" }, "ok\ud83d\ude00": { type: "string" } }));
    assert.deepEqual(Object.keys((result.type as CedarRecordType).attributes), ["ok\ud83d\ude00"]);
    assert.match(result.problems[0] ?? "", /unpaired UTF-16 surrogate/);
  });

  it("a property named __proto__ (from JSON.parse) is an own attribute and pollutes nothing", () => {
    const schema: unknown = JSON.parse('{"type":"object","properties":{"__proto__":{"type":"string"},"polluted":{"type":"boolean"}},"required":["__proto__"]}');
    const result = jsonSchemaToCedarType(schema);
    const attributes = (result.type as CedarRecordType).attributes;
    assert.deepEqual(Object.keys(attributes), ["__proto__", "polluted"]);
    assert.equal(Object.getPrototypeOf(attributes), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(attributes, "__proto__")?.value, req(S));
    assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
  });

  it("problems name nested paths, with bracket notation for odd names", () => {
    const result = jsonSchemaToCedarType(obj({ items: { type: "array", items: obj({ "unit-price": { oneOf: [] }, sku: { type: "string" } }) } }));
    assert.deepEqual(result.type, rec({ items: opt({ type: "Set", element: rec({ sku: opt(S) }) }) }));
    assert.deepEqual(result.problems, ['input.items[*]["unit-price"]: "oneOf" is not supported; property omitted (policies cannot read it; it is never sent)']);
  });

  it("a malformed required list is reported and ignored", () => {
    const result = jsonSchemaToCedarType({ type: "object", properties: { a: { type: "string" } }, required: "a" });
    assert.deepEqual(result.type, rec({ a: opt(S) }));
    assert.match(result.problems[0] ?? "", /^input: "required" is not a list/);
  });
});

describe("jsonSchemaToCedarType: the root", () => {
  it("an unrepresentable root is an empty record, with a problem", () => {
    for (const schema of [{ oneOf: [] }, true, null, "object", [], { type: "object" }, { type: "array" }]) {
      const result = jsonSchemaToCedarType(schema);
      assert.deepEqual(result.type, rec({}), JSON.stringify(schema));
      assert.equal(result.problems.length, 1);
      assert.match(result.problems[0] ?? "", /^input: .*; the root is represented as an empty record/);
    }
  });

  it("a representable non-object root maps to its type; the path option names the root", () => {
    assert.deepEqual(jsonSchemaToCedarType({ type: "string" }), { type: S, problems: [] });
    assert.match(jsonSchemaToCedarType({ $ref: "#" }, { path: "args" }).problems[0] ?? "", /^args: /);
  });

  it("invalid options are a programming error (TypeError)", () => {
    assert.throws(() => jsonSchemaToCedarType({ type: "string" }, { maxDepth: 0 }), TypeError);
    assert.throws(() => jsonSchemaToCedarType({ type: "string" }, { maxProperties: 1.5 }), TypeError);
  });
});

describe("jsonSchemaToCedarType: limits and hostile schemas never throw", () => {
  const nested = (levels: number): unknown => {
    let schema: unknown = { type: "string" };
    for (let i = 0; i < levels; i += 1) schema = obj({ n: schema });
    return schema;
  };

  it("depth: 16 levels are mapped, the 17th is opaque", () => {
    const ok = jsonSchemaToCedarType(nested(16));
    assert.deepEqual(ok.problems, []);
    const deep = jsonSchemaToCedarType(nested(17));
    assert.equal(deep.problems.length, 1);
    assert.match(deep.problems[0] ?? "", /^input(\.n){17}: nested deeper than 16 levels; property omitted/);
  });

  it("a 100,000-level schema is a problem, not a stack overflow", () => {
    const result = jsonSchemaToCedarType(nested(100_000));
    assert.equal(result.problems.length, 1);
    assert.match(result.problems[0] ?? "", /nested deeper than 16 levels/);
  });

  it("property count: 256 are mapped, 257 make the object opaque", () => {
    const props = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { type: "integer" }]));
    assert.equal(Object.keys((jsonSchemaToCedarType(obj(props(256))).type as CedarRecordType).attributes).length, 256);
    const result = jsonSchemaToCedarType(obj({ big: obj(props(257)) }));
    assert.deepEqual(result.type, rec({}));
    assert.match(result.problems[0] ?? "", /^input\.big: declares 257 properties, more than 256; property omitted/);
  });

  it("a shared sub-schema (a DAG) cannot blow up: the node budget caps work and problems are capped", () => {
    let schema: unknown = { type: "string" };
    for (let i = 0; i < 30; i += 1) schema = obj(Object.fromEntries("abcdefgh".split("").map((k) => [k, schema])));
    const started = performance.now();
    const result = jsonSchemaToCedarType(schema, { maxDepth: 40 });
    assert.ok(performance.now() - started < 1000);
    assert.ok(result.problems.length <= 101);
    assert.match(result.problems.at(-1) ?? "", /^\.\.\. and \d+ more problems$/);
    assert.ok(result.problems.some((p) => p.includes("more than 10000 nodes")));
  });

  it("a cyclic schema object is reported, not walked", () => {
    const schema: Record<string, unknown> = { type: "object", properties: {} };
    (schema["properties"] as Record<string, unknown>)["self"] = schema;
    const result = jsonSchemaToCedarType(schema, { maxDepth: 1000 });
    assert.deepEqual(result.type, rec({}));
    assert.match(result.problems[0] ?? "", /^input\.self: the schema object contains itself/);
  });

  it("throwing getters and proxies do not escape", () => {
    const getter = { type: "object", get properties(): never { throw new Error("boom"); } };
    const proxy = new Proxy({}, { getPrototypeOf() { throw new Error("trap"); } });
    for (const schema of [getter, proxy]) {
      const result = jsonSchemaToCedarType(schema);
      assert.deepEqual(result.type, rec({}));
      assert.match(result.problems[0] ?? "", /could not be read/);
    }
  });

  it("does not mutate its argument", () => {
    const schema = obj({ a: { type: ["string", "null"] }, b: { type: "array", items: { type: "number" } } }, ["a"]);
    const copy = structuredClone(schema);
    jsonSchemaToCedarType(schema);
    assert.deepEqual(schema, copy);
  });
});

// ------------------------------------------------------------------------------------------------
// toCedarValue
// ------------------------------------------------------------------------------------------------

describe("toCedarValue: conversion", () => {
  const refund = rec({ amount: req(D), currency: req(S), reason: opt(S) });

  it("reports a type mismatch with the path", () => {
    assert.deepEqual(toCedarValue({ amount: "12" }, rec({ amount: req(L) })), { ok: false, reason: "input.amount: expected an integer, got a string" });
    assert.deepEqual(toCedarValue({ amount: 1.5 }, rec({ amount: req(L) })), { ok: false, reason: "input.amount: expected an integer, got a number with a fractional part" });
    assert.deepEqual(toCedarValue({ a: { b: [1, "x"] } }, rec({ a: req(rec({ b: req({ type: "Set", element: L }) })) })), { ok: false, reason: "input.a.b[1]: expected an integer, got a string" });
    assert.deepEqual(toCedarValue({ "odd-name": 1 }, rec({ "odd-name": req(S) })), { ok: false, reason: 'input["odd-name"]: expected a string, got an integer' });
    assert.deepEqual(toCedarValue([], refund), { ok: false, reason: "input: expected an object, got an array" });
    assert.deepEqual(toCedarValue(null, refund), { ok: false, reason: "input: expected an object, got null" });
    assert.deepEqual(toCedarValue(new Date(0), rec({})), { ok: false, reason: "input: expected an object, got a non-plain object" });
  });

  it("drops undeclared keys, omits null or absent optional properties, requires required ones", () => {
    assert.deepEqual(toCedarValue({ amount: 12.5, currency: "EUR", reason: null, admin: true, nested: { x: 1 } }, refund), {
      ok: true,
      value: { amount: dec("12.5"), currency: "EUR" },
    });
    assert.deepEqual(toCedarValue({ amount: 1, currency: "EUR", reason: "late" }, refund), { ok: true, value: { amount: dec("1.0"), currency: "EUR", reason: "late" } });
    assert.deepEqual(toCedarValue({ currency: "EUR" }, refund), { ok: false, reason: "input.amount: required property is missing" });
    assert.deepEqual(toCedarValue({ amount: null, currency: "EUR" }, refund), { ok: false, reason: "input.amount: required property is null" });
    assert.deepEqual(toCedarValue({ amount: 1, currency: "EUR", reason: undefined }, refund), { ok: true, value: { amount: dec("1.0"), currency: "EUR" } });
  });

  it("numbers become decimals exactly, never rounded", () => {
    const cases: [number, string | RegExp][] = [
      [0, "0.0"],
      [-0, "0.0"],
      [7, "7.0"],
      [0.1, "0.1"],
      [-12.34, "-12.34"],
      [1234.5678, "1234.5678"],
      [0.0001, "0.0001"],
      [1.5e-3, "0.0015"],
      [100000000000000, "100000000000000.0"],
      [922337203685477.5, "922337203685477.5"],
      [-922337203685477.5, "-922337203685477.5"],
      [1.23456, /more than 4 fractional digits/],
      [0.00001, /more than 4 fractional digits/],
      [1e-7, /more than 4 fractional digits/],
      [5e-324, /more than 4 fractional digits/],
      [922337203685477.6, /outside Cedar's decimal range/],
      [1e15, /outside Cedar's decimal range/],
      [1e21, /outside Cedar's decimal range/],
      [-1.7976931348623157e308, /outside Cedar's decimal range/],
      [Number.NaN, /expected a finite number/],
      [Number.POSITIVE_INFINITY, /expected a finite number/],
    ];
    for (const [input, expected] of cases) {
      const result = toCedarValue({ x: input }, rec({ x: req(D) }));
      if (typeof expected === "string") assert.deepEqual(result, { ok: true, value: { x: dec(expected) } }, String(input));
      else {
        assert.equal(result.ok, false, String(input));
        if (!result.ok) assert.match(result.reason, new RegExp(`^input\\.x: .*${expected.source}`));
      }
    }
    assert.deepEqual(toCedarValue({ x: "1.0" }, rec({ x: req(D) })), { ok: false, reason: "input.x: expected a number, got a string" });
  });

  it("integers must be safe integers; -0 becomes 0", () => {
    assert.deepEqual(toCedarValue(Number.MAX_SAFE_INTEGER, L), { ok: true, value: Number.MAX_SAFE_INTEGER });
    assert.ok(Object.is((toCedarValue(-0, L) as { value: unknown }).value, 0));
    assert.match((toCedarValue(2 ** 53, L) as { reason: string }).reason, /^input: the integer is outside the safe range/);
    assert.match((toCedarValue(1e300, L) as { reason: string }).reason, /outside the safe range/);
  });

  it("arrays become sets; null elements are refused", () => {
    const tags = { type: "Set", element: S } as const;
    assert.deepEqual(toCedarValue(["a", "a", "b"], tags), { ok: true, value: ["a", "a", "b"] });
    assert.deepEqual(toCedarValue(["a", null], tags), { ok: false, reason: "input[1]: null in a set (Cedar has no null)" });
    assert.deepEqual(toCedarValue([[1.25]], { type: "Set", element: { type: "Set", element: D } }), { ok: true, value: [[dec("1.25")]] });
  });

  it("refuses __entity / __extn / __expr keys in any record, declared or not", () => {
    const type = rec({ filters: req(rec({ from: opt(S) })) });
    for (const key of ["__entity", "__extn", "__expr"]) {
      const nested: unknown = JSON.parse(`{"filters":{"from":"2024","${key}":{"type":"Agents::Workload","id":"admin"}}}`);
      assert.deepEqual(toCedarValue(nested, type), { ok: false, reason: `input.filters: the key "${key}" is not allowed (Cedar would read it as an entity or extension escape)` });
      const top: unknown = JSON.parse(`{"filters":{},"${key}":1}`);
      assert.equal(toCedarValue(top, type).ok, false);
    }
    assert.equal(toCedarValue({ x: {} }, rec({ __entity: opt(S) })).ok, false, "a hand-made type declaring an escape key is refused");
  });

  it("__proto__ keys neither pollute nor leak", () => {
    const before = Object.getOwnPropertyNames(Object.prototype).join();
    const input: unknown = JSON.parse('{"__proto__":{"polluted":true},"a":"x","constructor":{"prototype":{"polluted":true}}}');
    assert.deepEqual(toCedarValue(input, rec({ a: req(S) })), { ok: true, value: { a: "x" } });
    const declared: unknown = JSON.parse('{"__proto__":"p"}');
    const result = toCedarValue(declared, rec({ ["__proto__"]: req(S) }) /* computed key: an own property */);
    assert.equal(result.ok, true);
    if (result.ok) {
      assert.deepEqual(Object.getOwnPropertyDescriptor(result.value, "__proto__")?.value, "p");
      assert.equal(Object.getPrototypeOf(result.value), Object.prototype);
    }
    // An inherited key never satisfies a declared attribute.
    assert.deepEqual(toCedarValue(Object.create({ a: "inherited" }), rec({ a: opt(S) })), { ok: false, reason: "input: expected an object, got a non-plain object" });
    assert.deepEqual(toCedarValue({}, rec({ toString: req(S) })), { ok: false, reason: "input.toString: required property is missing" });
    assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
    assert.equal(Object.getOwnPropertyNames(Object.prototype).join(), before);
  });

  it("strings: at most 64 KiB of UTF-8, no unpaired surrogates", () => {
    assert.equal(toCedarValue("x".repeat(65_536), S).ok, true);
    assert.deepEqual(toCedarValue("x".repeat(65_537), S), { ok: false, reason: "input: the string is longer than 65536 bytes" });
    assert.equal(toCedarValue("é".repeat(32_768), S).ok, true);
    assert.equal(toCedarValue("é".repeat(32_769), S).ok, false, "2 bytes per é");
    assert.equal(toCedarValue("\ud83d\ude00", S).ok, true);
    for (const bad of ["\ud800", "a\udc00b", "\ud83d"]) {
      assert.deepEqual(toCedarValue(bad, S), { ok: false, reason: "input: the string has an unpaired UTF-16 surrogate, which Cedar cannot encode" });
    }
    const many = Array.from({ length: 20 }, () => "y".repeat(60_000));
    assert.match((toCedarValue(many, { type: "Set", element: S }) as { reason: string }).reason, /total more than 1048576 bytes/);
  });

  it("node and depth limits", () => {
    const big = Array.from({ length: 10_000 }, (_, i) => i);
    assert.match((toCedarValue(big, { type: "Set", element: L }) as { reason: string }).reason, /^input: the input holds more than 10000 values/);
    assert.equal(toCedarValue(big.slice(0, 9_999), { type: "Set", element: L }).ok, true);
    const huge = new Array<number>(50_000_000);
    const started = performance.now();
    assert.equal(toCedarValue(huge, { type: "Set", element: L }).ok, false);
    assert.ok(performance.now() - started < 100, "refused before iterating");
    let type: CedarSchemaType = S;
    let value: unknown = "leaf";
    for (let i = 0; i < 40; i += 1) {
      type = { type: "Set", element: type };
      value = [value];
    }
    assert.match((toCedarValue(value, type) as { reason: string }).reason, /nested deeper than 32 levels/);
    assert.equal(toCedarValue(value, type, { maxDepth: 64 }).ok, true);
  });

  it("never throws: cycles, hostile accessors, bad types, bad options", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic["self"] = cyclic;
    const selfType: Record<string, unknown> = { type: "Record", attributes: {} };
    (selfType["attributes"] as Record<string, unknown>)["self"] = { ...selfType, required: false };
    (((selfType["attributes"] as Record<string, unknown>)["self"] as Record<string, unknown>)["attributes"] as Record<string, unknown>)["self"] = selfType;
    assert.deepEqual(toCedarValue(cyclic, selfType as unknown as CedarSchemaType), { ok: false, reason: "input.self: the input contains itself (a cycle)" });
    const arr: unknown[] = [];
    arr.push(arr);
    assert.match((toCedarValue(arr, { type: "Set", element: { type: "Set", element: S } }) as { reason: string }).reason, /cycle/);

    const getter = { get a(): never { throw new Error("boom"); } };
    assert.deepEqual(toCedarValue(getter, rec({ a: req(S) })), { ok: false, reason: "input: the input could not be read (an accessor threw)" });
    const proxy = new Proxy({}, { getPrototypeOf() { throw new Error("trap"); } });
    assert.equal(toCedarValue(proxy, rec({})).ok, false);

    for (const bad of [null, {}, { type: "Entity", name: "X" }, { type: "Extension", name: "ipaddr" }, { type: "Record" }, { type: "Set" }]) {
      assert.equal(toCedarValue({ a: 1 }, bad as unknown as CedarSchemaType).ok, false, JSON.stringify(bad));
    }
    assert.deepEqual(toCedarValue("x", S, { maxNodes: -1 }), { ok: false, reason: "invalid option maxNodes: expected a positive safe integer" });
    assert.equal(toCedarValue("x", S, null as unknown as undefined).ok, true);
  });

  it("does not mutate the input", () => {
    const input = { amount: 5, currency: "EUR", extra: [1, 2] };
    const copy = structuredClone(input);
    toCedarValue(input, refund);
    assert.deepEqual(input, copy);
  });
});

// ------------------------------------------------------------------------------------------------
// Realistic tools: schema, validation, authorization
// ------------------------------------------------------------------------------------------------

const TOOLS = {
  lookup_invoice: obj({ invoiceId: { type: "string" }, includeLines: { type: "boolean" } }, ["invoiceId"]),
  issue_refund: obj({ amount: { type: "number" }, currency: { type: "string", enum: ["USD", "EUR", "GBP"] }, reason: { type: "string" } }, ["amount", "currency"]),
  search_documents: obj(
    {
      query: { type: "string" },
      filters: obj({ from: { type: "string", format: "date" }, tags: { type: "array", items: { type: "string" } } }, ["tags"]),
      limit: { type: "integer" },
    },
    ["query", "filters"],
  ),
};
type ToolName = keyof typeof TOOLS;
const TOOL_NAMES = Object.keys(TOOLS) as ToolName[];

const TYPES = Object.fromEntries(
  TOOL_NAMES.map((name) => {
    const { type, problems } = jsonSchemaToCedarType(TOOLS[name]);
    assert.deepEqual(problems, []);
    return [name, type];
  }),
) as Record<ToolName, CedarSchemaType>;

function schemaFor(types: Record<string, CedarSchemaType>): SchemaJson<string> {
  return {
    Agents: {
      entityTypes: { Workload: {}, Tool: {} },
      actions: Object.fromEntries(
        Object.entries(types).map(([name, type]) => [
          name,
          { appliesTo: { principalTypes: ["Workload"], resourceTypes: ["Tool"], context: { type: "Record", attributes: { input: { ...type, required: true } } } } },
        ]),
      ),
    },
  };
}
const SCHEMA = schemaFor(TYPES);

const POLICIES = `
@id("invoices") permit (principal, action == Agents::Action::"lookup_invoice", resource)
  when { context.input.invoiceId like "INV-*" && !(context.input has includeLines && context.input.includeLines) };
@id("refunds") permit (principal, action == Agents::Action::"issue_refund", resource)
  when { context.input.currency == "EUR" || context.input.currency == "USD" };
@id("refund-cap") forbid (principal, action == Agents::Action::"issue_refund", resource)
  when { context.input.amount.greaterThan(decimal("1000.0")) || (context.input has reason && context.input.reason like "*override*") };
@id("search") permit (principal, action == Agents::Action::"search_documents", resource)
  when { !context.input.filters.tags.contains("confidential") && (if context.input has limit then context.input.limit <= 50 else true) };
@id("search-dates") forbid (principal, action == Agents::Action::"search_documents", resource)
  when { context.input.filters has from && context.input.filters.from like "2019-*" };
`;

function validationErrors(policies: string): string[] {
  const answer = cedar.validate({ schema: SCHEMA, policies: { staticPolicies: policies } });
  assert.equal(answer.type, "success", JSON.stringify(answer));
  return answer.type === "success" ? answer.validationErrors.map((e) => e.error.message) : [];
}

function authorizeRaw(tool: string, value: CedarValueJson, schema: SchemaJson<string> = SCHEMA, policies = POLICIES): AuthorizationAnswer {
  return cedar.isAuthorized({
    principal: { type: "Agents::Workload", id: "agent" },
    action: { type: "Agents::Action", id: tool },
    resource: { type: "Agents::Tool", id: tool },
    context: { input: asWasmValue(value) },
    schema,
    validateRequest: true,
    policies: { staticPolicies: policies },
    entities: [],
  });
}

function decide(tool: ToolName, input: unknown): "allow" | "deny" | string {
  const converted = toCedarValue(input, TYPES[tool]);
  if (!converted.ok) return converted.reason;
  const answer = authorizeRaw(tool, converted.value);
  assert.equal(answer.type, "success", JSON.stringify(answer));
  if (answer.type !== "success") return "failure";
  assert.deepEqual(answer.response.diagnostics.errors, []);
  return answer.response.decision;
}

describe("realistic tools on a Cedar schema", () => {
  it("derives the expected record types", () => {
    assert.deepEqual(TYPES.lookup_invoice, rec({ invoiceId: req(S), includeLines: opt(B) }));
    assert.deepEqual(TYPES.issue_refund, rec({ amount: req(D), currency: req(S), reason: opt(S) }));
    assert.deepEqual(TYPES.search_documents, rec({ query: req(S), filters: req(rec({ from: opt(S), tags: req({ type: "Set", element: S }) })), limit: opt(L) }));
  });

  it("the schema parses", () => {
    assert.deepEqual(cedar.checkParseSchema(SCHEMA), { type: "success" });
  });

  it("policies reading declared input fields validate", () => {
    assert.deepEqual(validationErrors(POLICIES), []);
  });

  it("policies reading misspelled, optional-without-has or mistyped fields fail validation", () => {
    const bad = [
      `permit (principal, action == Agents::Action::"issue_refund", resource) when { context.input.amuont.greaterThan(decimal("1.0")) };`,
      `permit (principal, action == Agents::Action::"search_documents", resource) when { context.input.filters.tag.contains("x") };`,
      `permit (principal, action == Agents::Action::"issue_refund", resource) when { context.input.reason == "x" };`,
      `permit (principal, action == Agents::Action::"issue_refund", resource) when { context.input.amount > 1000 };`,
      `permit (principal, action == Agents::Action::"lookup_invoice", resource) when { context.input.admin == true };`,
    ];
    for (const policy of bad) assert.notDeepEqual(validationErrors(policy), [], policy);
  });

  it("a field the JSON Schema could not represent is not readable by policies", () => {
    const { type, problems } = jsonSchemaToCedarType(obj({ id: { type: "string" }, meta: { anyOf: [{ type: "string" }, { type: "object" }] } }, ["id"]));
    assert.equal(problems.length, 1);
    const schema = schemaFor({ tagged: type });
    const reads = cedar.validate({ schema, policies: { staticPolicies: `permit (principal, action, resource) when { context.input.meta == "x" };` } });
    assert.equal(reads.type === "success" && reads.validationErrors[0]?.error.message, 'for policy `policy0`, attribute `input.meta` in context for Agents::Action::"tagged" not found');
    // Guarded by `has`, the policy validates but Cedar warns it can never apply.
    const guarded = cedar.validate({ schema, policies: { staticPolicies: `permit (principal, action, resource) when { context.input has meta && context.input.meta == "x" };` } });
    assert.match((guarded.type === "success" && guarded.validationWarnings[0]?.error.message) || "", /policy is impossible/);
    const converted = toCedarValue({ id: "1", meta: { __entity: { type: "Agents::Workload", id: "admin" } } }, type);
    assert.deepEqual(converted, { ok: true, value: { id: "1" } }, "the opaque field is dropped, never sent");
  });

  it("decisions with values from toCedarValue", () => {
    assert.equal(decide("lookup_invoice", { invoiceId: "INV-7" }), "allow");
    assert.equal(decide("lookup_invoice", { invoiceId: "INV-7", includeLines: true }), "deny");
    assert.equal(decide("lookup_invoice", { invoiceId: "X-7", includeLines: false }), "deny");
    assert.equal(decide("issue_refund", { amount: 250.5, currency: "EUR" }), "allow");
    assert.equal(decide("issue_refund", { amount: 1000, currency: "USD" }), "allow");
    assert.equal(decide("issue_refund", { amount: 1000.0001, currency: "USD" }), "deny");
    assert.equal(decide("issue_refund", { amount: 1500, currency: "USD" }), "deny");
    assert.equal(decide("issue_refund", { amount: 10, currency: "GBP" }), "deny");
    assert.equal(decide("issue_refund", { amount: 10, currency: "EUR", reason: "manager override" }), "deny");
    assert.equal(decide("issue_refund", { amount: 10, currency: "EUR", reason: null, admin: true, __proto__x: 1 }), "allow");
    assert.equal(decide("issue_refund", { amount: 1000.00001, currency: "USD" }), "input.amount: the number has more than 4 fractional digits, which a Cedar decimal cannot hold (it is not rounded)");
    assert.equal(decide("issue_refund", { amount: "1500", currency: "USD" }), "input.amount: expected a number, got a string");
    assert.equal(decide("search_documents", { query: "q", filters: { tags: [] } }), "allow");
    assert.equal(decide("search_documents", { query: "q", filters: { tags: ["public", "confidential"] } }), "deny");
    assert.equal(decide("search_documents", { query: "q", filters: { tags: ["a"], from: "2019-01-01" }, limit: 10 }), "deny");
    assert.equal(decide("search_documents", { query: "q", filters: { tags: ["a"], from: "2024-01-01" }, limit: 10 }), "allow");
    assert.equal(decide("search_documents", { query: "q", filters: { tags: ["a"] }, limit: 51 }), "deny");
    assert.equal(decide("search_documents", { query: "q", filters: { tags: ["a"] }, limit: 1.5 }), "input.limit: expected an integer, got a number with a fractional part");
  });

  it("odd property names (including __proto__) round-trip through schema, validation and authorization", () => {
    const jsonSchema: unknown = JSON.parse('{"type":"object","properties":{"__proto__":{"type":"string"},"odd-name":{"type":"integer"},"":{"type":"boolean"}},"required":["__proto__","odd-name"]}');
    const { type, problems } = jsonSchemaToCedarType(jsonSchema);
    assert.deepEqual(problems, []);
    const schema = schemaFor({ odd: type });
    assert.deepEqual(cedar.checkParseSchema(schema), { type: "success" });
    const policies = `permit (principal, action, resource) when { context.input["__proto__"] == "p" && context.input["odd-name"] > 2 && !(context.input has "") };`;
    const answer = cedar.validate({ schema, policies: { staticPolicies: policies } });
    assert.deepEqual(answer.type === "success" && answer.validationErrors, []);
    const run = (input: string) => {
      const converted = toCedarValue(JSON.parse(input), type);
      assert.ok(converted.ok, JSON.stringify(converted));
      const result = authorizeRaw("odd", converted.value, schema, policies);
      assert.equal(result.type, "success", JSON.stringify(result));
      return result.type === "success" ? result.response.decision : "failure";
    };
    assert.equal(run('{"__proto__":"p","odd-name":3}'), "allow");
    assert.equal(run('{"__proto__":"p","odd-name":3,"":true}'), "deny");
    assert.equal(run('{"__proto__":"q","odd-name":3}'), "deny");
  });

  it("why __entity is refused: without a schema Cedar reads it as an entity reference", () => {
    const policy = `permit (principal, action, resource) when { context.input.note == Agents::Workload::"admin" };`;
    const smuggled = { note: { __entity: { type: "Agents::Workload", id: "admin" } } };
    const answer = cedar.isAuthorized({
      principal: { type: "Agents::Workload", id: "agent" },
      action: { type: "Agents::Action", id: "x" },
      resource: { type: "Agents::Tool", id: "x" },
      context: { input: smuggled },
      policies: { staticPolicies: policy },
      entities: [],
    });
    assert.equal(answer.type === "success" && answer.response.decision, "allow");
    assert.equal(toCedarValue(smuggled, rec({ note: req(rec({})) })).ok, false);
  });
});

// ------------------------------------------------------------------------------------------------
// Properties
// ------------------------------------------------------------------------------------------------

const SPECIAL_KEYS = ["__proto__", "__entity", "__extn", "__expr", "constructor", "prototype", "toString", "hasOwnProperty", "polluted"];
const DECLARED_KEYS = ["invoiceId", "includeLines", "amount", "currency", "reason", "query", "filters", "from", "tags", "limit"];
const keyArb = fc.oneof(fc.constantFrom(...SPECIAL_KEYS, ...DECLARED_KEYS), fc.string({ maxLength: 6 }));

/** Nested `{"filters": {"filters": ...}}` / `[[...]]`, thousands of levels, no sharing. */
const deepArb = fc.tuple(fc.integer({ min: 1, max: 3_000 }), fc.boolean()).map(([levels, useArrays]) => {
  let value: unknown = "leaf";
  for (let i = 0; i < levels; i += 1) value = useArrays ? [value] : { filters: value };
  return value;
});

const nastyArb: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 4 }), weight: 6 },
  { arbitrary: fc.constantFrom("\ud800", "a\udc00b", "\ud83d\ude00", "", "INV-1", "confidential", "x".repeat(70_000), "é".repeat(40_000)), weight: 2 },
  { arbitrary: fc.oneof(fc.double(), fc.integer().map((n) => n / 100), fc.integer().map((n) => n / 100_000), fc.constantFrom(-0, 2 ** 53, 1e21, 922337203685477.5, 922337203685477.6, 1e-7)), weight: 2 },
  { arbitrary: deepArb, weight: 1 },
  { arbitrary: fc.array(fc.tuple(keyArb, fc.jsonValue({ maxDepth: 2 })), { maxLength: 6 }).map((entries) => Object.fromEntries(entries)), weight: 2 },
);

/** Mostly valid values of `type`, with junk, special keys and extra keys mixed in. */
function nearArb(type: CedarSchemaType): fc.Arbitrary<unknown> {
  const junk = { arbitrary: nastyArb, weight: 1 };
  switch (type.type) {
    case "String":
      return fc.oneof({ arbitrary: fc.oneof(fc.string(), fc.constantFrom("INV-1", "2019-05-01", "manager override", "confidential")), weight: 8 }, junk);
    case "Long":
      return fc.oneof({ arbitrary: fc.oneof(fc.integer({ min: -100, max: 100 }), fc.maxSafeInteger()), weight: 8 }, junk);
    case "Boolean":
      return fc.oneof({ arbitrary: fc.boolean(), weight: 8 }, junk);
    case "Extension":
      return fc.oneof({ arbitrary: fc.oneof(fc.integer({ min: -200_000, max: 200_000 }).map((n) => n / 100), fc.integer({ min: -1e9, max: 1e9 }).map((n) => n / 10_000)), weight: 8 }, junk);
    case "Set":
      return fc.oneof({ arbitrary: fc.array(nearArb(type.element), { maxLength: 5 }), weight: 8 }, junk);
    case "Record": {
      const names = Object.keys(type.attributes);
      const model = Object.fromEntries(names.map((name) => [name, fc.oneof({ arbitrary: nearArb(type.attributes[name] as CedarSchemaType), weight: 10 }, { arbitrary: fc.constant(null), weight: 1 })]));
      const required = names.filter((name) => type.attributes[name]?.required);
      const extras = fc.array(fc.tuple(keyArb, nastyArb), { maxLength: 3 }).map((entries) => Object.fromEntries(entries));
      const valid = fc.tuple(fc.record(model, { requiredKeys: required }), fc.option(extras, { nil: undefined, freq: 3 })).map(([declared, extra]) => ({ ...extra, ...declared }));
      return fc.oneof({ arbitrary: valid, weight: 8 }, junk);
    }
  }
}

/** As JSON.parse would hand it over (undefined dropped, NaN → null, `__proto__` an own key). */
function viaJson(value: unknown): unknown {
  const text = JSON.stringify(value);
  return text === undefined ? undefined : JSON.parse(text);
}

/** `value` has exactly the shape `type` describes: declared keys only, required ones present, no null/float/undefined. */
function assertConforms(value: unknown, type: CedarSchemaType, path: string): void {
  switch (type.type) {
    case "String":
      assert.equal(typeof value, "string", path);
      return;
    case "Long":
      assert.ok(typeof value === "number" && Number.isSafeInteger(value) && !Object.is(value, -0), path);
      return;
    case "Boolean":
      assert.equal(typeof value, "boolean", path);
      return;
    case "Extension": {
      assert.deepEqual(Object.keys(value as object), ["__extn"], path);
      const extn = (value as { __extn: Record<string, unknown> }).__extn;
      assert.deepEqual(Object.keys(extn), ["fn", "arg"], path);
      assert.equal(extn["fn"], "decimal", path);
      assert.match(String(extn["arg"]), /^-?(0|[1-9]\d*)\.\d{1,4}$/, path);
      return;
    }
    case "Set":
      assert.ok(Array.isArray(value), path);
      (value as unknown[]).forEach((item, i) => assertConforms(item, type.element, `${path}[${i}]`));
      return;
    case "Record": {
      assert.ok(typeof value === "object" && value !== null && !Array.isArray(value), path);
      assert.equal(Object.getPrototypeOf(value), Object.prototype, path);
      for (const key of Object.keys(value)) assert.ok(Object.hasOwn(type.attributes, key), `${path}: undeclared key ${key}`);
      for (const [key, attribute] of Object.entries(type.attributes)) {
        if (!Object.hasOwn(value, key)) {
          assert.equal(attribute.required, false, `${path}.${key} missing`);
          continue;
        }
        assertConforms((value as Record<string, unknown>)[key], attribute, `${path}.${key}`);
      }
    }
  }
}

/** The converted value says what the input said: same strings, integers, booleans; decimals equal as numbers. */
function assertFaithful(input: unknown, value: unknown, type: CedarSchemaType): void {
  switch (type.type) {
    case "Extension":
      assert.equal(Number((value as { __extn: { arg: string } }).__extn.arg), input === 0 ? 0 : input);
      return;
    case "Set":
      (value as unknown[]).forEach((item, i) => assertFaithful((input as unknown[])[i], item, type.element));
      return;
    case "Record":
      for (const key of Object.keys(value as object)) {
        assertFaithful((input as Record<string, unknown>)[key], (value as Record<string, unknown>)[key], type.attributes[key] as CedarSchemaType);
      }
      return;
    case "Long":
      assert.equal(value, input === 0 ? 0 : input);
      return;
    default:
      assert.equal(value, input);
  }
}

function checkOne(tool: string, input: unknown, type: CedarSchemaType, schema: SchemaJson<string>, policies: string): boolean {
  const result = toCedarValue(input, type);
  assert.equal(typeof result.ok, "boolean");
  if (!result.ok) {
    assert.equal(typeof result.reason, "string");
    assert.match(result.reason, /^input\b|^invalid option/);
    return false;
  }
  assertConforms(result.value, type, "input");
  assertFaithful(input, result.value, type);
  const answer = authorizeRaw(tool, result.value, schema, policies);
  assert.equal(answer.type, "success", JSON.stringify(answer).slice(0, 500));
  if (answer.type === "success") assert.deepEqual(answer.response.diagnostics.errors, []);
  return true;
}

describe("properties", () => {
  const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).join();

  for (const tool of TOOL_NAMES) {
    it(`${tool}: toCedarValue never throws; every accepted value is exact and Cedar accepts it`, () => {
      let accepted = 0;
      let total = 0;
      fc.assert(
        fc.property(fc.oneof({ arbitrary: nearArb(TYPES[tool]), weight: 4 }, { arbitrary: nastyArb, weight: 1 }), (raw) => {
          for (const input of [raw, viaJson(raw)]) {
            total += 1;
            if (checkOne(tool, input, TYPES[tool], SCHEMA, POLICIES)) accepted += 1;
          }
        }),
        { numRuns: 700 },
      );
      assert.ok(accepted > total / 10, `only ${accepted}/${total} accepted: the generator should exercise the accepted path`);
      assert.ok(accepted < total, "and the refused path");
    });
  }

  it("arbitrary JSON values against each realistic type never throw", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        for (const tool of TOOL_NAMES) checkOne(tool, value, TYPES[tool], SCHEMA, POLICIES);
      }),
      { numRuns: 500 },
    );
  });

  it("any schema: the derived type always makes a schema Cedar parses, and its accepted values are authorized without error", () => {
    const schemaKey = fc.oneof(fc.constantFrom("__proto__", "__entity", "__extn", "a", "odd-name", "", "\ud800"), fc.string({ maxLength: 4 }));
    const { schema: schemaArb } = fc.letrec<{ schema: unknown }>((tie) => ({
      schema: fc.oneof(
        { depthSize: "small" },
        fc.record({ type: fc.constantFrom<unknown>("string", "integer", "number", "boolean", "null", ["string", "null"], ["integer", "number"], ["string", "integer"], "float", 3) }),
        fc.record({ type: fc.constant("array"), items: tie("schema") }, { requiredKeys: ["type"] }),
        fc.record(
          {
            type: fc.constantFrom<unknown>("object", ["object", "null"]),
            properties: fc.array(fc.tuple(schemaKey, tie("schema")), { maxLength: 4 }).map((entries) => Object.fromEntries(entries)),
            required: fc.array(schemaKey, { maxLength: 3 }),
            additionalProperties: fc.boolean(),
          },
          { requiredKeys: ["type"] },
        ),
        fc.record({ enum: fc.array(fc.oneof(fc.string(), fc.integer(), fc.double(), fc.constant(null), fc.boolean()), { minLength: 1, maxLength: 3 }) }),
        fc.record({ const: fc.jsonValue({ maxDepth: 1 }) }),
        fc.record({ oneOf: fc.array(tie("schema"), { maxLength: 2 }) }),
        fc.record({ nullable: fc.boolean(), type: fc.constant("integer") }),
        fc.boolean(),
        fc.jsonValue({ maxDepth: 1 }),
      ),
    }));
    const root = fc.array(fc.tuple(schemaKey, schemaArb), { maxLength: 5 }).map((entries) => ({ type: "object", properties: Object.fromEntries(entries) }));
    fc.assert(
      fc.property(root, fc.nat(), (jsonSchema, seed) => {
        const { type, problems } = jsonSchemaToCedarType(viaJson(jsonSchema));
        assert.ok(Array.isArray(problems) && problems.every((p) => typeof p === "string"));
        assert.equal(type.type, "Record");
        const schema = schemaFor({ tool: type });
        assert.deepEqual(cedar.checkParseSchema(schema), { type: "success" }, JSON.stringify(jsonSchema));
        const [input] = fc.sample(nearArb(type), { seed, numRuns: 1 });
        checkOne("tool", viaJson(input), type, schema, "permit (principal, action, resource);");
      }),
      { numRuns: 400 },
    );
  });

  it("nothing polluted Object.prototype", () => {
    assert.equal(Object.getOwnPropertyNames(Object.prototype).join(), prototypeBefore);
    assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
  });
});
