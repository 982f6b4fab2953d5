/**
 * The decision record: one per governed call, allowed or denied, written when the call ends
 * (so that it carries the outcome, the AWS request id and the token usage). It proves which
 * identity acted, when, on what, and why it was allowed.
 * @module
 */
import type { Span } from "@opentelemetry/api";
import type { CredentialFacts } from "../credentials/credential-facts.js";
import { authenticationOf, type DelegationChain } from "../identity/authentication.js";
import type { ActiveScope } from "../identity/call-scope.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import type { Decision } from "../policy/decision.js";
import { errorType } from "../telemetry/call-span.js";
import { ownValue } from "../validation.js";

/**
 * One governed call's evidence. Never holds prompt, response or tool content.
 *
 * @example
 * ```ts
 * const governance = createGovernance({
 *   environment: "production",
 *   policies: policiesFromDirectory("./policies"),
 *   onDecision: (record: DecisionRecord) => auditLog.write(JSON.stringify(record) + "\n"),
 * });
 * ```
 */
export interface DecisionRecord {
  /** A unique id, also on the span (`bedrock_warden.decision.id`) and in Bedrock's invocation logs. */
  readonly id: string;
  /** When the decision was made (ISO 8601). */
  readonly time: string;
  /** The governed command, e.g. `"ConverseCommand"`. */
  readonly command: string;
  /** The workload that acted, or null when none was resolved (such calls are always denied). */
  readonly workload: { readonly id: string; readonly groups: readonly string[] } | null;
  /** How the workload was proven: by a verified token (with its issuer and expiry) or only declared in code. */
  readonly authentication?: { readonly verified: boolean; readonly method: string; readonly issuer?: string; readonly expiresAt?: string };
  /** The delegation chain (RFC 8693 `act`), when the workload acts for someone: actors from the first delegate to the workload. */
  readonly delegation?: { readonly depth: number; readonly actors: readonly string[]; readonly onBehalfOf?: string };
  /** The invocation path (runTask's task name). */
  readonly task?: string;
  /** The kind of AWS credentials the call was signed with, never their secrets. */
  readonly credentials?: { readonly kind: string; readonly brokered: boolean; readonly expiresAt?: string };
  readonly purpose?: string;
  readonly dataSensitivity: readonly string[];
  readonly environment: string;
  readonly region?: string;
  readonly action: string;
  readonly resource: string;
  readonly decision: "allow" | "deny";
  /** The determining policy ids. */
  readonly policies: readonly string[];
  readonly reasons: readonly string[];
  readonly errors: readonly string[];
  readonly policySetVersion: string;
  /**
   * Set when policies in shadow (`@shadow`, or `enforcement: "shadow"`) would have decided
   * otherwise: the would-be decision, recorded and not enforced.
   */
  readonly shadow?: { readonly decision: "allow" | "deny"; readonly policies: readonly string[]; readonly reasons: readonly string[]; readonly errors: readonly string[] };
  /**
   * How the call ended: denied before sending, completed, failed after being allowed, or a stream
   * abandoned by its reader. For a tool call the model asked for (`tool.phase` "call"), the decision
   * is the event: "allowed" or "denied".
   */
  readonly outcome: "denied" | "completed" | "failed" | "abandoned" | "allowed";
  /**
   * On a model call that offered tools: each offer decision (phase "offer") — the tools offered to
   * the model, and those withheld with the policies and reasons that withheld them.
   */
  readonly tools?: {
    readonly offered: readonly string[];
    readonly withheld: readonly { readonly name: string; readonly policies: readonly string[]; readonly reasons: readonly string[] }[];
  };
  /** Set on tool decisions: which tool, which call, at which phase. */
  readonly tool?: { readonly name: string; readonly toolUseId?: string; readonly phase: "call" | "execute" };
  /** The error type when the call failed after being allowed (e.g. `ThrottlingException`). */
  readonly error?: string;
  readonly traceId?: string;
  readonly spanId?: string;
  /** The AWS request id, when a response arrived. */
  readonly requestId?: string;
  readonly usage?: { readonly inputTokens?: number; readonly outputTokens?: number };
  /** Milliseconds from the start of the call to its end (for a stream: to the stream's end). */
  readonly durationMs: number;
}

/**
 * Receives each decision record. Must not throw (a throw is caught and reported as a process
 * warning, and never changes the call).
 *
 * @example
 * ```ts
 * const toStdout: DecisionListener = (record) => process.stdout.write(`${JSON.stringify(record)}\n`);
 * createGovernance({ environment: "production", policies, onDecision: toStdout });
 * ```
 */
export type DecisionListener = (record: DecisionRecord) => void;

/** What a record is made of: the one place a decision record is put together. */
export interface DecisionRecordParts {
  readonly id: string;
  readonly time: Date;
  readonly command: string;
  readonly identity: WorkloadIdentity | undefined;
  readonly scope: ActiveScope;
  readonly environment: string;
  readonly region?: string | undefined;
  /** The credentials the call was authorized with, once they were resolved. */
  readonly credentials?: CredentialFacts | undefined;
  /** The tools the call offered, and those withheld, each with its offer decision. */
  readonly toolOffers?: { readonly offered: readonly string[]; readonly withheld: readonly { readonly name: string; readonly decision: Decision }[] };
  readonly decision: Decision;
  readonly outcome: DecisionRecord["outcome"];
  /** The error the call or execution failed with (ignored for denials: the decision says why). */
  readonly error?: unknown;
  /** The span the record belongs to (its ids go into the record when it is sampled or recording). */
  readonly span?: Span;
  readonly requestId?: string | undefined;
  readonly usage?: DecisionRecord["usage"] | undefined;
  readonly tool?: DecisionRecord["tool"];
  readonly durationMs: number;
}

/** Puts a decision record together. */
export function decisionRecord(parts: DecisionRecordParts): DecisionRecord {
  const { decision, identity, scope, span, outcome } = parts;
  const proof = identity ? authenticationOf(identity) : undefined;
  const spanContext = span?.spanContext();
  const traced = spanContext !== undefined && (spanContext.traceFlags !== 0 || span!.isRecording());
  return {
    id: parts.id,
    time: parts.time.toISOString(),
    command: parts.command,
    workload: identity ? { id: identity.id, groups: ownValue(identity, "groups") ?? [] } : null,
    ...(identity && { authentication: authenticationRecord(identity) }),
    ...(proof && proof.delegation.depth > 0 && { delegation: delegationRecord(proof.delegation) }),
    ...(scope.task !== undefined && { task: scope.task.name }),
    ...(parts.credentials && { credentials: credentialsRecord(parts.credentials) }),
    ...(scope.purpose !== undefined && { purpose: scope.purpose }),
    dataSensitivity: scope.dataSensitivity,
    environment: parts.environment,
    ...(parts.region !== undefined && parts.region !== "" && { region: parts.region }),
    action: decision.action,
    resource: decision.resource,
    decision: decision.effect,
    policies: decision.policies,
    reasons: decision.reasons,
    errors: decision.errors,
    policySetVersion: decision.policySetVersion,
    ...(decision.shadow && {
      shadow: { decision: decision.shadow.effect, policies: decision.shadow.policies, reasons: decision.shadow.reasons, errors: decision.shadow.errors },
    }),
    outcome,
    ...(parts.toolOffers && {
      tools: {
        offered: parts.toolOffers.offered,
        withheld: parts.toolOffers.withheld.map(({ name, decision: offer }) => ({ name, policies: offer.policies, reasons: offer.reasons })),
      },
    }),
    ...(parts.tool && { tool: parts.tool }),
    ...(parts.error !== undefined && outcome !== "denied" && { error: errorType(parts.error) }),
    ...(traced && { traceId: spanContext.traceId, spanId: spanContext.spanId }),
    ...(parts.requestId !== undefined && { requestId: parts.requestId }),
    ...(parts.usage && { usage: parts.usage }),
    durationMs: Math.round(parts.durationMs * 1000) / 1000,
  };
}

function authenticationRecord(identity: WorkloadIdentity): NonNullable<DecisionRecord["authentication"]> {
  const proof = authenticationOf(identity);
  if (!proof) return DECLARED;
  return { verified: true, method: proof.method, issuer: proof.issuer, expiresAt: proof.expiresAt.toISOString() };
}

const DECLARED = Object.freeze({ verified: false, method: "declared" });

function delegationRecord(chain: DelegationChain): NonNullable<DecisionRecord["delegation"]> {
  return {
    depth: chain.depth,
    actors: chain.actors.map((actor) => actor.subject),
    ...(chain.onBehalfOf !== undefined && { onBehalfOf: chain.onBehalfOf }),
  };
}

function credentialsRecord(credentials: CredentialFacts): NonNullable<DecisionRecord["credentials"]> {
  return {
    kind: credentials.kind,
    brokered: credentials.brokered,
    ...(credentials.expiresAt && { expiresAt: credentials.expiresAt.toISOString() }),
  };
}
