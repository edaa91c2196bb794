import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../common/influxd.ts';
import type { Ingest, IngestStats } from '../../ingest/ingest.ts';
import { testInflux } from '../support/influx-db.ts';
import { startTestBroker, type TestBroker } from './support/aedes.ts';
import { spoolDir, startIngest } from './support/ingest.ts';
import { exactlyOnceProblems, publishLoad, storedCount, storedSeqs } from './support/load.ts';
import { waitFor } from './support/wait.ts';

const TOTAL = 2_000;
const MAX = 64 * 1024;
let broker: TestBroker | undefined;
const running: Ingest[] = [];

afterEach(async () => {
  for (const i of running.splice(0)) await i.close();
  await broker?.close();
});

async function health(port: number | undefined): Promise<{ status: number; body: IngestStats }> {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return { status: res.status, body: (await res.json()) as IngestStats };
}

describe('ingest backpressure and health', () => {
  it('stops reading at the spool bound without dropping, reports 503, and a restart drains everything', async () => {
    const { url, database } = testInflux('bp');
    broker = await startTestBroker();
    const dir = await spoolDir();
    // InfluxDB unreachable: nothing leaves the spool.
    const dead = `http://127.0.0.1:${await freePort()}`;
    const first = await startIngest({ mqttUrl: broker.url, influxUrl: dead, influxDb: database, spoolDir: dir, spoolMaxBytes: MAX, httpPort: 0, influxUnhealthyMs: 0 });
    running.push(first);
    const load = await publishLoad(broker.url, TOTAL);
    await load.done;
    const full = await waitFor('paused on a full spool', () => {
      const s = first.stats();
      return s.mqtt.paused ? s : undefined;
    });
    // Bounded: at most the bound plus what one socket read delivered.
    expect(full.spool.bytes).toBeGreaterThanOrEqual(MAX);
    expect(full.spool.bytes).toBeLessThan(MAX + 256 * 1024);
    expect(full.received).toBeLessThan(TOTAL);
    const h = await waitFor('503 while InfluxDB is unreachable', async () => {
      const r = await health(first.httpPort());
      return r.status === 503 ? r : undefined;
    });
    expect(h.body.mqtt.paused).toBe(true);
    const firstHealthPort = first.httpPort();
    await first.close();
    running.splice(running.indexOf(first), 1);
    await expect(fetch(`http://127.0.0.1:${firstHealthPort}/health`)).rejects.toThrow();

    // Same spool, reachable InfluxDB: the spooled part is replayed, the broker delivers the rest.
    const second = await startIngest({ mqttUrl: broker.url, influxUrl: url, influxDb: database, spoolDir: dir, spoolMaxBytes: MAX, httpPort: 0 });
    running.push(second);
    await load.close();
    await waitFor('all points stored', async () => (await storedCount(url, database)) >= TOTAL, 60_000, 200);
    expect(exactlyOnceProblems(await storedSeqs(url, database), TOTAL)).toBe('');
    const ok = await waitFor('healthy and drained', async () => {
      const r = await health(second.httpPort());
      return r.status === 200 && r.body.spool.bytes === 0 && !r.body.mqtt.paused ? r : undefined;
    });
    expect(ok.body.written).toBeGreaterThan(0);
  });
});
