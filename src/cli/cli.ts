/**
 * The command line: `bedrock-warden <command> [arguments] [options]`. Parses the arguments with
 * `node:util` `parseArgs`, gives every command its `--help`, and maps outcomes to exit codes:
 * 0 ok, 1 a check failed, 2 a usage error.
 * @module
 */
import { parseArgs } from "node:util";
import { VERSION } from "../version.js";
import { explainCommand } from "./explain.js";
import { InputProblems } from "./inputs.js";
import { inventoryCommand } from "./inventory.js";
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, messageOf, processIO, UsageError, type CliCommand, type CliIO } from "./io.js";
import { testCommand } from "./test.js";
import { validateCommand } from "./validate.js";
import { verifyLogCommand } from "./verify-log.js";

/** Every command, in the order the usage lists them. */
export const COMMANDS: readonly CliCommand[] = [validateCommand, testCommand, explainCommand, verifyLogCommand, inventoryCommand];

/** The top-level usage text. */
export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `Usage: bedrock-warden <command> [arguments] [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

Run bedrock-warden <command> --help for a command's arguments and options.

Options:
  -h, --help       show this help
  -v, --version    print the version

Exit codes: 0 ok, 1 a check failed (invalid policies, failing cases, a broken log), 2 usage error.`;
}

/** Runs the CLI on `argv` (without `node` and the script) and resolves to the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIO = processIO): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    io.err(usage());
    return EXIT_USAGE;
  }
  if (first === "-h" || first === "--help") {
    io.out(usage());
    return EXIT_OK;
  }
  if (first === "-v" || first === "--version") {
    io.out(VERSION);
    return EXIT_OK;
  }
  if (first === "help") {
    const topic = rest[0];
    if (topic === undefined) {
      io.out(usage());
      return EXIT_OK;
    }
    const command = COMMANDS.find((c) => c.name === topic);
    if (!command) return unknownCommand(io, topic);
    io.out(command.usage);
    return EXIT_OK;
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command) return unknownCommand(io, first);
  return runCommand(command, rest, io);
}

function unknownCommand(io: CliIO, name: string): number {
  io.err(`bedrock-warden: unknown command "${name}"`);
  io.err(usage());
  return EXIT_USAGE;
}

async function runCommand(command: CliCommand, args: readonly string[], io: CliIO): Promise<number> {
  const usageError = (message: string): number => {
    io.err(`bedrock-warden ${command.name}: ${message}`);
    io.err(command.usage.split("\n")[0]!);
    io.err(`Run bedrock-warden ${command.name} --help for more.`);
    return EXIT_USAGE;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { ...command.options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return usageError(messageOf(error));
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    io.out(command.usage);
    return EXIT_OK;
  }
  const { min, max } = command.positionals;
  if (positionals.length < min) return usageError(`missing ${min - positionals.length === 1 ? "an argument" : "arguments"}`);
  if (positionals.length > max) return usageError(`unexpected argument "${positionals[max]}"`);
  try {
    return await command.run(positionals, values as Record<string, string | boolean | undefined>, io);
  } catch (error) {
    if (error instanceof UsageError) return usageError(error.message);
    if (error instanceof InputProblems) {
      for (const problem of error.problems) io.err(problem);
      return EXIT_FAILED;
    }
    io.err(`bedrock-warden ${command.name}: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return EXIT_FAILED;
  }
}
