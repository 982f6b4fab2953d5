/**
 * The local Bedrock Runtime endpoint: authenticates each request, records it, asks the scripted
 * model for a reply and renders it the way the real service would, so that the AWS SDK's whole
 * pipeline (signing, serialization, retries, event-stream decoding) runs unchanged against it.
 * @module
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { AsyncInvocations } from "./async-invokes.js";
import { Authenticator, LOCAL_BEDROCK_CREDENTIALS, authorizeSessionPolicy, type AuthFailure } from "./auth.js";
import { encodeEvent, encodeException } from "./event-stream.js";
import {
  echoReply,
  renderApplyGuardrail,
  renderConverse,
  renderConverseStream,
  renderGuardrailChecks,
  renderInvokeModel,
  renderInvokeModelStream,
  resolveReply,
  streamExceptionType,
  type RenderedStream,
  type ResolvedReply,
} from "./render.js";
import { parseQuery, routeRequest } from "./routes.js";
import { DualProtocolListener, type Exchange } from "./transport.js";
import type { LocalBedrock, LocalBedrockOptions, LocalCredentials, ModelReply, ReceivedRequest, ReplyFunction } from "./types.js";
import { isRecord } from "../records.js";

const EVENT_STREAM = "application/vnd.amazon.eventstream";
const JSON_TYPE = "application/json";

/**
 * Starts a local Bedrock Runtime endpoint on 127.0.0.1 (HTTP/1.1 and HTTP/2 on one port).
 *
 * @example
 * ```ts
 * import { BedrockRuntimeClient, ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
 * import { startLocalBedrock } from "bedrock-warden/local-endpoint";
 *
 * const server = await startLocalBedrock({ reply: () => ({ text: "Hello!" }) });
 * const client = new BedrockRuntimeClient({ endpoint: server.url, region: server.region, credentials: server.credentials });
 * const out = await client.send(
 *   new ConverseCommand({ modelId: "amazon.nova-lite-v1:0", messages: [{ role: "user", content: [{ text: "Hi" }] }] }),
 * );
 * console.log(out.output?.message?.content?.[0]?.text); // "Hello!"
 * client.destroy();
 * await server.close();
 * ```
 */
export async function startLocalBedrock(options: LocalBedrockOptions = {}): Promise<LocalBedrock> {
  const server = new LocalBedrockServer(options);
  await server.listen(options.port ?? 0);
  return server;
}

class LocalBedrockServer implements LocalBedrock {
  url = "";
  readonly region: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  readonly requests: ReceivedRequest[] = [];
  reply: ReplyFunction;

  private readonly initialReply: ReplyFunction;
  private readonly queued: ModelReply[] = [];
  private readonly auth: Authenticator;
  private readonly asyncInvocations: AsyncInvocations;
  private readonly listener: DualProtocolListener;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly shutdown = new AbortController();
  private closing: Promise<void> | undefined;

  constructor(options: LocalBedrockOptions) {
    this.region = options.region ?? "us-east-1";
    this.reply = this.initialReply = options.reply ?? echoReply;
    this.auth = new Authenticator(this.region);
    const keys = options.credentials ?? [LOCAL_BEDROCK_CREDENTIALS];
    for (const key of keys) this.auth.addCredentials(key);
    for (const token of options.bearerTokens ?? []) this.auth.addBearerToken(token);
    const first: LocalCredentials = keys[0] ?? LOCAL_BEDROCK_CREDENTIALS;
    this.credentials = {
      accessKeyId: first.accessKeyId,
      secretAccessKey: first.secretAccessKey,
      ...(first.sessionToken ? { sessionToken: first.sessionToken } : {}),
    };
    this.asyncInvocations = new AsyncInvocations(this.region);
    this.listener = new DualProtocolListener((exchange) => this.track(this.serve(exchange)));
  }

  async listen(port: number): Promise<void> {
    this.url = `http://127.0.0.1:${await this.listener.listen(port)}`;
  }

  queueReplies(...replies: ModelReply[]): void {
    this.queued.push(...replies);
  }

  addCredentials(credentials: LocalCredentials): void {
    this.auth.addCredentials(credentials);
  }

  removeCredentials(accessKeyId: string): void {
    this.auth.removeCredentials(accessKeyId);
  }

  addBearerToken(token: string): void {
    this.auth.addBearerToken(token);
  }

  removeBearerToken(token: string): void {
    this.auth.removeBearerToken(token);
  }

  reset(): void {
    this.requests.length = 0;
    this.queued.length = 0;
    this.asyncInvocations.clear();
    this.reply = this.initialReply;
  }

  async whenIdle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  close(): Promise<void> {
    // Responses still being written stop at their next write: their sockets are gone and the
    // delays between events are cut short.
    this.shutdown.abort();
    return (this.closing ??= this.listener.close());
  }

  private track(task: Promise<void>): void {
    const settled = task.catch(() => undefined);
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
  }

  private async serve(exchange: Exchange): Promise<void> {
    const started = Date.now();
    const queryAt = exchange.url.indexOf("?");
    const path = queryAt < 0 ? exchange.url : exchange.url.slice(0, queryAt);
    const query = parseQuery(queryAt < 0 ? "" : exchange.url.slice(queryAt + 1));
    const route = routeRequest(exchange.method, path);
    const bidirectional = route.operation === "InvokeModelWithBidirectionalStream";

    // A bidirectional request body is an event stream that stays open until the client ends it;
    // the request is refused on its headers alone.
    let rawBody: Uint8Array | undefined;
    let bodyComplete = true;
    if (bidirectional) {
      exchange.discardBody();
    } else {
      try {
        rawBody = await exchange.readBody();
      } catch {
        bodyComplete = false;
      }
    }
    const { check, failure, key } = bodyComplete
      ? await this.auth.authenticate({ method: exchange.method, path, query, headers: exchange.headers, body: rawBody })
      : { check: { status: "invalid" as const, reason: "the connection closed before the request body was complete" }, failure: undefined };

    const headers = Object.fromEntries(Object.entries(exchange.headers).filter(([name]) => !name.startsWith(":")));
    const body = parseBody(rawBody, headers["content-type"]);
    const bodyModelId = route.operation === "StartAsyncInvoke" && isRecord(body) && typeof body["modelId"] === "string" ? body["modelId"] : undefined;
    const modelId = route.pathParameters["modelId"] ?? bodyModelId;
    // Like IAM, after authentication and before the service does anything: a key's session policy.
    const authorized = key ? authorizeSessionPolicy(key, { operation: route.operation, modelId, pathParameters: route.pathParameters }, this.region) : undefined;
    const record: ReceivedRequest = {
      index: this.requests.length,
      operation: route.operation,
      method: exchange.method,
      path,
      query: Object.fromEntries(Object.entries(query).map(([key, value]) => [key, Array.isArray(value) ? value.join(",") : value])),
      ...(modelId !== undefined ? { modelId } : {}),
      pathParameters: route.pathParameters,
      headers,
      body,
      rawBody: rawBody ?? new Uint8Array(),
      signature: check,
      ...(authorized ? { authorization: authorized.authorization } : {}),
      httpVersion: exchange.httpVersion,
      receivedAt: new Date(started),
      eventsSent: 0,
      completed: false,
      closedByClient: !bodyComplete,
    };
    this.requests.push(record);
    if (!bodyComplete) return;
    void exchange.clientGoneSignal.then(() => (record.closedByClient = true));

    if (failure) return this.sendError(exchange, record, failure);
    if (authorized?.failure) return this.sendError(exchange, record, authorized.failure);
    try {
      await this.respond(exchange, record, started);
    } catch (error) {
      // A reply the endpoint cannot render (say, a BigInt in a tool input) must still end the
      // exchange, or the client would wait until it times out.
      if (record.status === undefined) {
        const message = `The local endpoint failed to render the reply: ${error instanceof Error ? error.message : String(error)}`;
        await this.sendError(exchange, record, { status: 500, type: "InternalServerException", message });
      } else {
        exchange.abort();
      }
    }
  }

  private async respond(exchange: Exchange, record: ReceivedRequest, started: number): Promise<void> {
    const { operation, modelId, body, pathParameters } = record;
    if (operation === "Unknown") {
      return this.sendError(exchange, record, {
        status: 404,
        type: "UnknownOperationException",
        message: `No Bedrock Runtime operation is ${record.method} ${record.path}`,
      });
    }
    if (operation === "InvokeModelWithBidirectionalStream") {
      return this.sendError(exchange, record, {
        status: 400,
        type: "ValidationException",
        message: "InvokeModelWithBidirectionalStream is not supported by the local endpoint",
      });
    }

    let reply: ResolvedReply;
    try {
      reply = resolveReply(this.queued.shift() ?? (await this.reply(record)), record);
    } catch (error) {
      const message = `The local endpoint's reply function failed: ${error instanceof Error ? error.message : String(error)}`;
      return this.sendError(exchange, record, { status: 500, type: "InternalServerException", message });
    }
    const streaming = operation === "ConverseStream" || operation === "InvokeModelWithResponseStream";
    if (reply.error && !(reply.error.inStream && streaming)) return this.sendError(exchange, record, reply.error);

    switch (operation) {
      case "Converse":
        return this.sendJson(exchange, record, renderConverse(reply, Date.now() - started));
      case "ConverseStream":
        return this.stream(exchange, record, "ConverseStream", reply, renderConverseStream(reply), started, {});
      case "InvokeModel":
        return this.sendJson(exchange, record, renderInvokeModel(reply, modelId), {
          "x-amzn-bedrock-input-token-count": String(reply.usage.inputTokens),
          "x-amzn-bedrock-output-token-count": String(reply.usage.outputTokens),
          "x-amzn-bedrock-invocation-latency": String(Date.now() - started),
        });
      case "InvokeModelWithResponseStream":
        return this.stream(exchange, record, "InvokeModelWithResponseStream", reply, renderInvokeModelStream(reply, modelId), started, {
          "x-amzn-bedrock-content-type": JSON_TYPE,
        });
      case "CountTokens":
        return this.sendJson(exchange, record, { inputTokens: reply.usage.inputTokens });
      case "ApplyGuardrail":
        return this.sendJson(exchange, record, renderApplyGuardrail());
      case "InvokeGuardrailChecks":
        return this.sendJson(exchange, record, renderGuardrailChecks(body));
      case "StartAsyncInvoke":
        return this.sendJson(exchange, record, this.asyncInvocations.start(body));
      case "GetAsyncInvoke":
        return this.sendJson(exchange, record, this.asyncInvocations.get(pathParameters["invocationArn"] ?? ""));
      case "ListAsyncInvokes":
        return this.sendJson(exchange, record, this.asyncInvocations.list(record.query));
    }
  }

  private async sendJson(exchange: Exchange, record: ReceivedRequest, body: unknown, headers: Record<string, string> = {}): Promise<void> {
    const text = JSON.stringify(body);
    record.status = 200;
    await exchange.send(200, { "content-type": JSON_TYPE, "x-amzn-requestid": randomUUID(), ...headers }, text);
    record.completed = !exchange.clientGone;
  }

  /** Errors the way restJson1 services send them: the type in `x-amzn-errortype`, the message in the body. */
  private async sendError(
    exchange: Exchange,
    record: ReceivedRequest,
    error: AuthFailure | { status: number; type: string; message: string },
  ): Promise<void> {
    record.status = error.status;
    const headers = { "content-type": JSON_TYPE, "x-amzn-errortype": error.type, "x-amzn-requestid": randomUUID() };
    await exchange.send(error.status, headers, JSON.stringify({ message: error.message }));
    record.completed = !exchange.clientGone;
  }

  /** Writes a stream event by event, pausing `eventDelayMs` before each but the first. */
  private async stream(
    exchange: Exchange,
    record: ReceivedRequest,
    operation: "ConverseStream" | "InvokeModelWithResponseStream",
    reply: ResolvedReply,
    rendered: RenderedStream,
    started: number,
    headers: Record<string, string>,
  ): Promise<void> {
    record.status = 200;
    exchange.startStream(200, { "content-type": EVENT_STREAM, "x-amzn-requestid": randomUUID(), ...headers });
    const send = async (frame: () => Uint8Array): Promise<boolean> => {
      if (record.eventsSent > 0 && reply.eventDelayMs > 0) {
        const delay = sleep(reply.eventDelayMs, undefined, { signal: this.shutdown.signal }).catch(() => undefined);
        await Promise.race([delay, exchange.clientGoneSignal]);
      }
      if (exchange.clientGone || this.shutdown.signal.aborted) return false;
      if (!(await exchange.write(frame()))) return false;
      record.eventsSent++;
      return true;
    };

    for (const event of rendered.content) {
      if (!(await send(() => encodeEvent(event)))) return;
    }
    if (reply.error?.inStream) {
      const { type, message } = reply.error;
      if (!(await send(() => encodeException(streamExceptionType(operation, type), message)))) return;
    } else {
      for (const event of rendered.closing(Date.now() - started)) {
        if (!(await send(() => encodeEvent(event)))) return;
      }
    }
    await exchange.end();
    record.completed = !exchange.clientGone;
  }
}

/**
 * JSON when declared so, or when it looks like an object or array: InvokeModel bodies are JSON
 * whatever content type the caller gave them (the SDK defaults to application/octet-stream).
 */
function parseBody(raw: Uint8Array | undefined, contentType: string | undefined): unknown {
  if (!raw || raw.byteLength === 0) return undefined;
  const text = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("utf8");
  if (!/json/i.test(contentType ?? "") && !/^\s*[[{]/.test(text)) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

