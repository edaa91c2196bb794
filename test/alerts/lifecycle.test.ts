import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import { AlertMessage } from '../../contract/payloads.ts';
import { indexRegistry } from '../../contract/registry-index.ts';
import type { Actor } from '../../alerts/access.ts';
import { createLifecycle, type AlertChange, type StoredAlert } from '../../alerts/lifecycle.ts';
import { demoRegistry } from '../support/registry.ts';
import { careSignal, fireSignal } from './support/signals.ts';

const staff1: Actor = { username: 'staff-h01', role: 'staff', homeId: 'h01' };
const staff2: Actor = { username: 'staff-h02', role: 'staff', homeId: 'h02' };
const bureau: Actor = { username: 'bureau', role: 'bureau' };

function setup(registry = demoRegistry()) {
  const clock = createManualClock();
  const changes: AlertChange[] = [];
  let n = 0;
  let m = 0;
  const lc = createLifecycle({ clock, registry, onChange: (c) => changes.push(c), newId: () => `a${++n}`, newIncidentId: () => `i${++m}` });
  const messages = () => changes.filter((c) => c.changed).map((c) => c.alert);
  return { clock, lc, changes, messages };
}

describe('lifecycle: raising, dedup and resolving', () => {
  it('a repeated active signal does not open a second alert', () => {
    const { lc, messages } = setup();
    lc.applySignals([fireSignal(), fireSignal({ value: 20 }), fireSignal()]);
    expect(lc.open()).toHaveLength(1);
    expect(messages()).toHaveLength(1);
    const a = messages()[0];
    expect(a).toMatchObject({ id: 'a1', state: 'raised', version: 1, homeId: 'h01', category: 'fire', escalationLevel: 0 });
    expect(a?.message.zh).toContain('烟雾');
    expect(Value.Check(AlertMessage, a)).toBe(true);
  });

  it('a non-latching alert resolves itself when its condition clears, and a new episode is a new alert', () => {
    const { lc, messages, clock } = setup();
    lc.applySignals([careSignal()]);
    clock.advance(1000);
    lc.applySignals([careSignal({ active: false })]);
    expect(lc.open()).toHaveLength(0);
    expect(messages().map((m) => [m.id, m.state, m.version, m.resolvedBy])).toEqual([
      ['a1', 'raised', 1, undefined],
      ['a1', 'resolved', 2, 'system'],
    ]);
    lc.applySignals([careSignal()]);
    expect(lc.open().map((a) => a.id)).toEqual(['a2']);
  });

  it('a latching fire alarm stays open when the condition clears and needs a person, after confirmation', () => {
    const { lc, messages, changes } = setup();
    lc.applySignals([fireSignal()]);
    lc.applySignals([fireSignal({ active: false }), fireSignal({ active: false })]);
    expect(lc.open()).toHaveLength(1);
    expect(messages()).toHaveLength(1);
    expect(changes.filter((c) => !c.changed).map((c) => c.audit.action)).toEqual(['condition_cleared']);
    expect(lc.resolve('a1', staff1)).toMatchObject({ ok: false, code: 'ALERT_NOT_CONFIRMED' });
    expect(lc.ack('a1', staff1).ok).toBe(true);
    expect(lc.confirm('a1', staff1, 'false_alarm', 'burnt toast').ok).toBe(true);
    const r = lc.resolve('a1', staff1, 'reset');
    expect(r).toMatchObject({ ok: true, value: { state: 'resolved', resolvedBy: 'staff-h01', confirmation: 'false_alarm', version: 4 } });
    expect(lc.open()).toHaveLength(0);
  });

  it('versions go up by one per change and every message fits the contract', () => {
    const { lc, messages, clock } = setup();
    lc.applySignals([fireSignal()]);
    clock.advance(3000);
    lc.ack('a1', staff1, '在路上');
    clock.advance(10_000);
    lc.confirm('a1', staff1, 'test');
    lc.resolve('a1', staff1);
    const ms = messages();
    expect(ms.map((m) => m.version)).toEqual([1, 2, 3, 4]);
    expect(ms.map((m) => m.state)).toEqual(['raised', 'acknowledged', 'confirmed', 'resolved']);
    expect(ms[1]).toMatchObject({ acknowledgedBy: 'staff-h01', acknowledgedAt: ms[0]!.raisedAt + 3000, comment: '在路上' });
    for (const m of ms) expect(Value.Check(AlertMessage, m)).toBe(true);
  });
});

describe('lifecycle: who may act', () => {
  it('another home cannot see or act on an alert; the bureau can', () => {
    const { lc } = setup();
    lc.applySignals([fireSignal()]);
    expect(lc.ack('a1', staff2)).toMatchObject({ ok: false, code: 'ALERT_NOT_FOUND' });
    expect(lc.resolve('a1', staff2)).toMatchObject({ ok: false, code: 'ALERT_NOT_FOUND' });
    expect(lc.ack('nope', staff1)).toMatchObject({ ok: false, code: 'ALERT_NOT_FOUND' });
    expect(lc.confirm('a1', staff1, 'test')).toMatchObject({ ok: false, code: 'ALERT_NOT_ACKNOWLEDGED' });
    expect(lc.ack('a1', bureau)).toMatchObject({ ok: true, value: { acknowledgedBy: 'bureau' } });
    expect(lc.ack('a1', staff1)).toMatchObject({ ok: false, code: 'ALERT_ALREADY_ACKNOWLEDGED' });
    expect(lc.confirm('a1', staff1, 'fault').ok).toBe(true);
    expect(lc.confirm('a1', staff1, 'test')).toMatchObject({ ok: false, code: 'ALERT_ALREADY_CONFIRMED' });
    expect(lc.resolve('a1', staff1).ok).toBe(true);
    expect(lc.ack('a1', staff1)).toMatchObject({ ok: false, code: 'ALERT_RESOLVED' });
  });
});

describe('lifecycle: NFPA 72 positive alarm sequence', () => {
  it('an alarm not acknowledged within 15 s goes to the bureau', () => {
    const { lc, clock, messages } = setup();
    lc.applySignals([fireSignal()]);
    clock.advance(14_999);
    expect(lc.get('a1')?.escalationLevel).toBe(0);
    clock.advance(1);
    expect(lc.get('a1')).toMatchObject({ state: 'escalated', escalationLevel: 2, version: 2 });
    expect(lc.audit('a1')?.at(-1)).toMatchObject({ action: 'escalated', reason: 'ack_deadline', by: 'system' });
    expect(messages()[1]!.ts - messages()[0]!.raisedAt).toBe(15_000);
  });

  it('an acknowledged alarm not confirmed within 180 s of acknowledgement goes to the bureau', () => {
    const { lc, clock } = setup();
    lc.applySignals([fireSignal()]);
    clock.advance(5000);
    lc.ack('a1', staff1);
    clock.advance(179_999);
    expect(lc.get('a1')).toMatchObject({ state: 'acknowledged', escalationLevel: 0 });
    clock.advance(1);
    expect(lc.get('a1')).toMatchObject({ state: 'escalated', escalationLevel: 2, acknowledgedBy: 'staff-h01' });
    expect(lc.audit('a1')?.at(-1)).toMatchObject({ reason: 'confirm_deadline' });
  });

  it('acknowledging in time and confirming a false alarm in time never escalates', () => {
    const { lc, clock } = setup();
    lc.applySignals([fireSignal()]);
    clock.advance(10_000);
    lc.ack('a1', staff1);
    clock.advance(100_000);
    lc.confirm('a1', staff1, 'false_alarm');
    clock.advance(3_600_000);
    expect(lc.get('a1')).toMatchObject({ state: 'confirmed', escalationLevel: 0, version: 3 });
  });

  it('the deadlines are per home (registry ackDeadlineS / confirmDeadlineS)', () => {
    const site = structuredClone(demoRegistry().site);
    site.homes[0]!.ackDeadlineS = 30;
    const { lc, clock } = setup(indexRegistry(site));
    lc.applySignals([fireSignal()]);
    clock.advance(29_999);
    expect(lc.get('a1')?.escalationLevel).toBe(0);
    clock.advance(1);
    expect(lc.get('a1')?.escalationLevel).toBe(2);
  });

  it('a real_fire confirmation escalates to the bureau at once', () => {
    const { lc, clock, messages } = setup();
    lc.applySignals([fireSignal()]);
    clock.advance(4000);
    lc.ack('a1', staff1);
    clock.advance(20_000);
    const r = lc.confirm('a1', staff1, 'real_fire', '厨房起火');
    expect(r).toMatchObject({ ok: true, value: { state: 'escalated', escalationLevel: 2, confirmation: 'real_fire', version: 4 } });
    expect(messages().map((m) => m.state)).toEqual(['raised', 'acknowledged', 'confirmed', 'escalated']);
    expect(lc.audit('a1')?.at(-1)).toMatchObject({ action: 'escalated', reason: 'real_fire', by: 'staff-h01' });
  });

  it('a second detector (escalateNow) escalates a new or an open alarm at once', () => {
    const { lc, messages } = setup();
    lc.applySignals([fireSignal({ key: 'multi:h01:r101', escalateNow: true })]);
    expect(messages().map((m) => [m.state, m.escalationLevel])).toEqual([
      ['raised', 0],
      ['escalated', 2],
    ]);
    lc.applySignals([fireSignal()]);
    lc.applySignals([fireSignal({ escalateNow: true })]);
    expect(lc.get('a2')).toMatchObject({ state: 'escalated', escalationLevel: 2, version: 2 });
    expect(lc.audit('a2')?.at(-1)).toMatchObject({ reason: 'confirmed_fire' });
  });
});

describe('lifecycle: escalation ladder and reminders', () => {
  // Issue 11: the countdown (reminders, ladder) belongs to the incident; its members record the escalations only.
  it('an unacknowledged high care alert reminds every minute, goes to the director at 5 min and the bureau at 15 min', () => {
    const { lc, clock } = setup();
    lc.applySignals([careSignal()]);
    clock.advance(299_999);
    expect(lc.incidentAudit('i1')?.filter((e) => e.action === 'reminder')).toHaveLength(4);
    expect(lc.audit('a1')?.filter((e) => e.action === 'reminder')).toHaveLength(0);
    expect(lc.get('a1')?.escalationLevel).toBe(0);
    clock.advance(1);
    expect(lc.get('a1')).toMatchObject({ state: 'escalated', escalationLevel: 1 });
    clock.advance(600_000);
    expect(lc.get('a1')).toMatchObject({ state: 'escalated', escalationLevel: 2 });
    const actions = lc.audit('a1')?.map((e) => e.action) ?? [];
    expect(actions.filter((a) => a === 'escalated')).toHaveLength(2);
    expect(lc.incidentAudit('i1')?.filter((e) => e.action === 'reminder').length).toBeGreaterThan(10);
  });

  it('acknowledging stops reminders and the ladder', () => {
    const { lc, clock } = setup();
    lc.applySignals([careSignal()]);
    clock.advance(61_000);
    lc.ack('a1', staff1);
    const version = lc.get('a1')?.version;
    clock.advance(24 * 3_600_000);
    expect(lc.get('a1')).toMatchObject({ state: 'acknowledged', escalationLevel: 0, version });
  });

  it('the audit trail records every transition in order, append-only', () => {
    const { lc, clock } = setup();
    lc.applySignals([fireSignal()]);
    clock.advance(16_000);
    lc.ack('a1', staff1);
    lc.confirm('a1', bureau, 'test', 'monthly test');
    lc.resolve('a1', staff1, 'done');
    const trail = lc.audit('a1') ?? [];
    expect(trail.map((e) => [e.seq, e.action, e.by, e.fromState, e.toState])).toEqual([
      [1, 'raised', 'system', 'raised', 'raised'],
      [2, 'escalated', 'system', 'raised', 'escalated'],
      [3, 'acknowledged', 'staff-h01', 'escalated', 'acknowledged'],
      [4, 'confirmed', 'bureau', 'acknowledged', 'confirmed'],
      [5, 'resolved', 'staff-h01', 'confirmed', 'resolved'],
    ]);
    expect(trail[3]).toMatchObject({ confirmation: 'test', comment: 'monthly test' });
  });
});

describe('lifecycle: restore', () => {
  it('re-arms deadlines from the stored timestamps and emits nothing on restore', () => {
    const first = setup();
    first.lc.applySignals([fireSignal()]);
    const stored: StoredAlert = { alert: first.lc.get('a1')!, key: 'smoke:h01-sd-r101', latching: true };
    const second = setup();
    second.clock.set(stored.alert.raisedAt + 10_000);
    second.lc.restore([stored], first.lc.audit('a1'));
    expect(second.changes).toHaveLength(0);
    second.lc.applySignals([fireSignal()]);
    expect(second.changes).toHaveLength(0);
    second.clock.advance(4999);
    expect(second.lc.get('a1')?.escalationLevel).toBe(0);
    second.clock.advance(1);
    expect(second.lc.get('a1')).toMatchObject({ escalationLevel: 2, version: 2 });
    expect(second.lc.audit('a1')?.map((e) => e.seq)).toEqual([1, 2]);
  });
});

describe('lifecycle: PAS applies to critical fire alarms only', () => {
  it('an unverified smoke pre-alarm (medium) climbs the ordinary ladder: director at 15 min, bureau at 1 h, never at 15 s', () => {
    const { lc, clock } = setup();
    lc.applySignals([fireSignal({ key: 'smoke_prealarm:h01-sd-r101', rule: 'smoke_prealarm', severity: 'medium', latching: false })]);
    clock.advance(15_000);
    expect(lc.get('a1')).toMatchObject({ state: 'raised', escalationLevel: 0 });
    clock.advance(900_000 - 15_000);
    expect(lc.get('a1')).toMatchObject({ state: 'escalated', escalationLevel: 1 });
    clock.advance(3_600_000 - 900_000);
    expect(lc.get('a1')).toMatchObject({ escalationLevel: 2 });
    expect(lc.audit('a1')?.filter((e) => e.action === 'escalated').map((e) => e.reason)).toEqual(['ladder', 'ladder']);
  });

  it('a critical fire alarm reminds every 30 s until someone acknowledges, also after reaching the bureau', () => {
    const { lc, clock } = setup();
    lc.applySignals([fireSignal()]);
    clock.advance(120_000);
    const reminders = lc.incidentAudit('i1')?.filter((e) => e.action === 'reminder').length ?? 0;
    expect(reminders).toBeGreaterThanOrEqual(3);
    lc.ack('a1', bureau);
    const version = lc.incident('i1')?.version;
    clock.advance(120_000);
    expect(lc.incidentAudit('i1')?.filter((e) => e.action === 'reminder')).toHaveLength(reminders);
    expect(lc.incident('i1')?.version).toBe(version);
  });
});

describe('lifecycle: care alerts (issue 4)', () => {
  const fall = (over = {}) =>
    careSignal({ key: 'fall:h01-p01', rule: 'fall', severity: 'critical', latching: true, escalateNow: true, deviceId: 'h01-bed-p01', message: { zh: '跌倒', en: 'Fall' }, ...over });

  it('a fall (latching care) is resolved by staff after acknowledging it, with a comment saying what was done', () => {
    const { lc, messages } = setup();
    lc.applySignals([fall()]);
    expect(lc.get('a1')).toMatchObject({ state: 'escalated', escalationLevel: 2 });
    expect(lc.resolve('a1', staff1, 'checked')).toMatchObject({ ok: false, code: 'ALERT_NOT_ACKNOWLEDGED' });
    expect(lc.ack('a1', staff1).ok).toBe(true);
    expect(lc.resolve('a1', staff1)).toMatchObject({ ok: false, code: 'ALERT_COMMENT_REQUIRED' });
    expect(lc.resolve('a1', staff1, '   ')).toMatchObject({ ok: false, code: 'ALERT_COMMENT_REQUIRED' });
    const r = lc.resolve('a1', staff1, 'helped back to bed, no injury, doctor called');
    expect(r).toMatchObject({ ok: true, value: { state: 'resolved', resolvedBy: 'staff-h01', comment: 'helped back to bed, no injury, doctor called' } });
    expect(messages().at(-1)?.confirmation).toBeUndefined();
    expect(lc.open()).toHaveLength(0);
  });

  it('a fire alarm still needs a fire confirmation; a care comment is not enough', () => {
    const { lc } = setup();
    lc.applySignals([fireSignal()]);
    lc.ack('a1', staff1);
    expect(lc.resolve('a1', staff1, 'looked, nothing')).toMatchObject({ ok: false, code: 'ALERT_NOT_CONFIRMED' });
  });

  it('a care alert resolved by hand while its condition is still active comes back as a new alert after the hold', () => {
    const { lc, clock, messages } = setup();
    lc.applySignals([careSignal({ value: 86 })]);
    lc.ack('a1', staff1);
    clock.advance(10_000);
    expect(lc.resolve('a1', staff1, 'repositioned the probe').ok).toBe(true);
    expect(lc.audit('a1')?.at(-1)).toMatchObject({ action: 'resolved', reason: 'condition_still_active' });
    // Still-active readings during the hold do not open a new alert...
    lc.applySignals([careSignal({ value: 85 })]);
    clock.advance(299_999);
    expect(lc.open()).toHaveLength(0);
    // ...but the condition is not forgotten.
    clock.advance(1);
    expect(lc.open().map((a) => [a.id, a.state, a.value])).toEqual([['a2', 'raised', 85]]);
    expect(lc.audit('a2')?.[0]).toMatchObject({ action: 'raised', reason: 'still_active_after_manual_resolve' });
    expect(messages().filter((m) => m.state === 'raised').map((m) => m.id)).toEqual(['a1', 'a2']);
  });

  it('a condition that clears during the hold is not raised again', () => {
    const { lc, clock } = setup();
    lc.applySignals([careSignal()]);
    lc.ack('a1', staff1);
    lc.resolve('a1', staff1, 'changed');
    clock.advance(60_000);
    lc.applySignals([careSignal({ active: false })]);
    clock.advance(3_600_000);
    expect(lc.open()).toHaveLength(0);
    // A new episode afterwards is a new alert at once.
    lc.applySignals([careSignal()]);
    expect(lc.open().map((a) => a.id)).toEqual(['a2']);
  });

  it('a latched fire alarm whose condition already cleared is resolved for good', () => {
    const { lc, clock } = setup();
    lc.applySignals([fireSignal()]);
    lc.ack('a1', staff1);
    lc.applySignals([fireSignal({ active: false })]);
    lc.confirm('a1', staff1, 'test');
    lc.resolve('a1', staff1);
    expect(lc.audit('a1')?.at(-1)?.reason).toBeUndefined();
    clock.advance(3_600_000);
    expect(lc.open()).toHaveLength(0);
  });
});

describe('lifecycle: delivery timing', () => {
  it('records the first push once, without a new version, and restores it from the audit trail', () => {
    const first = setup();
    first.lc.applySignals([fireSignal()]);
    first.clock.advance(7);
    first.lc.notePushed('a1', 'live to 2 socket(s)');
    first.clock.advance(100);
    first.lc.notePushed('a1', 'again');
    const a = first.lc.get('a1');
    expect(a).toMatchObject({ version: 1, pushedAt: a!.raisedAt + 7 });
    expect(first.lc.audit('a1')?.map((e) => [e.action, e.version])).toEqual([
      ['raised', 1],
      ['pushed', 1],
    ]);
    expect(first.changes.at(-1)).toMatchObject({ changed: false, audit: { action: 'pushed', reason: 'live to 2 socket(s)' } });
    expect(Value.Check(AlertMessage, a)).toBe(true);
    // Persistence holds version 1 without pushedAt (it was stored before the push) plus the audit.
    const { pushedAt: _dropped, ...stored } = a!;
    const second = setup();
    second.lc.restore([{ alert: stored, key: 'smoke:h01-sd-r101', latching: true }], first.lc.audit('a1'));
    expect(second.lc.get('a1')?.pushedAt).toBe(a!.pushedAt);
    second.lc.ack('a1', staff1);
    expect(second.changes.at(-1)?.alert).toMatchObject({ version: 2, pushedAt: a!.pushedAt });
  });
});
