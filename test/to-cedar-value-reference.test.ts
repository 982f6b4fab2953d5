/**
 * Differential test of `toCedarValue`: the current implementation against a frozen reference copy
 * of the implementation it replaced (below, marked REFERENCE), over generated Cedar types, inputs
 * and options — well-formed, malformed and hostile. Both must return the same result for every
 * case: the same value (keys, key order, prototypes, `-0` vs `0`) or the same refusal reason,
 * word for word; and they must read the input, the type and the options the same way (every
 * proxy trap, in the same order), so that accessors and proxies cannot tell them apart either.
 *
 * toCedarValue turns untrusted model output into Cedar values: an optimization must never accept
 * what the reference refused, nor change a reason that logs and denials carry.
 */
import assert from "node:assert/strict";
import { constants } from "node:buffer";
import { describe, it } from "node:test";
import fc from "fast-check";
import { toCedarValue, type CedarSchemaType, type CedarValueJson, type ToCedarValueOptions, type ToCedarValueResult } from "../src/tools/json-schema-to-cedar.js";

// ================================================================================================
// REFERENCE — a verbatim copy of toCedarValue and the helpers it uses, as they were before the
// fast paths (lazy paths, the decimal fast path, the record builder); only the entry point is
// renamed. Frozen on purpose: do not edit, do not "fix". It defines what toCedarValue must do.
// ================================================================================================

const VALUE_DEFAULTS = { maxNodes: 10_000, maxStringBytes: 65_536, maxTotalStringBytes: 1_048_576, maxDepth: 32 } as const;
/** Keys Cedar's JSON value format gives a meaning of their own (`__expr` is the retired expression escape). */
const RESERVED_KEYS: readonly string[] = ["__entity", "__extn", "__expr"];
const DECIMAL_MAX = 9_223_372_036_854_775_807n; // i64::MAX, in units of 10^-4
const DECIMAL_MIN_MAGNITUDE = 9_223_372_036_854_775_808n; // |i64::MIN|

interface ValueState {
  readonly maxNodes: number;
  readonly maxStringBytes: number;
  readonly maxTotalStringBytes: number;
  readonly maxDepth: number;
  nodes: number;
  stringBytes: number;
  /** Objects and arrays on the current path (a cycle cannot come from JSON.parse, but is refused anyway). */
  readonly ancestors: Set<object>;
  /** Refuse, rather than drop, a property the type does not declare. */
  readonly rejectUndeclared: boolean;
}

class Refusal {
  constructor(readonly reason: string) {}
}

function referenceToCedarValue(input: unknown, type: CedarSchemaType, options: ToCedarValueOptions = {}): ToCedarValueResult {
  let root = "input";
  try {
    const opts: Record<string, unknown> = isPlainObject(options) ? options : {};
    root = rootName(opts["path"]);
    const state: ValueState = {
      maxNodes: limit(opts["maxNodes"], VALUE_DEFAULTS.maxNodes, "maxNodes"),
      maxStringBytes: limit(opts["maxStringBytes"], VALUE_DEFAULTS.maxStringBytes, "maxStringBytes"),
      maxTotalStringBytes: limit(opts["maxTotalStringBytes"], VALUE_DEFAULTS.maxTotalStringBytes, "maxTotalStringBytes"),
      maxDepth: limit(opts["maxDepth"], VALUE_DEFAULTS.maxDepth, "maxDepth"),
      nodes: 0,
      stringBytes: 0,
      ancestors: new Set(),
      rejectUndeclared: opts["undeclared"] === "reject",
    };
    return { ok: true, value: convert(input, type, root, 0, state) };
  } catch (error) {
    if (error instanceof Refusal) return { ok: false, reason: error.reason };
    if (error instanceof TypeError && error.message.startsWith("invalid option ")) return { ok: false, reason: error.message };
    if (error instanceof RangeError) return { ok: false, reason: `${root}: nested too deeply to convert` };
    return { ok: false, reason: `${root}: the input could not be read (an accessor threw)` };
  }
}

function convert(value: unknown, type: unknown, path: string, depth: number, state: ValueState): CedarValueJson {
  if (depth > state.maxDepth) refuse(`${path}: nested deeper than ${state.maxDepth} levels`);
  state.nodes += 1;
  if (state.nodes > state.maxNodes) refuse(`${path}: the input holds more than ${state.maxNodes} values`);
  if (!isPlainObject(type)) refuse(`${path}: the Cedar type is not a type object`);

  const typeName = own(type, "type");
  switch (typeName) {
    case "String":
      if (typeof value !== "string") refuse(`${path}: expected a string, got ${kindOf(value)}`);
      checkString(value, path, state);
      return value;
    case "Long":
      if (typeof value !== "number") refuse(`${path}: expected an integer, got ${kindOf(value)}`);
      if (!Number.isInteger(value)) refuse(`${path}: expected an integer, got ${kindOf(value)}`);
      if (!Number.isSafeInteger(value)) refuse(`${path}: the integer is outside the safe range ±(2^53−1), so it may already have lost precision`);
      return value === 0 ? 0 : value;
    case "Boolean":
      if (typeof value !== "boolean") refuse(`${path}: expected a boolean, got ${kindOf(value)}`);
      return value;
    case "Extension": {
      if (own(type, "name") !== "decimal") refuse(`${path}: only the "decimal" extension type is supported`);
      if (typeof value !== "number") refuse(`${path}: expected a number, got ${kindOf(value)}`);
      const decimal = toDecimal(value);
      if (typeof decimal !== "string") refuse(`${path}: ${decimal.reason}`);
      return { __extn: { fn: "decimal", arg: decimal } };
    }
    case "Set": {
      if (!Array.isArray(value)) refuse(`${path}: expected an array, got ${kindOf(value)}`);
      enter(value, path, state);
      const length = value.length;
      if (length > state.maxNodes - state.nodes) refuse(`${path}: the input holds more than ${state.maxNodes} values`);
      const element = own(type, "element");
      const out: CedarValueJson[] = [];
      for (let i = 0; i < length; i += 1) {
        const item: unknown = value[i];
        const itemPath = `${path}[${i}]`;
        if (item === null || item === undefined) refuse(`${itemPath}: ${item === null ? "null" : "a missing element"} in a set (Cedar has no null)`);
        out.push(convert(item, element, itemPath, depth + 1, state));
      }
      state.ancestors.delete(value);
      return out;
    }
    case "Record": {
      if (!isPlainObject(value)) refuse(`${path}: expected an object, got ${kindOf(value)}`);
      const attributes = own(type, "attributes");
      if (!isPlainObject(attributes)) refuse(`${path}: the Cedar record type has no attributes object`);
      enter(value, path, state);
      for (const key of RESERVED_KEYS) {
        if (Object.hasOwn(value, key)) refuse(`${path}: the key "${key}" is not allowed (Cedar would read it as an entity or extension escape)`);
      }
      if (state.rejectUndeclared) {
        for (const key of Object.keys(value)) {
          if (!Object.hasOwn(attributes, key)) refuse(`${path}: holds a property not declared in the tool's input schema (a key of ${key.length} characters)`);
        }
      }
      const out: [string, CedarValueJson][] = [];
      for (const name of Object.keys(attributes)) {
        const attributePath = `${path}${segment(name)}`;
        if (RESERVED_KEYS.includes(name)) refuse(`${attributePath}: the Cedar type declares the reserved attribute "${name}"`);
        const attribute = own(attributes, name);
        const required = !(isPlainObject(attribute) && own(attribute, "required") === false);
        const item = own(value, name);
        if (item === undefined || item === null) {
          if (required) refuse(`${attributePath}: required property is ${item === null ? "null" : "missing"}`);
          continue;
        }
        out.push([name, convert(item, attribute, attributePath, depth + 1, state)]);
      }
      state.ancestors.delete(value);
      // Object.fromEntries defines own properties: a declared "__proto__" stays a plain key.
      return Object.fromEntries(out);
    }
    default:
      refuse(`${path}: unsupported Cedar type ${typeof typeName === "string" ? JSON.stringify(typeName) : "(no type name)"}`);
  }
}

function enter(value: object, path: string, state: ValueState): void {
  if (state.ancestors.has(value)) refuse(`${path}: the input contains itself (a cycle)`);
  state.ancestors.add(value);
}

function checkString(value: string, path: string, state: ValueState): void {
  // UTF-8 needs at least one byte per UTF-16 unit: a long string is refused before it is scanned.
  if (value.length > state.maxStringBytes) refuse(`${path}: the string is longer than ${state.maxStringBytes} bytes`);
  let bytes = 0;
  for (let i = 0; i < value.length; i += 1) {
    const unit = value.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) refuse(`${path}: the string has an unpaired UTF-16 surrogate, which Cedar cannot encode`);
      bytes += 4;
      i += 1;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      refuse(`${path}: the string has an unpaired UTF-16 surrogate, which Cedar cannot encode`);
    } else bytes += 3;
  }
  if (bytes > state.maxStringBytes) refuse(`${path}: the string is longer than ${state.maxStringBytes} bytes`);
  state.stringBytes += bytes;
  if (state.stringBytes > state.maxTotalStringBytes) refuse(`${path}: the strings of the input total more than ${state.maxTotalStringBytes} bytes`);
}

/**
 * The Cedar `decimal` literal of a number: its shortest round-trip decimal form (ECMAScript
 * `Number::toString`), which must have at most 4 fractional digits and fit Cedar's range.
 */
function toDecimal(value: number): string | { reason: string } {
  if (!Number.isFinite(value)) return { reason: "expected a finite number" };
  const text = String(value === 0 ? 0 : value);
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(text);
  if (match === null) return { reason: "the number has no decimal form" };
  const sign = match[1] ?? "";
  const digits = (match[2] ?? "") + (match[3] ?? "");
  const point = (match[2] ?? "").length + Number(match[4] ?? "0");
  let whole: string;
  let fraction: string;
  if (point <= 0) {
    whole = "0";
    fraction = "0".repeat(-point) + digits;
  } else if (point >= digits.length) {
    if (point > 40) return { reason: "the number is outside Cedar's decimal range (±922337203685477.5807)" };
    whole = digits + "0".repeat(point - digits.length);
    fraction = "";
  } else {
    whole = digits.slice(0, point);
    fraction = digits.slice(point);
  }
  fraction = fraction.replace(/0+$/, "");
  whole = whole.replace(/^0+(?=\d)/, "");
  if (fraction.length > 4) return { reason: "the number has more than 4 fractional digits, which a Cedar decimal cannot hold (it is not rounded)" };
  const scaled = BigInt(whole + fraction.padEnd(4, "0"));
  if (scaled > (sign === "-" ? DECIMAL_MIN_MAGNITUDE : DECIMAL_MAX)) return { reason: "the number is outside Cedar's decimal range (±922337203685477.5807)" };
  return `${sign}${whole}.${fraction === "" ? "0" : fraction}`;
}

function refuse(reason: string): never {
  throw new Refusal(reason);
}

function limit(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`invalid option ${name}: expected a positive safe integer`);
  }
  return value;
}

function rootName(path: unknown): string {
  return typeof path === "string" && path !== "" ? path : "input";
}

/** `.name` for an identifier, `["odd-name"]` otherwise (as a Cedar policy would read it). */
function segment(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`;
}

/** An own property only: inherited (or polluted prototype) keys are never read. */
function own(object: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** What a value is, for a reason; never the value itself (inputs may be confidential). */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "string":
      return "a string";
    case "number":
      if (Number.isInteger(value)) return "an integer";
      return Number.isFinite(value) ? "a number with a fractional part" : "a non-finite number";
    case "boolean":
      return "a boolean";
    case "undefined":
      return "undefined";
    case "object":
      return isPlainObject(value) ? "an object" : "a non-plain object";
    default:
      return `a ${typeof value}`;
  }
}

// ================================================================================================
// End of REFERENCE.
// ================================================================================================

// ------------------------------------------------------------------------------------------------
// Comparing results and the reads that produced them
// ------------------------------------------------------------------------------------------------

/** `actual` and `expected` are the same value: same own keys in the same order, same prototypes and descriptors, `Object.is` for primitives. */
function assertIdentical(actual: unknown, expected: unknown, where = "result"): void {
  if (typeof expected !== "object" || expected === null) {
    if (!Object.is(actual, expected)) assert.fail(`${where}: ${String(actual)} !== ${String(expected)}`);
    return;
  }
  assert.ok(typeof actual === "object" && actual !== null, `${where}: not an object`);
  assert.equal(Array.isArray(actual), Array.isArray(expected), `${where}: array or not`);
  assert.equal(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected), `${where}: prototype`);
  const keys = Reflect.ownKeys(expected);
  assert.deepEqual(Reflect.ownKeys(actual), keys, `${where}: own keys`);
  for (const key of keys) {
    const a: PropertyDescriptor = Object.getOwnPropertyDescriptor(actual, key)!;
    const e: PropertyDescriptor = Object.getOwnPropertyDescriptor(expected, key)!;
    assert.deepEqual([a.writable, a.enumerable, a.configurable, "get" in a], [e.writable, e.enumerable, e.configurable, "get" in e], `${where}[${String(key)}]: descriptor`);
    assertIdentical(a.value, e.value, `${where}[${String(key)}]`);
  }
}

/**
 * A deep stand-in for `root`: every object in it (reached through the proxies) is a Proxy that
 * logs each operation on it. Identity is kept (one proxy per object), so cycles and shared
 * sub-objects stay what they were.
 */
function traced<T>(root: T): { value: T; log: string[] } {
  const log: string[] = [];
  const proxies = new Map<object, object>();
  const ids = new Map<object, number>();
  const wrap = (value: unknown): unknown => {
    if ((typeof value !== "object" && typeof value !== "function") || value === null) return value;
    let proxy = proxies.get(value);
    if (proxy === undefined) {
      const id = ids.size;
      ids.set(value, id);
      const note = (op: string, key?: PropertyKey) => log.push(`${op} #${id}${key === undefined ? "" : ` ${String(key)}`}`);
      proxy = new Proxy(value, {
        getPrototypeOf: (target) => (note("getPrototypeOf"), Reflect.getPrototypeOf(target)),
        getOwnPropertyDescriptor: (target, key) => (note("getOwnPropertyDescriptor", key), Reflect.getOwnPropertyDescriptor(target, key)),
        has: (target, key) => (note("has", key), Reflect.has(target, key)),
        ownKeys: (target) => (note("ownKeys"), Reflect.ownKeys(target)),
        get: (target, key, receiver) => (note("get", key), wrap(Reflect.get(target, key, receiver))),
        set: (target, key, v, receiver) => (note("SET", key), Reflect.set(target, key, v, receiver)),
        defineProperty: (target, key, descriptor) => (note("DEFINE", key), Reflect.defineProperty(target, key, descriptor)),
        deleteProperty: (target, key) => (note("DELETE", key), Reflect.deleteProperty(target, key)),
        setPrototypeOf: (target, proto) => (note("SETPROTOTYPEOF"), Reflect.setPrototypeOf(target, proto)),
        preventExtensions: (target) => (note("PREVENTEXTENSIONS"), Reflect.preventExtensions(target)),
      });
      proxies.set(value, proxy);
    }
    return proxy;
  };
  return { value: wrap(root) as T, log };
}

let compared = 0;
const outcomes = { accepted: 0, refused: new Map<string, number>() };

/** Runs both implementations on the same case, plainly and through tracing proxies, and asserts they agree. */
function same(input: unknown, type: unknown, options?: unknown, trace = true): ToCedarValueResult | undefined {
  const expected = attempt(referenceToCedarValue, input, type, options);
  const actual = attempt(toCedarValue, input, type, options);
  assertIdentical(actual, expected);
  compared += 1;
  if (expected.result?.ok) outcomes.accepted += 1;
  else if (expected.result !== undefined) {
    const kind = expected.result.reason.replace(/\d+/g, "N");
    outcomes.refused.set(kind, (outcomes.refused.get(kind) ?? 0) + 1);
  }

  // The same case once more, every object behind a logging proxy: the same reads, in the same order.
  if (trace) {
    const ref = traced({ input, type, options });
    const cur = traced({ input, type, options });
    const expectedTraced = attempt(referenceToCedarValue, ref.value.input, ref.value.type, ref.value.options);
    const actualTraced = attempt(toCedarValue, cur.value.input, cur.value.type, cur.value.options);
    assertIdentical(actualTraced, expectedTraced, "traced result");
    assert.deepEqual(cur.log, ref.log, "the operations on the input, the type and the options");
    assert.ok(!cur.log.some((entry) => /^[A-Z]/.test(entry)), "nothing written to the input, the type or the options");
  }
  return expected.result;
}

/** A call's result, or what it threw (toCedarValue must not throw, but if the reference ever did, so must the other). */
function attempt(fn: typeof toCedarValue, input: unknown, type: unknown, options: unknown): { result?: ToCedarValueResult; threw?: string } {
  try {
    return { result: options === undefined ? fn(input, type as CedarSchemaType) : fn(input, type as CedarSchemaType, options as ToCedarValueOptions) };
  } catch (error) {
    return { threw: error instanceof Error ? `${error.name}: ${error.message}` : "a non-Error" };
  }
}

// ------------------------------------------------------------------------------------------------
// Generators
// ------------------------------------------------------------------------------------------------

const S = { type: "String" } as const;
const L = { type: "Long" } as const;
const B = { type: "Boolean" } as const;
const D = { type: "Extension", name: "decimal" } as const;

/** The double next to `x` toward +∞ (`up`) or −∞. */
function nextDouble(x: number, up: boolean): number {
  if (Number.isNaN(x) || x === (up ? Infinity : -Infinity)) return x;
  if (x === 0) return up ? Number.MIN_VALUE : -Number.MIN_VALUE;
  const buffer = new DataView(new ArrayBuffer(8));
  buffer.setFloat64(0, x);
  const bits = buffer.getBigUint64(0);
  buffer.setBigUint64(0, (x > 0) === up ? bits + 1n : bits - 1n);
  return buffer.getFloat64(0);
}

/** Doubles within `n` steps of `x`, both ways. */
function around(x: number, n: number): number[] {
  const out = [x];
  for (let i = 0, lo = x, hi = x; i < n; i += 1) {
    lo = nextDouble(lo, false);
    hi = nextDouble(hi, true);
    out.push(lo, hi);
  }
  return out;
}

/** Where the decimal conversion changes its mind: range ends, the 4-digit limit, the exponent forms of Number::toString. */
const DECIMAL_BOUNDARIES = [
  0, 1, 0.1, 0.0001, 0.00001, 0.000001, 0.0000001, 1e-4, 1.5e-7, 5e-324, 1e21, 1e15, 1e20, 2 ** 53, 2 ** 53 + 2, 2 ** 63,
  922337203685477, 922337203685477.5, 922337203685477.5807, 922337203685477.5808, 922337203685478, 922337203685476.9, 9.2233720368547e14,
  0.1 + 0.2, 123.4567, 123.45678, 1234.5678, 99999.9999, 1.0000000000000002, Number.EPSILON, Number.MAX_VALUE, Number.MAX_SAFE_INTEGER,
];

const SPECIAL_NUMBERS = [...DECIMAL_BOUNDARIES.flatMap((x) => [x, -x]), NaN, Infinity, -Infinity];

const numberArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SPECIAL_NUMBERS) },
  { weight: 2, arbitrary: fc.constantFrom(...DECIMAL_BOUNDARIES).chain((x) => fc.tuple(fc.integer({ min: -8, max: 8 }), fc.boolean()).map(([steps, negative]) => {
    let y = negative ? -x : x;
    for (let i = 0; i < Math.abs(steps); i += 1) y = nextDouble(y, steps > 0);
    return y;
  })) },
  { weight: 2, arbitrary: fc.double() },
  { weight: 2, arbitrary: fc.double({ min: -1e16, max: 1e16, noNaN: true }) },
  { weight: 4, arbitrary: fc.tuple(fc.integer({ min: -2_000_000_000, max: 2_000_000_000 }), fc.integer({ min: 0, max: 7 })).map(([n, k]) => n / 10 ** k) },
  { weight: 2, arbitrary: fc.bigInt({ min: -9_300_000_000_000_000_000n, max: 9_300_000_000_000_000_000n }).map((n) => Number(n) / 10_000) },
  { weight: 2, arbitrary: fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }) },
  { weight: 2, arbitrary: fc.integer({ min: -1000, max: 1000 }) },
);

const LONG_NAME = "n".repeat(70);
const KEYS = [
  "a", "b", "amount", "x_1", "_", "A9", "__proto__", "__entity", "__extn", "__expr", "constructor", "toString", "hasOwnProperty", "valueOf",
  "", "odd-name", "0", "1", "with space", 'q"uote', "back\\slash", "\n", "\u0000", "é", "\ud800", "a\udc00", "\ud83d\ude00", "9lives", LONG_NAME, `${LONG_NAME}-`,
];
const keyArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...KEYS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 4 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 3 }) },
);

const STRINGS = ["", "INV-1", "é", "\u0000", "\ud800", "a\udc00b", "\ud83d", "\ud83d\ude00", "\udc00\ud800", "x".repeat(70_000), "é".repeat(40_000), "€".repeat(100), "y".repeat(65_536), "y".repeat(65_537)];
const stringArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...STRINGS) },
  { weight: 3, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }) },
);

class NotPlain {
  readonly a = 1;
}
/** Objects whose accessors or proxy traps throw (or answer oddly). fast-check prints them by their label: reading them would throw. */
const getters = (): unknown[] =>
  [
    { get a() { throw new Error("boom"); }, b: 1, amount: 1 },
    { get a() { throw new RangeError("deep"); } },
    { get a() { throw new TypeError("invalid option forged"); } },
    { get b() { return "from a getter"; }, get a() { return 1.5; } },
    new Proxy({}, { getPrototypeOf() { throw new Error("trap"); } }),
    new Proxy({ a: 1 }, { ownKeys() { throw new Error("trap"); } }),
    new Proxy({ a: 1 }, { getOwnPropertyDescriptor() { throw new Error("trap"); } }),
    new Proxy(["x"], { get(target, key) { if (key === "length") return 3; return Reflect.get(target, key); } }),
  ].map((value, i) => Object.defineProperty(value, fc.toStringMethod, { value: () => `<hostile object ${i}>` }));
const hostileArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.anything({ maxDepth: 2, withBigInt: true, withDate: true, withMap: true, withSet: true, withSparseArray: true, withNullPrototype: true, withBoxedValues: true }) },
  { weight: 2, arbitrary: numberArb },
  { weight: 2, arbitrary: stringArb },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, undefined, true, false, Symbol("s"), 1n, () => 1, new Date(0), new Map(), new NotPlain(), [], {}, Object.create(null)) },
  { weight: 1, arbitrary: fc.constantFrom(...getters()) },
  { weight: 1, arbitrary: fc.constantFrom('{"__proto__":{"a":1}}', '{"__entity":{"type":"T","id":"x"}}', '{"__extn":{"fn":"decimal","arg":"1.0"}}', '{"__expr":1}', '{"a":[null]}', "[1,[2,[3]]]").map((text): unknown => JSON.parse(text)) },
);

/** A Cedar type: mostly well-formed (as jsonSchemaToCedarType derives them, and hand-made ones with reserved names), sometimes not. */
const { type: typeArb } = fc.letrec<{ type: unknown; attribute: unknown }>((tie) => ({
  type: fc.oneof(
    { depthSize: "small", maxDepth: 5 },
    { weight: 4, arbitrary: fc.constantFrom<unknown>(S, L, B, D) },
    { weight: 3, arbitrary: tie("type").map((element) => ({ type: "Set", element })) },
    { weight: 4, arbitrary: fc.array(fc.tuple(keyArb, tie("attribute")), { maxLength: 5 }).map((entries) => ({ type: "Record", attributes: Object.fromEntries(entries) })) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<unknown>(
        null, undefined, 1, "String", [], {}, { type: "Entity", name: "X" }, { type: "Extension", name: "ipaddr" }, { type: "Extension" }, { type: "Record" },
        { type: "Record", attributes: [] }, { type: "Record", attributes: null }, { type: "Record", attributes: new NotPlain() }, { type: "Set" },
        Object.create(S) as unknown, Object.assign(Object.create(null) as object, S), { type: ["String"] }, { type: "string" },
      ),
    },
  ),
  attribute: fc.tuple(tie("type"), fc.constantFrom<unknown>(true, false, undefined, "no", 0, null)).map(([type, required]) =>
    typeof type === "object" && type !== null && !Array.isArray(type) && Object.getPrototypeOf(type) === Object.prototype
      ? required === undefined ? { ...type } : { ...type, required }
      : type,
  ),
}));

/** Mostly values of `type` (with nulls, missing and extra keys, junk), to reach deep into the conversion. */
function nearArb(type: unknown, depth = 0): fc.Arbitrary<unknown> {
  const junk = { weight: 1, arbitrary: hostileArb };
  const t = typeof type === "object" && type !== null ? (type as Record<string, unknown>) : {};
  const name = Object.hasOwn(t, "type") ? t["type"] : undefined;
  if (depth > 6) return hostileArb;
  switch (name) {
    case "String":
      return fc.oneof({ weight: 6, arbitrary: stringArb }, junk);
    case "Long":
      return fc.oneof({ weight: 6, arbitrary: fc.oneof(fc.integer({ min: -100, max: 100 }), numberArb) }, junk);
    case "Boolean":
      return fc.oneof({ weight: 6, arbitrary: fc.boolean() }, junk);
    case "Extension":
      return fc.oneof({ weight: 6, arbitrary: numberArb }, junk);
    case "Set": {
      const element = nearArb(t["element"], depth + 1);
      const items = fc.oneof({ weight: 12, arbitrary: element }, { weight: 1, arbitrary: fc.constantFrom(null, undefined) });
      const sparse = fc.tuple(fc.array(element, { maxLength: 3 }), fc.nat(4)).map(([values, hole]) => {
        const array = [...values];
        array[values.length + hole] = values[0] ?? "x";
        return array;
      });
      return fc.oneof({ weight: 8, arbitrary: fc.array(items, { maxLength: 6 }) }, { weight: 1, arbitrary: sparse }, junk);
    }
    case "Record": {
      const attributes = typeof t["attributes"] === "object" && t["attributes"] !== null ? (t["attributes"] as Record<string, unknown>) : {};
      // A reserved name is mostly left out of the input: a type declaring one must be refused for that alone.
      const declared = Object.keys(attributes).map((key) =>
        fc.oneof(
          { weight: RESERVED_KEYS.includes(key) ? 1 : 10, arbitrary: nearArb(attributes[key], depth + 1).map((value) => [[key, value]]) },
          { weight: RESERVED_KEYS.includes(key) ? 6 : 1, arbitrary: fc.constantFrom([[key, null]], [[key, undefined]], []) },
        ),
      );
      const extras = fc.array(fc.tuple(keyArb, hostileArb), { maxLength: 3 });
      const entries = fc.tuple(fc.tuple(...declared), extras).map(([d, e]) => [...(d as [string, unknown][][]).flat(), ...e]);
      const record = entries.chain((list) => fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length })).map((list) => Object.fromEntries(list));
      return fc.oneof({ weight: 8, arbitrary: record }, junk);
    }
    default:
      return fc.oneof(hostileArb, fc.constantFrom({ a: 1 }, [1], "x", 1.5));
  }
}

/** Options: mostly none or small limits (so that every limit is hit), sometimes invalid or hostile. */
const limitArb = (small: number, normal: number) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 1, max: small }) },
    { weight: 2, arbitrary: fc.constant(normal) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(0, -1, 1.5, "3", NaN, 2 ** 53, null, Infinity) },
  );
const optionsArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  {
    weight: 6,
    arbitrary: fc.record(
      {
        maxNodes: limitArb(40, 10_000),
        maxStringBytes: limitArb(80, 65_536),
        maxTotalStringBytes: limitArb(200, 1_048_576),
        maxDepth: limitArb(6, 32),
        path: fc.constantFrom<unknown>("input", "args", "", "a.b", 'odd "root"', "\ud800", 5, null),
        undeclared: fc.constantFrom<unknown>("reject", "drop", "REJECT", true),
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, [], "x", new Date(0), new NotPlain(), Object.assign(Object.create(null) as object, { maxNodes: 2, undeclared: "reject" }), { get maxNodes() { throw new Error("boom"); } }) },
);

/** Replaces one value inside `root` with one of its ancestors (a cycle) or with another object of it (a shared sub-object, no cycle). */
function rewire(root: unknown, pick: number, toAncestor: boolean): unknown {
  const copy = structuredCloneLoose(root);
  const sites: { parent: Record<string, unknown>; key: string; ancestors: object[] }[] = [];
  const objects: object[] = [];
  const walk = (value: unknown, ancestors: object[]) => {
    if (typeof value !== "object" || value === null || ancestors.includes(value) || sites.length > 200) return;
    objects.push(value);
    const chain = [...ancestors, value];
    let descriptors: Record<string, PropertyDescriptor>;
    try {
      descriptors = Object.getOwnPropertyDescriptors(value);
    } catch {
      return; // a hostile proxy
    }
    for (const [key, descriptor] of Object.entries(descriptors)) {
      if (!descriptor.enumerable || !descriptor.writable || !("value" in descriptor)) continue; // never run a getter here
      sites.push({ parent: value as Record<string, unknown>, key, ancestors: chain });
      walk(descriptor.value, chain);
    }
  };
  walk(copy, []);
  const site = sites[pick % Math.max(sites.length, 1)];
  if (site === undefined) return copy;
  const pool = toAncestor ? site.ancestors : objects;
  site.parent[site.key] = pool[pick % pool.length];
  return copy;
}

/** A copy of plain objects and arrays (own enumerable keys, `__proto__` kept as a key); anything else as is. */
function structuredCloneLoose(value: unknown): unknown {
  if (typeof value !== "object" || value === null || (Array.isArray(value) ? false : Object.getPrototypeOf(value) !== Object.prototype)) return value;
  const descriptors = Object.getOwnPropertyDescriptors(value);
  if (Object.values(descriptors).some((d) => d.get !== undefined || d.set !== undefined)) return value;
  if (Array.isArray(value)) return Array.from(value, structuredCloneLoose);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, structuredCloneLoose(v)]));
}

/** As JSON.parse hands it over: what a tool input really is. */
function viaJson(value: unknown): unknown {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? undefined : JSON.parse(text);
  } catch {
    return value;
  }
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

describe("toCedarValue agrees with the reference implementation", () => {
  it("generated types, inputs and options (well-formed, malformed and hostile)", () => {
    const caseArb = typeArb.chain((type) =>
      fc.record({
        type: fc.constant(type),
        input: fc.oneof({ weight: 6, arbitrary: nearArb(type) }, { weight: 1, arbitrary: hostileArb }),
        options: optionsArb,
        shape: fc.constantFrom("as generated", "via JSON", "cycle", "shared"),
        pick: fc.nat(),
      }),
    );
    fc.assert(
      fc.property(caseArb, ({ type, input, options, shape, pick }) => {
        let value = input;
        try {
          value = shape === "via JSON" ? viaJson(input) : shape === "cycle" ? rewire(input, pick, true) : shape === "shared" ? rewire(input, pick, false) : input;
        } catch {
          // a hostile proxy refused to be copied: use it as it is
        }
        same(value, type, options);
      }),
      { numRuns: 10_000 },
    );
  });

  it("the realistic refund tool, with and without undeclared: reject", () => {
    const line = { type: "Record", attributes: { sku: { ...S, required: true }, description: { ...S, required: true }, quantity: { ...L, required: true }, unitPrice: { ...D, required: true } } };
    const refund = {
      type: "Record",
      attributes: {
        invoiceId: { ...S, required: true },
        amount: { ...D, required: true },
        currency: { ...S, required: false },
        reason: { ...S, required: false },
        lines: { type: "Set", element: line, required: false },
      },
    };
    fc.assert(
      fc.property(nearArb(refund), fc.constantFrom<unknown>(undefined, { undeclared: "reject" }, { undeclared: "reject", maxNodes: 20 }, { maxDepth: 1 }), fc.boolean(), (input, options, json) => {
        same(json ? viaJson(input) : input, refund, options);
      }),
      { numRuns: 3_000 },
    );
  });

  it("deep nesting against the depth limit", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 80 }), fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }), fc.boolean(), fc.constantFrom("a", "odd-name", "__proto__"), (typeLevels, valueLevels, maxDepth, sets, key) => {
        let type: unknown = S;
        for (let i = 0; i < typeLevels; i += 1) type = sets ? { type: "Set", element: type } : { type: "Record", attributes: Object.fromEntries([[key, { ...(type as object), required: true }]]) };
        let value: unknown = "leaf";
        for (let i = 0; i < valueLevels; i += 1) value = sets ? [value] : Object.fromEntries([[key, value]]);
        same(value, type, maxDepth === undefined ? undefined : { maxDepth });
      }),
      { numRuns: 500 },
    );
  });

  it("decimals: every boundary and the doubles around it, and dense sweeps of short decimals", () => {
    const numbers = new Set<number>();
    for (const x of [...DECIMAL_BOUNDARIES, 1e-5, 1e-6, 1e-7, 0.5, 9.9999]) for (const y of around(x, 64)) numbers.add(y).add(-y);
    // Every double from 922,337,203,685,470 to 922,337,203,685,480 (a step of 1/8 there).
    for (let x = 922337203685470; x <= 922337203685480; x = nextDouble(x, true)) numbers.add(x).add(-x);
    for (let k = 0; k <= 7; k += 1) for (let n = -12_000; n <= 12_000; n += 1) numbers.add(n / 10 ** k);
    for (let n = 0; n < 20_000; n += 1) numbers.add((n * 7919) / 3 + 0.25);
    for (const x of numbers) {
      same(x, D, undefined, false);
      same(x, L, undefined, false);
    }
    assert.ok(numbers.size > 150_000, `${numbers.size} numbers`);
  });

  it("hostile accessors and proxies, reserved names, cycles: fixed cases", () => {
    const rec = (attributes: Record<string, unknown>) => ({ type: "Record", attributes });
    const types: unknown[] = [
      S, D, { type: "Set", element: S }, { type: "Set", element: D },
      rec({ a: { ...S, required: true } }), rec({ a: { ...D, required: false }, b: { ...S, required: false } }), rec({ amount: { ...D, required: true }, a: { ...L, required: false } }),
      rec({ x: { ...S, required: false }, __entity: { ...S, required: false } }), rec(Object.fromEntries([["__proto__", { ...S, required: true }]])),
    ];
    const self: Record<string, unknown> = { b: "x" };
    self["a"] = self;
    const selfType: Record<string, unknown> = { type: "Record", attributes: {} };
    (selfType["attributes"] as Record<string, unknown>)["a"] = selfType;
    const inputs: unknown[] = [...getters(), self, {}, { x: "1" }, JSON.parse('{"__proto__":"p","a":"q"}'), Object.create({ a: "inherited" })];
    for (const input of inputs) {
      for (const type of [...types, selfType]) {
        for (const options of [undefined, { undeclared: "reject" }, { path: "args", maxNodes: 1 }]) same(input, type, options);
      }
    }
  });

  it("paths longer than the longest string: refused where building them eagerly threw", () => {
    // The reference built every node's path string; past the engine's longest string that threw
    // a RangeError, refused (or, when even the reason could not be built, thrown). A root name
    // a few characters short of that length (a rope of one 1 MiB chunk: no memory, never read)
    // and short keys below it reach the limit cheaply.
    const max = constants.MAX_STRING_LENGTH;
    const chunk = "r".repeat(2 ** 20);
    let root = "";
    while (root.length + chunk.length <= max - 8) root += chunk;
    root += chunk.slice(0, max - 8 - root.length);
    const sets = (levels: number, leaf: unknown): unknown => (levels === 0 ? leaf : { type: "Set", element: sets(levels - 1, leaf) });
    const nested = (levels: number, leaf: unknown): unknown => (levels === 0 ? leaf : [nested(levels - 1, leaf)]);
    // root.a is max−6 long, root.a[0][0] max: accepted; root.a[0][0][0] cannot be named.
    const type = (levels: number) => ({ type: "Record", attributes: { a: { ...(sets(levels, S) as object), required: true } } });
    assert.deepEqual(same({ a: nested(2, "x") }, type(2), { path: root }, false), { ok: true, value: { a: [["x"]] } });
    assert.equal(same({ a: nested(3, "x") }, type(3), { path: root }, false), undefined, "the reason cannot be built either: both threw");
    // Records: root.a.bb is max−3 long, root.a.bb.cc max.
    const records = (names: string[]): unknown =>
      names.length === 0 ? S : { type: "Record", attributes: { [names[0]!]: { ...(records(names.slice(1)) as object), required: true } } };
    const value = (names: string[]): unknown => (names.length === 0 ? "x" : { [names[0]!]: value(names.slice(1)) });
    assert.equal(same(value(["a", "bb", "cc"]), records(["a", "bb", "cc"]), { path: root }, false)?.ok, true);
    assert.equal(same(value(["a", "bb", "cc", "d"]), records(["a", "bb", "cc", "d"]), { path: root }, false), undefined);

    // Attribute names of megabytes put paths over the check (never near the limit): joined for every node below, each name's segment once.
    for (const name of ["m".repeat(3_000_000), `-${"m".repeat(3_000_000)}`]) {
      const type = records([name, "x", name]);
      const line = { type: "Record", attributes: { [name]: { ...(records(["x"]) as object), required: true }, n: { ...L, required: true } } };
      const many = { type: "Record", attributes: { [name]: { type: "Set", element: line, required: true } } };
      const lines = Array.from({ length: 40 }, (_, i) => ({ [name]: { x: `line ${i}` }, n: i }));
      assert.equal(same(value([name, "x", name]), type, undefined, false)?.ok, true);
      assert.equal(same({ [name]: lines }, many, undefined, false)?.ok, true);
      assert.equal(same({ [name]: [...lines, { [name]: { x: 1 }, n: 0 }] }, many, undefined, false)?.ok, false);
    }
  });

  it("covered both outcomes and every kind of refusal", (t) => {
    // Runs after the others (node:test runs a suite's tests in order).
    assert.ok(compared > 100_000, `${compared} cases`);
    assert.ok(outcomes.accepted > compared / 20, `${outcomes.accepted} of ${compared} accepted`);
    const kinds = [...outcomes.refused.keys()].join("\n");
    t.diagnostic(`${compared} cases compared: ${outcomes.accepted} accepted, ${compared - outcomes.accepted} refused (${outcomes.refused.size} distinct reasons)`);
    for (const expected of [
      /expected a string/, /expected an integer/, /expected a boolean/, /expected a number/, /expected an array/, /expected an object/,
      /outside the safe range/, /finite number/, /more than N fractional digits/, /outside Cedar's decimal range/,
      /required property is null/, /required property is missing/, /null in a set/, /a missing element in a set/,
      /is not allowed \(Cedar would read it/, /not declared in the tool's input schema/, /declares the reserved attribute/,
      /unpaired UTF-N surrogate/, /string is longer than/, /total more than/, /holds more than N values/, /nested deeper than/,
      /contains itself \(a cycle\)/, /could not be read/, /nested too deeply to convert/, /invalid option/,
      /not a type object/, /only the "decimal" extension/, /unsupported Cedar type/, /has no attributes object/,
    ]) {
      assert.match(kinds, expected, `no case was refused with ${expected}`);
    }
  });
});
