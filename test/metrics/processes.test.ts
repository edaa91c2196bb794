import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlerts, type Alerts } from '../../alerts/alerts.ts';
import { defaultRules } from '../../alerts/rules/index.ts';
import { createBroker, type Broker } from '../../broker/broker.ts';
import { freePort } from '../../common/influxd.ts';
import { INCIDENT_KINDS } from '../../contract/incidents.ts';
import { ALERT_STATES, SIGNAL_CLASSES } from '../../contract/payloads.ts';
import { deviceTopic } from '../../contract/topics.ts';
import type { Ingest } from '../../ingest/ingest.ts';
import { loginToken, startAlerts, testAlertsConfig, until } from '../alerts/support/harness.ts';
import { startIngest } from '../ingest/support/ingest.ts';
import { testInflux } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { healthz, scrape, type Exposition } from './exposition.ts';

/**
 * Issue 13: GET /metrics and GET /healthz on every process. The real broker, ingest and alerts run
 * in this Node process (port 0), each with its own registry, against the run's InfluxDB; real
 * mqtt.js devices publish through the real broker. A scrape, something happens, a second scrape:
 * the counters and gauges must have followed.
 */
const silent = pino({ level: 'silent' });
const influx = testInflux('metrics');
let broker: Broker;
let ingest: Ingest;
let alerts: Alerts;
let stateDir: string;
const clients: MqttClient[] = [];
const url = {
  broker: () => `http://127.0.0.1:${broker.httpPort}`,
  ingest: () => `http://127.0.0.1:${ingest.httpPort()}`,
  alerts: () => `http://127.0.0.1:${alerts.port}`,
};

beforeAll(async () => {
  broker = createBroker({ config: { host: '127.0.0.1', port: 0, wsPort: 0, httpPort: 0, production: false }, registry: demoRegistry(), logger: silent });
  await broker.start();
  const mqttUrl = `mqtt://127.0.0.1:${broker.tcpPort}`;
  ingest = await startIngest({ mqttUrl, influxUrl: influx.url, influxDb: influx.database, httpPort: 0 });
  stateDir = await mkdtemp(join(tmpdir(), 'metrics-alerts-'));
  alerts = await startAlerts({ influx, stateDir, mqttUrl, rules: defaultRules() });
});

afterAll(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
  await alerts?.close();
  await ingest?.close();
  await broker?.close();
  if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
});

/** A real MQTT client of a device (or service) with its demo credentials. */
async function device(id: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.tcpPort}`, { clientId: id, username: id, password: `demo-${id}`, protocolVersion: 4, reconnectPeriod: 0 });
  clients.push(c);
  return c;
}

/** The gauges of open alerts and incidents say what the lifecycle holds, series by series. */
function expectOpenGaugesMatchLifecycle(m: Exposition): void {
  for (const state of ALERT_STATES.filter((s) => s !== 'resolved')) {
    for (const signal of SIGNAL_CLASSES) {
      const n = alerts.lifecycle.open().filter((a) => a.state === state && a.signal === signal).length;
      expect(m.value('carewatch_alerts_open', { state, signal }), `alerts_open{state=${state},signal=${signal}}`).toBe(n);
    }
    for (const kind of INCIDENT_KINDS) {
      const n = alerts.lifecycle.openIncidents().filter((i) => i.state === state && i.kind === kind).length;
      expect(m.value('carewatch_incidents_open', { state, kind }), `incidents_open{state=${state},kind=${kind}}`).toBe(n);
    }
  }
}

describe('GET /metrics and /healthz on every process', () => {
  it('each process answers /healthz 200 and serves its own families, with the event-loop lag, in the exposition format', async () => {
    const expected: Record<keyof typeof url, Record<string, string>> = {
      broker: {
        carewatch_messages_received_total: 'counter',
        carewatch_messages_published_total: 'counter',
        carewatch_messages_rejected_total: 'counter',
        carewatch_broker_clients_connected: 'gauge',
        carewatch_broker_queue_messages: 'gauge',
      },
      ingest: {
        carewatch_messages_received_total: 'counter',
        carewatch_messages_rejected_total: 'counter',
        carewatch_ingest_write_batches_total: 'counter',
        carewatch_ingest_write_duration_seconds: 'histogram',
        carewatch_ingest_spool_bytes: 'gauge',
        carewatch_ingest_mqtt_connected: 'gauge',
      },
      alerts: {
        carewatch_messages_received_total: 'counter',
        carewatch_messages_published_total: 'counter',
        carewatch_messages_rejected_total: 'counter',
        carewatch_alerts_open: 'gauge',
        carewatch_incidents_open: 'gauge',
        carewatch_alerts_journal_pending: 'gauge',
        carewatch_alerts_socket_clients: 'gauge',
      },
    };
    for (const name of ['broker', 'ingest', 'alerts'] as const) {
      const m = await scrape(url[name]());
      for (const [family, type] of Object.entries(expected[name])) expect(m.types.get(family), `${name} ${family}`).toBe(type);
      expect(m.types.get('nodejs_eventloop_lag_seconds'), `${name} event-loop lag`).toBe('gauge');
      expect(await healthz(url[name]())).toEqual({ status: 200, body: { status: 'ok', problems: [] } });
    }
    // Live values, not placeholders: ingest and alerts hold their broker sessions (ingest 1, alerts 3).
    expect((await scrape(url.broker())).value('carewatch_broker_clients_connected')).toBeGreaterThanOrEqual(4);
    expect((await scrape(url.ingest())).value('carewatch_ingest_mqtt_connected')).toBe(1);
    // Every refusal code has a series from the start (0), so a dashboard's rate() has one to read.
    expect((await scrape(url.broker())).value('carewatch_messages_rejected_total', { code: 'BROKER_PUBLISH_DENIED' })).toBe(0);
  });

  it('counters and gauges follow valid and invalid device messages and a raised alarm', async () => {
    const before = { broker: await scrape(url.broker()), ingest: await scrape(url.ingest()), alerts: await scrape(url.alerts()) };
    const batchesBefore = ingest.stats().influx.batches;
    expectOpenGaugesMatchLifecycle(before.alerts);
    expect(before.alerts.sum('carewatch_alerts_open')).toBe(0);

    const sd = await device('h01-sd-r101');
    const mcp = await device('h01-mcp-f1-corridor');
    const now = Date.now();
    // Valid: a reading and a manual call point (a fire alarm, NFPA 72: raised at once).
    await sd.publishAsync(deviceTopic('h01', 'h01-sd-r101', 'telemetry'), JSON.stringify({ ts: now, seq: 1, metrics: { smoke_obscuration_pct_per_m: 0.1, temperature_c: 22 } }), { qos: 1 });
    await mcp.publishAsync(deviceTopic('h01', 'h01-mcp-f1-corridor', 'event'), JSON.stringify({ ts: now, seq: 1, type: 'manual_call_point' }), { qos: 1 });
    // Invalid, but the device's own topic: the broker forwards it; ingest and alerts refuse it (MALFORMED_JSON).
    await sd.publishAsync(deviceTopic('h01', 'h01-sd-r101', 'telemetry'), 'not json {', { qos: 1 });
    // Invalid at the broker: a service publishing as a device (BROKER_PUBLISH_DENIED; the connection
    // is closed). A service, so that no offline status of a device follows and raises an alert.
    const rogue = await device('svc-integration');
    const closed = new Promise<void>((r) => rogue.once('close', () => r()));
    rogue.publish(deviceTopic('h01', 'h01-sd-r103', 'telemetry'), JSON.stringify({ ts: now, seq: 1, metrics: { temperature_c: 22 } }), { qos: 1 });
    await closed;

    await until(() => alerts.lifecycle.open().length === 1 && alerts.lifecycle.openIncidents().length === 1, 'the fire alarm raised');
    await until(() => ingest.stats().received >= 3 && ingest.stats().influx.batches > batchesBefore && ingest.stats().spool.bytes === 0, 'ingest to store the messages');
    await until(() => ((alerts.stats().mqtt as { received: number } | undefined)?.received ?? 0) >= 3, 'alerts to read the messages');
    const after = { broker: await scrape(url.broker()), ingest: await scrape(url.ingest()), alerts: await scrape(url.alerts()) };
    const delta = (p: keyof typeof after, name: string, labels?: Record<string, string>): number => after[p].sum(name, labels) - before[p].sum(name, labels);

    // Broker: three accepted device publications (plus the alert and incident the alerts process
    // published), delivered to ingest and alerts; one refused publication, by its code.
    expect(delta('broker', 'carewatch_messages_received_total')).toBeGreaterThanOrEqual(3);
    expect(delta('broker', 'carewatch_messages_published_total')).toBeGreaterThanOrEqual(6);
    expect(delta('broker', 'carewatch_messages_rejected_total', { code: 'BROKER_PUBLISH_DENIED' })).toBe(1);

    // Ingest: messages in, the malformed one refused by its code, batches written and timed.
    expect(delta('ingest', 'carewatch_messages_received_total')).toBeGreaterThanOrEqual(3);
    expect(after.ingest.value('carewatch_messages_rejected_total', { code: 'MALFORMED_JSON' }) - before.ingest.sum('carewatch_messages_rejected_total', { code: 'MALFORMED_JSON' })).toBe(1);
    expect(delta('ingest', 'carewatch_ingest_write_batches_total')).toBeGreaterThanOrEqual(1);
    expect(delta('ingest', 'carewatch_ingest_points_written_total')).toBeGreaterThanOrEqual(3);
    expect(delta('ingest', 'carewatch_ingest_write_duration_seconds_count', { outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(after.ingest.value('carewatch_ingest_write_duration_seconds_bucket', { outcome: 'ok', le: '+Inf' })).toBe(after.ingest.value('carewatch_ingest_write_duration_seconds_count', { outcome: 'ok' }));
    expect(after.ingest.value('carewatch_ingest_spool_bytes')).toBe(0);

    // Alerts: messages in, the malformed one refused, the alarm open (by state, signal) and published.
    expect(delta('alerts', 'carewatch_messages_received_total')).toBeGreaterThanOrEqual(3);
    expect(after.alerts.value('carewatch_messages_rejected_total', { code: 'MALFORMED_JSON' }) - before.alerts.sum('carewatch_messages_rejected_total', { code: 'MALFORMED_JSON' })).toBe(1);
    expect(delta('alerts', 'carewatch_alerts_inputs_total')).toBeGreaterThanOrEqual(2);
    const alarm = alerts.lifecycle.open()[0];
    expect(alarm?.signal).toBe('alarm');
    expect(after.alerts.value('carewatch_alerts_open', { state: alarm?.state ?? '', signal: 'alarm' })).toBe(1);
    expect(after.alerts.sum('carewatch_alerts_open')).toBe(1);
    expect(after.alerts.sum('carewatch_incidents_open', { kind: 'fire' })).toBe(1);
    expectOpenGaugesMatchLifecycle(after.alerts);
    await until(() => ((alerts.stats().mqtt as { published: number } | undefined)?.published ?? 0) >= 2, 'the alert and incident published');
    expect((await scrape(url.alerts())).value('carewatch_messages_published_total')).toBeGreaterThanOrEqual(2);

    // Staff act on the incident: the by-state gauges follow the lifecycle; then resolved, nothing is open.
    const incident = alerts.lifecycle.openIncidents()[0];
    const token = await loginToken(alerts, 'staff-h01');
    const ack = await alerts.app.inject({ method: 'POST', url: `/api/incidents/${incident?.id}/ack`, headers: { authorization: `Bearer ${token}` } });
    expect(ack.statusCode).toBe(200);
    expectOpenGaugesMatchLifecycle(await scrape(url.alerts()));
    const director = { username: 'director-h01', role: 'director', homeId: 'h01' } as const;
    // A fire incident is resolved only once confirmed (docs/alerts.md "Resolving"): a call-point test.
    expect(alerts.lifecycle.confirmIncident(incident?.id ?? '', director, 'test').ok).toBe(true);
    expect(alerts.lifecycle.open()[0]?.state).toBe('confirmed');
    const confirmed = await scrape(url.alerts());
    expect(confirmed.value('carewatch_alerts_open', { state: 'confirmed', signal: 'alarm' })).toBe(1);
    expectOpenGaugesMatchLifecycle(confirmed);
    expect(alerts.lifecycle.resolveIncident(incident?.id ?? '', director).ok).toBe(true);
    await until(() => alerts.lifecycle.open().length === 0, 'the incident resolved');
    const resolved = await scrape(url.alerts());
    expect(resolved.sum('carewatch_alerts_open')).toBe(0);
    expect(resolved.sum('carewatch_incidents_open')).toBe(0);
  });

  it('a socket.io client shows in the socket clients gauge', async () => {
    const { io } = await import('socket.io-client');
    const socket = io(url.alerts(), { auth: { token: await loginToken(alerts, 'staff-h01') }, transports: ['websocket'], reconnection: false });
    try {
      await until(() => socket.connected, 'socket connected');
      expect((await scrape(url.alerts())).value('carewatch_alerts_socket_clients')).toBe(1);
    } finally {
      socket.close();
    }
    await until(async () => (await scrape(url.alerts())).value('carewatch_alerts_socket_clients') === 0, 'socket gone from the gauge');
  });
});

describe('/healthz when a process is not healthy', () => {
  it('ingest answers 503 with INGEST_INFLUX_UNAVAILABLE when InfluxDB is unreachable, and counts the failures', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const sick = await startIngest({ mqttUrl: `mqtt://127.0.0.1:${broker.tcpPort}`, clientId: 'svc-ingest-sick', influxUrl: dead, influxDb: 'nowhere', httpPort: 0, influxUnhealthyMs: 0 });
    try {
      const base = `http://127.0.0.1:${sick.httpPort()}`;
      const h = await until(async () => {
        const r = await healthz(base);
        return r.status === 503 ? r : undefined;
      }, 'ingest unhealthy');
      expect(h.body).toEqual({ status: 'unhealthy', problems: ['INGEST_INFLUX_UNAVAILABLE'] });
      // The existing /health keeps its own body and agrees on the status.
      expect((await fetch(`${base}/health`)).status).toBe(503);
      const m = await scrape(base);
      expect(m.value('carewatch_ingest_write_failures_total')).toBeGreaterThan(0);
      // The healthy ingest next to it is unaffected (its own registry, its own health).
      expect((await healthz(url.ingest())).status).toBe(200);
    } finally {
      await sick.close();
    }
  });

  it('alerts answers 503 with the reason when its broker is unreachable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'metrics-alerts-nobroker-'));
    const lonely = createAlerts({
      // A database of its own: it must not restore the alarms the other alerts process raised.
      config: testAlertsConfig({ influx: { url: influx.url, database: testInflux('metrics_lonely').database }, stateDir: dir, mqttUrl: `mqtt://127.0.0.1:${await freePort()}` }),
      registry: demoRegistry(),
      logger: silent,
      rules: defaultRules(),
      mqttConnectWaitMs: 50,
    });
    try {
      await lonely.start();
      const r = await healthz(`http://127.0.0.1:${lonely.port}`);
      expect(r).toEqual({ status: 503, body: { status: 'unhealthy', problems: ['ALERTS_MQTT_DISCONNECTED'] } });
      expect((await scrape(`http://127.0.0.1:${lonely.port}`)).value('carewatch_alerts_mqtt_connected')).toBe(0);
    } finally {
      await lonely.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the broker answers /healthz only while it listens: gone with its MQTT ports at close', async () => {
    const b = createBroker({ config: { host: '127.0.0.1', port: 0, wsPort: 0, httpPort: 0, production: false }, registry: demoRegistry(), logger: silent });
    expect(b.httpPort).toBeUndefined();
    await b.start();
    const base = `http://127.0.0.1:${b.httpPort}`;
    expect((await healthz(base)).status).toBe(200);
    expect((await fetch(`${base}/nothing`)).status).toBe(404);
    await b.close();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});
