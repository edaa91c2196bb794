import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock, type ManualClock } from '../../common/clock.ts';
import type { Actor } from '../../alerts/access.ts';
import type { Alerts } from '../../alerts/alerts.ts';
import { defaultRules } from '../../alerts/rules/index.ts';
import { until } from './support/harness.ts';
import { H01_ROSTER, rosterRegistry, startPagingAlerts } from './notify/fixtures.ts';
import { startReceiver, type Receiver } from './notify/receiver.ts';

const staff: Actor = { username: 'staff-h01', role: 'staff', homeId: 'h01' };
const registry = rosterRegistry([H01_ROSTER]);
let duty: Receiver;
let mgmt: Receiver;
const running: Array<{ close(): Promise<void> }> = [];
beforeAll(async () => {
  duty = await startReceiver();
  mgmt = await startReceiver();
});
afterAll(async () => {
  for (const a of running) await a.close();
  await duty.close();
  await mgmt.close();
});

async function start(clock: ManualClock): Promise<Alerts> {
  const run = await startPagingAlerts({ name: 'call_again', registry, rules: defaultRules(), clock, channels: { duty: `${duty.url}/duty`, mgmt: `${mgmt.url}/mgmt` }, levels: [[0, 'duty'], [1, 'mgmt'], [2, 'mgmt']] });
  running.push(run);
  return run.alerts;
}

function press(a: Alerts, clock: ManualClock, deviceId: string): void {
  const now = clock.now();
  const device = registry.device(deviceId);
  if (device === undefined) throw new Error(`no ${deviceId}`);
  a.handleInput({ type: 'event', now, device, ts: now, receivedTs: now, event: { ts: now, seq: 1, type: 'sos_button' } as never });
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
