import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';

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
