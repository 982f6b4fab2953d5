/**
 * The one door to cedar-wasm. Every wasm call in the library goes through this object, so that
 * tests can inject engine faults (a trap, a thrown error) at the exact boundary where real ones
 * happen, with the rest of the pipeline untouched.
 * @module
 */
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";

export type * from "@cedar-policy/cedar-wasm/nodejs";

/** @internal */
export const wasm = {
  statefulIsAuthorized: cedar.statefulIsAuthorized,
  preparsePolicySet: cedar.preparsePolicySet,
  policySetTextToParts: cedar.policySetTextToParts,
  policyToJson: cedar.policyToJson,
  validate: cedar.validate,
  checkParseSchema: cedar.checkParseSchema,
  schemaToJson: cedar.schemaToJson,
};
