import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { ConverseCommand, ConverseStreamCommand, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { exporter, tracerProvider } from "./support/tracing.js";
import {
  AccessDeniedError,
  createGovernance,
  deniedToolResults,
  GovernedBedrockRuntimeClient,
  runAs,
  toolDecisions,
  ToolCallDeniedError,
  WARDEN,
  type DecisionRecord,
  type GovernanceOptions,
  type ToolDefinition,
} from "../src/index.js";
import { useLocalBedrock } from "./support/local-bedrock.js";
import { HAIKU } from "./support/governance.js";

const TOOLS: ToolDefinition[] = [
  { name: "lookup_invoice", effect: "read", inputSchema: { type: "object", properties: { invoiceId: { type: "string" } }, required: ["invoiceId"] } },
  {
    name: "issue_refund",
    effect: "mutate",
    sensitivity: "financial",
    inputSchema: { type: "object", properties: { invoiceId: { type: "string" }, amount: { type: "number" }, note: { type: "string" } }, required: ["invoiceId", "amount"] },
  },
  { name: "delete_customer", effect: "mutate", inputSchema: { type: "object", properties: { customerId: { type: "string" } }, required: ["customerId"] } },
  { name: "web_grounding", effect: "read", serverSide: true },
];

const POLICIES = `
@id("agents-may-chat") permit (principal in Bedrock::Group::"agents", action in Bedrock::Action::"ModelInvocation", resource);
@id("read-tools") @reason("agents may use tools that only read")
permit (principal in Bedrock::Group::"agents", action in Bedrock::Action::"ToolUse", resource) when { resource.effect == "read" };
@id("small-refunds") @reason("refunds up to 100 only")
permit (principal in Bedrock::Group::"agents", action == Bedrock::Action::"tool:issue_refund", resource)
when { context.phase == "offer" || (context has input && context.input.amount.lessThanOrEqual(decimal("100.0"))) };
`;

const agent = { id: "spiffe://acme.test/agents/billing", groups: ["agents"] };
const toolConfig = (...names: string[]): { tools: never[] } => ({
  tools: names.map((name) =>
    name === "web_grounding"
      ? { systemTool: { name } }
      : { toolSpec: { name, inputSchema: { json: TOOLS.find((t) => t.name === name)?.inputSchema ?? { type: "object", properties: {} } } } },
  ) as never[],
});
const messages = [{ role: "user" as const, content: [{ text: "Refund invoice 4711" }] }];

const records: DecisionRecord[] = [];
const local = useLocalBedrock(records);
function client(options: Partial<GovernanceOptions> = {}) {
  return local.client(createGovernance({ environment: "test", policies: POLICIES, tools: TOOLS, tracerProvider, onDecision: (r) => records.push(r), ...options }));
}

const sentToolNames = (index = 0) =>
  ((local.server.requests[index]?.body as { toolConfig?: { tools: { toolSpec?: { name: string }; systemTool?: { name: string } }[] } }).toolConfig?.tools ?? []).map(
    (t) => t.toolSpec?.name ?? t.systemTool?.name,
  );

describe("least privilege before the call", () => {
  it("the request the endpoint receives lists only the tools the workload may use; the caller's input is untouched", async () => {
    const bedrock = client();
    const input = { modelId: HAIKU, messages, toolConfig: toolConfig("lookup_invoice", "issue_refund", "delete_customer", "wire_money", "web_grounding") };
    const snapshot = structuredClone(input);
    await runAs(agent, () => bedrock.send(new ConverseCommand(input)));
    assert.deepEqual(sentToolNames(), ["lookup_invoice", "issue_refund", "web_grounding"]);
    assert.deepEqual(input, snapshot);
    const [span] = exporter.getFinishedSpans();
    assert.deepEqual(span?.attributes[WARDEN.TOOLS_WITHHELD], ["delete_customer", "wire_money"]);
    assert.deepEqual(span?.attributes[WARDEN.TOOLS_OFFERED], ["lookup_invoice", "issue_refund", "web_grounding"]);
    const withheld = span?.events.filter((e) => e.name === "bedrock_warden.tool_withheld");
    assert.deepEqual(withheld?.map((e) => e.attributes?.["gen_ai.tool.name"]), ["delete_customer", "wire_money"]);
    assert.deepEqual(withheld?.[0]?.attributes?.[WARDEN.DECISION_REASONS], ["no policy permits this request (default deny)"]);
    // The offer decisions are evidence too: in the call's record.
    assert.deepEqual(records[0]?.tools, {
      offered: ["lookup_invoice", "issue_refund", "web_grounding"],
      withheld: [
        { name: "delete_customer", policies: [], reasons: ["no policy permits this request (default deny)"] },
        { name: "wire_money", policies: [], reasons: ["no policy permits this request (default deny)"] },
      ],
    });
  });

  it('toolFiltering "deny" denies the whole call instead, and sends nothing', async () => {
    const bedrock = client({ toolFiltering: "deny" });
    const error = await runAs(agent, () => bedrock.send(new ConverseCommand({ modelId: HAIKU, messages, toolConfig: toolConfig("lookup_invoice", "delete_customer") }))).catch((e: unknown) => e);
    assert.ok(error instanceof AccessDeniedError);
    assert.match(error.message, /delete_customer/);
    assert.equal(local.server.requests.length, 0);
  });

  it("an entry of toolConfig.tools that is not one named toolSpec, systemTool or cachePoint is denied, not sent undecided", async () => {
    const bedrock = client();
    const spec = toolConfig("lookup_invoice").tools[0] as unknown as Record<string, unknown>;
    for (const entry of [
      { ...spec, systemTool: { name: "nova_grounding_evil" } },
      { mysteryTool: { name: "delete_customer" } },
      { toolSpec: { inputSchema: { json: {} } } },
      {},
      null,
    ]) {
      const input = { modelId: HAIKU, messages, toolConfig: { tools: [spec, entry] } };
      await assert.rejects(
        runAs(agent, () => bedrock.send(new ConverseCommand(input as never))),
        (e: unknown) => e instanceof AccessDeniedError && /toolConfig\.tools\[1\] is not one named toolSpec, systemTool or cachePoint/.test(e.message),
        JSON.stringify(entry),
      );
    }
    assert.equal(local.server.requests.length, 0);
    // A cache point offers nothing: it goes as it is. A member left undefined is not set (the SDK does not send it).
    await runAs(agent, () =>
      bedrock.send(new ConverseCommand({ modelId: HAIKU, messages, toolConfig: { tools: [{ ...spec, systemTool: undefined }, { cachePoint: { type: "default" } }] } as never })),
    );
    assert.deepEqual(sentToolNames(), ["lookup_invoice", undefined]);
  });

  it("a toolChoice naming a withheld tool is a clear denial", async () => {
    const bedrock = client();
    const input = { modelId: HAIKU, messages, toolConfig: { ...toolConfig("lookup_invoice", "delete_customer"), toolChoice: { tool: { name: "delete_customer" } } } };
    const error = await runAs(agent, () => bedrock.send(new ConverseCommand(input))).catch((e: unknown) => e);
    assert.ok(error instanceof AccessDeniedError);
    assert.match(error.message, /toolChoice names delete_customer/);
    assert.equal(local.server.requests.length, 0);
  });

  it("InvokeModel: a body offering a tool the workload may not use is denied (it cannot be filtered), in any format", async () => {
    const bedrock = client();
    for (const extra of [{}, { service_tier: "priority" }]) {
      const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 100, messages: [], tools: [{ name: "delete_customer", input_schema: {} }], ...extra });
      await assert.rejects(runAs(agent, () => bedrock.send(new InvokeModelCommand({ modelId: HAIKU, body }))), /cannot be removed/);
    }
    const unreadable = JSON.stringify({ messages: [], max_tokens: 100, tools: [{ spec: "?" }] });
    await assert.rejects(runAs(agent, () => bedrock.send(new InvokeModelCommand({ modelId: HAIKU, body: unreadable }))), /cannot be read/);
    assert.equal(local.server.requests.length, 0);
  });

  it("Converse: provider-specific tools in additionalModelRequestFields are decided too", async () => {
    const bedrock = client();
    const input = (name: string) => ({ modelId: HAIKU, messages, additionalModelRequestFields: { tools: [{ type: "bash_20250124", name }] } });
    await assert.rejects(runAs(agent, () => bedrock.send(new ConverseCommand(input("bash") as never))), /additionalModelRequestFields offers tools this workload may not use: bash/);
    assert.equal(local.server.requests.length, 0);
    await runAs(agent, () => bedrock.send(new ConverseCommand(input("lookup_invoice") as never)));
    assert.equal(local.server.requests.length, 1);
  });
});

describe("every tool call the model asks for is decided", () => {
  it('Converse, toolEnforcement "throw" (default): a denied call throws, with every decision readable', async () => {
    local.server.reply = () => ({
      toolUses: [
        { toolUseId: "t1", name: "lookup_invoice", input: { invoiceId: "4711" } },
        { toolUseId: "t2", name: "issue_refund", input: { invoiceId: "4711", amount: 5000 } },
      ],
      stopReason: "tool_use",
    });
    const bedrock = client();
    const error = await runAs(agent, () => bedrock.send(new ConverseCommand({ modelId: HAIKU, messages, toolConfig: toolConfig("lookup_invoice", "issue_refund") }))).catch((e: unknown) => e);
    assert.ok(error instanceof ToolCallDeniedError, String(error));
    assert.equal(error.toolName, "issue_refund");
    assert.equal(error.toolUseId, "t2");
    const decisions = toolDecisions(error.output as object);
    assert.deepEqual(decisions.map((d) => [d.name, d.decision.effect]), [["lookup_invoice", "allow"], ["issue_refund", "deny"]]);
    // Each tool decision is recorded when it is made; the model call's record when the call ends.
    assert.deepEqual(records.map((r) => [r.command, r.outcome]), [["tool:lookup_invoice", "allowed"], ["tool:issue_refund", "denied"], ["ConverseCommand", "failed"]]);
    assert.equal(records[2]?.error, "ERR_TOOL_CALL_DENIED");
    assert.equal(records[1]?.tool?.toolUseId, "t2");
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.events.filter((e) => e.name === "bedrock_warden.tool_call").length, 2);
    assert.equal(span?.attributes["error.type"], "ERR_TOOL_CALL_DENIED", "as for a stream stopped at a denied call");
  });

  it('Converse, toolEnforcement "result": the call returns and the denial becomes a toolResult to send back', async () => {
    local.server.reply = () => ({ toolUses: [{ toolUseId: "t9", name: "issue_refund", input: { invoiceId: "1", amount: 5000 } }], stopReason: "tool_use" });
    const bedrock = client({ toolEnforcement: "result" });
    const output = await runAs(agent, () => bedrock.send(new ConverseCommand({ modelId: HAIKU, messages, toolConfig: toolConfig("issue_refund") })));
    assert.equal(toolDecisions(output)[0]?.decision.effect, "deny");
    const [result] = deniedToolResults(output);
    assert.equal(result?.toolResult.toolUseId, "t9");
    assert.equal(result?.toolResult.status, "error");
    assert.match(result?.toolResult.content[0]?.text ?? "", /Denied by policy/);
  });

  it("ConverseStream: a tool call assembled from many deltas is decided with its full input; other events flow on", async () => {
    const reason = "x".repeat(300);
    local.server.reply = () => ({ text: "Checking.", toolUses: [{ toolUseId: "s1", name: "issue_refund", input: { invoiceId: "4711", amount: 42.5, note: reason } }], chunkSize: 3 });
    const bedrock = client({ toolEnforcement: "result" });
    const output = await runAs(agent, () => bedrock.send(new ConverseStreamCommand({ modelId: HAIKU, messages, toolConfig: toolConfig("issue_refund") })));
    let deltas = 0;
    for await (const event of output.stream ?? []) if (event.contentBlockDelta?.delta?.toolUse) deltas++;
    assert.ok(deltas > 20, `the input came in ${deltas} deltas`);
    const [decision] = toolDecisions(output);
    assert.equal(decision?.decision.effect, "allow");
    assert.deepEqual(decision?.input, { invoiceId: "4711", amount: 42.5, note: reason });
  });

  it('ConverseStream, "throw": the stream stops at the denied call (the event is withheld, the connection closed)', async () => {
    local.server.reply = () => ({ text: "ok", toolUses: [{ toolUseId: "s2", name: "issue_refund", input: { invoiceId: "1", amount: 999 } }], chunkSize: 4 });
    const bedrock = client();
    await runAs(agent, async () => {
      const output = await bedrock.send(new ConverseStreamCommand({ modelId: HAIKU, messages, toolConfig: toolConfig("issue_refund") }));
      const seen: string[] = [];
      await assert.rejects(async () => {
        for await (const event of output.stream ?? []) seen.push(Object.keys(event)[0]!);
      }, ToolCallDeniedError);
      assert.ok(!seen.includes("messageStop"), "nothing after the denied call is delivered");
    });
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.attributes[WARDEN.STREAM_OUTCOME], "failed");
    assert.equal(span?.attributes["error.type"], "ERR_TOOL_CALL_DENIED");
  });

  it("hostile model output: a tool never offered, malformed input, a duplicate id — each a denial with a reason", async () => {
    local.server.reply = () => ({
      toolUses: [
        { toolUseId: "h1", name: "delete_customer", input: { customerId: "c1" } },
        { toolUseId: "h2", name: "lookup_invoice", input: { invoiceId: 4711 } },
        { toolUseId: "h2", name: "lookup_invoice", input: { invoiceId: "4711" } },
      ],
    });
    const bedrock = client({ toolEnforcement: "result" });
    const output = await runAs(agent, () => bedrock.send(new ConverseCommand({ modelId: HAIKU, messages, toolConfig: toolConfig("lookup_invoice", "delete_customer") })));
    const decisions = toolDecisions(output);
    assert.deepEqual(decisions.map((d) => d.decision.effect), ["deny", "deny", "deny"]);
    assert.match(decisions[0]?.decision.reasons.join() ?? "", /not offered/);
    assert.match(decisions[1]?.decision.reasons.join() ?? "", /input\.invoiceId: expected a string/);
    assert.match(decisions[2]?.decision.reasons.join() ?? "", /duplicate|already/i);
    // h2 was used twice: Bedrock takes one toolResult per id.
    assert.deepEqual(deniedToolResults(output).map((r) => r.toolResult.toolUseId), ["h1", "h2"]);
  });
});

describe("tool calls and their executions are linked evidence", () => {
  it("governTool's execute_tool span is a child of the caller's span and links to the chat span that asked for it", async () => {
    const { trace } = await import("@opentelemetry/api");
    const { governTool } = await import("../src/index.js");
    local.server.reply = (request) =>
      JSON.stringify(request.body).includes("toolResult")
        ? { text: "Invoice 4711 is paid." }
        : { toolUses: [{ toolUseId: "link-1", name: "lookup_invoice", input: { invoiceId: "4711" } }], stopReason: "tool_use" };
    const bedrock = client({ toolEnforcement: "result" });
    let executed = 0;
    const lookup = governTool({ name: "lookup_invoice" }, async (input: { invoiceId: string }) => {
      executed++;
      return { invoiceId: input.invoiceId, status: "paid" };
    }, { governance: bedrock.governance });
    await trace.getTracer("test").startActiveSpan("agent task", async (task) => {
      await runAs(agent, async () => {
        const first = await bedrock.send(new ConverseCommand({ modelId: HAIKU, messages, toolConfig: toolConfig("lookup_invoice") }));
        const [call] = toolDecisions(first);
        assert.equal(call?.decision.effect, "allow");
        await lookup(call!.input as { invoiceId: string }, { toolUseId: call!.toolUseId });
      });
      task.end();
    });
    assert.equal(executed, 1);
    const spans = exporter.getFinishedSpans();
    const chat = spans.find((s) => s.name === `chat ${HAIKU}`);
    const execute = spans.find((s) => s.name === "execute_tool lookup_invoice");
    const taskSpan = spans.find((s) => s.name === "agent task");
    assert.equal(execute?.parentSpanContext?.spanId, taskSpan?.spanContext().spanId, "the caller's span is the parent");
    assert.equal(execute?.links[0]?.context.spanId, chat?.spanContext().spanId, "the link points at the chat span whose response asked");
    assert.deepEqual(records.map((r) => [r.command, r.tool?.phase ?? "-", r.outcome]), [
      ["tool:lookup_invoice", "call", "allowed"],
      ["ConverseCommand", "-", "completed"],
      ["tool:lookup_invoice", "execute", "completed"],
    ]);
  });

  it("a server_tool_use call (run by AWS) is recorded with the decision made when the tool was offered", async () => {
    const { MemoryHandler, jsonResponse } = await import("./support/memory-handler.js");
    const handler = new MemoryHandler(() =>
      jsonResponse({
        output: { message: { role: "assistant", content: [{ toolUse: { toolUseId: "srv-1", name: "web_grounding", input: { query: "x" }, type: "server_tool_use" } }, { text: "done" }] } },
        stopReason: "end_turn",
        usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 },
      }),
    );
    const governance = createGovernance({ environment: "test", policies: POLICIES, tools: TOOLS, tracerProvider, onDecision: (r) => records.push(r) });
    const bedrock = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: { accessKeyId: "a", secretAccessKey: "b" }, requestHandler: handler, governance });
    const output = await runAs(agent, () => bedrock.send(new ConverseCommand({ modelId: HAIKU, messages, toolConfig: toolConfig("web_grounding") })));
    const [call] = toolDecisions(output);
    assert.equal(call?.serverSide, true);
    assert.equal(call?.decision.effect, "allow");
    assert.deepEqual(call?.decision.policies, ["read-tools"]);
    assert.equal(deniedToolResults(output).length, 0);
    assert.ok(records.some((r) => r.command === "tool:web_grounding" && r.outcome === "allowed"));
  });
});

describe("a systemTool asked of the application", () => {
  it("a call without server_tool_use for a tool offered as a systemTool is malformed, denied (AWS runs it; an application tool of that name was never offered)", async () => {
    const { MemoryHandler, jsonResponse } = await import("./support/memory-handler.js");
    const handler = new MemoryHandler(() =>
      jsonResponse({
        output: { message: { role: "assistant", content: [{ toolUse: { toolUseId: "app-1", name: "web_grounding", input: { query: "x" } } }] } },
        stopReason: "tool_use",
        usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 },
      }),
    );
    const governance = createGovernance({ environment: "test", policies: POLICIES, tools: TOOLS, tracerProvider, toolEnforcement: "result" });
    const bedrock = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: { accessKeyId: "a", secretAccessKey: "b" }, requestHandler: handler, governance });
    const output = await runAs(agent, () => bedrock.send(new ConverseCommand({ modelId: HAIKU, messages, toolConfig: toolConfig("web_grounding") })));
    const [call] = toolDecisions(output);
    assert.equal(call?.serverSide, false);
    assert.equal(call?.decision.effect, "deny");
    assert.match(call?.problem ?? "", /asked of the application, but web_grounding was offered as a systemTool/);
  });
});

describe("nothing the policies cannot see goes with an allowed tool call", () => {
  it("a field outside the tool's input schema is a denial, at call and at execution", async () => {
    local.server.reply = () => ({ toolUses: [{ toolUseId: "x1", name: "issue_refund", input: { invoiceId: "1", amount: 50, skipApproval: true } }] });
    const bedrock = client({ toolEnforcement: "result" });
    const output = await runAs(agent, () => bedrock.send(new ConverseCommand({ modelId: HAIKU, messages, toolConfig: toolConfig("issue_refund") })));
    const [call] = toolDecisions(output);
    assert.equal(call?.decision.effect, "deny");
    // Named by its size only: a key is the model's words, and reasons go into records and spans.
    assert.match(call?.decision.reasons.join() ?? "", /input: holds a property not declared in the tool's input schema \(a key of 12 characters\)/);
    assert.doesNotMatch(JSON.stringify(records), /skipApproval/);
    const { governTool } = await import("../src/index.js");
    let ran = 0;
    const refund = governTool({ name: "issue_refund" }, () => ran++, { governance: bedrock.governance });
    await assert.rejects(runAs(agent, () => refund({ invoiceId: "1", amount: 50, skipApproval: true })), /not declared/);
    assert.equal(ran, 0);
  });
});

describe("a stream left before a tool call ends", () => {
  it("the half-delivered tool call is still decided and recorded (a denial: its input never completed)", async () => {
    local.server.reply = () => ({ toolUses: [{ toolUseId: "half-1", name: "issue_refund", input: { invoiceId: "1", amount: 5000, note: "x".repeat(200) } }], chunkSize: 3 });
    const bedrock = client();
    let decisions: readonly { decision: { effect: string } }[] = [];
    await runAs(agent, async () => {
      const output = await bedrock.send(new ConverseStreamCommand({ modelId: HAIKU, messages, toolConfig: toolConfig("issue_refund") }));
      let deltas = 0;
      for await (const event of output.stream ?? []) if (event.contentBlockDelta?.delta?.toolUse && ++deltas === 10) break;
      decisions = toolDecisions(output);
    });
    assert.equal(decisions.length, 1);
    assert.equal(decisions[0]?.decision.effect, "deny");
    assert.ok(records.some((r) => r.command === "tool:issue_refund" && r.outcome === "denied"));
    assert.ok(records.some((r) => r.command === "ConverseStreamCommand" && r.outcome === "abandoned"));
  });

  it("read part-way with next() and dropped: once the stream is garbage collected, its open tool call is decided and recorded too", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    local.server.reply = () => ({ toolUses: [{ toolUseId: "dropped-1", name: "issue_refund", input: { invoiceId: "1", amount: 5000, note: "x".repeat(200) } }], chunkSize: 3 });
    const bedrock = client();
    const before = records.length;
    await runAs(agent, async () => {
      const output = await bedrock.send(new ConverseStreamCommand({ modelId: HAIKU, messages, toolConfig: toolConfig("issue_refund") }));
      const iterator = output.stream![Symbol.asyncIterator]();
      let deltas = 0;
      while (deltas < 10) if ((await iterator.next()).value?.contentBlockDelta?.delta?.toolUse) deltas++;
      // Dropped here: no break, no return() (a timeout race, an exception outside for-await).
    });
    const mine = () => records.slice(before);
    for (let i = 0; i < 30 && !mine().some((r) => r.command === "ConverseStreamCommand"); i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    assert.equal(mine().find((r) => r.command === "ConverseStreamCommand")?.outcome, "abandoned");
    const tool = mine().filter((r) => r.command === "tool:issue_refund");
    assert.equal(tool.length, 1, "one decision for the tool call left open");
    assert.equal(tool[0]?.outcome, "denied");
  });
});

describe("the model's words in errors", () => {
  it("ToolCallDeniedError quotes and escapes the tool name and call id the model chose: no line break or control character of theirs reaches a log raw", () => {
    const decision = {
      effect: "deny" as const,
      principal: 'Bedrock::Workload::"a"',
      action: 'Bedrock::Action::"UndeclaredTool"',
      resource: 'Bedrock::Tool::"x"',
      policies: [],
      reasons: ["the tool was never offered to the model"],
      errors: [],
      policySetVersion: "sha256:test",
    };
    const error = new ToolCallDeniedError(decision, "lookup\nINFO all good\u0007", "tooluse\r\n1", undefined);
    assert.doesNotMatch(error.message, /[\u0000-\u001f]/);
    assert.match(error.message, /^the model asked for "lookup\\nINFO all good\\u0007" \("tooluse\\r\\n1"\), which is denied/);
    assert.equal(error.toolName, "lookup\nINFO all good\u0007", "the field keeps the model's value as it was");
  });
});
