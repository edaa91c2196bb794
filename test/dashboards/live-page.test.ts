import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { homeReadings, startStack, type Device, type Stack } from './support/stack.ts';
import { launchChromium, screenshotDir } from './support/browser.ts';
import type { AlertMessage } from '../../contract/payloads.ts';

/**
 * Issue 5 in a real browser: duty staff of h01 and the bureau watch a simulated fire from a demo
 * device through broker → alerts → socket.io → page; the staff of h02 sees none of it.
 */
let stack: Stack;
let browser: Browser;
let shots: string;
const contexts: BrowserContext[] = [];
let staff: Page;
let bureau: Page;
let other: Page;
let mcp: Device;
let firstFire: AlertMessage;

async function login(username: string, viewport = { width: 1440, height: 900 }): Promise<Page> {
  const ctx = await browser.newContext({ viewport, locale: 'zh-CN', acceptDownloads: true });
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.on('pageerror', (err) => console.error(`[${username}] page error`, err));
  await page.goto(stack.url);
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(`demo-${username}`);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('conn-banner').and(page.locator('[data-state="online"]')).waitFor();
  return page;
}

async function waitOpen(pred: (a: AlertMessage) => boolean): Promise<AlertMessage> {
  for (let i = 0; i < 500; i++) {
    const a = stack.alerts.lifecycle.open().find(pred);
    if (a) return a;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('alert not raised');
}

const row = (page: Page, id: string) => page.locator(`[data-testid="fire-row"][data-alert-id="${id}"]`);
const card = (page: Page, id: string) => page.locator(`[data-testid="alert-list"] [data-alert-id="${id}"]`);

beforeAll(async () => {
  stack = await startStack();
  await stack.writeLines([...homeReadings('h01', stack.clock.now()), ...homeReadings('h02', stack.clock.now())]);
  browser = await launchChromium();
  shots = await screenshotDir();
  mcp = await stack.device('h01-mcp-f1-corridor');
}, 60_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await stack?.close();
});

describe('live dashboard', () => {
  it('shows the home at a glance to staff and the nine homes to the bureau', async () => {
    staff = await login('staff-h01');
    bureau = await login('bureau');
    other = await login('staff-h02');
    await staff.getByTestId('device-h01-sd-r101').and(staff.locator('[data-state="normal"]')).waitFor();
    expect(await staff.getByTestId('no-alerts').isVisible()).toBe(true);
    await expect.poll(() => staff.getByTestId('resident-h01-p01').getByText('bpm').count()).toBeGreaterThan(0);
    await expect.poll(() => bureau.locator('[data-testid^="home-card-"]').count()).toBe(9);
    await expect.poll(() => bureau.getByTestId('home-card-h01').getByTestId('devices-online').textContent()).toContain('46/46');
    // A resident's recent history as a small SVG chart, from InfluxDB through /api/history.
    await staff.getByTestId('resident-h01-p01').click();
    await staff.getByTestId('chart-panel').getByTestId('chart-heart_rate_bpm').locator('svg path').waitFor();
    expect(await staff.getByTestId('chart-panel').locator('svg').count()).toBe(4);
    await staff.screenshot({ path: join(shots, 'staff-normal.png'), fullPage: true });
    await bureau.screenshot({ path: join(shots, 'bureau-normal.png'), fullPage: true });
  });

  it('raises a fire with sound, countdown and a pinned card that cannot be scrolled away', async () => {
    await mcp.event('manual_call_point');
    firstFire = await waitOpen((a) => a.deviceId === 'h01-mcp-f1-corridor' && a.category === 'fire');
    const pin = staff.locator(`[data-testid="pinned-fire"][data-alert-id="${firstFire.id}"]`);
    await pin.waitFor();
    const cd = pin.getByTestId('countdown');
    expect(await cd.getAttribute('data-phase')).toBe('ack');
    expect(Number(await cd.getAttribute('data-remaining-s'))).toBeLessThanOrEqual(15);
    await expect.poll(() => staff.evaluate(() => (window as unknown as { __carewatchAudio: { contextState: string; playing: string | null; oscillatorsStarted: number } }).__carewatchAudio)).toMatchObject({ contextState: 'running', playing: 'alarm' });
    expect(await staff.evaluate(() => (window as unknown as { __carewatchAudio: { oscillatorsStarted: number } }).__carewatchAudio.oscillatorsStarted)).toBeGreaterThan(0);
    expect(await staff.getByTestId('device-h01-mcp-f1-corridor').getAttribute('data-state')).toBe('alarm');
    // Pinned: after scrolling to the bottom the card is still inside the viewport.
    await staff.setViewportSize({ width: 1440, height: 600 });
    await staff.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    const box = await pin.boundingBox();
    expect(box).not.toBeNull();
    expect(box!.y).toBeGreaterThanOrEqual(0);
    expect(box!.y).toBeLessThan(600);
    await staff.setViewportSize({ width: 1440, height: 900 });
    await staff.evaluate(() => window.scrollTo(0, 0));
    // A manual call point is a confirmed fire (issue 3): straight to the bureau as a call-119 alarm.
    await row(bureau, firstFire.id).and(bureau.locator('[data-state="escalated"]')).getByTestId('fire-escalation').locator('.call119').waitFor();
    await bureau.getByTestId('home-card-h01').and(bureau.locator('[data-state="escalated"]')).waitFor();
    await staff.screenshot({ path: join(shots, 'staff-alarm.png'), fullPage: false });
  });

  it('acknowledges and confirms it, and the bureau sees each step', async () => {
    stack.clock.advance(5000); // acknowledged 5 s after the alarm, inside the 15 s of NFPA 72
    await staff.locator(`[data-testid="pinned-fire"][data-alert-id="${firstFire.id}"]`).getByTestId('btn-ack').click();
    await staff.locator('[data-testid="pinned-fire"]').first().waitFor({ state: 'detached' });
    await card(staff, firstFire.id).and(staff.locator('[data-state="acknowledged"]')).waitFor();
    expect(await card(staff, firstFire.id).getByTestId('countdown').getAttribute('data-phase')).toBe('confirm');
    await expect.poll(() => staff.evaluate(() => (window as unknown as { __carewatchAudio: { playing: string | null } }).__carewatchAudio.playing)).toBeNull();
    await row(bureau, firstFire.id).and(bureau.locator('[data-state="acknowledged"]')).waitFor();
    expect(await row(bureau, firstFire.id).getByTestId('fire-ack').textContent()).toContain('5');

    stack.clock.advance(20_000);
    await card(staff, firstFire.id).getByTestId('alert-comment').fill('走廊手报按钮被误触 / call point pressed by mistake');
    await card(staff, firstFire.id).getByTestId('btn-confirm-false_alarm').click();
    await card(staff, firstFire.id).and(staff.locator('[data-state="confirmed"]')).waitFor();
    await row(bureau, firstFire.id).and(bureau.locator('[data-confirmation="false_alarm"]')).waitFor();
    expect(await row(bureau, firstFire.id).getByTestId('fire-confirm').textContent()).toContain('20');
    // Found false: no longer a call-119 alarm, the home is no longer on fire.
    expect(await row(bureau, firstFire.id).locator('.call119').count()).toBe(0);
    await bureau.getByTestId('home-card-h01').and(bureau.locator('[data-state="normal"], [data-state="trouble"]')).waitFor();

    stack.clock.advance(30_000);
    await card(staff, firstFire.id).getByTestId('btn-resolve').click();
    await card(staff, firstFire.id).waitFor({ state: 'detached' });
    await row(bureau, firstFire.id).and(bureau.locator('[data-state="resolved"]')).waitFor();
  });

  it('escalates a missed acknowledgement to call 119 on top of the bureau list', async () => {
    // One detector's fixed-temperature alarm (EN 54-5: two consecutive readings over the static limit) is a fire alarm, not yet confirmed.
    const sd = await stack.device('h01-sd-r201');
    const t0 = Date.now();
    await sd.telemetry({ temperature_c: 92, smoke_obscuration_pct_per_m: 0.3 }, t0);
    await sd.telemetry({ temperature_c: 95, smoke_obscuration_pct_per_m: 0.3 }, t0 + 10_000);
    const second = await waitOpen((a) => a.deviceId === 'h01-sd-r201' && a.category === 'fire' && a.signal === 'alarm');
    await row(bureau, second.id).and(bureau.locator('[data-state="raised"]')).waitFor();
    expect(await row(bureau, second.id).locator('.call119').count()).toBe(0);
    await staff.locator(`[data-testid="pinned-fire"][data-alert-id="${second.id}"]`).getByTestId('countdown').waitFor();
    stack.clock.advance(16_000); // past the 15 s acknowledgement deadline (NFPA 72 positive alarm sequence)
    await row(bureau, second.id).getByTestId('fire-escalation').locator('.call119').waitFor();
    expect(await bureau.locator('[data-testid="fire-row"]').first().getAttribute('data-alert-id')).toBe(second.id);
    await bureau.getByTestId('home-card-h01').and(bureau.locator('[data-state="escalated"]')).waitFor();
    await staff.locator(`[data-testid="pinned-fire"][data-alert-id="${second.id}"]`).getByTestId('badge-119').waitFor();
    await bureau.screenshot({ path: join(shots, 'bureau-alarm.png'), fullPage: true });
    await bureau.getByTestId('lang-toggle').click();
    await bureau.getByText('Fire alarms and escalations').waitFor();
    await row(bureau, second.id).getByTestId('fire-escalation').getByText('Escalated: call 119').waitFor();
    await bureau.screenshot({ path: join(shots, 'bureau-alarm-en.png'), fullPage: true });
    await bureau.getByTestId('lang-toggle').click();
    await bureau.getByText('火警与升级').waitFor();
    const phone = await login('staff-h01', { width: 390, height: 844 });
    await phone.locator(`[data-testid="pinned-fire"][data-alert-id="${second.id}"]`).waitFor();
    await phone.screenshot({ path: join(shots, 'staff-alarm-phone.png') });
    await sd.close();
  });

  it('says at once when the socket drops and shows an alert raised during the gap after reconnecting', async () => {
    await staff.evaluate(() => (window as unknown as { __carewatch: { dropSocket(): void } }).__carewatch.dropSocket());
    await staff.getByTestId('conn-banner').and(staff.locator('[data-state="offline"]')).waitFor();
    await staff.screenshot({ path: join(shots, 'staff-disconnected.png') });
    const gapDevice = await stack.device('h01-sd-r305');
    await gapDevice.event('detector_alarm');
    const gap = await waitOpen((a) => a.deviceId === 'h01-sd-r305' && a.category === 'fire');
    // Give a live socket every chance to deliver it: it must not, the page is cut off.
    await bureau.locator(`[data-testid="fire-row"][data-alert-id="${gap.id}"]`).waitFor();
    expect(await staff.locator(`[data-alert-id="${gap.id}"]`).count()).toBe(0);
    await staff.evaluate(() => (window as unknown as { __carewatch: { restoreSocket(): void } }).__carewatch.restoreSocket());
    await staff.getByTestId('conn-banner').and(staff.locator('[data-state="online"]')).waitFor();
    await staff.locator(`[data-testid="pinned-fire"][data-alert-id="${gap.id}"]`).waitFor();
    await gapDevice.close();
  });

  it("shows staff of another home nothing of it, through the page or the API", async () => {
    const h01Alerts = stack.alerts.lifecycle.open().filter((a) => a.homeId === 'h01');
    expect(h01Alerts.length).toBeGreaterThanOrEqual(3);
    for (const a of h01Alerts) expect(await other.locator(`[data-alert-id="${a.id}"]`).count()).toBe(0);
    expect(await other.locator('[data-testid="pinned-fire"]').count()).toBe(0);
    expect(await other.getByText('阳光颐养院').count()).toBe(0);
    const status = await other.evaluate(async (id) => {
      const s = JSON.parse(sessionStorage.getItem('cw.session') ?? '{}') as { token: string };
      const h = { authorization: `Bearer ${s.token}` };
      const one = await fetch(`/api/alerts/${id}`, { headers: h });
      const live = await fetch('/api/live/home/h01', { headers: h });
      const list = (await (await fetch('/api/alerts', { headers: h })).json()) as Array<{ homeId: string }>;
      return { one: one.status, live: live.status, foreign: list.filter((a) => a.homeId !== 'h02').length };
    }, firstFire.id);
    expect(status).toEqual({ one: 404, live: 403, foreign: 0 });
  });

  it('downloads statistics as CSV with the same numbers as the API', async () => {
    await stack.alerts.drained();
    await bureau.getByTestId('stats-load').click();
    await bureau.getByTestId('stats-row-h01').waitFor();
    const [download] = await Promise.all([bureau.waitForEvent('download'), bureau.getByTestId('stats-csv').click()]);
    const csv = await readFile((await download.path())!, 'utf8');
    const month = await bureau.getByTestId('stats-month').inputValue();
    const json = (await bureau.evaluate(async (m) => {
      const s = JSON.parse(sessionStorage.getItem('cw.session') ?? '{}') as { token: string };
      return (await fetch(`/api/stats?month=${m}`, { headers: { authorization: `Bearer ${s.token}` } })).json();
    }, month)) as { homes: Array<{ homeId: string; alerts: number; byClass: { alarm: number }; falseAlarms: number; falseAlarmRate: number | null; timeToAcknowledge: { medianS: number | null } }> };
    const [header, ...lines] = csv.trim().split('\r\n');
    const cols = header!.split(',');
    const rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
    expect(rows.map((r) => r.home)).toEqual(json.homes.map((h) => h.homeId));
    const h01 = json.homes.find((h) => h.homeId === 'h01')!;
    expect(h01.byClass.alarm).toBeGreaterThanOrEqual(3);
    expect(h01.falseAlarms).toBe(1);
    for (const h of json.homes) {
      const r = rows.find((x) => x.home === h.homeId)!;
      expect([r.alerts, r.alarm, r.false_alarms, r.false_alarm_rate, r.ack_median_s]).toEqual(
        [h.alerts, h.byClass.alarm, h.falseAlarms, h.falseAlarmRate, h.timeToAcknowledge.medianS].map((v) => (v === null ? '' : String(v))),
      );
    }
    expect(await bureau.getByTestId('stats-row-h01').locator('[data-col="alarm"]').textContent()).toBe(String(h01.byClass.alarm));
  });
});
