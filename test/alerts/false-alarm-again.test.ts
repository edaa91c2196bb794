import { describe, expect, it } from 'vitest';
import { createManualClock, type ManualClock } from '../../common/clock.ts';
import type { Actor } from '../../alerts/access.ts';
import type { Alerts } from '../../alerts/alerts.ts';
import { defaultRules } from '../../alerts/rules/index.ts';
import { until } from './support/harness.ts';
import { H01_ROSTER, rosterRegistry, startPagingAlerts, useReceiverAndRuns } from './notify/fixtures.ts';

const staff: Actor = { username: 'staff-h01', role: 'staff', homeId: 'h01' };
const registry = rosterRegistry([H01_ROSTER]);
const paging = useReceiverAndRuns();

function smoke(x: Alerts, clock: ManualClock, id: string, v: number): void {
  const now = clock.now();
  const device = registry.device(id);
  if (device === undefined) throw new Error(`no ${id}`);
  x.handleInput({ type: 'telemetry', now, device, ts: now, receivedTs: now, metrics: { smoke_obscuration_pct_per_m: v, temperature_c: 22 } });
}

/**
 * A smoke alarm judged a false alarm and left open (nobody reset it): real smoke at the same detector
 * later pages again. Until session 22 the alarm's return was only an audit entry ("reactivated") and
 * the new pre-alarm was held back by that same open alarm (fire_in_room): nobody was paged (a
 * helper's hunt). The alert is reopened (verdict cleared) and its incident re-alerted.
 */
describe('a smoke alarm judged a false alarm and left open (not reset)', () => {
  it('a real fire at the same detector later reaches a person', async () => {
    const clock = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
    const started = paging.track(await startPagingAlerts({ name: 'false_alarm_again', registry, rules: defaultRules(), clock, channels: { duty: `${paging.receiver().url}/duty` }, levels: [[0, 'duty'], [2, 'duty']] }));
    const a = started.alerts;
    // Burnt toast: r101's detector goes into verified alarm.
    for (let i = 0; i < 8; i++) {
      smoke(a, clock, 'h01-sd-r101', 6);
      clock.advance(10_000);
    }
    const alarm = a.lifecycle.open().find((x) => x.rule === 'smoke_alarm');
    if (alarm === undefined) throw new Error('no smoke alarm');
    expect(a.lifecycle.ack(alarm.id, staff).ok).toBe(true);
    expect(a.lifecycle.confirm(alarm.id, staff, 'false_alarm', 'toast').ok).toBe(true);
    // Smoke gone; nobody resets the panel (resolve is optional).
    for (let i = 0; i < 30; i++) {
      smoke(a, clock, 'h01-sd-r101', 0.1);
      clock.advance(10_000);
    }
    await new Promise((r) => setTimeout(r, 300));
    // Pages of the alarm's own incident.
    const fireNotes = (): number => paging.receiver().requests.filter((r) => r.body.includes(alarm.incidentId ?? '-')).length;
    const before = fireNotes();
    // An hour later: a real fire in r101, smoke stays at 8 %/m for 5 minutes.
    clock.advance(3_600_000);
    for (let i = 0; i < 30; i++) {
      smoke(a, clock, 'h01-sd-r101', 8);
      clock.advance(10_000);
    }
    expect(a.lifecycle.get(alarm.id)).toMatchObject({ state: 'raised' });
    expect(a.lifecycle.get(alarm.id)?.confirmation).toBeUndefined();
    await until(() => {
      clock.advance(1_000);
      return fireNotes() > before || undefined;
    }, `a page of the fire's incident (${JSON.stringify((a.lifecycle.incidentAudit(alarm.incidentId ?? '') ?? []).map((e) => e.action))})`);
  });
});
