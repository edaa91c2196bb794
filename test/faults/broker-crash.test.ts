import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tcpConnect } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../common/influxd.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { eventually, startProcess, type TestProcess } from '../support/process.ts';
import { DEMO_SITE_PATH, demoSecret } from '../support/registry.ts';
import { mulberry32 } from '../../device-sim/prng.ts';

/**
 * Issue 12 "Nothing acknowledged is lost when the broker crashes", as a tester tried it: 50 devices
 * send QoS 1 telemetry with per-device sequence numbers at about 1,000 msg/s through the real broker
 * process to a real ingest process and InfluxDB; the broker is SIGKILLed twice at random moments and
 * restarted on the same store. Every message a device saw PUBACKed must end up in InfluxDB exactly
 * once. Run for the default store (journal on disk) and for Redis.
 *
 * The kill moments come from a seeded generator; the seed is printed, and BROKER_CRASH_SEED repeats a run.
 */

const DEVICES = 50;
/** Per device: 20 msg/s × 50 devices ≈ 1,000 msg/s. */
const INTERVAL_MS = 50;
/** Load before the first kill, between the kills, after the second: a random pick in [min, min + spread). */
const PHASE_MIN_MS = 2_500;
const PHASE_SPREAD_MS = 2_500;
/**
 * Start of today (UTC): device ts = BASE_TS + seq ms, distinct per message of a device. Recent, because
 * the real broker stamps its own time and a reading more than 7 days older than that stamp is refused
 * (contract/device-message.ts CLOCK_WINDOW).
 */
const BASE_TS = Math.floor(Date.now() / 86_400_000) * 86_400_000;
/** Only this file uses database 6 of the run's private Redis; it is flushed first. */
const REDIS_DB = 6;

interface SiteDevice {
  id: string;
  homeId: string;
  kind: string;
}

async function loadDevices(): Promise<SiteDevice[]> {
  const site = JSON.parse(await readFile(DEMO_SITE_PATH, 'utf8')) as { devices: SiteDevice[] };
  const sd = site.devices.filter((d) => d.kind === 'smoke_detector').slice(0, DEVICES);
  if (sd.length < DEVICES) throw new Error(`demo site has only ${sd.length} smoke detectors`);
  return sd;
}

/** A small seeded generator (the simulator's mulberry32), so a failing run can be repeated. */
const seeded = mulberry32;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Fleet {
  /** device id → seqs PUBACKed by the broker. */
  readonly acked: Map<string, Set<number>>;
  /** device id → seqs published so far (0..n-1). */
  readonly sent: Map<string, number>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

/** Each device publishes numbered telemetry at QoS 1 every INTERVAL_MS; mqtt.js resends unacknowledged ones after a reconnect. */
async function startFleet(url: string, devices: SiteDevice[]): Promise<Fleet> {
  const acked = new Map<string, Set<number>>();
  const sent = new Map<string, number>();
  const clients: MqttClient[] = [];
  const pending = new Set<Promise<unknown>>();
  let running = true;
  const loops: Promise<void>[] = [];
  for (const d of devices) {
    const c = await mqtt.connectAsync(url, { clientId: d.id, username: d.id, password: demoSecret(d.id), protocolVersion: 4, reconnectPeriod: 100, connectTimeout: 5_000 });
    clients.push(c);
    acked.set(d.id, new Set());
    sent.set(d.id, 0);
  }
  devices.forEach((d, i) => {
    const c = clients[i] as MqttClient;
    const topic = deviceTopic(d.homeId, d.id, 'telemetry');
    const mine = acked.get(d.id) as Set<number>;
    loops.push(
      (async () => {
        // Spread the devices over the interval.
        await sleep((i * INTERVAL_MS) / devices.length);
        for (let seq = 0; running; seq++) {
          const payload = JSON.stringify({ ts: BASE_TS + seq, seq, metrics: { temperature_c: 20 + (seq % 100) / 10, smoke_obscuration_pct_per_m: 0.1, battery_pct: 90 } });
          const p = c.publishAsync(topic, payload, { qos: 1 }).then(
            () => mine.add(seq),
            () => undefined,
          );
          pending.add(p);
          void p.finally(() => pending.delete(p));
          sent.set(d.id, seq + 1);
          await sleep(INTERVAL_MS);
        }
      })(),
    );
  });
  return {
    acked,
    sent,
    async stop() {
      running = false;
      await Promise.all(loops);
      // Every publish is eventually acknowledged: mqtt.js resends the unacknowledged ones.
      await eventually('all publishes acknowledged', () => (pending.size === 0 ? true : undefined), 120_000, 100);
    },
    async close() {
      running = false;
      await Promise.all(clients.map((c) => c.endAsync(true)));
    },
  };
}

/** device → seq → rows stored. */
async function storedRows(url: string, db: string): Promise<Map<string, Map<number, number>>> {
  const out = new Map<string, Map<number, number>>();
  // Readings live in the raw retention policy (common/influx-schema.ts), not the default one.
  for (const s of await influxQuery(url, db, 'SELECT seq FROM "raw"."telemetry" GROUP BY device')) {
    const device = s.tags?.device ?? '';
    const m = new Map<number, number>();
    for (const v of s.values) m.set(v[1] as number, (m.get(v[1] as number) ?? 0) + 1);
    out.set(device, m);
  }
  return out;
}

function missingAcked(acked: Map<string, Set<number>>, stored: Map<string, Map<number, number>>): number {
  let n = 0;
  for (const [d, seqs] of acked) for (const s of seqs) if (!stored.get(d)?.has(s)) n++;
  return n;
}

/** FLUSHDB of the url's database over a raw connection. */
function flushRedisDb(url: string): Promise<void> {
  const u = new URL(url);
  const cmd = (args: string[]): string => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    const s = tcpConnect(Number(u.port), u.hostname, () => s.write(cmd(['SELECT', u.pathname.slice(1)]) + cmd(['FLUSHDB'])));
    let reply = '';
    s.on('data', (d) => {
      reply += d.toString();
      if ((reply.match(/\r\n/g) ?? []).length >= 2) {
        s.end();
        if (/^-/m.test(reply)) reject(new Error(`redis: ${reply}`));
        else resolve();
      }
    });
    s.once('error', reject);
  });
}

const procs: TestProcess[] = [];
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const p of procs.splice(0)) await p.kill('SIGKILL');
  for (const c of cleanups.splice(0)) await c();
});

async function runCrashScenario(store: 'disk' | 'redis'): Promise<void> {
  const seed = Number(process.env.BROKER_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rnd = seeded(seed);
  const devices = await loadDevices();
  const { url: influxUrl, database } = testInflux(`brokercrash_${store}`);
  const [mqttPort, wsPort, ingestPort] = [await freePort(), await freePort(), await freePort()];
  const work = await mkdtemp(join(tmpdir(), 'carewatch-broker-crash-'));
  cleanups.push(() => rm(work, { recursive: true, force: true }));

  const brokerEnv: Record<string, string> = {
    CAREWATCH_REGISTRY: DEMO_SITE_PATH,
    CAREWATCH_BROKER_PORT: String(mqttPort),
    CAREWATCH_BROKER_WS_PORT: String(wsPort),
    CAREWATCH_BROKER_STORE_DIR: join(work, 'broker-store'),
    CAREWATCH_LOG_LEVEL: 'warn',
  };
  if (store === 'redis') {
    const redisUrl = `${inject('redisUrl')}/${REDIS_DB}`;
    await flushRedisDb(redisUrl);
    brokerEnv.CAREWATCH_BROKER_REDIS_URL = redisUrl;
  }
  let broker = startProcess(`broker-crash-${store}`, 'broker/main.ts', brokerEnv);
  procs.push(broker);
  await broker.waitForOutput(/broker listening/);
  const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;

  const ingest = startProcess(`ingest-broker-crash-${store}`, 'ingest/main.ts', {
    CAREWATCH_REGISTRY: DEMO_SITE_PATH,
    CAREWATCH_MQTT_URL: mqttUrl,
    CAREWATCH_INGEST_PASSWORD: demoSecret('svc-ingest'),
    CAREWATCH_INFLUX_URL: influxUrl,
    CAREWATCH_INFLUX_DB: database,
    CAREWATCH_SPOOL_DIR: join(work, 'spool'),
    CAREWATCH_INGEST_HTTP_PORT: String(ingestPort),
    CAREWATCH_LOG_LEVEL: 'warn',
  });
  procs.push(ingest);
  await eventually('ingest subscribed', async () => {
    const h = (await (await fetch(`http://127.0.0.1:${ingestPort}/health`)).json()) as { mqtt: { subscribed: boolean } };
    return h.mqtt.subscribed ? true : undefined;
  });

  const fleet = await startFleet(mqttUrl, devices);
  cleanups.push(() => fleet.close());
  const kills: string[] = [];
  for (let k = 0; k < 2; k++) {
    await sleep(PHASE_MIN_MS + rnd() * PHASE_SPREAD_MS);
    const ackedAtKill = [...fleet.acked.values()].reduce((a, s) => a + s.size, 0);
    await broker.kill('SIGKILL');
    kills.push(`kill ${k + 1} at ${ackedAtKill} acked`);
    broker = startProcess(`broker-crash-${store}`, 'broker/main.ts', brokerEnv);
    procs.push(broker);
    await broker.waitForOutput(/broker listening/);
  }
  await sleep(PHASE_MIN_MS + rnd() * PHASE_SPREAD_MS);
  await fleet.stop();
  const acked = fleet.acked;
  const total = [...acked.values()].reduce((a, s) => a + s.size, 0);

  // Everything acknowledged reaches InfluxDB; give up once the count has not moved for a while.
  let last = -1;
  let still = 0;
  let stored = await storedRows(influxUrl, database);
  for (;;) {
    const missing = missingAcked(acked, stored);
    if (missing === 0) break;
    still = missing === last ? still + 1 : 0;
    last = missing;
    if (still >= 60) break; // 30 s without progress
    await sleep(500);
    stored = await storedRows(influxUrl, database);
  }
  const missing = missingAcked(acked, stored);
  let duplicated = 0;
  let phantom = 0;
  for (const [d, m] of stored) {
    const sent = fleet.sent.get(d) ?? 0;
    for (const [s, n] of m) {
      if (n > 1) duplicated++;
      if (s >= sent) phantom++;
    }
  }
  process.stderr.write(`broker crash (${store}, seed ${seed}): ${kills.join(', ')}; ${total} acked, ${missing} of them missing in InfluxDB, ${duplicated} duplicated, ${phantom} never sent\n`);
  expect({ missing, duplicated, phantom }).toEqual({ missing: 0, duplicated: 0, phantom: 0 });
  // Really under load: thousands of messages, and every device's were acknowledged after each restart.
  expect(total).toBeGreaterThan(5_000);
}

describe('broker SIGKILL under QoS 1 load (issue 12)', () => {
  it('default store (journal on disk): every PUBACKed message is stored in InfluxDB exactly once', async () => {
    await runCrashScenario('disk');
  }, 240_000);

  it('Redis store: every PUBACKed message is stored in InfluxDB exactly once', async () => {
    await runCrashScenario('redis');
  }, 240_000);
});
