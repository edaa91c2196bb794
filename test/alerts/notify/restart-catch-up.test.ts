import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock, type Clock, type ManualClock } from '../../../common/clock.ts';
import { createAlerts, type Alerts } from '../../../alerts/alerts.ts';
import { parseNotifyConfig, type NotifyConfig } from '../../../alerts/notify/config.ts';
import type { IncidentAuditEntry } from '../../../alerts/incidents/book.ts';
import type { RegistryIndex } from '../../../contract/registry-index.ts';
import { testInflux } from '../../support/influx-db.ts';
import { scrape } from '../../metrics/exposition.ts';
import { tempDir, testAlertsConfig, until } from '../support/harness.ts';
import { fireSignal } from '../support/signals.ts';
import { testRules } from '../support/test-rules.ts';
import { H01_ROSTER, rosterRegistry } from './fixtures.ts';
import { startReceiver, type Receiver } from './receiver.ts';

/**
 * "An escalation nobody answered reaches the bureau", across restarts and failing channels: a real
 * alerts process (in-process, real InfluxDB) paging local HTTP receivers on the manual clock.
 *
 * - A deadline that passed while alerts was down escalates at start; the rungs it reached are paged
 *   (the notifier catches up from the book and the audit, whether the escalation came before it
 *   started or after), the director included when the fire went past him.
 * - An acknowledged incident's escalation page cut short by a restart is sent again at start.
 * - An acknowledged incident's escalation page whose every attempt failed is sent again until it is
 *   delivered.
 */

const SECRET = 'e2e-webhook-secret-0123456789';
const staff = { username: 'nurse', role: 'staff' as const, homeId: 'h01' };
let duty: Receiver;
let mgmt: Receiver;
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];

/**
 * The manual clock, except that a timer armed already due runs on the next turn of the event loop
 * as a real one does (the manual clock would hold it until the test moves time): an overdue deadline
 * re-armed at start fires while alerts is still starting, as in production.
 */
function realisticClock(manual: ManualClock): Clock {
  return {
    now: () => manual.now(),
    setTimeout(fn, ms) {
      const timer = manual.setTimeout(fn, ms);
      if (ms <= 0) setImmediate(() => manual.advance(0));
      return timer;
    },
    clearTimeout: (timer) => manual.clearTimeout(timer),
  };
}

function notifyConfig(): NotifyConfig {
  return parseNotifyConfig({
    baseUrl: 'https://carewatch.example.cn',
    channels: [
      { id: 'duty', type: 'webhook', url: `${duty.url}/duty`, secret: SECRET },
      { id: 'mgmt', type: 'webhook', url: `${mgmt.url}/mgmt`, secret: SECRET },
    ],
    routes: [
      { severities: ['critical', 'high'], level: 0, channels: ['duty'] },
      { severities: ['critical', 'high'], level: 1, channels: ['mgmt'] },
      { severities: ['critical'], level: 2, channels: ['mgmt'] },
    ],
  });
}

const registry = (): RegistryIndex => rosterRegistry([H01_ROSTER]);

async function start(clock: Clock, stateDir: string, influx: { url: string; database: string }): Promise<Alerts> {
  const a = createAlerts({ config: testAlertsConfig({ influx, stateDir }), registry: registry(), logger: pino({ level: process.env.ALERTS_TEST_LOG ?? 'silent' }), rules: testRules(), mqtt: false, clock, notify: notifyConfig(), notifyRandom: () => 1 });
  await a.start();
  return a;
}

const addressOf = (body: string): string | undefined => (JSON.parse(body) as { recipients: Array<{ address?: string }> }).recipients[0]?.address;
const to = (r: Receiver, address: string): number => r.requests.filter((q) => addressOf(q.body) === address).length;
const notes = (a: Alerts, id: string): IncidentAuditEntry[] => (a.lifecycle.incidentAudit(id) ?? []).filter((e) => e.action === 'notified' || e.action === 'notify_failed');
const deliveredTo = (a: Alerts, id: string, person: string): number => notes(a, id).filter((e) => e.recipient === person && e.status === 'delivered').length;
const escalations = (a: Alerts, id: string): string[] => (a.lifecycle.incidentAudit(id) ?? []).filter((e) => e.action === 'escalated').map((e) => `${e.reason ?? ''}@${e.escalationLevel ?? 0}`);
/** Lets in-flight HTTP requests land (real time; the manual clock does not move). */
const settle = (ms = 300): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Moves the manual clock in steps (each letting the HTTP exchange it set off land) until `done`. */
async function advanceUntil(clock: ManualClock, done: () => boolean, what: string, stepMs = 5_000, maxSteps = 400): Promise<void> {
  for (let i = 0; i < maxSteps && !done(); i++) {
    clock.advance(stepMs);
    await settle(25);
  }
  await until(() => done(), what);
}

beforeAll(async () => {
  duty = await startReceiver();
  mgmt = await startReceiver();
});
afterAll(async () => {
  await duty.close();
  await mgmt.close();
  for (const d of dirs) await d.remove();
});

async function fresh(name: string): Promise<{ influx: { url: string; database: string }; dir: string }> {
  const dir = await tempDir(`notify-${name}-`);
  dirs.push(dir);
  for (const r of [duty, mgmt]) {
    r.requests.length = 0;
    r.reply = () => ({ status: 200 });
  }
  return { influx: testInflux(name.replace(/-/g, '_')), dir: dir.path };
}

describe('a restart catches up with the escalations nobody followed', () => {
  it('acknowledged, its 180 s investigation over while alerts was down: the director and the bureau are paged at start, the nurse not again', async () => {
    const manual = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
    const clock = realisticClock(manual);
    const { influx, dir } = await fresh('catchup-confirm');
    let a = await start(clock, dir, influx);
    const id = await (async () => {
      try {
        a.lifecycle.applySignals([fireSignal({ sourceTs: clock.now(), receivedTs: clock.now() })]);
        const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');
        await until(() => deliveredTo(a, incident.id, 'nurse-li') === 1, 'the nurse paged');
        manual.advance(5_000);
        expect(a.lifecycle.ackIncident(incident.id, staff).ok).toBe(true);
        return incident.id;
      } finally {
        await a.close();
      }
    })();
    // Down across the confirm deadline (180 s after the acknowledgement).
    manual.advance(200_000);
    a = await start(clock, dir, influx);
    try {
      await until(() => escalations(a, id).includes('confirm_deadline@2'), 'escalated at start');
      await until(() => deliveredTo(a, id, 'officer-chen') === 1, 'the bureau paged');
      await until(() => deliveredTo(a, id, 'dir-zhang') === 1, 'the director paged');
      await settle();
      expect([to(duty, 'li'), to(mgmt, 'zhang'), to(mgmt, 'chen')]).toEqual([1, 1, 1]);
    } finally {
      await a.close();
    }
  });

  it('unacknowledged, its 15 s deadline passed while alerts was down: the director it went past is paged as well as the bureau', async () => {
    const manual = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
    const clock = realisticClock(manual);
    const { influx, dir } = await fresh('catchup-ack');
    let a = await start(clock, dir, influx);
    let id = '';
    try {
      a.lifecycle.applySignals([fireSignal({ sourceTs: clock.now(), receivedTs: clock.now() })]);
      const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');
      id = incident.id;
      await until(() => deliveredTo(a, id, 'nurse-li') === 1, 'the nurse paged');
      manual.advance(5_000);
    } finally {
      await a.close();
    }
    manual.advance(20_000);
    a = await start(clock, dir, influx);
    try {
      await until(() => escalations(a, id).includes('ack_deadline@2'), 'escalated at start');
      await until(() => deliveredTo(a, id, 'officer-chen') >= 1, 'the bureau paged');
      await until(() => deliveredTo(a, id, 'dir-zhang') === 1, 'the director paged');
      await settle();
      expect([to(duty, 'li'), to(mgmt, 'zhang')]).toEqual([1, 1]);
    } finally {
      await a.close();
    }
  });

  it('acknowledged, the bureau page cut short by a restart: sent again at start and delivered, the director not twice', async () => {
    const manual = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
    const { influx, dir } = await fresh('catchup-cut');
    mgmt.reply = (r) => (addressOf(r.body) === 'chen' ? { status: 503 } : { status: 200 });
    let a = await start(manual, dir, influx);
    let id = '';
    try {
      a.lifecycle.applySignals([fireSignal({ sourceTs: manual.now(), receivedTs: manual.now() })]);
      const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');
      id = incident.id;
      await until(() => deliveredTo(a, id, 'nurse-li') === 1, 'the nurse paged');
      manual.advance(5_000);
      expect(a.lifecycle.ackIncident(id, staff).ok).toBe(true);
      manual.advance(180_000); // the confirm deadline: the bureau's
      await until(() => notes(a, id).some((e) => e.recipient === 'officer-chen' && e.status === 'retrying'), 'the bureau page retrying');
      await until(() => deliveredTo(a, id, 'dir-zhang') === 1, 'the director paged');
    } finally {
      await a.close();
    }
    expect(notes(a, id).filter((e) => e.recipient === 'officer-chen').at(-1)?.status).toBe('cancelled');
    mgmt.reply = () => ({ status: 200 });
    a = await start(manual, dir, influx);
    try {
      await until(() => deliveredTo(a, id, 'officer-chen') === 1, 'the bureau page sent again at start');
      manual.advance(60 * 60_000);
      await settle();
      expect([to(duty, 'li'), to(mgmt, 'zhang'), deliveredTo(a, id, 'officer-chen')]).toEqual([1, 1, 1]);
    } finally {
      await a.close();
    }
  });
});

describe('a failed escalation page is sent again until delivered', () => {
  it('real_fire confirmed while the bureau endpoint is down for minutes: its page fails, is sent again, and reaches the bureau once the endpoint is back', async () => {
    const manual = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
    const { influx, dir } = await fresh('redeliver');
    mgmt.reply = (r) => (addressOf(r.body) === 'chen' ? { status: 503 } : { status: 200 });
    const timersBefore = manual.pending();
    const a = await start(manual, dir, influx);
    try {
      a.lifecycle.applySignals([fireSignal({ sourceTs: manual.now(), receivedTs: manual.now() })]);
      const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');
      const id = incident.id;
      await until(() => deliveredTo(a, id, 'nurse-li') === 1, 'the nurse paged');
      manual.advance(5_000);
      expect(a.lifecycle.ackIncident(id, staff).ok).toBe(true);
      expect(a.lifecycle.confirmIncident(id, staff, 'real_fire').ok).toBe(true);
      const failedRounds = (): number => notes(a, id).filter((e) => e.recipient === 'officer-chen' && e.status === 'failed').length;
      // Two whole rounds of attempts fail (the endpoint down for minutes)…
      await advanceUntil(manual, () => failedRounds() === 2, 'two rounds failed');
      expect(a.notifier?.stats().redeliveries).toBe(1);
      expect((await scrape(`http://127.0.0.1:${a.port}`)).value('carewatch_notify_redeliveries_total')).toBe(1);
      // …then it is back: the next round delivers.
      mgmt.reply = () => ({ status: 200 });
      await advanceUntil(manual, () => deliveredTo(a, id, 'officer-chen') === 1, 'delivered once the endpoint is back');
      // Delivered: nothing more (acknowledged: no repeats).
      const sent = to(mgmt, 'chen');
      manual.advance(60 * 60_000);
      await settle();
      expect(to(mgmt, 'chen')).toBe(sent);
      expect(deliveredTo(a, id, 'dir-zhang')).toBe(1);
    } finally {
      await a.close();
    }
    expect(manual.pending()).toBe(timersBefore);
  });

  it('unacknowledged, the bureau page failed and waiting for its next round: the acknowledgement answers it, nothing more is sent', async () => {
    const manual = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
    const { influx, dir } = await fresh('redeliver-ack');
    mgmt.reply = (r) => (addressOf(r.body) === 'chen' ? { status: 503 } : { status: 200 });
    const a = await start(manual, dir, influx);
    try {
      a.lifecycle.applySignals([fireSignal({ sourceTs: manual.now(), receivedTs: manual.now() })]);
      const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');
      const id = incident.id;
      await until(() => deliveredTo(a, id, 'nurse-li') === 1, 'the nurse paged');
      manual.advance(15_000); // unacknowledged: the bureau's
      await advanceUntil(manual, () => notes(a, id).some((e) => e.recipient === 'officer-chen' && e.status === 'failed'), 'a round failed', 2_000);
      const attempts = to(mgmt, 'chen');
      expect(a.lifecycle.ackIncident(id, { username: 'bureau', role: 'bureau' }).ok).toBe(true);
      manual.advance(60 * 60_000);
      await settle();
      expect(to(mgmt, 'chen')).toBe(attempts);
      expect(a.notifier?.stats().redeliveries).toBe(0);
    } finally {
      await a.close();
    }
  });

  it('a failed page waiting for its next round when alerts closes: close releases the round, the next start sends it at once', async () => {
    const manual = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
    const { influx, dir } = await fresh('redeliver-restart');
    mgmt.reply = (r) => (addressOf(r.body) === 'chen' ? { status: 503 } : { status: 200 });
    const timersBefore = manual.pending();
    let a = await start(manual, dir, influx);
    let id = '';
    try {
      a.lifecycle.applySignals([fireSignal({ sourceTs: manual.now(), receivedTs: manual.now() })]);
      const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');
      id = incident.id;
      await until(() => deliveredTo(a, id, 'nurse-li') === 1, 'the nurse paged');
      manual.advance(5_000);
      expect(a.lifecycle.ackIncident(id, staff).ok).toBe(true);
      expect(a.lifecycle.confirmIncident(id, staff, 'real_fire').ok).toBe(true);
      await advanceUntil(manual, () => notes(a, id).some((e) => e.recipient === 'officer-chen' && e.status === 'failed'), 'a round failed', 2_000);
    } finally {
      await a.close();
    }
    // The waiting round's timer went with close().
    expect(manual.pending()).toBe(timersBefore);
    const attempts = to(mgmt, 'chen');
    mgmt.reply = () => ({ status: 200 });
    a = await start(manual, dir, influx);
    try {
      await until(() => deliveredTo(a, id, 'officer-chen') === 1, 'the failed page sent at start');
      expect(to(mgmt, 'chen')).toBe(attempts + 1);
      expect(deliveredTo(a, id, 'dir-zhang')).toBe(1);
    } finally {
      await a.close();
    }
  });
});
