/**
 * `bedrock-warden explain <policy-dir> <case.json>`: one case, decided as the runtime would, with
 * everything that went into the decision: the determining policies and where they are, the
 * reasons and errors, the tools decided before the call, and the Cedar request as evaluated.
 * @module
 */
import type { Governance } from "../governance.js";
import type { Decision } from "../policy/decision.js";
import type { CedarRequest } from "../policy/request-shape.js";
import { decideCase, parseCase, type CaseResult, type DecisionCase } from "./decision-case.js";
import { EXIT_FAILED, EXIT_OK, stringOption, type CliCommand, type CliIO } from "./io.js";
import { locate, readText } from "./inputs.js";
import { parseJson } from "./json-location.js";
import { CASE_FORMAT, caseGovernance, compare, describeDecision, environmentOption, evaluatedCleanly, evaluatorOption } from "./test.js";

export const explainCommand: CliCommand = {
  name: "explain",
  summary: "decide one case and show why: policies, reasons, the Cedar request",
  usage: `Usage: bedrock-warden explain <policy-dir> <case.json> [--tools tools.json] [--environment production] [--evaluator wasm] [--json]

Decides one case (a JSON file holding one case, as in bedrock-warden test, "expect" optional;
"-" reads it from stdin) with the policies of <policy-dir>, and prints the decision, the
determining policies (id, file:line), the reasons and errors, the tools decided before the call,
and the Cedar request as evaluated (principal, action, resource, context, entities).

Options:
  --tools <file>         a JSON array of tool definitions (as createGovernance({ tools }))
  --environment <name>   the deployment environment (context.environment); default: production
  --evaluator <name>     javascript (default) or wasm (decide in cedar-wasm), as in bedrock-warden test
  --json                 print one JSON object instead of text
  -h, --help             show this help

${CASE_FORMAT}

Exit codes: 0 decided (and as expected, when the case says "expect"), 1 not as expected or a
malformed case or policies, 2 usage error.`,
  options: { tools: { type: "string" }, environment: { type: "string" }, evaluator: { type: "string" }, json: { type: "boolean" } },
  positionals: { min: 2, max: 2 },
  async run([directory, casePath], values, io) {
    const environment = environmentOption(values);
    const evaluator = evaluatorOption(values);
    const text = readText(casePath!, "case file");
    const governance = caseGovernance(directory!, stringOption(values, "tools"), environment, io, evaluator);
    if (governance === undefined) return EXIT_FAILED;
    const source = casePath === "-" ? "<stdin>" : casePath!;
    const json = parseJson(text);
    if (!json.ok) {
      io.err(locate(source, text, json.offset, json.message));
      return EXIT_FAILED;
    }
    const parsed = parseCase(json.value);
    if (!parsed.ok) {
      io.err(`${source}: ${parsed.message}`);
      return EXIT_FAILED;
    }
    const decided = await decideCase(governance, parsed.value);
    if (!decided.ok) {
      io.err(`${source}: ${decided.message}`);
      return EXIT_FAILED;
    }
    const failure = parsed.value.expect === undefined ? undefined : compare(parsed.value, decided.value.decision, governance, decided.value.request !== undefined);
    if (values["json"] === true) io.out(JSON.stringify(explanation(governance, parsed.value, decided.value, failure), null, 2));
    else printExplanation(io, governance, parsed.value, decided.value, failure);
    return failure === undefined ? EXIT_OK : EXIT_FAILED;
  },
};

/** The determining policies, with where each is written. */
function determining(governance: Governance, decision: Decision) {
  return decision.policies.map((id) => {
    const policy = governance.engine.policies.get(id);
    return {
      id,
      ...(policy && { source: policy.source, line: policy.line, effect: policy.effect }),
      ...(policy?.annotations["reason"] !== undefined && { reason: policy.annotations["reason"] }),
    };
  });
}

function explanation(governance: Governance, decisionCase: DecisionCase, result: CaseResult, failure: string | undefined) {
  return {
    name: decisionCase.name,
    subject: result.subject,
    environment: governance.environment,
    policySetVersion: governance.policySetVersion,
    decision: result.decision,
    determiningPolicies: determining(governance, result.decision),
    request: result.request ?? null,
    toolOffers: result.offers.map(({ name, decision, request }) => ({ name, decision, determiningPolicies: determining(governance, decision), request: request ?? null })),
    ...(decisionCase.expect !== undefined && { expect: decisionCase.expect, asExpected: failure === undefined }),
    ...(failure !== undefined && { failure }),
  };
}

function printExplanation(io: CliIO, governance: Governance, decisionCase: DecisionCase, result: CaseResult, failure: string | undefined): void {
  const { decision } = result;
  io.out(`case: ${decisionCase.name}`);
  io.out(`decision: ${decision.effect.toUpperCase()}  ${result.subject}`);
  io.out(`  principal: ${decision.principal}`);
  io.out(`  action:    ${decision.action}`);
  io.out(`  resource:  ${decision.resource}`);
  io.out("determining policies:");
  const policies = determining(governance, decision);
  if (policies.length === 0) {
    io.out(
      evaluatedCleanly(decision, result.request !== undefined)
        ? decision.errors.length === 0
          ? "  none (no policy permits this request: default deny)"
          : "  none (a policy failed to evaluate: see errors)"
        : result.request !== undefined
          ? "  none (the request was not evaluated: see errors)"
          : "  none (decided before any policy was evaluated)",
    );
  }
  for (const policy of policies) {
    io.out(`  ${policy.id}${policy.source === undefined ? "" : ` (${policy.source}:${policy.line}, ${policy.effect})`}`);
  }
  // Policies in shadow (@shadow, or enforcement "shadow") are evaluated and recorded, never enforced.
  const shadow = (decision as Decision & { shadow?: Omit<Decision, "principal" | "action" | "resource" | "policySetVersion"> }).shadow;
  if (shadow) io.out(`shadow (recorded, not enforced): would be ${describeDecision({ ...decision, ...shadow })}`);
  io.out("reasons:");
  for (const reason of decision.reasons) io.out(`  ${reason}`);
  io.out(decision.errors.length === 0 ? "errors: none" : "errors:");
  for (const error of decision.errors) io.out(`  ${error}`);
  if (result.offers.length > 0) {
    io.out('tools offered, each decided first (phase "offer"):');
    for (const offer of result.offers) {
      io.out(`  ${offer.name}: ${offer.decision.effect === "allow" ? "offered" : "withheld"}, ${describeDecision(offer.decision)}`);
    }
  }
  if (result.request) {
    io.out("Cedar request as evaluated (the engine sends Cedar only the context keys and attributes some policy reads):");
    printRequest(io, result.request);
  } else {
    io.out("Cedar request: none (the call was denied before policy evaluation)");
  }
  io.out(`environment: ${governance.environment}`);
  io.out(`policy set: ${governance.policySetVersion}`);
  if (decisionCase.expect !== undefined) io.out(failure === undefined ? `expected: ${decisionCase.expect}: as expected` : `NOT AS EXPECTED: ${failure}`);
}

function printRequest(io: CliIO, request: CedarRequest): void {
  const indent = (value: unknown) => JSON.stringify(value, null, 2).replace(/\n/g, "\n  ");
  io.out(`  principal: ${JSON.stringify(request.principal)}`);
  io.out(`  action:    ${JSON.stringify(request.action)}`);
  io.out(`  resource:  ${JSON.stringify(request.resource)}`);
  io.out(`  context: ${indent(request.context)}`);
  io.out(`  entities: ${indent(request.entities)}`);
}
