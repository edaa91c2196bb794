import type { MqttClient } from 'mqtt';
import { Aedes } from 'aedes';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import type { Device } from '../../contract/registry.ts';
import type { Broker } from '../../broker/broker.ts';
import { createRedisPersistence, packetBrokerId, queueKey, ackedKey, type ClosablePersistence } from '../../broker/redis-persistence.ts';
import { StrandedHeads } from '../../broker/stranded-head.ts';
import { createRedisServer, type RedisServer } from '../support/redis-server.ts';
import { demoRegistry } from '../support/registry.ts';
import { connect, record, seqsOf, startBroker, until } from './helpers.ts';

describe('stranded queue heads (pure)', () => {
  it('calls a head stranded once it has stayed for the time given, and after a close for it only reports it', () => {
    const h = new StrandedHeads(1_000);
    expect(h.observe('svc-ingest', 'packet:a:1', 0)).toBe('watching');
    expect(h.observe('svc-ingest', 'packet:a:1', 999)).toBe('watching');
    expect(h.observe('svc-ingest', 'packet:a:1', 1_000)).toBe('stranded');
    // Not closed (its node alive, say): asked again a whole interval later, not at every acknowledgement.
    expect(h.observe('svc-ingest', 'packet:a:1', 1_500)).toBe('watching');
    expect(h.observe('svc-ingest', 'packet:a:1', 2_000)).toBe('stranded');
    h.closed('svc-ingest', 'packet:a:1');
    expect(h.observe('svc-ingest', 'packet:a:1', 3_000)).toBe('stranded-again');
    // A head that moved starts the clock again; a later head that strands may be closed for once more.
    expect(h.observe('svc-ingest', 'packet:a:2', 3_100)).toBe('watching');
    expect(h.observe('svc-ingest', 'packet:a:2', 4_100)).toBe('stranded');
    // Sessions are watched apart.
    expect(h.observe('svc-alerts', 'packet:a:1', 4_100)).toBe('watching');
  });

  it("reads the queueing node's id from a packet key", () => {
    expect(packetBrokerId('packet:s-1a2b3c4d:42')).toBe('s-1a2b3c4d');
    expect(packetBrokerId('packet:node:with:colons-9f:7')).toBe('node:with:colons-9f');
    expect(packetBrokerId('outgoing:svc-ingest')).toBeUndefined();
  });
});

/**
 * A node that dies between queueing a message for a persistent session (RPUSH onto its queue in
 * Redis) and publishing it (the PUBLISH every node hears) strands it at the session's queue head:
 * the live session is never sent it, and every later acknowledgement only marks its entry behind it.
 * Real nodes in one process on a private Redis, real mqtt.js clients. The dead node's write is made
 * by the store's own code, as that node made it, with a broker id no live node has.
 */
let redis: RedisServer;
let admin: Redis;
const brokers: Broker[] = [];
const clients: MqttClient[] = [];
const stores: ClosablePersistence[] = [];

beforeAll(async () => {
  redis = await createRedisServer();
  await redis.start();
  admin = new Redis(`${redis.url}/0`);
});
afterAll(async () => {
  for (const c of clients) c.end(true);
  for (const b of brokers) await b.close();
  for (const s of stores) await s.destroy();
  admin?.disconnect();
  await redis?.close();
});

const device = demoRegistry().site.devices.find((d) => d.kind === 'smoke_detector') as Device;
const topic = deviceTopic(device.homeId, device.id, 'telemetry');
const reading = (seq: number): string => JSON.stringify({ ts: Date.now(), seq, metrics: { temperature_c: 20 } });

type Limits = { heartbeatIntervalMs: number; strandedHead: { marks: number; afterMs: number } };

/**
 * Node S with a persistent service session subscribed to telemetry, node D with a device whose first
 * reading has reached the service. `closes()` counts the service's connection closes.
 */
async function serviceAndDevice(names: readonly [string, string], limits: Limits, clientId: string) {
  const s = await startBroker({ config: { redisUrl: `${redis.url}/0`, cluster: { nodeId: names[0] }, limits } });
  brokers.push(s);
  const d = await startBroker({ config: { redisUrl: `${redis.url}/0`, cluster: { nodeId: names[1] }, limits } });
  brokers.push(d);
  const service = await connect(s, 'svc-ingest', { clientId, clean: false, reconnectPeriod: 100 });
  clients.push(service);
  const got = record(service);
  let closes = 0;
  service.on('close', () => closes++);
  await service.subscribeAsync(FILTERS.telemetry, { qos: 1 });
  const dev = await connect(d, device.id);
  clients.push(dev);
  await dev.publishAsync(topic, reading(0), { qos: 1 });
  await until('the first reading at the service', () => seqsOf(got, topic).includes(0));
  return { s, service, got, dev, closes: () => closes };
}

/** A node's RPUSH of one reading onto the session's queue with no PUBLISH after it, written by the store's own code as node `brokerId`. */
async function queueWithoutPublish(clientId: string, brokerId: string, brokerCounter: number, seq: number): Promise<void> {
  const store = createRedisPersistence(`${redis.url}/0`) as ClosablePersistence & { outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: object): Promise<void> };
  stores.push(store);
  const aedes = await Aedes.createBroker({ id: `${brokerId}-writer`, persistence: store as never });
  await store.outgoingEnqueueCombi([{ clientId }], { cmd: 'publish', topic, payload: Buffer.from(reading(seq)), qos: 1, retain: false, dup: false, brokerId, brokerCounter });
  await new Promise<void>((r) => aedes.close(() => r()));
}

it("sends a connected service the message a dead node queued for it and never published, by closing the service's connection once", async () => {
  const clientId = 'svc-ingest-stranded';
  const { s, service, got, dev, closes } = await serviceAndDevice(['s', 'd'], { heartbeatIntervalMs: 200, strandedHead: { marks: 5, afterMs: 300 } }, clientId);

  // The dead node's RPUSH, with no PUBLISH after it.
  await queueWithoutPublish(clientId, 'dead-node-1', 1, 1_000);
  const list = queueKey(clientId);

  // Readings keep flowing from the device through node D, acknowledged by the service live.
  let seq = 1;
  const flow = setInterval(() => void dev.publishAsync(topic, reading(seq++), { qos: 1 }).catch(() => undefined), 20);
  try {
    await until('the stranded message at the service', () => seqsOf(got, topic).includes(1_000));
  } finally {
    clearInterval(flow);
  }
  // Node S closed the service's connection once, for that head; the service came back by itself.
  expect(s.stats().queueHeadsStranded).toBe(1);
  expect(closes()).toBe(1);
  await until('the service connected again', () => service.connected);
  // The head acknowledged at last: the marks behind it are trimmed by the acknowledgements that follow.
  const last = seq;
  await dev.publishAsync(topic, reading(last), { qos: 1 });
  await until('the queue trimmed', async () => (await admin.llen(list)) <= 2 && (await admin.scard(ackedKey(list))) <= 2);
  expect(s.stats().queueHeadsStranded).toBe(1);
}, 60_000);

it("never closes a service's connection for a head whose node is alive, however long it stays", async () => {
  // A head a live node queued is on its way (its PUBLISH may be late, the node busy): closing the
  // session for it would only cut a healthy service. Marks and time far past the watch's bounds.
  const strandedHead = { marks: 5, afterMs: 300 };
  // A 1 s heartbeat (proof of life kept 3 s): a stall of this test process shorter than 2 s cannot
  // make the live node look dead (with 200 ms, one of 400 ms could, and the test would fail spuriously).
  const clientId = 'svc-ingest-live-head';
  const { s, got, dev, closes } = await serviceAndDevice(['ls', 'ld'], { heartbeatIntervalMs: 1_000, strandedHead }, clientId);

  // Node LD's id as it keeps its proof of life in Redis; an RPUSH under that id with no PUBLISH (a
  // counter LD will not reach here, so the packet key is not one of its own).
  const [, keys] = await admin.scan('0', 'MATCH', 'carewatch:broker:alive:ld-*', 'COUNT', 1000);
  const liveId = keys[0]?.slice('carewatch:broker:alive:'.length);
  expect(liveId).toMatch(/^ld-[0-9a-f]{8}$/);
  await queueWithoutPublish(clientId, liveId as string, 1_000_000_000, 2_000);

  // Readings flow for 4 × the watch's time, well past its marks: the head is watched and found
  // stranded, and each time its node answers alive.
  let seq = 1;
  const flow = setInterval(() => void dev.publishAsync(topic, reading(seq++), { qos: 1 }).catch(() => undefined), 20);
  try {
    await until('readings past the watch', () => seqsOf(got, topic).filter((x) => x < 2_000).length > 60);
    await new Promise((r) => setTimeout(r, 4 * strandedHead.afterMs));
  } finally {
    clearInterval(flow);
  }
  expect(seq).toBeGreaterThan(strandedHead.marks * 10);
  expect(s.stats().queueHeadsStranded).toBe(0);
  expect(closes()).toBe(0);
  expect(seqsOf(got, topic)).not.toContain(2_000);
}, 60_000);
