/**
 * The decision log's cost: governed Converse calls whose decision records go to a JSON Lines file
 * sink (hash-chained, batched by the async writer), against the same governed calls with no
 * record listener at all (so no record is even built), interleaved call by call over an
 * in-memory Bedrock. The ratio of the medians is the number; its target is ≤ 1.05.
 *
 * What the "with log" side pays: building each record (`decisionRecord`), `write()` (queueing
 * it), and, off the call path but on the same thread, the writer (serializing, chaining, SHA-256,
 * one `writev` per batch, every 100 ms). The writer's batches land among both variants' calls
 * alike; they show in the p95 more than in the median, as they would in an application.
 *
 * Called from `bench/run.ts`; also runs on its own:
 *
 *   npx tsx bench/decision-log.ts           (3,000 rounds)
 *   npx tsx bench/decision-log.ts --quick   (300 rounds)
 * @module
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { BedrockRuntime, ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
import type { Governance } from "../src/index.js";
import { library } from "./library.js";
import { CREDENTIALS, isolateFromAwsConfig, MemoryBedrock, silenceNodeVersionWarning } from "./memory-bedrock.js";
import { BENCH_IDENTITY, CONVERSE_INPUT, ENVIRONMENT, generatePolicies, REGION } from "./policies.js";
import { formatMs, interleave, median, percentile, warmUp, type Measure } from "./stats.js";

const { createGovernance, createJsonlSink, GovernedBedrockRuntimeClient, runAs, verifyDecisionLog } = library;
type GovernedBedrockRuntimeClient = InstanceType<typeof GovernedBedrockRuntimeClient>;

/**
 * Options of {@link benchDecisionLog}.
 *
 * @example
 * ```ts
 * const options: DecisionLogBenchOptions = { warmUp: 200, rounds: 3000, policies: generatePolicies(10) };
 * ```
 */
export interface DecisionLogBenchOptions {
  /** Interleaved rounds run and thrown away first (JIT, caches). */
  readonly warmUp: number;
  /** Interleaved rounds measured. */
  readonly rounds: number;
  /** The Cedar policies both governances load (default: the suite's 10 generated policies). */
  readonly policies?: string;
  /** Where the log is written (default: a new temporary directory, removed afterwards). */
  readonly directory?: string;
  /** Passed to the sink (default: the sink's own defaults, 100 ms and 64 MiB). */
  readonly flushIntervalMs?: number;
  readonly maxBytes?: number;
}

/**
 * What {@link benchDecisionLog} measured.
 *
 * @example
 * ```ts
 * const r: DecisionLogBenchResult = await benchDecisionLog({ warmUp: 30, rounds: 300 });
 * console.log(r.ratio <= r.target ? "PASS" : "FAIL");
 * ```
 */
export interface DecisionLogBenchResult {
  /** Per-call milliseconds, governed with the file log. */
  readonly withLog: number[];
  /** Per-call milliseconds, governed without any record listener. */
  readonly without: number[];
  /** Per-call milliseconds, governed with a listener that does nothing (records built, not logged): a diagnostic. */
  readonly recordsOnly: number[];
  /** median(withLog) / median(without). */
  readonly ratio: number;
  /** 1.05. */
  readonly target: number;
  /** Lines in the log after close: one per governed call of the "with log" side, warm-up included. */
  readonly lines: number;
  /** Files the log was rotated into (1 when it never rotated). */
  readonly files: number;
  /** Bytes written, all files. */
  readonly bytes: number;
  /** A line for the report's notes. */
  readonly note: string;
}

/**
 * Runs the decision-log benchmark. Throws when what was measured is not what was meant: a call
 * that was not allowed, a log whose line count is not the number of calls, or a log that does
 * not verify.
 *
 * @example
 * ```ts
 * // in bench/run.ts
 * const log = await benchDecisionLog({ warmUp: CONFIG.warmUp, rounds: CONFIG.rounds, policies: POLICIES_10 });
 * addRow("Converse per call, with a JSON Lines decision log vs without", log.withLog, log.without, log.target);
 * notes.push(log.note);
 * ```
 */
export async function benchDecisionLog(options: DecisionLogBenchOptions): Promise<DecisionLogBenchResult> {
  const policies = options.policies ?? generatePolicies(10);
  const directory = options.directory ?? (await mkdtemp(join(tmpdir(), "warden-bench-log-")));
  const path = join(directory, "decisions.jsonl");
  const sink = createJsonlSink({
    path,
    ...(options.flushIntervalMs !== undefined && { flushIntervalMs: options.flushIntervalMs }),
    ...(options.maxBytes !== undefined && { maxBytes: options.maxBytes }),
  });
  try {
    const logged = createGovernance({ environment: ENVIRONMENT, policies, onDecision: (record) => sink.write(record) });
    const plain = createGovernance({ environment: ENVIRONMENT, policies });
    // A diagnostic third variant: records built and handed to a listener that does nothing, to split the cost between building records and logging them.
    const recordsOnly = createGovernance({ environment: ENVIRONMENT, policies, onDecision: () => undefined });
    const variants = { withLog: converse(client(logged)), without: converse(client(plain)), recordsOnly: converse(client(recordsOnly)) };
    await warmUp(variants, options.warmUp);
    const samples = await interleave(variants, options.rounds);
    await sink.close();
    if (sink.failure || sink.dropped > 0) throw new Error(`the decision log failed during the benchmark: ${sink.failure?.message ?? `${sink.dropped} dropped`}`);
    const verification = await verifyDecisionLog(path);
    const calls = options.warmUp + options.rounds;
    const buildMs = median(samples.recordsOnly) - median(samples.without);
    if (!verification.ok || verification.records !== calls) {
      throw new Error(`the benchmark's decision log does not hold one verified line per call (${calls}): ${JSON.stringify({ ...verification, files: verification.files.length })}`);
    }
    let bytes = 0;
    for (const file of verification.files) bytes += (await stat(file)).size;
    const ratio = median(samples.withLog) / median(samples.without);
    return {
      withLog: samples.withLog,
      without: samples.without,
      recordsOnly: samples.recordsOnly,
      ratio,
      target: 1.05,
      lines: verification.records,
      files: verification.files.length,
      bytes,
      note:
        `Decision log (JSON Lines file sink, hash-chained, default batching): ${formatMs(median(samples.withLog) - median(samples.without))} per call over the same governed call without a record listener ` +
        `(record built + write() + the writer's serialization, chaining, SHA-256 and batched writev, which runs among the measured calls; p95 ${formatMs(percentile(samples.withLog, 95))} vs ${formatMs(percentile(samples.without, 95))}); ` +
        `of which building the record (a no-op listener vs none) ${formatMs(buildMs)}; ` +
        `${verification.records} lines, ${(bytes / verification.records).toFixed(0)} bytes per line, ${verification.files.length} file(s), verified.`,
    };
  } finally {
    await sink.close().catch(() => undefined);
    if (options.directory === undefined) await rm(directory, { recursive: true, force: true });
  }
}

function client(governance: Governance): GovernedBedrockRuntimeClient {
  return new GovernedBedrockRuntimeClient({ region: REGION, credentials: CREDENTIALS, requestHandler: new MemoryBedrock(), governance });
}

/** One governed Converse call, timed from before `runAs` to the parsed reply. */
function converse(target: BedrockRuntime): Measure {
  return async () => {
    const command = new ConverseCommand(CONVERSE_INPUT);
    const start = performance.now();
    const reply = await runAs(BENCH_IDENTITY, () => target.send(command));
    const elapsed = performance.now() - start;
    if (reply.stopReason !== "end_turn") throw new Error(`unexpected Converse reply: ${JSON.stringify(reply)}`);
    return elapsed;
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  silenceNodeVersionWarning();
  isolateFromAwsConfig();
  const quick = process.argv.includes("--quick");
  benchDecisionLog({ warmUp: quick ? 30 : 200, rounds: quick ? 300 : 3000 })
    .then((r) => {
      console.log(
        `Converse per call with a JSON Lines decision log: ${formatMs(median(r.withLog))} vs ${formatMs(median(r.without))} without → ` +
          `${r.ratio.toFixed(3)}× (target ≤ ${r.target.toFixed(2)}×) ${r.ratio <= r.target ? "PASS" : "FAIL"}`,
      );
      console.log(`  - ${r.note}`);
    })
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
}
