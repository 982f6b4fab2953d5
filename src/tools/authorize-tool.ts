/**
 * Where a tool decision is made: may this workload be offered this tool, run the call the model
 * asked for, or execute it now, with this input. Model access and tool access are decided
 * separately: each tool decision is its own Cedar request, on the tool's own action.
 * @module
 */
import { NO_AWS_CREDENTIALS, type CredentialFacts } from "../credentials/credential-facts.js";
import { AccessDeniedError, IdentityExpiredError, NoIdentityError, PolicyEvaluationError } from "../errors.js";
import type { ActiveScope } from "../identity/call-scope.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import type { CedarEngine } from "../policy/cedar-engine.js";
import { unevaluatedDenial, entityRef, type Decision } from "../policy/decision.js";
import { addPrincipalContext, expiredProof } from "../policy/principal-context.js";
import { NAMESPACE, sealEntity, TOOL_TYPE, workloadEntity } from "../policy/request-builder.js";
import { libraryRequest, type CedarEntity, type CedarValue } from "../policy/request-shape.js";
import { toCedarValue } from "./json-schema-to-cedar.js";
import { UNDECLARED_TOOL_ACTION, type DeclaredTool } from "./tool-definitions.js";
import type { Usage } from "../budgets/usage-store.js";
import { usageContext } from "../budgets/usage-context.js";

/** The three moments a tool is decided at. */
export type ToolPhase = "offer" | "call" | "execute";

/** What a tool decision is made from. */
export interface ToolDecisionRequest {
  readonly engine: CedarEngine;
  readonly tools: ReadonlyMap<string, DeclaredTool>;
  readonly environment: string;
  readonly region: string;
  readonly identity: WorkloadIdentity | undefined;
  readonly scope: ActiveScope;
  readonly name: string;
  readonly phase: ToolPhase;
  /** The input (untrusted: the model wrote it), for "call" and "execute". */
  readonly input?: unknown;
  readonly toolUseId?: string;
  /** The tool runs at AWS (a `systemTool`, or a `server_tool_use` block). */
  readonly serverSide?: boolean;
  /** The credentials of the model call the tool is offered in or asked by; none for a tool the application executes. */
  readonly credentials?: CredentialFacts;
  /** The principal's usage, when a usage store counts it (`context.usage`). */
  readonly usage?: Usage;
}

/** A tool decision, and the error to throw when it denies. */
export interface ToolAuthorization {
  readonly decision: Decision;
  readonly denial?: AccessDeniedError;
}

// Tool entities never change: built once per declared tool, or per undeclared name (bounded).
const declaredEntities = new WeakMap<DeclaredTool, CedarEntity>();
const undeclaredEntities = new Map<string, CedarEntity>();
const UNDECLARED_CACHE_SIZE = 1024;

/** Decides one tool request. Never throws. */
export function authorizeTool(request: ToolDecisionRequest): ToolAuthorization {
  const { engine, tools, identity, scope, name, phase } = request;
  const declared = tools.get(name);
  const action = entityRef(`${NAMESPACE}::Action`, declared?.action ?? UNDECLARED_TOOL_ACTION);
  const resource = entityRef(TOOL_TYPE, name);
  const deny = (reason: string, errors: string[] = []): Decision =>
    unevaluatedDenial({
      principal: identity ? entityRef(`${NAMESPACE}::Workload`, identity.id) : "(no workload identity)",
      action,
      resource,
      reason,
      errors,
      policySetVersion: engine.version,
    });
  try {
    if (!identity) {
      const decision = deny("no workload identity: run the call inside runAs(identity, ...) or give the client a default identity");
      return { decision, denial: new NoIdentityError(decision) };
    }
    const nowMs = Date.now();
    const expired = expiredProof(identity, nowMs);
    if (expired !== undefined) {
      const decision = deny(expired);
      return { decision, denial: new IdentityExpiredError(decision) };
    }
    let input: CedarValue | undefined;
    if (phase !== "offer" && declared?.inputType) {
      // When policies can see the whole schema, a field outside it is refused: nothing they cannot see
      // goes with an allowed call. A tool whose schema could not be mapped whole keeps its extra fields
      // out of sight, and says so (payloadInspected false).
      const converted = toCedarValue(request.input, declared.inputType, { undeclared: declared.inputFullyTyped ? "reject" : "drop" });
      if (!converted.ok) {
        const decision = deny(`the ${name} input does not match the tool's input schema: ${converted.reason}`, [converted.reason]);
        return { decision, denial: new AccessDeniedError(decision) };
      }
      input = converted.value as CedarValue;
    }
    const effect = declared?.definition.effect ?? "mutate";
    const context: Record<string, CedarValue> = {
      environment: request.environment,
      region: request.region,
      streaming: false,
      actionType: effect,
      dataSensitivity: scope.dataSensitivity,
      toolsOffered: [],
      payloadInspected: declared?.inputFullyTyped ?? false,
      phase,
    };
    if (scope.purpose !== undefined) context["purpose"] = scope.purpose;
    if (request.toolUseId !== undefined) context["toolUseId"] = request.toolUseId;
    if (input !== undefined) context["input"] = input;
    addPrincipalContext(context, identity, scope, request.credentials ?? NO_AWS_CREDENTIALS, nowMs);
    if (request.usage !== undefined) context["usage"] = usageContext(request.usage);
    const principal = workloadEntity(identity);
    const tool = toolEntity(name, declared, request.serverSide ?? false);
    // Built here from data the library made (the input is the converted copy): read as it is.
    const decision = engine.authorize(
      libraryRequest({
        principal: principal.uid,
        action: { type: `${NAMESPACE}::Action`, id: declared?.action ?? UNDECLARED_TOOL_ACTION },
        resource: tool.uid,
        context,
        entities: [principal, tool],
      }),
    );
    if (decision.effect === "allow") return { decision };
    return { decision, denial: decision.errors.length > 0 ? new PolicyEvaluationError(decision) : new AccessDeniedError(decision) };
  } catch (error) {
    const decision = deny("the tool request could not be evaluated", [error instanceof Error ? error.message : String(error)]);
    return { decision, denial: new PolicyEvaluationError(decision) };
  }
}

function toolEntity(name: string, declared: DeclaredTool | undefined, serverSide: boolean): CedarEntity {
  if (declared) {
    let entity = declaredEntities.get(declared);
    if (entity === undefined) {
      const { effect, sensitivity, owner } = declared.definition;
      const attrs: Record<string, CedarValue> = { effect, serverSide: declared.definition.serverSide ?? false };
      if (sensitivity !== undefined) attrs["sensitivity"] = sensitivity;
      if (owner !== undefined) attrs["owner"] = owner;
      entity = sealEntity({ uid: { type: TOOL_TYPE, id: name }, attrs, parents: [] });
      declaredEntities.set(declared, entity);
    }
    return entity;
  }
  // An undeclared tool is assumed to be able to change anything.
  const key = `${serverSide ? "aws" : "app"}:${name}`;
  let entity = undeclaredEntities.get(key);
  if (entity === undefined) {
    entity = sealEntity({ uid: { type: TOOL_TYPE, id: name }, attrs: { effect: "mutate", serverSide }, parents: [] });
    if (undeclaredEntities.size >= UNDECLARED_CACHE_SIZE) undeclaredEntities.clear();
    undeclaredEntities.set(key, entity);
  }
  return entity;
}
