import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import type { Broker } from '../../broker/broker.ts';
import type { Device } from '../../contract/registry.ts';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import { captureLogger } from '../ingest/support/wait.ts';
import { watchProcessFaults } from '../support/process-faults.ts';
import { createRedisServer, type RedisServer } from '../support/redis-server.ts';
import { demoRegistry } from '../support/registry.ts';
import { closedEvent, connect, connectRecording, leaveTelemetrySession, publishUntilHeld, record, seqsOf, startBroker, until } from './helpers.ts';

/**
 * A broker node on Redis (cluster mode) when Redis fails some commands and not the others: real
 * redis-server, the fault made with Redis' own ACLs (`ACL SETUSER default -<command>`: NOPERM for
 * that command only) or its memory limit (`maxmemory`, noeviction: OOM for every write), real
 * mqtt.js clients. aedes and aedes-persistence-redis call some store
 * operations without handling their failure; before session 20 each of these was a crash of the
 * node, so of every connection on it (found by a floating-promise scan of the libraries' calls).
 */
let redis: RedisServer;
let admin: Redis;
let broker: Broker | undefined;
const { unhandled, uncaught } = watchProcessFaults();
const { logger, lines } = captureLogger('warn');
const [device] = demoRegistry().site.devices.filter((d) => d.kind === 'smoke_detector') as [Device];
const statusTopic = deviceTopic(device.homeId, device.id, 'status');
const telemetryTopic = deviceTopic(device.homeId, device.id, 'telemetry');

beforeAll(async () => {
  redis = await createRedisServer();
  await redis.start();
  admin = new Redis(redis.url);
});
beforeEach(async () => {
  lines.length = 0;
  broker = await startBroker({ config: { redisUrl: `${redis.url}/0`, cluster: { nodeId: 'n1' }, limits: { heartbeatIntervalMs: 200 } }, logger });
});
afterEach(async () => {
  await admin.call('ACL', 'SETUSER', 'default', '+@all');
  await admin.config('SET', 'maxmemory', '0');
  await broker?.close();
  await admin.flushall();
});
afterAll(async () => {
  admin?.disconnect();
  await redis?.close();
});

/** Redis refuses `commands` from now on (NOPERM), and only them. */
async function refuse(...commands: string[]): Promise<void> {
  await admin.call('ACL', 'SETUSER', 'default', ...commands.map((c) => `-${c}`));
}

it("a SUBSCRIBE whose retained messages Redis will not read: the node stays up, it is logged, and the subscriber is closed to subscribe again", async () => {
  const b = broker as Broker;
  const dev = await connect(b, device.id);
  await dev.publishAsync(statusTopic, JSON.stringify({ ts: Date.now(), online: true }), { qos: 1, retain: true });
  // A wildcard filter's retained messages are read with HSCAN (aedes-persistence-redis matchRetained).
  await refuse('hscan');
  const svc = await connect(b, 'svc-alerts', { clientId: 'svc-alerts-retained' });
  const closed = closedEvent(svc);
  const got = record(svc);
  await svc.subscribeAsync(FILTERS.status, { qos: 1 });
  await until('the refused read logged', () => lines.some((l) => l.code === 'BROKER_STORE_RETAINED_READ_FAILED'));
  expect(uncaught).toEqual([]);
  // Told its filter was granted and given no retained status: closed (it was left so until session 22).
  await closed;
  expect(got).toEqual([]);
  // Still serving: the device's connection is up, and the subscriber's next SUBSCRIBE gets the
  // retained status once Redis reads again.
  await admin.call('ACL', 'SETUSER', 'default', '+@all');
  const again = await connect(b, 'svc-alerts', { clientId: 'svc-alerts-retained' });
  const gotAgain = record(again);
  await again.subscribeAsync(FILTERS.status, { qos: 1 });
  await until('the retained status', () => gotAgain.some((r) => r.topic === statusTopic && r.retain));
  await dev.publishAsync(statusTopic, JSON.stringify({ ts: Date.now(), online: true, seq: 2 }), { qos: 1, retain: true });
  await until('the live status at the service', () => gotAgain.some((r) => r.topic === statusTopic && !r.retain));
  again.end(true);
  dev.end(true);
}, 30_000);

it("a persistent session's CONNECT on aedes' path: no will transaction for a key that cannot exist, so nothing rejected unhandled when Redis refuses it", async () => {
  const b = broker as Broker;
  // aedes' storeWill deleted `will:undefined:<id>` (SREM, GET, DEL in one MULTI) and dropped the failure.
  await refuse('srem');
  const svc = await connect(b, 'svc-ingest', { clientId: 'svc-ingest-persistent', clean: false });
  try {
    await svc.subscribeAsync(FILTERS.telemetry, { qos: 1 });
    const got = record(svc);
    const dev = await connect(b, device.id);
    await dev.publishAsync(telemetryTopic, JSON.stringify({ ts: Date.now(), seq: 1, metrics: { temperature_c: 21 } }), { qos: 1 });
    await until('the reading at the service', () => got.some((r) => r.topic === telemetryTopic));
    dev.end(true);
    // A rejection is reported on a later turn.
    await new Promise((r) => setTimeout(r, 200));
    expect(unhandled).toEqual([]);
  } finally {
    svc.end(true);
  }
}, 30_000);

it("a persistent session's queue entry whose packet is gone, dropped when Redis refuses the acknowledgement script: nothing rejected unhandled", async () => {
  const b = broker as Broker;
  const session = 'svc-ingest-queue';
  await leaveTelemetrySession(b, session);
  const dev = await connect(b, device.id);
  await dev.publishAsync(telemetryTopic, JSON.stringify({ ts: Date.now(), seq: 1, metrics: { temperature_c: 21 } }), { qos: 1 });
  dev.end(true);
  // The queued entry's packet disappears (as when its last holder acknowledged it first, or it expired).
  const entries = await admin.lrange(`outgoing:${session}`, 0, -1);
  expect(entries.length).toBe(1);
  await admin.del(...entries);
  // The library's getDecodedValue then LREMs the entry without waiting; here that is the ACK_QUEUED script.
  await refuse('evalsha', 'eval');
  const again = await connect(b, 'svc-ingest', { clientId: session, clean: false });
  try {
    await new Promise((r) => setTimeout(r, 500));
    expect(unhandled).toEqual([]);
  } finally {
    again.end(true);
  }
}, 30_000);

it('Redis full (maxmemory, noeviction): what the store cannot take is not acknowledged, and every acknowledged reading reaches the persistent session once Redis has room', async () => {
  const b = broker as Broker;
  const session = 'svc-ingest-full';
  await leaveTelemetrySession(b, session);
  const dev = await connect(b, device.id);
  const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
  // Room for about 150 of the readings below; then every write is refused.
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  await admin.config('SET', 'maxmemory', String(used + 300_000));
  const { acked, held } = await publishUntilHeld(dev, telemetryTopic, 'x'.repeat(2_000), 2_000);
  expect(held).toBeDefined();
  expect(acked.length).toBeGreaterThan(0);
  dev.end(true);
  await admin.config('SET', 'maxmemory', '0');
  const { client: again, received } = await connectRecording(b, 'svc-ingest', { clientId: session, clean: false });
  const got = (): Set<number> => new Set(seqsOf(received, telemetryTopic));
  try {
    await until(() => `every acknowledged reading at the service; missing ${acked.filter((n) => !got().has(n)).length} of ${acked.length}`, () => acked.every((n) => got().has(n)));
    expect(unhandled).toEqual([]);
    expect(uncaught).toEqual([]);
  } finally {
    again.end(true);
  }
}, 60_000);
