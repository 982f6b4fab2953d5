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

export class DecisionCache {
  readonly #entries: LruMap<string, Decision>;

  constructor(readonly capacity: number) {
    this.#entries = new LruMap(capacity);
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
}
