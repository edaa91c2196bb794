import { Type } from '@sinclair/typebox';
import { MAX_DEVICE_PAYLOAD_BYTES } from '../contract/payloads.ts';
import { DEFAULT_AUTH_THROTTLE, type AuthThrottleLimits } from './auth-throttle.ts';
import { LISTEN_BACKLOG } from './early-listener.ts';

/** Environment of the broker process (read once by main.ts through common/config.ts loadConfig). */
export const BrokerEnv = Type.Object({
  registry: Type.String({ minLength: 1, default: 'config/demo-site.json', description: 'path to the site registry JSON' }),
  brokerHost: Type.String({ minLength: 1, default: '127.0.0.1', description: 'interface to listen on, e.g. 127.0.0.1 or 0.0.0.0' }),
  brokerPort: Type.Integer({ minimum: 0, maximum: 65535, default: 1883 }),
  brokerWsPort: Type.Integer({ minimum: 0, maximum: 65535, default: 8083 }),
  brokerStoreDir: Type.String({ minLength: 1, default: '.tmp/state/broker', description: 'directory of the durable session store (journal); unused with a Redis url' }),
  brokerHttpPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'port of GET /metrics and GET /healthz (unset: none)' })),
  brokerRedisUrl: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'redis://host:port[/db] for persistent sessions' })),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
});

export interface BrokerConfig {
  readonly host: string;
  /** 0 picks a free port (tests); the broker's tcpPort/wsPort report the actual one. */
  readonly port: number;
  readonly wsPort: number;
  /** Redis persistence (sessions, queued QoS 1 messages, retained statuses, wills) when set. */
  readonly redisUrl?: string | undefined;
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

export interface BrokerLimits {
  /**
   * Largest MQTT packet (Remaining Length) accepted from any client. Devices are further held to
   * MAX_DEVICE_PAYLOAD_BYTES of payload; this bound is for services (alert messages) and for the
   * memory one connection can pin before its packet is parsed.
   */
  readonly maxPacketBytes: number;
  /** Successful scrypt verifications kept in memory (one per device that reconnects). */
  readonly credentialCacheSize: number;
  /** CONNECT must arrive this soon after TCP accept, or the socket is dropped. */
  readonly connectTimeoutMs: number;
  /** A client whose socket stays full this long is dropped, so one frozen reader cannot stall delivery. */
  readonly drainTimeoutMs: number;
  /**
   * Messages in flight inside aedes' mqemitter at once; the rest wait in its array queue, whose
   * shift() turns O(n) once it outgrows V8's regular heap objects (~16k entries). Each message stays
   * in flight for a few event-loop turns (aedes defers every delivery), so 100 capped the relay
   * near 100 messages per turn and a burst then collapsed into queue shifting (issue 6 profile:
   * 65 % of the broker's CPU in mqemitter's `released` at 16,000 msg/s).
   */
  readonly mqConcurrency: number;
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
}

export const DEFAULT_LIMITS: BrokerLimits = {
  maxPacketBytes: Math.max(64 * 1024, MAX_DEVICE_PAYLOAD_BYTES + 1024),
  credentialCacheSize: 250_000,
  connectTimeoutMs: 10_000,
  drainTimeoutMs: 30_000,
  mqConcurrency: 2_000,
  heartbeatIntervalMs: 60_000,
  queueLimit: 42,
  offlineBatch: 200,
  authThrottle: DEFAULT_AUTH_THROTTLE,
  listenBacklog: LISTEN_BACKLOG,
};
