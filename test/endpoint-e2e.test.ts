import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConverseCommand, ConverseStreamCommand, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { exporter, tracerProvider } from "./support/tracing.js";
import { AccessDeniedError, createGovernance, runAs, WARDEN, type DecisionRecord } from "../src/index.js";
import { useLocalBedrock } from "./support/local-bedrock.js";
import { BASE_POLICIES, converseInput, HAIKU, invoiceAgent, stranger, TITAN } from "./support/governance.js";

const records: DecisionRecord[] = [];
const governance = createGovernance({ environment: "test", policies: BASE_POLICIES, tracerProvider, onDecision: (r) => records.push(r) });
const local = useLocalBedrock(records);
const client = (http1 = false) => local.client(governance, http1 ? { requestHandler: new NodeHttpHandler() } : {});

for (const [protocol, http1] of [["HTTP/2 (the SDK's default handler)", false], ["HTTP/1.1", true]] as const) {
  describe(`over the wire, ${protocol}`, () => {
    it("a denied call sends zero requests to the endpoint", async () => {
      const bedrock = client(http1);
      await assert.rejects(runAs(invoiceAgent, () => bedrock.send(new ConverseCommand(converseInput(TITAN)))), AccessDeniedError);
      await assert.rejects(runAs(stranger, () => bedrock.send(new ConverseStreamCommand(converseInput()))), AccessDeniedError);
      await assert.rejects(bedrock.send(new ConverseCommand(converseInput())), AccessDeniedError);
      assert.equal(local.server.requests.length, 0);
    });

    it("an allowed call sends exactly one SigV4-signed request carrying the attribution", async () => {
      const bedrock = client(http1);
      const reply = await runAs(invoiceAgent, () => bedrock.send(new ConverseCommand(converseInput())), { purpose: "close the books" });
      assert.match(reply.output?.message?.content?.[0]?.text ?? "", /Echo/);
      assert.equal(local.server.requests.length, 1);
      const [request] = local.server.requests;
      assert.equal(request?.signature.status, "valid");
      assert.equal(request?.httpVersion, http1 ? "1.1" : "2.0");
      const metadata = (request?.body as { requestMetadata: Record<string, string> }).requestMetadata;
      assert.equal(metadata["warden.workload"], invoiceAgent.id);
      assert.equal(metadata["warden.purpose"], "close the books");
      assert.equal(metadata["warden.decision_id"], records[0]?.id);
      assert.equal(records[0]?.requestId, reply.$metadata.requestId);
    });

    it("InvokeModel: the request-metadata header carries the workload, and usage comes from the response headers", async () => {
      const bedrock = client(http1);
      await runAs(invoiceAgent, () =>
        bedrock.send(new InvokeModelCommand({ modelId: HAIKU, body: JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 50, messages: [{ role: "user", content: "hi" }] }) })),
      );
      const header = local.server.requests[0]?.headers["x-amzn-bedrock-request-metadata"];
      assert.equal((JSON.parse(header ?? "{}") as Record<string, string>)["warden.workload"], invoiceAgent.id);
      assert.ok((records[0]?.usage?.outputTokens ?? 0) > 0, "usage read from x-amzn-bedrock-output-token-count");
    });

    it("an abandoned stream closes the connection (the model stops) and ends its span", async () => {
      local.server.reply = () => ({ text: "x".repeat(2000), chunkSize: 1, eventDelayMs: 2 });
      const bedrock = client(http1);
      await runAs(invoiceAgent, async () => {
        const { stream } = await bedrock.send(new ConverseStreamCommand(converseInput()));
        let seen = 0;
        for await (const _ of stream ?? []) if (++seen === 5) break;
      });
      await local.server.whenIdle();
      const [request] = local.server.requests;
      assert.equal(request?.closedByClient, true, "the endpoint saw the client go away");
      assert.equal(request?.completed, false);
      const sent = request?.eventsSent ?? 0;
      assert.ok(sent < 2000, `the endpoint stopped writing after ${sent} events`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(request?.eventsSent, sent, "nothing more is written after the close");
      const [span] = exporter.getFinishedSpans();
      assert.equal(span?.attributes[WARDEN.STREAM_OUTCOME], "abandoned");
      assert.equal(records[0]?.outcome, "abandoned");
    });
  });
}
