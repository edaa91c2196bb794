import { gauss } from './prng.ts';
import { adjust, ramp, toward, without, type Metrics, type Shape } from './shape.ts';
import type { MetricName } from '../contract/metrics.ts';

/**
 * Fire-side scenario shapes (issue 3 "recorded signal shapes"). Each factory takes the shape's
 * parameters and returns a pure Shape. Times are simulated seconds since the scenario started.
 */

const S = 1000;

/**
 * Obscuration added by a flaming fire, %/m: t-squared-like growth (NFPA 72 Annex B models fire
 * growth as Q ∝ t²) saturating near 30 %/m; about 4 %/m after 25 s and over 10 %/m by 50 s.
 */
export function flamingSmokePct(s: number): number {
  if (s <= 0) return 0;
  return 30 * (1 - Math.exp(-((s / 70) ** 2)));
}

/**
 * Temperature rise of a flaming fire at the ceiling, °C: after a 20 s plume delay the rate of rise
 * grows from 8 °C/min to 20 °C/min over two minutes and then holds. EN 54-5 tests class A1 heat
 * detectors at rates of rise from 1 to 30 °C/min, and issue 3 asks for rate-of-rise detection of
 * the order of 8 °C/min sustained: this shape is sustained, not one noisy sample, and reaches the
 * A1 static response range (54–65 °C) from room temperature in under three minutes.
 */
export function flamingHeatRiseC(s: number): number {
  const u = s - 20;
  if (u <= 0) return 0;
  if (u <= 120) return (8 * u + (6 * u * u) / 120) / 60;
  return Math.min(165, 28 + (20 * (u - 120)) / 60);
}

/** Smouldering fire: slow smoke (about 4 %/m after 9 minutes), little heat (≤ 6 °C). */
export function smoulderingSmokePct(s: number): number {
  return s <= 0 ? 0 : 12 * (1 - Math.exp(-s / 1500));
}
export function smoulderingHeatRiseC(s: number): number {
  return s <= 0 ? 0 : Math.min(6, (0.3 * s) / 60);
}

export interface SpreadParams {
  /** Seconds before smoke/heat reach this detector (0 in the room of origin). */
  readonly delayS: number;
  /** Fraction of the room-of-origin signal that reaches it. */
  readonly factor: number;
}
export const ORIGIN: SpreadParams = { delayS: 0, factor: 1 };
/** Smoke reaches an adjoining room or corridor later and thinner; heat hardly at all. */
export const ADJACENT_SMOKE: SpreadParams = { delayS: 45, factor: 0.5 };
export const ADJACENT_HEAT: SpreadParams = { delayS: 120, factor: 0.15 };

export function fire(kind: 'flaming' | 'smouldering', smoke: SpreadParams, heat: SpreadParams): Shape {
  const smokeFn = kind === 'flaming' ? flamingSmokePct : smoulderingSmokePct;
  const heatFn = kind === 'flaming' ? flamingHeatRiseC : smoulderingHeatRiseC;
  return (m, ctx) => {
    const s = ctx.elapsedMs / S;
    const k = Math.floor(ctx.t / S);
    let out = adjust(m, 'smoke_obscuration_pct_per_m', (v) => v + smoke.factor * smokeFn(s - smoke.delayS) * (1 + 0.03 * gauss(ctx.seed ^ 0xf1, k)));
    out = adjust(out, 'temperature_c', (v) => v + heat.factor * heatFn(s - heat.delayS) + 0.2 * gauss(ctx.seed ^ 0xf2, k));
    return { metrics: out };
  };
}

/**
 * Cooking smoke drifting from a kitchen: a burst to about 5 %/m within 10 s, held to 20 s, then
 * clearing exponentially (below 1 %/m by 35 s, back at baseline well within 60 s, i.e. within an
 * NFPA 72 alarm verification window), with a small warm-air bump.
 */
export function cookingSmokePct(s: number): number {
  if (s <= 0) return 0;
  if (s < 10) return 5 * (s / 10);
  if (s < 20) return 5;
  return 5 * Math.exp(-(s - 20) / 8);
}
export const COOKING_DURATION_MS = 90 * S;

export function cookingSmoke(): Shape {
  return (m, ctx) => {
    const s = ctx.elapsedMs / S;
    let out = adjust(m, 'smoke_obscuration_pct_per_m', (v) => v + cookingSmokePct(s));
    out = adjust(out, 'temperature_c', (v) => v + 2 * Math.exp(-Math.max(0, s - 20) / 60) * ramp(ctx.elapsedMs, 20 * S));
    return { metrics: out };
  };
}

/** Steam from a shower or kettle: a sharp spike to ~7 %/m that clears in about 30 s, warm and humid. */
export function steamPct(s: number): number {
  if (s <= 0) return 0;
  if (s < 5) return 7 * (s / 5);
  return 7 * Math.exp(-(s - 5) / 6);
}
export const STEAM_DURATION_MS = 60 * S;

export function steam(): Shape {
  return (m, ctx) => {
    const s = ctx.elapsedMs / S;
    let out = adjust(m, 'smoke_obscuration_pct_per_m', (v) => v + steamPct(s));
    out = adjust(out, 'temperature_c', (v) => v + 4 * Math.exp(-Math.max(0, s - 5) / 30) * ramp(ctx.elapsedMs, 5 * S));
    return { metrics: out };
  };
}

/**
 * A dirty detector: dust in the optical chamber raises the clean-air reading slowly, over hours,
 * until it approaches pre-alarm ("dirty detector" trouble, issue 3). Compressible with the
 * simulator speed factor.
 */
export function dirtyDetector(opts: { ratePctPerHour?: number; maxPct?: number } = {}): Shape {
  const rate = opts.ratePctPerHour ?? 0.5;
  const max = opts.maxPct ?? 3;
  return (m, ctx) => ({
    metrics: adjust(m, 'smoke_obscuration_pct_per_m', (v) => v + Math.min(max, (rate * ctx.elapsedMs) / 3_600_000)),
  });
}

/** Metrics a device senses (as opposed to its own battery and radio link). */
export const RADIO_METRICS: readonly MetricName[] = ['battery_pct', 'rssi_dbm'];
function sensing(m: Metrics): MetricName[] {
  return (Object.keys(m) as MetricName[]).filter((n) => !RADIO_METRICS.includes(n));
}

/** A sensor stuck at the value it read when the scenario started (or at `value`). */
export function stuck(opts: { value?: number } = {}): Shape {
  return (m, ctx) => {
    const at = ctx.metricsAtStart();
    const out: Metrics = { ...m };
    for (const n of sensing(m)) {
      const v = at[n];
      if (typeof v === 'number') out[n] = opts.value ?? v;
    }
    return { metrics: out };
  };
}

/** Default level a hovering metric sits at: the fixed thresholds the alert rules are likely to use. */
export const HOVER_LEVELS: Partial<Record<MetricName, number>> = {
  smoke_obscuration_pct_per_m: 4,
  temperature_c: 58,
  spo2_pct: 90,
  heart_rate_bpm: 130,
  resp_rate_bpm: 25,
  residual_current_ma: 300,
  gas_lel_pct: 10,
  water_pressure_mpa: 0.15,
  body_temp_c: 38,
};

/**
 * A value hovering at a threshold: a 40-second oscillation of ±`amplitude` around `level` plus
 * noise, crossing the level again and again (issue 3: must produce one alert, not a hundred).
 */
export function hover(metric: MetricName, level: number, amplitude: number): Shape {
  return (m, ctx) => ({
    metrics: adjust(m, metric, () => level + amplitude * Math.sin((2 * Math.PI * ctx.elapsedMs) / 40_000) + 0.3 * amplitude * gauss(ctx.seed ^ 0xf3, Math.floor(ctx.t / S))),
  });
}

/** A detector fault: the sensing element stops reporting and the device raises a `fault` event. */
export function detectorFault(code = 'E_SENSOR'): Shape {
  return (m) => {
    const sensed = sensing(m);
    // A kind without radio metrics would be left with an empty message; keep its last readings then.
    const out = sensed.length < Object.keys(m).length ? without(m, sensed) : m;
    return { metrics: out, flags: { fault: code } };
  };
}

/** Battery nearly flat (a trouble signal, NFPA 72 §10.6.10 low-battery supervision). */
export function lowBattery(pct = 8): Shape {
  return (m) => ({ metrics: adjust(m, 'battery_pct', () => pct) });
}

/** Residual current of a failing insulation rising to ~450 mA (GB 50116 alarm settings 300–500 mA) and a hot terminal. */
export function electricalFault(): Shape {
  return (m, ctx) => {
    const f = ramp(ctx.elapsedMs, 120 * S);
    const k = Math.floor(ctx.t / S);
    let out = adjust(m, 'residual_current_ma', (v) => toward(v, 460, f) + 4 * gauss(ctx.seed ^ 0xe1, k));
    out = adjust(out, 'cable_temp_c', (v) => v + 45 * ramp(ctx.elapsedMs, 300 * S));
    return { metrics: out };
  };
}

/** A gas leak in the kitchen: %LEL rising toward 35 (detectors commonly alarm at 10–25 %LEL). */
export function gasLeak(): Shape {
  return (m, ctx) => ({ metrics: adjust(m, 'gas_lel_pct', (v) => v + 35 * (1 - Math.exp(-ctx.elapsedMs / (90 * S)))) });
}

/** Fire-water main losing pressure to 0.08 MPa within a minute (a supervisory signal, below 0.15 MPa). */
export function waterPressureDrop(toMpa = 0.08): Shape {
  return (m, ctx) => ({ metrics: adjust(m, 'water_pressure_mpa', (v) => toward(v, toMpa, ramp(ctx.elapsedMs, 60 * S))) });
}

/** The glass of a manual call point is broken: the device sends `manual_call_point` at once. */
export function callPoint(): Shape {
  return (m) => ({ metrics: m, flags: { callPoint: true } });
}

/** Connected but silent (hung firmware): the platform's heartbeat supervision must notice. */
export function silent(): Shape {
  return (m) => ({ metrics: m, flags: { mute: true } });
}
