import { RAW_TELEMETRY } from '../../common/influx-schema.ts';
import { Agent, request } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { createInfluxServer as createServer, type InfluxServer } from '../../common/influxd.ts';
import { onAbort, reniceAllThreads, STORAGE_NICE } from './processes.ts';

export type { InfluxServer };

/** common/influxd.ts's private InfluxDB, killed too if the run is interrupted. */
export async function createInfluxServer(): Promise<InfluxServer> {
  const srv = await createServer();
  const off = onAbort(() => {
    const pid = influxdPid(srv.dataDir);
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
  });
  return {
    ...srv,
    url: srv.url,
    port: srv.port,
    dataDir: srv.dataDir,
    start: async () => {
      await srv.start();
      // Deployed below the alerting path (processes.ts STORAGE_NICE). Every thread: until session 13
      // only influxd's main thread was lowered, and Go's runtime threads stayed at the runner's.
      const pid = influxdPid(srv.dataDir);
      if (pid !== undefined) reniceAllThreads(pid, STORAGE_NICE);
    },
    stop: () => srv.stop(),
    close: async () => {
      off();
      await srv.close();
    },
  };
}

/** The pid of the private influxd started on `dataDir` (common/influxd.ts does not expose it). */
export function influxdPid(dataDir: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes('influxd') && cmd.includes(dataDir)) return Number(entry);
    } catch {
      // process gone
    }
  }
  return undefined;
}

export async function influxQuery(url: string, db: string, q: string): Promise<unknown[][]> {
  const res = await fetch(`${url}/query?db=${encodeURIComponent(db)}&epoch=ms&q=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`influx query ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { results: Array<{ series?: Array<{ values: unknown[][] }>; error?: string }> };
  const r = body.results[0];
  if (r?.error) throw new Error(r.error);
  return r?.series?.[0]?.values ?? [];
}

/** Telemetry points stored so far (each bench message is one point with an integer `seq` field). */
export async function telemetryCount(url: string, db: string): Promise<number> {
  const rows = await influxQuery(url, db, `SELECT count(seq) FROM ${RAW_TELEMETRY}`);
  return Number(rows[0]?.[1] ?? 0);
}

export async function createDatabase(url: string, db: string): Promise<void> {
  const res = await fetch(`${url}/query?q=${encodeURIComponent(`CREATE DATABASE "${db}"`)}`, { method: 'POST', signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`CREATE DATABASE ${db}: ${res.status} ${await res.text()}`);
}

function line(i: number, tsNs: bigint): string {
  const home = `b${String(1 + (i % 100)).padStart(4, '0')}`;
  return `telemetry,device=${home}-sd-${String(i % 10000).padStart(4, '0')},home=${home},kind=smoke_detector,room=r0${i % 10} battery_pct=95.5,rssi_dbm=-61.25,seq=${i}i,smoke_obscuration_pct_per_m=0.012,temperature_c=21.53 ${tsNs}`;
}

/**
 * Reference: raw line-protocol writes of telemetry-shaped points straight to InfluxDB over HTTP,
 * `concurrency` requests of `batch` points in flight, for `durationMs`. Body building is excluded
 * from the clock by preparing the bodies first, so this is InfluxDB's ceiling, not ours.
 */
export async function rawWriteCeiling(url: string, db: string, o: { batch: number; concurrency: number; durationMs: number }): Promise<{ pointsPerS: number; points: number; requests: number; errors: number }> {
  await createDatabase(url, db);
  // Fresh timestamps for every point (an overwrite would be cheaper than a new point); the per-line
  // text is prepared once so building a body is one join, a small share of the write's cost.
  const prefixes: string[] = [];
  for (let i = 0; i < o.batch * 4; i++) prefixes.push(line(i, 0n).slice(0, -2));
  let ns = BigInt(Date.now()) * 1_000_000n;
  const nextBody = (): Buffer => {
    const lines = new Array<string>(o.batch);
    const off = Math.floor(Math.random() * 3) * o.batch;
    for (let i = 0; i < o.batch; i++) lines[i] = `${prefixes[off + i] as string} ${ns++}`;
    return Buffer.from(lines.join('\n'));
  };
  const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency });
  const { hostname, port } = new URL(url);
  const post = (body: Buffer): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request({ agent, hostname, port, method: 'POST', path: `/write?db=${encodeURIComponent(db)}&precision=ns`, headers: { 'content-length': body.length } }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      });
      req.once('error', reject);
      req.setTimeout(30_000, () => req.destroy(new Error('raw InfluxDB write timed out')));
      req.end(body);
    });
  let points = 0;
  let requests = 0;
  let errors = 0;
  const start = performance.now();
  const deadline = start + o.durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const status = await post(nextBody());
      requests++;
      if (status === 204) points += o.batch;
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const secs = (performance.now() - start) / 1000;
  agent.destroy();
  return { pointsPerS: points / secs, points, requests, errors };
}
