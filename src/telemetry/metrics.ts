/**
 * Metrics, made with `@opentelemetry/api` only (register any SDK; none registered costs nothing):
 * decisions by outcome and action, and the GenAI client metrics of the semantic conventions —
 * `gen_ai.client.token.usage` and `gen_ai.client.operation.duration` — plus the time to the first
 * chunk of a stream, and policy evaluations by where they ran. Per workload identity, up to a
 * cardinality cap.
 * @module
 */
import { metrics, type Attributes, type Counter, type Histogram, type MeterProvider } from "@opentelemetry/api";
import type { Decision } from "../policy/decision.js";
import { GEN_AI, PROVIDER_AWS_BEDROCK, TRACER_NAME, WARDEN } from "./semconv.js";
import { VERSION } from "../version.js";

/**
 * The names of the metrics bedrock-warden records.
 *
 * @example
 * ```ts
 * const decisions = collected.find((m) => m.descriptor.name === METRICS.DECISIONS);
 * ```
 */
export const METRICS = {
  /** Counter: one per decision (model calls and tool decisions), by decision, outcome and action. */
  DECISIONS: "bedrock_warden.decisions",
  /** Histogram ({token}): input and output tokens per model call (`gen_ai.token.type`). */
  TOKEN_USAGE: "gen_ai.client.token.usage",
  /** Histogram (s): the duration of each model call, to its end (a stream's: to its last event). */
  OPERATION_DURATION: "gen_ai.client.operation.duration",
  /** Histogram (s): from the call to a stream's first event. */
  TIME_TO_FIRST_CHUNK: "bedrock_warden.stream.time_to_first_chunk",
  /**
   * Counter: one per policy evaluation (a decision the memo could not answer; one per part of a
   * slice cut in two), by where it ran (`bedrock_warden.policy.evaluator`: "javascript" or "wasm").
   */
  POLICY_EVALUATIONS: "bedrock_warden.policy.evaluations",
} as const;

// The GenAI conventions' advised bucket boundaries.
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
const DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

/** Past this many distinct identities, further ones are counted as "other": metric series are not free. */
export const MAX_IDENTITIES_IN_METRICS = 1000;

/** What one finished model call contributes. */
export interface CallMeasurement {
  readonly decision: Decision;
  readonly outcome: string;
  readonly workloadId: string | undefined;
  readonly operation: string | undefined;
  readonly model: string | undefined;
  readonly errorType: string | undefined;
  readonly durationSeconds: number;
  readonly usage: { readonly inputTokens?: number; readonly outputTokens?: number } | undefined;
  readonly firstChunkSeconds: number | undefined;
}

/** The governance's instruments. */
export class GovernanceMetrics {
  readonly #decisions: Counter;
  readonly #tokens: Histogram;
  readonly #duration: Histogram;
  readonly #firstChunk: Histogram;
  readonly #evaluations: Counter;
  /** The attributes of each evaluator's series, built once. */
  readonly #byEvaluator = { javascript: { [WARDEN.EVALUATOR]: "javascript" }, wasm: { [WARDEN.EVALUATOR]: "wasm" } } as const;
  readonly #identities = new Set<string>();
  /**
   * No meter provider was registered: the API's meters stay no-ops for good (metrics, unlike traces,
   * have no proxy that a later registration would reach), so nothing is built for them per call.
   */
  readonly #noop: boolean;

  constructor(meterProvider: MeterProvider | undefined) {
    const meter = (meterProvider ?? metrics).getMeter(TRACER_NAME, VERSION);
    this.#noop = meter.constructor.name === "NoopMeter";
    this.#decisions = meter.createCounter(METRICS.DECISIONS, { description: "Authorization decisions, by decision, outcome and action", unit: "{decision}" });
    this.#tokens = meter.createHistogram(METRICS.TOKEN_USAGE, {
      description: "Number of input and output tokens used",
      unit: "{token}",
      advice: { explicitBucketBoundaries: TOKEN_BUCKETS },
    });
    this.#duration = meter.createHistogram(METRICS.OPERATION_DURATION, {
      description: "GenAI operation duration",
      unit: "s",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.#evaluations = meter.createCounter(METRICS.POLICY_EVALUATIONS, {
      description: "Policy evaluations (decisions the memo could not answer), by where they ran",
      unit: "{evaluation}",
    });
    this.#firstChunk = meter.createHistogram(METRICS.TIME_TO_FIRST_CHUNK, {
      description: "Time from the call to the first event of its stream",
      unit: "s",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
  }

  /** Whether anything receives these metrics (when nothing does, the caller need not measure). */
  get recording(): boolean {
    return !this.#noop;
  }

  /** One model call, allowed or denied, when it ends. */
  recordCall(m: CallMeasurement): void {
    if (this.#noop) return;
    this.#decisions.add(1, this.#decisionAttributes(m.decision, m.outcome, m.workloadId));
    if (m.operation === undefined || m.outcome === "denied") return;
    const common: Attributes = {
      [GEN_AI.OPERATION_NAME]: m.operation,
      [GEN_AI.PROVIDER_NAME]: PROVIDER_AWS_BEDROCK,
      ...(m.model !== undefined && { [GEN_AI.REQUEST_MODEL]: m.model }),
    };
    this.#duration.record(m.durationSeconds, m.errorType === undefined ? common : { ...common, "error.type": m.errorType });
    if (m.usage?.inputTokens !== undefined) this.#tokens.record(m.usage.inputTokens, { ...common, "gen_ai.token.type": "input" });
    if (m.usage?.outputTokens !== undefined) this.#tokens.record(m.usage.outputTokens, { ...common, "gen_ai.token.type": "output" });
    if (m.firstChunkSeconds !== undefined) this.#firstChunk.record(m.firstChunkSeconds, common);
  }

  /** One policy evaluation, in JavaScript or in cedar-wasm. */
  recordEvaluation(evaluator: "javascript" | "wasm"): void {
    if (this.#noop) return;
    this.#evaluations.add(1, this.#byEvaluator[evaluator]);
  }

  /** One tool decision (a call the model asked for, or an execution). */
  recordToolDecision(decision: Decision, phase: string, workloadId: string | undefined): void {
    if (this.#noop) return;
    this.#decisions.add(1, { ...this.#decisionAttributes(decision, decision.effect === "allow" ? "allowed" : "denied", workloadId), [WARDEN.TOOL_PHASE]: phase });
  }

  #decisionAttributes(decision: Decision, outcome: string, workloadId: string | undefined): Attributes {
    return {
      [WARDEN.DECISION]: decision.effect,
      [WARDEN.ACTION]: decision.action,
      [WARDEN.OUTCOME]: outcome,
      [WARDEN.WORKLOAD_ID]: this.#identity(workloadId),
      ...(decision.shadow && { [WARDEN.SHADOW_DECISION]: decision.shadow.effect }),
    };
  }

  #identity(id: string | undefined): string {
    if (id === undefined) return "(none)";
    if (this.#identities.has(id)) return id;
    if (this.#identities.size >= MAX_IDENTITIES_IN_METRICS) return "(other)";
    this.#identities.add(id);
    return id;
  }
}
