/**
 * Public types of the local Bedrock Runtime endpoint.
 * @module
 */

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
 * `x-amz-security-token`; after `expiration` they are refused with `ExpiredTokenException`.
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
  /** Accepts this key pair from now on (replacing any pair with the same access key id). */
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
