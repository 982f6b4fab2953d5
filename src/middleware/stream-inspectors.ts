/**
 * What looks at each event of a governed stream on its way to the caller: the response hook
 * (usage, finish reasons, time to first chunk) and the tool-call decisions.
 * One object per stream with one method per event: this runs for every event, so it dispatches on
 * the event's kind once and does nothing it need not.
 * @module
 */
import type { ToolCallDecider } from "../tools/tool-call-decisions.js";
import { InvokeStreamToolEvents } from "../tools/invoke-model-tool-calls.js";
import type { CallObservation } from "../telemetry/response-observer.js";
import { observeConverseStreamEvent, observeInvokeStreamEvent } from "../telemetry/response-observer.js";
import type { StreamInspector } from "./stream-guard.js";

type Event = Record<string, unknown>;

/** ConverseStream: observed for telemetry, and tool calls decided as they complete. */
export class ConverseStreamInspector implements StreamInspector<Event> {
  constructor(
    private readonly observation: CallObservation,
    private readonly captureContent: boolean,
    private readonly decider: ToolCallDecider | undefined,
  ) {}

  event(event: Event): Error | undefined {
    const delta = event["contentBlockDelta"] as { delta?: Record<string, unknown> } | undefined;
    // Tool input deltas are most of a tool-using stream, and only the tool-call assembler needs them.
    if (delta === undefined || (this.captureContent && delta.delta?.["text"] !== undefined)) {
      observeConverseStreamEvent(this.observation, event, this.captureContent);
    }
    return this.decider?.onEvent(event);
  }

  end(): Error | undefined {
    return this.decider?.onEnd();
  }
}

/**
 * InvokeModelWithResponseStream (and the bidirectional stream's output): observed for telemetry,
 * and, with a decider, each chunk read for the tool calls it carries (in the providers' formats
 * read by {@link InvokeStreamToolEvents}).
 */
export class InvokeStreamInspector implements StreamInspector<Event> {
  private readonly toolEvents: InvokeStreamToolEvents | undefined;

  constructor(
    private readonly observation: CallObservation,
    private readonly decider: ToolCallDecider | undefined,
  ) {
    this.toolEvents = decider && new InvokeStreamToolEvents();
  }

  event(event: Event): Error | undefined {
    try {
      observeInvokeStreamEvent(this.observation, event);
    } catch {
      // Telemetry: a chunk it cannot read is still the caller's chunk (and still decided below).
    }
    if (this.decider === undefined || this.toolEvents === undefined) return undefined;
    // Never throws: a chunk whose tool calls cannot be read comes back as a malformed call, which is denied.
    const { events, calls } = this.toolEvents.translate(event);
    // Every call the chunk carries is decided (and recorded), the error naming the first denied.
    let refusal: Error | undefined = calls.length > 0 ? this.decider.onCalls(calls) : undefined;
    for (const converseEvent of events) {
      const denied = this.decider.onEvent(converseEvent);
      refusal ??= denied;
    }
    return refusal;
  }

  end(): Error | undefined {
    return this.decider?.onEnd();
  }
}
