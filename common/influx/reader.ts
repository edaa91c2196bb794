import { boundedText } from '../bounded-body.ts';
import { InfluxError, errorText, serverError, transportError } from './errors.ts';

/**
 * Reads InfluxDB 1.x with InfluxQL: GET /query?db=&epoch=&q= (POST for statements that change
 * something: databases, retention policies, continuous queries, SELECT INTO). Returns each
 * statement's series. Plain fetch with one deadline over the whole exchange, body included, not
 * node-influx: its pool marks the only host down for a back-off after one refused connection (the
 * dashboards would keep failing after InfluxDB is back), reports a 5xx without its status, and never
 * settles when an answer is cut mid-body (it listens for 'data' and 'end' only: an InfluxDB killed
 * mid-answer left ingest's start waiting for ever, /health green, SIGTERM unanswered; session 21).
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
  /** POST: a statement that writes (CREATE, ALTER, DROP, SELECT INTO); InfluxDB warns of it on a GET. */
  readonly method?: 'GET' | 'POST';
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
  /** A dashboard request must not hang on a stalled database (default 10 s), body included. */
  readonly timeoutMs?: number;
  /**
   * Bytes of one answer read at most (default 128 MiB); past them INFLUX_ANSWER_TOO_LARGE. The
   * callers' largest reads (a month of a home's statistics) are a few MiB; without a bound an answer
   * that never ends was buffered at ~150 MB/s until the deadline.
   */
  readonly maxAnswerBytes?: number;
}

interface QueryResult {
  readonly series: InfluxSeries[];
  readonly error?: string;
}

/**
 * InfluxDB 1.x's answer, checked: `{ results: [{ series?: [{ name?, columns, values?, tags? }], error? }], error? }`.
 * undefined when it is not that shape (a proxy's page, a truncated or foreign body).
 */
export function parseQueryAnswer(text: string): { readonly results: QueryResult[]; readonly error?: string } | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const b = body as { results?: unknown; error?: unknown };
  if (b.error !== undefined && typeof b.error !== 'string') return undefined;
  if (b.results !== undefined && !Array.isArray(b.results)) return undefined;
  const results: QueryResult[] = [];
  for (const r of (b.results ?? []) as unknown[]) {
    if (typeof r !== 'object' || r === null) return undefined;
    const { series = [], error } = r as { series?: unknown; error?: unknown };
    if (!Array.isArray(series) || (error !== undefined && typeof error !== 'string')) return undefined;
    const checked: InfluxSeries[] = [];
    for (const x of series as unknown[]) {
      if (typeof x !== 'object' || x === null) return undefined;
      const { name = '', columns, values = [], tags } = x as { name?: unknown; columns?: unknown; values?: unknown; tags?: unknown };
      if (typeof name !== 'string' || !Array.isArray(columns) || !columns.every((c) => typeof c === 'string')) return undefined;
      if (!Array.isArray(values) || !values.every((v) => Array.isArray(v))) return undefined;
      if (tags !== undefined && (typeof tags !== 'object' || tags === null || !Object.values(tags).every((t) => typeof t === 'string'))) return undefined;
      checked.push({ name, columns: columns as string[], values: values as unknown[][], ...(tags !== undefined ? { tags: tags as Record<string, string> } : {}) });
    }
    results.push({ series: checked, ...(error !== undefined ? { error: error as string } : {}) });
  }
  return { results, ...(b.error !== undefined ? { error: b.error as string } : {}) };
}

export function createInfluxReader(opts: InfluxReaderOptions): InfluxReader {
  // fetch refuses a URL with credentials in it: send them as Basic auth, as the writer does.
  const parsed = new URL(opts.url);
  const headers: Record<string, string> = parsed.username === '' ? {} : { authorization: `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')}` };
  parsed.username = '';
  parsed.password = '';
  const base = parsed.href.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxAnswerBytes = opts.maxAnswerBytes ?? 128 * 1024 * 1024;
  const reader: InfluxReader = {
    async query(q, qo) {
      const post = qo?.method === 'POST';
      const url = `${base}/query?db=${encodeURIComponent(qo?.database ?? opts.database)}&epoch=${qo?.epoch ?? opts.epoch ?? 'ms'}${post ? '' : `&q=${encodeURIComponent(q)}`}`;
      let status: number;
      let text: string;
      try {
        // One signal for the request and the body: a trickled or endless answer ends at the deadline too.
        const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs), ...(post ? { method: 'POST', body: new URLSearchParams({ q }) } : {}) });
        status = res.status;
        const answer = await boundedText(res, maxAnswerBytes);
        if (answer === undefined) throw new InfluxError('INFLUX_ANSWER_TOO_LARGE', `InfluxDB's answer is over ${maxAnswerBytes} bytes: narrow the query`, res.status);
        text = answer;
      } catch (err) {
        throw transportError(err, timeoutMs);
      }
      const body = parseQueryAnswer(text);
      if (status === 401 || status === 403) throw new InfluxError('INFLUX_UNAUTHORIZED', `InfluxDB query refused (${status}): ${errorText(text)}`, status);
      if (body === undefined || status >= 500) throw serverError(status, errorText(text), `InfluxDB query failed (${status}): ${errorText(text)}`);
      // 400: the statement did not parse; 200 with an `error` per statement: it failed to run.
      if (body.error !== undefined) throw new InfluxError('INFLUX_QUERY', `InfluxDB: ${body.error}`, status);
      if (status !== 200) throw new InfluxError('INFLUX_QUERY', `InfluxDB query failed (${status}): ${errorText(text)}`, status);
      return body.results.map((r) => {
        // A read of a database nobody created yet is empty; a change (POST) to one is an error.
        if (r.error !== undefined && (post || !/database not found/.test(r.error))) throw new InfluxError('INFLUX_QUERY', `InfluxDB: ${r.error}`, status);
        return r.series;
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
