/**
 * The credentials each governed call is signed with, known before it is decided: the client's own
 * (classified: long-term key, temporary, Bedrock API key) or, with a credential broker, credentials
 * issued for the call's own identity and invocation path. The SDK's signer reads credentials from
 * the client's provider, never from the call: the broker's are handed to it through an
 * AsyncLocalStorage that only the call's own middleware chain can see.
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { AwsCredentialIdentity } from "@smithy/types";
import { ConfigurationError } from "../errors.js";
import { ISSUE, PLAN, taskEnded, type BrokerRequest, type CredentialBroker } from "./credential-broker.js";
import { BEARER_CREDENTIALS, classifyCredentials, type CredentialFacts } from "./credential-facts.js";

/** The parts of a Bedrock Runtime client's resolved configuration that choose how a call is signed. */
export interface SigningConfig {
  credentials?: unknown;
  authSchemePreference?: unknown;
}

/**
 * A call's credentials as far as they are known before it is decided: what policies see, and
 * (brokered) how to obtain the credentials once the call is allowed. Nothing is issued for a call
 * that is denied.
 */
export interface CredentialPlan {
  readonly facts: CredentialFacts;
  /** Set with a broker: issues (or takes from the cache) the credentials the signer must use. */
  readonly obtain?: () => Promise<AwsCredentialIdentity>;
}

type CredentialProvider = ((options?: unknown) => Promise<AwsCredentialIdentity>) & { memoized?: boolean };

const signingSlot = new AsyncLocalStorage<AwsCredentialIdentity>();

/** Runs `fn` (the rest of the call's middleware chain) with the call's brokered credentials. */
export function signWith<T>(credentials: AwsCredentialIdentity | undefined, fn: () => T): T {
  return credentials === undefined ? fn() : signingSlot.run(credentials, fn);
}

/** Reads a client's signing configuration and works out each call's credentials. */
export class CallCredentialResolver {
  readonly #config: SigningConfig;
  readonly #broker: CredentialBroker | undefined;
  #scheme: "sigv4" | "bearer" | undefined;

  constructor(config: SigningConfig, broker: CredentialBroker | undefined) {
    this.#config = config;
    this.#broker = broker;
    if (broker) installBrokeredProvider(config);
  }

  /**
   * The credentials the call will be signed with. Throws (the call is then denied) when there are
   * none, when they have expired, or when brokered ones cannot be used for this call; the message
   * says why.
   */
  async plan(request: BrokerRequest, action: string): Promise<CredentialPlan> {
    const scheme = this.#scheme ?? (await this.#selectedScheme());
    const broker = this.#broker;
    if (broker) {
      if (scheme === "bearer") {
        throw new Error(
          "the client signs with a Bedrock API key (bearer token) while a credential broker is configured: remove authSchemePreference / AWS_BEARER_TOKEN_BEDROCK so calls use the brokered credentials",
        );
      }
      if (action === "InvokeModelWithBidirectionalStream") {
        // The SDK signs each frame of a bidirectional stream with the provider it captured when the
        // client was built, not with the call's credentials: brokered credentials cannot reach them.
        throw new Error("InvokeModelWithBidirectionalStream cannot be signed with brokered credentials (the SDK signs its frames with the client's own); use a client without a broker for it");
      }
      if (request.taskScope?.ended) throw taskEnded(request.task);
      return { facts: broker[PLAN](request), obtain: () => broker[ISSUE](request) };
    }
    if (scheme === "bearer") return { facts: BEARER_CREDENTIALS };
    const provider = this.#config.credentials;
    if (typeof provider !== "function") throw new Error("the client has no AWS credentials provider");
    const credentials = (await (provider as CredentialProvider)()) as AwsCredentialIdentity | undefined;
    if (typeof credentials?.accessKeyId !== "string" || credentials.accessKeyId === "") throw new Error("the client's credentials provider returned no access key");
    const facts = classifyCredentials(credentials);
    if (facts.expiresAt && facts.expiresAt.getTime() <= Date.now()) {
      throw new Error(`the client's credentials expired at ${facts.expiresAt.toISOString()}: its credentials provider did not refresh them`);
    }
    return { facts };
  }

  /** The auth scheme the SDK will pick: the first of sigv4 / httpBearerAuth in the client's preference, sigv4 otherwise. */
  async #selectedScheme(): Promise<"sigv4" | "bearer"> {
    const preference = this.#config.authSchemePreference;
    const names = typeof preference === "function" ? await (preference as () => Promise<unknown>)() : preference;
    let scheme: "sigv4" | "bearer" = "sigv4";
    for (const name of Array.isArray(names) ? names : []) {
      if (name === "sigv4") break;
      if (name === "httpBearerAuth") {
        scheme = "bearer";
        break;
      }
    }
    this.#scheme = scheme;
    return scheme;
  }
}

const installed = new WeakSet<object>();

/**
 * Replaces the client's credentials provider with one that returns the call's brokered
 * credentials, and nothing else: a call with a broker is never signed with the client's own
 * (possibly standing) credentials. Marked memoized, so the SDK does not cache the first answer
 * for every later call.
 */
function installBrokeredProvider(config: SigningConfig): void {
  if (installed.has(config)) return;
  if (typeof config.credentials !== "function" && config.credentials !== undefined) {
    throw new ConfigurationError("A credential broker needs a Bedrock Runtime client whose config.credentials can be replaced");
  }
  const brokered: CredentialProvider = async () => {
    const credentials = signingSlot.getStore();
    if (credentials === undefined) {
      throw new Error("bedrock-warden: no brokered credentials for this call (it did not pass the governance middleware); refusing to sign it with other credentials");
    }
    return credentials;
  };
  brokered.memoized = true;
  config.credentials = brokered;
  installed.add(config);
}
