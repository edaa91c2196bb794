import { describe, expect, it } from 'vitest';
import { fireDetectionRule, type FireDetectionState } from '../../../../alerts/rules/fire/fire-detection.ts';
import { fireRules } from '../../../../alerts/rules/fire/index.ts';
import { byRule, clears, fireAlarm, raises, run } from './harness.ts';
import { T0, cookingSmoke, device, event, flamingFire, hovering, merge, series, smoulderingFire, steam, telemetry, ticks } from './shapes.ts';
import { demoRegistry } from '../../../support/registry.ts';
import { indexRegistry } from '../../../../contract/registry-index.ts';
import { adjacencyOf } from '../../../../alerts/incidents/grouping.ts';

const sd101 = device('h01-sd-r101');
const sd102 = device('h01-sd-r102');
const sd305 = device('h01-sd-r305');
const hdKitchen = device('h01-hd-kitchen');
const sdDining = device('h01-sd-dining');
const mcp = device('h01-mcp-f1-corridor');

const secondsAfter = (ts: number, from = T0): number => (ts - from) / 1000;

describe('fire detection on recorded shapes', () => {
  it('flaming fire (fast smoke and heat rise) → confirmed fire within about a minute of ignition', () => {
    const { signals } = run([fireDetectionRule], merge(flamingFire(sd101), ticks(T0, 240, 5)));
    const confirmed = raises(signals, byRule('fire_confirmed'));
    expect(confirmed).toHaveLength(1);
    const fire = confirmed[0]!;
    expect(fire).toMatchObject({ key: 'fire_confirmed:h01:r101', category: 'fire', signal: 'alarm', severity: 'critical', latching: true, escalateNow: true, deviceId: 'h01-sd-r101', roomId: 'r101' });
    // Ignition at 60 s; smoke passes 2 %/m at ~73 s and the heat rise is confirmed by ~100 s.
    expect(secondsAfter(fire.sourceTs)).toBeLessThanOrEqual(130);
    // Confirmation skipped the verification window: no separate single-detector smoke alarm.
    expect(raises(signals, byRule('smoke_alarm'))).toHaveLength(0);
  });

  it('smouldering fire (slow smoke, little heat) → pre-alarm first, then a verified smoke alarm, not escalated at once', () => {
    const { signals } = run([fireDetectionRule], merge(smoulderingFire(sd305), ticks(T0, 20 * 60, 5)));
    const pre = raises(signals, byRule('smoke_prealarm'));
    const alarm = raises(signals, byRule('smoke_alarm'));
    expect(pre).toHaveLength(1);
    expect(alarm).toHaveLength(1);
    expect(pre[0]!.sourceTs).toBeLessThan(alarm[0]!.sourceTs);
    expect(pre[0]).toMatchObject({ signal: 'alarm', severity: 'medium', category: 'fire' });
    expect(pre[0]!.latching).toBeUndefined();
    expect(alarm[0]).toMatchObject({ severity: 'critical', latching: true, signal: 'alarm' });
    expect(alarm[0]!.escalateNow).toBeUndefined();
    // Alarm level (4 %/m) is reached at ~13 min; verified no sooner than 60 s later.
    const firstAtLevel = signals.find((s) => s.rule === 'smoke_prealarm' && s.active)!;
    expect(alarm[0]!.sourceTs - firstAtLevel.sourceTs).toBeGreaterThanOrEqual(60_000);
    expect(raises(signals, byRule('fire_confirmed'))).toHaveLength(0);
    expect(raises(signals, byRule('heat_ror'))).toHaveLength(0);
  });

  it('cooking smoke that clears within the verification window → an unverified pre-alarm only, never a fire', () => {
    const { signals } = run([fireDetectionRule], merge(cookingSmoke(sdDining, hdKitchen), ticks(T0, 8 * 60, 5)));
    expect(raises(signals, fireAlarm)).toHaveLength(0);
    expect(raises(signals, byRule('smoke_prealarm'))).toHaveLength(1);
    const cleared = clears(signals, byRule('smoke_prealarm'));
    expect(cleared).toHaveLength(1);
    expect(cleared[0]!.message.en).toContain('unverified');
    expect(cleared[0]!.message.en).toContain('peak 5.0');
  });

  it('shower steam in an en-suite bedroom → no fire alarm', () => {
    const { signals } = run([fireDetectionRule], merge(steam(sd102), ticks(T0, 6 * 60, 5)));
    expect(raises(signals, fireAlarm)).toHaveLength(0);
    expect(raises(signals, byRule('fire_confirmed'))).toHaveLength(0);
    expect(clears(signals, byRule('smoke_prealarm'))).toHaveLength(raises(signals, byRule('smoke_prealarm')).length);
  });

  it('two detectors in adjoining rooms at alarm level → confirmed fire at once, no verification wait', () => {
    const quiet = (t: number): number => (t < 30 ? 0.1 : 5);
    const inputs = merge(
      series(sd101, T0, 60, 10, (t) => ({ smoke_obscuration_pct_per_m: quiet(t), temperature_c: 22 })),
      series(sd102, T0 + 5000, 60, 10, (t) => ({ smoke_obscuration_pct_per_m: quiet(t), temperature_c: 22 })),
    );
    const { signals } = run([fireDetectionRule], inputs);
    const fire = raises(signals, byRule('fire_confirmed'));
    expect(fire).toHaveLength(1);
    // r102's first alarm-level reading (t = 35 s) completes the pair.
    expect(fire[0]).toMatchObject({ roomId: 'r102', escalateNow: true, latching: true });
    expect(fire[0]!.sourceTs).toBe(T0 + 35_000);
    expect(fire[0]!.message.en).toContain('Room 101');
    expect(raises(signals, byRule('smoke_alarm'))).toHaveLength(0);
  });

  it('adjoining is symmetric: a room listed on one side only confirms whichever detector alarms second (it depended on the order)', () => {
    // r102 no longer lists r101; r101 still lists r102.
    const site = structuredClone(demoRegistry().site);
    for (const f of site.homes[0]!.floors) for (const r of f.rooms) if (r.id === 'r102') r.adjacent = r.adjacent.filter((x) => x !== 'r101');
    const registry = indexRegistry(site);
    expect(registry.room('h01', 'r102')!.adjacent).toEqual(['f1-corridor', 'r103', 'r101']);
    expect(registry.room('h01', 'r101')!.adjacent).toEqual(['f1-corridor', 'r102']);
    // Incident grouping's adjacency (its own both-ways reading of the registry) agrees.
    expect([...adjacencyOf(registry)('h01', 'r102')].sort()).toEqual([...registry.room('h01', 'r102')!.adjacent].sort());
    const at = (d: typeof sd101, from: number) => series(d, from, 60, 10, (t) => ({ smoke_obscuration_pct_per_m: t < 30 ? 0.1 : 5, temperature_c: 22 }));
    for (const [first, second] of [[sd101, sd102], [sd102, sd101]] as const) {
      const { signals } = run([fireDetectionRule], merge(at(first, T0), at(second, T0 + 5000)), { ctx: { registry } });
      const fire = raises(signals, byRule('fire_confirmed'));
      expect(fire).toHaveLength(1);
      // The second detector's first alarm-level reading (35 s) completes the pair, in either order.
      expect(fire[0]).toMatchObject({ roomId: second.roomId, sourceTs: T0 + 35_000 });
    }
  });

  it('two detectors at alarm level in rooms that do not adjoin → each verifies on its own', () => {
    const inputs = merge(
      series(sd101, T0, 120, 10, () => ({ smoke_obscuration_pct_per_m: 5 })),
      series(sd305, T0 + 5000, 120, 10, () => ({ smoke_obscuration_pct_per_m: 5 })),
    );
    const { signals } = run([fireDetectionRule], inputs);
    expect(raises(signals, byRule('fire_confirmed'))).toHaveLength(0);
    expect(raises(signals, byRule('smoke_alarm'))).toHaveLength(2);
  });

  it('a manual call point → confirmed fire at once', () => {
    const { signals } = run([fireDetectionRule], [event(mcp, T0, 'manual_call_point')]);
    expect(signals).toHaveLength(1);
    expect(signals[0]).toMatchObject({ key: 'fire_confirmed:h01:f1-corridor', active: true, escalateNow: true, latching: true, severity: 'critical', sourceTs: T0 });
  });

  it('a confirmed fire is never cleared by the rule as resolved: once the room is quiet it reports the condition gone, still latching', () => {
    const { signals } = run([fireDetectionRule], merge([event(mcp, T0, 'manual_call_point')], ticks(T0, 7 * 60, 5)));
    expect(signals.map((s) => [s.key, s.active, s.latching])).toEqual([
      ['fire_confirmed:h01:f1-corridor', true, true],
      ['fire_confirmed:h01:f1-corridor', false, true],
    ]);
    // The call point counts for 5 min (it has no restore message of its own).
    expect(signals[1]!.sourceTs - T0).toBeGreaterThanOrEqual(5 * 60_000);
  });

  it("a detector's own detector_alarm event → confirmed fire at once", () => {
    const { signals } = run([fireDetectionRule], [event(hdKitchen, T0, 'detector_alarm')]);
    expect(signals).toHaveLength(1);
    expect(signals[0]).toMatchObject({ key: 'fire_confirmed:h01:kitchen', rule: 'fire_confirmed', escalateNow: true });
  });

  it('heat: the kitchen uses its room override (65 °C), a bedroom the 58 °C default', () => {
    const at60 = (): { temperature_c: number } => ({ temperature_c: 60 });
    const kitchen = run([fireDetectionRule], series(hdKitchen, T0, 60, 10, at60)).signals;
    const bedroom = run([fireDetectionRule], series(sd101, T0, 60, 10, at60)).signals;
    expect(raises(kitchen, byRule('heat_fixed'))).toHaveLength(0);
    expect(raises(bedroom, byRule('heat_fixed'))).toHaveLength(1);
    const hot = run([fireDetectionRule], series(hdKitchen, T0, 60, 10, () => ({ temperature_c: 66 }))).signals;
    expect(raises(hot, byRule('heat_fixed'))).toMatchObject([{ severity: 'critical', latching: true, value: 66 }]);
  });

  it('heat: a per-device threshold beats the room and kind defaults', () => {
    const custom = { ...sd101, thresholds: { heat_fixed_c: 54 } };
    const { signals } = run([fireDetectionRule], series(custom, T0, 30, 10, () => ({ temperature_c: 55 })));
    expect(raises(signals, byRule('heat_fixed'))).toHaveLength(1);
  });

  it('rate of rise: one noisy sample is not a fire, a sustained 10 °C/min rise is', () => {
    const spike = series(hdKitchen, T0, 300, 10, (t) => ({ temperature_c: t === 150 ? 40 : 26 }));
    expect(raises(run([fireDetectionRule], spike).signals)).toHaveLength(0);
    const rise = series(hdKitchen, T0, 300, 10, (t) => ({ temperature_c: 26 + (t > 60 ? ((t - 60) * 10) / 60 : 0) }));
    const ror = raises(run([fireDetectionRule], rise).signals, byRule('heat_ror'));
    expect(ror).toHaveLength(1);
    // Needs ≥ 5 samples over ≥ 40 s of rise and two consecutive evaluations: not before ~110 s.
    expect(secondsAfter(ror[0]!.sourceTs)).toBeGreaterThanOrEqual(100);
    expect(secondsAfter(ror[0]!.sourceTs)).toBeLessThanOrEqual(150);
  });

  it('rate of rise below 8 °C/min (a warming kitchen, 5 °C/min) stays quiet', () => {
    const warm = series(hdKitchen, T0, 300, 10, (t) => ({ temperature_c: 26 + (t * 5) / 60 }));
    expect(raises(run([fireDetectionRule], warm).signals, byRule('heat_ror'))).toHaveLength(0);
  });

  it.each([
    ['heat_fixed', 'temperature_c', 58],
    ['smoke_prealarm', 'smoke_obscuration_pct_per_m', 2],
  ] as const)('%s hovering at its threshold ±0.2 for 10 min → one raise, at most one clear', (rule, metric, level) => {
    const { signals } = run([fireDetectionRule], merge(hovering(sd305, metric, level, 0.2, 600, 10), ticks(T0, 600, 5)));
    expect(raises(signals, byRule(rule))).toHaveLength(1);
    expect(clears(signals, byRule(rule)).length).toBeLessThanOrEqual(1);
    expect(signals.filter(byRule(rule)).length).toBeLessThanOrEqual(2);
  });

  it('smoke hovering at the alarm level ±0.2 verifies once and never flaps', () => {
    const { signals } = run([fireDetectionRule], merge(hovering(sd305, 'smoke_obscuration_pct_per_m', 4, 0.2, 600, 10), ticks(T0, 600, 5)));
    expect(signals.filter(byRule('smoke_alarm'))).toHaveLength(1);
    expect(signals.filter(byRule('smoke_prealarm'))).toHaveLength(1);
  });

  it('a verified alarm whose smoke clears reports the clear (latched: a person resets) and can alarm again later', () => {
    const shape = series(sd305, T0, 600, 10, (t) => ({ smoke_obscuration_pct_per_m: t < 200 ? 6 : t < 400 ? 0.1 : 6 }));
    const { signals } = run([fireDetectionRule], merge(shape, ticks(T0, 600, 5)));
    const alarm = signals.filter(byRule('smoke_alarm'));
    expect(alarm.map((s) => s.active)).toEqual([true, false, true]);
    expect(alarm.every((s) => s.latching === true)).toBe(true);
  });

  it('smoke swinging across the clear level (6.0 / 2.9 %/m every 10 s) is verified when it recurs inside the window (it stayed a pre-alarm)', () => {
    // NFPA 72 alarm verification accepts an alarm that recurs within the confirmation period.
    const swing = series(sd305, T0, 15 * 60, 10, (t) => ({ smoke_obscuration_pct_per_m: (t / 10) % 2 === 0 ? 6 : 2.9, temperature_c: 22 }));
    for (const roundTrip of [false, true]) {
      const { signals } = run([fireDetectionRule], merge(swing, ticks(T0, 15 * 60, 5)), { roundTrip });
      const alarm = raises(signals, byRule('smoke_alarm'));
      expect(alarm).toHaveLength(1);
      expect(alarm[0]).toMatchObject({ severity: 'critical', latching: true, active: true });
      // At alarm level at 0 s, below the clear level at 10 s, back at 20 s: verified then.
      expect(secondsAfter(alarm[0]!.sourceTs)).toBe(20);
      // Latched, and the swing goes on: never cleared and raised again.
      expect(signals.filter(byRule('smoke_alarm'))).toHaveLength(1);
    }
  });

  it('one brief spike to alarm level, or two spikes further apart than the window, is not verified', () => {
    const once = series(sd305, T0, 300, 10, (t) => ({ smoke_obscuration_pct_per_m: t === 10 ? 8 : 0.1 }));
    const onceSignals = run([fireDetectionRule], merge(once, ticks(T0, 300, 5))).signals;
    expect(raises(onceSignals, byRule('smoke_alarm'))).toHaveLength(0);
    expect(clears(onceSignals, byRule('smoke_prealarm'))[0]!.message.en).toContain('unverified');
    // 70 s apart: the second starts a window of its own, and nothing recurs inside either.
    const twice = series(sd305, T0, 400, 10, (t) => ({ smoke_obscuration_pct_per_m: t === 10 || t === 80 ? 8 : 0.1 }));
    expect(raises(run([fireDetectionRule], merge(twice, ticks(T0, 400, 5))).signals, fireAlarm)).toHaveLength(0);
  });

  it('the verification window completes on a tick when the detector stops reporting', () => {
    const inputs = merge(series(sd305, T0, 20, 10, () => ({ smoke_obscuration_pct_per_m: 6 })), ticks(T0, 120, 5));
    const alarm = raises(run([fireDetectionRule], inputs).signals, byRule('smoke_alarm'));
    expect(alarm).toHaveLength(1);
  });
});

describe('restart safety: rule state is plain JSON', () => {
  const shapes = {
    flaming: () => merge(flamingFire(sd101), ticks(T0, 240, 5)),
    smouldering: () => merge(smoulderingFire(sd305), ticks(T0, 20 * 60, 5)),
    cooking: () => merge(cookingSmoke(sdDining, hdKitchen), ticks(T0, 8 * 60, 5)),
  };
  it.each(Object.keys(shapes) as (keyof typeof shapes)[])('%s: a JSON round trip of every state after every input changes nothing', (name) => {
    const inputs = shapes[name]();
    const plain = run(fireRules(), inputs);
    const restarted = run(fireRules(), inputs, { roundTrip: true });
    expect(restarted.signals).toEqual(plain.signals);
    expect(plain.signals.length).toBeGreaterThan(0);
  });

  it('a restart in the middle of a verification window continues the window instead of starting over', () => {
    const inputs = merge(smoulderingFire(sd305), ticks(T0, 20 * 60, 5));
    const plain = run([fireDetectionRule], inputs);
    const verifiedAt = raises(plain.signals, byRule('smoke_alarm'))[0]!;
    // Cut 30 s before the verification completes.
    const cut = inputs.findIndex((i) => i.now >= verifiedAt.sourceTs - 30_000);
    const first = run([fireDetectionRule], inputs.slice(0, cut));
    const saved = JSON.stringify(first.states[0]);
    const restored = JSON.parse(saved) as FireDetectionState;
    expect(restored.p['h01-sd-r305']?.s?.v).toBeGreaterThan(0);
    const second = run([fireDetectionRule], inputs.slice(cut), { states: [restored] });
    const alarm = raises(second.signals, byRule('smoke_alarm'));
    expect(alarm).toHaveLength(1);
    expect(alarm[0]!.sourceTs).toBe(verifiedAt.sourceTs);
    expect(raises(second.signals, byRule('smoke_prealarm'))).toHaveLength(0);
  });
});

describe('a call point press under the engine’s ownership (ctx.inPlace)', () => {
  // A press copied the map of every detector's point, twice (the event, then the confirmed fire):
  // 222 ms a press at 102,000 devices (bench rulesatscale), 0.6–1.3 s of a fire alarm's way
  // through alerts in the 100,000-device run of session 13. Under ctx.inPlace it writes in place.
  const registry = demoRegistry();
  const detectors = registry.site.devices.filter((d) => d.kind === 'smoke_detector');
  const filled = (): FireDetectionState => {
    let state = fireDetectionRule.initialState();
    for (const d of detectors) state = fireDetectionRule.evaluate(telemetry(d, T0, { smoke_obscuration_pct_per_m: 0.1, temperature_c: 22 }), state, { registry, inPlace: true }).state;
    return state;
  };

  it('keeps the engine-owned map and raises the fire', () => {
    const state = filled();
    const before = state.p;
    const r = fireDetectionRule.evaluate(event(mcp, T0 + 1_000, 'manual_call_point'), state, { registry, inPlace: true });
    expect(r.state.p).toBe(before);
    expect(r.state.p[mcp.id]?.e).toBe(T0 + 1_000 + 40); // the engine clock of the press (shapes.ts LATENCY_MS)
    expect(r.signals.filter((s) => s.active && s.rule === 'fire_confirmed')).toHaveLength(1);
    const reset = fireDetectionRule.evaluate(event(mcp, T0 + 2_000, 'manual_call_point', { ok: true }), r.state, { registry, inPlace: true });
    expect(reset.state.p).toBe(before);
  });

  it('copies without it, leaving the given state as it was', () => {
    const state = filled();
    const snapshot = JSON.stringify(state);
    const r = fireDetectionRule.evaluate(event(mcp, T0 + 1_000, 'manual_call_point'), state, { registry });
    expect(r.state.p).not.toBe(state.p);
    expect(JSON.stringify(state)).toBe(snapshot);
    expect(r.signals.filter((s) => s.active && s.rule === 'fire_confirmed')).toHaveLength(1);
  });
});
