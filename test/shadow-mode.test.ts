import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
import {
  AccessDeniedError,
  createGovernance,
  GovernedBedrockRuntimeClient,
  NoIdentityError,
  runAs,
  toolDecisions,
  WARDEN,
  type DecisionRecord,
  type GovernanceOptions,
} from "../src/index.js";
import { wasm } from "../src/policy/cedar-wasm.js";
import { converseInput, CREDENTIALS, HAIKU, invoiceAgent, researchAgent, TITAN } from "./support/governance.js";
import { converseReply, jsonResponse, MemoryHandler } from "./support/memory-handler.js";
import { exporter, tracerProvider } from "./support/tracing.js";

const ENFORCED = `
@id("billing-anthropic") permit (principal in Bedrock::Group::"billing", action in Bedrock::Action::"ModelInvocation", resource in Bedrock::Provider::"anthropic");
@id("research-all") permit (principal in Bedrock::Group::"research", action, resource);
`;
// The policy being rolled out: no model call may ask for more than 1,000 output tokens.
const TRIAL = `
@id("token-cap") @shadow @reason("at most 1,000 output tokens per call")
forbid (principal, action in Bedrock::Action::"ModelInvocation", resource) when { context has maxTokens && context.maxTokens > 1000 };
`;

function governed(options: Partial<GovernanceOptions>, handler = new MemoryHandler()) {
  const records: DecisionRecord[] = [];
  const governance = createGovernance({ environment: "test", policies: ENFORCED, tracerProvider, onDecision: (r) => records.push(r), ...options });
  const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: handler, governance, maxAttempts: 1 });
  return { governance, client, records, handler };
}

const big = converseInput(HAIKU, { inferenceConfig: { maxTokens: 4000 } });
const small = converseInput(HAIKU, { inferenceConfig: { maxTokens: 500 } });

describe("shadow mode", () => {
  it("a @shadow policy is evaluated and recorded, never enforced: its would-be denials are in the span and the record", async () => {
    exporter.reset();
    const { client, records, handler, governance } = governed({ policies: ENFORCED + TRIAL });
    assert.deepEqual([...governance.engine.shadowPolicies], ["token-cap"]);
    await runAs(invoiceAgent, () => client.send(new ConverseCommand(big)));
    await runAs(invoiceAgent, () => client.send(new ConverseCommand(small)));
    assert.equal(handler.requests.length, 2, "both calls went out");
    assert.deepEqual(records.map((r) => [r.decision, r.outcome, r.shadow?.decision, r.shadow?.policies]), [
      ["allow", "completed", "deny", ["token-cap"]],
      ["allow", "completed", undefined, undefined],
    ]);
    assert.deepEqual(records[0]?.shadow?.reasons, ["at most 1,000 output tokens per call"]);
    assert.deepEqual(records[0]?.policies, ["billing-anthropic"], "the enforced decision is the enforced set's");
    const [first, second] = exporter.getFinishedSpans();
    assert.equal(first?.attributes[WARDEN.DECISION], "allow");
    assert.equal(first?.attributes[WARDEN.SHADOW_DECISION], "deny");
    assert.deepEqual(first?.attributes[WARDEN.SHADOW_POLICIES], ["token-cap"]);
    assert.equal(second?.attributes[WARDEN.SHADOW_DECISION], undefined);
    client.destroy();
  });

  it("the same policy enforced (no @shadow) denies: shadow is the only difference", async () => {
    const { client, handler } = governed({ policies: ENFORCED + TRIAL.replace("@shadow ", "") });
    await assert.rejects(() => runAs(invoiceAgent, () => client.send(new ConverseCommand(big))), (e: unknown) => e instanceof AccessDeniedError && e.decision.policies.includes("token-cap"));
    assert.equal(handler.requests.length, 0);
    client.destroy();
  });

  it("a @shadow permit that would allow what is denied today is recorded as a would-be allow, and the call stays denied", async () => {
    const trialPermit = `@id("titan-for-billing") @shadow permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"Converse", resource == Bedrock::Model::"${TITAN}");`;
    const { client, records, handler } = governed({ policies: ENFORCED + trialPermit });
    await assert.rejects(() => runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput(TITAN)))), AccessDeniedError);
    assert.equal(handler.requests.length, 0);
    assert.deepEqual([records[0]?.decision, records[0]?.shadow?.decision, records[0]?.shadow?.policies], ["deny", "allow", ["titan-for-billing"]]);
    client.destroy();
  });

  it('enforcement: "shadow": nothing the policies decide blocks, every would-be denial is recorded', async () => {
    const { client, records, handler } = governed({ enforcement: "shadow", policies: ENFORCED + TRIAL.replace("@shadow ", "") });
    await runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput(TITAN)))); // no permit
    await runAs(invoiceAgent, () => client.send(new ConverseCommand(big))); // a forbid
    await runAs(researchAgent, () => client.send(new ConverseCommand(small))); // allowed anyway
    assert.equal(handler.requests.length, 3);
    assert.deepEqual(records.map((r) => [r.decision, r.shadow?.decision, r.shadow?.policies]), [
      ["allow", "deny", []],
      ["allow", "deny", ["token-cap"]],
      ["allow", undefined, undefined],
    ]);
    assert.match(records[0]!.reasons[0]!, /shadow mode/);
    assert.deepEqual(records[0]?.shadow?.reasons, ["no policy permits this request (default deny)"]);
    client.destroy();
  });

  it('enforcement: "shadow" records an engine failure as a would-be denial; the structural checks stay enforced', async () => {
    // The fault is injected in wasm: the JavaScript evaluator would decide this request without it.
    const { client, records, handler } = governed({ enforcement: "shadow", evaluator: "wasm" });
    const original = wasm.statefulIsAuthorized;
    wasm.statefulIsAuthorized = () => {
      throw new Error("injected engine fault");
    };
    try {
      await runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput(HAIKU, { inferenceConfig: { maxTokens: 321 } }))));
    } finally {
      wasm.statefulIsAuthorized = original;
    }
    assert.equal(handler.requests.length, 1);
    assert.match(records[0]?.shadow?.errors[0] ?? "", /injected engine fault/);
    // No identity is not a policy decision: denied in every mode.
    await assert.rejects(() => client.send(new ConverseCommand(small)), NoIdentityError);
    assert.equal(handler.requests.length, 1);
    client.destroy();
  });

  it("tool calls in shadow: a would-be denied tool call is let through and recorded", async () => {
    const tools = [{ name: "issue_refund", effect: "mutate" as const, inputSchema: { type: "object", properties: { amount: { type: "number" } } } }];
    const policies = `${ENFORCED}
      @id("refunds") permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"tool:issue_refund", resource);
      @id("refund-cap") @shadow forbid (principal, action == Bedrock::Action::"tool:issue_refund", resource) when { context has input && context.input has amount && context.input.amount.greaterThan(decimal("100.0")) };`;
    const handler = new MemoryHandler(() =>
      jsonResponse({
        ...converseReply(""),
        output: { message: { role: "assistant", content: [{ toolUse: { toolUseId: "t1", name: "issue_refund", input: { amount: 5000 } } }] } },
        stopReason: "tool_use",
      }),
    );
    const { client, records } = governed({ policies, tools }, handler);
    const output = await runAs(invoiceAgent, () =>
      client.send(new ConverseCommand(converseInput(HAIKU, { toolConfig: { tools: [{ toolSpec: { name: "issue_refund", inputSchema: { json: tools[0]!.inputSchema } } }] } }))),
    );
    const [decided] = toolDecisions(output);
    assert.equal(decided?.decision.effect, "allow");
    assert.deepEqual(decided?.decision.shadow?.policies, ["refund-cap"]);
    const toolRecord = records.find((r) => r.tool);
    assert.deepEqual([toolRecord?.decision, toolRecord?.shadow?.decision], ["allow", "deny"]);
    client.destroy();
  });

  it("an invalid enforcement option is refused, naming the choices", () => {
    assert.throws(() => createGovernance({ environment: "test", policies: ENFORCED, enforcement: "audit" as never }), /enforcement: must be "enforce" or "shadow"/);
  });
});
