import { afterAll, describe, expect, it } from 'vitest';
import { appFixture } from '../support/app-fixture.ts';
import { careSignal, fireSignal } from '../support/signals.ts';

const fx = appFixture();
afterAll(() => fx.app.close());
const auth = (token: string) => ({ authorization: `Bearer ${token}` });

describe('POST /api/login', () => {
  it('issues a token for the right password and refuses a wrong one', async () => {
    const ok = await fx.app.inject({ method: 'POST', url: '/api/login', payload: { username: 'staff-h01', password: 'demo-staff-h01' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ user: { username: 'staff-h01', role: 'staff', homeId: 'h01' } });
    expect(ok.json().expiresAt).toBe(fx.clock.now() + 3600_000);
    const me = await fx.app.inject({ url: '/api/me', headers: auth(ok.json().token) });
    expect(me.json()).toMatchObject({ username: 'staff-h01', role: 'staff', homeId: 'h01' });

    const wrong = await fx.app.inject({ method: 'POST', url: '/api/login', payload: { username: 'staff-h01', password: 'demo-staff-h02' } });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toEqual({ code: 'AUTH_INVALID_CREDENTIALS', message: expect.any(String) });
    const unknown = await fx.app.inject({ method: 'POST', url: '/api/login', payload: { username: 'nobody', password: 'x' } });
    expect(unknown.json().code).toBe('AUTH_INVALID_CREDENTIALS');
    const bad = await fx.app.inject({ method: 'POST', url: '/api/login', payload: { username: 'staff-h01' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('API_BAD_REQUEST');
  });

  it('refuses demo credentials in production mode', async () => {
    const prod = appFixture({ production: true });
    const res = await prod.app.inject({ method: 'POST', url: '/api/login', payload: { username: 'staff-h01', password: 'demo-staff-h01' } });
    expect(res.statusCode).toBe(403);
    expect(res.json().code).toBe('AUTH_DEMO_SECRET_REFUSED');
    await prod.app.close();
  });

  it('refuses requests without a valid, unexpired token', async () => {
    expect((await fx.app.inject({ url: '/api/alerts' })).json().code).toBe('AUTH_REQUIRED');
    expect((await fx.app.inject({ url: '/api/alerts', headers: auth('abc.def') })).statusCode).toBe(401);
    const token = await fx.login('staff-h01');
    const [body, mac] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body!, 'base64url').toString()), role: 'admin' })).toString('base64url');
    expect((await fx.app.inject({ url: '/api/alerts', headers: auth(`${forged}.${mac}`) })).statusCode).toBe(401);
    const f2 = appFixture();
    const t2 = await f2.login('staff-h01');
    f2.clock.advance(3600_001);
    expect((await f2.app.inject({ url: '/api/me', headers: auth(t2) })).statusCode).toBe(401);
    await f2.app.close();
  });
});

describe('alerts API', () => {
  it('staff see only their own home, bureau sees all; another home gets 404', async () => {
    fx.lifecycle.applySignals([fireSignal(), careSignal({ key: 'spo2:h02-p01', homeId: 'h02', residentId: 'h02-p01', deviceId: undefined, roomId: undefined })]);
    const [h01, h02] = fx.lifecycle.open();
    const s1 = await fx.login('staff-h01');
    const s2 = await fx.login('staff-h02');
    const b = await fx.login('bureau');
    const list1 = (await fx.app.inject({ url: '/api/alerts', headers: auth(s1) })).json() as Array<{ id: string }>;
    expect(list1.map((a) => a.id)).toEqual([h01!.id]);
    const listB = (await fx.app.inject({ url: '/api/alerts', headers: auth(b) })).json() as Array<{ id: string }>;
    expect(listB.map((a) => a.id).sort()).toEqual([h01!.id, h02!.id].sort());
    expect((await fx.app.inject({ url: `/api/alerts/${h01!.id}`, headers: auth(s2) })).statusCode).toBe(404);
    expect((await fx.app.inject({ url: `/api/alerts/${h01!.id}/audit`, headers: auth(s2) })).statusCode).toBe(404);
    const ack2 = await fx.app.inject({ method: 'POST', url: `/api/alerts/${h01!.id}/ack`, headers: auth(s2) });
    expect(ack2.statusCode).toBe(404);
    expect(ack2.json().code).toBe('ALERT_NOT_FOUND');
    expect(fx.lifecycle.get(h01!.id)?.acknowledgedAt).toBeUndefined();

    const homes1 = (await fx.app.inject({ url: '/api/homes', headers: auth(s1) })).json() as Array<{ id: string; openAlerts: number }>;
    expect(homes1.map((h) => [h.id, h.openAlerts])).toEqual([['h01', 1]]);
    // Nine care homes and (issue 15) five households.
    expect(((await fx.app.inject({ url: '/api/homes', headers: auth(b) })).json() as unknown[]).length).toBe(14);
  });

  it('ack, confirm and resolve work through the API with stable error codes', async () => {
    const s1 = await fx.login('staff-h01');
    const id = fx.lifecycle.open().find((a) => a.homeId === 'h01')!.id;
    const ack = await fx.app.inject({ method: 'POST', url: `/api/alerts/${id}/ack`, headers: auth(s1) });
    expect(ack.statusCode).toBe(200);
    expect(ack.json()).toMatchObject({ id, state: 'acknowledged', acknowledgedBy: 'staff-h01', version: 2 });
    expect((await fx.app.inject({ method: 'POST', url: `/api/alerts/${id}/ack`, headers: auth(s1) })).json().code).toBe('ALERT_ALREADY_ACKNOWLEDGED');
    expect((await fx.app.inject({ method: 'POST', url: `/api/alerts/${id}/resolve`, headers: auth(s1) })).json().code).toBe('ALERT_NOT_CONFIRMED');
    const badConfirm = await fx.app.inject({ method: 'POST', url: `/api/alerts/${id}/confirm`, headers: auth(s1), payload: { confirmation: 'maybe' } });
    expect(badConfirm.statusCode).toBe(400);
    const confirm = await fx.app.inject({ method: 'POST', url: `/api/alerts/${id}/confirm`, headers: auth(s1), payload: { confirmation: 'test', comment: '消防演习' } });
    expect(confirm.json()).toMatchObject({ state: 'confirmed', confirmation: 'test', comment: '消防演习' });
    const resolve = await fx.app.inject({ method: 'POST', url: `/api/alerts/${id}/resolve`, headers: auth(s1), payload: { comment: 'reset' } });
    expect(resolve.json()).toMatchObject({ state: 'resolved', resolvedBy: 'staff-h01' });
    const audit = (await fx.app.inject({ url: `/api/alerts/${id}/audit`, headers: auth(s1) })).json() as Array<{ action: string }>;
    expect(audit.map((e) => e.action)).toEqual(['raised', 'acknowledged', 'confirmed', 'resolved']);
  });

  it('records care actions for residents of the own home only', async () => {
    const s1 = await fx.login('staff-h01');
    const ok = await fx.app.inject({ method: 'POST', url: '/api/residents/h01-p01/actions', headers: auth(s1), payload: { action: 'turned', observation: { consciousness: 'A' } } });
    expect(ok.statusCode).toBe(202);
    expect(fx.careActions).toEqual([expect.objectContaining({ residentId: 'h01-p01', homeId: 'h01', action: 'turned', by: 'staff-h01', observation: { consciousness: 'A' } })]);
    const other = await fx.app.inject({ method: 'POST', url: '/api/residents/h02-p01/actions', headers: auth(s1), payload: { action: 'turned' } });
    expect(other.statusCode).toBe(404);
    expect(other.json().code).toBe('RESIDENT_NOT_FOUND');
    const bad = await fx.app.inject({ method: 'POST', url: '/api/residents/h01-p01/actions', headers: auth(s1), payload: { action: 'danced' } });
    expect(bad.statusCode).toBe(400);
    expect(fx.careActions).toHaveLength(1);
  });

  it('serves the dashboard files and /health without a token, and nothing outside the directory', async () => {
    const index = await fx.app.inject({ url: '/' });
    expect(index.statusCode).toBe(200);
    expect(index.headers['content-type']).toContain('text/html');
    expect((await fx.app.inject({ url: '/js/main.js' })).headers['content-type']).toContain('javascript');
    expect((await fx.app.inject({ url: '/../package.json' })).statusCode).toBe(404);
    expect((await fx.app.inject({ url: '/%2e%2e/package.json' })).statusCode).toBe(404);
    expect((await fx.app.inject({ url: '/health' })).json()).toMatchObject({ status: 'ok' });
  });
});
