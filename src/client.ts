/**
 * The governed client: `GovernedBedrockRuntimeClient`, a drop-in `BedrockRuntime`, and
 * `withGovernance()`, for a client someone else built.
 * @module
 */
import { BedrockRuntime, type BedrockRuntimeClient, type BedrockRuntimeClientConfig } from "@aws-sdk/client-bedrock-runtime";
import { ConfigurationError } from "./errors.js";
import type { Governance } from "./governance.js";
import type { WorkloadIdentity } from "./identity/workload-identity.js";
import { getGovernancePlugin } from "./middleware/plugin.js";

/**
 * The SDK's client configuration plus governance.
 *
 * @example
 * ```ts
 * const config: GovernedBedrockRuntimeClientConfig = { region: "us-east-1", governance, identity: invoiceAgent };
 * ```
 */
export interface GovernedBedrockRuntimeClientConfig extends BedrockRuntimeClientConfig {
  /** From {@link createGovernance}. */
  readonly governance: Governance;
  /** The identity of calls made outside `runAs(...)`. Without one, such calls are denied. */
  readonly identity?: WorkloadIdentity;
}

/**
 * A `BedrockRuntime` client whose every command is governed: the workload identity is resolved,
 * the call is authorized by the local Cedar policies (a denial throws `AccessDeniedError` before
 * anything is sent), attributed in Bedrock's invocation logs, and traced. It is still a
 * `BedrockRuntimeClient`: `send(new XCommand(...))` and `converse(...)` work as before.
 *
 * @example
 * ```ts
 * import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
 * import { createGovernance, GovernedBedrockRuntimeClient, runAs } from "bedrock-warden";
 *
 * const governance = createGovernance({ environment: "production", policies: policiesFromDirectory("./policies") });
 * const bedrock = new GovernedBedrockRuntimeClient({ region: "us-east-1", governance });
 * const reply = await runAs(invoiceAgent, () =>
 *   bedrock.send(new ConverseCommand({ modelId, messages: [{ role: "user", content: [{ text: "Hi" }] }] })),
 * );
 * ```
 */
export class GovernedBedrockRuntimeClient extends BedrockRuntime {
  /** The governance this client enforces. */
  readonly governance: Governance;

  constructor(config: GovernedBedrockRuntimeClientConfig) {
    if (typeof config !== "object" || config === null) {
      throw new ConfigurationError("GovernedBedrockRuntimeClient needs a configuration object with a `governance` from createGovernance()");
    }
    const { governance, identity, ...sdkConfig } = config;
    assertGovernance(governance, "GovernedBedrockRuntimeClient: config.governance");
    assertNoSharedContext(sdkConfig.cacheMiddleware);
    super(sdkConfig);
    this.governance = governance;
    this.middlewareStack.use(getGovernancePlugin(this.config, { governance, ...(identity && { identity }) }, typeof sdkConfig.region === "string"));
  }
}

/**
 * Governs a Bedrock Runtime client that someone else built (an agent framework's, say), with the
 * same middleware as {@link GovernedBedrockRuntimeClient}. Returns the same client. Calling it
 * again with the same governance (and no identity, or the same one) changes nothing: a call is
 * never evaluated twice. A client whose middleware was removed is governed again.
 *
 * @example
 * ```ts
 * import { ChatBedrockConverse } from "@langchain/aws";
 * const client = withGovernance(new BedrockRuntimeClient({ region: "us-east-1" }), governance, { identity: researchAgent });
 * const model = new ChatBedrockConverse({ model: modelId, client });
 * ```
 * @throws {@link ConfigurationError} when `client` is not a Bedrock Runtime client, uses
 * `cacheMiddleware`, or is already governed by another governance or with another default identity.
 */
export function withGovernance<C extends BedrockRuntimeClient>(client: C, governance: Governance, options: { identity?: WorkloadIdentity } = {}): C {
  const candidate = client as Partial<BedrockRuntimeClient> | null;
  if (typeof candidate?.middlewareStack?.use !== "function" || typeof candidate.config !== "object") {
    throw new ConfigurationError("withGovernance: the first argument must be a Bedrock Runtime client (an object with middlewareStack and config)");
  }
  assertGovernance(governance, "withGovernance: governance");
  assertNoSharedContext((candidate.config as { cacheMiddleware?: unknown }).cacheMiddleware);
  client.middlewareStack.use(getGovernancePlugin(client.config, { governance, ...(options.identity && { identity: options.identity }) }));
  return client;
}

function assertGovernance(governance: unknown, where: string): asserts governance is Governance {
  const candidate = governance as Partial<Governance> | undefined;
  if (typeof candidate !== "object" || candidate === null || typeof candidate.record !== "function" || !candidate.engine) {
    throw new ConfigurationError(`${where} must be the result of createGovernance({ environment, policies })`);
  }
}

function assertNoSharedContext(cacheMiddleware: unknown): void {
  if (cacheMiddleware) {
    // With a cached handler, concurrent calls share one execution context, and so would share their identity and decision.
    throw new ConfigurationError("cacheMiddleware: true cannot be governed (concurrent calls would share one context): remove the option");
  }
}
