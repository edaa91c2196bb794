import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { buildDirFor, buildProduction, builtScript } from '../../scripts/production-build.ts';
import { freePort, spawnWithUlimit, STORAGE_NICE, waitForPort, type Child } from './processes.ts';

/**
 * Our processes started as children exactly as in production (the Dockerfile's `node
 * dist/X/main.js`, from a production build made once per benchmark run; env config), each with its
 * own pid so /proc gives its CPU and memory.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PROFILER = fileURLToPath(new URL('./cpu-prof-preload.ts', import.meta.url));

let build: Promise<string> | undefined;
/** The production build (tsconfig.build.json) the benchmark's processes run from: made at first use, removed at exit. */
export function productionBuild(): Promise<string> {
  build ??= (async () => {
    const dir = buildDirFor(join(ROOT, '.tmp'), 'bench-build');
    await buildProduction(dir);
    return dir;
  })();
  return build;
}

/**
 * node's arguments for our process `entry` (`broker/main.ts`) as production runs it: compiled, no
 * TypeScript loader. A profiling preload (`imports`, itself TypeScript) brings tsx with it.
 */
export async function serviceArgs(entry: string, extra: readonly string[] = [], imports: readonly string[] = []): Promise<string[]> {
  const script = builtScript(await productionBuild(), entry);
  const preload = imports.length > 0 ? ['--import', 'tsx', ...imports.flatMap((i) => ['--import', i])] : [];
  return [process.execPath, ...extra, ...preload, script];
}

/** Node flags and env that profile a child into `dir` (see cpu-prof-preload.ts). */
function profiling(dir: string | undefined): { imports: string[]; env: NodeJS.ProcessEnv } {
  return dir === undefined ? { imports: [], env: {} } : { imports: [PROFILER], env: { BENCH_CPU_PROF_DIR: dir } };
}

export interface BrokerProc {
  readonly port: number;
  readonly child: Child;
  close(): Promise<void>;
}

/**
 * The broker as `npm start` runs it: its durable store on local disk (docs/broker.md), in a fresh
 * directory per start (`storeDir` keeps one across a restart), removed on close.
 */
export async function startBroker(registryPath: string, opts: { port?: number; cpuProf?: string; maxOldSpaceMb?: number; storeDir?: string; nodeFlags?: readonly string[] } = {}): Promise<BrokerProc> {
  const port = opts.port ?? (await freePort());
  const ownStore = opts.storeDir === undefined;
  const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), 'carewatch-bench-broker-'));
  const extra: string[] = [];
  if (opts.maxOldSpaceMb) extra.push(`--max-old-space-size=${opts.maxOldSpaceMb}`);
  if (opts.nodeFlags !== undefined) extra.push(...opts.nodeFlags);
  const prof = profiling(opts.cpuProf);
  const child = spawnWithUlimit('broker', await serviceArgs('broker/main.ts', extra, prof.imports), {
    cwd: ROOT,
    env: {
      ...process.env,
      ...prof.env,
      CAREWATCH_REGISTRY: registryPath,
      CAREWATCH_BROKER_HOST: '127.0.0.1',
      CAREWATCH_BROKER_PORT: String(port),
      CAREWATCH_BROKER_WS_PORT: '0',
      CAREWATCH_BROKER_STORE_DIR: storeDir,
      CAREWATCH_LOG_LEVEL: 'warn',
    },
  });
  await waitForPort(port, 60_000, child);
  return {
    port,
    child,
    async close() {
      await child.stop('SIGTERM', 15_000);
      if (ownStore) rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

export interface IngestProc {
  readonly child: Child;
  readonly httpPort: number;
  stats(): Promise<IngestStatsView>;
  close(): Promise<void>;
}

export interface IngestStatsView {
  readonly received: number;
  readonly acked: number;
  readonly written: number;
  readonly rejectedTotal: number;
  readonly spool: { readonly bytes: number };
  readonly mqtt: { readonly subscribed: boolean; readonly paused: boolean };
  readonly influx: { readonly failures: number; readonly batches: number };
}

export async function startIngest(o: { registryPath: string; brokerPort: number; influxUrl: string; db: string; spoolDir: string; password: string; cpuProf?: string }): Promise<IngestProc> {
  const httpPort = await freePort();
  const prof = profiling(o.cpuProf);
  const child = spawnWithUlimit('ingest', await serviceArgs('ingest/main.ts', [], prof.imports), {
    cwd: ROOT,
    env: {
      ...process.env,
      ...prof.env,
      CAREWATCH_REGISTRY: o.registryPath,
      CAREWATCH_MQTT_URL: `mqtt://127.0.0.1:${o.brokerPort}`,
      CAREWATCH_INGEST_PASSWORD: o.password,
      CAREWATCH_INFLUX_URL: o.influxUrl,
      CAREWATCH_INFLUX_DB: o.db,
      CAREWATCH_SPOOL_DIR: o.spoolDir,
      CAREWATCH_INGEST_HTTP_PORT: String(httpPort),
      CAREWATCH_LOG_LEVEL: 'warn',
    },
    nice: STORAGE_NICE,
  });
  await waitForPort(httpPort, 60_000, child);
  const stats = async (): Promise<IngestStatsView> => {
    // Bounded: a stuck ingest must fail the benchmark, not hang it.
    const res = await fetch(`http://127.0.0.1:${httpPort}/stats`, { signal: AbortSignal.timeout(10_000) });
    return (await res.json()) as IngestStatsView;
  };
  // Subscribed means the broker will route to us; before that, messages would be dropped (QoS 1 to no session).
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !(await stats()).mqtt.subscribed) await new Promise((r) => setTimeout(r, 50));
  return { child, httpPort, stats, close: () => child.stop('SIGTERM', 15_000) };
}

export interface AlertsProc {
  readonly child: Child;
  readonly url: string;
  close(): Promise<void>;
}

/** `signalsPort`: the broker node of alerts' signals sessions and publisher (the alarm lane, docs/scaling.md); default brokerPort. */
export async function startAlerts(o: { registryPath: string; brokerPort: number; signalsPort?: number; influxUrl: string; db: string; stateDir: string; password: string; cpuProf?: string }): Promise<AlertsProc> {
  const port = await freePort();
  const prof = profiling(o.cpuProf);
  const child = spawnWithUlimit('alerts', await serviceArgs('alerts/main.ts', [], prof.imports), {
    cwd: ROOT,
    env: {
      ...process.env,
      ...prof.env,
      CAREWATCH_REGISTRY: o.registryPath,
      CAREWATCH_MQTT_URL: `mqtt://127.0.0.1:${o.brokerPort}`,
      ...(o.signalsPort !== undefined ? { CAREWATCH_SIGNALS_MQTT_URL: `mqtt://127.0.0.1:${o.signalsPort}` } : {}),
      CAREWATCH_ALERTS_PASSWORD: o.password,
      CAREWATCH_INFLUX_URL: o.influxUrl,
      CAREWATCH_INFLUX_DB: o.db,
      CAREWATCH_HTTP_HOST: '127.0.0.1',
      CAREWATCH_HTTP_PORT: String(port),
      CAREWATCH_STATE_DIR: o.stateDir,
      CAREWATCH_TOKEN_SECRET: 'bench-token-secret-bench-token-secret-0123',
      CAREWATCH_LOG_LEVEL: 'warn',
    },
  });
  await waitForPort(port, 60_000, child);
  return { child, url: `http://127.0.0.1:${port}`, close: () => child.stop('SIGTERM', 15_000) };
}
