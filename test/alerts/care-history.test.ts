import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import type { AlertMessage } from '../../contract/payloads.ts';
import type { Alerts } from '../../alerts/alerts.ts';
import { careRules } from '../../alerts/rules/care/index.ts';
import { influxQuery, prepareInflux, testInflux, writeLines } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { loginToken, startAlerts, tempDir } from './support/harness.ts';

/**
 * Issue 4 through the real alerts composition (createAlerts: engine, care rules, lifecycle,
 * escalation, journaled writers, real InfluxDB) with a manual clock:
 * - personal baselines are learned from the resident's own history in InfluxDB and change what alerts;
 * - NEWS2 scores land in InfluxDB (`news2`);
 * - a fall, NEWS2 ≥ 7 and a long night bed exit climb the ladder duty staff → director → bureau;
 * - GET /api/residents/:id/history returns scores, alert lifecycles and care actions, own home only.
 */
const influx = testInflux('care_hist');
const registry = demoRegistry();
// 22:00 China Standard Time (14:00 UTC): inside the bed rule's default night window 21:00–06:00.
const START = Date.UTC(2026, 0, 15, 14, 0, 0);
const clock = createManualClock(START);
const MIN = 60_000;
let alerts: Alerts;
let dir: Awaited<ReturnType<typeof tempDir>>;
let seq = 0;

function device(id: string) {
  const d = registry.device(id);
  if (d === undefined) throw new Error(`no device ${id}`);
  return d;
}
function telemetry(deviceId: string, metrics: Record<string, number | boolean>): void {
  const now = clock.now();
  alerts.handleInput({ type: 'telemetry', now, device: device(deviceId), ts: now, receivedTs: now, metrics });
}
function event(deviceId: string, type: 'fall' | 'bed_exit' | 'bed_return'): void {
  const now = clock.now();
  alerts.handleInput({ type: 'event', now, device: device(deviceId), ts: now, receivedTs: now, event: { ts: now, seq: seq++, type } });
}
/** Sends the same readings every 5 s for `ms`, advancing the clock (ticks and ladder timers fire). */
function hold(deviceId: string, metrics: Record<string, number | boolean>, ms: number): void {
  for (let t = 0; t <= ms; t += 5000) {
    telemetry(deviceId, metrics);
    clock.advance(5000);
  }
}
const openFor = (residentId: string, rule: string): AlertMessage | undefined => alerts.lifecycle.open().find((a) => a.residentId === residentId && a.rule === rule);

/** Two days of 5-minute readings for h01-p01 (HR 56 ± 2), and only an hour for h01-p02. */
async function seedHistory(): Promise<void> {
  const lines: string[] = [];
  const tags = (r: string) => `telemetry,device=h01-vs-${r.slice(4)},home=h01,kind=vital_signs_monitor,resident=${r},room=r101`;
  for (let i = 1; i <= 576; i++) {
    const t = BigInt(START - i * 5 * MIN) * 1_000_000n;
    lines.push(`${tags('h01-p01')} heart_rate_bpm=${i % 2 === 0 ? 58 : 54},spo2_pct=97,seq=${i}i ${t}`);
    if (i <= 12) lines.push(`${tags('h01-p02')} heart_rate_bpm=56,seq=${i}i ${t}`);
  }
  // A probe-off reading (HR 0) must not drag the baseline down.
  lines.push(`${tags('h01-p01')} heart_rate_bpm=0,seq=9999i ${BigInt(START - 7 * MIN) * 1_000_000n + 1n}`);
  await prepareInflux(influx.url, influx.database);
  await writeLines(influx.url, influx.database, lines, 'ns');
}

beforeAll(async () => {
  await seedHistory();
  dir = await tempDir();
  alerts = await startAlerts({ influx, stateDir: dir.path, clock, rules: careRules() });
});
afterAll(async () => {
  await alerts?.close();
  await dir?.remove();
});

describe('bedridden care through the alerts process', () => {
  it('learns personal baselines from InfluxDB and alerts on them; residents without enough history keep the defaults', () => {
    const b = alerts.baselines?.current();
    expect(b?.['h01-p01']?.heart_rate_bpm).toEqual({ low: 47, high: 110 });
    expect(b?.['h01-p02']).toBeUndefined();
    // HR 45 for 35 s: below p01's learned 47, above the default band (≤40).
    hold('h01-vs-p01', { heart_rate_bpm: 45, spo2_pct: 97, resp_rate_bpm: 16, body_temp_c: 36.6 }, 35_000);
    hold('h01-vs-p02', { heart_rate_bpm: 45, spo2_pct: 97, resp_rate_bpm: 16, body_temp_c: 36.6 }, 35_000);
    const low = openFor('h01-p01', 'heart_rate_low');
    expect(low?.message.en).toContain('learned baseline');
    expect(openFor('h01-p02', 'heart_rate_low')).toBeUndefined();
  });

  it('a fall is an emergency that goes straight up the ladder', () => {
    event('h01-bed-p01', 'fall');
    const fall = openFor('h01-p01', 'fall');
    expect(fall).toMatchObject({ severity: 'critical', homeId: 'h01' });
    expect(fall?.escalationLevel).toBe(2);
  });

  it('NEWS2 ≥ 7 unacknowledged climbs duty staff → director (60 s) → bureau (180 s)', () => {
    // RR 26 (3) + SpO2 89 % Scale 1 (3) + pulse 135 (3) = 9 with temperature 36.6 (0).
    const vitals = { resp_rate_bpm: 26, spo2_pct: 89, heart_rate_bpm: 135, body_temp_c: 36.6 };
    let news2: AlertMessage | undefined;
    for (let i = 0; i < 40 && (news2 = openFor('h01-p03', 'news2'))?.severity !== 'critical'; i++) hold('h01-vs-p03', vitals, 0);
    expect(news2?.severity).toBe('critical');
    expect(news2?.escalationLevel ?? 0).toBe(0);
    const raisedAt = news2?.raisedAt ?? 0;
    hold('h01-vs-p03', vitals, raisedAt + 60_000 - clock.now());
    expect(openFor('h01-p03', 'news2')?.escalationLevel).toBe(1);
    hold('h01-vs-p03', vitals, raisedAt + 180_000 - clock.now());
    expect(openFor('h01-p03', 'news2')?.escalationLevel).toBe(2);
  });

  it('a night bed exit of a fall-risk resident alerts at once; 30 min without return escalates and climbs the ladder', () => {
    telemetry('h01-bed-p04', { bed_occupied: true });
    clock.advance(1000);
    event('h01-bed-p04', 'bed_exit');
    expect(openFor('h01-p04', 'bed_exit')?.severity).toBe('high');
    clock.advance(30 * MIN);
    const long = openFor('h01-p04', 'bed_exit_long');
    expect(long?.severity).toBe('critical');
    // Issue 11 (changed on purpose): one resident, one incident. The unacknowledged bed exit climbed the
    // ladder to the bureau within 15 min (high: director 5 min, bureau 15 min); the critical
    // bed_exit_long joins that incident, which is already with the bureau, and re-alerts it.
    const exit = openFor('h01-p04', 'bed_exit');
    expect(long?.incidentId).toBeDefined();
    expect(long?.incidentId).toBe(exit?.incidentId);
    const incident = alerts.lifecycle.incident(long!.incidentId!);
    expect(incident).toMatchObject({ kind: 'care', residentId: 'h01-p04', severity: 'critical', escalationLevel: 2 });
    expect(long?.escalationLevel).toBe(2);
    expect(alerts.lifecycle.incidentAudit(incident!.id)?.filter((e) => e.action === 'escalated').map((e) => e.escalationLevel)).toEqual([1, 2]);
    expect(alerts.lifecycle.audit(long!.id)?.filter((e) => e.action === 'escalated').map((e) => [e.escalationLevel, e.reason])).toEqual([[2, 'ladder']]);
    expect(alerts.lifecycle.incidentAudit(incident!.id)?.some((e) => e.action === 'realerted' && e.reason === 'higher_severity')).toBe(true);
  });

  it('stores NEWS2 scores in InfluxDB and serves the resident history to the own home only', async () => {
    const staff = await loginToken(alerts, 'staff-h01');
    const act = await alerts.app.inject({ method: 'POST', url: '/api/residents/h01-p01/actions', headers: { authorization: `Bearer ${staff}` }, payload: { action: 'checked', comment: 'after the fall' } });
    expect(act.statusCode).toBe(202);
    await alerts.drained();

    const rows = await influxQuery(influx.url, influx.database, `SELECT * FROM "news2" WHERE "resident" = 'h01-p03'`);
    const values = rows.flatMap((s) => s.values.map((v) => Object.fromEntries(s.columns.map((c, i) => [c, v[i]]))));
    expect(values.some((r) => r.aggregate === 9 && r.risk === 'high' && r.score_pulse === 3 && r.home === 'h01')).toBe(true);

    const url = `/api/residents/h01-p01/history?from=${START - MIN}&to=${clock.now()}`;
    const res = await alerts.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${staff}` } });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { scores: Array<{ aggregate: number; partial: boolean; missing: string[] }>; alerts: Array<{ rule: string; versions: Array<{ state: string; escalationLevel: number }> }>; actions: Array<{ action: string; by: string; comment?: string }> };
    expect(body.scores.length).toBeGreaterThan(0);
    expect(body.scores[0]?.partial).toBe(true);
    expect(body.scores[0]?.missing).toContain('consciousness');
    const fall = body.alerts.find((a) => a.rule === 'fall');
    expect(fall?.versions[0]?.state).toBe('raised');
    expect(fall?.versions.at(-1)?.escalationLevel).toBe(2);
    expect(body.alerts.some((a) => a.rule === 'heart_rate_low')).toBe(true);
    expect(body.alerts.map((a) => a.rule)).not.toContain('bed_exit_long'); // p04's alerts are not p01's
    expect(body.actions).toEqual([expect.objectContaining({ action: 'checked', by: 'staff-h01', comment: 'after the fall' })]);

    const other = await loginToken(alerts, 'staff-h02');
    expect((await alerts.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${other}` } })).statusCode).toBe(404);
    expect((await alerts.app.inject({ method: 'GET', url: '/api/residents/nobody/history', headers: { authorization: `Bearer ${staff}` } })).statusCode).toBe(404);
    expect((await alerts.app.inject({ method: 'GET', url })).statusCode).toBe(401);
    const bureau = await loginToken(alerts, 'bureau');
    expect((await alerts.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${bureau}` } })).statusCode).toBe(200);
    const bad = await alerts.app.inject({ method: 'GET', url: `/api/residents/h01-p01/history?from=10&to=5`, headers: { authorization: `Bearer ${staff}` } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'API_BAD_REQUEST' });
  });
});
