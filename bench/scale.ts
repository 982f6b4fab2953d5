/**
 * Scale rows of the benchmark, called from `bench/run.ts`:
 *
 * - {@link throughputInFlight}: Converse calls per second with many calls in flight at once
 *   (a pool of e.g. 1,000), governed vs bare, interleaved round by round.
 * - {@link memoryGrowth}: RSS and heap before and after a long run of governed calls (a mix of
 *   repeated and never-seen requests), each measured at a settled point (full GCs until the heap
 *   stops shrinking).
 * - {@link handWrittenIsAuthorized}: what users write by hand today, a bare client with
 *   cedar-wasm's stateless `isAuthorized` (policy text parsed on every call) before each `send`,
 *   vs the bare client alone, call by call.
 *
 * Everything runs over the in-memory Bedrock ({@link MemoryBedrock}): the SDK pipeline (serialize,
 * endpoint, retry, SigV4 signing, deserialize) runs in full, no network. Like the rest of the
 * suite, the caller is expected to have called `isolateFromAwsConfig()` before any client is built.
 *
 * `memoryGrowth` needs a `gc` function: `global.gc` when Node was started with `--expose-gc`
 * (`node --expose-gc --import tsx bench/run.ts`); otherwise this module gets one without the flag
 * (`v8.setFlagsFromString("--expose-gc")`, then `vm.runInNewContext("gc")`: works on Node 20).
 * @module
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { BedrockRuntime, ConverseCommand, type ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime";
import type { Governance, WorkloadIdentity } from "../src/index.js";
import { library } from "./library.js";
import { CREDENTIALS, MemoryBedrock } from "./memory-bedrock.js";
import { BENCH_IDENTITY, CONVERSE_INPUT, ENVIRONMENT, MODEL_ID, REGION } from "./policies.js";
import { interleave, warmUp, type Measure } from "./stats.js";

const { GovernedBedrockRuntimeClient, runAs, workloadIdentity } = library;
type GovernedBedrockRuntimeClient = InstanceType<typeof GovernedBedrockRuntimeClient>;

const MB = 1024 * 1024;

function bareClient(handler: MemoryBedrock): BedrockRuntime {
  return new BedrockRuntime({ region: REGION, credentials: CREDENTIALS, requestHandler: handler });
}

function governedClient(governance: Governance, handler: MemoryBedrock): GovernedBedrockRuntimeClient {
  return new GovernedBedrockRuntimeClient({ region: REGION, credentials: CREDENTIALS, requestHandler: handler, governance });
}

function checkReply(reply: { stopReason?: string | undefined }): void {
  if (reply.stopReason !== "end_turn") throw new Error(`unexpected Converse reply: ${JSON.stringify(reply)}`);
}

/**
 * Runs `calls` calls of `one`, `inFlight` at a time: `inFlight` are started at once, and a new one
 * starts as each finishes, until `calls` have finished. Returns the elapsed milliseconds. The first
 * failure stops the pool (no new call starts) and is thrown once the calls in flight have settled.
 */
async function pool(inFlight: number, calls: number, one: (index: number) => Promise<void>): Promise<number> {
  let started = 0;
  let finished = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (started < calls && failure === undefined) {
      const index = started++;
      try {
        await one(index);
        finished++;
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  const workers: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < Math.min(inFlight, calls); i++) workers.push(worker());
  await Promise.all(workers);
  const elapsed = performance.now() - start;
  if (failure !== undefined) throw failure.error;
  if (finished !== calls) throw new Error(`the pool finished ${finished} calls of ${calls}`);
  return elapsed;
}

// ---- 1. throughput with many calls in flight ----------------------------------------------------

/** Options of {@link throughputInFlight}. */
export interface ThroughputInFlightOptions {
  /** The governance of the governed client (e.g. the suite's 10 generated policies). */
  readonly governance: Governance;
  /** Calls kept in flight at once (e.g. 1,000). */
  readonly inFlight: number;
  /** Calls per round and variant (e.g. 20,000). */
  readonly calls: number;
  /** Interleaved rounds: each gives one rate per variant. */
  readonly rounds: number;
}

/**
 * Throughput with many concurrent calls: Converse calls per second with `inFlight` calls kept in
 * flight (a pool: `inFlight` are started at once, and a new one as each finishes, until `calls`
 * have finished), governed client (every call inside `runAs(BENCH_IDENTITY, ...)`, the same
 * allowed request, so its decision is memoized) vs the bare `BedrockRuntime`, each over its own
 * {@link MemoryBedrock}.
 *
 * Why: the per-call rows time one call at a time. A service behind a load balancer has hundreds
 * of calls waiting on Bedrock at once; this row shows whether governance (the async-context
 * scope, spans, the decision, the per-call state it keeps until the reply) costs more per call
 * when 1,000 calls share the event loop and the heap than when calls run one by one — its ratio
 * should stay near the per-call one, not fall with concurrency.
 *
 * One untimed pool run per variant warms up first. Then each round runs both pools one after the
 * other, alternating which goes first. Every reply is checked (stopReason "end_turn"), and every
 * governed call must have reached the handler (allowed and sent): any failure throws, so a broken
 * run cannot report a rate.
 *
 * @returns per-round rates in calls per second (higher is better).
 * @example
 * ```ts
 * const { governed, bare } = await throughputInFlight({ governance: g10, inFlight: 1000, calls: 20_000, rounds: 5 });
 * addRateRow("Converse throughput, 1,000 calls in flight: calls/s", governed, bare, 0.8);
 * ```
 */
export async function throughputInFlight(options: ThroughputInFlightOptions): Promise<{ governed: number[]; bare: number[] }> {
  const { governance, inFlight, calls, rounds } = options;
  if (!(inFlight >= 1 && calls >= 1 && rounds >= 1)) throw new Error(`throughputInFlight: inFlight, calls and rounds must be ≥ 1 (${JSON.stringify({ inFlight, calls, rounds })})`);
  const governedHandler = new MemoryBedrock();
  const bareHandler = new MemoryBedrock();
  const governedTarget = governedClient(governance, governedHandler);
  const bareTarget = bareClient(bareHandler);
  const variants = {
    governed: async () => checkReply(await runAs(BENCH_IDENTITY, () => governedTarget.send(new ConverseCommand(CONVERSE_INPUT)))),
    bare: async () => checkReply(await bareTarget.send(new ConverseCommand(CONVERSE_INPUT))),
  };
  const handlers = { governed: governedHandler, bare: bareHandler };
  const run = async (name: keyof typeof variants, count: number): Promise<number> => {
    const before = handlers[name].requests;
    const elapsed = await pool(inFlight, count, variants[name]);
    if (handlers[name].requests - before !== count) throw new Error(`${name}: ${count} calls, but ${handlers[name].requests - before} requests reached the handler`);
    return count / (elapsed / 1000);
  };
  try {
    const warmUpCalls = Math.min(calls, Math.max(inFlight, 500));
    await run("governed", warmUpCalls);
    await run("bare", warmUpCalls);
    const rates = { governed: [] as number[], bare: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      const order: (keyof typeof variants)[] = round % 2 === 0 ? ["governed", "bare"] : ["bare", "governed"];
      for (const name of order) rates[name].push(await run(name, calls));
    }
    return rates;
  } finally {
    governedTarget.destroy();
    bareTarget.destroy();
  }
}

// ---- 2. memory growth over a long run ----------------------------------------------------------

/** Options of {@link memoryGrowth}. */
export interface MemoryGrowthOptions {
  /** The governance of the governed client: its decision cache is part of what is measured. */
  readonly governance: Governance;
  /** Governed calls run before the first measurement (JIT, caches, the SDK's lazy state). */
  readonly warmUpCalls: number;
  /** Governed calls run between the two measurements (e.g. 200,000). */
  readonly calls: number;
  /** An RSS sample (no GC) every this many finished calls. */
  readonly sampleEvery: number;
  /** Calls in flight at once (default 64). */
  readonly concurrency?: number;
}

/** What {@link memoryGrowth} measured. Megabytes are MiB. */
export interface MemoryGrowthResult {
  /** RSS after the warm-up, at a settled point (full GCs until the heap stops shrinking). */
  rssBeforeMb: number;
  /** RSS after the measured calls, at a settled point. */
  rssAfterMb: number;
  /** rssAfterMb - rssBeforeMb. */
  growthMb: number;
  /** V8 heap used after the calls minus before, each after a full GC: what the run left reachable. */
  heapGrowthMb: number;
  /** V8's committed heap (heapTotal) after the calls minus before: where RSS growth after GC would show if V8 kept it. */
  heapTotalGrowthMb: number;
  /** Full GCs each measurement point took to settle (before, after). */
  settleGcs: [number, number];
  /** RSS every `sampleEvery` calls during the run (no GC: garbage included). */
  samples: { calls: number; rssMb: number }[];
  /** V8 heap used before / after (MiB, after a full GC). */
  heapBeforeMb: number;
  heapAfterMb: number;
  /** Wall time of the measured calls, and their rate. */
  wallMs: number;
  callsPerSecond: number;
  /** How many of the measured calls were requests never seen before (a new workload each). */
  distinctCalls: number;
  /** Decisions memoized at the end (bounded by the governance's decision cache size). */
  cachedDecisions: number;
  /** Where the gc function came from. */
  gc: "--expose-gc" | "v8.setFlagsFromString";
}

/** A function that runs a full garbage collection: `global.gc` when exposed, else one obtained without the flag. */
function gcFunction(): { gc: () => void; source: MemoryGrowthResult["gc"] } {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === "function") return { gc: exposed, source: "--expose-gc" };
  // Exposes `gc` in contexts created from now on; the current one keeps its globals, so a new
  // context hands it over. Verified on Node 20: the returned function collects the main heap.
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as unknown;
  if (typeof gc !== "function") throw new Error("memoryGrowth: no gc function (start node with --expose-gc)");
  return { gc: gc as () => void, source: "v8.setFlagsFromString" };
}

/**
 * A settled measurement point: full GCs, each compacting every fragmented page, until V8's
 * committed heap has not shrunk for five GCs in a row (at most 40), then a pause until RSS holds
 * still. Returns how many GCs it took.
 *
 * A run of governed calls leaves old space fragmented (pages where garbage of the calls lies among
 * memoized decisions still alive), and a forced mark-compact evacuates only the pages V8 picks:
 * measured on Node 20 after 200,000 governed calls, 3 GCs left 20-60 MiB of partly empty pages, and
 * even a dozen could leave a point 20-30 MiB above its floor, by a different amount at each point
 * and in each run. V8's `--compact-on-every-full-gc`, set only while settling, makes every one of
 * these GCs evacuate all of them. The pages V8 frees are unmapped by its background threads after
 * gc() returns: the pauses (timers, so weak callbacks and finalizers run too) let that happen.
 */
async function settle(gc: () => void): Promise<number> {
  const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
  let smallest = process.memoryUsage().heapTotal;
  let gcs = 0;
  setFlagsFromString("--compact-on-every-full-gc");
  try {
    for (let unchanged = 0; unchanged < 5 && gcs < 40; gcs++) {
      gc();
      await pause(20);
      const heapTotal = process.memoryUsage().heapTotal;
      if (heapTotal < smallest) {
        smallest = heapTotal;
        unchanged = 0;
      } else {
        unchanged++;
      }
    }
  } finally {
    setFlagsFromString("--no-compact-on-every-full-gc");
  }
  for (let rss = process.memoryUsage.rss(), i = 0; i < 20; i++) {
    await pause(100);
    const now = process.memoryUsage.rss();
    if (Math.abs(now - rss) < 256 * 1024) break;
    rss = now;
  }
  return gcs;
}

/** The workloads whose requests repeat: the bench identity and three like it (all allowed). */
const REPEATING_IDENTITIES: readonly WorkloadIdentity[] = [
  BENCH_IDENTITY,
  ...[1, 2, 3].map((i) => workloadIdentity({ ...BENCH_IDENTITY, id: `spiffe://acme.example/agents/bench-${i}` })),
];
/** maxTokens of the repeated requests: 64 values in [256, 1264] (the policies allow up to 4,096). */
const MAX_TOKENS_VALUES = 64;

/**
 * Memory growth over a long run: RSS (and V8 heap used) after `warmUpCalls` governed Converse
 * calls and a full GC, then again after `calls` more governed calls (`concurrency` in flight,
 * default 64) and a full GC, with RSS sampled every `sampleEvery` calls in between.
 *
 * Why: governance keeps state across calls — memoized decisions, per-identity Cedar entities,
 * sanitized attribution values, per-engine prepared entities — and state that grows with every
 * new request or workload is a leak in a long-running service. The run mixes three calls of four
 * of repeated requests (4 workloads × 64 maxTokens values: the decision cache answers them) with
 * one of a never-seen request (a new workload each, `bench-stream-<n>`), so over 200,000 calls
 * 50,000 distinct requests go through a decision cache of 10,000 (by default) and must be
 * evicted, and per-workload state must be collectable. Heap growth that stops once the cache is
 * full is the pass (measured on Node 20: ~1.8 KB per memoized decision of this shape, ~18 MiB at
 * 10,000, plus ~5-7 MiB once, the same after 60,000 calls as after 200,000); growth proportional
 * to `calls` is a leak. Both points are settled ({@link settle}: full GCs until V8's committed
 * heap stops shrinking, then until RSS holds still): after one or three GCs, old space still holds
 * 20-60 MiB of pages left fragmented by the run's garbage (more or less from run to run), which
 * RSS counted as growth. What stays resident but unused at both points alike (malloc's free
 * arenas: ~55-80 MiB left by V8 compiling cedar-wasm when the governance is created) cancels out.
 *
 * Every reply is checked (stopReason "end_turn") and every call must have reached the handler.
 * Needs a gc function: see the module's notes (`--expose-gc`, or obtained without it).
 *
 * @example
 * ```ts
 * const m = await memoryGrowth({ governance: g10, warmUpCalls: 5_000, calls: 200_000, sampleEvery: 20_000 });
 * notes.push(`RSS ${m.rssBeforeMb.toFixed(1)} → ${m.rssAfterMb.toFixed(1)} MiB, heap +${m.heapGrowthMb.toFixed(1)} MiB over ${m.distinctCalls} new requests`);
 * ```
 */
export async function memoryGrowth(options: MemoryGrowthOptions): Promise<MemoryGrowthResult> {
  const { governance, warmUpCalls, calls, sampleEvery, concurrency = 64 } = options;
  if (!(calls >= 1 && sampleEvery >= 1 && concurrency >= 1 && warmUpCalls >= 0)) {
    throw new Error(`memoryGrowth: calls, sampleEvery and concurrency must be ≥ 1 (${JSON.stringify({ warmUpCalls, calls, sampleEvery, concurrency })})`);
  }
  const { gc, source } = gcFunction();
  const handler = new MemoryBedrock();
  const client = governedClient(governance, handler);
  let sequence = 0;
  let distinct = 0;
  const one = async (): Promise<void> => {
    const n = sequence++;
    let identity: WorkloadIdentity;
    if (n % 4 === 3) {
      identity = workloadIdentity({ ...BENCH_IDENTITY, id: `spiffe://acme.example/agents/bench-stream-${n}` });
      distinct++;
    } else {
      identity = REPEATING_IDENTITIES[(n >> 2) % REPEATING_IDENTITIES.length]!;
    }
    const input: ConverseCommandInput = { ...CONVERSE_INPUT, inferenceConfig: { ...CONVERSE_INPUT.inferenceConfig, maxTokens: 256 + ((n * 7) % MAX_TOKENS_VALUES) * 16 } };
    checkReply(await runAs(identity, () => client.send(new ConverseCommand(input))));
  };
  try {
    if (warmUpCalls > 0) await pool(concurrency, warmUpCalls, one);
    const gcsBefore = await settle(gc);
    const before = process.memoryUsage();
    const requestsBefore = handler.requests;
    distinct = 0;
    const samples: { calls: number; rssMb: number }[] = [];
    let finished = 0;
    const wallMs = await pool(concurrency, calls, async () => {
      await one();
      if (++finished % sampleEvery === 0) samples.push({ calls: finished, rssMb: process.memoryUsage.rss() / MB });
    });
    if (handler.requests - requestsBefore !== calls) throw new Error(`${calls} governed calls, but ${handler.requests - requestsBefore} requests reached the handler`);
    const gcsAfter = await settle(gc);
    const after = process.memoryUsage();
    return {
      rssBeforeMb: before.rss / MB,
      rssAfterMb: after.rss / MB,
      growthMb: (after.rss - before.rss) / MB,
      heapGrowthMb: (after.heapUsed - before.heapUsed) / MB,
      heapTotalGrowthMb: (after.heapTotal - before.heapTotal) / MB,
      settleGcs: [gcsBefore, gcsAfter],
      samples,
      heapBeforeMb: before.heapUsed / MB,
      heapAfterMb: after.heapUsed / MB,
      wallMs,
      callsPerSecond: calls / (wallMs / 1000),
      distinctCalls: distinct,
      cachedDecisions: governance.engine.cachedDecisions,
      gc: source,
    };
  } finally {
    client.destroy();
  }
}

// ---- 3. the hand-written check -----------------------------------------------------------------

/** Options of {@link handWrittenIsAuthorized}. */
export interface HandWrittenIsAuthorizedOptions {
  /** The Cedar policy text, passed to `isAuthorized` on every call (e.g. `generatePolicies(10)`). */
  readonly policiesText: string;
  /** Interleaved rounds measured (after an untimed warm-up of a tenth of them, 20 to 200). */
  readonly rounds: number;
}

// Called through a Proxy, as the library does (src/policy/cedar-wasm.ts): Node 20's V8 can crash
// lazily deoptimizing a caller into which it inlined the JS-to-Wasm call; TurboFan never inlines
// through a Proxy. Its cost is nanoseconds next to the call's parse and evaluation.
const isAuthorized = new Proxy(cedar.isAuthorized, {});

type EntityUid = { type: string; id: string };

/**
 * The Cedar request a user builds by hand for one Converse call, with the policy text: the
 * workload (its groups as parents), the action with its group, the inference profile (a member
 * of its base model and of its provider) and the context the policies read.
 */
function handBuiltCall(identity: WorkloadIdentity, input: ConverseCommandInput, policiesText: string): cedar.AuthorizationCall {
  const principal: EntityUid = { type: "Bedrock::Workload", id: identity.id };
  const action: EntityUid = { type: "Bedrock::Action", id: "Converse" };
  const resource: EntityUid = { type: "Bedrock::Model", id: input.modelId! };
  const baseModel = input.modelId!.slice(input.modelId!.indexOf(".") + 1);
  const attrs: Record<string, string> = {};
  if (identity.environment !== undefined) attrs["environment"] = identity.environment;
  if (identity.owner !== undefined) attrs["owner"] = identity.owner;
  return {
    principal,
    action,
    resource,
    context: {
      environment: ENVIRONMENT,
      maxTokens: input.inferenceConfig?.maxTokens ?? 0,
      dataSensitivity: [],
      actionType: "read",
    },
    policies: { staticPolicies: policiesText },
    entities: [
      {
        uid: principal,
        attrs,
        parents: (identity.groups ?? []).map((id) => ({ type: "Bedrock::Group", id })),
        ...(identity.attributes && { tags: { ...identity.attributes } }),
      },
      { uid: action, attrs: {}, parents: [{ type: "Bedrock::Action", id: "ModelInvocation" }] },
      {
        uid: resource,
        attrs: { kind: "inference-profile", provider: "anthropic", baseModel, geo: "us" },
        parents: [
          { type: "Bedrock::Model", id: baseModel },
          { type: "Bedrock::Provider", id: "anthropic" },
        ],
      },
    ],
  };
}

/** Runs the hand-built check; throws (without calling Bedrock) unless Cedar answered a clean allow. */
function checkByHand(call: cedar.AuthorizationCall): void {
  const answer = isAuthorized(call);
  if (answer.type !== "success") throw new Error(`isAuthorized failed: ${JSON.stringify(answer.errors)}`);
  if (answer.response.decision !== "allow" || answer.response.diagnostics.errors.length > 0) {
    throw new Error(`isAuthorized did not allow the bench call: ${JSON.stringify(answer.response)}`);
  }
}

/**
 * The "what users write by hand today" row: a bare `BedrockRuntime` client where, before each
 * `send`, the caller builds a Cedar request for BENCH_IDENTITY and MODEL_ID and runs cedar-wasm's
 * stateless `isAuthorized` with the policy text passed on every call (`policies: { staticPolicies:
 * policiesText }`: parsed every time), throwing unless the answer is an allow. Timed per call,
 * from before the check to the parsed reply, interleaved call by call with the bare client alone.
 *
 * Why: the governed client's overhead is best judged against the alternative, not only against no
 * governance: the hand-written check gives no identity scope, spans, records or memoization, and
 * pays a policy parse per call (growing with the policy set). The first answer is checked
 * (success, allow, no policy errors) before anything is timed, so a malformed request never
 * reaches cedar-wasm in a loop (it leaks on every call it throws on, and dies after ~1,150).
 *
 * @example
 * ```ts
 * const { handWritten, bare } = await handWrittenIsAuthorized({ policiesText: generatePolicies(10), rounds: 3000 });
 * addRow("Hand-written isAuthorized (policy text per call) + bare send vs bare", handWritten, bare);
 * ```
 */
export async function handWrittenIsAuthorized(options: HandWrittenIsAuthorizedOptions): Promise<{ handWritten: number[]; bare: number[] }> {
  const { policiesText, rounds } = options;
  if (!(rounds >= 1)) throw new Error(`handWrittenIsAuthorized: rounds must be ≥ 1 (${rounds})`);
  if (CONVERSE_INPUT.modelId !== MODEL_ID) throw new Error(`CONVERSE_INPUT names ${CONVERSE_INPUT.modelId}, not ${MODEL_ID}`);
  // The request must be well-formed and allowed before it runs in a loop.
  checkByHand(handBuiltCall(BENCH_IDENTITY, CONVERSE_INPUT, policiesText));
  const handWrittenTarget = bareClient(new MemoryBedrock());
  const bareTarget = bareClient(new MemoryBedrock());
  const variants: Record<"handWritten" | "bare", Measure> = {
    handWritten: async () => {
      const command = new ConverseCommand(CONVERSE_INPUT);
      const start = performance.now();
      checkByHand(handBuiltCall(BENCH_IDENTITY, CONVERSE_INPUT, policiesText));
      const reply = await handWrittenTarget.send(command);
      const elapsed = performance.now() - start;
      checkReply(reply);
      return elapsed;
    },
    bare: async () => {
      const command = new ConverseCommand(CONVERSE_INPUT);
      const start = performance.now();
      const reply = await bareTarget.send(command);
      const elapsed = performance.now() - start;
      checkReply(reply);
      return elapsed;
    },
  };
  try {
    await warmUp(variants, Math.max(20, Math.min(200, Math.ceil(rounds / 10))));
    return await interleave(variants, rounds);
  } finally {
    handWrittenTarget.destroy();
    bareTarget.destroy();
  }
}

// ---- 5. policies shared by every workload ---------------------------------------------------------

/** Options of {@link broadPolicySet}. */
export interface BroadPolicySetOptions {
  /** Policies whose scope names neither a principal nor a resource (e.g. 3,000). */
  readonly shared: number;
  /** Workloads, each with a permit of its own, calling in turn (e.g. 200). */
  readonly workloads: number;
  /** Rounds of one call per workload, after one round of warm-up. */
  readonly rounds: number;
}

/**
 * Decisions when thousands of policies apply to every workload (`forbid (principal, action,
 * resource) when { … }`): such policies are preparsed once, as a part shared by every workload's
 * slice, instead of once per workload. Each call is a new request (a principal of its own, in the
 * workload's group) so that it is evaluated, not memoized. Returns the load time and the milliseconds of each
 * decision after the warm-up round.
 *
 * @example
 * ```ts
 * const { loadMs, decisions } = broadPolicySet({ shared: 3_000, workloads: 200, rounds: 2 });
 * ```
 */
export function broadPolicySet(options: BroadPolicySetOptions): { loadMs: number; decisions: number[] } {
  const { shared, workloads, rounds } = options;
  const texts = [`@id("no-bulk-export") forbid (principal, action, resource) when { context has purpose && context.purpose like "*bulk-export*" };`];
  for (let k = 1; k < shared; k++) texts.push(`@id("shared-${k}") forbid (principal, action, resource) when { context has purpose && context.purpose == "banned-${k}" };`);
  for (let w = 0; w < workloads; w++) texts.push(`@id("workload-${w}") permit (principal in Bedrock::Group::"broad-${w}", action, resource);`);
  const start = performance.now();
  const governance = library.createGovernance({ environment: ENVIRONMENT, policies: texts.join("\n") });
  const loadMs = performance.now() - start;
  const decisions: number[] = [];
  let task = 0;
  for (let round = 0; round <= rounds; round++) {
    for (let w = 0; w < workloads; w++) {
      const principal = { type: "Bedrock::Workload", id: `broad-${w}-${task}` };
      const request = {
        principal,
        action: { type: "Bedrock::Action", id: "Converse" },
        resource: { type: "Bedrock::Model", id: MODEL_ID },
        context: { environment: ENVIRONMENT, dataSensitivity: [], purpose: `task-${task++}` },
        entities: [{ uid: principal, attrs: {}, parents: [{ type: "Bedrock::Group", id: `broad-${w}` }] }],
      };
      const begin = performance.now();
      const decision = governance.engine.authorize(request);
      const elapsed = performance.now() - begin;
      if (decision.effect !== "allow") throw new Error(`broad set: workload ${w} was denied: ${decision.reasons.join("; ")}`);
      if (round > 0) decisions.push(elapsed);
    }
  }
  return { loadMs, decisions };
}
