/**
 * The input a call is decided on is the input that is sent: the caller's object is copied once,
 * when the call starts, and only the copy is decided on and passed down the SDK's pipeline. The
 * caller can neither change the request after it was allowed (the SDK awaits endpoint resolution
 * before it serializes, so a change made right after `send()` would otherwise be sent) nor slip a
 * different value past the decision with a getter. The caller's object is never modified.
 * @module
 */

import { setOwnKey } from "../validation.js";

/** Objects nested deeper than this are refused: no Bedrock input is that deep, a hostile one may be. */
export const MAX_INPUT_DEPTH = 64;

/**
 * A deep copy of `input`: every object — plain, a class instance, from another realm, a proxy — by
 * its own enumerable properties, each read exactly once, into an object without a prototype (an
 * inherited, polluted `Object.prototype.toolConfig` is read neither by the decision nor by the
 * serializer); arrays item by item; a Date by its time. Binary payloads (images, documents) and
 * streams are kept by reference — no policy reads them — except the bodies a decision reads
 * (InvokeModel's `body`, CountTokens' `input.invokeModel.body`), which are copied, as a
 * `Uint8Array` whatever binary type they came as.
 *
 * @throws whatever a getter of the caller's object throws, or a `RangeError` past {@link MAX_INPUT_DEPTH}.
 */
export function snapshotInput(input: unknown): Record<string, unknown> {
  if (typeof input !== "object" || input === null) return {};
  const copy = copyValue(input, 0) as Record<string, unknown>;
  if (typeof copy !== "object" || copy === null || Array.isArray(copy)) return {};
  if ("body" in copy) copy["body"] = copyBytes(copy["body"]);
  const invokeModel = (copy["input"] as Record<string, unknown> | undefined)?.["invokeModel"] as Record<string, unknown> | undefined;
  if (typeof invokeModel === "object" && invokeModel !== null && "body" in invokeModel) invokeModel["body"] = copyBytes(invokeModel["body"]);
  return copy;
}

function copyValue(value: unknown, depth: number): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (depth > MAX_INPUT_DEPTH) throw new RangeError(`the input is nested deeper than ${MAX_INPUT_DEPTH} levels`);
  if (Array.isArray(value)) {
    const length = value.length;
    const items: unknown[] = [];
    for (let i = 0; i < length; i++) items.push(copyValue(value[i], depth + 1));
    return items;
  }
  if (isBinaryOrStream(value)) return value;
  if (value instanceof Date) return new Date(value.getTime());
  const copy: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(value)) {
    const item = copyValue((value as Record<string, unknown>)[key], depth + 1);
    // A "__proto__" key stays a plain key and never changes the copy's prototype.
    setOwnKey(copy, key, item);
  }
  return copy;
}

/** Bytes (any view or buffer), or something read later in chunks: a Node stream, a web stream, a Blob. */
function isBinaryOrStream(value: object): boolean {
  if (ArrayBuffer.isView(value)) return true;
  const tag = Object.prototype.toString.call(value);
  if (tag === "[object ArrayBuffer]" || tag === "[object SharedArrayBuffer]" || tag === "[object Blob]" || tag === "[object File]") return true;
  const candidate = value as { pipe?: unknown; getReader?: unknown; [Symbol.asyncIterator]?: unknown };
  return typeof candidate.pipe === "function" || typeof candidate.getReader === "function" || typeof candidate[Symbol.asyncIterator] === "function";
}

/** A fresh `Uint8Array` of the bytes of any view or buffer; anything else as it is. */
function copyBytes(value: unknown): unknown {
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  const tag = Object.prototype.toString.call(value);
  if (tag === "[object ArrayBuffer]" || tag === "[object SharedArrayBuffer]") return new Uint8Array((value as ArrayBuffer).slice(0));
  return value;
}
