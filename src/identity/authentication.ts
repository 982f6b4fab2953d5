/**
 * How an identity was proven. An identity is either *declared* (any object a caller builds) or
 * *authenticated*: produced by a token verifier or an identity provider and registered here.
 *
 * The registry is a pair of module-private WeakMaps keyed by the frozen identity object. Nothing
 * on the identity object itself says "authenticated", so no caller can forge that by adding a
 * field, copying an authenticated identity, or parsing one back from JSON: only the very object
 * {@link attestIdentity} returned is authenticated.
 * @module
 */
import { z } from "zod";
import { ConfigurationError } from "../errors.js";
import { CONTROL_CHARACTERS, describeZodError } from "../validation.js";
import { workloadIdentity, type WorkloadIdentity } from "./workload-identity.js";

/**
 * The delegation chain of a token (RFC 8693 `act` claim): who is acting, on whose behalf, and
 * through which intermediaries.
 *
 * @example
 * ```ts
 * // A user's request, handled by a gateway, which asked the invoice agent to act:
 * const chain: DelegationChain = {
 *   depth: 2,
 *   actors: [{ subject: "gateway" }, { subject: "spiffe://acme.example/agents/invoice" }],
 *   onBehalfOf: "alice@acme.example",
 * };
 * ```
 */
export interface DelegationChain {
  /** The number of `act` levels (0 = the token is not delegated). */
  readonly depth: number;
  /**
   * The actors, from the first delegate to the current actor (the last entry). In the token the
   * outermost `act` is the current actor (RFC 8693 §4.1), so this is the nesting read inside out.
   */
  readonly actors: readonly { readonly subject: string; readonly issuer?: string }[];
  /** The token's `sub` when the token is delegated: the human or service on whose behalf. */
  readonly onBehalfOf?: string;
}

/**
 * How an identity was proven. It never holds the token itself (see `presentedTokenOf`).
 * It is deeply frozen, and its dates refuse their setters (`setTime` throws): every reader sees
 * the same proof.
 *
 * @example
 * ```ts
 * const auth = authenticationOf(identity);
 * if (auth) console.log(auth.method, auth.issuer, auth.subject, auth.expiresAt.toISOString(), auth.delegation.depth);
 * ```
 */
export interface Authentication {
  /** `"oidc"`, `"spiffe-jwt-svid"`, or a custom provider's name. */
  readonly method: string;
  /** Who issued the proof (the token's `iss`). */
  readonly issuer: string;
  /** The proven subject (the token's `sub`). With delegation the identity's id is the current actor instead. */
  readonly subject: string;
  /** The audiences the proof was issued for. */
  readonly audience: readonly string[];
  /** When the proof stops being valid. */
  readonly expiresAt: Date;
  /** When the proof was issued, if it says. */
  readonly issuedAt?: Date;
  /** The delegation chain (depth 0 when the subject acts for itself). */
  readonly delegation: DelegationChain;
  /** The SPIFFE ID's parts, for SPIFFE JWT-SVIDs. */
  readonly spiffe?: { readonly trustDomain: string; readonly path: string };
  /** The JWS algorithm the proof was signed with. */
  readonly algorithm?: string;
  /** The id (`kid`) of the key that signed it. */
  readonly keyId?: string;
}

const authenticated = new WeakMap<WorkloadIdentity, Authentication>();
const lifetimes = new WeakMap<WorkloadIdentity, { readonly expiresAtMs: number; readonly validUntilMs: number }>();
// Kept apart from the Authentication so that logging, serializing or inspecting an Authentication
// can never print the bearer token; only code that asks for it by name gets it.
const presentedTokens = new WeakMap<WorkloadIdentity, string>();

const line = (max: number) =>
  z
    .string({ error: "must be a string" })
    .min(1, "must not be empty")
    .max(max, `must be at most ${max} characters`)
    // Every field here ends up in spans and decision records.
    .refine((s) => !CONTROL_CHARACTERS.test(s), "must not contain control characters")
    .refine((s) => s.isWellFormed(), "must be well-formed Unicode (no lone surrogates)");

const date = z
  .date({ error: "must be a Date" })
  .refine((d) => Number.isFinite(d.getTime()), "must be a valid Date");

const actorSchema = z.object({ subject: line(2048), issuer: line(2048).optional() }).strict();

const delegationSchema = z
  .object({
    depth: z.number({ error: "must be a number" }).int("must be a whole number").min(0, "must be 0 or more"),
    actors: z.array(actorSchema, { error: "must be an array of { subject, issuer? }" }),
    onBehalfOf: line(2048).optional(),
  })
  .strict()
  .refine((d) => d.depth === d.actors.length, "depth must equal the number of actors")
  .refine((d) => (d.depth === 0) === (d.onBehalfOf === undefined), "onBehalfOf is set exactly when depth > 0");

const authenticationSchema = z
  .object({
    method: line(128),
    issuer: line(2048),
    subject: line(2048),
    audience: z.array(line(2048), { error: "must be an array of strings" }).min(1, "must name at least one audience"),
    expiresAt: date,
    issuedAt: date.optional(),
    delegation: delegationSchema,
    spiffe: z.object({ trustDomain: line(255), path: z.string({ error: "must be a string" }).max(2048) }).strict().optional(),
    algorithm: line(64).optional(),
    keyId: line(1024).optional(),
  })
  .strict();

/**
 * Registers `identity` as authenticated by `authentication` and returns the frozen identity that
 * carries it (a new object: the one given is validated and copied by {@link workloadIdentity}).
 * For custom identity providers; {@link createTokenVerifier} does this for tokens.
 *
 * In-process code is trusted: this only guarantees that *data* (an object from JSON, a config
 * file, a request) can never pass for an authenticated identity, not that a module that imports
 * this function cannot call it. Call it only after you have verified the proof yourself.
 *
 * @param token The raw proof, when a later step needs it (e.g. STS AssumeRoleWithWebIdentity);
 *   readable only through `presentedTokenOf`.
 * @param options `clockToleranceSeconds` (0..300, default 0): the identity keeps acting this long
 *   past `expiresAt`, the skew its verifier accepted at verification.
 * @throws {@link ConfigurationError} when the identity or the authentication is malformed.
 * @example
 * ```ts
 * const identity = attestIdentity({ id: "build-agent-7" }, {
 *   method: "tpm-attestation",
 *   issuer: "https://attest.acme.example",
 *   subject: "build-agent-7",
 *   audience: ["bedrock-warden"],
 *   expiresAt: new Date(Date.now() + 15 * 60_000),
 *   delegation: { depth: 0, actors: [] },
 * });
 * authenticationOf(identity)?.method; // "tpm-attestation"
 * ```
 */
export function attestIdentity(
  identity: WorkloadIdentity,
  authentication: Authentication,
  token?: string,
  options: { readonly clockToleranceSeconds?: number } = {},
): WorkloadIdentity {
  const parsed = authenticationSchema.safeParse(authentication);
  if (!parsed.success) {
    throw new ConfigurationError(`Invalid authentication: ${describeZodError(parsed.error, "authentication", authenticationSchema)}`);
  }
  if (token !== undefined && (typeof token !== "string" || token.length === 0)) {
    throw new ConfigurationError("Invalid authentication: the token, when given, must be a non-empty string");
  }
  const tolerance = options.clockToleranceSeconds ?? 0;
  if (!Number.isFinite(tolerance) || tolerance < 0 || tolerance > 300) {
    throw new ConfigurationError("Invalid authentication: clockToleranceSeconds must be between 0 and 300");
  }
  const frozen = workloadIdentity(identity);
  authenticated.set(frozen, freezeAuthentication(parsed.data));
  // Kept as numbers, apart from the Date objects handed out: whatever is done to those, the
  // identity stops acting when its proof (plus the tolerated clock skew) runs out.
  const expiresAtMs = parsed.data.expiresAt.getTime();
  lifetimes.set(frozen, { expiresAtMs, validUntilMs: expiresAtMs + tolerance * 1000 });
  if (token !== undefined) presentedTokens.set(frozen, token);
  return frozen;
}

/**
 * How `identity` was proven, or `undefined` when it was only declared (built by hand, with
 * {@link workloadIdentity}, or copied from an authenticated identity).
 *
 * @example
 * ```ts
 * const identity = await verifier.verify(token);
 * authenticationOf(identity)?.issuer;              // "https://token.actions.githubusercontent.com"
 * authenticationOf({ ...identity });               // undefined: a copy proves nothing
 * authenticationOf({ id: "x", authenticated: true } as never); // undefined
 * ```
 */
export function authenticationOf(identity: WorkloadIdentity): Authentication | undefined {
  // Guard against non-objects: a WeakMap lookup with a primitive is simply a miss, but be explicit.
  if (typeof identity !== "object" || identity === null) return undefined;
  return authenticated.get(identity);
}

/**
 * The raw token that authenticated `identity`, for exchanging it (STS AssumeRoleWithWebIdentity,
 * a downstream service). It is never on the identity or its {@link Authentication}, so it never
 * reaches `JSON.stringify`, `util.inspect`, spans or records by accident.
 *
 * @example
 * ```ts
 * const webIdentityToken = presentedTokenOf(identity);
 * if (webIdentityToken) await sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn, RoleSessionName, WebIdentityToken: webIdentityToken }));
 * ```
 */
export function presentedTokenOf(identity: WorkloadIdentity): string | undefined {
  if (typeof identity !== "object" || identity === null) return undefined;
  return presentedTokens.get(identity);
}

/**
 * @internal When the proof of `identity` expires, and until when it may still act (the expiry plus
 * the clock skew its verifier tolerates), in epoch milliseconds; undefined for a declared identity.
 */
export function proofLifetime(identity: WorkloadIdentity): { readonly expiresAtMs: number; readonly validUntilMs: number } | undefined {
  if (typeof identity !== "object" || identity === null) return undefined;
  return lifetimes.get(identity);
}

/**
 * A Date whose setters throw. `Object.freeze` does not stop `setTime` (the time is an internal
 * slot), and the one Authentication object is shared by every reader (spans, records, policy
 * context, the providers' caches): no reader may move an expiry the others see.
 */
class ImmutableDate extends Date {}
for (const name of Object.getOwnPropertyNames(Date.prototype)) {
  if (name.startsWith("set")) {
    Object.defineProperty(ImmutableDate.prototype, name, {
      value() {
        throw new TypeError("the dates of an Authentication cannot be changed");
      },
    });
  }
}
Object.freeze(ImmutableDate.prototype);

function freezeAuthentication(a: z.infer<typeof authenticationSchema>): Authentication {
  // Copies throughout: nobody holding the caller's objects (its Date, its arrays) can change them later.
  return Object.freeze({
    method: a.method,
    issuer: a.issuer,
    subject: a.subject,
    audience: Object.freeze([...a.audience]),
    expiresAt: Object.freeze(new ImmutableDate(a.expiresAt.getTime())),
    ...(a.issuedAt && { issuedAt: Object.freeze(new ImmutableDate(a.issuedAt.getTime())) }),
    delegation: Object.freeze({
      depth: a.delegation.depth,
      actors: Object.freeze(
        a.delegation.actors.map((actor) =>
          Object.freeze({ subject: actor.subject, ...(actor.issuer !== undefined && { issuer: actor.issuer }) }),
        ),
      ),
      ...(a.delegation.onBehalfOf !== undefined && { onBehalfOf: a.delegation.onBehalfOf }),
    }),
    ...(a.spiffe && { spiffe: Object.freeze({ trustDomain: a.spiffe.trustDomain, path: a.spiffe.path }) }),
    ...(a.algorithm !== undefined && { algorithm: a.algorithm }),
    ...(a.keyId !== undefined && { keyId: a.keyId }),
  });
}
