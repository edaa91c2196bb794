/**
 * A persistent session's queue in Redis whose head stays while the entries behind it are
 * acknowledged: the head was never delivered on the session's connection, and will not be until the
 * session reconnects.
 *
 * How a head strands. A node queues a QoS 1 message for the services' sessions (RPUSH onto
 * `outgoing:<client>`) before it PUBLISHes it to Redis for the node that holds them, and PUBACKs the
 * device after both (ack-after-publish.ts). A node SIGKILLed between the two leaves the entry queued
 * and never published: the service gets it only from its queue, at its next CONNECT. The device, not
 * PUBACKed, sends it again through another node, so nothing is lost; but a service stays connected
 * for days, and meanwhile every acknowledgement of a later message marks its entry behind that head
 * (redis-persistence.ts ACK_QUEUED). At the province's rate the marks reach ACKED_BOUND in a minute;
 * before session 17 each acknowledgement then scanned the queue from its head in Redis' one thread
 * (42 ms each in the 100,000-device run after a node was killed: 195 s in which no node's command ran).
 *
 * What is done: when a session's marks are past `marks` and its head has not changed for `afterMs`,
 * the node holding the session closes its connection, as pubsub-resync.ts does after a pub/sub loss,
 * and the session reconnects and is sent its queue from the head, the stranded entries with it.
 * A head that is still there after such a reconnect is not closed for again (an entry the reconnect
 * could not deliver would otherwise cost a reconnect every `afterMs`); it is reported once more.
 *
 * Pure: the caller gives the time and acts on the answer.
 */
export const STRANDED_HEAD_CODE = 'BROKER_CLUSTER_QUEUE_HEAD_STRANDED';

/**
 * Marks behind one head from which it is watched: far above the reordering the nodes' RPUSH-then-PUBLISH
 * causes in normal running (thousands of entries at most under load, redis-persistence.ts ACK_QUEUED),
 * far below ACKED_BOUND (100,000), so a stranded head is found before the marks reach the bound.
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
   * An acknowledgement that left `marks` entries marked behind `head` in `clientId`'s queue (call it
   * only at or past the marks threshold). 'stranded': close the session now (once per head);
   * 'stranded-again': the same head after such a close (report, do not close).
   */
  observe(clientId: string, head: string, now: number): StrandedVerdict {
    const seen = this.#watched.get(clientId);
    if (seen === undefined || seen.head !== head) {
      if (seen === undefined && this.#watched.size >= MAX_WATCHED) this.#watched.clear();
      this.#watched.set(clientId, { head, since: now });
      return 'watching';
    }
    if (now - seen.since < this.#afterMs) return 'watching';
    // Watched anew from now: a head that stays is reported again afterMs later, not at every acknowledgement.
    seen.since = now;
    if (this.#closedFor.get(clientId) === head) return 'stranded-again';
    if (this.#closedFor.size >= MAX_WATCHED) this.#closedFor.clear();
    this.#closedFor.set(clientId, head);
    return 'stranded';
  }
}
