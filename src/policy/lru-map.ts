/**
 * A map bounded to `capacity` entries, and optionally to a total weight of its keys, that evicts
 * the least recently used: the decision memo, its front and the slices' scope cache each keep one.
 *
 * A Map for the lookups and a doubly linked list for the order, so that every operation is O(1).
 * Not a Map's own insertion order (delete and re-insert to mark an entry used, `keys().next()` for
 * the oldest): V8 leaves a deleted entry as a hole that the next `keys()` iterator walks over again,
 * and with a full map churning, evicting the oldest cost ~15 µs, more than a memoized decision.
 * @module
 */
interface Entry<K, V> {
  readonly key: K;
  weight: number;
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
  readonly #weigh: ((key: K, value: V) => number) | undefined;
  #weight = 0;

  /**
   * `maxWeight` and `weigh`: the entries' weights (a memo's: the length of its strings) together
   * stay at most `maxWeight`; an entry heavier than that on its own is not kept.
   */
  constructor(
    readonly capacity: number,
    readonly maxWeight = Number.POSITIVE_INFINITY,
    weigh?: (key: K, value: V) => number,
  ) {
    this.#weigh = weigh;
  }

  /** The value, marked as the most recently used. */
  get(key: K): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#markUsed(entry);
    return entry.value;
  }

  set(key: K, value: V): void {
    if (this.capacity <= 0) return;
    const weight = this.#weigh === undefined ? 0 : this.#weigh(key, value);
    const known = this.#entries.get(key);
    if (weight > this.maxWeight) {
      // Too heavy to keep on its own: not kept (an older value under its key would be stale), and nothing else evicted for it.
      if (known !== undefined) this.#remove(known);
      return;
    }
    if (known !== undefined) {
      known.value = value;
      this.#weight += weight - known.weight;
      known.weight = weight;
      this.#markUsed(known);
    } else {
      const entry: Entry<K, V> = { key, weight, value, older: this.#newest, newer: undefined };
      if (this.#newest !== undefined) this.#newest.newer = entry;
      this.#newest = entry;
      this.#oldest ??= entry;
      this.#entries.set(key, entry);
      this.#weight += weight;
    }
    // The newest (just set) weighs at most maxWeight: it is never the one evicted here.
    while (this.#entries.size > this.capacity || this.#weight > this.maxWeight) this.#remove(this.#oldest!);
  }

  /** Removes `key`'s entry; whether there was one. */
  delete(key: K): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#remove(entry);
    return true;
  }

  /** Whether `key` has an entry (without marking it used). */
  has(key: K): boolean {
    return this.#entries.has(key);
  }

  /** The least recently used key, or undefined when empty. */
  oldestKey(): K | undefined {
    return this.#oldest?.key;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The total weight of the entries kept. */
  get weight(): number {
    return this.#weight;
  }

  #markUsed(entry: Entry<K, V>): void {
    if (entry === this.#newest) return;
    this.#unlink(entry);
    entry.older = this.#newest;
    entry.newer = undefined;
    this.#newest!.newer = entry;
    this.#newest = entry;
  }

  #remove(entry: Entry<K, V>): void {
    this.#unlink(entry);
    this.#entries.delete(entry.key);
    this.#weight -= entry.weight;
  }

  /** Takes an entry out of the order (its neighbours, or the ends, close the gap). */
  #unlink(entry: Entry<K, V>): void {
    if (entry.older !== undefined) entry.older.newer = entry.newer;
    else this.#oldest = entry.newer;
    if (entry.newer !== undefined) entry.newer.older = entry.older;
    else this.#newest = entry.older;
  }
}
