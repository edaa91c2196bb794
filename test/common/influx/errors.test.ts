import { describe, expect, it } from 'vitest';
import { writeError } from '../../../common/influx/errors.ts';
import { ingestProblems } from '../../../ingest/metrics.ts';
import type { IngestStats } from '../../../ingest/ingest.ts';

/** InfluxDB 1.6's answer to a write when its disk is full (seen in test/ingest/influx-disk-full.test.ts). */
const ENOSPC = JSON.stringify({ error: 'engine: error writing WAL entry: write /var/lib/influxdb/wal/carewatch/raw/1/_00001.wal: no space left on device' });

describe('InfluxDB disk full (INFLUX_DISK_FULL)', () => {
  it("a 5xx saying 'no space left on device' is a full disk, still retryable; another 5xx is INFLUX_SERVER; a 400 saying it is a refused line", () => {
    expect(writeError(500, ENOSPC)).toMatchObject({ code: 'INFLUX_DISK_FULL', retryable: true, status: 500 });
    expect(writeError(500, JSON.stringify({ error: 'timeout' }))).toMatchObject({ code: 'INFLUX_SERVER', retryable: true });
    expect(writeError(400, ENOSPC)).toMatchObject({ code: 'INFLUX_REJECTED', retryable: false });
  });

  it('/healthz names the full disk beside the outage once writes have failed past the bound, and not before', () => {
    const stats = (diskFull: boolean, failingSince: number | null): IngestStats => ({ influx: { failures: 1, failingSince, lastError: 'x', diskFull, batches: 0 } }) as unknown as IngestStats;
    expect(ingestProblems(stats(true, 0), 60_000, 60_000)).toEqual(['INGEST_INFLUX_UNAVAILABLE', 'INGEST_INFLUX_DISK_FULL']);
    expect(ingestProblems(stats(false, 0), 60_000, 60_000)).toEqual(['INGEST_INFLUX_UNAVAILABLE']);
    expect(ingestProblems(stats(true, 1), 60_000, 60_000)).toEqual([]);
    expect(ingestProblems(stats(true, null), 60_000, 60_000)).toEqual([]);
  });
});
