/**
 * Request authentication the way AWS services do it: SigV4 (`AWS4-HMAC-SHA256`, scoped to one
 * service: `bedrock` for the Bedrock endpoint, `sts` for the STS one) verified for real against
 * registered key pairs, or a registered Bedrock API key sent as a bearer token. The signature is
 * recomputed with the SDK's own `SignatureV4`, so whatever the SDK signs, this verifies, and a wrong
 * secret, a tampered body or a foreign region does not.
 *
 * Then, for keys that carry a session policy (keys issued by the local STS), the authorization IAM
 * adds on top: the request's IAM action and resource checked against that policy.
 * @module
 */
import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import type { Checksum, HttpRequest, SourceData } from "@smithy/types";
import { iamActionOf, modelArn } from "../credentials/bedrock-iam.js";
import { evaluatePolicy, parsePolicyDocument, type IamPolicy } from "./iam-policy.js";
import type { BedrockOperation, LocalCredentials, RequestAuthorization, SignatureCheck } from "./types.js";

/**
 * The key pair a fresh endpoint accepts. It is not an AWS credential and works nowhere else.
 *
 * @example
 * ```ts
 * // A copy: the SDK marks the credentials object it is given ($source), and the constant is frozen.
 * const client = new BedrockRuntimeClient({ endpoint: server.url, region: "us-east-1", credentials: { ...LOCAL_BEDROCK_CREDENTIALS } });
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

/**
 * A registered key pair, with its session policy parsed once at registration.
 *
 * @example
 * ```ts
 * const { key } = await auth.authenticate(request);
 * const principal = key?.credentials.principalArn;
 * ```
 */
export interface RegisteredKey {
  readonly credentials: Readonly<LocalCredentials>;
  readonly sessionPolicy?: IamPolicy;
}

/**
 * What {@link Authenticator.authenticate} found: `failure` exactly when `check.status` is not `valid`.
 *
 * @example
 * ```ts
 * const { check, failure, key }: Authentication = await auth.authenticate(request);
 * ```
 */
export interface Authentication {
  check: SignatureCheck;
  failure?: AuthFailure;
  /** The key that signed a `valid` SigV4 request. */
  key?: RegisteredKey;
}

/** Registered key pairs and bearer tokens, and the verification of requests against them. */
export class Authenticator {
  readonly #keys = new Map<string, RegisteredKey>();
  readonly #tokens = new Set<string>();

  /** `service` is the one the credential scope must name (AWS refuses a signature scoped to another). */
  constructor(
    private readonly region: string,
    private readonly service = "bedrock",
  ) {}

  /** Throws a `TypeError` for a key without id or secret, or with a session policy IAM would refuse. */
  addCredentials(credentials: LocalCredentials): void {
    if (!credentials.accessKeyId || !credentials.secretAccessKey) {
      throw new TypeError("addCredentials needs an accessKeyId and a secretAccessKey");
    }
    let sessionPolicy: IamPolicy | undefined;
    if (credentials.sessionPolicy !== undefined) {
      const parsed = parsePolicyDocument(credentials.sessionPolicy);
      if ("error" in parsed) throw new TypeError(`addCredentials: sessionPolicy is not a valid IAM policy document: ${parsed.error}`);
      sessionPolicy = parsed.policy;
    }
    this.#keys.set(credentials.accessKeyId, { credentials: { ...credentials }, ...(sessionPolicy ? { sessionPolicy } : {}) });
  }

  removeCredentials(accessKeyId: string): void {
    this.#keys.delete(accessKeyId);
  }

  addBearerToken(token: string): void {
    if (!token) throw new TypeError("addBearerToken needs a non-empty token");
    this.#tokens.add(token);
  }

  removeBearerToken(token: string): void {
    this.#tokens.delete(token);
  }

  /** Checks a request; `failure` is set exactly when `check.status` is not `valid`. */
  async authenticate(request: SignedRequestParts, now = new Date()): Promise<Authentication> {
    const authorization = request.headers["authorization"];
    if (!authorization) return reject({ status: "missing", reason: "no Authorization header" }, FAILURES.missing);

    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (bearer) {
      return this.#tokens.has(bearer[1]!)
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
  ): Promise<Authentication> {
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

    const registered = this.#keys.get(accessKeyId);
    if (!registered) return reject({ status: "unknown-key", scheme: "sigv4", accessKeyId, reason: "access key id was never registered" }, FAILURES.unknownKey);
    const key = registered.credentials;
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
    if (service !== this.service) {
      return invalid(`credential scope service is ${service}, not ${this.service}`, `Credential should be scoped to correct service: '${this.service}'.`);
    }
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
      service,
      signingDate,
    );
    if (!expected || !constantTimeEqual(expected, signature)) return invalid("signature does not match (wrong secret, or the request changed after signing)");
    return { check: { status: "valid", scheme: "sigv4", accessKeyId }, key: registered };
  }
}

/**
 * The parts of a received request that say what it does, to IAM.
 *
 * @example
 * ```ts
 * const target: BedrockRequestTarget = { operation: "Converse", modelId: "amazon.nova-lite-v1:0", pathParameters: {} };
 * ```
 */
export interface BedrockRequestTarget {
  operation: BedrockOperation;
  modelId?: string;
  pathParameters: Record<string, string>;
}

// The account resource ARNs name when the signing key's principal names none.
const DEFAULT_ACCOUNT = "123456789012";

/**
 * The IAM action and resource AWS authorizes a Bedrock Runtime request as, or undefined for an
 * operation IAM has no action for. A system inference profile is authorized against the profile's
 * ARN only (AWS also checks the foundation models it routes to, which a local endpoint cannot pick).
 *
 * @example
 * ```ts
 * bedrockIamTarget({ operation: "ConverseStream", modelId: "amazon.nova-lite-v1:0", pathParameters: {} }, "us-east-1", "123456789012");
 * // { action: "bedrock:InvokeModelWithResponseStream", resource: "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0" }
 * ```
 */
export function bedrockIamTarget(request: BedrockRequestTarget, region: string, account: string): { action: string; resource: string } | undefined {
  const action = iamActionOf(request.operation);
  if (!action) return undefined;
  switch (request.operation) {
    case "ApplyGuardrail": {
      const id = request.pathParameters["guardrailIdentifier"] ?? "";
      return { action, resource: id.startsWith("arn:") ? id : `arn:aws:bedrock:${region}:${account}:guardrail/${id}` };
    }
    case "ListAsyncInvokes":
    case "InvokeGuardrailChecks":
      // Neither supports resource-level permissions: IAM checks them against "*".
      return { action, resource: "*" };
    case "GetAsyncInvoke":
      return { action, resource: request.pathParameters["invocationArn"] ?? "*" };
    default:
      return { action, resource: request.modelId ? modelArn(request.modelId, region, account) : "*" };
  }
}

/**
 * Checks an authenticated request against the session policy of the key that signed it, as IAM
 * does: an explicit Deny wins, otherwise some Allow must match. Undefined when the key carries no
 * session policy (such a key is not restricted) or the operation has no IAM action. Resource ARNs
 * name the account of the key's principal, since that is the account the call runs in.
 *
 * @example
 * ```ts
 * const authorized = key && authorizeSessionPolicy(key, { operation: "Converse", modelId, pathParameters: {} }, "us-east-1");
 * if (authorized?.failure) return sendError(authorized.failure); // 403 AccessDeniedException
 * ```
 */
export function authorizeSessionPolicy(
  key: RegisteredKey,
  request: BedrockRequestTarget,
  region: string,
): { authorization: RequestAuthorization; failure?: AuthFailure } | undefined {
  if (!key.sessionPolicy) return undefined;
  const principalArn = key.credentials.principalArn ?? `arn:aws:iam::${DEFAULT_ACCOUNT}:user/${key.credentials.accessKeyId}`;
  const account = /^arn:[^:]+:[^:]+::(\d{12}):/.exec(principalArn)?.[1] ?? DEFAULT_ACCOUNT;
  const target = bedrockIamTarget(request, region, account);
  if (!target) return undefined;
  const { action, resource } = target;
  const decision = evaluatePolicy(key.sessionPolicy, {
    action,
    resource,
    // The request context this endpoint can vouch for; a condition on any other key fails closed.
    conditionKeys: {
      "aws:requestedregion": region,
      "aws:principalarn": principalArn,
      "aws:principalaccount": account,
      "aws:securetransport": "false",
    },
  });
  const sid = (statement: { sid?: string }) => (statement.sid ? ` (statement ${statement.sid})` : "");
  if (decision.effect === "allow") {
    return { authorization: { status: "allowed", action, resource, reason: `allowed by the session policy${sid(decision.statement)}` } };
  }
  const explicit = decision.effect === "explicit-deny";
  const because = explicit ? "with an explicit deny in a session policy" : `because no session policy allows the ${action} action`;
  return {
    authorization: {
      status: "denied",
      action,
      resource,
      reason: explicit ? `explicitly denied by the session policy${sid(decision.statement)}` : "no statement of the session policy allows it",
    },
    failure: { status: 403, type: "AccessDeniedException", message: `User: ${principalArn} is not authorized to perform: ${action} on resource: ${resource} ${because}` },
  };
}

function reject(check: SignatureCheck, failure: { type: string; message: string }): Authentication & { failure: AuthFailure } {
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
  service: string,
  signingDate: Date,
): Promise<string | undefined> {
  // applyChecksum: false — otherwise the signer adds an x-amz-content-sha256 header the client
  // may not have signed, and the canonical request would differ.
  const signer = new SignatureV4({ credentials, region, service, sha256: NodeSha256, applyChecksum: false });
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
