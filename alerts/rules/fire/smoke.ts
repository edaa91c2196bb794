import { recentInterval } from './cadence.ts';
import { newLatch, stepAbove, type Latch } from './latch.ts';

/**
 * Smoke detection of one detector: pre-alarm and alarm levels of obscuration, and NFPA 72 alarm
 * verification (§23.8.5.4.1): a reading at alarm level starts a verification window; the alarm is
 * accepted if the detector stays at alarm level through the window, or if it falls back and comes
 * back to alarm level before the window ends (the alarm recurs within the confirmation period: an
 * alarm verification feature resets the detector and accepts a second alarm within a set time,
 * NFPA 72 §3.3 "alarm verification feature"; UL 864 confirms within 60 s). If it falls back and
 * does not return in the window, the event stays an unverified pre-alarm. A confirmed
 * multi-criteria fire supersedes the window.
 * Pure step over one reading, plus a tick step that completes windows when readings stop.
 */
export interface SmokeState {
  /** Pre-alarm latch (set 2 %/m, clear 1.5 %/m held 60 s). */
  pre: Latch;
  /** Alarm-level latch (set 4 %/m, clear 3 %/m): the detector is "at alarm level". */
  lvl: Latch;
  /** Verification window start (platform ms), -1 when none. */
  v: number;
  /**
   * Start (platform ms) of a verification window the level fell back inside, -1 or absent when none:
   * alarm level again before `w + verifyMs` verifies at once (a recurrence). Optional: a state
   * saved before it existed has none.
   */
  w?: number;
  /** 0 no alarm; 1 verified alarm raised; 2 superseded by a confirmed fire. */
  ok: 0 | 1 | 2;
  /** Platform ms since when the alarm level has been gone while ok ≠ 0; -1 otherwise. */
  off: number;
  /** Peak reading of a failed verification during the current (or last) pre-alarm, -1 when none. */
  u: number;
  /** Last reading, its device ts and receive time. */
  x: number;
  t: number;
  rt: number;
  /**
   * Platform ms of the last reading, and the detector's recent reporting interval (the longest
   * recent gap, decayed per reading). Optional: a state saved before they existed completes its
   * windows on the tick as it did then.
   */
  lt?: number;
  g?: number;
}

export interface SmokeLimits {
  readonly preAt: number;
  readonly preClear: number;
  readonly alarmAt: number;
  readonly alarmClear: number;
  readonly verifyMs: number;
}

/**
 * A pre-alarm below the alarm level needs smoke at pre-alarm level on two readings at least 10 s
 * apart (two readings at the 10 s nominal period): a single dust particle, or a wisp of a few
 * seconds, is not smoke. Timed as well as counted, so the decision is the same whether the
 * detector reports every 0.5 s or every 60 s (counted only, 1 s of 2.5 %/m at a 0.5 s detector was a
 * pre-alarm that a 10 s detector never saw). Reaching the alarm level raises it at once (below).
 */
const PRE_HOLD = { setCount: 2, setHoldMs: 10_000 } as const;
/** A pre-alarm or verified alarm condition must be gone 60 s before its clear is reported. */
export const SMOKE_CLEAR_HOLD_MS = 60_000;

export type SmokeEvent = 'pre_set' | 'pre_clear' | 'verify_start' | 'verified' | 'unverified' | 'alarm_clear';

/**
 * The window end completes on the tick (no new reading) only once the detector's next reading is
 * overdue: 2.5 of its recent intervals, as the supervision rule judges a device silent
 * (supervision.ts quietMs), and never more than 100 s (the slowest reporting interval, 60 s, with
 * its ±50 % jitter, and 10 s of transport); with one reading so far, its interval unknown, 100 s. Until then its next reading decides: at a 40 s interval, 30 s of shower steam
 * seen on two readings left the level "on" across the window end, and the tick verified it as a
 * fire (fresh-clone CI, session 8). A detector destroyed at alarm level still verifies, at most
 * that much later; its "verifying" pre-alarm was raised at its first alarm-level reading.
 */
const OVERDUE_INTERVALS = 2.5;
/** 60 s × 1.5 plus 10 s for the network, broker and ingest between the device and the rule. */
const OVERDUE_MAX_MS = 100_000;

export function newSmokeState(): SmokeState {
  return { pre: newLatch(), lvl: newLatch(), v: -1, ok: 0, off: -1, u: -1, x: 0, t: 0, rt: 0 };
}

export function stepSmoke(prev: SmokeState, ts: number, receivedTs: number, x: number, now: number, lim: SmokeLimits): { state: SmokeState; events: SmokeEvent[] } {
  const events: SmokeEvent[] = [];
  const lvl = stepAbove(prev.lvl, x, lim.alarmAt, lim.alarmClear, now, {});
  let pre = stepAbove(prev.pre, x, lim.preAt, lim.preClear, now, { ...PRE_HOLD, clearHoldMs: SMOKE_CLEAR_HOLD_MS });
  let { v, ok, off, u } = prev;
  if (v >= 0) u = Math.max(u, x); // peak while verifying
  // Reaching the alarm level raises the pre-alarm ("verifying") at once: staff hear of it a minute
  // before the verified alarm.
  if (lvl.edge === 'set' && !pre.latch.on) pre = { latch: { on: true, n: 0, p: -1 }, edge: 'set' };
  if (pre.edge === 'set') {
    events.push('pre_set');
    u = -1; // a new pre-alarm episode
  }
  // A window the level fell back in is over at its end: forgotten then, so the state does not keep it.
  let w = prev.w !== undefined && now - prev.w <= lim.verifyMs ? prev.w : -1;
  if (lvl.edge === 'set') {
    if (ok === 0 && v < 0 && w >= 0) {
      // Back at alarm level inside the window it fell back in: the alarm recurs within the
      // confirmation period, so it is verified now (NFPA 72 §23.8.5.4.1). Smoke swinging across the
      // clear level (6 / 2.9 %/m every 10 s) was otherwise never more than a pre-alarm.
      ok = 1;
      w = -1;
      u = -1;
      events.push('verified');
    } else if (ok === 0 && v < 0) {
      v = now;
      w = -1;
      u = Math.max(u, x);
      events.push('verify_start');
    }
    off = -1;
  } else if (lvl.edge === 'clear') {
    if (v >= 0) {
      // Fell back inside the window: not verified unless it comes back before the window ends
      // (above); a single spike stays an unverified pre-alarm.
      w = v;
      v = -1;
      events.push('unverified');
    }
    if (ok !== 0) off = now;
  }
  const g = recentInterval(prev.lt, prev.g, now);
  let state: SmokeState = { pre: pre.latch, lvl: lvl.latch, v, ...(w >= 0 ? { w } : {}), ok, off, u, x, t: ts, rt: receivedTs, lt: now, g };
  const timed = stepSmokeTime(state, now, lim, true);
  state = timed.state;
  events.push(...timed.events);
  // `u` stays until the next episode so the clear can say the alarm was unverified.
  if (pre.edge === 'clear') events.push('pre_clear');
  return { state, events };
}

/**
 * Time-driven part (also called on `tick`): window completion and the verified alarm's clear.
 * `reading`: called for a reading that arrived now (it shows the level at the window end); on a tick
 * the window completes only once the detector's next reading is overdue.
 */
export function stepSmokeTime(s: SmokeState, now: number, lim: SmokeLimits, reading = false): { state: SmokeState; events: SmokeEvent[] } {
  // No interval known yet (one reading so far): wait the longest a reading can be late.
  const g = s.g ?? 0;
  const overdue = reading || s.lt === undefined || now - s.lt > (g > 0 ? Math.min(OVERDUE_INTERVALS * g, OVERDUE_MAX_MS) : OVERDUE_MAX_MS);
  if (s.v >= 0 && s.lvl.on && now - s.v >= lim.verifyMs && overdue) {
    return { state: { ...s, v: -1, ok: 1, off: -1, u: -1 }, events: ['verified'] };
  }
  if (s.ok !== 0 && !s.lvl.on && s.off >= 0 && now - s.off >= SMOKE_CLEAR_HOLD_MS) {
    return { state: { ...s, ok: 0, off: -1 }, events: s.ok === 1 ? ['alarm_clear'] : [] };
  }
  return { state: s, events: [] };
}

/** At alarm level (verified or not) — what multi-detector confirmation counts. */
export function smokeInAlarm(s: SmokeState | undefined): boolean {
  return s !== undefined && s.lvl.on;
}

/** Smoke seen at pre-alarm or above — what smoke-plus-heat confirmation counts. */
export function smokeSeen(s: SmokeState | undefined): boolean {
  // Two readings at pre-alarm level count at once, before the pre-alarm's 10 s hold has run:
  // next to a heat alarm that is a fire, and its confirmation must not wait.
  return s !== undefined && (s.pre.on || s.lvl.on || s.pre.n >= PRE_HOLD.setCount);
}
