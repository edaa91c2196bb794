import type { Aedes } from 'aedes';

/**
 * Gives aedes' mqemitter an O(1) waiting queue. mqemitter 7 keeps the messages beyond its
 * `concurrency` in two arrays and takes the next with shift(), which V8 does in O(1) only while the
 * array is a regular heap object; past ~16k entries every shift copies the whole array. Under a
 * burst the broker then spends its time shifting (issue 6 profile: 45–65 % of the broker's CPU in
 * mqemitter's `released` at 16,000 msg/s) and never catches up. A chunked FIFO keeps an overload
 * a queue that drains, instead of a collapse. mqemitter uses only push, shift and length on them.
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

export function useFifoMqQueue(broker: Aedes): void {
  const mq = (broker as unknown as { mq: { _messageQueue: unknown[]; _messageCallbacks: unknown[] } }).mq;
  if (!Array.isArray(mq._messageQueue) || !Array.isArray(mq._messageCallbacks)) throw new Error('aedes mqemitter internals changed: _messageQueue/_messageCallbacks not found');
  if (mq._messageQueue.length > 0) throw new Error('mqemitter queue must be replaced before any message is queued');
  (mq as unknown as { _messageQueue: Fifo<unknown>; _messageCallbacks: Fifo<unknown> })._messageQueue = new Fifo();
  (mq as unknown as { _messageQueue: Fifo<unknown>; _messageCallbacks: Fifo<unknown> })._messageCallbacks = new Fifo();
}
