import type { z } from "zod";

/**
 * Turns a zod error into one sentence per issue that names the option path and what is wrong,
 * e.g. `governance.environment: must not be empty`. An unknown key is named with the keys that
 * are allowed there (read from the object schema), so the message says what to write instead.
 */
export function describeZodError(error: z.ZodError, prefix = "", schema?: z.ZodType): string {
  return error.issues
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join(".");
      let message = issue.message;
      if (issue.code === "unrecognized_keys") {
        const allowed = allowedKeys(schema, issue.path);
        if (allowed) message += ` (allowed: ${allowed.join(", ")})`;
      }
      return path ? `${path}: ${message}` : message;
    })
    .join("; ");
}

function allowedKeys(schema: z.ZodType | undefined, path: readonly PropertyKey[]): string[] | undefined {
  let current: unknown = schema;
  for (const step of path) current = (current as { shape?: Record<PropertyKey, unknown> } | undefined)?.shape?.[step];
  const shape = (current as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape ? Object.keys(shape) : undefined;
}

/**
 * A shallow copy of an options object made only of its own enumerable properties, with no
 * prototype: reading an option the caller did not set gives `undefined`, never a value inherited
 * from a prototype — an `Object.prototype.enforcement = "shadow"` planted anywhere in the process
 * must not switch enforcement off. Anything that is not an object is returned as it is (for the
 * schema to refuse); nested values are kept as they are (stores, sinks and providers are objects
 * with behaviour, not data to copy).
 */
export function ownProperties<T>(value: T): T {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  const copy = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(value)) {
    const option = (value as Record<string, unknown>)[key];
    // A list with an empty slot: reading the slot reads Array.prototype, where a polluted index
    // (`Array.prototype[1] = "admins"`) would become a group or a label. Its empty slots are read
    // as undefined instead, which the schema refuses, naming the index.
    copy[key] = Array.isArray(option) && hasEmptySlot(option) ? Array.from(option.keys(), (i) => (Object.hasOwn(option, i) ? option[i] : undefined)) : option;
  }
  return copy as T;
}

function hasEmptySlot(list: readonly unknown[]): boolean {
  for (let i = 0; i < list.length; i++) if (!Object.hasOwn(list, i)) return true;
  return false;
}

/**
 * `schema.safeParse` over the value's own properties ({@link ownProperties}), with the parsed data
 * without a prototype too: an optional field left out reads as undefined, never as a value
 * planted on `Object.prototype`.
 */
export function parseOwnProperties<T>(
  schema: { safeParse(value: unknown): { success: true; data: T } | { success: false; error: z.ZodError } },
  value: unknown,
): { success: true; data: T } | { success: false; error: z.ZodError } {
  const parsed = schema.safeParse(ownProperties(value));
  return parsed.success ? { success: true, data: ownProperties(parsed.data) } : parsed;
}

/** `object[key]` when it is the object's own property, else undefined (never an inherited value). */
export function ownValue<T extends object, K extends keyof T>(object: T | undefined, key: K): T[K] | undefined {
  return object !== undefined && object !== null && Object.hasOwn(object, key) ? object[key] : undefined;
}

/**
 * `target[key] = value`, always as an own data property of `target` (a plain object): a key that
 * `Object.prototype` has — `"__proto__"`, or a setter planted there — is defined rather than
 * assigned, so it can neither change the target's prototype nor be swallowed by the setter.
 */
export function setOwnKey(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key in Object.prototype) Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/**
 * C0 and C1 control characters and the line and paragraph separators: refused in identities,
 * labels and names, where they would corrupt logs and invocation-log attribution.
 *
 * @example
 * ```ts
 * if (CONTROL_CHARACTERS.test(label)) throw new Error("must not contain control characters");
 * ```
 */
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * A non-empty string of at most `max` UTF-16 units, with no {@link CONTROL_CHARACTERS} and no lone
 * surrogate: what identities, subjects and labels must be.
 *
 * @example
 * ```ts
 * isCleanText("spiffe://acme.example/agents/invoice", 512); // true
 * ```
 */
export function isCleanText(value: unknown, max: number): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= max && !CONTROL_CHARACTERS.test(value) && value.isWellFormed();
}
