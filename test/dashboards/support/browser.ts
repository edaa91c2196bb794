import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

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
 * Logs a demo user in on a page that shows the login form (demo passwords are `demo-<username>`),
 * and waits until the live socket is up: online means the page can receive alerts.
 */
export async function logInAs(page: Page, username: string): Promise<void> {
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(`demo-${username}`);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('conn-banner').and(page.locator('[data-state="online"]')).waitFor();
}
