import { Readable } from 'node:stream';
import type { Logger } from '../common/logger.ts';
import { IndexedMemoryPersistence, oncePerSession } from './memory-persistence.ts';
import type { SessionQueueBound } from './session-queue-bound.ts';
import { StoreJournal, type JournalRecord, type JournalStats } from './store-journal.ts';

/**
 * The broker's default store: the indexed in-memory persistence (memory-persistence.ts) with every
 * state change also appended to a journal on local disk (store-journal.ts, group-commit fdatasync),
 * replayed when the broker starts. A SIGKILL, OOM or power cut of the broker loses nothing whose
 * promise aedes saw resolve:
 *  - a QoS ≥ 1 message queued for the persistent sessions that match it (svc-ingest, svc-alerts;
 *    a reading is not queued for a session at its bound: session-queue-bound.ts) is journaled by
 *    outgoingEnqueueCombi, storeRetained resolves only once durable, and the broker
 *    answers a QoS 1 PUBLISH only after both are on disk (ack-after-publish.ts waits for
 *    whenDurable()), so an acknowledged message is on disk;
 *  - addSubscriptions / removeSubscriptions / cleanSubscriptions resolve once durable, before
 *    SUBACK: the services' persistent sessions exist after a crash even before they reconnect, so
 *    messages acknowledged in between are queued for them;
 *  - wills and inbound QoS 2 packets are journaled too (the wills of a crashed broker are published
 *    by the next one, as with Redis); a QoS 2 PUBREC waits for the queue entries as a PUBACK does.
 * Deliveries (outgoingUpdate: the packet id a message got) are not journaled: after a restart every
 * queued message is sent again with a new packet id, as a resumed session's unacknowledged ones
 * are [MQTT-4.4.0-1]. Acknowledgements (outgoingClear) are journaled but not waited for: a lost
 * one only means a redelivery, which ingest writes idempotently (device ts + seq + series).
 */

export interface DurablePersistenceOptions {
  readonly dir: string;
  readonly logger: Logger;
  /** See StoreJournal's compactBytes. */
  readonly compactBytes?: number;
  /** The bound on each persistent session's queue (session-queue-bound.ts). */
  readonly queueBound?: SessionQueueBound;
}

interface SubRecord {
  topic: string;
  qos: number;
  rh?: number;
  rap?: boolean;
  nl?: boolean;
}

/** The fields of a publish packet the store keeps (payload separately, raw). */
interface StoredPacket {
  cmd?: string;
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
  dup?: boolean;
  brokerId?: string;
  brokerCounter?: number;
  messageId?: number;
  clientId?: string;
}

function packetHeader(op: string, p: StoredPacket, extra: Record<string, unknown>): JournalRecord['h'] {
  return { op, ...extra, t: p.topic, q: p.qos, r: p.retain, b: p.brokerId, n: p.brokerCounter };
}

function packetOf(rec: JournalRecord): StoredPacket & { cmd: 'publish' } {
  const h = rec.h;
  return {
    cmd: 'publish',
    topic: String(h.t),
    payload: rec.p ?? Buffer.alloc(0),
    qos: Number(h.q ?? 0),
    retain: h.r === true,
    dup: false,
    ...(typeof h.b === 'string' ? { brokerId: h.b } : {}),
    ...(typeof h.n === 'number' ? { brokerCounter: h.n } : {}),
  };
}

const RESOLVED: Promise<void> = Promise.resolve();

/** The same will as far as the journal records it (packetHeader's fields and the payload; the broker id aside). */
function sameWill(a: StoredPacket, b: StoredPacket): boolean {
  return a.topic === b.topic && a.qos === b.qos && a.retain === b.retain && a.brokerCounter === b.brokerCounter && Buffer.isBuffer(a.payload) && Buffer.isBuffer(b.payload) && a.payload.equals(b.payload);
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export class DurableMemoryPersistence extends IndexedMemoryPersistence {
  readonly #journal: StoreJournal;
  #replaying = false;
  #brokerId = '';
  /** The durability of the newest queued message (see whenDurable). */
  #lastDurable: Promise<void> = Promise.resolve();
  /** Mirrors of the stock state, for snapshots (the stock class keeps its maps private). */
  readonly #subs = new Map<string, Map<string, SubRecord>>();
  readonly #retained = new Map<string, StoredPacket>();
  /** Wills and inbound QoS 2 packets: kept here, not in the stock class, which re-stamps brokerId. */
  readonly #wills = new Map<string, StoredPacket & { clientId: string; brokerId: string }>();
  readonly #incoming = new Map<string, Map<number, StoredPacket>>();

  constructor(opts: DurablePersistenceOptions) {
    super(opts.queueBound);
    this.#journal = new StoreJournal({ dir: opts.dir, logger: opts.logger, ...(opts.compactBytes !== undefined ? { compactBytes: opts.compactBytes } : {}) });
  }

  stats(): JournalStats {
    return this.#journal.stats();
  }

  override async setup(broker: unknown): Promise<void> {
    await super.setup(broker);
    this.#brokerId = String((broker as { id?: unknown }).id ?? '');
    const records = await this.#journal.recover();
    this.#replaying = true;
    try {
      for (const r of records) await this.#apply(r);
    } finally {
      this.#replaying = false;
    }
    await this.#journal.start(() => this.#snapshot());
  }

  #log(h: JournalRecord['h'], p: Buffer | undefined, durable: boolean): Promise<void> {
    if (this.#replaying) return Promise.resolve();
    return this.#journal.append({ h, p }, durable);
  }

  async #apply(rec: JournalRecord): Promise<void> {
    const h = rec.h;
    const c = typeof h.c === 'string' ? h.c : '';
    switch (h.op) {
      case 'sub':
        await this.addSubscriptions({ id: c }, Array.isArray(h.s) ? (h.s as SubRecord[]) : []);
        return;
      case 'unsub':
        await this.removeSubscriptions({ id: c }, strings(h.s));
        return;
      case 'clean':
        await this.cleanSubscriptions({ id: c });
        return;
      case 'enq':
        await this.outgoingEnqueueCombi(strings(h.c).map((clientId) => ({ clientId })), packetOf(rec));
        return;
      case 'clr':
        if (typeof h.b === 'string' && typeof h.n === 'number') {
          this.queues.get(c)?.clearByCounter(h.b, h.n);
          this.cleared(c);
        }
        return;
      case 'ret':
        await this.storeRetained(packetOf(rec));
        return;
      case 'will':
        this.#wills.set(c, { ...packetOf(rec), clientId: c, brokerId: typeof h.b === 'string' ? h.b : '' });
        return;
      case 'unwill':
        this.#wills.delete(c);
        return;
      case 'in':
        await this.incomingStorePacket({ id: c }, { ...packetOf(rec), messageId: Number(h.m) });
        return;
      case 'unin':
        this.#incoming.get(c)?.delete(Number(h.m));
        return;
      case 'cleanin':
        this.#incoming.delete(c);
        return;
      default:
        // A record of a newer version: skipping it keeps the rest of the state.
        return;
    }
  }

  #snapshot(): JournalRecord[] {
    const out: JournalRecord[] = [];
    for (const [c, subs] of this.#subs) out.push({ h: { op: 'sub', c, s: [...subs.values()] } });
    for (const p of this.#retained.values()) out.push({ h: packetHeader('ret', p, {}), p: p.payload });
    for (const [c, w] of this.#wills) out.push({ h: packetHeader('will', w, { c }), p: w.payload });
    for (const [c, m] of this.#incoming) for (const [id, p] of m) out.push({ h: packetHeader('in', p, { c, m: id }), p: p.payload });
    for (const [c, q] of this.queues) {
      for (const e of q.entries.values()) {
        const p = e.packet as unknown as StoredPacket;
        out.push({ h: packetHeader('enq', p, { c: [c] }), p: p.payload });
      }
    }
    return out;
  }

  // ---- sessions ----------------------------------------------------------------------------
  override async addSubscriptions(client: { id: string }, subs: ReadonlyArray<object>): Promise<void> {
    await super.addSubscriptions(client, subs);
    let m = this.#subs.get(client.id);
    if (m === undefined) this.#subs.set(client.id, (m = new Map()));
    const records: SubRecord[] = [];
    for (const s of subs as ReadonlyArray<SubRecord>) {
      const r: SubRecord = { topic: s.topic, qos: s.qos, ...(s.rh !== undefined ? { rh: s.rh } : {}), ...(s.rap !== undefined ? { rap: s.rap } : {}), ...(s.nl !== undefined ? { nl: s.nl } : {}) };
      m.set(s.topic, r);
      records.push(r);
    }
    await this.#log({ op: 'sub', c: client.id, s: records }, undefined, true);
  }

  override async removeSubscriptions(client: { id: string }, topics: ReadonlyArray<string>): Promise<void> {
    await super.removeSubscriptions(client, topics);
    const m = this.#subs.get(client.id);
    for (const t of topics) m?.delete(t);
    if (m?.size === 0) this.#subs.delete(client.id);
    await this.#log({ op: 'unsub', c: client.id, s: [...topics] }, undefined, true);
  }

  override async cleanSubscriptions(client: { id: string }): Promise<void> {
    await super.cleanSubscriptions(client);
    if (!this.#subs.delete(client.id) && !this.#replaying) return;
    await this.#log({ op: 'clean', c: client.id }, undefined, true);
  }

  // ---- messages ----------------------------------------------------------------------------
  override async storeRetained(packet: object): Promise<void> {
    await super.storeRetained(packet);
    const p = packet as StoredPacket;
    if (p.payload.length === 0) this.#retained.delete(p.topic);
    else this.#retained.set(p.topic, { ...p });
    await this.#log(packetHeader('ret', p, {}), p.payload, true);
  }

  override async outgoingEnqueue(sub: { clientId: string }, packet: object): Promise<void> {
    await this.outgoingEnqueueCombi([sub], packet);
  }

  /**
   * Queues the message in memory and in the journal, and resolves at once: aedes then delivers it to
   * the live sessions without waiting for the fdatasync (an alarm reaches the alerts process a disk
   * flush sooner, and under load that flush queues behind InfluxDB's own). The PUBACK still waits:
   * ack-after-publish.ts asks whenDurable() after broker.publish and answers only once it resolves.
   * A crash in between loses nothing acknowledged: the device, without its PUBACK, sends the message
   * again [MQTT-4.4.0-1], and a subscriber that already had it gets it twice, as after any QoS 1
   * redelivery: ingest writes it idempotently (same series and device ts), and the alerts process
   * keeps one open alert per signal.
   */
  override outgoingEnqueueCombi(all: ReadonlyArray<{ clientId: string }>, packet: object): Promise<void> {
    const subs = this.admit(oncePerSession(all), packet);
    // aedes calls this for every QoS ≥ 1 publish, also with no subscription: nothing to keep then.
    if (subs.length === 0) return RESOLVED;
    // Not async, and no promise of its own per message (the journal's is shared by its commit): this
    // runs for every QoS 1 message, and each promise is garbage the broker collects at that rate.
    try {
      this.enqueueNow(subs, packet);
      const p = packet as StoredPacket;
      const clientIds: string[] = [];
      for (const s of subs) clientIds.push(s.clientId);
      // Same keys, same order as packetHeader('enq', …): built directly, without the spread.
      // A rejection (store closing) reaches the PUBACK through whenDurable(), which then is not sent.
      this.#lastDurable = this.#log({ op: 'enq', c: clientIds, t: p.topic, q: p.qos, r: p.retain, b: p.brokerId, n: p.brokerCounter }, p.payload, true);
      return RESOLVED;
    } catch (err) {
      // What the async version did with a throw: aedes gets a rejection, not an exception in its callback.
      return Promise.reject(err as Error);
    }
  }

  /**
   * Resolves once every message queued so far is on disk. Commits complete in append order, so the
   * newest one's promise covers all earlier ones; asked right after a publish, it covers that one.
   */
  whenDurable(): Promise<void> {
    return this.#lastDurable;
  }

  override outgoingClearMessageId(client: { id: string }, packet: { messageId?: number; brokerId?: string; brokerCounter?: number }): Promise<unknown> {
    // Synchronous underneath (memory-persistence.ts): one promise per subscriber PUBACK, not three.
    const cleared = this.queues.get(client.id)?.clear(client, packet) as StoredPacket | undefined;
    this.cleared(client.id);
    if (cleared?.brokerId !== undefined && cleared.brokerCounter !== undefined) {
      void this.#log({ op: 'clr', c: client.id, b: cleared.brokerId, n: cleared.brokerCounter }, undefined, false);
    }
    return Promise.resolve(cleared);
  }

  // ---- wills -------------------------------------------------------------------------------
  /**
   * Journaled without waiting for the disk: aedes answers CONNACK only after putWill resolves, and
   * with a wait every CONNECT of a reconnecting fleet queued for a group commit's fdatasync (5–15 ms
   * under load) and held a promise. Nothing acknowledged depends on it: a will is the broker's
   * promise to publish an offline status if the connection dies, not a message a device handed over.
   * The record goes to disk with the next commit (at the latest 100 ms later, LAZY_COMMIT_MS), and
   * the journal is written in order, so it is durable before anything the device gets a PUBACK for
   * afterwards (its online status, retained QoS 1, is the first). A crash inside that window leaves
   * the previous will of the same device (if any) or none: the next broker then publishes no will
   * for a device that also does not come back, and the alerts' heartbeat budget reports it offline
   * (docs/broker.md "Persistence"), as for any device that falls silent without a will.
   */
  async putWill(client: { id: string }, packet: StoredPacket): Promise<void> {
    packet.brokerId = this.#brokerId;
    packet.clientId = client.id;
    this.#wills.set(client.id, packet as StoredPacket & { clientId: string; brokerId: string });
    void this.#log(packetHeader('will', packet, { c: client.id }), packet.payload, false);
  }

  /**
   * delWill then putWill of one CONNECT, in one step (clean-connect.ts uses it when the store has it).
   * A device reconnecting after a restart sets the will it had: the journal already holds that will
   * (replayed, or appended earlier by this process), so nothing is appended, and the in-memory copy
   * takes this broker's id (aedes must not publish it as a dead broker's while the device is here).
   * After a crash every stored will is a dead broker's whichever id it carries, so the state a replay
   * rebuilds is the same. Otherwise one 'will' record (it replaces the old one on replay: no 'unwill'
   * before it), or an 'unwill' when the device sets none. Journaling the will and its removal was
   * 4.5 % of the broker's CPU in a 5,000-device reconnect burst, two records per device.
   */
  replaceWill(client: { id: string }, packet: StoredPacket | null | undefined): Promise<void> {
    const old = this.#wills.get(client.id);
    if (packet == null) {
      if (old !== undefined) {
        this.#wills.delete(client.id);
        void this.#log({ op: 'unwill', c: client.id }, undefined, false);
      }
      return RESOLVED;
    }
    packet.brokerId = this.#brokerId;
    packet.clientId = client.id;
    this.#wills.set(client.id, packet as StoredPacket & { clientId: string; brokerId: string });
    if (old !== undefined && sameWill(old, packet)) return RESOLVED;
    void this.#log(packetHeader('will', packet, { c: client.id }), packet.payload, false);
    return RESOLVED;
  }

  async getWill(client: { id: string }): Promise<StoredPacket | undefined> {
    return this.#wills.get(client.id);
  }

  /**
   * Not waited for, as putWill: the record goes to disk in order with the next commit. Awaiting it
   * only added a rejection once the store is closed, and aedes' storeWill chains delWill with
   * `.finally` alone, so a persistent-session CONNECT of a client id with a stored will that reached it
   * during the broker's close was an unhandled rejection (a crash at exit). A removal the closed store could not record
   * leaves the will in the journal: after a restart it is published as a dead broker's will (the
   * device's offline status), which its next online status corrects.
   */
  async delWill(client: { id: string }): Promise<StoredPacket | undefined> {
    const will = this.#wills.get(client.id);
    this.#wills.delete(client.id);
    if (will !== undefined) void this.#log({ op: 'unwill', c: client.id }, undefined, false);
    return will;
  }

  /** Wills of brokers that are not alive (aedes publishes them; a crashed broker's included). */
  streamWill(brokers: Record<string, unknown> = {}): Readable {
    return Readable.from([...this.#wills.values()].filter((w) => !brokers[w.brokerId]));
  }

  // ---- inbound QoS 2 -----------------------------------------------------------------------
  /**
   * Not waited for, as putWill. ack-after-publish.ts stores the packet only once the message's queue
   * entries are durable, and sends PUBREC after: the record follows them in the journal, so a stored
   * packet on disk always means the message is (a resend it marks as a duplicate is not published
   * again, so it must not precede them). Before PUBREC is on disk it need not be: a device that has
   * the PUBREC sends only PUBREL, which gets PUBCOMP whether the packet is there or not; one without
   * it resends the message, published again without the packet (at least once). Awaiting it cost a
   * second fdatasync per QoS 2 message.
   */
  async incomingStorePacket(client: { id: string }, packet: StoredPacket): Promise<void> {
    let m = this.#incoming.get(client.id);
    if (m === undefined) this.#incoming.set(client.id, (m = new Map()));
    const id = Number(packet.messageId);
    const stored: StoredPacket = { cmd: 'publish', topic: packet.topic, payload: packet.payload, qos: packet.qos, retain: packet.retain, dup: false, messageId: id, ...(packet.brokerId !== undefined ? { brokerId: packet.brokerId } : {}), ...(packet.brokerCounter !== undefined ? { brokerCounter: packet.brokerCounter } : {}) };
    m.set(id, stored);
    void this.#log(packetHeader('in', stored, { c: client.id, m: id }), stored.payload, false);
  }

  async incomingGetPacket(client: { id: string }, packet: { messageId?: number }): Promise<StoredPacket> {
    const p = this.#incoming.get(client.id)?.get(Number(packet.messageId));
    if (p === undefined) throw new Error('no such packet');
    return p;
  }

  async incomingDelPacket(client: { id: string }, packet: { messageId?: number }): Promise<void> {
    const m = this.#incoming.get(client.id);
    const id = Number(packet.messageId);
    if (m?.delete(id) !== true) throw new Error('no such packet');
    await this.#log({ op: 'unin', c: client.id, m: id }, undefined, false);
  }

  async cleanIncoming(client: { id: string }): Promise<void> {
    if (this.#incoming.delete(client.id)) await this.#log({ op: 'cleanin', c: client.id }, undefined, false);
  }

  override async destroy(): Promise<void> {
    await this.#journal.close();
    await super.destroy();
  }
}
