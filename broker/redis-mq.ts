import type { EventEmitter } from 'node:events';
import MQEmitterRedis from 'mqemitter-redis';
import { guardSubscriberMessages } from '../common/redis-subscriber-guard.ts';
import { redisOptions } from './redis-persistence.ts';

/**
 * The message fan-out of a broker node in a cluster (issue 14): aedes' mqemitter, but through Redis
 * pub/sub (mqemitter-redis 7), so a message published on one node reaches the subscribers of every
 * node, and aedes' own `$SYS/<id>/heartbeat`, `…/new/clients` (session takeover across nodes) and
 * aedes-persistence-redis' `$SYS/sub/+` (each node's copy of the subscription trie) cross nodes too.
 *
 * mqemitter-redis' emit() only PUBLISHes to Redis, on the channel named by the MQTT topic as is, and
 * never delivers locally; every node, the publishing one included, delivers what comes back from its
 * subscriber connection to its listeners, matched in the node by mqemitter's own qlobber as in a
 * single broker.
 *
 * Each node receives from Redis only what its own listeners need. Until session 7 every node held
 * ONE subscription, the pattern `*`, and so received and decoded every message of the cluster: in
 * the 100,000-device benchmark 7 nodes each processed all 7,000 msg/s, though only node 0 had the
 * services and the others held devices, whose one subscription is their own command topic
 * (policy.ts authorizeSubscribe). Now the subscriber connection is in one of three modes:
 * - **exact** (no local listener has a wildcard, `$SYS` aside): one `SUBSCRIBE <topic>` per distinct
 *   exact topic some local listener has, counted per (topic, listener) so the last removeListener
 *   UNSUBSCRIBEs, plus the pattern `$SYS/*` for aedes' and aedes-persistence-redis' internal topics.
 *   A device-only node receives the commands of its own devices, the `$SYS` traffic (heartbeats,
 *   one `new/clients` and a few `$SYS/sub` and `new/subscribes` notices per connect of any device of
 *   the cluster) and no telemetry.
 * - **patterns** (session 11): a local listener has a wildcard outside `$SYS` (a service connected
 *   here: `carewatch/v1/+/+/telemetry`; devices may not subscribe to one) and the node's distinct
 *   wildcard filters are at most `maxPatterns`: exact mode's subscriptions plus one Redis glob per
 *   wildcard filter (`redisGlobs`: `+` → `*`, `a/#` → `a/*` and `a`). A node whose service subscribes
 *   only to events and statuses (alerts' signals sessions: the alarm lane, docs/scaling.md) receives
 *   those and no telemetry, so an alarm never waits on that node behind the cluster's readings.
 *   Redis matches every PUBLISH against every pattern any connection holds (pubsub.c, a loop over
 *   the server's patterns), so patterns cost Redis CPU on every message of the cluster: hence the
 *   bound (a node with one partitioned service per home would hold thousands).
 * - **all**: more wildcard filters than that: the pattern `*` alone; the exact channels and `$SYS/*`
 *   are dropped. When the last wildcard listener goes (the service disconnected or moved to another
 *   node) the node returns to exact mode: services reconnecting through HAProxy land on any node,
 *   and a node that stayed in all mode would keep the 7× work.
 * Listeners and their Redis subscriptions, classified here (`listenerScope`):
 * - aedes `$SYS/+/heartbeat`, `$SYS/+/birth`, `$SYS/+/new/clients`, broker.ts' `$SYS/+/new/clients`
 *   (takeover marking), aedes-persistence-redis' `$SYS/sub/+`: `$SYS` → the `$SYS/*` pattern. Clients
 *   may not subscribe to `$…` filters (policy.ts), so every `$SYS` listener is the broker's own.
 * - mq-recursion-guard.ts' `#`: registered with `onLocal`, no Redis subscription of its own: it
 *   bounds the recursion of whatever the other listeners bring in, and as a client filter it would
 *   put every node in all mode.
 * - clients' subscriptions (aedes subscribe handler, restored sessions): an exact topic → its channel;
 *   a wildcard filter → its globs (patterns mode) or `*` (all mode).
 *
 * Once per node: in exact and all mode each message matches exactly one of the connection's
 * subscriptions (no `$SYS/…` topic is ever SUBSCRIBEd, `*` is held alone), so Redis sends it once.
 * mqemitter-redis' own on() would instead SUBSCRIBE or PSUBSCRIBE once per aedes topic filter, and a
 * message matching k of them (every message matches the guard's `#`) would arrive k times, all but
 * one copy dropped by its LRU of message ids (10,000, one minute). In patterns mode a message may
 * match an exact channel and a glob, or two globs (a watcher of one status beside a service's
 * `+/+/status` on the same node; `…/h01/+/event` beside `…/+/+/event`): Redis then sends it once per
 * match, and all the copies back to back (it writes one PUBLISH's deliveries to a connection in one
 * go: channel subscribers, then the patterns), so the LRU, which holds the last 10,000 ids, always
 * has the first copy's id when the next arrives. Services' nodes hold no devices and the services'
 * filters do not overlap in the usual set-ups, so the copies are rare; `received` counts them.
 * During a switch of mode or of the globs held (the new subscriptions are sent before the old ones are dropped, so no
 * message is missed) a message published between Redis executing the first and the last command
 * matches both and arrives twice, the two copies back to back on the connection (Redis writes one
 * PUBLISH's deliveries to a connection together). That window lasts one Redis round trip; the
 * second copy is dropped by that same LRU of message ids, which holds the last 10,000. Were it ever
 * to pass, a second delivery is what QoS 1 allows (at least once), ingest writes a reading
 * idempotently (same point, same timestamp) and alerts keeps one open alert per signal.
 *
 * Every Redis command of the subscriber connection is sent in call order on that one connection
 * (`punsubscribe`, which ioredis would batch to the end of the tick, is excluded from its
 * auto-pipelining below), and Redis executes them in that order, so the subscriptions Redis holds
 * always follow the sequence of on()/removeListener() calls. on()'s `done` (aedes: the SUBACK, and
 * a restored session's CONNACK) waits for Redis' reply to the last command sent, so what a client is
 * told it subscribed to reaches this node. ioredis re-subscribes after a reconnect (autoResubscribe)
 * and resends the commands in flight; a command that failed outright (Redis unreachable beyond
 * maxRetriesPerRequest) leaves the state unknown, and the next reconnect re-sends the whole wanted
 * state.
 *
 * `done` of emit() is called on Redis' reply to PUBLISH, i.e. once Redis has handed the message to
 * every subscribed node's connection; aedes calls it after storeRetained and enqueueOffline, so a
 * PUBACK (ack-after-publish.ts) still means stored and fanned out. A persistent session's QoS 1
 * messages do not depend on its node's subscriptions: the publishing node enqueues them in Redis.
 *
 * Pub/sub channels belong to the Redis server, not to a database (`/db` in the url selects only the
 * keys): two clusters on one Redis server would hear each other's messages. Give each cluster its own
 * Redis server (docs/scaling.md).
 */
type Listener = (packet: unknown, done: () => void) => void;

export interface ClusterMq {
  /** Messages beyond `concurrency` wait here (mq-queue.ts replaces it with an O(1) FIFO). */
  _messageQueue: unknown;
  _messageCallbacks: unknown;
  on(topic: string, fn: Listener, done?: (err?: Error) => void): unknown;
  removeListener(topic: string, fn: Listener, done?: (err?: Error) => void): unknown;
  /**
   * A listener that subscribes to nothing in Redis: it sees only the messages the node's other
   * listeners bring in (mq-recursion-guard.ts' `#`). Removed with removeListener.
   */
  onLocal(topic: string, fn: Listener, done?: () => void): unknown;
  emit(packet: unknown, done?: (err?: Error) => void): void;
  close(cb: () => void): void;
  /** mqemitter-redis' connection events; 'error' for a failed PUBLISH or a lost connection. */
  readonly state: EventEmitter;
}

/** The node's subscriber connection's mode (see the header). */
export type FanoutMode = 'exact' | 'patterns' | 'all';

export interface FanoutStats {
  readonly mode: FanoutMode;
  /** Distinct exact topics (outside `$SYS`) the node's listeners have: its channels in exact mode. */
  readonly channels: number;
  /** Listeners with a wildcard outside `$SYS` (services' filters): patterns or all mode while above 0. */
  readonly wildcardListeners: number;
  /** Redis globs held for them (patterns mode; 0 in the others). */
  readonly patterns: number;
  /** Messages outside `$SYS` that arrived from Redis (the work the modes save), since start. */
  readonly received: number;
  /** aedes' and aedes-persistence-redis' `$SYS` messages that arrived from Redis, since start. */
  readonly sysReceived: number;
  /** Messages from Redis that could not be read or are not a message aedes could deliver, dropped (fanoutMessageProblem); and local listeners' throws on a message, one per listener. */
  readonly malformed: number;
  /** Switches between the modes, since start. */
  readonly switches: number;
}

/** ioredis' subscriber commands (variadic; each resolves on Redis' reply). */
interface SubConn {
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  psubscribe(...patterns: string[]): Promise<unknown>;
  punsubscribe(...patterns: string[]): Promise<unknown>;
  on(event: 'ready', fn: () => void): unknown;
  on(event: 'messageBuffer', fn: (channel: Buffer, message: Buffer) => void): unknown;
  on(event: 'pmessageBuffer', fn: (pattern: Buffer, channel: Buffer, message: Buffer) => void): unknown;
}

/** ioredis' QUIT and disconnect, which mqemitter-redis' close() and the bounded close below use. */
interface Quitting {
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** mqemitter-redis' instance internals used here: MQEmitter's own (local) on/removeListener, the connections. */
interface MqInternals {
  /** Set by mqemitter-redis' close(): its connections are quitting. */
  closing?: boolean;
  _on(topic: string, fn: Listener, done?: () => void): unknown;
  _removeListener(topic: string, fn: Listener, done?: () => void): unknown;
  /** MQEmitter's own close (mqemitter-redis calls it once both connections have ended). */
  _close(cb: () => void): unknown;
  /** MQEmitter's own emit: local delivery of what mqemitter-redis decoded from Redis (its only caller). */
  _emit(msg: unknown, cb?: (err?: Error) => void): unknown;
  subConn: SubConn & Quitting;
  pubConn: Quitting & {
    hset(key: string, field: string, value: string): Promise<unknown>;
    hget(key: string, field: string): Promise<string | null>;
    set(key: string, value: string, px: 'PX', ms: number, nx?: 'NX'): Promise<string | null>;
    exists(key: string): Promise<number>;
  };
}

const SYS_PREFIX = '$SYS/';
/** Redis glob of every `$SYS/…` channel (`*` in a Redis pattern spans `/`). */
const SYS_PATTERN = '$SYS/*';
/** Redis glob of every channel. */
const ALL_PATTERN = '*';
/** Channels per SUBSCRIBE/UNSUBSCRIBE when a switch moves all of a node's (one per device) at once. */
const CHANNELS_PER_COMMAND = 5_000;

/**
 * Distinct wildcard filters up to which a node holds a glob for each (patterns mode); above, `*`.
 * A few per service (ingest 3, alerts' signals 2 and telemetry 1 on one node: 6); per-home
 * partitioned services on one node (3 per home) pass it at a few dozen homes, where receiving
 * everything costs the node less than the patterns cost Redis on every PUBLISH.
 */
export const DEFAULT_MAX_PATTERNS = 32;

/**
 * mqemitter-redis' close() QUITs both connections and waits for their 'end', which a Redis away
 * (ioredis reconnecting) or stalled (connected, answering nothing) never gives: the broker's close
 * never returned (test/broker/redis-close.test.ts). And it drops the QUITs' promises: with Redis away
 * ioredis rejects them after maxRetriesPerRequest, an unhandled rejection that ends the process under
 * Node's default in the middle of its close. So the QUITs get a handler, and after `timeoutMs` both
 * connections are dropped and the emitter closed without them. Nothing is lost by it: aedes closes
 * its clients before the emitter, so a PUBLISH still waiting for Redis has nobody to acknowledge to
 * (its device got no PUBACK and sends it again to the node it reaches next).
 */
function boundClose(inner: ClusterMq & MqInternals, timeoutMs: number): void {
  for (const c of [inner.subConn, inner.pubConn]) {
    const quit = c.quit.bind(c);
    c.quit = () => {
      const reply = quit();
      reply.catch(() => undefined);
      return reply;
    };
  }
  const libraryClose = inner.close.bind(inner);
  inner.close = (cb?: () => void) => {
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      cb?.();
    };
    const timer = setTimeout(() => {
      inner.subConn.disconnect();
      inner.pubConn.disconnect();
      inner._close(finish);
    }, timeoutMs);
    libraryClose(finish);
  };
}

/** A literal topic level in a Redis glob: `*`, `?`, `[`, `]` and `\` escaped (Redis' stringmatchlen). */
function globLiteral(level: string): string {
  return level.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * The Redis globs whose union covers what an MQTT filter matches [MQTT-4.7.1]: `+` → `*` (a Redis
 * `*` also spans `/`, so a glob may bring more than the filter matches: the node's own matcher
 * drops those), `a/#` → `a/*` and `a` (`#` also matches its parent level [MQTT-4.7.1-2]), `#` → `*`.
 * Pure; `topic` is a validated filter (wildcards only as whole levels).
 */
export function redisGlobs(topic: string): string[] {
  const levels = topic.split('/');
  const last = levels.at(-1);
  const glob = (ls: readonly string[]): string => ls.map((l) => (l === '+' ? '*' : globLiteral(l))).join('/');
  if (last !== '#') return [glob(levels)];
  const parent = levels.slice(0, -1);
  return parent.length === 0 ? [ALL_PATTERN] : [`${glob(parent)}/*`, glob(parent)];
}

/**
 * What a listener on `topic` needs from Redis: `sys` (covered by the `$SYS/*` pattern in exact mode,
 * by `*` in all mode), `exact` (its own channel in exact mode) or `wildcard` (all mode). A pure
 * function of the topic filter; `+` and `#` are wildcards only as whole levels, and aedes has
 * validated client filters before they get here [MQTT-4.7.1-2].
 */
export function listenerScope(topic: string): 'sys' | 'exact' | 'wildcard' {
  if (topic.startsWith(SYS_PREFIX)) return 'sys';
  return topic.includes('+') || topic.includes('#') ? 'wildcard' : 'exact';
}

/**
 * Listeners per topic, counted per (topic, listener) as mqemitter's qlobber holds them (one entry per
 * on(), one removed per removeListener()), so a removal of a pair never added changes nothing.
 */
class ListenerCount {
  readonly #byTopic = new Map<string, Map<Listener, number>>();
  #total = 0;
  get total(): number {
    return this.#total;
  }
  get topics(): number {
    return this.#byTopic.size;
  }
  topicList(): string[] {
    return [...this.#byTopic.keys()];
  }
  /** True if `topic` had no listener before. */
  add(topic: string, fn: Listener): boolean {
    let fns = this.#byTopic.get(topic);
    const first = fns === undefined;
    if (fns === undefined) {
      fns = new Map();
      this.#byTopic.set(topic, fns);
    }
    fns.set(fn, (fns.get(fn) ?? 0) + 1);
    this.#total++;
    return first;
  }
  /** True if that was `topic`'s last listener. */
  remove(topic: string, fn: Listener): boolean {
    const fns = this.#byTopic.get(topic);
    const n = fns?.get(fn);
    if (fns === undefined || n === undefined) return false;
    if (n > 1) fns.set(fn, n - 1);
    else fns.delete(fn);
    this.#total--;
    if (fns.size > 0) return false;
    this.#byTopic.delete(topic);
    return true;
  }
}

function chunks(list: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < list.length; i += CHANNELS_PER_COMMAND) out.push(list.slice(i, i + CHANNELS_PER_COMMAND));
  return out;
}

/** Bytes of `$SYS/`, to classify an arriving channel without decoding it. */
const SYS_BYTES = Buffer.from(SYS_PREFIX);
function isSysChannel(channel: Buffer): boolean {
  return channel.length >= SYS_BYTES.length && channel.compare(SYS_BYTES, 0, SYS_BYTES.length, 0, SYS_BYTES.length) === 0;
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
/**
 * Prefix of a node's proof of life, refreshed by the node itself (broker.ts). aedes judges another
 * node dead when its `$SYS/<id>/heartbeat` has not arrived for 3 heartbeats, but heartbeats travel the
 * same pub/sub stream and delivery queue as every message: a node whose subscriber connection is down
 * or whose queue is minutes behind (a starved services' node, session 10) hears no heartbeat and would
 * publish the wills of every device of the live nodes, a false "offline" for each. This key does not
 * depend on that stream.
 */
const ALIVE_PREFIX = 'carewatch:broker:alive:';

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
  /** Refreshes this node's proof of life for `ttlMs` (fire and forget; errors go to onError). */
  markAlive(brokerId: string, ttlMs: number): void;
  /** True while node `brokerId` keeps its proof of life (it refreshed it within its TTL). */
  isAlive(brokerId: string): Promise<boolean>;
  /** The subscriber connection's mode and what arrived on it (read at the call). */
  stats(): FanoutStats;
}

/** The MQTT topic name limit, in bytes [MQTT-1.5.3]. */
const MAX_TOPIC_BYTES = 65_535;

/**
 * Why a message decoded from the fan-out is not one aedes could deliver, or undefined when it is.
 * mqemitter-redis hands whatever msgpack gave it to the node's listeners (client deliveries, aedes'
 * `$SYS` handlers, the store's subscription copies): without a string topic MQEmitter's assert throws,
 * and a payload that is neither bytes nor text cannot be written: the subscriber's connection was
 * closed (test/broker/cluster-malformed.test.ts). What aedes publishes has a
 * topic name without wildcards [MQTT-3.3.2-2] and a Buffer payload (a string for some of its own);
 * the other fields are optional and typed. Pure.
 */
export function fanoutMessageProblem(msg: unknown): string | undefined {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return 'not a message object';
  const m = msg as Record<string, unknown>;
  if (typeof m.topic !== 'string' || m.topic.length === 0) return 'no topic';
  if (Buffer.byteLength(m.topic) > MAX_TOPIC_BYTES) return 'topic too long';
  if (/[+#\u0000]/.test(m.topic)) return 'wildcard or NUL in the topic name';
  if (!Buffer.isBuffer(m.payload) && typeof m.payload !== 'string') return 'payload neither bytes nor text';
  if (m.qos != null && m.qos !== 0 && m.qos !== 1 && m.qos !== 2) return 'qos not 0, 1 or 2';
  for (const k of ['retain', 'dup'] as const) if (m[k] != null && typeof m[k] !== 'boolean') return `${k} not a boolean`;
  for (const k of ['messageId', 'brokerCounter'] as const) if (m[k] != null && !Number.isSafeInteger(m[k])) return `${k} not an integer`;
  if (m.brokerId != null && typeof m.brokerId !== 'string') return 'brokerId not a string';
  return undefined;
}

/** A fan-out message dropped before delivery (thrown into guardSubscriberMessages, which counts it). */
class MalformedFanoutMessage extends Error {}

export function createRedisMq(
  url: string,
  opts: {
    concurrency: number;
    onError: (err: Error) => void;
    /** A message from Redis dropped: not msgpack, or not a message (rate-limit the log: one per message). */
    onMalformed?: (channel: string, reason: string) => void;
    maxPatterns?: number;
    closeTimeoutMs?: number;
  },
): RedisMq {
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
    // mqemitter-redis turns auto-pipelining on; ioredis exempts SUBSCRIBE, PSUBSCRIBE and UNSUBSCRIBE
    // but not PUNSUBSCRIBE (its list says "unpsubscribe"), which would then be sent at the end of the
    // tick, after a PSUBSCRIBE called later: the order of the mode switches (see the header) needs
    // every subscriber command sent when called.
    autoPipeliningIgnoredCommands: ['punsubscribe'],
  });
  mq.state.on('error', opts.onError);
  const inner = mq as unknown as ClusterMq & MqInternals;
  if (typeof inner._on !== 'function' || typeof inner._removeListener !== 'function' || typeof inner.subConn?.psubscribe !== 'function' || typeof inner.subConn.punsubscribe !== 'function') {
    throw new Error('mqemitter-redis internals changed: _on/_removeListener/subConn not found');
  }
  const conn = inner.subConn;
  boundClose(inner, opts.closeTimeoutMs ?? 10_000);

  // mqemitter-redis decodes and delivers inside ioredis' reader, unguarded: one message on a channel
  // the node holds that is not msgpack of { id, msg } (another program's PUBLISH on a shared Redis,
  // which in all mode is any channel at all) was an uncaught exception, every node's at once. Now it
  // is dropped and counted, as is a decoded message aedes could not deliver.
  let malformed = 0;
  const deliver = inner._emit.bind(inner);
  inner._emit = (msg, cb) => {
    const problem = fanoutMessageProblem(msg);
    if (problem !== undefined) throw new MalformedFanoutMessage(problem);
    return deliver(msg, cb);
  };
  guardSubscriberMessages(conn as unknown as EventEmitter, (_event, channel, err) => {
    malformed++;
    opts.onMalformed?.(channel, err instanceof MalformedFanoutMessage ? err.message : `not a fan-out message: ${err instanceof Error ? err.message : String(err)}`);
  });

  const maxPatterns = opts.maxPatterns ?? DEFAULT_MAX_PATTERNS;
  let mode: FanoutMode = 'exact';
  const exact = new ListenerCount();
  const wildcard = new ListenerCount();
  /** The globs Redis holds for the wildcard listeners (patterns mode; empty in the others). */
  let held = new Set<string>();
  let received = 0;
  let sysReceived = 0;
  let switches = 0;
  /** Redis' reply to the last subscriber command sent: every earlier one has been executed by then. */
  let last: Promise<void> = Promise.resolve();
  /** A command failed outright: Redis' subscriptions are unknown until the next reconnect re-sends them. */
  let unsure = false;

  /** Channels and patterns whose UNSUBSCRIBE failed: Redis may still hold them (dropped again by the resync). */
  const staleChannels = new Set<string>();
  const stalePatterns = new Set<string>();

  /** `onFail`: what a failed command leaves behind (an unsubscribe's channels may still be held). */
  const send = (command: () => Promise<unknown>, onFail?: () => void): void => {
    // Closing (aedes unsubscribes its clients' listeners as it closes): local only, no command.
    if (inner.closing === true) return;
    const reply = command().then(() => undefined);
    reply.catch((err: unknown) => {
      if (inner.closing === true) return;
      unsure = true;
      onFail?.();
      opts.onError(err instanceof Error ? err : new Error(String(err)));
    });
    last = reply;
  };
  // Never sent without arguments: ioredis would wait forever for the reply of an UNSUBSCRIBE of everything.
  const subscribe = (channels: readonly string[]): void => {
    for (const list of chunks(channels)) send(() => conn.subscribe(...list));
  };
  const unsubscribe = (channels: readonly string[]): void => {
    for (const list of chunks(channels)) send(() => conn.unsubscribe(...list), () => list.forEach((c) => staleChannels.add(c)));
  };
  const psubscribe = (patterns: readonly string[]): void => {
    if (patterns.length > 0) send(() => conn.psubscribe(...patterns));
  };
  const punsubscribe = (patterns: readonly string[]): void => {
    if (patterns.length > 0) send(() => conn.punsubscribe(...patterns), () => patterns.forEach((p) => stalePatterns.add(p)));
  };
  /** Calls `done` once Redis executed every command sent so far (with the error if `sent` and it failed). */
  const whenDone = (sent: boolean, done: ((err?: Error) => void) | undefined): void => {
    if (done === undefined) return;
    last.then(
      () => done(),
      (err: unknown) => (sent ? done(err instanceof Error ? err : new Error(String(err))) : done()),
    );
  };

  /**
   * Brings the mode and the globs Redis holds to what the wildcard listeners need; true if a command
   * was sent. New subscriptions first, then the old ones dropped: no message is missed in between
   * (copies in the window: see the header). Called when a wildcard filter gains its first or loses
   * its last listener; O(distinct wildcard filters), and O(exact channels) only when entering or
   * leaving all mode.
   */
  const reconcile = (): boolean => {
    const globs = new Set(wildcard.topicList().flatMap(redisGlobs));
    const next: FanoutMode = wildcard.total === 0 ? 'exact' : globs.size <= maxPatterns && !globs.has(ALL_PATTERN) ? 'patterns' : 'all';
    const nextHeld = next === 'patterns' ? globs : new Set<string>();
    const adding = [...nextHeld].filter((g) => !held.has(g));
    const dropping = [...held].filter((g) => !nextHeld.has(g));
    if (next === mode && adding.length === 0 && dropping.length === 0) return false;
    if (next === 'all' && mode !== 'all') psubscribe([ALL_PATTERN]);
    if (next !== 'all' && mode === 'all') {
      subscribe(exact.topicList());
      psubscribe([SYS_PATTERN]);
    }
    psubscribe(adding);
    punsubscribe(dropping);
    if (next === 'all' && mode !== 'all') {
      unsubscribe(exact.topicList());
      punsubscribe([SYS_PATTERN]);
    }
    if (next !== 'all' && mode === 'all') punsubscribe([ALL_PATTERN]);
    if (next !== mode) switches++;
    mode = next;
    held = nextHeld;
    return true;
  };

  /**
   * Every local listener runs guarded (one wrapper per listener and topic, so removeListener finds
   * it). A listener that throws on a message it cannot handle (aedes-persistence-redis' JSON.parse of
   * a `$SYS/sub/…` payload from another version, say) threw out of MQEmitter's delivery after it had
   * counted the message in flight: caught by guardSubscriberMessages alone, each such message would
   * keep one of the `concurrency` slots for ever, and past them the node delivers nothing (seen in a
   * review with 4 slots and 5 messages: a PUBACKed reading never reached ingest). Here the throw is
   * counted and logged as the others, the listener's done() is called once, and the other listeners
   * of the message still run.
   */
  const wrappers = new Map<Listener, Map<string, { readonly fn: Listener; n: number }>>();
  const guarded = (topic: string, fn: Listener): Listener => {
    let byTopic = wrappers.get(fn);
    if (byTopic === undefined) wrappers.set(fn, (byTopic = new Map()));
    let w = byTopic.get(topic);
    if (w === undefined) {
      const wrapper: Listener = function (this: unknown, packet, done) {
        let called = false;
        const doneOnce = (...args: unknown[]): void => {
          if (called) return;
          called = true;
          (done as (...a: unknown[]) => void)(...args);
        };
        try {
          fn.call(this, packet, doneOnce);
        } catch (err) {
          malformed++;
          opts.onMalformed?.(topic, `a listener on ${topic} failed on it: ${err instanceof Error ? err.message : String(err)}`);
          doneOnce();
        }
      };
      byTopic.set(topic, (w = { fn: wrapper, n: 0 }));
    }
    w.n++;
    return w.fn;
  };
  /** The wrapper registered for (topic, fn), released when its last registration goes. */
  const unguarded = (topic: string, fn: Listener): Listener => {
    const byTopic = wrappers.get(fn);
    const w = byTopic?.get(topic);
    if (byTopic === undefined || w === undefined) return fn;
    if (--w.n === 0) {
      byTopic.delete(topic);
      if (byTopic.size === 0) wrappers.delete(fn);
    }
    return w.fn;
  };

  inner.on = (topic, fn, done) => {
    inner._on(topic, guarded(topic, fn));
    const scope = listenerScope(topic);
    let sent = false;
    if (scope === 'exact') {
      if (exact.add(topic, fn) && mode !== 'all') {
        send(() => conn.subscribe(topic));
        sent = true;
      }
    } else if (scope === 'wildcard') {
      if (wildcard.add(topic, fn)) sent = reconcile();
    }
    whenDone(sent, done);
    return inner;
  };
  inner.removeListener = (topic, fn, done) => {
    // mqemitter removes the listener on the next turn (setImmediate) and then calls its callback.
    const removed = new Promise<void>((resolve) => inner._removeListener(topic, unguarded(topic, fn), resolve));
    const scope = listenerScope(topic);
    if (scope === 'exact') {
      if (exact.remove(topic, fn) && mode !== 'all') unsubscribe([topic]);
    } else if (scope === 'wildcard') {
      if (wildcard.remove(topic, fn)) reconcile();
    }
    if (done !== undefined) void removed.then(() => whenDone(false, done));
    return inner;
  };
  inner.onLocal = (topic, fn, done) => inner._on(topic, guarded(topic, fn), done);

  // Counted beside mqemitter-redis' own handlers (which decode and deliver).
  conn.on('messageBuffer', (channel) => {
    if (isSysChannel(channel)) sysReceived++;
    else received++;
  });
  conn.on('pmessageBuffer', (_pattern, channel) => {
    if (isSysChannel(channel)) sysReceived++;
    else received++;
  });
  // After a failed command: the wanted subscriptions again, added before the unwanted are dropped
  // (Redis answers an UNSUBSCRIBE of a channel or pattern it does not hold too). On the next turn,
  // after ioredis' own re-subscription of what it knew.
  conn.on('ready', () => {
    if (!unsure) return;
    setImmediate(() => {
      if (!unsure) return;
      unsure = false;
      const channelsLeft = [...staleChannels];
      const patternsLeft = [...stalePatterns];
      staleChannels.clear();
      stalePatterns.clear();
      if (mode === 'all') {
        psubscribe([ALL_PATTERN]);
        unsubscribe([...new Set([...exact.topicList(), ...channelsLeft])]);
        punsubscribe([...new Set([SYS_PATTERN, ...patternsLeft])].filter((p) => p !== ALL_PATTERN));
      } else {
        const wanted = exact.topicList();
        subscribe(wanted);
        psubscribe([SYS_PATTERN, ...held]);
        const wantedSet = new Set(wanted);
        unsubscribe(channelsLeft.filter((c) => !wantedSet.has(c)));
        punsubscribe([...new Set([ALL_PATTERN, ...patternsLeft])].filter((p) => !held.has(p)));
      }
    });
  });
  // Exact mode until a wildcard listener comes: the `$SYS` pattern. ioredis re-subscribes after a
  // reconnect (autoResubscribe).
  send(() => conn.psubscribe(SYS_PATTERN));
  const ready = last;
  // Awaited by start(); this only keeps a rejection before that await from being "unhandled".
  ready.catch(() => undefined);
  return {
    mq,
    ready,
    recordConnect(clientId, brokerId) {
      inner.pubConn.hset(LAST_NODE_KEY, clientId, brokerId).catch(opts.onError);
    },
    lastNodeOf: (clientId) => inner.pubConn.hget(LAST_NODE_KEY, clientId),
    markAlive(brokerId, ttlMs) {
      inner.pubConn.set(`${ALIVE_PREFIX}${brokerId}`, '1', 'PX', ttlMs).catch(opts.onError);
    },
    isAlive: async (brokerId) => (await inner.pubConn.exists(`${ALIVE_PREFIX}${brokerId}`)) === 1,
    claimWill: async (brokerId, clientId, ttlMs) => (await inner.pubConn.set(`${WILL_CLAIM_PREFIX}${brokerId}:${clientId}`, '1', 'PX', ttlMs, 'NX')) === 'OK',
    stats: () => ({ mode, channels: exact.topics, wildcardListeners: wildcard.total, patterns: held.size, received, sysReceived, switches, malformed }),
  };
}
