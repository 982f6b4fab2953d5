/**
 * Limits on the shape of policy text, checked before Cedar's parser sees it. The parser recurses,
 * and text nested deeply enough overflows its stack inside wasm (measured with cedar-wasm 4.13:
 * ~150 nested parentheses, ~125 nested sets or records, ~1,000 chained `if`s, ~4,000 chained
 * operators). The limits are far above what a policy a person can review needs, and far below
 * where the parser fails, so such text is refused with its line instead of crashing the engine.
 * @module
 */
import type { PolicyProblem } from "../errors.js";

/** Brackets — `(`, `[`, `{` — open at once. */
export const MAX_NESTING = 64;
/** Operators (`.`, `&&`, `==`, `+`, `in`, `has`, `if` ...) in one policy. */
export const MAX_OPERATORS = 1_000;
/** `if` expressions in one policy (each nests the rest of its `else`). */
export const MAX_CONDITIONALS = 100;

const WORD_OPERATORS = new Set(["if", "then", "else", "in", "has", "like", "is"]);

/**
 * Characters that change how text is laid out without Cedar seeing it so: the line and paragraph
 * separators and NEL (Cedar ends a `//` comment at a line feed or carriage return only, so a policy
 * after U+2028 in a comment is part of the comment, while an editor shows it on a line of its own),
 * and the bidirectional marks, embeddings, overrides and isolates ("trojan source").
 */
const HIDDEN_LAYOUT = /[\u0085\u2028\u2029\u200E\u200F\u061C\u202A-\u202E\u2066-\u2069]/;

/**
 * The problems of a document's text against the limits (empty when it is within them), each with
 * its line. String literals and comments are skipped; a policy ends at a `;` outside brackets.
 */
export function policyTextProblems(source: string, text: string): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const hidden = HIDDEN_LAYOUT.exec(text);
  if (hidden !== null) {
    const code = (hidden[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0");
    problems.push({
      source,
      line: text.slice(0, hidden.index).split("\n").length,
      message:
        `the text holds U+${code}, which an editor may show as a line break or use to reorder what follows, while Cedar does not: ` +
        "what a reviewer reads could differ from what is decided (a policy hidden in a comment). Remove it",
    });
  }
  let line = 1;
  let depth = 0;
  let operators = 0;
  let conditionals = 0;
  let reported = false;
  const report = (message: string) => {
    if (reported) return;
    reported = true;
    problems.push({ source, line, message });
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === "\n") {
      line++;
      continue;
    }
    if (c === '"') {
      // A string literal: skip to its closing quote (escapes included); newlines still count.
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === "\\") i++;
        if (text[i] === "\n") line++;
      }
      continue;
    }
    if (c === "/" && text[i + 1] === "/") {
      // Cedar ends a comment at a carriage return as well as a line feed.
      while (i + 1 < text.length && text[i + 1] !== "\n" && text[i + 1] !== "\r") i++;
      continue;
    }
    if (c === "(" || c === "[" || c === "{") {
      if (++depth > MAX_NESTING) report(`the policy nests brackets more than ${MAX_NESTING} deep: split the expression`);
      continue;
    }
    if (c === ")" || c === "]" || c === "}") {
      depth = Math.max(0, depth - 1);
      continue;
    }
    if (c === ";" && depth === 0) {
      operators = 0;
      conditionals = 0;
      reported = false;
      continue;
    }
    if (".+-*<>=!&|".includes(c)) {
      // Two-character operators (`&&`, `==`, `<=` ...) count once.
      const next = text[i + 1];
      if (next !== undefined && "=&|".includes(next) && (c === next || next === "=")) i++;
      if (++operators > MAX_OPERATORS) report(`the policy has more than ${MAX_OPERATORS} operators: split it into several policies`);
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let end = i + 1;
      while (end < text.length && /[A-Za-z0-9_]/.test(text[end] as string)) end++;
      const word = text.slice(i, end);
      i = end - 1;
      if (!WORD_OPERATORS.has(word)) continue;
      if (word === "if" && ++conditionals > MAX_CONDITIONALS) report(`the policy has more than ${MAX_CONDITIONALS} if-expressions: split it into several policies`);
      if (++operators > MAX_OPERATORS) report(`the policy has more than ${MAX_OPERATORS} operators: split it into several policies`);
    }
  }
  return problems;
}
