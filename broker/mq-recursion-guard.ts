import type { Aedes } from 'aedes';

/**
 * Keeps aedes 1.2 from dying with `RangeError: Maximum call stack size exceeded` in a mass
 * disconnect (reproduced by test/broker/storm.test.ts: 10,000 devices dropped at once while
 * svc-ingest is loaded).
 *
 * Cause (mqemitter 7.1 + fastparallel): mqemitter lets `concurrency` messages be in flight and
 * queues the rest. When a message finishes, its `released` callback takes the next queued message
 * and calls `_do` on it synchronously. A message whose listeners all complete synchronously — or
 * that has no listener at all, like the `$SYS/<broker>/disconnect/clients` notice aedes emits for
 * every closed client — finishes inside `_do`, which calls `released` again, and so on: one stack
 * frame chain per queued message. A slow subscriber holds the in-flight slots while 10,000
 * disconnect notices queue up behind them; when a slot frees, the whole run is drained
 * recursively and the stack overflows (the trace ends in qlobber's `match`, the deepest frame).
 *
 * Fix: one listener on `#` (which in qlobber matches every topic, `$SYS` included), so every
 * message passes through it once per level of that recursion. It completes at once until
 * MAX_SYNC messages have completed on the current stack, and defers the rest to the next turn
 * (a fresh stack). The recursion is so bounded to MAX_SYNC levels.
 *
 * An earlier version deferred EVERY message with setImmediate: each message then held one of the
 * `concurrency` slots for a whole event-loop turn, the rest queued in mqemitter's array, and at
 * 2,000 msg/s of telemetry the broker spent a quarter of its CPU in mqemitter's `released`
 * (queue shift) and in aedes' outgoing store (issue 6 profile). Now the cost is one
 * process.nextTick per synchronous run and one setImmediate per MAX_SYNC messages in a burst.
 */
const MAX_SYNC = 128;

type Listener = (packet: unknown, done: () => void) => void;

export function guardMqRecursion(broker: Aedes): void {
  const mq = (broker as unknown as { mq: { on(topic: string, fn: Listener): void; onLocal?(topic: string, fn: Listener): void } }).mq;
  // On a cluster node (redis-mq.ts) `onLocal`: this listener must not subscribe to anything in Redis
  // (a `#` would make the node receive every message of the cluster); it sees what the node's other
  // listeners bring in, which is every message that can recurse here.
  const add = mq.onLocal !== undefined ? mq.onLocal.bind(mq) : mq.on.bind(mq);
  // Messages completed synchronously since the stack last unwound (reset on the next tick).
  let sync = 0;
  let resetQueued = false;
  const reset = (): void => {
    sync = 0;
    resetQueued = false;
  };
  add('#', function completeBounded(_packet, done) {
    if (sync >= MAX_SYNC) {
      setImmediate(done);
      return;
    }
    sync++;
    if (!resetQueued) {
      resetQueued = true;
      process.nextTick(reset);
    }
    done();
  });
}
