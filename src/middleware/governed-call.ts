/**
 * The life of one governed call, from its decision to its end: it owns the call's span and
 * writes its decision record, each exactly once, however the call ends (denied, completed,
 * failed, or a stream abandoned by its reader).
 * @module
 */
import { randomUUID } from "node:crypto";
import type { Span } from "@opentelemetry/api";
import { decisionRecord, type DecisionRecord } from "../audit/decision-record.js";
import type { CredentialFacts } from "../credentials/credential-facts.js";
import type { Governance } from "../governance.js";
import type { ToolOffers } from "../tools/tool-offers.js";
import type { ActiveScope } from "../identity/call-scope.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import type { Decision } from "../policy/decision.js";
import { commandSpec } from "../policy/commands.js";
import { endCallSpan, errorType, recordDecision } from "../telemetry/call-span.js";
import { newObservation, type CallObservation } from "../telemetry/response-observer.js";
import { WARDEN } from "../telemetry/semconv.js";
import { recordTokens, responseTokens } from "../budgets/usage-context.js";

/** The key under which a call's state rides on the SDK's per-call handler context. */
export const GOVERNED_CALL = Symbol.for("bedrock-warden.governed-call");

/** Something that can be closed to stop the model generating: the raw HTTP response body. */
interface Closable {
  destroy(error?: Error): void;
}

export class GovernedCall {
  readonly id = randomUUID();
  readonly time = new Date();
  readonly observation: CallObservation = newObservation();
  decision: Decision | undefined;
  region: string | undefined;
  /** The HTTP response of the last attempt, captured by the attempt middleware. */
  responseBody: Closable | undefined;
  responseHeaders: Readonly<Record<string, string>> | undefined;
  /** The credentials the call was authorized with (and must be signed with). */
  credentials: CredentialFacts | undefined;
  /** The tools offered to the model and those withheld, each decided (phase "offer"). */
  toolOffers: Pick<ToolOffers, "offered" | "withheld" | "decisions"> | undefined;
  /** What was passed down the stack once the call was allowed: its input, attributed. */
  sentInput: Record<string, unknown> | undefined;
  /** The size of the last attempt's request body, as sent (0 until one is sent, or for a streamed body). */
  requestBytes = 0;
  /** How much attribution reached the request. */
  attribution: "full" | "partial" | "none" | undefined;
  /** The workload and decision entries attribution wrote, as they read in the serialized request. */
  attributionMarks: readonly string[] = [];
  readonly #started = performance.now();
  #finished = false;

  constructor(
    readonly governance: Governance,
    readonly commandName: string,
    readonly span: Span,
    readonly identity: WorkloadIdentity | undefined,
    readonly scope: ActiveScope,
    /** The snapshot of the caller's input that is decided on, and is the only one passed on. */
    public input: Record<string, unknown>,
  ) {}

  get finished(): boolean {
    return this.#finished;
  }

  decided(decision: Decision): void {
    this.decision = decision;
    recordDecision(this.span, decision, this.id);
  }

  /** Milliseconds since the call started. */
  elapsedMs(): number {
    return performance.now() - this.#started;
  }

  /** Stops the model generating: closes the HTTP stream of the response. */
  closeResponse(): void {
    try {
      this.responseBody?.destroy();
    } catch {
      // Already closed.
    }
  }

  /** Ends the span and writes the record; only the first call does anything. */
  finish(outcome: DecisionRecord["outcome"], error?: unknown): void {
    if (this.#finished) return;
    this.#finished = true;
    const { governance, span, decision, observation } = this;
    if (this.attribution && span.isRecording()) span.setAttribute(WARDEN.ATTRIBUTION, this.attribution);
    endCallSpan(span, observation, error, governance.captureContent);
    // The tokens the response reported count against the identity's hour (after the call, never
    // holding it). A stream left or failed before its usage arrived reported none, yet the model
    // read its input and generated: it is charged an estimate of its input and its output cap, so
    // leaving streams early — even before the first event — never dodges a token budget.
    if (governance.usage && this.identity) {
      const tokens = observation.usage
        ? responseTokens(observation.usage)
        : observation.stream
          ? estimatedInputTokens(this.requestBytes) + unreportedStreamTokens(this.commandName, this.input)
          : 0;
      if (tokens > 0) recordTokens(governance.usage, this.identity.id, tokens, Date.now());
    }
    if (!decision) return;
    const durationMs = this.elapsedMs();
    const modelId = this.input["modelId"];
    if (governance.metrics.recording) governance.metrics.recordCall({
      decision,
      outcome,
      workloadId: this.identity?.id,
      operation: commandSpec(this.commandName)?.genAiOperation,
      model: typeof modelId === "string" ? modelId : undefined,
      errorType: error === undefined || outcome === "denied" ? undefined : errorType(error),
      durationSeconds: durationMs / 1000,
      usage: observation.usage,
      firstChunkSeconds: observation.stream?.firstChunkSeconds,
    });
    if (!governance.recording) return;
    governance.record(
      decisionRecord({
        id: this.id,
        time: this.time,
        command: this.commandName,
        identity: this.identity,
        scope: this.scope,
        environment: governance.environment,
        region: this.region,
        credentials: this.credentials,
        ...(this.toolOffers && this.toolOffers.decisions.size > 0 && { toolOffers: this.toolOffers }),
        decision,
        outcome,
        error,
        span,
        requestId: observation.requestId,
        usage: observation.usage,
        durationMs,
      }),
    );
  }
}

/** What a stream that ended without reporting its usage is charged for its output when it asked for no cap. */
export const UNREPORTED_STREAM_TOKENS = 4096;

/**
 * An upper estimate of the input tokens of a request of this many bytes: one token per 4 bytes of
 * the body sent (text runs at ~4 characters a token; the body's JSON syntax and base64 make it larger,
 * never smaller, than its text).
 */
function estimatedInputTokens(requestBytes: number): number {
  return Math.ceil(requestBytes / 4);
}

function unreportedStreamTokens(commandName: string, input: Record<string, unknown>): number {
  try {
    return commandSpec(commandName)?.facts(input).maxTokens ?? UNREPORTED_STREAM_TOKENS;
  } catch {
    return UNREPORTED_STREAM_TOKENS;
  }
}
