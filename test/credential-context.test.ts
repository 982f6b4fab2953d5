import assert from "node:assert/strict";
import { inspect } from "node:util";
import { describe, it } from "node:test";
import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import {
  AccessDeniedError,
  createGovernance,
  createTokenVerifier,
  CredentialsUnavailableError,
  GovernedBedrockRuntimeClient,
  IdentityExpiredError,
  runAs,
  runTask,
  SigningMismatchError,
  WARDEN,
  type DecisionRecord,
} from "../src/index.js";
import { converseInput, HAIKU } from "./support/governance.js";
import { MemoryHandler } from "./support/memory-handler.js";
import { exporter, tracerProvider } from "./support/tracing.js";

const ISSUER = "https://issuer.acme.test";
const AUDIENCE = "bedrock-warden";

const POLICIES = `
@id("agents") permit (principal, action in Bedrock::Action::"ModelInvocation", resource);
@id("no-standing-keys-in-production")
@reason("production calls are never signed with standing access keys")
forbid (principal, action, resource) when { context.environment == "production" && context.credentials.kind == "long-term" };
@id("verified-only-in-production")
@reason("production workloads must prove their identity with a token")
forbid (principal, action, resource) when { context.environment == "production" && !context.authentication.verified };
@id("deep-delegation-read-only")
@reason("a sub-agent three hops from its human never mutates anything")
forbid (principal, action, resource) when { context.delegation.depth >= 3 && context.actionType == "mutate" };
@id("acme-domain-only")
forbid (principal, action, resource) when { principal has trustDomain && principal.trustDomain != "acme.test" };
`;

const LONG_TERM = { accessKeyId: "AKIALONGTERMCANARY01", secretAccessKey: "canary-long-term-secret-0001" };
const TEMPORARY = () => ({
  accessKeyId: "ASIATEMPORARYCANARY1",
  secretAccessKey: "canary-temporary-secret-0001",
  sessionToken: "canary-session-token-0001",
  expiration: new Date(Date.now() + 600_000),
});

function governed(environment: string, credentials: unknown, extra: Record<string, unknown> = {}) {
  const records: DecisionRecord[] = [];
  const governance = createGovernance({ environment, policies: POLICIES, tracerProvider, onDecision: (r) => records.push(r) });
  const handler = new MemoryHandler();
  const client = new GovernedBedrockRuntimeClient({
    region: "us-east-1",
    credentials: credentials as never,
    requestHandler: handler,
    governance,
    maxAttempts: 1,
    ...extra,
  });
  return { governance, records, handler, client };
}

let issuerKey: { privateKey: CryptoKey; jwk: JWK } | undefined;
async function signer() {
  if (!issuerKey) {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    issuerKey = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" } };
  }
  return issuerKey;
}

async function token(claims: Record<string, unknown>, expiresIn: string | number = "10m"): Promise<string> {
  const { privateKey } = await signer();
  return new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "k1" }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime(expiresIn).sign(privateKey);
}

async function verifier(kind: "oidc" | "spiffe" = "oidc", clockToleranceSeconds?: number, acceptDelegation?: boolean) {
  const { jwk } = await signer();
  return createTokenVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    keys: { jwks: { keys: [jwk] } },
    ...(kind === "spiffe" ? { kind, trustDomains: ["acme.test", "other.test"] } : {}),
    ...(clockToleranceSeconds !== undefined && { clockToleranceSeconds }),
    ...(acceptDelegation !== undefined && { acceptDelegation }),
  });
}

describe("credential hygiene in the context", () => {
  it("a long-term access key is refused in production, with the policy that refused it", async () => {
    const { client, records, handler } = governed("production", LONG_TERM);
    const agent = await (await verifier()).verify(await token({ sub: "invoice-agent" }));
    await assert.rejects(
      () => runAs(agent, () => client.send(new ConverseCommand(converseInput()))),
      (error: unknown) => error instanceof AccessDeniedError && error.decision.policies.includes("no-standing-keys-in-production"),
    );
    assert.equal(handler.requests.length, 0);
    assert.deepEqual(records[0]?.credentials, { kind: "long-term", brokered: false });
    client.destroy();
  });

  it("temporary credentials are allowed, and their kind and expiry reach the span and the record (never the secrets)", async () => {
    exporter.reset();
    const credentials = TEMPORARY();
    const { client, records, handler } = governed("production", credentials);
    const agent = await (await verifier()).verify(await token({ sub: "invoice-agent" }));
    await runAs(agent, () => client.send(new ConverseCommand(converseInput())));
    assert.equal(handler.requests.length, 1);
    assert.equal(records[0]?.credentials?.kind, "temporary");
    assert.equal(records[0]?.credentials?.expiresAt, credentials.expiration.toISOString());
    const span = exporter.getFinishedSpans().at(-1)!;
    assert.equal(span.attributes[WARDEN.CREDENTIALS_KIND], "temporary");
    assert.equal(span.attributes[WARDEN.CREDENTIALS_BROKERED], false);
    const evidence = JSON.stringify(records) + JSON.stringify(exporter.getFinishedSpans().map((s) => ({ a: s.attributes, e: s.events })));
    for (const secret of [credentials.secretAccessKey, credentials.sessionToken, credentials.accessKeyId]) assert.ok(!evidence.includes(secret), secret);
    client.destroy();
  });

  it("a Bedrock API key (bearer) is classified as such", async () => {
    const { client, records, handler } = governed("staging", LONG_TERM, {
      authSchemePreference: ["httpBearerAuth"],
      token: { token: "bedrock-api-key-canary" },
    });
    await runAs({ id: "dev-agent" }, () => client.send(new ConverseCommand(converseInput())));
    const headers = Object.fromEntries(Object.entries(handler.requests[0]?.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    assert.match(String(headers["authorization"]), /^Bearer /);
    assert.equal(records[0]?.credentials?.kind, "bearer");
    assert.ok(!JSON.stringify(records).includes("bedrock-api-key-canary"));
    client.destroy();
  });

  it("expired client credentials deny the call, naming the cause", async () => {
    const expired = { ...TEMPORARY(), expiration: new Date(Date.now() - 1000) };
    // A provider that keeps handing out the expired key (the SDK would otherwise refresh a memoized one).
    const provider = Object.assign(async () => expired, { memoized: true });
    const { client, handler } = governed("staging", provider);
    await assert.rejects(
      () => runAs({ id: "dev-agent" }, () => client.send(new ConverseCommand(converseInput()))),
      (error: unknown) =>
        error instanceof CredentialsUnavailableError && /expired at/.test(error.message) && !error.message.includes(expired.secretAccessKey),
    );
    assert.equal(handler.requests.length, 0);
    client.destroy();
  });

  it("no credentials at all deny the call before anything is sent", async () => {
    const provider = Object.assign(async () => {
      throw new Error("Could not load credentials from any providers");
    }, { memoized: true });
    const { client, handler, records } = governed("staging", provider);
    await assert.rejects(
      () => runAs({ id: "dev-agent" }, () => client.send(new ConverseCommand(converseInput()))),
      (error: unknown) => error instanceof CredentialsUnavailableError && /Could not load credentials/.test(error.message),
    );
    assert.equal(handler.requests.length, 0);
    assert.equal(records.length, 1);
    assert.equal(records[0]?.decision, "deny");
    client.destroy();
  });

  it("a call about to be signed with other credentials than it was authorized with is stopped before sending", async () => {
    // The provider answers one key when the call is decided and another when the SDK signs it.
    let calls = 0;
    const provider = Object.assign(async () => (calls++ === 0 ? TEMPORARY() : { ...TEMPORARY(), accessKeyId: "ASIAOTHERIDENTITYKEY" }), {
      memoized: true,
    });
    const { client, handler, records } = governed("staging", provider);
    await assert.rejects(
      () => runAs({ id: "dev-agent" }, () => client.send(new ConverseCommand(converseInput()))),
      (error: unknown) => error instanceof SigningMismatchError && /another access key/.test(error.message),
    );
    assert.equal(handler.requests.length, 0);
    assert.equal(records[0]?.outcome, "failed");
    client.destroy();
  });
});

describe("verified identity in the context", () => {
  it("a declared identity is refused where policies require a verified one; a verified one is allowed", async () => {
    const { client, records } = governed("production", TEMPORARY());
    await assert.rejects(
      () => runAs({ id: "invoice-agent" }, () => client.send(new ConverseCommand(converseInput()))),
      (error: unknown) => error instanceof AccessDeniedError && error.decision.policies.includes("verified-only-in-production"),
    );
    // An object that merely claims to be verified is still declared.
    const forged = { id: "invoice-agent", authentication: { verified: true }, verified: true } as never;
    assert.throws(() => runAs(forged, () => client.send(new ConverseCommand(converseInput()))), /Invalid workload identity: Unrecognized keys/);
    const agent = await (await verifier()).verify(await token({ sub: "invoice-agent" }));
    await runAs(agent, () => client.send(new ConverseCommand(converseInput())));
    const allowed = records.at(-1)!;
    assert.equal(allowed.decision, "allow");
    assert.deepEqual({ ...allowed.authentication, expiresAt: undefined }, { verified: true, method: "oidc", issuer: ISSUER, expiresAt: undefined });
    assert.deepEqual(records[0]?.authentication, { verified: false, method: "declared" });
    client.destroy();
  });

  it("a sub-agent three hops from its human may read but never mutate; the chain is in the span and the record", async () => {
    exporter.reset();
    const { client, records } = governed("staging", TEMPORARY());
    const chain = { sub: "sub-agent-3", act: { sub: "sub-agent-2", act: { sub: "orchestrator" } } };
    const agent = await (await verifier("oidc", undefined, true)).verify(await token({ sub: "alice@acme.test", act: chain }));
    assert.equal(agent.id, "sub-agent-3");
    await runAs(agent, () => client.send(new ConverseCommand(converseInput())));
    await assert.rejects(
      () => runAs(agent, () => client.send(new ConverseCommand(converseInput())), { actionType: "mutate" }),
      (error: unknown) => error instanceof AccessDeniedError && error.decision.policies.includes("deep-delegation-read-only"),
    );
    assert.deepEqual(records[0]?.delegation, { depth: 3, actors: ["orchestrator", "sub-agent-2", "sub-agent-3"], onBehalfOf: "alice@acme.test" });
    const span = exporter.getFinishedSpans().at(0)!;
    assert.equal(span.attributes[WARDEN.DELEGATION_DEPTH], 3);
    assert.deepEqual(span.attributes[WARDEN.DELEGATION_ACTORS], ["orchestrator", "sub-agent-2", "sub-agent-3"]);
    assert.equal(span.attributes[WARDEN.DELEGATION_ON_BEHALF_OF], "alice@acme.test");
    assert.equal(span.attributes[WARDEN.IDENTITY_VERIFIED], true);
    client.destroy();
  });

  it("a SPIFFE JWT-SVID maps to the principal's trust domain and path", async () => {
    const { client, records } = governed("staging", TEMPORARY());
    const spiffe = await verifier("spiffe");
    const inDomain = await spiffe.verify(await token({ sub: "spiffe://acme.test/agents/invoice" }));
    await runAs(inDomain, () => client.send(new ConverseCommand(converseInput())));
    const foreign = await spiffe.verify(await token({ sub: "spiffe://other.test/agents/invoice" }));
    await assert.rejects(
      () => runAs(foreign, () => client.send(new ConverseCommand(converseInput()))),
      (error: unknown) => error instanceof AccessDeniedError && error.decision.policies.includes("acme-domain-only"),
    );
    assert.deepEqual(
      records.map((r) => [r.workload?.id, r.decision, r.authentication?.method]),
      [
        ["spiffe://acme.test/agents/invoice", "allow", "spiffe-jwt-svid"],
        ["spiffe://other.test/agents/invoice", "deny", "spiffe-jwt-svid"],
      ],
    );
    client.destroy();
  });

  it("the token's remaining lifetime is in the context, and an expired token denies at once", async () => {
    const policies = `permit (principal, action, resource) when { context.authentication has expiresInSeconds && context.authentication.expiresInSeconds > 60 };`;
    const governance = createGovernance({ environment: "staging", policies });
    const handler = new MemoryHandler();
    const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: TEMPORARY(), requestHandler: handler, governance, maxAttempts: 1 });
    const v = await verifier("oidc", 0);
    const longLived = await v.verify(await token({ sub: "a" }, "10m"));
    await runAs(longLived, () => client.send(new ConverseCommand(converseInput())));
    const shortLived = await v.verify(await token({ sub: "a" }, "30s"));
    await assert.rejects(() => runAs(shortLived, () => client.send(new ConverseCommand(converseInput()))), AccessDeniedError);
    const expiring = await v.verify(await token({ sub: "a" }, Math.floor(Date.now() / 1000) + 2));
    await new Promise((resolve) => setTimeout(resolve, 2100));
    await assert.rejects(
      () => runAs(expiring, () => client.send(new ConverseCommand(converseInput(HAIKU)))),
      (error: unknown) => error instanceof IdentityExpiredError && /expired at/.test(error.message),
    );
    assert.equal(handler.requests.length, 1);
    client.destroy();
  });

  it("runTask verifies the identity from a provider at the start of the task and names the path in the context", async () => {
    const policies = `permit (principal, action, resource) when { context has task && context.task == "reconcile" };`;
    const records: DecisionRecord[] = [];
    const governance = createGovernance({ environment: "staging", policies, onDecision: (r) => records.push(r) });
    const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: TEMPORARY(), requestHandler: new MemoryHandler(), governance, maxAttempts: 1 });
    const v = await verifier();
    const raw = await token({ sub: "invoice-agent" });
    const provider = { name: "test", identity: () => v.verify(raw) };
    await runTask(provider, "reconcile", () => client.send(new ConverseCommand(converseInput())));
    await assert.rejects(() => runTask(provider, "other-path", () => client.send(new ConverseCommand(converseInput()))), AccessDeniedError);
    await assert.rejects(() => runTask(provider, "bad path!", async () => undefined), /task name/);
    const failing = { name: "broken", identity: async () => v.verify("not-a-token") };
    await assert.rejects(() => runTask(failing, "reconcile", async () => undefined), /Token refused|malformed/i);
    assert.deepEqual(records.map((r) => [r.task, r.decision]), [["reconcile", "allow"], ["other-path", "deny"]]);
    // The token itself never reaches the evidence, nor the identity's printed form.
    assert.ok(!JSON.stringify(records).includes(raw));
    assert.ok(!inspect(await v.verify(raw), { depth: 10 }).includes(raw));
    client.destroy();
  });
});
