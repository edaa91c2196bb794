import { ensureInfluxSchema, type RetentionConfig, type SchemaReport } from '../influx-schema.ts';
import { createInfluxReader, type InfluxReader } from './reader.ts';
import { createLineWriter, type LineWriter } from './writer.ts';

/**
 * One InfluxDB database as ingest and alerts use it: the writer, the reader, and its creation with
 * carewatch's retention policies and downsampling (common/influx-schema.ts, through the reader).
 */
export interface InfluxDatabase {
  readonly url: string;
  readonly database: string;
  readonly writer: LineWriter;
  readonly reader: InfluxReader;
  /**
   * Creates the database, its retention policies and continuous query: with `enforce` (ingest) also
   * applies changed periods; without (alerts) only creates what is missing. Rejects while InfluxDB
   * is unreachable.
   */
  ensureDatabase(): Promise<SchemaReport>;
  close(): void;
}

export interface InfluxDatabaseOptions {
  readonly url: string;
  readonly database: string;
  /** Ingest: true; every other process: false (ingest owns the periods). */
  readonly enforce?: boolean;
  readonly retention?: RetentionConfig;
  readonly writeTimeoutMs?: number;
  readonly queryTimeoutMs?: number;
}

export function openInfluxDatabase(opts: InfluxDatabaseOptions): InfluxDatabase {
  const writer = createLineWriter({ url: opts.url, database: opts.database, ...(opts.writeTimeoutMs !== undefined ? { timeoutMs: opts.writeTimeoutMs } : {}) });
  const reader = createInfluxReader({ url: opts.url, database: opts.database, ...(opts.queryTimeoutMs !== undefined ? { timeoutMs: opts.queryTimeoutMs } : {}) });
  return {
    url: opts.url,
    database: opts.database,
    writer,
    reader,
    ensureDatabase: () => ensureInfluxSchema({ url: opts.url, database: opts.database, enforce: opts.enforce ?? false, ...(opts.retention !== undefined ? { retention: opts.retention } : {}), ...(opts.queryTimeoutMs !== undefined ? { timeoutMs: opts.queryTimeoutMs } : {}) }),
    close: () => writer.close(),
  };
}
