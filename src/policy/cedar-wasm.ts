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

/**
 * An entry point that reads text or JSON of any depth (policies, schemas). Cedar's parser recurses:
 * text nested deeply enough (measured: ~150 parentheses, ~125 nested sets, ~1,000 chained
 * `if`s, ~4,000 chained `||`) overflows its stack, and the instance is left corrupted (every later
 * call fails too). Whatever such a call throws, the instance is replaced before the error goes on,
 * so one hostile policy file cannot take the engine down. (Evaluation has its own handling: see
 * the engine.)
 */
const restartingOnThrow = <F extends (...args: never[]) => unknown>(fn: F): F =>
  notInlined(((...args: Parameters<F>) => {
    try {
      return fn(...args);
    } catch (error) {
      try {
        reinstantiateWasm();
      } catch {
        // The original failure is what the caller must see; the next call will try again.
      }
      throw error;
    }
  }) as F);

const bind = (module: CedarModule) => ({
  statefulIsAuthorized: notInlined(module.statefulIsAuthorized),
  preparsePolicySet: restartingOnThrow(module.preparsePolicySet),
  policySetTextToParts: restartingOnThrow(module.policySetTextToParts),
  policyToJson: restartingOnThrow(module.policyToJson),
  validate: restartingOnThrow(module.validate),
  checkParseSchema: restartingOnThrow(module.checkParseSchema),
  schemaToJson: restartingOnThrow(module.schemaToJson),
  schemaToJsonWithResolvedTypes: restartingOnThrow(module.schemaToJsonWithResolvedTypes),
  schemaToText: restartingOnThrow(module.schemaToText),
});

/** @internal */
export const wasm = bind(cedar);

let generation = 0;
/** Set when the instance of `generation` trapped and could not be replaced. */
let lost: { readonly generation: number; readonly reason: string } | undefined;

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
  // (A successful reload below starts a new generation: a loss recorded for the old one no longer holds.)
  const require = createRequire(import.meta.url);
  const path = require.resolve("@cedar-policy/cedar-wasm/nodejs");
  delete require.cache[path];
  const fresh = require(path) as CedarModule;
  Object.assign(wasm, bind(fresh));
  generation++;
}

/**
 * @internal Records that the current instance trapped and could not be replaced: every engine in
 * the process shares it, so every engine denies (and replays no memoized decision) until an
 * instance is loaded again.
 */
export function markWasmLost(reason: string): void {
  lost = { generation, reason };
}

/** @internal Why the current wasm instance cannot be used (see {@link markWasmLost}), or undefined. */
export function wasmLost(): string | undefined {
  return lost !== undefined && lost.generation === generation ? lost.reason : undefined;
}
