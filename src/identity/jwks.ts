/**
 * Where a token verifier finds the issuer's public keys: a JWKS URL, a JWKS file, or keys given
 * inline. Every failure to get keys refuses the token with reason `"keys-unavailable"` (never an
 * allow, never a hang beyond the timeout), and names the source and the cause.
 * @module
 */
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  type CryptoKey,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
} from "jose";
import { z } from "zod";
import { ConfigurationError, TokenVerificationError } from "../errors.js";
import { describeZodError } from "../validation.js";

/**
 * Where the issuer's public keys come from.
 *
 * - `{ url }`: fetched with jose's `createRemoteJWKSet`: cached for `cacheMaxAgeMs` (default 10 min),
 *   refetched when a token names an unknown `kid` (at most once per `cooldownMs`, default 30 s),
 *   each fetch bounded by `timeoutMs` (default 5 s). `https:` only, except loopback hosts.
 * - `{ file }`: a JWKS file (e.g. a mounted ConfigMap or a SPIFFE bundle in JWKS form), read at
 *   first use and re-read when a token names an unknown `kid` (key rotation), at most once per
 *   `cooldownMs` (default 30 s).
 * - `{ jwks }`: the keys themselves.
 *
 * @example
 * ```ts
 * const github: JwksSource = { url: "https://token.actions.githubusercontent.com/.well-known/jwks" };
 * const kubernetes: JwksSource = { file: "/var/run/secrets/oidc/jwks.json" };
 * const pinned: JwksSource = { jwks: { keys: [publicJwk] } };
 * ```
 */
export type JwksSource =
  | { url: string | URL; cacheMaxAgeMs?: number; cooldownMs?: number; timeoutMs?: number }
  | { file: string; cooldownMs?: number }
  | { jwks: JSONWebKeySet };

/**
 * A key resolver for jose's `jwtVerify`, with a description of its source for messages.
 *
 * @example
 * ```ts
 * const keys = createJwksResolver({ file: "/etc/oidc/jwks.json" });
 * const { payload } = await jwtVerify(token, keys, { issuer, audience });
 * console.log(keys.source); // "the JWKS file /etc/oidc/jwks.json"
 * ```
 */
export interface JwksResolver {
  (protectedHeader: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey>;
  /** Names the source in messages, e.g. `the JWKS at https://issuer.example/jwks`. */
  readonly source: string;
}

/** A JWKS is a few keys: anything far larger is not one, and is not read into memory. */
const MAX_JWKS_FILE_BYTES = 1024 * 1024;

const ms = (what: string, max: number) =>
  z
    .number({ error: `must be a number of milliseconds (${what})` })
    .int("must be a whole number of milliseconds")
    .min(0, "must be 0 or more")
    .max(max, `must be at most ${max} ms`)
    .optional();

const urlSchema = z
  .object({
    url: z.union([z.string(), z.instanceof(URL)], { error: "must be a URL (string or URL)" }),
    cacheMaxAgeMs: ms("how long fetched keys are used before they are fetched again", 86_400_000),
    cooldownMs: ms("the minimum time between two refetches for an unknown kid", 3_600_000),
    timeoutMs: z
      .number({ error: "must be a number of milliseconds (the bound on one JWKS fetch)" })
      .int("must be a whole number of milliseconds")
      .min(1, "must be at least 1 ms")
      .max(60_000, "must be at most 60000 ms: a verification must not wait longer than that for keys")
      .optional(),
  })
  .strict();
const fileSchema = z
  .object({
    file: z.string({ error: "must be a file path" }).min(1, "must not be empty"),
    cooldownMs: ms("the minimum time between two re-reads for an unknown kid", 3_600_000),
  })
  .strict();
const inlineSchema = z.object({ jwks: z.unknown() }).strict();

/**
 * Builds the key resolver of a {@link JwksSource}. {@link createTokenVerifier} calls it; use it
 * directly only to call jose yourself.
 *
 * @throws {@link ConfigurationError} for a malformed source (a bad URL, `http:` to a non-loopback
 *   host, inline keys that are not a JWKS).
 * @example
 * ```ts
 * const keys = createJwksResolver({ url: "https://issuer.example/.well-known/jwks.json", timeoutMs: 2000 });
 * ```
 */
export function createJwksResolver(source: JwksSource): JwksResolver {
  if (typeof source !== "object" || source === null) {
    throw new ConfigurationError("Invalid keys: must be { url }, { file } or { jwks }");
  }
  if ("url" in source) return remoteResolver(parse(urlSchema, source));
  if ("file" in source) return fileResolver(parse(fileSchema, source));
  if ("jwks" in source) return inlineResolver(parse(inlineSchema, source).jwks);
  throw new ConfigurationError(
    "Invalid keys: must be { url: <JWKS URL> }, { file: <JWKS file path> } or { jwks: { keys: [...] } }",
  );
}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ConfigurationError(`Invalid keys: ${describeZodError(parsed.error, "keys", schema)}`);
  return parsed.data;
}

function inlineResolver(jwks: unknown): JwksResolver {
  const keys = (jwks as { keys?: unknown } | null)?.keys;
  if (Array.isArray(keys)) {
    if (keys.length === 0) throw new ConfigurationError("Invalid keys: keys.jwks has no keys, so every token would be refused; add the issuer's public keys");
    // Secret material in a verifier's configuration is a leak waiting to happen (and a symmetric
    // key would let whoever reads the config mint identities): refuse it here, not at first use.
    keys.forEach((key: unknown, index) => {
      const k = key as { d?: unknown; kty?: unknown; k?: unknown } | null;
      if (k?.d !== undefined || k?.kty === "oct" || k?.k !== undefined) {
        throw new ConfigurationError(
          `Invalid keys: keys.jwks.keys.${index} is a private or secret key; give only public keys (remove \`d\`, never use \`oct\` keys)`,
        );
      }
    });
  }
  let local: ReturnType<typeof createLocalJWKSet>;
  try {
    local = createLocalJWKSet(usableKeySet(jwks) as JSONWebKeySet);
  } catch (error) {
    throw new ConfigurationError('Invalid keys: keys.jwks must be a JSON Web Key Set: { "keys": [ <public JWK>, ... ] }', {
      cause: error,
    });
  }
  const source = "the inline JWKS (keys.jwks)";
  return describe(async (header, token) => {
    try {
      return await local(header, token);
    } catch (error) {
      throw keyFailure(error, source);
    }
  }, source);
}

function remoteResolver(options: z.infer<typeof urlSchema>): JwksResolver {
  let url: URL;
  try {
    url = new URL(String(options.url));
  } catch (error) {
    throw new ConfigurationError("Invalid keys: keys.url is not a valid URL", { cause: error });
  }
  if (url.username || url.password) {
    throw new ConfigurationError("Invalid keys: keys.url must not carry credentials (user:password@)");
  }
  // Keys fetched over plain HTTP can be swapped by anyone on the path, and whoever supplies the
  // keys decides who is authenticated. Loopback is allowed for tests and local sidecars.
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopback(url.hostname))) {
    throw new ConfigurationError(
      `Invalid keys: keys.url must use https: (got ${url.protocol}); http: is accepted only for loopback hosts`,
    );
  }
  // Name the endpoint in messages without any query string (which could carry a key or a tenant secret).
  const source = `the JWKS at ${url.origin}${url.pathname}`;
  const remote = createRemoteJWKSet(url, {
    timeoutDuration: options.timeoutMs ?? 5000,
    cooldownDuration: options.cooldownMs ?? 30_000,
    cacheMaxAge: options.cacheMaxAgeMs ?? 600_000,
    // jose reports a non-200 answer without its status; this keeps the status for the message.
    [customFetch]: async (href, init) => {
      const response = await fetch(href, init);
      if (response.status !== 200) {
        await response.body?.cancel().catch(() => undefined);
        throw new HttpStatusError(response.status);
      }
      // Rewritten (a SPIFFE bundle's key uses) and handed to jose as a fresh response. Read with a
      // cap, as a key set file is: an endpoint answering without end must not fill the memory.
      const text = await cappedText(response, MAX_JWKS_FILE_BYTES);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return new Response("not json", { status: 200, headers: { "content-type": "application/json" } });
      }
      return new Response(JSON.stringify(usableKeySet(json)), { status: 200, headers: { "content-type": "application/json" } });
    },
  });
  return describe(async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      throw keyFailure(error, source);
    }
  }, source);
}

/** A response's body as text, refused past `maxBytes` (by its content-length, or as it arrives). */
async function cappedText(response: Response, maxBytes: number): Promise<string> {
  const tooLarge = () => new Error(`the key set is larger than ${maxBytes} bytes, which no key set is`);
  const declared = Number(response.headers.get("content-length"));
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (response.body === null) return "";
  const chunks: Uint8Array[] = [];
  let received = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    received += value.byteLength;
    if (received > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function fileResolver(options: z.infer<typeof fileSchema>): JwksResolver {
  const path = options.file;
  const cooldownMs = options.cooldownMs ?? 30_000;
  const source = `the JWKS file ${path}`;
  let loaded: { keys: ReturnType<typeof createLocalJWKSet>; text: string } | undefined;
  let lastReadAt = -Infinity;
  let pending: Promise<void> | undefined;

  // One read at a time: a burst of tokens with an unknown kid shares a single re-read.
  const reload = () =>
    (pending ??= (async () => {
      lastReadAt = Date.now();
      const text = await readJwksFile(path, source);
      if (loaded?.text === text) return;
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (error) {
        // Not the parser's message: it quotes the file's content, and `file` may point at the wrong file.
        throw unavailable(`${source} is not valid JSON; fix the file`, error);
      }
      try {
        loaded = { keys: createLocalJWKSet(usableKeySet(json) as JSONWebKeySet), text };
      } catch (error) {
        throw unavailable(`${source} is not a JSON Web Key Set ({ "keys": [ <public JWK>, ... ] }); fix the file`, error);
      }
    })().finally(() => {
      pending = undefined;
    }));

  return describe(async (header, token) => {
    if (!loaded) await reload();
    try {
      return await loaded!.keys(header, token);
    } catch (error) {
      // An unknown kid is how key rotation shows: re-read the file, but not more than once per
      // cooldown, so that tokens naming random kids cannot turn every verification into a read.
      if (isJoseCode(error, "ERR_JWKS_NO_MATCHING_KEY") && Date.now() - lastReadAt >= cooldownMs) {
        await reload();
        try {
          return await loaded!.keys(header, token);
        } catch (retryError) {
          throw keyFailure(retryError, source);
        }
      }
      throw keyFailure(error, source);
    }
  }, source);
}

async function readJwksFile(path: string, source: string): Promise<string> {
  let buffer: Buffer;
  try {
    buffer = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw unavailable(`${source} cannot be read (${code}); check the path and that the process may read it`, error);
  }
  if (buffer.byteLength > MAX_JWKS_FILE_BYTES) {
    throw unavailable(`${source} is larger than ${MAX_JWKS_FILE_BYTES} bytes, which no key set is; check the path`);
  }
  return buffer.toString("utf8");
}

/** Raised by the fetch wrapper so that the message can name the HTTP status. */
class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

/**
 * Turns a failure to get keys into a refusal naming the source. The errors that say something
 * about the *token* (no key matches its kid/alg, several do, its alg is unsupported) pass through
 * for the verifier to map.
 */
function keyFailure(error: unknown, source: string): unknown {
  if (error instanceof TokenVerificationError) return error;
  if (isJoseCode(error, "ERR_JWKS_NO_MATCHING_KEY", "ERR_JWKS_MULTIPLE_MATCHING_KEYS", "ERR_JOSE_NOT_SUPPORTED")) return error;
  return unavailable(`${source} could not be used: ${describeKeyError(error)}`, error);
}

function describeKeyError(error: unknown): string {
  if (error instanceof HttpStatusError) {
    return error.status >= 300 && error.status < 400
      ? `it answered HTTP ${error.status} (a redirect, which is not followed); use the final URL`
      : `it answered HTTP ${error.status}, not 200; check the URL and that the issuer is up`;
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "ERR_JWKS_TIMEOUT") return "the fetch timed out; check that the issuer is reachable, or raise keys.timeoutMs";
  if (code === "ERR_JWKS_INVALID") return "it is not a JSON Web Key Set of public keys; check the URL or the file";
  if (code === "ERR_JWK_INVALID") return "a key in it is invalid; fix the key set";
  if (code === "ERR_JOSE_GENERIC") return `${(error as Error).message}; check the URL`;
  if (error instanceof TypeError && error.message === "fetch failed") {
    const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
    const why = typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : "network error";
    return `it could not be reached (${why}); check the URL and the network`;
  }
  return error instanceof Error ? `${error.name}: ${error.message}` : "unknown error";
}

function unavailable(message: string, cause?: unknown): TokenVerificationError {
  return new TokenVerificationError("keys-unavailable", `Token refused: ${message}`, cause === undefined ? undefined : { cause });
}

function isJoseCode(error: unknown, ...codes: string[]): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && codes.includes(code);
}

/** Whether a URL's host is this machine: the one place plain http: is acceptable for a key or token endpoint. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  // Not *.localhost: only some resolvers guarantee those names stay on this machine.
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  if (isIP(host) === 6) return host === "::1";
  return false;
}

/**
 * A key set as jose can use it. A SPIFFE trust bundle marks its JWT-SVID keys `"use": "jwt-svid"`
 * (and its X.509 roots `"x509-svid"`), which jose skips as not for signatures: the JWT-SVID keys
 * are signature keys, the X.509 ones have no place here.
 */
export function usableKeySet(json: unknown): unknown {
  const keys = (json as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) return json;
  return {
    ...(json as object),
    keys: keys
      .filter((key) => (key as { use?: unknown } | null)?.use !== "x509-svid")
      .map((key) => ((key as { use?: unknown } | null)?.use === "jwt-svid" ? { ...(key as object), use: "sig" } : key)),
  };
}

function describe(fn: (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>, source: string): JwksResolver {
  return Object.assign(fn, { source }) as JwksResolver;
}
