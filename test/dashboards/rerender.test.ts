import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './support/browser.ts';

/**
 * The staff page rebuilds its alert list on every change of an alert, and during a fire that is
 * every few seconds. In real Chromium, with a real mouse and keyboard: a comment being typed survives
 * a rebuild with the caret where it was, and a press on a button that is rebuilt before the finger
 * lifts still clicks it (dashboards/app/js/dom.js keepingDrafts, tapSafe).
 */
let browser: Browser;
let page: Page;
let domSource: string;

beforeAll(async () => {
  domSource = await readFile(new URL('../../dashboards/app/js/dom.js', import.meta.url), 'utf8');
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

beforeEach(async () => {
  page?.context() && (await page.context().close());
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, hasTouch: true });
  page = await ctx.newPage();
  await page.setContent('<div id="root"></div>');
  // dom.js imports nothing: loaded as a classic script with its exports made globals.
  await page.addScriptTag({ content: `${domSource.replace(/^export /gm, '')}\nwindow.dom = { h, render, keepingDrafts, tapSafe };` });
  await page.evaluate(() => {
    type Dom = { h: (tag: string, attrs?: Record<string, unknown>, ...c: unknown[]) => HTMLElement; render: (el: Element, ...c: unknown[]) => void; keepingDrafts: (root: Element, fn: () => void) => void; tapSafe: (root: Element, ms?: number) => (fn: () => void) => void };
    const w = window as unknown as { dom: Dom; cards: string[]; clicks: string[]; renders: number; draw: (keep: boolean) => void; schedule: (fn: () => void) => void };
    const { h, render, keepingDrafts, tapSafe } = w.dom;
    const root = document.getElementById('root') as HTMLElement;
    w.cards = ['inc-1'];
    w.clicks = [];
    w.renders = 0;
    const list = (): void => {
      w.renders++;
      render(root, w.cards.map((id) => h('div', { 'data-testid': `card-${id}` },
        h('input', { 'data-testid': `comment-${id}`, 'data-draft-key': `comment:incident:${id}` }),
        h('button', { 'data-testid': `ack-${id}`, style: 'width:200px;height:48px', onclick: () => w.clicks.push(id) }, 'ack'))));
    };
    w.draw = (keep) => (keep ? keepingDrafts(root, list) : list());
    w.schedule = tapSafe(root);
    list();
  });
});

const draw = (keep: boolean): Promise<void> => page.evaluate((k) => (window as unknown as { draw(k: boolean): void }).draw(k), keep);

it('keeps the comment being typed, and the caret, when the list is rebuilt with a new card above it', async () => {
  await page.getByTestId('comment-inc-1').click();
  await page.keyboard.type('走廊手报');
  await page.evaluate(() => (window as unknown as { cards: string[] }).cards.unshift('inc-2'));
  await draw(true);
  // The same person goes on typing without touching the screen again.
  await page.keyboard.type('被误触');
  expect(await page.getByTestId('comment-inc-1').inputValue()).toBe('走廊手报被误触');
  expect(await page.getByTestId('comment-inc-2').inputValue()).toBe('');
  expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.testid)).toBe('comment-inc-1');
  // Without keeping the drafts the same rebuild loses it (what this guards against).
  await draw(false);
  expect(await page.getByTestId('comment-inc-1').inputValue()).toBe('');
});

it('a press on "acknowledge" that outlasts a rebuild still acknowledges; the rebuild follows the lift', async () => {
  const box = await page.getByTestId('ack-inc-1').boundingBox();
  if (box === null) throw new Error('no button');
  const press = async (viaTapSafe: boolean): Promise<void> => {
    await page.mouse.move(box.x + 20, box.y + 20);
    await page.mouse.down();
    // A new point joins the fire while the finger is down.
    await page.evaluate((safe) => {
      const w = window as unknown as { draw(k: boolean): void; schedule(fn: () => void): void };
      if (safe) w.schedule(() => w.draw(true));
      else w.draw(true);
    }, viaTapSafe);
    await page.mouse.up();
  };
  const before = await page.evaluate(() => (window as unknown as { renders: number }).renders);
  await press(true);
  await expect.poll(() => page.evaluate(() => (window as unknown as { renders: number }).renders)).toBe(before + 1);
  expect(await page.evaluate(() => (window as unknown as { clicks: string[] }).clicks)).toEqual(['inc-1']);
  // Rebuilt at once under the finger, the same press clicks nothing.
  await press(false);
  expect(await page.evaluate(() => (window as unknown as { clicks: string[] }).clicks)).toEqual(['inc-1']);
});

it('a press that never lifts holds the list back only for a bounded time', async () => {
  await page.evaluate(() => {
    const w = window as unknown as { schedule: (fn: () => void) => void; draw(k: boolean): void };
    // A shorter bound than the page's 1.5 s, for the test.
    w.schedule = (window as unknown as { dom: { tapSafe: (r: Element, ms: number) => (fn: () => void) => void } }).dom.tapSafe(document.getElementById('root') as Element, 200);
  });
  const box = await page.getByTestId('ack-inc-1').boundingBox();
  if (box === null) throw new Error('no button');
  const before = await page.evaluate(() => (window as unknown as { renders: number }).renders);
  await page.mouse.move(box.x + 20, box.y + 20);
  await page.mouse.down();
  await page.evaluate(() => {
    const w = window as unknown as { schedule: (fn: () => void) => void; draw(k: boolean): void };
    w.schedule(() => w.draw(true));
  });
  await expect.poll(() => page.evaluate(() => (window as unknown as { renders: number }).renders)).toBe(before + 1);
  await page.mouse.up();
});
