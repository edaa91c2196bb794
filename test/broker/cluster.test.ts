import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import type { Device } from '../../contract/registry.ts';
import type { Broker } from '../../broker/broker.ts';
import { createRedisServer, type RedisServer } from '../support/redis-server.ts';
import { demoRegistry } from '../support/registry.ts';
import { closedEvent, connect, connectRecording, json, record, seqsOf, startBroker, until, type Received } from './helpers.ts';

/**
 * Two broker nodes in one process sharing one Redis (issue 14): persistence AND message fan-out
 * (mqemitter-redis). A private Redis server, not the run's shared one: pub/sub channels are
 * server-wide (redis-mq.ts), so another file's cluster on the shared server would hear ours.
 * test/cluster/broker-nodes.test.ts runs the nodes as processes behind HAProxy and kills one.
 */

const N = 40;
let redis: RedisServer;
const brokers: Broker[] = [];
const clients: MqttClient[] = [];

async function node(nodeId: string): Promise<Broker> {
  const b = await startBroker({ config: { redisUrl: `${redis.url}/0`, cluster: { nodeId }, limits: { heartbeatIntervalMs: 200 } } });
  brokers.push(b);
  return b;
}


beforeAll(async () => {
  redis = await createRedisServer();
  await redis.start();
});
afterAll(async () => {
  for (const c of clients) c.end(true);
  for (const b of brokers) await b.close();
  await redis?.close();
});

const devices = demoRegistry().site.devices.filter((d) => d.kind === 'smoke_detector') as Device[];
const [devOnB, devOnA, takeover] = devices as [Device, Device, Device];

let a: Broker;
let b: Broker;

it('gives each node a distinct aedes id, new at every start', async () => {
  a = await node('a');
  b = await node('b');
  expect(a.nodeId).toMatch(/^a-[0-9a-f]{8}$/);
  expect(b.nodeId).toMatch(/^b-[0-9a-f]{8}$/);
});

it('delivers QoS 1 messages published on either node to a persistent service session on node A exactly once', async () => {
  const { client: svc, received } = await connectRecording(a, 'svc-ingest', { clean: false });
  clients.push(svc);
  await svc.subscribeAsync(FILTERS.telemetry, { qos: 1 });
  const d1 = await connect(b, devOnB.id);
  const d2 = await connect(a, devOnA.id);
  clients.push(d1, d2);
  const t1 = deviceTopic(devOnB.homeId, devOnB.id, 'telemetry');
  const t2 = deviceTopic(devOnA.homeId, devOnA.id, 'telemetry');
  for (let seq = 0; seq < N; seq++) {
    await d1.publishAsync(t1, JSON.stringify({ ts: Date.now(), seq, metrics: { temperature_c: 20 } }), { qos: 1 });
    await d2.publishAsync(t2, JSON.stringify({ ts: Date.now(), seq, metrics: { temperature_c: 20 } }), { qos: 1 });
  }
  await until('all telemetry on node A', () => seqsOf(received, t1).length >= N && seqsOf(received, t2).length >= N);
  // A late duplicate (a copy from Redis after the local one, or an enqueue per node) would show up by now:
  // one more round trip through both nodes and Redis.
  await d1.publishAsync(t1, JSON.stringify({ ts: Date.now(), seq: N, metrics: { temperature_c: 20 } }), { qos: 1 });
  await until('the marker', () => seqsOf(received, t1).includes(N));
  expect(seqsOf(received, t1)).toEqual([...Array(N + 1).keys()]);
  expect(seqsOf(received, t2)).toEqual([...Array(N).keys()]);

  // The service's persistent queue in Redis holds nothing more: everything was enqueued once and
  // cleared by its PUBACK. A reconnect (to node B this time) gets no second copy.
  await svc.endAsync();
  const again = await connectRecording(b, 'svc-ingest', { clean: false });
  clients.push(again.client);
  await again.client.subscribeAsync(FILTERS.telemetry, { qos: 1 });
  await d2.publishAsync(t2, JSON.stringify({ ts: Date.now(), seq: N, metrics: { temperature_c: 20 } }), { qos: 1 });
  await until('the marker after the reconnect', () => seqsOf(again.received, t2).includes(N));
  expect(again.received.filter((m) => m.topic === t1 || m.topic === t2).map((m) => json(m).seq)).toEqual([N]);
  await again.client.endAsync();
});

it('shows a retained status published on node B to a subscriber that arrives on node A', async () => {
  const d = await connect(b, devOnB.id);
  clients.push(d);
  const status = deviceTopic(devOnB.homeId, devOnB.id, 'status');
  await d.publishAsync(status, JSON.stringify({ ts: Date.now(), online: true, firmware: 'cluster-1' }), { qos: 1, retain: true });
  const viewer = await connect(a, 'svc-alerts');
  clients.push(viewer);
  const got = record(viewer);
  await viewer.subscribeAsync(status, { qos: 1 });
  await until('retained status on node A', () => got.some((m) => m.topic === status && m.retain));
  expect(json(got.find((m) => m.topic === status) as Received)).toMatchObject({ online: true, firmware: 'cluster-1' });
});

it('moves a device from node B to node A without an offline status or will (session takeover across nodes)', async () => {
  const status = deviceTopic(takeover.homeId, takeover.id, 'status');
  const watcher = await connect(a, 'svc-alerts', { clientId: 'svc-alerts-watch' });
  clients.push(watcher);
  const seen = record(watcher);
  await watcher.subscribeAsync(status, { qos: 1 });
  const will = { topic: status, payload: Buffer.from(JSON.stringify({ online: false })), qos: 1 as const, retain: true };
  const first = await connect(b, takeover.id, { will });
  clients.push(first);
  await first.publishAsync(status, JSON.stringify({ ts: Date.now(), online: true }), { qos: 1, retain: true });
  await until('online status seen', () => seen.some((m) => m.topic === status && json(m).online === true));
  const firstClosed = closedEvent(first);
  const second = await connect(a, takeover.id, { will });
  clients.push(second);
  await firstClosed;
  // Give node B the time to publish what it would (a will or an offline status), through Redis to A:
  // a marker published on B after the close arrives after anything B published before it.
  const marker = await connect(b, devOnB.id, { clientId: devOnB.id });
  clients.push(marker);
  const t = deviceTopic(devOnB.homeId, devOnB.id, 'status');
  await watcher.subscribeAsync(t, { qos: 1 });
  await marker.publishAsync(t, JSON.stringify({ ts: Date.now(), online: true, firmware: 'marker' }), { qos: 1, retain: true });
  await until('marker', () => seen.some((m) => m.topic === t && json(m).firmware === 'marker'));
  expect(seen.filter((m) => m.topic === status && json(m).online === false)).toEqual([]);
  expect(b.stats().willsPublished + b.stats().offlinePublished).toBe(0);
});

it('a device connecting again to the same node publishes no will for its old connection, and its new will stays stored in Redis', async () => {
  const d = devices[3] as Device;
  const status = deviceTopic(d.homeId, d.id, 'status');
  const watcher = await connect(a, 'svc-alerts', { clientId: 'svc-alerts-watch-same-node' });
  clients.push(watcher);
  const seen = record(watcher);
  await watcher.subscribeAsync(status, { qos: 1 });
  const will = { topic: status, payload: Buffer.from(JSON.stringify({ online: false })), qos: 1 as const, retain: true };
  const first = await connect(a, d.id, { will });
  clients.push(first);
  const firstClosed = closedEvent(first);
  const second = await connect(a, d.id, { will });
  clients.push(second);
  await firstClosed;
  await second.publishAsync(status, JSON.stringify({ ts: Date.now(), online: true, firmware: 'same-node' }), { qos: 1, retain: true });
  await until('online status', () => seen.some((m) => m.topic === status && json(m).firmware === 'same-node'));
  expect(seen.filter((m) => m.topic === status && json(m).online === false)).toEqual([]);
  // What a crash of node A leaves for the other nodes to publish: the new connection's will.
  const store = (a.aedes as unknown as { persistence: { getWill(c: { id: string }): Promise<{ topic?: string } | null> } }).persistence;
  await until('will stored again', async () => (await store.getWill({ id: d.id }))?.topic === status);
  (second as unknown as { stream: { destroy(): void } }).stream.destroy();
  await until('the new connection\'s will', () => seen.some((m) => m.topic === status && json(m).online === false));
});
