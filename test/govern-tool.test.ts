import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { beforeEach, describe, it } from "node:test";
import { SpanKind, SpanStatusCode, trace, type SpanContext } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { exporter, tracerProvider } from "./support/tracing.js";
import {
  AccessDeniedError,
  ConfigurationError,
  createGovernance,
  currentScope,
  GEN_AI,
  NoIdentityError,
  runAs,
  WARDEN,
  type Decision,
  type DecisionRecord,
  type Governance,
  type WorkloadIdentity,
} from "../src/index.js";
import { governTool, LINK_ATTRIBUTE, LINK_REQUESTED_BY, MAX_TOOL_CONTENT_CHARS, type ToolExecution } from "../src/tools/govern-tool.js";
import type { ToolDefinition } from "../src/tools/tool-definitions.js";
import { ToolCallRegistry } from "../src/tools/tool-call-registry.js";
import { ConverseCommand, type ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime";
import { GovernedBedrockRuntimeClient, toolDecisions } from "../src/index.js";
import { CREDENTIALS, HAIKU } from "./support/governance.js";
import { jsonResponse, MemoryHandler } from "./support/memory-handler.js";

const billingAgent: WorkloadIdentity = { id: "spiffe://acme.test/agents/billing", groups: ["billing"] };
const stranger: WorkloadIdentity = { id: "spiffe://acme.test/agents/stranger" };
const otherBilling: WorkloadIdentity = { id: "spiffe://acme.test/agents/other-billing", groups: ["billing"] };

const TOOLS: ToolDefinition[] = [
  {
    name: "lookup_invoice",
    effect: "read",
    sensitivity: "financial",
    inputSchema: { type: "object", properties: { invoiceId: { type: "string" } }, required: ["invoiceId"] },
  },
  {
    name: "issue_refund",
    effect: "mutate",
    inputSchema: {
      type: "object",
      properties: { invoiceId: { type: "string" }, amount: { type: "integer" } },
      required: ["invoiceId", "amount"],
    },
  },
];

const POLICIES = `
@id("billing-lookup")
@reason("billing agents may look up invoices")
permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"tool:lookup_invoice", resource);

@id("billing-small-refunds")
@reason("billing agents may refund up to 100")
permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"tool:issue_refund", resource)
when { context.phase == "execute" && context has input && context.input.amount <= 100 };
`;

interface Setup {
  governance: Governance;
  records: DecisionRecord[];
}

function setup(captureContent = false): Setup {
  const records: DecisionRecord[] = [];
  const governance = createGovernance({
    environment: "test",
    policies: POLICIES,
    tools: TOOLS,
    tracerProvider,
    captureContent,
    onDecision: (record) => records.push(record),
  });
  return { governance, records };
}

/** A governance with a client whose model answers with the tool calls last given to `respondWith`. */
function clientSetup(): { governance: Governance; client: GovernedBedrockRuntimeClient; respondWith: (content: unknown[]) => void } {
  // The model calls, and the tools offered and asked for, are allowed too; execution stays as POLICIES say.
  // Denied tool calls are reported in the result (toolDecisions), not thrown.
  const governance = createGovernance({
    environment: "test",
    policies: `${POLICIES}
      permit (principal in Bedrock::Group::"billing", action in Bedrock::Action::"ModelInvocation", resource);
      permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"tool:issue_refund", resource) when { context.phase != "execute" };`,
    tools: TOOLS,
    tracerProvider,
    toolEnforcement: "result",
  });
  let content: unknown[] = [];
  const handler = new MemoryHandler(() =>
    jsonResponse({ output: { message: { role: "assistant", content } }, stopReason: "tool_use", usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, metrics: { latencyMs: 1 } }),
  );
  const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: handler, governance, maxAttempts: 1 });
  return { governance, client, respondWith: (next) => void (content = next) };
}

/** A Converse request offering the given tools of {@link TOOLS}. */
function converseOffering(...names: string[]): ConverseCommandInput {
  return {
    modelId: HAIKU,
    messages: [{ role: "user", content: [{ text: "refund INV-1" }] }],
    toolConfig: { tools: names.map((name) => ({ toolSpec: { name, inputSchema: { json: TOOLS.find((t) => t.name === name)!.inputSchema as never } } })) },
  };
}

const plain = setup(false);
const capturing = setup(true);

function toolSpans(name: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.name === `execute_tool ${name}`);
}

function only<T>(items: readonly T[]): T {
  assert.equal(items.length, 1, `expected exactly one, got ${items.length}`);
  return items[0] as T;
}

/** A real, ended `chat` span, remembered in the registry as having asked for `toolUseId`. */
function rememberChat(governance: Governance, toolUseId: string, name: string, effect: "allow" | "deny" = "allow", workloadId = billingAgent.id): SpanContext {
  const chat = tracerProvider.getTracer("test").startSpan("chat anthropic.claude-3-haiku", { kind: SpanKind.CLIENT });
  chat.end();
  const decision: Decision = {
    effect,
    principal: `Bedrock::Workload::"${billingAgent.id}"`,
    action: `Bedrock::Action::"tool:${name}"`,
    resource: `Bedrock::Tool::"${name}"`,
    policies: [],
    reasons: effect === "deny" ? ["the tool was never offered to the model"] : [],
    errors: [],
    policySetVersion: governance.policySetVersion,
  };
  governance.toolCalls.remember(workloadId, toolUseId, { name, chatSpan: chat.spanContext(), decision, region: "us-east-1" });
  return chat.spanContext();
}

beforeEach(() => {
  exporter.reset();
  plain.records.length = 0;
  capturing.records.length = 0;
});

describe("governTool: an allowed execution", () => {
  it("runs the executor once, in one execute_tool span under the caller's span, linked to the chat span, with one completed record", async () => {
    const { governance, records } = plain;
    const chat = rememberChat(governance, "tooluse_lookup_1", "lookup_invoice");
    const executions: { input: unknown; execution: ToolExecution; parentSpanId: string | undefined }[] = [];
    const lookupInvoice = governTool(
      { name: "lookup_invoice" },
      async (input: { invoiceId: string }, execution) => {
        executions.push({ input, execution, parentSpanId: trace.getActiveSpan()?.spanContext().spanId });
        // A span the executor makes is a child of execute_tool.
        trace.getTracer("test").startSpan("db.query").end();
        await sleep(1);
        return { invoiceId: input.invoiceId, total: 120 };
      },
      { governance },
    );

    let callerSpanId = "";
    const result = await runAs(billingAgent, () =>
      trace.getTracer("test").startActiveSpan("agent step", async (parent) => {
        callerSpanId = parent.spanContext().spanId;
        try {
          return await lookupInvoice({ invoiceId: "INV-4711" }, { toolUseId: "tooluse_lookup_1" });
        } finally {
          parent.end();
        }
      }),
    );

    assert.deepEqual(result, { invoiceId: "INV-4711", total: 120 });
    const execution = only(executions);
    assert.deepEqual(execution.input, { invoiceId: "INV-4711" });
    assert.equal(execution.execution.toolUseId, "tooluse_lookup_1");
    assert.equal(execution.execution.decision.effect, "allow");
    assert.deepEqual(execution.execution.decision.policies, ["billing-lookup"]);

    const span = only(toolSpans("lookup_invoice"));
    assert.equal(span.kind, SpanKind.INTERNAL);
    assert.equal(span.parentSpanContext?.spanId, callerSpanId, "the parent is the caller's span, not the chat span");
    assert.notEqual(span.parentSpanContext?.spanId, chat.spanId);
    assert.equal(execution.parentSpanId, span.spanContext().spanId, "the executor runs inside the execute_tool span");
    const dbQuery = only(exporter.getFinishedSpans().filter((s) => s.name === "db.query"));
    assert.equal(dbQuery.parentSpanContext?.spanId, span.spanContext().spanId);

    const link = only(span.links);
    assert.equal(link.context.spanId, chat.spanId);
    assert.equal(link.context.traceId, chat.traceId);
    assert.equal(link.attributes?.[LINK_ATTRIBUTE], LINK_REQUESTED_BY);

    assert.equal(span.status.code, SpanStatusCode.UNSET);
    assert.deepEqual(
      {
        operation: span.attributes[GEN_AI.OPERATION_NAME],
        name: span.attributes[GEN_AI.TOOL_NAME],
        id: span.attributes[GEN_AI.TOOL_CALL_ID],
        type: span.attributes[GEN_AI.TOOL_TYPE],
        workload: span.attributes[WARDEN.WORKLOAD_ID],
        groups: span.attributes[WARDEN.WORKLOAD_GROUPS],
        environment: span.attributes[WARDEN.ENVIRONMENT],
        decision: span.attributes[WARDEN.DECISION],
        action: span.attributes[WARDEN.ACTION],
        resource: span.attributes[WARDEN.RESOURCE],
        policies: span.attributes[WARDEN.DECISION_POLICIES],
        phase: span.attributes[WARDEN.TOOL_PHASE],
        error: span.attributes[GEN_AI.ERROR_TYPE],
      },
      {
        operation: "execute_tool",
        name: "lookup_invoice",
        id: "tooluse_lookup_1",
        type: "function",
        workload: billingAgent.id,
        groups: ["billing"],
        environment: "test",
        decision: "allow",
        action: 'Bedrock::Action::"tool:lookup_invoice"',
        resource: 'Bedrock::Tool::"lookup_invoice"',
        policies: ["billing-lookup"],
        phase: "execute",
        error: undefined,
      },
    );

    const record = only(records);
    assert.equal(record.outcome, "completed");
    assert.equal(record.decision, "allow");
    assert.equal(record.command, "tool:lookup_invoice");
    assert.deepEqual(record.tool, { name: "lookup_invoice", toolUseId: "tooluse_lookup_1", phase: "execute" });
    assert.deepEqual(record.workload, { id: billingAgent.id, groups: ["billing"] });
    assert.equal(record.environment, "test");
    assert.equal(record.region, "us-east-1");
    assert.equal(record.action, 'Bedrock::Action::"tool:lookup_invoice"');
    assert.deepEqual(record.policies, ["billing-lookup"]);
    assert.equal(record.policySetVersion, governance.policySetVersion);
    assert.equal(record.traceId, span.spanContext().traceId);
    assert.equal(record.spanId, span.spanContext().spanId);
    assert.equal(record.id, span.attributes[WARDEN.DECISION_ID]);
    assert.equal(record.error, undefined);
    assert.ok(record.durationMs >= 0 && Number.isFinite(record.durationMs));
  });

  it("runs an executor that returns a plain value, with no tool call id and no link", async () => {
    const { governance, records } = plain;
    const lookup = governTool({ name: "lookup_invoice" }, (input: { invoiceId: string }) => input.invoiceId.length, { governance });
    assert.equal(await runAs(billingAgent, () => lookup({ invoiceId: "INV-1" })), 5);
    const span = only(toolSpans("lookup_invoice"));
    assert.equal(span.links.length, 0);
    assert.equal(span.attributes[GEN_AI.TOOL_CALL_ID], undefined);
    const record = only(records);
    assert.equal(record.outcome, "completed");
    assert.deepEqual(record.tool, { name: "lookup_invoice", phase: "execute" });
    assert.equal(record.region, undefined);
  });

  it("refuses to run one tool under the id of a call the model made to another, and does not link it", async () => {
    const { governance } = plain;
    rememberChat(governance, "tooluse_other", "issue_refund");
    let ran = 0;
    const lookup = governTool({ name: "lookup_invoice" }, () => ran++, { governance });
    const error = await runAs(billingAgent, () => lookup({ invoiceId: "INV-1" }, { toolUseId: "tooluse_other" })).catch((e: unknown) => e);
    assert.ok(error instanceof AccessDeniedError, String(error));
    assert.match(error.message, /was a call to issue_refund, not lookup_invoice/);
    assert.equal(ran, 0);
    assert.equal(only(toolSpans("lookup_invoice")).links.length, 0);
  });

  it("passes the executor a copy taken when the call was decided: a later change to the caller's object is not executed", async () => {
    const { governance } = plain;
    let executed: unknown;
    const refund = governTool(
      { name: "issue_refund" },
      async (input: { invoiceId: string; amount: number }) => {
        await sleep(5);
        executed = { ...input };
        return "refunded";
      },
      { governance },
    );
    const input = { invoiceId: "INV-1", amount: 50 };
    const pending = runAs(billingAgent, () => refund(input));
    input.amount = 5000;
    assert.equal(await pending, "refunded");
    assert.deepEqual(executed, { invoiceId: "INV-1", amount: 50 });
  });

  it("works without a decision listener (nothing to record, the span still made)", async () => {
    const governance = createGovernance({ environment: "test", policies: POLICIES, tools: TOOLS, tracerProvider });
    const lookup = governTool({ name: "lookup_invoice" }, () => "ok", { governance });
    assert.equal(await runAs(billingAgent, () => lookup({ invoiceId: "INV-1" })), "ok");
    assert.equal(toolSpans("lookup_invoice").length, 1);
  });
});

describe("governTool: the input actually executed is what is decided", () => {
  it("denies 5000 when the model asked for 50 (which the policy allows): the executor never runs", async () => {
    const { governance, records } = plain;
    const chat = rememberChat(governance, "tooluse_refund_1", "issue_refund", "allow");
    let runs = 0;
    const refund = governTool(
      { name: "issue_refund" },
      (_input: { invoiceId: string; amount: number }) => {
        runs += 1;
        return "refunded";
      },
      { governance },
    );

    // What the model asked for would have been allowed...
    assert.equal(await runAs(billingAgent, () => refund({ invoiceId: "INV-1", amount: 50 })), "refunded");
    assert.equal(runs, 1);
    exporter.reset();
    records.length = 0;

    // ...but the application executes something else.
    await assert.rejects(
      runAs(billingAgent, () => refund({ invoiceId: "INV-1", amount: 5000 }, { toolUseId: "tooluse_refund_1" })),
      (error: unknown) => {
        assert.ok(error instanceof AccessDeniedError);
        assert.equal(error.code, "ERR_ACCESS_DENIED");
        assert.equal(error.decision.effect, "deny");
        return true;
      },
    );
    assert.equal(runs, 1, "a denied execution never runs the executor");

    const span = only(toolSpans("issue_refund"));
    assert.equal(span.status.code, SpanStatusCode.ERROR);
    assert.equal(span.attributes[GEN_AI.ERROR_TYPE], "ERR_ACCESS_DENIED");
    assert.equal(span.attributes[WARDEN.DECISION], "deny");
    assert.equal(span.attributes[WARDEN.TOOL_PHASE], "execute");
    assert.equal(only(span.links).context.spanId, chat.spanId, "still linked to the chat span that asked");

    const record = only(records);
    assert.equal(record.outcome, "denied");
    assert.equal(record.decision, "deny");
    assert.equal(record.error, undefined);
    assert.deepEqual(record.tool, { name: "issue_refund", toolUseId: "tooluse_refund_1", phase: "execute" });
    assert.equal(record.spanId, span.spanContext().spanId);
  });

  it("refuses to run a call that was denied when the model asked for it, even where the execution policy allows it", async () => {
    const { governance, records } = plain;
    rememberChat(governance, "tooluse_refund_denied", "issue_refund", "deny");
    let runs = 0;
    const refund = governTool({ name: "issue_refund" }, () => ((runs += 1), "refunded"), { governance });
    await assert.rejects(
      runAs(billingAgent, () => refund({ invoiceId: "INV-1", amount: 50 }, { toolUseId: "tooluse_refund_denied" })),
      (error: unknown) => error instanceof AccessDeniedError && /tooluse_refund_denied to issue_refund was denied \(the tool was never offered to the model\), so it is not run/.test(error.message),
    );
    assert.equal(runs, 0);
    assert.equal(only(records).outcome, "denied");
    // The same input without that id is decided on its own (the application runs it of its own accord).
    assert.equal(await runAs(billingAgent, () => refund({ invoiceId: "INV-1", amount: 50 })), "refunded");
  });

  it("a call id is the workload's own: another workload's call under that id neither links to it nor changes it", async () => {
    const { governance } = plain;
    const chat = rememberChat(governance, "tooluse_shared", "issue_refund", "allow");
    // Another workload's model produced the same id, for another tool, and was denied.
    rememberChat(governance, "tooluse_shared", "lookup_invoice", "deny", "spiffe://acme.test/agents/other");
    const refund = governTool({ name: "issue_refund" }, () => "refunded", { governance });
    assert.equal(await runAs(billingAgent, () => refund({ invoiceId: "INV-1", amount: 50 }, { toolUseId: "tooluse_shared" })), "refunded");
    assert.equal(only(only(toolSpans("issue_refund")).links).context.spanId, chat.spanId, "linked to its own workload's chat span");
  });

  it("another workload's tool calls cannot make the registry forget a denied call (10,000 of them through the client)", async () => {
    const { governance, client, respondWith } = clientSetup();
    let runs = 0;
    const refund = governTool({ name: "issue_refund" }, () => ((runs += 1), "refunded"), { governance });
    // The billing agent's model asks for issue_refund, which its request did not offer: denied.
    respondWith([{ toolUse: { toolUseId: "tooluse_injected", name: "issue_refund", input: { invoiceId: "INV-1", amount: 50 } } }]);
    const asked = await runAs(billingAgent, () => client.send(new ConverseCommand(converseOffering("lookup_invoice"))));
    assert.equal(toolDecisions(asked)[0]?.decision.effect, "deny");
    // Another workload's conversations: 10 responses of 1,000 tool calls each.
    for (let batch = 0; batch < 10; batch++) {
      respondWith(Array.from({ length: 1000 }, (_, i) => ({ toolUse: { toolUseId: `other_${batch}_${i}`, name: "lookup_invoice", input: { invoiceId: `INV-${i}` } } })));
      await runAs(otherBilling, () => client.send(new ConverseCommand(converseOffering("lookup_invoice"))));
    }
    await assert.rejects(
      runAs(billingAgent, () => refund({ invoiceId: "INV-1", amount: 50 }, { toolUseId: "tooluse_injected" })),
      /tooluse_injected to issue_refund was denied/,
    );
    assert.equal(runs, 0);
  });

  it("a later response reusing a denied call's id does not make the denied call runnable", async () => {
    const { governance, client, respondWith } = clientSetup();
    const refund = governTool({ name: "issue_refund" }, () => "refunded", { governance });
    respondWith([{ toolUse: { toolUseId: "tooluse_reused", name: "issue_refund", input: { invoiceId: "INV-1", amount: 50 } } }]);
    await runAs(billingAgent, () => client.send(new ConverseCommand(converseOffering("lookup_invoice"))));
    // The same id again, this time offered and allowed.
    respondWith([{ toolUse: { toolUseId: "tooluse_reused", name: "issue_refund", input: { invoiceId: "INV-2", amount: 1 } } }]);
    const second = await runAs(billingAgent, () => client.send(new ConverseCommand(converseOffering("issue_refund"))));
    assert.equal(toolDecisions(second)[0]?.decision.effect, "allow");
    await assert.rejects(runAs(billingAgent, () => refund({ invoiceId: "INV-2", amount: 1 }, { toolUseId: "tooluse_reused" })), /tooluse_reused to issue_refund was denied/);
  });

  it("the registry is bounded, and forgets from the workload holding the most calls, allowed calls before denied ones", () => {
    const registry = new ToolCallRegistry(100);
    const origin = (effect: "allow" | "deny") => ({ name: "t", chatSpan: trace.wrapSpanContext({ traceId: "1".repeat(32), spanId: "2".repeat(16), traceFlags: 1 }).spanContext(), decision: { effect } as Decision, region: "r" });
    registry.remember("a", "denied-a", origin("deny"));
    registry.remember("a", "allowed-a", origin("allow"));
    for (let i = 0; i < 1000; i++) registry.remember("b", `b${i}`, origin(i % 10 === 0 ? "deny" : "allow"));
    assert.equal(registry.origin("a", "denied-a")?.decision.effect, "deny", "another workload's flood forgets its own calls");
    assert.equal(registry.origin("a", "allowed-a")?.decision.effect, "allow");
    // b keeps its most recent calls, its denied ones first: 98 places are b's, and b made 100 denials.
    let bHeld = 0;
    let bDenied = 0;
    for (let i = 0; i < 1000; i++) {
      const found = registry.origin("b", `b${i}`);
      if (found) bHeld++;
      if (found?.decision.effect === "deny") bDenied++;
    }
    assert.equal(bHeld, 98);
    assert.equal(bDenied, 98, "denied calls outlive allowed ones");
    assert.equal(registry.origin("b", "b990")?.decision.effect, "deny", "the most recent denials are kept");
    // A workload flooding itself with denials does forget its own oldest, once it holds the most.
    for (let i = 0; i < 200; i++) registry.remember("a", `a-denied-${i}`, origin("deny"));
    assert.equal(registry.origin("a", "denied-a"), undefined);
    assert.notEqual(registry.origin("a", "a-denied-199"), undefined);
    // Shares: a workload holding only denials gives way last among the largest, and never below an
    // equal share, whoever's traffic fills the registry.
    const shared = new ToolCallRegistry(6);
    for (let i = 0; i < 3; i++) shared.remember("victim", `v${i}`, origin("deny"));
    for (let i = 0; i < 3; i++) shared.remember("other", `o${i}`, origin("allow"));
    for (let i = 0; i < 30; i++) shared.remember("attacker", `x${i}`, origin("allow"));
    const kept = (workload: string, prefix: string, count: number) => Array.from({ length: count }, (_, i) => shared.origin(workload, `${prefix}${i}`)).filter(Boolean).length;
    assert.equal(kept("victim", "v", 3), 2, "an equal share of the six places");
    assert.equal(kept("other", "o", 3), 2);
    assert.equal(kept("attacker", "x", 30), 2);
    assert.notEqual(shared.origin("victim", "v2"), undefined, "the most recent denials are the ones kept");
    // Many workloads of one call each: the least recently active gives way, never the newest call.
    const many = new ToolCallRegistry(10);
    for (let i = 0; i < 50; i++) many.remember(`w${i}`, "id", origin("deny"));
    assert.equal(many.origin("w49", "id")?.decision.effect, "deny");
    assert.equal(many.origin("w0", "id"), undefined);
    let held = 0;
    for (let i = 0; i < 50; i++) if (many.origin(`w${i}`, "id")) held++;
    assert.equal(held, 10);
  });

  it("denies an input that does not match the tool's schema, with a reason naming the field", async () => {
    const { governance, records } = plain;
    let runs = 0;
    const lookup = governTool({ name: "lookup_invoice" }, () => void (runs += 1), { governance });
    await assert.rejects(
      runAs(billingAgent, () => lookup({ invoiceId: 4711 } as unknown as { invoiceId: string })),
      (error: unknown) => error instanceof AccessDeniedError && error.decision.reasons.some((r) => r.includes("invoiceId")),
    );
    assert.equal(runs, 0);
    const record = only(records);
    assert.equal(record.outcome, "denied");
    assert.ok(record.reasons.some((r) => /invoiceId/.test(r) && /expected a string/.test(r)), record.reasons.join("; "));
    assert.ok(
      (only(toolSpans("lookup_invoice")).attributes[WARDEN.DECISION_REASONS] as string[]).some((r) => r.includes("invoiceId")),
    );
  });

  it("denies an input that cannot be read, or is nested too deep, without a crash", async () => {
    const { governance, records } = plain;
    let runs = 0;
    const tool = governTool({ name: "lookup_invoice" }, () => void (runs += 1), { governance });
    const hostile = Object.defineProperty({}, "invoiceId", {
      enumerable: true,
      get() {
        throw new Error("boom");
      },
    });
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 100; i++) deep = { a: deep };
    const cyclic: Record<string, unknown> = { invoiceId: "INV-1" };
    cyclic["self"] = cyclic;
    for (const input of [hostile, deep, cyclic]) {
      await assert.rejects(runAs(billingAgent, () => tool(input as { invoiceId: string })), AccessDeniedError);
    }
    assert.equal(runs, 0);
    assert.equal(records.length, 3);
    assert.ok(records.every((r) => r.outcome === "denied"));
    assert.match(records[0]!.reasons.join(), /could not be read/);
    assert.match(records[1]!.reasons.join(), /nested deeper than 64/);
    assert.equal(toolSpans("lookup_invoice").length, 3);
  });

  it("denies an unusable tool call id, and never puts it on the span", async () => {
    const { governance, records } = plain;
    let runs = 0;
    const tool = governTool({ name: "lookup_invoice" }, () => void (runs += 1), { governance });
    await assert.rejects(runAs(billingAgent, () => tool({ invoiceId: "INV-1" }, { toolUseId: "t1\nforged log line" })), AccessDeniedError);
    await assert.rejects(runAs(billingAgent, () => tool({ invoiceId: "INV-1" }, { toolUseId: 7 as unknown as string })), AccessDeniedError);
    assert.equal(runs, 0);
    assert.deepEqual(
      records.map((r) => [r.outcome, r.reasons[0], r.tool?.toolUseId]),
      [
        ["denied", "toolUseId contains control or invisible characters", undefined],
        ["denied", "toolUseId is not a string", undefined],
      ],
    );
    for (const span of toolSpans("lookup_invoice")) assert.equal(span.attributes[GEN_AI.TOOL_CALL_ID], undefined);
  });

  it("decides a tool that was not declared as UndeclaredTool (denied unless a policy permits it)", async () => {
    const { governance, records } = plain;
    let runs = 0;
    const tool = governTool({ name: "delete_everything" }, () => void (runs += 1), { governance });
    await assert.rejects(runAs(billingAgent, () => tool({})), AccessDeniedError);
    assert.equal(runs, 0);
    const span = only(toolSpans("delete_everything"));
    assert.equal(span.attributes[WARDEN.ACTION], 'Bedrock::Action::"UndeclaredTool"');
    assert.equal(only(records).action, 'Bedrock::Action::"UndeclaredTool"');
  });
});

describe("governTool: a failing executor", () => {
  class LedgerError extends Error {
    override readonly name = "LedgerError";
  }

  for (const kind of ["sync", "async"] as const) {
    it(`rethrows the same error (${kind} throw), outcome "failed" with the error type`, async () => {
      const { governance, records } = plain;
      const boom = new LedgerError("ledger unavailable");
      let runs = 0;
      const lookup = governTool(
        { name: "lookup_invoice" },
        kind === "sync"
          ? () => {
              runs += 1;
              throw boom;
            }
          : async () => {
              runs += 1;
              await sleep(1);
              throw boom;
            },
        { governance },
      );
      await assert.rejects(
        runAs(billingAgent, () => lookup({ invoiceId: "INV-1" }, { toolUseId: `tooluse_fail_${kind}` })),
        (error: unknown) => error === boom,
      );
      assert.equal(runs, 1);
      const span = only(toolSpans("lookup_invoice"));
      assert.equal(span.status.code, SpanStatusCode.ERROR);
      assert.equal(span.attributes[GEN_AI.ERROR_TYPE], "LedgerError");
      assert.equal(span.attributes[WARDEN.DECISION], "allow");
      const record = only(records);
      assert.equal(record.outcome, "failed");
      assert.equal(record.decision, "allow");
      assert.equal(record.error, "LedgerError");
    });
  }

  it("rethrows a thrown non-Error value unchanged", async () => {
    const { governance, records } = plain;
    const lookup = governTool({ name: "lookup_invoice" }, () => Promise.reject("just a string"), { governance });
    await assert.rejects(runAs(billingAgent, () => lookup({ invoiceId: "INV-1" })), (error: unknown) => error === "just a string");
    assert.equal(only(records).error, "_OTHER");
    assert.equal(only(toolSpans("lookup_invoice")).attributes[GEN_AI.ERROR_TYPE], "_OTHER");
  });
});

describe("governTool: identity", () => {
  it("denies with NoIdentityError when no identity is resolved: the executor never runs", async () => {
    const { governance, records } = plain;
    let runs = 0;
    const lookup = governTool({ name: "lookup_invoice" }, () => void (runs += 1), { governance });
    await assert.rejects(lookup({ invoiceId: "INV-1" }), (error: unknown) => error instanceof NoIdentityError && error.code === "ERR_NO_IDENTITY");
    assert.equal(runs, 0);
    const span = only(toolSpans("lookup_invoice"));
    assert.equal(span.attributes[GEN_AI.ERROR_TYPE], "ERR_NO_IDENTITY");
    assert.equal(span.attributes[WARDEN.WORKLOAD_ID], undefined);
    assert.equal(span.status.code, SpanStatusCode.ERROR);
    const record = only(records);
    assert.equal(record.workload, null);
    assert.equal(record.outcome, "denied");
  });

  it("uses options.identity outside runAs, and the runAs identity inside it", async () => {
    const { governance, records } = plain;
    const lookup = governTool({ name: "lookup_invoice" }, () => currentScope().identity?.id ?? "(none)", { governance, identity: billingAgent });
    assert.equal(await lookup({ invoiceId: "INV-1" }), "(none)");
    await assert.rejects(runAs(stranger, () => lookup({ invoiceId: "INV-1" })), AccessDeniedError);
    assert.deepEqual(
      records.map((r) => [r.workload?.id, r.outcome]),
      [
        [billingAgent.id, "completed"],
        [stranger.id, "denied"],
      ],
    );
  });

  it("names its own identity in each span and record: 50 interleaved executions under different identities", async () => {
    const { governance, records } = plain;
    const agents = Array.from({ length: 50 }, (_, i): WorkloadIdentity => ({ id: `spiffe://acme.test/agents/a${i}`, groups: ["billing"] }));
    const lookup = governTool(
      { name: "lookup_invoice" },
      async (input: { invoiceId: string }, execution) => {
        await sleep(Math.floor(Math.random() * 10));
        trace.getTracer("test").startSpan(`child ${execution.toolUseId}`).end();
        await sleep(Math.floor(Math.random() * 5));
        return { input: input.invoiceId, actingAs: currentScope().identity?.id };
      },
      { governance },
    );
    const results = await Promise.all(
      agents.map((agent, i) => runAs(agent, () => lookup({ invoiceId: `INV-${i}` }, { toolUseId: `call_${i}` }))),
    );
    results.forEach((result, i) => assert.deepEqual(result, { input: `INV-${i}`, actingAs: agents[i]!.id }));

    const spans = toolSpans("lookup_invoice");
    assert.equal(spans.length, 50);
    assert.equal(records.length, 50);
    const spansById = new Map(spans.map((s) => [s.attributes[GEN_AI.TOOL_CALL_ID], s]));
    const children = exporter.getFinishedSpans().filter((s) => s.name.startsWith("child "));
    agents.forEach((agent, i) => {
      const span = spansById.get(`call_${i}`);
      assert.ok(span, `span of call_${i}`);
      assert.equal(span.attributes[WARDEN.WORKLOAD_ID], agent.id);
      const record = only(records.filter((r) => r.tool?.toolUseId === `call_${i}`));
      assert.equal(record.workload?.id, agent.id);
      assert.equal(record.spanId, span.spanContext().spanId);
      assert.equal(record.outcome, "completed");
      const child = only(children.filter((c) => c.name === `child call_${i}`));
      assert.equal(child.parentSpanContext?.spanId, span.spanContext().spanId);
    });
  });
});

describe("governTool: content", () => {
  const CANARY = "CANARY-7f3a9c";

  function attributeText(spans: readonly ReadableSpan[]): string {
    return JSON.stringify(spans.map((s) => ({ attributes: s.attributes, events: s.events, links: s.links.map((l) => l.attributes) })));
  }

  it("records neither input nor result when capture is off", async () => {
    const { governance, records } = plain;
    const lookup = governTool({ name: "lookup_invoice" }, (input: { invoiceId: string }) => ({ note: `${CANARY}-result`, id: input.invoiceId }), { governance });
    await runAs(billingAgent, () => lookup({ invoiceId: `${CANARY}-input` }, { toolUseId: "tooluse_content_off" }));
    // Also when the execution is denied, and when the schema refuses the input.
    await assert.rejects(runAs(stranger, () => lookup({ invoiceId: `${CANARY}-denied` })), AccessDeniedError);
    await assert.rejects(runAs(billingAgent, () => lookup({ invoiceId: [CANARY] } as unknown as { invoiceId: string })), AccessDeniedError);
    const spans = toolSpans("lookup_invoice");
    assert.equal(spans.length, 3);
    assert.ok(!attributeText(exporter.getFinishedSpans()).includes(CANARY));
    for (const span of spans) {
      assert.equal(span.attributes[GEN_AI.TOOL_CALL_ARGUMENTS], undefined);
      assert.equal(span.attributes[GEN_AI.TOOL_CALL_RESULT], undefined);
    }
    assert.equal(records.length, 3);
    assert.ok(!JSON.stringify(records).includes(CANARY));
  });

  it("records input and result as JSON on the span when capture is on (never in records)", async () => {
    const { governance, records } = capturing;
    const lookup = governTool({ name: "lookup_invoice" }, (input: { invoiceId: string }) => ({ note: `${CANARY}-result`, id: input.invoiceId }), { governance });
    await runAs(billingAgent, () => lookup({ invoiceId: `${CANARY}-input` }, { toolUseId: "tooluse_content_on" }));
    const span = only(toolSpans("lookup_invoice"));
    assert.deepEqual(JSON.parse(span.attributes[GEN_AI.TOOL_CALL_ARGUMENTS] as string), { invoiceId: `${CANARY}-input` });
    assert.deepEqual(JSON.parse(span.attributes[GEN_AI.TOOL_CALL_RESULT] as string), { note: `${CANARY}-result`, id: `${CANARY}-input` });
    assert.ok(!JSON.stringify(only(records)).includes(CANARY));
  });

  it("stringifies safely (cycles, BigInt, bytes) and truncates to the limit", async () => {
    const { governance } = capturing;
    const cyclic: Record<string, unknown> = { n: 1n, bytes: new Uint8Array(3) };
    cyclic["self"] = cyclic;
    const huge = "x".repeat(MAX_TOOL_CONTENT_CHARS * 2);
    let answer: unknown = cyclic;
    const lookup = governTool({ name: "lookup_invoice" }, () => answer, { governance });
    await runAs(billingAgent, () => lookup({ invoiceId: "INV-1" }));
    answer = { huge };
    await runAs(billingAgent, () => lookup({ invoiceId: "INV-2" }));
    const [first, second] = toolSpans("lookup_invoice");
    assert.equal(first?.attributes[GEN_AI.TOOL_CALL_RESULT], '{"n":"1","bytes":"<3 bytes>","self":"[Circular]"}');
    const truncated = second?.attributes[GEN_AI.TOOL_CALL_RESULT] as string;
    assert.ok(truncated.startsWith('{"huge":"xxx'));
    assert.ok(truncated.length < MAX_TOOL_CONTENT_CHARS + 64, `length ${truncated.length}`);
    assert.match(truncated, /…\[truncated \d+ characters\]$/);
  });
});

describe("governTool: options are checked once, when the tool is wrapped", () => {
  const { governance } = plain;
  const cases: [string, () => unknown, RegExp][] = [
    ["a tool without a name", () => governTool({} as { name: string }, () => 1, { governance }), /tool\.name: must be a string/],
    ["an empty name", () => governTool({ name: "" }, () => 1, { governance }), /tool\.name: must not be empty/],
    ["a name with a newline", () => governTool({ name: "a\nb" }, () => 1, { governance }), /tool\.name: must not contain control/],
    ["no tool", () => governTool(undefined as unknown as { name: string }, () => 1, { governance }), /governTool tool: .*must be an object/],
    ["an executor that is not a function", () => governTool({ name: "lookup_invoice" }, "run" as never, { governance }), /executor: must be a function/],
    ["no options", () => governTool({ name: "lookup_invoice" }, () => 1, undefined as never), /options.*must be an object/],
    ["no governance", () => governTool({ name: "lookup_invoice" }, () => 1, {} as never), /options\.governance: is required: the result of createGovernance/],
    ["an unknown option", () => governTool({ name: "lookup_invoice" }, () => 1, { governance, idnetity: billingAgent } as never), /idnetity.*allowed: governance, identity/],
    ["a malformed identity", () => governTool({ name: "lookup_invoice" }, () => 1, { governance, identity: { id: "" } }), /identity\.id must not be empty/],
  ];
  for (const [title, make, message] of cases) {
    it(`refuses ${title} with a ConfigurationError`, () => {
      assert.throws(make, (error: unknown) => {
        assert.ok(error instanceof ConfigurationError, String(error));
        assert.match(error.message, message);
        return true;
      });
    });
  }

  it("accepts a full ToolDefinition as the tool", async () => {
    const tool = governTool(TOOLS[0]!, () => "ok", { governance });
    assert.equal(await runAs(billingAgent, () => tool({ invoiceId: "INV-1" })), "ok");
  });
});
