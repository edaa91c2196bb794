import type { EventEmitter } from 'node:events';
import mqttPacket from 'mqtt-packet';

/**
 * PUBACK (QoS 1) and PUBREC (QoS 2) only once the message is stored.
 *
 * aedes 1.2 answers a QoS 1 PUBLISH with PUBACK first and publishes it afterwards
 * (lib/handlers/publish.js: write(PubAck) → broker.publish → storeRetained → enqueueOffline →
 * outgoingEnqueueCombi). A broker killed between the two has acknowledged a message it never
 * stored, and the device, which may discard a message once it has the PUBACK [MQTT-4.3.2-2 ... 4.3.2-5],
 * never sends it again (issue 12: 7.7 % of the acknowledged telemetry lost over two SIGKILLs).
 *
 * aedes has no option for the order, and its handlers are not exported, so this takes over the
 * QoS 1 and 2 PUBLISH packets of one connection where aedes receives them (the parser's 'packet' event)
 * and runs aedes' own steps in the safe order: the broker's authorizePublish hook, then the public
 * `broker.publish(packet, client, done)` (whose persistence steps resolve once stored: Redis'
 * replies; the disk journal delivers first and says when its group commit is on disk through
 * `persistence.whenDurable()`), then PUBACK once durable. Everything else (QoS 0, PUBREL,
 * CONNECT, SUBSCRIBE, …) still goes to aedes unchanged. The few internals used (`_parser`,
 * `_parsingBatch`, `_nextBatch`, `connackSent`, the keepalive timer, `waitForDrain`) are checked at
 * install; test/broker/ack-after-publish.test.ts proves the order after an aedes upgrade.
 *
 * A published message's PUBACK waits for its store, in arrival order per connection; the connection
 * is read on meanwhile, up to MAX_WAITING_PUBACKS waiting (then a device's backlog waits in its own
 * TCP buffer). Messages arriving during one fdatasync go to disk together in the next (group commit).
 *
 * QoS 2 the same way (review of session 25: an acknowledged message lost). aedes 1.2 stores the
 * incoming packet (incomingStorePacket), publishes, then sends PUBREC; the disk store's publish
 * resolves before its fdatasync, so the PUBREC could precede the queue entries on disk, and a device
 * that had the PUBREC sends only PUBREL after a crash, which deletes the stored packet and publishes
 * nothing. And with aedes' order a crash after the incoming packet but before the queue entries were
 * on disk left a packet that made the device's resend look like a duplicate: PUBREC, never published.
 * Here a QoS 2 PUBLISH is published first; once durable, the incoming packet is stored (what tells a
 * resend from a new message) and only then PUBREC goes out, in the same per-connection order as the
 * PUBACKs. A crash before it: the device resends, the broker publishes it again (at least once).
 * A resend whose packet is stored, or whose first copy is still on its way here, is acknowledged
 * without a second publish. aedes' bound on QoS 2 messages awaiting PUBREL (maxInflightInbound,
 * lib/handlers/publish.js) is kept; PUBREL is still aedes'.
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
  /** aedes' QoS 2 messages awaiting PUBREL (by packet id), bounded by broker.maxInflightInbound. */
  _inboundInflight?: Set<number>;
  broker: {
    queueLimit: number;
    maxInflightInbound?: number;
    authorizePublish(client: unknown, packet: PublishPacket, done: (err?: Error | null) => void): void;
    publish(packet: PublishPacket, client: unknown, done: (err?: Error | null) => void): void;
    persistence: {
      /** DurableMemoryPersistence's: resolves once everything queued so far is on disk. */
      whenDurable?: () => Promise<void>;
      incomingGetPacket(client: unknown, packet: PublishPacket): Promise<unknown>;
      incomingStorePacket(client: unknown, packet: PublishPacket): Promise<void>;
    };
  };
}

function isAckedPublish(p: unknown): p is PublishPacket {
  if (typeof p !== 'object' || p === null || (p as { cmd?: unknown }).cmd !== 'publish') return false;
  const qos = (p as { qos?: unknown }).qos;
  return qos === 1 || qos === 2;
}

/**
 * A PUBACK [MQTT-3.4] as one 4-byte buffer: fixed header 0x40, remaining length 2, packet id. What
 * mqtt-packet's writeToStream produces, but in one stream write instead of three (header, length,
 * id) plus its own cork and nextTick uncork: the PUBACK is written once per device message.
 */
export function pubackBytes(messageId: number, header = 0x40): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = header;
  b[1] = 0x02;
  b[2] = messageId >>> 8;
  b[3] = messageId & 0xff;
  return b;
}

/** PUBREC [MQTT-3.5]: the same bytes as a PUBACK but the packet type (0x50). */
const PUBREC_HEADER = 0x50;

/** aedes' write(): PUBACK (PUBREC for QoS 2) on the connection, `done` once written (or once drained). */
function writePuback(client: ClientInternals, messageId: number | undefined, qos: number, done: (err?: Error | null) => void): void {
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
        ? client.conn.write(pubackBytes(messageId, qos === 2 ? PUBREC_HEADER : 0x40))
        : mqttPacket.writeToStream({ cmd: qos === 2 ? 'pubrec' : 'puback', messageId: messageId ?? 0 }, client.conn);
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
  /** QoS 2 messages of this connection published and not yet PUBRECed, by packet id: a resend waits for the first. */
  readonly qos2: Map<number, Promise<void>>;
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

/** What a publish fills its place in the PUBACK order with (see publishThenAck). */
interface Published {
  /** The store's promise that the message is on disk (the disk store; undefined: it already is). */
  readonly durable: Promise<void> | undefined;
  /** QoS 2: stores the incoming packet once durable (before PUBREC). Not `then`: the box would be a thenable. */
  readonly store?: () => Promise<void>;
}

/** aedes' handlePublish for QoS 1 and 2, with PUBACK / PUBREC moved after the publish and its store. */
function publishThenAck(client: ClientInternals, packet: PublishPacket, done: (err?: Error | null) => void): void {
  const topic = packet.topic;
  // aedes' checks (lib/handlers/publish.js); the topic depth is checked by broker.publish.
  if (topic.length === 0) return done(new Error('empty topic not allowed in PUBLISH'));
  if (topic.includes('#')) return done(new Error('# is not allowed in PUBLISH'));
  if (topic.includes('+')) return done(new Error('+ is not allowed in PUBLISH'));
  let queue = ackQueues.get(client);
  if (queue === undefined) ackQueues.set(client, (queue = { tail: Promise.resolve(), waiting: 0, held: [], qos2: new Map() }));
  const q = queue;
  q.waiting++;
  // Filled once published: the store's promise, boxed (a promise given to resolve() would be
  // adopted, and its rejection thrown past the catch below), or null when the publish failed (no
  // PUBACK; the connection is closed on the error).
  let fill!: (published: Published | null) => void;
  const published = new Promise<Published | null>((resolve) => (fill = resolve));
  // One PUBACK fewer waiting: the next held read goes on.
  const written = (): void => {
    q.waiting--;
    q.held.shift()?.();
  };
  const acked = (q.tail = q.tail
    .then(async () => {
      const box = await published;
      if (box === null) return written();
      try {
        await box.durable;
        await box.store?.();
      } catch (err) {
        // The store could not keep it: no PUBACK, the connection is closed (the device sends it again).
        written();
        if (client.connecting || client.connected) client._nextBatch(err as Error);
        return;
      }
      // Counted as waiting until written out (drained): a device that reads no PUBACKs is not read
      // on without bound either.
      writePuback(client, packet.messageId, packet.qos, (err) => {
        written();
        // A connection gone meanwhile is closed already; other write errors close it.
        if (err && (client.connecting || client.connected)) client._nextBatch(err);
      });
    })
    // Nothing above throws; a chain that rejected would take no more PUBACKs of this connection.
    .catch(() => undefined));
  const readOn = (): void => {
    // Read on while few PUBACKs wait; past the bound, once one is written.
    if (q.waiting <= MAX_WAITING_PUBACKS) done();
    else q.held.push(() => done());
  };
  const persistence = client.broker.persistence;
  const publish = (store?: () => Promise<void>): void => {
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
        fill({ durable: persistence.whenDurable?.(), ...(store !== undefined ? { store } : {}) });
        readOn();
      });
    });
  };
  if (client._keepaliveInterval > 0) client._keepaliveTimer?.refresh();
  if (packet.qos !== 2) return publish();

  // QoS 2 [MQTT-4.3.3]: a resend of a message this connection is still publishing waits for it.
  const id = packet.messageId as number;
  const first = q.qos2.get(id);
  if (first !== undefined) {
    fill({ durable: first });
    return readOn();
  }
  q.qos2.set(id, acked);
  void acked.then(() => {
    if (q.qos2.get(id) === acked) q.qos2.delete(id);
  });
  persistence.incomingGetPacket(client, packet).then(
    // Stored: published before (its queue entries were durable before it was stored). Acknowledge only.
    () => {
      fill({ durable: undefined });
      readOn();
    },
    () => {
      // aedes' bound on QoS 2 messages awaiting PUBREL (lib/handlers/publish.js), the slot taken now.
      const inflight = client._inboundInflight;
      const limit = client.broker.maxInflightInbound ?? 0;
      if (inflight !== undefined && limit > 0 && !inflight.has(id) && inflight.size >= limit) {
        fill(null);
        return done(new Error(`maxInflightInbound exceeded: ${limit} inbound QoS 2 messages already awaiting PUBREL`));
      }
      inflight?.add(id);
      publish(() =>
        persistence.incomingStorePacket(client, packet).catch((err: unknown) => {
          inflight?.delete(id);
          throw err;
        }),
      );
    },
  );
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

  // QoS 1 and 2 publishes pipelined before CONNACK: aedes would queue them and acknowledge early on 'connected'.
  let early: PublishPacket[] | null = [];
  c.once('connected', () => {
    const queued = early ?? [];
    early = null;
    for (const p of queued) publishThenAck(c, p, c._nextBatch);
  });

  parser.on('packet', function onPacket(this: unknown, packet: unknown) {
    if (!isAckedPublish(packet)) {
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
