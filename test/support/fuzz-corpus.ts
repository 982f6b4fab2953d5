/**
 * The fuzzing harness shared by test/fuzz.test.ts's properties and its corpus replay
 * (test/fixtures/fuzz-corpus/*.json): one runner per area, each taking a concrete input, driving
 * it through the real public API and the real SDK pipeline (`client.send` on a
 * GovernedBedrockRuntimeClient over an in-memory request handler), asserting the security
 * invariants that hold for ANY input, and returning an observation (what happened: the error's
 * class, the decision, the outcome) that a corpus file's `expect` is matched against.
 *
 * The invariants, for every area:
 * - the library either works or throws a typed error (`WardenError` subclasses; the SDK's own
 *   errors for a broken response) — never anything else, never an unhandled rejection;
 * - nothing hangs: every run is bounded by a timer;
 * - no request reaches the handler without an "allow" decision;
 * - every governed call yields exactly one call span and exactly one call record (tool decisions
 *   add one record each, and nothing else).
 *
 * A corpus file is JSON, so inputs JSON cannot hold are written with markers, decoded by
 * {@link decode}: `{"$repeat": "(", "count": 150}` (a long string), `{"$concat": [..]}` (strings
 * joined), `{"$bytes": "<base64>"}`, `{"$frame": {"eventType", "payload"}}` (one event-stream frame),
 * `{"$rawFrame": {"headers": {name: {type, value}}, "body": ..}}` (a frame with any headers),
 * `{"$json": value}` (JSON text of a value), `{"$undefined": true}`, `{"$number": "NaN" | "Infinity"
 * | "-Infinity" | "-0"}`, `{"$bigint": "123"}`. A `"__proto__"` key stays an own key (as JSON.parse
 * makes it).
 *
 * Run as a program (`node --import tsx test/support/fuzz-corpus.ts <file.json>`), it replays one
 * corpus file in a fresh process and prints the observation as JSON: for inputs that are known to
 * break process-wide state (a cedar-wasm instance), marked `"isolate": true`.
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
  type Tool,
} from "@aws-sdk/client-bedrock-runtime";
import { EventStreamCodec, type MessageHeaders } from "@smithy/eventstream-codec";
import { HttpResponse, type HttpRequest } from "@smithy/protocol-http";
import {
  AccessDeniedError,
  ConfigurationError,
  createGovernance,
  governTool,
  GovernedBedrockRuntimeClient,
  NoIdentityError,
  PolicyLoadError,
  runAs,
  sanitizeMetadataValue,
  toolDecisions,
  ToolCallDeniedError,
  WardenError,
  WARDEN,
  type DecisionRecord,
  type Governance,
  type GovernanceOptions,
  type ToolDefinition,
  type WorkloadIdentity,
} from "../../src/index.js";
import { CREDENTIALS, HAIKU, TITAN } from "./governance.js";
import { MemoryHandler } from "./memory-handler.js";
import { exporter, tracerProvider } from "./tracing.js";

// ---------------------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------------------

export const AREAS = ["options", "policy-text", "identity", "model-output", "event-stream", "tool-input"] as const;
export type Area = (typeof AREAS)[number];

/** One corpus file. */
export interface CorpusCase {
  readonly area: Area;
  /** What the input is and why it is in the corpus (the bug it found, or the hostile edge it is). */
  readonly description: string;
  /** The input, in the area's runner's shape, with the markers {@link decode} expands. */
  readonly input: unknown;
  /** What must be observed: each key is compared with the observation (`message`: a regular expression). */
  readonly expect: Readonly<Record<string, unknown>>;
  /** A known, unfixed bug: the replay is a `todo` test with this text (it runs, and may fail, without failing the suite). */
  readonly todo?: string;
  /** Replayed in a fresh process (the input breaks process-wide state, e.g. the cedar-wasm instance). */
  readonly isolate?: boolean;
}

export const CORPUS_DIR = fileURLToPath(new URL("../fixtures/fuzz-corpus/", import.meta.url));

/** Every corpus file, sorted by name, checked for shape. */
export function loadCorpus(dir = CORPUS_DIR): { file: string; case: CorpusCase }[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .sort()
    .map((name) => ({ file: name, case: readCase(join(dir, name)) }));
}

export function readCase(path: string): CorpusCase {
  const parsed = JSON.parse(readFileSync(path, "utf8")) as Partial<CorpusCase>;
  const where = basename(path);
  assert.ok(AREAS.includes(parsed.area as Area), `${where}: "area" must be one of ${AREAS.join(", ")}`);
  assert.equal(typeof parsed.description, "string", `${where}: "description" must be a string`);
  assert.ok("input" in parsed, `${where}: "input" is required`);
  assert.ok(typeof parsed.expect === "object" && parsed.expect !== null && !Array.isArray(parsed.expect), `${where}: "expect" must be an object`);
  assert.ok(parsed.todo === undefined || typeof parsed.todo === "string", `${where}: "todo" must be a string`);
  return parsed as CorpusCase;
}

const codec = new EventStreamCodec(
  (bytes) => new TextDecoder().decode(bytes),
  (text) => new TextEncoder().encode(text),
);

/** Expands the corpus markers (see the module's documentation) into the values they stand for. */
export function decode(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decode);
  if (typeof value !== "object" || value === null) return value;
  const v = value as Record<string, unknown>;
  const keys = Object.keys(v);
  const marker = keys.length >= 1 && keys[0]!.startsWith("$") ? keys[0]! : undefined;
  switch (marker) {
    case "$repeat":
      return String(decode(v["$repeat"])).repeat(Number(v["count"]));
    case "$concat":
      return (v["$concat"] as unknown[]).map((part) => String(decode(part))).join("");
    case "$bytes":
      return new Uint8Array(Buffer.from(String(v["$bytes"]), "base64"));
    case "$json":
      return JSON.stringify(decode(v["$json"]));
    case "$undefined":
      return undefined;
    case "$number":
      return { NaN: Number.NaN, Infinity: Infinity, "-Infinity": -Infinity, "-0": -0 }[String(v["$number"])];
    case "$bigint":
      return BigInt(String(v["$bigint"]));
    case "$frame": {
      const { eventType, payload } = v["$frame"] as { eventType: string; payload: unknown };
      return eventFrame(eventType, decode(payload));
    }
    case "$rawFrame": {
      const { headers, body } = v["$rawFrame"] as { headers: Record<string, { type: string; value: unknown }>; body: unknown };
      return rawFrame(decode(headers) as MessageHeaders, decode(body) as string | Uint8Array);
    }
    default: {
      // defineProperty: a "__proto__" key stays an own key, as JSON.parse made it.
      const out: Record<string, unknown> = {};
      for (const key of keys) Object.defineProperty(out, key, { value: decode(v[key]), enumerable: true, writable: true, configurable: true });
      return out;
    }
  }
}

/** A well-formed event frame of `eventType` with `payload` as its JSON body. */
export function eventFrame(eventType: string, payload: unknown): Uint8Array {
  return rawFrame(
    {
      ":message-type": { type: "string", value: "event" },
      ":event-type": { type: "string", value: eventType },
      ":content-type": { type: "string", value: "application/json" },
    },
    JSON.stringify(payload) ?? "",
  );
}

/** A frame with any headers and body (bytes, or text written as UTF-8). */
export function rawFrame(headers: MessageHeaders, body: string | Uint8Array): Uint8Array {
  // Header values of type "long" must be Int64 instances in the codec; numbers are written as integers.
  const fixed: MessageHeaders = {};
  for (const [name, header] of Object.entries(headers)) {
    const h = header as { type: string; value: unknown };
    if (h.type === "binary" && !(h.value instanceof Uint8Array)) fixed[name] = { type: "binary", value: new TextEncoder().encode(String(h.value)) };
    else if (h.type === "timestamp" && !(h.value instanceof Date)) fixed[name] = { type: "timestamp", value: new Date(Number(h.value)) };
    else if (h.type === "long") fixed[name] = { type: "integer", value: Number(h.value) | 0 };
    else fixed[name] = header;
  }
  return codec.encode({ headers: fixed, body: typeof body === "string" ? new TextEncoder().encode(body) : body });
}

/** Compares an observation with a corpus file's `expect`: every key must match (`message` and `problem` are regular expressions). */
export function matchExpect(observation: Readonly<Record<string, unknown>>, expect: Readonly<Record<string, unknown>>): void {
  for (const [key, wanted] of Object.entries(expect)) {
    const actual = observation[key];
    if ((key === "message" || key === "problem") && typeof wanted === "string") {
      assert.match(String(actual ?? ""), new RegExp(wanted, "su"), `observation.${key}`);
    } else {
      assert.deepEqual(actual, wanted, `observation.${key} (observed: ${JSON.stringify(observation).slice(0, 600)})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The governance under fuzz
// ---------------------------------------------------------------------------------------------

export const FUZZ_POLICIES = `
@id("billing-anthropic") @reason("billing agents may invoke Anthropic models")
permit (principal in Bedrock::Group::"billing", action in Bedrock::Action::"ModelInvocation", resource in Bedrock::Provider::"anthropic");

@id("blocked") @reason("a workload tagged blocked may do nothing")
forbid (principal, action, resource) when { principal.hasTag("blocked") };

@id("read-tools") @reason("billing agents may use tools that only read")
permit (principal in Bedrock::Group::"billing", action in Bedrock::Action::"ToolUse", resource) when { resource.effect == "read" };

@id("small-transfers") @reason("transfers up to 1000, never to an evil account")
permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"tool:transfer", resource)
when { context.phase == "offer" || (context has input && context.input.amount <= 1000 && !(context.input.account like "*evil*")) };

@id("ok-notes") @reason("notes that start with ok")
permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"tool:note", resource)
when { context.phase == "offer" || (context has input && context.input has text && context.input.text like "ok*") };
`;

/** The model-call policies alone (no tool actions: they validate whatever tools the options declare). */
export const OPTIONS_POLICIES = FUZZ_POLICIES.slice(0, FUZZ_POLICIES.indexOf('@id("read-tools")'));

export const TRANSFER_SCHEMA = {
  type: "object",
  properties: {
    amount: { type: "integer" },
    account: { type: "string" },
    memo: { type: "string" },
    meta: { type: "object", properties: { tags: { type: "array", items: { type: "string" } }, level: { type: "number" } } },
  },
  required: ["amount", "account"],
} as const;
export const NOTE_SCHEMA = { type: "object", properties: { text: { type: "string" } } } as const;

export const FUZZ_TOOLS: ToolDefinition[] = [
  { name: "transfer", effect: "mutate", sensitivity: "financial", inputSchema: TRANSFER_SCHEMA },
  { name: "note", effect: "mutate", inputSchema: NOTE_SCHEMA },
  { name: "lookup", effect: "read" },
];

/** The tools listed in `toolConfig` of the fuzzed model calls. */
export const TOOL_CONFIG = {
  tools: [
    { toolSpec: { name: "transfer", inputSchema: { json: TRANSFER_SCHEMA } } },
    { toolSpec: { name: "note", inputSchema: { json: NOTE_SCHEMA } } },
    { toolSpec: { name: "lookup", inputSchema: { json: { type: "object", properties: {} } } } },
  ] as unknown as Tool[],
};

export const billing = (id = "spiffe://fuzz.test/agents/billing"): WorkloadIdentity => ({ id, groups: ["billing"] });
export const strangerIdentity = (id = "spiffe://fuzz.test/agents/stranger"): WorkloadIdentity => ({ id });
const messages = [{ role: "user" as const, content: [{ text: "Go" }] }];

/** Whether FUZZ_POLICIES allow a (validated) identity a Converse call on an Anthropic model. */
export function expectedModelEffect(identity: WorkloadIdentity): "allow" | "deny" {
  const blocked = identity.attributes !== undefined && Object.hasOwn(identity.attributes, "blocked");
  return (identity.groups ?? []).includes("billing") && !blocked ? "allow" : "deny";
}

/** A governed client over an in-memory handler that answers with whatever the current run set. */
export class Fixture {
  readonly records: DecisionRecord[] = [];
  /** The onDecision listener collecting `records`. */
  readonly recorder = (record: DecisionRecord): void => {
    this.records.push(record);
  };
  /** The output of the last model call (for its tool decisions). */
  lastOutput: object | undefined;
  respond: (request: HttpRequest) => HttpResponse = () => okReply();
  readonly handler = new MemoryHandler((request) => this.respond(request));
  readonly governance: Governance;
  readonly client: GovernedBedrockRuntimeClient;

  constructor(toolEnforcement: "throw" | "result" = "result", captureContent = false) {
    this.governance = createGovernance({
      environment: "test",
      policies: FUZZ_POLICIES,
      tools: FUZZ_TOOLS,
      toolEnforcement,
      captureContent,
      tracerProvider,
      onDecision: this.recorder,
    });
    this.client = this.clientFor(this.governance);
  }

  clientFor(governance: Governance, identity?: WorkloadIdentity): GovernedBedrockRuntimeClient {
    return new GovernedBedrockRuntimeClient({
      region: "us-east-1",
      credentials: CREDENTIALS,
      requestHandler: this.handler,
      governance,
      maxAttempts: 1,
      ...(identity !== undefined && { identity }),
    });
  }

  reset(): void {
    this.records.length = 0;
    this.handler.requests.length = 0;
    exporter.reset();
    this.respond = () => okReply();
    this.lastOutput = undefined;
  }

  destroy(): void {
    this.client.destroy();
  }
}

export function okReply(text = "ok"): HttpResponse {
  return jsonBody(
    JSON.stringify({
      output: { message: { role: "assistant", content: [{ text }] } },
      stopReason: "end_turn",
      usage: { inputTokens: 3, outputTokens: 5, totalTokens: 8 },
      metrics: { latencyMs: 1 },
    }),
  );
}

function jsonBody(body: string | Uint8Array, status = 200, headers: Record<string, string> = {}): HttpResponse {
  return new HttpResponse({
    statusCode: status,
    headers: { "content-type": "application/json", "x-amzn-requestid": "fuzz", ...headers },
    body: Buffer.from(body),
  });
}

/** A streaming response whose body yields `bytes` in pieces of the given sizes (cycled; the rest in one piece). */
function streamBody(bytes: Uint8Array, split: readonly number[], headers: Record<string, string> = {}): HttpResponse {
  const pieces: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const size = split.length === 0 ? bytes.length : Math.max(1, split[i % split.length]!);
    pieces.push(bytes.subarray(at, at + size));
    at += size;
  }
  return new HttpResponse({
    statusCode: 200,
    headers: { "content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": "fuzz-stream", ...headers },
    body: Readable.from(pieces, { objectMode: false }),
  });
}

// ---------------------------------------------------------------------------------------------
// The invariants
// ---------------------------------------------------------------------------------------------

/** How long one run may take before it counts as a hang. */
export const RUN_TIMEOUT_MS = 15_000;

/** `promise`, or a rejection when it has not settled within `ms` (a hang). */
export async function within<T>(promise: Promise<T>, what: string, ms = RUN_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang: ${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));

/** JSON for messages, whatever the value (BigInts, cycles). */
const show = (value: unknown): string => {
  try {
    return String(JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v))).slice(0, 300);
  } catch {
    return String(value).slice(0, 300);
  }
};

/**
 * An error that is not the governance's own (a response the SDK cannot read) must come from the
 * SDK: a TypeError or RangeError thrown by bedrock-warden's own code would be a crash in it.
 */
function assertNotThrownByWarden(error: unknown): void {
  if (!(error instanceof Error) || error instanceof WardenError) return;
  const top = error.stack?.split("\n").find((line) => line.trimStart().startsWith("at "));
  assert.ok(top === undefined || !top.includes(SRC), `a ${String(error.name)} thrown by bedrock-warden's own code: ${String(error.message).slice(0, 200)} ${top}`);
}

const describeError = (e: unknown) => (e instanceof Error ? `${String(e.name)}: ${String(e.message).slice(0, 300)}` : String(e));

/** The governance's own errors must be typed: a WardenError, never a bare Error or TypeError. */
function assertTypedWardenError(error: unknown, ...types: (abstract new (...args: never[]) => Error)[]): asserts error is WardenError {
  assert.ok(
    types.some((type) => error instanceof type),
    `expected ${types.map((t) => t.name).join(" or ")}, got ${describeError(error)}`,
  );
  const e = error as WardenError;
  assert.match(e.code, /^ERR_[A-Z_]+$/, "a typed error has a code");
  assert.ok(e.message.length > 0, "a typed error has a message");
}

/** Spans of governed model calls (execute_tool spans are tool executions). */
const callSpans = () => exporter.getFinishedSpans().filter((s) => !s.name.startsWith("execute_tool"));

/**
 * Exactly one call record (decision as `decision`, outcome as `outcome`) and one call span
 * carrying the same decision and record id; no request sent unless allowed; tool records only
 * as many as tool decisions.
 */
function assertOneCall(f: Fixture, command: string, outcome: DecisionRecord["outcome"] | undefined, toolDecisionCount = 0): DecisionRecord {
  const calls = f.records.filter((r) => !r.command.startsWith("tool:"));
  assert.equal(calls.length, 1, `exactly one record for the governed call, got ${JSON.stringify(calls.map((r) => [r.command, r.outcome]))}`);
  const record = calls[0]!;
  assert.equal(record.command, command);
  if (outcome !== undefined) assert.equal(record.outcome, outcome, `outcome (errors: ${record.errors.join("; ")})`);
  const spans = callSpans();
  assert.equal(spans.length, 1, `exactly one span for the governed call, got ${spans.length}`);
  assert.equal(spans[0]!.attributes[WARDEN.DECISION], record.decision, "the span carries the record's decision");
  assert.equal(spans[0]!.attributes[WARDEN.DECISION_ID], record.id, "the span carries the record's id");
  if (f.handler.requests.length > 0) assert.equal(record.decision, "allow", "nothing is sent without an allow decision");
  if (record.decision === "deny") assert.equal(f.handler.requests.length, 0, "a denied call sends nothing");
  else assert.ok(f.handler.requests.length <= 1, "one attempt at most (maxAttempts: 1)");
  if (record.decision === "deny") assert.ok(record.reasons.length > 0 && record.reasons.every((r) => typeof r === "string" && r !== ""), "a denial says why");
  const tools = f.records.filter((r) => r.command.startsWith("tool:"));
  assert.equal(tools.length, toolDecisionCount, "one record per tool decision, nothing else");
  for (const usage of [record.usage?.inputTokens, record.usage?.outputTokens]) {
    if (usage !== undefined) assert.ok(Number.isSafeInteger(usage) && usage >= 0, `usage is a count (${usage})`);
  }
  return record;
}

/** Nothing happened: no record, no span, no request (a configuration error is raised before anything runs). */
function assertNothingHappened(f: Fixture): void {
  assert.equal(f.records.length, 0, "no record");
  assert.equal(exporter.getFinishedSpans().length, 0, "no span");
  assert.equal(f.handler.requests.length, 0, "no request");
}

// ---------------------------------------------------------------------------------------------
// options
// ---------------------------------------------------------------------------------------------

export interface OptionsInput {
  /** The options given to createGovernance. Unless `bare`, laid over valid defaults (environment, policies, tracerProvider, onDecision). */
  readonly options: unknown;
  readonly bare?: boolean;
  /** The options object's prototype (its keys are inherited, not own). */
  readonly prototype?: Record<string, unknown>;
  /** Keys set on Object.prototype while the governance is created and used (prototype pollution elsewhere in the process). */
  readonly pollute?: Record<string, unknown>;
  /** The options tampered with: a ConfigurationError must name one of them. */
  readonly keys?: readonly string[];
}

/**
 * createGovernance with the options; either a ConfigurationError naming one of `keys` (the
 * options that were tampered with), or a governance whose calls are decided by the policies:
 * a billing agent allowed, a stranger denied (unless the options turned shadow mode on: then
 * a stranger's call is let through with the would-be denial recorded).
 */
export async function runOptions(f: Fixture, input: OptionsInput, keys: readonly string[] = []): Promise<Record<string, unknown>> {
  f.reset();
  const defaults = { environment: "test", policies: OPTIONS_POLICIES, tracerProvider, onDecision: f.recorder };
  let options: unknown = input.options;
  if (!input.bare && typeof options === "object" && options !== null && !Array.isArray(options)) options = { ...defaults, ...(options as object) };
  if (input.prototype !== undefined) options = Object.assign(Object.create(input.prototype) as object, options);
  const polluted = Object.keys(input.pollute ?? {});
  for (const key of polluted) Object.defineProperty(Object.prototype, key, { value: input.pollute![key], configurable: true, writable: true, enumerable: false });
  try {
    let governance: Governance;
    try {
      governance = createGovernance(options as GovernanceOptions);
    } catch (error) {
      assertTypedWardenError(error, ConfigurationError);
      const message = error.message;
      // Policy text that does not load is named by its source and line (see runPolicyText), not as an option.
      const policyProblem = error instanceof PolicyLoadError && (keys.includes("policies") || keys.includes("tools"));
      if (keys.length > 0 && !policyProblem) {
        assert.ok(
          keys.some((k) => message.includes(`governance.${k}`) || message.includes(`"${k}"`)) || /governance: Invalid input: expected object/.test(message),
          `the message names the option (${keys.join(", ")}): ${message}`,
        );
      }
      assertNothingHappened(f);
      return { error: error.name, code: error.code, message };
    }
    const recorded = (options as { onDecision?: unknown }).onDecision === defaults.onDecision;
    const client = f.clientFor(governance);
    try {
      const allowed = await decideOnce(f, client, billing(`spiffe://fuzz.test/options/${Math.random()}`), recorded);
      const stranger = await decideOnce(f, client, strangerIdentity(`spiffe://fuzz.test/options/${Math.random()}`), recorded);
      return { ok: true, allowed, stranger, shadow: governance.engine.shadowAll };
    } finally {
      client.destroy();
    }
  } finally {
    for (const key of polluted) delete (Object.prototype as Record<string, unknown>)[key];
  }
}

/** One Converse call as `identity`: its recorded decision (and the evidence invariants when records are collected). */
async function decideOnce(f: Fixture, client: GovernedBedrockRuntimeClient, identity: WorkloadIdentity, recorded: boolean): Promise<string> {
  f.records.length = 0;
  f.handler.requests.length = 0;
  exporter.reset();
  let error: unknown;
  try {
    await within(runAs(identity, () => client.send(new ConverseCommand({ modelId: HAIKU, messages }))), "a governed Converse call");
  } catch (e) {
    error = e;
    assertTypedWardenError(e, AccessDeniedError);
  }
  const spans = callSpans();
  assert.equal(spans.length, 1, "exactly one span per governed call");
  const decision = String(spans[0]!.attributes[WARDEN.DECISION]);
  if (recorded) assertOneCall(f, "ConverseCommand", error === undefined ? "completed" : "denied");
  assert.equal(decision, error === undefined ? "allow" : "deny", "a call goes through exactly when allowed");
  assert.equal(f.handler.requests.length, error === undefined ? 1 : 0, "an allowed call is sent once, a denied one never");
  return decision;
}

// ---------------------------------------------------------------------------------------------
// policy text
// ---------------------------------------------------------------------------------------------

export interface PolicyTextInput {
  /** Cedar text, or documents `[{ source, text }]` (or anything else, to see it refused). */
  readonly policies: unknown;
  /** "create" (default): createGovernance; "reload": governance.reload on a working governance. */
  readonly via?: "create" | "reload";
}

/** Lines in a text (a problem's line is at most one past them). */
const lineCount = (text: string) => text.split("\n").length;

/**
 * createGovernance (or reload) with the policies: either a PolicyLoadError whose every problem names
 * one of the given sources with a line within it, a ConfigurationError for policies of the wrong
 * shape, or a working engine whose calls are decided (typed denial or allow, one span, one record).
 * A failed reload leaves the previous set deciding, unchanged.
 */
export async function runPolicyText(f: Fixture, input: PolicyTextInput): Promise<Record<string, unknown>> {
  f.reset();
  const policies = input.policies;
  const sources = new Map<string, string>();
  if (typeof policies === "string") sources.set("inline", policies);
  else if (Array.isArray(policies)) for (const d of policies as { source?: unknown; text?: unknown }[]) if (typeof d?.source === "string" && typeof d.text === "string") sources.set(d.source, d.text);

  let governance: Governance;
  const before = f.governance.policySetVersion;
  try {
    if (input.via === "reload") {
      f.governance.reload(policies as string);
      governance = f.governance;
    } else {
      governance = createGovernance({ environment: "test", policies: policies as string, tools: FUZZ_TOOLS, tracerProvider, onDecision: (r) => f.records.push(r) });
    }
  } catch (error) {
    assertTypedWardenError(error, ConfigurationError);
    assertNothingHappened(f);
    if (input.via === "reload") assert.equal(f.governance.policySetVersion, before, "a failed reload keeps the current set");
    if (!(error instanceof PolicyLoadError)) return { error: error.name, message: error.message };
    assert.ok(error.problems.length > 0, "a PolicyLoadError lists its problems");
    for (const p of error.problems) {
      assert.equal(typeof p.message, "string");
      assert.ok(p.message.length > 0, "each problem has a message");
      if (p.source === "schema" || p.source === "policy set") continue;
      assert.ok(sources.has(p.source), `the problem names a given source (${JSON.stringify(p.source).slice(0, 80)})`);
      if (p.line !== undefined) {
        assert.ok(Number.isSafeInteger(p.line) && p.line >= 1 && p.line <= lineCount(sources.get(p.source)!) + 1, `line ${p.line} is within ${JSON.stringify(p.source)}`);
        assert.ok(p.column === undefined || (Number.isSafeInteger(p.column) && p.column >= 1), `column ${p.column}`);
      }
      assert.ok(error.message.includes(p.source), "the message names the source");
    }
    return {
      error: error.name,
      message: error.message,
      problems: error.problems.map((p) => ({ source: p.source, ...(p.line !== undefined && { line: p.line }) })),
    };
  }
  try {
    const client = governance === f.governance ? f.client : f.clientFor(governance);
    try {
      const decision = await decideOnce(f, client, billing(`spiffe://fuzz.test/policy/${Math.random()}`), true);
      return { ok: true, policies: governance.engine.policies.size, decision };
    } finally {
      if (client !== f.client) client.destroy();
    }
  } finally {
    if (input.via === "reload") f.governance.reload(FUZZ_POLICIES);
  }
}

/**
 * The engine still decides correctly, in wasm (unique principals, so nothing is answered from the
 * decision cache), and policies still load: a billing agent allowed on an Anthropic model, denied
 * on another, a stranger denied, a fresh governance loads.
 */
export async function assertEngineHealthy(f: Fixture): Promise<void> {
  f.reset();
  const nonce = `${Date.now()}-${Math.random()}`;
  assert.equal(await decideOnce(f, f.client, billing(`spiffe://fuzz.test/health/${nonce}`), true), "allow", "a billing agent is allowed");
  assert.equal(await decideOnce(f, f.client, strangerIdentity(`spiffe://fuzz.test/health/${nonce}`), true), "deny", "a stranger is denied");
  f.records.length = 0;
  exporter.reset();
  await assert.rejects(
    runAs(billing(`spiffe://fuzz.test/health/titan/${nonce}`), () => f.client.send(new ConverseCommand({ modelId: TITAN, messages }))),
    AccessDeniedError,
    "a billing agent is denied a non-Anthropic model",
  );
  const fresh = createGovernance({ environment: "test", policies: FUZZ_POLICIES, tools: FUZZ_TOOLS });
  assert.equal(fresh.engine.policies.size, 5, "policies still load");
  f.reset();
}

// ---------------------------------------------------------------------------------------------
// identities
// ---------------------------------------------------------------------------------------------

export interface IdentityInput {
  readonly identity: unknown;
  /** runAs's third argument. */
  readonly scope?: unknown;
  /** "runAs" (default), or "client": the identity is the client's default identity. */
  readonly via?: "runAs" | "client";
  /** The identity object's prototype (its keys are inherited, not own). */
  readonly prototype?: Record<string, unknown>;
  /** Keys set on Object.prototype during the run. */
  readonly pollute?: Record<string, unknown>;
}

/**
 * A governed Converse call as the identity: either a ConfigurationError before anything runs,
 * or a call attributed to exactly that id (record, span and Bedrock's request metadata), with
 * exactly the identity's own groups, decided as FUZZ_POLICIES say for them.
 */
export async function runIdentity(f: Fixture, input: IdentityInput): Promise<Record<string, unknown>> {
  f.reset();
  let identity = input.identity;
  if (input.prototype !== undefined) identity = Object.assign(Object.create(input.prototype) as object, identity);
  const polluted = Object.keys(input.pollute ?? {});
  for (const key of polluted) Object.defineProperty(Object.prototype, key, { value: input.pollute![key], configurable: true, writable: true, enumerable: false });
  try {
    let ran = false;
    let pending: Promise<unknown>;
    let client = f.client;
    try {
      if (input.via === "client") {
        client = f.clientFor(f.governance, identity as WorkloadIdentity);
        pending = client.send(new ConverseCommand({ modelId: HAIKU, messages }));
      } else {
        pending = runAs(
          identity as WorkloadIdentity,
          () => {
            ran = true;
            return f.client.send(new ConverseCommand({ modelId: HAIKU, messages }));
          },
          input.scope as never,
        );
      }
    } catch (error) {
      assertTypedWardenError(error, ConfigurationError);
      assert.equal(ran, false, "nothing runs with a malformed identity or scope");
      assertNothingHappened(f);
      assert.match(error.message, /identity|scope/i, "the message says what was malformed");
      return { error: error.name, message: error.message };
    }
    let error: unknown;
    try {
      await within(pending, "a governed call");
    } catch (e) {
      error = e;
      assertTypedWardenError(e, AccessDeniedError);
    } finally {
      if (client !== f.client) client.destroy();
    }
    const record = assertOneCall(f, "ConverseCommand", error === undefined ? "completed" : "denied");
    if (!identity) {
      // A client given a falsy identity has none: its calls outside runAs are denied for want of one.
      assert.ok(error instanceof NoIdentityError, `no identity: NoIdentityError, got ${describeError(error)}`);
      assert.equal(record.workload, null);
      return { workload: null, decision: record.decision, expected: "deny" };
    }
    // The identity was accepted: it is an object with a string id, and the call acts as exactly that.
    const own = identity as { id: string; groups?: unknown; attributes?: Record<string, unknown> };
    const id = own.id;
    assert.equal(record.workload?.id, id, "the record names exactly the identity's id");
    assert.equal(callSpans()[0]!.attributes[WARDEN.WORKLOAD_ID], id, "the span names exactly the identity's id");
    const ownGroups = Object.hasOwn(own, "groups") && Array.isArray(own.groups) ? [...new Set(own.groups as string[])] : [];
    const ownAttributes = Object.hasOwn(own, "attributes") ? own.attributes : undefined;
    const expected = expectedModelEffect({ id, groups: ownGroups, ...(ownAttributes && { attributes: ownAttributes as Record<string, string> }) });
    if (f.handler.requests.length === 1) {
      const metadata = JSON.parse(new TextDecoder().decode(f.handler.requests[0]!.body as Uint8Array))["requestMetadata"] as Record<string, string>;
      assert.equal(metadata["warden.workload"], sanitizeMetadataValue(id), "Bedrock's logs name the identity");
    }
    return { workload: record.workload?.id, groups: [...(record.workload?.groups ?? [])], decision: record.decision, expected, reasons: [...record.reasons, ...record.errors] };
  } finally {
    for (const key of polluted) delete (Object.prototype as Record<string, unknown>)[key];
  }
}

// ---------------------------------------------------------------------------------------------
// model output
// ---------------------------------------------------------------------------------------------

export interface ModelOutputInput {
  readonly command?: "Converse" | "InvokeModel";
  readonly status?: number;
  readonly headers?: Record<string, string>;
  /** The response body: text, or bytes. */
  readonly body: string | Uint8Array;
  /** Offer the fuzz tools (Converse only). */
  readonly tools?: boolean;
}

/**
 * An allowed call answered with the body: it resolves, or the SDK's error surfaces (never a
 * governance error other than a denied tool call); exactly one span and one record, "completed"
 * or "failed" as the caller saw it, and a tool record per tool decision.
 */
export async function runModelOutput(f: Fixture, input: ModelOutputInput): Promise<Record<string, unknown>> {
  f.reset();
  f.respond = () => jsonBody(input.body, input.status ?? 200, input.headers ?? {});
  const command =
    input.command === "InvokeModel"
      ? new InvokeModelCommand({ modelId: HAIKU, body: JSON.stringify({ max_tokens: 10, messages: [] }) })
      : new ConverseCommand({ modelId: HAIKU, messages, ...(input.tools && { toolConfig: TOOL_CONFIG }) });
  let error: unknown;
  let output: object | undefined;
  try {
    output = await within(runAs(billing(), () => f.client.send(command as ConverseCommand)), "a call answered with a hostile body");
  } catch (e) {
    error = e;
    assert.ok(e instanceof Error, `the SDK's error surfaces as an Error, got ${String(e)}`);
    if (e instanceof WardenError) assertTypedWardenError(e, ToolCallDeniedError);
    assertNotThrownByWarden(e);
  }
  f.lastOutput = output ?? (error instanceof ToolCallDeniedError ? (error.output as object) : undefined);
  const decisions = f.lastOutput ? toolDecisions(f.lastOutput) : [];
  const record = assertOneCall(f, input.command === "InvokeModel" ? "InvokeModelCommand" : "ConverseCommand", error === undefined ? "completed" : "failed", decisions.length);
  assert.equal(record.decision, "allow");
  assert.equal(f.handler.requests.length, 1, "the allowed call was sent once");
  return { outcome: record.outcome, ...(error !== undefined && { error: String((error as Error).name) }), toolDecisions: decisions.map((d) => d.decision.effect) };
}

// ---------------------------------------------------------------------------------------------
// event streams
// ---------------------------------------------------------------------------------------------

export interface EventStreamInput {
  readonly command?: "ConverseStream" | "InvokeModelWithResponseStream";
  /** The frames (bytes; the corpus writes them with $frame / $rawFrame / $bytes), sent back to back. */
  readonly frames: readonly Uint8Array[];
  /** The body is delivered in pieces of these sizes (cycled); one piece when absent. */
  readonly split?: readonly number[];
  readonly headers?: Record<string, string>;
  /** Offer the fuzz tools (ConverseStream only). */
  readonly tools?: boolean;
}

/**
 * An allowed streaming call answered with the frames: the stream is read to its end or fails with
 * the SDK's error (or a denied tool call); never a hang; exactly one span and one record, whose
 * outcome is what the reader saw.
 */
export async function runEventStream(f: Fixture, input: EventStreamInput): Promise<Record<string, unknown>> {
  f.reset();
  const total = input.frames.reduce((n, b) => n + b.length, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const frame of input.frames) {
    bytes.set(frame, at);
    at += frame.length;
  }
  f.respond = () => streamBody(bytes, input.split ?? [], input.headers ?? {});
  const invoke = input.command === "InvokeModelWithResponseStream";
  const command = invoke
    ? new InvokeModelWithResponseStreamCommand({ modelId: HAIKU, body: JSON.stringify({ max_tokens: 10, messages: [] }) })
    : new ConverseStreamCommand({ modelId: HAIKU, messages, ...(input.tools && { toolConfig: TOOL_CONFIG }) });
  let error: unknown;
  let events = 0;
  let output: Record<string, unknown> | undefined;
  const read = async () => {
    output = (await runAs(billing(), () => f.client.send(command as ConverseStreamCommand))) as unknown as Record<string, unknown>;
    const stream = (invoke ? output["body"] : output["stream"]) as AsyncIterable<unknown> | undefined;
    for await (const event of stream ?? []) {
      assert.equal(typeof event, "object", "each event is an object");
      events++;
    }
  };
  try {
    await within(read(), "reading a hostile event stream");
  } catch (e) {
    if (e instanceof Error && e.message.startsWith("hang:")) throw e;
    error = e;
    assert.ok(e instanceof Error, `the SDK's error surfaces as an Error, got ${String(e)}`);
    if (e instanceof WardenError) assertTypedWardenError(e, ToolCallDeniedError);
    assertNotThrownByWarden(e);
  }
  f.lastOutput = output;
  const decisions = output ? toolDecisions(output) : [];
  const record = assertOneCall(f, invoke ? "InvokeModelWithResponseStreamCommand" : "ConverseStreamCommand", error === undefined ? "completed" : "failed", decisions.length);
  assert.equal(record.decision, "allow");
  return { outcome: record.outcome, events, ...(error !== undefined && { error: String((error as Error).name) }) };
}

// ---------------------------------------------------------------------------------------------
// tool inputs
// ---------------------------------------------------------------------------------------------

export interface ToolInputInput {
  readonly tool: string;
  /** The tool input as the model wrote it: JSON text (for "stream", any text). For "governTool", a value. */
  readonly input: unknown;
  /** "converse" (default): in a Converse reply; "stream": in ConverseStream deltas; "governTool": executed by a governed tool. */
  readonly via?: "converse" | "stream" | "governTool";
  /** Stream deltas of these sizes (cycled). */
  readonly split?: readonly number[];
}

const TRANSFER_KEYS = new Set(["amount", "account", "memo", "meta"]);

function depthOf(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (d + 1 > max) max = d + 1;
    for (const x of Object.values(v)) stack.push([x, d + 1]);
  }
  return max;
}

/**
 * What must hold of a tool call's input for FUZZ_POLICIES to allow it (soundness: an allow with
 * an input outside this is a wrong allow). Undefined when anything the policies would refuse.
 */
export function allowedInput(tool: string, input: unknown, executed = false): boolean {
  // A tool without an input schema never shows its input to policies: a governed tool may execute any input.
  if (executed && tool === "lookup") return true;
  if (typeof input !== "object" || input === null || Array.isArray(input) || depthOf(input) > 64) return false;
  const v = input as Record<string, unknown>;
  switch (tool) {
    case "transfer":
      return (
        Object.keys(v).every((k) => TRANSFER_KEYS.has(k)) &&
        Number.isSafeInteger(v["amount"]) &&
        (v["amount"] as number) <= 1000 &&
        typeof v["account"] === "string" &&
        v["account"].isWellFormed() &&
        !v["account"].includes("evil") &&
        (v["memo"] === undefined || (typeof v["memo"] === "string" && v["memo"].isWellFormed()))
      );
    case "note":
      return Object.keys(v).every((k) => k === "text") && typeof v["text"] === "string" && v["text"].isWellFormed() && v["text"].startsWith("ok");
    case "lookup":
      return true;
    default:
      return false;
  }
}

/**
 * One tool call with the input, as the model asked for it (Converse or ConverseStream) or as a
 * governed tool executes it: exactly one decision, an allow only for an input the policies allow,
 * a denial with a reason, one record per decision, and the model call's own record and span.
 */
export async function runToolInput(f: Fixture, input: ToolInputInput): Promise<Record<string, unknown>> {
  f.reset();
  if (input.via === "governTool") return runGovernedTool(f, input);
  const toolUseId = "fuzz-tool-1";
  const stream = input.via === "stream";
  const text = typeof input.input === "string" ? input.input : JSON.stringify(input.input);
  if (stream) {
    const split = input.split && input.split.length > 0 ? input.split : [text.length || 1];
    const chunks: string[] = [];
    for (let at = 0, i = 0; at < text.length; i++) {
      const size = Math.max(1, split[i % split.length]!);
      // Never cut a surrogate pair: a delta is a JSON string, and the SDK's would be ill-formed.
      let end = Math.min(text.length, at + size);
      const last = text.charCodeAt(end - 1);
      if (end < text.length && last >= 0xd800 && last <= 0xdbff) end++;
      chunks.push(text.slice(at, end));
      at = end;
    }
    const frames = [
      eventFrame("messageStart", { role: "assistant" }),
      eventFrame("contentBlockStart", { contentBlockIndex: 0, start: { toolUse: { toolUseId, name: input.tool } } }),
      ...chunks.map((chunk) => eventFrame("contentBlockDelta", { contentBlockIndex: 0, delta: { toolUse: { input: chunk } } })),
      eventFrame("contentBlockStop", { contentBlockIndex: 0 }),
      eventFrame("messageStop", { stopReason: "tool_use" }),
      eventFrame("metadata", { usage: { inputTokens: 3, outputTokens: 5, totalTokens: 8 }, metrics: { latencyMs: 1 } }),
    ];
    const observed = await runEventStream(f, { frames, tools: true });
    return { ...toolObservation(f, input.tool, "ConverseStreamCommand"), outcome: observed["outcome"] };
  }
  const body = `{"output":{"message":{"role":"assistant","content":[{"toolUse":{"toolUseId":${JSON.stringify(toolUseId)},"name":${JSON.stringify(input.tool)},"input":${text}}}]}},"stopReason":"tool_use","usage":{"inputTokens":3,"outputTokens":5,"totalTokens":8},"metrics":{"latencyMs":1}}`;
  const observed = await runModelOutput(f, { body, tools: true });
  if (observed["error"] !== undefined) return { error: observed["error"] };
  return toolObservation(f, input.tool, "ConverseCommand");
}

/** The tool decision of the last run, checked against the soundness oracle. */
function toolObservation(f: Fixture, tool: string, command: string): Record<string, unknown> {
  const tools = f.records.filter((r) => r.command.startsWith("tool:"));
  assert.equal(tools.length, 1, "exactly one tool decision for the one tool call");
  const record = tools[0]!;
  assert.equal(record.command, `tool:${tool}`);
  assert.equal(f.records.at(-1)?.command, command, "the model call's record comes last");
  const decisions = f.lastOutput ? toolDecisions(f.lastOutput) : [];
  assert.equal(decisions.length, 1, "exactly one tool decision on the output");
  const d = decisions[0]!;
  assert.equal(d.decision.effect, record.decision, "the record says what the decision says");
  if (d.decision.effect === "allow") {
    assert.ok(allowedInput(tool, d.input), `allowed only with an input the policies allow: ${show(d.input)}`);
    assert.equal(d.problem, undefined, "an allowed call has no problem");
  } else assert.ok(d.decision.reasons.length > 0, "a denial says why");
  return { decision: record.decision, ...(d.problem !== undefined && { problem: d.problem }) };
}

async function runGovernedTool(f: Fixture, input: ToolInputInput): Promise<Record<string, unknown>> {
  let runs = 0;
  let received: unknown;
  const tool = governTool(
    { name: input.tool },
    (value: unknown) => {
      runs++;
      received = value;
      return "done";
    },
    { governance: f.governance },
  );
  let error: unknown;
  try {
    await within(runAs(billing(), () => tool(input.input)), "a governed tool execution");
  } catch (e) {
    error = e;
    assertTypedWardenError(e, AccessDeniedError);
  }
  assert.equal(f.records.length, 1, "exactly one record per execution");
  const spans = exporter.getFinishedSpans();
  assert.equal(spans.length, 1, "exactly one span per execution");
  const record = f.records[0]!;
  assert.equal(record.command, `tool:${input.tool}`);
  assert.equal(spans[0]!.attributes[WARDEN.DECISION], record.decision);
  assert.equal(runs, record.decision === "allow" ? 1 : 0, "the executor runs exactly when allowed");
  assert.equal(error === undefined, record.decision === "allow", "denied executions reject");
  if (record.decision === "allow") assert.ok(allowedInput(input.tool, received, true), `allowed only with an input the policies allow: ${show(received)}`);
  else assert.ok(record.reasons.length > 0, "a denial says why");
  return { decision: record.decision };
}

// ---------------------------------------------------------------------------------------------
// One corpus case, whatever its area
// ---------------------------------------------------------------------------------------------

/** Runs one case in this process; returns the observation (the invariants are asserted on the way). */
export async function runCase(f: Fixture, c: CorpusCase): Promise<Record<string, unknown>> {
  const input = decode(c.input) as Record<string, unknown>;
  switch (c.area) {
    case "options":
      return runOptions(f, input as unknown as OptionsInput, (input as unknown as OptionsInput).keys ?? []);
    case "policy-text":
      return runPolicyText(f, input as unknown as PolicyTextInput);
    case "identity":
      return runIdentity(f, input as unknown as IdentityInput);
    case "model-output":
      return runModelOutput(f, input as unknown as ModelOutputInput);
    case "event-stream":
      return runEventStream(f, input as unknown as EventStreamInput);
    case "tool-input":
      return runToolInput(f, input as unknown as ToolInputInput);
  }
}

/** Replays one corpus file in a fresh process (see `isolate`), then checks the engine is still healthy there. */
export function replayIsolated(file: string): { observation?: Record<string, unknown>; failure?: string; health?: string } {
  return JSON.parse(isolatedOutput(file)) as { observation?: Record<string, unknown>; failure?: string; health?: string };
}

function isolatedOutput(file: string): string {
  const result = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), join(CORPUS_DIR, file)], {
    encoding: "utf8",
    timeout: 120_000,
    cwd: fileURLToPath(new URL("../../", import.meta.url)),
  });
  const last = result.stdout.trim().split("\n").at(-1) ?? "";
  if (!last.startsWith("{")) return JSON.stringify({ failure: `the isolated replay printed no result (status ${result.status}, signal ${result.signal}): ${result.stderr.slice(-2000)}` });
  return last;
}

// The child side of replayIsolated.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const path = process.argv[2]!;
  const f = new Fixture();
  const out: { observation?: Record<string, unknown>; failure?: string; health?: string } = {};
  try {
    out.observation = await runCase(f, readCase(path));
  } catch (error) {
    out.failure = describeError(error);
  }
  try {
    await assertEngineHealthy(f);
    out.health = "ok";
  } catch (error) {
    out.health = describeError(error);
  }
  f.destroy();
  process.stdout.write(`\n${JSON.stringify(out)}\n`);
}
