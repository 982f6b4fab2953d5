/**
 * Verified workload identity from tokens: OIDC JWTs (GitHub Actions, Kubernetes service accounts,
 * any OIDC issuer) and SPIFFE JWT-SVIDs, checked with `jose` against the issuer's public keys.
 *
 * A verified token becomes a frozen {@link WorkloadIdentity} registered as authenticated (see
 * {@link authenticationOf}); a refused token is a {@link TokenVerificationError} whose `reason` says
 * why and whose message never contains the token.
 * @module
 */
import { decodeProtectedHeader, jwtVerify, type JWTPayload, type ProtectedHeaderParameters } from "jose";
import { z } from "zod";
import { ConfigurationError, TokenVerificationError } from "../errors.js";
import { describeZodError, isCleanText, parseOwnProperties } from "../validation.js";
import { attestIdentity, type Authentication } from "./authentication.js";
import { currentActor, DEFAULT_MAX_DELEGATION_DEPTH, delegationChainOf } from "./delegation.js";
import { createJwksResolver, type JwksSource } from "./jwks.js";
import type { WorkloadIdentity } from "./workload-identity.js";

/**
 * What a {@link TokenVerifier} accepts.
 *
 * @example
 * ```ts
 * const options: TokenVerifierOptions = {
 *   issuer: "https://token.actions.githubusercontent.com",
 *   audience: "bedrock-warden",
 *   keys: { url: "https://token.actions.githubusercontent.com/.well-known/jwks" },
 *   claims: (c) => ({ groups: [`repo:${c.repository}`], environment: String(c.environment ?? "ci") }),
 * };
 * ```
 */
export interface TokenVerifierOptions {
  /** The issuer(s) whose tokens are accepted (`iss`, compared exactly). */
  issuer: string | readonly string[];
  /** The audience(s) this verifier is (`aud` must name at least one). */
  audience: string | readonly string[];
  /** Where the issuer's public keys come from. */
  keys: JwksSource;
  /**
   * The signature algorithms accepted. Default `["RS256", "PS256", "ES256", "ES384", "EdDSA"]`.
   * `"none"` and the HMAC algorithms (`HS*`) are refused: a shared secret is not a workload identity.
   */
  algorithms?: readonly string[];
  /** Allowed clock skew for `exp`, `nbf` and `iat`, in seconds: 0..300, default 30. */
  clockToleranceSeconds?: number;
  /** When set, refuse tokens whose lifetime (`exp - iat`) is longer: long-lived tokens are stolen tokens. */
  maxTokenLifetimeSeconds?: number;
  /**
   * `"oidc"` (default): the identity id is the subject. `"spiffe"`: a SPIFFE JWT-SVID; the principal
   * (`sub`, or the current actor `act.sub` of a delegated token) must be a valid SPIFFE ID, and is the identity id.
   */
  kind?: "oidc" | "spiffe";
  /**
   * For `kind: "spiffe"` (required there): the trust domains whose bundle `keys` is. An SVID of any
   * other trust domain is refused, so a federated partner's key never mints IDs in yours.
   */
  trustDomains?: readonly string[];
  /** Maps extra claims onto the identity. Its output is validated like any identity. */
  claims?: (claims: JWTPayload) => {
    groups?: string[];
    owner?: string;
    environment?: string;
    attributes?: Record<string, string>;
  };
  /** Shorthand: the name of a claim holding an array of group names (e.g. `"groups"`). */
  groupsClaim?: string;
  /**
   * Accept delegated tokens (RFC 8693 `act`), whose current actor becomes the identity. Default
   * `false`: a token carrying `act` is refused (`delegation-not-accepted`). Turn it on only for an
   * issuer that performs token exchange and sets `act` itself: where clients can add claims to their
   * tokens, `act` would let one workload name itself as any other.
   */
  acceptDelegation?: boolean;
  /** With `acceptDelegation`, the deepest `act` nesting accepted. Default 8. */
  maxDelegationDepth?: number;
}

/**
 * Verifies tokens into authenticated workload identities.
 *
 * @example
 * ```ts
 * const identity = await verifier.verify(token);
 * await runAs(identity, () => bedrock.send(new ConverseCommand(input)));
 * ```
 */
export interface TokenVerifier {
  /**
   * Verifies `token` and resolves to an attested, frozen identity.
   * @throws {@link TokenVerificationError} naming the reason; never resolves for a token it refuses.
   */
  verify(token: string): Promise<WorkloadIdentity>;
}

/**
 * The algorithms accepted when none are named: the asymmetric ones issuers actually use.
 *
 * @example
 * ```ts
 * createTokenVerifier({ ...options, algorithms: [...DEFAULT_TOKEN_ALGORITHMS, "RS512"] });
 * ```
 */
export const DEFAULT_TOKEN_ALGORITHMS: readonly string[] = Object.freeze(["RS256", "PS256", "ES256", "ES384", "EdDSA"]);

/** Asymmetric JWS algorithms jose can verify. */
const ASYMMETRIC_ALGORITHMS = [
  "RS256", "RS384", "RS512",
  "PS256", "PS384", "PS512",
  "ES256", "ES384", "ES512",
  "EdDSA", "Ed25519",
  "ML-DSA-44", "ML-DSA-65", "ML-DSA-87",
] as const;
const KNOWN_ALGORITHMS = new Set<string>([...ASYMMETRIC_ALGORITHMS, "none", "HS256", "HS384", "HS512"]);

/**
 * The longest token accepted, in characters: longer than any real token (GitHub's are ~1 KiB,
 * Kubernetes' ~1.5 KiB), and a bound on the work a hostile input can cause.
 *
 * @example
 * ```ts
 * if (token.length > MAX_TOKEN_LENGTH) console.warn("this token will be refused");
 * ```
 */
export const MAX_TOKEN_LENGTH = 16 * 1024;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

const nonEmptyList = (what: string) =>
  z.union(
    [
      z.string().min(1, `must not be empty: ${what}`),
      z
        .array(z.string({ error: "each entry must be a string" }).min(1, "each entry must not be empty"))
        .min(1, `must name at least one ${what}`),
    ],
    { error: `is required: ${what} (a string or an array of strings)` },
  );

const algorithm = z.string({ error: "each algorithm must be a string" }).superRefine((alg, ctx) => {
  if (alg === "none") {
    ctx.addIssue({ code: "custom", message: '"none" is refused: an unsigned token proves nothing about who sent it' });
  } else if (/^HS\d+$/.test(alg)) {
    ctx.addIssue({
      code: "custom",
      message: `"${alg}" is refused: a shared secret is not a workload identity (whoever can verify can also sign); use an asymmetric algorithm such as RS256 or ES256`,
    });
  } else if (!(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) {
    ctx.addIssue({ code: "custom", message: `"${alg}" is not a supported signature algorithm (supported: ${ASYMMETRIC_ALGORITHMS.join(", ")})` });
  }
});

const optionsSchema = z
  .object({
    issuer: nonEmptyList("the issuer whose tokens are accepted, e.g. https://token.actions.githubusercontent.com"),
    audience: nonEmptyList("the audience this verifier is, e.g. bedrock-warden"),
    keys: z.custom<JwksSource>((v) => typeof v === "object" && v !== null, {
      message: "is required: { url }, { file } or { jwks } (where the issuer's public keys are)",
    }),
    algorithms: z.array(algorithm, { error: "must be an array of algorithm names" }).min(1, "must name at least one algorithm").optional(),
    clockToleranceSeconds: z
      .number({ error: "must be a number of seconds" })
      .int("must be a whole number of seconds")
      .min(0, "must be 0 or more")
      .max(300, "must be at most 300 seconds: a larger skew would keep expired tokens alive; fix the clock instead")
      .optional(),
    maxTokenLifetimeSeconds: z
      .number({ error: "must be a number of seconds" })
      .int("must be a whole number of seconds")
      .min(1, "must be at least 1 second")
      .optional(),
    kind: z.enum(["oidc", "spiffe"], { error: 'must be "oidc" or "spiffe"' }).optional(),
    trustDomains: z
      .array(
        z.string({ error: "each trust domain must be a string" }).refine(isTrustDomainName, {
          message: "each trust domain must be a SPIFFE trust domain name: lowercase letters, digits, '.', '-', '_' (no scheme, no port)",
        }),
        { error: "must be an array of trust domain names" },
      )
      .min(1, "must name at least one trust domain (or leave it out)")
      .optional(),
    claims: z.custom<NonNullable<TokenVerifierOptions["claims"]>>((v) => typeof v === "function", {
      message: "must be a function (claims) => ({ groups?, owner?, environment?, attributes? })",
    }).optional(),
    groupsClaim: z.string({ error: "must be the name of a claim" }).min(1, "must not be empty").optional(),
    acceptDelegation: z.boolean({ error: "must be true or false" }).optional(),
    maxDelegationDepth: z
      .number({ error: "must be a number of `act` levels" })
      .int("must be a whole number")
      .min(1, "must be at least 1 (leave acceptDelegation off to refuse delegated tokens)")
      .max(64, "must be at most 64")
      .optional(),
  })
  .strict()
  .refine((o) => o.maxDelegationDepth === undefined || o.acceptDelegation === true, {
    message: "applies only with acceptDelegation: true (delegated tokens are refused without it)",
    path: ["maxDelegationDepth"],
  })
  .refine((o) => o.trustDomains === undefined || o.kind === "spiffe", {
    message: 'trustDomains applies only to kind: "spiffe"',
    path: ["trustDomains"],
  })
  // The JWT-SVID spec picks the keys by the SVID's trust domain: without naming the domains these
  // keys speak for, a federated partner's key could mint IDs in ours.
  .refine((o) => o.kind !== "spiffe" || (o.trustDomains?.length ?? 0) > 0, {
    message: 'is required with kind: "spiffe": name the trust domain(s) whose bundle `keys` is, e.g. ["acme.example"] (one verifier per trust domain)',
    path: ["trustDomains"],
  });

/**
 * Creates a verifier for tokens of one issuer (or a few) and one audience (or a few).
 *
 * Checks, in order: the input's shape (a string of at most 16 KiB, three base64url parts), the
 * algorithm against the allow-list, the signature against the keys, `iss`, `aud`, `exp`, `nbf`
 * (with the clock tolerance), `iat` not in the future, the lifetime bound, the delegation chain,
 * and for SPIFFE the ID and its trust domain. `iss`, `sub`, `aud` and `exp` are required.
 *
 * Principal mapping: the identity id is `sub`; with `acceptDelegation`, a delegated token's (RFC 8693)
 * current actor, the outermost `act.sub`, and its `sub` is then `authentication.delegation.onBehalfOf`.
 * Without it, a token carrying `act` is refused.
 *
 * @throws {@link ConfigurationError} for invalid options, naming the option and what to change.
 * @example
 * ```ts
 * const verifier = createTokenVerifier({
 *   kind: "spiffe",
 *   issuer: "https://spire.acme.example",
 *   audience: "bedrock-warden",
 *   trustDomains: ["acme.example"],
 *   keys: { url: "https://spire.acme.example/keys" },
 * });
 * const agent = await verifier.verify(svid); // agent.id === "spiffe://acme.example/agents/invoice"
 * ```
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  // Own properties only: an inherited (or polluted) option never counts.
  const parsed = parseOwnProperties(optionsSchema, options);
  if (!parsed.success) {
    throw new ConfigurationError(`Invalid token verifier options: ${describeZodError(parsed.error, "", optionsSchema)}`);
  }
  const o = parsed.data;
  const keys = createJwksResolver(o.keys);
  const issuers = typeof o.issuer === "string" ? [o.issuer] : [...o.issuer];
  const audiences = typeof o.audience === "string" ? [o.audience] : [...o.audience];
  const algorithms = [...new Set(o.algorithms ?? DEFAULT_TOKEN_ALGORITHMS)];
  const tolerance = o.clockToleranceSeconds ?? 30;
  const kind = o.kind ?? "oidc";
  const acceptDelegation = o.acceptDelegation === true;
  const maxDepth = o.maxDelegationDepth ?? DEFAULT_MAX_DELEGATION_DEPTH;
  const trustDomains = o.trustDomains && new Set(o.trustDomains);
  const { claims: mapClaims, groupsClaim, maxTokenLifetimeSeconds } = o;
  const context: RefusalContext = { issuers, audiences, algorithms, tolerance, keysSource: keys.source };

  return Object.freeze({
    async verify(token: string): Promise<WorkloadIdentity> {
      const header = preflight(token, algorithms);
      let payload: JWTPayload;
      let protectedHeader: ProtectedHeaderParameters;
      try {
        ({ payload, protectedHeader } = await jwtVerify(token, keys, {
          issuer: issuers,
          audience: audiences,
          algorithms,
          clockTolerance: tolerance,
          requiredClaims: ["iss", "sub", "aud", "exp"],
        }));
      } catch (error) {
        throw refusal(error, context, header);
      }

      // jose checks presence, not shape, of `sub`; and checks `iat` only against maxTokenAge.
      if (typeof payload.sub !== "string" || payload.sub.length === 0) {
        throw new TokenVerificationError("malformed", "Token refused: its `sub` claim is not a non-empty string; the issuer must name the subject");
      }
      const now = Date.now() / 1000;
      const exp = payload.exp as number;
      if (typeof payload.iat === "number" && payload.iat > now + tolerance) {
        throw new TokenVerificationError(
          "not-yet-valid",
          `Token refused: it claims to be issued at ${isoOf(payload.iat)}, in the future (clock tolerance ${tolerance} s); check the clocks of this host and of the issuer`,
        );
      }
      if (maxTokenLifetimeSeconds !== undefined) {
        // Without `iat`, the time left is a lower bound of the lifetime: if that alone is too
        // long, the lifetime is too.
        const lifetime = typeof payload.iat === "number" ? exp - payload.iat : exp - now;
        if (lifetime > maxTokenLifetimeSeconds) {
          throw new TokenVerificationError(
            "lifetime-too-long",
            `Token refused: its lifetime (${Math.round(lifetime)} s) exceeds maxTokenLifetimeSeconds (${maxTokenLifetimeSeconds} s); ask the issuer for shorter-lived tokens (e.g. a projected token's expirationSeconds)`,
          );
        }
      }

      if (payload.act !== undefined && !acceptDelegation) {
        throw new TokenVerificationError(
          "delegation-not-accepted",
          `Token refused: it is delegated (an \`act\` claim), and this verifier does not accept delegated tokens; ` +
            `set acceptDelegation: true only if ${payload.iss as string} performs token exchange (RFC 8693) and sets \`act\` itself`,
        );
      }
      const delegation = delegationChainOf(payload, maxDepth);
      const id = currentActor(delegation) ?? payload.sub;

      let spiffe: { trustDomain: string; path: string } | undefined;
      if (kind === "spiffe") {
        // The principal is the current actor. In a delegated token the subject is whoever the chain
        // acts for (often a person, not a workload): only an undelegated token's sub is the SVID's ID.
        spiffe = id === payload.sub ? spiffeOf(payload.sub, "its `sub`", trustDomains) : spiffeOf(id, "its current actor (`act.sub`)", trustDomains);
      }

      const identity = mapIdentity(id, payload, mapClaims, groupsClaim);
      const authentication: Authentication = {
        method: kind === "spiffe" ? "spiffe-jwt-svid" : "oidc",
        issuer: payload.iss as string,
        subject: payload.sub,
        audience: typeof payload.aud === "string" ? [payload.aud] : [...(payload.aud as string[])],
        expiresAt: new Date(exp * 1000),
        ...(typeof payload.iat === "number" && { issuedAt: new Date(payload.iat * 1000) }),
        delegation,
        ...(spiffe && { spiffe }),
        ...(typeof protectedHeader.alg === "string" && { algorithm: protectedHeader.alg }),
        ...(isCleanText(protectedHeader.kid, 1024) && { keyId: protectedHeader.kid }),
      };
      try {
        return attestIdentity(identity, authentication, token, { clockToleranceSeconds: tolerance });
      } catch (error) {
        // The claims passed the checks above but do not make an identity (e.g. an over-long id).
        throw new TokenVerificationError("malformed", `Token refused: its claims do not make a valid identity: ${stripPrefix((error as Error).message)}`, {
          cause: error,
        });
      }
    },
  });
}

/**
 * The parts of a SPIFFE ID, checked against the SPIFFE ID specification: `spiffe://` then a
 * trust domain of lowercase letters, digits, `.`, `-` and `_`, then an optional path of non-empty
 * segments of letters, digits, `.`, `-` and `_` (not `.` or `..`); no port, userinfo, query,
 * fragment or percent-encoding; at most 2048 bytes.
 *
 * @returns the trust domain and path (`""` for the trust domain's own ID), or `{ error }` saying
 *   which rule failed (without echoing the input).
 * @example
 * ```ts
 * parseSpiffeId("spiffe://acme.example/agents/invoice"); // { trustDomain: "acme.example", path: "/agents/invoice" }
 * parseSpiffeId("spiffe://acme.example/a/../b");        // { error: "a path segment is '.' or '..'" }
 * ```
 */
export function parseSpiffeId(id: string): { trustDomain: string; path: string } | { error: string } {
  if (typeof id !== "string") return { error: "it is not a string" };
  if (Buffer.byteLength(id, "utf8") > 2048) return { error: "it is longer than 2048 bytes" };
  const scheme = "spiffe://";
  if (!id.startsWith(scheme)) return { error: "it does not start with spiffe://" };
  const rest = id.slice(scheme.length);
  if (rest.includes("?")) return { error: "it has a query (?), which SPIFFE IDs may not have" };
  if (rest.includes("#")) return { error: "it has a fragment (#), which SPIFFE IDs may not have" };
  const slash = rest.indexOf("/");
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? "" : rest.slice(slash);
  if (trustDomain.length === 0) return { error: "its trust domain is empty" };
  if (trustDomain.includes("@")) return { error: "it has userinfo (@), which SPIFFE IDs may not have" };
  if (trustDomain.includes(":")) return { error: "it has a port (:), which SPIFFE IDs may not have" };
  if (!isTrustDomainName(trustDomain)) {
    return { error: "its trust domain has characters other than lowercase letters, digits, '.', '-' and '_' (or is longer than 255)" };
  }
  if (path !== "") {
    for (const segment of path.slice(1).split("/")) {
      if (segment === "") return { error: "its path has an empty segment (// or a trailing /)" };
      if (segment === "." || segment === "..") return { error: "a path segment is '.' or '..'" };
      if (!/^[A-Za-z0-9._-]+$/.test(segment)) {
        return { error: "its path has characters other than letters, digits, '.', '-' and '_' (percent-encoding is not allowed)" };
      }
    }
  }
  return { trustDomain, path };
}

function isTrustDomainName(value: string): boolean {
  return typeof value === "string" && value.length > 0 && value.length <= 255 && /^[a-z0-9._-]+$/.test(value);
}

function spiffeOf(value: string, what: string, trustDomains: ReadonlySet<string> | undefined): { trustDomain: string; path: string } {
  const parsed = parseSpiffeId(value);
  if ("error" in parsed) {
    throw new TokenVerificationError(
      "invalid-spiffe-id",
      `Token refused: ${what} is not a valid SPIFFE ID: ${parsed.error}; a JWT-SVID's subject must be spiffe://<trust-domain>/<path>`,
    );
  }
  if (parsed.path === "") {
    throw new TokenVerificationError(
      "invalid-spiffe-id",
      `Token refused: ${what} names the trust domain "${parsed.trustDomain}" itself, not a workload; a JWT-SVID's subject must be spiffe://<trust-domain>/<path>`,
    );
  }
  if (trustDomains && !trustDomains.has(parsed.trustDomain)) {
    // The trust domain passed the character check above, so naming it cannot inject anything.
    throw new TokenVerificationError(
      "untrusted-domain",
      `Token refused: ${what} is in trust domain "${parsed.trustDomain}", which is not one of trustDomains (${[...trustDomains].join(", ")}); add it to trustDomains if it should be trusted`,
    );
  }
  return parsed;
}

function mapIdentity(
  id: string,
  payload: JWTPayload,
  mapClaims: TokenVerifierOptions["claims"],
  groupsClaim: string | undefined,
): WorkloadIdentity {
  const groups: string[] = [];
  if (groupsClaim !== undefined && Object.hasOwn(payload, groupsClaim)) {
    const value = payload[groupsClaim];
    if (!Array.isArray(value) || value.some((g) => typeof g !== "string")) {
      throw new TokenVerificationError(
        "malformed",
        `Token refused: its \`${groupsClaim}\` claim (groupsClaim) is not an array of strings; fix groupsClaim or the issuer's claim mapping`,
      );
    }
    groups.push(...(value as string[]));
  }
  let mapped: ReturnType<NonNullable<TokenVerifierOptions["claims"]>> = {};
  if (mapClaims) {
    try {
      // A structured copy: the mapper sees the claims but cannot change what was verified.
      mapped = mapClaims(structuredClone(payload)) ?? {};
    } catch (error) {
      throw new TokenVerificationError("malformed", "Token refused: the `claims` option threw while mapping its claims (see cause)", { cause: error });
    }
    if (typeof mapped !== "object") {
      throw new TokenVerificationError("malformed", "Token refused: the `claims` option must return an object ({ groups?, owner?, environment?, attributes? })");
    }
  }
  if (mapped.groups !== undefined) {
    if (!Array.isArray(mapped.groups)) {
      throw new TokenVerificationError("malformed", "Token refused: the `claims` option returned groups that are not an array of strings");
    }
    groups.push(...mapped.groups);
  }
  // Validated (with the id) by attestIdentity, like any identity.
  return {
    id,
    ...(groups.length > 0 && { groups }),
    ...(mapped.owner !== undefined && { owner: mapped.owner }),
    ...(mapped.environment !== undefined && { environment: mapped.environment }),
    ...(mapped.attributes !== undefined && { attributes: mapped.attributes }),
  };
}

/** Refuses hostile input before jose parses anything, and checks the algorithm with a precise message. */
function preflight(token: unknown, algorithms: readonly string[]): ProtectedHeaderParameters {
  if (typeof token !== "string") {
    throw new TokenVerificationError("malformed", `Token refused: it is not a string (got ${token === null ? "null" : typeof token}); pass the compact JWT`);
  }
  if (token.length === 0) throw new TokenVerificationError("malformed", "Token refused: it is empty; pass the compact JWT");
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new TokenVerificationError(
      "malformed",
      `Token refused: it is ${token.length} characters long, more than ${MAX_TOKEN_LENGTH}; no identity token is that large`,
    );
  }
  // The signature part may be empty here so that an unsigned (`alg: none`) token is refused for
  // what it is, by the algorithm check below.
  if (!COMPACT_JWS.test(token)) {
    throw new TokenVerificationError(
      "malformed",
      "Token refused: it is not a compact JWT (three base64url parts separated by dots); pass the raw token, without a `Bearer ` prefix or quotes",
    );
  }
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(token);
  } catch (error) {
    throw new TokenVerificationError("malformed", "Token refused: its header is not a base64url-encoded JSON object", { cause: error });
  }
  const alg = header.alg;
  if (typeof alg !== "string" || !algorithms.includes(alg)) {
    const named = typeof alg === "string" && KNOWN_ALGORITHMS.has(alg) ? `"${alg}"` : "an unknown or missing algorithm";
    const why =
      alg === "none" ? " (an unsigned token)" : typeof alg === "string" && /^HS\d+$/.test(alg) ? " (a shared-secret MAC, never a workload identity)" : "";
    throw new TokenVerificationError(
      "algorithm-not-allowed",
      `Token refused: it is signed with ${named}${why}, which is not one of the allowed algorithms (${algorithms.join(", ")}); add the issuer's algorithm to \`algorithms\` if it is an asymmetric one`,
    );
  }
  return header;
}

interface RefusalContext {
  readonly issuers: readonly string[];
  readonly audiences: readonly string[];
  readonly algorithms: readonly string[];
  readonly tolerance: number;
  readonly keysSource: string;
}

/**
 * jose's error without what it carries of the token: its `payload` holds every claim (an email, a
 * name, custom claims), which `console.error(error)` or `util.inspect` would print from the cause.
 */
function withoutClaims(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const scrubbed = new Error(error.message);
  scrubbed.name = error.name;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") Object.defineProperty(scrubbed, "code", { value: code, enumerable: true });
  return scrubbed;
}

/** Maps a jose error (or one of ours) onto a refusal with a stable reason and a useful message. */
function refusal(error: unknown, c: RefusalContext, header: ProtectedHeaderParameters): TokenVerificationError {
  if (error instanceof TokenVerificationError) return error;
  const e = error as { code?: unknown; claim?: unknown; reason?: unknown; payload?: JWTPayload };
  const refuse = (reason: TokenVerificationError["reason"], message: string) =>
    new TokenVerificationError(reason, `Token refused: ${message}`, { cause: withoutClaims(error) });
  switch (e.code) {
    case "ERR_JWT_EXPIRED":
      return refuse(
        "expired",
        `it expired at ${isoOf(e.payload?.exp)} (clock tolerance ${c.tolerance} s); obtain a fresh token`,
      );
    case "ERR_JWT_CLAIM_VALIDATION_FAILED": {
      const claim = typeof e.claim === "string" ? e.claim : "unknown";
      if (e.reason === "missing") {
        return refuse("missing-claim", `it has no \`${claim}\` claim, which is required (iss, sub, aud and exp are); ask the issuer for a token that has it`);
      }
      if (claim === "iss") return refuse("wrong-issuer", `its issuer is not ${c.issuers.length === 1 ? list(c.issuers) : `one of ${list(c.issuers)}`}; check the verifier's \`issuer\` or where the token came from`);
      if (claim === "aud") {
        return refuse("wrong-audience", `its audience does not include ${c.audiences.length === 1 ? list(c.audiences) : `any of ${list(c.audiences)}`}; request the token for this audience (or fix the verifier's \`audience\`)`);
      }
      if (claim === "nbf" && e.reason === "check_failed") {
        return refuse("not-yet-valid", `it is not valid before ${isoOf(e.payload?.nbf)} (clock tolerance ${c.tolerance} s); check the clocks, or use it later`);
      }
      return refuse("malformed", `its \`${claim}\` claim is invalid (${String(e.reason ?? "invalid")}); numeric dates must be numbers`);
    }
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return refuse("bad-signature", `its signature does not verify with the key from ${c.keysSource}; it was not signed by the trusted issuer`);
    case "ERR_JWKS_NO_MATCHING_KEY":
      return refuse(
        "bad-signature",
        `no key in ${c.keysSource} matches its key id and algorithm${typeof header.kid === "string" ? "" : " (it names no kid)"}; it was not signed by a trusted key, or the issuer rotated keys and the key set does not have the new one yet`,
      );
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return refuse("bad-signature", `several keys in ${c.keysSource} match it and none verifies its signature`);
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return refuse("algorithm-not-allowed", `its algorithm is not one of the allowed algorithms (${c.algorithms.join(", ")})`);
    case "ERR_JOSE_NOT_SUPPORTED":
      return refuse("malformed", "it uses a JOSE feature or key type this verifier does not support (e.g. an unknown `crit` header)");
    case "ERR_JWKS_TIMEOUT":
      return refuse("keys-unavailable", `fetching ${c.keysSource} timed out; check that the issuer is reachable`);
    case "ERR_JWKS_INVALID":
    case "ERR_JWK_INVALID":
      return refuse("keys-unavailable", `${c.keysSource} is not a valid set of public keys; fix the key set`);
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
      return refuse("malformed", "it is not a well-formed JWS/JWT (its header, payload or signature cannot be decoded, or the payload is not a JSON object)");
    default:
      // jose checks the RSA key size after the key is chosen, outside the key resolver.
      if (error instanceof TypeError && /modulusLength/.test(error.message)) {
        return refuse("keys-unavailable", `the matching key in ${c.keysSource} is an RSA key shorter than 2048 bits, which is refused; the issuer must use a stronger key`);
      }
      // A TypeError from a misbehaving key resolver or the runtime: still a refusal, never an allow.
      return refuse("malformed", `it could not be verified (${error instanceof Error ? error.name : "unknown error"})`);
  }
}

function isoOf(seconds: unknown): string {
  return typeof seconds === "number" && Number.isFinite(seconds) && Math.abs(seconds) < 8.64e12 ? new Date(seconds * 1000).toISOString() : "an invalid time";
}

function list(values: readonly string[]): string {
  return values.length === 1 ? `"${values[0]}"` : `[${values.map((v) => `"${v}"`).join(", ")}]`;
}


function stripPrefix(message: string): string {
  return message.replace(/^Invalid workload identity: /, "").replace(/^Invalid authentication: /, "");
}
