/**
 * `verifyDecisionLog(path)`: checks a JSON Lines decision log's hash chain, across its rotated
 * files, and reports the first problem with its file and line.
 * @module
 */
import { KeyObject } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { z } from "zod";
import { ConfigurationError } from "../errors.js";
import { describeZodError } from "../validation.js";
import { canonicalJson, GENESIS_HASH, optionalChainKey, isChainedLine, lineDigest, type ChainedLine } from "./hash-chain.js";

/**
 * What can be wrong with a decision log, one stable value per kind:
 * - `hash-mismatch`: a line's content does not match its own `hash` (a field was changed);
 * - `broken-link`: a line's `prevHash` is not the previous line's `hash` (a line was replaced or
 *   forged, or logs were spliced);
 * - `missing`: `seq` jumps forward (lines were deleted, or a rotated file is missing; records the
 *   writer lost are a `records-dropped` line, never a gap — except in a log an earlier version wrote);
 * - `reordered`: a `seq` comes out of order or again (lines were moved, duplicated or inserted);
 * - `malformed`: a line is not a decision-log line (not JSON, no `seq`/`prevHash`/`hash`, empty);
 * - `truncated`: the last line of a file was cut (no newline at its end);
 * - `head-missing`: the log does not start at seq 1 (its first files were deleted, e.g. pruned
 *   by `maxFiles`): pass `from` to verify from where it now starts;
 * - `chain-break`: the writer found its log damaged when it started and recorded a break before
 *   continuing (a crash in the middle of a write, or a damaged last line).
 *
 * @example
 * ```ts
 * const { firstProblem } = await verifyDecisionLog("/var/log/warden/decisions.jsonl");
 * if (firstProblem?.kind === "head-missing") console.log("older files were pruned");
 * ```
 */
export type LogProblemKind =
  | "hash-mismatch"
  | "broken-link"
  | "missing"
  | "reordered"
  | "malformed"
  | "truncated"
  | "head-missing"
  | "chain-break";

/**
 * The first problem found in a decision log.
 *
 * @example
 * ```ts
 * const p: LogProblem = { file: "/var/log/warden/decisions.jsonl", line: 42, seq: 42, kind: "hash-mismatch", message: "..." };
 * console.error(`${p.file}:${p.line}: ${p.kind}: ${p.message}`);
 * ```
 */
export interface LogProblem {
  /** The file (as a path) the problem is in. */
  readonly file: string;
  /** The 1-based line number in that file. */
  readonly line: number;
  /** The line's `seq`, when it could be read. */
  readonly seq?: number;
  readonly kind: LogProblemKind;
  /** What is wrong, in words, and what it usually means. */
  readonly message: string;
}

/**
 * The result of {@link verifyDecisionLog}.
 *
 * @example
 * ```ts
 * const result: LogVerification = await verifyDecisionLog("decisions.jsonl");
 * if (!result.ok) process.exitCode = 1;
 * ```
 */
export interface LogVerification {
  /** True when every line of every file verified and nothing is missing. */
  readonly ok: boolean;
  /** How many decision records verified (before the first problem, when there is one). */
  readonly records: number;
  /**
   * Records the writer lost (dropped from a full queue, or unserializable), as its `records-dropped`
   * lines count them: evidence that is missing, said by the chain itself.
   */
  readonly droppedRecords: number;
  /** The files read, in chain order (rotated files first, the active file last). */
  readonly files: readonly string[];
  /** The last line that verified: keep it somewhere safe and pass it as `to` next time. */
  readonly last?: { readonly seq: number; readonly hash: string };
  readonly firstProblem?: LogProblem;
}

/**
 * Options of {@link verifyDecisionLog}.
 *
 * @example
 * ```ts
 * // The log's first files were pruned (maxFiles): it now starts at seq 120001.
 * await verifyDecisionLog("decisions.jsonl", { from: { seq: 120001 } });
 * ```
 */
export interface VerifyLogOptions {
  /**
   * Where the log starts, when it does not start at seq 1 (its oldest files were deleted):
   * its first line must have this `seq` (and, if given, this `prevHash`: the hash of the last
   * line of the deleted part, which makes the check as strong as an intact log's).
   */
  readonly from?: { readonly seq: number; readonly prevHash?: string };
  /**
   * An anchor kept outside the log (e.g. the `last` of an earlier verification, or a sink's
   * `last`): the line with this `seq` must exist and (if given) have this `hash`. This is what
   * catches whole lines cut from the end, or a chain rewritten from some line on, which a hash
   * chain alone cannot.
   */
  readonly to?: { readonly seq: number; readonly hash?: string };
  /**
   * The chain key the log was written with (`createJsonlSink({ chainKey })`): each line's hash is
   * then checked as HMAC-SHA256 under it. A log written with a key does not verify without it, nor
   * one written without a key with one.
   */
  readonly key?: Uint8Array | KeyObject;
  /**
   * The log's name, when it was written with one (`createJsonlSink({ chainKey, logName })`): its
   * lines verify only under the key derived from `key` and this name, so another log written under
   * the same key with another name is told apart. Needs `key`.
   */
  readonly logName?: string;
}

const anchorSeq = z
  .number({ error: "must be a seq number (a whole number ≥ 1)" })
  .int("must be a whole number")
  .min(1, "must be at least 1")
  .max(Number.MAX_SAFE_INTEGER, "is too large");
const hex64 = z.string({ error: "must be a 64-hex-digit hash" }).regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits (a line's hash)");
const optionsSchema = z
  .object({
    from: z.object({ seq: anchorSeq, prevHash: hex64.optional() }).strict().optional(),
    to: z.object({ seq: anchorSeq, hash: hex64.optional() }).strict().optional(),
    key: z.custom<Uint8Array | KeyObject>((v) => v instanceof Uint8Array || v instanceof KeyObject, { message: "must be a Uint8Array/Buffer or a secret KeyObject" }).optional(),
    logName: z.string({ error: 'must be a string, e.g. "payments-prod"' }).optional(),
  })
  .strict();

/**
 * A line longer than this (8 MiB) is reported as malformed without being held in memory
 * (records are ~1 KB): a garbage file with no newlines cannot exhaust memory.
 *
 * @example
 * ```ts
 * for await (const line of readLogLines(file, MAX_LINE_BYTES)) if (line.text === undefined) console.log("oversized", line.number);
 * ```
 */
export const MAX_LINE_BYTES = 8 * 1024 * 1024;

/**
 * Verifies a decision log written by the JSON Lines sink: every line's hash, every link, the
 * sequence numbers across rotated files, and the end of each file. Reads line by line (memory
 * stays flat whatever the log's size) and stops at the first problem, which it reports with its
 * file and line. Never changes anything on disk.
 *
 * `pathOrDirectory` is the sink's `path` (its rotated files `<path>.<firstSeq>-<lastSeq>` are found
 * beside it), or a directory that holds one log.
 *
 * @throws {@link ConfigurationError} when there is no log there (or a directory holds several), or
 * the options are malformed. A log that is garbage is not an error: it is reported as a problem.
 * @example
 * ```ts
 * const result = await verifyDecisionLog("/var/log/warden/decisions.jsonl");
 * if (!result.ok) {
 *   const p = result.firstProblem!;
 *   console.error(`${p.file}:${p.line}: ${p.kind}: ${p.message}`);
 *   process.exitCode = 1;
 * }
 * ```
 */
export async function verifyDecisionLog(pathOrDirectory: string, options: VerifyLogOptions = {}): Promise<LogVerification> {
  if (typeof pathOrDirectory !== "string" || pathOrDirectory === "") {
    throw new ConfigurationError("verifyDecisionLog(path): path must be the log file's path, or a directory that holds one log");
  }
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw new ConfigurationError(`Invalid verifyDecisionLog options: ${describeZodError(parsed.error, "options", optionsSchema)}`);
  const key = optionalChainKey(parsed.data.key, parsed.data.logName, { key: "verifyDecisionLog options.key", logName: "verifyDecisionLog options.logName" });
  const files = await logFiles(resolve(pathOrDirectory));
  return new Verifier(files, parsed.data, key).run();
}

/**
 * The files of the log at `path`, in chain order: the rotated files `<path>.<firstSeq>-<lastSeq>`
 * (by seq, not by name, so numbers of any length sort right), then `path` itself if it exists.
 * A directory holding one log stands for that log.
 *
 * @example
 * ```ts
 * const files = await logFiles("/var/log/warden/decisions.jsonl");
 * // ["/var/log/warden/decisions.jsonl.000000000001-000000041000", "/var/log/warden/decisions.jsonl"]
 * ```
 * @throws {@link ConfigurationError} when no log is there.
 */
export async function logFiles(path: string): Promise<string[]> {
  return filesOf(path, false);
}

async function filesOf(path: string, inDirectory: boolean): Promise<string[]> {
  const target = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT" || error.code === "ENOTDIR") return undefined;
    throw new ConfigurationError(`cannot read ${path}: ${error.message}`, { cause: error });
  });
  if (target?.isDirectory()) {
    if (!inDirectory) return filesOf(join(path, await onlyLogIn(path)), true);
    throw new ConfigurationError(`${path} is a directory, not a decision log`);
  }
  const directory = dirname(path);
  const rotated = (await listDirectory(directory))
    .map((name) => ({ name, range: rotatedRange(name, basename(path)) }))
    .filter((entry): entry is { name: string; range: [bigint, bigint] } => entry.range !== undefined)
    .sort((a, b) => compareBig(a.range[0], b.range[0]) || compareBig(a.range[1], b.range[1]))
    .map((entry) => join(directory, entry.name));
  const files = target ? [...rotated, path] : rotated;
  if (files.length === 0) throw new ConfigurationError(`no decision log at ${path} (neither the file nor rotated files ${basename(path)}.<firstSeq>-<lastSeq> beside it)`);
  // A FIFO or a device (a link to /dev/zero named like a rotated file) would be read forever.
  for (const file of files) {
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) throw new ConfigurationError(`${file} is not a regular file: a decision log is one (a FIFO, a device or a directory is never read)`);
  }
  return files;
}

/**
 * The seq range in a rotated file's name (`<base>.<firstSeq>-<lastSeq>`), or undefined when
 * `name` is not a rotated file of `base`.
 *
 * @example
 * ```ts
 * rotatedRange("decisions.jsonl.000000000001-000000041000", "decisions.jsonl"); // [1n, 41000n]
 * ```
 */
export function rotatedRange(name: string, base: string): [bigint, bigint] | undefined {
  if (!name.startsWith(`${base}.`)) return undefined;
  const match = /^(\d{1,20})-(\d{1,20})$/.exec(name.slice(base.length + 1));
  return match ? [BigInt(match[1]!), BigInt(match[2]!)] : undefined;
}

function compareBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function listDirectory(directory: string): Promise<string[]> {
  try {
    return await readdir(directory);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw new ConfigurationError(`cannot list ${directory}: ${(error as Error).message}`, { cause: error });
  }
}

/** The base name of the one log in a directory: the base of its rotated files, or its one active file. */
async function onlyLogIn(directory: string): Promise<string> {
  const names = await listDirectory(directory);
  const bases = new Set<string>();
  for (const name of names) {
    const match = /^(.+)\.\d{1,20}-\d{1,20}$/.exec(name);
    if (match) bases.add(match[1]!);
  }
  const others: string[] = [];
  const logLike: string[] = [];
  for (const name of names) {
    if (bases.has(name) || /^(.+)\.\d{1,20}-\d{1,20}$/.test(name)) continue;
    const info = await stat(join(directory, name)).catch(() => undefined);
    if (!info?.isFile()) continue;
    others.push(name);
    if (!name.endsWith(".jsonl") && (await startsLikeLog(join(directory, name)))) logLike.push(name);
  }
  // A log's active file is either beside its rotated files, or (before any rotation) the one
  // file there; a .jsonl file wins over notes and READMEs kept in the same directory. A .jsonl file
  // that is no rotated set's active file is another log: a file named like a rotated one beside it
  // must not make the directory stand for that decoy alone.
  const jsonl = others.filter((name) => name.endsWith(".jsonl"));
  // A log under another name (decisions.log) counts as one too, when its first line is a chained line.
  let candidates = [...bases, ...jsonl, ...logLike];
  if (bases.size === 0 && others.length === 1) candidates = others;
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length === 0) throw new ConfigurationError(`no decision log in ${directory}`);
  throw new ConfigurationError(`${directory} holds several logs (${candidates.sort().join(", ")}): pass the path of one of them`);
}

/** Whether a file's first line (within its first 64 KiB) is a chained decision-log line. */
async function startsLikeLog(file: string): Promise<boolean> {
  for await (const line of readLogLines(file, 64 * 1024)) {
    if (line.text === undefined) return false;
    try {
      return isChainedLine(JSON.parse(line.text));
    } catch {
      return false;
    }
  }
  return false;
}

/**
 * One line of a file, as {@link readLogLines} yields it.
 *
 * @example
 * ```ts
 * for await (const line of readLogLines("decisions.jsonl")) if (!line.terminated) console.log("cut:", line.number);
 * ```
 */
export interface LogLine {
  /** 1-based. */
  readonly number: number;
  /** Byte offset of the line's first byte in the file. */
  readonly offset: number;
  /** Length in bytes, without the newline. */
  readonly bytes: number;
  /** The line's text (UTF-8), or undefined when it is longer than the limit (it was skipped, not held) or is not UTF-8. */
  readonly text: string | undefined;
  /** Whether a newline ends it (only the last line of a file can lack one). */
  readonly terminated: boolean;
}

/**
 * Reads a file line by line with exact byte offsets, holding at most one line (up to
 * `maxLineBytes`) in memory. `readline` is not used because it hides whether the last line had
 * a newline (the sign of a cut write) and also splits on a bare `\r`.
 *
 * @example
 * ```ts
 * let lines = 0;
 * for await (const line of readLogLines("decisions.jsonl")) lines++;
 * ```
 */
export async function* readLogLines(file: string, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<LogLine> {
  const stream = createReadStream(file, { highWaterMark: 64 * 1024 });
  let parts: Buffer[] = [];
  let size = 0;
  let oversized = false;
  let number = 0;
  let offset = 0;
  const take = (piece: Buffer) => {
    size += piece.length;
    if (oversized) return;
    if (size > maxLineBytes) {
      oversized = true;
      parts = [];
      return;
    }
    if (piece.length > 0) parts.push(piece);
  };
  const line = (terminated: boolean): LogLine => {
    const result: LogLine = {
      number: ++number,
      offset,
      bytes: size,
      text: oversized ? undefined : utf8(parts.length === 1 ? parts[0]! : Buffer.concat(parts)),
      terminated,
    };
    offset += size + 1;
    parts = [];
    size = 0;
    oversized = false;
    return result;
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      if (newline === -1) {
        take(chunk.subarray(start));
        break;
      }
      take(chunk.subarray(start, newline));
      yield line(true);
      start = newline + 1;
    }
  }
  if (size > 0) yield line(false);
}

/** Reading one line: the parsed line, or why it is not one. */
type Reading = { line: ChainedLine } | { problem: LogProblemKind; message: string; seq?: number };

/**
 * Parses and checks one line on its own (shape, own hash, end): what does not need its neighbours.
 *
 * @example
 * ```ts
 * for await (const l of readLogLines(file)) {
 *   const reading = readChainedLine(l);
 *   if ("problem" in reading) console.error(l.number, reading.problem);
 * }
 * ```
 */
export function readChainedLine(line: LogLine, key?: KeyObject): Reading {
  if (line.text === undefined) {
    return { problem: "malformed", message: line.bytes > MAX_LINE_BYTES ? `the line is ${line.bytes} bytes long: a decision record never is` : "the line is not UTF-8 text: a decision record always is" };
  }
  if (line.text === "") return { problem: "malformed", message: "empty line (the writer never writes one)" };
  let value: unknown;
  try {
    value = JSON.parse(line.text);
  } catch {
    return line.terminated
      ? { problem: "malformed", message: "not JSON" }
      : { problem: "truncated", message: "the last line was cut in the middle (no newline at its end, and not complete JSON): a write was interrupted, or the file truncated" };
  }
  if (!isChainedLine(value)) {
    const seq = (value as { seq?: unknown } | null)?.seq;
    return {
      problem: line.terminated ? "malformed" : "truncated",
      message: "not a decision-log line (an object with a whole-number seq ≥ 1 and 64-hex-digit prevHash and hash)",
      ...(Number.isSafeInteger(seq) && { seq: seq as number }),
    };
  }
  // The text itself is checked, not only what JSON.parse makes of it: the writer writes the
  // canonical form, so a line with, say, a duplicated key ("decision":"allow", then the real
  // "decision":"deny") parses to the original and hashes right, yet reads otherwise to other tools.
  let canonical: string;
  try {
    const { hash: _hash, ...body } = value;
    canonical = canonicalJson(body);
  } catch {
    return { problem: "malformed", message: `seq ${value.seq}: the line holds a value no decision record holds (nested too deep, or not plain JSON)`, seq: value.seq };
  }
  if (lineDigest(canonical, key) !== value.hash) {
    const keyed = key === undefined ? "" : " (or was not written with this key and log name)";
    return { problem: "hash-mismatch", message: `seq ${value.seq}: the content does not match its hash: the line was changed after it was written${keyed}`, seq: value.seq };
  }
  if (line.text !== `${canonical.slice(0, -1)},"hash":"${value.hash}"}`) {
    return {
      problem: "hash-mismatch",
      message: `seq ${value.seq}: the line's text is not the canonical form it was written in (a key repeated, reordered or re-spaced): it was edited`,
      seq: value.seq,
    };
  }
  if (!line.terminated) {
    return { problem: "truncated", message: `seq ${value.seq}: the last line has no newline at its end: the file was cut`, seq: value.seq };
  }
  if (value.type !== undefined && value.type !== "chain-break" && value.type !== "records-dropped") {
    return { problem: "malformed", message: `seq ${value.seq}: unknown line type ${JSON.stringify(value.type)}`, seq: value.seq };
  }
  if (value.type === "records-dropped") {
    // As the writer writes it, and nothing else: a line that drops nothing explains nothing.
    const { count, time } = value as { count?: unknown; time?: unknown };
    const fields = Object.keys(value).length;
    if (!Number.isSafeInteger(count) || (count as number) < 1 || typeof time !== "string" || fields !== 6) {
      return { problem: "malformed", message: `seq ${value.seq}: a records-dropped line must be { time, count ≥ 1 } and its chain fields, as the writer writes it`, seq: value.seq };
    }
  }
  return { line: value };
}

interface Verified {
  readonly file: string;
  readonly line: number;
  readonly seq: number;
  readonly hash: string;
}

class Verifier {
  private records = 0;
  private droppedRecords = 0;
  private last: Verified | undefined;
  private anchorSeen = false;

  constructor(
    private readonly files: readonly string[],
    private readonly options: z.infer<typeof optionsSchema>,
    private readonly key: KeyObject | undefined,
  ) {}

  async run(): Promise<LogVerification> {
    for (let index = 0; index < this.files.length; index++) {
      const file = this.files[index]!;
      const lines = readLogLines(file);
      try {
        for await (const l of lines) {
          const problem = await this.check(file, l, lines, index);
          if (problem) return this.result(problem);
        }
      } catch (error) {
        // A file that cannot be read (permissions, a directory named like a rotated file) is not a verdict on the log.
        if ((error as NodeJS.ErrnoException).code === undefined) throw error;
        throw new ConfigurationError(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
      } finally {
        await lines.return(undefined);
      }
    }
    const { to } = this.options;
    if (to && !this.anchorSeen) {
      const file = this.files.at(-1)!;
      return this.result({
        file,
        line: this.last?.file === file ? this.last.line + 1 : 1,
        kind: "missing",
        message: `the log ends at seq ${this.last?.seq ?? 0}, but the anchor says seq ${to.seq} was written: lines were cut from the end`,
      });
    }
    return this.result(undefined);
  }

  private result(problem: LogProblem | undefined): LogVerification {
    return {
      ok: problem === undefined,
      records: this.records,
      droppedRecords: this.droppedRecords,
      files: this.files,
      ...(this.last && { last: { seq: this.last.seq, hash: this.last.hash } }),
      ...(problem && { firstProblem: problem }),
    };
  }

  private async check(file: string, l: LogLine, rest: AsyncGenerator<LogLine>, index: number): Promise<LogProblem | undefined> {
    const at = (kind: LogProblemKind, message: string, seq?: number): LogProblem => ({ file, line: l.number, ...(seq !== undefined && { seq }), kind, message });
    const reading = readChainedLine(l, this.key);
    const from = this.options.from;
    if (this.last === undefined && from !== undefined) {
      // The lines before the start asked for (a pruned head, or everything up to a recorded
      // chain-break) are not verified: verification starts at from.seq.
      const seq = "problem" in reading ? reading.seq : reading.line.seq;
      if (seq === undefined || seq < from.seq) return undefined;
    }
    if ("problem" in reading) {
      const explained = await this.recordedBreak(file, index);
      if (explained) {
        return at("chain-break", `${reading.message}; the writer found this when it started and recorded a chain-break (${explained}), continuing the chain after the last intact line`, reading.seq);
      }
      return at(reading.problem, reading.message, reading.seq);
    }
    const line = reading.line;
    const last = this.last;
    if (last === undefined) {
      const startSeq = from?.seq ?? 1;
      if (line.seq !== startSeq) {
        return at(
          "head-missing",
          from
            ? `the log starts at seq ${line.seq}, not at seq ${startSeq} as given in from`
            : `the log starts at seq ${line.seq}, not 1: its first ${line.seq - 1} record(s) are not here (older files deleted or pruned by maxFiles?); to verify what remains, pass { from: { seq: ${line.seq} } }`,
          line.seq,
        );
      }
      const startHash = from ? from.prevHash : GENESIS_HASH;
      if (startHash !== undefined && line.prevHash !== startHash) {
        return at("broken-link", from ? `seq ${line.seq}: prevHash is not the one given in from` : "seq 1: prevHash is not the genesis hash (64 zeros)", line.seq);
      }
    } else {
      const expected = last.seq + 1;
      if (line.seq > expected) {
        const later = await this.findLater(rest, expected, line.seq);
        if (later !== undefined) {
          return at("reordered", `seq ${line.seq} where seq ${expected} was expected; seq ${later.seq} comes later, at line ${later.line}: lines were moved`, line.seq);
        }
        const where = last.file === file ? "" : ` (between ${basename(last.file)} and ${basename(file)}: a rotated file missing?)`;
        return at(
          "missing",
          `seq ${line.seq} follows seq ${last.seq}: ${line.seq - expected} record(s) (seq ${expected}..${line.seq - 1}) are missing${where}: lines deleted (the writer records the records it loses as a records-dropped line, never as a gap; a log written before it did, by an earlier version, shows them as a gap too)`,
          line.seq,
        );
      }
      if (line.seq < expected) {
        return at("reordered", `seq ${line.seq} comes after seq ${last.seq}: a line was moved, duplicated or inserted`, line.seq);
      }
      if (line.prevHash !== last.hash) {
        return at("broken-link", `seq ${line.seq}: prevHash is not the hash of seq ${last.seq}: this line or the one before was replaced`, line.seq);
      }
    }
    if (line.type === "chain-break") {
      return at("chain-break", `seq ${line.seq}: the writer recorded a chain-break here: ${describeBreak(line)}`, line.seq);
    }
    const to = this.options.to;
    if (to && line.seq === to.seq) {
      this.anchorSeen = true;
      if (to.hash !== undefined && line.hash !== to.hash) {
        return at("hash-mismatch", `seq ${line.seq}: its hash is not the anchor's: the chain was rewritten up to here`, line.seq);
      }
    }
    this.last = { file, line: l.number, seq: line.seq, hash: line.hash };
    if (line.type === "records-dropped") {
      const count = line["count"];
      this.droppedRecords += typeof count === "number" && Number.isSafeInteger(count) && count > 0 ? count : 0;
      return undefined;
    }
    this.records++;
    return undefined;
  }

  /** Looks through the rest of the file for a seq in [from, to): present means moved, absent means missing. */
  private async findLater(rest: AsyncGenerator<LogLine>, from: number, to: number): Promise<{ seq: number; line: number } | undefined> {
    for await (const l of rest) {
      if (l.text === undefined) continue;
      let seq: unknown;
      try {
        seq = (JSON.parse(l.text) as { seq?: unknown } | null)?.seq;
      } catch {
        continue;
      }
      if (typeof seq === "number" && seq >= from && seq < to) return { seq, line: l.number };
    }
    return undefined;
  }

  /**
   * Whether the damage just found in `file` is the damage a writer recorded: the next file starts
   * with a chain-break line that names this file and links to the last intact line before it.
   */
  private async recordedBreak(file: string, index: number): Promise<string | undefined> {
    const next = this.files[index + 1];
    if (next === undefined) return undefined;
    const lines = readLogLines(next);
    try {
      const first = await lines.next();
      if (first.done) return undefined;
      const reading = readChainedLine(first.value, this.key);
      if (!("line" in reading) || reading.line.type !== "chain-break" || reading.line["file"] !== basename(file)) return undefined;
      const expectedSeq = (this.last?.seq ?? (this.options.from ? this.options.from.seq - 1 : 0)) + 1;
      const expectedHash = this.last?.hash ?? (this.options.from ? this.options.from.prevHash : GENESIS_HASH);
      if (reading.line.seq !== expectedSeq || (expectedHash !== undefined && reading.line.prevHash !== expectedHash)) return undefined;
      return `${basename(next)}:1, ${describeBreak(reading.line)}`;
    } finally {
      await lines.return(undefined);
    }
  }
}

/** Strict UTF-8: bytes that are not UTF-8 (which a lenient decoder reads as U+FFFD) make the line unreadable. */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function utf8(bytes: Buffer): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

function describeBreak(line: ChainedLine): string {
  // The line's own words, quoted: they came from the file.
  const reason = typeof line["reason"] === "string" ? JSON.stringify(line["reason"]) : "unknown reason";
  const file = typeof line["file"] === "string" ? ` in ${JSON.stringify(line["file"])}` : "";
  const bytes = typeof line["damagedBytes"] === "number" ? `, ${line["damagedBytes"]} byte(s) after the last intact line` : "";
  return `${reason}${file}${bytes}`;
}
