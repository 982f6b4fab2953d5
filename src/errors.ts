/**
 * Typed errors with a stable `code`, in the style of `jose`: branch on `code` (or `instanceof`),
 * never on the message.
 *
 * Every denial is an {@link AccessDeniedError} (or a subclass naming a more precise cause), so one
 * `catch` handles them all; configuration problems found at start-up are {@link ConfigurationError}s.
 *
 * @example
 * ```ts
 * import { AccessDeniedError } from "bedrock-warden";
 * try {
 *   await bedrock.send(new ConverseCommand(input));
 * } catch (error) {
 *   if (error instanceof AccessDeniedError) console.log(error.code, error.decision.reasons);
 *   else throw error;
 * }
 * ```
 * @module
 */
import type { Decision } from "./policy/decision.js";

/**
 * The base class of every error bedrock-warden throws.
 *
 * @example
 * ```ts
 * if (error instanceof WardenError) console.error(`[${error.code}] ${error.message}`);
 * ```
 */
export class WardenError extends Error {
  /** A stable, machine-readable code, e.g. `"ERR_ACCESS_DENIED"`. */
  readonly code: string = "ERR_WARDEN";
  /** The error's own class name, so logs stay readable after bundling. */
  override readonly name: string = "WardenError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A governed call was denied: no request was serialized, signed or sent.
 * `decision` says who asked for what, which policies decided and why.
 *
 * @example
 * ```ts
 * try { await bedrock.converse(input); }
 * catch (e) {
 *   if (e instanceof AccessDeniedError) {
 *     console.log(e.decision.principal, e.decision.action, e.decision.resource, e.decision.policies);
 *   }
 * }
 * ```
 */
export class AccessDeniedError extends WardenError {
  override readonly code: string = "ERR_ACCESS_DENIED";
  override readonly name: string = "AccessDeniedError";
  /** The decision that denied the call. */
  readonly decision: Decision;

  constructor(decision: Decision, message?: string) {
    super(message ?? describeDenial(decision));
    this.decision = decision;
  }
}

/**
 * Denied because no workload identity was resolved: the call ran outside `runAs(...)` and the
 * client has no default identity.
 *
 * @example
 * ```ts
 * if (e instanceof AccessDeniedError && e.code === "ERR_NO_IDENTITY") {
 *   // wrap the call in runAs(identity, ...) or give the client an `identity`
 * }
 * ```
 */
export class NoIdentityError extends AccessDeniedError {
  override readonly code = "ERR_NO_IDENTITY";
  override readonly name = "NoIdentityError";
}

/**
 * Denied because the token that proved the workload's identity has expired. Verify a fresh token
 * (an identity provider passed to `runTask` does so at the start of every task).
 *
 * @example
 * ```ts
 * if (e instanceof IdentityExpiredError) identity = await verifier.verify(await readFreshToken());
 * ```
 */
export class IdentityExpiredError extends AccessDeniedError {
  override readonly code = "ERR_IDENTITY_EXPIRED";
  override readonly name = "IdentityExpiredError";
}

/**
 * Denied because the call has no usable AWS credentials: the client has none, they expired, the
 * credential broker could not issue any (an STS error or throttling that outlasted the retries, a
 * session policy that cannot be derived), or the client would sign with a Bedrock API key while a
 * broker is configured. `decision.reasons` names the cause; nothing was sent.
 *
 * @example
 * ```ts
 * if (e instanceof CredentialsUnavailableError) console.error(e.decision.reasons[0]);
 * ```
 */
export class CredentialsUnavailableError extends AccessDeniedError {
  override readonly code = "ERR_CREDENTIALS_UNAVAILABLE";
  override readonly name = "CredentialsUnavailableError";
}

/**
 * An allowed call was about to be sent otherwise than it was decided — signed with other
 * credentials than those it was authorized with (or not signed at all), for another region, to
 * another model — or without having been decided (the authorization middleware was removed): it
 * was stopped before anything left the process. Something changed the client's credentials, signer,
 * region or middleware underneath the governance.
 *
 * @example
 * ```ts
 * if (e instanceof SigningMismatchError) alertSecurityTeam(e.message);
 * ```
 */
export class SigningMismatchError extends WardenError {
  override readonly code = "ERR_SIGNING_MISMATCH";
  override readonly name = "SigningMismatchError";
}

/**
 * Denied because the command is not one bedrock-warden knows how to govern (the SDK added a command
 * after this version was released). Upgrade bedrock-warden to govern it.
 *
 * @example
 * ```ts
 * if (e instanceof UnknownCommandError) console.error(e.decision.action); // the command's name
 * ```
 */
export class UnknownCommandError extends AccessDeniedError {
  override readonly code = "ERR_UNKNOWN_COMMAND";
  override readonly name = "UnknownCommandError";
}

/**
 * Denied because the policy engine could not reach a clean decision: a policy errored during
 * evaluation, the request could not be evaluated, or the engine itself failed. Fail closed.
 *
 * @example
 * ```ts
 * if (e instanceof PolicyEvaluationError) console.error(e.decision.errors);
 * ```
 */
export class PolicyEvaluationError extends AccessDeniedError {
  override readonly code = "ERR_POLICY_EVALUATION";
  override readonly name = "PolicyEvaluationError";
}

/**
 * A tool call the model asked for was denied (with `toolEnforcement: "throw"`, the default). The
 * model call itself succeeded: `output` is its output, and `toolDecisions(output)` lists every tool
 * call with its decision. To let the conversation go on instead, use `toolEnforcement: "result"`.
 *
 * @example
 * ```ts
 * try { await runAs(agent, () => bedrock.converse(input)); }
 * catch (e) {
 *   if (e instanceof ToolCallDeniedError) console.log(e.toolName, e.toolUseId, e.decision.reasons);
 * }
 * ```
 */
export class ToolCallDeniedError extends AccessDeniedError {
  override readonly code = "ERR_TOOL_CALL_DENIED";
  override readonly name = "ToolCallDeniedError";
  /** The name of the tool the model asked for. */
  readonly toolName: string;
  /** The model's id for the call. */
  readonly toolUseId: string;
  /** The model call's output (for a stream: undefined; the stream was closed at the denied call). */
  readonly output: unknown;

  constructor(decision: Decision, toolName: string, toolUseId: string, output: unknown) {
    // The name and id are the model's words (a prompt injection writes them): quoted and escaped, so
    // that no control character or line break of theirs reaches a log as if it were the library's.
    super(decision, `the model asked for ${JSON.stringify(toolName)} (${JSON.stringify(toolUseId)}), which is denied: ${decision.reasons.join("; ")}`);
    this.toolName = toolName;
    this.toolUseId = toolUseId;
    this.output = output;
  }
}

/**
 * Something given at start-up is wrong: an option, a policy file, the schema, an identity.
 * The message names what and where, and what to change.
 *
 * @example
 * ```ts
 * try { createGovernance(options); }
 * catch (e) { if (e instanceof ConfigurationError) { console.error(e.message); process.exit(1); } }
 * ```
 */
export class ConfigurationError extends WardenError {
  override readonly code: string = "ERR_INVALID_CONFIGURATION";
  override readonly name: string = "ConfigurationError";
}

/**
 * A policy file (or text) does not parse, or does not validate against the schema.
 * `problems` lists each one with its source, line and column.
 *
 * @example
 * ```ts
 * if (e instanceof PolicyLoadError) for (const p of e.problems) console.error(`${p.source}:${p.line}:${p.column} ${p.message}`);
 * ```
 */
export class PolicyLoadError extends ConfigurationError {
  override readonly code = "ERR_POLICY_INVALID";
  override readonly name = "PolicyLoadError";
  /** Every problem found, each with its location. */
  readonly problems: readonly PolicyProblem[];

  constructor(problems: readonly PolicyProblem[]) {
    super(
      `${problems.length} problem(s) in the policies:\n` +
        problems.map((p) => `  ${formatProblem(p)}`).join("\n"),
    );
    this.problems = problems;
  }
}

/**
 * One problem found in a policy source, with its location.
 *
 * @example
 * ```ts
 * const problem: PolicyProblem = { source: "policies/billing.cedar", line: 3, column: 5, message: "attribute `enviroment` not found" };
 * ```
 */
export interface PolicyProblem {
  /** The file path or the name given to a text source. */
  readonly source: string;
  /** 1-based line, when known. */
  readonly line?: number;
  /** 1-based column, when known. */
  readonly column?: number;
  /** The parser's or validator's message, with its help when it has one. */
  readonly message: string;
}

/**
 * Formats a problem as `source:line:column: message`, the form editors and CI annotate.
 *
 * @example
 * ```ts
 * formatProblem({ source: "billing.cedar", line: 3, column: 5, message: "unknown attribute" }); // "billing.cedar:3:5: unknown attribute"
 * ```
 */
export function formatProblem(problem: PolicyProblem): string {
  const where = problem.line === undefined ? problem.source : `${problem.source}:${problem.line}:${problem.column ?? 1}`;
  return `${where}: ${problem.message}`;
}

function describeDenial(decision: Decision): string {
  const why = decision.reasons.length > 0 ? decision.reasons.join("; ") : "denied";
  return `${decision.principal} may not ${decision.action} on ${decision.resource}: ${why}`;
}

/**
 * Why a token was refused, one stable value per cause: branch on it, never on the message.
 *
 * @example
 * ```ts
 * const retryable: TokenRefusalReason[] = ["keys-unavailable"];
 * ```
 */
export type TokenRefusalReason =
  | "expired"
  | "not-yet-valid"
  | "bad-signature"
  | "algorithm-not-allowed"
  | "wrong-issuer"
  | "wrong-audience"
  | "missing-claim"
  | "malformed"
  | "delegation-not-accepted"
  | "delegation-too-deep"
  | "invalid-spiffe-id"
  | "untrusted-domain"
  | "lifetime-too-long"
  | "keys-unavailable";

/**
 * A token (OIDC JWT, SPIFFE JWT-SVID) was refused: no identity was established from it.
 * `reason` says why in one stable word; the message names the cause and what to change, and never
 * contains the token or any part of it. The underlying `jose` error, when there is one, is the
 * `cause`.
 *
 * @example
 * ```ts
 * try { await verifier.verify(token); }
 * catch (e) {
 *   if (e instanceof TokenVerificationError && e.reason === "expired") token = await refresh();
 *   else throw e;
 * }
 * ```
 */
export class TokenVerificationError extends WardenError {
  override readonly code = "ERR_TOKEN_INVALID";
  override readonly name = "TokenVerificationError";
  /** Why the token was refused. */
  readonly reason: TokenRefusalReason;

  constructor(reason: TokenRefusalReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

/**
 * An identity provider could not obtain a token to verify: the token file cannot be read, the
 * GitHub Actions token endpoint is not configured or refused the request, a custom token source
 * failed. (A token that was obtained but is not valid is a {@link TokenVerificationError}.)
 *
 * @example
 * ```ts
 * try { await provider.identity(); }
 * catch (e) { if (e instanceof IdentityProviderError) console.error(`[${e.provider}] ${e.message}`); }
 * ```
 */
export class IdentityProviderError extends WardenError {
  override readonly code = "ERR_IDENTITY_PROVIDER";
  override readonly name = "IdentityProviderError";
  /** The name of the provider that failed, e.g. `"github-actions"`. */
  readonly provider: string;

  constructor(provider: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.provider = provider;
  }
}

/** What a usage store was doing when it failed. */
export type UsageStoreOperation = "connect" | "admit" | "read" | "addTokens" | "kill" | "revive";

/**
 * A usage store (Redis) could not be reached or did not answer in time: the call's usage could
 * not be counted or read, nor its kill switch checked. The message names the store, the
 * operation and the cause (`connect ECONNREFUSED 127.0.0.1:6379`, `timed out after 500 ms`, ...),
 * never the credentials of its URL. The underlying client error is the `cause`.
 *
 * What a governed call does then is `usage.onStoreError`: `"deny"` (the default: fail closed, a
 * {@link UsageUnavailableError}) or `"allow-without-usage"` (decided without `context.usage`).
 *
 * @example
 * ```ts
 * try { await store.kill("spiffe://acme.example/agents/invoice", "runaway loop"); }
 * catch (e) { if (e instanceof UsageStoreError) console.error(`[${e.store}/${e.operation}] ${e.message}`); }
 * ```
 */
export class UsageStoreError extends WardenError {
  override readonly code = "ERR_USAGE_STORE_UNAVAILABLE";
  override readonly name = "UsageStoreError";
  /** The store's name, e.g. `"redis"`. */
  readonly store: string;
  /** What it was doing. */
  readonly operation: UsageStoreOperation;
  /**
   * The identity's kill switch as this process last read it, when it was on: a workload seen
   * killed stays denied while the store cannot say it was revived, whatever `onStoreError` says.
   */
  readonly lastKnownKill: KillState | undefined;

  constructor(
    store: string,
    operation: UsageStoreOperation,
    message: string,
    options?: { cause?: unknown; lastKnownKill?: KillState | undefined },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.store = store;
    this.operation = operation;
    this.lastKnownKill = options?.lastKnownKill;
  }
}

/**
 * Why and when an identity's kill switch was turned on.
 *
 * @example
 * ```ts
 * const state: KillState = { reason: "runaway tool loop (INC-4711)", at: "2026-05-01T09:30:00.000Z" };
 * ```
 */
export interface KillState {
  /** Why, as the operator said. */
  readonly reason: string;
  /** When, as an ISO 8601 timestamp (empty when the switch was set by hand without one). */
  readonly at: string;
}

/**
 * Denied because the workload's kill switch is on (`store.kill(id, reason)`): it is stopped
 * before any policy is evaluated, whatever the policies say, until `store.revive(id)`. With a
 * Redis usage store the switch holds for every process of the fleet at their next call.
 *
 * @example
 * ```ts
 * try { await runAs(agent, () => bedrock.converse(input)); }
 * catch (e) {
 *   if (e instanceof WorkloadKilledError) console.error(`${e.identityId} is stopped since ${e.killedAt}: ${e.killReason}`);
 * }
 * ```
 */
export class WorkloadKilledError extends AccessDeniedError {
  override readonly code = "ERR_WORKLOAD_KILLED";
  override readonly name = "WorkloadKilledError";
  /** The workload identity's id. */
  readonly identityId: string;
  /** Why its kill switch was turned on. */
  readonly killReason: string;
  /** When (ISO 8601; empty when unknown). */
  readonly killedAt: string;

  constructor(decision: Decision, identityId: string, killed: KillState) {
    super(decision);
    this.identityId = identityId;
    this.killReason = killed.reason;
    this.killedAt = killed.at;
  }
}

/**
 * Denied because the usage store could not count the call (Redis down or too slow) and
 * `usage.onStoreError` is `"deny"` (the default): without usage, budgets and rate limits cannot be
 * enforced, nor the kill switch read, so the call fails closed. `decision.reasons` names the
 * cause; the store's {@link UsageStoreError} is the `cause`.
 *
 * @example
 * ```ts
 * if (e instanceof UsageUnavailableError) metrics.increment("bedrock.denied.usage_store_down");
 * ```
 */
export class UsageUnavailableError extends AccessDeniedError {
  override readonly code = "ERR_USAGE_UNAVAILABLE";
  override readonly name = "UsageUnavailableError";

  constructor(decision: Decision, cause: UsageStoreError) {
    super(decision);
    this.cause = cause;
  }
}

/**
 * A sink could not deliver records. `sink` names it; `cause` is the underlying error (e.g. the
 * `ENOSPC` from the file system), so `(error.cause as NodeJS.ErrnoException).code` tells why.
 *
 * @example
 * ```ts
 * const sink = createJsonlSink({ path: "/var/log/warden/decisions.jsonl", onError: (e) => console.error(e.code, e.sink, e.message) });
 * if (sink.failure instanceof DecisionSinkError) alert(sink.failure.message);
 * ```
 */
export class DecisionSinkError extends WardenError {
  override readonly code: string = "ERR_DECISION_SINK";
  override readonly name: string = "DecisionSinkError";
  /** The name of the sink that failed. */
  readonly sink: string;

  constructor(sink: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.sink = sink;
  }
}

/**
 * Denied because a decision sink is failing (the disk is full, the log file cannot be written, a
 * listener throws) and the governance is set to fail closed (`onSinkFailure: "deny"`, the default):
 * a call whose evidence cannot be kept is not made. `decision.reasons` names the sink and its
 * failure; calls go through again once it recovers.
 *
 * @example
 * ```ts
 * if (e instanceof EvidenceUnavailableError) pageOnCall(e.decision.reasons[0]);
 * ```
 */
export class EvidenceUnavailableError extends AccessDeniedError {
  override readonly code = "ERR_EVIDENCE_UNAVAILABLE";
  override readonly name = "EvidenceUnavailableError";
}
