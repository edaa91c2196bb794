/**
 * Least-squares slope of a short series, in value units per minute. Samples are stored flat as
 * `[t0, v0, t1, v1, …]` (device ms) to keep rule state compact JSON. Centring the times keeps the
 * arithmetic exact enough with epoch-millisecond magnitudes.
 */
export function slopePerMin(samples: readonly number[]): number {
  const n = samples.length / 2;
  if (n < 2) return 0;
  let tMean = 0;
  let vMean = 0;
  for (let i = 0; i < samples.length; i += 2) {
    tMean += samples[i] as number;
    vMean += samples[i + 1] as number;
  }
  tMean /= n;
  vMean /= n;
  let cov = 0;
  let varT = 0;
  for (let i = 0; i < samples.length; i += 2) {
    const dt = (samples[i] as number) - tMean;
    cov += dt * ((samples[i + 1] as number) - vMean);
    varT += dt * dt;
  }
  return varT === 0 ? 0 : (cov / varT) * 60_000;
}

/**
 * Appends a sample to a window of the last `windowMs` that keeps its span at any reporting
 * interval (0.5 s to 60 s) while holding at most about `maxSamples + 2` samples:
 *
 * - Thinning: the newest sample is always stored (the fit must see the latest reading), but it is
 *   provisional: a new sample closer than windowMs/maxSamples to the last *kept* sample (the one
 *   before it) replaces it, a later one keeps it. Measuring from the last kept sample rather than
 *   from the provisional newest one is the point: a detector reporting faster than the spacing
 *   (1 Hz with a 60 s window and 32 samples) then keeps one sample per ~1.9 s across the whole
 *   window, where replacing "the last stored" one forever left a window of one sample and no slope.
 *   Thinning was chosen over averaging into time buckets because it keeps the stored values real
 *   readings (what the alarm message reports) and the state format unchanged; 32 samples across
 *   the window already average out sensor noise in the least-squares fit.
 * - Anchor: the newest sample at or before the window start is kept (if not older than two
 *   windows), so a detector reporting every 30 s or 60 s still has a window spanning windowMs.
 *   Dropping every sample older than windowMs left a single sample at a 60 s interval.
 *
 * Out-of-order samples (redelivery) are ignored: the window only moves forward.
 */
export function pushSample(samples: readonly number[], ts: number, value: number, windowMs: number, maxSamples = 32): number[] {
  const out = samples.slice();
  const lastTs = out.length >= 2 ? (out[out.length - 2] as number) : -Infinity;
  if (ts < lastTs) return out;
  const keptTs = out.length >= 4 ? (out[out.length - 4] as number) : -Infinity;
  if (ts === lastTs || ts - keptTs < windowMs / maxSamples) out.splice(out.length - 2, 2);
  out.push(ts, value);
  const start = ts - windowMs;
  let drop = 0;
  // Drop a leading sample while the next one is still at or before the window start (that one
  // becomes the anchor), and drop an anchor older than two windows (a gap in reporting).
  while (drop + 2 < out.length && (out[drop + 2] as number) <= start) drop += 2;
  if (drop + 2 < out.length && (out[drop] as number) < ts - 2 * windowMs) drop += 2;
  return drop > 0 ? out.slice(drop) : out;
}

/**
 * The samples a fit should use at `ts`: those inside the window, with the anchor (a sample before
 * the window start, see pushSample) moved to the window start by linear interpolation towards the
 * next sample. Without that, a sparse reporter's fit would span up to a window plus an interval
 * (90 s of a 60 s window at a 45 s interval) and dilute a rise that began inside the window.
 */
export function windowSamples(samples: readonly number[], ts: number, windowMs: number): number[] {
  const start = ts - windowMs;
  if (samples.length < 4 || (samples[0] as number) >= start) return samples.slice();
  const [t0, v0, t1, v1] = samples as [number, number, number, number];
  const out = samples.slice();
  if (t1 <= start) return out.slice(2); // cannot happen after pushSample; be safe
  out[0] = start;
  out[1] = v0 + ((v1 - v0) * (start - t0)) / (t1 - t0);
  return out;
}
