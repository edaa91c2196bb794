/**
 * A publish waits for no subscriber's socket.
 *
 * aedes 1.2 completes a publish once every subscriber's copy is written *and drained*: its delivery
 * functions (lib/client.js deliver0/deliverQoS → lib/write.js) call the fan-out's callback only when
 * the subscriber's socket buffer has emptied, or after `drainTimeout` when aedes drops it. Every
 * publisher on a slow subscriber's topics waited as long: a QoS 1 PUBACK follows the publish
 * (ack-after-publish.ts), aedes reads a connection's next packet only after a QoS 0 publish is done,
 * and mqemitter's `concurrency` slots stay taken meanwhile. One slow svc-ingest (it subscribes to
 * every device) held every device's PUBACK, a call point's included, up to the 30 s drain timeout,
 * and a detector's alarm sent after its QoS 0 telemetry reached svc-alerts up to 11.8 s late
 * (a helper's measurements, session 22). No drain timeout is right for both: 5 s dropped a steady
 * 300 KB/s reader, 30 s held the site.
 *
 * So a delivery of the live fan-out releases the publish as soon as its write is issued (a
 * setImmediate after aedes' own deferred write: a healthy subscriber's write has happened by then),
 * and what a subscriber has not yet taken is bounded per connection instead: past `maxBufferedBytes`
 * not yet drained, the subscriber is dropped (`onOverflow`). A persistent QoS 1 session loses
 * nothing by it: aedes queued the message for the session before it emitted it (publishFuncsQoS:
 * enqueueOffline, then emitPacket) and sends the queue again at its next connect. A frozen reader
 * with a trickle of messages is still dropped by aedes' drain timeout, which now holds only it.
 *
 * Only the live fan-out is released: the functions registered through `broker.subscribe` (aedes'
 * addSubs, lib/handlers/subscribe.js, captures `client.deliverQoS`/`deliver0` in them). The same
 * `client.deliverQoS` also sends a SUBSCRIBE's retained messages (subscribe.js, a stream paced by
 * that callback), and the session's queue at connect is paced by writeQoS's callback (connect.js
 * emptyQueue): releasing those would write a whole queue or retained set into the socket at once and
 * trip the bound in a loop. A fan-out call is told from those by a depth counter set while a
 * registered listener runs (the listener calls the delivery function synchronously).
 */

/** Bytes a subscriber may have in flight (issued, not yet drained) before it is dropped. */
export const DEFAULT_SUBSCRIBER_BUFFER_BYTES = 16 * 1024 * 1024;

/** The message of the error a dropped subscriber's connection is closed with (counted as slow). */
export const SUBSCRIBER_BUFFER_FULL = 'subscriber buffer full';

type Callback = () => void;
type Deliver = (packet: unknown, cb: Callback) => void;
type Listener = (this: unknown, packet: unknown, cb: Callback) => void;

interface SubscribingBroker {
  subscribe(topic: string, fn: Listener, done?: (err?: Error | null) => void): void;
  unsubscribe(topic: string, fn: Listener, done?: (err?: Error | null) => void): void;
}

interface DeliveringClient {
  deliverQoS: Deliver;
  deliver0: Deliver;
  conn: { destroyed?: boolean; resetAndDestroy?: () => unknown };
  emit(event: 'error', err: Error): boolean;
}

export interface FanoutReleaseOptions {
  readonly maxBufferedBytes: number;
  /** Called once per dropped subscriber, before its connection is closed with SUBSCRIBER_BUFFER_FULL. */
  readonly onOverflow?: (client: unknown, bufferedBytes: number) => void;
}

export interface FanoutRelease {
  /** Releases `client`'s live deliveries; call from aedes' preConnect (before any subscription). False if it is not shaped as aedes 1.2's. */
  watch(client: unknown): boolean;
  /** Bytes issued to subscribers' sockets by the fan-out and not yet drained, over every connection. */
  buffered(): number;
}

function isSubscribingBroker(b: unknown): b is SubscribingBroker {
  const o = b as Partial<SubscribingBroker> | null;
  return typeof o === 'object' && o !== null && typeof o.subscribe === 'function' && typeof o.unsubscribe === 'function';
}

function isDeliveringClient(c: unknown): c is DeliveringClient {
  const o = c as Partial<DeliveringClient> | null;
  return typeof o === 'object' && o !== null && typeof o.deliverQoS === 'function' && typeof o.deliver0 === 'function' && typeof o.conn === 'object' && o.conn !== null && typeof o.emit === 'function';
}

/** What a copy costs in the subscriber's buffer: payload and topic, and a PUBLISH header's worth. */
export function deliverySize(packet: unknown): number {
  const p = packet as { payload?: unknown; topic?: unknown } | null;
  const payload = p?.payload;
  const bytes = Buffer.isBuffer(payload) ? payload.length : typeof payload === 'string' ? Buffer.byteLength(payload) : 0;
  return bytes + (typeof p?.topic === 'string' ? p.topic.length : 0) + 8;
}

export function releaseFanout(broker: unknown, opts: FanoutReleaseOptions): FanoutRelease {
  if (!isSubscribingBroker(broker)) throw new Error('aedes internals changed: broker.subscribe/unsubscribe not found');
  // > 0 while a listener registered through broker.subscribe runs (a fan-out delivery).
  let depth = 0;
  const wrapped = new WeakMap<Listener, Listener>();
  const asFanout = (fn: Listener): Listener => {
    let w = wrapped.get(fn);
    if (w === undefined) {
      w = function fanoutDelivery(this: unknown, packet, cb) {
        depth++;
        try {
          fn.call(this, packet, cb);
        } finally {
          depth--;
        }
      };
      wrapped.set(fn, w);
    }
    return w;
  };
  const subscribe = broker.subscribe.bind(broker);
  const unsubscribe = broker.unsubscribe.bind(broker);
  broker.subscribe = (topic, fn, done) => subscribe(topic, typeof fn === 'function' ? asFanout(fn) : fn, done);
  // aedes unsubscribes with the function it subscribed (the Subscription's func): the wrapper is the one registered.
  broker.unsubscribe = (topic, fn, done) => unsubscribe(topic, (typeof fn === 'function' ? wrapped.get(fn) : undefined) ?? fn, done);

  let total = 0;

  const watch = (client: unknown): boolean => {
    if (!isDeliveringClient(client)) return false;
    const deliverQoS = client.deliverQoS;
    const deliver0 = client.deliver0;
    const state = { bytes: 0 };
    let dropped = false;
    const release = (orig: Deliver, packet: unknown, cb: Callback): void => {
      // The delivery function itself may deliver again (deliverQoS of a QoS 0 copy calls deliver0):
      // that inner call is part of this one, not another fan-out delivery.
      const outer = depth;
      depth = 0;
      try {
        if (dropped || client.conn.destroyed === true) {
          // Nothing more is written to it; a persistent session's QoS 1 copy is in its queue.
          setImmediate(cb);
          return;
        }
        const size = deliverySize(packet);
        if (state.bytes + size > opts.maxBufferedBytes) {
          dropped = true;
          opts.onOverflow?.(client, state.bytes + size);
          // Out of the emitter's turn (closing unsubscribes the client from it). A reset frees the
          // kernel's send buffer too (a FIN stays queued behind the unsent bytes, FIN-WAIT-1 for
          // minutes); then aedes closes the client as for any connection error. (TCP only: Node
          // refuses a reset of a TLS socket; WebSocket streams have none.)
          setImmediate(() => {
            try {
              client.conn.resetAndDestroy?.();
            } catch {
              // not a plain TCP socket: aedes destroys it on the error
            }
            client.emit('error', new Error(SUBSCRIBER_BUFFER_FULL));
            cb();
          });
          return;
        }
        state.bytes += size;
        total += size;
        let done = false;
        // aedes calls it once the copy is written and drained, or failed (a closed connection fails
        // its waiting writes), so what a dropped subscriber held leaves the count too.
        orig(packet, () => {
          if (done) return;
          done = true;
          state.bytes -= size;
          total -= size;
        });
        // After aedes' own deferred write (also a setImmediate): released once the write is issued.
        setImmediate(cb);
      } finally {
        depth = outer;
      }
    };
    // aedes' drain timeout destroys the socket (a FIN queued behind what the reader never took:
    // FIN-WAIT-1 for minutes, its send buffer held); reset first, as for the bound above.
    const c = client as unknown as { _handleDrainTimeout?: () => void };
    const onDrainTimeout = c._handleDrainTimeout;
    if (typeof onDrainTimeout === 'function') {
      c._handleDrainTimeout = function resetOnDrainTimeout(this: unknown) {
        try {
          client.conn.resetAndDestroy?.();
        } catch {
          // not a plain TCP socket: aedes destroys it
        }
        onDrainTimeout.call(this);
      };
    }
    client.deliverQoS = (packet, cb) => (depth > 0 ? release(deliverQoS, packet, cb) : deliverQoS(packet, cb));
    client.deliver0 = (packet, cb) => (depth > 0 ? release(deliver0, packet, cb) : deliver0(packet, cb));
    return true;
  };

  return {
    watch,
    buffered: () => total,
  };
}
