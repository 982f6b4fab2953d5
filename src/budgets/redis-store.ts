/**
 * `redisUsageStore`: usage and the kill switch shared by a fleet through Redis. Every admitted
 * call is one round trip — one `EVALSHA` of a small Lua script that counts the call, reads the
 * hour's tokens and reads the kill switch, atomically — and each response's tokens are one more,
 * after the call. `ioredis` is an optional peer dependency, loaded only when a Redis store first
 * connects: applications without Redis never load it.
 *
 * Keys (one Redis Cluster hash slot per identity, by the `{…}` hash tag):
 *
 * | key | type | what |
 * | --- | --- | --- |
 * | `<prefix>{<identity id>}:calls:<minutes since the epoch>` | string (integer) | calls in that minute; expires after it |
 * | `<prefix>{<identity id>}:tokens:<hours since the epoch>` | string (integer) | tokens in that hour; expires after it |
 * | `<prefix>{<identity id>}:killed` | hash `reason`, `at` | the kill switch: on while the key exists |
 *
 * An operator can therefore stop a workload from anywhere with
 * `redis-cli HSET 'bedrock-warden:{spiffe://acme.example/agents/invoice}:killed' reason 'INC-4711' at "$(date -Is)"`
 * and let it go again with `DEL`.
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { withDeadline } from "../deadline.js";
import { ConfigurationError } from "../errors.js";
import { describeZodError } from "../validation.js";
import { UsageStoreError, type KillState, type UsageStoreOperation } from "../errors.js";
import {
  SETTLES_IN_TIME,
  checkIdentityId,
  checkKillReason,
  cleanKillState,
  HOUR_MS,
  MINUTE_MS,
  tokenIncrement,
  windowStart,
  type Usage,
  type UsageStore,
} from "./usage-store.js";

/**
 * The part of a Redis client the store uses: `ioredis`' `Redis` and `Cluster` have it. A client
 * passed in is used as it is configured (timeouts, retries, offline queue): give it
 * `enableOfflineQueue: false` and a `commandTimeout`, or a Redis outage makes calls wait.
 */
export interface RedisScriptClient {
  evalsha(sha: string, numKeys: number, ...args: string[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: string[]): Promise<unknown>;
}

/**
 * Options of {@link redisUsageStore}: exactly one of `url` and `client`.
 *
 * @example
 * ```ts
 * const options: RedisUsageStoreOptions = { url: process.env.REDIS_URL!, keyPrefix: "billing-prod:", timeoutMs: 250 };
 * ```
 */
export interface RedisUsageStoreOptions {
  /**
   * `redis://[user:password@]host[:port][/db]`, or `rediss://…` for TLS. The store opens (lazily,
   * on first use or {@link RedisUsageStore.connect}) and closes its own connection. The URL's
   * credentials never appear in errors.
   */
  readonly url?: string;
  /** A client you own and configure (TLS options, Sentinel, Cluster ...); `close()` leaves it open. */
  readonly client?: RedisScriptClient;
  /** Prepended to every key (default `"bedrock-warden:"`): separates deployments sharing one Redis. */
  readonly keyPrefix?: string;
  /**
   * The most any operation may take, connecting included (default 500 ms): past it the operation
   * fails with a {@link UsageStoreError} instead of holding the call.
   */
  readonly timeoutMs?: number;
  /**
   * How far apart the fleet's clocks may be (default 5,000 ms). Windows are aligned on each
   * process's clock; keys outlive their window by this much, so a process whose clock lags still
   * finds the window's count.
   */
  readonly clockSkewMs?: number;
}

/**
 * A Redis usage store.
 *
 * @example
 * ```ts
 * const store: RedisUsageStore = redisUsageStore({ url: "redis://127.0.0.1:6379" });
 * await store.connect(); // optional: fail fast at start-up, and the first call does not wait
 * ```
 */
export interface RedisUsageStore extends UsageStore {
  /**
   * Opens the connection now (it is otherwise opened by the first operation). Rejects with a
   * {@link UsageStoreError} when Redis cannot be reached in time; the store keeps retrying.
   */
  connect(): Promise<void>;
}

/** Counts this call (`ARGV[2] == "1"`) or only reads; reads the hour's tokens and the kill switch. */
const ADMIT = `local calls
if ARGV[2] == "1" then
  calls = redis.call("INCR", KEYS[1])
  if calls == 1 then redis.call("PEXPIRE", KEYS[1], ARGV[1]) end
else
  calls = tonumber(redis.call("GET", KEYS[1]) or "0")
end
return {calls, redis.call("GET", KEYS[2]) or "0", redis.call("HGETALL", KEYS[3])}`;

const ADD_TOKENS = `local tokens = redis.call("INCRBY", KEYS[1], ARGV[1])
if tokens == tonumber(ARGV[1]) then redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
return tokens`;

const KILL = `redis.call("HSET", KEYS[1], "reason", ARGV[1], "at", ARGV[2])
return 1`;

const REVIVE = `return redis.call("DEL", KEYS[1])`;

interface Script {
  readonly text: string;
  readonly sha: string;
}

const script = (text: string): Script => Object.freeze({ text, sha: createHash("sha1").update(text).digest("hex") });
const SCRIPTS = { admit: script(ADMIT), addTokens: script(ADD_TOKENS), kill: script(KILL), revive: script(REVIVE) } as const;

const DEFAULT_PREFIX = "bedrock-warden:";
/** How many identities seen killed this process remembers (kills are rare; this is a safety bound). */
const MAX_REMEMBERED_KILLS = 10_000;

const optionsSchema = z
  .object({
    url: z
      .string({ error: "must be a redis:// or rediss:// URL" })
      .refine(isRedisUrl, "must be a redis://host[:port][/db] or rediss://… URL")
      .optional(),
    client: z
      .custom<RedisScriptClient>(
        (v) => typeof (v as RedisScriptClient | undefined)?.evalsha === "function" && typeof (v as RedisScriptClient | undefined)?.eval === "function",
        { message: "must be a Redis client with evalsha and eval (an ioredis Redis or Cluster)" },
      )
      .optional(),
    keyPrefix: z
      .string({ error: "must be a string" })
      .max(128, "must be at most 128 characters")
      .refine((s) => !/[{}]/.test(s), "must not contain { or } (they would change the Redis Cluster hash slot)")
      .optional(),
    timeoutMs: z.number({ error: "must be a number of milliseconds" }).int("must be a whole number").min(1).max(60_000).optional(),
    clockSkewMs: z.number({ error: "must be a number of milliseconds" }).int("must be a whole number").min(0).max(600_000).optional(),
  })
  .strict()
  .refine((o) => (o.url === undefined) !== (o.client === undefined), "give exactly one of url and client");

/**
 * A usage store in Redis, shared by every process that names the same Redis and `keyPrefix`:
 * their calls count against one budget and one kill switch, which every call reads.
 *
 * Each `admit` is one round trip (`EVALSHA`; once after Redis restarts, `EVAL` loads the script
 * again). Every operation is bounded by `timeoutMs`; nothing is queued while Redis is unreachable
 * (with a `url`, the store's own connection is configured so: no offline queue, no resending of
 * unanswered commands, reconnecting in the background). A failure rejects with a
 * {@link UsageStoreError}; what the governed call does then is the governance's
 * `usage.onStoreError` (`"deny"` by default).
 *
 * @throws {@link ConfigurationError} for malformed options (the message never repeats the URL).
 * @example
 * ```ts
 * import { createGovernance, redisUsageStore } from "bedrock-warden";
 *
 * const store = redisUsageStore({ url: process.env.REDIS_URL!, keyPrefix: "prod:" });
 * await store.connect();
 * const governance = createGovernance({ environment: "production", policies, usage: { store } });
 * // from an operator's script, in any process:
 * await store.kill("spiffe://acme.example/agents/invoice", "INC-4711: runaway tool loop");
 * // on shutdown:
 * await store.close();
 * ```
 */
export function redisUsageStore(options: RedisUsageStoreOptions): RedisUsageStore {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new ConfigurationError(`Invalid redisUsageStore options: ${describeZodError(parsed.error, "redisUsageStore", optionsSchema as unknown as z.ZodType)}`);
  }
  const store = new RedisStore(options);
  SETTLES_IN_TIME.add(store);
  return store;
}

/** The store's keys for an identity at a time (for operators and tests). */
export function redisUsageKeys(identityId: string, now: number, keyPrefix = DEFAULT_PREFIX): { calls: string; tokens: string; killed: string } {
  const base = `${keyPrefix}{${identityId}}:`;
  return {
    calls: `${base}calls:${Math.floor(now / MINUTE_MS)}`,
    tokens: `${base}tokens:${Math.floor(now / HOUR_MS)}`,
    killed: `${base}killed`,
  };
}

/** The connection-level view of an ioredis client this store opened. */
interface OwnedClient extends RedisScriptClient {
  readonly status: string;
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "ready" | "close", listener: () => void): unknown;
  script(subcommand: "LOAD", script: string): Promise<unknown>;
}

class RedisStore implements RedisUsageStore {
  readonly name = "redis";
  readonly #url: string | undefined;
  readonly #where: string;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #skewMs: number;
  readonly #given: RedisScriptClient | undefined;
  #owned: OwnedClient | undefined;
  #opening: Promise<OwnedClient> | undefined;
  #lastConnectionError: Error | undefined;
  #closed = false;
  /** Identities this process last saw killed: kept denied while the store cannot answer. */
  readonly #killed = new Map<string, KillState>();

  constructor(options: RedisUsageStoreOptions) {
    this.#url = options.url;
    this.#given = options.client;
    this.#where = options.url === undefined ? "the given client" : redactUrl(options.url);
    this.#prefix = options.keyPrefix ?? DEFAULT_PREFIX;
    this.#timeoutMs = options.timeoutMs ?? 500;
    this.#skewMs = options.clockSkewMs ?? 5_000;
  }

  async connect(): Promise<void> {
    await this.#run("connect", undefined, async () => {
      await this.#client();
    });
  }

  async admit(identityId: string, now: number): Promise<Usage> {
    checkIdentityId(identityId);
    return this.#usage("admit", identityId, now, true);
  }

  async read(identityId: string, now: number): Promise<Usage> {
    checkIdentityId(identityId);
    return this.#usage("read", identityId, now, false);
  }

  async addTokens(identityId: string, tokens: number, now: number): Promise<void> {
    checkIdentityId(identityId);
    const n = tokenIncrement(tokens);
    if (n === 0) return;
    const key = redisUsageKeys(identityId, now, this.#prefix).tokens;
    const ttl = this.#ttl(now, HOUR_MS);
    await this.#run("addTokens", identityId, () => this.#eval(SCRIPTS.addTokens, [key], [String(n), String(ttl)]));
  }

  async kill(identityId: string, reason: string): Promise<void> {
    checkIdentityId(identityId);
    checkKillReason(reason);
    const at = new Date().toISOString();
    await this.#run("kill", identityId, () => this.#eval(SCRIPTS.kill, [redisUsageKeys(identityId, 0, this.#prefix).killed], [reason, at]));
    this.#remember(identityId, Object.freeze({ reason, at }));
  }

  async revive(identityId: string): Promise<void> {
    checkIdentityId(identityId);
    await this.#run("revive", identityId, () => this.#eval(SCRIPTS.revive, [redisUsageKeys(identityId, 0, this.#prefix).killed], []));
    this.#killed.delete(identityId);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const opening = this.#opening;
    this.#opening = undefined;
    const client = this.#owned ?? (await opening?.catch(() => undefined));
    this.#owned = undefined;
    if (client === undefined) return;
    if (client.status === "ready") {
      try {
        await withTimeout(client.quit(), this.#timeoutMs, "QUIT");
        return;
      } catch {
        // Fall through: drop the connection.
      }
    }
    client.disconnect();
  }

  async #usage(operation: "admit" | "read", identityId: string, now: number, count: boolean): Promise<Usage> {
    const keys = redisUsageKeys(identityId, now, this.#prefix);
    const reply = await this.#run(operation, identityId, () =>
      this.#eval(SCRIPTS.admit, [keys.calls, keys.tokens, keys.killed], [String(this.#ttl(now, MINUTE_MS)), count ? "1" : "0"]),
    );
    const usage = parseUsage(reply);
    if (usage === undefined) {
      throw new UsageStoreError(this.name, operation, `usage store "redis" (${this.#where}) gave an unexpected reply to ${operation}`, {
        lastKnownKill: this.#killed.get(identityId),
      });
    }
    if (usage.killed) this.#remember(identityId, usage.killed);
    else this.#killed.delete(identityId);
    return usage;
  }

  /** The key's lifetime: to the end of its window, plus the clock skew allowed. */
  #ttl(now: number, windowMs: number): number {
    return Math.max(1, windowStart(now, windowMs) + windowMs - now) + this.#skewMs;
  }

  #remember(identityId: string, state: KillState): void {
    this.#killed.delete(identityId);
    this.#killed.set(identityId, state);
    if (this.#killed.size > MAX_REMEMBERED_KILLS) this.#killed.delete(this.#killed.keys().next().value as string);
  }

  /** Runs one operation within the timeout; every failure becomes a {@link UsageStoreError}. */
  async #run<T>(operation: UsageStoreOperation, identityId: string | undefined, work: () => Promise<T>): Promise<T> {
    const lastKnownKill = identityId === undefined ? undefined : this.#killed.get(identityId);
    if (this.#closed) {
      throw new UsageStoreError(this.name, operation, `usage store "redis" (${this.#where}) is closed`, { lastKnownKill });
    }
    try {
      return await withTimeout(work(), this.#timeoutMs, operation);
    } catch (error) {
      if (error instanceof UsageStoreError) throw error;
      throw new UsageStoreError(this.name, operation, `usage store "redis" (${this.#where}) unavailable during ${operation}: ${this.#describe(error)}`, {
        cause: error,
        lastKnownKill,
      });
    }
  }

  #describe(error: unknown): string {
    const message = error instanceof Error ? error.message : String(error);
    // ioredis says this whenever the connection is down: name the reason it is down instead.
    if (/Stream isn't writeable|Connection is closed/i.test(message)) {
      const last = this.#lastConnectionError;
      return `not connected${last ? ` (${scrub(last.message, this.#url)})` : ""}; reconnecting in the background`;
    }
    return scrub(message, this.#url);
  }

  /** Runs a script by its digest, loading it with EVAL when Redis does not have it (after a restart). */
  async #eval(s: Script, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const client = await this.#client();
    try {
      return await client.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      const reply = client.eval(s.text, keys.length, ...keys, ...args);
      // Redis lost its scripts (a restart, a failover, SCRIPT FLUSH): load the others now, without
      // waiting, so that they do not each pay this second round trip.
      const loader = (client as Partial<Pick<OwnedClient, "script">>).script;
      if (typeof loader === "function") {
        for (const other of Object.values(SCRIPTS)) if (other !== s) loader.call(client, "LOAD", other.text).catch(() => undefined);
      }
      return reply;
    }
  }

  async #client(): Promise<RedisScriptClient> {
    if (this.#given) return this.#given;
    const owned = this.#owned;
    if (owned !== undefined) {
      // Reconnecting in the background: fail now rather than queue (the offline queue is off).
      if (owned.status !== "end") return owned;
      this.#owned = undefined;
    }
    this.#opening ??= this.#open().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #open(): Promise<OwnedClient> {
    let Redis: new (url: string, options: Record<string, unknown>) => OwnedClient;
    try {
      const module = (await import("ioredis")) as unknown as { Redis?: typeof Redis; default?: typeof Redis };
      Redis = (module.Redis ?? module.default) as typeof Redis;
    } catch (error) {
      throw new UsageStoreError(
        this.name,
        "connect",
        "redisUsageStore needs the optional peer dependency ioredis: npm install ioredis@^6",
        { cause: error },
      );
    }
    const client = new Redis(this.#url as string, {
      lazyConnect: true,
      // Fail fast while disconnected: a call is decided now, never held until Redis returns.
      enableOfflineQueue: false,
      // A command whose reply was lost may have run: resending it would count a call twice.
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      connectTimeout: this.#timeoutMs,
      commandTimeout: this.#timeoutMs,
      // Reconnect in the background, backing off to at most 2 s between attempts.
      retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
      connectionName: "bedrock-warden",
    });
    client.on("error", (error) => {
      // Kept to explain the next failure; ioredis would otherwise print every reconnection error.
      this.#lastConnectionError = error;
    });
    client.on("ready", () => {
      this.#lastConnectionError = undefined;
      // Sent before any call's EVALSHA on this connection (Redis answers in order), so even the first
      // call after Redis restarted (its script cache empty) is one round trip.
      for (const s of Object.values(SCRIPTS)) client.script("LOAD", s.text).catch(() => undefined);
    });
    client.on("close", () => {
      this.#lastConnectionError ??= new Error("the connection was closed");
    });
    this.#owned = client;
    if (this.#closed) {
      client.disconnect();
      throw new Error("closed");
    }
    await client.connect();
    return client;
  }
}

function parseUsage(reply: unknown): Usage | undefined {
  if (!Array.isArray(reply) || reply.length !== 3) return undefined;
  const [calls, tokens, kill] = reply as [unknown, unknown, unknown];
  const count = (value: unknown): number | undefined => {
    const n = typeof value === "number" ? value : typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
    if (Number.isNaN(n)) return undefined;
    return Math.max(0, Math.min(n, Number.MAX_SAFE_INTEGER));
  };
  const callsLastMinute = count(calls);
  const tokensLastHour = count(tokens);
  if (callsLastMinute === undefined || tokensLastHour === undefined || !Array.isArray(kill)) return undefined;
  if (kill.length === 0) return { callsLastMinute, tokensLastHour };
  const fields = new Map<string, unknown>();
  for (let i = 0; i + 1 < kill.length; i += 2) fields.set(String(kill[i]), kill[i + 1]);
  return { callsLastMinute, tokensLastHour, killed: cleanKillState(fields.get("reason"), fields.get("at")) };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return withDeadline(promise, ms, () => new Error(`${what} timed out after ${ms} ms`));
}

function isRedisUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return (parsed.protocol === "redis:" || parsed.protocol === "rediss:") && parsed.hostname.length > 0;
  } catch {
    return false;
  }
}

/** The URL without its credentials (and query): what errors may name. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === "/" ? "" : parsed.pathname}`;
  } catch {
    return "(an unparsable URL)";
  }
}

/** Removes the URL's password and user from a message, should a client ever repeat them. */
function scrub(message: string, url: string | undefined): string {
  if (url === undefined) return message;
  let text = message;
  try {
    const parsed = new URL(url);
    for (const secret of [parsed.password, decodeURIComponent(parsed.password), parsed.username, decodeURIComponent(parsed.username)]) {
      // Shorter ones would mangle the message and reveal next to nothing.
      if (secret.length >= 3) text = text.split(secret).join("***");
    }
  } catch {
    // Unparsable: nothing known to remove.
  }
  return text;
}
