/**
 * The CONNACK first, for a persistent session too [MQTT-3.2.0-1]: "The first packet sent from the
 * Server to the Client MUST be a CONNACK Packet".
 *
 * aedes 1.2 restores a persistent session's subscriptions before it writes the CONNACK
 * (lib/handlers/connect.js: fetchSubs, restoreSubs, storeWill, registerClient, cleanIncoming,
 * doConnack), so a message published in between is written to the socket ahead of the CONNACK. With
 * the Redis store those steps are several round trips, and a service that reconnects while devices
 * publish gets a PUBLISH first. mqtt.js (Node-RED and most Node integrations) then never connects:
 * it holds the PUBACK of that message until it is connected and reads no further packet until the
 * PUBACK is out, the CONNACK included, so it waits for its connect timeout and tries again, into the
 * same window (session 14: 1 reconnect in 1–32 hung, in test/broker/redis-persistence.test.ts).
 * carewatch's own services read past it (common/mqtt-session.ts); a bureau's integration may not.
 *
 * So until its CONNACK is written (aedes' `connackSent`) a persistent session gets no live delivery:
 * - a QoS ≥ 1 message is dropped here: aedes queued it for the session before it emitted it
 *   (publishFuncsQoS: enqueueOffline, then emitPacket; on another node the RPUSH precedes the Redis
 *   PUBLISH that brought it here), and it reads the session's queue right after the CONNACK
 *   (emptyQueue), so the message goes out from there, once;
 * - anything else (QoS 0, a retained copy: never queued) waits and goes out after the CONNACK, in
 *   order, at most HELD_BOUND of them (more is a connect stalled in a flood: QoS 0 may be lost).
 * Either way the emitter's callback is called at once: holding it would hold one of the node's
 * mqConcurrency delivery slots per message for as long as the CONNECT takes (a stalled store would
 * stop the node's deliveries), and would hold devices' PUBACKs (ack-after-publish.ts), which wait for
 * the live deliveries. A connection that ends before its CONNACK drops what waited.
 */

/** Non-queued deliveries kept for a connecting persistent session (QoS 0 and retained copies). */
export const HELD_BOUND = 1_000;

type Deliver = (packet: unknown, cb: () => void) => void;

const noop = (): void => undefined;

/** Delivered from the session's queue after the CONNACK (see the header): QoS ≥ 1, not a retained copy. */
function queued(packet: unknown): boolean {
  const p = packet as { qos?: unknown; retain?: unknown } | null;
  return typeof p === 'object' && p !== null && typeof p.qos === 'number' && p.qos > 0 && p.retain !== true;
}

interface DeliveringClient {
  deliverQoS: Deliver;
  deliver0: Deliver;
  conn?: { once(event: 'close', fn: () => void): unknown };
}

const held = new WeakMap<object, () => void>();

function isDeliveringClient(c: unknown): c is DeliveringClient {
  const o = c as Partial<DeliveringClient> | null;
  return typeof o === 'object' && o !== null && typeof o.deliverQoS === 'function' && typeof o.deliver0 === 'function';
}

/**
 * Holds `client`'s deliveries until `releaseAfterConnack(client)`. Call from aedes' preConnect (before
 * the subscriptions are restored: aedes' subscription handler reads `client.deliverQoS` when it
 * subscribes). False when the client is not shaped as aedes 1.2's (nothing is held).
 */
export function holdUntilConnack(client: unknown): boolean {
  if (!isDeliveringClient(client)) return false;
  const deliverQoS = client.deliverQoS;
  const deliver0 = client.deliver0;
  let waiting: Array<[Deliver, unknown]> | undefined = [];
  const open = (send: boolean): void => {
    const list = waiting;
    if (list === undefined) return;
    waiting = undefined;
    held.delete(client);
    if (send) for (const [fn, packet] of list) fn(packet, noop);
  };
  const hold = (fn: Deliver, packet: unknown, cb: () => void): void => {
    if (waiting !== undefined && waiting.length < HELD_BOUND && !(fn === deliverQoS && queued(packet))) waiting.push([fn, packet]);
    cb();
  };
  // Permanent wrappers: a subscription keeps the function it was given. Pass-through once open.
  client.deliverQoS = (packet, cb) => (waiting === undefined ? deliverQoS(packet, cb) : hold(deliverQoS, packet, cb));
  client.deliver0 = (packet, cb) => (waiting === undefined ? deliver0(packet, cb) : hold(deliver0, packet, cb));
  held.set(client, () => open(true));
  client.conn?.once('close', () => open(false));
  return true;
}

/** Sends what `client` held back, in order, and opens its deliveries; wire to aedes' `connackSent` event. */
export function releaseAfterConnack(client: unknown): void {
  if (typeof client === 'object' && client !== null) held.get(client)?.();
}
