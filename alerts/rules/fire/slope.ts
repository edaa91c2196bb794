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
 * Appends a sample and drops those older than `windowMs` before it. At most `maxSamples` are kept:
 * a sample closer than windowMs/maxSamples to the previous stored one replaces it, so a chatty
 * device cannot grow the state.
 */
export function pushSample(samples: readonly number[], ts: number, value: number, windowMs: number, maxSamples = 32): number[] {
  const out = samples.slice();
  const lastTs = out.length >= 2 ? (out[out.length - 2] as number) : -Infinity;
  if (ts < lastTs) return out; // out-of-order (a redelivery): the window only moves forward
  if (ts - lastTs < windowMs / maxSamples) out.splice(out.length - 2, 2);
  out.push(ts, value);
  let drop = 0;
  while (drop < out.length && (out[drop] as number) < ts - windowMs) drop += 2;
  return drop > 0 ? out.slice(drop) : out;
}
