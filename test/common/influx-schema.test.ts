import { describe, expect, it } from 'vitest';
import { CQ_TELEMETRY_1M, RAW_TELEMETRY, ROLLUP_TELEMETRY, backfillStatement, cqName, ensureInfluxSchema, rollupSelect } from '../../common/influx-schema.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';

/** Retention and downsampling (issue 13), against the run's real InfluxDB 1.x. */

async function policies(url: string, db: string): Promise<Record<string, { duration: string; isDefault: boolean }>> {
  const [series] = await influxQuery(url, db, `SHOW RETENTION POLICIES ON "${db}"`);
  const cols = series?.columns ?? [];
  const out: Record<string, { duration: string; isDefault: boolean }> = {};
  for (const v of series?.values ?? []) out[String(v[cols.indexOf('name')])] = { duration: String(v[cols.indexOf('duration')]), isDefault: v[cols.indexOf('default')] === true };
  return out;
}

async function cqs(url: string, db: string): Promise<Array<{ name: string; query: string }>> {
  const series = await influxQuery(url, db, 'SHOW CONTINUOUS QUERIES');
  const mine = series.find((s) => s.name === db);
  return (mine?.values ?? []).map((v) => ({ name: String(v[0]), query: String(v[1]) }));
}

async function write(url: string, db: string, rp: string | undefined, lines: string[]): Promise<void> {
  const res = await fetch(`${url}/write?db=${db}&precision=ms${rp ? `&rp=${rp}` : ''}`, { method: 'POST', body: lines.join('\n') });
  expect(res.status).toBe(204);
}

describe('InfluxDB retention and downsampling', () => {
  it('creates raw (30 d), rollup and records (731 d, default) and the per-minute query, idempotently', async () => {
    const { url, database } = testInflux('schema');
    const first = await ensureInfluxSchema({ url, database, enforce: true });
    expect(first.created).toEqual(['retention policy raw 30d', 'retention policy rollup 731d', 'retention policy records 731d', `continuous query ${cqName(rollupSelect(database))}`]);
    const rp = await policies(url, database);
    expect(rp.raw).toEqual({ duration: '720h0m0s', isDefault: false });
    expect(rp.rollup).toEqual({ duration: '17544h0m0s', isDefault: false });
    expect(rp.records).toEqual({ duration: '17544h0m0s', isDefault: true });
    const [cq] = await cqs(url, database);
    expect(cq?.name.startsWith(CQ_TELEMETRY_1M)).toBe(true);
    expect(cq?.query).toMatch(/RESAMPLE EVERY 1m FOR 15m/);
    expect(cq?.query).toMatch(/INTO .*rollup.*telemetry_1m/);
    // Again: nothing to do.
    expect(await ensureInfluxSchema({ url, database, enforce: true })).toEqual({ created: [], altered: [] });
    expect((await cqs(url, database)).length).toBe(1);
  });

  it('applies changed periods when ingest enforces them, and the alerts process never changes them', async () => {
    const { url, database } = testInflux('schema');
    await ensureInfluxSchema({ url, database, enforce: true, retention: { rawDays: 7, rollupDays: 400, recordsDays: 3650 } });
    // The alerts process starts with the defaults: it creates nothing and alters nothing.
    expect(await ensureInfluxSchema({ url, database, enforce: false })).toEqual({ created: [], altered: [] });
    let rp = await policies(url, database);
    expect(rp.raw?.duration).toBe('168h0m0s');
    expect(rp.records?.duration).toBe('87600h0m0s');
    const back = await ensureInfluxSchema({ url, database, enforce: true });
    expect(back.altered).toEqual(['retention policy raw 30d', 'retention policy rollup 731d', 'retention policy records 731d default']);
    rp = await policies(url, database);
    expect(rp.raw?.duration).toBe('720h0m0s');
  });

  it('replaces an older version of the downsampling query when ingest enforces', async () => {
    const { url, database } = testInflux('schema');
    await ensureInfluxSchema({ url, database, enforce: true });
    await influxQuery(url, database, `DROP CONTINUOUS QUERY "${cqName(rollupSelect(database))}" ON "${database}"`);
    await fetch(`${url}/query`, { method: 'POST', body: new URLSearchParams({ q: `CREATE CONTINUOUS QUERY "${CQ_TELEMETRY_1M}_old" ON "${database}" BEGIN SELECT mean("temperature_c") INTO "${database}"."rollup"."telemetry_1m" FROM "${database}"."raw"."telemetry" GROUP BY time(1m), * END` }) });
    expect(await ensureInfluxSchema({ url, database, enforce: false })).toEqual({ created: [], altered: [] });
    const r = await ensureInfluxSchema({ url, database, enforce: true });
    expect(r.altered).toEqual([`continuous query ${CQ_TELEMETRY_1M}_old replaced by ${cqName(rollupSelect(database))}`]);
    expect((await cqs(url, database)).map((c) => c.name)).toEqual([cqName(rollupSelect(database))]);
  });

  it('aggregates raw readings per minute into mean, min, max (and last for booleans), per series', async () => {
    const { url, database } = testInflux('schema');
    await ensureInfluxSchema({ url, database, enforce: true });
    const t0 = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
    const tags = 'home=h01,device=h01-hd-kitchen,kind=heat_detector,room=kitchen';
    // Three readings in the first minute, one in the second; a bed sensor's boolean.
    await write(url, database, 'raw', [
      `telemetry,${tags} temperature_c=20,battery_pct=90,seq=1i ${t0 + 1_000}`,
      `telemetry,${tags} temperature_c=26,battery_pct=90,seq=2i ${t0 + 21_000}`,
      `telemetry,${tags} temperature_c=23,battery_pct=89,seq=3i ${t0 + 41_000}`,
      `telemetry,${tags} temperature_c=30,battery_pct=89,seq=4i ${t0 + 61_000}`,
      `telemetry,home=h01,device=h01-bed-p01,kind=bed_sensor,room=r101,resident=h01-p01 bed_occupied=true,seq=1i ${t0 + 5_000}`,
      `telemetry,home=h01,device=h01-bed-p01,kind=bed_sensor,room=r101,resident=h01-p01 bed_occupied=false,seq=2i ${t0 + 50_000}`,
    ]);
    // What ingest writes lands in raw, not in the default policy.
    expect(await influxQuery(url, database, 'SELECT count(seq) FROM telemetry')).toEqual([]);
    expect((await influxQuery(url, database, `SELECT count(seq) FROM ${RAW_TELEMETRY}`))[0]?.values[0]?.[1]).toBe(6);
    // The continuous query's own SELECT over the span (the CQ runs it every minute on the wall clock).
    await influxQuery(url, database, backfillStatement(database, t0, t0 + 120_000));
    const [heat] = await influxQuery(url, database, `SELECT mean_temperature_c, min_temperature_c, max_temperature_c, readings FROM ${ROLLUP_TELEMETRY} WHERE device = 'h01-hd-kitchen'`);
    expect(heat?.values).toEqual([
      [t0, 23, 20, 26, 3],
      [t0 + 60_000, 30, 30, 30, 1],
    ]);
    const [bed] = await influxQuery(url, database, `SELECT last_bed_occupied FROM ${ROLLUP_TELEMETRY} WHERE device = 'h01-bed-p01'`);
    expect(bed?.values).toEqual([[t0, false]]);
    // Tags survive (GROUP BY *), so the aggregates are queried like raw telemetry.
    const [byRoom] = await influxQuery(url, database, `SELECT max(max_temperature_c) FROM ${ROLLUP_TELEMETRY} WHERE home = 'h01' GROUP BY room`);
    expect(byRoom?.tags).toEqual({ room: 'kitchen' });
  });

  it('keeps records (no policy named) in the two-year default policy', async () => {
    const { url, database } = testInflux('schema');
    await ensureInfluxSchema({ url, database, enforce: true });
    await write(url, database, undefined, [`alert,home=h01,category=fire,rule=smoke_alarm,state=raised id="a1",version=1i,json="{}" ${Date.now()}`]);
    expect((await influxQuery(url, database, 'SELECT count(version) FROM "records"."alert"'))[0]?.values[0]?.[1]).toBe(1);
  });
});
