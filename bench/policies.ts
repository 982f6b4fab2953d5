/**
 * Generated policy sets for the benchmark, shaped like a real deployment's: a few organization-wide
 * rules (who may use which provider, PHI needs clearance, Opus is for research, a token cap, no
 * mutation in production), then per-workload and per-team permits and forbids over models,
 * providers, inference profiles and context conditions (environment, region, maxTokens,
 * dataSensitivity, purpose, streaming) and workload tags.
 *
 * The benchmark's identity is allowed (by `bench-agents-anthropic`) and forbidden by nothing, so a
 * governed call runs its whole path; {@link BLOCKED_IDENTITY} is permitted by the same rule and
 * then forbidden by `blocked-workload`, so its denial is a full Cedar evaluation too.
 * @module
 */
import type { ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime";
import type { ToolDefinition, WorkloadIdentity } from "../src/index.js";

export const ENVIRONMENT = "production";
export const REGION = "us-east-1";
/** A system inference profile (how Claude models are called on demand): a member of its base model and of `anthropic`. */
export const MODEL_ID = "us.anthropic.claude-3-5-haiku-20241022-v1:0";

/** The call every benchmark makes (Converse and ConverseStream alike): allowed for {@link BENCH_IDENTITY}. */
export const CONVERSE_INPUT: ConverseCommandInput = {
  modelId: MODEL_ID,
  system: [{ text: "You are the invoice assistant. Answer with the total only." }],
  messages: [{ role: "user", content: [{ text: "What is the total of invoice 4711?" }] }],
  inferenceConfig: { maxTokens: 512, temperature: 0 },
};

/** The workload every allowed benchmark call acts as. */
export const BENCH_IDENTITY: WorkloadIdentity = Object.freeze({
  id: "spiffe://acme.example/agents/bench",
  groups: Object.freeze(["bench-agents", "team-3"]),
  environment: "production",
  owner: "team-bench",
  attributes: Object.freeze({ team: "team-3", tier: "internal" }),
});

/** A workload the policies permit like the bench one, then forbid by id. */
export const BLOCKED_IDENTITY: WorkloadIdentity = Object.freeze({
  id: "spiffe://acme.example/agents/blocked",
  groups: Object.freeze(["bench-agents"]),
  environment: "production",
  owner: "team-bench",
  attributes: Object.freeze({ team: "team-3", tier: "internal" }),
});

const CORE: readonly string[] = [
  `@id("bench-agents-anthropic")
@reason("bench agents may use Anthropic models in production within 4,096 output tokens")
permit (principal in Bedrock::Group::"bench-agents", action in Bedrock::Action::"ModelInvocation", resource in Bedrock::Provider::"anthropic")
when { context.environment == "production" && context has maxTokens && context.maxTokens <= 4096 };`,
  `@id("phi-needs-clearance")
@reason("PHI may only be sent by cleared workloads")
forbid (principal, action in Bedrock::Action::"ModelInvocation", resource)
when { context.dataSensitivity.contains("phi") }
unless { principal in Bedrock::Group::"phi-cleared" };`,
  `@id("opus-research-only")
@reason("Opus is reserved for the research group")
forbid (principal, action, resource in Bedrock::Model::"anthropic.claude-3-opus-20240229-v1:0")
unless { principal in Bedrock::Group::"research" };`,
  `@id("blocked-workload")
@reason("this workload is suspended")
forbid (principal == Bedrock::Workload::"spiffe://acme.example/agents/blocked", action, resource);`,
  `@id("max-tokens-cap")
@reason("no call may ask for more than 8,192 output tokens")
forbid (principal, action in Bedrock::Action::"ModelInvocation", resource)
when { context has maxTokens && context.maxTokens > 8192 };`,
  `@id("no-bulk-export")
@reason("no model call may serve a bulk export of customer data")
forbid (principal, action in Bedrock::Action::"ModelInvocation", resource)
when { context has purpose && context.purpose like "*bulk-export*" };`,
  `@id("no-mutation-in-production")
@reason("only batch jobs may start asynchronous invocations in production")
forbid (principal, action, resource)
when { context.actionType == "mutate" && context.environment == "production" }
unless { principal in Bedrock::Group::"batch-jobs" };`,
];

const MODELS = [
  "anthropic.claude-3-5-haiku-20241022-v1:0",
  "anthropic.claude-3-5-sonnet-20241022-v2:0",
  "amazon.nova-pro-v1:0",
  "amazon.nova-lite-v1:0",
  "meta.llama3-1-70b-instruct-v1:0",
  "mistral.mistral-large-2407-v1:0",
  "cohere.command-r-plus-v1:0",
];
const PROVIDERS = ["anthropic", "amazon", "meta", "mistral", "cohere"];
const ENVIRONMENTS = ["production", "staging", "development"];
const REGIONS = ["us-east-1", "us-west-2", "eu-central-1"];
const LABELS = ["pii", "phi", "financial", "secret"];
const GEOS = ["us", "eu", "apac"];

const pick = <T>(list: readonly T[], k: number): T => list[k % list.length] as T;

/** The k-th generated policy (after the core ones): eight shapes in turn, each about workload or team k. */
function generated(k: number): string {
  const agent = `Bedrock::Workload::"spiffe://acme.example/agents/agent-${k}"`;
  const team = `Bedrock::Group::"team-${k}"`;
  switch (k % 8) {
    case 0:
      return `@id("agent-${k}-converse")
permit (principal == ${agent}, action == Bedrock::Action::"Converse", resource in Bedrock::Model::"${pick(MODELS, k)}")
when { context.environment == "${pick(ENVIRONMENTS, k)}" && context has maxTokens && context.maxTokens <= ${256 * (1 + (k % 16))} };`;
    case 1:
      return `@id("team-${k}-provider")
permit (principal in ${team}, action in Bedrock::Action::"ModelInvocation", resource in Bedrock::Provider::"${pick(PROVIDERS, k)}")
when { context.region == "${pick(REGIONS, k)}" };`;
    case 2:
      return `@id("team-${k}-no-${pick(LABELS, k)}")
forbid (principal in ${team}, action in Bedrock::Action::"ModelInvocation", resource)
when { context.environment == "production" && context.dataSensitivity.contains("${pick(LABELS, k)}") };`;
    case 3:
      return `@id("agent-${k}-stream-profiles")
permit (principal == ${agent}, action == Bedrock::Action::"ConverseStream", resource)
when { resource.kind == "inference-profile" && resource has geo && resource.geo == "${pick(GEOS, k)}" && context.streaming };`;
    case 4:
      return `@id("tag-team-${k}-model")
permit (principal, action in Bedrock::Action::"ModelInvocation", resource == Bedrock::Model::"${pick(MODELS, k)}")
when { principal.hasTag("team") && principal.getTag("team") == "team-${k}" && context has purpose };`;
    case 5:
      return `@id("agent-${k}-no-meta")
forbid (principal == ${agent}, action in Bedrock::Action::"ModelInvocation", resource in Bedrock::Provider::"meta")
unless { context.environment == "staging" };`;
    case 6:
      return `@id("team-${k}-count-tokens")
permit (principal in ${team}, action == Bedrock::Action::"CountTokens", resource)
when { principal has owner && principal.owner == "owner-${k}" };`;
    default:
      return `@id("team-${k}-guardrails")
permit (principal in ${team}, action == Bedrock::Action::"ApplyGuardrail", resource)
when { context.dataSensitivity.containsAny(["pii", "financial"]) };`;
  }
}

/** A policy set of exactly `count` policies (at least the core ones), as one Cedar text. */
export function generatePolicies(count: number, core: readonly string[] = CORE): string {
  const policies = core.slice(0, Math.min(count, core.length));
  for (let k = 0; policies.length < count; k++) policies.push(generated(k));
  return policies.join("\n\n") + "\n";
}

// ---- tools ------------------------------------------------------------------------------------

/** A workload of the billing team: it may be offered and may call the refund tool. */
export const TOOL_IDENTITY: WorkloadIdentity = Object.freeze({
  id: "spiffe://acme.example/agents/billing-bench",
  groups: Object.freeze(["bench-agents", "billing-agents", "team-3"]),
  environment: "production",
  owner: "team-billing",
  attributes: Object.freeze({ team: "team-3", tier: "internal" }),
});

const REFUND_LINE_SCHEMA = {
  type: "object",
  properties: { sku: { type: "string" }, description: { type: "string" }, quantity: { type: "integer" }, unitPrice: { type: "number" } },
  required: ["sku", "description", "quantity", "unitPrice"],
};

/** The tools the benchmark declares: a read tool and a mutating one whose input policies read. */
export const TOOLS: readonly ToolDefinition[] = [
  {
    name: "lookup_invoice",
    effect: "read",
    sensitivity: "financial",
    owner: "team-billing",
    inputSchema: { type: "object", properties: { invoiceId: { type: "string" } }, required: ["invoiceId"] },
  },
  {
    name: "issue_refund",
    effect: "mutate",
    sensitivity: "financial",
    owner: "team-billing",
    inputSchema: {
      type: "object",
      properties: {
        invoiceId: { type: "string" },
        amount: { type: "number" },
        currency: { type: "string" },
        reason: { type: "string" },
        lines: { type: "array", items: REFUND_LINE_SCHEMA },
      },
      required: ["invoiceId", "amount"],
    },
  },
];

/** `toolConfig` offering both tools, as an application passes it (the JSON schemas the model sees). */
export const TOOL_CONFIG = {
  tools: TOOLS.map((tool) => ({ toolSpec: { name: tool.name, description: `The ${tool.name} tool.`, inputSchema: { json: tool.inputSchema } } })),
} as unknown as NonNullable<ConverseCommandInput["toolConfig"]>;

/** The ConverseStream call of the tool benchmark: both tools offered. */
export const TOOL_CONVERSE_INPUT: ConverseCommandInput = {
  ...CONVERSE_INPUT,
  system: [{ text: "You are the billing assistant. Use the tools to look up invoices and issue refunds." }],
  messages: [{ role: "user", content: [{ text: "Refund the damaged lines of invoice 4711, please." }] }],
  toolConfig: TOOL_CONFIG,
};

/** A refund of `lines` invoice lines (amount 342.5: allowed by `refunds-up-to-500`). */
export function refundInput(lines: number, invoiceId = "INV-2024-004711", amount = 342.5): Record<string, unknown> {
  return {
    invoiceId,
    amount,
    currency: "EUR",
    reason: "Customer reports that the listed items arrived damaged; photos attached to ticket CS-88123. Refund the affected lines only.",
    lines: Array.from({ length: lines }, (_, i) => ({
      sku: `SKU-${String(10000 + i * 37).padStart(6, "0")}`,
      description: `Replacement part ${i + 1}, damaged in transit (box ${1 + (i % 4)})`,
      quantity: 1 + (i % 3),
      unitPrice: 4.75 + (i % 7) * 1.5,
    })),
  };
}

/** The production rules of the core set, with tools in mind: mutation rules for model calls and tools apart, and the tool rules. */
const TOOL_CORE: readonly string[] = [
  ...CORE.filter((policy) => !policy.includes('@id("no-mutation-in-production")')),
  `@id("no-mutation-in-production")
@reason("only batch jobs may start asynchronous invocations in production")
forbid (principal, action in Bedrock::Action::"ModelInvocation", resource)
when { context.actionType == "mutate" && context.environment == "production" }
unless { principal in Bedrock::Group::"batch-jobs" };`,
  `@id("mutating-tools-billing-only")
@reason("in production, only billing agents may use tools that change state")
forbid (principal, action in Bedrock::Action::"ToolUse", resource)
when { resource.effect == "mutate" && context.environment == "production" }
unless { principal in Bedrock::Group::"billing-agents" };`,
  `@id("read-tools")
@reason("bench agents may use tools that only read")
permit (principal in Bedrock::Group::"bench-agents", action in Bedrock::Action::"ToolUse", resource)
when { resource.effect == "read" };`,
  `@id("refunds-up-to-500")
@reason("billing agents may refund up to 500 without a human")
permit (principal in Bedrock::Group::"billing-agents", action == Bedrock::Action::"tool:issue_refund", resource)
when { context.phase == "offer" || (context has input && context.input.amount.lessThanOrEqual(decimal("500.0"))) };`,
  `@id("no-refunds-over-10000")
@reason("refunds over 10,000 need the finance team")
forbid (principal, action == Bedrock::Action::"tool:issue_refund", resource)
when { context has input && context.input.amount.greaterThan(decimal("10000.0")) };`,
];

/** A policy set for the tool benchmark: the tool-aware core rules, then generated ones up to `count`. */
export function generateToolPolicies(count: number): string {
  return generatePolicies(Math.max(count, TOOL_CORE.length), TOOL_CORE);
}
