import { mkdtemp, rm } from 'node:fs/promises';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import type { Device } from '../../contract/registry.ts';
import type { Broker } from '../../broker/broker.ts';
import { CONNACK_ACCEPTED } from '../../broker/clean-connect.ts';
import { queueKey, redisOptions } from '../../broker/redis-persistence.ts';
import { createRedisServer, type RedisServer } from '../support/redis-server.ts';
import { deviceTaker, demoSecret } from '../support/registry.ts';
import { connect, connectRecording, json, record, startBroker, until, type Received } from './helpers.ts';

/**
 * broker/clean-connect.ts: a clean session's CONNECT runs without aedes' outgoing-queue stream
 * pipeline, with aedes' own steps otherwise. Against a real broker with the durable disk store (as
 * `npm start` runs it) and a real cluster node on Redis (a private redis-server: its `$SYS` notices
 * go through Redis pub/sub, server-wide), with real mqtt.js clients / raw sockets.
 */

/** Each test takes fresh devices so retained statuses of earlier tests never confuse it. */
const takeDevice = deviceTaker();
const statusTopic = (d: Device): string => deviceTopic(d.homeId, d.id, 'status');
const telemetryTopic = (d: Device): string => deviceTopic(d.homeId, d.id, 'telemetry');
const WILL = '{"online":false}';

/** What the CONNECT path reads of a store's queue (memory-persistence.ts, redis-persistence.ts). */
interface QueueStore {
  outgoingStream: (...args: unknown[]) => unknown;
  outgoingQueueEmpty(id: string): boolean | Promise<boolean>;
  outgoingEnqueueCombi(subs: unknown[], packet: unknown): Promise<void>;
  getWill(client: { id: string }): Promise<{ topic?: string } | null | undefined>;
}

/** The two stores the path runs on: the single broker's disk store, and Redis on a cluster node. */
const STORES = [
  { name: 'disk store (single broker)', cluster: false },
  { name: 'Redis store (cluster node)', cluster: true },
] as const;

describe.each(STORES)('clean-session CONNECT (clean-connect.ts), $name', ({ cluster }) => {
  let broker: Broker;
  let storeDir: string;
  let redis: RedisServer | undefined;
  let watcher: MqttClient;
  let seen: Received[];
  const clients: MqttClient[] = [];
  /** Calls of the store's outgoingStream: aedes' emptyQueue opens it on every CONNECT it handles. */
  let outgoingStreams = 0;
  let store: QueueStore;

  beforeAll(async () => {
    storeDir = await mkdtemp(join(tmpdir(), 'carewatch-clean-connect-'));
    if (cluster) {
      redis = await createRedisServer();
      await redis.start();
      broker = await startBroker({ config: { redisUrl: `${redis.url}/0`, cluster: { nodeId: 'clean-connect' }, limits: { heartbeatIntervalMs: 200 } } });
    } else broker = await startBroker({ config: { storeDir } });
    store = (broker.aedes as unknown as { persistence: unknown }).persistence as QueueStore;
    const outgoingStream = store.outgoingStream.bind(store);
    store.outgoingStream = (...args: unknown[]) => {
      outgoingStreams++;
      return outgoingStream(...args);
    };
    watcher = await connect(broker, 'svc-alerts', { clientId: 'svc-alerts-clean-connect' });
    seen = record(watcher);
    await watcher.subscribeAsync(FILTERS.status, { qos: 1 });
  });

  afterAll(async () => {
    for (const c of [...clients, watcher]) c?.end(true);
    await broker?.close();
    await redis?.close();
    await rm(storeDir, { recursive: true, force: true });
  });

  function rawSocket(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = tcpConnect(broker.tcpPort, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
  }

  /** A device's clean CONNECT with keepalive 1 s on a raw socket (sent, not awaited), its replies and its close recorded. */
  async function keepaliveDevice(d: Device): Promise<{ s: Socket; replies: Buffer[]; closed: Promise<void>; isClosed(): boolean }> {
    const s = await rawSocket();
    let isClosed = false;
    const closed = new Promise<void>((resolve) =>
      s.once('close', () => {
        isClosed = true;
        resolve();
      }),
    );
    const replies: Buffer[] = [];
    s.on('data', (b: Buffer) => replies.push(b));
    s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: d.id, keepalive: 1, username: d.id, password: Buffer.from(demoSecret(d.id)) }));
    return { s, replies, closed, isClosed: () => isClosed };
  }

  it("writes CONNACK 0 byte for byte as mqtt-packet does, in one buffer", () => {
    expect(CONNACK_ACCEPTED.equals(mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }))).toBe(true);
  });

  it('connects a device without opening its outgoing queue stream; will stored, online status acknowledged, will published on a dead connection', async () => {
    const d = takeDevice();
    const before = { ...broker.stats().connectPaths };
    const streams = outgoingStreams;
    const c = await connect(broker, d.id, { will: { topic: statusTopic(d), payload: Buffer.from(WILL), qos: 1, retain: true } });
    clients.push(c);
    expect(broker.stats().connectPaths.clean).toBe(before.clean + 1);
    expect(broker.stats().connectPaths.aedes).toBe(before.aedes);
    // aedes' emptyQueue would have opened it once (a pipeline, AbortController and DOMException each).
    expect(outgoingStreams).toBe(streams);
    await c.publishAsync(statusTopic(d), JSON.stringify({ ts: Date.now(), online: true }), { qos: 1, retain: true });
    await until('online status', () => seen.some((m) => m.topic === statusTopic(d) && json(m).online === true));
    // The will is in the store (what a crash of this broker, or node, leaves to publish) …
    expect((await store.getWill({ id: d.id }))?.topic).toBe(statusTopic(d));
    // … and on the connection: one that dies without DISCONNECT publishes it.
    (c as unknown as { stream: Socket }).stream.destroy();
    await until('will', () => seen.some((m) => m.topic === statusTopic(d) && json(m).online === false));
    const will = seen.find((m) => m.topic === statusTopic(d) && json(m).online === false);
    expect(json(will as Received).reason).toBe('connection_lost');
    expect(typeof json(will as Received).ts).toBe('number');
  });

  it('arms the keepalive timer: a device silent for 1.5 × its keepalive is closed and reported offline', async () => {
    const d = takeDevice();
    const timeoutsBefore = broker.stats().keepaliveTimeouts;
    const { replies, closed } = await keepaliveDevice(d);
    const t0 = Date.now();
    await closed;
    // keepalive 1 s → aedes' bound of 1.5 s [MQTT-3.1.2-24]; the CONNACK came first.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_400);
    expect(Buffer.concat(replies).subarray(0, 4).equals(CONNACK_ACCEPTED)).toBe(true);
    await until('offline status', () => seen.some((m) => m.topic === statusTopic(d) && json(m).online === false));
    expect(broker.stats().keepaliveTimeouts).toBe(timeoutsBefore + 1);
  });

  it('reads what arrived before judging a keepalive: a PINGREQ that came during an event-loop stall past the bound keeps the connection', async () => {
    const d = takeDevice();
    const timeoutsBefore = broker.stats().keepaliveTimeouts;
    const { s, replies, isClosed } = await keepaliveDevice(d);
    await until('CONNACK', () => Buffer.concat(replies).length >= 4);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 1_100));
    // The PINGREQ reaches the kernel's buffer in time (this process is the broker too) …
    s.write(mqttPacket.generate({ cmd: 'pingreq' }));
    // … and the event loop stalls past the 1.5 s bound before anyone reads it.
    while (Date.now() - t0 < 2_000);
    await until('PINGRESP', () => Buffer.concat(replies).subarray(4).equals(mqttPacket.generate({ cmd: 'pingresp' })));
    expect(isClosed()).toBe(false);
    expect(broker.stats().keepaliveTimeouts).toBe(timeoutsBefore);
    s.destroy();
  });

  it('closes a connection that sends only part of a packet, a byte at a time', async () => {
    const d = takeDevice();
    const timeoutsBefore = broker.stats().keepaliveTimeouts;
    const { s, replies, closed } = await keepaliveDevice(d);
    await until('CONNACK', () => Buffer.concat(replies).length >= 4);
    // The first byte of a PUBLISH, then the rest a byte at a time, never completing it.
    const trickle = setInterval(() => s.write(Buffer.from([0x30])), 700);
    try {
      await closed;
    } finally {
      clearInterval(trickle);
    }
    expect(broker.stats().keepaliveTimeouts).toBe(timeoutsBefore + 1);
  });

  it('gives bytes that are not a packet yet one more keepalive interval, not a second one', async () => {
    // Each byte reaches the kernel's buffer before the bound and is read only after it (the event
    // loop stalls over the expiry, as in the PINGREQ test): the check sees bytes read in its turn.
    const d = takeDevice();
    const timeoutsBefore = broker.stats().keepaliveTimeouts;
    const { s, replies, isClosed } = await keepaliveDevice(d);
    await until('CONNACK', () => Buffer.concat(replies).length >= 4);
    const t0 = Date.now();
    const at = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms - (Date.now() - t0))));
    const stall = (untilMs: number): void => {
      while (Date.now() - t0 < untilMs);
    };
    // Bound 1.5 s from the CONNACK's timer: a PUBLISH's first byte at 1.1 s, read at 2.0 s.
    await at(1_100);
    s.write(Buffer.from([0x30]));
    stall(2_000);
    await at(2_100);
    // One interval more (timer refreshed at ~2.0 s, next bound ~3.5 s) …
    expect(isClosed()).toBe(false);
    // … and a second byte the same way (the Remaining Length: 48 bytes to come) buys none.
    await at(3_200);
    s.write(Buffer.from([0x30]));
    stall(4_000);
    // Closed at ~4.0 s; a second extension would have run it to ~5.5 s.
    await at(5_000);
    expect(isClosed()).toBe(true);
    expect(broker.stats().keepaliveTimeouts).toBe(timeoutsBefore + 1);
    s.destroy();
  });

  it('refuses a wrong password with CONNACK 4 and closes the connection, counted', async () => {
    const d = takeDevice();
    const refusedBefore = broker.stats().refusals.BROKER_BAD_PASSWORD;
    const cleanBefore = broker.stats().connectPaths.clean;
    await expect(connect(broker, d.id, { password: 'not-the-secret' })).rejects.toThrow(/bad user ?name or password/i);
    expect(broker.stats().refusals.BROKER_BAD_PASSWORD).toBe(refusedBefore + 1);
    expect(broker.stats().connectPaths.clean).toBe(cleanBefore + 1);
    expect(broker.stats().connectedClients).toBeGreaterThanOrEqual(1);
    expect((broker.aedes as unknown as { clients: Record<string, unknown> }).clients[d.id]).toBeUndefined();
  });

  it("leaves a persistent session's CONNECT to aedes, which delivers its queue", async () => {
    const d = takeDevice();
    const id = 'svc-ingest-clean-connect-persistent';
    const svc = await connect(broker, 'svc-ingest', { clientId: id, clean: false });
    await svc.subscribeAsync(FILTERS.telemetry, { qos: 1 });
    await svc.endAsync();
    const dev = await connect(broker, d.id);
    clients.push(dev);
    await dev.publishAsync(telemetryTopic(d), JSON.stringify({ ts: Date.now(), seq: 1, metrics: { temperature_c: 21 } }), { qos: 1 });
    const aedesBefore = broker.stats().connectPaths.aedes;
    const { client: again, received } = await connectRecording(broker, 'svc-ingest', { clientId: id, clean: false });
    clients.push(again);
    expect(broker.stats().connectPaths.aedes).toBe(aedesBefore + 1);
    await until('queued message', () => received.some((m) => m.topic === telemetryTopic(d)));
  });

  it('discards what a client id had queued when it connects with a clean session [MQTT-3.1.2-6]', async () => {
    const d = takeDevice();
    const id = 'svc-ingest-clean-connect-discard';
    const svc = await connect(broker, 'svc-ingest', { clientId: id, clean: false });
    await svc.subscribeAsync(FILTERS.telemetry, { qos: 1 });
    await svc.endAsync();
    const dev = await connect(broker, d.id);
    clients.push(dev);
    for (const seq of [1, 2]) await dev.publishAsync(telemetryTopic(d), JSON.stringify({ ts: Date.now(), seq, metrics: { temperature_c: 21 } }), { qos: 1 });
    expect(await store.outgoingQueueEmpty(id)).toBe(false);
    const cleanBefore = broker.stats().connectPaths.clean;
    const { client: clean, received } = await connectRecording(broker, 'svc-ingest', { clientId: id, clean: true });
    expect(broker.stats().connectPaths.clean).toBe(cleanBefore + 1);
    expect(await store.outgoingQueueEmpty(id)).toBe(true);
    await clean.endAsync();
    // Nothing of the old session was delivered, and nothing is left of it for a later persistent CONNECT.
    const { client: later, received: laterGot } = await connectRecording(broker, 'svc-ingest', { clientId: id, clean: false });
    clients.push(later);
    await dev.publishAsync(statusTopic(d), JSON.stringify({ ts: Date.now(), online: true }), { qos: 1, retain: true });
    await until('status seen by the watcher', () => seen.some((m) => m.topic === statusTopic(d)));
    expect(received.filter((m) => m.topic === telemetryTopic(d))).toEqual([]);
    expect(laterGot.filter((m) => m.topic === telemetryTopic(d))).toEqual([]);
  });

  it('takes a session over [MQTT-3.1.4-2]: no $SYS new-clients notice on a single broker, one on a cluster node', async () => {
    const d = takeDevice();
    const notices: string[] = [];
    const aedes = broker.aedes as unknown as { subscribe(topic: string, fn: (p: { payload: Buffer }, done: () => void) => void, done: () => void): void; clients: Record<string, { closed: boolean } | undefined> };
    await new Promise<void>((resolve) => aedes.subscribe('$SYS/+/new/clients', (p, done) => {
      notices.push(p.payload.toString());
      done();
    }, resolve));
    const connectedBefore = broker.stats().connectedClients;
    const first = await connect(broker, d.id);
    const firstClosed = new Promise<void>((resolve) => first.once('close', () => resolve()));
    const second = await connect(broker, d.id);
    clients.push(first, second);
    await firstClosed;
    await until('one connection of the device', () => broker.stats().connectedClients === connectedBefore + 1);
    expect(aedes.clients[d.id]?.closed).toBe(false);
    // A status after the takeover still flows: the second connection is the registered one.
    await second.publishAsync(statusTopic(d), JSON.stringify({ ts: Date.now(), online: true }), { qos: 1, retain: true });
    await until('status of the second connection', () => seen.some((m) => m.topic === statusTopic(d) && json(m).online === true));
    expect(seen.some((m) => m.topic === statusTopic(d) && json(m).online === false)).toBe(false);
    if (cluster) {
      // A cluster node announces every connection: the node holding an older one of the id closes it.
      await until('$SYS notice', () => notices.includes(d.id));
    } else {
      // Nobody on a single broker listens to it (policy.ts refuses $ filters to clients): not published.
      expect(notices.filter((n) => n === d.id)).toEqual([]);
    }
  });

  it.runIf(!cluster)('does not register a connection that died while the session it takes over was closing', async () => {
    const d = takeDevice();
    const connectedBefore = broker.stats().connectedClients;
    const first = await connect(broker, d.id);
    clients.push(first);
    const aedes = broker.aedes as unknown as { clients: Record<string, { closed: boolean; close(cb?: () => void): void } | undefined> };
    const previous = aedes.clients[d.id];
    if (previous === undefined) throw new Error('first connection not registered');
    // The old connection's close is slow to call back (a store slow to answer): held until the new one is gone.
    let open = (): void => undefined;
    const gate = new Promise<void>((r) => (open = r));
    let closing = false;
    const close = previous.close.bind(previous);
    previous.close = (cb) => {
      closing = true;
      close(() => void gate.then(() => cb?.()));
    };
    const second = await keepaliveDevice(d);
    await until('the takeover under way', () => closing);
    second.s.destroy();
    await second.closed;
    await new Promise((r) => setTimeout(r, 200)); // the broker sees the close
    open();
    await new Promise((r) => setTimeout(r, 200));
    // Until session 23 it was added once the old one had closed: registered dead, connectedClients one high.
    expect(aedes.clients[d.id]).toBeUndefined();
    expect(broker.stats().connectedClients).toBe(connectedBefore);
  });

  it.runIf(cluster)('clears, undelivered, what a clean client id finds queued in Redis without a subscription (an older session)', async () => {
    const d = takeDevice();
    const id = 'svc-ingest-clean-connect-leftover';
    // Queued straight through the store, as a session whose subscriptions are gone left it.
    for (const seq of [1, 2, 3]) {
      await store.outgoingEnqueueCombi([{ clientId: id, topic: telemetryTopic(d), qos: 1 }], { cmd: 'publish', topic: telemetryTopic(d), payload: Buffer.from(JSON.stringify({ ts: Date.now(), seq, metrics: {} })), qos: 1, retain: false, brokerId: 'clean-connect-test', brokerCounter: seq });
    }
    expect(await store.outgoingQueueEmpty(id)).toBe(false);
    const streams = outgoingStreams;
    const cleanBefore = broker.stats().connectPaths.clean;
    const { client: c, received } = await connectRecording(broker, 'svc-ingest', { clientId: id, clean: true });
    clients.push(c);
    expect(broker.stats().connectPaths.clean).toBe(cleanBefore + 1);
    // Read once (after the CONNACK, as aedes reads a queue), then every entry cleared: nothing left
    // in Redis, nothing sent.
    await until('queue read', () => outgoingStreams === streams + 1);
    await until('queue cleared', async () => (await store.outgoingQueueEmpty(id)) === true);
    const conn = new Redis(redisOptions(`${(redis as RedisServer).url}/0`));
    try {
      expect(await conn.exists(queueKey(id))).toBe(0);
      expect(await conn.keys('packet:clean-connect-test:*')).toEqual([]);
    } finally {
      conn.disconnect();
    }
    expect(received.filter((m) => m.topic === telemetryTopic(d))).toEqual([]);
  });
});
