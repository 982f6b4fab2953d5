/**
 * `bedrock-warden verify-log <path-or-dir>`: checks a decision log's hash chain across its rotated
 * files (`verifyDecisionLog`) and reports the first problem as `file:line: kind: message`.
 * @module
 */
import { readFileSync } from "node:fs";
import { optionalChainKey } from "../audit/hash-chain.js";
import { verifyDecisionLog, type VerifyLogOptions } from "../audit/verify-log.js";
import { ConfigurationError } from "../errors.js";
import { EXIT_FAILED, EXIT_OK, stringOption, UsageError, type CliCommand } from "./io.js";
import { requirePath } from "./inputs.js";
import { plural } from "./validate.js";

export const verifyLogCommand: CliCommand = {
  name: "verify-log",
  summary: "verify a decision log's hash chain (rotated files included)",
  usage: `Usage: bedrock-warden verify-log <path-or-dir> [--from <seq>[:<prevHash>]] [--to <seq>[:<hash>]] [--key-file <path> [--log-name <name>]] [--json]

Verifies the hash chain of a JSON Lines decision log: every line's hash, every link, the
sequence numbers across its rotated files (<path>.<firstSeq>-<lastSeq> beside it; a directory
stands for the one log it holds), and the end of each file. Prints "ok: N records in M files"
and the last line's anchor (seq:hash), or the first problem as file:line: kind: message
(kinds: hash-mismatch, broken-link, missing, reordered, malformed, truncated, head-missing,
chain-break).

A hash chain alone cannot show lines cut from the end or a chain rewritten from some line on:
keep the anchor printed by a previous run somewhere the log's writer cannot change, and pass it
as --to.

Options:
  --from <seq>[:<prevHash>]   the log starts at this seq (its oldest files were pruned), linked
                              to this hash when given
  --to <seq>[:<hash>]         the line with this seq must exist (with this hash when given)
  --key-file <path>           the chain key the log was written with (the sink's chainKey): the
                              file's bytes, at least 32
  --log-name <name>           the log's name, when it was written with one (the sink's logName;
                              needs --key-file)
  --json                      print the verification as JSON
  -h, --help                  show this help

Exit codes: 0 the log verified, 1 a problem was found, 2 usage error (no log there).`,
  options: { from: { type: "string" }, to: { type: "string" }, "key-file": { type: "string" }, "log-name": { type: "string" }, json: { type: "boolean" } },
  positionals: { min: 1, max: 1 },
  async run([path], values, io) {
    requirePath(path!, "decision log", "either");
    const from = anchor(stringOption(values, "from"), "--from");
    const to = anchor(stringOption(values, "to"), "--to");
    const keyFile = stringOption(values, "key-file");
    let key: Buffer | undefined;
    if (keyFile !== undefined) {
      try {
        key = readFileSync(keyFile);
      } catch (error) {
        throw new UsageError(`--key-file: cannot read ${keyFile}: ${(error as Error).message}`);
      }
    }
    const logName = stringOption(values, "log-name");
    try {
      // Checked as the verifier checks them, the errors naming the command's options.
      optionalChainKey(key, logName, { key: "--key-file", logName: "--log-name" });
    } catch (error) {
      if (error instanceof ConfigurationError) throw new UsageError(error.message);
      throw error;
    }
    const options: VerifyLogOptions = {
      ...(from && { from: { seq: from.seq, ...(from.hash !== undefined && { prevHash: from.hash }) } }),
      ...(to && { to: { seq: to.seq, ...(to.hash !== undefined && { hash: to.hash }) } }),
      ...(key && { key }),
      ...(logName !== undefined && { logName }),
    };
    let result;
    try {
      result = await verifyDecisionLog(path!, options);
    } catch (error) {
      // No log there, or a directory holding several: the command was pointed at the wrong place.
      if (error instanceof ConfigurationError) throw new UsageError(error.message);
      throw error;
    }
    if (values["json"] === true) io.out(JSON.stringify(result, null, 2));
    const problem = result.firstProblem;
    if (problem) {
      io.err(`${problem.file}:${problem.line}: ${problem.kind}: ${problem.message}`);
      if (values["json"] !== true) io.out(`${result.records} ${plural(result.records, "record")} verified before the problem`);
      return EXIT_FAILED;
    }
    if (values["json"] !== true) {
      const files = result.files.length;
      const lost = result.droppedRecords > 0 ? ` (and ${result.droppedRecords} ${plural(result.droppedRecords, "record")} its writer could not keep, as its records-dropped lines say)` : "";
      io.out(`ok: ${result.records} ${plural(result.records, "record")} in ${files} ${plural(files, "file")}${lost}`);
      if (result.last) io.out(`last: ${result.last.seq}:${result.last.hash}`);
    }
    if (result.records === 0 && to === undefined) {
      // Nothing in the log is evidence of anything: an emptied log verifies as well as a new one.
      io.err("note: the log holds no records, so nothing shows whether it ever held some: pass --to <seq>:<hash> from an earlier run to check that it did not");
    }
    return result.ok ? EXIT_OK : EXIT_FAILED;
  },
};

/** `<seq>` or `<seq>:<64 hex digits>`. */
function anchor(value: string | undefined, option: string): { seq: number; hash?: string } | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d{1,16})(?::([0-9a-f]{64}))?$/.exec(value);
  const seq = match ? Number(match[1]) : NaN;
  if (!match || !Number.isSafeInteger(seq) || seq < 1) {
    throw new UsageError(`${option} must be <seq> or <seq>:<hash> (a whole number ≥ 1, and 64 lowercase hex digits), e.g. ${option} 41000:${"0".repeat(64)}`);
  }
  return { seq, ...(match[2] !== undefined && { hash: match[2] }) };
}
