import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createInfluxServer, freePort, type InfluxServer } from '../../common/influxd.ts';
import type { Ingest } from '../../ingest/ingest.ts';
import { startTestBroker, type TestBroker } from './support/aedes.ts';
import { startIngest } from './support/ingest.ts';
import { exactlyOnceProblems, publishLoad, storedCount, storedSeqs } from './support/load.ts';
import { waitFor } from './support/wait.ts';

const TOTAL = 10_000;
let broker: TestBroker | undefined;
let ingest: Ingest | undefined;
// A private InfluxDB of this file: stopping the run's shared one would break other test files.
let influx: InfluxServer | undefined;
let dir: string | undefined;

afterEach(async () => {
  await ingest?.close();
  await broker?.close();
  await influx?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/**
 * Same port and data directory, new server object: common/influxd.ts `start()` after `stop()` is a
 * no-op (it checks `exitCode`, which stays null after SIGKILL), so the outage is ended this way.
 */
async function influxOn(port: number, dataDir: string): Promise<InfluxServer> {
  const s = await createInfluxServer({ port, dir: dataDir });
  await s.start();
  return s;
}

describe('ingest, acceptance: InfluxDB outage', () => {
  it('keeps accepting while InfluxDB is down, then drains the spool: all 10,000 exactly once', async () => {
    dir = await mkdtemp(join(tmpdir(), 'carewatch-ingest-influx-'));
    const port = await freePort();
    influx = await influxOn(port, dir);
    const url = influx.url;
    const database = 'outage';
    broker = await startTestBroker();
    ingest = await startIngest({ mqttUrl: broker.url, influxUrl: url, influxDb: database });
    const load = await publishLoad(broker.url, TOTAL);
    await waitFor('some traffic stored', async () => (await storedCount(url, database)) > 0, 30_000, 10);
    await influx.stop();
    const storedBefore = ingest.stats().written;

    // Everything is still received, spooled and acknowledged while InfluxDB is gone.
    await load.done;
    await load.close();
    const during = await waitFor('all received and acked during the outage', () => {
      const s = ingest?.stats();
      return s !== undefined && s.received >= TOTAL && s.acked === s.received ? s : undefined;
    });
    expect(during.influx.failures).toBeGreaterThan(0);
    expect(during.influx.failingSince).not.toBeNull();
    expect(during.spool.bytes).toBeGreaterThan(0);
    expect(storedBefore).toBeLessThan(TOTAL);

    influx = await influxOn(port, dir);
    await waitFor('all points stored', async () => (await storedCount(url, database)) >= TOTAL, 90_000, 250);
    expect(exactlyOnceProblems(await storedSeqs(url, database), TOTAL)).toBe('');
    const after = await waitFor('spool drained', () => {
      const s = ingest?.stats();
      return s !== undefined && s.spool.bytes === 0 ? s : undefined;
    });
    expect(after.influx.failingSince).toBeNull();
    expect(after.rejectedTotal).toBe(0);
  });
});
