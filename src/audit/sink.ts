/**
 * Where decision records go: the {@link DecisionSink} interface, shared by the JSON Lines file
 * sink, the OpenTelemetry logs sink and {@link callbackSink} (today's `onDecision` listener).
 * @module
 */
import { DecisionSinkError, EvidenceUnavailableError } from "../errors.js";
import { unevaluatedDenial } from "../policy/decision.js";
export { DecisionSinkError } from "../errors.js";
import type { DecisionListener, DecisionRecord } from "./decision-record.js";

/**
 * A destination for decision records.
 *
 * The contract is what lets the governed call path hand every record to every sink without a
 * second thought: `write` never throws and never waits (anything slow happens later, off the call
 * path), and a sink that cannot deliver says so in `failure` instead of failing the call. A
 * governance that must not run without evidence ("fail closed") denies calls while any sink's
 * `failure` is set.
 *
 * @example
 * ```ts
 * const memory: DecisionRecord[] = [];
 * const sink: DecisionSink = {
 *   name: "memory",
 *   failure: undefined,
 *   write: (record) => void memory.push(record),
 *   flush: async () => {},
 *   close: async () => {},
 * };
 * ```
 */
export interface DecisionSink {
  /** A short name for messages and warnings, e.g. `"jsonl"`. */
  readonly name: string;
  /**
   * Takes one record. Never throws and never blocks the call path: a sink that writes somewhere
   * slow queues the record and writes it later. Records are immutable (every field is readonly,
   * and bedrock-warden never changes one it has delivered): a sink may keep the reference and
   * serialize it later, and nobody may change a record once it has been written to a sink.
   */
  write(record: DecisionRecord): void;
  /** Resolves once every record written before the call has been delivered; rejects with the failure when it could not be. */
  flush(): Promise<void>;
  /** Flushes, then releases what the sink holds (files, timers, exit hooks). Later writes are dropped (and counted, where the sink counts). */
  close(): Promise<void>;
  /**
   * Set while the sink is failing (the disk is full, the file is unwritable, the listener
   * throws), with an error that says what and what to do; `undefined` again once it recovers.
   */
  readonly failure: Error | undefined;
}

/**
 * Options of {@link callbackSink}.
 *
 * @example
 * ```ts
 * const options: CallbackSinkOptions = { name: "siem-forwarder" };
 * ```
 */
export interface CallbackSinkOptions {
  /** The sink's name in warnings (default `"callback"`). */
  readonly name?: string;
}

/**
 * Wraps a listener as a sink: the listener is called with each record; if it throws (or the
 * promise an async listener returns rejects), the call is not changed, the failure is reported as
 * a process warning, and `failure` holds it until the listener next succeeds — so a fail-closed
 * governance stops calls while the listener keeps failing. `flush()` waits for pending async
 * deliveries.
 *
 * @example
 * ```ts
 * const sink = callbackSink((record) => auditQueue.push(record));
 * sink.write(record);
 * ```
 */
export function callbackSink(listener: DecisionListener, options: CallbackSinkOptions = {}): DecisionSink {
  if (typeof listener !== "function") {
    // The sink contract says write never throws: refuse a non-function now rather than on every record.
    throw new TypeError("callbackSink(listener): listener must be a function (record) => void");
  }
  const name = options.name ?? "callback";
  let failure: Error | undefined;
  let closed = false;
  const pending = new Set<Promise<void>>();
  return {
    name,
    get failure() {
      return failure;
    },
    write(record: DecisionRecord): void {
      if (closed) return;
      const failed = (error: unknown) => {
        const message = (error as Error | undefined)?.message ?? String(error);
        failure = new DecisionSinkError(name, `the ${name} decision listener failed: ${message}`, { cause: error });
        // The call has already been decided; losing the listener's failure silently would hide a broken audit trail.
        process.emitWarning(`bedrock-warden: decision sink ${name}: the listener failed: ${message}`, "BedrockWardenWarning");
      };
      try {
        const result: unknown = listener(record);
        // An async listener (a forwarder) fails when its promise does: it marks the sink failing, and
        // never becomes an unhandled rejection that would end the process.
        if (typeof (result as PromiseLike<unknown> | undefined)?.then === "function") {
          const delivery = Promise.resolve(result as PromiseLike<unknown>).then(
            () => {
              failure = undefined;
            },
            failed,
          );
          pending.add(delivery);
          void delivery.finally(() => pending.delete(delivery));
        } else {
          failure = undefined;
        }
      } catch (error) {
        failed(error);
      }
    },
    async flush(): Promise<void> {
      await Promise.all([...pending]);
      if (failure) throw failure;
    },
    async close(): Promise<void> {
      closed = true;
    },
  };
}

/**
 * The denial of a call (or tool execution) while a decision sink is failing and failing sinks deny
 * (`onSinkFailure: "deny"`): a call whose evidence cannot be kept is not made.
 *
 * @example
 * ```ts
 * const failing = governance.failingSink();
 * if (failing) throw evidenceUnavailableDenial({ principal, action, resource, policySetVersion }, failing);
 * ```
 */
export function evidenceUnavailableDenial(
  parts: { readonly principal: string; readonly action: string; readonly resource: string; readonly policySetVersion: string },
  sink: { readonly name: string; readonly failure: Error },
): EvidenceUnavailableError {
  const decision = unevaluatedDenial({
    ...parts,
    reason: `the decision sink ${sink.name} is failing, and calls and tools are denied until it recovers (onSinkFailure "deny"): ${sink.failure.message}`,
    errors: [`sink ${sink.name}: ${sink.failure.name}: ${sink.failure.message}`],
  });
  return new EvidenceUnavailableError(decision);
}
