import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { homeReadings, startStack, type Stack } from './support/stack.ts';
import { join } from 'node:path';
import { launchChromium, screenshotDir, logInAs } from './support/browser.ts';
import { demoRegistry } from '../support/registry.ts';

/**
 * Issue 15 "elders who live at home" in a real browser: the bureau's overview lists the households
 * apart from the nine care homes, each with its home-care provider; a call from an elder at home
 * (a real device over the real broker) shows on that household's row; the monthly statistics
 * include the households.
 */
let stack: Stack;
let browser: Browser;
const contexts: BrowserContext[] = [];
const errors: string[] = [];

async function login(username: string): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.on('pageerror', (err) => errors.push(`[${username}] ${err.message}`));
  await page.goto(stack.url);
  await logInAs(page, username);
  return page;
}

beforeAll(async () => {
  stack = await startStack();
  for (const home of demoRegistry().site.homes) await stack.writeLines(homeReadings(home.id, stack.clock.now()));
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await stack?.close();
});

describe('bureau view: households', () => {
  it('lists households with their provider apart from the care homes; a call at home shows on its row; statistics include households', async () => {
    const bureau = await login('bureau');
    await expect.poll(() => bureau.locator('[data-testid^="home-card-"]').count()).toBe(9);
    const rows = bureau.locator('[data-testid^="household-row-"]');
    await expect.poll(() => rows.count()).toBe(5);
    const hh01 = bureau.getByTestId('household-row-hh01');
    expect(await hh01.getAttribute('data-provider')).toBe('pv01');
    expect(await hh01.getByTestId('household-provider').textContent()).toContain('安心居家护理服务中心');
    expect(await bureau.getByTestId('household-row-hh04').getAttribute('data-provider')).toBe('pv02');
    await expect.poll(() => hh01.getByTestId('devices-online').textContent()).toBe('6/6');
    expect(await hh01.getAttribute('data-state')).toBe('normal');

    // The elder presses the bedside call button: an emergency call goes to the bureau at once.
    const button = await stack.device('hh01-nc-p01');
    await button.event('sos_button');
    await expect.poll(() => hh01.getByTestId('open-care').textContent(), { timeout: 15_000 }).toBe('1');
    expect(await bureau.getByTestId('household-row-hh02').getByTestId('open-care').textContent()).toBe('0');
    await button.close();
    await bureau.getByTestId('households-panel').screenshot({ path: join(await screenshotDir(), 'bureau-households.png') });

    // Monthly statistics: a row per household, marked as such.
    await expect.poll(() => bureau.locator('[data-testid="stats-table"] tr[data-kind="household"]').count(), { timeout: 15_000 }).toBe(5);
    expect(await bureau.locator('[data-testid="stats-table"] tr[data-kind="care-home"]').count()).toBe(9);
    expect(errors).toEqual([]);
  }, 90_000);

  it("a provider's user gets the live page of its households: all their alarms, one tab each for rooms and devices", async () => {
    const provider = await login('provider-pv01');
    await provider.getByTestId('device-hh01-sd-bedroom').waitFor();
    expect(await provider.locator('[data-testid^="device-h01-"]').count()).toBe(0);
    expect(await provider.locator('[data-testid^="device-hh04-"]').count()).toBe(0);
    expect(await provider.getByTestId('who').textContent()).toContain('安心居家护理服务中心');

    // pv01 looks after hh01-hh03: one tab each, and nothing of pv02's households.
    const tabs = provider.locator('[data-testid^="home-tab-"]');
    await expect.poll(() => tabs.count()).toBe(3);
    expect(await provider.getByTestId('home-tab-hh04').count()).toBe(0);

    // A call in hh03 while the caregiver looks at hh01: its card is in the list, naming hh03, and hh03's tab waits.
    const button = await stack.device('hh03-nc-p01');
    await button.event('sos_button');
    await button.close();
    const card = provider.locator('[data-testid="alert-list"] [data-home-id="hh03"], [data-testid="pinned-zone"] [data-home-id="hh03"]').first();
    await card.waitFor({ timeout: 15_000 });
    expect(await card.getByTestId('card-home').textContent()).toContain(demoRegistry().site.homes.find((x) => x.id === 'hh03')!.name);
    await expect.poll(() => provider.getByTestId('home-tab-hh03').getAttribute('data-waiting')).toBe('true');
    expect(await provider.getByTestId('home-tab-hh02').getAttribute('data-waiting')).toBe('false');
    expect(await provider.locator('[data-testid^="device-hh03-"]').count()).toBe(0);

    // The tab shows hh03's own rooms and devices.
    await provider.getByTestId('home-tab-hh03').click();
    await provider.getByTestId('device-hh03-sd-bedroom').waitFor();
    expect(await provider.locator('[data-testid^="device-hh01-"]').count()).toBe(0);
    expect(await provider.getByTestId('home-tab-hh03').getAttribute('aria-current')).toBe('page');
    expect(errors).toEqual([]);
  }, 90_000);
});
