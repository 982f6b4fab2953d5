/**
 * Where a governed call spends its time: each piece of the governed path timed on its own
 * (median of batches, µs per operation), at 10 and 1,000 policies. A diagnostic companion to
 * `bench/run.ts`, for when a target is missed; it reaches into internal modules, so it may need
 * updating when they change. A section takes the governed ConverseStream with tool-use
 * deltas apart: the stream guard, the response observer, the tool call assembler and the tool
 * decision at `contentBlockStop`, per stream of {@link ToolUseStream}'s events. The last one
 * measures, on the built package, what the governance middleware cost in the SDK's pipeline
 * (`bench/ablation.ts` measures each piece there: a copy of the build with that piece stubbed out).
 *
 *   npm run build && npx tsx bench/pieces.ts
 * @module
 */
import { randomUUID } from "node:crypto";
import { trace } from "@opentelemetry/api";
import { AccessDeniedError, runAs, currentScope, type Governance } from "../src/index.js";
import { createGovernance } from "../src/governance.js";
import { attributedInput } from "../src/middleware/attribution.js";
import { GovernedCall } from "../src/middleware/governed-call.js";
import { ConverseStreamInspector } from "../src/middleware/stream-inspectors.js";
import { snapshotInput } from "../src/middleware/input-snapshot.js";
import { authorizeCall } from "../src/policy/authorize-call.js";
import { wasm } from "../src/policy/cedar-wasm.js";
import { COMMANDS } from "../src/policy/commands.js";
import { buildCedarRequest } from "../src/policy/request-builder.js";
import { assertEntity, assertRequestEnvelope, type CedarRequest } from "../src/policy/request-shape.js";
import { recordIdentity, startCallSpan } from "../src/telemetry/call-span.js";
import { newObservation, observeConverseStreamEvent } from "../src/telemetry/response-observer.js";
import { guardStream } from "../src/middleware/stream-guard.js";
import { authorizeTool } from "../src/tools/authorize-tool.js";
import { toCedarValue } from "../src/tools/json-schema-to-cedar.js";
import { StreamToolCallDecider } from "../src/tools/tool-call-decisions.js";
import { ToolCallAssembler } from "../src/tools/tool-calls.js";
import { ToolUseStream } from "./memory-bedrock.js";
import { BENCH_IDENTITY, ENVIRONMENT, generatePolicies, generateToolPolicies, MODEL_ID, REGION, refundInput, TOOL_IDENTITY, TOOLS } from "./policies.js";
import { median } from "./stats.js";
import { classifyCredentials } from "../src/credentials/credential-facts.js";

process.removeAllListeners("warning");

const INPUT: Record<string, unknown> = {
  modelId: MODEL_ID,
  system: [{ text: "You are the invoice assistant. Answer with the total only." }],
  messages: [{ role: "user", content: [{ text: "What is the total of invoice 4711?" }] }],
  inferenceConfig: { maxTokens: 512, temperature: 0 },
};
const spec = COMMANDS["ConverseCommand"]!;

/** µs per call of `fn`: the median over `batches` batches of `perBatch` calls, after a warm-up batch. */
function microseconds(fn: () => unknown, perBatch: number, batches = 15): number {
  for (let i = 0; i < perBatch; i++) fn();
  const results: number[] = [];
  for (let b = 0; b < batches; b++) {
    const start = performance.now();
    for (let i = 0; i < perBatch; i++) fn();
    results.push(((performance.now() - start) * 1000) / perBatch);
  }
  return median(results);
}

async function microsecondsAsync(fn: () => Promise<unknown>, perBatch: number, batches = 15): Promise<number> {
  for (let i = 0; i < perBatch; i++) await fn();
  const results: number[] = [];
  for (let b = 0; b < batches; b++) {
    const start = performance.now();
    for (let i = 0; i < perBatch; i++) await fn();
    results.push(((performance.now() - start) * 1000) / perBatch);
  }
  return median(results);
}

/** µs per call that `a` costs more than `b`: batches of each, alternated, median of the differences. */
function differenceMicroseconds(a: () => unknown, b: () => unknown, perBatch: number, batches = 15): number {
  for (let i = 0; i < perBatch; i++) (a(), b());
  const differences: number[] = [];
  for (let k = 0; k < batches; k++) {
    let start = performance.now();
    for (let i = 0; i < perBatch; i++) a();
    const ta = performance.now() - start;
    start = performance.now();
    for (let i = 0; i < perBatch; i++) b();
    differences.push(((ta - (performance.now() - start)) * 1000) / perBatch);
  }
  return median(differences);
}

const lines: [string, number][] = [];
function report(label: string, us: number): void {
  lines.push([label, us]);
  console.log(`${label.padEnd(78)} ${us.toFixed(1).padStart(8)} µs`);
}

// Wrap the one door to cedar-wasm to keep a copy of the exact (pruned) call the engine makes, to replay it alone.
let lastCall: unknown;
const original = wasm.statefulIsAuthorized;
wasm.statefulIsAuthorized = (call) => {
  lastCall = call;
  return original(call);
};

const BENCH_CREDENTIALS = classifyCredentials({ accessKeyId: "AKIABENCH", secretAccessKey: "bench" });

function request(g: Governance): CedarRequest {
  const scope = { identity: BENCH_IDENTITY, purpose: undefined, dataSensitivity: [], actionType: "read" as const, task: undefined };
  return buildCedarRequest({
    identity: BENCH_IDENTITY,
    scope,
    spec,
    resource: spec.resource(INPUT),
    facts: spec.facts(INPUT),
    environment: g.environment,
    region: REGION,
    credentials: BENCH_CREDENTIALS,
    nowMs: Date.now(),
  });
}

async function main(): Promise<void> {
  const g10 = createGovernance({ environment: ENVIRONMENT, policies: generatePolicies(10) });
  const g1000 = createGovernance({ environment: ENVIRONMENT, policies: generatePolicies(1000) });
  const tracer = trace.getTracer("bench");

  console.log("identity and scope");
  report("runAs(identity, () => undefined)", microseconds(() => runAs(BENCH_IDENTITY, () => undefined), 20000));
  report("currentScope() inside runAs", runAs(BENCH_IDENTITY, () => microseconds(() => currentScope(), 50000)));
  report("await runAs(identity, async () => undefined)", await microsecondsAsync(() => runAs(BENCH_IDENTITY, async () => undefined), 10000));

  console.log("\nspan and call state (no tracer provider: no-op spans)");
  const scope = runAs(BENCH_IDENTITY, () => currentScope());
  report(
    "startCallSpan + recordIdentity",
    microseconds(() => recordIdentity(startCallSpan(tracer, "ConverseCommand", spec, INPUT, false), BENCH_IDENTITY, scope, ENVIRONMENT), 20000),
  );
  const span = startCallSpan(tracer, "ConverseCommand", spec, INPUT, false);
  report("snapshotInput (the copy the call is decided on and sends)", microseconds(() => snapshotInput(INPUT), 20000));
  report("new GovernedCall (randomUUID, Date, observation)", microseconds(() => new GovernedCall(g10, "ConverseCommand", span, BENCH_IDENTITY, scope, INPUT), 20000));

  console.log("\nthe decision, 10 policies");
  report("spec.resource(input) + spec.facts(input)", microseconds(() => [spec.resource(INPUT), spec.facts(INPUT)], 20000));
  report("buildCedarRequest (incl. resource + facts)", microseconds(() => request(g10), 20000));
  for (const [label, g] of [
    ["10 policies", g10],
    ["1,000 policies", g1000],
  ] as const) {
    const req = request(g);
    const n = label === "10 policies" ? 2000 : 100;
    const batches = label === "10 policies" ? 15 : 7;
    const total = microseconds(() => g.engine.authorize(req), n, batches);
    const call = lastCall as Parameters<typeof original>[0];
    const inWasm = microseconds(() => original(call), n, batches);
    report(`engine.authorize, ${label} (total)`, total);
    report(`  cedar statefulIsAuthorized alone, same (pruned) call, ${label}`, inWasm);
    report(`  => JS around it (prune, assert, decision; paired batches), ${label}`, differenceMicroseconds(() => g.engine.authorize(req), () => original(call), n, batches));
    report(`  request shape check alone (envelope + entities), ${label}`, microseconds(() => { assertRequestEnvelope(req); req.entities.forEach((e, i) => assertEntity(e, `entities[${i}]`)); }, 20000));
    const minimal = { ...call, context: {}, entities: [] } as typeof call;
    report(
      `  statefulIsAuthorized, empty context, no entities, ${label}`,
      microseconds(() => original(minimal), n, batches),
    );
    const noTags = { ...call, entities: call.entities.map((e) => ({ uid: e.uid, attrs: {}, parents: e.parents })) } as typeof call;
    report(
      `  statefulIsAuthorized, full context, entities without attrs/tags, ${label}`,
      microseconds(() => original(noTags), n, batches),
    );
    report(
      `authorizeCall (everything the middleware decides with), ${label}`,
      microseconds(
        () =>
          authorizeCall({ engine: g.engine, commandName: "ConverseCommand", spec, input: INPUT, identity: BENCH_IDENTITY, scope, environment: ENVIRONMENT, region: REGION, credentials: BENCH_CREDENTIALS }),
        n,
        batches,
      ),
    );
  }
  g10.engine.authorize(request(g10));
  const { preparsedPolicySetId: _id, ...sent } = lastCall as Record<string, unknown>;
  console.log(`  the call Cedar receives at 10 policies (after pruning): ${JSON.stringify(sent)}`);

  console.log("\nafter the decision");
  const call = new GovernedCall(g10, "ConverseCommand", span, BENCH_IDENTITY, scope, INPUT);
  const decision = g10.engine.authorize(request(g10));
  call.decided(decision);
  report("attribution (requestMetadata merge + copy)", microseconds(() => attributedInput(call, INPUT), 20000));
  report(
    "GovernedCall.finish (end span, build decision record)",
    microseconds(() => {
      const c = new GovernedCall(g10, "ConverseCommand", span, BENCH_IDENTITY, scope, INPUT);
      c.decided(decision);
      c.finish("completed");
    }, 20000),
  );
  report("new AccessDeniedError(decision) (stack capture)", microseconds(() => new AccessDeniedError(decision), 20000));

  await toolStreamPieces();
}

/** The governed ConverseStream with tool-use deltas (bench/run.ts's throughput row), piece by piece. */
async function toolStreamPieces(): Promise<void> {
  const g = createGovernance({ environment: ENVIRONMENT, policies: generateToolPolicies(20), tools: TOOLS, toolEnforcement: "result" });
  const input = refundInput(34);
  const reply = new ToolUseStream("issue_refund", input, { chunkSize: 3 });
  const events = reply.events;
  const n = events.length;
  const scope = runAs(TOOL_IDENTITY, () => currentScope());
  const tracer = trace.getTracer("bench");
  const declared = g.tools.get("issue_refund")!;
  console.log(
    `\ntool calls: a ConverseStream reply of ${n} events (${reply.toolInputDeltas} toolUse.input deltas of 3 characters, a ${reply.inputJson.length}-character refund), ` +
      `20 policies; "per stream" = all ${n} events`,
  );
  report(
    "per stream: ToolCallAssembler.accept for every event (incl. the parse at the stop)",
    microseconds(() => {
      const assembler = new ToolCallAssembler();
      for (const event of events) assembler.accept(event);
    }, 50),
  );
  report(
    "per stream: observeConverseStreamEvent for every event",
    microseconds(() => {
      const observation = newObservation();
      for (const event of events) observeConverseStreamEvent(observation, event, false);
    }, 50),
  );
  report("JSON.parse of the assembled input (flat string)", microseconds(() => JSON.parse(reply.inputJson), 500));
  report("toCedarValue(the refund, its schema's Cedar type)", microseconds(() => toCedarValue(input, declared.inputType!), 500));
  const base = { engine: g.engine, tools: g.tools, environment: g.environment, region: REGION, identity: TOOL_IDENTITY, scope, name: "issue_refund", phase: "call" as const };
  report("authorizeTool(the refund) (its input pruned to what the policies read, then memoized)", microseconds(() => authorizeTool({ ...base, input, toolUseId: "t1" }), 100, 11));
  authorizeTool({ ...base, input, toolUseId: "t1" });
  const call = lastCall as Parameters<typeof original>[0];
  const context = call.context as Record<string, unknown> & { input: Record<string, unknown> };
  const withInput = (value: unknown) => ({ ...call, context: { ...context, input: value } }) as typeof call;
  // The engine sends Cedar the input pruned to what the policies read (here: { amount }).
  report("  cedar statefulIsAuthorized alone, the pruned call", microseconds(() => original(call), 100, 11));
  const whole = toCedarValue(input, declared.inputType!);
  if (whole.ok) report("  same, with the whole input (what pruning saves)", microseconds(() => original(withInput(whole.value)), 100, 11));
  report("  same, without input", microseconds(() => original(withInput(undefined)), 500, 11));

  async function* source(): AsyncGenerator<Record<string, unknown>> {
    for (const event of events) yield event;
  }
  const newCall = () => new GovernedCall(g, "ConverseStreamCommand", tracer.startSpan("bench"), TOOL_IDENTITY, scope, {});
  const plain = await microsecondsAsync(async () => {
    for await (const _event of source()) void _event;
  }, 30);
  const guarded = await microsecondsAsync(async () => {
    const c = newCall();
    for await (const _event of guardStream(source(), c, new ConverseStreamInspector(c.observation, false, undefined))) void _event;
  }, 30);
  const decided = await microsecondsAsync(async () => {
    const c = newCall();
    // What the authorization middleware builds for a ConverseStream offering both tools (no systemTools).
    const toolScope = {
      governance: g,
      identity: TOOL_IDENTITY,
      scope,
      region: REGION,
      offered: new Set(["issue_refund", "lookup_invoice"]),
      offerDecisions: new Map(),
      serverSideTools: new Set<string>(),
      span: c.span,
      command: "ConverseStreamCommand",
      credentials: BENCH_CREDENTIALS,
    };
    const inspector = new ConverseStreamInspector(c.observation, false, new StreamToolCallDecider(toolScope, []));
    for await (const _event of guardStream(source(), c, inspector)) void _event;
  }, 30);
  report("per stream: for await over an async generator of the events (no SDK, no governance)", plain);
  report("per stream: the same through guardStream with the observer", guarded);
  report("per stream: the same with the tool call decider (the governed path)", decided);
  report("  => guard + observer, per event", (guarded - plain) / n);
  report("  => tool call assembly + decision, per stream", decided - guarded);
}

/**
 * The governed call as the SDK runs it, on the built package (`npm run build` first): what the
 * governance middleware cost in the SDK's pipeline, beside what their own code costs. Each figure
 * is the difference of two medians of whole calls, interleaved (a noisy machine, and the clients
 * measured beside, move each by up to 10 µs): the middleware a stack holds (no-op ones), the
 * attribution entries the SDK serializes, the initialize step alone (calls stopped right after it),
 * and the attempt middleware (two clients on their own).
 */
async function sdkAroundGovernance(): Promise<void> {
  const { library } = await import("./library.js");
  const { BedrockRuntime, ConverseCommand } = await import("@aws-sdk/client-bedrock-runtime");
  const { CREDENTIALS, MemoryBedrock } = await import("./memory-bedrock.js");
  const { CONVERSE_INPUT } = await import("./policies.js");
  const { interleave, warmUp } = await import("./stats.js");
  type Client = InstanceType<typeof BedrockRuntime>;
  const governance = library.createGovernance({ environment: ENVIRONMENT, policies: generatePolicies(10) });
  const bare = (): Client => new BedrockRuntime({ region: REGION, credentials: CREDENTIALS, requestHandler: new MemoryBedrock() });
  const governed = (): Client => new library.GovernedBedrockRuntimeClient({ region: REGION, credentials: CREDENTIALS, requestHandler: new MemoryBedrock(), governance });
  const passThrough = ((next: (args: unknown) => Promise<unknown>) => (args: unknown) => next(args)) as never;
  const stopAfterInitialize = (client: Client): Client => {
    // Answers at the end of the initialize step: nothing serialized, signed or sent.
    client.middlewareStack.add((() => async () => ({ output: { $metadata: {}, stopReason: "end_turn" }, response: {} })) as never, { name: "piecesStop", step: "initialize", priority: "low" });
    return client;
  };
  const withNoOps = bare();
  withNoOps.middlewareStack.add(passThrough, { name: "piecesNoOpInitialize", step: "initialize", priority: "high" });
  withNoOps.middlewareStack.addRelativeTo(passThrough, { name: "piecesNoOpAttempt", relation: "after", toMiddleware: "httpSigningMiddleware" });
  const withoutAttempt = governed();
  withoutAttempt.middlewareStack.remove("bedrockWardenAttemptMiddleware");
  const attribution = { "warden.workload": BENCH_IDENTITY.id, "warden.trace_id": "0123456789abcdef0123456789abcdef" };
  const call = (client: Client, governedCall: boolean, input: () => object = () => CONVERSE_INPUT) => async () => {
    const command = new ConverseCommand(input() as never);
    const start = performance.now();
    await (governedCall ? library.runAs(BENCH_IDENTITY, () => client.send(command)) : client.send(command));
    return performance.now() - start;
  };
  const variants = {
    bare: call(bare(), false),
    noOps: call(withNoOps, false),
    bareAttributed: call(bare(), false, () => ({ ...CONVERSE_INPUT, requestMetadata: { ...attribution, "warden.decision_id": randomUUID() } })),
    governed: call(governed(), true),
    bareStopped: call(stopAfterInitialize(bare()), false),
    governedStopped: call(stopAfterInitialize(governed()), true),
  };
  await warmUp(variants, 500);
  const samples = await interleave(variants, 3000);
  const us = (name: keyof typeof variants) => median(samples[name]) * 1000;
  console.log("\nthe SDK around governance (built package; differences of medians of whole calls, 10 policies, memoized decision)");
  report("bare Converse call", us("bare"));
  report("governed Converse call", us("governed"));
  report("  two no-op middleware in a bare client's stack (initialize, after signing)", us("noOps") - us("bare"));
  report("  three attribution entries in the request (serialized by the SDK)", us("bareAttributed") - us("bare"));
  report("  the initialize step: governed vs bare, each call stopped right after it", us("governedStopped") - us("bareStopped"));
  // On their own: interleaved with all the clients above, this difference read 10–13 µs; on its own, 2–10 µs from run to run.
  const attempt = { governed: call(governed(), true), withoutAttempt: call(withoutAttempt, true) };
  await warmUp(attempt, 500);
  const attemptSamples = await interleave(attempt, 3000);
  report("  the attempt middleware (signature check + response capture), two clients on their own", (median(attemptSamples.governed) - median(attemptSamples.withoutAttempt)) * 1000);
}

main().then(sdkAroundGovernance).catch((error: unknown) => {
  console.error("pieces crashed:", error);
  process.exitCode = 1;
});
