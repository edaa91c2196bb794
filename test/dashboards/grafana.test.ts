import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { isMetricName } from '../../contract/metrics.ts';
import { testInflux } from '../support/influx-db.ts';
import { homeReadings } from './support/stack.ts';

/**
 * The Grafana provisioning is checked against the real schema: every dashboard query runs on a
 * real InfluxDB 1.x holding demo readings (Grafana's macros substituted), and every telemetry field
 * it names is a metric of the catalogue.
 */
const DIR = fileURLToPath(new URL('../../dashboards/grafana/', import.meta.url));
const influx = testInflux('graf');

interface Dashboard {
  uid: string;
  panels: Array<{ title: string; datasource: { uid: string }; targets: Array<{ query: string; datasource: { uid: string } }> }>;
  templating: { list: Array<{ name: string; query: string }> };
}

async function dashboards(): Promise<Array<[string, Dashboard]>> {
  const files = (await readdir(`${DIR}dashboards`)).filter((f) => f.endsWith('.json'));
  return Promise.all(files.map(async (f) => [f, JSON.parse(await readFile(`${DIR}dashboards/${f}`, 'utf8')) as Dashboard] as [string, Dashboard]));
}

function substitute(q: string): string {
  return q
    .replace(/\$timeFilter/g, 'time > now() - 2h')
    .replace(/\$__interval/g, '1m')
    .replace(/\/\^\$home\$\//g, '/^h01$/')
    .replace(/\/\^\$resident\$\//g, '/^h01-p0[12]$/');
}

async function run(q: string): Promise<{ error?: string; series: number }> {
  const res = await fetch(`${influx.url}/query?db=${influx.database}&q=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { results: Array<{ error?: string; series?: unknown[] }>; error?: string };
  const r = body.results?.[0];
  return { ...(body.error ?? r?.error ? { error: body.error ?? r?.error } : {}), series: r?.series?.length ?? 0 };
}

beforeAll(async () => {
  await fetch(`${influx.url}/query`, { method: 'POST', body: new URLSearchParams({ q: `CREATE DATABASE "${influx.database}"` }) });
  const now = Date.now();
  const lines = [...homeReadings('h01', now), `rejected,code=INGEST_UNKNOWN_METRIC,home=h01 topic="t",reason="r",payload="p" ${now}`, `event,home=h01,device=h01-sd-r101,kind=smoke_detector,room=r101,type=detector_alarm seq=1i ${now}`];
  const res = await fetch(`${influx.url}/write?db=${influx.database}&precision=ms`, { method: 'POST', body: lines.join('\n') });
  expect(res.status).toBe(204);
});

describe('Grafana provisioning', () => {
  it('points the datasource at InfluxDB 1.x database carewatch', async () => {
    const yaml = await readFile(`${DIR}provisioning/datasources/carewatch.yaml`, 'utf8');
    expect(yaml).toMatch(/type: influxdb/);
    expect(yaml).toMatch(/dbName: carewatch/);
    expect(yaml).toMatch(/uid: carewatch-influx/);
    const provider = await readFile(`${DIR}provisioning/dashboards/carewatch.yaml`, 'utf8');
    expect(provider).toMatch(/type: file/);
  });

  it('has the fire, vitals and ingest dashboards, every panel on that datasource', async () => {
    const all = await dashboards();
    expect(all.map(([, d]) => d.uid).sort()).toEqual(['carewatch-fire', 'carewatch-ingest', 'carewatch-vitals']);
    for (const [, d] of all) for (const p of d.panels) {
      expect(p.datasource.uid, p.title).toBe('carewatch-influx');
      for (const t of p.targets) expect(t.datasource.uid).toBe('carewatch-influx');
    }
  });

  it('runs every query without error on real InfluxDB, naming only catalogue metrics', async () => {
    const all = await dashboards();
    let withData = 0;
    for (const [file, d] of all) {
      for (const v of d.templating.list) expect(await run(substitute(v.query)), `${file} $${v.name}`).not.toHaveProperty('error');
      for (const p of d.panels) for (const t of p.targets) {
        if (/FROM "telemetry"/.test(t.query)) {
          for (const m of t.query.matchAll(/\b(?:mean|max|min|last|count)\("([a-z0-9_]+)"\)/g)) if (m[1] !== 'seq') expect(isMetricName(m[1]!), `${file}: ${m[1]}`).toBe(true);
        }
        const r = await run(substitute(t.query));
        expect(r, `${file} / ${p.title}`).not.toHaveProperty('error');
        if (r.series > 0) withData += 1;
      }
    }
    // The demo readings fill most panels (alerts and care actions are not in this data set).
    expect(withData).toBeGreaterThanOrEqual(12);
  });
});
