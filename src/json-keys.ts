/**
 * Whether JSON text writes an object key twice. `JSON.parse` keeps the last value; another parser
 * (the provider's, an executor's) may keep the first or refuse the text, so text a decision was made
 * on would be read otherwise where it is acted on. Counted rather than collected: the text writes
 * more keys than the parsed value holds exactly when some object wrote one twice.
 * @module
 */

/**
 * How many object keys JSON text writes: the strings followed by a colon. `text` must be valid
 * JSON (it parsed).
 *
 * @example
 * ```ts
 * keysWritten('{"a":1,"b":{"a":2}}'); // 3
 * ```
 */
export function keysWritten(text: string): number {
  let keys = 0;
  let open = text.indexOf('"');
  while (open !== -1) {
    let close = text.indexOf('"', open + 1);
    for (;;) {
      // A quote after an odd number of backslashes is escaped: the string goes on.
      let before = close - 1;
      while (text.charCodeAt(before) === 0x5c) before--;
      if ((close - 1 - before) % 2 === 0) break;
      close = text.indexOf('"', close + 1);
    }
    let next = close + 1;
    let c = text.charCodeAt(next);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(++next);
    if (c === 0x3a) keys++;
    open = text.indexOf('"', next);
  }
  return keys;
}

/**
 * How many object keys a parsed JSON value holds, without recursion.
 *
 * @example
 * ```ts
 * keysHeld(JSON.parse('{"a":1,"a":2}')); // 1, where keysWritten says 2
 * ```
 */
export function keysHeld(value: unknown): number {
  let keys = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item !== "object" || item === null) continue;
    if (Array.isArray(item)) {
      for (const element of item) pending.push(element);
      continue;
    }
    for (const key of Object.keys(item)) {
      keys++;
      pending.push((item as Record<string, unknown>)[key]);
    }
  }
  return keys;
}

/**
 * Whether `text` writes an object key twice: it writes more keys than `parsed`, what `JSON.parse`
 * made of it, holds.
 *
 * @example
 * ```ts
 * const text = '{"tools":["wire_money"],"tools":[]}';
 * writesAKeyTwice(text, JSON.parse(text)); // true
 * ```
 */
export function writesAKeyTwice(text: string, parsed: unknown): boolean {
  return keysWritten(text) !== keysHeld(parsed);
}
