import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { secretPerDeviceRegistry, type SecretDevice } from './lib/registry.ts';
import { startLoadgen, type Loadgen } from './lib/loadgen.ts';
import { freePort, startMosquitto, type Child } from './lib/processes.ts';
import { startBroker } from './lib/services.ts';
import { cpuSample, rssBytes } from './lib/proc.ts';
import { median, percentiles } from './lib/stats.ts';
import type { Backoff, ReconnectReport } from './lib/loadgen-protocol.ts';
import type { BenchContext, BenchResult, Benchmark, Row } from './lib/context.ts';

/**
 * 8. Reconnect after a broker crash (issue 12): N devices connected, the broker SIGKILLed and
 * started again on the same port; the time from the new broker listening until every device has its
 * CONNACK again. Mosquitto (Debian's, with a password file of the same N accounts, so it checks
 * every CONNECT as ours does) is measured the same way in the same invocation.
 *
 * - Our broker as `npm start` runs it: durable store on local disk (kept across the kill, so the
 *   restart replays it), registry of N devices each with its own random 128-bit secret.
 * - Devices: raw MQTT clients (bench/lib/mqtt-raw.ts), 5,000 per load-generator process (each
 *   process, like the broker, is capped at 20,000 descriptors), keepalive 60 s, a last will and an
 *   online status after CONNACK as carewatch devices send (device-sim/device.ts), and full-jitter
 *   exponential back-off: first attempt U(0, 1 s) after the drop, then U(0, min(30 s, 1 s·2^(k-1))).
 * - Full size is 19,900 devices, not 20,000: the container's hard RLIMIT_NOFILE is 20,000 per
 *   process, and the broker needs ~30 descriptors of its own (listeners, journal, stdio, epoll).
 */
const PER_LOADGEN = 5_000;
const SOURCES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);
const BACKOFF: Backoff = { initialMaxMs: 1_000, baseMs: 1_000, capMs: 30_000 };
const FULL_N = 19_900;

export interface ReconnectRun {
  readonly broker: 'carewatch' | 'mosquitto';
  readonly n: number;
  readonly connected: number;
  /** New broker process started → accepting TCP connections, ms. */
  readonly startMs: number;
  /** New broker process started → started (ours: its "broker listening" line; Mosquitto: = startMs). */
  readonly readyMs: number;
  /** Listening → last device's CONNACK, ms (the target's figure). */
  readonly allBackFromListenMs: number;
  /** SIGKILL → last device's CONNACK, ms. */
  readonly allBackFromKillMs: number;
  readonly reconnected: number;
  readonly connectLatencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly attempts: number;
  readonly failedAttempts: number;
  /** Failed attempts by kind, summed over the load generators (refused while down, reset, …). */
  readonly failuresByKind: Readonly<Record<string, number>>;
  readonly firstError?: string;
  readonly rssBeforeKill: number;
  readonly rssAfterReconnect: number;
  /** CPU seconds (user + system) of the restarted broker from spawn until the last CONNACK. */
  readonly brokerCpuS: number;
  /** Of brokerCpuS, the part from spawn until ready (start-up: module loading, store replay). */
  readonly brokerCpuReadyS: number;
}

const epoch = (): number => performance.timeOrigin + performance.now();

/** Resolves with the epoch ms at which a TCP connection to the port first succeeds (10 ms polls). */
async function listeningAt(port: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return epoch();
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`);
}

/** Epoch ms at which the child printed "broker listening" (checked every 5 ms). */
async function readyAt_(child: Child, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.tail().includes('broker listening')) return epoch();
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`broker did not print "broker listening" within ${timeoutMs} ms: ${child.tail()}`);
}

/** Mosquitto's password file for the same accounts (mosquitto_passwd -U hashes a plain file in place). */
function mosquittoPasswords(dir: string, devices: readonly SecretDevice[]): string {
  const path = join(dir, 'mosquitto.passwd');
  writeFileSync(path, devices.map((d) => `${d.id}:${d.secret}`).join('\n') + '\n');
  execFileSync('mosquitto_passwd', ['-U', path], { stdio: 'ignore', timeout: 300_000 });
  // Started as root, Mosquitto drops to its own user before reading the file: let it read it
  // (bench secrets in a temporary directory, removed at the end).
  chmodSync(dir, 0o755);
  chmodSync(path, 0o644);
  return path;
}

/** One broker's kill + restart with `devices` connected (exported for CPU-per-connection measurements at other sizes). */
export async function measure(ctx: BenchContext, which: ReconnectRun['broker'], devices: readonly SecretDevice[], registryPath: string, passwordFile: string, work: string, brokerNodeFlags?: readonly string[]): Promise<ReconnectRun> {
  const port = await freePort();
  const storeDir = mkdtempSync(join(work, 'store-'));
  interface Srv {
    readonly child: Child;
    close(): Promise<void>;
  }
  const start = async (): Promise<Srv> => {
    if (which === 'carewatch') {
      const b = await startBroker(registryPath, { port, storeDir, maxOldSpaceMb: 4096, ...(ctx.cpuProf !== undefined ? { cpuProf: ctx.cpuProf } : {}), ...(brokerNodeFlags !== undefined ? { nodeFlags: brokerNodeFlags } : {}) });
      return { child: b.child, close: () => b.close() };
    }
    const m = await startMosquitto(port, { passwordFile });
    return { child: m.child, close: () => m.close() };
  };
  let srv = await start();
  const lgs: Loadgen[] = [];
  try {
    const slices: SecretDevice[][] = [];
    for (let off = 0; off < devices.length; off += PER_LOADGEN) slices.push(devices.slice(off, off + PER_LOADGEN));
    lgs.push(...(await Promise.all(slices.map(() => startLoadgen()))));
    const results = await Promise.all(
      lgs.map((lg, i) =>
        lg.connect({ host: '127.0.0.1', port, devices: slices[i] ?? [], secret: '', keepaliveS: 60, localAddresses: SOURCES, concurrency: 100, reconnect: true, backoff: BACKOFF, deviceSession: true, timeoutMs: ctx.quick ? 60_000 : 300_000 }),
      ),
    );
    const connected = results.reduce((s, r) => s + r.connected, 0);
    const err = results.find((r) => r.firstError !== undefined)?.firstError;
    ctx.log(`reconnect ${which}: ${connected}/${devices.length} connected${err !== undefined ? ` (first error: ${err})` : ''}`);
    if (connected < devices.length) throw new Error(`${which}: only ${connected}/${devices.length} devices connected (${err ?? ''})`);
    // Let the online statuses settle, so the kill hits an idle broker holding N sessions.
    await new Promise((r) => setTimeout(r, 2_000));
    const rssBeforeKill = rssBytes(srv.child.pid);
    await Promise.all(lgs.map((lg) => lg.resetReconnects()));
    const killedAt = epoch();
    await srv.child.stop('SIGKILL', 5_000);
    const spawnedAt = epoch();
    // A 10 ms poll of the port beside start() (whose own poll is 50 ms): when the new broker listens.
    const listening = listeningAt(port, 60_000);
    srv = await start();
    const listenAt = await listening;
    // Ready: our broker prints "broker listening" once started (it listens earlier: early-listener.ts).
    const readyAt = which === 'mosquitto' ? listenAt : await readyAt_(srv.child, 60_000);
    // CPU until ready (start-up), so the burst's own CPU (per connection) can be told apart.
    const brokerCpuReadyS = (cpuSample(srv.child.pid)?.ticks ?? Number.NaN) / 100;
    const bound = ctx.quick ? 60_000 : 180_000;
    let reports: ReconnectReport[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < bound) {
      reports = await Promise.all(lgs.map((lg) => lg.reconnectReport()));
      if (reports.reduce((s, r) => s + r.reconnected, 0) >= connected) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // CPU the new broker process used from its spawn until all were back (start-up included): unlike
    // the times, it does not depend on how many other processes share the machine's 2 cores.
    const brokerCpuS = (cpuSample(srv.child.pid)?.ticks ?? Number.NaN) / 100;
    const reconnected = reports.reduce((s, r) => s + r.reconnected, 0);
    const lastConnack = Math.max(...reports.map((r) => r.lastConnackEpochMs).filter((x) => Number.isFinite(x)));
    const lat = percentiles(reports.flatMap((r) => r.connectLatenciesMs));
    await new Promise((r) => setTimeout(r, 1_000));
    const rssAfterReconnect = rssBytes(srv.child.pid);
    const firstError = reports.find((r) => r.firstError !== undefined)?.firstError;
    const run: ReconnectRun = {
      broker: which,
      n: devices.length,
      connected,
      startMs: listenAt - spawnedAt,
      readyMs: readyAt - spawnedAt,
      allBackFromListenMs: reconnected >= connected ? lastConnack - listenAt : Number.NaN,
      allBackFromKillMs: reconnected >= connected ? lastConnack - killedAt : Number.NaN,
      reconnected,
      connectLatencyMs: { p50: lat.p50, p99: lat.p99, max: lat.max },
      attempts: reports.reduce((s, r) => s + r.attempts, 0),
      failedAttempts: reports.reduce((s, r) => s + r.failedAttempts, 0),
      failuresByKind: reports.reduce<Record<string, number>>((acc, r) => {
        for (const [k, v] of Object.entries(r.failuresByKind)) acc[k] = (acc[k] ?? 0) + v;
        return acc;
      }, {}),
      ...(firstError !== undefined ? { firstError } : {}),
      rssBeforeKill,
      rssAfterReconnect,
      brokerCpuS,
      brokerCpuReadyS,
    };
    ctx.log(
      `reconnect ${which}: ${reconnected}/${connected} back, ${(run.allBackFromListenMs / 1000).toFixed(2)} s after listening (${(run.allBackFromKillMs / 1000).toFixed(2)} s after the kill; listening ${run.startMs.toFixed(0)} ms, ready ${run.readyMs.toFixed(0)} ms after spawn), ` +
        `connect p50/p99 ${lat.p50.toFixed(1)}/${lat.p99.toFixed(1)} ms, ${run.failedAttempts} of ${run.attempts} attempts failed ${JSON.stringify(run.failuresByKind)}, RSS ${(rssAfterReconnect / 1024 ** 2).toFixed(0)} MB, CPU ${brokerCpuS.toFixed(2)} s (start-up ${brokerCpuReadyS.toFixed(2)} s)`,
    );
    return run;
  } finally {
    for (const lg of lgs) await lg.close().catch(() => undefined);
    await srv.close();
    rmSync(storeDir, { recursive: true, force: true });
  }
}

export const reconnectBenchmark: Benchmark = {
  name: 'reconnect',
  title: 'Devices back after a broker SIGKILL + restart (durable store) vs Mosquitto',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const n = ctx.quick ? 2_000 : FULL_N;
    const work = mkdtempSync(join(tmpdir(), 'carewatch-bench-reconnect-'));
    try {
      const reg = secretPerDeviceRegistry(work, n, Math.ceil(n / 20));
      const passwordFile = mosquittoPasswords(work, reg.devices);
      const all: ReconnectRun[] = [];
      for (let r = 0; r < ctx.runs; r++) {
        for (const which of ['carewatch', 'mosquitto'] as const) {
          ctx.log(`reconnect run ${r + 1}/${ctx.runs} ${which}: ${n} devices`);
          all.push(await measure(ctx, which, reg.devices, reg.path, passwordFile, work));
        }
      }
      const pick = (b: ReconnectRun['broker'], f: (x: ReconnectRun) => number): number => median(all.filter((x) => x.broker === b).map(f));
      const row = (metric: string, unit: string, f: (x: ReconnectRun) => number, extra: Partial<Row> = {}): Row => {
        const ours = pick('carewatch', f);
        const ref = pick('mosquitto', f);
        return { bench: 'reconnect', metric, value: ours, unit, reference: { name: 'mosquitto', value: ref }, ratio: ours / ref, ...extra };
      };
      const back = pick('carewatch', (x) => x.allBackFromListenMs);
      const rows: Row[] = [
        row(`time to all ${n} reconnected (from listening)`, 's', (x) => x.allBackFromListenMs / 1000, { target: '20,000 within 3 s', met: n >= FULL_N && back <= 3_000 && all.every((x) => x.broker !== 'carewatch' || x.reconnected >= x.connected) }),
        row('time to all reconnected (from SIGKILL)', 's', (x) => x.allBackFromKillMs / 1000),
        row('broker start (spawn → listening)', 'ms', (x) => x.startMs),
        row('broker start (spawn → ready)', 'ms', (x) => x.readyMs),
        row('connect latency p50 (attempt → CONNACK)', 'ms', (x) => x.connectLatencyMs.p50),
        row('connect latency p99', 'ms', (x) => x.connectLatencyMs.p99),
        row('broker CPU, spawn → all back (user+system)', 's', (x) => x.brokerCpuS),
        // Load-independent: the burst's CPU (ready → all back) per device, start-up excluded.
        row('broker CPU per reconnecting device (ready → all back)', 'ms', (x) => (1000 * (x.brokerCpuS - x.brokerCpuReadyS)) / x.n),
        row('failed attempts (refused while down, …)', 'attempts', (x) => x.failedAttempts),
        row('broker RSS after all reconnected', 'MB', (x) => x.rssAfterReconnect / 1024 ** 2),
      ];
      return { rows, detail: { n, perLoadgen: PER_LOADGEN, backoff: BACKOFF, sources: SOURCES, runs: all } };
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  },
};
