import { Readable } from "node:stream";
import { HttpResponse } from "@smithy/protocol-http";
import { encodeEvent, encodeException } from "../../src/local-endpoint/event-stream.js";

/** One event-stream frame of `eventType` carrying `payload` as JSON. */
export function frame(eventType: string, payload: unknown): Uint8Array {
  return encodeEvent({ eventType, payload });
}

/** An in-stream exception frame, as Bedrock sends when a stream fails midway. */
export function exceptionFrame(exceptionType: string, message: string): Uint8Array {
  return encodeException(exceptionType, message);
}
/** The frames of a ConverseStream reply: text in `chunks` deltas, then stop and usage. */
export function converseStreamFrames(chunks: string[], usage = { inputTokens: 12, outputTokens: 34, totalTokens: 46 }): Uint8Array[] {
  return [
    frame("messageStart", { role: "assistant" }),
    ...chunks.map((text) => frame("contentBlockDelta", { contentBlockIndex: 0, delta: { text } })),
    frame("contentBlockStop", { contentBlockIndex: 0 }),
    frame("messageStop", { stopReason: "end_turn" }),
    frame("metadata", { usage, metrics: { latencyMs: 10 } }),
  ];
}

/** A streaming HTTP response whose body yields `frames` one by one, `delayMs` apart. */
export function eventStreamResponse(frames: Uint8Array[], delayMs = 0): { response: HttpResponse; body: Readable } {
  const body = Readable.from(
    (async function* () {
      for (const f of frames) {
        if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
        yield f;
      }
    })(),
    { objectMode: false },
  );
  const response = new HttpResponse({
    statusCode: 200,
    headers: { "content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": "stream-req-1" },
    body,
  });
  return { response, body };
}
