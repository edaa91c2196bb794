import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardFixture, NOW, telemetryLine, type DashboardFixture } from './dashboard-fixture.ts';
import type { HistoryResponse } from '../../../alerts/http/history.ts';
import { backfillStatement } from '../../../common/influx-schema.ts';

let fx: DashboardFixture;
const MIN = 60_000;

beforeAll(async () => {
  fx = await dashboardFixture();
  const lines: string[] = [];
  // Two hours of vitals at one reading a minute: heart rate 60..179, SpO2 steady 97.
  for (let i = 0; i < 120; i++) {
    lines.push(telemetryLine('h01-vs-p01', NOW - 120 * MIN + i * MIN, { heart_rate_bpm: 60 + i, spo2_pct: 97, resp_rate_bpm: 16, body_temp_c: 36.6 }));
  }
  lines.push(telemetryLine('h01-bed-p01', NOW - 10 * MIN, { bed_occupied: true, movement_index: 3 }));
  lines.push(telemetryLine('h01-vs-p01', NOW - 8 * 3_600_000, { heart_rate_bpm: 250 })); // outside a 6 h range
  await fx.write(lines);
});
afterAll(() => fx.close());

async function get(url: string, user = 'staff-h01'): Promise<{ status: number; body: unknown }> {
  const res = await fx.app.inject({ method: 'GET', url, headers: fx.auth(user) });
  return { status: res.statusCode, body: res.json() };
}

describe('GET /api/history, long ranges', () => {
  it('reads 30 and 365 days from the per-minute aggregates (raw readings are kept 30 days), not from raw readings', async () => {
    // Ten days ago: an hour of readings at 80 bpm, aggregated; and an hour at 200 bpm left raw only.
    const day = 86_400_000;
    const lines: string[] = [];
    for (let i = 0; i < 60; i++) lines.push(telemetryLine('h01-vs-p02', NOW - 10 * day + i * MIN, { heart_rate_bpm: 80 + (i % 2) * 2 }));
    await fx.write(lines);
    await fx.query(backfillStatement(fx.database, NOW - 10 * day - MIN, NOW - 10 * day + 61 * MIN));
    await fx.write(Array.from({ length: 60 }, (_, i) => telemetryLine('h01-vs-p02', NOW - 12 * day + i * MIN, { heart_rate_bpm: 200 })));
    for (const range of ['30d', '365d']) {
      const r = (await get(`/api/history?device=h01-vs-p02&metric=heart_rate_bpm&range=${range}`)).body as HistoryResponse;
      const values = r.series[0]!.points.map((p) => p.v);
      expect(values.length, range).toBeGreaterThan(0);
      // Only the aggregated hour: its per-minute means average to 81; the raw-only 200s are not read.
      expect(values.every((v) => v === 81), `${range}: ${JSON.stringify(values)}`).toBe(true);
    }
  });
});

describe('GET /api/history', () => {
  it("returns a device's metric bucketed over the range, nothing older", async () => {
    const { status, body } = await get('/api/history?device=h01-vs-p01&metric=heart_rate_bpm&range=6h');
    expect(status).toBe(200);
    const r = body as HistoryResponse;
    expect(r.to).toBe(NOW);
    expect(r.from).toBe(NOW - 6 * 3_600_000);
    expect(r.series).toHaveLength(1);
    const s = r.series[0]!;
    expect(s).toMatchObject({ deviceId: 'h01-vs-p01', metric: 'heart_rate_bpm', unit: 'bpm' });
    const values = s.points.map((p) => p.v as number);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(60);
    expect(Math.max(...values)).toBeLessThanOrEqual(179);
    // The mean of all buckets weighted by their readings is the mean of 60..179.
    expect(s.points.length).toBeGreaterThan(50);
    expect(s.points.length).toBeLessThanOrEqual(241);
  });

  it("gives a resident's vitals from the vital-signs monitor, and booleans from the bed sensor", async () => {
    const r = (await get('/api/history?resident=h01-p01&range=1h')).body as HistoryResponse;
    expect(r.series.map((s) => s.metric)).toEqual(['heart_rate_bpm', 'spo2_pct', 'resp_rate_bpm', 'body_temp_c']);
    expect(r.series.every((s) => s.deviceId === 'h01-vs-p01')).toBe(true);
    expect(r.series[1]!.points.every((p) => p.v === 97)).toBe(true);
    const bed = (await get('/api/history?resident=h01-p01&metric=bed_occupied&range=1h')).body as HistoryResponse;
    expect(bed.series[0]).toMatchObject({ deviceId: 'h01-bed-p01', metric: 'bed_occupied' });
    expect(bed.series[0]!.points.map((p) => p.v)).toEqual([true]);
  });

  it('keeps staff to their own home and requires a token', async () => {
    expect(await get('/api/history?device=h01-vs-p01&metric=heart_rate_bpm', 'staff-h02')).toMatchObject({ status: 404, body: { code: 'API_NOT_FOUND' } });
    expect(await get('/api/history?resident=h01-p01', 'director-h02')).toMatchObject({ status: 404 });
    expect((await get('/api/history?resident=h01-p01', 'bureau')).status).toBe(200);
    // With a metric the device or resident does not report: another home's answers exactly like an
    // unknown one (it said "a vital_signs_monitor does not report …", 400, before session 22).
    for (const [other, none] of [
      ['/api/history?device=h01-vs-p01&metric=smoke_obscuration_pct_per_m', '/api/history?device=h01-vs-p99&metric=smoke_obscuration_pct_per_m'],
      ['/api/history?resident=h01-p01&metric=water_pressure_mpa', '/api/history?resident=h01-p99&metric=water_pressure_mpa'],
    ] as const) {
      const [a, b] = [await get(other, 'staff-h02'), await get(none, 'staff-h02')];
      expect(a).toMatchObject({ status: 404, body: { code: 'API_NOT_FOUND' } });
      expect((a.body as { message: string }).message.replace('p01', 'p99')).toBe((b.body as { message: string }).message);
    }
    const anon = await fx.app.inject({ method: 'GET', url: '/api/history?resident=h01-p01' });
    expect(anon.statusCode).toBe(401);
    expect(anon.json()).toMatchObject({ code: 'AUTH_REQUIRED' });
  });

  it.each([
    ['/api/history?device=h01-vs-p01&metric=drop_table', 400],
    ['/api/history?device=h01-vs-p01&metric=smoke_obscuration_pct_per_m', 400],
    ['/api/history?device=h01-vs-p01&resident=h01-p01', 400],
    ['/api/history?metric=heart_rate_bpm', 400],
    ["/api/history?device=h01'%20OR%201=1", 400],
    ['/api/history?device=h01-vs-p01&range=99y', 400],
    ['/api/history?device=h01-nope', 404],
    ['/api/history?resident=h01-p99', 404],
  ])('refuses %s with %i and a stable code', async (url, status) => {
    const r = await get(url);
    expect(r.status).toBe(status);
    expect((r.body as { code: string }).code).toBe(status === 400 ? 'API_BAD_REQUEST' : 'API_NOT_FOUND');
  });
});
