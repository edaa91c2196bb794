import { describe, expect, it } from 'vitest';
import { formatReport, runChaos, type IngestHealth } from './harness.ts';

/**
 * Issue 12: while InfluxDB is down, ingest's spool fills to its bound (1 MiB here, the configuration's
 * minimum) and ingest must then stop acknowledging, so the messages stay with the broker (its durable
 * session for svc-ingest) instead of being dropped or piling up in ingest's memory. Once InfluxDB is
 * back, every acknowledged reading is stored. 50 devices at 10 readings/s fill the bound in ~15 s;
 * the outage lasts 40 s.
 */

const BOUND = 1024 * 1024;

describe('ingest spool bound while InfluxDB is down (issue 12)', () => {
  it('stops acknowledging at the bound, stays bounded in memory and on disk, and loses nothing afterwards', async () => {
    const seed = Number(process.env.FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    // ingest's counters while it was paused on a full spool during the outage.
    const paused: Array<IngestHealth & { spoolDirBytes: number }> = [];
    const r = await runChaos({
      seed,
      loadMs: 45_000,
      devices: 50,
      intervalMs: 100,
      kills: { broker: 0, ingest: 0, alerts: 0 },
      influxOutages: 1,
      influxOutageMs: 40_000,
      spoolMaxBytes: BOUND,
      alarms: 0,
      hostile: false,
      onIngestHealth: (h, at) => {
        if (at.influxDown && h.mqtt.paused) paused.push({ ...h, spoolDirBytes: at.spoolDirBytes });
      },
    });
    process.stderr.write(`${formatReport(r, 'spool bound, InfluxDB down 40 s')}\n`);

    // The bound was reached and ingest stayed paused for many samples (about 1 s apart).
    expect(paused.length).toBeGreaterThan(5);
    // Paused means not acknowledging: from the second paused sample on (the first may catch the last commit), not one more PUBACK or read.
    const first = paused[1] as IngestHealth & { spoolDirBytes: number };
    for (const h of paused.slice(1)) {
      expect({ acked: h.acked, received: h.received, spoolDirBytes: h.spoolDirBytes }).toEqual({ acked: first.acked, received: first.received, spoolDirBytes: first.spoolDirBytes });
    }
    // Bounded: the spool holds at most the bound plus one socket read (64 KiB of records). Its files
    // also keep the already stored head of the current segment until that segment is done
    // (ingest/spool.ts, 16 MiB segments), so the directory is bounded by a segment plus the bound.
    expect(r.peakSpoolBytes).toBeGreaterThanOrEqual(BOUND);
    expect(r.peakSpoolBytes).toBeLessThan(BOUND + 256 * 1024);
    expect(r.peakSpoolDirBytes).toBeLessThan(16 * 1024 * 1024 + BOUND + 256 * 1024);
    // Devices kept being acknowledged by the broker meanwhile (it holds the rest on disk) ...
    expect(r.acknowledged).toBeGreaterThan(first.acked + 5_000);
    // ... and ingest's memory did not take the backlog (a coarse guard: ingest runs at ~150 MiB here).
    expect(r.peakRssMiB.ingest ?? Infinity).toBeLessThan(300);
    // Nothing acknowledged is lost once InfluxDB is back.
    expect({ lost: r.lost, duplicates: r.duplicates, phantom: r.phantom }).toEqual({ lost: 0, duplicates: 0, phantom: 0 });
  }, 240_000);
});
