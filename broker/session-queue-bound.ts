import { parseTopic } from '../contract/topics.ts';

/**
 * The bound on what the persistent sessions may have queued (limits.sessionQueueMaxBytes), shared by
 * the broker's stores (memory-persistence.ts and the durable store on it; redis-persistence.ts).
 * Without it a service away (svc-ingest crash-looping, or InfluxDB down past ingest's spool) had
 * every reading of the site queued, without end: in the broker's memory, ~0.8 KB each, at the
 * province's 7,000 msg/s the heap's 4 GB in about 12 minutes, then the broker died, with it every
 * device's connection and every alarm, and its restart replayed the same store into the same death;
 * in Redis, its host's memory.
 *
 * One session may fill the bound, and so may all together (session 26: it was per session, so ingest
 * partitioned by home, one session per home, docs/scaling.md, could queue 1,000 bounds, and a review
 * queued 15.9 MB in 20 sessions under a 1 MiB bound). Once the sessions' queues together reach it,
 * a session holding at least its share of it (the bound over the sessions that have a queue) gets no
 * more readings: the largest go first, and a session that keeps up (a near-empty queue) is never cut
 * because another was abandoned. Together they then hold at most about twice the bound (those over
 * their share stay where they were while the others fill theirs).
 */
/** Every session's queue of a store together: what QueueBounds shares the bound by. Kept up to date by the store, read per message. */
export interface QueueTotals {
  /** Accounted bytes of every queue. */
  bytes: number;
  /** Sessions whose queue holds anything. */
  sessions: number;
}

export interface SessionQueueBound {
  /** Accounted bytes (payload, topic, QUEUE_ENTRY_OVERHEAD_BYTES) a session's queue, and every session's together, may hold before readings are not queued (above). */
  readonly maxBytes: number;
  /** The session's queue reached the bound: its readings are not queued until it is below 90 % of it again (said once per episode). */
  readonly onFull?: (clientId: string, queuedBytes: number) => void;
  /** The session's queue fell back below 90 % of the bound: readings are queued again; `dropped` meanwhile (not queued; a connected session may have had some live). */
  readonly onRoom?: (clientId: string, dropped: number) => void;
}

/**
 * Memory a queued entry holds beyond its payload and topic: the entry, its index slots, aedes'
 * Packet copy, and the socket read a payload slice keeps alive. Measured on node 20 (session 25,
 * durable store, 600,000 readings of ~100 B on a 47 B topic queued for one offline session, after a
 * full GC): 478 B of heap and 333 B of buffers a reading, 811 B in all, less the 147 B counted
 * apart. Used to account a session's queue against limits.sessionQueueMaxBytes, so that the bound
 * means about what the queue costs.
 */
export const QUEUE_ENTRY_OVERHEAD_BYTES = 664;

/** What a queued message is accounted at (QUEUE_ENTRY_OVERHEAD_BYTES above). A PUBREL has no payload. */
export function accountedBytes(p: object): number {
  const { payload, topic } = p as { payload?: { length?: unknown }; topic?: unknown };
  const n = payload?.length;
  return QUEUE_ENTRY_OVERHEAD_BYTES + (typeof n === 'number' ? n : 0) + (typeof topic === 'string' ? topic.length : 0);
}

/**
 * What a full queue may still take: everything but QoS 1 readings. Events (a fire alarm, a fall),
 * statuses and alert changes are few (a device's events and status changes, not its readings) and
 * each can mean danger, so a session at its bound still gets every one of them; readings are the
 * volume and the history, and the alerts process has had them live. A QoS 2 copy must be queued
 * (outgoingUpdate closes a connection that gets one without its entry); devices publish readings at
 * QoS 0 or 1 (docs/protocol.md).
 */
export function droppableAtBound(packet: object): boolean {
  const { topic, qos } = packet as { topic?: unknown; qos?: unknown };
  if (typeof topic !== 'string' || qos !== 1) return false;
  const t = parseTopic(topic);
  return t?.kind === 'device' && t.channel === 'telemetry';
}

/** What a bounded store tells the broker's stats (broker_session_queue_* metrics). */
export interface BoundedStore {
  /** Readings not queued for a session at its bound, since start. */
  readonly droppedAtBound: number;
  /** The largest session queue now, in accounted bytes (the Redis store: as last read, ≤ 1 s old). */
  largestQueueBytes(): number;
}

/** Whether a store keeps the bound (the disk, memory and Redis stores do; a test's may not). */
export function isBoundedStore(store: object | undefined): store is BoundedStore {
  return store !== undefined && typeof (store as Partial<BoundedStore>).largestQueueBytes === 'function';
}

/** A session leaves the "full" state below this share of its bound, so the log says it once per episode. */
const ROOM_AT = 0.9;

/**
 * The episodes of sessions at their bound and what was left out, for a store that says how many
 * accounted bytes a session's queue holds.
 */
export class QueueBounds {
  readonly #bound: SessionQueueBound;
  /** Every session's queue together (the store keeps it; read, never written here). */
  readonly #totals: Readonly<QueueTotals> | undefined;
  /** Sessions at their bound now → readings left out for them in this episode. */
  readonly #full = new Map<string, number>();
  #dropped = 0;

  constructor(bound: SessionQueueBound, totals?: Readonly<QueueTotals>) {
    this.#bound = bound;
    this.#totals = totals;
  }

  /** What a session may hold now: the bound, or its share of it once every queue together reached it. */
  #limit(): number {
    const max = this.#bound.maxBytes;
    const t = this.#totals;
    return t === undefined || t.bytes < max ? max : max / Math.max(1, t.sessions);
  }

  /** Readings not queued for a session at its bound, since start. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * The sessions a message is queued for: `subs` but those at their bound when it is a reading.
   * `bytesOf`: a session's queue now, for this message (undefined: nothing queued); made once by the
   * store, not per message. Nothing is allocated unless one is left out (this runs for every QoS 1
   * message; a closure per message showed in the broker's GC time in session 24).
   */
  admit<T extends { clientId: string }>(subs: ReadonlyArray<T>, packet: object, bytesOf: (clientId: string, packet: object) => number | undefined): ReadonlyArray<T> {
    let out: T[] | undefined;
    let reading: boolean | undefined;
    for (let i = 0; i < subs.length; i++) {
      const s = subs[i] as T;
      const bytes = bytesOf(s.clientId, packet);
      // Within an episode (ROOM_AT) readings stay out until the session has room: one gap in its
      // history, not one reading let in for each it takes.
      const n = this.#full.get(s.clientId);
      if (bytes === undefined || (n === undefined && bytes < this.#limit()) || !(reading ??= droppableAtBound(packet))) {
        out?.push(s);
        continue;
      }
      out ??= subs.slice(0, i);
      this.#dropped++;
      this.#full.set(s.clientId, (n ?? 0) + 1);
      if (n === undefined) this.#bound.onFull?.(s.clientId, bytes);
    }
    return out ?? subs;
  }

  /** Whether the session is at its bound now (its readings are being left out). */
  inEpisode(clientId: string): boolean {
    return this.#full.has(clientId);
  }

  /** After a session's queue shrank to `bytes`: a full session with room again hears so (ROOM_AT). */
  shrunk(clientId: string, bytes: number): void {
    if (this.#full.size === 0) return;
    const dropped = this.#full.get(clientId);
    if (dropped === undefined || bytes >= ROOM_AT * this.#limit()) return;
    this.#full.delete(clientId);
    this.#bound.onRoom?.(clientId, dropped);
  }
}
