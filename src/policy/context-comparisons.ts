/**
 * Decision memoization by what the policies compare. Most context values a policy reads it only
 * compares with a literal: `context.maxTokens <= 4096`, `context.usage.callsThisMinute < 60`,
 * `context.environment == "production"`. Such a value reaches the decision only through the outcomes
 * of those comparisons, so two requests that differ only in it, with every one of its comparisons
 * coming out the same, get the same decision. The decision cache's key stands for such a value by
 * its type and those outcomes, not by the value itself: a new `maxTokens`, a usage counter one
 * higher, a token one second closer to expiry are decided from the memo instead of crossing into
 * wasm again — exactly, because nothing else of the value can reach a decision.
 *
 * A value is compared only when every use of it, in every condition of the slice, is a comparison
 * (`==`, `!=`, `<`, `<=`, `>`, `>=`) with a literal integer (safe: Cedar's JSON rounds larger
 * ones) or, for `==` / `!=`, a literal string — and nothing uses it or a record holding it whole
 * (`like`, `contains`, `in`, arithmetic, a method, a record or set literal, `context` itself). A
 * value of any other type (a record, a set, a boolean, an entity) is keyed by itself, as before.
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

/** A context value (`context.usage.callsThisMinute`: its path) that the policies only compare with literals. */
export interface ComparedPath {
  readonly path: readonly string[];
  readonly comparisons: readonly ContextComparison[];
}

/**
 * The context values that the given policies (in Cedar's JSON form: their `conditions`) only ever
 * compare with literals, each with every comparison made of it; in a fixed order.
 */
export function comparedContextPaths(policies: readonly { conditions: unknown[] }[]): readonly ComparedPath[] {
  const compared = new Map<string, { path: string[]; comparisons: ContextComparison[] }>();
  const usedWhole = new Set<string>();
  let contextUsedWhole = false;
  const walk = (node: Json): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
      return;
    }
    if (!isObject(node)) return;
    const comparison = asComparison(node);
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

/** A literal whose comparisons are worked out here exactly as Cedar works them out. */
function literalOf(node: Json, operator: ComparisonOperator): number | string | undefined {
  if (!isObject(node) || !("Value" in node)) return undefined;
  const value = node["Value"];
  if (typeof value === "number" && Number.isSafeInteger(value)) return value;
  if (typeof value === "string" && (operator === "==" || operator === "!=")) return value;
  return undefined;
}

/**
 * What stands for the (pruned) context in the decision cache's key: its JSON, less each compared
 * value that is an integer or a string, followed by a code per compared path, in order: its type
 * and the outcome of each of its comparisons (`l` or `s`, then `T`, `F` or `E` — an error — each),
 * or `-` when it is absent, `r` when it is of another type (then it is in the JSON).
 */
export function contextKey(context: Readonly<Record<string, CedarValue>>, compared: readonly ComparedPath[]): string {
  if (compared.length === 0) return JSON.stringify(context);
  let view = context;
  let codes = "";
  for (const { path, comparisons } of compared) {
    const value = valueAt(context, path);
    if (typeof value === "number" || typeof value === "string") {
      codes += typeof value === "number" ? "l" : "s";
      for (const comparison of comparisons) codes += outcome(value, comparison);
      view = without(view, path, 0);
    } else {
      codes += value === undefined ? "-" : "r";
    }
  }
  return `${JSON.stringify(view)}\n${codes}`;
}

/** The outcome of one comparison, as Cedar evaluates it: values of different types are never equal, and only integers are ordered. */
function outcome(value: number | string, { operator, literal, literalFirst }: ContextComparison): "T" | "F" | "E" {
  const left = literalFirst ? literal : value;
  const right = literalFirst ? value : literal;
  if (operator === "==" || operator === "!=") return (left === right) === (operator === "==") ? "T" : "F";
  if (typeof left !== "number" || typeof right !== "number") return "E";
  const holds = operator === "<" ? left < right : operator === "<=" ? left <= right : operator === ">" ? left > right : left >= right;
  return holds ? "T" : "F";
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
