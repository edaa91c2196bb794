/**
 * A cluster node's Redis pub/sub subscriber connection (mqemitter-redis' `subConn`, ioredis) that
 * drops and comes back: what was PUBLISHed meanwhile never reaches this node. Redis does this by
 * itself to a subscriber that falls behind (`client-output-buffer-limit pubsub`, docs/scaling.md
 * "Limits"), to every subscriber at a restart or failover, and the network does it too.
 *
 * What is lost where:
 * - A **persistent session** (clean=false: the services' sessions) loses nothing: the node that
 *   received the PUBLISH queued the QoS 1 copy in the session's queue in Redis (aedes'
 *   enqueueOffline, before its emit to Redis, and before the PUBACK: ack-after-publish.ts). But aedes
 *   delivers that queue live only as each message comes back over pub/sub (`outgoingUpdate` on the
 *   arriving copy), and otherwise only when the session CONNECTs. A service that stays connected for
 *   days would have an alarm published during the outage sitting undelivered in Redis while later
 *   messages flow (test/broker/pubsub-resync.test.ts: 10 of 10 alarms of the outage stuck).
 *   So when the connection is back, this node closes the connections of its persistent sessions:
 *   each client reconnects (the services' session client does so within ~100 ms, mqtt.js after its
 *   reconnectPeriod), the session resumes [MQTT-3.1.2-4] and aedes sends its queue from Redis.
 * - A **clean session** (devices, alerts' QoS 0 live feed of readings) loses what was published
 *   meanwhile: there is no queue to read it from. Their connections are left alone; a device's next
 *   reading or the alerts' heartbeat budget covers the gap. The alarm inputs (alerts' events and
 *   statuses) and ingest come through persistent sessions.
 *
 * The order that makes the reconnect lose nothing. A message M for a persistent session is RPUSHed
 * to the session's queue before its PUBLISH. At a reconnect aedes restores the session's
 * subscriptions (redis-mq.ts on(): its callback waits for Redis' reply to any SUBSCRIBE it needed)
 * and only then reads the queue (connect.js series: restoreSubs … registerClient … emptyQueue's
 * LRANGE). Either M's RPUSH precedes that LRANGE, and M is read from the queue; or it follows it,
 * and then so does M's PUBLISH, which Redis sends to this node provided Redis holds this node's
 * subscriptions again at the LRANGE. That last condition is why the sessions are not closed at
 * ioredis' 'ready': ioredis sends its re-SUBSCRIBEs (autoResubscribe) in its ready handler and only
 * then emits 'ready', and redis-mq.ts may add its own resync commands on the next turn, but none of
 * them has been executed by Redis yet. A session closed then and reconnecting at once could read its
 * queue before Redis re-executes PSUBSCRIBE `*`, and a message queued after that read and published
 * before the PSUBSCRIBE would be stranded again. So a PING goes on the same connection after all of
 * those commands (a setImmediate queued after redis-mq.ts' own), and Redis executes a connection's
 * commands in order: its reply means every later PUBLISH reaches this node. The sessions are closed
 * then. A session whose CONNECT was under way meanwhile is either registered by then (aedes registers
 * a client before it reads the queue: it is closed with the others, one reconnect too many at worst)
 * or not yet, and then reads its queue after the PING's reply.
 *
 * Why a reconnect and not a re-read of the queue on the open connection. aedes' live path
 * (deliverQoS) drops a packet whose broker counter is not above the last one the client got from
 * that publishing node (client.js dedupe): the messages that flowed after the outage have already
 * raised it past the missed ones. Sending them by hand as emptyQueue does would bypass that, but the
 * queue does not say which entries are already in flight on this connection (sent, PUBACK pending):
 * re-sent, such an entry has two message ids, and each PUBACK runs aedes-persistence-redis'
 * outgoingClearMessageId, which DECRs the packet's reference count shared with every other session
 * that queued it; the count reaches 0 early and the packet is deleted under those sessions. A new
 * connection starts from the state emptyQueue is written for: nothing in flight, no dedupe record.
 * The cost: each persistent session on the node reconnects once, and receives again what was in
 * flight or still waiting in this node's delivery queue (QoS 1 is at least once; ingest writes
 * idempotently, alerts keeps one open alert per signal).
 */

/**
 * Redis' `client-output-buffer-limit` for the subscriber connections of the broker nodes' Redis
 * (docker-compose.cluster.yml; the test and benchmark servers run with it too). Redis' default,
 * `pubsub 32mb 8mb 60`, cuts a node ~12 s behind (~390 bytes a message on the connection, at the
 * issue's 7,000 msg/s a node in all mode receives 2.7 MB/s) or ~3 s behind for a minute; each cut
 * costs a reconnect of every persistent session on that node (their backlogs replayed) and the QoS 0
 * live feed's gap. 256 MB / 64 MB for 60 s: ~95 s at once or ~24 s for a minute, by which time alarms
 * through that node are late anyway and the cut hands delivery to the sessions' queues (above). Not
 * unlimited: Redis holds every session and queue of the cluster, and a hung node (socket open, not
 * reading) would grow Redis' memory until the cluster goes down with it. docs/scaling.md "Limits".
 */
export const REDIS_PUBSUB_OUTPUT_LIMIT = 'pubsub 256mb 64mb 60';

/** ioredis' events and the one command used here, on mqemitter-redis' subscriber connection. */
interface SubscriberConnection {
  on(event: 'ready' | 'close', fn: () => void): unknown;
  ping(): Promise<unknown>;
}

/**
 * mqemitter-redis' subscriber connection (`subConn`, not in its typings). Throws when the library no
 * longer has one: the node would otherwise run without the recovery and strand alarms silently.
 */
export function subscriberConnectionOf(mq: object): SubscriberConnection {
  const conn = (mq as { subConn?: Partial<SubscriberConnection> }).subConn;
  if (conn === undefined || typeof conn.on !== 'function' || typeof conn.ping !== 'function') {
    throw new Error('mqemitter-redis internals changed: subConn (ioredis) not found');
  }
  return conn as SubscriberConnection;
}

/** The stable code of the log line of each recovery (docs/scaling.md "Limits"). */
export const PUBSUB_RESYNC_CODE = 'BROKER_CLUSTER_PUBSUB_RESYNC';

export interface PubsubResyncStats {
  /** Times the subscriber connection came back after being lost, since start. */
  readonly resyncs: number;
  /** Persistent-session connections closed at those times, since start. */
  readonly sessionsClosed: number;
}

export interface Recovery {
  /** How long the node heard nothing from Redis pub/sub: from the loss to Redis' reply after the re-subscription. */
  readonly downMs: number;
}

export interface PubsubResync {
  stats(): PubsubResyncStats;
}

/**
 * Calls `recovered` once per loss of the subscriber connection, when Redis holds the node's
 * subscriptions again (see the header); `recovered` closes the persistent sessions and returns how
 * many. The first connect is not a recovery.
 */
export function watchPubsubResync(mq: object, opts: { now: () => number; recovered: (r: Recovery) => number; onError: (err: Error) => void }): PubsubResync {
  const conn = subscriberConnectionOf(mq);
  let everReady = false;
  /** Set at a loss, until the recovery after it (a loss before the first ready is not one). */
  let lostAt: number | undefined;
  /** Bumped at each loss: a barrier's reply that comes after a newer loss is not that one's recovery. */
  let epoch = 0;
  let resyncs = 0;
  let sessionsClosed = 0;

  conn.on('close', () => {
    if (!everReady) return;
    epoch++;
    lostAt ??= opts.now();
  });
  conn.on('ready', () => {
    everReady = true;
    if (lostAt === undefined) return;
    const mine = epoch;
    // After redis-mq.ts' own 'ready' handler's setImmediate (registered before this one).
    setImmediate(() => {
      if (mine !== epoch) return;
      conn.ping().then(
        () => {
          if (mine !== epoch || lostAt === undefined) return;
          const downMs = opts.now() - lostAt;
          lostAt = undefined;
          resyncs++;
          sessionsClosed += opts.recovered({ downMs });
        },
        // The connection went again: the next 'ready' sends its own barrier.
        (err: unknown) => {
          if (mine === epoch) opts.onError(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  });

  return { stats: () => ({ resyncs, sessionsClosed }) };
}
