/**
 * Where each tool call came from: the `chat` span whose response asked for it and the decision
 * made on it, by workload and tool call id. `governTool` reads it to link its `execute_tool` span
 * to that `chat` span, and refuses to run a call that was denied.
 *
 * Bounded (10,000 calls per governance), and what it forgets is chosen so that no workload's
 * traffic can make it forget another's calls below an equal share: when full, it forgets from a
 * workload holding the most calls (one with allowed calls before one holding only denials), an
 * allowed call before a denied one, the least recently used first. A workload's calls are
 * forgotten only while it holds as many as any workload does.
 * @module
 */
import type { SpanContext } from "@opentelemetry/api";
import type { Decision } from "../policy/decision.js";
import { LruMap } from "../policy/lru-map.js";

/** What is remembered of a tool call the model asked for. */
export interface ToolCallOrigin {
  readonly name: string;
  /** The span of the model call whose response asked for this tool call. */
  readonly chatSpan: SpanContext;
  /** The decision made when the model asked for it. */
  readonly decision: Decision;
  /** The region of that model call. */
  readonly region: string;
}

const CAPACITY = 10_000;

/** One workload's calls, by id, each map least recently used first. */
class WorkloadCalls {
  readonly allowed = new LruMap<string, ToolCallOrigin>(Number.POSITIVE_INFINITY);
  readonly denied = new LruMap<string, ToolCallOrigin>(Number.POSITIVE_INFINITY);
  /** The bucket it is in: its size then, and whether it held an allowed call. */
  placed: { readonly size: number; readonly withAllowed: boolean } | undefined;

  constructor(readonly workloadId: string | undefined) {}

  get size(): number {
    return this.allowed.size + this.denied.size;
  }
}

/**
 * Keyed by the workload and the model's id for the call: an id says nothing across workloads (a
 * model may repeat one, another workload's model may be steered to), so one workload's call is never
 * found, nor overwritten, nor forgotten, because of another's.
 *
 * @example
 * ```ts
 * const registry = new ToolCallRegistry();
 * registry.remember(identity.id, "tooluse_1", { name: "issue_refund", chatSpan, decision, region: "us-east-1" });
 * if (registry.origin(identity.id, "tooluse_1")?.decision.effect === "deny") throw new Error("denied when asked for");
 * ```
 */
export class ToolCallRegistry {
  readonly #workloads = new Map<string | undefined, WorkloadCalls>();
  /**
   * The workloads holding n calls (n ≥ 1), by n, least recently placed first: those holding an
   * allowed call apart from those holding only denials, which give way last.
   */
  readonly #withAllowed = new Map<number, LruMap<WorkloadCalls, true>>();
  readonly #deniedOnly = new Map<number, LruMap<WorkloadCalls, true>>();
  /** The most calls a workload holds: sizes change by one at a time, so it moves by one too. */
  #largest = 0;
  #size = 0;

  /** @param capacity the most calls remembered (10,000 by default). */
  constructor(readonly capacity = CAPACITY) {}

  /**
   * Remembers a call. A denial is never replaced by an allow under the same id: a later response
   * reusing the id must not make the denied call runnable.
   */
  remember(workloadId: string | undefined, toolUseId: string, origin: ToolCallOrigin): void {
    let calls = this.#workloads.get(workloadId);
    if (calls === undefined) {
      calls = new WorkloadCalls(workloadId);
      this.#workloads.set(workloadId, calls);
    }
    const denied = origin.decision.effect === "deny";
    if (calls.denied.has(toolUseId) && !denied) return;
    const before = calls.size;
    calls.allowed.delete(toolUseId);
    calls.denied.delete(toolUseId);
    (denied ? calls.denied : calls.allowed).set(toolUseId, origin);
    this.#size += calls.size - before;
    this.#place(calls);
    while (this.#size > this.capacity) this.#forgetOne();
  }

  /** The call's origin, or undefined when it is not (or no longer) remembered. */
  origin(workloadId: string | undefined, toolUseId: string): ToolCallOrigin | undefined {
    const calls = this.#workloads.get(workloadId);
    return calls?.denied.get(toolUseId) ?? calls?.allowed.get(toolUseId);
  }

  /**
   * Forgets the least recently used call of a workload holding the most calls — one holding an
   * allowed call before one holding only denials, and in it an allowed call while it has any. The
   * workload remembering a call is chosen only when no other holds as many (it was just placed
   * last); if its only allowed call is the one being remembered, that call is forgotten rather than
   * a denial (`governTool` then decides it on its execution policy alone, unlinked).
   */
  #forgetOne(): void {
    const victim = (this.#withAllowed.get(this.#largest) ?? this.#deniedOnly.get(this.#largest))!.oldestKey()!;
    const map = victim.allowed.size > 0 ? victim.allowed : victim.denied;
    map.delete(map.oldestKey()!);
    this.#size--;
    this.#place(victim);
  }

  /** Moves a workload to the bucket of its size now (none when it holds nothing: it is dropped). */
  #place(calls: WorkloadCalls): void {
    const size = calls.size;
    const withAllowed = calls.allowed.size > 0;
    if (calls.placed !== undefined) {
      const buckets = calls.placed.withAllowed ? this.#withAllowed : this.#deniedOnly;
      const bucket = buckets.get(calls.placed.size)!;
      bucket.delete(calls);
      if (bucket.size === 0) buckets.delete(calls.placed.size);
    }
    if (size === 0) {
      calls.placed = undefined;
      this.#workloads.delete(calls.workloadId);
    } else {
      const buckets = withAllowed ? this.#withAllowed : this.#deniedOnly;
      let bucket = buckets.get(size);
      if (bucket === undefined) buckets.set(size, (bucket = new LruMap(Number.POSITIVE_INFINITY)));
      bucket.set(calls, true);
      calls.placed = { size, withAllowed };
    }
    // Sizes change by one at a time: the largest moves by one at most.
    if (size > this.#largest) this.#largest = size;
    while (this.#largest > 0 && !this.#withAllowed.has(this.#largest) && !this.#deniedOnly.has(this.#largest)) this.#largest--;
  }
}
