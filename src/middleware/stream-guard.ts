/**
 * Wraps a response stream so that each event reaches the caller at once, is observed on the way,
 * and the call ends exactly once: when the stream completes, fails, or is abandoned — by an early
 * `break`, a `return()` or `throw()` on the iterator (even before the first event), or by never
 * being read at all. An abandoned stream's HTTP connection is closed, because otherwise the model
 * keeps generating (and billing) until it is done.
 * @module
 */
import type { GovernedCall } from "./governed-call.js";

// A stream dropped without being read (or half-read and dropped) is never told so: end the call
// when the garbage collector reclaims it — after settling what its inspector holds open (a tool
// call whose input was already delivered is decided and recorded, as on an early `break`). The
// held value must not reach the stream itself, or it would never be reclaimed.
const unread = new FinalizationRegistry<{ readonly call: GovernedCall; readonly inspector: StreamInspector<unknown> }>(({ call, inspector }) => {
  if (!call.finished) settle(inspector);
  abandon(call);
});

function settle(inspector: StreamInspector<unknown>): void {
  try {
    inspector.end();
  } catch {
    // An inspector that throws (a bug, never a policy) must not break the caller's stream.
  }
}

function abandon(call: GovernedCall): void {
  if (call.finished) return;
  call.closeResponse();
  if (call.observation.stream) call.observation.stream.outcome = "abandoned";
  call.finish("abandoned");
}

/**
 * A hand-written async iterator rather than an async generator: a generator that has not started
 * ignores `return()` and `throw()` (its `finally` never runs), which would leave a call, its span
 * and its connection open.
 */
class GuardedStream<T> implements AsyncIterableIterator<T> {
  readonly #call: GovernedCall;
  readonly #source: AsyncIterator<T>;
  readonly #inspector: StreamInspector<T>;
  readonly #stream: NonNullable<GovernedCall["observation"]["stream"]>;
  #ended = false;

  constructor(source: AsyncIterable<T>, call: GovernedCall, inspector: StreamInspector<T>) {
    this.#call = call;
    this.#source = source[Symbol.asyncIterator]();
    this.#inspector = inspector;
    this.#stream = call.observation.stream = { events: 0 };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Not an `async` method: an async method adds two promises to every event (its own, and one for
   * its `await` while async hooks are on, as AsyncLocalStorage turns them on), each run through
   * those hooks; chaining on the source's promise adds one.
   */
  next(): Promise<IteratorResult<T>> {
    if (this.#ended) return Promise.resolve({ done: true, value: undefined });
    let pending: Promise<IteratorResult<T>>;
    try {
      // Resolved in case a source returns a non-promise; a native promise is returned as is.
      pending = Promise.resolve(this.#source.next());
    } catch (error) {
      return Promise.reject(this.#fail(error));
    }
    return pending.then(this.#onResult, this.#onFailure);
  }

  // Made once per stream rather than per event.
  readonly #onResult = (result: IteratorResult<T>): IteratorResult<T> => {
    if (this.#ended) return { done: true, value: undefined }; // returned while this read was pending
    if (result.done) {
      let refusal: Error | undefined;
      try {
        refusal = this.#inspector.end();
      } catch {
        // An inspector that throws (a bug, never a policy) must not break the caller's stream.
      }
      if (refusal) throw this.#refuse(refusal);
      this.#end();
      this.#stream.outcome = "completed";
      this.#call.finish("completed");
      return result;
    }
    if (this.#stream.events++ === 0) this.#stream.firstChunkSeconds = this.#call.elapsedMs() / 1000;
    let refusal: Error | undefined;
    try {
      refusal = this.#inspector.event(result.value);
    } catch {
      // An inspector that throws (a bug, never a policy) must not break the caller's stream.
    }
    if (refusal) throw this.#refuse(refusal);
    return result;
  };

  readonly #onFailure = (error: unknown): never => {
    throw this.#fail(error);
  };

  /** The source failed: the call ends failed, with its error. */
  #fail(error: unknown): unknown {
    this.#end();
    this.#settleInspector();
    this.#stream.outcome = "failed";
    this.#call.finish("failed", error);
    return error;
  }

  /** A policy stops the stream at this event: the event is withheld, the connection closed, the call ended. */
  #refuse(error: Error): Error {
    this.#end();
    this.#settleInspector();
    this.#call.closeResponse();
    this.#stream.outcome = "failed";
    this.#call.finish("failed", error);
    void Promise.resolve()
      .then(() => this.#source.return?.())
      .catch(() => undefined);
    return error;
  }

  async return(value?: unknown): Promise<IteratorResult<T>> {
    this.#abandon();
    return { done: true, value: value as T };
  }

  async throw(error?: unknown): Promise<IteratorResult<T>> {
    this.#abandon();
    throw error;
  }

  #abandon(): void {
    if (this.#ended) return;
    this.#end();
    this.#settleInspector();
    // Close the connection first, so that the SDK's iterator has nothing left to wait for.
    abandon(this.#call);
    void Promise.resolve()
      .then(() => this.#source.return?.())
      .catch(() => undefined);
  }

  /**
   * The stream stops early: whatever the inspector still holds open (a tool call whose input was
   * partly delivered) is settled now — decided and recorded — while the call's span is still open.
   */
  #settleInspector(): void {
    settle(this.#inspector);
  }

  #end(): void {
    this.#ended = true;
    unread.unregister(this.#call);
  }
}

/** Looks at each event on its way (telemetry), and decides whether the stream may go on (policy). */
export interface StreamInspector<T> {
  /** Sees an event before the caller does; returns the error to raise instead of delivering it, if any. */
  event(event: T): Error | undefined;
  /** At the end of the stream; returns the error to raise instead of ending normally, if any. */
  end(): Error | undefined;
}

/**
 * Returns an async iterable that yields `source`'s events as they come, each shown to `inspector`
 * first, which may stop the stream at an event.
 */
export function guardStream<T>(source: AsyncIterable<T>, call: GovernedCall, inspector: StreamInspector<T>): AsyncIterable<T> {
  const guarded = new GuardedStream(source, call, inspector);
  unread.register(guarded, { call, inspector: inspector as StreamInspector<unknown> }, call);
  return guarded;
}
