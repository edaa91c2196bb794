import { METRICS } from '../../../contract/metrics.ts';
import { newLatch, stepAbove, stepLatch, type Edge, type Latch } from './latch.ts';
import { pushSample, slopePerMin } from './slope.ts';

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
 * A slope from one or two samples is noise, not a trend: at least 5 samples spanning at least
 * two thirds of the window (40 s of a 60 s window at the 10 s telemetry period) are required.
 */
export const ROR_MIN_SAMPLES = 5;
const ROR_MIN_SPAN = 2 / 3;
/** A rising fire keeps rising: both alarms need two consecutive readings ("not one noisy sample"). */
const SET_COUNT = 2;
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
  const n = s.length / 2;
  const span = n >= 2 ? (s[s.length - 2] as number) - (s[0] as number) : 0;
  const slope = n >= ROR_MIN_SAMPLES && span >= lim.windowMs * ROR_MIN_SPAN ? slopePerMin(s) : undefined;

  // A reading at the top of the element's range is a saturated element (the decoder takes a value
  // past 200 °C at 200 °C): at least the fixed level, even where a device sets its level above it.
  const fixedInput = tempC >= METRICS.temperature_c.max ? Math.max(tempC, lim.fixedC) : tempC;
  const fixed = stepAbove(prev.f, fixedInput, lim.fixedC, lim.fixedClearC, now, { setCount: SET_COUNT, clearHoldMs: CLEAR_HOLD_MS });
  // Without enough samples neither set nor clear: a gap in reporting changes nothing.
  const ror =
    slope === undefined
      ? { latch: prev.r, edge: undefined }
      : stepLatch(prev.r, slope >= lim.rorCPerMin, slope < lim.rorCPerMin / 2, now, { setCount: SET_COUNT, clearHoldMs: CLEAR_HOLD_MS });
  return { state: { s, f: fixed.latch, r: ror.latch }, fixed: fixed.edge, ror: ror.edge, slope };
}

export function heatInAlarm(h: HeatState | undefined): boolean {
  return h !== undefined && (h.f.on || h.r.on);
}
