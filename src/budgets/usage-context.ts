/**
 * Usage in a decision: the governance's `usage` option, the admission of a call (count it, read
 * its usage and kill switch, decide what a store failure means), `context.usage` for Cedar, and
 * the tokens a response reports, added back after the call.
 * @module
 */
import { z } from "zod";
import { withDeadline } from "../deadline.js";
import type { CedarValue } from "../policy/request-shape.js";
import { UsageStoreError, type KillState } from "../errors.js";
import { SETTLES_IN_TIME, type Usage, type UsageStore } from "./usage-store.js";

/**
 * The governance's `usage` option: where usage is counted, and what a call does when it cannot be.
 *
 * @example
 * ```ts
 * const usage: UsageOptions = { store: redisUsageStore({ url: process.env.REDIS_URL! }), onStoreError: "deny" };
 * ```
 */
export interface UsageOptions {
  readonly store: UsageStore;
  /**
   * When the store cannot count the call (Redis down or slower than its `timeoutMs`):
   * `"deny"` (default) fails closed with `UsageUnavailableError`; `"allow-without-usage"` decides
   * the call without `context.usage` (policies read it as `context has usage && ...`: the schema
   * makes it optional, and the validator refuses a policy that reads it without the test). An
   * identity this process last saw killed stays denied either way.
   */
  readonly onStoreError?: "deny" | "allow-without-usage";
}

/** zod schema of {@link UsageOptions}, for `createGovernance`'s options. */
export const usageOptionsSchema = z
  .object({
    store: z.custom<UsageStore>(
      (v) => {
        const s = v as Partial<UsageStore> | undefined;
        return typeof s?.admit === "function" && typeof s.read === "function" && typeof s.addTokens === "function" && typeof s.name === "string";
      },
      { message: "must be a usage store (memoryUsageStore() or redisUsageStore({ url }))" },
    ),
    onStoreError: z.enum(["deny", "allow-without-usage"], { error: 'must be "deny" or "allow-without-usage"' }).optional(),
  })
  .strict();

/**
 * What the admission of a call found:
 * - `admitted`: counted; decide with `usage` in the context;
 * - `killed`: the kill switch is on: deny before Cedar (`WorkloadKilledError`);
 * - `unavailable`: the store failed and `onStoreError` is `"deny"`: deny (`UsageUnavailableError`);
 * - `unmetered`: the store failed and `onStoreError` is `"allow-without-usage"`: decide without `usage`.
 */
export type Admission =
  | { readonly outcome: "admitted"; readonly usage: Usage }
  | { readonly outcome: "killed"; readonly killed: KillState; readonly usage?: Usage }
  | { readonly outcome: "unavailable"; readonly error: UsageStoreError }
  | { readonly outcome: "unmetered"; readonly error: UsageStoreError };

/**
 * Counts a call and reads its usage and kill switch (one store round trip). Never rejects: a
 * store failure is an outcome, decided by `options.onStoreError`. Start it as soon as the identity
 * is known and await it just before the decision, so the round trip overlaps the rest.
 */
export function admitCall(options: UsageOptions, identityId: string, now: number): Promise<Admission> {
  return admission(options, identityId, now, "admit");
}

/**
 * As {@link admitCall}, without counting a call: for decisions that are not model calls of their
 * own (a tool the application executes, through `governTool`), which the kill switch stops too.
 */
export function readUsage(options: UsageOptions, identityId: string, now: number): Promise<Admission> {
  return admission(options, identityId, now, "read");
}

/**
 * How long an answer from a store other than the memory and Redis stores (which answer in time on
 * their own) is awaited: a store that never answers is a failing store, not a call left hanging.
 */
export const CUSTOM_STORE_TIMEOUT_MS = 5_000;

async function admission(options: UsageOptions, identityId: string, now: number, operation: "admit" | "read"): Promise<Admission> {
  let usage: Usage;
  try {
    const { store } = options;
    const pending = operation === "admit" ? store.admit(identityId, now) : store.read(identityId, now);
    // A store's answer is hostile until checked: garbage is a failure, never a count of 0.
    const answer = SETTLES_IN_TIME.has(store)
      ? pending
      : withDeadline(pending, CUSTOM_STORE_TIMEOUT_MS, () => new Error(`usage store "${store.name}" did not answer ${operation} within ${CUSTOM_STORE_TIMEOUT_MS} ms`));
    usage = checkedUsage(await answer);
  } catch (thrown) {
    const error =
      thrown instanceof UsageStoreError
        ? thrown
        : new UsageStoreError(options.store.name, operation, `usage store "${options.store.name}" failed during ${operation}: ${describe(thrown)}`, {
            cause: thrown,
          });
    if (error.lastKnownKill) return { outcome: "killed", killed: error.lastKnownKill };
    return options.onStoreError === "allow-without-usage" ? { outcome: "unmetered", error } : { outcome: "unavailable", error };
  }
  if (usage.killed) return { outcome: "killed", killed: usage.killed, usage };
  return { outcome: "admitted", usage };
}

/**
 * `context.usage`: `{ callsLastMinute: Long, tokensLastHour: Long }`. The kill switch is not in
 * it: a killed workload is denied before any policy runs.
 *
 * @example
 * ```ts
 * usageContext({ callsLastMinute: 3, tokensLastHour: 1200 }); // { callsLastMinute: 3, tokensLastHour: 1200 }
 * ```
 */
export function usageContext(usage: Usage): Readonly<Record<string, CedarValue>> {
  return Object.freeze({ callsLastMinute: long(usage.callsLastMinute), tokensLastHour: long(usage.tokensLastHour) });
}

/** A store's answer, if it is a usage record: counts that are non-negative numbers, a kill state that is an object. */
function checkedUsage(answer: unknown): Usage {
  if (typeof answer !== "object" || answer === null) throw new TypeError(`it answered ${answer === null ? "null" : typeof answer} instead of a usage record`);
  const { callsLastMinute, tokensLastHour, killed } = answer as Record<string, unknown>;
  for (const [name, count] of [
    ["callsLastMinute", callsLastMinute],
    ["tokensLastHour", tokensLastHour],
  ] as const) {
    if (typeof count !== "number" || !(count >= 0)) throw new TypeError(`it answered ${name} ${JSON.stringify(count) ?? typeof count}, which is not a count`);
  }
  if (killed !== undefined && (typeof killed !== "object" || killed === null)) throw new TypeError("it answered a kill state that is not an object");
  return answer as Usage;
}

/** A count as a Cedar Long: a non-negative safe integer. */
function long(n: number): number {
  if (typeof n !== "number" || Number.isNaN(n) || n <= 0) return 0;
  return Number.isSafeInteger(n) ? n : Math.min(Math.floor(n), Number.MAX_SAFE_INTEGER);
}

/**
 * The tokens a response reported (input + output), or 0 when it reported none.
 *
 * @example
 * ```ts
 * responseTokens({ inputTokens: 120, outputTokens: 80 }); // 200
 * ```
 */
export function responseTokens(usage: { readonly inputTokens?: number; readonly outputTokens?: number } | undefined): number {
  if (usage === undefined) return 0;
  const count = (n: number | undefined) => (typeof n === "number" && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0);
  return count(usage.inputTokens) + count(usage.outputTokens);
}

const lastWarning = new WeakMap<UsageStore, number>();
/** At most one warning per store per this many milliseconds: an outage must not flood the logs. */
const WARNING_INTERVAL_MS = 60_000;

/**
 * Adds a response's tokens to the identity's hour, without holding the caller: the call has
 * already happened. A failure (Redis down) loses these tokens from the count — the budget then
 * under-counts — and is reported as a process warning (`BedrockWardenWarning`), at most once a
 * minute per store.
 */
export function recordTokens(options: UsageOptions, identityId: string, tokens: number, now: number): void {
  if (!(tokens > 0)) return;
  let pending: Promise<void>;
  try {
    pending = options.store.addTokens(identityId, tokens, now);
  } catch (error) {
    pending = Promise.reject(error);
  }
  pending.catch((error: unknown) => {
    const at = Date.now();
    const last = lastWarning.get(options.store);
    if (last !== undefined && at - last < WARNING_INTERVAL_MS) return;
    lastWarning.set(options.store, at);
    process.emitWarning(`bedrock-warden: tokens not counted (the budget under-counts): ${describe(error)}`, "BedrockWardenWarning");
  });
}

function describe(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    // A thrown value whose toString throws: admission must still never reject.
    return "(an unreadable error)";
  }
}
