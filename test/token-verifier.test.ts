import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import {
  base64url,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
} from "jose";
import { ConfigurationError, TokenVerificationError, WardenError } from "../src/errors.js";
import { attestIdentity, authenticationOf, presentedTokenOf, proofLifetime, type Authentication } from "../src/identity/authentication.js";
import { currentScope, runAs } from "../src/identity/call-scope.js";
import { delegationChainOf } from "../src/identity/delegation.js";
import { createTokenVerifier, parseSpiffeId, type TokenVerifierOptions } from "../src/identity/token-verifier.js";
import { workloadIdentity, type WorkloadIdentity } from "../src/identity/workload-identity.js";

const ISSUER = "https://issuer.acme.test";
const AUDIENCE = "bedrock-warden";
const now = () => Math.floor(Date.now() / 1000);

interface SigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly jwk: JWK;
}

async function signingKey(kid: string, alg = "RS256"): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicKey, jwk };
}

/** Claims of a valid token, with `overrides` applied (an `undefined` value removes the claim). */
function claims(overrides: Record<string, unknown> = {}): JWTPayload {
  const base: Record<string, unknown> = { iss: ISSUER, sub: "repo:acme/invoices:ref:refs/heads/main", aud: AUDIENCE, iat: now(), exp: now() + 600 };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base as JWTPayload;
}

async function sign(payload: JWTPayload, key: SigningKey, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...header }).sign(key.privateKey);
}

function jwksOf(...keys: SigningKey[]): JSONWebKeySet {
  return { keys: keys.map((k) => k.jwk) };
}

/** Asserts `promise` rejects with a TokenVerificationError of `reason`, and returns it. */
async function refused(promise: Promise<unknown>, reason: string, message?: RegExp): Promise<TokenVerificationError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof TokenVerificationError, `expected a TokenVerificationError, got ${inspect(error)}`);
    assert.ok(error instanceof WardenError);
    assert.equal(error.code, "ERR_TOKEN_INVALID");
    assert.equal(error.reason, reason, `reason of: ${error.message}`);
    assert.match(error.message, /^Token refused: /);
    if (message) assert.match(error.message, message);
    return error;
  }
  assert.fail(`expected a refusal (${reason}), but the token was accepted`);
}

/** Every string a token is made of that could identify or replay it. */
function tokenFragments(token: string): string[] {
  return [token, ...token.split(".").filter((part) => part.length >= 8)];
}

function assertNoTokenIn(text: string, token: string, where: string): void {
  for (const fragment of tokenFragments(token)) {
    assert.ok(!text.includes(fragment), `${where} contains (part of) the token`);
  }
}

interface JwksServer {
  readonly url: string;
  readonly fetches: number;
  jwks: unknown;
  status: number;
  hang: boolean;
  close(): Promise<void>;
}

async function jwksServer(initial: unknown): Promise<JwksServer> {
  let fetches = 0;
  const state = { jwks: initial, status: 200, hang: false };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    fetches++;
    if (state.hang) return; // never answers: the client's timeout must end the wait
    res.writeHead(state.status, { "content-type": "application/json" });
    res.end(typeof state.jwks === "string" ? state.jwks : JSON.stringify(state.jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get fetches() {
      return fetches;
    },
    get jwks() {
      return state.jwks;
    },
    set jwks(value) {
      state.jwks = value;
    },
    get status() {
      return state.status;
    },
    set status(value) {
      state.status = value;
    },
    get hang() {
      return state.hang;
    },
    set hang(value) {
      state.hang = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let rsa: SigningKey;
let rsaImpostor: SigningKey; // same kid, different key: a forger's
let ec: SigningKey;
let ed: SigningKey;
let verifier: ReturnType<typeof createTokenVerifier>;
let tmp: string;

function verifierWith(options: Partial<TokenVerifierOptions> = {}) {
  return createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: { jwks: jwksOf(rsa, ec, ed) }, ...options });
}

before(async () => {
  rsa = await signingKey("rsa-1");
  rsaImpostor = await signingKey("rsa-1");
  ec = await signingKey("ec-1", "ES256");
  ed = await signingKey("ed-1", "EdDSA");
  verifier = verifierWith({ groupsClaim: "groups" });
  tmp = await mkdtemp(join(tmpdir(), "warden-token-verifier-"));
});

after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("createTokenVerifier: a valid OIDC token", () => {
  it("becomes a frozen, attested identity: id, groups, authentication", async () => {
    const iat = now();
    const token = await sign(claims({ iat, exp: iat + 600, groups: ["billing", "ci"] }), rsa);
    const identity = await verifier.verify(token);
    assert.equal(identity.id, "repo:acme/invoices:ref:refs/heads/main");
    assert.deepEqual(identity.groups, ["billing", "ci"]);
    assert.ok(Object.isFrozen(identity));

    const auth = authenticationOf(identity);
    assert.ok(auth);
    assert.equal(auth.method, "oidc");
    assert.equal(auth.issuer, ISSUER);
    assert.equal(auth.subject, identity.id);
    assert.deepEqual(auth.audience, [AUDIENCE]);
    assert.equal(auth.expiresAt.getTime(), (iat + 600) * 1000);
    assert.equal(auth.issuedAt?.getTime(), iat * 1000);
    assert.deepEqual(auth.delegation, { depth: 0, actors: [] });
    assert.equal(auth.algorithm, "RS256");
    assert.equal(auth.keyId, "rsa-1");
    assert.equal(auth.spiffe, undefined);
    assert.ok(Object.isFrozen(auth) && Object.isFrozen(auth.delegation) && Object.isFrozen(auth.audience));
    assert.equal(presentedTokenOf(identity), token);
  });

  it("accepts ES256 and EdDSA tokens, issuer and audience lists, and an exp within the clock tolerance", async () => {
    const multi = verifierWith({ issuer: ["https://other.test", ISSUER], audience: ["x", AUDIENCE] });
    assert.equal((await multi.verify(await sign(claims({ aud: ["y", AUDIENCE] }), ec))).id, "repo:acme/invoices:ref:refs/heads/main");
    assert.equal(authenticationOf(await multi.verify(await sign(claims(), ed)))?.algorithm, "EdDSA");
    await multi.verify(await sign(claims({ exp: now() - 10, iat: now() - 100 }), rsa)); // 10 s late, 30 s tolerated
  });

  it("maps extra claims with `claims`, validated like any identity", async () => {
    const mapped = verifierWith({
      groupsClaim: "groups",
      claims: (c) => ({ groups: [`repo:${String(c.repository)}`], owner: "team-billing", environment: String(c.environment), attributes: { ref: String(c.ref) } }),
    });
    const identity = await mapped.verify(
      await sign(claims({ groups: ["ci"], repository: "acme/invoices", environment: "production", ref: "refs/heads/main" }), rsa),
    );
    assert.deepEqual(identity.groups, ["ci", "repo:acme/invoices"]);
    assert.equal(identity.owner, "team-billing");
    assert.equal(identity.environment, "production");
    assert.deepEqual(identity.attributes, { ref: "refs/heads/main" });

    const bad = verifierWith({ claims: () => ({ attributes: { tier: 5 as unknown as string } }) });
    await refused(bad.verify(await sign(claims(), rsa)), "malformed", /attribute values must be strings/);
    const throwing = verifierWith({
      claims: () => {
        throw new Error("boom");
      },
    });
    await refused(throwing.verify(await sign(claims(), rsa)), "malformed", /`claims` option threw/);
    await refused(verifier.verify(await sign(claims({ groups: "billing" }), rsa)), "malformed", /`groups` claim/);
    await refused(verifier.verify(await sign(claims({ sub: "a\nb" }), rsa)), "malformed", /control characters/);
  });

  it("the identity is usable with runAs and stays authenticated there", async () => {
    const identity = await verifier.verify(await sign(claims(), rsa));
    runAs(identity, () => {
      const inScope = currentScope().identity;
      assert.equal(inScope, identity);
      assert.equal(authenticationOf(inScope!)?.issuer, ISSUER);
    });
  });
});

describe("forged and invalid tokens are refused, with the right reason", () => {
  const messages: { token: string; message: string }[] = [];
  const expectRefused = async (token: string, reason: string, message?: RegExp, v = verifier) => {
    const error = await refused(v.verify(token), reason, message);
    messages.push({ token, message: error.message });
    messages.push({ token, message: inspect(error) });
    return error;
  };

  it("a token signed by another key under the trusted kid: bad-signature", async () => {
    await expectRefused(await sign(claims(), rsaImpostor), "bad-signature", /signature does not verify/);
  });

  it("a token naming an unknown kid, or none with several keys: bad-signature", async () => {
    const stranger = await signingKey("stranger");
    await expectRefused(await sign(claims(), stranger), "bad-signature", /no key in the inline JWKS/);
    await expectRefused(await new SignJWT(claims()).setProtectedHeader({ alg: "RS256" }).sign(rsaImpostor.privateKey), "bad-signature");
  });

  it("an attacker's key embedded in the header (jwk) or linked (jku) is not used", async () => {
    const attacker = await signingKey("rsa-1");
    await expectRefused(await sign(claims(), attacker, { jwk: attacker.jwk }), "bad-signature");
    await expectRefused(await sign(claims(), attacker, { jku: "https://attacker.test/jwks" }), "bad-signature");
  });

  it("alg: none (unsigned), with or without a signature part: algorithm-not-allowed", async () => {
    const header = base64url.encode(JSON.stringify({ alg: "none", typ: "JWT" }));
    const payload = base64url.encode(JSON.stringify(claims()));
    await expectRefused(`${header}.${payload}.`, "algorithm-not-allowed", /"none" \(an unsigned token\)/);
    await expectRefused(`${header}.${payload}.${base64url.encode("sig")}`, "algorithm-not-allowed");
    const noneUpper = base64url.encode(JSON.stringify({ alg: "None" }));
    await expectRefused(`${noneUpper}.${payload}.`, "algorithm-not-allowed", /unknown or missing algorithm/);
    const noAlg = base64url.encode(JSON.stringify({ typ: "JWT" }));
    await expectRefused(`${noAlg}.${payload}.`, "algorithm-not-allowed");
  });

  it("HS256 signed with the RSA public key as the secret (key confusion): algorithm-not-allowed", async () => {
    const pem = await exportSPKI(rsa.publicKey);
    const withPem = await new SignJWT(claims()).setProtectedHeader({ alg: "HS256", kid: rsa.kid }).sign(new TextEncoder().encode(pem));
    await expectRefused(withPem, "algorithm-not-allowed", /"HS256" \(a shared-secret MAC/);
    const withJwk = await new SignJWT(claims()).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(JSON.stringify(rsa.jwk)));
    await expectRefused(withJwk, "algorithm-not-allowed");
  });

  it("an algorithm outside the configured allow-list: algorithm-not-allowed", async () => {
    const rsOnly = verifierWith({ algorithms: ["RS256"] });
    await expectRefused(await sign(claims(), ec), "algorithm-not-allowed", /allowed algorithms \(RS256\)/, rsOnly);
  });

  it("expired: names the expiry and the tolerance", async () => {
    const exp = now() - 3600;
    await expectRefused(
      await sign(claims({ iat: exp - 600, exp }), rsa),
      "expired",
      new RegExp(`expired at ${new Date(exp * 1000).toISOString().replace(/\./g, "\\.")} \\(clock tolerance 30 s\\); obtain a fresh token`),
    );
    const strict = verifierWith({ clockToleranceSeconds: 0 });
    await expectRefused(await sign(claims({ exp: now() - 5 }), rsa), "expired", /clock tolerance 0 s/, strict);
    // The refusal, printed whole (its cause included), carries none of the token's claims.
    const printed = await verifier.verify(await sign(claims({ exp, email: "alice.canary@acme.test", department: "payroll-canary" }), rsa)).then(
      () => "",
      (error: unknown) => inspect(error, { depth: 10 }),
    );
    assert.match(printed, /ERR_JWT_EXPIRED/);
    assert.doesNotMatch(printed, /canary/);
  });

  it("not yet valid (nbf), and issued in the future (iat): not-yet-valid", async () => {
    await expectRefused(await sign(claims({ nbf: now() + 3600 }), rsa), "not-yet-valid", /not valid before/);
    await expectRefused(await sign(claims({ iat: now() + 3600, exp: now() + 7200 }), rsa), "not-yet-valid", /issued at .* in the future/);
    await verifier.verify(await sign(claims({ nbf: now() + 10, iat: now() + 10 }), rsa)); // within tolerance
  });

  it("wrong audience, wrong issuer", async () => {
    await expectRefused(await sign(claims({ aud: "someone-else" }), rsa), "wrong-audience", /audience does not include "bedrock-warden"/);
    await expectRefused(await sign(claims({ aud: [] }), rsa), "wrong-audience");
    await expectRefused(await sign(claims({ iss: "https://evil.test" }), rsa), "wrong-issuer", /issuer is not "https:\/\/issuer\.acme\.test"; check the verifier's `issuer`/);
    await expectRefused(await sign(claims({ iss: `${ISSUER}/` }), rsa), "wrong-issuer");
  });

  it("a missing sub, exp, aud or iss: missing-claim naming it", async () => {
    for (const claim of ["sub", "exp", "aud", "iss"]) {
      await expectRefused(await sign(claims({ [claim]: undefined }), rsa), "missing-claim", new RegExp(`no \`${claim}\` claim`));
    }
    await expectRefused(await sign(claims({ sub: 42 }), rsa), "malformed", /`sub` claim is not a non-empty string/);
    await expectRefused(await sign(claims({ sub: "" }), rsa), "malformed");
    await expectRefused(await sign(claims({ exp: "tomorrow" }), rsa), "malformed", /`exp` claim is invalid/);
  });

  it("malformed token strings are refused before jose parses them", async () => {
    const valid = await sign(claims(), rsa);
    const [h, p, s] = valid.split(".");
    for (const bad of ["", "abc", "a.b", "garbage!", "a.b.c.d", `${h}.${p}`, `Bearer ${valid}`, ` ${valid}`, `${h}..${s}`, `.${p}.${s}`, "x".repeat(20 * 1024)]) {
      await expectRefused(bad, "malformed");
    }
    for (const notString of [undefined, null, 42, {}, Buffer.from(valid)]) {
      await refused(verifier.verify(notString as unknown as string), "malformed", /not a string/);
    }
    await expectRefused(`${"a".repeat(8000)}.${"b".repeat(8000)}.${"c".repeat(500)}`, "malformed", /more than 16384/);
    await expectRefused(`${base64url.encode("not json")}.${p}.${s}`, "malformed", /header is not/);
    await expectRefused(`${h}.${base64url.encode("[1,2]")}.${s}`, "bad-signature"); // signature checked before the payload is read
  });

  it("no refusal message (or its inspection) contains the token or any part of it", () => {
    assert.ok(messages.length > 40, `checked ${messages.length} messages`);
    for (const { token, message } of messages) {
      // inspect() prints the cause (jose's error), whose messages are fixed strings.
      if (token.length > 0) assertNoTokenIn(message, token, "a refusal");
    }
  });
});

describe("delegation (RFC 8693 act)", () => {
  let delegating: ReturnType<typeof verifierWith>;
  before(() => {
    delegating = verifierWith({ acceptDelegation: true });
  });

  it("refused unless the verifier accepts delegation: an `act` claim would let a token name any workload as its actor", async () => {
    const token = await sign(claims({ sub: "spiffe://acme.test/agents/intern", act: { sub: "spiffe://acme.test/agents/payroll" } }), rsa);
    await refused(verifier.verify(token), "delegation-not-accepted", /does not accept delegated tokens; set acceptDelegation: true only if https:\/\/issuer\.acme\.test performs token exchange/);
    assert.equal((await delegating.verify(token)).id, "spiffe://acme.test/agents/payroll");
    // Any `act`, even a malformed one, is refused for what it is.
    await refused(verifier.verify(await sign(claims({ act: null }), rsa)), "delegation-not-accepted");
  });

  it("depth 1: the current actor is the identity, the subject is on whose behalf", async () => {
    const token = await sign(claims({ sub: "alice@acme.test", act: { sub: "spiffe://acme.test/agents/invoice", iss: "https://sts.acme.test" } }), rsa);
    const identity = await delegating.verify(token);
    assert.equal(identity.id, "spiffe://acme.test/agents/invoice");
    const auth = authenticationOf(identity)!;
    assert.equal(auth.subject, "alice@acme.test");
    assert.deepEqual(auth.delegation, {
      depth: 1,
      actors: [{ subject: "spiffe://acme.test/agents/invoice", issuer: "https://sts.acme.test" }],
      onBehalfOf: "alice@acme.test",
    });
  });

  it("depth 3: actors from the first delegate to the current actor", async () => {
    const act = { sub: "agent-current", act: { sub: "agent-middle", act: { sub: "gateway-first", client_id: "ignored" } } };
    const identity = await delegating.verify(await sign(claims({ sub: "alice", act }), rsa));
    assert.equal(identity.id, "agent-current");
    const { delegation } = authenticationOf(identity)!;
    assert.equal(delegation.depth, 3);
    assert.deepEqual(delegation.actors.map((a) => a.subject), ["gateway-first", "agent-middle", "agent-current"]);
    assert.equal(delegation.onBehalfOf, "alice");
  });

  it("malformed act levels are refused", async () => {
    for (const act of ["agent", ["agent"], null, {}, { iss: "x" }, { sub: 42 }, { sub: "" }, { sub: "a", iss: 7 }, { sub: "a", act: "b" }, { sub: "a", act: { sub: {} } }]) {
      await refused(delegating.verify(await sign(claims({ act }), rsa)), "malformed", /`act`/);
    }
  });

  it("chains deeper than maxDelegationDepth are refused", async () => {
    const nest = (depth: number): Record<string, unknown> => (depth === 1 ? { sub: "a1" } : { sub: `a${depth}`, act: nest(depth - 1) });
    assert.equal(authenticationOf(await delegating.verify(await sign(claims({ act: nest(8) }), rsa)))?.delegation.depth, 8);
    await refused(delegating.verify(await sign(claims({ act: nest(9) }), rsa)), "delegation-too-deep", /deeper than 8/);
    const shallow = verifierWith({ acceptDelegation: true, maxDelegationDepth: 1 });
    await refused(shallow.verify(await sign(claims({ act: nest(2) }), rsa)), "delegation-too-deep", /deeper than 1 level/);
    // A hostile nesting depth costs no more than the bound (and JSON nesting limits).
    assert.throws(() => delegationChainOf({ sub: "x", act: nest(2000) }), (e: unknown) => e instanceof TokenVerificationError && e.reason === "delegation-too-deep");
  });
});

describe("SPIFFE JWT-SVIDs", () => {
  const spiffe = (options: Partial<TokenVerifierOptions> = {}) => verifierWith({ kind: "spiffe", trustDomains: ["acme.test"], ...options });

  it("a valid JWT-SVID: the id is the SPIFFE ID", async () => {
    const identity = await spiffe().verify(await sign(claims({ sub: "spiffe://acme.test/agents/invoice" }), ec));
    assert.equal(identity.id, "spiffe://acme.test/agents/invoice");
    const auth = authenticationOf(identity)!;
    assert.equal(auth.method, "spiffe-jwt-svid");
    assert.deepEqual(auth.spiffe, { trustDomain: "acme.test", path: "/agents/invoice" });
  });

  it("invalid SPIFFE IDs and untrusted domains are refused", async () => {
    const v = spiffe();
    const cases: [string, string, RegExp][] = [
      ["spiffe://ACME.test/agents/invoice", "invalid-spiffe-id", /trust domain has characters/],
      ["spiffe://acme!.test/agents/invoice", "invalid-spiffe-id", /trust domain has characters/],
      ["spiffe://acme.test/agents/../admin", "invalid-spiffe-id", /'\.' or '\.\.'/],
      ["spiffe://acme.test/agents/invoice?admin=1", "invalid-spiffe-id", /query/],
      ["spiffe://acme.test:8443/agents/invoice", "invalid-spiffe-id", /port/],
      ["spiffe://user@acme.test/agents/invoice", "invalid-spiffe-id", /userinfo/],
      ["https://acme.test/agents/invoice", "invalid-spiffe-id", /spiffe:\/\//],
      ["spiffe://acme.test", "invalid-spiffe-id", /names the trust domain "acme.test" itself, not a workload/],
      ["spiffe://evil.test/agents/invoice", "untrusted-domain", /trust domain "evil\.test", which is not one of trustDomains \(acme\.test\)/],
    ];
    for (const [sub, reason, message] of cases) {
      const error = await refused(v.verify(await sign(claims({ sub }), ec)), reason, message);
      if (reason === "invalid-spiffe-id") assert.ok(!error.message.includes(sub), "the invalid id is not echoed");
    }
    // The trust domains the keys speak for must be named: otherwise a partner's key could mint IDs in ours.
    assert.throws(() => spiffe({ trustDomains: undefined }), /trustDomains: is required with kind: "spiffe"/);
    assert.throws(() => spiffe({ trustDomains: [] }), /trustDomains: is required with kind: "spiffe"/);
  });

  it("a delegated JWT-SVID: the current actor must be a SPIFFE ID in a trusted domain too", async () => {
    const v = spiffe({ acceptDelegation: true });
    const ok = await v.verify(await sign(claims({ sub: "spiffe://acme.test/users/alice", act: { sub: "spiffe://acme.test/agents/invoice" } }), ec));
    assert.equal(ok.id, "spiffe://acme.test/agents/invoice");
    await refused(v.verify(await sign(claims({ sub: "spiffe://acme.test/users/alice", act: { sub: "agent" } }), ec)), "invalid-spiffe-id", /current actor/);
    await refused(v.verify(await sign(claims({ sub: "spiffe://acme.test/u", act: { sub: "spiffe://evil.test/a" } }), ec)), "untrusted-domain");
    // The subject a chain acts for is usually a person, not a workload: only the actor must be a SPIFFE ID.
    const forAlice = await v.verify(await sign(claims({ sub: "alice@acme.test", act: { sub: "spiffe://acme.test/agents/invoice" } }), ec));
    assert.equal(forAlice.id, "spiffe://acme.test/agents/invoice");
    assert.deepEqual(authenticationOf(forAlice)?.spiffe, { trustDomain: "acme.test", path: "/agents/invoice" });
    assert.equal(authenticationOf(forAlice)?.delegation.onBehalfOf, "alice@acme.test");
    await refused(v.verify(await sign(claims({ sub: "alice@acme.test" }), ec)), "invalid-spiffe-id", /its `sub`/);
  });

  it("keys from a SPIFFE trust bundle (use: jwt-svid) verify JWT-SVIDs, inline, from a file and from a URL", async () => {
    const bundle = { spiffe_sequence: 1, keys: [{ ...ec.jwk, use: "jwt-svid" }, { kty: "EC", crv: "P-256", use: "x509-svid", x: ec.jwk.x, y: ec.jwk.y, x5c: [] }] };
    const svid = await sign(claims({ sub: "spiffe://acme.test/agents/invoice" }), ec);
    assert.equal((await spiffe({ keys: { jwks: bundle as never } }).verify(svid)).id, "spiffe://acme.test/agents/invoice");
    const dir = await mkdtemp(join(tmpdir(), "bundle-"));
    try {
      await writeFile(join(dir, "bundle.json"), JSON.stringify(bundle));
      assert.equal((await spiffe({ keys: { file: join(dir, "bundle.json") } }).verify(svid)).id, "spiffe://acme.test/agents/invoice");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const server = await jwksServer(bundle as never);
    try {
      assert.equal((await spiffe({ keys: { url: server.url } }).verify(svid)).id, "spiffe://acme.test/agents/invoice");
    } finally {
      await server.close();
    }
  });

  it("parseSpiffeId follows the SPIFFE ID spec", () => {
    assert.deepEqual(parseSpiffeId("spiffe://acme.test"), { trustDomain: "acme.test", path: "" });
    assert.deepEqual(parseSpiffeId("spiffe://a-b_c.9/A.b-C_d/e"), { trustDomain: "a-b_c.9", path: "/A.b-C_d/e" });
    for (const bad of [
      "",
      "spiffe://",
      "spiffe:///path",
      "SPIFFE://acme.test/a",
      "spiffe://acme.test/",
      "spiffe://acme.test//a",
      "spiffe://acme.test/a/",
      "spiffe://acme.test/./a",
      "spiffe://acme.test/a#frag",
      "spiffe://acme.test/a%2Fb",
      "spiffe://acme.test/a b",
      "spiffe://acme.test/é",
      `spiffe://acme.test/${"a".repeat(2040)}`,
      `spiffe://${"a".repeat(256)}/x`,
    ]) {
      assert.ok("error" in parseSpiffeId(bad), bad);
    }
  });
});

describe("token lifetime", () => {
  it("maxTokenLifetimeSeconds refuses long-lived tokens, with or without iat", async () => {
    const v = verifierWith({ maxTokenLifetimeSeconds: 3600 });
    await v.verify(await sign(claims({ iat: now(), exp: now() + 3600 }), rsa));
    await refused(v.verify(await sign(claims({ iat: now(), exp: now() + 7200 }), rsa)), "lifetime-too-long", /7200 s\) exceeds maxTokenLifetimeSeconds \(3600 s\)/);
    await refused(v.verify(await sign(claims({ iat: undefined, exp: now() + 86_400 }), rsa)), "lifetime-too-long");
    await v.verify(await sign(claims({ iat: undefined, exp: now() + 600 }), rsa));
  });
});

describe("options are validated at construction", () => {
  const base = () => ({ issuer: ISSUER, audience: AUDIENCE, keys: { jwks: jwksOf(rsa) } });
  const invalid = (options: unknown, message: RegExp) =>
    assert.throws(() => createTokenVerifier(options as TokenVerifierOptions), (e: unknown) => e instanceof ConfigurationError && message.test(e.message));

  it("clock tolerance is bounded to 0..300 s", () => {
    createTokenVerifier({ ...base(), clockToleranceSeconds: 0 });
    createTokenVerifier({ ...base(), clockToleranceSeconds: 300 });
    invalid({ ...base(), clockToleranceSeconds: 301 }, /clockToleranceSeconds: must be at most 300 seconds/);
    invalid({ ...base(), clockToleranceSeconds: -1 }, /clockToleranceSeconds: must be 0 or more/);
    invalid({ ...base(), clockToleranceSeconds: 1.5 }, /whole number/);
  });

  it('"none" and HMAC algorithms are refused, saying why', () => {
    invalid({ ...base(), algorithms: ["none"] }, /"none" is refused: an unsigned token proves nothing/);
    invalid({ ...base(), algorithms: ["HS256"] }, /"HS256" is refused: a shared secret is not a workload identity/);
    invalid({ ...base(), algorithms: ["RS256", "HS512"] }, /algorithms\.1: "HS512" is refused/);
    invalid({ ...base(), algorithms: ["RS257"] }, /not a supported signature algorithm/);
    invalid({ ...base(), algorithms: [] }, /at least one algorithm/);
  });

  it("required options, unknown options, misplaced options and bad key sources", () => {
    invalid({ audience: AUDIENCE, keys: { jwks: jwksOf(rsa) } }, /issuer: is required/);
    invalid({ issuer: ISSUER, keys: { jwks: jwksOf(rsa) } }, /audience: is required/);
    invalid({ issuer: ISSUER, audience: AUDIENCE }, /keys: is required/);
    invalid({ ...base(), issuer: [] }, /issuer/);
    invalid({ ...base(), audiences: ["x"] }, /Unrecognized key: "audiences" \(allowed: issuer, audience, keys,/);
    invalid({ ...base(), trustDomains: ["acme.test"] }, /trustDomains applies only to kind: "spiffe"/);
    invalid({ ...base(), kind: "spiffe", trustDomains: ["spiffe://acme.test"] }, /trust domain name/);
    invalid({ ...base(), acceptDelegation: true, maxDelegationDepth: 65 }, /maxDelegationDepth/);
    invalid({ ...base(), acceptDelegation: true, maxDelegationDepth: 0 }, /maxDelegationDepth: must be at least 1 \(leave acceptDelegation off/);
    invalid({ ...base(), maxDelegationDepth: 4 }, /maxDelegationDepth: applies only with acceptDelegation: true/);
    invalid({ ...base(), acceptDelegation: "yes" }, /acceptDelegation: must be true or false/);
    invalid({ ...base(), keys: { jwks: { keys: "nope" } } }, /keys\.jwks must be a JSON Web Key Set/);
    invalid({ ...base(), keys: { jwks: { keys: [] } } }, /keys\.jwks has no keys/);
    invalid({ ...base(), keys: { jwks: { keys: [rsa.jwk, { kty: "oct", k: "c2VjcmV0" }] } } }, /keys\.jwks\.keys\.1 is a private or secret key/);
    invalid({ ...base(), keys: { url: "http://issuer.example/jwks" } }, /keys\.url must use https:/);
    invalid({ ...base(), keys: { url: "https://user:pw@issuer.example/jwks" } }, /credentials/);
    invalid({ ...base(), keys: { url: "not a url" } }, /not a valid URL/);
    invalid({ ...base(), keys: { url: "https://issuer.example/jwks", timeoutMs: 0 } }, /keys\.timeoutMs: must be at least 1 ms/);
    invalid({ ...base(), keys: { path: "/x" } }, /must be \{ url: <JWKS URL> \}/);
    invalid({ ...base(), keys: { file: "/x", extra: 1 } }, /keys: Unrecognized key: "extra"/);
  });
});

describe("authenticated identities cannot be forged", () => {
  it("an object that merely looks verified is not authenticated", async () => {
    const real = await verifier.verify(await sign(claims(), rsa));
    const auth = authenticationOf(real)!;
    const lookalikes: WorkloadIdentity[] = [
      { id: real.id },
      workloadIdentity({ id: real.id, groups: ["billing"] }),
      { ...real },
      JSON.parse(JSON.stringify(real)) as WorkloadIdentity,
      Object.freeze({ ...real, authentication: auth }) as WorkloadIdentity,
      Object.create(real) as WorkloadIdentity,
    ];
    for (const fake of lookalikes) {
      assert.equal(authenticationOf(fake), undefined);
      assert.equal(presentedTokenOf(fake), undefined);
    }
    assert.equal(authenticationOf(null as unknown as WorkloadIdentity), undefined);
  });

  it("the Authentication handed out cannot be changed, not even its dates", async () => {
    const identity = await verifier.verify(await sign(claims(), rsa));
    const first = authenticationOf(identity)!;
    const expiry = first.expiresAt.getTime();
    assert.throws(() => first.expiresAt.setTime(Date.now() + 10 * 365 * 86_400_000), TypeError);
    assert.throws(() => first.issuedAt!.setFullYear(2100), TypeError);
    assert.throws(() => ((first as { issuer: string }).issuer = "x"), TypeError);
    assert.ok(first.expiresAt instanceof Date);
    assert.equal(JSON.stringify({ at: first.expiresAt }), JSON.stringify({ at: new Date(expiry) }));
    assert.equal(authenticationOf(identity)!.expiresAt.getTime(), expiry);
    // Date.prototype's own setter still reaches the internal slot; the expiry that governs calls is kept apart.
    Date.prototype.setTime.call(first.expiresAt, Date.now() + 10 * 365 * 86_400_000);
    assert.equal(proofLifetime(identity)?.expiresAtMs, expiry);
  });

  it("the token never appears in JSON.stringify or util.inspect of the identity or the Authentication", async () => {
    const token = await sign(claims({ act: { sub: "agent" }, groups: ["ci"] }), rsa);
    const identity = await verifierWith({ acceptDelegation: true }).verify(token);
    const auth = authenticationOf(identity)!;
    for (const [where, text] of [
      ["JSON of the identity", JSON.stringify(identity)],
      ["inspect of the identity", inspect(identity, { showHidden: true, depth: Infinity, getters: true })],
      ["JSON of the authentication", JSON.stringify(auth)],
      ["inspect of the authentication", inspect(auth, { showHidden: true, depth: Infinity, getters: true })],
      ["keys of the identity", Reflect.ownKeys(identity).map(String).join()],
    ] as const) {
      assertNoTokenIn(text, token, where);
    }
    assert.equal(presentedTokenOf(identity), token);
  });

  it("attestIdentity registers a custom provider's identity, after validating both parts", () => {
    const authentication: Authentication = {
      method: "tpm-attestation",
      issuer: "https://attest.acme.test",
      subject: "build-agent-7",
      audience: ["bedrock-warden"],
      expiresAt: new Date(Date.now() + 60_000),
      delegation: { depth: 0, actors: [] },
    };
    const input = { id: "build-agent-7" };
    const attested = attestIdentity(input, authentication);
    assert.notEqual(attested, input);
    assert.equal(authenticationOf(input), undefined);
    assert.equal(authenticationOf(attested)?.method, "tpm-attestation");
    assert.equal(presentedTokenOf(attested), undefined);
    assert.throws(() => attestIdentity({ id: "" }, authentication), ConfigurationError);
    assert.throws(() => attestIdentity(input, { ...authentication, audience: [] }), /authentication\.audience/);
    assert.throws(() => attestIdentity(input, { ...authentication, expiresAt: new Date(NaN) }), /authentication\.expiresAt/);
    assert.throws(() => attestIdentity(input, { ...authentication, delegation: { depth: 1, actors: [] } }), /depth must equal/);
    assert.throws(() => attestIdentity(input, { ...authentication, token: "x" } as Authentication), /Unrecognized key: "token"/);
  });
});

describe("JWKS sources", () => {
  it("a remote JWKS is fetched once for many verifications", async () => {
    const server = await jwksServer(jwksOf(rsa));
    try {
      const v = verifierWith({ keys: { url: server.url } });
      const tokens = await Promise.all(Array.from({ length: 5 }, (_, i) => sign(claims({ sub: `workload-${i}` }), rsa)));
      for (const token of tokens) await v.verify(token);
      await Promise.all(tokens.map((t) => v.verify(t)));
      assert.equal(server.fetches, 1);
    } finally {
      await server.close();
    }
  });

  it("an unknown kid refetches once (after the cooldown) and accepts the rotated key", async () => {
    const server = await jwksServer(jwksOf(rsa));
    try {
      const v = verifierWith({ keys: { url: server.url, cooldownMs: 0 } });
      await v.verify(await sign(claims(), rsa));
      const rotated = await signingKey("rsa-2");
      server.jwks = jwksOf(rsa, rotated);
      await v.verify(await sign(claims(), rotated));
      assert.equal(server.fetches, 2);
      await v.verify(await sign(claims(), rotated));
      assert.equal(server.fetches, 2);
      // A kid nobody has still costs at most one refetch per token, and is refused.
      await refused(v.verify(await sign(claims(), await signingKey("nobody"))), "bad-signature");
      assert.equal(server.fetches, 3);
    } finally {
      await server.close();
    }
  });

  it("within the cooldown, tokens with unknown kids do not refetch", async () => {
    const server = await jwksServer(jwksOf(rsa));
    try {
      const v = verifierWith({ keys: { url: server.url } }); // default cooldown 30 s
      await v.verify(await sign(claims(), rsa));
      const stranger = await signingKey("random-kid");
      for (let i = 0; i < 5; i++) await refused(v.verify(await sign(claims(), stranger)), "bad-signature");
      assert.equal(server.fetches, 1);
    } finally {
      await server.close();
    }
  });

  it("an unreachable JWKS URL refuses quickly: keys-unavailable", async () => {
    const server = await jwksServer(jwksOf(rsa));
    const url = server.url;
    await server.close(); // the port is now closed
    const v = verifierWith({ keys: { url } });
    const started = Date.now();
    const error = await refused(v.verify(await sign(claims(), rsa)), "keys-unavailable", /could not be reached \(ECONNREFUSED\)/);
    assert.ok(Date.now() - started < 3000);
    assert.match(error.message, /the JWKS at http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json/);
  });

  it("a server slower than the timeout: keys-unavailable after the timeout, not a hang", async () => {
    const server = await jwksServer(jwksOf(rsa));
    server.hang = true;
    try {
      const v = verifierWith({ keys: { url: server.url, timeoutMs: 200 } });
      const started = Date.now();
      await refused(v.verify(await sign(claims(), rsa)), "keys-unavailable", /timed out/);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 150 && elapsed < 2000, `took ${elapsed} ms`);
    } finally {
      await server.close();
    }
  });

  it("an HTTP error or a malformed JWKS at the URL: keys-unavailable naming the cause", async () => {
    const server = await jwksServer(jwksOf(rsa));
    try {
      server.status = 503;
      await refused(verifierWith({ keys: { url: server.url } }).verify(await sign(claims(), rsa)), "keys-unavailable", /HTTP 503/);
      server.status = 302;
      await refused(verifierWith({ keys: { url: server.url } }).verify(await sign(claims(), rsa)), "keys-unavailable", /redirect/);
      server.status = 200;
      server.jwks = "{ not json";
      await refused(verifierWith({ keys: { url: server.url } }).verify(await sign(claims(), rsa)), "keys-unavailable");
      server.jwks = { keys: "none" };
      await refused(verifierWith({ keys: { url: server.url } }).verify(await sign(claims(), rsa)), "keys-unavailable", /not a JSON Web Key Set/);
      server.jwks = { keys: [{ ...rsa.jwk, n: "AAAA" }] };
      await refused(verifierWith({ keys: { url: server.url } }).verify(await sign(claims(), rsa)), "keys-unavailable", /shorter than 2048 bits/);
      server.jwks = { keys: [{ ...rsa.jwk, e: undefined }] };
      await refused(verifierWith({ keys: { url: server.url } }).verify(await sign(claims(), rsa)), "keys-unavailable");
      // An answer larger than any key set is refused, not read into memory.
      server.jwks = JSON.stringify({ ...jwksOf(rsa), padding: "x".repeat(1024 * 1024) });
      await refused(verifierWith({ keys: { url: server.url } }).verify(await sign(claims(), rsa)), "keys-unavailable", /larger than 1048576 bytes/);
    } finally {
      await server.close();
    }
  });

  it("a JWKS file: read once, errors name the file, rotation picked up on an unknown kid", async () => {
    const file = join(tmp, "jwks.json");
    await writeFile(file, JSON.stringify(jwksOf(rsa)));
    const v = verifierWith({ keys: { file, cooldownMs: 0 } });
    await v.verify(await sign(claims(), rsa));

    const rotated = await signingKey("rsa-rotated");
    await writeFile(file, JSON.stringify(jwksOf(rotated)));
    assert.equal((await v.verify(await sign(claims({ sub: "after-rotation" }), rotated))).id, "after-rotation");
    // The old key is gone from the file: once the file is re-read, its tokens are refused.
    await refused(v.verify(await sign(claims(), rsa)), "bad-signature");

    const malformed = join(tmp, "malformed.json");
    await writeFile(malformed, "{ this is not json");
    const error = await refused(verifierWith({ keys: { file: malformed } }).verify(await sign(claims(), rsa)), "keys-unavailable");
    assert.ok(error.message.includes(malformed), error.message);
    assert.match(error.message, /not valid JSON/);

    const notJwks = join(tmp, "not-jwks.json");
    await writeFile(notJwks, JSON.stringify({ kid: "x" }));
    assert.match((await refused(verifierWith({ keys: { file: notJwks } }).verify(await sign(claims(), rsa)), "keys-unavailable")).message, /not-jwks\.json is not a JSON Web Key Set/);

    const missing = join(tmp, "missing.json");
    assert.match((await refused(verifierWith({ keys: { file: missing } }).verify(await sign(claims(), rsa)), "keys-unavailable")).message, /missing\.json cannot be read \(ENOENT\)/);
  });

  it("private keys in the inline JWKS are refused at construction", async () => {
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const privateJwk = { ...(await exportJWK(privateKey)), kid: "p" };
    assert.throws(() => verifierWith({ keys: { jwks: { keys: [privateJwk] } } }), /keys\.jwks\.keys\.0 is a private or secret key/);
  });

  it("a broken rotation keeps the keys already read", async () => {
    const file = join(tmp, "rotation.json");
    await writeFile(file, JSON.stringify(jwksOf(rsa)));
    const v = verifierWith({ keys: { file, cooldownMs: 0 } });
    await v.verify(await sign(claims(), rsa));
    await writeFile(file, "{ half-writ");
    await refused(v.verify(await sign(claims(), await signingKey("new"))), "keys-unavailable", /rotation\.json is not valid JSON/);
    await v.verify(await sign(claims(), rsa));
  });
});
