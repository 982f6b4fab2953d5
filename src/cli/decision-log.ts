/**
 * Reading a decision log as `inventory` does: a JSON Lines file, or a directory of them (the
 * current file and its rotated predecessors), line by line, never all in memory, and never
 * stopping at a line it cannot read.
 * @module
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { DecisionRecord } from "../audit/decision-record.js";
import { logFiles as chainFiles, readLogLines } from "../audit/verify-log.js";
import { ConfigurationError } from "../errors.js";
import { UsageError } from "./io.js";
import { parseJson } from "./json-location.js";

/**
 * The log files of a path: a log file and its rotated files beside it (`<path>.<firstSeq>-<lastSeq>`,
 * found as `verify-log` finds them), or every file of a directory whose name holds `.jsonl`
 * (one log or several: an inventory may span the logs of several processes), compressed ones
 * left out, in natural name order.
 */
export async function logFiles(path: string): Promise<string[]> {
  let stats;
  try {
    stats = await stat(path);
  } catch {
    throw new UsageError(`${path}: no such file or directory (the decision log)`);
  }
  if (!stats.isDirectory()) {
    try {
      return await chainFiles(path);
    } catch (error) {
      if (error instanceof ConfigurationError) throw new UsageError(error.message);
      throw error;
    }
  }
  const names = (await readdir(path)).filter((name) => name.includes(".jsonl") && !/\.(gz|zst|bz2|xz|zip)$/.test(name));
  const files: string[] = [];
  for (const name of names.sort((a, b) => a.localeCompare(b, "en", { numeric: true }))) {
    // Through symbolic links, as verify-log reads them; a FIFO or a device is never read.
    const info = await stat(join(path, name)).catch(() => undefined);
    if (info?.isFile()) files.push(join(path, name));
  }
  if (files.length === 0) throw new UsageError(`${path}: holds no decision log (no regular file whose name holds .jsonl)`);
  return files;
}

/**
 * The lines of a file, numbered from 1 (a final empty line is not one); a line longer than
 * verify-log's bound (8 MiB) is not held in memory: its text is undefined.
 */
export async function* fileLines(file: string): AsyncGenerator<{ readonly line: number; readonly text: string | undefined }> {
  for await (const line of readLogLines(file)) {
    yield { line: line.number, text: line.text === undefined ? undefined : line.text.replace(/\r$/, "") };
  }
}

/** What `inventory` needs of a record; anything else on the line (chain fields, usage ...) is kept out. */
const recordSchema = z.looseObject({
  time: z.string({ error: "time must be an ISO 8601 string" }).refine((t) => !Number.isNaN(Date.parse(t)), "time must be an ISO 8601 date"),
  workload: z
    .object({ id: z.string({ error: "workload.id must be a string" }), groups: z.array(z.string(), { error: "workload.groups must be an array of strings" }) }, { error: "workload must be { id, groups } or null" })
    .nullable(),
  action: z.string({ error: "action must be an entity reference string" }),
  resource: z.string({ error: "resource must be an entity reference string" }),
  decision: z.enum(["allow", "deny"], { error: 'decision must be "allow" or "deny"' }),
  policies: z.array(z.string(), { error: "policies must be an array of policy ids" }),
  tool: z.looseObject({ name: z.string(), phase: z.string() }, { error: "tool must be { name, phase, toolUseId? }" }).optional(),
}, { error: "a record must be a JSON object" });

/** The fields of a decision record `inventory` reads. */
export type LoggedRecord = Pick<DecisionRecord, "time" | "workload" | "action" | "resource" | "decision" | "policies" | "tool">;

/** One line of a log: a record, a chain event (a line with a `type`, e.g. `chain-break`), or what is wrong with it. */
export type LogLine =
  | { readonly kind: "record"; readonly record: LoggedRecord }
  | { readonly kind: "event"; readonly type: string }
  | { readonly kind: "blank" }
  | { readonly kind: "malformed"; readonly message: string };

/** Reads one line of a decision log. */
export function readLogLine(text: string): LogLine {
  if (text.trim() === "") return { kind: "blank" };
  const json = parseJson(text);
  if (!json.ok) return { kind: "malformed", message: json.message };
  const value = json.value;
  if (typeof value === "object" && value !== null && !Array.isArray(value) && typeof (value as { type?: unknown }).type === "string") {
    return { kind: "event", type: (value as { type: string }).type };
  }
  const parsed = recordSchema.safeParse(value);
  if (!parsed.success) return { kind: "malformed", message: parsed.error.issues.map((issue) => issue.message).join("; ") };
  return { kind: "record", record: parsed.data as unknown as LoggedRecord };
}
