/**
 * The part of every decision's context that says how the principal was proven and with what it
 * acts: `context.authentication` (verified by a token or merely declared, by whom, for how long),
 * `context.delegation` (the RFC 8693 chain: who acts for whom, how many hops), `context.credentials`
 * (the kind of AWS credentials the call is signed with and their remaining lifetime) and
 * `context.task` (the invocation path). Model calls and tool decisions share it, so one policy holds for both.
 * @module
 */
import type { CredentialFacts } from "../credentials/credential-facts.js";
import { secondsLeft } from "../credentials/credential-facts.js";
import { authenticationOf, proofLifetime } from "../identity/authentication.js";
import type { ActiveScope } from "../identity/call-scope.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import type { CedarValue } from "./request-shape.js";

const NOT_DELEGATED: Readonly<Record<string, CedarValue>> = Object.freeze({ depth: 0, actors: Object.freeze([]) as unknown as CedarValue[] });
const DECLARED: Readonly<Record<string, CedarValue>> = Object.freeze({ verified: false, method: "declared" });
const delegations = new WeakMap<WorkloadIdentity, Record<string, CedarValue>>();

/** Adds `authentication`, `delegation`, `credentials` and `task` to a decision's context. */
export function addPrincipalContext(
  context: Record<string, CedarValue>,
  identity: WorkloadIdentity,
  scope: ActiveScope,
  credentials: CredentialFacts,
  nowMs: number,
): void {
  const proof = authenticationOf(identity);
  if (proof) {
    context["authentication"] = {
      verified: true,
      method: proof.method,
      issuer: proof.issuer,
      expiresInSeconds: proofSecondsLeft(identity, nowMs),
    };
    let delegation = delegations.get(identity);
    if (delegation === undefined) {
      const chain = proof.delegation;
      delegation = Object.freeze({
        depth: chain.depth,
        actors: Object.freeze(chain.actors.map((actor) => actor.subject)),
        ...(chain.onBehalfOf !== undefined && { onBehalfOf: chain.onBehalfOf }),
      });
      delegations.set(identity, delegation);
    }
    context["delegation"] = delegation;
  } else {
    context["authentication"] = DECLARED;
    context["delegation"] = NOT_DELEGATED;
  }
  context["credentials"] = credentials.expiresAt
    ? { kind: credentials.kind, brokered: credentials.brokered, expiresInSeconds: secondsLeft(credentials.expiresAt, nowMs) }
    : lifelessCredentials(credentials);
  if (scope.task !== undefined) context["task"] = scope.task.name;
}

/** The seconds left before the proof of `identity` (a verified token) expires, as `context.authentication.expiresInSeconds` says. */
export function proofSecondsLeft(identity: WorkloadIdentity, nowMs: number): number {
  return Math.floor(((proofLifetime(identity)?.expiresAtMs ?? 0) - nowMs) / 1000);
}

/**
 * Why the identity can no longer act, when its proof (a verified token) has expired: a call is
 * never decided on an expired token, whatever the policies say.
 */
export function expiredProof(identity: WorkloadIdentity, nowMs: number): string | undefined {
  const lifetime = proofLifetime(identity);
  if (lifetime === undefined || lifetime.validUntilMs > nowMs) return undefined;
  return `the token that proved ${identity.id} expired at ${new Date(lifetime.expiresAtMs).toISOString()}: verify a fresh token (runTask with an identity provider does it at the start of each task)`;
}

const lifeless = new WeakMap<CredentialFacts, Record<string, CedarValue>>();

/** The context record of credentials that do not expire: the same on every call, built once. */
function lifelessCredentials(credentials: CredentialFacts): Record<string, CedarValue> {
  let record = lifeless.get(credentials);
  if (record === undefined) {
    record = Object.freeze({ kind: credentials.kind, brokered: credentials.brokered });
    lifeless.set(credentials, record);
  }
  return record;
}
