/**
 * The memory row of the benchmark, in a process of its own: resident memory is the process's, so
 * it is measured where nothing else of the suite (other governances, 10,000-policy sets, garbage of
 * earlier rows) lives. Prints one JSON line: {@link MemoryGrowthResult}.
 *
 * `bench/run.ts` bundles it to `bench/.memory-run.mjs` and runs that with plain `node --expose-gc`:
 * not under tsx, whose loader thread (a V8 heap of its own, ~60 MB) shrinks by ~45 MB at a moment
 * of its own choosing. By hand:
 *
 *   npx esbuild bench/memory-run.ts --bundle --platform=node --format=esm --packages=external --outfile=bench/.memory-run.mjs
 *   node --expose-gc bench/.memory-run.mjs <warm-up calls> <calls>
 * @module
 */
import { library } from "./library.js";
import { isolateFromAwsConfig, silenceNodeVersionWarning } from "./memory-bedrock.js";
import { ENVIRONMENT, generatePolicies } from "./policies.js";
import { memoryGrowth } from "./scale.js";

silenceNodeVersionWarning();
isolateFromAwsConfig();
const { createGovernance } = library;
const [warmUpCalls, calls] = process.argv.slice(2, 4).map(Number) as [number, number];
const governance = createGovernance({ environment: ENVIRONMENT, policies: generatePolicies(10) });
const result = await memoryGrowth({ governance, warmUpCalls, calls, sampleEvery: Math.max(1, Math.floor(calls / 10)) });
console.log(JSON.stringify(result));
