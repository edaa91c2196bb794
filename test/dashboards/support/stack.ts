import type { DeviceKind } from '../../../contract/device-kinds.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { createManualClock, type ManualClock } from '../../../common/clock.ts';
import { deviceTopic } from '../../../contract/topics.ts';
import { createBroker, type Broker } from '../../../broker/broker.ts';
import { createAlerts, type Alerts } from '../../../alerts/alerts.ts';
import { defaultRules } from '../../../alerts/rules/index.ts';
import { testInflux, writeLines } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { until } from '../../alerts/support/harness.ts';

/**
 * The running stack for browser tests, in-process: the real broker (broker/broker.ts) on port 0,
 * the real alerts process (alerts/alerts.ts, real rules, real InfluxDB) serving dashboards/app/,
 * with its dashboard plugins (live tiles, history, statistics), and a manual clock so the
 * NFPA 72 15 s / 180 s deadlines move only when the test says so.
 */
export const APP_DIR = fileURLToPath(new URL('../../../dashboards/app/', import.meta.url));
const TOKEN_SECRET = 'browser-test-secret-of-at-least-32-chars';

export interface Stack {
  readonly url: string;
  readonly alerts: Alerts;
  readonly clock: ManualClock;
  readonly influx: { url: string; database: string };
  /** A demo device connected with its own credentials (username = client id = device id). */
  device(id: string): Promise<Device>;
  writeLines(lines: string[]): Promise<void>;
  close(): Promise<void>;
}

export interface Device {
  event(type: string, extra?: Record<string, unknown>): Promise<void>;
  telemetry(metrics: Record<string, number | boolean>, ts?: number): Promise<void>;
  close(): Promise<void>;
}

export interface StackOptions {
  /** Per-home positive alarm sequence deadlines (registry ackDeadlineS / confirmDeadlineS). */
  readonly deadlines?: Readonly<Record<string, { ackDeadlineS?: number; confirmDeadlineS?: number }>>;
  /** Login token lifetime; short so a test can reach expiry without ticking the engine through hours. */
  readonly tokenTtlS?: number;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const registry = demoRegistry();
  for (const [homeId, d] of Object.entries(opts.deadlines ?? {})) {
    const home = registry.site.homes.find((h) => h.id === homeId);
    if (!home) throw new Error(`no home ${homeId}`);
    Object.assign(home, d);
  }
  const logger = pino({ level: process.env.DASH_TEST_LOG ?? 'silent' });
  const clock = createManualClock(Date.now());
  const influx = testInflux('dash');
  const stateDir = await mkdtemp(join(tmpdir(), 'dash-alerts-'));
  const broker = createBroker({ config: { host: '127.0.0.1', port: 0, wsPort: 0, production: false }, registry, logger });
  await broker.start();
  const alerts = createAlerts({
    config: {
      mqttUrl: `mqtt://127.0.0.1:${broker.tcpPort}`,
      alertsPassword: 'demo-svc-alerts',
      influxUrl: influx.url,
      influxDb: influx.database,
      httpHost: '127.0.0.1',
      httpPort: 0,
      stateDir,
      tokenSecret: TOKEN_SECRET,
      tokenTtlS: opts.tokenTtlS ?? 3600,
      dashboardDir: APP_DIR,
      tickMs: 1000,
      restoreDays: 90,
    },
    registry,
    logger,
    rules: defaultRules(),
    clock,
  });
  await alerts.start();
  const devices: MqttClient[] = [];

  return {
    url: `http://127.0.0.1:${alerts.port}`,
    alerts,
    clock,
    influx,
    async device(id) {
      const d = registry.device(id);
      if (!d) throw new Error(`no device ${id}`);
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.tcpPort}`, { clientId: id, username: id, password: `demo-${id}`, protocolVersion: 4, reconnectPeriod: 0 });
      devices.push(client);
      let seq = 0;
      // Resolves once the alerts process has handled the message, not at the broker's PUBACK: a test
      // that then advances the manual clock must not overtake the message (alerts stamps its receipt
      // with that clock). Telemetry reaches alerts as a QoS 0 live feed, which aedes writes a turn
      // after it acknowledges the publisher.
      const send = async (channel: 'event' | 'telemetry', body: Record<string, unknown>): Promise<void> => {
        const before = alerts.stats().inputs as number;
        await client.publishAsync(deviceTopic(d.homeId, id, channel), JSON.stringify({ seq: seq++, ...body }), { qos: 1 });
        await until(() => (alerts.stats().inputs as number) > before, `alerts to handle ${id}'s ${channel}`);
      };
      return {
        event: (type, extra = {}) => send('event', { ts: Date.now(), type, ...extra }),
        telemetry: (metrics, ts = Date.now()) => send('telemetry', { ts, metrics }),
        close: () => client.endAsync(),
      };
    },
    async writeLines(lines) {
      await writeLines(influx.url, influx.database, lines);
    },
    async close() {
      for (const c of devices) await c.endAsync(true).catch(() => {});
      await alerts.close();
      await broker.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** One telemetry point as ingest writes it (precision ms). */
export function telemetryLine(deviceId: string, metrics: Record<string, number | boolean>, ts: number): string {
  const d = demoRegistry().device(deviceId);
  if (!d) throw new Error(`no device ${deviceId}`);
  const tags = `home=${d.homeId},device=${d.id},kind=${d.kind},room=${d.roomId}${d.residentId ? `,resident=${d.residentId}` : ''}`;
  return `telemetry,${tags} ${Object.entries(metrics).map(([k, v]) => `${k}=${String(v)}`).join(',')} ${ts}`;
}

/** Plausible readings for one home's devices, as ingest would have written them (precision ms). */
export function homeReadings(homeId: string, now: number): string[] {
  const registry = demoRegistry();
  const lines: string[] = [];
  for (const d of registry.devicesOfHome(homeId)) {
    const tags = `home=${d.homeId},device=${d.id},kind=${d.kind},room=${d.roomId}${d.residentId ? `,resident=${d.residentId}` : ''}`;
    lines.push(`status,home=${d.homeId},device=${d.id},kind=${d.kind} online=true ${now - 600_000}`);
    const n = Number(d.id.replace(/\D/g, '').slice(-2)) || 1;
    // Every kind (a new kind must be added here, or this does not typecheck).
    const fields: Record<DeviceKind, string> = {
      smoke_detector: `smoke_obscuration_pct_per_m=0.${n % 5},temperature_c=${21 + (n % 4)},battery_pct=93`,
      heat_detector: `temperature_c=${24 + (n % 3)},battery_pct=88`,
      manual_call_point: 'battery_pct=97',
      electrical_fire_monitor: 'residual_current_ma=42,cable_temp_c=31',
      gas_detector: 'gas_lel_pct=1.5,battery_pct=90',
      water_pressure_sensor: 'water_pressure_mpa=0.32',
      vital_signs_monitor: `heart_rate_bpm=${68 + (n % 17)},spo2_pct=${94 + (n % 5)},resp_rate_bpm=${14 + (n % 6)},body_temp_c=36.${4 + (n % 5)}`,
      bed_sensor: `bed_occupied=${n % 7 !== 3},movement_index=${n % 9}`,
      wetness_sensor: `wetness_pct=${(n * 13) % 60}`,
      nurse_call: `battery_pct=${80 + (n % 20)},rssi_dbm=-${60 + (n % 20)}`,
    };
    for (let i = 0; i < 24; i++) {
      const f = d.kind === 'vital_signs_monitor' ? fields[d.kind]!.replace(/heart_rate_bpm=(\d+)/, (_, v: string) => `heart_rate_bpm=${Number(v) + Math.round(6 * Math.sin(i / 3))}`) : fields[d.kind]!;
      lines.push(`telemetry,${tags} ${f},seq=${i}i ${now - (23 - i) * 60_000}`);
    }
  }
  return lines;
}
