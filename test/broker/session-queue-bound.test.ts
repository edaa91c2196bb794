import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Device } from '../../contract/registry.ts';
import { deviceTopic, FILTERS } from '../../contract/topics.ts';
import { IndexedMemoryPersistence } from '../../broker/memory-persistence.ts';
import { QUEUE_ENTRY_OVERHEAD_BYTES } from '../../broker/session-queue-bound.ts';
import type { Broker } from '../../broker/broker.ts';
import type { Logger } from '../../common/logger.ts';
import { sessionQueueBoundFor } from '../../broker/config.ts';
import { startProcess, type TestProcess } from '../support/process.ts';
import { createRedisServer } from '../support/redis-server.ts';
import { captureLogger } from '../ingest/support/wait.ts';
import { demoRegistry } from '../support/registry.ts';
import { Redis } from 'ioredis';
import { connect, connectRecording, json, leaveTelemetrySession, rawSubscriber, startBroker, until } from './helpers.ts';

/**
 * limits.sessionQueueMaxBytes (session-queue-bound.ts): a persistent session away
 * for long no longer has every reading of the site queued in the broker's memory until the heap is
 * gone (0.8 KB a reading; at the province's rate 4 GB in ~12 minutes, and the broker, with every
 * device's connection and alarm, dies and replays the same store into the same death). At the bound
 * its readings are not queued, counted and logged once; events and statuses always are.
 */
const [device] = demoRegistry().site.devices.filter((d) => d.kind === 'smoke_detector') as [Device];
const telemetry = deviceTopic(device.homeId, device.id, 'telemetry');
const event = deviceTopic(device.homeId, device.id, 'event');
const status = deviceTopic(device.homeId, device.id, 'status');

interface P {
  cmd: 'publish';
  topic: string;
  payload: Buffer;
  qos: 1;
  retain: false;
  dup: false;
  brokerId: string;
  brokerCounter: number;
}
const packet = (topic: string, n: number): P => ({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify({ ts: 1_700_000_000_000 + n, seq: n })), qos: 1, retain: false, dup: false, brokerId: 'b1', brokerCounter: n });
const sizeOf = (p: P): number => QUEUE_ENTRY_OVERHEAD_BYTES + p.payload.length + p.topic.length;
/** A device's reading (contract TelemetryPayload) with this sequence number. */
const reading = (seq: number): string => JSON.stringify({ ts: Date.now(), seq, metrics: { temperature_c: 21 } });

describe('the store: a session at its bound', () => {
  it('queues no more readings for it, still queues its events and statuses, and says so once until it has room again', async () => {
    const max = 20 * sizeOf(packet(telemetry, 1_000));
    const said: string[] = [];
    const store = new IndexedMemoryPersistence({ maxBytes: max, onFull: (id, bytes) => said.push(`full ${id} ${bytes >= max}`), onRoom: (id, dropped) => said.push(`room ${id} ${dropped}`) });
    const both = [{ clientId: 'svc-ingest' }, { clientId: 'svc-alerts' }];
    let n = 1_000;
    // svc-alerts takes every message at once (its PUBACK clears it); svc-ingest is away.
    const publish = async (topic: string): Promise<P> => {
      const p = packet(topic, n++);
      await store.outgoingEnqueueCombi(both, p);
      await store.outgoingClearMessageId({ id: 'svc-alerts' }, { brokerId: p.brokerId, brokerCounter: p.brokerCounter });
      return p;
    };
    const queued = async (): Promise<string[]> => store.outgoingPackets('svc-ingest').map((p) => (p as unknown as P).topic.split('/')[4] as string);

    for (let i = 0; i < 25; i++) await publish(telemetry);
    expect((await queued()).length).toBe(20);
    expect(store.queuedBytes('svc-ingest')).toBe(max);
    expect(store.droppedAtBound).toBe(5);
    expect(said).toEqual(['full svc-ingest true']);
    // The other session is not touched by its neighbour's bound: it got every reading.
    expect(store.queuedBytes('svc-alerts')).toBe(0);

    // What can mean danger is queued past the bound.
    await publish(event);
    await publish(status);
    expect((await queued()).slice(-2)).toEqual(['event', 'status']);
    expect(store.droppedAtBound).toBe(5);

    // A QoS 2 reading is queued all the same (aedes closes a connection given a QoS 2 copy without its entry).
    await store.outgoingEnqueueCombi([{ clientId: 'svc-ingest' }], { ...packet(telemetry, n++), qos: 2 });
    expect(store.droppedAtBound).toBe(5);
    // svc-ingest takes three: below the bound, above 90 % of it. Still the same episode: nothing
    // said, readings still left out (one gap, not a reading let in for each one taken).
    for (const p of store.outgoingPackets('svc-ingest').slice(0, 3)) await store.outgoingClearMessageId({ id: 'svc-ingest' }, p as unknown as P);
    expect(store.queuedBytes('svc-ingest')).toBeLessThan(max);
    expect(store.queuedBytes('svc-ingest')).toBeGreaterThanOrEqual(0.9 * max);
    await publish(telemetry);
    expect(store.droppedAtBound).toBe(6);
    expect(said).toEqual(['full svc-ingest true']);
    // Three more: below 90 %, it is told (with what was left out meanwhile) and readings are queued again.
    for (const p of store.outgoingPackets('svc-ingest').slice(0, 3)) await store.outgoingClearMessageId({ id: 'svc-ingest' }, p as unknown as P);
    expect(store.queuedBytes('svc-ingest')).toBeLessThan(0.9 * max);
    expect(said).toEqual(['full svc-ingest true', 'room svc-ingest 6']);
    const before = (await queued()).length;
    await publish(telemetry);
    expect((await queued()).length).toBe(before + 1);
    expect(store.droppedAtBound).toBe(6);
  });

  it('bounds every session together: ingest partitioned by home (a session per home) no longer queues a bound per home', async () => {
    const one = sizeOf(packet(telemetry, 1_000));
    const max = 40 * one;
    const store = new IndexedMemoryPersistence({ maxBytes: max });
    const homes = Array.from({ length: 10 }, (_, i) => ({ clientId: `svc-ingest-home-h${i}` }));
    // 20 readings a home, round robin, every home's session away (ingest down).
    for (let n = 0; n < 200; n++) await store.outgoingEnqueueCombi([homes[n % 10] as { clientId: string }], packet(telemetry, 1_000 + n));
    const each = homes.map((h) => store.queuedBytes(h.clientId) / one);
    // Until session 26 each session had the whole bound: 200 readings queued, 5 bounds.
    expect(store.queueTotals().bytes).toBeLessThanOrEqual(2 * max);
    expect(store.droppedAtBound).toBeGreaterThanOrEqual(200 - 80);
    // Shared fairly: every home kept some of its history, none more than its share and a reading.
    expect(Math.min(...each)).toBeGreaterThanOrEqual(4);
    expect(Math.max(...each)).toBeLessThanOrEqual(5);
  });

  it('never cuts a session that keeps up because another was abandoned at the bound', async () => {
    const one = sizeOf(packet(telemetry, 1_000));
    const max = 40 * one;
    const store = new IndexedMemoryPersistence({ maxBytes: max });
    const gone = { clientId: 'svc-integration-old' };
    const live = { clientId: 'svc-ingest' };
    let n = 1_000;
    for (let i = 0; i < 60; i++) await store.outgoingEnqueueCombi([gone], packet(telemetry, n++));
    expect(store.queuedBytes(gone.clientId)).toBe(max);
    // The live one always has a few unacknowledged (ingest's window), never its share (max / 2).
    for (let i = 0; i < 100; i++) {
      const p = packet(telemetry, n++);
      await store.outgoingEnqueueCombi([gone, live], p);
      if (i >= 3) await store.outgoingClearMessageId({ id: live.clientId }, { brokerId: p.brokerId, brokerCounter: p.brokerCounter - 3 });
    }
    expect(store.queuedBytes(live.clientId)).toBe(3 * one);
    expect(store.droppedAtBound).toBe(20 + 100);
  });

  it('without a bound (as before) every reading is queued', async () => {
    const store = new IndexedMemoryPersistence();
    for (let i = 0; i < 2_000; i++) await store.outgoingEnqueueCombi([{ clientId: 'svc-ingest' }], packet(telemetry, i));
    expect(store.outgoingPackets('svc-ingest')).toHaveLength(2_000);
    expect(store.droppedAtBound).toBe(0);
  });
});

describe('the broker: svc-ingest away past its bound (durable store)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('keeps acknowledging every device message, bounds the queue, and svc-ingest still gets every event and the readings up to the bound, across a restart', async () => {
    const storeDir = mkdtempSync(join(tmpdir(), 'carewatch-qbound-'));
    dirs.push(storeDir);
    const maxBytes = 64 * 1024;
    const { logger, lines } = captureLogger('warn');
    const start = (): Promise<Broker> => startBroker({ config: { storeDir, limits: { sessionQueueMaxBytes: maxBytes } }, logger });
    let b = await start();
    const session = 'svc-ingest-qbound';
    await leaveTelemetrySession(b, session, [FILTERS.telemetry, FILTERS.event]);

    const dev = await connect(b, device.id);
    const readings = 400;
    // Each reading is ~600 accounted bytes: ~100 fill the 64 KiB. Every publish must be PUBACKed.
    for (let seq = 1; seq <= readings; seq++) await dev.publishAsync(telemetry, reading(seq), { qos: 1 });
    await dev.publishAsync(event, JSON.stringify({ ts: Date.now(), seq: readings + 1, type: 'detector_alarm' }), { qos: 1 });
    await dev.endAsync();

    const s = b.stats().sessionQueue;
    expect(s.dropped).toBeGreaterThan(200);
    // Bounded: at most one reading past the bound, plus the event.
    expect(s.largestBytes).toBeLessThan(maxBytes + 2 * 1024);
    const dropped = (await b.metrics.getSingleMetric('carewatch_broker_session_queue_dropped_total')?.get())?.values[0]?.value;
    expect(dropped).toBe(s.dropped);
    expect(lines.filter((l) => l.code === 'BROKER_SESSION_QUEUE_FULL').map((l) => l.clientId)).toEqual([session]);

    // The queue as bounded survives a restart of the broker (its durable store).
    await b.close();
    b = await start();
    try {
      const { client, received } = await connectRecording(b, 'svc-ingest', { clientId: session, clean: false });
      const expected = readings - s.dropped + 1;
      await until(() => `svc-ingest's queue: ${received.length} of ${expected}`, () => received.length >= expected);
      await client.endAsync();
      const seqs = received.filter((r) => r.topic === telemetry).map((r) => json(r).seq);
      // The oldest readings, in order, up to the bound; none of the dropped ones; then the alarm.
      expect(seqs).toEqual(Array.from({ length: readings - s.dropped }, (_, i) => i + 1));
      expect(received.filter((r) => r.topic === event).map((r) => json(r).type)).toEqual(['detector_alarm']);
    } finally {
      await b.close();
    }
  }, 60_000);
});

/** A private redis-server and a broker storing in it with this bound; closing closes both. */
async function redisBroker(maxBytes: number, logger?: Logger): Promise<{ b: Broker; redisUrl: string; close(): Promise<void> }> {
  const redis = await createRedisServer();
  await redis.start();
  const b = await startBroker({ config: { redisUrl: redis.url, limits: { sessionQueueMaxBytes: maxBytes } }, ...(logger !== undefined ? { logger } : {}) });
  return {
    b,
    redisUrl: redis.url,
    async close() {
      await b.close();
      await redis.close();
    },
  };
}

describe('the broker: svc-ingest away past its bound (Redis store, as docker-compose.yml runs it)', () => {
  it("leaves its readings out of Redis past the bound (by the queue's length, read at most every second), keeps every event, and keeps acknowledging", async () => {
    const { logger, lines } = captureLogger('warn');
    const stack = await redisBroker(64 * 1024, logger);
    const { b } = stack;
    try {
      const session = 'svc-ingest-qbound-redis';
      await leaveTelemetrySession(b, session, [FILTERS.telemetry, FILTERS.event]);
      const dev = await connect(b, device.id);
      let seq = 0;
      const publish = (): Promise<unknown> => dev.publishAsync(telemetry, reading(++seq), { qos: 1 });
      // 150 readings (~110 KiB accounted: past the bound), then a pause longer than the length's
      // age, so that the store has read it by the next readings.
      for (let i = 0; i < 150; i++) await publish();
      await new Promise((r) => setTimeout(r, 1_200));
      for (let i = 0; i < 250; i++) await publish();
      await dev.publishAsync(event, JSON.stringify({ ts: Date.now(), seq: ++seq, type: 'detector_alarm' }), { qos: 1 });
      await dev.endAsync();

      const s = b.stats().sessionQueue;
      expect(s.dropped).toBeGreaterThan(200);
      expect(lines.filter((l) => l.code === 'BROKER_SESSION_QUEUE_FULL').map((l) => l.clientId)).toEqual([session]);
      const { client, received } = await connectRecording(b, 'svc-ingest', { clientId: session, clean: false });
      const expected = 400 - s.dropped + 1;
      await until(() => `svc-ingest's queue: ${received.length} of ${expected}`, () => received.length >= expected);
      await client.endAsync();
      expect(received.filter((r) => r.topic === telemetry).map((r) => json(r).seq)).toEqual(Array.from({ length: 400 - s.dropped }, (_, i) => i + 1));
      expect(received.filter((r) => r.topic === event).map((r) => json(r).type)).toEqual(['detector_alarm']);
      // Taken: the next length read ends the episode.
      await until('the room log line', async () => {
        await connect(b, device.id).then(async (d) => {
          await d.publishAsync(telemetry, reading(++seq), { qos: 1 });
          await d.endAsync();
        });
        return lines.some((l) => l.code === 'BROKER_SESSION_QUEUE_ROOM');
      });
    } finally {
      await stack.close();
    }
  }, 60_000);
});

describe('the Redis store: the bound is shared by every session', () => {
  it('stops queueing readings for sessions over their share once the queues together reach it', async () => {
    const stack = await redisBroker(64 * 1024);
    const { b } = stack;
    const db = new Redis(stack.redisUrl);
    try {
      const sessions = ['svc-ingest-home-ha', 'svc-ingest-home-hb', 'svc-ingest-home-hc', 'svc-ingest-home-hd'];
      for (const s of sessions) await leaveTelemetrySession(b, s);
      const dev = await connect(b, device.id);
      let seq = 0;
      const publish = (): Promise<unknown> => dev.publishAsync(telemetry, reading(++seq), { qos: 1 });
      // 60 readings (~44 KiB accounted) each: under the bound alone, past it together (~177 KiB).
      for (let i = 0; i < 60; i++) await publish();
      await new Promise((r) => setTimeout(r, 1_200));
      for (let i = 0; i < 60; i++) await publish();
      await dev.endAsync();
      const lengths = await Promise.all(sessions.map((s) => db.llen(`outgoing:${s}`)));
      // Until session 26 each went on to its own 64 KiB (~88 readings): 120 each here.
      for (const n of lengths) expect(n).toBeLessThan(100);
      expect(b.stats().sessionQueue.dropped).toBeGreaterThan(4 * 20);
    } finally {
      db.disconnect();
      await stack.close();
    }
  }, 60_000);
});

describe('the Redis store: a connected session at its bound', () => {
  it('gets the readings left out of its queue live, and their packet keys, in no queue, expire if it goes before acknowledging them', async () => {
    const stack = await redisBroker(16 * 1024);
    const { b } = stack;
    const db = new Redis(stack.redisUrl);
    try {
      const session = 'svc-ingest-qbound-live';
      await leaveTelemetrySession(b, session);
      const dev = await connect(b, device.id);
      let seq = 0;
      const publish = (): Promise<unknown> => dev.publishAsync(telemetry, reading(++seq), { qos: 1 });
      for (let i = 0; i < 60; i++) await publish();
      await new Promise((r) => setTimeout(r, 1_200));
      await publish(); // the length is read now: the session is at its bound from the next reading on
      await until('the session at its bound', () => b.stats().sessionQueue.dropped > 0 || (void publish(), false));
      // It connects and reads, but never acknowledges (a raw client): what it takes live stays unacknowledged.
      const raw = await rawSubscriber(b, 'svc-ingest', [FILTERS.telemetry], { clean: false, clientId: session });
      let bytes = 0;
      raw.on('data', (d: Buffer) => (bytes += d.length));
      const before = b.stats().sessionQueue.dropped;
      for (let i = 0; i < 20; i++) await publish();
      expect(b.stats().sessionQueue.dropped).toBeGreaterThan(before);
      await until('the live copies reached it', () => bytes > 0);
      raw.destroy();
      await dev.endAsync();
      // Every packet key is either in a queue (held) or expires.
      const queued = new Set(await db.lrange(`outgoing:${session}`, 0, -1));
      const keys = await db.keys('packet:*');
      const unheld = keys.filter((k) => !k.endsWith(':offlineCount') && !queued.has(k));
      expect(unheld.length).toBeGreaterThan(0);
      for (const k of unheld) expect(await db.pttl(k), k).toBeGreaterThan(0);
    } finally {
      db.disconnect();
      await stack.close();
    }
  }, 60_000);
});

describe('the broker process: its bound follows its heap', () => {
  const MiB = 1024 * 1024;
  const procs: TestProcess[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) await p.stop();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('a fifth of the heap limit, at least 64 MiB', () => {
    expect(sessionQueueBoundFor(4345 * 1_000_000)).toBe(869_000_000);
    expect(sessionQueueBoundFor(100 * MiB)).toBe(64 * MiB);
  });

  const started = async (env: Record<string, string>): Promise<number> => {
    const dir = mkdtempSync(join(tmpdir(), 'carewatch-qbound-main-'));
    dirs.push(dir);
    const p = startProcess('broker-qbound', 'broker/main.ts', { CAREWATCH_BROKER_PORT: '0', CAREWATCH_BROKER_WS_PORT: '0', CAREWATCH_BROKER_STORE_DIR: dir, ...env });
    procs.push(p);
    const [, bytes] = (await p.waitForOutput(/"sessionQueueMaxBytes":(\d+)/)) as unknown as [string, string];
    return Number(bytes);
  };

  it('is taken from the heap limit (NODE_OPTIONS) unless CAREWATCH_BROKER_SESSION_QUEUE_MAX_BYTES says', async () => {
    // --max-old-space-size=1000: a heap limit a little above 1000 MiB (the young generation's share).
    const fromHeap = await started({ NODE_OPTIONS: '--max-old-space-size=1000' });
    expect(fromHeap).toBeGreaterThanOrEqual(sessionQueueBoundFor(1000 * MiB));
    expect(fromHeap).toBeLessThan(sessionQueueBoundFor(1100 * MiB));
    expect(await started({ NODE_OPTIONS: '--max-old-space-size=1000', CAREWATCH_BROKER_SESSION_QUEUE_MAX_BYTES: String(3 * MiB) })).toBe(3 * MiB);
  }, 60_000);
});
