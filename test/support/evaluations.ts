/**
 * Counting the evaluations a test causes: those that cross into cedar-wasm (counted at its entry
 * point, which each such test file restores after every test) and those an engine's JavaScript
 * evaluator makes. Together they are the memo's misses.
 */
import { wasm } from "../../src/policy/cedar-wasm.js";
import type { CedarEngine } from "../../src/policy/cedar-engine.js";

/** Evaluations since the count started, or since its last `reset()`. */
export interface EvaluationCount {
  /** In cedar-wasm, by every engine of the process. */
  readonly inWasm: number;
  /** By the engine given, in JavaScript (0 without one). */
  readonly inJavaScript: number;
  /** Both: every evaluation, wherever it ran. */
  readonly all: number;
  /** Counts from zero again. */
  reset(): void;
}

/**
 * Starts counting: wraps cedar-wasm's `statefulIsAuthorized` as it is now (another spy stays in
 * the chain). Start it after an engine is built, or `reset()` it then, not to count the engine's
 * warm-up.
 */
export function countEvaluations(engine?: CedarEngine): EvaluationCount {
  let inWasm = 0;
  let javaScriptBefore = engine?.evaluationsInJavaScript ?? 0;
  const evaluate = wasm.statefulIsAuthorized;
  wasm.statefulIsAuthorized = (call) => {
    inWasm++;
    return evaluate(call);
  };
  return {
    get inWasm() {
      return inWasm;
    },
    get inJavaScript() {
      return (engine?.evaluationsInJavaScript ?? 0) - javaScriptBefore;
    },
    get all() {
      return this.inWasm + this.inJavaScript;
    },
    reset() {
      inWasm = 0;
      javaScriptBefore = engine?.evaluationsInJavaScript ?? 0;
    },
  };
}
