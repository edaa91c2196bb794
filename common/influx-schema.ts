import { createHash } from 'node:crypto';
import { METRICS, METRIC_NAMES } from '../contract/metrics.ts';
import { createInfluxReader, ident as quoteIdent, rows, type InfluxReader } from './influx/reader.ts';

/**
 * The life of carewatch's data in InfluxDB 1.x (issue 13): three retention policies and the
 * continuous queries that downsample raw readings before they expire.
 *
 * | policy    | holds                                                             | default  |
 * |-----------|-------------------------------------------------------------------|----------|
 * | `raw`     | what devices send, as ingest writes it: `telemetry`, `rejected`   | 30 days  |
 * | `rollup`  | per-minute aggregates of raw telemetry (`telemetry_1m`)           | 731 days |
 * | `records` | (default policy) events, statuses, alerts, incidents, audit, NEWS2, turns, care actions, disablements | 731 days |
 *
 * At province scale raw readings are about 600 million points a day, so they cannot be kept for
 * good; what a person did about an alarm and what a device reported as an event are records a
 * remote-monitoring centre keeps (GB 50440 asks it to keep its records; the issue sets at least two
 * years), and they are small. Events and statuses stay with the records because the monthly
 * statistics (device availability) and the investigation of a fire read them for whole months.
 * 731 days: two years including a leap day. Every period is configurable (ingest's
 * CAREWATCH_RETENTION_*_DAYS).
 *
 * `records` is the database's default policy, so every reader and writer that names no policy
 * (the alerts process) uses it; ingest writes telemetry and rejections with `rp=raw`, and readers of
 * raw telemetry name `"raw"."telemetry"`. Created idempotently by ingest at start (`enforce`: a
 * changed duration is applied), and created-if-missing by the alerts process, which never changes a
 * duration ingest set.
 */

export const RP_RAW = 'raw';
export const RP_ROLLUP = 'rollup';
export const RP_RECORDS = 'records';
/** The per-minute aggregates of raw telemetry, in RP_ROLLUP. */
export const TELEMETRY_1M = 'telemetry_1m';
/** Fully qualified names for queries (InfluxQL). */
export const RAW_TELEMETRY = `"${RP_RAW}"."telemetry"`;
export const ROLLUP_TELEMETRY = `"${RP_ROLLUP}"."${TELEMETRY_1M}"`;
/** Prefix of the downsampling query's name; the name ends in a hash of its text (see cqName). */
export const CQ_TELEMETRY_1M = 'cq_telemetry_1m';

export interface RetentionConfig {
  readonly rawDays: number;
  readonly rollupDays: number;
  readonly recordsDays: number;
}

export const DEFAULT_RETENTION: RetentionConfig = { rawDays: 30, rollupDays: 731, recordsDays: 731 };

/**
 * How far back each minute's aggregate is recomputed. A reading that reaches InfluxDB later than
 * this (an InfluxDB outage drained from ingest's spool) is kept raw but misses its aggregate unless
 * `backfillStatement` is run for that span (docs/architecture.md "Retention and downsampling").
 */
export const CQ_RESAMPLE_FOR = '15m';

/** Numeric metrics: mean, min and max per minute. Boolean ones (bed occupancy) keep their last value. */
const NUMERIC = METRIC_NAMES.filter((m) => METRICS[m].type === 'number');
const BOOLEAN = METRIC_NAMES.filter((m) => METRICS[m].type === 'boolean');

/** Field of the aggregate: `mean_temperature_c`, `max_temperature_c`, `last_bed_occupied`, … */
export function rollupField<A extends 'mean' | 'min' | 'max' | 'last', M extends string>(aggregate: A, metric: M): `${A}_${M}` {
  return `${aggregate}_${metric}`;
}

/** The SELECT of the downsampling, without its time bounds (the CQ adds them; a backfill sets them). */
export function rollupSelect(database: string, where = ''): string {
  const fields = [
    ...NUMERIC.flatMap((m) => (['mean', 'min', 'max'] as const).map((a) => `${a}(${quoteIdent(m)}) AS ${quoteIdent(rollupField(a, m))}`)),
    ...BOOLEAN.map((m) => `last(${quoteIdent(m)}) AS ${quoteIdent(rollupField('last', m))}`),
    `count("seq") AS "readings"`,
  ];
  const db = quoteIdent(database);
  return `SELECT ${fields.join(', ')} INTO ${db}.${quoteIdent(RP_ROLLUP)}.${quoteIdent(TELEMETRY_1M)} FROM ${db}.${quoteIdent(RP_RAW)}."telemetry"${where} GROUP BY time(1m), *`;
}

/** Recomputes the aggregates of [fromMs, toMs): after a long outage, or for data written before the CQ existed. */
export function backfillStatement(database: string, fromMs: number, toMs: number): string {
  return rollupSelect(database, ` WHERE time >= ${Math.trunc(fromMs)}ms AND time < ${Math.trunc(toMs)}ms`);
}

/** `cq_telemetry_1m_<8 hex>`: the hash of the query text, so a changed query gets a new name. */
export function cqName(query: string): string {
  return `${CQ_TELEMETRY_1M}_${createHash('sha256').update(query).digest('hex').slice(0, 8)}`;
}

export interface SchemaOptions {
  readonly url: string;
  readonly database: string;
  readonly retention?: RetentionConfig;
  /**
   * True (ingest): create what is missing and apply changed durations and the default policy.
   * False (alerts): only create what is missing.
   */
  readonly enforce: boolean;
  /** Each statement's deadline, answer included (default: the reader's, 10 s). */
  readonly timeoutMs?: number;
}

export interface SchemaReport {
  readonly created: string[];
  readonly altered: string[];
}

const days = (n: number): string => `${n}d`;
/** InfluxDB reports durations as Go durations (`720h0m0s`); 0 is infinite. */
function durationHours(go: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(go);
  if (m === null) return Number.NaN;
  return Number(m[1] ?? 0) + Number(m[2] ?? 0) / 60 + Number(m[3] ?? 0) / 3600;
}

/**
 * The names of one database's continuous queries. SHOW CONTINUOUS QUERIES answers for every
 * database, one series each (named after it).
 */
async function continuousQueries(reader: InfluxReader, database: string): Promise<string[]> {
  const series = (await reader.series('SHOW CONTINUOUS QUERIES')).find((s) => s.name === database);
  return (series?.values ?? []).map((v) => String(v[0]));
}

/**
 * Creates (and with `enforce`, aligns) the database, its retention policies and the downsampling
 * query. Through the project's own reader (POST for the statements that change something), not
 * node-influx (reader.ts says why): every statement has a deadline, so an InfluxDB that dies
 * mid-answer fails this with INFLUX_UNREACHABLE or INFLUX_TIMEOUT and the caller retries.
 */
export async function ensureInfluxSchema(opts: SchemaOptions): Promise<SchemaReport> {
  const reader = createInfluxReader({ url: opts.url, database: opts.database, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
  const change = (statement: string): Promise<unknown> => reader.query(statement, { method: 'POST' });
  const db = quoteIdent(opts.database);
  const cfg = opts.retention ?? DEFAULT_RETENTION;
  const created: string[] = [];
  const altered: string[] = [];
  // CREATE DATABASE is idempotent in InfluxDB 1.x.
  await change(`CREATE DATABASE ${db}`);
  const wanted: Array<{ name: string; days: number; isDefault: boolean }> = [
    { name: RP_RAW, days: cfg.rawDays, isDefault: false },
    { name: RP_ROLLUP, days: cfg.rollupDays, isDefault: false },
    { name: RP_RECORDS, days: cfg.recordsDays, isDefault: true },
  ];
  const existing = (await reader.series(`SHOW RETENTION POLICIES ON ${db}`)).flatMap(rows);
  for (const rp of wanted) {
    const have = existing.find((e) => e.name === rp.name);
    // REPLICATION 1: a single InfluxDB 1.x node (OSS has no clustering); DEFAULT only where it is wanted.
    const spec = `${quoteIdent(rp.name)} ON ${db} DURATION ${days(rp.days)} REPLICATION 1${rp.isDefault ? ' DEFAULT' : ''}`;
    if (have === undefined) {
      await change(`CREATE RETENTION POLICY ${spec}`);
      created.push(`retention policy ${rp.name} ${days(rp.days)}`);
    } else if (opts.enforce && (Math.abs(durationHours(String(have.duration)) - rp.days * 24) > 1e-6 || (have.default === true) !== rp.isDefault)) {
      await change(`ALTER RETENTION POLICY ${spec}`);
      altered.push(`retention policy ${rp.name} ${days(rp.days)}${rp.isDefault ? ' default' : ''}`);
    }
  }
  const query = rollupSelect(opts.database);
  const name = cqName(query);
  const ours = (await continuousQueries(reader, opts.database)).filter((c) => c.startsWith(CQ_TELEMETRY_1M));
  // A continuous query cannot be altered, and InfluxDB reformats its text, so the name carries a
  // hash of the text: one with another name is an older version (a metric added since), replaced.
  if (!ours.includes(name)) {
    if (ours.length > 0 && !opts.enforce) return { created, altered };
    await change(`CREATE CONTINUOUS QUERY ${quoteIdent(name)} ON ${db} RESAMPLE EVERY 1m FOR ${CQ_RESAMPLE_FOR} BEGIN ${query} END`);
    created.push(`continuous query ${name}`);
  }
  if (opts.enforce) {
    for (const old of ours.filter((c) => c !== name)) {
      await change(`DROP CONTINUOUS QUERY ${quoteIdent(old)} ON ${db}`);
      altered.push(`continuous query ${old} replaced by ${name}`);
    }
  }
  return { created, altered };
}
