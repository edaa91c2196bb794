import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardFixture, NOW, statusLine, telemetryLine, type DashboardFixture } from './dashboard-fixture.ts';
import type { HomeLive, HomesSummary } from '../../../alerts/http/live.ts';

let fx: DashboardFixture;

beforeAll(async () => {
  fx = await dashboardFixture((id) =>
    id === 'h01-p01'
      ? { news2: { aggregate: 5, partial: true, missing: ['systolic_bp', 'consciousness'] }, nextTurnDueAt: NOW + 30 * 60_000 }
      : id === 'h02-p01' || id === 'h01-p02'
        ? { news2: { aggregate: 7, partial: false, missing: [] } }
        : undefined,
  );
  await fx.write([
    telemetryLine('h01-sd-r101', NOW - 20_000, { smoke_obscuration_pct_per_m: 0.4, temperature_c: 22.5, battery_pct: 90 }),
    telemetryLine('h01-sd-r101', NOW - 10_000, { smoke_obscuration_pct_per_m: 0.5, temperature_c: 23 }),
    telemetryLine('h01-sd-r102', NOW - 3_600_000, { smoke_obscuration_pct_per_m: 0.2, temperature_c: 21 }),
    telemetryLine('h01-vs-p01', NOW - 5_000, { heart_rate_bpm: 72, spo2_pct: 95, resp_rate_bpm: 18, body_temp_c: 37.1 }),
    telemetryLine('h01-bed-p01', NOW - 5_000, { bed_occupied: true, heart_rate_bpm: 99, movement_index: 4 }),
    telemetryLine('h01-wet-p01', NOW - 5_000, { wetness_pct: 35 }),
    statusLine('h01-sd-r101', NOW - 60_000, true),
    statusLine('h01-sd-r102', NOW - 60_000, true),
    statusLine('h01-sd-r102', NOW - 30_000, false),
    statusLine('h02-sd-r101', NOW - 60_000, true),
  ]);
});
afterAll(() => fx.close());

describe('GET /api/live/home/:homeId', () => {
  it("gives every device's latest values, online status and silence", async () => {
    const res = await fx.app.inject({ url: '/api/live/home/h01', headers: fx.auth('staff-h01') });
    expect(res.statusCode).toBe(200);
    const live = res.json() as HomeLive;
    expect(live.devices).toHaveLength(82);
    const r101 = live.devices.find((d) => d.id === 'h01-sd-r101');
    expect(r101).toMatchObject({ online: true, silent: false, lastSeen: NOW - 10_000, values: { smoke_obscuration_pct_per_m: 0.5, temperature_c: 23, battery_pct: 90 } });
    // Last reading an hour ago is beyond a smoke detector's 90 s heartbeat budget.
    expect(live.devices.find((d) => d.id === 'h01-sd-r102')).toMatchObject({ online: false, silent: true });
    expect(live.devices.find((d) => d.id === 'h01-sd-r103')).toMatchObject({ online: null, lastSeen: null, silent: true, values: {} });
  });

  it("gives each resident's vitals (monitor first), bed, wetness, NEWS2 and next turn", async () => {
    const live = (await fx.app.inject({ url: '/api/live/home/h01', headers: fx.auth('director-h01') })).json() as HomeLive;
    const p01 = live.residents.find((r) => r.id === 'h01-p01');
    expect(p01).toMatchObject({
      roomId: 'r101',
      bed: 'A',
      vitals: { heart_rate_bpm: 72, spo2_pct: 95, resp_rate_bpm: 18, body_temp_c: 37.1 },
      bedOccupied: true,
      wetnessPct: 35,
      news2: { aggregate: 5, partial: true, missing: ['systolic_bp', 'consciousness'] },
      nextTurnDueAt: NOW + 30 * 60_000,
    });
    expect(live.residents.find((r) => r.id === 'h01-p03')).toMatchObject({ vitals: {}, bedOccupied: null, news2: null, nextTurnDueAt: null });
  });

  it('keeps staff out of other homes', async () => {
    const res = await fx.app.inject({ url: '/api/live/home/h01', headers: fx.auth('staff-h02') });
    // Another home answers exactly like an unknown one (h99 below), so ids cannot be probed.
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'API_NOT_FOUND' });
    expect((await fx.app.inject({ url: '/api/live/home/h01' })).statusCode).toBe(401);
    expect((await fx.app.inject({ url: '/api/live/home/h99', headers: fx.auth('bureau') })).statusCode).toBe(404);
    expect((await fx.app.inject({ url: '/api/live/home/h01%27', headers: fx.auth('bureau') })).statusCode).toBe(400);
    expect(fx.codes).toContain('API_NOT_FOUND');
  });
});

describe('GET /api/live/homes', () => {
  it('summarises all nine homes for the bureau, only their own for staff', async () => {
    const all = (await fx.app.inject({ url: '/api/live/homes', headers: fx.auth('bureau') })).json() as HomesSummary;
    // Nine care homes, then (issue 15) five households.
    expect(all.homes.map((h) => h.homeId)).toEqual(['h01', 'h02', 'h03', 'h04', 'h05', 'h06', 'h07', 'h08', 'h09', 'hh01', 'hh02', 'hh03', 'hh04', 'hh05']);
    expect(all.homes[0]).toMatchObject({ homeId: 'h01', devicesOnline: 1, residentsNews2AtLeast5: 2 });
    expect(all.homes[1]).toMatchObject({ homeId: 'h02', devicesOnline: 1, residentsNews2AtLeast5: 1 });
    const own = (await fx.app.inject({ url: '/api/live/homes', headers: fx.auth('staff-h02') })).json() as HomesSummary;
    expect(own.homes.map((h) => h.homeId)).toEqual(['h02']);
  });
});
