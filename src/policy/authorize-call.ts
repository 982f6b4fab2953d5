/**
 * Where a call is authorized: from the command, its input and the caller's scope to a
 * {@link Decision}. Every way a call can fail to be evaluated cleanly — no identity, an unknown
 * command, an input that names no resource, an engine error — is a deny with its cause.
 * @module
 */
import type { CredentialFacts } from "../credentials/credential-facts.js";
import {
  AccessDeniedError,
  CredentialsUnavailableError,
  IdentityExpiredError,
  NoIdentityError,
  PolicyEvaluationError,
  UnknownCommandError,
} from "../errors.js";
import type { ActiveScope } from "../identity/call-scope.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import type { CedarEngine } from "./cedar-engine.js";
import { InvalidCommandInput, type CommandSpec, type InputFacts } from "./commands.js";
import { unevaluatedDenial, entityRef, type Decision } from "./decision.js";
import { expiredProof } from "./principal-context.js";
import { NAMESPACE } from "./request-builder.js";
import { authorizeFacts } from "./call-memo.js";
import type { Admission } from "../budgets/usage-context.js";
import { maskSecretShapes } from "../audit/secret-shapes.js";
import { evidenceUnavailableDenial } from "../audit/sink.js";
import { killedDenial, usageUnavailableDenial } from "../budgets/kill-switch.js";

/** What a call is authorized from. */
export interface CallToAuthorize {
  readonly engine: CedarEngine;
  readonly commandName: string;
  readonly spec: CommandSpec | undefined;
  readonly input: Record<string, unknown>;
  readonly identity: WorkloadIdentity | undefined;
  readonly scope: ActiveScope;
  readonly environment: string;
  /** The region the call goes to; an Error when the client's region could not be resolved. */
  readonly region: string | Error;
  /** The credentials the call would be signed with; an Error when there are none to sign it with. */
  readonly credentials: CredentialFacts | Error;
  /** Set when reading the caller's input failed (a throwing getter, an input nested too deep). */
  readonly unreadableInput?: Error | undefined;
  /** Set when the client shares one handler context across calls (`cacheMiddleware`). */
  readonly sharedContext?: boolean | undefined;
  /** What the input tells the context, when the caller has already read it. */
  readonly facts?: InputFacts | undefined;
  /** Set when the tools the request offers deny the call (a toolChoice naming a withheld tool ...). */
  readonly toolDenial?: { readonly reason: string; readonly policies: readonly string[] } | undefined;
  /** What the usage store said about this call (when usage is counted): its usage, a kill switch, or a failure. */
  readonly admission?: Admission | undefined;
  /** A decision sink that is failing while failing sinks deny calls: the call's evidence cannot be kept. */
  readonly failingSink?: { readonly name: string; readonly failure: Error } | undefined;
}

/** The decision, and the error to throw when it denies. */
export interface Authorization {
  readonly decision: Decision;
  readonly denial?: AccessDeniedError;
}

const NO_PRINCIPAL = "(no workload identity)";

/** Decides a call. Never throws: whatever goes wrong while deciding is a deny that says what. */
export function authorizeCall(call: CallToAuthorize): Authorization {
  try {
    return decide(call);
  } catch (error) {
    // A hostile input (a throwing getter, a revoked proxy) or a bug must close, never open.
    const decision = unevaluatedDenial({
      principal: call.identity ? entityRef(`${NAMESPACE}::Workload`, call.identity.id) : NO_PRINCIPAL,
      action: entityRef(`${NAMESPACE}::Action`, call.spec?.action ?? call.commandName.replace(/Command$/, "")),
      resource: "(unknown)",
      reason: "the call could not be evaluated",
      errors: [`could not evaluate the call: ${describe(error)}`],
      policySetVersion: call.engine.version,
    });
    return { decision, denial: new PolicyEvaluationError(decision) };
  }
}

function describe(error: unknown): string {
  try {
    return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } catch {
    return "an unprintable error";
  }
}

/** What a provider we do not own said, without what looks like a credential. */
function describeProvider(error: unknown): string {
  return maskSecretShapes(describe(error));
}

function decide(call: CallToAuthorize): Authorization {
  const { engine, commandName, spec, input, identity } = call;
  // Written out only for a deny decided here: an evaluated decision names them itself.
  const refs = () => ({
    principal: identity ? entityRef(`${NAMESPACE}::Workload`, identity.id) : NO_PRINCIPAL,
    action: entityRef(`${NAMESPACE}::Action`, spec?.action ?? commandName.replace(/Command$/, "")),
  });
  const deny = (reason: string, errors: string[] = [], resource = "(unknown)", policies: readonly string[] = []): Decision =>
    unevaluatedDenial({ ...refs(), resource, reason, errors, policies, policySetVersion: engine.version });

  if (!spec) {
    const decision = deny(
      `${commandName} is not a command this version of bedrock-warden governs; it is denied until bedrock-warden is upgraded to a version that knows it`,
    );
    return { decision, denial: new UnknownCommandError(decision) };
  }
  if (!identity) {
    const decision = deny("no workload identity: run the call inside runAs(identity, ...) or give the client a default identity");
    return { decision, denial: new NoIdentityError(decision) };
  }
  if (call.sharedContext) {
    const decision = deny(
      "the client uses cacheMiddleware: concurrent calls would share one context, so none can be governed; remove the option",
    );
    return { decision, denial: new PolicyEvaluationError(decision) };
  }
  if (call.unreadableInput) {
    const decision = deny("the command input could not be read", [`input: ${describe(call.unreadableInput)}`]);
    return { decision, denial: new PolicyEvaluationError(decision) };
  }
  if (call.region instanceof Error) {
    const decision = deny("the client's region could not be resolved", [`region: ${describeProvider(call.region)}`]);
    return { decision, denial: new PolicyEvaluationError(decision) };
  }
  const inputProblem = (error: unknown) => (error instanceof InvalidCommandInput ? error.message : `reading the input failed: ${describe(error)}`);
  let resource;
  try {
    resource = spec.resource(input);
  } catch (error) {
    const message = inputProblem(error);
    const decision = deny(`the ${spec.action} input does not name its resource: ${message}`, [message]);
    return { decision, denial: new PolicyEvaluationError(decision) };
  }
  const resourceRef = () => entityRef(`${NAMESPACE}::${resource.type}`, resource.id);
  let facts;
  try {
    facts = call.facts ?? spec.facts(input);
  } catch (error) {
    // The resource is known: the denial names it, and says what in the input cannot be decided.
    const message = inputProblem(error);
    const decision = deny(`the ${spec.action} input cannot be decided: ${message}`, [message], resourceRef());
    return { decision, denial: new PolicyEvaluationError(decision) };
  }
  const nowMs = Date.now();
  const expired = expiredProof(identity, nowMs);
  if (expired !== undefined) {
    const decision = deny(expired, [], resourceRef());
    return { decision, denial: new IdentityExpiredError(decision) };
  }
  if (call.failingSink) {
    const denial = evidenceUnavailableDenial({ ...refs(), resource: resourceRef(), policySetVersion: engine.version }, call.failingSink);
    return { decision: denial.decision, denial };
  }
  // A killed workload is stopped before any policy runs, whatever the policies say.
  const admission = call.admission;
  if (admission?.outcome === "killed") {
    const denial = killedDenial({ ...refs(), resource: resourceRef(), policySetVersion: engine.version }, identity.id, admission.killed);
    return { decision: denial.decision, denial };
  }
  if (admission?.outcome === "unavailable") {
    const denial = usageUnavailableDenial({ ...refs(), resource: resourceRef(), policySetVersion: engine.version }, admission.error);
    return { decision: denial.decision, denial };
  }
  if (call.credentials instanceof Error) {
    const decision = deny(`no credentials to sign the call with: ${maskSecretShapes(call.credentials.message)}`, [`credentials: ${describeProvider(call.credentials)}`], resourceRef());
    return { decision, denial: new CredentialsUnavailableError(decision) };
  }
  if (call.toolDenial) {
    const decision = deny(call.toolDenial.reason, [], resourceRef(), call.toolDenial.policies);
    return { decision, denial: new AccessDeniedError(decision) };
  }
  const decision = authorizeFacts(engine, {
    identity,
    scope: call.scope,
    spec,
    resource,
    facts,
    environment: call.environment,
    region: call.region,
    credentials: call.credentials,
    nowMs,
    usage: admission?.outcome === "admitted" ? admission.usage : undefined,
  });
  if (decision.effect === "allow") return { decision };
  const denial = decision.errors.length > 0 ? new PolicyEvaluationError(decision) : new AccessDeniedError(decision);
  return { decision, denial };
}
