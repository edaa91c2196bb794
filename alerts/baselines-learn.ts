import type { LearnedLimit } from './rules/care/care-context.ts';

/**
 * Personal baselines, the pure core (issue 4): a resident's usual values → the limits the vitals
 * rule uses instead of the defaults. No I/O, no clock.
 *
 * Input is one value per time bucket (the adapter asks InfluxDB for 5-minute medians over 7 days),
 * so a burst of readings cannot outweigh the rest of the week. The centre is the median and the
 * spread the median absolute deviation scaled by 1.4826 (the MAD is then a consistent estimator of
 * the standard deviation for normal data; Rousseeuw & Croux 1993): both ignore the artefacts and
 * short episodes that a mean and standard deviation would chase. Limits sit `k` spreads out.
 *
 * Safety clamp. NEWS2 scores are never computed from baselines (the rule uses the RCP 2017 table
 * only); baselines feed only the duration-threshold checks. Every learned limit is clamped between
 *   - `loosest`: the default check's own band edge (NEWS2's 3-point band, fever 38.1 °C), so a
 *     learned limit can never be looser than the default. A resident who deteriorates slowly over the
 *     week drags their median with them; without this clamp the drift would teach the system to stay
 *     silent. Loosening a limit is a clinical decision for staff (Resident.limits in the registry,
 *     which win over baselines);
 *   - `tightest`: the edge of NEWS2's 0-point band (or 1-point band), so an unusually steady
 *     resident does not get a limit inside the normal range and alarms on ordinary values.
 * Systolic BP is not learned: it is measured a few times a day, too few for a weekly baseline.
 */

export type BaselineMetric = 'spo2_pct' | 'heart_rate_bpm' | 'resp_rate_bpm' | 'body_temp_c';
export const BASELINE_METRICS: readonly BaselineMetric[] = ['spo2_pct', 'heart_rate_bpm', 'resp_rate_bpm', 'body_temp_c'];

export interface LearnOptions {
  /** Limits this many robust spreads from the median. */
  readonly k: number;
  /** Fewer buckets than this and nothing is learned (288 five-minute buckets = 24 h of data). */
  readonly minBuckets: number;
}

export const LEARN_DEFAULTS: LearnOptions = { k: 3, minBuckets: 288 };

interface Bounds {
  /** Inclusive range a learned low / high limit is clamped into: [loosest, tightest] for low, [tightest, loosest] for high. */
  readonly low?: { readonly loosest: number; readonly tightest: number };
  readonly high?: { readonly loosest: number; readonly tightest: number };
  /** A spread below this is treated as this (sensor resolution; a flat signal still has noise). */
  readonly minSpread: number;
  readonly decimals: 0 | 1;
}

/**
 * A learned limit is the last acceptable value (the vitals rule alerts strictly beyond it), so the
 * loosest bound is the last value the default accepts. NEWS2 Chart 1 (RCP 2017) band edges.
 */
export const BASELINE_BOUNDS: Readonly<Record<BaselineMetric, Bounds>> = {
  // Default alerts below 90 %. Tightest 94: NEWS2 Scale 1 scores 1 at 94–95 %, so a limit above 94 would alert on normal saturation.
  spo2_pct: { low: { loosest: 90, tightest: 94 }, minSpread: 1, decimals: 0 },
  // Default ≤40 (NEWS2 3). Tightest 50: NEWS2 scores 0 from 51; 41–50 scores 1. Default ≥131 (NEWS2 3); tightest 110 (91–110 scores 1).
  heart_rate_bpm: { low: { loosest: 41, tightest: 50 }, high: { loosest: 130, tightest: 110 }, minSpread: 3, decimals: 0 },
  // Default ≤8 and ≥25 (NEWS2 3). Tightest 12 and 20: NEWS2's 0-point band is 12–20.
  resp_rate_bpm: { low: { loosest: 9, tightest: 12 }, high: { loosest: 24, tightest: 20 }, minSpread: 1.5, decimals: 0 },
  // Default fever ≥38.1 (NEWS2 1); tightest 37.5 (below it is a normal afternoon temperature). Default hypothermia ≤35.0 (NEWS2 3); tightest 36.0 (NEWS2 35.1–36.0 scores 1).
  body_temp_c: { low: { loosest: 35.1, tightest: 36.0 }, high: { loosest: 38.0, tightest: 37.5 }, minSpread: 0.2, decimals: 1 },
};

/**
 * NEWS2 SpO2 Scale 2 (hypercapnic residents, target 88–92 %): the default alerts at ≤83 (3 points),
 * and 88 is the lower end of the prescribed target range.
 */
export const SPO2_SCALE2_LOW = { loosest: 84, tightest: 88 } as const;

export function median(sorted: readonly number[]): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const mid = Math.floor(n / 2);
  return n % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export interface Learned {
  readonly median: number;
  /** 1.4826 × MAD, before the minimum spread is applied. */
  readonly spread: number;
  readonly n: number;
  readonly limit: LearnedLimit;
}

const round = (v: number, decimals: 0 | 1, dir: 'down' | 'up'): number => {
  const f = decimals === 1 ? 10 : 1;
  // Round outwards (low down, high up): rounding never makes a limit tighter than what was learned.
  return (dir === 'down' ? Math.floor(v * f + 1e-9) : Math.ceil(v * f - 1e-9)) / f;
};

const clamp = (v: number, a: number, b: number): number => Math.min(Math.max(v, Math.min(a, b)), Math.max(a, b));

/** Learns one metric's limits from bucket values; undefined when there is too little data. */
export function learnMetric(metric: BaselineMetric, values: readonly number[], opts: { hypercapnic?: boolean } & Partial<LearnOptions> = {}): Learned | undefined {
  const o = { ...LEARN_DEFAULTS, ...opts };
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length < o.minBuckets || finite.length === 0) return undefined;
  const sorted = [...finite].sort((a, b) => a - b);
  const m = median(sorted);
  const mad = median(sorted.map((v) => Math.abs(v - m)).sort((a, b) => a - b));
  const spread = 1.4826 * mad;
  const b = BASELINE_BOUNDS[metric];
  const s = Math.max(spread, b.minSpread);
  const lowBounds = metric === 'spo2_pct' && opts.hypercapnic === true ? SPO2_SCALE2_LOW : b.low;
  const limit: { low?: number; high?: number } = {};
  if (lowBounds !== undefined) limit.low = clamp(round(m - o.k * s, b.decimals, 'down'), lowBounds.loosest, lowBounds.tightest);
  if (b.high !== undefined) limit.high = clamp(round(m + o.k * s, b.decimals, 'up'), b.high.loosest, b.high.tightest);
  return { median: m, spread, n: finite.length, limit };
}

/** All metrics of one resident; metrics with too little data are left out. */
export function learnResident(
  series: Readonly<Partial<Record<BaselineMetric, readonly number[]>>>,
  opts: { hypercapnic?: boolean } & Partial<LearnOptions> = {},
): Partial<Record<BaselineMetric, LearnedLimit>> {
  const out: Partial<Record<BaselineMetric, LearnedLimit>> = {};
  for (const metric of BASELINE_METRICS) {
    const values = series[metric];
    if (values === undefined) continue;
    const learned = learnMetric(metric, values, opts);
    if (learned !== undefined) out[metric] = learned.limit;
  }
  return out;
}
