import { Type } from '@sinclair/typebox';
import { MAX_DEVICE_PAYLOAD_BYTES } from '../contract/payloads.ts';
import type { ServerTls } from '../common/tls.ts';
import { DEFAULT_AUTH_THROTTLE, type AuthThrottleLimits } from './auth-throttle.ts';
import { LISTEN_BACKLOG } from './early-listener.ts';
import { STRANDED_AFTER_MS, STRANDED_MARKS } from './stranded-head.ts';
import { DEFAULT_SUBSCRIBER_BUFFER_BYTES, DEFAULT_SUBSCRIBER_GRACE_MS } from './fanout-release.ts';

/** Environment of the broker process (read once by main.ts through common/config.ts loadConfig). */
export const BrokerEnv = Type.Object({
  registry: Type.String({ minLength: 1, default: 'config/demo-site.json', description: 'path to the site registry JSON' }),
  brokerHost: Type.String({ minLength: 1, default: '127.0.0.1', description: 'interface to listen on, e.g. 127.0.0.1 or 0.0.0.0' }),
  brokerPort: Type.Integer({ minimum: 0, maximum: 65535, default: 1883 }),
  brokerWsPort: Type.Integer({ minimum: 0, maximum: 65535, default: 8083 }),
  brokerPlain: Type.Boolean({ default: true, description: 'true or false: serve plain MQTT and ws (brokerPort, brokerWsPort); false leaves only the TLS ports' }),
  brokerTlsCertFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM certificate (chain, leaf first) of the TLS ports; with the key file it turns them on' })),
  brokerTlsKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM private key of that certificate (a file, e.g. /run/secrets/broker_tls_key)' })),
  brokerTlsPort: Type.Integer({ minimum: 0, maximum: 65535, default: 8883, description: 'MQTT over TLS port (IANA secure-mqtt 8883)' }),
  brokerWssPort: Type.Integer({ minimum: 0, maximum: 65535, default: 8084, description: 'MQTT over WebSocket over TLS port (path /mqtt)' }),
  brokerStoreDir: Type.String({ minLength: 1, default: '.tmp/state/broker', description: 'directory of the durable session store (journal); unused with a Redis url' }),
  brokerHttpPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'port of GET /metrics and GET /healthz (unset: none)' })),
  metricsToken: Type.Optional(Type.String({ minLength: 16, description: 'bearer token a scraper sends for GET /metrics; unset: production serves no metrics, development serves them to anyone' })),
  brokerRedisUrl: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'redis://host:port[/db] for persistent sessions' })),
  brokerCluster: Type.Optional(Type.Literal('redis', { description: 'redis: this broker is one node of several sharing sessions, retained messages and the message fan-out through CAREWATCH_BROKER_REDIS_URL (docs/scaling.md)' })),
  brokerNodeId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,32}$', description: 'readable name of this broker node in logs and $SYS topics (default: broker); a random suffix makes each start unique' })),
  brokerSessionQueueMaxBytes: Type.Optional(Type.Integer({ minimum: 1024 * 1024, description: 'bytes one persistent session may have queued in memory before its readings are dropped (events and statuses never are); default a fifth of the heap limit (docs/broker.md "Limits")' })),
  brokerHeartbeatMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000, description: "aedes $SYS heartbeat; a dead node's wills are published by a live node 3-7 heartbeats after its last (default 60000)" })),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
});

export interface BrokerConfig {
  readonly host: string;
  /** 0 picks a free port (tests); the broker's tcpPort/wsPort report the actual one. */
  readonly port: number;
  readonly wsPort: number;
  /**
   * Serve `port` and `wsPort` in plain text (default true). False with `tls` set: only the TLS
   * ports listen, and tcpPort/wsPort read 0.
   */
  readonly plain?: boolean | undefined;
  /** MQTT over TLS and MQTT over WebSocket over TLS, with the same hooks and limits as the plain ports. */
  readonly tls?: BrokerTlsConfig | undefined;
  /** CAREWATCH_METRICS_TOKEN (common/metrics.ts MetricsAccess); undefined: production serves no metrics. */
  readonly metricsToken?: string | undefined;
  /** Redis persistence (sessions, queued QoS 1 messages, retained statuses, wills) when set. */
  readonly redisUrl?: string | undefined;
  /**
   * One node of a cluster (docs/scaling.md): the message fan-out goes through redisUrl's Redis too
   * (redis-mq.ts), so clients may connect to any node. Needs redisUrl. nodeId names the node; the
   * aedes id is `<nodeId>-<random>`, new at every start (see broker.ts start()).
   */
  readonly cluster?: {
    readonly nodeId: string;
    /** Distinct wildcard filters up to which the node subscribes to a Redis glob each (redis-mq.ts; default DEFAULT_MAX_PATTERNS). */
    readonly maxPatterns?: number;
  } | undefined;
  /**
   * Without redisUrl: the directory of the durable store (durable-persistence.ts). Neither: memory
   * only, which loses sessions and queued messages on a crash (in-process tests).
   */
  readonly storeDir?: string | undefined;
  /** Journal size that triggers a compaction (store-journal.ts; tests use a small one). */
  readonly storeCompactBytes?: number | undefined;
  /** GET /metrics (Prometheus) and GET /healthz on this port, on `host`; undefined: no HTTP listener. */
  readonly httpPort?: number | undefined;
  /** NODE_ENV=production: demo secrets refused. */
  readonly production: boolean;
  readonly limits?: Partial<BrokerLimits>;
}

export interface BrokerTlsConfig extends ServerTls {
  /** MQTT over TLS (8883 in production; 0 picks a free port). */
  readonly port: number;
  /** MQTT over WebSocket over TLS, path /mqtt (8084 in production; 0 picks a free port). */
  readonly wssPort: number;
}

export interface BrokerLimits {
  /**
   * Largest MQTT packet (Remaining Length) accepted from any client. Devices are further held to
   * MAX_DEVICE_PAYLOAD_BYTES of payload; this bound is for services (alert messages) and for the
   * memory one connection can pin before its packet is parsed.
   */
  readonly maxPacketBytes: number;
  /** Successful scrypt verifications kept in memory (one per device that reconnects). */
  readonly credentialCacheSize: number;
  /** CONNECT must arrive this soon after TCP accept (on TLS ports: the handshake, then CONNECT), or the socket is dropped. */
  readonly connectTimeoutMs: number;
  /** A subscriber whose socket is full and that takes nothing for this long is dropped (fanout-release.ts). */
  readonly drainTimeoutMs: number;
  /**
   * Bytes of the live fan-out a subscriber may have not yet taken before it is dropped
   * (fanout-release.ts: past the grace a publish no longer waits for a slow subscriber; this bounds
   * what it holds).
   */
  readonly subscriberBufferBytes: number;
  /**
   * How long a subscriber's full socket may hold the publishes to it (and so the publishers' PUBACKs)
   * before they are released (fanout-release.ts).
   */
  readonly subscriberGraceMs: number;
  /**
   * Messages in flight inside aedes' mqemitter at once; the rest wait in its array queue, whose
   * shift() turns O(n) once it outgrows V8's regular heap objects (~16k entries). Each message stays
   * in flight for a few event-loop turns (aedes defers every delivery), so 100 capped the relay
   * near 100 messages per turn and a burst then collapsed into queue shifting (issue 6 profile:
   * 65 % of the broker's CPU in mqemitter's `released` at 16,000 msg/s).
   */
  readonly mqConcurrency: number;
  /**
   * Accounted bytes (payload, topic and QUEUE_ENTRY_OVERHEAD_BYTES per message) one persistent
   * session may have queued (in the broker's memory, or in Redis) before readings are no longer queued for it;
   * events, statuses and alert changes always are (session-queue-bound.ts,
   * docs/broker.md "Limits"). Every store: on disk, in memory, in Redis (there by its length, read
   * at most every second).
   */
  readonly sessionQueueMaxBytes: number;
  /** aedes $SYS heartbeat; stale wills of dead brokers are published after 4 of these. */
  readonly heartbeatIntervalMs: number;
  /** Packets a client may pipeline before its CONNACK. */
  readonly queueLimit: number;
  /** Broker-published offline statuses per event-loop turn during a mass disconnect. */
  readonly offlineBatch: number;
  /** Back-off of wrong passwords (auth-throttle.ts). */
  readonly authThrottle: Partial<AuthThrottleLimits>;
  /** Accept queue of the MQTT/TCP listener (early-listener.ts LISTEN_BACKLOG says why not Node's 511). */
  readonly listenBacklog: number;
  /**
   * Cluster/Redis store, at close: how long the fan-out waits for its QUITs, and then the store for
   * its writes in flight (and a barrier round trip), before their connections are dropped: at most
   * twice this in all. A Redis away or stalled never answers; the process must still stop
   * (test/broker/redis-close.test.ts).
   */
  readonly redisCloseTimeoutMs: number;
  /** Redis store: marks behind a persistent session's queue head from which the head is watched, and how long it may stay (stranded-head.ts). */
  readonly strandedHead: { readonly marks: number; readonly afterMs: number };
}

/**
 * The default bound of one persistent session's queue for a heap of `heapLimitBytes` (node's
 * heap_size_limit, which follows the machine's or the container's memory): a fifth of it. Only a
 * persistent session that takes readings at QoS 1 fills up (svc-ingest; a bureau integration
 * subscribed so: alerts' persistent sessions take events and statuses only), so two such at the
 * bound leave the broker 60 % of its heap for its connections and the rest. Here (4.3 GB) that is
 * 870 MB: ~1,070,000 readings of ~100 B, 6 h of svc-ingest away (or InfluxDB down past ingest's
 * 16 MiB spool) at the demo site's 48 readings/s (9 homes), 2.5 min at the province's 7,000 msg/s,
 * whose broker wants more memory (or CAREWATCH_BROKER_SESSION_QUEUE_MAX_BYTES). At least 64 MiB.
 */
export function sessionQueueBoundFor(heapLimitBytes: number): number {
  return Math.max(64 * 1024 * 1024, Math.floor(heapLimitBytes / 5));
}

export const DEFAULT_LIMITS: BrokerLimits = {
  maxPacketBytes: Math.max(64 * 1024, MAX_DEVICE_PAYLOAD_BYTES + 1024),
  credentialCacheSize: 250_000,
  connectTimeoutMs: 10_000,
  drainTimeoutMs: 30_000,
  subscriberBufferBytes: DEFAULT_SUBSCRIBER_BUFFER_BYTES,
  subscriberGraceMs: DEFAULT_SUBSCRIBER_GRACE_MS,
  mqConcurrency: 2_000,
  // The broker process takes sessionQueueBoundFor(its heap limit) instead (main.ts); this is the
  // embedded default (tests, a broker built in another process).
  sessionQueueMaxBytes: 512 * 1024 * 1024,
  heartbeatIntervalMs: 60_000,
  queueLimit: 42,
  offlineBatch: 200,
  authThrottle: DEFAULT_AUTH_THROTTLE,
  listenBacklog: LISTEN_BACKLOG,
  strandedHead: { marks: STRANDED_MARKS, afterMs: STRANDED_AFTER_MS },
  // Redis answers in milliseconds; ioredis gives up on a command after 20 reconnects, ~10 s.
  redisCloseTimeoutMs: 10_000,
};
