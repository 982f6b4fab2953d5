/**
 * The one door to cedar-wasm. Every wasm call in the library goes through this object, so that
 * tests can inject engine faults (a trap, a thrown error) at the exact boundary where real ones
 * happen, with the rest of the pipeline untouched.
 * @module
 */
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";

export type * from "@cedar-policy/cedar-wasm/nodejs";

/**
 * Node 20's V8 inlines the JS-to-Wasm call of cedar-wasm's tiny glue into whatever optimized
 * function calls it; when that caller is then lazily deoptimized during the Wasm call, the process
 * dies ("Fatal error ... unreachable code" in Deoptimizer::DoComputeBuiltinContinuation: measured
 * here, every long benchmark run; gone with --no-turbo-inline-js-wasm-calls). TurboFan never
 * inlines through a Proxy, so every entry point is called through one: the glue's own optimized
 * code keeps the Wasm call, and it has nothing that could deoptimize it mid-call.
 */
const notInlined = <F extends (...args: never[]) => unknown>(fn: F): F => new Proxy(fn, {});

/** @internal */
export const wasm = {
  statefulIsAuthorized: notInlined(cedar.statefulIsAuthorized),
  preparsePolicySet: notInlined(cedar.preparsePolicySet),
  policySetTextToParts: notInlined(cedar.policySetTextToParts),
  policyToJson: notInlined(cedar.policyToJson),
  validate: notInlined(cedar.validate),
  checkParseSchema: notInlined(cedar.checkParseSchema),
  schemaToJson: notInlined(cedar.schemaToJson),
  schemaToText: notInlined(cedar.schemaToText),
};
