import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { io as connectClient } from 'socket.io-client';
import { expect, it } from 'vitest';
import { createSocketCluster, type SocketCluster } from '../../alerts/socket-cluster.ts';
import { captureLogger } from '../ingest/support/wait.ts';
import { watchProcessFaults } from '../support/process-faults.ts';
import { useRedisServer } from '../support/redis-server.ts';
import { until } from './support/harness.ts';

/**
 * A message on the socket.io adapter's Redis channels that it cannot read, with a real redis-server
 * and two real socket.io servers on the adapter. `@socket.io/redis-adapter` 8.3 decodes them
 * unguarded: a broadcast without its options (or not msgpack) threw inside ioredis's socket reader
 * (an uncaught exception), a request that is nil or lacks its options rejected an async listener
 * nobody handles. Under Node's defaults each ended the process, and every alerts node reads the same
 * channels: one message (a node of another adapter version in a rolling upgrade; anyone who can write
 * to Redis) stopped them all. Each case failed before guardSubscriberMessages (common/redis-subscriber-guard.ts).
 */
const redis = useRedisServer();
const faults = watchProcessFaults();

// The adapter's channels for the key carewatch-socket and the namespace '/'.
const BROADCAST = 'carewatch-socket#/#';
const REQUEST = 'carewatch-socket-request#/#';
/** msgpack of ['x', { nsp: '/' }]: a broadcast with a packet but without its options. */
const BROADCAST_WITHOUT_OPTS = Buffer.from([0x92, 0xa1, 0x78, 0x81, 0xa3, 0x6e, 0x73, 0x70, 0xa1, 0x2f]);

const cases: [string, string, Buffer][] = [
  ['a request that is msgpack nil', REQUEST, Buffer.from([0xc0])],
  ['a fetch request (JSON) without its options', REQUEST, Buffer.from('{"type":5,"requestId":"x"}')],
  ['a broadcast-with-ack request without its options', REQUEST, Buffer.from('{"type":7,"requestId":"y"}')],
  ['a broadcast that is not msgpack', BROADCAST, Buffer.from([0xc1])],
  ['a broadcast without its options', BROADCAST, BROADCAST_WITHOUT_OPTS],
];

async function node(logger: ReturnType<typeof captureLogger>['logger']): Promise<{ cluster: SocketCluster; io: Server; port: number }> {
  const cluster = createSocketCluster({ redisUrl: redis.url, logger, requestTimeoutMs: 200 });
  const http = createServer();
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const io = new Server(http, { adapter: cluster.adapter });
  return { cluster, io, port: (http.address() as AddressInfo).port };
}

it.each(cases)('%s is dropped, counted and logged; the node goes on carrying the other nodes\' broadcasts', async (_name, channel, msg) => {
  const { logger, lines } = captureLogger('warn');
  const a = await node(logger);
  const b = await node(logger);
  b.io.on('connection', (s) => void s.join('home:h01'));
  const page = connectClient(`http://127.0.0.1:${b.port}`, { transports: ['websocket'] });
  const received: unknown[] = [];
  page.on('alert', (x: unknown) => received.push(x));
  const admin = new Redis(redis.url);
  try {
    await until(() => (a.cluster.connected() && b.cluster.connected() && page.connected) || undefined, 'both nodes on Redis, the page on node b');
    // Both nodes' subscriptions are in place when Redis counts them (the pattern one is subscribed first).
    await until(async () => ((await admin.call('PUBSUB', 'NUMSUB', REQUEST)) as [string, number])[1] >= 2 || undefined, 'both nodes subscribed');
    expect(await admin.publish(channel, msg)).toBe(2);
    // Settled means dropped by both, or a crash (an uncaught exception or unhandled rejection): either way on.
    const crashed = (): boolean => faults.unhandled.length + faults.uncaught.length > 0;
    await until(() => (crashed() || (a.cluster.stats().malformedMessages >= 1 && b.cluster.stats().malformedMessages >= 1)) || undefined, 'the message dropped by both nodes');
    expect(faults.unhandled.map(String)).toEqual([]);
    expect(faults.uncaught.map(String)).toEqual([]);
    // Node a's broadcast still reaches node b's page: b's reader was not left mid-reply.
    a.io.to('home:h01').emit('alert', { n: 1 });
    await until(() => received.length === 1 || undefined, "node a's broadcast on node b's page");
    expect(faults.unhandled.map(String)).toEqual([]);
    expect(faults.uncaught.map(String)).toEqual([]);
    expect(a.cluster.stats().malformedMessages).toBe(1);
    expect(lines.filter((l) => l.code === 'ALERTS_REDIS_MESSAGE_MALFORMED')).toHaveLength(2);
  } finally {
    page.close();
    admin.disconnect();
    for (const n of [a, b]) {
      await n.io.close();
      await n.cluster.close();
    }
  }
});

it('a flood of bad messages is logged at most 10 times a minute per node, and counted exactly', async () => {
  const { logger, lines } = captureLogger('warn');
  const a = await node(logger);
  const admin = new Redis(redis.url);
  try {
    await until(() => a.cluster.connected() || undefined, 'on Redis');
    await until(async () => ((await admin.call('PUBSUB', 'NUMSUB', REQUEST)) as [string, number])[1] >= 1 || undefined, 'subscribed');
    for (let i = 0; i < 200; i++) await admin.publish(BROADCAST, BROADCAST_WITHOUT_OPTS);
    await until(() => a.cluster.stats().malformedMessages === 200 || undefined, 'all 200 counted');
    expect(lines.filter((l) => l.code === 'ALERTS_REDIS_MESSAGE_MALFORMED')).toHaveLength(10);
    expect(faults.uncaught).toEqual([]);
  } finally {
    admin.disconnect();
    await a.io.close();
    await a.cluster.close();
  }
});
