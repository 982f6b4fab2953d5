/**
 * Where each tool call came from: the `chat` span whose response asked for it and the decision
 * made on it, by workload and tool call id. `governTool` reads it to link its `execute_tool` span
 * to that `chat` span, and refuses to run a call that was denied.
 *
 * Bounded (10,000 calls), and what it forgets is chosen so that no workload can make it forget
 * another's denials: when full, it forgets from the workload that holds the most calls (within
 * one), an allowed call before a denied one, the least recently used first. A workload's denied
 * call is forgotten only once that workload itself holds the most calls and has no allowed ones
 * left to forget.
 * @module
 */
import type { SpanContext } from "@opentelemetry/api";
import type { Decision } from "../policy/decision.js";

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

/** One workload's calls, each map in least-recently-used-first order. */
class WorkloadCalls {
  constructor(readonly workloadId: string | undefined) {}
  readonly allowed = new Map<string, ToolCallOrigin>();
  readonly denied = new Map<string, ToolCallOrigin>();

  get size(): number {
    return this.allowed.size + this.denied.size;
  }
}

/**
 * Keyed by the workload and the model's id for the call: an id says nothing across workloads (a
 * model may repeat one, another workload's model may be steered to), so one workload's call is never
 * found, nor overwritten, nor forgotten, because of another's.
 */
export class ToolCallRegistry {
  readonly #workloads = new Map<string | undefined, WorkloadCalls>();
  #size = 0;
  /** A workload holding the most calls, or one less: sizes change by one at a time, and it is re-picked when another grows past it. */
  #largest: WorkloadCalls | undefined;

  constructor(readonly capacity = CAPACITY) {}

  /**
   * Remembers a call. A denial is never replaced by an allow under the same id: a later response
   * reusing the id must not make the denied call runnable.
   */
  remember(workloadId: string | undefined, toolUseId: string, origin: ToolCallOrigin): void {
    let calls = this.#workloads.get(workloadId);
    if (calls === undefined) calls = new WorkloadCalls(workloadId);
    else this.#workloads.delete(workloadId);
    // Kept in least-recently-active-first order.
    this.#workloads.set(workloadId, calls);
    const denied = origin.decision.effect === "deny";
    if (calls.denied.has(toolUseId) && !denied) return;
    if (calls.allowed.delete(toolUseId) || calls.denied.delete(toolUseId)) this.#size--;
    (denied ? calls.denied : calls.allowed).set(toolUseId, origin);
    this.#size++;
    if (this.#largest === undefined || calls.size > this.#largest.size) this.#largest = calls;
    while (this.#size > this.capacity) this.#forgetOne(calls);
  }

  origin(workloadId: string | undefined, toolUseId: string): ToolCallOrigin | undefined {
    const calls = this.#workloads.get(workloadId);
    if (calls === undefined) return undefined;
    for (const map of [calls.denied, calls.allowed]) {
      const origin = map.get(toolUseId);
      if (origin !== undefined) {
        map.delete(toolUseId);
        map.set(toolUseId, origin);
        return origin;
      }
    }
    return undefined;
  }

  /** Forgets one call of the largest workload; never the call just remembered in `inserted`. */
  #forgetOne(inserted: WorkloadCalls): void {
    let victim = this.#largest!;
    if (victim === inserted && victim.size <= 1) {
      // Every workload holds one call: the least recently active one gives way (the inserting one is the most recent).
      victim = this.#workloads.values().next().value!;
    }
    const map = victim.allowed.size > 0 ? victim.allowed : victim.denied;
    map.delete(map.keys().next().value!);
    this.#size--;
    if (victim.size === 0) {
      this.#workloads.delete(victim.workloadId);
      this.#largest = undefined;
      for (const calls of this.#workloads.values()) if (this.#largest === undefined || calls.size > this.#largest.size) this.#largest = calls;
    }
  }
}
