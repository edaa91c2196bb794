import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { haproxyConfig, type Backend } from '../test/support/haproxy.ts';
import { REDIS_PUBSUB_OUTPUT_LIMIT } from '../broker/pubsub-resync.ts';
import { BENCH_DEVICE_SECRET, BENCH_SERVICE_SECRET, BENCH_USER_PASSWORD, benchRegistry, type BenchDevice, type BenchRegistry } from './lib/registry.ts';
import { startLoadgen, type Loadgen } from './lib/loadgen.ts';
import { freePort, liveChildren, onAbort, reniceAllThreads, spawnWithUlimit, startMosquitto, waitForPort, type Child } from './lib/processes.ts';
import { serviceArgs, startAlerts, startIngest } from './lib/services.ts';
import { createInfluxServer, influxdPid } from './lib/influx.ts';
import { coresUsed, cpuSample, rssBytes, type CpuSample } from './lib/proc.ts';
import { median, percentiles } from './lib/stats.ts';
import { alertTrials, STAGE_NAMES, type TrialSet } from './alerts.ts';
import type { Backoff, ReconnectReport, RunResult, StatsResult } from './lib/loadgen-protocol.ts';
import type { BenchContext, BenchResult, Benchmark, Row } from './lib/context.ts';
import { sleep } from './lib/sleep.ts';
import { openCpuGroups, type CpuGroups } from './lib/cpu-groups.ts';
import { readHaproxyView, type HaproxyView } from './lib/haproxy-view.ts';

/**
 * Issue 14: 100,000 concurrent device connections across broker nodes (CAREWATCH_BROKER_CLUSTER=redis)
 * behind HAProxy, on this one machine, with the province load flowing; Mosquitto side by side where
 * one process can hold the devices. Method and choices: bench/README.md "connections100k".
 *
 * - Every process here may hold at most RLIMIT_NOFILE descriptors (hard limit 20,000 in this
 *   container, not raisable even as root). So: broker nodes enough that after one dies the others
 *   still hold every device (≤ NODE_SHARE each), several HAProxy processes (HAProxy needs 2
 *   descriptors per proxied connection: ≤ 9,500 connections each), and one load-generator process
 *   per HAProxy (raw MQTT clients, bench/lib/mqtt-raw.ts, each authenticating with its own device id
 *   against the registry: one HMAC per CONNECT, as in production).
 * - Devices behave as carewatch devices at CONNECT (last will, retained online status), keepalive 60 s,
 *   full-jitter back-off on reconnect (bench/reconnect.ts's). Their telemetry (QoS 1) totals the
 *   province load (default 7,000 msg/s; never below one message a minute per device).
 * - ingest (→ InfluxDB) and alerts are connected directly to a node of their own ("svc"), which is in
 *   no HAProxy backend, so no device lands on it (docs/scaling.md: the node with the services sees
 *   every message; the device nodes see only their devices' commands). Since session 11 that node
 *   holds ingest alone: alerts' signals sessions and publisher are on a node "lane" (docs/scaling.md
 *   "The alarm lane"), which receives the events and statuses, not the readings, so an alarm does not
 *   wait behind the readings' backlog of the services' node (session 10: all 60 alarm receipts
 *   missing), and alerts' live feed of readings on a node "readings". Alarm probes and the socket.io
 *   clients sit in a separate load generator (one clock from publish to receipt), the probes behind
 *   HAProxy like every device, so every alarm crosses nodes through Redis.
 * - The device load generators stand for devices elsewhere on the network: they run at nice
 *   GENERATOR_NICE (`--generator-nice`) so that on this shared 2-core machine the system under
 *   test gets the CPU first (in production they use none of it). The probe generator, which keeps
 *   the clock of every alarm, runs with the alarm path (ALARM_NICE) when the runner may raise it.
 * - The last node is SIGKILLed under load; its devices reconnect through their HAProxy to the others.
 */

/** Devices per node after one node died (kept under the descriptor limit with a margin for the node's own descriptors and imbalance). */
const NODE_SHARE = 17_000;
/** Devices per HAProxy process and per load generator. */
const PER_GROUP = 9_000;
/** HAProxy maxconn: 2 descriptors per connection + its own, inside 20,000; leaves room for the probes. */
const HAPROXY_MAXCONN = 9_500;
/** Smoke detectors per home, about: the registry holds exactly the held devices and the probes (see `reg` below). */
const PER_HOME = 100;
/** Homes whose call point and vital-signs monitor are the alarm probes; only these homes have them (lib/registry.ts benchRegistry). */
const PROBE_HOMES = 40;
/** How long the run waits, once the load flows, for the device troubles of the connect phase to clear (full; quick: a tenth). */
const SETTLE_BOUND_MS = 480_000;
/**
 * And at least this long: every device heard twice at one message a minute (120 s,
 * its interval learned by supervision), then a raised device's 30 s restore hold and a home's 30 s
 * clear hold (alerts/rules/fire/supervision.ts RESTORE_HOLD_MS, HOME_CLEAR_HOLD_MS).
 */
const SETTLE_FLOOR_MS = 180_000;
/** Quick mode's floor: past the 20 s after which a silent device counts as down, or the check finds nothing yet. */
const QUICK_SETTLE_FLOOR_MS = 30_000;
const PROVINCE_RATE = 7_000;
/**
 * Devices connect without choosing a source address (until session 18 they bound one of eight,
 * 127.0.0.2–9, round robin). bind() to an address with port 0 makes the kernel look for a port no
 * socket on the machine holds in a conflicting way, checking the owners of each candidate port: with
 * 200,000 loopback sockets over 28,232 ephemeral ports that was most of a generator's CPU (perf, one
 * generator in the connect phase: 80 % in inet_bhash2_conflict, inet_bind2_bucket_match_addr_any and
 * inet_bind2_bucket_find, kernel 6.18), so generators starved on their CPU share, their event loops
 * stalled 9–24 s, devices pinged late and were closed for silent keepalives, and reconnected through
 * the same cost: the collapse of sessions 13–17. connect() without bind only needs a 4-tuple not in
 * use, and every device group has a HAProxy port of its own (≤ PER_GROUP connections there; the side
 * by side is capped by the range, plan()): inside the ephemeral range per destination.
 */
const SOURCES: readonly string[] = [];
const BACKOFF: Backoff = { initialMaxMs: 1_000, baseMs: 1_000, capMs: 30_000 };
/**
 * How long a device's connection attempt waits for CONNACK before it gives up and backs off: mqtt.js'
 * default connectTimeout (30 s), as device SDKs bound it. Until session 18 the bound was the whole
 * phase's (900 s), so an attempt that got no answer waited until HAProxy's idle timeout (120 s,
 * test/support/haproxy.ts) closed it, holding its device and, in the connect phase, one of its
 * generator's 100 workers that long.
 */
const CONNACK_TIMEOUT_MS = 30_000;
/** Niceness of the device load generators (see the header; `--generator-nice`); the storage path runs at 10 (lib/processes.ts). */
const GENERATOR_NICE = 5;
/**
 * Niceness of the alarm path when the runner may raise priorities (root or CAP_SYS_NICE): alerts at
 * -10, the two nodes that feed it (lane, readings) and the probe generator (the staff's phones and the
 * alarm clock, elsewhere in production) at -5. Session 12's run B: with ~20 device-side processes
 * busy at nice 5 (CFS weight 335 each) against alerts at 0 (1,024), alerts got 0.15–0.20 of a core
 * for the province's readings, was busy all the time and missed all 60 alarms. Nice values weigh
 * per process, so twenty modest ones outweigh one; in production alerts has a machine or a
 * `cpu_shares` of its own (docs/architecture.md "CPU priority"), which this stands for. -10 weighs
 * 9,548 (kernel sched_prio_to_weight), -5 3,121.
 */
const ALARM_NICE = { alerts: -10, feed: -5 } as const;
const HAPROXY_BIN = '/usr/sbin/haproxy';
const REDIS_BIN = '/usr/bin/redis-server';

const epoch = (): number => performance.timeOrigin + performance.now();

/** Ports of the kernel's ephemeral range (net.ipv4.ip_local_port_range): connections one source address can open to one destination. */
export function ephemeralPorts(): number {
  const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  return lo !== undefined && hi !== undefined && hi >= lo ? hi - lo + 1 : Number.POSITIVE_INFINITY;
}

/** The hard descriptor limit a child gets (spawnWithUlimit raises the soft limit to it). */
export function descriptorLimit(): number {
  const out = execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  return out === 'unlimited' ? 1_048_576 : Number(out);
}

export interface Plan {
  readonly devices: number;
  readonly homes: number;
  readonly nodes: number;
  readonly groups: number;
  readonly rate: number;
  /** Devices on one broker process in the side-by-side comparison with Mosquitto. */
  readonly sideBySide: number;
}

/** Sizes of a run. Pure: devices, nodes and rate as asked (undefined: the issue's), the descriptor limit. */
export function plan(o: { devices?: number; nodes?: number; rate?: number; fdLimit: number; quick: boolean; ephemeralPorts?: number }): Plan {
  const devices = o.devices ?? (o.quick ? 5_000 : 100_000);
  const perNodeMax = o.fdLimit - 1_000;
  const nodes = o.nodes ?? Math.max(2, Math.ceil(devices / Math.min(NODE_SHARE, perNodeMax)) + 1);
  if (nodes < 2) throw new Error('connections100k: at least 2 broker nodes (one is killed)');
  if (Math.ceil(devices / (nodes - 1)) > perNodeMax) {
    throw new Error(`connections100k: ${devices} devices on ${nodes - 1} nodes after one dies is ${Math.ceil(devices / (nodes - 1))} per node, above the ${perNodeMax} one process can hold (RLIMIT_NOFILE ${o.fdLimit}); use --nodes ${Math.ceil(devices / perNodeMax) + 1} or more`);
  }
  return {
    devices,
    homes: Math.ceil(devices / PER_HOME),
    nodes,
    // At least two, so the several-HAProxy path is exercised at a small --devices too.
    groups: Math.max(2, Math.ceil(devices / PER_GROUP)),
    rate: Math.max(o.rate ?? PROVINCE_RATE, Math.ceil(devices / 60)),
    // One process's devices all connect to one port without binding a source address (SOURCES): a
    // 4-tuple each, so at most the ephemeral range per destination, with a tenth left for TIME_WAIT.
    sideBySide: Math.min(devices, perNodeMax, Math.floor((o.ephemeralPorts ?? Number.POSITIVE_INFINITY) * 0.9)),
  };
}

interface Proc {
  readonly child: Child;
  close(): Promise<void>;
}

async function startRedis(): Promise<Proc & { url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'carewatch-bench-redis-'));
  const port = await freePort();
  // As docs/scaling.md deploys it: AOF with appendfsync always (what a node PUBACKs is on disk), the
  // broker nodes' pub/sub output-buffer limit of docker-compose.cluster.yml.
  const child = spawnWithUlimit('redis', [REDIS_BIN, '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--client-output-buffer-limit', REDIS_PUBSUB_OUTPUT_LIMIT, '--daemonize', 'no']);
  await waitForPort(port, 15_000, child);
  return {
    url: `redis://127.0.0.1:${port}`,
    child,
    async close() {
      await child.stop('SIGTERM', 15_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface BrokerNode extends Proc {
  readonly name: string;
  readonly port: number;
  readonly httpPort: number;
  connected(): Promise<number>;
  /** Messages waiting in the node's delivery queue (`carewatch_broker_queue_messages`): what it received and could not deliver yet. */
  queued(): Promise<number>;
  /** Connections the node closed for a silent keepalive, since its start (`carewatch_broker_keepalive_timeouts_total`). */
  keepaliveTimeouts(): Promise<number>;
  /** Persistent sessions' queue heads this node found stranded and closed for (`carewatch_broker_cluster_queue_heads_stranded_total`, broker/stranded-head.ts). */
  strandedHeads(): Promise<number>;
}

/** One broker node as docs/scaling.md runs it (same program as the single broker, two more variables). */
async function startNode(root: string, name: string, registryPath: string, redisUrl: string, nice?: number): Promise<BrokerNode> {
  const [port, httpPort] = [await freePort(), await freePort()];
  const child = spawnWithUlimit(`broker-${name}`, await serviceArgs('broker/main.ts', ['--max-old-space-size=4096']), {
    cwd: root,
    env: {
      ...process.env,
      CAREWATCH_REGISTRY: registryPath,
      CAREWATCH_BROKER_HOST: '127.0.0.1',
      CAREWATCH_BROKER_PORT: String(port),
      CAREWATCH_BROKER_WS_PORT: '0',
      CAREWATCH_BROKER_HTTP_PORT: String(httpPort),
      CAREWATCH_BROKER_REDIS_URL: `${redisUrl}/0`,
      CAREWATCH_BROKER_CLUSTER: 'redis',
      CAREWATCH_BROKER_NODE_ID: name,
      CAREWATCH_LOG_LEVEL: 'warn',
    },
    ...(nice !== undefined && nice > 0 ? { nice } : {}),
  });
  await waitForPort(port, 120_000, child);
  const deadline = Date.now() + 120_000;
  while (!child.tail().includes('broker listening')) {
    if (Date.now() > deadline) throw new Error(`broker node ${name} did not print "broker listening": ${child.tail()}`);
    if (child.proc.exitCode !== null) throw new Error(`broker node ${name} exited: ${child.tail()}`);
    await sleep(50);
  }
  const gauge = async (metric: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const m = new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text);
    if (m === null) throw new Error(`node ${name}: no ${metric} in /metrics`);
    return Number(m[1]);
  };
  return {
    name,
    port,
    httpPort,
    child,
    connected: () => gauge('carewatch_broker_clients_connected'),
    queued: () => gauge('carewatch_broker_queue_messages'),
    keepaliveTimeouts: () => gauge('carewatch_broker_keepalive_timeouts_total'),
    strandedHeads: () => gauge('carewatch_broker_cluster_queue_heads_stranded_total'),
    close: () => child.stop('SIGTERM', 15_000),
  };
}

async function startHaproxy(backends: readonly Backend[], sourceAddress: string, nice?: number): Promise<Proc & { port: number; view(): Promise<HaproxyView> }> {
  const dir = mkdtempSync(join(tmpdir(), 'carewatch-bench-haproxy-'));
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  const statsSocket = join(dir, 'stats.sock');
  writeFileSync(cfg, haproxyConfig(port, backends, { maxconn: HAPROXY_MAXCONN, statsSocket, sourceAddress }));
  const child = spawnWithUlimit('haproxy', [HAPROXY_BIN, '-f', cfg, '-db'], nice !== undefined && nice > 0 ? { nice } : {});
  await waitForPort(port, 15_000, child);
  return {
    port,
    child,
    view: () => readHaproxyView(statsSocket, 10_000),
    async close() {
      await child.stop('SIGTERM', 10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Per device group (generator i behind HAProxy i), for the log: session 17's failovers lost four of
 * eleven generators' devices (down to a few hundred each) while the other seven held every one, and
 * the connect phase ran into its bound with 15,763 devices never connected. Per group: connected /
 * attempts waiting for CONNACK (the oldest's wait, s) / backing off / dropped after CONNACK since
 * start, the generator's event-loop delay max since the last sample; its HAProxy's clients / queued /
 * redispatched / failed connects and nodes marked down.
 */
function groupsLine(stats: ReadonlyArray<StatsResult | undefined>, views: ReadonlyArray<HaproxyView | undefined>): string {
  const rows = stats.map((g, i) => {
    const v = views[i];
    const gen = g === undefined ? 'gen ?' : `${g.connected}/${g.connecting}(${Math.round(g.oldestAttemptMs / 1000)}s)/${g.backingOff}/${g.dropped} loop ${g.loopDelayMaxMs}ms`;
    const hap = v === undefined ? 'hap ?' : `hap ${v.clients}/${v.queued}/${v.redispatches}/${v.connectErrors}${v.down.length > 0 ? ` down ${v.down.join('+')}` : ''}`;
    return `[${i}] ${gen} ${hap}`;
  });
  return `(connected/connecting(oldest)/backing off/dropped, loop delay max; HAProxy clients/queued/redispatched/failed): ${rows.join('; ')}`;
}

/** The Redis commands that took the most CPU since the server started (INFO commandstats), for the load-phase log. */
function redisCommandTop(url: string): string {
  try {
    const port = new URL(url).port;
    const out = execFileSync('redis-cli', ['-p', port, 'info', 'commandstats'], { encoding: 'utf8', timeout: 5_000 });
    const rows = [...out.matchAll(/^cmdstat_(\w+):calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)/gm)].map((m) => ({ cmd: m[1] ?? '', calls: Number(m[2]), usec: Number(m[3]), per: Number(m[4]) }));
    return rows.sort((a, b) => b.usec - a.usec).slice(0, 6).map((r) => `${r.cmd} ${r.calls} ${r.per.toFixed(1)}µs`).join(', ');
  } catch (err) {
    return `(INFO commandstats failed: ${String(err)})`;
  }
}

/** The run's registry: exactly the plan's held smoke detectors, and a call point and a monitor in each probe home. */
export function planRegistry(root: string, p: Pick<Plan, 'devices' | 'homes'>): BenchRegistry {
  const probeHomes = Math.min(PROBE_HOMES, p.homes);
  return benchRegistry(root, p.devices + 2 * probeHomes, p.homes, probeHomes);
}

/** What an open alert says about itself, as far as the troubles' breakdown needs (GET /api/alerts). */
export interface OpenAlert {
  readonly rule: string;
  readonly signal: string;
  readonly homeId: string;
  readonly deviceId?: string;
  readonly raisedAt: number;
  readonly message: { readonly en: string };
}

/**
 * The open troubles by rule and device kind, with how long ago they were raised and in how many
 * homes: which devices hold the settle back (session 18 left 131 at 50,000 devices unexplained).
 * Pure; `kindOf` names a device's kind (`?` for none or unknown).
 */
export function troublesBreakdown(alerts: readonly OpenAlert[], kindOf: (deviceId: string) => string | undefined, now: number): string {
  const troubles = alerts.filter((a) => a.signal === 'trouble');
  const groups = new Map<string, { n: number; homes: Set<string>; ages: number[]; examples: string[] }>();
  for (const a of troubles) {
    const key = `${a.rule}/${a.deviceId !== undefined ? (kindOf(a.deviceId) ?? '?') : '-'}`;
    const g = groups.get(key) ?? { n: 0, homes: new Set<string>(), ages: [], examples: [] };
    g.n++;
    g.homes.add(a.homeId);
    g.ages.push((now - a.raisedAt) / 1000);
    if (g.examples.length < 2) g.examples.push(`${a.deviceId ?? a.homeId}: ${a.message.en}`);
    groups.set(key, g);
  }
  const rows = [...groups].sort((x, y) => y[1].n - x[1].n).map(([key, g]) => {
    const ages = percentiles(g.ages);
    return `${key} ${g.n} in ${g.homes.size} homes, raised ${ages.p50.toFixed(0)}/${ages.max.toFixed(0)} s ago (median/oldest), e.g. ${g.examples.join(' | ')}`;
  });
  return `${troubles.length} open troubles${rows.length > 0 ? `: ${rows.join('; ')}` : ''}`;
}

/** The bureau's token per alerts URL: one login (a scrypt check in alerts) for the run's reads, not one per read. */
const bureauTokens = new Map<string, string>();

/** Every open alert as the bureau sees it (every home), or the reason it could not be read. */
async function openAlerts(alertsUrl: string): Promise<OpenAlert[] | string> {
  try {
    let token = bureauTokens.get(alertsUrl);
    if (token === undefined) {
      const login = await fetch(`${alertsUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bureau', password: BENCH_USER_PASSWORD }), signal: AbortSignal.timeout(30_000) });
      if (!login.ok) return `login ${login.status}`;
      token = ((await login.json()) as { token: string }).token;
      bureauTokens.set(alertsUrl, token);
    }
    const res = await fetch(`${alertsUrl}/api/alerts`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(60_000) });
    if (res.status === 401) bureauTokens.delete(alertsUrl); // expired: the next read logs in again
    return res.ok ? ((await res.json()) as OpenAlert[]) : `GET /api/alerts ${res.status}`;
  } catch (err) {
    return String(err);
  }
}

/**
 * Polls alerts' open alerts (as the bureau, every home) until at most `allowed` troubles are open,
 * not counting those of `exempt` devices, and at least `floorMs` has passed; or until `boundMs`.
 *
 * The floor: devices silent through the connect phase are not yet troubles when the load starts (a
 * smoke detector is "down" for its home 20 s after its last message, two of its kind's 10 s reports),
 * so a check at once found none; 14–21 s later 41 of the 50 homes of a 5,000-device run raised a home
 * communication loss, and the alarm trials ran inside it (session 19). Each device must be heard
 * twice (two 60 s load cycles: its own interval learned) and clear holds pass before troubles are
 * judged settled. `exempt`: the alarm probes, which speak only in the trials and so stand as
 * troubles by design (their kinds report every 5 s and 60 s).
 * `allowed`: the devices that never connected, whose troubles stand for good (session 12 waited the
 * whole 480 s bound for the ~8,600 the connect bound left out); compared with a count of alerts, of
 * which a home's communication loss is one standing for many devices, so it is a bound, not a match.
 * A read in progress at the bound finishes first (up to its 60 s timeout).
 */
async function troublesSettled(alertsUrl: string, o: { boundMs: number; floorMs: number; allowed: number; exempt: ReadonlySet<string> }): Promise<{ ms: number; open: number; last: OpenAlert[] | string }> {
  const t0 = performance.now();
  let open = Number.NaN;
  let last: OpenAlert[] | string = 'never read';
  while (performance.now() - t0 < o.boundMs) {
    last = await openAlerts(alertsUrl);
    if (typeof last !== 'string') {
      open = last.filter((a) => a.signal === 'trouble' && (a.deviceId === undefined || !o.exempt.has(a.deviceId))).length;
      if (open <= o.allowed && performance.now() - t0 >= o.floorMs) return { ms: performance.now() - t0, open, last };
    }
    await sleep(10_000);
  }
  return { ms: performance.now() - t0, open, last };
}

/** RSS of these processes together, bytes (one that has gone counts 0). */
function rssOf(pids: readonly number[]): number {
  return pids.reduce((a, pid) => a + (rssBytes(pid) || 0), 0);
}

/** RSS of every process this benchmark runs (children, InfluxDB, the runner). */
function totalRss(extraPids: readonly number[]): number {
  const children = [...liveChildren].flatMap((c) => (c.pid !== undefined ? [c.pid] : []));
  return rssOf([process.pid, ...children, ...extraPids]);
}

/** Mosquitto's password file for the same devices (same secret as the registry's; mosquitto_passwd -U hashes it in place). */
function mosquittoPasswords(dir: string, ids: readonly string[]): string {
  const path = join(dir, 'mosquitto.passwd');
  writeFileSync(path, ids.map((id) => `${id}:${BENCH_DEVICE_SECRET}`).join('\n') + '\n');
  execFileSync('mosquitto_passwd', ['-U', path], { stdio: 'ignore', timeout: 300_000 });
  // Mosquitto drops to its own user before reading it (bench secret, temporary directory).
  chmodSync(dir, 0o755);
  chmodSync(path, 0o644);
  return path;
}

function slices<T>(all: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let off = 0; off < all.length; off += size) out.push(all.slice(off, off + size));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Part 1: one process holding the same devices: a carewatch node vs Mosquitto.

interface SingleRun {
  readonly broker: 'carewatch node' | 'mosquitto';
  readonly target: number;
  readonly connected: number;
  readonly connectMs: number;
  readonly rssIdle: number;
  readonly rssLoaded: number;
  readonly bytesPerConn: number;
  readonly firstError?: string;
}

async function measureSingle(ctx: BenchContext, which: SingleRun['broker'], devices: readonly BenchDevice[], registryPath: string): Promise<SingleRun> {
  const closers: Array<() => Promise<unknown>> = [];
  try {
    let port: number;
    let pid: number;
    if (which === 'carewatch node') {
      const redis = await startRedis();
      closers.push(() => redis.close());
      const node = await startNode(ctx.root, 'solo', registryPath, redis.url);
      closers.push(() => node.close());
      port = node.port;
      pid = node.child.pid;
    } else {
      // Its own directory under /tmp (not under the 0700 work directory): Mosquitto reads the file as its own user.
      const dir = mkdtempSync(join(tmpdir(), 'carewatch-bench-c100k-mosq-'));
      closers.push(async () => rmSync(dir, { recursive: true, force: true }));
      const m = await startMosquitto(undefined, { passwordFile: mosquittoPasswords(dir, devices.map((d) => d.id)) });
      closers.push(() => m.close());
      port = m.port;
      pid = m.child.pid;
    }
    await sleep(1_000);
    const rssIdle = rssBytes(pid);
    const parts = slices(devices, PER_GROUP);
    const lgs = await Promise.all(parts.map(() => startLoadgen()));
    for (const lg of lgs) closers.push(() => lg.close());
    const t0 = performance.now();
    const res = await Promise.all(
      lgs.map((lg, i) => lg.connect({ host: '127.0.0.1', port, devices: parts[i] ?? [], secret: BENCH_DEVICE_SECRET, keepaliveS: 60, localAddresses: SOURCES, concurrency: 100, reconnect: false, deviceSession: true, timeoutMs: ctx.quick ? 120_000 : 600_000 })),
    );
    const connectMs = performance.now() - t0;
    const connected = res.reduce((s, r) => s + r.connected, 0);
    const firstError = res.find((r) => r.firstError !== undefined)?.firstError;
    ctx.log(`connections100k side by side, ${which}: ${connected}/${devices.length} connected in ${(connectMs / 1000).toFixed(1)} s${firstError !== undefined ? ` (first error: ${firstError})` : ''}`);
    // One message a minute per device, for a short window: the connections carry traffic when measured.
    await Promise.all(lgs.map((lg, i) => lg.run({ rate: Math.max(1, Math.round((parts[i]?.length ?? 0) / 60)), warmupMs: 0, durationMs: ctx.quick ? 5_000 : 20_000, drainMs: 5_000, qos: 1, window: 1, expectDeliveries: false })));
    const rssLoaded = rssBytes(pid);
    return { broker: which, target: devices.length, connected, connectMs, rssIdle, rssLoaded, bytesPerConn: (rssLoaded - rssIdle) / Math.max(1, connected), ...(firstError !== undefined ? { firstError } : {}) };
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Part 2: every device on the nodes behind HAProxy, province load, alarms, one node killed.

interface NodeFigures {
  readonly name: string;
  readonly connections: number;
  readonly rssIdle: number;
  readonly rssLoaded: number;
  readonly bytesPerConn: number;
}

interface ClusterRun {
  readonly plan: Plan;
  /** ingest's subscription was in place when the load started (stats().mqtt.subscribed). */
  readonly ingestSubscribed: boolean;
  /** RSS (bytes) of each kind of process at steady load. */
  readonly rssByKind: Record<string, number>;
  readonly connected: number;
  readonly probes: number;
  readonly connectMs: number;
  readonly connectFirstError?: string;
  readonly nodes: NodeFigures[];
  readonly totalRssLoaded: number;
  readonly ingestRate: number;
  readonly loaded: TrialSet;
  readonly afterFailover: TrialSet;
  readonly failover: {
    readonly victim: string;
    readonly victimConnections: number;
    readonly heldBefore: number;
    readonly reconnected: number;
    readonly connectedAfter: number;
    readonly allBackMs: number;
    readonly connectLatencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
    readonly attempts: number;
    readonly failedAttempts: number;
    readonly firstError?: string;
    readonly survivors: Record<string, number>;
  };
  readonly load: { readonly sent: number; readonly acked: number; readonly sendRate: number; readonly behindTicks: number };
  /**
   * From the load's start until no more device troubles were open than `allowed`, the devices that
   * never connected (theirs stand), or the bound (ms); and the count open then.
   */
  readonly settle: { readonly ms: number; readonly open: number; readonly allowed: number };
  /** Every 30 s of the load phase: the machine's load, RSS (MB) and cores used by kind of process, devices connected per generator. */
  readonly loadPhase: LoadSample[];
}

interface LoadSample {
  readonly atS: number;
  readonly loadAverage: number;
  readonly rssMb: Record<string, number>;
  readonly cores: Record<string, number>;
  readonly connected: number[];
  /** Redis' commands by CPU time since it started (INFO commandstats), the top 6: "cmd calls µs/call". */
  readonly redisTop: string;
  /** Messages waiting in the delivery queue of the services' node, the lane node and the readings node. */
  readonly queued: { readonly svc: number; readonly lane: number; readonly readings: number };
  /** Keepalive closes on the device nodes since their start. */
  readonly keepaliveTimeouts: number;
  /** Stranded queue heads the services', lane and readings nodes closed a session for, since their start. */
  readonly strandedHeads: number;
}

async function measureCluster(ctx: BenchContext, p: Plan, reg: BenchRegistry): Promise<ClusterRun> {
  const closers: Array<() => Promise<unknown>> = [];
  const tmp = join(ctx.root, '.tmp', 'bench', `connections100k-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  closers.push(async () => rmSync(tmp, { recursive: true, force: true }));
  try {
    // Before any process of the cluster starts: they inherit the runner's group (lib/cpu-groups.ts).
    let groups: CpuGroups | undefined;
    if (ctx.generatorCpu !== undefined) {
      const g = openCpuGroups(String(process.pid), ctx.generatorCpu);
      if ('error' in g) throw new Error(`--generator-cpu: ${g.error}`);
      groups = g;
      // First in, so closed last: after every process of the run has stopped.
      const offAbort = onAbort(() => g.close());
      closers.unshift(async () => {
        offAbort();
        g.close();
      });
      ctx.log(`connections100k: device load generators in a CPU group of their own, ${ctx.generatorCpu} % of the machine when contended (--generator-cpu)`);
    }
    const influx = await createInfluxServer();
    closers.push(() => influx.close());
    await influx.start();
    const redis = await startRedis();
    closers.push(() => redis.close());
    // The services' node and the alarm lane's (in no HAProxy backend), and the device nodes. The
    // lane carries alerts' signals sessions and publisher (CAREWATCH_SIGNALS_MQTT_URL): it receives
    // the cluster's events and statuses and no readings (docs/scaling.md "The alarm lane").
    // alerts' live feed of readings has a node of its own too ("readings"): the services' node, which
    // delivers each reading to ingest's persistent session (a Redis queue write and clear per
    // message), fell ~1,000 msg/s behind in session 11's first run, and a care alarm decided by a
    // reading (a vital-signs monitor's) waited behind that backlog; a QoS 0 feed costs a node far less.
    const [svc, lane, readings, ...nodes] = await Promise.all(Array.from({ length: p.nodes + 3 }, (_, i) => startNode(ctx.root, ['svc', 'lane', 'readings'][i] ?? `n${i - 3}`, reg.path, redis.url, i < 3 ? undefined : ctx.deviceNice))) as [BrokerNode, BrokerNode, BrokerNode, ...BrokerNode[]];
    // Closed in reverse: services first, then nodes (the killed one is already gone).
    closers.push(() => Promise.all([svc, lane, readings, ...nodes].map((n) => n.close())));
    if (ctx.deviceNice !== undefined) ctx.log(`connections100k: device nodes and HAProxy at nice ${ctx.deviceNice} (--device-nice): the alarm side first, as on machines of its own`);
    ctx.log(`connections100k: ${p.nodes} device nodes, a services' node (ingest), an alarm lane node (alerts' events and statuses) and a readings node (alerts' live feed) on one Redis`);
    const db = `bench_c100k_${Date.now()}`;
    const ingest = await startIngest({ registryPath: reg.path, brokerPort: svc.port, influxUrl: influx.url, db, spoolDir: join(tmp, 'spool'), password: BENCH_SERVICE_SECRET });
    closers.push(() => ingest.close());
    const ingestSubscribed = (await ingest.stats()).mqtt.subscribed;
    if (!ingestSubscribed) ctx.log(`connections100k: WARNING ingest not subscribed 30 s after start: ${ingest.child.tail().slice(-1000)}`);
    const alerts = await startAlerts({ registryPath: reg.path, brokerPort: readings.port, signalsPort: lane.port, influxUrl: influx.url, db, stateDir: join(tmp, 'state'), password: BENCH_SERVICE_SECRET });
    closers.push(() => alerts.close());
    const raised = [reniceAllThreads(alerts.child.pid, ALARM_NICE.alerts), reniceAllThreads(lane.child.pid, ALARM_NICE.feed), reniceAllThreads(readings.child.pid, ALARM_NICE.feed)].every(Boolean);
    // Each HAProxy connects to the nodes from a loopback address of its own (127.0.1.1, .2, …), as
    // separate load balancers would: with one shared address, each node's ≥ 14,000 connections from it
    // made every new connect() scan the ephemeral range (test/support/haproxy.ts sourceAddress).
    const haproxies = await Promise.all(Array.from({ length: p.groups }, (_, i) => startHaproxy(nodes.map((n) => ({ name: n.name, port: n.port })), `127.0.1.${i + 1}`, ctx.deviceNice)));
    closers.push(() => Promise.all(haproxies.map((h) => h.close())));
    await sleep(4_000); // HAProxy's first health checks (rise 2 × 2 s, test/support/haproxy.ts) mark every node up
    const rssIdle = nodes.map((n) => rssBytes(n.child.pid));

    // Probes: the call points and vital-signs monitors of up to 40 homes, and their staff's pages.
    const probeHomes = reg.homes.slice(0, Math.min(PROBE_HOMES, reg.homes.length));
    const probeDevices = [...reg.callPoints, ...reg.vitalMonitors].filter((d) => probeHomes.includes(d.homeId));
    const held = reg.loadDevices.slice(0, p.devices);
    const probe = await startLoadgen();
    closers.push(() => probe.close());
    const probeRaised = reniceAllThreads(probe.child.pid, ALARM_NICE.feed);
    ctx.log(
      raised && probeRaised
        ? `connections100k: alarm path raised: alerts at nice ${ALARM_NICE.alerts}; lane, readings and the probe generator at ${ALARM_NICE.feed}`
        : 'connections100k: WARNING could not raise the alarm path\'s priority (needs root or CAP_SYS_NICE): alerts competes with the device side per process',
    );
    const parts = slices(held, PER_GROUP);
    // In a CPU group of their own the generators weigh as one against the rest: nice 0 inside it.
    const generatorNice = ctx.generatorNice ?? (groups !== undefined ? 0 : GENERATOR_NICE);
    ctx.log(`connections100k: device load generators at nice ${generatorNice}${ctx.generatorNice !== undefined ? ' (--generator-nice)' : ''}`);
    const lgs = await Promise.all(parts.map(() => startLoadgen({ nice: generatorNice })));
    closers.push(() => Promise.all(lgs.map((lg) => lg.close())));
    for (const lg of lgs) groups?.addGenerator(lg.child.pid);
    const connectOpts = { secret: BENCH_DEVICE_SECRET, keepaliveS: 60, localAddresses: SOURCES, concurrency: 100, reconnect: true, backoff: BACKOFF, deviceSession: true, timeoutMs: ctx.quick ? 300_000 : 900_000, connackTimeoutMs: CONNACK_TIMEOUT_MS } as const;
    const t0 = performance.now();
    const connecting = Promise.all(lgs.map((lg, i) => lg.connect({ host: '127.0.0.1', port: (haproxies[i] ?? haproxies[0])!.port, devices: parts[i] ?? [], ...connectOpts })));
    /** Each group's generator and HAProxy, read together (an unanswered read is `undefined`: "gen ?" / "hap ?"). */
    const readGroups = async (): Promise<{ stats: Array<StatsResult | undefined>; views: Array<HaproxyView | undefined> }> => {
      const [stats, views] = await Promise.all([Promise.all(lgs.map((lg) => lg.stats().catch(() => undefined))), Promise.all(haproxies.map((h) => h.view().catch(() => undefined)))]);
      return { stats, views };
    };
    // The groups every 30 s while they connect (the phase has run into its bound since session 12).
    let connectDone = false;
    let connectEnd = Number.NaN;
    void connecting.finally(() => {
      connectDone = true;
      connectEnd = performance.now();
    }).catch(() => undefined);
    while (!connectDone) {
      await Promise.race([sleep(30_000), connecting.catch(() => undefined)]);
      if (connectDone) break;
      const groups = await readGroups();
      ctx.log(`connections100k: groups at ${Math.round((performance.now() - t0) / 1000)} s of the connect ${groupsLine(groups.stats, groups.views)}`);
    }
    const res = await connecting;
    const connectMs = connectEnd - t0;
    const connected = res.reduce((s, r) => s + r.connected, 0);
    const connectFirstError = res.find((r) => r.firstError !== undefined)?.firstError;
    ctx.log(`connections100k: ${connected}/${held.length} devices connected through ${p.groups} HAProxy in ${(connectMs / 1000).toFixed(1)} s${connectFirstError !== undefined ? ` (first error: ${connectFirstError})` : ''}`);
    const pr = await probe.connect({ host: '127.0.0.1', port: (haproxies[0] as { port: number }).port, devices: probeDevices, ...connectOpts, concurrency: 20 });
    if (pr.connected < probeDevices.length) throw new Error(`probe devices: ${pr.connected}/${probeDevices.length} (${pr.firstError ?? ''})`);
    const users = [...probeHomes.map((h) => ({ username: `staff-${h}`, password: BENCH_USER_PASSWORD })), { username: 'bureau', password: BENCH_USER_PASSWORD }];
    const dash = await probe.dashboards(alerts.url, users, 120_000);
    if (dash.connected < users.length) throw new Error(`dashboards: ${dash.connected}/${users.length}`);

    // The province load over every held device (QoS 1, as devices send telemetry).
    // Handled at once: a load generator that dies mid-run (its promise rejects long before it is
    // awaited) must fail this benchmark, not crash the runner with an unhandled rejection.
    const runs: Array<Promise<RunResult | Error>> = lgs.map((lg, i) =>
      lg.run({ rate: Math.max(1, Math.round((p.rate * (parts[i]?.length ?? 0)) / held.length)), warmupMs: 0, durationMs: 4 * 3_600_000, drainMs: 10_000, qos: 1, window: 10, expectDeliveries: false }).catch((err: unknown) => {
        ctx.log(`connections100k: load generator ${i}: ${String(err)}`);
        return err instanceof Error ? err : new Error(String(err));
      }),
    );
    ctx.log(`connections100k: province load ${p.rate} msg/s started; warming up`);
    // Every 30 s while the load runs: RSS and CPU by kind, the machine's load, devices connected.
    // Session 7's runs starved (load average 22–35 on 2 cores) and did not say which process took the CPU.
    const influxPid = influxdPid(influx.dataDir);
    const kinds: Record<string, number[]> = {
      'services node': [svc.child.pid],
      'alarm lane node': [lane.child.pid],
      'readings node': [readings.child.pid],
      'device nodes': nodes.map((n) => n.child.pid),
      haproxy: haproxies.map((h) => h.child.pid),
      'device load generators': lgs.map((lg) => lg.child.pid),
      probe: [probe.child.pid],
      redis: [redis.child.pid],
      influxdb: influxPid !== undefined ? [influxPid] : [],
      ingest: [ingest.child.pid],
      alerts: [alerts.child.pid],
    };
    const mb = (pids: readonly number[]): number => Math.round(rssOf(pids) / 1024 ** 2);
    const loadPhase: LoadSample[] = [];
    const tLoad = performance.now();
    let sampling = true;
    const sampler = (async () => {
      // Per process, so that a process gone in between (the killed node) drops out instead of subtracting its whole CPU.
      const perPid = (): Map<number, CpuSample | undefined> => new Map(Object.values(kinds).flat().map((pid) => [pid, cpuSample(pid)]));
      let last = perPid();
      while (sampling) {
        await sleep(30_000);
        if (!sampling) break;
        const now = perPid();
        const cores = Object.fromEntries(
          Object.entries(kinds).map(([k, pids]) => [k, Math.round(pids.reduce((sum, pid) => sum + (coresUsed(last.get(pid), now.get(pid)) || 0), 0) * 100) / 100]),
        );
        last = now;
        const rssMb = Object.fromEntries(Object.entries(kinds).map(([k, pids]) => [k, mb(pids)]));
        const groups = await readGroups();
        const connectedNow = groups.stats.map((x) => x?.connected ?? -1);
        const redisTop = redisCommandTop(redis.url);
        const [svcQueued, laneQueued, readingsQueued] = await Promise.all([svc, lane, readings].map((n) => n.queued().catch(() => -1)));
        // Which side ends the connections when devices drop (session 9–11 failovers cascaded): the
        // device nodes' keepalive closes (devices, or their starved load generators, silent 90 s).
        const keepaliveTimeouts = (await Promise.all(nodes.map((n) => n.keepaliveTimeouts().catch(() => 0)))).reduce((a, b) => a + b, 0);
        const strandedHeads = (await Promise.all([svc, lane, readings].map((n) => n.strandedHeads().catch(() => 0)))).reduce((a, b) => a + b, 0);
        const sample: LoadSample = { atS: Math.round((performance.now() - tLoad) / 1000), loadAverage: loadavg()[0] ?? Number.NaN, rssMb, cores, connected: connectedNow, redisTop, queued: { svc: svcQueued ?? -1, lane: laneQueued ?? -1, readings: readingsQueued ?? -1 }, keepaliveTimeouts, strandedHeads };
        loadPhase.push(sample);
        ctx.log(`connections100k: groups at ${sample.atS} s of the load ${groupsLine(groups.stats, groups.views)}`);
        ctx.log(`connections100k: load phase ${sample.atS} s: load average ${sample.loadAverage.toFixed(1)}; cores ${JSON.stringify(cores)}; RSS MB ${JSON.stringify(rssMb)}; connected per generator ${JSON.stringify(connectedNow)}; delivery queue ${JSON.stringify(sample.queued)}; keepalive closes on device nodes ${sample.keepaliveTimeouts}; stranded queue heads ${sample.strandedHeads}; Redis commands by CPU so far ${redisTop}`);
      }
    })();
    // Devices connected early were silent until the load started (the connect phase lasts minutes), so
    // alerts raised device and home-communication troubles, which clear once the devices have been
    // heard again for its restore hold. The alarm trials measure the steady state after that.
    const neverConnected = held.length - connected;
    const quickBy = ctx.quick ? 10 : 1;
    const judged = await troublesSettled(alerts.url, { boundMs: SETTLE_BOUND_MS / quickBy, floorMs: ctx.quick ? QUICK_SETTLE_FLOOR_MS : SETTLE_FLOOR_MS, allowed: neverConnected, exempt: new Set(probeDevices.map((d) => d.id)) });
    const settle = { ms: judged.ms, open: judged.open, allowed: neverConnected };
    const kindOf = new Map(reg.all.map((d) => [d.id, d.kind]));
    const troublesText = (open: OpenAlert[] | string): string => (typeof open === 'string' ? `open alerts not read (${open})` : troublesBreakdown(open, (id) => kindOf.get(id), Date.now()));
    ctx.log(`connections100k: at the settle ${troublesText(judged.last)} (the settle does not count the ${probeDevices.length} probes' own)`);
    ctx.log(`connections100k: device troubles of the connect phase ${settle.open <= neverConnected ? `cleared ${(settle.ms / 1000).toFixed(0)} s into the load (${settle.open} open, ${neverConnected} devices never connected)` : `still open after ${(settle.ms / 1000).toFixed(0)} s: ${settle.open} (${neverConnected} devices never connected)`}`);
    await sleep(ctx.quick ? 5_000 : 15_000);
    const stack = { reg: { ...reg, homes: probeHomes }, load: probe, probe, close: async () => undefined };
    const i0 = await ingest.stats();
    const ti0 = performance.now();
    const usedCallPoints = new Set<string>();
    const loaded = await alertTrials(stack, ctx.quick ? 10 : 30, usedCallPoints, ctx.quick ? 200 : 500);
    const i1 = await ingest.stats();
    if (loaded.missedReceipts > 0) ctx.log(`connections100k: ${loaded.missedReceipts} alarm receipts missing${loaded.errors.length > 0 ? ` (${loaded.errors.length} triggers failed, first: ${loaded.errors[0]})` : ''}; alerts said: ${alerts.child.tail().slice(-1500)}`);
    const ingestRate = ((i1.received - i0.received) * 1000) / (performance.now() - ti0);
    // A gauge that times out under load is a missing figure, not a failed run (session 12 lost the
    // receipts' log line and the failover to one).
    const perNode = await Promise.all(nodes.map((n) => n.connected().catch(() => Number.NaN)));
    const figures: NodeFigures[] = nodes.map((n, i) => {
      const rssLoaded = rssBytes(n.child.pid);
      const conns = perNode[i] ?? 0;
      return { name: n.name, connections: conns, rssIdle: rssIdle[i] ?? Number.NaN, rssLoaded, bytesPerConn: (rssLoaded - (rssIdle[i] ?? Number.NaN)) / Math.max(1, conns) };
    });
    const totalRssLoaded = totalRss(influxPid !== undefined ? [influxPid] : []);
    const rssByKind: Record<string, number> = Object.fromEntries(Object.entries(kinds).map(([k, pids]) => [k, rssOf(pids)]));
    ctx.log(`connections100k: RSS MB by kind ${JSON.stringify(Object.fromEntries(Object.entries(rssByKind).map(([k, v]) => [k, Math.round(v / 1024 ** 2)])))}`);
    ctx.log(`connections100k: per node ${figures.map((f) => `${f.name} ${f.connections} conns ${(f.rssLoaded / 1024 ** 2).toFixed(0)} MB`).join(', ')}; all processes ${(totalRssLoaded / 1024 ** 3).toFixed(2)} GB; ingest ${ingestRate.toFixed(0)} msg/s; fire p99 ${percentiles(loaded.fire).p99.toFixed(1)} ms, care p99 ${percentiles(loaded.care).p99.toFixed(1)} ms`);
    // Logged now: the failover after this may run into the runner's bound, which loses the table.
    ctx.log(`connections100k: alarm receipts ${loaded.fire.length} fire, ${loaded.care.length} care (${loaded.missedReceipts} missing, ${loaded.bySnapshot} by a reconnected page's snapshot; page reconnects ${(await stack.probe.stats()).pageReconnects}); stage p99 ${STAGE_NAMES.map(([key, text]) => `${text} ${percentiles(loaded.stages.map((x) => x[key])).p99.toFixed(0)} ms`).join(', ')}; per receipt (kind total ms / stages): ${loaded.stages.map((x) => `${x.kind} ${x.totalMs.toFixed(0)}/${STAGE_NAMES.map(([key]) => String(x[key])).join('+')}`).join(' ')}`);

    // Which troubles stand during the trials (session 18: 131 at 50,000 devices, 7,018 at 100,000, unexplained).
    ctx.log(`connections100k: after the alarm trials ${troublesText(await openAlerts(alerts.url))}`);

    // Failover: SIGKILL the last device node; its devices come back through HAProxy to the others.
    const victim = nodes[nodes.length - 1] as BrokerNode;
    const victimConnections = perNode[perNode.length - 1] ?? 0;
    const everyLg = [...lgs, probe];
    const heldBefore = (await Promise.all(everyLg.map((lg) => lg.stats()))).reduce((s, x) => s + x.connected, 0);
    await Promise.all(everyLg.map((lg) => lg.resetReconnects()));
    const killedAt = epoch();
    await victim.child.stop('SIGKILL', 5_000);
    const bound = ctx.quick ? 180_000 : 600_000;
    let reports: ReconnectReport[] = [];
    const tk = performance.now();
    while (performance.now() - tk < bound) {
      reports = await Promise.all(everyLg.map((lg) => lg.reconnectReport()));
      const back = reports.reduce((s, r) => s + r.reconnected, 0);
      const now = reports.reduce((s, r) => s + r.connected, 0);
      if (back >= victimConnections && now >= heldBefore) break;
      await sleep(100);
    }
    const reconnected = reports.reduce((s, r) => s + r.reconnected, 0);
    const connectedAfter = reports.reduce((s, r) => s + r.connected, 0);
    const lastConnack = Math.max(...reports.map((r) => r.lastConnackEpochMs).filter((x) => Number.isFinite(x)));
    const allBack = reconnected >= victimConnections && connectedAfter >= heldBefore;
    const lat = percentiles(reports.flatMap((r) => r.connectLatenciesMs));
    // Guarded like every gauge read under load (session 18's run f lost its table to this one timing out).
    const survivorsCounts = await Promise.all(nodes.slice(0, -1).map((n) => n.connected().catch(() => Number.NaN)));
    const firstError = reports.find((r) => r.firstError !== undefined)?.firstError;
    ctx.log(`connections100k: failover attempts failed by kind, per generator (the last: the probes): ${reports.map((r, i) => `[${i === lgs.length ? 'probe' : i}] ${r.failedAttempts}/${r.attempts} ${JSON.stringify(r.failuresByKind)}`).join('; ')}`);
    const failover: ClusterRun['failover'] = {
      victim: victim.name,
      victimConnections,
      heldBefore,
      reconnected,
      connectedAfter,
      allBackMs: allBack ? lastConnack - killedAt : Number.NaN,
      connectLatencyMs: { p50: lat.p50, p99: lat.p99, max: lat.max },
      attempts: reports.reduce((s, r) => s + r.attempts, 0),
      failedAttempts: reports.reduce((s, r) => s + r.failedAttempts, 0),
      ...(firstError !== undefined ? { firstError } : {}),
      survivors: Object.fromEntries(nodes.slice(0, -1).map((n, i) => [n.name, survivorsCounts[i] ?? 0])),
    };
    ctx.log(`connections100k: node ${victim.name} (${victimConnections} connections) SIGKILLed; ${reconnected} reconnected, ${connectedAfter}/${heldBefore} connected, all back ${allBack ? `in ${(failover.allBackMs / 1000).toFixed(2)} s` : 'NOT within the bound'}; survivors ${JSON.stringify(failover.survivors)}`);
    // Alarms still delivered after the failover (probe devices that were on the dead node moved too).
    const afterFailover = await alertTrials(stack, ctx.quick ? 3 : 5, usedCallPoints, 500);
    if (afterFailover.errors.length > 0) ctx.log(`connections100k: after the failover ${afterFailover.errors.length} triggers failed, first: ${afterFailover.errors[0]}`);
    sampling = false;
    void sampler; // ends at its next wake-up

    await Promise.all(lgs.map((lg) => lg.stopRun().catch(() => undefined)));
    const settled = await Promise.all(runs);
    const failedRun = settled.find((r): r is Error => r instanceof Error);
    if (failedRun !== undefined) throw new Error(`a load generator failed during the run: ${failedRun.message}`);
    const loadResults = settled as RunResult[];
    const load = {
      sent: loadResults.reduce((s, r) => s + r.sent, 0),
      acked: loadResults.reduce((s, r) => s + r.acked, 0),
      sendRate: loadResults.reduce((s, r) => s + r.sendRate, 0),
      behindTicks: loadResults.reduce((s, r) => s + r.behindTicks, 0),
    };
    ctx.log(`connections100k: load sent ${load.sent} at ${load.sendRate.toFixed(0)} msg/s, ${load.acked} PUBACKed`);
    return { plan: p, ingestSubscribed, rssByKind, connected, probes: pr.connected, connectMs, ...(connectFirstError !== undefined ? { connectFirstError } : {}), nodes: figures, totalRssLoaded, ingestRate, loaded, afterFailover, failover, load, loadPhase, settle };
  } finally {
    for (const c of closers.reverse()) await c().catch((err: unknown) => ctx.log(`connections100k: cleanup: ${String(err)}`));
  }
}

export const connections100kBenchmark: Benchmark = {
  name: 'connections100k',
  title: '100,000 device connections over broker nodes behind HAProxy, province load, alarms, one node killed; one node vs Mosquitto',
  optIn: true,
  // Runs once per invocation; a small check on a loaded machine takes longer than --quick's 8 min.
  boundMinutes: 40,
  async run(ctx: BenchContext): Promise<BenchResult> {
    const fdLimit = descriptorLimit();
    const p = plan({ ...(ctx.devices !== undefined ? { devices: ctx.devices } : {}), ...(ctx.nodes !== undefined ? { nodes: ctx.nodes } : {}), ...(ctx.rate !== undefined ? { rate: ctx.rate } : {}), fdLimit, quick: ctx.quick, ephemeralPorts: ephemeralPorts() });
    if (ctx.runs > 1) ctx.log(`connections100k: runs once per invocation (--runs ${ctx.runs} ignored)`);
    ctx.log(`connections100k: ${p.devices} devices, ${p.homes} homes, ${p.nodes} nodes, ${p.groups} HAProxy + load generators, ${p.rate} msg/s; side by side ${p.sideBySide} devices (RLIMIT_NOFILE ${fdLimit})`);
    // Registry: exactly the held smoke detectors (about PER_HOME a home) + a call point and a
    // vital-signs monitor in each probe home. Until session 19 each home had PER_HOME + 2 devices, so
    // 1,920 registered detectors (20 at 5,000) were never connected: standing troubles of the bench's
    // own making, escalating, in every run.
    const reg = planRegistry(ctx.root, p);
    if (reg.loadDevices.length !== p.devices) throw new Error(`registry: ${reg.loadDevices.length} smoke detectors for ${p.devices} devices`);
    {
      const side = reg.loadDevices.slice(0, p.sideBySide);
      const single: SingleRun[] = [];
      for (const which of ['carewatch node', 'mosquitto'] as const) single.push(await measureSingle(ctx, which, side, reg.path));
      const cluster = await measureCluster(ctx, p, reg);
      const ours = single[0] as SingleRun;
      const mosq = single[1] as SingleRun;
      const perConn = cluster.nodes.map((n) => n.bytesPerConn / 1024);
      const fire = percentiles(cluster.loaded.fire);
      const care = percentiles(cluster.loaded.care);
      const after = percentiles([...cluster.afterFailover.fire, ...cluster.afterFailover.care]);
      const missing = cluster.loaded.missedReceipts + cluster.afterFailover.missedReceipts;
      const noRef = 'no Mosquitto reference: one Mosquitto process cannot hold this many (RLIMIT_NOFILE) and open-source Mosquitto has no clustering';
      const f = cluster.failover;
      const rows: Row[] = [
        { bench: 'connections100k', metric: `devices held on ${p.nodes} device nodes (+ a services' node) through ${p.groups} HAProxy`, value: cluster.connected, unit: 'conns', target: `${p.devices}`, met: cluster.connected >= p.devices, note: `${cluster.probes} alarm probes besides; connected in ${(cluster.connectMs / 1000).toFixed(1)} s; ${noRef}` },
        { bench: 'connections100k', metric: 'connections per node (min–max)', value: Math.min(...cluster.nodes.map((n) => n.connections)), unit: 'conns', note: `max ${Math.max(...cluster.nodes.map((n) => n.connections))}` },
        { bench: 'connections100k', metric: 'node RSS per connection, loaded (median of nodes)', value: median(perConn), unit: 'KB', reference: { name: 'mosquitto', value: mosq.bytesPerConn / 1024 }, ratio: median(perConn) / (mosq.bytesPerConn / 1024), note: `min ${Math.min(...perConn).toFixed(1)}, max ${Math.max(...perConn).toFixed(1)} KB; reference: Mosquitto holding ${mosq.connected} in part 1` },
        { bench: 'connections100k', metric: 'node RSS, loaded (max of nodes)', value: Math.max(...cluster.nodes.map((n) => n.rssLoaded)) / 1024 ** 2, unit: 'MB' },
        { bench: 'connections100k', metric: 'RSS of every process of the run', value: cluster.totalRssLoaded / 1024 ** 3, unit: 'GB', note: 'nodes, HAProxy, Redis, InfluxDB, ingest, alerts, load generators' },
        { bench: 'connections100k', metric: `telemetry sent (QoS 1, target ${p.rate} msg/s)`, value: cluster.load.sendRate, unit: 'msg/s', target: `≥ ${Math.round(p.rate * 0.95)}`, met: cluster.load.sendRate >= p.rate * 0.95, note: `${cluster.load.sent} telemetry sent; ${cluster.load.acked} PUBACKs, which also count the online statuses the moved devices send on reconnecting (a telemetry message in flight on the killed node gets none)` },
        { bench: 'connections100k', metric: 'device troubles of the connect phase settled, from the load start (a floor of 180 s, quick 30 s)', value: cluster.settle.open <= cluster.settle.allowed ? cluster.settle.ms / 1000 : Number.NaN, unit: 's', note: cluster.settle.open <= cluster.settle.allowed ? `alarm trials start 15 s later; ${cluster.settle.open} open besides the probes', ${cluster.settle.allowed} devices never connected` : `${cluster.settle.open} still open at the bound (${cluster.settle.allowed} devices never connected); trials ran anyway` },
        { bench: 'connections100k', metric: 'telemetry received by ingest during the alarm trials', value: cluster.ingestRate, unit: 'msg/s', target: `≥ ${Math.round(p.rate * 0.95)}`, met: cluster.ingestRate >= p.rate * 0.95 },
        { bench: 'connections100k', metric: `fire alarm p99 under load (publish → socket.io)`, value: fire.p99, unit: 'ms', target: 'p99 ≤ 100 ms', met: fire.p99 <= 100, note: `p50 ${fire.p50.toFixed(1)}, max ${fire.max.toFixed(1)}, ${fire.count} receipts` },
        { bench: 'connections100k', metric: `care alarm p99 under load (publish → socket.io)`, value: care.p99, unit: 'ms', target: 'p99 ≤ 100 ms', met: care.p99 <= 100, note: `p50 ${care.p50.toFixed(1)}, max ${care.max.toFixed(1)}, ${care.count} receipts` },
        ...STAGE_NAMES.map(([key, text]) => ({ bench: 'connections100k', metric: `alarm stage p99 under load: ${text}`, value: percentiles(cluster.loaded.stages.map((x) => x[key])).p99, unit: 'ms', note: `${cluster.loaded.stages.length} receipts (fire and care), from the alerts' own stamps` })),
        { bench: 'connections100k', metric: 'alarm receipts missing (10 s bound)', value: missing, unit: 'receipts', target: '0', met: missing === 0 },
        { bench: 'connections100k', metric: `killed node's devices all back (${f.victimConnections} via HAProxy to ${p.nodes - 1} nodes)`, value: f.allBackMs / 1000, unit: 's', note: `SIGKILL → last CONNACK; ${f.reconnected} reconnected, ${f.connectedAfter}/${f.heldBefore} connected; ${f.failedAttempts}/${f.attempts} attempts failed${f.firstError !== undefined ? ` (${f.firstError})` : ''}; ${noRef}` },
        { bench: 'connections100k', metric: 'alarm p99 after the failover', value: after.p99, unit: 'ms', note: `${after.count} receipts` },
        { bench: 'connections100k', metric: `one process, ${p.sideBySide} devices: connections held`, value: ours.connected, unit: 'conns', reference: { name: 'mosquitto', value: mosq.connected }, ratio: ours.connected / Math.max(1, mosq.connected), target: `${p.sideBySide}`, met: ours.connected >= p.sideBySide },
        { bench: 'connections100k', metric: `one process, ${p.sideBySide} devices: RSS per connection`, value: ours.bytesPerConn / 1024, unit: 'KB', reference: { name: 'mosquitto', value: mosq.bytesPerConn / 1024 }, ratio: ours.bytesPerConn / mosq.bytesPerConn },
        { bench: 'connections100k', metric: `one process, ${p.sideBySide} devices: RSS loaded`, value: ours.rssLoaded / 1024 ** 2, unit: 'MB', reference: { name: 'mosquitto', value: mosq.rssLoaded / 1024 ** 2 } },
        { bench: 'connections100k', metric: `one process, ${p.sideBySide} devices: time to connect all`, value: ours.connectMs / 1000, unit: 's', reference: { name: 'mosquitto', value: mosq.connectMs / 1000 }, ratio: ours.connectMs / mosq.connectMs },
      ];
      return { rows, detail: { plan: p, fdLimit, perGroup: PER_GROUP, haproxyMaxconn: HAPROXY_MAXCONN, backoff: BACKOFF, sources: SOURCES, single, cluster } };
    }
  },
};
