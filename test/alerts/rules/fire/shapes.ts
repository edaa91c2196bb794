import type { Device } from '../../../../contract/registry.ts';
import type { MetricName } from '../../../../contract/metrics.ts';
import type { EventPayload } from '../../../../contract/payloads.ts';
import type { RuleInput } from '../../../../alerts/rules/types.ts';
import { demoRegistry } from '../../../support/registry.ts';

/**
 * Recorded signal shapes: time series of RuleInputs as the engine would feed them, built from the
 * demo site's real devices. Device clocks run 40 ms behind the platform (receive latency).
 */
export const T0 = Date.UTC(2026, 0, 1, 8, 0, 0);
const LATENCY_MS = 40;

export function device(id: string): Device {
  const d = demoRegistry().device(id);
  if (d === undefined) throw new Error(`no demo device ${id}`);
  return d;
}

type Metrics = Partial<Record<MetricName, number | boolean>>;

export function telemetry(d: Device, ts: number, metrics: Metrics): RuleInput {
  return { type: 'telemetry', device: d, ts, receivedTs: ts + LATENCY_MS, now: ts + LATENCY_MS, metrics };
}

export function event(d: Device, ts: number, type: EventPayload['type'], extra: Partial<EventPayload> = {}): RuleInput {
  return { type: 'event', device: d, ts, receivedTs: ts + LATENCY_MS, now: ts + LATENCY_MS, event: { ts, seq: 1, type, ...extra } };
}

export function status(d: Device, ts: number, online: boolean): RuleInput {
  return { type: 'status', device: d, ts, receivedTs: ts + LATENCY_MS, now: ts + LATENCY_MS, online };
}

export function tick(now: number): RuleInput {
  return { type: 'tick', now };
}

/** Deterministic noise in [-1, 1] (a small LCG), so every run sees the same "recording". */
export function noise(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 0xffffffff) * 2 - 1;
  };
}

/** Readings of one device every `periodS` for `durationS`, `values(tS)` giving the metrics at t seconds. */
export function series(d: Device, from: number, durationS: number, periodS: number, values: (tS: number) => Metrics): RuleInput[] {
  const out: RuleInput[] = [];
  for (let t = 0; t <= durationS; t += periodS) out.push(telemetry(d, from + t * 1000, values(t)));
  return out;
}

/** Ticks every `periodS` from `from` for `durationS`. */
export function ticks(from: number, durationS: number, periodS = 1): RuleInput[] {
  const out: RuleInput[] = [];
  for (let t = 0; t <= durationS; t += periodS) out.push(tick(from + t * 1000 + 500));
  return out;
}

/** Merges streams into the order the engine sees them (by platform time, stable). */
export function merge(...streams: RuleInput[][]): RuleInput[] {
  return streams.flat().map((x, i) => ({ x, i })).sort((a, b) => a.x.now - b.x.now || a.i - b.i).map((e) => e.x);
}

const round = (v: number, digits: number): number => Number(v.toFixed(digits));

/**
 * Flaming fire at a multi-sensor smoke detector: quiet for 60 s, then obscuration climbing
 * ~1.5 %/m every 10 s and air temperature ~24 °C/min (UL 217/EN 54 flaming test fires are of
 * this order).
 */
export function flamingFire(d: Device, from = T0): RuleInput[] {
  const n = noise(1);
  return series(d, from, 240, 10, (t) => {
    const fire = Math.max(0, t - 60);
    return { smoke_obscuration_pct_per_m: round(Math.min(30, 0.1 + 0.15 * fire + 0.02 * n()), 2), temperature_c: round(22 + 0.4 * fire + 0.1 * n(), 1) };
  });
}

/** Smouldering fire: smoke creeping up 0.3 %/m per minute after 60 s, temperature barely moving. */
export function smoulderingFire(d: Device, from = T0): RuleInput[] {
  const n = noise(2);
  return series(d, from, 20 * 60, 10, (t) => {
    const fire = Math.max(0, t - 60);
    return { smoke_obscuration_pct_per_m: round(0.1 + (0.3 * fire) / 60 + 0.03 * n(), 2), temperature_c: round(22 + (0.2 * fire) / 60 + 0.1 * n(), 1) };
  });
}

/**
 * Cooking smoke drifting from the kitchen to the dining-room detector: a burst to 5 %/m for 40 s,
 * gone within the 60 s verification window; the kitchen heat detector sees the stove's warmth.
 */
export function cookingSmoke(smoke: Device, heat: Device, from = T0): RuleInput[] {
  const n = noise(3);
  const sd = series(smoke, from, 8 * 60, 10, (t) => {
    const burst = t >= 120 && t < 160 ? 5 : t >= 110 && t < 170 ? 1.8 : 0.1;
    return { smoke_obscuration_pct_per_m: round(burst + 0.02 * n(), 2), temperature_c: round(23 + 0.1 * n(), 1) };
  });
  const hd = series(heat, from + 3000, 8 * 60, 10, (t) => ({ temperature_c: round(26 + Math.min(8, Math.max(0, t - 60) * 0.05) + 0.2 * n(), 1) }));
  return merge(sd, hd);
}

/** Shower steam into an en-suite bedroom's detector: a fast rise to 6 %/m, 30 s, then clear. */
export function steam(d: Device, from = T0): RuleInput[] {
  const n = noise(4);
  return series(d, from, 6 * 60, 10, (t) => {
    const x = t < 60 ? 0.1 : t < 80 ? 3 * ((t - 50) / 10) : t < 110 ? 6 : t < 130 ? 1 : 0.2;
    return { smoke_obscuration_pct_per_m: round(x + 0.05 * n(), 2), temperature_c: round(23 + (t > 60 && t < 300 ? 2.5 : 0) + 0.1 * n(), 1) };
  });
}

/** A detector gathering dust: clean-air reading drifting 0.1 → 1.7 %/m over 24 h, one reading a minute. */
export function dirtyDrift(d: Device, from = T0): RuleInput[] {
  const n = noise(5);
  return series(d, from, 24 * 3600, 60, (t) => ({ smoke_obscuration_pct_per_m: round(0.1 + (1.6 * t) / (24 * 3600) + 0.05 * n(), 2), temperature_c: round(22 + 0.3 * n(), 1) }));
}

/** Temperature frozen at one value for `stuckS`, then moving again. */
export function stuckTemperature(d: Device, stuckS: number, from = T0): RuleInput[] {
  const n = noise(6);
  return series(d, from, stuckS + 600, 10, (t) => ({
    temperature_c: t < stuckS ? 23.4 : round(23 + 0.3 * n(), 1),
    smoke_obscuration_pct_per_m: round(0.1 + 0.02 * n(), 2),
  }));
}

/** One metric hovering at `level` with ±`amp` noise for `durationS`. */
export function hovering(d: Device, metric: MetricName, level: number, amp: number, durationS: number, periodS: number, from = T0, extra: Metrics = {}): RuleInput[] {
  const n = noise(7);
  return series(d, from, durationS, periodS, () => ({ ...extra, [metric]: round(level + amp * n(), 4) }));
}

/** Heartbeats of every device of the given homes at their kind's telemetry period. */
export function heartbeats(devices: readonly Device[], intervalS: (d: Device) => number, from: number, durationS: number): RuleInput[] {
  return merge(
    ...devices.map((d, i) => {
      const period = intervalS(d);
      const offset = (i * 7919) % (period * 1000); // phases spread over the period, as real devices drift
      const out: RuleInput[] = [];
      for (let t = offset; t <= durationS * 1000; t += period * 1000) out.push(telemetry(d, from + t, {}));
      return out;
    }),
  );
}
