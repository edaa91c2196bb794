import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../common/influxd.ts';

export { freePort };

/**
 * Child processes of the benchmark: our services (compiled, services.ts), Mosquitto, the load
 * generator (node --import tsx). Each is started through bash so `ulimit -n` can be raised for it (many sockets);
 * a container without CAP_SYS_RESOURCE caps it at the hard limit, which run.ts reports.
 */
export const ULIMIT = 'ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"';

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Last lines of stderr/stdout, for error messages. */
  tail(): string;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
}

/** Every child still running, so an interrupted run (SIGINT/SIGTERM) leaves nothing behind. */
export const liveChildren = new Set<ChildProcess>();
const extraCleanups = new Set<() => void>();
export function onAbort(fn: () => void): () => void {
  extraCleanups.add(fn);
  return () => extraCleanups.delete(fn);
}
export function killAllChildren(): void {
  for (const c of liveChildren) c.kill('SIGKILL');
  for (const f of extraCleanups) f();
}
// A benchmark process that ends any other way (an uncaught error, EPIPE on a closed stdout) must not
// leave its broker, services and InfluxDB running: orphans were seen loading the machine and
// skewing later measurements. 'exit' handlers run synchronously, and kill() is synchronous.
process.once('exit', killAllChildren);

/**
 * Scheduling priority of the storage path (ingest, InfluxDB), as deployed (docs/architecture.md
 * "CPU priority", docker-compose.yml `cpu_shares`): on a 2-core machine five processes share the CPU, and an alarm
 * waiting behind a telemetry batch is what the latency target measures. Storage has a spool and
 * catches up; an alarm cannot wait. Lower priority only matters when the CPU is contended.
 */
export const STORAGE_NICE = 10;

/**
 * Sets the niceness of every thread of a running process; false if any was refused (negative values
 * need root or CAP_SYS_NICE). Linux's setpriority on a pid changes that one thread only, and a
 * process started before the call already runs its helpers (V8's GC and the libuv pool, Go's
 * runtime threads in influxd). A child started with `spawnWithUlimit`'s `nice` needs none of this.
 */
export function reniceAllThreads(pid: number, nice: number): boolean {
  let tids: number[];
  try {
    tids = readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    tids = [pid];
  }
  let all = true;
  for (const tid of tids) {
    try {
      setPriority(tid, nice);
    } catch {
      all = false;
    }
  }
  return all;
}

export function spawnWithUlimit(name: string, argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; ipc?: boolean; nice?: number } = {}): Child {
  const quoted = [...(opts.nice !== undefined ? ['nice', '-n', String(opts.nice)] : []), ...argv].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const stdio: StdioOptions = opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'];
  const proc = spawn('bash', ['-c', `${ULIMIT}; exec ${quoted}`], { env: opts.env ?? process.env, cwd: opts.cwd, stdio });
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-4000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  if (proc.pid === undefined) throw new Error(`could not start ${name}`);
  liveChildren.add(proc);
  proc.once('exit', () => liveChildren.delete(proc));
  const pid = proc.pid;
  return {
    name,
    proc,
    pid,
    tail: () => tail,
    stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
        proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        proc.kill(signal);
      });
    },
  };
}

/** node's arguments for a benchmark script of its own (TypeScript, run through tsx). */
export function nodeArgs(script: string, extra: readonly string[] = []): string[] {
  return [process.execPath, ...extra, '--import', 'tsx', script];
}

/** Resolves once a TCP connection to host:port succeeds; bounded by timeoutMs. */
export async function waitForPort(port: number, timeoutMs: number, child?: Child, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && (child.proc.exitCode !== null || child.proc.signalCode !== null)) throw new Error(`${child.name} exited (${child.proc.exitCode ?? child.proc.signalCode}): ${child.tail()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, host);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms${child ? `: ${child.tail()}` : ''}`);
}

export const MOSQUITTO_BIN = '/usr/sbin/mosquitto';

export interface Mosquitto {
  readonly port: number;
  readonly child: Child;
  close(): Promise<void>;
}

/**
 * Debian's Mosquitto with a private config: anonymous access on a free loopback port, no
 * persistence, unbounded in-flight/queue so it is measured as a relay and not by its defaults
 * dropping messages.
 */
export async function startMosquitto(port?: number, opts: { passwordFile?: string } = {}): Promise<Mosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'carewatch-bench-mosq-'));
  const p = port ?? (await freePort());
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(
    conf,
    [
      `listener ${p} 127.0.0.1`,
      // With a password file (bench/reconnect.ts): every CONNECT is checked, as ours are.
      ...(opts.passwordFile !== undefined ? ['allow_anonymous false', `password_file ${opts.passwordFile}`] : ['allow_anonymous true']),
      'persistence false',
      'log_dest none',
      'max_inflight_messages 0',
      'max_queued_messages 0',
      'set_tcp_nodelay true',
      '',
    ].join('\n'),
  );
  const child = spawnWithUlimit('mosquitto', [MOSQUITTO_BIN, '-c', conf]);
  await waitForPort(p, 10_000, child);
  return {
    port: p,
    child,
    async close() {
      await child.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
