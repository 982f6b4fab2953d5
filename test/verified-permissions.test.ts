import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { after, afterEach, before, describe, it } from "node:test";
import { GetPolicyCommand, GetSchemaCommand, ListPoliciesCommand, VerifiedPermissionsClient } from "@aws-sdk/client-verifiedpermissions";
import { tracerProvider } from "./support/tracing.js";
import { MemoryHandler } from "./support/memory-handler.js";
import { converseInput, CREDENTIALS, HAIKU, invoiceAgent, researchAgent } from "./support/governance.js";
import {
  AccessDeniedError,
  ConfigurationError,
  createGovernance,
  GovernedBedrockRuntimeClient,
  PolicyLoadError,
  policiesFromText,
  runAs,
  shippedSchema,
  watchPolicies,
  type DecisionRecord,
  type Governance,
  type WorkloadIdentity,
} from "../src/index.js";
import { wasm, wasmGeneration } from "../src/policy/cedar-wasm.js";
import {
  PolicySyncError,
  syncFromVerifiedPermissions,
  type VerifiedPermissionsSync,
  type VerifiedPermissionsSyncOptions,
  type VerifiedPermissionsSyncResult,
} from "../src/policy/verified-permissions.js";
import { startLocalVerifiedPermissions, type LocalVerifiedPermissions } from "../src/local-endpoint/index.js";

const STORE = "PSEXAMPLEabcdefg111111";
const BOOTSTRAP = `@id("bootstrap") forbid (principal, action, resource);`;
const BILLING_HAIKU = `permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"Converse", resource in Bedrock::Provider::"anthropic");`;
const RESEARCH = `@id("research-may-converse")\npermit (principal in Bedrock::Group::"research", action == Bedrock::Action::"Converse", resource);`;

interface Setup {
  avp: LocalVerifiedPermissions;
  client: VerifiedPermissionsClient;
  governance: Governance;
  bedrock: GovernedBedrockRuntimeClient;
  records: DecisionRecord[];
  start(options?: Partial<VerifiedPermissionsSyncOptions>): VerifiedPermissionsSync;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function setup(policies: Record<string, { statement: string } | { templateLinked: { policyTemplateId: string } }>, schema?: string): Promise<Setup> {
  const avp = await startLocalVerifiedPermissions({ policyStores: { [STORE]: { policies, ...(schema !== undefined ? { schema } : {}) } } });
  const client = new VerifiedPermissionsClient({ endpoint: avp.url, region: avp.region, credentials: { ...avp.credentials } });
  cleanup.push(() => avp.close(), () => client.destroy());
  const records: DecisionRecord[] = [];
  const governance = createGovernance({ environment: "test", policies: BOOTSTRAP, tracerProvider, onDecision: (r) => records.push(r) });
  const bedrock = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: new MemoryHandler(), governance, maxAttempts: 1 });
  const start = (options: Partial<VerifiedPermissionsSyncOptions> = {}) => {
    const sync = syncFromVerifiedPermissions(governance, { policyStoreId: STORE, client, ...options });
    cleanup.push(() => sync.close());
    return sync;
  };
  return { avp, client, governance, bedrock, records, start };
}

/** One Converse call through the whole governed pipeline; the decision record it left. */
async function decide(s: Setup, identity: WorkloadIdentity = invoiceAgent): Promise<DecisionRecord> {
  const before = s.records.length;
  await runAs(identity, () => s.bedrock.converse(converseInput(HAIKU))).catch((error: unknown) => {
    if (!(error instanceof AccessDeniedError)) throw error;
  });
  const record = s.records[before];
  assert.ok(record, "the call must leave a decision record");
  return record;
}

/** The SDK exception a call rejected with, as a record of its members. */
async function failure(promise: Promise<unknown>): Promise<Record<string, unknown> & { name: string }> {
  return promise.then(
    () => assert.fail("expected the call to fail"),
    (error: unknown) => error as Record<string, unknown> & { name: string },
  );
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => assert.fail("expected the sync to fail"),
    (error: unknown) => error as Error,
  );
}

/** The shipped schema as Cedar JSON, as a store would hold it. */
function shippedSchemaJson(): Record<string, any> {
  const json = wasm.schemaToJson(shippedSchema());
  assert.equal(json.type, "success");
  return structuredClone(json.json) as Record<string, any>;
}

describe("syncFromVerifiedPermissions", () => {
  it("loads the store through the real client (signed), and decisions name the Verified Permissions policy id", async () => {
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU }, "research-p1": { statement: RESEARCH } });
    assert.equal((await decide(s)).decision, "deny");
    const before = s.governance.policySetVersion;
    const sync = s.start();
    const result = await sync.sync();
    assert.equal(result.changed, true);
    assert.equal(result.previousVersion, before);
    assert.equal(result.version, s.governance.policySetVersion);
    assert.equal(result.schema, "shipped", "the store has no schema: the shipped one");
    assert.deepEqual(result.policies, [
      { policyId: "billing-haiku", name: "billing-haiku", source: `avp:${STORE}/billing-haiku` },
      { policyId: "research-p1", name: "research-may-converse", source: `avp:${STORE}/research-p1` },
    ]);
    assert.equal(sync.lastSync, result);

    const billing = await decide(s);
    assert.equal(billing.decision, "allow");
    assert.deepEqual(billing.policies, ["billing-haiku"], "a policy without @id is named by its policy id");
    assert.equal(billing.policySetVersion, result.version);
    const research = await decide(s, researchAgent);
    assert.deepEqual(research.policies, ["research-may-converse"], "a policy's @id names it");

    assert.deepEqual(
      s.avp.requests.map((r) => r.operation),
      ["ListPolicies", "GetPolicy", "GetPolicy", "GetSchema"],
    );
    assert.ok(s.avp.requests.every((r) => r.signature?.status === "valid" && r.signature.scheme === "sigv4"));
  });

  it("reads every page of a store of 120 policies (3 pages of ListPolicies)", async () => {
    const policies: Record<string, { statement: string }> = {};
    for (let i = 0; i < 120; i++) {
      policies[`p${String(i).padStart(3, "0")}`] = {
        statement: `permit (principal == Bedrock::Workload::"agent-${i}", action == Bedrock::Action::"Converse", resource);`,
      };
    }
    const s = await setup(policies);
    const result = await s.start().sync();
    assert.equal(result.policies.length, 120);
    assert.equal(s.governance.engine.policies.size, 120);
    const lists = s.avp.requests.filter((r) => r.operation === "ListPolicies");
    assert.equal(lists.length, 3);
    assert.equal((lists[0]?.input as { nextToken?: string }).nextToken, undefined);
    assert.ok((lists[1]?.input as { nextToken?: string }).nextToken);
    assert.ok((lists[2]?.input as { nextToken?: string }).nextToken);
    assert.equal(s.avp.requests.filter((r) => r.operation === "GetPolicy").length, 120);
    const last = await decide(s, { id: "agent-119" });
    assert.equal(last.decision, "allow");
    assert.deepEqual(last.policies, ["p119"]);
  });

  it("decides with a policy edited in the store at the next sync, and reloads nothing when the store did not change", async () => {
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU } });
    const getPolicies = () => s.avp.requests.filter((r) => r.operation === "GetPolicy").length;
    const sync = s.start();
    const first = await sync.sync();
    const engine = s.governance.engine;
    assert.equal(getPolicies(), 1);
    const again = await sync.sync();
    assert.equal(again.changed, false);
    assert.equal(again.version, first.version);
    assert.equal(s.governance.engine, engine, "an unchanged store keeps the engine (and its decision cache)");
    assert.equal(getPolicies(), 1, "a policy not updated since it was read is not read again");

    s.avp.putPolicy(STORE, "kill-switch", { statement: `forbid (principal, action == Bedrock::Action::"Converse", resource);` });
    const edited = await sync.sync();
    assert.equal(getPolicies(), 2, "only the new policy is read");
    assert.equal(edited.changed, true);
    assert.equal(edited.previousVersion, first.version);
    const record = await decide(s);
    assert.equal(record.decision, "deny");
    assert.deepEqual(record.policies, ["kill-switch"]);
    assert.equal(record.policySetVersion, edited.version);

    s.avp.putPolicy(STORE, "kill-switch", { statement: `forbid (principal, action == Bedrock::Action::"CountTokens", resource);` });
    await sync.sync();
    assert.equal((await decide(s)).decision, "allow");

    // Deleted and created again under the same id (dates are what tell the versions apart).
    s.avp.deletePolicy(STORE, "kill-switch");
    s.avp.putPolicy(STORE, "kill-switch", { statement: `forbid (principal, action == Bedrock::Action::"Converse", resource);` });
    await sync.sync();
    assert.equal((await decide(s)).decision, "deny");
  });

  it("keeps the last good set when a policy in the store is broken, naming the policy id and its line and column", async () => {
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU } });
    const sync = s.start();
    const good = await sync.sync();

    const broken = `permit (\n  principal,\n  action resource\n);`;
    s.avp.putPolicy(STORE, "p-broken", { statement: broken });
    const error = await rejection(sync.sync());
    assert.ok(error instanceof PolicyLoadError);
    assert.equal(error.problems[0]?.source, `avp:${STORE}/p-broken`);
    assert.match(error.message, new RegExp(`avp:${STORE}/p-broken:3:\\d+`));
    assert.equal(s.governance.policySetVersion, good.version);
    assert.equal(sync.lastSync, good);
    const kept = await decide(s);
    assert.equal(kept.decision, "allow");
    assert.equal(kept.policySetVersion, good.version);

    // A problem on the first line is reported at the statement's own column, not the @id put before it.
    const typo = `forbid (principal, action, resource) when { context.enviroment == "prod" };`;
    s.avp.putPolicy(STORE, "p-broken", { statement: typo });
    const invalid = await rejection(sync.sync());
    assert.ok(invalid instanceof PolicyLoadError);
    const direct = (() => {
      try {
        createGovernance({ environment: "test", policies: policiesFromText(typo, `avp:${STORE}/p-broken`) });
      } catch (e) {
        return e as PolicyLoadError;
      }
      return assert.fail("the typo must not validate");
    })();
    assert.equal(invalid.problems[0]?.line, 1);
    assert.equal(invalid.problems[0]?.column, direct.problems[0]?.column);
    assert.match(invalid.message, /enviroment/);
    assert.equal(s.governance.policySetVersion, good.version);

    s.avp.deletePolicy(STORE, "p-broken");
    const fixed = await sync.sync();
    assert.equal(fixed.version, good.version);
  });

  it("refuses a template-linked policy with a clear error, and keeps the set", async () => {
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU } });
    const sync = s.start();
    const good = await sync.sync();
    s.avp.putPolicy(STORE, "linked-1", { templateLinked: { policyTemplateId: "PTEXAMPLEabcdefg111111", principal: { entityType: "Bedrock::Workload", entityId: "a" } } });
    const error = await rejection(sync.sync());
    assert.ok(error instanceof PolicyLoadError);
    assert.equal(error.problems[0]?.source, `avp:${STORE}/linked-1`);
    assert.match(error.message, /linked-1 is template-linked \(template PTEXAMPLEabcdefg111111\): policy templates are not supported/);
    assert.equal(s.governance.policySetVersion, good.version);
    assert.equal(s.avp.requests.filter((r) => r.operation === "GetPolicy").length, 1, "nothing more is read once a template-linked policy is listed");

    // A static policy whose text is a template is refused too.
    s.avp.deletePolicy(STORE, "linked-1");
    s.avp.putPolicy(STORE, "template-text", { statement: "permit (principal == ?principal, action, resource);" });
    assert.match((await rejection(sync.sync())).message, /template-text is a template/);
  });

  it("validates against the store's schema: a policy valid only under it loads and decides", async () => {
    const schema = shippedSchemaJson();
    schema["Bedrock"].entityTypes["Team"] = {};
    schema["Bedrock"].entityTypes["Workload"].memberOfTypes.push("Team");
    const statement = `permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"Converse", resource)\nunless { principal in Bedrock::Team::"contractors" };`;
    const s = await setup({ "billing-not-contractors": { statement } }, JSON.stringify(schema));
    const result = await s.start().sync();
    assert.equal(result.schema, "store");
    const record = await decide(s);
    assert.equal(record.decision, "allow");
    assert.deepEqual(record.policies, ["billing-not-contractors"]);
    assert.equal(record.policySetVersion, result.version);

    // Under the shipped schema the same store does not load.
    const shipped = await rejection(s.start({ schema: "shipped" }).sync());
    assert.ok(shipped instanceof PolicyLoadError);
    assert.match(shipped.message, /Team/);
    assert.equal(s.governance.policySetVersion, result.version);
  });

  it("refuses a store schema that leaves out an action bedrock-warden decides, or its group", async () => {
    const schema = shippedSchemaJson();
    delete schema["Bedrock"].actions["CountTokens"];
    schema["Bedrock"].actions["Converse"].memberOf = [];
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU } }, JSON.stringify(schema));
    const before = s.governance.policySetVersion;
    const error = await rejection(s.start().sync());
    assert.ok(error instanceof PolicyLoadError);
    assert.equal(error.problems[0]?.source, `avp:${STORE}/schema`);
    assert.match(error.message, /CountTokens" is missing/);
    assert.match(error.message, /Converse" is not in Bedrock::Action::"ModelInvocation"/);
    assert.equal(s.governance.policySetVersion, before);

    s.avp.setSchema(STORE, "{ not json");
    assert.match((await rejection(s.start().sync())).message, /schema is not JSON/);
  });

  it("uses the shipped schema when the store has none (GetSchema: ResourceNotFoundException), unless the store's is required", async () => {
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU } });
    const result = await s.start().sync();
    assert.equal(result.schema, "shipped");
    assert.equal(s.avp.requests.find((r) => r.operation === "GetSchema")?.errorType, "ResourceNotFoundException");

    const required = await rejection(s.start({ schema: "store" }).sync());
    assert.ok(required instanceof PolicyLoadError);
    assert.match(required.message, /has no schema/);

    const calls = s.avp.requests.length;
    await s.start({ schema: "shipped" }).sync();
    assert.ok(!s.avp.requests.slice(calls).some((r) => r.operation === "GetSchema"), "schema: shipped never asks for the store's");
  });

  it("rides out throttling: the SDK retries, and the sync succeeds", async () => {
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU } });
    s.avp.failNext({ type: "ThrottlingException", status: 429, times: 2 });
    const result = await s.start().sync();
    assert.equal(result.changed, true);
    assert.deepEqual(
      s.avp.requests.slice(0, 3).map((r) => [r.operation, r.status, r.errorType]),
      [
        ["ListPolicies", 429, "ThrottlingException"],
        ["ListPolicies", 429, "ThrottlingException"],
        ["ListPolicies", 200, undefined],
      ],
    );
    assert.equal((await decide(s)).decision, "allow");
  });

  it("keeps the set when the service cannot be reached or refuses, with an error naming the operation", async () => {
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU } });
    const good = await s.start().sync();

    const gone = await startLocalVerifiedPermissions({ policyStores: {} });
    await gone.close();
    const unreachable = new VerifiedPermissionsClient({ endpoint: gone.url, region: gone.region, credentials: { ...gone.credentials }, maxAttempts: 2 });
    cleanup.push(() => unreachable.destroy());
    const error = await rejection(s.start({ client: unreachable }).sync());
    assert.ok(error instanceof PolicySyncError);
    assert.equal(error.code, "ERR_POLICY_SYNC");
    assert.equal(error.operation, "ListPolicies");
    assert.equal(error.policyStoreId, STORE);
    assert.match(error.message, /ECONNREFUSED/);
    assert.equal(s.governance.policySetVersion, good.version);
    assert.equal((await decide(s)).decision, "allow");

    s.avp.failNext({ type: "AccessDeniedException", status: 403, message: "not authorized to perform verifiedpermissions:ListPolicies" });
    const calls = s.avp.requests.length;
    const denied = await rejection(s.start().sync());
    assert.ok(denied instanceof PolicySyncError);
    assert.match(denied.message, /ListPolicies failed for policy store .*: AccessDeniedException: not authorized/);
    assert.equal(s.avp.requests.length, calls + 1, "an access denial is not retried");

    const missing = await rejection(s.start({ policyStoreId: "PSnotthere" }).sync());
    assert.ok(missing instanceof PolicySyncError);
    assert.match(missing.message, /ResourceNotFoundException/);
    assert.equal(s.governance.policySetVersion, good.version);
  });

  it("a store that never answers fails the sync after requestTimeoutMs, and periodic syncing goes on (it used to stop for good)", async () => {
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU } });
    const hung = { send: () => new Promise<never>(() => undefined) } as unknown as VerifiedPermissionsClient;
    const error = await rejection(s.start({ client: hung, requestTimeoutMs: 50 }).sync());
    assert.ok(error instanceof PolicySyncError);
    assert.equal(error.operation, "ListPolicies");
    assert.match(error.message, /did not answer within 50 ms \(requestTimeoutMs\)/);
    const failed: Error[] = [];
    const periodic = s.start({ client: hung, requestTimeoutMs: 20, intervalMs: 10, onError: (e) => failed.push(e) });
    await until("two periodic failures", () => failed.length >= 2);
    await periodic.close();
  });

  it("checks a store's statements against the policy text limits before any parser sees them: the set is kept, the engine untouched", async () => {
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU } });
    const before = s.governance.policySetVersion;
    // Deeper than Cedar's parser survives (~150), from a store of its own, and from the local endpoint (which lists it without a scope).
    const deep = `permit (principal, action, resource) when { ${"(".repeat(400)}true${")".repeat(400)} };`;
    const local = await setup({ deep: { statement: deep } });
    const generationBefore = wasmGeneration();
    const fromLocal = await rejection(local.start().sync());
    assert.ok(fromLocal instanceof PolicyLoadError, String(fromLocal));
    assert.equal(wasmGeneration(), generationBefore, "the local endpoint did not parse it either");
    const store = {
      send: async (command: object) => {
        if (command instanceof ListPoliciesCommand) return { policies: [{ policyId: "deep", policyType: "STATIC", definition: { static: {} } }] };
        if (command instanceof GetPolicyCommand) return { policyId: "deep", policyType: "STATIC", definition: { static: { statement: deep } } };
        throw Object.assign(new Error("no schema"), { name: "ResourceNotFoundException" });
      },
    } as unknown as VerifiedPermissionsClient;
    const generation = wasmGeneration();
    const error = await rejection(s.start({ client: store, schema: "shipped" }).sync());
    assert.ok(error instanceof PolicyLoadError, String(error));
    assert.match(error.message, /avp:PSEXAMPLEabcdefg111111\/deep:1:1: the policy nests brackets more than 64 deep/);
    assert.equal(wasmGeneration(), generation, "the wasm instance was not restarted: the parser never saw the text");
    assert.equal(s.governance.policySetVersion, before);
  });

  it("refuses an empty store (it would deny every call)", async () => {
    const s = await setup({});
    const before = s.governance.policySetVersion;
    const error = await rejection(s.start().sync());
    assert.ok(error instanceof PolicyLoadError);
    assert.match(error.message, /holds no policy/);
    assert.equal(s.governance.policySetVersion, before);
  });

  it("syncs periodically with intervalMs, reporting successes and failures", async () => {
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU } });
    const synced: VerifiedPermissionsSyncResult[] = [];
    const failed: { error: Error; kept: string }[] = [];
    const sync = s.start({ intervalMs: 30, onSync: (r) => synced.push(r), onError: (error, kept) => failed.push({ error, kept }) });
    const first = await sync.sync();
    s.avp.putPolicy(STORE, "kill-switch", { statement: `forbid (principal, action, resource);` });
    await until("the periodic sync to load the edit", () => synced.some((r) => r.changed));
    assert.equal((await decide(s)).decision, "deny");

    const good = s.governance.policySetVersion;
    s.avp.putPolicy(STORE, "kill-switch", { statement: `forbid (principal, action, resource) when { nope };` });
    await until("the failure report", () => failed.length > 0);
    assert.ok(failed[0]?.error instanceof PolicyLoadError);
    assert.match(failed[0]!.error.message, /kill-switch/);
    assert.equal(failed[0]?.kept, good);
    assert.notEqual(good, first.version);
    await sync.close();
    const count = synced.length + failed.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(synced.length + failed.length, count, "nothing runs after close()");
    await assert.rejects(sync.sync(), PolicySyncError);
  });

  it("runs one sync at a time: calls made during one share the next", async () => {
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU } });
    const sync = s.start();
    const a = sync.sync();
    const b = sync.sync();
    const c = sync.sync();
    assert.notEqual(a, b);
    assert.equal(b, c);
    await Promise.all([a, b]);
    assert.equal(s.avp.requests.filter((r) => r.operation === "ListPolicies").length, 2);
  });

  it("one source keeps a governance's policies: a second watcher or periodic sync is refused, naming the first, until it is closed", async () => {
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU } });
    const dir = mkdtempSync(join(tmpdir(), "warden-feed-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "p.cedar"), BILLING_HAIKU);
    const watcher = watchPolicies(s.governance, dir);
    const heldByWatcher = (e: unknown) => e instanceof ConfigurationError && e.message.includes(`watchPolicies("${dir}") already does`);
    assert.throws(() => s.start({ intervalMs: 60_000 }), heldByWatcher);
    assert.throws(() => watchPolicies(s.governance, dir), heldByWatcher);
    // A sync that runs only when asked to is a reload by hand: allowed.
    await s.start().sync();
    await watcher.close();
    const periodic = s.start({ intervalMs: 60_000 });
    assert.throws(
      () => watchPolicies(s.governance, dir),
      (e: unknown) => e instanceof ConfigurationError && e.message.includes(`syncFromVerifiedPermissions("${STORE}", { intervalMs }) already does`),
    );
    // Closing releases at once (a closed sync loads nothing more): another source may take over before close() settles.
    const closing = periodic.close();
    const next = watchPolicies(s.governance, dir);
    await closing;
    await next.close();
    // Another governance is another feed.
    const other = createGovernance({ environment: "test", policies: BOOTSTRAP });
    const second = syncFromVerifiedPermissions(other, { policyStoreId: STORE, client: s.client, intervalMs: 60_000 });
    await second.close();
  });

  it("a sync closed while it reads the store loads nothing", async () => {
    const s = await setup({ "billing-haiku": { statement: BILLING_HAIKU } });
    const before = s.governance.policySetVersion;
    const slow = { send: async (command: never) => (await delay(40), s.client.send(command)) } as unknown as VerifiedPermissionsClient;
    const sync = s.start({ client: slow });
    const pending = rejection(sync.sync());
    await sync.close();
    const error = await pending;
    assert.ok(error instanceof PolicySyncError && /was closed/.test(error.message), String(error));
    assert.equal(s.governance.policySetVersion, before);
  });

  it("refuses malformed options with a message that says what to change", async () => {
    const governance = createGovernance({ environment: "test", policies: BOOTSTRAP });
    assert.throws(() => syncFromVerifiedPermissions(governance, {} as VerifiedPermissionsSyncOptions), (e: unknown) => e instanceof ConfigurationError && /policyStoreId: is required/.test(e.message));
    assert.throws(() => syncFromVerifiedPermissions(governance, { policyStoreId: "bad id!" }), /policyStoreId: must be a policy store id/);
    assert.throws(() => syncFromVerifiedPermissions(governance, { policyStoreId: STORE, schema: "mine" as never }), /schema: must be "store" or "shipped"/);
    assert.throws(
      () => syncFromVerifiedPermissions(governance, { policyStoreId: STORE, client: new VerifiedPermissionsClient({}), clientConfig: {} }),
      /either client or clientConfig/,
    );
  });
});

describe("the local Verified Permissions endpoint", () => {
  let avp: LocalVerifiedPermissions;
  let client: VerifiedPermissionsClient;
  before(async () => {
    avp = await startLocalVerifiedPermissions({
      policyStores: { [STORE]: { policies: { p1: { statement: BILLING_HAIKU, description: "billing" } } } },
    });
    client = new VerifiedPermissionsClient({ endpoint: avp.url, region: avp.region, credentials: { ...avp.credentials }, maxAttempts: 1 });
  });
  after(async () => {
    client.destroy();
    await avp.close();
  });

  it("answers ListPolicies without statements and GetPolicy with them, with the scope, dates and effect", async () => {
    const { policies } = await client.send(new ListPoliciesCommand({ policyStoreId: STORE }));
    assert.equal(policies?.length, 1);
    const [item] = policies!;
    assert.equal(item?.policyType, "STATIC");
    assert.deepEqual(item?.definition, { static: { description: "billing" } });
    assert.equal(item?.effect, "Permit");
    assert.deepEqual(item?.actions, [{ actionType: "Bedrock::Action", actionId: "Converse" }]);
    assert.ok(item?.createdDate instanceof Date);
    const policy = await client.send(new GetPolicyCommand({ policyStoreId: STORE, policyId: "p1" }));
    assert.equal(policy.definition?.static?.statement, BILLING_HAIKU);
    assert.ok(policy.lastUpdatedDate instanceof Date);
  });

  it("answers errors the SDK turns into its modelled exceptions", async () => {
    const notFound = await failure(client.send(new GetPolicyCommand({ policyStoreId: STORE, policyId: "nope" })));
    assert.equal(notFound["name"], "ResourceNotFoundException");
    assert.equal(notFound["resourceType"], "POLICY");
    assert.equal(notFound["resourceId"], "nope");
    assert.equal((notFound["$metadata"] as { httpStatusCode?: number }).httpStatusCode, 404);

    const noSchema = await failure(client.send(new GetSchemaCommand({ policyStoreId: STORE })));
    assert.equal(noSchema["name"], "ResourceNotFoundException");
    assert.equal(noSchema["resourceType"], "SCHEMA");

    const tooMany = await failure(client.send(new ListPoliciesCommand({ policyStoreId: STORE, maxResults: 51 })));
    assert.equal(tooMany["name"], "ValidationException");
    assert.deepEqual((tooMany["fieldList"] as { path: string }[]).map((f) => f.path), ["maxResults"]);

    const badToken = await failure(client.send(new ListPoliciesCommand({ policyStoreId: STORE, nextToken: "forged" })));
    assert.equal(badToken["name"], "ValidationException");
  });

  it("verifies signatures: a wrong secret or a foreign service scope is refused", async () => {
    const wrong = new VerifiedPermissionsClient({
      endpoint: avp.url,
      region: avp.region,
      credentials: { accessKeyId: avp.credentials.accessKeyId, secretAccessKey: "not-the-secret" },
      maxAttempts: 1,
    });
    const error = await failure(wrong.send(new ListPoliciesCommand({ policyStoreId: STORE })));
    wrong.destroy();
    assert.equal(error.name, "InvalidSignatureException");
    assert.equal(avp.requests.at(-1)?.signature?.status, "invalid");

    const unknown = new VerifiedPermissionsClient({ endpoint: avp.url, region: avp.region, credentials: { accessKeyId: "AKIAUNKNOWN", secretAccessKey: "x" }, maxAttempts: 1 });
    const refused = await failure(unknown.send(new ListPoliciesCommand({ policyStoreId: STORE })));
    unknown.destroy();
    assert.equal(refused.name, "UnrecognizedClientException");
  });

  it("answers unknown operations and unsigned requests as the service does", async () => {
    const response = await fetch(avp.url, {
      method: "POST",
      headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": "VerifiedPermissions.ListPolicies" },
      body: "{}",
    });
    assert.equal(response.status, 403);
    const body = (await response.json()) as Record<string, string>;
    assert.match(body["__type"] ?? "", /MissingAuthenticationTokenException$/);
  });
});

async function until(what: string, predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
