/**
 * Usage per workload identity — calls in the current minute, tokens in the current hour — and
 * the kill switch, kept in a {@link UsageStore}: {@link memoryUsageStore} for one process,
 * `redisUsageStore` for a fleet. Policies read the usage as `context.usage` (see `usageContext`)
 * and write the budgets and rate limits themselves:
 *
 * ```cedar
 * forbid (principal in Bedrock::Group::"interns", action, resource)
 * when { context has usage && context.usage.tokensLastHour > 100000 };
 * ```
 *
 * Windows are fixed and aligned on the clock: the minute window starts at every whole minute
 * (UTC), the hour window at every whole hour, and each count starts again from zero in the next
 * window.
 * @module
 */
import { ConfigurationError } from "../errors.js";
import type { KillState } from "../errors.js";
import { CONTROL_CHARACTERS } from "../validation.js";

export type { KillState } from "../errors.js";

/** The length of the calls window. */
export const MINUTE_MS = 60_000;
/** The length of the tokens window. */
export const HOUR_MS = 3_600_000;

/**
 * An identity's usage, as one governed call sees it.
 *
 * @example
 * ```ts
 * const usage: Usage = { callsLastMinute: 12, tokensLastHour: 48_200 };
 * ```
 */
export interface Usage {
  /** Calls in the current minute window, this one included (every admitted attempt counts, denied or not). */
  readonly callsLastMinute: number;
  /** Tokens (input + output) reported by the responses of the current hour window's calls. */
  readonly tokensLastHour: number;
  /** Set when the identity's kill switch is on. */
  readonly killed?: KillState;
}

/**
 * Where usage is counted and the kill switch is kept.
 *
 * @example
 * ```ts
 * const store: UsageStore = memoryUsageStore();
 * const usage = await store.admit("spiffe://acme.example/agents/invoice", Date.now());
 * if (usage.killed) throw new Error(usage.killed.reason);
 * ```
 */
export interface UsageStore {
  /** A short name for messages and spans, e.g. `"memory"`, `"redis"`. */
  readonly name: string;
  /**
   * Counts this call and reads the identity's current usage and kill switch, in one round trip.
   * @throws {@link UsageStoreError} when the store cannot answer (in time).
   */
  admit(identityId: string, now: number): Promise<Usage>;
  /** Reads the identity's current usage and kill switch without counting a call. */
  read(identityId: string, now: number): Promise<Usage>;
  /**
   * Adds the tokens a response reported to the identity's current hour window. Zero, negative and
   * non-finite counts are ignored; fractions are rounded down.
   */
  addTokens(identityId: string, tokens: number, now: number): Promise<void>;
  /** Turns the identity's kill switch on: its calls are denied until {@link UsageStore.revive}. */
  kill(identityId: string, reason: string): Promise<void>;
  /** Turns the identity's kill switch off. */
  revive(identityId: string): Promise<void>;
  /** Releases what the store holds (a connection it opened). */
  close(): Promise<void>;
}

/** The start (ms since the epoch) of the window of length `windowMs` that holds `now`. */
export function windowStart(now: number, windowMs: number): number {
  return Math.floor(now / windowMs) * windowMs;
}

/** Throws a {@link ConfigurationError} unless `id` can be an identity's id. */
export function checkIdentityId(id: unknown): asserts id is string {
  if (typeof id !== "string" || id.length === 0 || id.length > 1024) {
    throw new ConfigurationError("usage store: the identity id must be a non-empty string of at most 1,024 characters");
  }
}

const CONTROL = new RegExp(CONTROL_CHARACTERS.source, "g");

/** Checks a kill reason given in code: 1-1,024 characters, no control characters. */
export function checkKillReason(reason: unknown): asserts reason is string {
  if (typeof reason !== "string" || reason.trim().length === 0 || reason.length > 1024) {
    throw new ConfigurationError("usage store: a kill reason must be a non-empty string of at most 1,024 characters (say why, e.g. an incident id)");
  }
  if (CONTROL_CHARACTERS.test(reason) || !reason.isWellFormed()) {
    throw new ConfigurationError("usage store: a kill reason must not contain control characters or lone surrogates");
  }
}

/** A kill state read from a store an operator may have written by hand: made safe for messages and spans. */
export function cleanKillState(reason: unknown, at: unknown): KillState {
  const text = (value: unknown, max: number) =>
    typeof value === "string" ? value.replace(CONTROL, " ").toWellFormed().slice(0, max) : "";
  return Object.freeze({ reason: text(reason, 1024) || "killed (no reason given)", at: text(at, 64) });
}

/** A token count as a store adds it: a positive safe integer, or 0 for anything else. */
export function tokenIncrement(tokens: number): number {
  if (typeof tokens !== "number" || !Number.isFinite(tokens) || tokens < 1) return 0;
  return Math.min(Math.floor(tokens), Number.MAX_SAFE_INTEGER);
}

/** Options of {@link memoryUsageStore}. */
export interface MemoryUsageStoreOptions {
  /**
   * How many identities' windows are kept at most (default 100,000). Windows that have ended are
   * dropped as the store goes; past the limit the least recently active identity's counts are
   * dropped (it starts again from zero). Kill switches are never dropped.
   */
  readonly maxIdentities?: number;
}

interface Counters {
  minute: number;
  calls: number;
  hour: number;
  tokens: number;
}

/**
 * A usage store in this process's memory: the default, with nothing to run. It counts this
 * process's calls only and its kill switch stops this process only: a fleet sharing budgets
 * needs `redisUsageStore`. Memory stays bounded: an identity's counts are dropped once both its
 * windows have ended, and at most `maxIdentities` identities are held.
 *
 * @example
 * ```ts
 * import { createGovernance, memoryUsageStore } from "bedrock-warden";
 * const store = memoryUsageStore();
 * const governance = createGovernance({ environment: "dev", policies, usage: { store } });
 * await store.kill("spiffe://acme.example/agents/invoice", "INC-4711: runaway loop");
 * ```
 */
/**
 * @internal The stores that always answer in time: the memory store (at once) and the Redis store
 * (its own `timeoutMs`). Any other store's answer is awaited for at most `CUSTOM_STORE_TIMEOUT_MS`.
 */
export const SETTLES_IN_TIME = new WeakSet<UsageStore>();

export function memoryUsageStore(options: MemoryUsageStoreOptions = {}): UsageStore & { readonly size: number } {
  const max = options.maxIdentities ?? 100_000;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new ConfigurationError("memoryUsageStore: maxIdentities must be a whole number of at least 1");
  }
  // In order of last activity (an entry is re-inserted when touched), so the entries whose windows
  // ended first are at the front: sweeping stops at the first live one.
  const counters = new Map<string, Counters>();
  const killed = new Map<string, KillState>();

  const sweep = (now: number) => {
    const hour = windowStart(now, HOUR_MS);
    for (const [id, entry] of counters) {
      if (entry.hour >= hour) break;
      counters.delete(id);
    }
    while (counters.size > max) {
      const oldest = counters.keys().next().value as string;
      counters.delete(oldest);
    }
  };
  const touch = (id: string, now: number): Counters => {
    const minute = windowStart(now, MINUTE_MS);
    const hour = windowStart(now, HOUR_MS);
    let entry = counters.get(id);
    if (entry === undefined) {
      entry = { minute, calls: 0, hour, tokens: 0 };
    } else {
      counters.delete(id);
      if (entry.minute !== minute) {
        entry.minute = minute;
        entry.calls = 0;
      }
      if (entry.hour !== hour) {
        entry.hour = hour;
        entry.tokens = 0;
      }
    }
    counters.set(id, entry);
    sweep(now);
    return entry;
  };
  const usageOf = (id: string, calls: number, tokens: number): Usage => {
    const kill = killed.get(id);
    return kill === undefined ? { callsLastMinute: calls, tokensLastHour: tokens } : { callsLastMinute: calls, tokensLastHour: tokens, killed: kill };
  };
  const store: UsageStore & { readonly size: number } = {
    name: "memory",
    get size() {
      return counters.size;
    },
    async admit(identityId, now) {
      checkIdentityId(identityId);
      const entry = touch(identityId, now);
      entry.calls = Math.min(entry.calls + 1, Number.MAX_SAFE_INTEGER);
      return usageOf(identityId, entry.calls, entry.tokens);
    },
    async read(identityId, now) {
      checkIdentityId(identityId);
      const entry = counters.get(identityId);
      const calls = entry && entry.minute === windowStart(now, MINUTE_MS) ? entry.calls : 0;
      const tokens = entry && entry.hour === windowStart(now, HOUR_MS) ? entry.tokens : 0;
      return usageOf(identityId, calls, tokens);
    },
    async addTokens(identityId, tokens, now) {
      checkIdentityId(identityId);
      const n = tokenIncrement(tokens);
      if (n === 0) return;
      const entry = touch(identityId, now);
      entry.tokens = Math.min(entry.tokens + n, Number.MAX_SAFE_INTEGER);
    },
    async kill(identityId, reason) {
      checkIdentityId(identityId);
      checkKillReason(reason);
      killed.set(identityId, Object.freeze({ reason, at: new Date().toISOString() }));
    },
    async revive(identityId) {
      checkIdentityId(identityId);
      killed.delete(identityId);
    },
    async close() {
      counters.clear();
      killed.clear();
    },
  };
  SETTLES_IN_TIME.add(store);
  return store;
}
