import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { createInfluxServer, type InfluxServer } from '../../common/influxd.ts';
import { BUILD_ENV, buildDirFor, buildProduction } from './build.ts';
import { ROOT } from './process.ts';
import { createRedisServer, type RedisServer } from './redis-server.ts';

/** One private InfluxDB and one private Redis for the whole run; each test file uses its own database / key prefix. */
let influx: InfluxServer | undefined;
let redis: RedisServer | undefined;
export async function setup(project: TestProject): Promise<void> {
  // The run's production build: every process a test starts runs from it (support/process.ts).
  // Not in watch mode, where the setup runs once and a rerun after an edit would start stale
  // processes: there they run from source.
  const buildDir = project.config.watch ? undefined : buildDirFor(join(ROOT, '.tmp'), 'build');
  // Compiled while the servers start; its failure is awaited below (not left unhandled meanwhile).
  const built = (buildDir === undefined ? Promise.resolve() : buildProduction(buildDir)).then(
    () => undefined,
    (err: unknown) => err,
  );
  influx = await createInfluxServer();
  await influx.start();
  redis = await createRedisServer();
  await redis.start();
  const buildError = await built;
  if (buildError !== undefined) throw buildError;
  if (buildDir !== undefined) {
    // Test workers are forked after the global setup and inherit this.
    process.env[BUILD_ENV] = buildDir;
    project.provide('buildDir', buildDir);
  }
  project.provide('influxUrl', influx.url);
  project.provide('redisUrl', redis.url);
}

export async function teardown(): Promise<void> {
  await influx?.close();
  await redis?.close();
}

declare module 'vitest' {
  export interface ProvidedContext {
    influxUrl: string;
    redisUrl: string;
    /** The run's production build (unset in watch mode, where processes run from source). */
    buildDir?: string;
  }
}
