/**
 * A local AWS STS endpoint: AssumeRole (SigV4-signed by a known key) and AssumeRoleWithWebIdentity
 * (an OIDC token verified against the role's trusted provider), answering in awsQuery so that the
 * unmodified `@aws-sdk/client-sts` client works against it. The temporary keys it issues are
 * registered at the local Bedrock endpoints given in `issueTo`, with their expiration and session
 * policy, so a whole "assume a role, then call Bedrock" flow runs offline and fails the way AWS does.
 * @module
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from "jose";
import { z } from "zod";
import { describeZodError } from "../validation.js";
import { Authenticator, LOCAL_BEDROCK_CREDENTIALS } from "./auth.js";
import { parsePolicyDocument } from "./iam-policy.js";
import { parseQuery } from "./routes.js";
import {
  STS_VERSION,
  authFailureToStsError,
  constraintProblem,
  parseForm,
  renderError,
  renderResult,
  stsError,
  validationError,
  type StsError,
  type XmlElement,
} from "./sts-protocol.js";
import type {
  IssuedSession,
  LocalBedrock,
  LocalCredentials,
  LocalRole,
  LocalSts,
  LocalStsOptions,
  StsFailure,
  StsOperation,
  StsReceivedRequest,
  WebIdentityTrust,
} from "./types.js";
import { isRecord } from "../records.js";

// Far above any real AssumeRole request (a 2,048-character policy and 50 tags fit in ~25 KiB),
// low enough that a hostile body costs nothing.
const MAX_BODY_BYTES = 64 * 1024;
const DEFAULT_DURATION_SECONDS = 3600;
const MIN_DURATION_SECONDS = 900;
const MAX_POLICY_CHARS = 2048;
// What session policies and tags share once packed; AWS reports the use as PackedPolicySize (%).
const PACKED_BUDGET_CHARS = 2048;
const MAX_TAGS = 50;
const NAME = /^[\w+=,.@-]*$/;
const POLICY_CHARS = /^[\u0009\u000A\u000D\u0020-\u00FF]+$/;
const TAG_CHARS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const TAG_PARAMETER = /^Tags\.member\.([1-9]\d{0,5})\.(Key|Value)$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:[\x21-\x7e]*\/)?([\w+=,.@-]{1,64})$/;
// Asymmetric algorithms only: with HS256 allowed, a published public key would become an HMAC
// secret anyone could sign with; `none` is never allowed.
const TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];
const SOURCE_IDENTITY_CLAIM = "https://aws.amazon.com/source_identity";
const TAGS_CLAIM = "https://aws.amazon.com/tags";
const NOT_A_JWT = "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)";

/**
 * Starts a local STS endpoint on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
 * import { BedrockRuntimeClient, ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
 * import { LOCAL_BEDROCK_CREDENTIALS, startLocalBedrock, startLocalSts } from "bedrock-warden/local-endpoint";
 *
 * const bedrock = await startLocalBedrock();
 * const sts = await startLocalSts({ roles: [{ arn: "arn:aws:iam::123456789012:role/agent" }], issueTo: [bedrock] });
 * // A copy: the SDK marks the credentials object it is given, and the constant is frozen.
 * const stsClient = new STSClient({ endpoint: sts.url, region: sts.region, credentials: { ...LOCAL_BEDROCK_CREDENTIALS } });
 * const { Credentials } = await stsClient.send(
 *   new AssumeRoleCommand({ RoleArn: "arn:aws:iam::123456789012:role/agent", RoleSessionName: "job-1" }),
 * );
 * const client = new BedrockRuntimeClient({
 *   endpoint: bedrock.url,
 *   region: bedrock.region,
 *   credentials: { accessKeyId: Credentials!.AccessKeyId!, secretAccessKey: Credentials!.SecretAccessKey!, sessionToken: Credentials!.SessionToken! },
 * });
 * await client.send(new ConverseCommand({ modelId: "amazon.nova-lite-v1:0", messages: [{ role: "user", content: [{ text: "Hi" }] }] }));
 * await sts.close();
 * await bedrock.close();
 * ```
 */
export async function startLocalSts(options: LocalStsOptions): Promise<LocalSts> {
  const server = new LocalStsServer(validateOptions(options));
  await server.listen(options.port ?? 0);
  return server;
}

const webIdentitySchema = z
  .object({
    issuer: z
      .string({ error: "is required: the provider's issuer URL, exactly as tokens carry it in iss" })
      .regex(/^https:\/\/\S+$/, "must be an https:// URL, as IAM requires of OIDC providers"),
    jwks: z.custom<WebIdentityTrust["jwks"]>((v) => isRecord(v) && Array.isArray(v["keys"]), {
      message: "must be a JSON Web Key Set: { keys: [ ...public JWKs ] }",
    }),
    audience: z.string({ error: "must be a string" }).min(1, 'must not be empty (default "sts.amazonaws.com")').optional(),
    subjects: z.array(z.string().min(1, "must not be empty"), { error: 'must be an array of sub values or prefixes ending in "*"' }).optional(),
  })
  .strict();

const roleSchema = z
  .object({
    arn: z.string({ error: "is required" }).regex(ROLE_ARN, "must be an IAM role ARN: arn:aws:iam::<12-digit account>:role/<name>"),
    maxSessionDurationSeconds: z
      .number({ error: "must be a number of seconds" })
      .int("must be a whole number of seconds")
      .min(3600, "must be at least 3600, as IAM allows")
      .max(43200, "must be at most 43200, as IAM allows")
      .optional(),
    webIdentity: webIdentitySchema.optional(),
  })
  .strict();

const optionsSchema = z
  .object({
    port: z.number({ error: "must be a port number" }).int().min(0).max(65535, "must be a port number (0 for any free port)").optional(),
    region: z.string({ error: "must be a string" }).regex(/^[a-z0-9-]+$/, 'must be a region name such as "us-east-1"').optional(),
    account: z.string({ error: "must be a string" }).regex(/^\d{12}$/, "must be a 12-digit AWS account id").optional(),
    credentials: z
      .array(z.custom<LocalCredentials>((v) => isRecord(v), { message: "must be { accessKeyId, secretAccessKey }" }), { error: "must be an array of key pairs" })
      .optional(),
    roles: z.array(roleSchema, { error: 'is required: the roles callers may assume, e.g. [{ arn: "arn:aws:iam::123456789012:role/agent" }]' }),
    issueTo: z
      .array(z.custom<LocalBedrock>((v) => typeof (v as LocalBedrock | undefined)?.addCredentials === "function", { message: "must be a LocalBedrock (from startLocalBedrock)" }), {
        error: "must be an array of local Bedrock endpoints",
      })
      .optional(),
    now: z.custom<() => Date>((v) => typeof v === "function", { message: "must be a function returning the current Date" }).optional(),
  })
  .strict();

interface ConfiguredRole {
  arn: string;
  name: string;
  account: string;
  /** The role's unique id (`AROA…`), stable across sessions as on AWS. */
  roleId: string;
  maxSessionDurationSeconds: number;
  webIdentity?: {
    issuer: string;
    audience: string;
    subjects?: string[];
    keys: ReturnType<typeof createLocalJWKSet>;
  };
}

interface ResolvedOptions {
  region: string;
  account: string;
  credentials: LocalCredentials[];
  roles: ConfiguredRole[];
  issueTo: LocalBedrock[];
  now: () => Date;
}

function validateOptions(options: LocalStsOptions): ResolvedOptions {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw new TypeError(`Invalid local STS options: ${describeZodError(parsed.error, "options", optionsSchema)}`);
  const seen = new Set<string>();
  const roles = parsed.data.roles.map((role: LocalRole, i): ConfiguredRole => {
    if (seen.has(role.arn)) throw new TypeError(`Invalid local STS options: options.roles.${i}.arn: ${role.arn} is configured twice`);
    seen.add(role.arn);
    const [, account, name] = ROLE_ARN.exec(role.arn)!;
    const trust = role.webIdentity;
    let keys: ReturnType<typeof createLocalJWKSet> | undefined;
    try {
      keys = trust ? createLocalJWKSet(trust.jwks) : undefined;
    } catch (error) {
      throw new TypeError(`Invalid local STS options: options.roles.${i}.webIdentity.jwks: ${error instanceof Error ? error.message : String(error)}`);
    }
    return {
      arn: role.arn,
      name: name!,
      account: account!,
      roleId: `AROA${base32(createHash("sha256").update(role.arn).digest()).slice(0, 17)}`,
      maxSessionDurationSeconds: role.maxSessionDurationSeconds ?? DEFAULT_DURATION_SECONDS,
      ...(trust && keys
        ? { webIdentity: { issuer: trust.issuer, audience: trust.audience ?? "sts.amazonaws.com", ...(trust.subjects ? { subjects: trust.subjects } : {}), keys } }
        : {}),
    };
  });
  return {
    region: parsed.data.region ?? "us-east-1",
    account: parsed.data.account ?? "123456789012",
    credentials: parsed.data.credentials ?? [LOCAL_BEDROCK_CREDENTIALS],
    roles,
    issueTo: parsed.data.issueTo ?? [],
    now: parsed.data.now ?? (() => new Date()),
  };
}

/** What an operation answers: a result document, or an error. */
type Outcome = { result: XmlElement[] } | { error: StsError };

/** The request as the operations see it. */
interface StsRequest {
  method: string;
  path: string;
  rawQuery: string;
  headers: Record<string, string>;
  body: Uint8Array;
  params: Map<string, string>;
  record: StsReceivedRequest;
}

/** The parameters every assume-role operation shares, once validated. */
interface SessionRequest {
  roleArn: string;
  roleSessionName: string;
  durationSeconds?: number;
  policy?: string;
}

class LocalStsServer implements LocalSts {
  url = "";
  readonly region: string;
  readonly account: string;
  readonly sessions: IssuedSession[] = [];
  readonly requests: StsReceivedRequest[] = [];

  private readonly roles = new Map<string, ConfiguredRole>();
  private readonly auth: Authenticator;
  readonly #issueTo: LocalBedrock[];
  private readonly now: () => Date;
  /** Issued keys with their secrets, to re-register them at `issueTo` endpoints on expire(). */
  readonly #issued = new Map<string, { credentials: LocalCredentials; session: IssuedSession }>();
  private injected: { error: StsError; remaining: number } | undefined;
  private readonly server: http.Server;
  private closing: Promise<void> | undefined;

  constructor(options: ResolvedOptions) {
    this.region = options.region;
    this.account = options.account;
    this.#issueTo = options.issueTo;
    this.now = options.now;
    for (const role of options.roles) this.roles.set(role.arn, role);
    this.auth = new Authenticator(this.region, "sts");
    for (const key of options.credentials) this.auth.addCredentials(key);
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => {
        this.server.off("error", reject);
        const address = this.server.address();
        this.url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : port}`;
        resolve();
      });
    });
  }

  failNext(failure: StsFailure): void {
    const times = failure.times ?? 1;
    if (!failure.code || !Number.isInteger(failure.status) || failure.status < 400 || failure.status > 599) {
      throw new TypeError("failNext needs an error code and an HTTP status from 400 to 599, e.g. { code: \"Throttling\", status: 400 }");
    }
    if (!Number.isInteger(times) || times < 0) throw new TypeError("failNext: times must be a whole number of requests (0 cancels)");
    const message = failure.message ?? `Injected ${failure.code} failure`;
    this.injected = times > 0 ? { error: stsError(failure.status, failure.code, message), remaining: times } : undefined;
  }

  expire(accessKeyId: string): void {
    const issued = this.#issued.get(accessKeyId);
    if (!issued) throw new RangeError(`expire: ${accessKeyId} is not an access key this STS issued`);
    // Whichever clock an endpoint reads (this STS's or the wall clock), the key is expired for it.
    const at = new Date(Math.min(this.now().getTime(), Date.now()));
    issued.credentials.expiration = at;
    issued.session.expiration = at;
    for (const endpoint of this.#issueTo) endpoint.addCredentials({ ...issued.credentials });
  }

  close(): Promise<void> {
    return (this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    }));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Transport errors (a client resetting mid-request) end up as a request without an answer.
    req.on("error", () => undefined);
    res.on("error", () => undefined);
    const record: StsReceivedRequest = { index: this.requests.length, receivedAt: new Date() };
    this.requests.push(record);
    const body = await readBody(req, MAX_BODY_BYTES);
    if (body === "gone") return;
    if (body === "too-large") {
      // Answer at once and drop the rest of the body as it comes, so the client reads the error
      // instead of a reset connection.
      req.removeAllListeners("data");
      req.resume();
      return this.answer(res, record, { error: stsError(413, "RequestEntityTooLarge", `The request body exceeds ${MAX_BODY_BYTES} bytes`) });
    }
    let outcome: Outcome;
    try {
      outcome = await this.process(req, body, record);
    } catch (error) {
      // A bug here must still answer, never leave the client waiting or take the server down.
      outcome = { error: stsError(500, "InternalFailure", `The local STS endpoint failed: ${error instanceof Error ? error.message : String(error)}`) };
    }
    this.answer(res, record, outcome);
  }

  private answer(res: http.ServerResponse, record: StsReceivedRequest, outcome: Outcome): void {
    const requestId = randomUUID();
    const status = "error" in outcome ? outcome.error.status : 200;
    const xml = "error" in outcome ? renderError(outcome.error, requestId) : renderResult(record.action ?? "", outcome.result, requestId);
    record.status = status;
    if ("error" in outcome) {
      record.errorCode = outcome.error.code;
      record.errorMessage = outcome.error.message;
    }
    if (res.destroyed) return;
    res.writeHead(status, { "content-type": "text/xml", "content-length": String(Buffer.byteLength(xml)), "x-amzn-requestid": requestId });
    res.end(xml);
  }

  private async process(req: http.IncomingMessage, body: Buffer, record: StsReceivedRequest): Promise<Outcome> {
    const url = req.url ?? "/";
    const queryAt = url.indexOf("?");
    const path = queryAt < 0 ? url : url.slice(0, queryAt);
    const rawQuery = queryAt < 0 ? "" : url.slice(queryAt + 1);
    const method = req.method ?? "GET";
    const contentType = req.headers["content-type"] ?? "";
    const formBody = /^application\/x-www-form-urlencoded\s*(;|$)/i.test(contentType);

    // Query-protocol services take parameters from the query string and from a form body alike.
    const parsed = parseForm([rawQuery, formBody ? body.toString("utf8") : ""].filter(Boolean).join("&"));
    if ("params" in parsed) record.action = parsed.params.get("Action");
    const injected = this.takeInjectedFailure();
    if (injected) return { error: injected };
    if (method !== "POST" && method !== "GET") return { error: stsError(405, "MethodNotAllowed", `STS accepts GET and POST, not ${method}`) };
    if (!formBody && body.byteLength > 0) {
      return { error: stsError(400, "MalformedQueryString", `Content-Type must be application/x-www-form-urlencoded, not ${contentType || "absent"}`) };
    }
    if ("error" in parsed) return parsed;
    const { params } = parsed;
    const action = params.get("Action");
    if (!action) return { error: stsError(400, "MissingAction", "Missing Action") };
    const version = params.get("Version");
    if (version !== STS_VERSION) return { error: stsError(400, "InvalidAction", `Could not find operation ${action} for version ${version ?? "NO_VERSION_SPECIFIED"}`) };

    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(",") : value;
    const request: StsRequest = { method, path, rawQuery, headers, body, params, record };
    switch (action) {
      case "AssumeRole":
        return this.assumeRole(request);
      case "AssumeRoleWithWebIdentity":
        return this.assumeRoleWithWebIdentity(request);
      default:
        return { error: stsError(400, "InvalidAction", `Could not find operation ${action} for version ${version}`) };
    }
  }

  private takeInjectedFailure(): StsError | undefined {
    const injected = this.injected;
    if (!injected) return undefined;
    if (--injected.remaining === 0) this.injected = undefined;
    return injected.error;
  }

  private async assumeRole(request: StsRequest): Promise<Outcome> {
    const { check, failure, key } = await this.auth.authenticate({
      method: request.method,
      path: request.path,
      query: parseQuery(request.rawQuery),
      headers: request.headers,
      body: request.body,
    });
    if (check.accessKeyId) request.record.accessKeyId = check.accessKeyId;
    if (failure) return { error: authFailureToStsError(failure) };
    // Valid without a key would be a bearer token, which this endpoint never registers.
    if (!key) return { error: stsError(403, "InvalidClientTokenId", "The security token included in the request is invalid.") };
    const caller = key.credentials.principalArn ?? `arn:aws:iam::${this.account}:user/${key.credentials.accessKeyId}`;

    const { params } = request;
    const problems: string[] = [];
    const session = sessionParameters(params, problems);
    const sourceIdentity = nameParameter(params, "SourceIdentity", "sourceIdentity", false, problems);
    const tags = tagParameters(params, problems);
    if (problems.length > 0 || !session) return { error: validationError(problems) };

    const role = this.roles.get(session.roleArn);
    if (!role) return { error: stsError(403, "AccessDenied", `User: ${caller} is not authorized to perform: sts:AssumeRole on resource: ${session.roleArn}`) };
    if ("error" in tags) return tags;
    const issued = this.issue("AssumeRole", role, session, { tags: tags.tags, ...(sourceIdentity !== undefined ? { sourceIdentity } : {}) });
    return "error" in issued ? issued : { result: sessionResult(issued) };
  }

  private async assumeRoleWithWebIdentity(request: StsRequest): Promise<Outcome> {
    const { params } = request;
    const problems: string[] = [];
    const session = sessionParameters(params, problems);
    const token = params.get("WebIdentityToken");
    if (token === undefined) problems.push(constraintProblem("webIdentityToken", undefined, "not be null"));
    else if (token.length < 4 || token.length > 20000) problems.push(constraintProblem("webIdentityToken", "***", "have length between 4 and 20000"));
    if (problems.length > 0 || !session || token === undefined) return { error: validationError(problems) };

    let issuer: unknown;
    try {
      decodeProtectedHeader(token);
      issuer = decodeJwt(token).iss;
    } catch {
      return { error: stsError(400, "InvalidIdentityToken", NOT_A_JWT) };
    }
    // The account's OIDC providers are the issuers some role trusts.
    if (typeof issuer !== "string" || ![...this.roles.values()].some((role) => role.webIdentity?.issuer === issuer)) {
      return { error: stsError(400, "InvalidIdentityToken", `No OpenIDConnect provider found in your account for ${String(issuer)}`) };
    }
    const role = this.roles.get(session.roleArn);
    const trust = role?.webIdentity;
    const notAuthorized = stsError(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
    if (!role || !trust || trust.issuer !== issuer) return { error: notAuthorized };

    const now = this.now();
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, trust.keys, {
        issuer: trust.issuer,
        audience: trust.audience,
        algorithms: TOKEN_ALGORITHMS,
        currentDate: now,
        requiredClaims: ["exp", "sub"],
      }));
    } catch (error) {
      return { error: tokenError(error, now) };
    }
    const subject = claims.sub!;
    if (trust.subjects && !trust.subjects.some((pattern) => (pattern.endsWith("*") ? subject.startsWith(pattern.slice(0, -1)) : subject === pattern))) {
      return { error: notAuthorized };
    }
    const claimed = sessionClaims(claims);
    if ("error" in claimed) return claimed;
    const { sourceIdentity, tags } = claimed;
    const issued = this.issue("AssumeRoleWithWebIdentity", role, session, { tags, subject, ...(sourceIdentity !== undefined ? { sourceIdentity } : {}) });
    if ("error" in issued) return issued;
    return {
      result: [
        ["SubjectFromWebIdentityToken", subject],
        ["Audience", trust.audience],
        ...sessionResult(issued),
        ["Provider", `arn:aws:iam::${role.account}:oidc-provider/${trust.issuer.replace(/^https:\/\//, "")}`],
      ],
    };
  }

  /**
   * The checks both operations make once the caller is trusted, then the issue itself: a key pair
   * registered at every `issueTo` endpoint and recorded (without its secrets) in `sessions`.
   */
  private issue(
    operation: StsOperation,
    role: ConfiguredRole,
    request: SessionRequest,
    extras: { tags: Record<string, string>; sourceIdentity?: string; subject?: string },
  ): Issued | { error: StsError } {
    const duration = request.durationSeconds ?? DEFAULT_DURATION_SECONDS;
    if (duration > role.maxSessionDurationSeconds) {
      return { error: stsError(400, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.") };
    }
    const packed = packPolicyAndTags(request.policy, extras.tags);
    if ("error" in packed) return packed;

    // AWS states times to the second; so does the key registered at the Bedrock endpoints, and the
    // session then lasts exactly DurationSeconds.
    const issuedAt = new Date(Math.floor(this.now().getTime() / 1000) * 1000);
    const expiration = new Date(issuedAt.getTime() + duration * 1000);
    const assumedRoleArn = `arn:aws:sts::${role.account}:assumed-role/${role.name}/${request.roleSessionName}`;
    const credentials: IssuedCredentials = {
      accessKeyId: `ASIA${base32(randomBytes(10))}`,
      secretAccessKey: randomBytes(30).toString("base64"),
      sessionToken: randomBytes(240).toString("base64"),
      expiration,
      principalArn: assumedRoleArn,
      ...(request.policy !== undefined ? { sessionPolicy: request.policy } : {}),
    };
    const session: IssuedSession = {
      accessKeyId: credentials.accessKeyId,
      operation,
      roleArn: role.arn,
      assumedRoleArn,
      roleSessionName: request.roleSessionName,
      ...(extras.sourceIdentity !== undefined ? { sourceIdentity: extras.sourceIdentity } : {}),
      tags: extras.tags,
      ...(request.policy !== undefined ? { policy: request.policy } : {}),
      ...(extras.subject !== undefined ? { subject: extras.subject } : {}),
      issuedAt,
      expiration,
    };
    for (const endpoint of this.#issueTo) endpoint.addCredentials({ ...credentials });
    this.#issued.set(credentials.accessKeyId, { credentials, session });
    this.sessions.push(session);
    return { credentials, session, assumedRoleId: `${role.roleId}:${request.roleSessionName}`, ...(packed.percent !== undefined ? { packedPolicySize: packed.percent } : {}) };
  }
}

type IssuedCredentials = LocalCredentials & { sessionToken: string; expiration: Date };

/** A freshly issued session, with what its response needs. */
interface Issued {
  credentials: IssuedCredentials;
  session: IssuedSession;
  assumedRoleId: string;
  packedPolicySize?: number;
}

/** The result elements both operations share, in the order AWS renders them. */
function sessionResult({ credentials, session, assumedRoleId, packedPolicySize }: Issued): XmlElement[] {
  return [
    ["AssumedRoleUser", [["AssumedRoleId", assumedRoleId], ["Arn", session.assumedRoleArn]]],
    [
      "Credentials",
      [
        ["AccessKeyId", credentials.accessKeyId],
        ["SecretAccessKey", credentials.secretAccessKey],
        ["SessionToken", credentials.sessionToken],
        ["Expiration", credentials.expiration.toISOString().replace(/\.\d{3}Z$/, "Z")],
      ],
    ],
    ["PackedPolicySize", packedPolicySize],
    ["SourceIdentity", session.sourceIdentity],
  ];
}

/** RoleArn, RoleSessionName, DurationSeconds and Policy, with AWS's constraints on each. */
function sessionParameters(params: Map<string, string>, problems: string[]): SessionRequest | undefined {
  const before = problems.length;
  const roleArn = params.get("RoleArn");
  if (roleArn === undefined) problems.push(constraintProblem("roleArn", undefined, "not be null"));
  else if (roleArn.length < 20 || roleArn.length > 2048) problems.push(constraintProblem("roleArn", roleArn, "have length between 20 and 2048"));
  const roleSessionName = nameParameter(params, "RoleSessionName", "roleSessionName", true, problems);

  const rawDuration = params.get("DurationSeconds");
  let durationSeconds: number | undefined;
  if (rawDuration !== undefined) {
    durationSeconds = /^\d{1,9}$/.test(rawDuration) ? Number(rawDuration) : undefined;
    if (durationSeconds === undefined) problems.push(constraintProblem("durationSeconds", rawDuration, "be a whole number"));
    else if (durationSeconds < MIN_DURATION_SECONDS) problems.push(constraintProblem("durationSeconds", rawDuration, `have value greater than or equal to ${MIN_DURATION_SECONDS}`));
    else if (durationSeconds > 43200) problems.push(constraintProblem("durationSeconds", rawDuration, "have value less than or equal to 43200"));
  }

  const policy = params.get("Policy");
  // Longer than the limit is PackedPolicyTooLarge, checked once the role is known (as AWS orders it).
  if (policy !== undefined && !POLICY_CHARS.test(policy)) {
    problems.push(constraintProblem("policy", policy, "satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"));
  }
  if (problems.length > before || roleArn === undefined || roleSessionName === undefined) return undefined;
  return { roleArn, roleSessionName, ...(durationSeconds !== undefined ? { durationSeconds } : {}), ...(policy !== undefined ? { policy } : {}) };
}

/** RoleSessionName and SourceIdentity: 2 to 64 characters of `[\w+=,.@-]`. */
function nameParameter(params: Map<string, string>, name: string, member: string, required: boolean, problems: string[]): string | undefined {
  const value = params.get(name);
  if (value === undefined) {
    if (required) problems.push(constraintProblem(member, undefined, "not be null"));
    return undefined;
  }
  const problem = nameProblem(value);
  if (problem) problems.push(constraintProblem(member, value, problem));
  return problem ? undefined : value;
}

function nameProblem(value: string): string | undefined {
  if (value.length < 2 || value.length > 64) return "have length between 2 and 64";
  if (!NAME.test(value)) return "satisfy regular expression pattern: [\\w+=,.@-]*";
  return undefined;
}

/** `Tags.member.N.Key` / `Tags.member.N.Value`, in index order. */
function tagParameters(params: Map<string, string>, problems: string[]): { tags: Record<string, string> } | { error: StsError } {
  const byIndex = new Map<number, { key?: string; value?: string }>();
  for (const [name, value] of params) {
    const match = TAG_PARAMETER.exec(name);
    if (!match) continue;
    const entry = byIndex.get(Number(match[1])) ?? {};
    if (match[2] === "Key") entry.key = value;
    else entry.value = value;
    byIndex.set(Number(match[1]), entry);
  }
  if (byIndex.size > MAX_TAGS) {
    problems.push(`Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to ${MAX_TAGS}`);
    return { tags: {} };
  }
  const entries: [string, string][] = [];
  for (const [index, { key, value }] of [...byIndex].sort(([a], [b]) => a - b)) {
    const problem = tagProblem(key, value);
    if (problem) problems.push(constraintProblem(`tags.${index}.member.${problem.member}`, problem.member === "key" ? key : value, problem.constraint));
    else entries.push([key!, value!]);
  }
  const lowered = new Set(entries.map(([key]) => key.toLowerCase()));
  if (lowered.size !== entries.length) {
    return { error: stsError(400, "InvalidParameterValue", "Duplicate tag keys found. Please note that Tag keys are case insensitive.") };
  }
  return { tags: Object.fromEntries(entries) };
}

function tagProblem(key: string | undefined, value: string | undefined): { member: "key" | "value"; constraint: string } | undefined {
  if (key === undefined) return { member: "key", constraint: "not be null" };
  if (key.length < 1 || key.length > 128) return { member: "key", constraint: "have length between 1 and 128" };
  if (!TAG_CHARS.test(key)) return { member: "key", constraint: "satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+" };
  if (value === undefined) return { member: "value", constraint: "not be null" };
  if (value.length > 256) return { member: "value", constraint: "have length less than or equal to 256" };
  if (!TAG_CHARS.test(value)) return { member: "value", constraint: "satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*" };
  return undefined;
}

/**
 * Validates the session policy and measures what it and the session tags take of the packed
 * budget, as the percentage AWS reports in PackedPolicySize (undefined when there are neither).
 */
function packPolicyAndTags(policy: string | undefined, tags: Record<string, string>): { percent: number | undefined } | { error: StsError } {
  const percentOf = (chars: number) => Math.ceil((chars * 100) / PACKED_BUDGET_CHARS);
  const tooLarge = (percent: number) =>
    stsError(400, "PackedPolicyTooLarge", `Packed policy consumes ${percent}% of allotted space, please use smaller policy for best results`);
  let policyChars = 0;
  if (policy !== undefined) {
    if (policy.length > MAX_POLICY_CHARS) return { error: tooLarge(percentOf(policy.length)) };
    const parsed = parsePolicyDocument(policy);
    if ("error" in parsed) return { error: stsError(400, "MalformedPolicyDocument", parsed.error) };
    policyChars = JSON.stringify(JSON.parse(policy)).length;
  }
  const tagChars = Object.entries(tags).reduce((sum, [key, value]) => sum + key.length + value.length, 0);
  if (policy === undefined && Object.keys(tags).length === 0) return { percent: undefined };
  const percent = Math.max(1, percentOf(policyChars + tagChars));
  return percent > 100 ? { error: tooLarge(percent) } : { percent };
}

/** The session attributes a web identity token may carry: a source identity and principal tags. */
function sessionClaims(claims: JWTPayload): { sourceIdentity?: string; tags: Record<string, string> } | { error: StsError } {
  const invalid = (message: string) => ({ error: stsError(400, "InvalidIdentityToken", message) });
  const source = claims[SOURCE_IDENTITY_CLAIM];
  if (source !== undefined && (typeof source !== "string" || nameProblem(source))) {
    return invalid(`The ${SOURCE_IDENTITY_CLAIM} claim must be 2 to 64 characters of [\\w+=,.@-]`);
  }
  const tags: Record<string, string> = {};
  const claim = claims[TAGS_CLAIM];
  if (claim !== undefined) {
    const principalTags = isRecord(claim) ? claim["principal_tags"] : undefined;
    if (!isRecord(principalTags)) return invalid(`The ${TAGS_CLAIM} claim must hold principal_tags: { key: [value] }`);
    const entries = Object.entries(principalTags);
    if (entries.length > MAX_TAGS) return invalid(`The ${TAGS_CLAIM} claim holds more than ${MAX_TAGS} principal tags`);
    for (const [key, raw] of entries) {
      // AWS's format puts each value in a one-element array; a bare string is accepted too.
      const value = Array.isArray(raw) && raw.length === 1 ? raw[0] : raw;
      if (typeof value !== "string" || tagProblem(key, value)) return invalid(`The principal tag ${JSON.stringify(key).slice(0, 140)} is not a valid session tag`);
      if (Object.keys(tags).some((existing) => existing.toLowerCase() === key.toLowerCase())) return invalid("Duplicate principal tag keys (tag keys are case insensitive)");
      tags[key] = value;
    }
  }
  return { ...(typeof source === "string" ? { sourceIdentity: source } : {}), tags };
}

/** A token that failed verification, as AWS reports it. */
function tokenError(error: unknown, now: Date): StsError {
  const code = (error as { code?: unknown } | undefined)?.code;
  const claim = (error as { claim?: unknown } | undefined)?.claim;
  switch (code) {
    case "ERR_JWT_EXPIRED": {
      const exp = (error as { payload?: JWTPayload }).payload?.exp;
      return stsError(
        400,
        "ExpiredTokenException",
        `Token expired: current date/time ${Math.floor(now.getTime() / 1000)} must be before the expiration date/time ${String(exp)}`,
      );
    }
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      if (claim === "aud") return stsError(400, "InvalidIdentityToken", "Incorrect token audience");
      if (claim === "iss") return stsError(400, "InvalidIdentityToken", "Issuer of the token does not match the provider");
      if (claim === "nbf") return stsError(400, "InvalidIdentityToken", "Token is not yet valid (nbf is in the future)");
      return stsError(400, "InvalidIdentityToken", `Token claim ${String(claim)} is missing or invalid`);
    case "ERR_JOSE_ALG_NOT_ALLOWED":
    case "ERR_JOSE_NOT_SUPPORTED":
      return stsError(400, "InvalidIdentityToken", "The token's signing algorithm is not supported (use RS256, PS256, ES256 or similar)");
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return stsError(400, "InvalidIdentityToken", "The token's signature does not verify with the provider's keys");
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return stsError(400, "InvalidIdentityToken", "No key of the provider matches the token's kid and alg");
    default:
      return stsError(400, "InvalidIdentityToken", NOT_A_JWT);
  }
}

/**
 * The whole body, `too-large` once it passes `limit` bytes (declared or received), or `gone` when
 * the client went away first.
 */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | "too-large" | "gone"> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve("too-large");
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        chunks.length = 0;
        resolve("too-large");
      } else {
        chunks.push(chunk);
      }
    });
    req.once("end", () => resolve(size > limit ? "too-large" : Buffer.concat(chunks)));
    req.once("close", () => resolve("gone"));
  });
}

// RFC 4648 base32 alphabet: the characters AWS access key ids are made of.
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

