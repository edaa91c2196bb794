import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../common/influxd.ts';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { startMosquitto, type MosquittoServer } from '../support/mosquitto.ts';
import { eventually, startProcess, type TestProcess } from '../support/process.ts';
import { DEMO_SITE_PATH, demoRegistry, demoSecret } from '../support/registry.ts';
import { watch, type WatchClient } from '../e2e/stack.ts';
import { launchChromium } from '../dashboards/support/browser.ts';

/**
 * Issue 14 "Mosquitto as a drop-in broker": Debian's Mosquitto 2.0 with the files
 * scripts/mosquitto-config.ts generates from the demo registry, and the real ingest (two instances
 * sharing `$share/ingest/…`) and alerts processes started from their main.ts, unchanged but for
 * their configuration (CAREWATCH_RECEIVE_STAMP=service, CAREWATCH_INGEST_SHARE_GROUP), on a real
 * InfluxDB; real mqtt.js devices and a logged-in socket.io client of the duty staff.
 */
const registry = demoRegistry();
const { url: influxUrl, database } = testInflux('mosq');

interface IngestStats {
  received: number;
  retainedSkipped: number;
  mqtt: { subscribed: boolean };
}

describe('carewatch on Mosquitto with the generated password and ACL files', () => {
  let mosq: MosquittoServer;
  let dir: string;
  let httpUrl: string;
  const processes: TestProcess[] = [];
  let common: Record<string, string>;
  const ingests: Partial<Record<'a' | 'b', { proc: TestProcess; stats: () => Promise<IngestStats> }>> = {};
  const clients: MqttClient[] = [];

  /** A device of the demo site on the device listener (MQTT 3.1.1 unless said otherwise). */
  async function device(id: string, extra: IClientOptions = {}): Promise<MqttClient> {
    const c = await mqtt.connectAsync(mosq.devicesUrl, { clientId: id, username: id, password: demoSecret(id), protocolVersion: 4, reconnectPeriod: 0, ...extra });
    clients.push(c);
    return c;
  }
  const receivedBy = async (name: 'a' | 'b'): Promise<number> => {
    const i = ingests[name];
    if (i === undefined) throw new Error(`ingest-${name} not started`);
    // Retained copies re-sent at SUBSCRIBE (the statuses of earlier tests) are received, not stored.
    const s = await i.stats();
    return s.received - s.retainedSkipped;
  };
  const received = async (): Promise<number[]> => [await receivedBy('a'), await receivedBy('b')];

  /** An ingest process of the `$share/ingest` group, with its own client id and spool directory. */
  async function startIngest(name: 'a' | 'b'): Promise<void> {
    const p = startProcess(`ingest-${name}`, 'ingest/main.ts', {
      ...common,
      CAREWATCH_INGEST_PASSWORD: 'demo-svc-ingest',
      CAREWATCH_INGEST_CLIENT_ID: `svc-ingest-${name}`,
      CAREWATCH_INGEST_SHARE_GROUP: 'ingest',
      CAREWATCH_SPOOL_DIR: join(dir, `spool-${name}`),
      CAREWATCH_INGEST_HTTP_PORT: '0',
    });
    processes.push(p);
    const m = await p.waitForOutput(/health http:\/\/127\.0\.0\.1:(\d+)\/healthz/);
    const stats = async (): Promise<IngestStats> => (await (await fetch(`http://127.0.0.1:${m[1]}/stats`)).json()) as IngestStats;
    ingests[name] = { proc: p, stats };
    await eventually(`ingest-${name} subscribed`, async () => ((await stats()).mqtt.subscribed ? true : undefined));
  }

  beforeAll(async () => {
    mosq = await startMosquitto(DEMO_SITE_PATH);
    dir = await mkdtemp(join(tmpdir(), 'carewatch-mosq-test-'));
    common = {
      CAREWATCH_REGISTRY: DEMO_SITE_PATH,
      CAREWATCH_MQTT_URL: mosq.servicesUrl,
      CAREWATCH_INFLUX_URL: influxUrl,
      CAREWATCH_INFLUX_DB: database,
      CAREWATCH_RECEIVE_STAMP: 'service',
    };
    for (const name of ['a', 'b'] as const) await startIngest(name);
    const httpPort = await freePort();
    const alerts = startProcess('alerts', 'alerts/main.ts', {
      ...common,
      CAREWATCH_ALERTS_PASSWORD: 'demo-svc-alerts',
      CAREWATCH_HTTP_PORT: String(httpPort),
      CAREWATCH_STATE_DIR: join(dir, 'alerts-state'),
      UV_THREADPOOL_SIZE: '16',
    });
    processes.push(alerts);
    httpUrl = `http://127.0.0.1:${httpPort}`;
    await alerts.waitForOutput(/alerts listening/);
    // Both of its subscribing sessions are up (its /health says so).
    await eventually('alerts connected to Mosquitto', async () => ((await fetch(`${httpUrl}/health`)).ok ? true : undefined));
  }, 120_000);

  afterAll(async () => {
    for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
    for (const p of processes.reverse()) await p.stop();
    await mosq?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("refuses a device publishing under another device's topic: it reaches neither a subscriber nor InfluxDB", async () => {
    const victim = 'h01-sd-r102';
    const forgedTopic = deviceTopic('h01', victim, 'telemetry');
    const reading = (seq: number): string => JSON.stringify({ ts: Date.now(), seq, metrics: { smoke_obscuration_pct_per_m: 0.1 } });
    // A subscriber beside ingest, with ingest's own grant, sees everything the ACL lets through.
    const spy = await mqtt.connectAsync(mosq.servicesUrl, { clientId: 'svc-ingest-spy', username: 'svc-ingest', password: 'demo-svc-ingest', protocolVersion: 4, reconnectPeriod: 0 });
    clients.push(spy);
    const seen: string[] = [];
    spy.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    await spy.subscribeAsync(FILTERS.telemetry, { qos: 1 });

    // MQTT 3.1.1 has no refusal code for PUBLISH: Mosquitto 2.0 acknowledges, drops the message and
    // closes the connection (as carewatch's broker does, [MQTT-3.3.5-2]).
    const forger = await device('h02-sd-r101');
    const closed = new Promise<void>((resolve) => forger.once('close', () => resolve()));
    await forger.publishAsync(forgedTopic, reading(777_001), { qos: 1 });
    await closed;
    // MQTT 5 says why: PUBACK reason code 0x87 Not authorized.
    const forger5 = await device('h02-sd-r102', { protocolVersion: 5 });
    await expect(forger5.publishAsync(forgedTopic, reading(777_002), { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    // A QoS 0 forgery from another home's device of the same kind in the victim's home.
    const forger0 = await device('h01-sd-r103');
    const closed0 = new Promise<void>((resolve) => forger0.once('close', () => resolve()));
    await forger0.publishAsync(forgedTopic, reading(777_003), { qos: 0 });
    await closed0;

    // The victim's own reading, published after every forgery was handled, arrives and is stored.
    const own = await device(victim);
    await own.publishAsync(forgedTopic, reading(777_004), { qos: 1 });
    await eventually('the genuine reading at the spy', () => (seen.some((s) => s.includes('777004')) ? true : undefined));
    const stored = await eventually('the genuine reading in InfluxDB', async () => {
      const s = await influxQuery(influxUrl, database, `SELECT seq FROM "raw"."telemetry" WHERE "device" = '${victim}'`);
      return s.length > 0 ? s.flatMap((x) => x.values.map((v) => v[1])) : undefined;
    });
    expect(stored).toEqual([777_004]);
    expect(seen.filter((s) => /77700[123]/.test(s))).toEqual([]);
    // Not even as a rejection: ingest never received it.
    const rejected = await influxQuery(influxUrl, database, 'SELECT * FROM "raw"."rejected"');
    expect(JSON.stringify(rejected)).not.toMatch(/77700[123]/);

    // One device cannot take over another's session by its client id: the device listener replaces
    // the client id with the username (carewatch's broker refuses it, BROKER_CLIENT_ID_MISMATCH).
    await device('h01-sd-r104', { clientId: victim });
    await own.publishAsync(forgedTopic, reading(777_005), { qos: 1 });
    expect(own.connected).toBe(true);
    // A device's credentials are not accepted on the services' listener, nor a wrong password.
    await expect(mqtt.connectAsync(mosq.servicesUrl, { clientId: victim, username: victim, password: demoSecret(victim), protocolVersion: 4, reconnectPeriod: 0 })).rejects.toThrow(/Not authorized|Bad username/);
    await expect(mqtt.connectAsync(mosq.devicesUrl, { clientId: victim, username: victim, password: 'demo-wrong', protocolVersion: 4, reconnectPeriod: 0 })).rejects.toThrow(/Not authorized|Bad username/);
    await spy.endAsync();
  });

  it('stores every reading exactly once, split between the two ingest instances by $share', async () => {
    const devices = ['h03-sd-r101', 'h03-sd-r102', 'h03-sd-r103', 'h03-sd-r104', 'h03-sd-r105'];
    const PER_DEVICE = 40;
    const before = await received();
    const base = Date.now() - 60_000;
    await Promise.all(
      devices.map(async (id) => {
        const c = await device(id);
        for (let seq = 0; seq < PER_DEVICE; seq++) {
          await c.publishAsync(deviceTopic('h03', id, 'telemetry'), JSON.stringify({ ts: base + seq, seq, metrics: { smoke_obscuration_pct_per_m: 0.1 } }), { qos: 1 });
        }
      }),
    );
    const total = devices.length * PER_DEVICE;
    const where = `"device" =~ /^h03-sd-r10[1-5]$/`;
    await eventually(`${total} readings in InfluxDB`, async () => {
      const s = await influxQuery(influxUrl, database, `SELECT count(seq) FROM "raw"."telemetry" WHERE ${where}`);
      return s[0]?.values[0]?.[1] === total ? true : undefined;
    });
    // Each reading went to one instance: a second copy (no $share: both instances get all) would
    // arrive within the same moment as the first; give it a second to show up.
    await eventually('both instances to have received the readings', async () => {
      const now = await received();
      return now.reduce((a, n, i) => a + n - (before[i] ?? 0), 0) >= total ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 1000));
    const deltas = (await received()).map((n, i) => n - (before[i] ?? 0));
    expect(deltas.reduce((a, b) => a + b, 0)).toBe(total);
    for (const d of deltas) expect(d).toBeGreaterThan(0);
    // Every stored reading carries ingest's receive stamp (Mosquitto stamps nothing).
    const stamped = await influxQuery(influxUrl, database, `SELECT count(broker_ts) FROM "raw"."telemetry" WHERE ${where}`);
    expect(stamped[0]?.values[0]?.[1]).toBe(total);
  });

  it('brings a smoke alarm event to the duty staff of its home over socket.io, and nobody else', async () => {
    const staff1: WatchClient = await watch(httpUrl, 'staff-h01');
    const staff2: WatchClient = await watch(httpUrl, 'staff-h02');
    try {
      const sd = await device('h01-sd-r105');
      const ts = Date.now();
      await sd.publishAsync(deviceTopic('h01', 'h01-sd-r105', 'event'), JSON.stringify({ ts, seq: 1, type: 'detector_alarm' }), { qos: 1 });
      const fire = await staff1.waitFor('the fire alarm of h01-sd-r105', (a) => a.category === 'fire' && a.deviceId === 'h01-sd-r105' && a.signal === 'alarm');
      expect(fire).toMatchObject({ homeId: 'h01', roomId: 'r105', severity: 'critical', sourceTs: ts });
      // The alerts process stamped its own receive time (GB 50440 timing keeps a platform instant).
      expect(typeof fire.brokerTs).toBe('number');
      expect(staff2.received.filter((a) => a.homeId === 'h01')).toEqual([]);
      // Ingest stored the event too, with its receive stamp.
      const ev = await eventually('the event in InfluxDB', async () => {
        const s = await influxQuery(influxUrl, database, `SELECT "type", broker_ts FROM "event" WHERE "device" = 'h01-sd-r105'`);
        return s[0]?.values[0];
      });
      expect(ev[1]).toBe('detector_alarm');
      expect(typeof ev[2]).toBe('number');
    } finally {
      staff1.close();
      staff2.close();
    }
  });

  it("shows a smoke detector's alarm on the duty staff's live page in Chromium", async () => {
    const browser = await launchChromium();
    const staff: WatchClient = await watch(httpUrl, 'staff-h01');
    try {
      const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      await page.goto(httpUrl);
      await page.getByTestId('login-username').fill('staff-h01');
      await page.getByTestId('login-password').fill('demo-staff-h01');
      await page.getByTestId('login-submit').click();
      await page.getByTestId('conn-banner').and(page.locator('[data-state="online"]')).waitFor();
      const sd = await device('h01-sd-r101');
      await sd.publishAsync(deviceTopic('h01', 'h01-sd-r101', 'event'), JSON.stringify({ ts: Date.now(), seq: 1, type: 'detector_alarm' }), { qos: 1 });
      const fire = await staff.waitFor('the fire alarm of h01-sd-r101', (a) => a.category === 'fire' && a.deviceId === 'h01-sd-r101' && a.signal === 'alarm');
      // On the page as its own fire or inside the home's fire incident (docs/alerts.md).
      await page.locator(`:is([data-testid="pinned-fire"], [data-testid="fire-row"], [data-testid="incident-row"]):is([data-alert-id="${fire.id}"], [data-alert-ids~="${fire.id}"], :has([data-alert-ids~="${fire.id}"]))`).first().waitFor();
    } finally {
      staff.close();
      await browser.close();
    }
  });

  it("stamps the receive time itself: a device's own brokerTs cannot move the clock window", async () => {
    const id = 'h03-sd-f1-corridor';
    const c = await device(id);
    // Ten days old, with a forged "broker stamp" of the same time: carewatch's broker would have
    // overwritten it; behind Mosquitto ingest does, and refuses the reading (CLOCK_SKEW).
    const old = Date.now() - 10 * 86_400_000;
    await c.publishAsync(deviceTopic('h03', id, 'telemetry'), JSON.stringify({ ts: old, seq: 5, brokerTs: old, metrics: { smoke_obscuration_pct_per_m: 0.1 } }), { qos: 1 });
    const row = await eventually('the rejection', async () => {
      const s = await influxQuery(influxUrl, database, `SELECT * FROM "raw"."rejected" WHERE "device" = '${id}'`);
      return s[0];
    });
    expect(row.values[0]?.[row.columns.indexOf('code')]).toBe('CLOCK_SKEW');
    expect((await influxQuery(influxUrl, database, `SELECT seq FROM "raw"."telemetry" WHERE "device" = '${id}'`)).length).toBe(0);
  });

  it("publishes a device's will on a lost connection, completed by the services; a will on another device's topic is dropped", async () => {
    const will = (target: string): IClientOptions['will'] => ({ topic: deviceTopic('h04', target, 'status'), payload: Buffer.from('{"online":false}'), qos: 1, retain: true });
    // A will naming another device: Mosquitto 2.0 accepts the CONNECT but checks the ACL when it
    // publishes the will, so nothing is published.
    const liar = await device('h04-sd-r102', { will: will('h04-sd-r103') });
    liar.stream.destroy();
    await mosq.waitForOutput(/Client h04-sd-r102 closed its connection/);
    const honest = await device('h04-sd-r101', { will: will('h04-sd-r101') });
    await honest.publishAsync(deviceTopic('h04', 'h04-sd-r101', 'status'), JSON.stringify({ ts: Date.now(), online: true }), { qos: 1, retain: true });
    honest.stream.destroy(); // no DISCONNECT: the connection is lost
    const rows = await eventually('the offline status in InfluxDB', async () => {
      const s = await influxQuery(influxUrl, database, `SELECT online, reason, broker_ts FROM "status" WHERE "device" = 'h04-sd-r101' AND online = false`);
      return s[0]?.values;
    });
    expect(rows[0]?.[2]).toBe('connection_lost');
    expect(typeof rows[0]?.[3]).toBe('number');
    expect(await influxQuery(influxUrl, database, `SELECT * FROM "status" WHERE "device" = 'h04-sd-r103'`)).toEqual([]);
  });

  it("keeps the share of an ingest instance that is down in that instance's session until it is back: nothing lost", async () => {
    // Mosquitto 2.0 keeps handing an offline persistent member of a shared subscription its turn
    // (round robin): those messages wait in its session, not at the other member.
    await ingests.b?.proc.stop();
    const beforeA = await receivedBy('a');
    const devices = ['h05-sd-r101', 'h05-sd-r102', 'h05-sd-r103'];
    const PER_DEVICE = 20;
    const base = Date.now() - 60_000;
    for (const id of devices) {
      const c = await device(id);
      for (let seq = 0; seq < PER_DEVICE; seq++) {
        await c.publishAsync(deviceTopic('h05', id, 'telemetry'), JSON.stringify({ ts: base + seq, seq, metrics: { smoke_obscuration_pct_per_m: 0.1 } }), { qos: 1 });
      }
    }
    const total = devices.length * PER_DEVICE;
    const where = `"device" =~ /^h05-sd-r10[1-3]$/`;
    const count = async (): Promise<number> => {
      const s = await influxQuery(influxUrl, database, `SELECT count(seq) FROM "raw"."telemetry" WHERE ${where}`);
      const v = s[0]?.values[0]?.[1];
      return typeof v === 'number' ? v : 0;
    };
    // Instance a stores what it was given, which is not everything.
    const fromA = await eventually('instance a to store its share', async () => {
      const a = await receivedBy('a');
      return a - beforeA > 0 && (await count()) === a - beforeA ? a - beforeA : undefined;
    });
    expect(fromA).toBeLessThan(total);
    // Instance b comes back under the same client id and gets the rest from its session.
    await startIngest('b');
    await eventually(`all ${total} readings in InfluxDB`, async () => ((await count()) === total ? true : undefined));
    // The new process counts from zero: everything it received came from its session.
    const fromB = await receivedBy('b');
    expect(fromA + fromB).toBe(total);
    // The will stored in the earlier test was re-sent to b as a retained copy at its SUBSCRIBE; it
    // is not stored again at a new time.
    const offline = await influxQuery(influxUrl, database, `SELECT count(online) FROM "status" WHERE "device" = 'h04-sd-r101' AND online = false`);
    expect(offline[0]?.values[0]?.[1]).toBe(1);
    expect(((await ingests.b?.stats()) as IngestStats).retainedSkipped).toBeGreaterThan(0);
  }, 60_000);
});
