import { describe, expect, it } from 'vitest';
import { INHIBITION_RULES, inhibitionOf, isFireAlarmPoint, type InhibitionSubject } from '../../../alerts/incidents/inhibition.ts';

const a = (id: string, over: Partial<InhibitionSubject>): InhibitionSubject => ({ id, homeId: 'h01', category: 'fire', signal: 'alarm', rule: 'smoke_alarm', roomId: 'r101', ...over });
const pre = a('pre', { rule: 'smoke_prealarm' });

describe('inhibition rules as data', () => {
  it('an alarm-class fire signal in the room holds back the room\'s pre-alarm, with the reason and the sources kept', () => {
    for (const rule of ['smoke_alarm', 'fire_confirmed', 'heat_fixed', 'heat_ror', 'gas_high']) {
      expect(inhibitionOf(pre, [a('src', { rule })])).toEqual({ reason: 'fire_in_room', by: ['src'] });
    }
    expect(inhibitionOf(pre, [a('s1', {}), a('s2', { rule: 'fire_confirmed' })])?.by).toEqual(['s1', 's2']);
  });

  it('does not hold back across rooms or homes, by a pre-alarm, a supervisory signal, itself or an inhibited source', () => {
    expect(inhibitionOf(pre, [a('src', { roomId: 'r102' })])).toBeUndefined();
    expect(inhibitionOf(pre, [a('src', { homeId: 'h02' })])).toBeUndefined();
    expect(inhibitionOf(pre, [a('other-pre', { rule: 'smoke_prealarm' })])).toBeUndefined();
    expect(inhibitionOf(pre, [a('src', { signal: 'supervisory', rule: 'water_pressure_low' })])).toBeUndefined();
    expect(inhibitionOf(pre, [pre])).toBeUndefined();
    expect(inhibitionOf(pre, [{ ...a('src', {}), inhibited: 'fire_in_room' }])).toBeUndefined();
    // A fire alarm itself is never the target of a room rule.
    expect(inhibitionOf(a('x', {}), [a('y', { rule: 'fire_confirmed' })])).toBeUndefined();
  });

  it('a home communication loss holds back the home\'s per-device offline alerts, not other troubles or other homes', () => {
    const loss = a('loss', { category: 'device', signal: 'trouble', rule: 'home_comm_loss', roomId: undefined });
    const offline = a('off', { category: 'device', signal: 'trouble', rule: 'device_offline', deviceId: 'd1' });
    expect(inhibitionOf(offline, [loss])).toEqual({ reason: 'home_comm_loss', by: ['loss'] });
    expect(inhibitionOf({ ...offline, rule: 'low_battery' }, [loss])).toBeUndefined();
    expect(inhibitionOf(offline, [{ ...loss, homeId: 'h02' }])).toBeUndefined();
  });

  it('every reason in the rules is a contract reason, and pre-alarms are not fire alarm points', () => {
    expect(INHIBITION_RULES.map((r) => r.reason).sort()).toEqual(['fire_in_room', 'home_comm_loss']);
    expect(isFireAlarmPoint(pre)).toBe(false);
    expect(isFireAlarmPoint(a('x', {}))).toBe(true);
    expect(isFireAlarmPoint(a('x', { signal: 'supervisory' }))).toBe(false);
  });
});
