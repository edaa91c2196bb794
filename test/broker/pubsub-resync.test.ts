import type { MqttClient } from 'mqtt';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FILTERS, deviceCommandTopic, deviceTopic } from '../../contract/topics.ts';
import type { Device } from '../../contract/registry.ts';
import type { Broker } from '../../broker/broker.ts';
import { createRedisServer, type RedisServer } from '../support/redis-server.ts';
import { demoRegistry } from '../support/registry.ts';
import { connect, record, seqsOf, startBroker, until } from './helpers.ts';

/**
 * A broker node's Redis pub/sub subscriber connection drops and comes back while its persistent
 * sessions stay connected (docs/scaling.md "Limits"). Real nodes in one process on a private Redis
 * server, real mqtt.js clients. The fault is Redis' own: `CLIENT KILL TYPE pubsub` closes the nodes'
 * subscriber connections as the `client-output-buffer-limit pubsub` does to a subscriber that falls
 * behind. For as long as the events below are published the killed connections cannot come back:
 * Redis' `maxclients` is held at the connections left, so ioredis' reconnects are refused ("max
 * number of clients reached") and every one of those events is published while node S hears nothing.
 */

let redis: RedisServer;
let admin: Redis;
const brokers: Broker[] = [];
const clients: MqttClient[] = [];

beforeAll(async () => {
  redis = await createRedisServer();
  await redis.start();
  admin = new Redis(redis.url, { lazyConnect: true });
  await admin.connect();
});
afterAll(async () => {
  for (const c of clients) c.end(true);
  for (const b of brokers) await b.close();
  admin?.disconnect();
  await redis?.close();
});

async function node(nodeId: string): Promise<Broker> {
  const b = await startBroker({ config: { redisUrl: `${redis.url}/0`, cluster: { nodeId }, limits: { heartbeatIntervalMs: 200 } } });
  brokers.push(b);
  return b;
}

/** `CLIENT LIST` as one record per connection. */
async function clientList(): Promise<Array<Record<string, string>>> {
  const text = (await admin.client('LIST')) as string;
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => Object.fromEntries(line.trim().split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])));
}
/** Connections in subscriber mode holding at least one subscription. */
async function subscribers(): Promise<number> {
  return (await clientList()).filter((c) => Number(c.sub) + Number(c.psub) > 0).length;
}

const [device, other, third] = demoRegistry().site.devices.filter((d) => d.kind === 'smoke_detector') as [Device, Device, Device];
const eventTopic = deviceTopic(device.homeId, device.id, 'event');
const telemetryTopic = deviceTopic(device.homeId, device.id, 'telemetry');
const alarm = (seq: number): string => JSON.stringify({ ts: Date.now(), seq, type: 'smoke_alarm' });
const reading = (seq: number): string => JSON.stringify({ ts: Date.now(), seq, metrics: { temperature_c: 20 } });

it("delivers to a connected persistent session, without it reconnecting by itself, what was published while its node's subscriber connection to Redis was down", async () => {
  const s = await node('s');
  const d = await node('d');
  // alerts' signals session on node S: persistent, QoS 1, a client that reconnects like the services' own.
  const service = await connect(s, 'svc-alerts', { clientId: 'svc-alerts-signals', clean: false, reconnectPeriod: 100 });
  clients.push(service);
  const atService = record(service);
  let serviceCloses = 0;
  service.on('close', () => serviceCloses++);
  await service.subscribeAsync(FILTERS.event, { qos: 1 });
  // alerts' telemetry live feed on node S: a clean session, QoS 0. It loses what was published while
  // S heard nothing (documented), and keeps its connection.
  const feed = await connect(s, 'svc-alerts', { clientId: 'svc-alerts-telemetry', clean: true });
  clients.push(feed);
  let feedCloses = 0;
  feed.on('close', () => feedCloses++);
  const atFeed = record(feed);
  await feed.subscribeAsync(FILTERS.telemetry, { qos: 0 });
  // A device with a persistent session and a will on node S (ours connect clean; firmware may not):
  // closed with the services, it is not offline, so neither its will nor an offline status goes out.
  const persistentDevice = await connect(s, other.id, { clean: false, reconnectPeriod: 100, will: { topic: deviceTopic(other.homeId, other.id, 'status'), payload: Buffer.from('{"online":false}'), qos: 1, retain: true } });
  clients.push(persistentDevice);
  await persistentDevice.subscribeAsync(deviceCommandTopic(other.homeId, other.id), { qos: 1 });
  // The device on node D.
  const dev = await connect(d, device.id);
  clients.push(dev);

  let seq = 0;
  const acked: number[] = [];
  const sendAlarm = async (): Promise<void> => {
    const n = seq++;
    await dev.publishAsync(eventTopic, alarm(n), { qos: 1 });
    acked.push(n);
  };
  const delivered = (): number[] => seqsOf(atService, eventTopic);
  const missing = (): number[] => acked.filter((n) => !delivered().includes(n));

  for (let i = 0; i < 5; i++) await sendAlarm();
  await until('the first alarms at the service', () => missing().length === 0);

  // The fault: both nodes' subscriber connections killed by Redis, and kept out.
  const before = await clientList();
  const subscribed = before.filter((c) => Number(c.sub) + Number(c.psub) > 0).length;
  expect(subscribed).toBe(2);
  await admin.config('SET', 'maxclients', String(before.length - subscribed));
  expect(Number(await admin.client('KILL', 'TYPE', 'pubsub'))).toBe(subscribed);
  const duringFrom = seq;
  for (let i = 0; i < 10; i++) await sendAlarm();
  // A reading on the QoS 0 live feed published meanwhile: lost for it (what a clean session gives up).
  await dev.publishAsync(telemetryTopic, reading(0), { qos: 1 });
  expect(await subscribers()).toBe(0);
  const during = acked.filter((n) => n >= duringFrom);

  // Redis lets the connections in again; ioredis reconnects and re-subscribes. The alarms keep
  // coming, one after the other, through the re-subscription, the close of the service's connection
  // and its reconnect (bounded by a count: the old code never closes it).
  await admin.config('SET', 'maxclients', '10000');
  let resubscribed = false;
  for (let i = 0; i < 300 && !(resubscribed && serviceCloses > 0 && service.connected); i++) {
    await sendAlarm();
    resubscribed ||= (await subscribers()) === subscribed;
  }
  await until('both nodes subscribed again', async () => (await subscribers()) === subscribed);
  // And after it: live again.
  for (let i = 0; i < 5; i++) await sendAlarm();
  await dev.publishAsync(telemetryTopic, reading(1), { qos: 1 });

  // Every acknowledged alarm reaches the service, those of the outage included. A second copy is
  // what QoS 1 allows (at least once); none may be missing.
  await until(() => `every acknowledged alarm at the service; missing ${JSON.stringify(missing())} (published during the outage: ${JSON.stringify(during)}); service connection closes: ${serviceCloses}`, () => missing().length === 0, 10_000).catch(async (err: unknown) => {
    // Where the missing ones are: still queued in the session in Redis, undelivered.
    throw new Error(`${(err as Error).message}; svc-alerts-signals' queue in Redis: ${await admin.llen('outgoing:svc-alerts-signals')} entries`);
  });
  // Nothing but what was sent; copies allowed (the reconnect re-sends what was in flight).
  expect([...new Set(delivered())].sort((a, b) => a - b)).toEqual(acked);
  // The broker closed the persistent session's connection once (the client's own reconnect took it
  // from there); the clean session kept its connection and got the reading sent after the outage.
  expect(serviceCloses).toBeGreaterThanOrEqual(1);
  await until('the live reading after the outage', () => seqsOf(atFeed, telemetryTopic).includes(1));
  expect(feedCloses).toBe(0);
  expect(seqsOf(atFeed, telemetryTopic)).toEqual([1]);

  await until('the persistent device back', () => persistentDevice.connected);
  expect(s.stats()).toMatchObject({ willsPublished: 0, offlinePublished: 0 });

  // Counted on S's /metrics: one resync, the two persistent sessions closed (D held none).
  const metric = async (b: Broker, name: string): Promise<number> => (await b.metrics.getSingleMetric(name)?.get())?.values[0]?.value ?? Number.NaN;
  expect(await metric(s, 'carewatch_broker_cluster_pubsub_resyncs_total')).toBe(1);
  expect(await metric(s, 'carewatch_broker_cluster_resync_sessions_closed_total')).toBe(2);
  expect(await metric(d, 'carewatch_broker_cluster_pubsub_resyncs_total')).toBe(1);
  expect(await metric(d, 'carewatch_broker_cluster_resync_sessions_closed_total')).toBe(0);
});

it("publishes no will of a live node's devices while it hears no heartbeats itself (its subscriber connection down)", async () => {
  const subscriberIds = async (): Promise<Set<string>> => new Set((await clientList()).filter((c) => Number(c.sub) + Number(c.psub) > 0).map((c) => c.id ?? ''));
  const earlier = await subscriberIds();
  const a = await node('a');
  const aSubscriber = [...(await subscriberIds())].filter((id) => !earlier.has(id));
  expect(aSubscriber).toHaveLength(1);
  const b = await node('b');
  // A device with its will on node B; A hears B's heartbeats (every 200 ms) until the fault.
  const statusTopic = deviceTopic(third.homeId, third.id, 'status');
  const x = await connect(b, third.id, { will: { topic: statusTopic, payload: Buffer.from('{"online":false}'), qos: 1, retain: true } });
  clients.push(x);
  const willKeys = async (): Promise<string[]> => (await admin.keys('will:*')).filter((k) => k.endsWith(`:${third.id}`));
  expect(await willKeys()).toHaveLength(1);

  // Only A's subscriber connection killed and kept out: A hears no heartbeat of B (aedes calls B dead
  // after 3, 600 ms) while B and its device are fine and B keeps its proof of life in Redis.
  await admin.config('SET', 'maxclients', String((await clientList()).length - 1));
  try {
    expect(Number(await admin.client('KILL', 'ID', aSubscriber[0] ?? ''))).toBe(1);
    // A's will pass (every 4 heartbeats) reaches B's will: deferred, or, on the old code, published.
    await until('a will pass of A over B\'s will', () => a.stats().willsDeferred > 0 || a.stats().willsPublished > 0, 15_000);
    expect(a.stats()).toMatchObject({ willsPublished: 0 });
    expect(b.stats()).toMatchObject({ willsPublished: 0 });
    expect(await willKeys()).toHaveLength(1);
    expect(x.connected).toBe(true);
  } finally {
    await admin.config('SET', 'maxclients', '10000');
    // Back before the nodes are closed, also after a failed assertion (a node closed while its
    // subscriber connection is still reconnecting does not finish closing: docs/scaling.md "Limits").
    await until('A subscribed again', async () => (await subscriberIds()).size === earlier.size + 2);
  }
  const metric = async (br: Broker, name: string): Promise<number> => (await br.metrics.getSingleMetric(name)?.get())?.values[0]?.value ?? Number.NaN;
  expect(await metric(a, 'carewatch_broker_cluster_wills_deferred_total')).toBeGreaterThan(0);
});
