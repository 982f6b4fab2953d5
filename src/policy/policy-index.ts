/**
 * Which policies can apply to a request, found without evaluating any of them. A Cedar policy
 * applies only when its scope matches — `principal` / `action` / `resource`, each `==`, `in`,
 * `is` or `is … in` — and a scope reads nothing but the request's three entity references and the
 * entity hierarchy the request carries. So the policies whose scope cannot match can be left out
 * of an evaluation without changing its answer: not the decision, not the determining policies,
 * not an error (a condition is only evaluated once its scope matched).
 *
 * Policies are bucketed by their principal and resource anchors (any, `== E`, `in E`); a request
 * looks up the buckets of its principal and resource and their ancestors, then checks each
 * candidate's whole scope. A scope form this version cannot read is treated as matching: a slice
 * may hold a policy that does not apply (Cedar then skips it), never miss one that does.
 * @module
 */
import { entityRef } from "./decision.js";
import type { CedarEntity, EntityUid } from "./request-shape.js";

/** A policy as the index needs it: its scope in Cedar's JSON form. */
export interface ScopedPolicy {
  readonly principal: unknown;
  readonly action: unknown;
  readonly resource: unknown;
}

/** The parents of each entity of a request, by reference (`Type::"id"`), as Cedar will see them. */
export interface Hierarchy {
  get(ref: string): readonly string[] | undefined;
  has(ref: string): boolean;
}

const NO_ENTITIES: Hierarchy = new Map();

const ANY = "*";

export class PolicyIndex {
  readonly #policies: readonly ScopedPolicy[];
  /** Policy positions by `<principal anchor>\n<resource anchor>`, in load order. */
  readonly #buckets = new Map<string, number[]>();
  /** The entities a principal scope names (`==`, `in`, `is … in`). */
  readonly #principalAnchors = new Set<string>();

  constructor(policies: readonly ScopedPolicy[]) {
    this.#policies = policies;
    policies.forEach((policy, position) => {
      const principalAnchor = anchorOf(policy.principal);
      if (principalAnchor !== ANY) this.#principalAnchors.add(principalAnchor.slice(1));
      const key = `${principalAnchor}\n${anchorOf(policy.resource)}`;
      const bucket = this.#buckets.get(key);
      if (bucket) bucket.push(position);
      else this.#buckets.set(key, [position]);
    });
  }

  /**
   * Whether some policy's principal scope names this entity. When none does, which policies can
   * apply depends on the principal's type and ancestors only, not on which entity it is: a scope
   * compares the principal with the entity it names, and an unreadable one matches any.
   */
  namesPrincipal(ref: string): boolean {
    return this.#principalAnchors.has(ref);
  }

  /**
   * The positions (in load order) of the policies whose scope can match a request for these
   * principal, action and resource, given the hierarchy of the request's entities.
   */
  applicable(principal: EntityUid, action: EntityUid, resource: EntityUid, hierarchy: Hierarchy): number[] {
    const principalRef = entityRef(principal.type, principal.id);
    const actionRef = entityRef(action.type, action.id);
    const resourceRef = entityRef(resource.type, resource.id);
    const principalAncestors = ancestorsOf(principalRef, hierarchy);
    const actionAncestors = ancestorsOf(actionRef, hierarchy);
    const resourceAncestors = ancestorsOf(resourceRef, hierarchy);
    const principalAnchors = anchorsOf(principalRef, principalAncestors);
    const resourceAnchors = anchorsOf(resourceRef, resourceAncestors);
    const found: number[] = [];
    for (const p of principalAnchors) {
      for (const r of resourceAnchors) {
        const bucket = this.#buckets.get(`${p}\n${r}`);
        if (bucket === undefined) continue;
        for (const position of bucket) {
          const policy = this.#policies[position] as ScopedPolicy;
          if (
            scopeMatches(policy.principal, principal.type, principalRef, principalAncestors) &&
            scopeMatches(policy.action, action.type, actionRef, actionAncestors) &&
            scopeMatches(policy.resource, resource.type, resourceRef, resourceAncestors)
          ) {
            found.push(position);
          }
        }
      }
    }
    // Buckets are visited in anchor order: the slice is kept in load order, whatever the buckets.
    return found.sort((a, b) => a - b);
  }
}

/**
 * Whether the policy's scope names neither a principal nor a resource to anchor it (`principal`,
 * `principal is T`, or a form this version cannot read, likewise for the resource): it can apply
 * to every workload and every model, and is in the slice of every request for its action.
 */
export function isUnanchored(policy: ScopedPolicy): boolean {
  return anchorOf(policy.principal) === ANY && anchorOf(policy.resource) === ANY;
}

/**
 * Whether this version reads every part of the policy's scope (each `op` and entity known). Only
 * then is a policy found applicable by the index certain to match: its scope can be left to the
 * index instead of being evaluated again in wasm.
 */
export function isReadableScope(policy: ScopedPolicy): boolean {
  const entityScope = (scope: unknown): boolean => {
    const s = (scope ?? {}) as ScopeJson;
    switch (s.op) {
      case "All":
        return true;
      case "==":
      case "in":
        return refOf(s.entity) !== undefined;
      case "is":
        return typeof s.entity_type === "string" && (s.in === undefined || refOf(s.in.entity) !== undefined);
      default:
        return false;
    }
  };
  const action = (policy.action ?? {}) as ScopeJson;
  const actionReadable =
    action.op === "All" ||
    (action.op === "==" && refOf(action.entity) !== undefined) ||
    (action.op === "in" &&
      (Array.isArray(action.entities) ? action.entities.every((entity) => refOf(entity) !== undefined) : refOf(action.entity) !== undefined));
  return entityScope(policy.principal) && actionReadable && entityScope(policy.resource);
}

/**
 * The parents of every entity given, on top of a `base` hierarchy already checked (the schema's
 * actions, worked out once). Throws on what Cedar would refuse whole — one entity given twice, a
 * cycle in the hierarchy — so that a request is never decided on a part of it Cedar would not accept.
 */
export function hierarchyOf(entities: readonly CedarEntity[], base: Hierarchy = NO_ENTITIES): Hierarchy {
  const own = new Map<string, string[]>();
  for (const entity of entities) {
    const ref = entityRef(entity.uid.type, entity.uid.id);
    if (own.has(ref) || base.has(ref)) throw new TypeError(`the entity ${ref} is given twice`);
    own.set(
      ref,
      entity.parents.map((parent) => entityRef(parent.type, parent.id)),
    );
  }
  const hierarchy: Hierarchy = base === NO_ENTITIES ? own : { get: (ref) => own.get(ref) ?? base.get(ref), has: (ref) => own.has(ref) || base.has(ref) };
  // The base has no cycle of its own: one through these entities starts from one of them.
  assertAcyclic(own.keys(), hierarchy);
  return hierarchy;
}

function assertAcyclic(roots: Iterable<string>, hierarchy: Hierarchy): void {
  // Depth-first with an explicit stack: a hostile chain of thousands of parents must not overflow.
  const done = new Set<string>();
  const onPath = new Set<string>();
  for (const root of roots) {
    if (done.has(root)) continue;
    const stack: { ref: string; next: number }[] = [{ ref: root, next: 0 }];
    onPath.add(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { ref: string; next: number };
      const parents = hierarchy.get(top.ref) ?? [];
      if (top.next < parents.length) {
        const parent = parents[top.next++] as string;
        if (onPath.has(parent)) throw new TypeError(`the entity hierarchy has a cycle through ${parent}`);
        if (done.has(parent)) continue;
        onPath.add(parent);
        stack.push({ ref: parent, next: 0 });
      } else {
        stack.pop();
        onPath.delete(top.ref);
        done.add(top.ref);
      }
    }
  }
}

/** Every entity `ref` is transitively `in` (itself excluded), through the request's hierarchy; cycles are harmless. */
export function ancestorsOf(ref: string, hierarchy: Hierarchy): Set<string> {
  const ancestors = new Set<string>();
  const pending = [...(hierarchy.get(ref) ?? [])];
  while (pending.length > 0) {
    const next = pending.pop() as string;
    if (ancestors.has(next)) continue;
    ancestors.add(next);
    for (const parent of hierarchy.get(next) ?? []) pending.push(parent);
  }
  return ancestors;
}

interface ScopeJson {
  readonly op?: unknown;
  readonly entity?: unknown;
  readonly entities?: unknown;
  readonly entity_type?: unknown;
  readonly in?: { readonly entity?: unknown };
}

/** `Type::"id"` of an entity in a scope, or undefined for a form this version does not read (a template slot). */
function refOf(entity: unknown): string | undefined {
  const uid = (entity as { __entity?: unknown } | undefined)?.__entity ?? entity;
  const { type, id } = (uid ?? {}) as { type?: unknown; id?: unknown };
  return typeof type === "string" && typeof id === "string" ? entityRef(type, id) : undefined;
}

/** The bucket a principal or resource scope is filed under: `=ref`, `<ref`, or any. */
function anchorOf(scope: unknown): string {
  const s = (scope ?? {}) as ScopeJson;
  if (s.op === "==") {
    const ref = refOf(s.entity);
    return ref === undefined ? ANY : `=${ref}`;
  }
  if (s.op === "in") {
    const ref = refOf(s.entity);
    return ref === undefined ? ANY : `<${ref}`;
  }
  if (s.op === "is" && s.in !== undefined) {
    const ref = refOf(s.in.entity);
    return ref === undefined ? ANY : `<${ref}`;
  }
  return ANY;
}

/** The buckets that can hold a policy matching this entity: any, `== it`, `in it` or `in` one of its ancestors. */
function anchorsOf(ref: string, ancestors: ReadonlySet<string>): string[] {
  const anchors = [ANY, `=${ref}`, `<${ref}`];
  for (const ancestor of ancestors) anchors.push(`<${ancestor}`);
  return anchors;
}

function isIn(target: string | undefined, ref: string, ancestors: ReadonlySet<string>): boolean {
  return target === undefined || target === ref || ancestors.has(target);
}

/**
 * Cedar's scope semantics — `==`, `in` (an entity, or for actions a list), `is`, `is … in` — for
 * the principal, action or resource with this type, reference and ancestors; an unreadable form matches.
 */
function scopeMatches(scope: unknown, type: string, ref: string, ancestors: ReadonlySet<string>): boolean {
  const s = (scope ?? {}) as ScopeJson;
  switch (s.op) {
    case "All":
      return true;
    case "==": {
      const target = refOf(s.entity);
      return target === undefined || target === ref;
    }
    case "in":
      if (Array.isArray(s.entities)) return s.entities.some((entity) => isIn(refOf(entity), ref, ancestors));
      return isIn(refOf(s.entity), ref, ancestors);
    case "is":
      if (typeof s.entity_type !== "string") return true;
      return s.entity_type === type && (s.in === undefined || isIn(refOf(s.in.entity), ref, ancestors));
    default:
      return true;
  }
}
