/**
 * Reading the scopes of permit policies (Cedar's JSON form, from `engine.policyScopes()`) without a
 * request: which workloads a permit can apply to, which actions and resources it grants, and
 * whether a recorded decision falls inside it. Conditions are not read: a scope is what a permit
 * can grant at most. Used by `inventory` for least-privilege candidates.
 * @module
 */
import type { CedarEngine } from "../policy/cedar-engine.js";
import { entityRef } from "../policy/decision.js";
import { modelResource } from "../policy/model-resource.js";
import type { EntityJson, ScopeJson } from "../policy/policy-scopes.js";
import { NAMESPACE } from "../policy/request-builder.js";

export { principalMayMatch, type EntityJson } from "../policy/policy-scopes.js";
const WORKLOAD = `${NAMESPACE}::Workload`;
const GROUP = `${NAMESPACE}::Group`;
const MODEL = `${NAMESPACE}::Model`;
const PROVIDER = `${NAMESPACE}::Provider`;

/** The workload or group a principal scope names, if it names one (to find principals never seen). */
export function principalNamed(scope: unknown): EntityJson | undefined {
  const s = scope as ScopeJson;
  const entity = s.op === "==" || s.op === "in" ? s.entity : s.op === "is" ? s.in?.entity : undefined;
  return entity !== undefined && (entity.type === WORKLOAD || entity.type === GROUP) ? entity : undefined;
}

/** The action ids an action scope grants, or "any". An action group grants its member actions (and itself). */
export function actionsOf(engine: CedarEngine, scope: unknown): ReadonlySet<string> | "any" {
  const s = scope as ScopeJson;
  switch (s.op) {
    case "==":
      return new Set(s.entity ? [s.entity.id] : []);
    case "in": {
      const groups = s.entities ?? (s.entity ? [s.entity] : []);
      return new Set(groups.flatMap((group) => engine.actionsIn(group.id)));
    }
    default:
      return "any";
  }
}

/**
 * Whether a resource scope can match a recorded resource. `in` an entity matches the entity
 * itself and, for models, what the shipped entity model makes a member of it: a system inference
 * profile is in its base model, a model in its provider (read from the recorded id with
 * `modelResource`, as the runtime builds the entity). Approximation: an application inference
 * profile (an ARN) routes to a model the record does not name, so it never matches `in` a model
 * or provider here; other resources (tools, guardrails) have no parents.
 */
export function resourceMayMatch(scope: unknown, resource: EntityJson): boolean {
  const s = scope as ScopeJson;
  switch (s.op) {
    case "All":
      return true;
    case "==":
      return s.entity !== undefined && sameEntity(s.entity, resource);
    case "in":
      return s.entity !== undefined && isIn(resource, s.entity);
    case "is":
      return s.entity_type === resource.type && (s.in?.entity === undefined || isIn(resource, s.in.entity));
    default:
      return true;
  }
}

function sameEntity(a: EntityJson, b: EntityJson): boolean {
  return a.type === b.type && a.id === b.id;
}

function isIn(resource: EntityJson, ancestor: EntityJson): boolean {
  if (sameEntity(resource, ancestor)) return true;
  if (resource.type !== MODEL) return false;
  const model = modelResource(resource.id);
  if (ancestor.type === MODEL) return model.baseModel === ancestor.id;
  if (ancestor.type === PROVIDER) return model.provider === ancestor.id;
  return false;
}

/** An action scope in words: `any action`, `Converse`, `in [Converse, ConverseStream]`, `in ToolUse`. */
export function describeActionScope(scope: unknown): string {
  const s = scope as ScopeJson;
  switch (s.op) {
    case "All":
      return "any action";
    case "==":
      return s.entity?.id ?? "?";
    case "in":
      return s.entities ? `in [${s.entities.map((e) => e.id).join(", ")}]` : `in ${s.entity?.id ?? "?"}`;
    default:
      return JSON.stringify(scope);
  }
}

/** A resource scope in words: `any resource`, `== Bedrock::Tool::"x"`, `in Bedrock::Model::"m"`, `is Bedrock::Tool`. */
export function describeResourceScope(scope: unknown): string {
  const s = scope as ScopeJson;
  const ref = (e: EntityJson | undefined) => (e ? entityRef(e.type, e.id) : "?");
  switch (s.op) {
    case "All":
      return "any resource";
    case "==":
      return `resource == ${ref(s.entity)}`;
    case "in":
      return `resource in ${ref(s.entity)}`;
    case "is":
      return `resource is ${s.entity_type}${s.in?.entity ? ` in ${ref(s.in.entity)}` : ""}`;
    default:
      return JSON.stringify(scope);
  }
}

/** `Bedrock::Model::"id"` read back into its type and id (the form decisions and records use); undefined when it is not one. */
export function parseEntityRef(ref: string): EntityJson | undefined {
  const at = ref.indexOf('::"');
  if (at <= 0) return undefined;
  try {
    const id: unknown = JSON.parse(ref.slice(at + 2));
    return typeof id === "string" ? { type: ref.slice(0, at), id } : undefined;
  } catch {
    return undefined;
  }
}
