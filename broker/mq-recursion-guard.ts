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
 * Fix: one listener on `#` (which in qlobber matches every topic, `$SYS` included) that completes
 * on the next turn of the event loop. Every message then finishes asynchronously, so `released`
 * always runs on a fresh stack. Cost: one setImmediate per routed message; the subscribers'
 * deliveries already defer with setImmediate in aedes, so no message is held longer than before.
 */
export function guardMqRecursion(broker: Aedes): void {
  const mq = (broker as unknown as { mq: { on(topic: string, fn: (packet: unknown, done: () => void) => void): void } }).mq;
  mq.on('#', function completeOnNextTurn(_packet, done) {
    setImmediate(done);
  });
}
