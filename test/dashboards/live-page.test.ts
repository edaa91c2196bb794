import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { homeReadings, startStack, telemetryLine, type Device, type Stack } from './support/stack.ts';
import { launchChromium, screenshotDir, screenshotOf, logInAs } from './support/browser.ts';
import { demoRegistry } from '../support/registry.ts';
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
  await logInAs(page, username);
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

interface Tone { offsetMs: number; durationMs: number; frequencyHz: number; type: string }
interface AudioProbe { contextState: string; playing: string | null; oscillatorsStarted: number; periodMs: number | null; lastCycle: Tone[] }
const audio = (page: Page): Promise<AudioProbe> => page.evaluate(() => (window as unknown as { __carewatchAudio: AudioProbe }).__carewatchAudio);
/** NFPA 72 §18.4.2 / ISO 8201 temporal-3: three 0.5 s tones 0.5 s apart, 1.5 s of silence, a 4 s cycle. */
const TEMPORAL_3 = [0, 1000, 2000].map((offsetMs) => ({ offsetMs, durationMs: 500 }));
const isTemporal3 = (p: AudioProbe): boolean =>
  p.periodMs === 4000 && JSON.stringify(p.lastCycle.map((x) => ({ offsetMs: x.offsetMs, durationMs: x.durationMs }))) === JSON.stringify(TEMPORAL_3);

// An alert is shown inside its incident's card and row (issue 11), or on its own from a server without incidents.
const anyOf = (id: string) => `:is([data-alert-id="${id}"], [data-alert-ids~="${id}"])`;
const row = (page: Page, id: string) => page.locator(`:is([data-testid="fire-row"][data-alert-id="${id}"], [data-testid="incident-row"][data-alert-ids~="${id}"])`);
const card = (page: Page, id: string) => page.locator(`[data-testid="alert-list"] :is([data-testid="alert-card"][data-alert-id="${id}"], [data-testid="incident-card"][data-alert-ids~="${id}"])`);
const pinned = (page: Page, id: string) => page.locator(`[data-testid="pinned-fire"]:is([data-alert-id="${id}"], :has([data-alert-ids~="${id}"]))`);

/** Waits for the bureau's card of a home to show one of `states`; says what the page held if it does not. */
async function homeCardIn(page: Page, homeId: string, states: readonly string[]): Promise<void> {
  const card = page.getByTestId(`home-card-${homeId}`);
  try {
    await card.and(page.locator(states.map((s) => `[data-state="${s}"]`).join(', '))).waitFor();
  } catch (err) {
    const state = await card.getAttribute('data-state');
    const open = await page.evaluate(() => (window as unknown as { __carewatch: { openAlerts(): unknown[] } }).__carewatch.openAlerts());
    const server = stack.alerts.lifecycle.open().filter((a) => a.homeId === homeId).map((a) => ({ id: a.id, rule: a.rule, state: a.state, confirmation: a.confirmation, version: a.version }));
    throw new Error(`home card ${homeId} stayed "${state}"; the page's open alerts: ${JSON.stringify(open)}; the server's: ${JSON.stringify(server)}`, { cause: err });
  }
}

beforeAll(async () => {
  // h01 has its own positive alarm sequence deadlines (not NFPA 72's 15 s / 180 s defaults), so the
  // countdown is seen to follow the home's registry entry.
  // Sessions last 3 min of the stack's clock (the tests before the expiry test advance it ~1.5 min),
  // so reaching expiry ticks the rule engine through 3 min, not an hour.
  stack = await startStack({ deadlines: { h01: { ackDeadlineS: 20, confirmDeadlineS: 240 } }, tokenTtlS: 180 });
  // Every home has reported, as in a running deployment, so the bureau grid shows devices online.
  for (const home of demoRegistry().site.homes) await stack.writeLines(homeReadings(home.id, stack.clock.now()));
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
    await expect.poll(() => bureau.getByTestId('home-card-h01').getByTestId('devices-online').textContent()).toContain('82/82');
    // A resident's recent history as a small SVG chart, from InfluxDB through /api/history.
    await staff.getByTestId('resident-h01-p01').click();
    await staff.getByTestId('chart-panel').getByTestId('chart-heart_rate_bpm').locator('svg path').waitFor();
    expect(await staff.getByTestId('chart-panel').locator('svg').count()).toBe(4);
    await staff.evaluate(() => window.scrollTo(0, 0));
    await staff.screenshot({ path: join(shots, 'staff-normal.png'), fullPage: true });
    await bureau.screenshot({ path: join(shots, 'bureau-normal.png'), fullPage: true });
    const phone = await login('staff-h01', { width: 390, height: 844 });
    await phone.getByTestId('resident-h01-p01').getByText('bpm').first().waitFor();
    await phone.screenshot({ path: join(shots, 'staff-normal-phone.png'), fullPage: true });
    await phone.context().close();
  });

  it('shows a smoke pre-alarm in its own look and sound, not as a fire', async () => {
    // A reading at the alarm level (4 %/m) raises the unverified pre-alarm (severity medium, outside
    // the NFPA 72 positive alarm sequence) at once; the next reading is back under it, so the 60 s
    // verification fails and it never becomes a fire alarm. (Below the alarm level a pre-alarm needs two
    // readings 10 s apart, issue 11: that would move this page's shared clock.)
    const sd = await stack.device('h01-sd-r102');
    const t0 = stack.clock.now();
    await sd.telemetry({ smoke_obscuration_pct_per_m: 4.2, temperature_c: 22 }, t0);
    await sd.telemetry({ smoke_obscuration_pct_per_m: 2.6, temperature_c: 22 }, t0 + 1000);
    const pre = await waitOpen((a) => a.deviceId === 'h01-sd-r102' && a.rule === 'smoke_prealarm');
    expect(pre.severity).toBe('medium');
    const c = card(staff, pre.id);
    await c.waitFor();
    expect(await c.getAttribute('data-class')).toBe('prealarm');
    expect(await c.getByTestId('alert-class').textContent()).toBe('预警');
    expect(await c.getByTestId('countdown').count()).toBe(0);
    expect(await staff.locator('[data-testid="pinned-fire"]').count()).toBe(0);
    await staff.getByTestId('device-h01-sd-r102').and(staff.locator('[data-state="prealarm"]')).waitFor();
    await expect.poll(async () => (await audio(staff)).playing).toBe('prealarm');
    const probe = await audio(staff);
    expect(probe.lastCycle.length).toBeGreaterThan(0);
    expect(isTemporal3(probe)).toBe(false);
    expect(probe.lastCycle.some((x) => x.type === 'square' || x.frequencyHz === 880)).toBe(false);
    await staff.evaluate(() => window.scrollTo(0, 0));
    await staff.screenshot({ path: join(shots, 'staff-prealarm.png'), fullPage: false });
    // Staff acknowledge (the sound stops), find the room clear and resolve it from the page.
    await c.getByTestId('btn-ack').click();
    await expect.poll(async () => (await audio(staff)).playing).toBeNull();
    await sd.telemetry({ smoke_obscuration_pct_per_m: 0.2, temperature_c: 22 }, t0 + 2000);
    await card(staff, pre.id).and(staff.locator('[data-state="acknowledged"]')).getByTestId('alert-comment').fill('房间已查看，无烟 / room checked, no smoke');
    await c.getByTestId('btn-resolve').click();
    await c.waitFor({ state: 'detached' });
    await sd.close();
  });

  it('raises a fire with sound, countdown and a pinned card that cannot be scrolled away', async () => {
    await mcp.event('manual_call_point');
    firstFire = await waitOpen((a) => a.deviceId === 'h01-mcp-f1-corridor' && a.category === 'fire');
    const pin = pinned(staff, firstFire.id);
    await pin.waitFor();
    const cd = pin.getByTestId('countdown');
    expect(await cd.getAttribute('data-phase')).toBe('ack');
    // h01's own 20 s, from GET /api/homes, not the 15 s default.
    expect(await cd.getAttribute('data-deadline-s')).toBe('20');
    expect(Number(await cd.getAttribute('data-remaining-s'))).toBeLessThanOrEqual(20);
    await expect.poll(async () => (await audio(staff)).playing).toBe('alarm');
    const probe = await audio(staff);
    expect(probe.contextState).toBe('running');
    expect(probe.oscillatorsStarted).toBeGreaterThan(0);
    expect(isTemporal3(probe)).toBe(true);
    expect(await pin.locator('[data-class]').first().getAttribute('data-class')).toBe('alarm');
    expect(await staff.getByTestId('device-h01-mcp-f1-corridor').getAttribute('data-state')).toBe('alarm');
    // Pinned: after scrolling to the bottom the card is still inside the viewport.
    await staff.setViewportSize({ width: 1440, height: 600 });
    await staff.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    // Measured again if a re-render (the countdown, the notified line) replaced the card between
    // finding and measuring it: boundingBox() answers null for a detached element (CI session 8).
    const inView = async (): Promise<boolean | null> => {
      const box = await pin.boundingBox();
      return box === null ? null : box.y >= 0 && box.y < 600;
    };
    await expect.poll(inView, { timeout: 10_000 }).toBe(true);
    await staff.setViewportSize({ width: 1440, height: 900 });
    await staff.evaluate(() => window.scrollTo(0, 0));
    // A manual call point is a confirmed fire (issue 3): straight to the bureau as a call-119 alarm.
    await row(bureau, firstFire.id).and(bureau.locator('[data-state="escalated"]')).getByTestId('fire-escalation').locator('.call119').waitFor();
    await homeCardIn(bureau, 'h01', ['escalated']);
    await staff.screenshot({ path: join(shots, 'staff-alarm.png'), fullPage: false });
  });

  it('acknowledges and confirms it, and the bureau sees each step', async () => {
    stack.clock.advance(5000); // acknowledged 5 s after the alarm, inside h01's 20 s
    await pinned(staff, firstFire.id).getByTestId('btn-ack').click();
    await staff.locator('[data-testid="pinned-fire"]').first().waitFor({ state: 'detached' });
    await card(staff, firstFire.id).and(staff.locator('[data-state="acknowledged"]')).waitFor();
    expect(await card(staff, firstFire.id).getByTestId('countdown').getAttribute('data-phase')).toBe('confirm');
    expect(await card(staff, firstFire.id).getByTestId('countdown').getAttribute('data-deadline-s')).toBe('240');
    await expect.poll(async () => (await audio(staff)).playing).toBeNull();
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
    // Not a fire any more. In this stack only the test's own devices speak MQTT, so once the clock has
    // been advanced the supervision rule may rightly find h01's other devices silent: a communication
    // loss (CI, session 7: home_comm_loss raised beside the care monitors' no-data alerts), which outranks trouble.
    await homeCardIn(bureau, 'h01', ['normal', 'trouble', 'comm']);

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
    await pinned(staff, second.id).getByTestId('countdown').waitFor();
    expect(await pinned(staff, second.id).getByTestId('countdown').getAttribute('data-deadline-s')).toBe('20');
    stack.clock.advance(21_000); // past h01's 20 s acknowledgement deadline (NFPA 72 positive alarm sequence)
    await row(bureau, second.id).getByTestId('fire-escalation').locator('.call119').waitFor();
    expect(await bureau.locator('.fires tbody tr').first().evaluate((el, id) => (el.getAttribute('data-alert-id') ?? el.getAttribute('data-alert-ids') ?? '').split(' ').includes(id), second.id)).toBe(true);
    await homeCardIn(bureau, 'h01', ['escalated']);
    await pinned(staff, second.id).getByTestId('badge-119').waitFor();
    await bureau.screenshot({ path: join(shots, 'bureau-alarm.png'), fullPage: true });
    await bureau.getByTestId('lang-toggle').click();
    await bureau.getByText('Fire alarms and escalations').waitFor();
    await row(bureau, second.id).getByTestId('fire-escalation').getByText('Escalated: call 119').waitFor();
    await bureau.screenshot({ path: join(shots, 'bureau-alarm-en.png'), fullPage: true });
    await bureau.getByTestId('lang-toggle').click();
    await bureau.getByText('火警与升级').waitFor();
    const phone = await login('staff-h01', { width: 390, height: 844 });
    await pinned(phone, second.id).waitFor();
    await phone.screenshot({ path: join(shots, 'staff-alarm-phone.png') });
    const bureauPhone = await login('bureau', { width: 390, height: 844 });
    await row(bureauPhone, second.id).getByTestId('fire-escalation').locator('.call119').waitFor();
    await bureauPhone.screenshot({ path: join(shots, 'bureau-alarm-phone.png'), fullPage: true });
    await bureauPhone.context().close();
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
    await row(bureau, gap.id).waitFor();
    expect(await staff.locator(anyOf(gap.id)).count()).toBe(0);
    await staff.evaluate(() => (window as unknown as { __carewatch: { restoreSocket(): void } }).__carewatch.restoreSocket());
    await staff.getByTestId('conn-banner').and(staff.locator('[data-state="online"]')).waitFor();
    await pinned(staff, gap.id).waitFor();
    await gapDevice.close();
  });

  it("shows staff of another home nothing of it, through the page or the API", async () => {
    const h01Alerts = stack.alerts.lifecycle.open().filter((a) => a.homeId === 'h01');
    expect(h01Alerts.length).toBeGreaterThanOrEqual(3);
    for (const a of h01Alerts) expect(await other.locator(anyOf(a.id)).count()).toBe(0);
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
    expect(status).toEqual({ one: 404, live: 404, foreign: 0 });
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
    }, month)) as {
      homes: Array<{
        homeId: string; alerts: number; byClass: { alarm: number }; falseAlarms: number; falseAlarmRate: number | null; timeToAcknowledge: { medianS: number | null };
        fireEmergencies: { alerts: number; timeToAcknowledge: { medianS: number | null; p95S: number | null } }; missedAlerts: number;
        deviceOnlineRate: number | null; turnsDue: number; turnsOnTimeRate: number | null;
      }>;
    };
    const [header, ...lines] = csv.trim().split('\r\n');
    const cols = header!.split(',');
    const rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
    expect(rows.map((r) => r.home)).toEqual(json.homes.map((h) => h.homeId));
    const h01 = json.homes.find((h) => h.homeId === 'h01')!;
    expect(h01.byClass.alarm).toBeGreaterThanOrEqual(3);
    expect(h01.falseAlarms).toBe(1);
    for (const h of json.homes) {
      const r = rows.find((x) => x.home === h.homeId)!;
      expect([
        r.alerts, r.alarm, r.false_alarms, r.false_alarm_rate, r.ack_median_s, r.fire_emergency_alerts, r.fire_emergency_ack_median_s, r.fire_emergency_ack_p95_s,
        r.missed_alerts, r.device_online_rate, r.turns_due, r.turns_on_time_rate,
      ]).toEqual(
        [
          h.alerts, h.byClass.alarm, h.falseAlarms, h.falseAlarmRate, h.timeToAcknowledge.medianS, h.fireEmergencies.alerts, h.fireEmergencies.timeToAcknowledge.medianS,
          h.fireEmergencies.timeToAcknowledge.p95S, h.missedAlerts, h.deviceOnlineRate, h.turnsDue, h.turnsOnTimeRate,
        ].map((v) => (v === null ? '' : String(v))),
      );
    }
    expect(await bureau.getByTestId('stats-row-h01').locator('[data-col="alarm"]').textContent()).toBe(String(h01.byClass.alarm));
    expect(await bureau.getByTestId('stats-row-h01').locator('[data-col="missed_alerts"]').textContent()).toBe(String(h01.missedAlerts));
  });
  it('gives each signal class its own sound pattern', async () => {
    const ctx = await browser.newContext();
    contexts.push(ctx);
    const page = await ctx.newPage();
    await page.goto(stack.url);
    await page.getByTestId('login-form').waitFor();
    // The page's own module, driven class by class; the probe records the tones of the cycle started.
    // (A string, so vitest's transform leaves the browser's own dynamic import alone.)
    const cycles = (await page.evaluate(`(async () => {
      const mod = await import('/js/sound.js');
      const out = {};
      for (const c of ['alarm', 'prealarm', 'supervisory', 'trouble', 'care']) {
        mod.setAlarm(c);
        out[c] = JSON.parse(JSON.stringify(window.__carewatchAudio));
      }
      mod.setAlarm(null);
      return out;
    })()`)) as Record<string, AudioProbe>;
    expect(isTemporal3(cycles.alarm!)).toBe(true);
    const shape = (p: AudioProbe) => JSON.stringify([p.periodMs, p.lastCycle.map((x) => [x.offsetMs, x.durationMs, x.frequencyHz, x.type])]);
    const all = Object.values(cycles);
    expect(all.every((p) => p.lastCycle.length > 0)).toBe(true);
    expect(new Set(all.map(shape)).size).toBe(5);
    for (const c of ['prealarm', 'supervisory', 'trouble', 'care']) {
      expect(isTemporal3(cycles[c]!)).toBe(false);
      // Slower than the evacuation signal and not its harsh square wave.
      expect(cycles[c]!.periodMs!).toBeGreaterThan(cycles.alarm!.periodMs!);
      expect(cycles[c]!.lastCycle.every((x) => x.type !== 'square')).toBe(true);
    }
    expect(cycles.trouble!.periodMs!).toBeGreaterThan(cycles.supervisory!.periodMs!);
    await ctx.close();
  });

  it("shows a resident's live NEWS2 (marked partial) and the time to the next turn", async () => {
    // The resident's own devices publish through the broker, timed by the stack's manual clock.
    const vs = await stack.device('h01-vs-p02');
    const bed = await stack.device('h01-bed-p02');
    // NEWS2: HR 95 → 1, RR 21 → 2, SpO2 97 (scale 1) → 0, 37.0 °C → 0 = 3 (low risk, no alert);
    // no blood pressure, consciousness or air/oxygen reading, so the score is partial.
    const vitals = { heart_rate_bpm: 95, resp_rate_bpm: 21, spo2_pct: 97, body_temp_c: 37.0 };
    const publish = async (): Promise<void> => {
      const ts = stack.clock.now();
      await bed.telemetry({ bed_occupied: true, movement_index: 0 }, ts);
      await vs.telemetry(vitals, ts);
      // The ingest process is not part of this stack: store what it would have stored.
      await stack.writeLines([telemetryLine('h01-bed-p02', { bed_occupied: true, movement_index: 0 }, ts), telemetryLine('h01-vs-p02', vitals, ts)]);
    };
    // Seven readings at the monitor's 5 s interval: NEWS2 scores a monitor value once its readings
    // span 30 s (no score from the first sample or two after a start-up or a gap).
    await publish();
    for (let i = 0; i < 6; i++) {
      stack.clock.advance(5000);
      await publish();
    }
    await stack.alerts.drained();
    const tile = staff.getByTestId('resident-h01-p02');
    await expect
      .poll(async () => {
        await staff.evaluate(() => (window as unknown as { __carewatch: { refreshLive(): Promise<void> } }).__carewatch.refreshLive());
        return tile.getByTestId('news2').textContent();
      })
      .toMatch(/NEWS2\s*3/);
    expect(await tile.getByTestId('news2-partial').count()).toBe(1);
    expect(await tile.getByTestId('news2-partial').getAttribute('title')).toContain('systolic_bp');
    expect(await tile.getByTestId('vital-heart_rate_bpm').textContent()).toContain('95');
    expect(await tile.getByTestId('bed').textContent()).toContain('在床');
    // Lying down starts the repositioning interval: the next turn is due in about 2 h.
    expect(await tile.getByTestId('next-turn').getAttribute('data-minutes')).toMatch(/^\d+$/);
    expect(Number(await tile.getByTestId('next-turn').getAttribute('data-minutes'))).toBeGreaterThan(0);
    await screenshotOf(tile, join(shots, 'resident-tile.png'));
    await vs.close();
    await bed.close();
  });

  it('keeps an open page showing and sounding its alarms, signed out with a sign-in in its banner, when the session ends anyway', async () => {
    // Open alarms on the page and sounding (the escalated fire alarm is not acknowledged).
    const alarms = staff.locator('[data-testid="pinned-fire"]');
    expect(await alarms.count()).toBeGreaterThan(0);
    const shown = await alarms.count();
    const sounding = (await audio(staff)).playing;
    expect(sounding).not.toBeNull();
    // Past the 180 s token lifetime (tokenTtlS) of every session, renewed or not: the server cuts the
    // sockets at their tokens' expiry; a reconnect after a network blip is refused too.
    stack.clock.advance(180_000);
    await staff.evaluate(() => (window as unknown as { __carewatch: { dropSocket(): void } }).__carewatch.dropSocket());
    await staff.evaluate(() => (window as unknown as { __carewatch: { restoreSocket(): void } }).__carewatch.restoreSocket());
    // Not a blank, silent login form (before: login form, no card, no sound): the alarms it had stay
    // shown and sounding, and the banner says new ones no longer arrive, with the sign-in in it.
    await staff.getByTestId('conn-banner').and(staff.locator('[data-state="signed-out"]')).waitFor();
    expect(await staff.getByTestId('conn-banner').getByTestId('signed-out-head').isVisible()).toBe(true);
    expect(await staff.getByTestId('conn-banner').getByTestId('session-expired').isVisible()).toBe(true);
    expect(await staff.getByTestId('conn-banner').getByTestId('login-form').isVisible()).toBe(true);
    expect(await alarms.count()).toBe(shown);
    expect((await audio(staff)).playing).toBe(sounding);
    expect(await staff.evaluate(() => sessionStorage.getItem('cw.session'))).toBeNull();
    await staff.screenshot({ path: join(shots, 'session-expired.png') });
    // Bureau: the next API call is refused (401), and it too says so in its banner.
    await bureau.evaluate(() => (window as unknown as { __carewatch: { refreshLive(): Promise<void> } }).__carewatch.refreshLive());
    await bureau.getByTestId('session-expired').waitFor();
    expect(await bureau.getByTestId('conn-banner').getAttribute('data-state')).toBe('signed-out');
    // Signing in again from the banner brings the page back live, its alarms still there.
    await logInAs(staff, 'staff-h01');
    expect(await alarms.count()).toBe(shown);
    expect(await staff.getByTestId('signed-out-head').count()).toBe(0);
  });

  it("signs out on the server too, ending that desk's session and not the same account's at another desk", async () => {
    const tokenOf = (page: Page): Promise<string> => page.evaluate(() => (JSON.parse(sessionStorage.getItem('cw.session') ?? '{}') as { token: string }).token);
    const me = async (token: string): Promise<number> => (await fetch(`${stack.url}/api/me`, { headers: { authorization: `Bearer ${token}` } })).status;
    const online = (page: Page) => page.getByTestId('conn-banner').and(page.locator('[data-state="online"]'));
    const deskB = await login('staff-h01');
    await online(deskB).waitFor();
    const a = await tokenOf(staff);
    const b = await tokenOf(deskB);
    await staff.getByTestId('logout').click();
    await staff.getByTestId('login-form').waitFor();
    // The page's POST /api/logout ended the token on the server: copied anywhere, it is refused now.
    for (let i = 0; i < 100 && (await me(a)) !== 401; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await me(a)).toBe(401);
    expect(await me(b)).toBe(200);
    expect(await online(deskB).isVisible()).toBe(true);
    // Desk B's token signed out from elsewhere (as from another tab with it): its open page is ended
    // by the server over its socket and goes back to the login form. Its REST calls are cut here, so
    // a poll's 401 cannot be what takes it there.
    await deskB.route('**/api/**', (r) => r.abort());
    expect((await fetch(`${stack.url}/api/logout`, { method: 'POST', headers: { authorization: `Bearer ${b}` } })).status).toBe(204);
    await deskB.getByTestId('session-expired').waitFor();
    expect(await deskB.getByTestId('login-form').isVisible()).toBe(true);
  });
});
