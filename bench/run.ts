/**
 * The benchmark suite: the governed client against the bare SDK client, in one process,
 * interleaved call by call, over an in-memory Bedrock (no network, no AWS config on disk, static
 * credentials). Prints medians, p95 and governed/bare ratios, each against its target. Targets
 * are reported, not asserted: the exit code is non-zero only when the benchmark itself crashes.
 *
 *   npm run bench                  full run (about 6 minutes: 250,000 calls for the memory row alone)
 *   npm run bench -- --quick       smoke run for CI (about 30 s)
 *
 * Both build first: the governed client measured is the built package's (see `bench/library.ts`).
 *
 * Scale (`bench/scale.ts`): Converse at 10, 1,000 and 10,000 policies; the decision alone at 10,000
 * vs 10 policies; throughput with 1,000 calls in flight; resident memory over 200,000 calls after
 * warm-up; 3,000 policies that name no principal or resource with 200 workloads in turn; and what
 * users write by hand today (cedar-wasm `isAuthorized` with the policy text on every call).
 *
 * Tools: the median cost of one tool decision (`authorizeTool`, phase "call"), memoized and not,
 * and a ConverseStream whose tool call arrives in ~1,400 small deltas, drained governed (the call
 * assembled and decided) vs bare: events per second, ratio ≥ 0.95.
 *
 * When a target is missed, `npx tsx bench/pieces.ts` times each piece of the governed path.
 * @module
 */
import { execFile } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, loadavg } from "node:os";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { BedrockRuntime, ConverseCommand, ConverseStreamCommand, type ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime";
import type { CallScope, Governance, WorkloadIdentity } from "../src/index.js";
import { library, localEndpoint } from "./library.js";
import { createGovernance as createSourceGovernance, currentScope as sourceCurrentScope, runAs as sourceRunAs } from "../src/index.js";
import { authorizeTool, type ToolDecisionRequest } from "../src/tools/authorize-tool.js";
import type { UsageOptions } from "../src/budgets/usage-context.js";
import { measureBudgetRoundTrips, report as reportBudgets, type BudgetCall } from "./budgets.js";
import type { ColdStart } from "./cold-start.js";
import { benchDecisionLog } from "./decision-log.js";
import { CREDENTIALS, isolateFromAwsConfig, MemoryBedrock, STREAM_EVENTS, silenceNodeVersionWarning, ToolUseStream } from "./memory-bedrock.js";
import {
  BENCH_IDENTITY,
  BLOCKED_IDENTITY,
  CONVERSE_INPUT,
  ENVIRONMENT,
  generatePolicies,
  generateToolPolicies,
  MODEL_ID,
  REGION,
  refundInput,
  TOOL_CONVERSE_INPUT,
  TOOL_IDENTITY,
  TOOLS,
} from "./policies.js";
import { broadPolicySet, handWrittenIsAuthorized, throughputInFlight, type MemoryGrowthResult } from "./scale.js";
import type { CedarRequest } from "../src/policy/request-shape.js";

const { AccessDeniedError, createCredentialBroker, createGovernance, createTokenVerifier, GovernedBedrockRuntimeClient, memoryUsageStore, NoIdentityError, runAs, toolDecisions } = library;

/** A cap on each workload's calls per minute, high enough never to deny a benchmark call. */
const CALLS_CAP = `@id("calls-per-minute-cap") forbid (principal, action, resource) when { context has usage && context.usage.callsLastMinute > 1000000 };`;
type GovernedBedrockRuntimeClient = InstanceType<typeof GovernedBedrockRuntimeClient>;
const { LOCAL_BEDROCK_CREDENTIALS, startLocalSts } = localEndpoint;
import { formatMs, formatRate, interleave, median, percentile, summarize, timedSync, warmUp, type Measure, type Summary } from "./stats.js";

silenceNodeVersionWarning();
isolateFromAwsConfig();

const QUICK = process.argv.includes("--quick");
const CONFIG = QUICK
  ? {
      warmUp: 30, rounds: 200, rounds1000: 80, streamRounds: 200, decisionRounds: 150, firstCallReps: 3, governance1000Reps: 1, coldStarts: 1,
      toolDecisionRounds: 600, toolStreamWarmUp: 10, toolStreamRounds: 40, tokenRounds: 200, budgetCalls: 200,
      engineRounds: 500, inFlight: 1000, inFlightCalls: 2000, inFlightRounds: 3, memoryWarmUp: 2000, memoryCalls: 10_000, handWrittenRounds: 300,
      broad: { shared: 300, workloads: 50, rounds: 1 },
    }
  : {
      warmUp: 200, rounds: 3000, rounds1000: 800, streamRounds: 3000, decisionRounds: 1500, firstCallReps: 15, governance1000Reps: 3, coldStarts: 3,
      toolDecisionRounds: 5000, toolStreamWarmUp: 60, toolStreamRounds: 600, tokenRounds: 3000, budgetCalls: 2000,
      engineRounds: 5000, inFlight: 1000, inFlightCalls: 8000, inFlightRounds: 5, memoryWarmUp: 50_000, memoryCalls: 200_000, handWrittenRounds: 3000,
      broad: { shared: 3000, workloads: 200, rounds: 2 },
    };

const POLICIES_10 = generatePolicies(10);
const POLICIES_1000 = generatePolicies(1000);
const POLICIES_10000 = generatePolicies(10_000);
/** The tool benchmark's policy set: tool-aware core rules (a refund rule reads context.input.amount), then generated ones. */
const TOOL_POLICY_COUNT = 20;
const TOOL_POLICIES = generateToolPolicies(TOOL_POLICY_COUNT);
/** The streamed refund: 34 invoice lines, ~4 KB of JSON input, sent in 3-character deltas. */
const STREAM_REFUND_LINES = 34;

function hasRedisServer(): boolean {
  return (process.env["PATH"] ?? "").split(":").some((dir) => dir !== "" && existsSync(`${dir}/redis-server`));
}

function bareClient(handler = new MemoryBedrock()): BedrockRuntime {
  return new BedrockRuntime({ region: REGION, credentials: CREDENTIALS, requestHandler: handler });
}

function governedClient(governance: Governance, handler = new MemoryBedrock()): GovernedBedrockRuntimeClient {
  return new GovernedBedrockRuntimeClient({ region: REGION, credentials: CREDENTIALS, requestHandler: handler, governance });
}

function governance(policies: string, evaluator: "javascript" | "wasm" = "javascript"): Governance {
  return createGovernance({ environment: ENVIRONMENT, policies, evaluator });
}

function toolGovernance(): Governance {
  return createGovernance({ environment: ENVIRONMENT, policies: TOOL_POLICIES, tools: TOOLS, toolEnforcement: "result" });
}

// ---- the measured calls ---------------------------------------------------------------------

/**
 * One Converse call, timed from before `runAs` (when there is an identity) to the parsed reply.
 * `next` gives the request of each call and the caller's scope (by default the same request
 * every time, no scope).
 */
function converseCall(
  client: BedrockRuntime,
  identity?: WorkloadIdentity,
  next: () => [ConverseCommandInput, CallScope | undefined, WorkloadIdentity?] = () => [CONVERSE_INPUT, undefined],
): Measure {
  return async () => {
    const [input, scope, callIdentity] = next();
    const runAsIdentity = identity && (callIdentity ?? identity);
    const command = new ConverseCommand(input);
    const start = performance.now();
    const reply = runAsIdentity ? await runAs(runAsIdentity, () => client.send(command), scope) : await client.send(command);
    const elapsed = performance.now() - start;
    if (reply.stopReason !== "end_turn") throw new Error(`unexpected Converse reply: ${JSON.stringify(reply)}`);
    return elapsed;
  };
}

/**
 * One Converse call whose request differs from every earlier one in its maxTokens (counting up),
 * its data label (one no policy names) and its purpose. The policies only compare maxTokens with
 * limits (`<= 4096`, `> 8192`), test the labels for the ones they name (`contains("phi")`) and
 * match the purpose with `like "*bulk-export*"`: the decision comes from the memo, keyed by those
 * tests' outcomes, not by the values.
 */
function newValuesCall(client: BedrockRuntime, identity?: WorkloadIdentity): Measure {
  let counter = 0;
  return converseCall(client, identity, () => {
    const n = counter++;
    return [
      { ...CONVERSE_INPUT, inferenceConfig: { ...CONVERSE_INPUT.inferenceConfig, maxTokens: 1 + (n % 4096) } },
      { dataSensitivity: [`bench-label-${n}`], purpose: `invoice-reconciliation-${n}` },
    ];
  });
}

/**
 * One Converse call that no memoized decision can answer: a workload of its own every call (the
 * bench workload's groups, tags and attributes under a new id), so each one is evaluated (by the
 * JavaScript evaluator, or by cedar-wasm with `evaluator: "wasm"`) — the full cost of a new
 * principal: checking the identity, its entity, its slice, building and evaluating the request. The bare client sends the same input (the workload is the
 * caller's, not part of the request).
 */
function evaluatedConverseCall(client: BedrockRuntime, identity?: WorkloadIdentity): Measure {
  let counter = 0;
  return converseCall(client, identity, () => [CONVERSE_INPUT, undefined, identity && { ...identity, id: `${identity.id}-${counter++}` }]);
}

/** One ConverseStream call: the time from `send` (before `runAs`) to the first event; then the stream is drained, untimed. */
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
      if (events !== STREAM_EVENTS.length) throw new Error(`expected ${STREAM_EVENTS.length} stream events, got ${events}`);
      return elapsed;
    };
    const start = performance.now();
    return identity ? runAs(identity, () => run(start)) : run(start);
  };
}

/** One call that must be denied before anything is sent. */
function deniedCall(client: GovernedBedrockRuntimeClient, handler: MemoryBedrock, expected: abstract new (...args: never[]) => Error, identity?: WorkloadIdentity): Measure {
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
  /** A figure that is not a governed/bare pair (e.g. megabytes), already formatted, and whether it meets its target. */
  readonly figure?: { readonly value: string; readonly target: string; readonly pass: boolean };
  readonly governed?: Summary;
  readonly bare?: Summary;
  /** governed / bare (or first / steady): the number the target is about. */
  readonly ratio?: number;
  readonly target?: number;
  /** The samples are rates (events per second; higher is better), not milliseconds. */
  readonly rate?: boolean;
}

const rows: Row[] = [];
const notes: string[] = [];

function addRow(metric: string, governed: readonly number[] | undefined, bare: readonly number[] | undefined, target?: number): Row {
  const g = governed && summarize(governed);
  const b = bare && summarize(bare);
  const row: Row = {
    metric,
    ...(g && { governed: g }),
    ...(b && { bare: b }),
    ...(g && b && { ratio: g.median / b.median }),
    ...(target !== undefined && { target }),
  };
  rows.push(row);
  return row;
}

/**
 * A row of rates (events per second): higher is better, so the target is a floor, and the "p95"
 * columns hold the 5th percentile of the rates (the slow tail: 95% of the samples were faster).
 */
function addRateRow(metric: string, governed: readonly number[], bare: readonly number[], target?: number): Row {
  const rateSummary = (samples: readonly number[]): Summary => ({ n: samples.length, median: median(samples), p95: percentile(samples, 5), min: Math.min(...samples) });
  const g = rateSummary(governed);
  const b = rateSummary(bare);
  const row: Row = { metric, governed: g, bare: b, ratio: g.median / b.median, rate: true, ...(target !== undefined && { target }) };
  rows.push(row);
  return row;
}

function addFigureRow(metric: string, figure: NonNullable<Row["figure"]>): void {
  rows.push({ metric, figure });
}

function printTable(): void {
  const header = ["", "governed median", "p95", "bare median", "p95", "ratio", "target", "result"];
  const body = rows.map((row) => {
    if (row.figure) return [row.metric, row.figure.value, "", "", "", "", row.figure.target, row.figure.pass ? "PASS" : "FAIL"];
    const format = row.rate ? formatRate : formatMs;
    const pass = row.target === undefined || row.ratio === undefined ? undefined : row.rate ? row.ratio >= row.target : row.ratio <= row.target;
    return [
      row.metric,
      row.governed ? format(row.governed.median) : "",
      row.governed ? format(row.governed.p95) : "",
      row.bare ? format(row.bare.median) : "",
      row.bare ? format(row.bare.p95) : "",
      row.ratio !== undefined ? `${row.ratio.toFixed(2)}×` : "",
      row.target !== undefined ? `${row.rate ? "≥" : "≤"} ${row.target.toFixed(2)}×` : "—",
      pass === undefined ? "" : pass ? "PASS" : "FAIL",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  console.log();
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of body) console.log(line(r));
  console.log();
  for (const n of notes) console.log(`  - ${n}`);
}

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

// ---- the sections ---------------------------------------------------------------------------

/** 1. Converse per-call latency, governed (inside runAs) vs bare. */
async function converse(label: string, g: Governance, rounds: number, target?: number): Promise<Row> {
  progress(`${label}: warm-up ${CONFIG.warmUp}, then ${rounds} interleaved rounds ...`);
  const variants = { governed: converseCall(governedClient(g), BENCH_IDENTITY), bare: converseCall(bareClient()) };
  await warmUp(variants, CONFIG.warmUp);
  const samples = await interleave(variants, rounds);
  return addRow(label, samples.governed, samples.bare, target);
}

/** 1b. Converse per-call latency when every request is new (no memoized decision). */
async function converseNew(label: string, g: Governance, rounds: number, target: number, call: typeof newValuesCall): Promise<Row> {
  progress(`${label}: warm-up ${CONFIG.warmUp}, then ${rounds} interleaved rounds ...`);
  const variants = { governed: call(governedClient(g), BENCH_IDENTITY), bare: call(bareClient()) };
  await warmUp(variants, CONFIG.warmUp);
  const samples = await interleave(variants, rounds);
  return addRow(label, samples.governed, samples.bare, target);
}

/** 2. ConverseStream time to first event. */
async function converseStream(g: Governance): Promise<Row> {
  progress(`ConverseStream time to first event: warm-up ${CONFIG.warmUp}, then ${CONFIG.streamRounds} interleaved rounds ...`);
  const variants = { governed: streamCall(governedClient(g), BENCH_IDENTITY), bare: streamCall(bareClient()) };
  await warmUp(variants, CONFIG.warmUp);
  const samples = await interleave(variants, CONFIG.streamRounds);
  return addRow("ConverseStream time to first event, 10 policies", samples.governed, samples.bare, 1.05);
}

/**
 * 5. Identity and credentials: verifying a workload token with a warm key cache (done once per
 * task, not per call), and Converse with every call signed by broker-issued credentials for its
 * identity and path (cached after the first STS call) vs the bare client.
 */
async function identityAndBroker(): Promise<void> {
  progress(`token verification: ${CONFIG.tokenRounds} ES256 verifications, inline and URL key sets (warm) ...`);
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: "bench", alg: "ES256" }] };
  const keyServer = createServer((_request, response) => response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(jwks)));
  await new Promise<void>((resolve) => keyServer.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}/jwks.json`;
  const token = await new SignJWT({ groups: ["bench"] })
    .setProtectedHeader({ alg: "ES256", kid: "bench" })
    .setIssuer("https://idp.bench")
    .setSubject("bench-agent")
    .setAudience("bench")
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(privateKey);
  for (const [label, keys] of [
    ["inline key set", { jwks }],
    ["key set from a URL, cached", { url }],
  ] as const) {
    const verifier = createTokenVerifier({ issuer: "https://idp.bench", audience: "bench", keys, groupsClaim: "groups" });
    await verifier.verify(token); // fetches the key set once
    const samples: number[] = [];
    for (let i = 0; i < CONFIG.tokenRounds; i++) {
      const start = performance.now();
      await verifier.verify(token);
      samples.push(performance.now() - start);
    }
    addRow(`verify a workload token (ES256, ${label})`, samples, undefined);
  }
  keyServer.close();
  notes.push(
    "Token verification runs once per task (runTask with an identity provider) or per verify(): calls then carry the verified identity, whose per-call cost is a lookup.",
  );

  progress(`Converse with broker-issued credentials: warm-up ${CONFIG.warmUp}, then ${CONFIG.rounds} interleaved rounds ...`);
  const sts = await startLocalSts({ roles: [{ arn: "arn:aws:iam::123456789012:role/bench" }] });
  const credentialBroker = createCredentialBroker({
    roleArn: "arn:aws:iam::123456789012:role/bench",
    sts: { endpoint: sts.url, region: sts.region, credentials: { ...LOCAL_BEDROCK_CREDENTIALS } },
    paths: { default: { operations: ["Converse"], models: [CONVERSE_INPUT.modelId!] } },
  });
  const brokered = createGovernance({ environment: ENVIRONMENT, policies: POLICIES_10, credentialBroker });
  const client = new GovernedBedrockRuntimeClient({ region: REGION, requestHandler: new MemoryBedrock(), governance: brokered });
  const variants = { governed: converseCall(client, BENCH_IDENTITY), bare: converseCall(bareClient()) };
  await warmUp(variants, CONFIG.warmUp);
  const samples = await interleave(variants, CONFIG.rounds);
  addRow("Converse per call, signed with broker-issued credentials (cached), 10 policies", samples.governed, samples.bare, 1.3);
  notes.push(`The broker called STS ${credentialBroker.issued} time(s) for ${CONFIG.warmUp + CONFIG.rounds} governed calls: credentials are cached per (identity, path) until 2 minutes before they expire.`);
  client.destroy();
  await sts.close();
}

/**
 * 6. Evidence and budgets: Converse with every record written to a hash-chained JSON Lines file
 * (written off the call path, in batches) vs the same governed client recording nothing; and the
 * Redis round trips a budget check adds to a governed call (target: at most one).
 */
async function evidenceAndBudgets(): Promise<void> {
  progress(`decision log: warm-up ${CONFIG.warmUp}, then ${CONFIG.rounds} interleaved rounds ...`);
  const log = await benchDecisionLog({ warmUp: CONFIG.warmUp, rounds: CONFIG.rounds, policies: POLICIES_10 });
  addRow("Converse per call with a JSON Lines decision log vs none (governed both), 10 policies", log.withLog, log.without, log.target);
  notes.push(log.note);

  if (!hasRedisServer()) {
    notes.push("Budget round trips with Redis: skipped (no redis-server on PATH; Debian: apt-get install redis-server).");
    return;
  }
  progress(`budget checks with Redis: ${CONFIG.budgetCalls} governed calls ...`);
  const clients = new Map<UsageOptions, { client: GovernedBedrockRuntimeClient }>();
  let decided: ((name: "decided" | "done") => void) | undefined;
  // A real governed call: the request reaching the handler marks the end of the decision path.
  const governedCall: BudgetCall = async (usage, identityId, phase) => {
    let entry = clients.get(usage);
    if (!entry) {
      const bedrock = new MemoryBedrock();
      const handler = { handle: (request: Parameters<MemoryBedrock["handle"]>[0]) => (decided?.("decided"), bedrock.handle(request)) };
      const g = createGovernance({ environment: ENVIRONMENT, policies: `permit (principal, action, resource);`, usage });
      entry = { client: new GovernedBedrockRuntimeClient({ region: REGION, credentials: CREDENTIALS, requestHandler: handler, governance: g }) };
      clients.set(usage, entry);
    }
    decided = phase;
    await runAs({ id: identityId }, () => entry.client.send(new ConverseCommand(CONVERSE_INPUT)));
    decided = undefined;
    // The tokens are written after the call, off its path: let that write leave before the next call.
    await new Promise((resolve) => setTimeout(resolve, 1));
    phase("done");
  };
  const trips = await measureBudgetRoundTrips({ calls: CONFIG.budgetCalls, call: governedCall });
  for (const { client } of clients.values()) client.destroy();
  notes.push(reportBudgets(trips).replace(/\n/g, "\n    "));
}

/**
 * 6. Scale: the decision alone at 10 and 10,000 policies (a new request every call: evaluated, never memoized),
 * many calls in flight, memory over a long run, and what users write by hand today.
 */
async function scale(g10: Governance, g10000: Governance): Promise<void> {
  progress(`decision at 10 vs 10,000 policies: ${CONFIG.engineRounds} interleaved rounds ...`);
  const decide = (g: Governance) => {
    let counter = 0;
    return async () => {
      const request = benchRequest(counter++);
      const start = performance.now();
      const decision = g.engine.authorize(request);
      const elapsed = performance.now() - start;
      if (decision.effect !== "allow") throw new Error(`the bench request was denied: ${decision.reasons.join("; ")}`);
      return elapsed;
    };
  };
  const engineVariants = { at10000: decide(g10000), at10: decide(g10) };
  await warmUp(engineVariants, CONFIG.warmUp);
  const decisions = await interleave(engineVariants, CONFIG.engineRounds);
  addRow("Decision alone (engine.authorize, a new request each call), 10,000 vs 10 policies", decisions.at10000, decisions.at10, 1.25);

  progress(`throughput with ${CONFIG.inFlight} calls in flight: ${CONFIG.inFlightRounds} rounds of ${CONFIG.inFlightCalls} calls ...`);
  const rates = await throughputInFlight({ governance: g10, inFlight: CONFIG.inFlight, calls: CONFIG.inFlightCalls, rounds: CONFIG.inFlightRounds });
  addRateRow(`Converse throughput, ${CONFIG.inFlight.toLocaleString("en-US")} calls in flight, 10 policies (calls/s)`, rates.governed, rates.bare, 0.9);

  progress(`memory: ${CONFIG.memoryWarmUp} warm-up calls, then ${CONFIG.memoryCalls} governed calls ...`);
  const memory = await memoryInFreshProcess(CONFIG.memoryWarmUp, CONFIG.memoryCalls);
  addFigureRow(`Resident memory growth over ${CONFIG.memoryCalls.toLocaleString("en-US")} governed calls after warm-up (each point settled: compacting full GCs until the heap stops shrinking)`, {
    value: `${memory.growthMb.toFixed(1)} MB`,
    target: "< 20 MB",
    pass: memory.growthMb < 20,
  });
  notes.push(
    `Memory (a fresh process, 10 policies, ${CONFIG.memoryWarmUp.toLocaleString("en-US")} warm-up calls first): RSS ${memory.rssBeforeMb.toFixed(0)} → ${memory.rssAfterMb.toFixed(0)} MB, V8 heap ${memory.heapBeforeMb.toFixed(1)} → ${memory.heapAfterMb.toFixed(1)} MB ` +
      `(${memory.heapGrowthMb >= 0 ? "+" : ""}${memory.heapGrowthMb.toFixed(1)} MB) over ${CONFIG.memoryCalls} calls, ${memory.distinctCalls} of them requests never seen before; ` +
      `V8's committed heap ${memory.heapTotalGrowthMb >= 0 ? "+" : ""}${memory.heapTotalGrowthMb.toFixed(1)} MB; each point settled after ${memory.settleGcs[0]} and ${memory.settleGcs[1]} full GCs; ` +
      `${memory.cachedDecisions} decisions memoized at the end (bounded); ${formatRate(memory.callsPerSecond)}.`,
  );

  const broad = CONFIG.broad;
  progress(`${broad.shared} policies shared by every workload, ${broad.workloads} workloads in turn ...`);
  const { loadMs, decisions: broadDecisions } = broadPolicySet(broad);
  addRow(`Decision alone, ${broad.shared.toLocaleString("en-US")} policies naming no principal or resource, ${broad.workloads} workloads in turn, a new request each call`, broadDecisions, undefined);
  notes.push(
    `Policies shared by every workload: ${broad.shared.toLocaleString("en-US")} of them (and one permit per workload) load in ${formatMs(loadMs)}; ` +
      `they are preparsed once as a part of every workload's slice, so ${broad.workloads} workloads in turn preparse nothing again after the first round. ` +
      `Cedar still evaluates each of them on a request the memo cannot answer (cedar-wasm clones a preparsed set on every evaluation).`,
  );

  progress(`by hand: cedar-wasm isAuthorized with the policy text on every call, ${CONFIG.handWrittenRounds} rounds ...`);
  const byHand = await handWrittenIsAuthorized({ policiesText: POLICIES_10, rounds: CONFIG.handWrittenRounds });
  addRow("By hand today: isAuthorized with the policy text on every call + bare Converse, 10 policies, vs bare", byHand.handWritten, byHand.bare);
}

/**
 * The memory row, run in a fresh process (bench/memory-run.ts): resident memory is the whole
 * process's. Run as plain JavaScript, not under `--import tsx`: on Node 20 the TypeScript loader
 * runs on a thread of its own with a V8 heap of its own (~60 MB committed after compiling the
 * suite), which that thread's memory reducer shrinks by ~45 MB when it sees fit (15-30 s after
 * start) — before, between or after the two measurement points, from run to run. The bundle sits
 * in bench/, so that library.ts's `../dist/` is still the package's build.
 */
async function memoryInFreshProcess(warmUpCalls: number, calls: number): Promise<MemoryGrowthResult> {
  const script = fileURLToPath(new URL("./.memory-run.mjs", import.meta.url));
  await build({
    entryPoints: [fileURLToPath(new URL("./memory-run.ts", import.meta.url))],
    outfile: script,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    logLevel: "error",
  });
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ["--expose-gc", script, String(warmUpCalls), String(calls)], {
      cwd: dirname(dirname(script)),
      timeout: 20 * 60_000,
    });
    return JSON.parse(stdout.trim().split("\n").at(-1)!) as MemoryGrowthResult;
  } finally {
    rmSync(script, { force: true });
  }
}

/**
 * The Cedar request of the bench call, as plain objects (checked and pruned on every call). Each
 * `n` gives a request never seen before, which no memoized decision can answer: a principal of its
 * own (in the bench identity's groups; a new purpose alone would be answered by the memo, keyed by
 * its `like` test's outcome).
 */
function benchRequest(n: number): CedarRequest {
  const principal = { type: "Bedrock::Workload", id: `${BENCH_IDENTITY.id}/decision-row-${n}` };
  const resource = { type: "Bedrock::Model", id: MODEL_ID };
  return {
    principal,
    action: { type: "Bedrock::Action", id: "Converse" },
    resource,
    context: {
      environment: ENVIRONMENT,
      region: REGION,
      streaming: false,
      actionType: "read",
      dataSensitivity: [],
      purpose: `invoice-reconciliation-${n}`,
      toolsOffered: [],
      payloadInspected: true,
      maxTokens: 512,
      authentication: { verified: false, method: "declared" },
      delegation: { depth: 0, actors: [] },
      credentials: { kind: "long-term", brokered: false },
    },
    entities: [
      {
        uid: principal,
        attrs: { environment: BENCH_IDENTITY.environment!, owner: BENCH_IDENTITY.owner! },
        parents: BENCH_IDENTITY.groups!.map((id) => ({ type: "Bedrock::Group", id })),
        tags: { ...BENCH_IDENTITY.attributes },
      },
      {
        uid: resource,
        attrs: { kind: "inference-profile", provider: "anthropic", geo: "us", baseModel: MODEL_ID.slice(3) },
        parents: [
          { type: "Bedrock::Model", id: MODEL_ID.slice(3) },
          { type: "Bedrock::Provider", id: "anthropic" },
        ],
      },
    ],
  };
}

/** 4. The decision's cost: allowed calls, calls denied before any request, and bare calls, interleaved. */
async function decisionCost(g: Governance): Promise<void> {
  progress(`decision cost: warm-up ${CONFIG.warmUp}, then ${CONFIG.decisionRounds} interleaved rounds of 4 variants ...`);
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
  addRow("Decision: allowed call (full path) vs bare call", s.allowed, s.bare);
  addRow("Decision: denied by a forbid (Cedar ran, nothing sent) vs bare", s.deniedByPolicy, s.bare);
  addRow("Decision: denied, no identity (no Cedar, nothing sent) vs bare", s.deniedNoIdentity, s.bare);
  const [allowed, byPolicy, noIdentity, bare] = [s.allowed, s.deniedByPolicy, s.deniedNoIdentity, s.bare].map(median) as [number, number, number, number];
  notes.push(
    `Decision (10 policies, medians): governance adds ${formatMs(allowed - bare)} to an allowed call; ` +
      `denied-by-policy minus denied-without-identity = ${formatMs(byPolicy - noIdentity)} ≈ building the Cedar request + Cedar's evaluation; ` +
      `the rest of a denial (${formatMs(noIdentity)}) is the SDK's send up to the initialize step, the span, the record and the error.`,
  );
}

/**
 * 3. First call after construction, in this (warm) process: each repetition builds a new
 * governance and a new client and times its first call, next to a new bare client's first call.
 */
async function firstCall(steadyGovernedMedian: number, steadyBareMedian: number): Promise<number[]> {
  progress(`first call after construction: ${CONFIG.firstCallReps} repetitions ...`);
  const firstCalls: number[] = [];
  const secondCalls: number[] = [];
  const bareFirstCalls: number[] = [];
  const createGovernance10: number[] = [];
  const newClient: number[] = [];
  for (let i = 0; i < CONFIG.firstCallReps; i++) {
    // The SDK has first-call costs of its own (per-client config providers, endpoint cache, ...).
    bareFirstCalls.push(await converseCall(bareClient())());
    const [g, create] = timedSync(() => governance(POLICIES_10));
    const [client, clientMs] = timedSync(() => governedClient(g));
    firstCalls.push(await converseCall(client, BENCH_IDENTITY)());
    secondCalls.push(await converseCall(client, BENCH_IDENTITY)());
    createGovernance10.push(create);
    newClient.push(clientMs);
  }
  const row = addRow("First governed call after construction vs steady governed call", firstCalls, bareFirstCalls, 3);
  // The ratio of this row is first call / steady-state governed call, not governed / bare.
  rows[rows.indexOf(row)] = { ...row, ratio: median(firstCalls) / steadyGovernedMedian };
  notes.push(
    `First call (median of ${CONFIG.firstCallReps}, each right after createGovernance + new client, in this warm process): ` +
      `governed ${formatMs(median(firstCalls))} (its second call ${formatMs(median(secondCalls))}), steady-state governed ${formatMs(steadyGovernedMedian)} ` +
      `→ ratio ${(median(firstCalls) / steadyGovernedMedian).toFixed(2)}×. The "bare" columns are a new bare client's first call: ` +
      `${(median(bareFirstCalls) / steadyBareMedian).toFixed(2)}× the steady bare call, the SDK's own first-call cost. ` +
      `new GovernedBedrockRuntimeClient: ${formatMs(median(newClient))}.`,
  );
  return createGovernance10;
}

/** 3b. Cold starts, each in a fresh Node process: the first call of a process, governed vs bare. */
async function coldStarts(): Promise<ColdStart[]> {
  progress(`cold starts: ${CONFIG.coldStarts} fresh processes per variant ...`);
  const script = fileURLToPath(new URL("./cold-start.ts", import.meta.url));
  const root = dirname(dirname(script));
  const run = promisify(execFile);
  const results: ColdStart[] = [];
  for (let i = 0; i < CONFIG.coldStarts; i++) {
    for (const mode of i % 2 === 0 ? ["governed", "bare"] : ["bare", "governed"]) {
      const { stdout } = await run(process.execPath, ["--import", "tsx", script, mode], { cwd: root, timeout: 60_000 });
      results.push(JSON.parse(stdout.trim().split("\n").at(-1)!) as ColdStart);
    }
  }
  const governed = results.filter((r) => r.mode === "governed");
  const bare = results.filter((r) => r.mode === "bare");
  addRow("Cold process: first call (fresh node process) vs bare", governed.map((r) => r.first), bare.map((r) => r.first));
  notes.push(
    `Cold process (median of ${CONFIG.coldStarts} fresh process(es) per variant): createGovernance(10) ${formatMs(median(governed.map((r) => r.governance ?? Number.NaN)))} ` +
      `(includes compiling the wasm); first call governed ${formatMs(median(governed.map((r) => r.first)))} vs bare ${formatMs(median(bare.map((r) => r.first)))}; ` +
      `second call governed ${formatMs(median(governed.map((r) => r.second)))} vs bare ${formatMs(median(bare.map((r) => r.second)))}.`,
  );
  return results;
}

/**
 * 5. One tool decision (`authorizeTool`, phase "call": the decision made on each tool call the model
 * asks for), timed call by call, the variants interleaved: (a) the same refund again (memoized),
 * (b) a new refund each time (a new invoiceId and amount: evaluated), (c) the streamed
 * ~4 KB refund (its request is too long to memoize: evaluated every time).
 */
function toolDecisionCost(): void {
  const rounds = CONFIG.toolDecisionRounds;
  progress(`tool decision: warm-up, then ${rounds} interleaved rounds of 3 variants ...`);
  // authorizeTool is internal: measured from the sources, with a governance and a scope of the sources.
  const g = createSourceGovernance({ environment: ENVIRONMENT, policies: TOOL_POLICIES, tools: TOOLS, toolEnforcement: "result" });
  const scope = sourceRunAs(TOOL_IDENTITY, () => sourceCurrentScope());
  const base: Omit<ToolDecisionRequest, "input" | "toolUseId"> = {
    engine: g.engine,
    tools: g.tools,
    environment: g.environment,
    region: REGION,
    identity: TOOL_IDENTITY,
    scope,
    name: "issue_refund",
    phase: "call",
  };
  const small = { invoiceId: "INV-2024-004711", amount: 342.5 };
  const large = refundInput(STREAM_REFUND_LINES);
  let counter = 0;
  const decide = (input: unknown, toolUseId: string): number => {
    const start = performance.now();
    const { decision } = authorizeTool({ ...base, input, toolUseId });
    const elapsed = performance.now() - start;
    if (decision.effect !== "allow" || !decision.policies.includes("refunds-up-to-500")) {
      throw new Error(`the refund was not allowed by refunds-up-to-500: ${JSON.stringify(decision)}`);
    }
    return elapsed;
  };
  const variants = {
    repeated: () => decide(small, "tooluse_repeated"),
    // A new invoice and amount (≤ 500, 2 decimals) every call: no two requests alike in this run.
    fresh: () => {
      const n = counter++;
      return decide({ invoiceId: `INV-${n}`, amount: (100 + (n % 49_900)) / 100 }, `tooluse_${n}`);
    },
    large: () => decide(large, `tooluse_large_${counter}`),
  };
  // Prove what is measured: the repeated request is answered from the decision cache, the new ones are not, the large one is never cached.
  variants.repeated();
  const cached = g.engine.cachedDecisions;
  variants.repeated();
  variants.large();
  if (g.engine.cachedDecisions !== cached) throw new Error("the repeated refund was not memoized, or the ~4 KB one was");
  variants.fresh();
  if (g.engine.cachedDecisions !== cached + 1) throw new Error("a new refund did not go to Cedar");
  const names = Object.keys(variants) as (keyof typeof variants)[];
  const samples: Record<keyof typeof variants, number[]> = { repeated: [], fresh: [], large: [] };
  for (let round = -Math.ceil(rounds / 5); round < rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(round + names.length * rounds + i) % names.length]!;
      const ms = variants[name]();
      if (round >= 0) samples[name].push(ms);
    }
  }
  addRow("Tool decision: authorizeTool, repeated refund (memoized)", samples.repeated, undefined);
  addRow("Tool decision: authorizeTool, a new refund each call (evaluated)", samples.fresh, undefined);
  addRow(`Tool decision: authorizeTool, ~${(JSON.stringify(large).length / 1024).toFixed(1)} KB refund (${STREAM_REFUND_LINES} lines; evaluated)`, samples.large, undefined);
  notes.push(
    `Tool decision (${TOOL_POLICY_COUNT} policies, authorizeTool phase "call", issue_refund allowed by refunds-up-to-500 reading context.input.amount; each call timed alone, ${rounds} interleaved rounds): ` +
      `repeated {invoiceId, amount} ${formatMs(median(samples.repeated))} (schema conversion + request key + cache hit); ` +
      `a new one each call ${formatMs(median(samples.fresh))}; the ~4 KB streamed refund ${formatMs(median(samples.large))} ` +
      `(its serialized request is over the decision cache's 4,096-character key limit, so it is never memoized).`,
  );
}

/** What one drained tool-use stream measured. */
interface StreamSample {
  /** From `send` resolving to the stream's end. */
  readonly drainMs: number;
  /** From before `send` (before `runAs`) to the stream's end. */
  readonly callMs: number;
  readonly events: number;
  /** How long the tool block's contentBlockStop took to arrive after the event before it (governed: the tool call is decided there). */
  readonly stopGapMs: number;
}

/**
 * One ConverseStream call whose reply asks for the refund tool: sends it, then drains the whole
 * stream. The governed side must have decided the tool call (one allowed decision, with the whole
 * input) by the end, or the run fails.
 */
function toolStreamCall(
  client: BedrockRuntime,
  reply: ToolUseStream,
  sink: StreamSample[],
  governed?: { identity: WorkloadIdentity; input: ConverseCommandInput; expect: "allow" | "never offered" },
): Measure {
  const identity = governed?.identity;
  return async () => {
    const command = new ConverseStreamCommand(governed?.input ?? TOOL_CONVERSE_INPUT);
    const run = async (start: number) => {
      const output = await client.send(command);
      const drainStart = performance.now();
      let events = 0;
      let previous = drainStart;
      let stopGapMs = Number.NaN;
      for await (const _event of output.stream!) {
        if (events++ === reply.toolStopIndex) {
          const now = performance.now();
          stopGapMs = now - previous;
          previous = now;
        } else if (events === reply.toolStopIndex) previous = performance.now();
      }
      const end = performance.now();
      if (events !== reply.eventCount) throw new Error(`expected ${reply.eventCount} stream events, got ${events}`);
      if (governed) {
        const decisions = toolDecisions(output);
        const decided = decisions[0];
        const lines = (decided?.input?.["lines"] as unknown[] | undefined)?.length;
        const expected =
          governed.expect === "allow"
            ? decided?.decision.effect === "allow" && decided.decision.policies.includes("refunds-up-to-500")
            : decided?.decision.effect === "deny" && decided.problem === "never offered";
        if (decisions.length !== 1 || !expected || decided?.name !== reply.toolName || lines !== STREAM_REFUND_LINES) {
          throw new Error(`the governed stream did not decide its tool call as expected: ${JSON.stringify(decisions.map((d) => ({ ...d, input: undefined })))}`);
        }
      }
      sink.push({ drainMs: end - drainStart, callMs: end - start, events, stopGapMs });
      return end - drainStart;
    };
    const start = performance.now();
    return identity ? runAs(identity, () => run(start)) : run(start);
  };
}

/** 6. ConverseStream throughput with tool-use deltas, governed vs bare, interleaved. */
async function toolStreamThroughput(): Promise<void> {
  const reply = new ToolUseStream("issue_refund", refundInput(STREAM_REFUND_LINES), { chunkSize: 3 });
  progress(
    `ConverseStream with tool-use deltas (${reply.eventCount} events: ${reply.toolInputDeltas} tool input deltas of 3 characters, ${reply.textDeltas} text deltas): ` +
      `warm-up ${CONFIG.toolStreamWarmUp}, then ${CONFIG.toolStreamRounds} interleaved rounds ...`,
  );
  const governedSamples: StreamSample[] = [];
  const bareSamples: StreamSample[] = [];
  // A diagnostic third variant: the same reply, but the request offers only lookup_invoice, so the
  // refund is denied as "never offered" without a Cedar evaluation: what the stream guard, the
  // response observer and the assembler cost on their own.
  const unofferedSamples: StreamSample[] = [];
  const withoutRefund: ConverseCommandInput = {
    ...TOOL_CONVERSE_INPUT,
    toolConfig: { tools: TOOL_CONVERSE_INPUT.toolConfig!.tools!.filter((tool) => tool.toolSpec?.name !== "issue_refund") },
  };
  const variants = {
    governed: toolStreamCall(governedClient(toolGovernance(), new MemoryBedrock(reply)), reply, governedSamples, {
      identity: TOOL_IDENTITY,
      input: TOOL_CONVERSE_INPUT,
      expect: "allow",
    }),
    bare: toolStreamCall(bareClient(new MemoryBedrock(reply)), reply, bareSamples),
    unoffered: toolStreamCall(governedClient(toolGovernance(), new MemoryBedrock(reply)), reply, unofferedSamples, {
      identity: TOOL_IDENTITY,
      input: withoutRefund,
      expect: "never offered",
    }),
  };
  await warmUp(variants, CONFIG.toolStreamWarmUp);
  for (const samples of [governedSamples, bareSamples, unofferedSamples]) samples.length = 0;
  await interleave(variants, CONFIG.toolStreamRounds);
  const rate = (ms: keyof StreamSample) => (s: StreamSample) => s.events / (s[ms] / 1000);
  addRateRow("ConverseStream with tool-use deltas: events/s, draining the stream", governedSamples.map(rate("drainMs")), bareSamples.map(rate("drainMs")), 0.95);
  addRateRow("ConverseStream with tool-use deltas: events/s, whole call (send + drain)", governedSamples.map(rate("callMs")), bareSamples.map(rate("callMs")));
  addRow("ConverseStream with tool-use deltas: the tool block's stop event, after the one before", governedSamples.map((s) => s.stopGapMs), bareSamples.map((s) => s.stopGapMs));
  addRateRow("  diagnostic: governed, refund never offered (no Cedar), events/s draining", unofferedSamples.map(rate("drainMs")), bareSamples.map(rate("drainMs")));
  const drainG = median(governedSamples.map((s) => s.drainMs));
  const drainB = median(bareSamples.map((s) => s.drainMs));
  const drainU = median(unofferedSamples.map((s) => s.drainMs));
  notes.push(
    `ConverseStream with tool-use deltas: ${reply.eventCount} events per reply (${reply.toolInputDeltas} toolUse.input deltas of 3 characters carrying a ${reply.inputJson.length.toLocaleString("en-US")}-character refund, ` +
      `${reply.textDeltas} text deltas), pre-encoded (only the contentBlockStart is encoded per reply, for its own toolUseId), one frame per chunk; ` +
      `governed: ${TOOL_POLICY_COUNT} policies, both tools declared and offered, toolEnforcement "result", the refund assembled and allowed by policy (checked after every drain). ` +
      `Median drain ${formatMs(drainG)} governed vs ${formatMs(drainB)} bare: ${formatMs(drainG - drainB)} more per stream, ` +
      `${(((drainG - drainB) * 1000) / reply.eventCount).toFixed(2)} µs per event (the tool decision at contentBlockStop included). ` +
      `Without the Cedar evaluation (the diagnostic row: the same reply, the refund never offered, so denied without Cedar) ${formatMs(drainU - drainB)} more per stream, ` +
      `${(((drainU - drainB) * 1000) / reply.eventCount).toFixed(2)} µs per event: the stream guard, observer and assembler alone; the rest (${formatMs(drainG - drainU)}) is deciding the refund. ` +
      `For events/s rows the "p95" columns are the 5th percentile of the rate (the slow tail).`,
  );
}

// ---- main -----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  console.log(
    `bedrock-warden benchmark${QUICK ? " (--quick)" : ""}: Node ${process.version}, ${cpus().length} CPUs, ` +
      `load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n` +
      `the built package (dist/); in-memory Bedrock (full SDK pipeline incl. SigV4 signing), static credentials, no AWS config files, ` +
      `no tracer provider registered (no-op spans); governed calls run inside runAs(identity, ...)`,
  );

  progress(`createGovernance at 1,000 policies, ${CONFIG.governance1000Reps}× ...`);
  const create1000: number[] = [];
  let g1000: Governance | undefined;
  for (let i = 0; i < CONFIG.governance1000Reps; i++) {
    const [g, ms] = timedSync(() => governance(POLICIES_1000));
    create1000.push(ms);
    g1000 = g;
  }
  progress("createGovernance at 10,000 policies ...");
  const [g10000, create10000] = timedSync(() => governance(POLICIES_10000));
  const g10 = governance(POLICIES_10);

  const steady = await converse("Converse per call, 10 policies, repeated request", g10, CONFIG.rounds, 1.05);
  await converseNew("Converse per call, 10 policies, a new request each call that the memo cannot answer (a new workload)", g10, CONFIG.rounds, 1.15, evaluatedConverseCall);
  await converseNew(
    "Converse per call, 10 policies, a new workload each call, evaluator: \"wasm\" (every evaluation in cedar-wasm)",
    governance(POLICIES_10, "wasm"),
    CONFIG.rounds,
    1.15,
    evaluatedConverseCall,
  );
  await converseNew("Converse per call, 10 policies, a new maxTokens, data label and purpose each call (decided by the policies' tests: memoized)", g10, CONFIG.rounds, 1.15, newValuesCall);
  await converse("Converse per call, 1,000 policies, repeated request", g1000!, CONFIG.rounds1000, 1.05);
  await converseNew("Converse per call, 1,000 policies, a new request each call that the memo cannot answer (a new workload)", g1000!, CONFIG.rounds1000, 1.15, evaluatedConverseCall);
  await converseNew("Converse per call, 1,000 policies, a new maxTokens, data label and purpose each call (decided by the policies' tests: memoized)", g1000!, CONFIG.rounds1000, 1.15, newValuesCall);
  await converse("Converse per call, 10,000 policies, repeated request", g10000, CONFIG.rounds1000, 1.05);
  await converseNew("Converse per call, 10,000 policies, a new request each call that the memo cannot answer (a new workload)", g10000, CONFIG.rounds1000, 1.15, evaluatedConverseCall);
  await converseNew("Converse per call, 10,000 policies, a new maxTokens, data label and purpose each call (decided by the policies' tests: memoized)", g10000, CONFIG.rounds1000, 1.15, newValuesCall);
  // context.usage.callsLastMinute is one higher on every call: a new request each time, which a
  // policy only compares with its cap, so the memo answers it.
  const counted = createGovernance({ environment: ENVIRONMENT, policies: `${POLICIES_10}\n${CALLS_CAP}`, usage: { store: memoryUsageStore() } });
  await converse("Converse per call, 10 policies + a calls-per-minute cap, usage counted (memory store), repeated request", counted, CONFIG.rounds, 1.05);
  await scale(g10, g10000);
  await converseStream(g10);
  await decisionCost(g10);
  toolDecisionCost();
  await toolStreamThroughput();
  await identityAndBroker();
  await evidenceAndBudgets();
  const create10 = await firstCall(steady.governed!.median, steady.bare!.median);
  const cold = await coldStarts();
  addRow("createGovernance, 10 policies (warm process)", create10, undefined);
  addRow("createGovernance, 10 policies (cold process, incl. wasm compile)", cold.flatMap((r) => (r.governance === undefined ? [] : [r.governance])), undefined);
  addRow("createGovernance, 1,000 policies", create1000, undefined);
  addRow("createGovernance, 10,000 policies", [create10000], undefined);
  notes.push(
    "createGovernance = option checks + parse + validate against the schema + index the scopes + warm-up evaluation; " +
      "each slice of the set is preparsed on its first call (a few policies: ~1 ms).",
  );

  printTable();
  console.log(`\n  total ${formatMs(performance.now() - started)}; load average now ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
}

main().catch((error: unknown) => {
  console.error("benchmark crashed:", error);
  process.exitCode = 1;
});
