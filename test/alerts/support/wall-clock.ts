import type { Clock, ClockTimer } from '../../../common/clock.ts';

/**
 * A wall clock like Date.now() + setTimeout: timers run on elapsed (monotonic) time, now() is the
 * wall clock, which an NTP step (or an operator) may move backwards or forwards.
 */
export function wallClock(start = Date.UTC(2026, 0, 5, 2, 0)) {
  let mono = 0;
  let offset = start;
  let next = 1;
  const timers = new Map<number, { due: number; fn: () => void }>();
  const clock = {
    now: () => mono + offset,
    setTimeout(fn: () => void, ms: number): ClockTimer {
      const id = next++;
      timers.set(id, { due: mono + Math.max(0, ms), fn });
      return { id };
    },
    clearTimeout(t: ClockTimer) {
      timers.delete(t.id);
    },
    advance(ms: number) {
      const target = mono + ms;
      for (;;) {
        let dueId: number | undefined;
        let due = Infinity;
        for (const [id, t] of timers) {
          if (t.due <= target && (t.due < due || (t.due === due && id < (dueId ?? Infinity)))) {
            due = t.due;
            dueId = id;
          }
        }
        const t = dueId === undefined ? undefined : timers.get(dueId);
        if (dueId === undefined || t === undefined) break;
        timers.delete(dueId);
        mono = due;
        t.fn();
      }
      mono = target;
    },
    step(ms: number) {
      offset += ms;
    },
  };
  return clock satisfies Clock & Record<string, unknown>;
}

export type WallClock = ReturnType<typeof wallClock>;
