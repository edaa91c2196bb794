import { afterAll, describe, expect, it } from 'vitest';
import { appFixture } from '../support/app-fixture.ts';

const fx = appFixture();
afterAll(() => fx.app.close());

interface HomeSummary { id: string; ackDeadlineS: number; confirmDeadlineS: number }

describe('GET /api/homes', () => {
  it("gives each home's positive alarm sequence deadlines, its own or NFPA 72's 15 s / 180 s", async () => {
    const h01 = fx.registry.site.homes.find((h) => h.id === 'h01')!;
    Object.assign(h01, { ackDeadlineS: 30, confirmDeadlineS: 300 });
    const token = await fx.login('bureau');
    const res = await fx.app.inject({ url: '/api/homes', headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(200);
    const homes = res.json() as HomeSummary[];
    expect(homes.find((h) => h.id === 'h01')).toMatchObject({ ackDeadlineS: 30, confirmDeadlineS: 300 });
    expect(homes.find((h) => h.id === 'h02')).toMatchObject({ ackDeadlineS: 15, confirmDeadlineS: 180 });
  });

  it("gives staff only their own home's deadlines", async () => {
    const token = await fx.login('staff-h02');
    const homes = (await fx.app.inject({ url: '/api/homes', headers: { authorization: `Bearer ${token}` } })).json() as HomeSummary[];
    expect(homes.map((h) => [h.id, h.ackDeadlineS, h.confirmDeadlineS])).toEqual([['h02', 15, 180]]);
  });
});
