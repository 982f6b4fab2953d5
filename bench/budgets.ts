/**
 * Budget checks with Redis: how many round trips they add to a governed call, and what they cost.
 * Target: **at most one round trip on the decision path** (the admit that counts the call and
 * reads its usage and kill switch); the response's tokens are added after the call, off it.
 *
 *   npx tsx bench/budgets.ts [--quick] [--url redis://host:port]
 *
 * Without `--url` it starts a redis-server of its own on a free loopback port (it must be on PATH).
 * Round trips are counted two ways: in the client (every command sent through a client configured
 * as the store configures its own; commands sent one after another, so each is a round trip —
 * a count of commands is an upper bound on round trips), and in Redis (`INFO commandstats`: the
 * top-level commands are the EVALSHA / EVAL / SCRIPT calls; INCR, GET, HGETALL ... run inside the
 * script, in the same round trip).
 * @module
 */
import { pathToFileURL } from "node:url";
import { Redis } from "ioredis";
import { redisUsageStore } from "../src/budgets/redis-store.js";
import { admitCall, recordTokens, type UsageOptions } from "../src/budgets/usage-context.js";
import { memoryUsageStore } from "../src/budgets/usage-store.js";
import { command, redisTestServer } from "../test/support/redis.js";
import { formatMs, summarize, type Summary } from "./stats.js";

/** One governed call's budget work: what the bench measures, and how it marks its two phases. */
export type BudgetCall = (usage: UsageOptions, identityId: string, phase: (name: "decided" | "done") => void) => Promise<void>;

/**
 * A governed call's budget work without the model call: the admission awaited before the decision,
 * then the response's tokens recorded (not awaited) after it. Pass a real governed call instead once
 * the middleware calls the store, marking `phase("decided")` when the call was decided.
 */
export const simulatedCall: BudgetCall = async (usage, identityId, phase) => {
  const admission = await admitCall(usage, identityId, Date.now());
  if (admission.outcome !== "admitted") throw new Error(`not admitted: ${admission.outcome}`);
  phase("decided");
  recordTokens(usage, identityId, 250, Date.now());
  // Let the fire-and-forget write leave before the next call, so each is counted to its own call.
  await new Promise((resolve) => setTimeout(resolve, 1));
  phase("done");
};

/** What {@link measureBudgetRoundTrips} measured. */
export interface BudgetRoundTrips {
  readonly calls: number;
  /** Commands sent before each call was decided, per call (the target: ≤ 1). */
  readonly decisionPathRoundTrips: number;
  /** Commands sent for each call in all, per call (the tokens are one more, after the decision). */
  readonly totalRoundTrips: number;
  /** Redis' own count of top-level commands (EVALSHA, EVAL, SCRIPT ...), per call. */
  readonly serverRoundTrips: number;
  /** The whole of `INFO commandstats` over the run (script-internal commands included). */
  readonly serverCommands: Readonly<Record<string, number>>;
  /** The admission's latency with Redis on this host's loopback, and with the in-memory store. */
  readonly redisAdmit: Summary;
  readonly memoryAdmit: Summary;
  readonly meetsTarget: boolean;
}

/**
 * Runs `calls` governed calls' budget work against Redis (warmed up first) and counts their
 * round trips.
 */
export async function measureBudgetRoundTrips(options: { url?: string; calls?: number; call?: BudgetCall } = {}): Promise<BudgetRoundTrips> {
  const calls = options.calls ?? 2_000;
  const call = options.call ?? simulatedCall;
  const server = options.url === undefined ? redisTestServer() : undefined;
  if (server) await server.start();
  const url = options.url ?? (server as NonNullable<typeof server>).url;
  const port = Number(new URL(url).port || 6379);
  // Configured as redisUsageStore configures the connection it opens itself.
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 500,
    commandTimeout: 500,
  });
  let sent = 0;
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((cmd: unknown, stream?: unknown) => {
    sent++;
    return send(cmd as never, stream as never);
  }) as typeof client.sendCommand;
  const store = redisUsageStore({ client, keyPrefix: `bench-${process.pid}:` });
  const usage: UsageOptions = { store };
  const identity = "spiffe://bench.test/agents/budget";
  try {
    await client.connect();
    for (let i = 0; i < Math.min(200, calls); i++) await call(usage, `${identity}/warm-up`, () => undefined);

    await command(port, ["CONFIG", "RESETSTAT"]);
    sent = 0;
    let decisionPath = 0;
    const redisAdmit: number[] = [];
    for (let i = 0; i < calls; i++) {
      const before = sent;
      const start = performance.now();
      await call(usage, identity, (name) => {
        if (name !== "decided") return;
        redisAdmit.push(performance.now() - start);
        decisionPath += sent - before;
      });
    }
    const total = sent;
    const serverCommands = await serverStats(port);
    const topLevel = Object.entries(serverCommands)
      .filter(([name]) => name === "evalsha" || name === "eval" || name.startsWith("script"))
      .reduce((sum, [, n]) => sum + n, 0);

    const memory = memoryUsageStore();
    const memoryAdmit: number[] = [];
    for (let i = 0; i < calls; i++) {
      const start = performance.now();
      await admitCall({ store: memory }, identity, Date.now());
      memoryAdmit.push(performance.now() - start);
    }
    const decisionPathRoundTrips = decisionPath / calls;
    return {
      calls,
      decisionPathRoundTrips,
      totalRoundTrips: total / calls,
      serverRoundTrips: topLevel / calls,
      serverCommands,
      redisAdmit: summarize(redisAdmit),
      memoryAdmit: summarize(memoryAdmit),
      meetsTarget: decisionPathRoundTrips <= 1 && topLevel / calls <= 2,
    };
  } finally {
    await store.close();
    client.disconnect();
    await server?.stop();
  }
}

async function serverStats(port: number): Promise<Record<string, number>> {
  const info = String(await command(port, ["INFO", "commandstats"]));
  const stats: Record<string, number> = {};
  for (const line of info.split(/\r?\n/)) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (match && match[1] !== "info" && match[1] !== "config|resetstat") stats[match[1] as string] = Number(match[2]);
  }
  return stats;
}

/** Prints the measurement (the figures are reported; the target is shown, not asserted). */
export function report(result: BudgetRoundTrips): string {
  const f = (n: number) => n.toFixed(2);
  return [
    `Budget checks with Redis (${result.calls} calls, loopback):`,
    `  round trips on the decision path per call: ${f(result.decisionPathRoundTrips)} (target ≤ 1: ${result.decisionPathRoundTrips <= 1 ? "met" : "MISSED"})`,
    `  round trips per call in all: ${f(result.totalRoundTrips)} (client) / ${f(result.serverRoundTrips)} (Redis commandstats: ${Object.entries(result.serverCommands)
      .map(([name, n]) => `${name} ${n}`)
      .join(", ")})`,
    `  admit: Redis median ${formatMs(result.redisAdmit.median)}, p95 ${formatMs(result.redisAdmit.p95)}; memory median ${formatMs(result.memoryAdmit.median)}, p95 ${formatMs(result.memoryAdmit.p95)}`,
  ].join("\n");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const at = process.argv.indexOf("--url");
  const url = at > 0 ? process.argv[at + 1] : undefined;
  const result = await measureBudgetRoundTrips({ calls: process.argv.includes("--quick") ? 300 : 3_000, ...(url !== undefined && { url }) });
  console.log(report(result));
}
