/**
 * Turns a scripted {@link ModelReply} into each operation's response: the Converse shapes of the
 * Bedrock Runtime model, and the Anthropic Messages shapes that InvokeModel carries in its body
 * (every model is rendered as Claude: the endpoint plays one model, whatever the id).
 * @module
 */
import { randomBytes } from "node:crypto";
import type { StreamEvent } from "./event-stream.js";
import type { ModelReply, ReceivedRequest, ReplyError, ToolUseReply } from "./types.js";
import { isRecord } from "../records.js";

/** A reply with every default filled in. */
export interface ResolvedReply {
  /** `undefined` when the reply is tool uses only. */
  text: string | undefined;
  toolUses: ToolUseReply[];
  stopReason: string;
  usage: { inputTokens: number; outputTokens: number };
  chunkSize: number;
  eventDelayMs: number;
  error: ReplyError | undefined;
}

/** The events of a streamed reply, split where an `inStream` error replaces the rest. */
export interface RenderedStream {
  content: StreamEvent[];
  /** The closing events; they carry the latency, known only once the content has been written. */
  closing(latencyMs: number): StreamEvent[];
}

const DEFAULT_CHUNK_SIZE = 16;
const ECHO_LIMIT = 200;

/**
 * The default scripted model: answers `Echo: <last user text>` (cut to 200 characters), reading
 * the Converse `messages`, an Anthropic Messages body, or a `prompt`/`inputText` body.
 *
 * @example
 * ```ts
 * server.reply = (request) => (request.operation === "InvokeModel" ? { text: "{}" } : echoReply(request));
 * ```
 */
export function echoReply(request: ReceivedRequest): ModelReply {
  const said = lastUserText(request.body);
  return { text: said ? `Echo: ${said.slice(0, ECHO_LIMIT)}` : "Hello from the local Bedrock endpoint." };
}

function lastUserText(body: unknown): string | undefined {
  if (!isRecord(body)) return undefined;
  const messages = Array.isArray(body["messages"]) ? body["messages"] : [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const message: unknown = messages[i];
    if (!isRecord(message) || message["role"] !== "user") continue;
    const content = message["content"];
    if (typeof content === "string") return content;
    if (!Array.isArray(content)) continue;
    const texts = content.flatMap((block: unknown) => (isRecord(block) && typeof block["text"] === "string" ? [block["text"]] : []));
    if (texts.length) return texts.join(" ");
  }
  for (const field of ["prompt", "inputText"]) {
    if (typeof body[field] === "string") return body[field];
  }
  return undefined;
}

/** Fills in a reply's defaults, estimating usage at about four characters per token. */
export function resolveReply(reply: ModelReply, request: ReceivedRequest): ResolvedReply {
  const toolUses = reply.toolUses ?? [];
  const text = reply.text ?? (toolUses.length ? undefined : "");
  const outputChars = (text?.length ?? 0) + toolUses.reduce((sum, use) => sum + JSON.stringify(use.input ?? {}).length, 0);
  return {
    text,
    toolUses,
    stopReason: reply.stopReason ?? (toolUses.length ? "tool_use" : "end_turn"),
    usage: reply.usage ?? { inputTokens: estimateTokens(request.rawBody.length), outputTokens: estimateTokens(outputChars) },
    chunkSize: Math.max(1, Math.floor(reply.chunkSize ?? DEFAULT_CHUNK_SIZE)),
    eventDelayMs: Math.max(0, reply.eventDelayMs ?? 0),
    error: reply.error,
  };
}

export function estimateTokens(characters: number): number {
  return Math.max(1, Math.ceil(characters / 4));
}

/** Converse's JSON body. */
export function renderConverse(reply: ResolvedReply, latencyMs: number): unknown {
  const content: unknown[] = [];
  if (reply.text !== undefined) content.push({ text: reply.text });
  for (const use of reply.toolUses) content.push({ toolUse: { toolUseId: use.toolUseId, name: use.name, input: use.input ?? {} } });
  return {
    output: { message: { role: "assistant", content } },
    stopReason: reply.stopReason,
    usage: totalUsage(reply),
    metrics: { latencyMs },
  };
}

/**
 * ConverseStream's events, in the order Bedrock sends them: no `contentBlockStart` for a text block
 * (only tool uses get one), deltas, a stop per block, then `messageStop` and `metadata`.
 */
export function renderConverseStream(reply: ResolvedReply): RenderedStream {
  const content: StreamEvent[] = [{ eventType: "messageStart", payload: { role: "assistant" } }];
  let index = 0;
  if (reply.text !== undefined) {
    for (const text of chunk(reply.text, reply.chunkSize)) {
      content.push({ eventType: "contentBlockDelta", payload: { contentBlockIndex: index, delta: { text } } });
    }
    content.push({ eventType: "contentBlockStop", payload: { contentBlockIndex: index } });
    index++;
  }
  for (const use of reply.toolUses) {
    content.push({
      eventType: "contentBlockStart",
      payload: { contentBlockIndex: index, start: { toolUse: { toolUseId: use.toolUseId, name: use.name } } },
    });
    for (const input of chunk(JSON.stringify(use.input ?? {}), reply.chunkSize)) {
      content.push({ eventType: "contentBlockDelta", payload: { contentBlockIndex: index, delta: { toolUse: { input } } } });
    }
    content.push({ eventType: "contentBlockStop", payload: { contentBlockIndex: index } });
    index++;
  }
  return {
    content,
    closing: (latencyMs) => [
      { eventType: "messageStop", payload: { stopReason: reply.stopReason } },
      { eventType: "metadata", payload: { usage: totalUsage(reply), metrics: { latencyMs } } },
    ],
  };
}

/** InvokeModel's body: an Anthropic Messages response. */
export function renderInvokeModel(reply: ResolvedReply, modelId: string | undefined): unknown {
  const content: unknown[] = [];
  if (reply.text !== undefined) content.push({ type: "text", text: reply.text });
  for (const use of reply.toolUses) content.push({ type: "tool_use", id: use.toolUseId, name: use.name, input: use.input ?? {} });
  return {
    id: messageId(),
    type: "message",
    role: "assistant",
    model: modelId,
    content,
    stop_reason: reply.stopReason,
    stop_sequence: null,
    usage: { input_tokens: reply.usage.inputTokens, output_tokens: reply.usage.outputTokens },
  };
}

/**
 * InvokeModelWithResponseStream's events: `chunk` events whose `bytes` are base64 Anthropic stream
 * events, the last one carrying Bedrock's `amazon-bedrock-invocationMetrics`.
 */
export function renderInvokeModelStream(reply: ResolvedReply, modelId: string | undefined): RenderedStream {
  const events: unknown[] = [
    {
      type: "message_start",
      message: {
        id: messageId(),
        type: "message",
        role: "assistant",
        model: modelId,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: reply.usage.inputTokens, output_tokens: 1 },
      },
    },
  ];
  let index = 0;
  if (reply.text !== undefined) {
    events.push({ type: "content_block_start", index, content_block: { type: "text", text: "" } });
    for (const text of chunk(reply.text, reply.chunkSize)) {
      events.push({ type: "content_block_delta", index, delta: { type: "text_delta", text } });
    }
    events.push({ type: "content_block_stop", index });
    index++;
  }
  for (const use of reply.toolUses) {
    events.push({ type: "content_block_start", index, content_block: { type: "tool_use", id: use.toolUseId, name: use.name, input: {} } });
    for (const partial_json of chunk(JSON.stringify(use.input ?? {}), reply.chunkSize)) {
      events.push({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json } });
    }
    events.push({ type: "content_block_stop", index });
    index++;
  }
  return {
    content: events.map(anthropicChunk),
    closing: (latencyMs) =>
      [
        {
          type: "message_delta",
          delta: { stop_reason: reply.stopReason, stop_sequence: null },
          usage: { output_tokens: reply.usage.outputTokens },
        },
        {
          type: "message_stop",
          "amazon-bedrock-invocationMetrics": {
            inputTokenCount: reply.usage.inputTokens,
            outputTokenCount: reply.usage.outputTokens,
            invocationLatency: latencyMs,
            firstByteLatency: Math.min(latencyMs, 1),
          },
        },
      ].map(anthropicChunk),
  };
}

function anthropicChunk(event: unknown): StreamEvent {
  return { eventType: "chunk", payload: { bytes: Buffer.from(JSON.stringify(event)).toString("base64") } };
}

// The union members the SDK knows for each stream's exceptions; see encodeException.
const STREAM_EXCEPTION_MEMBERS: Record<"ConverseStream" | "InvokeModelWithResponseStream", ReadonlySet<string>> = {
  ConverseStream: new Set([
    "internalServerException",
    "modelStreamErrorException",
    "validationException",
    "throttlingException",
    "serviceUnavailableException",
  ]),
  InvokeModelWithResponseStream: new Set([
    "internalServerException",
    "modelStreamErrorException",
    "validationException",
    "throttlingException",
    "modelTimeoutException",
    "serviceUnavailableException",
  ]),
};

/**
 * The `:exception-type` to send for an error type: the stream's union member when the type is
 * modeled there (`ThrottlingException` → `throttlingException`), otherwise the type unchanged, which
 * the SDK raises as a plain `Error` named after it.
 */
export function streamExceptionType(operation: "ConverseStream" | "InvokeModelWithResponseStream", type: string): string {
  const member = type.charAt(0).toLowerCase() + type.slice(1);
  return STREAM_EXCEPTION_MEMBERS[operation].has(member) ? member : type;
}

/** Splits by code points, so that a chunk never ends inside a surrogate pair. */
function chunk(text: string, size: number): string[] {
  const chars = Array.from(text);
  if (chars.length === 0) return [""];
  const chunks: string[] = [];
  for (let i = 0; i < chars.length; i += size) chunks.push(chars.slice(i, i + size).join(""));
  return chunks;
}

function totalUsage(reply: ResolvedReply): { inputTokens: number; outputTokens: number; totalTokens: number } {
  const { inputTokens, outputTokens } = reply.usage;
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens };
}

function messageId(): string {
  return `msg_bdrk_${randomBytes(12).toString("hex")}`;
}

/** ApplyGuardrail's body: the guardrail lets everything through. */
export function renderApplyGuardrail(): unknown {
  return {
    usage: {
      topicPolicyUnits: 0,
      contentPolicyUnits: 0,
      wordPolicyUnits: 0,
      sensitiveInformationPolicyUnits: 0,
      sensitiveInformationPolicyFreeUnits: 0,
      contextualGroundingPolicyUnits: 0,
    },
    action: "NONE",
    outputs: [],
    assessments: [],
  };
}

/**
 * InvokeGuardrailChecks' body: every requested check runs and finds nothing; usage counts text
 * units (1,000 characters each) per check.
 */
export function renderGuardrailChecks(body: unknown): unknown {
  const checks = isRecord(body) && isRecord(body["checks"]) ? body["checks"] : {};
  const messages = isRecord(body) && Array.isArray(body["messages"]) ? body["messages"] : [];
  const characters = messages.reduce<number>((sum, message: unknown) => {
    const content = isRecord(message) && Array.isArray(message["content"]) ? message["content"] : [];
    return sum + content.reduce<number>((n, block: unknown) => n + (isRecord(block) && typeof block["text"] === "string" ? block["text"].length : 0), 0);
  }, 0);
  const textUnits = Math.max(1, Math.ceil(characters / 1000));
  const results: Record<string, unknown> = {};
  const usage: Record<string, unknown> = {};
  for (const check of ["contentFilter", "promptAttack", "sensitiveInformation"]) {
    if (!(check in checks)) continue;
    results[check] = check === "sensitiveInformation" ? { results: [], truncated: false } : { results: [] };
    usage[check] = { textUnits };
  }
  return { results, usage };
}
