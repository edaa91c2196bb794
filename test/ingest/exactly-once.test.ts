import { afterEach, describe, expect, it } from 'vitest';
import type { Ingest } from '../../ingest/ingest.ts';
import { testInflux } from '../support/influx-db.ts';
import { startTestBroker, type TestBroker } from './support/aedes.ts';
import { startIngest } from './support/ingest.ts';
import { exactlyOnceProblems, publishLoad, storedCount, storedSeqs } from './support/load.ts';
import { waitFor } from './support/wait.ts';

const TOTAL = 10_000;
let broker: TestBroker | undefined;
let ingest: Ingest | undefined;

afterEach(async () => {
  await ingest?.close();
  await broker?.close();
});

describe('ingest, acceptance: exactly once', () => {
  it('stores 10,000 QoS 1 messages from several devices exactly once', async () => {
    const { url, database } = testInflux('ingest');
    broker = await startTestBroker();
    ingest = await startIngest({ mqttUrl: broker.url, influxUrl: url, influxDb: database });
    const load = await publishLoad(broker.url, TOTAL);
    await load.done;
    await load.close();
    await waitFor('all points stored', async () => (await storedCount(url, database)) >= TOTAL, 60_000, 200);
    expect(exactlyOnceProblems(await storedSeqs(url, database), TOTAL)).toBe('');
    const s = ingest.stats();
    expect(s.received).toBeGreaterThanOrEqual(TOTAL);
    await waitFor('acks and checkpoint caught up', () => ingest?.stats().acked === s.received && ingest.stats().spool.bytes === 0);
    expect(s.rejectedTotal).toBe(0);
    // Group commit: far fewer fdatasyncs than messages.
    expect(s.spool.commits).toBeLessThan(TOTAL / 2);
  });
});
