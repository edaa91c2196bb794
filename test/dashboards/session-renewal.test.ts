import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { homeReadings, startStack, type Stack } from './support/stack.ts';
import { launchChromium, logInAs } from './support/browser.ts';
import { RENEW_LIMIT } from '../../alerts/http/auth-routes.ts';

/**
 * A night shift outlasts a token (tokenTtlS, 12 h by default): the page renews its token while in
 * use and its socket carries on with the new one; and if a token ends anyway (renewals failing for
 * hours, the user disabled) the page keeps showing and sounding the alarms it has, signed out, with
 * the sign-in in its banner (docs/alerts.md "Sessions and logins"). Times move on the stack's manual
 * clock: 600 s tokens, so a renewal is due 300 s after it was issued, the warning shows in its last 150 s.
 */
const TTL_S = 600;
let stack: Stack;
let browser: Browser;
let ctx: BrowserContext;
let page: Page;

interface Hooks { refreshLive(): Promise<void>; socket: { id: string; connected: boolean }; socketToken(): string }
const hooks = (p: Page) => ({
  sync: () => p.evaluate(() => (window as unknown as { __carewatch: Hooks }).__carewatch.refreshLive()),
  socketId: () => p.evaluate(() => (window as unknown as { __carewatch: Hooks }).__carewatch.socket.id),
  socketToken: () => p.evaluate(() => (window as unknown as { __carewatch: Hooks }).__carewatch.socketToken()),
});
const session = (p: Page) => p.evaluate(() => JSON.parse(sessionStorage.getItem('cw.session') ?? 'null') as { token: string; expiresAt: number } | null);
const playing = (p: Page) => p.evaluate(() => (window as unknown as { __carewatchAudio: { playing: string | null } }).__carewatchAudio.playing);
const pinned = (p: Page) => p.locator('[data-testid="pinned-fire"]');
/** An alert's card or its incident's (issue 11: one card per incident). */
const shows = (p: Page, id: string) => p.locator(`:is([data-alert-id="${id}"], [data-alert-ids~="${id}"])`);
const alarmIds: string[] = [];

async function waitOpenFire(deviceId: string): Promise<string> {
  await expect.poll(() => stack.alerts.lifecycle.open().some((a) => a.deviceId === deviceId && a.category === 'fire')).toBe(true);
  return stack.alerts.lifecycle.open().find((a) => a.deviceId === deviceId && a.category === 'fire')!.id;
}

beforeAll(async () => {
  stack = await startStack({ tokenTtlS: TTL_S });
  await stack.writeLines(homeReadings('h01', stack.clock.now()));
  browser = await launchChromium();
  ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
  page = await ctx.newPage();
  page.on('pageerror', (err) => console.error('page error', err));
  await page.goto(stack.url);
  await logInAs(page, 'staff-h01');
}, 60_000);

afterAll(async () => {
  await ctx?.close().catch(() => {});
  await browser?.close();
  await stack?.close();
});

describe('a session that outlasts its token', () => {
  it('renews the token of a page in use, and its socket carries on with it past the old expiry', async () => {
    const mcp = await stack.device('h01-mcp-f1-corridor');
    await mcp.event('manual_call_point');
    alarmIds.push(await waitOpenFire('h01-mcp-f1-corridor'));
    await pinned(page).first().waitFor();
    await expect.poll(() => playing(page)).toBe('alarm');
    const first = (await session(page))!;
    const socketBefore = await hooks(page).socketId();
    // Past half the token's lifetime: the page (told the server's time by its poll) renews it.
    stack.clock.advance(350_000);
    await hooks(page).sync();
    await expect.poll(async () => (await session(page))?.token, { timeout: 10_000 }).not.toBe(first.token);
    const renewed = (await session(page))!;
    expect(renewed.expiresAt).toBeGreaterThan(first.expiresAt);
    // The open socket took the new token (no reconnect): the server will not cut it at the old expiry.
    await expect.poll(() => hooks(page).socketToken()).toBe(renewed.token);
    // Past the first token's expiry (it was never ended: a copied tab may hold it; it dies now).
    stack.clock.advance(250_000);
    expect((await fetch(`${stack.url}/api/me`, { headers: { authorization: `Bearer ${first.token}` } })).status).toBe(401);
    await hooks(page).sync();
    expect(await hooks(page).socketId()).toBe(socketBefore);
    expect(await page.getByTestId('conn-banner').getAttribute('data-state')).toBe('online');
    // Still live: a new alarm reaches the page over the same socket.
    const sd = await stack.device('h01-sd-r101');
    await sd.event('detector_alarm');
    const second = await waitOpenFire('h01-sd-r101');
    alarmIds.push(second);
    await expect.poll(() => shows(page, second).count()).toBeGreaterThan(0);
    expect(await playing(page)).toBe('alarm');
    await mcp.close();
    await sd.close();
  });

  it('warns before a token it cannot renew ends, then keeps its alarms shown and sounding, signed out', async () => {
    // The server unreachable for renewals (the rest still works, so the page hears its clock).
    await page.route('**/api/token/renew', (r) => r.abort());
    const current = (await session(page))!;
    // In the token's last quarter, its renewals failing: the banner says when it ends.
    stack.clock.advance(220_000);
    await hooks(page).sync();
    await page.getByTestId('conn-banner').getByTestId('session-warning').waitFor();
    expect((await session(page))!.token).toBe(current.token);
    const shown = await pinned(page).count();
    expect(shown).toBeGreaterThan(0);
    // Past its expiry: the server cuts the socket; the page must not go blank and silent.
    stack.clock.advance(140_000);
    await hooks(page).sync();
    await page.getByTestId('conn-banner').and(page.locator('[data-state="signed-out"]')).waitFor();
    expect(await pinned(page).count()).toBe(shown);
    for (const id of alarmIds) expect(await shows(page, id).count()).toBeGreaterThan(0);
    expect(await playing(page)).toBe('alarm');
    expect(await page.getByTestId('conn-banner').getByTestId('login-form').isVisible()).toBe(true);
    // Signing in again from the banner: live again, its alarms still shown.
    await page.unroute('**/api/token/renew');
    await logInAs(page, 'staff-h01');
    expect(await pinned(page).count()).toBe(shown);
    for (const id of alarmIds) expect(await shows(page, id).count()).toBeGreaterThan(0);
  });

  it('renews a session the page stored before it renewed tokens (no issuedAt: a desk open across the upgrade)', async () => {
    const c = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
    try {
      const p = await c.newPage();
      p.on('pageerror', (err) => console.error('page error', err));
      await p.goto(stack.url);
      await logInAs(p, 'staff-h01');
      // What the page before the upgrade kept: the login's answer, without issuedAt.
      await p.evaluate(() => {
        const s = JSON.parse(sessionStorage.getItem('cw.session')!) as Record<string, unknown>;
        delete s.issuedAt;
        delete s.previous;
        sessionStorage.setItem('cw.session', JSON.stringify(s));
      });
      await p.reload();
      await p.getByTestId('conn-banner').and(p.locator('[data-state="online"]')).waitFor();
      const old = (await session(p))!;
      expect(old).not.toHaveProperty('issuedAt');
      // Past half the token's life (before: "issued now" at every tick, never renewed, cut off at its expiry).
      stack.clock.advance(350_000);
      await hooks(p).sync();
      await expect.poll(async () => (await session(p))?.token, { timeout: 10_000 }).not.toBe(old.token);
      const renewed = (await session(p))!;
      expect(renewed.expiresAt).toBeGreaterThan(old.expiresAt);
      await expect.poll(() => hooks(p).socketToken()).toBe(renewed.token);
    } finally {
      await c.close().catch(() => {});
    }
  });

  it('signed out, an action it cannot take says so and takes the person to the sign-in', async () => {
    const c = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
    try {
      const p = await c.newPage();
      p.on('pageerror', (err) => console.error('page error', err));
      await p.goto(stack.url);
      await logInAs(p, 'staff-h01');
      const sd = await stack.device('h01-sd-r103');
      await sd.event('detector_alarm');
      const id = await waitOpenFire('h01-sd-r103');
      await sd.close();
      await shows(p, id).first().waitFor();
      // Signed out elsewhere (the server ends the token and cuts the page's socket): alarms kept, signed out.
      const token = (await session(p))!.token;
      expect((await fetch(`${stack.url}/api/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(204);
      const banner = p.getByTestId('conn-banner');
      await banner.and(p.locator('[data-state="signed-out"]')).waitFor();
      expect(await playing(p)).toBe('alarm');
      // Acknowledge: refused (401). Before, nothing at all happened (the 401 was taken to mean the login form showed).
      await p.getByTestId('btn-ack').first().click();
      await p.getByTestId('toast').filter({ hasText: '已退出登录 — 请先重新登录再操作' }).waitFor();
      await expect.poll(() => p.evaluate(() => {
        const el = document.activeElement;
        return el?.closest('[data-testid="conn-banner"]') ? el.getAttribute('data-testid') : null;
      })).toBe('login-username');
      // Nothing was done: the incident is still waiting, and still sounding.
      expect(stack.alerts.lifecycle.open().find((a) => a.id === id)?.acknowledgedAt).toBeUndefined();
      expect(await playing(p)).toBe('alarm');
    } finally {
      await c.close().catch(() => {});
    }
  });

  it('renews only a valid token, for the same user, and not without limit', async () => {
    const login = async (username: string): Promise<string> => {
      const res = await fetch(`${stack.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: `demo-${username}` }) });
      return ((await res.json()) as { token: string }).token;
    };
    const renew = (token: string) => fetch(`${stack.url}/api/token/renew`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    const me = async (token: string) => (await (await fetch(`${stack.url}/api/me`, { headers: { authorization: `Bearer ${token}` } })).json()) as { username: string; role: string; homeId?: string };
    const token = await login('staff-h02');
    const res = await renew(token);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; expiresAt: number; issuedAt: number; sessionEndsAt: number };
    expect(body.token).not.toBe(token);
    expect(body.expiresAt).toBe(stack.clock.now() + TTL_S * 1000);
    expect(body.sessionEndsAt).toBeGreaterThan(body.expiresAt);
    expect(await me(body.token)).toMatchObject({ username: 'staff-h02', role: 'staff', homeId: 'h02' });
    // Rate-limited per user and address, as the other auth routes.
    for (let i = 1; i < RENEW_LIMIT.perWindow; i++) expect((await renew(token)).status).toBe(200);
    const limited = await renew(token);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    stack.clock.advance(RENEW_LIMIT.windowMs);
    // A signed-out token is not renewed.
    expect((await fetch(`${stack.url}/api/logout`, { method: 'POST', headers: { authorization: `Bearer ${body.token}` } })).status).toBe(204);
    expect((await renew(body.token)).status).toBe(401);
    // Nor an expired one.
    stack.clock.advance(TTL_S * 1000);
    expect((await renew(token)).status).toBe(401);
    expect((await renew('not-a-token')).status).toBe(401);
  });
});
