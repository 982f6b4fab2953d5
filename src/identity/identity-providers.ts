/**
 * Identity providers: where a workload's token comes from (a file the platform rotates, the GitHub
 * Actions token endpoint, any other source), verified into an authenticated identity at the start
 * of each task.
 * @module
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { ConfigurationError, IdentityProviderError } from "../errors.js";
import { CONTROL_CHARACTERS, describeZodError } from "../validation.js";
import { authenticationOf } from "./authentication.js";
import { isLoopback } from "./jwks.js";
import type { TokenVerifier } from "./token-verifier.js";
import type { WorkloadIdentity } from "./workload-identity.js";

/**
 * A source of authenticated workload identities, asked at the start of each task (see `runTask`).
 * `identity()` resolves to an identity registered as authenticated (see `authenticationOf`), or
 * rejects: with a `TokenVerificationError` when the token is not valid, an
 * {@link IdentityProviderError} when no token could be obtained.
 *
 * @example
 * ```ts
 * const provider: IdentityProvider = tokenFileIdentity({ path: "/var/run/secrets/tokens/bedrock", verifier });
 * const identity = await provider.identity();
 * await runAs(identity, () => bedrock.converse(input));
 * ```
 */
export interface IdentityProvider {
  /** Names the provider in errors and evidence, e.g. `"token-file"`. */
  readonly name: string;
  /** Obtains and verifies the current token; resolves to an attested, frozen identity. */
  identity(): Promise<WorkloadIdentity>;
}

/** A token file is one token and a newline; anything much larger is not a token file. */
const MAX_TOKEN_FILE_BYTES = 64 * 1024;
/** How many verified tokens a provider remembers (rotation keeps one or two alive at a time). */
const VERIFIED_CACHE_SIZE = 16;
/** A GitHub token this close to expiry is replaced rather than handed to a task that may outlive it. */
const GITHUB_REFRESH_MARGIN_MS = 60_000;
const GITHUB_REQUEST_TIMEOUT_MS = 10_000;

const verifierSchema = z.custom<TokenVerifier>((v) => typeof (v as TokenVerifier | null)?.verify === "function", {
  message: "is required: a TokenVerifier from createTokenVerifier(...)",
});
const label = z
  .string({ error: "must be a string" })
  .min(1, "must not be empty")
  .max(256, "must be at most 256 characters")
  .refine((s) => !CONTROL_CHARACTERS.test(s), "must not contain control characters");

const tokenFileSchema = z.object({ path: z.string({ error: "is required: the token file's path" }).min(1, "must not be empty"), verifier: verifierSchema }).strict();
const githubSchema = z
  .object({
    verifier: verifierSchema,
    audience: label.optional(),
    fetch: z.custom<typeof fetch>((v) => typeof v === "function", { message: "must be a fetch function" }).optional(),
    env: z.record(z.string(), z.string().optional(), { error: "must be an object of environment variables" }).optional(),
  })
  .strict();
const tokenSchema = z
  .object({
    token: z.custom<() => string | Promise<string>>((v) => typeof v === "function", {
      message: "is required: a function returning the token (or a promise of it)",
    }),
    verifier: verifierSchema,
    name: label.optional(),
  })
  .strict();

/**
 * An identity from a token file that the platform rotates on disk: a Kubernetes projected
 * service-account token, or the JWT-SVID a SPIFFE helper writes. The file is re-read at every
 * `identity()` call, so a rotated token is picked up at the next task; a token already verified
 * is not verified again until it expires.
 *
 * @throws {@link ConfigurationError} for malformed options.
 * @example
 * ```ts
 * // Pod spec: a projected volume with serviceAccountToken { audience: "bedrock-warden", expirationSeconds: 3600, path: "bedrock" }
 * const provider = tokenFileIdentity({
 *   path: "/var/run/secrets/tokens/bedrock",
 *   verifier: createTokenVerifier({
 *     issuer: "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE",
 *     audience: "bedrock-warden",
 *     keys: { url: "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE/keys" },
 *   }),
 * });
 * await runTask(provider, "triage", () => agent.run());
 * ```
 */
export function tokenFileIdentity(options: { path: string; verifier: TokenVerifier }): IdentityProvider {
  const { path, verifier } = parse(tokenFileSchema, options, "tokenFileIdentity");
  const name = "token-file";
  const cache = new VerifiedTokens(verifier);
  return Object.freeze({
    name,
    async identity(): Promise<WorkloadIdentity> {
      let buffer: Buffer;
      try {
        buffer = await readFile(path);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        throw new IdentityProviderError(
          name,
          `Cannot read the token file ${path} (${code}); check the projected volume or the SPIFFE helper that writes it, and that this process may read it`,
          { cause: error },
        );
      }
      if (buffer.byteLength > MAX_TOKEN_FILE_BYTES) {
        throw new IdentityProviderError(name, `The token file ${path} is larger than ${MAX_TOKEN_FILE_BYTES} bytes, which no token is; check the path`);
      }
      const token = buffer.toString("utf8").trim();
      if (token.length === 0) {
        throw new IdentityProviderError(name, `The token file ${path} is empty; the platform has not written the token yet, or the path is wrong`);
      }
      return cache.verify(token);
    },
  });
}

/**
 * An identity from the GitHub Actions OIDC token of the running job. The token is requested from
 * `ACTIONS_ID_TOKEN_REQUEST_URL` (with `audience`, when given) using
 * `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`, verified, and reused until a minute
 * before it expires. The job needs `permissions: id-token: write`.
 *
 * @throws {@link ConfigurationError} for malformed options. `identity()` rejects with an
 *   {@link IdentityProviderError} when the job has no token endpoint or it refuses.
 * @example
 * ```ts
 * const provider = githubActionsIdentity({
 *   audience: "bedrock-warden",
 *   verifier: createTokenVerifier({
 *     issuer: "https://token.actions.githubusercontent.com",
 *     audience: "bedrock-warden",
 *     keys: { url: "https://token.actions.githubusercontent.com/.well-known/jwks" },
 *     claims: (c) => ({ groups: [`repo:${String(c.repository)}`], environment: String(c.environment ?? "ci") }),
 *   }),
 * });
 * const identity = await provider.identity(); // id: "repo:acme/invoices:ref:refs/heads/main"
 * ```
 */
export function githubActionsIdentity(options: {
  verifier: TokenVerifier;
  audience?: string;
  fetch?: typeof fetch;
  env?: Record<string, string | undefined>;
}): IdentityProvider {
  const parsed = parse(githubSchema, options, "githubActionsIdentity");
  const name = "github-actions";
  const cache = new VerifiedTokens(parsed.verifier);
  let current: WorkloadIdentity | undefined;
  let pending: Promise<WorkloadIdentity> | undefined;

  const obtain = async (): Promise<WorkloadIdentity> => {
    const env = parsed.env ?? process.env;
    const url = requestUrl(env, name, parsed.audience);
    const requestToken = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
    if (!requestToken) {
      throw new IdentityProviderError(
        name,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set, so no GitHub Actions OIDC token can be requested; add `permissions: id-token: write` to the job (or the workflow)",
      );
    }
    const doFetch = parsed.fetch ?? globalThis.fetch;
    let response: Response;
    try {
      response = await doFetch(url, {
        method: "GET",
        headers: { Authorization: `bearer ${requestToken}`, Accept: "application/json; api-version=2.0" },
        redirect: "error",
        signal: AbortSignal.timeout(GITHUB_REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      const why = (error as Error).name === "TimeoutError" ? `no answer within ${GITHUB_REQUEST_TIMEOUT_MS} ms` : causeCode(error);
      throw new IdentityProviderError(name, `GitHub's OIDC token endpoint could not be reached (${why})`, { cause: error });
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      throw new IdentityProviderError(
        name,
        `GitHub's OIDC token endpoint answered HTTP ${response.status}; check that the job has \`permissions: id-token: write\`${parsed.audience ? " and that the audience is accepted" : ""}`,
      );
    }
    let value: unknown;
    try {
      const text = await response.text();
      if (text.length > MAX_TOKEN_FILE_BYTES) throw new Error("response too large");
      value = (JSON.parse(text) as { value?: unknown } | null)?.value;
    } catch (error) {
      throw new IdentityProviderError(name, "GitHub's OIDC token endpoint answered with something other than JSON { value }", { cause: error });
    }
    if (typeof value !== "string" || value.length === 0) {
      throw new IdentityProviderError(name, "GitHub's OIDC token endpoint answered without a token (no string `value`)");
    }
    return cache.verify(value);
  };

  return Object.freeze({
    name,
    async identity(): Promise<WorkloadIdentity> {
      // Each request mints a token over the network; a task starting now can use the last one
      // while it has more than a minute left.
      if (current && expiresInMs(current) > GITHUB_REFRESH_MARGIN_MS) return current;
      pending ??= obtain()
        .then((identity) => (current = identity))
        .finally(() => {
          pending = undefined;
        });
      return pending;
    },
  });
}

/**
 * An identity from any other token source (a secret manager, a sidecar's API, a vault agent):
 * `token()` is called at every `identity()` call, and a token already verified is not verified
 * again until it expires.
 *
 * @throws {@link ConfigurationError} for malformed options.
 * @example
 * ```ts
 * const provider = tokenIdentity({
 *   name: "vault",
 *   token: async () => (await vault.read("identity/oidc/token/bedrock")).data.token,
 *   verifier,
 * });
 * ```
 */
export function tokenIdentity(options: { token: () => string | Promise<string>; verifier: TokenVerifier; name?: string }): IdentityProvider {
  const parsed = parse(tokenSchema, options, "tokenIdentity");
  const name = parsed.name ?? "token";
  const cache = new VerifiedTokens(parsed.verifier);
  const source = parsed.token;
  return Object.freeze({
    name,
    async identity(): Promise<WorkloadIdentity> {
      let token: unknown;
      try {
        token = await source();
      } catch (error) {
        // The source's own message is not repeated: it is user code and might quote the token.
        throw new IdentityProviderError(name, `The token source of identity provider "${name}" failed (${(error as Error)?.name ?? "error"}; see cause)`, {
          cause: error,
        });
      }
      if (typeof token !== "string" || token.trim().length === 0) {
        throw new IdentityProviderError(name, `The token source of identity provider "${name}" returned ${typeof token === "string" ? "an empty string" : typeof token}, not a token`);
      }
      return cache.verify(token.trim());
    },
  });
}

/**
 * Verified identities by token, bounded and dropped at expiry: a provider asked at every task
 * verifies each token once, not once per task. Concurrent asks for one token share one verification.
 */
class VerifiedTokens {
  readonly #verified = new Map<string, WorkloadIdentity>();
  readonly #pending = new Map<string, Promise<WorkloadIdentity>>();

  constructor(readonly verifier: TokenVerifier) {}

  verify(token: string): Promise<WorkloadIdentity> {
    const known = this.#verified.get(token);
    if (known) {
      if (expiresInMs(known) > 0) return Promise.resolve(known);
      this.#verified.delete(token);
    }
    let pending = this.#pending.get(token);
    if (!pending) {
      pending = this.verifier
        .verify(token)
        .then((identity) => {
          // Only what this library attested is remembered: a custom verifier returning a plain
          // object is re-verified every time rather than trusted for longer than it said.
          if (expiresInMs(identity) > 0) {
            if (this.#verified.size >= VERIFIED_CACHE_SIZE) this.#verified.delete(this.#verified.keys().next().value!);
            this.#verified.set(token, identity);
          }
          return identity;
        })
        .finally(() => this.#pending.delete(token));
      this.#pending.set(token, pending);
    }
    return pending;
  }
}

function expiresInMs(identity: WorkloadIdentity): number {
  const expiresAt = authenticationOf(identity)?.expiresAt;
  return expiresAt ? expiresAt.getTime() - Date.now() : -1;
}

function requestUrl(env: Record<string, string | undefined>, name: string, audience: string | undefined): URL {
  const raw = env.ACTIONS_ID_TOKEN_REQUEST_URL;
  if (!raw) {
    throw new IdentityProviderError(
      name,
      "ACTIONS_ID_TOKEN_REQUEST_URL is not set: this is not a GitHub Actions job that may request an OIDC token; add `permissions: id-token: write` to the job (GitHub does not issue tokens to pull requests from forks)",
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch (error) {
    throw new IdentityProviderError(name, "ACTIONS_ID_TOKEN_REQUEST_URL is not a valid URL", { cause: error });
  }
  // The request token is a bearer secret: never send it in clear text beyond this host.
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopback(url.hostname))) {
    throw new IdentityProviderError(name, `ACTIONS_ID_TOKEN_REQUEST_URL must be an https: URL (got ${url.protocol})`);
  }
  if (audience !== undefined) url.searchParams.set("audience", audience);
  return url;
}


function causeCode(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  if (typeof cause?.code === "string") return cause.code;
  return error instanceof Error ? error.name : "network error";
}

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ConfigurationError(`Invalid ${what} options: ${describeZodError(parsed.error, "", schema)}`);
  return parsed.data;
}
