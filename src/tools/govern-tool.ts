/**
 * `governTool(tool, executor, options)`: the tool executors of an agent framework (or of an
 * application's own tool loop), governed. Every execution is decided at the moment it runs, with
 * the input actually executed — the application may have changed it since the model asked — and
 * leaves its evidence: an `execute_tool {name}` span (INTERNAL, a child of the caller's context,
 * linked to the `chat` span whose response asked for the call) and one decision record. A denied
 * execution never runs the executor.
 * @module
 */
import { randomUUID } from "node:crypto";
import { context as otelContext, SpanKind, SpanStatusCode, trace, type Attributes, type Link, type Span } from "@opentelemetry/api";
import { z } from "zod";
import { decisionRecord, type DecisionRecord } from "../audit/decision-record.js";
import { evidenceUnavailableDenial } from "../audit/sink.js";
import { killedDenial, usageUnavailableDenial } from "../budgets/kill-switch.js";
import { readUsage } from "../budgets/usage-context.js";
import { AccessDeniedError, ConfigurationError } from "../errors.js";
import type { Governance } from "../governance.js";
import { currentScope } from "../identity/call-scope.js";
import { checkedIdentity, type WorkloadIdentity } from "../identity/workload-identity.js";
import { unevaluatedDenial, entityRef, type Decision } from "../policy/decision.js";
import { NAMESPACE, TOOL_TYPE } from "../policy/request-builder.js";
import { errorType, recordDecision, recordIdentity } from "../telemetry/call-span.js";
import { GEN_AI, WARDEN } from "../telemetry/semconv.js";
import { describeZodError } from "../validation.js";
import { authorizeTool } from "./authorize-tool.js";
import type { ToolCallOrigin } from "./tool-call-registry.js";
import { UNDECLARED_TOOL_ACTION } from "./tool-definitions.js";

/**
 * What the executor of a governed tool is told about the execution it runs.
 *
 * @example
 * ```ts
 * const lookupInvoice = governTool(
 *   { name: "lookup_invoice" },
 *   async (input: { invoiceId: string }, execution: ToolExecution) => {
 *     console.log(execution.toolUseId, execution.decision.policies); // e.g. "tooluse_1", ["billing-lookup"]
 *     return invoices.get(input.invoiceId);
 *   },
 *   { governance },
 * );
 * ```
 */
export interface ToolExecution {
  /** The model's id for this tool call, when the caller gave one. */
  readonly toolUseId?: string;
  /** The decision that allowed this execution (always an `"allow"`: a denied execution never runs). */
  readonly decision: Decision;
}

/**
 * A governed tool: call it instead of the executor. It resolves with the executor's result, or
 * rejects with an {@link AccessDeniedError} (the execution was denied and the executor never ran)
 * or with exactly the error the executor threw.
 *
 * @example
 * ```ts
 * const result = await runAs(invoiceAgent, () => lookupInvoice({ invoiceId: "INV-4711" }, { toolUseId: toolUse.toolUseId }));
 * ```
 */
export type GovernedTool<I, R> = (input: I, call?: { toolUseId?: string }) => Promise<R>;

/**
 * Options of {@link governTool}.
 *
 * @example
 * ```ts
 * const options: GovernToolOptions = { governance, identity: { id: "spiffe://acme.example/agents/invoice", groups: ["billing"] } };
 * ```
 */
export interface GovernToolOptions {
  /** The governance that decides and records every execution (the tools it declares, its policies). */
  readonly governance: Governance;
  /** The identity of executions made outside `runAs(...)`. Without one, such executions are denied. */
  readonly identity?: WorkloadIdentity;
}

/**
 * The most characters of tool arguments or result put on a span when content capture is on.
 *
 * @example
 * ```ts
 * const args = String(span.attributes[GEN_AI.TOOL_CALL_ARGUMENTS]); // at most MAX_TOOL_CONTENT_CHARS (+ a truncation note)
 * ```
 */
export const MAX_TOOL_CONTENT_CHARS = 16 * 1024;

/**
 * The attribute on the span link from an `execute_tool` span to the `chat` span whose response
 * asked for the tool call; its value is {@link LINK_REQUESTED_BY}.
 *
 * @example
 * ```ts
 * const requestedBy = executeSpan.links.find((l) => l.attributes?.[LINK_ATTRIBUTE] === LINK_REQUESTED_BY)?.context.spanId;
 * ```
 */
export const LINK_ATTRIBUTE = "bedrock_warden.link";
/**
 * The value of {@link LINK_ATTRIBUTE} on the link to the requesting `chat` span.
 *
 * @example
 * ```ts
 * const chatSpanId = executeSpan.links.find((l) => l.attributes?.[LINK_ATTRIBUTE] === LINK_REQUESTED_BY)?.context.spanId;
 * ```
 */
export const LINK_REQUESTED_BY = "requested_by";

/** Objects nested deeper than this in a tool input are refused (the execution is denied). */
const MAX_INPUT_DEPTH = 64;
/** The longest tool name or tool-use id accepted, in UTF-16 code units (as for tool calls in model output). */
const MAX_LABEL_LENGTH = 256;
// C0/C1 controls, DEL, invisible format characters (zero-width, bidi overrides) and lone surrogates.
const CONTROL = /[\p{Cc}\p{Cf}\p{Cs}]/u;

const toolSchema = z.looseObject(
  {
    name: z
      .string({ error: 'must be a string: the tool\'s name, as declared in governance.tools, e.g. "lookup_invoice"' })
      .min(1, 'must not be empty: the tool\'s name, as declared in governance.tools, e.g. "lookup_invoice"')
      .max(MAX_LABEL_LENGTH, `must be at most ${MAX_LABEL_LENGTH} characters`)
      .refine((s) => !CONTROL.test(s), "must not contain control or invisible characters"),
  },
  { error: (issue) => (issue.code === "invalid_type" ? 'must be an object with the tool\'s name, e.g. { name: "lookup_invoice" } (a ToolDefinition will do)' : undefined) },
);

const optionsSchema = z
  .object(
    {
      governance: z.custom<Governance>(isGovernance, { message: "is required: the result of createGovernance(...)" }),
      identity: z.unknown().optional(),
    },
    { error: (issue) => (issue.code === "invalid_type" ? "must be an object: { governance, identity? }" : undefined) },
  )
  .strict();

/**
 * Wraps a tool executor so that every execution is authorized, traced and recorded. Each call of
 * the returned function:
 *
 * 1. resolves the workload identity (`runAs(...)`, else `options.identity`) and starts an
 *    `execute_tool {name}` span (INTERNAL) under the caller's active context, linked to the `chat`
 *    span whose response asked for the call when `call.toolUseId` names one this governance saw;
 * 2. decides the execution (action `tool:<name>`, or `UndeclaredTool` for a tool that is not
 *    declared; `context.phase == "execute"`) with the input about to be executed: a copy of the
 *    caller's input, taken once, which is also what the executor receives, so the input cannot
 *    change between the decision and the execution;
 * 3. denied: the executor never runs; the span ends with status ERROR, one record with outcome
 *    `"denied"` is written, and the {@link AccessDeniedError} (or subclass) is thrown;
 * 4. allowed: the executor runs inside the span's context (its own spans are children of
 *    `execute_tool`); the span ends and one record (`"completed"` or `"failed"`, with the error type
 *    and the duration) is written; an executor error is rethrown unchanged.
 *
 * Tool arguments and results are put on the span (`gen_ai.tool.call.arguments` / `.result`, JSON,
 * at most {@link MAX_TOOL_CONTENT_CHARS} characters) only when the governance's `captureContent` is on;
 * decision records never hold them.
 *
 * The input copy: plain objects and arrays are copied deeply (each property read once, own
 * enumerable string keys only); anything else (class instances, Dates, buffers) is passed by
 * reference. An input that cannot be read (a getter throws) or is nested deeper than 64 levels is denied.
 *
 * @example
 * ```ts
 * import { createGovernance, governTool, policiesFromDirectory, runAs } from "bedrock-warden";
 *
 * const governance = createGovernance({
 *   environment: "production",
 *   policies: policiesFromDirectory("./policies"),
 *   tools: [{ name: "issue_refund", effect: "mutate", inputSchema: { type: "object", properties: { amount: { type: "integer" } }, required: ["amount"] } }],
 *   onDecision: (record) => auditLog.write(`${JSON.stringify(record)}\n`),
 * });
 * const issueRefund = governTool(
 *   { name: "issue_refund" },
 *   async (input: { amount: number }) => payments.refund(input.amount),
 *   { governance },
 * );
 *
 * // In the agent loop, for each toolUse block of the model's response:
 * const result = await runAs(refundAgent, () => issueRefund(toolUse.input as { amount: number }, { toolUseId: toolUse.toolUseId }));
 * ```
 * @throws {@link ConfigurationError} (at once, not per call) when the tool has no usable name, the
 * executor is not a function, `options.governance` is not a governance, or `options.identity` is malformed.
 */
export function governTool<I, R>(
  tool: { name: string },
  executor: (input: I, execution: ToolExecution) => R | Promise<R>,
  options: GovernToolOptions,
): GovernedTool<I, R> {
  const parsedTool = toolSchema.safeParse(tool);
  if (!parsedTool.success) throw new ConfigurationError(`Invalid governTool tool: ${describeZodError(parsedTool.error, "tool", toolSchema)}`);
  if (typeof executor !== "function") {
    throw new ConfigurationError("Invalid governTool executor: must be a function (input, execution) => result (or a promise of it)");
  }
  const parsedOptions = optionsSchema.safeParse(options);
  if (!parsedOptions.success) throw new ConfigurationError(`Invalid governTool options: ${describeZodError(parsedOptions.error, "options", optionsSchema)}`);
  const { governance } = parsedOptions.data;
  const defaultIdentity =
    parsedOptions.data.identity === undefined ? undefined : checkedIdentity(parsedOptions.data.identity as WorkloadIdentity);
  const name = parsedTool.data.name;
  const spanName = `execute_tool ${name}`;

  return async function governedTool(input: I, call?: { toolUseId?: string }): Promise<R> {
    const started = performance.now();
    const time = new Date();
    const id = randomUUID();
    const scope = currentScope();
    const identity = scope.identity ?? defaultIdentity;
    const { toolUseId, problem: callProblem } = readToolUseId(call);
    const origin = toolUseId === undefined ? undefined : governance.toolCalls.origin(identity?.id, toolUseId);
    // A call id the model gave for another tool is no evidence that the model asked for this one.
    const requestedBy = origin !== undefined && origin.name === name && trace.isSpanContextValid(origin.chatSpan) ? origin : undefined;

    const span = startToolSpan(governance, spanName, name, toolUseId, requestedBy);
    recordIdentity(span, identity, scope, governance.environment);

    let finished = false;
    const finish = (decision: Decision, outcome: DecisionRecord["outcome"], error?: unknown): void => {
      if (finished) return;
      finished = true;
      if (error !== undefined) {
        const type = errorType(error);
        span.setAttribute(GEN_AI.ERROR_TYPE, type);
        span.setStatus({ code: SpanStatusCode.ERROR, message: type });
      }
      span.end();
      governance.metrics.recordToolDecision(decision, "execute", identity?.id);
      if (!governance.recording) return;
      governance.record(
        decisionRecord({
          id,
          time,
          command: `tool:${name}`,
          identity,
          scope,
          environment: governance.environment,
          region: requestedBy?.region,
          decision,
          outcome,
          error,
          span,
          tool: { name, ...(toolUseId !== undefined && { toolUseId }), phase: "execute" },
          durationMs: performance.now() - started,
        }),
      );
    };

    // The input decided on is the input executed: one copy, read once, passed to both.
    let executed: I;
    let inputProblem: string | undefined;
    try {
      executed = snapshot(input, 0) as I;
    } catch (error) {
      executed = undefined as I;
      inputProblem =
        error instanceof RangeError ? `the ${name} input is nested deeper than ${MAX_INPUT_DEPTH} levels` : `the ${name} input could not be read (an accessor threw)`;
    }
    if (governance.captureContent && span.isRecording() && inputProblem === undefined) {
      setContent(span, GEN_AI.TOOL_CALL_ARGUMENTS, executed);
    }

    let decision: Decision;
    let denial: AccessDeniedError | undefined;
    // Running one tool under the id of a call the model made to another is not what the model asked for.
    const mismatch = origin !== undefined && origin.name !== name ? `the tool call ${toolUseId} was a call to ${origin.name}, not ${name}` : undefined;
    // Nor is running a call that was denied when the model asked for it (never offered, malformed,
    // refused by a policy at phase "call"): the execution policy alone must not bring it back.
    const deniedCall =
      origin !== undefined && origin.decision.effect === "deny"
        ? `the model's call ${toolUseId} to ${name} was denied (${origin.decision.reasons.join("; ") || "by policy"}), so it is not run`
        : undefined;
    const problem = callProblem ?? mismatch ?? deniedCall ?? inputProblem;
    const failingSink = problem === undefined ? governance.failingSink() : undefined;
    // A killed workload must not keep running tools: the store is read (not counted) before each execution.
    const admission = identity && governance.usage && problem === undefined ? await readUsage(governance.usage, identity.id, Date.now()) : undefined;
    // Who asked for what, for the denials reached before any policy runs.
    const parts = {
      principal: identity ? entityRef(`${NAMESPACE}::Workload`, identity.id) : "(no workload identity)",
      action: entityRef(`${NAMESPACE}::Action`, governance.tools.get(name)?.action ?? UNDECLARED_TOOL_ACTION),
      resource: entityRef(TOOL_TYPE, name),
      policySetVersion: governance.engine.version,
    };
    if (problem !== undefined) {
      // A call denied when the model asked for it stays denied for the reasons it was, by the policies it was.
      decision = problem === deniedCall && origin !== undefined ? origin.decision : denyDecision(governance, identity, name, problem);
      denial = new AccessDeniedError(decision);
      if (problem === deniedCall) denial = new AccessDeniedError(decision, `${problem}: ${denial.message}`);
    } else if (failingSink !== undefined) {
      denial = evidenceUnavailableDenial(parts, failingSink);
      decision = denial.decision;
    } else if (identity && (admission?.outcome === "killed" || admission?.outcome === "unavailable")) {
      denial = admission.outcome === "killed" ? killedDenial(parts, identity.id, admission.killed) : usageUnavailableDenial(parts, admission.error);
      decision = denial.decision;
    } else {
      const authorization = authorizeTool({
        engine: governance.engine,
        tools: governance.tools,
        environment: governance.environment,
        region: requestedBy?.region ?? "",
        identity,
        scope,
        name,
        phase: "execute",
        input: executed,
        ...(toolUseId !== undefined && { toolUseId }),
        ...(admission?.outcome === "admitted" && { usage: admission.usage }),
      });
      decision = authorization.decision;
      denial = authorization.denial ?? (decision.effect === "allow" ? undefined : new AccessDeniedError(decision));
    }
    recordDecision(span, decision, id);
    if (span.isRecording()) span.setAttribute(WARDEN.TOOL_PHASE, "execute");

    if (denial !== undefined) {
      finish(decision, "denied", denial);
      throw denial;
    }

    const execution: ToolExecution = Object.freeze({ ...(toolUseId !== undefined && { toolUseId }), decision });
    let result: R;
    try {
      result = await otelContext.with(trace.setSpan(otelContext.active(), span), () => executor(executed, execution));
    } catch (error) {
      finish(decision, "failed", error);
      throw error;
    }
    if (governance.captureContent && span.isRecording() && result !== undefined) {
      setContent(span, GEN_AI.TOOL_CALL_RESULT, result);
    }
    finish(decision, "completed");
    return result;
  };
}

function startToolSpan(governance: Governance, spanName: string, name: string, toolUseId: string | undefined, origin: ToolCallOrigin | undefined): Span {
  const attributes: Attributes = {
    [GEN_AI.OPERATION_NAME]: "execute_tool",
    [GEN_AI.TOOL_NAME]: name,
    [GEN_AI.TOOL_TYPE]: "function",
  };
  if (toolUseId !== undefined) attributes[GEN_AI.TOOL_CALL_ID] = toolUseId;
  const links: Link[] = [];
  if (origin !== undefined) {
    links.push({
      context: origin.chatSpan,
      attributes: { [LINK_ATTRIBUTE]: LINK_REQUESTED_BY, [WARDEN.DECISION]: origin.decision.effect },
    });
  }
  // The parent is the caller's active context, never the chat span: the chat span is linked.
  return governance.tracer.startSpan(spanName, { kind: SpanKind.INTERNAL, attributes, links }, otelContext.active());
}

/** The `toolUseId` of the optional second argument, or why it is unusable (never throws). */
function readToolUseId(call: unknown): { toolUseId?: string; problem?: string } {
  if (call === undefined || call === null) return {};
  if (typeof call !== "object") return { problem: "the call argument must be an object { toolUseId?: string }" };
  let value: unknown;
  try {
    value = (call as { toolUseId?: unknown }).toolUseId;
  } catch {
    return { problem: "the call argument could not be read (an accessor threw)" };
  }
  if (value === undefined) return {};
  if (typeof value !== "string") return { problem: "toolUseId is not a string" };
  if (value.length === 0) return { problem: "toolUseId is empty" };
  if (value.length > MAX_LABEL_LENGTH) return { problem: `toolUseId is longer than ${MAX_LABEL_LENGTH} characters (${value.length})` };
  if (CONTROL.test(value)) return { problem: "toolUseId contains control or invisible characters" };
  return { toolUseId: value };
}

/**
 * A deep copy of the plain objects and arrays of `value`, each property read exactly once;
 * anything else is kept as is.
 *
 * @throws whatever a getter throws, or a `RangeError` past {@link MAX_INPUT_DEPTH} (a cycle ends there too).
 */
function snapshot(value: unknown, depth: number): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (depth > MAX_INPUT_DEPTH) throw new RangeError(`nested deeper than ${MAX_INPUT_DEPTH} levels`);
  if (Array.isArray(value)) {
    const length = value.length;
    const items = new Array<unknown>(length);
    for (let i = 0; i < length; i++) items[i] = snapshot(value[i], depth + 1);
    return items;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    // defineProperty, not assignment: a "__proto__" key stays a plain key and never changes the copy's prototype.
    Object.defineProperty(copy, key, { value: snapshot((value as Record<string, unknown>)[key], depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

/** A deny decision made before the engine was asked (the call or the input is unusable). */
function denyDecision(governance: Governance, identity: WorkloadIdentity | undefined, name: string, reason: string): Decision {
  return unevaluatedDenial({
    principal: identity ? entityRef(`${NAMESPACE}::Workload`, identity.id) : "(no workload identity)",
    action: entityRef(`${NAMESPACE}::Action`, governance.tools.get(name)?.action ?? UNDECLARED_TOOL_ACTION),
    resource: entityRef(TOOL_TYPE, name),
    reason,
    policySetVersion: governance.engine.version,
  });
}

function setContent(span: Span, attribute: string, value: unknown): void {
  const json = safeJson(value);
  if (json !== undefined) span.setAttribute(attribute, truncate(json));
}

/** JSON of any value, never throwing: cycles, BigInts, bytes and throwing `toJSON`s included. */
function safeJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value, plainReplacer);
  } catch {
    // A cycle, or an accessor or toJSON that throws: try again, marking cycles, then give up.
  }
  try {
    const ancestors: object[] = [];
    return JSON.stringify(value, function (this: unknown, key: string, v: unknown) {
      const replaced = plainReplacer(key, v);
      if (typeof replaced !== "object" || replaced === null) return replaced;
      // `this` is the object holding `key`: drop the ancestors that are no longer on the path.
      while (ancestors.length > 0 && ancestors[ancestors.length - 1] !== this) ancestors.pop();
      if (ancestors.includes(replaced)) return "[Circular]";
      ancestors.push(replaced);
      return replaced;
    });
  } catch {
    return "<unserializable>";
  }
}

function plainReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  return value;
}

function truncate(text: string): string {
  if (text.length <= MAX_TOOL_CONTENT_CHARS) return text;
  let end = MAX_TOOL_CONTENT_CHARS;
  // Never cut a surrogate pair in half.
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…[truncated ${text.length - end} characters]`;
}

function isGovernance(value: unknown): value is Governance {
  if (typeof value !== "object" || value === null) return false;
  const g = value as Partial<Record<keyof Governance, unknown>>;
  return (
    typeof g.environment === "string" &&
    typeof g.engine === "object" &&
    g.engine !== null &&
    g.tools instanceof Map &&
    typeof (g.toolCalls as { origin?: unknown } | undefined)?.origin === "function" &&
    typeof (g.tracer as { startSpan?: unknown } | undefined)?.startSpan === "function" &&
    typeof g.record === "function"
  );
}
