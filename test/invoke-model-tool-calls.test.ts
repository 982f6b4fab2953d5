import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { InvokeModelCommand, InvokeModelWithResponseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { governTool, GovernedBedrockRuntimeClient, runAs, ToolCallDeniedError, toolDecisions } from "../src/index.js";
import { invokeResponseToolCalls, InvokeStreamToolEvents, MAX_TOOL_RESPONSE_BYTES } from "../src/tools/invoke-model-tool-calls.js";
import { agent, anthropicBody, chatBody, chunkStream, exporter, HAIKU, jsonResponse, MISTRAL, NOVA, setup, TOOLS } from "./support/invoke-model.js";

const bytes = (value: unknown) => new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

const anthropicToolStream = (id: string, name: string, parts: string[]) => [
  { type: "message_start", message: { role: "assistant", content: [] } },
  { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
  { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Let me check." } },
  { type: "content_block_stop", index: 0 },
  { type: "content_block_start", index: 1, content_block: { type: "tool_use", id, name, input: {} } },
  ...parts.map((partial_json) => ({ type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json } })),
  { type: "content_block_stop", index: 1 },
  { type: "message_delta", delta: { stop_reason: "tool_use" }, usage: { output_tokens: 9 } },
  { type: "message_stop", "amazon-bedrock-invocationMetrics": { inputTokenCount: 5, outputTokenCount: 9 } },
];

beforeEach(() => exporter.reset());

describe("tool calls in InvokeModel responses, read in every shape a reader takes them from", () => {
  it("Anthropic tool_use blocks, Nova toolUse blocks and chat-completion tool_calls, in order; text-only responses are not parsed", () => {
    const calls = invokeResponseToolCalls(
      bytes({
        content: [{ type: "text", text: "ok" }, { type: "tool_use", id: "a1", name: "lookup_invoice", input: { invoiceId: "INV-1" } }],
        output: { message: { content: [{ toolUse: { toolUseId: "n1", name: "issue_refund", input: { invoiceId: "INV-2", amount: 5 } } }] } },
        choices: [{ message: { tool_calls: [{ id: "c1", type: "function", function: { name: "lookup_invoice", arguments: '{"invoiceId":"INV-3"}' } }] } }],
      }),
    );
    assert.deepEqual(
      calls.map((c) => [c.toolUseId, c.name, c.input, c.problem]),
      [
        ["a1", "lookup_invoice", { invoiceId: "INV-1" }, undefined],
        ["n1", "issue_refund", { invoiceId: "INV-2", amount: 5 }, undefined],
        ["c1", "lookup_invoice", { invoiceId: "INV-3" }, undefined],
      ],
    );
    assert.deepEqual(invokeResponseToolCalls(bytes({ content: [{ type: "text", text: "no tools here" }] })), []);
    assert.deepEqual(invokeResponseToolCalls("not bytes"), []);
  });

  it("output that may hold a tool call but cannot be read faithfully is one malformed call, never none", () => {
    const problems = (body: Uint8Array) => invokeResponseToolCalls(body).map((c) => c.problem);
    assert.match(problems(bytes('{"content":[{"type":"tool_use"')).join(), /may name tool calls but it is not JSON/);
    assert.match(problems(bytes('{"content":[{"type":"tool_use","id":"a","name":"issue_refund","input":{"amount":1,"amount":5000}}]}')).join(), /writes an object key twice/);
    const huge = new Uint8Array(MAX_TOOL_RESPONSE_BYTES + 1).fill(0x20);
    huge.set(bytes('{"tool_use"'), 0);
    assert.match(problems(huge).join(), /larger than/);
    // A body that is not a JSON object (text, image bytes) holds no call a JSON reader takes, whatever bytes it has.
    assert.deepEqual(problems(bytes('\u0089PNG "tool_use" \\u0000')), []);
    // A chat completion's arguments are JSON text of their own: unreadable or a key twice is a malformed call.
    const args = (text: string) => problems(bytes({ choices: [{ message: { tool_calls: [{ id: "c", function: { name: "issue_refund", arguments: text } }] } }] }));
    assert.match(args('{"invoiceId":"x","amount":1,"amount":5000}').join(), /not a JSON object/);
    assert.match(args("{oops").join(), /not a JSON object/);
    // Empty arguments are a tool without arguments: the empty object, as a stream sending no argument text is read.
    const empty = invokeResponseToolCalls(bytes({ choices: [{ message: { tool_calls: [{ id: "c", function: { name: "list_invoices", arguments: "" } }] } }] }));
    assert.deepEqual(empty.map((c) => [c.toolUseId, c.input, c.problem]), [["c", {}, undefined]]);
    assert.match(args(" ").join(), /not a JSON object/, "blank is not empty: not JSON");
    // Cohere's calls carry no id: each is read, and malformed.
    assert.match(problems(bytes({ text: "", tool_calls: [{ name: "issue_refund", parameters: { invoiceId: "x", amount: 1 } }] })).join(), /toolUseId/);
    // A server-side label: read as such (and denied unless offered as a systemTool, which InvokeModel cannot).
    assert.equal(invokeResponseToolCalls(bytes({ content: [{ type: "server_tool_use", id: "s", name: "web_search", input: {} }] }))[0]?.serverSide, true);
  });
});

describe("InvokeModel: each tool call of the response is decided, recorded and remembered", () => {
  const anthropicReply = (content: unknown[]) => () => jsonResponse({ id: "msg", type: "message", role: "assistant", content, stop_reason: "tool_use", usage: { input_tokens: 5, output_tokens: 9 } });

  it('"result": an allowed call, one over the policy\'s limit and one never offered — each decided with its input and recorded', async () => {
    const { client, records, governance } = setup(
      "result",
      anthropicReply([
        { type: "tool_use", id: "t-ok", name: "lookup_invoice", input: { invoiceId: "INV-1" } },
        { type: "tool_use", id: "t-big", name: "issue_refund", input: { invoiceId: "INV-1", amount: 5000 } },
        { type: "tool_use", id: "t-never", name: "wire_money", input: {} },
      ]),
    );
    const output = await runAs(agent, () => client.send(new InvokeModelCommand({ modelId: HAIKU, body: anthropicBody("lookup_invoice", "issue_refund") })));
    assert.deepEqual(
      toolDecisions(output).map((d) => [d.toolUseId, d.decision.effect]),
      [
        ["t-ok", "allow"],
        ["t-big", "deny"],
        ["t-never", "deny"],
      ],
    );
    assert.match(toolDecisions(output)[2]?.decision.reasons.join() ?? "", /wire_money, which was not offered/);
    assert.deepEqual(
      records.filter((r) => r.tool).map((r) => [r.tool?.toolUseId, r.outcome]),
      [
        ["t-ok", "allowed"],
        ["t-big", "denied"],
        ["t-never", "denied"],
      ],
    );
    const span = exporter.getFinishedSpans().find((s) => s.name.startsWith("text_completion"));
    assert.equal(span?.events.filter((e) => e.name === "bedrock_warden.tool_call").length, 3);
    // The denied call stays denied at execution, whatever the execution policy says.
    let ran = 0;
    const refund = governTool({ name: "issue_refund" }, () => ran++, { governance });
    await assert.rejects(runAs(agent, () => refund({ invoiceId: "INV-1", amount: 5 }, { toolUseId: "t-big" })), /t-big to issue_refund was denied/);
    assert.equal(ran, 0);
  });

  it('"throw": the call fails with ToolCallDeniedError naming the first denied call; a response without tool calls passes untouched', async () => {
    let content: unknown[] = [{ type: "tool_use", id: "t-big", name: "issue_refund", input: { invoiceId: "INV-1", amount: 5000 } }];
    const { client, records } = setup("throw", () => anthropicReply(content)());
    await assert.rejects(runAs(agent, () => client.send(new InvokeModelCommand({ modelId: HAIKU, body: anthropicBody("issue_refund") }))), (error: unknown) => error instanceof ToolCallDeniedError && error.toolUseId === "t-big");
    assert.equal(records.find((r) => r.command === "InvokeModelCommand")?.outcome, "failed");
    content = [{ type: "text", text: "no refund needed" }];
    const output = await runAs(agent, () => client.send(new InvokeModelCommand({ modelId: HAIKU, body: anthropicBody("issue_refund") })));
    assert.deepEqual(toolDecisions(output), []);
    assert.match(new TextDecoder().decode(output.body), /no refund needed/);
  });

  it("Nova and chat-completion (Mistral) responses are decided too", async () => {
    let reply: unknown;
    const { client } = setup("result", () => jsonResponse(reply));
    reply = { output: { message: { role: "assistant", content: [{ toolUse: { toolUseId: "n1", name: "issue_refund", input: { invoiceId: "INV-1", amount: 5000 } } }] } }, stopReason: "tool_use" };
    const nova = await runAs(agent, () =>
      client.send(new InvokeModelCommand({ modelId: NOVA, body: JSON.stringify({ messages: [{ role: "user", content: [{ text: "go" }] }], toolConfig: { tools: [{ toolSpec: { name: "issue_refund", inputSchema: { json: TOOLS[1]!.inputSchema } } }] } }) })),
    );
    assert.deepEqual(toolDecisions(nova).map((d) => [d.toolUseId, d.decision.effect]), [["n1", "deny"]]);
    reply = { choices: [{ index: 0, message: { role: "assistant", content: "", tool_calls: [{ id: "m1", function: { name: "issue_refund", arguments: '{"invoiceId":"INV-1","amount":50}' } }] }, finish_reason: "tool_calls" }] };
    const mistral = await runAs(agent, () =>
      client.send(new InvokeModelCommand({ modelId: MISTRAL, body: JSON.stringify({ messages: [{ role: "user", content: "go" }], tools: [{ type: "function", function: { name: "issue_refund", parameters: TOOLS[1]!.inputSchema } }] }) })),
    );
    assert.deepEqual(toolDecisions(mistral).map((d) => [d.toolUseId, d.decision.effect, d.input]), [["m1", "allow", { invoiceId: "INV-1", amount: 50 }]]);
  });
});

describe("InvokeModelWithResponseStream: tool calls decided at their block's end, from each provider's chunks", () => {
  it('Anthropic, "throw": the stream stops at the denied call\'s content_block_stop; the input delivered in pieces is what was decided', async () => {
    const { client, records } = setup("throw", () => chunkStream(anthropicToolStream("t-s1", "issue_refund", ['{"invoiceId":"INV-1",', '"amount":', "5000}"])));
    const seen: string[] = [];
    const error = await runAs(agent, async () => {
      const output = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: HAIKU, body: anthropicBody("issue_refund") }));
      try {
        for await (const event of output.body!) seen.push((JSON.parse(new TextDecoder().decode(event.chunk!.bytes!)) as { type: string }).type);
      } catch (e) {
        return e;
      }
      return undefined;
    });
    assert.ok(error instanceof ToolCallDeniedError && error.toolUseId === "t-s1", String(error));
    assert.equal(seen.filter((t) => t === "content_block_stop").length, 1, "the denied block's stop is withheld");
    assert.ok(!seen.includes("message_stop"));
    const tool = records.filter((r) => r.tool);
    assert.equal(tool.length, 1);
    assert.equal(tool[0]?.outcome, "denied");
  });

  it('Anthropic, "result": every event is delivered and each call decided once; a start carrying input is decided on it', async () => {
    const events = anthropicToolStream("t-s2", "issue_refund", ['{"invoiceId":"INV-1","amount":50}']);
    // A second tool block whose input comes in its start, with no delta: a reader keeps that input.
    events.splice(events.length - 2, 0, { type: "content_block_start", index: 2, content_block: { type: "tool_use", id: "t-s3", name: "issue_refund", input: { invoiceId: "INV-2", amount: 9000 } } }, { type: "content_block_stop", index: 2 });
    const { client } = setup("result", () => chunkStream(events));
    const decisions = await runAs(agent, async () => {
      const output = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: HAIKU, body: anthropicBody("issue_refund") }));
      let count = 0;
      for await (const _ of output.body!) count++;
      assert.equal(count, events.length);
      return toolDecisions(output);
    });
    assert.deepEqual(
      decisions.map((d) => [d.toolUseId, d.decision.effect, d.input]),
      [
        ["t-s2", "allow", { invoiceId: "INV-1", amount: 50 }],
        ["t-s3", "deny", { invoiceId: "INV-2", amount: 9000 }],
      ],
    );
  });

  it("Nova and chat-completion streams; a chunk that is not JSON is a denied call of its own", async () => {
    let events: unknown[] = [];
    const { client } = setup("result", () => chunkStream(events));
    const decide = (modelId: string, body: string) =>
      runAs(agent, async () => {
        const output = await client.send(new InvokeModelWithResponseStreamCommand({ modelId, body }));
        for await (const _ of output.body!) void _;
        return toolDecisions(output).map((d) => [d.toolUseId, d.decision.effect, d.problem]);
      });
    events = [
      { messageStart: { role: "assistant" } },
      { contentBlockStart: { contentBlockIndex: 0, start: { toolUse: { toolUseId: "n1", name: "issue_refund" } } } },
      { contentBlockDelta: { contentBlockIndex: 0, delta: { toolUse: { input: '{"invoiceId":"INV-1","amount":50}' } } } },
      { contentBlockStop: { contentBlockIndex: 0 } },
      { messageStop: { stopReason: "tool_use" } },
    ];
    const novaBody = JSON.stringify({ messages: [], toolConfig: { tools: [{ toolSpec: { name: "issue_refund", inputSchema: { json: TOOLS[1]!.inputSchema } } }] } });
    assert.deepEqual(await decide(NOVA, novaBody), [["n1", "allow", undefined]]);
    const chat = (delta: unknown, finish: string | null = null) => ({ choices: [{ index: 0, delta, finish_reason: finish }] });
    events = [
      chat({ role: "assistant", content: "" }),
      chat({ tool_calls: [{ index: 0, id: "m1", type: "function", function: { name: "issue_refund", arguments: "" } }] }),
      chat({ tool_calls: [{ index: 0, function: { arguments: '{"invoiceId":"INV-1",' } }] }),
      chat({ tool_calls: [{ index: 0, function: { arguments: '"amount":5000}' } }] }),
      chat({}, "tool_calls"),
    ];
    const mistralBody = JSON.stringify({ messages: [], tools: [{ type: "function", function: { name: "issue_refund", parameters: TOOLS[1]!.inputSchema } }] });
    assert.deepEqual(await decide(MISTRAL, mistralBody), [["m1", "deny", undefined]]);
    events = [{ type: "message_start" }, '{"type":"content_block_start","index":0,"content_block":{"type":"tool_use"'];
    const unreadable = await decide(HAIKU, anthropicBody("issue_refund"));
    assert.equal(unreadable.length, 1);
    assert.equal(unreadable[0]?.[1], "deny");
    assert.match(String(unreadable[0]?.[2]), /a stream chunk could not be read \(it is not JSON\)/);
  });
});

describe("as each provider's own reader builds the message (found by review)", () => {
  const readStream = (client: GovernedBedrockRuntimeClient, modelId: string, body: string) =>
    runAs(agent, async () => {
      const output = await client.send(new InvokeModelWithResponseStreamCommand({ modelId, body }));
      for await (const _ of output.body!) void _;
      return toolDecisions(output).map((d) => [d.toolUseId, d.decision.effect, d.problem ?? ""]);
    });
  const chatToolBody = chatBody("issue_refund");

  it("whole calls in a stream chunk: Mistral's choices[].message with stop_reason, Cohere's tool-calls-generation and stream-end", async () => {
    let events: unknown[] = [];
    const { client } = setup("result", () => chunkStream(events));
    events = [
      { choices: [{ index: 0, message: { role: "assistant", content: "" }, stop_reason: null }] },
      { choices: [{ index: 0, message: { role: "assistant", content: "", tool_calls: [{ id: "m1", function: { name: "issue_refund", arguments: '{"invoiceId":"INV-1","amount":5000}' } }] }, stop_reason: "tool_calls" }] },
    ];
    assert.deepEqual(await readStream(client, MISTRAL, chatToolBody), [["m1", "deny", ""]]);
    const call = { name: "issue_refund", parameters: { invoiceId: "INV-1", amount: 5 } };
    events = [
      { is_finished: false, event_type: "tool-calls-generation", text: "", tool_calls: [call] },
      { is_finished: true, event_type: "stream-end", finish_reason: "COMPLETE", response: { text: "", tool_calls: [call] } },
    ];
    const cohere = await readStream(client, "cohere.command-r-plus-v1:0", JSON.stringify({ message: "go", tools: [{ name: "issue_refund", parameter_definitions: {} }] }));
    // Once: stream-end's response repeats the tool-calls-generation event's calls.
    assert.equal(cohere.length, 1);
    assert.ok(cohere.every(([, effect, problem]) => effect === "deny" && /toolUseId/.test(String(problem))), JSON.stringify(cohere));
  });

  it("chat streams: a new call finishes the one before it (as OpenAI's SDK does); another id or name for a call under way is malformed", async () => {
    let events: unknown[] = [];
    const { client } = setup("result", () => chunkStream(events));
    const chat = (delta: unknown, finish: string | null = null) => ({ choices: [{ index: 0, delta, finish_reason: finish }] });
    const refund = (index: number, id: string | null, args: string) => chat({ tool_calls: [{ index, ...(id !== null && { id, function: { name: "issue_refund", arguments: args } }), ...(id === null && { function: { arguments: args } }) }] });
    events = [refund(0, "a", '{"invoiceId":"1","amount":5}'), refund(1, "b", '{"invoiceId":"2",')];
    // No finish_reason: "a" was finished by "b" (and is decided on its whole input), "b" never was.
    assert.deepEqual(
      (await readStream(client, MISTRAL, chatToolBody)).map(([id, effect]) => [id, effect]),
      [
        ["a", "allow"],
        ["b", "deny"],
      ],
    );
    // A continuation repeating the same id is fine; one naming another id makes the call malformed.
    events = [refund(0, "c", '{"invoiceId":"1",'), refund(0, "c", '"amount":5}'), chat({}, "tool_calls")];
    assert.deepEqual((await readStream(client, MISTRAL, chatToolBody)).map(([id, effect]) => [id, effect]), [["c", "allow"]]);
    events = [refund(0, "d", '{"invoiceId":"1",'), refund(0, "e", '"amount":5}'), chat({}, "tool_calls")];
    assert.ok((await readStream(client, MISTRAL, chatToolBody)).every(([, effect]) => effect === "deny"));
    // A call without an index cannot be placed: one malformed call, its continuations with it; another id is another call.
    const unplaced = (id: string | null, args: string) => chat({ tool_calls: [{ ...(id !== null && { id }), function: { ...(id !== null && { name: "issue_refund" }), arguments: args } }] });
    events = [unplaced("u", '{"invoiceId":"1",'), unplaced(null, '"amount":'), unplaced(null, "5}"), unplaced("v", "{}"), chat({}, "tool_calls")];
    const decided = await readStream(client, MISTRAL, chatToolBody);
    assert.deepEqual(decided.map(([id, effect]) => [id, effect]), [["u", "deny"], ["v", "deny"]]);
  });

  it('chat streams: an index is placed as OpenAI\'s SDK places it ("0" is slot 0); one readers may place differently denies the calls under way of its choice', async () => {
    let events: unknown[] = [];
    const { client, governance } = setup("result", () => chunkStream(events));
    const chat = (delta: unknown, finish: string | null = null, index: unknown = 0) => ({ choices: [{ index, delta, finish_reason: finish }] });
    const lookup = chat({ tool_calls: [{ index: 0, id: "c0", type: "function", function: { name: "lookup_invoice", arguments: '{"invoiceId":"INV-1"}' } }] });
    const offered = chatBody("lookup_invoice", "issue_refund");
    const decide = async () => (await readStream(client, MISTRAL, offered)).map(([id, effect]) => [id, effect]);
    events = [lookup, chat({}, "tool_calls")];
    assert.deepEqual(await decide(), [["c0", "allow"]]);
    // "0" and [0] are slot 0 to OpenAI's SDK (list["0"] is list[0]): renaming the call under way there makes it malformed.
    for (const index of ["0", [0]]) {
      events = [lookup, chat({ tool_calls: [{ index, function: { name: "issue_refund" } }] }), chat({}, "tool_calls")];
      const decided = await decide();
      assert.ok(decided.length > 0 && decided.every(([id, effect]) => id === "c0" && effect === "deny"), `${JSON.stringify(index)}: ${JSON.stringify(decided)}`);
    }
    // Indices readers place differently (Python's SDK reads "00" or true as a number, JavaScript's
    // does not): a malformed call, and c0, under way in the same choice, denied with it.
    for (const index of ["00", " 0", true, 0.5, -1, "1e0"]) {
      events = [lookup, chat({ tool_calls: [{ index, function: { arguments: "" } }] }), chat({}, "tool_calls")];
      const decided = await decide();
      assert.ok(decided.some(([id]) => id === "c0") && decided.every(([, effect]) => effect === "deny"), `${JSON.stringify(index)}: ${JSON.stringify(decided)}`);
    }
    // So is a choice index readers may place differently: every call is denied.
    events = [lookup, chat({ tool_calls: [{ index: 0, function: { arguments: "" } }] }, null, "00"), chat({}, "tool_calls")];
    assert.ok((await decide()).every(([, effect]) => effect === "deny"));
    // A call decided already (finished by the next one) is denied too, and governTool will not run it.
    const next = chat({ tool_calls: [{ index: 1, id: "c1", function: { name: "lookup_invoice", arguments: '{"invoiceId":"INV-2"}' } }] });
    events = [lookup, next, chat({ tool_calls: [{ index: "00", function: { name: "issue_refund" } }] }), chat({}, "tool_calls")];
    const decided = await decide();
    assert.deepEqual(decided.slice(0, 1), [["c0", "allow"]], "decided when c1 started");
    assert.ok(decided.some(([id, effect]) => id === "c0" && effect === "deny") && decided.some(([id, effect]) => id === "c1" && effect === "deny"), JSON.stringify(decided));
    const lookupTool = governTool({ name: "lookup_invoice" }, () => "ran", { governance });
    await assert.rejects(runAs(agent, () => lookupTool({ invoiceId: "INV-1" }, { toolUseId: "c0" })), /c0 to lookup_invoice was denied/);
    // A call placed by "1" is the call at slot 1, decided as any other.
    events = [chat({ tool_calls: [{ index: "1", id: "c1", function: { name: "lookup_invoice", arguments: '{"invoiceId":"INV-2"}' } }] }, null, "0"), chat({}, "tool_calls")];
    assert.deepEqual(await decide(), [["c1", "allow"]]);
  });

  it("Anthropic streams: a block whose index is not its place is malformed; a start whose input is too deep to write back is decided on its own id", async () => {
    let events: unknown[] = [];
    const { client } = setup("result", () => chunkStream(events));
    events = [
      { type: "message_start", message: { role: "assistant", content: [] } },
      { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "t1", name: "issue_refund", input: {} } },
      { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: '{"invoiceId":"INV-1","amount":5}' } },
      { type: "content_block_stop", index: 1 },
      { type: "message_stop" },
    ];
    const misplaced = await readStream(client, HAIKU, anthropicBody("issue_refund"));
    assert.ok(misplaced.length > 0 && misplaced.every(([, effect]) => effect === "deny"), JSON.stringify(misplaced));
    const deep = `${'{"a":'.repeat(20_000)}1${"}".repeat(20_000)}`;
    events = [
      { type: "message_start", message: { role: "assistant", content: [] } },
      `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t-deep","name":"issue_refund","input":{"x":${deep}}}}`,
      { type: "content_block_stop", index: 0 },
      { type: "message_stop" },
    ];
    const decided = await readStream(client, HAIKU, anthropicBody("issue_refund"));
    assert.deepEqual(decided.map(([id, effect]) => [id, effect]), [["t-deep", "deny"]]);
    assert.match(String(decided[0]?.[2]), /nested deeper/);
  });

  it('Anthropic streams: an index is read as Anthropic\'s SDK reads it ("0" is block 0); one readers may read differently denies every tool block', async () => {
    let events: unknown[] = [];
    const { client, governance } = setup("result", () => chunkStream(events));
    const start = (index: unknown, id: string) => ({ type: "content_block_start", index, content_block: { type: "tool_use", id, name: "issue_refund", input: {} } });
    const delta = (index: unknown, partial: string) => ({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: partial } });
    const stop = (index: unknown) => ({ type: "content_block_stop", index });
    const message = (...blocks: unknown[]) => [{ type: "message_start", message: { role: "assistant", content: [] } }, ...blocks, { type: "message_stop" }];
    const decide = async () => (await readStream(client, HAIKU, anthropicBody("issue_refund"))).map(([id, effect]) => [id, effect]);
    // The SDK adds the "0" piece to block 0: a refund of 5,000, not 5. So is it decided.
    events = message(start(0, "t1"), delta(0, '{"invoiceId":"INV-1","amount":5'), delta("0", "000"), delta(0, "}"), stop(0));
    assert.deepEqual(await decide(), [["t1", "deny"]]);
    events = message(start(0, "t1"), delta(0, '{"invoiceId":"INV-1","amount":5}'), stop("0"));
    assert.deepEqual(await decide(), [["t1", "allow"]], "a stop at \"0\" is block 0's");
    // "00", -1 (the last block, to JavaScript's `at`), 0.5, true: every tool block is denied, one decided already too.
    for (const index of ["00", -1, 0.5, true]) {
      events = message(start(0, "t1"), delta(0, '{"invoiceId":"INV-1","amount":5}'), stop(0), delta(index, " "));
      const decided = await decide();
      assert.deepEqual(decided[0], ["t1", "allow"], `${JSON.stringify(index)}: decided at its stop`);
      assert.ok(decided.some(([id, effect]) => id === "t1" && effect === "deny"), `${JSON.stringify(index)}: ${JSON.stringify(decided)}`);
    }
    const refund = governTool({ name: "issue_refund" }, () => "ran", { governance });
    await assert.rejects(runAs(agent, () => refund({ invoiceId: "INV-1", amount: 5 }, { toolUseId: "t1" })), /t1 to issue_refund was denied/);
  });

  it('Nova streams: a contentBlockIndex other than a number ("0" too: a Python dict keeps it apart from 0) denies every tool block', async () => {
    let events: unknown[] = [];
    const { client } = setup("result", () => chunkStream(events));
    const body = JSON.stringify({ messages: [], toolConfig: { tools: [{ toolSpec: { name: "issue_refund", inputSchema: { json: TOOLS[1]!.inputSchema } } }] } });
    const start = (index: unknown) => ({ contentBlockStart: { contentBlockIndex: index, start: { toolUse: { toolUseId: "n1", name: "issue_refund" } } } });
    const delta = (index: unknown, input: string) => ({ contentBlockDelta: { contentBlockIndex: index, delta: { toolUse: { input } } } });
    const stop = (index: unknown) => ({ contentBlockStop: { contentBlockIndex: index } });
    const message = (...blocks: unknown[]) => [{ messageStart: { role: "assistant" } }, ...blocks, { messageStop: { stopReason: "tool_use" } }];
    const decide = async () => (await readStream(client, NOVA, body)).map(([id, effect]) => [id, effect]);
    events = message(start(0), delta(0, '{"invoiceId":"INV-1","amount":5}'), stop(0));
    assert.deepEqual(await decide(), [["n1", "allow"]]);
    // A JavaScript reader adds the "0" piece to block 0 (a refund of 5,000), a Python dict does not (5).
    events = message(start(0), delta(0, '{"invoiceId":"INV-1","amount":5'), delta("0", "000"), delta(0, "}"), stop(0));
    let decided = await decide();
    assert.ok(decided.some(([id]) => id === "n1") && decided.every(([, effect]) => effect === "deny"), JSON.stringify(decided));
    // After its stop, a piece for block 0 reaches the call decided in every reader: the call is denied.
    events = message(start(0), delta(0, '{"invoiceId":"INV-1","amount":5}'), stop(0), delta(0, " "));
    decided = await decide();
    assert.deepEqual(decided[0], ["n1", "allow"]);
    assert.ok(decided.some(([id, effect]) => id === "n1" && effect === "deny"), JSON.stringify(decided));
    for (const index of ["00", "0", -1, 0.5, true]) {
      events = message(start(0), delta(0, '{"invoiceId":"INV-1","amount":5}'), stop(0), delta(index, " "));
      const decided = await decide();
      assert.deepEqual(decided[0], ["n1", "allow"], `${JSON.stringify(index)}: decided at its stop`);
      assert.ok(decided.some(([id, effect]) => id === "n1" && effect === "deny"), `${JSON.stringify(index)}: ${JSON.stringify(decided)}`);
    }
  });

  it("a stream that readers may read otherwise denies every call it named, those decided already included, once (found by review)", async () => {
    let events: unknown[] = [];
    const { client } = setup("result", () => chunkStream(events));
    const anthropic = (...blocks: unknown[]) => [{ type: "message_start", message: { role: "assistant", content: [] } }, ...blocks, { type: "message_stop" }];
    const start = { type: "content_block_start", index: 0, content_block: { type: "tool_use", id: "t1", name: "issue_refund", input: {} } };
    const piece = (partial: string, index: unknown = 0) => ({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: partial } });
    const stop = { type: "content_block_stop", index: 0 };
    const refund = piece('{"invoiceId":"INV-1","amount":5}');
    const chat = (delta: unknown, index = 0, extra: object = {}) => ({ choices: [{ index, delta, finish_reason: null, ...extra }] });
    const chatCall = chat({ tool_calls: [{ index: 0, id: "m1", function: { name: "issue_refund", arguments: '{"invoiceId":"INV-1","amount":5}' } }] });
    const nova = { contentBlockStart: { contentBlockIndex: 1, start: { toolUse: { toolUseId: "n1", name: "issue_refund" } } } };
    const cases: [string, string, unknown[], string][] = [
      ["a piece after its block stopped", HAIKU, anthropic(start, refund, stop, piece("0")), "t1"],
      ["a second message_start", HAIKU, [...anthropic(start, refund, stop).slice(0, -1), { type: "message_start", message: { role: "assistant", content: [] } }, { type: "message_stop" }], "t1"],
      ["an event of another format", HAIKU, [...anthropic(start, refund, stop).slice(0, -1), nova, { type: "message_stop" }], "t1"],
      ["two formats in one chunk", HAIKU, anthropic(start, { ...refund, contentBlockDelta: { contentBlockIndex: 0, delta: { toolUse: { input: "0" } } } }, stop), "t1"],
      ["a chunk that is not JSON", HAIKU, [...anthropic(start, refund, stop).slice(0, -1), '{"type":"content_block_delta","index":0,"index":1}'], "t1"],
      ["a chat delta after its call finished", MISTRAL, [chatCall, chat({}, 0, { finish_reason: "tool_calls" }), chat({ tool_calls: [{ index: 0, function: { arguments: " " } }] })], "m1"],
      ["a chat choice with deltas and a whole message", MISTRAL, [chatCall, chat({}, 0, { message: { role: "assistant", content: "" } })], "m1"],
      ["a chat choice before the one before it", MISTRAL, [chatCall, chat({ content: "" }, 2)], "m1"],
      [
        "a whole call, then a delta for its choice (JavaScript's SDK adds it to the call)",
        MISTRAL,
        [{ choices: [{ index: 0, message: { role: "assistant", content: "", tool_calls: [{ id: "w1", function: { name: "issue_refund", arguments: '{"invoiceId":"INV-1","amount":5}' } }] }, stop_reason: null }] }, chat({ tool_calls: [{ index: 0, function: { arguments: "0" } }] })],
        "w1",
      ],
      [
        "a chat choice without an index, naming a call (JavaScript's SDK drops it: 5000, not 5.000)",
        MISTRAL,
        [
          chat({ tool_calls: [{ index: 0, id: "m1", function: { name: "issue_refund", arguments: '{"invoiceId":"INV-1","amount":5' } }] }),
          { choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: "." } }] }, finish_reason: null }] },
          chat({ tool_calls: [{ index: 0, function: { arguments: "000}" } }] }),
          chat({}, 0, { finish_reason: "tool_calls" }),
        ],
        "m1",
      ],
      ["a call named after the stream was lost", MISTRAL, [chat({ content: "" }), "{not json", chatCall], "m1"],
      ["a tool input piece after a start that carried input (Anthropic's newer SDK parses the pieces alone)", HAIKU, anthropic({ ...start, content_block: { ...start.content_block, input: { invoiceId: "INV-1", amount: 5 } } }, piece(""), stop), "t1"],
      ["a call the unreadable chunk starts itself", HAIKU, anthropic({ ...start, index: "00", content_block: { ...start.content_block, id: "t9" } }), "t9"],
      ["a Nova chunk holding two events", NOVA, [{ ...nova, contentBlockDelta: { contentBlockIndex: 1, delta: { toolUse: { input: '{"invoiceId":"INV-1","amount":5000}' } } } }, { contentBlockStop: { contentBlockIndex: 1 } }], "n1"],
      [
        "a second start of a Nova block",
        NOVA,
        [
          nova,
          { contentBlockDelta: { contentBlockIndex: 1, delta: { toolUse: { input: '{"invoiceId":"INV-1","amount":5}' } } } },
          { contentBlockStop: { contentBlockIndex: 1 } },
          { contentBlockStart: { contentBlockIndex: 1, start: { toolUse: { toolUseId: "n2", name: "issue_refund" } } } },
        ],
        "n1",
      ],
    ];
    const novaBody = JSON.stringify({ messages: [], toolConfig: { tools: [{ toolSpec: { name: "issue_refund", inputSchema: { json: TOOLS[1]!.inputSchema } } }] } });
    for (const [label, model, stream, id] of cases) {
      events = stream;
      const body = model === HAIKU ? anthropicBody("issue_refund") : model === NOVA ? novaBody : chatBody("issue_refund");
      const decided = (await readStream(client, model, body)).map(([callId, effect]) => [callId, effect]);
      assert.ok(decided.some(([callId, effect]) => callId === id && effect === "deny"), `${label}: ${JSON.stringify(decided)}`);
      assert.ok(!decided.some(([callId, effect]) => callId === id && effect === "allow") || decided.findIndex(([callId]) => callId === id) < decided.findLastIndex(([callId]) => callId === id), `${label}: denied after its allow`);
    }
    // Once: 300 ambiguous pieces after 10 calls restart the 10 once, not 3,000 times.
    const tools = Array.from({ length: 10 }, (_, i) => [{ type: "content_block_start", index: i, content_block: { type: "tool_use", id: `t${i}`, name: "issue_refund", input: {} } }, piece('{"invoiceId":"INV-1","amount":5}', i), { type: "content_block_stop", index: i }]).flat();
    events = anthropic(...tools, ...Array.from({ length: 300 }, () => piece(" ", "00")));
    const decided = await readStream(client, HAIKU, anthropicBody("issue_refund"));
    assert.ok(decided.length <= 25, `bounded: ${decided.length} decisions`);
    assert.ok(Array.from({ length: 10 }, (_, i) => `t${i}`).every((callId) => decided.some(([id, effect]) => id === callId && effect === "deny")));
  });

  it("a chat stream naming more calls than any response holds: past 1,000, each is a malformed call, none kept", () => {
    const chunks = new InvokeStreamToolEvents();
    const chunk = (index: number) => ({ chunk: { bytes: bytes({ choices: [{ index: 0, delta: { tool_calls: [{ index, id: `c${index}`, function: { name: "lookup_invoice", arguments: "" } }] } }] }) } });
    const starts = Array.from({ length: 1_001 }, (_, i) => chunks.translate(chunk(i)).events.find((e) => (e as { contentBlockStart?: unknown }).contentBlockStart) as { contentBlockStart: { contentBlockIndex: number } });
    assert.equal(starts[999]?.contentBlockStart.contentBlockIndex, 999);
    assert.equal(starts[1_000]?.contentBlockStart.contentBlockIndex, -1);
  });

  it("bodies: null tool_calls is a text answer; escapes, a byte order mark and the legacy function_call are read", () => {
    assert.deepEqual(invokeResponseToolCalls(bytes({ choices: [{ message: { role: "assistant", content: "hello", tool_calls: null }, finish_reason: "stop" }] })), []);
    const escaped = invokeResponseToolCalls(bytes('{"content":[{"type":"tool\\u005fuse","id":"t1","name":"issue_refund","input":{"invoiceId":"INV-1","amount":5000}}]}'));
    assert.deepEqual(escaped.map((c) => c.toolUseId), ["t1"]);
    assert.deepEqual(invokeResponseToolCalls(bytes("\u00e9t\\u00e9 is summer")), [], "escapes in a body that is not JSON: nothing to read");
    const bom = invokeResponseToolCalls(bytes(`\ufeff${JSON.stringify({ content: [{ type: "tool_use", id: "t2", name: "lookup_invoice", input: { invoiceId: "1" } }] })}`));
    assert.deepEqual(bom.map((c) => [c.toolUseId, c.problem]), [["t2", undefined]]);
    const legacy = invokeResponseToolCalls(bytes({ choices: [{ message: { function_call: { name: "issue_refund", arguments: '{"invoiceId":"1","amount":5}' } } }] }));
    assert.equal(legacy.length, 1);
    assert.match(legacy[0]?.problem ?? "", /toolUseId/);
  });
});
