import { describe, expect, it } from 'vitest';
import { residentTurnTally, TURN_GRACE_MS } from '../../../alerts/http/stats-turns.ts';

/** Repositioning on time per resident (docs/statistics.md), with a 2-h interval and 15-min grace. */
const H = 3_600_000;
const M = 60_000;
const S0 = 1_000 * H; // window start
const base = { intervalMs: 2 * H, start: S0, end: S0 + 24 * H, presence: [] as { ts: number; inBed: boolean }[], turns: [] as number[] };

describe('residentTurnTally', () => {
  it('uses a 15-minute grace', () => {
    expect(TURN_GRACE_MS).toBe(15 * M);
  });

  it('is "no data" without bed presence or turns, not 100 %', () => {
    expect(residentTurnTally(base)).toBeNull();
    // Known out of bed all day: nothing due, so no rate either (the home rate is null when due = 0).
    expect(residentTurnTally({ ...base, presenceBefore: { ts: S0 - H, inBed: false } })).toEqual({ due: 0, onTime: 0, late: 0, inBedMs: 0 });
  });

  it('counts turns within interval + grace as on time, and each passed deadline as one late turn', () => {
    const t = residentTurnTally({
      ...base,
      end: S0 + 12 * H,
      presence: [{ ts: S0, inBed: true }],
      // 2:00 and 4:15 on time (4:15 is exactly interval + grace), then nothing until 10:00.
      turns: [S0 + 2 * H, S0 + 4 * H + 15 * M, S0 + 10 * H],
    });
    // Deadlines after 4:15 (+2 h +15 min): 6:30, 8:30 passed → 2 late; the 10:00 turn restarts the
    // clock; its next deadline 12:15 is after the window end → not yet due.
    expect(t).toEqual({ due: 4, onTime: 2, late: 2, inBedMs: 12 * H });
  });

  it('stops the clock out of bed and restarts it on lying down', () => {
    const t = residentTurnTally({
      ...base,
      end: S0 + 10 * H,
      presence: [{ ts: S0, inBed: true }, { ts: S0 + 3 * H, inBed: false }, { ts: S0 + 6 * H, inBed: true }],
      turns: [S0 + 1 * H],
    });
    // 0–3 h: turn at 1 h on time; deadline 3:15 not reached before leaving at 3:00.
    // 6–10 h: deadlines 8:15 passed (late), 10:15 not reached.
    expect(t).toEqual({ due: 2, onTime: 1, late: 1, inBedMs: 7 * H });
  });

  it('anchors the first interval at the last turn before the month and counts earlier deadlines to that month', () => {
    const t = residentTurnTally({
      ...base,
      end: S0 + 4 * H,
      presenceBefore: { ts: S0 - 48 * H, inBed: true },
      turnBefore: S0 - 3 * H, // deadline -0:45 belongs to last month
      turns: [S0 + 1 * H], // late for last month's deadline, nothing due this month before it
    });
    // From the 1:00 turn: 3:15 passed → late.
    expect(t).toEqual({ due: 1, onTime: 0, late: 1, inBedMs: 4 * H });
  });

  it('merges a staff record and the bed sensor seeing the same turn', () => {
    const t = residentTurnTally({ ...base, end: S0 + 3 * H, presence: [{ ts: S0, inBed: true }], turns: [S0 + 90 * M, S0 + 93 * M] });
    expect(t).toEqual({ due: 1, onTime: 1, late: 0, inBedMs: 3 * H });
  });

  it('judges a resident without a bed sensor from the first turn staff recorded', () => {
    const t = residentTurnTally({ ...base, end: S0 + 8 * H, turns: [S0 + 2 * H, S0 + 4 * H, S0 + 7 * H] });
    // 2:00 starts the clock; 4:00 on time; 7:00 late (6:15 passed); 9:15 not yet.
    expect(t).toEqual({ due: 2, onTime: 1, late: 1, inBedMs: 6 * H });
  });
});
