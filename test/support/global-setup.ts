import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { createInfluxServer, type InfluxServer } from '../../common/influxd.ts';
import { BUILD_ENV, buildProduction } from './build.ts';
import { createRedisServer, type RedisServer } from './redis-server.ts';

/** One private InfluxDB and one private Redis for the whole run; each test file uses its own database / key prefix. */
let influx: InfluxServer | undefined;
let redis: RedisServer | undefined;
/** The run's production build: every process a test starts runs from it (support/process.ts). */
const BUILD_DIR = join(dirname(dirname(dirname(fileURLToPath(import.meta.url)))), '.tmp', `build-${process.pid}`);

export async function setup(project: TestProject): Promise<void> {
  // Compiled while the servers start; its failure is awaited below (not left unhandled meanwhile).
  const built = buildProduction(BUILD_DIR).then(
    () => undefined,
    (err: unknown) => err,
  );
  influx = await createInfluxServer();
  await influx.start();
  redis = await createRedisServer();
  await redis.start();
  const buildError = await built;
  if (buildError !== undefined) throw new Error(`the production build (tsconfig.build.json) failed: ${(buildError as Error).message}`);
  // Test workers are forked after the global setup and inherit this.
  process.env[BUILD_ENV] = BUILD_DIR;
  project.provide('buildDir', BUILD_DIR);
  project.provide('influxUrl', influx.url);
  project.provide('redisUrl', redis.url);
}

export async function teardown(): Promise<void> {
  await influx?.close();
  await redis?.close();
  await rm(BUILD_DIR, { recursive: true, force: true });
}

declare module 'vitest' {
  export interface ProvidedContext {
    influxUrl: string;
    redisUrl: string;
    buildDir: string;
  }
}
