import type { Aedes } from 'aedes';

/**
 * An O(1) FIFO with the push/shift/length that mqemitter uses on its waiting arrays. mqemitter 7
 * keeps the messages beyond its `concurrency` in two arrays and takes the next with shift(), which
 * V8 does in O(1) only while the array is a regular heap object; past ~16k entries every shift
 * copies the whole array. Under a burst the broker then spent its time shifting (issue 6 profile:
 * 45–65 % of the broker's CPU in mqemitter's `released` at 16,000 msg/s) and never caught up.
 */
class Fifo<T> {
  private head: T[] = [];
  private headAt = 0;
  private tail: T[] = [];

  get length(): number {
    return this.head.length - this.headAt + this.tail.length;
  }

  push(v: T): number {
    this.tail.push(v);
    return this.length;
  }

  shift(): T | undefined {
    if (this.headAt >= this.head.length) {
      if (this.tail.length === 0) return undefined;
      // Swap: the tail becomes the head and is read by index, never shifted.
      this.head = this.tail;
      this.headAt = 0;
      this.tail = [];
    }
    const v = this.head[this.headAt] as T;
    this.head[this.headAt++] = undefined as T;
    return v;
  }
}

export { Fifo };

/** `alarm`: events and statuses (fire alarms, call points, falls, offline); `routine`: telemetry. */
export type Lane = 'alarm' | 'routine';

/**
 * mqemitter's two waiting arrays (messages, callbacks) as one two-lane priority queue: a waiting
 * alarm-lane message is taken before any waiting telemetry. NFPA 72 ch. 10 "Signal Priority": fire
 * alarm signals take precedence over all other signals; here they must not wait behind a backlog of
 * routine readings when a burst fills aedes' in-flight window (issue 6: at a load step, 2,000 in
 * flight and ~3,800 waiting held a call point's alarm ~300 ms).
 *
 * Order: FIFO within a lane, and a topic always maps to one lane, so each topic stays ordered
 * [MQTT-4.6.0-6]. Starvation: after `burst` alarm-lane messages in a row while telemetry waits, one
 * telemetry message goes, so a device flooding events cannot stop the readings.
 *
 * mqemitter pushes a message then its callback, and shifts a message then its callback, always in
 * those pairs (mqemitter.js emit/released); the callback side follows the lane its message took.
 */
export class PriorityPair<M, C> {
  private readonly msgs: Record<Lane, Fifo<M>> = { alarm: new Fifo(), routine: new Fifo() };
  private readonly cbs: Record<Lane, Fifo<C>> = { alarm: new Fifo(), routine: new Fifo() };
  private pushed: Lane = 'routine';
  private shifted: Lane = 'routine';
  private alarmsInARow = 0;

  /** Stands in for mqemitter's `_messageQueue`. */
  readonly messages: { push(m: M): number; shift(): M | undefined; readonly length: number };
  /** Stands in for mqemitter's `_messageCallbacks`. */
  readonly callbacks: { push(cb: C): number; shift(): C | undefined };

  constructor(
    private readonly laneOf: (message: M) => Lane,
    private readonly burst = 64,
  ) {
    const { msgs, cbs } = this;
    this.messages = {
      push: (m) => {
        this.pushed = this.laneOf(m);
        msgs[this.pushed].push(m);
        return msgs.alarm.length + msgs.routine.length;
      },
      shift: () => {
        const alarms = msgs.alarm.length;
        const routine = msgs.routine.length;
        if (alarms === 0 && routine === 0) return undefined;
        const takeAlarm = alarms > 0 && (routine === 0 || this.alarmsInARow < this.burst);
        this.shifted = takeAlarm ? 'alarm' : 'routine';
        this.alarmsInARow = takeAlarm ? this.alarmsInARow + 1 : 0;
        return msgs[this.shifted].shift();
      },
      get length() {
        return msgs.alarm.length + msgs.routine.length;
      },
    };
    this.callbacks = {
      push: (cb) => cbs[this.pushed].push(cb),
      shift: () => cbs[this.shifted].shift(),
    };
  }

  /** Waiting messages per lane (tests, stats). */
  waiting(): Record<Lane, number> {
    return { alarm: this.msgs.alarm.length, routine: this.msgs.routine.length };
  }
}

interface MqInternals {
  _messageQueue: unknown;
  _messageCallbacks: unknown;
}

/** Replaces aedes' mqemitter waiting arrays with a PriorityPair; call before the first publish. */
export function usePriorityMqQueue(broker: Aedes, laneOf: (packet: { topic: string }) => Lane): PriorityPair<{ topic: string }, unknown> {
  const mq = (broker as unknown as { mq: MqInternals }).mq;
  if (!Array.isArray(mq._messageQueue) || !Array.isArray(mq._messageCallbacks)) throw new Error('aedes mqemitter internals changed: _messageQueue/_messageCallbacks not found');
  if (mq._messageQueue.length > 0) throw new Error('mqemitter queue must be replaced before any message is queued');
  const pair = new PriorityPair<{ topic: string }, unknown>(laneOf);
  mq._messageQueue = pair.messages;
  mq._messageCallbacks = pair.callbacks;
  return pair;
}
