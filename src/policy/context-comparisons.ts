/**
 * Decision memoization by what the policies test. Most context values a policy reads it only
 * compares with a literal or tests for a literal: `context.maxTokens <= 4096`,
 * `context.usage.callsThisMinute < 60`, `context.environment == "production"`,
 * `context.dataSensitivity.contains("pii")`, `["us-east-1", "eu-west-1"].contains(context.region)`.
 * Such a value reaches the decision only through the outcomes of those tests, so two requests that
 * differ only in it, with every one of its tests coming out the same, get the same decision. The
 * decision cache's key stands for such a value by its type and those outcomes, not by the value
 * itself: a new `maxTokens`, a usage counter one higher, a token one second closer to expiry, a data
 * label no policy names are decided from the memo instead of crossing into wasm again — exactly,
 * because nothing else of the value can reach a decision.
 *
 * A value is compared only when every use of it, in every condition of the slice, is one of these
 * tests with literals — `==`, `!=`, `<`, `<=`, `>`, `>=` with a literal integer (safe: Cedar's JSON
 * rounds larger ones) or, for `==` / `!=`, a literal string; `.contains(literal)`,
 * `.containsAny([literals])`, `.containsAll([literals])`, `.isEmpty()`; `[literals].contains(…)`;
 * `like "pattern"` (a purpose label new on every call, matched with `like`, is decided from the
 * memo) — and nothing uses it or a record holding it whole (`in`, arithmetic, another method, a
 * record or set literal holding it, `context` itself). Only integers, strings and sets of them
 * stand by their outcomes; a value of any other type (a record, a boolean, an entity, a set holding
 * one) is keyed by itself, as before.
 * @module
 */
import type { CedarValue } from "./request-shape.js";
import { isObject, isPlainRecord, type Json } from "./policy-reads.js";
import { setOwnKey } from "../validation.js";

type ComparisonOperator = "==" | "!=" | "<" | "<=" | ">" | ">=";
const COMPARISONS: ReadonlySet<string> = new Set<ComparisonOperator>(["==", "!=", "<", "<=", ">", ">="]);

/** One comparison of a context value with a literal, as a condition writes it. */
export interface ContextComparison {
  readonly operator: ComparisonOperator;
  readonly literal: number | string;
  /** The literal is the left operand (`5 < context.x`). */
  readonly literalFirst: boolean;
}

/**
 * One test of a context value's membership, with literals: `context.x.contains(literal)`,
 * `.containsAny([…])`, `.containsAll([…])`, `.isEmpty()` (no literals), or `memberOf` —
 * `[…].contains(context.x)`.
 */
export interface MembershipTest {
  readonly operator: "contains" | "containsAny" | "containsAll" | "isEmpty" | "memberOf";
  readonly literals: readonly Primitive[];
}

/**
 * `context.x like "pattern"`: the pattern's pieces between its wildcards (`*`), in order (an empty
 * first or last piece: it starts or ends with one). Matched here as Cedar matches it: a wildcard
 * stands for any run of characters, the empty one included; everything else for itself (`\*` is a
 * literal star).
 */
export interface LikeTest {
  readonly operator: "like";
  /** The literal text between wildcards (`"a*b*"` → `["a", "b", ""]`): one more than there are wildcards. */
  readonly pieces: readonly string[];
}

/** An integer or a string: what Cedar's JSON holds exactly, and compares here as Cedar does. */
type Primitive = number | string;

/** A context value (`context.usage.callsThisMinute`: its path) that the policies only test with literals. */
export interface ComparedPath {
  readonly path: readonly string[];
  readonly comparisons: readonly LiteralTest[];
}

/** A test of a context value with literals only: what the value stands by in the memo's key. */
export type LiteralTest = ContextComparison | MembershipTest | LikeTest;

const MEMBERSHIP_METHODS: ReadonlySet<string> = new Set(["contains", "containsAny", "containsAll"]);

/**
 * The context values that the given policies (in Cedar's JSON form: their `conditions`) only ever
 * test with literals, each with every test made of it; in a fixed order.
 */
export function comparedContextPaths(policies: readonly { conditions: unknown[] }[]): readonly ComparedPath[] {
  const compared = new Map<string, { path: string[]; comparisons: LiteralTest[] }>();
  const usedWhole = new Set<string>();
  let contextUsedWhole = false;
  const walk = (node: Json): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
      return;
    }
    if (!isObject(node)) return;
    const comparison = asComparison(node) ?? asMembershipTest(node) ?? asLikeTest(node);
    if (comparison !== undefined) {
      const key = JSON.stringify(comparison.path);
      let entry = compared.get(key);
      if (entry === undefined) compared.set(key, (entry = { path: comparison.path, comparisons: [] }));
      entry.comparisons.push(comparison.comparison);
      return;
    }
    const path = contextPath(node);
    if (path !== undefined) {
      usedWhole.add(JSON.stringify(path));
      return;
    }
    if (node["Var"] === "context") {
      contextUsedWhole = true;
      return;
    }
    // `context has a.b`, `context.a has b`: ask whether a value is there, never what it is.
    const has = node["has"];
    if (isObject(has) && isObject(has["left"]) && (has["left"]["Var"] === "context" || contextPath(has["left"]) !== undefined)) return;
    for (const key of Object.keys(node)) walk(node[key] as Json);
  };
  for (const policy of policies) walk(policy.conditions as Json);
  if (contextUsedWhole) return [];
  const result: ComparedPath[] = [];
  for (const { path, comparisons } of compared.values()) {
    // The value, or a record holding it, used whole somewhere: its every detail may matter.
    let whole = false;
    for (let length = 1; length <= path.length && !whole; length++) whole = usedWhole.has(JSON.stringify(path.slice(0, length)));
    if (!whole) result.push({ path, comparisons });
  }
  return result;
}

/** `context.a.b` (a chain of attribute reads from `context`): its path; else undefined. */
function contextPath(node: Json): string[] | undefined {
  const path: string[] = [];
  let current: Json = node;
  while (isObject(current) && isObject(current["."])) {
    const read = current["."] as { [key: string]: Json };
    if (typeof read["attr"] !== "string") return undefined;
    path.push(read["attr"]);
    current = read["left"] as Json;
  }
  return path.length > 0 && isObject(current) && current["Var"] === "context" ? path.reverse() : undefined;
}

/** `context.a op literal` or `literal op context.a`: the path and the comparison; else undefined. */
function asComparison(node: { [key: string]: Json }): { path: string[]; comparison: ContextComparison } | undefined {
  const keys = Object.keys(node);
  const operator = keys[0];
  if (keys.length !== 1 || operator === undefined || !COMPARISONS.has(operator)) return undefined;
  const operands = node[operator];
  if (!isObject(operands)) return undefined;
  const left = operands["left"] as Json;
  const right = operands["right"] as Json;
  for (const [value, other, literalFirst] of [
    [left, right, false],
    [right, left, true],
  ] as const) {
    const path = contextPath(value);
    const literal = literalOf(other, operator as ComparisonOperator);
    if (path !== undefined && literal !== undefined) return { path, comparison: { operator: operator as ComparisonOperator, literal, literalFirst } };
  }
  return undefined;
}

/** A literal whose comparisons are worked out here exactly as Cedar works them out: a string only for `==` and `!=`. */
function literalOf(node: Json, operator: ComparisonOperator): Primitive | undefined {
  const literal = primitiveOf(node);
  return typeof literal === "string" && operator !== "==" && operator !== "!=" ? undefined : literal;
}

/**
 * `context.a.contains(literal)`, `context.a.containsAny([literals])`, `context.a.containsAll([literals])`,
 * `context.a.isEmpty()` or `[literals].contains(context.a)`: the path and the test; else undefined.
 */
function asMembershipTest(node: { [key: string]: Json }): { path: string[]; comparison: MembershipTest } | undefined {
  const keys = Object.keys(node);
  const method = keys[0];
  if (keys.length !== 1 || method === undefined) return undefined;
  const operands = node[method];
  if (!isObject(operands)) return undefined;
  if (method === "isEmpty") {
    const path = contextPath(operands["arg"] as Json);
    return path === undefined ? undefined : { path, comparison: { operator: "isEmpty", literals: [] } };
  }
  if (!MEMBERSHIP_METHODS.has(method)) return undefined;
  const left = operands["left"] as Json;
  const right = operands["right"] as Json;
  const path = contextPath(left);
  if (path !== undefined) {
    const literals = method === "contains" ? primitiveOf(right) : primitiveSetOf(right);
    if (literals === undefined) return undefined;
    return { path, comparison: { operator: method as MembershipTest["operator"], literals: Array.isArray(literals) ? literals : [literals] } };
  }
  const member = contextPath(right);
  const literals = method === "contains" ? primitiveSetOf(left) : undefined;
  return member !== undefined && literals !== undefined ? { path: member, comparison: { operator: "memberOf", literals } } : undefined;
}

/** The longest piece between two wildcards matched here (longer: the value is keyed by itself). */
const MAX_INNER_PIECE = 200;

/** `context.a like "pattern"`: the path and the test; else undefined. */
function asLikeTest(node: { [key: string]: Json }): { path: string[]; comparison: LikeTest } | undefined {
  const keys = Object.keys(node);
  if (keys.length !== 1 || keys[0] !== "like") return undefined;
  const operands = node["like"];
  if (!isObject(operands)) return undefined;
  const path = contextPath(operands["left"] as Json);
  const pieces = likePieces(operands["pattern"] as Json);
  if (path === undefined || pieces === undefined) return undefined;
  // A long piece between wildcards makes the search for it super-linear on hostile text (it would
  // run on every memo lookup): such a value is keyed by itself instead.
  if (pieces.length > 2 && pieces.some((piece, i) => i > 0 && i < pieces.length - 1 && piece.length > MAX_INNER_PIECE)) return undefined;
  return { path, comparison: { operator: "like", pieces } };
}

/**
 * A `like` pattern's pieces between its wildcards (see {@link LikeTest}), from Cedar's JSON of it:
 * its elements, each "Wildcard" or `{ "Literal": one character }`; undefined for anything else.
 *
 * @example
 * ```ts
 * likePieces([{ Literal: "a" }, "Wildcard"]); // ["a", ""]: like "a*"
 * ```
 */
export function likePieces(pattern: Json): string[] | undefined {
  if (!Array.isArray(pattern)) return undefined;
  const pieces = [""];
  for (const element of pattern) {
    if (element === "Wildcard") pieces.push("");
    else if (isObject(element) && Object.keys(element).length === 1 && typeof element["Literal"] === "string") pieces[pieces.length - 1] += element["Literal"];
    else return undefined;
  }
  return pieces;
}

/** A literal integer (safe) or string; else undefined. */
function primitiveOf(node: Json): Primitive | undefined {
  if (!isObject(node) || !("Value" in node)) return undefined;
  const value = node["Value"];
  return isPrimitive(value) ? value : undefined;
}

/** An integer (safe: Cedar's JSON rounds larger ones) or a string. */
function isPrimitive(value: unknown): value is Primitive {
  return (typeof value === "number" && Number.isSafeInteger(value)) || typeof value === "string";
}

/** A set literal of literal integers (safe) and strings only; else undefined. */
function primitiveSetOf(node: Json): Primitive[] | undefined {
  if (!isObject(node) || !Array.isArray(node["Set"])) return undefined;
  const literals: Primitive[] = [];
  for (const element of node["Set"]) {
    const literal = primitiveOf(element);
    if (literal === undefined) return undefined;
    literals.push(literal);
  }
  return literals;
}

/**
 * What stands for the (pruned) context in the decision cache's key: its JSON, less each compared
 * value that is an integer, a string or a set of them, followed by a code per compared path, in
 * order: its type and the outcome of each of its tests (`l`, `s` or `S`, then `T`, `F` or `E` — an
 * error — each), or `-` when it is absent, `r` when it is of another type (then it is in the JSON).
 */
export function contextKey(context: Readonly<Record<string, CedarValue>>, compared: readonly ComparedPath[]): string {
  if (compared.length === 0) return JSON.stringify(context);
  let view = context;
  let codes = "";
  for (const { path, comparisons } of compared) {
    const value = valueAt(context, path);
    const type = typeof value === "number" ? "l" : typeof value === "string" ? "s" : isPrimitiveSet(value) ? "S" : undefined;
    if (type !== undefined) {
      codes += type;
      for (const comparison of comparisons) codes += outcome(value as Primitive | readonly Primitive[], comparison);
      view = without(view, path, 0);
    } else {
      codes += value === undefined ? "-" : "r";
    }
  }
  return `${JSON.stringify(view)}\n${codes}`;
}

/** A set (a JSON array) of integers (safe) and strings only: its elements are compared here exactly as Cedar compares them. */
function isPrimitiveSet(value: CedarValue | undefined): value is readonly Primitive[] {
  if (!Array.isArray(value)) return false;
  for (const element of value as readonly unknown[]) if (!isPrimitive(element)) return false;
  return true;
}

/**
 * The outcome of one test, as Cedar evaluates it: values of different types are never equal (a
 * set is never equal to an integer or a string), only integers are ordered, and only a set has
 * members (a membership test of anything else is a type error). `memberOf` (a literal set's
 * `contains`) is equality with each literal: never an error.
 */
function outcome(value: Primitive | readonly Primitive[], test: LiteralTest): "T" | "F" | "E" {
  if (test.operator === "like") return typeof value !== "string" ? "E" : matchesLike(value, test.pieces) ? "T" : "F";
  if ("literals" in test) {
    const { operator, literals } = test;
    if (operator === "memberOf") return typeof value !== "object" && literals.includes(value) ? "T" : "F";
    if (typeof value !== "object") return "E";
    const holds =
      operator === "isEmpty"
        ? value.length === 0
        : operator === "containsAll"
          ? literals.every((literal) => value.includes(literal))
          : literals.some((literal) => value.includes(literal));
    return holds ? "T" : "F";
  }
  const { operator, literal, literalFirst } = test;
  if (typeof value === "object") return operator === "==" ? "F" : operator === "!=" ? "T" : "E";
  const left = literalFirst ? literal : value;
  const right = literalFirst ? value : literal;
  if (operator === "==" || operator === "!=") return (left === right) === (operator === "==") ? "T" : "F";
  if (typeof left !== "number" || typeof right !== "number") return "E";
  const holds = operator === "<" ? left < right : operator === "<=" ? left <= right : operator === ">" ? left > right : left >= right;
  return holds ? "T" : "F";
}

/**
 * Whether `text` matches a `like` pattern's pieces: the first piece is a prefix, the last a suffix,
 * and the ones between occur in order without overlapping (the leftmost occurrence of each is as
 * good as any: it leaves the most text for the rest). Code units stand in for characters: the
 * strings are well-formed (the request shape refuses lone surrogates), so a piece never matches
 * half a character.
 *
 * @example
 * ```ts
 * matchesLike("invoice-42-eu", ["invoice-", "-", ""]); // true: like "invoice-*-*"
 * matchesLike("invoice", ["invoice-", ""]);             // false
 * ```
 */
export function matchesLike(text: string, pieces: readonly string[]): boolean {
  const first = pieces[0] as string;
  if (pieces.length === 1) return text === first;
  const last = pieces[pieces.length - 1] as string;
  if (text.length < first.length + last.length || !text.startsWith(first) || !text.endsWith(last)) return false;
  let at = first.length;
  const end = text.length - last.length;
  for (let i = 1; i < pieces.length - 1; i++) {
    const piece = pieces[i] as string;
    const found = text.indexOf(piece, at);
    if (found === -1 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}

/** The value at `path` inside records (own keys only); undefined when a step is missing or not a record. */
function valueAt(context: Readonly<Record<string, CedarValue>>, path: readonly string[]): CedarValue | undefined {
  let current: CedarValue = context;
  for (const step of path) {
    if (!isPlainRecord(current) || !Object.hasOwn(current, step)) return undefined;
    current = (current as Readonly<Record<string, CedarValue>>)[step] as CedarValue;
  }
  return current;
}

/** A copy of the record without the value at `path` (the records on the way copied, nothing else). */
function without(record: Readonly<Record<string, CedarValue>>, path: readonly string[], depth: number): Readonly<Record<string, CedarValue>> {
  const step = path[depth] as string;
  const copy: Record<string, CedarValue> = {};
  for (const key of Object.keys(record)) {
    if (key !== step) setOwnKey(copy, key, record[key]);
    else if (depth < path.length - 1) setOwnKey(copy, key, without(record[key] as Readonly<Record<string, CedarValue>>, path, depth + 1));
  }
  return copy;
}
