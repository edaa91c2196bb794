import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { transportError, writeError } from './errors.ts';

/**
 * Writes line protocol to InfluxDB 1.x: POST /write?db=&rp=&precision=. One request per call; what
 * goes into a batch, and retrying, are the caller's (ingest's spool drain, the alerts journal): the
 * writer only writes and classifies the failure (common/influx/errors.ts `retryable`).
 *
 * node:http with a keep-alive agent, so one TCP connection is reused for every batch (ingest writes
 * thousands of points a second). Not @influxdata/influxdb-client's WriteApi: it speaks /api/v2/write,
 * which InfluxDB 1.6 (Debian's) does not have; not node-influx's pool either: after one refused
 * connection it marks the only host down for a back-off and answers "No host available" without
 * trying, and it drops a 5xx's body and status (node_modules/influx/lib/src/pool.js).
 */
export interface LineWriterOptions {
  readonly url: string;
  readonly database: string;
  /** Timestamp precision of the lines (default ns). */
  readonly precision?: 'ns' | 'u' | 'ms' | 's';
  /** Per request, answer included (default 30 s: a 5,000-point batch to a busy InfluxDB takes seconds at worst). */
  readonly timeoutMs?: number;
  /** Concurrent connections (default 2: ingest keeps two batches in flight). */
  readonly maxSockets?: number;
}

export interface WriteOptions {
  /** Retention policy (common/influx-schema.ts); the database's default when absent. */
  readonly rp?: string;
}

export interface LineWriter {
  /** Resolves when InfluxDB stored every line (204); rejects with an InfluxError otherwise. */
  write(lines: string | readonly string[], opts?: WriteOptions): Promise<void>;
  /** Closes the kept-alive connections. */
  close(): void;
}

/** Bytes of an answer kept for its error text; the rest is read and dropped. */
const MAX_ANSWER_BYTES_KEPT = 64 * 1024;

export function createLineWriter(opts: LineWriterOptions): LineWriter {
  const base = new URL(opts.url);
  const https = base.protocol === 'https:';
  const agent = https ? new HttpsAgent({ keepAlive: true, maxSockets: opts.maxSockets ?? 2 }) : new HttpAgent({ keepAlive: true, maxSockets: opts.maxSockets ?? 2 });
  const request = https ? httpsRequest : httpRequest;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const basePath = `${base.pathname.replace(/\/$/, '')}/write?db=${encodeURIComponent(opts.database)}&precision=${opts.precision ?? 'ns'}`;
  const auth = base.username !== '' ? `${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}` : undefined;

  function post(path: string, body: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = <T>(f: (v: T) => void) => (v: T): void => {
        clearTimeout(timer);
        f(v);
      };
      const ok = settle(resolve);
      const fail = settle(reject);
      const req = request(
        {
          host: base.hostname,
          port: base.port || (https ? 443 : 8086),
          path,
          method: 'POST',
          agent,
          ...(auth !== undefined ? { auth } : {}),
          headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          // InfluxDB answers 204 with no body, or a short JSON error: the start is all the error needs.
          const chunks: Buffer[] = [];
          let kept = 0;
          res.on('data', (c: Buffer) => {
            if (kept >= MAX_ANSWER_BYTES_KEPT) return;
            chunks.push(c);
            kept += c.length;
          });
          res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', fail);
          res.on('close', () => {
            if (!res.complete) fail(new Error('the answer was cut off'));
          });
        },
      );
      // One deadline over the whole exchange: req.setTimeout is an idle timeout, which any byte
      // resets, so an answer trickled a byte at a time held ingest's writes for ever (session 21).
      timer = setTimeout(() => {
        const e = new Error(`no answer within ${timeoutMs} ms`);
        e.name = 'TimeoutError';
        req.destroy(e);
      }, timeoutMs);
      req.on('error', fail);
      req.end(body);
    });
  }

  return {
    async write(lines, wo) {
      const body = typeof lines === 'string' ? lines : lines.join('\n');
      if (body === '') return;
      const path = wo?.rp === undefined ? basePath : `${basePath}&rp=${encodeURIComponent(wo.rp)}`;
      let reply: { status: number; body: string };
      try {
        reply = await post(path, body);
      } catch (err) {
        throw transportError(err, timeoutMs);
      }
      if (reply.status === 204) return;
      throw writeError(reply.status, reply.body);
    },
    close() {
      agent.destroy();
    },
  };
}
