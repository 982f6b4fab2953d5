/**
 * AWS event-stream framing (`application/vnd.amazon.eventstream`) for response streams.
 * @module
 */
import { EventStreamCodec } from "@smithy/eventstream-codec";

/** One event of a response stream, before framing: its union member name and its JSON payload. */
export interface StreamEvent {
  eventType: string;
  payload: unknown;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const fromUtf8 = (text: string): Uint8Array => encoder.encode(text);
const codec = new EventStreamCodec((bytes) => decoder.decode(bytes), fromUtf8);

/** Frames a modeled event, e.g. `contentBlockDelta` or `chunk`. */
export function encodeEvent({ eventType, payload }: StreamEvent): Uint8Array {
  return codec.encode({
    headers: {
      ":message-type": { type: "string", value: "event" },
      ":event-type": { type: "string", value: eventType },
      ":content-type": { type: "string", value: "application/json" },
    },
    body: fromUtf8(JSON.stringify(payload)),
  });
}

/**
 * Frames an exception. `exceptionType` goes into `:exception-type` as is, and the SDK looks it up
 * among the stream union's *member* names (`throttlingException`), not the shape names
 * (`ThrottlingException`): only a member name comes out as the SDK's typed error class.
 */
export function encodeException(exceptionType: string, message: string): Uint8Array {
  return codec.encode({
    headers: {
      ":message-type": { type: "string", value: "exception" },
      ":exception-type": { type: "string", value: exceptionType },
      ":content-type": { type: "string", value: "application/json" },
    },
    body: fromUtf8(JSON.stringify({ message })),
  });
}
