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
  readonly choice: number;
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
 * - Nova's Converse-shaped events (a `contentBlockIndex` must be a number).
 * Each `index` is placed as the provider's SDK places it (`"0"` is slot 0). A chunk readers may
 * read otherwise — not JSON, of two formats or of another than the stream's, an index they place
 * differently, an event for a block already decided, a block started twice, a second message, a
 * chat choice out of order, with both deltas and a whole message, or without an index while it
 * names a tool call — denies every call the stream named, whole ones and those decided already
 * included (each asked for again under its id, without input), and every call a later chunk names.
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
  /** The stream's format, fixed by its first chunk that has one: a chunk of another is not read. */
  #format: StreamFormat | undefined;
  /**
   * The stream can no longer be read as every reader reads it (a chunk not JSON, an event readers
   * place differently, an event for a block already decided): every call it named was denied, and
   * every call a later chunk names is.
   */
  #lost = false;
  /** Anthropic: a message was started (a reader keeps the first, or refuses a second). */
  #anthropicStarted = false;
  /** Anthropic: the blocks the message holds so far (the place the next start must name). */
  #anthropicBlocks = 0;
  /** Anthropic: the blocks that have stopped. */
  readonly #anthropicStopped = new Set<number>();
  /** Anthropic: the tool blocks whose start carried input. */
  readonly #anthropicStartInputs = new Set<number>();
  /** Converse-shaped (Nova): the blocks that have stopped. */
  readonly #converseStopped = new Set<number>();
  /** The whole calls decided at once: {@link #taint} denies them too. */
  readonly #wholeCalls: KnownCall[] = [];
  /** Every tool block started, by the index it was given to the assembler: what {@link #taint} denies. */
  readonly #tools = new Map<number, KnownCall>();
  /** Converse-shaped (Nova): the blocks started (a second start at one is read otherwise by each reader). */
  readonly #converseStarted = new Set<number>();
  /** Cohere: whole calls were read from an event before the stream-end response repeats them. */
  #cohereCalls = false;
  readonly #chatBlocks = new Map<string, ChatBlock>();
  #nextChatBlock = 0;
  /** Chat: the choices seen, and those that came with deltas or with a whole message. */
  readonly #chatChoices = new Set<number>();
  readonly #chatDeltaChoices = new Set<number>();
  readonly #chatMessageChoices = new Set<number>();
  /** Chat: by choice, the id and name of its latest call without a place (no `index`), denied once. */
  readonly #unplacedChatCalls = new Map<number, { readonly id: unknown; readonly name: unknown }>();

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
      const problem = `a stream chunk could not be read (${parsed}), so a tool call in it cannot be decided`;
      // The calls a lenient reader (the last of a key written twice wins) finds in it are denied under their own ids.
      const lost = this.#taint();
      return { events: lost.events, calls: [unreadableToolCall(problem), ...lenientCalls(text.toString("utf8"), problem), ...lost.calls] };
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
      let tooMany = false;
      if (whole.length > 0) {
        for (const call of toolCallsOfMessage(whole)) {
          calls.push(call);
          if (call.toolUseId === "") continue;
          if (this.#wholeCalls.length < MAX_CHAT_CALLS) this.#wholeCalls.push({ id: call.toolUseId, name: call.name, serverSide: call.serverSide });
          else tooMany = true;
        }
        if (parsed["event_type"] !== undefined) this.#cohereCalls = true;
      }
      const formats = formatsOf(parsed);
      const format = formats[0];
      // A chunk of two formats, or of another than the stream's: readers differ on which events
      // they read, so on what input a call has.
      const mixed = formats.length > 1 || (format !== undefined && this.#format !== undefined && format !== this.#format);
      if (format !== undefined) this.#format ??= format;
      const events: unknown[] = [];
      let anomaly: string | undefined;
      if (mixed) anomaly = "a stream chunk holds events of more than one stream format, or of another than the stream's";
      else if (tooMany) anomaly = `more than ${MAX_CHAT_CALLS} whole tool calls in one stream`;
      else if (format === "anthropic") anomaly = this.#anthropicEvents(type as string, parsed, calls, events);
      else if (format === "chat") anomaly = this.#chatEvents(parsed["choices"] as unknown[], events);
      else if (format === "converse") anomaly = this.#converseEvents(parsed, events);
      if (anomaly === undefined) return { events, calls };
      const problem = `${anomaly}: where its tool input goes depends on the reader, so no tool call of this response can be decided`;
      // The whole calls of this chunk too, and every call it starts or names: denied, under their own ids.
      for (const call of calls) {
        call.input = undefined;
        call.problem = problem;
      }
      const lost = this.#taint();
      return { events: lost.events, calls: [...calls, unreadableToolCall(problem), ...lenientCalls(text.toString("utf8"), problem), ...lost.calls] };
    } catch (error) {
      // Nothing here is expected to throw on parsed JSON; if it does (an input nested too deep to
      // serialize), the chunk's tool calls are unknown: a malformed call, not a chunk let through.
      const lost = this.#taint();
      return { events: lost.events, calls: [unreadableToolCall(`a stream chunk's tool calls could not be read (${error instanceof Error ? error.message : String(error)})`), ...lost.calls] };
    }
  }

  /**
   * The stream is lost: every tool call it named is asked for again under its id, without input,
   * and so denied: a call a reader may have read otherwise is never left allowed, nor run by
   * `governTool`. Once per stream.
   */
  #taint(): TranslatedChunk {
    if (this.#lost) return NOTHING;
    this.#lost = true;
    // Each call asked for again under its id, with no input: denied now, whether it was decided
    // already or is still under way (then its block, never stopped, is denied when the stream ends).
    const asked = [...this.#tools.values(), ...this.#wholeCalls].map(({ id, name, serverSide }) => ({ toolUse: { toolUseId: id, name, ...(serverSide && { type: "server_tool_use" }) } }));
    return { events: [], calls: asked.length === 0 ? [] : toolCallsOfMessage(asked) };
  }

  /** A tool block started (kept to deny it if the stream is lost: at most as many as the assembler decides). */
  #started(index: number, id: unknown, name: unknown, serverSide = false): void {
    if (index >= 0 && this.#tools.size < MAX_CHAT_CALLS) this.#tools.set(index, { id, name, serverSide });
  }

  /**
   * An Anthropic event: its `index` read as Anthropic's SDK reads it (`content.at(index)`: "0" is
   * block 0, a missing one block 0 too). Answers what makes the chunk unreadable, if anything.
   * `calls` takes a block whose input cannot be written back as text: decided whole, at once.
   */
  #anthropicEvents(type: string, event: Json, calls: ToolCallRequest[], events: unknown[]): string | undefined {
    const slot = slotOf(event["index"]);
    switch (type) {
      case "message_start": {
        // Python's SDK keeps the first message of a stream, JavaScript's refuses a second.
        if (this.#anthropicStarted) return "a second message_start";
        this.#anthropicStarted = true;
        // The message a reader starts from may already hold blocks: each is placed, and a tool
        // block opened with its input, as a content_block_start would be (deltas after it make it
        // malformed; it is decided at its stop, or denied when the message ends with it open).
        const content = asRecord(event["message"])?.["content"];
        if (Array.isArray(content)) for (const block of content) this.#placeBlock(this.#anthropicBlocks, asRecord(block), calls, events);
        return undefined;
      }
      case "content_block_start":
        // Placed by the order of starts (the SDK pushes it), whatever its `index` says: an index
        // that is not its place is malformed; one readers read differently, unreadable.
        if (slot === "ambiguous") return "a content block index that readers place differently";
        this.#placeBlock(slot === "none" ? -1 : slot, asRecord(event["content_block"]), calls, events);
        return undefined;
      case "content_block_delta":
      case "content_block_stop": {
        const delta = asRecord(event["delta"]);
        const toolInput = type === "content_block_delta" && delta?.["type"] === "input_json_delta";
        if (typeof slot !== "number") {
          // Text, thinking, signatures: whatever block a reader puts them in, no tool call changes.
          if (type === "content_block_delta" && !toolInput) return undefined;
          return "a content block event whose index readers place differently";
        }
        if (this.#anthropicStopped.has(slot)) return `an event for content block ${slot}, which has stopped (a reader adds it to the call decided)`;
        // Anthropic's SDKs differ on a start that carried input: the newer parses the pieces alone.
        if (toolInput && this.#anthropicStartInputs.has(slot)) return `tool input for content block ${slot}, whose start carried input already`;
        if (type === "content_block_stop") {
          if (this.#anthropicStopped.size >= MAX_STREAM_BLOCKS) return `more than ${MAX_STREAM_BLOCKS} content blocks`;
          this.#anthropicStopped.add(slot);
          events.push({ contentBlockStop: { contentBlockIndex: slot } });
          return undefined;
        }
        // Text, thinking, signatures: not tool input (inside a tool block, that makes the call malformed).
        events.push({ contentBlockDelta: { contentBlockIndex: slot, delta: toolInput ? { toolUse: { input: delta!["partial_json"] } } : { text: "" } } });
        return undefined;
      }
      case "message_delta":
      case "message_stop":
        // The message ends: a tool block still open then is settled (see ToolCallAssembler.endMessage).
        events.push({ messageStop: {} });
        return undefined;
      default:
        return undefined;
    }
  }

  /** A block at the next place of the message (an `index` that is not that place: malformed). */
  #placeBlock(index: number, block: Json | undefined, calls: ToolCallRequest[], events: unknown[]): void {
    const place = index === this.#anthropicBlocks ? index : -1;
    this.#anthropicBlocks++;
    const blockType = block?.["type"];
    if (blockType !== "tool_use" && blockType !== "server_tool_use") {
      events.push({ contentBlockStart: { contentBlockIndex: place, start: {} } });
      return;
    }
    this.#started(place, block!["id"], block!["name"], blockType === "server_tool_use");
    const start = { contentBlockStart: { contentBlockIndex: place, start: { toolUse: { toolUseId: block!["id"], name: block!["name"], ...(blockType === "server_tool_use" && { type: blockType }) } } } };
    // The input a start carries is `{}`; one that carries more is what a reader keeps when no
    // delta follows: decided as the first part of the input (any delta after it makes it invalid).
    const input = block!["input"];
    const given = asRecord(input);
    if (input === undefined || (given !== undefined && Object.keys(given).length === 0)) {
      events.push(start);
      return;
    }
    if (place >= 0 && this.#anthropicStartInputs.size < MAX_STREAM_BLOCKS) this.#anthropicStartInputs.add(place);
    let text: string;
    try {
      text = JSON.stringify(input);
    } catch {
      // Nested too deep to write back: decided whole (its input check says why), under its own id and name.
      for (const call of toolCallsOfMessage([{ toolUse: { toolUseId: block!["id"], name: block!["name"], input } }])) calls.push(call);
      // Its place is taken by a block that is not a tool use: its stop is absorbed, input for it refused.
      events.push({ contentBlockStart: { contentBlockIndex: place, start: {} } });
      return;
    }
    events.push(start, { contentBlockDelta: { contentBlockIndex: place, delta: { toolUse: { input: text } } } });
  }

  /**
   * A chunk in Converse's event shapes (Nova's). Its `contentBlockIndex` must be a number: a reader
   * of the JSON may keep "0" apart from 0 (a Python dict) or not (a JavaScript list). Answers what
   * makes the chunk unreadable, if anything.
   */
  #converseEvents(chunk: Json, events: unknown[]): string | undefined {
    // Readers differ on a chunk holding two events (the assembler, like some, reads one of them).
    if (CONVERSE_BLOCK_EVENTS.filter((kind) => chunk[kind] !== undefined).length > 1) return "a chunk holding more than one content block event";
    for (const kind of CONVERSE_BLOCK_EVENTS) {
      const body = asRecord(chunk[kind]);
      if (body === undefined || body["contentBlockIndex"] === undefined) continue;
      const index = body["contentBlockIndex"];
      if (typeof index !== "number" || slotOf(index) !== index) return "a contentBlockIndex that readers place differently";
      if (kind === "contentBlockStart") {
        if (this.#converseStarted.has(index)) return `a second start of content block ${index}`;
        if (this.#converseStarted.size >= MAX_STREAM_BLOCKS) return `more than ${MAX_STREAM_BLOCKS} content blocks`;
        this.#converseStarted.add(index);
      } else if (this.#converseStopped.has(index)) {
        return `an event for content block ${index}, which has stopped (a reader adds it to the call decided)`;
      }
      if (kind === "contentBlockStop") this.#converseStopped.add(index);
      const toolUse = kind === "contentBlockStart" ? asRecord(asRecord(body["start"])?.["toolUse"]) : undefined;
      if (toolUse !== undefined) this.#started(index, toolUse["toolUseId"], toolUse["name"]);
    }
    events.push(chunk);
    return undefined;
  }

  /**
   * A chat-completions chunk's choices: each choice and call placed as OpenAI's SDKs place them.
   * Answers what makes the chunk unreadable, if anything: a choice or call index they place
   * differently, a choice first seen out of order (Python's SDK places it by arrival), a choice
   * with deltas and a whole message (JavaScript's SDK lets the message replace what it built), a
   * delta for a call already finished.
   */
  #chatEvents(choices: unknown[], events: unknown[]): string | undefined {
    for (let position = 0; position < choices.length; position++) {
      const choice = asRecord(choices[position]);
      const slot = slotOf(choice?.["index"]);
      if (slot === "ambiguous") return "a choice index that readers place differently";
      const delta = asRecord(choice?.["delta"]);
      // Without an index, OpenAI's JavaScript SDK keeps a choice beside the list (dropped from the
      // message), its Python SDK refuses it: harmless for text, unreadable for a tool call.
      if (slot === "none" && (delta?.["tool_calls"] !== undefined || delta?.["function_call"] !== undefined || (choice?.["message"] ?? null) !== null)) {
        return "a choice without an index that names a tool call";
      }
      const choiceIndex = slot === "none" ? position : slot;
      if (!this.#chatChoices.has(choiceIndex)) {
        if (choiceIndex !== this.#chatChoices.size) return `choice ${choiceIndex} before choice ${this.#chatChoices.size}`;
        if (this.#chatChoices.size >= MAX_CHAT_CALLS) return `more than ${MAX_CHAT_CALLS} choices`;
        this.#chatChoices.add(choiceIndex);
      }
      const message = choice?.["message"];
      if (delta !== undefined) this.#chatDeltaChoices.add(choiceIndex);
      if (message !== undefined && message !== null) this.#chatMessageChoices.add(choiceIndex);
      if (this.#chatDeltaChoices.has(choiceIndex) && this.#chatMessageChoices.has(choiceIndex)) return `choice ${choiceIndex} with both deltas and a whole message`;
      const calls = delta?.["tool_calls"];
      if (Array.isArray(calls)) {
        for (const call of calls) {
          const anomaly = this.#chatDelta(choiceIndex, asRecord(call), events);
          if (anomaly !== undefined) return anomaly;
        }
      }
      // The legacy function_call: one call per choice, with no id (so a malformed one).
      const legacy = asRecord(delta?.["function_call"]);
      if (legacy !== undefined) {
        const anomaly = this.#chatDelta(choiceIndex, { function: legacy }, events, true);
        if (anomaly !== undefined) return anomaly;
      }
      const finish = choice?.["finish_reason"] ?? choice?.["stop_reason"];
      if (finish !== undefined && finish !== null) {
        this.#finishChoice(choiceIndex, events);
        events.push({ messageStop: { stopReason: finish } });
      }
    }
    return undefined;
  }

  #chatDelta(choice: number, delta: Json | undefined, events: unknown[], legacy = false): string | undefined {
    // The legacy call's block key is one no index gives (slotOf never answers a negative number).
    const index = legacy ? -1 : slotOf(delta?.["index"]);
    if (index === "ambiguous") return "a tool call index that readers place differently";
    const fn = asRecord(delta?.["function"]);
    const id = delta?.["id"];
    const name = fn?.["name"];
    const placed = index !== "none";
    let block = placed ? this.#chatBlocks.get(`${choice}:${index}`) : undefined;
    if (block === undefined) {
      if (!placed) {
        // No place to assemble it: a malformed call. Its continuations (no id or name of their own,
        // or the same ones) are part of that call, denied once; another id or name is another call.
        const unplaced = this.#unplacedChatCalls.get(choice);
        if (unplaced !== undefined && (!isNamed(id) || id === unplaced.id) && (!isNamed(name) || name === unplaced.name)) return undefined;
        if (unplaced !== undefined || this.#unplacedChatCalls.size < MAX_CHAT_CALLS) this.#unplacedChatCalls.set(choice, { id, name });
        events.push({ contentBlockStart: { contentBlockIndex: -1, start: { toolUse: { toolUseId: id, name } } } });
        return undefined;
      }
      if (this.#chatBlocks.size >= MAX_CHAT_CALLS) {
        // More calls than any response holds: a malformed call of its own, not kept.
        events.push({ contentBlockStart: { contentBlockIndex: -1, start: { toolUse: { toolUseId: id, name } } } });
        return undefined;
      }
      // A new call finishes the choice's calls before it, as OpenAI's SDK finishes them.
      this.#finishChoice(choice, events);
      block = { block: this.#nextChatBlock++, choice, id, name, open: true };
      this.#chatBlocks.set(`${choice}:${index}`, block);
      this.#started(block.block, id, name);
      events.push({ contentBlockStart: { contentBlockIndex: block.block, start: { toolUse: { toolUseId: id, name } } } });
    } else if (!block.open) {
      return `a delta for a tool call already finished (a reader adds it to the call decided)`;
    } else if ((isNamed(id) && id !== block.id) || (isNamed(name) && name !== block.name)) {
      // Another id or name for a call under way: a reader takes the last one, the decision the first.
      block.id = isNamed(id) ? id : block.id;
      block.name = isNamed(name) ? name : block.name;
      events.push({ contentBlockStart: { contentBlockIndex: block.block, start: { toolUse: { toolUseId: block.id, name: block.name } } } });
    }
    const args = fn?.["arguments"];
    if (args !== undefined && args !== null && args !== "") events.push({ contentBlockDelta: { contentBlockIndex: block.block, delta: { toolUse: { input: args } } } });
    return undefined;
  }

  #finishChoice(choice: number, events: unknown[]): void {
    for (const block of this.#chatBlocks.values()) {
      if (block.open && block.choice === choice) {
        block.open = false;
        events.push({ contentBlockStop: { contentBlockIndex: block.block } });
      }
    }
  }
}

/** A tool call a stream named: what {@link InvokeStreamToolEvents} denies when the stream is lost. */
interface KnownCall {
  readonly id: unknown;
  readonly name: unknown;
  readonly serverSide: boolean;
}

/** The most content blocks one stream is followed through (a bound on what hostile output can make it keep). */
const MAX_STREAM_BLOCKS = 10_000;

/** The stream formats a chunk can be read in (a chunk of Cohere's or of whole messages has none). */
type StreamFormat = "anthropic" | "chat" | "converse";

/** The stream formats whose events a chunk holds. */
function formatsOf(parsed: Json): StreamFormat[] {
  const formats: StreamFormat[] = [];
  if (typeof parsed["type"] === "string") formats.push("anthropic");
  if (Array.isArray(parsed["choices"])) formats.push("chat");
  if (CONVERSE_EVENTS.some((kind) => parsed[kind] !== undefined)) formats.push("converse");
  return formats;
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

/** The events of Converse's shape that name a content block. */
const CONVERSE_BLOCK_EVENTS = ["contentBlockStart", "contentBlockDelta", "contentBlockStop"] as const;

/** Every event of Converse's stream shape. */
const CONVERSE_EVENTS = [...CONVERSE_BLOCK_EVENTS, "messageStart", "messageStop", "metadata"] as const;


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
  // The starts of the streamed shapes: a Converse-shaped tool block, a chat call's first delta.
  const toolUse = asRecord(asRecord(asRecord(parsed["contentBlockStart"])?.["start"])?.["toolUse"]);
  if (toolUse !== undefined) blocks.push({ toolUse: { toolUseId: toolUse["toolUseId"], name: toolUse["name"] } });
  const choices = parsed["choices"];
  if (Array.isArray(choices)) {
    for (const choice of choices) {
      const deltaCalls = asRecord(asRecord(choice)?.["delta"])?.["tool_calls"];
      if (!Array.isArray(deltaCalls)) continue;
      for (const call of deltaCalls) {
        const entry = asRecord(call);
        if (entry !== undefined && isNamed(entry["id"])) blocks.push({ toolUse: { toolUseId: entry["id"], name: asRecord(entry["function"])?.["name"] } });
      }
    }
  }
  const calls = toolCallsOfMessage(blocks);
  for (const call of calls) {
    call.input = undefined;
    call.problem = problem;
  }
  return calls;
}

const NOTHING: TranslatedChunk = Object.freeze({ events: Object.freeze([]), calls: Object.freeze([]) });

/** An id or name a reader would take (OpenAI's SDK skips empty and null ones). */
function isNamed(value: unknown): boolean {
  return value !== undefined && value !== null && value !== "";
}

