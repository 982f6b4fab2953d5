/**
 * The memory row of the benchmark, in a process of its own: resident memory is the process's, so
 * it is measured where nothing else of the suite (other governances, 10,000-policy sets, garbage of
 * earlier rows) lives. Prints one JSON line: {@link MemoryGrowthResult}.
 *
 *   npx tsx bench/memory-run.ts <warm-up calls> <calls>
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
