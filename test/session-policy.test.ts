import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createCredentialBroker, createGovernance, ConfigurationError } from "../src/index.js";
import { derivePathGrants, explicitPathGrants, MAX_SESSION_POLICY_CHARS, sessionPolicyDocument, SessionPolicyError } from "../src/credentials/session-policy.js";

const POLICIES = `
@id("billing-haiku") permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"Converse", resource == Bedrock::Model::"anthropic.claude-3-haiku-20240307-v1:0");
@id("billing-stream") permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"ConverseStream", resource in Bedrock::Model::"anthropic.claude-3-haiku-20240307-v1:0");
@id("research-anthropic") permit (principal == Bedrock::Workload::"research", action in Bedrock::Action::"ModelInvocation", resource in Bedrock::Provider::"anthropic");
@id("guardrails") permit (principal is Bedrock::Workload in Bedrock::Group::"billing", action == Bedrock::Action::"ApplyGuardrail", resource == Bedrock::Guardrail::"gr-1");
@id("everyone-profile") permit (principal, action == Bedrock::Action::"Converse", resource == Bedrock::Model::"us.amazon.nova-lite-v1:0");
@id("tools-are-not-aws") permit (principal, action in Bedrock::Action::"ToolUse", resource);
@id("a-forbid-never-grants") forbid (principal in Bedrock::Group::"billing", action, resource == Bedrock::Model::"meta.llama3-8b-instruct-v1:0");
@id("ops-any-model") permit (principal in Bedrock::Group::"ops", action == Bedrock::Action::"Converse", resource);
`;

const engine = () => createGovernance({ environment: "test", policies: POLICIES }).engine;

function statements(document: string) {
  return (JSON.parse(document) as { Statement: { Effect: string; Action: string[]; Resource: string[] }[] }).Statement;
}

describe("session policies derived from the Cedar policies", () => {
  it("names exactly the IAM actions and ARNs the workload's permits name", () => {
    const document = sessionPolicyDocument(derivePathGrants(engine(), { id: "invoice", groups: ["billing"] }), "invoice");
    assert.deepEqual(statements(document), [
      { Effect: "Allow", Action: ["bedrock:InvokeModel"], Resource: ["arn:aws:bedrock:*::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"] },
      {
        Effect: "Allow",
        Action: ["bedrock:InvokeModelWithResponseStream"],
        Resource: [
          "arn:aws:bedrock:*:*:inference-profile/*.anthropic.claude-3-haiku-20240307-v1:0",
          "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
        ],
      },
      { Effect: "Allow", Action: ["bedrock:ApplyGuardrail"], Resource: ["arn:aws:bedrock:*:*:guardrail/gr-1"] },
      {
        Effect: "Allow",
        Action: ["bedrock:InvokeModel"],
        Resource: ["arn:aws:bedrock:*:*:inference-profile/us.amazon.nova-lite-v1:0", "arn:aws:bedrock:*::foundation-model/amazon.nova-lite-v1:0"],
      },
    ]);
    assert.ok(!document.includes("llama"), "a forbid never grants anything");
  });

  it("an action group and a provider become every action of the group on the provider's models", () => {
    const [statement, ...rest] = statements(sessionPolicyDocument(derivePathGrants(engine(), { id: "research" }), "research"));
    assert.deepEqual(statement?.Action, [
      "bedrock:InvokeModel",
      "bedrock:InvokeModelWithBidirectionalStream",
      "bedrock:InvokeModelWithResponseStream",
    ]);
    assert.deepEqual(statement?.Resource, ["arn:aws:bedrock:*:*:inference-profile/*.anthropic.*", "arn:aws:bedrock:*::foundation-model/anthropic.*"]);
    assert.equal(rest.length, 1, "plus the profile everyone may use");
  });

  it("a workload no policy permits gets no credentials at all", () => {
    const billingOnly = createGovernance({
      environment: "test",
      policies: `permit (principal in Bedrock::Group::"billing", action, resource in Bedrock::Provider::"anthropic");`,
    }).engine;
    assert.equal(derivePathGrants(billingOnly, { id: "stranger" }).length, 0);
    assert.throws(() => sessionPolicyDocument(derivePathGrants(billingOnly, { id: "stranger" }), "stranger"), /no policy permits stranger/);
    assert.ok(derivePathGrants(billingOnly, { id: "invoice", groups: ["billing"] }).length > 0);
  });

  it("a permit on any model cannot be turned into ARNs: the error says to restrict it or give the path explicitly", () => {
    assert.throws(() => derivePathGrants(engine(), { id: "oncall", groups: ["ops"] }), (error: unknown) => {
      assert.ok(error instanceof SessionPolicyError);
      assert.match(error.message, /policy ops-any-model permits oncall Converse on any model/);
      assert.match(error.message, /paths/);
      return true;
    });
  });

  it("grants only what Cedar could permit: a permit on tools grants no AWS action; runtime-wide actions need a scope that can match them", () => {
    const governance = (policies: string) => createGovernance({ environment: "test", policies }).engine;
    const onTools = governance(`permit (principal, action, resource == Bedrock::Tool::"search");`);
    assert.equal(derivePathGrants(onTools, { id: "a" }).length, 0);
    const anything = governance(`permit (principal, action in Bedrock::Action::"AsyncInvocationRead", resource);`);
    assert.deepEqual(statements(sessionPolicyDocument(derivePathGrants(anything, { id: "a" }), "a")), [
      { Effect: "Allow", Action: ["bedrock:GetAsyncInvoke"], Resource: ["arn:aws:bedrock:*:*:async-invoke/*"] },
      { Effect: "Allow", Action: ["bedrock:ListAsyncInvokes"], Resource: ["*"] },
    ]);
    const oneInvocation = governance(
      `permit (principal, action == Bedrock::Action::"GetAsyncInvoke", resource == Bedrock::AsyncInvocation::"arn:aws:bedrock:us-east-1:123456789012:async-invoke/abc");`,
    );
    assert.deepEqual(statements(sessionPolicyDocument(derivePathGrants(oneInvocation, { id: "a" }), "a"))[0]?.Resource, [
      "arn:aws:bedrock:us-east-1:123456789012:async-invoke/abc",
    ]);
  });

  it("an entity id holding * or ? (literal in Cedar, a pattern in IAM) is refused", () => {
    for (const resource of [
      `resource == Bedrock::Model::"*"`,
      `resource in Bedrock::Provider::"*"`,
      `resource == Bedrock::Model::"arn:aws:bedrock:*:*:*"`,
      `resource == Bedrock::Model::"anthropic.claude-?"`,
    ]) {
      const engine = createGovernance({ environment: "test", policies: `permit (principal, action == Bedrock::Action::"Converse", ${resource});` }).engine;
      assert.throws(() => derivePathGrants(engine, { id: "a" }), /wildcard character/, resource);
    }
    const guardrail = createGovernance({ environment: "test", policies: `permit (principal, action == Bedrock::Action::"ApplyGuardrail", resource == Bedrock::Guardrail::"gr-*");` }).engine;
    assert.throws(() => derivePathGrants(guardrail, { id: "a" }), /wildcard character/);
    assert.throws(() => explicitPathGrants({ operations: ["Converse"], models: ["anthropic.*"] }), /wildcard character/);
    assert.throws(() => explicitPathGrants({ operations: ["Converse"], models: ["arn:aws:iam::123456789012:role/x"] }), /not a Bedrock ARN/);
  });

  it("an entity id holding whitespace or a control character (a newline could split it into two ARNs) is refused", () => {
    const opus = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-opus-20240229-v1:0";
    for (const resource of [
      `resource == Bedrock::Model::"legacy\\n${opus}"`,
      `resource in Bedrock::Provider::"anthropic\\nmeta"`,
      `resource == Bedrock::Model::"anthropic.claude-3-haiku-20240307-v1:0 "`,
      `resource == Bedrock::Model::"anthropic.claude\\u{2028}x"`,
    ]) {
      const engine = createGovernance({ environment: "test", policies: `permit (principal, action == Bedrock::Action::"Converse", ${resource});` }).engine;
      assert.throws(() => derivePathGrants(engine, { id: "a" }), /whitespace, a control character or a character outside printable ASCII/, resource);
    }
    assert.throws(() => explicitPathGrants({ operations: ["Converse"], models: [`legacy\n${opus}`] }), /control character/);
  });

  it("a @shadow permit grants nothing in a session policy (it is never enforced)", () => {
    const engine = createGovernance({
      environment: "test",
      policies: `permit (principal, action == Bedrock::Action::"Converse", resource == Bedrock::Model::"amazon.nova-lite-v1:0");
        @shadow permit (principal, action == Bedrock::Action::"Converse", resource == Bedrock::Model::"anthropic.claude-3-opus-20240229-v1:0");
        @shadow permit (principal, action == Bedrock::Action::"Converse", resource);`,
    }).engine;
    const document = sessionPolicyDocument(derivePathGrants(engine, { id: "a" }), "a");
    assert.ok(!document.includes("opus"));
    assert.deepEqual(statements(document)[0]?.Resource, ["arn:aws:bedrock:*::foundation-model/amazon.nova-lite-v1:0"]);
  });

  it("an explicit path scope names its operations and models", () => {
    const document = sessionPolicyDocument(explicitPathGrants({ operations: ["Converse", "CountTokens"], models: ["amazon.nova-lite-v1:0"] }), "p");
    assert.deepEqual(statements(document), [
      { Effect: "Allow", Action: ["bedrock:CountTokens", "bedrock:InvokeModel"], Resource: ["arn:aws:bedrock:*::foundation-model/amazon.nova-lite-v1:0"] },
    ]);
    assert.throws(() => explicitPathGrants({ operations: ["Converse"] }), /names no model/);
    assert.throws(() => explicitPathGrants({ operations: ["DeleteEverything"] }), /not a Bedrock Runtime operation/);
  });

  it("a session policy larger than STS accepts is refused, saying how to shrink it", () => {
    const models = Array.from({ length: 40 }, (_, i) => `anthropic.claude-model-number-${i}-v1:0`);
    assert.throws(
      () => sessionPolicyDocument(explicitPathGrants({ operations: ["Converse"], models }), "big"),
      (error: unknown) => error instanceof SessionPolicyError && error.message.includes(String(MAX_SESSION_POLICY_CHARS)),
    );
  });

  it("the broker refuses malformed options and path scopes at construction", () => {
    assert.throws(() => createCredentialBroker({ roleArn: "not-an-arn", sts: {} }), (e: unknown) => e instanceof ConfigurationError && /IAM role ARN/.test(e.message));
    assert.throws(() => createCredentialBroker({ roleArn: "arn:aws:iam::123456789012:role/r", sts: {}, durationSeconds: 60 }), /at least 900/);
    assert.throws(
      () => createCredentialBroker({ roleArn: "arn:aws:iam::123456789012:role/r", sts: {}, durationSeconds: 900, refreshBeforeExpirySeconds: 900 }),
      /refreshBeforeExpirySeconds must be less than durationSeconds/,
    );
    assert.throws(
      () => createCredentialBroker({ roleArn: "arn:aws:iam::123456789012:role/r", sts: {}, paths: { p: { operations: ["Converse"] } } }),
      /paths\["p"\]: .*names no model/,
    );
    assert.throws(() => createCredentialBroker({ roleArn: "arn:aws:iam::123456789012:role/r", sts: {}, sessionTags: { workload: "x" } }), /set by the broker/);
    assert.throws(() => createCredentialBroker({ roleArn: "arn:aws:iam::123456789012:role/r", sts: {}, sessionTags: { team: "a;b" } }), /refuses/);
  });
});
