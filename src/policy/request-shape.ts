/**
 * The shape of a Cedar authorization request, checked in JavaScript before it crosses into wasm:
 * cedar-wasm throws (and leaks) on a malformed call instead of answering `failure`.
 * @module
 */
import { types } from "node:util";

const { isProxy } = types;

/** A Cedar value as the engine accepts it: no `undefined`, no `null`, no floats. */
export type CedarValue = string | number | boolean | readonly CedarValue[] | { readonly [key: string]: CedarValue } | EntityValue;

/** An entity reference used as a value. */
export interface EntityValue {
  readonly __entity: { readonly type: string; readonly id: string };
}

export interface EntityUid {
  readonly type: string;
  readonly id: string;
}

export interface CedarEntity {
  readonly uid: EntityUid;
  readonly attrs: Readonly<Record<string, CedarValue>>;
  readonly parents: readonly EntityUid[];
  readonly tags?: Readonly<Record<string, CedarValue>>;
}

/** One authorization request. */
export interface CedarRequest {
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly context: Readonly<Record<string, CedarValue>>;
  readonly entities: readonly CedarEntity[];
}

const MAX_DEPTH = 32;
/**
 * An entity type as Cedar names it (`Bedrock::Workload`). Cedar's parser would also read other
 * spellings of one name (`Bedrock :: Workload`); policies are sliced by comparing names as
 * strings, so a request must use the one spelling Cedar's JSON gives.
 */
const ENTITY_TYPE = /^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$/;
/** Cedar refuses a type name with one of these words as a part (`Bedrock::if`): it answers `failure`. */
const RESERVED_TYPE_PART = /(?:^|::)(?:true|false|if|then|else|in|is|like|has|__cedar)(?:::|$)/;
const ENTITY_KEYS = new Set(["uid", "attrs", "parents", "tags"]);
/**
 * Keys Cedar's JSON reads as escapes (`{ "__entity": … }`), not as a record's attributes.
 *
 * @example
 * ```ts
 * if (ESCAPE_KEYS.some((key) => Object.hasOwn(record, key))) throw new TypeError("an escape, not a record");
 * ```
 */
export const ESCAPE_KEYS = ["__entity", "__extn", "__expr"] as const;

const REQUEST_KEYS = new Set(["principal", "action", "resource", "context", "entities"]);

/**
 * Throws a descriptive `TypeError` unless the request's envelope — its keys, its principal,
 * action and resource references, its context and its entities array — is exactly the shape
 * `statefulIsAuthorized` accepts. Unknown keys, `undefined`, `null`, non-integer or unsafe
 * numbers, non-plain objects and values nested deeper than {@link MAX_DEPTH} are refused. Each
 * entity is checked with {@link assertEntity}.
 */
export function assertRequestEnvelope(request: CedarRequest): void {
  path.length = 0;
  readAsData = builtByLibrary.has(request);
  if (!isPlainObject(request)) fail("the request must be a plain object");
  onlyKeys(request, REQUEST_KEYS, "request");
  path.push("principal");
  uid(request.principal);
  path[0] = "action";
  uid(request.action);
  path[0] = "resource";
  uid(request.resource);
  path[0] = "context";
  record(request.context, 0);
  // Cedar reads a context holding only an escape key as that value (and refuses it: a context is a
  // record), and one holding more as a record: no reading of it is safe to rely on.
  for (const key of ESCAPE_KEYS) if (Object.hasOwn(request.context, key)) fail(`context has a key "${key}", which Cedar reads as an escape: rename it`);
  path.pop();
  const entities = request.entities;
  if (!Array.isArray(entities) || isProxy(entities)) fail("entities must be an array (plain data, not a proxy)");
  // Each element read once here, by its descriptor: the engine reads them again.
  for (let i = 0; i < entities.length; i++) dataValue(entities, i, `entities[${i}]`);
}

/**
 * Requests the library built itself, from data it made (a call's facts, a tool input it
 * converted): never a caller's object, so their values are read as they are, without looking
 * for accessors — the check that costs most on large tool inputs.
 */
const builtByLibrary = new WeakSet<object>();

/**
 * Marks a request as built by the library from data it made (see {@link assertRequestEnvelope}).
 *
 * @example
 * ```ts
 * const decision = engine.authorize(libraryRequest({ principal, action, resource, context, entities }));
 * ```
 */
export function libraryRequest<T extends CedarRequest>(request: T): T {
  builtByLibrary.add(request);
  return request;
}

/** Whether the request being checked is the library's own (set by each exported check). */
let readAsData = false;

/** Throws a descriptive `TypeError` unless `entity` is exactly the shape of a Cedar entity. */
export function assertEntity(entity: unknown, label: string): asserts entity is CedarEntity {
  path.length = 0;
  readAsData = false;
  if (!isPlainObject(entity)) fail(`${label} must be an object`);
  onlyKeys(entity, ENTITY_KEYS, label);
  const { uid: entityUid, attrs, parents, tags } = entity as Record<string, unknown>;
  path.push(label);
  at("uid", () => uid(entityUid));
  at("attrs", () => record(attrs, 0));
  if (!Array.isArray(parents) || isProxy(parents)) fail(`${label}.parents must be an array (plain data, not a proxy)`);
  at("parents", () => {
    for (let j = 0; j < parents.length; j++) {
      const parent = dataValue(parents, j);
      at(j, () => uid(parent));
    }
  });
  if (tags !== undefined) at("tags", () => record(tags, 0));
}

/**
 * Where the value being checked is (`context.delegation.actors[0]`): a stack of keys and indexes,
 * joined into a message only when a check fails — most requests are well-formed, and building each
 * value's path as a string cost more than checking it. Checks are synchronous: one stack serves all,
 * and every exported check empties it first (a check that failed left its steps on it).
 */
const path: (string | number)[] = [];

function at(step: string | number, check: () => void): void {
  path.push(step);
  check();
  path.pop();
}

function where(): string {
  let joined = "";
  for (const step of path) joined += typeof step === "number" ? `[${step}]` : joined === "" ? step : `.${step}`;
  return joined;
}

function uid(value: unknown): void {
  if (!isPlainObject(value)) fail(`${where()} must be an entity reference { type, id }`);
  const type = dataValue(value, "type");
  const id = dataValue(value, "id");
  if (Object.keys(value).length !== 2 || typeof type !== "string" || type.length === 0 || typeof id !== "string") {
    fail(`${where()} must be exactly { type: non-empty string, id: string }`);
  }
  if (!type.isWellFormed() || !id.isWellFormed()) fail(`${where()} is not well-formed Unicode (a lone surrogate)`);
  if (!ENTITY_TYPE.test(type)) fail(`${where()}.type must be a Cedar type name such as Bedrock::Workload (no spaces), got ${JSON.stringify(type.slice(0, 80))}`);
  if (RESERVED_TYPE_PART.test(type)) fail(`${where()}.type has a part Cedar reserves (true, false, if, then, else, in, is, like, has, __cedar), got ${JSON.stringify(type.slice(0, 80))}`);
}

function record(value: unknown, depth: number): void {
  if (!isPlainObject(value)) fail(`${where()} must be a plain object`);
  for (const key of Object.keys(value)) {
    if (!key.isWellFormed()) fail(`${where()} has a key that is not well-formed Unicode (a lone surrogate)`);
    const member = dataValue(value, key);
    path.push(key);
    cedarValue(member, depth + 1);
    path.pop();
  }
}

/**
 * An own property's value, refusing a getter (or setter): a request is read more than once (this
 * check, the memo key, cedar-wasm), and an accessor may answer each read differently — a decision
 * made on one value must never be kept under another's key.
 */
function dataValue(holder: object, key: string | number, label?: string): unknown {
  if (readAsData) return (holder as Record<string | number, unknown>)[key];
  const descriptor = Object.getOwnPropertyDescriptor(holder, key);
  if (descriptor === undefined) return undefined;
  if (!("value" in descriptor)) fail(`${label ?? `${where()}${typeof key === "number" ? `[${key}]` : where() === "" ? key : `.${key}`}`} is an accessor (a getter): a request must be plain data`);
  return descriptor.value;
}

function cedarValue(value: unknown, depth: number): void {
  if (depth > MAX_DEPTH) fail(`${where()} is nested deeper than ${MAX_DEPTH} levels`);
  switch (typeof value) {
    case "string":
      // cedar-wasm throws (and leaks) on a lone surrogate.
      if (!value.isWellFormed()) fail(`${where()} is not well-formed Unicode (a lone surrogate)`);
      return;
    case "boolean":
      return;
    case "number":
      if (!Number.isSafeInteger(value)) fail(`${where()} must be a safe integer (Cedar has no floats), got ${value}`);
      return;
    case "object":
      if (value === null) fail(`${where()} is null (Cedar has no null)`);
      if (Array.isArray(value)) {
        if (isProxy(value)) fail(`${where()} is a proxy: a request must be plain data`);
        for (let i = 0; i < value.length; i++) {
          const element = dataValue(value, i);
          path.push(i);
          cedarValue(element, depth + 1);
          path.pop();
        }
        return;
      }
      if (isPlainObject(value) && "__entity" in value) {
        if (Object.keys(value).length !== 1) fail(`${where()} mixes __entity with other keys`);
        at("__entity", () => uid(dataValue(value, "__entity")));
        return;
      }
      // The escape Cedar dropped: cedar-wasm answers `failure` for it; refused here, with its place.
      if (isPlainObject(value) && "__expr" in value) fail(`${where()} is an "__expr" escape, which Cedar no longer reads`);
      if (isPlainObject(value) && "__extn" in value) {
        // Only decimals (tool inputs' numbers), in exactly the form Cedar reads.
        const extension = dataValue(value, "__extn");
        let isDecimal = Object.keys(value).length === 1 && isPlainObject(extension) && Object.keys(extension).length === 2;
        if (isDecimal) {
          const arg = dataValue(extension as object, "arg");
          isDecimal = dataValue(extension as object, "fn") === "decimal" && typeof arg === "string" && /^-?\d{1,15}\.\d{1,4}$/.test(arg);
          // Cedar holds a decimal in 64 bits, four digits after the point: beyond, it answers `failure`.
          if (isDecimal && !decimalInRange(arg as string)) fail(`${where()}: decimal("${arg as string}") is outside Cedar's range (-922337203685477.5808 to 922337203685477.5807)`);
        }
        if (!isDecimal) fail(`${where()}: only decimal("…") extension values are accepted`);
        return;
      }
      record(value, depth);
      return;
    default:
      fail(`${where()} has type ${typeof value}, which Cedar cannot represent`);
  }
}

/** Whether a decimal literal (`-?digits.digits`, at most four after the point) fits Cedar's 64-bit decimal. */
function decimalInRange(text: string): boolean {
  const [whole, fraction] = text.split(".") as [string, string];
  const scaled = BigInt(whole.replace("-", "") + fraction.padEnd(4, "0"));
  return whole.startsWith("-") ? scaled <= 2n ** 63n : scaled < 2n ** 63n;
}

function onlyKeys(value: object, allowed: ReadonlySet<string>, label: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) fail(`${label} has an unknown field "${key}"`);
    if (dataValue(value, key) === undefined) fail(`${label}.${key} is undefined`);
  }
}

/** A plain object (a proxy is not: its traps may answer each read differently). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value) || isProxy(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function fail(message: string): never {
  throw new TypeError(message);
}
