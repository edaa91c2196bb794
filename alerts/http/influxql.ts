/**
 * A small read-only InfluxQL client over InfluxDB 1.x HTTP `/query` (epoch=ms), used by the
 * dashboard plugins (live state, history, statistics). Reads go through plain fetch so the plugins
 * depend on a URL and a database name only, not on the writer the engine uses.
 */
export interface InfluxSeries {
  readonly name: string;
  readonly columns: readonly string[];
  readonly values: ReadonlyArray<readonly unknown[]>;
  readonly tags?: Readonly<Record<string, string>>;
}

export interface InfluxReader {
  /** Runs one or more `;`-separated statements; returns the series of each statement in order. */
  query(q: string): Promise<InfluxSeries[][]>;
}

export class InfluxReadError extends Error {
  readonly code = 'INFLUX_UNAVAILABLE';
}

export interface InfluxReaderOptions {
  readonly url: string;
  readonly database: string;
  /** A dashboard request must not hang on a stalled database. */
  readonly timeoutMs?: number;
}

export function createInfluxReader(opts: InfluxReaderOptions): InfluxReader {
  const base = opts.url.replace(/\/+$/, '');
  return {
    async query(q) {
      const url = `${base}/query?db=${encodeURIComponent(opts.database)}&epoch=ms&q=${encodeURIComponent(q)}`;
      let res: Response;
      try {
        res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000) });
      } catch (err) {
        throw new InfluxReadError(`InfluxDB unreachable: ${(err as Error).message}`);
      }
      const text = await res.text();
      if (!res.ok) throw new InfluxReadError(`InfluxDB query failed (${res.status}): ${text.slice(0, 200)}`);
      const body = JSON.parse(text) as { results?: Array<{ series?: InfluxSeries[]; error?: string }> };
      return (body.results ?? []).map((r) => {
        // A database that does not exist yet (fresh install, nothing written) reads as empty.
        if (r.error !== undefined && !/database not found/.test(r.error)) throw new InfluxReadError(`InfluxDB: ${r.error}`);
        return r.series ?? [];
      });
    },
  };
}

/** A tag or string literal in single quotes, InfluxQL-escaped (ids are already pattern-checked). */
export function str(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A field or tag identifier in double quotes. */
export function ident(name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Rows of a series as objects keyed by column name. */
export function rows(series: InfluxSeries): Array<Record<string, unknown>> {
  return series.values.map((v) => Object.fromEntries(series.columns.map((c, i) => [c, v[i]])));
}
