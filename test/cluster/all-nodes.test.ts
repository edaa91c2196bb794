import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mqtt, { type MqttClient } from 'mqtt';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ackedKey, queueKey } from '../../broker/redis-persistence.ts';
import { freePort } from '../../common/influxd.ts';
import type { IncidentMessage } from '../../contract/incidents.ts';
import type { AlertMessage } from '../../contract/payloads.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../../contract/socket-events.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { login } from '../e2e/stack.ts';
import { createHaproxy, type HaproxyServer } from '../support/haproxy.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { eventually, startProcess, type TestProcess } from '../support/process.ts';
import { clusterNodeEnv, nodeMetric } from '../support/cluster-node.ts';
import { createRedisServer, type RedisServer } from '../support/redis-server.ts';
import { DEMO_SITE_PATH, demoSecret } from '../support/registry.ts';

/**
 * Issue 14, "What must be shown": every kind of node at once, on one machine, as separate processes
 * started from their main.ts exactly as an operator runs them (docs/scaling.md):
 *
 * - Redis for the broker cluster, two broker nodes (CAREWATCH_BROKER_CLUSTER=redis) behind HAProxy;
 * - two ingest and two alerts instances, each owning about half of the nine demo homes
 *   (CAREWATCH_HOMES), every one of them connected through HAProxy like the devices;
 * - the two alerts instances are the two web nodes (there is no separate web process: every alerts
 *   instance serves the page and socket.io, rooms shared through @socket.io/redis-adapter on a
 *   second Redis server, because the brokers' Redis pub/sub is server-wide: docs/scaling.md "Limits");
 * - devices spread over both broker nodes by HAProxy; duty staff of every home logged in on BOTH web
 *   nodes with real socket.io clients, and the bureau.
 *
 * Then one node of each kind is SIGKILLed at once (broker node b, ingest a, alerts/web node b) while
 * the devices publish numbered QoS 1 readings, fires are raised during and after the kills, and the
 * nodes are restarted: every PUBACKed reading is in InfluxDB exactly once and every fire reaches
 * exactly its own home's staff, on both web nodes.
 */

const TOKEN_SECRET = 'all-nodes-test-token-secret-0123456789abcdef';
/** The nine demo homes split in two, the way an operator would: each home owned by exactly one instance. */
const HOMES: Record<'a' | 'b', string[]> = { a: ['h01', 'h03', 'h05', 'h07', 'h09'], b: ['h02', 'h04', 'h06', 'h08'] };
const HOUSEHOLDS = ['hh01', 'hh02', 'hh03', 'hh04', 'hh05'];
type Side = keyof typeof HOMES;
const ALL_HOMES = [...HOMES.a, ...HOMES.b].sort();
/** Readings: two smoke detectors per home, one QoS 1 reading each every INTERVAL_MS (18 devices: ~90 msg/s). */
const PER_HOME = 2;
const INTERVAL_MS = 200;
/** aedes $SYS heartbeat of the nodes (docs/scaling.md "Broker nodes"). */
const HEARTBEAT_MS = 2_000;
/** A (re)start may take 30 s on two busy cores (tsx compiles at start). */
const START_MS = 120_000;
/** Readings' timestamps: one millisecond apart per seq, so a reading's point (series + ts) is fixed by its seq. */
const T0 = Date.now() - 60_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface SiteDevice {
  id: string;
  homeId: string;
  kind: string;
  roomId?: string;
}

/** A staff page or bureau screen that reconnects by itself (the token outlives a web node's restart). */
interface Page {
  readonly username: string;
  readonly node: Side;
  readonly received: AlertMessage[];
  readonly incidents: IncidentMessage[];
  reconnects: number;
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
}

interface Sender {
  readonly d: SiteDevice;
  readonly client: MqttClient;
  readonly sent: Set<number>;
  readonly acked: Set<number>;
}

describe('every kind of node at once: Redis, 2 broker nodes behind HAProxy, 2 ingest, 2 alerts/web nodes (issue 14)', () => {
  const { url: influxUrl, database } = testInflux('allnodes');
  let dir: string;
  let brokerRedis: RedisServer;
  let webRedis: RedisServer;
  let haproxy: HaproxyServer;
  let site: SiteDevice[];
  const brokers: Partial<Record<Side, { port: number; wsPort: number; httpPort: number; proc?: TestProcess }>> = {};
  const ingest: Partial<Record<Side, { port: number; proc?: TestProcess }>> = {};
  const alerts: Partial<Record<Side, { port: number; proc?: TestProcess }>> = {};
  const clients: MqttClient[] = [];
  const pages: Page[] = [];

  const common = (): Record<string, string> => ({
    CAREWATCH_REGISTRY: DEMO_SITE_PATH,
    CAREWATCH_MQTT_URL: haproxy.url,
    CAREWATCH_INFLUX_URL: influxUrl,
    CAREWATCH_INFLUX_DB: database,
    CAREWATCH_LOG_LEVEL: 'warn',
  });

  async function startBroker(name: Side): Promise<void> {
    const b = brokers[name] ?? { port: await freePort(), wsPort: await freePort(), httpPort: await freePort() };
    brokers[name] = b;
    b.proc = startProcess(`all-broker-${name}`, 'broker/main.ts', clusterNodeEnv({ nodeId: name, redisUrl: brokerRedis.url, port: b.port, wsPort: b.wsPort, httpPort: b.httpPort, heartbeatMs: HEARTBEAT_MS }));
    await b.proc.waitForOutput(/broker listening .* node [a-z]+-[0-9a-f]{8}/, START_MS);
  }

  async function startIngest(name: Side): Promise<void> {
    const i = ingest[name] ?? { port: await freePort() };
    ingest[name] = i;
    i.proc = startProcess(`all-ingest-${name}`, 'ingest/main.ts', {
      ...common(),
      CAREWATCH_HOMES: HOMES[name].join(','),
      CAREWATCH_INGEST_PASSWORD: demoSecret('svc-ingest'),
      CAREWATCH_SPOOL_DIR: join(dir, `spool-${name}`),
      CAREWATCH_INGEST_HTTP_PORT: String(i.port),
    });
    await eventually(`ingest ${name} subscribed`, async () => {
      const s = (await (await fetch(`http://127.0.0.1:${i.port}/stats`)).json()) as { mqtt?: { subscribed?: boolean } };
      return s.mqtt?.subscribed === true ? true : undefined;
    }, START_MS, 250);
  }

  async function startAlerts(name: Side): Promise<void> {
    const a = alerts[name] ?? { port: await freePort() };
    alerts[name] = a;
    a.proc = startProcess(`all-alerts-${name}`, 'alerts/main.ts', {
      ...common(),
      // Every home of the registry owned by an alerts instance (docs/scaling.md "Home coverage"): the
      // households, which this test sends nothing to, by A; otherwise /healthz turns 503 after the grace period.
      CAREWATCH_HOMES: [...HOMES[name], ...(name === 'a' ? HOUSEHOLDS : [])].join(','),
      CAREWATCH_INSTANCE: name,
      CAREWATCH_REDIS_URL: webRedis.url,
      CAREWATCH_TOKEN_SECRET: TOKEN_SECRET,
      CAREWATCH_ALERTS_PASSWORD: demoSecret('svc-alerts'),
      CAREWATCH_HTTP_PORT: String(a.port),
      UV_THREADPOOL_SIZE: '16',
      CAREWATCH_STATE_DIR: join(dir, `alerts-state-${name}`),
      CAREWATCH_HOME_STATE_DIR: join(dir, 'home-state'),
    });
    await eventually(`alerts ${name} healthy`, async () => ((await fetch(`http://127.0.0.1:${a.port}/healthz`)).ok ? true : undefined), START_MS, 250);
  }

  const httpOf = (name: Side): string => `http://127.0.0.1:${alerts[name]?.port ?? 0}`;

  /** Connected clients of one broker node (its /metrics gauge). */
  function connectedOn(name: Side): Promise<number> {
    return nodeMetric(brokers[name]?.httpPort ?? 0, 'broker_clients_connected');
  }

  async function openPage(node: Side, username: string): Promise<Page> {
    const { token } = await login(httpOf(node), username);
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(httpOf(node), { auth: { token }, transports: ['websocket'], reconnection: true, reconnectionDelay: 200, reconnectionDelayMax: 1_000 });
    const page: Page = { username, node, received: [], incidents: [], reconnects: 0, socket };
    socket.on('alert', (a) => page.received.push(a));
    socket.on('snapshot', (list) => page.received.push(...list));
    socket.on('incident', (i) => page.incidents.push(i));
    socket.on('incidents', (list) => page.incidents.push(...list));
    socket.io.on('reconnect', () => page.reconnects++);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    pages.push(page);
    return page;
  }

  /** A device's client through HAProxy: reconnects by itself; resolves at its first CONNACK. */
  async function connectDevice(id: string): Promise<MqttClient> {
    const c = mqtt.connect(haproxy.url, { clientId: id, username: id, password: demoSecret(id), protocolVersion: 4, reconnectPeriod: 200, connectTimeout: 5_000 });
    c.on('error', () => undefined);
    clients.push(c);
    await eventually(`${id} connected`, () => (c.connected ? true : undefined), 60_000, 50);
    return c;
  }

  /** A manual call point's activation: a fire alarm at once (no verification window for a person's report). */
  async function callPoint(d: SiteDevice): Promise<void> {
    const c = await connectDevice(d.id);
    await c.publishAsync(deviceTopic(d.homeId, d.id, 'event'), JSON.stringify({ ts: Date.now(), seq: 0, type: 'manual_call_point' }), { qos: 1 });
  }

  const isFireOf = (d: SiteDevice) => (a: AlertMessage): boolean => a.homeId === d.homeId && a.deviceId === d.id && a.category === 'fire' && a.signal === 'alarm';

  /**
   * The call point's fire at its home's staff on both web nodes and at the bureau: as its own alert,
   * or as a point of the home's fire incident. A second call point in another room of a home with an
   * open fire confirms the fire (docs/rules.md): its alert then joins the incident, held back as a card
   * of its own (`inhibited`), and a page that (re)connects after that gets it in the incident only.
   */
  const sawFire = (p: Page, d: SiteDevice): true | undefined =>
    p.received.some(isFireOf(d)) || p.incidents.some((i) => i.homeId === d.homeId && i.kind === 'fire' && i.points.some((x) => x.deviceId === d.id)) ? true : undefined;
  async function reachesTheRightPeople(d: SiteDevice, timeoutMs = 90_000): Promise<void> {
    const targets = pages.filter((p) => p.username === `staff-${d.homeId}` || p.username === 'bureau');
    expect(targets.map((p) => p.node).sort()).toEqual(['a', 'a', 'b', 'b']);
    await Promise.all(
      targets.map((p) =>
        eventually(`${p.username} on web node ${p.node} to receive the fire of ${d.id}`, () => sawFire(p, d), timeoutMs, 50).catch(async (err: Error) => {
          // What the page did get of that home, to tell a missing delivery from a different shape.
          const got = {
            reconnects: p.reconnects,
            connected: p.socket.connected,
            alerts: p.received.filter((a) => a.homeId === d.homeId && a.category === 'fire').map((a) => `${a.deviceId ?? '-'} ${a.state} v${a.version}${a.inhibited ? ` inhibited:${a.inhibited}` : ''}`),
            incidents: p.incidents.filter((i) => i.homeId === d.homeId).map((i) => `${i.id.slice(0, 8)} ${i.kind} ${i.state} v${i.version} [${i.points.map((x) => x.deviceId ?? '-').join(' ')}]`),
          };
          // And what the web nodes answer over REST for that user (each node asks the owner): a
          // fire the owner holds but the page never got is a broadcast lost; none, a fire not raised.
          const rest: Record<string, unknown> = {};
          for (const node of ['a', 'b'] as const) {
            try {
              const { token } = await login(httpOf(node), p.username);
              const q = `homeId=${d.homeId}`;
              const get = async (path: string): Promise<Array<Record<string, unknown>>> => (await fetch(`${httpOf(node)}${path}?${q}`, { headers: { authorization: `Bearer ${token}` } })).json() as Promise<Array<Record<string, unknown>>>;
              // Fire only, short: session 13's answer was cut at 4,000 characters by the home's
              // care troubles before it said anything of the fire.
              const alerts = (await get('/api/alerts')).filter((a) => a.category === 'fire').map((a) => `${String(a.deviceId)} ${String(a.state)} v${String(a.version)} inc:${String(a.incidentId).slice(0, 8)}`);
              const incidents = (await get('/api/incidents')).filter((i) => i.kind === 'fire').map((i) => `${String(i.id).slice(0, 8)} ${String(i.state)} v${String(i.version)} [${(i.points as Array<{ deviceId?: string }>).map((x) => x.deviceId ?? '-').join(' ')}]`);
              rest[node] = { alerts, incidents };
            } catch (e) {
              rest[node] = String(e);
            }
          }
          // And the home's signals queue in the brokers' Redis: an alarm still queued there was never
          // delivered to (or never acknowledged by) the home's alerts owner.
          let queue: unknown;
          const redis = new Redis(brokerRedis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
          try {
            const list = queueKey(`svc-alerts-home-${d.homeId}-signals`);
            queue = { length: await redis.llen(list), marked: await redis.scard(ackedKey(list)), head: await redis.lrange(list, 0, 4) };
          } catch (e) {
            queue = String(e);
          } finally {
            redis.disconnect();
          }
          throw new Error(`${err.message}; it got ${JSON.stringify(got)}; REST says ${JSON.stringify(rest).slice(0, 4000)}; ${d.homeId}'s signals queue ${JSON.stringify(queue)}`);
        }),
      ),
    );
  }

  /** No staff page ever received anything of another home (alerts, snapshots: nothing). */
  function nobodyElse(): void {
    for (const p of pages) {
      if (p.username === 'bureau') continue;
      const home = p.username.replace(/^staff-/, '');
      expect(p.received.filter((a) => a.homeId !== home), `${p.username} on ${p.node}`).toEqual([]);
      expect(p.incidents.filter((i) => i.homeId !== home), `${p.username} on ${p.node}: incidents`).toEqual([]);
    }
  }

  let callPoints: Map<string, SiteDevice[]>;
  let fleet: SiteDevice[];

  beforeAll(async () => {
    site = (JSON.parse(await readFile(DEMO_SITE_PATH, 'utf8')) as { devices: SiteDevice[] }).devices;
    callPoints = new Map(ALL_HOMES.map((h) => [h, site.filter((d) => d.homeId === h && d.kind === 'manual_call_point')]));
    fleet = ALL_HOMES.flatMap((h) => site.filter((d) => d.homeId === h && d.kind === 'smoke_detector').slice(0, PER_HOME));
    dir = await mkdtemp(join(tmpdir(), 'carewatch-all-nodes-'));
    brokerRedis = await createRedisServer();
    webRedis = await createRedisServer();
    await Promise.all([brokerRedis.start(), webRedis.start()]);
    // Ports first, so HAProxy's configuration names them; a restarted node comes back on its port.
    for (const n of ['a', 'b'] as const) brokers[n] = { port: await freePort(), wsPort: await freePort(), httpPort: await freePort() };
    haproxy = await createHaproxy((['a', 'b'] as const).map((n) => ({ name: n, port: brokers[n]?.port ?? 0 })));
    await haproxy.start();
    await Promise.all([startBroker('a'), startBroker('b')]);
    await Promise.all([startIngest('a'), startIngest('b')]);
    await Promise.all([startAlerts('a'), startAlerts('b')]);
  }, 600_000);

  afterAll(async () => {
    for (const p of pages) p.socket.close();
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    for (const n of ['a', 'b'] as const) await alerts[n]?.proc?.kill('SIGTERM');
    for (const n of ['a', 'b'] as const) await ingest[n]?.proc?.kill('SIGTERM');
    for (const n of ['a', 'b'] as const) await brokers[n]?.proc?.kill('SIGKILL');
    await haproxy?.close();
    await brokerRedis?.close();
    await webRedis?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  let senders: Sender[];

  it('spreads the devices over both broker nodes through HAProxy', async () => {
    // The services (5 + 4 per-home sessions per service, and the alerts' own) are connected by now.
    const before = { a: await connectedOn('a'), b: await connectedOn('b') };
    senders = [];
    for (const d of fleet) senders.push({ d, client: await connectDevice(d.id), sent: new Set(), acked: new Set() });
    const onA = (await connectedOn('a')) - before.a;
    const onB = (await connectedOn('b')) - before.b;
    process.stderr.write(`all nodes: ${fleet.length} devices through haproxy: ${onA} on broker node a, ${onB} on node b (services: ${before.a} on a, ${before.b} on b)\n`);
    expect(onA + onB).toBe(fleet.length);
    expect(onA).toBeGreaterThan(0);
    expect(onB).toBeGreaterThan(0);
    expect(before.a).toBeGreaterThan(0);
    expect(before.b).toBeGreaterThan(0);
  }, 120_000);

  it("a fire in any home reaches that home's staff on both web nodes, and nobody else", async () => {
    for (const node of ['a', 'b'] as const) {
      await openPage(node, 'bureau');
      for (const h of ALL_HOMES) await openPage(node, `staff-${h}`);
    }
    // Every home's first call point, each through HAProxy to either broker node; each owned by one alerts instance.
    const fires = ALL_HOMES.map((h) => callPoints.get(h)?.[0] as SiteDevice);
    await Promise.all(fires.map((d) => callPoint(d)));
    for (const d of fires) await reachesTheRightPeople(d);
    nobodyElse();
    // Exactly one alert per fire (raised by its home's owner only): the bureau on each node sees one id per call point.
    for (const b of pages.filter((p) => p.username === 'bureau')) {
      for (const d of fires) expect(new Set(b.received.filter(isFireOf(d)).map((a) => a.id)).size, `${d.id} at bureau on ${b.node}`).toBe(1);
    }
  }, 240_000);

  it('SIGKILL of one broker node, one ingest, one alerts/web node under QoS 1 load: every PUBACKed reading stored once, fires still reach the right staff', async () => {
    const pending = new Set<Promise<unknown>>();
    let running = true;
    const loops = senders.map(async (s, i) => {
      const topic = deviceTopic(s.d.homeId, s.d.id, 'telemetry');
      await sleep((i * INTERVAL_MS) / senders.length);
      for (let seq = 0; running; seq++) {
        s.sent.add(seq);
        const body = JSON.stringify({ ts: T0 + seq, seq, metrics: { temperature_c: 21, smoke_obscuration_pct_per_m: 0.1, battery_pct: 90 } });
        const p = s.client.publishAsync(topic, body, { qos: 1 }).then(
          () => s.acked.add(seq),
          () => undefined,
        );
        pending.add(p);
        void p.finally(() => pending.delete(p));
        await sleep(INTERVAL_MS);
      }
    });
    const ackedNow = (): number => senders.reduce((n, s) => n + s.acked.size, 0);
    await eventually('readings flowing', () => (ackedNow() > 3 * senders.length ? true : undefined), 60_000);
    const ackedAtKill = ackedNow();

    // One node of each kind at once: broker node b, ingest a, alerts b (web node b).
    await Promise.all([brokers.b?.proc?.kill('SIGKILL'), ingest.a?.proc?.kill('SIGKILL'), alerts.b?.proc?.kill('SIGKILL')]);
    // During the kills: a fire in h02 (its alerts owner b is dead: the alarm waits in h02's session
    // in Redis) and in h01 (owner a alive; its staff on web node b are disconnected).
    const during = [callPoints.get('h02')?.[1], callPoints.get('h01')?.[1]] as SiteDevice[];
    await Promise.all(during.map((d) => callPoint(d)));
    // Every device back on broker node a through HAProxy, while the load goes on.
    await eventually('every device on broker node a', async () => ((await connectedOn('a')) >= fleet.length ? true : undefined), 60_000, 200);
    await sleep(3_000);

    await Promise.all([startBroker('b'), startIngest('a'), startAlerts('b')]);
    // After the restarts: fires in h03 (ingest a restarted) and h04 (alerts b restarted).
    const after = [callPoints.get('h03')?.[1], callPoints.get('h04')?.[1]] as SiteDevice[];
    await Promise.all(after.map((d) => callPoint(d)));
    await sleep(3_000);
    running = false;
    await Promise.all(loops);
    await eventually('every publish settled', () => (pending.size === 0 ? true : undefined), 120_000);

    for (const d of [...during, ...after]) await reachesTheRightPeople(d, 120_000);
    nobodyElse();
    const restartedPages = pages.filter((p) => p.node === 'b');
    expect(restartedPages.every((p) => p.reconnects >= 1)).toBe(true);

    // InfluxDB: (device, seq) → points (series + ts). The reading's ts is fixed by its seq, so a
    // second copy of a reading can only show as a second point under another ts.
    const stored = new Map<string, Map<number, number>>();
    const count = async (): Promise<void> => {
      stored.clear();
      for (const s of await influxQuery(influxUrl, database, `SELECT seq FROM "raw"."telemetry" WHERE time >= ${T0}ms GROUP BY device`)) {
        const m = new Map<number, number>();
        for (const v of s.values) m.set(v[1] as number, (m.get(v[1] as number) ?? 0) + 1);
        stored.set(s.tags?.device ?? '', m);
      }
    };
    const lostOf = (): number => senders.reduce((n, s) => n + [...s.acked].filter((seq) => (stored.get(s.d.id)?.get(seq) ?? 0) === 0).length, 0);
    await eventually('every PUBACKed reading in InfluxDB', async () => {
      await count();
      return lostOf() === 0 ? true : undefined;
    }, 120_000, 500).catch(() => undefined);
    await count();
    const sent = senders.reduce((n, s) => n + s.sent.size, 0);
    const acked = ackedNow();
    const lost = lostOf();
    let storedN = 0;
    let duplicates = 0;
    let phantom = 0;
    for (const s of senders) {
      for (const [seq, n] of stored.get(s.d.id) ?? []) {
        storedN++;
        if (n > 1) duplicates++;
        if (!s.sent.has(seq)) phantom++;
      }
    }
    process.stderr.write(
      `all nodes: broker b, ingest a, alerts/web b SIGKILLed at ${ackedAtKill} acked; sent ${sent}, acked ${acked}, stored ${storedN}, lost ${lost}, duplicates ${duplicates}, phantom ${phantom}; ` +
        `fires during the kills (${during.map((d) => d.id).join(', ')}) and after (${after.map((d) => d.id).join(', ')}) at their staff on both web nodes\n`,
    );
    expect(acked).toBeGreaterThan(ackedAtKill);
    expect(lost).toBe(0);
    expect(duplicates).toBe(0);
    expect(phantom).toBe(0);
  }, 600_000);

  it('moves h08 from instance b to a, drop first then add (docs/scaling.md "Moving a home"): its open alert and what was sent meanwhile go with it', async () => {
    const adminOpen = async (node: Side): Promise<AlertMessage[]> => {
      const { token } = await login(httpOf(node), 'admin');
      // ?node=true: what this instance holds itself (GET /api/alerts merges the owners' lists).
      return (await (await fetch(`${httpOf(node)}/api/alerts?node=true`, { headers: { authorization: `Bearer ${token}` } })).json()) as AlertMessage[];
    };
    const first = callPoints.get('h08')?.[0] as SiteDevice;
    const before = (await adminOpen('b')).find(isFireOf(first));
    expect(before).toBeDefined();
    // 1. b drops h08 (ingest and alerts restarted without it).
    HOMES.b = HOMES.b.filter((h) => h !== 'h08');
    await Promise.all([ingest.b?.proc?.stop(), alerts.b?.proc?.stop()]);
    await Promise.all([startIngest('b'), startAlerts('b')]);
    // While nobody owns h08: a fire and a reading, queued in h08's sessions in the brokers' Redis.
    const second = callPoints.get('h08')?.[1] as SiteDevice;
    await callPoint(second);
    const sd = senders.find((x) => x.d.homeId === 'h08') as Sender;
    const seq = Math.max(...sd.sent) + 1;
    await sd.client.publishAsync(deviceTopic('h08', sd.d.id, 'telemetry'), JSON.stringify({ ts: T0 + seq, seq, metrics: { temperature_c: 21, smoke_obscuration_pct_per_m: 0.1, battery_pct: 90 } }), { qos: 1 });
    // 2. a adds h08.
    HOMES.a = [...HOMES.a, 'h08'];
    await Promise.all([ingest.a?.proc?.stop(), alerts.a?.proc?.stop()]);
    await Promise.all([startIngest('a'), startAlerts('a')]);
    await reachesTheRightPeople(second, 120_000);
    await eventually('the reading sent while h08 had no owner, stored once', async () => {
      const rows = (await influxQuery(influxUrl, database, `SELECT seq FROM "raw"."telemetry" WHERE "device" = '${sd.d.id}' AND "seq" = ${seq}`)).flatMap((x) => x.values);
      return rows.length === 1 ? true : undefined;
    }, 60_000, 500);
    // The alert b raised before the move is held by a now: the same id and rule, still open, its version
    // not behind (an unacknowledged fire escalates by time, docs/alerts.md); b holds nothing of h08.
    const moved = await eventually('the h08 alert on a', async () => (await adminOpen('a')).find((a) => a.id === before?.id));
    expect(moved.rule).toBe(before?.rule);
    expect(moved.state).not.toBe('resolved');
    expect(moved.version).toBeGreaterThanOrEqual(before?.version ?? Infinity);
    expect((await adminOpen('a')).filter(isFireOf(first)).length).toBe(1);
    expect((await adminOpen('b')).filter((a) => a.homeId === 'h08')).toEqual([]);
    // Raised once (by a; b no longer runs h08): never two ids for one call point.
    expect((await adminOpen('a')).filter(isFireOf(second)).length).toBeLessThanOrEqual(1);
    expect((await adminOpen('b')).filter(isFireOf(second))).toEqual([]);
    nobodyElse();
  }, 600_000);
});
