import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { RP_RAW, ensureInfluxSchema } from '../../common/influx-schema.ts';
import { InfluxError } from '../../common/influx/errors.ts';

/** A fresh database name on the run's private InfluxDB, so test files never see each other's points. */
export function testInflux(prefix = 't'): { url: string; database: string } {
  return { url: inject('influxUrl'), database: `${prefix}_${randomBytes(4).toString('hex')}` };
}

/** Runs an InfluxQL query over the HTTP API and returns the first statement's series. */
export async function influxQuery(url: string, database: string, q: string): Promise<Array<{ name: string; columns: string[]; values: unknown[][]; tags?: Record<string, string> }>> {
  const res = await fetch(`${url}/query?db=${encodeURIComponent(database)}&epoch=ms&q=${encodeURIComponent(q)}`);
  if (!res.ok) throw new Error(`query failed ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { results: Array<{ series?: Array<{ name: string; columns: string[]; values: unknown[][]; tags?: Record<string, string> }>; error?: string }> };
  const first = body.results[0];
  if (first?.error) throw new Error(first.error);
  return first?.series ?? [];
}

/** The database with carewatch's retention policies and downsampling, as ingest creates it at start (fixture periods). */
export async function prepareInflux(url: string, database: string): Promise<void> {
  await ensureInfluxSchema({ url, database, enforce: true, retention: FIXTURE_RETENTION });
}

/**
 * Writes line-protocol lines where carewatch's processes would: readings and rejections (`telemetry,…`,
 * `rejected,…`) to the raw retention policy, everything else to the default (records) one.
 */
export async function writeLines(url: string, database: string, lines: readonly string[], precision: 'ns' | 'ms' = 'ms'): Promise<void> {
  const raw = lines.filter((l) => l.startsWith('telemetry,') || l.startsWith('rejected,'));
  const records = lines.filter((l) => !(l.startsWith('telemetry,') || l.startsWith('rejected,')));
  for (const [rp, body] of [[RP_RAW, raw], [undefined, records]] as const) {
    if (body.length === 0) continue;
    const res = await fetch(`${url}/write?db=${encodeURIComponent(database)}&precision=${precision}${rp ? `&rp=${rp}` : ''}`, { method: 'POST', body: body.join('\n') });
    if (res.status !== 204) throw new Error(`write failed ${res.status}: ${await res.text()}`);
  }
}

/**
 * Retention for fixtures dated in the past (fixed 2026 dates): 100 years, so InfluxDB keeps what they
 * write. Production's defaults (30 days raw) are tested in test/common/influx-schema.test.ts.
 */
export const FIXTURE_RETENTION = { rawDays: 36_500, rollupDays: 36_500, recordsDays: 36_500 } as const;

/** The InfluxError a promise rejects with (any other outcome fails the test). */
export async function caughtInfluxError(p: Promise<unknown>): Promise<InfluxError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof InfluxError) return err;
    throw err;
  }
  throw new Error('expected an InfluxError, got success');
}
