import type { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import mqttPacket from 'mqtt-packet';

/**
 * CONNECT of a clean session (every carewatch device), without aedes' per-connection stream pipeline.
 *
 * aedes 1.2's handleConnect (lib/handlers/connect.js) ends every CONNECT with `emptyQueue`:
 * `pipeline(persistence.outgoingStream(client), through(...), done)`, run even for a clean session
 * whose queue is empty. Node's pipeline builds an AbortController per call and aborts it when done,
 * which constructs a DOMException (stack trace included); with the Readable, the Transform and their
 * end/close callbacks that is ~100 µs of CPU per connection (measured alone: 99.7 µs; in the broker's
 * profile of a 5,000-device reconnect burst, 523 of 3,235 ms busy, 16 %, before its garbage). A device
 * never has anything queued: aedes queues only for persistent sessions, and a clean session's queue
 * is cleared, not delivered [MQTT-3.1.2-6].
 *
 * So a clean CONNECT (MQTT 3.1.1, the first packet of the connection) runs here: the same steps in the
 * same order, with aedes' own hooks and public methods (preConnect, authenticate, registerClient,
 * persistence's cleanSubscriptions / delWill / putWill / cleanIncoming), and the queue step asks the
 * store whether the session's queue is empty: a Map lookup in the single broker's stores
 * (memory-persistence.ts), one EXISTS on Redis (redis-persistence.ts, whose LRANGE and stream it
 * replaces). When it is not (a client id that had a persistent session before), the entries are
 * numbered and cleared one by one as aedes' emptyQueueFilter does for a clean client. CONNACK 0 is
 * written as one 4-byte buffer (one socket write instead of mqtt-packet's four chunks and their
 * writev), and a single broker registers the client without aedes' `$SYS/<id>/new/clients`
 * publication (see register()); a cluster node keeps it.
 *
 * Everything else goes to aedes unchanged: persistent sessions (svc-ingest, svc-alerts: their queue
 * is delivered by aedes' pipeline), MQTT 3.1 / 5, a second CONNECT [MQTT-3.1.0-2], a store without
 * the queue check. The internals used (`_parser`, `_parsingBatch`, `_nextBatch`,
 * `_connectTimer`, `_will`, the keepalive fields, `pause`/`resume`, `waitForDrain`) are checked at
 * install; test/broker/clean-connect.test.ts runs a device CONNECT through both paths and compares.
 */

interface ConnectPacket {
  cmd: 'connect';
  clientId: string;
  clean: boolean;
  protocolVersion: number;
  keepalive: number;
  username?: string;
  password?: Buffer;
  will?: unknown;
}

/**
 * Our stores' view of a session's outgoing queue: answered at once by the in-process stores
 * (memory-persistence.ts), by a promise on Redis (redis-persistence.ts).
 */
interface QueueView {
  outgoingQueueEmpty(clientId: string): boolean | Promise<boolean>;
  /** A copy of the queued packets, queue order. */
  outgoingPackets(clientId: string): object[] | Promise<object[]>;
}

interface Persistence extends Partial<QueueView> {
  /** durable-persistence.ts: delWill + putWill in one step, one journal record at most. */
  replaceWill?(client: unknown, will: unknown): Promise<unknown>;
  cleanSubscriptions(client: unknown): Promise<unknown>;
  delWill(client: unknown): Promise<unknown>;
  putWill(client: unknown, will: unknown): Promise<unknown>;
  cleanIncoming?(client: unknown): Promise<unknown>;
  outgoingUpdate(client: unknown, packet: object): Promise<unknown>;
  outgoingClearMessageId(client: unknown, packet: object): Promise<unknown>;
}

interface BrokerInternals extends EventEmitter {
  closed: boolean;
  keepaliveLimit?: number;
  persistence: Persistence;
  preConnect(client: unknown, packet: ConnectPacket, done: (err: Error | null | undefined, ok?: boolean) => void): void;
  authenticate(client: unknown, username: string | undefined, password: Buffer | undefined, done: (err: (Error & { returnCode?: number; errorCode?: number }) | null | undefined, ok?: boolean) => void): void;
  authorizeForward(client: unknown, packet: object): unknown;
  registerClient(client: unknown): void;
  clients: Record<string, ClientInternals | undefined>;
  connectedClients: number;
}

/** What of aedes' Client this reaches into (lib/client.js, lib/handlers/connect.js). */
interface ClientInternals extends EventEmitter {
  _parser?: EventEmitter;
  _parsingBatch: number;
  _nextBatch: (err?: Error | null) => void;
  _connectTimer: ReturnType<typeof setTimeout> | null;
  _keepaliveInterval: number;
  _keepaliveTimer: ReturnType<typeof setTimeout> | null;
  _nextId: number;
  _will: unknown;
  _authorized: boolean;
  id: string | null;
  clean: boolean;
  version: number | null;
  will: unknown;
  closed: boolean;
  connecting: boolean;
  connected: boolean;
  connackSent: boolean;
  errored?: boolean;
  conn: NodeJS.WritableStream;
  broker: BrokerInternals;
  pause(): void;
  resume(): void;
  close(done?: () => void): void;
  waitForDrain(done: (err?: Error | null) => void): void;
}

type Done = (err?: Error | null) => void;

/** CONNACK, return code 0, session present 0 [MQTT-3.2.2-1]: what mqtt-packet writes in four chunks. */
export const CONNACK_ACCEPTED = Buffer.from([0x20, 0x02, 0x00, 0x00]);

const ERROR_MESSAGES = ['', 'unacceptable protocol version', 'identifier rejected', 'Server unavailable', 'bad user name or password', 'not authorized', 'keep alive limit exceeded'];

function isConnect(p: unknown): p is ConnectPacket {
  return typeof p === 'object' && p !== null && (p as { cmd?: unknown }).cmd === 'connect';
}

/** aedes' write(): the packet on the connection, `done` once written (or drained), on the next turn. */
function write(client: ClientInternals, packet: Buffer | object, done: Done): void {
  let error: Error | null = null;
  if (client.connecting || client.connected) {
    try {
      const ok = Buffer.isBuffer(packet) ? client.conn.write(packet) : mqttPacket.writeToStream(packet as mqttPacket.Packet, client.conn);
      if (!ok && client.errored !== true) {
        client.waitForDrain(done);
        return;
      }
    } catch {
      error = new Error('packet received not valid');
    }
  } else {
    error = new Error('connection closed');
  }
  setImmediate(done, error);
}

/** aedes' doConnack: CONNACK, then its 'connackSent' event and flag. */
function connack(client: ClientInternals, returnCode: number, done: Done): void {
  const packet = { cmd: 'connack' as const, returnCode, sessionPresent: false };
  write(client, returnCode === 0 ? CONNACK_ACCEPTED : packet, (err) => {
    if (!err) {
      client.broker.emit('connackSent', packet, client);
      client.connackSent = true;
    }
    done(err);
  });
}

/** aedes' QoSPacket over a queued packet: a copy numbered with the connection's next packet id. */
function numbered(original: { messageId?: number }, client: ClientInternals): object {
  const copy: Record<string, unknown> = { ...original };
  if (!original.messageId) {
    copy.messageId = client._nextId;
    client._nextId = client._nextId >= 65535 ? 1 : client._nextId + 1;
  }
  return copy;
}

/**
 * aedes' emptyQueue for a clean client: nothing queued (a device, always) → resume and go on; else each
 * entry numbered, then cleared, as emptyQueueFilter does when `client.clean` (never written).
 */
function emptyQueue(client: ClientInternals, view: QueueView, done: Done): void {
  client.resume();
  const id = client.id ?? '';
  const empty = view.outgoingQueueEmpty(id);
  if (empty === true) {
    done(null);
    return;
  }
  if (empty === false) {
    clearQueued(client, view.outgoingPackets(id), done);
    return;
  }
  empty.then((isEmpty) => (isEmpty ? done(null) : clearQueued(client, view.outgoingPackets(id), done)), done);
}

/** emptyQueue's clearing of what a clean client's id had queued, the packets given now or later. */
function clearQueued(client: ClientInternals, queued: object[] | Promise<object[]>, done: Done): void {
  if (!Array.isArray(queued)) {
    queued.then((packets) => clearQueued(client, packets, done), done);
    return;
  }
  const persistence = client.broker.persistence;
  const packets = queued;
  let i = 0;
  const step = (): void => {
    const original = packets[i++];
    if (original === undefined) {
      done(null);
      return;
    }
    const packet = numbered(original, client);
    const clear = (): void => {
      // aedes asks authorizeForward here too (counted by the hook); the packet is cleared either way.
      client.broker.authorizeForward(client, packet);
      persistence.outgoingClearMessageId(client, packet).then(step, done);
    };
    persistence.outgoingUpdate(client, packet).then(clear, (err: Error) => {
      client.emit('error', err);
      step();
    });
  };
  step();
}

/** One clean CONNECT in progress: what every step needs. */
interface Connecting {
  readonly client: ClientInternals;
  readonly packet: ConnectPacket;
  readonly view: QueueView;
  readonly announce: boolean;
  readonly done: Done;
  readonly keepalive: KeepaliveWatch;
}

/** What the keepalive check reads of a connection: packets parsed so far, and whether a part of one already bought it time. */
interface KeepaliveWatch {
  packets: number;
  partial: boolean;
}

// The steps are module functions over a Connecting, and the callbacks inline and anonymous: tsx
// (esbuild keepNames) wraps every named function a connection creates in a __name() call, an
// Object.defineProperty each; named closures per CONNECT were 1.6 % of the burst's CPU.

/** aedes' runSeries final callback. */
function finish(s: Connecting, err?: Error | null): void {
  const client = s.client;
  client.connecting = false;
  if (!err) {
    client.connected = true;
    client.broker.emit('clientReady', client);
    client.emit('connected');
  }
  s.done(err);
}

/** The steps of aedes' connectActions for a clean session, in its order, then its final callback. */
function connectSeries(s: Connecting): void {
  const { client, packet } = s;
  const broker = client.broker;
  // authenticate
  client.pause();
  broker.authenticate(client, packet.username, packet.password, (err, successful) => {
    // aedes: the client or the broker may have closed meanwhile; stop without registering it.
    if (client.closed || broker.closed) return;
    if (!err && successful === true) {
      client._authorized = true;
      afterAuth(s);
      return;
    }
    let returnCode = 5;
    let error: Error & { returnCode?: number; errorCode?: number };
    if (err) {
      const code = err.returnCode;
      if (code !== undefined && code >= 2 && code <= 5) returnCode = code;
      if (!err.message) err.message = ERROR_MESSAGES[returnCode] ?? '';
      error = err;
    } else {
      error = new Error(ERROR_MESSAGES[returnCode]);
    }
    error.errorCode = returnCode;
    // [MQTT-3.2.2-5]
    connack(client, returnCode, () => client.close(() => finish(s, error)));
  });
}

/**
 * A keepalive expiry [MQTT-3.1.2-24] is judged only after reading what has already arrived. Timers run
 * before the poll phase that reads sockets: after an event-loop stall of tens of seconds (a node
 * taking over a dead node's devices, at ~1 ms of CPU each, on a busy machine), every device whose
 * bound passed during the stall was closed although its PINGREQ sat unread in the socket's buffer.
 * The closed devices reconnected, which stalled the loop again: a cascade (bench/README.md
 * connections100k, session 16: 42,699 keepalive closes in the 200 s after one node's failover). So the
 * close waits one loop turn (setImmediate runs after the poll phase); if the connection read
 * anything meanwhile, its timer runs on from now instead. The packet was received in time; only
 * this process had not read it. "Anything" is a packet parsed (one already read but waiting in a
 * paused batch counts too; over WebSocket this is the only sign), or bytes read on a TCP or TLS
 * socket that are not a whole packet yet: that buys one more interval, not more, until a packet
 * completes (a client trickling bytes is still closed).
 */
function keepaliveTimeout(client: ClientInternals, watch: KeepaliveWatch): void {
  setImmediate(keepaliveCheck, client, watch, watch.packets, bytesRead(client));
}

function bytesRead(client: ClientInternals): number | undefined {
  const read = (client.conn as { bytesRead?: unknown }).bytesRead;
  return typeof read === 'number' ? read : undefined;
}

function keepaliveCheck(client: ClientInternals, watch: KeepaliveWatch, packets: number, read: number | undefined): void {
  if (client.closed) return;
  if (watch.packets !== packets) {
    // aedes' handle() refreshes the timer as it handles the packet; refreshed here too in case the
    // packet waits in a paused batch.
    client._keepaliveTimer?.refresh();
    return;
  }
  if (read !== undefined && bytesRead(client) !== read && !watch.partial) {
    watch.partial = true;
    client._keepaliveTimer?.refresh();
    return;
  }
  keepaliveExpired(client);
}

function keepaliveExpired(client: ClientInternals): void {
  client.broker.emit('keepaliveTimeout', client);
  client.emit('error', new Error('keep alive timeout'));
}

function afterAuth(s: Connecting): void {
  const { client, packet } = s;
  // setKeepAlive [MQTT-3.1.2-24]
  if (packet.keepalive > 0) {
    client._keepaliveInterval = packet.keepalive * 1500 + 1;
    client._keepaliveTimer = setTimeout(keepaliveTimeout, client._keepaliveInterval, client, s.keepalive);
  }
  // fetchSubs for a clean session [MQTT-3.2.2-1]; restoreSubs has nothing to restore.
  client.broker.persistence.cleanSubscriptions(client).then(
    () => storeWill(s),
    (err: Error) => finish(s, err),
  );
}

function storeWill(s: Connecting): void {
  const client = s.client;
  const persistence = client.broker.persistence;
  client.will = client._will;
  if (typeof persistence.replaceWill === 'function') {
    persistence.replaceWill(client, client.will).then(
      () => register(s),
      (err: Error) => finish(s, err),
    );
    return;
  }
  // aedes: delWill, then (whatever its outcome) putWill of the new one.
  persistence.delWill(client).then(
    () => putWill(s),
    () => putWill(s),
  );
}

function putWill(s: Connecting): void {
  const client = s.client;
  if (client.will) {
    client.broker.persistence.putWill(client, client.will).then(
      () => register(s),
      (err: Error) => finish(s, err),
    );
  } else register(s);
}

/**
 * aedes' registerClient: a connection with the same client id is closed first [MQTT-3.1.4-2]. On a
 * single broker (no cluster: `announce` false) its `$SYS/<id>/new/clients` publication has no one
 * to tell: the only listeners (aedes' and broker.ts' takeover across nodes) skip their own broker's
 * id, and clients may not subscribe to `$` topics (policy.ts, [MQTT-4.7.2-1]). It went through
 * mqemitter and qlobber once per CONNECT (3.4 % of the burst's CPU), so it is left out then. A
 * cluster node publishes it: it is how the node holding an older connection of the id closes it.
 */
function register(s: Connecting): void {
  const client = s.client;
  const broker = client.broker;
  // A connection that died while its CONNECT was being stored (aedes registers it anyway) would take
  // the session over from the client id's live connection: close that one and stay registered as a
  // dead client in its place.
  if (client.closed) {
    finish(s, new Error('connection closed'));
    return;
  }
  if (s.announce) {
    broker.registerClient(client);
    cleanIncoming(s);
    return;
  }
  const id = client.id ?? '';
  const previous = broker.clients[id];
  if (previous !== undefined) {
    previous.close(() => {
      // It may have died while the old one closed (aedes' close calls back after its store work):
      // registered then, it was a dead client in the id's place, connectedClients one high for good.
      if (!client.closed) addClient(broker, client, id);
    });
  } else addClient(broker, client, id);
  cleanIncoming(s);
}

/** aedes' _finishRegisterClient without the $SYS publication. */
function addClient(broker: BrokerInternals, client: ClientInternals, id: string): void {
  broker.connectedClients++;
  broker.clients[id] = client;
  broker.emit('client', client);
}

function cleanIncoming(s: Connecting): void {
  const client = s.client;
  const persistence = client.broker.persistence;
  // cleanIncoming [MQTT-3.1.2-6], after registerClient as in aedes (a taken-over client's
  // in-flight QoS 2 store must land before the wipe).
  let cleaned: Promise<unknown>;
  try {
    cleaned = typeof persistence.cleanIncoming === 'function' ? persistence.cleanIncoming(client) : Promise.resolve();
  } catch (err) {
    cleaned = Promise.reject(err as Error);
  }
  cleaned.then(
    () => connack(client, 0, (err) => (err ? finish(s, err) : emptyQueue(client, s.view, (err2) => finish(s, err2)))),
    (err: Error) => finish(s, err),
  );
}

/** aedes' handleConnect for a clean session: preConnect, then (next turn) init and the series. */
function handleCleanConnect(s: Connecting): void {
  const { client, packet } = s;
  if (client._connectTimer !== null) clearTimeout(client._connectTimer);
  client._connectTimer = null;
  client.connecting = true;
  client.broker.preConnect(client, packet, (err, successful) => {
    if (err || successful !== true) {
      client.connecting = false;
      s.done(err);
      return;
    }
    setImmediate(init, s);
  });
}

/** aedes' init: the protocol and keepalive checks were made before taking the CONNECT (cleanConnect). */
function init(s: Connecting): void {
  const { client, packet } = s;
  client.id = packet.clientId || 'aedes_' + randomUUID();
  client.clean = packet.clean;
  client.version = packet.protocolVersion;
  client._will = packet.will;
  connectSeries(s);
}

/** CONNECTs by the path they took: here (`clean`) or aedes' own handler (`aedes`). */
export interface ConnectPathCounts {
  clean: number;
  aedes: number;
}

/**
 * Installs the clean-session CONNECT on one aedes client (after ackAfterPublish: it wraps the
 * parser's one 'packet' listener); false, and nothing changed, if aedes' internals or the store are
 * not as expected (the connection then runs aedes' own CONNECT).
 */
export function cleanConnect(client: unknown, counts: ConnectPathCounts, opts: { readonly announceNewClients: boolean }): boolean {
  const c = client as ClientInternals;
  const persistence = c.broker?.persistence;
  if (persistence === undefined || typeof persistence.outgoingQueueEmpty !== 'function' || typeof persistence.outgoingPackets !== 'function') return false;
  const view: QueueView = { outgoingQueueEmpty: persistence.outgoingQueueEmpty.bind(persistence), outgoingPackets: persistence.outgoingPackets.bind(persistence) };
  const parser = c._parser;
  if (parser === undefined || typeof parser.listeners !== 'function' || typeof c._nextBatch !== 'function' || typeof c.pause !== 'function' || typeof c.resume !== 'function' || typeof c.waitForDrain !== 'function' || typeof c.broker.registerClient !== 'function' || typeof c.broker.preConnect !== 'function' || typeof c.broker.clients !== 'object' || typeof c.broker.connectedClients !== 'number' || !('_connectTimer' in c) || !('_will' in c) || typeof c._nextId !== 'number') return false;
  const listeners = parser.listeners('packet');
  const next = listeners[0] as ((this: unknown, packet: unknown) => void) | undefined;
  if (listeners.length !== 1 || next === undefined) return false;
  parser.removeListener('packet', next);
  const keepalive: KeepaliveWatch = { packets: 0, partial: false };
  parser.on('packet', function onConnectPacket(this: unknown, packet: unknown) {
    keepalive.packets++;
    keepalive.partial = false;
    // aedes' enqueue takes a packet at once only when it is the first of the connection or CONNACK
    // was sent; its handle() refuses a second CONNECT. Anything but a plain first clean 3.1.1
    // CONNECT that needs no keepalive check is aedes' (and counted).
    if (!isConnect(packet)) {
      next.call(this, packet);
      return;
    }
    const limit = c.broker.keepaliveLimit;
    if (packet.clean !== true || packet.protocolVersion !== 4 || (limit !== undefined && limit > 0) || c.connecting || c.connected || c.connackSent || c._parsingBatch !== 0 || c.closed) {
      counts.aedes++;
      next.call(this, packet);
      return;
    }
    counts.clean++;
    c._parsingBatch++;
    handleCleanConnect({ client: c, packet, view, announce: opts.announceNewClients, done: c._nextBatch, keepalive });
  });
  return true;
}
