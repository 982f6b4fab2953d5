/**
 * Reading values that arrive as untrusted JSON (request bodies, model output, documents): a JSON
 * object is an object that is neither `null` nor an array.
 * @module
 */

/**
 * Whether the value is a JSON object.
 *
 * @example
 * ```ts
 * isRecord({ a: 1 }); // true
 * isRecord([1]); // false
 * ```
 */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The value as a JSON object, or undefined when it is not one.
 *
 * @example
 * ```ts
 * asRecord(JSON.parse(body))?.["modelId"];
 * ```
 */
export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return isRecord(value) ? value : undefined;
}
