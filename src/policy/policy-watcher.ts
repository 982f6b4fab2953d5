/**
 * `watchPolicies(governance, directory)`: the policies of a directory, reloaded when its `*.cedar`
 * files change. A broken edit (a syntax error, a misspelled attribute, an emptied directory, a
 * file that cannot be read) is reported and the last good set keeps deciding: an edit never opens
 * or closes everything.
 * @module
 */
import { createHash } from "node:crypto";
import { readdirSync, statSync, watch, type FSWatcher } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { ConfigurationError, PolicyLoadError, WardenError } from "../errors.js";
import type { Governance } from "../governance.js";
import { describeZodError } from "../validation.js";
import { claimPolicyFeed } from "./policy-feed.js";
import { policiesFromDirectory, type PolicyDocument } from "./sources.js";

/**
 * What {@link watchPolicies} reports after a reload.
 *
 * @example
 * ```ts
 * const onReload = (event: PolicyReloadEvent) => console.log(`${event.previousVersion} -> ${event.version}: ${event.changed.join(", ")}`);
 * ```
 */
export interface PolicyReloadEvent {
  /** The version of the set deciding now (`governance.policySetVersion`). */
  readonly version: string;
  /** The version that decided before (equal to `version` when a broken edit was reverted). */
  readonly previousVersion: string;
  /** Every policy file loaded, as `policiesFromDirectory` names them (the directory you gave, joined). */
  readonly files: readonly string[];
  /** The files added, changed or removed since the last set this watcher loaded. */
  readonly changed: readonly string[];
}

/**
 * Options of {@link watchPolicies}.
 *
 * @example
 * ```ts
 * const options: WatchPoliciesOptions = {
 *   debounceMs: 200,
 *   pollMs: 5_000,
 *   onReload: ({ version }) => logger.info({ version }, "policies reloaded"),
 *   onError: (error, kept) => logger.error({ kept, error: error.message }, "policies not reloaded"),
 * };
 * ```
 */
export interface WatchPoliciesOptions {
  /** How long the directory must stay quiet before it is read (default 200 ms): one reload per save, not per write. */
  readonly debounceMs?: number;
  /**
   * Also compare a content hash of the `*.cedar` files every `pollMs` (off by default). File-system
   * events are missed on network and container mounts, and by some editors' write patterns: polling
   * catches those changes too.
   */
  readonly pollMs?: number;
  /** Called after a reload that changed the deciding set, or that follows a reported error. */
  readonly onReload?: (event: PolicyReloadEvent) => void;
  /**
   * Called when the directory changed but could not be loaded; the set that decided before keeps
   * deciding (`keptVersion`). A {@link PolicyLoadError} lists every problem as `file:line:column`.
   * Default: `process.emitWarning` with the problems. Each broken state is reported once.
   */
  readonly onError?: (error: PolicyLoadError | Error, keptVersion: string) => void;
}

/**
 * A running policy watcher, from {@link watchPolicies}.
 *
 * @example
 * ```ts
 * process.on("SIGHUP", () => watcher.check());
 * process.on("SIGTERM", () => void watcher.close());
 * ```
 */
export interface PolicyWatcher {
  /** The version of the policy set deciding now. */
  readonly version: string;
  /** The last error reported, until a reload succeeds again. */
  readonly lastError: Error | undefined;
  /**
   * Reads the directory now, without waiting for an event, and reloads it if it changed: what a
   * `SIGHUP` handler calls. Says what happened; the outcome is also reported to the callbacks.
   */
  check(): "reloaded" | "unchanged" | "failed";
  /** Stops watching. Safe to call more than once. */
  close(): Promise<void>;
}

const DEFAULT_DEBOUNCE_MS = 200;
// A directory that keeps changing is still read at least this often (in debounce periods).
const MAX_WAIT_PERIODS = 10;
// A file that vanishes between the listing and the read is an editor mid-save more often than a
// broken directory: read again before reporting it.
const TRANSIENT_RETRIES = 3;
// How often to try to watch a directory that is missing or was replaced.
const REWATCH_MS = 1_000;

const optionsSchema = z
  .object({
    debounceMs: z.number({ error: "must be a number of milliseconds" }).int("must be a whole number").min(0, "must be 0 or more").max(60_000, "must be at most 60,000").optional(),
    pollMs: z.number({ error: "must be a number of milliseconds" }).int("must be a whole number").min(10, "must be at least 10").max(86_400_000, "must be at most a day").optional(),
    onReload: z.custom<WatchPoliciesOptions["onReload"]>((v) => typeof v === "function", { message: "must be a function (event) => void" }).optional(),
    onError: z.custom<WatchPoliciesOptions["onError"]>((v) => typeof v === "function", { message: "must be a function (error, keptVersion) => void" }).optional(),
  })
  .strict();

/**
 * Watches a directory of `*.cedar` files (recursively) and reloads the governance's policies when
 * they change: `governance.reload(policiesFromDirectory(directory))`, debounced. The directory is
 * read once at start, so an edit made between `createGovernance` and this call is not missed.
 *
 * Editors that save by writing a temporary file and renaming it over the original, files added or
 * removed, subdirectories, and a directory removed and created again are all followed. A change that does not load — a syntax error, a misspelled attribute
 * (validated against the schema), an empty directory, an unreadable file — is reported through
 * `onError` and the last good set keeps deciding. Every decision names the version it used
 * (`decision.policySetVersion`). The watcher does not keep the process alive.
 *
 * @example
 * ```ts
 * import { createGovernance, policiesFromDirectory, watchPolicies } from "bedrock-warden";
 *
 * const governance = createGovernance({ environment: "production", policies: policiesFromDirectory("./policies") });
 * const watcher = watchPolicies(governance, "./policies", {
 *   onReload: ({ version, changed }) => console.log(`policies ${version} (${changed.join(", ")})`),
 *   onError: (error, kept) => console.error(`kept ${kept}: ${error.message}`),
 * });
 * // ...
 * await watcher.close();
 * ```
 * @throws {@link ConfigurationError} for a malformed option, or when another source (a watcher, a
 * periodic Verified Permissions sync) already reloads this governance's policies and is not closed.
 */
export function watchPolicies(governance: Governance, directory: string, options: WatchPoliciesOptions = {}): PolicyWatcher {
  if (typeof (governance as Partial<Governance> | undefined)?.reload !== "function") {
    throw new ConfigurationError("watchPolicies needs the governance from createGovernance() as its first argument");
  }
  if (typeof directory !== "string" || directory.length === 0) throw new ConfigurationError("watchPolicies needs the policy directory's path");
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw new ConfigurationError(`Invalid watchPolicies options: ${describeZodError(parsed.error, "options", optionsSchema)}`);
  const release = claimPolicyFeed(governance, `watchPolicies("${directory}")`);
  try {
    return new DirectoryWatcher(governance, directory, parsed.data as WatchPoliciesOptions, release);
  } catch (error) {
    release();
    throw error;
  }
}

class DirectoryWatcher implements PolicyWatcher {
  readonly #governance: Governance;
  readonly #directory: string;
  readonly #root: string;
  readonly #debounceMs: number;
  readonly #onReload: WatchPoliciesOptions["onReload"];
  readonly #onError: NonNullable<WatchPoliciesOptions["onError"]>;
  /** One non-recursive watcher per directory: Node 20's recursive watch on Linux misses deletions. */
  readonly #watchers = new Map<string, FSWatcher>();
  /** The root directory's inode when it was watched: a replaced directory must be watched again. */
  #rootIno: number | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #firstEventAt = 0;
  #poll: NodeJS.Timeout | undefined;
  #rewatch: NodeJS.Timeout | undefined;
  /** The content hash of the last state read (or the last error's text): an unchanged state is not reloaded or reported again. */
  #lastState: string | undefined;
  /** A changed state a poll read, waiting for the next poll to read it unchanged before it is loaded. */
  #pendingState: string | undefined;
  #loaded = new Map<string, string>();
  #failed = false;
  #lastError: Error | undefined;
  #retries = 0;
  #closed = false;
  readonly #release: () => void;

  constructor(governance: Governance, directory: string, options: WatchPoliciesOptions, release: () => void) {
    this.#governance = governance;
    this.#release = release;
    this.#directory = directory;
    this.#root = resolve(directory);
    this.#debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.#onReload = options.onReload;
    this.#onError = options.onError ?? defaultOnError(directory);
    this.#check("initial");
    if (options.pollMs !== undefined) {
      this.#poll = setInterval(() => this.#check("poll"), options.pollMs);
      this.#poll.unref();
    }
  }

  get version(): string {
    return this.#governance.policySetVersion;
  }

  get lastError(): Error | undefined {
    return this.#lastError;
  }

  check(): "reloaded" | "unchanged" | "failed" {
    if (this.#closed) return "unchanged";
    clearTimeout(this.#debounce);
    this.#debounce = undefined;
    return this.#check("now");
  }

  close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#debounce);
    clearInterval(this.#poll);
    clearTimeout(this.#rewatch);
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
    this.#release();
    return Promise.resolve();
  }

  /** An event from some watched directory: read once the directory has been quiet for `debounceMs`. */
  #schedule(delay = this.#debounceMs): void {
    if (this.#closed) return;
    const now = Date.now();
    if (this.#debounce === undefined) this.#firstEventAt = now;
    else clearTimeout(this.#debounce);
    const latest = this.#firstEventAt + Math.max(this.#debounceMs * MAX_WAIT_PERIODS, delay);
    this.#debounce = setTimeout(
      () => {
        this.#debounce = undefined;
        this.#check("settled");
      },
      Math.max(0, Math.min(delay, latest - now)),
    );
    this.#debounce.unref();
  }

  /**
   * Reads the directory and reloads it when it changed. `initial`, `now` (an explicit `check()`) and
   * `settled` (the directory quiet for `debounceMs` after its events) load what they read. A `poll`
   * loads a change only when the next poll reads it unchanged: a poll does not wait for events to
   * stop, and a file still being written — a save cut between two policies parses as a smaller valid
   * set, its forbids gone — must not be loaded half-written.
   */
  #check(mode: "initial" | "now" | "poll" | "settled"): "reloaded" | "unchanged" | "failed" {
    if (this.#closed) return "unchanged";
    const initial = mode === "initial";
    this.#syncWatchers();
    let documents: PolicyDocument[];
    try {
      documents = policiesFromDirectory(this.#directory);
    } catch (error) {
      if (isTransient(error) && this.#retries < TRANSIENT_RETRIES) {
        this.#retries++;
        this.#schedule(Math.max(this.#debounceMs, 50));
        return "unchanged";
      }
      this.#retries = 0;
      const reported = asError(error, this.#directory);
      const state = `error:${reported.message}`;
      if (state === this.#lastState) return "unchanged";
      this.#lastState = state;
      this.#report(reported);
      return "failed";
    }
    this.#retries = 0;
    const state = contentHash(documents);
    if (state === this.#lastState) {
      this.#pendingState = undefined;
      return "unchanged";
    }
    if (mode === "poll" && this.#pendingState !== state) {
      // Changed since the last poll: loaded only if the next poll reads it unchanged.
      this.#pendingState = state;
      return "unchanged";
    }
    this.#pendingState = undefined;
    this.#lastState = state;
    // A file that held policies and now holds none (0 bytes, only comments) is far more often a save
    // cut short — a full disk, `> file`, a read between truncate and write — than an intent: its
    // forbids would vanish silently. Kept as a broken edit; deleting the file removes its policies.
    const emptied = documents.filter((d) => !hasPolicy(d.text) && hasPolicy(this.#loaded.get(d.source) ?? ""));
    if (emptied.length > 0) {
      this.#report(
        new PolicyLoadError(
          emptied.map((d) => ({
            source: d.source,
            message: "the file held policies and now holds none (a save cut short?): the last good set keeps deciding; delete the file to remove its policies",
          })),
        ),
      );
      return "failed";
    }
    const previousVersion = this.#governance.policySetVersion;
    let version: string;
    try {
      version = this.#governance.reload(documents);
    } catch (error) {
      this.#report(asError(error, this.#directory));
      return "failed";
    }
    const loaded = new Map(documents.map((d) => [d.source, d.text]));
    const changed = [...new Set([...loaded.keys(), ...this.#loaded.keys()])].filter((source) => loaded.get(source) !== this.#loaded.get(source)).sort();
    this.#loaded = loaded;
    const recovered = this.#failed;
    this.#failed = false;
    this.#lastError = undefined;
    if (version !== previousVersion || (recovered && !initial)) {
      const event: PolicyReloadEvent = Object.freeze({
        version,
        previousVersion,
        files: Object.freeze(documents.map((d) => d.source)),
        changed: Object.freeze(changed),
      });
      if (this.#onReload) callSafely("onReload", () => this.#onReload!(event));
    }
    return "reloaded";
  }

  #report(error: Error): void {
    this.#failed = true;
    this.#lastError = error;
    const kept = this.#governance.policySetVersion;
    callSafely("onError", () => this.#onError(error, kept));
  }

  /**
   * Watches the root and every directory below it (as `policiesFromDirectory` walks them: real
   * directories, not symlinks), drops watchers of directories that are gone, and starts over when
   * the root itself was replaced. Never throws: a directory that cannot be watched now is retried.
   */
  #syncWatchers(): void {
    if (this.#closed) return;
    let rootIno: number | undefined;
    try {
      const stats = statSync(this.#root);
      rootIno = stats.isDirectory() ? stats.ino : undefined;
    } catch {
      rootIno = undefined;
    }
    if (rootIno === undefined || rootIno !== this.#rootIno) {
      for (const watcher of this.#watchers.values()) watcher.close();
      this.#watchers.clear();
      this.#rootIno = rootIno;
    }
    if (rootIno === undefined) {
      this.#scheduleRewatch();
      return;
    }
    const directories = new Set<string>();
    collectDirectories(this.#root, directories);
    for (const [path, watcher] of this.#watchers) {
      if (!directories.has(path)) {
        watcher.close();
        this.#watchers.delete(path);
      }
    }
    for (const path of directories) {
      if (this.#watchers.has(path)) continue;
      try {
        const watcher = watch(path, { persistent: false }, () => this.#schedule());
        watcher.on("error", () => {
          // The directory went away (or the watch broke): drop it, and look again.
          watcher.close();
          if (this.#watchers.get(path) === watcher) this.#watchers.delete(path);
          this.#schedule();
          this.#scheduleRewatch();
        });
        this.#watchers.set(path, watcher);
      } catch {
        this.#scheduleRewatch();
      }
    }
  }

  /** While the root is missing or a watch could not be set, look again every second. */
  #scheduleRewatch(): void {
    if (this.#closed || this.#rewatch !== undefined) return;
    this.#rewatch = setTimeout(() => {
      this.#rewatch = undefined;
      if (this.#closed) return;
      const before = this.#rootIno;
      this.#syncWatchers();
      if (this.#rootIno !== before || this.#rootIno === undefined) this.#schedule(0);
    }, REWATCH_MS);
    this.#rewatch.unref();
  }
}

function collectDirectories(directory: string, into: Set<string>): void {
  into.add(directory);
  let entries;
  try {
    entries = readdirSync(directory, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) if (entry.isDirectory()) collectDirectories(join(directory, entry.name), into);
}

function contentHash(documents: readonly PolicyDocument[]): string {
  const hash = createHash("sha256");
  for (const { source, text } of documents) hash.update(source).update("\0").update(text).update("\0");
  return `sha256:${hash.digest("hex")}`;
}

/** ENOENT while reading: a file (or the directory) vanished between the listing and the read. */
function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  const causeCode = ((error as { cause?: unknown } | undefined)?.cause as { code?: unknown } | undefined)?.code;
  return code === "ENOENT" || causeCode === "ENOENT";
}

function asError(error: unknown, directory: string): Error {
  if (error instanceof WardenError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ConfigurationError(`Cannot read the policies in ${directory}: ${message}`, { cause: error });
}

function defaultOnError(directory: string): (error: Error, keptVersion: string) => void {
  return (error, keptVersion) =>
    process.emitWarning(`bedrock-warden: the policies in ${directory} were not reloaded; ${keptVersion} keeps deciding. ${error.message}`, "BedrockWardenWarning");
}

function callSafely(name: string, fn: () => void): void {
  try {
    fn();
  } catch (error) {
    process.emitWarning(`bedrock-warden: the policy watcher's ${name} listener threw: ${(error as Error)?.message ?? String(error)}`, "BedrockWardenWarning");
  }
}

/** Whether Cedar text holds at least one policy (anything but whitespace and comments). */
function hasPolicy(text: string): boolean {
  return text.replace(/\/\/[^\n]*/g, "").trim().length > 0;
}
