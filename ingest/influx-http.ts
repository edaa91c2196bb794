import { Agent, request } from 'node:http';
import { ensureInfluxSchema, type RetentionConfig } from '../common/influx-schema.ts';
import type { Logger } from '../common/logger.ts';

/**
 * Thin adapter over the InfluxDB 1.x HTTP API: POST /write (line protocol, ns precision) and
 * the schema (database, retention policies, downsampling) through common/influx-schema.ts. node:http with a keep-alive agent: one TCP connection reused for
 * every batch.
 */

export type WriteOutcome =
  | { readonly kind: 'ok' }
  /** InfluxDB refused some or all points (400): the valid ones of the body were written. */
  | { readonly kind: 'rejected'; readonly error: string }
  /** Worth retrying later: InfluxDB down, 5xx, auth, timeout. */
  | { readonly kind: 'retry'; readonly error: string; readonly databaseMissing: boolean }
  /** 413: split the batch. */
  | { readonly kind: 'too-large'; readonly error: string };

export interface InfluxHttp {
  /** `rp`: the retention policy (common/influx-schema.ts), or the database's default when absent. */
  write(body: string, rp?: string): Promise<WriteOutcome>;
  /** The database, its retention policies (with the configured periods) and the downsampling query. */
  createDatabase(): Promise<void>;
  close(): void;
}

export interface InfluxHttpOptions {
  readonly url: string;
  readonly database: string;
  readonly logger: Logger;
  readonly timeoutMs?: number;
  /** Retention periods ingest enforces at start (default common/influx-schema.ts DEFAULT_RETENTION). */
  readonly retention?: RetentionConfig;
}

interface Reply {
  status: number;
  body: string;
}

export function createInfluxHttp(opts: InfluxHttpOptions): InfluxHttp {
  const base = new URL(opts.url);
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const writePath = `${base.pathname.replace(/\/$/, '')}/write?db=${encodeURIComponent(opts.database)}&precision=ns`;

  function post(path: string, body: string, contentType: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: base.hostname, port: base.port || 8086, path, method: 'POST', agent, headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`InfluxDB did not answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  function errorText(body: string): string {
    try {
      const e = (JSON.parse(body) as { error?: unknown }).error;
      if (typeof e === 'string') return e;
    } catch {
      // not JSON
    }
    return body.slice(0, 500);
  }

  return {
    async write(body, rp) {
      let reply: Reply;
      try {
        reply = await post(rp === undefined ? writePath : `${writePath}&rp=${encodeURIComponent(rp)}`, body, 'text/plain; charset=utf-8');
      } catch (err) {
        return { kind: 'retry', error: (err as Error).message, databaseMissing: false };
      }
      if (reply.status === 204) return { kind: 'ok' };
      const error = errorText(reply.body);
      if (reply.status === 400) return { kind: 'rejected', error };
      if (reply.status === 413) return { kind: 'too-large', error };
      return { kind: 'retry', error: `HTTP ${reply.status}: ${error}`, databaseMissing: reply.status === 404 && error.includes('database not found') };
    },
    async createDatabase() {
      const report = await ensureInfluxSchema({ url: opts.url, database: opts.database, enforce: true, ...(opts.retention !== undefined ? { retention: opts.retention } : {}) });
      for (const change of [...report.created, ...report.altered]) opts.logger.info({ database: opts.database, change }, 'InfluxDB schema');
    },
    close() {
      agent.destroy();
    },
  };
}
