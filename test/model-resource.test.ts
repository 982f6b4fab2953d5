import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import {
  ApplyGuardrailCommand,
  ConverseCommand,
  ConverseStreamCommand,
  CountTokensCommand,
  InvokeModelCommand,
  StartAsyncInvokeCommand,
} from "@aws-sdk/client-bedrock-runtime";
import { AccessDeniedError, createGovernance, modelResource, PolicyLoadError, runAs } from "../src/index.js";
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
    [
      "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1",
      { id: "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1", kind: "prompt-router", provider: "anthropic", region: "us-east-1", account: "123456789012" },
    ],
    [
      "arn:aws:bedrock:us-east-1:123456789012:prompt-router/r0abc",
      { id: "arn:aws:bedrock:us-east-1:123456789012:prompt-router/r0abc", kind: "prompt-router", region: "us-east-1", account: "123456789012" },
    ],
    [
      "arn:aws:sagemaker:us-west-2:123456789012:endpoint/my-marketplace-model",
      { id: "arn:aws:sagemaker:us-west-2:123456789012:endpoint/my-marketplace-model", kind: "marketplace-endpoint", region: "us-west-2", account: "123456789012" },
    ],
    // An ARN type named like an Object.prototype member is unknown, not the inherited function.
    ["arn:aws:bedrock:us-east-1:123456789012:constructor/x", { id: "arn:aws:bedrock:us-east-1:123456789012:constructor/x", kind: "unknown", region: "us-east-1", account: "123456789012" }],
    ["my-model", { id: "my-model", kind: "unknown" }],
    // A routing scope this version does not know: not read as the provider.
    ["sa.anthropic.claude-3-haiku-20240307-v1:0", { id: "sa.anthropic.claude-3-haiku-20240307-v1:0", kind: "unknown" }],
    // A context-window variant is a member of its model.
    [
      "anthropic.claude-3-sonnet-20240229-v1:0:28k",
      { id: "anthropic.claude-3-sonnet-20240229-v1:0:28k", kind: "foundation-model", provider: "anthropic", baseModel: "anthropic.claude-3-sonnet-20240229-v1:0" },
    ],
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

  const ROUTER = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1";
  const APP_PROFILE = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3";
  const BROAD_WITH_FORBIDS = `
    permit (principal, action, resource);
    @id("no-anthropic") forbid (principal, action, resource in Bedrock::Provider::"anthropic");
  `;
  const invocations = (modelId: string) => [
    new ConverseCommand(converseInput(modelId)),
    new ConverseStreamCommand(converseInput(modelId)),
    new InvokeModelCommand({ modelId, body: JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 10, messages: [] }) }),
    new CountTokensCommand({ modelId, input: { converse: { messages: converseInput().messages } } }),
    new StartAsyncInvokeCommand({ modelId, modelInput: {}, outputDataConfig: { s3OutputDataConfig: { s3Uri: "s3://bucket/out" } } }),
  ];

  it("an AWS default prompt router is a member of the provider it routes within: a forbid on the provider reaches it, on every command", async () => {
    const { client, handler } = harness(BROAD_WITH_FORBIDS);
    for (const command of invocations(ROUTER)) {
      await assert.rejects(
        runAs({ id: "agent" }, () => client.send(command as never)),
        (e: unknown) => e instanceof AccessDeniedError && e.decision.policies.includes("no-anthropic"),
        command.constructor.name,
      );
    }
    assert.equal(handler.requests.length, 0);
  });

  it("a model only AWS can resolve (an application inference profile) has no provider and is not inspected: a provider forbid cannot reach it, a forbid on either can", async () => {
    const observe = harness(BROAD_WITH_FORBIDS);
    for (const command of invocations(APP_PROFILE)) {
      // Sent: that is what is checked (this handler answers no event stream, so ConverseStream's reply fails to parse).
      await runAs({ id: "agent" }, () => observe.client.send(command as never)).catch((e: unknown) => {
        if (e instanceof AccessDeniedError) throw e;
      });
    }
    assert.equal(observe.handler.requests.length, 5, "what the README warns of: deny-style policies alone let it through");

    for (const guard of [
      `@id("attributable-models-only") forbid (principal, action, resource is Bedrock::Model) unless { resource has provider };`,
      `@id("no-opaque-payloads") forbid (principal, action, resource) unless { context.payloadInspected };`,
    ]) {
      const { client, handler } = harness(`${BROAD_WITH_FORBIDS}\n${guard}`);
      for (const command of invocations(APP_PROFILE)) {
        await assert.rejects(runAs({ id: "agent" }, () => client.send(command as never)), AccessDeniedError, `${command.constructor.name} under ${guard}`);
      }
      assert.equal(handler.requests.length, 0);
    }
  });

  it("CountTokens is read as the request it counts; StartAsyncInvoke's model input is reported as not inspected", async () => {
    const { client } = harness(`
      permit (principal, action, resource);
      @id("no-tools-counted") forbid (principal, action == Bedrock::Action::"CountTokens", resource) when { context.toolsOffered.contains("lookup") };
      @id("inspected-only") forbid (principal, action, resource) unless { context.payloadInspected };
    `);
    const tools = { tools: [{ toolSpec: { name: "lookup", inputSchema: { json: { type: "object" } } } }] };
    const counted = (input: Record<string, unknown>) => runAs({ id: "agent" }, () => client.send(new CountTokensCommand({ modelId: converseInput().modelId, input } as never)));
    await counted({ converse: { messages: converseInput().messages } });
    await assert.rejects(counted({ converse: { messages: converseInput().messages, toolConfig: tools } }), (e: unknown) => e instanceof AccessDeniedError && e.decision.policies.includes("no-tools-counted"));
    await counted({ invokeModel: { body: new TextEncoder().encode(JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 10, messages: [] })) } });
    await assert.rejects(counted({ invokeModel: { body: new TextEncoder().encode(JSON.stringify({ unknown_field: 1 })) } }), (e: unknown) => e instanceof AccessDeniedError && e.decision.policies.includes("inspected-only"));
    await assert.rejects(
      runAs({ id: "agent" }, () => client.send(invocations(converseInput().modelId)[4] as never)),
      (e: unknown) => e instanceof AccessDeniedError && e.decision.policies.includes("inspected-only"),
    );
  });
});

describe("guardrail resources", () => {
  const GUARDRAIL = "gr0legacy01";
  const GUARDRAIL_ARN = `arn:aws:bedrock:us-east-1:123456789012:guardrail/${GUARDRAIL}`;

  it("a guardrail named by its ARN is decided as its id, in ApplyGuardrail's resource and in context.guardrail; the wire keeps what the caller gave", async () => {
    const { client, handler } = harness(`
      permit (principal, action, resource);
      @id("not-that-guardrail") forbid (principal, action, resource == Bedrock::Guardrail::"${GUARDRAIL}");
      @id("converse-not-with-it") forbid (principal, action == Bedrock::Action::"Converse", resource) when { context has guardrail && context.guardrail == "${GUARDRAIL}" };
    `);
    const apply = (guardrailIdentifier: string) =>
      runAs({ id: "agent" }, () => client.send(new ApplyGuardrailCommand({ guardrailIdentifier, guardrailVersion: "1", source: "INPUT", content: [{ text: { text: "hi" } }] })));
    for (const identifier of [GUARDRAIL, GUARDRAIL_ARN]) {
      await assert.rejects(apply(identifier), (e: unknown) => e instanceof AccessDeniedError && e.decision.policies.includes("not-that-guardrail"), identifier);
      await assert.rejects(
        runAs({ id: "agent" }, () => client.send(new ConverseCommand(converseInput(undefined, { guardrailConfig: { guardrailIdentifier: identifier, guardrailVersion: "1" } })))),
        (e: unknown) => e instanceof AccessDeniedError && e.decision.policies.includes("converse-not-with-it"),
      );
    }
    await apply("gr0other0002");
    assert.equal(handler.requests.length, 1);
    assert.match(decodeURIComponent(handler.requests[0]!.path), /\/guardrail\/gr0other0002\//);
  });

  it("the guardrail version a call names is in context.guardrailVersion: a policy can refuse the DRAFT", async () => {
    const { client, handler } = harness(`
      permit (principal, action, resource);
      @id("published-guardrails-only") forbid (principal, action, resource) when { context has guardrailVersion && context.guardrailVersion == "DRAFT" };
    `);
    const converse = (guardrailVersion: string) =>
      runAs({ id: "agent" }, () => client.send(new ConverseCommand(converseInput(undefined, { guardrailConfig: { guardrailIdentifier: GUARDRAIL, guardrailVersion } }))));
    const apply = (guardrailVersion: string) =>
      runAs({ id: "agent" }, () => client.send(new ApplyGuardrailCommand({ guardrailIdentifier: GUARDRAIL, guardrailVersion, source: "INPUT", content: [{ text: { text: "hi" } }] })));
    const invoke = (guardrailVersion: string) =>
      runAs({ id: "agent" }, () =>
        client.send(
          new InvokeModelCommand({
            modelId: converseInput().modelId,
            guardrailIdentifier: GUARDRAIL,
            guardrailVersion,
            body: JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 10, messages: [] }),
          }),
        ),
      );
    for (const call of [converse, apply, invoke]) {
      await call("3");
      await assert.rejects(call("DRAFT"), (e: unknown) => e instanceof AccessDeniedError && e.decision.policies.includes("published-guardrails-only"));
    }
    assert.equal(handler.requests.length, 3);
  });

  it("the README's pii-needs-a-guardrail: a published guardrail over the whole conversation passes; none, the DRAFT, or one that guardContent blocks narrow to a harmless part do not", async () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const policy = /@id\("pii-needs-a-guardrail"\)[\s\S]*?\n\};/.exec(readme)?.[0];
    assert.ok(policy, "the README's policy");
    const { client, handler } = harness(`permit (principal, action, resource);\n${policy}`);
    const converse = (extra: Record<string, unknown>) =>
      runAs({ id: "agent" }, () => client.send(new ConverseCommand(converseInput(undefined, extra))), { dataSensitivity: ["pii"] });
    const guarded = { guardrailConfig: { guardrailIdentifier: GUARDRAIL, guardrailVersion: "3" } };
    await converse(guarded);
    const narrowed = {
      ...guarded,
      messages: [{ role: "user", content: [{ text: "Customer SSN 078-05-1120: summarize" }, { guardContent: { text: { text: "hello" } } }] }],
    };
    for (const extra of [{}, { guardrailConfig: { guardrailIdentifier: GUARDRAIL, guardrailVersion: "DRAFT" } }, narrowed, { ...guarded, system: [{ guardContent: { text: { text: "be nice" } } }] }]) {
      await assert.rejects(converse(extra), (e: unknown) => e instanceof AccessDeniedError && e.decision.policies.includes("pii-needs-a-guardrail"), JSON.stringify(extra));
    }
    assert.equal(handler.requests.length, 1);
  });

  it("refuses at load a policy that names a guardrail by its ARN (no call would ever match it)", () => {
    for (const policy of [
      `forbid (principal, action, resource == Bedrock::Guardrail::"${GUARDRAIL_ARN}");`,
      `forbid (principal, action, resource) when { context has guardrail && context.guardrail == "${GUARDRAIL_ARN}" };`,
    ]) {
      assert.throws(
        () => createGovernance({ environment: "test", policies: `permit (principal, action, resource);\n${policy}` }),
        (e: unknown) => e instanceof PolicyLoadError && /names a guardrail by its ARN .*name it by its id \("gr0legacy01"\)/.test(e.message),
        policy,
      );
    }
  });
});

