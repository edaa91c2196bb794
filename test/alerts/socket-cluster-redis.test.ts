import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Server } from 'socket.io';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSocketCluster } from '../../alerts/socket-cluster.ts';
import { captureLogger } from '../ingest/support/wait.ts';
import { watchProcessFaults } from '../support/process-faults.ts';
import { createRedisServer, type RedisServer } from '../support/redis-server.ts';
import { until } from './support/harness.ts';

/**
 * The socket cluster (alerts/socket-cluster.ts) closing while its Redis is away, with a real
 * redis-server stopped under it and a real socket.io server on the adapter. The adapter sends its
 * publishes and subscriptions without waiting for them; ioredis keeps them in its offline queue while
 * Redis is away, and rejects them all when the connection is closed. Unhandled, each rejection is a
 * crash of the alerts process under Node's default (--unhandled-rejections=throw) in the middle of its
 * close, before the snapshot is saved and the store closed; in a parallel test run it was 89
 * "Connection is closed" errors at once (session 19).
 */
let redis: RedisServer;
const { unhandled } = watchProcessFaults();

beforeAll(async () => {
  redis = await createRedisServer();
  await redis.start();
});

afterAll(async () => {
  await redis?.close();
});

it('closing while Redis is stalled (it accepts connections and answers nothing) rejects nothing unhandled: the broadcasts not sent are counted', async () => {
  // The kernel accepts the connections of a stopped server: ioredis is connected, waiting for its
  // ready check, with every command in its offline queue (as with a Redis hung, or busy loading).
  redis.pause();
  const cluster = createSocketCluster({ redisUrl: redis.url, logger: pino({ level: 'silent' }), requestTimeoutMs: 200 });
  try {
    const http = createServer();
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const io = new Server(http, { adapter: cluster.adapter });
    for (let i = 0; i < 25; i++) io.to('home:h01').emit('alert', { n: i });
    await io.close();
    await cluster.close();
  } finally {
    redis.resume();
  }
  // Redis, answering again, reads the closed connections' end and closes them: ioredis settles
  // what was queued ("Connection is closed"), on a turn after it.
  // Settled means handled (counted) or not (an unhandled rejection): wait for either, then tell them apart.
  await until(() => (cluster.stats().failedCommands ?? 0) + unhandled.length >= 25 || undefined, 'the queued publishes settled');
  await new Promise((r) => setTimeout(r, 100));
  expect(unhandled).toEqual([]);
}, 30_000);

it('close() returns while Redis is away: quit() would wait for ever; the commands queued meanwhile are never sent, nor settled', async () => {
  const cluster = createSocketCluster({ redisUrl: redis.url, logger: pino({ level: 'silent' }), requestTimeoutMs: 200 });
  const http = createServer();
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const io = new Server(http, { adapter: cluster.adapter });
  await until(() => cluster.connected() || undefined, 'both Redis connections ready');
  await redis.stop();
  try {
    await until(() => !cluster.connected() || undefined, 'the cluster sees Redis gone');
    for (let i = 0; i < 25; i++) io.to('home:h01').emit('alert', { n: i });
    // quit() would wait for a Redis that is not there: close is bounded (1 s), then disconnects.
    await io.close();
    await cluster.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(unhandled).toEqual([]);
    expect(cluster.connected()).toBe(false);
  } finally {
    await redis.start();
  }
}, 30_000);

it('a broadcast Redis refuses while the node runs (an ACL, a full memory) is counted and logged, not an unhandled rejection', async () => {
  const { logger, lines } = captureLogger('warn');
  const cluster = createSocketCluster({ redisUrl: redis.url, logger, requestTimeoutMs: 200 });
  const http = createServer();
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const io = new Server(http, { adapter: cluster.adapter });
  const admin = new Redis(redis.url);
  try {
    await until(() => cluster.connected() || undefined, 'both Redis connections ready');
    await admin.call('ACL', 'SETUSER', 'default', '-publish');
    io.to('home:h01').emit('alert', { n: 1 });
    await until(() => cluster.stats().failedCommands >= 1 || undefined, 'the refused PUBLISH counted');
    await new Promise((r) => setTimeout(r, 100));
    expect(unhandled).toEqual([]);
    expect(lines.filter((l) => l.code === 'ALERTS_REDIS_COMMAND_FAILED').length).toBe(1);
  } finally {
    await admin.call('ACL', 'SETUSER', 'default', '+@all');
    admin.disconnect();
    await io.close();
    await cluster.close();
  }
}, 30_000);
