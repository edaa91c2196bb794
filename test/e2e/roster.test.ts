import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile, copyFile, mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { USER_COST, hashSecret } from '../../common/secrets.ts';
import type { IncidentMessage } from '../../contract/incidents.ts';
import type { Roster, SiteRegistry } from '../../contract/registry.ts';
import { expectNoSidewaysScroll, launchChromium, logInAs, screenshotDir, smallTargets } from '../dashboards/support/browser.ts';
import { testInflux } from '../support/influx-db.ts';
import { eventually } from '../support/process.ts';
import { DEMO_SITE_PATH } from '../support/registry.ts';
import { device, login, startStack, type Stack, type TestDevice } from './stack.ts';

/**
 * Issue 15, on-call rosters in the page, across real processes (broker, ingest, alerts, simulator,
 * each from its main.ts, on a registry of this test's own: the demo site plus rosters for h01/h02,
 * the bureau's contacts and a manager login for provider pv01) and a real Chromium at phone size:
 *
 * - the roster API's authorization for every role, the provider roster, and the audit kept across
 *   a restart of the alerts process;
 * - duty staff see who is on duty now and next, the directors and the bureau's contacts;
 * - the director edits the roster in the page (validation errors said clearly, the server's own
 *   refusal shown) and sees the change history; the provider's manager edits the provider's roster;
 * - a message's link (`/?incident=<id>`, from a real webhook delivery) opened cold on a phone leads
 *   through the login form to the incident, whose card says who was notified.
 *
 * Shifts are laid out around the wall-clock hour at the start (day shift from two hours before to
 * three after, night shift the rest), so who is on duty does not depend on when the test runs.
 */
const DOC_SHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));
/** The phone set to a zone other than the homes' (a director travelling): the roster still speaks the home's time. */
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true, locale: 'zh-CN', timezoneId: 'America/New_York' } as const;
const SECRET = 'roster-e2e-webhook-secret-0123456789';

const hh = (h: number): string => `${String(((h % 24) + 24) % 24).padStart(2, '0')}:00`;

function rosters(): { h01: Roster; h02: Roster; day: { start: string; end: string } } {
  // Shanghai has no daylight saving: local hour = UTC + 8.
  const hour = (new Date().getUTCHours() + 8) % 24;
  const day = { start: hh(hour - 2), end: hh(hour + 3) };
  const all = [1, 2, 3, 4, 5, 6, 7];
  const h01: Roster = {
    homeId: 'h01',
    timezone: 'Asia/Shanghai',
    people: [
      { id: 'nurse-li', name: '李护士', role: '护士', phone: '13800000001', addresses: { duty: 'li' } },
      { id: 'nurse-wang', name: '王护士', role: '护士', phone: '13800000002', addresses: { duty: 'wang' } },
    ],
    shifts: [
      { id: 'day', name: '白班', days: all, start: day.start, end: day.end, people: ['nurse-li'] },
      { id: 'night', name: '夜班', days: all, start: day.end, end: day.start, people: ['nurse-wang'] },
    ],
    directors: [{ id: 'dir-zhang', name: '张院长', role: '院长', phone: '13800000009', addresses: { duty: 'zhang' } }],
  };
  const h02: Roster = { ...h01, homeId: 'h02', directors: [{ id: 'dir-zhao', name: '赵院长', role: '院长' }] };
  return { h01, h02, day };
}

describe('on-call rosters in the page (issue 15)', () => {
  const { url, database } = testInflux('e2e_roster');
  const fixture = rosters();
  let stack: Stack;
  let browser: Browser;
  let shots: string;
  let receiver: Server;
  const delivered: Array<{ incidentId: string; link: string; recipients: Array<{ personId: string }> }> = [];
  const contexts: BrowserContext[] = [];
  const devices: TestDevice[] = [];
  const pageErrors: string[] = [];
  const tokens = new Map<string, string>();

  const token = async (username: string): Promise<string> => {
    let t = tokens.get(username);
    if (t === undefined) {
      t = (await login(stack.httpUrl, username)).token;
      tokens.set(username, t);
    }
    return t;
  };
  const call = async (username: string | null, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const headers: Record<string, string> = {};
    if (username !== null) headers.authorization = `Bearer ${await token(username)}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${stack.httpUrl}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const shoot = async (page: Page, name: string, fullPage = false): Promise<void> => {
    const path = join(shots, `${name}.png`);
    await page.screenshot({ path, fullPage });
    if (process.env.CAREWATCH_DOC_SHOTS === '1') {
      await mkdir(DOC_SHOTS, { recursive: true });
      await copyFile(path, join(DOC_SHOTS, `${name}.png`));
    }
  };
  const newPage = async (name: string): Promise<Page> => {
    const ctx = await browser.newContext({ ...PHONE, baseURL: stack.httpUrl });
    // Generous bounds: two cores shared by many test runs (no time is asserted).
    ctx.setDefaultTimeout(60_000);
    contexts.push(ctx);
    const page = await ctx.newPage();
    page.on('pageerror', (err) => pageErrors.push(`[${name}] ${err.message}`));
    return page;
  };
  const submitLogin = (page: Page, username: string): Promise<void> => logInAs(page, username, { tap: true });
  const noSidewaysScroll = expectNoSidewaysScroll;
  const logIn = async (page: Page, username: string, path = '/'): Promise<void> => {
    await page.goto(path);
    await submitLogin(page, username);
  };
  const CONTROLS = 'button, select, a.btn, label.check, input:not([type="checkbox"])';

  beforeAll(async () => {
    // A local receiver for the webhook channel: what a message carries (its link) is what a phone opens.
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        try {
          delivered.push(JSON.parse(body) as (typeof delivered)[number]);
        } catch {
          // not JSON: not ours
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const port = (receiver.address() as { port: number }).port;

    const dir = await mkdtemp(join(tmpdir(), 'carewatch-roster-e2e-'));
    const site = JSON.parse(await readFile(DEMO_SITE_PATH, 'utf8')) as SiteRegistry;
    const registryPath = join(dir, 'site.json');
    await writeFile(registryPath, JSON.stringify({
      ...site,
      rosters: [...(site.rosters ?? []).filter((r) => r.homeId !== 'h01' && r.homeId !== 'h02'), fixture.h01, fixture.h02],
      contacts: { bureau: [{ id: 'officer-chen', name: '陈科长', role: '民政局值班', phone: '13900000000' }] },
      // pv01's manager signs in: a provider user whose username is a manager's id in the registry
      // (the demo site has one; set here so the test does not depend on it).
      users: [...site.users.filter((u) => u.username !== 'pv01-manager'), { username: 'pv01-manager', displayName: '安心站长', role: 'provider', providerId: 'pv01', passwordHash: hashSecret('demo-pv01-manager', USER_COST), demoSecret: true }],
      providers: (site.providers ?? []).map((p) => (p.id === 'pv01' ? { ...p, managers: [...p.managers.filter((m) => m.id !== 'pv01-manager'), { id: 'pv01-manager', name: '安心站长', role: 'manager', phone: '13700000009' }] } : p)),
    }));
    stack = await startStack({
      influxUrl: url,
      database,
      homes: ['h03'],
      registryPath,
      alertsEnv: (httpUrl) => {
        const path = join(dir, 'notify.json');
        // Written synchronously before the process starts (it reads the file once at start). No rate limit to
        // speak of: the comm-loss incidents of h01/h02 (their other devices are silent) must not queue the fire behind them.
        const config = {
          baseUrl: httpUrl,
          channels: [{ id: 'duty', type: 'webhook', url: `http://127.0.0.1:${port}/duty`, secret: SECRET, policy: { maxAttempts: 2, baseDelayMs: 100, ratePerMin: 6000, burst: 1000 } }],
          routes: [{ severities: ['critical', 'high'], level: 0, channels: ['duty'] }],
        };
        writeFileSync(path, JSON.stringify(config));
        return { CAREWATCH_NOTIFY_CONFIG: path };
      },
    });
    browser = await launchChromium();
    shots = await screenshotDir();
  }, 180_000);

  afterAll(async () => {
    for (const d of devices) await d.close().catch(() => undefined);
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await stack?.close();
    await new Promise((resolve) => receiver?.close(resolve));
  }, 120_000);

  it('the roster API: every role may read and edit exactly what the policy says; the provider manager edits only its provider; the audit survives a restart', async () => {
    // Reading a home's roster: its own people, the bureau and admins; another home's answers 404.
    const read = async (who: string, path: string): Promise<[number, unknown]> => {
      const r = await call(who, 'GET', path);
      return [r.status, r.status === 200 ? r.json.canEdit : r.json.code];
    };
    expect(await read('staff-h01', '/api/homes/h01/roster')).toEqual([200, false]);
    expect(await read('director-h01', '/api/homes/h01/roster')).toEqual([200, true]);
    expect(await read('director-h02', '/api/homes/h01/roster')).toEqual([404, 'HOME_NOT_FOUND']);
    expect(await read('bureau', '/api/homes/h01/roster')).toEqual([200, false]);
    expect(await read('admin', '/api/homes/h01/roster')).toEqual([200, true]);
    expect(await read('provider-pv01', '/api/homes/h01/roster')).toEqual([404, 'HOME_NOT_FOUND']);
    expect(await read('pv01-manager', '/api/homes/h01/roster')).toEqual([404, 'HOME_NOT_FOUND']);
    // The provider's roster: its users, the bureau, admins; only its manager (and admins) may edit.
    expect(await read('provider-pv01', '/api/providers/pv01/roster')).toEqual([200, false]);
    expect(await read('pv01-manager', '/api/providers/pv01/roster')).toEqual([200, true]);
    expect(await read('provider-pv02', '/api/providers/pv01/roster')).toEqual([404, 'PROVIDER_NOT_FOUND']);
    expect(await read('staff-h01', '/api/providers/pv01/roster')).toEqual([404, 'PROVIDER_NOT_FOUND']);
    expect(await read('director-h01', '/api/providers/pv01/roster')).toEqual([404, 'PROVIDER_NOT_FOUND']);
    expect(await read('bureau', '/api/providers/pv01/roster')).toEqual([200, false]);
    expect(await read('admin', '/api/providers/pv01/roster')).toEqual([200, true]);
    expect(await read('pv01-manager', '/api/providers/pv02/roster')).toEqual([404, 'PROVIDER_NOT_FOUND']);
    expect((await call(null, 'GET', '/api/providers/pv01/roster')).status).toBe(401);

    // The view carries who is on duty now and next, and the bureau's contacts.
    const view = (await call('staff-h01', 'GET', '/api/homes/h01/roster')).json as { duty: { now: Array<{ shiftId: string; people: string[] }>; next: { shiftId: string; people: string[] } }; bureau: Array<{ id: string }> };
    expect(view.duty.now).toEqual([{ shiftId: 'day', people: ['nurse-li'] }]);
    expect(view.duty.next).toMatchObject({ shiftId: 'night', people: ['nurse-wang'] });
    expect(view.bureau.map((p) => p.id)).toEqual(['officer-chen']);

    // Editing a home's roster.
    const h01 = { ...fixture.h01, people: [...fixture.h01.people, { id: 'nurse-zhou', name: '周护士', role: '护士' }] };
    const put = async (who: string, path: string, body: unknown): Promise<[number, unknown]> => {
      const r = await call(who, 'PUT', path, body);
      return [r.status, r.status === 200 ? 'ok' : r.json.code];
    };
    expect(await put('staff-h01', '/api/homes/h01/roster', h01)).toEqual([403, 'AUTH_FORBIDDEN']);
    expect(await put('director-h02', '/api/homes/h01/roster', h01)).toEqual([404, 'HOME_NOT_FOUND']);
    expect(await put('bureau', '/api/homes/h01/roster', h01)).toEqual([403, 'AUTH_FORBIDDEN']);
    expect(await put('provider-pv01', '/api/homes/h01/roster', h01)).toEqual([404, 'HOME_NOT_FOUND']);
    expect(await put('pv01-manager', '/api/homes/h01/roster', h01)).toEqual([404, 'HOME_NOT_FOUND']);
    expect(await put('admin', '/api/homes/h02/roster', fixture.h02)).toEqual([200, 'ok']);
    expect(await put('director-h01', '/api/homes/h01/roster', h01)).toEqual([200, 'ok']);
    // A household's own roster is not the provider manager's to replace (only the provider's roster is).
    const hhRoster = { ...fixture.h01, homeId: 'hh01' };
    expect(await put('pv01-manager', '/api/homes/hh01/roster', hhRoster)).toEqual([403, 'AUTH_FORBIDDEN']);

    // Editing the provider's roster.
    const pv01 = (await call('pv01-manager', 'GET', '/api/providers/pv01/roster')).json.roster as { providerId: string; people: Array<{ id: string; name: string; role: string }>; shifts: Array<{ id: string; people: string[] }>; managers: unknown[]; timezone: string };
    const edited = { ...pv01, people: [...pv01.people, { id: 'carer-sun', name: '孙护理员', role: '护理员' }], shifts: pv01.shifts.map((s, k) => (k === 0 ? { ...s, people: [...s.people, 'carer-sun'] } : s)) };
    expect(await put('provider-pv01', '/api/providers/pv01/roster', edited)).toEqual([403, 'AUTH_FORBIDDEN']);
    expect(await put('provider-pv02', '/api/providers/pv01/roster', edited)).toEqual([404, 'PROVIDER_NOT_FOUND']);
    expect(await put('staff-h01', '/api/providers/pv01/roster', edited)).toEqual([404, 'PROVIDER_NOT_FOUND']);
    expect(await put('director-h01', '/api/providers/pv01/roster', edited)).toEqual([404, 'PROVIDER_NOT_FOUND']);
    expect(await put('bureau', '/api/providers/pv01/roster', edited)).toEqual([403, 'AUTH_FORBIDDEN']);
    expect(await put('pv01-manager', '/api/providers/pv02/roster', { ...edited, providerId: 'pv02' })).toEqual([404, 'PROVIDER_NOT_FOUND']);
    expect(await put('pv01-manager', '/api/providers/pv01/roster', { ...edited, providerId: 'pv02' })).toEqual([400, 'ROSTER_INVALID']);
    const unknown = await call('pv01-manager', 'PUT', '/api/providers/pv01/roster', { ...edited, shifts: [{ ...edited.shifts[0], people: ['nobody'] }] });
    expect([unknown.status, unknown.json.code]).toEqual([400, 'ROSTER_INVALID']);
    expect(unknown.json.message).toContain('unknown person nobody');
    expect(await put('pv01-manager', '/api/providers/pv01/roster', edited)).toEqual([200, 'ok']);
    expect(await put('admin', '/api/providers/pv01/roster', edited)).toEqual([200, 'ok']);

    // A household of the provider now uses the edited roster (what its notifier reads).
    const household = (await call('provider-pv01', 'GET', '/api/homes/hh01/roster')).json as { roster: Roster };
    expect(household.roster.people.map((p) => p.id)).toContain('carer-sun');

    // The audit: who changed what, when; kept on disk across a restart of the alerts process.
    const trail = async (who: string, path: string): Promise<Array<{ seq: number; by: string; changes: string[] }>> => (await call(who, 'GET', path)).json.audit as Array<{ seq: number; by: string; changes: string[] }>;
    const providerTrail = await trail('bureau', '/api/providers/pv01/roster');
    expect(providerTrail.map((e) => [e.seq, e.by])).toEqual([[1, 'pv01-manager'], [2, 'admin']]);
    expect(providerTrail[0]?.changes).toContain('person carer-sun added: 孙护理员 (护理员)');
    expect(providerTrail[1]?.changes).toEqual(['no change']);
    const homeTrail = await trail('staff-h01', '/api/homes/h01/roster');
    expect(homeTrail.map((e) => [e.seq, e.by, e.changes])).toEqual([[1, 'director-h01', ['person nurse-zhou added: 周护士 (护士)']]]);

    await stack.restartAlerts();
    tokens.clear();
    expect((await trail('bureau', '/api/providers/pv01/roster')).map((e) => [e.seq, e.by])).toEqual([[1, 'pv01-manager'], [2, 'admin']]);
    expect((await trail('director-h01', '/api/homes/h01/roster')).map((e) => e.by)).toEqual(['director-h01']);
    const after = (await call('provider-pv01', 'GET', '/api/providers/pv01/roster')).json as { roster: { people: Array<{ id: string }> } };
    expect(after.roster.people.map((p) => p.id)).toContain('carer-sun');
    // Back to the fixture for the page tests below.
    expect(await put('director-h01', '/api/homes/h01/roster', fixture.h01)).toEqual([200, 'ok']);
  }, 180_000);

  it('duty staff see on a phone who is on duty now and next, the director and the bureau, and may not edit', async () => {
    const page = await newPage('staff');
    await logIn(page, 'staff-h01');
    await page.getByTestId('roster-open').tap();
    const screen = page.getByTestId('roster-screen');
    await screen.getByTestId('roster-duty').waitFor();
    expect(await page.locator('main#view').isVisible()).toBe(false);
    expect(await screen.getByTestId('duty-now-person').evaluateAll((els) => els.map((e) => e.getAttribute('data-person-id')))).toEqual(['nurse-li']);
    expect(await screen.getByTestId('duty-now-person').textContent()).toContain('李护士');
    expect(await screen.getByTestId('duty-now-person').getByTestId('call').getAttribute('href')).toBe('tel:13800000001');
    expect(await screen.getByTestId('duty-next').getAttribute('data-shift-id')).toBe('night');
    // Said in the home's time (Asia/Shanghai), not the phone's: the night shift starts at its own HH:MM.
    expect(await screen.getByTestId('duty-next-when').textContent()).toContain(fixture.day.end);
    expect(await screen.getByTestId('duty-next-person').getAttribute('data-person-id')).toBe('nurse-wang');
    expect(await screen.getByTestId('director-contact').textContent()).toContain('张院长');
    expect(await screen.getByTestId('bureau-contact').textContent()).toContain('陈科长');
    await screen.getByTestId('roster-history').waitFor();
    // Staff read only: no edit form offered.
    expect(await screen.getByTestId('roster-edit').count()).toBe(0);
    await screen.getByTestId('roster-read-only').waitFor();
    expect(await smallTargets(screen.locator(CONTROLS))).toEqual([]);
    await noSidewaysScroll(page);
    await shoot(page, 'phone-roster');
    // Back to the live view.
    await screen.getByTestId('roster-back').tap();
    await page.locator('main#view').waitFor({ state: 'visible' });
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('the director edits the roster on a phone: errors are said clearly, the save goes through the API, the history shows who changed what', async () => {
    const page = await newPage('director');
    await logIn(page, 'director-h01');
    await page.getByTestId('roster-open').tap();
    const screen = page.getByTestId('roster-screen');
    await screen.getByTestId('roster-edit').tap();
    const form = screen.getByTestId('roster-form');
    await form.waitFor();
    // A new night nurse, with a mistyped phone number and no name yet.
    await form.getByTestId('person-add').tap();
    const row = form.getByTestId('person-row').last();
    await row.getByTestId('person-row-id').fill('nurse-chen');
    await row.getByTestId('person-row-phone').fill('138-0000');
    await form.getByTestId('roster-save').tap();
    const errors = form.getByTestId('roster-errors');
    await errors.waitFor();
    const said = await errors.getByTestId('roster-error').allTextContents();
    expect(said.some((e) => e.includes('姓名不能为空'))).toBe(true);
    expect(said.some((e) => e.includes('电话号码格式不对'))).toBe(true);
    // Nothing was sent: the server still has the fixture.
    expect(((await call('director-h01', 'GET', '/api/homes/h01/roster')).json.roster as Roster).people).toHaveLength(2);
    await row.getByTestId('person-row-name').fill('陈护士');
    await row.getByTestId('person-row-phone').fill('13800000003');
    await row.getByTestId('person-row-name').blur();
    // On the night shift.
    const night = form.getByTestId('shift-row').nth(1);
    await night.getByTestId('shift-person-nurse-chen').check();
    // The server's own refusal is shown too: a time zone no browser check knows.
    await form.getByTestId('roster-timezone').fill('Mars/Olympus');
    await form.getByTestId('roster-save').tap();
    await expect.poll(() => errors.textContent()).toContain('ROSTER_INVALID');
    expect(await errors.textContent()).toContain('unknown time zone Mars/Olympus');
    expect(await smallTargets(form.locator(CONTROLS))).toEqual([]);
    await noSidewaysScroll(page);
    // The form's top, with the refusal, for docs/phone.md.
    await page.evaluate(() => window.scrollTo(0, (document.querySelector('[data-testid="roster-form"]')?.getBoundingClientRect().top ?? 0) + window.scrollY - 100));
    await shoot(page, 'phone-roster-edit');
    await form.getByTestId('roster-timezone').fill('Asia/Shanghai');
    await form.getByTestId('roster-save').tap();
    await screen.getByTestId('roster-duty').waitFor();

    const saved = (await call('staff-h01', 'GET', '/api/homes/h01/roster')).json as { roster: Roster; audit: Array<{ by: string; changes: string[] }> };
    expect(saved.roster.people.find((p) => p.id === 'nurse-chen')).toEqual({ id: 'nurse-chen', name: '陈护士', role: '护士', phone: '13800000003' });
    expect(saved.roster.shifts.find((s) => s.id === 'night')?.people).toEqual(['nurse-wang', 'nurse-chen']);
    // Channel addresses the form does not show are kept.
    expect(saved.roster.people.find((p) => p.id === 'nurse-li')?.addresses).toEqual({ duty: 'li' });
    const last = saved.audit.at(-1);
    expect(last?.by).toBe('director-h01');
    // The page shows the same history, newest first.
    const top = screen.getByTestId('history-entry').first();
    expect(await top.getAttribute('data-by')).toBe('director-h01');
    expect(await top.getByTestId('history-change').allTextContents()).toEqual(last?.changes);
    expect(last?.changes).toContain('person nurse-chen added: 陈护士 (护士, 13800000003)');
    expect(await screen.getByTestId('duty-next-person').evaluateAll((els) => els.map((e) => e.getAttribute('data-person-id')))).toEqual(['nurse-wang', 'nurse-chen']);
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it("the provider's manager edits the provider's roster in the page; its caregiver may only read it", async () => {
    const carer = await newPage('carer');
    await logIn(carer, 'provider-pv01');
    await carer.getByTestId('roster-open').tap();
    await carer.getByTestId('roster-screen').getByTestId('roster-read-only').waitFor();
    expect(await carer.getByTestId('roster-screen').getByTestId('roster-edit').count()).toBe(0);

    const manager = await newPage('manager');
    await logIn(manager, 'pv01-manager');
    await manager.getByTestId('roster-open').tap();
    const screen = manager.getByTestId('roster-screen');
    await screen.getByTestId('roster-edit').tap();
    const form = screen.getByTestId('roster-form');
    const firstShift = form.getByTestId('shift-row').first();
    // Sunday off for the first shift.
    await firstShift.getByTestId('shift-day-7').uncheck();
    await form.getByTestId('roster-save').tap();
    await screen.getByTestId('roster-duty').waitFor();
    const v = (await call('bureau', 'GET', '/api/providers/pv01/roster')).json as { roster: { shifts: Array<{ days: number[] }> }; audit: Array<{ by: string; changes: string[] }> };
    expect(v.roster.shifts[0]?.days).not.toContain(7);
    expect(v.audit.at(-1)?.by).toBe('pv01-manager');
    expect(await screen.getByTestId('history-entry').first().getAttribute('data-by')).toBe('pv01-manager');
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it("a message's link opened cold on a phone leads through the login form to the incident, whose card says who was notified", async () => {
    const mcp = await device(stack.mqttUrl, 'h01-mcp-f1-corridor');
    devices.push(mcp);
    await mcp.event('manual_call_point');
    const staffToken = await token('staff-h01');
    const fire = await eventually('the fire incident', async () => {
      const res = await fetch(`${stack.httpUrl}/api/incidents?homeId=h01`, { headers: { authorization: `Bearer ${staffToken}` } });
      return ((await res.json()) as IncidentMessage[]).find((i) => i.kind === 'fire' && i.state !== 'resolved');
    }, 60_000);
    // The duty nurse's message, delivered to the webhook receiver.
    const message = await eventually('the duty message', () => delivered.find((m) => m.incidentId === fire.id), 60_000).catch(async (err: unknown) => {
      const full = (await call('staff-h01', 'GET', `/api/incidents/${encodeURIComponent(fire.id)}`)).json;
      throw new Error(`${String(err)}; audit: ${JSON.stringify(full.audit)}; delivered: ${JSON.stringify(delivered.map((d) => d.incidentId))}`);
    });
    expect(message.recipients.map((r) => r.personId)).toEqual(['nurse-li']);
    expect(message.link).toBe(`${stack.httpUrl}/?incident=${encodeURIComponent(fire.id)}`);

    // Opened cold (a new browser context: no session), as a tap in an SMS app does.
    const page = await newPage('link');
    await page.goto(message.link);
    await page.getByTestId('login-form').waitFor();
    expect(await page.getByTestId('login-link-target').getAttribute('data-incident-id')).toBe(fire.id);
    // The address no longer carries the id (a reload or a bookmark is the plain page), the target is kept.
    expect(new URL(page.url()).search).toBe('');
    await submitLogin(page, 'staff-h01');
    await expect.poll(() => page.evaluate(() => document.body.dataset.focusedIncident)).toBe(fire.id);
    const focused = page.locator('.focused-incident');
    expect(await focused.getAttribute('data-incident-id')).toBe(fire.id);
    expect(await focused.isVisible()).toBe(true);

    // The card says who was notified and when: the nurse on duty, by name, delivered.
    const item = focused.getByTestId('incident-notified').getByTestId('notified-item');
    await expect.poll(() => item.first().getAttribute('data-status'), { timeout: 30_000 }).toBe('delivered');
    expect(await item.first().getAttribute('data-recipient')).toBe('nurse-li');
    expect(await item.first().getAttribute('data-channel')).toBe('duty');
    await expect.poll(() => item.first().textContent(), { timeout: 30_000 }).toContain('李护士');
    await shoot(page, 'phone-link-incident');

    // The older link form (`/#incident=`, messages sent before) lands there as well.
    const old = await newPage('old-link');
    await old.goto(`/#incident=${encodeURIComponent(fire.id)}`);
    await submitLogin(old, 'staff-h01');
    await expect.poll(() => old.evaluate(() => document.body.dataset.focusedIncident)).toBe(fire.id);
    expect(pageErrors).toEqual([]);
  }, 180_000);
});
