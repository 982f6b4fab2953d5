/** A governed client over an in-memory handler for InvokeModel tool-call tests: bodies of each provider, chunk streams, and readers of the output. */
import { InvokeModelCommand, InvokeModelWithResponseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { createGovernance, GovernedBedrockRuntimeClient, runAs, toolDecisions, type DecisionRecord, type ToolDefinition } from "../../src/index.js";
import { eventStreamResponse, frame } from "./event-stream.js";
import { CREDENTIALS } from "./governance.js";
import { jsonResponse, MemoryHandler } from "./memory-handler.js";
import { exporter, tracerProvider } from "./tracing.js";
export { exporter };

export const HAIKU = "anthropic.claude-3-haiku-20240307-v1:0";
export const NOVA = "amazon.nova-pro-v1:0";
export const MISTRAL = "mistral.mistral-large-2407-v1:0";
export const COHERE = "cohere.command-r-plus-v1:0";
export const GPTOSS = "openai.gpt-oss-120b-1:0";

export const TOOLS: ToolDefinition[] = [
  { name: "lookup_invoice", effect: "read", inputSchema: { type: "object", properties: { invoiceId: { type: "string" } }, required: ["invoiceId"] } },
  { name: "issue_refund", effect: "mutate", inputSchema: { type: "object", properties: { invoiceId: { type: "string" }, amount: { type: "integer" } }, required: ["invoiceId", "amount"] } },
];
const POLICIES = `
permit (principal in Bedrock::Group::"billing", action in Bedrock::Action::"ModelInvocation", resource);
permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"tool:lookup_invoice", resource);
@id("small-refunds")
permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"tool:issue_refund", resource)
when { context.phase == "offer" || (context has input && context.input.amount <= 100) };
`;
/** The workload every call is made as: a billing agent. */
export const agent = { id: "spiffe://acme.test/agents/billing", groups: ["billing"] };

/** An Anthropic Messages body offering the given tools. */
export function anthropicBody(...names: string[]): string {
  return JSON.stringify({
    anthropic_version: "bedrock-2023-05-31",
    max_tokens: 256,
    messages: [{ role: "user", content: "refund INV-1" }],
    tools: names.map((name) => ({ name, input_schema: TOOLS.find((t) => t.name === name)!.inputSchema })),
  });
}
/** A chat-completions body (Mistral, OpenAI) offering the given tools. */
export const chatBody = (...names: string[]) =>
  JSON.stringify({ messages: [{ role: "user", content: "go" }], tools: names.map((name) => ({ type: "function", function: { name, parameters: TOOLS.find((t) => t.name === name)!.inputSchema } })) });
/** A Cohere Command R body offering the given tools. */
export const cohereBody = (...names: string[]) =>
  JSON.stringify({ message: "go", tools: names.map((name) => ({ name, description: "x", parameter_definitions: {} })) });

/** A governance (TOOLS, small refunds allowed) and a client whose every answer is `respond()`'s. */
export function setup(toolEnforcement: "throw" | "result", respond: () => unknown, extra: Record<string, unknown> = {}) {
  const records: DecisionRecord[] = [];
  const governance = createGovernance({ environment: "test", policies: POLICIES, tools: TOOLS, tracerProvider, toolEnforcement, onDecision: (r: DecisionRecord) => records.push(r), ...extra } as never);
  const handler = new MemoryHandler(() => respond() as never);
  const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: handler, governance, maxAttempts: 1 });
  return { governance, records, client };
}

/** An InvokeModelWithResponseStream reply: each event a `chunk` frame carrying its JSON (or the text given) as bytes. */
export function chunkStream(events: readonly unknown[]) {
  return eventStreamResponse(events.map((event) => frame("chunk", { bytes: Buffer.from(typeof event === "string" ? event : JSON.stringify(event)).toString("base64") }))).response;
}
/** A reply whose chunks carry the bytes given, as they are. */
export function rawChunkStream(events: readonly Uint8Array[]) {
  return eventStreamResponse(events.map((bytes) => frame("chunk", { bytes: Buffer.from(bytes).toString("base64") }))).response;
}
export { jsonResponse };

/** One InvokeModel call as the agent: its output and tool decisions. */
export async function invoke(client: GovernedBedrockRuntimeClient, modelId: string, body: string) {
  return runAs(agent, async () => {
    const output = await client.send(new InvokeModelCommand({ modelId, body }));
    return { output, decisions: toolDecisions(output) };
  });
}
/** One InvokeModelWithResponseStream call as the agent, read to its end: the chunks delivered (parsed), the error if it failed, the tool decisions. */
export async function invokeStream(client: GovernedBedrockRuntimeClient, modelId: string, body: string) {
  return runAs(agent, async () => {
    const output = await client.send(new InvokeModelWithResponseStreamCommand({ modelId, body }));
    const chunks: unknown[] = [];
    let error: unknown;
    try {
      for await (const event of output.body!) chunks.push(JSON.parse(new TextDecoder().decode(event.chunk!.bytes!)));
    } catch (e) {
      error = e;
    }
    return { output, chunks, error, decisions: toolDecisions(output) };
  });
}
