import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { eventually } from '../support/process.ts';
import { simulate, startStack, watch, type Stack, type WatchClient } from './stack.ts';

/**
 * Issue 2's walking skeleton, end to end across real processes: the simulator sets a room of
 * 阳光颐养院 (h01) on fire; the fire alert reaches h01's duty staff and the bureau over socket.io,
 * not h02's staff; the reading that caused it is in InfluxDB; an acknowledgement reaches everyone.
 */
describe('fire in a simulated room reaches the duty nurse and the bureau', () => {
  const { url, database } = testInflux('e2e');
  let stack: Stack;
  let staff1: WatchClient;
  let staff2: WatchClient;
  let bureau: WatchClient;

  beforeAll(async () => {
    stack = await startStack({ influxUrl: url, database, homes: ['h01', 'h02'], simSpeed: 10 });
    [staff1, staff2, bureau] = await Promise.all([watch(stack.httpUrl, 'staff-h01'), watch(stack.httpUrl, 'staff-h02'), watch(stack.httpUrl, 'bureau')]);
  }, 120_000);

  afterAll(async () => {
    for (const c of [staff1, staff2, bureau]) c?.close();
    await stack?.close();
  });

  it('delivers the fire alert to the right people, stores its cause and spreads the acknowledgement', async () => {
    await simulate(stack.simUrl, 'fire', 'h01/r101', { kind: 'flaming' });

    const isFire = (a: { category: string; homeId: string; roomId?: string }): boolean => a.category === 'fire' && a.homeId === 'h01' && a.roomId === 'r101';
    const fire = await staff1.waitFor('a fire alarm for h01/r101', (a) => isFire(a) && a.signal === 'alarm' && a.severity === 'critical');
    expect(fire.deviceId).toMatch(/^h01-/);
    // GB 50440 timing: the broker's receive time of the causing message is on the alert.
    expect(typeof fire.brokerTs).toBe('number');
    expect(fire.message.zh.length).toBeGreaterThan(0);
    expect(fire.message.en.length).toBeGreaterThan(0);
    await bureau.waitFor('the same fire alert', (a) => a.id === fire.id);

    // The reading or event that raised it is stored in InfluxDB with its device timestamp.
    const cause = await eventually('the causing reading in InfluxDB', async () => {
      // Points carry the device ts in ms plus `seq mod 1e6` ns (docs/architecture.md): same millisecond.
      const where = `"device" = '${fire.deviceId}' AND time >= ${fire.sourceTs}ms AND time < ${fire.sourceTs + 1}ms`;
      const t = await influxQuery(url, database, `SELECT * FROM "raw"."telemetry" WHERE ${where}`);
      const e = await influxQuery(url, database, `SELECT * FROM "event" WHERE ${where}`);
      const rows = [...t, ...e].flatMap((s) => s.values);
      return rows.length > 0 ? rows : undefined;
    });
    expect(cause.length).toBeGreaterThan(0);

    const reply = await staff1.socket.timeout(10_000).emitWithAck('ack', fire.id);
    expect(reply.ok).toBe(true);
    for (const client of [staff1, bureau]) {
      const acked = await client.waitFor('the acknowledgement', (a) => a.id === fire.id && a.acknowledgedBy === 'staff-h01');
      expect(acked.acknowledgedAt).toBeGreaterThan(0);
    }

    // The other home's duty staff saw nothing of h01, neither the alert nor its acknowledgement.
    expect(staff2.received.filter((a) => a.homeId !== 'h02')).toEqual([]);
  });
});
