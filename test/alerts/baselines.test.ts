import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import { baselineQuery, createBaselineService } from '../../alerts/baselines.ts';
import { createInfluxReader, type InfluxReader } from '../../common/influx/reader.ts';
import { prepareInflux, testInflux, writeLines } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';

/** The baseline adapter against a real InfluxDB: learning, hourly refresh, and an outage. */
const influx = testInflux('baselines');
const START = Date.UTC(2026, 0, 15, 4, 0, 0);
const MIN = 60_000;

async function write(lines: string[]): Promise<void> {
  await writeLines(influx.url, influx.database, lines);
}

beforeAll(async () => {
  await prepareInflux(influx.url, influx.database);
  const lines: string[] = [];
  // h01-p05 (hypercapnic, SpO2 around 86 %) for 30 hours; h01-p06 8 days ago only (outside the window).
  for (let i = 1; i <= 360; i++) lines.push(`telemetry,device=h01-vs-p05,home=h01,kind=vital_signs_monitor,resident=h01-p05,room=r103 spo2_pct=${i % 2 ? 85 : 87},resp_rate_bpm=18 ${START - i * 5 * MIN}`);
  for (let i = 1; i <= 400; i++) lines.push(`telemetry,device=h01-vs-p06,home=h01,kind=vital_signs_monitor,resident=h01-p06,room=r103 heart_rate_bpm=70 ${START - 8 * 86_400_000 - i * 5 * MIN}`);
  // A smoke detector's readings are not a resident's.
  lines.push(`telemetry,device=h01-sd-r101,home=h01,kind=smoke_detector,room=r101 temperature_c=22 ${START - MIN}`);
  await write(lines);
});

describe('personal baselines from InfluxDB', () => {
  const good = createInfluxReader({ url: influx.url, database: influx.database });
  const bad = createInfluxReader({ url: 'http://127.0.0.1:1', database: influx.database, timeoutMs: 2000 });
  let broken = false;
  // Both are real readers; the switch only chooses which one answers (an outage a test can turn on).
  const reader: InfluxReader = { query: (q, o) => (broken ? bad : good).query(q, o), series: (q, o) => (broken ? bad : good).series(q, o) };
  const clock = createManualClock(START);
  const service = createBaselineService({ influx: reader, registry: demoRegistry(), clock, logger: pino({ level: 'silent' }), refreshMs: 3_600_000 });
  afterAll(() => service.close());

  it('learns at start from the last 7 days only, with Scale 2 bounds for a hypercapnic resident', async () => {
    await service.start();
    const b = service.current();
    expect(Object.keys(b)).toEqual(['h01-p05']);
    // SpO2 86 ± 1 → 86 − 4.4 = 81 → clamped to the Scale 2 default edge (alert below 84).
    expect(b['h01-p05']?.spo2_pct).toEqual({ low: 84 });
    // RR 18 (spread raised to the 1.5 minimum): 13.5 → 13 would alert inside NEWS2's 0-point band, so 12; 22.5 → 23.
    expect(b['h01-p05']?.resp_rate_bpm).toEqual({ low: 12, high: 23 });
    expect(service.stats()).toMatchObject({ refreshes: 1, failures: 0, residents: 1 });
  });

  it('re-learns every hour, and keeps the previous baselines while InfluxDB is down', async () => {
    broken = true;
    expect(await service.refresh()).toBe(false);
    expect(service.current()['h01-p05']?.spo2_pct).toEqual({ low: 84 });
    expect(service.stats().failures).toBe(1);
    broken = false;
    await write([`telemetry,device=h01-vs-p06,home=h01,kind=vital_signs_monitor,resident=h01-p06,room=r103 heart_rate_bpm=70 ${START - 2 * MIN}`]);
    clock.advance(3_600_000); // the hourly refresh fires
    await new Promise((r) => setTimeout(r, 50));
    await service.refresh();
    expect(service.stats().refreshes).toBeGreaterThanOrEqual(2);
    // One reading of h01-p06 inside the window is far too little to learn from.
    expect(service.current()['h01-p06']).toBeUndefined();
  });

  it('asks for plausible readings of resident monitors only', () => {
    const q = baselineQuery(0, 1, 300_000);
    expect(q).toContain(`"spo2_pct" >= 50`);
    expect(q).toContain(`"heart_rate_bpm" >= 20 AND "heart_rate_bpm" <= 250`);
    expect(q.split('; ')).toHaveLength(4);
  });
});
