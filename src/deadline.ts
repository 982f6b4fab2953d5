/**
 * Waiting with a bound: a store, a key server or a policy store that never answers must fail the
 * call or the sync that waits on it, never hold it for good.
 * @module
 */

/**
 * `pending`, or the error `onTimeout` makes once `ms` have passed (whatever `pending` does later is
 * ignored; the timer is cleared as soon as either settles).
 *
 * @example
 * ```ts
 * const usage = await withDeadline(store.admit(id, now), 5_000, () => new Error("the store did not answer"));
 * ```
 */
export function withDeadline<T>(pending: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([pending, timeout]).finally(() => clearTimeout(timer));
}
