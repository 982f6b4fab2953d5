import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { ContentBlock, ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime";
import {
  DEFAULT_TOOL_CALL_LIMITS,
  STREAM_ENDED_PROBLEM,
  ToolCallAssembler,
  toolCallsOfMessage,
  type AssembledToolCall,
  type ToolCallLimits,
  type ToolCallRequest,
} from "../src/tools/tool-calls.js";
import { ConfigurationError } from "../src/errors.js";

// ---------------------------------------------------------------------------------------------
// Event builders

type Ev = ConverseStreamOutput | Record<string, unknown>;

function start(index: unknown, toolUseId: unknown, name: unknown, type?: string): Ev {
  const toolUse: Record<string, unknown> = { toolUseId, name };
  if (type !== undefined) toolUse["type"] = type;
  return { contentBlockStart: { contentBlockIndex: index, start: { toolUse } } };
}
function delta(index: unknown, input: unknown): Ev {
  return { contentBlockDelta: { contentBlockIndex: index, delta: { toolUse: { input } } } };
}
function text(index: number, value: string): Ev {
  return { contentBlockDelta: { contentBlockIndex: index, delta: { text: value } } };
}
function stop(index: unknown): Ev {
  return { contentBlockStop: { contentBlockIndex: index } };
}

/** Runs a whole stream: the calls `accept` returned, then those `finish` returned. */
function run(events: readonly Ev[], limits?: ToolCallLimits): { calls: AssembledToolCall[]; finished: AssembledToolCall[] } {
  const assembler = new ToolCallAssembler(limits);
  const calls: AssembledToolCall[] = [];
  for (const event of events) {
    const call = assembler.accept(event);
    if (call !== undefined) calls.push(call);
  }
  return { calls, finished: assembler.finish() };
}

/** One tool block, well formed, its input in one delta. */
function toolBlock(index: number, toolUseId: unknown, name: unknown, input: string, type?: string): Ev[] {
  return [start(index, toolUseId, name, type), delta(index, input), stop(index)];
}

function only<T>(items: readonly T[]): T {
  assert.equal(items.length, 1, `expected exactly one item, got ${items.length}`);
  return items[0] as T;
}

function nested(depth: number): string {
  // depth objects: {"a":{"a":...{}}}
  return '{"a":'.repeat(depth - 1) + "{}" + "}".repeat(depth - 1);
}

function messageWith(...blocks: unknown[]): unknown[] {
  return blocks;
}
function toolUseBlock(toolUseId: unknown, name: unknown, input: unknown, type?: string): ContentBlock | Record<string, unknown> {
  const toolUse: Record<string, unknown> = { toolUseId, name, input };
  if (type !== undefined) toolUse["type"] = type;
  return { toolUse };
}

// ---------------------------------------------------------------------------------------------
// Problems common to both paths: one row, checked through a stream and through a whole message.

interface Row {
  title: string;
  toolUseId?: unknown;
  name?: unknown;
  /** The input as JSON text. */
  input: string;
  limits?: ToolCallLimits;
  problem: RegExp | undefined;
}

const rows: Row[] = [
  { title: "a plain object input is fine", input: '{"city":"Paris"}', problem: undefined },
  { title: "input is an array", input: "[1,2]", problem: /^tool input is not a JSON object \(got an array\)$/ },
  { title: "input is a string", input: '"rm -rf /"', problem: /not a JSON object \(got a string\)/ },
  { title: "input is a number", input: "42", problem: /not a JSON object \(got a number\)$/ },
  { title: "input is null", input: "null", problem: /not a JSON object \(got null\)/ },
  { title: "input is a boolean", input: "true", problem: /not a JSON object \(got a boolean\)/ },
  { title: "name missing", name: undefined, input: "{}", problem: /^tool name is missing$/ },
  { title: "name null", name: null, input: "{}", problem: /^tool name is missing$/ },
  { title: "name empty", name: "", input: "{}", problem: /^tool name is empty$/ },
  { title: "name not a string", name: 42, input: "{}", problem: /^tool name is not a string$/ },
  { title: "name an object", name: { toString: () => "search" }, input: "{}", problem: /^tool name is not a string$/ },
  { title: "toolUseId missing", toolUseId: undefined, input: "{}", problem: /^toolUseId is missing$/ },
  { title: "toolUseId empty", toolUseId: "", input: "{}", problem: /^toolUseId is empty$/ },
  { title: "toolUseId not a string", toolUseId: 7, input: "{}", problem: /^toolUseId is not a string$/ },
  { title: "toolUseId too long", toolUseId: "t".repeat(257), input: "{}", problem: /^toolUseId is longer than 256/ },
  { title: "toolUseId with a newline", toolUseId: "t1\nforged log line", input: "{}", problem: /^toolUseId contains control/ },
  { title: "name of 256 characters is fine", name: "n".repeat(256), input: "{}", problem: undefined },
  { title: "name of 257 characters", name: "n".repeat(257), input: "{}", problem: /^tool name is longer than 256 characters \(257\)$/ },
  { title: "name with NUL", name: "read\u0000file", input: "{}", problem: /^tool name contains control or invisible characters$/ },
  { title: "name with a newline", name: "read_file\n", input: "{}", problem: /contains control/ },
  { title: "name with DEL", name: "read\u007ffile", input: "{}", problem: /contains control/ },
  { title: "name with a C1 control", name: "read\u0085file", input: "{}", problem: /contains control/ },
  { title: "name with a bidi override", name: "read_\u202eelif", input: "{}", problem: /contains control/ },
  { title: "name with a zero-width space", name: "read\u200bfile", input: "{}", problem: /contains control/ },
  { title: "name with a lone surrogate", name: "read\ud800file", input: "{}", problem: /contains control/ },
  { title: "name with non-ASCII letters is fine", name: "météo_天気", input: "{}", problem: undefined },
  { title: "nested 64 deep is fine", input: nested(64), problem: undefined },
  { title: "nested 65 deep", input: nested(65), problem: /^tool input is nested deeper than 64 levels$/ },
  { title: "arrays count as levels", input: `{"a":${"[".repeat(64)}${"]".repeat(64)}}`, problem: /nested deeper than 64/ },
  { title: "custom depth limit", input: nested(4), limits: { maxDepth: 3 }, problem: /nested deeper than 3 levels/ },
  { title: "input at the size limit is fine", input: '{"k":"' + "x".repeat(24) + '"}', limits: { maxInputBytes: 32 }, problem: undefined },
  { title: "input over the size limit", input: '{"k":"' + "x".repeat(25) + '"}', limits: { maxInputBytes: 32 }, problem: /^input larger than 32 bytes$/ },
  { title: "size counts UTF-8 bytes", input: '{"k":"' + "é".repeat(13) + '"}', limits: { maxInputBytes: 32 }, problem: /^input larger than 32 bytes$/ },
];

describe("problems common to both paths", () => {
  for (const row of rows) {
    const toolUseId = "toolUseId" in row ? row.toolUseId : "tooluse_1";
    const name = "name" in row ? row.name : "get_weather";
    const inputIsObject = row.problem === undefined || !/JSON object|nested|larger/.test(row.problem.source);

    it(`stream: ${row.title}`, () => {
      const { calls, finished } = run(toolBlock(3, toolUseId, name, row.input), row.limits);
      assert.deepEqual(finished, []);
      const call = only(calls);
      assert.equal(call.index, 3);
      if (row.problem === undefined) {
        assert.equal(call.problem, undefined);
        assert.deepEqual(call.input, JSON.parse(row.input));
      } else {
        assert.match(call.problem ?? "", row.problem);
        if (!inputIsObject) assert.equal(call.input, undefined);
      }
      assert.equal(call.inputBytes, Buffer.byteLength(row.input));
      if (typeof name === "string" && name.length <= 256) assert.equal(call.name, name);
      if (typeof toolUseId === "string" && toolUseId.length <= 256) assert.equal(call.toolUseId, toolUseId);
    });

    it(`message: ${row.title}`, () => {
      const content = messageWith({ text: "Let me check." }, toolUseBlock(toolUseId, name, JSON.parse(row.input)));
      const call = only(toolCallsOfMessage(content, row.limits));
      assert.equal(call.index, 1);
      assert.equal(call.serverSide, false);
      if (row.problem === undefined) {
        assert.equal(call.problem, undefined);
        assert.deepEqual(call.input, JSON.parse(row.input));
        assert.equal(call.inputBytes, Buffer.byteLength(JSON.stringify(JSON.parse(row.input))));
      } else {
        assert.match(call.problem ?? "", row.problem);
        if (!inputIsObject) assert.equal(call.input, undefined);
      }
    });
  }

  it("duplicate toolUseId in one response (stream)", () => {
    const { calls } = run([...toolBlock(1, "t1", "a", "{}"), ...toolBlock(2, "t2", "b", "{}"), ...toolBlock(3, "t1", "c", '{"x":1}')]);
    assert.equal(calls.length, 3);
    assert.equal(calls[0]?.problem, undefined);
    assert.equal(calls[1]?.problem, undefined);
    assert.equal(calls[2]?.problem, "duplicate toolUseId (first used by content block 1)");
    assert.deepEqual(calls[2]?.input, { x: 1 }, "the input itself was fine and is kept for the record");
  });

  it("duplicate toolUseId in one response (message)", () => {
    const calls = toolCallsOfMessage([toolUseBlock("t1", "a", {}), { text: "and" }, toolUseBlock("t1", "a", {})]);
    assert.equal(calls.length, 2);
    assert.equal(calls[0]?.problem, undefined);
    assert.equal(calls[1]?.problem, "duplicate toolUseId (first used by content block 0)");
    assert.equal(calls[1]?.index, 2);
  });

  it("ids are remembered per response: a new assembler (or finish) starts over", () => {
    const assembler = new ToolCallAssembler();
    for (const e of toolBlock(0, "t1", "a", "{}")) assembler.accept(e);
    assert.deepEqual(assembler.finish(), []);
    const again = toolBlock(0, "t1", "a", "{}").map((e) => assembler.accept(e));
    assert.equal(again[2]?.problem, undefined);
  });

  it("tool names are case-sensitive and never normalized", () => {
    const { calls } = run([...toolBlock(0, "t1", "Search", "{}"), ...toolBlock(1, "t2", "search", "{}"), ...toolBlock(2, "t3", "SEARCH\u0130", "{}")]);
    assert.deepEqual(
      calls.map((c) => [c.name, c.problem]),
      [
        ["Search", undefined],
        ["search", undefined],
        ["SEARCH\u0130", undefined],
      ],
    );
    const fromMessage = toolCallsOfMessage([toolUseBlock("t1", "Search", {}), toolUseBlock("t2", "search", {})]);
    assert.deepEqual(fromMessage.map((c) => c.name), ["Search", "search"]);
  });

  it("server-side tools are marked (stream and message)", () => {
    const { calls } = run([...toolBlock(0, "s1", "web_search", '{"q":"x"}', "server_tool_use"), ...toolBlock(1, "t1", "mine", "{}")]);
    assert.deepEqual(calls.map((c) => c.serverSide), [true, false]);
    const fromMessage = toolCallsOfMessage([toolUseBlock("s1", "web_search", { q: "x" }, "server_tool_use"), toolUseBlock("t1", "mine", {}, "other")]);
    assert.deepEqual(fromMessage.map((c) => c.serverSide), [true, false]);
  });

  it("more tool calls than maxToolCalls (both paths)", () => {
    const events = [0, 1, 2].flatMap((i) => toolBlock(i, `t${i}`, "a", "{}"));
    const { calls } = run(events, { maxToolCalls: 2 });
    assert.deepEqual(calls.map((c) => c.problem), [undefined, undefined, "more than 2 tool calls in one response"]);
    const fromMessage = toolCallsOfMessage([0, 1, 2].map((i) => toolUseBlock(`t${i}`, "a", {})), { maxToolCalls: 2 });
    assert.deepEqual(fromMessage.map((c) => c.problem), [undefined, undefined, "more than 2 tool calls in one response"]);
  });

  it("several problems are all reported", () => {
    const { calls } = run(toolBlock(0, "", 42, "[]"));
    assert.equal(only(calls).problem, "toolUseId is empty; tool name is not a string; tool input is not a JSON object (got an array)");
  });
});

// ---------------------------------------------------------------------------------------------

describe("stream-only problems", () => {
  const table: { title: string; events: Ev[]; limits?: ToolCallLimits; problems: (string | RegExp)[]; finished?: (string | RegExp)[] }[] = [
    { title: "malformed JSON", events: toolBlock(0, "t1", "a", '{"a":1,}'), problems: ["tool input is not valid JSON"] },
    { title: "garbage", events: toolBlock(0, "t1", "a", "}{"), problems: ["tool input is not valid JSON"] },
    { title: "two values", events: toolBlock(0, "t1", "a", '{"a":1}{"b":2}'), problems: ["tool input is not valid JSON"] },
    { title: "truncated object", events: toolBlock(0, "t1", "a", '{"a":'), problems: ["tool input is truncated JSON"] },
    { title: "truncated string", events: toolBlock(0, "t1", "a", '{"a":"xy'), problems: ["tool input is truncated JSON"] },
    { title: "truncated number", events: toolBlock(0, "t1", "a", '{"a":1'), problems: ["tool input is truncated JSON"] },
    { title: "truncated escape", events: toolBlock(0, "t1", "a", '{"a":"\\u12'), problems: ["tool input is truncated JSON"] },
    { title: "a number too large for a double", events: toolBlock(0, "t1", "a", '{"n":1e999}'), problems: ["tool input contains a non-finite number"] },
    { title: "whitespace only", events: toolBlock(0, "t1", "a", "  "), problems: ["tool input is truncated JSON"] },
    { title: "a key written twice", events: toolBlock(0, "t1", "a", '{"amount":1000,"amount":1}'), problems: ["tool input writes an object key twice"] },
    { title: "a key written twice, once escaped", events: toolBlock(0, "t1", "a", '{"amount":1000, "\\u0061mount" :1}'), problems: ["tool input writes an object key twice"] },
    {
      title: "a key written twice in a nested object",
      events: toolBlock(0, "t1", "a", '{"items":[{"sku":"a"},{"sku":"b","qty":1,"sku":"c"}]}'),
      problems: ["tool input writes an object key twice"],
    },
    { title: "__proto__ written twice", events: toolBlock(0, "t1", "a", '{"__proto__":1,"__proto__":{"admin":true}}'), problems: ["tool input writes an object key twice"] },
    {
      title: "delta for a block never started",
      events: [delta(4, '{"a":1}'), stop(4)],
      problems: ["tool input for content block 4, which was never started"],
    },
    {
      title: "tool delta inside a text block",
      events: [text(0, "hi"), delta(0, '{"a":1}'), stop(0)],
      problems: ["tool input for content block 0, which was not started as a tool use"],
    },
    {
      title: "tool delta after its block stopped",
      events: [...toolBlock(0, "t1", "a", "{}"), delta(0, "{}"), stop(0)],
      problems: [/^$/, "tool input for content block 0, which was never started"],
    },
    { title: "stop for an unknown index", events: [stop(9)], problems: ["contentBlockStop for content block 9, which is not open"] },
    {
      title: "stop twice",
      events: [...toolBlock(2, "t1", "a", "{}"), stop(2)],
      problems: [/^$/, "contentBlockStop for content block 2, which is not open"],
    },
    {
      title: "text delta inside a tool block (the caller would get input the decision never saw)",
      events: [start(1, "t1", "a"), delta(1, '{"invoiceId":"X","amount":1'), text(1, ',"amount":1000'), delta(1, "}"), stop(1)],
      problems: ["a delta that is not tool input inside the tool use block 1"],
    },
    {
      title: "start for an index already open (tool)",
      events: [start(1, "t1", "a"), delta(1, '{"x":'), start(1, "t2", "b"), delta(1, "{}"), stop(1)],
      problems: ["contentBlockStart for content block 1, which is already open", "contentBlockStart for content block 1, which is already open"],
    },
    {
      title: "start for an index open as text",
      events: [text(1, "hi"), start(1, "t2", "b"), delta(1, "{}"), stop(1)],
      problems: ["contentBlockStart for content block 1, which is already open"],
    },
    {
      title: "other start over an open tool block",
      events: [start(1, "t1", "a"), delta(1, "{}"), { contentBlockStart: { contentBlockIndex: 1, start: { image: {} } } }, stop(1)],
      problems: ["contentBlockStart for content block 1, which is already open"],
    },
    { title: "never stopped", events: [start(0, "t1", "a"), delta(0, '{"a":1}')], problems: [], finished: [STREAM_ENDED_PROBLEM] },
    {
      title: "orphan never stopped",
      events: [delta(5, "{}")],
      problems: [],
      finished: ["tool input for content block 5, which was never started; " + STREAM_ENDED_PROBLEM],
    },
    {
      title: "input over the limit in many chunks",
      events: [start(0, "t1", "a"), ...Array.from({ length: 20 }, () => delta(0, "xxxx")), stop(0)],
      limits: { maxInputBytes: 10 },
      problems: ["input larger than 10 bytes"],
    },
    {
      title: "non-string input chunk",
      events: [start(0, "t1", "a"), delta(0, "{"), delta(0, 7), delta(0, 8), delta(0, "}"), stop(0)],
      problems: ["tool input delta is not a string (got a number)"],
    },
    {
      title: "toolUse delta that is not an object",
      events: [start(0, "t1", "a"), { contentBlockDelta: { contentBlockIndex: 0, delta: { toolUse: "{}" } } }, stop(0)],
      problems: ["toolUse delta is not an object"],
    },
    {
      title: "start toolUse that is not an object",
      events: [{ contentBlockStart: { contentBlockIndex: 0, start: { toolUse: "x" } } }, delta(0, "{}"), stop(0)],
      problems: ["toolUse is not an object (got a string)"],
    },
    { title: "start without an index", events: [start(undefined, "t1", "a")], problems: ["contentBlockStart without a valid contentBlockIndex"] },
    { title: "start with a negative index", events: [start(-1, "t1", "a")], problems: [/without a valid contentBlockIndex/] },
    { title: "start with a fractional index", events: [start(1.5, "t1", "a")], problems: [/without a valid contentBlockIndex/] },
    { title: "start with a string index", events: [start("1", "t1", "a")], problems: [/without a valid contentBlockIndex/] },
    { title: "delta without an index", events: [delta(null, "{}")], problems: ["tool input delta without a valid contentBlockIndex"] },
    { title: "stop without an index", events: [stop(Number.NaN)], problems: ["contentBlockStop without a valid contentBlockIndex"] },
    { title: "contentBlockStart not an object", events: [{ contentBlockStart: 5 }], problems: ["contentBlockStart is not an object (got a number)"] },
    {
      title: "too many open blocks",
      events: [start(0, "t0", "a"), start(1, "t1", "a"), start(2, "t2", "a"), delta(2, "{}"), stop(0), stop(1), stop(2)],
      limits: { maxOpenBlocks: 2 },
      // The refused start is reported at once; its later events are those of a block never started.
      problems: [
        "more than 2 content blocks open at once",
        "tool input for content block 2, which was never started",
        /^$/,
        /^$/,
        "contentBlockStop for content block 2, which is not open",
      ],
    },
  ];

  for (const row of table) {
    it(row.title, () => {
      const { calls, finished } = run(row.events, row.limits);
      assert.equal(calls.length, row.problems.length, JSON.stringify(calls));
      row.problems.forEach((expected, i) => {
        const call = calls[i] as AssembledToolCall;
        if (expected instanceof RegExp) assert.match(call.problem ?? "", expected);
        else assert.equal(call.problem, expected);
        // Problems with the call's identity or framing keep an input that was itself fine.
        if (call.problem !== undefined && !/already open|duplicate|toolUse is not an object/.test(call.problem)) assert.equal(call.input, undefined);
      });
      assert.deepEqual(
        finished.map((c) => c.problem),
        row.finished ?? [],
      );
      for (const call of finished) assert.equal(call.input, undefined);
    });
  }

  it("a key repeated in different objects, or a colon or quote inside a string, is not a key written twice", () => {
    const texts = [
      '{"sku":"a","items":[{"sku":"b"},{"sku":"c","note":"sku\\":1"}],"x":{"sku":{"sku":0}}}',
      '{ "a" : "b:" , "c\\"" : "\\\\" , "d\\\\" : [ "e" , "f:" ] }',
      JSON.stringify({ a: { b: [{ a: 1, b: 2 }], c: "\"\\:" }, "\u2028": 1, "\ud83d": "x" }, null, 2),
    ];
    for (const text of texts) {
      const { calls } = run(toolBlock(0, "t1", "a", text));
      assert.equal(only(calls).problem, undefined, text);
      assert.deepEqual(only(calls).input, JSON.parse(text));
    }
  });

  it("a tool without input streams no delta: its input is {}", () => {
    const { calls } = run([start(0, "t1", "now"), stop(0)]);
    assert.deepEqual(only(calls), { toolUseId: "t1", name: "now", input: {}, index: 0, serverSide: false, inputBytes: 0 });
  });

  it("a tool block started twice yields both calls; the second one parses its own input", () => {
    const { calls } = run([start(1, "t1", "a"), delta(1, '{"x":'), start(1, "t2", "b"), delta(1, '{"y":2}'), stop(1)]);
    assert.deepEqual(
      calls.map((c) => [c.toolUseId, c.input]),
      [
        ["t1", undefined],
        ["t2", { y: 2 }],
      ],
    );
  });

  it("endMessage ends the tool blocks still open as malformed calls, once: a late stop for one is absorbed", () => {
    const assembler = new ToolCallAssembler();
    for (const event of [start(0, "t1", "a"), delta(0, '{"x":1}'), text(1, "hi"), start(2, "t2", "b")]) assert.equal(assembler.accept(event), undefined);
    const ended = assembler.endMessage();
    assert.deepEqual(
      ended.map((c) => [c.toolUseId, c.input, c.problem]),
      [
        ["t1", undefined, "the message ended while the tool use block 0 was still open"],
        ["t2", undefined, "the message ended while the tool use block 2 was still open"],
      ],
    );
    assert.deepEqual(assembler.endMessage(), [], "nothing is ended twice");
    assert.equal(assembler.accept(stop(0)), undefined, "the late stop makes no call of its own");
    assert.deepEqual(assembler.finish(), []);
  });

  it("ignores what is not a content block event, and never throws on hostile events", () => {
    const assembler = new ToolCallAssembler();
    const hostile = Object.defineProperty({}, "contentBlockDelta", {
      get() {
        throw new Error("boom");
      },
    });
    const proxy = new Proxy(
      {},
      {
        get() {
          throw new Error("trap");
        },
      },
    );
    const ignored: unknown[] = [undefined, null, 0, "x", [], {}, { messageStart: { role: "assistant" } }, { messageStop: { stopReason: "tool_use" } }, { metadata: {} }, { contentBlockDelta: null }, { contentBlockDelta: { contentBlockIndex: 0 } }];
    for (const event of ignored) assert.equal(assembler.accept(event), undefined, JSON.stringify(event));
    assert.equal(assembler.accept(hostile)?.problem, "stream event could not be read");
    assert.equal(assembler.accept(proxy)?.problem, "stream event could not be read");
    assert.equal(assembler.accept({ contentBlockStop: 0 })?.problem, "contentBlockStop without a valid contentBlockIndex");
  });

  it("text blocks (which have no contentBlockStart) stop quietly", () => {
    const { calls, finished } = run([text(0, "Hello"), text(0, " there"), stop(0), { contentBlockDelta: { contentBlockIndex: 1, delta: { reasoningContent: { text: "hmm" } } } }, stop(1)]);
    assert.deepEqual(calls, []);
    assert.deepEqual(finished, []);
  });

  it("rejects invalid limits with a ConfigurationError that names the option", () => {
    for (const bad of [{ maxInputBytes: 0 }, { maxDepth: -1 }, { maxOpenBlocks: 1.5 }, { maxToolCalls: Number.NaN }, { maxInputBytes: "1" }]) {
      assert.throws(() => new ToolCallAssembler(bad as ToolCallLimits), (e: unknown) => e instanceof ConfigurationError && /tool call limits\.max\w+: must be a positive integer/.test(e.message));
      assert.throws(() => toolCallsOfMessage([], bad as ToolCallLimits), ConfigurationError);
    }
    assert.throws(() => new ToolCallAssembler(null as unknown as ToolCallLimits), ConfigurationError);
    assert.deepEqual(DEFAULT_TOOL_CALL_LIMITS, { maxInputBytes: 1048576, maxDepth: 64, maxOpenBlocks: 16, maxToolCalls: 1000 });
  });
});

// ---------------------------------------------------------------------------------------------

describe("message-only cases", () => {
  it("content that is not an array gives no calls; other blocks are skipped", () => {
    for (const content of [undefined, null, 0, "x", {}, { toolUse: { toolUseId: "t", name: "n", input: {} } }]) {
      assert.deepEqual(toolCallsOfMessage(content), []);
    }
    assert.deepEqual(toolCallsOfMessage([null, 1, "x", { text: "t" }, { reasoningContent: {} }, { toolResult: {} }, { toolUse: undefined }]), []);
  });

  it("reads a real Converse output", () => {
    const content: ContentBlock[] = [
      { text: "I'll look it up." },
      { toolUse: { toolUseId: "tooluse_a", name: "lookup", input: { id: 7, tags: ["x", "ü"], deep: { ok: true, none: null } } } },
      { toolUse: { toolUseId: "srv_1", name: "web_grounding", input: { query: "q" }, type: "server_tool_use" } },
    ];
    const calls = toolCallsOfMessage(content);
    assert.deepEqual(calls, [
      { toolUseId: "tooluse_a", name: "lookup", input: content[1]?.toolUse?.input, index: 1, serverSide: false, inputBytes: Buffer.byteLength(JSON.stringify(content[1]?.toolUse?.input)) },
      { toolUseId: "srv_1", name: "web_grounding", input: { query: "q" }, index: 2, serverSide: true, inputBytes: 13 },
    ]);
    assert.equal(calls[0]?.input, content[1]?.toolUse?.input, "the output's own object, not a copy");
  });

  const cycle: Record<string, unknown> = { a: 1 };
  cycle["self"] = cycle;
  const sparse: unknown[] = [];
  sparse.length = 2 ** 31;
  const table: { title: string; input: unknown; problem: string | RegExp }[] = [
    { title: "input missing", input: undefined, problem: "tool input is not a JSON object (got a undefined)" },
    { title: "a Date", input: new Date(0), problem: /not a JSON object \(got an object\)/ },
    { title: "a Map", input: new Map(), problem: /not a JSON object/ },
    { title: "nested Date", input: { when: new Date(0) }, problem: "tool input is not JSON (it contains an object that is not a plain object or array)" },
    { title: "undefined value", input: { a: undefined }, problem: "tool input is not JSON (it contains a undefined)" },
    { title: "function value", input: { a: () => 1 }, problem: "tool input is not JSON (it contains a function)" },
    { title: "bigint value", input: { a: 1n }, problem: "tool input is not JSON (it contains a bigint)" },
    { title: "NaN", input: { a: Number.NaN }, problem: "tool input contains a non-finite number" },
    { title: "Infinity in an array", input: { a: [1, Infinity] }, problem: /non-finite number/ },
    { title: "a cycle", input: cycle, problem: "tool input is nested deeper than 64 levels" },
    { title: "a huge sparse array", input: { a: sparse }, problem: "input larger than 1048576 bytes" },
    { title: "a hole in an array", input: { a: [1, , 3] }, problem: /contains a undefined/ },
  ];
  for (const row of table) {
    it(row.title, () => {
      const call = only(toolCallsOfMessage([toolUseBlock("t1", "a", row.input)]));
      if (row.problem instanceof RegExp) assert.match(call.problem ?? "", row.problem);
      else assert.equal(call.problem, row.problem);
      assert.equal(call.input, undefined);
    });
  }

  it("a toolUse that is not an object", () => {
    const call = only(toolCallsOfMessage([{ toolUse: null }]));
    assert.equal(call.problem, "toolUse is not an object (got null)");
    assert.equal(call.input, undefined);
  });

  it("a shared subtree is counted each time it is written (no exponential blow-up)", () => {
    let node: unknown = { leaf: "x".repeat(100) };
    for (let i = 0; i < 40; i++) node = { l: node, r: node }; // 2^40 leaves when serialized
    const started = performance.now();
    const call = only(toolCallsOfMessage([toolUseBlock("t1", "a", node)]));
    assert.equal(call.problem, "input larger than 1048576 bytes");
    assert.equal(call.inputBytes, 1048577);
    assert.ok(performance.now() - started < 1000);
  });

  it("never throws on hostile blocks", () => {
    const throwing = Object.defineProperty({}, "toolUse", {
      get() {
        throw new Error("boom");
      },
    });
    const throwingInput = { toolUse: Object.defineProperty({ toolUseId: "t1", name: "a" }, "input", { get: () => { throw new Error("boom"); } }) };
    const calls = toolCallsOfMessage([throwing, throwingInput]);
    assert.deepEqual(calls.map((c) => [c.index, c.problem, c.input]), [
      [0, "tool use block could not be read", undefined],
      [1, "tool use block could not be read", undefined],
    ]);
    assert.equal(calls[1]?.toolUseId, "t1");
  });
});

// ---------------------------------------------------------------------------------------------
// Chunking

/** Splits `s` into chunks of 1-3 UTF-16 code units, deterministically from `seed`. */
function chop(s: string, seed: number): string[] {
  const chunks: string[] = [];
  let x = seed >>> 0 || 1;
  for (let i = 0; i < s.length; ) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const n = 1 + ((x >>> 0) % 3);
    chunks.push(s.slice(i, i + n));
    i += n;
  }
  return chunks;
}

describe("assembling from small deltas", () => {
  const original = {
    city: "Zürich",
    note: "naïve café — 東京 🗼 and emoji 😀👍🏽 family 👨‍👩‍👧",
    escapes: "quote \" backslash \\ newline \n tab \t nul \u0000 \u2028",
    list: [1, -2.5e-7, true, false, null, { nested: ["🎉", { deeper: "𝄞" }] }],
    empty: {},
    "key with 😀": "",
  };
  const json = JSON.stringify(original, null, 1);

  for (const seed of [1, 2, 3, 42, 1234, 99999]) {
    it(`1-3 character chunks split inside surrogate pairs (seed ${seed})`, () => {
      const chunks = chop(json, seed);
      assert.ok(chunks.some((c) => /[\ud800-\udbff]$/.test(c)), "some chunk ends inside a surrogate pair");
      assert.equal(chunks.join(""), json);
      const { calls } = run([start(0, "t1", "a"), ...chunks.map((c) => delta(0, c)), stop(0)]);
      const call = only(calls);
      assert.equal(call.problem, undefined);
      assert.deepEqual(call.input, original);
      assert.equal(call.inputBytes, Buffer.byteLength(json));
    });
  }

  it("every split point of a string of astral characters counts bytes exactly", () => {
    const s = '{"a":"😀😀x😀"}';
    for (let i = 0; i <= s.length; i++) {
      for (let j = i; j <= s.length; j++) {
        const { calls } = run([start(0, "t1", "a"), delta(0, s.slice(0, i)), delta(0, ""), delta(0, s.slice(i, j)), delta(0, s.slice(j)), stop(0)]);
        assert.equal(only(calls).inputBytes, Buffer.byteLength(s));
        assert.deepEqual(only(calls).input, { a: "😀😀x😀" });
      }
    }
  });

  it("interleaved text blocks and two tool blocks at different indexes", () => {
    const first = { path: "/tmp/ä.txt", mode: "r" };
    const second = { query: "SELECT 1", params: [1, "🐘"] };
    const a = chop(JSON.stringify(first), 7);
    const b = chop(JSON.stringify(second), 8);
    const events: Ev[] = [{ messageStart: { role: "assistant" } }, text(0, "I will "), start(1, "tu_read", "read_file"), text(0, "read and "), start(3, "tu_sql", "query_db")];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (i < a.length) events.push(delta(1, a[i]));
      if (i % 4 === 0) events.push(text(0, "…"), text(2, "x"));
      if (i < b.length) events.push(delta(3, b[i]));
    }
    events.push(stop(0), stop(3), stop(2), stop(1), { messageStop: { stopReason: "tool_use" } }, { metadata: { usage: { inputTokens: 1, outputTokens: 2 } } });
    const { calls, finished } = run(events);
    assert.deepEqual(finished, []);
    assert.deepEqual(calls, [
      { toolUseId: "tu_sql", name: "query_db", input: second, index: 3, serverSide: false, inputBytes: Buffer.byteLength(JSON.stringify(second)) },
      { toolUseId: "tu_read", name: "read_file", input: first, index: 1, serverSide: false, inputBytes: Buffer.byteLength(JSON.stringify(first)) },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Memory

describe("memory is bounded", () => {
  it("50 MiB of deltas for one block with a 1 MiB limit keeps at most 1 MiB", () => {
    const limit = 1024 * 1024;
    const assembler = new ToolCallAssembler({ maxInputBytes: limit });
    const chunk = "a".repeat(64 * 1024);
    const chunks = (50 * 1024 * 1024) / chunk.length;
    assert.equal(assembler.accept(start(0, "t1", "upload")), undefined);
    assert.equal(assembler.accept(delta(0, '{"data":"')), undefined);
    let maxRetained = 0;
    for (let i = 0; i < chunks; i++) {
      assert.equal(assembler.accept(delta(0, chunk)), undefined);
      maxRetained = Math.max(maxRetained, assembler.bufferedLength);
      assert.ok(assembler.bufferedLength <= limit);
    }
    assert.ok(maxRetained > limit - chunk.length, "it did keep input up to the limit");
    assert.equal(assembler.bufferedLength, 0, "the kept text is released once the limit is passed");
    assembler.accept(delta(0, '"}'));
    const call = assembler.accept(stop(0));
    assert.equal(call?.problem, `input larger than ${limit} bytes`);
    assert.equal(call?.input, undefined);
    assert.equal(call?.inputBytes, 50 * 1024 * 1024 + 11);
    assert.equal(assembler.bufferedLength, 0);
  });

  it("many open blocks each keep at most the limit; total at most maxOpenBlocks × maxInputBytes", () => {
    const limits = { maxInputBytes: 1000, maxOpenBlocks: 4 };
    const assembler = new ToolCallAssembler(limits);
    for (let i = 0; i < 10; i++) assembler.accept(start(i, `t${i}`, "a"));
    assert.equal(assembler.openBlockCount, 4);
    for (let round = 0; round < 100; round++) {
      for (let i = 0; i < 10; i++) assembler.accept(delta(i, "x".repeat(37)));
      assert.ok(assembler.bufferedLength <= 4 * 1000);
    }
    // 6 more orphan deltas per round had nowhere to go: each was reported, none kept.
    assert.equal(assembler.openBlockCount, 4);
    const finished = assembler.finish();
    assert.equal(finished.length, 4);
    assert.equal(assembler.bufferedLength, 0);
    assert.equal(assembler.openBlockCount, 0);
  });

  it("a large input in 1-character deltas assembles (linear concatenation)", () => {
    const value = { blob: "y".repeat(512 * 1024) };
    const json = JSON.stringify(value);
    const assembler = new ToolCallAssembler();
    assembler.accept(start(0, "t1", "a"));
    for (let i = 0; i < json.length; i++) assembler.accept(delta(0, json[i]));
    assert.equal(assembler.bufferedLength, json.length);
    const call = assembler.accept(stop(0));
    assert.deepEqual(call?.input, value);
    assert.equal(assembler.bufferedLength, 0);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

interface Spec {
  kind: "tool" | "text";
  index: number;
  toolUseId: string;
  name: string;
  serverSide: boolean;
  input: Record<string, unknown>;
  json: string;
  chunks: string[];
}

const inputArb = fc.dictionary(fc.string({ unit: "binary", maxLength: 6 }), fc.jsonValue({ maxDepth: 3, stringUnit: "binary" }), { maxKeys: 5 }) as fc.Arbitrary<
  Record<string, unknown>
>;
const cutsArb = fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 40 });

/** A well-formed stream: blocks at distinct indexes, optionally interleaved, each chunked at random. */
const streamArb = fc
  .array(
    fc.record({
      kind: fc.constantFrom("tool" as const, "tool" as const, "text" as const),
      name: fc.stringMatching(/^[a-zA-Z0-9_-]{1,20}$/),
      serverSide: fc.boolean(),
      input: inputArb,
      cuts: cutsArb,
      pretty: fc.boolean(),
    }),
    { maxLength: 6 },
  )
  .chain((blocks) =>
    fc.record({
      blocks: fc.constant(blocks),
      order: fc.shuffledSubarray(
        blocks.flatMap((_, b) => Array.from({ length: 50 }, () => b)),
        { minLength: blocks.length * 50, maxLength: blocks.length * 50 },
      ),
    }),
  )
  .map(({ blocks, order }) => {
    const specs: Spec[] = blocks.map((b, i) => {
      const json = b.kind === "text" ? "some text 😀" : JSON.stringify(b.input, null, b.pretty ? 2 : undefined);
      const chunks: string[] = [];
      for (let at = 0, k = 0; at < json.length; k++) {
        const n = b.cuts[k % b.cuts.length] as number;
        chunks.push(json.slice(at, at + n));
        at += n;
      }
      return { kind: b.kind, index: i, toolUseId: `tooluse_${i}`, name: b.name, serverSide: b.serverSide, input: b.input, json, chunks };
    });
    // Interleave: each block's events stay in order, blocks mix according to `order`.
    const queues: Ev[][] = specs.map((s) => [
      ...(s.kind === "tool" ? [start(s.index, s.toolUseId, s.name, s.serverSide ? "server_tool_use" : undefined)] : []),
      ...s.chunks.map((c) => (s.kind === "tool" ? delta(s.index, c) : text(s.index, c))),
      stop(s.index),
    ]);
    const events: Ev[] = [{ messageStart: { role: "assistant" } }];
    for (const b of order) {
      const next = queues[b]?.shift();
      if (next) events.push(next);
    }
    for (const q of queues) events.push(...q);
    events.push({ messageStop: { stopReason: "tool_use" } });
    return { specs, events };
  });

const randomIndex = fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constantFrom(-1, 1.5, "2", null, undefined));
const garbageEvent: fc.Arbitrary<Ev> = fc.oneof(
  fc.record({ i: randomIndex, id: fc.oneof(fc.constantFrom("g1", "g2", "tooluse_0"), fc.anything()), name: fc.anything() }).map(({ i, id, name }) => start(i, id, name)),
  fc.record({ i: randomIndex, s: fc.oneof(fc.string({ unit: "binary", maxLength: 5 }), fc.constantFrom("{", "}", '"', "\ud83d", "\ude00", "[", ","), fc.anything()) }).map(({ i, s }) => delta(i, s)),
  randomIndex.map((i) => stop(i)),
  fc.record({ i: randomIndex, s: fc.string() }).map(({ i, s }) => ({ contentBlockDelta: { contentBlockIndex: i, delta: { text: s } } })),
  fc.anything().map((x) => x as Ev),
  fc.anything().map((x) => ({ contentBlockStart: x })),
  fc.anything().map((x) => ({ contentBlockDelta: x })),
);
const mutationArb = fc.oneof(
  fc.record({ op: fc.constant("drop" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("duplicate" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("swap" as const), at: fc.nat(), to: fc.nat() }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), event: garbageEvent }),
);

function mutate(events: readonly Ev[], mutations: readonly { op: string; at: number; to?: number; event?: Ev }[]): Ev[] {
  const out = [...events];
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % out.length;
    if (m.op === "drop") out.splice(at, 1);
    else if (m.op === "duplicate" && out.length > 0) out.splice(at, 0, out[at] as Ev);
    else if (m.op === "swap" && out.length > 0) {
      const to = (m.to ?? 0) % out.length;
      [out[at], out[to]] = [out[to] as Ev, out[at] as Ev];
    } else if (m.op === "insert") out.splice(at, 0, m.event as Ev);
  }
  return out;
}

function isPlainObject(value: unknown): boolean {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The start events' ids, as the assembler reads them (only well-formed, valid ids). */
function startedId(event: Ev): string | undefined {
  if (typeof event !== "object" || event === null) return undefined;
  const s = (event as { contentBlockStart?: { start?: { toolUse?: { toolUseId?: unknown } } } }).contentBlockStart;
  if (typeof s !== "object" || s === null) return undefined;
  const toolUse = typeof s.start === "object" && s.start !== null ? s.start.toolUse : undefined;
  if (toolUse === undefined) return undefined;
  const id = typeof toolUse === "object" && toolUse !== null ? toolUse.toolUseId : undefined;
  return typeof id === "string" && id.length > 0 && id.length <= 256 && !/[\p{Cc}\p{Cf}\p{Cs}]/u.test(id) ? id : "";
}

function indexOf(event: Ev, key: string): unknown {
  if (typeof event !== "object" || event === null) return undefined;
  const body = (event as Record<string, unknown>)[key];
  return typeof body === "object" && body !== null ? (body as { contentBlockIndex?: unknown }).contentBlockIndex : undefined;
}

describe("properties", () => {
  it("a well-formed stream, chunked at random and interleaved, gives back the original calls with no problem", () => {
    fc.assert(
      fc.property(streamArb, ({ specs, events }) => {
        const { calls, finished } = run(events);
        assert.deepEqual(finished, []);
        const tools = specs.filter((s) => s.kind === "tool");
        assert.equal(calls.length, tools.length);
        // Calls come in the order their blocks stopped.
        const stopOrder = events.flatMap((e) => ("contentBlockStop" in e ? [indexOf(e, "contentBlockStop")] : [])).filter((i) => specs[i as number]?.kind === "tool");
        assert.deepEqual(calls.map((c) => c.index), stopOrder);
        for (const call of calls) {
          const spec = specs[call.index] as Spec;
          assert.deepEqual(call, {
            toolUseId: spec.toolUseId,
            name: spec.name,
            input: JSON.parse(spec.json),
            index: spec.index,
            serverSide: spec.serverSide,
            inputBytes: Buffer.byteLength(spec.json),
          });
        }
      }),
      { numRuns: 1500 },
    );
  });

  it("mutated and garbage streams: never throws, one call per tool start, unparsable input always has a problem", () => {
    fc.assert(
      fc.property(
        streamArb,
        fc.array(mutationArb, { maxLength: 8 }),
        fc.record({ maxInputBytes: fc.integer({ min: 1, max: 300 }), maxOpenBlocks: fc.constant(16) }, { requiredKeys: [] }),
        ({ events }, mutations, limits) => {
          const mutated = mutate(events, mutations);
          const assembler = new ToolCallAssembler(limits);
          const max = (limits.maxInputBytes ?? DEFAULT_TOOL_CALL_LIMITS.maxInputBytes) * 16;
          const calls: AssembledToolCall[] = [];
          // The text each index received since its last start, to judge each result independently.
          const received = new Map<number, string>();
          const startedIds = new Map<string, number>();
          const check = (call: AssembledToolCall, textOf: string | undefined) => {
            calls.push(call);
            if (call.problem === undefined) {
              assert.ok(isPlainObject(call.input), "a call with no problem has an object input");
              assert.ok(call.toolUseId !== "" && call.name !== "");
            }
            if (call.input !== undefined) assert.ok(isPlainObject(call.input));
            if (call.toolUseId === "") assert.notEqual(call.problem, undefined);
            if (textOf === undefined || textOf === "") return;
            let parsed: unknown;
            let parses = true;
            try {
              parsed = JSON.parse(textOf);
            } catch {
              parses = false;
            }
            if (!parses || !isPlainObject(parsed)) {
              assert.notEqual(call.problem, undefined, `no problem for ${JSON.stringify(textOf)}`);
              assert.equal(call.input, undefined);
            } else if (call.input !== undefined) {
              assert.deepEqual(call.input, parsed);
            }
          };
          for (const event of mutated) {
            const id = startedId(event);
            if (id !== undefined && id !== "") startedIds.set(id, (startedIds.get(id) ?? 0) + 1);
            const call = assembler.accept(event);
            assert.ok(assembler.bufferedLength <= max);
            const startIndex = indexOf(event, "contentBlockStart");
            const stopIndex = indexOf(event, "contentBlockStop");
            const deltaBody = typeof event === "object" && event !== null ? (event as { contentBlockDelta?: unknown }).contentBlockDelta : undefined;
            // A call returned at a stop is judged against the text its index received since its start.
            if (call !== undefined) check(call, call.index >= 0 && call.index === stopIndex ? received.get(call.index) : undefined);
            if (typeof startIndex === "number") received.set(startIndex, "");
            if (typeof stopIndex === "number") received.delete(stopIndex);
            if (typeof deltaBody === "object" && deltaBody !== null) {
              const i = (deltaBody as { contentBlockIndex?: unknown }).contentBlockIndex;
              const d = (deltaBody as { delta?: unknown }).delta;
              const toolUse = typeof d === "object" && d !== null ? (d as { toolUse?: unknown }).toolUse : undefined;
              const input = typeof toolUse === "object" && toolUse !== null ? (toolUse as { input?: unknown }).input : undefined;
              if (typeof i === "number" && typeof input === "string") received.set(i, (received.get(i) ?? "") + input);
            }
          }
          for (const call of assembler.finish()) {
            check(call, undefined);
            assert.equal(call.input, undefined);
            assert.match(call.problem ?? "", /stream ended before the tool input was complete$/);
          }
          // Every start of a tool block yields exactly one call, however the stream was damaged.
          for (const [id, count] of startedIds) {
            assert.equal(calls.filter((c) => c.toolUseId === id).length, count, `calls for ${id}`);
          }
          assert.equal(assembler.bufferedLength, 0);
          assert.equal(assembler.openBlockCount, 0);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("toolCallsOfMessage: inputBytes is the size of JSON.stringify, and any content never throws", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const call = only(toolCallsOfMessage([{ toolUse: { toolUseId: "t", name: "n", input } }]));
        assert.equal(call.problem, undefined);
        assert.equal(call.input, input);
        assert.equal(call.inputBytes, Buffer.byteLength(JSON.stringify(input)));
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withMap: true, withSet: true, withBigInt: true, withDate: true, withSparseArray: true, maxDepth: 4 }), (anything) => {
        const calls: ToolCallRequest[] = toolCallsOfMessage([anything, { toolUse: anything }, { toolUse: { toolUseId: "t", name: "n", input: anything } }]);
        for (const call of calls) if (call.input === undefined) assert.notEqual(call.problem, undefined);
      }),
      { numRuns: 1000 },
    );
  });
});
