import { appendFile, cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../broker/broker.ts';
import { DurableMemoryPersistence } from '../../broker/durable-persistence.ts';
import { StoreJournal, decodeRecords, encodeRecord } from '../../broker/store-journal.ts';
import { createLogger } from '../../common/logger.ts';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import type { Device } from '../../contract/registry.ts';
import { watchProcessFaults } from '../support/process-faults.ts';
import { demoRegistry } from '../support/registry.ts';
import { connect, connectRecording, record, startBroker, until, type Received } from './helpers.ts';

/**
 * The default store (durable-persistence.ts + store-journal.ts). A SIGKILL leaves the store
 * directory exactly as its files are at that instant (written data is in the page cache, the
 * process is gone), so "the broker crashed here" is a copy of the directory taken while the first
 * broker still runs; the second broker starts on the copy. test/faults/broker-crash.test.ts does
 * the same with real SIGKILLs of a broker process under load.
 */

const faults = watchProcessFaults();
const dirs: string[] = [];
const brokers: Broker[] = [];
const clients: MqttClient[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'carewatch-broker-store-'));
  dirs.push(d);
  return d;
}
async function start(storeDir: string, compactBytes?: number): Promise<Broker> {
  const b = await startBroker({ config: { storeDir, ...(compactBytes !== undefined ? { storeCompactBytes: compactBytes } : {}) } });
  brokers.push(b);
  return b;
}
/** The store as a SIGKILL at this instant would leave it. */
async function crashCopy(storeDir: string): Promise<string> {
  const copy = await tempDir();
  await cp(storeDir, copy, { recursive: true });
  return copy;
}
function seqs(got: Received[], topic: string): number[] {
  return got.filter((m) => m.topic === topic).map((m) => (JSON.parse(m.payload.toString()) as { seq: number }).seq);
}
const telemetry = (seq: number): string => JSON.stringify({ ts: 1_767_225_600_000 + seq, seq, metrics: { temperature_c: 20 + (seq % 50) } });

afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  for (const b of brokers.splice(0)) await b.close();
});
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('durable default store', () => {
  it('a crash right after the PUBACKs keeps the offline session, its subscription, the acknowledged messages and retained statuses', async () => {
    const device = demoRegistry().site.devices[0] as Device;
    const telemetryTopic = deviceTopic(device.homeId, device.id, 'telemetry');
    const statusTopic = deviceTopic(device.homeId, device.id, 'status');
    const dir = await tempDir();
    const first = await start(dir);
    const ingest1 = await connect(first, 'svc-ingest', { clientId: 'svc-ingest-crash', clean: false });
    await ingest1.subscribeAsync([FILTERS.telemetry], { qos: 1 });
    await ingest1.endAsync();

    const dev = await connect(first, device.id);
    clients.push(dev);
    await dev.publishAsync(statusTopic, JSON.stringify({ ts: 1, online: true }), { qos: 1, retain: true });
    // All in flight at once: one group commit may carry several.
    await Promise.all([1, 2, 3, 4, 5].map((seq) => dev.publishAsync(telemetryTopic, telemetry(seq), { qos: 1 })));
    const crashed = await crashCopy(dir);

    const second = await start(crashed);
    const { client: ingest2, received: got } = await connectRecording(second, 'svc-ingest', { clientId: 'svc-ingest-crash', clean: false });
    clients.push(ingest2);
    await until(() => `5 queued messages, got ${JSON.stringify(seqs(got, telemetryTopic))}`, () => seqs(got, telemetryTopic).length >= 5);
    expect(seqs(got, telemetryTopic)).toEqual([1, 2, 3, 4, 5]);
    // The session's subscription was restored from the store: new messages reach it live.
    const dev2 = await connect(second, device.id);
    clients.push(dev2);
    await dev2.publishAsync(telemetryTopic, telemetry(6), { qos: 1 });
    await until('live message after the crash', () => seqs(got, telemetryTopic).includes(6));

    const alerts = await connect(second, 'svc-alerts', { clientId: 'svc-alerts-crash' });
    clients.push(alerts);
    const retained = record(alerts);
    await alerts.subscribeAsync(statusTopic, { qos: 1 });
    await until('retained status', () => retained.some((m) => m.topic === statusTopic && m.retain));
  });

  it('a message acknowledged by the subscriber is not delivered again after a crash; one it had not acknowledged is', async () => {
    const device = demoRegistry().site.devices[1] as Device;
    const topic = deviceTopic(device.homeId, device.id, 'telemetry');
    const dir = await tempDir();
    const first = await start(dir);
    const { client: ingest1, received: got1 } = await connectRecording(first, 'svc-ingest', { clientId: 'svc-ingest-acks', clean: false });
    clients.push(ingest1);
    await ingest1.subscribeAsync([FILTERS.telemetry], { qos: 1 });
    const dev = await connect(first, device.id);
    clients.push(dev);
    for (let seq = 1; seq <= 3; seq++) await dev.publishAsync(topic, telemetry(seq), { qos: 1 });
    await until('3 delivered live', () => seqs(got1, topic).length >= 3);
    await ingest1.endAsync(); // its PUBACKs were sent before DISCONNECT
    // Clears are journaled without waiting for a sync; message 4's record follows them in the
    // journal, so its PUBACK means they are on disk too.
    await dev.publishAsync(topic, telemetry(4), { qos: 1 });
    const crashed = await crashCopy(dir);

    const second = await start(crashed);
    const { client: ingest2, received: got2 } = await connectRecording(second, 'svc-ingest', { clientId: 'svc-ingest-acks', clean: false });
    clients.push(ingest2);
    await until(() => `message 4, got ${JSON.stringify(seqs(got2, topic))}`, () => seqs(got2, topic).includes(4));
    expect(seqs(got2, topic)).toEqual([4]);
  });

  it('ignores a torn tail and compacts into a new generation while keeping the queue', async () => {
    const device = demoRegistry().site.devices[2] as Device;
    const topic = deviceTopic(device.homeId, device.id, 'telemetry');
    const dir = await tempDir();
    // 4 KiB: a new generation every few messages.
    const first = await start(dir, 4096);
    const ingest1 = await connect(first, 'svc-ingest', { clientId: 'svc-ingest-compact', clean: false });
    await ingest1.subscribeAsync([FILTERS.telemetry], { qos: 1 });
    await ingest1.endAsync();
    const dev = await connect(first, device.id);
    clients.push(dev);
    for (let seq = 1; seq <= 60; seq++) await dev.publishAsync(topic, telemetry(seq), { qos: 1 });
    const crashed = await crashCopy(dir);
    const logs = (await readdir(crashed)).filter((f) => f.endsWith('.log'));
    // Older generations are deleted once the new one's snapshot is synced (at most one older left mid-compaction).
    expect(logs.length).toBeLessThanOrEqual(2);
    const newest = logs.sort().at(-1) as string;
    expect(Number(/(\d+)/.exec(newest)?.[1])).toBeGreaterThan(2);
    // Half a record at the end, as a crash in the middle of a write leaves it.
    await appendFile(join(crashed, newest), encodeRecord({ h: { op: 'enq', c: ['svc-ingest-compact'], t: topic, q: 1, r: false, b: 'x', n: 1 }, p: Buffer.from(telemetry(999)) }).subarray(0, 20));

    const second = await start(crashed);
    const { client: ingest2, received: got } = await connectRecording(second, 'svc-ingest', { clientId: 'svc-ingest-compact', clean: false });
    clients.push(ingest2);
    await until(() => `60 queued messages, got ${seqs(got, topic).length}`, () => seqs(got, topic).length >= 60);
    expect(seqs(got, topic)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  });

  it('a QoS 1 message overtaken by a QoS 0 one while it is being stored still reaches a live persistent session', async () => {
    // The QoS 1 event waits for its fdatasync; the QoS 0 telemetry sent right after it is delivered
    // first. aedes' per-client dedupe dropped the overtaken event (and cleared it from the queue).
    const device = demoRegistry().site.devices[3] as Device;
    const event = deviceTopic(device.homeId, device.id, 'event');
    const tele = deviceTopic(device.homeId, device.id, 'telemetry');
    const b = await start(await tempDir());
    const { client: ingest, received: got } = await connectRecording(b, 'svc-ingest', { clientId: 'svc-ingest-order', clean: false });
    clients.push(ingest);
    await ingest.subscribeAsync([FILTERS.telemetry, FILTERS.event], { qos: 1 });
    const dev = await connect(b, device.id);
    clients.push(dev);
    for (let seq = 1; seq <= 20; seq += 2) {
      dev.publish(event, JSON.stringify({ ts: 1_767_225_600_000 + seq, seq, type: 'test', detail: 'x' }), { qos: 1 });
      dev.publish(tele, telemetry(seq + 1), { qos: 0 });
    }
    await until(() => `20 messages, got ${got.length}`, () => got.length >= 20);
    expect(got.map((m) => (JSON.parse(m.payload.toString()) as { seq: number }).seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('queues a message for delivery before its fdatasync, and whenDurable() resolves only once it is on disk', async () => {
    // The order that lets an alarm reach the alerts process without waiting for the disk, while the
    // PUBACK (ack-after-publish.ts) still waits for whenDurable().
    const dir = await tempDir();
    const logger = createLogger('store-test', 'silent');
    const p = new DurableMemoryPersistence({ dir, logger });
    await p.setup({ id: 'b1' });
    const topic = 'carewatch/v1/h01/d-x/event';
    await p.addSubscriptions({ id: 'svc-alerts' }, [{ topic: 'carewatch/v1/+/+/event', qos: 1 }]);
    const before = p.stats().commits;
    const packet = { cmd: 'publish', topic, payload: Buffer.from('{"seq":1}'), qos: 1, retain: false, brokerId: 'b1', brokerCounter: 1 };
    await p.outgoingEnqueueCombi([{ clientId: 'svc-alerts' }], packet);
    // Deliverable now: in the session's queue, though not yet committed.
    expect(p.stats().commits).toBe(before);
    const queued: unknown[] = [];
    for await (const m of p.outgoingStream({ id: 'svc-alerts' })) queued.push(m);
    expect(queued).toHaveLength(1);
    await p.whenDurable();
    expect(p.stats().commits).toBeGreaterThan(before);
    // What a SIGKILL now would leave: a fresh store on a copy holds the message.
    const copy = await crashCopy(dir);
    await rm(join(copy, 'LOCK'), { force: true });
    const q = new DurableMemoryPersistence({ dir: copy, logger });
    await q.setup({ id: 'b2' });
    const recovered: Array<{ topic: string }> = [];
    for await (const m of q.outgoingStream({ id: 'svc-alerts' })) recovered.push(m as { topic: string });
    expect(recovered.map((m) => m.topic)).toEqual([topic]);
    await q.destroy();
    await p.destroy();
  });

  it("does not wait for the disk to keep a will, and the will is on disk before the device's next acknowledged message", async () => {
    // putWill resolves before aedes' CONNACK: without an fdatasync per CONNECT (reconnect burst).
    // Safe because the journal is written in order: the device's online status (retained QoS 1,
    // PUBACKed only once durable) cannot be on disk without the will appended before it.
    const dir = await tempDir();
    const logger = createLogger('store-test', 'silent');
    const p = new DurableMemoryPersistence({ dir, logger });
    await p.setup({ id: 'b1' });
    const statusTopic = 'carewatch/v1/h01/d-x/status';
    const before = p.stats().commits;
    await p.putWill({ id: 'd-x' }, { cmd: 'publish', topic: statusTopic, payload: Buffer.from('{"online":false}'), qos: 1, retain: true });
    expect(p.stats().commits).toBe(before);
    await p.storeRetained({ cmd: 'publish', topic: statusTopic, payload: Buffer.from('{"online":true}'), qos: 1, retain: true, brokerId: 'b1', brokerCounter: 1 });
    expect(p.stats().commits).toBe(before + 1);
    const copy = await crashCopy(dir);
    await rm(join(copy, 'LOCK'), { force: true });
    const q = new DurableMemoryPersistence({ dir: copy, logger });
    await q.setup({ id: 'b2' });
    const wills: Array<{ clientId: string; topic: string }> = [];
    // b1 is not alive for b2: its wills are the ones a crashed broker left.
    for await (const w of q.streamWill({})) wills.push(w as { clientId: string; topic: string });
    expect(wills.map((w) => [w.clientId, w.topic])).toEqual([['d-x', statusTopic]]);
    await q.destroy();
    await p.destroy();
  });

  it("a will removed after the store closed (a persistent CONNECT in the broker's close) is no unhandled rejection, as aedes' storeWill chains it", async () => {
    const dir = await tempDir();
    const p = new DurableMemoryPersistence({ dir, logger: createLogger('store-test', 'silent') });
    await p.setup({ id: 'b1' });
    const will = { cmd: 'publish' as const, topic: 'carewatch/v1/h01/svc/status', payload: Buffer.from('{"online":false}'), qos: 1 as const, retain: true };
    await p.putWill({ id: 'svc' }, will);
    await p.destroy();
    // aedes 1.x lib/handlers/connect.js storeWill: delWill(client).finally(() => putWill …), nothing else.
    let after = false;
    void p.delWill({ id: 'svc' }).finally(() => {
      after = true;
    });
    await until('the chain went on', () => after);
    await new Promise((r) => setTimeout(r, 50));
    expect(faults.unhandled).toEqual([]);
    expect(await p.getWill({ id: 'svc' })).toBeUndefined();
  });

  it('replaces a will with one record at most: none for the same will after a restart, and a crash keeps what was set', async () => {
    const logger = createLogger('store-test', 'silent');
    const statusTopic = 'carewatch/v1/h01/d-w/status';
    const will = (text: string): { cmd: 'publish'; topic: string; payload: Buffer; qos: number; retain: boolean } => ({ cmd: 'publish', topic: statusTopic, payload: Buffer.from(text), qos: 1, retain: true });
    let n = 0;
    // A durable record commits everything appended before it: the bytes it adds beyond its own show what was.
    const committedBytes = async (p: DurableMemoryPersistence): Promise<number> => {
      await p.storeRetained({ cmd: 'publish', topic: 'carewatch/v1/h01/d-o/status', payload: Buffer.from(`{"n":${n++}}`), qos: 1, retain: true, brokerId: 'b', brokerCounter: n });
      return p.stats().bytes;
    };
    const wills = async (p: DurableMemoryPersistence, alive: Record<string, unknown>): Promise<string[]> => {
      const out: string[] = [];
      for await (const w of p.streamWill(alive)) out.push(`${(w as { clientId: string }).clientId}:${(w as { payload: Buffer }).payload.toString()}`);
      return out;
    };
    const dir = await tempDir();
    const first = new DurableMemoryPersistence({ dir, logger });
    await first.setup({ id: 'b1' });
    await first.replaceWill({ id: 'd-w' }, will('{"online":false}'));
    await committedBytes(first);
    const restarted = await crashCopy(dir);
    await rm(join(restarted, 'LOCK'), { force: true });
    const second = new DurableMemoryPersistence({ dir: restarted, logger });
    await second.setup({ id: 'b2' });
    const base = await committedBytes(second);
    const retainedOnly = (await committedBytes(second)) - base;
    // The device reconnects with the will it had: nothing appended for it.
    const before = second.stats().bytes;
    await second.replaceWill({ id: 'd-w' }, will('{"online":false}'));
    expect((await committedBytes(second)) - before).toBe(retainedOnly);
    // It is this broker's will now: not published as a dead broker's while b2 is alive.
    expect(await wills(second, { b2: true })).toEqual([]);
    // A different will: one record, and it is what a crash leaves.
    const before2 = second.stats().bytes;
    await second.replaceWill({ id: 'd-w' }, will('{"online":false,"firmware":"2"}'));
    expect((await committedBytes(second)) - before2).toBeGreaterThan(retainedOnly);
    const crashed = await crashCopy(restarted);
    await rm(join(crashed, 'LOCK'), { force: true });
    const third = new DurableMemoryPersistence({ dir: crashed, logger });
    await third.setup({ id: 'b3' });
    expect(await wills(third, {})).toEqual(['d-w:{"online":false,"firmware":"2"}']);
    // No will set: removed, and a crash does not bring it back.
    await third.replaceWill({ id: 'd-w' }, undefined);
    await committedBytes(third);
    const again = await crashCopy(crashed);
    await rm(join(again, 'LOCK'), { force: true });
    const fourth = new DurableMemoryPersistence({ dir: again, logger });
    await fourth.setup({ id: 'b4' });
    expect(await wills(fourth, {})).toEqual([]);
    for (const p of [first, second, third, fourth]) await p.destroy();
  });

  it('refuses a store another live process holds', async () => {
    const dir = await tempDir();
    await appendFile(join(dir, 'LOCK'), String(process.ppid));
    const p = new DurableMemoryPersistence({ dir, logger: createLogger('store-test', 'silent') });
    await expect(p.setup({ id: 'b' })).rejects.toThrow(/in use by process/);
  });

  it('decodes what it encodes, and stops at a corrupt record', () => {
    const a = encodeRecord({ h: { op: 'sub', c: 'x', s: [] } });
    const b = encodeRecord({ h: { op: 'ret', t: 'carewatch/v1/h01/d/status' }, p: Buffer.from([0, 1, 2, 255]) });
    const bad = Buffer.from(b);
    bad[bad.length - 1] = 7;
    expect(decodeRecords(Buffer.concat([a, b])).records.map((r) => [r.h.op, r.p?.toString('hex')])).toEqual([
      ['sub', undefined],
      ['ret', '000102ff'],
    ]);
    const cut = decodeRecords(Buffer.concat([a, bad, a]));
    expect(cut.records).toHaveLength(1);
    expect(cut.end).toBe(a.length);
  });
});

describe('store journal commit pacing', () => {
  /** A started journal in a fresh directory, and its commit count before the test's appends. */
  async function startedJournal(lazyCommitMs: number): Promise<{ dir: string; logger: ReturnType<typeof createLogger>; j: StoreJournal; base: number }> {
    const dir = await tempDir();
    const logger = createLogger('store-test', 'silent');
    const j = new StoreJournal({ dir, logger, lazyCommitMs });
    await j.recover();
    await j.start(() => []);
    return { dir, logger, j, base: j.stats().commits };
  }

  it('resolves every durable record of one commit together, after its fdatasync, and rejects them all if the store closes first', async () => {
    const { dir, logger, j, base } = await startedJournal(3_600_000);
    const a = j.append({ h: { op: 'clr', c: 'svc-ingest', n: 1 } }, true);
    const b = j.append({ h: { op: 'clr', c: 'svc-ingest', n: 2 } }, true);
    await Promise.all([a, b]);
    // One commit at most for the two (the first may have left alone if the journal was idle).
    expect(j.stats().commits - base).toBeGreaterThanOrEqual(1);
    expect(j.stats().commits - base).toBeLessThanOrEqual(2);
    await j.close();
    await expect(j.append({ h: { op: 'clr', c: 'svc-ingest', n: 3 } }, true)).rejects.toThrow(/closed/);
    const again = new StoreJournal({ dir, logger });
    expect((await again.recover()).filter((r) => r.h.op === 'clr').map((r) => r.h.n)).toEqual([1, 2]);
    await again.close();
  });


  it('writes a record nobody waits for by itself once its lazy delay has passed (a will with no durable record after it)', async () => {
    const { dir, logger, j, base } = await startedJournal(50);
    await j.append({ h: { op: 'will', c: 'd-lazy', t: 'carewatch/v1/h01/d-lazy/status', q: 1, r: true } }, false);
    // Bounded wait (a hang bound, not a timing assertion): 50 ms lazy delay, 5 s allowed.
    await until('the lazy commit', () => j.stats().commits > base, 5_000);
    // On disk without any close: what a SIGKILL now would leave.
    const copy = await crashCopy(dir);
    await rm(join(copy, 'LOCK'), { force: true });
    const reread = new StoreJournal({ dir: copy, logger });
    expect((await reread.recover()).map((r) => [r.h.op, r.h.c])).toEqual([['will', 'd-lazy']]);
    await reread.close();
    await j.close();
  });

  it('writes a record nobody waits for with the next awaited commit, and on close', async () => {
    // A lazy delay far beyond the test: only a durable append or close() can write the record.
    const { dir, logger, j, base } = await startedJournal(3_600_000);
    await j.append({ h: { op: 'clr', c: 'svc-ingest', n: 1 } }, false);
    await new Promise((r) => setTimeout(r, 20));
    expect(j.stats().commits).toBe(base);
    await j.append({ h: { op: 'clr', c: 'svc-ingest', n: 2 } }, true);
    expect(j.stats().commits).toBe(base + 1);
    const afterAwaited = (await readdir(dir)).filter((f) => f.endsWith('.log'));
    expect(afterAwaited).toHaveLength(1);
    // Pending at close: written, not dropped.
    await j.append({ h: { op: 'clr', c: 'svc-ingest', n: 3 } }, false);
    await j.close();
    const again = new StoreJournal({ dir, logger });
    const recs = await again.recover();
    expect(recs.filter((r) => r.h.op === 'clr').map((r) => r.h.n)).toEqual([1, 2, 3]);
    await again.close();
  });
});
