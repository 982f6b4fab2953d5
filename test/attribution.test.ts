import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
import fc from "fast-check";
import { exporter } from "./support/tracing.js";
import { ATTRIBUTION_KEYS, REQUEST_METADATA_LIMITS, runAs, sanitizeMetadataValue, WARDEN } from "../src/index.js";
import { bodyJson, converseInput, harness } from "./support/governance.js";

beforeEach(() => exporter.reset());

// Bedrock's set, with only the ASCII space for `\s` (JavaScript's `\s` is much wider).
const ALLOWED = /^[a-zA-Z0-9 :_@$#=/+,\-.]*$/;
const allowAll = `permit (principal, action, resource);`;

describe("attribution in Bedrock's request metadata", () => {
  it("cannot be forged: a caller's value under a reserved key is replaced", async () => {
    const { client, handler } = harness(allowAll);
    await runAs({ id: "real-agent" }, () =>
      client.send(new ConverseCommand(converseInput(undefined, { requestMetadata: { [ATTRIBUTION_KEYS.workload]: "someone-else" } }))),
    );
    const metadata = bodyJson(handler.requests[0]!)["requestMetadata"] as Record<string, string>;
    assert.equal(metadata[ATTRIBUTION_KEYS.workload], "real-agent");
  });

  it("sanitizes identities and purposes to Bedrock's character set and lengths", async () => {
    const { client, handler } = harness(allowAll);
    const id = `spiffe://acme.test/agents/émile?x=<1>&${"y".repeat(400)}`;
    await runAs({ id }, () => client.send(new ConverseCommand(converseInput())), { purpose: "quarterly\u00a0«report»\u3000🚀" });
    const metadata = bodyJson(handler.requests[0]!)["requestMetadata"] as Record<string, string>;
    for (const [key, value] of Object.entries(metadata)) {
      assert.match(key, ALLOWED);
      assert.match(value, ALLOWED);
      assert.ok(value.length <= REQUEST_METADATA_LIMITS.maxValueLength);
    }
    assert.ok(metadata[ATTRIBUTION_KEYS.workload]?.startsWith("spiffe://acme.test/agents/_mile_x=_1__"));
  });

  it("never exceeds 16 entries: the caller's metadata is kept, attribution takes what room is left and the span says so", async () => {
    const { client, handler } = harness(allowAll);
    const own = Object.fromEntries(Array.from({ length: 14 }, (_, i) => [`k${i}`, `v${i}`]));
    await runAs({ id: "agent" }, () => client.send(new ConverseCommand(converseInput(undefined, { requestMetadata: own }))), { purpose: "p" });
    const metadata = bodyJson(handler.requests[0]!)["requestMetadata"] as Record<string, string>;
    assert.equal(Object.keys(metadata).length, 16);
    for (const [k, v] of Object.entries(own)) assert.equal(metadata[k], v);
    assert.equal(metadata[ATTRIBUTION_KEYS.workload], "agent", "the workload comes first");
    assert.equal(exporter.getFinishedSpans()[0]?.attributes[WARDEN.ATTRIBUTION], "partial");
  });

  it("replaces an unreadable InvokeModel request-metadata string with the attribution alone: what it forged never reaches a laxer parser", async () => {
    const { InvokeModelCommand } = await import("@aws-sdk/client-bedrock-runtime");
    const { client, handler } = harness(allowAll);
    const forged = '{"warden.workload":"spiffe://acme.test/agents/admin","team":"x",}';
    await runAs({ id: "agent" }, () => client.send(new InvokeModelCommand({ modelId: converseInput().modelId, body: "{}", requestMetadata: forged })));
    assert.equal(handler.requests.length, 1);
    const header = Object.entries(handler.requests[0]!.headers).find(([name]) => name.toLowerCase() === "x-amzn-bedrock-request-metadata")?.[1];
    const sent = JSON.parse(String(header)) as Record<string, string>;
    assert.equal(sent[ATTRIBUTION_KEYS.workload], "agent");
    assert.ok(!JSON.stringify(sent).includes("admin") && !("team" in sent), JSON.stringify(sent));
    assert.equal(exporter.getFinishedSpans()[0]?.attributes[WARDEN.ATTRIBUTION], "partial");
  });

  it("sanitizeMetadataValue always yields an acceptable value (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 600 }), (value) => {
        const clean = sanitizeMetadataValue(value);
        return ALLOWED.test(clean) && clean.length <= 256;
      }),
      { numRuns: 2000 },
    );
  });
});
