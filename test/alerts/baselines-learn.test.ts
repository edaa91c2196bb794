import { describe, expect, it } from 'vitest';
import { BASELINE_BOUNDS, LEARN_DEFAULTS, learnMetric, learnResident, median, SPO2_SCALE2_LOW } from '../../alerts/baselines-learn.ts';

/** A week of 5-minute buckets around `centre`, alternating ±`jitter` (MAD = jitter). */
function steady(centre: number, jitter: number, n = 2016): number[] {
  return Array.from({ length: n }, (_, i) => centre + (i % 2 === 0 ? jitter : -jitter));
}

describe('personal baselines: the pure learner', () => {
  it('learns nothing from less than a day of buckets', () => {
    expect(learnMetric('heart_rate_bpm', steady(70, 4, LEARN_DEFAULTS.minBuckets - 1))).toBeUndefined();
    expect(learnMetric('heart_rate_bpm', steady(70, 4, LEARN_DEFAULTS.minBuckets))).toBeDefined();
    expect(learnResident({ heart_rate_bpm: steady(70, 4, 10) })).toEqual({});
  });

  it('uses median ± 3 × 1.4826 × MAD, rounded outwards', () => {
    // HR 60 ± 3: spread 4.45, limits 60 ∓ 13.3 → 46 (floor) and 74 → clamped up to the tightest high, 110.
    const l = learnMetric('heart_rate_bpm', steady(60, 3));
    expect(l?.median).toBe(60);
    expect(l?.spread).toBeCloseTo(4.4478, 3);
    expect(l?.limit).toEqual({ low: 46, high: 110 });
  });

  it('ignores artefacts: 10 % wild buckets do not move the limits', () => {
    const clean = steady(60, 3);
    const dirty = clean.map((v, i) => (i % 10 === 0 ? 200 : v));
    expect(learnMetric('heart_rate_bpm', dirty)?.limit.low).toBe(learnMetric('heart_rate_bpm', clean)?.limit.low);
    expect(median([3, 1, 2].sort((a, b) => a - b))).toBe(2);
    expect(median([1, 2, 3, 4])).toBe(2.5);
  });

  it('never loosens a limit beyond the default: a deteriorating resident cannot teach silence', () => {
    // A resident tachycardic all week (HR 140): the learned high would be ~153, but the default alerts at ≥131.
    expect(learnMetric('heart_rate_bpm', steady(140, 3))?.limit.high).toBe(BASELINE_BOUNDS.heart_rate_bpm.high?.loosest);
    expect(learnMetric('heart_rate_bpm', steady(140, 3))?.limit.high).toBe(130);
    // Sitting at SpO2 88 % (not hypercapnic): the learned low stays at the default 90.
    expect(learnMetric('spo2_pct', steady(88, 1))?.limit.low).toBe(90);
    // Slowly rising temperature: fever limit never above the default 38.0 (alert from 38.1).
    expect(learnMetric('body_temp_c', steady(38.4, 0.1))?.limit.high).toBe(38);
    // Breathing slowly all week: low limit never below 9 (default alerts at ≤8).
    expect(learnMetric('resp_rate_bpm', steady(9, 1))?.limit.low).toBe(9);
  });

  it('never tightens a limit into the NEWS2 normal band: a steady resident does not alarm on normal values', () => {
    // Very steady HR 80: 80 ± 9 would alert at 70 and 90; clamped to NEWS2 band edges 50 / 110.
    expect(learnMetric('heart_rate_bpm', steady(80, 0))?.limit).toEqual({ low: 50, high: 110 });
    // RR 14 ± 4.5 (minimum spread): the high limit 19 would sit inside NEWS2's 0-point band 12–20.
    expect(learnMetric('resp_rate_bpm', steady(14, 0))?.limit).toEqual({ low: 9, high: 20 });
    expect(learnMetric('spo2_pct', steady(99, 0))?.limit).toEqual({ low: 94 });
  });

  it('gives a personal, earlier warning inside the safe range', () => {
    // A resident whose heart usually beats at 56 ± 2: alert below 47 instead of at 40.
    expect(learnMetric('heart_rate_bpm', steady(56, 2))?.limit.low).toBe(47);
    // Usually 36.4 ± 0.1 °C: fever alert above 37.5 (tightest), hypothermia below 35.8.
    expect(learnMetric('body_temp_c', steady(36.4, 0.1))?.limit).toEqual({ low: 35.8, high: 37.5 });
  });

  it('uses the Scale 2 bounds for hypercapnic residents', () => {
    expect(learnMetric('spo2_pct', steady(86, 1), { hypercapnic: true })?.limit.low).toBe(SPO2_SCALE2_LOW.loosest);
    expect(learnMetric('spo2_pct', steady(95, 0), { hypercapnic: true })?.limit.low).toBe(SPO2_SCALE2_LOW.tightest);
  });

  it('learns each metric that has enough data and leaves out the others', () => {
    const out = learnResident({ heart_rate_bpm: steady(60, 3), spo2_pct: steady(97, 1, 20), resp_rate_bpm: [Number.NaN, ...steady(15, 1)] });
    expect(Object.keys(out).sort()).toEqual(['heart_rate_bpm', 'resp_rate_bpm']);
  });
});
