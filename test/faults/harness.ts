import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { io, type Socket } from 'socket.io-client';
import { createInfluxServer, freePort, type InfluxServer } from '../../common/influxd.ts';
import type { LoginResponse } from '../../contract/api.ts';
import type { AlertMessage } from '../../contract/payloads.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../../contract/socket-events.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { eventually, startProcess, type TestProcess } from '../support/process.ts';
import { DEMO_SITE_PATH, demoSecret } from '../support/registry.ts';
import { mulberry32 } from '../../device-sim/prng.ts';

/**
 * The fault harness of issue 12: the real broker (disk store), ingest and alerts processes, a private
 * InfluxDB that can be stopped, a fleet of devices sending numbered QoS 1 telemetry and counting
 * PUBACKs, hostile devices, socket.io clients of duty staff and the bureau counting fire alarms, and a
 * seeded chaos schedule of SIGKILLs and an InfluxDB outage. `runChaos` returns the counts that
 * `formatReport` prints; the tests (chaos.test.ts, spool-bound.test.ts) and the soak (soak.ts) assert
 * on them.
 *
 * Nothing here is mocked: every fault is one a real deployment has (a process killed by the OOM killer
 * or a power cut, a database that goes away for minutes, a device with a broken clock or firmware).
 */

export type ProcName = 'broker' | 'ingest' | 'alerts';

export interface ChaosOptions {
  /** Seed of the kill times and device choice; printed so that a run can be repeated. */
  readonly seed: number;
  /** How long the devices send. */
  readonly loadMs: number;
  /** Well-behaved devices (smoke detectors of the demo site) and each one's interval. */
  readonly devices: number;
  readonly intervalMs: number;
  /** SIGKILLs of each process during the load, at seeded random moments. */
  readonly kills: Readonly<Record<ProcName, number>>;
  /** InfluxDB outages (stopped by SIGKILL, restarted on the same data) and the length of each. */
  readonly influxOutages: number;
  readonly influxOutageMs: number;
  /** Ingest's spool bound (CAREWATCH_SPOOL_MAX_BYTES; its config minimum is 1 MiB). */
  readonly spoolMaxBytes: number;
  /** Fire alarms (manual call points) sent at seeded moments; one more is sent during each alerts kill. */
  readonly alarms: number;
  /** The four hostile devices (flood ×10, reconnect loop, out of order, clock hours off). */
  readonly hostile: boolean;
  /** Called every sample (about 2 s) with ingest's /health body, for tests that watch the spool. */
  readonly onIngestHealth?: (h: IngestHealth, at: { influxDown: boolean; spoolDirBytes: number }) => void;
  /** Progress lines (stderr by default). */
  readonly log?: (line: string) => void;
}

export interface IngestHealth {
  readonly received: number;
  readonly acked: number;
  readonly rejected: Record<string, number>;
  readonly spool: { readonly bytes: number };
  readonly mqtt: { readonly paused: boolean; readonly connected: boolean };
}

export interface HostileCounts {
  readonly device: string;
  readonly behaviour: string;
  readonly sent: number;
  readonly acked: number;
  readonly stored: number;
  /** Rejections stored by ingest (`rejected` measurement) for this device, by reason code. */
  readonly rejected: Record<string, number>;
  /** Connections this device opened. */
  readonly connections: number;
  /** Publishes that failed at the device (no PUBACK), by error message. */
  readonly errors: Record<string, number>;
}

export interface ChaosReport {
  readonly seed: number;
  readonly schedule: string[];
  readonly sent: number;
  readonly acknowledged: number;
  /** Publishes the device's client reported failed (no PUBACK: the device knows to send again). */
  readonly publishErrors: number;
  /** Distinct (device, seq) stored in InfluxDB, of the messages meant to be stored (not the clock-skewed device's). */
  readonly stored: number;
  /** (device, seq) stored more than once (under different timestamps): idempotent writes make this 0. */
  readonly duplicates: number;
  /** Acknowledged and meant to be stored, but not in InfluxDB. */
  readonly lost: number;
  /** Stored (device, seq) that were never sent. */
  readonly phantom: number;
  /** Acknowledged messages of the clock-skewed device refused CLOCK_SKEW by ingest (distinct seqs). */
  readonly refusedClockSkew: number;
  readonly alertsExpected: number;
  readonly alertsReceived: number;
  /** (client, alarm device) pairs never received. */
  readonly alertsMissing: string[];
  /** The first lost readings (device#seq and when they were sent), so a failure can be traced in the logs. */
  readonly lostSamples: string[];
  /** socket.io reconnects of the pages (after each alerts restart). */
  readonly pageReconnects: number;
  readonly pageClients: number;
  readonly hostile: HostileCounts[];
  /** Peak resident set (VmHWM) per process over all its incarnations, in MiB. */
  readonly peakRssMiB: Record<string, number>;
  /** Largest ingest spool directory seen, and the largest spool depth ingest reported, in bytes. */
  readonly peakSpoolDirBytes: number;
  readonly peakSpoolBytes: number;
  /** Largest broker store directory seen (the durable sessions hold what ingest does not take). */
  readonly peakBrokerStoreBytes: number;
  readonly ingestPausedSamples: number;
  readonly restarts: Record<ProcName, number>;
}

/** A (re)start may take 25 s on two busy cores (tsx compiles at start; the broker replays its store). */
const START_TIMEOUT_MS = 90_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A small seeded generator (the simulator's mulberry32), so a failing run can be repeated. */
export const seeded = mulberry32;

interface SiteDevice {
  id: string;
  homeId: string;
  kind: string;
  roomId?: string;
}

async function siteDevices(): Promise<SiteDevice[]> {
  return (JSON.parse(await readFile(DEMO_SITE_PATH, 'utf8')) as { devices: SiteDevice[] }).devices;
}

/** VmHWM (peak resident set) of a live process, in KiB; undefined once it has gone. */
async function peakRssKiB(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The pid of the process whose command line contains `needle` (our private influxd, found by its config path). */
async function pidByCmdline(needle: string): Promise<number | undefined> {
  for (const e of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(needle)) return Number(e);
  }
  return undefined;
}

/** Bytes of the files under `dir` (recursive); 0 for a missing directory. */
async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += await dirBytes(p);
    else n += (await stat(p).catch(() => ({ size: 0 }))).size;
  }
  return n;
}

/** A carewatch process that the chaos schedule kills and restarts with the same environment (same store, ports). */
class Managed {
  proc: TestProcess | undefined;
  restarts = 0;
  peakKiB = 0;
  constructor(
    readonly name: ProcName,
    private readonly entry: string,
    private readonly env: Record<string, string>,
    private readonly ready: (p: TestProcess) => Promise<void>,
  ) {}
  async start(): Promise<void> {
    this.proc = startProcess(`faults-${this.name}`, this.entry, this.env);
    await this.ready(this.proc);
  }
  async sample(): Promise<void> {
    const kib = await peakRssKiB(this.proc?.child.pid);
    if (kib !== undefined && kib > this.peakKiB) this.peakKiB = kib;
  }
  async kill(): Promise<void> {
    await this.sample();
    await this.proc?.kill('SIGKILL');
    this.restarts++;
  }
  async stop(): Promise<void> {
    await this.sample();
    await this.proc?.stop();
  }
}

interface Sender {
  readonly id: string;
  readonly homeId: string;
  /** seq → the ts it was sent with. */
  readonly sent: Map<number, number>;
  readonly acked: Set<number>;
  connections: number;
  /** Publishes mqtt.js failed (never acknowledged), by error message. */
  readonly errors: Map<string, number>;
}

/** The clock-skewed device's lead: past the 1 h window, so every reading is refused CLOCK_SKEW. */
const CLOCK_SKEW_AHEAD_MS = 3 * 3_600_000;

function newSender(d: SiteDevice): Sender {
  return { id: d.id, homeId: d.homeId, sent: new Map(), acked: new Set(), connections: 0, errors: new Map() };
}

function reading(ts: number, seq: number): string {
  // Quiet values: no fire rule may fire on them (smoke well below the 4 %/m pre-alarm, docs/rules.md).
  return JSON.stringify({ ts, seq, metrics: { temperature_c: 21, smoke_obscuration_pct_per_m: 0.1, battery_pct: 90 } });
}

/**
 * A device's client: reconnects by itself; resolves at its first CONNACK. Connection errors (a broker
 * being killed, refusing while it restarts) are the faults under test, so they are waited out, not thrown.
 */
function connectDevice(url: string, id: string): Promise<MqttClient> {
  const c = mqtt.connect(url, { clientId: id, username: id, password: demoSecret(id), protocolVersion: 4, reconnectPeriod: 200, connectTimeout: 5_000 });
  c.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      c.end(true);
      reject(new Error(`${id} could not connect within 120 s`));
    }, 120_000);
    c.once('connect', () => {
      clearTimeout(timer);
      resolve(c);
    });
  });
}

/** A QoS 1 publish that records the PUBACK; mqtt.js resends unacknowledged ones after a reconnect. */
function track(s: Sender, c: MqttClient, seq: number, ts: number, pending: Set<Promise<unknown>>, topic: string): void {
  s.sent.set(seq, ts);
  const p = c.publishAsync(topic, reading(ts, seq), { qos: 1 }).then(
    () => s.acked.add(seq),
    (err: unknown) => {
      const m = (err as Error).message;
      s.errors.set(m, (s.errors.get(m) ?? 0) + 1);
    },
  );
  pending.add(p);
  void p.finally(() => pending.delete(p));
}

interface WatchClient {
  readonly username: string;
  readonly received: AlertMessage[];
  reconnects: number;
  close(): void;
}

async function login(httpUrl: string, username: string): Promise<string> {
  const res = await fetch(`${httpUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: `demo-${username}` }) });
  if (!res.ok) throw new Error(`login ${username}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as LoginResponse).token;
}

/** A staff page or bureau screen: reconnects by itself (the token outlives an alerts restart: fixed secret). */
async function watch(httpUrl: string, username: string): Promise<WatchClient> {
  const token = await login(httpUrl, username);
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(httpUrl, { auth: { token }, transports: ['websocket'], reconnection: true, reconnectionDelay: 200, reconnectionDelayMax: 1_000 });
  const w: WatchClient = { username, received: [], reconnects: 0, close: () => socket.close() };
  socket.on('alert', (a) => w.received.push(a));
  socket.on('snapshot', (list) => w.received.push(...list));
  socket.io.on('reconnect', () => w.reconnects++);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return w;
}

/** One InfluxQL query's first series (test/support/influx-db.ts has the same, but imports vitest, and the soak runs outside it). */
async function influxQuery(url: string, db: string, q: string): Promise<Array<{ columns: string[]; values: unknown[][]; tags?: Record<string, string> }>> {
  const res = await fetch(`${url}/query?db=${encodeURIComponent(db)}&epoch=ms&q=${encodeURIComponent(q)}`);
  if (!res.ok) throw new Error(`query failed ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { results: Array<{ series?: Array<{ columns: string[]; values: unknown[][]; tags?: Record<string, string> }>; error?: string }> };
  const first = body.results[0];
  if (first?.error) throw new Error(first.error);
  return first?.series ?? [];
}

/** device → seq → distinct timestamps stored; readings live in the raw retention policy. */
async function storedTelemetry(url: string, db: string): Promise<Map<string, Map<number, Set<number>>>> {
  const out = new Map<string, Map<number, Set<number>>>();
  for (const s of await influxQuery(url, db, 'SELECT seq FROM "raw"."telemetry" GROUP BY device')) {
    const m = new Map<number, Set<number>>();
    for (const v of s.values) {
      const seq = v[1] as number;
      const set = m.get(seq) ?? new Set<number>();
      set.add(v[0] as number);
      m.set(seq, set);
    }
    out.set(s.tags?.device ?? '', m);
  }
  return out;
}

/** device → code → distinct seqs of the refused payloads. */
async function storedRejections(url: string, db: string): Promise<Map<string, Map<string, Set<number>>>> {
  const out = new Map<string, Map<string, Set<number>>>();
  for (const s of await influxQuery(url, db, 'SELECT payload FROM "raw"."rejected" GROUP BY device, code')) {
    const device = s.tags?.device ?? '';
    const code = s.tags?.code ?? '';
    const byCode = out.get(device) ?? new Map<string, Set<number>>();
    const seqs = byCode.get(code) ?? new Set<number>();
    for (const v of s.values) {
      try {
        const seq = (JSON.parse(String(v[1])) as { seq?: unknown }).seq;
        seqs.add(typeof seq === 'number' ? seq : -1);
      } catch {
        seqs.add(-1);
      }
    }
    byCode.set(code, seqs);
    out.set(device, byCode);
  }
  return out;
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const rnd = seeded(o.seed);
  const all = await siteDevices();
  const smoke = all.filter((d) => d.kind === 'smoke_detector');
  const fleetDevices = smoke.slice(0, o.devices);
  const [floodDev, loopDev, oooDev, skewDev] = smoke.slice(o.devices, o.devices + 4);
  if (o.hostile && skewDev === undefined) throw new Error('the demo site has too few smoke detectors');
  // One call point per alarm; each alarm latches its room, so a call point is used once.
  const alarmCount = o.alarms + o.kills.alerts;
  const mcps = all.filter((d) => d.kind === 'manual_call_point').slice(0, alarmCount);
  if (mcps.length < alarmCount) throw new Error(`the demo site has only ${mcps.length} call points`);

  const work = await mkdtemp(join(tmpdir(), 'carewatch-faults-'));
  const influx: InfluxServer = await createInfluxServer({ dir: join(work, 'influx') });
  const database = 'faults';
  const [mqttPort, wsPort, ingestPort, httpPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const spoolDir = join(work, 'spool');
  const common = { CAREWATCH_REGISTRY: DEMO_SITE_PATH, CAREWATCH_MQTT_URL: mqttUrl, CAREWATCH_INFLUX_URL: influx.url, CAREWATCH_INFLUX_DB: database, CAREWATCH_LOG_LEVEL: 'warn' };
  const procs: Record<ProcName, Managed> = {
    broker: new Managed('broker', 'broker/main.ts', { ...common, CAREWATCH_BROKER_PORT: String(mqttPort), CAREWATCH_BROKER_WS_PORT: String(wsPort), CAREWATCH_BROKER_STORE_DIR: join(work, 'broker-store') }, async (p) => {
      await p.waitForOutput(/broker listening/, START_TIMEOUT_MS);
    }),
    ingest: new Managed(
      'ingest',
      'ingest/main.ts',
      { ...common, CAREWATCH_INGEST_PASSWORD: demoSecret('svc-ingest'), CAREWATCH_SPOOL_DIR: spoolDir, CAREWATCH_SPOOL_MAX_BYTES: String(o.spoolMaxBytes), CAREWATCH_INGEST_HTTP_PORT: String(ingestPort) },
      async () => {
        await eventually('ingest /health', async () => ((await fetch(`http://127.0.0.1:${ingestPort}/health`)).status > 0 ? true : undefined), START_TIMEOUT_MS);
      },
    ),
    alerts: new Managed(
      'alerts',
      'alerts/main.ts',
      {
        ...common,
        CAREWATCH_ALERTS_PASSWORD: demoSecret('svc-alerts'),
        CAREWATCH_HTTP_PORT: String(httpPort),
        CAREWATCH_STATE_DIR: join(work, 'alerts-state'),
        // Fixed, so that the pages' tokens outlive an alerts restart as in production.
        CAREWATCH_TOKEN_SECRET: 'faults-harness-token-secret-0123456789abcdef',
        UV_THREADPOOL_SIZE: '16',
      },
      async () => {
        await eventually('alerts /health', async () => ((await fetch(`${httpUrl}/health`)).ok ? true : undefined), START_TIMEOUT_MS);
      },
    ),
  };

  const clients: MqttClient[] = [];
  const watchers: WatchClient[] = [];
  const pending = new Set<Promise<unknown>>();
  const senders: Sender[] = [];
  const loops: Promise<void>[] = [];
  const schedule: string[] = [];
  let running = true;
  let influxDown = false;
  let peakSpoolDirBytes = 0;
  let peakSpoolBytes = 0;
  let ingestPausedSamples = 0;
  let influxPeakKiB = 0;
  let peakBrokerStoreBytes = 0;
  let sampling = true;
  const t0 = Date.now();
  const at = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  const note = (s: string): void => {
    schedule.push(`${at()} ${s}`);
    log(`[faults] ${at()} ${s}`);
  };

  try {
    await influx.start();
    await procs.broker.start();
    await procs.ingest.start();
    await procs.alerts.start();
    await eventually('ingest subscribed', async () => ((await (await fetch(`http://127.0.0.1:${ingestPort}/health`)).json()) as IngestHealth).mqtt.connected || undefined);

    // Duty staff of every home that will have an alarm, and the bureau.
    const homes = [...new Set(mcps.map((d) => d.homeId))];
    for (const u of ['bureau', ...homes.map((h) => `staff-${h}`)]) watchers.push(await watch(httpUrl, u));

    // Peak RSS, spool size and ingest's health, sampled all the time.
    const sampler = (async () => {
      while (sampling) {
        for (const p of Object.values(procs)) await p.sample();
        if (!influxDown) influxPeakKiB = Math.max(influxPeakKiB, (await peakRssKiB(await pidByCmdline(join(work, 'influx', 'influxdb.conf')))) ?? 0);
        const spoolDirBytes = await dirBytes(spoolDir);
        peakSpoolDirBytes = Math.max(peakSpoolDirBytes, spoolDirBytes);
        peakBrokerStoreBytes = Math.max(peakBrokerStoreBytes, await dirBytes(join(work, 'broker-store')));
        try {
          const h = (await (await fetch(`http://127.0.0.1:${ingestPort}/health`, { signal: AbortSignal.timeout(2_000) })).json()) as IngestHealth;
          peakSpoolBytes = Math.max(peakSpoolBytes, h.spool.bytes);
          if (h.mqtt.paused) ingestPausedSamples++;
          o.onIngestHealth?.(h, { influxDown, spoolDirBytes });
        } catch {
          // ingest is down or restarting
        }
        await sleep(1_000);
      }
    })();

    // The well-behaved fleet: numbered readings every intervalMs, stamped with this machine's clock.
    for (const d of fleetDevices) {
      const s = newSender(d);
      senders.push(s);
      const c = await connectDevice(mqttUrl, d.id);
      c.on('connect', () => s.connections++);
      s.connections++;
      clients.push(c);
    }
    fleetDevices.forEach((d, i) => {
      const s = senders[i] as Sender;
      const c = clients[i] as MqttClient;
      const topic = deviceTopic(d.homeId, d.id, 'telemetry');
      loops.push(
        (async () => {
          await sleep((i * o.intervalMs) / fleetDevices.length);
          for (let seq = 0; running; seq++) {
            track(s, c, seq, Date.now(), pending, topic);
            await sleep(o.intervalMs);
          }
        })(),
      );
    });

    const hostile: Array<{ s: Sender; behaviour: string }> = [];
    if (o.hostile && floodDev && loopDev && oooDev && skewDev) {
      // Flood: ten times the fleet's rate.
      {
        const s = newSender(floodDev);
        hostile.push({ s, behaviour: 'floods at 10× the rate' });
        const c = await connectDevice(mqttUrl, floodDev.id);
        s.connections++;
        c.on('connect', () => s.connections++);
        clients.push(c);
        const topic = deviceTopic(floodDev.homeId, floodDev.id, 'telemetry');
        loops.push(
          (async () => {
            // Ten readings per interval: the rate is 10× the fleet's even when timers run late on a busy machine.
            for (let seq = 0; running; ) {
              const t = Date.now();
              for (let k = 0; k < 10; k++, seq++) track(s, c, seq, t + k, pending, topic);
              await sleep(o.intervalMs);
            }
          })(),
        );
      }
      // Reconnect loop: connect, one reading, disconnect, at once again.
      {
        const s = newSender(loopDev);
        hostile.push({ s, behaviour: 'reconnects in a tight loop' });
        const topic = deviceTopic(loopDev.homeId, loopDev.id, 'telemetry');
        loops.push(
          (async () => {
            for (let seq = 0; running; seq++) {
              try {
                const c = await connectDevice(mqttUrl, loopDev.id);
                s.connections++;
                s.sent.set(seq, Date.now());
                const ok = await Promise.race([c.publishAsync(topic, reading(s.sent.get(seq) as number, seq), { qos: 1 }).then(() => true), sleep(5_000).then(() => false)]);
                if (ok) s.acked.add(seq);
                await c.endAsync(!ok);
              } catch {
                await sleep(100);
              }
            }
          })(),
        );
      }
      // Out of order: each batch of 8 readings is sent newest first.
      {
        const s = newSender(oooDev);
        hostile.push({ s, behaviour: 'sends out of order' });
        const c = await connectDevice(mqttUrl, oooDev.id);
        s.connections++;
        c.on('connect', () => s.connections++);
        clients.push(c);
        const topic = deviceTopic(oooDev.homeId, oooDev.id, 'telemetry');
        loops.push(
          (async () => {
            for (let base = 0; running; base += 8) {
              const t = Date.now();
              for (let k = 7; k >= 0; k--) track(s, c, base + k, t + k * o.intervalMs, pending, topic);
              await sleep(8 * o.intervalMs);
            }
          })(),
        );
      }
      // Clock three hours ahead: past the 1 h window, every reading is refused CLOCK_SKEW (docs/protocol.md).
      {
        const s = newSender(skewDev);
        hostile.push({ s, behaviour: 'clock 3 h ahead' });
        const c = await connectDevice(mqttUrl, skewDev.id);
        s.connections++;
        c.on('connect', () => s.connections++);
        clients.push(c);
        const topic = deviceTopic(skewDev.homeId, skewDev.id, 'telemetry');
        loops.push(
          (async () => {
            for (let seq = 0; running; seq++) {
              track(s, c, seq, Date.now() + CLOCK_SKEW_AHEAD_MS, pending, topic);
              await sleep(o.intervalMs);
            }
          })(),
        );
      }
    }

    // Alarms: a call point operated (QoS 1, resent across broker restarts until PUBACKed).
    const alarmDevices = [...mcps];
    const alarmsSent: SiteDevice[] = [];
    const alarmPending: Promise<void>[] = [];
    const fireAlarm = (why: string): void => {
      const d = alarmDevices.shift();
      if (d === undefined) return;
      alarmsSent.push(d);
      note(`call point ${d.id} operated${why}`);
      alarmPending.push(
        (async () => {
          const c = await connectDevice(mqttUrl, d.id);
          clients.push(c);
          await c.publishAsync(deviceTopic(d.homeId, d.id, 'event'), JSON.stringify({ ts: Date.now(), seq: 0, type: 'manual_call_point' }), { qos: 1 });
        })().catch((err: unknown) => note(`call point ${d.id} could not send its alarm: ${(err as Error).message}`)),
      );
    };

    // The seeded schedule: kill moments between 10 % and 85 % of the load, run one after another.
    const events: Array<{ atMs: number; what: ProcName | 'alarm' }> = [];
    for (const name of ['broker', 'ingest', 'alerts'] as const) for (let k = 0; k < o.kills[name]; k++) events.push({ atMs: o.loadMs * (0.1 + 0.75 * rnd()), what: name });
    for (let k = 0; k < o.alarms; k++) events.push({ atMs: o.loadMs * (0.05 + 0.85 * rnd()), what: 'alarm' });
    events.sort((a, b) => a.atMs - b.atMs);
    const outages: number[] = [];
    for (let k = 0; k < o.influxOutages; k++) outages.push((o.loadMs / o.influxOutages) * (k + 0.1 + 0.3 * rnd()));

    const chaos = (async () => {
      for (const e of events) {
        const wait = t0 + e.atMs - Date.now();
        if (wait > 0) await sleep(wait);
        if (e.what === 'alarm') {
          fireAlarm('');
          continue;
        }
        const p = procs[e.what];
        note(`SIGKILL ${e.what}`);
        await p.kill();
        if (e.what === 'alerts') {
          // An alarm while nobody evaluates the rules: it must reach the pages after the restart.
          await sleep(500);
          fireAlarm(' while alerts is down');
          await sleep(1_000);
        } else {
          await sleep(200 + 800 * rnd());
        }
        await p.start();
        note(`${e.what} restarted`);
      }
    })();
    const outage = (async () => {
      for (const startMs of outages) {
        const wait = t0 + startMs - Date.now();
        if (wait > 0) await sleep(wait);
        note('InfluxDB stopped (SIGKILL)');
        influxDown = true;
        await influx.stop();
        await sleep(o.influxOutageMs);
        await influx.start();
        influxDown = false;
        note('InfluxDB started');
      }
    })();

    await sleep(Math.max(0, t0 + o.loadMs - Date.now()));
    await Promise.all([chaos, outage]);
    running = false;
    await Promise.all(loops);
    note('devices stopped sending; waiting for every PUBACK');
    await eventually('every publish acknowledged', () => (pending.size === 0 ? true : undefined), 180_000, 200);
    await Promise.all(alarmPending);

    const toStore = [...senders, ...hostile.filter((h) => h.s.id !== skewDev?.id).map((h) => h.s)];
    const skew = hostile.find((h) => h.s.id === skewDev?.id)?.s;
    const missingNow = (stored: Map<string, Map<number, Set<number>>>): number => {
      let n = 0;
      for (const s of toStore) for (const seq of s.acked) if (!stored.get(s.id)?.has(seq)) n++;
      return n;
    };
    // Everything acknowledged reaches InfluxDB; give up once the count has not moved for 60 s.
    let stored = await storedTelemetry(influx.url, database);
    for (let last = -1, still = 0; ; ) {
      const m = missingNow(stored);
      if (m === 0) break;
      still = m === last ? still + 1 : 0;
      last = m;
      if (still >= 60) break;
      await sleep(1_000);
      stored = await storedTelemetry(influx.url, database);
    }
    note('counting');
    let rejections = await storedRejections(influx.url, database);
    if (skew !== undefined) {
      await eventually(
        'the clock-skewed readings refused',
        async () => {
          rejections = await storedRejections(influx.url, database);
          const refused = rejections.get(skew.id)?.get('CLOCK_SKEW');
          return [...skew.acked].every((s) => refused?.has(s)) ? true : undefined;
        },
        60_000,
        1_000,
      ).catch(() => undefined);
    }

    // Every alarm at its home's duty staff and at the bureau (after a reconnect at the latest).
    const expected: Array<{ w: WatchClient; d: SiteDevice }> = [];
    for (const d of alarmsSent) for (const w of watchers) if (w.username === 'bureau' || w.username === `staff-${d.homeId}`) expected.push({ w, d });
    const got = (e: { w: WatchClient; d: SiteDevice }): boolean => e.w.received.some((a) => a.category === 'fire' && a.deviceId === e.d.id);
    await eventually('every alarm at the pages', () => (expected.every(got) ? true : undefined), 60_000, 200).catch(() => undefined);
    const alertsMissing = expected.filter((e) => !got(e)).map((e) => `${e.w.username}:${e.d.id}`);

    sampling = false;
    await sampler;
    for (const p of Object.values(procs)) await p.sample();

    let sent = 0;
    let acknowledged = 0;
    let publishErrors = 0;
    let storedN = 0;
    let duplicates = 0;
    let lost = 0;
    let phantom = 0;
    for (const s of [...senders, ...hostile.map((h) => h.s)]) {
      sent += s.sent.size;
      acknowledged += s.acked.size;
      for (const n of s.errors.values()) publishErrors += n;
      const m = stored.get(s.id) ?? new Map<number, Set<number>>();
      for (const [seq, tss] of m) {
        if (tss.size > 1) duplicates++;
        if (!s.sent.has(seq)) phantom++;
      }
    }
    const lostSamples: string[] = [];
    const sentAt = (ts: number | undefined): string => (ts === undefined ? '?' : `${((ts - t0) / 1000).toFixed(2)} s`);
    for (const s of toStore) {
      const m = stored.get(s.id) ?? new Map<number, Set<number>>();
      storedN += m.size;
      for (const seq of s.acked) {
        if (m.has(seq)) continue;
        lost++;
        if (lostSamples.length < 20) lostSamples.push(`${s.id}#${seq} sent at ${sentAt(s.sent.get(seq))}`);
      }
    }
    if (skew !== undefined) {
      const refused = rejections.get(skew.id)?.get('CLOCK_SKEW');
      for (const seq of skew.acked) if (!refused?.has(seq) && lostSamples.length < 20) lostSamples.push(`${skew.id}#${seq} (clock-skewed, neither refused nor stored) sent at ${sentAt((skew.sent.get(seq) ?? 0) - CLOCK_SKEW_AHEAD_MS)}`);
    }
    const refusedClockSkew = skew === undefined ? 0 : [...skew.acked].filter((seq) => rejections.get(skew.id)?.get('CLOCK_SKEW')?.has(seq)).length;
    const hostileCounts: HostileCounts[] = hostile.map(({ s, behaviour }) => {
      const rej: Record<string, number> = {};
      for (const [code, seqs] of rejections.get(s.id) ?? []) rej[code] = seqs.size;
      return { device: s.id, behaviour, sent: s.sent.size, acked: s.acked.size, stored: stored.get(s.id)?.size ?? 0, rejected: rej, connections: s.connections, errors: Object.fromEntries(s.errors) };
    });
    const peakRssMiB: Record<string, number> = {};
    for (const p of Object.values(procs)) peakRssMiB[p.name] = Math.round(p.peakKiB / 1024);
    peakRssMiB.influxd = Math.round(influxPeakKiB / 1024);
    peakRssMiB['harness (devices, pages)'] = Math.round(process.resourceUsage().maxRSS / 1024);
    return {
      seed: o.seed,
      schedule,
      sent,
      acknowledged,
      publishErrors,
      stored: storedN,
      duplicates,
      lost,
      phantom,
      refusedClockSkew,
      alertsExpected: expected.length,
      alertsReceived: expected.length - alertsMissing.length,
      alertsMissing,
      lostSamples,
      pageReconnects: watchers.reduce((n, w) => n + w.reconnects, 0),
      pageClients: watchers.length,
      hostile: hostileCounts,
      peakRssMiB,
      peakSpoolDirBytes,
      peakSpoolBytes,
      peakBrokerStoreBytes,
      ingestPausedSamples,
      restarts: { broker: procs.broker.restarts, ingest: procs.ingest.restarts, alerts: procs.alerts.restarts },
    };
  } finally {
    running = false;
    sampling = false;
    for (const w of watchers) w.close();
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    for (const p of [procs.alerts, procs.ingest, procs.broker]) await p.proc?.kill('SIGKILL');
    await influx.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** The table printed at the end of every run. */
export function formatReport(r: ChaosReport, title: string): string {
  const rows: Array<[string, string]> = [
    ['sent', String(r.sent)],
    ['acknowledged (PUBACK)', String(r.acknowledged)],
    ['publish failed at the device (no PUBACK)', String(r.publishErrors)],
    ['stored (distinct device+seq)', String(r.stored)],
    ['duplicates', String(r.duplicates)],
    ['lost (acknowledged, not stored)', String(r.lost)],
    ['stored but never sent', String(r.phantom)],
    ['refused CLOCK_SKEW (of the skewed device\'s acked)', String(r.refusedClockSkew)],
    ['alerts expected / received by socket.io clients', `${r.alertsExpected} / ${r.alertsReceived}`],
    ['socket.io clients / their reconnects', `${r.pageClients} / ${r.pageReconnects}`],
    ['restarts (broker, ingest, alerts)', `${r.restarts.broker}, ${r.restarts.ingest}, ${r.restarts.alerts}`],
    ['peak ingest spool depth / spool dir', `${(r.peakSpoolBytes / 1048576).toFixed(2)} MiB / ${(r.peakSpoolDirBytes / 1048576).toFixed(2)} MiB`],
    ['ingest paused (spool full), samples', String(r.ingestPausedSamples)],
    ['peak broker store on disk', `${(r.peakBrokerStoreBytes / 1048576).toFixed(2)} MiB`],
    ...Object.entries(r.peakRssMiB).map(([k, v]): [string, string] => [`peak RSS ${k}`, `${v} MiB`]),
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = [`${title} (seed ${r.seed})`, ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)];
  if (r.hostile.length > 0) {
    lines.push('  hostile devices:');
    for (const h of r.hostile) {
      const rej = Object.entries(h.rejected).map(([c, n]) => `${c} ${n}`).join(', ') || 'none';
      const errs = Object.entries(h.errors).map(([m, n]) => `${m} ${n}`).join(', ');
      lines.push(`    ${h.device.padEnd(20)} ${h.behaviour.padEnd(28)} sent ${h.sent}, acked ${h.acked}, stored ${h.stored}, connections ${h.connections}, rejected: ${rej}${errs ? `; publish errors: ${errs}` : ''}`);
    }
  }
  if (r.lostSamples.length > 0) lines.push(`  not stored: ${r.lostSamples.join('; ')}`);
  if (r.alertsMissing.length > 0) lines.push(`  alerts missing: ${r.alertsMissing.join(', ')}`);
  lines.push('  schedule:', ...r.schedule.map((s) => `    ${s}`));
  return lines.join('\n');
}
