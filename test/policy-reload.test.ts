import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, it } from "node:test";
import { tracerProvider } from "./support/tracing.js";
import { MemoryHandler } from "./support/memory-handler.js";
import { converseInput, CREDENTIALS, HAIKU, invoiceAgent } from "./support/governance.js";
import {
  AccessDeniedError,
  ConfigurationError,
  createGovernance,
  GovernedBedrockRuntimeClient,
  policiesFromDirectory,
  PolicyLoadError,
  runAs,
  type DecisionRecord,
  type Governance,
} from "../src/index.js";
import { watchPolicies, type PolicyReloadEvent, type PolicyWatcher } from "../src/policy/policy-watcher.js";

const PERMIT = `// billing may chat with Anthropic models
@id("billing-anthropic")
permit (principal in Bedrock::Group::"billing", action == Bedrock::Action::"Converse", resource in Bedrock::Provider::"anthropic");
`;
const FORBID = `@id("converse-off")
@reason("Converse is switched off")
forbid (principal, action == Bedrock::Action::"Converse", resource);
`;

interface Setup {
  dir: string;
  governance: Governance;
  client: GovernedBedrockRuntimeClient;
  records: DecisionRecord[];
  reloads: PolicyReloadEvent[];
  errors: { error: Error; kept: string }[];
  watcher: PolicyWatcher;
}

const open: { watcher: PolicyWatcher; dir: string }[] = [];
afterEach(async () => {
  for (const { watcher, dir } of open.splice(0)) {
    await watcher.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

function write(dir: string, name: string, text: string): void {
  mkdirSync(join(dir, name, ".."), { recursive: true });
  writeFileSync(join(dir, name), text);
}

function setup(files: Record<string, string>, options: { debounceMs?: number; pollMs?: number } = {}): Setup {
  const dir = mkdtempSync(join(tmpdir(), "warden-watch-"));
  for (const [name, text] of Object.entries(files)) write(dir, name, text);
  const records: DecisionRecord[] = [];
  const governance = createGovernance({ environment: "test", policies: policiesFromDirectory(dir), tracerProvider, onDecision: (r) => records.push(r) });
  const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: new MemoryHandler(), governance, maxAttempts: 1 });
  const reloads: PolicyReloadEvent[] = [];
  const errors: { error: Error; kept: string }[] = [];
  const watcher = watchPolicies(governance, dir, {
    debounceMs: options.debounceMs ?? 30,
    ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
    onReload: (event) => reloads.push(event),
    onError: (error, kept) => errors.push({ error, kept }),
  });
  open.push({ watcher, dir });
  return { dir, governance, client, records, reloads, errors, watcher };
}

/** One Converse call through the whole governed pipeline; the decision record it left. */
async function decide(s: Setup): Promise<DecisionRecord> {
  const before = s.records.length;
  await runAs(invoiceAgent, () => s.client.converse(converseInput(HAIKU))).catch((error: unknown) => {
    if (!(error instanceof AccessDeniedError)) throw error;
  });
  const record = s.records[before];
  assert.ok(record, "the call must leave a decision record");
  return record;
}

async function until(what: string, predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("watchPolicies", () => {
  it("reloads an edited file, and the next call decides under the new version, naming it", async () => {
    const s = setup({ "billing.cedar": PERMIT });
    const first = await decide(s);
    assert.equal(first.decision, "allow");
    assert.deepEqual(first.policies, ["billing-anthropic"]);
    assert.equal(s.reloads.length, 0, "an unchanged directory at start is not a reload");
    const v1 = s.governance.policySetVersion;
    assert.equal(first.policySetVersion, v1);

    write(s.dir, "billing.cedar", PERMIT + FORBID);
    await until("the reload", () => s.reloads.length === 1);
    const [event] = s.reloads;
    assert.equal(event?.previousVersion, v1);
    assert.notEqual(event?.version, v1);
    assert.deepEqual(event?.files, [join(s.dir, "billing.cedar")]);
    assert.deepEqual(event?.changed, [join(s.dir, "billing.cedar")]);
    assert.equal(s.watcher.version, event?.version);

    const second = await decide(s);
    assert.equal(second.decision, "deny");
    assert.deepEqual(second.policies, ["converse-off"]);
    assert.deepEqual(second.reasons, ["Converse is switched off"]);
    assert.equal(second.policySetVersion, event?.version);
    assert.deepEqual(s.errors, []);
  });

  it("keeps the last good set deciding on a syntax error and on a misspelled attribute, reports file:line, and reloads the fix", async () => {
    const s = setup({ "billing.cedar": PERMIT });
    const v1 = s.governance.policySetVersion;
    const file = join(s.dir, "billing.cedar");

    write(s.dir, "billing.cedar", `${PERMIT}\npermit (principal, action resource);\n`);
    await until("the syntax error", () => s.errors.length === 1);
    const syntax = s.errors[0]!;
    assert.ok(syntax.error instanceof PolicyLoadError);
    assert.equal(syntax.kept, v1);
    assert.equal(syntax.error.problems[0]?.source, file);
    assert.equal(syntax.error.problems[0]?.line, 5);
    assert.match(syntax.error.message, new RegExp(`${escape(file)}:5:\\d+`));
    assert.equal(s.watcher.lastError, syntax.error);
    const during = await decide(s);
    assert.equal(during.decision, "allow", "a broken edit must not close everything");
    assert.equal(during.policySetVersion, v1);

    write(s.dir, "billing.cedar", `${PERMIT}\n@id("prod-only")\nforbid (principal, action, resource)\n  when { context.enviroment != "test" };\n`);
    await until("the validation error", () => s.errors.length === 2);
    const typo = s.errors[1]!;
    assert.ok(typo.error instanceof PolicyLoadError);
    assert.equal(typo.kept, v1);
    assert.equal(typo.error.problems[0]?.source, file);
    assert.equal(typo.error.problems[0]?.line, 7);
    assert.match(typo.error.message, /enviroment/);
    assert.equal((await decide(s)).policySetVersion, v1);

    write(s.dir, "billing.cedar", `${PERMIT}\n@id("prod-only")\nforbid (principal, action, resource)\n  when { context.environment != "test" };\n`);
    await until("the fix to load", () => s.reloads.length === 1);
    assert.equal(s.reloads[0]?.previousVersion, v1);
    assert.equal(s.watcher.lastError, undefined);
    const after = await decide(s);
    assert.equal(after.decision, "allow");
    assert.equal(after.policySetVersion, s.reloads[0]?.version);
    assert.notEqual(after.policySetVersion, v1);
    assert.equal(s.errors.length, 2, "each broken state is reported once");
  });

  it("reports a reverted broken edit as a reload of the same version", async () => {
    const s = setup({ "billing.cedar": PERMIT });
    const v1 = s.governance.policySetVersion;
    write(s.dir, "billing.cedar", "permit (");
    await until("the error", () => s.errors.length === 1);
    write(s.dir, "billing.cedar", PERMIT);
    await until("the recovery", () => s.reloads.length === 1);
    assert.equal(s.reloads[0]?.version, v1);
    assert.equal(s.reloads[0]?.previousVersion, v1);
  });

  it("follows an editor's atomic save: a temporary file renamed over the policy", async () => {
    const s = setup({ "billing.cedar": PERMIT });
    const v1 = s.governance.policySetVersion;
    write(s.dir, ".billing.cedar.swp", PERMIT + FORBID);
    renameSync(join(s.dir, ".billing.cedar.swp"), join(s.dir, "billing.cedar"));
    await until("the reload", () => s.reloads.length === 1);
    assert.notEqual(s.reloads[0]?.version, v1);
    assert.equal((await decide(s)).decision, "deny");
  });

  it("follows files added, deleted, and in subdirectories", async () => {
    const s = setup({ "billing.cedar": PERMIT, "kill-switch.cedar": FORBID });
    assert.equal((await decide(s)).decision, "deny");

    unlinkSync(join(s.dir, "kill-switch.cedar"));
    await until("the deletion", () => s.reloads.length === 1);
    assert.deepEqual(s.reloads[0]?.changed, [join(s.dir, "kill-switch.cedar")]);
    assert.equal((await decide(s)).decision, "allow");

    write(s.dir, "teams/ops/kill-switch.cedar", FORBID);
    await until("the new subdirectory's file", () => s.reloads.length === 2);
    assert.deepEqual(s.reloads[1]?.files, [join(s.dir, "billing.cedar"), join(s.dir, "teams/ops/kill-switch.cedar")]);
    assert.equal((await decide(s)).decision, "deny");

    // A file removed from the subdirectory that appeared after the watch started (emptying it instead
    // would be taken for a save cut short: see below).
    unlinkSync(join(s.dir, "teams/ops/kill-switch.cedar"));
    await until("the removed file", () => s.reloads.length === 3);
    assert.equal((await decide(s)).decision, "allow");
  });

  it("keeps the set and reports it when the directory is emptied, and loads what comes back", async () => {
    const s = setup({ "billing.cedar": PERMIT, "other.cedar": FORBID });
    const v1 = s.governance.policySetVersion;
    unlinkSync(join(s.dir, "billing.cedar"));
    unlinkSync(join(s.dir, "other.cedar"));
    await until("the report", () => s.errors.length === 1);
    assert.ok(s.errors[0]?.error instanceof ConfigurationError);
    assert.match(s.errors[0]!.error.message, /holds no \.cedar file/);
    assert.equal(s.errors[0]?.kept, v1);
    assert.equal(s.reloads.length, 0);
    const during = await decide(s);
    assert.equal(during.decision, "deny", "the kept set still forbids");
    assert.equal(during.policySetVersion, v1);

    write(s.dir, "billing.cedar", PERMIT);
    await until("the reload", () => s.reloads.length === 1);
    assert.equal((await decide(s)).decision, "allow");
  });

  it("a policy file emptied (a save cut short) keeps its forbids deciding, reported; deleting it removes them", async () => {
    const s = setup({ "billing.cedar": PERMIT, "other.cedar": FORBID });
    const v1 = s.governance.policySetVersion;
    write(s.dir, "other.cedar", "// emptied\n");
    await until("the report", () => s.errors.length === 1);
    assert.match(s.errors[0]!.error.message, /held policies and now holds none/);
    assert.equal((await decide(s)).decision, "deny", "the forbid still decides");
    assert.equal(s.governance.policySetVersion, v1);
    unlinkSync(join(s.dir, "other.cedar"));
    await until("the reload", () => s.reloads.length === 1);
    assert.equal((await decide(s)).decision, "allow");
  });

  it("reports a file that cannot be read (a dangling link: the file vanished) after retrying, and keeps the set", async () => {
    const s = setup({ "billing.cedar": PERMIT });
    const v1 = s.governance.policySetVersion;
    symlinkSync(join(s.dir, "gone", "target.cedar"), join(s.dir, "ghost.cedar"));
    await until("the report", () => s.errors.length === 1);
    assert.ok(s.errors[0]?.error instanceof ConfigurationError);
    assert.match(s.errors[0]!.error.message, /ENOENT/);
    assert.equal((await decide(s)).policySetVersion, v1);

    unlinkSync(join(s.dir, "ghost.cedar"));
    await until("the recovery", () => s.reloads.length === 1);
    assert.equal(s.reloads[0]?.version, v1);
  });

  it("debounces rapid edits into one reload of the last content", async () => {
    // Generous against a loaded machine: a write delayed past the debounce would be a second reload.
    const s = setup({ "billing.cedar": PERMIT }, { debounceMs: 500 });
    for (let i = 0; i < 20; i++) {
      write(s.dir, "billing.cedar", `${PERMIT}// edit ${i}\n${i === 19 ? FORBID : ""}`);
      await sleep(3);
    }
    await until("the reload", () => s.reloads.length === 1);
    await sleep(700);
    assert.equal(s.reloads.length, 1, "twenty writes, one reload");
    assert.deepEqual(s.errors, []);
    assert.equal((await decide(s)).decision, "deny", "the last content is the one loaded");
  });

  it("picks up changes by polling the content hash when no event arrives", async () => {
    // The events wait out a one-minute debounce: only the poll can see the change in time.
    const s = setup({ "billing.cedar": PERMIT }, { debounceMs: 60_000, pollMs: 50 });
    write(s.dir, "billing.cedar", PERMIT + FORBID);
    await until("the poll's reload", () => s.reloads.length === 1, 2_000);
    assert.equal((await decide(s)).decision, "deny");
  });

  it("a poll does not load a file caught half-written: a change loads only once the next poll reads it unchanged", async () => {
    const s = setup({ "billing.cedar": PERMIT + FORBID }, { debounceMs: 60_000, pollMs: 100 });
    await sleep(150); // between two polls
    // A save cut between its two policies (a valid, smaller set: the forbid gone), for most of a
    // poll interval (a poll nearly always reads it; two polls never can) ...
    write(s.dir, "billing.cedar", PERMIT);
    await sleep(90);
    // ... and finished.
    write(s.dir, "billing.cedar", `${PERMIT}${FORBID}\n// saved\n`);
    await until("the poll's reload", () => s.reloads.length === 1, 2_000);
    await sleep(250);
    assert.equal(s.reloads.length, 1, "the half-written state was never loaded");
    assert.equal((await decide(s)).decision, "deny");
  });

  it("follows a directory removed and created again (a replaced mount)", async () => {
    const s = setup({ "billing.cedar": PERMIT });
    const v1 = s.governance.policySetVersion;
    rmSync(s.dir, { recursive: true });
    await until("the report", () => s.errors.length === 1);
    assert.match(s.errors[0]!.error.message, /Cannot read policy directory/);
    assert.equal((await decide(s)).policySetVersion, v1);

    mkdirSync(s.dir);
    write(s.dir, "billing.cedar", PERMIT + FORBID);
    await until("the reload from the new directory", () => s.reloads.length === 1);
    assert.equal((await decide(s)).decision, "deny");
  });

  it("reads the directory at start (an edit made before the watch is not missed), and check() reads it on demand", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-watch-"));
    write(dir, "billing.cedar", PERMIT);
    const governance = createGovernance({ environment: "test", policies: policiesFromDirectory(dir) });
    const v1 = governance.policySetVersion;
    write(dir, "billing.cedar", PERMIT + FORBID);
    const reloads: PolicyReloadEvent[] = [];
    const watcher = watchPolicies(governance, dir, { debounceMs: 60_000, onReload: (e) => reloads.push(e), onError: () => undefined });
    open.push({ watcher, dir });
    assert.equal(reloads.length, 1);
    assert.notEqual(governance.policySetVersion, v1);
    assert.equal(watcher.check(), "unchanged");
    write(dir, "billing.cedar", PERMIT);
    assert.equal(watcher.check(), "reloaded");
    assert.equal(governance.policySetVersion, v1);
    write(dir, "billing.cedar", "nonsense");
    assert.equal(watcher.check(), "failed");
    assert.equal(governance.policySetVersion, v1);
  });

  it("warns by default, naming the kept version and the file:line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-watch-"));
    write(dir, "billing.cedar", PERMIT);
    const governance = createGovernance({ environment: "test", policies: policiesFromDirectory(dir) });
    const watcher = watchPolicies(governance, dir, { debounceMs: 60_000 });
    open.push({ watcher, dir });
    const warnings: Error[] = [];
    const listener = (warning: Error) => warnings.push(warning);
    process.on("warning", listener);
    try {
      write(dir, "billing.cedar", "permit (principal, action, resource)\nwhen { nope };");
      assert.equal(watcher.check(), "failed");
      await until("the warning", () => warnings.some((w) => w.name === "BedrockWardenWarning" && w.message.includes(dir)));
    } finally {
      process.off("warning", listener);
    }
    const warning = warnings.find((w) => w.name === "BedrockWardenWarning" && w.message.includes(dir))!;
    assert.match(warning.message, new RegExp(`${escape(governance.policySetVersion)} keeps deciding`));
    assert.match(warning.message, new RegExp(`${escape(join(dir, "billing.cedar"))}:2:\\d+`));
  });

  it("refuses malformed options with a message that says what to change", () => {
    const governance = createGovernance({ environment: "test", policies: PERMIT });
    assert.throws(() => watchPolicies(governance, "/nowhere", { debounceMs: -1 }), (e: unknown) => e instanceof ConfigurationError && /options\.debounceMs: must be 0 or more/.test(e.message));
    assert.throws(() => watchPolicies(governance, "/nowhere", { pollMs: 1.5 }), /options\.pollMs: must be a whole number/);
    assert.throws(() => watchPolicies(governance, "/nowhere", { onReload: "yes" as never }), /options\.onReload: must be a function/);
    assert.throws(() => watchPolicies({} as Governance, "/nowhere"), /governance from createGovernance/);
  });

  it("stops on close(): later edits change nothing", async () => {
    const s = setup({ "billing.cedar": PERMIT });
    const v1 = s.governance.policySetVersion;
    await s.watcher.close();
    await s.watcher.close();
    write(s.dir, "billing.cedar", PERMIT + FORBID);
    await sleep(200);
    assert.equal(s.governance.policySetVersion, v1);
    assert.equal(s.reloads.length, 0);
    assert.equal(s.watcher.check(), "unchanged");
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
