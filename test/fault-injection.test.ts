import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { ConverseCommand, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { createGovernance, runAs, WARDEN, type DecisionRecord } from "../src/index.js";
import { wasm } from "../src/policy/cedar-wasm.js";
import { BASE_POLICIES, HAIKU, invoiceAgent } from "./support/governance.js";
import { useLocalBedrock } from "./support/local-bedrock.js";
import { exporter, tracerProvider } from "./support/tracing.js";

const records: DecisionRecord[] = [];
const local = useLocalBedrock(records);
const messages = [{ role: "user" as const, content: [{ text: "Reconcile invoice 4711" }] }];
const throttled = { error: { status: 429, type: "ThrottlingException", message: "Too many requests" } };

function governed(maxAttempts: number) {
  const governance = createGovernance({ environment: "test", policies: BASE_POLICIES, tracerProvider, onDecision: (r) => records.push(r) });
  return local.client(governance, { maxAttempts, retryMode: "standard" });
}

const decisionIds = () =>
  local.server.requests.map((r) => (r.body as { requestMetadata?: Record<string, string> } | undefined)?.requestMetadata?.["warden.decision_id"]);

describe("fault injection: one decision and one span per governed call, whatever the endpoint does", () => {
  it("throttled twice, then answered: the SDK retries the decided request; one decision, one span, one record", async () => {
    local.server.queueReplies(throttled, throttled, { text: "done" });
    const client = governed(3);
    const output = await runAs(invoiceAgent, () => client.send(new ConverseCommand({ modelId: HAIKU, messages })));
    assert.equal(output.output?.message?.content?.[0]?.text, "done");
    assert.equal(local.server.requests.length, 3, "three attempts reached the endpoint");
    const ids = decisionIds();
    assert.equal(new Set(ids).size, 1, "every attempt carries the one decision it was allowed by");
    assert.deepEqual(records.map((r) => [r.decision, r.outcome, r.id]), [["allow", "completed", ids[0]]]);
    const spans = exporter.getFinishedSpans().filter((s) => s.attributes[WARDEN.DECISION] !== undefined);
    assert.equal(spans.length, 1);
    assert.ok(local.server.requests.every((r) => r.signature.status === "valid"));
  });

  it("throttled past the retries: one failed record with the AWS error type, one span", async () => {
    local.server.queueReplies(throttled, throttled, throttled);
    const client = governed(3);
    await assert.rejects(() => runAs(invoiceAgent, () => client.send(new ConverseCommand({ modelId: HAIKU, messages }))), (e: Error) => e.name === "ThrottlingException");
    assert.equal(local.server.requests.length, 3);
    assert.deepEqual(records.map((r) => [r.decision, r.outcome, r.error]), [["allow", "failed", "ThrottlingException"]]);
    assert.equal(exporter.getFinishedSpans().filter((s) => s.attributes[WARDEN.DECISION] !== undefined).length, 1);
  });

  it("a stream that fails mid-generation: delivered events, then one failed record and one span", async () => {
    local.server.queueReplies({ text: "partial answer here", chunkSize: 4, error: { status: 200, type: "ModelStreamErrorException", message: "the model failed", inStream: true } });
    const client = governed(1);
    const { stream } = await runAs(invoiceAgent, () => client.send(new ConverseStreamCommand({ modelId: HAIKU, messages })));
    let delivered = 0;
    await assert.rejects(async () => {
      for await (const _ of stream ?? []) delivered++;
    }, (e: Error) => e.name === "ModelStreamErrorException");
    assert.ok(delivered > 0);
    assert.deepEqual(records.map((r) => [r.outcome, r.error]), [["failed", "ModelStreamErrorException"]]);
    assert.equal(exporter.getFinishedSpans().filter((s) => s.attributes[WARDEN.DECISION] !== undefined).length, 1);
  });

  it("the policy set reloaded while a stream is in flight: the call keeps the decision (and version) it was allowed with", async () => {
    const governance = createGovernance({ environment: "test", policies: BASE_POLICIES, tracerProvider, onDecision: (r) => records.push(r) });
    const client = local.client(governance);
    local.server.queueReplies({ text: "a long streamed answer", chunkSize: 2 });
    const before = governance.policySetVersion;
    const { stream } = await runAs(invoiceAgent, () => client.send(new ConverseStreamCommand({ modelId: HAIKU, messages })));
    // Mid-flight, the set changes to one that forbids everything.
    governance.reload(`${BASE_POLICIES}\n@id("lockdown") forbid (principal, action, resource);`);
    for await (const _ of stream ?? []) void _;
    await assert.rejects(() => runAs(invoiceAgent, () => client.send(new ConverseCommand({ modelId: HAIKU, messages }))), /lockdown/);
    assert.deepEqual(
      records.map((r) => [r.decision, r.outcome, r.policySetVersion === before]),
      [
        ["allow", "completed", true],
        ["deny", "denied", false],
      ],
    );
  });

  it("an internal error, then an answer: retried with the one decision; one span, one record", async () => {
    local.server.queueReplies({ error: { status: 500, type: "InternalServerException", message: "try again" } }, { text: "done" });
    const client = governed(2);
    await runAs(invoiceAgent, () => client.send(new ConverseCommand({ modelId: HAIKU, messages })));
    assert.equal(local.server.requests.length, 2);
    assert.equal(new Set(decisionIds()).size, 1);
    assert.deepEqual(records.map((r) => [r.decision, r.outcome]), [["allow", "completed"]]);
    assert.equal(exporter.getFinishedSpans().filter((s) => s.attributes[WARDEN.DECISION] !== undefined).length, 1);
  });

  it("the endpoint does not answer in time: the SDK times out and retries the decided request, never deciding again", async () => {
    // A connection that carries the request but never the answer, then one that works.
    const proxy = await tcpProxy(local.server.url, (connection) => (connection === 1 ? "stall" : "pass"));
    let evaluations = 0;
    const evaluate = wasm.statefulIsAuthorized;
    wasm.statefulIsAuthorized = (call) => (evaluations++, evaluate(call));
    try {
      // No memoized decision: a second decision would show as a second evaluation.
      const governance = createGovernance({ environment: "test", policies: BASE_POLICIES, tracerProvider, onDecision: (r) => records.push(r), decisionCacheSize: 0 });
      evaluations = 0;
      const client = local.client(governance, {
        endpoint: proxy.url,
        maxAttempts: 2,
        retryMode: "standard",
        requestHandler: new NodeHttpHandler({ requestTimeout: 300, throwOnRequestTimeout: true }),
      });
      const output = await runAs(invoiceAgent, () => client.send(new ConverseCommand({ modelId: HAIKU, messages })));
      assert.ok(output.output?.message);
      assert.equal(local.server.requests.length, 2, "the timed-out attempt reached the endpoint too");
      assert.equal(new Set(decisionIds()).size, 1, "both attempts carry the one decision");
      assert.equal(evaluations + governance.engine.evaluationsInJavaScript, 1, "retries are never decided again");
      assert.deepEqual(records.map((r) => [r.decision, r.outcome]), [["allow", "completed"]]);
      assert.equal(exporter.getFinishedSpans().filter((s) => s.attributes[WARDEN.DECISION] !== undefined).length, 1);
    } finally {
      wasm.statefulIsAuthorized = evaluate;
      await proxy.close();
    }
  });

  it("the connection drops in the middle of a stream: the delivered events, then one failed record and one span", async () => {
    const proxy = await tcpProxy(local.server.url, () => "drop-mid-response");
    try {
      local.server.queueReplies({ text: "a long answer streamed in many small events, long enough to be cut", chunkSize: 2, eventDelayMs: 5 });
      const governance = createGovernance({ environment: "test", policies: BASE_POLICIES, tracerProvider, onDecision: (r) => records.push(r) });
      const client = local.client(governance, { endpoint: proxy.url });
      const { stream } = await runAs(invoiceAgent, () => client.send(new ConverseStreamCommand({ modelId: HAIKU, messages })));
      let delivered = 0;
      await assert.rejects(async () => {
        for await (const _ of stream ?? []) delivered++;
      });
      assert.ok(delivered > 0, "events before the drop were delivered");
      assert.deepEqual(records.map((r) => [r.decision, r.outcome]), [["allow", "failed"]]);
      assert.equal(exporter.getFinishedSpans().filter((s) => s.attributes[WARDEN.DECISION] !== undefined).length, 1);
    } finally {
      await proxy.close();
    }
  });
});

/**
 * A TCP proxy in front of the endpoint, to fail the way networks do: per connection (numbered from
 * 1), `pass` everything, `stall` (forward the request, never the answer), or `drop-mid-response`
 * (cut both sockets once part of the answer went through).
 */
async function tcpProxy(target: string, mode: (connection: number) => "pass" | "stall" | "drop-mid-response"): Promise<{ url: string; close: () => Promise<void> }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((client) => {
    const behaviour = mode(++connections);
    const upstream = connect(Number(port), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => sockets.delete(socket));
    }
    client.pipe(upstream);
    let answered = 0;
    upstream.on("data", (chunk: Buffer) => {
      if (behaviour === "stall") return;
      if (behaviour === "pass") return void client.write(chunk);
      // The response headers and a few events go through; the rest never does.
      const allowed = Math.max(0, 600 - answered);
      answered += chunk.length;
      if (answered < 600) return void client.write(chunk);
      // Cut once the last part is on the wire (a destroy before would discard it).
      upstream.pause();
      client.write(chunk.subarray(0, allowed), () => {
        client.destroy();
        upstream.destroy();
      });
    });
    upstream.on("end", () => behaviour !== "stall" && client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
