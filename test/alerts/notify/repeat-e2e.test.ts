import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { createAlerts, type Alerts } from '../../../alerts/alerts.ts';
import { parseNotifyConfig, type NotifyConfig } from '../../../alerts/notify/config.ts';
import type { IncidentAuditEntry } from '../../../alerts/incidents/book.ts';
import type { RegistryIndex } from '../../../contract/registry-index.ts';
import type { Roster } from '../../../contract/registry.ts';
import { testInflux } from '../../support/influx-db.ts';
import { tempDir, testAlertsConfig, until } from '../support/harness.ts';
import { fireSignal } from '../support/signals.ts';
import { testRules } from '../support/test-rules.ts';
import { H01_ROSTER, rosterRegistry } from './fixtures.ts';
import { startReceiver, type Receiver } from './receiver.ts';

/**
 * Issue 15 "keep trying until someone answers" and channel scopes, end to end: a real alerts
 * process (in-process, real InfluxDB) with rosters and webhook / WeCom channels to local HTTP
 * receivers, on the manual clock. Repeats arrive while nobody acknowledges and stop at the
 * acknowledgement; a restarted process resumes them from the audit without sending twice; a shift
 * change pages the incoming nurse; a rung with nobody on duty is passed over at once; a fire in
 * h02 never reaches h01's chat group.
 */

const SECRET = 'e2e-webhook-secret-0123456789';
// 2026-01-01 01:00 UTC = Thursday 09:00 China Standard Time: h01's day shift is on, h02 has nobody.
const clock = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
let duty: Receiver;
let mgmt: Receiver;
let robots: Receiver;
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];

const h01 = H01_ROSTER;
// h02 staffs nights only: by day nobody is on duty there (the "empty rung").
const h02: Roster = {
  homeId: 'h02',
  timezone: 'Asia/Shanghai',
  people: [{ id: 'nurse-zhao', name: '赵护士', role: 'nurse', phone: '13800000003', addresses: { duty: 'zhao' } }],
  shifts: [{ id: 'night', name: '夜班', days: [1, 2, 3, 4, 5, 6, 7], start: '20:00', end: '08:00', people: ['nurse-zhao'] }],
  directors: [{ id: 'dir-sun', name: '孙院长', role: 'director', phone: '13900000002', addresses: { mgmt: 'sun' } }],
};

const registry = (): RegistryIndex => rosterRegistry([h01, h02]);

function notifyConfig(mgmtPolicy?: { baseDelayMs: number; maxDelayMs: number }): NotifyConfig {
  return parseNotifyConfig({
    baseUrl: 'https://carewatch.example.cn',
    channels: [
      { id: 'duty', type: 'webhook', url: `${duty.url}/duty`, secret: SECRET },
      { id: 'mgmt', type: 'webhook', url: `${mgmt.url}/mgmt`, secret: SECRET, ...(mgmtPolicy !== undefined ? { policy: mgmtPolicy } : {}) },
      // One WeCom robot per home's duty chat group: each carries only its own home's alarms.
      { id: 'wecom-h01', type: 'wecom', url: `${robots.url}/h01?key=k1`, homes: ['h01'] },
      { id: 'wecom-h02', type: 'wecom', url: `${robots.url}/h02?key=k2`, homes: ['h02'] },
    ],
    routes: [
      // No `repeat`: the default for critical, every 120 s until acknowledged.
      { severities: ['critical', 'high'], level: 0, channels: ['duty', 'wecom-h01', 'wecom-h02'] },
      { severities: ['critical', 'high'], level: 1, channels: ['mgmt'] },
      { severities: ['critical'], level: 2, channels: ['mgmt'] },
    ],
  });
}

async function start(stateDir: string, influx: { url: string; database: string }, mgmtPolicy?: { baseDelayMs: number; maxDelayMs: number }): Promise<Alerts> {
  const alerts = createAlerts({
    config: testAlertsConfig({ influx, stateDir }),
    registry: registry(),
    logger: pino({ level: process.env.ALERTS_TEST_LOG ?? 'silent' }),
    rules: testRules(),
    mqtt: false,
    clock,
    notify: notifyConfig(mgmtPolicy),
    notifyRandom: () => 1,
  });
  await alerts.start();
  return alerts;
}

const addressOf = (body: string): string | undefined => (JSON.parse(body) as { recipients: Array<{ address?: string }> }).recipients[0]?.address;
const to = (r: Receiver, address: string): number => r.requests.filter((q) => addressOf(q.body) === address).length;
const notes = (a: Alerts, id: string): IncidentAuditEntry[] => (a.lifecycle.incidentAudit(id) ?? []).filter((e) => e.action === 'notified' || e.action === 'notify_failed');
/**
 * Waits until `n` pages to a person are audited as delivered: the reply has been read, so moving the
 * manual clock on cannot fire that attempt's 10 s timeout.
 */
const delivered = (a: Alerts, id: string, person: string, n: number): Promise<unknown> =>
  until(() => notes(a, id).filter((e) => e.recipient === person && e.status === 'delivered').length === n, `${n} page(s) to ${person} delivered`);
/** Lets in-flight HTTP requests land (real time; the manual clock does not move). */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

beforeAll(async () => {
  duty = await startReceiver();
  mgmt = await startReceiver();
  robots = await startReceiver();
});
afterAll(async () => {
  await duty.close();
  await mgmt.close();
  await robots.close();
  for (const d of dirs) await d.remove();
});

function reset(): void {
  for (const r of [duty, mgmt, robots]) {
    r.requests.length = 0;
    r.reply = () => ({ status: 200, body: '{"errcode":0,"errmsg":"ok"}' });
  }
}

describe('keep trying until someone answers', () => {
  it('repeats at the bureau every 120 s while unacknowledged, resumes after a restart without a duplicate, stops at the acknowledgement', async () => {
    const influx = testInflux('notify_repeat');
    const dir = await tempDir('notify-repeat-');
    dirs.push(dir);
    reset();
    const timersBefore = clock.pending();
    let a = await start(dir.path, influx);
    try {
      a.lifecycle.applySignals([fireSignal({ sourceTs: clock.now(), receivedTs: clock.now() })]);
      const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');
      await delivered(a, incident.id, 'nurse-li', 1);
      // NFPA 72 positive alarm sequence: unacknowledged after 15 s, the incident is the bureau's.
      clock.advance(15_000);
      await delivered(a, incident.id, 'dir-zhang', 1);
      await delivered(a, incident.id, 'officer-chen', 1);
      clock.advance(119_000);
      await settle();
      expect(to(mgmt, 'chen')).toBe(1);
      clock.advance(1_000);
      await until(() => to(mgmt, 'chen') === 2, 'bureau paged again at 120 s');
      // Repeats go to the incident's level (the bureau), not to every rung again.
      expect([to(duty, 'li'), to(mgmt, 'zhang')]).toEqual([1, 1]);
      await delivered(a, incident.id, 'officer-chen', 2);

      // A restart 30 s after the last page: nothing lost, so nothing is sent at start; the repeat comes at its time.
      clock.advance(30_000);
      await a.close();
      // close() releases the pending repeat's timer (and every other).
      expect(clock.pending()).toBe(timersBefore);
      a = await start(dir.path, influx);
      expect(a.lifecycle.openIncidents().map((i) => i.id)).toEqual([incident.id]);
      await settle();
      expect(to(mgmt, 'chen')).toBe(2);
      clock.advance(89_000);
      await settle();
      expect(to(mgmt, 'chen')).toBe(2);
      clock.advance(1_000);
      await until(() => to(mgmt, 'chen') === 3, 'repeat after the restart, on time');

      // Down for 10 minutes: the overdue repeat goes out at start.
      await delivered(a, incident.id, 'officer-chen', 3);
      await a.close();
      clock.advance(600_000);
      a = await start(dir.path, influx);
      await until(() => to(mgmt, 'chen') === 4, 'overdue page at start');
      await delivered(a, incident.id, 'officer-chen', 4);

      // The acknowledgement stops every repeat.
      expect(a.lifecycle.ackIncident(incident.id, { username: 'bureau', role: 'bureau' }).ok).toBe(true);
      clock.advance(60 * 60_000);
      await settle();
      expect([to(duty, 'li'), to(mgmt, 'zhang'), to(mgmt, 'chen')]).toEqual([1, 1, 4]);
      expect(a.notifier?.stats()).toMatchObject({ resumed: 1, repeats: 1 });
    } finally {
      await a.close();
    }
  });

  it('a failing bureau endpoint: each page is retried, the repeat comes on time, the acknowledgement cancels the pending retry; close releases every timer', async () => {
    const influx = testInflux('notify_repeat_ack');
    const dir = await tempDir('notify-repeat-ack-');
    dirs.push(dir);
    reset();
    mgmt.reply = (r) => (addressOf(r.body) === 'chen' ? { status: 503 } : { status: 200 });
    const timersBefore = clock.pending();
    const a = await start(dir.path, influx);
    try {
      a.lifecycle.applySignals([fireSignal({ sourceTs: clock.now(), receivedTs: clock.now() })]);
      const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');
      await delivered(a, incident.id, 'nurse-li', 1);
      clock.advance(15_000);
      await delivered(a, incident.id, 'dir-zhang', 1);
      const chenAttempts = (): IncidentAuditEntry[] => notes(a, incident.id).filter((e) => e.recipient === 'officer-chen');
      // Back-off 2, 4, 8, 16 s (jitter fixed at 1): five attempts, then failed.
      for (const [n, wait] of [[1, 2_000], [2, 4_000], [3, 8_000], [4, 16_000]] as const) {
        await until(() => chenAttempts().length === n, `attempt ${n} audited`);
        clock.advance(wait);
      }
      await until(() => chenAttempts().some((e) => e.status === 'failed'), 'first page failed after 5 attempts');
      expect(to(mgmt, 'chen')).toBe(5);
      // The repeat (120 s after the bureau's first page) tries again, and is retrying when acknowledged.
      clock.advance(incident.openedAt + 135_000 - clock.now());
      await until(() => chenAttempts().length === 6, 'repeat attempted');
      expect(to(mgmt, 'chen')).toBe(6);
      expect(a.lifecycle.ackIncident(incident.id, { username: 'bureau', role: 'bureau' }).ok).toBe(true);
      await until(() => chenAttempts().some((e) => e.status === 'cancelled' && e.reason === 'acknowledged by bureau'), 'pending retry cancelled');
      clock.advance(60 * 60_000);
      await settle();
      expect(to(mgmt, 'chen')).toBe(6);
      expect(to(duty, 'li')).toBe(1);
    } finally {
      await a.close();
    }
    expect(clock.pending()).toBe(timersBefore);
  });

  it('a repeat is not stacked on the same page still waiting for its retry', async () => {
    const influx = testInflux('notify_coalesce');
    const dir = await tempDir('notify-coalesce-');
    dirs.push(dir);
    reset();
    mgmt.reply = (r) => (addressOf(r.body) === 'chen' ? { status: 503 } : { status: 200 });
    // The bureau page's retry waits 200 s: longer than the 120 s repeat period.
    const a = await start(dir.path, influx, { baseDelayMs: 200_000, maxDelayMs: 200_000 });
    try {
      a.lifecycle.applySignals([fireSignal({ sourceTs: clock.now(), receivedTs: clock.now() })]);
      const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');
      await delivered(a, incident.id, 'nurse-li', 1);
      clock.advance(15_000);
      await until(() => notes(a, incident.id).some((e) => e.recipient === 'officer-chen' && e.status === 'retrying'), 'bureau page retrying');
      clock.advance(120_000);
      await settle();
      expect(to(mgmt, 'chen')).toBe(1);
      expect(a.notifier?.stats()).toMatchObject({ repeatsCoalesced: 1 });
      clock.advance(80_000); // the retry, 200 s after the first attempt
      await until(() => to(mgmt, 'chen') === 2, 'the retry');
      expect(a.lifecycle.ackIncident(incident.id, { username: 'bureau', role: 'bureau' }).ok).toBe(true);
    } finally {
      await a.close();
    }
  });

  it('a shift change pages the incoming nurse while the alarm is unacknowledged', async () => {
    const influx = testInflux('notify_shift');
    const dir = await tempDir('notify-shift-');
    dirs.push(dir);
    reset();
    clock.set(Date.UTC(2026, 0, 1, 11, 58)); // 19:58 in Shanghai
    const a = await start(dir.path, influx);
    try {
      a.lifecycle.applySignals([fireSignal({ sourceTs: clock.now(), receivedTs: clock.now() })]);
      const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');
      await delivered(a, incident.id, 'nurse-li', 1);
      clock.advance(15_000);
      await delivered(a, incident.id, 'officer-chen', 1);
      clock.advance(104_000);
      await settle();
      expect(to(duty, 'wang')).toBe(0);
      clock.advance(1_000); // 20:00: the night shift begins
      await until(() => to(duty, 'wang') === 1, 'incoming night nurse paged');
      await delivered(a, incident.id, 'nurse-wang', 1);
      const robotsH01 = robots.requests.filter((r) => r.url.startsWith('/h01'));
      expect(JSON.parse(robotsH01[robotsH01.length - 1]!.body)).toMatchObject({ text: { mentioned_mobile_list: ['13800000002'] } });
      expect(to(duty, 'li')).toBe(1);
      expect(notes(a, incident.id).some((e) => e.recipient === 'nurse-wang' && e.escalationLevel === 0 && e.status === 'delivered')).toBe(true);
      expect(a.lifecycle.ackIncident(incident.id, { username: 'staff-h01', role: 'staff', homeId: 'h01' }).ok).toBe(true);
    } finally {
      await a.close();
    }
  });
});

describe('empty rungs and scopes', () => {
  it('nobody on duty in h02: its director is paged at once (audited); h02 fire reaches h02 robot, never h01 robot', async () => {
    const influx = testInflux('notify_scope');
    const dir = await tempDir('notify-scope-');
    dirs.push(dir);
    reset();
    clock.set(Date.UTC(2026, 0, 2, 1, 0)); // Friday 09:00 in Shanghai: h02 has nobody on duty
    const a = await start(dir.path, influx);
    try {
      a.lifecycle.applySignals([fireSignal({ key: 'smoke:h02-sd-r101', homeId: 'h02', deviceId: 'h02-sd-r101', sourceTs: clock.now(), receivedTs: clock.now() })]);
      const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');
      expect(incident.homeId).toBe('h02');
      // Before any escalation deadline: the director, because level 0 is empty.
      await until(() => to(mgmt, 'sun') === 1, 'director paged at once');
      expect(incident.escalationLevel ?? 0).toBe(0);
      await until(() => notes(a, incident.id).some((e) => e.status === 'no_recipient' && e.reason === 'nobody on duty at level 0: level 1 notified at once'), 'jump audited');
      await until(() => robots.requests.some((r) => r.url.startsWith('/h02')), 'h02 chat group posted');
      await delivered(a, incident.id, 'dir-sun', 1);
      await until(() => notes(a, incident.id).some((e) => e.recipient === 'group' && e.status === 'delivered'), 'group post delivered');
      clock.advance(15_000);
      await delivered(a, incident.id, 'officer-chen', 1);
      for (let i = 1; i <= 5; i++) {
        clock.advance(120_000);
        await delivered(a, incident.id, 'officer-chen', i + 1);
      }
      expect(to(mgmt, 'chen')).toBe(6);
      // h01's robot and h01's people never heard of h02's fire.
      expect(robots.requests.filter((r) => r.url.startsWith('/h01'))).toEqual([]);
      expect(duty.requests).toEqual([]);
      expect(mgmt.requests.filter((r) => addressOf(r.body) === 'zhang')).toEqual([]);
      expect(a.lifecycle.ackIncident(incident.id, { username: 'bureau', role: 'bureau' }).ok).toBe(true);
    } finally {
      await a.close();
    }
  });
});
