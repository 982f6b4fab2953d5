/**
 * Public types of the local Bedrock Runtime endpoint and of the local STS endpoint.
 * @module
 */
import type { JSONWebKeySet } from "jose";

/**
 * The Bedrock Runtime operation a request was routed to, named as in the AWS SDK (`ConverseCommand`
 * → `"Converse"`). `"Unknown"` is any method and path the service does not define.
 *
 * @example
 * ```ts
 * const streamed = server.requests.filter((r) => r.operation === "ConverseStream");
 * ```
 */
export type BedrockOperation =
  | "Converse"
  | "ConverseStream"
  | "InvokeModel"
  | "InvokeModelWithResponseStream"
  | "InvokeModelWithBidirectionalStream"
  | "CountTokens"
  | "ApplyGuardrail"
  | "InvokeGuardrailChecks"
  | "StartAsyncInvoke"
  | "GetAsyncInvoke"
  | "ListAsyncInvokes"
  | "Unknown";

/**
 * Outcome of checking a request's `Authorization` header.
 *
 * - `valid`: a SigV4 signature that verifies against a registered key pair, or a registered bearer token.
 * - `missing`: no `Authorization` header at all.
 * - `invalid`: malformed header, wrong scope (region, service, date), stale `x-amz-date`, body that does
 *   not match `x-amz-content-sha256`, or a signature that does not verify (e.g. wrong secret).
 * - `unknown-key`: an access key id or bearer token that was never registered, or a session token that
 *   does not belong to the key.
 * - `expired`: a registered key whose `expiration` has passed.
 *
 * @example
 * ```ts
 * assert.equal(server.requests[0]?.signature.status, "missing");
 * ```
 */
export type SignatureStatus = "valid" | "missing" | "invalid" | "unknown-key" | "expired";

/**
 * How a request authenticated, as recorded on {@link ReceivedRequest.signature}.
 *
 * @example
 * ```ts
 * const { status, accessKeyId, reason } = server.requests[0]!.signature;
 * ```
 */
export interface SignatureCheck {
  status: SignatureStatus;
  /** `sigv4` for `AWS4-HMAC-SHA256`, `bearer` for Bedrock API keys; absent when no header was sent. */
  scheme?: "sigv4" | "bearer";
  /** The access key id named in the SigV4 credential scope, whether or not it is known. */
  accessKeyId?: string;
  /** Why the request was not `valid`, in words meant for a failing test's output. */
  reason?: string;
}

/**
 * How a request fared against the session policy of the key that signed it, as recorded on
 * {@link ReceivedRequest.authorization}: the IAM action and resource it was checked as.
 *
 * @example
 * ```ts
 * assert.deepEqual(server.requests[0]?.authorization, {
 *   status: "denied",
 *   action: "bedrock:InvokeModelWithResponseStream",
 *   resource: "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0",
 *   reason: "no statement of the session policy allows it",
 * });
 * ```
 */
export interface RequestAuthorization {
  status: "allowed" | "denied";
  /** The IAM action, e.g. `bedrock:InvokeModel` for Converse. */
  action: string;
  /** The ARN checked (a model, inference profile, guardrail or async invocation), or `*`. */
  resource: string;
  /** Which statement decided, in words meant for a failing test's output. */
  reason?: string;
}

/**
 * One HTTP request as the endpoint received it. Recorded for every request, including the ones it
 * rejected, so tests can assert on what the SDK really put on the wire.
 *
 * The object is updated in place while the response is being written: `status`, `eventsSent`,
 * `closedByClient` and `completed` reflect the latest state (await {@link LocalBedrock.whenIdle} first).
 *
 * @example
 * ```ts
 * const [request] = server.requests;
 * assert.equal(request?.operation, "Converse");
 * assert.equal(request?.modelId, "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.amazon.nova-lite-v1:0");
 * assert.equal(request?.signature.status, "valid");
 * ```
 */
export interface ReceivedRequest {
  /** Position in {@link LocalBedrock.requests}, counting from 0 since the last reset. */
  index: number;
  operation: BedrockOperation;
  /** `POST` or `GET`. */
  method: string;
  /** The path exactly as sent, still URL-encoded (the SDK encodes `:` and `/` inside model ARNs). */
  path: string;
  /** Decoded query string parameters (ListAsyncInvokes sends its filters there). */
  query: Record<string, string>;
  /** Decoded model id or ARN: from the path, or from the body for StartAsyncInvoke. */
  modelId?: string;
  /** Decoded path parameters: `modelId`, `guardrailIdentifier`, `guardrailVersion`, `invocationArn`. */
  pathParameters: Record<string, string>;
  /**
   * Request headers with lowercased names. HTTP/2 pseudo-headers are left out; note that over HTTP/2
   * the SDK sends (and signs) `:authority` instead of a `host` header.
   */
  headers: Record<string, string>;
  /** The body parsed as JSON when it is JSON, otherwise the raw text; `undefined` when empty. */
  body: unknown;
  /** The body bytes exactly as received. */
  rawBody: Uint8Array;
  signature: SignatureCheck;
  /**
   * Set when the signing key carries a session policy ({@link LocalCredentials.sessionPolicy}) and
   * the operation has an IAM action: the outcome of checking the request against that policy. A
   * denied request was answered 403 `AccessDeniedException` and never reached the scripted model.
   */
  authorization?: RequestAuthorization;
  /** `"1.1"` for the SDK's `NodeHttpHandler`, `"2.0"` for its default `NodeHttp2Handler`. */
  httpVersion: string;
  receivedAt: Date;
  /** HTTP status the endpoint answered with; `undefined` until the status line is sent. */
  status?: number;
  /** Event-stream messages written so far (streaming operations only). */
  eventsSent: number;
  /** The whole response was handed to the transport. */
  completed: boolean;
  /**
   * The client closed the connection or reset the HTTP/2 stream before the endpoint finished writing
   * the response. Once set, the endpoint writes nothing more for this request.
   */
  closedByClient: boolean;
}

/**
 * A tool call for the scripted model to make.
 *
 * @example
 * ```ts
 * const call: ToolUseReply = { toolUseId: "tooluse_1", name: "get_weather", input: { city: "Lyon" } };
 * ```
 */
export interface ToolUseReply {
  toolUseId: string;
  name: string;
  /** Any JSON value; streamed as chunks of its `JSON.stringify` text. */
  input: unknown;
}

/**
 * An error to answer with instead of a model reply.
 *
 * @example
 * ```ts
 * server.reply = () => ({ error: { status: 429, type: "ThrottlingException", message: "Too many requests" } });
 * ```
 */
export interface ReplyError {
  /** HTTP status, e.g. 429. Ignored when the error is sent inside a stream. */
  status: number;
  /** Error shape name, e.g. `ThrottlingException`; sent as `x-amzn-errortype`. */
  type: string;
  message: string;
  /**
   * For ConverseStream and InvokeModelWithResponseStream: answer 200, stream the reply's content, then
   * send the error as an event-stream `exception` message instead of the closing events — the way a
   * model fails mid-generation (e.g. `ModelStreamErrorException`). Other operations ignore it.
   */
  inStream?: boolean;
}

/**
 * What the scripted model answers. Every field is optional: missing usage is estimated from the
 * sizes of the request and the reply, and `stopReason` defaults to `tool_use` when there are tool
 * uses and `end_turn` otherwise.
 *
 * @example
 * ```ts
 * const reply: ModelReply = {
 *   text: "Let me check.",
 *   toolUses: [{ toolUseId: "tooluse_1", name: "get_weather", input: { city: "Lyon" } }],
 *   chunkSize: 4,
 *   eventDelayMs: 5,
 * };
 * ```
 */
export interface ModelReply {
  text?: string;
  toolUses?: ToolUseReply[];
  stopReason?: string;
  usage?: { inputTokens: number; outputTokens: number };
  /** Characters per text delta and per tool-input delta in streams (default 16). */
  chunkSize?: number;
  /** Delay before each stream event after the first (default 0). */
  eventDelayMs?: number;
  /** Respond with this error instead of a reply. */
  error?: ReplyError;
}

/**
 * Produces the scripted model's answer to a request. It is consulted for every authenticated request
 * to a known operation (except InvokeModelWithBidirectionalStream); for operations that generate
 * nothing only `error` applies — and `usage.inputTokens` for CountTokens.
 *
 * @example
 * ```ts
 * const reply: ReplyFunction = (request) =>
 *   request.operation === "ConverseStream" ? { text: "streamed", chunkSize: 2 } : { text: "whole" };
 * ```
 */
export type ReplyFunction = (request: ReceivedRequest) => ModelReply | Promise<ModelReply>;

/**
 * A key pair the endpoint accepts. With a `sessionToken`, requests must carry exactly that
 * `x-amz-security-token`; after `expiration` they are refused with `ExpiredTokenException`. With a
 * `sessionPolicy`, each request must also be allowed by it, as IAM would (the local STS registers
 * the keys it issues this way).
 *
 * @example
 * ```ts
 * const temporary: LocalCredentials = {
 *   accessKeyId: "ASIALOCALTEMPORARY01",
 *   secretAccessKey: "temporary-secret",
 *   sessionToken: "token",
 *   expiration: new Date(Date.now() + 15 * 60_000),
 * };
 * ```
 */
export interface LocalCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
  /**
   * An IAM policy document (JSON text) that bounds what the key may do, like the inline session
   * policy of an assumed-role session: an explicit Deny wins, otherwise an Allow must match the
   * request's IAM action (`bedrock:InvokeModel` for Converse…) and resource (the model's ARN…).
   * A statement with a Condition the endpoint cannot evaluate fails closed. Without it the key
   * is not restricted. A document IAM would refuse makes `addCredentials` throw.
   */
  sessionPolicy?: string;
  /**
   * Who the key belongs to, e.g. `arn:aws:sts::123456789012:assumed-role/app/session`: named in
   * AccessDenied messages, and its account is the one resource ARNs are built with (default
   * `arn:aws:iam::123456789012:user/<accessKeyId>`).
   */
  principalArn?: string;
}

/**
 * Options for {@link startLocalBedrock}.
 *
 * @example
 * ```ts
 * const server = await startLocalBedrock({ region: "eu-west-3", reply: () => ({ text: "bonjour" }) });
 * ```
 */
export interface LocalBedrockOptions {
  /** Port to listen on; default 0 (any free port). The host is always 127.0.0.1. */
  port?: number;
  /** Region requests must be signed for; default `us-east-1`. */
  region?: string;
  /** Key pairs to accept; default `[LOCAL_BEDROCK_CREDENTIALS]`. Pass `[]` to accept none. */
  credentials?: LocalCredentials[];
  /** Bedrock API keys (`Authorization: Bearer …`) to accept; default none. */
  bearerTokens?: string[];
  /** The scripted model; default {@link echoReply}. */
  reply?: ReplyFunction;
}

/**
 * A running local endpoint. Obtain one with {@link startLocalBedrock}.
 *
 * @example
 * ```ts
 * const server = await startLocalBedrock();
 * const client = new BedrockRuntimeClient({ endpoint: server.url, region: server.region, credentials: server.credentials });
 * server.reply = () => ({ text: "scripted" });
 * await client.send(new ConverseCommand({ modelId: "amazon.nova-lite-v1:0", messages: [{ role: "user", content: [{ text: "hi" }] }] }));
 * assert.equal(server.requests.length, 1);
 * await server.close();
 * ```
 */
export interface LocalBedrock {
  /** `http://127.0.0.1:PORT`: HTTP/1.1 and HTTP/2 (prior knowledge) on the same port. */
  readonly url: string;
  readonly region: string;
  /**
   * The first key pair accepted at start: {@link LOCAL_BEDROCK_CREDENTIALS} unless `options.credentials`
   * said otherwise (with `credentials: []` it is still that constant, but it is not accepted).
   */
  readonly credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * Every request received since the last reset, rejected ones included, in the order their bodies
   * finished arriving (a request is recorded once its body is in and its signature checked).
   */
  readonly requests: ReceivedRequest[];
  /** The scripted model; assign to change it for the following requests. */
  reply: ReplyFunction;
  /**
   * Queues replies to use, one per request and in order, before falling back to {@link reply}.
   * Handy for "throttled once, then fine".
   */
  queueReplies(...replies: ModelReply[]): void;
  /**
   * Accepts this key pair from now on (replacing any pair with the same access key id). Throws a
   * `TypeError` when its `sessionPolicy` is not a policy document IAM would accept.
   */
  addCredentials(credentials: LocalCredentials): void;
  /** Stops accepting this access key id; later requests signed with it are `unknown-key`. */
  removeCredentials(accessKeyId: string): void;
  /** Accepts `Authorization: Bearer <token>` (a Bedrock API key) from now on. */
  addBearerToken(token: string): void;
  removeBearerToken(token: string): void;
  /**
   * Forgets recorded requests, queued replies and async invocations, and restores the reply function
   * given at start. Accepted credentials are left as they are.
   */
  reset(): void;
  /** Resolves once no response is being written (each one finished, or its client went away). */
  whenIdle(): Promise<void>;
  /** Stops listening and destroys every connection and HTTP/2 session at once, streams included. */
  close(): Promise<void>;
}

/**
 * Who may assume a role with `AssumeRoleWithWebIdentity`: an OpenID Connect provider (its issuer
 * and signing keys) and the trust policy's conditions on the token's `aud` and `sub`.
 *
 * @example
 * ```ts
 * const { publicKey, privateKey } = await generateKeyPair("ES256");
 * const trust: WebIdentityTrust = {
 *   issuer: "https://token.actions.githubusercontent.com",
 *   jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" }] },
 *   subjects: ["repo:acme/agent:*"],
 * };
 * ```
 */
export interface WebIdentityTrust {
  /** The token's `iss` must be exactly this. */
  issuer: string;
  /** The provider's public keys; tokens are verified against them (asymmetric algorithms only). */
  jwks: JSONWebKeySet;
  /** The token's `aud` must contain this; default `sts.amazonaws.com`. */
  audience?: string;
  /**
   * Allowed `sub` values: exact, or a prefix when ending in `*` (`repo:acme/agent:*`). Absent: any
   * subject the provider vouches for.
   */
  subjects?: string[];
}

/**
 * A role the local STS lets callers assume.
 *
 * @example
 * ```ts
 * const role: LocalRole = { arn: "arn:aws:iam::123456789012:role/agent", maxSessionDurationSeconds: 7200 };
 * ```
 */
export interface LocalRole {
  /** `arn:aws:iam::<account>:role/<path/>name`. */
  arn: string;
  /** Upper bound of `DurationSeconds`, 3600 to 43200 as IAM allows; default 3600. */
  maxSessionDurationSeconds?: number;
  /** Present: the role may be assumed with `AssumeRoleWithWebIdentity` by tokens of this provider. */
  webIdentity?: WebIdentityTrust;
}

/**
 * Options for {@link startLocalSts}.
 *
 * @example
 * ```ts
 * const bedrock = await startLocalBedrock();
 * const sts = await startLocalSts({ roles: [{ arn: "arn:aws:iam::123456789012:role/agent" }], issueTo: [bedrock] });
 * ```
 */
export interface LocalStsOptions {
  /** Port to listen on; default 0 (any free port). The host is always 127.0.0.1. */
  port?: number;
  /** Region requests must be signed for; default `us-east-1`. */
  region?: string;
  /** The account in assumed-role ARNs; default `123456789012`. */
  account?: string;
  /**
   * Key pairs allowed to call `AssumeRole` (signed for service `sts`); default
   * `[LOCAL_BEDROCK_CREDENTIALS]`. Their `principalArn` names the caller in AccessDenied messages.
   */
  credentials?: LocalCredentials[];
  /** The roles that exist. */
  roles: LocalRole[];
  /**
   * Bedrock endpoints that accept the issued keys: each issued session is registered there with
   * its session token, expiration, session policy and assumed-role ARN.
   */
  issueTo?: LocalBedrock[];
  /**
   * The STS clock: issue times and expirations, and the validity window of web identity tokens.
   * Default `() => new Date()`. Signatures are still checked against the real clock, which is the
   * one the SDK signs with.
   */
  now?: () => Date;
}

/**
 * An STS operation the local endpoint implements.
 *
 * @example
 * ```ts
 * const viaOidc = sts.sessions.filter((s) => s.operation === ("AssumeRoleWithWebIdentity" satisfies StsOperation));
 * ```
 */
export type StsOperation = "AssumeRole" | "AssumeRoleWithWebIdentity";

/**
 * A session the local STS issued. It holds no secret: neither the secret key nor the session token.
 *
 * @example
 * ```ts
 * const [session] = sts.sessions;
 * assert.equal(session?.roleSessionName, "nightly-report");
 * assert.deepEqual(session?.tags, { team: "data" });
 * ```
 */
export interface IssuedSession {
  accessKeyId: string;
  operation: StsOperation;
  roleArn: string;
  /** `arn:aws:sts::<account>:assumed-role/<role>/<session>`. */
  assumedRoleArn: string;
  roleSessionName: string;
  sourceIdentity?: string;
  /** Session tags: `Tags` for AssumeRole, the token's `principal_tags` for web identity. */
  tags: Record<string, string>;
  /** The inline session policy, as sent. */
  policy?: string;
  /** The token's `sub` (AssumeRoleWithWebIdentity only). */
  subject?: string;
  issuedAt: Date;
  /** When the key stops working; moved to the present by {@link LocalSts.expire}. */
  expiration: Date;
}

/**
 * One request as the local STS received it, rejected ones included.
 *
 * @example
 * ```ts
 * assert.deepEqual(sts.requests.map((r) => [r.action, r.status, r.errorCode]), [
 *   ["AssumeRole", 400, "Throttling"],
 *   ["AssumeRole", 200, undefined],
 * ]);
 * ```
 */
export interface StsReceivedRequest {
  /** Position in {@link LocalSts.requests}. */
  index: number;
  /** The `Action` parameter, when the body could be read and parsed. */
  action?: string;
  /** The access key id of a SigV4 signature, whether or not it verified. */
  accessKeyId?: string;
  receivedAt: Date;
  /** HTTP status of the answer; absent while the body is still arriving, or when the client left first. */
  status?: number;
  /** The AWS error code answered with (`AccessDenied`, `InvalidIdentityToken`…); absent on success. */
  errorCode?: string;
  /** The error message answered with. */
  errorMessage?: string;
}

/**
 * A failure for the local STS to answer with instead of serving the next requests. It replaces any
 * failure still pending; `times: 0` cancels the pending one.
 *
 * @example
 * ```ts
 * sts.failNext({ code: "Throttling", status: 400, message: "Rate exceeded", times: 2 });
 * ```
 */
export interface StsFailure {
  /** AWS error code, e.g. `Throttling`, `RegionDisabledException`, `InternalFailure`. */
  code: string;
  /** HTTP status, e.g. 400 (Throttling) or 500. */
  status: number;
  message?: string;
  /** How many of the following requests fail this way; default 1; 0 cancels a pending failure. */
  times?: number;
}

/**
 * A running local STS endpoint. Obtain one with {@link startLocalSts}.
 *
 * @example
 * ```ts
 * const sts = await startLocalSts({ roles: [{ arn: "arn:aws:iam::123456789012:role/agent" }], issueTo: [bedrock] });
 * const client = new STSClient({ endpoint: sts.url, region: sts.region, credentials: { ...LOCAL_BEDROCK_CREDENTIALS } });
 * const { Credentials } = await client.send(new AssumeRoleCommand({ RoleArn: "arn:aws:iam::123456789012:role/agent", RoleSessionName: "job-1" }));
 * sts.expire(Credentials!.AccessKeyId!); // the Bedrock endpoint now answers ExpiredTokenException
 * client.destroy();
 * await sts.close();
 * ```
 */
export interface LocalSts {
  /** `http://127.0.0.1:PORT` (HTTP/1.1, which is what the STS client speaks). */
  readonly url: string;
  readonly region: string;
  readonly account: string;
  /** Every session issued, in order. */
  readonly sessions: readonly IssuedSession[];
  /** Every request received, in order. */
  readonly requests: readonly StsReceivedRequest[];
  /**
   * Answers the next request(s), whatever they are, with this error (fault injection), replacing
   * any injected failure still pending. Throws a `TypeError` for a status outside 400–599.
   */
  failNext(failure: StsFailure): void;
  /**
   * Makes an issued key expire now, here and at every `issueTo` endpoint. Throws a `RangeError` for
   * a key this STS did not issue.
   */
  expire(accessKeyId: string): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}
