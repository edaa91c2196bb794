import { describe, expect, it } from 'vitest';
import { electricalRule } from '../../../../alerts/rules/fire/electrical.ts';
import { gasRule } from '../../../../alerts/rules/fire/gas.ts';
import { waterPressureRule } from '../../../../alerts/rules/fire/water-pressure.ts';
import { byRule, clears, raises, run } from './harness.ts';
import { T0, device, event, hovering, series } from './shapes.ts';
import { createManualClock } from '../../../../common/clock.ts';
import { createLifecycle } from '../../../../alerts/lifecycle.ts';
import { demoRegistry } from '../../../support/registry.ts';

const ef = device('h01-ef-plant');
const gd = device('h01-gd-kitchen');
const wp = device('h01-wp-plant');

describe('electrical fire monitoring (GB 50116-2013 §9, GB 14287)', () => {
  it('residual current: 299 mA stays quiet, 300 mA on two readings raises a supervisory signal', () => {
    const below = run([electricalRule], series(ef, T0, 120, 10, () => ({ residual_current_ma: 299 })));
    expect(below.signals).toHaveLength(0);
    const at = run([electricalRule], series(ef, T0, 120, 10, () => ({ residual_current_ma: 300 })));
    expect(at.signals).toHaveLength(1);
    expect(at.signals[0]).toMatchObject({ key: 'residual_current:h01-ef-plant', category: 'fire', signal: 'supervisory', severity: 'high', active: true, sourceTs: T0 + 10_000, value: 300 });
    expect(at.signals[0]!.latching).toBeUndefined();
  });

  it('residual current: one switching spike is ignored; the clear needs 60 s under 270 mA', () => {
    const spike = run([electricalRule], series(ef, T0, 120, 10, (t) => ({ residual_current_ma: t === 50 ? 900 : 40 })));
    expect(spike.signals).toHaveLength(0);
    const episode = run([electricalRule], series(ef, T0, 300, 10, (t) => ({ residual_current_ma: t < 60 ? 350 : t < 120 ? 280 : 40 })));
    const cleared = clears(episode.signals);
    expect(raises(episode.signals)).toHaveLength(1);
    expect(cleared).toHaveLength(1);
    // Under 270 mA from t = 120 s; cleared at the first reading 60 s later.
    expect(cleared[0]!.sourceTs).toBe(T0 + 180_000);
  });

  it('cable temperature: 70 °C is the alarm setting, hovering ±0.2 raises once', () => {
    expect(run([electricalRule], series(ef, T0, 60, 10, () => ({ cable_temp_c: 69.9 }))).signals).toHaveLength(0);
    const { signals } = run([electricalRule], hovering(ef, 'cable_temp_c', 70, 0.2, 600, 10));
    expect(raises(signals, byRule('cable_temperature'))).toHaveLength(1);
    expect(signals).toHaveLength(1);
  });

  it("the monitor's own detector_alarm is a supervisory signal, restored by ok: true — not a fire", () => {
    const { signals } = run([electricalRule], [event(ef, T0, 'detector_alarm'), event(ef, T0 + 60_000, 'detector_alarm', { ok: true }), event(ef, T0 + 61_000, 'detector_alarm', { ok: true })]);
    expect(signals.map((s) => [s.rule, s.signal, s.active])).toEqual([
      ['electrical_alarm', 'supervisory', true],
      ['electrical_alarm', 'supervisory', false],
    ]);
  });
});

describe('combustible gas (GB 15322.1-2019, GB 50493-2019 §5.5)', () => {
  it('19.9 %LEL quiet; 20 %LEL low alarm (self-restoring); 50 %LEL high alarm (latching)', () => {
    expect(run([gasRule], series(gd, T0, 60, 10, () => ({ gas_lel_pct: 19.9 }))).signals).toHaveLength(0);
    const { signals } = run([gasRule], series(gd, T0, 400, 10, (t) => ({ gas_lel_pct: t < 60 ? 20 : t < 120 ? 50 : 2 })));
    const low = signals.filter(byRule('gas_low'));
    const high = signals.filter(byRule('gas_high'));
    expect(low.map((s) => s.active)).toEqual([true, false]);
    expect(low[0]).toMatchObject({ signal: 'alarm', severity: 'high', category: 'fire' });
    expect(low[0]!.latching).toBeUndefined();
    expect(high.map((s) => s.active)).toEqual([true, false]);
    expect(high[0]).toMatchObject({ signal: 'alarm', severity: 'critical', latching: true });
  });

  it('gas hovering at 20 %LEL ±0.2 for 10 min → one raise, no clear', () => {
    const { signals } = run([gasRule], hovering(gd, 'gas_lel_pct', 20, 0.2, 600, 10));
    expect(signals).toHaveLength(1);
  });
});

describe("a detector's own alarm again without ok: true between (it was ignored)", () => {
  const staff = { username: 'staff-h01', role: 'staff' as const, homeId: 'h01' };
  function lifecycle() {
    let n = 0;
    return createLifecycle({ clock: createManualClock(T0), registry: demoRegistry(), onChange: () => undefined, newId: () => `a${++n}` });
  }

  it('gas: the repeat is cleared and asserted again, so the acknowledged alert sounds again: one alert, reactivated, to acknowledge again', () => {
    const inputs = [event(gd, T0, 'detector_alarm'), event(gd, T0 + 120_000, 'detector_alarm')];
    const first = run([gasRule], inputs.slice(0, 1));
    const repeat = run([gasRule], inputs.slice(1), { states: first.states });
    expect(repeat.signals.map((s) => [s.key, s.active, s.latching])).toEqual([
      ['gas_detector_alarm:h01-gd-kitchen', false, true],
      ['gas_detector_alarm:h01-gd-kitchen', true, true],
    ]);
    const lc = lifecycle();
    lc.applySignals(first.signals);
    expect(lc.ack('a1', staff).ok).toBe(true);
    expect(lc.get('a1')?.state).toBe('acknowledged');
    lc.applySignals(repeat.signals);
    expect(lc.open().map((a) => [a.id, a.rule, a.state, a.acknowledgedAt])).toEqual([['a1', 'gas_detector_alarm', 'raised', undefined]]);
    expect(lc.audit('a1')?.map((e) => e.action)).toContain('reactivated');
    // Still in alarm: ok: true restores the condition (the latched alert waits for a person).
    const restored = run([gasRule], [event(gd, T0 + 180_000, 'detector_alarm', { ok: true })], { states: repeat.states });
    expect(restored.signals.map((s) => s.active)).toEqual([false]);
    lc.close();
  });

  it('the same alarm event again (redelivered after a restart, when the duplicate memory is gone) re-sounds nothing; a later one does', () => {
    const alarm = event(gd, T0, 'detector_alarm');
    const first = run([gasRule], [alarm]);
    // The saved state, as a restart restores it.
    const again = run([gasRule], [alarm], { states: JSON.parse(JSON.stringify(first.states)) as typeof first.states });
    expect(again.signals).toEqual([]);
    const later = run([gasRule], [event(gd, T0 + 60_000, 'detector_alarm', { seq: 2 })], { states: again.states });
    expect(later.signals.map((s) => s.active)).toEqual([false, true]);
    // And that one, redelivered, nothing more.
    expect(run([gasRule], [event(gd, T0 + 60_000, 'detector_alarm', { seq: 2 })], { states: later.states }).signals).toEqual([]);
  });

  it('electrical (self-restoring): the acknowledged alert is closed as restored and a new one raised: one open alert, sounding', () => {
    const first = run([electricalRule], [event(ef, T0, 'detector_alarm')]);
    const repeat = run([electricalRule], [event(ef, T0 + 120_000, 'detector_alarm')], { states: first.states });
    const lc = lifecycle();
    lc.applySignals(first.signals);
    expect(lc.ack('a1', staff).ok).toBe(true);
    lc.applySignals(repeat.signals);
    expect(lc.open().map((a) => [a.rule, a.state, a.acknowledgedAt])).toEqual([['electrical_alarm', 'raised', undefined]]);
    lc.close();
  });
});

describe('fire-water pressure (GB 50974-2014)', () => {
  it('exactly 0.15 MPa is normal; below it for 30 s over two readings is supervisory; 0.17 for 60 s clears', () => {
    expect(run([waterPressureRule], series(wp, T0, 300, 30, () => ({ water_pressure_mpa: 0.15 }))).signals).toHaveLength(0);
    const { signals } = run([waterPressureRule], series(wp, T0, 600, 30, (t) => ({ water_pressure_mpa: t < 300 ? 0.12 : 0.3 })));
    expect(signals.map((s) => [s.key, s.signal, s.category, s.active, (s.sourceTs - T0) / 1000])).toEqual([
      ['water_pressure_low:h01-wp-plant', 'supervisory', 'fire', true, 30],
      ['water_pressure_low:h01-wp-plant', 'supervisory', 'fire', false, 360],
    ]);
  });

  it('a single low reading (pump start) raises nothing', () => {
    const { signals } = run([waterPressureRule], series(wp, T0, 300, 30, (t) => ({ water_pressure_mpa: t === 90 ? 0.05 : 0.35 })));
    expect(signals).toHaveLength(0);
  });

  it('over-pressure above 1.2 MPa is supervisory too', () => {
    const { signals } = run([waterPressureRule], series(wp, T0, 120, 30, () => ({ water_pressure_mpa: 1.3 })));
    expect(signals).toMatchObject([{ rule: 'water_pressure_high', signal: 'supervisory', active: true }]);
  });

  it('exactly 1.2 MPa is within GB 50974 §6.2.1 (greater than 1.20 MPa): nothing; above it raises, exactly 1.1 MPa for 60 s clears', () => {
    expect(run([waterPressureRule], series(wp, T0, 300, 30, () => ({ water_pressure_mpa: 1.2 }))).signals).toHaveLength(0);
    const { signals } = run([waterPressureRule], series(wp, T0, 600, 30, (t) => ({ water_pressure_mpa: t < 300 ? 1.21 : 1.1 })));
    expect(signals.map((s) => [s.rule, s.active, (s.sourceTs - T0) / 1000])).toEqual([
      ['water_pressure_high', true, 30],
      ['water_pressure_high', false, 360],
    ]);
  });

  it('pressure hovering at 0.15 MPa ±0.004 for 10 min → one raise, no flapping', () => {
    const { signals } = run([waterPressureRule], hovering(wp, 'water_pressure_mpa', 0.15, 0.004, 600, 30));
    expect(signals).toHaveLength(1);
  });

  it('a per-device threshold moves the floor (a riser needing 0.25 MPa)', () => {
    const high = { ...wp, thresholds: { water_low_mpa: 0.25, water_low_clear_mpa: 0.27 } };
    const { signals } = run([waterPressureRule], series(high, T0, 120, 30, () => ({ water_pressure_mpa: 0.2 })));
    expect(signals).toHaveLength(1);
  });
});
