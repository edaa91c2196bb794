import { METRICS } from '../../../contract/metrics.ts';
import { newLatch, stepAbove, stepLatch, type Edge, type Latch } from './latch.ts';
import { pushSample, slopePerMin, windowSamples } from './slope.ts';

/**
 * Heat detection of one detector, as an EN 54-5 class A1R detector decides it: a fixed
 * (static-response) temperature alarm and a rate-of-rise alarm. Pure step over one reading.
 */
export interface HeatState {
  /** Recent samples `[ts, °C, …]` (device ms) for the rate-of-rise window. */
  s: number[];
  /** Fixed-temperature latch. */
  f: Latch;
  /** Rate-of-rise latch. */
  r: Latch;
}

export interface HeatLimits {
  readonly fixedC: number;
  readonly fixedClearC: number;
  readonly rorCPerMin: number;
  readonly windowMs: number;
}

/**
 * The slope needs a window spanning at least two thirds of its length (40 s of a 60 s window), so
 * it is not taken from the first seconds after start-up. How many samples that takes depends on the
 * reporting interval: ~21 at 1 Hz, 5 at 10 s, 2 (the anchor and the newest) at 60 s. A trend is
 * confirmed the way a single noisy sample cannot fake it: the slope must pass on two consecutive
 * readings (a spike is the newest sample of one fit and the oldest of a later one, where it pulls
 * the slope down), and with many samples the least-squares fit itself dilutes a spike.
 */
export const ROR_MIN_SAMPLES = 2;
const ROR_MIN_SPAN = 2 / 3;
/** A rising fire keeps rising: the rate-of-rise alarm needs two consecutive readings. */
const ROR_SET_COUNT = 2;
/**
 * The fixed alarm needs the temperature at or over its level on two consecutive readings (one
 * noisy reading is not a fire). Counted, not timed: air at the ceiling at 58 °C on two readings is
 * heat from a fire at any reporting interval, and a fire next to it must not wait for a hold.
 */
const FIXED_HOLD = { setCount: 2 } as const;
/** A condition must be gone for 60 s before its clear is reported (no flapping). */
const CLEAR_HOLD_MS = 60_000;

export function newHeatState(): HeatState {
  return { s: [], f: newLatch(), r: newLatch() };
}

export interface HeatStep {
  readonly state: HeatState;
  readonly fixed: Edge;
  readonly ror: Edge;
  /** °C/min over the window, or undefined when the window holds too few samples. */
  readonly slope: number | undefined;
}

export function stepHeat(prev: HeatState, ts: number, tempC: number, now: number, lim: HeatLimits): HeatStep {
  const s = pushSample(prev.s, ts, tempC, lim.windowMs);
  const fit = windowSamples(s, ts, lim.windowMs);
  const n = fit.length / 2;
  const span = n >= 2 ? (fit[fit.length - 2] as number) - (fit[0] as number) : 0;
  const slope = n >= ROR_MIN_SAMPLES && span >= lim.windowMs * ROR_MIN_SPAN ? slopePerMin(fit) : undefined;

  // A reading at the top of the element's range is a saturated element (the decoder takes a value
  // past 200 °C at 200 °C): at least the fixed level, even where a device sets its level above it.
  const fixedInput = tempC >= METRICS.temperature_c.max ? Math.max(tempC, lim.fixedC) : tempC;
  const fixed = stepAbove(prev.f, fixedInput, lim.fixedC, lim.fixedClearC, now, { ...FIXED_HOLD, clearHoldMs: CLEAR_HOLD_MS });
  // Without enough samples neither set nor clear: a gap in reporting changes nothing.
  const ror =
    slope === undefined
      ? { latch: prev.r, edge: undefined }
      : stepLatch(prev.r, slope >= lim.rorCPerMin, slope < lim.rorCPerMin / 2, now, { setCount: ROR_SET_COUNT, clearHoldMs: CLEAR_HOLD_MS });
  return { state: { s, f: fixed.latch, r: ror.latch }, fixed: fixed.edge, ror: ror.edge, slope };
}

export function heatInAlarm(h: HeatState | undefined): boolean {
  return h !== undefined && (h.f.on || h.r.on);
}
