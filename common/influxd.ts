import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';

/**
 * Starts a private InfluxDB 1.x server (Debian's `influxdb` package) on 127.0.0.1 with its own
 * config and data directory, for tests, benchmarks and the demo. `stop()`/`start()` let tests make
 * an outage and recover from it on the same port and data.
 */
export interface InfluxServer {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

export const INFLUXD_BIN = '/usr/bin/influxd';

/**
 * Ports handed out for servers started a moment later (tests, benchmarks, private InfluxDB) are
 * taken below Linux's ephemeral range (net.ipv4.ip_local_port_range, 32768–60999 by default): a
 * port the kernel picked (listen on 0) and freed again is one it also hands to outgoing connections
 * as their source port, so under a parallel test suite another process's connection could take it
 * before the server bound it (CI of b71a1f1: a cluster broker node failed with EADDRINUSE).
 */
const PORT_RANGE = { from: 20_000, to: 32_767 } as const;

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      const got = typeof addr === 'object' && addr !== null ? addr.port : undefined;
      srv.close(() => resolve(got));
    });
  });
}

/** A port free now, below the ephemeral range (above); after 50 taken ones, one the kernel picks. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await tryListen(PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from + 1)));
    if (port !== undefined) return port;
  }
  const any = await tryListen(0);
  if (any === undefined) throw new Error('no free port');
  return any;
}

export interface InfluxServerOptions {
  bin?: string;
  dir?: string;
  port?: number;
  keepData?: boolean;
}

export async function createInfluxServer(opts: InfluxServerOptions = {}): Promise<InfluxServer> {
  const bin = opts.bin ?? INFLUXD_BIN;
  if (!existsSync(bin)) {
    throw new Error(`${bin} not found: install Debian's influxdb package (apt-get install -y influxdb)`);
  }
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'carewatch-influx-')));
  await mkdir(dir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const rpcPort = await freePort();
  const config = `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"
[meta]
  dir = "${dir}/meta"
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
[coordinator]
  write-timeout = "10s"
[retention]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:${port}"
  log-enabled = false
  max-body-size = 0
  max-connection-limit = 0
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
`;
  const configPath = join(dir, 'influxdb.conf');
  await writeFile(configPath, config);
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let stderrTail = '';

  async function waitReady(): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`influxd exited with ${child.exitCode}: ${stderrTail}`);
      try {
        const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(2_000) });
        if (res.status === 204) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`influxd did not answer /ping within 30 s: ${stderrTail}`);
  }

  const server: InfluxServer = {
    url,
    port,
    dataDir: dir,
    async start() {
      // After a kill, exitCode stays null and only signalCode is set: check both.
      if (child && child.exitCode === null && child.signalCode === null) return;
      child = spawn(bin, ['-config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr?.on('data', (d: Buffer) => {
        stderrTail = (stderrTail + d.toString()).slice(-2000);
      });
      await waitReady();
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGKILL');
      });
    },
    async close() {
      await server.stop();
      if (!opts.keepData && opts.dir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}
