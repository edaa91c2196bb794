import type { EventEmitter } from 'node:events';
import mqttPacket from 'mqtt-packet';

/**
 * PUBACK only once a QoS 1 message is stored.
 *
 * aedes 1.2 answers a QoS 1 PUBLISH with PUBACK first and publishes it afterwards
 * (lib/handlers/publish.js: write(PubAck) → broker.publish → storeRetained → enqueueOffline →
 * outgoingEnqueueCombi). A broker killed between the two has acknowledged a message it never
 * stored, and the device, which may discard a message once it has the PUBACK [MQTT-4.3.2-2 ... 4.3.2-5],
 * never sends it again (issue 12: 7.7 % of the acknowledged telemetry lost over two SIGKILLs).
 *
 * aedes has no option for the order, and its handlers are not exported, so this takes over the
 * QoS 1 PUBLISH packets of one connection where aedes receives them (the parser's 'packet' event)
 * and runs aedes' own steps in the safe order: the broker's authorizePublish hook, then the public
 * `broker.publish(packet, client, done)` (whose persistence steps resolve once stored: Redis'
 * replies; the disk journal delivers first and says when its group commit is on disk through
 * `persistence.whenDurable()`), then PUBACK once durable. Everything else (QoS 0 and 2,
 * CONNECT, SUBSCRIBE, …) still goes to aedes unchanged. The few internals used (`_parser`,
 * `_parsingBatch`, `_nextBatch`, `connackSent`, the keepalive timer, `waitForDrain`) are checked at
 * install; test/broker/ack-after-publish.test.ts proves the order after an aedes upgrade.
 *
 * A published message's PUBACK waits for its store, in arrival order per connection; the connection
 * is read on meanwhile, up to MAX_WAITING_PUBACKS waiting (then a device's backlog waits in its own
 * TCP buffer). Messages arriving during one fdatasync go to disk together in the next (group commit).
 */

interface PublishPacket {
  cmd: 'publish';
  topic: string;
  qos: number;
  messageId?: number;
}

/** What of aedes' Client this reaches into (lib/client.js, lib/handlers/index.js). */
interface ClientInternals {
  _parser?: EventEmitter & { _queue?: unknown[] | null };
  _parsingBatch: number;
  _nextBatch: (err?: Error | null) => void;
  _keepaliveInterval: number;
  _keepaliveTimer: { refresh(): void } | null;
  connackSent: boolean;
  connecting: boolean;
  connected: boolean;
  errored?: boolean;
  conn: NodeJS.WritableStream;
  waitForDrain(done: (err?: Error | null) => void): void;
  once(event: 'connected', fn: () => void): unknown;
  broker: {
    queueLimit: number;
    authorizePublish(client: unknown, packet: PublishPacket, done: (err?: Error | null) => void): void;
    publish(packet: PublishPacket, client: unknown, done: (err?: Error | null) => void): void;
    /** DurableMemoryPersistence's: resolves once everything queued so far is on disk. */
    persistence: { whenDurable?: () => Promise<void> };
  };
}

function isQoS1Publish(p: unknown): p is PublishPacket {
  return typeof p === 'object' && p !== null && (p as { cmd?: unknown }).cmd === 'publish' && (p as { qos?: unknown }).qos === 1;
}

/**
 * A PUBACK [MQTT-3.4] as one 4-byte buffer: fixed header 0x40, remaining length 2, packet id. What
 * mqtt-packet's writeToStream produces, but in one stream write instead of three (header, length,
 * id) plus its own cork and nextTick uncork: the PUBACK is written once per device message.
 */
export function pubackBytes(messageId: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = 0x40;
  b[1] = 0x02;
  b[2] = messageId >>> 8;
  b[3] = messageId & 0xff;
  return b;
}

/** aedes' write(): PUBACK on the connection, `done` once written (or once drained). */
function writePuback(client: ClientInternals, messageId: number | undefined, done: (err?: Error | null) => void): void {
  if (!(client.connecting || client.connected)) {
    setImmediate(done, new Error('connection closed'));
    return;
  }
  let error: Error | null = null;
  try {
    // A QoS 1 PUBLISH always has a packet id (mqtt-packet's parser reads it); anything else takes
    // mqtt-packet's path, which refuses it as aedes would.
    const ok =
      messageId !== undefined && Number.isInteger(messageId) && messageId >= 0 && messageId <= 0xffff
        ? client.conn.write(pubackBytes(messageId))
        : mqttPacket.writeToStream({ cmd: 'puback', messageId: messageId ?? 0 }, client.conn);
    if (!ok && client.errored !== true) {
      client.waitForDrain(done);
      return;
    }
  } catch {
    error = new Error('packet received not valid');
  }
  setImmediate(done, error);
}

/**
 * A connection's PUBACKs, in the order its PUBLISHes arrived [MQTT-4.6.0-2]: each publish takes its
 * place in `tail` when it arrives and fills it once published (with the store's promise that it is
 * durable), so a later message whose publish ended sooner (an event beside telemetry held by a slow
 * ingest) waits for the earlier one's PUBACK.
 */
interface AckQueue {
  tail: Promise<void>;
  /** PUBACKs not yet written. */
  waiting: number;
  /** Reads held while `waiting` is past the bound: each is aedes' `done` of one publish. */
  readonly held: Array<() => void>;
}
const ackQueues = new WeakMap<ClientInternals, AckQueue>();

/**
 * How many PUBACKs of one connection may wait for the store while its next packets are read. The
 * reading goes on so that a device's alarm is delivered while its earlier readings wait for a disk
 * that is full (before session 22 two readings in one read stopped the connection's reading until
 * there was room: an alarm sent after them was not even read). Past it the connection is read no
 * more until one is written, as before (aedes' own queue bound, `queueLimit`, is 42).
 */
export const MAX_WAITING_PUBACKS = 32;

/** aedes' handlePublish for QoS 1, with PUBACK moved after the publish and its store. */
function publishThenAck(client: ClientInternals, packet: PublishPacket, done: (err?: Error | null) => void): void {
  const topic = packet.topic;
  // aedes' checks (lib/handlers/publish.js); the topic depth is checked by broker.publish.
  if (topic.length === 0) return done(new Error('empty topic not allowed in PUBLISH'));
  if (topic.includes('#')) return done(new Error('# is not allowed in PUBLISH'));
  if (topic.includes('+')) return done(new Error('+ is not allowed in PUBLISH'));
  let queue = ackQueues.get(client);
  if (queue === undefined) ackQueues.set(client, (queue = { tail: Promise.resolve(), waiting: 0, held: [] }));
  const q = queue;
  q.waiting++;
  // Filled once published: the store's promise, boxed (a promise given to resolve() would be
  // adopted, and its rejection thrown past the catch below), or null when the publish failed (no
  // PUBACK; the connection is closed on the error).
  let fill!: (published: { readonly durable: Promise<void> | undefined } | null) => void;
  const published = new Promise<{ readonly durable: Promise<void> | undefined } | null>((resolve) => (fill = resolve));
  // One PUBACK fewer waiting: the next held read goes on.
  const written = (): void => {
    q.waiting--;
    q.held.shift()?.();
  };
  q.tail = q.tail
    .then(async () => {
      const box = await published;
      if (box === null) return written();
      try {
        await box.durable;
      } catch (err) {
        // The store could not keep it: no PUBACK, the connection is closed (the device sends it again).
        written();
        if (client.connecting || client.connected) client._nextBatch(err as Error);
        return;
      }
      // Counted as waiting until written out (drained): a device that reads no PUBACKs is not read
      // on without bound either.
      writePuback(client, packet.messageId, (err) => {
        written();
        // A connection gone meanwhile is closed already; other write errors close it.
        if (err && (client.connecting || client.connected)) client._nextBatch(err);
      });
    })
    // Nothing above throws; a chain that rejected would take no more PUBACKs of this connection.
    .catch(() => undefined);
  client.broker.authorizePublish(client, packet, (err) => {
    if (err) {
      fill(null);
      return done(err);
    }
    client.broker.publish(packet, client, (err2) => {
      if (err2) {
        fill(null);
        return done(err2);
      }
      // The disk store delivers before its fdatasync (durable-persistence.ts); the PUBACK waits for it.
      fill({ durable: client.broker.persistence.whenDurable?.() });
      // Read on while few PUBACKs wait; past the bound, once one is written.
      if (q.waiting <= MAX_WAITING_PUBACKS) done();
      else q.held.push(() => done());
    });
  });
  if (client._keepaliveInterval > 0) client._keepaliveTimer?.refresh();
}

/**
 * aedes' per-client `dedupe` (lib/client.js) drops, as a duplicate, any live delivery whose broker
 * counter is not above the last one that client got. Counters are taken when a publish starts; a
 * QoS 1 publish now finishes its store (an fdatasync) before it is delivered, so a QoS 0 message or a
 * publish whose store finished sooner overtakes it, and the overtaken message was dropped, and for a
 * persistent session also cleared from its queue: lost (found by test/integration/care-scenarios:
 * an event at QoS 1 overtaken by the same tick's QoS 0 telemetry). The check only guards against
 * a client's overlapping subscriptions delivering one message twice; carewatch's ACL gives the
 * services disjoint filters, and MQTT 3.1.1 lets a server deliver one copy per matching
 * subscription (§3.3.5), so the counters are neutralised: every delivery passes.
 */
const NO_DEDUPE: Record<string, number> = new Proxy(Object.create(null) as Record<string, number>, {
  get: () => 0,
  set: () => true,
});

/** Installs the takeover on one aedes client; false if aedes' internals are not as expected. */
export function ackAfterPublish(client: unknown): boolean {
  const c = client as ClientInternals;
  if (typeof (client as { duplicates?: unknown }).duplicates !== 'object') return false;
  (client as { duplicates: Record<string, number> }).duplicates = NO_DEDUPE;
  const parser = c._parser;
  if (parser === undefined || typeof parser.listeners !== 'function' || typeof c._nextBatch !== 'function' || typeof c.waitForDrain !== 'function' || typeof c.broker?.publish !== 'function') return false;
  const listeners = parser.listeners('packet');
  const aedesEnqueue = listeners[0] as ((this: unknown, packet: unknown) => void) | undefined;
  if (listeners.length !== 1 || aedesEnqueue === undefined) return false;
  parser.removeListener('packet', aedesEnqueue);

  // QoS 1 publishes pipelined before CONNACK: aedes would queue them and PUBACK early on 'connected'.
  let early: PublishPacket[] | null = [];
  c.once('connected', () => {
    const queued = early ?? [];
    early = null;
    for (const p of queued) publishThenAck(c, p, c._nextBatch);
  });

  parser.on('packet', function onPacket(this: unknown, packet: unknown) {
    if (!isQoS1Publish(packet)) {
      aedesEnqueue.call(this, packet);
      return;
    }
    if (c.connackSent) {
      c._parsingBatch++;
      publishThenAck(c, packet, c._nextBatch);
      return;
    }
    // Before CONNACK: a PUBLISH as the first packet goes to aedes, which closes the connection
    // [MQTT-3.1.0-1]; later ones wait, bounded like aedes' own queue.
    if (c._parsingBatch === 0 || early === null) {
      aedesEnqueue.call(this, packet);
      return;
    }
    c._parsingBatch++;
    if (early.length + (parser._queue?.length ?? 0) < c.broker.queueLimit) early.push(packet);
    else parser.emit('error', new Error('Client queue limit reached'));
  });
  return true;
}
