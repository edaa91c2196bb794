import { Readable } from 'node:stream';
import AsyncRedisPersistence from 'aedes-persistence-redis/asyncPersistence.js';
import { Redis } from 'ioredis';
import msgpack from 'msgpack-lite';
import { corkPerTurn } from './cork-per-turn.ts';
import { STRANDED_AFTER_MS, STRANDED_MARKS, StrandedHeads } from './stranded-head.ts';
import { settlesWithin } from '../common/settles-within.ts';
import { freePacketId, MAX_PACKET_ID, oncePerSession } from './memory-persistence.ts';
import { accountedBytes, droppableAtBound, QueueBounds, type BoundedStore, type QueueTotals, type SessionQueueBound } from './session-queue-bound.ts';

/** The ioredis options we pass on (aedes-persistence-redis hands them to `new Redis(opts)`). */
export interface RedisPersistenceOptions {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: object;
  maxRetriesPerRequest?: number;
  maxSessionDelivery?: number;
}

/**
 * The part of aedes-persistence-redis 11.2's async class we wrap (broker/vendor.d.ts declares only
 * the constructor, the retained streams and destroy). Arguments are aedes' packets and clients,
 * which we pass through untouched.
 */
interface RedisPersistenceBase {
  setup(broker: unknown): Promise<void>;
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<unknown> | Readable;
  createRetainedStream(pattern: string): AsyncIterable<unknown> | Readable;
  subscriptionsByTopic(topic: string): Promise<unknown[]>;
  storeRetained(packet: unknown): Promise<void>;
  outgoingEnqueueCombi(subs: unknown[], packet: unknown): Promise<void>;
  outgoingUpdate(client: unknown, packet: unknown): Promise<void>;
  outgoingClearMessageId(client: unknown, packet: unknown): Promise<unknown>;
  outgoingStream(client: unknown): AsyncIterable<unknown>;
  addSubscriptions(client: unknown, subs: unknown[]): Promise<void>;
  removeSubscriptions(client: unknown, subs: string[]): Promise<void>;
  incomingStorePacket(client: unknown, packet: unknown): Promise<void>;
  incomingDelPacket(client: unknown, packet: unknown): Promise<void>;
  putWill(client: unknown, packet: unknown): Promise<void>;
  delWill(client: unknown): Promise<unknown>;
  countOffline(): Promise<{ subsCount: number; clientsCount: number }>;
  streamWill(brokers: Record<string, number>): AsyncIterable<unknown>;
  destroy(): Promise<void>;
}

/**
 * What to do with a stored will of a dead broker: publish it, delete it unpublished (superseded or
 * not publishable), or leave it for now (another node publishes it).
 */
export type WillAction = 'publish' | 'discard' | 'skip';

/** A stored will as aedes-persistence-redis returns it from streamWill (putWill adds the ids). */
export interface StoredWill {
  readonly clientId: string;
  readonly brokerId: string;
  readonly topic: string;
}

function isStoredWill(w: unknown): w is StoredWill {
  const o = w as Partial<StoredWill> | null;
  return typeof o === 'object' && o !== null && typeof o.clientId === 'string' && typeof o.brokerId === 'string' && typeof o.topic === 'string';
}
const Base = AsyncRedisPersistence as unknown as new (opts: RedisPersistenceOptions & { conn: Redis }) => RedisPersistenceBase;

/**
 * Stored wills, indexed in one SET per node (O(1) to add and remove) instead of the library's one
 * LIST `will` for the whole cluster. aedes-persistence-redis 11 keeps every connected device's will
 * key in that list, `LREM will 0 <key>` on every CONNECT (putWill) and disconnect (delWill): a scan
 * of the whole list, one entry per device of the cluster, 100,000 comparisons per connect at 100,000
 * devices in Redis' one thread. And its will pass reads only `LRANGE will 0 10000`: a dead node's
 * wills past the 10,001st entry were never published (docs/scaling.md "Two costs of the library").
 * Per node, because every node runs the will pass every 4 heartbeats and only a dead node's wills
 * are wanted: one set for the whole cluster made every pass scan every device's will (session 9's
 * first version: SSCAN COUNT 1000 at 2 ms a call, 90 calls per pass per node at 90,000 devices).
 */
const willSet = (brokerId: string): string => `carewatch:broker:wills:${brokerId}`;
/** The aedes ids of the nodes that have (or had) a will set: the will pass reads only the dead ones'. */
export const WILL_BROKERS = 'carewatch:broker:will-brokers';
/** The library's list, read once at start to move an older deployment's entries into the sets. */
const LIBRARY_WILL_LIST = 'will';
/** The library's key of one stored will (asyncPersistence.js willKey). */
const willKey = (brokerId: string, clientId: string): string => `will:${brokerId}:${encodeURIComponent(clientId)}`;
/** Keys read per SSCAN step of the will pass (a dead node's set). */
const WILL_SCAN_COUNT = 500;
/** Forgets a node's will set once it is empty, atomically: a put between the check and the removal would otherwise hide its set. */
const FORGET_EMPTY_WILL_SET = `if redis.call('SCARD', KEYS[2]) == 0 then return redis.call('SREM', KEYS[1], ARGV[1]) end return 0`;

/** The library's keys (asyncPersistence.js outgoingKey, packetKey): a session's queue, and a queued packet. */
export const queueKey = (clientId: string): string => `outgoing:${encodeURIComponent(clientId)}`;
const packetKey = (p: { brokerId?: unknown; brokerCounter?: unknown }): string => `packet:${String(p.brokerId)}:${String(p.brokerCounter)}`;
/** The aedes id of the node that queued a packet, read back from its key (packetKey); undefined for any other key. */
export function packetBrokerId(key: string): string | undefined {
  return /^packet:(.+):\d+$/.exec(key)?.[1];
}

/** The set of a session's acknowledged entries still in its queue (`outgoing:<client>` is the library's list key). */
export const ackedKey = (listKey: string): string => `carewatch:broker:acked:${listKey}`;

/** The sessions (their `outgoing:<client>` list keys) that still hold a queued packet (`packet:<broker id>:<counter>`). */
export const holdersKey = (packetKey: string): string => `carewatch:broker:holders:${packetKey}`;

/**
 * Acknowledged entries a session may have marked and not yet trimmed: past it, an acknowledgement
 * removes its entry with a scan from the head (the library's LREM, count 1) rather than grow the set,
 * so a head nobody acknowledges (a client that never sends the PUBACK of one message on a connection
 * that stays up) bounds the set's memory (~100 bytes a member: ~10 MB) instead of growing it with
 * every message after it. A reconnect resends that head and its PUBACK trims everything behind it.
 */
export const ACKED_BOUND = 100_000;
/**
 * Entries popped from the head by one acknowledgement at most: a long run of marked entries behind a
 * head just acknowledged is trimmed over the following acknowledgements (each adds at most one mark),
 * never holding Redis' one thread for all of them at once.
 */
export const TRIM_STEP = 256;
/** Past ACKED_BOUND: entries from the head within which an acknowledged one is looked for first (LPOS MAXLEN; Redis 6.0.6). */
export const HEAD_WINDOW = 1_000;

/**
 * Acknowledges one entry of a session's queue without scanning it. Entries are RPUSHed in publish
 * order and mostly acknowledged near that order, but not exactly: broker nodes RPUSH then PUBLISH,
 * seconds apart under load, so a service's queue order and delivery order differ by thousands; after
 * a reconnect with a backlog aedes resends the backlog from the head while new messages go live near
 * the tail. Every way of *finding* the entry (LREM from the head, windows from both ends, session 12)
 * cost Redis more the longer the queue: 614 µs a PUBACK as svc-ingest's queue passed a million in the
 * 100,000-device run (a core of Redis at 1,667 msg/s, and every node's fan-out waits behind it).
 *
 * So the entry is not looked for. Each acknowledgement first pops marked entries at the head (at most
 * TRIM_STEP) and its own entry if it is there or comes there; else it marks its entry in the session's
 * acked set (KEYS[2]), to be popped when it reaches the head. O(1) per acknowledgement, amortised,
 * however long the queue. A marked entry still in the list is
 * not resent on a reconnect (outgoingStream below). A queue emptied takes its set with it (a mark for
 * an entry that was never queued does not outlive the queue; a second copy's acknowledgement changes
 * nothing, below).
 * Past ACKED_BOUND marks the entry is removed by a scan, from the end it is likely near: from the
 * head if it is within HEAD_WINDOW of it (a backlog resent after a reconnect is acknowledged in
 * queue order), else from the tail (live deliveries, acknowledged while that backlog drains, are
 * the newest entries). Before session 17 the scan always ran from the head: after a node's SIGKILL
 * in the 100,000-device runs a session's queue passed the bound and each acknowledgement cost Redis
 * 5–42 ms (session 17 run 1: 70,200 of them, ~400 s in which no node's command ran).
 * First of all, the acknowledgement takes its session off the packet's holders (KEYS[3], below): a
 * session that is no longer a holder already had its entry popped or marked, and the last holder
 * deletes the packet (KEYS[4]) and the library's count (KEYS[5]). A packet with neither holders nor
 * count was acknowledged by all its sessions already and written again since (the library's
 * outgoingUpdate SETs the packet it sends: the queue's copy of a message already acknowledged live):
 * it goes, and nothing else changes.
 * Returns the entries removed from the list; when the acknowledgement did not reach the head (its
 * entry marked, or scanned for past the bound), {removed, marks now, the head}: what
 * stranded-head.ts watches.
 */
const ACK_QUEUED = `
if redis.call('EXISTS', KEYS[3]) == 1 then
  if redis.call('SREM', KEYS[3], KEYS[1]) == 0 then return 0 end
  if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('DEL', KEYS[4], KEYS[5]) end
elseif redis.call('EXISTS', KEYS[5]) == 0 then
  redis.call('DEL', KEYS[4])
  return 0
end
local step = tonumber(ARGV[3])
local n = 0
local mine = false
local head = redis.call('LINDEX', KEYS[1], 0)
while head and n < step do
  if head == ARGV[1] and not mine then mine = true
  elseif redis.call('SREM', KEYS[2], head) == 0 then break end
  redis.call('LPOP', KEYS[1])
  n = n + 1
  head = redis.call('LINDEX', KEYS[1], 0)
end
if not head then redis.call('DEL', KEYS[2]) return n end
if mine then return n end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  local removed
  if redis.call('LPOS', KEYS[1], ARGV[1], 'MAXLEN', tonumber(ARGV[4])) then removed = redis.call('LREM', KEYS[1], 1, ARGV[1])
  else removed = redis.call('LREM', KEYS[1], -1, ARGV[1]) end
  return {n + removed, redis.call('SCARD', KEYS[2]), head}
end
redis.call('SADD', KEYS[2], ARGV[1])
return {n, redis.call('SCARD', KEYS[2]), head}`;

type AckQueued = (listKey: string, setKey: string, holders: string, packetKey: string, countKey: string, element: string, bound: number, trimStep: number, headWindow: number) => Promise<number | [number, number, string]>;

/**
 * A queued packet's life, by its holders rather than the library's counter. The library stores a
 * packet once for all the sessions it is queued for, with a count (`<packet>:offlineCount`) set to
 * their number, decremented by every acknowledgement, the packet deleted at 0. But one session can
 * acknowledge one packet twice: a session reconnecting with a backlog has its subscriptions restored
 * before its queue is read (aedes lib/handlers/connect.js: restoreSubs … emptyQueue), so a message
 * arriving in between is sent live and again from the queue, and both copies are acknowledged. Each
 * such second acknowledgement took the packet from a session that had not had it yet: at 0 the packet was
 * deleted, and that session's reconnect found an entry without a packet and dropped it unsent
 * (getDecodedValue). Session 14 found it so: a call point pressed while h02's alerts owner was
 * down, queued for that owner and for ingest, acknowledged twice by ingest (the only other session it was queued for) and lost.
 *
 * So every session a packet is queued for is one of its holders, all of them added before the
 * packet is queued for any (outgoingEnqueueCombi below: with the holders added one RPUSH at a time, a
 * session reconnecting on another node could read and acknowledge the packet before the next
 * session's RPUSH, and delete it from under that one); an acknowledgement counts only if it removes
 * its session from them (ACK_QUEUED: a second one by the same session changes nothing), and the last
 * one deletes the packet and its count. The library's DECR then only reads (HOLDERS_DECR): a packet
 * with holders is not decremented, and one with neither holders nor count (written again after its
 * last acknowledgement) is deleted. A packet an older store queued without holders keeps the
 * library's count.
 */
const HOLDERS_DECR = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('DEL', KEYS[3]) return 1 end
return redis.call('DECR', KEYS[1])`;
/**
 * A session's end (the library DELs its queue): the session leaves the holders of the packets still
 * in it, and a packet it was the last holder of goes. Pops up to ARGV[1] entries from the head (popped,
 * not read by index: acknowledgements on a connection still draining pop the head meanwhile);
 * returns the entries popped (fewer than asked: the end). Marked entries were released at their
 * acknowledgement (SREM finds nothing). LPOP with a count: Redis 6.2.
 */
const RELEASE_QUEUE = `
local items = redis.call('LPOP', KEYS[1], tonumber(ARGV[1]))
if not items then return 0 end
for _, pk in ipairs(items) do
  local h = ARGV[2] .. pk
  if redis.call('SREM', h, KEYS[1]) == 1 and redis.call('EXISTS', h) == 0 then redis.call('DEL', pk, pk .. ARGV[3]) end
end
return #items`;
/** Queue entries released per script call at a session's end (each call holds Redis' one thread). */
const RELEASE_STEP = 1_000;
type ReleaseQueue = (listKey: string, count: number, holdersPrefix: string, countSuffix: string) => Promise<number>;
type HoldersDecr = (countKey: string, holders: string, packetKey: string) => Promise<number>;
/** The library's count key of a packet (asyncPersistence.js packetCountKey). */
const COUNT_SUFFIX = ':offlineCount';

/**
 * The one Redis connection of the store, handed to the library as `conn`, with these changes:
 * - `LREM outgoing:<client> 0 <packet>` (on every PUBACK of a queued message, outgoingClearMessageId,
 *   and for an entry whose packet is gone) becomes ACK_QUEUED. Count 0 scanned a session's whole
 *   queue for every acknowledgement (session 9: 536 µs a call after 30 s at 7,000 msg/s offered,
 *   1,240 µs after 90 s, Redis at 0.9 of a core: quadratic). Each packet key is queued once per
 *   session (outgoingEnqueueCombi RPUSHes it once per subscribing session). An acknowledgement of a
 *   packet the store no longer has (a second copy of one already cleared) comes with no packet key
 *   (the library's pktKey is undefined, sent as ""): nothing is queued under "", so it skips Redis.
 * - `DEL outgoing:<client>` (the library's end of a session) first takes the session off the holders
 *   of every packet still in the queue (RELEASE_QUEUE), then also deletes its acked set.
 * - `DECR <packet>:offlineCount` reads the packet's holders instead (HOLDERS_DECR): a packet lives
 *   while a session holds it (above HOLDERS_DECR; the holders are added by outgoingEnqueueCombi).
 * The library's methods are private (#db), so the rewrite sits on the connection, not in an override.
 */
/** A session whose queue head stays while acknowledgements pile up marks behind it (stranded-head.ts). */
export interface StrandedHeadEvent {
  readonly clientId: string;
  readonly head: string;
  /** The node that queued the head (packetBrokerId), undefined if its key is not a packet's. */
  readonly headNode: string | undefined;
  readonly marks: number;
  /** The same head as a close of this session was already made for: report, do not close again. */
  readonly again: boolean;
}
/** Answers whether the session's connection was closed for the head (then not again for the same head). */
export type StrandedHeadHandler = (event: StrandedHeadEvent) => boolean | Promise<boolean>;

/** The store's knobs that tests turn (defaults: the constants above and stranded-head.ts'). */
export interface StoreTuning {
  readonly ackedBound: number;
  readonly headWindow: number;
  readonly strandedMarks: number;
  readonly strandedAfterMs: number;
  readonly now: () => number;
  readonly onStrandedHead?: StrandedHeadHandler | undefined;
  /**
   * The store's errors that no caller receives: the connection's (each failed reconnect while Redis
   * is away; without a listener ioredis writes every one to stderr as "[ioredis] Unhandled error
   * event", outside the log), and a failed read of a SUBSCRIBE's retained messages.
   */
  readonly onError?: ((err: Error, code: StoreErrorCode) => void) | undefined;
  /** limits.sessionQueueMaxBytes (session-queue-bound.ts); undefined: unbounded. */
  readonly queueBound?: SessionQueueBound | undefined;
  /**
   * How old a session's queue length may be when a message is admitted against the bound (one LLEN
   * per session at most this often, never on a message's own path): at 7,000 msg/s, 1 s lets a
   * full session take ~7,000 readings past its bound, ~5 MB.
   */
  readonly queueLengthMaxAgeMs?: number;
}

export type StoreErrorCode = 'BROKER_STORE_REDIS_ERROR' | 'BROKER_STORE_RETAINED_READ_FAILED';

/** `p` with a handler attached (`onFailed`): a caller that drops it raises no unhandled rejection; one that awaits it still gets the rejection. */
function handled<T>(p: Promise<T>, onFailed: (err: unknown) => void): Promise<T> {
  p.catch(onFailed);
  return p;
}

function storeConnection(opts: RedisPersistenceOptions, tuning: StoreTuning): Redis {
  const { ackedBound, headWindow } = tuning;
  const heads = new StrandedHeads(tuning.strandedAfterMs);
  const conn = new Redis(opts);
  conn.on('error', (err: Error) => tuning.onError?.(err, 'BROKER_STORE_REDIS_ERROR'));
  // ioredis writes each command (and each explicit pipeline or transaction) to the socket when it is
  // called: one syscall each, and one wake-up of Redis. A CONNECT on a cluster node makes about eight
  // of them (subscriptions, will, queue, retained status), a QoS 1 message several: in a reconnect
  // storm the store's writes were 16 % of a node's CPU. Corked per event-loop turn, the commands of
  // all the connections and messages handled in one turn leave in one writev, in the order they were
  // called. Not ioredis' auto-pipelining: it defers single commands to the end of the turn while a
  // transaction or pipeline called later in it is written at once, so the library's and this store's
  // commands would no longer reach Redis in the order they were called; with the cork nothing about
  // order changes. Each reconnect brings a new stream, corked the same way.
  conn.on('connect', () => corkPerTurn(conn.stream));
  const lrem = conn.lrem.bind(conn) as (key: string, count: number, element: string) => Promise<number>;
  const del = conn.del.bind(conn) as (...keys: string[]) => Promise<number>;
  const decr = conn.decr.bind(conn) as (key: string) => Promise<number>;
  conn.defineCommand('carewatchAckQueued', { numberOfKeys: 5, lua: ACK_QUEUED });
  conn.defineCommand('carewatchHoldersDecr', { numberOfKeys: 3, lua: HOLDERS_DECR });
  conn.defineCommand('carewatchReleaseQueue', { numberOfKeys: 1, lua: RELEASE_QUEUE });
  conn.defineCommand('carewatchExpireUnheld', { numberOfKeys: 3, lua: EXPIRE_UNHELD });
  const commands = conn as unknown as { carewatchAckQueued: AckQueued; carewatchHoldersDecr: HoldersDecr; carewatchReleaseQueue: ReleaseQueue };
  const releaseQueue = commands.carewatchReleaseQueue.bind(conn);
  /** Releases every entry of a session's queue (RELEASE_QUEUE), step by step, before its DEL. */
  const release = async (listKey: string): Promise<void> => {
    while ((await releaseQueue(listKey, RELEASE_STEP, holdersKey(''), COUNT_SUFFIX)) === RELEASE_STEP);
  };
  const isQueueKey = (k: unknown): k is string => typeof k === 'string' && k.startsWith('outgoing:') && !k.slice('outgoing:'.length).includes(':');
  const ackQueued = commands.carewatchAckQueued.bind(conn);
  const holdersDecr = commands.carewatchHoldersDecr.bind(conn);
  const isPacketKey = (k: unknown): k is string => typeof k === 'string' && k.startsWith('packet:');
  Object.defineProperty(conn, 'decr', {
    value: (key: string | undefined): Promise<number> => {
      // The library's acknowledgement of a copy whose packet is already gone (its last holder
      // acknowledged it first) decrements `undefined`: ioredis would send DECR "" and leave a key ""
      // at -1, one lower with each such acknowledgement. Nothing is counted then; not 0, so the
      // library deletes nothing.
      if (key === undefined) return Promise.resolve(-1);
      if (!isPacketKey(key) || !key.endsWith(COUNT_SUFFIX)) return decr(key);
      const packet = key.slice(0, -COUNT_SUFFIX.length);
      return holdersDecr(key, holdersKey(packet), packet);
    },
  });
  /** The library's LREM of an entry of a session's queue: the acknowledgement script (ACK_QUEUED). */
  const ackOrRemove = async (key: string, count: number, element: string | undefined): Promise<number> => {
    if (!key.startsWith('outgoing:') || Number(count) !== 0) return lrem(key, count, element ?? '');
    if (element === undefined || element === '') return 0;
    const done = await ackQueued(key, ackedKey(key), holdersKey(element), element, `${element}${COUNT_SUFFIX}`, element, ackedBound, TRIM_STEP, headWindow);
    const onStranded = tuning.onStrandedHead;
    if (Array.isArray(done) && onStranded !== undefined) {
      const [, marks, head] = done;
      if (marks >= tuning.strandedMarks && typeof head === 'string') {
        const clientId = decodeURIComponent(key.slice('outgoing:'.length));
        const verdict = heads.observe(clientId, head, tuning.now());
        // Not awaited: the acknowledgement does not wait for the decision (a liveness read in Redis).
        if (verdict !== 'watching') {
          Promise.resolve()
            .then(() => onStranded({ clientId, head, headNode: packetBrokerId(head), marks, again: verdict === 'stranded-again' }))
            .then((closed) => closed && heads.closed(clientId, head))
            .catch(() => undefined);
        }
      }
    }
    // The library reads 1 as "removed" (its QoS 2 path then queues the PUBREL's key): a marked
    // entry is as good as removed, it is never sent again.
    return 1;
  };
  Object.defineProperty(conn, 'lrem', {
    // The library also calls LREM without waiting (getDecodedValue: an entry whose packet is gone);
    // with Redis failing then, its rejection would be unhandled: handled(), the awaiting callers still get it.
    value: (key: string, count: number, element: string | undefined): Promise<number> =>
      handled(ackOrRemove(key, count, element), (err) => tuning.onError?.(err instanceof Error ? err : new Error(String(err)), 'BROKER_STORE_REDIS_ERROR')),
  });
  Object.defineProperty(conn, 'del', {
    value: async (...keys: string[]): Promise<number> => {
      for (const k of keys) if (isQueueKey(k)) await release(k);
      return del(...keys.flatMap((k) => (typeof k === 'string' && k.startsWith('outgoing:') ? [k, ackedKey(k)] : [k])));
    },
  });
  return conn;
}

/**
 * EXEC's replies, or the first command's error: ioredis resolves a transaction with one [error, reply]
 * pair per command, so a refused command (WRONGTYPE, say) would otherwise pass as written.
 */
async function execOrThrow(tx: ReturnType<Redis['multi']>): Promise<unknown[]> {
  const replies = (await tx.exec()) ?? [];
  const failed = replies.find(([err]) => err !== null);
  if (failed !== undefined) throw failed[0];
  return replies.map(([, reply]) => reply);
}

/** Event-loop turns without a new persistence call before destroy() calls the writes done. */
const QUIET_TURNS = 3;

/**
 * aedes 1.x needs an async persistence (`setup` must be an AsyncFunction). aedes-persistence-redis
 * 11's main export wraps the async class in a callback adapter for aedes 0.x, so we construct its
 * async class directly. With one broker node the mqemitter stays in memory (aedes' default; broker
 * nodes share it through Redis too: redis-mq.ts); the persistence keeps sessions, their queued QoS 1
 * messages, retained statuses and wills in Redis, so a broker restart loses none of them.
 *
 * Version skew: aedes-persistence-redis 11.2 implements the aedes-persistence 10 interface, where
 * the retained-message "streams" are async generators; aedes 1.2 (aedes-persistence 11) calls
 * `.pipe()` on them and crashes with `stream.pipe is not a function` on the first SUBSCRIBE that
 * matches a retained message. The subclass below wraps them in Readable.from. (outgoingStream
 * also returns a generator, but aedes passes it to stream.pipeline, which accepts iterables.)
 *
 * Acknowledged ≠ stored: aedes 1.2 answers a QoS 1 PUBLISH with PUBACK first and only then
 * publishes it (lib/handlers/publish.js: write(PubAck) → broker.publish → storeRetained →
 * enqueueOffline → outgoingEnqueueCombi, which is MSET packet+count, then RPUSH onto each offline
 * session's outgoing list). A graceful close therefore finds writes of acknowledged messages
 * still in flight, and the library's destroy() ends them with ioredis `disconnect()`, which rejects
 * every command not yet answered ("Connection is closed"). Measured on a loaded machine: the MSETs
 * reached Redis, the RPUSHes did not, so the restarted broker found the packets but not the queue
 * entries, and the persistent session got none or only some of its 5 acknowledged messages
 * (test/broker/redis-persistence.test.ts; MQTT-4.3.2: the sender may discard a QoS 1 message once
 * it has the PUBACK, so the broker must keep it). destroy() below first waits for every write in
 * flight and for one round trip that all earlier commands precede (Redis answers a connection's
 * commands in order), and only then lets the library disconnect. A broker CRASH between PUBACK
 * and RPUSH is closed by ack-after-publish.ts: PUBACK now waits for the RPUSH replies.
 */
/** A queue length not read again for this long is left out of largestQueueBytes (the gauge). */
const LENGTH_FORGET_MS = 60_000;
/**
 * A reading left out of a connected session's queue (at its bound) and delivered live is written to
 * Redis by the library's outgoingUpdate (a plain SET, as for every live delivery) and deleted at its
 * PUBACK (ACK_QUEUED / HOLDERS_DECR: a packet with neither holders nor count). A connection lost
 * before the PUBACK left that key for ever; it now expires after this (nothing queued refers to it).
 */
const UNHELD_PACKET_TTL_MS = 3_600_000;
const EXPIRE_UNHELD = `
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('EXISTS', KEYS[3]) == 0 then
  return redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 0`;
type ExpireUnheld = (packetKey: string, holders: string, countKey: string, ttlMs: number) => Promise<number>;

/** A session's queue length as last read (LLEN), and the accounted size of its last reading. */
interface QueueLength {
  n: number;
  at: number;
  size: number;
  reading: boolean;
  /** What this session adds to #totals now (its last length times the size then). */
  counted: number;
}

class AedesOneRedisPersistence extends Base implements BoundedStore {
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #bounds: QueueBounds | undefined;
  readonly #lengths = new Map<string, QueueLength>();
  /** The sessions' queues together as last read (QueueBounds shares the bound by it), on this node's reads. */
  readonly #totals: QueueTotals = { bytes: 0, sessions: 0 };
  readonly #lengthMaxAgeMs: number;
  /** Persistence calls started so far; destroy() sees a chain that is between two calls by it moving. */
  #started = 0;
  readonly #drainTimeoutMs: number;
  readonly #willAction: ((will: StoredWill) => Promise<WillAction>) | undefined;
  readonly #conn: Redis;
  readonly #onError: StoreTuning['onError'];
  /** aedes' id of this node (set in setup): the wills it stores are keyed by it. */
  #brokerId = '';

  constructor(opts: RedisPersistenceOptions, drainTimeoutMs: number, tuning: StoreTuning, willAction?: (will: StoredWill) => Promise<WillAction>) {
    const conn = storeConnection(opts, tuning);
    super({ ...opts, conn });
    this.#conn = conn;
    this.#onError = tuning.onError;
    this.#bounds = tuning.queueBound === undefined ? undefined : new QueueBounds(tuning.queueBound, this.#totals);
    this.#lengthMaxAgeMs = tuning.queueLengthMaxAgeMs ?? 1_000;
    this.#drainTimeoutMs = drainTimeoutMs;
    this.#willAction = willAction;
  }

  override async setup(broker: unknown): Promise<void> {
    await super.setup(broker);
    this.#brokerId = String((broker as { id: unknown }).id);
    // A store written by the library's own will code (before session 9) lists its wills in `will`.
    const old = await this.#conn.lrange(LIBRARY_WILL_LIST, 0, -1);
    if (old.length > 0) {
      const move = this.#conn.multi();
      for (const key of old) {
        const brokerId = key.split(':')[1] ?? '';
        move.sadd(WILL_BROKERS, brokerId).sadd(willSet(brokerId), key);
      }
      await execOrThrow(move.del(LIBRARY_WILL_LIST));
    }
  }

  // The library's putWill / delWill / streamWill, on the per-node sets; same will keys and encoding, so
  // the library's getWill (aedes reads a will back on a clean disconnect) is unchanged.
  override putWill(client: unknown, packet: unknown): Promise<void> {
    const clientId = String((client as { id: unknown }).id);
    const will = packet as { clientId?: string; brokerId?: string };
    will.clientId = clientId;
    will.brokerId = this.#brokerId;
    const key = willKey(this.#brokerId, clientId);
    return this.#track(execOrThrow(this.#conn.multi().sadd(WILL_BROKERS, this.#brokerId).sadd(willSet(this.#brokerId), key).set(key, msgpack.encode(will))).then(() => undefined));
  }

  /**
   * A clean CONNECT's will (clean-connect.ts): this node's key of the client takes the new will (one
   * transaction). aedes' own storeWill first calls delWill with its Client object, which carries no
   * brokerId: the library (and delWill below) then deletes `will:undefined:<id>`, which never exists,
   * a transaction spent on nothing. A CONNECT without a will deletes nothing either, as there: until
   * it is registered, the key may be the will of the id's live connection (a takeover not yet done,
   * or one whose CONNECT dies before it), which aedes deletes itself when it closes that connection.
   */
  replaceWill(client: unknown, packet: unknown): Promise<void> {
    return packet != null ? this.putWill(client, packet) : Promise.resolve();
  }

  override delWill(client: unknown): Promise<unknown> {
    const c = client as { id: unknown; brokerId?: unknown };
    // aedes' storeWill (a CONNECT on its path: persistent sessions) passes its Client, which has no
    // brokerId: `will:undefined:<id>` never exists, and aedes chains this with `.finally` only, so a
    // failure of that useless transaction was an unhandled rejection (redis-store-faults.test.ts).
    if (c.brokerId === undefined) return Promise.resolve(null);
    const brokerId = String(c.brokerId);
    const key = willKey(brokerId, String(c.id));
    return this.#track(
      execOrThrow(this.#conn.multi().srem(willSet(brokerId), key).getBuffer(key).del(key)).then((replies) => {
        const buf = replies[1];
        return Buffer.isBuffer(buf) ? msgpack.decode(buf) : null;
      }),
    );
  }

  /** Every stored will of a node not in `brokers` (the live ones, by aedes id), each dead node's set read in SSCAN steps. */
  async *#deadWills(brokers: Record<string, number>): AsyncGenerator<unknown> {
    for (const brokerId of await this.#conn.smembers(WILL_BROKERS)) {
      if (brokers[brokerId] !== undefined || brokerId === this.#brokerId) continue;
      const set = willSet(brokerId);
      let cursor = '0';
      do {
        const [next, keys] = await this.#conn.sscan(set, cursor, 'COUNT', WILL_SCAN_COUNT);
        cursor = next;
        for (const key of keys) {
          const buf = await this.#conn.getBuffer(key);
          if (buf === null) await this.#conn.srem(set, key);
          else yield msgpack.decode(buf);
        }
      } while (cursor !== '0');
      // Published wills are deleted by aedes (delWill) as it goes; a set left empty is forgotten.
      await this.#conn.eval(FORGET_EMPTY_WILL_SET, 2, WILL_BROKERS, set, brokerId);
    }
  }

  /**
   * The wills of dead brokers, as aedes' _clearWills pass reads them (every 4 heartbeats, on every
   * node) to authorize and publish each. A will our authorizePublish hook would refuse is deleted
   * here instead: aedes runs the pass in batches under Promise.all, so one refused will rejects the
   * pass and every will after it waits for the next pass, where the same will stops it again. The
   * common case is a broker node killed while its devices reconnect through the load balancer to
   * this node: their wills from the dead node are stale (the devices are online here), and without
   * this the wills of the devices that did NOT come back were never published. With several nodes
   * `willAction` also drops the wills of devices that reconnected to another node, and leaves a
   * will that another live node claimed to that node (broker.ts).
   */
  override async *streamWill(brokers: Record<string, number>): AsyncGenerator<unknown> {
    for await (const will of this.#deadWills(brokers)) {
      if (this.#willAction === undefined || !isStoredWill(will)) {
        yield will;
        continue;
      }
      const action = await this.#willAction(will);
      if (action === 'discard') await this.delWill({ id: will.clientId, brokerId: will.brokerId }).catch(() => undefined);
      else if (action === 'publish') yield will;
    }
  }

  override createRetainedStreamCombi(patterns: string[]): Readable {
    const it = super.createRetainedStreamCombi(patterns);
    const stream = it instanceof Readable ? it : Readable.from(it);
    // aedes pipes this stream without an 'error' listener (lib/handlers/subscribe.js): a read Redis
    // fails (refused, or away past ioredis' retries) was an uncaught exception, the whole node and
    // every connection on it down (test/broker/redis-store-faults.test.ts). The subscriber misses
    // this SUBSCRIBE's retained messages instead (later ones reach it live), and it is logged.
    stream.on('error', (err: Error) => this.#onError?.(err, 'BROKER_STORE_RETAINED_READ_FAILED'));
    return stream;
  }

  override createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern]);
  }

  #track<T>(op: Promise<T>): Promise<T> {
    this.#started++;
    this.#inflight.add(op);
    const done = (): void => {
      this.#inflight.delete(op);
    };
    op.then(done, done);
    return op;
  }

  // The first persistence call of every QoS ≥ 1 publish (aedes enqueueOffline); tracked so that a
  // publish whose PUBACK is out but whose enqueue has not started yet still holds destroy() back.
  override subscriptionsByTopic(topic: string): Promise<unknown[]> {
    return this.#track(super.subscriptionsByTopic(topic));
  }
  override storeRetained(packet: unknown): Promise<void> {
    return this.#track(super.storeRetained(packet));
  }
  override outgoingEnqueueCombi(subs: unknown[], packet: unknown): Promise<void> {
    return this.#track(this.#enqueueHeld(subs, packet));
  }
  get droppedAtBound(): number {
    return this.#bounds?.dropped ?? 0;
  }

  largestQueueBytes(): number {
    let max = 0;
    const now = performance.now();
    // Only lengths read lately: a session whose messages no longer come through this node is not
    // read again, and its last length says nothing now.
    for (const q of this.#lengths.values()) if (now - q.at < LENGTH_FORGET_MS) max = Math.max(max, q.n * q.size);
    return max;
  }

  /** QueueBounds.admit's size lookup, made once (not a closure per message). */
  readonly #bytesOf = (clientId: string, packet: object): number | undefined => this.#queuedBytes(clientId, accountedBytes(packet));

  /**
   * A session's queue in accounted bytes, estimated as its length (LLEN, read at most every
   * queueLengthMaxAgeMs, asynchronously: a message never waits for it) times the size of the message
   * at hand; undefined until first read. Each read that finds a full session below 90 % ends its
   * episode (QueueBounds.shrunk): the Redis store has no acknowledgement of its own to tell it.
   */
  #queuedBytes(clientId: string, size: number): number | undefined {
    let q = this.#lengths.get(clientId);
    // Monotonic: a wall clock stepped back would stop the reads for as long as the step.
    const now = performance.now();
    if (q === undefined) this.#lengths.set(clientId, (q = { n: 0, at: -Infinity, size, reading: false, counted: 0 }));
    q.size = size;
    if (!q.reading && now - q.at >= this.#lengthMaxAgeMs) {
      q.reading = true;
      const entry = q;
      this.#conn.llen(queueKey(clientId)).then(
        (n) => {
          entry.n = n;
          entry.at = performance.now();
          entry.reading = false;
          this.#count(entry, n * entry.size);
          this.#bounds?.shrunk(clientId, n * entry.size);
          // An empty queue outside an episode needs no entry (a session that ended, or one that keeps up).
          if (n === 0 && this.#bounds?.inEpisode(clientId) !== true && this.#lengths.get(clientId) === entry) this.#lengths.delete(clientId);
        },
        () => {
          // Redis away: the last length stands (the store's own errors are logged by the connection).
          entry.reading = false;
        },
      );
    }
    return q.at === -Infinity ? undefined : q.n * size;
  }

  /** A session's share of #totals is now `bytes`. */
  #count(entry: QueueLength, bytes: number): void {
    const t = this.#totals;
    t.bytes += bytes - entry.counted;
    if (entry.counted === 0 && bytes > 0) t.sessions++;
    else if (entry.counted > 0 && bytes === 0) t.sessions--;
    entry.counted = bytes;
  }

  /** Every session of `subs` made a holder of the packet before the library queues it for any (HOLDERS_DECR). */
  async #enqueueHeld(all: unknown[], packet: unknown): Promise<void> {
    const once = oncePerSession(all as Array<{ clientId?: unknown }>) as unknown[];
    const bounds = this.#bounds;
    const subs = bounds === undefined ? once : (bounds.admit(once as Array<{ clientId: string }>, packet as object, this.#bytesOf) as unknown[]);
    if (subs.length === 0) return;
    const lists = (subs as Array<{ clientId?: unknown } | null>).flatMap((sub) => (typeof sub?.clientId === 'string' ? [queueKey(sub.clientId)] : []));
    if (lists.length > 0) await this.#conn.sadd(holdersKey(packetKey(packet as object)), ...lists);
    await super.outgoingEnqueueCombi(subs, packet);
  }
  /**
   * The packet ids each connection (aedes' Client object) gave to queued messages, and which message
   * (broker id and counter) holds each. A packet id means something only on its connection
   * [MQTT-2.3.1-2 … -4], but aedes-persistence-redis finds what a PUBACK clears through a per-node map
   * (client id, packet id) → message that outlives the connection: the PUBACK of a retained copy
   * sent at SUBSCRIBE (never queued) on a new connection, given an id that a message still queued had
   * on the dead one, removed that message (lost). memory-persistence.ts keeps the same rule for the
   * single broker.
   */
  readonly #numbered = new WeakMap<object, Map<number, string>>();
  /**
   * Also: two messages in flight on one connection never share a packet id [MQTT-2.3.1-2]. aedes
   * resends a reconnecting session's queue with the ids the messages had on the dead connection
   * ([MQTT-4.4.0-1]) while it numbers new messages from a counter that knows nothing of them, so
   * a new message could take an id a resent one still held; the library's map then kept one of the
   * two, the second PUBACK cleared nothing and the message stayed queued after its delivery, at the
   * head of the queue, until the session's next reconnect sent it again (session 12: 50 such after
   * one reconnect with 28,000 queued). The later of the two gets the next free id instead (QoS 1:
   * the receiver keeps no state by id, so no client can tell).
   */
  override outgoingUpdate(client: unknown, packet: unknown): Promise<void> {
    const p = packet as { messageId?: unknown; brokerId?: unknown; brokerCounter?: unknown };
    if (typeof client === 'object' && client !== null && typeof p.messageId === 'number') {
      let ids = this.#numbered.get(client);
      if (ids === undefined) this.#numbered.set(client, (ids = new Map()));
      const message = `${String(p.brokerId)}:${String(p.brokerCounter)}`;
      const holder = ids.get(p.messageId);
      if (holder !== undefined && holder !== message && p.brokerId !== undefined) {
        const free = freePacketId(client, ids);
        // All 65,535 in flight: the delivery fails and aedes closes the connection (the message stays
        // queued for the next one), as on the disk and memory stores; taking an id in flight would
        // let one PUBACK clear the other's entry.
        if (free === undefined) return Promise.reject(new Error(`no free packet id: ${MAX_PACKET_ID} messages unacknowledged on this connection`));
        p.messageId = free;
      }
      ids.set(p.messageId as number, message);
    }
    const update = super.outgoingUpdate(client, packet);
    const id = (client as { id?: unknown } | null)?.id;
    // A reading delivered live to a session at its bound may be in no queue: its key, written by the
    // update, must not outlive a connection lost before its PUBACK (UNHELD_PACKET_TTL_MS).
    if (typeof id === 'string' && this.#bounds?.inEpisode(id) === true && droppableAtBound(packet as object)) {
      const key = packetKey(p);
      const expire = (this.#conn as unknown as { carewatchExpireUnheld: ExpireUnheld }).carewatchExpireUnheld;
      return this.#track(update.then(() => expire.call(this.#conn, key, holdersKey(key), `${key}${COUNT_SUFFIX}`, UNHELD_PACKET_TTL_MS)).then(() => undefined));
    }
    return this.#track(update);
  }
  override outgoingClearMessageId(client: unknown, packet: unknown): Promise<unknown> {
    const id = (packet as { messageId?: unknown }).messageId;
    if (typeof client === 'object' && client !== null && typeof id === 'number') {
      const ids = this.#numbered.get(client);
      if (ids?.delete(id) !== true) return Promise.resolve(undefined);
    }
    return this.#track(super.outgoingClearMessageId(client, packet));
  }
  /**
   * A reconnecting session's queue, less the entries already acknowledged and only marked (ACK_QUEUED:
   * they wait behind an unacknowledged head to be trimmed), each QoS 1 message without the id a dead
   * connection gave it (aedes numbers it from the new connection's counter). The marks are read before the library's
   * LRANGE: one made between the two only means a copy sent again (at least once).
   */
  override outgoingStream(client: unknown): AsyncIterable<unknown> {
    const id = (client as { id?: unknown }).id;
    const rest = super.outgoingStream(client);
    if (typeof id !== 'string') return rest;
    const conn = this.#conn;
    return (async function* unacknowledged() {
      const marked = new Set(await conn.smembers(ackedKey(queueKey(id))));
      for await (const packet of rest) {
        if (marked.size !== 0 && marked.has(packetKey(packet as object))) continue;
        // Renumbered from the new connection's counter (memory-persistence.ts outgoingStream): the id a
        // dead connection gave it could be the one aedes gives a retained copy at SUBSCRIBE.
        const p = packet as { cmd?: unknown; qos?: unknown; messageId?: unknown };
        yield (p.cmd ?? 'publish') === 'publish' && p.qos === 1 && p.messageId !== undefined ? { ...p, messageId: undefined } : packet;
      }
    })();
  }
  /**
   * clean-connect.ts' queue step for a clean session: whether the client id has a queue at all (one
   * EXISTS). A device never has one; aedes' own step opened the queue's stream for it (an LRANGE, a
   * stream pipeline, an AbortController) on every CONNECT.
   */
  outgoingQueueEmpty(clientId: string): Promise<boolean> {
    return this.#track(this.#conn.exists(queueKey(clientId))).then((n) => n === 0);
  }
  /** What a client id has queued (and not acknowledged), queue order: read as aedes would on its reconnect. */
  async outgoingPackets(clientId: string): Promise<object[]> {
    const packets: object[] = [];
    for await (const packet of this.outgoingStream({ id: clientId })) packets.push(packet as object);
    return packets;
  }
  /**
   * aedes 1.x stores a SUBSCRIBE's subscriptions once per filter (subscribe.js storeSubscriptions calls
   * addSubscriptions(client, packet.subscriptions) for each of them, in parallel), and
   * aedes-persistence-redis resolves each call only when its `$SYS/sub/add` broadcast comes back,
   * waiting under the key (client id, first filter): the N calls share one key, each overwrites the
   * previous waiter, and N - 1 never resolve, so a persistent session subscribing to two or more
   * filters in one SUBSCRIBE never gets its SUBACK once the broadcast takes a Redis round trip
   * (cluster mode; a partitioned service's per-home session subscribes to three). One call per
   * packet, shared by its filters (the array is the packet's own, the same object every time).
   */
  readonly #adding = new WeakMap<unknown[], Promise<void>>();
  override addSubscriptions(client: unknown, subs: unknown[]): Promise<void> {
    const running = this.#adding.get(subs);
    if (running !== undefined) return running;
    const op = this.#track(super.addSubscriptions(client, subs));
    this.#adding.set(subs, op);
    const forget = (): void => {
      this.#adding.delete(subs);
    };
    op.then(forget, forget);
    return op;
  }
  override removeSubscriptions(client: unknown, subs: string[]): Promise<void> {
    return this.#track(super.removeSubscriptions(client, subs));
  }
  override incomingStorePacket(client: unknown, packet: unknown): Promise<void> {
    return this.#track(super.incomingStorePacket(client, packet));
  }
  override incomingDelPacket(client: unknown, packet: unknown): Promise<void> {
    return this.#track(super.incomingDelPacket(client, packet));
  }

  /** Resolves when no persistence call is in flight and none started for QUIET_TURNS turns; false on timeout. */
  async #drain(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, this.#drainTimeoutMs);
    });
    try {
      let quiet = 0;
      while (quiet < QUIET_TURNS && !timedOut) {
        const seen = this.#started;
        if (this.#inflight.size > 0) await Promise.race([Promise.allSettled([...this.#inflight]), timeout]);
        else await new Promise<void>((resolve) => setImmediate(resolve));
        quiet = this.#inflight.size === 0 && this.#started === seen ? quiet + 1 : 0;
      }
      return !timedOut;
    } finally {
      clearTimeout(timer);
    }
  }

  override async destroy(): Promise<void> {
    // One bound for the whole close: a Redis stalled (connected, answering nothing) drains at once
    // (nothing in flight) and then never answered the barrier or the library's unsubscribe, so the
    // broker's close never returned (test/broker/redis-close.test.ts).
    const deadline = Date.now() + this.#drainTimeoutMs;
    const left = (): number => Math.max(0, deadline - Date.now());
    const drained = await this.#drain();
    if (drained) {
      // A round trip as a barrier: fire-and-forget commands the library sends without awaiting
      // (LREM of stale queue entries) were sent before it, so are done after it.
      await settlesWithin(this.countOffline(), left());
    }
    // The library unsubscribes from the fan-out, then disconnects; past the bound we disconnect.
    if (!(await settlesWithin(super.destroy(), left()))) this.#conn.disconnect();
  }
}

export interface ClosablePersistence {
  /** Waits (up to the drain timeout) for writes in flight, then closes the Redis connection. */
  destroy(): Promise<void>;
}

/** redis://[user:password@]host[:port][/db] → the ioredis options the persistence passes on. */
export function redisOptions(url: string): RedisPersistenceOptions {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`redis url ${url}: database must be a non-negative integer`);
  return {
    host: u.hostname,
    port: u.port === '' ? 6379 : Number(u.port),
    db,
    ...(u.username !== '' ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password !== '' ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/**
 * `drainTimeoutMs` bounds how long destroy() waits for writes in flight: with Redis unreachable
 * ioredis fails each command only after maxRetriesPerRequest (20) reconnect attempts, about 10 s,
 * and close() must still end.
 */
/**
 * `onStrandedHead`: told when a persistent session's queue head strands (stranded-head.ts; the broker
 * closes the session's connection if it holds it). The tuning's other fields: their defaults unless
 * a test needs to reach them.
 */
export function createRedisPersistence(
  url: string,
  opts: { drainTimeoutMs?: number; willAction?: (will: StoredWill) => Promise<WillAction> } & Partial<StoreTuning> = {},
): ClosablePersistence {
  const tuning: StoreTuning = {
    ackedBound: opts.ackedBound ?? ACKED_BOUND,
    headWindow: opts.headWindow ?? HEAD_WINDOW,
    strandedMarks: opts.strandedMarks ?? STRANDED_MARKS,
    strandedAfterMs: opts.strandedAfterMs ?? STRANDED_AFTER_MS,
    now: opts.now ?? (() => performance.now()),
    onStrandedHead: opts.onStrandedHead,
    onError: opts.onError,
    queueBound: opts.queueBound,
    ...(opts.queueLengthMaxAgeMs !== undefined ? { queueLengthMaxAgeMs: opts.queueLengthMaxAgeMs } : {}),
  };
  // maxSessionDelivery is the stop index of the library's `LRANGE outgoing:<client> 0 <stop>` in
  // outgoingStream, the one read aedes makes of a session's queue when it reconnects (its
  // emptyQueue). The library's default, 1000, delivered 1,001 queued messages per reconnect and left
  // the rest in Redis until the next one (issue 12: 7,206 queued, 1,001 delivered). -1 is Redis'
  // "to the last element": the whole queue drains on one reconnect. The read holds the queue's
  // keys (~40 B each) in memory; the packets are then read one by one as the client takes them.
  return new AedesOneRedisPersistence({ ...redisOptions(url), maxRetriesPerRequest: 20, maxSessionDelivery: -1 }, opts.drainTimeoutMs ?? 10_000, tuning, opts.willAction);
}
