import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Disablement, IncidentMessage, IncidentPoint } from '../../contract/incidents.ts';
import type { AlertMessage } from '../../contract/payloads.ts';
// The page's own module (plain JS, no DOM, no clock): what the browser runs.
// @ts-expect-error -- a plain JS module of the page, without type declarations
import * as model from '../../dashboards/app/js/incident-model.js';

/**
 * The page's incident model (issue 11) alone: stale versions dropped, open ones kept, a re-sync
 * removes what was resolved while away; the one countdown on the incident's fields; the sound
 * follows incidents (unacknowledged, or a point that joined after the acknowledgement).
 */
interface Model {
  apply(i: IncidentMessage): void;
  replaceOpen(list: IncidentMessage[], keep?: (i: IncidentMessage) => boolean): void;
  get(id: string): IncidentMessage | undefined;
  all(): IncidentMessage[];
  open(): IncidentMessage[];
}
const m = model as {
  createIncidentModel(onChange: () => void): Model;
  incidentPasPhase(i: IncidentMessage, now: number, home?: { ackDeadlineS?: number; confirmDeadlineS?: number }, ackOf?: (id: string) => number | undefined): { phase: string; remainingMs: number; totalS: number } | undefined;
  waitingSoundClasses(i: IncidentMessage, silenced?: Set<string>): string[];
  newPoints(i: IncidentMessage, silenced?: Set<string>, ackOf?: (id: string) => number | undefined): IncidentPoint[];
  firstPoint(i: IncidentMessage): IncidentPoint | undefined;
  laterPoints(i: IncidentMessage): IncidentPoint[];
  standaloneAlerts(alerts: Partial<AlertMessage>[], incidents: { get(id: string): IncidentMessage | undefined }): Partial<AlertMessage>[];
  isCall119Incident(i: IncidentMessage): boolean;
  activeDisablements(list: Disablement[], now: number): Disablement[];
  disablementFor(list: Disablement[], where: { homeId: string; roomId?: string; deviceId?: string }): Disablement | undefined;
};

const T0 = 1_800_000_000_000;

function point(n: number, over: Partial<IncidentPoint> = {}): IncidentPoint {
  return {
    alertId: `a${n}`, rule: 'smoke_alarm', signal: 'alarm', severity: 'critical', state: 'raised', deviceId: `h01-sd-${n}`, roomId: `r${n}`,
    joinedAt: T0 + n * 1000, sourceTs: T0 + n * 1000, message: { zh: `烟感火警 ${n}`, en: `Smoke alarm ${n}` }, ...over,
  };
}

function incident(over: Partial<IncidentMessage> = {}): IncidentMessage {
  const points = over.points ?? [point(1)];
  return {
    id: 'i1', homeId: 'h01', kind: 'fire', roomIds: points.flatMap((p) => (p.roomId ? [p.roomId] : [])), severity: 'critical', signal: 'alarm', state: 'raised',
    version: 1, ts: T0, openedAt: points[0]!.joinedAt, firstAlertId: points[0]!.alertId, points, message: points[0]!.message, ...over,
  };
}

describe('incident model', () => {
  it('keeps the highest version whatever order the copies arrive in', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 20 }), (versions) => {
        let changes = 0;
        const store = m.createIncidentModel(() => changes++);
        for (const v of versions) store.apply(incident({ version: v, state: v % 2 ? 'raised' : 'acknowledged' }));
        expect(store.get('i1')!.version).toBe(Math.max(...versions));
        // A change is announced only when a newer copy arrives.
        const rises = versions.filter((v, k) => versions.slice(0, k).every((w) => w < v)).length;
        expect(changes).toBe(rises);
      }),
    );
  });

  it('re-syncs from a snapshot: drops what was resolved while away, adds what is new, keeps what the stream cannot carry', () => {
    const store = m.createIncidentModel(() => {});
    store.apply(incident({ id: 'gone' }));
    store.apply(incident({ id: 'kept', version: 5 }));
    store.apply(incident({ id: 'care', kind: 'care', signal: 'care', severity: 'high' }));
    store.replaceOpen([incident({ id: 'kept', version: 3 }), incident({ id: 'new' })], (i) => i.kind === 'care');
    expect(store.all().map((i) => i.id).sort()).toEqual(['care', 'kept', 'new']);
    // The older copy in the snapshot does not undo the newer one held.
    expect(store.get('kept')!.version).toBe(5);
  });

  it('puts the first alarm point first and the others in join order', () => {
    const i = incident({ points: [point(1), point(2), point(3)], firstAlertId: 'a1' });
    expect(m.firstPoint(i)!.alertId).toBe('a1');
    expect(m.laterPoints(i).map((p) => p.alertId)).toEqual(['a2', 'a3']);
  });

  it('counts one countdown on the incident: acknowledge from its opening, confirm from its acknowledgement, with the home deadlines', () => {
    const home = { ackDeadlineS: 20, confirmDeadlineS: 240 };
    const raised = incident({ points: [point(1), point(2)] });
    expect(m.incidentPasPhase(raised, raised.openedAt + 5000, home)).toEqual({ phase: 'ack', remainingMs: 15_000, totalS: 20 });
    // A point joining later does not restart the acknowledgement time.
    expect(m.incidentPasPhase({ ...raised, points: [...raised.points, point(9, { joinedAt: raised.openedAt + 10_000 })] }, raised.openedAt + 12_000, home)!.remainingMs).toBe(8000);
    const acked = { ...raised, state: 'acknowledged' as const, acknowledgedAt: raised.openedAt + 7000 };
    expect(m.incidentPasPhase(acked, raised.openedAt + 67_000, home)).toEqual({ phase: 'confirm', remainingMs: 180_000, totalS: 240 });
    expect(m.incidentPasPhase({ ...acked, confirmation: 'false_alarm' }, raised.openedAt + 67_000, home)).toBeUndefined();
    // Without the home's own deadlines: NFPA 72's 15 s.
    expect(m.incidentPasPhase(raised, raised.openedAt, undefined)!.totalS).toBe(15);
    // A pre-alarm incident has no positive alarm sequence; it starts when a fire alarm point joins.
    const pre = incident({ severity: 'medium', points: [point(1, { severity: 'medium', rule: 'smoke_prealarm' })] });
    expect(m.incidentPasPhase(pre, pre.openedAt, home)).toBeUndefined();
    const grown = { ...pre, severity: 'critical' as const, points: [...pre.points, point(4)] };
    expect(m.incidentPasPhase(grown, point(4).joinedAt, home)!.remainingMs).toBe(20_000);
    // Re-alerted by the server (a new fire alarm point after the acknowledgement cleared it): the
    // countdown runs again from that point, as the incident book's alertedAt.
    const realerted = incident({ points: [point(1, { state: 'acknowledged' }), point(2, { state: 'acknowledged' }), point(5), point(6)] });
    expect(m.incidentPasPhase(realerted, point(5).joinedAt + 4000, home)!.remainingMs).toBe(16_000);
    expect(m.incidentPasPhase({ ...realerted, alertedAt: point(6).joinedAt } as IncidentMessage, point(6).joinedAt, home)!.remainingMs).toBe(20_000);
    // Escalated members keep their state 'escalated' when acknowledged: their alerts say when.
    const escalated = incident({ state: 'escalated', escalationLevel: 2, points: [point(1, { state: 'escalated' }), point(2, { state: 'escalated' }), point(5, { state: 'escalated' }), point(6, { state: 'escalated' })] });
    const ackOf = (id: string): number | undefined => (id === 'a1' || id === 'a2' ? point(2).joinedAt + 500 : undefined);
    expect(m.incidentPasPhase(escalated, point(5).joinedAt + 4000, home, ackOf)!.remainingMs).toBe(16_000);
    expect(m.newPoints(escalated, new Set(), ackOf).map((p) => p.alertId)).toEqual(['a5', 'a6']);
    // Never acknowledged: the countdown runs from the opening, whatever joined since.
    expect(m.incidentPasPhase(escalated, point(5).joinedAt, home, () => undefined)!.remainingMs).toBe(T0 + 1000 + 20_000 - point(5).joinedAt);
    // Nothing but held-back points: no countdown of its own.
    expect(m.incidentPasPhase(incident({ points: [point(1, { inhibited: 'home_comm_loss' })] }), T0, home)).toBeUndefined();
  });

  it('names the points that joined after the last acknowledgement as new', () => {
    const realerted = incident({ points: [point(1, { state: 'acknowledged' }), point(2, { state: 'acknowledged' }), point(3), point(4, { signal: 'trouble', severity: 'low' })] });
    expect(m.newPoints(realerted).map((p) => p.alertId)).toEqual(['a3']);
    expect(m.newPoints(incident({ points: [point(1), point(2)] }))).toEqual([]);
    // Joined in the same millisecond as the acknowledgement, but not acknowledged by it: new.
    const ackAt = point(3).joinedAt;
    const same = incident({ state: 'escalated', points: [point(1, { state: 'escalated' }), point(3, { state: 'escalated' }), point(3, { alertId: 'late', state: 'escalated' })] });
    expect(m.newPoints(same, new Set(), (id: string) => (id === 'late' ? undefined : ackAt)).map((p) => p.alertId)).toEqual(['late']);
  });

  it('sounds while unacknowledged, stops on the acknowledgement, sounds again for a new alarm point until silenced', () => {
    const raised = incident({ points: [point(1), point(2)] });
    expect(m.waitingSoundClasses(raised)).toEqual(['alarm']);
    const acked = { ...raised, state: 'acknowledged' as const, acknowledgedAt: point(2).joinedAt + 500, points: raised.points.map((p) => ({ ...p, state: 'acknowledged' as const })) };
    expect(m.waitingSoundClasses(acked)).toEqual([]);
    const spread = { ...acked, points: [...acked.points, point(3, { joinedAt: acked.acknowledgedAt + 1000 })] };
    expect(m.waitingSoundClasses(spread)).toEqual(['alarm']);
    expect(m.waitingSoundClasses(spread, new Set(['a3']))).toEqual([]);
    // A held-back point never sounds on its own.
    const held = { ...acked, points: [...acked.points, point(4, { joinedAt: acked.acknowledgedAt + 1000, signal: 'trouble', severity: 'low', inhibited: 'fire_in_room' })] };
    expect(m.waitingSoundClasses(held)).toEqual([]);
    expect(m.waitingSoundClasses({ ...raised, state: 'resolved' })).toEqual([]);
  });

  it('gives an alert a card of its own only without an open incident to show it', () => {
    const store = m.createIncidentModel(() => {});
    store.apply(incident());
    store.apply(incident({ id: 'done', state: 'resolved' }));
    const alerts = [{ id: 'old' }, { id: 'member', incidentId: 'i1' }, { id: 'early', incidentId: 'not-yet' }, { id: 'orphan', incidentId: 'done' }];
    expect(m.standaloneAlerts(alerts, store).map((a) => a.id)).toEqual(['old', 'early', 'orphan']);
  });

  it('is a call-119 incident when with the bureau, until found false', () => {
    expect(m.isCall119Incident(incident())).toBe(false);
    expect(m.isCall119Incident(incident({ escalationLevel: 2 }))).toBe(true);
    expect(m.isCall119Incident(incident({ escalationLevel: 2, confirmation: 'false_alarm' }))).toBe(false);
    expect(m.isCall119Incident(incident({ escalationLevel: 2, kind: 'care', signal: 'care' }))).toBe(false);
  });

  it('finds the narrowest disablement covering a device and drops ended ones', () => {
    const d = (id: string, scope: Disablement['scope'], targetId: string, over: Partial<Disablement> = {}): Disablement => ({
      id, homeId: 'h01', scope, targetId, mode: 'test', reason: '年检', by: 'director-h01', startedAt: T0, until: T0 + 3_600_000, suppressedSignals: 0, version: 1, ...over,
    });
    const list = [d('home', 'home', 'h01', { until: T0 + 60_000 }), d('room', 'room', 'r101', { mode: 'disabled' }), d('dev', 'device', 'h01-sd-r101'), d('ended', 'device', 'h01-sd-r102', { endedAt: T0 + 1 })];
    const active = m.activeDisablements(list, T0 + 1000);
    expect(active.map((x) => x.id)).toEqual(['home', 'room', 'dev']);
    expect(m.disablementFor(active, { homeId: 'h01', roomId: 'r101', deviceId: 'h01-sd-r101' })!.id).toBe('dev');
    expect(m.disablementFor(active, { homeId: 'h01', roomId: 'r101', deviceId: 'h01-hd-r101' })!.id).toBe('room');
    expect(m.disablementFor(active, { homeId: 'h01', roomId: 'r102', deviceId: 'h01-sd-r102' })!.id).toBe('home');
    expect(m.disablementFor(active, { homeId: 'h02', roomId: 'r101', deviceId: 'h02-sd-r101' })).toBeUndefined();
    // Past its end time it is no longer in force, even before the server says so.
    expect(m.activeDisablements(list, T0 + 60_000).map((x) => x.id)).toEqual(['room', 'dev']);
  });
});
