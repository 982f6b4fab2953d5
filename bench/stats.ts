/**
 * Statistics and scheduling for the benchmark: medians, percentiles, and interleaved rounds so
 * that machine noise (other processes, GC, CPU frequency) hits every variant alike.
 * @module
 */

/** The summary of one series of samples, in milliseconds. */
export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly p95: number;
  readonly min: number;
}

/** The `p`-th percentile (0-100) of `samples`, linearly interpolated. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (rank - lo);
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export function summarize(samples: readonly number[]): Summary {
  return { n: samples.length, median: median(samples), p95: percentile(samples, 95), min: Math.min(...samples) };
}

/** One variant of a measurement: runs once and returns the milliseconds it measured. */
export type Measure = () => Promise<number>;

/**
 * Runs every variant once per round, `rounds` times, rotating which one goes first so that no
 * variant always runs right after another's garbage. Returns the samples of each variant.
 */
export async function interleave<K extends string>(variants: Readonly<Record<K, Measure>>, rounds: number): Promise<Record<K, number[]>> {
  const names = Object.keys(variants) as K[];
  const samples = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(round + i) % names.length] as K;
      samples[name].push(await variants[name]());
    }
  }
  return samples;
}

/** Runs each variant `count` times (interleaved) and throws the samples away: JIT and caches warm up. */
export async function warmUp(variants: Readonly<Record<string, Measure>>, count: number): Promise<void> {
  await interleave(variants, count);
}

/** Milliseconds taken by `fn`. */
export async function timed(fn: () => unknown): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** Milliseconds taken by a synchronous `fn`, and its result. */
export function timedSync<T>(fn: () => T): [T, number] {
  const start = performance.now();
  const result = fn();
  return [result, performance.now() - start];
}

/** Formats a rate (per second) readably: "123,456/s". */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return "n/a";
  return `${Math.round(perSecond).toLocaleString("en-US")}/s`;
}

/** Formats milliseconds readably: µs (1 decimal below 100 µs) below 1 ms, ms with 2 decimals below 1 s, s above. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "n/a";
  if (ms < 0.1) return `${(ms * 1000).toFixed(1)} µs`;
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(2)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
