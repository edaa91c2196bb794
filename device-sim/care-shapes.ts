import { gauss } from './prng.ts';
import { adjust, ramp, toward, without, type Shape } from './shape.ts';

/**
 * Care-side scenario shapes (issue 4 "rule tests on simulated streams"). Applied to every device
 * of a resident; each shape only touches the metrics the device actually sends (a bed sensor has
 * pulse and respiration but no SpO2).
 */

const S = 1000;
function noise(seed: number, salt: number, t: number): number {
  return gauss(seed ^ salt, Math.floor(t / S));
}

/**
 * Sustained desaturation: SpO2 falls over a minute to ~`targetPct` (default 85 %) and stays there,
 * with compensatory tachycardia and tachypnoea. NEWS2 scores SpO2 ≤ 91 % as 3 on Scale 1, and
 * issue 4 names "60 s below 90 %" as real, so the target sits well under 90 % including noise.
 */
export function desaturation(targetPct = 85): Shape {
  return (m, ctx) => {
    const f = ramp(ctx.elapsedMs, 60 * S);
    let out = adjust(m, 'spo2_pct', (v) => toward(v, targetPct, f) + 0.6 * noise(ctx.seed, 0xc1, ctx.t));
    out = adjust(out, 'heart_rate_bpm', (v) => v + 12 * f);
    out = adjust(out, 'resp_rate_bpm', (v) => v + 6 * f);
    return { metrics: out };
  };
}

/** Length of an artefact dip: issue 4 names a 5-second SpO2 dip from movement as an artefact. */
export const ARTEFACT_DIP_MS = 4_500;
export const ARTEFACT_DURATION_MS = 20 * S;

/** Probe movement artefact: SpO2 reads ~78 % for under 5 s, pulse jumps, then all is normal again. */
export function artefactDip(): Shape {
  return (m, ctx) => {
    if (ctx.elapsedMs >= ARTEFACT_DIP_MS) return { metrics: m };
    let out = adjust(m, 'spo2_pct', () => 78 + 2 * noise(ctx.seed, 0xc2, ctx.t));
    out = adjust(out, 'heart_rate_bpm', (v) => v + 15);
    return { metrics: out };
  };
}

/** Heart rate drifting to ~`targetBpm` over 30 s and staying (NEWS2 scores pulse ≤ 40 as 3). */
export function heartRateTo(targetBpm: number): Shape {
  return (m, ctx) => ({
    metrics: adjust(m, 'heart_rate_bpm', (v) => toward(v, targetBpm, ramp(ctx.elapsedMs, 30 * S)) + 1.5 * noise(ctx.seed, 0xc3, ctx.t)),
  });
}
/** Bradycardia: pulse ~38 bpm (NEWS2: ≤ 40 scores 3). */
export const bradycardia = (): Shape => heartRateTo(38);
/** Tachycardia: pulse ~138 bpm (NEWS2: ≥ 131 scores 3), breathing a little faster. */
export function tachycardia(): Shape {
  const hr = heartRateTo(138);
  return (m, ctx) => ({ metrics: adjust(hr(m, ctx).metrics, 'resp_rate_bpm', (v) => v + 5 * ramp(ctx.elapsedMs, 30 * S)) });
}

/** Fever: body temperature climbing to ~39.3 °C over ten minutes (NEWS2: ≥ 39.1 scores 2), pulse and breathing up. */
export function fever(targetC = 39.3): Shape {
  return (m, ctx) => {
    const f = ramp(ctx.elapsedMs, 600 * S);
    let out = adjust(m, 'body_temp_c', (v) => toward(v, targetC, f));
    out = adjust(out, 'heart_rate_bpm', (v) => v + 15 * f);
    out = adjust(out, 'resp_rate_bpm', (v) => v + 4 * f);
    return { metrics: out };
  };
}

/**
 * Out of bed: the bed reads empty (it cannot measure pulse or breathing without a body on it), with
 * a movement burst as the resident gets up. With `returnAfterMs` they lie down again then.
 */
export function bedExit(returnAfterMs?: number): Shape {
  return (m, ctx) => {
    if (returnAfterMs !== undefined && ctx.elapsedMs >= returnAfterMs) {
      const since = ctx.elapsedMs - returnAfterMs;
      return { metrics: since < 10 * S ? adjust(m, 'movement_index', () => 70) : m };
    }
    if (!('bed_occupied' in m)) return { metrics: m };
    const out = without(m, ['heart_rate_bpm', 'resp_rate_bpm']);
    return { metrics: { ...out, bed_occupied: false, movement_index: ctx.elapsedMs < 10 * S ? 85 : 0 } };
  };
}
/** A bed exit with return ends itself this long after the return. */
export const BED_RETURN_TAIL_MS = 30 * S;

/** A fall out of bed: the bed sensor detects the impact (a `fall` event), the bed is empty, pulse rises. */
export function fall(): Shape {
  return (m, ctx) => {
    if ('bed_occupied' in m) {
      const out = without(m, ['heart_rate_bpm', 'resp_rate_bpm']);
      return { metrics: { ...out, bed_occupied: false, movement_index: ctx.elapsedMs < 5 * S ? 100 : 0 }, flags: { fall: true } };
    }
    return { metrics: adjust(m, 'heart_rate_bpm', (v) => v + 20) };
  };
}

/**
 * A call button pressed (nurse call, pull cord, or the call key of a bed sensor or monitor): the
 * device sends `sos_button` at once. A press is momentary, so the scenario ends by itself after
 * CALL_PRESS_MS and the next `call` is a new press.
 */
export function callButton(): Shape {
  return (m) => ({ metrics: m, flags: { call: true } });
}
export const CALL_PRESS_MS = 5 * S;

/** Incontinence: the pad's wetness rises to ~85 % over three minutes and stays until changed (scenario cleared). */
export function wetnessEpisode(peakPct = 85): Shape {
  return (m, ctx) => ({ metrics: adjust(m, 'wetness_pct', (v) => toward(v, peakPct, ramp(ctx.elapsedMs, 180 * S))) });
}

/** Nobody turns the resident: the bed sensor shows no turning bursts (a missed repositioning). */
export function missedTurn(): Shape {
  return (m) => ({ metrics: adjust(m, 'movement_index', (v) => Math.min(v, 6)) });
}
