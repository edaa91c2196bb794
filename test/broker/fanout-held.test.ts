import fc from 'fast-check';
import { afterEach, expect, it, vi } from 'vitest';
import { releaseFanout } from '../../broker/fanout-release.ts';

/**
 * The publishes a subscriber's full socket holds (broker/fanout-release.ts) are kept as a queue, and
 * each completion aedes calls back completes the oldest: no per-copy closure. Completions may come
 * out of delivery order (a persistent session's QoS 1 copy waits for its store), and the grace may
 * complete the held ones before aedes does. A publish never completed is a device whose PUBACK never
 * comes; one completed twice is mqemitter's count corrupted. This drives the counting through every
 * interleaving fast-check finds, with aedes' client replaced by one whose completions the test calls
 * in any order (a real socket gives them nearly in order: the rare orders are the point here).
 */
afterEach(() => {
  vi.useRealTimers();
});

type Op = { kind: 'deliver' } | { kind: 'complete'; pick: number } | { kind: 'full' } | { kind: 'grace' } | { kind: 'drain' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Op>({ kind: 'deliver' }) },
  { weight: 4, arbitrary: fc.nat(1000).map<Op>((pick) => ({ kind: 'complete', pick })) },
  fc.constant<Op>({ kind: 'full' }),
  fc.constant<Op>({ kind: 'grace' }),
  fc.constant<Op>({ kind: 'drain' }),
);

/** releaseFanout over aedes' two hooks, with a client whose completions the test calls back. */
function fake() {
  const listeners: Array<(packet: unknown, cb: () => void) => void> = [];
  const broker = { subscribe: (_t: string, fn: (packet: unknown, cb: () => void) => void) => void listeners.push(fn), unsubscribe: () => undefined };
  const fanout = releaseFanout(broker, { maxBufferedBytes: 1 << 30, graceMs: 250 });
  // aedes' completions not yet called back, and the drain listeners on the socket.
  const aedes: Array<() => void> = [];
  const drains: Array<() => void> = [];
  const deliver = (_packet: unknown, cb: () => void): void => void aedes.push(cb);
  const client = {
    deliverQoS: deliver,
    deliver0: deliver,
    conn: { writableLength: 0, on: (event: string, fn: () => void) => void (event === 'drain' && drains.push(fn)), once: () => undefined },
    emit: () => true,
    _drainTimer: null,
    waitForDrain: () => undefined,
    _handleDrainTimeout: () => undefined,
  };
  expect(fanout.watch(client)).toBe(true);
  const hooks = client as unknown as { deliverQoS: (p: unknown, cb: () => void) => void; waitForDrain: (cb: unknown) => void };
  const sub = hooks.deliverQoS;
  broker.subscribe('t', (packet, cb) => sub(packet, cb));
  return {
    aedes,
    publish: (done: () => void): void => {
      for (const l of listeners) l({ topic: 't', payload: Buffer.alloc(10) }, done);
    },
    /** aedes' write returned false: the socket is past its high-water mark. */
    full: (): void => hooks.waitForDrain(() => undefined),
    drain: (): void => {
      for (const d of drains) d();
    },
  };
}

it('completes every publish exactly once, whatever the order of completions, the grace and the drains', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      vi.useFakeTimers();
      try {
        const f = fake();
        const aedes = f.aedes;
        const completed: number[] = [];
        let published = 0;
        for (const o of ops) {
          if (o.kind === 'deliver') {
            const n = published++;
            f.publish(() => void completed.push(n));
          } else if (o.kind === 'complete' && aedes.length > 0) {
            aedes.splice(o.pick % aedes.length, 1)[0]?.();
          } else if (o.kind === 'full') {
            f.full();
          } else if (o.kind === 'grace') {
            vi.advanceTimersByTime(250);
          } else if (o.kind === 'drain') {
            f.drain();
          }
          // None completed twice.
          expect(new Set(completed).size).toBe(completed.length);
        }
        // aedes calls back every copy in the end (written, or the connection closed).
        for (const cb of aedes.splice(0)) cb();
        vi.runAllTimers();
        expect([...completed].sort((a, b) => a - b)).toEqual(Array.from({ length: published }, (_, i) => i));
      } finally {
        vi.useRealTimers();
      }
    }),
    { numRuns: 500 },
  );
});

it('does not let the late completions of publishes the grace released complete a publish held after them', () => {
  vi.useFakeTimers();
  const f = fake();
  const completed: string[] = [];
  f.publish(() => void completed.push('a'));
  f.publish(() => void completed.push('b'));
  f.full();
  vi.advanceTimersByTime(250);
  expect(completed).toEqual(['a', 'b']);
  // The socket empties; a new copy is paced again.
  f.drain();
  f.publish(() => void completed.push('c'));
  const [a, b, c] = f.aedes.splice(0);
  a?.();
  b?.();
  // a's and b's copies written: c's is not, and c's publish still waits for it.
  expect(completed).toEqual(['a', 'b']);
  c?.();
  expect(completed).toEqual(['a', 'b', 'c']);
});
