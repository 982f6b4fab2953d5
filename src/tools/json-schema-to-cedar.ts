/**
 * From a tool's JSON Schema (Bedrock Converse `toolSpec.inputSchema.json`, the draft 2020-12 /
 * draft-07 subset that tool schemas use) to a Cedar type, and from the model's actual tool input
 * to a Cedar value of exactly that type.
 *
 * bedrock-warden puts a tool call's input into the Cedar context as `context.input`. Policies are
 * validated against the type {@link jsonSchemaToCedarType} derives (so `context.input.amuont` is a
 * validation error, not a silent `false`), and {@link toCedarValue} turns the untrusted input into
 * a value that matches the type, or refuses it with a reason. The two functions are pure: no I/O,
 * no cedar-wasm calls, no mutation of their arguments, and every object they return is new.
 *
 * ## Mapping (JSON Schema → Cedar type → value accepted by {@link toCedarValue})
 *
 * | JSON Schema                                   | Cedar type                      | input value accepted → value sent                       |
 * |-----------------------------------------------|---------------------------------|---------------------------------------------------------|
 * | `type: "object"` + `properties`               | `Record` (declared properties)  | plain object → record with the declared keys only       |
 * | property listed in `required`                 | attribute `required: true`      | must be present and not `null`                          |
 * | property not in `required`                    | attribute `required: false`     | absent or `null` → omitted                              |
 * | `type: "object"`, `properties: {}` or `additionalProperties: false` without `properties` | empty `Record` | any plain object → `{}` |
 * | `type: "string"` (any `format`, incl. `date-time`, `date`) | `String`           | string (≤ 64 KiB UTF-8, no lone surrogates) → same      |
 * | `type: "integer"`                             | `Long`                          | safe integer (\|n\| ≤ 2^53−1) → same (`-0` → `0`)        |
 * | `type: "number"`                              | `decimal` extension             | finite number with ≤ 4 fractional digits in range → `{ "__extn": { "fn": "decimal", "arg": "12.5" } }` |
 * | `type: "boolean"`                             | `Boolean`                       | boolean → same                                          |
 * | `type: "array"` + `items: <schema>`           | `Set` of the item type          | array → array (Cedar set: order and duplicates are lost) |
 * | `enum` without `type`                         | type of the values (strings → `String`, safe integers → `Long`, numbers → `decimal`, booleans → `Boolean`) | as for that type (enum membership is NOT checked) |
 * | `const` without `type`                        | type of the value               | as for that type (the constant is NOT checked)          |
 * | `type: [T, "null"]`, `nullable: true`, `null` in `enum` | `T`; as a property `required: false` | `null` → omitted (in a set: refused)        |
 * | `type: ["integer", "number"]`                 | `decimal` (integers ⊂ numbers)  | as for `number`                                         |
 * | no `type` but `properties`                    | `Record` (treated as `type: "object"`) | plain object (anything else is refused)          |
 *
 * Not representable — the node becomes **opaque**: it is left out of its record type (so a policy
 * that reads it fails validation) and {@link toCedarValue} drops it (it is never sent). A problem
 * string names the path (in the same `input.a.b[*]` notation policies use) and what was done:
 * `oneOf`, `anyOf`, `allOf`, `not`, `if`/`then`/`else`, `$ref`, `$dynamicRef`, `$recursiveRef`,
 * `patternProperties`, `dependentSchemas`, `dependencies`, `unevaluatedProperties`,
 * `unevaluatedItems`, `prefixItems`, `additionalItems`, `contains`, `propertyNames`; tuples
 * (`items: [...]`); arrays without `items` (mixed types); objects without `properties` (maps);
 * mixed `type` lists; `type: "null"`; boolean schemas (`true`/`false`); enums/consts of mixed
 * kinds, objects, arrays or numbers a Cedar `decimal` cannot hold; arrays whose items are not
 * representable; property names `__entity`, `__extn`, `__expr` (Cedar's JSON escapes — a value
 * under such a key could be read as an entity reference or an extension value) and names with
 * unpaired UTF-16 surrogates (cedar-wasm throws on them); nodes past the depth, property-count
 * or node-count limits. If the root itself is not representable, the result is an empty record
 * (nothing readable, nothing sent) and a problem says so.
 *
 * Ignored on purpose (they only narrow the set of valid values; the type stays sound):
 * `additionalProperties` when `properties` is present (undeclared keys are dropped by
 * {@link toCedarValue}, never sent), `format`, `pattern`, `minimum`/`maximum`, `multipleOf`,
 * `minLength`/`maxLength`, `minItems`/`maxItems`, `uniqueItems`, `enum`/`const` when `type` is
 * present, annotations (`title`, `description`, `default`, `examples`, `$comment`), `$schema`,
 * `$id`, `$defs`/`definitions`, and unknown keywords. {@link toCedarValue} checks the SHAPE of
 * the input, not these constraints: validating the input against the JSON Schema is a separate
 * step, and policies must not assume, say, that `currency` is one of the enum values.
 *
 * Record keys need not be Cedar identifiers: a property `odd-name` is read as
 * `context.input["odd-name"]`, and one that is not required with `context.input has "odd-name"`.
 * @module
 */

/** The Cedar JSON-schema-format types this module produces: a structural subset of cedar-wasm's `Type<string>`. */
export type CedarSchemaType =
  | { type: "String" }
  | { type: "Long" }
  | { type: "Boolean" }
  | { type: "Extension"; name: "decimal" }
  | { type: "Set"; element: CedarSchemaType }
  | CedarRecordType;

/** A Cedar record type. `attributes` may hold any string key (including an own `__proto__`). */
export interface CedarRecordType {
  type: "Record";
  attributes: Record<string, CedarAttributeType>;
}

/** A record attribute: a type plus whether it must be present (Cedar's default, when absent, is `true`). */
export type CedarAttributeType = CedarSchemaType & { required: boolean };

/** A Cedar `decimal` value in Cedar's JSON format (an extension escape). */
export interface CedarDecimalValue {
  __extn: { fn: "decimal"; arg: string };
}

/**
 * A Cedar value in Cedar's JSON format, as produced by {@link toCedarValue}: no `null`, no
 * `undefined`, no floats, no entity references. A structural subset of cedar-wasm's `CedarValueJson`.
 */
export type CedarValueJson = string | number | boolean | CedarDecimalValue | CedarValueJson[] | { [key: string]: CedarValueJson };

/** Limits for {@link jsonSchemaToCedarType}. Each must be a positive safe integer. */
export interface JsonSchemaToCedarOptions {
  /** Object/array levels below the root that are mapped; deeper nodes are opaque. Default 16. */
  maxDepth?: number;
  /** Properties an object schema may declare; an object with more is opaque. Default 256. */
  maxProperties?: number;
  /** Schema nodes visited in total; nodes past the budget are opaque. Default 10,000. */
  maxNodes?: number;
  /** Name of the root in problem paths. Default `"input"` (as in `context.input`). */
  path?: string;
}

/** The result of {@link jsonSchemaToCedarType}. */
export interface JsonSchemaToCedarResult {
  type: CedarSchemaType;
  /** One line per construct that could not be mapped exactly: `"<path>: <what>; <what was done>"`. At most 101 lines. */
  problems: string[];
}

/** Limits for {@link toCedarValue}. Each must be a positive safe integer. */
export interface ToCedarValueOptions {
  /** Values (records, sets and scalars) the result may hold. Default 10,000. */
  maxNodes?: number;
  /** UTF-8 bytes of a single string. Default 65,536 (64 KiB). */
  maxStringBytes?: number;
  /** UTF-8 bytes of all strings together. Default 1,048,576 (1 MiB). */
  maxTotalStringBytes?: number;
  /** Nesting levels below the root. Default 32 (a type derived with the default options has at most 16). */
  maxDepth?: number;
  /** Name of the root in reasons. Default `"input"`. */
  path?: string;
  /**
   * What to do with a property the type does not declare: `"drop"` it (default; it is never sent)
   * or `"reject"` the input, so that nothing the policies cannot see goes with an allowed call.
   */
  undeclared?: "drop" | "reject";
}

/** The result of {@link toCedarValue}. */
export type ToCedarValueResult = { ok: true; value: CedarValueJson } | { ok: false; reason: string };

const SCHEMA_DEFAULTS = { maxDepth: 16, maxProperties: 256, maxNodes: 10_000 } as const;
const VALUE_DEFAULTS = { maxNodes: 10_000, maxStringBytes: 65_536, maxTotalStringBytes: 1_048_576, maxDepth: 32 } as const;
const MAX_PROBLEMS = 100;

/** Keys Cedar's JSON value format gives a meaning of their own (`__expr` is the retired expression escape). */
const RESERVED_KEYS: readonly string[] = ["__entity", "__extn", "__expr"];

/** Keywords whose meaning this mapping does not model: a node using any of them is opaque. */
const UNSUPPORTED_KEYWORDS: readonly string[] = [
  "oneOf", "anyOf", "allOf", "not", "if", "then", "else", "$ref", "$dynamicRef", "$recursiveRef",
  "patternProperties", "dependentSchemas", "dependencies", "unevaluatedProperties", "unevaluatedItems",
  "prefixItems", "additionalItems", "contains", "propertyNames",
];

const JSON_TYPES = new Set(["object", "array", "string", "integer", "number", "boolean", "null"]);

const DECIMAL_MAX = 9_223_372_036_854_775_807n; // i64::MAX, in units of 10^-4
const DECIMAL_MIN_MAGNITUDE = 9_223_372_036_854_775_808n; // |i64::MIN|

// ---------------------------------------------------------------------------------------------
// JSON Schema → Cedar type
// ---------------------------------------------------------------------------------------------

interface SchemaState {
  readonly maxDepth: number;
  readonly maxProperties: number;
  readonly maxNodes: number;
  nodes: number;
  readonly problems: string[];
  dropped: number;
  /** Schema objects on the current path, to report a cycle instead of walking it. */
  readonly ancestors: Set<object>;
}

type Mapped = { ok: true; type: CedarSchemaType; nullable: boolean } | { ok: false; reason: string };

/**
 * Derives the Cedar type of a tool input from its JSON Schema. See the module documentation for
 * the mapping. Never throws for any `schema` (cyclic, hostile getters, anything): what it cannot
 * map becomes a problem. Throws `TypeError` only when `options` holds a limit that is not a
 * positive safe integer (a programming error).
 *
 * For `context.input` the root should be an object schema: the result is then a `Record`. A root
 * of another representable type maps to that type; an unrepresentable root maps to an empty record.
 */
export function jsonSchemaToCedarType(schema: unknown, options: JsonSchemaToCedarOptions = {}): JsonSchemaToCedarResult {
  const root = rootName(options.path);
  const state: SchemaState = {
    maxDepth: limit(options.maxDepth, SCHEMA_DEFAULTS.maxDepth, "maxDepth"),
    maxProperties: limit(options.maxProperties, SCHEMA_DEFAULTS.maxProperties, "maxProperties"),
    maxNodes: limit(options.maxNodes, SCHEMA_DEFAULTS.maxNodes, "maxNodes"),
    nodes: 0,
    problems: [],
    dropped: 0,
    ancestors: new Set(),
  };
  let type: CedarSchemaType;
  try {
    const mapped = mapSchema(schema, root, 0, state);
    if (mapped.ok) {
      type = mapped.type;
    } else {
      problem(state, `${root}: ${mapped.reason}; the root is represented as an empty record (nothing readable, nothing sent)`);
      type = emptyRecord();
    }
  } catch {
    // Only hostile inputs get here (a throwing getter or proxy trap, or a stack overflow under a
    // very large configured maxDepth): nothing of the schema is trusted.
    problem(state, `${root}: the schema could not be read (an accessor threw, or it nests too deeply for the configured limits); the root is represented as an empty record (nothing readable, nothing sent)`);
    type = emptyRecord();
  }
  const problems = state.problems;
  if (state.dropped > 0) problems.push(`... and ${state.dropped} more problems`);
  return { type, problems };
}

function mapSchema(schema: unknown, path: string, depth: number, state: SchemaState): Mapped {
  state.nodes += 1;
  if (state.nodes > state.maxNodes) return { ok: false, reason: `the schema has more than ${state.maxNodes} nodes` };
  if (depth > state.maxDepth) return { ok: false, reason: `nested deeper than ${state.maxDepth} levels` };
  if (schema === true) return { ok: false, reason: "the schema `true` accepts any value, which Cedar cannot type" };
  if (schema === false) return { ok: false, reason: "the schema `false` accepts no value" };
  if (!isPlainObject(schema)) return { ok: false, reason: `not a schema object (${kindOf(schema)})` };
  if (state.ancestors.has(schema)) return { ok: false, reason: "the schema object contains itself (a cycle)" };

  const unsupported = UNSUPPORTED_KEYWORDS.filter((keyword) => Object.hasOwn(schema, keyword));
  if (unsupported.length > 0) return { ok: false, reason: `${unsupported.map((k) => `"${k}"`).join(", ")} ${unsupported.length === 1 ? "is" : "are"} not supported` };

  const base = baseType(schema);
  if (!base.ok) return base;
  const nullable = base.nullable || own(schema, "nullable") === true;

  switch (base.name) {
    case "string":
      return { ok: true, type: { type: "String" }, nullable };
    case "integer":
      return { ok: true, type: { type: "Long" }, nullable };
    case "number":
      return { ok: true, type: { type: "Extension", name: "decimal" }, nullable };
    case "boolean":
      return { ok: true, type: { type: "Boolean" }, nullable };
    case "array": {
      state.ancestors.add(schema);
      try {
        return mapArray(schema, path, depth, state, nullable);
      } finally {
        state.ancestors.delete(schema);
      }
    }
    case "object": {
      state.ancestors.add(schema);
      try {
        return mapObject(schema, path, depth, state, nullable);
      } finally {
        state.ancestors.delete(schema);
      }
    }
  }
}

type BaseName = "string" | "integer" | "number" | "boolean" | "array" | "object";
type Base = { ok: true; name: BaseName; nullable: boolean } | { ok: false; reason: string };

/** The one non-null JSON type a schema node stands for, from `type`, else `enum`/`const`, else `properties`. */
function baseType(schema: Record<string, unknown>): Base {
  if (Object.hasOwn(schema, "type")) {
    const declared = own(schema, "type");
    const names = typeof declared === "string" ? [declared] : Array.isArray(declared) ? declared : undefined;
    if (names === undefined || names.length === 0 || !names.every((n): n is string => typeof n === "string")) {
      return { ok: false, reason: '"type" is not a type name or a non-empty list of type names' };
    }
    const unknown = names.filter((n) => !JSON_TYPES.has(n));
    if (unknown.length > 0) return { ok: false, reason: `unknown type ${unknown.map((n) => JSON.stringify(n)).join(", ")}` };
    const set = new Set(names);
    const nullable = set.delete("null");
    if (set.has("number")) set.delete("integer");
    if (set.size === 0) return { ok: false, reason: 'type "null" alone: Cedar has no null' };
    if (set.size > 1) return { ok: false, reason: `mixed types ${[...set].map((n) => JSON.stringify(n)).join(", ")}: a Cedar value has one type` };
    return { ok: true, name: [...set][0] as BaseName, nullable };
  }
  if (Object.hasOwn(schema, "enum")) {
    const values = own(schema, "enum");
    if (!Array.isArray(values) || values.length === 0) return { ok: false, reason: '"enum" is not a non-empty array' };
    return typeOfValues(values, '"enum"');
  }
  if (Object.hasOwn(schema, "const")) return typeOfValues([own(schema, "const")], '"const"');
  if (Object.hasOwn(schema, "properties")) return { ok: true, name: "object", nullable: false };
  return { ok: false, reason: 'no "type" (nor "enum", "const" or "properties") to derive a type from' };
}

function typeOfValues(values: readonly unknown[], what: string): Base {
  const kinds = new Set<string>();
  let nullable = false;
  for (const value of values) {
    if (value === null) nullable = true;
    else if (typeof value === "string") kinds.add("string");
    else if (typeof value === "boolean") kinds.add("boolean");
    else if (typeof value === "number" && Number.isSafeInteger(value)) kinds.add("integer");
    else if (typeof value === "number" && Number.isFinite(value) && typeof toDecimal(value) === "string") kinds.add("number");
    else if (typeof value === "number") return { ok: false, reason: `${what} holds a number that is neither a safe integer nor a Cedar decimal (at most 4 fractional digits, within ±922337203685477.5807)` };
    else return { ok: false, reason: `${what} holds ${kindOf(value)}, which Cedar cannot type here` };
  }
  if (kinds.has("number")) kinds.delete("integer");
  if (kinds.size === 0) return { ok: false, reason: `${what} holds only null: Cedar has no null` };
  if (kinds.size > 1) return { ok: false, reason: `${what} mixes ${[...kinds].join(" and ")} values: a Cedar value has one type` };
  return { ok: true, name: [...kinds][0] as BaseName, nullable };
}

function mapArray(schema: Record<string, unknown>, path: string, depth: number, state: SchemaState, nullable: boolean): Mapped {
  if (!Object.hasOwn(schema, "items")) return { ok: false, reason: 'array without "items" (items of any type): a Cedar set has one element type' };
  const items = own(schema, "items");
  if (Array.isArray(items)) return { ok: false, reason: "tuple (`items` is a list): Cedar sets have one element type and no order" };
  const itemsPath = `${path}[*]`;
  const element = mapSchema(items, itemsPath, depth + 1, state);
  if (!element.ok) return { ok: false, reason: `its items are not representable (${itemsPath}: ${element.reason})` };
  if (element.nullable) {
    problem(state, `${itemsPath}: items may be null, which a Cedar set cannot hold; kept as a set of the non-null type (toCedarValue refuses null elements)`);
  }
  return { ok: true, type: { type: "Set", element: element.type }, nullable };
}

function mapObject(schema: Record<string, unknown>, path: string, depth: number, state: SchemaState, nullable: boolean): Mapped {
  if (!Object.hasOwn(schema, "properties")) {
    if (own(schema, "additionalProperties") === false) return { ok: true, type: emptyRecord(), nullable };
    return { ok: false, reason: 'object without "properties" (a map of arbitrary keys): Cedar records need declared attributes' };
  }
  const properties = own(schema, "properties");
  if (!isPlainObject(properties)) return { ok: false, reason: '"properties" is not an object' };
  const names = Object.keys(properties);
  if (names.length > state.maxProperties) return { ok: false, reason: `declares ${names.length} properties, more than ${state.maxProperties}` };

  const required = new Set<string>();
  if (Object.hasOwn(schema, "required")) {
    const list = own(schema, "required");
    if (Array.isArray(list) && list.every((n) => typeof n === "string")) {
      for (const name of list) required.add(name);
    } else {
      problem(state, `${path}: "required" is not a list of property names; ignored (every property is optional)`);
    }
  }

  const attributes: [string, CedarAttributeType][] = [];
  for (const name of names) {
    const propertyPath = `${path}${segment(name)}`;
    const omitted = "; property omitted (policies cannot read it; it is never sent)";
    if (RESERVED_KEYS.includes(name)) {
      problem(state, `${propertyPath}: the name "${name}" is a Cedar JSON escape (a value under it could be read as an entity or extension value)${omitted}`);
      continue;
    }
    if (!isWellFormed(name)) {
      problem(state, `${propertyPath}: the name has an unpaired UTF-16 surrogate, which Cedar cannot encode${omitted}`);
      continue;
    }
    const mapped = mapSchema(own(properties, name), propertyPath, depth + 1, state);
    if (!mapped.ok) {
      problem(state, `${propertyPath}: ${mapped.reason}${omitted}`);
      continue;
    }
    attributes.push([name, { ...mapped.type, required: required.has(name) && !mapped.nullable }]);
  }
  // Object.fromEntries defines own properties: a property named "__proto__" stays a key.
  return { ok: true, type: { type: "Record", attributes: Object.fromEntries(attributes) }, nullable };
}

function emptyRecord(): CedarRecordType {
  return { type: "Record", attributes: {} };
}

function problem(state: SchemaState, text: string): void {
  if (state.problems.length < MAX_PROBLEMS) state.problems.push(text);
  else state.dropped += 1;
}

// ---------------------------------------------------------------------------------------------
// Tool input → Cedar value
// ---------------------------------------------------------------------------------------------

interface ValueState {
  readonly maxNodes: number;
  readonly maxStringBytes: number;
  readonly maxTotalStringBytes: number;
  readonly maxDepth: number;
  nodes: number;
  stringBytes: number;
  /**
   * The objects and arrays on the current path: `containers[d]` is the one at depth `d` (entries
   * past the current depth are left over). A cycle cannot come from JSON.parse, but is refused anyway.
   */
  readonly containers: object[];
  /** Refuse, rather than drop, a property the type does not declare. */
  readonly rejectUndeclared: boolean;
  /** The root's name, where every path in a reason starts. */
  readonly root: string;
  /**
   * The path to the node being converted, one key per level: `keys[d]` is the attribute name or
   * set index that leads from level `d` to level `d + 1` (entries past the node's depth are left
   * over from earlier siblings). A reason's path string is joined from it only when refusing
   * ({@link pathOf}): joining one for every node, as this once did, was a large part of the
   * conversion's cost, for a path that is almost never read.
   */
  readonly keys: (string | number)[];
  /** {@link segment} of the names on over-long paths, computed once per call (see {@link PATH_CHECK_ABOVE}). */
  segments: Map<string, string> | undefined;
}

class Refusal {
  constructor(readonly reason: string) {}
}

/**
 * Path strings the way an earlier version built them, eagerly, for every node, would throw a
 * `RangeError` (refused: "nested too deeply to convert") once longer than the engine's longest
 * string (V8: 2^29 − 24 characters on 64-bit). Lazy paths must refuse exactly those inputs too,
 * however absurd (a type with attribute names of many megabytes): each node carries an upper bound
 * of its path's length, and where the bound passes this value the path is joined for real, where
 * the eager version joined it, so that it throws where that one threw. Far below any engine's limit.
 */
const PATH_CHECK_ABOVE = 2 ** 24;
/** At most the length of a set index's segment `[i]`: i < maxNodes ≤ 2^53, so at most 16 digits. */
const INDEX_SEGMENT_BOUND = 18;
/** At most the length of an attribute's segment: `[` + JSON string (≤ 6 characters per UTF-16 unit, plus quotes) + `]`. */
const attributeSegmentBound = (name: string): number => 6 * name.length + 4;

/**
 * Converts a tool input (untrusted: what the model produced, after `JSON.parse`) into a Cedar value
 * of exactly `type`, or refuses it with a reason naming the path. Never throws, whatever `input`,
 * `type` or `options` hold.
 *
 * - Records: only the declared attributes are read (own properties only, so `__proto__` and
 *   inherited keys are never consulted) and only they are sent; undeclared keys are dropped.
 *   A required attribute that is absent or `null` is refused; an optional one that is absent or
 *   `null` is omitted. An input record with an own key `__entity`, `__extn` or `__expr` is
 *   refused, declared or not (Cedar's JSON format would read such a record as an entity
 *   reference or extension value). Only plain objects are records.
 * - `Long`: a safe integer; `-0` becomes `0`.
 * - `decimal`: a finite number whose shortest round-trip decimal form (`String(n)`) has at most 4
 *   fractional digits and lies in -922337203685477.5808..922337203685477.5807; sent as
 *   `{ "__extn": { "fn": "decimal", "arg": "<digits>.<digits>" } }`. Never rounded: more digits
 *   are refused.
 * - `String`: at most `maxStringBytes` UTF-8 bytes, no unpaired surrogates (cedar-wasm throws on them).
 * - `Set`: an array; every element converted (null elements refused). Cedar sets keep neither
 *   order nor duplicates.
 * - Limits: `maxNodes` values, `maxDepth` levels, `maxTotalStringBytes` over all strings.
 *
 * Constraints of the JSON Schema beyond shape (enum membership, `minimum`, `pattern`, ...) are
 * not checked here.
 */
export function toCedarValue(input: unknown, type: CedarSchemaType, options: ToCedarValueOptions = {}): ToCedarValueResult {
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
      containers: [],
      rejectUndeclared: opts["undeclared"] === "reject",
      root,
      keys: [],
      segments: undefined,
    };
    return { ok: true, value: convert(input, type, 0, root.length, state) };
  } catch (error) {
    if (error instanceof Refusal) return { ok: false, reason: error.reason };
    if (error instanceof TypeError && error.message.startsWith("invalid option ")) return { ok: false, reason: error.message };
    if (error instanceof RangeError) return { ok: false, reason: `${root}: nested too deeply to convert` };
    return { ok: false, reason: `${root}: the input could not be read (an accessor threw)` };
  }
}

/**
 * Converts the node at `depth` levels below the root, whose path is `state.root` followed by
 * `state.keys[0 .. depth)`; `pathBound` is at least that path's length (see {@link PATH_CHECK_ABOVE}).
 * The reads of `value` and `type` (own-property checks, prototypes, keys) and the order of the
 * checks are those of the earlier, path-building version: proxies and accessors see no difference.
 */
function convert(value: unknown, type: unknown, depth: number, pathBound: number, state: ValueState): CedarValueJson {
  if (depth > state.maxDepth) refuseAt(state, depth, `nested deeper than ${state.maxDepth} levels`);
  state.nodes += 1;
  if (state.nodes > state.maxNodes) refuseAt(state, depth, `the input holds more than ${state.maxNodes} values`);
  if (!isPlainObject(type)) refuseAt(state, depth, "the Cedar type is not a type object");

  const typeName = own(type, "type");
  switch (typeName) {
    case "String":
      if (typeof value !== "string") refuseAt(state, depth, `expected a string, got ${kindOf(value)}`);
      checkString(value, depth, state);
      return value;
    case "Long":
      if (typeof value !== "number") refuseAt(state, depth, `expected an integer, got ${kindOf(value)}`);
      if (!Number.isInteger(value)) refuseAt(state, depth, `expected an integer, got ${kindOf(value)}`);
      if (!Number.isSafeInteger(value)) refuseAt(state, depth, "the integer is outside the safe range ±(2^53−1), so it may already have lost precision");
      return value === 0 ? 0 : value;
    case "Boolean":
      if (typeof value !== "boolean") refuseAt(state, depth, `expected a boolean, got ${kindOf(value)}`);
      return value;
    case "Extension": {
      if (own(type, "name") !== "decimal") refuseAt(state, depth, 'only the "decimal" extension type is supported');
      if (typeof value !== "number") refuseAt(state, depth, `expected a number, got ${kindOf(value)}`);
      const decimal = toDecimal(value);
      if (typeof decimal !== "string") refuseAt(state, depth, decimal.reason);
      return { __extn: { fn: "decimal", arg: decimal } };
    }
    case "Set": {
      if (!Array.isArray(value)) refuseAt(state, depth, `expected an array, got ${kindOf(value)}`);
      enter(value, depth, state);
      const length = value.length;
      if (length > state.maxNodes - state.nodes) refuseAt(state, depth, `the input holds more than ${state.maxNodes} values`);
      const element = own(type, "element");
      const keys = state.keys;
      const itemBound = pathBound + INDEX_SEGMENT_BOUND;
      const out: CedarValueJson[] = [];
      for (let i = 0; i < length; i += 1) {
        const item: unknown = value[i];
        keys[depth] = i;
        if (itemBound > PATH_CHECK_ABOVE) pathOf(state, depth + 1);
        if (item === null || item === undefined) refuseAt(state, depth + 1, `${item === null ? "null" : "a missing element"} in a set (Cedar has no null)`);
        out.push(convert(item, element, depth + 1, itemBound, state));
      }
      return out;
    }
    case "Record": {
      if (!isPlainObject(value)) refuseAt(state, depth, `expected an object, got ${kindOf(value)}`);
      const attributes = own(type, "attributes");
      if (!isPlainObject(attributes)) refuseAt(state, depth, "the Cedar record type has no attributes object");
      enter(value, depth, state);
      for (const key of RESERVED_KEYS) {
        if (Object.hasOwn(value, key)) refuseAt(state, depth, `the key "${key}" is not allowed (Cedar would read it as an entity or extension escape)`);
      }
      if (state.rejectUndeclared) {
        for (const key of Object.keys(value)) {
          // The key is the model's words (a prompt injection can put anything there): only its size is told.
          if (!Object.hasOwn(attributes, key)) refuseAt(state, depth, `holds a property not declared in the tool's input schema (a key of ${key.length} characters)`);
        }
      }
      const keys = state.keys;
      const out: { [key: string]: CedarValueJson } = {};
      for (const name of Object.keys(attributes)) {
        keys[depth] = name;
        const attributeBound = pathBound + attributeSegmentBound(name);
        if (attributeBound > PATH_CHECK_ABOVE) pathOf(state, depth + 1);
        if (isReservedKey(name)) refuseAt(state, depth + 1, `the Cedar type declares the reserved attribute "${name}"`);
        const attribute = own(attributes, name);
        const required = !(isPlainObject(attribute) && own(attribute, "required") === false);
        const item = own(value, name);
        if (item === undefined || item === null) {
          if (required) refuseAt(state, depth + 1, `required property is ${item === null ? "null" : "missing"}`);
          continue;
        }
        addProperty(out, name, convert(item, attribute, depth + 1, attributeBound, state));
      }
      return out;
    }
    default:
      refuseAt(state, depth, `unsupported Cedar type ${typeof typeName === "string" ? JSON.stringify(typeName) : "(no type name)"}`);
  }
}

/** Refuses the node at `depth` on the current path: `"<path>: <what>"`. */
function refuseAt(state: ValueState, depth: number, what: string): never {
  throw new Refusal(`${pathOf(state, depth)}: ${what}`);
}

/** The path of the node at `depth` on the current path, as policies would name it: `input.lines[3].sku`. */
function pathOf(state: ValueState, depth: number): string {
  let path = state.root;
  for (let i = 0; i < depth; i += 1) {
    const key = state.keys[i]!;
    if (typeof key === "number") {
      path += `[${key}]`;
    } else {
      // Memoized per call: on an over-long path this runs for every node below it (PATH_CHECK_ABOVE).
      state.segments ??= new Map();
      let text = state.segments.get(key);
      if (text === undefined) state.segments.set(key, (text = segment(key)));
      path += text;
    }
  }
  return path;
}

/**
 * Adds an own data property, as `Object.fromEntries` does, at the cost of an assignment. On a new
 * `{}` the two are the same unless `Object.prototype` has a property of that name: `__proto__`
 * (its setter would change the prototype), or any name on a frozen or polluted prototype (a
 * read-only one makes the assignment throw, an accessor would run). Those are defined instead.
 */
function addProperty(record: { [key: string]: CedarValueJson }, name: string, value: CedarValueJson): void {
  if (name in Object.prototype) {
    // A descriptor without a prototype: an inherited `get` (a polluted prototype) must not count.
    const descriptor: PropertyDescriptor = Object.create(null) as PropertyDescriptor;
    descriptor.value = value;
    descriptor.writable = true;
    descriptor.enumerable = true;
    descriptor.configurable = true;
    Object.defineProperty(record, name, descriptor);
  } else {
    record[name] = value;
  }
}

function isReservedKey(name: string): boolean {
  return name === "__entity" || name === "__extn" || name === "__expr";
}

function enter(value: object, depth: number, state: ValueState): void {
  const containers = state.containers;
  for (let d = 0; d < depth; d += 1) {
    if (containers[d] === value) refuseAt(state, depth, "the input contains itself (a cycle)");
  }
  containers[depth] = value;
}

/** A UTF-16 unit outside ASCII. */
const NON_ASCII = /[^\0-\x7f]/;

function checkString(value: string, depth: number, state: ValueState): void {
  // UTF-8 needs at least one byte per UTF-16 unit: a long string is refused before it is scanned.
  if (value.length > state.maxStringBytes) refuseAt(state, depth, `the string is longer than ${state.maxStringBytes} bytes`);
  // Most strings are ASCII (one byte per unit, no surrogates): the regex tells faster than the loop.
  const bytes = NON_ASCII.test(value) ? utf8Bytes(value, depth, state) : value.length;
  if (bytes > state.maxStringBytes) refuseAt(state, depth, `the string is longer than ${state.maxStringBytes} bytes`);
  state.stringBytes += bytes;
  if (state.stringBytes > state.maxTotalStringBytes) refuseAt(state, depth, `the strings of the input total more than ${state.maxTotalStringBytes} bytes`);
}

/** The UTF-8 length of a string; refuses one with an unpaired surrogate. */
function utf8Bytes(value: string, depth: number, state: ValueState): number {
  let bytes = 0;
  for (let i = 0; i < value.length; i += 1) {
    const unit = value.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) refuseAt(state, depth, "the string has an unpaired UTF-16 surrogate, which Cedar cannot encode");
      bytes += 4;
      i += 1;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      refuseAt(state, depth, "the string has an unpaired UTF-16 surrogate, which Cedar cannot encode");
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Below this magnitude every number is inside Cedar's decimal range, whatever its fraction:
 * 922337203685476.9999 scaled by 10^4 is below i64::MAX.
 */
const DECIMAL_FAST_LIMIT = 922_337_203_685_477;

/**
 * The Cedar `decimal` literal of a number: its shortest round-trip decimal form (ECMAScript
 * `Number::toString`), which must have at most 4 fractional digits and fit Cedar's range.
 *
 * A fast path first, for the numbers tool inputs carry (amounts, prices, quantities): it gives
 * exactly what {@link toDecimalExactly} gives, without a regex or a BigInt. When
 * |value| < {@link DECIMAL_FAST_LIMIT} (NaN and ±Infinity fail the comparison), the number is in
 * range, and `String(value)` is in exponent form only below 1e-6 ("1.5e-7": left to the general
 * path, which refuses it). Otherwise it is the plain form: an optional "-", the integer digits
 * without leading zeros (a lone "0" below 1) and, for a non-integer, "." and the fraction digits,
 * the last one non-zero (the shortest form ends in no zero). For such a text with at most 4
 * fractional digits the general path returns the text itself, with ".0" appended to an integer
 * (`-0` prints as "0"); so does the fast path. Anything else (more fractional digits, an exponent,
 * a larger magnitude) takes the general path, which also words every refusal.
 */
function toDecimal(value: number): string | { reason: string } {
  if (Math.abs(value) < DECIMAL_FAST_LIMIT) {
    const text = String(value);
    if (!text.includes("e")) {
      const point = text.indexOf(".");
      if (point === -1) return `${text}.0`;
      if (text.length - point - 1 <= 4) return text;
    }
  }
  return toDecimalExactly(value);
}

/** {@link toDecimal} for any number, by the digits of its shortest round-trip form (slower: a regex and a BigInt). */
function toDecimalExactly(value: number): string | { reason: string } {
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

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

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

function isWellFormed(text: string): boolean {
  return !/[\ud800-\udfff]/u.test(text);
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
