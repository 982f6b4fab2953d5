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
 * A deep copy of the plain objects and arrays of `input`, each property read exactly once.
 * Binary payloads (`Uint8Array`, e.g. images and documents) are kept by reference — no policy reads
 * their bytes — except a top-level `body` (InvokeModel*), which is parsed for the decision and so is
 * copied. Anything else that is not a plain object or array (a stream, a Date) is kept as is.
 *
 * @throws whatever a getter of the caller's object throws, or a `RangeError` past {@link MAX_INPUT_DEPTH}.
 */
export function snapshotInput(input: unknown): Record<string, unknown> {
  if (typeof input !== "object" || input === null) return {};
  const copy = copyValue(input, 0) as Record<string, unknown>;
  const body = copy["body"];
  if (body instanceof Uint8Array) copy["body"] = new Uint8Array(body);
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
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const item = copyValue((value as Record<string, unknown>)[key], depth + 1);
    // A "__proto__" key stays a plain key and never changes the copy's prototype.
    setOwnKey(copy, key, item);
  }
  return copy;
}
