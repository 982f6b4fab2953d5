/**
 * A JavaScript evaluator for the part of Cedar most policies are written in, so that a request the
 * memo cannot answer is still decided without crossing into wasm (~120 µs a call, most of it
 * marshalling). cedar-wasm stays the authority: this evaluator only answers when it is sure its
 * answer is Cedar's, and hands everything else to wasm.
 *
 * - **The subset, decided per policy when a slice is cut:** literals (booleans, integers within
 *   ±2^53, strings, entities, sets, records), `principal`/`action`/`resource`/`context`, `==` `!=`
 *   `<` `<=` `>` `>=` `+` `-` `*` `!` `&&` `||` `if-then-else`, `in`, `is`, `has`, `.`, `like`,
 *   `contains`/`containsAll`/`containsAny`/`isEmpty`, `hasTag`/`getTag`, `decimal()` and its
 *   comparisons (`lessThan`, `lessThanOrEqual`, `greaterThan`, `greaterThanOrEqual`), and every
 *   scope form without a template slot. A slice holding any other policy (another extension
 *   function such as `ip()` or `datetime()`, a slot, a literal beyond 2^53) is evaluated in wasm.
 * - **Only clean evaluations, decided per request:** anything Cedar would answer with an error — a
 *   type error, a missing attribute, an entity not in the request, an overflow, a malformed decimal
 *   — and any value outside the subset (a decimal beyond ±2^53 ten-thousandths, another extension
 *   value, a duplicate entity), or values compared past a budget of steps (nested sets), make the
 *   whole evaluation go to wasm, which then names the error as Cedar does. So this evaluator never
 *   reports an error: it answers with every policy evaluated to true or false, or not at all.
 * - **Cedar's order:** each policy is its scope's three constraints then its conditions, joined
 *   with a short-circuiting `&&` — the order Cedar evaluates them in — so an evaluation Cedar
 *   would stop before an error stops here too, and one that would reach it reaches it here.
 *
 * What it is checked against: differential tests over generated policies and requests, every
 * answer compared with cedar-wasm's (`test/subset-evaluator.test.ts`), and every other
 * differential test of the engine (slicing, memo), which now decide through it.
 * @module
 */
import { ESCAPE_KEYS, type CedarEntity, type CedarRequest, type CedarValue, type EntityUid } from "./request-shape.js";
import { likePieces, matchesLike } from "./context-comparisons.js";
import { isObject, type Json } from "./policy-reads.js";

/** A value during evaluation: Cedar's JSON form (an entity as `{ __entity: { type, id } }`). */
type Value = CedarValue;

interface EntityValue {
  readonly __entity: EntityUid;
}

/** A policy as the evaluator compiles it: Cedar's JSON of its scope and conditions. */
export interface SubsetPolicy {
  readonly id: string;
  readonly effect: "permit" | "forbid";
  readonly shadow: boolean;
  readonly principal: unknown;
  readonly action: unknown;
  readonly resource: unknown;
  readonly conditions: readonly unknown[];
}

/** Cedar's answer for a set, when the evaluator is sure of it (no policy errored). */
export interface SubsetAnswer {
  readonly allowed: boolean;
  /** The satisfied forbids when a forbid denies, the satisfied permits when allowed, else none. */
  readonly determining: readonly string[];
}

/**
 * Thrown, never returned: the evaluation leaves the subset (Cedar would error, or the value is one
 * this evaluator does not model). A symbol: nothing to build, no stack trace to capture.
 */
const UNSURE: unique symbol = Symbol("unsure");

function unsure(): never {
  throw UNSURE;
}

/**
 * Steps of value comparison left to the evaluation under way (evaluations are synchronous): nested
 * sets compared with `==` multiply their cost, and one request must not cost more here than in
 * Cedar. Past it, Cedar decides.
 */
let comparisonsLeft = 0;
const COMPARISON_BUDGET = 50_000;

/** One request's environment: its variables, and its entities by reference. */
class Environment {
  readonly principal: EntityValue;
  readonly action: EntityValue;
  readonly resource: EntityValue;
  readonly context: Readonly<Record<string, CedarValue>>;
  readonly #entities: readonly CedarEntity[];
  #byType: Map<string, Map<string, CedarEntity>> | undefined;

  constructor(request: CedarRequest) {
    this.principal = { __entity: request.principal };
    this.action = { __entity: request.action };
    this.resource = { __entity: request.resource };
    this.context = request.context;
    this.#entities = request.entities;
  }

  /** The entity with this reference in the request, or undefined. */
  entity(uid: EntityUid): CedarEntity | undefined {
    return this.store().get(uid.type)?.get(uid.id);
  }

  /**
   * The request's entities by type and id. Cedar refuses an entity given twice with different
   * contents: any repeat is left to it.
   */
  store(): Map<string, Map<string, CedarEntity>> {
    if (this.#byType !== undefined) return this.#byType;
    const byType = new Map<string, Map<string, CedarEntity>>();
    for (const entity of this.#entities) {
      let byId = byType.get(entity.uid.type);
      if (byId === undefined) byType.set(entity.uid.type, (byId = new Map()));
      if (byId.has(entity.uid.id)) unsure();
      byId.set(entity.uid.id, entity);
    }
    return (this.#byType = byType);
  }

  /** Whether `uid` is `target` or one of its descendants in the request's hierarchy (Cedar's `in`). */
  isIn(uid: EntityUid, target: EntityUid): boolean {
    if (uid.type === target.type && uid.id === target.id) return true;
    const start = this.entity(uid);
    if (start === undefined) return false;
    // Parents are ancestors whether or not they are in the request; their own parents only if they are.
    const seen = new Set<CedarEntity>([start]);
    const queue: CedarEntity[] = [start];
    for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
      for (const parent of next.parents) {
        if (parent.type === target.type && parent.id === target.id) return true;
        const entity = this.entity(parent);
        if (entity !== undefined && !seen.has(entity)) {
          seen.add(entity);
          queue.push(entity);
        }
      }
    }
    return false;
  }
}

type Compiled = (env: Environment) => Value;

/** Thrown while compiling: the policy is outside the subset. */
class OutsideSubset extends Error {}

function outside(what: string): never {
  throw new OutsideSubset(what);
}

const VARIABLES = new Set(["principal", "action", "resource", "context"]);
/** Keys Cedar's JSON reads as escapes: a record literal holding one is not written back faithfully. */
const ESCAPES: ReadonlySet<string> = new Set(ESCAPE_KEYS);

function isEntity(value: Value): value is EntityValue {
  return typeof value === "object" && !Array.isArray(value) && "__entity" in value;
}

/** The single operator of a node of Cedar's JSON expression form, and its operand(s). */
function operatorOf(node: unknown): [string, unknown] {
  if (!isObject(node)) outside("an expression that is not an object");
  const keys = Object.keys(node);
  if (keys.length !== 1) outside("an expression with more than one operator");
  const operator = keys[0] as string;
  return [operator, node[operator]];
}

/** A literal value of Cedar's JSON (`Value`), checked to be one this evaluator reads as Cedar does. */
function literal(value: unknown, depth = 0): Value {
  if (depth > 32) outside("a literal nested too deep");
  switch (typeof value) {
    case "boolean":
    case "string":
      return value;
    case "number":
      // Cedar's JSON rounds integers beyond 2^53: what the policy says is not known here.
      if (!Number.isSafeInteger(value)) outside("an integer beyond 2^53");
      return value;
    case "object": {
      if (Array.isArray(value)) return value.map((element) => literal(element, depth + 1));
      if (isObject(value) && Object.keys(value).length === 1 && isObject(value["__entity"])) {
        const uid = value["__entity"];
        if (Object.keys(uid).length === 2 && typeof uid["type"] === "string" && typeof uid["id"] === "string") return { __entity: { type: uid["type"], id: uid["id"] } };
      }
      return outside("a literal of another kind");
    }
    default:
      return outside("a literal of another kind");
  }
}

function uidOf(value: unknown): EntityUid {
  if (!isObject(value) || Object.keys(value).length !== 2 || typeof value["type"] !== "string" || typeof value["id"] !== "string") outside("an entity reference");
  return { type: value["type"], id: value["id"] };
}

function binary(operands: unknown): [unknown, unknown] {
  if (!isObject(operands) || !("left" in operands) || !("right" in operands)) outside("an operator without two operands");
  return [operands["left"], operands["right"]];
}

function bool(value: Value): boolean {
  if (typeof value !== "boolean") unsure();
  return value;
}

function long(value: Value): number {
  if (typeof value !== "number") unsure();
  return value;
}

function set(value: Value): readonly Value[] {
  if (!Array.isArray(value)) unsure();
  return value as readonly Value[];
}

function entityOf(value: Value): EntityUid {
  if (!isEntity(value)) unsure();
  return value.__entity;
}

/** An integer result: one beyond ±2^53 may have been rounded (Cedar's are 64-bit), so it is left to Cedar. */
function checked(result: number): number {
  if (!Number.isSafeInteger(result)) unsure();
  return result;
}

/**
 * Cedar's `==`, which never errors: values of different kinds are unequal; sets are compared as
 * sets, records by keys and values, decimals by value; other extension values are Cedar's to compare.
 */
function equal(a: Value, b: Value): boolean {
  if (--comparisonsLeft < 0) unsure();
  if (typeof a !== "object" || typeof b !== "object") return a === b;
  const aSet = Array.isArray(a);
  if (aSet !== Array.isArray(b)) return false;
  if (aSet) {
    const left = a as readonly Value[];
    const right = b as readonly Value[];
    for (const x of left) if (!includes(right, x)) return false;
    for (const y of right) if (!includes(left, y)) return false;
    return true;
  }
  const aExtension = isExtension(a);
  if (aExtension !== isExtension(b)) return false;
  // Decimals are equal by value (`decimal("1.0") == decimal("1.00")`); other extensions are Cedar's to compare.
  if (aExtension) return decimal(a) === decimal(b);
  const aEntity = isEntity(a);
  if (aEntity !== isEntity(b)) return false;
  if (aEntity) {
    const x = (a as EntityValue).__entity;
    const y = (b as EntityValue).__entity;
    return x.type === y.type && x.id === y.id;
  }
  const left = a as Readonly<Record<string, Value>>;
  const right = b as Readonly<Record<string, Value>>;
  const keys = Object.keys(left);
  if (keys.length !== Object.keys(right).length) return false;
  for (const key of keys) if (!Object.hasOwn(right, key) || !equal(left[key] as Value, right[key] as Value)) return false;
  return true;
}

function isExtension(value: Value): boolean {
  return typeof value === "object" && !Array.isArray(value) && "__extn" in value;
}

/**
 * A decimal as Cedar reads its text — digits, a point, one to four digits, an optional minus; a
 * whole part with leading zeros too — in ten-thousandths. Text Cedar refuses, and values this
 * evaluator cannot hold exactly (beyond ±2^53 ten-thousandths), are left to Cedar.
 */
function decimalOf(text: string): number {
  const match = /^(-?)([0-9]+)\.([0-9]{1,4})$/.exec(text);
  if (match === null) unsure();
  const magnitude = Number(match[2]) * 10_000 + Number((match[3] as string).padEnd(4, "0"));
  if (!Number.isSafeInteger(magnitude)) unsure();
  return match[1] === "-" ? -magnitude : magnitude;
}

/** The value of a decimal (Cedar's JSON `{ __extn: { fn: "decimal", arg } }`), in ten-thousandths; any other value is left to Cedar. */
function decimal(value: Value): number {
  if (!isExtension(value)) unsure();
  const extension = (value as { readonly __extn: unknown }).__extn;
  if (!isObject(extension) || extension["fn"] !== "decimal" || typeof extension["arg"] !== "string") unsure();
  return decimalOf(extension["arg"]);
}

const DECIMAL_COMPARISONS = new Set(["lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"]);

function includes(values: readonly Value[], value: Value): boolean {
  for (const member of values) if (equal(member, value)) return true;
  return false;
}

/** Cedar's `uid in target`, the target an entity or a set of them. */
function isInAny(env: Environment, uid: EntityUid, target: Value): boolean {
  if (!Array.isArray(target)) return env.isIn(uid, entityOf(target));
  const members = target as readonly Value[];
  // Cedar checks that every member is an entity before it looks for one.
  for (const member of members) entityOf(member);
  for (const member of members) if (env.isIn(uid, (member as EntityValue).__entity)) return true;
  return false;
}

/** A record's own attribute, or an entity's (which must be in the request). */
function attributeHolder(value: Value, env: Environment): Readonly<Record<string, Value>> | undefined {
  if (isEntity(value)) return env.entity(value.__entity)?.attrs;
  if (typeof value !== "object" || Array.isArray(value) || isExtension(value)) unsure();
  return value as Readonly<Record<string, Value>>;
}

function has(value: Value, attr: string, env: Environment): boolean {
  const holder = attributeHolder(value, env);
  // `has` on an entity the request does not hold is false, not an error.
  return holder !== undefined && Object.hasOwn(holder, attr);
}

function get(value: Value, attr: string, env: Environment): Value {
  const holder = attributeHolder(value, env);
  if (holder === undefined || !Object.hasOwn(holder, attr)) unsure();
  return holder[attr] as Value;
}

/** Compiles one expression of Cedar's JSON form into a function of the request; throws {@link OutsideSubset}. */
function compile(node: unknown, depth: number): Compiled {
  // A chain of thousands of operators is left to Cedar rather than to this stack.
  if (depth > 200) outside("an expression nested too deep");
  const [operator, operands] = operatorOf(node);
  const sub = (child: unknown) => compile(child, depth + 1);
  switch (operator) {
    case "Value": {
      const value = literal(operands);
      return () => value;
    }
    case "Var":
      if (typeof operands !== "string" || !VARIABLES.has(operands)) outside("an unknown variable");
      if (operands === "principal") return (env) => env.principal;
      if (operands === "action") return (env) => env.action;
      if (operands === "resource") return (env) => env.resource;
      return (env) => env.context;
    case "Set": {
      if (!Array.isArray(operands)) outside("a set literal");
      const elements = operands.map(sub);
      return (env) => {
        const values: Value[] = [];
        for (const element of elements) values.push(element(env));
        return values;
      };
    }
    case "Record": {
      if (!isObject(operands)) outside("a record literal");
      const entries = Object.keys(operands).map((key): [string, Compiled] => {
        if (ESCAPES.has(key)) outside("a record literal with an escape key");
        return [key, sub(operands[key])];
      });
      return (env) => {
        const record: Record<string, Value> = Object.create(null);
        for (const [key, value] of entries) record[key] = value(env);
        return record;
      };
    }
    case "!": {
      const arg = sub(argument(operands));
      return (env) => !bool(arg(env));
    }
    case "neg": {
      const arg = sub(argument(operands));
      return (env) => checked(0 - long(arg(env)));
    }
    case "isEmpty": {
      const arg = sub(argument(operands));
      return (env) => set(arg(env)).length === 0;
    }
    case "&&":
    case "||": {
      const [left, right] = operandPair(operands);
      return operator === "&&" ? (env) => bool(left(env)) && bool(right(env)) : (env) => bool(left(env)) || bool(right(env));
    }
    case "==":
    case "!=": {
      const [left, right] = operandPair(operands);
      return operator === "==" ? (env) => equal(left(env), right(env)) : (env) => !equal(left(env), right(env));
    }
    case "<":
    case "<=":
    case ">":
    case ">=":
    case "+":
    case "-":
    case "*": {
      const [left, right] = operandPair(operands);
      switch (operator) {
        case "<":
          return (env) => long(left(env)) < long(right(env));
        case "<=":
          return (env) => long(left(env)) <= long(right(env));
        case ">":
          return (env) => long(left(env)) > long(right(env));
        case ">=":
          return (env) => long(left(env)) >= long(right(env));
        case "+":
          return (env) => checked(long(left(env)) + long(right(env)));
        case "-":
          return (env) => checked(long(left(env)) - long(right(env)));
        default:
          return (env) => checked(long(left(env)) * long(right(env)));
      }
    }
    case "in": {
      const [left, right] = operandPair(operands);
      return (env) => {
        const uid = entityOf(left(env));
        return isInAny(env, uid, right(env));
      };
    }
    case "contains":
    case "containsAll":
    case "containsAny": {
      const [left, right] = operandPair(operands);
      if (operator === "contains") return (env) => includes(set(left(env)), right(env));
      if (operator === "containsAll") {
        return (env) => {
          const all = set(left(env));
          const wanted = set(right(env));
          for (const value of wanted) if (!includes(all, value)) return false;
          return true;
        };
      }
      return (env) => {
        const all = set(left(env));
        const wanted = set(right(env));
        for (const value of wanted) if (includes(all, value)) return true;
        return false;
      };
    }
    case "hasTag":
    case "getTag": {
      const [left, right] = operandPair(operands);
      return (env) => {
        const uid = entityOf(left(env));
        const tag = right(env);
        if (typeof tag !== "string") unsure();
        const tags = env.entity(uid)?.tags;
        const present = tags !== undefined && Object.hasOwn(tags, tag);
        if (operator === "hasTag") return present;
        if (!present) unsure();
        return tags[tag] as Value;
      };
    }
    case ".": {
      const [left, attr] = attribute(operands);
      return (env) => get(left(env), attr, env);
    }
    case "has": {
      if (!isObject(operands)) outside("has");
      const left = sub(operands["left"]);
      const path = operands["attr"];
      // `e has a.b.c` is `e has a && e.a has b && e.a.b has c`.
      const steps = typeof path === "string" ? [path] : Array.isArray(path) && path.length > 0 && path.every((step) => typeof step === "string") ? (path as string[]) : outside("has");
      return (env) => {
        let value = left(env);
        for (let i = 0; i < steps.length; i++) {
          if (!has(value, steps[i] as string, env)) return false;
          if (i < steps.length - 1) value = get(value, steps[i] as string, env);
        }
        return true;
      };
    }
    case "is": {
      if (!isObject(operands) || typeof operands["entity_type"] !== "string") outside("is");
      const left = sub(operands["left"]);
      const type = operands["entity_type"];
      const within = "in" in operands ? sub(operands["in"]) : undefined;
      return (env) => {
        const uid = entityOf(left(env));
        if (uid.type !== type) return false;
        return within === undefined || isInAny(env, uid, within(env));
      };
    }
    case "like": {
      if (!isObject(operands)) outside("like");
      const left = sub(operands["left"]);
      const pieces = likePieces(operands["pattern"] as Json) ?? outside("a like pattern");
      return (env) => {
        const text = left(env);
        if (typeof text !== "string") unsure();
        return matchesLike(text, pieces);
      };
    }
    case "if-then-else": {
      if (!isObject(operands)) outside("if-then-else");
      const condition = sub(operands["if"]);
      const then = sub(operands["then"]);
      const otherwise = sub(operands["else"]);
      return (env) => (bool(condition(env)) ? then(env) : otherwise(env));
    }
    case "decimal": {
      const [arg] = callArguments(operands, 1) as [Compiled];
      // A literal Cedar refuses, or one beyond what this evaluator holds exactly: every request of
      // the slice would go to Cedar, so the slice does from the start.
      const text = (operands as unknown[])[0];
      if (isObject(text) && typeof text["Value"] === "string") {
        try {
          decimalOf(text["Value"]);
        } catch {
          outside("a decimal literal Cedar refuses or this evaluator cannot hold");
        }
      }
      return (env) => {
        const text = arg(env);
        if (typeof text !== "string") unsure();
        decimalOf(text);
        return { __extn: { fn: "decimal", arg: text } };
      };
    }
    default: {
      if (DECIMAL_COMPARISONS.has(operator)) {
        const [left, right] = callArguments(operands, 2) as [Compiled, Compiled];
        if (operator === "lessThan") return (env) => decimal(left(env)) < decimal(right(env));
        if (operator === "lessThanOrEqual") return (env) => decimal(left(env)) <= decimal(right(env));
        if (operator === "greaterThan") return (env) => decimal(left(env)) > decimal(right(env));
        return (env) => decimal(left(env)) >= decimal(right(env));
      }
      // Other extension functions and methods (ip, datetime, isInRange ...), slots, unknowns.
      return outside(`the operator ${JSON.stringify(operator).slice(0, 40)}`);
    }
  }

  /** The arguments of an extension function or method (a method's receiver first). */
  function callArguments(value: unknown, count: number): Compiled[] {
    if (!Array.isArray(value) || value.length !== count) outside(`${operator} with another number of arguments`);
    return value.map(sub);
  }

  /** The two operands of a binary operator, compiled. */
  function operandPair(value: unknown): [Compiled, Compiled] {
    const [left, right] = binary(value);
    return [sub(left), sub(right)];
  }

  function argument(value: unknown): unknown {
    if (!isObject(value) || !("arg" in value)) outside(`${operator} without an argument`);
    return value["arg"];
  }

  function attribute(value: unknown): [Compiled, string] {
    if (!isObject(value) || typeof value["attr"] !== "string") outside("an attribute access");
    return [sub(value["left"]), value["attr"]];
  }
}

/** A scope constraint (principal or resource: `==`, `in`, `is`, `is … in`; action: `==`, `in` one or a list). */
function compileScope(scope: unknown, variable: "principal" | "action" | "resource"): ((env: Environment) => boolean) | undefined {
  if (!isObject(scope)) return outside("a scope");
  const uidIn = (env: Environment) => env[variable].__entity;
  switch (scope["op"]) {
    case "All":
      return undefined;
    case "==": {
      if (!("entity" in scope)) outside("a template slot");
      const target = uidOf(scope["entity"]);
      return (env) => {
        const uid = uidIn(env);
        return uid.type === target.type && uid.id === target.id;
      };
    }
    case "in": {
      if ("entities" in scope && variable === "action" && Array.isArray(scope["entities"])) {
        const targets = scope["entities"].map(uidOf);
        return (env) => {
          for (const target of targets) if (env.isIn(uidIn(env), target)) return true;
          return false;
        };
      }
      if (!("entity" in scope)) outside("a template slot");
      const target = uidOf(scope["entity"]);
      return (env) => env.isIn(uidIn(env), target);
    }
    case "is": {
      if (typeof scope["entity_type"] !== "string" || variable === "action") outside("a scope");
      const type = scope["entity_type"];
      const within = scope["in"];
      if (within === undefined) return (env) => uidIn(env).type === type;
      if (!isObject(within) || !("entity" in within)) outside("a template slot");
      const target = uidOf(within["entity"]);
      return (env) => uidIn(env).type === type && env.isIn(uidIn(env), target);
    }
    default:
      return outside("a scope");
  }
}

/** One policy compiled: whether the request satisfies it (throws {@link UNSURE} where Cedar would error). */
export interface CompiledPolicy {
  readonly id: string;
  readonly forbid: boolean;
  readonly shadow: boolean;
  readonly satisfied: (env: Environment) => boolean;
}

/**
 * Compiles a policy, or answers undefined when it is outside the subset. `scopeDecided`: the
 * policy index reads its whole scope, so every request of a slice holding it matches that scope,
 * and only its conditions are evaluated (as wasm evaluates its scope-free text).
 *
 * @example
 * ```ts
 * const compiled = compilePolicy(policy, true);
 * if (compiled === undefined) {
 *   // outside the subset: every slice holding this policy is evaluated in cedar-wasm
 * }
 * ```
 */
export function compilePolicy(policy: SubsetPolicy, scopeDecided: boolean): CompiledPolicy | undefined {
  try {
    const steps: ((env: Environment) => boolean)[] = [];
    if (!scopeDecided) {
      for (const variable of ["principal", "action", "resource"] as const) {
        const step = compileScope(policy[variable], variable);
        if (step !== undefined) steps.push(step);
      }
    }
    for (const condition of policy.conditions) {
      if (!isObject(condition) || (condition["kind"] !== "when" && condition["kind"] !== "unless")) outside("a condition");
      const body = compile(condition["body"], 0);
      steps.push(condition["kind"] === "when" ? (env) => bool(body(env)) : (env) => !bool(body(env)));
    }
    const satisfied = (env: Environment): boolean => {
      for (const step of steps) if (!step(env)) return false;
      return true;
    };
    return { id: policy.id, forbid: policy.effect === "forbid", shadow: policy.shadow, satisfied };
  } catch {
    // Outside the subset, too deep for this stack, or a fault of this compiler: Cedar evaluates it.
    return undefined;
  }
}

/**
 * A set of compiled policies (a slice's): Cedar's answer for a request, for the enforced policies
 * and for all of them (`@shadow` ones too), or undefined when only Cedar can give it.
 *
 * @example
 * ```ts
 * const program = new SubsetProgram(compiledPolicies);
 * const answer = program.evaluate(request); // undefined: ask cedar-wasm
 * ```
 */
export class SubsetProgram {
  readonly #policies: readonly CompiledPolicy[];

  constructor(policies: readonly CompiledPolicy[]) {
    this.#policies = policies;
  }

  /**
   * Cedar's answers, or undefined. The request must have passed the engine's checks: its shape
   * (`assertRequestEnvelope`) and an acyclic hierarchy (Cedar refuses a cycle; this evaluator does
   * not look for one).
   */
  evaluate(request: CedarRequest): { enforced: SubsetAnswer; full: SubsetAnswer } | undefined {
    const env = new Environment(request);
    const permits: string[] = [];
    const forbids: string[] = [];
    const shadowPermits: string[] = [];
    const shadowForbids: string[] = [];
    comparisonsLeft = COMPARISON_BUDGET;
    try {
      // Cedar refuses a request whose entities repeat one with other contents, whatever the policies read.
      env.store();
      for (const policy of this.#policies) {
        if (!policy.satisfied(env)) continue;
        if (policy.shadow) (policy.forbid ? shadowForbids : shadowPermits).push(policy.id);
        else (policy.forbid ? forbids : permits).push(policy.id);
      }
    } catch {
      // UNSURE, a stack overflow, or a fault of this evaluator: Cedar decides.
      return undefined;
    }
    const enforced = answerOf(permits, forbids);
    if (shadowPermits.length === 0 && shadowForbids.length === 0) return { enforced, full: enforced };
    return { enforced, full: answerOf([...permits, ...shadowPermits], [...forbids, ...shadowForbids]) };
  }
}

function answerOf(permits: readonly string[], forbids: readonly string[]): SubsetAnswer {
  if (forbids.length > 0) return { allowed: false, determining: forbids };
  return permits.length > 0 ? { allowed: true, determining: permits } : { allowed: false, determining: [] };
}
