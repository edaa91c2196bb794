import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { fanoutMessageProblem } from '../../broker/redis-mq.ts';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import type { Device } from '../../contract/registry.ts';
import type { Broker } from '../../broker/broker.ts';
import { captureLogger } from '../ingest/support/wait.ts';
import { watchProcessFaults } from '../support/process-faults.ts';
import { useRedisServer } from '../support/redis-server.ts';
import { demoRegistry } from '../support/registry.ts';
import { connect, connectRecording, seqsOf, startBroker, until } from './helpers.ts';

/**
 * A message on a Redis channel a broker node holds that is not one of mqemitter-redis' own, with a
 * real redis-server and a real cluster node. mqemitter-redis decodes inside ioredis' reader,
 * unguarded: bytes that are not msgpack, a nil, a map without a message, or a message without a topic
 * threw there, an uncaught exception that ends the node. Every node holds the same `$SYS/*` pattern
 * (and `*` in all mode), so one PUBLISH by another program sharing the Redis server stopped them all.
 * Each case below failed before redis-mq.ts guarded them (checked by removing the guard).
 */
const redis = useRedisServer();
const faults = watchProcessFaults();

/** msgpack of the few shapes these cases need (fixmap, fixstr, positive fixint, bin 8). */
function msgpack(v: unknown): Buffer {
  if (typeof v === 'number') return Buffer.from([v & 0x7f]);
  if (typeof v === 'string') return Buffer.concat([Buffer.from([0xa0 | Buffer.byteLength(v)]), Buffer.from(v)]);
  if (Buffer.isBuffer(v)) return Buffer.concat([Buffer.from([0xc4, v.length]), v]);
  const entries = Object.entries(v as Record<string, unknown>);
  return Buffer.concat([Buffer.from([0x80 | entries.length]), ...entries.flatMap(([k, x]) => [msgpack(k), msgpack(x)])]);
}

const devices = demoRegistry().site.devices.filter((d) => d.kind === 'smoke_detector') as Device[];
const dev = devices[0] as Device;
const telemetry = deviceTopic(dev.homeId, dev.id, 'telemetry');

it('unit: a decoded fan-out message aedes could not deliver is named, one it published is not', () => {
  expect(fanoutMessageProblem({ cmd: 'publish', topic: telemetry, payload: Buffer.from('{}'), qos: 1, retain: false, dup: false, messageId: 7, brokerId: 'a-1', brokerCounter: 3 })).toBeUndefined();
  expect(fanoutMessageProblem({ topic: '$SYS/a-1/new/clients', payload: 'd1' })).toBeUndefined();
  expect(fanoutMessageProblem(undefined)).toBe('not a message object');
  expect(fanoutMessageProblem([])).toBe('not a message object');
  expect(fanoutMessageProblem({ payload: Buffer.alloc(0) })).toBe('no topic');
  expect(fanoutMessageProblem({ topic: 'a/+/b', payload: Buffer.alloc(0) })).toBe('wildcard or NUL in the topic name');
  expect(fanoutMessageProblem({ topic: 'a/b', payload: 5 })).toBe('payload neither bytes nor text');
  expect(fanoutMessageProblem({ topic: 'a/b', payload: '', qos: 3 })).toBe('qos not 0, 1 or 2');
  expect(fanoutMessageProblem({ topic: 'a/b', payload: '', retain: 'yes' })).toBe('retain not a boolean');
  expect(fanoutMessageProblem({ topic: 'a/b', payload: '', messageId: 1.5 })).toBe('messageId not an integer');
  expect(fanoutMessageProblem({ topic: 'a/b', payload: '', brokerId: 1 })).toBe('brokerId not a string');
  expect(fanoutMessageProblem({ topic: 'x'.repeat(65_536), payload: '' })).toBe('topic too long');
});

const cases: [string, string, Buffer][] = [
  ['bytes that are not msgpack', telemetry, Buffer.from([0xc1])],
  ['a msgpack nil', telemetry, Buffer.from([0xc0])],
  ['a map without a message', telemetry, msgpack({})],
  ['a message without a topic', telemetry, msgpack({ id: 'x1', msg: { payload: Buffer.from('{}') } })],
  ['a message whose payload is a number', telemetry, msgpack({ id: 'x2', msg: { topic: telemetry, payload: 5 } })],
  ["another program's plain text on a $SYS channel", '$SYS/other-app/heartbeat', Buffer.from('hello')],
];

it.each(cases)("%s is dropped, counted and logged; the node goes on delivering its devices' messages", async (_name, channel, message) => {
  const { logger, lines } = captureLogger('warn');
  const b: Broker = await startBroker({ logger, config: { redisUrl: `${redis.url}/0`, cluster: { nodeId: 'a' }, limits: { heartbeatIntervalMs: 200 } } });
  const admin = new Redis(redis.url);
  try {
    // A session of its own per case: a reading the last case's session had not acknowledged when it
    // was cut (end(true)) would come first here (seen in CI: [2, 1]).
    const { client: svc, received } = await connectRecording(b, 'svc-ingest', { clientId: `svc-ingest-malformed-${cases.findIndex((c) => c[2] === message)}`, clean: false });
    await svc.subscribeAsync(FILTERS.telemetry, { qos: 1 });
    let svcClosed = 0;
    svc.on('close', () => svcClosed++);
    const d = await connect(b, dev.id);
    // The node's own traffic (heartbeats, the device's connect notice, the subscription's copy) is not counted as malformed.
    await d.publishAsync(telemetry, JSON.stringify({ ts: Date.now(), seq: 1, metrics: { temperature_c: 20 } }), { qos: 1 });
    await until('the first reading', () => seqsOf(received, telemetry).length === 1);
    expect(b.stats().clusterFanout?.malformed).toBe(0);

    expect(await admin.publish(channel, message)).toBeGreaterThanOrEqual(1);
    const crashed = (): boolean => faults.unhandled.length + faults.uncaught.length > 0;
    await until('the message dropped', () => crashed() || (b.stats().clusterFanout?.malformed ?? 0) >= 1);
    expect(faults.uncaught.map(String)).toEqual([]);
    expect(faults.unhandled.map(String)).toEqual([]);

    await d.publishAsync(telemetry, JSON.stringify({ ts: Date.now(), seq: 2, metrics: { temperature_c: 20 } }), { qos: 1 });
    await until('the next reading', () => seqsOf(received, telemetry).length === 2);
    expect(seqsOf(received, telemetry)).toEqual([1, 2]);
    // A payload aedes cannot write closed the service's connection before the shape check.
    expect(svcClosed).toBe(0);
    expect(b.stats().clusterFanout?.malformed).toBe(1);
    expect(lines.filter((l) => l.code === 'BROKER_CLUSTER_MESSAGE_MALFORMED').map((l) => l.topic)).toEqual([channel]);
    svc.end(true);
    d.end(true);
  } finally {
    admin.disconnect();
    await b.close();
  }
});

it('a well-formed message a listener cannot handle keeps no delivery slot: with 4 slots, 5 of them and the next reading still reaches ingest', async () => {
  // aedes-persistence-redis parses `$SYS/sub/…` payloads as JSON, unguarded. Before every listener
  // ran guarded (redis-mq.ts), each such throw kept one of mqemitter's in-flight slots for ever (it
  // counts a message before calling its listeners); past `concurrency` of them the node delivered
  // nothing: a PUBACKed reading never reached the service (found by review, session 21).
  const { logger, lines } = captureLogger('warn');
  const b: Broker = await startBroker({ logger, config: { redisUrl: `${redis.url}/0`, cluster: { nodeId: 'a' }, limits: { heartbeatIntervalMs: 200, mqConcurrency: 4 } } });
  const admin = new Redis(redis.url);
  try {
    const { client: svc, received } = await connectRecording(b, 'svc-ingest', { clean: false });
    await svc.subscribeAsync(FILTERS.telemetry, { qos: 1 });
    const d = await connect(b, dev.id);
    for (let i = 0; i < 5; i++) await admin.publish('$SYS/sub/add', msgpack({ id: `bad-${i}`, msg: { topic: '$SYS/sub/add', payload: 'not json' } }));
    const crashed = (): boolean => faults.unhandled.length + faults.uncaught.length > 0;
    await until('the five dropped', () => crashed() || (b.stats().clusterFanout?.malformed ?? 0) >= 5);
    expect(faults.uncaught.map(String)).toEqual([]);
    await d.publishAsync(telemetry, JSON.stringify({ ts: Date.now(), seq: 1, metrics: { temperature_c: 20 } }), { qos: 1 });
    await until('the reading after them', () => seqsOf(received, telemetry).length === 1, 5_000);
    expect(b.stats().clusterFanout?.malformed).toBe(5);
    expect(lines.filter((l) => l.code === 'BROKER_CLUSTER_MESSAGE_MALFORMED')).toHaveLength(5);
    svc.end(true);
    d.end(true);
  } finally {
    admin.disconnect();
    await b.close();
  }
});
