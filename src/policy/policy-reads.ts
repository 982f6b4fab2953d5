/**
 * What a policy set can read, worked out from the policies' syntax trees, and the pruning of a
 * request down to that. Marshalling into wasm costs ~10-20 µs per context key or entity attribute,
 * and a Cedar policy can only read an attribute by naming it, so dropping the others is exact.
 * @module
 */
import type { CedarEntity, CedarValue } from "./request-shape.js";

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
  /** Some policy reads tags (`getTag` / `hasTag`). */
  readonly tags: boolean;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Collects what the given policies (in Cedar's JSON form: their `conditions`) read. */
export function policyReads(policies: readonly { conditions: unknown[] }[]): PolicyReads {
  const reads = {
    context: new Set<string>(),
    principal: new Set<string>(),
    resource: new Set<string>(),
    anywhere: new Set<string>(),
    wholeContext: false,
    tags: false,
  };
  const read = (left: Json, attrs: readonly string[]) => {
    const variable = isObject(left) && typeof left["Var"] === "string" ? left["Var"] : undefined;
    const into =
      variable === "context" ? reads.context : variable === "principal" ? reads.principal : variable === "resource" ? reads.resource : reads.anywhere;
    for (const attr of attrs) into.add(attr);
    if (variable === undefined) walk(left);
  };
  const walk = (node: Json): void => {
    if (Array.isArray(node)) {
      node.forEach(walk);
      return;
    }
    if (!isObject(node)) return;
    for (const [key, value] of Object.entries(node)) {
      if ((key === "." || key === "has") && isObject(value) && "left" in value) {
        const attr = value["attr"];
        read(value["left"] as Json, Array.isArray(attr) ? attr.filter((a): a is string => typeof a === "string") : typeof attr === "string" ? [attr] : []);
        // `has a.b.c` reads a nested path: the first segment is the attribute, the rest live inside it.
        if (Array.isArray(attr)) for (const nested of attr.slice(1)) if (typeof nested === "string") reads.anywhere.add(nested);
        continue;
      }
      if (key === "getTag" || key === "hasTag") reads.tags = true;
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
  return reads.wholeContext ? context : pruneRecord(context, reads.context, reads.anywhere);
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
  let pruned: Record<string, CedarValue> | undefined;
  for (const key in record) {
    if (!wanted.has(key) && !anywhere.has(key)) {
      pruned ??= { ...record };
      delete pruned[key];
    }
  }
  return pruned ?? record;
}

function isObject(value: unknown): value is { [key: string]: Json } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
