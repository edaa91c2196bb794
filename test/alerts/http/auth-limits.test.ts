import { describe, expect, it } from 'vitest';
import { appFixture } from '../support/app-fixture.ts';

/** Login throttling (docs/alerts.md "Login limits"): counts and codes, never timings. */
const login = (fx: ReturnType<typeof appFixture>, username: string, password: string, ip = '10.0.0.1') =>
  fx.app.inject({ method: 'POST', url: '/api/login', payload: { username, password }, remoteAddress: ip });

describe('login limits', () => {
  it('throttles a username from one address after 5 wrong passwords, with back-off, and never locks the username', async () => {
    const fx = appFixture();
    for (let i = 0; i < 5; i++) expect((await login(fx, 'staff-h01', 'wrong', '10.0.0.1')).statusCode).toBe(401);
    const throttled = await login(fx, 'staff-h01', 'demo-staff-h01', '10.0.0.1');
    expect(throttled.statusCode).toBe(429);
    expect(throttled.json()).toMatchObject({ code: 'AUTH_RATE_LIMITED' });
    expect(Number(throttled.headers['retry-after'])).toBe(1);
    expect((await login(fx, 'staff-h01', 'demo-staff-h01', '10.0.0.9')).statusCode).toBe(200); // another address: at once
    fx.clock.advance(1_000);
    expect((await login(fx, 'staff-h01', 'wrong', '10.0.0.1')).statusCode).toBe(401); // checked again, wrong again
    expect(Number((await login(fx, 'staff-h01', 'wrong', '10.0.0.1')).headers['retry-after'])).toBe(2); // doubled
    fx.clock.advance(2_000);
    expect((await login(fx, 'staff-h01', 'demo-staff-h01', '10.0.0.1')).statusCode).toBe(200); // the back-off has passed
  });

  it('throttles a client address after too many failures across usernames', async () => {
    const fx = appFixture({ loginLimits: { ipFreeFailures: 3 } });
    for (const u of ['nobody-1', 'nobody-2', 'nobody-3']) expect((await login(fx, u, 'x', '192.0.2.7')).statusCode).toBe(401);
    expect((await login(fx, 'staff-h01', 'demo-staff-h01', '192.0.2.7')).json()).toMatchObject({ code: 'AUTH_RATE_LIMITED' });
    expect((await login(fx, 'staff-h01', 'demo-staff-h01', '192.0.2.8')).statusCode).toBe(200);
  });

  it('answers 503 AUTH_BUSY beyond the concurrent verifications and their queue', async () => {
    const fx = appFixture({ loginLimits: { maxConcurrent: 1, maxQueued: 1 } });
    const all = await Promise.all(Array.from({ length: 6 }, (_, i) => login(fx, `nobody-${i}`, 'x', `198.51.100.${i + 1}`)));
    const codes = all.map((r) => r.statusCode);
    expect(codes.filter((c) => c === 503).length).toBeGreaterThan(0);
    expect(codes.filter((c) => c !== 503).every((c) => c === 401)).toBe(true);
    // At most one running and one queued: the other four could not have been taken.
    expect(codes.filter((c) => c === 401).length).toBeLessThanOrEqual(2);
    expect(all.find((r) => r.statusCode === 503)?.json()).toMatchObject({ code: 'AUTH_BUSY' });
  });
});
