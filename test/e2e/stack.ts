import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { io, type Socket } from 'socket.io-client';
import { freePort } from '../../common/influxd.ts';
import type { LoginResponse } from '../../contract/api.ts';
import type { IncidentMessage } from '../../contract/incidents.ts';
import type { AlertMessage } from '../../contract/payloads.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../../contract/socket-events.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { startProcess, type TestProcess, eventually } from '../support/process.ts';
import { DEMO_SITE_PATH, demoRegistry, demoSecret } from '../support/registry.ts';

/**
 * The whole carewatch stack as separate processes, each started from its main.ts exactly as in
 * production: broker, ingest, alerts and the device simulator for the given homes.
 */
export interface Stack {
  readonly httpUrl: string;
  readonly simUrl: string;
  readonly mqttUrl: string;
  readonly influxUrl: string;
  readonly database: string;
  readonly processes: Record<'broker' | 'ingest' | 'alerts' | 'sim', TestProcess>;
  /** Stops the alerts process and starts it again on the same port and state directory (a restart). */
  restartAlerts(): Promise<void>;
  close(): Promise<void>;
}

export interface StackOptions {
  readonly influxUrl: string;
  readonly database: string;
  readonly homes: string[];
  readonly simSpeed?: number;
  /** A registry file of the test's own (default the demo site): every process reads it. */
  readonly registryPath?: string;
  /** More environment for the alerts process, given its address (e.g. a notify config whose baseUrl is the page). */
  readonly alertsEnv?: (httpUrl: string) => Record<string, string>;
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const [mqttPort, wsPort, httpPort, simPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const dir = await mkdtemp(join(tmpdir(), 'carewatch-e2e-'));
  const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
  const common = {
    CAREWATCH_REGISTRY: opts.registryPath ?? DEMO_SITE_PATH,
    CAREWATCH_MQTT_URL: mqttUrl,
    CAREWATCH_INFLUX_URL: opts.influxUrl,
    CAREWATCH_INFLUX_DB: opts.database,
  };
  // Every process started is stopped if a later step fails: a failed start must not leak processes.
  const started: TestProcess[] = [];
  const start = (name: string, entry: string, env: Record<string, string>): TestProcess => {
    const p = startProcess(name, entry, env);
    started.push(p);
    return p;
  };
  try {
    const broker = start('broker', 'broker/main.ts', { ...common, CAREWATCH_BROKER_PORT: String(mqttPort), CAREWATCH_BROKER_WS_PORT: String(wsPort), CAREWATCH_BROKER_STORE_DIR: join(dir, 'broker-store') });
    await broker.waitForOutput(/broker listening/);
    const ingest = start('ingest', 'ingest/main.ts', { ...common, CAREWATCH_INGEST_PASSWORD: 'demo-svc-ingest', CAREWATCH_SPOOL_DIR: join(dir, 'spool') });
    const httpUrl = `http://127.0.0.1:${httpPort}`;
    const alertsEnv = {
      ...common,
      CAREWATCH_ALERTS_PASSWORD: 'demo-svc-alerts',
      CAREWATCH_HTTP_PORT: String(httpPort),
      UV_THREADPOOL_SIZE: '16',
      MALLOC_MMAP_THRESHOLD_: '131072',
      CAREWATCH_STATE_DIR: join(dir, 'alerts-state'),
      ...opts.alertsEnv?.(httpUrl),
    };
    let alerts = start('alerts', 'alerts/main.ts', alertsEnv);
    const healthy = (): Promise<boolean> => eventually('alerts /health', async () => ((await fetch(`${httpUrl}/health`).catch(() => undefined))?.ok ? true : undefined));
    await healthy();
    const sim = start('sim', 'device-sim/main.ts', {
      ...common,
      CAREWATCH_SIM_HOMES: opts.homes.join(','),
      CAREWATCH_SIM_CONTROL_PORT: String(simPort),
      CAREWATCH_SIM_SPEED: String(opts.simSpeed ?? 1),
      CAREWATCH_SIM_SPONTANEOUS: 'false',
    });
    const simUrl = `http://127.0.0.1:${simPort}`;
    await eventually('simulator control API', async () => ((await fetch(`${simUrl}/devices`)).ok ? true : undefined));
    const processes = { broker, ingest, alerts, sim };
    return {
      async restartAlerts() {
        await alerts.stop();
        alerts = start('alerts', 'alerts/main.ts', alertsEnv);
        processes.alerts = alerts;
        await healthy();
      },
      httpUrl,
      simUrl,
      mqttUrl,
      influxUrl: opts.influxUrl,
      database: opts.database,
      processes,
      async close() {
        for (const p of [sim, alerts, ingest, broker]) await p.stop();
      },
    };
  } catch (err) {
    for (const p of started.reverse()) await p.stop();
    throw err;
  }
}

export async function login(httpUrl: string, username: string): Promise<LoginResponse> {
  const res = await fetch(`${httpUrl}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: `demo-${username}` }),
  });
  if (!res.ok) throw new Error(`login ${username}: ${res.status} ${await res.text()}`);
  return (await res.json()) as LoginResponse;
}

/** A logged-in socket.io client that records every alert and incident change it is sent. */
export interface WatchClient {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  readonly received: AlertMessage[];
  /** Every `incident` change and every entry of the `incidents` list sent on connect (issue 11). */
  readonly incidents: IncidentMessage[];
  waitFor(what: string, pred: (a: AlertMessage) => boolean, timeoutMs?: number): Promise<AlertMessage>;
  waitForIncident(what: string, pred: (i: IncidentMessage) => boolean, timeoutMs?: number): Promise<IncidentMessage>;
  close(): void;
}

export async function watch(httpUrl: string, username: string): Promise<WatchClient> {
  const { token } = await login(httpUrl, username);
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(httpUrl, { auth: { token }, transports: ['websocket'], reconnection: false });
  const received: AlertMessage[] = [];
  const incidents: IncidentMessage[] = [];
  socket.on('alert', (a) => received.push(a));
  socket.on('snapshot', (list) => received.push(...list));
  socket.on('incident', (i) => incidents.push(i));
  socket.on('incidents', (list) => incidents.push(...list));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return {
    socket,
    received,
    incidents,
    waitFor: (what, pred, timeoutMs = 60_000) => eventually(`${username} to receive ${what}`, () => received.find(pred), timeoutMs, 50),
    waitForIncident: (what, pred, timeoutMs = 60_000) => eventually(`${username} to receive ${what}`, () => incidents.find(pred), timeoutMs, 50),
    close: () => socket.close(),
  };
}

export async function simulate(simUrl: string, name: string, target: string, options: Record<string, unknown> = {}): Promise<string> {
  const res = await fetch(`${simUrl}/scenario`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, target, options }) });
  if (!res.ok) throw new Error(`scenario ${name} ${target}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/**
 * A device of the demo site driven by the test: a real mqtt.js client with the device's demo
 * credentials (client id = device id, docs/protocol.md), publishing on its own topics at QoS 1 with
 * the device clock = this process's clock. Its home must not be run by the simulator as well (the
 * same client id would take the session over).
 */
export interface TestDevice {
  event(type: string, extra?: Record<string, unknown>): Promise<void>;
  telemetry(metrics: Record<string, number | boolean>): Promise<void>;
  close(): Promise<void>;
}

export async function device(mqttUrl: string, id: string): Promise<TestDevice> {
  const d = demoRegistry().device(id);
  if (d === undefined) throw new Error(`no device ${id} in the demo site`);
  const client = await mqtt.connectAsync(mqttUrl, { clientId: id, username: id, password: demoSecret(id), protocolVersion: 4, reconnectPeriod: 0, clean: true });
  let seq = 0;
  const publish = async (channel: 'telemetry' | 'event', body: Record<string, unknown>): Promise<void> => {
    await client.publishAsync(deviceTopic(d.homeId, id, channel), JSON.stringify({ ts: Date.now(), seq: seq++, ...body }), { qos: 1 });
  };
  await client.publishAsync(deviceTopic(d.homeId, id, 'status'), JSON.stringify({ ts: Date.now(), online: true }), { qos: 1, retain: true });
  return {
    event: (type, extra = {}) => publish('event', { type, ...extra }),
    telemetry: (metrics) => publish('telemetry', { metrics }),
    close: async () => {
      await client.endAsync();
    },
  };
}
