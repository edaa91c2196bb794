import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPipeline, until, type Pipeline } from './support/pipeline.ts';

/**
 * Issue 3 "Restarts" through the running pipeline: the alerts process is closed during an open,
 * unacknowledged fire alarm and while a smoke verification window is running, and a new one is
 * started on the same InfluxDB database and state directory.
 */
let p: Pipeline;
const S = 1000;

beforeAll(async () => {
  p = await startPipeline('it_restart');
});
afterAll(async () => {
  await p.close();
});

describe('restart of the alerts process during an open alarm', () => {
  it('keeps the alarm (same id and version), its 15 s deadline, the running verification window, and raises nothing new', async () => {
    const hd = await p.device('h01-hd-kitchen');
    const sd = await p.device('h01-sd-r101');
    await hd.telemetry({ temperature_c: 70 });
    p.clock.advance(S);
    await hd.telemetry({ temperature_c: 71 });
    const fire = await until(() => p.alerts.lifecycle.open().find((a) => a.rule === 'heat_fixed'), 'heat alarm');
    const t0 = fire.raisedAt;
    p.clock.advance(2 * S);
    await sd.telemetry({ smoke_obscuration_pct_per_m: 5 }); // verification window starts at t0 + 2 s
    const pre = await until(() => p.alerts.lifecycle.open().find((a) => a.rule === 'smoke_prealarm'), 'pre-alarm');
    p.clock.advance(3 * S);
    const before = p.alerts.lifecycle.open().filter((a) => a.category === 'fire');

    await p.restart();

    const after = p.alerts.lifecycle.open().filter((a) => a.category === 'fire');
    expect(after.map((a) => [a.id, a.version, a.state])).toEqual(before.map((a) => [a.id, a.version, a.state]));
    expect(p.alerts.lifecycle.audit(fire.id)?.map((e) => e.action)).toEqual(['raised']);
    const staff = await p.watch('staff-h01');
    const bureau = await p.watch('bureau');
    expect(staff.snapshot?.map((a) => a.id)).toEqual(expect.arrayContaining([fire.id, pre.id]));

    // The same readings again: the rules' restored state says "already in alarm", so nothing re-fires.
    await hd.telemetry({ temperature_c: 72 });
    await sd.telemetry({ smoke_obscuration_pct_per_m: 5.5 });
    expect(staff.alerts.filter((a) => a.state === 'raised')).toEqual([]);

    // The 15 s acknowledgement deadline still falls at t0 + 15 s.
    p.clock.set(t0 + 15 * S - 1);
    expect(p.alerts.lifecycle.get(fire.id)?.escalationLevel).toBe(0);
    p.clock.advance(1);
    const esc = await until(() => bureau.alerts.find((a) => a.id === fire.id && a.escalationLevel === 2), 'escalation after restart');
    expect(esc).toMatchObject({ version: fire.version + 1, ts: t0 + 15 * S, state: 'escalated' });

    // The verification window that began before the restart completes at t0 + 2 s + 60 s.
    p.clock.set(t0 + 61 * S);
    expect(p.alerts.lifecycle.open().some((a) => a.rule === 'smoke_alarm')).toBe(false);
    // The reading at the window end shows the smoke held (the tick alone would wait for the
    // detector's next reading to be overdue: rules/fire/smoke.ts).
    p.clock.set(t0 + 62 * S);
    await sd.telemetry({ smoke_obscuration_pct_per_m: 6 });
    const verified = await until(() => staff.alerts.find((a) => a.rule === 'smoke_alarm' && a.deviceId === 'h01-sd-r101'), 'verified alarm after restart');
    expect(verified.raisedAt).toBe(t0 + 62 * S);

    // Only the verified alarm is new; the alarm and the pre-alarm kept their ids. (Issue 11, changed on
    // purpose: the room's alarm now holds the pre-alarm back, which is sent once more as a new version.)
    expect(staff.alerts.filter((a) => a.state === 'raised' && a.version === 1 && a.category === 'fire').map((a) => a.rule)).toEqual(['smoke_alarm']);
    expect(p.alerts.lifecycle.get(pre.id)).toMatchObject({ inhibited: 'fire_in_room', incidentId: verified.incidentId });
    expect(p.alerts.lifecycle.open().filter((a) => a.rule === 'heat_fixed' || a.rule === 'smoke_prealarm').map((a) => a.id).sort()).toEqual([fire.id, pre.id].sort());
  });
});
