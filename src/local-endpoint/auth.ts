/**
 * Request authentication the way Bedrock does it: SigV4 (`AWS4-HMAC-SHA256`, service `bedrock`)
 * verified for real against registered key pairs, or a registered Bedrock API key sent as a bearer
 * token. The signature is recomputed with the SDK's own `SignatureV4`, so whatever the SDK signs,
 * this verifies, and a wrong secret, a tampered body or a foreign region does not.
 * @module
 */
import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import type { Checksum, HttpRequest, SourceData } from "@smithy/types";
import type { LocalCredentials, SignatureCheck } from "./types.js";

/**
 * The key pair a fresh endpoint accepts. It is not an AWS credential and works nowhere else.
 *
 * @example
 * ```ts
 * const client = new BedrockRuntimeClient({ endpoint: server.url, region: "us-east-1", credentials: LOCAL_BEDROCK_CREDENTIALS });
 * ```
 */
export const LOCAL_BEDROCK_CREDENTIALS: Readonly<{ accessKeyId: string; secretAccessKey: string }> = Object.freeze({
  accessKeyId: "AKIALOCALBEDROCKTEST",
  secretAccessKey: "local-bedrock-endpoint-test-secret-not-an-aws-key",
});

/** What an authentication failure is answered with: AWS's status, error type and message. */
export interface AuthFailure {
  status: 403;
  type: string;
  message: string;
}

/** The parts of a received request that authentication looks at. */
export interface SignedRequestParts {
  method: string;
  /** Raw, still-encoded path. */
  path: string;
  /** Decoded query parameters. */
  query: Record<string, string | string[]>;
  /** Lowercased header names, HTTP/2 pseudo-headers (`:authority`) included. */
  headers: Record<string, string>;
  /** `undefined` when the body is not read (bidirectional streams). */
  body: Uint8Array | undefined;
}

const SERVICE = "bedrock";
// SigV4 signatures are refused when x-amz-date is further than this from the server's clock. AWS
// says "Signature expired" in that case, which the SDK treats as clock skew and retries after
// correcting its offset from the response's Date header.
const MAX_CLOCK_SKEW_MS = 15 * 60_000;

const FAILURES = {
  missing: { type: "MissingAuthenticationTokenException", message: "Missing Authentication Token" },
  malformed: { type: "IncompleteSignatureException", message: "" },
  signature: {
    type: "InvalidSignatureException",
    message:
      "The request signature we calculated does not match the signature you provided. " +
      "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
  },
  unknownKey: { type: "UnrecognizedClientException", message: "The security token included in the request is invalid." },
  expired: { type: "ExpiredTokenException", message: "The security token included in the request is expired" },
} as const;

/** Registered key pairs and bearer tokens, and the verification of requests against them. */
export class Authenticator {
  private readonly keys = new Map<string, LocalCredentials>();
  private readonly tokens = new Set<string>();

  constructor(private readonly region: string) {}

  addCredentials(credentials: LocalCredentials): void {
    if (!credentials.accessKeyId || !credentials.secretAccessKey) {
      throw new TypeError("addCredentials needs an accessKeyId and a secretAccessKey");
    }
    this.keys.set(credentials.accessKeyId, { ...credentials });
  }

  removeCredentials(accessKeyId: string): void {
    this.keys.delete(accessKeyId);
  }

  addBearerToken(token: string): void {
    if (!token) throw new TypeError("addBearerToken needs a non-empty token");
    this.tokens.add(token);
  }

  removeBearerToken(token: string): void {
    this.tokens.delete(token);
  }

  /** Checks a request; `failure` is set exactly when `check.status` is not `valid`. */
  async authenticate(request: SignedRequestParts, now = new Date()): Promise<{ check: SignatureCheck; failure?: AuthFailure }> {
    const authorization = request.headers["authorization"];
    if (!authorization) return reject({ status: "missing", reason: "no Authorization header" }, FAILURES.missing);

    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (bearer) {
      return this.tokens.has(bearer[1]!)
        ? { check: { status: "valid", scheme: "bearer" } }
        : reject({ status: "unknown-key", scheme: "bearer", reason: "bearer token was never registered" }, FAILURES.unknownKey);
    }
    try {
      return await this.verifySigV4(authorization, request, now);
    } catch (error) {
      // Whatever the signer chokes on is a request AWS would refuse as well.
      const reason = `signature could not be checked: ${error instanceof Error ? error.message : String(error)}`;
      return reject({ status: "invalid", scheme: "sigv4", reason }, FAILURES.signature);
    }
  }

  private async verifySigV4(
    authorization: string,
    request: SignedRequestParts,
    now: Date,
  ): Promise<{ check: SignatureCheck; failure?: AuthFailure }> {
    const malformed = (reason: string, accessKeyId?: string) =>
      reject(
        { status: "invalid", scheme: "sigv4", reason, ...(accessKeyId ? { accessKeyId } : {}) },
        { ...FAILURES.malformed, message: reason },
      );
    const parsed = parseAuthorization(authorization);
    if (!parsed) return malformed(`Authorization header is not AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature`);
    const { accessKeyId, date, region, service, terminator, signedHeaders, signature } = parsed;
    const invalid = (reason: string, message: string = FAILURES.signature.message) =>
      reject({ status: "invalid", scheme: "sigv4", accessKeyId, reason }, { type: FAILURES.signature.type, message });

    const key = this.keys.get(accessKeyId);
    if (!key) return reject({ status: "unknown-key", scheme: "sigv4", accessKeyId, reason: "access key id was never registered" }, FAILURES.unknownKey);
    const sentToken = request.headers["x-amz-security-token"];
    if (key.sessionToken !== sentToken) {
      const reason = key.sessionToken ? "x-amz-security-token is missing or does not belong to this key" : "a session token was sent for a key that has none";
      return reject({ status: "unknown-key", scheme: "sigv4", accessKeyId, reason }, FAILURES.unknownKey);
    }
    if (key.expiration && key.expiration.getTime() <= now.getTime()) {
      return reject({ status: "expired", scheme: "sigv4", accessKeyId, reason: `key expired at ${key.expiration.toISOString()}` }, FAILURES.expired);
    }

    const amzDate = request.headers["x-amz-date"];
    const signingDate = amzDate ? parseAmzDate(amzDate) : undefined;
    if (!amzDate || !signingDate) return malformed("x-amz-date is missing or not in YYYYMMDD'T'HHMMSS'Z' form", accessKeyId);
    if (!signedHeaders.includes("x-amz-date")) return malformed("x-amz-date is not a signed header", accessKeyId);
    if (!signedHeaders.includes("host") && !signedHeaders.includes(":authority")) {
      return malformed("neither host nor :authority is a signed header", accessKeyId);
    }
    if (terminator !== "aws4_request") return invalid("credential scope does not end with aws4_request");
    if (date !== amzDate.slice(0, 8)) return invalid(`credential scope date ${date} is not the date of x-amz-date ${amzDate}`);
    if (service !== SERVICE) return invalid(`credential scope service is ${service}, not ${SERVICE}`, `Credential should be scoped to correct service: '${SERVICE}'.`);
    if (region !== this.region) {
      return invalid(`credential scope region is ${region}, the endpoint's is ${this.region}`, `Credential should be scoped to a valid region.`);
    }
    const skew = signingDate.getTime() - now.getTime();
    if (Math.abs(skew) > MAX_CLOCK_SKEW_MS) {
      const reason = `Signature expired: ${amzDate} is ${Math.round(Math.abs(skew) / 1000)} s away from the server's time`;
      // AWS's wording starts with "Signature expired", which is what the SDK looks for to retry.
      return invalid(reason, `Signature expired: ${amzDate} is now earlier than ${formatAmzDate(new Date(now.getTime() - MAX_CLOCK_SKEW_MS))}.`);
    }

    const declaredHash = request.headers["x-amz-content-sha256"];
    if (declaredHash && /^[0-9a-f]{64}$/i.test(declaredHash) && request.body) {
      const actual = createHash("sha256").update(request.body).digest("hex");
      if (actual !== declaredHash.toLowerCase()) {
        return invalid("x-amz-content-sha256 does not match the body", "The provided 'x-amz-content-sha256' header does not match what was computed.");
      }
    }

    const headers: Record<string, string> = {};
    for (const name of signedHeaders) {
      const value = request.headers[name];
      if (value === undefined) return invalid(`signed header ${name} was not received`);
      headers[name] = value;
    }
    const expected = await computeSignature(
      {
        method: request.method,
        protocol: "http:",
        hostname: "",
        path: request.path,
        query: request.query,
        headers,
        body: request.body,
      },
      new Set(signedHeaders),
      { accessKeyId, secretAccessKey: key.secretAccessKey },
      region,
      signingDate,
    );
    if (!expected || !constantTimeEqual(expected, signature)) return invalid("signature does not match (wrong secret, or the request changed after signing)");
    return { check: { status: "valid", scheme: "sigv4", accessKeyId } };
  }
}

function reject(check: SignatureCheck, failure: { type: string; message: string }): { check: SignatureCheck; failure: AuthFailure } {
  return { check, failure: { status: 403, type: failure.type, message: failure.message } };
}

interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminator: string;
  signedHeaders: string[];
  signature: string;
}

function parseAuthorization(header: string): ParsedAuthorization | undefined {
  const match = /^AWS4-HMAC-SHA256\s+(.*)$/s.exec(header.trim());
  if (!match) return undefined;
  const fields = new Map<string, string>();
  for (const part of match[1]!.split(",")) {
    const eq = part.indexOf("=");
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get("Credential")?.split("/");
  const signedHeaders = fields.get("SignedHeaders")?.split(";").filter(Boolean);
  const signature = fields.get("Signature");
  if (!credential || credential.length !== 5 || !signedHeaders?.length || !signature) return undefined;
  const [accessKeyId, date, region, service, terminator] = credential as [string, string, string, string, string];
  if (!accessKeyId) return undefined;
  return { accessKeyId, date, region, service, terminator, signedHeaders: signedHeaders.map((h) => h.toLowerCase()), signature };
}

/**
 * Signs a copy of the received request with the same date, headers and secret, and returns the
 * hex signature. `signableHeaders` forces the SDK signer to include exactly the headers the client
 * listed, even ones it normally skips (such as `user-agent`); no session token is passed, since
 * the received `x-amz-security-token` header, if signed, is already among the headers.
 */
async function computeSignature(
  request: HttpRequest,
  signableHeaders: Set<string>,
  credentials: { accessKeyId: string; secretAccessKey: string },
  region: string,
  signingDate: Date,
): Promise<string | undefined> {
  // applyChecksum: false — otherwise the signer adds an x-amz-content-sha256 header the client
  // may not have signed, and the canonical request would differ.
  const signer = new SignatureV4({ credentials, region, service: SERVICE, sha256: NodeSha256, applyChecksum: false });
  const signed = await signer.sign(request, { signingDate, signableHeaders });
  const authorization = signed.headers["authorization"];
  return authorization ? /Signature=([0-9a-f]+)/.exec(authorization)?.[1] : undefined;
}

/** SHA-256, or HMAC-SHA-256 when given a key, as the signer's `Checksum`, on Node's own crypto. */
class NodeSha256 implements Checksum {
  private hash: Hash | Hmac;

  constructor(private readonly secret?: SourceData) {
    this.hash = this.create();
  }

  update(data: Uint8Array): void {
    this.hash.update(data);
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }

  reset(): void {
    this.hash = this.create();
  }

  private create(): Hash | Hmac {
    if (this.secret === undefined) return createHash("sha256");
    const key =
      typeof this.secret === "string"
        ? this.secret
        : ArrayBuffer.isView(this.secret)
          ? new Uint8Array(this.secret.buffer, this.secret.byteOffset, this.secret.byteLength)
          : new Uint8Array(this.secret);
    return createHmac("sha256", key);
  }
}

function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b.toLowerCase());
  return left.length === right.length && timingSafeEqual(left, right);
}

function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const date = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function formatAmzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}
