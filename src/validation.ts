import type { z } from "zod";

/**
 * Turns a zod error into one sentence per issue that names the option path and what is wrong,
 * e.g. `governance.environment: must be a non-empty string`.
 */
export function describeZodError(error: z.ZodError, prefix = ""): string {
  return error.issues
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join(".");
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join("; ");
}
