import { describe, expect, it } from 'vitest';
import AsyncMemoryPersistence from 'aedes-persistence/asyncPersistence.js';
import { IndexedMemoryPersistence } from '../../broker/memory-persistence.ts';
import { QUEUE_ENTRY_OVERHEAD_BYTES } from '../../broker/session-queue-bound.ts';

/**
 * The indexed outgoing queue (issue 6 made it O(1)) against a plain model of what it must do, and
 * the three places where it deliberately differs from the stock aedes-persistence scans, which lost
 * messages of a persistent session across reconnects and broker restarts (session 7 chaos run: one
 * acknowledged reading never stored). A packet id means something only on the connection that gave
 * it [MQTT-2.3.1-2 … -4]; aedes passes its Client object, one per connection, to every call.
 */
interface P {
  cmd: string;
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
  dup: boolean;
  brokerId?: string;
  brokerCounter?: number;
  messageId?: number;
}

/** aedes' Client: one object per connection; `_nextId` is its packet id counter (lib/qos-packet.js). */
type Conn = { id: string; _nextId?: number };

async function drain(stream: NodeJS.ReadableStream): Promise<P[]> {
  const out: P[] = [];
  for await (const p of stream) out.push(p as unknown as P);
  return out;
}

function publish(n: number, brokerId = 'b1'): P {
  return { cmd: 'publish', topic: `carewatch/h01/d/telemetry`, payload: Buffer.from(`m${n}`), qos: 1, retain: false, dup: false, brokerId, brokerCounter: n };
}

const payloads = (ps: readonly P[]): string[] => ps.map((p) => p.payload.toString());

/** A packet as the queue answers it, key order aside (aedes-packet's copy orders its keys its own way). */
function norm(p: P | undefined): string {
  if (p === undefined) return 'none';
  return JSON.stringify({ cmd: p.cmd, topic: p.topic, payload: p.payload?.toString(), brokerId: p.brokerId, brokerCounter: p.brokerCounter, messageId: p.messageId });
}

/** What the queue must do, written as plainly as possible (O(n) scans). */
class Model {
  readonly queues = new Map<string, Array<{ packet: P; conn?: Conn; at: number }>>();
  private tick = 0;
  private q(id: string): Array<{ packet: P; conn?: Conn; at: number }> {
    let q = this.queues.get(id);
    if (q === undefined) this.queues.set(id, (q = []));
    return q;
  }
  enqueue(clientId: string, p: P): void {
    this.q(clientId).push({ packet: { ...p, messageId: undefined }, at: 0 });
  }
  /** The entry `conn` numbered with `id` (at most one: two in flight on a connection never share an id). */
  private holder(conn: Conn, id: number): number {
    const q = this.q(conn.id);
    const all = q.flatMap((e, i) => (e.conn === conn && e.packet.messageId === id ? [i] : []));
    if (all.length > 1) throw new Error(`model: ${all.length} entries in flight as ${id}`);
    return all[0] ?? -1;
  }
  /** A delivery's id, or the first free one from the connection's counter if another entry is in flight with it. */
  private unclash(conn: Conn, p: P, own: unknown): void {
    if (p.messageId === undefined) return;
    const i = this.holder(conn, p.messageId);
    if (i < 0 || this.q(conn.id)[i] === own) return;
    let id = conn._nextId ?? 1;
    while (this.holder(conn, id) >= 0) id = id >= 65_535 ? 1 : id + 1;
    conn._nextId = id >= 65_535 ? 1 : id + 1;
    p.messageId = id;
  }
  update(conn: Conn, p: P): string {
    const q = this.q(conn.id);
    if (p.brokerId === undefined) {
      const i = p.messageId === undefined ? -1 : this.holder(conn, p.messageId);
      if (i < 0) return 'no such packet';
      q[i] = { packet: p, conn: q[i]?.conn as Conn, at: ++this.tick };
      return 'ok';
    }
    const e = q.find((x) => x.packet.brokerId === p.brokerId && x.packet.brokerCounter === p.brokerCounter);
    this.unclash(conn, p, e);
    // A publish whose entry is gone (acknowledged through its other copy) goes out anyway (session 22:
    // the error made aedes close the session's connection).
    if (e === undefined) return 'ok';
    e.packet.messageId = p.messageId;
    e.conn = conn;
    e.at = ++this.tick;
    return 'ok';
  }
  clear(conn: Conn, p: { messageId?: number; brokerId?: string; brokerCounter?: number }): P | undefined {
    const q = this.q(conn.id);
    let i = -1;
    if (p.messageId !== undefined) i = this.holder(conn, p.messageId);
    else if (p.brokerId !== undefined) i = q.findIndex((x) => x.packet.messageId === undefined && x.packet.brokerId === p.brokerId && x.packet.brokerCounter === p.brokerCounter);
    else i = q.findIndex((x) => x.packet.messageId === undefined);
    if (i < 0) return undefined;
    return q.splice(i, 1)[0]?.packet;
  }
}

describe('the indexed outgoing queue of a persistent session', () => {
  it('answers every enqueue, update, clear and stream as the model does, across reconnects and broker restarts', async () => {
    const model = new Model();
    const ours = new IndexedMemoryPersistence();
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const ids = ['svc-ingest', 'svc-alerts', 'dev-1'];
    // One aedes Client object per connection; a reconnect makes a new one.
    const conns = new Map<string, Conn>(ids.map((id) => [id, { id }]));
    const sent: P[] = [];
    let counter = 0;
    let brokerId = 'b1';
    let reconnects = 0;
    let moved = 0;
    for (let step = 0; step < 6_000; step++) {
      const id = ids[rnd(ids.length)] as string;
      const op = rnd(20);
      if (op === 0) {
        conns.set(id, { id });
        reconnects++;
      } else if (op === 1 && rnd(5) === 0) {
        brokerId = `b${step}`; // a broker restart: new id, counters from 0 again
        counter = 0;
      } else if (op < 9) {
        const p = publish(++counter, brokerId);
        // Sometimes one message for the same session twice (overlapping subscriptions): queued once.
        const subs = rnd(8) === 0 ? [{ clientId: id }, { clientId: id }] : [{ clientId: id }];
        model.enqueue(id, p);
        await ours.outgoingEnqueueCombi(subs, p);
        sent.push(p);
      } else if (op < 15 && sent.length > 0) {
        const conn = conns.get(id) as Conn;
        // A delivery numbers a queued message, with small ids so they get reused; now and then a
        // PUBREL (no broker id) or an unknown counter.
        const p: P = { ...(sent[rnd(sent.length)] as P), messageId: 1 + rnd(30) };
        if (rnd(15) === 0) p.brokerCounter = 1_000_000 + step;
        const pubrel = rnd(25) === 0;
        const packet: P = pubrel ? ({ cmd: 'pubrel', messageId: p.messageId } as P) : p;
        // Both number from the connection's counter when an id is taken: each starts from the same value.
        const counterBefore = conn._nextId;
        const [pa, pb] = [{ ...packet }, { ...packet }];
        const a = model.update(conn, pa);
        const counterModel = conn._nextId;
        conn._nextId = counterBefore;
        const b = await ours.outgoingUpdate(conn, pb).then(() => 'ok', (e: Error) => e.message);
        expect(b, `update step ${step}`).toBe(a);
        expect(pb.messageId, `id sent at step ${step}`).toBe(pa.messageId);
        expect(conn._nextId, `counter after step ${step}`).toBe(counterModel);
        if (pa.messageId !== packet.messageId) moved++;
      } else {
        const conn = conns.get(id) as Conn;
        const r = rnd(12);
        // A PUBACK; or a refused forward (no id, the packet's broker id and counter); or nothing at all.
        const p = r === 0 ? {} : r === 1 && sent.length > 0 ? { brokerId: (sent[rnd(sent.length)] as P).brokerId, brokerCounter: (sent[rnd(sent.length)] as P).brokerCounter } : { messageId: 1 + rnd(30) };
        const a = model.clear(conn, p);
        const b = await ours.outgoingClearMessageId(conn, p);
        expect(norm(b as P | undefined), `clear ${JSON.stringify(p)} step ${step}`).toBe(norm(a));
      }
      if (step % 500 === 0 || step === 5_999) {
        for (const c of ids) {
          const expected = (model.queues.get(c) ?? []).map((e) => e.packet);
          expect(ours.outgoingPackets(c).map((p) => norm(p as unknown as P)), `queue of ${c} at step ${step}`).toEqual(expected.map(norm));
          // What a reconnect sends: the same, each QoS 1 message without the id a dead connection gave it (numbered afresh).
          expect((await drain(ours.outgoingStream({ id: c }))).map(norm), `stream of ${c} at step ${step}`).toEqual(expected.map((p) => norm({ ...p, messageId: undefined })));
          // What limits.sessionQueueMaxBytes is held against: kept right through updates (PUBRELs) and clears.
          expect(ours.queuedBytes(c), `accounted bytes of ${c} at step ${step}`).toBe(expected.reduce((n, p) => n + QUEUE_ENTRY_OVERHEAD_BYTES + (p.payload?.length ?? 0) + (p.topic?.length ?? 0), 0));
        }
      }
    }
    expect(sent.length).toBeGreaterThan(1000);
    expect(reconnects).toBeGreaterThan(100);
    expect(moved).toBeGreaterThan(10);
  });

  it('never has two entries in flight with one id on a connection: past 65,535 unacknowledged the counter wraps onto a taken id', async () => {
    // aedes numbers deliveries 1 … 65,535 and wraps to 1 (lib/qos-packet.js), taken or not; svc-ingest
    // may have ~90,000 readings read and unacknowledged. Before the fix message 65,536 went out as
    // id 1 too, and ingest's PUBACK 1 for message 1 cleared message 65,536 (journalled: lost).
    const store = new IndexedMemoryPersistence();
    const conn: Conn = { id: 'svc-ingest' };
    const deliver = async (n: number): Promise<P> => {
      const id = conn._nextId ?? 1;
      conn._nextId = id >= 65_535 ? 1 : id + 1;
      const p = { ...publish(n), messageId: id };
      await store.outgoingUpdate(conn, p);
      return p;
    };
    for (let n = 1; n <= 65_538; n++) await store.outgoingEnqueueCombi([{ clientId: 'svc-ingest' }], publish(n));
    for (let n = 1; n <= 65_535; n++) await deliver(n);
    expect(((await store.outgoingClearMessageId(conn, { messageId: 5 })) as P).brokerCounter).toBe(5);
    // The counter is back at 1, which message 1 holds: message 65,536 takes the first free id after it.
    expect((await deliver(65_536)).messageId).toBe(5);
    expect(((await store.outgoingClearMessageId(conn, { messageId: 1 })) as P).brokerCounter).toBe(1);
    expect(((await store.outgoingClearMessageId(conn, { messageId: 5 })) as P).brokerCounter).toBe(65_536);
    expect((await deliver(65_537)).messageId).toBe(1); // from the counter (now 6) round to the free 1
    expect((await deliver(65_538)).messageId).toBe(5);
    // All 65,535 in flight: no id for another delivery (aedes closes the connection; it stays queued).
    await store.outgoingEnqueueCombi([{ clientId: 'svc-ingest' }], publish(65_539));
    await expect(deliver(65_539)).rejects.toThrow(/no free packet id/);
    expect(store.outgoingPackets('svc-ingest').at(-1)).toMatchObject({ brokerCounter: 65_539, messageId: undefined });
  });

  // The three scenarios below are what aedes does; each lost a message with the stock scans (the
  // stock persistence is run alongside to show it).
  for (const [name, make] of [
    ['ours', () => new IndexedMemoryPersistence()],
    ['stock', () => new AsyncMemoryPersistence()],
  ] as const) {
    const fixed = name === 'ours';
    it(`${name}: a PUBACK after a reconnect clears the message the new connection sent, not a stale one with the same id`, async () => {
      const store = make();
      const old: Conn = { id: 'svc-ingest' };
      const now: Conn = { id: 'svc-ingest' };
      const [m1, m2] = [publish(1), publish(2)];
      await store.outgoingEnqueueCombi([{ clientId: 'svc-ingest' }], m1);
      await store.outgoingEnqueueCombi([{ clientId: 'svc-ingest' }], m2);
      await store.outgoingUpdate(old, { ...m1, messageId: 7 }); // sent on the old connection, never acknowledged
      // The session reconnects; aedes resends the queue with fresh ids, and a live message comes first.
      await store.outgoingUpdate(now, { ...m2, messageId: 7 });
      const cleared = (await store.outgoingClearMessageId(now, { messageId: 7 })) as P | undefined;
      const left = payloads(await drain(store.outgoingStream({ id: 'svc-ingest' })));
      if (fixed) {
        expect(cleared?.payload.toString()).toBe('m2');
        expect(left).toEqual(['m1']); // still there, resent with a fresh id next
      } else expect(left).toEqual(['m2']); // m1 gone, never received
    });

    it(`${name}: a message recovered after a broker restart is not overwritten by a new one given the same id`, async () => {
      const store = make();
      const before: Conn = { id: 'svc-ingest' };
      const after: Conn = { id: 'svc-ingest' };
      const recovered = publish(41, 'broker-run-1');
      const fresh = publish(1, 'broker-run-2');
      await store.outgoingEnqueueCombi([{ clientId: 'svc-ingest' }], recovered);
      await store.outgoingUpdate(before, { ...recovered, messageId: 7 });
      await store.outgoingEnqueueCombi([{ clientId: 'svc-ingest' }], fresh);
      await store.outgoingUpdate(after, { ...fresh, messageId: 7 });
      const left = payloads(await drain(store.outgoingStream({ id: 'svc-ingest' })));
      if (fixed) expect(left).toEqual(['m41', 'm1']);
      else expect(left).not.toContain('m41'); // overwritten by m1
    });

    it(`${name}: the PUBACK of a retained copy sent at SUBSCRIBE (never queued) clears nothing`, async () => {
      const store = make();
      const old: Conn = { id: 'svc-ingest' };
      const now: Conn = { id: 'svc-ingest' };
      const m = publish(1);
      await store.outgoingEnqueueCombi([{ clientId: 'svc-ingest' }], m);
      await store.outgoingUpdate(old, { ...m, messageId: 9 });
      // On the new connection the retained status copy happens to get id 9 and is acknowledged.
      await store.outgoingClearMessageId(now, { messageId: 9 });
      const left = payloads(await drain(store.outgoingStream({ id: 'svc-ingest' })));
      expect(left).toEqual(fixed ? ['m1'] : []);
    });
  }
});
