/**
 * A publish waits for no subscriber's socket longer than a short grace.
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
 * So a delivery of the live fan-out is paced by its subscriber's socket only for a short grace
 * time: once a subscriber's socket has been full (past its high-water mark, no 'drain') for
 * `graceMs`, the publishes waiting on it are released, and until its socket empties again each of its
 * copies releases its publish as soon as its write is issued (a setImmediate after aedes' own
 * deferred write: the copy is in the socket's buffer by then). What a released subscriber has not
 * yet taken is bounded per connection instead: past `maxBufferedBytes` in its socket's buffer and on
 * their way into it, the subscriber is dropped. A persistent QoS 1 session loses nothing by it: aedes
 * queued the message for the session before it emitted it (publishFuncsQoS: enqueueOffline, then
 * emitPacket) and sends the queue again at its next connect (all but the readings its queue had no
 * room for: limits.sessionQueueMaxBytes, session-queue-bound.ts). aedes' drain timeout, which now holds
 * only the subscriber, drops one that took nothing for that long (not one whose buffer never quite
 * empties while it keeps pace: the review's case, session 23); both drops are TCP resets.
 *
 * Why pace at all, for the grace: a subscriber that keeps up on average is often a moment behind
 * (a GC pause, a burst). Paced for those moments, as aedes always did, the publishers wait and the
 * copies stay in the socket's own buffer; released, the broker goes on reading publishers and piles
 * the copies into Node's buffered writes, which is only worth it when an alarm would otherwise wait.
 * So only a subscriber that stays behind costs the others up to `graceMs`, once, not the drain
 * timeout. CPU: session 23 measured releasing at +22 % per message, but from one profiled run each;
 * plain runs (session 24, 15,000 msg/s after a 30 s warm-up, 5–14 each) put aedes' pacing, release,
 * and this within the machine's run-to-run spread (±20 %; bench/README.md "Fan-out release").
 *
 * Only the live fan-out is released: the functions registered through `broker.subscribe` (aedes'
 * addSubs, lib/handlers/subscribe.js, captures `client.deliverQoS`/`deliver0` in them). The same
 * `client.deliverQoS` also sends a SUBSCRIBE's retained messages (subscribe.js, a stream paced by
 * that callback), and the session's queue at connect is paced by writeQoS's callback (connect.js
 * emptyQueue): releasing those would write a whole queue or retained set into the socket at once and
 * trip the bound in a loop. A fan-out call is told from those by a depth counter set while a
 * registered listener runs (the listener calls the delivery function synchronously).
 */

/** Bytes a subscriber may have not yet taken (in its socket's buffer, or on their way) before it is dropped. */
export const DEFAULT_SUBSCRIBER_BUFFER_BYTES = 16 * 1024 * 1024;

/**
 * How long a subscriber's full socket may hold the publishes to it before they are released. Far
 * inside the 10 s from a detector's activation to the alarm signal (NFPA 72 §10.11.1), and longer than
 * the moments a reader that keeps up falls behind (a GC pause, a burst).
 */
export const DEFAULT_SUBSCRIBER_GRACE_MS = 250;

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
  conn: {
    destroyed?: boolean;
    writableLength?: number;
    bytesWritten?: number;
    _handle?: { writeQueueSize?: number } | null;
    resetAndDestroy?: () => unknown;
    once?: (event: 'close', fn: () => void) => unknown;
    on?: (event: 'drain', fn: () => void) => unknown;
  };
  emit(event: 'error', err: Error): boolean;
}

export interface FanoutReleaseOptions {
  readonly maxBufferedBytes: number;
  /** How long a subscriber's full socket holds the publishes to it before they are released (DEFAULT_SUBSCRIBER_GRACE_MS). */
  readonly graceMs: number;
  /** aedes' drainTimeout: a subscriber that took nothing for this long is dropped (absent: aedes' own rule). */
  readonly drainTimeoutMs?: number;
}

export interface FanoutRelease {
  /** Releases `client`'s live deliveries; call from aedes' preConnect (before any subscription). False if it is not shaped as aedes 1.2's. */
  watch(client: unknown): boolean;
  /** Bytes subscribers have not taken yet (in their sockets' buffers or on their way), over every connection. */
  buffered(): number;
  /** Times a subscriber's socket stayed full past the grace and its publishes were released, since start. */
  graceExpiries(): number;
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

const noop = (): void => undefined;

/** Copies handed to aedes' delivery and not yet in their socket's buffer (bytes, per client). */
const issued = new WeakMap<object, number>();

/** What a subscriber has not taken yet: its socket's buffer, and the copies on their way into it. */
function behindOf(client: DeliveringClient): number {
  const inBuffer = client.conn.writableLength;
  return (issued.get(client) ?? 0) + (typeof inBuffer === 'number' ? inBuffer : 0);
}

/**
 * Where a net.Socket's output stands: what its stream has finished handing to the system (written
 * minus still buffered) and what of that the system has not yet taken (libuv's write queue). Node
 * hands a backlog over as one vectored write, finished only once all of it is taken: meanwhile the
 * queue shrinking is the progress. Undefined for another stream.
 */
function progressOf(conn: DeliveringClient['conn']): { readonly done: number; readonly queued: number } | undefined {
  const written = conn.bytesWritten;
  const inBuffer = conn.writableLength;
  if (typeof written !== 'number' || typeof inBuffer !== 'number') return undefined;
  const queued = conn._handle?.writeQueueSize;
  return { done: written - inBuffer, queued: typeof queued === 'number' ? queued : 0 };
}

/** The reader took something between the two. */
function progressed(from: ReturnType<typeof progressOf>, to: ReturnType<typeof progressOf>): boolean {
  return from !== undefined && to !== undefined && (to.done > from.done || to.queued < from.queued);
}

/** A TCP reset frees the kernel's send buffer at once; Node refuses it for a TLS socket, WebSocket streams have none. */
function resetSocket(client: DeliveringClient): void {
  try {
    client.conn.resetAndDestroy?.();
  } catch {
    // not a plain TCP socket: aedes destroys it
  }
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

  const watched = new Set<DeliveringClient>();
  let graceExpiries = 0;

  const watch = (client: unknown): boolean => {
    if (!isDeliveringClient(client)) return false;
    const deliverQoS = client.deliverQoS;
    const deliver0 = client.deliver0;
    const conn = client.conn;
    // aedes 1.2's drain handling, wrapped below; without it nothing tells a full socket, and every
    // copy is released at once (session 23's first version).
    const c = client as unknown as { _drainTimer?: NodeJS.Timeout | null; waitForDrain?: (cb: unknown) => void; _handleDrainTimeout?: () => void };
    const waitForDrain = c.waitForDrain;
    const onDrainTimeout = c._handleDrainTimeout;
    const canPace = typeof waitForDrain === 'function' && typeof onDrainTimeout === 'function' && typeof conn.on === 'function';
    let dropped = false;
    // True from the moment the socket has been full for graceMs until it empties ('drain').
    let released = !canPace;
    let grace: NodeJS.Timeout | undefined;
    // Publishes held by this subscriber's socket, oldest first (held[head..]). aedes calls back one
    // completion per paced copy; they come nearly in order (a persistent session's QoS 1 copy waits
    // for its store, so a QoS 0 copy after it may be written first), and each completes the oldest
    // held publish: every publish is completed exactly once, at the latest when as many copies as
    // were delivered up to its own have been written (one may complete a moment before its own copy
    // is written: its message is in the session's store already, or, for a clean session, is as
    // good as released). No closure or Set entry per copy: with them (this change's first version)
    // the broker spent 4.3–4.6 % of its time in GC at 15,000 QoS 1 msg/s, aedes alone 2.0–3.7 %, this
    // 2.0–3.5 % (session 24, 6–8 runs each; bench/README.md "Fan-out release").
    let held: Callback[] = [];
    let head = 0;
    // Completions still to come for publishes the grace has already completed.
    let owed = 0;
    const completeOne = (): void => {
      if (owed > 0) {
        owed--;
        return;
      }
      const cb = held[head];
      if (cb === undefined) return;
      held[head++] = noop;
      if (head === held.length) {
        held.length = 0;
        head = 0;
      }
      cb();
    };
    const releaseHeld = (): void => {
      grace = undefined;
      if (conn.destroyed === true) return;
      released = true;
      graceExpiries++;
      const waiting = held;
      const from = head;
      held = [];
      head = 0;
      owed += waiting.length - from;
      for (let i = from; i < waiting.length; i++) (waiting[i] ?? noop)();
    };
    watched.add(client);
    conn.once?.('close', () => {
      watched.delete(client);
      clearTimeout(grace);
    });
    if (canPace) {
      conn.on?.('drain', () => {
        clearTimeout(grace);
        grace = undefined;
        released = false;
      });
    }
    const deliver = (orig: Deliver, packet: unknown, cb: Callback): void => {
      // The delivery function itself may deliver again (deliverQoS of a QoS 0 copy calls deliver0):
      // that inner call is part of this one, not another fan-out delivery.
      const outer = depth;
      depth = 0;
      try {
        if (dropped || conn.destroyed === true) {
          // Nothing more is written to it; a persistent session's QoS 1 copy is in its queue.
          setImmediate(cb);
          return;
        }
        const size = deliverySize(packet);
        if (behindOf(client) + size > opts.maxBufferedBytes) {
          dropped = true;
          // Out of the emitter's turn (closing unsubscribes the client from it). A reset frees the
          // kernel's send buffer too (a FIN stays queued behind the unsent bytes, FIN-WAIT-1 for
          // minutes); then aedes closes the client as for any connection error, which calls back
          // the publishes it held. (TCP only: Node refuses a reset of a TLS socket; WebSocket
          // streams have none.)
          setImmediate(() => {
            resetSocket(client);
            client.emit('error', new Error(SUBSCRIBER_BUFFER_FULL));
            cb();
          });
          return;
        }
        if (!released) {
          // Paced, as aedes does: the publish completes when the copy is written and drained.
          held.push(cb);
          orig(packet, completeOne);
          return;
        }
        issued.set(client, (issued.get(client) ?? 0) + size);
        orig(packet, noop);
        // After aedes' own deferred write (a setImmediate, and a store update before it for a
        // persistent session's copy, resolved within that turn by the memory and disk stores): the
        // copy is in the socket's buffer now, counted by its writableLength, and the publish is
        // released.
        setImmediate(() => {
          issued.set(client, (issued.get(client) ?? 0) - size);
          cb();
        });
      } finally {
        depth = outer;
      }
    };
    // aedes' drain timeout drops a subscriber whose socket has not emptied for drainTimeout. Once
    // its publishes are released, a reader that keeps pace a few megabytes behind may never empty it:
    // it is dropped only if it took nothing meanwhile (`progressOf` a net.Socket; a stream without
    // them keeps aedes' rule), and reset, not closed (a FIN queued behind what it never took:
    // FIN-WAIT-1 for minutes).
    if (canPace) {
      let armedAt: ReturnType<typeof progressOf>;
      c.waitForDrain = function waitForDrainWatched(this: typeof c, cb: unknown) {
        if (this._drainTimer == null) armedAt = progressOf(conn);
        // The socket is full: its publishes are released if it stays full for the grace.
        if (!released && grace === undefined) {
          grace = setTimeout(releaseHeld, opts.graceMs);
          grace.unref();
        }
        waitForDrain.call(this, cb);
      };
      c._handleDrainTimeout = function drainTimeoutWatched(this: typeof c) {
        const now = progressOf(conn);
        if (progressed(armedAt, now) && opts.drainTimeoutMs !== undefined && conn.destroyed !== true) {
          armedAt = now;
          const timer = setTimeout(() => this._handleDrainTimeout?.(), opts.drainTimeoutMs);
          timer.unref();
          this._drainTimer = timer;
          return;
        }
        resetSocket(client);
        onDrainTimeout.call(this);
      };
    }
    client.deliverQoS = (packet, cb) => (depth > 0 ? deliver(deliverQoS, packet, cb) : deliverQoS(packet, cb));
    client.deliver0 = (packet, cb) => (depth > 0 ? deliver(deliver0, packet, cb) : deliver0(packet, cb));
    return true;
  };

  return {
    watch,
    buffered: () => {
      let sum = 0;
      for (const client of watched) sum += behindOf(client);
      return sum;
    },
    graceExpiries: () => graceExpiries,
  };
}
