/**
 * The inline session policy of brokered credentials: the exact Bedrock actions and model,
 * inference-profile and guardrail ARNs one invocation path may use, so that the credentials are
 * worth nothing beyond it. Derived from the Cedar policies' scopes where they name what a workload
 * may call, given explicitly otherwise. Cedar still decides every call: the session policy is the
 * ceiling AWS enforces should anything in the process be bypassed.
 * @module
 */
import type { CedarEngine } from "../policy/cedar-engine.js";
import { modelResource } from "../policy/model-resource.js";
import { principalMayMatch, type EntityJson } from "../policy/policy-scopes.js";
import { NAMESPACE } from "../policy/request-builder.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import { IAM_ACTIONS } from "./bedrock-iam.js";

/**
 * What one invocation path may call, in Bedrock terms: the operations (Cedar action names, e.g.
 * `"Converse"`) and the models (ids, inference-profile ids or ARNs) and guardrails they may name.
 *
 * @example
 * ```ts
 * const scope: PathScope = { operations: ["Converse", "ConverseStream"], models: ["anthropic.claude-3-5-haiku-20241022-v1:0"] };
 * ```
 */
export interface PathScope {
  readonly operations: readonly string[];
  readonly models?: readonly string[];
  readonly guardrails?: readonly string[];
}

/** An IAM policy document (only what session policies use here). */
export interface SessionPolicyDocument {
  readonly Version: "2012-10-17";
  readonly Statement: readonly { readonly Effect: "Allow"; readonly Action: readonly string[]; readonly Resource: readonly string[] }[];
}

/** The largest inline session policy STS accepts (characters of the JSON text). */
export const MAX_SESSION_POLICY_CHARS = 2048;

/** Why no session policy could be made: the message says what to change. */
export class SessionPolicyError extends Error {}

// The resource type each operation is authorized on.
const MODEL_OPERATIONS = new Set(["Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream", "InvokeModelWithBidirectionalStream", "StartAsyncInvoke", "CountTokens"]);
const GUARDRAIL_OPERATIONS = new Set(["ApplyGuardrail"]);

interface Grant {
  readonly operations: Set<string>;
  readonly resources: Set<string>;
}

/**
 * The scope the Cedar policies can grant `identity`: every `permit` whose principal scope can
 * match it (any principal, the workload itself, one of its groups), with the operations its action
 * scope names and the ARNs its resource scope names. Conditions are not read: they only narrow, and
 * Cedar checks them on every call. Throws {@link SessionPolicyError} when a permit that can grant a
 * model operation names no model (the ARNs cannot be worked out): give the path's scope explicitly.
 */
export function derivePathGrants(engine: CedarEngine, identity: WorkloadIdentity): Grant[] {
  const grants: Grant[] = [];
  for (const policy of engine.policyScopes()) {
    // A @shadow policy is never enforced: it grants nothing, not even in a session policy.
    if (policy.effect !== "permit" || engine.shadowPolicies.has(policy.id) || !principalMayMatch(policy.principal, identity)) continue;
    const operations = operationsOf(engine, policy.action).filter((op) => Object.prototype.hasOwnProperty.call(IAM_ACTIONS, op));
    if (operations.length === 0) continue;
    const byResource = new Map<string, Set<string>>();
    for (const operation of operations) {
      const resources = resourcesFor(operation, policy.resource);
      if (resources === "unbounded") {
        throw new SessionPolicyError(
          `policy ${policy.id} permits ${identity.id} ${operation} on any ${resourceKind(operation)}, so no session policy can name them: ` +
            `restrict its resource scope (e.g. resource in Bedrock::Model::"<model id>") or give this path's scope explicitly (broker option paths)`,
        );
      }
      if (resources.length === 0) continue;
      // JSON, not a join: no character an id may hold can split one resource into two.
      const key = JSON.stringify(resources);
      const group = byResource.get(key) ?? new Set<string>();
      group.add(operation);
      byResource.set(key, group);
    }
    for (const [key, ops] of byResource) grants.push({ operations: ops, resources: new Set(JSON.parse(key) as string[]) });
  }
  return grants;
}

/** The grants of an explicit path scope. */
export function explicitPathGrants(scope: PathScope): Grant[] {
  const grants: Grant[] = [];
  for (const operation of scope.operations) {
    if (!Object.prototype.hasOwnProperty.call(IAM_ACTIONS, operation)) {
      throw new SessionPolicyError(`"${operation}" is not a Bedrock Runtime operation: use one of ${Object.keys(IAM_ACTIONS).join(", ")}`);
    }
    let resources: string[];
    if (MODEL_OPERATIONS.has(operation)) resources = (scope.models ?? []).flatMap((model) => modelArns(model, "=="));
    else if (GUARDRAIL_OPERATIONS.has(operation)) resources = (scope.guardrails ?? []).map(guardrailArn);
    else resources = ["*"];
    if (resources.length === 0) {
      throw new SessionPolicyError(`the path's scope allows ${operation} but names no ${resourceKind(operation)}: add them (models or guardrails)`);
    }
    grants.push({ operations: new Set([operation]), resources: new Set(resources) });
  }
  return grants;
}

/**
 * The session policy document for a set of grants: one Allow statement per distinct resource set,
 * with the IAM actions of its operations. Throws when nothing is granted (a path that may call
 * nothing needs no credentials) or when the document is too large for STS.
 */
export function sessionPolicyDocument(grants: readonly Grant[], describe: string): string {
  const statements = new Map<string, { actions: Set<string>; resources: string[] }>();
  for (const grant of grants) {
    const resources = [...grant.resources].sort();
    const key = resources.join("\n");
    const statement = statements.get(key) ?? { actions: new Set<string>(), resources };
    for (const operation of grant.operations) statement.actions.add(IAM_ACTIONS[operation]!);
    statements.set(key, statement);
  }
  if (statements.size === 0) {
    throw new SessionPolicyError(`no policy permits ${describe} any Bedrock operation, so no credentials are issued for it`);
  }
  const document: SessionPolicyDocument = {
    Version: "2012-10-17",
    Statement: [...statements.values()].map(({ actions, resources }) => ({ Effect: "Allow", Action: [...actions].sort(), Resource: resources })),
  };
  const text = JSON.stringify(document);
  if (text.length > MAX_SESSION_POLICY_CHARS) {
    throw new SessionPolicyError(
      `the session policy for ${describe} is ${text.length} characters, more than the ${MAX_SESSION_POLICY_CHARS} STS accepts: ` +
        `name fewer models (a provider, e.g. resource in Bedrock::Provider::"anthropic", is one pattern) or split the path`,
    );
  }
  return text;
}

function operationsOf(engine: CedarEngine, scope: unknown): string[] {
  const s = scope as { op?: string; entity?: EntityJson; entities?: EntityJson[] };
  const all = Object.keys(IAM_ACTIONS);
  switch (s.op) {
    case "All":
      return all;
    case "==":
      return s.entity ? [s.entity.id] : [];
    case "in": {
      const groups = s.entities ?? (s.entity ? [s.entity] : []);
      return [...new Set(groups.flatMap((group) => engine.actionsIn(group.id)))];
    }
    default:
      return all;
  }
}

/** The ARNs a resource scope names for an operation: "unbounded" when it names none in particular. */
function resourcesFor(operation: string, scope: unknown): string[] | "unbounded" {
  const s = scope as { op?: string; entity?: EntityJson; entity_type?: string; in?: { entity?: EntityJson } };
  const target = MODEL_OPERATIONS.has(operation) ? "Model" : GUARDRAIL_OPERATIONS.has(operation) ? "Guardrail" : operation === "GetAsyncInvoke" ? "AsyncInvocation" : "Runtime";
  // A scope on another entity type can never match this operation's resource: it grants nothing here.
  if (s.op === "is" && s.entity_type !== `${NAMESPACE}::${target}`) return [];
  const entity = s.op === "==" || s.op === "in" ? s.entity : s.op === "is" ? s.in?.entity : undefined;
  if (entity !== undefined && entity.type !== `${NAMESPACE}::${target}` && !(target === "Model" && entity.type === `${NAMESPACE}::Provider`)) return [];
  if (target === "Runtime") return ["*"]; // ListAsyncInvokes and InvokeGuardrailChecks name no resource IAM can scope
  if (target === "AsyncInvocation") return entity === undefined ? ["arn:aws:bedrock:*:*:async-invoke/*"] : [exactArn(entity.id, "async invocation")];
  if (entity === undefined) return "unbounded";
  const relation = s.op === "==" ? "==" : "in";
  if (target === "Guardrail") return [guardrailArn(entity.id)];
  if (entity.type === `${NAMESPACE}::Provider`) {
    if (relation !== "in") return [];
    literal(entity.id, "provider");
    return [`arn:aws:bedrock:*::foundation-model/${entity.id}.*`, `arn:aws:bedrock:*:*:inference-profile/*.${entity.id}.*`];
  }
  return modelArns(entity.id, relation);
}

/**
 * Cedar compares entity ids literally; IAM reads `*` and `?` in an ARN as wildcards. An id holding
 * either would grant far more in the session policy than it does in Cedar: refused. So is an id
 * with whitespace, a control character or anything beyond printable ASCII, which no model,
 * profile or guardrail ARN holds.
 */
function literal(id: string, what: string): string {
  if (/[*?]/.test(id)) {
    throw new SessionPolicyError(`the ${what} id "${id}" holds a wildcard character (* or ?), which IAM would read as a pattern: name it exactly`);
  }
  if (/[^\x21-\x7e]/.test(id)) {
    throw new SessionPolicyError(`the ${what} id ${JSON.stringify(id)} holds whitespace, a control character or a character outside printable ASCII, which no Bedrock ARN holds: name it exactly`);
  }
  return id;
}

function exactArn(id: string, what: string): string {
  literal(id, what);
  if (!/^arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d{0,12}:[a-z-]+\/.+$/.test(id)) {
    throw new SessionPolicyError(`the ${what} "${id}" is not a Bedrock ARN (arn:aws:bedrock:<region>:<account>:<type>/<id>)`);
  }
  return id;
}

/**
 * The ARNs IAM checks for a model: a foundation model in any region (inference profiles route across
 * regions); a system inference profile and its base model; and, for `in`, the profiles routing to it.
 */
function modelArns(id: string, relation: "==" | "in"): string[] {
  literal(id, "model");
  if (id.startsWith("arn:")) return [exactArn(id, "model")];
  const model = modelResource(id);
  if (model.kind === "inference-profile" && model.baseModel) {
    return [`arn:aws:bedrock:*:*:inference-profile/${model.id}`, `arn:aws:bedrock:*::foundation-model/${model.baseModel}`];
  }
  const arns = [`arn:aws:bedrock:*::foundation-model/${model.id}`];
  if (relation === "in") arns.push(`arn:aws:bedrock:*:*:inference-profile/*.${model.id}`);
  return arns;
}

function guardrailArn(id: string): string {
  literal(id, "guardrail");
  return id.startsWith("arn:") ? exactArn(id, "guardrail") : `arn:aws:bedrock:*:*:guardrail/${id}`;
}

function resourceKind(operation: string): string {
  return MODEL_OPERATIONS.has(operation) ? "model" : GUARDRAIL_OPERATIONS.has(operation) ? "guardrail" : "resource";
}
