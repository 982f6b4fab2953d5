/**
 * Where things are in a JSON text, so that every problem can be reported as `file:line:column`.
 * @module
 */
import { writesAKeyTwice } from "../json-keys.js";

/** The 1-based line and column of a character offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

/** The outcome of parsing JSON text: the value, or where and why it is not JSON. */
export type JsonParse =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly offset: number | undefined; readonly message: string };

/**
 * Parses JSON, and on a syntax error says where (when V8 says) and what, without quoting the
 * whole text back (V8 quotes it in some messages, which would flood a report).
 */
export function parseJson(text: string): JsonParse {
  try {
    const value: unknown = JSON.parse(text);
    // The last of two equal keys is what is decided; a reader of the file sees the first as well.
    if (writesAKeyTwice(text, value)) return { ok: false, offset: undefined, message: "a key is written twice in one object: write each key once (the last one would be read, unseen by whoever reviews the first)" };
    return { ok: true, value };
  } catch (error) {
    const raw = error instanceof Error ? error.message : String(error);
    const position = /at position (\d+)/.exec(raw);
    let message = raw.replace(/ (?:in JSON )?at position \d+.*$/s, "").replace(/, ".*" is not valid JSON$/s, "");
    let offset = position ? Number(position[1]) : undefined;
    if (offset === undefined && /Unexpected end of JSON input/.test(raw)) offset = text.length;
    if (message === "") message = "not valid JSON";
    return { ok: false, offset, message: `not valid JSON: ${message}` };
  }
}

/**
 * The character offset where each element of a top-level JSON array starts, for text that
 * `JSON.parse` accepted (an empty list for anything else).
 */
export function arrayElementOffsets(text: string): number[] {
  const offsets: number[] = [];
  let i = skipSpace(text, 0);
  if (text[i] !== "[") return offsets;
  i = skipSpace(text, i + 1);
  if (text[i] === "]") return offsets;
  while (i < text.length) {
    offsets.push(i);
    i = skipSpace(text, skipValue(text, i));
    if (text[i] !== ",") break;
    i = skipSpace(text, i + 1);
  }
  return offsets;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && /\s/.test(text[i]!)) i++;
  return i;
}

/** The offset just after the JSON value that starts at `i`. */
function skipValue(text: string, i: number): number {
  let depth = 0;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
      if (depth === 0) return i + 1;
    } else if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") {
      depth--;
      if (depth === 0) return i + 1;
      if (depth < 0) return i;
    } else if (depth === 0 && (c === "," || /\s/.test(c!))) return i;
  }
  return i;
}
