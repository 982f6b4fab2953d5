/**
 * Extracts the tool calls a model asks for, from a whole Converse output
 * ({@link toolCallsOfMessage}) or from a ConverseStream, event by event ({@link ToolCallAssembler}).
 *
 * Model output is untrusted: nothing here throws on it. Every call carries a `problem` instead,
 * and a call with a `problem` must not run. Memory is bounded: a tool input larger than
 * `maxInputBytes` is dropped (not concatenated), at most `maxOpenBlocks` content blocks are tracked
 * at once, and at most `maxToolCalls` tool-use ids are remembered per response. JSON nesting is
 * checked without recursion.
 *
 * @example
 * ```ts
 * import { ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
 * import { ToolCallAssembler } from "./tools/tool-calls.js";
 *
 * const { stream } = await bedrock.send(new ConverseStreamCommand(input));
 * const assembler = new ToolCallAssembler();
 * for await (const event of stream!) {
 *   const call = assembler.accept(event);
 *   if (call) await authorize(call); // deny when call.problem is set
 * }
 * for (const call of assembler.finish()) await authorize(call); // never completed: always a problem
 * ```
 * @module
 */
import { ConfigurationError } from "../errors.js";
import { keysWritten } from "../json-keys.js";

/**
 * One tool call the model asked for, as read from its output.
 *
 * `input` is defined exactly when the input itself was read, parsed and checked (a JSON object,
 * within the size and depth limits). A call may have an `input` and still a `problem` (a duplicate
 * `toolUseId`, a bad name): any `problem` means the call must not run.
 *
 * @example
 * ```ts
 * const call: ToolCallRequest = {
 *   toolUseId: "tooluse_1", name: "get_weather", input: { city: "Paris" },
 *   index: 1, serverSide: false, inputBytes: 16,
 * };
 * if (call.problem !== undefined) throw new Error(`refusing tool call: ${call.problem}`);
 * ```
 */
export interface ToolCallRequest {
  /** The model's id for this call; `""` when missing, not a string or too long (see `problem`). */
  toolUseId: string;
  /** The tool's name, case-sensitive and never normalized; `""` when missing, not a string or too long. */
  name: string;
  /** The parsed input object; `undefined` when it is missing, malformed, not an object, too large or too deep. */
  input: Record<string, unknown> | undefined;
  /** The content block index (the position in `output.message.content`, or `contentBlockIndex`); `-1` when the event had none. */
  index: number;
  /** `true` for a tool AWS runs itself (`toolUse.type === "server_tool_use"`). */
  serverSide: boolean;
  /** Why this call must not run; absent when nothing is wrong. Several problems are joined with `"; "`. */
  problem?: string;
  /**
   * The input's size in UTF-8 bytes: from a stream, the bytes received (dropped ones included);
   * from a whole message, the size of its compact JSON (`JSON.stringify`), counted only up to the
   * limit: an oversized input reports `maxInputBytes + 1`. 0 when the input could not be read.
   */
  inputBytes: number;
}

/**
 * A tool call assembled from a ConverseStream: the same shape as {@link ToolCallRequest}, so both
 * paths are authorized alike.
 *
 * @example
 * ```ts
 * const call: AssembledToolCall | undefined = assembler.accept(event);
 * if (call && !call.problem) console.log(call.name, call.input);
 * ```
 */
export type AssembledToolCall = ToolCallRequest;

/**
 * Limits on what is read from model output. Each must be a positive integer.
 *
 * @example
 * ```ts
 * const assembler = new ToolCallAssembler({ maxInputBytes: 64 * 1024, maxDepth: 16 });
 * const calls = toolCallsOfMessage(output.output?.message?.content, { maxInputBytes: 64 * 1024 });
 * ```
 */
export interface ToolCallLimits {
  /** The largest tool input, in UTF-8 bytes, that is kept and parsed. Default 1 MiB. */
  maxInputBytes?: number;
  /** The deepest nesting of objects and arrays (the input object itself is level 1). Default 64. */
  maxDepth?: number;
  /** The most content blocks a stream may have open at once (streams only). Default 16. */
  maxOpenBlocks?: number;
  /** The most tool calls one response may ask for; later ones get a `problem`. Default 1000. */
  maxToolCalls?: number;
}

/**
 * The limits used when none are given.
 *
 * @example
 * ```ts
 * new ToolCallAssembler({ ...DEFAULT_TOOL_CALL_LIMITS, maxInputBytes: 4096 });
 * ```
 */
export const DEFAULT_TOOL_CALL_LIMITS: Readonly<Required<ToolCallLimits>> = Object.freeze({
  maxInputBytes: 1024 * 1024,
  maxDepth: 64,
  maxOpenBlocks: 16,
  maxToolCalls: 1000,
});

/**
 * The problem of a tool block still open when the stream ended (see {@link ToolCallAssembler.finish}).
 *
 * @example
 * ```ts
 * const unfinished = assembler.finish().filter((c) => c.problem?.includes(STREAM_ENDED_PROBLEM));
 * ```
 */
export const STREAM_ENDED_PROBLEM = "stream ended before the tool input was complete";

/** The longest tool name or tool-use id accepted, in UTF-16 code units. */
const MAX_NAME_LENGTH = 256;
const SERVER_TOOL_USE = "server_tool_use";
// C0/C1 controls, DEL, invisible format characters (zero-width, bidi overrides) and lone surrogates.
const CONTROL = /[\p{Cc}\p{Cf}\p{Cs}]/u;

function resolveLimits(limits: ToolCallLimits | undefined): Required<ToolCallLimits> {
  if (limits === undefined) return DEFAULT_TOOL_CALL_LIMITS;
  if (typeof limits !== "object" || limits === null) {
    throw new ConfigurationError(`tool call limits: must be an object (got ${describe(limits)})`);
  }
  const resolved = { ...DEFAULT_TOOL_CALL_LIMITS };
  for (const key of Object.keys(DEFAULT_TOOL_CALL_LIMITS) as (keyof ToolCallLimits)[]) {
    const value = limits[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ConfigurationError(`tool call limits.${key}: must be a positive integer (got ${typeof value === "number" ? value : describe(value)})`);
    }
    resolved[key] = value;
  }
  return resolved;
}

/** What a value is, never what it holds: model output (a number included) stays out of problems. */
function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isBlockIndex(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function addProblem(current: string | undefined, problem: string): string {
  return current === undefined ? problem : `${current}; ${problem}`;
}

/** A field of a toolUse (`toolUseId`, `name`): the value to report and its problem, if any. */
function checkLabel(value: unknown, label: string): { value: string; problem?: string } {
  if (value === undefined || value === null) return { value: "", problem: `${label} is missing` };
  if (typeof value !== "string") return { value: "", problem: `${label} is not a string` };
  if (value.length === 0) return { value: "", problem: `${label} is empty` };
  if (value.length > MAX_NAME_LENGTH) {
    return { value: "", problem: `${label} is longer than ${MAX_NAME_LENGTH} characters (${value.length})` };
  }
  if (CONTROL.test(value)) return { value, problem: `${label} contains control or invisible characters` };
  return { value };
}

/**
 * A tool call that stands for model output that could not be read faithfully (a response or a
 * stream chunk that is not JSON, or writes a key twice, where tool calls may be): it has a
 * `problem`, so it is denied, and the output does not pass as holding no tool call.
 *
 * @example
 * ```ts
 * calls.push(unreadableToolCall("the response body is not JSON"));
 * ```
 */
export function unreadableToolCall(problem: string): ToolCallRequest {
  return newCall(-1, problem);
}

function newCall(index: number, problem?: string): ToolCallRequest {
  const call: ToolCallRequest = { toolUseId: "", name: "", input: undefined, index, serverSide: false, inputBytes: 0 };
  if (problem !== undefined) call.problem = problem;
  return call;
}

/**
 * The tool-use ids seen in one response, and the count of tool calls, bounded by `maxToolCalls`.
 * Fills `call.toolUseId`, `call.name`, `call.serverSide` and their problems.
 */
class CallRegistry {
  private readonly ids = new Map<string, number>();
  private count = 0;

  constructor(private readonly maxToolCalls: number) {}

  identify(call: ToolCallRequest, toolUse: unknown): void {
    if (!isRecord(toolUse)) {
      call.problem = addProblem(call.problem, `toolUse is not an object (got ${describe(toolUse)})`);
      return;
    }
    const id = checkLabel(toolUse["toolUseId"], "toolUseId");
    const name = checkLabel(toolUse["name"], "tool name");
    call.toolUseId = id.value;
    call.name = name.value;
    call.serverSide = toolUse["type"] === SERVER_TOOL_USE;
    if (id.problem !== undefined) call.problem = addProblem(call.problem, id.problem);
    if (name.problem !== undefined) call.problem = addProblem(call.problem, name.problem);
    this.count++;
    if (this.count > this.maxToolCalls) {
      call.problem = addProblem(call.problem, `more than ${this.maxToolCalls} tool calls in one response`);
      return;
    }
    if (id.value === "") return;
    const first = this.ids.get(id.value);
    if (first !== undefined) {
      call.problem = addProblem(call.problem, `duplicate toolUseId (first used by content block ${first})`);
    } else {
      this.ids.set(id.value, call.index);
    }
  }

  clear(): void {
    this.ids.clear();
    this.count = 0;
  }
}

/** What {@link inspectInput} found: the compact JSON size (0 when not counted) and the object keys. */
interface InputShape {
  bytes: number;
  keys: number;
}

/**
 * Checks that `root` is a JSON object no deeper than `maxDepth`, without recursion. With a finite
 * `maxBytes`, also checks that every value is JSON (finite numbers, plain objects and arrays) and
 * counts the UTF-8 size of its compact JSON, stopping just past `maxBytes`.
 * Returns its shape or the problem.
 */
function inspectInput(root: unknown, maxDepth: number, maxBytes: number): InputShape | string {
  if (!isPlainObject(root)) return `tool input is not a JSON object (got ${describe(root)})`;
  const count = maxBytes !== Infinity;
  const tooLarge = `input larger than ${maxBytes} bytes`;
  const values: unknown[] = [root];
  const depths: number[] = [1];
  let bytes = 0;
  let keyCount = 0;
  while (values.length > 0) {
    const value = values.pop();
    const depth = depths.pop() as number;
    if (value === null) {
      bytes += 4;
      continue;
    }
    switch (typeof value) {
      case "string":
        if (count) bytes += jsonStringBytes(value);
        break;
      case "number":
        if (!Number.isFinite(value)) return "tool input contains a non-finite number";
        if (count) bytes += String(value).length;
        break;
      case "boolean":
        bytes += value ? 4 : 5;
        break;
      case "object": {
        if (depth > maxDepth) return `tool input is nested deeper than ${maxDepth} levels`;
        if (Array.isArray(value)) {
          const n = value.length;
          bytes += n === 0 ? 2 : n + 1; // brackets and commas
          if (count && bytes > maxBytes) return tooLarge;
          for (let i = n - 1; i >= 0; i--) {
            values.push(value[i]);
            depths.push(depth + 1);
          }
        } else if (isPlainObject(value)) {
          const keys = Object.keys(value);
          keyCount += keys.length;
          bytes += keys.length === 0 ? 2 : keys.length + 1; // braces and commas
          for (let i = keys.length - 1; i >= 0; i--) {
            const key = keys[i] as string;
            if (count) bytes += jsonStringBytes(key) + 1; // the key and its colon
            values.push(value[key]);
            depths.push(depth + 1);
          }
        } else {
          return "tool input is not JSON (it contains an object that is not a plain object or array)";
        }
        break;
      }
      default:
        return `tool input is not JSON (it contains a ${typeof value})`;
    }
    if (count && bytes > maxBytes) return tooLarge;
  }
  return { bytes, keys: keyCount };
}

const HIGH_FIRST = 0xd800;
const HIGH_LAST = 0xdbff;
const LOW_FIRST = 0xdc00;
const LOW_LAST = 0xdfff;

/** The UTF-8 size of `s` as `JSON.stringify` writes it, quotes and escapes included. */
function jsonStringBytes(s: string): number {
  let n = 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20) n += c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d ? 2 : 6;
    else if (c === 0x22 || c === 0x5c) n += 2;
    else if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= HIGH_FIRST && c <= HIGH_LAST) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d >= LOW_FIRST && d <= LOW_LAST) {
        n += 4;
        i++;
      } else n += 6; // a lone surrogate is written as \udxxx
    } else if (c >= LOW_FIRST && c <= LOW_LAST) n += 6;
    else n += 3;
  }
  return n;
}

/**
 * The UTF-8 size of one chunk of a longer string (lone surrogates count as U+FFFD, 3 bytes).
 * `afterHigh`: the text before this chunk ended with a high surrogate, already counted as 3 bytes;
 * a low surrogate starting this chunk completes that pair (4 bytes in all), so it adds 1.
 */
function utf8ChunkBytes(s: string, afterHigh: boolean): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= HIGH_FIRST && c <= HIGH_LAST) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d >= LOW_FIRST && d <= LOW_LAST) {
        n += 4;
        i++;
      } else n += 3;
    } else if (c >= LOW_FIRST && c <= LOW_LAST) n += i === 0 && afterHigh ? 1 : 3;
    else n += 3;
  }
  return n;
}

const POSITION = /at position (\d+)/;

/** Parses an assembled tool input, returning the object or the problem. */
function parseInput(text: string, maxDepth: number): Record<string, unknown> | string {
  // A tool without arguments may stream no input at all: that is the empty object.
  if (text.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // Never quote the input (V8's message may): tool arguments are content, recorded only on opt-in.
    const message = error instanceof Error ? error.message : "";
    const at = POSITION.exec(message);
    const truncated = message.includes("end of JSON input") || (at !== null && Number(at[1]) >= text.trimEnd().length);
    return truncated ? "tool input is truncated JSON" : "tool input is not valid JSON";
  }
  const checked = inspectInput(parsed, maxDepth, Infinity);
  if (typeof checked === "string") return checked;
  // JSON.parse keeps the last of a key written twice; a parser that keeps the first would run the
  // tool with another value than the one decided. The caller may assemble the deltas itself.
  if (keysWritten(text) !== checked.keys) return "tool input writes an object key twice";
  return parsed as Record<string, unknown>;
}

/**
 * Every tool call in a Converse output's `output.message.content`: one {@link ToolCallRequest} per
 * `toolUse` block, in order. Never throws; anything wrong with a block is its `problem`. Content
 * that is not an array (no message) gives no calls; blocks that are not tool uses are skipped.
 *
 * `input` is the output's own object (not a copy), checked to be a plain JSON object within
 * `maxInputBytes` (its compact JSON size) and `maxDepth`; do not mutate it.
 *
 * @param content - `output.output?.message?.content` of a `ConverseCommandOutput`.
 * @param limits - Optional {@link ToolCallLimits}; `maxOpenBlocks` does not apply here.
 * @throws {@link ConfigurationError} only when `limits` itself is invalid.
 *
 * @example
 * ```ts
 * const output = await bedrock.send(new ConverseCommand(input));
 * for (const call of toolCallsOfMessage(output.output?.message?.content)) {
 *   if (call.problem) deny(call);
 *   else if (!call.serverSide) await runTool(call.name, call.input!);
 * }
 * ```
 */
export function toolCallsOfMessage(content: unknown, limits?: ToolCallLimits): ToolCallRequest[] {
  const { maxInputBytes, maxDepth, maxToolCalls } = resolveLimits(limits);
  const calls: ToolCallRequest[] = [];
  if (!Array.isArray(content)) return calls;
  const registry = new CallRegistry(maxToolCalls);
  for (let index = 0; index < content.length; index++) {
    let call: ToolCallRequest | undefined;
    try {
      const block: unknown = content[index];
      if (!isRecord(block)) continue;
      const toolUse = block["toolUse"];
      if (toolUse === undefined) continue;
      call = newCall(index);
      registry.identify(call, toolUse);
      if (isRecord(toolUse)) {
        const input = toolUse["input"];
        const checked = inspectInput(input, maxDepth, maxInputBytes);
        if (typeof checked === "string") {
          call.problem = addProblem(call.problem, checked);
          if (checked.startsWith("input larger")) call.inputBytes = maxInputBytes + 1;
        } else {
          call.input = input as Record<string, unknown>;
          call.inputBytes = checked.bytes;
        }
      }
      calls.push(call);
    } catch {
      // Only hostile objects (throwing getters, proxies) get here, never deserialized output.
      const failed = call ?? newCall(index);
      failed.input = undefined;
      failed.problem = addProblem(failed.problem, "tool use block could not be read");
      calls.push(failed);
    }
  }
  return calls;
}

/** A tool block open in a stream. */
class OpenToolBlock {
  /**
   * The input chunks received so far, joined once at the block's stop; emptied once the input is
   * dropped. Not concatenated as they come: a rope of thousands of tiny strings, scattered by the
   * garbage collector over a long stream, made the parse at the stop twice as slow as a join.
   */
  chunks: string[] = [];
  /** The UTF-16 length of `chunks`. */
  kept = 0;
  /** The input is not kept: too large, or the block was never started as a tool use. */
  dropping: boolean;
  /** The text received so far ends with a high surrogate. */
  afterHigh = false;
  /** A non-string input chunk was already reported. */
  badChunk = false;

  constructor(
    readonly call: AssembledToolCall,
    dropping: boolean,
  ) {
    this.dropping = dropping;
  }
}

/** Stands for a `delta.toolUse` that is not an object. */
const NOT_AN_OBJECT: unique symbol = Symbol("not an object");

/** An open content block that is not a tool use (text, reasoning, image, tool result...). */
const OTHER_BLOCK = null;
type OpenBlock = OpenToolBlock | typeof OTHER_BLOCK;

/**
 * Assembles the tool calls of one ConverseStream response from its events, in order.
 *
 * It only observes: {@link ToolCallAssembler.accept} is synchronous, O(size of the event), keeps
 * nothing but the open tool blocks' input text, and returns a call when its block stops. Every
 * tool block started yields exactly one call: at its `contentBlockStop`, when its index is started
 * again, or from {@link ToolCallAssembler.finish} (a start refused because `maxOpenBlocks` are
 * already open is returned at once, with its problem). Anomalies with no started block (input
 * deltas or a stop for an index that is not open) yield a call with `toolUseId` and `name` `""` and
 * a `problem`.
 *
 * Memory: at most `maxOpenBlocks` blocks are tracked, each keeping at most `maxInputBytes` of
 * input (past that, the text kept so far is released and later chunks only counted), and at most
 * `maxToolCalls` ids are remembered. {@link ToolCallAssembler.bufferedLength} tells what is kept.
 *
 * Text blocks have no `contentBlockStart` in ConverseStream: a block seen first through a delta
 * that is not tool input is an open non-tool block until its stop.
 *
 * @example
 * ```ts
 * const assembler = new ToolCallAssembler({ maxInputBytes: 256 * 1024 });
 * assembler.accept({ contentBlockStart: { contentBlockIndex: 1, start: { toolUse: { toolUseId: "t1", name: "search" } } } });
 * assembler.accept({ contentBlockDelta: { contentBlockIndex: 1, delta: { toolUse: { input: '{"q":"ce' } } } });
 * assembler.accept({ contentBlockDelta: { contentBlockIndex: 1, delta: { toolUse: { input: 'dar"}' } } } });
 * const call = assembler.accept({ contentBlockStop: { contentBlockIndex: 1 } });
 * // call: { toolUseId: "t1", name: "search", input: { q: "cedar" }, index: 1, serverSide: false, inputBytes: 13 }
 * ```
 */
export class ToolCallAssembler {
  private readonly limits: Required<ToolCallLimits>;
  private readonly open = new Map<number, OpenBlock>();
  private readonly registry: CallRegistry;
  private buffered = 0;

  /**
   * @param limits - Optional {@link ToolCallLimits}.
   * @throws {@link ConfigurationError} when a limit is not a positive integer.
   */
  constructor(limits?: ToolCallLimits) {
    this.limits = resolveLimits(limits);
    this.registry = new CallRegistry(this.limits.maxToolCalls);
  }

  /**
   * The UTF-16 length of all input text currently kept: never more than
   * `maxOpenBlocks × maxInputBytes`.
   *
   * @example
   * ```ts
   * assembler.accept(event);
   * metrics.record(assembler.bufferedLength);
   * ```
   */
  get bufferedLength(): number {
    return this.buffered;
  }

  /**
   * The number of content blocks open now (tool and other).
   *
   * @example
   * ```ts
   * if (assembler.openBlockCount > 0) console.warn("response still has open content blocks");
   * ```
   */
  get openBlockCount(): number {
    return this.open.size;
  }

  /**
   * Observes one ConverseStream event (`ConverseStreamOutput`; anything else is ignored) and
   * returns the tool call it completes, if any. Never throws.
   *
   * @example
   * ```ts
   * for await (const event of output.stream!) {
   *   const call = assembler.accept(event);
   *   if (call) decisions.push(authorizeToolCall(call));
   *   yield event;
   * }
   * ```
   */
  accept(event: unknown): AssembledToolCall | undefined {
    if (!isRecord(event)) return undefined;
    try {
      const delta = event["contentBlockDelta"];
      if (delta !== undefined) return this.onDelta(delta);
      const start = event["contentBlockStart"];
      if (start !== undefined) return this.onStart(start);
      const stop = event["contentBlockStop"];
      if (stop !== undefined) return this.onStop(stop);
      return undefined;
    } catch {
      // Only hostile objects (throwing getters, proxies) get here, never deserialized events.
      return newCall(-1, "stream event could not be read");
    }
  }

  /**
   * Ends the response: returns the tool blocks that never stopped, each with `input` undefined
   * and the problem {@link STREAM_ENDED_PROBLEM}, and resets the assembler for a new response.
   *
   * @example
   * ```ts
   * try { for await (const event of stream) observe(assembler.accept(event)); }
   * finally { for (const call of assembler.finish()) observe(call); }
   * ```
   */
  finish(): AssembledToolCall[] {
    const unfinished: AssembledToolCall[] = [];
    for (const block of this.open.values()) {
      if (block === OTHER_BLOCK) continue;
      block.call.input = undefined;
      block.call.problem = addProblem(block.call.problem, STREAM_ENDED_PROBLEM);
      unfinished.push(block.call);
    }
    this.open.clear();
    this.registry.clear();
    this.buffered = 0;
    return unfinished;
  }

  /**
   * The message ended (`messageStop`, or `metadata` after it) while tool blocks are still open: an
   * event out of order, which a conforming stream never sends. Each open tool block is ended as a
   * malformed call (its input is incomplete: the application has been told the turn is over), and
   * its index stays taken, so a late `contentBlockStop` for it is absorbed, not a call of its own.
   *
   * @returns the calls it ended; none when no tool block is open.
   * @example
   * ```ts
   * if (event.messageStop) for (const call of assembler.endMessage()) deny(call);
   * ```
   */
  endMessage(): AssembledToolCall[] {
    const ended: AssembledToolCall[] = [];
    for (const [index, block] of this.open) {
      if (block === OTHER_BLOCK) continue;
      ended.push(this.close(block, `the message ended while the tool use block ${index} was still open`));
      this.open.set(index, OTHER_BLOCK);
    }
    return ended;
  }

  private onStart(start: unknown): AssembledToolCall | undefined {
    if (!isRecord(start)) return newCall(-1, `contentBlockStart is not an object (got ${describe(start)})`);
    const index = start["contentBlockIndex"];
    const body = start["start"];
    const toolUse = isRecord(body) ? body["toolUse"] : undefined;
    const valid = isBlockIndex(index);
    const existing = valid ? this.open.get(index) : undefined;
    if (toolUse === undefined) {
      // Another kind of block (image, tool result...). It closes a tool block left open there.
      if (!valid) return undefined;
      if (existing === undefined) {
        if (this.open.size < this.limits.maxOpenBlocks) this.open.set(index, OTHER_BLOCK);
        return undefined;
      }
      if (existing === OTHER_BLOCK) return undefined;
      this.open.set(index, OTHER_BLOCK);
      return this.close(existing, `contentBlockStart for content block ${index}, which is already open`);
    }
    const call = newCall(valid ? index : -1);
    this.registry.identify(call, toolUse);
    if (!valid) {
      call.problem = addProblem(call.problem, "contentBlockStart without a valid contentBlockIndex");
      return call;
    }
    const again = `contentBlockStart for content block ${index}, which is already open`;
    if (existing === undefined) {
      if (this.open.size >= this.limits.maxOpenBlocks) {
        call.problem = addProblem(call.problem, `more than ${this.limits.maxOpenBlocks} content blocks open at once`);
        return call;
      }
      this.open.set(index, new OpenToolBlock(call, false));
      return undefined;
    }
    call.problem = addProblem(call.problem, again);
    this.open.set(index, new OpenToolBlock(call, false));
    return existing === OTHER_BLOCK ? undefined : this.close(existing, again);
  }

  private onDelta(delta: unknown): AssembledToolCall | undefined {
    if (!isRecord(delta)) return undefined;
    const body = delta["delta"];
    const toolUse = isRecord(body) ? body["toolUse"] : undefined;
    const index = delta["contentBlockIndex"];
    const valid = isBlockIndex(index);
    if (toolUse === undefined) {
      // Text, reasoning...: a text block has no contentBlockStart, its first delta opens it.
      if (!valid) return undefined;
      const open = this.open.get(index);
      if (open === undefined) {
        if (this.open.size < this.limits.maxOpenBlocks) this.open.set(index, OTHER_BLOCK);
      } else if (open !== OTHER_BLOCK && !open.dropping) {
        // Another kind of delta inside a tool use block: the caller gets content the decision never
        // saw on the block's index (an application gathering deltas by index would run it).
        open.call.problem = addProblem(open.call.problem, `a delta that is not tool input inside the tool use block ${index}`);
        this.drop(open);
      }
      return undefined;
    }
    const chunk = isRecord(toolUse) ? toolUse["input"] : NOT_AN_OBJECT;
    if (!valid) return newCall(-1, "tool input delta without a valid contentBlockIndex");
    let block = this.open.get(index);
    if (block === undefined || block === OTHER_BLOCK) {
      const orphan = new OpenToolBlock(
        newCall(
          index,
          block === undefined
            ? `tool input for content block ${index}, which was never started`
            : `tool input for content block ${index}, which was not started as a tool use`,
        ),
        true,
      );
      if (block === undefined && this.open.size >= this.limits.maxOpenBlocks) {
        // Nowhere to track it: report this delta alone.
        this.append(orphan, chunk);
        return orphan.call;
      }
      this.open.set(index, orphan);
      block = orphan;
    }
    this.append(block, chunk);
    return undefined;
  }

  private onStop(stop: unknown): AssembledToolCall | undefined {
    const index = isRecord(stop) ? stop["contentBlockIndex"] : undefined;
    if (!isBlockIndex(index)) return newCall(-1, "contentBlockStop without a valid contentBlockIndex");
    const block = this.open.get(index);
    if (block === undefined) return newCall(index, `contentBlockStop for content block ${index}, which is not open`);
    this.open.delete(index);
    if (block === OTHER_BLOCK) return undefined;
    const call = block.call;
    if (!block.dropping) {
      const parsed = parseInput(block.chunks.join(""), this.limits.maxDepth);
      if (typeof parsed === "string") call.problem = addProblem(call.problem, parsed);
      else call.input = parsed;
    }
    this.release(block);
    return call;
  }

  private append(block: OpenToolBlock, chunk: unknown): void {
    if (typeof chunk !== "string") {
      if (chunk !== undefined && !block.badChunk) {
        block.badChunk = true;
        const problem =
          chunk === NOT_AN_OBJECT ? "toolUse delta is not an object" : `tool input delta is not a string (got ${describe(chunk)})`;
        block.call.problem = addProblem(block.call.problem, problem);
        this.drop(block);
      }
      return;
    }
    if (chunk.length === 0) return;
    block.call.inputBytes += utf8ChunkBytes(chunk, block.afterHigh);
    const last = chunk.charCodeAt(chunk.length - 1);
    block.afterHigh = last >= HIGH_FIRST && last <= HIGH_LAST;
    if (block.dropping) return;
    if (block.call.inputBytes > this.limits.maxInputBytes) {
      block.call.problem = addProblem(block.call.problem, `input larger than ${this.limits.maxInputBytes} bytes`);
      this.drop(block);
      return;
    }
    block.chunks.push(chunk);
    block.kept += chunk.length;
    this.buffered += chunk.length;
  }

  /** Stops keeping a block's input: it will not be parsed. */
  private drop(block: OpenToolBlock): void {
    block.dropping = true;
    this.release(block);
  }

  private release(block: OpenToolBlock): void {
    this.buffered -= block.kept;
    block.chunks = [];
    block.kept = 0;
  }

  /** Ends a tool block early (its index was started again): its input is incomplete. */
  private close(block: OpenToolBlock, problem: string): AssembledToolCall {
    this.release(block);
    block.call.input = undefined;
    block.call.problem = addProblem(block.call.problem, problem);
    return block.call;
  }
}
