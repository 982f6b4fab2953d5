/**
 * Builds the Cedar request for one governed call: the workload as principal (with its groups),
 * the command's action, the resource named in the input, and the call's context.
 * @module
 */
import type { CredentialFacts } from "../credentials/credential-facts.js";
import { authenticationOf } from "../identity/authentication.js";
import type { ActiveScope } from "../identity/call-scope.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import type { CommandSpec, InputFacts, ResourceEntity } from "./commands.js";
import { addPrincipalContext } from "./principal-context.js";
import type { CedarEntity, CedarRequest, CedarValue, EntityUid } from "./request-shape.js";
import type { Usage } from "../budgets/usage-store.js";
import { usageContext } from "../budgets/usage-context.js";
import { ownValue } from "../validation.js";

/** The Cedar namespace of the shipped schema. */
export const NAMESPACE = "Bedrock";

/** Everything a call's Cedar request is built from. */
export interface CallFacts {
  readonly identity: WorkloadIdentity;
  readonly scope: ActiveScope;
  readonly spec: CommandSpec;
  readonly resource: ResourceEntity;
  readonly facts: InputFacts;
  readonly environment: string;
  readonly region: string;
  /** The credentials the call is signed with. */
  readonly credentials: CredentialFacts;
  /** When the call is decided (remaining lifetimes are counted from it). */
  readonly nowMs: number;
  /** The principal's usage (calls this minute, tokens this hour), when a usage store counted it. */
  readonly usage?: Usage | undefined;
}

/** The Cedar request for a call. */
export function buildCedarRequest(call: CallFacts): CedarRequest {
  const { identity, scope, spec, resource, facts } = call;
  const workload = workloadEntity(identity);
  const resourceEntity = cedarResourceEntity(resource);
  const context: Record<string, CedarValue> = {
    environment: call.environment,
    region: call.region,
    streaming: spec.streaming,
    actionType: spec.actionType === "mutate" ? "mutate" : scope.actionType,
    dataSensitivity: scope.dataSensitivity,
    toolsOffered: facts.toolsOffered,
    payloadInspected: facts.payloadInspected,
  };
  if (scope.purpose !== undefined) context["purpose"] = scope.purpose;
  if (facts.maxTokens !== undefined) context["maxTokens"] = facts.maxTokens;
  if (facts.guardrail !== undefined) context["guardrail"] = facts.guardrail;
  addPrincipalContext(context, identity, scope, call.credentials, call.nowMs);
  if (call.usage !== undefined) context["usage"] = usageContext(call.usage);
  return {
    principal: workload.uid,
    action: actionUid(spec.action),
    resource: resourceEntity.uid,
    context,
    entities: [workload, resourceEntity],
  };
}

// Identities (frozen by runAs) and model entities (memoized per model id) are long-lived: their
// Cedar entities are built once, deep-frozen, and sealed so the engine can prepare each only once.
const sealed = new WeakSet<CedarEntity>();
const workloads = new WeakMap<WorkloadIdentity, CedarEntity>();
const resources = new WeakMap<ResourceEntity, CedarEntity>();

/** The JSON of each entity reference this module built and froze for good (never one with getters). */
const uidJsons = new WeakMap<EntityUid, string>();
const actionUids = new Map<string, EntityUid>();

/** The action's reference, one frozen object per action. */
function actionUid(action: string): EntityUid {
  let uid = actionUids.get(action);
  if (uid === undefined) {
    uid = Object.freeze({ type: `${NAMESPACE}::Action`, id: action });
    uidJsons.set(uid, JSON.stringify(uid));
    actionUids.set(action, uid);
  }
  return uid;
}

/** The JSON of an entity reference built here (a sealed entity's, an action's), or undefined for any other. */
export function sealedUidJson(uid: EntityUid): string | undefined {
  return uidJsons.get(uid);
}

/** Whether the entity was built (and frozen for good) by this module. */
export function isSealedEntity(entity: unknown): entity is CedarEntity {
  return typeof entity === "object" && entity !== null && sealed.has(entity as CedarEntity);
}

/** The principal entity of a workload (built once per frozen identity). */
export function workloadEntity(identity: WorkloadIdentity): CedarEntity {
  const known = workloads.get(identity);
  if (known) return known;
  const attrs: Record<string, CedarValue> = {};
  // Own fields only: nothing inherited (a polluted Object.prototype.groups) reaches a decision.
  const environment = ownValue(identity, "environment");
  const owner = ownValue(identity, "owner");
  const groups = ownValue(identity, "groups");
  const tags = ownValue(identity, "attributes");
  if (environment !== undefined) attrs["environment"] = environment;
  if (owner !== undefined) attrs["owner"] = owner;
  // Only a verified token can give these: an identity declared in code never has them.
  const proof = authenticationOf(identity);
  if (proof) {
    attrs["issuer"] = proof.issuer;
    if (proof.spiffe) {
      attrs["trustDomain"] = proof.spiffe.trustDomain;
      attrs["spiffePath"] = proof.spiffe.path;
    }
  }
  const entity = seal({
    uid: { type: `${NAMESPACE}::Workload`, id: identity.id },
    attrs,
    parents: (groups ?? []).map((id) => ({ type: `${NAMESPACE}::Group`, id })),
    ...(tags && { tags: { ...tags } }),
  });
  if (Object.isFrozen(identity)) workloads.set(identity, entity);
  return entity;
}

function cedarResourceEntity(resource: ResourceEntity): CedarEntity {
  const known = resources.get(resource);
  if (known) return known;
  const entity = seal({
    uid: { type: `${NAMESPACE}::${resource.type}`, id: resource.id },
    attrs: { ...resource.attrs },
    parents: resource.parents.map(([type, id]) => ({ type: `${NAMESPACE}::${type}`, id })),
  });
  if (Object.isFrozen(resource)) resources.set(resource, entity);
  return entity;
}

/** Deep-freezes an entity that never changes and marks it so the engine prepares it only once. */
export function sealEntity(entity: CedarEntity): CedarEntity {
  return seal(entity);
}

function seal(entity: CedarEntity): CedarEntity {
  deepFreeze(entity);
  sealed.add(entity);
  uidJsons.set(entity.uid, JSON.stringify(entity.uid));
  return entity;
}

function deepFreeze(value: unknown): void {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const item of Object.values(value)) deepFreeze(item);
}
