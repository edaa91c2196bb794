import { describe, expect, it } from 'vitest';
import { deviceTroubleRule } from '../../../../alerts/rules/fire/device-trouble.ts';
import { fireDetectionRule } from '../../../../alerts/rules/fire/fire-detection.ts';
import { byRule, clears, raises, run } from './harness.ts';
import { T0, device, dirtyDrift, event, hovering, series, stuckTemperature } from './shapes.ts';

const sd = device('h01-sd-r203');
const vs = device('h01-vs-p01');

describe('trouble signals (category device, self-restoring)', () => {
  it('a slowly drifting (dirty) detector → one dirty-detector trouble, and no fire signal at all', () => {
    const inputs = dirtyDrift(sd);
    const { signals } = run([fireDetectionRule, deviceTroubleRule], inputs);
    const dirty = raises(signals, byRule('dirty_detector'));
    expect(dirty).toHaveLength(1);
    expect(dirty[0]).toMatchObject({ key: 'dirty_detector:h01-sd-r203', category: 'device', signal: 'trouble' });
    expect(dirty[0]!.latching).toBeUndefined();
    // Baseline reaches 1.0 %/m some hours in, not in the first minutes.
    expect(dirty[0]!.sourceTs - T0).toBeGreaterThan(6 * 3600_000);
    expect(signals.filter((s) => s.category === 'fire')).toEqual([]);
    expect(signals.filter(byRule('dirty_detector'))).toHaveLength(1);
  });

  it('a cleaned detector clears its dirty trouble within the hold time, not hours later', () => {
    const dirty = dirtyDrift(sd);
    const cleanFrom = T0 + 24 * 3600_000 + 60_000;
    const cleaned = series(sd, cleanFrom, 3600, 60, () => ({ smoke_obscuration_pct_per_m: 0.1 }));
    const { signals } = run([deviceTroubleRule], [...dirty, ...cleaned]);
    const cleared = clears(signals, byRule('dirty_detector'));
    expect(cleared).toHaveLength(1);
    expect(cleared[0]!.sourceTs - cleanFrom).toBeLessThanOrEqual(20 * 60_000);
  });

  it('a smouldering fire does not look like a dirty detector', () => {
    const smoke = series(sd, T0, 20 * 60, 10, (t) => ({ smoke_obscuration_pct_per_m: 0.1 + (0.3 * Math.max(0, t - 60)) / 60 }));
    expect(raises(run([deviceTroubleRule], smoke).signals, byRule('dirty_detector'))).toHaveLength(0);
  });

  it('a temperature sensor stuck at one value for 30 min → one trouble, cleared when it moves again', () => {
    const { signals } = run([deviceTroubleRule], stuckTemperature(sd, 45 * 60));
    const stuck = signals.filter(byRule('stuck_sensor'));
    expect(stuck.map((s) => s.active)).toEqual([true, false]);
    expect(stuck[0]).toMatchObject({ key: 'stuck_sensor:h01-sd-r203:temperature_c', category: 'device', signal: 'trouble', severity: 'high', value: 23.4 });
    expect(stuck[0]!.sourceTs - T0).toBe(30 * 60_000);
  });

  it('a stuck value shorter than 30 min, and a constant clean-air smoke reading of 0.0, raise nothing', () => {
    const short = run([deviceTroubleRule], stuckTemperature(sd, 25 * 60)).signals;
    expect(short).toHaveLength(0);
    const clean = run([deviceTroubleRule], series(sd, T0, 3600, 10, (t) => ({ smoke_obscuration_pct_per_m: 0, temperature_c: 22 + (t % 20 === 0 ? 0.1 : 0) })));
    expect(clean.signals).toHaveLength(0);
  });

  it('low battery below 20 % raises once, clears only at 25 % (hovering at 20 ±0.2 does not flap)', () => {
    const hover = run([deviceTroubleRule], hovering(sd, 'battery_pct', 20, 0.2, 600, 10));
    expect(hover.signals).toHaveLength(1);
    expect(hover.signals[0]).toMatchObject({ key: 'low_battery:h01-sd-r203', signal: 'trouble', category: 'device', severity: 'low' });
    const swap = run([deviceTroubleRule], series(sd, T0, 120, 10, (t) => ({ battery_pct: t < 60 ? 15 : t < 90 ? 24 : 100 })));
    expect(swap.signals.map((s) => [s.active, (s.sourceTs - T0) / 1000])).toEqual([
      [true, 10],
      [false, 90],
    ]);
  });

  it('tamper, fault and failed self-test events raise trouble; the restore event (ok: true) clears it', () => {
    const { signals } = run([deviceTroubleRule], [
      event(sd, T0, 'tamper'),
      event(sd, T0 + 1000, 'tamper'),
      event(sd, T0 + 2000, 'fault', { code: 'E12', detail: 'optical chamber' }),
      event(vs, T0 + 3000, 'self_test', { ok: false }),
      event(sd, T0 + 60_000, 'tamper', { ok: true }),
      event(sd, T0 + 61_000, 'fault', { ok: true }),
      event(vs, T0 + 62_000, 'self_test', { ok: true }),
    ]);
    expect(signals.map((s) => [s.key, s.active, s.severity])).toEqual([
      ['tamper:h01-sd-r203', true, 'medium'],
      ['device_fault:h01-sd-r203', true, 'high'],
      ['self_test_failed:h01-vs-p01', true, 'medium'],
      ['tamper:h01-sd-r203', false, 'medium'],
      ['device_fault:h01-sd-r203', false, 'high'],
      ['self_test_failed:h01-vs-p01', false, 'medium'],
    ]);
    expect(signals[1]!.message.en).toContain('E12 optical chamber');
    expect(signals.every((s) => s.category === 'device' && s.signal === 'trouble')).toBe(true);
  });
});
