import MQEmitter from 'mqemitter';
import { describe, expect, it } from 'vitest';
import { Fifo, PriorityPair, type Lane } from '../../broker/mq-queue.ts';
import { deviceTopic, isTelemetryTopic } from '../../contract/topics.ts';

it('the mqemitter FIFO keeps order and length across interleaved pushes and shifts', () => {
  const q = new Fifo<number>();
  const ref: number[] = [];
  let seed = 3;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 50_000; i++) {
    if (rnd() < 0.55) {
      expect(q.push(i)).toBe(ref.push(i));
    } else {
      expect(q.shift()).toBe(ref.shift());
    }
    expect(q.length).toBe(ref.length);
  }
  while (ref.length > 0) expect(q.shift()).toBe(ref.shift());
  expect(q.shift()).toBeUndefined();
  expect(q.length).toBe(0);
});

describe('the two-lane mqemitter queue (alarm signals before waiting telemetry)', () => {
  type Msg = { topic: string; n: number };
  const lane = (m: { topic: string }): Lane => (isTelemetryTopic(m.topic) ? 'routine' : 'alarm');
  const telemetry = deviceTopic('h01', 'h01-smoke-101', 'telemetry');
  const event = deviceTopic('h01', 'h01-mcp-f1-corridor', 'event');

  /** A real mqemitter with one message in flight at a time; returns the delivery order. */
  function run(burst: number | undefined, emit: (mq: { emit(m: Msg, cb: () => void): void }) => void): Promise<string[]> {
    const mq = MQEmitter({ concurrency: 1 }) as unknown as { emit(m: Msg, cb: () => void): void; on(t: string, f: (m: Msg, cb: () => void) => void): void; _messageQueue: unknown; _messageCallbacks: unknown };
    const pair = new PriorityPair<Msg, unknown>(lane, burst);
    mq._messageQueue = pair.messages;
    mq._messageCallbacks = pair.callbacks;
    const order: string[] = [];
    let done = 0;
    let total = 0;
    return new Promise((resolve) => {
      mq.on('#', (m, cb) => {
        order.push(`${lane(m)}${m.n}`);
        setImmediate(cb);
      });
      const counted = { emit: (m: Msg, cb: () => void): void => { total++; mq.emit(m, () => { cb(); if (++done === total) resolve(order); }); } };
      emit(counted);
    });
  }

  it('takes a waiting alarm before the telemetry queued ahead of it, and keeps each lane in order', async () => {
    const order = await run(undefined, (mq) => {
      for (let n = 0; n < 5; n++) mq.emit({ topic: telemetry, n }, () => undefined);
      mq.emit({ topic: event, n: 0 }, () => undefined);
      mq.emit({ topic: event, n: 1 }, () => undefined);
    });
    // routine0 was already in flight; both alarms overtake routine1..4, each lane stays FIFO.
    expect(order).toEqual(['routine0', 'alarm0', 'alarm1', 'routine1', 'routine2', 'routine3', 'routine4']);
  });

  it('lets one telemetry message through after `burst` alarms in a row, so readings are never starved', async () => {
    const order = await run(2, (mq) => {
      mq.emit({ topic: telemetry, n: 0 }, () => undefined);
      mq.emit({ topic: telemetry, n: 1 }, () => undefined);
      for (let n = 0; n < 5; n++) mq.emit({ topic: event, n }, () => undefined);
    });
    expect(order).toEqual(['routine0', 'alarm0', 'alarm1', 'routine1', 'alarm2', 'alarm3', 'alarm4']);
  });

  it('pairs each callback with its own message across lanes', async () => {
    const calls: string[] = [];
    await run(undefined, (mq) => {
      for (let n = 0; n < 3; n++) mq.emit({ topic: telemetry, n }, () => calls.push(`routine${n}`));
      mq.emit({ topic: event, n: 0 }, () => calls.push('alarm0'));
    });
    expect(calls).toEqual(['routine0', 'alarm0', 'routine1', 'routine2']);
  });
});
