/**
 * `bedrock-warden validate <policy-dir> [--tools tools.json]`: loads every `*.cedar` file under the
 * directory and validates it against the shipped schema (extended with the declared tools'
 * actions), exactly as `createGovernance` does at start-up, and prints every problem as
 * `file:line:column: message`.
 * @module
 */
import { formatProblem } from "../errors.js";
import { EXIT_FAILED, EXIT_OK, stringOption, type CliCommand } from "./io.js";
import { buildGovernance, InputProblems, readPolicies, readTools } from "./inputs.js";

export const validateCommand: CliCommand = {
  name: "validate",
  summary: "validate policies against the shipped schema (and declared tools)",
  usage: `Usage: bedrock-warden validate <policy-dir> [--tools tools.json]

Loads every *.cedar file under <policy-dir> (recursively) and validates it against the shipped
schema, as createGovernance does at start-up. Problems and warnings are printed to stderr as
file:line:column: message; a summary and the policy set version to stdout.

Options:
  --tools <file>   a JSON array of tool definitions ({ name, effect, sensitivity?, owner?,
                   inputSchema?, serverSide? }): their actions (tool:<name>) and input types
                   are added to the schema, as createGovernance({ tools }) adds them
  -h, --help       show this help

Exit codes: 0 valid (warnings allowed), 1 invalid, 2 usage error.`,
  options: { tools: { type: "string" } },
  positionals: { min: 1, max: 1 },
  async run([directory], values, io) {
    const documents = readPolicies(directory!);
    const files = documents.length;
    let governance;
    try {
      const toolsPath = stringOption(values, "tools");
      const tools = toolsPath === undefined ? undefined : readTools(toolsPath);
      // The environment does not change what validates: any name will do.
      governance = buildGovernance({ policies: documents, ...(tools && { tools }), environment: "validate" });
    } catch (error) {
      if (!(error instanceof InputProblems)) throw error;
      for (const problem of error.problems) io.err(problem);
      if (stringOption(values, "tools") === undefined && error.problems.some((p) => p.includes('unrecognized action `Bedrock::Action::"tool:'))) {
        io.err("note: the tool:<name> actions exist only for declared tools: pass their definitions with --tools tools.json");
      }
      io.err(`${error.problems.length} ${plural(error.problems.length, "problem")} in ${files} ${plural(files, "file")}: invalid`);
      return EXIT_FAILED;
    }
    const { engine } = governance;
    for (const warning of engine.warnings) io.err(formatProblem({ ...warning, message: `warning: ${warning.message}` }));
    const count = engine.policies.size;
    const warned = engine.warnings.length > 0 ? ` (${engine.warnings.length} ${plural(engine.warnings.length, "warning")})` : "";
    const tools = governance.tools.size > 0 ? `, ${governance.tools.size} declared ${plural(governance.tools.size, "tool")}` : "";
    // Policies annotated @shadow are evaluated and recorded, never enforced: say how many there are.
    const shadow = (engine as { shadowPolicies?: ReadonlySet<string> }).shadowPolicies?.size ?? 0;
    const shadowed = shadow > 0 ? ` (${shadow} in shadow: recorded, not enforced)` : "";
    io.out(`${count} ${plural(count, "policy", "policies")}${shadowed} in ${files} ${plural(files, "file")}${tools}: valid${warned}`);
    io.out(`policy set version: ${engine.version}`);
    return EXIT_OK;
  },
};

export function plural(n: number, one: string, many = `${one}s`): string {
  return n === 1 ? one : many;
}
