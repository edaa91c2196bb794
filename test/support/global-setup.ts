import type { TestProject } from 'vitest/node';
import { createInfluxServer, type InfluxServer } from '../../common/influxd.ts';
import { createRedisServer, type RedisServer } from './redis-server.ts';

/** One private InfluxDB and one private Redis for the whole run; each test file uses its own database / key prefix. */
let influx: InfluxServer | undefined;
let redis: RedisServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  influx = await createInfluxServer();
  await influx.start();
  redis = await createRedisServer();
  await redis.start();
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
  }
}
