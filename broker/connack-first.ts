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
 * So a persistent session's deliveries wait until its CONNACK is written (aedes' `connackSent`), then
 * go out in order; a connection that ends first drops them (they stay in the session's queue: aedes
 * queued them before delivering, and they are resent on the next connection).
 */

type Deliver = (packet: unknown, cb: () => void) => void;

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
  let waiting: Array<[Deliver, unknown, () => void]> | undefined = [];
  const open = (send: boolean): void => {
    const list = waiting;
    if (list === undefined) return;
    waiting = undefined;
    held.delete(client);
    for (const [fn, packet, cb] of list) {
      if (send) fn(packet, cb);
      else cb();
    }
  };
  // Permanent wrappers: a subscription keeps the function it was given. Pass-through once open.
  client.deliverQoS = (packet, cb) => (waiting === undefined ? deliverQoS(packet, cb) : void waiting.push([deliverQoS, packet, cb]));
  client.deliver0 = (packet, cb) => (waiting === undefined ? deliver0(packet, cb) : void waiting.push([deliver0, packet, cb]));
  held.set(client, () => open(true));
  client.conn?.once('close', () => open(false));
  return true;
}

/** Sends what `client` held back, in order; wire to aedes' `connackSent` event. */
export function releaseAfterConnack(client: unknown): void {
  if (typeof client === 'object' && client !== null) held.get(client)?.();
}
