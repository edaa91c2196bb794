import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { homeReadings, startStack, type Device, type Stack } from './support/stack.ts';
import { launchChromium, logInAs } from './support/browser.ts';
import { demoRegistry } from '../support/registry.ts';
import type { AlertMessage } from '../../contract/payloads.ts';

/**
 * Issue 11 in a real browser against the real alerts process: a fire spreading from a bedroom to
 * the corridor and the next room is ONE card on the staff page (its points in join order, one
 * countdown, acknowledged once for all its members) and ONE row on the bureau's list; a detector in
 * test mode shows as such, with its end time, on the staff page and in the bureau's list.
 */
const SHOTS = fileURLToPath(new URL('../../.tmp/screenshots/', import.meta.url));

let stack: Stack;
let browser: Browser;
const contexts: BrowserContext[] = [];
let staff: Page;
let director: Page;
let bureau: Page;

async function login(username: string): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.on('pageerror', (err) => console.error(`[${username}] page error`, err));
  await page.goto(stack.url);
  await logInAs(page, username);
  return page;
}

async function waitFor<T>(what: string, get: () => T | undefined): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const v = get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const openFire = (deviceId: string): AlertMessage | undefined =>
  stack.alerts.lifecycle.open().find((a) => a.deviceId === deviceId && a.category === 'fire' && a.signal === 'alarm');

/** What the page shows as the time of day, in the browser's own locale formatting. */
const shownTime = (page: Page, ms: number): Promise<string> => page.evaluate((t) => new Date(t).toLocaleTimeString('zh-CN', { hour12: false }), ms);

const audioPlaying = (page: Page): Promise<string | null> => page.evaluate(() => (window as unknown as { __carewatchAudio: { playing: string | null } }).__carewatchAudio.playing);

beforeAll(async () => {
  stack = await startStack({ deadlines: { h01: { ackDeadlineS: 20, confirmDeadlineS: 240 } } });
  for (const home of demoRegistry().site.homes) await stack.writeLines(homeReadings(home.id, stack.clock.now()));
  browser = await launchChromium();
  await mkdir(SHOTS, { recursive: true });
  staff = await login('staff-h01');
  director = await login('director-h01');
  bureau = await login('bureau');
}, 90_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await stack?.close();
});

describe('incidents and disablements on the live page', () => {
  it('shows a detector in test mode with its end time to staff and the bureau, and ends it early', async () => {
    const dev = 'h01-sd-r103';
    await director.getByTestId(`device-${dev}`).waitFor();
    const form = director.getByTestId('disablement-form');
    await form.getByTestId('dis-scope').selectOption('device');
    await form.getByTestId('dis-target').selectOption(dev);
    await form.getByTestId('dis-mode').selectOption('test');
    await form.getByTestId('dis-duration').selectOption('120');
    await form.getByTestId('dis-reason').fill('年度探测器测试 / annual detector test');
    await form.getByTestId('dis-submit').click();

    // The server's record (its manual clock) says when it ends; the pages show that.
    const d = await waitFor('the disablement', () => stack.alerts.disablements.inForce('h01').find((x) => x.targetId === dev));
    expect(d.mode).toBe('test');
    expect(d.until - d.startedAt).toBe(120 * 60_000);
    expect(d.by).toBe('director-h01');
    const at = await shownTime(staff, d.until);

    const onPlan = staff.getByTestId(`device-${dev}`).and(staff.locator('[data-disabled="test"]'));
    await onPlan.waitFor();
    expect(await onPlan.getAttribute('data-until')).toBe(String(d.until));
    expect(await onPlan.getByTestId('device-disabled').textContent()).toContain(at);
    expect(await onPlan.getByTestId('device-disabled').textContent()).toContain('测试中');
    const item = staff.locator(`[data-testid="disablement-item"][data-disablement-id="${d.id}"]`);
    await item.waitFor();
    expect(await item.getByTestId('disablement-until').textContent()).toContain(at);
    expect(await item.textContent()).toContain('年度探测器测试');
    // Duty staff see it but cannot end it; the director can.
    expect(await item.getByTestId('btn-enable').count()).toBe(0);
    expect(await staff.getByTestId('disablement-form').count()).toBe(0);
    // Another device of the same room is not marked.
    expect(await staff.getByTestId('device-h01-sd-r102').getAttribute('data-disabled')).toBeNull();

    const row = bureau.locator(`[data-testid="disablement-row"][data-disablement-id="${d.id}"]`);
    await row.waitFor();
    expect(await row.getAttribute('data-target-id')).toBe(dev);
    expect(await row.getAttribute('data-mode')).toBe('test');
    expect(await row.getByTestId('disablement-until').textContent()).toBe(at);
    expect(await row.textContent()).toContain('director-h01');
    expect(await row.textContent()).toContain('年度探测器测试');
    await staff.evaluate(() => window.scrollTo(0, 0));
    await staff.screenshot({ path: join(SHOTS, 'staff-disabled-detector.png'), fullPage: true });
    await bureau.getByTestId('bureau-disablements').screenshot({ path: join(SHOTS, 'bureau-disablements.png') });

    // Ended early by the director: gone from both pages.
    await director.locator(`[data-testid="disablement-item"][data-disablement-id="${d.id}"]`).getByTestId('btn-enable').click();
    await row.waitFor({ state: 'detached' });
    await staff.getByTestId(`device-${dev}`).and(staff.locator(':not([data-disabled])')).waitFor();
    expect(stack.alerts.disablements.inForce('h01').some((x) => x.id === d.id)).toBe(false);
  });

  it('shows a fire spreading from a bedroom to the corridor and the next room as ONE card, acknowledged once, and ONE bureau row', async () => {
    const rooms = [
      ['h01-sd-r101', 'r101'],
      ['h01-sd-f1-corridor', 'f1-corridor'],
      ['h01-sd-r102', 'r102'],
    ] as const;
    let first: AlertMessage | undefined;
    // The detectors stay connected: one that went away would be a device-offline incident of its own.
    const devices: Device[] = [];
    for (const [deviceId] of rooms) {
      const d = await stack.device(deviceId);
      devices.push(d);
      await d.event('detector_alarm');
      const a = await waitFor(`${deviceId}'s fire alarm`, () => openFire(deviceId));
      first ??= a;
      stack.clock.advance(3000); // the fire spreads over seconds, inside h01's 20 s to acknowledge
    }
    const incidentId = first!.incidentId!;
    expect(incidentId).toBeTruthy();
    const members = (): AlertMessage[] => stack.alerts.lifecycle.open().filter((a) => a.incidentId === incidentId);
    for (const [deviceId] of rooms) expect(openFire(deviceId)!.incidentId).toBe(incidentId);

    // Staff: one card, pinned until acknowledged, with every member inside it.
    const card = staff.locator(`[data-testid="incident-card"][data-incident-id="${incidentId}"]`);
    await card.and(staff.locator(`[data-points="${members().length}"]`)).waitFor();
    // One fire card. (This stack's other devices never report, so once its clock has moved ~10 s the
    // supervision rule rightly reports the home's communication loss: a device incident of its own.)
    expect(await staff.locator('[data-testid="incident-card"][data-kind="fire"]').count()).toBe(1);
    expect(await staff.locator('[data-testid="pinned-fire"]').count()).toBe(1);
    expect(await staff.locator(`[data-testid="pinned-fire"][data-incident-id="${incidentId}"]`).count()).toBe(1);
    expect(await staff.locator('[data-testid="alert-card"]').count()).toBe(0);
    // The first alarm point prominent, then the others in the order they joined.
    expect(await card.getByTestId('first-point').getAttribute('data-alert-id')).toBe(first!.id);
    expect(await card.getByTestId('first-point').getAttribute('data-room-id')).toBe('r101');
    expect(await card.getByTestId('first-point-where').textContent()).toContain('101室');
    const pointRooms = await card.locator('[data-point]').evaluateAll((els) => els.map((e) => e.getAttribute('data-room-id')));
    expect([...new Set(pointRooms.filter((r) => r))]).toEqual(rooms.map(([, r]) => r));
    const pointIds = await card.locator('[data-point]').evaluateAll((els) => els.map((e) => e.getAttribute('data-alert-id')));
    expect(new Set(pointIds)).toEqual(new Set(members().map((a) => a.id)));
    // One countdown (h01's own 20 s from the first alarm point), one acknowledge button.
    expect(await card.getByTestId('countdown').count()).toBe(1);
    expect(await card.getByTestId('countdown').getAttribute('data-deadline-s')).toBe('20');
    expect(await card.getByTestId('btn-ack').count()).toBe(1);
    await expect.poll(() => audioPlaying(staff)).toBe('alarm');
    await staff.evaluate(() => window.scrollTo(0, 0));
    await staff.screenshot({ path: join(SHOTS, 'staff-incident.png'), fullPage: false });

    // Bureau: one row for the whole fire, its points and rooms in it.
    const row = bureau.locator(`[data-testid="incident-row"][data-incident-id="${incidentId}"]`);
    await row.and(bureau.locator(`[data-points="${members().length}"]`)).waitFor();
    expect(await bureau.locator('[data-testid="incident-row"]').count()).toBe(1);
    expect(await bureau.locator('[data-testid="fire-row"]').count()).toBe(0);
    expect(await row.getByTestId('incident-rooms').textContent()).toContain('101室、1楼走廊、102室');
    expect(await row.getByTestId('incident-first-point').textContent()).toContain('101室');
    await bureau.screenshot({ path: join(SHOTS, 'bureau-incident.png'), fullPage: true });

    // Acknowledged once: every member alert is acknowledged, the sound stops.
    await card.getByTestId('btn-ack').click();
    await card.and(staff.locator('[data-state="acknowledged"], [data-state="escalated"]')).getByTestId('incident-acked-by').waitFor();
    await staff.locator('[data-testid="pinned-fire"]').first().waitFor({ state: 'detached' });
    await waitFor('every member acknowledged', () => (members().every((a) => a.acknowledgedBy === 'staff-h01') ? true : undefined));
    expect(members().length).toBeGreaterThanOrEqual(3);
    await expect.poll(() => audioPlaying(staff)).toBeNull();
    expect(await card.getByTestId('countdown').getAttribute('data-phase')).toBe('confirm');
    await row.getByTestId('fire-ack').getByText('staff-h01').waitFor();

    // The fire reaches the next room: a new alarm point sounds again and says where.
    stack.clock.advance(4000);
    const d = await stack.device('h01-sd-r103');
    await d.event('detector_alarm');
    devices.push(d);
    const spread = await waitFor('the fourth point', () => openFire('h01-sd-r103'));
    expect(spread.incidentId).toBe(incidentId);
    await card.locator(`[data-point][data-alert-id="${spread.id}"]`).waitFor();
    await card.getByTestId('new-point').waitFor();
    expect(await card.getByTestId('new-point').textContent()).toContain('103室');
    await expect.poll(() => audioPlaying(staff)).toBe('alarm');
    // Re-alerted: pinned again, to be acknowledged again, with the countdown of the new point.
    await staff.locator(`[data-testid="pinned-fire"][data-incident-id="${incidentId}"]`).getByTestId('btn-ack').waitFor();
    expect(await card.getByTestId('countdown').getAttribute('data-phase')).toBe('ack');
    expect(await staff.locator('[data-testid="incident-card"][data-kind="fire"]').count()).toBe(1);
    expect(await bureau.locator('[data-testid="incident-row"]').count()).toBe(1);
    await staff.evaluate(() => window.scrollTo(0, 0));
    await staff.screenshot({ path: join(SHOTS, 'staff-incident-spread.png'), fullPage: false });
    for (const x of devices) await x.close();
  });
});
