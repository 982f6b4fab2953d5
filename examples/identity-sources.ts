/**
 * Where a verified workload identity comes from: the three common sources, each configured as in
 * production, each followed by one governed Converse call under policies that read how the caller
 * was proven.
 *
 *   1. A CI pipeline's OIDC token (GitHub Actions): `githubActionsIdentity`
 *   2. A Kubernetes service-account token (a projected volume the kubelet rotates): `tokenFileIdentity`
 *   3. A SPIFFE JWT-SVID (the file the SPIFFE helper writes): `tokenFileIdentity` with a `kind: "spiffe"`
 *      verifier; and an RFC 8693 delegated token (a sub-agent acting for an orchestrator acting for a person)
 *
 *   npx tsx examples/identity-sources.ts
 *
 * Everything runs offline. One local HTTP server on 127.0.0.1 stands in for the issuers: it serves
 * each issuer's JWKS and plays GitHub's token endpoint. The verifiers keep the production issuers
 * and audiences; only their key URLs are rewritten by `local(...)` to the stand-in (the verifier
 * accepts http: for loopback hosts only). In production, write the URL itself. The Bedrock calls go
 * to the embedded local endpoint (`bedrock-warden/local-endpoint`).
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JSONWebKeySet, type JWTPayload } from "jose";
import {
  AccessDeniedError,
  authenticationOf,
  createGovernance,
  createTokenVerifier,
  githubActionsIdentity,
  GovernedBedrockRuntimeClient,
  policiesFromText,
  runTask,
  tokenFileIdentity,
  tokenIdentity,
  TokenVerificationError,
  type DecisionRecord,
  type IdentityProvider,
  type WorkloadIdentity,
} from "bedrock-warden";
import { startLocalBedrock } from "bedrock-warden/local-endpoint";

process.removeAllListeners("warning"); // the SDK's notice about Node 20 support is not part of the example

const MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
/** The audience every token is requested for: this service, so a token minted for another cannot be replayed here. */
const AUDIENCE = "bedrock-warden";

// The policies read how the principal was proven (see schema/bedrock-warden.cedarschema):
// context.authentication.{verified, method, issuer}, context.delegation.depth, principal.trustDomain.
const POLICIES = `
@id("verified-identities-only")
@reason("a workload proves who it is with a token; an identity merely declared in code is not trusted")
forbid (principal, action, resource) unless { context.authentication.verified };

@id("ci-main-branch")
@reason("the acme/invoices pipeline may call models from its main branch")
permit (principal in Bedrock::Group::"repo:acme/invoices", action == Bedrock::Action::"Converse", resource)
when { context.authentication.method == "oidc" && principal.hasTag("ref") && principal.getTag("ref") == "refs/heads/main" };

@id("billing-namespace")
@reason("workloads of the billing namespace may use Claude 3.5 Haiku")
permit (principal in Bedrock::Group::"k8s:billing", action == Bedrock::Action::"Converse", resource in Bedrock::Model::"anthropic.claude-3-5-haiku-20241022-v1:0")
when { context.authentication.method == "oidc" };

@id("acme-agents")
@reason("agents of the acme.example trust domain may converse")
permit (principal, action == Bedrock::Action::"Converse", resource)
when { context.authentication.method == "spiffe-jwt-svid" && principal has trustDomain && principal.trustDomain == "acme.example" };

@id("agents-acting-for-people")
@reason("an agent may converse on a person's behalf with a token exchanged for that person's request")
permit (principal, action == Bedrock::Action::"Converse", resource)
when { context.authentication has issuer && context.authentication.issuer == "https://sts.acme.example" && context.delegation.depth > 0 };

@id("at-most-two-hops")
@reason("a person's request may pass through at most two agents")
forbid (principal, action, resource) when { context.delegation.depth > 2 };
`;

// ── The stand-ins: the issuers' key URLs and GitHub's token endpoint, on 127.0.0.1 ──
const idp = await startIssuerStandIns();
const { local } = idp;
const github = await idp.issuer("https://token.actions.githubusercontent.com", "https://token.actions.githubusercontent.com/.well-known/jwks", "RS256");
const eks = await idp.issuer("https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE", "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE/keys", "RS256");
const spire = await idp.issuer("https://oidc-discovery.acme.example", "https://oidc-discovery.acme.example/keys", "ES256");
const tokenExchange = await idp.issuer("https://sts.acme.example", "https://sts.acme.example/.well-known/jwks.json", "ES256");
const dir = await mkdtemp(join(tmpdir(), "bedrock-warden-identity-"));

const bedrockServer = await startLocalBedrock({ reply: () => ({ text: "Done." }) });
const records: DecisionRecord[] = [];
const governance = createGovernance({
  environment: "production",
  policies: policiesFromText(POLICIES, "identity-sources.cedar"),
  onDecision: (record) => records.push(record),
});
const bedrock = new GovernedBedrockRuntimeClient({ endpoint: bedrockServer.url, region: bedrockServer.region, credentials: bedrockServer.credentials, governance });

console.log("bedrock-warden — three sources of a verified workload identity");
console.log(`issuers stand in at ${idp.url}; Bedrock calls go to the embedded endpoint at ${bedrockServer.url}\n`);

try {
  // ── 1. A CI pipeline's OIDC token: GitHub Actions ──────────────────────────────────────────
  // The workflow's job needs `permissions: id-token: write`. The runner then sets
  // ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN, and the provider asks that
  // endpoint for a token with `aud: "bedrock-warden"` (use "sts.amazonaws.com" if the same token is
  // also exchanged with STS AssumeRoleWithWebIdentity). The token's `sub` is
  // "repo:<owner>/<repo>:ref:<ref>" (or ":environment:<name>" for jobs bound to an environment).
  console.log("1. GitHub Actions OIDC token (githubActionsIdentity)");
  const githubJob = githubActionsIdentity({
    audience: AUDIENCE,
    verifier: createTokenVerifier({
      issuer: "https://token.actions.githubusercontent.com",
      audience: AUDIENCE,
      keys: { url: local("https://token.actions.githubusercontent.com/.well-known/jwks") },
      claims: (c) => ({
        groups: [`repo:${claim(c, "repository")}`],
        attributes: { ref: claim(c, "ref"), workflow: claim(c, "job_workflow_ref") },
      }),
    }),
    // Offline only: in a real job leave `env` out, and the provider reads the runner's variables from process.env.
    env: { ACTIONS_ID_TOKEN_REQUEST_URL: `${idp.url}/_apis/idtoken?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: idp.githubRequestToken },
  });
  // The stand-in job: a nightly evaluation workflow of acme/invoices, on main.
  idp.onGithubTokenRequest = (audience) =>
    github.mint(
      {
        sub: "repo:acme/invoices:ref:refs/heads/main",
        aud: audience,
        repository: "acme/invoices",
        repository_owner: "acme",
        ref: "refs/heads/main",
        ref_type: "branch",
        sha: "9f3c1e7a2b4d6f8091a3c5e7f9b1d3f5a7c9e1b3",
        workflow: "nightly-eval",
        job_workflow_ref: "acme/invoices/.github/workflows/nightly-eval.yml@refs/heads/main",
        event_name: "schedule",
        run_id: "9876543210",
        runner_environment: "github-hosted",
      },
      { lifetimeSeconds: 300 },
    );
  show(await githubJob.identity());
  await converse(githubJob, "nightly-eval");

  // ── 2. A Kubernetes service-account token ──────────────────────────────────────────────────
  // Pod spec: a projected volume, mounted at /var/run/secrets/tokens:
  //   volumes:
  //   - name: bedrock-token
  //     projected:
  //       sources:
  //       - serviceAccountToken: { audience: bedrock-warden, expirationSeconds: 3600, path: bedrock-warden }
  // The issuer is the cluster's OIDC issuer (EKS: https://oidc.eks.<region>.amazonaws.com/id/<id>,
  // keys at <issuer>/keys; other clusters: the API server's --service-account-issuer, keys at
  // /openid/v1/jwks). The `sub` is "system:serviceaccount:<namespace>:<name>".
  console.log("\n2. Kubernetes service-account token (tokenFileIdentity)");
  const tokenPath = join(dir, "bedrock-warden"); // production: "/var/run/secrets/tokens/bedrock-warden"
  const pod = tokenFileIdentity({
    path: tokenPath,
    verifier: createTokenVerifier({
      issuer: "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE",
      audience: AUDIENCE,
      keys: { url: local("https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE/keys") },
      maxTokenLifetimeSeconds: 24 * 3600, // projected tokens live hours (expirationSeconds): refuse anything longer-lived
      claims: (c) => {
        const k8s = c["kubernetes.io"] as { namespace?: string; serviceaccount?: { name?: string } } | undefined;
        if (!k8s?.namespace || !k8s.serviceaccount?.name) throw new Error("not a projected service-account token");
        return { groups: [`k8s:${k8s.namespace}`], attributes: { namespace: k8s.namespace, serviceAccount: k8s.serviceaccount.name } };
      },
    }),
  });
  // The stand-in kubelet: the pod's token was issued 48 minutes ago; it expires in 12.
  const serviceAccountToken = (issuedSecondsAgo: number) =>
    eks.mint(
      {
        sub: "system:serviceaccount:billing:invoice-agent",
        aud: [AUDIENCE],
        "kubernetes.io": {
          namespace: "billing",
          serviceaccount: { name: "invoice-agent", uid: "5f1c2a9e-3b7d-4c21-9e0a-6d8f4b2c1a07" },
          pod: { name: "invoice-agent-7d9f8c6b5-x2k4q", uid: "b3e8d1f0-9a2c-4e7b-8d5f-1c3a6e9b0d24" },
        },
      },
      { lifetimeSeconds: 3600, issuedSecondsAgo },
    );
  await writeFile(tokenPath, await serviceAccountToken(48 * 60));
  show(await pod.identity());
  await converse(pod, "triage-invoices");
  // The kubelet refreshes the file when 80% of the lifetime has passed; the file is re-read at
  // every task, so the next task runs on the fresh token.
  const before = authenticationOf(await pod.identity())!.expiresAt;
  await writeFile(tokenPath, await serviceAccountToken(0));
  const rotated = await pod.identity();
  console.log(`  ↻ the kubelet rotated the token: the next identity() verifies the new one`);
  console.log(`      ${rotated.id}: expiry ${before.toISOString()} → ${authenticationOf(rotated)!.expiresAt.toISOString()}`);

  // ── 3. A SPIFFE JWT-SVID ───────────────────────────────────────────────────────────────────
  // The SPIFFE helper (spiffe-helper) fetches a JWT-SVID from the SPIRE agent's Workload API and
  // writes it to a file, refreshing it before it expires:
  //   agent_address = "/run/spire/sockets/agent.sock"
  //   cert_dir      = "/run/spiffe"
  //   jwt_svids     = [{ jwt_audience = "bedrock-warden", jwt_svid_file_name = "jwt_svid.token" }]
  // Keys: the SPIRE OIDC Discovery Provider's /keys. Its issuer is the `jwt_issuer` of the SPIRE
  // server, which must be set: JWT-SVIDs carry no `iss` otherwise, and the verifier requires one.
  console.log("\n3. SPIFFE JWT-SVID (tokenFileIdentity with a kind: \"spiffe\" verifier)");
  const svidPath = join(dir, "jwt_svid.token"); // production: "/run/spiffe/jwt_svid.token"
  const agent = tokenFileIdentity({
    path: svidPath,
    verifier: createTokenVerifier({
      kind: "spiffe",
      trustDomains: ["acme.example"],
      issuer: "https://oidc-discovery.acme.example",
      audience: AUDIENCE,
      keys: { url: local("https://oidc-discovery.acme.example/keys") },
    }),
  });
  // The stand-in SPIRE: an SVID for the invoice agent, with SPIRE's default 5-minute lifetime.
  await writeFile(svidPath, await spire.mint({ sub: "spiffe://acme.example/agents/invoice", aud: [AUDIENCE] }, { lifetimeSeconds: 300 }));
  show(await agent.identity());
  await converse(agent, "reconcile-invoices");

  // An RFC 8693 delegated token. Alice asks the orchestrator, which hands a part of the work to
  // the invoice agent: at each hop the token exchange service (an OAuth 2.0 token exchange,
  // grant_type=urn:ietf:params:oauth:grant-type:token-exchange) issues a token whose `sub` is still
  // Alice and whose `act` names the actors, the current one outermost. Its subject is a person, not
  // a SPIFFE ID, so it is verified as an OIDC token; the identity is the current actor.
  console.log("\n   RFC 8693 delegated token (tokenIdentity: the token the orchestrator handed over)");
  const exchangeVerifier = createTokenVerifier({
    issuer: "https://sts.acme.example",
    audience: AUDIENCE,
    keys: { url: local("https://sts.acme.example/.well-known/jwks.json") },
    acceptDelegation: true, // this issuer performs token exchange and sets `act` itself
  });
  const delegated = (act: JWTPayload) => tokenExchange.mint({ sub: "alice@acme.example", aud: AUDIENCE, act }, { lifetimeSeconds: 600 });
  const onBehalfOfAlice = await delegated({ sub: "spiffe://acme.example/agents/invoice", act: { sub: "spiffe://acme.example/agents/orchestrator" } });
  const subAgent = tokenIdentity({ name: "token-exchange", token: () => onBehalfOfAlice, verifier: exchangeVerifier });
  const subAgentIdentity = await subAgent.identity();
  show(subAgentIdentity);
  console.log(`      authenticationOf(identity).delegation = ${JSON.stringify(authenticationOf(subAgentIdentity)?.delegation)}`);
  await converse(subAgent, "check-alice-invoice");
  // The invoice agent hands the work on once more: three hops are one too many.
  const thirdHop = await delegated({
    sub: "spiffe://acme.example/agents/payments",
    act: { sub: "spiffe://acme.example/agents/invoice", act: { sub: "spiffe://acme.example/agents/orchestrator" } },
  });
  await converse(tokenIdentity({ name: "token-exchange", token: () => thirdHop, verifier: exchangeVerifier }), "check-alice-invoice", "a third hop (delegation depth 3)");

  // ── What is refused ────────────────────────────────────────────────────────────────────────
  console.log("\nRefused:");
  // The same SPIFFE ID, merely declared in code: not proven, so not trusted.
  await converse({ id: "spiffe://acme.example/agents/invoice" }, "reconcile-invoices", "declared in code, not proven");
  // A forged SVID in the helper's file: the right claims and key id, signed with another key.
  await writeFile(svidPath, await spire.forge({ sub: "spiffe://acme.example/agents/invoice", aud: [AUDIENCE] }, { lifetimeSeconds: 300 }));
  const requestsBefore = bedrockServer.requests.length;
  try {
    await runTask(agent, "reconcile-invoices", () => bedrock.send(new ConverseCommand(request())));
    console.log("  ! the forged token was accepted");
  } catch (error) {
    if (!(error instanceof TokenVerificationError)) throw error;
    console.log(`  ✘ REFUSED a forged JWT-SVID: TokenVerificationError reason "${error.reason}" [${error.code}]`);
    console.log(`           ${error.message}`);
    console.log(`           the task never started: ${bedrockServer.requests.length - requestsBefore} requests reached Bedrock`);
  }

  const allowed = records.filter((r) => r.decision === "allow").length;
  console.log(`\n${records.length} decisions: ${allowed} allowed, ${records.length - allowed} denied; the endpoint received ${bedrockServer.requests.length} requests (only the allowed calls).`);
} finally {
  bedrock.destroy();
  await bedrockServer.close();
  await idp.close();
  await rm(dir, { recursive: true, force: true });
}

/** Prints a verified identity: who, how it was proven, until when, for whom. */
function show(identity: WorkloadIdentity): void {
  const auth = authenticationOf(identity);
  if (!auth) throw new Error(`${identity.id} is not authenticated`);
  const attributes = Object.entries(identity.attributes ?? {}).map(([k, v]) => `${k}=${v}`);
  const { delegation } = auth;
  console.log(`  ✔ verified ${identity.id}`);
  console.log(`      groups      ${identity.groups?.join(", ") ?? "(none)"}${attributes.length ? `; attributes ${attributes.join(", ")}` : ""}`);
  console.log(`      method      ${auth.method}, issuer ${auth.issuer}${auth.spiffe ? ` (trust domain ${auth.spiffe.trustDomain}, path ${auth.spiffe.path})` : ""}`);
  console.log(`      expires     ${auth.expiresAt.toISOString()} (in ${Math.round((auth.expiresAt.getTime() - Date.now()) / 1000)} s)`);
  console.log(
    `      delegation  ${delegation.depth === 0 ? "none: it acts for itself" : `depth ${delegation.depth}: ${delegation.actors.map((a) => a.subject).join(" → ")}, on behalf of ${delegation.onBehalfOf}`}`,
  );
}

/** One governed Converse call as one task of the identity the provider verifies; prints the decision. */
async function converse(who: IdentityProvider | WorkloadIdentity, task: string, note?: string): Promise<void> {
  try {
    await runTask(who, task, () => bedrock.send(new ConverseCommand(request())));
    const record = records.at(-1);
    console.log(`  ✔ ALLOW  Converse ${MODEL} as ${record?.workload?.id} (task ${task})\n           by ${record?.policies.join(", ")}: ${record?.reasons.join("; ")}`);
  } catch (error) {
    if (!(error instanceof AccessDeniedError)) throw error;
    const { decision } = error;
    const by = decision.policies.length ? `by ${decision.policies.join(", ")}` : "by default";
    console.log(`  ✘ DENY   Converse ${MODEL} as ${records.at(-1)?.workload?.id}${note ? `, ${note}` : ""} (task ${task})\n           ${by}: ${decision.reasons.join("; ")}`);
  }
}

function request() {
  return { modelId: MODEL, messages: [{ role: "user" as const, content: [{ text: "Check invoice INV-4711 against its purchase order." }] }], inferenceConfig: { maxTokens: 256 } };
}

/** A string claim the mapping needs; a token without it is refused (the verifier reports "malformed"). */
function claim(claims: JWTPayload, name: string): string {
  const value = claims[name];
  if (typeof value !== "string" || value === "") throw new Error(`the token has no \`${name}\` claim`);
  return value;
}

// ── Stand-ins for the issuers (offline only) ───────────────────────────────────────────────────

interface StandInIssuer {
  readonly issuer: string;
  /** Signs a token of this issuer, `issuedSecondsAgo` ago (default 0), valid for `lifetimeSeconds`. */
  mint(claims: JWTPayload, times: { lifetimeSeconds: number; issuedSecondsAgo?: number }): Promise<string>;
  /** The same token, under this issuer's key id, signed with a key that is not the issuer's. */
  forge(claims: JWTPayload, times: { lifetimeSeconds: number; issuedSecondsAgo?: number }): Promise<string>;
}

/**
 * One HTTP server on 127.0.0.1 serving each issuer's JWKS at `local(<production JWKS URL>)` and
 * GitHub's token endpoint at /_apis/idtoken (bearer `githubRequestToken`, `?audience=`).
 */
async function startIssuerStandIns() {
  const keySets = new Map<string, JSONWebKeySet>(); // by local path: "/<host><path>"
  const githubRequestToken = randomUUID();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const json = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (url.pathname === "/_apis/idtoken") {
      if (req.headers.authorization?.toLowerCase() !== `bearer ${githubRequestToken}`) return json(401, { message: "bad request token" });
      const audience = url.searchParams.get("audience") ?? "https://github.com/acme";
      stand.onGithubTokenRequest(audience).then((value) => json(200, { value }), () => json(500, {}));
      return;
    }
    const keys = keySets.get(url.pathname);
    return keys ? json(200, keys) : json(404, { message: "not found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const sign = (key: CryptoKey, alg: string, kid: string, issuer: string) => (claims: JWTPayload, times: { lifetimeSeconds: number; issuedSecondsAgo?: number }) => {
    const issuedAt = Math.floor(Date.now() / 1000) - (times.issuedSecondsAgo ?? 0);
    return new SignJWT(claims)
      .setProtectedHeader({ alg, kid, typ: "JWT" })
      .setIssuer(issuer)
      .setIssuedAt(issuedAt)
      .setNotBefore(issuedAt)
      .setExpirationTime(issuedAt + times.lifetimeSeconds)
      .setJti(randomUUID())
      .sign(key);
  };

  const stand = {
    url: base,
    githubRequestToken,
    /** What the GitHub token endpoint answers: set by the example to the claims of its stand-in job. */
    onGithubTokenRequest: async (_audience: string): Promise<string> => {
      throw new Error("no GitHub job configured");
    },
    /** The stand-in for a production URL: the same host and path, under this server. */
    local(productionUrl: string): string {
      const { host, pathname } = new URL(productionUrl);
      return `${base}/${host}${pathname}`;
    },
    async issuer(issuer: string, jwksUrl: string, alg: "RS256" | "ES256"): Promise<StandInIssuer> {
      const { privateKey, publicKey } = await generateKeyPair(alg);
      const kid = `${new URL(issuer).host}-1`;
      keySets.set(new URL(stand.local(jwksUrl)).pathname, { keys: [{ ...(await exportJWK(publicKey)), kid, alg, use: "sig" }] });
      const { privateKey: attackerKey } = await generateKeyPair(alg);
      return { issuer, mint: sign(privateKey, alg, kid, issuer), forge: sign(attackerKey, alg, kid, issuer) };
    },
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return stand;
}
