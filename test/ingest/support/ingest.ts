import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createLogger } from '../../../common/logger.ts';
import { createIngest, type Ingest, type IngestConfig } from '../../../ingest/ingest.ts';
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
      ...over,
    },
  });
  await ingest.start();
  await ingest.subscribed();
  return ingest;
}
