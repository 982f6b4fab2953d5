/**
 * The shipped Cedar schema (`schema/bedrock-warden.cedarschema`), which every policy is
 * validated against.
 * @module
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The schema's file name inside the package. */
export const SCHEMA_FILE = "schema/bedrock-warden.cedarschema";

let cached: string | undefined;

/**
 * The text of the shipped schema, for tools (editors, `cedar validate`) and tests.
 *
 * @example
 * ```ts
 * import { writeFileSync } from "node:fs";
 * writeFileSync("bedrock.cedarschema", shippedSchema());
 * ```
 */
export function shippedSchema(): string {
  cached ??= readShippedSchema();
  return cached;
}

function readShippedSchema(): string {
  // Built code lives in dist/ (bundled), source in src/policy/: the schema sits at the package root
  // in both cases, one or two levels up.
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, "..", SCHEMA_FILE), join(here, "..", "..", SCHEMA_FILE)];
  for (const candidate of candidates) {
    try {
      return readFileSync(candidate, "utf8");
    } catch {
      // try the next level
    }
  }
  throw new Error(`bedrock-warden: ${SCHEMA_FILE} is missing from the installed package (looked in ${candidates.join(", ")})`);
}
