import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createInfluxServer, freePort, type InfluxServer } from '../../common/influxd.ts';
import { tinyDiskForFile } from '../support/tiny-disk.ts';
import { startTestBroker, type TestBroker } from './support/aedes.ts';
import { startIngest } from './support/ingest.ts';
import { exactlyOnceProblems, publishLoad, storedCount, storedSeqs } from './support/load.ts';
import { captureLogger, waitFor } from './support/wait.ts';

/**
 * InfluxDB's own disk fills: a real InfluxDB 1.6 with its data on a real 1.5 MiB tmpfs (root only:
 * skipped elsewhere), a real in-process ingest. InfluxDB answers 500 "no space left on device";
 * ingest names it (INGEST_INFLUX_DISK_FULL: free space and restart InfluxDB) and keeps everything in
 * its spool. Seen in session 20 while writing this test (not asserted: InfluxDB's behaviour): with
 * room again, InfluxDB 1.6 went on refusing writes to that shard until it was restarted; after the
 * restart every reading is stored exactly once.
 */
const TOTAL = 100_000;
const tinyDisk = tinyDiskForFile('1500k');
let influx: InfluxServer | undefined;
let broker: TestBroker | undefined;

afterAll(async () => {
  await influx?.close();
  await broker?.close();
});

it("a full InfluxDB disk is named as such; nothing is lost: with room and InfluxDB restarted every reading is stored exactly once", async (ctx) => {
  const disk = tinyDisk();
  if (disk === undefined) return ctx.skip();
  const port = await freePort();
  const dataDir = join(disk.path, 'influx');
  influx = await createInfluxServer({ port, dir: dataDir });
  await influx.start();
  const url = influx.url;
  const database = 'disk_full';
  broker = await startTestBroker();
  const { logger, lines } = captureLogger('warn');
  const ingest = await startIngest({ mqttUrl: broker.url, influxUrl: url, influxDb: database, influxUnhealthyMs: 0, httpPort: 0 }, logger);
  const load = await publishLoad(broker.url, TOTAL);
  try {
    await waitFor("InfluxDB's full disk named", () => lines.some((l) => l.code === 'INGEST_INFLUX_DISK_FULL'), 120_000);
    expect(ingest.stats().influx.diskFull).toBe(true);
    const health = (await (await fetch(`http://127.0.0.1:${String(ingest.httpPort())}/healthz`)).json()) as { problems: string[] };
    expect(health.problems).toContain('INGEST_INFLUX_DISK_FULL');

    disk.grow('256m');
    await influx.stop();
    // Same port and data directory, a new server object (common/influxd.ts start() after stop() is a no-op).
    influx = await createInfluxServer({ port, dir: dataDir });
    await influx.start();
    await load.done;
    await waitFor('all points stored', async () => (await storedCount(url, database)) >= TOTAL, 120_000, 250);
    expect(exactlyOnceProblems(await storedSeqs(url, database), TOTAL)).toBe('');
    await waitFor('writes recovered', () => ingest.stats().influx.failingSince === null);
    expect(ingest.stats().influx.diskFull).toBe(false);
  } finally {
    await load.close();
    await ingest.close();
  }
}, 300_000);
