/**
 * `bedrock-warden test <policy-dir> <cases.jsonl>`: decision cases, one JSON object per line, each
 * decided as the runtime would decide it and compared with what it expects (like `opa test`).
 * @module
 */
import type { Governance } from "../governance.js";
import { POLICY_ERROR_REASON, type PolicyEvaluator } from "../policy/cedar-engine.js";
import type { Decision } from "../policy/decision.js";
import { decideCase, parseCase, type DecisionCase } from "./decision-case.js";
import { EXIT_FAILED, EXIT_OK, stringOption, UsageError, type CliCommand, type CliIO } from "./io.js";
import { InputProblems, loadGovernance, readText } from "./inputs.js";
import { parseJson } from "./json-location.js";
import { plural } from "./validate.js";

/** The help text shared by `test` and `explain`: what a case holds. */
export const CASE_FORMAT = `A case is a JSON object:
  { "name": "billing chats with haiku",
    "identity": { "id": "spiffe://acme.example/agents/invoice", "groups": ["billing"] },
    "scope": { "purpose": "reconcile invoices", "dataSensitivity": ["financial"], "actionType": "read" },
    "task": "reconcile-invoices",
    "command": "Converse",
    "input": { "modelId": "us.anthropic.claude-3-5-haiku-20241022-v1:0", "inferenceConfig": { "maxTokens": 512 } },
    "region": "us-east-1",
    "credentials": { "kind": "temporary", "expiresInSeconds": 900, "brokered": false },
    "expect": "allow", "expectPolicies": ["billing-may-chat-with-haiku"] }
or, for a tool:
  { "name": "...", "identity": {...}, "tool": "issue_refund", "phase": "call",
    "input": { "invoiceId": "INV-1", "amount": 50 }, "expect": "deny" }
scope, task, region (default us-east-1), credentials (default temporary, 3600 s) and
expectPolicies (the determining policy ids, in any order; [] for the default deny) are optional.
"authentication": { "issuer": "...", "method"?: "oidc", "expiresInSeconds"?: 3600,
"delegation"?: { "actors": [...], "onBehalfOf": "..." }, "spiffe"?: {...} } decides the case as
for an identity proven by a token (context.authentication.verified == true).
A command case offering tools (Converse toolConfig, an InvokeModel body) decides each tool
(phase "offer") first, as the runtime does; phase "execute" is governTool's decision (no AWS
credentials). A tool case is the policy decision on the tool and its input: the checks made on
the model's output before it (a tool never offered, unreadable input JSON, a reused call id)
are not part of it.`;

export const testCommand: CliCommand = {
  name: "test",
  summary: "decide test cases (JSON Lines) against the policies, like opa test",
  usage: `Usage: bedrock-warden test <policy-dir> <cases.jsonl> [--tools tools.json] [--environment production] [--evaluator wasm]

Decides each case of <cases.jsonl> (one JSON object per line; blank lines and lines starting
with // or # are ignored) with the policies of <policy-dir>, on the library's own call path, and
compares the decision with the case's "expect" (and "expectPolicies", when given).
Prints PASS <name> or FAIL <name>: expected ..., got ... per case, then a summary; malformed
lines are reported to stderr as cases.jsonl:LINE: what is wrong.

Options:
  --tools <file>         a JSON array of tool definitions (as createGovernance({ tools }))
  --environment <name>   the deployment environment (context.environment); default: production
  --evaluator <name>     javascript (default: the common part of Cedar in JavaScript, the rest in
                         cedar-wasm, as createGovernance decides) or wasm (every case in cedar-wasm)
  -h, --help             show this help

${CASE_FORMAT}

Exit codes: 0 every case passed, 1 a case failed or a line is malformed, 2 usage error.`,
  options: { tools: { type: "string" }, environment: { type: "string" }, evaluator: { type: "string" } },
  positionals: { min: 2, max: 2 },
  async run([directory, casesPath], values, io) {
    const environment = environmentOption(values);
    const evaluator = evaluatorOption(values);
    const text = readText(casesPath!, "cases file");
    const governance = caseGovernance(directory!, stringOption(values, "tools"), environment, io, evaluator);
    if (governance === undefined) return EXIT_FAILED;
    const { cases, problems } = readCases(text, casesPath!);
    for (const problem of problems) io.err(problem);
    let passed = 0;
    let failed = 0;
    let malformed = problems.length;
    for (const { line, value } of cases) {
      if (value.expect === undefined) {
        io.err(`${casesPath}:${line}: expect: is required ("allow" or "deny")`);
        malformed++;
        continue;
      }
      const tool = (value as { tool?: unknown }).tool;
      if (typeof tool === "string" && governance.tools.size > 0 && !governance.tools.has(tool)) {
        // Most often a typo: an undeclared tool is decided as UndeclaredTool, and would deny for any policies.
        io.err(`${casesPath}:${line}: warning: the tool "${tool}" is not declared in the tools file: it is decided as UndeclaredTool`);
      }
      const decided = await decideCase(governance, value);
      if (!decided.ok) {
        io.err(`${casesPath}:${line}: ${decided.message}`);
        malformed++;
        continue;
      }
      const failure = compare(value, decided.value.decision, governance, decided.value.request !== undefined);
      if (failure === undefined) {
        passed++;
        io.out(`PASS ${value.name}`);
      } else {
        failed++;
        io.out(`FAIL ${value.name}: ${failure}`);
        io.out(`  at ${casesPath}:${line}`);
      }
    }
    const total = passed + failed;
    const parts = [`${passed} passed`, `${failed} failed`];
    if (malformed > 0) parts.push(`${malformed} malformed ${plural(malformed, "line")}`);
    io.out(`${total} ${plural(total, "case")}: ${parts.join(", ")} (environment ${environment}, policy set ${governance.policySetVersion})`);
    if (total === 0 && malformed === 0) {
      io.err(`${casesPath}: holds no case`);
      return EXIT_FAILED;
    }
    return failed === 0 && malformed === 0 ? EXIT_OK : EXIT_FAILED;
  },
};

/** `--environment`, production by default. */
/**
 * The governance `test` and `explain` decide cases with; undefined when the policies or the tools
 * file are malformed (each problem already reported, located).
 */
export function caseGovernance(directory: string, toolsPath: string | undefined, environment: string, io: CliIO, evaluator?: PolicyEvaluator): Governance | undefined {
  try {
    return loadGovernance(directory, toolsPath, environment, evaluator);
  } catch (error) {
    if (!(error instanceof InputProblems)) throw error;
    for (const problem of error.problems) io.err(problem);
    return undefined;
  }
}

export function environmentOption(values: Readonly<Record<string, string | boolean | undefined>>): string {
  const environment = stringOption(values, "environment") ?? "production";
  if (environment.trim() === "") throw new UsageError("--environment must not be empty, e.g. --environment production");
  return environment;
}

/** `--evaluator`: which evaluator decides the cases (default: the library's, "javascript"). */
export function evaluatorOption(values: Readonly<Record<string, string | boolean | undefined>>): PolicyEvaluator | undefined {
  const evaluator = stringOption(values, "evaluator");
  if (evaluator === undefined || evaluator === "javascript" || evaluator === "wasm") return evaluator;
  throw new UsageError(`--evaluator must be javascript or wasm, got ${JSON.stringify(evaluator.slice(0, 40))}`);
}

/** The cases of a JSON Lines text, each with its line, and a located message for every malformed line. */
export function readCases(text: string, source: string): { cases: { line: number; value: DecisionCase }[]; problems: string[] } {
  const cases: { line: number; value: DecisionCase }[] = [];
  const problems: string[] = [];
  const names = new Map<string, number>();
  const lines = text.split("\n");
  lines.forEach((raw, index) => {
    const line = index + 1;
    const content = raw.replace(/\r$/, "");
    const trimmed = content.trim();
    if (trimmed === "" || trimmed.startsWith("//") || trimmed.startsWith("#")) return;
    const json = parseJson(content);
    if (!json.ok) {
      const column = json.offset === undefined ? "" : `:${Math.min(json.offset, content.length) + 1}`;
      problems.push(`${source}:${line}${column}: ${json.message}`);
      return;
    }
    const parsed = parseCase(json.value);
    if (!parsed.ok) {
      problems.push(`${source}:${line}: ${parsed.message}`);
      return;
    }
    const first = names.get(parsed.value.name);
    if (first !== undefined) {
      problems.push(`${source}:${line}: name: "${parsed.value.name}" is already the name of the case at line ${first}: give each case its own name`);
      return;
    }
    names.set(parsed.value.name, line);
    cases.push({ line, value: parsed.value });
  });
  return { cases, problems };
}

/** Why the decision is not what the case expects, or undefined when it is. */
export function compare(decisionCase: DecisionCase, decision: Decision, governance: Governance, engineAsked: boolean): string | undefined {
  if (decision.effect !== decisionCase.expect) return `expected ${decisionCase.expect}, got ${describeDecision(decision)}`;
  // A deny reached before the policies ran (a misspelled input field, an undeclared tool, an input
  // outside the tool's schema, a request the engine refused as malformed ...) is not what a policy
  // test expects: it would pass for any policies. The policies ran when some determined the decision,
  // or when the engine was asked and answered without an error of its own (a policy's error is the
  // policies' behaviour). Never read from reason text, which can quote the case's input.
  const evaluated = decision.policies.length > 0 || evaluatedCleanly(decision, engineAsked);
  // A case that turns the kill switch on expects the denial that comes before any policy.
  if (decision.effect === "deny" && !evaluated && decisionCase.usage?.killed !== undefined && decision.reasons.some((r) => r.startsWith(`the kill switch of ${decisionCase.identity.id} is on`))) {
    return (decisionCase.expectPolicies ?? []).length === 0 ? undefined : `expected deny by ${listOf(decisionCase.expectPolicies!)}, got ${describeDecision(decision)} (the kill switch decides before any policy)`;
  }
  if (decision.effect === "deny" && !evaluated) {
    const errors = decision.errors.length > 0 ? ` [errors: ${decision.errors.join("; ")}]` : "";
    return `expected deny by the policies, but the case was denied before they were evaluated (${decision.reasons.join("; ")})${errors}: fix the case`;
  }
  const expected = decisionCase.expectPolicies;
  if (expected === undefined) return undefined;
  const got = new Set(decision.policies);
  const wanted = new Set(expected);
  if (wanted.size === got.size && [...wanted].every((id) => got.has(id))) return undefined;
  const unknown = expected.filter((id) => !governance.engine.policies.has(id));
  const note = unknown.length > 0 ? `; no policy has the id ${unknown.map((id) => `"${id}"`).join(", ")}` : "";
  return `expected ${decisionCase.expect} by ${listOf(expected)}, got ${describeDecision(decision)}${note}`;
}

/**
 * Whether the engine evaluated the request without an error of its own: it was asked, and it
 * answered with no error, or with a policy's (the policies' behaviour, not the case's).
 */
export function evaluatedCleanly(decision: Decision, engineAsked: boolean): boolean {
  return engineAsked && (decision.errors.length === 0 || decision.reasons.includes(POLICY_ERROR_REASON));
}

function listOf(ids: readonly string[]): string {
  return ids.length === 0 ? "default" : ids.join(", ");
}

/** `allow (by p1, p2: reason; reason)`, with the evaluation errors when there are any. */
export function describeDecision(decision: Decision): string {
  const errors = decision.errors.length > 0 ? ` [errors: ${decision.errors.join("; ")}]` : "";
  const reasons = decision.reasons.join("; ");
  // A denial reached before Cedar (no identity, no credentials, an input naming no model) has no policy.
  const by = decision.policies.length > 0 ? `by ${decision.policies.join(", ")}: ` : /\(default deny\)/.test(reasons) ? "by default: " : "";
  return `${decision.effect} (${by}${reasons})${errors}`;
}

