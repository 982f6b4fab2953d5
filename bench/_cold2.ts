import { createGovernance, runAs } from "../src/index.js";
import { checkedIdentity } from "../src/identity/workload-identity.js";
import { COMMANDS } from "../src/policy/commands.js";
import { buildCedarRequest } from "../src/policy/request-builder.js";
import { BENCH_IDENTITY, ENVIRONMENT, generatePolicies, MODEL_ID, REGION } from "./policies.js";
const now = () => performance.now();
const input = { modelId: MODEL_ID, messages: [], inferenceConfig: { maxTokens: 512 } };
let t = now(); const g = createGovernance({ environment: ENVIRONMENT, policies: generatePolicies(10) }); console.log("createGovernance", (now() - t).toFixed(1));
t = now(); checkedIdentity(BENCH_IDENTITY); console.log("first checkedIdentity (zod)", (now() - t).toFixed(1));
t = now(); runAs(BENCH_IDENTITY, () => 1); console.log("first runAs after check", (now() - t).toFixed(1));
const spec = COMMANDS["ConverseCommand"]!;
const req = () => buildCedarRequest({ identity: BENCH_IDENTITY, scope: { identity: BENCH_IDENTITY, purpose: undefined, dataSensitivity: [], actionType: "read" }, spec, resource: spec.resource(input), facts: spec.facts(input), environment: ENVIRONMENT, region: REGION });
for (let i = 0; i < 4; i++) { t = now(); const d = g.engine.authorize(req()); console.log(`authorize #${i + 1} (real request)`, (now() - t).toFixed(2), d.effect); }
t = now(); const g2 = createGovernance({ environment: ENVIRONMENT, policies: generatePolicies(10) }); console.log("createGovernance #2", (now() - t).toFixed(1));
t = now(); g2.engine.authorize(req()); console.log("authorize on 2nd engine #1", (now() - t).toFixed(2));
