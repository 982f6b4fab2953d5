/**
 * bedrock-warden: workload identity, local Cedar authorization and OpenTelemetry evidence for
 * every Amazon Bedrock Runtime call.
 *
 * @example
 * ```ts
 * import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
 * import { createGovernance, GovernedBedrockRuntimeClient, policiesFromDirectory, runAs } from "bedrock-warden";
 *
 * const governance = createGovernance({ environment: "production", policies: policiesFromDirectory("./policies") });
 * const bedrock = new GovernedBedrockRuntimeClient({ region: "us-east-1", governance });
 * await runAs({ id: "spiffe://acme.example/agents/invoice", groups: ["billing"] }, () =>
 *   bedrock.send(new ConverseCommand({ modelId, messages })),
 * );
 * ```
 * @packageDocumentation
 */
export { GovernedBedrockRuntimeClient, withGovernance, type GovernedBedrockRuntimeClientConfig } from "./client.js";
export { createGovernance, type Governance, type GovernanceOptions } from "./governance.js";
export { runAs, withCallScope, currentScope, type CallScope, type ActiveScope } from "./identity/call-scope.js";
export { workloadIdentity, type WorkloadIdentity } from "./identity/workload-identity.js";
export { runTask, DEFAULT_PATH } from "./identity/run-task.js";
export type { TaskScope } from "./identity/call-scope.js";
export {
  createTokenVerifier,
  parseSpiffeId,
  DEFAULT_TOKEN_ALGORITHMS,
  MAX_TOKEN_LENGTH,
  type TokenVerifier,
  type TokenVerifierOptions,
} from "./identity/token-verifier.js";
export type { JwksSource } from "./identity/jwks.js";
export { attestIdentity, authenticationOf, type Authentication, type DelegationChain } from "./identity/authentication.js";
export { tokenFileIdentity, githubActionsIdentity, tokenIdentity, type IdentityProvider } from "./identity/identity-providers.js";
export {
  createCredentialBroker,
  type CredentialBroker,
  type CredentialBrokerOptions,
} from "./credentials/credential-broker.js";
export type { PathScope } from "./credentials/session-policy.js";
export type { CredentialKind, CredentialFacts } from "./credentials/credential-facts.js";
export { policiesFromText, policiesFromFile, policiesFromDirectory, type PolicyDocument } from "./policy/sources.js";
export { shippedSchema } from "./policy/schema.js";
export { modelResource, type ModelResource, type ModelKind } from "./policy/model-resource.js";
export type { Decision, ShadowDecision } from "./policy/decision.js";
export type { LoadedPolicy, CedarEngine, PolicyEvaluator } from "./policy/cedar-engine.js";
export type { DecisionRecord, DecisionListener } from "./audit/decision-record.js";
export { callbackSink, type DecisionSink, type CallbackSinkOptions } from "./audit/sink.js";
export { createJsonlSink, type JsonlSink, type JsonlSinkOptions } from "./audit/jsonl-sink.js";
export { otelLogsSink, DECISION_EVENT_NAME, type OtelLogsSinkOptions } from "./audit/otel-logs-sink.js";
export {
  verifyDecisionLog,
  type LogVerification,
  type LogProblem,
  type LogProblemKind,
  type VerifyLogOptions,
} from "./audit/verify-log.js";
export { canonicalJson, chainKeyOf, chainRecord, logChainKey, LOG_NAME, genesisState, lineDigest, lineHash, GENESIS_HASH, MIN_CHAIN_KEY_BYTES, type ChainState, type ChainedLine } from "./audit/hash-chain.js";
export { getGovernancePlugin, type GovernancePluginOptions } from "./middleware/plugin.js";
export { ATTRIBUTION_KEYS, REQUEST_METADATA_LIMITS, sanitizeMetadataValue } from "./middleware/attribution.js";
export { GEN_AI, WARDEN, PROVIDER_AWS_BEDROCK, TRACER_NAME } from "./telemetry/semconv.js";
export { METRICS, MAX_IDENTITIES_IN_METRICS } from "./telemetry/metrics.js";
export { type ToolDefinition } from "./tools/tool-definitions.js";
export { toolDecisions, deniedToolResults, type ToolCallDecision } from "./tools/tool-call-decisions.js";
export {
  governTool,
  LINK_ATTRIBUTE,
  LINK_REQUESTED_BY,
  MAX_TOOL_CONTENT_CHARS,
  type GovernedTool,
  type ToolExecution,
  type GovernToolOptions,
} from "./tools/govern-tool.js";
export {
  WardenError,
  ToolCallDeniedError,
  AccessDeniedError,
  NoIdentityError,
  IdentityExpiredError,
  CredentialsUnavailableError,
  SigningMismatchError,
  TokenVerificationError,
  IdentityProviderError,
  type TokenRefusalReason,
  UnknownCommandError,
  PolicyEvaluationError,
  ConfigurationError,
  PolicyLoadError,
  formatProblem,
  type PolicyProblem,
  UsageStoreError,
  UsageUnavailableError,
  DecisionSinkError,
  EvidenceUnavailableError,
  WorkloadKilledError,
  type KillState,
  type UsageStoreOperation,
} from "./errors.js";
export { memoryUsageStore, type Usage, type UsageStore, type MemoryUsageStoreOptions } from "./budgets/usage-store.js";
export { redisUsageStore, redisUsageKeys, type RedisUsageStore, type RedisUsageStoreOptions, type RedisScriptClient } from "./budgets/redis-store.js";
export type { UsageOptions } from "./budgets/usage-context.js";
export { watchPolicies, type PolicyWatcher, type WatchPoliciesOptions, type PolicyReloadEvent } from "./policy/policy-watcher.js";
export {
  syncFromVerifiedPermissions,
  PolicySyncError,
  type VerifiedPermissionsSync,
  type VerifiedPermissionsSyncOptions,
  type VerifiedPermissionsSyncResult,
} from "./policy/verified-permissions.js";
