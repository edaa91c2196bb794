import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../../common/clock.ts';
import { createLifecycle, REARM_AFTER_MS } from '../../../../alerts/lifecycle.ts';
import { createBedRule } from '../../../../alerts/rules/care/bed-rule.ts';
import { demoRegistry } from '../../../support/registry.ts';
import { indexRegistry } from '../../../../contract/registry-index.ts';
import type { EventType } from '../../../../contract/payloads.ts';
import type { RuleInput } from '../../../../alerts/rules/types.ts';
import { DAY, MIN, NIGHT, S, active, cleared, ctx, event, merge, run, stream, telemetry, ticks } from './streams.ts';

const rule = createBedRule();
// h01-p01 is marked at risk of falls in config/demo-site.json; h01-p02 is not.
const BED = 'h01-bed-p01';
const BED2 = 'h01-bed-p02';

function inBed(device: string, from: number, seconds = 30) {
  return stream(device, from, from + seconds * S, () => ({ bed_occupied: true, movement_index: 5 }));
}

describe('bed exit at night', () => {
  it('alerts at once for a fall-risk resident, and clears when they are back in bed', () => {
    const inputs = [...inBed(BED, NIGHT - 30 * S), event(BED, NIGHT, 'bed_exit'), telemetry(BED, NIGHT + 5 * S, { bed_occupied: false }), event(BED, NIGHT + 4 * MIN, 'bed_return')];
    const { log } = run(rule, inputs);
    expect(log.map((l) => [l.now, l.signal.key, l.signal.active])).toEqual([
      [NIGHT, 'bed_exit:h01-p01', true],
      [NIGHT + 4 * MIN, 'bed_exit:h01-p01', false],
    ]);
    expect(log[0]?.signal).toMatchObject({ category: 'care', signal: 'care', severity: 'high', residentId: 'h01-p01', deviceId: BED });
    expect(log[0]?.signal.message.en).toContain('out of bed at night (23:00)');
  });

  it('bed_occupied telemetry alone is enough: false is an exit, true a return', () => {
    const inputs = [...inBed(BED, NIGHT - 30 * S), ...stream(BED, NIGHT, NIGHT + 60 * S, () => ({ bed_occupied: false })), ...inBed(BED, NIGHT + 60 * S, 10)];
    const { signals } = run(rule, inputs);
    expect(signals.map((s) => [s.rule, s.active])).toEqual([['bed_exit', true], ['bed_exit', false]]);
  });

  it('does not alert by day, nor at once at night for a resident not at risk of falls', () => {
    expect(run(rule, [...inBed(BED, DAY - 30 * S), event(BED, DAY, 'bed_exit')]).signals).toEqual([]);
    expect(run(rule, [...inBed(BED2, NIGHT - 30 * S), event(BED2, NIGHT, 'bed_exit')]).signals).toEqual([]);
  });

  it('takes the night window and the time zone as parameters', () => {
    // 23:00 in China is 15:00 UTC: by day for a home on UTC.
    const utc = createBedRule({ utcOffsetMin: 0 });
    expect(run(utc, [...inBed(BED, NIGHT - 30 * S), event(BED, NIGHT, 'bed_exit')]).signals).toEqual([]);
    const early = createBedRule({ nightStartMin: 9 * 60, nightEndMin: 11 * 60 });
    expect(active(run(early, [...inBed(BED, DAY - 30 * S), event(BED, DAY, 'bed_exit')]).signals)).toHaveLength(1);
  });
});

describe('not back in bed', () => {
  it('escalates after 30 min: a second, critical signal (it climbs the escalation ladder)', () => {
    const inputs = merge([...inBed(BED, NIGHT - 30 * S), event(BED, NIGHT, 'bed_exit')], ticks(NIGHT, NIGHT + 31 * MIN, 30 * S));
    const { log } = run(rule, inputs, { persist: true });
    expect(log.map((l) => [l.now, l.signal.key])).toEqual([
      [NIGHT, 'bed_exit:h01-p01'],
      [NIGHT + 30 * MIN, 'bed_exit_long:h01-p01'],
    ]);
    expect(log[1]?.signal).toMatchObject({ severity: 'critical', escalateNow: false, active: true });
    expect(log[1]?.signal.message.en).toContain('not back after 30 min');
    // Back in bed clears both.
    const back = run(rule, [event(BED, NIGHT + 40 * MIN, 'bed_return')], { state: run(rule, inputs).state });
    expect(cleared(back.signals).map((s) => s.key).sort()).toEqual(['bed_exit:h01-p01', 'bed_exit_long:h01-p01']);
  });

  it('a resident not at risk of falls, out of bed at night for 30 min, is an emergency too (with no earlier alert)', () => {
    const inputs = merge([...inBed(BED2, NIGHT - 30 * S), event(BED2, NIGHT, 'bed_exit')], ticks(NIGHT, NIGHT + 31 * MIN, 60 * S));
    const { signals } = run(rule, inputs);
    expect(signals.map((s) => [s.key, s.severity, s.escalateNow])).toEqual([['bed_exit_long:h01-p02', 'critical', false]]);
  });

  it('a short daytime absence raises nothing', () => {
    const inputs = merge([...inBed(BED, DAY - 30 * S), event(BED, DAY, 'bed_exit')], ticks(DAY, DAY + 45 * MIN, 60 * S));
    expect(run(rule, inputs).signals).toEqual([]);
  });
});

describe('fall', () => {
  it('a fall event is an emergency: critical, escalated at once, latching', () => {
    const { signals } = run(rule, [...inBed(BED2, DAY - 30 * S), event(BED2, DAY, 'fall')]);
    // Asserted and cleared at once: a fall is an event, the latch (not the rule) keeps the alert open.
    expect(signals.map((s) => [s.key, s.active])).toEqual([
      ['fall:h01-p02', true],
      ['fall:h01-p02', false],
    ]);
    expect(signals[0]).toMatchObject({ key: 'fall:h01-p02', rule: 'fall', category: 'care', severity: 'critical', escalateNow: true, latching: true, active: true });
  });

  it('a fall resolved by staff stays resolved: the re-raise hold is for conditions still active, and a fall is over', () => {
    const clock = createManualClock(DAY);
    let n = 0;
    const lc = createLifecycle({ clock, registry: demoRegistry(), onChange: () => undefined, newId: () => `f${++n}` });
    const c = ctx();
    let state = rule.initialState();
    for (const input of [...inBed(BED2, DAY - 30 * S), event(BED2, DAY, 'fall')]) {
      const r = rule.evaluate(input, state, c);
      state = r.state;
      lc.applySignals(r.signals);
    }
    expect(lc.open().map((a) => [a.rule, a.state])).toEqual([['fall', 'escalated']]);
    const staff = { username: 'staff-h01', role: 'staff' as const, homeId: 'h01' };
    expect(lc.ack('f1', staff).ok).toBe(true);
    expect(lc.resolve('f1', staff, 'helped her up, no injury, back in bed').ok).toBe(true);
    clock.advance(REARM_AFTER_MS + 60 * S);
    expect(lc.open()).toEqual([]);
    lc.close();
  });
});

describe('a bed sensor attached to no resident (a free bed, a resident not yet registered)', () => {
  // The registry allows a bed_sensor without residentId; the demo site with h01-bed-p01 unassigned.
  const site = structuredClone(demoRegistry().site);
  site.devices = site.devices.map((d) => (d.id === BED ? { ...d, residentId: undefined } : d));
  const registry = indexRegistry(site);
  const free = registry.device(BED)!;
  const input = (ts: number, type: EventType): RuleInput => ({ type: 'event', now: ts, device: free, ts, receivedTs: ts, event: { ts, seq: 0, type } });

  it('raises its fall for the room, with a fall’s severity, escalation and latch (it was dropped)', () => {
    const { signals } = run(rule, [input(DAY, 'fall')], { ctx: ctx({ registry }) });
    expect(signals.map((s) => [s.key, s.active])).toEqual([
      ['fall:h01/r101', true],
      ['fall:h01/r101', false],
    ]);
    expect(signals[0]).toMatchObject({ rule: 'fall', category: 'care', signal: 'care', severity: 'critical', escalateNow: true, latching: true, homeId: 'h01', roomId: 'r101', deviceId: BED });
    expect(signals[0]?.residentId).toBeUndefined();
    // Names the room and who is registered in it, so staff know where to go and whom to look for.
    expect(signals[0]?.message.en).toContain('Room 101');
    expect(signals[0]?.message.en).toContain('fall detected (bed sensor h01-bed-p01)');
    expect(signals[0]?.message.en).toContain('王秀英 (bed A), 李凤英 (bed B)');
  });

  it('the room-level fall reaches a person: open, escalated at once, until resolved', () => {
    const clock = createManualClock(DAY);
    const lc = createLifecycle({ clock, registry, onChange: () => undefined, newId: () => 'rf1' });
    lc.applySignals(run(rule, [input(DAY, 'fall')], { ctx: ctx({ registry }) }).signals);
    expect(lc.open().map((a) => [a.rule, a.state, a.roomId])).toEqual([['fall', 'escalated', 'r101']]);
    lc.close();
  });

  it('its presence changes raise nothing and keep no state: the exit alerts are a resident’s', () => {
    const r = run(rule, [input(NIGHT, 'bed_exit'), input(NIGHT + 40 * MIN, 'bed_return')], { ctx: ctx({ registry }) });
    expect(r.signals).toEqual([]);
    expect(r.state).toEqual(rule.initialState());
  });
});
