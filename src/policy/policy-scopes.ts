/**
 * Reading a policy's scope (Cedar's JSON form, from `engine.policyScopes()`) without a request:
 * which workloads a permit can apply to. Conditions are not read: a scope is what a permit can
 * grant at most. Session policies (credentials/) and the CLI's inventory read scopes this way.
 * @module
 */
import { NAMESPACE } from "./request-builder.js";
import { ownValue } from "../validation.js";

/** An entity as Cedar's JSON names it. */
export interface EntityJson {
  readonly type: string;
  readonly id: string;
}

/** A principal, action or resource scope in Cedar's JSON form. */
export interface ScopeJson {
  readonly op?: string;
  readonly entity?: EntityJson;
  readonly entities?: readonly EntityJson[];
  readonly entity_type?: string;
  readonly in?: { readonly entity?: EntityJson };
}

const WORKLOAD = `${NAMESPACE}::Workload`;
const GROUP = `${NAMESPACE}::Group`;

/**
 * Whether a principal scope can match a workload with these groups: any principal, the workload
 * itself, or one of its groups (`==`, `in`, `is … in`). A scope form this version cannot read may
 * match: what is derived from it can only be wider, never silently narrower.
 */
export function principalMayMatch(scope: unknown, identity: { readonly id: string; readonly groups?: readonly string[] }): boolean {
  const s = scope as ScopeJson;
  const groups = ownValue(identity, "groups") ?? [];
  const isSelfOrGroup = (entity: EntityJson | undefined): boolean =>
    entity !== undefined && ((entity.type === WORKLOAD && entity.id === identity.id) || (entity.type === GROUP && groups.includes(entity.id)));
  switch (s.op) {
    case "All":
      return true;
    case "==":
      return s.entity?.type === WORKLOAD && s.entity.id === identity.id;
    case "in":
      return isSelfOrGroup(s.entity);
    case "is":
      return s.entity_type === WORKLOAD && (s.in === undefined || isSelfOrGroup(s.in.entity));
    default:
      return true;
  }
}
