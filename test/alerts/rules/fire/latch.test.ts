import { describe, expect, it } from 'vitest';
import { newLatch, stepAbove, stepBelow, type Latch } from '../../../../alerts/rules/fire/latch.ts';
import { pushSample, slopePerMin, windowSamples } from '../../../../alerts/rules/fire/slope.ts';

function edges(values: number[], step: (l: Latch, v: number, now: number) => ReturnType<typeof stepAbove>, periodMs = 10_000): string[] {
  let latch = newLatch();
  const out: string[] = [];
  values.forEach((v, i) => {
    const r = step(latch, v, i * periodMs);
    latch = r.latch;
    if (r.edge !== undefined) out.push(`${r.edge}@${i}`);
  });
  return out;
}

describe('latch (set/clear levels with hold times)', () => {
  it('sets after setCount readings, ignores the dead band, clears after the hold', () => {
    const step = (l: Latch, v: number, now: number) => stepAbove(l, v, 10, 8, now, { setCount: 2, clearHoldMs: 20_000 });
    expect(edges([10, 7, 10, 10, 9, 7, 7, 9, 7, 7, 7], step)).toEqual(['set@3', 'clear@10']);
  });

  it('a falling latch mirrors a rising one', () => {
    const step = (l: Latch, v: number, now: number) => stepBelow(l, v, 0.15, 0.17, now, {});
    expect(edges([0.2, 0.149, 0.16, 0.17], step)).toEqual(['set@1', 'clear@3']);
  });
});

describe('least-squares slope', () => {
  it('is exact on a line and in units per minute', () => {
    const s: number[] = [];
    for (let t = 0; t <= 60_000; t += 10_000) s.push(1.7e12 + t, 20 + (t / 60_000) * 8);
    expect(slopePerMin(s)).toBeCloseTo(8, 9);
  });

  it('keeps the window (plus one anchor before it) and a bounded number of samples', () => {
    let s: number[] = [];
    for (let t = 0; t <= 300_000; t += 100) s = pushSample(s, t, t, 60_000, 32);
    // 33 kept across the closed window (one per 1.875 s), the provisional newest, the anchor.
    expect(s.length / 2).toBeLessThanOrEqual(32 + 3);
    // The anchor: the newest sample at or before the window start, at most one spacing before it.
    expect(s[0]).toBeLessThanOrEqual(240_000);
    expect(s[0]).toBeGreaterThanOrEqual(240_000 - 60_000 / 32);
    expect(s[s.length - 2]).toBe(300_000);
    expect(pushSample(s, 100, 1, 60_000)).toEqual(s);
  });

  it.each([100, 500, 1000, 10_000, 30_000, 60_000])('spans the whole window at a %i ms reporting interval', (intervalMs) => {
    let s: number[] = [];
    for (let t = 0; t <= 600_000; t += intervalMs) s = pushSample(s, t, t / 1000, 60_000, 32);
    const fit = windowSamples(s, 600_000, 60_000);
    expect(fit[0]).toBe(540_000);
    expect(fit[fit.length - 2]).toBe(600_000);
    expect(slopePerMin(fit)).toBeCloseTo(60, 6);
    // Samples inside the window stay at least window/32 apart (the newest excepted).
    for (let i = 2; i < s.length - 2; i += 2) expect((s[i + 2] as number) - (s[i] as number)).toBeGreaterThanOrEqual(Math.min(intervalMs, 60_000 / 32) - 1e-9);
  });

  it('drops an anchor older than two windows (a gap in reporting is not a slope)', () => {
    const s = pushSample(pushSample([], 0, 20, 60_000), 200_000, 40, 60_000);
    expect(s).toEqual([200_000, 40]);
  });
});
