import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock, type ManualClock } from '../../common/clock.ts';
import type { Actor } from '../../alerts/access.ts';
import { createAlerts, type Alerts } from '../../alerts/alerts.ts';
import { parseNotifyConfig } from '../../alerts/notify/config.ts';
import { defaultRules } from '../../alerts/rules/index.ts';
import { testInflux } from '../support/influx-db.ts';
import { tempDir, testAlertsConfig, until } from './support/harness.ts';
import { H01_ROSTER, rosterRegistry } from './notify/fixtures.ts';
import { startReceiver, type Receiver } from './notify/receiver.ts';

const SECRET = 'hunt-webhook-secret-0123456789';
const staff: Actor = { username: 'staff-h01', role: 'staff', homeId: 'h01' };
const registry = rosterRegistry([H01_ROSTER]);
let duty: Receiver;
let mgmt: Receiver;
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
const running: Alerts[] = [];
beforeAll(async () => {
  duty = await startReceiver();
  mgmt = await startReceiver();
});
afterAll(async () => {
  for (const a of running) await a.close();
  await duty.close();
  await mgmt.close();
  for (const d of dirs) await d.remove();
});

async function start(clock: ManualClock): Promise<Alerts> {
  const dir = await tempDir('hunt-press-');
  dirs.push(dir);
  const a = createAlerts({
    config: testAlertsConfig({ influx: testInflux('hunt_press'), stateDir: dir.path }),
    registry,
    logger: pino({ level: 'silent' }),
    rules: defaultRules(),
    mqtt: false,
    clock,
    notify: parseNotifyConfig({
      baseUrl: 'https://carewatch.example.cn',
      channels: [
        { id: 'duty', type: 'webhook', url: `${duty.url}/duty`, secret: SECRET },
        { id: 'mgmt', type: 'webhook', url: `${mgmt.url}/mgmt`, secret: SECRET },
      ],
      routes: [
        { severities: ['critical', 'high', 'medium', 'low'], level: 0, channels: ['duty'] },
        { severities: ['critical', 'high', 'medium', 'low'], level: 1, channels: ['mgmt'] },
        { severities: ['critical', 'high', 'medium', 'low'], level: 2, channels: ['mgmt'] },
      ],
    }),
    notifyRandom: () => 1,
  });
  await a.start();
  running.push(a);
  return a;
}

function press(a: Alerts, clock: ManualClock, deviceId: string): void {
  const now = clock.now();
  a.handleInput({ type: 'event', now, device: registry.device(deviceId)!, ts: now, receivedTs: now, event: { ts: now, seq: 1, type: 'sos_button' } as never });
}

/**
 * A call cord pulled again after the first call was acknowledged (not resolved) pages again, from
 * the duty staff up (VDE 0834-1: a call ends only at the bedside). Until session 22 the second pull
 * was only an audit entry ("reactivated") on an acknowledged alert: nobody was paged (a helper's hunt).
 */
describe('a call button pulled again after the first call was acknowledged', () => {
  it('pages the duty staff again and wants a new acknowledgement', async () => {
    // Thursday 09:00 China time: the day nurse is on duty.
    const clock = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
    const a = await start(clock);
    press(a, clock, 'h01-nc-f1-bath');
    const inc = await until(() => a.lifecycle.openIncidents().find((i) => i.kind === 'care'), 'the call incident');
    const pagesOf = (): number => duty.requests.filter((r) => r.body.includes(inc.id)).length;
    await until(() => pagesOf() > 0 || undefined, 'the first call paged');
    const alert = a.lifecycle.open().find((x) => x.rule === 'sos');
    if (alert === undefined) throw new Error('no sos alert');
    expect(a.lifecycle.ack(alert.id, staff, 'on my way').ok).toBe(true);
    // The cord is pulled again a minute later, the first call still open.
    clock.advance(60_000);
    const before = pagesOf();
    press(a, clock, 'h01-nc-f1-bath');
    expect(a.lifecycle.get(alert.id)).toMatchObject({ state: 'raised' });
    expect(a.lifecycle.get(alert.id)?.acknowledgedAt).toBeUndefined();
    expect(a.lifecycle.incident(inc.id)?.acknowledgedAt).toBeUndefined();
    await until(() => {
      clock.advance(1_000);
      return pagesOf() > before || undefined;
    }, 'the second call paged to the duty staff');
    expect((a.lifecycle.incidentAudit(inc.id) ?? []).map((e) => e.action)).toContain('realerted');
  });
});
