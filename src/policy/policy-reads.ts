/**
 * What a policy set can read, worked out from the policies' syntax trees, and the pruning of a
 * request down to that. Marshalling into wasm costs ~10-20 µs per context key or entity attribute,
 * and a Cedar policy can only read an attribute by naming it, so dropping the others is exact.
 * @module
 */
import type { CedarEntity, CedarValue } from "./request-shape.js";
import { setOwnKey } from "../validation.js";

/** The attributes a policy set reads, by where it reads them. */
export interface PolicyReads {
  /** Context keys read as `context.key`, `context has key` or `context["key"]`. */
  readonly context: ReadonlySet<string>;
  /** Attributes read on the principal. */
  readonly principal: ReadonlySet<string>;
  /** Attributes read on the resource. */
  readonly resource: ReadonlySet<string>;
  /** Attributes read on anything else (an entity literal, a record): kept on every entity and in the context. */
  readonly anywhere: ReadonlySet<string>;
  /** `context` is used whole (e.g. compared to a record): nothing is pruned from it. */
  readonly wholeContext: boolean;
  /**
   * Attributes whose value some policy uses whole (compares, passes to a method) rather than only
   * reading inside it: a record held there is kept whole. The others are pruned to what is read in them.
   */
  readonly usedWhole: ReadonlySet<string>;
  /** Some policy reads tags (`getTag` / `hasTag`). */
  readonly tags: boolean;
  /**
   * Whose place in the entity hierarchy a condition asks about (`x in E`, `x is T in E`): the
   * principal's, the action's, the resource's, or — when the left side is anything else (an entity
   * literal, an attribute holding an entity) — possibly any entity's.
   */
  readonly hierarchy: { readonly principal: boolean; readonly action: boolean; readonly resource: boolean; readonly any: boolean };
}

/** A node of Cedar's JSON form of a policy (its `conditions`). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Collects what the given policies (in Cedar's JSON form: their `conditions`) read. */
export function policyReads(policies: readonly { conditions: unknown[] }[]): PolicyReads {
  const reads = {
    context: new Set<string>(),
    principal: new Set<string>(),
    resource: new Set<string>(),
    anywhere: new Set<string>(),
    usedWhole: new Set<string>(),
    wholeContext: false,
    tags: false,
    hierarchy: { principal: false, action: false, resource: false, any: false },
  };
  const asksHierarchy = (left: Json | undefined) => {
    const variable = isObject(left) ? left["Var"] : undefined;
    if (variable === "principal" || variable === "action" || variable === "resource") reads.hierarchy[variable] = true;
    else reads.hierarchy.any = true;
  };
  const read = (left: Json, attrs: readonly string[]) => {
    const variable = isObject(left) && typeof left["Var"] === "string" ? left["Var"] : undefined;
    const into =
      variable === "context" ? reads.context : variable === "principal" ? reads.principal : variable === "resource" ? reads.resource : reads.anywhere;
    for (const attr of attrs) into.add(attr);
    // What the left side is only read into, never used whole.
    if (variable === undefined) walk(left, true);
  };
  const walk = (node: Json, readInto = false): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
      return;
    }
    if (!isObject(node)) return;
    for (const [key, value] of Object.entries(node)) {
      if ((key === "." || key === "has") && isObject(value) && "left" in value) {
        const attr = value["attr"];
        const attrs = Array.isArray(attr) ? attr.filter((a): a is string => typeof a === "string") : typeof attr === "string" ? [attr] : [];
        // `x.a` whose value is not itself read into: the value of `a` is used whole.
        if (key === "." && !readInto) for (const a of attrs) reads.usedWhole.add(a);
        read(value["left"] as Json, attrs);
        // `has a.b.c` reads a nested path: the first segment is the attribute, the rest live inside it.
        if (Array.isArray(attr)) for (const nested of attr.slice(1)) if (typeof nested === "string") reads.anywhere.add(nested);
        continue;
      }
      if (key === "getTag" || key === "hasTag") reads.tags = true;
      if ((key === "in" || (key === "is" && isObject(value) && "in" in value)) && isObject(value)) asksHierarchy(value["left"]);
      if (key === "Var" && value === "context") reads.wholeContext = true;
      walk(value);
    }
  };
  for (const policy of policies) walk(policy.conditions as Json);
  return reads;
}

/** Which of the request's entities an entity is: attributes are read per role. */
export type EntityRole = "principal" | "resource" | "other";

/** The context with only the keys some policy reads. The record is shared, never mutated. */
export function pruneContext(context: Readonly<Record<string, CedarValue>>, reads: PolicyReads): Readonly<Record<string, CedarValue>> {
  if (reads.wholeContext) return context;
  const kept = pruneRecord(context, reads.context, reads.anywhere);
  // Records inside the context (a tool's input) are pruned too, to what policies read in them: a
  // 4 KB input of which a policy reads one field costs ~1.3 ms to send whole, ~0.2 ms pruned.
  let nested: Record<string, CedarValue> | undefined;
  for (const key of Object.keys(kept)) {
    const value = kept[key] as CedarValue;
    if (reads.usedWhole.has(key) || !isPlainRecord(value)) continue;
    const pruned = pruneNested(value, reads, 0);
    if (pruned !== value) {
      nested ??= { ...kept };
      nested[key] = pruned;
    }
  }
  return nested ?? kept;
}

/** A record of the request, not one of Cedar's escapes (`__entity`, `__extn`), which Cedar reads otherwise. */
export function isPlainRecord(value: CedarValue): value is Readonly<Record<string, CedarValue>> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !("__entity" in value) && !("__extn" in value);
}

function pruneNested(record: Readonly<Record<string, CedarValue>>, reads: PolicyReads, depth: number): Readonly<Record<string, CedarValue>> {
  if (depth > 32) return record;
  const keys = Object.keys(record);
  // Built only once something changes: most records are sent as they are.
  let pruned: Record<string, CedarValue> | undefined;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const value = record[key] as CedarValue;
    const kept = !reads.anywhere.has(key) ? undefined : !reads.usedWhole.has(key) && isPlainRecord(value) ? pruneNested(value, reads, depth + 1) : value;
    if (pruned === undefined && kept !== value) {
      pruned = {};
      for (let j = 0; j < i; j++) setOwnKey(pruned, keys[j] as string, record[keys[j] as string]);
    }
    if (pruned !== undefined && kept !== undefined) setOwnKey(pruned, key, kept);
  }
  return pruned ?? record;
}

/** The entity with only the attributes (and tags) some policy reads in its role. */
export function pruneEntity(entity: CedarEntity, role: EntityRole, reads: PolicyReads): CedarEntity {
  const wanted = role === "principal" ? reads.principal : role === "resource" ? reads.resource : reads.anywhere;
  const { tags, ...rest } = entity;
  return { ...rest, attrs: pruneRecord(entity.attrs, wanted, reads.anywhere), ...(tags && reads.tags && { tags }) };
}

function pruneRecord(
  record: Readonly<Record<string, CedarValue>>,
  wanted: ReadonlySet<string>,
  anywhere: ReadonlySet<string>,
): Readonly<Record<string, CedarValue>> {
  const keys = Object.keys(record);
  const kept = (key: string) => wanted.has(key) || anywhere.has(key);
  let first = 0;
  while (first < keys.length && kept(keys[first] as string)) first++;
  if (first === keys.length) return record;
  // Built up rather than copied and deleted from: an object deleted from turns slow to read and to serialize.
  const pruned: Record<string, CedarValue> = {};
  for (const key of keys) if (kept(key)) setOwnKey(pruned, key, record[key]);
  return pruned;
}

/** A JSON object node (not an array, not null). */
export function isObject(value: unknown): value is { [key: string]: Json } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
