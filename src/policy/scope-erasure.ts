/**
 * A policy's text with its scope written as `(principal, action, resource)`: what a slice sends to
 * wasm once the index has decided the scope matches. The text is cut, not rebuilt from Cedar's
 * JSON form — JSON would round number literals beyond 2^53 and nest long chains of operators past
 * serde's recursion limit — and the cut is checked: the result must parse to the same effect,
 * annotations and conditions with an unconstrained scope, or it is not used.
 * @module
 */
import { wasm as cedar } from "./cedar-wasm.js";

/** The policy text with an unconstrained scope, or undefined when the cut cannot be proven equivalent. */
export function scopeFreeText(text: string, original: { effect: string; conditions: unknown; annotations: unknown }): string | undefined {
  const span = scopeSpan(text);
  if (span === undefined) return undefined;
  const erased = `${text.slice(0, span.open)}(principal, action, resource)${text.slice(span.close + 1)}`;
  let json;
  try {
    json = cedar.policyToJson(erased);
  } catch {
    return undefined;
  }
  if (json.type !== "success") return undefined;
  const all = (scope: unknown) => (scope as { op?: unknown } | undefined)?.op === "All";
  const same =
    json.json.effect === original.effect &&
    all(json.json.principal) &&
    all(json.json.action) &&
    all(json.json.resource) &&
    JSON.stringify(json.json.conditions) === JSON.stringify(original.conditions) &&
    JSON.stringify(json.json.annotations ?? {}) === JSON.stringify(original.annotations ?? {});
  return same ? erased : undefined;
}

/** Where the scope's parentheses are: after the annotations and the effect keyword. */
function scopeSpan(text: string): { open: number; close: number } | undefined {
  let i = skipBlank(text, 0);
  // Annotations: @name or @name("value").
  while (text[i] === "@") {
    i = skipWord(text, i + 1);
    i = skipBlank(text, i);
    if (text[i] === "(") {
      i = skipBlank(text, i + 1);
      if (text[i] !== '"') return undefined;
      i = skipString(text, i);
      i = skipBlank(text, i);
      if (text[i] !== ")") return undefined;
      i = skipBlank(text, i + 1);
    }
  }
  const effectEnd = skipWord(text, i);
  const effect = text.slice(i, effectEnd);
  if (effect !== "permit" && effect !== "forbid") return undefined;
  const open = skipBlank(text, effectEnd);
  if (text[open] !== "(") return undefined;
  let depth = 0;
  for (let j = open; j < text.length; j++) {
    const c = text[j];
    if (c === '"') {
      j = skipString(text, j) - 1;
    } else if (c === "/" && text[j + 1] === "/") {
      j = endOfComment(text, j) - 1;
    } else if (c === "(" || c === "[") {
      depth++;
    } else if (c === ")" || c === "]") {
      depth--;
      if (depth === 0) return c === ")" ? { open, close: j } : undefined;
    }
  }
  return undefined;
}

/** Past whitespace and `//` comments (which end at a line feed or a carriage return, as Cedar's do). */
function skipBlank(text: string, from: number): number {
  let i = from;
  for (;;) {
    while (i < text.length && /\s/.test(text[i] as string)) i++;
    if (text[i] === "/" && text[i + 1] === "/") i = endOfComment(text, i);
    else return i;
  }
}

function endOfComment(text: string, from: number): number {
  let i = from;
  while (i < text.length && text[i] !== "\n" && text[i] !== "\r") i++;
  return i;
}

function skipWord(text: string, from: number): number {
  let i = from;
  while (i < text.length && /[A-Za-z0-9_]/.test(text[i] as string)) i++;
  return i;
}

/** Past a string literal starting at `from` (its opening quote), escapes included. */
function skipString(text: string, from: number): number {
  let i = from + 1;
  while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
  return i + 1;
}
