import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { metricsVerdict } from '../../common/metrics.ts';
import { startAlerts, tempDir } from '../alerts/support/harness.ts';
import { FIXTURE_RETENTION, testInflux } from '../support/influx-db.ts';
import { startProcess, type TestProcess } from '../support/process.ts';

/**
 * Metrics and detailed health say what a site is doing (messages and alerts per home, who is
 * connected, what fails), and alerts served them on the page's own port to anyone who reached it.
 * Now (common/metrics.ts MetricsAccess): with CAREWATCH_METRICS_TOKEN only a scraper sending it as a
 * bearer token reads them; production without one serves none; /healthz (status and problem codes,
 * what health checks read) stays open everywhere. Each process started by its own main.ts.
 */
const TOKEN = 'a-metrics-token-for-this-test';
const procs: TestProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const p of procs.splice(0).reverse()) await p.stop();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
const dir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'metrics-access-'));
  dirs.push(d);
  return d;
};
const status = async (url: string, token?: string): Promise<number> => (await fetch(url, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } })).status;

describe('metricsVerdict', () => {
  it('opens to the token only; production without one serves nothing; development without one serves anyone', () => {
    expect(metricsVerdict(`Bearer ${TOKEN}`, { token: TOKEN, production: true })).toBe('ok');
    expect(metricsVerdict('Bearer wrong', { token: TOKEN, production: true })).toBe('unauthorized');
    expect(metricsVerdict(undefined, { token: TOKEN, production: false })).toBe('unauthorized');
    expect(metricsVerdict(TOKEN, { token: TOKEN, production: true })).toBe('unauthorized');
    expect(metricsVerdict(undefined, { token: undefined, production: true })).toBe('disabled');
    expect(metricsVerdict(undefined, { token: undefined, production: false })).toBe('ok');
  });
});

describe('each process', () => {
  it('the broker: /metrics needs the token, /healthz does not; production without a token serves no metrics', async () => {
    const start = async (env: Record<string, string>): Promise<string> => {
      const p = startProcess('broker-metrics-access', 'broker/main.ts', { CAREWATCH_BROKER_PORT: '0', CAREWATCH_BROKER_WS_PORT: '0', CAREWATCH_BROKER_HTTP_PORT: '0', CAREWATCH_BROKER_STORE_DIR: await dir(), NODE_ENV: 'production', ...env });
      procs.push(p);
      const [, port] = (await p.waitForOutput(/metrics http:\/\/127\.0\.0\.1:(\d+)\/metrics/)) as unknown as [string, string];
      return `http://127.0.0.1:${port}`;
    };
    const guarded = await start({ CAREWATCH_METRICS_TOKEN: TOKEN });
    expect(await status(`${guarded}/metrics`)).toBe(401);
    expect(await status(`${guarded}/metrics`, 'not-the-token-at-all-no')).toBe(401);
    expect(await status(`${guarded}/metrics`, TOKEN)).toBe(200);
    expect(await status(`${guarded}/healthz`)).toBe(200);
    const open = await start({});
    expect(await status(`${open}/metrics`)).toBe(403);
    expect(await status(`${open}/healthz`)).toBe(200);
  }, 60_000);

  it('ingest: /metrics, /health and /stats need the token, /healthz does not', async () => {
    const influx = testInflux('metrics_access');
    const p = startProcess('ingest-metrics-access', 'ingest/main.ts', {
      NODE_ENV: 'production',
      CAREWATCH_METRICS_TOKEN: TOKEN,
      // No broker: the health port serves all the same (ingest's MQTT session retries meanwhile).
      CAREWATCH_MQTT_URL: 'mqtt://127.0.0.1:1',
      CAREWATCH_INGEST_PASSWORD: 'a-password-that-is-not-a-demo-one',
      CAREWATCH_INFLUX_URL: influx.url,
      CAREWATCH_INFLUX_DB: influx.database,
      CAREWATCH_SPOOL_DIR: await dir(),
      CAREWATCH_INGEST_HTTP_PORT: '0',
      CAREWATCH_RETENTION_RAW_DAYS: String(FIXTURE_RETENTION.rawDays),
    });
    procs.push(p);
    const [, port] = (await p.waitForOutput(/health http:\/\/127\.0\.0\.1:(\d+)\/healthz/)) as unknown as [string, string];
    const base = `http://127.0.0.1:${port}`;
    for (const path of ['/metrics', '/health', '/stats']) {
      expect(await status(`${base}${path}`), path).toBe(401);
      expect(await status(`${base}${path}`, TOKEN), path).not.toBe(401);
    }
    expect([200, 503]).toContain(await status(`${base}/healthz`));
  }, 60_000);

  it("alerts: /metrics and /health on the page's port need the token; the page, the API and /healthz do not change", async () => {
    const d = await tempDir();
    const alerts = await startAlerts({ influx: testInflux('metrics_access_alerts'), stateDir: d.path, production: true, config: { metricsToken: TOKEN, tokenSecret: 'a-production-secret-of-at-least-32-characters' } });
    try {
      for (const url of ['/metrics', '/health']) {
        expect((await alerts.app.inject({ url })).statusCode, url).toBe(401);
        expect((await alerts.app.inject({ url, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, url).toBe(200);
      }
      expect((await alerts.app.inject({ url: '/healthz' })).statusCode).toBe(200);
      expect((await alerts.app.inject({ url: '/' })).statusCode).toBe(200);
    } finally {
      await alerts.close();
      await d.remove();
    }
    const d2 = await tempDir();
    const open = await startAlerts({ influx: testInflux('metrics_access_alerts'), stateDir: d2.path, production: true, config: { tokenSecret: 'a-production-secret-of-at-least-32-characters' } });
    try {
      expect((await open.app.inject({ url: '/metrics' })).statusCode).toBe(403);
      expect((await open.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await open.close();
      await d2.remove();
    }
  }, 60_000);
});
