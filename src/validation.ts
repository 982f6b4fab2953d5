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
