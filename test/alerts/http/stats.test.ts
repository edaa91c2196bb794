import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertLine, careActionLine, dashboardFixture, NOW, statusLine, type DashboardFixture } from './dashboard-fixture.ts';
import { monthWindow } from '../../../alerts/http/stats-compute.ts';
import type { StatsResponse } from '../../../alerts/http/stats.ts';
import { demoRegistry } from '../../support/registry.ts';
import type { AlertMessage } from '../../../contract/payloads.ts';

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

beforeAll(async () => {
  fx = await dashboardFixture();
  const day = 86_400_000;
  await fx.write([
    ...lifecycle(alert('f1', {}), 10, 'false_alarm', 100),
    ...lifecycle(alert('f2', { raisedAt: NOV.start + 2 * day }), 20, 'real_fire', 300),
    ...lifecycle(alert('f3', { raisedAt: NOV.start + 3 * day }), 4, 'false_alarm', 60),
    // Raised late in the month, resolved early in the next: still November's.
    ...lifecycle(alert('f4', { raisedAt: NOV.end - 60 * S, signal: 'supervisory', rule: 'water_pressure_low', severity: 'high' }), 30, undefined, 600),
    ...lifecycle(alert('c1', { raisedAt: NOV.start + 4 * day, category: 'care', signal: 'care', rule: 'turn_overdue', severity: 'medium', residentId: 'h01-p01' }), 40, undefined, 400),
    ...lifecycle(alert('t1', { raisedAt: NOV.start + 5 * day, category: 'device', signal: 'trouble', rule: 'device_offline', severity: 'low' })),
    // October's and another home's alerts are not counted for h01 in November.
    ...lifecycle(alert('old', { raisedAt: NOV.start - day }), 5, 'false_alarm', 50),
    ...lifecycle(alert('h02a', { homeId: 'h02', deviceId: 'h02-sd-r101' }), 7, 'test', 70),
    // h01-sd-r101 online from before the month, offline for the second half of the elapsed part.
    statusLine('h01-sd-r101', NOV.start - day, true),
    statusLine('h01-sd-r101', NOV.start + (NOW - NOV.start) / 2, false),
    statusLine('h01-sd-r102', NOV.start - day, true),
    careActionLine('h01', 'h01-p01', 'turned', NOV.start + day),
    careActionLine('h01', 'h01-p01', 'turned', NOV.start + day + 7200 * S),
    careActionLine('h01', 'h01-p01', 'changed', NOV.start + day),
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
      alerts: 6,
      byClass: { alarm: 3, supervisory: 1, trouble: 1, care: 1 },
      fireAlarms: 3,
      fireAlarmsConfirmed: 3,
      falseAlarms: 2,
      falseAlarmRate: 0.6667,
      // acks 4, 10, 20, 30, 40 s: nearest-rank median 20, p95 40.
      timeToAcknowledge: { n: 5, medianS: 20, p95S: 40 },
      timeToResolve: { n: 5, medianS: 300, p95S: 600 },
      devicesReporting: 2,
      // one device online all the elapsed month, one half of it
      deviceOnlineRate: 0.75,
      turnsRecorded: 2,
      turnsOverdue: 1,
    });
    // 14.5 days elapsed at 12:00 on the 15th (CST): 348 h, divided by each resident's interval.
    const expected = demoRegistry().residentsOfHome('h01').reduce((n, r) => n + Math.floor((348 * 60) / r.turnIntervalMin), 0);
    expect(expected).toBeGreaterThan(0);
    expect(h.turnsExpected).toBe(expected);
    expect(h.turnsOnTimeRate).toBe(Math.round(((expected - 1) / expected) * 10_000) / 10_000);
  });

  it('gives the bureau every home and staff only their own', async () => {
    const all = (await fx.app.inject({ url: '/api/stats?month=2026-11', headers: fx.auth('bureau') })).json() as StatsResponse;
    expect(all.homes).toHaveLength(9);
    expect(all.homes.find((h) => h.homeId === 'h02')).toMatchObject({ alerts: 1, falseAlarms: 0, fireAlarmsConfirmed: 1, falseAlarmRate: 0 });
    const denied = await fx.app.inject({ url: '/api/stats?month=2026-11&home=h01', headers: fx.auth('staff-h02') });
    expect(denied.statusCode).toBe(403);
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
    expect(lines).toHaveLength(9);
    const row = Object.fromEntries(cols.map((c, i) => [c, lines[0]!.split(',')[i]]));
    const h = json.homes[0]!;
    expect(row).toMatchObject({
      home: 'h01', month: '2026-11', alerts: String(h.alerts), alarm: '3', false_alarm_rate: String(h.falseAlarmRate),
      ack_median_s: String(h.timeToAcknowledge.medianS), ack_p95_s: String(h.timeToAcknowledge.p95S),
      resolve_p95_s: String(h.timeToResolve.p95S), device_online_rate: String(h.deviceOnlineRate), turns_on_time_rate: String(h.turnsOnTimeRate),
    });
    // A home with no data has empty cells where the JSON has null.
    const h09 = Object.fromEntries(cols.map((c, i) => [c, lines[8]!.split(',')[i]]));
    expect(h09).toMatchObject({ home: 'h09', false_alarm_rate: '', ack_median_s: '', device_online_rate: '' });
  });
});
