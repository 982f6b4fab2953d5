/**
 * The front of the decision memo. A call whose facts were seen before under the same engine goes
 * straight to the decision the engine keeps for it: its Cedar request is not built, checked,
 * sliced, pruned and keyed again — most of what a memoized call cost in the SDK's pipeline.
 *
 * Exact, because calls with equal fact keys get equal requests ({@link callFactsKey}); and the
 * engine still owns every decision: the front keeps only the engine's own memo key, so a decision
 * the engine no longer keeps (evicted, or the engine lost) is decided again, never replayed from here.
 * @module
 */
import type { CedarEngine } from "./cedar-engine.js";
import type { Decision } from "./decision.js";
import { LruMap } from "./lru-map.js";
import { buildCedarRequest, callFactsKey, type CallFacts } from "./request-builder.js";

interface FrontMemo {
  /** Fact key → the engine's memo key. */
  readonly keys: LruMap<string, string>;
  hits: number;
}

// One per engine: a new policy set (a new engine) starts empty, and a dropped engine takes its front with it.
const fronts = new WeakMap<CedarEngine, FrontMemo>();

/**
 * The decision for a call's facts: from the engine's memo when the same facts were decided
 * before and the engine still keeps their decision, else decided by the engine. Never throws
 * (as `engine.authorize`).
 */
export function authorizeFacts(engine: CedarEngine, call: CallFacts): Decision {
  const factsKey = engine.memoCapacity > 0 ? callFactsKey(call) : undefined;
  let front: FrontMemo | undefined;
  if (factsKey !== undefined) {
    front = fronts.get(engine);
    if (front === undefined) fronts.set(engine, (front = { keys: new LruMap(engine.memoCapacity), hits: 0 }));
    const memoKey = front.keys.get(factsKey);
    const kept = memoKey === undefined ? undefined : engine.memoized(memoKey);
    if (kept !== undefined) {
      front.hits++;
      return kept;
    }
  }
  const { decision, memoKey } = engine.authorizeKept(buildCedarRequest(call));
  if (front !== undefined && memoKey !== undefined) front.keys.set(factsKey!, memoKey);
  return decision;
}

/** @internal What the front memo of `engine` holds, and how many calls it answered (tests). */
export function frontMemoStats(engine: CedarEngine): { readonly size: number; readonly hits: number } {
  const front = fronts.get(engine);
  return { size: front?.keys.size ?? 0, hits: front?.hits ?? 0 };
}
