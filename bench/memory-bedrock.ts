/**
 * An in-memory Bedrock Runtime for the benchmark: a request handler that answers Converse with a
 * JSON reply and ConverseStream with a pre-encoded event stream, without any network or disk.
 * Both the governed and the bare client get one, so the SDK pipeline (serialize, endpoint, retry,
 * SigV4 signing, deserialize) runs in full on both sides and only governance differs.
 * @module
 */
import { devNull } from "node:os";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { HttpResponse, type HttpRequest } from "@smithy/protocol-http";
import type { HttpHandlerOptions, RequestHandler } from "@smithy/types";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";

const codec = new EventStreamCodec(toUtf8, fromUtf8);

/** The Converse reply: a short assistant message with usage, as Bedrock sends it. */
export const CONVERSE_REPLY = {
  output: { message: { role: "assistant", content: [{ text: "The invoice total is 4,711.00 EUR." }] } },
  stopReason: "end_turn",
  usage: { inputTokens: 42, outputTokens: 12, totalTokens: 54 },
  metrics: { latencyMs: 180 },
};

/** The ConverseStream events, in Bedrock's order. */
export const STREAM_EVENTS: readonly (readonly [string, unknown])[] = [
  ["messageStart", { role: "assistant" }],
  ["contentBlockDelta", { contentBlockIndex: 0, delta: { text: "The invoice " } }],
  ["contentBlockDelta", { contentBlockIndex: 0, delta: { text: "total is " } }],
  ["contentBlockDelta", { contentBlockIndex: 0, delta: { text: "4,711.00 EUR." } }],
  ["contentBlockStop", { contentBlockIndex: 0 }],
  ["messageStop", { stopReason: "end_turn" }],
  ["metadata", { usage: { inputTokens: 42, outputTokens: 12, totalTokens: 54 }, metrics: { latencyMs: 180 } }],
];

/** One event-stream frame, as Bedrock encodes an event of a `:event-type`. */
export function encodeEvent(eventType: string, payload: unknown): Uint8Array {
  return codec.encode({
    headers: {
      ":event-type": { type: "string", value: eventType },
      ":content-type": { type: "string", value: "application/json" },
      ":message-type": { type: "string", value: "event" },
    },
    body: fromUtf8(JSON.stringify(payload)),
  });
}

// Encoded once: the handler's own cost must be as small and as constant as possible.
const JSON_BODY = Buffer.from(JSON.stringify(CONVERSE_REPLY));
const FRAMES: readonly Uint8Array[] = STREAM_EVENTS.map(([type, payload]) => encodeEvent(type, payload));

async function* frames(list: readonly Uint8Array[] = FRAMES): AsyncGenerator<Uint8Array> {
  for (const frame of list) yield frame;
}

/** Splits `text` into chunks of `size` characters. */
function chunks(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/**
 * A ConverseStream reply that asks for a tool, as Bedrock streams it: a text block in small
 * deltas, then a `toolUse` block whose JSON input arrives in `chunkSize`-character
 * `contentBlockDelta.delta.toolUse.input` chunks, then the stops and usage. Every frame is encoded
 * once, except the tool block's start: each reply gets its own `toolUseId`, as from a real model.
 */
export class ToolUseStream {
  /** The tool's input, as the model sends it (JSON, in chunks). */
  readonly inputJson: string;
  /** How many events each reply has. */
  readonly eventCount: number;
  /** How many of them are tool input deltas / text deltas. */
  readonly toolInputDeltas: number;
  readonly textDeltas: number;
  /** The position of the tool block's `contentBlockStop` among the events (where the tool call is decided). */
  readonly toolStopIndex: number;
  /** The events as the SDK hands them to the caller (`{ [eventType]: payload }`), for timing pieces without the SDK. */
  readonly events: readonly Record<string, unknown>[];
  readonly #frames: Uint8Array[];
  readonly #startIndex: number;
  #replies = 0;

  constructor(
    readonly toolName: string,
    readonly input: Record<string, unknown>,
    options: { chunkSize?: number; text?: string; textChunkSize?: number } = {},
  ) {
    const { chunkSize = 3, textChunkSize = 6 } = options;
    const text = options.text ?? "I will look at the damaged lines of invoice 4711 and refund them to the customer now. One moment while I prepare the refund.";
    this.inputJson = JSON.stringify(input);
    const inputChunks = chunks(this.inputJson, chunkSize);
    const textChunks = chunks(text, textChunkSize);
    const events: [string, unknown][] = [
      ["messageStart", { role: "assistant" }],
      ...textChunks.map((t): [string, unknown] => ["contentBlockDelta", { contentBlockIndex: 0, delta: { text: t } }]),
      ["contentBlockStop", { contentBlockIndex: 0 }],
      ["contentBlockStart", this.#start("tooluse_placeholder")],
      ...inputChunks.map((input): [string, unknown] => ["contentBlockDelta", { contentBlockIndex: 1, delta: { toolUse: { input } } }]),
      ["contentBlockStop", { contentBlockIndex: 1 }],
      ["messageStop", { stopReason: "tool_use" }],
      ["metadata", { usage: { inputTokens: 310, outputTokens: 1180, totalTokens: 1490 }, metrics: { latencyMs: 9400 } }],
    ];
    this.#startIndex = 2 + textChunks.length;
    this.toolStopIndex = this.#startIndex + inputChunks.length + 1;
    this.#frames = events.map(([type, payload]) => encodeEvent(type, payload));
    this.events = events.map(([type, payload]) => ({ [type]: payload }));
    if ((this.events[this.toolStopIndex]?.["contentBlockStop"] as { contentBlockIndex?: number } | undefined)?.contentBlockIndex !== 1) {
      throw new Error("ToolUseStream: toolStopIndex does not point at the tool block's contentBlockStop");
    }
    this.eventCount = events.length;
    this.toolInputDeltas = inputChunks.length;
    this.textDeltas = textChunks.length;
  }

  #start(toolUseId: string): unknown {
    return { contentBlockIndex: 1, start: { toolUse: { toolUseId, name: this.toolName } } };
  }

  /** The frames of the next reply (a new toolUseId; the one small frame encoded per reply). */
  nextReply(): Uint8Array[] {
    const list = this.#frames.slice();
    list[this.#startIndex] = encodeEvent("contentBlockStart", this.#start(`tooluse_bench_${(this.#replies++).toString(36).padStart(8, "0")}`));
    return list;
  }
}

/**
 * A request handler for `BedrockRuntime` that never leaves the process: `/converse` gets
 * {@link CONVERSE_REPLY}, `/converse-stream` gets {@link STREAM_EVENTS} (or a {@link ToolUseStream}) as an event stream.
 */
export class MemoryBedrock implements RequestHandler<HttpRequest, HttpResponse, HttpHandlerOptions> {
  /** How many requests reached the "network". A denied governed call must not add one. */
  requests = 0;

  /** @param streamReply - the ConverseStream reply (a {@link ToolUseStream}); {@link STREAM_EVENTS} by default. */
  constructor(private readonly streamReply?: ToolUseStream) {}

  async handle(request: HttpRequest): Promise<{ response: HttpResponse }> {
    this.requests++;
    if (request.path.endsWith("/converse-stream")) {
      return {
        response: new HttpResponse({
          statusCode: 200,
          headers: { "content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": "bench-stream" },
          body: frames(this.streamReply?.nextReply()),
        }),
      };
    }
    if (request.path.endsWith("/converse")) {
      return {
        response: new HttpResponse({
          statusCode: 200,
          headers: { "content-type": "application/json", "x-amzn-requestid": "bench-converse" },
          body: JSON_BODY,
        }),
      };
    }
    return {
      response: new HttpResponse({
        statusCode: 404,
        headers: { "content-type": "application/json", "x-amzn-errortype": "ResourceNotFoundException" },
        body: Buffer.from(JSON.stringify({ message: `no route for ${request.path}` })),
      }),
    };
  }
}

/** Static, fake credentials: nothing is ever sent, but SigV4 signing still runs on every call. */
export const CREDENTIALS = { accessKeyId: "AKIDBENCHMARKEXAMPLE", secretAccessKey: "bench/secret/key/not/real/EXAMPLEKEY" } as const;

/**
 * Keeps the SDK away from the disk's AWS config: even with a region and static credentials, a
 * client reads `~/.aws/config` and `~/.aws/credentials` for settings such as retry mode, clock-skew
 * correction and app id. Pointing both at the null device makes every client of this process
 * (and of the processes it spawns) see an empty profile, whatever the machine's config says.
 */
export function isolateFromAwsConfig(): void {
  process.env["AWS_CONFIG_FILE"] = devNull;
  process.env["AWS_SHARED_CREDENTIALS_FILE"] = devNull;
}

/** Silences the SDK's warning that it will require Node >= 22; every other warning still prints. */
export function silenceNodeVersionWarning(): void {
  process.removeAllListeners("warning");
  process.on("warning", (warning) => {
    if (warning.name === "NodeVersionSupportWarning" || warning.message.includes("NodeVersionSupportWarning")) return;
    console.error(`(warning) ${warning.name}: ${warning.message}`);
  });
}
