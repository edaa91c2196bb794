import { describe, expect, it } from 'vitest';
import { alertTiming } from '../../../alerts/http/alert-routes.ts';
import type { AlertMessage } from '../../../contract/payloads.ts';
import { appFixture } from '../support/app-fixture.ts';
import { fireSignal } from '../support/signals.ts';

const auth = (t: string) => ({ authorization: `Bearer ${t}` });

describe('alert routes', () => {
  it('answers 400 to a malformed alert id before looking anything up', async () => {
    const fx = appFixture();
    const t = await fx.login('staff-h01');
    const res = await fx.app.inject({ url: `/api/alerts/${encodeURIComponent("x' OR 1=1")}`, headers: auth(t) });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'API_BAD_REQUEST' });
    expect((await fx.app.inject({ url: `/api/alerts/${'a'.repeat(65)}`, headers: auth(t) })).statusCode).toBe(400);
    expect((await fx.app.inject({ url: '/api/alerts/00000000-0000-4000-8000-000000000000', headers: auth(t) })).statusCode).toBe(404);
  });

  it("answers 404 for another home's alert and another home's audit, on every route", async () => {
    const fx = appFixture();
    fx.lifecycle.applySignals([fireSignal()]);
    const id = fx.lifecycle.open()[0]!.id;
    const t = await fx.login('staff-h02');
    for (const [method, url] of [
      ['GET', `/api/alerts/${id}`],
      ['GET', `/api/alerts/${id}/audit`],
      ['POST', `/api/alerts/${id}/ack`],
      ['POST', `/api/alerts/${id}/resolve`],
      ['GET', '/api/homes/h01/audit'],
    ] as const) {
      expect((await fx.app.inject({ method, url, headers: auth(t) })).statusCode, `${method} ${url}`).toBe(404);
    }
    const confirm = await fx.app.inject({ method: 'POST', url: `/api/alerts/${id}/confirm`, headers: auth(t), payload: { confirmation: 'test' } });
    expect(confirm.statusCode).toBe(404);
  });

  it('measures a fire alarm to the bureau, not to any client (GB 50440 / GB 26875 10 s)', () => {
    const fire = { category: 'fire', sourceTs: 1000, raisedAt: 1100, pushedAt: 1200 } as AlertMessage;
    expect(alertTiming(fire)).not.toHaveProperty('withinTarget'); // a staff phone got it; the centre did not yet
    expect(alertTiming({ ...fire, bureauPushedAt: 12_000 })).toMatchObject({ pushedAt: 1200, bureauPushedAt: 12_000, sourceToPushedMs: 11_000, withinTarget: false });
    expect(alertTiming({ ...fire, category: 'care' })).toMatchObject({ sourceToPushedMs: 200, withinTarget: true });
  });
});
