import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILTERS, deviceCommandTopic, deviceTopic } from '../../contract/topics.ts';
import type { Device } from '../../contract/registry.ts';
import type { Broker } from '../../broker/broker.ts';
import { listenerScope, type FanoutStats } from '../../broker/redis-mq.ts';
import { createRedisServer, type RedisServer } from '../support/redis-server.ts';
import { demoRegistry } from '../support/registry.ts';
import { closedEvent, connect, json, record, seqsOf, startBroker, until, type Received } from './helpers.ts';

/**
 * Issue 14: a broker node receives from Redis only what its own clients need (broker/redis-mq.ts).
 * Real nodes in one process on a private Redis server (pub/sub channels are server-wide), real
 * mqtt.js clients. What a node received from Redis is read from its own counter of the messages
 * that arrived on its subscriber connection (`stats().clusterFanout.received`, `$SYS` traffic apart).
 */

let redis: RedisServer;
const brokers: Broker[] = [];
const clients: MqttClient[] = [];

async function node(nodeId: string): Promise<Broker> {
  const b = await startBroker({ config: { redisUrl: `${redis.url}/0`, cluster: { nodeId }, limits: { heartbeatIntervalMs: 200 } } });
  brokers.push(b);
  return b;
}
async function client(b: Broker, username: string, clientId = username): Promise<MqttClient> {
  const c = await connect(b, username, { clientId });
  clients.push(c);
  return c;
}
function fanout(b: Broker): FanoutStats {
  const s = b.stats().clusterFanout;
  if (s === undefined) throw new Error('not a cluster node');
  return s;
}
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

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
const [dev1, dev2, dev3, dev5, dev6] = devices as [Device, Device, Device, Device, Device];
const telemetryOf = (d: Device): string => deviceTopic(d.homeId, d.id, 'telemetry');
const statusOf = (d: Device): string => deviceTopic(d.homeId, d.id, 'status');
const commandOf = (d: Device): string => deviceCommandTopic(d.homeId, d.id);
const reading = (seq: number): string => JSON.stringify({ ts: Date.now(), seq, metrics: { temperature_c: 20 } });
const status = (seq: number): string => JSON.stringify({ ts: Date.now(), online: true, seq });

it("classifies aedes', aedes-persistence-redis' and clients' listeners by the Redis subscription they need", () => {
  // aedes' own, broker.ts' takeover marker, aedes-persistence-redis' subscription broadcasts.
  for (const t of ['$SYS/+/heartbeat', '$SYS/+/birth', '$SYS/+/new/clients', '$SYS/sub/+']) expect(listenerScope(t), t).toBe('sys');
  expect(listenerScope(commandOf(dev1))).toBe('exact');
  expect(listenerScope(statusOf(dev1))).toBe('exact');
  for (const t of Object.values(FILTERS)) expect(listenerScope(t), t).toBe('wildcard');
});

describe('a node holding only devices', () => {
  let d: Broker;
  let s: Broker;

  it("receives from Redis none of the telemetry published in the cluster, yet its device gets a command published on another node", async () => {
    s = await node('s');
    d = await node('d');
    // The service node: svc-ingest subscribed to all telemetry (a wildcard: all mode).
    const ingest = await client(s, 'svc-ingest');
    const atIngest = record(ingest);
    await ingest.subscribeAsync(FILTERS.telemetry, { qos: 1 });
    expect(fanout(s).mode).toBe('all');

    // The device node: a device subscribed to its command topic (what policy.ts lets a device do).
    const onD = await client(d, dev1.id);
    const commands = record(onD);
    await onD.subscribeAsync(commandOf(dev1), { qos: 1 });
    expect(fanout(d)).toMatchObject({ mode: 'exact', channels: 1, wildcardListeners: 0 });
    const onS = await client(s, dev2.id);
    // A publisher-only service on the device node (alerts sends commands) leaves it in exact mode.
    const alertsOnD = await client(d, 'svc-alerts');

    const before = fanout(d).received;
    const N = 30;
    for (let seq = 0; seq < N; seq++) {
      await onS.publishAsync(telemetryOf(dev2), reading(seq), { qos: 1 });
      // Published on node d itself: PUBLISHed to Redis, not received back (nobody on d listens).
      await onD.publishAsync(telemetryOf(dev1), reading(seq), { qos: 1 });
    }
    await until('all telemetry at the service', () => seqsOf(atIngest, telemetryOf(dev2)).length >= N && seqsOf(atIngest, telemetryOf(dev1)).length >= N);
    expect(seqsOf(atIngest, telemetryOf(dev2))).toEqual(range(0, N));
    expect(seqsOf(atIngest, telemetryOf(dev1))).toEqual(range(0, N));

    // The command, published after every reading was PUBACKed (each PUBLISHed to Redis by then), so
    // on d's connection it comes after anything of theirs Redis would have sent to d.
    const alertsOnS = await client(s, 'svc-alerts', 'svc-alerts-s');
    await alertsOnS.publishAsync(commandOf(dev1), JSON.stringify({ ts: Date.now(), seq: 1, command: 'test' }), { qos: 1 });
    await until('the command at the device on node d', () => commands.some((m) => m.topic === commandOf(dev1)));
    expect(fanout(d).received - before).toBe(1);
    expect(fanout(d).mode).toBe('exact');
    // ...and a command published on d itself comes back to d once, through its channel.
    await alertsOnD.publishAsync(commandOf(dev1), JSON.stringify({ ts: Date.now(), seq: 2, command: 'test' }), { qos: 1 });
    await until('the second command', () => commands.filter((m) => m.topic === commandOf(dev1)).length >= 2);
    expect(fanout(d).received - before).toBe(2);
  });

  it('still hands a session over across nodes (the $SYS takeover notice reaches the device node), both ways', async () => {
    // From the service node to the device node: the old connection on s is closed by s.
    const first = await client(s, dev3.id);
    await first.subscribeAsync(commandOf(dev3), { qos: 1 });
    const firstClosed = closedEvent(first);
    const second = await client(d, dev3.id);
    const commands = record(second);
    await second.subscribeAsync(commandOf(dev3), { qos: 1 });
    await firstClosed;
    expect(fanout(d)).toMatchObject({ mode: 'exact', channels: 2 });
    // The moved device gets a command published on the other node.
    const alerts = await client(s, 'svc-alerts', 'svc-alerts-takeover');
    await alerts.publishAsync(commandOf(dev3), JSON.stringify({ ts: Date.now(), seq: 1, command: 'test' }), { qos: 1 });
    await until('the command after the move', () => commands.some((m) => m.topic === commandOf(dev3)));

    // From the device node to the service node: d closes its connection when s announces the new one.
    const secondClosed = closedEvent(second);
    const third = await client(s, dev3.id);
    await third.subscribeAsync(commandOf(dev3), { qos: 1 });
    await secondClosed;
    // d no longer has a listener on that command topic: its channel is dropped.
    await until('the channel of the moved device dropped on d', () => fanout(d).channels === 1);
  });
});

describe('a node where a service subscribes with a wildcard', () => {
  it('gets every device message of the cluster exactly once before, during and after its switch to all mode and back; a topic with an exact and a wildcard listener delivered once to each', async () => {
    const p = await node('p');
    const q = await node('q');
    // On p, first only an exact listener: a watcher of dev5's status (exact mode).
    const watcher = await client(p, 'svc-alerts', 'svc-alerts-watch');
    const watched = record(watcher);
    await watcher.subscribeAsync(statusOf(dev5), { qos: 1 });
    expect(fanout(p)).toMatchObject({ mode: 'exact', channels: 1, wildcardListeners: 0 });
    // Devices on the other node: dev5 publishes statuses, dev6 telemetry.
    const dev = await client(q, dev5.id);
    const other = await client(q, dev6.id);
    const N = 20;
    let s = 0;
    let t = 0;
    const sendStatus = (): Promise<unknown> => dev.publishAsync(statusOf(dev5), status(s++), { qos: 1 });
    const sendReading = (): Promise<unknown> => other.publishAsync(telemetryOf(dev6), reading(t++), { qos: 1 });
    const watchedSeqs = (): number[] => seqsOf(watched, statusOf(dev5));
    // Each phase ends with a marker published last and awaited where it is delivered: a copy of an
    // earlier message (or an unwanted one) arrives on p's connection before it.

    // Exact mode: each status once from Redis; dev6's telemetry not at all.
    let before = fanout(p).received;
    for (let i = 0; i < N; i++) {
      await sendStatus();
      await sendReading();
    }
    await sendStatus();
    await until('statuses in exact mode', () => watchedSeqs().includes(s - 1));
    expect(fanout(p).received - before).toBe(N + 1);

    // The switch, while dev5 keeps publishing: every status still reaches the watcher exactly once.
    const ingest = await client(p, 'svc-ingest');
    const atIngest = record(ingest);
    const during = Array.from({ length: N }, () => sendStatus());
    await ingest.subscribeAsync([FILTERS.status, FILTERS.telemetry], { qos: 1 });
    await Promise.all(during);
    expect(fanout(p)).toMatchObject({ mode: 'all', wildcardListeners: 2, switches: 1 });
    await until('statuses across the switch', () => watchedSeqs().includes(s - 1));

    // All mode: every message of the cluster arrives once (not also through the old channel or
    // `$SYS/*`); dev5's status reaches the watcher (exact) and svc-ingest (wildcard) once each.
    before = fanout(p).received;
    const sFrom = s;
    const tFrom = t;
    for (let i = 0; i < N; i++) {
      await sendStatus();
      await sendReading();
    }
    await sendReading();
    await until('statuses and telemetry in all mode', () => watchedSeqs().includes(s - 1) && seqsOf(atIngest, telemetryOf(dev6)).includes(t - 1));
    expect(fanout(p).received - before).toBe(2 * N + 1);
    expect(seqsOf(atIngest, statusOf(dev5)).filter((n) => n >= sFrom)).toEqual(range(sFrom, s));
    expect(seqsOf(atIngest, telemetryOf(dev6))).toEqual(range(tFrom, t));

    // The service leaves: p returns to exact mode; the watcher still gets each status once, the
    // cluster's telemetry no longer reaches p.
    await ingest.endAsync();
    await until('p back in exact mode', () => fanout(p).mode === 'exact');
    expect(fanout(p)).toMatchObject({ channels: 1, wildcardListeners: 0, switches: 2 });
    before = fanout(p).received;
    for (let i = 0; i < N; i++) {
      await sendReading();
      await sendStatus();
    }
    await sendStatus();
    await until('statuses after the switch back', () => watchedSeqs().includes(s - 1));
    expect(fanout(p).received - before).toBe(N + 1);
    // Every status of the whole run exactly once at the watcher, in order.
    expect(watchedSeqs()).toEqual(range(0, s));
  });
});
