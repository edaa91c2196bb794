import { gauss, smoothNoise, uniform } from './prng.ts';

/**
 * Baseline (healthy, nothing happening) signals of every device family. Pure: each is a function
 * of its parameters and the time `t` (ms since epoch); no I/O, no clock, no Math.random. Values are
 * raw (unrounded, unclamped); device-sim/model.ts rounds and clamps them to the metric catalogue.
 * Scenario shapes that distort these live in fire-shapes.ts and care-shapes.ts.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** The demo site is in China (UTC+8): diurnal and circadian cycles follow local time. */
const LOCAL_OFFSET_H = 8;

/** Local hour of day in [0, 24). */
export function localHour(t: number): number {
  const h = (t / HOUR + LOCAL_OFFSET_H) % 24;
  return h < 0 ? h + 24 : h;
}

/** One sample of noise per second: readings within the same second are the same reading. */
function secondKey(t: number): number {
  return Math.floor(t / 1000);
}

export interface RoomClimate {
  readonly seed: number;
  /** Daily mean air temperature of the room, °C (heated care home: 20–24, kitchen warmer). */
  readonly meanC: number;
  /** Half the day/night swing, °C. */
  readonly diurnalAmpC: number;
}

/** Room air temperature: diurnal swing peaking mid-afternoon, slow wander, sensor noise. */
export function roomTemperature(p: RoomClimate, t: number): number {
  const diurnal = p.diurnalAmpC * Math.cos((2 * Math.PI * (localHour(t) - 15)) / 24);
  return p.meanC + diurnal + 0.3 * smoothNoise(p.seed, t, 20 * MINUTE) + 0.05 * gauss(p.seed ^ 0x51, secondKey(t));
}

export interface SmokeChamber {
  readonly seed: number;
  /** Clean-air reading of this detector's optical chamber, %/m (typically 0.05–0.2). */
  readonly baselinePct: number;
}

/** Clean-air obscuration reading: the chamber's offset plus a little optical noise, never below 0. */
export function smokeBaseline(p: SmokeChamber, t: number): number {
  return Math.max(0, p.baselinePct + 0.015 * smoothNoise(p.seed, t, 5 * MINUTE) + 0.01 * gauss(p.seed ^ 0x5e, secondKey(t)));
}

export interface VitalProfile {
  readonly seed: number;
  readonly heartRateBpm: number;
  readonly respRateBpm: number;
  readonly spo2Pct: number;
  readonly bodyTempC: number;
  readonly systolicMmHg: number;
}

/** Circadian factor in [-1, 1]: lowest around 04:00 local, highest around 16:00. */
function circadian(t: number): number {
  return Math.cos((2 * Math.PI * (localHour(t) - 16)) / 24);
}

export interface Vitals {
  readonly heart_rate_bpm: number;
  readonly resp_rate_bpm: number;
  readonly spo2_pct: number;
  readonly body_temp_c: number;
  readonly systolic_bp_mmhg: number;
}

/**
 * A resident's vital signs with natural variability: a circadian swing, a slow wander (minutes)
 * and beat-to-beat noise. Amplitudes keep a healthy resident inside the NEWS2 zero-score bands
 * (RCP 2017: pulse 51–90, respiration 12–20, SpO2 ≥ 96 on Scale 1, temperature 36.1–38.0,
 * systolic 111–219) most of the time, so the baseline does not raise care alerts by itself.
 */
export function vitals(p: VitalProfile, t: number): Vitals {
  const c = circadian(t);
  const k = secondKey(t);
  return {
    heart_rate_bpm: p.heartRateBpm + 3 * c + 2.5 * smoothNoise(p.seed ^ 0x11, t, 5 * MINUTE) + 1.2 * gauss(p.seed ^ 0x12, k),
    resp_rate_bpm: p.respRateBpm + 0.8 * c + 0.8 * smoothNoise(p.seed ^ 0x21, t, 7 * MINUTE) + 0.5 * gauss(p.seed ^ 0x22, k),
    spo2_pct: Math.min(100, p.spo2Pct + 0.5 * smoothNoise(p.seed ^ 0x31, t, 10 * MINUTE) + 0.4 * gauss(p.seed ^ 0x32, k)),
    body_temp_c: p.bodyTempC + 0.2 * c + 0.08 * smoothNoise(p.seed ^ 0x41, t, 30 * MINUTE) + 0.02 * gauss(p.seed ^ 0x42, k),
    systolic_bp_mmhg: p.systolicMmHg + 5 * c + 4 * smoothNoise(p.seed ^ 0x51, t, 20 * MINUTE) + 2 * gauss(p.seed ^ 0x52, k),
  };
}

/** Blood pressure is a cuff measurement, not continuous: one reading per this period. */
export const BP_PERIOD_MS = 15 * MINUTE;

/** True for the one telemetry sample of each BP period that carries a cuff reading. */
export function hasBpReading(t: number, offsetMs: number, intervalMs: number): boolean {
  const phase = (((t - offsetMs) % BP_PERIOD_MS) + BP_PERIOD_MS) % BP_PERIOD_MS;
  return phase < intervalMs;
}

export interface TurnSchedule {
  readonly seed: number;
  /** Repositioning interval of the resident (registry turnIntervalMin), ms. */
  readonly intervalMs: number;
  /** Where in the interval staff turn this resident, ms. */
  readonly offsetMs: number;
}

/** How long a turn shows as a movement burst on the bed sensor. */
export const TURN_BURST_MS = 60_000;

/** Index of the turn whose burst covers `t`, or undefined when no turn is happening. */
export function turnAt(p: TurnSchedule, t: number): number | undefined {
  const x = t - p.offsetMs;
  const k = Math.floor(x / p.intervalMs);
  return x - k * p.intervalMs < TURN_BURST_MS ? k : undefined;
}

/**
 * Bed-sensor movement index (0–100) of a bedridden resident: near still, an occasional small
 * shift, and a burst of 40–80 while staff turn them (issue 4: turns are detected from movement).
 */
export function movementIndex(p: TurnSchedule, t: number): number {
  const turn = turnAt(p, t);
  if (turn !== undefined) return 40 + 40 * uniform(p.seed, turn, 7) + 5 * gauss(p.seed ^ 0x61, secondKey(t));
  const minute = Math.floor(t / MINUTE);
  const shift = uniform(p.seed, minute, 9) < 0.04 ? 10 + 15 * uniform(p.seed, minute, 10) : 0;
  return 2 + shift + 1.5 * Math.abs(gauss(p.seed ^ 0x62, secondKey(t)));
}

export interface ContinenceProfile {
  readonly seed: number;
  /** Whether wet episodes happen by themselves (demo) or only when a scenario asks (tests). */
  readonly spontaneous: boolean;
}

const WET_WINDOW_MS = 6 * HOUR;
const WET_RISE_MS = 10 * MINUTE;

/**
 * Pad wetness, %: dry (2–6 %) most of the time; when spontaneous, in some 6-hour windows an
 * episode starts at a random time, rises over ten minutes to 60–90 % and stays until the window
 * ends (the change). Deterministic per (seed, window).
 */
export function wetness(p: ContinenceProfile, t: number): number {
  const dry = 4 + 1.5 * smoothNoise(p.seed ^ 0x71, t, 30 * MINUTE);
  if (!p.spontaneous) return dry;
  const w = Math.floor(t / WET_WINDOW_MS);
  if (uniform(p.seed, w, 1) >= 0.25) return dry;
  const start = w * WET_WINDOW_MS + uniform(p.seed, w, 2) * (WET_WINDOW_MS - 2 * HOUR);
  if (t < start) return dry;
  const peak = 60 + 30 * uniform(p.seed, w, 3);
  return dry + (peak - dry) * Math.min(1, (t - start) / WET_RISE_MS);
}

export interface BatteryProfile {
  /** Charge when the simulation started, %. */
  readonly startPct: number;
  readonly drainPctPerDay: number;
  /** When the simulation started, ms. */
  readonly t0: number;
}

/** Battery charge draining slowly and linearly (a radio sensor lasts months to years). */
export function battery(p: BatteryProfile, t: number): number {
  return p.startPct - (p.drainPctPerDay * Math.max(0, t - p.t0)) / DAY;
}

export interface RadioProfile {
  readonly seed: number;
  /** Mean received signal strength at the gateway, dBm. */
  readonly meanDbm: number;
}

/** Received signal strength: slow fading plus per-packet noise. */
export function rssi(p: RadioProfile, t: number): number {
  return p.meanDbm + 3 * smoothNoise(p.seed, t, 2 * MINUTE) + 1.5 * gauss(p.seed ^ 0x81, secondKey(t));
}

export interface CircuitProfile {
  readonly seed: number;
  /** Normal residual (leakage) current of the monitored circuit, mA. */
  readonly residualMa: number;
  /** Cable temperature rise over room air at normal load, °C. */
  readonly cableRiseC: number;
}

/** Residual current and cable temperature of a healthy circuit: load follows the day. */
export function circuit(p: CircuitProfile, t: number, airC: number): { residual_current_ma: number; cable_temp_c: number } {
  const load = 0.6 + 0.4 * Math.max(0, Math.cos((2 * Math.PI * (localHour(t) - 12)) / 24));
  return {
    residual_current_ma: Math.max(0, p.residualMa * (0.8 + 0.3 * load) + 3 * smoothNoise(p.seed, t, 10 * MINUTE) + gauss(p.seed ^ 0x91, secondKey(t))),
    cable_temp_c: airC + p.cableRiseC * load + 0.2 * gauss(p.seed ^ 0x92, secondKey(t)),
  };
}

/** Combustible gas in clean kitchen air, %LEL: close to zero. */
export function gasLevel(seed: number, t: number): number {
  return Math.max(0, 0.4 + 0.3 * smoothNoise(seed, t, 10 * MINUTE) + 0.1 * gauss(seed ^ 0xa1, secondKey(t)));
}

export interface MainsProfile {
  readonly seed: number;
  /** Static pressure of the fire-water main, MPa (GB 50084 wants ≥ 0.05 MPa at the sprinkler; mains sit well above). */
  readonly meanMpa: number;
}

/** Fire-water main pressure: steady with small fluctuations from the city supply. */
export function waterPressure(p: MainsProfile, t: number): number {
  return p.meanMpa + 0.01 * smoothNoise(p.seed, t, 15 * MINUTE) + 0.002 * gauss(p.seed ^ 0xb1, secondKey(t));
}
