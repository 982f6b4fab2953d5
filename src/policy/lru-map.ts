/**
 * A map bounded to `capacity` entries that evicts the least recently used: the decision memo, its
 * front and the slices' scope cache each keep one.
 *
 * A Map for the lookups and a doubly linked list for the order, so that every operation is O(1).
 * Not a Map's own insertion order (delete and re-insert to mark an entry used, `keys().next()` for
 * the oldest): V8 leaves a deleted entry as a hole that the next `keys()` iterator walks over again,
 * and with a full map churning, evicting the oldest cost ~15 µs, more than a memoized decision.
 * @module
 */
interface Entry<K, V> {
  readonly key: K;
  value: V;
  /** Toward the least recently used. */
  older: Entry<K, V> | undefined;
  /** Toward the most recently used. */
  newer: Entry<K, V> | undefined;
}

export class LruMap<K, V> {
  readonly #entries = new Map<K, Entry<K, V>>();
  #newest: Entry<K, V> | undefined;
  #oldest: Entry<K, V> | undefined;

  constructor(readonly capacity: number) {}

  /** The value, marked as the most recently used. */
  get(key: K): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#markUsed(entry);
    return entry.value;
  }

  set(key: K, value: V): void {
    if (this.capacity <= 0) return;
    const known = this.#entries.get(key);
    if (known !== undefined) {
      known.value = value;
      this.#markUsed(known);
      return;
    }
    const entry: Entry<K, V> = { key, value, older: this.#newest, newer: undefined };
    if (this.#newest !== undefined) this.#newest.newer = entry;
    this.#newest = entry;
    this.#oldest ??= entry;
    this.#entries.set(key, entry);
    if (this.#entries.size > this.capacity) this.#evictOldest();
  }

  get size(): number {
    return this.#entries.size;
  }

  #markUsed(entry: Entry<K, V>): void {
    if (entry === this.#newest) return;
    // Unlink (it has a newer neighbour, since it is not the newest) ...
    entry.newer!.older = entry.older;
    if (entry.older !== undefined) entry.older.newer = entry.newer;
    else this.#oldest = entry.newer;
    // ... and relink as the newest.
    entry.older = this.#newest;
    entry.newer = undefined;
    this.#newest!.newer = entry;
    this.#newest = entry;
  }

  #evictOldest(): void {
    const oldest = this.#oldest!;
    this.#oldest = oldest.newer;
    if (this.#oldest !== undefined) this.#oldest.older = undefined;
    else this.#newest = undefined;
    this.#entries.delete(oldest.key);
  }
}
