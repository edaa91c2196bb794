import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURE_RETENTION, testInflux } from '../support/influx-db.ts';
import { startProcess, type TestProcess } from '../support/process.ts';
import { healthz, scrape } from './exposition.ts';

/**
 * The configuration path of main.ts, as in production: the broker started with
 * CAREWATCH_BROKER_HTTP_PORT and ingest with CAREWATCH_INGEST_HTTP_PORT serve /metrics and
 * /healthz, and ingest's messages show in its counters once it has connected through the broker.
 */
const procs: TestProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const p of procs.splice(0).reverse()) await p.stop();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'metrics-main-'));
  dirs.push(d);
  return d;
}

describe('metrics and health of processes started by their main.ts', () => {
  it('broker and ingest serve /metrics and /healthz on the configured ports', async () => {
    const broker = startProcess('broker-metrics', 'broker/main.ts', {
      CAREWATCH_BROKER_PORT: '0',
      CAREWATCH_BROKER_WS_PORT: '0',
      CAREWATCH_BROKER_HTTP_PORT: '0',
      CAREWATCH_BROKER_STORE_DIR: await tempDir(),
    });
    procs.push(broker);
    const [, mqttPort, httpPort] = (await broker.waitForOutput(/broker listening mqtt:\/\/127\.0\.0\.1:(\d+) .* metrics http:\/\/127\.0\.0\.1:(\d+)\/metrics/)) as unknown as [string, string, string];
    const brokerBase = `http://127.0.0.1:${httpPort}`;
    expect(await healthz(brokerBase)).toEqual({ status: 200, body: { status: 'ok', problems: [] } });
    expect((await scrape(brokerBase)).types.get('carewatch_broker_clients_connected')).toBe('gauge');

    const influx = testInflux('metrics_main');
    const ingest = startProcess('ingest-metrics', 'ingest/main.ts', {
      CAREWATCH_MQTT_URL: `mqtt://127.0.0.1:${mqttPort}`,
      CAREWATCH_INGEST_PASSWORD: 'demo-svc-ingest',
      CAREWATCH_INFLUX_URL: influx.url,
      CAREWATCH_INFLUX_DB: influx.database,
      CAREWATCH_SPOOL_DIR: await tempDir(),
      CAREWATCH_INGEST_HTTP_PORT: '0',
      CAREWATCH_RETENTION_RAW_DAYS: String(FIXTURE_RETENTION.rawDays),
    });
    procs.push(ingest);
    const [, ingestPort] = (await ingest.waitForOutput(/health http:\/\/127\.0\.0\.1:(\d+)\/healthz/)) as unknown as [string, string];
    const ingestBase = `http://127.0.0.1:${ingestPort}`;
    expect(await healthz(ingestBase)).toEqual({ status: 200, body: { status: 'ok', problems: [] } });
    const m = await scrape(ingestBase);
    expect(m.types.get('carewatch_ingest_write_duration_seconds')).toBe('histogram');
    expect(m.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    // The broker counts ingest's session among its clients.
    const seen = await (async () => {
      for (let i = 0; i < 200; i++) {
        const b = await scrape(brokerBase);
        if (b.value('carewatch_broker_clients_connected') >= 1) return b;
        await new Promise((r) => setTimeout(r, 50));
      }
      return undefined;
    })();
    expect(seen?.value('carewatch_broker_clients_connected')).toBe(1);
  });
});
