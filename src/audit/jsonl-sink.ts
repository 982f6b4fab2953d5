/**
 * `createJsonlSink(options)`: decision records as JSON Lines in a local file, hash-chained
 * (see `hash-chain.ts`), rotated by size, written off the call path.
 *
 * How it stays off the call path: `write()` only queues the record (a reference: records are
 * immutable, see {@link JsonlSink.write}). An async writer serializes, chains and writes the
 * queued records in batches every `flushIntervalMs` (sooner when a batch is full): one
 * `open(path, "a")`, one `writev`, one `close` per batch. Serializing in `write()` instead cost
 * the governed call ~15-25 µs at the median (a cache-cold serialization of ~1 KB of JSON), three
 * times the rest of the logging; in the writer the same work runs once per batch. Opening by path
 * for each batch costs a few microseconds per batch, and is what notices a removed directory or a
 * file moved away, instead of writing on into an unlinked inode and losing everything silently.
 *
 * On-disk layout: the active file is `path`; a full file is renamed to
 * `<path>.<firstSeq>-<lastSeq>` (12-digit zero-padded, so `ls` sorts them) and the chain goes on
 * in a new `path`.
 * @module
 */
import { KeyObject } from "node:crypto";
import { realpathSync } from "node:fs";
import { open, readdir, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { z } from "zod";
import { ConfigurationError } from "../errors.js";
import { describeZodError } from "../validation.js";
import type { DecisionRecord } from "./decision-record.js";
import { chainEvent, chainSnapshot, genesisState, isChainedLine, lineHash, optionalChainKey, snapshotRecord, type ChainState, type RecordSnapshot } from "./hash-chain.js";
import { DecisionSinkError, type DecisionSink } from "./sink.js";
import { MAX_LINE_BYTES, readLogLines, rotatedRange } from "./verify-log.js";

/**
 * Options of {@link createJsonlSink}.
 *
 * @example
 * ```ts
 * const options: JsonlSinkOptions = { path: "/var/log/warden/decisions.jsonl", maxBytes: 16 * 1024 * 1024, maxFiles: 50 };
 * ```
 */
export interface JsonlSinkOptions {
  /** The active log file. Its directory must exist: the sink never creates directories. */
  readonly path: string;
  /**
   * Rotate before the active file would grow beyond this many bytes (default 64 MiB, at least
   * 1 KiB). A single record larger than this still goes in, alone in its file.
   */
  readonly maxBytes?: number;
  /**
   * Keep at most this many rotated files, deleting the oldest (default: keep all). Deleting old
   * files cuts the head off the chain: `verifyDecisionLog` then reports `head-missing` unless
   * it is told where the log now starts (`from: { seq }`, the first seq in the oldest file's name).
   */
  readonly maxFiles?: number;
  /** How long a record may wait in memory before its batch is written (default 100 ms; 0: at the next turn of the event loop). */
  readonly flushIntervalMs?: number;
  /**
   * How many records may wait in memory while the file cannot be written (default 10,000). Beyond
   * that the oldest are dropped and counted in `dropped`; a `records-dropped` line with their count
   * takes their place in the chain, so the verifier reports them (`droppedRecords`).
   */
  readonly maxQueue?: number;
  /** How often to retry while the sink is failing (default 1,000 ms). */
  readonly retryIntervalMs?: number;
  /**
   * Call `fdatasync` after each batch, so that `flush()` resolves only once the records would
   * survive a power loss (default false: `flush()` resolves once the operating system has them,
   * which survives a crash of the process but not of the machine).
   */
  readonly fsync?: boolean;
  /**
   * Called when the sink starts failing, when its failure changes, and when records are dropped
   * (default: a process warning). Must not throw.
   */
  readonly onError?: (error: DecisionSinkError) => void;
  /**
   * A secret key (at least 32 bytes, or a secret `KeyObject`): each line's `hash` becomes an
   * HMAC-SHA256 under it, so someone who can rewrite the file but does not hold the key cannot
   * write lines that verify. Verify with the same key (`verifyDecisionLog(path, { key })`, the
   * CLI's `--key-file`). Keep it out of the log's directory.
   */
  readonly chainKey?: Uint8Array | KeyObject;
  /**
   * The log's name (with a `chainKey` only): its lines are hashed under a key derived from the
   * chain key and this name (HKDF), so a log written under the same key with another name — another
   * service's, or another environment's — does not verify in this one's place. Give each log that
   * shares a key a name of its own, and the verifier the same name (`verifyDecisionLog(path, { key,
   * logName })`, the CLI's `--log-name`). 1 to 200 letters, digits and `. _ - : / @`.
   */
  readonly logName?: string;
}

/**
 * A JSON Lines decision log on disk (see {@link createJsonlSink}).
 *
 * @example
 * ```ts
 * const sink: JsonlSink = createJsonlSink({ path: "decisions.jsonl" });
 * setInterval(() => metrics.gauge("warden.log.pending", sink.pending), 10_000).unref();
 * ```
 */
export interface JsonlSink extends DecisionSink {
  /**
   * Queues the record; it is serialized by the writer with its batch, within `flushIntervalMs`.
   * The record must not be changed after it is written (`DecisionRecord`'s fields are readonly,
   * and bedrock-warden never changes a record it has delivered): a change before its batch is
   * written would be logged. A record that cannot be serialized (a cycle, a BigInt) is dropped
   * when its batch is written, counted in `dropped`, reported to `onError`, and counted in a
   * `records-dropped` line at its place.
   */
  write(record: DecisionRecord): void;
  /**
   * Resolves once every record written before the call is in the file (handed to the operating
   * system; with `fsync`, on the disk); rejects with `failure` when they could not be written.
   * With nothing written yet it still checks that the log can be appended to, so
   * `await sink.flush()` at start-up is a readiness check (e.g. before serving with a fail-closed
   * governance).
   */
  flush(): Promise<void>;
  /** The active file's absolute path. */
  readonly path: string;
  /** Records accepted by `write` and not yet on disk (nor dropped). */
  readonly pending: number;
  /** Records lost: dropped from a full queue, unserializable, written after `close`, or cut short with a vanished file. */
  readonly dropped: number;
  /**
   * The last line on disk: publish it somewhere the log's writer cannot change (a ticket, another
   * system, a metric) and pass it to `verifyDecisionLog(path, { to })` to prove nothing was cut
   * from the end since. Undefined until the sink has read or written its file.
   */
  readonly last: { readonly seq: number; readonly hash: string } | undefined;
}

/** Defaults, and how many records one batch takes at most (bounds a batch's memory and its writev). */
const DEFAULTS = { maxBytes: 64 * 1024 * 1024, flushIntervalMs: 100, maxQueue: 10_000, retryIntervalMs: 1000 } as const;
const BATCH_RECORDS = 2048;
/** How much of a file's end is read at start-up to find its last line (a line is ~1 KB). */
const TAIL_WINDOW = 256 * 1024;
const SEQ_DIGITS = 12;

const optionsSchema = z
  .object({
    path: z
      .string({ error: 'is required: the log file\'s path, e.g. "/var/log/warden/decisions.jsonl"' })
      .min(1, 'must not be empty: e.g. "/var/log/warden/decisions.jsonl"')
      .refine((path) => !path.includes("\0"), "must not contain a NUL character")
      .refine((path) => !/[\\/]$/.test(path), "must name a file, not a directory (it ends with a path separator)"),
    maxBytes: z
      .number({ error: "must be a number of bytes, e.g. 67108864 (64 MiB)" })
      .int("must be a whole number of bytes")
      .min(1024, "must be at least 1024 (1 KiB)")
      .max(2 ** 40, "must be at most 1 TiB")
      .optional(),
    maxFiles: z
      .number({ error: "must be a number of rotated files to keep (leave it out to keep all)" })
      .int("must be a whole number")
      .min(1, "must be at least 1 (leave it out to keep every rotated file)")
      .optional(),
    flushIntervalMs: z
      .number({ error: "must be a number of milliseconds, e.g. 100" })
      .int("must be a whole number of milliseconds")
      .min(0, "must be 0 or more")
      .max(60_000, "must be at most 60,000 (records wait in memory that long)")
      .optional(),
    maxQueue: z
      .number({ error: "must be a number of records, e.g. 10000" })
      .int("must be a whole number")
      .min(1, "must be at least 1")
      .max(10_000_000, "must be at most 10,000,000")
      .optional(),
    retryIntervalMs: z
      .number({ error: "must be a number of milliseconds, e.g. 1000" })
      .int("must be a whole number of milliseconds")
      .min(10, "must be at least 10")
      .max(3_600_000, "must be at most 3,600,000 (an hour)")
      .optional(),
    fsync: z.boolean({ error: "must be true or false" }).optional(),
    onError: z.custom<(error: DecisionSinkError) => void>((v) => typeof v === "function", { message: "must be a function (error) => void" }).optional(),
    chainKey: z.custom<Uint8Array | KeyObject>((v) => v instanceof Uint8Array || v instanceof KeyObject, { message: "must be a Uint8Array/Buffer or a secret KeyObject" }).optional(),
    logName: z.string({ error: 'must be a string, e.g. "payments-prod"' }).optional(),
  })
  .strict();

/**
 * A decision sink that appends hash-chained JSON Lines to a local file: tamper-evident
 * (`verifyDecisionLog` finds a changed, deleted, inserted or moved line), rotated by size, and
 * written in batches by an async writer, so that `write()` costs the governed call only a push
 * onto a queue (the writer serializes the record with its batch: records are immutable).
 *
 * - **Continuing**: a new sink on an existing log reads its last line and continues its chain
 *   (seq and hash), across restarts and rotated files.
 * - **Damage found at start**: when the log's last line is cut (a crash during a write) or
 *   otherwise not intact, the sink never appends after it: it renames the damaged file into the
 *   rotated sequence (`<path>.<firstSeq>-<lastIntactSeq>`), and starts the new file with a
 *   `{"type":"chain-break", "file", "reason", "damagedBytes", ...}` line, chained to the last
 *   intact line. The verifier reports it as `chain-break` (the log stays not-ok: records may have
 *   been lost). A file at `path` that holds no decision-log line at all is refused (never renamed
 *   or appended to): the sink fails until it is moved away.
 * - **Failing**: when a batch cannot be written (`ENOSPC`, `EACCES`, `EROFS`, the directory
 *   removed, `path` a directory), `failure` is set, the records stay queued (up to `maxQueue`;
 *   then the oldest are dropped, and a `records-dropped` line with their count takes their place),
 *   the writer retries every `retryIntervalMs`, and `failure` is cleared by the first write that
 *   succeeds. A write cut short (the disk filled mid-batch) is resumed at the exact byte, so the
 *   file never holds a partial line once it recovers.
 * - **Exit**: records still queued are written before a normal exit (a `beforeExit` hook). That
 *   hook does not run on `process.exit()` or on a signal: call `await sink.close()` first.
 * - **One writer per log**: a second open sink on the same path in this process is refused
 *   (`ConfigurationError`); another process (or a sink on a hard link) appending to the file is
 *   caught at this sink's next batch, which then fails (`EOTHERWRITER`) and appends nothing more:
 *   two chains interleave in the file.
 * - Regular files only rotate; a device or a path under `/dev` or `/proc` (e.g. `/dev/stdout`,
 *   whatever it is redirected to) is appended to as is, each start beginning a new chain.
 *
 * @throws {@link ConfigurationError} when an option is malformed, or another open sink writes the
 * same path. Problems with the file itself are never thrown: they set `failure`.
 * @example
 * ```ts
 * import { createJsonlSink, verifyDecisionLog } from "bedrock-warden";
 *
 * const sink = createJsonlSink({ path: "/var/log/warden/decisions.jsonl", maxFiles: 100 });
 * const governance = createGovernance({ environment: "production", policies, sinks: [sink] });
 * // ...
 * await sink.close();
 * console.log(await verifyDecisionLog("/var/log/warden/decisions.jsonl")); // { ok: true, records: ..., files: [...] }
 * ```
 */
export function createJsonlSink(options: JsonlSinkOptions): JsonlSink {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw new ConfigurationError(`Invalid JSON Lines sink options: ${describeZodError(parsed.error, "jsonlSink", optionsSchema)}`);
  const given = resolve(parsed.data.path);
  // A device alias (/dev/stdout, /proc/self/fd/1) is written through as named: resolved, it would
  // name whatever the descriptor points at (the file a service's output is redirected to, which
  // this sink must neither rotate nor claim).
  const path = isDeviceAlias(given) ? given : canonicalPath(given);
  if (openPaths.has(path)) {
    // Two writers appending to one chain would interleave two seq counters: the log would never verify.
    throw new ConfigurationError(`jsonlSink.path: another open sink already writes ${path}: close() it first, or give each sink its own file`);
  }
  const key = optionalChainKey(parsed.data.chainKey, parsed.data.logName, { key: "jsonlSink.chainKey", logName: "jsonlSink.logName" });
  return new JsonlFileSink({ ...parsed.data, path }, key);
}

/**
 * The file a path names, through any symbolic link (the file's or a directory's): two sinks on one
 * file under two names would interleave two chains, and neither would see it fail. For a file not
 * created yet, its directory's real path and its name.
 */
function canonicalPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    try {
      return join(realpathSync(dirname(path)), basename(path));
    } catch {
      return path;
    }
  }
}

/** A path under /dev or /proc: a stream the process writes to, never a log file of its own. */
function isDeviceAlias(path: string): boolean {
  return path.startsWith("/dev/") || path.startsWith("/proc/");
}

/** The paths of the sinks open in this process (one writer per log; other writers are caught by the file's size). */
const openPaths = new Set<string>();

/** A chained line waiting to be written. */
interface PreparedLine {
  readonly data: Buffer;
  readonly seq: number;
  readonly hash: string;
  /** False for a chain event (a chain-break): it is not one of the records `write` accepted. */
  readonly record: boolean;
}

/** What start-up learned about a file of the log. */
interface Inspection {
  /** The seq of its first intact line. */
  readonly firstSeq?: number;
  /** Its last intact line. */
  readonly lastGood?: { readonly seq: number; readonly hash: string };
  /** What follows the last intact line, when anything does. */
  readonly damage?: { readonly reason: string; readonly bytes: number };
  /** It holds no decision-log line at all and does not look like a cut first write: not ours. */
  readonly foreign?: boolean;
  /** Decision-log lines, none of which verifies: written with another chain key (or without one, or with one and none is given now). */
  readonly otherKey?: boolean;
}

class JsonlFileSink implements JsonlSink {
  readonly name = "jsonl";
  readonly path: string;
  private readonly directory: string;
  private readonly base: string;
  private readonly maxBytes: number;
  private readonly maxFiles: number | undefined;
  private readonly flushIntervalMs: number;
  private readonly maxQueue: number;
  private readonly retryIntervalMs: number;
  private readonly fsync: boolean;
  private readonly onError: ((error: DecisionSinkError) => void) | undefined;

  /**
   * Records written, not yet chained; `queue[head]` is the oldest. A number stands for that many
   * records lost at that place (not objects): a `records-dropped` line counts them there.
   */
  private queue: (DecisionRecord | number)[] = [];
  private head = 0;
  /** Records lost since the last line chained: the next `records-dropped` line's count. */
  private skip = 0;
  /** Records lost and not yet counted by a `records-dropped` line (queued or in `skip`): flush and close wait for it. */
  private unchained = 0;
  /** Chained lines not yet (fully) on disk; `partial` bytes of the first are already written. */
  private prepared: PreparedLine[] = [];
  private partial = 0;
  /** The inode the partial line was written to: if the file changed since, its rest is useless. */
  private partialFile: { dev: number; ino: number } | undefined;
  /** The active file's size after this sink's last write to it (or when it was read): larger means another writer, smaller a cut. */
  private expectedSize: number | undefined;
  /** The last chained line (prepared lines chain from it). */
  private chain: ChainState;
  private readonly key: KeyObject | undefined;
  /** The key is derived from a log name (said in the errors that concern it). */
  private readonly named: boolean;
  private lastOnDisk: { seq: number; hash: string } | undefined;
  /** The active file as last seen: which inode, and the first seq written to it. */
  private activeFile: { dev: number; ino: number } | undefined;
  private activeFirstSeq: number | undefined;
  private regular = true;
  private started = false;

  private accepted = 0;
  private settled = 0;
  private droppedCount = 0;
  private flushTarget = 0;
  private currentFailure: DecisionSinkError | undefined;
  private dropReported = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private lateDropReported = false;
  private exitFlushFailed = false;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Number.POSITIVE_INFINITY;

  constructor(options: z.infer<typeof optionsSchema>, key: KeyObject | undefined) {
    this.key = key;
    this.named = options.logName !== undefined;
    this.chain = genesisState(key);
    this.path = resolve(options.path);
    this.directory = dirname(this.path);
    this.base = basename(this.path);
    this.maxBytes = options.maxBytes ?? DEFAULTS.maxBytes;
    this.maxFiles = options.maxFiles;
    this.flushIntervalMs = options.flushIntervalMs ?? DEFAULTS.flushIntervalMs;
    this.maxQueue = options.maxQueue ?? DEFAULTS.maxQueue;
    this.retryIntervalMs = options.retryIntervalMs ?? DEFAULTS.retryIntervalMs;
    this.fsync = options.fsync ?? false;
    this.onError = options.onError;
    exitHooks.add(this);
    openPaths.add(this.path);
    // Read the existing log now rather than at the first record: a fail-closed governance should
    // know before its first call whether its log is writable.
    this.schedule(0);
  }

  get failure(): Error | undefined {
    return this.currentFailure;
  }

  get pending(): number {
    return this.accepted - this.settled;
  }

  get dropped(): number {
    return this.droppedCount;
  }

  get last(): { seq: number; hash: string } | undefined {
    return this.lastOnDisk && { ...this.lastOnDisk };
  }

  // ---- the call path ------------------------------------------------------------------------

  write(record: DecisionRecord): void {
    if (this.closed) {
      this.droppedCount++;
      if (!this.lateDropReported) {
        this.lateDropReported = true;
        this.report(new DecisionSinkError(this.name, `a decision record was written to ${this.path} after close(): it was dropped (close the sink after the governed clients are done)`));
      }
      return;
    }
    this.accepted++;
    if (typeof record !== "object" || record === null || Array.isArray(record)) {
      // Lost evidence must show in the chain: a records-dropped line counts it at its place.
      this.droppedCount++;
      this.settled++;
      this.unchained++;
      this.queue.push(1);
      const kind = record === null ? "null" : Array.isArray(record) ? "an array" : typeof record;
      this.report(new DecisionSinkError(this.name, `a decision record must be an object, got ${kind}: it was dropped`));
      if (this.timer === undefined && this.running === undefined) this.schedule(this.flushIntervalMs);
      return;
    }
    this.queue.push(record);
    const queued = this.queue.length - this.head;
    if (queued > this.maxQueue) this.dropOldest();
    // A full batch goes out at once, unless the sink is failing: then the retry timer decides (retrying at every write would hammer a full disk).
    if (queued >= BATCH_RECORDS && this.currentFailure === undefined) this.schedule(0);
    else if (this.timer === undefined && this.running === undefined) this.schedule(this.flushIntervalMs);
  }

  // ---- flush, close, exit -------------------------------------------------------------------

  async flush(): Promise<void> {
    // Even with nothing to write, the first flush() runs the writer's start: `await sink.flush()`
    // at start-up is a readiness check.
    await this.drain(true);
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      // Closing a sink that never wrote anything must not fail for want of a directory: only pending records need the file.
      this.closing = this.drain(false).finally(() => {
        this.cancelTimer();
        exitHooks.delete(this);
        openPaths.delete(this.path);
      });
    }
    return this.closing;
  }

  /** Runs the writer until every record accepted so far is settled; rejects with the failure as soon as a run fails. */
  private async drain(checkStart: boolean): Promise<void> {
    const target = this.accepted;
    if (target > this.flushTarget) this.flushTarget = target;
    while (this.settled < target || this.unchained > 0 || (checkStart && !this.started)) {
      await this.runNow();
      if (this.currentFailure && (this.settled < target || this.unchained > 0 || !this.started)) throw this.currentFailure;
    }
  }

  /** Called from `beforeExit`: starts writing what is queued, once; a flush that fails is not retried forever (the process must be able to exit). */
  exitFlush(): void {
    if ((this.pending === 0 && this.unchained === 0) || this.exitFlushFailed) return;
    this.flush().catch((error: unknown) => {
      this.exitFlushFailed = true;
      process.emitWarning(
        `bedrock-warden: ${this.pending} decision record(s) could not be written to ${this.path} before exit: ${(error as Error).message}`,
        "BedrockWardenWarning",
      );
    });
  }

  // ---- scheduling ---------------------------------------------------------------------------

  private schedule(delayMs: number): void {
    if (this.closed && this.pending === 0 && this.prepared.length === 0) return;
    const due = Date.now() + delayMs;
    if (this.timer !== undefined) {
      if (this.timerDue <= due) return;
      this.cancelTimer();
    }
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Number.POSITIVE_INFINITY;
      void this.runNow();
    }, delayMs);
    // The writer must never keep a process alive: the beforeExit hook writes what is left.
    this.timer.unref();
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Number.POSITIVE_INFINITY;
  }

  /** Runs the writer (or waits for the run in progress): one run at a time, so lines go out in order. */
  private runNow(): Promise<void> {
    if (this.running) return this.running;
    this.cancelTimer();
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.currentFailure) this.schedule(this.retryIntervalMs);
      else if (this.queue.length > this.head || this.prepared.length > 0) this.schedule(this.queue.length - this.head >= BATCH_RECORDS ? 0 : this.flushIntervalMs);
    });
    return this.running;
  }

  private async run(): Promise<void> {
    try {
      if (!this.started) await this.start();
      do {
        this.prepare();
        if (this.prepared.length === 0) break;
        await this.writePrepared();
        // Keep going while there is a backlog or a flush() waits for more; otherwise let the next batch accumulate.
      } while (this.queue.length - this.head >= BATCH_RECORDS || this.settled < this.flushTarget);
      this.recovered();
    } catch (error) {
      this.failed(error);
    }
  }

  // ---- queue --------------------------------------------------------------------------------

  private dropOldest(): void {
    const oldest = this.queue[this.head]!;
    this.queue[this.head] = 0;
    this.head++;
    this.compact();
    if (typeof oldest === "number") {
      this.skip += oldest;
      return;
    }
    this.skip++;
    this.unchained++;
    this.droppedCount++;
    this.settled++;
    if (!this.dropReported) {
      this.dropReported = true;
      this.report(
        new DecisionSinkError(
          this.name,
          `more than ${this.maxQueue} decision records are waiting for ${this.path}: the oldest are being dropped (a records-dropped line in the log counts them)`,
          { cause: this.currentFailure },
        ),
      );
    }
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /** Chains queued records into prepared lines, up to one batch. Seq and hash are fixed here, once. */
  private prepare(): void {
    while (this.prepared.length < BATCH_RECORDS && this.head < this.queue.length) {
      const record = this.queue[this.head]!;
      this.queue[this.head] = 0;
      this.head++;
      if (typeof record === "number") {
        this.skip += record;
        continue;
      }
      let snapshot: RecordSnapshot;
      try {
        snapshot = snapshotRecord(record);
      } catch (error) {
        this.skip++;
        this.unchained++;
        this.droppedCount++;
        this.settled++;
        this.report(new DecisionSinkError(this.name, `a decision record could not be serialized and was dropped: ${(error as Error).message}`, { cause: error }));
        continue;
      }
      this.recordDrops();
      const { text, seq, hash } = chainSnapshot(this.chain, snapshot);
      this.prepared.push({ data: Buffer.from(`${text}\n`, "utf8"), seq, hash, record: true });
    }
    // Records lost after the last one chained show too, without waiting for another record.
    if (this.head === this.queue.length) this.recordDrops();
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else {
      this.compact();
    }
  }

  // ---- writing ------------------------------------------------------------------------------

  /** Writes the prepared lines: rotating between them when the active file is full; resuming a cut write at its byte. */
  private async writePrepared(): Promise<void> {
    let handle: FileHandle | undefined;
    try {
      let size = 0;
      const reopen = async () => {
        await handle?.close();
        handle = undefined;
        handle = await open(this.path, "a");
        const info = await handle.stat();
        if (info.isDirectory()) throw Object.assign(new Error(`EISDIR: ${this.path} is a directory`), { code: "EISDIR" });
        this.regular = info.isFile() && !isDeviceAlias(this.path);
        const same = this.activeFile !== undefined && this.activeFile.dev === info.dev && this.activeFile.ino === info.ino;
        if (!same) {
          // A new file (first batch, rotated, or moved away or deleted by someone else): its first seq is the first we write to it.
          this.activeFile = { dev: info.dev, ino: info.ino };
          this.activeFirstSeq = undefined;
          this.expectedSize = undefined;
        }
        if (this.regular && this.expectedSize !== undefined && info.size > this.expectedSize) {
          // Another process (or a sink on a hard link) appended to this file since our last write: two
          // chains interleave in it. Appending more would bury the evidence: fail until someone looks.
          throw this.otherWriter(info.size - this.expectedSize);
        }
        if (this.expectedSize !== undefined && info.size < this.expectedSize) {
          // Cut (copytruncate), or replaced under a reused inode number: what it held before is not
          // in it; its first seq is the first written to it from now on.
          this.activeFirstSeq = undefined;
        }
        this.expectedSize = info.size;
        if (this.partial > 0 && (this.partialFile?.dev !== info.dev || this.partialFile?.ino !== info.ino)) {
          // The first part of this line went to a file that is no longer at `path`: the rest alone would be garbage.
          const lost = this.prepared.shift()!;
          this.partial = 0;
          if (lost.record) {
            this.droppedCount++;
            this.settled++;
          }
        }
        size = info.size;
      };
      await reopen();
      while (this.prepared.length > 0) {
        if (this.regular && this.partial === 0 && size > 0 && size + this.prepared[0]!.data.length > this.maxBytes) {
          await handle!.close();
          handle = undefined;
          await this.rotate();
          await reopen();
          continue;
        }
        // The lines that fit in this file (at least one: a line larger than maxBytes goes alone into an empty file).
        const chunk: Buffer[] = [];
        let bytes = 0;
        for (let i = 0; i < this.prepared.length; i++) {
          const data = i === 0 ? this.prepared[0]!.data.subarray(this.partial) : this.prepared[i]!.data;
          if (this.regular && i > 0 && size + bytes + data.length > this.maxBytes) break;
          chunk.push(data);
          bytes += data.length;
        }
        const info = this.activeFile!;
        let written = 0;
        try {
          while (written < bytes) {
            const { bytesWritten } = await handle!.writev(written === 0 ? chunk : remaining(chunk, written));
            if (bytesWritten <= 0) throw Object.assign(new Error(`no bytes written to ${this.path}`), { code: "EIO" });
            written += bytesWritten;
          }
        } finally {
          this.commit(written, info);
          this.expectedSize = size + written;
        }
        size += written;
        if (this.fsync) await handle!.datasync();
      }
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  /** Takes `bytes` written from the front of the prepared lines: whole lines are on disk, the rest of a cut one is remembered. */
  private commit(bytes: number, file: { dev: number; ino: number }): void {
    let left = bytes + this.partial;
    while (this.prepared.length > 0 && left >= this.prepared[0]!.data.length) {
      const line = this.prepared.shift()!;
      left -= line.data.length;
      if (this.activeFirstSeq === undefined) this.activeFirstSeq = line.seq;
      this.lastOnDisk = { seq: line.seq, hash: line.hash };
      if (line.record) this.settled++;
    }
    this.partial = left;
    this.partialFile = left > 0 ? file : undefined;
    if (left > 0 && this.activeFirstSeq === undefined) this.activeFirstSeq = this.prepared[0]!.seq;
  }

  /** Renames the full active file to `<path>.<firstSeq>-<lastSeq>`, then prunes old files beyond maxFiles. */
  private async rotate(): Promise<void> {
    const last = this.lastOnDisk?.seq ?? this.chain.seq;
    const first = this.activeFirstSeq ?? last;
    const target = join(this.directory, rotatedName(this.base, first, last));
    await this.renameNoClobber(this.path, target);
    this.activeFile = undefined;
    this.activeFirstSeq = undefined;
    await this.prune();
  }

  private async renameNoClobber(from: string, to: string): Promise<void> {
    // rename() replaces an existing target silently: that would destroy evidence.
    const exists = await stat(to).then(
      () => true,
      (error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? false : Promise.reject(error)),
    );
    if (exists) throw Object.assign(new Error(`cannot rotate ${from}: ${to} already exists (refusing to overwrite a rotated file)`), { code: "EEXIST" });
    await rename(from, to);
  }

  private async prune(): Promise<void> {
    if (this.maxFiles === undefined) return;
    const rotated = await this.rotatedFiles();
    for (const name of rotated.slice(0, Math.max(0, rotated.length - this.maxFiles))) {
      // Losing old files is what maxFiles asks for; failing to delete one is worth a report, not a failure.
      await unlink(join(this.directory, name)).catch((error: unknown) =>
        this.report(new DecisionSinkError(this.name, `could not delete the old rotated file ${name}: ${(error as Error).message}`, { cause: error })),
      );
    }
  }

  /** The rotated files' names, oldest first. */
  private async rotatedFiles(): Promise<string[]> {
    const names = await readdir(this.directory);
    return names
      .map((name) => ({ name, range: rotatedRange(name, this.base) }))
      .filter((entry): entry is { name: string; range: [bigint, bigint] } => entry.range !== undefined)
      .sort((a, b) => (a.range[0] < b.range[0] ? -1 : a.range[0] > b.range[0] ? 1 : a.range[1] < b.range[1] ? -1 : a.range[1] > b.range[1] ? 1 : 0))
      .map((entry) => entry.name);
  }

  // ---- start-up -----------------------------------------------------------------------------

  /**
   * Finds where the chain stands: the active file's last line, or (when the active file is absent
   * or empty, e.g. right after a rotation) the last rotated file's. Damage there is never
   * appended to: see the chain-break in {@link createJsonlSink}'s description.
   */
  /** The log's chain cannot be continued: where it ends is not known. */
  private chainEndUnknown(file: string): Error {
    return Object.assign(
      new Error(
        `cannot tell where the chain of ${this.path} ends: ${file} holds no intact decision-log line, and neither does the file around it; ` +
          "verify the log (bedrock-warden verify-log), move the damaged files aside, and start again — continuing at seq 1 would mix two chains; it was left untouched",
      ),
      { code: "ECHAINEND" },
    );
  }

  /** The active file changed size between two of this sink's writes: something else writes it. */
  private otherWriter(bytes: number): Error {
    return Object.assign(
      new Error(
        `${this.path} was written (${bytes} bytes) by something other than this sink since its last write — another process, another sink on a hard link to the file, or a file put in its place — so its chain is not this sink's alone. ` +
          "Give each writer a log of its own; verify this one (bedrock-warden verify-log), move it aside, and restart: nothing more is appended to it",
      ),
      { code: "EOTHERWRITER" },
    );
  }

  /** A file of this log whose lines do not verify under this sink's chain key (or lack of one): never continued. */
  private otherKey(file: string): Error {
    return Object.assign(
      new Error(
        `${file} holds decision-log lines, none of which verifies ${this.key ? `with this sink's chainKey${this.named ? " and logName" : ""}` : "without a chainKey"}: it was written ${this.key ? "with another key or log name, or without a key" : "with one"} (or every line was changed). ` +
          "A log keeps the key and name it began with: give those, or start a new log (another path) for a new key or name; it was left untouched",
      ),
      { code: "EOTHERKEY" },
    );
  }

  private async start(): Promise<void> {
    // Can we append at all? Asked first, before anything is changed, so that a start that fails
    // here is retried from scratch (and so that `failure` says so before the first record).
    await open(this.path, "a").then(
      (handle) => handle.close(),
      (error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOENT") throw error;
        throw Object.assign(new Error(`ENOENT: the directory ${this.directory} does not exist (the sink never creates directories)`), { code: "ENOENT", cause: error });
      },
    );
    const active = await stat(this.path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw error;
    });
    if (active?.isDirectory()) throw Object.assign(new Error(`EISDIR: ${this.path} is a directory`), { code: "EISDIR" });
    if (active && (!active.isFile() || isDeviceAlias(this.path))) {
      // A device or a pipe: nothing to continue from, nothing to rotate.
      this.regular = false;
      this.started = true;
      return;
    }
    const rotated = await this.rotatedFiles();
    // Where the chain ends in the rotated files: the last one with an intact line. One file after it
    // may hold none (a first write cut by a crash, set aside, and the process gone before the
    // chain-break that says so was written): the break is written now. More, or none at all, and
    // the chain's end is unknown: the sink fails rather than start over at seq 1 in an old log.
    let previous: { name: string; inspection: Inspection } | undefined;
    let broken: { name: string; inspection: Inspection } | undefined;
    for (let index = rotated.length - 1; index >= 0; index--) {
      const name = rotated[index]!;
      const inspection = await inspect(join(this.directory, name), this.key);
      if (inspection.otherKey) throw this.otherKey(join(this.directory, name));
      if (inspection.lastGood) {
        previous = { name, inspection };
        break;
      }
      if (broken !== undefined || inspection.foreign) {
        broken = { name, inspection };
        previous = undefined;
        break;
      }
      broken = { name, inspection };
    }
    // Needed only when the active file cannot say where the chain ends itself.
    const endUnknown = broken !== undefined && previous === undefined ? this.chainEndUnknown(join(this.directory, broken.name)) : undefined;
    const continueFrom = (inspection: Inspection | undefined) => {
      if (inspection?.lastGood) this.chain = { seq: inspection.lastGood.seq, hash: inspection.lastGood.hash, ...(this.key && { key: this.key }) };
      this.lastOnDisk = inspection?.lastGood && { ...inspection.lastGood };
    };
    if (!active || active.size === 0) {
      if (endUnknown) throw endUnknown;
      continueFrom(previous?.inspection);
      if (broken) this.breakChain(broken.name, broken.inspection.damage ?? { reason: "no-intact-line", bytes: 0 });
      else if (previous?.inspection.damage) this.breakChain(previous.name, previous.inspection.damage);
      this.started = true;
      return;
    }
    const inspection = await inspect(this.path, this.key);
    if (inspection.otherKey) throw this.otherKey(this.path);
    if (inspection.foreign) {
      throw Object.assign(
        new Error(`${this.path} exists and holds no decision-log line: it is not a bedrock-warden log (move it away, or choose another path); it was left untouched`),
        { code: "EFOREIGN" },
      );
    }
    if (!inspection.damage) {
      continueFrom(inspection);
      this.activeFile = { dev: active.dev, ino: active.ino };
      this.activeFirstSeq = inspection.firstSeq;
      // The size it was read at: a line another writer appends from now on (or appended while it
      // was read) is caught at the first batch, before anything is appended after it.
      this.expectedSize = active!.size;
      this.started = true;
      return;
    }
    // The active file's end is damaged: continue from its last intact line (or, if it has none, from the rotated file before it).
    if (!inspection.lastGood && broken !== undefined) throw endUnknown ?? this.chainEndUnknown(this.path);
    continueFrom(inspection.lastGood ? inspection : previous?.inspection);
    const first = inspection.firstSeq ?? this.chain.seq + 1;
    const name = rotatedName(this.base, first, this.chain.seq);
    await this.renameNoClobber(this.path, join(this.directory, name));
    this.breakChain(name, inspection.damage);
    this.started = true;
  }

  /** Prepares the chain-break line, first in the new file, chained to the last intact line. */
  /**
   * Records lost here (dropped from a full queue, unserializable) become one chained line of their
   * own, `records-dropped`, with their count: the chain has no gap a writer made, so a gap in it is
   * lines deleted from the log.
   */
  private recordDrops(): void {
    if (this.skip === 0) return;
    const { text, seq, hash } = chainEvent(this.chain, "records-dropped", { time: new Date().toISOString(), count: this.skip });
    this.unchained -= this.skip;
    this.skip = 0;
    this.prepared.push({ data: Buffer.from(`${text}\n`, "utf8"), seq, hash, record: false });
  }

  private breakChain(file: string, damage: { reason: string; bytes: number }): void {
    const { text, seq, hash } = chainEvent(this.chain, "chain-break", {
      time: new Date().toISOString(),
      file,
      reason: damage.reason,
      damagedBytes: damage.bytes,
    });
    this.prepared.unshift({ data: Buffer.from(`${text}\n`, "utf8"), seq, hash, record: false });
  }

  // ---- failure ------------------------------------------------------------------------------

  private failed(error: unknown): void {
    const cause = error as NodeJS.ErrnoException;
    const waiting = this.pending;
    const message = `cannot write decision records to ${this.path}: ${cause?.message ?? String(error)}; ${waiting} record(s) waiting (at most ${this.maxQueue} are kept), retrying every ${this.retryIntervalMs} ms`;
    const previous = this.currentFailure?.cause as NodeJS.ErrnoException | undefined;
    this.currentFailure = new DecisionSinkError(this.name, message, { cause: error });
    if (previous === undefined || previous.code !== cause?.code || previous.message !== cause?.message) this.report(this.currentFailure);
  }

  private recovered(): void {
    if (this.currentFailure === undefined) return;
    this.currentFailure = undefined;
    this.dropReported = false;
    this.exitFlushFailed = false;
  }

  private report(error: DecisionSinkError): void {
    try {
      if (this.onError) this.onError(error);
      else process.emitWarning(`bedrock-warden: ${error.message}`, "BedrockWardenWarning");
    } catch {
      // onError must not throw; if it does, the sink keeps its contract (never throw on the call path) regardless.
    }
  }
}

/** Everything but the first `skip` bytes of `chunk`. */
function remaining(chunk: readonly Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const buffer of chunk) {
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    out.push(skip > 0 ? buffer.subarray(skip) : buffer);
    skip = 0;
  }
  return out;
}

/**
 * The name of a rotated file: `<base>.<firstSeq>-<lastSeq>`, zero-padded to 12 digits so that
 * a directory listing sorts them (the verifier orders them by number, whatever their length).
 *
 * @example
 * ```ts
 * rotatedName("decisions.jsonl", 1, 41000); // "decisions.jsonl.000000000001-000000041000"
 * ```
 */
export function rotatedName(base: string, firstSeq: number, lastSeq: number): string {
  return `${base}.${String(firstSeq).padStart(SEQ_DIGITS, "0")}-${String(lastSeq).padStart(SEQ_DIGITS, "0")}`;
}

// ---- reading a file's state at start-up ------------------------------------------------------

/**
 * Where a file's chain stands. Fast path: the last line from a window at the end of the file and
 * the first seq from its start. Anything unusual (a damaged end, a very long line, an unreadable
 * first line) falls back to reading the file once, line by line.
 */
async function inspect(file: string, key: KeyObject | undefined): Promise<Inspection> {
  const handle = await open(file, "r");
  let small: boolean;
  try {
    const { size } = await handle.stat();
    if (size === 0) return {};
    const window = Math.min(size, TAIL_WINDOW);
    small = window === size;
    const head = await readAt(handle, 0, window);
    const tail = small ? head : await readAt(handle, size - window, window);
    const headEnd = head.indexOf(10);
    const firstLine = headEnd === -1 ? undefined : parseLine(head.subarray(0, headEnd).toString("utf8"));
    const lastNewline = tail.lastIndexOf(10);
    const previous = lastNewline <= 0 ? -1 : tail.lastIndexOf(10, lastNewline - 1);
    if (lastNewline !== -1 && (previous !== -1 || small)) {
      const lastLine = intactLine(tail.subarray(previous + 1, lastNewline).toString("utf8"), key);
      if (firstLine && lastLine) {
        // The usual cases: an intact end, or an intact line followed by one cut write (a crash).
        const cut = tail.length - 1 - lastNewline;
        return { firstSeq: firstLine.seq, lastGood: lastLine, ...(cut > 0 && { damage: { reason: "truncated-line", bytes: cut } }) };
      }
    }
    // A large file that neither starts like a decision log nor ends like one is someone else's:
    // refuse it without reading gigabytes of it.
    if (!small && !firstLine) return { foreign: true };
  } finally {
    await handle.close();
  }
  return scan(file, key);
}

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let read = 0;
  while (read < length) {
    const { bytesRead } = await handle.read(buffer, read, length - read, position + read);
    if (bytesRead === 0) break;
    read += bytesRead;
  }
  return buffer.subarray(0, read);
}

function parseLine(text: string): { seq: number; hash: string; prevHash: string } | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isChainedLine(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The line's seq and hash when it is a chained line whose hash matches its content. */
function intactLine(text: string, key: KeyObject | undefined): { seq: number; hash: string } | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (!isChainedLine(value) || lineHash(value, key) !== value.hash) return undefined;
    return { seq: value.seq, hash: value.hash };
  } catch {
    return undefined;
  }
}

/** Reads the whole file once: its first intact line, its last intact line, and what follows that. */
async function scan(file: string, key: KeyObject | undefined): Promise<Inspection> {
  let firstSeq: number | undefined;
  let lastGood: { seq: number; hash: string } | undefined;
  let lastGoodEnd = 0;
  let damageReason: string | undefined;
  let end = 0;
  let lines = 0;
  let sawNewline = false;
  let startsLikeJson = false;
  let chainedLines = 0;
  for await (const line of readLogLines(file, MAX_LINE_BYTES)) {
    lines++;
    if (line.number === 1) startsLikeJson = line.text?.startsWith("{") ?? false;
    if (line.terminated) sawNewline = true;
    end = line.offset + line.bytes + (line.terminated ? 1 : 0);
    const intact = line.terminated && line.text !== undefined ? intactLine(line.text, key) : undefined;
    if (intact) {
      firstSeq ??= intact.seq;
      lastGood = intact;
      lastGoodEnd = end;
      damageReason = undefined;
    } else {
      const parsed = line.text === undefined ? undefined : parseLine(line.text);
      if (parsed) chainedLines++;
      damageReason ??= !line.terminated ? "truncated-line" : parsed ? "hash-mismatch" : "malformed-line";
    }
  }
  if (lines === 0) return {};
  if (!lastGood) {
    // Nothing intact. One cut line that starts like a record is our own first write, interrupted;
    // anything else (a file with lines, none of them ours) belongs to someone else.
    if (chainedLines > 1 || (chainedLines === 1 && sawNewline)) return { foreign: true, otherKey: true };
    if (sawNewline || !startsLikeJson) return { foreign: true };
    return { damage: { reason: damageReason ?? "truncated-line", bytes: end } };
  }
  const damage = damageReason === undefined ? undefined : { reason: damageReason, bytes: end - lastGoodEnd };
  return { firstSeq: firstSeq!, lastGood, ...(damage && { damage }) };
}

// ---- the exit hook ---------------------------------------------------------------------------

/**
 * One `beforeExit` listener for all open sinks (a listener per sink would trip Node's
 * max-listeners warning in programs that open many), installed while any sink is open.
 */
const exitHooks = new (class {
  private readonly sinks = new Set<JsonlFileSink>();
  private readonly listener = () => {
    for (const sink of this.sinks) sink.exitFlush();
  };

  add(sink: JsonlFileSink): void {
    if (this.sinks.size === 0) process.on("beforeExit", this.listener);
    this.sinks.add(sink);
  }

  delete(sink: JsonlFileSink): void {
    if (!this.sinks.delete(sink)) return;
    if (this.sinks.size === 0) process.off("beforeExit", this.listener);
  }
})();
