import { InfluxError, errorText, serverError, transportError } from './errors.ts';

/**
 * Reads InfluxDB 1.x with InfluxQL: GET /query?db=&epoch=&q=. Returns each statement's series.
 * Plain fetch with a timeout, not node-influx's queryRaw: its pool marks the only host down for a
 * back-off after one refused connection (the dashboards would keep failing after InfluxDB is back)
 * and reports a 5xx without its status (node_modules/influx/lib/src/pool.js). Administration
 * (databases, retention policies, continuous queries) does go through node-influx:
 * common/influx-schema.ts.
 */
export interface InfluxSeries {
  readonly name: string;
  readonly columns: readonly string[];
  readonly values: ReadonlyArray<readonly unknown[]>;
  readonly tags?: Readonly<Record<string, string>>;
}

/** Precision of the `time` column in answers. */
export type Epoch = 'ns' | 'u' | 'ms' | 's' | 'm' | 'h';

export interface QueryOptions {
  /** Another database than the reader's. */
  readonly database?: string;
  /** Default: the reader's (ms). */
  readonly epoch?: Epoch;
}

export interface InfluxReader {
  /**
   * Runs one or more `;`-separated statements; returns the series of each statement in order. A
   * database that does not exist yet (fresh install, nothing written) reads as empty. Rejects with
   * an InfluxError (INFLUX_QUERY for a statement InfluxDB refused).
   */
  query(q: string, opts?: QueryOptions): Promise<InfluxSeries[][]>;
  /** The first statement's series. */
  series(q: string, opts?: QueryOptions): Promise<InfluxSeries[]>;
}

export interface InfluxReaderOptions {
  readonly url: string;
  readonly database: string;
  readonly epoch?: Epoch;
  /** A dashboard request must not hang on a stalled database (default 10 s). */
  readonly timeoutMs?: number;
}

interface QueryBody {
  results?: Array<{ series?: InfluxSeries[]; error?: string }>;
  error?: string;
}

export function createInfluxReader(opts: InfluxReaderOptions): InfluxReader {
  // fetch refuses a URL with credentials in it: send them as Basic auth, as the writer does.
  const parsed = new URL(opts.url);
  const headers: Record<string, string> = parsed.username === '' ? {} : { authorization: `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')}` };
  parsed.username = '';
  parsed.password = '';
  const base = parsed.href.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const reader: InfluxReader = {
    async query(q, qo) {
      const url = `${base}/query?db=${encodeURIComponent(qo?.database ?? opts.database)}&epoch=${qo?.epoch ?? opts.epoch ?? 'ms'}&q=${encodeURIComponent(q)}`;
      let status: number;
      let text: string;
      try {
        const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
        status = res.status;
        text = await res.text();
      } catch (err) {
        throw transportError(err, timeoutMs);
      }
      let body: QueryBody | undefined;
      try {
        body = JSON.parse(text) as QueryBody;
      } catch {
        body = undefined;
      }
      if (status === 401 || status === 403) throw new InfluxError('INFLUX_UNAUTHORIZED', `InfluxDB query refused (${status}): ${errorText(text)}`, status);
      if (body === undefined || status >= 500) throw serverError(status, errorText(text), `InfluxDB query failed (${status}): ${errorText(text)}`);
      // 400: the statement did not parse; 200 with an `error` per statement: it failed to run.
      if (body.error !== undefined) throw new InfluxError('INFLUX_QUERY', `InfluxDB: ${body.error}`, status);
      if (status !== 200) throw new InfluxError('INFLUX_QUERY', `InfluxDB query failed (${status}): ${errorText(text)}`, status);
      return (body.results ?? []).map((r) => {
        if (r.error !== undefined && !/database not found/.test(r.error)) throw new InfluxError('INFLUX_QUERY', `InfluxDB: ${r.error}`, status);
        return r.series ?? [];
      });
    },
    async series(q, qo) {
      return (await reader.query(q, qo))[0] ?? [];
    },
  };
  return reader;
}

/** A tag or string literal in single quotes, InfluxQL-escaped. */
export function str(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A field, tag, measurement or policy identifier in double quotes. */
export function ident(name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Rows of one series as objects keyed by column name, with the series' tags (GROUP BY) merged in. */
export function rows(series: InfluxSeries): Array<Record<string, unknown>> {
  return series.values.map((v) => ({ ...series.tags, ...Object.fromEntries(series.columns.map((c, i) => [c, v[i]])) }));
}

/** Rows of every series, in order. */
export function allRows(series: readonly InfluxSeries[]): Array<Record<string, unknown>> {
  return series.flatMap(rows);
}
