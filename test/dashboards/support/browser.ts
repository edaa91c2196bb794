import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';

/** Debian's Chromium, headless, no network beyond the test server, a fresh profile per launch. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
      // Alarm sound must start without waiting for a click on a page that was reloaded.
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

export const SCREENSHOT_DIR = fileURLToPath(new URL('../../../test-artifacts/screenshots/', import.meta.url));

export async function screenshotDir(): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  return SCREENSHOT_DIR;
}

/**
 * Runs an action on an element that a live update may re-render meanwhile (the incident's
 * escalation or notification audit replaces its card; a live refresh the resident tiles):
 * Playwright then fails with "not attached to the DOM" instead of waiting; the action is taken again,
 * on the new element (CI, session 15; the CI of session 23's last commit: the resident tile's scroll
 * into view).
 */
export async function onLiveElement<T>(action: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await action();
    } catch (err) {
      if (attempt >= 5 || !/not attached to the DOM/.test(String(err))) throw err;
    }
  }
}

/** A screenshot of an element a live update may re-render while it is taken (see onLiveElement). */
export async function screenshotOf(element: Locator, path: string): Promise<void> {
  await onLiveElement(() => element.screenshot({ path }));
}

/**
 * Logs a demo user in on a page that shows the login form (demo passwords are `demo-<username>`),
 * and waits until the live socket is up: online means the page can receive alerts.
 */
export async function logInAs(page: Page, username: string, opts: { tap?: boolean } = {}): Promise<void> {
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(`demo-${username}`);
  // On a phone (hasTouch) the button is tapped, as a nurse does.
  if (opts.tap === true) await page.getByTestId('login-submit').tap();
  else await page.getByTestId('login-submit').click();
  await page.getByTestId('conn-banner').and(page.locator('[data-state="online"]')).waitFor();
}

/** WCAG 2.2 SC 2.5.5 Target Size (Enhanced) / Apple HIG: 44 × 44 CSS px. */
export const MIN_TARGET = 44;

/** Every visible control in `scope` measured: those under 44 × 44 CSS px, named with their size. */
export async function smallTargets(scope: Locator): Promise<string[]> {
  return scope.evaluateAll((els, min) => els
    .filter((e) => (e as HTMLElement).offsetParent !== null)
    .map((e) => ({ e, r: e.getBoundingClientRect() }))
    .filter(({ r }) => r.width < min - 0.5 || r.height < min - 0.5)
    .map(({ e, r }) => `${e.getAttribute('data-testid') ?? e.textContent?.trim()}: ${r.width.toFixed(1)}×${r.height.toFixed(1)}`), MIN_TARGET);
}

/** The page fits the phone's width: nothing scrolls sideways. */
export async function expectNoSidewaysScroll(page: Page): Promise<void> {
  const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
  expect(scroll, 'the page scrolls sideways').toBeLessThanOrEqual(width);
}
