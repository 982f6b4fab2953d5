/**
 * Every tool call the model asks for is decided, with its actual input: each `toolUse` in a
 * Converse output, and each one assembled from a ConverseStream's deltas at its `contentBlockStop`.
 * The decisions are readable from the output ({@link toolDecisions}); a denied call either throws
 * or becomes a `toolResult` with status error to send back ({@link deniedToolResults}), as the
 * governance's `toolEnforcement` says. Calls AWS ran itself (`server_tool_use`) are recorded with
 * the decision made when the tool was offered.
 * @module
 */
import { randomUUID } from "node:crypto";
import type { Span } from "@opentelemetry/api";
import { decisionRecord } from "../audit/decision-record.js";
import { ToolCallDeniedError } from "../errors.js";
import type { Governance } from "../governance.js";
import type { ActiveScope } from "../identity/call-scope.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import { unevaluatedDenial, entityRef, type Decision } from "../policy/decision.js";
import { NAMESPACE, TOOL_TYPE } from "../policy/request-builder.js";
import { GEN_AI, WARDEN } from "../telemetry/semconv.js";
import { authorizeTool } from "./authorize-tool.js";
import { ToolCallAssembler, toolCallsOfMessage, type ToolCallRequest } from "./tool-calls.js";
import { UNDECLARED_TOOL_ACTION } from "./tool-definitions.js";
import type { Usage } from "../budgets/usage-store.js";
import type { CredentialFacts } from "../credentials/credential-facts.js";

/**
 * A tool call the model asked for, and its decision.
 *
 * @example
 * ```ts
 * for (const call of toolDecisions(output)) {
 *   if (call.decision.effect === "allow") results.push(await runTool(call.name, call.input));
 * }
 * ```
 */
export interface ToolCallDecision {
  readonly toolUseId: string;
  readonly name: string;
  /** The input the model gave (parsed), or undefined when it was malformed. */
  readonly input: Record<string, unknown> | undefined;
  /** Run by AWS (`server_tool_use`), not by the application. */
  readonly serverSide: boolean;
  readonly decision: Decision;
  /** What was wrong with the call itself (malformed input, a name never offered, a duplicate id ...). */
  readonly problem?: string;
}

const decisionsByOutput = new WeakMap<object, ToolCallDecision[]>();

/**
 * The decisions on the tool calls in a governed Converse or ConverseStream output (for a stream,
 * those made so far: each is added when its `contentBlockStop` arrives).
 *
 * @example
 * ```ts
 * const output = await runAs(agent, () => bedrock.converse(input));
 * const denied = toolDecisions(output).filter((call) => call.decision.effect === "deny");
 * ```
 */
export function toolDecisions(output: object): readonly ToolCallDecision[] {
  return decisionsByOutput.get(output) ?? [];
}

/**
 * The `toolResult` content blocks (status error, with the reason) for every denied tool call of an
 * output: send them back to the model in the next user message so the conversation can go on.
 *
 * @example
 * ```ts
 * const governance = createGovernance({ environment, policies, tools, toolEnforcement: "result" });
 * const reply = await runAs(agent, () => bedrock.converse(input));
 * const results = [...(await runAllowedTools(reply)), ...deniedToolResults(reply)];
 * messages.push(reply.output!.message!, { role: "user", content: results });
 * ```
 */
export function deniedToolResults(output: object): { toolResult: { toolUseId: string; status: "error"; content: { text: string }[] } }[] {
  const answered = new Set<string>();
  return toolDecisions(output)
    .filter((call) => {
      // A call without an id cannot be answered, and an id the model repeated is answered once.
      if (call.decision.effect !== "deny" || call.serverSide || call.toolUseId === "" || answered.has(call.toolUseId)) return false;
      answered.add(call.toolUseId);
      return true;
    })
    .map((call) => ({
      toolResult: {
        toolUseId: call.toolUseId,
        status: "error",
        content: [{ text: `Denied by policy: ${call.decision.reasons.join("; ")}. Do not retry this call.` }],
      },
    }));
}

/** Attaches decisions to an output object. */
export function attachToolDecisions(output: object, decisions: ToolCallDecision[]): void {
  decisionsByOutput.set(output, decisions);
}

/** What a model call's tool decisions are made in. */
export interface ToolCallScope {
  readonly governance: Governance;
  readonly identity: WorkloadIdentity | undefined;
  readonly scope: ActiveScope;
  readonly region: string;
  /** The tools the request offered (after filtering), or undefined when it offered none. */
  readonly offered: ReadonlySet<string> | undefined;
  /** The offer decisions of the request, by tool name (server-side calls are recorded with them). */
  readonly offerDecisions: ReadonlyMap<string, Decision>;
  /** The offered tools AWS runs itself (`systemTool`s). */
  readonly serverSideTools: ReadonlySet<string>;
  /** The model call's span: each decision is an event on it, and `governTool` links to it. */
  readonly span: Span;
  readonly command: string;
  /** The credentials of the model call that asked for the tools. */
  readonly credentials: CredentialFacts;
  /** The principal's usage when the model call was admitted, when counted. */
  readonly usage?: Usage;
}

/** Decides one tool call the model asked for; records it and remembers where it came from. */
export function decideToolCall(call: ToolCallRequest, context: ToolCallScope): ToolCallDecision {
  const { governance, identity, scope } = context;
  const declared = governance.tools.get(call.name);
  const unevaluated = (reason: string) =>
    unevaluatedDenial({
      principal: identity ? entityRef(`${NAMESPACE}::Workload`, identity.id) : "(no workload identity)",
      action: entityRef(`${NAMESPACE}::Action`, declared?.action ?? UNDECLARED_TOOL_ACTION),
      resource: entityRef(TOOL_TYPE, call.name || "(unnamed)"),
      reason,
      errors: [reason],
      policySetVersion: governance.engine.version,
    });
  let decision: Decision;
  let problem = call.problem;
  // The model's own label is not evidence: a call is AWS-run only if that tool was offered as a
  // systemTool. An application tool the model labels as AWS-run is a malformed call.
  const serverSide = call.serverSide && context.serverSideTools.has(call.name);
  if (problem === undefined && call.serverSide && !serverSide) {
    problem = `marked as run by AWS (server_tool_use), but ${call.name} was not offered as a systemTool`;
  } else if (problem === undefined && !call.serverSide && context.serverSideTools.has(call.name)) {
    // The other way round: a tool offered for AWS to run, asked of the application (which may have a
    // tool of that name of its own, never offered).
    problem = `asked of the application, but ${call.name} was offered as a systemTool, which AWS runs`;
  }
  if (problem !== undefined) {
    decision = unevaluated(`the tool call is malformed: ${problem}`);
  } else if (serverSide) {
    // AWS has already run it: the evidence is the decision made when it was offered.
    decision = context.offerDecisions.get(call.name) as Decision;
  } else if (!context.offered?.has(call.name)) {
    problem = "never offered";
    decision = unevaluated(`the model asked for ${call.name}, which was not offered to it`);
  } else {
    decision = authorizeTool({
      engine: governance.engine,
      tools: governance.tools,
      environment: governance.environment,
      region: context.region,
      identity,
      scope,
      name: call.name,
      phase: "call",
      input: call.input,
      toolUseId: call.toolUseId,
      credentials: context.credentials,
      ...(context.usage && { usage: context.usage }),
    }).decision;
  }
  const result: ToolCallDecision = Object.freeze({
    toolUseId: call.toolUseId,
    name: call.name,
    input: call.input,
    serverSide,
    decision,
    ...(problem !== undefined && { problem }),
  });
  evidence(result, context);
  return result;
}

function evidence(call: ToolCallDecision, context: ToolCallScope): void {
  const { governance, span, identity, scope, region } = context;
  const spanContext = span.spanContext();
  if (call.toolUseId) governance.toolCalls.remember(identity?.id, call.toolUseId, { name: call.name, chatSpan: spanContext, decision: call.decision, region });
  if (span.isRecording()) {
    span.addEvent("bedrock_warden.tool_call", {
      [GEN_AI.TOOL_NAME]: call.name,
      [GEN_AI.TOOL_CALL_ID]: call.toolUseId,
      [WARDEN.TOOL_PHASE]: "call",
      [WARDEN.DECISION]: call.decision.effect,
      [WARDEN.DECISION_POLICIES]: [...call.decision.policies],
      [WARDEN.DECISION_REASONS]: [...call.decision.reasons],
      ...(call.decision.shadow && { [WARDEN.SHADOW_DECISION]: call.decision.shadow.effect, [WARDEN.SHADOW_POLICIES]: [...call.decision.shadow.policies] }),
    });
  }
  governance.metrics.recordToolDecision(call.decision, "call", identity?.id);
  if (!governance.recording) return;
  governance.record(
    decisionRecord({
      id: randomUUID(),
      time: new Date(),
      command: `tool:${call.name}`,
      identity,
      scope,
      environment: governance.environment,
      region,
      decision: call.decision,
      outcome: call.decision.effect === "allow" ? "allowed" : "denied",
      span,
      tool: { name: call.name, ...(call.toolUseId && { toolUseId: call.toolUseId }), phase: "call" },
      durationMs: 0,
    }),
  );
}

/** Decides the tool calls of a Converse output; returns the first denial to throw, if enforcement throws. */
export function decideMessageToolCalls(output: Record<string, unknown>, context: ToolCallScope): { decisions: ToolCallDecision[]; error?: ToolCallDeniedError } {
  const content = (output["output"] as { message?: { content?: unknown } } | undefined)?.message?.content;
  return decideOutputToolCalls(toolCallsOfMessage(content), output, context);
}

/**
 * Decides the tool calls read from a model call's output; returns the first denial to throw, if
 * enforcement throws.
 *
 * @example
 * ```ts
 * const { decisions, error } = decideOutputToolCalls(invokeResponseToolCalls(output.body), output, scope);
 * attachToolDecisions(output, decisions);
 * if (error) throw error;
 * ```
 */
export function decideOutputToolCalls(
  calls: readonly ToolCallRequest[],
  output: Record<string, unknown>,
  context: ToolCallScope,
): { decisions: ToolCallDecision[]; error?: ToolCallDeniedError } {
  const decisions = calls.map((call) => decideToolCall(call, context));
  const denied = decisions.find((call) => call.decision.effect === "deny" && !call.serverSide);
  if (denied && context.governance.toolEnforcement === "throw") {
    return { decisions, error: new ToolCallDeniedError(denied.decision, denied.name, denied.toolUseId, output) };
  }
  return { decisions };
}

/**
 * Decides the tool calls of a ConverseStream as they complete: fed every event, it returns the
 * error to raise at that event when a call is denied and enforcement throws.
 */
/** What the stream inspector asks of tool-call decisions. */
export interface ToolCallDecider {
  onEvent(event: unknown): ToolCallDeniedError | undefined;
  onCalls(calls: readonly ToolCallRequest[]): ToolCallDeniedError | undefined;
  onEnd(): ToolCallDeniedError | undefined;
}

export class StreamToolCallDecider implements ToolCallDecider {
  readonly #assembler = new ToolCallAssembler();
  readonly #context: ToolCallScope;
  readonly #decisions: ToolCallDecision[];

  constructor(context: ToolCallScope, decisions: ToolCallDecision[]) {
    this.#context = context;
    this.#decisions = decisions;
  }

  /**
   * Observes one event; at a tool block's end, decides it. At the message's end, tool blocks still
   * open are decided (denied) before the event reaches the application: a framework that runs the
   * tool calls at `messageStop` must never find one without a decision.
   */
  onEvent(event: unknown): ToolCallDeniedError | undefined {
    const call = this.#assembler.accept(event);
    const refusal = call === undefined ? undefined : this.#decide([call]);
    // An event that is both a block's stop and the message's end (out of order) settles the rest too.
    if (this.#assembler.openBlockCount > 0 && isMessageEnd(event)) {
      const settled = this.#decide(this.#assembler.endMessage());
      return refusal ?? settled;
    }
    return refusal;
  }

  /** Whole calls read from a stream event (or standing for one that could not be read, see `unreadableToolCall`): decided at once. */
  onCalls(calls: readonly ToolCallRequest[]): ToolCallDeniedError | undefined {
    return this.#decide(calls);
  }

  /** At the end of the stream: tool blocks that never ended are malformed calls. */
  onEnd(): ToolCallDeniedError | undefined {
    return this.#decide(this.#assembler.finish());
  }

  #decide(calls: readonly ToolCallRequest[]): ToolCallDeniedError | undefined {
    let error: ToolCallDeniedError | undefined;
    for (const call of calls) {
      const decided = decideToolCall(call, this.#context);
      this.#decisions.push(decided);
      if (!error && decided.decision.effect === "deny" && !decided.serverSide && this.#context.governance.toolEnforcement === "throw") {
        error = new ToolCallDeniedError(decided.decision, decided.name, decided.toolUseId, undefined);
      }
    }
    return error;
  }
}

function isMessageEnd(event: unknown): boolean {
  if (typeof event !== "object" || event === null) return false;
  const members = event as Record<string, unknown>;
  return members["messageStop"] !== undefined || members["metadata"] !== undefined;
}
