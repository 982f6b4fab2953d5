/**
 * Where each tool call came from: the `chat` span whose response asked for it and the decision
 * made on it, by tool call id. `governTool` reads it to link its `execute_tool` span to that
 * `chat` span. Bounded: the oldest entries are forgotten first.
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

export class ToolCallRegistry {
  readonly #origins = new Map<string, ToolCallOrigin>();

  remember(toolUseId: string, origin: ToolCallOrigin): void {
    this.#origins.delete(toolUseId);
    this.#origins.set(toolUseId, origin);
    if (this.#origins.size > CAPACITY) this.#origins.delete(this.#origins.keys().next().value as string);
  }

  origin(toolUseId: string): ToolCallOrigin | undefined {
    return this.#origins.get(toolUseId);
  }
}
