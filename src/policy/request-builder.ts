/**
 * Builds the Cedar request for one governed call: the workload as principal (with its groups),
 * the command's action, the resource named in the input, and the call's context.
 * @module
 */
import type { ActiveScope } from "../identity/call-scope.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import type { CommandSpec, InputFacts, ResourceEntity } from "./commands.js";
import type { CedarEntity, CedarRequest, CedarValue } from "./request-shape.js";

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
}

/** The Cedar request for a call. */
export function buildCedarRequest(call: CallFacts): CedarRequest {
  const { identity, scope, spec, resource, facts } = call;
  const principal = { type: `${NAMESPACE}::Workload`, id: identity.id };
  const resourceUid = { type: `${NAMESPACE}::${resource.type}`, id: resource.id };
  const workloadAttrs: Record<string, CedarValue> = {};
  if (identity.environment !== undefined) workloadAttrs["environment"] = identity.environment;
  if (identity.owner !== undefined) workloadAttrs["owner"] = identity.owner;
  const workload: CedarEntity = {
    uid: principal,
    attrs: workloadAttrs,
    parents: (identity.groups ?? []).map((id) => ({ type: `${NAMESPACE}::Group`, id })),
    ...(identity.attributes && { tags: identity.attributes }),
  };
  const resourceEntity: CedarEntity = {
    uid: resourceUid,
    attrs: resource.attrs,
    parents: resource.parents.map(([type, id]) => ({ type: `${NAMESPACE}::${type}`, id })),
  };
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
  return {
    principal,
    action: { type: `${NAMESPACE}::Action`, id: spec.action },
    resource: resourceUid,
    context,
    entities: [workload, resourceEntity],
  };
}
