import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import { deviceTopic } from '../../contract/topics.ts';
import type { Alerts } from '../../alerts/alerts.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { useBrokerAndWatcher } from './support/aedes.ts';
import { startAlerts, tempDir, until } from './support/harness.ts';

/**
 * Issue 2 "Alerts tests", through MQTT (in-process aedes), the engine, the lifecycle and InfluxDB:
 * a restart keeps the open alerts; a repeated reading does not open a second alert; a condition
 * that clears resolves its alert.
 */
const influx = testInflux('alerts_restart');
const clock = createManualClock();
const bench = useBrokerAndWatcher('h01');
const published = bench.published;
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
let seq = 0;

async function send(homeId: string, deviceId: string, metrics: Record<string, number>): Promise<void> {
  await bench.device.publishAsync(deviceTopic(homeId, deviceId, 'telemetry'), JSON.stringify({ ts: clock.now(), seq: seq++, metrics }), { qos: 1 });
}

afterAll(async () => {
  for (const d of dirs) await d.remove();
});

async function run(stateDir: string): Promise<Alerts> {
  return startAlerts({ influx, stateDir, clock, mqttUrl: bench.broker.url });
}

describe('alerts process', () => {
  it('restores open alerts from InfluxDB after a restart and does not re-raise them', async () => {
    const dirA = await tempDir();
    dirs.push(dirA);
    const a = await run(dirA.path);
    await send('h01', 'h01-sd-r101', { smoke_obscuration_pct_per_m: 18 });
    await send('h01', 'h01-sd-r101', { smoke_obscuration_pct_per_m: 19 }); // repeated: no second alert
    await send('h01', 'h01-sd-r101', { temperature_c: 40 }); // not for the test rule; still a valid message
    const fire = await until(() => a.lifecycle.open()[0], 'fire alert');
    await until(() => published.some((m) => m.id === fire.id), 'alert on the MQTT alerts topic');
    expect(a.lifecycle.open()).toHaveLength(1);
    expect(fire).toMatchObject({ homeId: 'h01', deviceId: 'h01-sd-r101', state: 'raised', version: 1, receivedTs: clock.now() });
    await a.drained();
    await a.close();

    const rows = await influxQuery(influx.url, influx.database, 'SELECT "id","version","json" FROM "alert"');
    expect(rows[0]?.values.map((v) => v[1])).toEqual([fire.id]);
    const audit = await influxQuery(influx.url, influx.database, 'SELECT "alert_id" FROM "alert_audit"');
    expect(audit[0]?.values).toHaveLength(1);

    // A fresh state directory: the open alert can only come back from InfluxDB.
    const dirB = await tempDir();
    dirs.push(dirB);
    const b = await run(dirB.path);
    expect(b.lifecycle.open()).toEqual([fire]);
    expect(b.lifecycle.audit(fire.id)?.map((e) => e.action)).toEqual(['raised']);
    const before = published.length;
    await send('h01', 'h01-sd-r101', { smoke_obscuration_pct_per_m: 19 });
    await until(() => (b.stats().inputs as number) >= 1, 'reading processed');
    expect(b.lifecycle.open()).toEqual([fire]);
    expect(published.length).toBe(before);

    // Deadlines re-armed from the stored timestamps: the 15 s acknowledgement deadline still holds.
    clock.advance(15_000);
    expect(b.lifecycle.get(fire.id)).toMatchObject({ state: 'escalated', escalationLevel: 2, version: 2 });
    await b.drained();
    await b.close();
  });

  it('resolves an alert when its condition clears, and keeps rule state across a restart in the same state dir', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const a = await run(dir.path);
    await send('h01', 'h01-sd-r103', { smoke_obscuration_pct_per_m: 1 });
    await send('h01', 'h01-vs-p02', { spo2_pct: 86 });
    const care = await until(() => a.lifecycle.open().find((x) => x.category === 'care'), 'care alert');
    await send('h01', 'h01-vs-p02', { spo2_pct: 97 });
    await until(() => a.lifecycle.get(care.id)?.state === 'resolved', 'auto-resolve');
    expect(a.lifecycle.get(care.id)).toMatchObject({ resolvedBy: 'system', version: 2 });
    await until(() => published.some((m) => m.id === care.id && m.state === 'resolved'), 'resolved on MQTT');
    const readings = (a.engine.snapshot().test_smoke as { readings: number }).readings;
    expect(readings).toBe(1);
    await a.drained();
    await a.close();

    const b = await run(dir.path);
    expect((b.engine.snapshot().test_smoke as { readings: number }).readings).toBe(readings);
    expect(b.lifecycle.open().some((x) => x.id === care.id)).toBe(false);
    await b.close();
  });
});
