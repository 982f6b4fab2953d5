/**
 * Where each tool call came from: the `chat` span whose response asked for it and the decision
 * made on it, by workload and tool call id. `governTool` reads it to link its `execute_tool` span
 * to that `chat` span, and refuses to run a call that was denied. Bounded: the least recently used
 * entries are forgotten first.
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

/**
 * Keyed by the workload and the model's id for the call: an id says nothing across workloads (a
 * model may repeat one, another workload's model may be steered to), so one workload's call is never
 * found, nor overwritten, under another's.
 */
export class ToolCallRegistry {
  readonly #origins = new LruMap<string, ToolCallOrigin>(CAPACITY);

  remember(workloadId: string | undefined, toolUseId: string, origin: ToolCallOrigin): void {
    this.#origins.set(keyOf(workloadId, toolUseId), origin);
  }

  origin(workloadId: string | undefined, toolUseId: string): ToolCallOrigin | undefined {
    return this.#origins.get(keyOf(workloadId, toolUseId));
  }
}

function keyOf(workloadId: string | undefined, toolUseId: string): string {
  return JSON.stringify([workloadId ?? null, toolUseId]);
}
