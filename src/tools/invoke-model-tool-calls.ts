/**
 * The tool calls in InvokeModel responses and InvokeModelWithResponseStream chunks, which hold
 * each provider's own JSON. Every shape a reader of the output might take a tool call from is
 * read — Anthropic's `content[]` `tool_use` blocks, Nova's `output.message.content[]` `toolUse`
 * blocks, chat completions' `choices[].message.tool_calls[]` and legacy `function_call` (Mistral,
 * OpenAI), Cohere's top-level `tool_calls[]` (which carry no id, so each is a malformed call) —
 * whatever the model's provider, and mapped to Converse's shapes, so that one assembler and one
 * decision path ({@link toolCallsOfMessage}, {@link ToolCallAssembler}) serve every command.
 *
 * Output that may hold a tool call but cannot be read faithfully (not JSON, a key written twice,
 * too large) stands as one malformed call ({@link unreadableToolCall}): denied, never taken as
 * holding none.
 * @module
 */
import { writesAKeyTwice } from "../json-keys.js";
import { toolCallsOfMessage, unreadableToolCall, type ToolCallRequest } from "./tool-calls.js";
import { asRecord } from "../records.js";

/** A response larger than this is not parsed for tool calls; if it may hold one, it stands as a malformed call. */
export const MAX_TOOL_RESPONSE_BYTES = 8 * 1024 * 1024;

/**
 * Text that every response holding a tool call, in any shape read here, contains — unless it
 * writes JSON escapes (`"tool\u005fuse"` reads as `"tool_use"`): a body with `\u` is parsed.
 */
const MARKERS = ['"tool_use"', '"server_tool_use"', '"toolUse"', '"tool_calls"', '"function_call"', "\\u"].map((marker) => Buffer.from(marker));

const BOM = "\ufeff";

/** The text without a leading byte order mark, as a text decoder drops it. */
function withoutBom(text: string): string {
  return text.startsWith(BOM) ? text.slice(1) : text;
}

type Json = Record<string, unknown>;

/**
 * The tool calls of an InvokeModel response body, in the order a reader meets them. A body that
 * names no tool call shape is not parsed (most responses are text): no calls.
 *
 * @example
 * ```ts
 * for (const call of invokeResponseToolCalls(output.body)) if (call.problem) deny(call);
 * ```
 */
export function invokeResponseToolCalls(body: unknown): ToolCallRequest[] {
  if (!(body instanceof Uint8Array)) return [];
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  // No JSON reader takes a tool call from a body that is not an object (text, image bytes).
  if (!startsAnObject(bytes) || !MARKERS.some((marker) => bytes.includes(marker))) return [];
  if (bytes.byteLength > MAX_TOOL_RESPONSE_BYTES) return [unreadableToolCall(`the response may name tool calls but is larger than ${MAX_TOOL_RESPONSE_BYTES} bytes, so they cannot be decided`)];
  const parsed = parseFaithfully(bytes.toString("utf8"));
  if (typeof parsed === "string") return [unreadableToolCall(`the response may name tool calls but ${parsed}, so they cannot be decided`)];
  return toolCallsOfMessage(toolUseBlocks(parsed));
}

/** Whether the first character past whitespace (and a byte order mark) opens a JSON object. */
function startsAnObject(bytes: Buffer): boolean {
  let at = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (at < bytes.length && (bytes[at] === 0x20 || bytes[at] === 0x09 || bytes[at] === 0x0a || bytes[at] === 0x0d)) at++;
  return bytes[at] === 0x7b;
}

/** Converse-shaped `{ toolUse }` blocks for every whole tool call `response` holds, in any shape read here. */
function toolUseBlocks(response: Json | undefined): unknown[] {
  const blocks: unknown[] = [];
  if (response === undefined) return blocks;
  // Anthropic Messages: content[] of { type: "tool_use" | "server_tool_use", id, name, input }.
  const content = response["content"];
  if (Array.isArray(content)) {
    for (const block of content) {
      const entry = asRecord(block);
      const type = entry?.["type"];
      if (type === "tool_use" || type === "server_tool_use") {
        blocks.push({ toolUse: { toolUseId: entry!["id"], name: entry!["name"], input: entry!["input"], ...(type === "server_tool_use" && { type }) } });
      }
    }
  }
  // Nova: output.message.content[] of Converse's own { toolUse } blocks.
  const novaContent = asRecord(asRecord(response["output"])?.["message"])?.["content"];
  if (Array.isArray(novaContent)) for (const block of novaContent) if (asRecord(block)?.["toolUse"] !== undefined) blocks.push(block);
  // Chat completions: choices[].message.tool_calls[] of { id, function: { name, arguments: "<JSON text>" } },
  // and the legacy choices[].message.function_call { name, arguments } (no id).
  const choices = response["choices"];
  if (Array.isArray(choices)) {
    for (const choice of choices) {
      const message = asRecord(asRecord(choice)?.["message"]);
      chatCalls(message?.["tool_calls"], blocks);
      const legacy = message?.["function_call"];
      if (legacy !== undefined && legacy !== null) chatCalls([{ function: legacy }], blocks);
    }
  }
  // Cohere Command R: tool_calls[] of { name, parameters }, with no id (so each is a malformed call: use Converse).
  const cohereCalls = response["tool_calls"];
  if (Array.isArray(cohereCalls)) {
    for (const call of cohereCalls) {
      const entry = asRecord(call);
      blocks.push({ toolUse: { toolUseId: entry?.["id"], name: entry?.["name"], input: entry?.["parameters"] } });
    }
  } else if (cohereCalls !== undefined && cohereCalls !== null) blocks.push({ toolUse: "tool_calls is not an array" });
  return blocks;
}

function chatCalls(calls: unknown, blocks: unknown[]): void {
  // `null` (a plain text answer, as OpenAI-compatible servers write it) holds no call.
  if (calls === undefined || calls === null) return;
  if (!Array.isArray(calls)) {
    blocks.push({ toolUse: "tool_calls is not an array" });
    return;
  }
  for (const call of calls) {
    const entry = asRecord(call);
    const fn = asRecord(entry?.["function"]);
    blocks.push({ toolUse: { toolUseId: entry?.["id"], name: fn?.["name"], input: chatArguments(fn?.["arguments"]) } });
  }
}

/** A chat completion's `arguments` (JSON text) as an input object; anything else is left for the input check to refuse. */
function chatArguments(text: unknown): unknown {
  if (typeof text !== "string") return text;
  // A tool without arguments: the empty object, as a stream that sends no argument text is read.
  if (text === "") return {};
  const parsed = parseFaithfully(text);
  // Not an object, not JSON, or a key twice: what the tool would run with cannot be decided.
  return typeof parsed === "string" ? `unreadable arguments (${parsed})` : parsed;
}

/** Parses JSON text into an object, or says why it cannot be read as every parser would read it. */
function parseFaithfully(text: string): Json | string {
  const json = withoutBom(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return "it is not JSON";
  }
  const record = asRecord(parsed);
  if (record === undefined) return "it is not a JSON object";
  if (writesAKeyTwice(json, record)) return "it writes an object key twice (parsers disagree on which value wins)";
  return record;
}

/** What one stream chunk stands for: Converse stream events for the assembler, and whole calls to decide at once. */
export interface TranslatedChunk {
  readonly events: readonly unknown[];
  readonly calls: readonly ToolCallRequest[];
}

/** A chat completion's tool call in a stream, by choice and index: the block it is assembled in. */
interface ChatBlock {
  readonly block: number;
  readonly choice: unknown;
  id: unknown;
  name: unknown;
  open: boolean;
}

/**
 * Maps the chunks of an InvokeModelWithResponseStream (each a provider's JSON event) to Converse
 * stream events for a {@link ToolCallAssembler}, the way each provider's own reader builds the
 * message:
 * - Anthropic's `content_block_*` and `message_*` events; a block is placed by the order of its
 *   start (as Anthropic's SDK places it), so one whose `index` is not that place is malformed;
 * - chat completions' `choices[].delta.tool_calls` deltas, each call (by choice and index) a block
 *   of its own, finished when the choice starts another call (as OpenAI's SDK finishes it) or ends;
 *   a later delta naming another id or tool makes it malformed; a delta without an `index` is a
 *   malformed call, and the deltas without one that continue it are part of it;
 * - Nova's Converse-shaped events.
 * Each `index` (and Nova's `contentBlockIndex`) is placed as the provider's reader places it:
 * `"0"` is slot 0; one readers may place differently makes every tool call it could reach malformed,
 * those decided already included.
 * Whole calls a chunk holds in any shape {@link invokeResponseToolCalls} reads (Mistral's
 * `choices[].message`, Cohere's `tool_calls`, a message an event carries) are returned to decide at once.
 *
 * @example
 * ```ts
 * const chunks = new InvokeStreamToolEvents();
 * for await (const chunk of output.body!) {
 *   const { events, calls } = chunks.translate(chunk);
 *   for (const call of calls) decide(call);
 *   for (const event of events) decide(assembler.accept(event));
 * }
 * ```
 */
export class InvokeStreamToolEvents {
  /** Anthropic: the blocks the message holds so far (the place the next start must name). */
  #anthropicBlocks = 0;
  /** Converse-shaped (Nova): the id and name of each tool block started, by index (to deny them all). */
  readonly #converseTools = new Map<number, { readonly id: unknown; readonly name: unknown }>();
  /** Anthropic: the id and name of each tool block placed, by place (to deny them all). */
  readonly #anthropicTools = new Map<number, { readonly id: unknown; readonly name: unknown }>();
  /** A chunk could not be read: where later blocks sit is unknown. */
  #lost = false;
  /** Cohere: whole calls were read from an event before the stream-end response repeats them. */
  #cohereCalls = false;
  readonly #chatBlocks = new Map<string, ChatBlock>();
  #nextChatBlock = 0;
  /** Chat: by choice, the id and name of its latest call without a place (no `index`), denied once. */
  readonly #unplacedChatCalls = new Map<string, { readonly id: unknown; readonly name: unknown }>();

  /** The Converse events and the whole calls a chunk stands for (a chunk that cannot be read faithfully: one malformed call). */
  translate(event: unknown): TranslatedChunk {
    const bytes = asRecord(asRecord(event)?.["chunk"])?.["bytes"];
    if (!(bytes instanceof Uint8Array)) return NOTHING;
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.#lost) {
      // After a chunk that could not be read, where a block sits is unknown (a reader may have
      // placed one there): every call a later chunk names is a malformed call, under its own id
      // (the first unreadable chunk's denial stands for the rest).
      if (!STREAM_MARKERS.some((marker) => text.includes(marker))) return NOTHING;
      return { events: [], calls: lenientCalls(text.toString("utf8"), "a tool call in a stream after a chunk that could not be read cannot be placed, so it cannot be decided") };
    }
    const parsed = parseFaithfully(text.toString("utf8"));
    if (typeof parsed === "string") {
      this.#lost = true;
      const problem = `a stream chunk could not be read (${parsed}), so a tool call in it cannot be decided`;
      // The calls a lenient reader (the last of a key written twice wins) finds in it are denied under their own ids.
      return { events: [], calls: [unreadableToolCall(problem), ...lenientCalls(text.toString("utf8"), problem)] };
    }
    try {
      const calls: ToolCallRequest[] = [];
      const type = parsed["type"];
      const anthropic = typeof type === "string";
      // Whole calls, in any shape: the chunk's own, a message it carries (but Anthropic's, whose
      // blocks are assembled like the rest), and Cohere's stream-end response (once: its calls
      // were the tool-calls-generation event's).
      const whole = [...toolUseBlocks(parsed), ...(anthropic ? [] : toolUseBlocks(asRecord(parsed["message"])))];
      if (!(parsed["event_type"] === "stream-end" && this.#cohereCalls)) whole.push(...toolUseBlocks(asRecord(parsed["response"])));
      if (whole.length > 0) {
        calls.push(...toolCallsOfMessage(whole));
        if (parsed["event_type"] !== undefined) this.#cohereCalls = true;
      }
      // Every stream shape the chunk holds, whichever else it also holds.
      const events: unknown[] = [];
      if (anthropic) events.push(...this.#anthropicEvents(type, parsed, calls));
      if (Array.isArray(parsed["choices"])) events.push(...this.#chatEvents(parsed["choices"]));
      // Nova (and anything else): Converse's own event shapes, or nothing the assembler reads.
      events.push(...this.#converseEvents(parsed));
      return { events, calls };
    } catch (error) {
      // Nothing here is expected to throw on parsed JSON; if it does (an input nested too deep to
      // serialize), the chunk's tool calls are unknown: a malformed call, not a chunk let through.
      this.#lost = true;
      return unreadable(`a stream chunk's tool calls could not be read (${error instanceof Error ? error.message : String(error)})`);
    }
  }

  /** `calls` takes a block whose input cannot be written back as text: decided whole, at once. */
  #anthropicEvents(type: string, event: Json, calls: ToolCallRequest[]): unknown[] {
    // Anthropic's SDK writes `content[index]`: "0" is block 0. An index readers may place
    // differently (Python's SDK reads "00" or true as a number) makes every tool block malformed.
    const slot = slotOf(event["index"]);
    const index = typeof slot === "number" ? slot : -1;
    const poisoned = slot === "ambiguous" && type.startsWith("content_block_") ? startedAgain(this.#anthropicTools) : [];
    const translated = this.#anthropicEvent(type, event, index, calls);
    return poisoned.length === 0 ? translated : [...poisoned, ...translated];
  }

  /**
   * A chunk in Converse's event shapes (Nova's), its `contentBlockIndex` placed as a reader of the
   * JSON places it ("0" is block 0); one readers may place differently denies every tool block.
   */
  #converseEvents(parsed: Json): unknown[] {
    const events: unknown[] = [];
    let chunk = parsed;
    for (const kind of CONVERSE_BLOCK_EVENTS) {
      const body = asRecord(chunk[kind]);
      if (body === undefined || body["contentBlockIndex"] === undefined) continue;
      const slot = slotOf(body["contentBlockIndex"]);
      if (slot === "ambiguous") events.push(...startedAgain(this.#converseTools));
      const index = typeof slot === "number" ? slot : -1;
      if (index !== body["contentBlockIndex"]) chunk = { ...chunk, [kind]: { ...body, contentBlockIndex: index } };
      const toolUse = kind === "contentBlockStart" ? asRecord(asRecord(body["start"])?.["toolUse"]) : undefined;
      if (toolUse !== undefined && index >= 0 && this.#converseTools.size < MAX_CHAT_CALLS) this.#converseTools.set(index, { id: toolUse["toolUseId"], name: toolUse["name"] });
    }
    events.push(chunk);
    return events;
  }

  /** One Anthropic event as Converse events, its `index` placed already (-1: no block a reader would place it in). */
  #anthropicEvent(type: string, event: Json, index: number, calls: ToolCallRequest[]): unknown[] {
    switch (type) {
      case "message_start": {
        // The message a reader starts from may already hold blocks: each is placed, and a tool
        // block opened with its input, as a content_block_start would be (deltas after it make it
        // malformed; it is decided at its stop, or denied when the message ends with it open).
        const content = asRecord(event["message"])?.["content"];
        this.#anthropicBlocks = 0;
        this.#anthropicTools.clear();
        const events: unknown[] = [];
        if (Array.isArray(content)) for (const block of content) events.push(...this.#placeBlock(this.#anthropicBlocks, asRecord(block), calls));
        return events;
      }
      case "content_block_start":
        // Placed by the order of starts, whatever its `index` says: an index that is not its place is malformed.
        return this.#placeBlock(index, asRecord(event["content_block"]), calls);
      case "content_block_delta": {
        const delta = asRecord(event["delta"]);
        if (delta?.["type"] === "input_json_delta") return [{ contentBlockDelta: { contentBlockIndex: index, delta: { toolUse: { input: delta["partial_json"] } } } }];
        // Text, thinking, signatures: not tool input (inside a tool block, that makes the call malformed).
        return [{ contentBlockDelta: { contentBlockIndex: index, delta: { text: "" } } }];
      }
      case "content_block_stop":
        return [{ contentBlockStop: { contentBlockIndex: index } }];
      case "message_delta":
      case "message_stop":
        // The message ends: a tool block still open then is settled (see ToolCallAssembler.endMessage).
        return [{ messageStop: {} }];
      default:
        return [];
    }
  }

  /** A block at the next place of the message (an `index` that is not that place: malformed). */
  #placeBlock(index: number, block: Json | undefined, calls: ToolCallRequest[]): unknown[] {
    const place = index === this.#anthropicBlocks ? index : -1;
    this.#anthropicBlocks++;
    const blockType = block?.["type"];
    if (blockType !== "tool_use" && blockType !== "server_tool_use") return [{ contentBlockStart: { contentBlockIndex: place, start: {} } }];
    if (place >= 0 && this.#anthropicTools.size < MAX_CHAT_CALLS) this.#anthropicTools.set(place, { id: block!["id"], name: block!["name"] });
    const start = { contentBlockStart: { contentBlockIndex: place, start: { toolUse: { toolUseId: block!["id"], name: block!["name"], ...(blockType === "server_tool_use" && { type: blockType }) } } } };
    // The input a start carries is `{}`; one that carries more is what a reader keeps when no
    // delta follows: decided as the first part of the input (any delta after it makes it invalid).
    const input = block!["input"];
    const given = asRecord(input);
    if (input === undefined || (given !== undefined && Object.keys(given).length === 0)) return [start];
    let text: string;
    try {
      text = JSON.stringify(input);
    } catch {
      // Nested too deep to write back: decided whole (its input check says why), under its own id and name.
      calls.push(...toolCallsOfMessage([{ toolUse: { toolUseId: block!["id"], name: block!["name"], input } }]));
      // Its place is taken by a block that is not a tool use: its stop is absorbed, input for it refused.
      return [{ contentBlockStart: { contentBlockIndex: place, start: {} } }];
    }
    return [start, { contentBlockDelta: { contentBlockIndex: place, delta: { toolUse: { input: text } } } }];
  }

  #chatEvents(choices: unknown): unknown[] {
    if (!Array.isArray(choices)) return [];
    const events: unknown[] = [];
    choices.forEach((entry, position) => {
      const choice = asRecord(entry);
      const slot = slotOf(choice?.["index"]);
      const choiceIndex = slot === "none" ? position : slot;
      // A choice index readers may place differently: which calls its deltas belong to is unknown,
      // so every call of every choice is denied.
      if (slot === "ambiguous") this.#poison(undefined, events);
      const delta = asRecord(choice?.["delta"]);
      const calls = delta?.["tool_calls"];
      if (Array.isArray(calls)) for (const call of calls) this.#chatDelta(choiceIndex, asRecord(call), events);
      // The legacy function_call: one call per choice, with no id (so a malformed one).
      const legacy = asRecord(delta?.["function_call"]);
      if (legacy !== undefined) this.#chatDelta(choiceIndex, { index: LEGACY_CALL, function: legacy }, events);
      const finish = choice?.["finish_reason"] ?? choice?.["stop_reason"];
      if (finish !== undefined && finish !== null) {
        this.#finishChoice(choiceIndex, events);
        events.push({ messageStop: { stopReason: finish } });
      }
    });
    return events;
  }

  #chatDelta(choice: number | "ambiguous", delta: Json | undefined, events: unknown[]): void {
    const given = delta?.["index"];
    const index = given === LEGACY_CALL ? LEGACY_CALL : slotOf(given);
    const fn = asRecord(delta?.["function"]);
    const id = delta?.["id"];
    const name = fn?.["name"];
    if (index === "ambiguous" || choice === "ambiguous") {
      // Readers may place it in different calls (Python's SDK reads "00" or true as a number,
      // JavaScript's does not): a malformed call, and every call of its choice denied with it.
      if (choice !== "ambiguous") this.#poison(choice, events);
      events.push({ contentBlockStart: { contentBlockIndex: -1, start: { toolUse: { toolUseId: id, name } } } });
      return;
    }
    const placed = index !== "none";
    let block = placed ? this.#chatBlocks.get(`${choice}:${index}`) : undefined;
    if (block === undefined) {
      if (!placed) {
        // No place to assemble it: a malformed call. Its continuations (no id or name of their own,
        // or the same ones) are part of that call, denied once; another id or name is another call.
        const unplaced = this.#unplacedChatCalls.get(String(choice));
        if (unplaced !== undefined && (!isNamed(id) || id === unplaced.id) && (!isNamed(name) || name === unplaced.name)) return;
        if (unplaced !== undefined || this.#unplacedChatCalls.size < MAX_CHAT_CALLS) this.#unplacedChatCalls.set(String(choice), { id, name });
        events.push({ contentBlockStart: { contentBlockIndex: -1, start: { toolUse: { toolUseId: id, name } } } });
        return;
      }
      if (this.#chatBlocks.size >= MAX_CHAT_CALLS) {
        // More calls than any response holds: a malformed call of its own, not kept.
        events.push({ contentBlockStart: { contentBlockIndex: -1, start: { toolUse: { toolUseId: id, name } } } });
        return;
      }
      // A new call finishes the choice's calls before it, as OpenAI's SDK finishes them.
      this.#finishChoice(choice, events);
      block = { block: this.#nextChatBlock++, choice, id, name, open: true };
      this.#chatBlocks.set(`${choice}:${index}`, block);
      events.push({ contentBlockStart: { contentBlockIndex: block.block, start: { toolUse: { toolUseId: id, name } } } });
    } else if ((isNamed(id) && id !== block.id) || (isNamed(name) && name !== block.name)) {
      // Another id or name for a call under way: a reader takes the last one, the decision the first.
      block.id = isNamed(id) ? id : block.id;
      block.name = isNamed(name) ? name : block.name;
      events.push({ contentBlockStart: { contentBlockIndex: block.block, start: { toolUse: { toolUseId: block.id, name: block.name } } } });
    }
    const args = fn?.["arguments"];
    if (args !== undefined && args !== null && args !== "") events.push({ contentBlockDelta: { contentBlockIndex: block.block, delta: { toolUse: { input: args } } } });
  }

  /**
   * Denies every call of a choice (or of all), under way or decided already: each is started again
   * under its id, which its reader denies (a block started twice; an id used twice), so a call a
   * reader may have changed is never left allowed, nor run by `governTool`.
   */
  #poison(choice: number | undefined, events: unknown[]): void {
    for (const block of this.#chatBlocks.values()) {
      if (choice === undefined || block.choice === choice) {
        block.open = true;
        events.push({ contentBlockStart: { contentBlockIndex: block.block, start: { toolUse: { toolUseId: block.id, name: block.name } } } });
      }
    }
  }

  #finishChoice(choice: unknown, events: unknown[]): void {
    for (const block of this.#chatBlocks.values()) {
      if (block.open && block.choice === choice) {
        block.open = false;
        events.push({ contentBlockStop: { contentBlockIndex: block.block } });
      }
    }
  }
}

/**
 * Where a stream event's index (a chat choice's or call's `index`, an Anthropic event's, Nova's
 * `contentBlockIndex`) places it, as readers place it: the providers' JavaScript SDKs write
 * `list[index]`, so a number and a string (or one-element list) naming the same array slot are one
 * place; "none" when missing; "ambiguous" for anything readers may place differently (a fraction,
 * a negative number, "00", " 1", true: Python's SDKs coerce some of these to a slot, JavaScript's
 * `at` reads -1 as the last block, `list[index]` puts them beside the list).
 */
function slotOf(index: unknown): number | "none" | "ambiguous" {
  if (index === undefined || index === null) return "none";
  if (typeof index === "number") return Number.isSafeInteger(index) && index >= 0 ? index + 0 : "ambiguous";
  if (typeof index !== "string" && !Array.isArray(index)) return "ambiguous";
  let key: string;
  try {
    key = String(index);
  } catch {
    return "ambiguous";
  }
  return /^(?:0|[1-9]\d{0,14})$/.test(key) && Number.isSafeInteger(Number(key)) ? Number(key) : "ambiguous";
}

/**
 * Every tool block known, started again under its id: its reader denies each (a block started
 * twice, an id used twice), under way or decided already, and `governTool` will not run it.
 */
function startedAgain(tools: ReadonlyMap<number, { readonly id: unknown; readonly name: unknown }>): unknown[] {
  const events: unknown[] = [];
  for (const [place, { id, name }] of tools) events.push({ contentBlockStart: { contentBlockIndex: place, start: { toolUse: { toolUseId: id, name } } } });
  return events;
}

/** The events of Converse's shape that name a content block. */
const CONVERSE_BLOCK_EVENTS = ["contentBlockStart", "contentBlockDelta", "contentBlockStop"] as const;

/** The block key of a chat choice's legacy `function_call` (it has no index of its own). */
const LEGACY_CALL = "function_call";

/** What a stream chunk that may carry (part of) a tool call contains, in any shape read here. */
const STREAM_MARKERS = [...MARKERS, Buffer.from("input_json_delta"), Buffer.from("contentBlock")];

/** The most chat-completion calls one stream is assembled for (a bound on what hostile output can make it keep). */
const MAX_CHAT_CALLS = 1_000;

/**
 * The tool calls a lenient JSON reader finds in a chunk that writes a key twice (its whole calls,
 * and the tool block an Anthropic start or message carries), each malformed with `problem`.
 */
function lenientCalls(text: string, problem: string): ToolCallRequest[] {
  let parsed: Json | undefined;
  try {
    parsed = asRecord(JSON.parse(withoutBom(text)));
  } catch {
    return [];
  }
  if (parsed === undefined) return [];
  const blocks = [...toolUseBlocks(parsed), ...toolUseBlocks(asRecord(parsed["message"])), ...toolUseBlocks(asRecord(parsed["response"]))];
  const started = asRecord(parsed["content_block"]);
  if (started !== undefined) blocks.push(...toolUseBlocks({ content: [started] }));
  const calls = toolCallsOfMessage(blocks);
  for (const call of calls) {
    call.input = undefined;
    call.problem = problem;
  }
  return calls;
}

const NOTHING: TranslatedChunk = Object.freeze({ events: Object.freeze([]), calls: Object.freeze([]) });

function unreadable(problem: string): TranslatedChunk {
  return { events: [], calls: [unreadableToolCall(problem)] };
}

/** An id or name a reader would take (OpenAI's SDK skips empty and null ones). */
function isNamed(value: unknown): boolean {
  return value !== undefined && value !== null && value !== "";
}

