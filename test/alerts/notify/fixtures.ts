import type { IncidentMessage } from '../../../contract/incidents.ts';
import { indexRegistry, type RegistryIndex } from '../../../contract/registry-index.ts';
import type { Roster, SiteContacts } from '../../../contract/registry.ts';
import type { Notification } from '../../../alerts/notify/channel.ts';
import { renderIncident } from '../../../alerts/notify/message.ts';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import type { Clock } from '../../../common/clock.ts';
import { createAlerts, type Alerts } from '../../../alerts/alerts.ts';
import { parseNotifyConfig } from '../../../alerts/notify/config.ts';
import type { Rule } from '../../../alerts/rules/types.ts';
import { testInflux } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { tempDir, testAlertsConfig } from '../support/harness.ts';
import { startReceiver, type Receiver } from './receiver.ts';

/** Shared shapes of the notification tests (issue 15): one incident, one home's roster, the bureau. */

/** A fall of 王秀英 in 阳光颐养院 room 101 bed A, critical. */
export const FALL_INCIDENT: IncidentMessage = {
  id: 'inc-1',
  homeId: 'h01',
  kind: 'care',
  residentId: 'h01-p01',
  roomIds: ['r101'],
  severity: 'critical',
  signal: 'care',
  state: 'raised',
  version: 1,
  ts: Date.UTC(2026, 0, 5, 19, 0),
  openedAt: Date.UTC(2026, 0, 5, 19, 0),
  firstAlertId: 'a-1',
  points: [],
  message: { zh: '跌倒', en: 'Fall detected' },
};

/** That incident rendered for level 0, addressed to 李护士. */
export function fallNotification(over: Partial<Notification> = {}): Notification {
  const text = renderIncident(FALL_INCIDENT, demoRegistry(), 'https://cw.example.cn/', 0);
  return { id: 'inc-1:0:x', incidentId: 'inc-1', homeId: 'h01', severity: 'critical', level: 0, ...text, recipients: [{ personId: 'li', name: '李护士', address: '+8613800000001', phone: '13800000001' }], ...over };
}

/** h01: 李护士 by day (08–20 China time), 王护士 by night, 张院长 director; addresses on `duty` / `mgmt`. */
export const H01_ROSTER: Roster = {
  homeId: 'h01',
  timezone: 'Asia/Shanghai',
  people: [
    { id: 'nurse-li', name: '李护士', role: 'nurse', phone: '13800000001', addresses: { duty: 'li' } },
    { id: 'nurse-wang', name: '王护士', role: 'nurse', phone: '13800000002', addresses: { duty: 'wang' } },
  ],
  shifts: [
    { id: 'day', name: '白班', days: [1, 2, 3, 4, 5, 6, 7], start: '08:00', end: '20:00', people: ['nurse-li'] },
    { id: 'night', name: '夜班', days: [1, 2, 3, 4, 5, 6, 7], start: '20:00', end: '08:00', people: ['nurse-wang'] },
  ],
  directors: [{ id: 'dir-zhang', name: '张院长', role: 'director', phone: '13900000001', addresses: { mgmt: 'zhang' } }],
};

export const BUREAU_CONTACTS: SiteContacts = { bureau: [{ id: 'officer-chen', name: '陈科长', role: 'bureau officer', addresses: { mgmt: 'chen' } }] };

/** The demo site with only these rosters and the bureau's 陈科长. */
export function rosterRegistry(rosters: readonly Roster[]): RegistryIndex {
  return indexRegistry({ ...demoRegistry().site, rosters: [...rosters], contacts: BUREAU_CONTACTS });
}

/** The webhook secret of the tests' receivers (≥ 16 characters, as the notify config requires). */
export const TEST_WEBHOOK_SECRET = 'test-webhook-secret-0123456789';

/**
 * A whole alerts process (in-process, no MQTT) that pages webhook channels: `channels` maps a channel
 * id to its receiver URL, `levels` the ladder levels to the channel paged there, for every severity.
 * Jitter off (`notifyRandom` 1). `close()` also removes its state directory.
 */
export async function startPagingAlerts(o: {
  readonly name: string;
  readonly registry: RegistryIndex;
  readonly rules: readonly Rule[];
  readonly clock: Clock;
  readonly channels: Readonly<Record<string, string>>;
  readonly levels: ReadonlyArray<readonly [number, string]>;
}): Promise<{ readonly alerts: Alerts; close(): Promise<void> }> {
  const dir = await tempDir(`alerts-${o.name}-`);
  const severities = ['critical', 'high', 'medium', 'low'] as const;
  const alerts = createAlerts({
    config: testAlertsConfig({ influx: testInflux(o.name), stateDir: dir.path }),
    registry: o.registry,
    logger: pino({ level: 'silent' }),
    rules: [...o.rules],
    mqtt: false,
    clock: o.clock,
    notify: parseNotifyConfig({
      baseUrl: 'https://carewatch.example.cn',
      channels: Object.entries(o.channels).map(([id, url]) => ({ id, type: 'webhook', url, secret: TEST_WEBHOOK_SECRET })),
      routes: o.levels.map(([level, channel]) => ({ severities: [...severities], level, channels: [channel] })),
    }),
    notifyRandom: () => 1,
  });
  await alerts.start();
  return {
    alerts,
    async close() {
      await alerts.close();
      await dir.remove();
    },
  };
}

/**
 * One receiver for the file's tests (started before them) and the alerts runs they start (closed
 * after them, then the receiver). Read `receiver()` inside a test.
 */
export function useReceiverAndRuns(): { receiver(): Receiver; track<T extends { close(): Promise<void> }>(run: T): T } {
  let receiver: Receiver | undefined;
  const runs: Array<{ close(): Promise<void> }> = [];
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(async () => {
    for (const run of runs.splice(0)) await run.close();
    await receiver?.close();
  });
  return {
    receiver() {
      if (receiver === undefined) throw new Error('useReceiverAndRuns(): read the receiver inside a test');
      return receiver;
    },
    track(run) {
      runs.push(run);
      return run;
    },
  };
}
