import { ensureInfluxSchema } from '../../common/influx-schema.ts';

/**
 * A minimal InfluxDB 1.x HTTP client: POST /write (line protocol, ns precision) and GET /query
 * (InfluxQL, epoch ms). Only what the alerts process needs; no global state.
 */
export interface InfluxSeries {
  readonly name: string;
  readonly columns: string[];
  readonly values: unknown[][];
  readonly tags?: Record<string, string>;
}

export interface InfluxHttp {
  write(lines: readonly string[]): Promise<void>;
  query(q: string): Promise<InfluxSeries[]>;
  createDatabase(): Promise<void>;
}

export class InfluxWriteError extends Error {
  readonly code = 'ALERTS_INFLUX_WRITE';
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

const TIMEOUT_MS = 10_000;

export function createInfluxHttp(url: string, database: string): InfluxHttp {
  const base = url.replace(/\/+$/, '');
  const db = encodeURIComponent(database);

  async function rawQuery(q: string, method: 'GET' | 'POST'): Promise<InfluxSeries[]> {
    const res = await fetch(`${base}/query?db=${db}&epoch=ms&q=${encodeURIComponent(q)}`, { method, signal: AbortSignal.timeout(TIMEOUT_MS) });
    const text = await res.text();
    if (!res.ok) throw new InfluxWriteError(`InfluxDB query failed with ${res.status}: ${text.slice(0, 300)}`, res.status);
    const body = JSON.parse(text) as { results?: Array<{ series?: InfluxSeries[]; error?: string }>; error?: string };
    const first = body.results?.[0];
    const error = body.error ?? first?.error;
    if (error !== undefined) {
      if (/database not found/.test(error)) return [];
      throw new InfluxWriteError(`InfluxDB query error: ${error}`);
    }
    return first?.series ?? [];
  }

  const client: InfluxHttp = {
    async write(lines) {
      if (lines.length === 0) return;
      const send = () =>
        fetch(`${base}/write?db=${db}&precision=ns`, { method: 'POST', body: lines.join('\n'), signal: AbortSignal.timeout(TIMEOUT_MS) });
      let res = await send();
      if (res.status === 404) {
        await res.text();
        await client.createDatabase();
        res = await send();
      }
      if (res.status === 204) return;
      const text = (await res.text()).slice(0, 300);
      // InfluxDB 1.x wrote every other point and refused only those older than the retention policy
      // (common/influx-schema.ts): they can never be stored, so retrying would wedge the journal behind them.
      if (res.status === 400 && /^\{"error":"partial write: points beyond retention policy dropped=\d+"\}/.test(text.trim())) return;
      throw new InfluxWriteError(`InfluxDB write failed with ${res.status}: ${text}`, res.status);
    },
    query: (q) => rawQuery(q, 'GET'),
    async createDatabase() {
      // The database with its retention policies (records the default: what alerts writes is kept two
      // years). Create-if-missing only: ingest owns the periods (common/influx-schema.ts).
      await ensureInfluxSchema({ url: base, database, enforce: false });
    },
  };
  return client;
}

/** Turns series rows into objects keyed by column name. */
export function rows(series: readonly InfluxSeries[]): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const s of series) for (const v of s.values) out.push({ ...s.tags, ...Object.fromEntries(s.columns.map((c, i) => [c, v[i]])) });
  return out;
}
