import assert from "node:assert/strict";
import http from "node:http";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  ListAsyncInvokesCommand,
  type BedrockRuntimeClientConfig,
} from "@aws-sdk/client-bedrock-runtime";
import {
  AssumeRoleCommand,
  AssumeRoleWithWebIdentityCommand,
  STSClient,
  type AssumeRoleCommandInput,
  type AssumeRoleWithWebIdentityCommandInput,
  type Credentials,
  type STSClientConfig,
} from "@aws-sdk/client-sts";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import {
  LOCAL_BEDROCK_CREDENTIALS,
  startLocalBedrock,
  startLocalSts,
  type LocalBedrock,
  type LocalSts,
} from "../src/local-endpoint/index.js";
import { arnMatch, wildcardMatch } from "../src/local-endpoint/iam-policy.js";

const ACCOUNT = "123456789012";
const AGENT_ROLE = `arn:aws:iam::${ACCOUNT}:role/agent`;
const OIDC_ROLE = `arn:aws:iam::${ACCOUNT}:role/ci/deployer`;
const PLAIN_ROLE = `arn:aws:iam::${ACCOUNT}:role/no-web-identity`;
const ISSUER = "https://token.actions.githubusercontent.com";
const SUBJECT = "repo:acme/agent:ref:refs/heads/main";
const NOVA = "amazon.nova-lite-v1:0";
const NOVA_ARN = `arn:aws:bedrock:us-east-1::foundation-model/${NOVA}`;
const HAIKU = "anthropic.claude-3-haiku-20240307-v1:0";
const HAIKU_PROFILE = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
const USER = [{ role: "user" as const, content: [{ text: "Hi" }] }];
const CALLER_ARN = `arn:aws:iam::${ACCOUNT}:user/${LOCAL_BEDROCK_CREDENTIALS.accessKeyId}`;

/** Only `bedrock:InvokeModel` (Converse) on Nova Lite. */
const NOVA_ONLY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Sid: "NovaOnly", Effect: "Allow", Action: "bedrock:InvokeModel", Resource: NOVA_ARN }],
});

let bedrock: LocalBedrock;
let bedrockEu: LocalBedrock;
let sts: LocalSts;
// The STS clock runs this far from the wall clock (tests of expiry move it).
let clockOffsetMs = 0;
let signingKey: CryptoKeyLike;
let otherKey: CryptoKeyLike;
const destroyables: { destroy(): void }[] = [];

type CryptoKeyLike = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

before(async () => {
  const trusted = await generateKeyPair("ES256");
  const untrusted = await generateKeyPair("ES256");
  signingKey = trusted.privateKey;
  otherKey = untrusted.privateKey;
  bedrock = await startLocalBedrock();
  bedrockEu = await startLocalBedrock({ region: "eu-west-3" });
  sts = await startLocalSts({
    roles: [
      { arn: AGENT_ROLE, maxSessionDurationSeconds: 7200 },
      { arn: PLAIN_ROLE },
      {
        arn: OIDC_ROLE,
        webIdentity: {
          issuer: ISSUER,
          jwks: { keys: [{ ...(await exportJWK(trusted.publicKey)), kid: "key-1", alg: "ES256", use: "sig" }] },
          subjects: ["repo:acme/agent:*", "repo:acme/exact"],
        },
      },
    ],
    issueTo: [bedrock, bedrockEu],
    now: () => new Date(Date.now() + clockOffsetMs),
  });
});

after(async () => {
  for (const client of destroyables) client.destroy();
  await Promise.all([sts.close(), bedrock.close(), bedrockEu.close()]);
});

beforeEach(() => {
  bedrock.reset();
  bedrockEu.reset();
  clockOffsetMs = 0;
});

function stsClient(config: Partial<STSClientConfig> = {}): STSClient {
  const client = new STSClient({ endpoint: sts.url, region: sts.region, credentials: { ...LOCAL_BEDROCK_CREDENTIALS }, maxAttempts: 1, ...config });
  destroyables.push(client);
  return client;
}

function bedrockClient(credentials: Credentials, endpoint: LocalBedrock = bedrock, config: Partial<BedrockRuntimeClientConfig> = {}): BedrockRuntimeClient {
  const client = new BedrockRuntimeClient({
    endpoint: endpoint.url,
    region: endpoint.region,
    credentials: { accessKeyId: credentials.AccessKeyId!, secretAccessKey: credentials.SecretAccessKey!, sessionToken: credentials.SessionToken! },
    maxAttempts: 1,
    ...config,
  });
  destroyables.push(client);
  return client;
}

async function assumeRole(input: Partial<AssumeRoleCommandInput> = {}, client = stsClient()) {
  return client.send(new AssumeRoleCommand({ RoleArn: AGENT_ROLE, RoleSessionName: "test-session", ...input }));
}

async function assumeWithToken(token: string, input: Partial<AssumeRoleWithWebIdentityCommandInput> = {}) {
  // No credentials at all: the SDK does not sign AssumeRoleWithWebIdentity.
  const client = new STSClient({ endpoint: sts.url, region: sts.region, maxAttempts: 1 });
  destroyables.push(client);
  return client.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: OIDC_ROLE, RoleSessionName: "ci-run", WebIdentityToken: token, ...input }));
}

async function converse(client: BedrockRuntimeClient, modelId = NOVA) {
  return client.send(new ConverseCommand({ modelId, messages: USER }));
}

/** Asserts that `promise` rejects with an SDK error of this `name` (and message, when given). */
async function rejectsWith(promise: Promise<unknown>, name: string, message?: string | RegExp): Promise<void> {
  await assert.rejects(promise, (error: Error) => {
    assert.equal(error.name, name, `expected ${name}, got ${error.name}: ${error.message}`);
    if (typeof message === "string") assert.equal(error.message, message);
    else if (message) assert.match(error.message, message);
    return true;
  });
}

interface TokenOptions {
  key?: CryptoKeyLike;
  alg?: string;
  kid?: string;
  issuer?: string;
  audience?: string;
  subject?: string;
  expiresAt?: number;
}

async function idToken(claims: Record<string, unknown> = {}, options: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? "ES256", kid: options.kid ?? "key-1" })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? "sts.amazonaws.com")
    .setSubject(options.subject ?? SUBJECT)
    .setIssuedAt(Math.min(now, (options.expiresAt ?? now + 600) - 60))
    .setExpirationTime(options.expiresAt ?? now + 600)
    .sign(options.key ?? signingKey);
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** A raw HTTP/1.1 exchange with the STS endpoint, for what the SDK would never send. */
function rawRequest(options: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[] }) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(`${sts.url}${options.path ?? "/"}`, { method: options.method ?? "POST", headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    if (options.chunks) {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

const FORM = { "content-type": "application/x-www-form-urlencoded" };

function errorCode(xml: string): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(xml)?.[1];
}

describe("AssumeRole", () => {
  test("issues keys the issueTo endpoints accept, and records the session without its secrets", async () => {
    const before = Date.now();
    const out = await assumeRole({
      RoleSessionName: "nightly-report",
      DurationSeconds: 1800,
      SourceIdentity: "alice@example.com",
      Tags: [
        { Key: "team", Value: "data" },
        { Key: "cost-center", Value: "42" },
      ],
      Policy: NOVA_ONLY,
    });
    const after = Date.now();
    const credentials = out.Credentials!;
    assert.match(credentials.AccessKeyId!, /^ASIA[A-Z2-7]{16}$/);
    assert.equal(credentials.SecretAccessKey!.length, 40);
    assert.ok(credentials.SessionToken!.length > 100);
    // Issued at some instant during the call, and expiring 1,800 s later (whole seconds, as AWS writes them).
    const expiresIn = credentials.Expiration!.getTime() - before;
    assert.ok(expiresIn > 1790_000 && expiresIn <= 1800_000 + (after - before), `expires in ${expiresIn} ms`);
    assert.equal(credentials.Expiration!.getTime() - sts.sessions.at(-1)!.issuedAt.getTime(), 1800_000);
    assert.equal(out.AssumedRoleUser?.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/agent/nightly-report`);
    assert.match(out.AssumedRoleUser?.AssumedRoleId ?? "", /^AROA[A-Z2-7]{17}:nightly-report$/);
    assert.equal(out.SourceIdentity, "alice@example.com");
    assert.ok(out.PackedPolicySize! > 0 && out.PackedPolicySize! <= 100);

    const reply = await converse(bedrockClient(credentials));
    assert.equal(reply.output?.message?.content?.[0]?.text, "Echo: Hi");
    const request = bedrock.requests.at(-1)!;
    assert.deepEqual(request.signature, { status: "valid", scheme: "sigv4", accessKeyId: credentials.AccessKeyId });
    assert.equal(request.authorization?.status, "allowed");
    // The second issueTo endpoint accepts them too (its own region's ARNs: this policy denies there).
    await rejectsWith(converse(bedrockClient(credentials, bedrockEu)), "AccessDeniedException");
    assert.equal(bedrockEu.requests.at(-1)?.authorization?.resource, `arn:aws:bedrock:eu-west-3::foundation-model/${NOVA}`);

    const session = sts.sessions.at(-1)!;
    assert.deepEqual(
      { ...session, issuedAt: undefined },
      {
        accessKeyId: credentials.AccessKeyId,
        operation: "AssumeRole",
        roleArn: AGENT_ROLE,
        assumedRoleArn: `arn:aws:sts::${ACCOUNT}:assumed-role/agent/nightly-report`,
        roleSessionName: "nightly-report",
        sourceIdentity: "alice@example.com",
        tags: { team: "data", "cost-center": "42" },
        policy: NOVA_ONLY,
        issuedAt: undefined,
        expiration: credentials.Expiration,
      },
    );
    const recorded = JSON.stringify(sts.sessions);
    assert.ok(!recorded.includes(credentials.SecretAccessKey!) && !recorded.includes(credentials.SessionToken!), "sessions hold no secret");
    const stsRequest = sts.requests.at(-1)!;
    assert.deepEqual([stsRequest.action, stsRequest.status, stsRequest.errorCode, stsRequest.accessKeyId], ["AssumeRole", 200, undefined, LOCAL_BEDROCK_CREDENTIALS.accessKeyId]);
  });

  test("keys without a session policy are not restricted, and no PackedPolicySize is reported", async () => {
    const out = await assumeRole();
    assert.equal(out.PackedPolicySize, undefined);
    const client = bedrockClient(out.Credentials!);
    await converse(client, HAIKU);
    const stream = await client.send(new ConverseStreamCommand({ modelId: NOVA, messages: USER }));
    for await (const _ of stream.stream ?? []);
    assert.deepEqual(
      bedrock.requests.map((r) => [r.operation, r.status, r.authorization]),
      [
        ["Converse", 200, undefined],
        ["ConverseStream", 200, undefined],
      ],
    );
  });

  test("an unsigned, wrongly signed or unknown-key request is refused", async () => {
    const body = `Action=AssumeRole&Version=2011-06-15&RoleArn=${encodeURIComponent(AGENT_ROLE)}&RoleSessionName=x1`;
    const unsigned = await rawRequest({ headers: FORM, body });
    assert.equal(unsigned.status, 403);
    assert.equal(errorCode(unsigned.body), "MissingAuthenticationToken");
    // The same parameters in a GET query string are no different.
    const viaGet = await rawRequest({ method: "GET", path: `/?${body}` });
    assert.equal(errorCode(viaGet.body), "MissingAuthenticationToken");

    await rejectsWith(assumeRole({}, stsClient({ credentials: { ...LOCAL_BEDROCK_CREDENTIALS, secretAccessKey: "wrong" } })), "SignatureDoesNotMatch");
    await rejectsWith(
      assumeRole({}, stsClient({ credentials: { accessKeyId: "AKIAUNKNOWNKEY000000", secretAccessKey: "whatever" } })),
      "InvalidClientTokenId",
      "The security token included in the request is invalid.",
    );
    // Keys the STS issued are for Bedrock, not for calling STS again.
    const issued = (await assumeRole()).Credentials!;
    await rejectsWith(
      assumeRole({}, stsClient({ credentials: { accessKeyId: issued.AccessKeyId!, secretAccessKey: issued.SecretAccessKey!, sessionToken: issued.SessionToken! } })),
      "InvalidClientTokenId",
    );
    // A signature scoped to another region or another service is not STS's.
    await rejectsWith(assumeRole({}, stsClient({ region: "eu-west-1" })), "SignatureDoesNotMatch", "Credential should be scoped to a valid region.");
    assert.equal(sts.requests.at(-1)?.errorCode, "SignatureDoesNotMatch");
  });

  test("a role that is not configured is AccessDenied, as AWS words it", async () => {
    const missing = `arn:aws:iam::${ACCOUNT}:role/nope`;
    await rejectsWith(assumeRole({ RoleArn: missing }), "AccessDenied", `User: ${CALLER_ARN} is not authorized to perform: sts:AssumeRole on resource: ${missing}`);
  });

  test("session names, durations, source identities and tags outside AWS's limits are ValidationErrors", async () => {
    await rejectsWith(assumeRole({ RoleSessionName: "a" }), "ValidationError", /^1 validation error detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64$/);
    await rejectsWith(assumeRole({ RoleSessionName: "has space" }), "ValidationError", /roleSessionName.*regular expression pattern/);
    await rejectsWith(assumeRole({ RoleSessionName: "x".repeat(65) }), "ValidationError", /roleSessionName/);
    await rejectsWith(assumeRole({ DurationSeconds: 899 }), "ValidationError", /durationSeconds.*greater than or equal to 900/);
    await rejectsWith(assumeRole({ DurationSeconds: 43201 }), "ValidationError", /durationSeconds/);
    await rejectsWith(assumeRole({ DurationSeconds: 7201 }), "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.");
    await rejectsWith(assumeRole({ RoleArn: PLAIN_ROLE, DurationSeconds: 3601 }), "ValidationError", /exceeds the MaxSessionDuration/);
    await rejectsWith(assumeRole({ SourceIdentity: "a b" }), "ValidationError", /sourceIdentity/);
    await rejectsWith(assumeRole({ RoleSessionName: "a", SourceIdentity: "!" }), "ValidationError", /^2 validation errors detected: /);
    const tooMany = Array.from({ length: 51 }, (_, i) => ({ Key: `k${i}`, Value: "v" }));
    await rejectsWith(assumeRole({ Tags: tooMany }), "ValidationError", /'tags'.*less than or equal to 50/);
    await rejectsWith(assumeRole({ Tags: [{ Key: "k".repeat(129), Value: "v" }] }), "ValidationError", /tags\.1\.member\.key/);
    await rejectsWith(assumeRole({ Tags: [{ Key: "k", Value: "v".repeat(257) }] }), "ValidationError", /tags\.1\.member\.value/);
    await rejectsWith(
      assumeRole({
        Tags: [
          { Key: "Team", Value: "a" },
          { Key: "team", Value: "b" },
        ],
      }),
      "InvalidParameterValue",
      /Duplicate tag keys/,
    );
    // DurationSeconds within the role's maximum is honored.
    const out = await assumeRole({ DurationSeconds: 7200 });
    assert.ok(out.Credentials!.Expiration!.getTime() - Date.now() > 7100_000);
    assert.equal(sts.requests.filter((r) => r.errorCode === "ValidationError").length, 12);
  });

  test("a malformed or oversized session policy is refused", async () => {
    await rejectsWith(assumeRole({ Policy: "{not json" }), "MalformedPolicyDocumentException", "Syntax errors in policy.");
    await rejectsWith(
      assumeRole({ Policy: JSON.stringify({ Statement: [{ Effect: "Allow", Principal: "*", Action: "bedrock:*", Resource: "*" }] }) }),
      "MalformedPolicyDocumentException",
      "Policy document should not specify a principal.",
    );
    await rejectsWith(assumeRole({ Policy: JSON.stringify({ Statement: [{ Effect: "Allow", Resource: "*" }] }) }), "MalformedPolicyDocumentException", /must contain actions/);
    await rejectsWith(assumeRole({ Policy: JSON.stringify({ Statement: [{ Effect: "Maybe", Action: "s3:*", Resource: "*" }] }) }), "MalformedPolicyDocumentException");
    const huge = JSON.stringify({
      Version: "2012-10-17",
      Statement: Array.from({ length: 40 }, (_, i) => ({ Sid: `S${i}`, Effect: "Allow", Action: "bedrock:InvokeModel", Resource: `${NOVA_ARN}-${i}` })),
    });
    assert.ok(huge.length > 2048);
    await rejectsWith(assumeRole({ Policy: huge }), "PackedPolicyTooLargeException", /^Packed policy consumes \d+% of allotted space/);
    assert.equal(sts.sessions.filter((s) => s.policy === huge).length, 0);
  });
});

describe("AssumeRoleWithWebIdentity", () => {
  test("a token signed by a key of the trusted provider gets keys, with its source identity and tags", async () => {
    const token = await idToken({
      "https://aws.amazon.com/source_identity": "deploy-bot",
      "https://aws.amazon.com/tags": { principal_tags: { env: ["prod"], team: "platform" }, transitive_tag_keys: ["env"] },
    });
    const out = await assumeWithToken(token, { DurationSeconds: 900, Policy: NOVA_ONLY });
    assert.equal(out.SubjectFromWebIdentityToken, SUBJECT);
    assert.equal(out.Audience, "sts.amazonaws.com");
    assert.equal(out.Provider, `arn:aws:iam::${ACCOUNT}:oidc-provider/token.actions.githubusercontent.com`);
    assert.equal(out.SourceIdentity, "deploy-bot");
    assert.equal(out.AssumedRoleUser?.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/deployer/ci-run`);
    assert.match(out.Credentials?.AccessKeyId ?? "", /^ASIA/);

    await converse(bedrockClient(out.Credentials!));
    assert.equal(bedrock.requests.at(-1)?.authorization?.status, "allowed");
    const session = sts.sessions.at(-1)!;
    assert.equal(session.operation, "AssumeRoleWithWebIdentity");
    assert.equal(session.subject, SUBJECT);
    assert.equal(session.sourceIdentity, "deploy-bot");
    assert.deepEqual(session.tags, { env: "prod", team: "platform" });
    assert.equal(session.policy, NOVA_ONLY);
  });

  test("a subject matched exactly or by prefix is trusted", async () => {
    await assumeWithToken(await idToken({}, { subject: "repo:acme/exact" }));
    await assumeWithToken(await idToken({}, { subject: "repo:acme/agent:pull_request" }));
    await rejectsWith(assumeWithToken(await idToken({}, { subject: "repo:acme/exact:more" })), "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
  });

  test("tokens that do not verify are InvalidIdentityToken", async () => {
    const issuedBefore = sts.sessions.length;
    await rejectsWith(assumeWithToken(await idToken({}, { key: otherKey })), "InvalidIdentityTokenException", /signature does not verify/);
    await rejectsWith(assumeWithToken(await idToken({}, { kid: "key-2" })), "InvalidIdentityTokenException", /No key of the provider matches/);
    await rejectsWith(assumeWithToken(await idToken({}, { audience: "someone-else" })), "InvalidIdentityTokenException", "Incorrect token audience");
    await rejectsWith(
      assumeWithToken(await idToken({}, { issuer: "https://evil.example" })),
      "InvalidIdentityTokenException",
      "No OpenIDConnect provider found in your account for https://evil.example",
    );
    await rejectsWith(assumeWithToken("not-a-jwt-at-all"), "InvalidIdentityTokenException", /not a valid JWT/);
    // alg "none": a token anyone can forge, refused whatever it claims.
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${base64url({ alg: "none", typ: "JWT" })}.${base64url({ iss: ISSUER, aud: "sts.amazonaws.com", sub: SUBJECT, iat: now, exp: now + 600 })}.`;
    await rejectsWith(assumeWithToken(unsigned), "InvalidIdentityTokenException", /signing algorithm is not supported/);
    // HS256 with some secret: symmetric algorithms are not accepted either.
    const hmac = await new SignJWT({}).setProtectedHeader({ alg: "HS256", kid: "key-1" }).setIssuer(ISSUER).setAudience("sts.amazonaws.com").setSubject(SUBJECT).setExpirationTime("10m").sign(new TextEncoder().encode("x".repeat(32)));
    await rejectsWith(assumeWithToken(hmac), "InvalidIdentityTokenException");
    assert.equal(sts.sessions.length, issuedBefore);
  });

  test("an expired token is ExpiredTokenException, worded as AWS does", async () => {
    const expiredAt = Math.floor(Date.now() / 1000) - 60;
    await rejectsWith(
      assumeWithToken(await idToken({}, { expiresAt: expiredAt })),
      "ExpiredTokenException",
      new RegExp(`^Token expired: current date/time \\d+ must be before the expiration date/time ${expiredAt}$`),
    );
  });

  test("an untrusted subject, a role without web identity trust, or an unknown role is AccessDenied", async () => {
    await rejectsWith(assumeWithToken(await idToken({}, { subject: "repo:mallory/fork:ref:refs/heads/main" })), "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
    await rejectsWith(assumeWithToken(await idToken(), { RoleArn: PLAIN_ROLE }), "AccessDenied");
    await rejectsWith(assumeWithToken(await idToken(), { RoleArn: `arn:aws:iam::${ACCOUNT}:role/nope` }), "AccessDenied");
    await rejectsWith(assumeWithToken(await idToken(), { RoleSessionName: "no spaces allowed" }), "ValidationError");
    await rejectsWith(
      assumeWithToken(await idToken({ "https://aws.amazon.com/tags": { principal_tags: "team=data" } })),
      "InvalidIdentityTokenException",
      /principal_tags/,
    );
  });
});

describe("fault injection and expiry", () => {
  test("failNext(Throttling): the STS client retries and succeeds; more failures than attempts surface as Throttling", async () => {
    const first = sts.requests.length;
    sts.failNext({ code: "Throttling", status: 400, message: "Rate exceeded", times: 2 });
    const out = await assumeRole({}, stsClient({ maxAttempts: 3 }));
    assert.equal(out.$metadata.attempts, 3);
    assert.deepEqual(
      sts.requests.slice(first).map((r) => [r.action, r.status, r.errorCode]),
      [
        ["AssumeRole", 400, "Throttling"],
        ["AssumeRole", 400, "Throttling"],
        ["AssumeRole", 200, undefined],
      ],
    );

    sts.failNext({ code: "Throttling", status: 400, message: "Rate exceeded", times: 4 });
    await rejectsWith(assumeRole({}, stsClient({ maxAttempts: 2 })), "Throttling", "Rate exceeded");
    // The third injected failure is still pending for whatever comes next...
    await rejectsWith(assumeRole(), "Throttling");
    // ...until cancelled.
    sts.failNext({ code: "Throttling", status: 400, times: 0 });
    await assumeRole();
    assert.throws(() => sts.failNext({ code: "Throttling", status: 200 }), TypeError);
  });

  test("a 5xx failure is a Receiver fault", async () => {
    sts.failNext({ code: "InternalFailure", status: 500, message: "boom" });
    const { status, body } = await rawRequest({ headers: FORM, body: "Action=AssumeRole&Version=2011-06-15" });
    assert.equal(status, 500);
    assert.match(body, /<Type>Receiver<\/Type>\s*<Code>InternalFailure<\/Code>\s*<Message>boom<\/Message>/);
  });

  test("expire(id) makes the key expire at every issueTo endpoint", async () => {
    const credentials = (await assumeRole()).Credentials!;
    const client = bedrockClient(credentials);
    await converse(client);
    sts.expire(credentials.AccessKeyId!);
    await rejectsWith(converse(client), "ExpiredTokenException");
    await rejectsWith(converse(bedrockClient(credentials, bedrockEu)), "ExpiredTokenException");
    assert.equal(bedrock.requests.at(-1)?.signature.status, "expired");
    assert.ok(sts.sessions.find((s) => s.accessKeyId === credentials.AccessKeyId)!.expiration.getTime() <= Date.now());
    assert.throws(() => sts.expire("ASIANEVERISSUED00000"), RangeError);
  });

  test("the STS clock (now) sets expirations: keys issued two hours ago for 15 minutes are expired", async () => {
    clockOffsetMs = -2 * 3600_000;
    const out = await assumeRole({ DurationSeconds: 900 });
    assert.ok(out.Credentials!.Expiration!.getTime() < Date.now() - 3600_000);
    await rejectsWith(converse(bedrockClient(out.Credentials!)), "ExpiredTokenException");
    assert.ok(sts.sessions.at(-1)!.issuedAt.getTime() < Date.now() - 7000_000);
  });

  test("the STS clock (now) judges web identity tokens: a token valid now is expired an hour later", async () => {
    const token = await idToken();
    clockOffsetMs = 3600_000;
    await rejectsWith(assumeWithToken(token), "ExpiredTokenException", /^Token expired/);
    clockOffsetMs = 0;
    await assumeWithToken(token);
  });
});

describe("session policies at the Bedrock endpoint", () => {
  async function keysWithPolicy(policy: unknown): Promise<BedrockRuntimeClient> {
    const out = await assumeRole({ RoleSessionName: "scoped", Policy: JSON.stringify(policy) });
    return bedrockClient(out.Credentials!);
  }

  test("InvokeModel on one model: Converse on it works; another model and ConverseStream are AccessDeniedException", async () => {
    const client = bedrockClient((await assumeRole({ RoleSessionName: "scoped", Policy: NOVA_ONLY })).Credentials!);
    await converse(client);
    assert.deepEqual(bedrock.requests.at(-1)?.authorization, {
      status: "allowed",
      action: "bedrock:InvokeModel",
      resource: NOVA_ARN,
      reason: "allowed by the session policy (statement NovaOnly)",
    });
    await rejectsWith(
      converse(client, HAIKU),
      "AccessDeniedException",
      `User: arn:aws:sts::${ACCOUNT}:assumed-role/agent/scoped is not authorized to perform: bedrock:InvokeModel on resource: ` +
        `arn:aws:bedrock:us-east-1::foundation-model/${HAIKU} because no session policy allows the bedrock:InvokeModel action`,
    );
    await rejectsWith(
      client.send(new ConverseStreamCommand({ modelId: NOVA, messages: USER })),
      "AccessDeniedException",
      /not authorized to perform: bedrock:InvokeModelWithResponseStream on resource: .*amazon\.nova-lite-v1:0 because no session policy allows/,
    );
    await rejectsWith(client.send(new ListAsyncInvokesCommand({})), "AccessDeniedException", /bedrock:ListAsyncInvokes on resource: \*/);
    assert.deepEqual(
      bedrock.requests.map((r) => [r.operation, r.status, r.authorization?.status]),
      [
        ["Converse", 200, "allowed"],
        ["Converse", 403, "denied"],
        ["ConverseStream", 403, "denied"],
        ["ListAsyncInvokes", 403, "denied"],
      ],
    );
  });

  test("an explicit Deny wins over any Allow", async () => {
    const client = await keysWithPolicy({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Action: "bedrock:*", Resource: "*" },
        { Sid: "NoAnthropic", Effect: "Deny", Action: "bedrock:invoke*", Resource: "arn:aws:bedrock:*::foundation-model/anthropic.*" },
      ],
    });
    await converse(client);
    await rejectsWith(converse(client, HAIKU), "AccessDeniedException", /with an explicit deny in a session policy$/);
    assert.equal(bedrock.requests.at(-1)?.authorization?.reason, "explicitly denied by the session policy (statement NoAnthropic)");
  });

  test("NotAction and NotResource, and wildcards that stay inside their ARN segment", async () => {
    const client = await keysWithPolicy({
      Statement: [{ Effect: "Allow", NotAction: "bedrock:InvokeModelWithResponseStream", NotResource: "arn:aws:bedrock:us-east-1::foundation-model/anthropic.*" }],
    });
    await converse(client);
    await rejectsWith(converse(client, HAIKU), "AccessDeniedException");
    // A resource that is not an ARN with all six parts is refused, as IAM does.
    await rejectsWith(
      assumeRole({ Policy: JSON.stringify({ Statement: [{ Effect: "Allow", Action: "bedrock:InvokeModel", Resource: "arn:aws:bedrock:*:foundation-model/*" }] }) }),
      "MalformedPolicyDocumentException",
      'Resource arn:aws:bedrock:*:foundation-model/* must be in ARN format or "*".',
    );
  });

  test("wildcards: `*` and `?`, actions case-insensitive, ARNs case-sensitive and matched segment by segment", () => {
    assert.ok(arnMatch("arn:aws:bedrock:*::foundation-model/amazon.*", NOVA_ARN));
    assert.ok(arnMatch("arn:aws:bedrock:us-east-?::foundation-model/*", NOVA_ARN));
    assert.ok(!arnMatch("arn:aws:bedrock:us-east-?::foundation-model/Amazon.*", NOVA_ARN));
    // The region wildcard cannot swallow the (empty) account segment and the colon after it.
    assert.ok(!arnMatch("arn:aws:bedrock:*:foundation-model/*:*", NOVA_ARN));
    assert.ok(!arnMatch("arn:aws:bedrock:*:*:*", "*"));
    assert.ok(arnMatch("*", "*"));
    assert.ok(wildcardMatch("a*b?c*", "axxbyczz"));
    assert.ok(!wildcardMatch("a*b?c", "abc"));
    // Linear, not exponential, on adversarial patterns.
    const started = performance.now();
    assert.ok(!wildcardMatch("*a*a*a*a*a*a*a*a*a*a*b", "a".repeat(10_000)));
    assert.ok(performance.now() - started < 1000);
  });

  test("a system inference profile is authorized against the profile's ARN", async () => {
    const client = await keysWithPolicy({
      Statement: [{ Effect: "Allow", Action: "bedrock:InvokeModel", Resource: `arn:aws:bedrock:us-east-1:${ACCOUNT}:inference-profile/us.anthropic.*` }],
    });
    await converse(client, HAIKU_PROFILE);
    assert.equal(bedrock.requests.at(-1)?.authorization?.resource, `arn:aws:bedrock:us-east-1:${ACCOUNT}:inference-profile/${HAIKU_PROFILE}`);
  });

  test("conditions: known keys are evaluated, an unknown condition fails closed (Allow never matches, Deny always does)", async () => {
    const allowIf = (condition: unknown) => ({ Statement: [{ Effect: "Allow", Action: "bedrock:InvokeModel", Resource: "*", Condition: condition }] });
    await converse(await keysWithPolicy(allowIf({ StringEquals: { "aws:RequestedRegion": "us-east-1" } })));
    await converse(await keysWithPolicy(allowIf({ ArnLike: { "aws:PrincipalArn": "arn:aws:sts::*:assumed-role/agent/*" } })));
    await rejectsWith(converse(await keysWithPolicy(allowIf({ StringEquals: { "aws:RequestedRegion": "eu-west-1" } }))), "AccessDeniedException");
    await rejectsWith(converse(await keysWithPolicy(allowIf({ NumericLessThan: { "aws:MultiFactorAuthAge": "3600" } }))), "AccessDeniedException");
    await rejectsWith(converse(await keysWithPolicy(allowIf({ StringEquals: { "bedrock:SomeFutureKey": "x" } }))), "AccessDeniedException");
    const denyIfUnknown = {
      Statement: [
        { Effect: "Allow", Action: "bedrock:InvokeModel", Resource: "*" },
        { Effect: "Deny", Action: "bedrock:InvokeModel", Resource: "*", Condition: { StringEquals: { "aws:PrincipalTag/team": "data" } } },
      ],
    };
    await rejectsWith(converse(await keysWithPolicy(denyIfUnknown)), "AccessDeniedException", /explicit deny/);
  });

  test("registering a key with a policy IAM would refuse throws", () => {
    assert.throws(
      () => bedrock.addCredentials({ accessKeyId: "ASIABADPOLICY0000000", secretAccessKey: "s", sessionPolicy: "{" }),
      (error: Error) => error instanceof TypeError && /sessionPolicy is not a valid IAM policy document: Syntax errors in policy\./.test(error.message),
    );
  });
});

describe("hostile input", () => {
  const assumeRoleBody = `Action=AssumeRole&Version=2011-06-15&RoleArn=${encodeURIComponent(AGENT_ROLE)}&RoleSessionName=x1`;

  test("garbage, duplicates, wrong content types and unknown actions get AWS-shaped errors", async () => {
    const cases: { request: Parameters<typeof rawRequest>[0]; status: number; code: string }[] = [
      { request: { headers: FORM, body: "Action=AssumeRole&Version=%zz" }, status: 400, code: "MalformedQueryString" },
      { request: { headers: FORM, body: `${assumeRoleBody}&RoleArn=${encodeURIComponent(PLAIN_ROLE)}` }, status: 400, code: "MalformedQueryString" },
      { request: { headers: { "content-type": "application/json" }, body: '{"Action":"AssumeRole"}' }, status: 400, code: "MalformedQueryString" },
      { request: { headers: FORM, body: "Version=2011-06-15" }, status: 400, code: "MissingAction" },
      { request: { headers: FORM, body: "Action=GetCallerIdentity&Version=2011-06-15" }, status: 400, code: "InvalidAction" },
      { request: { headers: FORM, body: "Action=AssumeRole&Version=1999-01-01" }, status: 400, code: "InvalidAction" },
      { request: { headers: FORM, body: Buffer.from([0xff, 0xfe, 0x00, 0x26, 0x3d, 0x80]) }, status: 400, code: "MissingAction" },
      { request: { headers: FORM, body: "&&&===&Action&=" }, status: 400, code: "MissingAction" },
      { request: { method: "PUT", headers: FORM, body: assumeRoleBody }, status: 405, code: "MethodNotAllowed" },
      {
        request: { headers: { ...FORM, authorization: "AWS4-HMAC-SHA256 garbage", "x-amz-date": "20240101T000000Z" }, body: assumeRoleBody },
        status: 400,
        code: "IncompleteSignature",
      },
      {
        request: { headers: FORM, body: `Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=${encodeURIComponent(OIDC_ROLE)}&RoleSessionName=x1&WebIdentityToken=a.b.c` },
        status: 400,
        code: "InvalidIdentityToken",
      },
    ];
    for (const { request, status, code } of cases) {
      const response = await rawRequest(request);
      assert.equal(response.status, status, `${JSON.stringify(request.body?.toString())}: ${response.body}`);
      assert.equal(errorCode(response.body), code, response.body);
      assert.match(response.body, /^<ErrorResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/">\s*<Error>\s*<Type>Sender<\/Type>/);
      assert.match(response.body, /<RequestId>[0-9a-f-]{36}<\/RequestId>\s*<\/ErrorResponse>/);
    }
    assert.equal(sts.requests.at(-1)?.errorCode, "InvalidIdentityToken");
    await assumeRole();
  });

  test("a body over 64 KiB is 413, declared or streamed, and the server stays up", async () => {
    const declared = await rawRequest({ headers: FORM, body: `${assumeRoleBody}&Policy=${"x".repeat(200_000)}` });
    assert.equal(declared.status, 413);
    assert.equal(errorCode(declared.body), "RequestEntityTooLarge");
    const streamed = await rawRequest({ headers: { ...FORM, "transfer-encoding": "chunked" }, chunks: Array.from({ length: 40 }, () => Buffer.alloc(8192, 0x61)) });
    assert.equal(streamed.status, 413);
    const out = await assumeRole({}, stsClient({ requestHandler: new NodeHttpHandler() }));
    assert.match(out.Credentials?.AccessKeyId ?? "", /^ASIA/);
  });

  test("option mistakes are reported with the path to fix", async () => {
    await assert.rejects(startLocalSts({ roles: [{ arn: "agent" }] }), /options\.roles\.0\.arn: must be an IAM role ARN/);
    await assert.rejects(startLocalSts({ roles: [{ arn: AGENT_ROLE, maxSessionDurationSeconds: 60 }] }), /maxSessionDurationSeconds: must be at least 3600/);
    await assert.rejects(
      startLocalSts({ roles: [{ arn: OIDC_ROLE, webIdentity: { issuer: "http://insecure.example", jwks: { keys: [] } } }] }),
      /webIdentity\.issuer: must be an https:\/\/ URL/,
    );
    await assert.rejects(startLocalSts({ roles: [{ arn: AGENT_ROLE }, { arn: AGENT_ROLE }] }), /configured twice/);
  });
});
