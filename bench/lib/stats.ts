/** Percentiles and medians for benchmark samples. Pure. */

export interface Percentiles {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentile of an ascending-sorted array (q in 0..1). */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export function percentiles(samples: ArrayLike<number>): Percentiles {
  const sorted = Float64Array.from(samples as ArrayLike<number>).sort();
  return { count: sorted.length, p50: percentileSorted(sorted, 0.5), p99: percentileSorted(sorted, 0.99), max: sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN };
}

export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 === 1 ? (finite[mid] as number) : ((finite[mid - 1] as number) + (finite[mid] as number)) / 2;
}

/** Median of each numeric key over several runs of the same measurement. */
export function medianOf<T extends Record<string, number>>(runs: readonly T[]): T {
  const first = runs[0];
  if (first === undefined) throw new Error('medianOf: no runs');
  const out: Record<string, number> = {};
  for (const key of Object.keys(first)) out[key] = median(runs.map((r) => r[key] as number));
  return out as T;
}

/** A growable Float64 sample buffer with a hard cap, so a long run cannot exhaust memory. */
export class SampleBuffer {
  private data: Float64Array;
  private n = 0;
  dropped = 0;
  constructor(private readonly cap = 2_000_000) {
    this.data = new Float64Array(Math.min(cap, 1024));
  }
  push(v: number): void {
    if (this.n === this.data.length) {
      if (this.n >= this.cap) {
        this.dropped++;
        return;
      }
      const next = new Float64Array(Math.min(this.cap, this.data.length * 2));
      next.set(this.data);
      this.data = next;
    }
    this.data[this.n++] = v;
  }
  get length(): number {
    return this.n;
  }
  values(): Float64Array {
    return this.data.subarray(0, this.n);
  }
  clear(): void {
    this.n = 0;
    this.dropped = 0;
  }
}
