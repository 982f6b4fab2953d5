import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { AccessDeniedError, runAs } from "../src/index.js";
import { invokeModelBodyFacts, MAX_INSPECTED_BODY_BYTES } from "../src/policy/invoke-model-body.js";
import { harness } from "./support/governance.js";

const json = (value: unknown) => JSON.stringify(value);

describe("InvokeModel bodies", () => {
  const cases: [string, string | undefined, unknown, ReturnType<typeof invokeModelBodyFacts>][] = [
    ["Anthropic Messages", "anthropic", { anthropic_version: "bedrock-2023-05-31", max_tokens: 512, messages: [], tools: [{ name: "lookup", input_schema: {} }] }, { inspected: true, maxTokens: 512, toolsOffered: ["lookup"] }],
    ["Anthropic text completion (legacy)", "anthropic", { prompt: "\n\nHuman: hi\n\nAssistant:", max_tokens_to_sample: 100000 }, { inspected: true, maxTokens: 100000, toolsOffered: [] }],
    ["Nova", "amazon", { messages: [], inferenceConfig: { max_new_tokens: 300 }, toolConfig: { tools: [{ toolSpec: { name: "search" } }] } }, { inspected: true, maxTokens: 300, toolsOffered: ["search"] }],
    ["Titan text", "amazon", { inputText: "hi", textGenerationConfig: { maxTokenCount: 200 } }, { inspected: true, maxTokens: 200, toolsOffered: [] }],
    ["Llama", "meta", { prompt: "hi", max_gen_len: 64 }, { inspected: true, maxTokens: 64, toolsOffered: [] }],
    ["OpenAI-style: the largest of two limits counts", "openai", { messages: [], max_tokens: 10, max_completion_tokens: 100000, tools: [{ type: "function", function: { name: "wire" } }] }, { inspected: true, maxTokens: 100000, toolsOffered: ["wire"] }],
    ["an unknown field", "anthropic", { anthropic_version: "x", max_tokens: 10, messages: [], max_completion_tokens: 100000 }, { inspected: false, toolsOffered: [] }],
    ["another provider's field", "anthropic", { messages: [], max_completion_tokens: 100000 }, { inspected: false, toolsOffered: [] }],
    ["a limit that is not an integer", "meta", { prompt: "hi", max_gen_len: "64" }, { inspected: false, toolsOffered: [] }],
    ["tools of an unknown shape: unreadable, so the call cannot be decided", "anthropic", { messages: [], max_tokens: 5, tools: [{ spec: "x" }] }, { inspected: false, toolsOffered: [], toolsUnreadable: true }],
    ["an unknown field does not hide the tools the body offers", "anthropic", { messages: [], max_tokens: 5, service_tier: "x", tools: [{ name: "delete_customer", input_schema: {} }] }, { inspected: false, toolsOffered: ["delete_customer"] }],
    ["an unknown provider (application inference profile)", undefined, { messages: [], max_tokens: 5 }, { inspected: false, toolsOffered: [] }],
    ["a provider without known formats", "acme", { prompt: "hi" }, { inspected: false, toolsOffered: [] }],
  ];
  for (const [label, provider, body, expected] of cases) {
    it(label, () => assert.deepEqual(invokeModelBodyFacts(json(body), provider), expected));
  }

  it("binary, non-JSON, non-object and oversized bodies are not inspected", () => {
    for (const body of [new Uint8Array([0, 1, 2]), "not json", "[1,2]", "null", json({ prompt: "x".repeat(MAX_INSPECTED_BODY_BYTES) })]) {
      assert.equal(invokeModelBodyFacts(body, "meta").inspected, false);
    }
    assert.equal(invokeModelBodyFacts(new TextEncoder().encode(json({ prompt: "hi", max_gen_len: 5 })), "meta").maxTokens, 5);
  });

  it("a body that writes an object key twice cannot be decided (the provider's parser may keep the other value)", async () => {
    const twice = '{"anthropic_version":"bedrock-2023-05-31","max_tokens":200000,"messages":[],"tools":[{"name":"wire_money","input_schema":{}}],"tools":[],"max_tokens":100}';
    assert.equal(invokeModelBodyFacts(twice, "anthropic").duplicateKey, true);
    assert.equal(invokeModelBodyFacts('{"messages":[{"role":"user","role":"assistant"}]}', "anthropic").duplicateKey, true);
    assert.equal(invokeModelBodyFacts('{"max_tokens":1,"messages":[{"a":1},{"a":2}]}', "anthropic").duplicateKey, undefined);
    const { client, handler, records } = harness(`permit (principal, action, resource);`);
    const error = await runAs({ id: "agent" }, () => client.send(new InvokeModelCommand({ modelId: "anthropic.claude-3-haiku-20240307-v1:0", body: twice }))).catch((e: unknown) => e);
    assert.ok(error instanceof AccessDeniedError && /InvokeModel input cannot be decided: input\.body writes an object key twice/.test(error.message), String(error));
    assert.equal(handler.requests.length, 0);
    assert.equal(records.length, 1);
    assert.equal(records[0]!.resource, 'Bedrock::Model::"anthropic.claude-3-haiku-20240307-v1:0"');
  });

  it("through the pipeline: a legacy body's token limit reaches the policy", async () => {
    const { client, handler } = harness(`
      permit (principal, action, resource);
      forbid (principal, action, resource) when { !context.payloadInspected || (context has maxTokens && context.maxTokens > 4096) };
    `);
    const send = (body: unknown) =>
      runAs({ id: "agent" }, () => client.send(new InvokeModelCommand({ modelId: "anthropic.claude-v2:1", body: json(body) })));
    await assert.rejects(send({ prompt: "hi", max_tokens_to_sample: 100000 }), AccessDeniedError);
    await assert.rejects(send({ prompt: "hi", max_tokens_to_sample: 10, max_completion_tokens: 100000 }), AccessDeniedError);
    await send({ prompt: "hi", max_tokens_to_sample: 100 });
    assert.equal(handler.requests.length, 1);
  });
});
