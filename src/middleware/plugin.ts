/**
 * `getGovernancePlugin()`: adds the governance middleware to a client's stack, in the SDK's own
 * plugin style. Adding it twice to one stack is a no-op.
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import type { MiddlewareStack, Pluggable } from "@smithy/types";
import { CallCredentialResolver, type SigningConfig } from "../credentials/call-credentials.js";
import { ConfigurationError } from "../errors.js";
import type { Governance } from "../governance.js";
import type { WorkloadIdentity } from "../identity/workload-identity.js";
import { authenticationOf } from "../identity/authentication.js";
import { checkedIdentity } from "../identity/workload-identity.js";
import { attemptMiddleware, attemptMiddlewareOptions } from "./attempt.js";
import { authorizationMiddleware, authorizationMiddlewareOptions } from "./authorization.js";

/**
 * Options of {@link getGovernancePlugin}.
 *
 * @example
 * ```ts
 * const options: GovernancePluginOptions = { governance, identity: { id: "spiffe://acme.example/agents/invoice" } };
 * client.middlewareStack.use(getGovernancePlugin(client.config, options));
 * ```
 */
export interface GovernancePluginOptions {
  readonly governance: Governance;
  /** The default identity for calls made outside `runAs`. */
  readonly identity?: WorkloadIdentity;
}

const governedStacks = new WeakMap<object, { governance: Governance; identity: WorkloadIdentity | undefined }>();

/**
 * The governance plugin for a Bedrock Runtime client's middleware stack.
 *
 * @example
 * ```ts
 * const client = new BedrockRuntimeClient({ region: "us-east-1" });
 * client.middlewareStack.use(getGovernancePlugin(client.config, { governance, identity: invoiceAgent }));
 * ```
 * @throws {@link ConfigurationError} when the stack is already governed by another governance, or
 * with another default identity.
 */
export function getGovernancePlugin(
  config: { region: unknown; cacheMiddleware?: unknown } & SigningConfig,
  options: GovernancePluginOptions,
  /**
   * @internal The client was built with a region string: the provider the SDK made of it answers the
   * same on every call, so its first answer is kept while the config still holds that provider.
   */
  staticRegion = false,
): Pluggable<any, any> {
  const identity = options.identity === undefined ? undefined : checkedIdentity(options.identity);
  const builtProvider = config.region;
  let kept: string | undefined;
  const region = (): string | Promise<string> => {
    if (!staticRegion || config.region !== builtProvider) return currentRegion(config.region);
    if (kept !== undefined) return kept;
    const resolved = currentRegion(config.region);
    if (typeof resolved === "string") return resolved;
    return resolved.then((value) => {
      if (value !== "") kept = value;
      return value;
    });
  };
  let credentials: CallCredentialResolver | undefined;
  return {
    applyToStack(stack: MiddlewareStack<any, any>) {
      const attached = governedStacks.get(stack);
      // The stack may have lost either of our middleware since (removeByTag, remove): then it is governed again.
      const present = new Set(stack.identify().map((entry) => entry.slice(0, entry.indexOf(" "))));
      if (attached !== undefined && present.has(authorizationMiddlewareOptions.name) && present.has(attemptMiddlewareOptions.name)) {
        if (attached.governance !== options.governance) {
          throw new ConfigurationError("This client is already governed by another governance: attach one governance per client");
        }
        // No identity given adds nothing; another one would be ignored, so it is refused.
        if (identity !== undefined && !sameIdentity(attached.identity, identity)) {
          throw new ConfigurationError(
            "This client is already governed with another default identity: its calls would keep the first; use runAs(identity, …) per call, or another client",
          );
        }
        return;
      }
      // Whatever is left of an earlier attachment goes, so that the two are added as a pair.
      stack.remove(authorizationMiddlewareOptions.name);
      stack.remove(attemptMiddlewareOptions.name);
      const sharesContext = () => Boolean(config.cacheMiddleware);
      // With a credential broker, this replaces the client's credentials provider: built once per client.
      credentials ??= new CallCredentialResolver(config, options.governance.credentialBroker);
      stack.add(
        authorizationMiddleware({ governance: options.governance, ...(identity && { identity }), region, sharesContext, credentials }),
        authorizationMiddlewareOptions,
      );
      stack.addRelativeTo(attemptMiddleware(options.governance), attemptMiddlewareOptions);
      governedStacks.set(stack, { governance: options.governance, identity });
    },
  };
}

/**
 * The client config's region for this call, as the SDK normalizes it (a string or an async
 * provider), read again on every call: the SDK reads it per call too (endpoint and signing), and a
 * provider may answer otherwise from one call to the next (a failover), or the config be replaced.
 */
function currentRegion(region: unknown): string | Promise<string> {
  if (typeof region !== "function") return typeof region === "string" ? region : "";
  return Promise.resolve((region as () => unknown)()).then((value) => (typeof value === "string" ? value : ""));
}

/** The same identity: the same content (id, groups, owner, environment, attributes) and the same proof, if any. */
function sameIdentity(a: WorkloadIdentity | undefined, b: WorkloadIdentity): boolean {
  return a !== undefined && authenticationOf(a) === authenticationOf(b) && isDeepStrictEqual(a, b);
}
