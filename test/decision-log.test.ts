import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, createSecretKey, randomBytes } from "node:crypto";
import { existsSync, linkSync, symlinkSync } from "node:fs";
import { cp, mkdir, mkdtemp, open, readdir, readFile, rename, rm, rmdir, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { trace } from "@opentelemetry/api";
import fc from "fast-check";
import { SeverityNumber } from "@opentelemetry/api-logs";
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from "@opentelemetry/sdk-logs";
import type { DecisionRecord } from "../src/audit/decision-record.js";
import { canonicalJson, chainEvent, chainRecord, chainSnapshot, GENESIS_HASH, genesisState, lineHash, logChainKey, snapshotRecord } from "../src/audit/hash-chain.js";
import { createJsonlSink, rotatedName, type JsonlSink } from "../src/audit/jsonl-sink.js";
import { DECISION_EVENT_NAME, DECISION_LOG_ATTRIBUTES, otelLogsSink } from "../src/audit/otel-logs-sink.js";
import { callbackSink, DecisionSinkError } from "../src/audit/sink.js";
import { verifyDecisionLog } from "../src/audit/verify-log.js";
import { ConfigurationError } from "../src/errors.js";
import { createGovernance, GovernedBedrockRuntimeClient, runAs, WARDEN } from "../src/index.js";
import { BASE_POLICIES, converseInput, CREDENTIALS, HAIKU, invoiceAgent, TITAN } from "./support/governance.js";
import { MemoryHandler } from "./support/memory-handler.js";
import { tracerProvider } from "./support/tracing.js";

const ROOT = await mkdtemp(join(tmpdir(), "warden-decision-log-"));
after(() => rm(ROOT, { recursive: true, force: true }));

let dirs = 0;
async function freshDir(): Promise<string> {
  const dir = join(ROOT, `d${++dirs}`);
  await mkdir(dir);
  return dir;
}

/** A realistic record (the shape decisionRecord() builds), numbered so tests can tell them apart. */
function record(n: number, overrides: Partial<DecisionRecord> = {}): DecisionRecord {
  return {
    id: `dec-${String(n).padStart(6, "0")}`,
    time: new Date(Date.UTC(2025, 0, 1, 0, 0, 0, n)).toISOString(),
    command: "ConverseCommand",
    workload: { id: "spiffe://acme.test/agents/invoice", groups: ["billing"] },
    authentication: { verified: true, method: "oidc", issuer: "https://issuer.acme.test", expiresAt: "2025-01-01T01:00:00.000Z" },
    dataSensitivity: ["financial"],
    environment: "test",
    region: "us-east-1",
    action: 'Bedrock::Action::"Converse"',
    resource: `Bedrock::Model::"${HAIKU}"`,
    decision: "allow",
    policies: ["billing-anthropic"],
    reasons: ["billing agents may invoke Anthropic models"],
    errors: [],
    policySetVersion: "sha256:0123456789abcdef",
    outcome: "completed",
    requestId: `req-${n}`,
    usage: { inputTokens: 11, outputTokens: 7 },
    durationMs: 12.5,
    ...overrides,
  };
}

async function lines(file: string): Promise<string[]> {
  const text = await readFile(file, "utf8");
  return text.split("\n").slice(0, -1);
}

async function seqsOf(file: string): Promise<number[]> {
  return (await lines(file)).map((line) => (JSON.parse(line) as { seq: number }).seq);
}

async function writeAll(sink: JsonlSink, from: number, to: number): Promise<void> {
  for (let n = from; n <= to; n++) sink.write(record(n));
  await sink.flush();
}

/** A closed log of `count` records over several files (maxBytes 4 KiB: about 3 records per file). */
async function rotatedLog(count = 40): Promise<{ dir: string; path: string; files: string[] }> {
  const dir = await freshDir();
  const path = join(dir, "decisions.jsonl");
  const sink = createJsonlSink({ path, maxBytes: 4096 });
  await writeAll(sink, 1, count);
  await sink.close();
  const { files } = await verifyDecisionLog(path);
  return { dir, path, files: [...files] };
}

/** A log of seq 1–3 written by one sink, and a second sink on a hard link to it: another name, the same file. */
async function linkedSinks(): Promise<{ path: string; first: JsonlSink; second: JsonlSink }> {
  const dir = await freshDir();
  const path = join(dir, "decisions.jsonl");
  const first = createJsonlSink({ path, retryIntervalMs: 60_000, onError: () => {} });
  await writeAll(first, 1, 3);
  linkSync(path, join(dir, "alias.jsonl"));
  const second = createJsonlSink({ path: join(dir, "alias.jsonl"), retryIntervalMs: 60_000, onError: () => {} });
  return { path, first, second };
}

async function copyLog(dir: string): Promise<{ dir: string; path: string; files: string[] }> {
  const copy = await freshDir();
  await cp(dir, copy, { recursive: true });
  const path = join(copy, "decisions.jsonl");
  return { dir: copy, path, files: (await verifyDecisionLog(path)).files.slice() };
}

async function editLines(file: string, edit: (lines: string[]) => string[]): Promise<void> {
  await writeFile(file, edit(await lines(file)).map((l) => `${l}\n`).join(""));
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error("timed out waiting for a condition");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("hash chain", () => {
  it("canonicalJson sorts keys at every depth, writes no whitespace, and refuses what JSON cannot hold", () => {
    assert.equal(canonicalJson({ b: 1, a: [true, null, "x", { d: 2, c: undefined, b: 1 }], é: "e" }), '{"a":[true,null,"x",{"b":1,"d":2}],"b":1,"é":"e"}');
    assert.equal(canonicalJson([undefined, Number.NaN, -0]), "[null,null,0]");
    assert.equal(canonicalJson({ when: new Date(0) }), '{"when":"1970-01-01T00:00:00.000Z"}');
    const cycle: Record<string, unknown> = {};
    cycle["self"] = cycle;
    assert.throws(() => canonicalJson(cycle), TypeError);
    assert.throws(() => canonicalJson({ n: 1n }), TypeError);
    let deep: unknown = 1;
    for (let i = 0; i < 1000; i++) deep = [deep];
    assert.throws(() => canonicalJson(deep), /deeper than/);
  });

  it("chainRecord: seq 1 links to the genesis hash; hash = sha256 of the canonical line without hash; each next line links to the last", () => {
    const state = genesisState();
    const first = chainRecord(state, record(1));
    assert.equal(first.seq, 1);
    assert.equal(first.prevHash, GENESIS_HASH);
    assert.equal(GENESIS_HASH, "0".repeat(64));
    const { hash, ...body } = first;
    assert.equal(hash, createHash("sha256").update(canonicalJson(body)).digest("hex"));
    assert.equal(lineHash(first), hash);
    assert.deepEqual({ seq: state.seq, hash: state.hash }, { seq: 1, hash });
    const second = chainRecord(state, record(2));
    assert.equal(second.seq, 2);
    assert.equal(second.prevHash, first.hash);
    assert.equal(second["id"], "dec-000002");
  });

  it("property: canonicalJson is sorted-key JSON.stringify; any JSON object chains into a line that verifies after a round trip", () => {
    const reference = (v: unknown): string =>
      v === null || typeof v !== "object"
        ? JSON.stringify(v)
        : Array.isArray(v)
          ? `[${v.map(reference).join(",")}]`
          : `{${Object.keys(v)
              .sort()
              .map((k) => `${JSON.stringify(k)}:${reference((v as Record<string, unknown>)[k])}`)
              .join(",")}}`;
    fc.assert(fc.property(fc.jsonValue(), (value) => canonicalJson(value) === reference(value)), { numRuns: 500 });
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.integer({ min: 0, max: 3 }), (fields, skip) => {
        const state = genesisState();
        chainRecord(state, record(1));
        const before = state.hash;
        const text = chainSnapshot(state, snapshotRecord(fields), skip).text;
        const line = JSON.parse(text) as Record<string, unknown>;
        const { hash, ...body } = line;
        return canonicalJson(body) === text.slice(0, text.lastIndexOf(',"hash":')) + "}" && lineHash(line) === hash && line["prevHash"] === before && line["seq"] === 2 + skip;
      }),
      { numRuns: 300 },
    );
  });

  it("a record cannot forge its place in the chain: its own seq, prevHash, hash and type fields are left out", () => {
    const state = genesisState();
    const line = chainRecord(state, { ...record(1), seq: 99, prevHash: "f".repeat(64), hash: "e".repeat(64), type: "chain-break" } as unknown as DecisionRecord);
    assert.equal(line.seq, 1);
    assert.equal(line.prevHash, GENESIS_HASH);
    assert.equal(line.type, undefined);
    assert.equal(lineHash(line), line.hash);
  });
});

describe("JSON Lines sink and verifyDecisionLog", () => {
  it("chains records across 3+ rotations into sortable files of at most maxBytes, and the log verifies", async () => {
    const dir = await freshDir();
    const path = join(dir, "decisions.jsonl");
    const sink = createJsonlSink({ path, maxBytes: 4096 });
    await writeAll(sink, 1, 40);
    assert.equal(sink.pending, 0);
    assert.equal(sink.failure, undefined);
    const result = await verifyDecisionLog(path);
    assert.equal(result.ok, true, JSON.stringify(result.firstProblem));
    assert.equal(result.records, 40);
    assert.ok(result.files.length >= 4, `expected at least 3 rotated files, got ${result.files.join(", ")}`);
    assert.equal(result.files.at(-1), path);
    assert.deepEqual(result.last, sink.last);
    // Files in chain order hold seq 1..40 without a gap, each named after its range, each within maxBytes.
    const all: number[] = [];
    for (const file of result.files) {
      const seqs = await seqsOf(file);
      assert.ok((await stat(file)).size <= 4096);
      if (file !== path) assert.equal(basename(file), rotatedName("decisions.jsonl", seqs[0]!, seqs.at(-1)!));
      all.push(...seqs);
    }
    assert.deepEqual(all, Array.from({ length: 40 }, (_, i) => i + 1));
    assert.deepEqual([...(await readdir(dir))].sort(), result.files.map((f) => basename(f)).sort(), "names sort in chain order");
    // The records are stored as written, content and all.
    const firstLine = JSON.parse((await lines(result.files[0]!))[0]!) as Record<string, unknown>;
    const { seq, prevHash, hash, ...stored } = firstLine;
    assert.deepEqual(stored, JSON.parse(JSON.stringify(record(1))));
    assert.equal(seq, 1);
    assert.equal(prevHash, GENESIS_HASH);
    assert.equal(typeof hash, "string");
    // A directory holding one log verifies as that log.
    assert.equal((await verifyDecisionLog(dir)).records, 40);
    await sink.close();
  });

  it("write() only queues: the record is serialized by the writer, with its batch", async () => {
    const path = join(await freshDir(), "decisions.jsonl");
    const sink = createJsonlSink({ path, flushIntervalMs: 60_000 });
    let reads = 0;
    const r = record(1);
    sink.write(Object.defineProperty({ ...r }, "command", { enumerable: true, get: () => (reads++, r.command) }) as DecisionRecord);
    assert.equal(reads, 0, "write() did not touch the record's fields");
    assert.equal(sink.pending, 1);
    await sink.close();
    assert.equal(reads, 1);
    assert.equal(JSON.parse((await lines(path))[0]!).command, "ConverseCommand");
  });

  describe("tampering is found at the right file and line", () => {
    let log: { dir: string; path: string; files: string[] };
    const fresh = async () => {
      log ??= await rotatedLog(40);
      return copyLog(log.dir);
    };

    it("a changed field: hash-mismatch at that line", async () => {
      const { path, files } = await fresh();
      const file = files[1]!;
      await editLines(file, (ls) => ls.map((l, i) => (i === 1 ? l.replace('"decision":"allow"', '"decision":"deny"') : l)));
      const { ok, firstProblem } = await verifyDecisionLog(path);
      assert.equal(ok, false);
      assert.deepEqual({ ...firstProblem, message: undefined }, { file, line: 2, seq: (await seqsOf(file))[1], kind: "hash-mismatch", message: undefined });
    });

    it("a changed field with its hash recomputed: broken-link at the next line", async () => {
      const { path, files } = await fresh();
      const file = files[1]!;
      await editLines(file, (ls) =>
        ls.map((l, i) => {
          if (i !== 0) return l;
          const line = JSON.parse(l) as Record<string, unknown>;
          line["decision"] = "deny";
          return JSON.stringify({ ...line, hash: lineHash(line) });
        }),
      );
      const { firstProblem } = await verifyDecisionLog(path);
      assert.equal(firstProblem?.kind, "broken-link");
      assert.equal(firstProblem?.file, file);
      assert.equal(firstProblem?.line, 2);
    });

    it("a deleted line: missing where it was", async () => {
      const { path, files } = await fresh();
      const file = files[2]!;
      const seqs = await seqsOf(file);
      await editLines(file, (ls) => ls.filter((_, i) => i !== 1));
      const { firstProblem } = await verifyDecisionLog(path);
      assert.equal(firstProblem?.kind, "missing");
      assert.equal(firstProblem?.file, file);
      assert.equal(firstProblem?.line, 2);
      assert.equal(firstProblem?.seq, seqs[2]);
      assert.match(firstProblem!.message, new RegExp(`seq ${seqs[1]}\\.\\.${seqs[1]}`));
    });

    it("a line edited so that it parses to the original (a duplicated key before the real one): hash-mismatch", async () => {
      const { path, files } = await fresh();
      const file = files[1]!;
      await editLines(file, (ls) => [ls[0]!.replace(/^\{/, '{"decision":"allow",'), ...ls.slice(1)]);
      const { firstProblem } = await verifyDecisionLog(path);
      assert.deepEqual([firstProblem?.kind, firstProblem?.file, firstProblem?.line], ["hash-mismatch", file, 1]);
      assert.match(firstProblem?.message ?? "", /canonical form/);
    });

    it("a line nested absurdly deep is reported as malformed, not thrown on", async () => {
      const { path, files } = await fresh();
      const file = files[1]!;
      let deep = "0";
      for (let i = 0; i < 100; i++) deep = `[${deep}]`;
      await editLines(file, (ls) => [ls[0]!.replace(/^\{/, `{"deep":${deep},`), ...ls.slice(1)]);
      const { firstProblem } = await verifyDecisionLog(path);
      assert.deepEqual([firstProblem?.kind, firstProblem?.file, firstProblem?.line], ["malformed", file, 1]);
    });

    it("an inserted line: broken-link at a forged line, reordered at a duplicated one", async () => {
      {
        const { path, files } = await fresh();
        const file = files[1]!;
        await editLines(file, (ls) => {
          const previous = JSON.parse(ls[0]!) as { seq: number };
          const forged: Record<string, unknown> = { ...record(999), seq: previous.seq + 1, prevHash: "a".repeat(64) };
          // Written as the writer writes (canonical, hash last): only its link gives it away.
          return [ls[0]!, `${canonicalJson(forged).slice(0, -1)},"hash":"${lineHash(forged)}"}`, ...ls.slice(1)];
        });
        const { firstProblem } = await verifyDecisionLog(path);
        assert.deepEqual([firstProblem?.kind, firstProblem?.file, firstProblem?.line], ["broken-link", file, 2]);
      }
      {
        const { path, files } = await fresh();
        const file = files[1]!;
        await editLines(file, (ls) => [ls[0]!, ls[0]!, ...ls.slice(1)]);
        const { firstProblem } = await verifyDecisionLog(path);
        assert.deepEqual([firstProblem?.kind, firstProblem?.file, firstProblem?.line], ["reordered", file, 2]);
      }
    });

    it("reordered lines: reordered at the first line out of place", async () => {
      const { path, files } = await fresh();
      const file = files[1]!;
      await editLines(file, (ls) => [ls[0]!, ls[2]!, ls[1]!, ...ls.slice(3)]);
      const { firstProblem } = await verifyDecisionLog(path);
      assert.deepEqual([firstProblem?.kind, firstProblem?.file, firstProblem?.line], ["reordered", file, 2]);
      assert.match(firstProblem!.message, /comes later, at line 3/);
    });

    it("a truncated file (its last line cut): truncated at that line", async () => {
      const { path } = await fresh();
      const text = await readFile(path, "utf8");
      await writeFile(path, text.slice(0, text.length - 40));
      const { firstProblem } = await verifyDecisionLog(path);
      assert.deepEqual([firstProblem?.kind, firstProblem?.file, firstProblem?.line], ["truncated", path, (await lines(path)).length + 1]);
      // Cut exactly before the newline: still reported, the content is intact but the write was cut.
      await writeFile(path, `${text.slice(0, -1)}`);
      assert.equal((await verifyDecisionLog(path)).firstProblem?.kind, "truncated");
    });

    it("a missing rotated file in the middle: missing at the first line of the next file", async () => {
      const { path, files } = await fresh();
      const [lost] = files.splice(2, 1);
      const lostSeqs = await seqsOf(lost!);
      await rm(lost!);
      const { firstProblem } = await verifyDecisionLog(path);
      assert.deepEqual([firstProblem?.kind, firstProblem?.file, firstProblem?.line], ["missing", files[2], 1]);
      assert.match(firstProblem!.message, new RegExp(`seq ${lostSeqs[0]}\\.\\.${lostSeqs.at(-1)}`));
      assert.match(firstProblem!.message, /a rotated file missing\?/);
    });

    it("a log whose head was cut (first file missing): head-missing, unless told where it now starts", async () => {
      const { path, files } = await fresh();
      const lastOfHead = JSON.parse((await lines(files[0]!)).at(-1)!) as { seq: number; hash: string };
      await rm(files[0]!);
      const { firstProblem } = await verifyDecisionLog(path);
      assert.deepEqual([firstProblem?.kind, firstProblem?.file, firstProblem?.line, firstProblem?.seq], ["head-missing", files[1], 1, lastOfHead.seq + 1]);
      assert.match(firstProblem!.message, new RegExp(`from: \\{ seq: ${lastOfHead.seq + 1} \\}`));
      assert.equal((await verifyDecisionLog(path, { from: { seq: lastOfHead.seq + 1 } })).ok, true);
      assert.equal((await verifyDecisionLog(path, { from: { seq: lastOfHead.seq + 1, prevHash: lastOfHead.hash } })).ok, true);
      const wrong = await verifyDecisionLog(path, { from: { seq: lastOfHead.seq + 1, prevHash: "b".repeat(64) } });
      assert.equal(wrong.firstProblem?.kind, "broken-link");
    });

    it("whole lines cut from the end: only an anchor kept elsewhere (`to`) proves it", async () => {
      const { path } = await fresh();
      const anchor = (await verifyDecisionLog(path)).last!;
      await editLines(path, (ls) => ls.slice(0, -1));
      assert.equal((await verifyDecisionLog(path)).ok, true, "a hash chain alone cannot see lines cut at the end");
      const { firstProblem } = await verifyDecisionLog(path, { to: anchor });
      assert.equal(firstProblem?.kind, "missing");
      assert.match(firstProblem!.message, /cut from the end/);
      // A chain rewritten from some line on, with every hash recomputed, differs from the anchor's hash.
      const rewritten = await fresh();
      const fixed = (await verifyDecisionLog(rewritten.path)).last!;
      await editLines(rewritten.path, (ls) => {
        const last = JSON.parse(ls.at(-1)!) as Record<string, unknown>;
        last["decision"] = "deny";
        return [...ls.slice(0, -1), JSON.stringify({ ...last, hash: lineHash(last) })];
      });
      assert.equal((await verifyDecisionLog(rewritten.path, { to: fixed })).firstProblem?.kind, "hash-mismatch");
    });
  });

  it("a garbage log gives a clean report, and bad input to the verifier is a ConfigurationError", async () => {
    const dir = await freshDir();
    const garbage = join(dir, "garbage.jsonl");
    await writeFile(garbage, Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x0a, 0x5b, 0x31, 0x5d, 0x0a]));
    assert.deepEqual({ ...(await verifyDecisionLog(garbage)).firstProblem, message: undefined }, { file: garbage, line: 1, kind: "malformed", message: undefined });
    await writeFile(garbage, "[1,2]\n");
    assert.equal((await verifyDecisionLog(garbage)).firstProblem?.kind, "malformed");
    await writeFile(garbage, "\n");
    assert.match((await verifyDecisionLog(garbage)).firstProblem!.message, /empty line/);
    await writeFile(garbage, "x".repeat(9 * 1024 * 1024));
    assert.equal((await verifyDecisionLog(garbage)).firstProblem?.kind, "malformed");
    const empty = join(await freshDir(), "empty.jsonl");
    await writeFile(empty, "");
    assert.deepEqual(await verifyDecisionLog(empty), { ok: true, records: 0, droppedRecords: 0, files: [empty] });
    await assert.rejects(verifyDecisionLog(join(dir, "nothing-here.jsonl")), ConfigurationError);
    await assert.rejects(verifyDecisionLog(""), ConfigurationError);
    await assert.rejects(verifyDecisionLog(garbage, { from: { seq: 0 } }), /options\.from\.seq: must be at least 1/);
    await assert.rejects(verifyDecisionLog(garbage, { to: { seq: 3, hash: "xyz" } }), /options\.to\.hash/);
    await writeFile(join(dir, "other.jsonl"), "");
    await assert.rejects(verifyDecisionLog(dir), /holds several logs/);
  });

  it("options are validated with messages that say what to change", () => {
    assert.throws(() => createJsonlSink({ path: "" }), (e: unknown) => e instanceof ConfigurationError && /jsonlSink\.path: must not be empty/.test(e.message));
    assert.throws(() => createJsonlSink({ path: "x.jsonl", maxBytes: 10 }), /jsonlSink\.maxBytes: must be at least 1024/);
    assert.throws(() => createJsonlSink({ path: "x.jsonl", maxFiles: 0 }), /jsonlSink\.maxFiles: must be at least 1/);
    assert.throws(() => createJsonlSink({ path: "x.jsonl", flushIntervalMs: -1 }), /jsonlSink\.flushIntervalMs/);
    assert.throws(() => createJsonlSink({ path: "logs/" }), /must name a file, not a directory/);
    assert.throws(() => createJsonlSink({ path: "x.jsonl", rotate: true } as never), /unrecognized key[\s\S]*allowed: path, maxBytes/i);
    assert.throws(() => createJsonlSink(undefined as never), ConfigurationError);
  });

  it("one open sink per path: a second one is refused until the first is closed", async () => {
    const dir = await freshDir();
    const path = join(dir, "decisions.jsonl");
    const first = createJsonlSink({ path });
    assert.throws(() => createJsonlSink({ path }), /another open sink already writes/);
    // Under another name, through a symbolic link to the file or to its directory: the same file.
    await first.flush();
    symlinkSync(path, join(dir, "alias.jsonl"));
    symlinkSync(dir, join(dir, "..", `${basename(dir)}-link`));
    assert.throws(() => createJsonlSink({ path: join(dir, "alias.jsonl") }), /another open sink already writes/);
    assert.throws(() => createJsonlSink({ path: join(dir, "..", `${basename(dir)}-link`, "decisions.jsonl") }), /another open sink already writes/);
    await first.close();
    await createJsonlSink({ path }).close();
  });

  it("continues an existing log across a restart: one chain, one valid log", async () => {
    const dir = await freshDir();
    const path = join(dir, "decisions.jsonl");
    const first = createJsonlSink({ path });
    await writeAll(first, 1, 10);
    await first.close();
    const second = createJsonlSink({ path });
    await writeAll(second, 11, 20);
    await second.close();
    assert.deepEqual(await seqsOf(path), Array.from({ length: 20 }, (_, i) => i + 1));
    const result = await verifyDecisionLog(path);
    assert.equal(result.ok, true, JSON.stringify(result.firstProblem));
    assert.equal(result.records, 20);
    // Restarted between a rotation and the next write (no active file, only rotated ones): continues from the last rotated file.
    await rename(path, join(dir, rotatedName("decisions.jsonl", 1, 20)));
    const third = createJsonlSink({ path });
    await writeAll(third, 21, 25);
    await third.close();
    assert.deepEqual(await seqsOf(path), [21, 22, 23, 24, 25]);
    assert.equal((await verifyDecisionLog(path)).ok, true);
    assert.equal((await verifyDecisionLog(path)).records, 25);
  });

  it("a chain key: lines verify only with that key; a line rewritten and re-hashed without it is caught; a restart with the key continues the chain", async () => {
    const dir = await freshDir();
    const path = join(dir, "decisions.jsonl");
    const key = randomBytes(32);
    const first = createJsonlSink({ path, chainKey: key });
    await writeAll(first, 1, 5);
    await first.close();
    const second = createJsonlSink({ path, chainKey: createSecretKey(key) });
    await writeAll(second, 6, 10);
    await second.close();
    const keyed = await verifyDecisionLog(path, { key });
    assert.equal(keyed.ok, true, JSON.stringify(keyed.firstProblem));
    assert.equal(keyed.records, 10);
    const unkeyed = await verifyDecisionLog(path);
    assert.equal(unkeyed.firstProblem?.kind, "hash-mismatch");
    assert.equal(unkeyed.firstProblem?.seq, 1);
    assert.equal((await verifyDecisionLog(path, { key: randomBytes(32) })).firstProblem?.kind, "hash-mismatch");
    // Someone who can write the file but holds no key: a denial rewritten as an allow, every hash
    // from there recomputed with SHA-256 — an unkeyed chain could not tell.
    const lines = (await readFile(path, "utf8")).trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    let prevHash = lines[2]!["hash"] as string;
    const forged = lines.map((line, i) => {
      if (i < 3) return JSON.stringify(line);
      const body = { ...line, ...(i === 3 && { decision: "allow" }), prevHash };
      delete (body as { hash?: unknown }).hash;
      const hash = createHash("sha256").update(canonicalJson(body)).digest("hex");
      prevHash = hash;
      return `${canonicalJson(body).slice(0, -1)},"hash":"${hash}"}`;
    });
    await writeFile(path, `${forged.join("\n")}\n`);
    const caught = await verifyDecisionLog(path, { key });
    assert.equal(caught.firstProblem?.kind, "hash-mismatch");
    assert.equal(caught.firstProblem?.seq, 4);
    assert.match(caught.firstProblem?.message ?? "", /or was not written with this key/);
    assert.throws(() => createJsonlSink({ path: join(dir, "short.jsonl"), chainKey: randomBytes(16) }), (e: unknown) => e instanceof ConfigurationError && /chainKey must be at least 32 bytes/.test(e.message));
    assert.throws(() => createJsonlSink({ path: join(dir, "short.jsonl"), chainKey: "secret" as never }), (e: unknown) => e instanceof ConfigurationError && /chainKey: must be a Uint8Array/.test(e.message));
    await assert.rejects(() => verifyDecisionLog(path, { key: randomBytes(8) }), /options\.key must be at least 32 bytes/);
  });

  it("a log keeps the key it began with: a sink with another key, or none, on it fails closed saying so and leaves it untouched", async () => {
    for (const [label, before, after] of [
      ["unkeyed, then a key", undefined, randomBytes(32)],
      ["keyed, then another key", randomBytes(32), randomBytes(32)],
      ["keyed, then no key", randomBytes(32), undefined],
    ] as const) {
      const dir = await freshDir();
      const path = join(dir, "decisions.jsonl");
      const first = createJsonlSink({ path, ...(before && { chainKey: before }) });
      await writeAll(first, 1, 3);
      await first.close();
      const text = await readFile(path, "utf8");
      const errors: DecisionSinkError[] = [];
      const second = createJsonlSink({ path, ...(after && { chainKey: after }), retryIntervalMs: 60_000, onError: (e) => errors.push(e) });
      second.write(record(4));
      await assert.rejects(() => second.flush(), (e: unknown) => e instanceof DecisionSinkError && /none of which verifies .*A log keeps the key and name it began with/.test(e.message), label);
      assert.match(errors[0]?.message ?? "", after ? /with this sink's chainKey: it was written with another key or log name, or without a key/ : /without a chainKey: it was written with one/, label);
      await assert.rejects(second.close()); // its records could not be written
      assert.equal(await readFile(path, "utf8"), text, `${label}: untouched`);
    }
  });

  it("another writer on the file (a second process, a sink on a hard link) is caught at the next batch: the sink fails closed and appends nothing more", async () => {
    const dir = await freshDir();
    const path = join(dir, "decisions.jsonl");
    const errors: DecisionSinkError[] = [];
    const sink = createJsonlSink({ path, retryIntervalMs: 60_000, onError: (e) => errors.push(e) });
    await writeAll(sink, 1, 3);
    // Another process's chain, appended to the same file.
    const other = genesisState();
    await writeFile(path, `${JSON.stringify(chainRecord(other, record(100)))}\n`, { flag: "a" });
    const before = await readFile(path, "utf8");
    sink.write(record(4));
    await assert.rejects(() => sink.flush(), (e: unknown) => e instanceof DecisionSinkError && /written \(\d+ bytes\) by something other than this sink .*Give each writer a log of its own/.test(e.message));
    assert.equal((errors[0]?.cause as { code?: string } | undefined)?.code, "EOTHERWRITER");
    assert.equal(await readFile(path, "utf8"), before, "nothing appended after the other writer's line");
    await assert.rejects(sink.close());
    // Two sinks in one process on one file through a hard link (the paths differ, the file does not):
    // the one that wrote first is caught when the other has written.
    const linked = await linkedSinks();
    await writeAll(linked.second, 4, 4);
    await linked.second.close();
    linked.first.write(record(4));
    await assert.rejects(() => linked.first.flush(), /by something other than this sink/);
    await assert.rejects(linked.first.close());
    // The other side: a sink that starts on a log another writer goes on appending to is caught at
    // its first batch, before it forks the chain after the other's newer lines.
    const forking = await linkedSinks();
    await forking.second.flush(); // it has read the log's end (seq 3)
    await writeAll(forking.first, 4, 5);
    const atFive = await readFile(forking.path, "utf8");
    forking.second.write(record(100));
    await assert.rejects(() => forking.second.flush(), /by something other than this sink/);
    assert.equal(await readFile(forking.path, "utf8"), atFive, "nothing appended after the other writer's lines");
    await forking.first.close();
    await assert.rejects(forking.second.close());
    assert.equal((await verifyDecisionLog(forking.path)).ok, true);
  });

  it("a file cut in place (copytruncate) is a new file: its rotated name starts at the first line written after the cut", async () => {
    const dir = await freshDir();
    const path = join(dir, "decisions.jsonl");
    const sink = createJsonlSink({ path, maxBytes: 4096 });
    await writeAll(sink, 1, 3);
    await truncate(path, 0);
    await writeAll(sink, 4, 20);
    await sink.close();
    const rotated = (await readdir(dir)).filter((name) => name !== "decisions.jsonl").sort();
    assert.ok(rotated.length > 0);
    assert.ok(rotated[0]!.startsWith(`${rotatedName("decisions.jsonl", 4, 4).split("-")[0]}-`), `named from seq 4, not 1: ${rotated[0]}`);
  });

  it("a path under /dev is a stream: appended to as named, never rotated or resolved to what it points at", async () => {
    const dir = await freshDir();
    const target = join(dir, "service-output.log");
    await writeFile(target, "");
    const handle = await open(target, "a");
    // /dev/fd/<n> names the file through the descriptor, as /dev/stdout names a redirected output.
    const alias = `/dev/fd/${handle.fd}`;
    const sink = createJsonlSink({ path: alias, maxBytes: 1024, retryIntervalMs: 60_000 });
    await writeAll(sink, 1, 10);
    await handle.write("a line the service itself printed\n");
    await writeAll(sink, 11, 20);
    await sink.close();
    await handle.close();
    assert.deepEqual(await readdir(dir), ["service-output.log"], "never rotated beside the file it points at");
    const lines = (await readFile(target, "utf8")).trimEnd().split("\n");
    assert.equal(lines.filter((line) => line.startsWith("{")).length, 20);
  });

  it("a log name binds every line to its log: another log under the same key does not verify in its place, rotated files included", async () => {
    const key = randomBytes(32);
    const logs: Record<string, string> = {};
    for (const logName of ["payments-prod", "search-prod"]) {
      const dir = await freshDir();
      logs[logName] = join(dir, "decisions.jsonl");
      const sink = createJsonlSink({ path: logs[logName], maxBytes: 4096, chainKey: key, logName });
      await writeAll(sink, 1, 12);
      await sink.close();
    }
    const payments = logs["payments-prod"]!;
    const named = await verifyDecisionLog(payments, { key, logName: "payments-prod" });
    assert.equal(named.ok, true, JSON.stringify(named.firstProblem));
    assert.equal(named.records, 12);
    assert.ok(named.files.length >= 3, "the log rotated");
    // The search log moved into the payments log's place: a key shared by both cannot tell them
    // apart, the name does — at its first line, and in a rotated file alone (oldest files pruned).
    const substituted = await freshDir();
    await cp(dirname(logs["search-prod"]!), substituted, { recursive: true });
    const swapped = await verifyDecisionLog(join(substituted, "decisions.jsonl"), { key, logName: "payments-prod" });
    assert.equal(swapped.firstProblem?.kind, "hash-mismatch");
    assert.equal(swapped.firstProblem?.seq, 1);
    assert.match(swapped.firstProblem?.message ?? "", /or was not written with this key and log name/);
    const { files } = await verifyDecisionLog(join(substituted, "decisions.jsonl"), { key, logName: "search-prod" });
    await rm(files[0]!);
    const from = { seq: (JSON.parse((await readFile(files[1]!, "utf8")).split("\n")[0]!) as { seq: number }).seq };
    const pruned = await verifyDecisionLog(join(substituted, "decisions.jsonl"), { key, logName: "payments-prod", from });
    assert.equal(pruned.firstProblem?.kind, "hash-mismatch");
    assert.equal(pruned.firstProblem?.seq, from.seq);
    const own = await verifyDecisionLog(join(substituted, "decisions.jsonl"), { key, logName: "search-prod", from });
    assert.equal(own.ok, true, JSON.stringify(own.firstProblem));
    // The key alone, or the name with another key, does not verify a named log.
    assert.equal((await verifyDecisionLog(payments, { key })).firstProblem?.kind, "hash-mismatch");
    assert.equal((await verifyDecisionLog(payments, { key: randomBytes(32), logName: "payments-prod" })).firstProblem?.kind, "hash-mismatch");
    // A restart under another name fails closed, leaving the log as it was; under its own name it continues.
    const errors: DecisionSinkError[] = [];
    const renamed = createJsonlSink({ path: payments, maxBytes: 4096, chainKey: key, logName: "payments-staging", retryIntervalMs: 60_000, onError: (e) => errors.push(e) });
    renamed.write(record(13));
    await assert.rejects(() => renamed.flush(), (e: unknown) => e instanceof DecisionSinkError && /none of which verifies with this sink's chainKey and logName/.test(e.message));
    assert.match(errors[0]?.message ?? "", /with this sink's chainKey and logName/);
    await assert.rejects(renamed.close());
    assert.equal((await verifyDecisionLog(payments, { key, logName: "payments-prod" })).records, 12);
    const continued = createJsonlSink({ path: payments, maxBytes: 4096, chainKey: key, logName: "payments-prod" });
    await writeAll(continued, 13, 14);
    await continued.close();
    assert.equal((await verifyDecisionLog(payments, { key, logName: "payments-prod" })).records, 14);
  });

  it("a log name needs a chain key and a name's shape; it is refused, never ignored", async () => {
    const path = join(await freshDir(), "decisions.jsonl");
    assert.throws(() => createJsonlSink({ path, logName: "payments-prod" }), (e: unknown) => e instanceof ConfigurationError && /jsonlSink\.logName needs jsonlSink\.chainKey/.test(e.message));
    for (const logName of ["", "payments prod", "a\nb", "x".repeat(201), "caf\u00e9"]) {
      assert.throws(() => createJsonlSink({ path, chainKey: randomBytes(32), logName }), (e: unknown) => e instanceof ConfigurationError && /jsonlSink\.logName must be 1 to 200 letters/.test(e.message), JSON.stringify(logName));
    }
    assert.throws(() => createJsonlSink({ path, chainKey: randomBytes(32), logName: 7 as never }), /jsonlSink\.logName: must be a string/);
    await assert.rejects(() => verifyDecisionLog(path, { logName: "payments-prod" }), /options\.logName needs verifyDecisionLog options\.key/);
    // The derivation is deterministic, and each name (and key) gives its own key.
    const key = createSecretKey(randomBytes(32));
    const a = logChainKey(key, "payments-prod", "logName").export().toString("hex");
    assert.equal(logChainKey(key, "payments-prod", "logName").export().toString("hex"), a);
    assert.notEqual(logChainKey(key, "payments-pro", "logName").export().toString("hex"), a);
    assert.notEqual(logChainKey(createSecretKey(randomBytes(32)), "payments-prod", "logName").export().toString("hex"), a);
    assert.notEqual(key.export().toString("hex"), a);
  });

  it("a record lost just before flush or close is counted in the chain too: the last line is its records-dropped line", async () => {
    const path = join(await freshDir(), "decisions.jsonl");
    const sink = createJsonlSink({ path, onError: () => {} });
    await writeAll(sink, 1, 2);
    sink.write(null as never);
    await sink.close();
    assert.equal(sink.dropped, 1);
    const next = createJsonlSink({ path });
    await writeAll(next, 3, 4);
    await next.close();
    const result = await verifyDecisionLog(path);
    assert.equal(result.ok, true, JSON.stringify(result.firstProblem));
    assert.deepEqual([result.records, result.droppedRecords], [4, 1]);
  });

  it("a records-dropped line the writer would not write (a count that drops nothing, extra fields) is malformed; so is a line that is not UTF-8", async () => {
    const dir = await freshDir();
    const path = join(dir, "decisions.jsonl");
    for (const fields of [{ count: 0 }, { count: -7 }, { count: 1.5 }, { count: "9" }, {}, { count: 2, note: "explains a deletion" }]) {
      const state = genesisState();
      const first = chainRecord(state, record(1));
      const forged = chainEvent(state, "records-dropped", { time: "2026-01-01T00:00:00.000Z", ...fields }).text;
      await writeFile(path, `${JSON.stringify(first)}\n${forged}\n`);
      const result = await verifyDecisionLog(path);
      assert.equal(result.firstProblem?.kind, "malformed", JSON.stringify(fields));
      assert.match(result.firstProblem!.message, /records-dropped line must be/);
    }
    const state = genesisState();
    const text = Buffer.from(`${JSON.stringify(chainRecord(state, record(1, { reasons: ["a \uFFFD b"] })))}\n`);
    const at = text.indexOf(Buffer.from("\uFFFD"));
    await writeFile(path, Buffer.concat([text.subarray(0, at), Buffer.from([0xff]), text.subarray(at + 3)]));
    const bytes = await verifyDecisionLog(path);
    assert.equal(bytes.firstProblem?.kind, "malformed");
    assert.match(bytes.firstProblem!.message, /not UTF-8/);
  });

  it("a directory holding a log under another name and a .jsonl file beside it holds two logs: refused", async () => {
    const dir = await freshDir();
    const sink = createJsonlSink({ path: join(dir, "decisions.log") });
    await writeAll(sink, 1, 3);
    await sink.close();
    await writeFile(join(dir, "decoy.jsonl"), "");
    await assert.rejects(verifyDecisionLog(dir), /holds several logs \(decisions\.log, decoy\.jsonl\)/);
    await writeFile(join(dir, "notes.txt"), "not a log\n");
    await rm(join(dir, "decoy.jsonl"));
    assert.equal((await verifyDecisionLog(dir)).records, 3);
  });

  it("a restart after a first write was cut, set aside, and the process gone before its chain-break: the chain goes on from the last intact line, with the break", async () => {
    for (const chainKey of [undefined, randomBytes(32)]) {
      const dir = await freshDir();
      const path = join(dir, "decisions.jsonl");
      const first = createJsonlSink({ path, ...(chainKey && { chainKey }) });
      await writeAll(first, 1, 5);
      await first.close();
      await rename(path, join(dir, rotatedName("decisions.jsonl", 1, 5)));
      await writeFile(join(dir, rotatedName("decisions.jsonl", 6, 5)), '{"action":"Bedrock::Action::\\"Conv');
      const second = createJsonlSink({ path, ...(chainKey && { chainKey }) });
      await writeAll(second, 6, 7);
      await second.close();
      const written = (await lines(path)).map((l) => JSON.parse(l) as { seq: number; type?: string });
      assert.deepEqual(written.map((l) => `${l.seq}${l.type ? `:${l.type}` : ""}`), ["6:chain-break", "7", "8"]);
      const result = await verifyDecisionLog(path, chainKey ? { key: chainKey } : {});
      assert.equal(result.firstProblem?.kind, "chain-break", JSON.stringify(result.firstProblem));
    }
    // A first write cut by a crash, set aside with its chain-break written: later restarts continue from the active file.
    {
      const dir = await freshDir();
      const path = join(dir, "decisions.jsonl");
      await writeFile(path, '{"action":"Bedrock::Action::\\"Conv');
      for (const [from, to] of [[1, 2], [3, 4], [5, 5]] as const) {
        const sink = createJsonlSink({ path });
        await writeAll(sink, from, to);
        await sink.close();
      }
      const result = await verifyDecisionLog(path);
      assert.equal(result.firstProblem?.kind, "chain-break", JSON.stringify(result.firstProblem));
      assert.deepEqual(await seqsOf(path), [1, 2, 3, 4, 5, 6]);
    }
    // Two such files, or none intact at all: where the chain ends is unknown, and the sink fails rather than start again at seq 1.
    const dir = await freshDir();
    const path = join(dir, "decisions.jsonl");
    await writeFile(join(dir, rotatedName("decisions.jsonl", 1, 5)), "");
    const errors: DecisionSinkError[] = [];
    const lost = createJsonlSink({ path, retryIntervalMs: 60_000, onError: (e) => errors.push(e) });
    lost.write(record(1));
    await assert.rejects(lost.flush(), /cannot tell where the chain of .* ends/);
    await assert.rejects(lost.close());
  });

  it("a log whose last line was cut by a crash: the next sink never appends to it, records a chain-break, and the verifier reports it", async () => {
    const dir = await freshDir();
    const path = join(dir, "decisions.jsonl");
    const first = createJsonlSink({ path });
    await writeAll(first, 1, 5);
    await first.close();
    const partial = '{"action":"Bedrock::Action::\\"Converse\\"","authentication":{"ver';
    await writeFile(path, partial, { flag: "a" });
    const damagedText = await readFile(path, "utf8");

    const second = createJsonlSink({ path });
    await writeAll(second, 6, 8);
    await second.close();
    const damagedName = rotatedName("decisions.jsonl", 1, 5);
    assert.equal(await readFile(join(dir, damagedName), "utf8"), damagedText, "the damaged file is kept byte for byte, renamed into the sequence");
    const [breakLine, ...rest] = (await lines(path)).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(breakLine!["type"], "chain-break");
    assert.equal(breakLine!["seq"], 6);
    assert.equal(breakLine!["file"], damagedName);
    assert.equal(breakLine!["reason"], "truncated-line");
    assert.equal(breakLine!["damagedBytes"], Buffer.byteLength(partial));
    assert.deepEqual(rest.map((l) => l["seq"]), [7, 8, 9]);

    const { ok, records, firstProblem } = await verifyDecisionLog(path);
    assert.equal(ok, false);
    assert.equal(records, 5);
    assert.deepEqual([firstProblem?.kind, firstProblem?.file, firstProblem?.line], ["chain-break", join(dir, damagedName), 6]);
    assert.match(firstProblem!.message, /recorded a chain-break/);
    // The part after the break verifies on its own, from the line after it (earlier lines skipped)...
    const after = await verifyDecisionLog(path, { from: { seq: 7, prevHash: breakLine!["hash"] as string } });
    assert.deepEqual([after.ok, after.records, after.firstProblem], [true, 3, undefined]);
    // ...and tampering after the break is still found there.
    await editLines(path, (ls) => [ls[0]!, ls[1]!.replace('"decision":"allow"', '"decision":"deny"'), ...ls.slice(2)]);
    const tampered = await verifyDecisionLog(path, { from: { seq: 7, prevHash: breakLine!["hash"] as string } });
    assert.deepEqual([tampered.firstProblem?.kind, tampered.firstProblem?.line], ["hash-mismatch", 2]);
    await editLines(path, (ls) => [ls[0]!, ls[1]!.replace('"decision":"deny"', '"decision":"allow"'), ...ls.slice(2)]);
    // A third start continues normally after the break line.
    const third = createJsonlSink({ path });
    await writeAll(third, 9, 9);
    await third.close();
    assert.deepEqual((await seqsOf(path)).slice(-2), [9, 10]);
  });

  it("a log whose last line was changed: the next sink breaks the chain after the last intact line (reason hash-mismatch)", async () => {
    const dir = await freshDir();
    const path = join(dir, "decisions.jsonl");
    const first = createJsonlSink({ path });
    await writeAll(first, 1, 4);
    await first.close();
    await editLines(path, (ls) => [...ls.slice(0, -1), ls.at(-1)!.replace('"decision":"allow"', '"decision":"deny"')]);
    const second = createJsonlSink({ path });
    await writeAll(second, 5, 5);
    await second.close();
    const [breakLine] = (await lines(path)).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual([breakLine!["type"], breakLine!["seq"], breakLine!["reason"], breakLine!["file"]], ["chain-break", 4, "hash-mismatch", rotatedName("decisions.jsonl", 1, 3)]);
    const { firstProblem } = await verifyDecisionLog(path);
    assert.deepEqual([firstProblem?.kind, firstProblem?.file, firstProblem?.line], ["chain-break", join(dir, rotatedName("decisions.jsonl", 1, 3)), 4]);
  });

  it("a file at path that is not a decision log is refused, untouched, and the sink reports failure", async () => {
    const path = join(await freshDir(), "notes.txt");
    await writeFile(path, "dear diary\nnothing to see\n");
    const errors: DecisionSinkError[] = [];
    const sink = createJsonlSink({ path, onError: (e) => errors.push(e), retryIntervalMs: 10_000 });
    sink.write(record(1));
    await assert.rejects(sink.flush(), DecisionSinkError);
    assert.match(String(sink.failure?.message), /holds no decision-log line/);
    assert.equal(errors.length, 1);
    assert.equal(await readFile(path, "utf8"), "dear diary\nnothing to see\n");
    await assert.rejects(sink.close());
  });

  it("10,000 writes from many concurrent tasks: exactly 10,000 lines, seq 1..10,000 in order, the log verifies", async () => {
    const dir = await freshDir();
    const path = join(dir, "decisions.jsonl");
    const sink = createJsonlSink({ path, maxBytes: 2 * 1024 * 1024, flushIntervalMs: 5 });
    let n = 0;
    await Promise.all(
      Array.from({ length: 100 }, async (_, task) => {
        for (let i = 0; i < 100; i++) {
          sink.write(record(++n, { task: `task-${task}` }));
          if (i % 7 === task % 7) await new Promise((r) => setImmediate(r));
          else await Promise.resolve();
        }
      }),
    );
    await sink.close();
    assert.equal(sink.dropped, 0);
    const result = await verifyDecisionLog(path);
    assert.equal(result.ok, true, JSON.stringify(result.firstProblem));
    assert.equal(result.records, 10_000);
    const seqs: number[] = [];
    const ids = new Set<string>();
    for (const file of result.files) {
      for (const line of await lines(file)) {
        const parsed = JSON.parse(line) as { seq: number; id: string };
        seqs.push(parsed.seq);
        ids.add(parsed.id);
      }
    }
    assert.equal(seqs.length, 10_000);
    assert.deepEqual(seqs, Array.from({ length: 10_000 }, (_, i) => i + 1));
    assert.equal(ids.size, 10_000);
  });

  it("records written by a process that returns without awaiting close() are on disk when it exits (beforeExit)", async () => {
    const dir = await freshDir();
    const path = join(dir, "decisions.jsonl");
    const script = join(dir, "child.mts");
    const sinkModule = pathToFileURL(fileURLToPath(new URL("../src/audit/jsonl-sink.ts", import.meta.url))).href;
    await writeFile(
      script,
      `import { createJsonlSink } from ${JSON.stringify(sinkModule)};
const sink = createJsonlSink({ path: ${JSON.stringify(path)}, flushIntervalMs: 60000 });
for (let n = 1; n <= 500; n++) sink.write({ id: "child-" + n, decision: "allow", time: new Date().toISOString() });
setTimeout(() => { for (let n = 501; n <= 600; n++) sink.write({ id: "child-" + n, decision: "deny", time: new Date().toISOString() }); }, 5);
`,
    );
    const root = fileURLToPath(new URL("..", import.meta.url));
    await promisify(execFile)(process.execPath, ["--import", "tsx", script], { cwd: root, timeout: 30_000 });
    const ids = (await lines(path)).map((l) => (JSON.parse(l) as { id: string }).id);
    assert.equal(ids.length, 600);
    assert.equal(ids[599], "child-600");
    assert.equal((await verifyDecisionLog(path)).ok, true);
  });

  describe("failure and recovery", () => {
    it("the directory removed: failure set, records kept; the directory back: failure cleared, none lost", async () => {
      const parent = await freshDir();
      const dir = join(parent, "logs");
      await mkdir(dir);
      const path = join(dir, "decisions.jsonl");
      const errors: DecisionSinkError[] = [];
      const sink = createJsonlSink({ path, retryIntervalMs: 20, onError: (e) => errors.push(e) });
      await writeAll(sink, 1, 5);
      const before = sink.last!;
      await rm(dir, { recursive: true });
      for (let n = 6; n <= 10; n++) sink.write(record(n));
      await assert.rejects(sink.flush(), (e: unknown) => e instanceof DecisionSinkError && e.code === "ERR_DECISION_SINK" && (e.cause as NodeJS.ErrnoException).code === "ENOENT");
      assert.ok(sink.failure instanceof DecisionSinkError);
      assert.match(sink.failure.message, /5 record\(s\) waiting/);
      assert.equal(errors.length, 1, "reported once, not at every retry");
      assert.equal(sink.pending, 5);
      await new Promise((r) => setTimeout(r, 60));
      assert.ok(sink.failure, "still failing while the directory is gone");
      await mkdir(dir);
      await until(() => sink.failure === undefined);
      assert.equal(sink.pending, 0);
      assert.equal(sink.dropped, 0);
      assert.deepEqual(await seqsOf(path), [6, 7, 8, 9, 10]);
      // The old file went with the directory: the rest verifies from where it now starts, anchored to the last line before.
      assert.equal((await verifyDecisionLog(path)).firstProblem?.kind, "head-missing");
      assert.equal((await verifyDecisionLog(path, { from: { seq: 6, prevHash: before.hash } })).ok, true);
      await sink.close();
    });

    it("flush() with nothing written is a readiness check: it rejects when the directory does not exist", async () => {
      const path = join(await freshDir(), "missing", "decisions.jsonl");
      const sink = createJsonlSink({ path, retryIntervalMs: 10_000, onError: () => {} });
      await assert.rejects(sink.flush(), /the directory .*missing does not exist \(the sink never creates directories\)/);
      assert.equal((sink.failure?.cause as NodeJS.ErrnoException).code, "ENOENT");
      const ready = createJsonlSink({ path: join(await freshDir(), "decisions.jsonl") });
      await ready.flush();
      assert.equal(ready.failure, undefined);
      await ready.close();
      await sink.close();
    });

    it("path is a directory at start: failure (EISDIR); once it is gone the queued records are written", async () => {
      const dir = await freshDir();
      const path = join(dir, "decisions.jsonl");
      await mkdir(path);
      const sink = createJsonlSink({ path, retryIntervalMs: 20, onError: () => {} });
      for (let n = 1; n <= 3; n++) sink.write(record(n));
      await until(() => sink.failure !== undefined);
      assert.equal((sink.failure!.cause as NodeJS.ErrnoException).code, "EISDIR");
      await rmdir(path);
      await until(() => sink.failure === undefined);
      await sink.close();
      assert.deepEqual(await seqsOf(path), [1, 2, 3]);
      assert.equal((await verifyDecisionLog(path)).ok, true);
    });

    it("a full disk (/dev/full): failure with ENOSPC, close() rejects", { skip: !existsSync("/dev/full") }, async () => {
      const sink = createJsonlSink({ path: "/dev/full", retryIntervalMs: 10_000, onError: () => {} });
      sink.write(record(1));
      await assert.rejects(sink.flush(), (e: unknown) => (e as Error).cause !== undefined && ((e as Error).cause as NodeJS.ErrnoException).code === "ENOSPC");
      assert.match(String(sink.failure?.message), /ENOSPC/);
      assert.equal(sink.pending, 1);
      await assert.rejects(sink.close(), DecisionSinkError);
    });

    it("beyond maxQueue the oldest records are dropped, counted, and chained as a records-dropped line: the log verifies and says so; a line deleted is missing", async () => {
      const dir = await freshDir();
      const path = join(dir, "decisions.jsonl");
      const errors: DecisionSinkError[] = [];
      const sink = createJsonlSink({ path, maxQueue: 5, retryIntervalMs: 20, onError: (e) => errors.push(e) });
      await writeAll(sink, 1, 2);
      // Make the active file unwritable: the log so far is rotated away (as the sink would), and a directory takes its place.
      await rename(path, join(dir, rotatedName("decisions.jsonl", 1, 2)));
      await mkdir(path);
      for (let n = 3; n <= 10; n++) sink.write(record(n));
      await until(() => sink.failure !== undefined);
      assert.equal(sink.dropped, 3);
      assert.equal(sink.pending, 5);
      assert.ok(errors.some((e) => /oldest are being dropped/.test(e.message)));
      await rmdir(path);
      await until(() => sink.failure === undefined);
      await sink.close();
      const written = (await lines(path)).map((l) => JSON.parse(l) as { id?: string; type?: string; count?: number });
      assert.deepEqual(
        written.map((l) => l.id ?? `${l.type}:${l.count}`),
        ["records-dropped:3", "dec-000006", "dec-000007", "dec-000008", "dec-000009", "dec-000010"],
      );
      assert.deepEqual(await seqsOf(path), [3, 4, 5, 6, 7, 8]);
      const verified = await verifyDecisionLog(path);
      assert.equal(verified.ok, true, JSON.stringify(verified.firstProblem));
      assert.deepEqual([verified.records, verified.droppedRecords], [7, 3]);
      // A gap is now only ever lines deleted from the log.
      const kept = await lines(path);
      await writeFile(path, [kept[0], kept[1], ...kept.slice(3)].map((l) => `${l}\n`).join(""));
      const { firstProblem } = await verifyDecisionLog(path);
      assert.deepEqual([firstProblem?.kind, firstProblem?.file, firstProblem?.line], ["missing", path, 3]);
      assert.match(firstProblem!.message, /lines deleted/);
    });

    it("a write cut short (the disk filled mid-batch) resumes at the exact byte: no partial line once it recovers", async () => {
      const path = join(await freshDir(), "decisions.jsonl");
      const probe = await open(path, "a");
      const prototype = Object.getPrototypeOf(probe) as { writev: (buffers: Buffer[]) => Promise<{ bytesWritten: number }> };
      await probe.close();
      const real = prototype.writev;
      let calls = 0;
      prototype.writev = async function (this: unknown, buffers: Buffer[]) {
        calls++;
        // As write(2) does when the disk fills: a short write (half the batch, cutting a line), then ENOSPC.
        if (calls === 1) return real.call(this, [Buffer.concat(buffers).subarray(0, Math.floor(Buffer.concat(buffers).length / 2))]);
        if (calls === 2) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        return real.call(this, buffers);
      };
      try {
        const sink = createJsonlSink({ path, retryIntervalMs: 20, onError: () => {} });
        for (let n = 1; n <= 9; n++) sink.write(record(n));
        await assert.rejects(sink.flush(), /ENOSPC/);
        assert.notEqual((await readFile(path, "utf8")).at(-1), "\n", "the failed write left a partial line");
        await until(() => sink.failure === undefined);
        await sink.close();
      } finally {
        prototype.writev = real;
      }
      assert.deepEqual(await seqsOf(path), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.equal((await verifyDecisionLog(path)).ok, true);
    });

    it("maxFiles prunes the oldest rotated files; the verifier reports the head missing, and verifies from the oldest file's first seq", async () => {
      const dir = await freshDir();
      const path = join(dir, "decisions.jsonl");
      const sink = createJsonlSink({ path, maxBytes: 4096, maxFiles: 2 });
      await writeAll(sink, 1, 40);
      await sink.close();
      const { files, firstProblem } = await verifyDecisionLog(path);
      assert.equal(files.length, 3);
      assert.equal(firstProblem?.kind, "head-missing");
      const firstSeq = (await seqsOf(files[0]!))[0]!;
      const result = await verifyDecisionLog(path, { from: { seq: firstSeq } });
      assert.equal(result.ok, true);
      assert.equal(result.last?.seq, 40);
    });

    it("a record that cannot be serialized is dropped, counted, reported and chained as records-dropped; write() never throws", async () => {
      const path = join(await freshDir(), "decisions.jsonl");
      const errors: DecisionSinkError[] = [];
      const sink = createJsonlSink({ path, onError: (e) => errors.push(e) });
      sink.write(record(1));
      const cyclic = record(2) as DecisionRecord & { self?: unknown };
      cyclic.self = cyclic;
      sink.write(cyclic);
      sink.write(null as never);
      sink.write(record(4, { usage: { inputTokens: 1n as never } }));
      sink.write(record(5));
      await sink.close();
      sink.write(record(6));
      assert.equal(sink.dropped, 4);
      assert.equal(errors.length, 4);
      assert.deepEqual(await seqsOf(path), [1, 2, 3]);
      const verified = await verifyDecisionLog(path);
      assert.equal(verified.ok, true, JSON.stringify(verified.firstProblem));
      assert.deepEqual([verified.records, verified.droppedRecords], [2, 3]);
    });
  });
});

describe("OpenTelemetry logs sink", () => {
  it("emits one log record per decision: event name, severity by decision, summary body, bedrock_warden.* attributes, the call's trace context", async () => {
    const exporter = new InMemoryLogRecordExporter();
    const loggerProvider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter })] });
    const sink = otelLogsSink({ loggerProvider });
    const governance = createGovernance({ environment: "test", policies: BASE_POLICIES, tracerProvider, onDecision: (r) => sink.write(r) });
    const client = new GovernedBedrockRuntimeClient({ region: "us-east-1", credentials: CREDENTIALS, requestHandler: new MemoryHandler(), governance, maxAttempts: 1 });
    await runAs(invoiceAgent, () => client.converse(converseInput(HAIKU)), { purpose: "month-end close" });
    await assert.rejects(runAs(invoiceAgent, () => client.converse(converseInput(TITAN))));
    await sink.flush();

    const logged = exporter.getFinishedLogRecords();
    assert.equal(logged.length, 2);
    const [allowed, denied] = logged;
    assert.equal(allowed!.eventName, DECISION_EVENT_NAME);
    assert.equal(allowed!.instrumentationScope.name, "bedrock-warden");
    assert.equal(allowed!.severityNumber, SeverityNumber.INFO);
    assert.equal(denied!.severityNumber, SeverityNumber.WARN);
    assert.equal(denied!.severityText, "WARN");
    assert.match(String(allowed!.body), new RegExp(`^${invoiceAgent.id} allow Bedrock::Action::"Converse" on Bedrock::Model::"${HAIKU}" \\(completed\\)$`));
    assert.match(String(denied!.body), / deny .*\(denied\)/);
    const a = allowed!.attributes;
    assert.equal(a[WARDEN.WORKLOAD_ID], invoiceAgent.id);
    assert.deepEqual(a[WARDEN.WORKLOAD_GROUPS], ["billing"]);
    assert.equal(a[WARDEN.DECISION], "allow");
    assert.deepEqual(a[WARDEN.DECISION_POLICIES], ["billing-anthropic"]);
    assert.equal(a[WARDEN.PURPOSE], "month-end close");
    assert.equal(a[WARDEN.IDENTITY_METHOD], "declared");
    assert.equal(a[DECISION_LOG_ATTRIBUTES.OUTCOME], "completed");
    assert.equal(a["gen_ai.usage.input_tokens"], 11);
    assert.equal(a["aws.request_id"], "req-1");
    assert.equal(denied!.attributes[WARDEN.DECISION], "deny");
    // Each log record carries the trace context of its call's span.
    const spans = new Map<string, string>();
    for (const span of (await import("./support/tracing.js")).exporter.getFinishedSpans()) spans.set(span.spanContext().spanId, span.spanContext().traceId);
    for (const log of logged) {
      assert.ok(log.spanContext, "the log record has a span context");
      assert.equal(spans.get(log.spanContext.spanId), log.spanContext.traceId);
      assert.equal(log.attributes[WARDEN.DECISION_ID] !== undefined, true);
    }
    assert.notEqual(allowed!.spanContext!.spanId, denied!.spanContext!.spanId);
  });

  it("a record without trace ids is emitted in the root context (not the caller's), stamped with the decision's time; failure follows emit", async () => {
    const exporter = new InMemoryLogRecordExporter();
    const loggerProvider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter })] });
    const sink = otelLogsSink({ loggerProvider });
    const span = trace.getTracer("test").startSpan("unrelated caller");
    trace.getTracer("test");
    const { context } = await import("@opentelemetry/api");
    context.with(trace.setSpan(context.active(), span), () => sink.write(record(1, { decision: "deny", outcome: "denied", reasons: ["no"] })));
    span.end();
    const [log] = exporter.getFinishedLogRecords();
    assert.equal(log!.spanContext, undefined);
    assert.equal(log!.hrTime[0], Math.floor(Date.parse(record(1).time) / 1000));
    assert.match(String(log!.body), /: no$/);
    sink.write(record(2, { shadow: { decision: "deny", policies: ["new-forbid"], reasons: ["would deny"], errors: [] } }));
    const shadowed = exporter.getFinishedLogRecords()[1]!;
    assert.equal(shadowed.attributes[WARDEN.SHADOW_DECISION], "deny");
    assert.deepEqual(shadowed.attributes[WARDEN.SHADOW_POLICIES], ["new-forbid"]);
    assert.match(String(shadowed.body), /\[shadow policies would deny\]/);

    const broken = otelLogsSink({
      loggerProvider: {
        getLogger: () => ({
          emit: () => {
            throw new Error("processor exploded");
          },
        }),
      } as never,
    });
    assert.doesNotThrow(() => broken.write(record(1)));
    assert.match(String(broken.failure?.message), /processor exploded/);
    assert.throws(() => otelLogsSink({ loggerProvider: {} as never }), TypeError);
    await sink.close();
  });
});

describe("callbackSink", () => {
  it("an async listener that rejects marks the sink failing (never an unhandled rejection); flush waits for it", async () => {
    let fail = true;
    const sink = callbackSink(async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (fail) throw new Error("SIEM unreachable");
    });
    sink.write(record(1));
    await assert.rejects(sink.flush(), /SIEM unreachable/);
    assert.match(String(sink.failure?.message), /SIEM unreachable/);
    fail = false;
    sink.write(record(2));
    await sink.flush();
    assert.equal(sink.failure, undefined);
  });

  it("calls the listener; a throw is a warning and sets failure until the listener next succeeds", async () => {
    const seen: string[] = [];
    let fail = true;
    const sink = callbackSink((r) => {
      if (fail) throw new Error("listener down");
      seen.push(r.id);
    });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      assert.doesNotThrow(() => sink.write(record(1)));
      await new Promise((r) => setImmediate(r));
      assert.match(String(sink.failure?.message), /listener down/);
      assert.ok(warnings.some((w) => /the listener failed: listener down/.test(w.message)));
      fail = false;
      sink.write(record(2));
      assert.equal(sink.failure, undefined);
      assert.deepEqual(seen, ["dec-000002"]);
      await sink.close();
      sink.write(record(3));
      assert.deepEqual(seen, ["dec-000002"]);
    } finally {
      process.off("warning", onWarning);
    }
  });
});
