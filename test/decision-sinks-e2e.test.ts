import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConverseCommand, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import {
  AccessDeniedError,
  createGovernance,
  createJsonlSink,
  EvidenceUnavailableError,
  GovernedBedrockRuntimeClient,
  governTool,
  runAs,
  verifyDecisionLog,
  type DecisionRecord,
  type DecisionSink,
} from "../src/index.js";
import { converseStreamFrames, eventStreamResponse } from "./support/event-stream.js";
import { BASE_POLICIES, converseInput, CREDENTIALS, invoiceAgent, researchAgent, stranger, TITAN } from "./support/governance.js";
import { MemoryHandler, jsonResponse, converseReply } from "./support/memory-handler.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function client(governance: ReturnType<typeof createGovernance>, handler = new MemoryHandler()) {
  return new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: handler, governance, maxAttempts: 1 });
}

describe("decision records through sinks", () => {
  it("every call yields exactly one record in a verified, hash-chained log, under concurrency, denials, failures and abandoned streams", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-log-"));
    const sink = createJsonlSink({ path: join(dir, "decisions.jsonl"), maxBytes: 64 * 1024, flushIntervalMs: 5 });
    const seen: DecisionRecord[] = [];
    const governance = createGovernance({ environment: "test", policies: BASE_POLICIES, sinks: [sink], onDecision: (r) => seen.push(r) });
    const handler = new MemoryHandler((request) =>
      request.path.endsWith("/converse-stream")
        ? eventStreamResponse(converseStreamFrames(["a", "b", "c", "d"])).response
        : request.path.includes("amazon.titan")
          ? jsonResponse({ message: "throttled" }, 429, { "x-amzn-errortype": "ThrottlingException" })
          : jsonResponse(converseReply("ok")),
    );
    const governed = client(governance, handler);
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      const kind = i % 5;
      if (kind === 0) calls.push(runAs(invoiceAgent, () => governed.send(new ConverseCommand(converseInput()))));
      else if (kind === 1) calls.push(runAs(stranger, () => governed.send(new ConverseCommand(converseInput()))).catch((e: unknown) => assert.ok(e instanceof AccessDeniedError)));
      else if (kind === 2) calls.push(runAs(researchAgent, () => governed.send(new ConverseCommand(converseInput(TITAN)))).catch(() => undefined)); // allowed, then failed
      else if (kind === 3) {
        calls.push(
          runAs(invoiceAgent, async () => {
            const { stream } = await governed.send(new ConverseStreamCommand(converseInput()));
            for await (const _ of stream ?? []) break; // abandoned after the first event
          }),
        );
      } else calls.push(governed.send(new ConverseCommand(converseInput())).catch(() => undefined)); // no identity
    }
    await Promise.all(calls);
    await governance.flush();
    const verification = await verifyDecisionLog(join(dir, "decisions.jsonl"));
    assert.equal(verification.ok, true, JSON.stringify(verification.firstProblem));
    assert.equal(verification.records, 300);
    assert.ok(verification.files.length > 1, "rotated on the way");
    assert.equal(seen.length, 300);
    const outcomes = new Map<string, number>();
    for (const r of seen) outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(outcomes), { completed: 60, denied: 120, failed: 60, abandoned: 60 });
    assert.equal(new Set(seen.map((r) => r.id)).size, 300, "one record per call, none twice");
    assert.throws(() => ((seen[0] as { outcome: string }).outcome = "completed"), TypeError, "a record given to sinks cannot be changed");
    governed.destroy();
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("fails closed: once the log cannot be written, calls (and tools) are denied until it recovers, and no record is lost", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-log-"));
    const logDir = join(dir, "logs");
    mkdirSync(logDir);
    const path = join(logDir, "decisions.jsonl");
    const sink = createJsonlSink({ path, flushIntervalMs: 5, retryIntervalMs: 20 });
    const governance = createGovernance({ environment: "test", policies: BASE_POLICIES, sinks: [sink], tools: [{ name: "lookup", effect: "read" }] });
    const governed = client(governance);
    const lookup = governTool({ name: "lookup" }, async () => "found", { governance });
    await runAs(invoiceAgent, () => governed.send(new ConverseCommand(converseInput())));
    await governance.flush();

    rmSync(logDir, { recursive: true, force: true }); // the log's directory disappears (a full or lost disk)
    await runAs(invoiceAgent, () => governed.send(new ConverseCommand(converseInput()))).catch(() => undefined); // its record cannot be written
    for (let i = 0; i < 50 && sink.failure === undefined; i++) await sleep(10);
    assert.ok(sink.failure, "the sink reports its failure");
    await assert.rejects(
      () => runAs(invoiceAgent, () => governed.send(new ConverseCommand(converseInput()))),
      (e: unknown) => e instanceof EvidenceUnavailableError && /decision sink jsonl is failing/.test(e.message),
    );
    await assert.rejects(() => runAs(researchAgent, () => lookup({})), EvidenceUnavailableError);

    mkdirSync(logDir); // it comes back
    for (let i = 0; i < 100 && sink.failure !== undefined; i++) await sleep(10);
    assert.equal(sink.failure, undefined, "recovered");
    await runAs(invoiceAgent, () => governed.send(new ConverseCommand(converseInput())));
    await governance.flush();
    const lines = readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l) as DecisionRecord & { seq: number });
    assert.deepEqual(lines.map((l) => l.seq), [2, 3, 4, 5], "the queued records (seq 2-4) and the new one, in order: none lost");
    assert.deepEqual(lines.map((l) => l.outcome), ["completed", "denied", "denied", "completed"]);
    governed.destroy();
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('onSinkFailure: "continue" keeps calling through a failing sink; a throwing onDecision listener never fails closed', async () => {
    const broken: DecisionSink = { name: "broken", write() {}, flush: async () => {}, close: async () => {}, failure: new Error("disk full") };
    const lenient = createGovernance({ environment: "test", policies: BASE_POLICIES, sinks: [broken], onSinkFailure: "continue" });
    const strict = createGovernance({ environment: "test", policies: BASE_POLICIES, sinks: [broken] });
    const listener = createGovernance({ environment: "test", policies: BASE_POLICIES, onDecision: () => { throw new Error("listener bug"); } });
    const [a, b, c] = [client(lenient), client(strict), client(listener)];
    await runAs(invoiceAgent, () => a.send(new ConverseCommand(converseInput())));
    await assert.rejects(() => runAs(invoiceAgent, () => b.send(new ConverseCommand(converseInput()))), EvidenceUnavailableError);
    await runAs(invoiceAgent, () => c.send(new ConverseCommand(converseInput())));
    await runAs(invoiceAgent, () => c.send(new ConverseCommand(converseInput())));
    for (const x of [a, b, c]) x.destroy();
  });

  it("a sink whose write throws (which a sink must never do) is failing until a write succeeds: the next call is denied, not its record lost", async () => {
    let throwing = true;
    const written: DecisionRecord[] = [];
    const custom: DecisionSink = {
      name: "custom",
      write(record) {
        if (throwing) throw new Error("queue full");
        written.push(record);
      },
      flush: async () => {},
      close: async () => {},
      failure: undefined,
    };
    const governance = createGovernance({ environment: "test", policies: BASE_POLICIES, sinks: [custom] });
    const c = client(governance);
    const send = () => runAs(invoiceAgent, () => c.send(new ConverseCommand(converseInput())));
    await send(); // its record was lost: the sink threw
    await assert.rejects(send, (e: unknown) => e instanceof EvidenceUnavailableError && /custom threw on write: queue full/.test(e.message));
    throwing = false;
    await assert.rejects(send, EvidenceUnavailableError); // this denial's record goes through: the sink works again
    await send();
    assert.deepEqual(written.map((r) => r.outcome), ["denied", "completed"]);
    c.destroy();
  });

  it("a record is frozen however deep: a listener cannot rewrite a withheld tool's reasons before a sink serializes it", async () => {
    const seen: DecisionRecord[] = [];
    const sink: DecisionSink = { name: "keep", write: (r) => void seen.push(r), flush: async () => {}, close: async () => {}, failure: undefined };
    const governance = createGovernance({ environment: "test", policies: BASE_POLICIES, sinks: [sink] });
    const c = client(governance);
    const toolConfig = { tools: [{ toolSpec: { name: "wire_money", inputSchema: { json: { type: "object" } } } }] };
    await runAs(invoiceAgent, () => c.send(new ConverseCommand(converseInput(undefined, { toolConfig }))));
    const withheld = seen[0]?.tools?.withheld[0] as { reasons: string[] } | undefined;
    assert.ok(withheld, "the withheld tool is in the record");
    assert.ok(Object.isFrozen(withheld) && Object.isFrozen(withheld.reasons));
    assert.throws(() => withheld.reasons.push("rewritten"), TypeError);
    c.destroy();
  });

  it("malformed sinks options are refused, naming what to give", () => {
    assert.throws(() => createGovernance({ environment: "test", policies: BASE_POLICIES, sinks: [{ write() {} } as never] }), /each sink must be a DecisionSink/);
    assert.throws(() => createGovernance({ environment: "test", policies: BASE_POLICIES, onSinkFailure: "ignore" as never }), /onSinkFailure: must be "deny" or "continue"/);
  });
});
