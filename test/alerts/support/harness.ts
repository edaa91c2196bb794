import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Clock } from '../../../common/clock.ts';
import type { ServerTls } from '../../../common/tls.ts';
import { createAlerts, type Alerts, type AlertsDeps } from '../../../alerts/alerts.ts';
import type { Rule } from '../../../alerts/rules/types.ts';
import type { RegistryIndex } from '../../../contract/registry-index.ts';
import { demoRegistry } from '../../support/registry.ts';
import { DASHBOARD_DIR } from './app-fixture.ts';
import { testRules } from './test-rules.ts';

export async function tempDir(prefix = 'alerts-'): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export interface HarnessOptions {
  readonly influx: { url: string; database: string };
  readonly stateDir: string;
  readonly clock?: Clock;
  readonly mqttUrl?: string;
  readonly rules?: Rule[];
  readonly registry?: RegistryIndex;
  readonly tokenTtlS?: number;
  readonly production?: boolean;
  /** HTTPS on the port, and the CA of an mqtts:// broker (test/security/tls.test.ts). */
  readonly https?: ServerTls;
  readonly mqttCa?: Buffer;
  /** Shorter HTTP bounds on slow clients (test/alerts/http/slow-clients.test.ts). */
  readonly httpTimeouts?: { readonly requestMs: number; readonly idleMs: number };
  /** More config (partitioned mode: homes, instance, homeStateDir). */
  readonly config?: Partial<AlertsDeps['config']>;
}

/** The test token secret (≥ 32 characters, as the config schema requires). */
export const TEST_TOKEN_SECRET = 'a-test-secret-of-at-least-32-characters';

/**
 * An in-process alerts config for tests: the run's InfluxDB, HTTP on 127.0.0.1:0, the demo
 * service password, the page from dashboards/app; `extra` adds or overrides (partition, Redis, TTL).
 */
export function testAlertsConfig(o: { influx: { url: string; database: string }; stateDir: string; mqttUrl?: string }, extra: Partial<AlertsDeps['config']> = {}): AlertsDeps['config'] {
  return {
    mqttUrl: o.mqttUrl ?? 'mqtt://127.0.0.1:1',
    alertsPassword: 'demo-svc-alerts',
    influxUrl: o.influx.url,
    influxDb: o.influx.database,
    httpHost: '127.0.0.1',
    httpPort: 0,
    stateDir: o.stateDir,
    tokenSecret: TEST_TOKEN_SECRET,
    tokenTtlS: 3600,
    dashboardDir: DASHBOARD_DIR,
    tickMs: 1000,
    restoreDays: 90,
    ...extra,
  };
}

/** A real alerts process (in-process) on 127.0.0.1:0 against the run's InfluxDB. */
export async function startAlerts(opts: HarnessOptions): Promise<Alerts> {
  const alerts = createAlerts({
    config: testAlertsConfig(opts, { ...(opts.tokenTtlS !== undefined ? { tokenTtlS: opts.tokenTtlS } : {}), ...opts.config }),
    registry: opts.registry ?? demoRegistry(),
    logger: pino({ level: process.env.ALERTS_TEST_LOG ?? 'silent' }),
    rules: opts.rules ?? testRules(),
    mqtt: opts.mqttUrl !== undefined,
    ...(opts.https !== undefined ? { https: opts.https } : {}),
    ...(opts.mqttCa !== undefined ? { mqttCa: opts.mqttCa } : {}),
    ...(opts.httpTimeouts !== undefined ? { httpTimeouts: opts.httpTimeouts } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.production !== undefined ? { production: opts.production } : {}),
  });
  await alerts.start();
  return alerts;
}

export async function loginToken(alerts: Alerts, username: string): Promise<string> {
  const res = await alerts.app.inject({ method: 'POST', url: '/api/login', payload: { username, password: `demo-${username}` } });
  if (res.statusCode !== 200) throw new Error(`login ${username} failed: ${res.body}`);
  return (res.json() as { token: string }).token;
}

/** Polls until `check` returns a value (real I/O needs real time; no test asserts on it). */
export async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
