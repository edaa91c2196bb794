import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../common/influxd.ts';

/**
 * A private HAProxy (Debian's haproxy package, 2.6) on 127.0.0.1 balancing MQTT over TCP between
 * broker nodes, as docs/scaling.md configures it in production: layer 4 (`mode tcp`, MQTT is not
 * HTTP), round robin, a TCP health check every 2 s tolerant of a busy node, and a connection to a
 * dead node sent on to a live one (`option redispatch 1`) instead of failing the device's reconnect.
 */
export interface HaproxyServer {
  /** The frontend: mqtt://127.0.0.1:<port>. */
  readonly url: string;
  readonly port: number;
  /** HAProxy's own output (its alerts and "Server ... is DOWN" lines). */
  output(): string;
  start(): Promise<void>;
  close(): Promise<void>;
}

const BIN = '/usr/sbin/haproxy';

export interface Backend {
  readonly name: string;
  /** Host of the broker node (default 127.0.0.1); a compose service name in docker-compose.cluster.yml. */
  readonly host?: string;
  readonly port: number;
  /** The node's MQTT over WebSocket port, for the second frontend (`HaproxyOptions.wsPort`). */
  readonly wsPort?: number;
}

export interface HaproxyOptions {
  /** Address the frontends bind (default 127.0.0.1; 0.0.0.0 in a container). */
  readonly bind?: string;
  /** A second frontend/backend pair for MQTT over WebSocket on this port (every backend then needs its wsPort). */
  readonly wsPort?: number;
  /**
   * A DNS server (host:port) to re-resolve the backends' names at run time: Docker's embedded DNS,
   * 127.0.0.11:53. A recreated broker container gets a new address; without this HAProxy would keep
   * the one it resolved at start. `init-addr last,libc,none` lets HAProxy start while a node's name
   * does not resolve yet (the node is then down until it does).
   */
  readonly resolver?: string;
  /** Connections HAProxy accepts at once (global maxconn): it needs 2 descriptors per proxied connection. */
  readonly maxconn?: number;
  /** A Unix socket for HAProxy's runtime API (`show info`, `show stat`), read-only (`level user`); benchmarks read it. */
  readonly statsSocket?: string;
  /**
   * The address HAProxy connects to the nodes from (`source`; HAProxy leaves the port to connect(),
   * IP_BIND_ADDRESS_NO_PORT). Linux finds a connection's ephemeral port by probing for a free 4-tuple,
   * preferring even ports, so past ~half the range (14,000 of 28,232 here) to one node from one
   * address each connect() scans: in the 50,000-device benchmark's failover 85 % of a HAProxy
   * process's CPU (perf: __inet_check_established, __inet_hash_connect), with every HAProxy on
   * 127.0.0.1. A source address of its own per HAProxy gives each its own range per node.
   */
  readonly sourceAddress?: string;
}

/** The configuration text; exported so docs/scaling.md and the compose file can be checked against it. */
export function haproxyConfig(frontendPort: number, backends: readonly Backend[], opts: HaproxyOptions = {}): string {
  const bind = opts.bind ?? '127.0.0.1';
  const dns = opts.resolver !== undefined ? ' resolvers docker init-addr last,libc,none' : '';
  const backend = (name: string, port: (b: Backend) => number): string[] => [
    `backend ${name}`,
    '  balance roundrobin',
    ...(opts.sourceAddress !== undefined ? [`  source ${opts.sourceAddress}`] : []),
    // A TCP check every 2 s, a node down after 3 missed (about 6 s), up again after 2 passed. Tolerant
    // on purpose: a node accepting thousands of devices at once answers a check late, and the old
    // `inter 500ms fall 2` with `on-marked-down shutdown-sessions` cut every session of such a merely
    // busy node after 1 s, so its devices reconnected at once to the other, equally busy nodes: a
    // storm (the 100,000-device run, bench/README.md). A node marked down here only gets no new
    // connections; its sessions stay. A node that dies loses its TCP connections by itself (HAProxy
    // closes the client side when the server side closes); one that hangs is left by its devices
    // when their MQTT keepalive runs out (1.5 × 60 s [MQTT-3.1.2-24]). Connections refused meanwhile
    // go to a live node (`retries`, `redispatch` below).
    `  default-server check inter 2s fall 3 rise 2${dns}`,
    ...backends.map((b) => `  server ${b.name} ${b.host ?? '127.0.0.1'}:${port(b)}`),
  ];
  return [
    'global',
    '  nbthread 1',
    // HAProxy needs 2 descriptors per proxied connection; an explicit maxconn keeps it inside a
    // process's RLIMIT_NOFILE (bench/connections100k.ts runs several HAProxy processes for that reason).
    ...(opts.maxconn !== undefined ? [`  maxconn ${opts.maxconn}`] : []),
    ...(opts.statsSocket !== undefined ? [`  stats socket ${opts.statsSocket} mode 600 level user`] : []),
    '  log stderr format short local0 notice',
    ...(opts.resolver !== undefined ? ['resolvers docker', `  nameserver dns ${opts.resolver}`, '  hold valid 10s'] : []),
    'defaults',
    '  mode tcp',
    '  log global',
    '  timeout connect 1s',
    // Above MQTT keepalive (60 s, device-sim) × 1.5 [MQTT-3.1.2-24], so HAProxy never cuts an idle
    // but healthy device; the broker's own keepalive check ends dead ones.
    '  timeout client 120s',
    '  timeout server 120s',
    // A connection refused by a dead node is retried once, on another node.
    '  retries 2',
    '  option redispatch 1',
    'frontend mqtt',
    `  bind ${bind}:${frontendPort}`,
    '  default_backend brokers',
    ...backend('brokers', (b) => b.port),
    ...(opts.wsPort !== undefined
      ? [
          'frontend mqtt-ws',
          `  bind ${bind}:${opts.wsPort}`,
          '  default_backend brokers-ws',
          ...backend('brokers-ws', (b) => {
            if (b.wsPort === undefined) throw new Error(`backend ${b.name} has no wsPort`);
            return b.wsPort;
          }),
        ]
      : []),
    '',
  ].join('\n');
}

/**
 * HAProxy's configuration in docker-compose.cluster.yml (deploy/haproxy.cfg, committed): the same
 * function as the cluster tests run, with the compose services as backends, bound to every interface
 * of the container, MQTT over WebSocket balanced too, and Docker's DNS to follow recreated containers.
 * test/deploy/compose-cluster.test.ts checks the committed file against it.
 */
export const COMPOSE_HAPROXY_CFG = 'deploy/haproxy.cfg';
export function composeHaproxyConfig(): string {
  return haproxyConfig(
    1883,
    [
      { name: 'b1', host: 'broker-1', port: 1883, wsPort: 8083 },
      { name: 'b2', host: 'broker-2', port: 1883, wsPort: 8083 },
    ],
    { bind: '0.0.0.0', wsPort: 8083, resolver: '127.0.0.11:53' },
  );
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('error', () => resolve(false));
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
  });
}

export async function createHaproxy(backends: readonly Backend[]): Promise<HaproxyServer> {
  if (!existsSync(BIN)) throw new Error(`${BIN} not found: install Debian's haproxy package (scripts/install-system-deps.sh)`);
  const dir = await mkdtemp(join(tmpdir(), 'carewatch-haproxy-'));
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  await writeFile(cfg, haproxyConfig(port, backends));
  let child: ChildProcess | undefined;
  let out = '';
  const server: HaproxyServer = {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    output: () => out,
    async start() {
      if (child && child.exitCode === null && child.signalCode === null) return;
      // -db: foreground, no daemon; -W is not needed for one process.
      const c = spawn(BIN, ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      const onData = (d: Buffer): void => {
        out += d.toString();
        if (out.length > 200_000) out = out.slice(-100_000);
      };
      c.stdout?.on('data', onData);
      c.stderr?.on('data', onData);
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        if (c.exitCode !== null) throw new Error(`haproxy exited with ${c.exitCode}: ${out}`);
        if (await reachable(port)) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`haproxy did not listen within 15 s: ${out}`);
    },
    async close() {
      const c = child;
      if (c && c.exitCode === null && c.signalCode === null) {
        await new Promise<void>((resolve) => {
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
        });
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}
