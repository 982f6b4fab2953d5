/**
 * The tool calls in InvokeModel responses and InvokeModelWithResponseStream chunks, which hold
 * each provider's own JSON. Every shape a reader of the output might take a tool call from is
 * read — Anthropic's `content[]` `tool_use` blocks, Nova's `output.message.content[]` `toolUse`
 * blocks, chat completions' `choices[].message.tool_calls[]` (Mistral, OpenAI), Cohere's top-level
 * `tool_calls[]` (which carry no id, so each is a malformed call) — whatever the
 * model's provider, and mapped to Converse's shapes, so that one assembler and one decision path
 * ({@link toolCallsOfMessage}, {@link ToolCallAssembler}) serve every command.
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

/** Text that every response holding a tool call, in any shape read here, contains. */
const MARKERS = ['"tool_use"', '"server_tool_use"', '"toolUse"', '"tool_calls"'].map((marker) => Buffer.from(marker));

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
  if (bytes.byteLength > MAX_TOOL_RESPONSE_BYTES) return [unreadableToolCall(`the response names tool calls but is larger than ${MAX_TOOL_RESPONSE_BYTES} bytes, so they cannot be decided`)];
  const parsed = parseFaithfully(bytes.toString("utf8"));
  if (typeof parsed === "string") return [unreadableToolCall(`the response names tool calls but ${parsed}, so they cannot be decided`)];
  return toolCallsOfMessage(toolUseBlocks(parsed));
}

/** Converse-shaped `{ toolUse }` blocks for every tool call the response holds, in any shape read here. */
function toolUseBlocks(response: Json): unknown[] {
  const blocks: unknown[] = [];
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
  // Chat completions: choices[].message.tool_calls[] of { id, function: { name, arguments: "<JSON text>" } }.
  const choices = response["choices"];
  if (Array.isArray(choices)) {
    for (const choice of choices) {
      const calls = asRecord(asRecord(choice)?.["message"])?.["tool_calls"];
      if (calls === undefined) continue;
      if (!Array.isArray(calls)) {
        blocks.push({ toolUse: "tool_calls is not an array" });
        continue;
      }
      for (const call of calls) {
        const entry = asRecord(call);
        const fn = asRecord(entry?.["function"]);
        blocks.push({ toolUse: { toolUseId: entry?.["id"], name: fn?.["name"], input: chatArguments(fn?.["arguments"]) } });
      }
    }
  }
  // Cohere Command R: tool_calls[] of { name, parameters }, with no id (so each is a malformed call: use Converse).
  const cohereCalls = response["tool_calls"];
  if (Array.isArray(cohereCalls)) {
    for (const call of cohereCalls) {
      const entry = asRecord(call);
      blocks.push({ toolUse: { toolUseId: entry?.["id"], name: entry?.["name"], input: entry?.["parameters"] } });
    }
  }
  return blocks;
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
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return "it is not JSON";
  }
  const record = asRecord(parsed);
  if (record === undefined) return "it is not a JSON object";
  if (keysWritten(text) !== keysHeld(record)) return "it writes an object key twice (parsers disagree on which value wins)";
  return record;
}

/**
 * Maps the chunks of an InvokeModelWithResponseStream (each a provider's JSON event) to Converse
 * stream events for a {@link ToolCallAssembler}: Anthropic's `content_block_*` and `message_*`
 * events, Nova's Converse-shaped events as they are, and chat-completion chunks' `tool_calls`
 * deltas (each call a block of its own, all stopped at the choice's `finish_reason`).
 *
 * @example
 * ```ts
 * const events = new InvokeStreamToolEvents();
 * for await (const chunk of output.body!) for (const event of events.translate(chunk)) decide(assembler.accept(event));
 * ```
 */
export class InvokeStreamToolEvents {
  /** Chat completions: the blocks started, by the tool call's `index`. */
  readonly #chatBlocks = new Set<number>();

  /**
   * The Converse events a chunk stands for; a chunk that cannot be read faithfully (not JSON, a
   * key twice) is returned as an {@link unreadableToolCall} to decide instead.
   */
  translate(event: unknown): unknown[] | ToolCallRequest {
    const bytes = asRecord(asRecord(event)?.["chunk"])?.["bytes"];
    if (!(bytes instanceof Uint8Array)) return [];
    const parsed = parseFaithfully(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
    if (typeof parsed === "string") return unreadableToolCall(`a stream chunk could not be read (${parsed}), so a tool call in it cannot be decided`);
    const type = parsed["type"];
    if (typeof type === "string") return anthropicEvents(type, parsed);
    if (parsed["choices"] !== undefined) return this.#chatEvents(parsed["choices"]);
    // Nova (and anything else): Converse's own event shapes, or nothing the assembler reads.
    return [parsed];
  }

  #chatEvents(choices: unknown): unknown[] {
    if (!Array.isArray(choices)) return [];
    const events: unknown[] = [];
    for (const choice of choices) {
      const entry = asRecord(choice);
      const calls = asRecord(entry?.["delta"])?.["tool_calls"];
      if (Array.isArray(calls)) {
        for (const call of calls) {
          const delta = asRecord(call);
          const index = delta?.["index"];
          const fn = asRecord(delta?.["function"]);
          // A call's first delta names it: its block starts (a second naming starts it again, which the assembler refuses).
          if (delta?.["id"] !== undefined || fn?.["name"] !== undefined) {
            if (typeof index === "number") this.#chatBlocks.add(index);
            events.push({ contentBlockStart: { contentBlockIndex: index, start: { toolUse: { toolUseId: delta?.["id"], name: fn?.["name"] } } } });
          }
          const args = fn?.["arguments"];
          if (args !== undefined && args !== "") events.push({ contentBlockDelta: { contentBlockIndex: index, delta: { toolUse: { input: args } } } });
        }
      }
      const finish = entry?.["finish_reason"];
      if (finish !== undefined && finish !== null) {
        for (const index of this.#chatBlocks) events.push({ contentBlockStop: { contentBlockIndex: index } });
        this.#chatBlocks.clear();
        events.push({ messageStop: { stopReason: finish } });
      }
    }
    return events;
  }
}

/** Anthropic's stream events as Converse's. */
function anthropicEvents(type: string, event: Json): unknown[] {
  const index = event["index"];
  switch (type) {
    case "content_block_start": {
      const block = asRecord(event["content_block"]);
      const blockType = block?.["type"];
      if (blockType !== "tool_use" && blockType !== "server_tool_use") return [{ contentBlockStart: { contentBlockIndex: index, start: {} } }];
      const start = { contentBlockStart: { contentBlockIndex: index, start: { toolUse: { toolUseId: block!["id"], name: block!["name"], ...(blockType === "server_tool_use" && { type: blockType }) } } } };
      // The input a start carries is `{}`; one that carries more is what a reader keeps when no
      // delta follows: decided as the first part of the input (any delta after it makes it invalid).
      const input = block!["input"];
      const given = asRecord(input);
      if (input === undefined || (given !== undefined && Object.keys(given).length === 0)) return [start];
      return [start, { contentBlockDelta: { contentBlockIndex: index, delta: { toolUse: { input: JSON.stringify(input) } } } }];
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

function asRecord(value: unknown): Json | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}
