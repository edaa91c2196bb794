import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { createLifecycle } from '../../../alerts/lifecycle.ts';
import { createAlertStore } from '../../../alerts/persistence/alert-store.ts';
import { freePort } from '../../../common/influxd.ts';
import { influxQuery, testInflux } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { tempDir } from '../support/harness.ts';
import { fireSignal } from '../support/signals.ts';

const influx = testInflux('alerts_store');
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
afterAll(async () => Promise.all(dirs.map((d) => d.remove())));

describe('alert store lookups', () => {
  it('tags alert points with alert_id, so one alert is found through the series index; a random id finds nothing', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const clock = createManualClock();
    const store = createAlertStore({ influxUrl: influx.url, database: influx.database, journalPath: join(dir.path, 'j.jsonl'), clock, logger: pino({ level: 'silent' }) });
    await store.start();
    const lc = createLifecycle({ clock, registry: demoRegistry(), onChange: (c) => store.record(c) });
    lc.applySignals([fireSignal()]);
    const alert = lc.open()[0]!;
    await store.drained();
    const tagged = await influxQuery(influx.url, influx.database, `SELECT "id" FROM "alert" WHERE "alert_id" = '${alert.id}'`);
    expect(tagged[0]?.values.map((v) => v[1])).toEqual([alert.id]);
    expect(await store.latest(alert.id)).toMatchObject({ id: alert.id, version: 1 });
    expect(await store.latest('00000000-0000-4000-8000-000000000000')).toBeUndefined();
    // Restore still reads the tagged points.
    expect((await store.loadOpen(0)).alerts.map((s) => s.alert.id)).toEqual([alert.id]);
    lc.close();
    await store.close();
  });
});

describe('alert store restore with InfluxDB unreachable', () => {
  it("returns the journal's unsent alerts (and says InfluxDB failed) instead of nothing", async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const clock = createManualClock();
    // A real fault: nothing listens on this port.
    const down = `http://127.0.0.1:${await freePort()}`;
    const journalPath = join(dir.path, 'j.jsonl');
    const first = createAlertStore({ influxUrl: down, database: 'nowhere', journalPath, clock, logger: pino({ level: 'silent' }) });
    await first.start();
    const lc = createLifecycle({ clock, registry: demoRegistry(), onChange: (c) => first.record(c) });
    lc.applySignals([fireSignal()]);
    const alert = lc.open()[0]!;
    // Durable in the journal: what a PUBACK to the broker waits for.
    await first.synced();
    lc.close();
    // The process dies here; the next one starts while InfluxDB is still down.
    const second = createAlertStore({ influxUrl: down, database: 'nowhere', journalPath, clock, logger: pino({ level: 'silent' }) });
    await second.start();
    const restored = await second.loadOpen(0);
    expect(restored.alerts.map((s) => s.alert.id)).toEqual([alert.id]);
    expect(restored.influxError).toBeDefined();
    const incidents = await second.loadOpenIncidents(0);
    expect(incidents.influxError).toBeDefined();
    await first.close().catch(() => undefined);
    await second.close().catch(() => undefined);
  }, 60_000);
});
