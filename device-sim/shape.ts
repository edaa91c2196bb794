import type { MetricName } from '../contract/metrics.ts';

/**
 * A scenario shape distorts a device's baseline metrics as a function of the simulated time since
 * the scenario started. Pure: `(metrics, ctx) → result`, no I/O, no clock, no Math.random.
 */
export type Metrics = Partial<Record<MetricName, number | boolean>>;

/** Conditions the device turns into events on their rising edge (device-sim/model.ts `step`). */
export interface Flags {
  /** Device fault code (e.g. optical chamber failure); `fault` event when it appears, `ok: true` when it goes. */
  readonly fault?: string;
  /** A fall detected by the bed sensor. */
  readonly fall?: boolean;
  /** The glass of a manual call point is broken. */
  readonly callPoint?: boolean;
  /** A call button, pull cord or pendant is pressed (`sos_button`). */
  readonly call?: boolean;
  /** Connected but sends nothing (a hung monitor). */
  readonly mute?: boolean;
}

export interface ShapeContext {
  /** Device time of the sample, ms. */
  readonly t: number;
  /** Simulated ms since the scenario started (real elapsed × speed). */
  readonly elapsedMs: number;
  /** Per-device seed, for noise. */
  readonly seed: number;
  /** The device's baseline metrics at the instant the scenario started (for a stuck sensor). */
  readonly metricsAtStart: () => Metrics;
}

export interface ShapeResult {
  readonly metrics: Metrics;
  readonly flags?: Flags;
}

export type Shape = (metrics: Metrics, ctx: ShapeContext) => ShapeResult;

/** Returns a copy of `m` with `name` replaced by `fn(value)` when the device sends that metric. */
export function adjust(m: Metrics, name: MetricName, fn: (v: number) => number): Metrics {
  const v = m[name];
  return typeof v === 'number' ? { ...m, [name]: fn(v) } : m;
}

export function without(m: Metrics, names: readonly MetricName[]): Metrics {
  const out: Metrics = { ...m };
  for (const n of names) delete out[n];
  return out;
}

/** 0 → 1 linearly over `durMs`, starting at 0. */
export function ramp(elapsedMs: number, durMs: number): number {
  return Math.max(0, Math.min(1, elapsedMs / durMs));
}

/** Moves `from` toward `to` by fraction `f`. */
export function toward(from: number, to: number, f: number): number {
  return from + (to - from) * f;
}
