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
import { keysHeld, keysWritten } from "../json-keys.js";
import { toolCallsOfMessage, unreadableToolCall, type ToolCallRequest } from "./tool-calls.js";

/** A response larger than this is not parsed for tool calls; if it may hold one, it stands as a malformed call. */
export const MAX_TOOL_RESPONSE_BYTES = 8 * 1024 * 1024;

/**
 * Text that every response holding a tool call, in any shape read here, contains — unless it
 * writes JSON escapes (`"tool\u005fuse"` reads as `"tool_use"`): a body with `\u` is parsed.
 */
const MARKERS = ['"tool_use"', '"server_tool_use"', '"toolUse"', '"tool_calls"', '"function_call"', "\\u"].map((marker) => Buffer.from(marker));

const BOM = "\ufeff";

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
  if (!MARKERS.some((marker) => bytes.includes(marker))) return [];
  if (bytes.byteLength > MAX_TOOL_RESPONSE_BYTES) return [unreadableToolCall(`the response may name tool calls but is larger than ${MAX_TOOL_RESPONSE_BYTES} bytes, so they cannot be decided`)];
  const parsed = parseFaithfully(bytes.toString("utf8"));
  if (typeof parsed === "string") {
    // Escapes alone, in a body that is not JSON (text, image bytes): nothing a JSON reader takes a tool call from.
    if (!MARKERS.slice(0, -1).some((marker) => bytes.includes(marker))) return [];
    return [unreadableToolCall(`the response names tool calls but ${parsed}, so they cannot be decided`)];
  }
  return toolCallsOfMessage(toolUseBlocks(parsed));
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
  const parsed = parseFaithfully(text);
  // Not an object, not JSON, or a key twice: what the tool would run with cannot be decided.
  return typeof parsed === "string" ? `unreadable arguments (${parsed})` : parsed;
}

/** Parses JSON text into an object, or says why it cannot be read as every parser would read it. */
function parseFaithfully(text: string): Json | string {
  // A byte order mark is dropped as a text decoder drops it.
  const json = text.startsWith(BOM) ? text.slice(1) : text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return "it is not JSON";
  }
  const record = asRecord(parsed);
  if (record === undefined) return "it is not a JSON object";
  if (keysWritten(json) !== keysHeld(record)) return "it writes an object key twice (parsers disagree on which value wins)";
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
 *   a later delta naming another id or tool makes it malformed;
 * - Nova's Converse-shaped events as they are.
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
  readonly #chatBlocks = new Map<string, ChatBlock>();
  #nextChatBlock = 0;

  /** The Converse events and the whole calls a chunk stands for (a chunk that cannot be read faithfully: one malformed call). */
  translate(event: unknown): TranslatedChunk {
    const bytes = asRecord(asRecord(event)?.["chunk"])?.["bytes"];
    if (!(bytes instanceof Uint8Array)) return NOTHING;
    const parsed = parseFaithfully(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
    if (typeof parsed === "string") return unreadable(`a stream chunk could not be read (${parsed}), so a tool call in it cannot be decided`);
    try {
      const message = asRecord(parsed["message"]);
      const whole = [...toolUseBlocks(parsed), ...toolUseBlocks(message), ...toolUseBlocks(asRecord(parsed["response"]))];
      const calls = whole.length > 0 ? toolCallsOfMessage(whole) : [];
      const type = parsed["type"];
      let events: unknown[];
      if (typeof type === "string") events = this.#anthropicEvents(type, parsed, message, calls);
      else if (parsed["choices"] !== undefined) events = this.#chatEvents(parsed["choices"]);
      // Nova (and anything else): Converse's own event shapes, or nothing the assembler reads.
      else events = [parsed];
      return { events, calls };
    } catch (error) {
      // Nothing here is expected to throw on parsed JSON; if it does (an input nested too deep to
      // serialize), the chunk's tool calls are unknown: a malformed call, not a chunk let through.
      return unreadable(`a stream chunk's tool calls could not be read (${error instanceof Error ? error.message : String(error)})`);
    }
  }

  /** `calls` takes a start whose input cannot be written back as text: decided whole, at once. */
  #anthropicEvents(type: string, event: Json, message: Json | undefined, calls: ToolCallRequest[]): unknown[] {
    const index = event["index"];
    switch (type) {
      case "message_start": {
        const content = message?.["content"];
        this.#anthropicBlocks = Array.isArray(content) ? content.length : 0;
        return [];
      }
      case "content_block_start": {
        // Placed by the order of starts, whatever its `index` says: an index that is not its place is malformed.
        const place = index === this.#anthropicBlocks ? index : -1;
        this.#anthropicBlocks++;
        const block = asRecord(event["content_block"]);
        const blockType = block?.["type"];
        if (blockType !== "tool_use" && blockType !== "server_tool_use") return [{ contentBlockStart: { contentBlockIndex: place, start: {} } }];
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

  #chatEvents(choices: unknown): unknown[] {
    if (!Array.isArray(choices)) return [];
    const events: unknown[] = [];
    choices.forEach((entry, position) => {
      const choice = asRecord(entry);
      const choiceIndex = choice?.["index"] ?? position;
      const calls = asRecord(choice?.["delta"])?.["tool_calls"];
      if (Array.isArray(calls)) for (const call of calls) this.#chatDelta(choiceIndex, asRecord(call), events);
      const finish = choice?.["finish_reason"] ?? choice?.["stop_reason"];
      if (finish !== undefined && finish !== null) {
        this.#finishChoice(choiceIndex, events);
        events.push({ messageStop: { stopReason: finish } });
      }
    });
    return events;
  }

  #chatDelta(choice: unknown, delta: Json | undefined, events: unknown[]): void {
    const index = delta?.["index"];
    const fn = asRecord(delta?.["function"]);
    const id = delta?.["id"];
    const name = fn?.["name"];
    let block = Number.isSafeInteger(index) && (index as number) >= 0 ? this.#chatBlocks.get(`${String(choice)}:${index as number}`) : undefined;
    if (block === undefined) {
      if (!(Number.isSafeInteger(index) && (index as number) >= 0) || this.#chatBlocks.size >= MAX_CHAT_CALLS) {
        // No place to assemble it (no index, or more calls than any response holds): a malformed call of its own.
        events.push({ contentBlockStart: { contentBlockIndex: -1, start: { toolUse: { toolUseId: id, name } } } });
        return;
      }
      // A new call finishes the choice's calls before it, as OpenAI's SDK finishes them.
      this.#finishChoice(choice, events);
      block = { block: this.#nextChatBlock++, choice, id, name, open: true };
      this.#chatBlocks.set(`${String(choice)}:${index as number}`, block);
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

  #finishChoice(choice: unknown, events: unknown[]): void {
    for (const block of this.#chatBlocks.values()) {
      if (block.open && block.choice === choice) {
        block.open = false;
        events.push({ contentBlockStop: { contentBlockIndex: block.block } });
      }
    }
  }
}

/** The most chat-completion calls one stream is assembled for (a bound on what hostile output can make it keep). */
const MAX_CHAT_CALLS = 1_000;

const NOTHING: TranslatedChunk = Object.freeze({ events: Object.freeze([]), calls: Object.freeze([]) });

function unreadable(problem: string): TranslatedChunk {
  return { events: [], calls: [unreadableToolCall(problem)] };
}

/** An id or name a reader would take (OpenAI's SDK skips empty and null ones). */
function isNamed(value: unknown): boolean {
  return value !== undefined && value !== null && value !== "";
}

function asRecord(value: unknown): Json | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}
