/**
 * A two-level latch with hold times: the anti-flapping core of every threshold rule. It turns on
 * when the set condition has held for `setCount` consecutive evaluations and `setHoldMs`, and off
 * when the clear condition has held for `clearCount` evaluations and `clearHoldMs`. Between the
 * two levels (the dead band) nothing changes and any pending transition is forgotten, so a value
 * hovering at a threshold produces one transition, not one per sample.
 *
 * State is plain JSON (`{ on, n, p }`) so the engine can persist it across restarts.
 */
export interface Latch {
  on: boolean;
  /** Consecutive evaluations meeting the opposite condition. */
  n: number;
  /** Platform ms when those evaluations started; -1 when none. */
  p: number;
  /** A latch set by a device's own alarm event: that event (`ts:seq`), so a redelivered copy is not a new alarm. */
  k?: string;
}

export interface LatchHold {
  readonly setCount?: number;
  readonly setHoldMs?: number;
  readonly clearCount?: number;
  readonly clearHoldMs?: number;
}

export type Edge = 'set' | 'clear' | undefined;

export function newLatch(): Latch {
  return { on: false, n: 0, p: -1 };
}

export function stepLatch(latch: Latch, setCond: boolean, clearCond: boolean, now: number, hold: LatchHold): { latch: Latch; edge: Edge } {
  const wanted = latch.on ? clearCond : setCond;
  if (!wanted) return { latch: latch.n === 0 && latch.p === -1 ? latch : { on: latch.on, n: 0, p: -1 }, edge: undefined };
  const n = latch.n + 1;
  const p = latch.p < 0 ? now : latch.p;
  const count = latch.on ? (hold.clearCount ?? 1) : (hold.setCount ?? 1);
  const holdMs = latch.on ? (hold.clearHoldMs ?? 0) : (hold.setHoldMs ?? 0);
  if (n >= count && now - p >= holdMs) {
    return { latch: { on: !latch.on, n: 0, p: -1 }, edge: latch.on ? 'clear' : 'set' };
  }
  return { latch: { on: latch.on, n, p }, edge: undefined };
}

/** Shorthand for a rising threshold: set at `value >= setAt`, clear at `value < clearAt`. */
export function stepAbove(latch: Latch, value: number, setAt: number, clearAt: number, now: number, hold: LatchHold): { latch: Latch; edge: Edge } {
  return stepLatch(latch, value >= setAt, value < Math.min(clearAt, setAt), now, hold);
}

/** Shorthand for a falling threshold: set at `value < setAt`, clear at `value >= clearAt`. */
export function stepBelow(latch: Latch, value: number, setAt: number, clearAt: number, now: number, hold: LatchHold): { latch: Latch; edge: Edge } {
  return stepLatch(latch, value < setAt, value >= Math.max(clearAt, setAt), now, hold);
}
