import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConverseCommand, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import type { HttpRequest } from "@smithy/protocol-http";
import {
  createCredentialBroker,
  createGovernance,
  GovernedBedrockRuntimeClient,
  runTask,
  toolDecisions,
  WARDEN,
  type DecisionRecord,
  type WorkloadIdentity,
} from "../src/index.js";
import { LOCAL_BEDROCK_CREDENTIALS, startLocalSts, type LocalSts } from "../src/local-endpoint/index.js";
import { converseStreamFrames, eventStreamResponse } from "./support/event-stream.js";
import { HAIKU } from "./support/governance.js";
import { converseReply, jsonResponse, MemoryHandler } from "./support/memory-handler.js";
import { exporter, tracerProvider } from "./support/tracing.js";

const ROLE = "arn:aws:iam::123456789012:role/agents";
const IDENTITIES: WorkloadIdentity[] = Array.from({ length: 100 }, (_, i) => ({ id: `spiffe://acme.test/agents/a${i}`, groups: ["agents"] }));
const CALLS = 10_000;
const TOOLS = [{ name: "lookup", effect: "read" as const, inputSchema: { type: "object", properties: { who: { type: "string" } } } }];
const POLICIES = `
@id("agents-haiku") permit (principal in Bedrock::Group::"agents", action in Bedrock::Action::"ModelInvocation", resource == Bedrock::Model::"${HAIKU}");
@id("lookup-offered") permit (principal in Bedrock::Group::"agents", action == Bedrock::Action::"tool:lookup", resource) when { context.phase == "offer" };
@id("own-lookups") permit (principal in Bedrock::Group::"agents", action == Bedrock::Action::"tool:lookup", resource)
  when { context has input && context.input has who && principal.hasTag("self") && context.input.who == principal.getTag("self") };
`;

let sts: LocalSts;
before(async () => {
  sts = await startLocalSts({ roles: [{ arn: ROLE }] });
});
after(async () => {
  await sts.close();
});

describe("isolation at scale", () => {
  it("10,000 interleaved calls of 100 identities (tools, streams, some abandoned): every span, record, request and credential is its own identity's", { timeout: 300_000 }, async () => {
    exporter.reset();
    const records: DecisionRecord[] = [];
    // The model echoes, in its tool call, the workload named in the request's metadata: a tool call is
    // then allowed only when the request it answers belonged to the workload deciding it.
    const handler = new MemoryHandler((request: HttpRequest) => {
      const body = JSON.parse(new TextDecoder().decode(request.body as Uint8Array)) as { requestMetadata?: Record<string, string>; toolConfig?: unknown };
      const who = body.requestMetadata?.["warden.workload"] ?? "";
      if (request.path.endsWith("/converse-stream")) return eventStreamResponse(converseStreamFrames(["one ", "two ", "three"])).response;
      if (body.toolConfig) {
        return jsonResponse({
          ...converseReply(""),
          output: { message: { role: "assistant", content: [{ toolUse: { toolUseId: `t-${who}`, name: "lookup", input: { who } } }] } },
          stopReason: "tool_use",
        });
      }
      return jsonResponse(converseReply(`for ${who}`));
    });
    const broker = createCredentialBroker({
      roleArn: ROLE,
      sts: { endpoint: sts.url, region: sts.region, credentials: { ...LOCAL_BEDROCK_CREDENTIALS } },
      paths: { work: { operations: ["Converse", "ConverseStream"], models: [HAIKU] } },
    });
    const governance = createGovernance({ environment: "test", policies: POLICIES, tools: TOOLS, tracerProvider, credentialBroker: broker, onDecision: (r) => records.push(r) });
    const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", requestHandler: handler, governance, maxAttempts: 1 });
    const tagged = IDENTITIES.map((identity) => ({ ...identity, attributes: { self: identity.id } }));

    // Each identity runs one long task; its calls interleave with every other identity's.
    let next = 0;
    const toolMismatches: string[] = [];
    await Promise.all(
      tagged.map((identity) =>
        runTask(identity, "work", async () => {
          while (next < CALLS) {
            const i = next++;
            const kind = i % 4;
            if (kind === 0) {
              await client.send(new ConverseCommand({ modelId: HAIKU, messages: [{ role: "user", content: [{ text: "hi" }] }] }));
            } else if (kind === 1) {
              const output = await client.send(
                new ConverseCommand({
                  modelId: HAIKU,
                  messages: [{ role: "user", content: [{ text: "look" }] }],
                  toolConfig: { tools: [{ toolSpec: { name: "lookup", inputSchema: { json: TOOLS[0]!.inputSchema } } }] },
                }),
              );
              for (const d of toolDecisions(output)) if (d.decision.effect !== "allow") toolMismatches.push(`${identity.id}: ${d.decision.reasons.join("; ")}`);
            } else {
              const { stream } = await client.send(new ConverseStreamCommand({ modelId: HAIKU, messages: [{ role: "user", content: [{ text: "stream" }] }] }));
              for await (const _ of stream ?? []) if (kind === 3) break; // half the streams abandoned
            }
          }
        }),
      ),
    );

    assert.deepEqual(toolMismatches, [], "every tool call answered its own workload's request");
    const modelRecords = records.filter((r) => !r.tool);
    assert.equal(modelRecords.length, CALLS, "one record per call");
    assert.equal(records.filter((r) => r.tool).length, CALLS / 4, "one record per tool call");
    assert.ok(modelRecords.every((r) => r.decision === "allow"));
    // Requests: the metadata names the workload whose brokered key signed the request.
    const owner = new Map(sts.sessions.map((s) => [s.accessKeyId, s.tags["workload"]]));
    assert.equal(sts.sessions.length, 100, "one STS session per identity and path");
    assert.equal(handler.requests.length, CALLS);
    for (const request of handler.requests) {
      const body = JSON.parse(new TextDecoder().decode(request.body as Uint8Array)) as { requestMetadata: Record<string, string> };
      const authorization = Object.entries(request.headers).find(([k]) => k.toLowerCase() === "authorization")?.[1] ?? "";
      const keyId = /Credential=([^/]+)\//.exec(authorization)?.[1];
      assert.equal(owner.get(keyId ?? ""), body.requestMetadata["warden.workload"], "signed with its own workload's key");
    }
    // Spans and records: the same decision id names the same workload on both.
    const byDecision = new Map(modelRecords.map((r) => [r.id, r.workload?.id]));
    const callSpans = exporter.getFinishedSpans().filter((s) => s.attributes[WARDEN.DECISION_ID] !== undefined && s.attributes[WARDEN.TOOL_PHASE] === undefined);
    assert.equal(callSpans.length, CALLS);
    for (const span of callSpans) assert.equal(span.attributes[WARDEN.WORKLOAD_ID], byDecision.get(span.attributes[WARDEN.DECISION_ID] as string));
    assert.equal(broker.cachedPairs(), 0, "every task's credentials dropped at its end");
    client.destroy();
  });
});
