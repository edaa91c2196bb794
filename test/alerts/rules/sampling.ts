import fc from 'fast-check';

/**
 * How a device samples a physical signal, for the interval property tests of the fire and care
 * rules: a base reporting interval, jitter around it, and where the first reading falls. Rules must
 * give the same decision for any of these (issue 11: real detectors report faster exactly when
 * something happens, and slower ones exist).
 */
export interface Sampling {
  readonly intervalMs: number;
  /** Each gap is the interval × (1 ± jitter × u), u uniform in [-1, 1]. */
  readonly jitter: number;
  /** The first reading is this fraction of an interval after the start. */
  readonly phase: number;
  readonly seed: number;
}

export const MIN_INTERVAL_MS = 500;
export const MAX_INTERVAL_MS = 60_000;

/** Half the runs sample fast (0.5–2 s, where the rate-of-rise bug lived), half anywhere in 0.5–60 s. */
export const samplingArb: fc.Arbitrary<Sampling> = fc.record({
  intervalMs: fc.oneof(fc.integer({ min: MIN_INTERVAL_MS, max: 2_000 }), fc.integer({ min: MIN_INTERVAL_MS, max: MAX_INTERVAL_MS })),
  jitter: fc.double({ min: 0, max: 0.5, noNaN: true }),
  phase: fc.double({ min: 0, max: 1, noNaN: true }),
  seed: fc.integer({ min: 0, max: 0x7fffffff }),
});

/** Deterministic uniform numbers in [-1, 1] (an LCG), so a failing run replays from its seed. */
export function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 0xffffffff) * 2 - 1;
  };
}

/** Reading times in [from, to): gaps jittered and clamped to the 0.5–60 s range. */
export function sampleTimes(s: Sampling, from: number, to: number): number[] {
  const u = uniform(s.seed);
  const out: number[] = [];
  // Strictly inside the first interval, so a signal that changes one interval (≤ 60 s) after the
  // start has been seen at least once before the change.
  for (let t = from + Math.min(s.intervalMs - 1, Math.floor(s.phase * s.intervalMs)); t < to; ) {
    out.push(t);
    const gap = s.intervalMs * (1 + s.jitter * u());
    t += Math.round(Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, gap)));
  }
  return out;
}

/** The longest gap between readings (and before the first), the "one reporting interval" of a bound. */
export function longestGap(times: readonly number[], from: number): number {
  let max = (times[0] ?? from) - from;
  for (let i = 1; i < times.length; i++) max = Math.max(max, (times[i] as number) - (times[i - 1] as number));
  return max;
}

/** Runs per property: enough to cover the interval range, few enough to keep each test to seconds. */
export const RUNS = 30;
