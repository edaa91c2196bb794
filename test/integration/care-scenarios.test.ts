import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertMessage } from '../../contract/payloads.ts';
import { createSimulator, type Simulator } from '../../device-sim/simulator.ts';
import { startPipeline, until, type Pipeline, type Watcher } from './support/pipeline.ts';

/**
 * Issue 4 "What must be shown": the simulator drives each care scenario for residents of h01, and
 * the whole pipeline (simulated mqtt.js devices → broker → alerts with the real rules → socket.io)
 * delivers the right alert to the h01 staff client and nothing of h01 to h02's staff.
 *
 * The simulator and the alerts process share one manual clock: advancing it fires the devices'
 * report timers (device timestamps follow it) and the alerts tick. After each step the test waits
 * until the alerts process has received every message the simulated devices sent, so a step's
 * readings are handled before the next step's tick. Steps stay well under the 30 s heartbeat
 * budget of a bed sensor or vital-signs monitor, so no monitor looks silent between two steps.
 */

const S = 1000;
const MIN = 60 * S;
const DAY = 24 * 60 * MIN;
/** 22:00 China Standard Time (UTC+8) is 14:00 UTC: inside the care rules' default night, 21:00–06:00. */
const T0 = Math.floor((Date.now() - 14 * 60 * MIN) / DAY) * DAY + 14 * 60 * MIN;

let p: Pipeline;
let sim: Simulator;
let staff1: Watcher;
let staff2: Watcher;
/** Messages the alerts process receives that are not telemetry or events of a simulated device. */
let offset = 0;

function simSent(): number {
  return sim.devices().reduce((n, d) => n + d.published.telemetry + d.published.events, 0);
}
function received(): number {
  const mqtt = p.alerts.stats().mqtt as { received: number } | undefined;
  return mqtt?.received ?? 0;
}

/** Lets real I/O land: every message the simulated devices sent has reached the alerts process. */
async function settle(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (received() < offset + simSent()) {
    if (Date.now() > deadline) throw new Error(`alerts process behind: received ${received()}, expected ${offset + simSent()}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Advances the shared clock by `ms` in steps of `stepMs`, letting I/O settle after each. */
async function run(ms: number, stepMs = 5 * S): Promise<void> {
  for (let done = 0; done < ms; done += stepMs) {
    p.clock.advance(Math.min(stepMs, ms - done));
    await settle();
  }
}

/** Advances until `find` matches an alert staff-h01 received; fails after `maxMs` of manual time. */
async function runUntil(what: string, find: (a: AlertMessage) => boolean, maxMs: number, stepMs = 5 * S): Promise<AlertMessage> {
  const start = p.clock.now();
  for (;;) {
    const hit = staff1.alerts.find(find);
    if (hit !== undefined) return hit;
    if (p.clock.now() - start >= maxMs) {
      // Socket delivery is asynchronous: give the last step's emit a moment before failing.
      return until(() => staff1.alerts.find(find), `${what} on the staff-h01 socket`, 2000);
    }
    await run(stepMs, stepMs);
  }
}

const of = (residentId: string, rule: string) => (a: AlertMessage) => a.residentId === residentId && a.rule === rule;
const careOf = (residentId: string): AlertMessage[] => staff1.alerts.filter((a) => a.residentId === residentId && a.category === 'care');

beforeAll(async () => {
  p = await startPipeline('it_care', { startMs: T0 });
  staff1 = await p.watch('staff-h01');
  staff2 = await p.watch('staff-h02');
  sim = createSimulator({
    config: { mqttUrl: p.mqttUrl, homes: ['h01'], speed: 1, seed: 7, spontaneous: false },
    registry: p.registry,
    logger: pino({ level: process.env.INTEGRATION_LOG ?? 'silent' }),
    clock: p.clock,
  });
  await sim.start();
  // One retained online status per device on connect; nothing else reaches the alerts process.
  offset = sim.devices().length;
  await until(() => received() >= offset, 'the online status of every simulated device');
  // Nobody turns h01-p04 (turning interval 90 min) from the first bed reading on.
  sim.scenario.start('missed-turn', 'h01-p04');
  await settle();
}, 60_000);

afterAll(async () => {
  await sim?.close();
  await p?.close();
});

describe('care scenarios from the simulator through the whole pipeline', () => {
  it('an SpO2 artefact dip raises nothing; a sustained desaturation raises spo2_low', async () => {
    // Two minutes of normal readings first, so NEWS2's 60 s median window is full, as on a monitor
    // that has been running (see the report: a dip among a window's first readings does score).
    await run(2 * MIN);
    expect(careOf('h01-p02')).toEqual([]);
    const t = p.clock.now();
    sim.scenario.start('artefact-dip', 'h01-p02');
    sim.scenario.start('desaturation', 'h01-p03');
    const desat = await runUntil('spo2_low of h01-p03', of('h01-p03', 'spo2_low'), 4 * MIN);
    expect(desat).toMatchObject({ homeId: 'h01', category: 'care', severity: 'high', state: 'raised' });
    expect(desat.value).toBeLessThan(90);
    // Issue 4: 60 s below 90 % is real; the raise follows the start of the run by at least that.
    expect(desat.raisedAt - t).toBeGreaterThanOrEqual(60 * S);
    await run(30 * S);
    expect(careOf('h01-p02')).toEqual([]);
    expect(sim.scenario.clear('h01-p02') + sim.scenario.clear('h01-p03')).toBe(1); // the dip ended by itself
  });

  it('bradycardia raises heart_rate_low and tachycardia heart_rate_high', async () => {
    sim.scenario.start('bradycardia', 'h01-p06');
    sim.scenario.start('tachycardia', 'h01-p05');
    const low = await runUntil('heart_rate_low of h01-p06', of('h01-p06', 'heart_rate_low'), 5 * MIN);
    const high = await runUntil('heart_rate_high of h01-p05', of('h01-p05', 'heart_rate_high'), 5 * MIN);
    expect(low).toMatchObject({ homeId: 'h01', category: 'care', state: 'raised' });
    expect(low.value).toBeLessThanOrEqual(40);
    expect(high).toMatchObject({ homeId: 'h01', category: 'care', state: 'raised' });
    expect(high.value).toBeGreaterThanOrEqual(131);
    sim.scenario.clear('h01-p06');
    sim.scenario.clear('h01-p05');
  });

  it('fever raises fever', async () => {
    sim.scenario.start('fever', 'h01-p02');
    const fever = await runUntil('fever of h01-p02', of('h01-p02', 'fever'), 15 * MIN);
    expect(fever).toMatchObject({ homeId: 'h01', category: 'care', severity: 'medium', state: 'raised' });
    expect(fever.value).toBeGreaterThanOrEqual(38.1);
    sim.scenario.clear('h01-p02');
  });

  it('a fall-risk resident out of bed at night raises bed_exit at once, cleared when back in bed', async () => {
    sim.scenario.start('bed-exit', 'h01-p01', { returnAfterMs: 2 * MIN });
    const exit = await runUntil('bed_exit of h01-p01', of('h01-p01', 'bed_exit'), 10 * S, 2 * S);
    expect(exit).toMatchObject({ homeId: 'h01', category: 'care', severity: 'high', state: 'raised', deviceId: 'h01-bed-p01' });
    // The timing of a care alert is recorded like a fire alarm's: broker stamp and our receipt.
    expect(exit.brokerTs).toEqual(expect.any(Number));
    expect(exit.receivedTs).toEqual(expect.any(Number));
    await runUntil('bed_exit of h01-p01 resolved', (a) => a.id === exit.id && a.state === 'resolved', 3 * MIN);
    expect(staff1.alerts.filter(of('h01-p01', 'bed_exit_long'))).toEqual([]);
  });

  it('a fall is an emergency, escalated at once', async () => {
    sim.scenario.start('fall', 'h01-p03');
    const fall = await runUntil('fall of h01-p03', (a) => of('h01-p03', 'fall')(a) && a.state === 'escalated', 10 * S, 2 * S);
    expect(fall).toMatchObject({ homeId: 'h01', category: 'care', severity: 'critical', deviceId: 'h01-bed-p03', escalationLevel: 2 });
    // h01-p03 is not marked at risk of falls: no separate bed_exit alert.
    expect(staff1.alerts.filter(of('h01-p03', 'bed_exit'))).toEqual([]);
    sim.scenario.clear('h01-p03');
  });

  it('wetness raises continence_change; the task closes when the pad reads dry again', async () => {
    const id = sim.scenario.start('wetness', 'h01-p05');
    const task = await runUntil('continence_change of h01-p05', of('h01-p05', 'continence_change'), 5 * MIN);
    expect(task).toMatchObject({ homeId: 'h01', category: 'care', state: 'raised', deviceId: 'h01-wet-p05' });
    expect(task.value).toBeGreaterThan(30);
    sim.scenario.clear(id); // the pad is changed
    await runUntil('continence_change resolved', (a) => a.id === task.id && a.state === 'resolved', 1 * MIN);
  });

  it('a vital-signs monitor that falls silent raises care_no_data within its 30 s heartbeat budget', async () => {
    sim.scenario.start('silent', 'h01-vs-p04');
    const t = p.clock.now();
    const silent = await runUntil('care_no_data of h01-vs-p04', (a) => a.rule === 'care_no_data' && a.deviceId === 'h01-vs-p04', 40 * S, 1 * S);
    expect(silent).toMatchObject({ homeId: 'h01', residentId: 'h01-p04', category: 'device', signal: 'trouble', state: 'raised' });
    // The last reading came at most one report period (5 s) before the scenario started.
    expect(silent.raisedAt - t).toBeLessThanOrEqual(30 * S);
    sim.scenario.clear('h01-vs-p04');
    await runUntil('care_no_data resolved', (a) => a.id === silent.id && a.state === 'resolved', 10 * S, 1 * S);
  });

  it('out of bed at night without return: bed_exit, then bed_exit_long after 30 min', async () => {
    sim.scenario.start('bed-exit', 'h01-p01');
    const t = p.clock.now();
    const exit = await runUntil('second bed_exit of h01-p01', (a) => of('h01-p01', 'bed_exit')(a) && a.state === 'raised' && a.raisedAt >= t, 10 * S, 2 * S);
    const long = await runUntil('bed_exit_long of h01-p01', of('h01-p01', 'bed_exit_long'), 32 * MIN, 15 * S);
    expect(long).toMatchObject({ homeId: 'h01', category: 'care', severity: 'critical' });
    // Thirty minutes after the reading that showed the bed empty (the exit alert is raised when it is handled).
    expect(long.raisedAt - exit.sourceTs).toBeGreaterThanOrEqual(30 * MIN);
  });

  it('nobody turns a resident: turn_overdue once the 90 min interval has passed', async () => {
    const overdue = await runUntil('turn_overdue of h01-p04', of('h01-p04', 'turn_overdue'), 100 * MIN - (p.clock.now() - T0), 15 * S);
    expect(overdue).toMatchObject({ homeId: 'h01', category: 'care', severity: 'medium', state: 'raised' });
    expect(overdue.raisedAt - T0).toBeGreaterThan(90 * MIN);
    // Only the resident nobody turned: the others' bed sensors show their scheduled turning bursts.
    expect(staff1.alerts.filter((a) => a.rule === 'turn_overdue' && a.residentId !== 'h01-p04')).toEqual([]);
  });

  it("h02's staff saw none of it (and did get h02's own alerts)", async () => {
    await until(() => staff2.alerts.some((a) => a.homeId === 'h02'), "an h02 alert on staff-h02's socket");
    expect(staff2.alerts.filter((a) => a.homeId !== 'h02' || a.residentId?.startsWith('h01-') === true)).toEqual([]);
    expect(staff1.alerts.every((a) => a.homeId === 'h01')).toBe(true);
    // Every simulated message was valid, and no rule threw on the way.
    expect((p.alerts.stats().mqtt as { rejected: object }).rejected).toEqual({});
    expect(p.alerts.stats().ruleFailures).toEqual({});
  });
});
