/**
 * Default settings of the care rules, in one place so docs/rules.md and the code agree. Each
 * rule constructor takes a partial override of its own section.
 */

export interface News2RuleConfig {
  /** Device values are smoothed by the median of this window, so a movement artefact lasting seconds cannot move the score. */
  readonly smoothingMs: number;
  /**
   * The median takes at least this many readings (reaching back past `smoothingMs` when the monitor
   * reports slowly, never past `staleMs`): with a 60 s reporting interval the 60 s window holds one
   * or two readings, and the "median" of two is their mean, which one artefact moves.
   */
  readonly minReadings: number;
  /**
   * A monitored value is scored only once its readings span this long: right after start-up or a
   * gap, a "median" of one or two samples would be the artefact itself. Until then it is missing
   * (the score is partial), and the duration thresholds still watch the raw values.
   */
  readonly minSpanMs: number;
  /** A continuously monitored value older than this counts as missing. */
  readonly staleMs: number;
  /** Blood pressure is measured intermittently; NEWS2 (RCP 2017, Chart 3) asks for observations at least 4-hourly at a score of 1–4. */
  readonly bpStaleMs: number;
  /** Staff observations (oxygen, ACVPU); Chart 3's minimum observation frequency is 12-hourly. */
  readonly observationStaleMs: number;
}

export const NEWS2_RULE_DEFAULTS: News2RuleConfig = {
  smoothingMs: 60_000,
  minReadings: 3,
  minSpanMs: 30_000,
  staleMs: 5 * 60_000,
  bpStaleMs: 4 * 3_600_000,
  observationStaleMs: 12 * 3_600_000,
};

export interface BedRuleConfig {
  /** Night window, local minutes after midnight; start ≤ t < end, wrapping midnight. */
  readonly nightStartMin: number;
  readonly nightEndMin: number;
  /** Local time offset from UTC in minutes; China Standard Time (UTC+8, no daylight saving) by default. */
  readonly utcOffsetMin: number;
  /** A resident out of bed at night longer than this escalates. */
  readonly returnWithinMs: number;
}

export const BED_RULE_DEFAULTS: BedRuleConfig = {
  nightStartMin: 21 * 60,
  nightEndMin: 6 * 60,
  utcOffsetMin: 8 * 60,
  returnWithinMs: 30 * 60_000,
};

export interface ContinenceRuleConfig {
  /** Wetness above this raises the change-needed task. */
  readonly raisePct: number;
  /** The sensor reads dry below this (hysteresis: between the two levels nothing changes). */
  readonly clearPct: number;
  /** An open task not done within this becomes medium severity. */
  readonly upgradeAfterMs: number;
  /** After staff record a change while the sensor still reads wet, the task comes back after this if it never reads dry. */
  readonly rearmAfterMs: number;
}

export const CONTINENCE_RULE_DEFAULTS: ContinenceRuleConfig = {
  raisePct: 30,
  clearPct: 10,
  upgradeAfterMs: 60 * 60_000,
  rearmAfterMs: 30 * 60_000,
};

export interface RepositionRuleConfig {
  /** movement_index at or above this, held for `turnBurstMs`, is a turn. */
  readonly turnMovementIndex: number;
  readonly turnBurstMs: number;
  /** Readings further apart than this do not make one burst. */
  readonly maxGapMs: number;
  /** Used when a resident has no turnIntervalMin (the registry default is 120). */
  readonly defaultIntervalMin: number;
  /** For the local clock time in messages (China Standard Time by default). */
  readonly utcOffsetMin: number;
}

export const REPOSITION_RULE_DEFAULTS: RepositionRuleConfig = {
  turnMovementIndex: 50,
  turnBurstMs: 10_000,
  // Readings up to a 60 s reporting interval (plus jitter) apart make one burst: at 15 s a bed
  // sensor reporting every 20 s or slower could never see a turn, and every resident would be
  // reported overdue however often they were turned.
  maxGapMs: 90_000,
  defaultIntervalMin: 120,
  utcOffsetMin: 8 * 60,
};

export interface NoDataRuleConfig {
  /**
   * The engine's tick period. Silence is reported once it exceeds the device kind's heartbeat budget
   * minus one tick, so the alert is raised within the budget however the tick falls.
   */
  readonly tickMs: number;
}

export const NO_DATA_RULE_DEFAULTS: NoDataRuleConfig = { tickMs: 5_000 };
