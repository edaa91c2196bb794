import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MetricName } from '../../../../contract/metrics.ts';
import type { Device } from '../../../../contract/registry.ts';
import type { Rule, RuleInput, Signal } from '../../../../alerts/rules/types.ts';
import { electricalRule } from '../../../../alerts/rules/fire/electrical.ts';
import { fireDetectionRule } from '../../../../alerts/rules/fire/fire-detection.ts';
import { gasRule } from '../../../../alerts/rules/fire/gas.ts';
import { waterPressureRule } from '../../../../alerts/rules/fire/water-pressure.ts';
import { byRule, raises, run } from './harness.ts';
import { T0, device, merge, telemetry, tick } from './shapes.ts';
import { RUNS, longestGap, sampleTimes, samplingArb, uniform, type Sampling } from '../sampling.ts';

/**
 * Issue 11, "no alarm goes unheard": every time-based fire rule gives the same decision whether the
 * device reports every 0.5 s or every 60 s. Each property drives a rule with one physical signal (a
 * function of time) sampled at random intervals with random jitter, and asserts
 *
 * - a dangerous signal raises its alarm within the rule's documented delay D (docs/rules.md) plus
 *   the reporting tolerance: 2 × the longest gap I between readings (+ the 1 s engine tick where a
 *   tick completes it). One interval is the wait for the first reading that shows the condition at
 *   all. The other is the reading that shows the condition has lasted its hold, or — when the
 *   interval is longer than the hold — the second reading every rule needs to tell a condition
 *   from one noisy reading: at a 60 s interval a single reading cannot be told from a spike, so no
 *   rule that rejects spikes can decide on it. Both are physical limits of sampling, not slack;
 * - a benign signal sampled the same way raises nothing.
 */

const hdKitchen = device('h01-hd-kitchen'); // fixed level 65 °C (room override)
const sd305 = device('h01-sd-r305'); // bedroom multi-sensor, fixed level 58 °C
const gas = device('h01-gd-kitchen');
const ef = device('h01-ef-plant');
const wp = device('h01-wp-plant');
const TICK_MS = 1_000; // the engine's default tick (alerts/config.ts tickMs)

type Metrics = Partial<Record<MetricName, number>>;

/** Readings of `signal(tMs since T0)` at the sampled times, plus engine ticks, in engine order. */
function sampled(d: Device, s: Sampling, durationMs: number, signal: (tMs: number) => Metrics, withTicks = true): { inputs: RuleInput[]; gap: number } {
  const times = sampleTimes(s, T0, T0 + durationMs);
  const readings = times.map((t) => telemetry(d, t, signal(t - T0)));
  const ticks: RuleInput[] = [];
  if (withTicks) for (let t = T0; t < T0 + durationMs; t += TICK_MS) ticks.push(tick(t + 500));
  return { inputs: merge(readings, ticks), gap: longestGap(times, T0) };
}

function firstRaise(rule: Rule, inputs: readonly RuleInput[], name: string): Signal | undefined {
  return raises(run([rule], inputs).signals, byRule(name))[0];
}

const round = (v: number, digits: number): number => Number(v.toFixed(digits));
const S = 1000;

describe('rate of rise at realistic reporting intervals (EN 54-5 class A1R)', () => {
  // EN 54-5 class A1 response-time limits at 10 °C/min: not before 1 min 0 s, not after 4 min 20 s.
  // The rule is a monitoring layer over the detector's own certified decision; its own bound is the
  // documented D (docs/rules.md, 35 s at 15 °C/min) + 2 intervals, under 4 min 20 s at any interval.
  const ramp15 = (tMs: number): Metrics => ({ temperature_c: round(22 + (Math.max(0, tMs - 120 * S) / 60_000) * 15, 2) });

  it('a detector reporting once a second (1 Hz) in a room warming 15 °C/min raises rate-of-rise within 60 s of the start of the rise', () => {
    // Before the fix the window never held more than one sample at 1 Hz: no slope, never an alarm.
    const readings: RuleInput[] = [];
    for (let t = 0; t <= 600; t++) readings.push(telemetry(hdKitchen, T0 + t * S, ramp15(t * S)));
    const ror = firstRaise(fireDetectionRule, readings, 'heat_ror');
    expect(ror).toBeDefined();
    const after = (ror!.sourceTs - (T0 + 120 * S)) / S;
    expect(after).toBeLessThanOrEqual(60);
    expect(after).toBeGreaterThan(20); // a trend over the window, not the first warm reading
  });

  it.each([0.5, 10, 30, 60])('and at a %s s reporting interval within 35 s + 2 intervals, well inside 4 min 20 s', (periodS) => {
    const readings: RuleInput[] = [];
    for (let t = 0; t <= 900 * S; t += periodS * S) readings.push(telemetry(hdKitchen, T0 + t, ramp15(t)));
    const ror = firstRaise(fireDetectionRule, readings, 'heat_ror');
    expect(ror).toBeDefined();
    const after = (ror!.sourceTs - (T0 + 120 * S)) / S;
    expect(after).toBeLessThanOrEqual(35 + 2 * periodS);
    expect(after).toBeLessThan(260);
  });
});

describe('fire rules decide the same at every reporting interval (0.5–60 s, jittered)', () => {
  // Documented delay of heat_ror by rate of rise: the time a steady rise takes to bring the 60 s
  // least-squares slope to 8 °C/min and be confirmed, with readings every 0.5 s (docs/rules.md).
  // A slope adds one interval to the D + 2 I of a level rule: the first reading after the rise
  // starts has only pre-rise readings before it, so at a sparse interval the rise shows in the
  // slope from the second reading on, and a third confirms it. Fresh-clone CI twice found a
  // detector at 34 s intervals past D + 2 I at 10 °C/min (kept below as examples); sweeps in
  // session 8 needed up to 65.0 s over 2 I at 10 °C/min (200,000 samplings at 20–60 s), but at
  // most 43.9 / 31.6 / 26.0 / 20.0 s over 3 I (60,000 samplings per rate), the worst at 0.5 s.
  // D + 3 I stays inside EN 54-5 A1's 4 min 20 s at 10 °C/min up to a 60 s interval (46 + 180 s).
  const ROR_DELAY_S: Record<number, number> = { 10: 46, 15: 34, 20: 28, 30: 22 };

  it('heat_ror: a steady rise of 10–30 °C/min → raised within D(rate) + 3 intervals of its start', () => {
    fc.assert(
      fc.property(samplingArb, fc.constantFrom(10, 15, 20, 30), (s, rate) => {
        const n = uniform(s.seed + 1);
        const start = 120 * S;
        const { inputs, gap } = sampled(hdKitchen, s, start + 300 * S, (t) => ({ temperature_c: round(22 + (Math.max(0, t - start) / 60_000) * rate + 0.1 * n(), 2) }), false);
        const ror = firstRaise(fireDetectionRule, inputs, 'heat_ror');
        expect(ror).toBeDefined();
        expect(ror!.sourceTs).toBeLessThanOrEqual(T0 + start + ROR_DELAY_S[rate]! * S + 3 * gap);
      }),
      {
        numRuns: RUNS,
        examples: [
          [{ intervalMs: 34_001, jitter: 0, phase: 0, seed: 0 }, 10],
          [{ intervalMs: 34_201, jitter: 0, phase: 0, seed: 0 }, 10],
          // The worst found over 2 I (65.0 s) and over 3 I (43.8 s) by the session 8 sweeps.
          [{ intervalMs: 55_980, jitter: 0.49999999999999917, phase: 1.3066886304686677e-139, seed: 1903999504 }, 10],
          [{ intervalMs: 512, jitter: 1.3536189572597547e-56, phase: 3.5358671988158844e-7, seed: 539211688 }, 10],
        ],
      },
    );
  });

  it('heat_fixed: the temperature over the fixed level → raised within 2 intervals of crossing it (two readings)', () => {
    fc.assert(
      fc.property(samplingArb, (s) => {
        // A room already hot (58 °C) warming 3 °C/min, under the rate-of-rise level: the kitchen's 65 °C is crossed at 140 s.
        const { inputs, gap } = sampled(hdKitchen, s, 420 * S, (t) => ({ temperature_c: round(58 + (t / 60_000) * 3, 2) }), false);
        const fixed = firstRaise(fireDetectionRule, inputs, 'heat_fixed');
        expect(fixed).toBeDefined();
        expect(fixed!.sourceTs).toBeLessThanOrEqual(T0 + 140 * S + 2 * gap);
      }),
      { numRuns: RUNS },
    );
  });

  it('heat: slow warming (4 °C/min) with sensor noise, and a 3 s hot draught of +6 °C → nothing', () => {
    fc.assert(
      fc.property(samplingArb, fc.integer({ min: 400, max: 500 }), (s, draughtS) => {
        const n = uniform(s.seed + 2);
        const temp = (t: number): number => 22 + Math.min(16, (t / 60_000) * 4) + (t >= draughtS * S && t < (draughtS + 3) * S ? 6 : 0) + 0.3 * n();
        const { inputs } = sampled(sd305, s, 720 * S, (t) => ({ temperature_c: round(temp(t), 2), smoke_obscuration_pct_per_m: 0.1 }));
        expect(run([fireDetectionRule], inputs).signals).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('smoke: obscuration rising 2 %/m per minute and persisting → pre-alarm within 10 s + 2 intervals of 2 %/m, verified alarm within 60 s + 2 intervals (+ tick) of 4 %/m', () => {
    fc.assert(
      fc.property(samplingArb, (s) => {
        const n = uniform(s.seed + 3);
        const start = 60 * S;
        const smoke = (t: number): number => Math.min(8, 0.1 + (Math.max(0, t - start) / 60_000) * 2) + 0.02 * n();
        const { inputs, gap } = sampled(sd305, s, 600 * S, (t) => ({ smoke_obscuration_pct_per_m: round(smoke(t), 2), temperature_c: 22 }));
        const signals = run([fireDetectionRule], inputs).signals;
        // Times the signal is surely past each level (noise included): 2.05 and 4.05 %/m.
        const at2 = start + ((2.05 - 0.1) / 2) * 60_000;
        const at4 = start + ((4.05 - 0.1) / 2) * 60_000;
        const pre = raises(signals, byRule('smoke_prealarm'))[0];
        const alarm = raises(signals, byRule('smoke_alarm'))[0];
        expect(pre).toBeDefined();
        expect(alarm).toBeDefined();
        expect(pre!.sourceTs).toBeLessThanOrEqual(T0 + at2 + 10 * S + 2 * gap);
        expect(alarm!.sourceTs).toBeLessThanOrEqual(T0 + at4 + 60 * S + 2 * gap + TICK_MS);
      }),
      { numRuns: RUNS },
    );
  });

  it('smoke: shower steam (6 %/m for 30 s) never becomes a fire alarm; a 3 s wisp at 3 %/m (pre-alarm level) raises nothing at all', () => {
    fc.assert(
      fc.property(samplingArb, fc.integer({ min: 100, max: 160 }), (s, atS) => {
        const steam = (t: number): number => (t >= atS * S && t < (atS + 30) * S ? 6 : 0.1);
        const a = sampled(sd305, s, 480 * S, (t) => ({ smoke_obscuration_pct_per_m: steam(t), temperature_c: 23 }));
        const signals = run([fireDetectionRule], a.inputs).signals;
        expect(signals.filter((x) => x.severity === 'critical')).toEqual([]);
        const dust = (t: number): number => (t >= atS * S && t < (atS + 3) * S ? 3 : 0.1);
        const b = sampled(sd305, s, 480 * S, (t) => ({ smoke_obscuration_pct_per_m: dust(t), temperature_c: 23 }));
        expect(run([fireDetectionRule], b.inputs).signals).toEqual([]);
      }),
      // Fresh-clone CI, session 8: steam seen on two readings 24 s apart at a ~40 s interval was
      // verified by the tick at the window end, before the next reading showed it gone.
      { numRuns: RUNS, examples: [[{ intervalMs: 39_856, jitter: 0.39398616265689346, phase: 0, seed: 14 }, 110]] },
    );
  });

  it('smoke: a detector that stops reporting at alarm level (destroyed by the fire) is still verified at the window end, on the tick', () => {
    const readings = [0, 10, 20, 30, 40].map((t) => telemetry(sd305, T0 + t * S, { smoke_obscuration_pct_per_m: t >= 30 ? 6 : 0.1, temperature_c: 23 }));
    const ticksTo = (endS: number): RuleInput[] => Array.from({ length: endS }, (_, t) => tick(T0 + t * S + 500));
    // The window ends 60 s after the first reading at alarm level (30 s).
    expect(raises(run([fireDetectionRule], merge(readings, ticksTo(90))).signals, byRule('smoke_alarm'))).toEqual([]);
    expect(raises(run([fireDetectionRule], merge(readings, ticksTo(92))).signals, byRule('smoke_alarm'))).toHaveLength(1);
  });

  it('smoke: at a 40 s interval the window end waits for the next reading; a detector that then stays silent is verified once that reading is overdue (2.5 intervals, at most 100 s)', () => {
    // Readings every 40 s; smoke at alarm level on the readings at 120 and 160 s (window 120–180 s).
    const at = (times: number[], smokeAt: (t: number) => number): RuleInput[] => times.map((t) => telemetry(sd305, T0 + t * S, { smoke_obscuration_pct_per_m: smokeAt(t), temperature_c: 23 }));
    const ticksTo = (endS: number): RuleInput[] => Array.from({ length: endS }, (_, t) => tick(T0 + t * S + 500));
    const steam = at([0, 40, 80, 120, 160, 200], (t) => (t === 120 || t === 160 ? 6 : 0.1));
    // The tick at 180 s does not verify: the reading due at 200 s decides, and it shows the smoke gone.
    expect(raises(run([fireDetectionRule], merge(steam, ticksTo(240))).signals, byRule('smoke_alarm'))).toEqual([]);
    // The same detector destroyed after its reading at 160 s: verified once its next reading is
    // overdue, 2.5 × 40 s (capped at 100 s): after 260 s.
    const destroyed = at([0, 40, 80, 120, 160], (t) => (t >= 120 ? 6 : 0.1));
    expect(raises(run([fireDetectionRule], merge(destroyed, ticksTo(260))).signals, byRule('smoke_alarm'))).toEqual([]);
    const verified = raises(run([fireDetectionRule], merge(destroyed, ticksTo(262))).signals, byRule('smoke_alarm'));
    expect(verified).toHaveLength(1);
    // Still at alarm level at 200 s: verified by that reading, at once.
    const fire = at([0, 40, 80, 120, 160, 200], (t) => (t >= 120 ? 6 : 0.1));
    expect(raises(run([fireDetectionRule], merge(fire, ticksTo(201))).signals, byRule('smoke_alarm'))[0]?.sourceTs).toBe(T0 + 200 * S);
    // A detector's first reading at alarm level, its interval unknown: the tick waits the longest a
    // reading can be late (100 s), so the reading at 70 s showing the smoke gone still decides.
    const first = at([0, 70], (t) => (t === 0 ? 6 : 0.1));
    expect(raises(run([fireDetectionRule], merge(first, ticksTo(120))).signals, byRule('smoke_alarm'))).toEqual([]);
    const silentAfter = at([0], () => 6);
    expect(raises(run([fireDetectionRule], merge(silentAfter, ticksTo(99))).signals, byRule('smoke_alarm'))).toEqual([]);
    expect(raises(run([fireDetectionRule], merge(silentAfter, ticksTo(102))).signals, byRule('smoke_alarm'))).toHaveLength(1);
  });

  it('gas: a leak rising to 60 %LEL → gas_low within 10 s + 2 intervals of 20 %LEL, gas_high of 50 %LEL; a 4 s puff and background → nothing', () => {
    fc.assert(
      fc.property(samplingArb, (s) => {
        const n = uniform(s.seed + 4);
        const start = 60 * S;
        const leak = (t: number): number => Math.min(60, Math.max(0, t - start) / 1000) + 2 + n();
        const { inputs, gap } = sampled(gas, s, 400 * S, (t) => ({ gas_lel_pct: round(leak(t), 1) }), false);
        const signals = run([gasRule], inputs).signals;
        const low = raises(signals, byRule('gas_low'))[0];
        const high = raises(signals, byRule('gas_high'))[0];
        expect(low?.sourceTs).toBeLessThanOrEqual(T0 + start + 19 * S + 10 * S + 2 * gap);
        expect(high?.sourceTs).toBeLessThanOrEqual(T0 + start + 49 * S + 10 * S + 2 * gap);
        const puff = (t: number): number => (t >= 200 * S && t < 204 * S ? 60 : 5 + 2 * n());
        const benign = sampled(gas, s, 400 * S, (t) => ({ gas_lel_pct: round(puff(t), 1) }), false);
        expect(run([gasRule], benign.inputs).signals).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('electrical: residual current at 400 mA → supervisory within 10 s + 2 intervals; a 3 s 900 mA inrush → nothing', () => {
    fc.assert(
      fc.property(samplingArb, (s) => {
        const start = 60 * S;
        const { inputs, gap } = sampled(ef, s, 300 * S, (t) => ({ residual_current_ma: t >= start ? 400 : 40, cable_temp_c: 35 }), false);
        const rc = firstRaise(electricalRule, inputs, 'residual_current');
        expect(rc?.sourceTs).toBeLessThanOrEqual(T0 + start + 10 * S + 2 * gap);
        const inrush = sampled(ef, s, 300 * S, (t) => ({ residual_current_ma: t >= start && t < start + 3 * S ? 900 : 40, cable_temp_c: 35 }), false);
        expect(run([electricalRule], inrush.inputs).signals).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('water: pressure falling below 0.15 MPa → supervisory within 30 s + 2 intervals; a 20 s pump-start dip → nothing', () => {
    fc.assert(
      fc.property(samplingArb, (s) => {
        const start = 60 * S;
        // 0.30 → 0.05 MPa over 100 s: below 0.15 from 120 s.
        const falling = (t: number): number => Math.max(0.05, 0.3 - (Math.max(0, t - start) / 100_000) * 0.25);
        const { inputs, gap } = sampled(wp, s, 400 * S, (t) => ({ water_pressure_mpa: round(falling(t), 3) }), false);
        const low = firstRaise(waterPressureRule, inputs, 'water_pressure_low');
        expect(low?.sourceTs).toBeLessThanOrEqual(T0 + 121 * S + 30 * S + 2 * gap);
        const dip = sampled(wp, s, 400 * S, (t) => ({ water_pressure_mpa: t >= 200 * S && t < 220 * S ? 0.1 : 0.3 }), false);
        expect(run([waterPressureRule], dip.inputs).signals).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });
});
