/**
 * The hash chain that makes a decision log tamper-evident.
 *
 * Each line of the log is a JSON object: the record's own fields, plus
 * - `seq`: 1, 2, 3, ... per log, continuing across rotated files;
 * - `prevHash`: the previous line's `hash` ({@link GENESIS_HASH} for seq 1);
 * - `hash`: the SHA-256 (hex) of the {@link canonicalJson} of the line without `hash`.
 *
 * Changing, deleting, inserting or reordering a line breaks the chain at that line, and the
 * verifier (`verifyDecisionLog`) says where. What a plain hash chain cannot prove on its own: that
 * nobody rewrote the whole chain from some line on (recomputing every hash needs no secret), nor
 * that whole lines were cut from the end. For both, keep the latest `{ seq, hash }` somewhere the
 * writer of the log cannot change (another system, a ticket, an OpenTelemetry log) and give it to
 * the verifier as `to`.
 * @module
 */
import { createHmac, createSecretKey, hash as digest, hkdfSync, KeyObject } from "node:crypto";
import { ConfigurationError } from "../errors.js";
import type { DecisionRecord } from "./decision-record.js";

/**
 * The `prevHash` of the first line of a log (seq 1): 64 zeros.
 *
 * @example
 * ```ts
 * const first = JSON.parse(firstLineOfLog);
 * if (first.seq === 1 && first.prevHash !== GENESIS_HASH) throw new Error("not the start of a chain");
 * ```
 */
export const GENESIS_HASH = "0".repeat(64);

/**
 * Field names the chain owns: a record's own fields with these names are left out of its line,
 * so a record can never forge its place in the chain.
 *
 * @example
 * ```ts
 * const ownFields = Object.keys(line).filter((key) => !CHAIN_FIELDS.includes(key));
 * ```
 */
export const CHAIN_FIELDS: readonly string[] = Object.freeze(["seq", "prevHash", "hash", "type"]);

/**
 * Where a chain stands: the `seq` and `hash` of the last line written (seq 0 and
 * {@link GENESIS_HASH} before the first line). {@link chainRecord} advances it.
 *
 * @example
 * ```ts
 * const state: ChainState = { seq: 0, hash: GENESIS_HASH };
 * ```
 */
export interface ChainState {
  seq: number;
  hash: string;
  /** The chain key: with one, each line's hash is an HMAC-SHA256 under it (see {@link chainKeyOf}). */
  readonly key?: KeyObject;
}

/**
 * The shortest chain key accepted: 32 bytes, HMAC-SHA256's own output size.
 *
 * @example
 * ```ts
 * writeFileSync("/run/secrets/decision-log-key", randomBytes(MIN_CHAIN_KEY_BYTES), { mode: 0o600 });
 * ```
 */
export const MIN_CHAIN_KEY_BYTES = 32;

/**
 * A chain key from what an option holds: at least 32 bytes (a `Uint8Array`/`Buffer`) or a secret
 * `KeyObject` of that size. With a key, a line's hash is HMAC-SHA256 under it instead of SHA-256,
 * so only a holder of the key can write a line that verifies.
 *
 * @throws {@link ConfigurationError} naming `where` and what to give instead.
 * @example
 * ```ts
 * const key = chainKeyOf(readFileSync("/run/secrets/decision-log-key"), "chainKey");
 * ```
 */
export function chainKeyOf(value: unknown, where: string): KeyObject {
  let key: KeyObject | undefined;
  if (value instanceof KeyObject) key = value.type === "secret" ? value : undefined;
  else if (value instanceof Uint8Array) key = createSecretKey(Buffer.from(value));
  if (key === undefined) throw new ConfigurationError(`${where} must be a secret key: a Uint8Array/Buffer of at least ${MIN_CHAIN_KEY_BYTES} bytes, or a secret KeyObject`);
  if ((key.symmetricKeySize ?? 0) < MIN_CHAIN_KEY_BYTES) {
    throw new ConfigurationError(`${where} must be at least ${MIN_CHAIN_KEY_BYTES} bytes (e.g. 32 random bytes: head -c 32 /dev/urandom > key), got ${key.symmetricKeySize ?? 0}`);
  }
  return key;
}

/**
 * What a log name may hold: 1 to 200 letters, digits and `. _ - : / @` (it is printed in
 * messages, and derives the log's key: see {@link logChainKey}).
 *
 * @example
 * ```ts
 * if (!LOG_NAME.test(name)) throw new Error(`not a log name: ${name}`);
 * ```
 */
export const LOG_NAME = /^[A-Za-z0-9._:/@-]{1,200}$/;

/**
 * The key a named log's lines are hashed under: HKDF-SHA256 of the chain key, with the log's name
 * as its `info`. Every line of the log is then bound to its name, in every file, rotated or not:
 * a log written under the same chain key with another name (another service's, say) does not
 * verify in its place — which is what one shared key alone cannot tell (a whole log substituted
 * for another keeps a chain that verifies).
 *
 * @throws {@link ConfigurationError} naming `where` when `logName` is not a {@link LOG_NAME}.
 * @example
 * ```ts
 * const key = logChainKey(chainKeyOf(secret, "chainKey"), "payments-prod", "logName");
 * ```
 */
export function logChainKey(key: KeyObject, logName: string, where: string): KeyObject {
  if (!LOG_NAME.test(logName)) throw new ConfigurationError(`${where} must be 1 to 200 letters, digits and . _ - : / @ (e.g. "payments-prod")`);
  return createSecretKey(Buffer.from(hkdfSync("sha256", key, "bedrock-warden decision log", `log-name:${logName}`, 32)));
}

/**
 * The key a log's lines are hashed under, from the options that may give one: none without a
 * chain key; the chain key itself without a log name; else the key derived for that name
 * ({@link logChainKey}). A name without a key would bind nothing (anyone can recompute an unkeyed
 * chain), so it is refused rather than ignored.
 *
 * @param names the two options' names, for the errors.
 * @throws {@link ConfigurationError} naming the option to change.
 * @example
 * ```ts
 * const key = optionalChainKey(options.chainKey, options.logName, { key: "chainKey", logName: "logName" });
 * ```
 */
export function optionalChainKey(
  chainKey: Uint8Array | KeyObject | undefined,
  logName: string | undefined,
  names: { readonly key: string; readonly logName: string },
): KeyObject | undefined {
  if (chainKey === undefined) {
    if (logName !== undefined) throw new ConfigurationError(`${names.logName} needs ${names.key}: a log's name is bound to its lines only through the chain key`);
    return undefined;
  }
  const key = chainKeyOf(chainKey, names.key);
  return logName === undefined ? key : logChainKey(key, logName, names.logName);
}

/**
 * A line's hash from its canonical text (the line without `hash`): SHA-256, or HMAC-SHA256 under
 * the chain key, in lowercase hex.
 *
 * @example
 * ```ts
 * if (lineDigest(canonicalJson(body), key) !== line.hash) console.error("changed, or not written with this key");
 * ```
 */
export function lineDigest(canonical: string, key?: KeyObject): string {
  return key === undefined ? digest("sha256", canonical, "hex") : createHmac("sha256", key).update(canonical).digest("hex");
}

/**
 * One line of a decision log: a decision record (or a chain event such as a `chain-break`) with
 * its place in the chain.
 *
 * @example
 * ```ts
 * const line = JSON.parse(text) as ChainedLine;
 * console.log(line.seq, line.hash.slice(0, 12), line.decision);
 * ```
 */
export type ChainedLine = Record<string, unknown> & {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
  /** Absent on decision records; `"chain-break"` on the line a writer adds when it found its log damaged. */
  readonly type?: string;
};

/**
 * The chain state at the start of a log.
 *
 * @example
 * ```ts
 * const state = genesisState();
 * const line = chainRecord(state, record); // line.seq === 1, line.prevHash === GENESIS_HASH
 * ```
 */
export function genesisState(key?: KeyObject): ChainState {
  return { seq: 0, hash: GENESIS_HASH, ...(key && { key }) };
}

/**
 * Serializes a JSON value canonically: object keys sorted (by UTF-16 code units, as
 * `Array.prototype.sort` does) at every depth, no whitespace, values as `JSON.stringify` writes
 * them (`undefined` members left out, `toJSON` honoured, non-finite numbers as `null`). For the
 * values a record holds (strings, finite numbers, booleans, null, arrays, plain objects) this is
 * the RFC 8785 (JCS) form, so a verifier in another language can recompute the hashes.
 *
 * @throws TypeError for a value JSON cannot hold (a BigInt, a cycle) or nested deeper than 64 levels:
 *   a record never is, and refusing beats overflowing the stack on hostile input.
 * @example
 * ```ts
 * canonicalJson({ b: 1, a: [true, null, "x"] }); // '{"a":[true,null,"x"],"b":1}'
 * ```
 */
export function canonicalJson(value: unknown): string {
  const text = serialize(value, "", 0);
  if (text === undefined) throw new TypeError(`canonicalJson: ${typeof value} is not a JSON value`);
  return text;
}

const MAX_DEPTH = 64;

/**
 * The serializer behind {@link canonicalJson} and {@link snapshotRecord}. It runs on the call path
 * for every record, so it avoids what costs there: quoted keys are memoized, the sorted key order
 * of an object shape seen before is reused (records from `decisionRecord` come in a few shapes),
 * and cycles are caught by the depth limit instead of an ancestors list.
 */
function serialize(value: unknown, key: string, depth: number): string | undefined {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      // Number#toString is what JSON.stringify writes for finite numbers (and "0" for -0).
      return Number.isFinite(value) ? String(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      throw new TypeError("canonicalJson: a BigInt is not a JSON value");
    case "object":
      break;
    default:
      // undefined, functions and symbols: left out of objects (and null in arrays), as JSON.stringify does.
      return undefined;
  }
  if (value === null) return "null";
  const toJson = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJson === "function") return serialize(toJson.call(value, key), key, depth);
  if (depth >= MAX_DEPTH) throw new TypeError(`canonicalJson: nested deeper than ${MAX_DEPTH} levels (or circular)`);
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ",";
      out += serialize(value[i], "", depth + 1) ?? "null";
    }
    return `${out}]`;
  }
  let out = "{";
  let first = true;
  for (const k of sortedKeys(value)) {
    const member = serialize((value as Record<string, unknown>)[k], k, depth + 1);
    if (member === undefined) continue;
    out += first ? `${quoteKey(k)}:${member}` : `,${quoteKey(k)}:${member}`;
    first = false;
  }
  return `${out}}`;
}

const quotedKeys = new Map<string, string>();

function quoteKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = JSON.stringify(key);
    // Bounded: records use a few dozen keys; hostile input with endless new keys must not grow memory.
    if (quotedKeys.size < 4096) quotedKeys.set(key, quoted);
  }
  return quoted;
}

/** The last object shapes with many keys, each with its keys sorted (by UTF-16 code units, as Array#sort does). */
const shapes: { readonly keys: readonly string[]; readonly sorted: readonly string[] }[] = [];

function sortedKeys(value: object): readonly string[] {
  const keys = Object.keys(value);
  if (keys.length < 8) return keys.sort();
  search: for (const shape of shapes) {
    if (shape.keys.length !== keys.length) continue;
    for (let i = 0; i < keys.length; i++) if (shape.keys[i] !== keys[i]) continue search;
    return shape.sorted;
  }
  const sorted = [...keys].sort();
  shapes.unshift({ keys, sorted });
  if (shapes.length > 16) shapes.pop();
  return sorted;
}

/**
 * A record serialized when it is written, ready to take its place in the chain later (its seq and
 * prevHash are only known once the writer gets to it): its canonical members before `prevHash`,
 * between `prevHash` and `seq`, and after `seq`. Taking it at `write()` time is what lets the
 * caller reuse or change the record object afterwards.
 *
 * @example
 * ```ts
 * const snapshot = snapshotRecord(record);     // on the call path
 * const line = chainSnapshot(state, snapshot); // later, on the writer's side
 * ```
 */
export interface RecordSnapshot {
  readonly beforePrevHash: string;
  readonly beforeSeq: string;
  readonly afterSeq: string;
}

/**
 * Snapshots a record for {@link chainSnapshot}. The record's own fields named like chain fields
 * ({@link CHAIN_FIELDS}) are left out, so that a record can never forge its place in the chain.
 *
 * @throws TypeError when the record holds something JSON cannot (see {@link canonicalJson}).
 * @example
 * ```ts
 * const snapshot = snapshotRecord(record);
 * record.reasons.push("changed later"); // does not change the snapshot
 * ```
 */
export function snapshotRecord(record: object): RecordSnapshot {
  return snapshotOf(record, true);
}

/** `withoutType`: leave out a `type` field (records); chain events keep theirs. */
function snapshotOf(record: object, withoutType: boolean): RecordSnapshot {
  const parts = ["", "", ""];
  for (const key of sortedKeys(record)) {
    if (key === "seq" || key === "prevHash" || key === "hash" || (key === "type" && withoutType)) continue;
    const member = serialize((record as Record<string, unknown>)[key], key, 1);
    if (member === undefined) continue;
    const part = key < "prevHash" ? 0 : key < "seq" ? 1 : 2;
    parts[part] += `,${quoteKey(key)}:${member}`;
  }
  return { beforePrevHash: parts[0]!.slice(1), beforeSeq: parts[1]!, afterSeq: parts[2]! };
}

/**
 * One chained line, as text: `text` is the line to write (without its newline), `seq` and `hash`
 * its place in the chain.
 *
 * @example
 * ```ts
 * const { text, seq, hash } = chainSnapshot(state, snapshotRecord(record));
 * ```
 */
export interface ChainedText {
  readonly text: string;
  readonly seq: number;
  readonly hash: string;
}

/**
 * Chains a snapshot: gives it the next `seq` (plus `skip`, for a writer that leaves a gap where
 * records were lost; the JSON Lines sink writes a `records-dropped` line instead), links it to
 * `state.hash`, hashes it, and advances `state`. The text
 * is the canonical body with `"hash"` appended as its last member, so what was hashed is the line
 * minus that member.
 *
 * @example
 * ```ts
 * const state = genesisState();
 * const { text } = chainSnapshot(state, snapshotRecord(record));
 * await appendFile("decisions.jsonl", `${text}\n`);
 * ```
 */
export function chainSnapshot(state: ChainState, snapshot: RecordSnapshot, skip = 0): ChainedText {
  const seq = state.seq + 1 + skip;
  const { beforePrevHash, beforeSeq, afterSeq } = snapshot;
  const body = `{${beforePrevHash}${beforePrevHash === "" ? "" : ","}"prevHash":"${state.hash}"${beforeSeq},"seq":${seq}${afterSeq}}`;
  const hash = lineDigest(body, state.key);
  state.seq = seq;
  state.hash = hash;
  return { text: `${body.slice(0, -1)},"hash":"${hash}"}`, seq, hash };
}

/**
 * Chains a record: returns the line object (the record's fields plus `seq`, `prevHash` and `hash`)
 * and advances `state` to it. The JSON Lines sink does the same on a snapshot taken at `write()`;
 * this form is for other writers and for tests.
 *
 * @example
 * ```ts
 * const state = genesisState();
 * const line = chainRecord(state, record);
 * process.stdout.write(`${JSON.stringify(line)}\n`);
 * ```
 */
export function chainRecord(state: ChainState, record: DecisionRecord | Readonly<Record<string, unknown>>): ChainedLine {
  return JSON.parse(chainSnapshot(state, snapshotRecord(record)).text) as ChainedLine;
}

/**
 * Chains a chain event (a line that is not a decision record), e.g. the `chain-break` a writer
 * adds when it found its log damaged. Its `type` is part of what is hashed.
 *
 * @example
 * ```ts
 * const { text } = chainEvent(state, "chain-break", { reason: "truncated-line", file: "decisions.jsonl.1-41" });
 * ```
 */
export function chainEvent(state: ChainState, type: string, fields: Readonly<Record<string, unknown>>): ChainedText {
  return chainSnapshot(state, snapshotOf({ ...fields, type }, false));
}

/**
 * The hash a line should have: SHA-256 (hex) of the canonical JSON of the line without `hash`, or
 * HMAC-SHA256 under the chain key when the log was written with one.
 *
 * @example
 * ```ts
 * const line = JSON.parse(text);
 * if (lineHash(line) !== line.hash) console.error("the line was changed");
 * ```
 */
export function lineHash(line: Readonly<Record<string, unknown>>, key?: KeyObject): string {
  const { hash: _hash, ...body } = line;
  return lineDigest(canonicalJson(body), key);
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Whether a parsed value has the shape of a chained line (an object with a positive integer
 * `seq` and 64-hex-digit `prevHash` and `hash`). It does not check the hash: see {@link lineHash}.
 *
 * @example
 * ```ts
 * const value: unknown = JSON.parse(text);
 * if (isChainedLine(value) && lineHash(value) === value.hash) console.log("intact line", value.seq);
 * ```
 */
export function isChainedLine(value: unknown): value is ChainedLine {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const line = value as Record<string, unknown>;
  return (
    Number.isSafeInteger(line["seq"]) &&
    (line["seq"] as number) >= 1 &&
    typeof line["prevHash"] === "string" &&
    HEX64.test(line["prevHash"]) &&
    typeof line["hash"] === "string" &&
    HEX64.test(line["hash"]) &&
    (line["type"] === undefined || typeof line["type"] === "string")
  );
}
