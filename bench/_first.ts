import { BedrockRuntime, ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
import { createGovernance, GovernedBedrockRuntimeClient, runAs } from "../src/index.js";
import { COMMANDS } from "../src/policy/commands.js";
import { buildCedarRequest } from "../src/policy/request-builder.js";
import { MemoryBedrock } from "./memory-bedrock.js";
import { BENCH_IDENTITY, ENVIRONMENT, generatePolicies, MODEL_ID, REGION } from "./policies.js";
process.removeAllListeners("warning");
const CRED = { accessKeyId: "A", secretAccessKey: "B" };
const input = { modelId: MODEL_ID, messages: [{ role: "user" as const, content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 512 } };
const spec = COMMANDS["ConverseCommand"]!;
const req = () => buildCedarRequest({ identity: BENCH_IDENTITY, scope: { identity: BENCH_IDENTITY, purpose: undefined, dataSensitivity: [], actionType: "read" }, spec, resource: spec.resource(input), facts: spec.facts(input), environment: ENVIRONMENT, region: REGION });
const now = () => performance.now();
const f = (x: number) => x.toFixed(2).padStart(7);
// warm the process
{ const g = createGovernance({ environment: ENVIRONMENT, policies: generatePolicies(10) }); const c = new GovernedBedrockRuntimeClient({ region: REGION, credentials: CRED, requestHandler: new MemoryBedrock(), governance: g });
  for (let i = 0; i < 300; i++) await runAs(BENCH_IDENTITY, () => c.send(new ConverseCommand(input)));
  const b = new BedrockRuntime({ region: REGION, credentials: CRED, requestHandler: new MemoryBedrock() });
  for (let i = 0; i < 300; i++) await b.send(new ConverseCommand(input)); }
const shared = createGovernance({ environment: ENVIRONMENT, policies: generatePolicies(10) });
for (let rep = 0; rep < 6; rep++) {
  let t = now(); const g = createGovernance({ environment: ENVIRONMENT, policies: generatePolicies(10) }); const tg = now() - t;
  t = now(); g.engine.authorize(req()); const a1 = now() - t;
  t = now(); g.engine.authorize(req()); const a2 = now() - t;
  t = now(); const c = new GovernedBedrockRuntimeClient({ region: REGION, credentials: CRED, requestHandler: new MemoryBedrock(), governance: g }); const tc = now() - t;
  t = now(); await runAs(BENCH_IDENTITY, () => c.send(new ConverseCommand(input))); const c1 = now() - t;
  t = now(); await runAs(BENCH_IDENTITY, () => c.send(new ConverseCommand(input))); const c2 = now() - t;
  t = now(); await runAs(BENCH_IDENTITY, () => c.send(new ConverseCommand(input))); const c3 = now() - t;
  // new client, existing (already used) governance
  const c4 = new GovernedBedrockRuntimeClient({ region: REGION, credentials: CRED, requestHandler: new MemoryBedrock(), governance: shared });
  t = now(); await runAs(BENCH_IDENTITY, () => c4.send(new ConverseCommand(input))); const s1 = now() - t;
  t = now(); await runAs(BENCH_IDENTITY, () => c4.send(new ConverseCommand(input))); const s2 = now() - t;
  const b = new BedrockRuntime({ region: REGION, credentials: CRED, requestHandler: new MemoryBedrock() });
  t = now(); await b.send(new ConverseCommand(input)); const b1 = now() - t;
  t = now(); await b.send(new ConverseCommand(input)); const b2 = now() - t;
  console.log(`createGov ${f(tg)} | fresh engine authorize #1 ${f(a1)} #2 ${f(a2)} | new client ${f(tc)} | new gov+client call#1 ${f(c1)} #2 ${f(c2)} #3 ${f(c3)} | old gov,new client #1 ${f(s1)} #2 ${f(s2)} | bare new #1 ${f(b1)} #2 ${f(b2)}`);
}
