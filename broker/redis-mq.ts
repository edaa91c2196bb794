import type { EventEmitter } from 'node:events';
import MQEmitterRedis from 'mqemitter-redis';
import { redisOptions } from './redis-persistence.ts';

/**
 * The message fan-out of a broker node in a cluster (issue 14): aedes' mqemitter, but through Redis
 * pub/sub (mqemitter-redis 7), so a message published on one node reaches the subscribers of every
 * node, and aedes' own `$SYS/<id>/heartbeat`, `…/new/clients` (session takeover across nodes) and
 * aedes-persistence-redis' `$SYS/sub/+` (each node's copy of the subscription trie) cross nodes too.
 *
 * Exactly once per node: mqemitter-redis' emit() only PUBLISHes to Redis and never delivers locally;
 * every node, the publishing one included, delivers what comes back from its subscriber connection.
 * That connection holds ONE subscription, the pattern `*` (every channel), and listeners are matched
 * in the node by mqemitter's own qlobber, as in a single broker. The library would instead SUBSCRIBE or
 * PSUBSCRIBE once per aedes topic filter; a message matching k of them (every message matches the `#`
 * of mq-recursion-guard.ts, telemetry also svc-ingest's `+/+/telemetry`, …) then arrives k times on
 * the connection, is decoded k times, and all but one copy are dropped by an LRU of message ids
 * (10,000, one minute): k-fold traffic from Redis, and "exactly once" resting on a cache bound. A
 * node receives every message of the cluster either way (the services subscribe to all telemetry).
 *
 * `done` of emit() is called on Redis' reply to PUBLISH, i.e. once Redis has handed the message to
 * every subscribed node's connection; aedes calls it after storeRetained and enqueueOffline, so a
 * PUBACK (ack-after-publish.ts) still means stored and fanned out.
 *
 * Pub/sub channels belong to the Redis server, not to a database (`/db` in the url selects only the
 * keys): two clusters on one Redis server would hear each other's messages. Give each cluster its own
 * Redis server (docs/scaling.md).
 */
export interface ClusterMq {
  /** Messages beyond `concurrency` wait here (mq-queue.ts replaces it with an O(1) FIFO). */
  _messageQueue: unknown;
  _messageCallbacks: unknown;
  on(topic: string, fn: (packet: unknown, done: () => void) => void, done?: () => void): unknown;
  removeListener(topic: string, fn: (packet: unknown, done: () => void) => void, done?: () => void): unknown;
  emit(packet: unknown, done?: (err?: Error) => void): void;
  close(cb: () => void): void;
  /** mqemitter-redis' connection events; 'error' for a failed PUBLISH or a lost connection. */
  readonly state: EventEmitter;
}

/** mqemitter-redis' instance internals used here: MQEmitter's own (local) on/removeListener, the subscriber connection. */
interface MqInternals {
  _on(topic: string, fn: (packet: unknown, done: () => void) => void, done?: () => void): unknown;
  _removeListener(topic: string, fn: (packet: unknown, done: () => void) => void, done?: () => void): unknown;
  subConn: { psubscribe(pattern: string): Promise<unknown> };
  pubConn: {
    hset(key: string, field: string, value: string): Promise<unknown>;
    hget(key: string, field: string): Promise<string | null>;
    set(key: string, value: string, px: 'PX', ms: number, nx: 'NX'): Promise<string | null>;
  };
}

/**
 * Hash field → aedes id of the node where that client id last connected. aedes knows only its own
 * node's clients, so a node publishing the wills of a dead one could not tell a device that moved to
 * a THIRD node (online there) from one that never came back; this tells it (broker.ts willAction).
 */
const LAST_NODE_KEY = 'carewatch:broker:last-node';
/**
 * Prefix of a will's publication claim. Every live node runs aedes' will pass (every 4 heartbeats,
 * nodes started together run it at about the same moment) and would publish the same will of a
 * dead node: the first to SET NX the claim publishes it.
 */
const WILL_CLAIM_PREFIX = 'carewatch:broker:will-claim:';

export interface RedisMq {
  readonly mq: ClusterMq;
  /** Resolves once Redis confirmed the node's subscription: start serving clients after it. */
  readonly ready: Promise<void>;
  /** Records that `clientId` connected on node `brokerId` (fire and forget; errors go to onError). */
  recordConnect(clientId: string, brokerId: string): void;
  /** The aedes id of the node where `clientId` last connected, or null if none recorded. */
  lastNodeOf(clientId: string): Promise<string | null>;
  /**
   * True for the one node that may publish this will. The claim expires after `ttlMs`, so the will
   * of a node that died between claiming and publishing is tried again by the next pass.
   */
  claimWill(brokerId: string, clientId: string, ttlMs: number): Promise<boolean>;
}

export function createRedisMq(url: string, opts: { concurrency: number; onError: (err: Error) => void }): RedisMq {
  const ctor = MQEmitterRedis as unknown as (o: object) => ClusterMq;
  const mq = ctor({
    ...redisOptions(url),
    // As aedes' default in-memory mqemitter: the same concurrency tuning (config.ts mqConcurrency) and
    // `a/#` matching `a` [MQTT-4.7.1-3]. aedes uses a given `mq` as is, so these must be set here.
    concurrency: opts.concurrency,
    matchEmptyLevels: true,
    // A PUBLISH to an unreachable Redis fails after this many reconnect attempts (ioredis' default
    // is 20, ~10 s): the device gets no PUBACK and sends the message again to whichever node it
    // reaches next.
    maxRetriesPerRequest: 20,
  });
  mq.state.on('error', opts.onError);
  const inner = mq as unknown as ClusterMq & MqInternals;
  if (typeof inner._on !== 'function' || typeof inner._removeListener !== 'function' || typeof inner.subConn?.psubscribe !== 'function') throw new Error('mqemitter-redis internals changed: _on/_removeListener/subConn not found');
  // Listeners are local only (see above); the one Redis subscription below feeds them all.
  inner.on = (topic, fn, done) => inner._on(topic, fn, done);
  inner.removeListener = (topic, fn, done) => inner._removeListener(topic, fn, done);
  // ioredis re-subscribes after a reconnect (autoResubscribe).
  const ready = inner.subConn.psubscribe('*').then(() => undefined);
  // Awaited by start(); this only keeps a rejection before that await from being "unhandled".
  ready.catch(() => undefined);
  return {
    mq,
    ready,
    recordConnect(clientId, brokerId) {
      inner.pubConn.hset(LAST_NODE_KEY, clientId, brokerId).catch(opts.onError);
    },
    lastNodeOf: (clientId) => inner.pubConn.hget(LAST_NODE_KEY, clientId),
    claimWill: async (brokerId, clientId, ttlMs) => (await inner.pubConn.set(`${WILL_CLAIM_PREFIX}${brokerId}:${clientId}`, '1', 'PX', ttlMs, 'NX')) === 'OK',
  };
}
