/**
 * The one door to cedar-wasm. Every wasm call in the library goes through this object, so that
 * tests can inject engine faults (a trap, a thrown error) at the exact boundary where real ones
 * happen, with the rest of the pipeline untouched.
 * @module
 */
import { createRequire } from "node:module";
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

type CedarModule = typeof cedar;

const bind = (module: CedarModule) => ({
  statefulIsAuthorized: notInlined(module.statefulIsAuthorized),
  preparsePolicySet: notInlined(module.preparsePolicySet),
  policySetTextToParts: notInlined(module.policySetTextToParts),
  policyToJson: notInlined(module.policyToJson),
  validate: notInlined(module.validate),
  checkParseSchema: notInlined(module.checkParseSchema),
  schemaToJson: notInlined(module.schemaToJson),
  schemaToText: notInlined(module.schemaToText),
});

/** @internal */
export const wasm = bind(cedar);

let generation = 0;

/**
 * @internal How many times the wasm instance was replaced: an engine whose sets were preparsed in an
 * earlier generation preparses them again before its next evaluation.
 */
export function wasmGeneration(): number {
  return generation;
}

/**
 * @internal Replaces a wasm instance that trapped ("memory access out of bounds", "unreachable"):
 * its memory, and every set preparsed in it, can no longer be trusted. The module is loaded again
 * (a fresh instance; the compiled code is re-created from the same bytes) and every entry point of
 * {@link wasm} rebound to it. Throws when the module cannot be loaded again.
 */
export function reinstantiateWasm(): void {
  const require = createRequire(import.meta.url);
  const path = require.resolve("@cedar-policy/cedar-wasm/nodejs");
  delete require.cache[path];
  const fresh = require(path) as CedarModule;
  Object.assign(wasm, bind(fresh));
  generation++;
}
