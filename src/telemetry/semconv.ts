/**
 * Attribute names. The GenAI ones follow the OpenTelemetry GenAI semantic conventions (kept here
 * because the npm constants are deprecated); the `bedrock_warden.*` namespace is this library's
 * own, for identity and authorization, for which no convention exists. Both are stable: renaming
 * one is a breaking change.
 * @module
 */

/**
 * OpenTelemetry GenAI and general attributes used on bedrock-warden spans.
 *
 * @example
 * ```ts
 * const tokens = exporter.getFinishedSpans().reduce((n, s) => n + Number(s.attributes[GEN_AI.USAGE_OUTPUT_TOKENS] ?? 0), 0);
 * ```
 */
export const GEN_AI = {
  OPERATION_NAME: "gen_ai.operation.name",
  PROVIDER_NAME: "gen_ai.provider.name",
  REQUEST_MODEL: "gen_ai.request.model",
  REQUEST_MAX_TOKENS: "gen_ai.request.max_tokens",
  REQUEST_TEMPERATURE: "gen_ai.request.temperature",
  REQUEST_TOP_P: "gen_ai.request.top_p",
  REQUEST_STOP_SEQUENCES: "gen_ai.request.stop_sequences",
  RESPONSE_FINISH_REASONS: "gen_ai.response.finish_reasons",
  USAGE_INPUT_TOKENS: "gen_ai.usage.input_tokens",
  USAGE_OUTPUT_TOKENS: "gen_ai.usage.output_tokens",
  INPUT_MESSAGES: "gen_ai.input.messages",
  OUTPUT_MESSAGES: "gen_ai.output.messages",
  SYSTEM_INSTRUCTIONS: "gen_ai.system_instructions",
  TOOL_NAME: "gen_ai.tool.name",
  TOOL_CALL_ID: "gen_ai.tool.call.id",
  TOOL_TYPE: "gen_ai.tool.type",
  TOOL_CALL_ARGUMENTS: "gen_ai.tool.call.arguments",
  TOOL_CALL_RESULT: "gen_ai.tool.call.result",
  ERROR_TYPE: "error.type",
  RPC_SYSTEM: "rpc.system",
  RPC_SERVICE: "rpc.service",
  RPC_METHOD: "rpc.method",
  AWS_REQUEST_ID: "aws.request_id",
  CLOUD_REGION: "cloud.region",
} as const;

/**
 * The value of `gen_ai.provider.name` for Amazon Bedrock.
 *
 * @example
 * ```ts
 * const bedrockSpans = spans.filter((s) => s.attributes[GEN_AI.PROVIDER_NAME] === PROVIDER_AWS_BEDROCK);
 * ```
 */
export const PROVIDER_AWS_BEDROCK = "aws.bedrock";

/**
 * bedrock-warden's own attributes: who acted, what was decided and why. Present on every span
 * the library makes, allowed or denied.
 *
 * @example
 * ```ts
 * const denied = exporter.getFinishedSpans().filter((s) => s.attributes[WARDEN.DECISION] === "deny");
 * ```
 */
export const WARDEN = {
  /** The workload identity's id (the Cedar principal). */
  WORKLOAD_ID: "bedrock_warden.workload.id",
  /** The groups the workload belongs to (string[]). */
  WORKLOAD_GROUPS: "bedrock_warden.workload.groups",
  /** The purpose the caller declared for the call. */
  PURPOSE: "bedrock_warden.purpose",
  /** The data-sensitivity labels the caller attached (string[]). */
  DATA_SENSITIVITY: "bedrock_warden.data_sensitivity",
  /** The deployment environment the governed client runs in. */
  ENVIRONMENT: "bedrock_warden.environment",
  /** The Cedar action, e.g. `Bedrock::Action::"Converse"`. */
  ACTION: "bedrock_warden.action",
  /** The Cedar resource, e.g. `Bedrock::Model::"anthropic.claude-3-5-haiku-20241022-v1:0"`. */
  RESOURCE: "bedrock_warden.resource",
  /** `"allow"` or `"deny"`. */
  DECISION: "bedrock_warden.decision",
  /** The id of the decision record this span belongs to. */
  DECISION_ID: "bedrock_warden.decision.id",
  /** The ids of the determining policies (string[]). */
  DECISION_POLICIES: "bedrock_warden.decision.policies",
  /** Why, in words (string[]). */
  DECISION_REASONS: "bedrock_warden.decision.reasons",
  /** Evaluation errors, each of which forced a deny (string[]). */
  DECISION_ERRORS: "bedrock_warden.decision.errors",
  /** The content hash of the policy set that decided. */
  POLICY_SET_VERSION: "bedrock_warden.policy_set.version",
  /** How much attribution reached Bedrock's invocation logs: `"full"`, `"partial"` or `"none"`. */
  ATTRIBUTION: "bedrock_warden.attribution",
  /** How a governed call ended: `denied`, `completed`, `failed`, `abandoned`; `allowed`/`denied` for a tool call (metrics and decision logs). */
  OUTCOME: "bedrock_warden.outcome",
  /** How a stream ended: `"completed"`, `"failed"` or `"abandoned"`. */
  STREAM_OUTCOME: "bedrock_warden.stream.outcome",
  /** Seconds from the start of the call to the first stream event. */
  STREAM_TIME_TO_FIRST_CHUNK: "bedrock_warden.stream.time_to_first_chunk",
  /** Number of stream events delivered to the caller. */
  STREAM_EVENTS: "bedrock_warden.stream.events",
  /** The tools offered to the model after filtering (string[]), on model-call spans. */
  TOOLS_OFFERED: "bedrock_warden.tools.offered",
  /** The tools removed from the request because the workload may not use them (string[]). */
  TOOLS_WITHHELD: "bedrock_warden.tools.withheld",
  /** Where a policy evaluation ran (on the evaluations metric): "javascript" or "wasm". */
  EVALUATOR: "bedrock_warden.policy.evaluator",
  /** The phase of a tool decision: "offer", "call" or "execute". */
  TOOL_PHASE: "bedrock_warden.tool.phase",
  /** Whether the workload identity was proven by a verified token (true) or only declared in code (false). */
  IDENTITY_VERIFIED: "bedrock_warden.identity.verified",
  /** How it was proven: "oidc", "spiffe-jwt-svid", a custom provider's method, or "declared". */
  IDENTITY_METHOD: "bedrock_warden.identity.method",
  /** The issuer of the token that proved it. */
  IDENTITY_ISSUER: "bedrock_warden.identity.issuer",
  /** How many delegation hops separate the workload from the subject it acts for (RFC 8693 `act`). */
  DELEGATION_DEPTH: "bedrock_warden.delegation.depth",
  /** The actors of the delegation chain, first delegate to current actor (string[]). */
  DELEGATION_ACTORS: "bedrock_warden.delegation.actors",
  /** The subject (human or service) the delegation chain acts for. */
  DELEGATION_ON_BEHALF_OF: "bedrock_warden.delegation.on_behalf_of",
  /** The invocation path: the task name given to runTask. */
  TASK: "bedrock_warden.task",
  /** The kind of AWS credentials the call is signed with: "long-term", "temporary", "bearer" (never the secrets). */
  CREDENTIALS_KIND: "bedrock_warden.credentials.kind",
  /** Whether they were issued just in time by the credential broker for this identity and path. */
  CREDENTIALS_BROKERED: "bedrock_warden.credentials.brokered",
  /** What policies in shadow would have decided (`allow` or `deny`), when it differs from the decision enforced. */
  SHADOW_DECISION: "bedrock_warden.shadow.decision",
  /** The policies that determined the would-be decision (string[]). */
  SHADOW_POLICIES: "bedrock_warden.shadow.policies",
  /** Why, in words (string[]). */
  SHADOW_REASONS: "bedrock_warden.shadow.reasons",
} as const;

/**
 * The instrumentation scope name of bedrock-warden's tracer.
 *
 * @example
 * ```ts
 * const wardenSpans = spans.filter((s) => s.instrumentationScope.name === TRACER_NAME);
 * ```
 */
export const TRACER_NAME = "bedrock-warden";
