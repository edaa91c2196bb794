import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { io as connectClient, type Socket } from 'socket.io-client';
import { createManualClock, type ManualClock } from '../../../common/clock.ts';
import type { AlertMessage } from '../../../contract/payloads.ts';
import type { RegistryIndex } from '../../../contract/registry-index.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../../../contract/socket-events.ts';
import { deviceTopic } from '../../../contract/topics.ts';
import { createBroker, type Broker } from '../../../broker/broker.ts';
import { createAlerts, type Alerts } from '../../../alerts/alerts.ts';
import { defaultRules } from '../../../alerts/rules/index.ts';
import { testInflux } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { until } from '../../alerts/support/harness.ts';

/**
 * The running pipeline in-process: the real broker (port 0), the real alerts process with the
 * real rules, a test InfluxDB database, real mqtt.js device clients with their demo credentials
 * and socket.io clients of real users. Time is a manual clock: device timestamps follow it, and
 * the alerts process's tick, deadlines and reminders move only when a test advances it.
 * `restart()` closes the alerts process and starts a new one on the same database and state dir.
 */
const APP_DIR = fileURLToPath(new URL('../../../dashboards/app/', import.meta.url));
type Client = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface Watcher {
  readonly username: string;
  readonly socket: Client;
  readonly alerts: AlertMessage[];
  snapshot: AlertMessage[] | undefined;
  /** Latest version seen of an alert id. */
  latest(id: string): AlertMessage | undefined;
}

export interface Device {
  telemetry(metrics: Record<string, number | boolean>): Promise<void>;
  event(type: string, extra?: Record<string, unknown>): Promise<void>;
}

export interface Pipeline {
  readonly clock: ManualClock;
  /** The broker's TCP URL, for other real MQTT clients (the device simulator). */
  readonly mqttUrl: string;
  readonly registry: RegistryIndex;
  readonly influx: { url: string; database: string };
  alerts: Alerts;
  device(id: string): Promise<Device>;
  watch(username: string): Promise<Watcher>;
  token(username: string): Promise<string>;
  /** GET/POST on the alerts HTTP API as a user; returns status and JSON body. */
  api(username: string, method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  /** Waits until the alerts process has handled `n` more inputs than when `mark()` was taken. */
  mark(): () => Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** Polls for I/O to land (real sockets need real time); no test asserts on how long it took. */
export { until };

export interface PipelineOptions {
  /** Start of the manual clock, ms (default: now, in whole seconds). Care tests start at night. */
  readonly startMs?: number;
  /** The alerts tick period, ms of manual time (default 1000). Hours of manual time cost one tick each. */
  readonly tickMs?: number;
}

export async function startPipeline(prefix: string, opts: PipelineOptions = {}): Promise<Pipeline> {
  const registry = demoRegistry();
  const logger = pino({ level: process.env.INTEGRATION_LOG ?? 'silent' });
  // Whole seconds, so readings and ticks line up predictably.
  const clock = createManualClock(opts.startMs ?? Math.floor(Date.now() / 1000) * 1000);
  const influx = testInflux(prefix);
  const stateDir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  // The broker stamps receive times on the same manual clock, so every hop's instant is exact.
  const broker: Broker = createBroker({ config: { host: '127.0.0.1', port: 0, wsPort: 0, production: false }, registry, logger, now: () => clock.now() });
  await broker.start();
  const mqttUrl = `mqtt://127.0.0.1:${broker.tcpPort}`;
  const make = (): Alerts =>
    createAlerts({
      config: {
        mqttUrl,
        alertsPassword: 'demo-svc-alerts',
        influxUrl: influx.url,
        influxDb: influx.database,
        httpHost: '127.0.0.1',
        httpPort: 0,
        stateDir,
        tokenSecret: 'integration-test-secret-of-32-chars-or-more',
        tokenTtlS: 7 * 24 * 3600,
        dashboardDir: APP_DIR,
        tickMs: opts.tickMs ?? 1000,
        restoreDays: 90,
      },
      registry,
      logger,
      rules: defaultRules(),
      clock,
    });
  let alerts = make();
  await alerts.start();
  const clients: MqttClient[] = [];
  const sockets: Client[] = [];
  let handledBefore = 0;
  const handled = (): number => handledBefore + (alerts.stats().inputs as number);

  const self: Pipeline = {
    clock,
    mqttUrl,
    registry,
    influx,
    get alerts() {
      return alerts;
    },
    async device(id) {
      const d = registry.device(id);
      if (d === undefined) throw new Error(`no device ${id}`);
      const client = await mqtt.connectAsync(mqttUrl, { clientId: id, username: id, password: `demo-${id}`, protocolVersion: 4, reconnectPeriod: 0 });
      clients.push(client);
      let seq = 0;
      const send = async (channel: 'telemetry' | 'event', body: Record<string, unknown>): Promise<void> => {
        const done = self.mark();
        await client.publishAsync(deviceTopic(d.homeId, id, channel), JSON.stringify({ ts: clock.now(), seq: seq++, ...body }), { qos: 1 });
        await done();
      };
      return {
        telemetry: (metrics) => send('telemetry', { metrics }),
        event: (type, extra = {}) => send('event', { type, ...extra }),
      };
    },
    async token(username) {
      const res = await alerts.app.inject({ method: 'POST', url: '/api/login', payload: { username, password: `demo-${username}` } });
      if (res.statusCode !== 200) throw new Error(`login ${username}: ${res.body}`);
      return (res.json() as { token: string }).token;
    },
    async watch(username) {
      const socket: Client = connectClient(`http://127.0.0.1:${alerts.port}`, { auth: { token: await self.token(username) }, transports: ['websocket'], reconnection: false });
      sockets.push(socket);
      const w: Watcher = {
        username,
        socket,
        alerts: [],
        snapshot: undefined,
        latest: (id) => w.alerts.filter((a) => a.id === id).sort((a, b) => b.version - a.version)[0],
      };
      socket.on('snapshot', (s) => (w.snapshot = s));
      socket.on('alert', (a) => w.alerts.push(a));
      await until(() => w.snapshot !== undefined, `${username} snapshot`);
      return w;
    },
    async api(username, method, url, body) {
      const res = await alerts.app.inject({ method, url, headers: { authorization: `Bearer ${await self.token(username)}` }, ...(body !== undefined ? { payload: body as object } : {}) });
      return { status: res.statusCode, body: res.json() as unknown };
    },
    mark() {
      const at = handled();
      return () => until(() => handled() > at, 'the alerts process to handle the message').then(() => undefined);
    },
    async restart() {
      for (const s of sockets.splice(0)) s.close();
      handledBefore += alerts.stats().inputs as number;
      await alerts.drained();
      await alerts.close();
      alerts = make();
      await alerts.start();
    },
    async close() {
      for (const s of sockets.splice(0)) s.close();
      for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
      await alerts.close();
      await broker.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
  return self;
}
