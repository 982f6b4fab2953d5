/**
 * What kind of AWS credentials a call is signed with: a long-term access key, temporary STS
 * credentials, or a Bedrock API key. Policies read the kind and the remaining lifetime
 * (`context.credentials`), so that standing credentials can be refused where it matters.
 * Nothing here ever holds a secret.
 * @module
 */
import type { AwsCredentialIdentity } from "@smithy/types";

/**
 * The kind of credentials a call is signed with (`context.credentials.kind`).
 *
 * - `"long-term"`: an IAM user's access key (`AKIA…`, no session token): valid until someone revokes it.
 * - `"temporary"`: STS credentials (`ASIA…`, with a session token and an expiry).
 * - `"bearer"`: a Bedrock API key sent as a bearer token.
 * - `"none"`: no AWS call is made (a tool the application runs itself).
 *
 * @example
 * ```ts
 * const kind: CredentialKind = "temporary";
 * ```
 */
export type CredentialKind = "long-term" | "temporary" | "bearer" | "none";

/**
 * The credentials of one call, without their secrets: what its decision, span and record say.
 *
 * @example
 * ```ts
 * const facts: CredentialFacts = { kind: "temporary", brokered: true, expiresAt: new Date(Date.now() + 900_000) };
 * ```
 */
export interface CredentialFacts {
  readonly kind: CredentialKind;
  /** Issued just in time by the credential broker for this identity and invocation path. */
  readonly brokered: boolean;
  /** When they expire, when they do. */
  readonly expiresAt?: Date;
  /**
   * The access key id the call must be signed with (not a secret: AWS logs it in CloudTrail).
   * Kept to check the signed request against it, never written to spans or records.
   */
  readonly accessKeyId?: string;
}

/** The credentials of a tool the application runs itself: no AWS call. */
export const NO_AWS_CREDENTIALS: CredentialFacts = Object.freeze({ kind: "none", brokered: false });

/** A Bedrock API key: the token's lifetime is not readable from it. */
export const BEARER_CREDENTIALS: CredentialFacts = Object.freeze({ kind: "bearer", brokered: false });

/**
 * Classifies AWS credentials. A session token is what makes credentials temporary: STS never
 * issues one without it, and a long-term key never has one.
 */
export function classifyCredentials(credentials: AwsCredentialIdentity, brokered = false): CredentialFacts {
  // Providers hand out the same credentials object until they refresh: classify each once.
  const cache = brokered ? classifiedBrokered : classified;
  const known = cache.get(credentials);
  if (known !== undefined && known.accessKeyId === credentials.accessKeyId && known.expiresAt === credentials.expiration) return known;
  const facts = classify(credentials, brokered);
  cache.set(credentials, facts);
  return facts;
}

const classified = new WeakMap<AwsCredentialIdentity, CredentialFacts>();
const classifiedBrokered = new WeakMap<AwsCredentialIdentity, CredentialFacts>();

function classify(credentials: AwsCredentialIdentity, brokered: boolean): CredentialFacts {
  const temporary = typeof credentials.sessionToken === "string" && credentials.sessionToken !== "";
  const expiration = credentials.expiration;
  return Object.freeze({
    kind: temporary ? "temporary" : "long-term",
    brokered,
    ...(expiration instanceof Date && !Number.isNaN(expiration.getTime()) && { expiresAt: expiration }),
    accessKeyId: credentials.accessKeyId,
  });
}

/** Whole seconds left until `expiresAt` (negative once past). */
export function secondsLeft(expiresAt: Date, nowMs: number): number {
  return Math.floor((expiresAt.getTime() - nowMs) / 1000);
}
