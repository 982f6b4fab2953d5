/**
 * The input a call is decided on is the input that is sent: the caller's object is copied once,
 * when the call starts, and only the copy is decided on and passed down the SDK's pipeline. The
 * caller can neither change the request after it was allowed (the SDK awaits endpoint resolution
 * before it serializes, so a change made right after `send()` would otherwise be sent) nor slip a
 * different value past the decision with a getter. The caller's object is never modified.
 * @module
 */

import { types } from "node:util";
import { setOwnKey } from "../validation.js";

/** Objects nested deeper than this are refused: no Bedrock input is that deep, a hostile one may be. */
export const MAX_INPUT_DEPTH = 64;

/**
 * A deep copy of `input`: every object — plain, a class instance, from another realm, a proxy — by
 * its own enumerable properties, each read exactly once, into a plain object (what a property
 * inherited from a polluted `Object.prototype` says is read alike by the decision and the
 * serializer); arrays item by item; a Date by its time. Binary payloads (images, documents) are
 * kept by reference — no policy reads them — except the bodies a decision reads (InvokeModel's
 * `body`, CountTokens' `input.invokeModel.body`), which are copied, as a `Uint8Array` whatever
 * binary type they came as. A top-level `body` that is not bytes (a stream, a Blob) is kept as it is.
 *
 * @throws whatever a getter of the caller's object throws, or a `RangeError` past {@link MAX_INPUT_DEPTH}.
 */
export function snapshotInput(input: unknown): Record<string, unknown> {
  if (typeof input !== "object" || input === null || Array.isArray(input) || isBinary(input)) return {};
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(input)) {
    const value = (input as Record<string, unknown>)[key];
    // InvokeModel's body may be a stream or a Blob, read only when it is sent: kept as it is (and
    // reported as not inspected). Nowhere else is a stream a Bedrock input: anything else is copied.
    setOwnKey(copy, key, key === "body" ? copyBytes(value) : copyValue(value, 1));
  }
  const invokeModel = (copy["input"] as Record<string, unknown> | undefined)?.["invokeModel"] as Record<string, unknown> | undefined;
  if (typeof invokeModel === "object" && invokeModel !== null && Object.hasOwn(invokeModel, "body")) invokeModel["body"] = copyBytes(invokeModel["body"]);
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
  // Most objects are plain: no need to ask whether they are bytes or a date.
  if (Object.getPrototypeOf(value) !== Object.prototype) {
    if (isBinary(value)) return value;
    if (types.isDate(value)) return new Date((value as Date).getTime());
  }
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const item = copyValue((value as Record<string, unknown>)[key], depth + 1);
    // A "__proto__" key stays a plain key and never changes the copy's prototype.
    setOwnKey(copy, key, item);
  }
  return copy;
}

/** Bytes: a view or a buffer, by its internal slots (a proxy or a lying Symbol.toStringTag is not bytes). */
function isBinary(value: object): boolean {
  return ArrayBuffer.isView(value) || types.isAnyArrayBuffer(value);
}

/** A fresh `Uint8Array` of the bytes of any view or buffer; anything else as it is. */
function copyBytes(value: unknown): unknown {
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  if (types.isAnyArrayBuffer(value)) return new Uint8Array(value.slice(0));
  return value;
}
