import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { Aedes, type AedesOptions, type Client, type ConnectPacket, type PublishPacket, type Subscription } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { systemClock, type Clock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import { holdUntilConnack, releaseAfterConnack } from './connack-first.ts';
import { releaseFanout, SUBSCRIBER_BUFFER_FULL, type FanoutRelease } from './fanout-release.ts';
import { DEFAULT_LIMITS, type BrokerConfig, type BrokerLimits } from './config.ts';
import { createCredentialVerifier } from './credentials.ts';
import { createAuthThrottle, type AuthThrottleStats } from './auth-throttle.ts';
import { guardPacketSize } from './packet-size-guard.ts';
import { REFUSAL_CODES, authorizePublish, authorizeSubscribe, checkConnect, checkWill, deviceIdentity, mayReceive, type Credentials, type Identity, type PolicyContext, type Refusal, type RefusalCode } from './policy.ts';
import type { ClosablePersistence, StoreErrorCode, StoredWill, StrandedHeadEvent, WillAction } from './redis-persistence.ts';
import { STRANDED_HEAD_CODE } from './stranded-head.ts';
import type { EarlyListener } from './early-listener.ts';
import type { FanoutStats } from './redis-mq.ts';
import { PUBSUB_RESYNC_CODE, watchPubsubResync, type PubsubResyncStats, type Recovery } from './pubsub-resync.ts';
import { offlineStatus, stampReceived, stampWill, type OfflineReason } from './status.ts';
import { guardMqRecursion } from './mq-recursion-guard.ts';
import { IndexedMemoryPersistence } from './memory-persistence.ts';
import { isBoundedStore, type SessionQueueBound } from './session-queue-bound.ts';
import { corkPerTurn } from './cork-per-turn.ts';
import { useFifoMqQueue } from './mq-queue.ts';
import { ackAfterPublish } from './ack-after-publish.ts';
import { cleanConnect, type ConnectPathCounts } from './clean-connect.ts';
import { DurableMemoryPersistence } from './durable-persistence.ts';
import type { Registry } from 'prom-client';
import { createOpsServer, type OpsServer } from '../common/metrics.ts';
import { brokerProblems, createBrokerMetrics } from './metrics.ts';
import { MIN_TLS_VERSION } from '../common/tls.ts';
import { createRejectionLog } from '../common/rejection-log.ts';

export interface BrokerDeps {
  readonly config: BrokerConfig;
  readonly registry: RegistryIndex;
  readonly logger: Logger;
  /** Platform clock for broker-stamped status timestamps. */
  readonly now?: () => number;
  /** Times the held refusals of wrong passwords (auth-throttle.ts); tests pass a manual clock. */
  readonly clock?: Clock;
  /**
   * The MQTT/TCP listener, already listening on config.host:port, opened by main.ts before this
   * module loaded (early-listener.ts: devices reconnecting after a restart wait instead of being
   * refused). Used by the first start() only; without it start() listens itself.
   */
  readonly listener?: EarlyListener;
}

export interface BrokerStats {
  readonly connectedClients: number;
  readonly refusals: Readonly<Record<RefusalCode, number>>;
  readonly offlinePublished: number;
  readonly willsPublished: number;
  /**
   * Will passes' wills of nodes aedes called dead (no heartbeat heard for 3 heartbeats) that still
   * kept their proof of life in Redis: this node, not that one, missed the heartbeats (cluster only).
   */
  readonly willsDeferred: number;
  /**
   * Persistent sessions' connections closed here for a stranded queue head (stranded-head.ts; cluster
   * only): a head queued by a node now dead, not acknowledged while later messages were.
   */
  readonly queueHeadsStranded: number;
  /** Connections closed because the client sent nothing for 1.5 × its keepalive [MQTT-3.1.2-24], since start. */
  readonly keepaliveTimeouts: number;
  readonly clientErrors: number;
  /** Subscribers closed for taking nothing for `drainTimeoutMs` (aedes' 'drain timeout') or for being `subscriberBufferBytes` behind. */
  readonly slowSubscribersDropped: number;
  /** Bytes of the live fan-out subscribers have not taken yet: in their sockets' buffers or on their way (fanout-release.ts). */
  readonly subscriberBufferedBytes: number;
  /**
   * Times a subscriber's socket stayed full past `subscriberGraceMs` and the publishes to it were
   * released (fanout-release.ts): a service falling behind, before any drop.
   */
  readonly subscriberGraceExpiries: number;
  /**
   * Readings not queued for a persistent session at its bound (limits.sessionQueueMaxBytes), and the
   * largest session queue now, in accounted bytes (a Redis store's: its length as last read, ≤ 1 s old).
   */
  readonly sessionQueue: { readonly dropped: number; readonly largestBytes: number };
  readonly credentialCache: { readonly size: number; readonly hits: number; readonly misses: number };
  /** Password hashes computed, per algorithm: HMAC for machine secrets, scrypt for older registries. */
  readonly hashComputations: { readonly hmac: number; readonly scrypt: number };
  readonly authThrottle: AuthThrottleStats;
  /** PUBLISH packets accepted from clients, and wills published (the messages in). */
  readonly messagesIn: number;
  /** Deliveries to subscribers, one per subscriber (the messages out). */
  readonly messagesOut: number;
  /** Messages waiting in aedes' mqemitter queue beyond its concurrency (read at the call). */
  readonly queuedMessages: number;
  /** A cluster node's Redis subscriptions and what arrived through them (redis-mq.ts); undefined otherwise. */
  readonly clusterFanout?: FanoutStats;
  /** A cluster node's recoveries of its Redis pub/sub subscriber connection (pubsub-resync.ts); undefined otherwise. */
  readonly pubsubResync?: PubsubResyncStats;
  /** CONNECTs handled by clean-connect.ts (clean sessions) and by aedes' own handler (the rest). */
  readonly connectPaths: Readonly<ConnectPathCounts>;
}

export interface Broker {
  start(): Promise<void>;
  close(): Promise<void>;
  /** Actual ports after start() (config may say 0); 0 when the plain ports are turned off. */
  readonly tcpPort: number;
  readonly wsPort: number;
  /** MQTT over TLS and over WebSocket over TLS after start(); undefined without config.tls. */
  readonly tlsPort: number | undefined;
  readonly wssPort: number | undefined;
  /** The aedes instance (in-process subscribers, tests); undefined before start(). */
  readonly aedes: Aedes;
  stats(): BrokerStats;
  /** Prometheus metrics (GET /metrics on the HTTP port); built from stats() at scrape time. */
  readonly metrics: Registry;
  /** The metrics/health HTTP port after start(); undefined when config.httpPort is unset. */
  readonly httpPort: number | undefined;
  /** Consecutive wrong passwords recorded for (client address, username). */
  authFailures(address: string, username: string): number;
  /** In a cluster: this node's aedes id after start() (`<nodeId>-<random>`); undefined for a single broker. */
  readonly nodeId: string | undefined;
}

/** What we know of a connection, from CONNECT to its end. */
interface Session {
  readonly credentials: Credentials | Refusal;
  identity?: Identity;
  /** The accepted will packet object (aedes publishes this very object on an unclean close). */
  will?: unknown;
  /** Set when authenticated: this connection's place among its client id's connections here (latestAuth). */
  generation?: number;
}

/** aedes keeps these on its objects without declaring them; read them through one narrow door. */
interface AedesInternals {
  clients: Record<string, Client | undefined>;
}
interface ClientInternals {
  _disconnected?: boolean;
}

/** The peer's address: the TCP socket's, or the HTTP upgrade request's for MQTT over WebSocket. */
function clientAddress(client: Client): string {
  const req = (client as unknown as { req?: IncomingMessage }).req;
  const conn = client.conn as unknown as { remoteAddress?: string };
  return req?.socket.remoteAddress ?? conn.remoteAddress ?? 'unknown';
}

function asRefusalError(refusal: Refusal): Error & { returnCode: number } {
  return Object.assign(new Error(refusal.reason), { returnCode: refusal.returnCode ?? 5, code: refusal.code });
}

export function createBroker(deps: BrokerDeps): Broker {
  const { config, registry } = deps;
  const log = deps.logger.child({ component: 'broker' });
  const now = deps.now ?? Date.now;
  const limits: BrokerLimits = { ...DEFAULT_LIMITS, ...config.limits };
  const ctx: PolicyContext = { registry, production: config.production };
  const verifier = createCredentialVerifier(limits.credentialCacheSize);
  const throttle = createAuthThrottle(deps.clock ?? systemClock, limits.authThrottle);
  const sessions = new WeakMap<Client, Session>();
  const refusals = Object.fromEntries(REFUSAL_CODES.map((c) => [c, 0])) as Record<RefusalCode, number>;
  let offlinePublished = 0;
  let willsPublished = 0;
  let willsDeferred = 0;
  let queueHeadsStranded = 0;
  let keepaliveTimeouts = 0;
  let clientErrors = 0;
  let slowSubscribersDropped = 0;
  // Plain integer increments on the publish and delivery paths: the only per-message work for metrics.
  let messagesIn = 0;
  let messagesOut = 0;
  const connectPaths: ConnectPathCounts = { clean: 0, aedes: 0 };
  let closing = false;

  let aedes: Aedes | undefined;
  let fanout: FanoutRelease | undefined;
  let persistence: ClosablePersistence | undefined;
  let fanoutStats: (() => FanoutStats) | undefined;
  let resyncStats: (() => PubsubResyncStats) | undefined;
  let aliveTimer: NodeJS.Timeout | undefined;
  let tcp: TcpServer | undefined;
  let http: HttpServer | undefined;
  let wss: WebSocketServer | undefined;
  let tlsServer: TlsServer | undefined;
  let https: HttpsServer | undefined;
  let wssSecure: WebSocketServer | undefined;
  let tcpPort = 0;
  let wsPort = 0;
  let tlsPort: number | undefined;
  let wssPort: number | undefined;
  const plain = config.plain !== false;
  // A port scanner or a misconfigured device retries its failed handshake every few seconds: counted
  // exactly, logged at most 10 lines per 10 s.
  const handshakeLog = createRejectionLog<'BROKER_TLS_HANDSHAKE_FAILED'>(log, now, 10, 10_000, 'TLS handshake failed');
  // Cluster: the Redis store's connection fails once per reconnect attempt while Redis is away.
  const storeErrorLog = createRejectionLog<StoreErrorCode>(log, now, 10, 60_000, 'Redis store error');
  // Cluster: a message on the fan-out's Redis channels the node cannot read repeats as often as it is sent.
  const fanoutMalformedLog = createRejectionLog<'BROKER_CLUSTER_MESSAGE_MALFORMED'>(log, now, 10, 60_000, 'a message on the cluster fan-out (Redis pub/sub) could not be read or delivered: dropped');
  const sockets = new Set<Socket>();
  /**
   * Client ids whose local connection is being closed because the client connected to ANOTHER node
   * (aedes' `$SYS/<id>/new/clients` takeover across nodes [MQTT-3.1.4-2]). The device is online
   * there: neither its will nor an offline status may be published for the closed connection here,
   * or its retained status would say offline while it is connected (a false "device offline" alert).
   */
  const takenOver = new Set<string>();
  /**
   * Per client id, the generation of its latest authenticated connection on this node. A device that
   * reconnects while this node still holds its old, half-open connection (flaky Wi-Fi: the device
   * notices first) takes its session over [MQTT-3.1.4-2]: aedes closes the old connection before
   * registering the new one, and its will would say "offline" for a device that is online. Set only
   * once a CONNECT is authenticated, so nobody can silence a device's will by connecting with its id,
   * and it counts only while that newer connection is open: one that dies before it is registered
   * (the flaky radio again) must not leave the live older connection without its will.
   */
  const latestAuth = new Map<string, { readonly generation: number; readonly client: Client }>();
  let authGeneration = 0;
  /** Client ids whose taken-over connection's will was refused: aedes then deleted the stored will, the new connection's. */
  const willToRestore = new Set<string>();
  /**
   * Persistent-session connections this node closed because its Redis pub/sub connection came back
   * (pubsub-resync.ts), or for a stranded queue head (closeStrandedSession): the client is not dead
   * and reconnects at once, so, as at a graceful shutdown,
   * neither its will nor an offline status is published (this concerns a device with a persistent
   * session: services have no will and get no offline status). A device that does not come back is
   * caught by the alerts' heartbeat budget.
   */
  const closedForResync = new WeakSet<Client>();
  /** When each persistent session's connection registered here (cluster only: closeStrandedSession). */
  const registeredAt = new WeakMap<Client, number>();
  /** Whether a node (aedes id) still keeps its proof of life in Redis (cluster only; set in start()). */
  let headNodeAlive: ((brokerId: string) => Promise<boolean>) | undefined;

  function refused(refusal: Refusal, client: Client | null, extra?: Record<string, unknown>): void {
    refusals[refusal.code]++;
    log.warn({ code: refusal.code, clientId: client?.id ?? undefined, ...extra }, refusal.reason);
  }

  // ---- offline statuses the broker publishes on a device's behalf --------------------------
  // Spread over event-loop turns (limits.offlineBatch per turn): when 10,000 devices drop at once
  // (a site's network fails) this keeps the storm from arriving at aedes in one synchronous burst.
  const offlineQueue: Array<{ deviceId: string; topic: string; reason: OfflineReason }> = [];
  let offlineScheduled = false;
  function queueOffline(deviceId: string, topic: string, reason: OfflineReason): void {
    offlineQueue.push({ deviceId, topic, reason });
    if (!offlineScheduled) {
      offlineScheduled = true;
      setImmediate(drainOffline);
    }
  }
  function drainOffline(): void {
    offlineScheduled = false;
    const broker = aedes;
    if (broker === undefined || closing) {
      offlineQueue.length = 0;
      return;
    }
    const internals = broker as unknown as AedesInternals;
    for (let n = 0; n < limits.offlineBatch && offlineQueue.length > 0; n++) {
      const item = offlineQueue.shift();
      if (item === undefined) break;
      // Session takeover [MQTT-3.1.4-2]: the same client id is connected again, so the device
      // is not offline (the new connection publishes its own online status).
      const current = internals.clients[item.deviceId];
      if (current !== undefined && !current.closed) continue;
      if (takenOver.delete(item.deviceId)) continue;
      const packet: PublishPacket = { cmd: 'publish', topic: item.topic, payload: offlineStatus(now(), item.reason), qos: 1, retain: true, dup: false };
      broker.publish(packet, (err) => {
        if (err) log.error({ err, deviceId: item.deviceId, code: 'BROKER_OFFLINE_STATUS_FAILED' }, 'offline status publish failed (the store refused it); alerts still raises the device from its silence');
        else offlinePublished++;
      });
    }
    if (offlineQueue.length > 0) {
      offlineScheduled = true;
      setImmediate(drainOffline);
    }
  }

  // ---- aedes hooks ----------------------------------------------------------------------
  const preConnect: AedesOptions['preConnect'] = (client, packet: ConnectPacket, callback) => {
    const credentials = checkConnect(ctx, {
      clientId: packet.clientId,
      username: packet.username,
      password: packet.password,
      protocolVersion: packet.protocolVersion ?? 4,
      will: packet.will,
    });
    const session: Session = { credentials };
    if (credentials.ok && packet.will != null) {
      if (credentials.willAllowed) session.will = packet.will;
      else {
        // aedes copies packet.will into the session right after this hook; dropping it here
        // means it is never stored nor published. The broker's own offline status replaces it.
        const refusal = checkWill(credentials.identity, packet.will.topic);
        if (!refusal.ok) refused(refusal, null, { clientId: packet.clientId });
        delete packet.will;
      }
    }
    sessions.set(client, session);
    // Before its subscriptions exist (a persistent session's are restored during the CONNECT).
    fanout?.watch(client);
    // A persistent session's subscriptions are restored before its CONNACK (connack-first.ts).
    if (packet.clean === false) holdUntilConnack(client);
    callback(null, true);
  };

  const authenticate: AedesOptions['authenticate'] = (client, _username, _password, done) => {
    const session = sessions.get(client);
    const credentials = session?.credentials;
    if (session === undefined || credentials === undefined) {
      done(asRefusalError({ ok: false, code: 'BROKER_CLIENT_ERROR', reason: 'no CONNECT seen', returnCode: 5 }) as never, false);
      return;
    }
    // The peer address costs a getpeername syscall (2.2 % of a reconnect burst's CPU, 5,000
    // devices): read only when the throttle holds a record, or to refuse.
    let peer: string | undefined;
    const refuse = (refusal: Refusal): void => {
      refused(refusal, client, { address: (peer ??= clientAddress(client)) });
      done(asRefusalError(refusal) as never, false);
    };
    // A wrong password (or an account that does not exist: the same answer, so names cannot be
    // probed) is refused after the throttle's delay; a right one is accepted at once.
    const wrong = (refusal: Refusal, username: string): void => {
      throttle.hold((peer ??= clientAddress(client)), throttle.failure(peer, username), () => refuse(refusal));
    };
    if (!throttle.quiet() && !throttle.admit((peer ??= clientAddress(client)))) {
      refuse({ ok: false, code: 'BROKER_AUTH_THROTTLED', reason: `too many refused attempts from ${peer ?? clientAddress(client)} still being answered; password not checked`, returnCode: 3 });
      return;
    }
    if (!credentials.ok) {
      if (credentials.code === 'BROKER_UNKNOWN_ACCOUNT') wrong(credentials, typeof _username === 'string' ? _username : '');
      else refuse(credentials);
      return;
    }
    const username = credentials.identity.id;
    const decide = (ok: boolean): void => {
      if (!ok) {
        wrong({ ok: false, code: 'BROKER_BAD_PASSWORD', reason: `wrong password for "${username}"`, returnCode: 4 }, username);
        return;
      }
      // Nothing recorded: nothing to clear for this address.
      if (!throttle.quiet()) throttle.success((peer ??= clientAddress(client)), username);
      session.identity = credentials.identity;
      session.generation = ++authGeneration;
      if (typeof client.id === 'string' && !client.closed) latestAuth.set(client.id, { generation: session.generation, client });
      done(null, true);
    };
    const result = verifier.verify(username, credentials.password, credentials.secretHash);
    if (typeof result === 'boolean') {
      decide(result);
      return;
    }
    result.then(decide, (err: unknown) => {
      log.error({ err, clientId: client.id, code: 'BROKER_AUTH_VERIFY_FAILED' }, 'password verification failed');
      refuse({ ok: false, code: 'BROKER_BAD_PASSWORD', reason: 'password verification failed', returnCode: 4 });
    });
  };

  const authorizePublishHook: AedesOptions['authorizePublish'] = (client, packet, callback) => {
    const session = client === null ? undefined : sessions.get(client);
    const identity = session?.identity;
    const brokerId = (packet as { brokerId?: unknown }).brokerId;
    // A will stored by an earlier broker process (Redis persistence), published by this one.
    const storedWill = typeof brokerId === 'string' && brokerId !== aedes?.id;
    const isWill = storedWill || (session?.will !== undefined && session.will === packet);
    if (isWill || client === null) {
      // A will: published by aedes when the connection died without DISCONNECT [MQTT-3.1.2-8].
      if (closing) {
        // Graceful broker shutdown: the devices are not dead, they will reconnect to the next
        // broker; publishing 10,000 offline statuses would raise 10,000 device alerts. A device
        // that does not come back is caught by the alerts' heartbeat budget.
        callback(new Error('broker closing: will not published'));
        return;
      }
      if (storedWill && client !== null) {
        // The device is connected again (aedes looked it up by client id): its old will is stale.
        callback(new Error('stale will of a reconnected client'));
        return;
      }
      if (client !== null && takenOver.has(client.id)) {
        // Closed because the device connected to another node: it is not offline.
        callback(new Error('client taken over by another broker node: will not published'));
        return;
      }
      const newer = client === null ? undefined : latestAuth.get(client.id);
      if (client !== null && session?.generation !== undefined && newer !== undefined && newer.client !== client && !newer.client.closed && newer.generation > session.generation) {
        // Closed because the device connected again here (latestAuth): it is not offline. aedes
        // deletes the client id's stored will after this refusal; that is the new connection's will,
        // stored again once it is registered (the 'client' event).
        willToRestore.add(client.id);
        callback(new Error('client taken over on this node: will not published'));
        return;
      }
      if (client !== null && closedForResync.has(client)) {
        callback(new Error('connection closed for the pub/sub resync: will not published'));
        return;
      }
      const clientId = (packet as { clientId?: unknown }).clientId;
      const device = registry.device(identity?.id ?? (typeof clientId === 'string' ? clientId : ''));
      const willIdentity = identity ?? (device !== undefined ? deviceIdentity(device.id, device.homeId) : undefined);
      const check = willIdentity !== undefined ? checkWill(willIdentity, packet.topic) : null;
      if (check === null || !check.ok) {
        refused(check ?? { ok: false, code: 'BROKER_WILL_NOT_OWN_STATUS', reason: `will on "${packet.topic.slice(0, 200)}" of an unknown client refused` }, client);
        callback(new Error('will refused'));
        return;
      }
      packet.payload = stampWill(Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload), now());
      // The contract: status is retained QoS 1, so the offline state is what a late subscriber sees.
      packet.retain = true;
      packet.qos = 1;
      willsPublished++;
      messagesIn++;
      callback(null);
      return;
    }
    if (identity === undefined) {
      callback(new Error('not authenticated'));
      return;
    }
    const decision = authorizePublish(ctx, identity, { topic: packet.topic, payloadBytes: packet.payload.length, retain: packet.retain });
    if (decision.ok) {
      // GB 50440 / GB 26875 timing: every device message carries the moment the broker received it.
      if (identity.kind === 'device') packet.payload = stampReceived(Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload), now());
      messagesIn++;
      callback(null);
      return;
    }
    refused(decision, client, { topic: packet.topic.slice(0, 200) });
    // aedes closes the connection on a refused PUBLISH, without forwarding it [MQTT-3.3.5-2].
    callback(Object.assign(new Error(decision.reason), { code: decision.code }));
  };

  const authorizeSubscribeHook: AedesOptions['authorizeSubscribe'] = (client, sub: Subscription, callback) => {
    const identity = sessions.get(client)?.identity;
    if (identity === undefined) {
      callback(new Error('not authenticated'));
      return;
    }
    const decision = authorizeSubscribe(ctx, identity, sub.topic);
    if (decision.ok) {
      callback(null, sub);
      return;
    }
    refused(decision, client, { filter: sub.topic.slice(0, 200) });
    // SUBACK 0x80 for this filter [MQTT-3.9.3]; the connection stays up.
    callback(null, null);
  };

  const authorizeForward: AedesOptions['authorizeForward'] = (client, packet) => {
    const identity = sessions.get(client)?.identity;
    if (identity !== undefined && mayReceive(identity, packet.topic)) {
      messagesOut++;
      return packet;
    }
    refusals.BROKER_FORWARD_DENIED++;
    return null;
  };

  function onClientDisconnect(client: Client): void {
    const session = sessions.get(client);
    const identity = session?.identity;
    if (latestAuth.get(client.id)?.client === client) latestAuth.delete(client.id);
    // Checked (and the mark removed) after the will, which aedes authorizes before this event.
    if (takenOver.delete(client.id)) return;
    if (closing || closedForResync.has(client) || identity === undefined || identity.kind !== 'device') return;
    const clean = (client as unknown as ClientInternals)._disconnected === true;
    if (clean) queueOffline(identity.id, identity.statusTopic, 'disconnected');
    else if (session?.will === undefined) queueOffline(identity.id, identity.statusTopic, 'connection_lost');
    // else: aedes publishes the device's will (stamped in authorizePublish).
  }

  function accept(conn: Parameters<Aedes['handle']>[0], req?: Parameters<Aedes['handle']>[1]): void {
    const broker = aedes;
    if (broker === undefined || closing) {
      conn.destroy();
      return;
    }
    const client = broker.handle(conn, req);
    if (!guardPacketSize(client, limits.maxPacketBytes)) log.warn({ code: 'BROKER_PACKET_GUARD_MISSING' }, 'aedes client has no parser to guard: packet size not bounded');
    // PUBACK only once the message is stored (a crash must not lose what was acknowledged).
    if (!ackAfterPublish(client)) {
      log.error({ code: 'BROKER_ACK_ORDER_UNGUARDED' }, 'aedes client internals changed: QoS 1 PUBACK may precede storage; closing the connection');
      conn.destroy();
      return;
    }
    // A clean session's CONNECT without aedes' per-connection stream pipeline (~100 µs of CPU each).
    cleanConnect(client, connectPaths, { announceNewClients: config.cluster !== undefined });
  }

  /**
   * The node's Redis pub/sub connection is back and Redis holds its subscriptions again: every
   * persistent session connected here reconnects and reads what was queued for it meanwhile
   * (pubsub-resync.ts says why a reconnect, and why only now). Clean sessions lost what was published
   * meanwhile; they keep their connections.
   */
  function closePersistentSessions({ downMs }: Recovery): number {
    const broker = aedes;
    if (broker === undefined || closing) return 0;
    let closed = 0;
    let clean = 0;
    for (const client of Object.values((broker as unknown as AedesInternals).clients)) {
      if (client === undefined || client.closed) continue;
      if (client.clean) {
        clean++;
        continue;
      }
      closedForResync.add(client);
      client.close();
      closed++;
    }
    log.warn(
      { code: PUBSUB_RESYNC_CODE, downMs, sessionsClosed: closed, cleanSessions: clean },
      'Redis pub/sub connection back after a loss: persistent sessions closed here to reconnect and receive what was queued meanwhile; clean sessions lost what was published meanwhile',
    );
    return closed;
  }

  /**
   * A persistent session's queue head stayed while later messages were acknowledged (stranded-head.ts):
   * the node that ran the acknowledgements holds the session's connection. Closed, so that the
   * session reconnects and is sent its queue from the head, only if the head's node (named by its
   * packet key) is dead: a live node's PUBLISH of it may still come (a node or a fan-out behind). And
   * only once the session has been connected here for the watch's time: one that just reconnected is
   * being sent its queue from the head. Answers whether it closed it.
   */
  async function closeStrandedSession(e: StrandedHeadEvent): Promise<boolean> {
    if (e.again) {
      log.warn({ code: STRANDED_HEAD_CODE, clientId: e.clientId, head: e.head, marks: e.marks }, "a persistent session's queue head is still not acknowledged after the session was closed for it; not closed again");
      return false;
    }
    const current = (): Client | undefined => (aedes as unknown as AedesInternals | undefined)?.clients[e.clientId];
    const client = current();
    if (closing || headNodeAlive === undefined || client === undefined || client.closed || client.clean) return false;
    const since = registeredAt.get(client);
    if (since === undefined || now() - since < limits.strandedHead.afterMs) return false;
    const brokerId = e.headNode;
    if (brokerId === undefined || (await headNodeAlive(brokerId))) return false;
    if (closing || client.closed || current() !== client) return false;
    queueHeadsStranded++;
    log.warn(
      { code: STRANDED_HEAD_CODE, clientId: e.clientId, head: e.head, marks: e.marks, node: brokerId },
      "a persistent session's queue head is not acknowledged while later messages are, and the node that queued it is dead (it died between queueing and publishing it): session closed here to reconnect and receive its queue",
    );
    closedForResync.add(client);
    client.close();
    return true;
  }

  function queuedMessages(): number {
    const mq = (aedes as unknown as { mq?: { _messageQueue?: { length?: unknown } } } | undefined)?.mq;
    const n = mq?._messageQueue?.length;
    return typeof n === 'number' ? n : 0;
  }

  function stats(): BrokerStats {
    return {
      connectedClients: aedes?.connectedClients ?? 0,
      refusals: { ...refusals },
      offlinePublished,
      willsPublished,
      willsDeferred,
      queueHeadsStranded,
      keepaliveTimeouts,
      clientErrors,
      slowSubscribersDropped,
      credentialCache: { size: verifier.size, hits: verifier.hits, misses: verifier.misses },
      hashComputations: verifier.computations,
      authThrottle: throttle.stats(),
      messagesIn,
      messagesOut,
      queuedMessages: queuedMessages(),
      subscriberBufferedBytes: fanout?.buffered() ?? 0,
      subscriberGraceExpiries: fanout?.graceExpiries() ?? 0,
      sessionQueue: isBoundedStore(persistence) ? { dropped: persistence.droppedAtBound, largestBytes: persistence.largestQueueBytes() } : { dropped: 0, largestBytes: 0 },
      connectPaths: { ...connectPaths },
      ...(fanoutStats !== undefined ? { clusterFanout: fanoutStats() } : {}),
      ...(resyncStats !== undefined ? { pubsubResync: resyncStats() } : {}),
    };
  }

  /** One TCP connection of the MQTT port or the TLS port: the same treatment on both. */
  function onMqttSocket(socket: Socket): void {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    corkPerTurn(socket);
    accept(socket);
  }

  /** An MQTT-over-WebSocket server on an HTTP or HTTPS server, path /mqtt. */
  function mqttOverWebSocket(server: HttpServer | HttpsServer): WebSocketServer {
    // One MQTT packet per frame is what clients send; the frame bound keeps ws from buffering
    // 100 MiB (its default) before our packet guard sees a byte.
    const ws = new WebSocketServer({ server, path: '/mqtt', maxPayload: limits.maxPacketBytes + 16 });
    ws.on('connection', (socket, req) => {
      const stream = createWebSocketStream(socket);
      stream.on('error', () => stream.destroy());
      accept(stream, req);
    });
    ws.on('error', (err) => log.error({ err, code: 'BROKER_WS_SERVER_ERROR' }, 'websocket server error'));
    return ws;
  }

  function upgradeRequired(_req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket: connect to /mqtt\n');
  }

  function onHandshakeError(err: Error, socket: Socket): void {
    refusals.BROKER_TLS_HANDSHAKE_FAILED++;
    handshakeLog.record('BROKER_TLS_HANDSHAKE_FAILED', socket.remoteAddress ?? 'unknown', (err as { code?: unknown }).code === undefined ? err.message : String((err as { code?: unknown }).code));
    socket.destroy();
  }

  /** Raw TCP sockets of a TLS port, from accept on: close() destroys those still in their handshake too. */
  function track(socket: Socket): void {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  }

  function listening(): boolean {
    if (closing) return false;
    const plainUp = !plain || (tcp?.listening === true && http?.listening === true);
    const tlsUp = config.tls === undefined || (tlsServer?.listening === true && https?.listening === true);
    return plainUp && tlsUp;
  }

  const metrics = createBrokerMetrics(stats);
  let ops: OpsServer | undefined;

  return {
    metrics,
    get httpPort() {
      return ops?.port;
    },
    get tcpPort() {
      return tcpPort;
    },
    get wsPort() {
      return wsPort;
    },
    get tlsPort() {
      return tlsPort;
    },
    get wssPort() {
      return wssPort;
    },
    get aedes(): Aedes {
      if (aedes === undefined) throw new Error('broker not started');
      return aedes;
    },
    stats,
    authFailures: (address, username) => throttle.failuresOf(address, username),
    get nodeId() {
      return config.cluster !== undefined ? aedes?.id : undefined;
    },

    async start() {
      if (aedes !== undefined) throw new Error('broker already started');
      if (!plain && config.tls === undefined) throw new Error('no listener: the plain ports are turned off and no TLS certificate is configured');
      closing = false;
      // Redis; else the durable journal on local disk under the in-memory store (durable-persistence.ts,
      // what `npm start` uses); else memory only (in-process tests): O(1) outgoing queue (memory-persistence.ts).
      if (config.cluster !== undefined && config.redisUrl === undefined) throw new Error('a broker cluster node needs redisUrl');
      // Cluster: the message fan-out through Redis (redis-mq.ts).
      const redisMq =
        config.cluster !== undefined && config.redisUrl !== undefined
          ? (await import('./redis-mq.ts')).createRedisMq(config.redisUrl, { concurrency: limits.mqConcurrency, closeTimeoutMs: limits.redisCloseTimeoutMs, ...(config.cluster.maxPatterns !== undefined ? { maxPatterns: config.cluster.maxPatterns } : {}), onError: (err) => log.error({ err, code: 'BROKER_CLUSTER_MQ_ERROR' }, 'cluster message fan-out (Redis pub/sub) error'), onMalformed: (channel, reason) => fanoutMalformedLog.record('BROKER_CLUSTER_MESSAGE_MALFORMED', channel, reason) })
          : undefined;
      // A will a dead broker (node) left in Redis that must not be published is deleted: the device is
      // connected here again (stale; authorizePublish would refuse it), or it is no longer a device of
      // the registry. So the wills of the devices that did not come back are published
      // (redis-persistence.ts streamWill).
      // One EXISTS per dead-looking node and heartbeat, not per will: a dead node leaves a will per
      // device it held (~14,000 in the 100,000-device benchmark), all read in one pass.
      const aliveChecks = new Map<string, { readonly at: number; readonly alive: Promise<boolean> }>();
      const isAlive = (mq: NonNullable<typeof redisMq>, brokerId: string): Promise<boolean> => {
        const cached = aliveChecks.get(brokerId);
        if (cached !== undefined && now() - cached.at < limits.heartbeatIntervalMs) return cached.alive;
        // Bounded: one entry per node life seen in a pass (a restarted node has a new id).
        if (aliveChecks.size >= 64) aliveChecks.clear();
        const alive = mq.isAlive(brokerId);
        aliveChecks.set(brokerId, { at: now(), alive });
        alive.catch(() => aliveChecks.delete(brokerId));
        return alive;
      };
      if (redisMq !== undefined) headNodeAlive = (brokerId) => isAlive(redisMq, brokerId);
      const willAction = async (will: StoredWill): Promise<WillAction> => {
        if (closing) return 'skip';
        const local = (aedes as unknown as AedesInternals | undefined)?.clients[will.clientId];
        if (local !== undefined && !local.closed) return 'discard';
        const device = registry.device(will.clientId);
        if (device === undefined || !checkWill(deviceIdentity(device.id, device.homeId), will.topic).ok) return 'discard';
        if (redisMq === undefined) return 'publish';
        // aedes found no heartbeat of that node, but it may be this node that heard none (redis-mq.ts
        // ALIVE_PREFIX): the node's own proof of life in Redis decides. Left for a later pass.
        if (await isAlive(redisMq, will.brokerId)) {
          willsDeferred++;
          return 'skip';
        }
        // The device connected again since, on another node (online there, or gone from there, where
        // that node answered for it): the will of the dead node is superseded.
        const last = await redisMq.lastNodeOf(will.clientId);
        if (last !== null && last !== will.brokerId) return 'discard';
        // Redis errors reject: aedes' pass fails (logged as an aedes error) and the next one retries.
        return (await redisMq.claimWill(will.brokerId, will.clientId, 8 * limits.heartbeatIntervalMs)) ? 'publish' : 'skip';
      };
      // Logged once per episode of a session at its bound, and once when it has room again: an
      // operator must hear that readings are being dropped for svc-ingest (its history has a gap).
      const queueBound: SessionQueueBound = {
        maxBytes: limits.sessionQueueMaxBytes,
        onFull: (clientId, queuedBytes) =>
          log.error({ code: 'BROKER_SESSION_QUEUE_FULL', clientId, queuedBytes, maxBytes: limits.sessionQueueMaxBytes }, 'persistent session queue at its bound: its readings are no longer queued (events and statuses still are) until it has taken its queue below 90 % of the bound'),
        onRoom: (clientId, dropped) => log.warn({ code: 'BROKER_SESSION_QUEUE_ROOM', clientId, dropped }, 'persistent session queue has room again: readings are queued for it again'),
      };
      persistence =
        config.redisUrl !== undefined
          ? // Loaded only when used: ioredis and its adapter are a large part of the start-up's module loading.
            (await import('./redis-persistence.ts')).createRedisPersistence(config.redisUrl, { drainTimeoutMs: limits.redisCloseTimeoutMs, queueBound, onError: (err, code) => storeErrorLog.record(code, 'redis store', err.message), willAction, now, strandedMarks: limits.strandedHead.marks, strandedAfterMs: limits.strandedHead.afterMs, ...(redisMq !== undefined ? { onStrandedHead: closeStrandedSession } : {}) })
          : config.storeDir !== undefined
            ? new DurableMemoryPersistence({ dir: config.storeDir, logger: log.child({ component: 'broker-store' }), queueBound, ...(config.storeCompactBytes !== undefined ? { compactBytes: config.storeCompactBytes } : {}) })
            : new IndexedMemoryPersistence(queueBound);
      const mq = redisMq?.mq;
      fanoutStats = redisMq?.stats;
      // After createRedisMq: its 'ready' handler must run before this one's (pubsub-resync.ts header).
      resyncStats =
        mq !== undefined ? watchPubsubResync(mq, { now, recovered: closePersistentSessions, onError: (err) => log.error({ err, code: 'BROKER_CLUSTER_MQ_ERROR' }, 'cluster message fan-out (Redis pub/sub) error') }).stats : undefined;
      // Cluster: a new aedes id at every start. aedes-persistence-redis keys queued packets by
      // (broker id, broker counter) and wills by broker id; a restarted node reusing its id would
      // restart its counter at 0 over packets still queued in Redis, and its old wills would
      // never be published (a live node "owns" them).
      const broker = new Aedes({
        ...(config.cluster !== undefined ? { id: `${config.cluster.nodeId}-${randomBytes(4).toString('hex')}` } : {}),
        ...(mq !== undefined ? { mq } : {}),
        persistence,
        concurrency: limits.mqConcurrency,
        heartbeatInterval: limits.heartbeatIntervalMs,
        connectTimeout: limits.connectTimeoutMs,
        drainTimeout: limits.drainTimeoutMs,
        queueLimit: limits.queueLimit,
        // Our topics have 4–5 levels; anything deeper is refused before it reaches qlobber.
        maxTopicLevels: 16,
        preConnect,
        authenticate,
        authorizePublish: authorizePublishHook,
        authorizeSubscribe: authorizeSubscribeHook,
        authorizeForward,
      });
      aedes = broker;
      // Before any subscription: a publish waits for no subscriber's socket past a grace (fanout-release.ts).
      fanout = releaseFanout(broker, { maxBufferedBytes: limits.subscriberBufferBytes, graceMs: limits.subscriberGraceMs, drainTimeoutMs: limits.drainTimeoutMs });
      // aedes stores every filter of a persistent session's SUBSCRIBE, the refused ones too
      // (lib/handlers/subscribe.js storeSubscriptions stores packet.subscriptions whole, once per
      // granted filter): the store then matched a refused `carewatch/v1/#` of a device's persistent
      // session and queued every message of the site for it while it was away (on disk or in Redis,
      // without bound; authorizeForward dropped them at delivery), and a service's refused wider filter
      // queued each message twice. Only what the policy grants this identity is stored; the journal's
      // replay (no aedes client, no identity) passes through.
      // aedes makes this call once per granted filter with the packet's own array, and the Redis
      // store runs one call per array (redis-persistence.ts addSubscriptions): the granted part of a
      // packet is one array too, the same for each of its calls.
      const store = persistence as unknown as { addSubscriptions(client: unknown, subs: ReadonlyArray<{ topic?: unknown }>): Promise<void> };
      const storeSubscriptions = store.addSubscriptions.bind(store);
      const grantedOf = new WeakMap<object, ReadonlyArray<{ topic?: unknown }>>();
      store.addSubscriptions = (client, subs) => {
        const identity = sessions.get(client as Client)?.identity;
        if (identity === undefined) return storeSubscriptions(client, subs);
        let granted = grantedOf.get(subs);
        if (granted === undefined) {
          const kept = subs.filter((s) => typeof s.topic === 'string' && authorizeSubscribe(ctx, identity, s.topic).ok);
          granted = kept.length === subs.length ? subs : kept;
          grantedOf.set(subs, granted);
        }
        return granted.length === 0 ? Promise.resolve() : storeSubscriptions(client, granted);
      };
      // A SUBSCRIBE's retained messages are read after its SUBACK (aedes completeSubscribe: 'subscribe'
      // event, then createRetainedStreamCombi, in one turn). A read that fails (Redis refusing or
      // away past ioredis' retries) was only logged: the subscriber, told its filter was granted,
      // never got the retained statuses, even once Redis was back. Its connection is closed instead,
      // so it connects and subscribes again (test/broker/redis-store-faults.test.ts).
      let subscribing: Client | undefined;
      broker.on('subscribe', (_subs, client) => {
        subscribing = client;
        // Only the read of this same turn is this SUBSCRIBE's (a SUBSCRIBE with no retained read leaves none).
        queueMicrotask(() => {
          if (subscribing === client) subscribing = undefined;
        });
      });
      const retainedStore = persistence as unknown as { createRetainedStreamCombi(patterns: string[]): NodeJS.EventEmitter };
      const readRetained = retainedStore.createRetainedStreamCombi.bind(retainedStore);
      retainedStore.createRetainedStreamCombi = (patterns) => {
        const client = subscribing;
        subscribing = undefined;
        const stream = readRetained(patterns);
        if (client !== undefined) stream.once('error', () => client.close());
        return stream;
      };
      // FIFO, never a priority queue: aedes drops as a duplicate any message whose broker counter
      // is below the last one a client got (lib/client.js dedupe), so reordering lanes lost the
      // overtaken telemetry of svc-ingest (issue 6, session 2: found by a profile of the collapse).
      useFifoMqQueue(broker);
      guardMqRecursion(broker);
      // Before listen(): mqemitter calls a topic's listeners in the order they were added, so this
      // marks the client before aedes' own listener (added in listen()) closes it.
      broker.subscribe('$SYS/+/new/clients', (packet, done) => {
        const nodeId = packet.topic.split('/')[1];
        const clientId = packet.payload.toString();
        const local = (broker as unknown as AedesInternals).clients[clientId];
        if (nodeId !== broker.id && local !== undefined && !local.closed) takenOver.add(clientId);
        done();
      }, () => undefined);
      // aedes' Client#close unregisters by client id whenever an entry exists for the id, so a
      // connection that died before it was registered (its CONNECT still being stored) removed the
      // registration of the id's live connection: no takeover any more, connectedClients one low, and
      // 'clientDisconnect' for a client that never connected. Only the registered client leaves.
      const registered = broker as unknown as AedesInternals & { unregisterClient(client: Client): void };
      const unregisterClient = registered.unregisterClient.bind(broker);
      registered.unregisterClient = (client: Client): void => {
        if (registered.clients[client.id] !== client) return;
        unregisterClient(client);
      };
      // aedes' own CONNECT (persistent sessions) registers a connection that closed while its session
      // was being restored (Redis answering later, the takeover waiting for the old connection's
      // close, mqemitter answering a subscribe on the next turn): it took the session over from the
      // id's live connection, and stayed in the client table closed, connectedClients one high for
      // good, with no 'clientDisconnect' (found by a helper's hunt, test/broker/session-filters.test.ts).
      const registering = broker as unknown as { registerClient(client: Client): void; _finishRegisterClient(client: Client): void };
      const registerClient = registering.registerClient.bind(broker);
      const finishRegisterClient = registering._finishRegisterClient.bind(broker);
      registering.registerClient = (client: Client): void => {
        if (!client.closed) registerClient(client);
      };
      registering._finishRegisterClient = (client: Client): void => {
        if (!client.closed) finishRegisterClient(client);
      };
      broker.on('clientDisconnect', onClientDisconnect);
      broker.on('client', (client) => {
        if (!willToRestore.delete(client.id)) return;
        const will = (client as unknown as { will?: unknown }).will;
        if (will == null) return;
        const store = (broker as unknown as { persistence: { putWill(client: unknown, will: unknown): Promise<unknown> } }).persistence;
        store.putWill(client, will).catch((err: unknown) => log.error({ err, clientId: client.id, code: 'BROKER_WILL_RESTORE_FAILED' }, 'will of a taken-over session not stored again'));
      });
      broker.on('connackSent', (_connack, client) => releaseAfterConnack(client));
      // Devices going silent without closing (power, radio, a hung device), or many at once: a node
      // or a network too slow to carry their packets within 1.5 × keepalive.
      broker.on('keepaliveTimeout', () => keepaliveTimeouts++);
      if (redisMq !== undefined) {
        broker.on('client', (client) => {
          redisMq.recordConnect(client.id, broker.id);
          if (!client.clean) registeredAt.set(client, now());
        });
        // The proof of life the other nodes' will passes read (willAction): valid for the 3 heartbeats
        // after which aedes itself calls a silent node dead, refreshed every heartbeat.
        const beat = (): void => redisMq.markAlive(broker.id, 3 * limits.heartbeatIntervalMs);
        beat();
        aliveTimer = setInterval(beat, limits.heartbeatIntervalMs);
      }
      // aedes raises 'clientError' once per write still waiting when a connection fails (a subscriber
      // dropped for not reading had 12 to 339 lines and as many counts, 1,271 lines a minute for one
      // slow reader in a helper's run, session 22): a connection's first error is the one.
      const erred = new WeakSet<Client>();
      broker.on('clientError', (client, err) => {
        if (erred.has(client)) return;
        erred.add(client);
        clientErrors++;
        // mqtt-packet refuses a wildcard in a PUBLISH topic while parsing ("# is not allowed in
        // PUBLISH"), before our authorizePublish sees it: counted here (found by test/hostile/fuzz.test.ts).
        const code =
          (err as { code?: unknown }).code === 'BROKER_PACKET_TOO_LARGE' ? 'BROKER_PACKET_TOO_LARGE' : /is not allowed in PUBLISH/.test(err.message) ? 'BROKER_WILDCARD_IN_PUBLISH' : undefined;
        if (code !== undefined) refusals[code]++;
        // A subscriber that took nothing for drainTimeoutMs (aedes' 'drain timeout'): its own code, so
        // an operator tells it from a broken connection.
        // Or one that had more than subscriberBufferBytes not yet taken (fanout-release.ts).
        const slow = err.message === 'drain timeout' || err.message === SUBSCRIBER_BUFFER_FULL;
        if (slow) slowSubscribersDropped++;
        log.info(
          { code: code ?? (slow ? 'BROKER_SLOW_SUBSCRIBER' : 'BROKER_CLIENT_ERROR'), clientId: client.id, err: err.message },
          !slow ? 'client connection closed on error' : err.message === SUBSCRIBER_BUFFER_FULL ? 'subscriber closed: it fell too far behind its messages' : 'subscriber closed: it took nothing for the drain timeout',
        );
      });
      broker.on('connectionError', (_client, err) => {
        clientErrors++;
        const code = (err as { code?: unknown }).code === 'BROKER_PACKET_TOO_LARGE' ? 'BROKER_PACKET_TOO_LARGE' : 'BROKER_CLIENT_ERROR';
        refusals[code]++;
        log.info({ code, err: err.message }, 'connection closed before CONNECT completed');
      });
      // Persistence failures surface as aedes 'error' (not in its typings); log, never crash.
      (broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => log.error({ err, code: 'BROKER_AEDES_ERROR' }, 'aedes error'));
      // A node hears the others (heartbeats, subscriptions, takeovers) before it serves a client.
      await redisMq?.ready;
      await broker.listen();

      /**
       * The HTTP stage of MQTT over WebSocket (before the upgrade) gets the CONNECT timeout too: with
       * Node's defaults (60 s for the headers, checked every 30 s) a peer that sent nothing, only a
       * request line, or headers a byte at a time held its socket 90 s (a helper's measurement,
       * session 22), not the 10 s of every other stage. Upgraded connections leave Node's HTTP
       * tracking: these never touch a live MQTT connection (test/broker/ws-stage.test.ts).
       */
      const webSocketStage = () => ({ headersTimeout: limits.connectTimeoutMs, requestTimeout: limits.connectTimeoutMs, connectionsCheckingInterval: Math.min(1_000, limits.connectTimeoutMs) }) as const;
      if (plain) {
        const early = deps.listener?.server.listening === true ? deps.listener : undefined;
        if (early !== undefined) {
          // Already listening since before the modules loaded: serve the connections held meanwhile.
          tcp = early.server;
          tcp.on('error', (err) => log.error({ err, code: 'BROKER_TCP_SERVER_ERROR' }, 'tcp server error'));
          const held = early.held;
          early.takeOver(onMqttSocket);
          if (held > 0) log.info({ held }, 'serving connections accepted during start-up');
        } else {
          // Nagle on delays small PUBLISH/PUBACK writes behind the peer's delayed ACK: delivery
          // stalls at load (measured by the team, issue 6).
          tcp = createTcpServer({ noDelay: true }, onMqttSocket);
          tcp.on('error', (err) => log.error({ err, code: 'BROKER_TCP_SERVER_ERROR' }, 'tcp server error'));
          await listen(tcp, config.port, config.host, limits.listenBacklog);
        }
        tcpPort = (tcp.address() as AddressInfo).port;

        http = createHttpServer(webSocketStage(), upgradeRequired);
        wss = mqttOverWebSocket(http);
        await listen(http, config.wsPort, config.host);
        wsPort = (http.address() as AddressInfo).port;
      }

      const tls = config.tls;
      if (tls !== undefined) {
        // The handshake must finish within the CONNECT timeout too: a peer that opens the port and
        // says nothing holds a socket no longer than one that skips CONNECT on the plain port.
        const secure = { cert: tls.cert, key: tls.key, minVersion: MIN_TLS_VERSION, handshakeTimeout: limits.connectTimeoutMs } as const;
        tlsServer = createTlsServer({ ...secure, noDelay: true }, (socket) => {
          socket.setNoDelay(true);
          onMqttSocket(socket);
        });
        tlsServer.on('connection', track);
        tlsServer.on('tlsClientError', onHandshakeError);
        tlsServer.on('error', (err) => log.error({ err, code: 'BROKER_TLS_SERVER_ERROR' }, 'tls server error'));
        await listen(tlsServer, tls.port, config.host);
        tlsPort = (tlsServer.address() as AddressInfo).port;

        https = createHttpsServer({ ...secure, noDelay: true, ...webSocketStage() }, upgradeRequired);
        https.on('connection', track);
        https.on('tlsClientError', onHandshakeError);
        wssSecure = mqttOverWebSocket(https);
        await listen(https, tls.wssPort, config.host);
        wssPort = (https.address() as AddressInfo).port;
      }
      if (config.httpPort !== undefined) {
        const server = createOpsServer({
          host: config.host,
          port: config.httpPort,
          registry: metrics,
          problems: () => brokerProblems({ listening: listening() }),
          access: { token: config.metricsToken, production: config.production },
          logger: log,
        });
        ops = server;
        await server.start();
      }
      log.info({ tcpPort: plain ? tcpPort : undefined, wsPort: plain ? wsPort : undefined, tlsPort, wssPort, httpPort: ops?.port, persistence: config.redisUrl !== undefined ? 'redis' : config.storeDir !== undefined ? 'disk' : 'memory', sessionQueueMaxBytes: limits.sessionQueueMaxBytes, production: config.production, ...(config.cluster !== undefined ? { cluster: 'redis', nodeId: broker.id } : {}) }, 'broker listening');
    },

    async close() {
      closing = true;
      clearInterval(aliveTimer);
      offlineQueue.length = 0;
      takenOver.clear();
      const broker = aedes;
      // Stop accepting first, then close every client, then the servers' remaining sockets.
      const tcpClosed = closed(tcp);
      const httpClosed = closed(http);
      const tlsClosed = closed(tlsServer);
      const httpsClosed = closed(https);
      // A monitor sees the broker go: /healthz stops answering with the MQTT listeners.
      const opsClosed = ops?.close();
      ops = undefined;
      wss?.close();
      wssSecure?.close();
      throttle.close();
      handshakeLog.close();
      if (broker !== undefined) await new Promise<void>((resolve) => broker.close(() => resolve()));
      // aedes' close closed the fan-out (its mq) too: nothing more arrives from Redis.
      fanoutMalformedLog.close();
      for (const s of sockets) s.destroy();
      for (const ws of [...(wss?.clients ?? []), ...(wssSecure?.clients ?? [])]) ws.terminate();
      http?.closeAllConnections();
      https?.closeAllConnections();
      await Promise.all([tcpClosed, httpClosed, tlsClosed, httpsClosed, opsClosed]);
      await persistence?.destroy();
      // After the store: its connection's errors while closing are still counted in this window.
      storeErrorLog.close();
      aedes = undefined;
      persistence = undefined;
      tcp = undefined;
      http = undefined;
      wss = undefined;
      tlsServer = undefined;
      https = undefined;
      wssSecure = undefined;
    },
  };
}

function listen(server: TcpServer | HttpServer, port: number, host: string, backlog?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ...(backlog !== undefined ? { backlog } : {}) }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closed(server: TcpServer | HttpServer | undefined): Promise<void> {
  if (server === undefined || !server.listening) return Promise.resolve();
  return new Promise((resolve) => server.close(() => resolve()));
}
