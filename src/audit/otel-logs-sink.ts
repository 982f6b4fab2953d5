/**
 * `otelLogsSink()`: one OpenTelemetry log record per decision, through `@opentelemetry/api-logs`
 * (the API only: the application registers the SDK and its exporters, as with traces).
 * @module
 */
import { ROOT_CONTEXT, trace, TraceFlags, type Context } from "@opentelemetry/api";
import { logs, SeverityNumber, type Logger, type LoggerProvider, type LogAttributes } from "@opentelemetry/api-logs";
import { GEN_AI, TRACER_NAME, WARDEN } from "../telemetry/semconv.js";
import { VERSION } from "../version.js";
import type { DecisionRecord } from "./decision-record.js";
import { DecisionSinkError, type DecisionSink } from "./sink.js";

/**
 * The event name of every decision log record.
 *
 * @example
 * ```ts
 * const decisions = exporter.getFinishedLogRecords().filter((r) => r.eventName === DECISION_EVENT_NAME);
 * ```
 */
export const DECISION_EVENT_NAME = "bedrock_warden.decision";

/**
 * Attributes of decision log records that spans do not carry (so `semconv.ts` has no name for
 * them yet). Stable like the others: renaming one is a breaking change.
 *
 * @example
 * ```ts
 * const failed = records.filter((r) => r.attributes[DECISION_LOG_ATTRIBUTES.OUTCOME] === "failed");
 * ```
 */
export const DECISION_LOG_ATTRIBUTES = {
  /** The governed command, e.g. `ConverseCommand`. */
  COMMAND: "bedrock_warden.command",
  /** How the call ended: `denied`, `completed`, `failed`, `abandoned`, or `allowed` (a tool call's decision). */
  OUTCOME: WARDEN.OUTCOME,
  /** Milliseconds from the start of the call to its end. */
  DURATION_MS: "bedrock_warden.duration_ms",
  /** When the token that proved the workload expires (ISO 8601). */
  IDENTITY_EXPIRES_AT: "bedrock_warden.identity.expires_at",
  /** When the credentials the call was signed with expire (ISO 8601). */
  CREDENTIALS_EXPIRES_AT: "bedrock_warden.credentials.expires_at",
  /** Evaluation errors of the policies in shadow (string[]). */
  SHADOW_ERRORS: "bedrock_warden.shadow.errors",
} as const;

/**
 * Options of {@link otelLogsSink}.
 *
 * @example
 * ```ts
 * const options: OtelLogsSinkOptions = { loggerProvider: new LoggerProvider({ processors: [new BatchLogRecordProcessor({ exporter })] }) };
 * ```
 */
export interface OtelLogsSinkOptions {
  /** Where log records go; the globally registered provider (`logs.setGlobalLoggerProvider`) by default. */
  readonly loggerProvider?: LoggerProvider;
}

/**
 * A sink that emits one OpenTelemetry log record per decision: event name
 * `bedrock_warden.decision`, severity INFO for an allow and WARN for a deny, the body a one-line
 * summary (`decisionSummary`), the attributes the record's fields under the same names as
 * on spans (`bedrock_warden.*`, `gen_ai.*`; see `decisionAttributes`), the timestamp the
 * decision's time, and the call's trace context (trace id and span id) when the record has one,
 * so a backend links the log record to the span.
 *
 * `failure` is set while emitting throws (a broken processor) and cleared by the next emit that
 * does not. What happens after `emit` (batching, export) is the SDK's: an exporter that cannot
 * reach its collector does not show here; watch the SDK's own diagnostics for that.
 *
 * @example
 * ```ts
 * import { logs } from "@opentelemetry/api-logs";
 * import { LoggerProvider, BatchLogRecordProcessor } from "@opentelemetry/sdk-logs";
 * import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
 *
 * logs.setGlobalLoggerProvider(new LoggerProvider({ processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter() })] }));
 * const sink = otelLogsSink();
 * const governance = createGovernance({ environment: "production", policies, sinks: [sink] });
 * ```
 */
export function otelLogsSink(options: OtelLogsSinkOptions = {}): DecisionSink {
  const provider = options.loggerProvider;
  if (provider !== undefined && typeof (provider as Partial<LoggerProvider> | null)?.getLogger !== "function") {
    throw new TypeError("otelLogsSink({ loggerProvider }): loggerProvider must be an OpenTelemetry LoggerProvider (an object with getLogger)");
  }
  // The global API hands out a proxy logger: a provider registered after this sink is made is still used.
  const logger: Logger = (provider ?? logs).getLogger(TRACER_NAME, VERSION);
  let failure: DecisionSinkError | undefined;
  let closed = false;
  const name = "otel-logs";
  return {
    name,
    get failure() {
      return failure;
    },
    write(record: DecisionRecord): void {
      if (closed) return;
      try {
        const allowed = record.decision === "allow";
        const time = new Date(record.time);
        logger.emit({
          eventName: DECISION_EVENT_NAME,
          severityNumber: allowed ? SeverityNumber.INFO : SeverityNumber.WARN,
          severityText: allowed ? "INFO" : "WARN",
          body: decisionSummary(record),
          attributes: decisionAttributes(record),
          ...(Number.isNaN(time.getTime()) ? {} : { timestamp: time }),
          context: traceContext(record),
        });
        failure = undefined;
      } catch (error) {
        failure = new DecisionSinkError(name, `emitting a decision log record failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
      }
    },
    async flush(): Promise<void> {
      await forceFlush(provider ?? logs.getLoggerProvider());
    },
    async close(): Promise<void> {
      closed = true;
      // The provider is the application's: flush it, never shut it down.
      await forceFlush(provider ?? logs.getLoggerProvider());
    },
  };
}

async function forceFlush(provider: LoggerProvider): Promise<void> {
  const flushable = provider as LoggerProvider & { forceFlush?: () => Promise<void> };
  if (typeof flushable.forceFlush === "function") await flushable.forceFlush();
}

/**
 * The context a decision's log record is emitted in: the call's span context when the record has
 * one (so the log record carries its trace id and span id), otherwise the root context (never the
 * caller's active one: the record belongs to the call it describes, not to whoever writes it).
 */
function traceContext(record: DecisionRecord): Context {
  if (record.traceId === undefined || record.spanId === undefined) return ROOT_CONTEXT;
  // A record carries span ids only when its span was sampled or recording: mark it sampled so a
  // trace-based logger configuration keeps it.
  return trace.setSpanContext(ROOT_CONTEXT, { traceId: record.traceId, spanId: record.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: false });
}

/**
 * A one-line summary of a decision, the body of its log record: who, what, on what, the
 * decision, the outcome and (for a deny) why.
 *
 * @example
 * ```ts
 * decisionSummary(record);
 * // 'spiffe://acme.test/agents/invoice allow Bedrock::Action::"Converse" on Bedrock::Model::"anthropic.claude-3-haiku-20240307-v1:0" (completed)'
 * ```
 */
export function decisionSummary(record: DecisionRecord): string {
  const who = record.workload?.id ?? "(no workload identity)";
  const tool = record.tool ? ` [tool ${record.tool.name}, ${record.tool.phase}]` : "";
  const why = record.decision === "deny" && record.reasons.length > 0 ? `: ${record.reasons.join("; ")}` : "";
  const shadow = record.shadow ? ` [shadow policies would ${record.shadow.decision}]` : "";
  return `${who} ${record.decision} ${record.action} on ${record.resource}${tool} (${record.outcome})${shadow}${why}`;
}

/**
 * A decision record as flat log attributes: the `bedrock_warden.*` and `gen_ai.*` names spans use
 * (`WARDEN`, `GEN_AI`), plus {@link DECISION_LOG_ATTRIBUTES} for fields spans do not have. The
 * record's time becomes the log record's timestamp and its trace and span ids its trace context,
 * so they are not repeated here.
 *
 * @example
 * ```ts
 * const attributes = decisionAttributes(record);
 * attributes[WARDEN.DECISION]; // "allow"
 * ```
 */
export function decisionAttributes(record: DecisionRecord): LogAttributes {
  const a: LogAttributes = {
    [WARDEN.DECISION_ID]: record.id,
    [DECISION_LOG_ATTRIBUTES.COMMAND]: record.command,
    [WARDEN.ENVIRONMENT]: record.environment,
    [WARDEN.ACTION]: record.action,
    [WARDEN.RESOURCE]: record.resource,
    [WARDEN.DECISION]: record.decision,
    [WARDEN.DECISION_POLICIES]: [...record.policies],
    [WARDEN.DECISION_REASONS]: [...record.reasons],
    [WARDEN.POLICY_SET_VERSION]: record.policySetVersion,
    [DECISION_LOG_ATTRIBUTES.OUTCOME]: record.outcome,
    [WARDEN.DATA_SENSITIVITY]: [...record.dataSensitivity],
    [DECISION_LOG_ATTRIBUTES.DURATION_MS]: record.durationMs,
  };
  if (record.errors.length > 0) a[WARDEN.DECISION_ERRORS] = [...record.errors];
  if (record.shadow) {
    a[WARDEN.SHADOW_DECISION] = record.shadow.decision;
    a[WARDEN.SHADOW_POLICIES] = [...record.shadow.policies];
    a[WARDEN.SHADOW_REASONS] = [...record.shadow.reasons];
    if (record.shadow.errors.length > 0) a[DECISION_LOG_ATTRIBUTES.SHADOW_ERRORS] = [...record.shadow.errors];
  }
  if (record.workload) {
    a[WARDEN.WORKLOAD_ID] = record.workload.id;
    a[WARDEN.WORKLOAD_GROUPS] = [...record.workload.groups];
  }
  const { authentication, delegation, credentials, tool, usage } = record;
  if (authentication) {
    a[WARDEN.IDENTITY_VERIFIED] = authentication.verified;
    a[WARDEN.IDENTITY_METHOD] = authentication.method;
    if (authentication.issuer !== undefined) a[WARDEN.IDENTITY_ISSUER] = authentication.issuer;
    if (authentication.expiresAt !== undefined) a[DECISION_LOG_ATTRIBUTES.IDENTITY_EXPIRES_AT] = authentication.expiresAt;
  }
  if (delegation) {
    a[WARDEN.DELEGATION_DEPTH] = delegation.depth;
    a[WARDEN.DELEGATION_ACTORS] = [...delegation.actors];
    if (delegation.onBehalfOf !== undefined) a[WARDEN.DELEGATION_ON_BEHALF_OF] = delegation.onBehalfOf;
  }
  if (record.task !== undefined) a[WARDEN.TASK] = record.task;
  if (credentials) {
    a[WARDEN.CREDENTIALS_KIND] = credentials.kind;
    a[WARDEN.CREDENTIALS_BROKERED] = credentials.brokered;
    if (credentials.expiresAt !== undefined) a[DECISION_LOG_ATTRIBUTES.CREDENTIALS_EXPIRES_AT] = credentials.expiresAt;
  }
  if (record.purpose !== undefined) a[WARDEN.PURPOSE] = record.purpose;
  if (record.region !== undefined) a[GEN_AI.CLOUD_REGION] = record.region;
  if (tool) {
    a[GEN_AI.TOOL_NAME] = tool.name;
    if (tool.toolUseId !== undefined) a[GEN_AI.TOOL_CALL_ID] = tool.toolUseId;
    a[WARDEN.TOOL_PHASE] = tool.phase;
  }
  if (record.error !== undefined) a[GEN_AI.ERROR_TYPE] = record.error;
  if (record.requestId !== undefined) a[GEN_AI.AWS_REQUEST_ID] = record.requestId;
  if (usage?.inputTokens !== undefined) a[GEN_AI.USAGE_INPUT_TOKENS] = usage.inputTokens;
  if (usage?.outputTokens !== undefined) a[GEN_AI.USAGE_OUTPUT_TOKENS] = usage.outputTokens;
  return a;
}
