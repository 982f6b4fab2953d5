/**
 * Wraps a response stream so that each event reaches the caller at once, is observed on the way,
 * and the call ends exactly once: when the stream completes, fails, or is abandoned — by an early
 * `break`, or by never being read at all. An abandoned stream's HTTP connection is closed, because
 * otherwise the model keeps generating (and billing) until it is done.
 * @module
 */
import type { GovernedCall } from "./governed-call.js";

// A stream dropped without being read (or half-read and dropped) never runs its `finally`: end
// the call when the garbage collector reclaims it.
const unread = new FinalizationRegistry<GovernedCall>((call) => abandon(call));

function abandon(call: GovernedCall): void {
  if (call.finished) return;
  call.closeResponse();
  if (call.observation.stream) call.observation.stream.outcome = "abandoned";
  call.finish("abandoned");
}

/**
 * Returns an async iterable that yields `source`'s events as they come, calling `onEvent` for
 * each before yielding it.
 */
export function guardStream<T>(source: AsyncIterable<T>, call: GovernedCall, onEvent: (event: T) => void): AsyncIterable<T> {
  const stream = (call.observation.stream = { events: 0 } as NonNullable<GovernedCall["observation"]["stream"]>);
  const observed = (async function* () {
    const iterator = source[Symbol.asyncIterator]();
    let done = false;
    try {
      for (;;) {
        let next: IteratorResult<T>;
        try {
          next = await iterator.next();
        } catch (error) {
          done = true;
          stream.outcome = "failed";
          call.finish("failed", error);
          throw error;
        }
        if (next.done) break;
        if (stream.events++ === 0) stream.firstChunkSeconds = call.elapsedMs() / 1000;
        try {
          onEvent(next.value);
        } catch {
          // Observation must never break the caller's stream.
        }
        yield next.value;
      }
      done = true;
      stream.outcome = "completed";
      call.finish("completed");
    } finally {
      if (!done) {
        // The caller stopped reading: close the connection first, so that the SDK's iterator has
        // nothing left to wait for.
        abandon(call);
        void Promise.resolve(iterator.return?.()).catch(() => undefined);
      }
      unread.unregister(call);
    }
  })();
  unread.register(observed, call, call);
  return observed;
}
