import { connect as netConnect } from 'node:net';

/**
 * What one HAProxy of the 100,000-device benchmark says about its connections, from its runtime API
 * (`stats socket … level user`, test/support/haproxy.ts), for the load-phase log: whether a device
 * group's trouble is on the proxy (clients queued, connect errors to nodes, nodes marked down) or
 * on either side of it.
 */
export interface HaproxyView {
  /** Client connections on the frontend now. */
  readonly clients: number;
  /**
   * Connections waiting in the backend's queue for a server slot (`qcur`): 0 unless servers have a
   * `maxconn` (the benchmark's do not). Clients held back by the global maxconn wait in the kernel's
   * accept backlog instead, which HAProxy does not count: then `clients` stands at maxconn.
   */
  readonly queued: number;
  /** Client connections that got no server connection after every retry (`econ`), since start: the client sees its socket closed. */
  readonly connectErrors: number;
  /** Connection attempts retried on the same server (`wretr`) or sent on to another (`wredis`: a refused or timed-out node), since start. */
  readonly retries: number;
  readonly redispatches: number;
  /** Servers HAProxy marks DOWN now. */
  readonly down: readonly string[];
}

/** Reads `show stat` (CSV with a "# pxname,svname,…" header) into the view above. Pure. */
export function parseHaproxyStat(csv: string): HaproxyView {
  const lines = csv.split('\n').filter((l) => l.length > 0);
  const header = (lines[0] ?? '').replace(/^# /, '').split(',');
  const col = (name: string): number => {
    const i = header.indexOf(name);
    // A missing column is an error, not a 0 (no nodes down, nothing queued) that reads as health.
    if (i < 0) throw new Error(`show stat: no column ${name} in ${header.slice(0, 20).join(',')}`);
    return i;
  };
  const rows = lines.slice(1).map((l) => l.split(','));
  const num = (r: readonly string[], name: string): number => Number(r[col(name)] ?? '') || 0;
  const frontend = rows.find((r) => r[1] === 'FRONTEND');
  const backend = rows.find((r) => r[1] === 'BACKEND');
  const servers = rows.filter((r) => r[1] !== 'FRONTEND' && r[1] !== 'BACKEND');
  return {
    clients: frontend !== undefined ? num(frontend, 'scur') : Number.NaN,
    queued: backend !== undefined ? num(backend, 'qcur') : Number.NaN,
    connectErrors: backend !== undefined ? num(backend, 'econ') : Number.NaN,
    retries: backend !== undefined ? num(backend, 'wretr') : Number.NaN,
    redispatches: backend !== undefined ? num(backend, 'wredis') : Number.NaN,
    down: servers.filter((r) => (r[col('status')] ?? '').startsWith('DOWN')).map((r) => r[1] ?? ''),
  };
}

/** One request to HAProxy's runtime API on its Unix socket; the answer ends when HAProxy closes. */
function unixRequest(path: string, request: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = netConnect({ path });
    sock.setTimeout(timeoutMs, () => sock.destroy(new Error(`${path}: no answer in ${timeoutMs} ms`)));
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.once('error', reject);
    sock.once('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    sock.end(`${request}\n`);
  });
}

/** `show stat` of the HAProxy whose runtime API listens on this Unix socket. */
export async function readHaproxyView(socketPath: string, timeoutMs: number): Promise<HaproxyView> {
  return parseHaproxyStat(await unixRequest(socketPath, 'show stat', timeoutMs));
}
