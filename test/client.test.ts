import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { BedrockRuntime, BedrockRuntimeClient, ConverseCommand, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { exporter } from "./support/tracing.js";
import { MemoryHandler } from "./support/memory-handler.js";
import { AccessDeniedError, ConfigurationError, createGovernance, GovernedBedrockRuntimeClient, NoIdentityError, runAs, SigningMismatchError, withGovernance, WARDEN } from "../src/index.js";
import { modelProblem, regionProblem } from "../src/middleware/signature-check.js";
import { bareClient, BASE_POLICIES, bodyJson, converseInput, CREDENTIALS, harness, HAIKU, invoiceAgent, researchAgent, stranger, TITAN } from "./support/governance.js";

beforeEach(() => exporter.reset());

describe("GovernedBedrockRuntimeClient", () => {
  it("is a drop-in BedrockRuntime: instanceof, send() and the convenience methods", async () => {
    const { client, handler } = harness();
    assert.ok(client instanceof BedrockRuntimeClient);
    assert.ok(client instanceof BedrockRuntime);
    const viaSend = await runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput())));
    const viaMethod = await runAs(invoiceAgent, () => client.converse(converseInput()));
    assert.deepEqual(viaSend.output?.message?.content, [{ text: "hello" }]);
    assert.deepEqual(viaMethod.output?.message?.content, [{ text: "hello" }]);
    assert.equal(handler.requests.length, 2);
  });

  it("sends nothing for a denied call and throws AccessDeniedError with the decision", async () => {
    const { client, handler, records } = harness();
    const error = await runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput(TITAN)))).then(
      () => assert.fail("a call no policy permits must be denied"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof AccessDeniedError);
    assert.equal(error.code, "ERR_ACCESS_DENIED");
    assert.equal(error.decision.effect, "deny");
    assert.equal(error.decision.principal, `Bedrock::Workload::"${invoiceAgent.id}"`);
    assert.equal(error.decision.action, 'Bedrock::Action::"Converse"');
    assert.equal(error.decision.resource, `Bedrock::Model::"${TITAN}"`);
    assert.deepEqual(error.decision.reasons, ["no policy permits this request (default deny)"]);
    assert.equal(handler.requests.length, 0, "a denied call must not reach the network");
    assert.equal(records.length, 1);
    assert.equal(records[0]?.outcome, "denied");
  });

  it("names the determining forbid policy and its reason", async () => {
    const { client, handler } = harness();
    const error = (await runAs(researchAgent, () => client.converse(converseInput()), { dataSensitivity: ["phi"] }).catch((e: unknown) => e)) as AccessDeniedError;
    assert.ok(error instanceof AccessDeniedError);
    assert.deepEqual(error.decision.policies, ["no-phi-for-research"]);
    assert.deepEqual(error.decision.reasons, ["research agents never see PHI"]);
    assert.equal(handler.requests.length, 0);
  });

  it("sends exactly one request for an allowed call, carrying the attribution, and leaves the caller's input untouched", async () => {
    const { client, handler, records } = harness();
    const input = converseInput(HAIKU, { requestMetadata: { ticket: "FIN-42" } });
    const snapshot = structuredClone(input);
    await runAs(invoiceAgent, () => client.send(new ConverseCommand(input)), { purpose: "reconcile invoice 4711" });
    assert.deepEqual(input, snapshot, "the caller's input object must not be mutated");
    assert.equal(handler.requests.length, 1);
    const metadata = bodyJson(handler.requests[0]!)["requestMetadata"] as Record<string, string>;
    const [span] = exporter.getFinishedSpans();
    assert.equal(metadata["ticket"], "FIN-42", "the caller's own metadata is kept");
    assert.equal(metadata["warden.workload"], invoiceAgent.id);
    assert.equal(metadata["warden.trace_id"], span?.spanContext().traceId);
    assert.equal(metadata["warden.decision_id"], records[0]?.id);
    assert.equal(metadata["warden.purpose"], "reconcile invoice 4711");
  });

  it("uses the client's default identity outside runAs, and runAs overrides it", async () => {
    const { client, records } = harness(BASE_POLICIES, new MemoryHandler(), invoiceAgent);
    await client.converse(converseInput());
    await runAs(researchAgent, () => client.converse(converseInput()));
    assert.deepEqual(records.map((r) => r.workload?.id), [invoiceAgent.id, researchAgent.id]);
  });

  it("denies a call with no identity with its own error code, and sends nothing", async () => {
    const { client, handler, records } = harness();
    const error = await client.converse(converseInput()).catch((e: unknown) => e);
    assert.ok(error instanceof NoIdentityError);
    assert.ok(error instanceof AccessDeniedError);
    assert.equal(error.code, "ERR_NO_IDENTITY");
    assert.match(error.message, /runAs/);
    assert.equal(handler.requests.length, 0);
    assert.equal(records[0]?.workload, null);
    assert.equal(exporter.getFinishedSpans()[0]?.attributes[WARDEN.DECISION], "deny");
  });

  it("refuses a configuration without a governance, or with cacheMiddleware", () => {
    assert.throws(() => new GovernedBedrockRuntimeClient({ region: "us-east-1" } as never), (e: unknown) => e instanceof ConfigurationError && /createGovernance/.test(e.message));
    const { governance } = harness();
    assert.throws(
      () => new GovernedBedrockRuntimeClient({ region: "us-east-1", governance, cacheMiddleware: true }),
      (e: unknown) => e instanceof ConfigurationError && /cacheMiddleware/.test(e.message),
    );
  });

  it("rejects a malformed default identity at construction", () => {
    const { governance } = harness();
    assert.throws(
      () => new GovernedBedrockRuntimeClient({ region: "us-east-1", governance, identity: { id: "" } }),
      (e: unknown) => e instanceof ConfigurationError && /identity\.id/.test(e.message),
    );
  });
});

describe("withGovernance", () => {
  it("governs a client someone else built", async () => {
    const handler = new MemoryHandler();
    const { governance, records } = harness();
    const client = withGovernance(bareClient(handler), governance);
    await assert.rejects(runAs(stranger, () => client.send(new ConverseCommand(converseInput()))), AccessDeniedError);
    assert.equal(handler.requests.length, 0);
    await runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput())));
    assert.equal(handler.requests.length, 1);
    assert.equal(records.length, 2);
  });

  it("never evaluates twice when attached twice, even on a GovernedBedrockRuntimeClient", async () => {
    const { client, governance, records, handler } = harness();
    withGovernance(client, governance);
    withGovernance(client, governance);
    await runAs(invoiceAgent, () => client.converse(converseInput()));
    assert.equal(records.length, 1);
    assert.equal(exporter.getFinishedSpans().length, 1);
    assert.equal(handler.requests.length, 1);
    const metadata = bodyJson(handler.requests[0]!)["requestMetadata"] as Record<string, string>;
    assert.equal(Object.keys(metadata).filter((k) => k.startsWith("warden.")).length, 3);
  });

  it("adds two named middleware; a middleware anchored to the names of earlier versions still finds its place", async () => {
    const { client, handler } = harness();
    const names = client.middlewareStack.identify().filter((entry) => entry.includes("bedrockWarden"));
    assert.equal(names.length, 2, names.join("; "));
    const seen: string[] = [];
    // After attribution (now in the authorization middleware): the input already carries it.
    client.middlewareStack.addRelativeTo(
      ((next: (args: unknown) => Promise<unknown>) => async (args: { input: object }) => {
        seen.push(`attributed: ${"requestMetadata" in args.input}`);
        return next(args);
      }) as never,
      { name: "userAfterAttribution", relation: "after", toMiddleware: "bedrockWardenAttributionMiddleware" },
    );
    // After the signature check (now in the attempt middleware): the request is signed.
    client.middlewareStack.addRelativeTo(
      ((next: (args: unknown) => Promise<unknown>) => async (args: { request: { headers: object } }) => {
        seen.push(`signed: ${"authorization" in args.request.headers}`);
        return next(args);
      }) as never,
      { name: "userAfterSignatureCheck", relation: "after", toMiddleware: "bedrockWardenSignatureCheckMiddleware" },
    );
    await runAs(invoiceAgent, () => client.converse(converseInput()));
    assert.deepEqual(seen, ["attributed: true", "signed: true"]);
    assert.equal(handler.requests.length, 1);
  });

  it("refuses a second, different governance on the same client", () => {
    const { client } = harness();
    const other = createGovernance({ environment: "test", policies: BASE_POLICIES });
    assert.throws(() => withGovernance(client, other), (e: unknown) => e instanceof ConfigurationError && /already governed/.test(e.message));
  });

  it("governs again a client whose middleware was removed (removeByTag): never a client left ungoverned by a no-op", async () => {
    const { client, governance, records, handler } = harness();
    client.middlewareStack.removeByTag("BEDROCK_WARDEN");
    withGovernance(client, governance);
    await assert.rejects(() => runAs(stranger, () => client.converse(converseInput())), AccessDeniedError);
    await runAs(invoiceAgent, () => client.converse(converseInput()));
    assert.equal(records.length, 2);
    assert.equal(handler.requests.length, 1);
    // Only the authorization middleware removed: the pair is added again, once.
    client.middlewareStack.remove("bedrockWardenAuthorizationMiddleware");
    withGovernance(client, governance);
    assert.equal(client.middlewareStack.identify().filter((entry) => entry.includes("bedrockWarden")).length, 2);
    await runAs(invoiceAgent, () => client.converse(converseInput()));
    assert.equal(records.length, 3);
  });

  it("a call that bypasses the authorization middleware (removed by name, the attempt check left) is stopped, with one span and one record", async () => {
    const { client, records, handler } = harness();
    client.middlewareStack.remove("bedrockWardenAuthorizationMiddleware");
    exporter.reset();
    const error = await runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput()))).catch((e: unknown) => e);
    assert.ok(error instanceof SigningMismatchError && /did not pass the authorization middleware/.test(error.message), String(error));
    assert.equal(handler.requests.length, 0);
    assert.equal(records.length, 1);
    assert.equal(records[0]!.decision, "deny");
    assert.equal(records[0]!.outcome, "denied");
    assert.equal(records[0]!.workload?.id, invoiceAgent.id);
    assert.equal(records[0]!.action, 'Bedrock::Action::"Converse"');
    assert.equal(exporter.getFinishedSpans().length, 1);
  });

  it("refuses a second, different default identity on the same client (its calls would keep the first)", () => {
    const { client, governance } = harness(undefined, undefined, invoiceAgent);
    assert.throws(() => withGovernance(client, governance, { identity: researchAgent }), (e: unknown) => e instanceof ConfigurationError && /another default identity/.test(e.message));
    // No identity adds nothing; the same identity, even as another object, changes nothing.
    withGovernance(client, governance);
    withGovernance(client, governance, { identity: invoiceAgent });
    withGovernance(client, governance, { identity: { ...invoiceAgent, groups: [...invoiceAgent.groups!] } });
  });

  it("governs again a client that lost only its post-signing check (removed by name)", async () => {
    const { client, governance } = harness();
    client.middlewareStack.remove("bedrockWardenAttemptMiddleware");
    withGovernance(client, governance);
    assert.deepEqual(
      client.middlewareStack.identify().filter((entry) => entry.includes("bedrockWarden")).map((entry) => entry.split(" ")[0]),
      ["bedrockWardenAuthorizationMiddleware", "bedrockWardenAttemptMiddleware"],
    );
  });

  it("refuses something that is not a client", () => {
    const { governance } = harness();
    assert.throws(() => withGovernance({} as never, governance), ConfigurationError);
    assert.throws(() => withGovernance(new BedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS }), {} as never), ConfigurationError);
  });
});

describe("InvokeModel attribution", () => {
  it("adds the workload to the request-metadata header and keeps the caller's entries", async () => {
    const { client, handler } = harness();
    await runAs(invoiceAgent, () =>
      client.send(
        new InvokeModelCommand({
          modelId: HAIKU,
          body: JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 100, messages: [] }),
          requestMetadata: JSON.stringify({ costCenter: "cc-7" }),
        }),
      ),
    );
    const header = handler.requests[0]?.headers["x-amzn-bedrock-request-metadata"];
    assert.ok(header, "the request-metadata header is sent");
    const decoded = JSON.parse(header.startsWith("{") ? header : Buffer.from(header, "base64").toString("utf8")) as Record<string, string>;
    assert.equal(decoded["costCenter"], "cc-7");
    assert.equal(decoded["warden.workload"], invoiceAgent.id);
  });
});

describe("the request sent is the request decided", () => {
  it("changing the input after send() changes nothing that is sent", async () => {
    const { client, handler, records } = harness(`
      permit (principal, action == Bedrock::Action::"Converse", resource == Bedrock::Model::"${HAIKU}")
      when { context has maxTokens && context.maxTokens <= 2048 && context.toolsOffered.isEmpty() };
    `);
    const input: Record<string, any> = converseInput(HAIKU, { inferenceConfig: { maxTokens: 100 } });
    const pending = runAs(invoiceAgent, () => client.send(new ConverseCommand(input as never)));
    // The SDK awaits endpoint resolution before it serializes: this runs in between.
    input["inferenceConfig"].maxTokens = 200_000;
    input["modelId"] = TITAN;
    input["toolConfig"] = { tools: [{ toolSpec: { name: "wire_money", inputSchema: { json: {} } } }] };
    await pending;
    assert.equal(records[0]?.decision, "allow");
    const sent = bodyJson(handler.requests[0]!);
    assert.deepEqual(sent["inferenceConfig"], { maxTokens: 100 });
    assert.equal(sent["toolConfig"], undefined);
    assert.match(String(handler.requests[0]?.path), new RegExp(encodeURIComponent(HAIKU).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  });

  it("objects that are not plain (a class instance, a getter on a whole input) are copied too: a later change or a second read is not sent", async () => {
    const { client, handler, records } = harness(`
      permit (principal, action == Bedrock::Action::"Converse", resource == Bedrock::Model::"${HAIKU}")
      when { context has maxTokens && context.maxTokens <= 2048 && context.toolsOffered.isEmpty() };
    `);
    class InferenceConfig {
      constructor(public maxTokens: number) {}
    }
    const inferenceConfig = new InferenceConfig(100);
    const pending = runAs(invoiceAgent, () => client.send(new ConverseCommand({ ...converseInput(HAIKU), inferenceConfig } as never)));
    inferenceConfig.maxTokens = 200_000;
    await pending;
    // A whole input that is a class instance whose modelId getter answers differently the second time.
    class Request {
      reads = 0;
      messages = converseInput(HAIKU).messages;
      inferenceConfig = { maxTokens: 100 };
      constructor() {
        Object.defineProperty(this, "modelId", { enumerable: true, get: () => (this.reads++ === 0 ? HAIKU : TITAN) });
      }
    }
    await runAs(invoiceAgent, () => client.send(new ConverseCommand(new Request() as never)));
    assert.deepEqual(records.map((r) => r.decision), ["allow", "allow"]);
    assert.deepEqual(handler.requests.map((r) => bodyJson(r)["inferenceConfig"]), [{ maxTokens: 100 }, { maxTokens: 100 }]);
    for (const request of handler.requests) assert.match(String(request.path), new RegExp(encodeURIComponent(HAIKU).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  });

  it("a toolConfig inherited from a polluted Object.prototype, withheld whole, is not sent either", async () => {
    const { client, handler, records } = harness(`permit (principal, action == Bedrock::Action::"Converse", resource);`);
    const proto = Object.prototype as Record<string, unknown>;
    proto["toolConfig"] = { tools: [{ toolSpec: { name: "wire_money", inputSchema: { json: { type: "object" } } } }] };
    try {
      await runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput())));
    } finally {
      delete proto["toolConfig"];
    }
    assert.deepEqual(records[0]?.tools?.withheld.map((w) => w.name), ["wire_money"]);
    assert.equal(bodyJson(handler.requests[0]!)["toolConfig"], undefined);
  });

  it("an InvokeModel body given as an ArrayBuffer, a DataView or another typed array is read like bytes: its tools are decided", async () => {
    const handler = new MemoryHandler();
    const { client, records } = harness(`permit (principal, action == Bedrock::Action::"InvokeModel", resource);`, handler);
    const json = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 100, messages: [], tools: [{ name: "wire_money", input_schema: { type: "object" } }] });
    const bytes = () => new TextEncoder().encode(json);
    for (const body of [bytes().buffer, new DataView(bytes().buffer), new Int8Array(bytes().buffer)]) {
      const error = await runAs(invoiceAgent, () => client.send(new InvokeModelCommand({ modelId: HAIKU, body: body as never }))).catch((e: unknown) => e);
      assert.ok(error instanceof AccessDeniedError && /wire_money/.test(error.message), String(error));
    }
    assert.equal(handler.requests.length, 0);
    assert.equal(records.length, 3);
  });

  it("the region is read for every call: a provider that answers otherwise (a failover), or a config replaced, is decided with the region the call goes to", async () => {
    const policies = `@id("us-only") permit (principal, action, resource) when { context.region == "us-east-1" };`;
    let region = "us-east-1";
    const records: { region?: string; decision: string }[] = [];
    const handler = new MemoryHandler();
    const governance = createGovernance({ environment: "test", policies, onDecision: (r) => records.push(r) });
    const client = new GovernedBedrockRuntimeClient({ region: async () => region, credentials: CREDENTIALS, requestHandler: handler, governance, maxAttempts: 1 });
    await runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput())));
    region = "eu-west-1";
    await assert.rejects(() => runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput()))), AccessDeniedError);
    region = "us-east-1";
    (client.config as { region: unknown }).region = async () => "ap-southeast-2";
    await assert.rejects(() => runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput()))), AccessDeniedError);
    assert.deepEqual(records.map((r) => [r.region, r.decision]), [["us-east-1", "allow"], ["eu-west-1", "deny"], ["ap-southeast-2", "deny"]]);
    assert.equal(handler.requests.length, 1);
    client.destroy();
  });

  it("a middleware after ours that swaps the model: the request names another model than decided and is stopped", async () => {
    const { client, handler, records } = harness();
    client.middlewareStack.add(
      ((next: (args: unknown) => Promise<unknown>) => (args: { input: Record<string, unknown> }) => next({ ...args, input: { ...args.input, modelId: TITAN } })) as never,
      { step: "initialize", priority: "low", name: "swapsTheModel" },
    );
    const error = await runAs(invoiceAgent, () => client.send(new ConverseCommand(converseInput(HAIKU)))).catch((e: unknown) => e);
    assert.ok(error instanceof SigningMismatchError && /its path names another model than the one decided/.test(error.message), String(error));
    assert.equal(handler.requests.length, 0);
    assert.equal(records.length, 1);
    const arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0";
    const call = { commandName: "ConverseCommand", sentInput: { modelId: arn } };
    assert.equal(modelProblem(call, `/base/model/${encodeURIComponent(arn)}/converse`), undefined);
    assert.match(modelProblem(call, `/model/${encodeURIComponent(HAIKU)}/converse`) ?? "", /another model/);
    assert.match(modelProblem(call, "/model/%E0%A4%A/converse") ?? "", /another model/);
    assert.equal(modelProblem({ commandName: "ApplyGuardrailCommand", sentInput: {} }, "/guardrail/g/version/1/apply"), undefined);
  });

  it("a middleware after ours that rewrites whom the request metadata names is stopped (Converse body, InvokeModel header)", async () => {
    const { client, handler, records } = harness(`permit (principal, action, resource);`);
    client.middlewareStack.add(
      ((next: (args: unknown) => Promise<unknown>) => (args: { request: { body?: unknown; headers: Record<string, string> } }) => {
        const { request } = args;
        const text = typeof request.body === "string" ? request.body : request.body instanceof Uint8Array ? new TextDecoder().decode(request.body) : undefined;
        if (text?.includes("warden.workload")) request.body = text.replace(/"warden\.workload":"[^"]*"/, '"warden.workload":"spiffe://acme.test/agents/someone-else"');
        const name = Object.keys(request.headers).find((h) => h.toLowerCase() === "x-amzn-bedrock-request-metadata");
        if (name) request.headers[name] = request.headers[name]!.replace(/"warden\.decision_id":"[^"]*"/, '"warden.decision_id":"forged"');
        return next(args);
      }) as never,
      { step: "build", name: "rewritesAttribution" },
    );
    for (const command of [new ConverseCommand(converseInput()), new InvokeModelCommand({ modelId: HAIKU, body: JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 10, messages: [] }) })]) {
      const error = await runAs(invoiceAgent, () => client.send(command as never)).catch((e: unknown) => e);
      assert.ok(error instanceof SigningMismatchError && /request metadata names was changed/.test(error.message), String(error));
    }
    assert.equal(handler.requests.length, 0);
    assert.equal(records.length, 2);
    // Attribution crowded out by the caller's own 16 entries is not a change: the call goes out.
    const crowded = harness(`permit (principal, action, resource);`);
    const own = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, "v"]));
    await runAs(invoiceAgent, () => crowded.client.send(new ConverseCommand(converseInput(HAIKU, { requestMetadata: own }))));
    assert.equal(crowded.handler.requests.length, 1);
  });

  it("a request signed for, or addressed to, another region than the one decided is stopped", () => {
    const signed = (region: string) => ({ authorization: `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/${region}/bedrock/aws4_request, SignedHeaders=host, Signature=00` });
    assert.equal(regionProblem(signed("us-east-1"), "bedrock-runtime.us-east-1.amazonaws.com", "us-east-1"), undefined);
    assert.equal(regionProblem(signed("us-east-1"), "127.0.0.1", "us-east-1"), undefined, "a custom endpoint's host names no region");
    assert.equal(regionProblem({ Authorization: "Bearer abc" }, "bedrock-runtime-fips.us-east-1.amazonaws.com", "us-east-1"), undefined);
    assert.match(regionProblem(signed("eu-west-1"), "127.0.0.1", "us-east-1") ?? "", /signed for region eu-west-1, but was decided for region us-east-1/);
    assert.match(regionProblem(signed("us-east-1"), "bedrock-runtime.eu-west-1.amazonaws.com", "us-east-1") ?? "", /in region eu-west-1, but was decided for region us-east-1/);
    assert.match(regionProblem(signed("us-east-1"), "vpce-0abc.bedrock-runtime.eu-west-1.vpce.amazonaws.com", "us-east-1") ?? "", /in region eu-west-1/);
    assert.match(regionProblem({ Authorization: "Bearer abc" }, "BEDROCK-RUNTIME.cn-north-1.amazonaws.com.cn", "us-east-1") ?? "", /in region cn-north-1/);
  });

  it("switching cacheMiddleware on after construction denies every call instead of sharing one context", async () => {
    const { client, handler, records } = harness();
    (client.config as { cacheMiddleware?: boolean }).cacheMiddleware = true;
    for (const identity of [invoiceAgent, stranger]) {
      const error = await runAs(identity, () => client.send(new ConverseCommand(converseInput()))).catch((e: unknown) => e);
      assert.ok(error instanceof AccessDeniedError, String(error));
      assert.match(error.message, /cacheMiddleware/);
    }
    assert.equal(handler.requests.length, 0);
    assert.equal(records.length, 2);
  });
});
