/**
 * An independent reference for tool-call governance, for property-based tests: what a tool call
 * the model asked for should be decided, worked out in plain TypeScript from the documented rules
 * (never by calling src/). It mirrors the governance the property tests configure: the declared
 * tools, their input types, and the Cedar policies' conditions, restated as code.
 */

// ---------------------------------------------------------------------------------------------
// The governance under test (tools, policies) and its restatement as plain TypeScript
// ---------------------------------------------------------------------------------------------

export const TOOL_SCHEMAS = {
  lookup_invoice: { type: "object", properties: { invoiceId: { type: "string" } }, required: ["invoiceId"] },
  issue_refund: {
    type: "object",
    properties: { invoiceId: { type: "string" }, amount: { type: "number" }, note: { type: "string" } },
    required: ["invoiceId", "amount"],
  },
  bulk_update: {
    type: "object",
    properties: {
      count: { type: "integer" },
      items: { type: "array", items: { type: "object", properties: { sku: { type: "string" }, qty: { type: "integer" } }, required: ["sku", "qty"] } },
      options: {
        type: "object",
        properties: {
          dryRun: { type: "boolean" },
          tags: { type: "array", items: { type: "string" } },
          limits: { type: "object", properties: { max: { type: "number" } } },
        },
        required: ["dryRun"],
      },
    },
    required: ["count", "items"],
  },
  delete_customer: { type: "object", properties: { customerId: { type: "string" } }, required: ["customerId"] },
} as const;

/** The Cedar policies. Each condition is restated in {@link POLICY} below. */
export const POLICIES = `
@id("agents-may-chat")
permit (principal in Bedrock::Group::"agents", action in Bedrock::Action::"ModelInvocation", resource);

@id("read-tools") @reason("agents may use tools that only read")
permit (principal in Bedrock::Group::"agents", action in Bedrock::Action::"ToolUse", resource) when { resource.effect == "read" };

@id("no-secret-invoices") @reason("secret invoices are never looked up")
forbid (principal, action == Bedrock::Action::"tool:lookup_invoice", resource)
when { context has input && context.input.invoiceId like "*secret*" };

@id("small-refunds") @reason("refunds up to 100 only")
permit (principal in Bedrock::Group::"agents", action == Bedrock::Action::"tool:issue_refund", resource)
when { context.phase == "offer" || (context has input && context.input.amount.lessThanOrEqual(decimal("100.0"))) };

@id("small-batches") @reason("batches of at most 10, never tagged forbidden, with a max below 5.5")
permit (principal in Bedrock::Group::"agents", action == Bedrock::Action::"tool:bulk_update", resource)
when {
  context.phase == "offer" ||
  (context has input && context.input.count >= 0 && context.input.count <= 10 &&
   !(context.input has options && context.input.options has tags && context.input.options.tags.contains("forbidden")) &&
   !(context.input has options && context.input.options has limits && context.input.options.limits has max &&
     !context.input.options.limits.max.lessThan(decimal("5.5"))))
};

@id("legacy-search") @reason("the legacy search tool, undeclared, may be used")
permit (principal in Bedrock::Group::"agents", action == Bedrock::Action::"UndeclaredTool", resource == Bedrock::Tool::"legacy_search");
`;

/** The names a request may list in `toolConfig.tools`. */
export const CANDIDATES = ["lookup_invoice", "issue_refund", "bulk_update", "delete_customer", "ping", "legacy_search", "wire_money", "web_grounding"] as const;
/** Listed as a `systemTool` (run by AWS), not a `toolSpec`. */
export const SYSTEM_TOOLS: ReadonlySet<string> = new Set(["web_grounding"]);
/** The listed tools the policies allow to be offered (the others are filtered out before the call). */
export const OFFERABLE: ReadonlySet<string> = new Set(["lookup_invoice", "issue_refund", "bulk_update", "ping", "legacy_search", "web_grounding"]);

// ---------------------------------------------------------------------------------------------
// Input → Cedar value, restated (the shape checks of toCedarValue's documentation)
// ---------------------------------------------------------------------------------------------

type Ty = "str" | "int" | "dec" | "bool" | { set: Ty } | { rec: Record<string, readonly [Ty, boolean]> };

const LOOKUP: Ty = { rec: { invoiceId: ["str", true] } };
const REFUND: Ty = { rec: { invoiceId: ["str", true], amount: ["dec", true], note: ["str", false] } };
const BULK: Ty = {
  rec: {
    count: ["int", true],
    items: [{ set: { rec: { sku: ["str", true], qty: ["int", true] } } }, true],
    options: [{ rec: { dryRun: ["bool", true], tags: [{ set: "str" }, false], limits: [{ rec: { max: ["dec", false] } }, false] } }, false],
  },
};

class Refused extends Error {}
const refuse = (): never => {
  throw new Refused();
};

export function isPlain(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

const DEC_MAX = 9_223_372_036_854_775_807n;
const DEC_MIN = -9_223_372_036_854_775_808n;

/** A Cedar decimal (in units of 10^-4), or undefined when the number is not exactly one. */
export function decimalOf(v: unknown): bigint | undefined {
  if (typeof v !== "number" || !Number.isFinite(v) || Math.abs(v) >= 1e21) return undefined;
  const fixed = v.toFixed(4);
  if (Number(fixed) !== v) return undefined; // more than 4 fractional digits: never rounded
  const scaled = BigInt(fixed.replace(".", ""));
  return scaled > DEC_MAX || scaled < DEC_MIN ? undefined : scaled;
}

interface ConvertState {
  nodes: number;
  bytes: number;
}

function convert(v: unknown, t: Ty, st: ConvertState): unknown {
  if (++st.nodes > 10_000) refuse();
  if (t === "str") {
    if (typeof v !== "string" || !v.isWellFormed()) refuse();
    const bytes = Buffer.byteLength(v as string, "utf8");
    if (bytes > 65_536) refuse();
    st.bytes += bytes;
    if (st.bytes > 1_048_576) refuse();
    return v;
  }
  if (t === "int") return Number.isSafeInteger(v) ? v : refuse();
  if (t === "bool") return typeof v === "boolean" ? v : refuse();
  if (t === "dec") return decimalOf(v) ?? refuse();
  if ("set" in t) {
    if (!Array.isArray(v)) refuse();
    return (v as unknown[]).map((x) => (x === null || x === undefined ? refuse() : convert(x, t.set, st)));
  }
  if (!isPlain(v)) refuse();
  const record = v as Record<string, unknown>;
  for (const reserved of ["__entity", "__extn", "__expr"]) if (Object.hasOwn(record, reserved)) refuse();
  // Every declared tool here maps whole: a property its schema does not declare is refused.
  for (const key of Object.keys(record)) if (!Object.hasOwn(t.rec, key)) refuse();
  const out: Record<string, unknown> = {};
  for (const [key, [type, required]] of Object.entries(t.rec)) {
    const x = Object.hasOwn(record, key) ? record[key] : undefined;
    if (x === null || x === undefined) {
      if (required) refuse();
      continue;
    }
    out[key] = convert(x, type, st);
  }
  return out;
}

function converted<T>(input: unknown, t: Ty): T | undefined {
  try {
    return convert(input, t, { nodes: 0, bytes: 0 }) as T;
  } catch (error) {
    if (error instanceof Refused) return undefined;
    throw error;
  }
}

/** Whether the policies allow a "call" of an offered tool with this input (it has no problem). */
export const POLICY: Readonly<Record<string, (input: unknown) => boolean>> = {
  lookup_invoice: (input) => {
    const v = converted<{ invoiceId: string }>(input, LOOKUP);
    return v !== undefined && !v.invoiceId.includes("secret");
  },
  issue_refund: (input) => {
    const v = converted<{ amount: bigint }>(input, REFUND);
    return v !== undefined && v.amount <= 1_000_000n;
  },
  bulk_update: (input) => {
    const v = converted<{ count: number; options?: { tags?: string[]; limits?: { max?: bigint } } }>(input, BULK);
    if (v === undefined || v.count < 0 || v.count > 10) return false;
    if (v.options?.tags?.includes("forbidden")) return false;
    const max = v.options?.limits?.max;
    return max === undefined || max < 55_000n;
  },
  // No input schema: the input is never shown to policies; "read" tools are allowed.
  ping: () => true,
  web_grounding: () => true,
  // Undeclared, permitted by name.
  legacy_search: () => true,
};

// ---------------------------------------------------------------------------------------------
// Tool calls read from model output, restated
// ---------------------------------------------------------------------------------------------

/** A tool call as the reference reads it. */
export interface RefCall {
  toolUseId: string;
  name: string;
  serverSide: boolean;
  /** Something is wrong with the call itself: it must be denied without evaluating policies. */
  problem: boolean;
  input: Record<string, unknown> | undefined;
  /** The stream event (position in the event list) at which it is decided; -1 at the stream's end. */
  at: number;
}

const MAX_LABEL = 256;
const MAX_INPUT_BYTES = 1024 * 1024;
const MAX_DEPTH = 64;
const MAX_OPEN = 16;
const MAX_CALLS = 1000;

function label(v: unknown): { value: string; ok: boolean } {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_LABEL) return { value: "", ok: false };
  return { value: v, ok: !/[\p{Cc}\p{Cf}\p{Cs}]/u.test(v) };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

/** Tool-use ids of one response: a repeated id is a problem, as are calls past the limit. */
class Ids {
  readonly #seen = new Set<string>();
  #count = 0;
  identify(toolUse: unknown): Pick<RefCall, "toolUseId" | "name" | "serverSide" | "problem"> {
    if (!isRecord(toolUse)) return { toolUseId: "", name: "", serverSide: false, problem: true };
    const id = label(toolUse["toolUseId"]);
    const name = label(toolUse["name"]);
    let problem = !id.ok || !name.ok;
    if (++this.#count > MAX_CALLS) problem = true;
    else if (id.value !== "") {
      if (this.#seen.has(id.value)) problem = true;
      else this.#seen.add(id.value);
    }
    return { toolUseId: id.value, name: name.value, serverSide: toolUse["type"] === "server_tool_use", problem };
  }
}

/** Whether a parsed input is a JSON object within the depth limit, holding only JSON values. */
export function inputOk(root: unknown): boolean {
  if (!isPlain(root)) return false;
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v === "string" || typeof v === "boolean") continue;
    if (typeof v === "number") {
      if (!Number.isFinite(v)) return false;
      continue;
    }
    if (typeof v !== "object") return false; // undefined, functions...
    if (depth > MAX_DEPTH) return false;
    if (Array.isArray(v)) for (const x of v) stack.push([x, depth + 1]);
    else if (isPlain(v)) for (const k of Object.keys(v)) stack.push([v[k], depth + 1]);
    else return false;
  }
  return true;
}

/** The tool calls of a Converse output's `output.message.content`, as the application received it. */
export function converseCalls(content: unknown): RefCall[] {
  if (!Array.isArray(content)) return [];
  const ids = new Ids();
  const calls: RefCall[] = [];
  for (const block of content) {
    if (!isRecord(block) || block["toolUse"] === undefined) continue;
    const toolUse = block["toolUse"];
    const call: RefCall = { ...ids.identify(toolUse), input: undefined, at: 0 };
    const input = isRecord(toolUse) ? toolUse["input"] : undefined;
    if (inputOk(input) && Buffer.byteLength(JSON.stringify(input), "utf8") <= MAX_INPUT_BYTES) call.input = input as Record<string, unknown>;
    else call.problem = true;
    calls.push(call);
  }
  return calls;
}

/** A ConverseStream event, as the application receives it: `{ [type]: payload }`. */
export interface StreamEvent {
  readonly type: string;
  readonly payload: Record<string, unknown>;
}

interface ToolBlock {
  call: RefCall;
  text: string;
  bytes: number;
  dropping: boolean;
  badChunk: boolean;
}
const OTHER = "other" as const;

function parseStreamed(text: string): Record<string, unknown> | undefined {
  if (text === "") return {}; // a tool without arguments may stream no input at all
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!inputOk(parsed)) return undefined;
  // A key written twice in one object is refused (parsers disagree on which value wins).
  return writesAKeyTwice(text) ? undefined : (parsed as Record<string, unknown>);
}

/**
 * Whether valid JSON text writes a key twice in one object, by a small recursive-descent reading
 * of the text (each object's keys in a set), unlike src's counting.
 */
export function writesAKeyTwice(text: string): boolean {
  let at = 0;
  const space = (): void => {
    while (/\s/.test(text[at] ?? "")) at++;
  };
  const stringToken = (): string => {
    const match = /^"(?:[^"\\]|\\.)*"/.exec(text.slice(at));
    if (match === null) throw new Error("not a string");
    at += match[0].length;
    return JSON.parse(match[0]) as string;
  };
  const value = (): boolean => {
    space();
    const c = text[at];
    if (c === "{") {
      at++;
      const keys = new Set<string>();
      let twice = false;
      space();
      if (text[at] === "}") return at++, false;
      for (;;) {
        space();
        const key = stringToken();
        if (keys.has(key)) twice = true;
        keys.add(key);
        space();
        at++; // the colon
        if (value()) twice = true;
        space();
        if (text[at++] === "}") return twice;
      }
    }
    if (c === "[") {
      at++;
      let twice = false;
      space();
      if (text[at] === "]") return at++, false;
      for (;;) {
        if (value()) twice = true;
        space();
        if (text[at++] === "]") return twice;
      }
    }
    if (c === '"') return stringToken(), false;
    const scalar = /^[^,\]}\s]+/.exec(text.slice(at));
    at += scalar === null ? 1 : scalar[0].length;
    return false;
  };
  return value();
}

/**
 * The tool calls of a ConverseStream, in the order they are decided: every tool block started
 * yields one call (at its stop, when its index is started again, at once when it cannot be
 * tracked, at the message's end — `messageStop` or `metadata` — or at the end of the stream), and every anomaly (input or a stop for a block that is
 * not open, an invalid index) yields one call with a problem.
 */
export function streamCalls(events: readonly StreamEvent[]): RefCall[] {
  const open = new Map<number, ToolBlock | typeof OTHER>();
  const ids = new Ids();
  const out: RefCall[] = [];
  const valid = (i: unknown): i is number => Number.isSafeInteger(i) && (i as number) >= 0;
  const anomaly = (at: number): RefCall => ({ toolUseId: "", name: "", serverSide: false, problem: true, input: undefined, at });
  const emit = (block: ToolBlock, at: number, problem = false) => {
    block.call.at = at;
    if (problem) {
      block.call.problem = true;
      block.call.input = undefined;
    }
    out.push(block.call);
  };
  const append = (block: ToolBlock, chunk: unknown) => {
    if (typeof chunk !== "string") {
      if (chunk !== undefined && !block.badChunk) {
        block.badChunk = true;
        block.call.problem = true;
        block.dropping = true;
        block.text = "";
      }
      return;
    }
    block.bytes += Buffer.byteLength(chunk, "utf8");
    if (block.dropping) return;
    if (block.bytes > MAX_INPUT_BYTES) {
      block.call.problem = true;
      block.dropping = true;
      block.text = "";
      return;
    }
    block.text += chunk;
  };

  events.forEach(({ type, payload }, at) => {
    if (type === "messageStop" || type === "metadata") {
      // The message ended with tool blocks open (out of order): each is a malformed call, decided
      // before this event reaches the application; its index stays taken (a late stop is absorbed).
      for (const [index, block] of open) {
        if (block === OTHER) continue;
        emit(block, at, true);
        open.set(index, OTHER);
      }
      return;
    }
    const index = payload["contentBlockIndex"];
    if (type === "contentBlockStart") {
      const start = payload["start"];
      const toolUse = isRecord(start) ? start["toolUse"] : undefined;
      const existing = valid(index) ? open.get(index) : undefined;
      if (toolUse === undefined) {
        if (!valid(index)) return;
        if (existing === undefined) {
          if (open.size < MAX_OPEN) open.set(index, OTHER);
        } else if (existing !== OTHER) {
          open.set(index, OTHER);
          emit(existing, at, true);
        }
        return;
      }
      const call: RefCall = { ...ids.identify(toolUse), input: undefined, at };
      const block: ToolBlock = { call, text: "", bytes: 0, dropping: false, badChunk: false };
      if (!valid(index)) return void emit(block, at, true);
      if (existing === undefined) {
        if (open.size >= MAX_OPEN) return void emit(block, at, true);
        open.set(index, block);
        return;
      }
      call.problem = true; // started again while open
      open.set(index, block);
      if (existing !== OTHER) emit(existing, at, true);
      return;
    }
    if (type === "contentBlockDelta") {
      const delta = payload["delta"];
      const toolUse = isRecord(delta) ? delta["toolUse"] : undefined;
      if (toolUse === undefined) {
        if (!valid(index)) return;
        const existing = open.get(index);
        if (existing === undefined) {
          if (open.size < MAX_OPEN) open.set(index, OTHER);
        } else if (existing !== OTHER && !existing.dropping) {
          // Text (or anything but tool input) inside a tool block: the call is malformed.
          existing.call.problem = true;
          existing.dropping = true;
          existing.text = "";
        }
        return;
      }
      const chunk = isRecord(toolUse) ? toolUse["input"] : Symbol("not an object");
      if (!valid(index)) return void out.push(anomaly(at));
      let block = open.get(index);
      if (block === undefined || block === OTHER) {
        const orphan: ToolBlock = { call: anomaly(at), text: "", bytes: 0, dropping: true, badChunk: false };
        if (block === undefined && open.size >= MAX_OPEN) {
          append(orphan, chunk);
          return void emit(orphan, at);
        }
        open.set(index, orphan);
        block = orphan;
      }
      append(block, chunk);
      return;
    }
    if (type === "contentBlockStop") {
      if (!valid(index)) return void out.push(anomaly(at));
      const block = open.get(index);
      if (block === undefined) return void out.push(anomaly(at));
      open.delete(index);
      if (block === OTHER) return;
      if (!block.dropping) {
        const input = parseStreamed(block.text);
        if (input === undefined) block.call.problem = true;
        else block.call.input = input;
      }
      emit(block, at);
    }
  });
  for (const block of open.values()) if (block !== OTHER) emit(block, -1, true);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The expected decision
// ---------------------------------------------------------------------------------------------

/**
 * The decision a call should get, given the tool names the request listed:
 * - a call with a problem is denied;
 * - a call the model marks as run by AWS (`server_tool_use`) is allowed only for a tool offered as
 *   a `systemTool` (the model's word alone does not make an application tool server-side), and a
 *   call not so marked, for a tool offered as a `systemTool`, is denied (AWS runs it, not the application);
 * - any other call is allowed only for an offered tool whose input the policies allow.
 */
export function expectedEffect(call: RefCall, listed: ReadonlySet<string>): "allow" | "deny" {
  if (call.problem) return "deny";
  const offered = listed.has(call.name) && OFFERABLE.has(call.name);
  if (call.serverSide) return offered && SYSTEM_TOOLS.has(call.name) ? "allow" : "deny";
  if (SYSTEM_TOOLS.has(call.name)) return "deny";
  if (!offered) return "deny";
  const policy = Object.hasOwn(POLICY, call.name) ? POLICY[call.name] : undefined;
  return policy !== undefined && policy(call.input) ? "allow" : "deny";
}
