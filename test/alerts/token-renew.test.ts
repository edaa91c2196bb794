import { describe, expect, it } from 'vitest';
import { createTokenService, MAX_SESSION_MS } from '../../alerts/http/token.ts';

/** Renewal (POST /api/token/renew, docs/alerts.md "Sessions and logins"): what a renewed token may be. */
const SECRET = 'a-test-secret-of-at-least-32-characters';
const TTL_S = 12 * 3600;
const actor = { username: 'staff-h01', role: 'staff' as const, homeId: 'h01' };

describe('token renewal', () => {
  it('gives a fresh token for the same user, role and home, the old one untouched', () => {
    const t = createTokenService(SECRET, TTL_S);
    const login = t.issue(actor, 1_000_000);
    const r = t.renew(login.token, 1_000_000 + 7 * 3600_000)!;
    expect(r.token).not.toBe(login.token);
    expect(r.expiresAt).toBe(1_000_000 + 7 * 3600_000 + TTL_S * 1000);
    expect(t.verify(r.token, r.issuedAt)).toEqual(actor);
    expect(t.verify(login.token, r.issuedAt)).toEqual(actor);
  });

  it('refuses an expired, signed-out or forged token', () => {
    const t = createTokenService(SECRET, TTL_S);
    const login = t.issue(actor, 0);
    expect(t.renew(login.token, TTL_S * 1000)).toBeUndefined();
    const other = t.issue(actor, 0);
    t.revoke(other.token, 1);
    expect(t.renew(other.token, 2)).toBeUndefined();
    const forged = createTokenService('another-secret-of-at-least-32-characters!', TTL_S).issue({ ...actor, role: 'admin' as never }, 0);
    expect(t.renew(forged.token, 1)).toBeUndefined();
  });

  it('never extends a chain of renewals past MAX_SESSION_MS after the login', () => {
    const t = createTokenService(SECRET, TTL_S);
    let { token } = t.issue(actor, 0);
    let now = 0;
    let last: ReturnType<typeof t.renew>;
    // Renewed every 6 h, as a page does, for longer than the limit.
    for (; now < MAX_SESSION_MS + 24 * 3600_000; now += 6 * 3600_000) {
      last = t.renew(token, now);
      if (last === undefined) break;
      token = last.token;
      expect(last.expiresAt).toBeLessThanOrEqual(MAX_SESSION_MS);
      expect(last.sessionEndsAt).toBe(MAX_SESSION_MS);
    }
    expect(t.verify(token, MAX_SESSION_MS - 1)).toBeDefined();
    expect(t.verify(token, MAX_SESSION_MS)).toBeUndefined();
    expect(t.renew(token, MAX_SESSION_MS)).toBeUndefined();
  });
});
