import { Readable } from 'node:stream';
import AsyncMemoryPersistence, { type OutgoingPacket as Packet } from 'aedes-persistence/asyncPersistence.js';

/** aedes-packet's constructor, as aedes-persistence re-exports it (a copy with messageId cleared). */
const PacketCtor = (AsyncMemoryPersistence as unknown as { Packet: new (original: object) => Packet }).Packet;

/**
 * aedes-persistence's in-memory store with an indexed outgoing queue. The stock one keeps each
 * persistent session's unacknowledged QoS 1 messages in an array and finds the one a PUBACK clears
 * (and the one a delivery numbers) by a linear scan, plus a splice: O(queue) per message. With
 * svc-ingest and svc-alerts holding persistent sessions that see every device message, that scan was
 * the broker's largest cost (41 % of its CPU at 12,000 msg/s, issue 6 profile). Here each session's
 * queue is a Map in queue order plus two indexes, so enqueue, update and clear are O(1), with the
 * same results as the stock scans:
 *  - update: the first entry that has the packet's brokerId and brokerCounter (it gets the
 *    messageId) or is another broker's with the same messageId (it is replaced); else 'no such packet';
 *  - clear: the FIRST (oldest) entry holding that messageId is removed and returned;
 *  - stream: a copy of the queue in order.
 * Other state (subscriptions, retained, wills, incoming QoS 2) is the stock implementation's.
 */
interface Entry {
  packet: Packet;
}

export class SessionQueue {
  private next = 0;
  /** Queue order = Map insertion order. */
  readonly entries = new Map<number, Entry>();
  /**
   * brokerId → brokerCounter → entry keys, oldest first (one message queued twice for a session
   * shares it). Two levels, not one `${brokerId}:${counter}` string: that string was built twice
   * per message and session, a visible share of the broker's allocations at 10,000 msg/s.
   */
  private readonly byCounter = new Map<string, Map<number, number[]>>();
  /** messageId → entry keys holding it, oldest first. */
  private readonly byMessageId = new Map<number, number[]>();
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
    SessionQueue.add(this.counters(packet), packet.brokerCounter ?? 0, key);
    this.indexMessageId(packet.messageId, key);
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

  // The stock scans compare with ===, so an unnumbered entry matches an unnumbered packet (keysWith).
  private indexMessageId(id: number | undefined, key: number): void {
    if (id !== undefined) SessionQueue.add(this.byMessageId, id, key);
    else if (key > this.unnumberedMax) {
      this.unnumbered.add(key);
      this.unnumberedMax = key;
    } else this.unnumbered = new Set([...this.unnumbered, key].sort((a, b) => a - b));
  }

  private unindexMessageId(id: number | undefined, key: number): void {
    if (id !== undefined) SessionQueue.remove(this.byMessageId, id, key);
    else this.unnumbered.delete(key);
  }

  /** Entry keys holding `id` (undefined: the unnumbered ones), oldest first. */
  private keysWith(id: number | undefined): Iterable<number> {
    return id !== undefined ? (this.byMessageId.get(id) ?? []) : this.unnumbered;
  }

  private setMessageId(key: number, entry: Entry, id: number | undefined): void {
    this.unindexMessageId(entry.packet.messageId, key);
    entry.packet.messageId = id;
    this.indexMessageId(id, key);
  }

  update(packet: Packet): boolean {
    // The stock scan takes the first entry, in queue order, that either has this broker's id and
    // counter (it gets the messageId) or belongs to another broker and has the same messageId (it
    // is replaced). Both candidates come from the indexes; the earlier one wins.
    const own = this.byCounter.get(packet.brokerId ?? '')?.get(packet.brokerCounter ?? 0)?.[0];
    let other: number | undefined;
    for (const k of this.keysWith(packet.messageId)) {
      if (own !== undefined && k > own) break;
      if ((this.entries.get(k) as Entry).packet.brokerId !== packet.brokerId) {
        other = k;
        break;
      }
    }
    if (other !== undefined) {
      const e = this.entries.get(other) as Entry;
      SessionQueue.remove(this.counters(e.packet), e.packet.brokerCounter ?? 0, other);
      this.unindexMessageId(e.packet.messageId, other);
      e.packet = packet;
      SessionQueue.add(this.counters(packet), packet.brokerCounter ?? 0, other);
      this.indexMessageId(packet.messageId, other);
      return true;
    }
    if (own === undefined) return false;
    this.setMessageId(own, this.entries.get(own) as Entry, packet.messageId);
    return true;
  }

  /** Removes the oldest entry of this broker id and counter (journal replay, where messageIds mean nothing). */
  clearByCounter(brokerId: string, brokerCounter: number): void {
    const key = this.byCounter.get(brokerId)?.get(brokerCounter)?.[0];
    if (key === undefined) return;
    const entry = this.entries.get(key) as Entry;
    this.entries.delete(key);
    this.unindexMessageId(entry.packet.messageId, key);
    SessionQueue.remove(this.counters(entry.packet), brokerCounter, key);
  }

  clear(messageId: number | undefined): Packet | undefined {
    const [key] = this.keysWith(messageId);
    if (key === undefined) return undefined;
    const entry = this.entries.get(key) as Entry;
    this.entries.delete(key);
    this.unindexMessageId(messageId, key);
    SessionQueue.remove(this.counters(entry.packet), entry.packet.brokerCounter ?? 0, key);
    return entry.packet;
  }
}

export class IndexedMemoryPersistence extends AsyncMemoryPersistence {
  protected readonly queues = new Map<string, SessionQueue>();

  protected queue(clientId: string): SessionQueue {
    let q = this.queues.get(clientId);
    if (q === undefined) this.queues.set(clientId, (q = new SessionQueue()));
    return q;
  }

  override async outgoingEnqueue(sub: { clientId: string }, packet: object): Promise<void> {
    this.queue(sub.clientId).push(new PacketCtor(packet));
  }

  override async outgoingEnqueueCombi(subs: ReadonlyArray<{ clientId: string }>, packet: object): Promise<void> {
    this.enqueueNow(subs, packet);
  }

  /** outgoingEnqueueCombi's work, synchronously (the durable store adds its journal record). */
  protected enqueueNow(subs: ReadonlyArray<{ clientId: string }>, packet: object): void {
    for (const sub of subs) this.queue(sub.clientId).push(new PacketCtor(packet));
  }

  override async outgoingUpdate(client: { id: string }, packet: object): Promise<void> {
    if (!this.queue(client.id).update(packet as Packet)) throw new Error('no such packet');
  }

  override async outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<unknown> {
    return this.queues.get(client.id)?.clear(packet.messageId);
  }

  override outgoingStream(client: { id: string }): Readable {
    // A copy, so a delivery that changes the queue meanwhile cannot disturb the stream.
    return Readable.from([...(this.queues.get(client.id)?.entries.values() ?? [])].map((e) => e.packet));
  }
}
