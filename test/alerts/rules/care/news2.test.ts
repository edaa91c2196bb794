import { describe, expect, it } from 'vitest';
import {
  news2Risk,
  scoreConsciousness,
  scoreNews2,
  scoreOxygen,
  scorePulse,
  scoreRespRate,
  scoreSpo2Scale1,
  scoreSpo2Scale2,
  scoreSystolicBp,
  scoreTemperature,
} from '../../../../alerts/rules/care/news2.ts';

// Expected values typed in from RCP NEWS2 (2017) Chart 1, independently of the implementation's
// tables: both sides of every band edge.
describe('NEWS2 Chart 1 band edges', () => {
  it.each([
    [8, 3], [9, 1], [11, 1], [12, 0], [20, 0], [21, 2], [24, 2], [25, 3], [4, 3], [40, 3],
  ])('respiration rate %d scores %d', (v, s) => expect(scoreRespRate(v)).toBe(s));

  it.each([
    [91, 3], [92, 2], [93, 2], [94, 1], [95, 1], [96, 0], [100, 0], [70, 3],
  ])('SpO2 Scale 1: %d%% scores %d', (v, s) => expect(scoreSpo2Scale1(v)).toBe(s));

  it.each([
    [83, false, 3], [84, false, 2], [85, false, 2], [86, false, 1], [87, false, 1], [88, false, 0], [92, false, 0],
    [93, false, 0], [97, false, 0], [100, false, 0],
    [88, true, 0], [92, true, 0], [93, true, 1], [94, true, 1], [95, true, 2], [96, true, 2], [97, true, 3], [100, true, 3],
    [83, true, 3], [84, true, 2], [87, true, 1],
  ])('SpO2 Scale 2: %d%% (on oxygen %s) scores %d', (v, o2, s) => expect(scoreSpo2Scale2(v, o2)).toBe(s));

  it('air or oxygen: oxygen scores 2, air 0', () => {
    expect(scoreOxygen(true)).toBe(2);
    expect(scoreOxygen(false)).toBe(0);
  });

  it.each([
    [90, 3], [91, 2], [100, 2], [101, 1], [110, 1], [111, 0], [219, 0], [220, 3], [60, 3],
  ])('systolic BP %d scores %d', (v, s) => expect(scoreSystolicBp(v)).toBe(s));

  it.each([
    [40, 3], [41, 1], [50, 1], [51, 0], [90, 0], [91, 1], [110, 1], [111, 2], [130, 2], [131, 3],
  ])('pulse %d scores %d', (v, s) => expect(scorePulse(v)).toBe(s));

  it.each([
    ['A', 0], ['C', 3], ['V', 3], ['P', 3], ['U', 3],
  ] as const)('consciousness %s scores %d', (v, s) => expect(scoreConsciousness(v)).toBe(s));

  it.each([
    [35.0, 3], [35.1, 1], [36.0, 1], [36.1, 0], [38.0, 0], [38.1, 1], [39.0, 1], [39.1, 2], [33.5, 3], [41, 2],
  ])('temperature %d °C scores %d', (v, s) => expect(scoreTemperature(v)).toBe(s));

  it('rounds device values to the chart precision before looking them up', () => {
    expect(scoreTemperature(35.04)).toBe(3);
    expect(scoreTemperature(35.05)).toBe(1);
    expect(scoreTemperature(38.05)).toBe(1);
    expect(scorePulse(90.4)).toBe(0);
    expect(scorePulse(90.5)).toBe(1);
    expect(scoreSpo2Scale1(91.6)).toBe(2);
  });
});

describe('NEWS2 aggregate, partial scores and triggers', () => {
  const full = { respRate: 16, spo2: 97, onOxygen: false, systolicBp: 125, pulse: 72, consciousness: 'A', temperature: 36.8 } as const;

  it('a full set of normal observations scores 0, not partial, low risk', () => {
    const r = scoreNews2(full);
    expect(r).toMatchObject({ aggregate: 0, partial: false, missing: [], risk: 'low', response: 'ward', spo2Scale: 1 });
    expect(Object.keys(r.components)).toHaveLength(7);
  });

  it('sums every parameter', () => {
    const r = scoreNews2({ respRate: 22, spo2: 93, onOxygen: true, systolicBp: 105, pulse: 115, consciousness: 'A', temperature: 38.5 });
    // 2 + 2 + 2 + 1 + 2 + 0 + 1
    expect(r.aggregate).toBe(10);
    expect(r.components.pulse).toEqual({ value: 115, score: 2 });
  });

  it('labels a score without every parameter partial and lists what is missing', () => {
    const r = scoreNews2({ respRate: 22, spo2: 95, pulse: 95, temperature: 37 });
    expect(r.partial).toBe(true);
    expect(r.missing).toEqual(['air_or_oxygen', 'systolic_bp', 'consciousness']);
    expect(r.aggregate).toBe(2 + 1 + 1);
    expect(r.components.systolic_bp).toBeUndefined();
  });

  it('uses Scale 2 when asked: 89 % on air scores 0 there and 3 on Scale 1', () => {
    expect(scoreNews2({ spo2: 89, onOxygen: false }, { scale2: true }).aggregate).toBe(0);
    expect(scoreNews2({ spo2: 89, onOxygen: false }).aggregate).toBe(3);
    // Scale 2, 97 % on oxygen: 3 for SpO2 plus 2 for oxygen.
    const r = scoreNews2({ spo2: 97, onOxygen: true }, { scale2: true });
    expect(r.aggregate).toBe(5);
    expect(r.spo2Scale).toBe(2);
  });

  it('Scale 2 above 92 % with oxygen unrecorded scores as air and is partial', () => {
    const r = scoreNews2({ spo2: 97 }, { scale2: true });
    expect(r.components.spo2?.score).toBe(0);
    expect(r.missing).toContain('air_or_oxygen');
  });

  it('trigger: aggregate 0–4 without a single 3 is low (ward-based response)', () => {
    expect(scoreNews2({ ...full, respRate: 22, pulse: 95, temperature: 38.5 })).toMatchObject({ aggregate: 4, risk: 'low', response: 'ward' });
  });

  it('trigger: a 3 in any single parameter is low-medium, urgent ward-based review', () => {
    expect(scoreNews2({ ...full, consciousness: 'C' })).toMatchObject({ aggregate: 3, risk: 'low_medium', response: 'urgent_review' });
    expect(scoreNews2({ ...full, respRate: 8, pulse: 95 })).toMatchObject({ aggregate: 4, risk: 'low_medium' });
  });

  it('trigger: aggregate 5–6 is medium, urgent response (also with a single 3)', () => {
    expect(scoreNews2({ ...full, respRate: 22, spo2: 93, pulse: 95 })).toMatchObject({ aggregate: 5, risk: 'medium', response: 'urgent' });
    expect(scoreNews2({ ...full, respRate: 25, spo2: 93, pulse: 95 })).toMatchObject({ aggregate: 6, risk: 'medium' });
  });

  it('trigger: aggregate ≥7 is high, emergency response', () => {
    expect(scoreNews2({ ...full, respRate: 25, spo2: 92, pulse: 111 })).toMatchObject({ aggregate: 7, risk: 'high', response: 'emergency' });
    expect(news2Risk(6, true).risk).toBe('medium');
    expect(news2Risk(7, false).risk).toBe('high');
    expect(news2Risk(4, false).risk).toBe('low');
  });
});
