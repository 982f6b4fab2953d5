/**
 * The kill switch in a decision: a workload whose switch is on (`store.kill(id, reason)`) is
 * denied before any policy runs, and a call whose usage cannot be counted is denied when
 * `usage.onStoreError` is `"deny"`. Both decisions name the cause, as every denial does.
 * @module
 */
import { unevaluatedDenial } from "../policy/decision.js";
import { UsageUnavailableError, WorkloadKilledError, type KillState, type UsageStoreError } from "../errors.js";

/** Who asked for what: the references a denial reached before Cedar is written with. */
export interface DenialParts {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly policySetVersion: string;
}

/**
 * The denial of a call by a killed workload.
 *
 * @example
 * ```ts
 * throw killedDenial({ principal, action, resource, policySetVersion }, identity.id, admission.killed);
 * ```
 */
export function killedDenial(parts: DenialParts, identityId: string, killed: KillState): WorkloadKilledError {
  const since = killed.at ? ` since ${killed.at}` : "";
  const decision = unevaluatedDenial({
    ...parts,
    reason: `the kill switch of ${identityId} is on${since}: ${killed.reason}`,
  });
  return new WorkloadKilledError(decision, identityId, killed);
}

/**
 * The denial of a call whose usage could not be counted (`onStoreError: "deny"`).
 *
 * @example
 * ```ts
 * throw usageUnavailableDenial({ principal, action, resource, policySetVersion }, admission.error);
 * ```
 */
export function usageUnavailableDenial(parts: DenialParts, error: UsageStoreError): UsageUnavailableError {
  const decision = unevaluatedDenial({
    ...parts,
    reason: "the call's usage could not be counted, so budgets and the kill switch cannot be enforced (usage.onStoreError: \"deny\")",
    errors: [`usage: ${error.name}: ${error.message}`],
  });
  return new UsageUnavailableError(decision, error);
}
