/**
 * Property-based tests (fast-check) of tool-call governance over generated model outputs and
 * streams, through the real SDK pipeline: a GovernedBedrockRuntimeClient whose in-memory request
 * handler answers each Converse call with a generated JSON reply and each ConverseStream call with
 * generated event-stream frames. Model output is untrusted: whatever it holds, the client never
 * crashes, never allows what it should not, decides each tool call exactly once, and (in "result"
 * mode) turns each denial into one error toolResult. The expected decisions come from an
 * independent reference (test/support/tool-reference.ts), never from src/.
 *
 * Each property also runs pinned examples first (edge cases and shrunk failing seeds). The
 * "regressions" tests at the end are minimal repros of a bug the properties found (a model labelling
 * an application tool's call as run by AWS got the offer decision, without its input), kept so that
 * it stays fixed.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import fc from "fast-check";
import { ConverseCommand, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { HttpResponse } from "@smithy/protocol-http";
import { exporter, tracerProvider } from "./support/tracing.js";
import { eventStreamResponse, frame } from "./support/event-stream.js";
import { CREDENTIALS, HAIKU } from "./support/governance.js";
import { MemoryHandler } from "./support/memory-handler.js";
import {
  AccessDeniedError,
  createGovernance,
  deniedToolResults,
  GovernedBedrockRuntimeClient,
  runAs,
  toolDecisions,
  ToolCallDeniedError,
  type DecisionRecord,
  type ToolCallDecision,
  type ToolDefinition,
} from "../src/index.js";
import {
  CANDIDATES,
  converseCalls,
  expectedEffect,
  OFFERABLE,
  POLICIES,
  streamCalls,
  SYSTEM_TOOLS,
  TOOL_SCHEMAS,
  type RefCall,
  type StreamEvent,
} from "./support/tool-reference.js";

// ---------------------------------------------------------------------------------------------
// The governed client: one per enforcement mode, answering whatever the current run generated
// ---------------------------------------------------------------------------------------------

const TOOLS: ToolDefinition[] = [
  { name: "lookup_invoice", effect: "read", inputSchema: TOOL_SCHEMAS.lookup_invoice },
  { name: "issue_refund", effect: "mutate", sensitivity: "financial", inputSchema: TOOL_SCHEMAS.issue_refund },
  { name: "bulk_update", effect: "mutate", inputSchema: TOOL_SCHEMAS.bulk_update },
  { name: "delete_customer", effect: "mutate", inputSchema: TOOL_SCHEMAS.delete_customer },
  { name: "ping", effect: "read" },
  { name: "web_grounding", effect: "read", serverSide: true },
];
const agent = { id: "spiffe://acme.test/agents/props", groups: ["agents"] };
const messages = [{ role: "user" as const, content: [{ text: "Go" }] }];

let respond: () => HttpResponse = () => {
  throw new Error("no reply set");
};
const records: DecisionRecord[] = [];
const handler = new MemoryHandler(() => respond());
function governed(toolEnforcement: "result" | "throw") {
  const governance = createGovernance({ environment: "test", policies: POLICIES, tools: TOOLS, toolEnforcement, tracerProvider, onDecision: (r) => records.push(r) });
  return new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: handler, governance, maxAttempts: 1 });
}
const clients = { result: governed("result"), throw: governed("throw") };

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
before(() => process.on("unhandledRejection", onUnhandled));
after(() => {
  process.off("unhandledRejection", onUnhandled);
  clients.result.destroy();
  clients.throw.destroy();
});
afterEach(async () => {
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(unhandled, [], "no unhandled rejection");
});

function toolConfig(listed: readonly string[]) {
  if (listed.length === 0) return {};
  const tools = listed.map((name) =>
    SYSTEM_TOOLS.has(name)
      ? { systemTool: { name } }
      : { toolSpec: { name, inputSchema: { json: (TOOL_SCHEMAS as Record<string, unknown>)[name] ?? { type: "object", properties: {} } } } },
  );
  return { toolConfig: { tools: tools as never[] } };
}

function resetRun(): void {
  records.length = 0;
  handler.requests.length = 0;
  exporter.reset();
}

// ---------------------------------------------------------------------------------------------
// Generated JSON, written as text (so `__proto__` keys, odd number literals and duplicate keys
// reach the wire exactly as generated)
// ---------------------------------------------------------------------------------------------

type AJ = { raw: string } | { arr: AJ[] } | { obj: [string, AJ][] };
const ser = (v: AJ): string =>
  "raw" in v ? v.raw : "arr" in v ? `[${v.arr.map(ser).join(",")}]` : `{${v.obj.map(([k, x]) => `${JSON.stringify(k)}:${ser(x)}`).join(",")}}`;
const jstr = (s: string): AJ => ({ raw: JSON.stringify(s) });
const lit = (raw: string): AJ => ({ raw });

const HUGE_STRINGS = [
  "h".repeat(65_536), // exactly the 64 KiB a Cedar string may hold
  "h".repeat(65_537),
  "é".repeat(32_768), // 65,536 UTF-8 bytes
  "é".repeat(32_769),
  "€".repeat(21_846), // 65,538 bytes in 21,846 UTF-16 units
  "secret".repeat(12_000),
];
const strings: fc.Arbitrary<string> = fc.oneof(
  { withCrossShrink: true },
  { weight: 30, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 15, arbitrary: fc.constantFrom("INV-1", "secret", "top-secret-42", "forbidden", "", "\u0000", "a\u2028b", "\u{1F600}", "ok") },
  { weight: 5, arbitrary: fc.string({ unit: "binary", maxLength: 6 }) },
  { weight: 5, arbitrary: fc.constantFrom("\ud800", "a\udc00b", "secret\ud83d", "\ude00forbidden", "\ud83d\ude00") }, // lone surrogates (and a pair)
  { weight: 1, arbitrary: fc.constantFrom(...HUGE_STRINGS) },
);
const numberLiterals: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -1000, max: 1000 }).map(String) },
  { weight: 3, arbitrary: fc.tuple(fc.integer({ min: -2_000_000, max: 2_000_000 }), fc.integer({ min: 0, max: 6 })).map(([m, e]) => String(m / 10 ** e)) },
  { weight: 2, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map(String) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "100", "100.0", "100.0000", "100.00001", "100.00000000000001", "100.000000000000001", "99.9999", "99.99995", "100.0001",
      "0.1000000000000000055511151231257827", "1e400", "-1e400", "-0", "-0.0", "1E2", "1e-7", "5.5", "5.4999", "5.50001",
      "123456789012345678901234567890", "922337203685477.5807", "922337203685477.6", "-922337203685477.5808", "-922337203685477.6",
      "9007199254740993", "10", "11", "0", "-1", "10.0", "1e1", "10.5",
    ),
  },
);
const integerLiterals: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: -3, max: 15 }).map(String) },
  { weight: 2, arbitrary: fc.integer().map(String) },
  { weight: 2, arbitrary: fc.constantFrom("9007199254740991", "9007199254740992", "-9007199254740993", "10.0", "1e1", "10.5", "1e400", "-0", "0.5e1") },
);
const KEYS = [
  "invoiceId", "amount", "note", "count", "items", "options", "sku", "qty", "dryRun", "tags", "limits", "max",
  "__proto__", "__entity", "__extn", "__expr", "constructor", "prototype", "toString", "",
];
const keys: fc.Arbitrary<string> = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...KEYS) }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) });

const { anyJson } = fc.letrec<{ anyJson: AJ }>((tie) => ({
  anyJson: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    numberLiterals.map(lit),
    strings.map(jstr),
    fc.constantFrom(lit("true"), lit("false"), lit("null")),
    fc.array(tie("anyJson"), { maxLength: 4 }).map((arr) => ({ arr })),
    fc.array(fc.tuple(keys, tie("anyJson")), { maxLength: 4 }).map((obj) => ({ obj })),
  ),
}));

/** A chain of `n` nested objects or arrays (a problem once the input itself is nested deeper than 64). */
const deepJson: fc.Arbitrary<AJ> = fc
  .tuple(fc.oneof(fc.integer({ min: 60, max: 66 }), fc.integer({ min: 1, max: 300 })), fc.boolean())
  .map(([n, arrays]) => lit(arrays ? "[".repeat(n) + "]".repeat(n) : '{"a":'.repeat(n) + "1" + "}".repeat(n)));

/** A declared field: usually well typed, sometimes any JSON, null, or missing. */
function field(name: string, good: fc.Arbitrary<AJ>, required: boolean): fc.Arbitrary<[string, AJ][]> {
  return fc.oneof(
    { weight: 20, arbitrary: good.map((v): [string, AJ][] => [[name, v]]) },
    { weight: 1, arbitrary: anyJson.map((v): [string, AJ][] => [[name, v]]) },
    { weight: 1, arbitrary: fc.constant<[string, AJ][]>([[name, lit("null")]]) },
    { weight: required ? 1 : 6, arbitrary: fc.constant<[string, AJ][]>([]) },
  );
}
/** An object: its declared fields, plus (sometimes) extra keys before or after them; at the top level, sometimes a deep chain. */
function record(fields: fc.Arbitrary<[string, AJ][]>[], top = false): fc.Arbitrary<AJ> {
  const extras = fc.oneof(
    { weight: top ? 10 : 20, arbitrary: fc.constant<[string, AJ][]>([]) },
    { weight: 3, arbitrary: fc.array(fc.tuple(keys, anyJson), { minLength: 1, maxLength: 3 }) },
    { weight: top ? 1 : 0, arbitrary: deepJson.map((v): [string, AJ][] => [["deep", v]]) },
  );
  return fc.tuple(fc.tuple(...fields), extras, fc.boolean()).map(([declared, extra, first]) => {
    const entries = declared.flat();
    return { obj: first ? [...extra, ...entries] : [...entries, ...extra] };
  });
}
const str = strings.map(jstr);
const num = numberLiterals.map(lit);
const int = integerLiterals.map(lit);
const bool = fc.constantFrom(lit("true"), lit("false"));
const setOf = (item: fc.Arbitrary<AJ>) => fc.array(item, { maxLength: 4 }).map((arr): AJ => ({ arr }));

const INPUTS: Record<string, fc.Arbitrary<AJ>> = {
  lookup_invoice: record([field("invoiceId", str, true)], true),
  issue_refund: record([field("invoiceId", str, true), field("amount", num, true), field("note", str, false)], true),
  bulk_update: record(
    [
    field("count", int, true),
    field("items", setOf(record([field("sku", str, true), field("qty", int, true)])), true),
    field(
      "options",
      record([
        field("dryRun", bool, true),
        field("tags", setOf(fc.oneof(str, fc.constant(jstr("forbidden")))), false),
        field("limits", record([field("max", num, false)]), false),
      ]),
      false,
    ),
    ],
    true,
  ),
  delete_customer: record([field("customerId", str, true)], true),
};
/** Over 1 MiB of compact JSON: a tool input too large to be read. */
const TOO_LARGE = lit(`{"invoiceId":"INV-1","blob":${JSON.stringify("b".repeat(1024 * 1024))}}`);
/** The input for a call of `name`: usually shaped for that tool, sometimes for another or anything. */
function inputFor(name: unknown): fc.Arbitrary<AJ> {
  // An own property only: a model may well name a tool "toString" or "constructor".
  const own = typeof name === "string" && Object.hasOwn(INPUTS, name) ? INPUTS[name] : undefined;
  return fc.oneof(
    { weight: own ? 300 : 0, arbitrary: own ?? anyJson },
    { weight: 30, arbitrary: fc.constantFrom(...Object.values(INPUTS)).chain((a) => a) },
    { weight: 30, arbitrary: anyJson },
    { weight: 10, arbitrary: record([], true) }, // {} or extras only
    { weight: 1, arbitrary: fc.constant(TOO_LARGE) },
  );
}

// Tool-use ids, names and types, as the model might write them.
const MISSING = Symbol("missing");
type Maybe<T> = T | typeof MISSING;
const ids: fc.Arbitrary<Maybe<unknown>> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("t1", "t2", "t3", "t4", "t5", "t6") }, // duplicates are likely
  { weight: 12, arbitrary: fc.uuid() },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(MISSING, "", "t".repeat(256), "t".repeat(257), "t\n1", "t\u200b1", "\ud800", "\u0085x", 7) },
);
const names: fc.Arbitrary<Maybe<unknown>> = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom<string>(...CANDIDATES) },
  {
    weight: 2,
    arbitrary: fc.constantFrom<unknown>(
      "Lookup_Invoice", "lookup_invoice ", "lookup_invoice\u200b", "lookup_invoice\n", "", "x".repeat(256), "x".repeat(257),
      "tool:issue_refund", 'a"b', "\ud83d", "UndeclaredTool", MISSING, 42,
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
);
const types: fc.Arbitrary<Maybe<string>> = fc.oneof(
  { weight: 8, arbitrary: fc.constant(MISSING) },
  { weight: 2, arbitrary: fc.constant("server_tool_use") },
  { weight: 1, arbitrary: fc.constant("tool_use") },
);
const entry = (key: string, value: Maybe<unknown>): [string, AJ][] => (value === MISSING ? [] : [[key, lit(JSON.stringify(value))]]);

// ---------------------------------------------------------------------------------------------
// Converse replies
// ---------------------------------------------------------------------------------------------

const toolUseBlock: fc.Arbitrary<string> = fc
  .tuple(ids, names, types)
  .chain(([id, name, type]) =>
    fc.tuple(fc.constant<[string, AJ][]>([...entry("toolUseId", id), ...entry("name", name), ...entry("type", type)]), fc.option(inputFor(name), { freq: 12, nil: undefined })),
  )
  .map(([head, input]) => `{"toolUse":${ser({ obj: input === undefined ? head : [...head, ["input", input]] })}}`);
const contentBlock: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: toolUseBlock },
  { weight: 2, arbitrary: fc.string({ maxLength: 20 }).map((text) => `{"text":${JSON.stringify(text)}}`) },
  { weight: 1, arbitrary: fc.constantFrom('{"toolUse":5}', '{"toolUse":"x"}', '{"reasoningContent":{"reasoningText":{"text":"hm"}}}') },
);
const listedTools = fc.oneof({ weight: 3, arbitrary: fc.constant([...CANDIDATES]) }, { weight: 2, arbitrary: fc.subarray([...CANDIDATES]) });
const converseCase = fc.record({
  listed: listedTools,
  blocks: fc.oneof({ weight: 10, arbitrary: fc.array(contentBlock, { maxLength: 8 }) }, { weight: 1, arbitrary: fc.array(contentBlock, { maxLength: 24 }) }),
});
type ConverseCase = typeof converseCase extends fc.Arbitrary<infer T> ? T : never;

function converseBody(blocks: readonly string[]): string {
  return `{"output":{"message":{"role":"assistant","content":[${blocks.join(",")}]}},"stopReason":"tool_use","usage":{"inputTokens":3,"outputTokens":5,"totalTokens":8},"metrics":{"latencyMs":1}}`;
}

// ---------------------------------------------------------------------------------------------
// ConverseStream replies
// ---------------------------------------------------------------------------------------------

/** The block's own index (its position, as Bedrock numbers blocks), else another block's, else not an index. */
const AUTO = Symbol("auto");
const indexes: fc.Arbitrary<Maybe<unknown>> = fc.oneof(
  { weight: 24, arbitrary: fc.constant(AUTO) },
  { weight: 6, arbitrary: fc.nat({ max: 9 }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(-1, "2", 1.5, 1e20, MISSING) },
);
const withIndex = (index: Maybe<unknown>, rest: Record<string, unknown>) => (index === MISSING ? rest : { contentBlockIndex: index, ...rest });

/** Input text for a streamed tool call: JSON for the tool, truncated JSON, garbage, odd literals, deep nesting, too large. */
function streamedInput(name: unknown): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 10, arbitrary: inputFor(name).map(ser) },
    {
      weight: 3,
      arbitrary: inputFor(name)
        .map(ser)
        .chain((text) => fc.nat({ max: Math.max(0, text.length - 1) }).map((k) => text.slice(0, k))),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "", " ", "{}", "[]", "null", "1", '"s"', '{"a":1}}', '{"a":1e400}', '{"invoiceId":"x"} trailing', ' {"invoiceId":"x"} ', "{\"invoiceId\":\"x\"",
        '{"__proto__":{"admin":true},"invoiceId":"INV-1"}', '{"invoiceId":"INV-1","__entity":{"type":"Bedrock::Tool","id":"x"}}',
      ),
    },
    {
      weight: 1,
      arbitrary: fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 62, max: 66 }) }, { weight: 1, arbitrary: fc.constant(100_000) }).map((n) => `{"invoiceId":"x","deep":${"[".repeat(n)}${"]".repeat(n)}}`),
    },
  );
}
/** Cuts `text` into chunks at the given positions (empty chunks included), with sometimes a chunk that is not a string. */
function chunked(text: string, cuts: number[], junk: Maybe<unknown>, junkAt: number): unknown[] {
  const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const chunks: unknown[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push(text.slice(from, p));
    from = p;
  }
  chunks.push(text.slice(from));
  if (junk !== MISSING) chunks.splice(junkAt % (chunks.length + 1), 0, junk);
  return chunks;
}
const chunks = (name: unknown) =>
  fc
    .tuple(
      streamedInput(name),
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.oneof({ weight: 20, arbitrary: fc.constant<Maybe<unknown>>(MISSING) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(5, ["a"], { obj: 1 }, true, BARE) }),
      fc.nat(),
    )
    .map(([text, cuts, junk, junkAt]) => chunked(text, cuts, junk, junkAt));
/** A tool input delta whose `toolUse` is not an object. */
const BARE = Symbol("bare");
const toolInputDelta = (index: Maybe<unknown>, chunk: unknown): StreamEvent => ({
  type: "contentBlockDelta",
  payload: withIndex(index, { delta: { toolUse: chunk === MISSING ? {} : chunk === BARE ? "x" : { input: chunk } } }),
});
const stops = fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) });

type Block = StreamEvent[];
const startToolUse: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 30, arbitrary: fc.tuple(ids, names, types).map(([id, name, type]) => Object.fromEntries([["toolUseId", id], ["name", name], ["type", type]].filter(([, v]) => v !== MISSING))) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>("x", 5) },
);
const toolBlock: fc.Arbitrary<Block> = fc
  .tuple(indexes, startToolUse)
  .chain(([index, toolUse]) =>
    fc.tuple(fc.constant(index), fc.constant(toolUse), chunks((toolUse as { name?: unknown })?.name), stops, fc.boolean()),
  )
  .map(([index, toolUse, parts, stop, inputless]) => [
    { type: "contentBlockStart", payload: withIndex(index, { start: { toolUse } }) },
    ...parts.map((chunk) => toolInputDelta(index, chunk)),
    ...(inputless ? [toolInputDelta(index, MISSING)] : []),
    ...(stop ? [{ type: "contentBlockStop", payload: withIndex(index, {}) }] : []),
  ]);
const textBlock: fc.Arbitrary<Block> = fc
  .tuple(indexes, fc.array(fc.string({ maxLength: 8 }), { minLength: 1, maxLength: 3 }), fc.boolean(), stops)
  .map(([index, texts, reasoning, stop]) => [
    ...texts.map((text) => ({ type: "contentBlockDelta", payload: withIndex(index, { delta: reasoning ? { reasoningContent: { text } } : { text } }) })),
    ...(stop ? [{ type: "contentBlockStop", payload: withIndex(index, {}) }] : []),
  ]);
const otherStartBlock: fc.Arbitrary<Block> = fc.tuple(indexes, stops).map(([index, stop]) => [
  { type: "contentBlockStart", payload: withIndex(index, { start: {} }) },
  ...(stop ? [{ type: "contentBlockStop", payload: withIndex(index, {}) }] : []),
]);
const strayStop: fc.Arbitrary<Block> = fc.oneof(indexes, fc.integer({ min: 100, max: 1000 })).map((index) => [{ type: "contentBlockStop", payload: withIndex(index, {}) }]);
const orphanInput: fc.Arbitrary<Block> = fc
  .tuple(fc.oneof(indexes, fc.integer({ min: 100, max: 1000 })), chunks(undefined), stops)
  .map(([index, parts, stop]) => [...parts.map((chunk) => toolInputDelta(index, chunk)), ...(stop ? [{ type: "contentBlockStop", payload: withIndex(index, {}) }] : [])]);
const block: fc.Arbitrary<Block> = fc.oneof(
  { weight: 10, arbitrary: toolBlock },
  { weight: 3, arbitrary: textBlock },
  { weight: 1, arbitrary: otherStartBlock },
  { weight: 1, arbitrary: strayStop },
  { weight: 1, arbitrary: orphanInput },
);
/** The blocks' events interleaved at random, each block's own events kept in order; flooded: every block starts first. */
function interleave(blocks: readonly Block[], picks: readonly number[], flood = false): StreamEvent[] {
  const queues = blocks.map((b) => [...b]).filter((q) => q.length > 0);
  const out: StreamEvent[] = flood ? queues.map((q) => q.shift()!) : [];
  for (let q = queues.length - 1; q >= 0; q--) if (queues[q]!.length === 0) queues.splice(q, 1);
  let i = 0;
  while (queues.length > 0) {
    const q = (picks[i++ % Math.max(1, picks.length)] ?? 0) % queues.length;
    out.push(queues[q]!.shift()!);
    if (queues[q]!.length === 0) queues.splice(q, 1);
  }
  return out;
}
const streamCase = fc.record({
  listed: listedTools,
  blocks: fc.oneof({ weight: 12, arbitrary: fc.array(block, { maxLength: 6 }) }, { weight: 1, arbitrary: fc.array(toolBlock, { minLength: 17, maxLength: 20 }) }),
  picks: fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 12 }),
  /** Every block starts before any goes on: past 16 open blocks, starts are refused. */
  flood: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  ends: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});
type StreamCase = typeof streamCase extends fc.Arbitrary<infer T> ? T : never;

function streamEvents(c: StreamCase): StreamEvent[] {
  const numbered = c.blocks.map((events, position) =>
    events.map((e) => (e.payload["contentBlockIndex"] === AUTO ? { ...e, payload: { ...e.payload, contentBlockIndex: position } } : e)),
  );
  return [
    { type: "messageStart", payload: { role: "assistant" } },
    ...interleave(numbered, c.picks, c.flood),
    ...(c.ends
      ? [
          { type: "messageStop", payload: { stopReason: "tool_use" } },
          { type: "metadata", payload: { usage: { inputTokens: 3, outputTokens: 5, totalTokens: 8 }, metrics: { latencyMs: 1 } } },
        ]
      : []),
  ];
}

// ---------------------------------------------------------------------------------------------
// The checks shared by every property
// ---------------------------------------------------------------------------------------------

/** The effect the properties require: the independent reference's. */
const requiredEffect = expectedEffect;

/** Whether the call really is AWS-run: labelled so by the model AND offered as a systemTool. */
const awsRun = (call: RefCall, listed: ReadonlySet<string>) => call.serverSide && listed.has(call.name) && SYSTEM_TOOLS.has(call.name);

const describeCall = (c: { name: string; toolUseId: string }, i: number) => `decision ${i} (${JSON.stringify(c.name).slice(0, 60)}, ${JSON.stringify(c.toolUseId).slice(0, 60)})`;

/** Property 2: every decision is exactly the reference's; allows only where it allows, denials with reasons. */
function checkDecisions(actual: readonly ToolCallDecision[], expected: readonly RefCall[], listed: ReadonlySet<string>): void {
  // Property 3: exactly one decision per tool call.
  assert.equal(actual.length, expected.length, "one decision per tool call");
  actual.forEach((d, i) => {
    const want = expected[i]!;
    const what = describeCall(d, i);
    assert.equal(d.name, want.name, `${what}: name`);
    assert.equal(d.toolUseId, want.toolUseId, `${what}: toolUseId`);
    assert.equal(d.serverSide, awsRun(want, listed), `${what}: serverSide`);
    const effect = requiredEffect(want, listed);
    assert.equal(d.decision.effect, effect, `${what}: expected ${effect} (${d.decision.reasons.join("; ")})`);
    if (effect === "allow") {
      assert.equal(d.problem, undefined, `${what}: an allowed call has no problem`);
      assert.deepEqual(d.decision.errors, [], `${what}: an allowed call has no errors`);
      assert.deepEqual(d.input, want.input, `${what}: decided with the input as the model gave it`);
    } else {
      assert.ok(d.decision.reasons.length > 0 && d.decision.reasons.every((r) => typeof r === "string" && r.length > 0), `${what}: a denial has a reason`);
      if (want.problem || (want.serverSide && !awsRun(want, listed))) assert.ok(typeof d.problem === "string" && d.problem.length > 0, `${what}: a malformed call names its problem`);
    }
  });
}

/** Property 3: one record per tool decision (in order), then exactly one for the model call; one span, with one event per decision. */
function checkEvidence(decisions: readonly ToolCallDecision[], command: string, outcome: DecisionRecord["outcome"]): void {
  const tools = records.filter((r) => r.command.startsWith("tool:"));
  assert.deepEqual(
    tools.map((r) => [r.command, r.outcome, r.tool?.toolUseId ?? ""]),
    decisions.map((d) => [`tool:${d.name}`, d.decision.effect === "allow" ? "allowed" : "denied", d.toolUseId]),
    "one record per tool decision",
  );
  const calls = records.filter((r) => !r.command.startsWith("tool:"));
  assert.deepEqual(
    calls.map((r) => [r.command, r.outcome]),
    [[command, outcome]],
    "exactly one record for the model call",
  );
  assert.equal(records.at(-1)?.command, command, "the model call's record comes last");
  const spans = exporter.getFinishedSpans();
  assert.equal(spans.length, 1, "exactly one span for the model call");
  // The OpenTelemetry SDK keeps at most 128 events per span (its default spanLimits.eventCountLimit).
  const events = spans[0]!.events.filter((e) => e.name === "bedrock_warden.tool_call").length;
  assert.equal(events, Math.min(decisions.length, 128), "one span event per tool decision");
}

/** Property 4: one error toolResult per denied call the application runs, with its toolUseId. */
function checkDeniedResults(output: object, decisions: readonly ToolCallDecision[]): void {
  // A call without an id cannot be answered; an id the model repeated is answered once.
  const ids = decisions.filter((d) => d.decision.effect === "deny" && !d.serverSide && d.toolUseId !== "").map((d) => d.toolUseId);
  const results = deniedToolResults(output);
  assert.deepEqual(
    results.map((r) => r.toolResult.toolUseId),
    [...new Set(ids)],
    "one toolResult per denied call id, in order",
  );
  for (const r of results) {
    assert.equal(r.toolResult.status, "error");
    assert.match(r.toolResult.content[0]?.text ?? "", /^Denied by policy: .+/);
  }
}

/** Property 1: only a governance denial may reject. */
function assertGovernanceError(error: unknown): asserts error is AccessDeniedError {
  assert.ok(error instanceof AccessDeniedError, `only AccessDeniedError may reject, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
}

// ---------------------------------------------------------------------------------------------
// One run of each kind
// ---------------------------------------------------------------------------------------------

let lastOutput: object | undefined;
async function runConverse(c: ConverseCase, mode: "result" | "throw"): Promise<void> {
  resetRun();
  const body = Buffer.from(converseBody(c.blocks));
  respond = () => new HttpResponse({ statusCode: 200, headers: { "content-type": "application/json", "x-amzn-requestid": "prop" }, body });
  const listed = new Set(c.listed);
  let output: Record<string, unknown>;
  let error: unknown;
  try {
    output = (await runAs(agent, () => clients[mode].send(new ConverseCommand({ modelId: HAIKU, messages, ...toolConfig(c.listed) })))) as unknown as Record<string, unknown>;
  } catch (e) {
    error = e;
    assertGovernanceError(e);
    assert.ok(mode === "throw" && e instanceof ToolCallDeniedError, `only a denied tool call may reject (${e.message})`);
    output = e.output as Record<string, unknown>;
  }
  lastOutput = output;
  assert.equal(handler.requests.length, 1, "the model call itself is allowed");
  // The reference reads the content exactly as the application received it.
  const content = (output["output"] as { message?: { content?: unknown } } | undefined)?.message?.content;
  const expected = converseCalls(content);
  const decisions = toolDecisions(output);
  checkDecisions(decisions, expected, listed);
  // A denied tool call that throws fails the model call too (its record and span say so).
  checkEvidence(decisions, "ConverseCommand", error === undefined ? "completed" : "failed");
  if (mode === "result") checkDeniedResults(output, decisions);
  else {
    const firstDenied = decisions.find((d) => d.decision.effect === "deny" && !d.serverSide);
    assert.equal(error !== undefined, firstDenied !== undefined, "throw mode rejects exactly when a call the application runs is denied");
    if (error instanceof ToolCallDeniedError) assert.equal(error.toolUseId, firstDenied?.toolUseId, "the error names the first denied call");
  }
}

async function runStream(c: StreamCase, mode: "result" | "throw"): Promise<void> {
  resetRun();
  const events = streamEvents(c);
  const frames = events.map((e) => frame(e.type, e.payload));
  respond = () => eventStreamResponse(frames).response;
  const listed = new Set(c.listed);
  const expected = streamCalls(events);
  const output = await runAs(agent, () => clients[mode].send(new ConverseStreamCommand({ modelId: HAIKU, messages, ...toolConfig(c.listed) })));
  const received: StreamEvent[] = [];
  let error: unknown;
  try {
    for await (const event of output.stream ?? []) {
      const [type] = Object.keys(event);
      received.push({ type: type!, payload: (event as unknown as Record<string, Record<string, unknown>>)[type!]! });
    }
  } catch (e) {
    error = e;
    assertGovernanceError(e);
    assert.ok(mode === "throw" && e instanceof ToolCallDeniedError, `only a denied tool call may fail the stream (${e.message})`);
  }
  const decisions = toolDecisions(output);
  if (mode === "result") {
    // The reference's view of the stream is what the application received.
    assert.deepEqual(received, events, "every event reaches the application unchanged");
    checkDecisions(decisions, expected, listed);
    checkEvidence(decisions, "ConverseStreamCommand", "completed");
    checkDeniedResults(output, decisions);
    return;
  }
  // "throw": decisions stop at the first denied call the application runs (the event is withheld;
  // calls decided at the end of the stream are all decided together).
  const first = expected.findIndex((call) => !awsRun(call, listed) && requiredEffect(call, listed) === "deny");
  // Calls settled by one event (the message's end, the stream's end: `at` -1) are decided together.
  const stopsAt = first === -1 ? expected.length : expected.findLastIndex((call) => call.at === expected[first]!.at) + 1;
  // Tool calls still open when the stream stops at a denied call are settled then: each a denial
  // (its input never completed), recorded like any other decision.
  const settled = decisions.slice(stopsAt);
  checkDecisions(decisions.slice(0, stopsAt), expected.slice(0, stopsAt), listed);
  for (const call of settled) {
    assert.equal(call.decision.effect, "deny", "a tool call left open by the stopped stream is denied");
    assert.match(call.problem ?? "", /stream ended before the tool input was complete/);
  }
  assert.equal(error !== undefined, first !== -1, "the stream fails exactly when a call the application runs is denied");
  if (first === -1) assert.deepEqual(received, events);
  else {
    assert.equal((error as ToolCallDeniedError).toolUseId, expected[first]!.toolUseId, "the error names the first denied call");
    const at = expected[first]!.at;
    assert.deepEqual(received, at === -1 ? events : events.slice(0, at), "events up to the denied call are delivered, that one is withheld");
  }
  checkEvidence(decisions, "ConverseStreamCommand", error === undefined ? "completed" : "failed");
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const RUNS = { converseResult: 2500, converseThrow: 600, streamResult: 2000, streamThrow: 600 };

/** Long strings (64 KiB inputs...) abbreviated, so that a counterexample can be read. */
const abbreviate = (text: string) => text.replace(/(.)\1{40,}/gsu, (run, c: string) => `${c.repeat(8)}…(${run.length}×)`);

/** fc.assert, with a readable report: seed, path, the counterexample abbreviated, and the first failure. Examples run first. */
async function property<T>(arbitrary: fc.Arbitrary<T>, run: (value: T) => Promise<void>, numRuns: number, examples: T[] = []): Promise<void> {
  const details = await fc.check(fc.asyncProperty(arbitrary, run), { numRuns, examples: examples.map((e): [T] => [e]) });
  if (!details.failed) return;
  const error = details.errorInstance;
  throw new Error(
    `Property failed after ${details.numRuns} runs (seed ${details.seed}, path "${details.counterexamplePath}", shrunk ${details.numShrinks} times)\n` +
      `Counterexample: ${abbreviate(fc.stringify(details.counterexample))}\n` +
      `Failure: ${abbreviate(error instanceof Error ? error.message : String(error))}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Regression cases: failing seeds (shrunk) and edge cases, run before the random ones
// ---------------------------------------------------------------------------------------------

const ALL = [...CANDIDATES];
const use = (toolUse: Record<string, unknown>) => `{"toolUse":${JSON.stringify(toolUse)}}`;
const start = (index: unknown, toolUse: unknown): StreamEvent => ({ type: "contentBlockStart", payload: { contentBlockIndex: index, start: { toolUse } } });
const input = (index: unknown, text: unknown): StreamEvent => ({ type: "contentBlockDelta", payload: { contentBlockIndex: index, delta: { toolUse: { input: text } } } });
const stop = (index: unknown): StreamEvent => ({ type: "contentBlockStop", payload: { contentBlockIndex: index } });
const streamOf = (listed: StreamCase["listed"], ...blocks: Block[]): StreamCase => ({ listed, blocks, picks: [0], ends: true, flood: false });

/** Found by the properties (seeds 670370176, -1454197031, -1293320265, shrunk): the model marks an application tool as run by AWS. */
const FORGED_SERVER_SIDE = use({ toolUseId: "t1", name: "issue_refund", type: "server_tool_use", input: { invoiceId: "INV-1", amount: 5000 } });

const CONVERSE_EXAMPLES: ConverseCase[] = [
  // The SDK turns every "__proto__" key of a document into an own property holding undefined: denied as malformed.
  { listed: ALL, blocks: ['{"toolUse":{"toolUseId":"t1","name":"lookup_invoice","input":{"__proto__":{"admin":true},"invoiceId":"INV-1"}}}'] },
  // Decimals: 100.000000000000001 parses to 100 (allowed); more than 4 fractional digits, 1e400, an undeclared number: denied.
  {
    listed: ALL,
    blocks: [
      '{"toolUse":{"toolUseId":"a","name":"issue_refund","input":{"invoiceId":"INV-1","amount":100.000000000000001}}}',
      '{"toolUse":{"toolUseId":"b","name":"issue_refund","input":{"invoiceId":"INV-1","amount":100.00001}}}',
      '{"toolUse":{"toolUseId":"c","name":"issue_refund","input":{"invoiceId":"INV-1","amount":1e400}}}',
      '{"toolUse":{"toolUseId":"d","name":"issue_refund","input":{"invoiceId":"INV-1","amount":99.9999,"extra":0.1000000000000000055511151231257827}}}',
    ],
  },
  // A duplicate id denies the second call only; an id that is missing, and a name with an invisible character.
  {
    listed: ALL,
    blocks: [
      use({ toolUseId: "t1", name: "lookup_invoice", input: { invoiceId: "INV-1" } }),
      use({ toolUseId: "t1", name: "lookup_invoice", input: { invoiceId: "INV-2" } }),
      use({ name: "ping", input: {} }),
      use({ toolUseId: "t3", name: "lookup_invoice\u200b", input: { invoiceId: "INV-1" } }),
    ],
  },
  // Reserved Cedar keys, nested; a set element that is null; lone surrogates.
  {
    listed: ALL,
    blocks: [
      use({ toolUseId: "a", name: "bulk_update", input: { count: 1, items: [{ sku: "s", qty: 1, __extn: { fn: "decimal", arg: "1.0" } }] } }),
      use({ toolUseId: "b", name: "bulk_update", input: { count: 1, items: [null] } }),
      use({ toolUseId: "c", name: "lookup_invoice", input: { invoiceId: "\ud800" } }),
      use({ toolUseId: "d", name: "bulk_update", input: { count: 10, items: [], options: { dryRun: true, tags: ["ok"], limits: { max: 5.4999 } } } }),
    ],
  },
];

const FORGED_SERVER_SIDE_STREAM: Block = [start(0, { toolUseId: "s1", name: "issue_refund", type: "server_tool_use" }), input(0, '{"invoiceId":"INV-1","amount":5000}'), stop(0)];

const STREAM_EXAMPLES: StreamCase[] = [
  // Streamed input is parsed by the governance itself: "__proto__" stays an own key, and an undeclared one is dropped.
  streamOf(ALL, [start(0, { toolUseId: "s1", name: "lookup_invoice" }), input(0, '{"__proto__":{"admin":true},'), input(0, '"invoiceId":"INV-1"}'), stop(0)]),
  // A surrogate pair split across two deltas; a block never stopped; a stop for an unknown index; input for a text block.
  streamOf(
    ALL,
    [start(0, { toolUseId: "s1", name: "lookup_invoice" }), input(0, '{"invoiceId":"\ud83d'), input(0, '\ude00"}'), stop(0)],
    [start(1, { toolUseId: "s2", name: "issue_refund" }), input(1, '{"invoiceId":"INV-1","amount":5')],
    [stop(42)],
    [{ type: "contentBlockDelta", payload: { contentBlockIndex: 3, delta: { text: "hi" } } }, input(3, "{}"), stop(3)],
  ),
  // Seventeen blocks open at once: the seventeenth start is refused, and its input is orphaned.
  {
    listed: ALL,
    blocks: Array.from({ length: 17 }, (_, i): Block => [start(i, { toolUseId: `f${i}`, name: "ping" }), input(i, "{}"), stop(i)]),
    picks: [0],
    ends: true,
    flood: true,
  },
  // The message ends (messageStop, metadata) while a tool block is open — out of order, as no conforming stream
  // does: the call is denied before messageStop reaches the application, and its late stop makes no second call.
  {
    listed: ALL,
    blocks: [
      [
        start(0, { toolUseId: "o1", name: "lookup_invoice" }),
        input(0, '{"invoiceId":"INV-1"}'),
        { type: "messageStop", payload: { stopReason: "tool_use" } },
        { type: "metadata", payload: { usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, metrics: { latencyMs: 1 } } },
        stop(0),
      ],
    ],
    picks: [0],
    ends: false,
    flood: false,
  },
  // A tool block started again at its own index; truncated JSON; a chunk that is not a string.
  streamOf(
    ALL,
    [start(0, { toolUseId: "r1", name: "lookup_invoice" }), input(0, '{"invoiceId":'), start(0, { toolUseId: "r2", name: "lookup_invoice" }), input(0, '{"invoiceId":"x"}'), stop(0)],
    [start(1, { toolUseId: "r3", name: "lookup_invoice" }), input(1, '{"invoiceId":"x"'), stop(1)],
    [start(2, { toolUseId: "r4", name: "lookup_invoice" }), input(2, '{"invoiceId":'), input(2, 7), input(2, '"x"}'), stop(2)],
  ),
];

describe("tool-call governance over generated model output (property-based, through the SDK pipeline)", () => {
  it(`Converse, "result": never a crash, never a wrong allow, one decision, record and toolResult per call (${RUNS.converseResult} runs)`, async () => {
    await property(converseCase, (c) => runConverse(c, "result"), RUNS.converseResult, CONVERSE_EXAMPLES);
  });

  it(`Converse, "throw": rejects only with ToolCallDeniedError, exactly when a call is denied, every call still decided (${RUNS.converseThrow} runs)`, async () => {
    await property(converseCase, (c) => runConverse(c, "throw"), RUNS.converseThrow, CONVERSE_EXAMPLES);
  });

  it(`ConverseStream, "result": chunked, truncated, garbage, interleaved and unterminated tool input — the stream drains, each call decided once (${RUNS.streamResult} runs)`, async () => {
    await property(streamCase, (c) => runStream(c, "result"), RUNS.streamResult, STREAM_EXAMPLES);
  });

  it(`ConverseStream, "throw": the stream fails only with ToolCallDeniedError, at the first denied call (${RUNS.streamThrow} runs)`, async () => {
    await property(streamCase, (c) => runStream(c, "throw"), RUNS.streamThrow, STREAM_EXAMPLES);
  });

  it("more than 1000 tool calls in one response: every call still gets exactly one decision, the ones past the limit denied", async () => {
    const blocks = Array.from({ length: 1003 }, (_, i) => use({ toolUseId: `m${i}`, name: "ping", input: {} }));
    await runConverse({ listed: ALL, blocks }, "result");
    assert.deepEqual(
      toolDecisions(lastOutput!).slice(998).map((d) => d.decision.effect),
      ["allow", "allow", "deny", "deny", "deny"],
    );
  });
});

describe("regressions: minimal repros of the bugs the properties found", () => {
  const offerRefund = { modelId: HAIKU, messages, ...toolConfig(["issue_refund"]) };
  const forgedReply = () =>
    new HttpResponse({ statusCode: 200, headers: { "content-type": "application/json" }, body: Buffer.from(converseBody([FORGED_SERVER_SIDE])) });

  // BUG: decideToolCall trusts the model's `type: "server_tool_use"`: any offered tool the model marks
  // as server-side gets the OFFER decision (made without input), so a refund of 5000 that the
  // "small-refunds" policy forbids is an "allow", and enforcement never sees it as a denial.
  it('a toolUse the model marks "server_tool_use" for an application tool (not a systemTool) is decided on its input, not on the offer', async () => {
    resetRun();
    respond = forgedReply;
    const output = await runAs(agent, () => clients.result.send(new ConverseCommand(offerRefund)));
    const [decision] = toolDecisions(output);
    assert.equal(decision?.name, "issue_refund");
    assert.deepEqual(decision?.input, { invoiceId: "INV-1", amount: 5000 });
    assert.equal(decision?.decision.effect, "deny", `got ${decision?.decision.effect} by ${decision?.decision.reasons.join("; ")}`);
  });

  it('"throw": the forged server-side call is refused like any other denied call', async () => {
    resetRun();
    respond = forgedReply;
    await assert.rejects(runAs(agent, () => clients.throw.send(new ConverseCommand(offerRefund))), ToolCallDeniedError);
  });

  it("ConverseStream: the same forged call, assembled from deltas, is denied", async () => {
    resetRun();
    const events = FORGED_SERVER_SIDE_STREAM;
    respond = () => eventStreamResponse(events.map((e) => frame(e.type, e.payload))).response;
    const output = await runAs(agent, () => clients.result.send(new ConverseStreamCommand(offerRefund)));
    for await (const _ of output.stream ?? []);
    assert.equal(toolDecisions(output)[0]?.decision.effect, "deny");
  });
});
