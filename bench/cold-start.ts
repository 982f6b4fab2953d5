/**
 * One cold start, in a fresh process (spawned by `bench/run.ts`): builds a bare or a governed
 * client and times its first two Converse calls. Prints one line of JSON.
 *
 *   node --import tsx bench/cold-start.ts governed|bare
 * @module
 */
import { BedrockRuntime, ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
import { createGovernance, GovernedBedrockRuntimeClient, runAs } from "../src/index.js";
import { MemoryBedrock } from "./memory-bedrock.js";
import { BENCH_IDENTITY, ENVIRONMENT, generatePolicies, MODEL_ID, REGION } from "./policies.js";

process.removeAllListeners("warning");

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
const credentials = { accessKeyId: "AKIDBENCHMARKEXAMPLE", secretAccessKey: "bench/secret/key/not/real/EXAMPLEKEY" };
const input = {
  modelId: MODEL_ID,
  system: [{ text: "You are the invoice assistant. Answer with the total only." }],
  messages: [{ role: "user" as const, content: [{ text: "What is the total of invoice 4711?" }] }],
  inferenceConfig: { maxTokens: 512, temperature: 0 },
};

let start = performance.now();
const governance = mode === "governed" ? createGovernance({ environment: ENVIRONMENT, policies: generatePolicies(10) }) : undefined;
const governanceMs = performance.now() - start;
start = performance.now();
const client = governance
  ? new GovernedBedrockRuntimeClient({ region: REGION, credentials, requestHandler: new MemoryBedrock(), governance })
  : new BedrockRuntime({ region: REGION, credentials, requestHandler: new MemoryBedrock() });
const clientMs = performance.now() - start;
const call = async () => {
  const begin = performance.now();
  await (governance ? runAs(BENCH_IDENTITY, () => client.send(new ConverseCommand(input))) : client.send(new ConverseCommand(input)));
  return performance.now() - begin;
};
const first = await call();
const second = await call();
const result: ColdStart = { mode, ...(governance && { governance: governanceMs }), client: clientMs, first, second };
console.log(JSON.stringify(result));
