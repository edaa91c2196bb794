import { describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { appFixture } from '../alerts/support/app-fixture.ts';

/** Issue 12 part 4: security headers (@fastify/helmet) on pages, API replies and error replies. */
function expectSecurityHeaders(r: LightMyRequestResponse): void {
  const csp = String(r.headers['content-security-policy']);
  expect(csp).toContain("default-src 'self'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toContain("object-src 'none'");
  expect(csp).not.toContain('unsafe-inline');
  expect(csp).not.toContain('unsafe-eval');
  expect(r.headers['x-content-type-options']).toBe('nosniff');
  expect(r.headers['referrer-policy']).toBe('no-referrer');
  expect(r.headers['x-frame-options']).toBe('DENY');
}

describe('security headers', () => {
  it('are on the page and its scripts', async () => {
    const fx = appFixture();
    for (const url of ['/', '/js/main.js', '/style.css']) {
      const r = await fx.app.inject({ url });
      expect(r.statusCode).toBe(200);
      expectSecurityHeaders(r);
    }
  });

  it('are on API replies', async () => {
    const fx = appFixture();
    const token = await fx.login('staff-h01');
    const r = await fx.app.inject({ url: '/api/alerts', headers: { authorization: `Bearer ${token}` } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expectSecurityHeaders(r);
    expectSecurityHeaders(await fx.app.inject({ url: '/health' }));
  });

  it('are on error replies: 401, 400, 404, 429', async () => {
    const fx = appFixture();
    const unauthorised = await fx.app.inject({ url: '/api/alerts' });
    expect(unauthorised.statusCode).toBe(401);
    expectSecurityHeaders(unauthorised);
    const bad = await fx.app.inject({ method: 'POST', url: '/api/login', payload: { username: 'x' } });
    expect(bad.statusCode).toBe(400);
    expectSecurityHeaders(bad);
    const missing = await fx.app.inject({ url: '/no/such/file.js' });
    expect(missing.statusCode).toBe(404);
    expectSecurityHeaders(missing);
    for (let i = 0; i < 5; i++) await fx.app.inject({ method: 'POST', url: '/api/login', payload: { username: 'staff-h01', password: 'x' } });
    const throttled = await fx.app.inject({ method: 'POST', url: '/api/login', payload: { username: 'staff-h01', password: 'x' } });
    expect(throttled.statusCode).toBe(429);
    expectSecurityHeaders(throttled);
  });
});
