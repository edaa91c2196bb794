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

  it("signing out any token of a login ends all its renewals, a copy renewed elsewhere too, and no other login's", () => {
    const t = createTokenService(SECRET, TTL_S);
    const login = t.issue(actor, 0);
    const desk = t.renew(login.token, 1_000)!; // the page's renewal
    const copy = t.renew(login.token, 2_000)!; // a copied token, renewed elsewhere
    const again = t.renew(copy.token, 3_000)!;
    const other = t.issue(actor, 3_000); // another desk's own login of the same account
    t.revoke(desk.token, 4_000);
    for (const tok of [login.token, desk.token, copy.token, again.token]) {
      expect(t.verify(tok, 5_000)).toBeUndefined();
      expect(t.renew(tok, 5_000)).toBeUndefined();
    }
    expect(t.verify(other.token, 5_000)).toEqual(actor);
    // Kept until every token of the login could have expired (none is renewed after it), and across a restart.
    expect(t.revocations(5_000).map((r) => r.exp)).toEqual([4_000 + TTL_S * 1000]);
    const restarted = createTokenService(SECRET, TTL_S);
    restarted.restore(t.revocations(5_000), 5_000);
    expect(restarted.verify(again.token, 6_000)).toBeUndefined();
    expect(restarted.verify(other.token, 5_000)).toEqual(actor);
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
