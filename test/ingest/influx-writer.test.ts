import { rm } from 'node:fs/promises';
import { afterEach, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.ts';
import { createInfluxWriter } from '../../ingest/influx-writer.ts';
import { InfluxError } from '../../common/influx/errors.ts';
import type { LineWriter } from '../../common/influx/writer.ts';
import { createRejectionLog } from '../../ingest/rejections.ts';
import { createSpool } from '../../ingest/spool.ts';
import { demoRegistry } from '../support/registry.ts';
import { spoolDir } from './support/ingest.ts';
import { waitFor } from './support/wait.ts';

/**
 * The writer keeps two batches on the wire (issue 6) but must advance the spool checkpoint strictly
 * in order. The fault here — the OLDER of two concurrent batches failing while the newer one is
 * stored — is one a real InfluxDB cannot be made to produce on demand, hence a scripted LineWriter.
 */
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const T0 = Date.UTC(2026, 0, 1);
const payload = (seq: number): Uint8Array => Buffer.from(JSON.stringify({ ts: T0 + seq, seq, metrics: { smoke_obscuration_pct_per_m: 0.01, temperature_c: 21 } }));

it('with two batches in flight, a failing older batch holds the checkpoint until it is stored', async () => {
  const dir = await spoolDir();
  dirs.push(dir);
  const logger = createLogger('writer-test', 'silent');
  const spool = createSpool({ dir, maxBytes: 10_000_000, logger });
  await spool.open();
  const bodies: string[] = [];
  let failFirst = 3;
  let inFlight = 0;
  let maxInFlight = 0;
  let releaseFirst: () => void = () => undefined;
  const firstHeld = new Promise<void>((r) => (releaseFirst = r));
  const lineWriter: LineWriter = {
    async write(lines): Promise<void> {
      const body = typeof lines === 'string' ? lines : lines.join('\n');
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        const first = / seq=0i /.test(body) || /,seq=0i /.test(body);
        if (first) {
          await firstHeld;
          if (failFirst-- > 0) throw new InfluxError('INFLUX_UNREACHABLE', 'scripted outage');
        }
        bodies.push(body);
      } finally {
        inFlight--;
      }
    },
    close: () => undefined,
  };
  for (let i = 0; i < 20; i++) spool.append('carewatch/v1/h01/h01-sd-r101/telemetry', payload(i), T0);
  await spool.commit();
  const writer = createInfluxWriter({ spool, writer: lineWriter, ensureDatabase: async () => undefined, registry: demoRegistry(), rejections: createRejectionLog(logger, () => T0), logger, now: () => T0, maxPoints: 10, lingerMs: 0, retryMinMs: 5, retryMaxMs: 10 });
  writer.start();
  try {
    // The second batch (seq 10..19) is stored while the first is held: the checkpoint must not move.
    await waitFor('the second batch stored', () => bodies.length === 1);
    expect(bodies[0]).toMatch(/seq=10i/);
    expect(maxInFlight).toBe(2);
    expect(spool.checkpoint()).toBe(0);
    releaseFirst();
    await waitFor('the spool drained', () => spool.stats().bytes === 0);
    expect(bodies).toHaveLength(2);
    expect(writer.stats()).toMatchObject({ written: 20, batches: 2, failures: 3 });
    expect(spool.checkpoint()).toBe(spool.end());
  } finally {
    releaseFirst();
    await writer.close();
    await spool.close();
  }
});
