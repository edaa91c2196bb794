import type { MqttClient } from 'mqtt';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILTERS, deviceCommandTopic, deviceTopic } from '../../contract/topics.ts';
import type { Device } from '../../contract/registry.ts';
import type { Broker } from '../../broker/broker.ts';
import { listenerScope, redisGlobs, type FanoutStats } from '../../broker/redis-mq.ts';
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

async function node(nodeId: string, maxPatterns?: number): Promise<Broker> {
  const b = await startBroker({ config: { redisUrl: `${redis.url}/0`, cluster: { nodeId, ...(maxPatterns !== undefined ? { maxPatterns } : {}) }, limits: { heartbeatIntervalMs: 200 } } });
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
const eventOf = (d: Device): string => deviceTopic(d.homeId, d.id, 'event');
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

/** Redis' glob match (util.c stringmatchlen) for the globs redisGlobs makes: `*` (spans `/`) and `\\x`. */
function redisGlobMatch(glob: string, channel: string): boolean {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') re += '.*';
    else if (c === '\\') re += (glob[++i] ?? '').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's').test(channel);
}
/** MQTT 3.1.1 topic matching [MQTT-4.7.1] (no `$` topics here). */
function mqttMatch(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

it('turns an MQTT filter into Redis globs that cover every topic it matches', () => {
  expect(redisGlobs(FILTERS.event)).toEqual(['carewatch/v1/*/*/event']);
  expect(redisGlobs(FILTERS.everything)).toEqual(['carewatch/v1/*', 'carewatch/v1']);
  expect(redisGlobs('#')).toEqual(['*']);
  expect(redisGlobs('a*b/?/[x]/\\/+')).toEqual(['a\\*b/\\?/\\[x\\]/\\\\/*']);
  // Levels from an alphabet rich in glob metacharacters; empty levels too [MQTT-4.7.1-3].
  const level = fc.stringMatching(/^[a*?[\]\\]{0,3}$/);
  const topic = fc.array(level, { minLength: 1, maxLength: 4 });
  const filter = fc.tuple(fc.array(fc.oneof(level, fc.constant('+')), { minLength: 0, maxLength: 4 }), fc.boolean()).map(([ls, hash]) => (hash ? [...ls, '#'] : ls.length === 0 ? ['+'] : ls).join('/'));
  fc.assert(
    fc.property(filter, topic, (f, ls) => {
      const t = ls.join('/');
      // No false negative: what the filter matches, some glob matches (a glob may match more: the node's matcher drops it).
      if (mqttMatch(f, t)) expect(redisGlobs(f).some((g) => redisGlobMatch(g, t)), `${f} ${t}`).toBe(true);
      // A filter without wildcards is its own channel.
      if (!f.includes('+') && !f.includes('#')) expect(redisGlobs(f).every((g) => redisGlobMatch(g, t) === (f === t))).toBe(true);
    }),
    { numRuns: 2000 },
  );
});

describe('a node holding only devices', () => {
  let d: Broker;
  let s: Broker;

  it("receives from Redis none of the telemetry published in the cluster, yet its device gets a command published on another node", async () => {
    s = await node('s');
    d = await node('d');
    // The service node: svc-ingest subscribed to all telemetry (a wildcard: its glob).
    const ingest = await client(s, 'svc-ingest');
    const atIngest = record(ingest);
    await ingest.subscribeAsync(FILTERS.telemetry, { qos: 1 });
    expect(fanout(s)).toMatchObject({ mode: 'patterns', patterns: 1 });

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
  it('gets every device message of the cluster exactly once through exact, patterns and all mode and back; a topic with an exact and a wildcard listener delivered once to each', async () => {
    // At most 2 globs on p: a third wildcard filter puts it in all mode.
    const p = await node('p', 2);
    const q = await node('q');
    // On p, first only an exact listener: a watcher of dev5's status (exact mode).
    const watcher = await client(p, 'svc-alerts', 'svc-alerts-watch');
    const watched = record(watcher);
    await watcher.subscribeAsync(statusOf(dev5), { qos: 1 });
    expect(fanout(p)).toMatchObject({ mode: 'exact', channels: 1, wildcardListeners: 0, patterns: 0 });
    // Devices on the other node: dev5 publishes statuses, dev6 telemetry and events.
    const dev = await client(q, dev5.id);
    const other = await client(q, dev6.id);
    const N = 20;
    let s = 0;
    let t = 0;
    let e = 0;
    const sendStatus = (): Promise<unknown> => dev.publishAsync(statusOf(dev5), status(s++), { qos: 1 });
    const sendReading = (): Promise<unknown> => other.publishAsync(telemetryOf(dev6), reading(t++), { qos: 1 });
    const sendEvent = (): Promise<unknown> => other.publishAsync(eventOf(dev6), JSON.stringify({ ts: Date.now(), seq: e++, event: 'test' }), { qos: 1 });
    const watchedSeqs = (): number[] => seqsOf(watched, statusOf(dev5));
    // Each phase ends with a marker published last and awaited where it is delivered: a copy of an
    // earlier message (or an unwanted one) arrives on p's connection before it.

    // Exact mode: each status once from Redis; dev6's telemetry and events not at all.
    let before = fanout(p).received;
    for (let i = 0; i < N; i++) {
      await sendStatus();
      await sendReading();
      await sendEvent();
    }
    await sendStatus();
    await until('statuses in exact mode', () => watchedSeqs().includes(s - 1));
    expect(fanout(p).received - before).toBe(N + 1);

    // The switch to patterns, while dev5 keeps publishing: every status still reaches the watcher exactly once.
    const ingest = await client(p, 'svc-ingest');
    const atIngest = record(ingest);
    let during = Array.from({ length: N }, () => sendStatus());
    await ingest.subscribeAsync([FILTERS.status, FILTERS.telemetry], { qos: 1 });
    await Promise.all(during);
    expect(fanout(p)).toMatchObject({ mode: 'patterns', wildcardListeners: 2, patterns: 2, channels: 1, switches: 1 });
    await until('statuses across the switch to patterns', () => watchedSeqs().includes(s - 1));

    // Patterns mode: statuses and telemetry arrive, events (no filter on p matches them) do not. A
    // status matches the watcher's channel and ingest's glob: Redis sends it twice, back to back,
    // and it is delivered once to each.
    before = fanout(p).received;
    let sFrom = s;
    let tFrom = t;
    for (let i = 0; i < N; i++) {
      await sendStatus();
      await sendReading();
      await sendEvent();
    }
    await sendReading();
    await until('statuses and telemetry in patterns mode', () => watchedSeqs().includes(s - 1) && seqsOf(atIngest, telemetryOf(dev6)).includes(t - 1));
    expect(fanout(p).received - before).toBe(2 * N + N + 1);
    expect(seqsOf(atIngest, statusOf(dev5)).filter((n) => n >= sFrom)).toEqual(range(sFrom, s));
    expect(seqsOf(atIngest, telemetryOf(dev6)).filter((n) => n >= tFrom)).toEqual(range(tFrom, t));

    // A third filter: more than p's 2 globs, all mode, while dev5 keeps publishing.
    during = Array.from({ length: N }, () => sendStatus());
    await ingest.subscribeAsync(FILTERS.event, { qos: 1 });
    await Promise.all(during);
    expect(fanout(p)).toMatchObject({ mode: 'all', wildcardListeners: 3, patterns: 0, switches: 2 });
    await until('statuses across the switch to all', () => watchedSeqs().includes(s - 1));

    // All mode: every message of the cluster arrives once (not also through the old channel, the
    // globs or `$SYS/*`); dev5's status reaches the watcher (exact) and svc-ingest (wildcard) once each.
    before = fanout(p).received;
    sFrom = s;
    tFrom = t;
    const eFrom = e;
    for (let i = 0; i < N; i++) {
      await sendStatus();
      await sendReading();
      await sendEvent();
    }
    await sendReading();
    await until('every message in all mode', () => watchedSeqs().includes(s - 1) && seqsOf(atIngest, telemetryOf(dev6)).includes(t - 1) && seqsOf(atIngest, eventOf(dev6)).includes(e - 1));
    expect(fanout(p).received - before).toBe(3 * N + 1);
    expect(seqsOf(atIngest, statusOf(dev5)).filter((n) => n >= sFrom)).toEqual(range(sFrom, s));
    expect(seqsOf(atIngest, telemetryOf(dev6)).filter((n) => n >= tFrom)).toEqual(range(tFrom, t));
    expect(seqsOf(atIngest, eventOf(dev6))).toEqual(range(eFrom, e));
    // Over the whole run svc-ingest got each status and reading once, in order, from its subscription on.
    const statusesAtIngest = seqsOf(atIngest, statusOf(dev5));
    expect(statusesAtIngest).toEqual(range(statusesAtIngest[0] ?? 0, s));
    const readingsAtIngest = seqsOf(atIngest, telemetryOf(dev6));
    expect(readingsAtIngest).toEqual(range(readingsAtIngest[0] ?? 0, t));

    // The service leaves: p returns to exact mode; the watcher still gets each status once, the
    // cluster's telemetry no longer reaches p.
    await ingest.endAsync();
    await until('p back in exact mode', () => fanout(p).mode === 'exact');
    // Its three filters go one by one: all → patterns (two left) → exact.
    expect(fanout(p)).toMatchObject({ channels: 1, wildcardListeners: 0, patterns: 0, switches: 4 });
    before = fanout(p).received;
    for (let i = 0; i < N; i++) {
      await sendReading();
      await sendEvent();
      await sendStatus();
    }
    await sendStatus();
    await until('statuses after the switch back', () => watchedSeqs().includes(s - 1));
    expect(fanout(p).received - before).toBe(N + 1);
    // Every status of the whole run exactly once at the watcher, in order.
    expect(watchedSeqs()).toEqual(range(0, s));
  });

  it("the alarm lane: a node holding only alerts' signals session receives the cluster's events and statuses, no telemetry", async () => {
    const lane = await node('lane');
    const q = await node('q2');
    const signals = await client(lane, 'svc-alerts', 'svc-alerts-lane-signals');
    const atSignals = record(signals);
    await signals.subscribeAsync([FILTERS.event, FILTERS.status], { qos: 1 });
    expect(fanout(lane)).toMatchObject({ mode: 'patterns', patterns: 2 });
    const dev = await client(q, dev1.id);
    const before = fanout(lane).received;
    const N = 30;
    for (let i = 0; i < N; i++) {
      // Ten readings for every event, as a device's stream is mostly telemetry.
      for (let r = 0; r < 10; r++) await dev.publishAsync(telemetryOf(dev1), reading(i * 10 + r), { qos: 1 });
      await dev.publishAsync(eventOf(dev1), JSON.stringify({ ts: Date.now(), seq: i, event: 'alarm' }), { qos: 1 });
    }
    await until('every event at the signals session', () => seqsOf(atSignals, eventOf(dev1)).includes(N - 1));
    expect(seqsOf(atSignals, eventOf(dev1))).toEqual(range(0, N));
    expect(atSignals.filter((m) => m.topic === telemetryOf(dev1))).toEqual([]);
    // What arrived from Redis: the events, not one reading.
    expect(fanout(lane).received - before).toBe(N);
  });
});
