import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertLine, careActionLine, dashboardFixture, NOW, statusLine, type DashboardFixture } from './dashboard-fixture.ts';
import { monthWindow } from '../../../alerts/http/stats-compute.ts';
import type { StatsResponse } from '../../../alerts/http/stats.ts';
import type { AlertMessage } from '../../../contract/payloads.ts';
import { auditRecord } from '../../../alerts/persistence/alert-store.ts';
import { bedLine, turnLine, type TurnSource } from '../../../alerts/persistence/turn-history.ts';
import { CSV_COLUMNS } from '../../../alerts/http/stats-compute.ts';

let fx: DashboardFixture;
const NOV = monthWindow('2026-11');
const S = 1000;

function alert(id: string, over: Partial<AlertMessage>): AlertMessage {
  const raisedAt = over.raisedAt ?? NOV.start + 86_400_000;
  return {
    id, homeId: 'h01', deviceId: 'h01-sd-r101', rule: 'smoke_alarm', category: 'fire', signal: 'alarm', severity: 'critical', state: 'raised',
    ts: raisedAt, sourceTs: raisedAt, raisedAt, message: { zh: '火警', en: 'Fire' }, version: 1, ...over,
  };
}

/** The lifecycle of an alert as the stored changes (one point per version). */
function lifecycle(base: AlertMessage, ackS?: number, confirm?: AlertMessage['confirmation'], resolveS?: number): string[] {
  const out = [alertLine(base)];
  let v = base;
  if (ackS !== undefined) {
    v = { ...v, version: v.version + 1, state: 'acknowledged', ts: base.raisedAt + ackS * S, acknowledgedAt: base.raisedAt + ackS * S, acknowledgedBy: 'staff-h01' };
    out.push(alertLine(v));
  }
  if (confirm !== undefined) {
    v = { ...v, version: v.version + 1, state: 'confirmed', ts: v.ts + S, confirmation: confirm, confirmedAt: v.ts + S };
    out.push(alertLine(v));
  }
  if (resolveS !== undefined) {
    v = { ...v, version: v.version + 1, state: 'resolved', ts: base.raisedAt + resolveS * S, resolvedAt: base.raisedAt + resolveS * S };
    out.push(alertLine(v));
  }
  return out;
}

/** An escalation audit entry as alerts/persistence/alert-store.ts stores it. */
function escalated(a: AlertMessage, reason: string, atS: number): string {
  return auditRecord({
    alertId: a.id, homeId: a.homeId, seq: 9, ts: a.raisedAt + atS * S, action: 'escalated', by: 'system', fromState: 'raised', toState: 'escalated',
    version: 9, escalationLevel: 1, reason,
  }).lp;
}
const H = 3_600_000;
const day = 86_400_000;
const turn = (resident: string, source: TurnSource, ts: number, intervalMin = 120): string => turnLine({ homeId: 'h01', residentId: resident, source, ts, intervalMin });
const inBed = (resident: string, ts: number, v: boolean): string => bedLine({ homeId: 'h01', residentId: resident, inBed: v, ts });
const F2 = alert('f2', { raisedAt: NOV.start + 2 * day });
const F3 = alert('f3', { raisedAt: NOV.start + 3 * day });
const C3 = alert('c3', { raisedAt: NOV.start + 7 * day, category: 'care', signal: 'care', rule: 'news2_emergency', severity: 'critical', residentId: 'h01-p02' });
const T1 = alert('t1', { raisedAt: NOV.start + 5 * day, category: 'device', signal: 'trouble', rule: 'device_offline', severity: 'low' });

beforeAll(async () => {
  fx = await dashboardFixture();
  await fx.write([
    ...lifecycle(alert('f1', {}), 10, 'false_alarm', 100),
    ...lifecycle(F2, 20, 'real_fire', 300),
    ...lifecycle(F3, 4, 'false_alarm', 60),
    // Raised late in the month, resolved early in the next: still November's.
    ...lifecycle(alert('f4', { raisedAt: NOV.end - 60 * S, signal: 'supervisory', rule: 'water_pressure_low', severity: 'high' }), 30, undefined, 600),
    ...lifecycle(alert('c1', { raisedAt: NOV.start + 4 * day, category: 'care', signal: 'care', rule: 'turn_overdue', severity: 'medium', residentId: 'h01-p01' }), 40, undefined, 400),
    // Escalated for want of an acknowledgement, then resolved by itself: missed once, not twice.
    ...lifecycle(T1, undefined, undefined, 200),
    escalated(T1, 'ack_deadline', 60),
    // Care emergencies (critical): a fall, and a NEWS2 emergency that climbed the ladder before anyone acknowledged it.
    ...lifecycle(alert('c2', { raisedAt: NOV.start + 6 * day, category: 'care', signal: 'care', rule: 'fall', severity: 'critical', residentId: 'h01-p01' }), 30, undefined, 120),
    ...lifecycle(C3, 90, undefined, 600),
    escalated(C3, 'ladder', 60),
    // Acknowledged but not confirmed in time (NFPA 72 180 s): missed. A confirmed fire going straight up is not.
    escalated(F2, 'confirm_deadline', 180),
    escalated(F3, 'confirmed_fire', 3),
    // A care alert that cleared by itself, nobody having acknowledged it.
    ...lifecycle(alert('r1', { raisedAt: NOV.start + 8 * day, category: 'care', signal: 'care', rule: 'spo2_low', severity: 'high', residentId: 'h01-p02' }), undefined, undefined, 50),
    // October's and another home's alerts are not counted for h01 in November.
    ...lifecycle(alert('old', { raisedAt: NOV.start - day }), 5, 'false_alarm', 50),
    ...lifecycle(alert('h02a', { homeId: 'h02', deviceId: 'h02-sd-r101' }), 7, 'test', 70),
    escalated(alert('h02a', { homeId: 'h02' }), 'ack_deadline', 60),
    // h01-sd-r101 online from before the month, offline for the second half of the elapsed part.
    statusLine('h01-sd-r101', NOV.start - day, true),
    statusLine('h01-sd-r101', NOV.start + (NOW - NOV.start) / 2, false),
    statusLine('h01-sd-r102', NOV.start - day, true),
    // Commissioned on the 11th: counted from its first report, online since.
    statusLine('h01-sd-r103', NOV.start + 10 * day, true),
    // h02 reports but has no turn data: its repositioning rate is "no data", not 100 %.
    statusLine('h02-sd-r101', NOV.start - day, true),
    // h01-p01 (every 120 min): in bed since October, last turned 30 min before the month.
    inBed('h01-p01', NOV.start - day, true),
    turn('h01-p01', 'sensor', NOV.start - 30 * 60 * S),
    turn('h01-p01', 'sensor', NOV.start + H), // on time
    // Then nothing for 23 h: 11 deadlines pass; staff turn at 24 h (late) and 26 h (on time).
    careActionLine('h01', 'h01-p01', 'turned', NOV.start + day),
    careActionLine('h01', 'h01-p01', 'turned', NOV.start + day + 2 * H),
    turn('h01-p01', 'staff', NOV.start + day + 2 * H), // the same staff turn through the turn history
    careActionLine('h01', 'h01-p01', 'changed', NOV.start + day),
    inBed('h01-p01', NOV.start + day + 3 * H, false), // out of bed for the rest of the month
    // h01-p04 (every 90 min), no bed sensor data: judged from staff turns alone.
    careActionLine('h01', 'h01-p04', 'turned', NOV.start + 2 * day),
    careActionLine('h01', 'h01-p04', 'turned', NOV.start + 2 * day + H),
    careActionLine('h01', 'h01-p04', 'turned', NOV.start + 2 * day + 4 * H),
    // h01-p03: known out of bed all month — nothing due.
    inBed('h01-p03', NOV.start - day, false),
  ]);
});
afterAll(() => fx.close());

describe('GET /api/stats', () => {
  it("computes a home's month from stored alert changes, status and care actions", async () => {
    const res = await fx.app.inject({ url: '/api/stats?month=2026-11', headers: fx.auth('staff-h01') });
    expect(res.statusCode).toBe(200);
    const body = res.json() as StatsResponse;
    expect(body).toMatchObject({ month: '2026-11', from: NOV.start, to: NOV.end });
    expect(body.homes).toHaveLength(1);
    const h = body.homes[0]!;
    expect(h).toMatchObject({
      homeId: 'h01',
      alerts: 9,
      byClass: { alarm: 3, supervisory: 1, trouble: 1, care: 4 },
      fireAlarms: 3,
      fireAlarmsConfirmed: 3,
      falseAlarms: 2,
      falseAlarmRate: 0.6667,
      // acks 4, 10, 20, 30, 30, 40, 90 s: nearest-rank median (4th) 30, p95 (7th) 90.
      timeToAcknowledge: { n: 7, medianS: 30, p95S: 90 },
      // resolves 50, 60, 100, 120, 200, 300, 400, 600, 600 s: median (5th) 200, p95 (9th) 600.
      timeToResolve: { n: 9, medianS: 200, p95S: 600 },
      // f1, f2, f3: acks 10, 20, 4 → median 10, p95 20; resolves 100, 300, 60 → 100, 300.
      fireEmergencies: { alerts: 3, timeToAcknowledge: { n: 3, medianS: 10, p95S: 20 }, timeToResolve: { n: 3, medianS: 100, p95S: 300 } },
      // c2, c3 (c1 and r1 are not critical).
      careEmergencies: { alerts: 2, timeToAcknowledge: { n: 2, medianS: 30, p95S: 90 }, timeToResolve: { n: 2, medianS: 120, p95S: 600 } },
      // t1, c3, f2 escalated for a passed deadline; r1, t1 resolved unacknowledged.
      escalatedUnacknowledged: 3,
      resolvedUnacknowledged: 2,
      missedAlerts: 4,
      devicesReporting: 3,
      // Device-time: r101 online 7.25 of 14.5 days, r102 14.5 of 14.5, r103 4.5 of 4.5 → 26.25 / 33.5.
      deviceOnlineRate: 0.7836,
      residentsWithTurnData: 3,
      turnsBySensor: 1,
      turnsByStaff: 5,
      // p01: 1 h on time; 11 deadlines missed before the 24 h turn; 26 h on time → 13 due, 2 on time.
      // p04: 2 d + 1 h on time; 2 d + 2 h 45 missed; from 2 d + 4 h to now (12 d 8 h later) 197 more
      // deadlines of 90 min missed → 199 due, 1 on time. p03: none due.
      turnsDue: 212,
      turnsOnTime: 3,
      turnsLate: 209,
      turnsOnTimeRate: 0.0142,
    });
  });

  it('gives the bureau every home and staff only their own', async () => {
    const all = (await fx.app.inject({ url: '/api/stats?month=2026-11', headers: fx.auth('bureau') })).json() as StatsResponse;
    // Nine care homes and (issue 15) five households.
    expect(all.homes).toHaveLength(14);
    expect(all.homes.filter((h) => h.kind === 'household').map((h) => h.homeId)).toEqual(['hh01', 'hh02', 'hh03', 'hh04', 'hh05']);
    expect(all.homes.find((h) => h.homeId === 'h02')).toMatchObject({
      alerts: 1, falseAlarms: 0, fireAlarmsConfirmed: 1, falseAlarmRate: 0, escalatedUnacknowledged: 1, missedAlerts: 1,
      deviceOnlineRate: 1, residentsWithTurnData: 0, turnsDue: 0, turnsOnTimeRate: null,
    });
    const denied = await fx.app.inject({ url: '/api/stats?month=2026-11&home=h01', headers: fx.auth('staff-h02') });
    expect(denied.statusCode).toBe(404); // like an unknown home: ids cannot be probed
    const own = (await fx.app.inject({ url: '/api/stats?month=2026-11', headers: fx.auth('staff-h02') })).json() as StatsResponse;
    expect(own.homes.map((h) => h.homeId)).toEqual(['h02']);
  });

  it('defaults to the current month and refuses a malformed one', async () => {
    const cur = (await fx.app.inject({ url: '/api/stats', headers: fx.auth('staff-h01') })).json() as StatsResponse;
    expect(cur.month).toBe('2026-11');
    for (const m of ['2026-13', '26-11', '2026-11;DROP', '']) {
      const r = await fx.app.inject({ url: `/api/stats?month=${encodeURIComponent(m)}`, headers: fx.auth('staff-h01') });
      expect(r.statusCode, m).toBe(400);
      expect(r.json()).toMatchObject({ code: 'API_BAD_REQUEST' });
    }
  });
});

describe('GET /api/stats.csv', () => {
  it('carries exactly the numbers of the JSON, one row per home', async () => {
    const json = (await fx.app.inject({ url: '/api/stats?month=2026-11', headers: fx.auth('bureau') })).json() as StatsResponse;
    const csv = await fx.app.inject({ url: '/api/stats.csv?month=2026-11', headers: fx.auth('bureau') });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.headers['content-disposition']).toContain('carewatch-stats-2026-11.csv');
    const [header, ...lines] = csv.body.trim().split('\r\n');
    const cols = header!.split(',');
    expect(cols).toEqual(CSV_COLUMNS);
    expect(lines).toHaveLength(14);
    const row = Object.fromEntries(cols.map((c, i) => [c, lines[0]!.split(',')[i]]));
    const h = json.homes[0]!;
    expect(row).toMatchObject({
      home: 'h01', month: '2026-11', alerts: String(h.alerts), alarm: '3', false_alarm_rate: String(h.falseAlarmRate),
      ack_median_s: String(h.timeToAcknowledge.medianS), ack_p95_s: String(h.timeToAcknowledge.p95S),
      resolve_p95_s: String(h.timeToResolve.p95S), device_online_rate: String(h.deviceOnlineRate), turns_on_time_rate: String(h.turnsOnTimeRate),
      fire_emergency_ack_median_s: '10', fire_emergency_ack_p95_s: '20', fire_emergency_resolve_p95_s: '300',
      care_emergency_alerts: '2', care_emergency_ack_median_s: '30', care_emergency_resolve_median_s: '120',
      missed_alerts: '4', escalated_unacknowledged: '3', resolved_unacknowledged: '2',
      turns_due: '212', turns_on_time: '3', turns_late: '209', turns_by_sensor: '1', turns_by_staff: '5', residents_with_turn_data: '3',
    });
    // A home with no data has empty cells where the JSON has null.
    const h09 = Object.fromEntries(cols.map((c, i) => [c, lines[8]!.split(',')[i]]));
    expect(h09).toMatchObject({ home: 'h09', false_alarm_rate: '', ack_median_s: '', fire_emergency_ack_median_s: '', device_online_rate: '', turns_on_time_rate: '', turns_due: '0' });
  });
});
