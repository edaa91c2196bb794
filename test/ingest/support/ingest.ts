import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createLogger } from '../../../common/logger.ts';
import { createIngest, type Ingest, type IngestConfig } from '../../../ingest/ingest.ts';
import { FIXTURE_RETENTION } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { INGEST_PASSWORD, INGEST_USER } from './aedes.ts';

export async function spoolDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'carewatch-ingest-spool-'));
}

/** An in-process ingest with test-friendly retry bounds. */
export async function startIngest(over: Partial<IngestConfig> & Pick<IngestConfig, 'mqttUrl' | 'influxUrl' | 'influxDb'>, logger: Logger = createLogger('ingest-test', 'silent')): Promise<Ingest> {
  const ingest = createIngest({
    registry: demoRegistry(),
    logger,
    config: {
      username: INGEST_USER,
      password: INGEST_PASSWORD,
      clientId: 'svc-ingest',
      spoolDir: await spoolDir(),
      spoolMaxBytes: 64 * 1024 * 1024,
      retryMaxMs: 300,
      // The fixtures' device times are fixed dates (load.ts BASE_TS, 2026-01-01): older than the
      // default 30 days of raw retention, which would drop them.
      retention: FIXTURE_RETENTION,
      ...over,
    },
  });
  await ingest.start();
  await ingest.subscribed();
  return ingest;
}
