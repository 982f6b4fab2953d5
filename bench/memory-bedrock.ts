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

async function* frames(): AsyncGenerator<Uint8Array> {
  for (const frame of FRAMES) yield frame;
}

/**
 * A request handler for `BedrockRuntime` that never leaves the process: `/converse` gets
 * {@link CONVERSE_REPLY}, `/converse-stream` gets {@link STREAM_EVENTS} as an event stream.
 */
export class MemoryBedrock implements RequestHandler<HttpRequest, HttpResponse, HttpHandlerOptions> {
  /** How many requests reached the "network". A denied governed call must not add one. */
  requests = 0;

  async handle(request: HttpRequest): Promise<{ response: HttpResponse }> {
    this.requests++;
    if (request.path.endsWith("/converse-stream")) {
      return {
        response: new HttpResponse({
          statusCode: 200,
          headers: { "content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": "bench-stream" },
          body: frames(),
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
