/**
 * InvokeModel tool calls as provider readers take them: every call a reader (Anthropic's SDK
 * accumulating a message, OpenAI's stream accumulating chat calls, Cohere's events) hands the
 * application is denied, or decided under its own id, name and input — with streams whose events
 * come out of order, in shapes mixed together, or in chunks that cannot be read faithfully.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { invokeResponseToolCalls } from "../src/tools/invoke-model-tool-calls.js";
import { anthropicBody, chatBody, chunkStream, COHERE, cohereBody, GPTOSS, HAIKU, invokeStream, setup } from "./support/invoke-model.js";

type Ev = Record<string, any>;

/** What @anthropic-ai/sdk's MessageStream#accumulateMessage builds (start pushed in order, deltas applied at content.at(index), input replaced by the parse of the deltas' own buffer). */
function anthropicSdkToolCalls(chunks: Ev[]): [string, string, unknown][] {
  let snapshot: Ev | undefined;
  for (const e of chunks) {
    if (e.type === "message_start") snapshot = structuredClone(e.message);
    else if (e.type === "content_block_start") snapshot!.content.push(structuredClone(e.content_block));
    else if (e.type === "content_block_delta" && e.delta.type === "input_json_delta") {
      const block = snapshot!.content.at(e.index);
      if (block && (block.type === "tool_use" || block.type === "server_tool_use")) {
        block.__buf = (block.__buf ?? "") + e.delta.partial_json;
        if (block.__buf) block.input = JSON.parse(block.__buf);
      }
    }
  }
  return snapshot!.content.filter((b: Ev) => b.type === "tool_use").map((b: Ev) => [b.id, b.name, b.input]);
}

/** Every call the SDK hands the application is denied, or decided under its own id, name and input. */
function assertEveryReaderCallDecided(readerCalls: [string, string, unknown][], decisions: readonly Ev[]) {
  for (const [id, name, input] of readerCalls) {
    const mine = decisions.filter((d) => d.toolUseId === id);
    const allowed = mine.filter((d) => d.decision.effect === "allow");
    assert.ok(mine.length > 0, `the reader's call ${id} (${name} ${JSON.stringify(input)}) has no decision under its id; decisions: ${JSON.stringify(decisions.map((d) => [d.toolUseId, d.name, d.decision.effect, d.input]))}`);
    for (const d of allowed) assert.deepEqual([d.name, d.input], [name, input], `${id} stands allowed for another call than the one the reader runs`);
  }
}

describe("Anthropic: a tool_use block in message_start is assembled like a started one", () => {
  const events = [
    { type: "message_start", message: { role: "assistant", content: [{ type: "tool_use", id: "X", name: "issue_refund", input: { invoiceId: "INV-1", amount: 5 } }] } },
    { type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: '{"invoiceId":"INV-1","amount":5000}' } },
    { type: "content_block_stop", index: 0 },
    { type: "message_delta", delta: { stop_reason: "tool_use" } },
    { type: "message_stop" },
  ];
  it('"result": deltas that rewrite its input (amount 5 → 5000, as the SDK applies them) leave it denied, never allowed on the first input', async () => {
    const { client } = setup("result", () => chunkStream(events));
    const { chunks, decisions } = await invokeStream(client, HAIKU, anthropicBody("issue_refund"));
    const reader = anthropicSdkToolCalls(chunks as Ev[]);
    assert.deepEqual(reader, [["X", "issue_refund", { invoiceId: "INV-1", amount: 5000 }]]);
    assertEveryReaderCallDecided(reader, decisions as unknown as Ev[]);
  });
});

describe("Anthropic: after a chunk that cannot be read (a key written twice), where later blocks sit is unknown", () => {
  const VOID = { name: "void_invoice", effect: "mutate", inputSchema: { type: "object", properties: { invoiceId: { type: "string" } }, required: ["invoiceId"] } };
  const LOOKUP = { name: "lookup_invoice", effect: "read", inputSchema: { type: "object", properties: { invoiceId: { type: "string" } }, required: ["invoiceId"] } };
  const policies = `
permit (principal in Bedrock::Group::"billing", action in Bedrock::Action::"ModelInvocation", resource);
permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"tool:lookup_invoice", resource);
permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"tool:void_invoice", resource)
when { context.phase == "offer" || (context has input && context.input.invoiceId == "INV-TEST") };
`;
  const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 256, messages: [{ role: "user", content: "hi" }], tools: [VOID, LOOKUP].map((t) => ({ name: t.name, input_schema: t.inputSchema })) });
  const events: (Ev | string)[] = [
    { type: "message_start", message: { role: "assistant", content: [] } },
    '{"type":"content_block_start","index":0,"index":0,"content_block":{"type":"tool_use","id":"A","name":"void_invoice","input":{}}}',
    { type: "content_block_start", index: 0, content_block: { type: "tool_use", id: "B", name: "lookup_invoice", input: {} } },
    { type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: '{"invoiceId":"INV-1"}' } },
    { type: "content_block_stop", index: 0 },
    { type: "message_delta", delta: { stop_reason: "tool_use" } },
    { type: "message_stop" },
  ];
  it('"result": the unreadable start\'s call and every later one are denied under their own ids (the SDK would place the deltas on the first)', async () => {
    const { client } = setup("result", () => chunkStream(events), { tools: [VOID, LOOKUP], policies });
    const { chunks, decisions } = await invokeStream(client, HAIKU, body);
    const reader = anthropicSdkToolCalls(chunks as Ev[]);
    assert.deepEqual(reader, [["A", "void_invoice", { invoiceId: "INV-1" }], ["B", "lookup_invoice", {}]]);
    assertEveryReaderCallDecided(reader, decisions as unknown as Ev[]);
  });
});

describe("chat completions: a streamed legacy delta.function_call (OpenAI's ChatCompletionStream accumulates it) is read", () => {
  const chat = (delta: unknown, finish_reason: string | null = null) => ({ choices: [{ index: 0, delta, finish_reason }] });
  const events = [
    chat({ role: "assistant", content: null, function_call: { name: "issue_refund", arguments: "" } }),
    chat({ function_call: { arguments: '{"invoiceId":"INV-1","amount":5000}' } }),
    chat({}, "function_call"),
  ];
  it('"throw": the stream must not deliver the whole over-limit call without an error', async () => {
    const { client } = setup("throw", () => chunkStream(events));
    const { error, decisions } = await invokeStream(client, GPTOSS, chatBody("issue_refund"));
    assert.ok(error !== undefined, `no error; decisions: ${JSON.stringify(decisions)}`);
  });
  it('"result": the call gets a (deny) decision', async () => {
    const { client } = setup("result", () => chunkStream(events));
    const { decisions } = await invokeStream(client, GPTOSS, chatBody("issue_refund"));
    assert.equal(decisions.length, 1);
  });
});

describe("every stream shape a chunk holds is read, whichever else it holds", () => {
  it("a chat-completion chunk that also has a `type` key: its delta.tool_calls are decided", async () => {
    const events = [{ type: "chat.completion.chunk", choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: "c1", type: "function", function: { name: "issue_refund", arguments: '{"invoiceId":"INV-1","amount":5000}' } }] }, finish_reason: "tool_calls" }] }];
    const { client } = setup("throw", () => chunkStream(events));
    const { error, decisions } = await invokeStream(client, GPTOSS, chatBody("issue_refund"));
    assert.ok(error !== undefined || decisions.length > 0, "the call was delivered with no decision");
  });
  it('Converse-shaped (Nova) events beside "choices": null are decided', async () => {
    const events = [
      { contentBlockStart: { contentBlockIndex: 0, start: { toolUse: { toolUseId: "n1", name: "issue_refund" } } }, choices: null },
      { contentBlockDelta: { contentBlockIndex: 0, delta: { toolUse: { input: '{"invoiceId":"INV-1","amount":5000}' } } }, choices: null },
      { contentBlockStop: { contentBlockIndex: 0 }, choices: null },
    ];
    const { client } = setup("throw", () => chunkStream(events));
    const { error, decisions } = await invokeStream(client, "amazon.nova-pro-v1:0", JSON.stringify({ messages: [{ role: "user", content: [{ text: "go" }] }], toolConfig: { tools: [{ toolSpec: { name: "issue_refund", inputSchema: { json: { type: "object" } } } }] } }));
    assert.ok(error !== undefined || decisions.length > 0, "the call was delivered with no decision");
  });
});

describe("Cohere streams: stream-end's response repeats the tool-calls-generation event's calls", () => {
  const call = { name: "issue_refund", parameters: { invoiceId: "INV-1", amount: 5 } };
  const events = [
    { is_finished: false, event_type: "stream-start", generation_id: "g" },
    { is_finished: false, event_type: "tool-calls-generation", text: "", tool_calls: [call] },
    { is_finished: true, event_type: "stream-end", finish_reason: "COMPLETE", response: { text: "", tool_calls: [call] } },
  ];
  it('"result": one call, one decision (and one record)', async () => {
    const { client, records } = setup("result", () => chunkStream(events));
    const { decisions } = await invokeStream(client, COHERE, cohereBody("issue_refund"));
    assert.equal(decisions.length, 1, `decisions: ${decisions.length}, tool records: ${records.filter((r) => r.tool).length}`);
  });
});

describe('"throw": one chunk with two chat calls, the first denied', () => {
  it("both calls of the withheld chunk are decided (as whole calls in one chunk are)", async () => {
    const events = [
      {
        choices: [
          {
            index: 0,
            delta: {
              tool_calls: [
                { index: 0, id: "c0", type: "function", function: { name: "issue_refund", arguments: '{"invoiceId":"INV-1","amount":5000}' } },
                { index: 1, id: "c1", type: "function", function: { name: "lookup_invoice", arguments: '{"invoiceId":"INV-1"}' } },
              ],
            },
            finish_reason: "tool_calls",
          },
        ],
      },
    ];
    const { client, records } = setup("throw", () => chunkStream(events));
    const { error, decisions } = await invokeStream(client, GPTOSS, chatBody("issue_refund", "lookup_invoice"));
    assert.ok(error !== undefined);
    assert.deepEqual(decisions.map((d) => d.toolUseId).sort(), ["c0", "c1"], `tool records: ${records.filter((r) => r.tool).length}`);
  });
});

describe("a body that is not a JSON object (raw image bytes) is not read for tool calls, whatever its size or bytes", () => {
  it("9 MiB of random bytes holds no tool call any reader would take", () => {
    const body = randomBytes(9 * 1024 * 1024);
    body[0] = 0x89; // PNG-like, never '{'
    assert.ok(body.includes(Buffer.from("\\u")), "(random 9 MiB contains \\u with overwhelming probability)");
    assert.deepEqual(invokeResponseToolCalls(new Uint8Array(body)).map((c) => c.problem), []);
  });
});
