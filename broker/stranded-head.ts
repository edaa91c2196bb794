/**
 * A persistent session's queue in Redis whose head stays while the entries behind it are
 * acknowledged: the head was never delivered on the session's connection, and will not be until the
 * session reconnects.
 *
 * How a head strands. A node queues a QoS 1 message for the services' sessions (RPUSH onto
 * `outgoing:<client>`) before it PUBLISHes it to Redis for the node that holds them, and PUBACKs the
 * device after both (ack-after-publish.ts). A node SIGKILLed between the two leaves the entry queued
 * and never published: the service gets it only from its queue, at its next CONNECT. The device, not
 * PUBACKed, sends the message again through another node, so nothing is lost and the stranded entry
 * is a copy; but a service stays connected for days, and meanwhile every acknowledgement of a later
 * message marks its entry behind that head (redis-persistence.ts ACK_QUEUED), until the marks reach
 * ACKED_BOUND and each acknowledgement scans the queue (docs/scaling.md: in session 17's first
 * 100,000-device run such scans took ~400 s of Redis' one thread; what put 100,000 marks behind that
 * head was not logged: a stranded head, or a backlog acknowledged out of queue order).
 *
 * What is done: when a session's marks are past `marks` and its head has not changed for `afterMs`,
 * the store reports it; the node holding the session (broker.ts closeStrandedSession) closes the
 * session's connection, as pubsub-resync.ts does after a pub/sub loss, if the head's node (its
 * packet key names it) is no longer alive and the session has been connected for `afterMs` (a session
 * that just reconnected is being sent its queue from the head). It reconnects and is sent its queue
 * from the head, the stranded entry with it. Closed once per head: a head still there after such a
 * close is reported again, not closed for again (an entry a reconnect could not deliver would
 * otherwise cost a reconnect every `afterMs`).
 *
 * Pure: the caller gives the time and acts on the answer.
 */
export const STRANDED_HEAD_CODE = 'BROKER_CLUSTER_QUEUE_HEAD_STRANDED';

/**
 * Marks behind one head from which it is watched: far below ACKED_BOUND (100,000), so a stranded head
 * is found before the marks reach the bound. Not a proof of stranding by itself: a large backlog
 * acknowledged out of queue order had up to 23,000 marks behind a moving head (session 17 run 2),
 * which is why the time and the head's node being dead decide, not the count.
 */
export const STRANDED_MARKS = 10_000;
/** How long one head may stay with that many marks behind it: a reconnect's backlog moves its head within seconds. */
export const STRANDED_AFTER_MS = 30_000;

export type StrandedVerdict = 'watching' | 'stranded' | 'stranded-again';

/** Sessions watched at once at most: one entry per persistent session with marks past the threshold (the services'). */
const MAX_WATCHED = 1_024;

export class StrandedHeads {
  readonly #afterMs: number;
  readonly #watched = new Map<string, { head: string; since: number }>();
  /** The head each session was last closed for. */
  readonly #closedFor = new Map<string, string>();

  constructor(afterMs: number = STRANDED_AFTER_MS) {
    this.#afterMs = afterMs;
  }

  /**
   * An acknowledgement that left `clientId`'s queue with its marks past the threshold behind `head`
   * (call it only then). 'stranded': the head stayed `afterMs`, and the session was not closed for it
   * yet; 'stranded-again': it was (report only). Either is answered again only `afterMs` later.
   */
  observe(clientId: string, head: string, now: number): StrandedVerdict {
    const seen = this.#watched.get(clientId);
    if (seen === undefined || seen.head !== head) {
      if (seen === undefined && this.#watched.size >= MAX_WATCHED) this.#watched.clear();
      this.#watched.set(clientId, { head, since: now });
      return 'watching';
    }
    if (now - seen.since < this.#afterMs) return 'watching';
    seen.since = now;
    return this.#closedFor.get(clientId) === head ? 'stranded-again' : 'stranded';
  }

  /** The session's connection was closed for this head. */
  closed(clientId: string, head: string): void {
    if (!this.#closedFor.has(clientId) && this.#closedFor.size >= MAX_WATCHED) this.#closedFor.clear();
    this.#closedFor.set(clientId, head);
  }
}
