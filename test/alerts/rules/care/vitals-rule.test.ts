import { describe, expect, it } from 'vitest';
import { demoRegistry } from '../../../support/registry.ts';
import { createVitalsRule } from '../../../../alerts/rules/care/vitals-rule.ts';
import { DAY, NORMAL_VITALS, S, active, cleared, ctx, merge, registryWith, run, stream, telemetry } from './streams.ts';

const VS = 'h01-vs-p01';
const BED = 'h01-bed-p01';
const rule = createVitalsRule();

/** Normal vitals, with `override` applied while `from ≤ offset < to`. */
function episode(from: number, to: number, override: Record<string, number>, total = 180 * S) {
  return stream(VS, DAY, DAY + total, (o) => (o >= from && o < to ? { ...NORMAL_VITALS, ...override } : NORMAL_VITALS));
}

describe('vital thresholds with a duration', () => {
  it('a 5-second SpO2 dip from movement (two readings 5 s apart) is an artefact and does not alert', () => {
    const { signals } = run(rule, episode(60 * S, 70 * S, { spo2_pct: 82 }));
    expect(signals).toEqual([]);
  });

  it('SpO2 below 90 % for 60 s alerts, not before, and clears after 30 s back in range', () => {
    // Readings at 5 s intervals below 90 % from offset 30 s: the 13th (offset 90 s) spans 60 s.
    const { log } = run(rule, episode(30 * S, 120 * S, { spo2_pct: 86 }));
    const raised = log.filter((l) => l.signal.active);
    expect(raised).toHaveLength(1);
    expect(raised[0]?.now).toBe(DAY + 90 * S);
    expect(raised[0]?.signal).toMatchObject({
      key: 'spo2_low:h01-p01',
      rule: 'spo2_low',
      category: 'care',
      signal: 'care',
      severity: 'high',
      residentId: 'h01-p01',
      deviceId: VS,
      homeId: 'h01',
      sourceTs: DAY + 90 * S,
      value: 86,
    });
    expect(raised[0]?.signal.message.en).toContain('SpO2 below 90 % for 60 s');
    expect(raised[0]?.signal.message.zh).toContain('血氧');
    const clear = log.filter((l) => !l.signal.active);
    expect(clear.map((l) => l.now)).toEqual([DAY + 150 * S]);
  });

  it('55 s below 90 % does not alert', () => {
    expect(run(rule, episode(30 * S, 85 * S, { spo2_pct: 86 })).signals).toEqual([]);
  });

  it('bradycardia: pulse ≤40 for 30 s alerts; for 25 s it does not', () => {
    expect(active(run(rule, episode(20 * S, 55 * S, { heart_rate_bpm: 38 })).signals, 'heart_rate_low')).toHaveLength(1);
    expect(run(rule, episode(20 * S, 50 * S, { heart_rate_bpm: 38 })).signals).toEqual([]);
  });

  it('tachycardia: pulse ≥131 for 60 s alerts; 130 never does', () => {
    const s = active(run(rule, episode(20 * S, 90 * S, { heart_rate_bpm: 136 })).signals);
    expect(s.map((x) => x.rule)).toEqual(['heart_rate_high']);
    expect(run(rule, episode(0, 180 * S, { heart_rate_bpm: 130 })).signals).toEqual([]);
  });

  it('fever: ≥38.1 °C for 2 min is a medium alert; ≥39.1 °C adds a high one', () => {
    const mild = active(run(rule, episode(0, 180 * S, { body_temp_c: 38.4 })).signals);
    expect(mild.map((x) => [x.rule, x.severity])).toEqual([['fever', 'medium']]);
    const high = active(run(rule, episode(0, 180 * S, { body_temp_c: 39.4 })).signals);
    expect(high.map((x) => [x.rule, x.severity]).sort()).toEqual([['fever', 'medium'], ['fever_high', 'high']]);
    expect(run(rule, episode(0, 180 * S, { body_temp_c: 38.0 })).signals).toEqual([]);
  });

  it('hypothermia: ≤35.0 °C for 2 min', () => {
    expect(active(run(rule, episode(0, 180 * S, { body_temp_c: 34.8 })).signals).map((x) => x.rule)).toEqual(['hypothermia']);
  });

  it('respiration ≤8 and ≥25 per minute for 60 s', () => {
    expect(active(run(rule, episode(0, 120 * S, { resp_rate_bpm: 7 })).signals).map((x) => x.rule)).toEqual(['resp_rate_low']);
    expect(active(run(rule, episode(0, 120 * S, { resp_rate_bpm: 28 })).signals).map((x) => x.rule)).toEqual(['resp_rate_high']);
  });

  it('readings 40 s apart (a slow monitor) make one run; readings more than 90 s apart (a silence) do not', () => {
    const slow = [telemetry(VS, DAY, { spo2_pct: 85 }), telemetry(VS, DAY + 40 * S, { spo2_pct: 85 }), telemetry(VS, DAY + 80 * S, { spo2_pct: 85 })];
    expect(active(run(rule, slow).signals, 'spo2_low')).toHaveLength(1);
    const gaps = [telemetry(VS, DAY, { spo2_pct: 85 }), telemetry(VS, DAY + 100 * S, { spo2_pct: 85 }), telemetry(VS, DAY + 200 * S, { spo2_pct: 85 })];
    expect(run(rule, gaps).signals).toEqual([]);
  });
});

describe('implausible readings are device alerts, not medical ones', () => {
  it('SpO2 0 and HR 0 for 30 s with the resident in bed raise one placement alert on the device', () => {
    const bed = stream(BED, DAY, DAY + 120 * S, () => ({ bed_occupied: true, movement_index: 5 }));
    const { signals } = run(rule, merge(bed, episode(0, 120 * S, { spo2_pct: 0, heart_rate_bpm: 0 }, 120 * S)));
    const a = active(signals);
    expect(a).toHaveLength(1);
    expect(a[0]).toMatchObject({ key: 'sensor_implausible:h01-vs-p01', category: 'device', signal: 'trouble', deviceId: VS, residentId: 'h01-p01' });
    expect(a[0]?.message.en).toContain('placement');
    expect(signals.some((s) => s.category === 'care')).toBe(false);
  });

  it('a probe-off reading for 10 s raises nothing, and the placement alert clears on a plausible reading', () => {
    expect(run(rule, episode(30 * S, 40 * S, { spo2_pct: 0 })).signals).toEqual([]);
    const { signals } = run(rule, episode(0, 60 * S, { spo2_pct: 0 }, 100 * S));
    expect(active(signals).map((s) => s.rule)).toEqual(['sensor_implausible']);
    expect(cleared(signals).map((s) => s.rule)).toEqual(['sensor_implausible']);
  });

  it('no placement alert while the resident is out of bed', () => {
    const bed = stream(BED, DAY, DAY + 120 * S, () => ({ bed_occupied: false, movement_index: 0 }));
    expect(run(rule, merge(bed, episode(0, 120 * S, { spo2_pct: 0 }, 120 * S))).signals).toEqual([]);
  });

  it('an empty bed sensor reading pulse 0 / respiration 0 is neither medical nor a fault', () => {
    const bed = stream(BED, DAY, DAY + 120 * S, () => ({ bed_occupied: false, heart_rate_bpm: 0, resp_rate_bpm: 0 }));
    expect(run(rule, bed).signals).toEqual([]);
  });
});

describe('personal limits and baselines', () => {
  it('a staff-set personal limit overrides the default (HR below 50 alerts for this resident)', () => {
    const registry = registryWith({ 'h01-p01': { limits: { heart_rate_bpm_low: 50 } } });
    const inputs = episode(0, 60 * S, { heart_rate_bpm: 45 });
    expect(run(rule, inputs).signals).toEqual([]);
    const a = active(run(rule, inputs, { ctx: { registry } }).signals);
    expect(a.map((s) => s.rule)).toEqual(['heart_rate_low']);
    expect(a[0]?.message.en).toContain('below 50');
    expect(a[0]?.message.en).toContain('personal limit');
  });

  it('a learned baseline from the engine is used when no personal limit is set; the personal limit wins over it', () => {
    const baselines = { 'h01-p01': { heart_rate_bpm: { high: 100 } } };
    const inputs = episode(0, 90 * S, { heart_rate_bpm: 110 });
    expect(active(run(rule, inputs, { ctx: ctx({ baselines }) }).signals).map((s) => s.rule)).toEqual(['heart_rate_high']);
    const registry = registryWith({ 'h01-p01': { limits: { heart_rate_bpm_high: 120 } } });
    expect(run(rule, inputs, { ctx: { registry, baselines } }).signals).toEqual([]);
  });

  it('a hypercapnic resident (Scale 2) is not alerted at 86 % but is at 82 %', () => {
    const vs = 'h01-vs-p05';
    expect(demoRegistry().resident('h01-p05')?.hypercapnic).toBe(true);
    const at = (spo2: number) => stream(vs, DAY, DAY + 120 * S, () => ({ ...NORMAL_VITALS, spo2_pct: spo2 }));
    expect(run(rule, at(86)).signals).toEqual([]);
    expect(active(run(rule, at(82)).signals).map((s) => s.key)).toEqual(['spo2_low:h01-p05']);
  });
});

describe('state', () => {
  it('survives a JSON round trip in the middle of a desaturation window', () => {
    const inputs = episode(0, 120 * S, { spo2_pct: 85 });
    const first = run(rule, inputs.slice(0, 6), { persist: true });
    expect(first.signals).toEqual([]);
    const restored = JSON.parse(JSON.stringify(first.state)) as typeof first.state;
    const second = run(rule, inputs.slice(6), { state: restored, persist: true });
    const a = active(second.signals);
    expect(a).toHaveLength(1);
    expect(a[0]?.sourceTs).toBe(DAY + 60 * S);
  });

  it('ignores a redelivered older reading', () => {
    const inputs = episode(0, 70 * S, { spo2_pct: 85 });
    const { state } = run(rule, inputs);
    const again = rule.evaluate(telemetry(VS, DAY + 5 * S, { spo2_pct: 99 }), state, ctx());
    expect(again.signals).toEqual([]);
    expect(again.state.windows).toEqual(state.windows);
  });
});
