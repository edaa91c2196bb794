import { describe, expect, it } from 'vitest';
import { appFixture } from '../alerts/support/app-fixture.ts';

/**
 * Issue 12 part 3: guessing a nurse's password must not keep her off the page. Throttling is per
 * (username, client address) and per address, with back-off (OWASP Authentication Cheat Sheet);
 * the attacker gets 429 AUTH_RATE_LIMITED with Retry-After, the duty desk gets in at once.
 * Time is the fixture's manual clock.
 */
type Fx = ReturnType<typeof appFixture>;
const ATTACKER = '203.0.113.66';
const DUTY_DESK = '198.51.100.20';
const login = (fx: Fx, username: string, password: string, ip: string) =>
  fx.app.inject({ method: 'POST', url: '/api/login', payload: { username, password }, remoteAddress: ip });

describe('web login under a password-guessing attack', () => {
  it('slows the attacker with growing Retry-After while staff-h01 logs in at once from the duty desk', async () => {
    const fx = appFixture();
    const statuses: number[] = [];
    const retryAfter: number[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await login(fx, 'staff-h01', `guess-${i}`, ATTACKER);
      statuses.push(r.statusCode);
      if (r.statusCode === 429) {
        expect(r.json()).toMatchObject({ code: 'AUTH_RATE_LIMITED' });
        const wait = Number(r.headers['retry-after']);
        expect(wait).toBeGreaterThanOrEqual(1);
        retryAfter.push(wait);
        fx.clock.advance(wait * 1000); // a patient attacker waits exactly as long as told
      } else expect(r.json()).toMatchObject({ code: 'AUTH_INVALID_CREDENTIALS' });
      if (i % 10 === 9) {
        // The real staff-h01, at the duty desk, in the middle of the attack: in at once.
        const real = await login(fx, 'staff-h01', 'demo-staff-h01', DUTY_DESK);
        expect(real.statusCode).toBe(200);
      }
    }
    // 5 free wrong answers, then every other request is a 429 telling how long to wait.
    expect(statuses.slice(0, 6)).toEqual([401, 401, 401, 401, 401, 429]);
    expect(statuses.filter((s) => s === 401).length).toBeLessThan(statuses.filter((s) => s === 429).length + 6);
    // Each wait doubles: 1, 2, 4, … s (capped at 15 min).
    for (let i = 1; i < retryAfter.length; i++) expect(retryAfter[i]).toBe(Math.min(900, 2 * (retryAfter[i - 1] ?? 0)));
    expect(retryAfter[0]).toBe(1);
  });

  it('does not check a password while throttled, so a throttled guess tells nothing', async () => {
    const fx = appFixture();
    for (let i = 0; i < 5; i++) await login(fx, 'staff-h01', 'wrong', ATTACKER);
    const right = await login(fx, 'staff-h01', 'demo-staff-h01', ATTACKER);
    expect(right.statusCode).toBe(429);
    expect(right.headers['retry-after']).toBe('1');
  });

  it('never locks the username itself: failures from 4 addresses leave the duty desk unaffected', async () => {
    const fx = appFixture();
    for (let a = 1; a <= 4; a++) for (let i = 0; i < 5; i++) expect((await login(fx, 'staff-h01', 'wrong', `192.0.2.${a}`)).statusCode).toBe(401);
    expect((await login(fx, 'staff-h01', 'demo-staff-h01', DUTY_DESK)).statusCode).toBe(200);
  });

  it('lets staff-h01 back in from the attacker’s address once its back-off has passed', async () => {
    const fx = appFixture();
    for (let i = 0; i < 5; i++) await login(fx, 'staff-h01', 'wrong', ATTACKER);
    fx.clock.advance(1_000);
    expect((await login(fx, 'staff-h01', 'demo-staff-h01', ATTACKER)).statusCode).toBe(200);
  });
});
