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
import { addPrincipalContext, proofSecondsLeft } from "./principal-context.js";
import { libraryRequest, type CedarEntity, type CedarRequest, type CedarValue, type EntityUid } from "./request-shape.js";
import type { Usage } from "../budgets/usage-store.js";
import { usageContext } from "../budgets/usage-context.js";
import { secondsLeft } from "../credentials/credential-facts.js";
import { ownValue } from "../validation.js";

/** The Cedar namespace of the shipped schema. */
export const NAMESPACE = "Bedrock";

/** The entity type of a tool, the resource of every tool decision. */
export const TOOL_TYPE = `${NAMESPACE}::Tool`;

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
  if (facts.guardrailVersion !== undefined) context["guardrailVersion"] = facts.guardrailVersion;
  if (facts.guardrailSelective !== undefined) context["guardrailSelective"] = facts.guardrailSelective;
  if (facts.outputLocation !== undefined) context["outputLocation"] = facts.outputLocation;
  addPrincipalContext(context, identity, scope, call.credentials, call.nowMs);
  if (call.usage !== undefined) context["usage"] = usageContext(call.usage);
  return libraryRequest({
    principal: workload.uid,
    action: actionUid(spec.action),
    resource: resourceEntity.uid,
    context,
    entities: [workload, resourceEntity],
  });
}

/** Keys longer than this are not worth keeping (huge tool lists, long labels): such calls are built every time. */
const MAX_KEY_LENGTH = 4096;

/**
 * A key for the request {@link buildCedarRequest} builds from `call`: calls with the same key get
 * the same request, to the byte — so one's decision is the other's. The identity and the resource
 * stand by reference (frozen, their entities are built once from them, as `buildCedarRequest`
 * does); every other fact by value, each written with its type and, for a string, its length, so
 * that no two different sets of facts join to one key. The time enters only as the builder reads
 * it: the seconds left on the token and on the credentials.
 *
 * Undefined when the call cannot be keyed exactly or would never repeat: an identity or resource
 * that is not frozen, a value of a type the builder does not expect, usage counters (new on every
 * call: the engine's memo keys them by what the policies test), a key over 4,096 characters.
 */
export function callFactsKey(call: CallFacts): string | undefined {
  // Read field by field (destructuring with a rest allocated five objects a call); the types below
  // still fail to compile when a fact is added to these types until it is keyed here.
  const { identity, scope, spec, resource, facts, credentials, nowMs } = call;
  if (call.usage !== undefined || !Object.isFrozen(identity) || !Object.isFrozen(resource)) return undefined;
  const expiresAt = credentials.expiresAt;
  const pieces = [
    serialOf(identity),
    serialOf(resource),
    authenticationOf(identity) === undefined ? "u" : numberKey(proofSecondsLeft(identity, nowMs)),
    valueKey(call.environment),
    valueKey(call.region),
    valueKey(spec.action),
    valueKey(spec.streaming),
    valueKey(spec.actionType),
    valueKey(scope.purpose),
    listKey(scope.dataSensitivity),
    valueKey(scope.actionType),
    valueKey(scope.task?.name),
    valueKey(facts.maxTokens),
    listKey(facts.toolsOffered),
    valueKey(facts.guardrail),
    valueKey(facts.guardrailVersion),
    valueKey(facts.guardrailSelective),
    valueKey(facts.outputLocation),
    valueKey(facts.payloadInspected),
    valueKey(credentials.kind),
    valueKey(credentials.brokered),
    expiresAt === undefined ? "u" : expiresAt instanceof Date ? numberKey(secondsLeft(expiresAt, nowMs)) : undefined,
  ];
  let key = "";
  for (const piece of pieces) {
    // A value of a type the builder does not expect: the call is not keyed.
    if (piece === undefined) return undefined;
    key += piece;
  }
  return key.length <= MAX_KEY_LENGTH ? key : undefined;
}

// Every fact of a call, as callFactsKey keys it or deliberately leaves it out: a fact added to one
// of these types fails to compile here until it is keyed above (or listed as not keyed, with why).
type Exhaustive<T, Listed extends keyof T> = [Exclude<keyof T, Listed>] extends [never] ? true : { unkeyed: Exclude<keyof T, Listed> };
const _keyedCall: Exhaustive<CallFacts, "identity" | "scope" | "spec" | "resource" | "facts" | "environment" | "region" | "credentials" | "nowMs" | "usage"> = true;
// The scope's identity is the call's identity.
const _keyedScope: Exhaustive<ActiveScope, "purpose" | "dataSensitivity" | "actionType" | "task" | "identity"> = true;
// genAiOperation, resource and facts are not part of the request (resource and facts are read into the call's own).
const _keyedSpec: Exhaustive<CommandSpec, "action" | "streaming" | "actionType" | "genAiOperation" | "resource" | "facts"> = true;
// toolsUnreadable is not part of the request: the tool offers decide on it.
const _keyedInput: Exhaustive<InputFacts, "maxTokens" | "toolsOffered" | "toolsUnreadable" | "guardrail" | "guardrailVersion" | "guardrailSelective" | "outputLocation" | "payloadInspected"> = true;
// The access key id is what the call is signed with, checked after signing; the request never carries it.
const _keyedCredentials: Exhaustive<CredentialFacts, "kind" | "brokered" | "expiresAt" | "accessKeyId"> = true;
void _keyedCall, _keyedScope, _keyedSpec, _keyedInput, _keyedCredentials;

const serials = new WeakMap<object, string>();
let nextSerial = 0;

/** A key piece standing for one object (by reference, never by its content). */
function serialOf(value: object): string {
  let serial = serials.get(value);
  if (serial === undefined) serials.set(value, (serial = `o${nextSerial++};`));
  return serial;
}

// Each piece starts with its type and ends where its type says (after ";", after the string's
// length in characters, after the list's items): a prefix-free code, so the pieces never run together.
function numberKey(value: number): string {
  return `n${value};`;
}

function valueKey(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
      return `s${value.length}:${value}`;
    case "number":
      return numberKey(value);
    case "boolean":
      return value ? "t" : "f";
    case "undefined":
      return "u";
    default:
      return undefined;
  }
}

function listKey(values: readonly unknown[] | undefined): string | undefined {
  if (!Array.isArray(values)) return undefined;
  let key = `l${values.length};`;
  for (let i = 0; i < values.length; i++) {
    const piece = valueKey(values[i]);
    if (piece === undefined) return undefined;
    key += piece;
  }
  return key;
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

/** Freezes plain data and everything it holds, for good; returns it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
