/**
 * What every command shares: where its output goes, its exit codes, and the error that means the
 * command was called wrongly (exit 2) rather than that a check failed (exit 1).
 * @module
 */

/** The command succeeded: policies valid, every case passed, the log verified. */
export const EXIT_OK = 0;
/** A check failed: invalid policies, a failing or malformed case, a broken or malformed log. */
export const EXIT_FAILED = 1;
/** The command was called wrongly: an unknown command or option, a missing argument or file. */
export const EXIT_USAGE = 2;

/** Where a command writes: `out` for its report (stdout), `err` for problems (stderr). One line per call. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
}

/**
 * What a terminal would act on rather than show — control characters (a carriage return that
 * rewrites a FAIL line as PASS, an escape sequence that hides text or sets the title), line and
 * paragraph separators, bidirectional marks — but a newline and a tab.
 */
const NOT_SHOWN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * A line as a terminal will show it: what it would act on is written as `\uXXXX`. Names, ids and
 * reasons come from files someone else wrote (cases, policies, logs).
 */
export function shown(line: string): string {
  return line.replace(NOT_SHOWN, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** The process's own streams (every line as {@link shown}). */
export const processIO: CliIO = {
  out: (line) => void process.stdout.write(`${shown(line)}\n`),
  err: (line) => void process.stderr.write(`${shown(line)}\n`),
};

/**
 * The command line is wrong (a missing argument, an unknown option, a file that does not exist):
 * the command prints the message and its usage, and exits 2.
 */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Values of a command's options, as `node:util` `parseArgs` returns them. */
export type OptionValues = Readonly<Record<string, string | boolean | undefined>>;

/** One command of the CLI. */
export interface CliCommand {
  readonly name: string;
  /** One line, for the list of commands. */
  readonly summary: string;
  /** The full `--help` text. */
  readonly usage: string;
  /** Its options (`--help` is added to every command). */
  readonly options: Readonly<Record<string, { readonly type: "string" | "boolean"; readonly short?: string }>>;
  /** How many positional arguments it takes. */
  readonly positionals: { readonly min: number; readonly max: number };
  run(positionals: readonly string[], values: OptionValues, io: CliIO): Promise<number>;
}

/** A string option's value (parseArgs guarantees the type of a declared option). */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

/** An error's message, whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
