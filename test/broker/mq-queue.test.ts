import { expect, it } from 'vitest';
import { Fifo } from '../../broker/mq-queue.ts';

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
