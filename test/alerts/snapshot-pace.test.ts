import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SNAPSHOT_COST_FACTOR, SNAPSHOT_EVERY_MS, SNAPSHOT_MAX_EVERY_MS, snapshotDelayMs } from '../../alerts/snapshot-pace.ts';

describe('rule-state snapshots are paced by what they cost', () => {
  it('a cheap save: every 3 s, as for a site of homes (issue 3)', () => {
    expect(snapshotDelayMs(0)).toBe(SNAPSHOT_EVERY_MS);
    expect(snapshotDelayMs(40)).toBe(SNAPSHOT_EVERY_MS);
  });

  it('a costly save waits 4× its duration, so saving takes at most a fifth of the time', () => {
    // 102,000 devices: one save took ~650 ms of CPU (session 9); sliced over a loaded loop it lasts longer.
    expect(snapshotDelayMs(2_000)).toBe(8_000);
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e7, noNaN: true }), (took) => {
        const wait = snapshotDelayMs(took);
        expect(wait).toBeGreaterThanOrEqual(SNAPSHOT_EVERY_MS);
        expect(wait).toBeLessThanOrEqual(SNAPSHOT_MAX_EVERY_MS);
        // Below the cap, the save's share of the time is at most 1 / (1 + factor).
        if (took * SNAPSHOT_COST_FACTOR <= SNAPSHOT_MAX_EVERY_MS) expect(took / (took + wait)).toBeLessThanOrEqual(1 / (1 + SNAPSHOT_COST_FACTOR) + 1e-12);
      }),
    );
  });

  it('never more than 15 s between saves, whatever a save took; nonsense durations give the period', () => {
    // A restored vital-signs monitor (5 s reports, 30 s budget) must not look silent after a quick restart.
    expect(SNAPSHOT_MAX_EVERY_MS).toBeLessThanOrEqual(15_000);
    expect(snapshotDelayMs(60_000)).toBe(SNAPSHOT_MAX_EVERY_MS);
    expect(snapshotDelayMs(Number.POSITIVE_INFINITY)).toBe(SNAPSHOT_EVERY_MS);
    expect(snapshotDelayMs(Number.NaN)).toBe(SNAPSHOT_EVERY_MS);
    expect(snapshotDelayMs(-5)).toBe(SNAPSHOT_EVERY_MS);
  });
});
