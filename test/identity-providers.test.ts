import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from "jose";
import { ConfigurationError, IdentityProviderError, TokenVerificationError } from "../src/errors.js";
import { authenticationOf, presentedTokenOf } from "../src/identity/authentication.js";
import { githubActionsIdentity, tokenFileIdentity, tokenIdentity } from "../src/identity/identity-providers.js";
import { createTokenVerifier, type TokenVerifier, type TokenVerifierOptions } from "../src/identity/token-verifier.js";

const GITHUB = "https://token.actions.githubusercontent.com";
const now = () => Math.floor(Date.now() / 1000);

let privateKey: CryptoKey;
let verifierOptions: TokenVerifierOptions;
let verifier: TokenVerifier;
let verifications = 0;
let tmp: string;

function sign(claims: Partial<JWTPayload> & Record<string, unknown>, issuer = GITHUB, audience = "bedrock-warden"): Promise<string> {
  return new SignJWT({ iss: issuer, aud: audience, iat: now(), exp: now() + 300, ...claims })
    .setProtectedHeader({ alg: "ES256", kid: "gh-1" })
    .sign(privateKey);
}

before(async () => {
  const pair = await generateKeyPair("ES256", { extractable: true });
  privateKey = pair.privateKey;
  verifierOptions = {
    issuer: GITHUB,
    audience: "bedrock-warden",
    keys: { jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: "gh-1", alg: "ES256" }] } },
    claims: (c) => ({ groups: [`repo:${String(c.repository)}`] }),
  };
  const real = createTokenVerifier(verifierOptions);
  // Counts real verifications, to see the providers' cache at work.
  verifier = {
    verify: (token) => {
      verifications++;
      return real.verify(token);
    },
  };
  tmp = await mkdtemp(join(tmpdir(), "warden-providers-"));
});

after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("tokenFileIdentity", () => {
  it("re-reads the file at every identity(): a rotated token is picked up; an unchanged one is not re-verified", async () => {
    const path = join(tmp, "token");
    await writeFile(path, `${await sign({ sub: "system:serviceaccount:billing:invoice-agent", repository: "acme/a" })}\n`);
    const provider = tokenFileIdentity({ path, verifier });
    assert.equal(provider.name, "token-file");

    const before = verifications;
    const first = await provider.identity();
    assert.equal(first.id, "system:serviceaccount:billing:invoice-agent");
    assert.equal(authenticationOf(first)?.method, "oidc");
    assert.equal(await provider.identity(), first, "the same token gives the same identity");
    assert.equal(verifications - before, 1, "verified once");

    // Kubelet-style rotation: write a new file and rename it over the old one.
    const rotated = await sign({ sub: "system:serviceaccount:billing:invoice-agent-v2", repository: "acme/a" });
    await writeFile(`${path}.tmp`, rotated);
    await rename(`${path}.tmp`, path);
    const second = await provider.identity();
    assert.equal(second.id, "system:serviceaccount:billing:invoice-agent-v2");
    assert.equal(presentedTokenOf(second), rotated, "the token is presented without the trailing newline");
  });

  it("an unreadable, empty or invalid token file: a clear error", async () => {
    const missing = tokenFileIdentity({ path: join(tmp, "nope"), verifier });
    await assert.rejects(missing.identity(), (e: unknown) => e instanceof IdentityProviderError && e.provider === "token-file" && /nope \(ENOENT\)/.test(e.message));

    const empty = join(tmp, "empty");
    await writeFile(empty, "\n");
    await assert.rejects(tokenFileIdentity({ path: empty, verifier }).identity(), /is empty/);

    const expired = join(tmp, "expired");
    await writeFile(expired, await sign({ sub: "x", iat: now() - 7200, exp: now() - 3600 }));
    await assert.rejects(tokenFileIdentity({ path: expired, verifier }).identity(), (e: unknown) => e instanceof TokenVerificationError && e.reason === "expired");

    assert.throws(() => tokenFileIdentity({ path: "", verifier }), ConfigurationError);
    assert.throws(() => tokenFileIdentity({ path: "/x" } as never), /verifier: is required/);
  });

  it("an identity is not served from the cache after its token expired", async () => {
    const path = join(tmp, "short");
    const exp = now() + 2;
    await writeFile(path, await sign({ sub: "short-lived", iat: now() - 60, exp }));
    const provider = tokenFileIdentity({ path, verifier: createTokenVerifier({ ...verifierOptions, clockToleranceSeconds: 0 }) });
    await provider.identity();
    await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 100));
    await assert.rejects(provider.identity(), (e: unknown) => e instanceof TokenVerificationError && e.reason === "expired");
  });
});

describe("githubActionsIdentity", () => {
  interface Seen {
    authorization: string | undefined;
    audience: string | null;
    apiVersion: string | null;
  }

  async function tokenEndpoint(answer: (req: IncomingMessage) => Promise<{ status: number; body: string }>) {
    const seen: Seen[] = [];
    const server = createServer(async (req, res) => {
      const url = new URL(req.url!, "http://127.0.0.1");
      seen.push({ authorization: req.headers.authorization, audience: url.searchParams.get("audience"), apiVersion: url.searchParams.get("api-version") });
      const { status, body } = await answer(req);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
      seen,
      env: { ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${port}/_apis/token?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: "request-token-secret" },
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }

  it("requests the job's token with the bearer header and the audience, verifies it, and reuses it while fresh", async () => {
    const endpoint = await tokenEndpoint(async () => ({
      status: 200,
      body: JSON.stringify({ value: await sign({ sub: "repo:acme/invoices:ref:refs/heads/main", repository: "acme/invoices" }), count: 1 }),
    }));
    try {
      const provider = githubActionsIdentity({ verifier, audience: "bedrock-warden", env: endpoint.env });
      assert.equal(provider.name, "github-actions");
      const [a, b] = await Promise.all([provider.identity(), provider.identity()]);
      assert.equal(a, b, "concurrent calls share one request");
      assert.equal(a.id, "repo:acme/invoices:ref:refs/heads/main");
      assert.deepEqual(a.groups, ["repo:acme/invoices"]);
      assert.equal(authenticationOf(a)?.issuer, GITHUB);
      assert.equal(await provider.identity(), a);
      assert.equal(endpoint.seen.length, 1);
      assert.deepEqual(endpoint.seen[0], { authorization: "bearer request-token-secret", audience: "bedrock-warden", apiVersion: "2.0" });
    } finally {
      await endpoint.close();
    }
  });

  it("requests a new token when the last one is about to expire", async () => {
    const endpoint = await tokenEndpoint(async () => ({ status: 200, body: JSON.stringify({ value: await sign({ sub: "repo:acme/x", exp: now() + 30 }) }) }));
    try {
      const provider = githubActionsIdentity({ verifier, env: endpoint.env });
      await provider.identity();
      await provider.identity();
      assert.equal(endpoint.seen.length, 2, "30 s left is within the refresh margin");
      assert.equal(endpoint.seen[0]!.audience, null, "no audience parameter unless asked");
    } finally {
      await endpoint.close();
    }
  });

  it("uses an injected fetch", async () => {
    const calls: string[] = [];
    const token = await sign({ sub: "repo:acme/y" });
    const provider = githubActionsIdentity({
      verifier,
      audience: "bedrock-warden",
      env: { ACTIONS_ID_TOKEN_REQUEST_URL: "https://pipelines.actions.githubusercontent.com/abc/_apis/token?api-version=2.0", ACTIONS_ID_TOKEN_REQUEST_TOKEN: "t" },
      fetch: (async (input: string | URL) => {
        calls.push(String(input));
        return new Response(JSON.stringify({ value: token }), { status: 200 });
      }) as typeof fetch,
    });
    assert.equal((await provider.identity()).id, "repo:acme/y");
    assert.deepEqual(calls, ["https://pipelines.actions.githubusercontent.com/abc/_apis/token?api-version=2.0&audience=bedrock-warden"]);
  });

  it("missing environment variables: a clear error naming the fix", async () => {
    const noUrl = githubActionsIdentity({ verifier, env: {} });
    await assert.rejects(
      noUrl.identity(),
      (e: unknown) =>
        e instanceof IdentityProviderError &&
        e.code === "ERR_IDENTITY_PROVIDER" &&
        /ACTIONS_ID_TOKEN_REQUEST_URL is not set/.test(e.message) &&
        /add `permissions: id-token: write` to the job/.test(e.message),
    );
    const noToken = githubActionsIdentity({ verifier, env: { ACTIONS_ID_TOKEN_REQUEST_URL: "https://x.test/token" } });
    await assert.rejects(noToken.identity(), /ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set.*permissions: id-token: write/);
    const plainHttp = githubActionsIdentity({ verifier, env: { ACTIONS_ID_TOKEN_REQUEST_URL: "http://x.test/token", ACTIONS_ID_TOKEN_REQUEST_TOKEN: "t" } });
    await assert.rejects(plainHttp.identity(), /must be an https: URL/);
  });

  it("an endpoint that refuses, answers garbage or a forged token: clear errors, no identity", async () => {
    let answer = { status: 403, body: "{}" };
    const endpoint = await tokenEndpoint(async () => answer);
    try {
      const provider = githubActionsIdentity({ verifier, env: endpoint.env });
      await assert.rejects(provider.identity(), (e: unknown) => e instanceof IdentityProviderError && /HTTP 403/.test(e.message) && !e.message.includes("request-token-secret"));
      answer = { status: 200, body: "<html>" };
      await assert.rejects(provider.identity(), /other than JSON \{ value \}/);
      answer = { status: 200, body: JSON.stringify({ count: 0 }) };
      await assert.rejects(provider.identity(), /without a token/);
      answer = { status: 200, body: JSON.stringify({ value: await sign({ sub: "repo:evil/x" }, "https://evil.test") }) };
      await assert.rejects(provider.identity(), (e: unknown) => e instanceof TokenVerificationError && e.reason === "wrong-issuer");
    } finally {
      await endpoint.close();
    }
    const closed = githubActionsIdentity({ verifier, env: endpoint.env });
    await assert.rejects(closed.identity(), (e: unknown) => e instanceof IdentityProviderError && /could not be reached \((ECONNREFUSED|UND_ERR_SOCKET)\)/.test(e.message));
  });
});

describe("tokenIdentity", () => {
  it("calls the source at every identity(), verifies each token once", async () => {
    const tokens = [await sign({ sub: "svc-a" }), await sign({ sub: "svc-b" })];
    let calls = 0;
    const provider = tokenIdentity({ name: "vault", token: async () => tokens[Math.min(calls++, 3) < 2 ? 0 : 1]!, verifier });
    assert.equal(provider.name, "vault");
    const before = verifications;
    assert.equal((await provider.identity()).id, "svc-a");
    assert.equal((await provider.identity()).id, "svc-a");
    assert.equal((await provider.identity()).id, "svc-b");
    assert.equal(calls, 3);
    assert.equal(verifications - before, 2);
    assert.equal(tokenIdentity({ token: () => tokens[0]!, verifier }).name, "token");
  });

  it("a failing or empty source: an IdentityProviderError that does not repeat the source's message", async () => {
    const failing = tokenIdentity({
      token: () => {
        throw new Error("secret-ish detail");
      },
      verifier,
    });
    await assert.rejects(failing.identity(), (e: unknown) => e instanceof IdentityProviderError && !e.message.includes("secret-ish") && (e.cause as Error).message === "secret-ish detail");
    await assert.rejects(tokenIdentity({ token: () => "  ", verifier }).identity(), /returned an empty string/);
    await assert.rejects(tokenIdentity({ token: () => 42 as unknown as string, verifier }).identity(), /returned number/);
    assert.throws(() => tokenIdentity({ token: "abc" as never, verifier }), /token: is required: a function/);
    assert.throws(() => tokenIdentity({ token: () => "x", verifier, name: "" }), /name: must not be empty/);
  });
});
