import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertMessage } from '../../contract/payloads.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { eventually } from '../support/process.ts';
import { login, simulate, startStack, watch, type Stack, type WatchClient } from './stack.ts';

/**
 * Issue 4 across real processes (broker, ingest, alerts, device simulator for h01): the simulator
 * drives care scenarios for residents of 阳光颐养院 (h01) and the alerts reach h01's duty staff over
 * socket.io, never h02's. Scenarios run at the same time to keep the test short (sim speed 10 only
 * compresses the scenario shapes; device timestamps stay real, so the 60 s SpO2 duration is real).
 * The night bed exit depends on local time (21:00–06:00 UTC+8) and is tested with a manual clock in
 * test/alerts/care-history.test.ts instead.
 */
describe('bedridden care from the simulator to the right screens', () => {
  const { url, database } = testInflux('e2e_care');
  let stack: Stack;
  let staff1: WatchClient;
  let staff2: WatchClient;
  let bureau: WatchClient;

  beforeAll(async () => {
    stack = await startStack({ influxUrl: url, database, homes: ['h01'], simSpeed: 10 });
    [staff1, staff2, bureau] = await Promise.all([watch(stack.httpUrl, 'staff-h01'), watch(stack.httpUrl, 'staff-h02'), watch(stack.httpUrl, 'bureau')]);
  }, 120_000);

  afterAll(async () => {
    for (const c of [staff1, staff2, bureau]) c?.close();
    await stack?.close();
  });

  it('desaturation, a fall, wetness then change, and a silent monitor reach h01 staff only', async () => {
    // Let every simulated device report once, so the bed sensors have said the residents are in bed.
    await new Promise((r) => setTimeout(r, 3000));
    await simulate(stack.simUrl, 'desaturation', 'h01-p02');
    await simulate(stack.simUrl, 'fall', 'h01-p01');
    const wet = await simulate(stack.simUrl, 'wetness', 'h01-p03');
    await simulate(stack.simUrl, 'silent', 'h01-vs-p06');

    const of = (residentId: string, rule: string) => (a: AlertMessage) => a.homeId === 'h01' && a.residentId === residentId && a.rule === rule;

    // A fall: emergency, latched, escalated at once to the bureau.
    const fall = await staff1.waitFor('a fall of h01-p01', of('h01-p01', 'fall'));
    expect(fall).toMatchObject({ category: 'care', severity: 'critical' });
    const fallAtBureau = await bureau.waitFor('the fall, escalated', (a) => a.id === fall.id && (a.escalationLevel ?? 0) >= 2);
    expect(fallAtBureau.escalationLevel).toBe(2);

    // Wetness → change-needed task; staff record `changed` and it resolves.
    const task = await staff1.waitFor('a change-needed task for h01-p03', of('h01-p03', 'continence_change'));
    expect(task.category).toBe('care');
    const { token } = await login(stack.httpUrl, 'staff-h01');
    const res = await fetch(`${stack.httpUrl}/api/residents/h01-p03/actions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ action: 'changed' }),
    });
    expect(res.status).toBe(202);
    await fetch(`${stack.simUrl}/scenario/${wet}`, { method: 'DELETE' });
    await staff1.waitFor('the task resolved', (a) => a.id === task.id && a.state === 'resolved');

    // A vital-signs monitor that stops sending while its resident is in bed: a device alert.
    const silent = await staff1.waitFor('a no-data alert for h01-vs-p06', (a) => a.homeId === 'h01' && a.deviceId === 'h01-vs-p06' && a.rule === 'care_no_data');
    expect(silent.category).toBe('device');

    // Sustained desaturation (60 s below 90 %): a care alert.
    const desat = await staff1.waitFor('low SpO2 of h01-p02', of('h01-p02', 'spo2_low'), 120_000);
    expect(desat).toMatchObject({ category: 'care', severity: 'high' });
    // Its NEWS2 score (SpO2 ≤91 % on Scale 1 scores 3) is in InfluxDB's `news2` history.
    const scored = await eventually('a NEWS2 point with SpO2 scoring 3 for h01-p02', async () => {
      const s = await influxQuery(url, database, `SELECT "score_spo2", "aggregate" FROM "news2" WHERE "resident" = 'h01-p02' AND "score_spo2" = 3`);
      return s.flatMap((x) => x.values).length > 0 ? s : undefined;
    });
    expect(scored[0]?.values[0]?.[1]).toBe(3);

    // The care action and the resident's history are stored and queryable.
    const history = await eventually('h01-p03 history with the change', async () => {
      const r = await fetch(`${stack.httpUrl}/api/residents/h01-p03/history`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await r.json()) as { actions: Array<{ action: string }>; alerts: Array<{ id: string; state: string }> };
      return body.actions.some((a) => a.action === 'changed') && body.alerts.some((a) => a.id === task.id && a.state === 'resolved') ? body : undefined;
    });
    expect(history.actions[0]?.action).toBe('changed');
    const stored = await influxQuery(url, database, `SELECT * FROM "care_action" WHERE "resident" = 'h01-p03'`);
    expect(stored.flatMap((s) => s.values)).toHaveLength(1);

    // h02's duty staff saw nothing of h01.
    expect(staff2.received.filter((a) => a.homeId !== 'h02')).toEqual([]);
  }, 240_000);
});
