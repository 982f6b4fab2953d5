/**
 * Proven identities and just-in-time credentials: two agents, each with its own token (a SPIFFE
 * JWT-SVID from the organisation's identity provider) and its own short-lived AWS credentials,
 * issued by STS for that agent and that task only, restricted by a session policy to the models
 * the task may use, and dropped when the task ends.
 *
 *   npx tsx examples/workload-credentials.ts     # also part of `npm run demo`
 *
 * Everything runs locally: a stand-in identity provider (a key pair), the embedded STS endpoint
 * and the embedded Bedrock endpoint, which accepts only the keys STS issued, checks each request's
 * signature against them and enforces their session policies. On AWS the same code needs an IAM
 * role that trusts your identity provider (see "Just-in-time credentials on AWS" in the README).
 */
import { pathToFileURL } from "node:url";
import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import {
  AccessDeniedError,
  createCredentialBroker,
  createGovernance,
  createTokenVerifier,
  GovernedBedrockRuntimeClient,
  policiesFromDirectory,
  policiesFromText,
  runTask,
  TokenVerificationError,
  type DecisionRecord,
} from "bedrock-warden";
import { startLocalBedrock, startLocalSts } from "bedrock-warden/local-endpoint";
import { INVOICE_TOOLS } from "./support/invoice-tools.js";

const IDP = "https://idp.acme.example";
const ROLE = "arn:aws:iam::123456789012:role/bedrock-agents";
const HAIKU_PROFILE = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
const NOVA_PROFILE = "us.amazon.nova-lite-v1:0";
const GROUPS: Record<string, string[]> = {
  "spiffe://acme.example/agents/invoice": ["billing"],
  "spiffe://acme.example/agents/research": ["research"],
};

// What the production policies add for identities and credentials (see README).
const IDENTITY_POLICIES = `
@id("verified-workloads-only")
@reason("in production a workload proves who it is with a token")
forbid (principal, action, resource) when { context.environment == "production" && !context.authentication.verified };

@id("no-standing-keys")
@reason("in production no call is signed with a long-term access key")
forbid (principal, action, resource) when { context.environment == "production" && context.credentials.kind == "long-term" };
`;

/** Runs the story; prints each step. */
export async function workloadCredentialsStory(policyDir: string): Promise<void> {
  console.log("── Proven identities and just-in-time credentials ──\n");

  // The identity provider: in production SPIRE, Kubernetes or your CI issues these tokens.
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: "idp-1", alg: "ES256" }] };
  const issue = (spiffeId: string) =>
    new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "idp-1" }).setIssuer(IDP).setSubject(spiffeId).setAudience("sts.amazonaws.com").setIssuedAt().setExpirationTime("10m").sign(privateKey);

  const bedrockEndpoint = await startLocalBedrock({ credentials: [], reply: (request) => ({ text: `(${request.operation} answered)` }) });
  const sts = await startLocalSts({
    roles: [{ arn: ROLE, webIdentity: { issuer: IDP, jwks, subjects: ["spiffe://acme.example/agents/*"] } }],
    issueTo: [bedrockEndpoint],
  });
  const verifier = createTokenVerifier({
    issuer: IDP,
    audience: "sts.amazonaws.com",
    keys: { jwks },
    kind: "spiffe",
    trustDomains: ["acme.example"],
    // The token proves the SPIFFE ID; the groups the policies speak of follow from its path.
    claims: (claims) => ({ groups: GROUPS[String(claims.sub)] ?? [] }),
  });
  const credentialBroker = createCredentialBroker({
    roleArn: ROLE,
    exchange: "web-identity", // the workload's own token is exchanged: the process holds no AWS key at all
    sts: { endpoint: sts.url, region: sts.region },
    // The research policies permit "any model outside production", which no session policy can
    // name: this path's scope is given explicitly. The invoice agent's is derived from its policies.
    paths: { "market-research": { operations: ["Converse", "CountTokens"], models: [NOVA_PROFILE] } },
  });
  const records: DecisionRecord[] = [];
  const governance = createGovernance({
    environment: "production",
    policies: [...policiesFromDirectory(policyDir), ...policiesFromText(IDENTITY_POLICIES, "identity.cedar")],
    tools: INVOICE_TOOLS,
    credentialBroker,
    onDecision: (record) => records.push(record),
  });
  // No credentials: every call is signed with what the broker issued for its identity and task.
  const bedrock = new GovernedBedrockRuntimeClient({ endpoint: bedrockEndpoint.url, region: bedrockEndpoint.region, governance });

  const invoice = await verifier.verify(await issue("spiffe://acme.example/agents/invoice"));
  const research = await verifier.verify(await issue("spiffe://acme.example/agents/research"));
  for (const agent of [invoice, research]) console.log(`▶ ${agent.id} (groups: ${agent.groups?.join(", ")}): token verified, SPIFFE JWT-SVID from ${IDP}`);

  const converse = (modelId: string, text: string) =>
    bedrock.send(new ConverseCommand({ modelId, messages: [{ role: "user", content: [{ text }] }], inferenceConfig: { maxTokens: 256 } }));
  const attempt = async (who: string, label: string, call: () => Promise<unknown>) => {
    try {
      await call();
    } catch (error) {
      if (!(error instanceof AccessDeniedError)) throw error;
    }
    const record = records.at(-1);
    // The request the endpoint received for this decision (its id travels in the request metadata).
    const request = bedrockEndpoint.requests.find((r) => JSON.stringify(r.body ?? "").includes(record?.id ?? "-"));
    const outcome =
      record?.decision === "allow"
        ? `✔ ALLOW  ${who.padEnd(8)} ${label}  signed with ${request?.signature.accessKeyId?.slice(0, 8)}…`
        : `✘ DENY   ${who.padEnd(8)} ${label}  (${record?.reasons.join("; ")})`;
    console.log(`  ${outcome}`);
  };

  // Two tasks at once, their calls interleaved: each is signed with its own identity's key.
  await Promise.all([
    runTask(invoice, "reconcile-invoices", async () => {
      await attempt("invoice", `Converse ${HAIKU_PROFILE}`, () => converse(HAIKU_PROFILE, "Reconcile invoice 4711"));
      await attempt("invoice", `Converse ${HAIKU_PROFILE} again (cached credentials)`, () => converse(HAIKU_PROFILE, "And 4712?"));
    }, { purpose: "reconcile invoices" }),
    runTask(research, "market-research", async () => {
      await attempt("research", `Converse ${NOVA_PROFILE}`, () => converse(NOVA_PROFILE, "Summarize the market"));
      await attempt("research", `Converse ${HAIKU_PROFILE} (not its path's model)`, () => converse(HAIKU_PROFILE, "Summarize the market"));
    }, { purpose: "market research" }),
  ]);

  console.log();
  for (const session of sts.sessions) {
    const policy = JSON.parse(session.policy ?? "{}") as { Statement?: { Action: string[]; Resource: string[] }[] };
    console.log(`  STS session ${session.roleSessionName} (${session.accessKeyId.slice(0, 8)}…, expires ${session.expiration.toISOString()})`);
    for (const statement of policy.Statement ?? []) console.log(`      may ${statement.Action.join(", ")} on ${statement.Resource.join(", ")}`);
  }
  const sent = bedrockEndpoint.requests;
  const owner = new Map(sts.sessions.map((s) => [s.accessKeyId, s.subject]));
  const ownKeys = records
    .filter((r) => r.decision === "allow")
    .every((r) => owner.get(sent.find((q) => JSON.stringify(q.body ?? "").includes(r.id))?.signature.accessKeyId ?? "") === r.workload?.id);
  const verified = sent.every((r) => r.signature.status === "valid");
  console.log(`\n  ${sent.length} requests reached Bedrock, each signed with a key STS issued to the calling workload: ${ownKeys && verified}`);
  console.log(`  credential pairs held after the tasks ended: ${credentialBroker.cachedPairs()} (dropped with their tasks)`);

  // Forged and standing credentials are refused.
  const { privateKey: attackerKey } = await generateKeyPair("ES256");
  const forged = await new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "idp-1" }).setIssuer(IDP).setSubject("spiffe://acme.example/agents/invoice").setAudience("sts.amazonaws.com").setExpirationTime("10m").sign(attackerKey);
  try {
    await verifier.verify(forged);
  } catch (error) {
    if (!(error instanceof TokenVerificationError)) throw error;
    console.log(`  ✘ a token signed with another key: refused (${error.reason}) [${error.code}]`);
  }
  const standing = createGovernance({
    environment: "production",
    policies: [...policiesFromDirectory(policyDir), ...policiesFromText(IDENTITY_POLICIES, "identity.cedar")],
    tools: INVOICE_TOOLS,
  });
  const withKey = new GovernedBedrockRuntimeClient({ endpoint: bedrockEndpoint.url, region: bedrockEndpoint.region, credentials: { accessKeyId: "AKIASTANDINGKEY00001", secretAccessKey: "a-long-term-secret" }, governance: standing });
  try {
    await runTask(invoice, "reconcile-invoices", () => withKey.send(new ConverseCommand({ modelId: HAIKU_PROFILE, messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 64 } })), { purpose: "reconcile invoices" });
  } catch (error) {
    if (!(error instanceof AccessDeniedError)) throw error;
    console.log(`  ✘ the same call signed with a long-term access key: denied by ${error.decision.policies.join(", ")}`);
  }
  console.log();
  withKey.destroy();
  bedrock.destroy();
  await sts.close();
  await bedrockEndpoint.close();
}


if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.removeAllListeners("warning");
  await workloadCredentialsStory(new URL("./policies", import.meta.url).pathname);
}
