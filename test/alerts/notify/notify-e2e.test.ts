import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { createAlerts, type Alerts } from '../../../alerts/alerts.ts';
import { verifyWebhookSignature, SIGNATURE_HEADER } from '../../../alerts/notify/adapters.ts';
import { parseNotifyConfig, type NotifyConfig } from '../../../alerts/notify/config.ts';
import type { IncidentAuditEntry } from '../../../alerts/incidents/book.ts';
import type { RegistryIndex } from '../../../contract/registry-index.ts';
import type { Roster } from '../../../contract/registry.ts';
import { deviceTopic } from '../../../contract/topics.ts';
import { influxQuery, testInflux } from '../../support/influx-db.ts';
import { startTestBroker, type TestBroker } from '../support/aedes.ts';
import { loginToken, tempDir, testAlertsConfig, until } from '../support/harness.ts';
import { fireSignal } from '../support/signals.ts';
import { testRules } from '../support/test-rules.ts';
import { H01_ROSTER, rosterRegistry } from './fixtures.ts';
import { startReceiver, type Receiver } from './receiver.ts';

/**
 * Issue 15 end to end: a real alerts process (in-process, real broker, real InfluxDB) with a roster
 * and webhook channels to a local receiver. A smoke alarm from a device reaches the staff on duty;
 * unacknowledged, the escalation reaches the director (and the bureau); an acknowledgement stops
 * every further notification (a pending retry included); the incident's audit lists each attempt.
 */

const SECRET = 'e2e-webhook-secret-0123456789';
const influxE2e = testInflux('notify_e2e');
// Its own database: the first test's open incident must not be restored into the second.
const influxRoster = testInflux('notify_roster');
const influxRealert = testInflux('notify_realert');
// 2026-01-01 01:00 UTC = Thursday 09:00 China Standard Time: the day shift is on.
const clock = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
let broker: TestBroker;
let device: MqttClient;
let duty: Receiver;
let mgmt: Receiver;
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];

const roster = H01_ROSTER;

const registry = (): RegistryIndex => rosterRegistry([roster]);

function notifyConfig(): NotifyConfig {
  return parseNotifyConfig({
    baseUrl: 'https://carewatch.example.cn',
    channels: [
      { id: 'duty', type: 'webhook', url: `${duty.url}/duty`, secret: SECRET },
      { id: 'mgmt', type: 'webhook', url: `${mgmt.url}/mgmt`, secret: SECRET, policy: { baseDelayMs: 10_000 } },
    ],
    routes: [
      { severities: ['critical', 'high'], level: 0, channels: ['duty'] },
      { severities: ['critical', 'high'], level: 1, channels: ['mgmt'] },
      { severities: ['critical'], level: 2, channels: ['mgmt'] },
    ],
  });
}

async function start(stateDir: string, mqttUrl?: string, influx = influxE2e): Promise<Alerts> {
  const alerts = createAlerts({
    config: testAlertsConfig({ influx, stateDir, ...(mqttUrl !== undefined ? { mqttUrl } : {}) }),
    registry: registry(),
    logger: pino({ level: process.env.ALERTS_TEST_LOG ?? 'silent' }),
    rules: testRules(),
    mqtt: mqttUrl !== undefined,
    clock,
    notify: notifyConfig(),
    notifyRandom: () => 1,
  });
  await alerts.start();
  return alerts;
}

const recipientOf = (body: string): string | undefined => (JSON.parse(body) as { recipients: Array<{ address?: string }> }).recipients[0]?.address;
const notes = (a: Alerts, id: string): IncidentAuditEntry[] => (a.lifecycle.incidentAudit(id) ?? []).filter((e) => e.action === 'notified' || e.action === 'notify_failed');

beforeAll(async () => {
  broker = await startTestBroker();
  device = await mqtt.connectAsync(broker.url, { username: 'publisher', password: 'pw', clientId: 'notify-device', protocolVersion: 4 });
  duty = await startReceiver();
  mgmt = await startReceiver();
});
afterAll(async () => {
  await device.endAsync();
  await broker.close();
  await duty.close();
  await mgmt.close();
  for (const d of dirs) await d.remove();
});

describe('notifications end to end', () => {
  it('smoke alarm → duty nurse; unacknowledged → director and bureau; acknowledged → nothing more; all audited', async () => {
    const dir = await tempDir('notify-');
    dirs.push(dir);
    duty.requests.length = 0;
    mgmt.requests.length = 0;
    duty.reply = () => ({ status: 200 });
    // The bureau's endpoint is down: its notification is retried until the acknowledgement.
    mgmt.reply = (r) => (recipientOf(r.body) === 'chen' ? { status: 500 } : { status: 200 });
    const a = await start(dir.path, broker.url);
    try {
      await device.publishAsync(deviceTopic('h01', 'h01-sd-r101', 'telemetry'), JSON.stringify({ ts: clock.now(), seq: 1, metrics: { smoke_obscuration_pct_per_m: 18 } }), { qos: 1 });
      const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');

      // Level 0: the nurse on the day shift (not the night nurse), signed, in Chinese first.
      await until(() => duty.requests.length === 1, 'duty notification');
      const req = duty.requests[0]!;
      expect(recipientOf(req.body)).toBe('li');
      expect(verifyWebhookSignature(SECRET, String(req.headers[SIGNATURE_HEADER]), req.body, Math.floor(clock.now() / 1000))).toBe(true);
      const body = JSON.parse(req.body) as { text: string; link: string; level: number; incidentId: string };
      expect(body).toMatchObject({ level: 0, incidentId: incident.id, link: `https://carewatch.example.cn/?incident=${incident.id}` });
      expect(body.text.split('\n')[0]).toContain('阳光颐养院，101室');
      expect(body.text.split('\n')[0]).toContain('紧急');
      expect(mgmt.requests).toHaveLength(0);
      await until(() => notes(a, incident.id).length === 1, 'delivery audited');

      // Nobody acknowledges within 15 s (NFPA 72 positive alarm sequence): the incident goes to the
      // bureau; the director (the rung it skipped) and the bureau are notified.
      clock.advance(15_000);
      await until(() => mgmt.requests.length === 2, 'director and bureau notified');
      expect(mgmt.requests.map((r) => recipientOf(r.body)).sort()).toEqual(['chen', 'zhang']);
      await until(() => notes(a, incident.id).some((e) => e.recipient === 'officer-chen' && e.status === 'retrying'), 'bureau failure audited');
      await until(() => notes(a, incident.id).some((e) => e.recipient === 'dir-zhang' && e.status === 'delivered'), 'director delivery audited');

      // Acknowledged: the bureau's pending retry is cancelled and nothing else is sent.
      const token = await loginToken(a, 'staff-h01');
      const ack = await a.app.inject({ method: 'POST', url: `/api/incidents/${incident.id}/ack`, headers: { authorization: `Bearer ${token}` } });
      expect(ack.statusCode).toBe(200);
      await until(() => notes(a, incident.id).some((e) => e.status === 'cancelled'), 'cancellation audited');
      clock.advance(10 * 60_000);
      await new Promise((r) => setTimeout(r, 200));
      expect(duty.requests).toHaveLength(1);
      expect(mgmt.requests).toHaveLength(2);

      // The audit trail, over the API, lists every attempt with channel, recipient, attempt and status.
      const res = await a.app.inject({ method: 'GET', url: `/api/incidents/${incident.id}`, headers: { authorization: `Bearer ${token}` } });
      const audit = (res.json() as { audit: IncidentAuditEntry[] }).audit;
      const rows = audit.filter((e) => e.action === 'notified' || e.action === 'notify_failed').map((e) => [e.action, e.channel, e.recipient, e.attempt, e.status, e.escalationLevel]);
      expect(rows).toEqual(
        expect.arrayContaining([
          ['notified', 'duty', 'nurse-li', 1, 'delivered', 0],
          ['notified', 'mgmt', 'dir-zhang', 1, 'delivered', 1],
          ['notify_failed', 'mgmt', 'officer-chen', 1, 'retrying', 2],
          ['notify_failed', 'mgmt', 'officer-chen', 1, 'cancelled', 2],
        ]),
      );
      expect(rows).toHaveLength(4);
      expect(audit.find((e) => e.status === 'retrying')?.reason).toBe('HTTP 500');
      expect(audit.find((e) => e.status === 'cancelled')?.reason).toBe('acknowledged by staff-h01');
      // Persisted like every incident audit entry.
      await a.drained();
      const stored = await influxQuery(influxE2e.url, influxE2e.database, `SELECT "json" FROM "incident_audit" WHERE "action" = 'notified'`);
      expect(stored[0]?.values.length).toBe(2);
    } finally {
      await a.close();
    }
  });
});

describe('roster route', () => {
  it('the home director replaces the roster (audited, persisted); others are refused; the notifier follows the new roster', async () => {
    const dir = await tempDir('notify-roster-');
    dirs.push(dir);
    duty.requests.length = 0;
    duty.reply = () => ({ status: 200 });
    let a = await start(dir.path, undefined, influxRoster);
    try {
      const staff = await loginToken(a, 'staff-h01');
      const director = await loginToken(a, 'director-h01');
      const otherDirector = await loginToken(a, 'director-h02');
      const bureau = await loginToken(a, 'bureau');
      const get = await a.app.inject({ method: 'GET', url: '/api/homes/h01/roster', headers: { authorization: `Bearer ${staff}` } });
      expect(get.statusCode).toBe(200);
      expect(get.json()).toMatchObject({ roster: { homeId: 'h01' }, audit: [] });

      // Weekdays 08:00-20:00 now to the night nurse as well.
      const edited: Roster = { ...roster, shifts: [{ ...roster.shifts[0]!, people: ['nurse-wang'] }, roster.shifts[1]!] };
      const put = (token: string, body: unknown, home = 'h01') => a.app.inject({ method: 'PUT', url: `/api/homes/${home}/roster`, headers: { authorization: `Bearer ${token}` }, payload: body as object });
      expect((await put(staff, edited)).json()).toMatchObject({ code: 'AUTH_FORBIDDEN' });
      expect((await put(bureau, edited)).statusCode).toBe(403);
      const other = await put(otherDirector, edited);
      expect([other.statusCode, other.json().code]).toEqual([404, 'HOME_NOT_FOUND']);
      const bad = await put(director, { ...edited, shifts: [{ ...roster.shifts[0]!, people: ['nobody'] }] });
      expect([bad.statusCode, bad.json().code]).toEqual([400, 'ROSTER_INVALID']);
      expect(bad.json().message).toContain('unknown person nobody');
      const schema = await put(director, { ...edited, shifts: [{ ...roster.shifts[0]!, start: '25:00' }] });
      expect([schema.statusCode, schema.json().code]).toEqual([400, 'API_BAD_REQUEST']);
      expect((await put(director, { ...edited, homeId: 'h02' })).json()).toMatchObject({ code: 'ROSTER_INVALID' });
      expect((await a.app.inject({ method: 'PUT', url: '/api/homes/h01/roster', payload: edited })).statusCode).toBe(401);

      // Described in the OpenAPI document like the other routes.
      const doc = (await a.app.inject({ url: '/api/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
      expect(Object.keys(doc.paths['/api/homes/{homeId}/roster'] ?? {}).sort()).toEqual(['get', 'put']);

      const ok = await put(director, edited);
      expect(ok.statusCode).toBe(200);
      const after = (await a.app.inject({ method: 'GET', url: '/api/homes/h01/roster', headers: { authorization: `Bearer ${staff}` } })).json() as { audit: Array<{ by: string; ts: number; changes: string[] }> };
      expect(after.audit).toEqual([expect.objectContaining({ by: 'director-h01', ts: clock.now(), changes: ['shift day: 白班 08:00-20:00 days 1,2,3,4,5,6,7 [nurse-li] → 白班 08:00-20:00 days 1,2,3,4,5,6,7 [nurse-wang]'] })]);

      // The next alarm reaches the nurse the edited roster puts on duty.
      a.lifecycle.applySignals([fireSignal({ sourceTs: clock.now(), receivedTs: clock.now() })]);
      await until(() => duty.requests.length === 1, 'duty notification');
      expect(recipientOf(duty.requests[0]!.body)).toBe('wang');
      await a.close();

      // Persisted: a restart keeps the edited roster and its audit.
      a = await start(dir.path, undefined, influxRoster);
      const restarted = (await a.app.inject({ method: 'GET', url: '/api/homes/h01/roster', headers: { authorization: `Bearer ${director}` } })).json() as { roster: Roster; audit: unknown[] };
      expect(restarted.roster.shifts[0]?.people).toEqual(['nurse-wang']);
      expect(restarted.audit).toHaveLength(1);
    } finally {
      await a.close();
    }
  });
});

describe('re-alerting', () => {
  it('a new alarm point on an acknowledged incident notifies the staff on duty again', async () => {
    const dir = await tempDir('notify-realert-');
    dirs.push(dir);
    duty.requests.length = 0;
    duty.reply = () => ({ status: 200 });
    const a = await start(dir.path, undefined, influxRealert);
    try {
      a.lifecycle.applySignals([fireSignal({ sourceTs: clock.now(), receivedTs: clock.now() })]);
      const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');
      await until(() => notes(a, incident.id).length === 1, 'first notification audited');
      expect(a.lifecycle.ackIncident(incident.id, { username: 'staff-h01', role: 'staff', homeId: 'h01' }).ok).toBe(true);
      // Smoke spreads to the next room: the same incident, re-alerted (panel practice: a silenced panel re-sounds).
      a.lifecycle.applySignals([fireSignal({ key: 'smoke:h01-sd-r102', deviceId: 'h01-sd-r102', roomId: 'r102', sourceTs: clock.now(), receivedTs: clock.now(), message: { zh: '102 房间烟雾报警', en: 'Smoke alarm, room 102' } })]);
      expect(a.lifecycle.openIncidents()).toHaveLength(1);
      expect(a.lifecycle.incidentAudit(incident.id)?.some((e) => e.action === 'realerted')).toBe(true);
      await until(() => duty.requests.length === 2, 'second duty notification');
      await until(() => notes(a, incident.id).length === 2, 'second notification audited');
      expect(notes(a, incident.id).map((e) => [e.recipient, e.status, e.escalationLevel])).toEqual([
        ['nurse-li', 'delivered', 0],
        ['nurse-li', 'delivered', 0],
      ]);
      expect((JSON.parse(duty.requests[1]!.body) as { text: string }).text).toContain('等2处');
    } finally {
      await a.close();
    }
  });
});
