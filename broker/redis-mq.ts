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
 * every node, the publishing one included, delivers what comes back from its SUBSCRIBE/PSUBSCRIBE
 * connection. A message that matches both a channel and a pattern subscription of one node arrives
 * twice on that connection, and the library drops the second by its id (an LRU of the last 10,000
 * ids; both copies arrive back to back on the one connection, so the bound is never near).
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
  emit(packet: unknown, done?: (err?: Error) => void): void;
  close(cb: () => void): void;
  /** mqemitter-redis' connection events; 'error' for a failed PUBLISH or a lost connection. */
  readonly state: EventEmitter;
}

export function createRedisMq(url: string, opts: { concurrency: number; onError: (err: Error) => void }): ClusterMq {
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
  return mq;
}
