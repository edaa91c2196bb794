import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { IncidentMessage } from '../../../contract/incidents.ts';
import type { Actor } from '../../../alerts/access.ts';
import type { IncidentChange } from '../../../alerts/incidents/book.ts';
import { createLifecycle, type AlertChange } from '../../../alerts/lifecycle.ts';
import type { Signal } from '../../../alerts/rules/types.ts';
import { demoRegistry } from '../../support/registry.ts';
import { careSignal, fireSignal } from '../support/signals.ts';

const staff1: Actor = { username: 'staff-h01', role: 'staff', homeId: 'h01' };
const staff2: Actor = { username: 'staff-h02', role: 'staff', homeId: 'h02' };

function setup() {
  const clock = createManualClock();
  const changes: AlertChange[] = [];
  const incidentChanges: IncidentChange[] = [];
  let n = 0;
  let m = 0;
  const lc = createLifecycle({
    clock,
    registry: demoRegistry(),
    onChange: (c) => changes.push(c),
    onIncidentChange: (c) => incidentChanges.push(c),
    newId: () => `a${++n}`,
    newIncidentId: () => `i${++m}`,
  });
  return { clock, lc, changes, incidentChanges };
}

/** A fire signal of one detector in one room (what the fire rules send). */
function point(rule: string, roomId: string, over: Partial<Signal> = {}): Signal {
  const pre = rule === 'smoke_prealarm';
  return fireSignal({
    key: `${rule}:h01-sd-${roomId}`,
    rule,
    roomId,
    deviceId: `h01-sd-${roomId}`,
    severity: pre ? 'medium' : 'critical',
    latching: !pre,
    message: { zh: `${roomId} ${rule}`, en: `${roomId} ${rule}` },
    ...over,
  });
}

/** The seven cards of issue 11: one fire in r101, its neighbours confirmed, three pre-alarms. */
const SEVEN = [
  point('smoke_alarm', 'r101'),
  point('heat_ror', 'r101', { deviceId: 'h01-hd-r101', key: 'heat_ror:h01-hd-r101' }),
  point('smoke_prealarm', 'r101'),
  point('fire_confirmed', 'r102', { key: 'fire_confirmed:h01:r102' }),
  point('fire_confirmed', 'f1-corridor', { key: 'fire_confirmed:h01:f1-corridor' }),
  point('smoke_prealarm', 'r102'),
  point('smoke_prealarm', 'f1-corridor'),
];

describe('incidents: one fire, one incident', () => {
  it('seven fire signals in adjoining rooms are one incident, first alarm point first, pre-alarms held back', () => {
    const { lc, clock, incidentChanges } = setup();
    for (const s of SEVEN) {
      lc.applySignals([s]);
      clock.advance(1000);
    }
    expect(lc.openIncidents()).toHaveLength(1);
    const inc = lc.incident('i1')!;
    expect(inc).toMatchObject({ kind: 'fire', homeId: 'h01', firstAlertId: 'a1', severity: 'critical', signal: 'alarm', roomIds: ['r101', 'r102', 'f1-corridor'] });
    expect(inc.points.map((p) => p.alertId)).toEqual(['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7']);
    expect(inc.points.map((p) => p.joinedAt - inc.openedAt)).toEqual([0, 1000, 2000, 3000, 4000, 5000, 6000]);
    expect(inc.points.filter((p) => p.inhibited === 'fire_in_room').map((p) => p.alertId)).toEqual(['a3', 'a6', 'a7']);
    expect(lc.open().every((a) => a.incidentId === 'i1')).toBe(true);
    expect(lc.get('a3')).toMatchObject({ inhibited: 'fire_in_room' });
    for (const c of incidentChanges.filter((c) => c.changed)) expect(Value.Check(IncidentMessage, c.incident)).toBe(true);
  });

  it('has one countdown: the 7-point fire escalates once at 15 s; members get no countdown; inhibited points no escalation', () => {
    const { lc, clock } = setup();
    for (const s of SEVEN) lc.applySignals([s]);
    clock.advance(14_999);
    expect(lc.incident('i1')?.escalationLevel).toBe(0);
    clock.advance(1);
    expect(lc.incident('i1')).toMatchObject({ state: 'escalated', escalationLevel: 2 });
    clock.advance(10 * 60_000);
    const trail = lc.incidentAudit('i1') ?? [];
    expect(trail.filter((e) => e.action === 'escalated').map((e) => [e.reason, e.by])).toEqual([['ack_deadline', 'system']]);
    // The members record the incident's escalation (with its id); none has a countdown (no reminder) of its own.
    for (const id of ['a1', 'a2', 'a4', 'a5']) {
      expect(lc.get(id)).toMatchObject({ escalationLevel: 2 });
      expect(lc.audit(id)?.filter((e) => e.action === 'escalated').map((e) => e.incidentId)).toEqual(['i1']);
    }
    for (const id of ['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7']) expect(lc.audit(id)?.some((e) => e.action === 'reminder')).toBe(false);
    for (const id of ['a3', 'a6', 'a7']) expect(lc.get(id)).toMatchObject({ state: 'raised', escalationLevel: 0 });
    expect(trail.filter((e) => e.action === 'reminder').length).toBeGreaterThan(5);
  });

  it('one acknowledgement acknowledges every member, each member\'s own audit records it', () => {
    const { lc, clock, changes } = setup();
    for (const s of SEVEN) lc.applySignals([s]);
    clock.advance(5000);
    const r = lc.ackIncident('i1', staff1, '在路上');
    expect(r).toMatchObject({ ok: true, value: { state: 'acknowledged', acknowledgedBy: 'staff-h01' } });
    for (const a of lc.open()) {
      expect(a).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'staff-h01' });
      expect(lc.audit(a.id)?.at(-1)).toMatchObject({ action: 'acknowledged', by: 'staff-h01', incidentId: 'i1' });
    }
    expect(lc.ackIncident('i1', staff1)).toMatchObject({ ok: false, code: 'INCIDENT_ALREADY_ACKNOWLEDGED' });
    // Inhibited members changed silently: their changes are recorded, not notified.
    expect(changes.filter((c) => c.alert.id === 'a6' && c.notify)).toHaveLength(0);
    clock.advance(100_000);
    expect(lc.incident('i1')?.escalationLevel).toBe(0);
  });

  it('acting on a member alert acts on its incident: one acknowledgement for all', () => {
    const { lc } = setup();
    for (const s of SEVEN.slice(0, 2)) lc.applySignals([s]);
    expect(lc.ack('a2', staff1)).toMatchObject({ ok: true, value: { id: 'a2', state: 'acknowledged' } });
    expect(lc.get('a1')).toMatchObject({ state: 'acknowledged' });
    expect(lc.incident('i1')).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'staff-h01' });
    expect(lc.ack('a1', staff1)).toMatchObject({ ok: false, code: 'ALERT_ALREADY_ACKNOWLEDGED' });
    expect(lc.resolve('a1', staff1)).toMatchObject({ ok: false, code: 'ALERT_NOT_CONFIRMED' });
    expect(lc.confirm('a2', staff1, 'false_alarm', 'toast')).toMatchObject({ ok: true });
    expect(lc.get('a1')).toMatchObject({ confirmation: 'false_alarm' });
    expect(lc.resolve('a2', staff1, 'reset')).toMatchObject({ ok: true, value: { state: 'resolved' } });
    expect(lc.get('a1')?.state).toBe('resolved');
    expect(lc.incident('i1')).toMatchObject({ state: 'resolved', resolvedBy: 'staff-h01', confirmation: 'false_alarm' });
  });

  it('another home\'s staff cannot see or act on the incident', () => {
    const { lc } = setup();
    lc.applySignals([SEVEN[0]!]);
    expect(lc.ackIncident('i1', staff2)).toMatchObject({ ok: false, code: 'INCIDENT_NOT_FOUND' });
    expect(lc.resolveIncident('nope', staff1)).toMatchObject({ ok: false, code: 'INCIDENT_NOT_FOUND' });
  });
});

describe('incidents: re-alerting (a new alarm point on an acknowledged panel sounds again)', () => {
  it('a new fire alarm point clears the acknowledgement and the countdown runs again; a pre-alarm does not', () => {
    const { lc, clock } = setup();
    lc.applySignals([point('smoke_alarm', 'r101')]);
    clock.advance(5000);
    lc.ackIncident('i1', staff1);
    lc.applySignals([point('smoke_prealarm', 'r102')]);
    expect(lc.incident('i1')).toMatchObject({ state: 'acknowledged' });
    clock.advance(60_000);
    lc.applySignals([point('smoke_alarm', 'f1-corridor')]);
    const inc = lc.incident('i1')!;
    expect(inc.state).toBe('raised');
    expect(inc.acknowledgedAt).toBeUndefined();
    expect(lc.incidentAudit('i1')?.filter((e) => e.action === 'realerted').map((e) => [e.reason, e.alertId])).toEqual([['new_alarm_point', 'a3']]);
    clock.advance(14_999);
    expect(lc.incident('i1')?.escalationLevel).toBe(0);
    clock.advance(1);
    expect(lc.incident('i1')).toMatchObject({ state: 'escalated', escalationLevel: 2 });
    expect(lc.ackIncident('i1', staff1).ok).toBe(true);
    expect(lc.get('a3')).toMatchObject({ state: 'acknowledged' });
  });

  it('a pre-alarm that becomes a fire alarm in its room: held back, and the PAS countdown starts at the alarm', () => {
    const { lc, clock, changes } = setup();
    lc.applySignals([point('smoke_prealarm', 'r101')]);
    clock.advance(10 * 60_000);
    lc.applySignals([point('smoke_alarm', 'r101')]);
    expect(lc.get('a1')).toMatchObject({ inhibited: 'fire_in_room' });
    // The change that holds it back goes out (a client can drop the card); nothing after it.
    expect(changes.filter((c) => c.alert.id === 'a1' && c.notify).map((c) => c.alert.inhibited)).toEqual([undefined, 'fire_in_room']);
    expect(lc.incident('i1')).toMatchObject({ severity: 'critical', message: { en: 'r101 smoke_alarm' } });
    clock.advance(14_999);
    expect(lc.incident('i1')?.escalationLevel).toBe(0);
    clock.advance(1);
    expect(lc.incidentAudit('i1')?.filter((e) => e.action === 'escalated').map((e) => e.reason)).toEqual(['ack_deadline']);
  });
});

describe('incidents: resolving', () => {
  it('a latched fire needs a confirmation; confirming and resolving the incident does it to every member', () => {
    const { lc } = setup();
    for (const s of SEVEN.slice(0, 4)) lc.applySignals([s]);
    lc.ackIncident('i1', staff1);
    expect(lc.resolveIncident('i1', staff1)).toMatchObject({ ok: false, code: 'INCIDENT_NOT_CONFIRMED' });
    expect(lc.confirmIncident('i1', staff1, 'real_fire', '119 called')).toMatchObject({ ok: true, value: { confirmation: 'real_fire', escalationLevel: 2, state: 'escalated' } });
    expect(lc.incidentAudit('i1')?.at(-1)).toMatchObject({ action: 'escalated', reason: 'real_fire', by: 'staff-h01' });
    const r = lc.resolveIncident('i1', staff1, 'fire out');
    expect(r).toMatchObject({ ok: true, value: { state: 'resolved', resolvedBy: 'staff-h01' } });
    for (const id of ['a1', 'a2', 'a3', 'a4']) {
      expect(lc.get(id)).toMatchObject({ state: 'resolved', confirmation: 'real_fire', resolvedBy: 'staff-h01' });
      expect(lc.audit(id)?.at(-1)).toMatchObject({ action: 'resolved', incidentId: 'i1' });
    }
    expect(lc.openIncidents()).toHaveLength(0);
    expect(lc.resolveIncident('i1', staff1)).toMatchObject({ ok: false, code: 'INCIDENT_RESOLVED' });
  });

  it('a fall needs acknowledgement and a comment, and escalates its incident at once', () => {
    const { lc } = setup();
    lc.applySignals([careSignal({ key: 'fall:h01-p01', rule: 'fall', severity: 'critical', latching: true, escalateNow: true, deviceId: 'h01-bed-p01' })]);
    lc.applySignals([careSignal()]);
    expect(lc.openIncidents()).toHaveLength(1);
    expect(lc.incident('i1')).toMatchObject({ kind: 'care', residentId: 'h01-p01', escalationLevel: 2, state: 'escalated' });
    expect(lc.incidentAudit('i1')?.filter((e) => e.action === 'escalated').map((e) => e.reason)).toEqual(['emergency']);
    expect(lc.resolveIncident('i1', staff1, 'checked')).toMatchObject({ ok: false, code: 'INCIDENT_NOT_ACKNOWLEDGED' });
    lc.ackIncident('i1', staff1);
    expect(lc.resolveIncident('i1', staff1, ' ')).toMatchObject({ ok: false, code: 'INCIDENT_COMMENT_REQUIRED' });
    expect(lc.resolveIncident('i1', staff1, 'back in bed, no injury').ok).toBe(true);
    expect(lc.open()).toHaveLength(0);
  });

  it('a worse point on an unanswered incident keeps its countdown: the bureau no later than the milder one would have had it', () => {
    const { clock, lc } = setup();
    lc.applySignals([careSignal({ key: 'k1', severity: 'medium', sourceTs: clock.now() })]);
    clock.advance(59 * 60_000);
    expect(lc.incident('i1')?.escalationLevel).toBe(1); // the director at 15 min
    lc.applySignals([careSignal({ key: 'k2', rule: 'heart_rate_high', severity: 'high', sourceTs: clock.now() })]);
    expect(lc.openIncidents()).toHaveLength(1);
    expect(lc.incidentAudit('i1')?.filter((e) => e.action === 'realerted').map((e) => e.reason)).toEqual(['higher_severity']);
    // High's bureau step (15 min) passed long ago: the bureau now, not 15 min from the new point
    // (until session 26: 74 min, where the medium incident alone had reached it at 60).
    clock.advance(1_000);
    expect(lc.incident('i1')).toMatchObject({ severity: 'high', escalationLevel: 2, state: 'escalated' });
  });

  it('an incident whose members all cleared resolves itself', () => {
    const { lc } = setup();
    lc.applySignals([careSignal(), careSignal({ key: 'hr:h01-p01', rule: 'heart_rate_high' })]);
    expect(lc.openIncidents()).toHaveLength(1);
    lc.applySignals([careSignal({ active: false })]);
    expect(lc.incident('i1')?.state).toBe('raised');
    lc.applySignals([careSignal({ key: 'hr:h01-p01', rule: 'heart_rate_high', active: false })]);
    expect(lc.incident('i1')).toMatchObject({ state: 'resolved', resolvedBy: 'system' });
    expect(lc.incidentAudit('i1')?.at(-1)).toMatchObject({ action: 'resolved', reason: 'all_points_resolved' });
  });
});

describe('incidents: home communication loss', () => {
  it('takes in the per-device offline alerts it explains, held back with no countdown of their own', () => {
    const { lc, changes, clock } = setup();
    const base = { category: 'device' as const, signal: 'trouble' as const, homeId: 'h01', active: true, sourceTs: 1, message: { zh: 'x', en: 'x' } };
    lc.applySignals([{ ...base, key: 'home_comm_loss:h01', rule: 'home_comm_loss', severity: 'critical' }]);
    lc.applySignals([{ ...base, key: 'device_offline:h01-sd-r101', rule: 'device_offline', severity: 'high', deviceId: 'h01-sd-r101', roomId: 'r101' }]);
    expect(lc.openIncidents()).toHaveLength(1);
    expect(lc.incident('i1')).toMatchObject({ kind: 'device', points: [{ alertId: 'a1' }, { alertId: 'a2', inhibited: 'home_comm_loss' }] });
    expect(lc.incident('i1')?.deviceId).toBeUndefined();
    expect(changes.filter((c) => c.alert.id === 'a2').map((c) => c.notify)).toEqual([false]);
    clock.advance(24 * 3_600_000);
    expect(lc.get('a2')).toMatchObject({ escalationLevel: 0, state: 'raised' });
    expect(lc.get('a1')).toMatchObject({ escalationLevel: 2 });
  });
});

describe('incidents: restore', () => {
  it('comes back with its countdown, audit and members, and emits nothing', () => {
    const first = setup();
    for (const s of SEVEN.slice(0, 3)) first.lc.applySignals([s]);
    first.clock.advance(3000);
    first.lc.notePushed('a1', 'x');
    first.lc.noteIncidentPushed('i1', 'live to 1 socket(s)');
    const stored = first.lc.open().map((a) => first.lc.stored(a.id)!);
    const audit = first.lc.open().flatMap((a) => first.lc.audit(a.id) ?? []);
    const inc = first.lc.storedIncident('i1')!;
    const second = setup();
    second.clock.set(first.clock.now() + 10_000);
    second.lc.restore(stored, audit, [], { incidents: [{ ...inc, incident: { ...inc.incident, pushedAt: undefined } as typeof inc.incident }], audit: first.lc.incidentAudit('i1') });
    expect(second.changes).toHaveLength(0);
    expect(second.incidentChanges).toHaveLength(0);
    expect(second.lc.incident('i1')).toMatchObject({ pushedAt: inc.incident.pushedAt, points: [{ alertId: 'a1' }, { alertId: 'a2' }, { alertId: 'a3', inhibited: 'fire_in_room' }] });
    // 13 s of the 15 s passed before the restart: 2 s left.
    second.clock.advance(1999);
    expect(second.lc.incident('i1')?.escalationLevel).toBe(0);
    second.clock.advance(1);
    expect(second.lc.incident('i1')?.escalationLevel).toBe(2);
    expect(second.lc.incidentAudit('i1')?.at(-1)?.seq).toBe((first.lc.incidentAudit('i1')?.at(-1)?.seq ?? 0) + 1);
    // A new signal of a restored member does not open anything new.
    second.lc.applySignals([SEVEN[0]!]);
    expect(second.lc.openIncidents()).toHaveLength(1);
  });
});
