import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { Device } from '../../contract/registry.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { captureLogger } from '../ingest/support/wait.ts';
import { watchProcessFaults } from '../support/process-faults.ts';
import { createRedisServer, type RedisServer } from '../support/redis-server.ts';
import { demoRegistry } from '../support/registry.ts';
import { connect, startBroker } from './helpers.ts';

/**
 * A broker node (cluster mode: sessions and fan-out in Redis) closing while its Redis is away or
 * stalled, as on SIGTERM during a Redis outage. Real redis-server stopped (SIGTERM) or paused
 * (SIGSTOP: its connections stay open and nothing is answered), real mqtt.js device.
 * Before session 20 close() never returned in either case: mqemitter-redis QUITs both connections and
 * waits for their end, which a Redis away or stalled never gives; and with Redis away the QUIT's
 * promise, which the library drops, was rejected after ioredis' 20 retries, an unhandled rejection
 * that ends the process under Node's default.
 */
let redis: RedisServer;
const { unhandled } = watchProcessFaults();
const [device] = demoRegistry().site.devices.filter((d) => d.kind === 'smoke_detector') as [Device];

beforeAll(async () => {
  redis = await createRedisServer();
  await redis.start();
});
afterAll(async () => {
  await redis?.close();
});

/** The broker's log lines, parsed. */
const { logger, lines } = captureLogger('warn');

/** A node with a device that has sent a few readings, then `fault` applied to Redis. */
async function nodeThen(fault: () => Promise<void> | void, redisCloseTimeoutMs = 2_000): Promise<{ close: () => Promise<void> }> {
  const b = await startBroker({ config: { redisUrl: `${redis.url}/0`, cluster: { nodeId: 'n1' }, limits: { heartbeatIntervalMs: 200, redisCloseTimeoutMs } }, logger });
  const c = await connect(b, device.id);
  for (let seq = 1; seq <= 3; seq++) await c.publishAsync(deviceTopic(device.homeId, device.id, 'telemetry'), JSON.stringify({ ts: Date.now(), seq, metrics: { temperature_c: 20 } }), { qos: 1 });
  await fault();
  c.end(true);
  return b;
}

it('close() returns while Redis is stalled, and nothing is rejected unhandled when Redis answers again', async () => {
  const b = await nodeThen(() => redis.pause());
  try {
    // The test's timeout is the bound: before the fix this never returned while Redis was stalled.
    await b.close();
  } finally {
    redis.resume();
  }
  // Redis reads the closed connections' end and closes them: whatever was pending settles now.
  await new Promise((r) => setTimeout(r, 500));
  expect(unhandled).toEqual([]);
}, 30_000);

it("close() returns while Redis is away, and the QUITs that ioredis fails while it waits are not rejected unhandled; the store connection's errors go to the log, bounded", async () => {
  // ioredis writes the errors of a connection without an 'error' listener to the console.
  const stderr = vi.spyOn(console, 'error');
  lines.length = 0;
  const b = await nodeThen(async () => {
    await redis.stop();
    // A few reconnect attempts of every connection (ioredis: 50 ms, 100 ms, … apart).
    await new Promise((r) => setTimeout(r, 3_000));
  }, 10_000);
  try {
    // The fan-out's QUITs wait up to 10 s, from ~3 s into the outage: ioredis fails every queued
    // command at its 21st reconnect attempt, ~10.5 s into it (maxRetriesPerRequest 20), so within
    // that wait; dropped by mqemitter-redis, that rejection was unhandled. After the bound the
    // connections are dropped: what is still queued is never settled.
    await b.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(unhandled).toEqual([]);
    expect(stderr.mock.calls.filter((c) => String(c[0]).includes('[ioredis]'))).toEqual([]);
    const storeErrors = lines.filter((l) => l.code === 'BROKER_STORE_REDIS_ERROR');
    expect(storeErrors.length).toBeGreaterThan(0);
    // At most 10 lines a minute, then a summary (common/rejection-log.ts).
    expect(storeErrors.length).toBeLessThanOrEqual(11);
  } finally {
    stderr.mockRestore();
    await redis.start();
  }
}, 60_000);
