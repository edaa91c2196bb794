import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { homeReadings, startStack, type Stack } from '../dashboards/support/stack.ts';
import { launchChromium, logInAs } from '../dashboards/support/browser.ts';
import { demoRegistry } from '../support/registry.ts';

/**
 * Issue 12 part 4 in a real browser: the live page loads, logs in, opens its socket.io session and
 * draws its views under the Content-Security-Policy, with no violation reported, neither as a
 * `securitypolicyviolation` event nor in the console. A deliberate inline script at the end proves
 * the policy is enforced and that this test would see a violation.
 */
let stack: Stack;
let browser: Browser;
const contexts: BrowserContext[] = [];

interface Watched {
  readonly page: Page;
  readonly console: string[];
  violations(): Promise<string[]>;
}

async function open(username: string): Promise<Watched> {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
  contexts.push(ctx);
  // Registered before any page script runs, so no violation can be missed.
  await ctx.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const page = await ctx.newPage();
  const consoleLines: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') consoleLines.push(m.text());
  });
  page.on('pageerror', (err) => consoleLines.push(`pageerror: ${err.message}`));
  const res = await page.goto(stack.url);
  expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
  // Online means the socket.io client module loaded from this origin and its connection is up.
  await logInAs(page, username);
  return { page, console: consoleLines, violations: () => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp) };
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

describe('live page under the CSP', () => {
  it('loads, logs in and shows a fire alarm for staff and bureau with no CSP violation', async () => {
    const staff = await open('staff-h01');
    const bureau = await open('bureau');
    // A fire alarm: the alert card, its countdown and the alarm sound are all drawn under the CSP.
    const mcp = await stack.device('h01-mcp-f1-corridor');
    await mcp.event('manual_call_point');
    await staff.page.locator('[data-testid="pinned-fire"]').first().waitFor();
    // The bureau's list has one row per incident (issue 11).
    await bureau.page.locator('[data-testid="incident-row"]').first().waitFor();
    await expect.poll(() => staff.page.evaluate(() => (window as unknown as { __carewatchAudio: { playing: string | null } }).__carewatchAudio.playing)).toBe('alarm');
    for (const w of [staff, bureau]) {
      expect(await w.violations()).toEqual([]);
      expect(w.console.filter((l) => /Content Security Policy|Refused to/i.test(l))).toEqual([]);
    }
    // Positive control: an inline script is refused and reported, so the checks above can fail.
    await staff.page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__inline = 1';
      document.body.append(s);
    });
    await staff.page.waitForFunction(() => (window as unknown as { __csp: string[] }).__csp.length > 0);
    expect((await staff.violations())[0]).toMatch(/^script-src/);
    expect(await staff.page.evaluate(() => (window as unknown as { __inline?: number }).__inline)).toBeUndefined();
  }, 60_000);
});
