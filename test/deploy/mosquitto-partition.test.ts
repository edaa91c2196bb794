import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../common/influxd.ts';
import { homeSessionId } from '../../common/homes.ts';
import { deviceCommandTopic, deviceTopic, homeDeviceFilter } from '../../contract/topics.ts';
import { watch, type WatchClient } from '../e2e/stack.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { startMosquitto, type MosquittoServer } from '../support/mosquitto.ts';
import { eventually, startProcess, type TestProcess } from '../support/process.ts';
import { DEMO_SITE_PATH, demoSecret } from '../support/registry.ts';

/**
 * Issue 14: services partitioned by home (docs/scaling.md) on Mosquitto 2.0 with the password and ACL
 * files scripts/mosquitto-config.ts generates. A partitioned instance opens one persistent session per
 * home (`svc-ingest-home-h01`) with per-home filters (`carewatch/v1/h01/+/telemetry`, contract/topics.ts
 * homeDeviceFilter), narrower than the service's grant `carewatch/v1/+/+/telemetry`: Mosquitto's ACL
 * must grant them (it checks a SUBSCRIBE's filter against the ACL pattern level by level), and the
 * instance must get its homes' messages and no other home's. Devices stay confined to their own
 * topics: no per-home filter, no other home's topic.
 */
const { url: influxUrl, database } = testInflux('mosqpart');
/** SUBACK return code 0x80: failure [MQTT-3.9.3]; Mosquitto 2 sends it for a filter the ACL denies. */
const SUBACK_FAILURE = 128;

describe('partitioned ingest and alerts on Mosquitto with the generated ACLs', () => {
  let mosq: MosquittoServer;
  let dir: string;
  let httpUrl: string;
  let ingestPort: number;
  const processes: TestProcess[] = [];
  const clients: MqttClient[] = [];
  const pages: WatchClient[] = [];

  async function connect(url: string, username: string, extra: IClientOptions = {}): Promise<MqttClient> {
    const c = await mqtt.connectAsync(url, { clientId: username, username, password: demoSecret(username), protocolVersion: 4, reconnectPeriod: 0, ...extra });
    clients.push(c);
    return c;
  }
  const reading = (seq: number): string => JSON.stringify({ ts: Date.now(), seq, metrics: { temperature_c: 21, smoke_obscuration_pct_per_m: 0.1 } });

  beforeAll(async () => {
    mosq = await startMosquitto(DEMO_SITE_PATH);
    dir = await mkdtemp(join(tmpdir(), 'carewatch-mosq-part-'));
    const common = {
      CAREWATCH_REGISTRY: DEMO_SITE_PATH,
      CAREWATCH_MQTT_URL: mosq.servicesUrl,
      CAREWATCH_INFLUX_URL: influxUrl,
      CAREWATCH_INFLUX_DB: database,
      CAREWATCH_RECEIVE_STAMP: 'service',
    };
    ingestPort = await freePort();
    const ingest = startProcess('mosq-part-ingest', 'ingest/main.ts', {
      ...common,
      CAREWATCH_HOMES: 'h01,h03',
      CAREWATCH_INGEST_PASSWORD: demoSecret('svc-ingest'),
      CAREWATCH_SPOOL_DIR: join(dir, 'spool'),
      CAREWATCH_INGEST_HTTP_PORT: String(ingestPort),
    });
    processes.push(ingest);
    const httpPort = await freePort();
    const alerts = startProcess('mosq-part-alerts', 'alerts/main.ts', {
      ...common,
      CAREWATCH_HOMES: 'h01',
      CAREWATCH_INSTANCE: 'm1',
      CAREWATCH_ALERTS_PASSWORD: demoSecret('svc-alerts'),
      CAREWATCH_HTTP_PORT: String(httpPort),
      CAREWATCH_STATE_DIR: join(dir, 'alerts-state'),
      UV_THREADPOOL_SIZE: '16',
    });
    processes.push(alerts);
    httpUrl = `http://127.0.0.1:${httpPort}`;
    await eventually('partitioned ingest subscribed on Mosquitto', async () => {
      const s = (await (await fetch(`http://127.0.0.1:${ingestPort}/stats`)).json()) as { mqtt?: { subscribed?: boolean } };
      return s.mqtt?.subscribed === true ? true : undefined;
    }, 120_000, 250);
    await eventually('partitioned alerts healthy on Mosquitto', async () => ((await fetch(`${httpUrl}/healthz`)).ok ? true : undefined), 120_000, 250);
  }, 240_000);

  afterAll(async () => {
    for (const p of pages) p.close();
    for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
    for (const p of processes.reverse()) await p.stop();
    await mosq?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("grants a home's own session its per-home filters; it receives that home's messages and no other home's", async () => {
    // A third instance's session of home h02, as ingest opens it (persistent, QoS 1, per-home filters).
    const svc = await connect(mosq.servicesUrl, 'svc-ingest', { clientId: homeSessionId('svc-ingest', 'h02'), clean: false });
    const got: string[] = [];
    svc.on('message', (topic) => got.push(topic));
    const granted = await svc.subscribeAsync(['telemetry', 'event', 'status'].map((c) => homeDeviceFilter('h02', c as 'telemetry')), { qos: 1 });
    expect(granted.map((g) => g.qos)).toEqual([1, 1, 1]);
    const d1 = await connect(mosq.devicesUrl, 'h01-sd-r101');
    const d2 = await connect(mosq.devicesUrl, 'h02-sd-r101');
    await d1.publishAsync(deviceTopic('h01', 'h01-sd-r101', 'telemetry'), reading(1), { qos: 1 });
    await d2.publishAsync(deviceTopic('h02', 'h02-sd-r101', 'event'), JSON.stringify({ ts: Date.now(), seq: 2, type: 'battery_low' }), { qos: 1 });
    await d2.publishAsync(deviceTopic('h02', 'h02-sd-r101', 'telemetry'), reading(3), { qos: 1 });
    await eventually("h02's telemetry at h02's session", () => (got.includes(deviceTopic('h02', 'h02-sd-r101', 'telemetry')) ? true : undefined));
    expect(got).toEqual([deviceTopic('h02', 'h02-sd-r101', 'event'), deviceTopic('h02', 'h02-sd-r101', 'telemetry')]);
  });

  it('stores the telemetry of the homes the ingest instance owns (h01, h03) and nothing of h02', async () => {
    const ids = ['h01-sd-r102', 'h02-sd-r102', 'h03-sd-r102'];
    const ds = await Promise.all(ids.map((id) => connect(mosq.devicesUrl, id)));
    const N = 5;
    for (let seq = 0; seq < N; seq++) for (const [i, d] of ds.entries()) await d.publishAsync(deviceTopic(ids[i]?.slice(0, 3) ?? '', ids[i] ?? '', 'telemetry'), reading(seq), { qos: 1 });
    const countOf = async (id: string): Promise<number> => {
      const rows = (await influxQuery(influxUrl, database, `SELECT COUNT("seq") FROM "raw"."telemetry" WHERE "device" = '${id}'`)).flatMap((s) => s.values);
      return Number(rows[0]?.[1] ?? 0);
    };
    for (const id of ['h01-sd-r102', 'h03-sd-r102']) await eventually(`${N} readings of ${id}`, async () => ((await countOf(id)) === N ? true : undefined), 60_000, 250);
    // h02's readings were published before h03's last ones: had they reached this instance, they would be stored by now.
    expect(await countOf('h02-sd-r102')).toBe(0);
    const stats = (await (await fetch(`http://127.0.0.1:${ingestPort}/stats`)).json()) as { received: number; retainedSkipped: number };
    // h01-sd-r101's reading of the first test, and these 2 × N.
    expect(stats.received - stats.retainedSkipped).toBe(2 * N + 1);
  }, 120_000);

  it("raises a fire of the alerts instance's own home (h01) for its staff; a fire in h02 is not its to raise", async () => {
    const [staff1, staff2] = await Promise.all([watch(httpUrl, 'staff-h01'), watch(httpUrl, 'staff-h02')]);
    pages.push(staff1, staff2);
    const mcp2 = await connect(mosq.devicesUrl, 'h02-mcp-f1-corridor');
    await mcp2.publishAsync(deviceTopic('h02', 'h02-mcp-f1-corridor', 'event'), JSON.stringify({ ts: Date.now(), seq: 0, type: 'manual_call_point' }), { qos: 1 });
    const mcp1 = await connect(mosq.devicesUrl, 'h01-mcp-f1-corridor');
    await mcp1.publishAsync(deviceTopic('h01', 'h01-mcp-f1-corridor', 'event'), JSON.stringify({ ts: Date.now(), seq: 0, type: 'manual_call_point' }), { qos: 1 });
    await staff1.waitFor('the h01 fire', (a) => a.homeId === 'h01' && a.deviceId === 'h01-mcp-f1-corridor' && a.category === 'fire' && a.signal === 'alarm');
    // h02's call point was published first, on the same Mosquitto: this instance saw none of it.
    const { token } = (await (await fetch(`${httpUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'demo-admin' }) })).json()) as { token: string };
    const open = (await (await fetch(`${httpUrl}/api/alerts`, { headers: { authorization: `Bearer ${token}` } })).json()) as Array<{ homeId: string }>;
    expect(open.filter((a) => a.homeId !== 'h01')).toEqual([]);
    expect(staff2.received).toEqual([]);
    expect(staff1.received.filter((a) => a.homeId !== 'h01')).toEqual([]);
  }, 120_000);

  it('confines a device to its own topics: it receives nothing of its home or of another home, and cannot publish under another home', async () => {
    const spy = await connect(mosq.devicesUrl, 'h01-sd-r103');
    const seen: string[] = [];
    spy.on('message', (topic) => seen.push(topic));
    const ownCommand = deviceCommandTopic('h01', 'h01-sd-r103');
    expect((await spy.subscribeAsync(ownCommand, { qos: 1 })).map((g) => g.qos)).toEqual([1]);
    // Mosquitto 2.0 answers these with a granted QoS (its ACL file checks `read` at each delivery, not
    // at SUBSCRIBE); what matters is that nothing is ever delivered on them (below).
    const foreign = [homeDeviceFilter('h01', 'telemetry'), homeDeviceFilter('h01', 'event'), homeDeviceFilter('h02', 'telemetry'), deviceTopic('h01', 'h01-sd-r104', 'telemetry'), deviceCommandTopic('h01', 'h01-sd-r104'), 'carewatch/#'];
    const codes = (await spy.subscribeAsync(foreign, { qos: 1 })).map((g) => g.qos);
    expect(codes.every((q) => q === 1 || q === SUBACK_FAILURE)).toBe(true);

    // A device publishing its own id under another home: dropped, and the connection closed (Mosquitto 2 on a denied QoS 1 publish, MQTT 3.1.1).
    const svc = await connect(mosq.servicesUrl, 'svc-ingest', { clientId: 'svc-ingest-spy-h02' });
    const atService: string[] = [];
    svc.on('message', (topic) => atService.push(topic));
    await svc.subscribeAsync(homeDeviceFilter('h02', 'telemetry'), { qos: 1 });
    const forger = await connect(mosq.devicesUrl, 'h01-sd-r104');
    const closed = new Promise<void>((resolve) => forger.once('close', () => resolve()));
    await forger.publishAsync(deviceTopic('h02', 'h01-sd-r104', 'telemetry'), reading(9), { qos: 1 });
    await closed;
    // A genuine h02 reading published after it arrives; the forged one never does.
    const genuine = await connect(mosq.devicesUrl, 'h02-sd-r103');
    await genuine.publishAsync(deviceTopic('h02', 'h02-sd-r103', 'telemetry'), reading(10), { qos: 1 });
    await eventually('the genuine h02 reading', () => (atService.length > 0 ? true : undefined));
    expect(atService).toEqual([deviceTopic('h02', 'h02-sd-r103', 'telemetry')]);

    // Traffic on every foreign filter: a neighbour's reading and event, another home's reading, a
    // neighbour's command; then the spy's own command. Mosquitto routes each PUBLISH before its
    // PUBACK, one at a time: when the own command has arrived, anything wrongly routed to the spy had.
    const neighbour = await connect(mosq.devicesUrl, 'h01-sd-r104');
    await neighbour.publishAsync(deviceTopic('h01', 'h01-sd-r104', 'telemetry'), reading(11), { qos: 1 });
    await neighbour.publishAsync(deviceTopic('h01', 'h01-sd-r104', 'event'), JSON.stringify({ ts: Date.now(), seq: 12, type: 'battery_low' }), { qos: 1 });
    await genuine.publishAsync(deviceTopic('h02', 'h02-sd-r103', 'telemetry'), reading(13), { qos: 1 });
    const commander = await connect(mosq.servicesUrl, 'svc-alerts', { clientId: 'svc-alerts-probe' });
    const command = JSON.stringify({ ts: Date.now(), command: 'self_test' });
    await commander.publishAsync(deviceCommandTopic('h01', 'h01-sd-r104'), command, { qos: 1 });
    await commander.publishAsync(ownCommand, command, { qos: 1 });
    await eventually('the spy\'s own command', () => (seen.includes(ownCommand) ? true : undefined));
    // Its own command, once per matching subscription (its own filter and `carewatch/#`), and nothing else.
    expect(seen.filter((t) => t !== ownCommand)).toEqual([]);
  }, 60_000);
});

