import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, beforeEach, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { inspect } from "node:util";
import { ConverseCommand, InvokeModelWithBidirectionalStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { STSClient } from "@aws-sdk/client-sts";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import {
  AccessDeniedError,
  createCredentialBroker,
  createGovernance,
  createTokenVerifier,
  CredentialsUnavailableError,
  GovernedBedrockRuntimeClient,
  memoryUsageStore,
  runAs,
  runTask,
  WARDEN,
  type CredentialBroker,
  type CredentialBrokerOptions,
  type DecisionRecord,
  type UsageStore,
  type WorkloadIdentity,
} from "../src/index.js";
import { LOCAL_BEDROCK_CREDENTIALS, startLocalBedrock, startLocalSts, type LocalBedrock, type LocalSts } from "../src/local-endpoint/index.js";
import { exporter, tracerProvider } from "./support/tracing.js";

const ROLE = "arn:aws:iam::123456789012:role/bedrock-agents";
const IDP = "https://idp.acme.test";
const NOVA = "amazon.nova-lite-v1:0";
const HAIKU = "anthropic.claude-3-haiku-20240307-v1:0";

const POLICIES = `
@id("billing-haiku") permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"Converse", resource in Bedrock::Model::"${HAIKU}");
@id("research-nova") permit (principal in Bedrock::Group::"research", action == Bedrock::Action::"Converse", resource in Bedrock::Provider::"amazon");
@id("research-haiku-too") permit (principal in Bedrock::Group::"research", action == Bedrock::Action::"Converse", resource == Bedrock::Model::"${HAIKU}");
`;

const invoiceAgent: WorkloadIdentity = { id: "spiffe://acme.test/agents/invoice", groups: ["billing"] };
const researchAgent: WorkloadIdentity = { id: "spiffe://acme.test/agents/research", groups: ["research"] };

let bedrock: LocalBedrock;
let sts: LocalSts;
let idpKey: CryptoKey;
let jwks: { keys: object[] };
let stsClockOffsetMs = 0;
const clients: { destroy(): void }[] = [];

before(async () => {
  const pair = await generateKeyPair("ES256");
  idpKey = pair.privateKey;
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: "idp", alg: "ES256" }] };
  // The endpoint accepts no key of its own: only what STS issues.
  bedrock = await startLocalBedrock({ credentials: [] });
  sts = await startLocalSts({
    roles: [{ arn: ROLE, webIdentity: { issuer: IDP, jwks: jwks as never, subjects: ["spiffe://acme.test/agents/*"] } }],
    issueTo: [bedrock],
    now: () => new Date(Date.now() + stsClockOffsetMs),
  });
});
after(async () => {
  for (const client of clients) client.destroy();
  await sts.close();
  await bedrock.close();
});
beforeEach(() => {
  bedrock.reset();
  exporter.reset();
  stsClockOffsetMs = 0;
});

function setup(options: Partial<CredentialBrokerOptions> = {}, policies = POLICIES) {
  const broker = createCredentialBroker({
    roleArn: ROLE,
    sts: { endpoint: sts.url, region: sts.region, credentials: { ...LOCAL_BEDROCK_CREDENTIALS }, maxAttempts: 3 },
    ...options,
  });
  const records: DecisionRecord[] = [];
  const governance = createGovernance({ environment: "test", policies, credentialBroker: broker, tracerProvider, onDecision: (r) => records.push(r) });
  const client = new GovernedBedrockRuntimeClient({ endpoint: bedrock.url, region: bedrock.region, governance, maxAttempts: 1 });
  clients.push(client);
  return { broker, records, client };
}

const converse = (client: GovernedBedrockRuntimeClient, modelId = HAIKU) =>
  client.send(new ConverseCommand({ modelId, messages: [{ role: "user", content: [{ text: "hi" }] }] }));

/** The access key that signed the request carrying this decision. */
function keyOf(record: DecisionRecord): string | undefined {
  return bedrock.requests.find((r) => JSON.stringify(r.body ?? "").includes(record.id))?.signature.accessKeyId;
}

function sessionOf(accessKeyId: string | undefined) {
  return sts.sessions.find((s) => s.accessKeyId === accessKeyId);
}

async function svid(spiffeId: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "idp" }).setIssuer(IDP).setSubject(spiffeId).setAudience("sts.amazonaws.com").setIssuedAt().setExpirationTime("10m").sign(idpKey);
}

describe("just-in-time credentials per identity and invocation path", () => {
  it("two identities interleaved in one process: every request is signed with its own identity's temporary key", async () => {
    const { client, records, broker } = setup();
    const tasks = [invoiceAgent, researchAgent].map((agent) =>
      runTask(agent, "daily-run", async () => {
        await Promise.all(Array.from({ length: 10 }, () => converse(client, agent === invoiceAgent ? HAIKU : NOVA)));
      }),
    );
    await Promise.all(tasks);
    assert.equal(records.length, 20);
    assert.equal(bedrock.requests.length, 20);
    assert.ok(bedrock.requests.every((r) => r.signature.status === "valid"));
    for (const record of records) {
      const session = sessionOf(keyOf(record));
      assert.ok(session, "signed with a key STS issued");
      assert.equal(session.tags["workload"], record.workload?.id);
      assert.equal(session.tags["path"], "daily-run");
      assert.match(session.accessKeyId, /^ASIA/);
      assert.equal(record.credentials?.kind, "temporary");
      assert.equal(record.credentials?.brokered, true);
    }
    assert.equal(broker.issued, 2, "one issue per (identity, path), however many concurrent calls");
    const keys = new Set(records.map(keyOf));
    assert.equal(keys.size, 2);
  });

  it("names the workload in the session (name, SourceIdentity, tags) and restricts it with a session policy derived from the policies", async () => {
    const { client } = setup({ sessionTags: { costCenter: "cc-42" } });
    await runTask(invoiceAgent, "reconcile", () => converse(client));
    const session = sts.sessions.at(-1)!;
    assert.equal(session.operation, "AssumeRole");
    assert.match(session.roleSessionName, /^reconcile\.acme\.test-agents-invoice\.[0-9a-f]{10}$/);
    assert.ok(session.roleSessionName.length <= 64);
    assert.match(session.sourceIdentity ?? "", /^acme\.test-agents-invoice\.[0-9a-f]{10}$/);
    assert.deepEqual(session.tags, { workload: invoiceAgent.id, path: "reconcile", environment: "test", costCenter: "cc-42" });
    assert.ok(Math.abs(session.expiration.getTime() - session.issuedAt.getTime() - 900_000) < 1000, "the shortest duration STS allows");
    const policy = JSON.parse(session.policy!) as { Statement: { Action: string[]; Resource: string[] }[] };
    assert.deepEqual(policy.Statement, [
      {
        Effect: "Allow",
        Action: ["bedrock:InvokeModel"],
        Resource: [`arn:aws:bedrock:*:*:inference-profile/*.${HAIKU}`, `arn:aws:bedrock:*::foundation-model/${HAIKU}`],
      },
    ]);
  });

  it("a task's credentials are dropped when it ends (after the last task sharing them), and never outlive it", async () => {
    const { client, broker } = setup();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const long = runTask(invoiceAgent, "reconcile", async () => {
      await converse(client);
      await held;
    });
    await runTask(invoiceAgent, "reconcile", async () => {
      await converse(client);
      assert.equal(broker.holds(invoiceAgent, "reconcile"), true);
    });
    assert.equal(broker.holds(invoiceAgent, "reconcile"), true, "still used by the other task");
    assert.equal(broker.issued, 1);
    release();
    await long;
    assert.equal(broker.holds(invoiceAgent, "reconcile"), false);
    assert.equal(broker.cachedPairs(), 0);
    // A failing task drops them too.
    await assert.rejects(() =>
      runTask(invoiceAgent, "reconcile", async () => {
        await converse(client);
        throw new Error("task failed");
      }),
    );
    assert.equal(broker.cachedPairs(), 0);
  });

  it("paths never share credentials, and calls outside runTask use the default path", async () => {
    const { client, records } = setup();
    await runTask(researchAgent, "path-a", () => converse(client, NOVA));
    await runTask(researchAgent, "path-b", () => converse(client, NOVA));
    await runAs(researchAgent, () => converse(client, NOVA));
    const sessions = records.map((r) => sessionOf(keyOf(r)));
    assert.deepEqual(sessions.map((s) => s?.tags["path"]), ["path-a", "path-b", "default"]);
    assert.equal(new Set(sessions.map((s) => s?.accessKeyId)).size, 3);
  });

  it("credentials close to their expiry are replaced before use: an expired key is never sent", async () => {
    const { client, records, broker } = setup({ refreshBeforeExpirySeconds: 120 });
    // STS's clock runs behind: what it issues expires 121 s from now.
    stsClockOffsetMs = -(900 - 121) * 1000;
    await runTask(invoiceAgent, "reconcile", async () => {
      await converse(client);
      stsClockOffsetMs = 0;
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await converse(client);
    });
    assert.equal(broker.issued, 2, "refreshed once inside the refresh window");
    const [first, second] = records.map(keyOf);
    assert.notEqual(first, second);
    assert.ok(bedrock.requests.every((r) => r.signature.status === "valid"), "no request was signed with an expired key");
  });

  it("STS failing mid-task: credentials well within their lifetime stay in use; nearly expired ones are never used", async () => {
    const { client, records } = setup({ refreshBeforeExpirySeconds: 120 });
    // Issued with 100 s left: inside the refresh window, outside the last 30 s.
    stsClockOffsetMs = -(900 - 100) * 1000;
    await runTask(invoiceAgent, "reconcile", async () => {
      await converse(client);
      sts.failNext({ code: "AccessDenied", status: 403, message: "refresh refused", times: 1 });
      await converse(client);
    });
    assert.deepEqual(records.map((r) => r.decision), ["allow", "allow"]);
    assert.equal(keyOf(records[0]!), keyOf(records[1]!), "the current key, while it has more than 30 s left");
    // Issued with 25 s left: when the refresh fails, nothing usable is left.
    stsClockOffsetMs = -(900 - 25) * 1000;
    await runTask(researchAgent, "reconcile", async () => {
      await converse(client, NOVA);
      sts.failNext({ code: "AccessDenied", status: 403, message: "refresh refused", times: 1 });
      await assert.rejects(() => converse(client, NOVA), (error: unknown) => error instanceof CredentialsUnavailableError && /refresh refused/.test(error.message));
    });
    assert.equal(bedrock.requests.length, 3);
  });

  it("credentials handed back other than planned (STS failing during a refresh: the cached ones) decide the call again, with those", async () => {
    const policies = `${POLICIES}
      @id("fresh-credentials-only") forbid (principal, action, resource) when { context.credentials has expiresInSeconds && context.credentials.expiresInSeconds < 300 };`;
    const { client, records } = setup({ refreshBeforeExpirySeconds: 120 }, policies);
    await runTask(invoiceAgent, "reconcile", async () => {
      // Planned as fresh, issued with 100 s left (STS's clock runs behind): decided again with those, and denied.
      stsClockOffsetMs = -(900 - 100) * 1000;
      await assert.rejects(() => converse(client), (e: unknown) => e instanceof AccessDeniedError && e.decision.policies.includes("fresh-credentials-only"));
      // Those are cached, inside the refresh window; the refresh fails, so the broker hands them back again.
      stsClockOffsetMs = 0;
      sts.failNext({ code: "Throttling", status: 400, message: "Rate exceeded", times: 3 });
      await assert.rejects(() => converse(client), (e: unknown) => e instanceof AccessDeniedError && e.decision.policies.includes("fresh-credentials-only"));
    });
    // One decision each (the second replaced the first), naming the credentials actually issued.
    const shortLived = (r: DecisionRecord) => r.credentials?.expiresAt !== undefined && Date.parse(r.credentials.expiresAt) - Date.now() < 300_000;
    assert.deepEqual(records.map((r) => [r.decision, r.outcome, shortLived(r)]), [
      ["deny", "denied", true],
      ["deny", "denied", true],
    ]);
    assert.equal(bedrock.requests.length, 0, "nothing was sent with the credentials the policies refuse");
  });

  it("credentials handed back other than planned decide the call's tool offers again too: a tool refused on those is withheld, once", async () => {
    const policies = `${POLICIES}
      @id("refunds") permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"tool:issue_refund", resource);
      @id("tools-need-fresh-credentials") forbid (principal, action in Bedrock::Action::"ToolUse", resource)
        when { context.credentials has expiresInSeconds && context.credentials.expiresInSeconds < 300 };`;
    const broker = createCredentialBroker({ roleArn: ROLE, sts: { endpoint: sts.url, region: sts.region, credentials: { ...LOCAL_BEDROCK_CREDENTIALS } } });
    const records: DecisionRecord[] = [];
    const tools = [{ name: "issue_refund", effect: "mutate" as const, inputSchema: { type: "object", properties: { amount: { type: "number" } } } }];
    const governance = createGovernance({ environment: "test", policies, tools, credentialBroker: broker, tracerProvider, onDecision: (r) => records.push(r) });
    const client = new GovernedBedrockRuntimeClient({ endpoint: bedrock.url, region: bedrock.region, governance, maxAttempts: 1 });
    clients.push(client);
    // Planned as fresh, issued with 100 s left (STS's clock runs behind).
    stsClockOffsetMs = -(900 - 100) * 1000;
    try {
      await runTask(invoiceAgent, "reconcile", () =>
        client.send(
          new ConverseCommand({
            modelId: HAIKU,
            messages: [{ role: "user", content: [{ text: "refund INV-1" }] }],
            toolConfig: { tools: [{ toolSpec: { name: "issue_refund", inputSchema: { json: { type: "object" } } } }] },
          }),
        ),
      );
    } finally {
      stsClockOffsetMs = 0;
    }
    const sent = bedrock.requests.at(-1)?.body as { toolConfig?: unknown };
    assert.equal(sent.toolConfig, undefined, "the tool refused on the issued credentials was not offered");
    assert.deepEqual(
      records.map((r) => [r.outcome, r.tools?.withheld.map((w) => [w.name, w.policies])]),
      [["completed", [["issue_refund", ["tools-need-fresh-credentials"]]]]],
    );
    const span = exporter.getFinishedSpans().find((s) => s.attributes[WARDEN.DECISION_ID] === records[0]!.id)!;
    assert.equal(span.events.filter((e) => e.name === "bedrock_warden.tool_withheld").length, 1);
  });

  it("a reload landing while a call awaits its credentials' plan: the call is decided by the policy set its credentials are scoped by", async () => {
    const broker = createCredentialBroker({ roleArn: ROLE, sts: { endpoint: sts.url, region: sts.region, credentials: { ...LOCAL_BEDROCK_CREDENTIALS }, maxAttempts: 3 } });
    const records: DecisionRecord[] = [];
    const governance = createGovernance({ environment: "test", policies: POLICIES, credentialBroker: broker, onDecision: (r) => records.push(r) });
    const before = governance.policySetVersion;
    const client = new GovernedBedrockRuntimeClient({
      endpoint: bedrock.url,
      region: bedrock.region,
      governance,
      maxAttempts: 1,
      // Read (and awaited) while the first call's credentials are planned: the reload lands then.
      authSchemePreference: async () => {
        governance.reload(`@id("nothing") forbid (principal, action, resource);`);
        return ["sigv4"];
      },
    });
    clients.push(client);
    await runTask(invoiceAgent, "reconcile", () => converse(client));
    assert.notEqual(governance.policySetVersion, before, "reloaded");
    assert.equal(records[0]?.policySetVersion, before, "decided by the set the credentials were planned under");
    assert.match(sessionOf(keyOf(records[0]!))?.policy ?? "", new RegExp(HAIKU.replace(/[.:-]/g, "\\$&")));
    // The next call is decided by the new set.
    await assert.rejects(() => runTask(invoiceAgent, "reconcile", () => converse(client)), AccessDeniedError);
  });

  it("SourceIdentity and the workload tag name one workload each, even for an id chosen to read like another's cleaned, hashed name", async () => {
    const hash = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 10);
    const policies = `permit (principal in Bedrock::Group::"g", action == Bedrock::Action::"Converse", resource == Bedrock::Model::"${HAIKU}");`;
    const { client } = setup({}, policies);
    const victim = { id: "spiffe://acme.test/agents/payroll", groups: ["g"] };
    const lookalike = { id: `acme.test-agents-payroll.${hash(victim.id)}`, groups: ["g"] };
    const tagged = { id: "billing#1", groups: ["g"] };
    const tagLookalike = { id: `billing_1.${hash("billing#1")}`, groups: ["g"] };
    for (const who of [victim, lookalike, tagged, tagLookalike]) await runTask(who, "reconcile", () => converse(client));
    const issued = sts.sessions.slice(-4);
    assert.equal(new Set(issued.map((session) => session.sourceIdentity)).size, 4, JSON.stringify(issued.map((session) => session.sourceIdentity)));
    assert.equal(new Set(issued.map((session) => session.tags["workload"])).size, 4, JSON.stringify(issued.map((session) => session.tags["workload"])));
  });

  it("a task named like an Object.prototype member, or one a polluted prototype names, has no explicit path scope", async () => {
    const policies = `permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"Converse", resource == Bedrock::Model::"${HAIKU}");`;
    const { client } = setup({ paths: { summarize: { operations: ["Converse"], models: [NOVA] } } }, policies);
    for (const task of ["constructor", "toString"]) {
      await runTask(invoiceAgent, task, () => converse(client));
      assert.doesNotMatch(sessionOf(bedrock.requests.at(-1)?.signature.accessKeyId)?.policy ?? "", /nova/, task);
    }
    const prototype = Object.prototype as Record<string, unknown>;
    prototype["nightly"] = { operations: ["Converse", "InvokeModel"], models: [NOVA, "anthropic.claude-3-opus-20240229-v1:0"] };
    try {
      await runTask(invoiceAgent, "nightly", () => converse(client));
    } finally {
      delete prototype["nightly"];
    }
    const policy = sessionOf(bedrock.requests.at(-1)?.signature.accessKeyId)?.policy ?? "";
    assert.match(policy, /claude-3-haiku/);
    assert.doesNotMatch(policy, /opus|nova/, "the polluted path scope was not used");
  });

  it("a key that expired at AWS is refused there as AWS would, and the call fails", async () => {
    const { client, records } = setup();
    await runTask(invoiceAgent, "reconcile", async () => {
      await converse(client);
      sts.expire(sts.sessions.at(-1)!.accessKeyId);
      await assert.rejects(() => converse(client), (error: Error) => error.name === "ExpiredTokenException");
    });
    assert.equal(records.at(-1)?.outcome, "failed");
  });

  it("STS throttling is retried by the SDK; throttling that outlasts the retries denies, naming the cause", async () => {
    const { client, records } = setup();
    sts.failNext({ code: "Throttling", status: 400, message: "Rate exceeded", times: 1 });
    await runTask(invoiceAgent, "reconcile", () => converse(client));
    assert.equal(records.at(-1)?.decision, "allow");
    // As many as the STS client's attempts (maxAttempts 3): all are used up by this one call.
    sts.failNext({ code: "Throttling", status: 400, message: "Rate exceeded", times: 3 });
    await assert.rejects(
      () => runTask(researchAgent, "reconcile", () => converse(client, NOVA)),
      (error: unknown) => error instanceof CredentialsUnavailableError && /Throttling: Rate exceeded/.test(error.message),
    );
    assert.equal(records.at(-1)?.decision, "deny");
    assert.equal(bedrock.requests.length, 1);
  });

  it("an STS refusal (a role that does not exist) denies with STS's error, and nothing is sent", async () => {
    const { client } = setup({ roleArn: "arn:aws:iam::123456789012:role/missing" });
    await assert.rejects(
      () => runTask(invoiceAgent, "reconcile", () => converse(client)),
      (error: unknown) => error instanceof CredentialsUnavailableError && /AccessDenied/.test(error.message) && /role\/missing/.test(error.message),
    );
    assert.equal(bedrock.requests.length, 0);
  });

  it("web identity: the workload's own verified token is exchanged; a declared identity has none and is denied", async () => {
    const { client, records } = setup({ exchange: "web-identity", sts: { endpoint: sts.url, region: sts.region } });
    const verifier = createTokenVerifier({ issuer: IDP, audience: "sts.amazonaws.com", keys: { jwks: jwks as never }, kind: "spiffe", trustDomains: ["acme.test"], claims: () => ({ groups: ["billing"] }) });
    const agent = await verifier.verify(await svid("spiffe://acme.test/agents/invoice"));
    assert.deepEqual([agent.id, agent.groups], [invoiceAgent.id, invoiceAgent.groups]);
    await runTask(agent, "reconcile", async () => {
      await converse(client);
      // While the verified agent's credentials are cached, a declared identity with the same id and
      // groups, on the same path, does not get them: it has no token to exchange.
      await assert.rejects(
        () => runTask(invoiceAgent, "reconcile", () => converse(client)),
        (error: unknown) => error instanceof CredentialsUnavailableError && /no verified token/.test(error.message),
      );
    });
    const session = sessionOf(keyOf(records[0]!));
    assert.equal(session?.operation, "AssumeRoleWithWebIdentity");
    assert.equal(session?.subject, "spiffe://acme.test/agents/invoice");
    // A delegated token would be attributed by STS to whoever it acts for: refused.
    const delegatedVerifier = createTokenVerifier({ issuer: IDP, audience: "sts.amazonaws.com", keys: { jwks: jwks as never }, kind: "spiffe", trustDomains: ["acme.test"], claims: () => ({ groups: ["billing"] }), acceptDelegation: true });
    const delegated = await delegatedVerifier.verify(
      await new SignJWT({ act: { sub: "spiffe://acme.test/agents/invoice" } }).setProtectedHeader({ alg: "ES256", kid: "idp" }).setIssuer(IDP).setSubject("alice@acme.test").setAudience("sts.amazonaws.com").setExpirationTime("10m").sign(idpKey),
    );
    await assert.rejects(
      () => runTask(delegated, "reconcile", () => converse(client)),
      (error: unknown) => error instanceof CredentialsUnavailableError && /delegated token/.test(error.message),
    );
    // A verified workload outside the role's trust (subject) is refused by STS.
    const outsider = await verifier.verify(await svid("spiffe://acme.test/bots/outsider"));
    await assert.rejects(() => runTask(outsider, "reconcile", () => converse(client)), (error: unknown) => error instanceof CredentialsUnavailableError && /AccessDenied/.test(error.message));
  });

  it("the session policy is a ceiling AWS enforces: a path given fewer models than Cedar permits is refused at the endpoint", async () => {
    const { client, records } = setup({ paths: { "nova-only": { operations: ["Converse"], models: [NOVA] } } });
    await runTask(researchAgent, "nova-only", async () => {
      await converse(client, NOVA);
      await assert.rejects(() => converse(client, HAIKU), (error: Error) => error.name === "AccessDeniedException");
    });
    assert.deepEqual(records.map((r) => [r.decision, r.outcome]), [["allow", "completed"], ["allow", "failed"]]);
  });

  it("a policy that permits any model cannot become a session policy: denied, saying to give the path's scope", async () => {
    const { client } = setup({}, `permit (principal, action == Bedrock::Action::"Converse", resource);`);
    await assert.rejects(
      () => runTask(invoiceAgent, "reconcile", () => converse(client)),
      (error: unknown) => error instanceof CredentialsUnavailableError && /on any model/.test(error.message) && /paths/.test(error.message),
    );
  });

  it("a client preferring a Bedrock API key cannot bypass the broker", async () => {
    const broker: CredentialBroker = createCredentialBroker({ roleArn: ROLE, sts: { endpoint: sts.url, region: sts.region, credentials: { ...LOCAL_BEDROCK_CREDENTIALS } } });
    const governance = createGovernance({ environment: "test", policies: POLICIES, credentialBroker: broker });
    const client = new GovernedBedrockRuntimeClient({
      endpoint: bedrock.url,
      region: bedrock.region,
      governance,
      authSchemePreference: ["httpBearerAuth"],
      token: { token: "api-key" },
    });
    clients.push(client);
    await assert.rejects(() => runTask(invoiceAgent, "reconcile", () => converse(client)), (error: unknown) => error instanceof CredentialsUnavailableError && /bearer/.test(error.message));
    assert.equal(bedrock.requests.length, 0);
  });

  it("spans say the credentials were brokered; no secret reaches spans, records, errors or the printed broker", async () => {
    // The STS client's own answers are captured, to look for exactly what STS issued.
    const issued: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string }[] = [];
    const stsClient = new STSClient({ endpoint: sts.url, region: sts.region, credentials: { ...LOCAL_BEDROCK_CREDENTIALS } });
    stsClient.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const credentials = (result.output as { Credentials?: (typeof issued)[number] }).Credentials;
        if (credentials) issued.push(credentials);
        return result;
      },
      { step: "initialize", name: "captureIssuedCredentials" },
    );
    clients.push(stsClient);
    const { client, records, broker } = setup({ sts: stsClient });
    await runTask(invoiceAgent, "reconcile", () => converse(client));
    const denied = await runTask(invoiceAgent, "reconcile", () => converse(client, NOVA)).catch((error: Error) => error);
    const span = exporter.getFinishedSpans().find((s) => s.attributes[WARDEN.DECISION] === "allow")!;
    assert.equal(span.attributes[WARDEN.CREDENTIALS_KIND], "temporary");
    assert.equal(span.attributes[WARDEN.CREDENTIALS_BROKERED], true);
    assert.equal(span.attributes[WARDEN.TASK], "reconcile");
    assert.equal(issued.length, 1);
    const ours =
      JSON.stringify(records) +
      JSON.stringify(exporter.getFinishedSpans().map((s) => [s.attributes, s.events])) +
      String(denied) +
      JSON.stringify(denied) +
      inspect(denied, { depth: 10, showHidden: true }) +
      inspect(broker, { depth: 10, showHidden: true });
    for (const secret of [issued[0]!.AccessKeyId!, issued[0]!.SecretAccessKey!, issued[0]!.SessionToken!, LOCAL_BEDROCK_CREDENTIALS.secretAccessKey]) {
      assert.ok(!ours.includes(secret), `leaked: ${secret.slice(0, 6)}…`);
    }
    // The local STS records which key it issued to whom (as CloudTrail would), never a secret. (The
    // local Bedrock endpoint records the headers it received verbatim, session token included: a test fixture's log.)
    const endpoints = inspect(sts, { depth: 10, showHidden: true });
    for (const secret of [issued[0]!.SecretAccessKey!, issued[0]!.SessionToken!]) {
      assert.ok(!endpoints.includes(secret), `the endpoints print a secret: ${secret.slice(0, 6)}…`);
    }
  });

  it("a call Cedar denies makes no STS call: credentials are issued only for allowed calls", async () => {
    const { client, records, broker } = setup();
    const stsRequestsBefore = sts.requests.length;
    for (let i = 0; i < 5; i++) {
      await assert.rejects(() => runTask({ id: `declared-${i}` }, `job-${i}`, () => converse(client)), AccessDeniedError);
    }
    assert.equal(records.length, 5);
    assert.equal(broker.issued, 0);
    assert.equal(sts.requests.length, stsRequestsBefore);
  });

  it("a call made after its task ended (a dangling promise) is denied: the task's credentials are gone", async () => {
    const { client, broker } = setup();
    let late: Promise<unknown> | undefined;
    await runTask(invoiceAgent, "reconcile", async () => {
      await converse(client);
      // Started inside the task, not awaited by it: it runs after the task has ended.
      late = new Promise((resolve) => setTimeout(() => resolve(converse(client).catch((error: unknown) => error)), 20));
    });
    const error = await late;
    assert.ok(error instanceof CredentialsUnavailableError && /has ended/.test(error.message), String(error));
    assert.equal(broker.issued, 1);
    assert.equal(broker.cachedPairs(), 0);
  });

  it("a task that ends while its call is being decided gets no credentials: the call is denied, nothing is sent", async () => {
    // A usage store that answers late holds the call between its credential plan and its issue.
    const store = memoryUsageStore();
    const slowStore: UsageStore = { ...store, admit: async (id, now) => (await delay(60), store.admit(id, now)) };
    const broker = createCredentialBroker({ roleArn: ROLE, sts: { endpoint: sts.url, region: sts.region, credentials: { ...LOCAL_BEDROCK_CREDENTIALS } } });
    const records: DecisionRecord[] = [];
    const governance = createGovernance({ environment: "test", policies: POLICIES, credentialBroker: broker, tracerProvider, usage: { store: slowStore }, onDecision: (r) => records.push(r) });
    const client = new GovernedBedrockRuntimeClient({ endpoint: bedrock.url, region: bedrock.region, governance, maxAttempts: 1 });
    clients.push(client);
    const sentBefore = bedrock.requests.length;
    let call: Promise<unknown> | undefined;
    await runTask(invoiceAgent, "reconcile", async () => {
      await converse(client); // the client's first call resolves its configuration: the next one plans at once
      call = converse(client).catch((error: unknown) => error);
      await delay(20); // planned by now, admitted only after the task has ended
    });
    const error = await call;
    assert.ok(error instanceof CredentialsUnavailableError && /has ended/.test(error.message), String(error));
    assert.equal(broker.issued, 1);
    assert.equal(broker.cachedPairs(), 0);
    assert.equal(bedrock.requests.length, sentBefore + 1);
    assert.deepEqual(records.map((r) => r.outcome), ["completed", "denied"]);
  });

  it("a task that ends while STS answers gets no credentials either: the call is denied, nothing is sent", async () => {
    const stsClient = new STSClient({ endpoint: sts.url, region: sts.region, credentials: { ...LOCAL_BEDROCK_CREDENTIALS } });
    stsClient.middlewareStack.add((next) => async (args) => (await delay(150), next(args)), { step: "initialize", name: "slowSts" });
    const broker = createCredentialBroker({ roleArn: ROLE, sts: stsClient });
    const records: DecisionRecord[] = [];
    const governance = createGovernance({ environment: "test", policies: POLICIES, credentialBroker: broker, tracerProvider, onDecision: (r) => records.push(r) });
    const client = new GovernedBedrockRuntimeClient({ endpoint: bedrock.url, region: bedrock.region, governance, maxAttempts: 1 });
    clients.push(client, stsClient);
    // The client's first call resolves its configuration (another task, its own credentials).
    await runTask(invoiceAgent, "warm-up", () => converse(client));
    const sentBefore = bedrock.requests.length;
    let call: Promise<unknown> | undefined;
    await runTask(invoiceAgent, "reconcile", async () => {
      call = converse(client).catch((error: unknown) => error);
      await delay(60); // issuing by now; the task ends while STS answers
    });
    const error = await call;
    assert.ok(error instanceof CredentialsUnavailableError && /has ended/.test(error.message), String(error));
    assert.equal(bedrock.requests.length, sentBefore);
    assert.equal(broker.cachedPairs(), 0);
    assert.equal(broker.issued, 2, "STS answered for the ended task too; its credentials were dropped");
    assert.deepEqual(records.map((r) => r.outcome), ["completed", "denied"]);
  });

  it("a bidirectional stream is refused with a broker (the SDK would sign its frames with the client's own credentials)", async () => {
    const { client } = setup();
    await assert.rejects(
      () =>
        runTask(invoiceAgent, "reconcile", () =>
          client.send(new InvokeModelWithBidirectionalStreamCommand({ modelId: HAIKU, body: (async function* () {})() })),
        ),
      (error: unknown) => error instanceof CredentialsUnavailableError && /frames/.test(error.message),
    );
    assert.equal(bedrock.requests.length, 0);
  });

  it("one broker serving two governances keeps their credentials apart (session policy and environment tag differ)", async () => {
    const broker = createCredentialBroker({ roleArn: ROLE, sts: { endpoint: sts.url, region: sts.region, credentials: { ...LOCAL_BEDROCK_CREDENTIALS } } });
    const made = ["staging", "production"].map((environment) => {
      const governance = createGovernance({ environment, policies: POLICIES, credentialBroker: broker });
      const client = new GovernedBedrockRuntimeClient({ endpoint: bedrock.url, region: bedrock.region, governance, maxAttempts: 1 });
      clients.push(client);
      return client;
    });
    await runTask(invoiceAgent, "reconcile", async () => {
      for (const client of made) await converse(client);
    });
    assert.equal(broker.issued, 2);
    assert.deepEqual(sts.sessions.slice(-2).map((s) => s.tags["environment"]), ["staging", "production"]);
  });

  it("runTask refuses the name of the calls outside any task", async () => {
    await assert.rejects(() => runTask(invoiceAgent, "default", async () => undefined), /names the calls made outside any task/);
  });
});
