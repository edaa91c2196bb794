/**
 * "Out of range for a set time" on a stream of device readings, timed by the device's own
 * timestamps. Plain JSON so it survives an engine restart mid-window.
 */
export interface DurationWindow {
  /** Device time of the first reading of the current out-of-range run. */
  outSince?: number;
  /** Device time of the first reading of the current in-range run. */
  inSince?: number;
  lastTs: number;
  active: boolean;
}

export interface WindowTiming {
  readonly durationMs: number;
  readonly clearMs: number;
  /** Readings further apart than this do not make one run (the device was silent in between). */
  readonly maxGapMs: number;
}

/** Advances the window by one reading. Older or duplicate readings (redelivery) leave it unchanged. */
export function stepWindow(w: DurationWindow | undefined, ts: number, out: boolean, t: WindowTiming): DurationWindow {
  if (w !== undefined && ts <= w.lastTs) return w;
  const gap = w === undefined || ts - w.lastTs > t.maxGapMs;
  let active = w?.active ?? false;
  if (out) {
    const outSince = w?.outSince === undefined || gap ? ts : w.outSince;
    if (!active && ts - outSince >= t.durationMs) active = true;
    return { outSince, lastTs: ts, active };
  }
  const inSince = w?.inSince === undefined || gap ? ts : w.inSince;
  if (active && ts - inSince >= t.clearMs) active = false;
  return { inSince, lastTs: ts, active };
}
