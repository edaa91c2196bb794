/**
 * Deterministic randomness for the simulator. Waveforms never call Math.random: they are pure
 * functions of (seed, time), so a test with a fixed seed sees the same signal every run, and a
 * sample can be recomputed at any instant (e.g. the value a stuck sensor froze at).
 */

/** mulberry32: a tiny 32-bit PRNG, good enough for plausible noise (not for cryptography). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** murmur3 finaliser: spreads every input bit over the output. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of a seed and integer keys (keys may exceed 32 bits, e.g. epoch seconds). */
export function hash32(seed: number, ...keys: number[]): number {
  let h = fmix32(seed >>> 0);
  for (const k of keys) {
    const lo = k >>> 0;
    const hi = Math.floor(k / 4294967296) >>> 0;
    h = fmix32((h ^ Math.imul(lo, 0xcc9e2d51)) + fmix32(hi ^ 0x9e3779b9));
  }
  return h;
}

/** FNV-1a of a string, to turn ids into seeds. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Uniform in [0, 1) for (seed, keys). */
export function uniform(seed: number, ...keys: number[]): number {
  return hash32(seed, ...keys) / 4294967296;
}

/** Standard normal for (seed, key), Box–Muller over two independent hashes. */
export function gauss(seed: number, key: number): number {
  const u1 = Math.max(uniform(seed, key, 1), 1e-12);
  const u2 = uniform(seed, key, 2);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/**
 * Smooth noise: normal values at every `periodMs` knot, cosine-interpolated between them, so a
 * signal wanders slowly instead of jumping (standard deviation a little under 1).
 */
export function smoothNoise(seed: number, t: number, periodMs: number): number {
  const x = t / periodMs;
  const k = Math.floor(x);
  const f = x - k;
  const w = (1 - Math.cos(Math.PI * f)) / 2;
  return gauss(seed, k) * (1 - w) + gauss(seed, k + 1) * w;
}

/** Draws a value in [lo, hi) from a seeded generator. */
export function between(rng: () => number, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}
