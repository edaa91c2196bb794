/**
 * Repositioning done on time, per resident and month, from the stored turns and bed presence
 * (alerts/persistence/turn-history.ts). Pure. Definitions are in docs/statistics.md.
 *
 * While a resident is in bed, a turn is due `turnIntervalMin` after the last turn (or after lying
 * down) — the individualised schedule of the NPIAP/EPUAP 2019 pressure-injury guideline, 1–4 h in
 * the registry (issue 4). A due turn is *on time* when the next turn comes at most interval + grace
 * after that anchor. Each deadline (anchor + k·interval + grace, k = 1, 2, …) that passes with no
 * turn while the resident is still in bed is one *late* (missed) turn, so a resident left six hours
 * on a 2-h interval has missed three, not one. Leaving the bed stops the clock; lying down restarts
 * it. An on-time turn belongs to the month it was done in, a missed one to the month its deadline
 * (with grace) fell in, so no turn is counted twice across months.
 */

/**
 * Grace after the interval before a turn counts as late. No standard sets it: 15 min is a carewatch
 * choice (a round of turns on a floor takes about that long), documented in docs/statistics.md.
 */
export const TURN_GRACE_MS = 15 * 60_000;
/**
 * A turn less than this after the previous turn is the same repositioning seen twice (staff record
 * it and the bed sensor sees the movement): it is not another due turn and does not move the clock.
 */
export const TURN_MERGE_MS = 10 * 60_000;

/** How far back a last turn anchors the first interval of a resident with no bed presence data. */
export const STAFF_ONLY_LOOKBACK_MS = 24 * 3_600_000;

export interface PresenceChange {
  readonly ts: number;
  readonly inBed: boolean;
}

export interface ResidentTurnInput {
  readonly intervalMs: number;
  readonly graceMs?: number;
  /** The month window, its end already cut at "now" for a month in progress. */
  readonly start: number;
  readonly end: number;
  /** The last bed presence point before the window (its time is when that state began). */
  readonly presenceBefore?: PresenceChange;
  /** Bed presence points inside the window. */
  readonly presence: readonly PresenceChange[];
  /** The last turn before the window. */
  readonly turnBefore?: number;
  /** Turn times inside the window (sensor and staff together, in any order). */
  readonly turns: readonly number[];
}

export interface TurnTally {
  /** Due turns whose outcome is known this month: onTime + late. */
  readonly due: number;
  readonly onTime: number;
  /** Deadlines passed in bed without a turn. */
  readonly late: number;
  /** Time in bed inside the window that the tally covers (ms). */
  readonly inBedMs: number;
}

/**
 * The tally for one resident, or null when there is nothing to judge by (no bed presence known and no
 * turn in the window). A resident with no bed presence at all but recorded turns (no bed sensor,
 * staff record the turns) is taken to be in bed from the first turn known (before or in the window).
 */
export function residentTurnTally(input: ResidentTurnInput): TurnTally | null {
  const { intervalMs: I, start, end } = input;
  const G = input.graceMs ?? TURN_GRACE_MS;
  if (end <= start || I <= 0) return null;
  const turns = input.turns.filter((t) => t >= start && t < end).sort((a, b) => a - b);
  const presence = input.presence.filter((p) => p.ts >= start && p.ts < end);
  const noPresence = input.presenceBefore === undefined && presence.length === 0;
  if (noPresence && turns.length === 0) return null;

  let due = 0;
  let onTime = 0;
  let late = 0;
  let inBedMs = 0;
  /** The clock's anchor while in bed (last turn or lying down); undefined when out of bed or unknown. */
  let anchor: number | undefined;
  /** When the tallied in-bed time last started. */
  let since: number | undefined;
  /** The last counted turn (for merging a double record of the same repositioning). */
  let lastTurn: number | undefined = input.turnBefore;

  /** Deadlines anchor + k·I + G (k ≥ 1) with start ≤ deadline < until. */
  const missed = (a: number, until: number): number => {
    const kMin = Math.max(1, Math.ceil((start - a - G) / I));
    const kMax = Math.ceil((until - a - G) / I) - 1;
    return Math.max(0, kMax - kMin + 1);
  };

  if (noPresence) {
    // Without a bed sensor the only evidence is the turns: a turn from long ago (a resident away for
    // weeks) must not make the whole start of the month look missed, so only the last day counts.
    const recent = input.turnBefore !== undefined && start - input.turnBefore <= STAFF_ONLY_LOOKBACK_MS ? input.turnBefore : undefined;
    const first = recent ?? turns[0];
    anchor = first;
    since = first !== undefined ? Math.max(first, start) : undefined;
  } else if (input.presenceBefore?.inBed === true) {
    anchor = Math.max(input.presenceBefore.ts, input.turnBefore ?? -Infinity);
    since = start;
  }

  type Ev = { ts: number; turn: boolean; inBed?: boolean };
  // At the same instant, lying down comes before a turn, and a turn before leaving the bed.
  const order = (e: Ev): number => (e.turn ? 1 : e.inBed === true ? 0 : 2);
  const events: Ev[] = [...presence.map((p) => ({ ts: p.ts, turn: false, inBed: p.inBed })), ...turns.map((ts) => ({ ts, turn: true }))];
  events.sort((a, b) => a.ts - b.ts || order(a) - order(b));

  for (const ev of events) {
    if (!ev.turn) {
      if (ev.inBed === true && anchor === undefined) {
        anchor = ev.ts;
        since = ev.ts;
      } else if (ev.inBed === false && anchor !== undefined) {
        const m = missed(anchor, ev.ts);
        late += m;
        due += m;
        inBedMs += ev.ts - (since ?? ev.ts);
        anchor = undefined;
        since = undefined;
      }
      continue;
    }
    // A turn outside known in-bed time (bed sensor said empty, or nothing known yet) is not judged.
    if (anchor === undefined) continue;
    if (lastTurn !== undefined && ev.ts - lastTurn < TURN_MERGE_MS && ev.ts >= lastTurn) continue;
    lastTurn = ev.ts;
    if (ev.ts === anchor) continue; // the turn that started the clock (staff-only residents)
    if (ev.ts - anchor <= I + G) {
      due++;
      onTime++;
    } else {
      const m = missed(anchor, ev.ts);
      late += m;
      due += m;
    }
    anchor = ev.ts;
  }
  if (anchor !== undefined) {
    const m = missed(anchor, end);
    late += m;
    due += m;
    inBedMs += end - (since ?? end);
  }
  return { due, onTime, late, inBedMs };
}
