import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { exporter } from "./support/tracing.js";
import {
  AccessDeniedError,
  ConfigurationError,
  createGovernance,
  policiesFromDirectory,
  policiesFromFile,
  PolicyEvaluationError,
  PolicyLoadError,
  runAs,
  shippedSchema,
  WARDEN,
} from "../src/index.js";
import { CedarEngine } from "../src/policy/cedar-engine.js";
import { wasm, wasmGeneration } from "../src/policy/cedar-wasm.js";
import { MAX_CONDITIONALS, MAX_NESTING, MAX_OPERATORS } from "../src/policy/policy-text-limits.js";
import { BASE_POLICIES, converseInput, harness, invoiceAgent, TITAN } from "./support/governance.js";

beforeEach(() => exporter.reset());

function tempDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "warden-policies-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const loadError = (fn: () => unknown): PolicyLoadError => {
  try {
    fn();
  } catch (error) {
    if (error instanceof PolicyLoadError) return error;
    throw error;
  }
  assert.fail("expected a PolicyLoadError");
};

describe("loading policies", () => {
  it("refuses text nested beyond what Cedar's parser survives, with its line, before the parser sees it; what is within the limits loads", () => {
    const nested = (depth: number) => `permit (principal, action, resource)\nwhen { ${"(".repeat(depth)}context.streaming${")".repeat(depth)} };`;
    assert.ok(createGovernance({ environment: "test", policies: nested(MAX_NESTING - 1) }));
    const generation = wasmGeneration();
    for (const [text, problem, line] of [
      // The brackets of comments and strings do not count; the problem is on the line of the bracket too many.
      [`// a comment (with brackets\n@reason("((((")\n${nested(MAX_NESTING + 100)}`, /nests brackets more than 64 deep/, 4],
      [`permit (principal, action, resource) when { ${Array(MAX_OPERATORS + 1).fill("context.streaming").join(" || ")} };`, /more than 1000 operators/, 1],
      [`permit (principal, action, resource) when { ${"if context.streaming then true else ".repeat(MAX_CONDITIONALS + 1)} false };`, /more than 100 if-expressions/, 1],
    ] as const) {
      const error = (() => {
        try {
          createGovernance({ environment: "test", policies: text });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      assert.ok(error instanceof PolicyLoadError, String(error));
      assert.match(error.message, problem);
      assert.equal(error.problems[0]!.line, line);
    }
    assert.equal(wasmGeneration(), generation, "refused before Cedar saw it: the engine was never at risk");
  });

  it("refuses text holding a character that lays it out otherwise than Cedar reads it: a policy hidden in a comment after U+2028, bidirectional overrides", () => {
    const forbid = `@id("no-opus") forbid (principal, action, resource == Bedrock::Model::"anthropic.claude-3-opus-20240229-v1:0");`;
    for (const [text, code, line] of [
      // An editor shows the forbid on a line of its own; Cedar reads it as the rest of the comment.
      [`permit (principal, action, resource);\n// the forbid below stops opus\u2028${forbid}`, "2028", 2],
      [`permit (principal, action, resource) when { context.environment == "prod\u202Eduction" };`, "202E", 1],
      [`permit (principal, action, resource);\n\n// \u2066hidden\u2069`, "2066", 3],
    ] as const) {
      assert.throws(
        () => createGovernance({ environment: "test", policies: text }),
        (e: unknown) => e instanceof PolicyLoadError && new RegExp(`holds U\\+${code}`).test(e.message) && e.problems[0]?.line === line,
        code,
      );
    }
  });

  it("a text that makes cedar-wasm itself fail is a PolicyLoadError, and the engine is replaced so that the next load works", () => {
    const original = wasm.policySetTextToParts;
    const generation = wasmGeneration();
    // The parser's own failure, as the real one throws it (measured with 200 nested parentheses).
    const failing = new Proxy(original, {
      apply() {
        const trap = new Error("memory access out of bounds");
        trap.name = "RuntimeError";
        throw trap;
      },
    });
    wasm.policySetTextToParts = failing;
    try {
      assert.throws(() => createGovernance({ environment: "test", policies: `permit (principal, action, resource);` }), (e: unknown) => {
        assert.ok(e instanceof PolicyLoadError);
        assert.match(e.message, /the Cedar engine failed reading this text \(RuntimeError: memory access out of bounds\)/);
        return true;
      });
    } finally {
      wasm.policySetTextToParts = original;
    }
    assert.equal(wasmGeneration(), generation);
    // The real parser failing (text past the limits sent straight to the guarded entry point): the
    // instance is replaced, and loading works again at once.
    assert.throws(() => wasm.policySetTextToParts(`permit (principal, action, resource) when { ${"(".repeat(400)}true${")".repeat(400)} };`));
    assert.equal(wasmGeneration(), generation + 1, "the corrupted instance was replaced");
    assert.ok(createGovernance({ environment: "test", policies: `permit (principal, action, resource);` }));
  });

  it("loads a directory recursively, in a stable order, and names policies by @id or file:line", () => {
    const dir = tempDir({
      "b.cedar": `permit (principal, action == Bedrock::Action::"Converse", resource);`,
      "nested/a.cedar": `// a comment\n\n@id("a-policy")\npermit (principal, action == Bedrock::Action::"CountTokens", resource);`,
      "ignored.txt": "not cedar",
    });
    const governance = createGovernance({ environment: "test", policies: policiesFromDirectory(dir) });
    assert.deepEqual([...governance.engine.policies.keys()].sort(), ["a-policy", join(dir, "b.cedar") + ":1"].sort());
    assert.match(governance.policySetVersion, /^sha256:[0-9a-f]{64}$/);
  });

  it("reads a Kubernetes ConfigMap mount once: hidden ..<timestamp> directories are skipped, the symlinks beside them followed", () => {
    const dir = tempDir({ "..2026_11_27_21_00_00.000000001/guard.cedar": `@id("guard") permit (principal, action == Bedrock::Action::"Converse", resource);` });
    symlinkSync("..2026_11_27_21_00_00.000000001", join(dir, "..data"));
    symlinkSync(join("..data", "guard.cedar"), join(dir, "guard.cedar"));
    const governance = createGovernance({ environment: "test", policies: policiesFromDirectory(dir) });
    assert.deepEqual([...governance.engine.policies.keys()], ["guard"]);
  });

  it("fails start-up on a misspelled attribute, naming the file, the line and the validator's message", () => {
    const dir = tempDir({
      "ok.cedar": `permit (principal, action, resource);`,
      "typo.cedar": `permit (principal, action == Bedrock::Action::"Converse", resource)\n  when {\n    context.enviroment == "prod"\n  };`,
    });
    const error = loadError(() => createGovernance({ environment: "test", policies: policiesFromDirectory(dir) }));
    assert.equal(error.code, "ERR_POLICY_INVALID");
    assert.equal(error.problems.length, 1);
    const [problem] = error.problems;
    assert.equal(problem?.source, join(dir, "typo.cedar"));
    assert.equal(problem?.line, 3);
    assert.equal(problem?.column, 5);
    assert.match(problem?.message ?? "", /enviroment/);
    assert.match(error.message, /typo\.cedar:3:5/);
  });

  it("names the policy by its @id and reports a mistake once, not once per action", () => {
    const error = loadError(() =>
      createGovernance({ environment: "test", policies: `@id("token-cap")\npermit (principal, action, resource) when { context.maxTokens < 10 };` }),
    );
    assert.equal(error.problems.length, 1);
    assert.match(error.problems[0]?.message ?? "", /for policy `token-cap`/);
    assert.match(error.problems[0]?.message ?? "", /\d+ actions \(ApplyGuardrail, Converse, ConverseStream, /);
    assert.equal(error.problems[0]?.line, 2);
  });

  it("reports a syntax error with its location", () => {
    const file = join(tempDir({ "broken.cedar": `permit (principal, action, resource);\nforbid (principal action, resource);` }), "broken.cedar");
    const error = loadError(() => createGovernance({ environment: "test", policies: policiesFromFile(file) }));
    assert.equal(error.problems[0]?.source, file);
    assert.equal(error.problems[0]?.line, 2);
  });

  it("refuses unknown entity types, duplicate ids, templates, empty directories and unreadable files", () => {
    assert.match(
      loadError(() => createGovernance({ environment: "test", policies: `permit (principal == Bedrock::Robot::"x", action, resource);` })).message,
      /Robot/,
    );
    const duplicate = `@id("same") permit (principal, action, resource);\n@id("same") forbid (principal, action, resource);`;
    assert.match(loadError(() => createGovernance({ environment: "test", policies: duplicate })).message, /"same" is already used at inline:1/);
    assert.match(
      loadError(() => createGovernance({ environment: "test", policies: `permit (principal == ?principal, action, resource);` })).message,
      /templates are not supported/,
    );
    assert.throws(() => policiesFromDirectory(tempDir({})), (e: unknown) => e instanceof ConfigurationError && /no \.cedar file/.test(e.message));
    assert.throws(() => policiesFromFile("/nonexistent/policy.cedar"), (e: unknown) => e instanceof ConfigurationError && /Cannot read policy file/.test(e.message));
  });

  it("validates options with messages that name the option", () => {
    const bad: [unknown, RegExp][] = [
      [{ policies: "" }, /governance\.environment: is required/],
      [{ environment: "", policies: "" }, /governance\.environment: must not be empty/],
      [{ environment: "test" }, /governance\.policies/],
      [{ environment: "test", policies: 42 }, /governance\.policies/],
      [{ environment: "test", policies: "", captureContent: "yes" }, /governance\.captureContent/],
      [{ environment: "test", policies: "", onDecision: "log" }, /governance\.onDecision/],
      [{ environment: "test", policies: "", tracerProvider: {} }, /governance\.tracerProvider/],
      [{ environment: "test", policies: "", typo: true }, /typo/],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => createGovernance(options as never), (e: unknown) => e instanceof ConfigurationError && message.test(e.message), String(message));
    }
  });

  it("checks a schema once per text in the process: a reload or another governance does not check it again; a changed one is checked anew", () => {
    const text = `namespace App { entity User; entity Doc; action Read appliesTo { principal: [User], resource: [Doc], context: { level?: Long } }; }`;
    const policies = [{ source: "app.cedar", text: `permit (principal, action == App::Action::"Read", resource) when { context has level && context.level > 1 };` }];
    const original = wasm.checkParseSchema;
    let checks = 0;
    wasm.checkParseSchema = (schema) => (checks++, original(schema));
    try {
      const request = (level: number) => ({ principal: { type: "App::User", id: "u" }, action: { type: "App::Action", id: "Read" }, resource: { type: "App::Doc", id: "d" }, context: { level }, entities: [] });
      const first = new CedarEngine(policies, text);
      const second = new CedarEngine(policies, text);
      assert.equal(checks, 1, "checked once for both engines");
      assert.equal(second.authorize(request(2)).effect, "allow");
      assert.equal(first.authorize(request(0)).effect, "deny");
      // Validated against the kept form as against the text: the same message for the same mistake.
      const mistake = [{ source: "app.cedar", text: `permit (principal, action == App::Action::"Read", resource) when { context.levle > 1 };` }];
      const messages = [loadError(() => new CedarEngine(mistake, text)).message];
      assert.equal(checks, 1);
      // A schema given as JSON is kept as a copy: the caller's object is neither frozen nor read again.
      const json = wasm.schemaToJson(text);
      assert.equal(json.type, "success");
      const object = json.type === "success" ? json.json : {};
      new CedarEngine(policies, object);
      assert.equal(checks, 2, "another text (its JSON) is checked");
      assert.equal(Object.isFrozen(object), false);
      messages.push(loadError(() => new CedarEngine(mistake, object)).message);
      assert.equal(messages[0], messages[1], "the same validation, whichever form");
      assert.match(messages[0]!, /levle/);
      // The JSON of a schema, given as text, is not a schema text: refused, whatever was loaded before.
      assert.throws(() => new CedarEngine(policies, JSON.stringify(object)), PolicyLoadError);
      // Changed: another key, checked again — a broken one refused every time, never kept.
      (object as unknown as { App: { entityTypes: Record<string, unknown> } }).App.entityTypes["Doc"] = { memberOfTypes: ["Nowhere"] };
      assert.throws(() => new CedarEngine(policies, object), PolicyLoadError);
      assert.throws(() => new CedarEngine(policies, object), PolicyLoadError);
      assert.equal(checks, 5);
    } finally {
      wasm.checkParseSchema = original;
    }
  });

  it("ships a schema that parses and documents the entity model", () => {
    const schema = shippedSchema();
    for (const name of ["Workload", "Group", "Model", "Provider", "Guardrail", "AsyncInvocation", "ModelInvocation", "toolsOffered", "dataSensitivity", "maxTokens"]) {
      assert.ok(schema.includes(name), `the schema mentions ${name}`);
    }
  });
});

describe("failing closed", () => {
  // Taken before each test: an earlier test may have replaced the instance (and its entry points).
  let original = { ...wasm };
  beforeEach(() => {
    original = { ...wasm };
  });
  afterEach(() => Object.assign(wasm, original));

  it("denies when a forbid policy errors during evaluation (Cedar would skip it)", async () => {
    // 2^62 * 4 overflows Cedar's 64-bit integers at evaluation time; validation cannot see it.
    const { client, handler } = harness(`
      permit (principal, action, resource);
      @id("overflowing-forbid")
      forbid (principal, action, resource) when { context has maxTokens && context.maxTokens * 4611686018427387904 > 0 };
    `);
    const error = await runAs(invoiceAgent, () => client.converse(converseInput(undefined, { inferenceConfig: { maxTokens: 4 } }))).catch((e: unknown) => e);
    assert.ok(error instanceof PolicyEvaluationError, String(error));
    assert.equal(error.code, "ERR_POLICY_EVALUATION");
    assert.match(error.decision.errors.join(), /overflowing-forbid/);
    assert.equal(handler.requests.length, 0);
  });

  // The tests of cedar-wasm's faults evaluate in wasm: the JavaScript evaluator would decide these requests without it.
  it("denies on an engine error, and says so in the error, the span and the record", async () => {
    const { client, handler, records } = harness(`permit (principal, action, resource);`, undefined, undefined, "wasm");
    wasm.statefulIsAuthorized = () => {
      throw new Error("simulated engine crash");
    };
    const error = await runAs(invoiceAgent, () => client.converse(converseInput())).catch((e: unknown) => e);
    assert.ok(error instanceof PolicyEvaluationError);
    assert.match(error.decision.errors.join(), /simulated engine crash/);
    assert.equal(handler.requests.length, 0);
    assert.equal(records[0]?.decision, "deny");
    const span = exporter.getFinishedSpans()[0];
    assert.equal(span?.attributes[WARDEN.DECISION], "deny");
    assert.match(String(span?.attributes[WARDEN.DECISION_ERRORS]), /simulated engine crash/);
  });

  it("a wasm trap: the call is denied, the instance replaced, every engine preparses again, and decisions go on unchanged", async () => {
    const { client, handler, records } = harness(`${BASE_POLICIES}\n@id("no-titan") forbid (principal, action, resource == Bedrock::Model::"${TITAN}");`, undefined, undefined, "wasm");
    const other = harness(`permit (principal, action, resource);`, undefined, undefined, "wasm"); // another engine, in the same wasm instance
    const before = wasmGeneration();
    wasm.statefulIsAuthorized = () => {
      const trap = new Error("memory access out of bounds");
      trap.name = "RuntimeError";
      throw trap;
    };
    await assert.rejects(runAs(invoiceAgent, () => client.converse(converseInput())), (e: unknown) => e instanceof PolicyEvaluationError && /was restarted; this call was denied/.test(e.decision.errors.join()));
    assert.equal(wasmGeneration(), before + 1, "a fresh instance");
    assert.equal(handler.requests.length, 0);
    // The restart rebound every entry point to the fresh instance (the injected trap is gone with the old one).
    await runAs(invoiceAgent, () => client.converse(converseInput()));
    await assert.rejects(runAs(invoiceAgent, () => client.converse(converseInput(TITAN))), (e: unknown) => e instanceof AccessDeniedError && e.decision.policies.includes("no-titan"));
    await runAs(invoiceAgent, () => other.client.converse(converseInput()));
    assert.equal(handler.requests.length, 1);
    assert.deepEqual(records.map((r) => [r.decision, r.outcome]), [["deny", "denied"], ["allow", "completed"], ["deny", "denied"]]);
    assert.match(records[0]!.errors.join(), /restarted/);
  });

  it("when the policies cannot be preparsed again after a restart, calls are denied, saying to restart the process, until they can be", async () => {
    const { client, handler } = harness(`permit (principal, action, resource);`, undefined, undefined, "wasm");
    wasm.statefulIsAuthorized = () => {
      const trap = new Error("unreachable");
      trap.name = "RuntimeError";
      throw trap;
    };
    await assert.rejects(runAs(invoiceAgent, () => client.converse(converseInput())), PolicyEvaluationError);
    const restarted = { ...wasm };
    wasm.preparsePolicySet = () => {
      throw new Error("out of memory");
    };
    for (let i = 0; i < 2; i++) {
      const error = await runAs(invoiceAgent, () => client.converse(converseInput())).catch((e: unknown) => e);
      assert.ok(error instanceof AccessDeniedError);
      assert.match(error.decision.errors.join(), /could not preparse the policies that apply \(out of memory\).*restart the process/);
    }
    assert.equal(handler.requests.length, 0);
    Object.assign(wasm, restarted);
    await runAs(invoiceAgent, () => client.converse(converseInput()));
    assert.equal(handler.requests.length, 1, "preparsed in the new instance: decided again");
  });

  it("denies when Cedar answers failure", async () => {
    const { client, handler } = harness(`permit (principal, action, resource);`, undefined, undefined, "wasm");
    wasm.statefulIsAuthorized = () => ({ type: "failure", errors: [{ message: "bad request", help: null, code: null, url: null, severity: null }], warnings: [] });
    await assert.rejects(runAs(invoiceAgent, () => client.converse(converseInput())), PolicyEvaluationError);
    assert.equal(handler.requests.length, 0);
  });

  it("refuses a request that is not plain data (a getter, a proxy): read more than once, it could be decided on one value and memoized under another", () => {
    // The policy reads context whole, so the caller's context object itself is what wasm and the memo key read.
    const { governance } = harness(`@id("small") permit (principal, action, resource) when { context has maxTokens && context.maxTokens < 100 && (if true then context else context).environment == "e" };`);
    const request = (context: object) => ({
      principal: { type: "Bedrock::Workload", id: "w" },
      action: { type: "Bedrock::Action", id: "Converse" },
      resource: { type: "Bedrock::Model", id: "m" },
      context: context as never,
      entities: [],
    });
    let reads = 0;
    const shifting = { environment: "e" };
    Object.defineProperty(shifting, "maxTokens", { enumerable: true, get: () => (++reads <= 2 ? 50 : 5000) });
    const hostile = governance.engine.authorize(request(shifting));
    assert.equal(hostile.effect, "deny");
    assert.match(hostile.errors[0] ?? "", /malformed authorization request: context\.maxTokens is an accessor \(a getter\)/);
    assert.equal(reads, 0, "never read");
    const proxied = governance.engine.authorize(request({ environment: "e", tags: new Proxy(["a"], {}) }));
    assert.match(proxied.errors[0] ?? "", /context\.tags is a proxy/);
    assert.match(governance.engine.authorize({ ...request({ environment: "e" }), principal: new Proxy({ type: "Bedrock::Workload", id: "w" }, {}) }).errors[0] ?? "", /principal must be an entity reference/);
    // The same value as plain data gets Cedar's own answer (nothing was memoized under its key).
    assert.equal(governance.engine.authorize(request({ environment: "e", maxTokens: 50 })).effect, "allow");
    // The entities too: a parent read as "nobody" by the check and "admins" by wasm, an entity behind a getter, a proxied list.
    const admins = harness(`permit (principal in Bedrock::Group::"admins", action, resource);`).governance;
    let parentReads = 0;
    const parents: unknown[] = [];
    Object.defineProperty(parents, 0, { enumerable: true, get: () => ({ type: "Bedrock::Group", id: ++parentReads <= 1 ? "nobody" : "admins" }) });
    const withEntities = (entities: unknown) => admins.engine.authorize({ ...request({}), principal: { type: "Bedrock::Workload", id: "w" }, entities: entities as never });
    const shifted = withEntities([{ uid: { type: "Bedrock::Workload", id: "w" }, attrs: {}, parents }]);
    assert.equal(shifted.effect, "deny");
    assert.match(shifted.errors[0] ?? "", /entities\[0\]\.parents\[0\] is an accessor/);
    const hidden: unknown[] = [];
    Object.defineProperty(hidden, 0, { enumerable: true, get: () => ({ uid: { type: "Bedrock::Workload", id: "w" }, attrs: {}, parents: [{ type: "Bedrock::Group", id: "admins" }] }) });
    assert.match(withEntities(hidden).errors[0] ?? "", /entities\[0\] is an accessor/);
    assert.match(withEntities(new Proxy([], {})).errors[0] ?? "", /entities must be an array \(plain data, not a proxy\)/);
    assert.equal(withEntities([{ uid: { type: "Bedrock::Workload", id: "w" }, attrs: {}, parents: [{ type: "Bedrock::Group", id: "admins" }] }]).effect, "allow");
  });

  it("never lets malformed requests reach wasm: 3,000 of them leave the engine healthy", () => {
    const { governance } = harness(`permit (principal, action, resource) when { context.streaming };`);
    for (let i = 0; i < 3000; i++) {
      const decision = governance.engine.authorize({
        principal: { type: "Bedrock::Workload", id: `w${i}` },
        action: { type: "Bedrock::Action", id: "Converse" },
        resource: { type: "Bedrock::Model", id: "m" },
        context: { streaming: i % 2 === 0 ? (undefined as never) : (1.5 as never) },
        entities: [],
      });
      assert.equal(decision.effect, "deny");
      assert.match(decision.errors[0] ?? "", /malformed authorization request/);
    }
    // cedar-wasm throws on a lone surrogate, anywhere: refused before it gets there.
    for (const context of [{ streaming: true, label: "\ud800" }, { streaming: true, ["\udfff"]: "x" }]) {
      const decision = governance.engine.authorize({
        principal: { type: "Bedrock::Workload", id: "w" },
        action: { type: "Bedrock::Action", id: "Converse" },
        resource: { type: "Bedrock::Model", id: "m" },
        context: context as never,
        entities: [{ uid: { type: "Bedrock::Workload", id: "w\ud800" }, attrs: {}, parents: [] }],
      });
      assert.match(decision.errors[0] ?? "", /lone surrogate/);
    }
    // The escape Cedar dropped, nested in a record (a tool input could hold one): refused with its place.
    const escaped = governance.engine.authorize({
      principal: { type: "Bedrock::Workload", id: "w" },
      action: { type: "Bedrock::Action", id: "Converse" },
      resource: { type: "Bedrock::Model", id: "m" },
      context: { streaming: true, input: { note: { __expr: "1 + 1" } } } as never,
      entities: [],
    });
    assert.match(escaped.errors[0] ?? "", /context\.input\.note is an "__expr" escape/);
    const healthy = governance.engine.authorize({
      principal: { type: "Bedrock::Workload", id: "w" },
      action: { type: "Bedrock::Action", id: "Converse" },
      resource: { type: "Bedrock::Model", id: "m" },
      context: { streaming: true },
      entities: [],
    });
    assert.equal(healthy.effect, "allow");
  });
});

describe("evaluation errors name no request values", () => {
  it("a policy that errors on a tool input does not put the input's values in the decision, the record or the span", async () => {
    const { createGovernance: create, runAs: as, currentScope } = await import("../src/index.js");
    const { authorizeTool } = await import("../src/tools/authorize-tool.js");
    const records: unknown[] = [];
    const governance = create({
      environment: "test",
      tools: [{ name: "pay", effect: "mutate", inputSchema: { type: "object", properties: { accountNo: { type: "integer" } }, required: ["accountNo"] } }],
      policies: `permit (principal, action, resource);
        @id("overflow") forbid (principal, action == Bedrock::Action::"tool:pay", resource) when { context has input && context.input.accountNo * 100000 > 5 };`,
      onDecision: (r) => records.push(r),
    });
    const decision = as({ id: "agent" }, () =>
      authorizeTool({ engine: governance.engine, tools: governance.tools, environment: "test", region: "", identity: currentScope().identity, scope: currentScope(), name: "pay", phase: "call", input: { accountNo: 9007199254740991 } }),
    ).decision;
    assert.equal(decision.effect, "deny");
    assert.match(decision.errors.join(), /policy overflow: integer overflow/);
    assert.ok(!decision.errors.join().includes("9007199254740991"), decision.errors.join());
  });
});
