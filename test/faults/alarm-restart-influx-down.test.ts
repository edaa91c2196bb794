import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createInfluxServer, freePort, type InfluxServer } from '../../common/influxd.ts';
import type { AlertMessage } from '../../contract/payloads.ts';
import { device, login } from '../e2e/stack.ts';
import { influxQuery } from '../support/influx-db.ts';
import { eventually, startProcess, type TestProcess } from '../support/process.ts';

/**
 * An alarm must survive a crash of the alerts process even when InfluxDB is away at its restart.
 * The alert journal used to empty itself as soon as InfluxDB had every change, and the rule-state
 * snapshot (which also holds the open alerts) is written every few seconds: an alerts process
 * killed in between, and restarted while InfluxDB was down, restored the alarm from nowhere and the
 * page never showed it (found by the fault suite in session 15: a call point pressed while alerts was
 * down, raised by the restarted process and written to InfluxDB, which was then killed at once).
 * Now the journal keeps an alert change until a durable snapshot holds it too.
 */
const procs: TestProcess[] = [];
let influx: InfluxServer | undefined;
let dir: string | undefined;
afterAll(async () => {
  for (const p of procs.reverse()) await p.kill('SIGKILL');
  await influx?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

it('a fire alarm InfluxDB has is still open after alerts is SIGKILLed and restarted while InfluxDB is down', async () => {
  dir = await mkdtemp(join(tmpdir(), 'carewatch-alarm-restart-'));
  influx = await createInfluxServer();
  await influx.start();
  const database = 'alarm_restart';
  const broker = startProcess('alarm-restart-broker', 'broker/main.ts', { CAREWATCH_BROKER_PORT: '0', CAREWATCH_BROKER_WS_PORT: '0', CAREWATCH_BROKER_STORE_DIR: join(dir, 'broker') });
  procs.push(broker);
  const [, mqttPort] = (await broker.waitForOutput(/broker listening mqtt:\/\/127\.0\.0\.1:(\d+)/)) as unknown as [string, string];
  const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
  const httpPort = await freePort();
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const env = {
    CAREWATCH_MQTT_URL: mqttUrl,
    CAREWATCH_ALERTS_PASSWORD: 'demo-svc-alerts',
    CAREWATCH_INFLUX_URL: influx.url,
    CAREWATCH_INFLUX_DB: database,
    CAREWATCH_HTTP_PORT: String(httpPort),
    CAREWATCH_STATE_DIR: join(dir, 'alerts'),
  };
  const listening = async (): Promise<void> => {
    await eventually('alerts answering', async () => ((await fetch(`${httpUrl}/health`).catch(() => undefined)) !== undefined ? true : undefined));
  };
  const first = startProcess('alarm-restart-alerts', 'alerts/main.ts', env);
  procs.push(first);
  await first.waitForOutput(/alerts listening/);
  await listening();

  const callPoint = await device(mqttUrl, 'h01-mcp-f1-corridor');
  await callPoint.event('manual_call_point');
  await callPoint.close();
  // The alarm is in InfluxDB (so the journal has sent it): kill at once, before a periodic snapshot.
  await eventually('the alarm in InfluxDB', async () => {
    const series = await influxQuery(influx!.url, database, `SELECT "id" FROM "alert" WHERE "home" = 'h01'`).catch(() => []);
    return series.some((s) => s.values.length > 0) ? true : undefined;
  }, 30_000, 10);
  await first.kill('SIGKILL');
  await influx.stop();

  const second = startProcess('alarm-restart-alerts-2', 'alerts/main.ts', env);
  procs.push(second);
  await second.waitForOutput(/alerts listening/, 60_000);
  const { token } = await login(httpUrl, 'staff-h01');
  const open = (await (await fetch(`${httpUrl}/api/alerts`, { headers: { authorization: `Bearer ${token}` } })).json()) as AlertMessage[];
  expect(open.filter((a) => a.deviceId === 'h01-mcp-f1-corridor' && a.category === 'fire' && a.signal === 'alarm').length).toBe(1);
});
