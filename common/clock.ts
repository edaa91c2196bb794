/**
 * Time as a dependency. Processes get `systemClock`; tests of deadlines and escalations (NFPA 72
 * positive alarm sequence 15 s / 180 s) use `createManualClock` and advance it instead of sleeping.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

export interface ClockTimer {
  readonly id: number;
}

export const systemClock: Clock = (() => {
  const handles = new Map<number, NodeJS.Timeout>();
  let next = 1;
  return {
    now: () => Date.now(),
    setTimeout(fn, ms) {
      const id = next++;
      const h = setTimeout(() => {
        handles.delete(id);
        fn();
      }, ms);
      handles.set(id, h);
      return { id };
    },
    clearTimeout(timer) {
      const h = handles.get(timer.id);
      if (h !== undefined) clearTimeout(h);
      handles.delete(timer.id);
    },
  };
})();

export interface ManualClock extends Clock {
  /** Moves time forward, firing due timers in order (each sees `now()` at its due time). */
  advance(ms: number): void;
  set(epochMs: number): void;
  pending(): number;
}

export function createManualClock(start = Date.UTC(2026, 0, 1)): ManualClock {
  let now = start;
  let next = 1;
  const timers = new Map<number, { due: number; fn: () => void }>();
  const clock: ManualClock = {
    now: () => now,
    setTimeout(fn, ms) {
      const id = next++;
      timers.set(id, { due: now + Math.max(0, ms), fn });
      return { id };
    },
    clearTimeout(timer) {
      timers.delete(timer.id);
    },
    advance(ms) {
      const target = now + ms;
      for (;;) {
        let dueId: number | undefined;
        let due = Infinity;
        for (const [id, t] of timers) if (t.due <= target && (t.due < due || (t.due === due && id < (dueId ?? Infinity)))) {
          due = t.due;
          dueId = id;
        }
        if (dueId === undefined) break;
        const t = timers.get(dueId);
        timers.delete(dueId);
        now = due;
        t?.fn();
      }
      now = target;
    },
    set(epochMs) {
      clock.advance(Math.max(0, epochMs - now));
    },
    pending: () => timers.size,
  };
  return clock;
}
