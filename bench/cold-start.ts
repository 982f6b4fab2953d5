/**
 * One cold start, in a fresh process (spawned by `bench/run.ts`): builds a bare or a governed
 * client and times its first two Converse calls. Prints one line of JSON.
 *
 *   node --import tsx bench/cold-start.ts governed|bare [settle-ms]
 *
 * `settle-ms` waits that long between construction and the first call (a diagnostic: it shows
 * how much of a cold first call is the process still busy after start-up, rather than the call).
 * @module
 */
import { BedrockRuntime, ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
import { library } from "./library.js";
import { CREDENTIALS, isolateFromAwsConfig, MemoryBedrock, silenceNodeVersionWarning } from "./memory-bedrock.js";
import { BENCH_IDENTITY, CONVERSE_INPUT, ENVIRONMENT, generatePolicies, REGION } from "./policies.js";

silenceNodeVersionWarning();
isolateFromAwsConfig();
const { createGovernance, GovernedBedrockRuntimeClient, runAs } = library;

/** What one cold start measured, in milliseconds. */
export interface ColdStart {
  readonly mode: "governed" | "bare";
  /** createGovernance (governed only). */
  readonly governance?: number;
  readonly client: number;
  readonly first: number;
  readonly second: number;
}

const mode = process.argv[2] === "bare" ? "bare" : "governed";
const credentials = CREDENTIALS;

let start = performance.now();
const governance = mode === "governed" ? createGovernance({ environment: ENVIRONMENT, policies: generatePolicies(10) }) : undefined;
const governanceMs = performance.now() - start;
start = performance.now();
const client = governance
  ? new GovernedBedrockRuntimeClient({ region: REGION, credentials, requestHandler: new MemoryBedrock(), governance })
  : new BedrockRuntime({ region: REGION, credentials, requestHandler: new MemoryBedrock() });
const clientMs = performance.now() - start;
const settle = Number(process.argv[3] ?? 0);
if (settle > 0) await new Promise((resolve) => setTimeout(resolve, settle));
const call = async () => {
  const begin = performance.now();
  await (governance ? runAs(BENCH_IDENTITY, () => client.send(new ConverseCommand(CONVERSE_INPUT))) : client.send(new ConverseCommand(CONVERSE_INPUT)));
  return performance.now() - begin;
};
const first = await call();
const second = await call();
const result: ColdStart = { mode, ...(governance && { governance: governanceMs }), client: clientMs, first, second };
console.log(JSON.stringify(result));
