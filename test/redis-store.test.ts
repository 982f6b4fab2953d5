/**
 * The Redis usage store against a real redis-server (started on a free loopback port for this
 * file; skipped with a message when redis-server is not installed, failed in CI).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { ConfigurationError } from "../src/errors.js";
import { UsageStoreError } from "../src/errors.js";
import { redisUsageKeys, redisUsageStore, type RedisUsageStore } from "../src/budgets/redis-store.js";
import { admitCall } from "../src/budgets/usage-context.js";
import { HOUR_MS, MINUTE_MS } from "../src/budgets/usage-store.js";
import { redisTestServer } from "./support/redis.js";

const AGENT = "spiffe://acme.test/agents/invoice";
const OTHER = "spiffe://acme.test/agents/research";
const T0 = Date.UTC(2026, 4, 1, 10, 0, 0, 0);
const redis = redisTestServer();
const here = dirname(fileURLToPath(import.meta.url));

let prefixes = 0;
/** A key prefix of its own for each test: nothing one test counts is seen by another. */
const prefix = () => `test-${process.pid}-${++prefixes}:`;

const stores: RedisUsageStore[] = [];
function store(options: { keyPrefix?: string; timeoutMs?: number; clockSkewMs?: number; url?: string } = {}): RedisUsageStore {
  const created = redisUsageStore({ url: redis.url, keyPrefix: prefix(), ...options });
  stores.push(created);
  return created;
}

async function eventually<T>(attempt: () => Promise<T>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function rejection(promise: Promise<unknown>): Promise<UsageStoreError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof UsageStoreError, `expected a UsageStoreError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected the operation to fail");
}

describe("redisUsageStore", { skip: redis.skip }, () => {
  before(() => redis.start());
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await redis.stop();
  });

  it("counts each identity's calls in the minute and reads its tokens, in keys that expire after their window", async () => {
    const keyPrefix = prefix();
    const s = store({ keyPrefix });
    assert.deepEqual(await s.admit(AGENT, T0), { callsLastMinute: 1, tokensLastHour: 0 });
    assert.deepEqual(await s.admit(AGENT, T0 + 59_999), { callsLastMinute: 2, tokensLastHour: 0 });
    assert.deepEqual(await s.admit(OTHER, T0), { callsLastMinute: 1, tokensLastHour: 0 });
    assert.deepEqual(await s.read(AGENT, T0), { callsLastMinute: 2, tokensLastHour: 0 }, "read does not count");
    // Aligned on the clock: 10:01:00 is a new window.
    assert.deepEqual(await s.admit(AGENT, T0 + MINUTE_MS), { callsLastMinute: 1, tokensLastHour: 0 });

    const keys = redisUsageKeys(AGENT, T0, keyPrefix);
    assert.equal(keys.calls, `${keyPrefix}{${AGENT}}:calls:${T0 / MINUTE_MS}`);
    assert.equal(await redis.command("GET", keys.calls), "2");
    const ttl = Number(await redis.command("PTTL", keys.calls));
    // Set at T0 (the window's start): the whole minute, plus the default 5 s of clock skew.
    assert.ok(ttl > 60_000 && ttl <= 65_000, `calls key TTL ${ttl} ms`);
  });

  it("accumulates tokens in the hour, starts again in the next hour, and lets the key expire", async () => {
    const keyPrefix = prefix();
    const s = store({ keyPrefix, clockSkewMs: 0 });
    await s.addTokens(AGENT, 1_000, T0);
    await s.addTokens(AGENT, 234, T0 + 30 * MINUTE_MS);
    await s.addTokens(AGENT, -50, T0); // ignored
    assert.equal((await s.admit(AGENT, T0 + 59 * MINUTE_MS)).tokensLastHour, 1_234);
    assert.equal((await s.admit(AGENT, T0 + HOUR_MS)).tokensLastHour, 0);
    const ttl = Number(await redis.command("PTTL", redisUsageKeys(AGENT, T0, keyPrefix).tokens));
    assert.ok(ttl > HOUR_MS - 60_000 && ttl <= HOUR_MS, `tokens key TTL ${ttl} ms`);

    // 150 ms before the end of an hour (by the caller's clock), the keys live 150 ms: then they are gone.
    const late = T0 + 2 * HOUR_MS - 150;
    await s.addTokens(OTHER, 500, late);
    assert.deepEqual(await s.admit(OTHER, late), { callsLastMinute: 1, tokensLastHour: 500 });
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.deepEqual(await s.read(OTHER, late), { callsLastMinute: 0, tokensLastHour: 0 });
    assert.equal(await redis.command("EXISTS", redisUsageKeys(OTHER, late, keyPrefix).tokens), 0);
  });

  it("admits in one round trip: one EVALSHA, nothing else (counted in the client and in Redis' commandstats)", async () => {
    // Counted in the client: a client of our own, every command it sends.
    const client = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false, commandTimeout: 1_000 });
    await client.connect();
    const sent: string[] = [];
    const send = client.sendCommand.bind(client);
    client.sendCommand = ((command: { name: string }, stream?: unknown) => {
      sent.push(command.name);
      return send(command as never, stream as never);
    }) as typeof client.sendCommand;
    try {
      const s = redisUsageStore({ client, keyPrefix: prefix() });
      await redis.command("SCRIPT", "FLUSH");
      await s.admit(AGENT, T0);
      // Once after a script flush: EVALSHA fails, EVAL runs (and loads) it; the other scripts are loaded without waiting.
      assert.deepEqual(sent, ["evalsha", "eval", "script", "script", "script"]);
      sent.length = 0;
      for (let i = 0; i < 50; i++) await s.admit(AGENT, T0);
      assert.deepEqual(sent, Array(50).fill("evalsha"), "then exactly one command per admit");
      sent.length = 0;
      await s.addTokens(AGENT, 10, T0);
      assert.deepEqual(sent, ["evalsha"], "adding tokens: one more, after the call");
      await s.close();
      assert.equal(client.status, "ready", "close() leaves a client it was given open");
    } finally {
      client.disconnect();
    }

    // Counted in Redis: the store's own connection (which loads its scripts when it connects).
    const s = store();
    await s.connect();
    await redis.command("SCRIPT", "FLUSH");
    await s.admit(AGENT, T0); // EVALSHA fails, EVAL loads the script again
    await new Promise((resolve) => setTimeout(resolve, 20));
    await redis.command("CONFIG", "RESETSTAT");
    const n = 40;
    for (let i = 0; i < n; i++) await s.admit(AGENT, T0);
    const stats = await redis.commandStats();
    delete stats["config|resetstat"];
    delete stats["info"];
    // The top-level commands are the EVALSHAs; the rest ran inside the script, in the same round trip.
    assert.deepEqual(stats, { evalsha: n, incr: n, get: n, hgetall: n });
  });

  it("loads its scripts again when it reconnects: the first call after a Redis restart is one round trip too", async () => {
    const s = store();
    await s.admit(AGENT, T0);
    await redis.stop();
    await redis.start();
    await eventually(() => s.admit(AGENT, T0), 5_000);
    await redis.command("CONFIG", "RESETSTAT");
    await s.admit(AGENT, T0);
    const stats = await redis.commandStats();
    assert.equal(stats["evalsha"], 1);
    assert.equal(stats["eval"], undefined);
  });

  it("shares the kill switch between stores at once: every admit reads it", async () => {
    const keyPrefix = prefix();
    const a = store({ keyPrefix });
    const b = store({ keyPrefix });
    await a.admit(AGENT, T0);
    await a.kill(AGENT, "INC-4711: runaway tool loop");
    const seen = await b.admit(AGENT, T0);
    assert.equal(seen.callsLastMinute, 2);
    assert.equal(seen.killed?.reason, "INC-4711: runaway tool loop");
    assert.match(seen.killed?.at ?? "", /^\d{4}-\d\d-\d\dT/);
    assert.equal((await b.admit(OTHER, T0)).killed, undefined, "per identity");
    await b.revive(AGENT);
    assert.equal((await a.admit(AGENT, T0)).killed, undefined);

    // An operator with redis-cli, without the library: a hash with a reason (control characters made safe).
    const { killed } = redisUsageKeys(AGENT, T0, keyPrefix);
    await redis.command("HSET", killed, "reason", "by hand\u0007");
    assert.deepEqual((await a.admit(AGENT, T0)).killed, { reason: "by hand ", at: "" });
    // A key of the wrong type cannot be read: the admit fails (and so fails closed), it never passes.
    await redis.command("DEL", killed);
    await redis.command("SET", killed, "1");
    assert.match((await rejection(a.admit(AGENT, T0))).message, /WRONGTYPE/);
    await redis.command("DEL", killed);
  });

  it("keeps key prefixes apart", async () => {
    const a = store();
    const b = store();
    await a.admit(AGENT, T0);
    await a.kill(AGENT, "stop");
    assert.deepEqual(await b.admit(AGENT, T0), { callsLastMinute: 1, tokensLastHour: 0 });
  });

  it("shares one budget between two processes: each call counted once, and past the limit for both", async () => {
    const keyPrefix = prefix();
    const calls = 150;
    const limit = 200;
    const worker = () =>
      spawn(
        process.execPath,
        ["--import", "tsx", join(here, "fixtures", "redis-budget-worker.ts"), redis.url, AGENT, String(calls), String(limit), keyPrefix, String(T0)],
        { cwd: join(here, ".."), stdio: ["pipe", "pipe", "pipe"] },
      );
    const workers = [worker(), worker()];
    const outputs = workers.map((child) => lines(child));
    try {
      await Promise.all(outputs.map((next) => next())); // {"ready":true}
      for (const child of workers) child.stdin.write("go\n");
      const results = (await Promise.all(outputs.map((next) => next()))) as { seen: number[]; over: number }[];
      const seen = results.flatMap((r) => r.seen).sort((x, y) => x - y);
      // Every call got its own count, 1 … 2N: none lost, none counted twice, across processes.
      assert.deepEqual(seen, Array.from({ length: 2 * calls }, (_, i) => i + 1));
      // Exactly the calls past the shared limit were over it, however the two interleaved.
      assert.equal(results[0]!.over + results[1]!.over, 2 * calls - limit);
      for (const child of workers) child.stdin.write("read\n");
      const reads = (await Promise.all(outputs.map((next) => next()))) as { read: number }[];
      assert.deepEqual(reads, [{ read: 2 * calls }, { read: 2 * calls }], "both see the fleet's total");
    } finally {
      for (const child of workers) child.kill();
    }
  });

  it("fails fast with a UsageStoreError when Redis is unreachable, without the URL's credentials", async () => {
    const s = store({ url: "redis://warden:s3cret-pass@127.0.0.1:1/2", timeoutMs: 2_000 });
    for (let i = 0; i < 2; i++) {
      const started = performance.now();
      const error = await rejection(s.admit(AGENT, T0));
      const took = performance.now() - started;
      assert.ok(took < 500, `took ${took.toFixed(0)} ms`);
      assert.equal(error.code, "ERR_USAGE_STORE_UNAVAILABLE");
      assert.equal(error.store, "redis");
      assert.equal(error.operation, "admit");
      assert.match(error.message, /^usage store "redis" \(redis:\/\/127\.0\.0\.1:1\/2\) unavailable during admit: .*ECONNREFUSED/);
      assert.doesNotMatch(`${error.message} ${String(error.cause)}`, /s3cret|warden@/);
    }
    const admission = await admitCall({ store: s }, AGENT, T0);
    assert.equal(admission.outcome, "unavailable", "fails closed by default");
    assert.equal((await admitCall({ store: s, onStoreError: "allow-without-usage" }, AGENT, T0)).outcome, "unmetered");
  });

  it("times out instead of hanging when Redis stops answering", async () => {
    const s = store({ timeoutMs: 200 });
    await s.admit(AGENT, T0);
    redis.pause();
    try {
      const started = performance.now();
      const error = await rejection(s.admit(AGENT, T0));
      const took = performance.now() - started;
      assert.ok(took >= 190 && took < 600, `took ${took.toFixed(0)} ms`);
      assert.match(error.message, /timed out after 200 ms/);
    } finally {
      redis.resume();
    }
    await eventually(() => s.admit(AGENT, T0), 5_000);
  });

  it("fails while Redis is stopped mid-run, recovers when it is back, and keeps a killed workload denied meanwhile", async () => {
    const s = store({ timeoutMs: 300 });
    assert.equal((await s.admit(AGENT, T0)).callsLastMinute, 1);
    await s.kill(OTHER, "INC-9: exfiltration suspected");
    assert.ok((await s.admit(OTHER, T0)).killed);
    await redis.stop();
    try {
      const error = await rejection(s.admit(AGENT, T0));
      assert.match(error.message, /not connected/);
      assert.equal(error.lastKnownKill, undefined);
      // The killed workload stays denied, even with allow-without-usage.
      const admission = await admitCall({ store: s, onStoreError: "allow-without-usage" }, OTHER, T0);
      assert.equal(admission.outcome, "killed");
      assert.equal(admission.outcome === "killed" && admission.killed.reason, "INC-9: exfiltration suspected");
      await rejection(s.addTokens(AGENT, 10, T0));
    } finally {
      await redis.start();
    }
    // Back (empty: nothing is persisted in this test server), within the reconnect back-off.
    const usage = await eventually(() => s.admit(AGENT, T0), 5_000);
    assert.deepEqual(usage, { callsLastMinute: 1, tokensLastHour: 0 });
  });

  it("refuses malformed options without repeating the URL, and fails every operation once closed", async () => {
    assert.throws(() => redisUsageStore({}), /give exactly one of url and client/);
    assert.throws(() => redisUsageStore({ url: "http://user:hunter22@example.com" }), (error: Error) => {
      assert.ok(error instanceof ConfigurationError);
      assert.doesNotMatch(error.message, /hunter22/);
      return /redis:\/\//.test(error.message);
    });
    assert.throws(() => redisUsageStore({ url: redis.url, keyPrefix: "{x}" }), /hash slot/);
    assert.throws(() => redisUsageStore({ url: redis.url, timeoutMs: 0 }), ConfigurationError);
    const s = store();
    await s.admit(AGENT, T0);
    await s.close();
    assert.match((await rejection(s.admit(AGENT, T0))).message, /is closed/);
    await s.close();
  });
});

/** Reads a child's stdout one JSON line at a time. */
function lines(child: ChildProcessWithoutNullStreams): () => Promise<unknown> {
  const queue: unknown[] = [];
  const waiting: ((value: unknown) => void)[] = [];
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout }).on("line", (line) => {
    const value = JSON.parse(line) as unknown;
    const next = waiting.shift();
    if (next) next(value);
    else queue.push(value);
  });
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`worker exited (${code}) early: ${stderr}`))),
  );
  exited.catch(() => undefined);
  return () => (queue.length > 0 ? Promise.resolve(queue.shift()) : Promise.race([new Promise((resolve) => waiting.push(resolve)), exited]));
}
