/**
 * Decision memoization: an identical request under the same policy set gets the same decision
 * without crossing into wasm. Exact, because a Cedar decision depends only on the policy set and
 * the request (principal, action, resource, context, entities), all of which make up the key — a
 * context value the policies only test with literals by the outcomes of those tests
 * (see `context-comparisons.ts`), which is all of it a decision can depend on.
 * Bounded (least recently used entries are evicted) and per engine, so a new policy set starts empty.
 * @module
 */
import type { Decision } from "./decision.js";
import { LruMap } from "./lru-map.js";

/** Requests whose key is longer than this are not cached (huge tool lists, long labels). */
const MAX_KEY_LENGTH = 4096;
/**
 * The characters of all the keys a memo keeps, at most (~4–8 MB): with keys up to
 * {@link MAX_KEY_LENGTH} long, 10,000 entries could otherwise hold 40–80 MB, and tool inputs — a
 * model's output, which a prompt injection steers — are in the key. Typical keys (150–400
 * characters) fit 10,000 entries well within it; long ones evict the least recently used sooner.
 */
export const MAX_MEMO_CHARACTERS = 4 * 1024 * 1024;

export class DecisionCache {
  readonly #entries: LruMap<string, Decision>;

  constructor(readonly capacity: number) {
    this.#entries = new LruMap<string, Decision>(capacity, MAX_MEMO_CHARACTERS, keyLength);
  }

  /** The key itself (the serialized, pruned request), or undefined when it is not worth caching. */
  key(serializedRequest: string): string | undefined {
    return this.capacity > 0 && serializedRequest.length <= MAX_KEY_LENGTH ? serializedRequest : undefined;
  }

  get(key: string): Decision | undefined {
    return this.#entries.get(key);
  }

  set(key: string, decision: Decision): void {
    this.#entries.set(key, decision);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The characters of the keys kept. */
  get characters(): number {
    return this.#entries.weight;
  }
}

/** @internal A memo entry's weight: the length of its key, and of its value when that is a string (the front's). */
export const keyLength = (key: string, value: unknown): number => key.length + (typeof value === "string" ? value.length : 0);
