import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { modelResource, runAs } from "../src/index.js";
import { converseInput, harness } from "./support/governance.js";

describe("model resources", () => {
  const cases: [string, ReturnType<typeof modelResource>][] = [
    ["anthropic.claude-3-haiku-20240307-v1:0", { id: "anthropic.claude-3-haiku-20240307-v1:0", kind: "foundation-model", provider: "anthropic" }],
    [
      "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
      { id: "anthropic.claude-3-haiku-20240307-v1:0", kind: "foundation-model", provider: "anthropic", region: "us-east-1" },
    ],
    [
      "us.anthropic.claude-3-5-haiku-20241022-v1:0",
      { id: "us.anthropic.claude-3-5-haiku-20241022-v1:0", kind: "inference-profile", provider: "anthropic", baseModel: "anthropic.claude-3-5-haiku-20241022-v1:0", geo: "us" },
    ],
    [
      "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.meta.llama3-2-3b-instruct-v1:0",
      { id: "eu.meta.llama3-2-3b-instruct-v1:0", kind: "inference-profile", provider: "meta", baseModel: "meta.llama3-2-3b-instruct-v1:0", geo: "eu", region: "eu-west-1", account: "123456789012" },
    ],
    [
      "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
      { id: "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3", kind: "application-inference-profile", region: "us-east-1", account: "123456789012" },
    ],
    [
      "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/xyz",
      { id: "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/xyz", kind: "provisioned-model", region: "us-east-1", account: "123456789012" },
    ],
    [
      "arn:aws:bedrock:us-east-1:123456789012:imported-model/m1",
      { id: "arn:aws:bedrock:us-east-1:123456789012:imported-model/m1", kind: "imported-model", region: "us-east-1", account: "123456789012" },
    ],
    ["global.amazon.nova-lite-v1:0", { id: "global.amazon.nova-lite-v1:0", kind: "inference-profile", provider: "amazon", baseModel: "amazon.nova-lite-v1:0", geo: "global" }],
    ["my-model", { id: "my-model", kind: "unknown" }],
  ];
  for (const [modelId, expected] of cases) {
    it(`normalizes ${modelId}`, () => assert.deepEqual(modelResource(modelId), expected));
  }

  it("a policy on a foundation model covers its ARN and the inference profiles that route to it", async () => {
    const { client, handler } = harness(`
      permit (principal, action, resource in Bedrock::Model::"anthropic.claude-3-5-haiku-20241022-v1:0");
    `);
    const allowed = [
      "anthropic.claude-3-5-haiku-20241022-v1:0",
      "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
      "us.anthropic.claude-3-5-haiku-20241022-v1:0",
      "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-3-5-haiku-20241022-v1:0",
    ];
    for (const modelId of allowed) await runAs({ id: "agent" }, () => client.converse(converseInput(modelId)));
    assert.equal(handler.requests.length, allowed.length);
    await assert.rejects(runAs({ id: "agent" }, () => client.converse(converseInput("anthropic.claude-3-opus-20240229-v1:0"))));
    assert.equal(handler.requests.length, allowed.length);
  });
});
