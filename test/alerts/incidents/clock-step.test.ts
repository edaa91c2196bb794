import { afterEach, describe, expect, it } from 'vitest';
import type { Alerts } from '../../../alerts/alerts.ts';
import { testInflux } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { startAlerts, tempDir } from '../support/harness.ts';
import { wallClock } from '../support/wall-clock.ts';

const registry = demoRegistry();
const device = (() => {
  const d = registry.device('h01-sd-r101');
  if (d === undefined) throw new Error('no h01-sd-r101');
  return d;
})();
const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

/**
 * The escalation ladder when the wall clock steps (NTP, an operator) while a fire is unacknowledged:
 * timers run on elapsed time, deadlines are wall-clock times. Until session 22 a timer that fired
 * before its deadline on the stepped-back clock was armed again, so a 1 h backward step held the
 * fire's 15 s acknowledgement deadline (NFPA 72 positive alarm sequence) for an hour (a helper's hunt).
 */
/** An alerts process on `clock` with a fire raised now: the process and the fire's incident id. */
async function fireOn(clock: ReturnType<typeof wallClock>): Promise<{ a: Alerts; incidentId: string }> {
  const dir = await tempDir();
  const a: Alerts = await startAlerts({ influx: testInflux('clock_step'), stateDir: dir.path, clock });
  cleanup.push(async () => {
    await a.close();
    await dir.remove();
  });
  const now = clock.now();
  a.handleInput({ type: 'telemetry', now, device, ts: now, receivedTs: now, metrics: { smoke_obscuration_pct_per_m: 18 } });
  const fire = a.lifecycle.open()[0];
  if (fire?.incidentId === undefined) throw new Error('no fire incident');
  expect(fire.severity).toBe('critical');
  return { a, incidentId: fire.incidentId };
}

describe('NTP step of the wall clock while a fire is unacknowledged', () => {
  it('a 1 h backward step does not hold the 15 s positive-alarm-sequence escalation for an hour', async () => {
    const clock = wallClock();
    const { a, incidentId } = await fireOn(clock);
    clock.advance(5_000);
    clock.step(-3_600_000); // NTP steps the wall clock back an hour
    clock.advance(60_000); // a minute of real time, nobody acknowledges
    expect(a.lifecycle.incident(incidentId)?.escalationLevel).toBe(2);
  });

  it('nor when the incident changes after the step (a second detector joins it)', async () => {
    // Until session 23 the change scheduled the ladder again from the incident's anchors, an hour in
    // the stepped-back clock's future: the fire's deadlines were an hour away again (the review's finding).
    const clock = wallClock();
    const { a, incidentId } = await fireOn(clock);
    clock.advance(5_000);
    clock.step(-3_600_000);
    clock.advance(1_000);
    const r102 = registry.device('h01-sd-r102');
    if (r102 === undefined) throw new Error('no h01-sd-r102');
    const now = clock.now();
    a.handleInput({ type: 'telemetry', now, device: r102, ts: now, receivedTs: now, metrics: { smoke_obscuration_pct_per_m: 18 } });
    expect(a.lifecycle.incident(incidentId)?.points.length).toBe(2);
    clock.advance(60_000);
    expect(a.lifecycle.incident(incidentId)?.escalationLevel).toBe(2);
  });

  it('control: without a step, the fire reaches the bureau after 15 s', async () => {
    const clock = wallClock();
    const { a, incidentId } = await fireOn(clock);
    clock.advance(16_000);
    expect(a.lifecycle.incident(incidentId)?.escalationLevel).toBe(2);
  });
});
