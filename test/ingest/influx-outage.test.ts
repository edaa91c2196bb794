import { afterEach, describe, expect, it } from 'vitest';
import { createInfluxServer, type InfluxServer } from '../../common/influxd.ts';
import type { Ingest } from '../../ingest/ingest.ts';
import { startTestBroker, type TestBroker } from './support/aedes.ts';
import { startIngest } from './support/ingest.ts';
import { createLogger } from '../../common/logger.ts';
import { exactlyOnceProblems, publishLoad, storedCount, storedSeqs } from './support/load.ts';
import { waitFor } from './support/wait.ts';

const TOTAL = 10_000;
let broker: TestBroker | undefined;
let ingest: Ingest | undefined;
// A private InfluxDB of this file: stopping the run's shared one would break other test files.
let influx: InfluxServer | undefined;

afterEach(async () => {
  await ingest?.close();
  await broker?.close();
  await influx?.close();
});

describe('ingest, acceptance: InfluxDB outage', () => {
  it('keeps accepting while InfluxDB is down, then drains the spool: all 10,000 exactly once', async () => {
    influx = await createInfluxServer();
    await influx.start();
    const database = 'outage';
    broker = await startTestBroker();
    ingest = await startIngest({ mqttUrl: broker.url, influxUrl: influx.url, influxDb: database }, createLogger('dbg', 'info'));
    const load = await publishLoad(broker.url, TOTAL);
    await waitFor('some traffic stored', async () => (await storedCount(influx?.url ?? '', database)) > 0, 30_000, 10);
    await influx.stop();
    const storedBefore = ingest.stats().written;

    // Everything is still received, spooled and acknowledged while InfluxDB is gone.
    const dbg = setInterval(() => process.stderr.write(`DBG published=${load.published()} ${JSON.stringify(ingest?.stats())}\n`), 2000);
    await load.done;
    process.stderr.write('DBG load done\n');
    await load.close();
    process.stderr.write('DBG load closed\n');
    clearInterval(dbg);
    const during = await waitFor('all received and acked during the outage', () => {
      const s = ingest?.stats();
      return s !== undefined && s.received >= TOTAL && s.acked === s.received ? s : undefined;
    });
    expect(during.influx.failures).toBeGreaterThan(0);
    expect(during.influx.failingSince).not.toBeNull();
    expect(during.spool.bytes).toBeGreaterThan(0);
    expect(storedBefore).toBeLessThan(TOTAL);

    await influx.start();
    await waitFor('all points stored', async () => (await storedCount(influx?.url ?? '', database)) >= TOTAL, 90_000, 250);
    expect(exactlyOnceProblems(await storedSeqs(influx.url, database), TOTAL)).toBe('');
    const after = await waitFor('spool drained', () => {
      const s = ingest?.stats();
      return s !== undefined && s.spool.bytes === 0 ? s : undefined;
    });
    expect(after.influx.failingSince).toBeNull();
    expect(after.rejectedTotal).toBe(0);
  });
});
