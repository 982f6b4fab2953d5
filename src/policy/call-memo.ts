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
import { keyLength, MAX_MEMO_CHARACTERS } from "./decision-cache.js";
import { buildCedarRequest, callFactsKey, type CallFacts } from "./request-builder.js";

interface FrontMemo {
  /** Fact key → the engine's memo key. */
  readonly keys: LruMap<string, string>;
  hits: number;
  /** Lookups and hits in the current window of {@link WINDOW} lookups. */
  windowLookups: number;
  windowHits: number;
  /** Calls still to be decided without the front (it was missing nearly every call). */
  paused: number;
  /** Calls decided without the front, in all (tests). */
  bypassed: number;
}

// A call the front has never seen costs its key and an entry that lives until evicted (~10 µs in the
// SDK's pipeline): where nearly every call is new (a new maxTokens or label each time), it costs
// more than it saves. So the front watches its hits over windows of WINDOW lookups; under one in
// eight, it stands aside for PAUSE calls, then looks again — a workload that turns repetitive
// finds it back within PAUSE + WINDOW calls. Standing aside changes no decision: the engine decides.
const WINDOW = 256;
const PAUSE = 8 * WINDOW;

// One per engine: a new policy set (a new engine) starts empty, and a dropped engine takes its front with it.
const fronts = new WeakMap<CedarEngine, FrontMemo>();

/**
 * The decision for a call's facts: from the engine's memo when the same facts were decided
 * before and the engine still keeps their decision, else decided by the engine. Never throws
 * (as `engine.authorize`).
 */
export function authorizeFacts(engine: CedarEngine, call: CallFacts): Decision {
  const front = engine.memoCapacity > 0 ? frontOf(engine) : undefined;
  let factsKey: string | undefined;
  if (front !== undefined && front.paused > 0) {
    front.paused--;
    front.bypassed++;
  } else if (front !== undefined) {
    factsKey = callFactsKey(call);
    if (factsKey !== undefined) {
      const memoKey = front.keys.get(factsKey);
      const kept = memoKey === undefined ? undefined : engine.memoized(memoKey);
      countLookup(front, kept !== undefined);
      if (kept !== undefined) return kept;
    }
  }
  const { decision, memoKey } = engine.authorizeKept(buildCedarRequest(call));
  if (factsKey !== undefined && memoKey !== undefined) front!.keys.set(factsKey, memoKey);
  return decision;
}

function frontOf(engine: CedarEngine): FrontMemo {
  let front = fronts.get(engine);
  if (front === undefined) {
    front = { keys: new LruMap<string, string>(engine.memoCapacity, MAX_MEMO_CHARACTERS, keyLength), hits: 0, windowLookups: 0, windowHits: 0, paused: 0, bypassed: 0 };
    fronts.set(engine, front);
  }
  return front;
}

function countLookup(front: FrontMemo, hit: boolean): void {
  if (hit) {
    front.hits++;
    front.windowHits++;
  }
  if (++front.windowLookups < WINDOW) return;
  if (front.windowHits * 8 < WINDOW) front.paused = PAUSE;
  front.windowLookups = 0;
  front.windowHits = 0;
}

/** @internal What the front memo of `engine` holds, how many calls it answered, how many were decided without it (tests). */
export function frontMemoStats(engine: CedarEngine): { readonly size: number; readonly hits: number; readonly bypassed: number } {
  const front = fronts.get(engine);
  return { size: front?.keys.size ?? 0, hits: front?.hits ?? 0, bypassed: front?.bypassed ?? 0 };
}
