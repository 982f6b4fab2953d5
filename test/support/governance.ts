import { BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime";
import type { DecisionRecord } from "../../src/index.js";
import { createGovernance, GovernedBedrockRuntimeClient, type Governance, type WorkloadIdentity } from "../../src/index.js";
import { MemoryHandler } from "./memory-handler.js";
import { tracerProvider } from "./tracing.js";

// The SDK warns once per process that Node 20 support ends in 2027; tests are not the place for it.
process.removeAllListeners("warning");
process.on("warning", (warning) => {
  // The SDK emits it as a plain "Warning" whose message names it.
  if (warning.name !== "NodeVersionSupportWarning" && !warning.message.startsWith("NodeVersionSupportWarning")) console.warn(warning);
});

export const HAIKU = "anthropic.claude-3-haiku-20240307-v1:0";
export const TITAN = "amazon.titan-text-express-v1";
export const CREDENTIALS = { accessKeyId: "AKIDTESTWARDEN", secretAccessKey: "test-secret-key" };

export const invoiceAgent: WorkloadIdentity = { id: "spiffe://acme.test/agents/invoice", groups: ["billing"], environment: "test" };
export const researchAgent: WorkloadIdentity = { id: "spiffe://acme.test/agents/research", groups: ["research"], environment: "test" };
export const stranger: WorkloadIdentity = { id: "spiffe://acme.test/agents/stranger" };

/** Billing may use Anthropic models through any invocation command; research may use everything but never with PHI. */
export const BASE_POLICIES = `
@id("billing-anthropic")
@reason("billing agents may invoke Anthropic models")
permit (principal in Bedrock::Group::"billing", action in Bedrock::Action::"ModelInvocation", resource in Bedrock::Provider::"anthropic");

@id("research-all")
@reason("research agents may use every runtime command")
permit (principal in Bedrock::Group::"research", action, resource);

@id("no-phi-for-research")
@reason("research agents never see PHI")
forbid (principal in Bedrock::Group::"research", action, resource) when { context.dataSensitivity.contains("phi") };
`;

export interface Harness {
  governance: Governance;
  records: DecisionRecord[];
  handler: MemoryHandler;
  client: GovernedBedrockRuntimeClient;
}

/** A governed client over an in-memory handler, with its records collected. */
/** `evaluator`: "wasm" for tests of cedar-wasm's own path (its faults, its calls counted). */
export function harness(policies = BASE_POLICIES, handler = new MemoryHandler(), identity?: WorkloadIdentity, evaluator?: "javascript" | "wasm"): Harness {
  const records: DecisionRecord[] = [];
  const governance = createGovernance({ environment: "test", policies, tracerProvider, onDecision: (r) => records.push(r), ...(evaluator && { evaluator }) });
  const client = new GovernedBedrockRuntimeClient({
    region: "us-east-1",
    credentials: CREDENTIALS,
    requestHandler: handler,
    governance,
    maxAttempts: 1,
    ...(identity && { identity }),
  });
  return { governance, records, handler, client };
}

export function bareClient(handler: MemoryHandler): BedrockRuntimeClient {
  return new BedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: handler, maxAttempts: 1 });
}

export function converseInput(modelId = HAIKU, extra: Record<string, unknown> = {}) {
  return { modelId, messages: [{ role: "user" as const, content: [{ text: "Reconcile invoice 4711" }] }], ...extra };
}

export function bodyJson(request: { body?: unknown }): Record<string, unknown> {
  const body = request.body;
  const text = typeof body === "string" ? body : new TextDecoder().decode(body as Uint8Array);
  return JSON.parse(text) as Record<string, unknown>;
}
