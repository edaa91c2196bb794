import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createInfluxServer, freePort, type InfluxServer } from '../../common/influxd.ts';
import { startProcess, type TestProcess } from '../support/process.ts';
import { DEMO_SITE_PATH, demoSecret } from '../support/registry.ts';
import { tinyDiskForFile } from '../support/tiny-disk.ts';
import { startTestBroker, type TestBroker } from './support/aedes.ts';
import { exactlyOnceProblems, publishLoad, storedCount, storedSeqs } from './support/load.ts';
import { waitFor } from './support/wait.ts';

/**
 * Ingest's spool on a disk that fills before the spool's own bound is reached, while InfluxDB is down
 * (nothing listens on its port), so nothing drains: a real 1 MiB tmpfs (root only: skipped
 * elsewhere), grown by a remount, and a real ingest process SIGKILLed while the disk is full. A
 * message the spool cannot write stays unacknowledged (the broker keeps it in ingest's session; the
 * devices' publishes were acknowledged by the broker's own store), and ingest stops reading once
 * what it holds unwritten passes its bound (before session 20 it read on into memory up to the
 * spool's bound, 512 MiB by default). So the kill loses nothing; with room, InfluxDB up and ingest
 * started again, every message is stored exactly once. Acknowledging before the spool write is
 * durable loses what was acknowledged and not yet written when the process dies.
 */
const TOTAL = 20_000;
const tinyDisk = tinyDiskForFile('1m');
let influx: InfluxServer | undefined;
let broker: TestBroker | undefined;
const procs: TestProcess[] = [];

afterAll(async () => {
  for (const p of procs) await p.kill('SIGKILL');
  await influx?.close();
  await broker?.close();
});

it('a full disk stops the acknowledgements, not the data: ingest SIGKILLed then, restarted with room and InfluxDB back, stores every reading exactly once', async (ctx) => {
  const disk = tinyDisk();
  if (disk === undefined) return ctx.skip();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const database = 'disk_full';
  broker = await startTestBroker();
  const env = {
    CAREWATCH_REGISTRY: DEMO_SITE_PATH,
    CAREWATCH_MQTT_URL: broker.url,
    CAREWATCH_INGEST_PASSWORD: demoSecret('svc-ingest'),
    CAREWATCH_INFLUX_URL: url,
    CAREWATCH_INFLUX_DB: database,
    CAREWATCH_SPOOL_DIR: join(disk.path, 'spool'),
    // ~1,300 of the load's records held unwritten at most, of 20,000.
    CAREWATCH_SPOOL_MAX_UNWRITTEN_BYTES: String(256 * 1024),
    CAREWATCH_INGEST_HTTP_PORT: '0',
    // The load's device times are fixed dates in 2026 (load.ts BASE_TS).
    CAREWATCH_RETENTION_RAW_DAYS: '36500',
    CAREWATCH_LOG_LEVEL: 'warn',
  };
  const first = startProcess('ingest-disk-full', 'ingest/main.ts', env);
  procs.push(first);
  const health = `http://127.0.0.1:${(await first.waitForOutput(/ingest started.*health http:\/\/[^:]+:(\d+)\//))[1] ?? ''}/health`;
  const load = await publishLoad(broker.url, TOTAL);
  try {
    await first.waitForOutput(/INGEST_SPOOL_IO/);
    await first.waitForOutput(/INGEST_BACKPRESSURE/);
    // The broker acknowledges the devices from its own store; ingest, paused, does not read them all.
    await load.done;
    const read = async (): Promise<number> => ((await (await fetch(health)).json()) as { received: number }).received;
    // A bound on waiting: without the pause ingest read all 20,000 into memory within a few seconds.
    const readAll = await waitFor('ingest reading everything', async () => ((await read()) >= TOTAL ? true : undefined), 5_000).then(
      () => true,
      () => false,
    );
    expect(readAll).toBe(false);
    // And /health answered (a failing fetch would also have kept the wait above from succeeding).
    const held = await read();
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(TOTAL);
    await first.kill('SIGKILL');

    disk.grow('256m');
    influx = await createInfluxServer({ port });
    await influx.start();
    const second = startProcess('ingest-disk-full-2', 'ingest/main.ts', env);
    procs.push(second);
    await second.waitForOutput(/ingest started/);
    await load.done;
    await waitFor('all points stored', async () => (await storedCount(url, database)) >= TOTAL, 120_000, 250);
    expect(exactlyOnceProblems(await storedSeqs(url, database), TOTAL)).toBe('');
  } finally {
    await load.close();
  }
}, 240_000);
