/**
 * `runTask(identity, task, fn)`: runs one task of one workload. Its calls act as the identity,
 * carry the task as their invocation path (`context.task`, the credential broker's path), and
 * whatever credentials the task obtained are dropped when it ends, however it ends.
 * @module
 */
import { z } from "zod";
import { ConfigurationError } from "../errors.js";
import { runInScope, type CallScope, type TaskScope } from "./call-scope.js";
import type { IdentityProvider } from "./identity-providers.js";
import type { WorkloadIdentity } from "./workload-identity.js";

/**
 * The invocation path of calls made outside `runTask`.
 *
 * @example
 * ```ts
 * await runAs(agent, () => bedrock.converse(input)); // signed with the credentials of (agent, DEFAULT_PATH)
 * broker.holds(agent, DEFAULT_PATH); // true until they expire
 * ```
 */
export const DEFAULT_PATH = "default";

const taskName = z
  .string({ error: "the task name must be a string" })
  .regex(/^[A-Za-z0-9_.:/=+@-]{1,128}$/, "the task name must be 1-128 characters of letters, digits and _.:/=+@- (it becomes a session tag)");

/**
 * Runs `fn` as one task of a workload: every governed call inside it acts as `identity` (or the
 * identity `provider.identity()` returns, verified at the start of the task), on the invocation
 * path `task`. With a credential broker, the calls are signed with credentials issued for this
 * identity and path only, and those credentials are dropped from memory when the task ends.
 *
 * @example
 * ```ts
 * const summary = await runTask(invoiceAgent, "summarize-invoice", () => bedrock.converse(input), { dataSensitivity: ["financial"] });
 * // with a verified identity from a token file (e.g. a Kubernetes service-account token):
 * await runTask(tokenFileIdentity({ path: "/var/run/secrets/tokens/bedrock", verifier }), "triage", () => agent.run());
 * ```
 * @throws {@link ConfigurationError} for a malformed task name, identity or scope; whatever the
 * identity provider throws (e.g. a `TokenVerificationError`) when the identity cannot be verified.
 */
export async function runTask<T>(identity: WorkloadIdentity | IdentityProvider, task: string, fn: () => T | Promise<T>, scope?: CallScope): Promise<T> {
  const parsed = taskName.safeParse(task);
  if (!parsed.success) throw new ConfigurationError(`Invalid task: ${parsed.error.issues[0]?.message ?? "malformed"}`);
  if (task === DEFAULT_PATH) {
    throw new ConfigurationError(`Invalid task: "${DEFAULT_PATH}" names the calls made outside any task; give the task a name of its own`);
  }
  const resolved = isProvider(identity) ? await identity.identity() : identity;
  const running = new RunningTask(parsed.data);
  try {
    return await runInScope(resolved, running, fn, scope);
  } finally {
    running.end();
  }
}

function isProvider(value: WorkloadIdentity | IdentityProvider): value is IdentityProvider {
  return typeof (value as IdentityProvider).identity === "function";
}

class RunningTask implements TaskScope {
  #ended = false;
  readonly #callbacks: (() => void)[] = [];

  constructor(readonly name: string) {}

  get ended(): boolean {
    return this.#ended;
  }

  onEnd(callback: () => void): void {
    if (this.#ended) callback();
    else this.#callbacks.push(callback);
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const callback of this.#callbacks.splice(0)) {
      try {
        callback();
      } catch {
        // One cleanup failing must not keep the others from running.
      }
    }
  }
}
