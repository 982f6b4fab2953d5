/**
 * The span of one governed call, in the OpenTelemetry Bedrock extension's split: a request hook
 * (name and request attributes, before the decision), the decision, and a response hook (usage,
 * finish reasons), ended exactly once by the call.
 * @module
 */
import { SpanKind, SpanStatusCode, type Attributes, type Span, type Tracer } from "@opentelemetry/api";
import type { ActiveScope } from "../identity/call-scope.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import type { CommandSpec } from "../policy/commands.js";
import type { Decision } from "../policy/decision.js";
import type { CallObservation } from "./response-observer.js";
import { GEN_AI, PROVIDER_AWS_BEDROCK, WARDEN } from "./semconv.js";
import type { CredentialFacts } from "../credentials/credential-facts.js";
import { authenticationOf } from "../identity/authentication.js";
import { ownValue } from "../validation.js";

const operations = new Map<string, string>();

/**
 * Starts the span of a call: `chat {model}` for model invocations (GenAI conventions), or
 * `BedrockRuntime.{Command}` (RPC conventions) for the other commands. Both are CLIENT spans.
 */
export function startCallSpan(
  tracer: Tracer,
  commandName: string,
  spec: CommandSpec | undefined,
  input: Record<string, unknown>,
  captureContent: boolean,
): Span {
  let operation = operations.get(commandName);
  if (operation === undefined) {
    operation = commandName.replace(/Command$/, "");
    // Command names come from the SDK's command classes: few, but bounded all the same.
    if (operations.size < 256) operations.set(commandName, operation);
  }
  const modelId = readModelId(input);
  const attributes: Attributes = {
    [GEN_AI.RPC_SYSTEM]: "aws-api",
    [GEN_AI.RPC_SERVICE]: "BedrockRuntime",
    [GEN_AI.RPC_METHOD]: operation,
  };
  let name = `BedrockRuntime.${operation}`;
  if (spec?.genAiOperation && modelId !== undefined) {
    name = `${spec.genAiOperation} ${modelId}`;
    attributes[GEN_AI.OPERATION_NAME] = spec.genAiOperation;
    attributes[GEN_AI.PROVIDER_NAME] = PROVIDER_AWS_BEDROCK;
    attributes[GEN_AI.REQUEST_MODEL] = modelId;
  } else if (modelId !== undefined) {
    attributes[GEN_AI.REQUEST_MODEL] = modelId;
  }
  const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes });
  if (span.isRecording()) {
    try {
      recordRequestParameters(span, input, captureContent);
    } catch {
      // The input is the caller's: a throwing getter must not cost the call its span.
    }
  }
  return span;
}

function readModelId(input: Record<string, unknown>): string | undefined {
  try {
    const modelId = input["modelId"];
    return typeof modelId === "string" ? modelId : undefined;
  } catch {
    return undefined;
  }
}

function recordRequestParameters(span: Span, input: Record<string, unknown>, captureContent: boolean): void {
  const inference = input["inferenceConfig"];
  if (typeof inference === "object" && inference !== null) {
    const { maxTokens, temperature, topP, stopSequences } = inference as Record<string, unknown>;
    if (typeof maxTokens === "number") span.setAttribute(GEN_AI.REQUEST_MAX_TOKENS, maxTokens);
    if (typeof temperature === "number") span.setAttribute(GEN_AI.REQUEST_TEMPERATURE, temperature);
    if (typeof topP === "number") span.setAttribute(GEN_AI.REQUEST_TOP_P, topP);
    if (Array.isArray(stopSequences) && stopSequences.every((s) => typeof s === "string")) {
      span.setAttribute(GEN_AI.REQUEST_STOP_SEQUENCES, stopSequences as string[]);
    }
  }
  if (captureContent) {
    if (input["messages"] !== undefined) span.setAttribute(GEN_AI.INPUT_MESSAGES, safeJson(input["messages"]));
    if (input["system"] !== undefined) span.setAttribute(GEN_AI.SYSTEM_INSTRUCTIONS, safeJson(input["system"]));
  }
}

/** Who acted and in which scope. */
export function recordIdentity(span: Span, identity: WorkloadIdentity | undefined, scope: ActiveScope, environment: string): void {
  if (!span.isRecording()) return;
  span.setAttribute(WARDEN.ENVIRONMENT, environment);
  if (identity) {
    span.setAttribute(WARDEN.WORKLOAD_ID, identity.id);
    const groups = ownValue(identity, "groups");
    if (groups?.length) span.setAttribute(WARDEN.WORKLOAD_GROUPS, [...groups]);
    const proof = authenticationOf(identity);
    span.setAttribute(WARDEN.IDENTITY_VERIFIED, proof !== undefined);
    span.setAttribute(WARDEN.IDENTITY_METHOD, proof?.method ?? "declared");
    if (proof) {
      span.setAttribute(WARDEN.IDENTITY_ISSUER, proof.issuer);
      span.setAttribute(WARDEN.DELEGATION_DEPTH, proof.delegation.depth);
      if (proof.delegation.depth > 0) {
        span.setAttribute(WARDEN.DELEGATION_ACTORS, proof.delegation.actors.map((actor) => actor.subject));
        if (proof.delegation.onBehalfOf !== undefined) span.setAttribute(WARDEN.DELEGATION_ON_BEHALF_OF, proof.delegation.onBehalfOf);
      }
    }
  }
  if (scope.task !== undefined) span.setAttribute(WARDEN.TASK, scope.task.name);
  if (scope.purpose !== undefined) span.setAttribute(WARDEN.PURPOSE, scope.purpose);
  if (scope.dataSensitivity.length > 0) span.setAttribute(WARDEN.DATA_SENSITIVITY, [...scope.dataSensitivity]);
}

/** The kind of credentials the call is signed with (never anything secret, not even the key id). */
export function recordCredentials(span: Span, credentials: CredentialFacts): void {
  if (!span.isRecording()) return;
  span.setAttribute(WARDEN.CREDENTIALS_KIND, credentials.kind);
  span.setAttribute(WARDEN.CREDENTIALS_BROKERED, credentials.brokered);
}

/** Which tools the request offers the model, and which were withheld from it. */
export function recordToolOffers(
  span: Span,
  offers: { offered: readonly string[]; withheld: readonly { name: string; decision: Decision }[] },
): void {
  if (!span.isRecording() || (offers.offered.length === 0 && offers.withheld.length === 0)) return;
  span.setAttribute(WARDEN.TOOLS_OFFERED, [...offers.offered]);
  if (offers.withheld.length === 0) return;
  span.setAttribute(WARDEN.TOOLS_WITHHELD, offers.withheld.map((w) => w.name));
  // Which policy withheld each tool, and why: one event per tool.
  for (const { name, decision } of offers.withheld) {
    span.addEvent("bedrock_warden.tool_withheld", {
      [GEN_AI.TOOL_NAME]: name,
      [WARDEN.TOOL_PHASE]: "offer",
      [WARDEN.DECISION]: decision.effect,
      [WARDEN.DECISION_POLICIES]: [...decision.policies],
      [WARDEN.DECISION_REASONS]: [...decision.reasons],
    });
  }
}

/** What was decided, by which policies, and why. */
export function recordDecision(span: Span, decision: Decision, decisionId: string): void {
  if (!span.isRecording()) return;
  span.setAttributes({
    [WARDEN.DECISION_ID]: decisionId,
    [WARDEN.ACTION]: decision.action,
    [WARDEN.RESOURCE]: decision.resource,
    [WARDEN.DECISION]: decision.effect,
    [WARDEN.DECISION_POLICIES]: [...decision.policies],
    [WARDEN.DECISION_REASONS]: [...decision.reasons],
    [WARDEN.POLICY_SET_VERSION]: decision.policySetVersion,
  });
  if (decision.errors.length > 0) span.setAttribute(WARDEN.DECISION_ERRORS, [...decision.errors]);
  if (decision.shadow) {
    span.setAttributes({
      [WARDEN.SHADOW_DECISION]: decision.shadow.effect,
      [WARDEN.SHADOW_POLICIES]: [...decision.shadow.policies],
      [WARDEN.SHADOW_REASONS]: [...decision.shadow.reasons],
    });
  }
}

/** How the call ended: ends the span with what the response showed. */
export function endCallSpan(span: Span, observation: CallObservation, error: unknown, captureContent: boolean): void {
  if (span.isRecording()) {
    const { usage, finishReasons, requestId, stream, outputText } = observation;
    if (usage?.inputTokens !== undefined) span.setAttribute(GEN_AI.USAGE_INPUT_TOKENS, usage.inputTokens);
    if (usage?.outputTokens !== undefined) span.setAttribute(GEN_AI.USAGE_OUTPUT_TOKENS, usage.outputTokens);
    if (finishReasons.length > 0) span.setAttribute(GEN_AI.RESPONSE_FINISH_REASONS, [...finishReasons]);
    if (requestId !== undefined) span.setAttribute(GEN_AI.AWS_REQUEST_ID, requestId);
    if (stream) {
      span.setAttribute(WARDEN.STREAM_EVENTS, stream.events);
      if (stream.outcome) span.setAttribute(WARDEN.STREAM_OUTCOME, stream.outcome);
      if (stream.firstChunkSeconds !== undefined) span.setAttribute(WARDEN.STREAM_TIME_TO_FIRST_CHUNK, stream.firstChunkSeconds);
    }
    if (captureContent && outputText !== undefined) {
      span.setAttribute(GEN_AI.OUTPUT_MESSAGES, safeJson([{ role: "assistant", parts: [{ type: "text", content: outputText }] }]));
    }
  }
  if (error !== undefined) {
    const type = errorType(error);
    span.setAttribute(GEN_AI.ERROR_TYPE, type);
    span.setStatus({ code: SpanStatusCode.ERROR, message: type });
  }
  span.end();
}

/** A low-cardinality name for an error: its stable code, else its class name. */
export function errorType(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" && code.startsWith("ERR_") ? code : error.name;
  }
  return "_OTHER";
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? `<${v.byteLength} bytes>` : v)) ?? "";
  } catch {
    return "<unserializable>";
  }
}
