import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConverseCommand, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { createGovernance, runAs, WARDEN, type DecisionRecord } from "../src/index.js";
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
});
