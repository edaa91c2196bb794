import type { News2Score } from './care/news2-rule.ts';

/**
 * What a rule found out while evaluating an input, beside the conditions it signals: a resident's
 * new NEWS2 score, a turn, a change of the repositioning schedule, a bed getting occupied or empty.
 * The engine hands them to its `onFacts` sink (alerts/engine.ts), which routes them to the histories
 * in InfluxDB and to the dashboard's care-state view, so nothing outside a rule reads its state.
 *
 * Facts are news, not state: they are not part of the rule-state snapshot and are never replayed.
 * Each fact says whom it concerns (home and resident), so a consumer needs no registry lookup and
 * no knowledge of which rule produced it.
 */

interface ResidentFact {
  readonly homeId: string;
  readonly residentId: string;
}

/** A resident's score changed (any part of it, including only the newest reading time). */
export interface News2Fact extends ResidentFact {
  readonly kind: 'news2';
  readonly score: News2Score;
}

/**
 * A resident was repositioned: recorded by staff (care action `turned`) or sensed by the bed sensor
 * (a held movement burst). `ts` is when the turn happened; `lastTurnAt` / `nextTurnDueAt` are the
 * schedule after it (a turn recorded for an earlier time than the last one does not move `lastTurnAt`).
 */
export interface TurnFact extends ResidentFact {
  readonly kind: 'turn';
  readonly source: 'staff' | 'sensor';
  readonly ts: number;
  /** The repositioning interval in force for the resident when turned (minutes). */
  readonly intervalMin: number;
  readonly lastTurnAt: number;
  readonly nextTurnDueAt: number;
}

/**
 * The repositioning schedule changed without a turn: lying down starts an interval (`nextTurnDueAt`
 * set, `lastTurnAt` the time of lying down), leaving the bed stops it (`nextTurnDueAt` absent).
 */
export interface TurnScheduleFact extends ResidentFact {
  readonly kind: 'turn_schedule';
  readonly lastTurnAt?: number;
  readonly nextTurnDueAt?: number;
}

/**
 * The bed sensor's presence changed (or is known for the first time). Several rules watch the bed,
 * so one bed report may yield this fact from more than one rule: a consumer that counts changes
 * treats equal bed facts of one evaluation as one.
 */
export interface BedFact extends ResidentFact {
  readonly kind: 'bed';
  readonly deviceId: string;
  readonly inBed: boolean;
  /** Device time of the report. */
  readonly ts: number;
}

export type Fact = News2Fact | TurnFact | TurnScheduleFact | BedFact;
export type FactKind = Fact['kind'];

/** Receives the facts of one evaluation (one input or tick: every rule's, in rule order). Never empty. */
export type FactSink = (facts: readonly Fact[]) => void;
