import { Readable } from 'node:stream';
import AsyncMemoryPersistence, { type OutgoingPacket as Packet } from 'aedes-persistence/asyncPersistence.js';
import { accountedBytes, QueueBounds, type QueueTotals, type SessionQueueBound } from './session-queue-bound.ts';

/** aedes-packet's constructor, as aedes-persistence re-exports it (a copy with messageId cleared). */
const PacketCtor = (AsyncMemoryPersistence as unknown as { Packet: new (original: object) => Packet }).Packet;

function isQoS1Publish(p: object): boolean {
  const q = p as { cmd?: unknown; qos?: unknown };
  return (q.cmd ?? 'publish') === 'publish' && q.qos === 1;
}

/** MQTT packet identifiers are 1 … 65,535 (MQTT 3.1.1 §2.3.1: a non-zero 16-bit integer). */
export const MAX_PACKET_ID = 65_535;

/**
 * The next packet id not in flight on this connection, from aedes' own counter (Client#_nextId, which
 * aedes' QoSPacket reads and advances the same way), which it then advances past the id taken;
 * undefined when all 65,535 are in flight.
 */
export function freePacketId(client: object, inFlight: { has(id: number): boolean }): number | undefined {
  const c = client as { _nextId?: unknown };
  let id = typeof c._nextId === 'number' && c._nextId >= 1 && c._nextId <= MAX_PACKET_ID ? c._nextId : 1;
  for (let tries = 0; inFlight.has(id); tries++) {
    if (tries >= MAX_PACKET_ID) return undefined;
    id = id >= MAX_PACKET_ID ? 1 : id + 1;
  }
  c._nextId = id >= MAX_PACKET_ID ? 1 : id + 1;
  return id;
}

/**
 * aedes-persistence's in-memory store with an indexed outgoing queue. The stock one keeps each
 * persistent session's unacknowledged QoS 1 messages in an array and finds the one a PUBACK clears
 * (and the one a delivery numbers) by a linear scan, plus a splice: O(queue) per message. With
 * svc-ingest and svc-alerts holding persistent sessions that see every device message, that scan was
 * the broker's largest cost (41 % of its CPU at 12,000 msg/s, issue 6 profile). Here each session's
 * queue is a Map in queue order plus indexes, so enqueue, update and clear are O(1).
 *
 * A packet id means something only on the connection that gave it [MQTT-2.3.1-2 … -4]; the stock
 * scans forget that, and lost messages (session 7: one acknowledged reading in a chaos run):
 *  - clear: the stock scan removes the OLDEST entry holding the id. After a reconnect the queue still
 *    holds entries numbered on the dead connection until aedes resends them with fresh ids; a PUBACK
 *    on the new connection for a fresh id that one of those stale entries also holds removed the
 *    stale entry (never delivered again: lost) and left the acknowledged one (delivered twice).
 *    Here an id clears only an entry numbered with it by the same connection (aedes passes its
 *    Client object, one per connection), and a retained copy's PUBACK (not queued) clears nothing.
 *  - update: the stock scan gives the id to the first entry with the packet's broker id and counter,
 *    or REPLACES the first entry of another broker id holding the same id. That replacement is meant
 *    for PUBREL (aedes' pubrec handler stores a PUBREL, which has no broker id, over the QoS 2
 *    publish), but a restarted broker has a new broker id, so a message recovered from the store and
 *    numbered on an earlier connection was overwritten by a new message that got the same id: lost.
 *    Here a publish is numbered only by its own broker id and counter; only a PUBREL replaces.
 *  - clear of an unnumbered publish (aedes' refused forward passes the packet it did not send):
 *    by its broker id and counter, not "the oldest unnumbered entry" of the session.
 *  - two entries in flight on one connection never share an id [MQTT-2.3.1-2] (review of session 25:
 *    an acknowledged reading lost). aedes numbers from a counter that starts at a random id and skips
 *    nothing in use (lib/qos-packet.js), and resends a reconnecting session's queue with the ids its
 *    messages had on the dead connection: a new message could get an id a resent one held, and so
 *    could the 65,536th unacknowledged message of one connection (the counter wraps). The index kept
 *    the newer and the subscriber's PUBACK for the older cleared the newer (its 'clr' journalled: gone
 *    if ingest died before storing it). The later of the two now gets the next free id (freePacketId,
 *    as redis-persistence.ts does: QoS 1 receivers keep no state by id); with all 65,535 in flight the
 *    delivery fails and aedes closes the connection (the message stays queued for the next one).
 * test/broker/memory-persistence.test.ts checks these against a plain model of the queue.
 * Other state (subscriptions, retained, wills, incoming QoS 2) is the stock implementation's.
 */
interface Entry {
  packet: Packet;
  /** The connection (aedes' Client object) that gave packet.messageId; ids mean nothing on another. */
  conn?: object | undefined;
}

export class SessionQueue {
  private next = 0;
  /** Queue order = Map insertion order. */
  readonly entries = new Map<number, Entry>();
  #bytes = 0;
  /** Every queue of the store together (QueueTotals), kept as each changes: the bound's total. */
  readonly #totals: QueueTotals | undefined;

  constructor(totals?: QueueTotals) {
    this.#totals = totals;
  }

  /** The entries' accounted bytes (accountedBytes), against limits.sessionQueueMaxBytes. */
  get bytes(): number {
    return this.#bytes;
  }

  #account(delta: number): void {
    const before = this.#bytes;
    this.#bytes += delta;
    const t = this.#totals;
    if (t === undefined) return;
    t.bytes += delta;
    if (before === 0 && this.#bytes > 0) t.sessions++;
    else if (before > 0 && this.#bytes === 0) t.sessions--;
  }
  /**
   * brokerId → brokerCounter → entry keys, oldest first (one message queued twice for a session
   * shares it). Two levels, not one `${brokerId}:${counter}` string: that string was built twice
   * per message and session, a visible share of the broker's allocations at 10,000 msg/s.
   */
  private readonly byCounter = new Map<string, Map<number, number[]>>();
  /**
   * Per connection (aedes' Client object), packet id → the entry it numbered with it. One entry per id
   * and connection (update moves a clashing delivery to a free id), so a PUBACK names exactly one.
   */
  private readonly byConn = new WeakMap<object, Map<number, number>>();
  /**
   * Keys of the unnumbered entries (queued, not yet delivered: most of a backed-up queue), oldest
   * first. aedes clears an unnumbered entry for every message it decides not to forward (its
   * per-client `dedupe`, a refused `authorizeForward`); found by a scan, that was O(queue) per drop
   * and collapsed the broker in session 2 (issue 6). Set order is key order because keys only
   * grow; the rare older key that becomes unnumbered again re-sorts the set.
   */
  private unnumbered = new Set<number>();
  private unnumberedMax = -1;

  private counters(p: { brokerId?: string }): Map<number, number[]> {
    const id = p.brokerId ?? '';
    let m = this.byCounter.get(id);
    if (m === undefined) this.byCounter.set(id, (m = new Map()));
    return m;
  }

  push(packet: Packet): void {
    const key = this.next++;
    this.entries.set(key, { packet });
    this.#account(accountedBytes(packet));
    SessionQueue.add(this.counters(packet), packet.brokerCounter ?? 0, key);
    // Queued unnumbered (PacketCtor clears the id); one that has an id has no connection to mean it on.
    this.indexMessageId(packet.messageId, key, undefined);
  }

  private static add<K>(index: Map<K, number[]>, k: K, key: number): void {
    const list = index.get(k);
    if (list === undefined) index.set(k, [key]);
    else {
      let i = list.length;
      while (i > 0 && (list[i - 1] as number) > key) i--;
      list.splice(i, 0, key);
    }
  }

  private static remove<K>(index: Map<K, number[]>, k: K, key: number): void {
    const list = index.get(k);
    if (list === undefined) return;
    const i = list.indexOf(key);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) index.delete(k);
  }

  // The unnumbered set is in queue order (clear of a packet that names nothing takes the oldest).
  private indexMessageId(id: number | undefined, key: number, conn: object | undefined): void {
    if (id !== undefined) {
      if (conn === undefined) return;
      let ids = this.byConn.get(conn);
      if (ids === undefined) this.byConn.set(conn, (ids = new Map()));
      ids.set(id, key);
    } else if (key > this.unnumberedMax) {
      this.unnumbered.add(key);
      this.unnumberedMax = key;
    } else this.unnumbered = new Set([...this.unnumbered, key].sort((a, b) => a - b));
  }

  private unindexMessageId(id: number | undefined, key: number, conn: object | undefined): void {
    if (id === undefined) {
      this.unnumbered.delete(key);
      return;
    }
    const ids = conn === undefined ? undefined : this.byConn.get(conn);
    if (ids?.get(id) === key) ids.delete(id);
  }

  /** The entry `conn` gave `id` (in flight on that connection), if any. */
  holderOf(id: number, conn: object): number | undefined {
    return this.byConn.get(conn)?.get(id);
  }

  /**
   * A delivery on `conn` about to go out as `packet.messageId` while another entry (not `own`) is in
   * flight there with that id: the packet takes the next free id instead (the aedes packet is the
   * one written, so the subscriber sees the new id). Throws when all 65,535 are in flight.
   */
  unclash(conn: object, packet: { messageId?: number | undefined }, own?: number): void {
    const id = packet.messageId;
    if (id === undefined) return;
    const holder = this.holderOf(id, conn);
    if (holder === undefined || holder === own) return;
    const ids = this.byConn.get(conn) as Map<number, number>;
    const free = freePacketId(conn, ids);
    if (free === undefined) throw new Error(`no free packet id: ${MAX_PACKET_ID} messages unacknowledged on this connection`);
    packet.messageId = free;
  }

  private setMessageId(key: number, entry: Entry, id: number | undefined, conn: object): void {
    this.unindexMessageId(entry.packet.messageId, key, entry.conn);
    entry.packet.messageId = id;
    entry.conn = conn;
    this.indexMessageId(id, key, conn);
  }

  /**
   * A delivery numbers its entry (aedes' outgoingUpdate). A publish carries its broker id and
   * counter: the oldest entry with both gets the id (a message queued twice for the session has two
   * entries; the first is delivered first). A PUBREL has neither: it replaces the entry holding its
   * id on this connection. False when there is no such entry ('no such packet' to aedes).
   * `conn`: the aedes Client delivering it (one object per connection).
   */
  update(conn: object, packet: Packet): boolean {
    if (packet.brokerId === undefined) {
      const key = packet.messageId === undefined ? undefined : this.holderOf(packet.messageId, conn);
      if (key === undefined) return false;
      const e = this.entries.get(key) as Entry;
      SessionQueue.remove(this.counters(e.packet), e.packet.brokerCounter ?? 0, key);
      this.unindexMessageId(e.packet.messageId, key, e.conn);
      this.#account(accountedBytes(packet) - accountedBytes(e.packet));
      e.packet = packet;
      SessionQueue.add(this.counters(packet), packet.brokerCounter ?? 0, key);
      this.indexMessageId(packet.messageId, key, e.conn);
      return true;
    }
    const own = this.byCounter.get(packet.brokerId)?.get(packet.brokerCounter ?? 0)?.[0];
    if (own === undefined) return false;
    this.unclash(conn, packet, own);
    this.setMessageId(own, this.entries.get(own) as Entry, packet.messageId, conn);
    return true;
  }

  /** Removes the oldest entry of this broker id and counter (journal replay, where messageIds mean nothing). */
  clearByCounter(brokerId: string, brokerCounter: number): Packet | undefined {
    const key = this.byCounter.get(brokerId)?.get(brokerCounter)?.[0];
    return key === undefined ? undefined : this.remove(key);
  }

  /**
   * A PUBACK (or PUBCOMP) on `conn` clears the entry that connection numbered with that id; an id
   * no entry of it holds (a retained copy sent at SUBSCRIBE is not queued) clears nothing. Without an id (a
   * publish aedes decided not to forward): that message's unnumbered entry by broker id and counter
   * (or nothing); a packet with neither clears the oldest unnumbered entry (the stock answer).
   */
  clear(conn: object, packet: { messageId?: number | undefined; brokerId?: string | undefined; brokerCounter?: number | undefined }): Packet | undefined {
    if (packet.messageId !== undefined) {
      const key = this.holderOf(packet.messageId, conn);
      return key === undefined ? undefined : this.remove(key);
    }
    if (packet.brokerId !== undefined && packet.brokerCounter !== undefined) {
      // That message's entry or none: never another message in its place.
      for (const key of this.byCounter.get(packet.brokerId)?.get(packet.brokerCounter) ?? []) {
        if ((this.entries.get(key) as Entry).packet.messageId === undefined) return this.remove(key);
      }
      return undefined;
    }
    const [key] = this.unnumbered;
    return key === undefined ? undefined : this.remove(key);
  }

  private remove(key: number): Packet {
    const entry = this.entries.get(key) as Entry;
    this.entries.delete(key);
    this.#account(-accountedBytes(entry.packet));
    this.unindexMessageId(entry.packet.messageId, key, entry.conn);
    SessionQueue.remove(this.counters(entry.packet), entry.packet.brokerCounter ?? 0, key);
    return entry.packet;
  }
}

/**
 * One entry per session: aedes' subscriptionsByTopic returns a session once per matching filter (two
 * overlapping filters, or a refused wider one aedes stored with the granted ones), and a second entry
 * was never cleared by the session's acknowledgements (Redis: a dangling queue head for ever).
 */
export function oncePerSession<T extends { clientId?: unknown }>(subs: ReadonlyArray<T>): ReadonlyArray<T> {
  if (subs.length < 2) return subs;
  const seen = new Set<unknown>();
  const out: T[] = [];
  for (const s of subs) {
    if (seen.has(s.clientId)) continue;
    seen.add(s.clientId);
    out.push(s);
  }
  return out.length === subs.length ? subs : out;
}

export class IndexedMemoryPersistence extends AsyncMemoryPersistence {
  protected readonly queues = new Map<string, SessionQueue>();
  readonly #bounds: QueueBounds | undefined;
  readonly #totals: QueueTotals = { bytes: 0, sessions: 0 };
  readonly #bytesOf = (clientId: string): number | undefined => this.queues.get(clientId)?.bytes;

  constructor(bound?: SessionQueueBound) {
    super();
    this.#bounds = bound === undefined ? undefined : new QueueBounds(bound, this.#totals);
  }

  /** Every session's queue together, in accounted bytes, and how many sessions have one. */
  queueTotals(): Readonly<QueueTotals> {
    return { ...this.#totals };
  }

  /** Readings not queued for a session at its bound (limits.sessionQueueMaxBytes), since start. */
  get droppedAtBound(): number {
    return this.#bounds?.dropped ?? 0;
  }

  /** A session's queue now, in accounted bytes (QUEUE_ENTRY_OVERHEAD_BYTES). */
  queuedBytes(clientId: string): number {
    return this.queues.get(clientId)?.bytes ?? 0;
  }

  /** The largest accounted size of a session's queue now (the broker_session_queue_bytes_max gauge). */
  largestQueueBytes(): number {
    let max = 0;
    for (const q of this.queues.values()) if (q.bytes > max) max = q.bytes;
    return max;
  }

  /** The sessions a message is queued for: `subs` but those at their bound when it is a reading (session-queue-bound.ts). */
  protected admit<T extends { clientId: string }>(subs: ReadonlyArray<T>, packet: object): ReadonlyArray<T> {
    return this.#bounds === undefined ? subs : this.#bounds.admit(subs, packet, this.#bytesOf);
  }

  /** After a session's entry is cleared: a full session with room again hears so. */
  protected cleared(clientId: string): void {
    this.#bounds?.shrunk(clientId, this.queues.get(clientId)?.bytes ?? 0);
  }

  protected queue(clientId: string): SessionQueue {
    let q = this.queues.get(clientId);
    if (q === undefined) this.queues.set(clientId, (q = new SessionQueue(this.#totals)));
    return q;
  }

  override async outgoingEnqueue(sub: { clientId: string }, packet: object): Promise<void> {
    if (this.admit([sub], packet).length === 0) return;
    this.queue(sub.clientId).push(new PacketCtor(packet));
  }

  override async outgoingEnqueueCombi(subs: ReadonlyArray<{ clientId: string }>, packet: object): Promise<void> {
    this.enqueueNow(this.admit(oncePerSession(subs), packet), packet);
  }

  /** outgoingEnqueueCombi's work, synchronously, for sessions already made distinct (oncePerSession; the durable store adds its journal record). */
  protected enqueueNow(subs: ReadonlyArray<{ clientId: string }>, packet: object): void {
    for (const sub of subs) this.queue(sub.clientId).push(new PacketCtor(packet));
  }

  override async outgoingUpdate(client: { id: string }, packet: object): Promise<void> {
    const q = this.queue(client.id);
    if (q.update(client, packet as Packet)) return;
    // A publish whose entry is already gone was acknowledged through its other copy (the queue's,
    // streamed at CONNECT, and the live one of a message emitted after the CONNACK): aedes closes
    // the connection on this error (emptyQueueFilter, writeQoS), so let the copy go out (at least
    // once; its PUBACK clears nothing, so it must not carry an id an entry is in flight with). A
    // PUBREL without its entry is still an error, and so is a QoS 2 copy (its PUBREC would find no
    // entry and close the connection anyway).
    const p = packet as Packet & { qos?: number };
    if (p.brokerId === undefined || p.qos !== 1) throw new Error('no such packet');
    q.unclash(client, p);
  }

  override async outgoingClearMessageId(client: { id: string }, packet: { messageId?: number; brokerId?: string; brokerCounter?: number }): Promise<unknown> {
    const cleared = this.queues.get(client.id)?.clear(client, packet);
    this.cleared(client.id);
    return cleared;
  }

  /** Nothing queued for the session: clean-connect.ts skips aedes' stream pipeline then (a Map lookup). */
  outgoingQueueEmpty(clientId: string): boolean {
    return (this.queues.get(clientId)?.entries.size ?? 0) === 0;
  }

  /** A copy of the session's queued packets, queue order (clean-connect.ts clears them). */
  outgoingPackets(clientId: string): Packet[] {
    return [...(this.queues.get(clientId)?.entries.values() ?? [])].map((e) => e.packet);
  }

  /**
   * The queue a (re)connecting session is sent. A QoS 1 message numbered on another connection goes
   * out renumbered from this connection's counter, not with its old id as aedes would resend it
   * ([MQTT-4.4.0-1]; a QoS 1 receiver keeps no state by id, and after a restart the disk store has
   * always renumbered): its old id is random to this connection's counter, and a retained copy sent
   * at SUBSCRIBE, which aedes numbers from the counter without the store, could get it too; that
   * copy's PUBACK then cleared the resent message (unclash cannot see it). From the counter, every
   * id of the connection comes from one sequence. QoS 2 messages and PUBRELs keep their ids.
   */
  override outgoingStream(client: { id: string }): Readable {
    // A copy, so a delivery that changes the queue meanwhile cannot disturb the stream.
    // (PacketCtor's copy has no id.)
    return Readable.from(this.outgoingPackets(client.id).map((p) => (p.messageId !== undefined && isQoS1Publish(p) ? new PacketCtor(p) : p)));
  }
}
