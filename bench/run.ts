/**
 * The benchmark suite: the governed client against the bare SDK client, in one process,
 * interleaved call by call, over an in-memory Bedrock (no network, no disk, static credentials).
 * Prints medians, p95 and governed/bare ratios, each against its target. Targets are reported,
 * not asserted: the exit code is non-zero only when the benchmark itself crashes.
 *
 *   npx tsx bench/run.ts           full run (~1-2 minutes)
 *   npx tsx bench/run.ts --quick   smoke run for CI (< 20 s)
 * @module
 */
import { cpus, loadavg } from "node:os";
import { BedrockRuntime, ConverseCommand, ConverseStreamCommand, type ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime";
import { AccessDeniedError, createGovernance, GovernedBedrockRuntimeClient, NoIdentityError, runAs, type Governance, type WorkloadIdentity } from "../src/index.js";
import { MemoryBedrock } from "./memory-bedrock.js";
import { BENCH_IDENTITY, BLOCKED_IDENTITY, ENVIRONMENT, generatePolicies, MODEL_ID, REGION } from "./policies.js";
import { formatMs, interleave, median, summarize, timed, timedSync, warmUp, type Measure, type Summary } from "./stats.js";

// The SDK warns once that it will require Node >= 22: noise here. Every other warning still prints.
process.removeAllListeners("warning");
process.on("warning", (warning) => {
  if (warning.name === "NodeVersionSupportWarning" || warning.message.includes("NodeVersionSupportWarning")) return;
  console.error(`(warning) ${warning.name}: ${warning.message}`);
});

const QUICK = process.argv.includes("--quick");
const CONFIG = QUICK
  ? { warmUp: 30, rounds: 150, rounds1000: 60, streamRounds: 150, decisionRounds: 120, firstCallReps: 3, governance1000Reps: 1 }
  : { warmUp: 200, rounds: 2000, rounds1000: 600, streamRounds: 2000, decisionRounds: 1000, firstCallReps: 9, governance1000Reps: 3 };

const CREDENTIALS = { accessKeyId: "AKIDBENCHMARKEXAMPLE", secretAccessKey: "bench/secret/key/not/real/EXAMPLEKEY" };
const CONVERSE_INPUT: ConverseCommandInput = {
  modelId: MODEL_ID,
  system: [{ text: "You are the invoice assistant. Answer with the total only." }],
  messages: [{ role: "user", content: [{ text: "What is the total of invoice 4711?" }] }],
  inferenceConfig: { maxTokens: 512, temperature: 0 },
};
const POLICIES_10 = generatePolicies(10);
const POLICIES_1000 = generatePolicies(1000);

function bareClient(handler = new MemoryBedrock()): BedrockRuntime {
  return new BedrockRuntime({ region: REGION, credentials: CREDENTIALS, requestHandler: handler });
}

function governedClient(governance: Governance, handler = new MemoryBedrock()): GovernedBedrockRuntimeClient {
  return new GovernedBedrockRuntimeClient({ region: REGION, credentials: CREDENTIALS, requestHandler: handler, governance });
}

function governance(policies: string): Governance {
  return createGovernance({ environment: ENVIRONMENT, policies });
}

// ---- the measured calls ---------------------------------------------------------------------

/** One Converse call, timed from before `runAs` (when there is an identity) to the parsed reply. */
function converseCall(client: BedrockRuntime, identity?: WorkloadIdentity): Measure {
  return async () => {
    const command = new ConverseCommand(CONVERSE_INPUT);
    const start = performance.now();
    const reply = identity ? await runAs(identity, () => client.send(command)) : await client.send(command);
    const elapsed = performance.now() - start;
    if (reply.stopReason !== "end_turn") throw new Error(`unexpected Converse reply: ${JSON.stringify(reply)}`);
    return elapsed;
  };
}

/** One ConverseStream call: the time from `send` to the first event, then the stream is drained (untimed). */
function streamCall(client: BedrockRuntime, identity?: WorkloadIdentity): Measure {
  return async () => {
    const command = new ConverseStreamCommand(CONVERSE_INPUT);
    const run = async (start: number) => {
      const output = await client.send(command);
      const iterator = output.stream![Symbol.asyncIterator]();
      const first = await iterator.next();
      const elapsed = performance.now() - start;
      if (first.done || !first.value.messageStart) throw new Error("the stream's first event is not messageStart");
      let events = 1;
      while (!(await iterator.next()).done) events++;
      if (events !== 7) throw new Error(`expected 7 stream events, got ${events}`);
      return elapsed;
    };
    const start = performance.now();
    return identity ? runAs(identity, () => run(start)) : run(start);
  };
}

/** One call that must be denied before anything is sent. */
function deniedCall(client: GovernedBedrockRuntimeClient, handler: MemoryBedrock, expected: new (...args: never[]) => Error, identity?: WorkloadIdentity): Measure {
  return async () => {
    const command = new ConverseCommand(CONVERSE_INPUT);
    const before = handler.requests;
    const start = performance.now();
    try {
      await (identity ? runAs(identity, () => client.send(command)) : client.send(command));
    } catch (error) {
      const elapsed = performance.now() - start;
      if (!(error instanceof expected)) throw error;
      if (handler.requests !== before) throw new Error("a denied call reached the request handler");
      return elapsed;
    }
    throw new Error("a call that should be denied was allowed");
  };
}

// ---- the report -----------------------------------------------------------------------------

interface Row {
  readonly metric: string;
  readonly governed?: Summary;
  readonly bare?: Summary;
  /** governed / bare (or first / steady), the number the target is about. */
  readonly ratio?: number;
  readonly target?: string;
  readonly pass?: boolean;
  readonly note?: string;
}

const rows: Row[] = [];
const notes: string[] = [];

function ratioRow(metric: string, governed: number[], bare: number[], max?: number, note?: string): Row {
  const g = summarize(governed);
  const b = summarize(bare);
  const ratio = g.median / b.median;
  const row: Row = {
    metric,
    governed: g,
    bare: b,
    ratio,
    ...(max !== undefined && { target: `≤ ${max.toFixed(2)}`, pass: ratio <= max }),
    ...(note !== undefined && { note }),
  };
  rows.push(row);
  return row;
}

function printTable(): void {
  const header = ["metric", "governed median", "governed p95", "bare median", "bare p95", "ratio", "target", "result"];
  const body = rows.map((row) => [
    row.metric,
    row.governed ? formatMs(row.governed.median) : "",
    row.governed ? formatMs(row.governed.p95) : "",
    row.bare ? formatMs(row.bare.median) : "",
    row.bare ? formatMs(row.bare.p95) : "",
    row.ratio !== undefined ? `${row.ratio.toFixed(2)}×` : "",
    row.target ?? "(report)",
    row.pass === undefined ? "" : row.pass ? "PASS" : "FAIL",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log();
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of body) console.log(line(r));
  const withNotes = rows.filter((r) => r.note);
  if (withNotes.length > 0 || notes.length > 0) console.log();
  for (const r of withNotes) console.log(`  ${r.metric}: ${r.note}`);
  for (const n of notes) console.log(`  ${n}`);
}

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

// ---- the sections ---------------------------------------------------------------------------

/**
 * 3. First call after construction. Runs first, so that its first repetition sees a cold process
 * (wasm not yet compiled, SDK code not yet optimized); the later ones each build a new governance
 * and a new client in a process that has made a handful of calls.
 */
async function firstCall(): Promise<{ firstCalls: number[]; bareFirstCalls: number[]; createGovernance10: number[] }> {
  progress("first call after construction ...");
  const cold = await firstGovernedCall(POLICIES_10);
  notes.push(
    `cold process: createGovernance(10) ${formatMs(cold.create)} (includes the lazy wasm compile), new client ${formatMs(cold.client)}, ` +
      `first governed call ${formatMs(cold.first)}, second ${formatMs(cold.second)} (not in the medians below)`,
  );
  const firstCalls: number[] = [];
  const secondCalls: number[] = [];
  const bareFirstCalls: number[] = [];
  const createGovernance10: number[] = [];
  for (let i = 0; i < CONFIG.firstCallReps; i++) {
    // A bare client's first call, for comparison: the SDK has first-call costs of its own.
    const bare = bareClient();
    bareFirstCalls.push(await converseCall(bare)());
    const run = await firstGovernedCall(POLICIES_10);
    firstCalls.push(run.first);
    secondCalls.push(run.second);
    createGovernance10.push(run.create);
  }
  notes.push(
    `first call (median of ${CONFIG.firstCallReps}, each a new governance + client): governed ${formatMs(median(firstCalls))}, ` +
      `its second call ${formatMs(median(secondCalls))}; a new bare client's first call ${formatMs(median(bareFirstCalls))}`,
  );
  return { firstCalls, bareFirstCalls, createGovernance10 };
}

async function firstGovernedCall(policies: string): Promise<{ create: number; client: number; first: number; second: number }> {
  const [g, create] = timedSync(() => governance(policies));
  const [client, clientMs] = timedSync(() => governedClient(g));
  const first = await converseCall(client, BENCH_IDENTITY)();
  const second = await converseCall(client, BENCH_IDENTITY)();
  return { create, client: clientMs, first, second };
}

/** 1. Converse per-call latency, governed (inside runAs) vs bare. */
async function converse(label: string, g: Governance, rounds: number, max?: number, note?: string): Promise<Row> {
  progress(`${label}: warm-up ${CONFIG.warmUp}, then ${rounds} interleaved rounds ...`);
  const variants = { governed: converseCall(governedClient(g), BENCH_IDENTITY), bare: converseCall(bareClient()) };
  await warmUp(variants, CONFIG.warmUp);
  const samples = await interleave(variants, rounds);
  return ratioRow(label, samples.governed, samples.bare, max, note);
}

/** 2. ConverseStream time to first event. */
async function converseStream(g: Governance): Promise<Row> {
  progress(`ConverseStream TTFE: warm-up ${CONFIG.warmUp}, then ${CONFIG.streamRounds} interleaved rounds ...`);
  const variants = { governed: streamCall(governedClient(g), BENCH_IDENTITY), bare: streamCall(bareClient()) };
  await warmUp(variants, CONFIG.warmUp);
  const samples = await interleave(variants, CONFIG.streamRounds);
  return ratioRow("ConverseStream time to first event, 10 policies", samples.governed, samples.bare, 1.05);
}

/** 4. The decision's cost: calls denied before any request vs allowed calls vs bare calls. */
async function decisionCost(g: Governance): Promise<void> {
  progress(`decision cost: warm-up ${CONFIG.warmUp}, then ${CONFIG.decisionRounds} interleaved rounds ...`);
  const handler = new MemoryBedrock();
  const client = governedClient(g, handler);
  const variants = {
    allowed: converseCall(client, BENCH_IDENTITY),
    deniedByPolicy: deniedCall(client, handler, AccessDeniedError, BLOCKED_IDENTITY),
    deniedNoIdentity: deniedCall(client, handler, NoIdentityError),
    bare: converseCall(bareClient()),
  };
  await warmUp(variants, CONFIG.warmUp);
  const s = await interleave(variants, CONFIG.decisionRounds);
  const allowed = summarize(s.allowed);
  const byPolicy = summarize(s.deniedByPolicy);
  const noIdentity = summarize(s.deniedNoIdentity);
  const bare = summarize(s.bare);
  rows.push({ metric: "denied by policy (Cedar ran, nothing sent) vs bare call", governed: byPolicy, bare, ratio: byPolicy.median / bare.median });
  rows.push({ metric: "denied, no identity (no Cedar) vs bare call", governed: noIdentity, bare, ratio: noIdentity.median / bare.median });
  notes.push(
    `decision cost, 10 policies (medians): allowed governed ${formatMs(allowed.median)}, bare ${formatMs(bare.median)} ` +
      `→ governance adds ${formatMs(allowed.median - bare.median)} per call; a policy denial takes ${formatMs(byPolicy.median)} end to end, ` +
      `a no-identity denial ${formatMs(noIdentity.median)} → request building + Cedar ≈ ${formatMs(byPolicy.median - noIdentity.median)}`,
  );
}

// ---- main -----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  console.log(
    `bedrock-warden benchmark${QUICK ? " (--quick)" : ""}: Node ${process.version}, ${cpus().length} CPUs, ` +
      `load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}; in-memory Bedrock, no tracer provider registered (no-op spans)`,
  );

  const first = await firstCall();

  progress("createGovernance at 1,000 policies ...");
  const create1000: number[] = [];
  let g1000: Governance | undefined;
  for (let i = 0; i < CONFIG.governance1000Reps; i++) {
    const [g, ms] = timedSync(() => governance(POLICIES_1000));
    create1000.push(ms);
    g1000 = g;
  }

  const g10 = governance(POLICIES_10);
  const steady = await converse("Converse per call, 10 policies", g10, CONFIG.rounds, 1.25);
  await converse("Converse per call, 1,000 policies", g1000!, CONFIG.rounds1000, undefined, "reported, no target");
  await converseStream(g10);
  await decisionCost(g10);

  const firstCalls = summarize(first.firstCalls);
  const ratio = firstCalls.median / steady.governed!.median;
  rows.push({
    metric: "first governed call after construction vs steady governed call",
    governed: firstCalls,
    bare: summarize(first.bareFirstCalls),
    ratio,
    target: "≤ 3.00",
    pass: ratio <= 3,
    note: `ratio = median first governed call / steady governed median (${formatMs(steady.governed!.median)}); "bare" columns: a new bare client's first call`,
  });
  rows.push({ metric: "createGovernance, 10 policies (load+validate+preparse+warm-up)", governed: summarize(first.createGovernance10) });
  rows.push({ metric: "createGovernance, 1,000 policies", governed: summarize(create1000) });

  printTable();
  console.log(`\n  total ${formatMs(performance.now() - started)}; load average now ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
}

main().catch((error: unknown) => {
  console.error("benchmark crashed:", error);
  process.exitCode = 1;
});
