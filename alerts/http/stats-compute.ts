import type { AlertMessage, SignalClass } from '../../contract/payloads.ts';
import { SIGNAL_CLASSES } from '../../contract/payloads.ts';
import type { TurnTally } from './stats-turns.ts';

/**
 * Monthly per-home statistics for the bureau (issues 4 and 5), computed from stored alert changes,
 * the escalation audit, device status transitions and the turn history. Pure: the adapter
 * (stats.ts) queries InfluxDB and passes the rows in. Every figure is defined in docs/statistics.md;
 * repositioning on time is computed per resident in stats-turns.ts.
 */

export interface MonthWindow {
  readonly month: string;
  /** First ms of the month in local time (China Standard Time by default), as epoch ms. */
  readonly start: number;
  /** First ms of the next month. */
  readonly end: number;
}

export const MONTH_PATTERN = '^[0-9]{4}-(0[1-9]|1[0-2])$';

/** China Standard Time is UTC+8 all year (no DST), so a month is [00:00 +08:00 on the 1st, next 1st). */
export function monthWindow(month: string, utcOffsetMin = 480): MonthWindow {
  if (!new RegExp(MONTH_PATTERN).test(month)) throw new Error(`month must be YYYY-MM, got ${JSON.stringify(month)}`);
  const [y, m] = month.split('-').map(Number) as [number, number];
  const offset = utcOffsetMin * 60_000;
  return { month, start: Date.UTC(y, m - 1, 1) - offset, end: Date.UTC(y, m, 1) - offset };
}

export function monthOf(ms: number, utcOffsetMin = 480): string {
  const d = new Date(ms + utcOffsetMin * 60_000);
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** Nearest-rank percentile (the smallest value with at least p % of values at or below it). */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? null;
}

/** Each alert id once, at its highest version (later changes supersede earlier ones). */
export function latestVersions(changes: readonly AlertMessage[]): AlertMessage[] {
  const byId = new Map<string, AlertMessage>();
  for (const a of changes) {
    const prev = byId.get(a.id);
    if (prev === undefined || a.version > prev.version) byId.set(a.id, a);
  }
  return [...byId.values()];
}

export interface StatusChange {
  readonly ts: number;
  readonly online: boolean;
}

export interface OnlineTime {
  readonly onlineMs: number;
  /** The part of the window the device is counted for: from the window start, or its first report. */
  readonly observedMs: number;
}

/**
 * Time of [start, end) a device was online, from its state before the window and its status
 * changes inside it, counted from its first report if it was unknown before the window. Null when
 * nothing at all is known about the device (never reported).
 */
export function onlineTime(before: boolean | undefined, changes: readonly StatusChange[], start: number, end: number): OnlineTime | null {
  if (end <= start) return null;
  const sorted = [...changes].filter((c) => c.ts >= start && c.ts < end).sort((a, b) => a.ts - b.ts);
  if (before === undefined && sorted.length === 0) return null;
  // A device first heard of inside the window was not installed before: its time counts from its
  // first report, so a device commissioned on the 28th is not "offline" for the 27 days before.
  const from = before === undefined ? (sorted[0] as StatusChange).ts : start;
  let state = before ?? false;
  let at = from;
  let online = 0;
  for (const c of sorted) {
    if (state) online += c.ts - at;
    state = c.online;
    at = c.ts;
  }
  if (state) online += end - at;
  return end > from ? { onlineMs: online, observedMs: end - from } : null;
}

/** onlineTime as a fraction of the device's observed time. */
export function onlineFraction(before: boolean | undefined, changes: readonly StatusChange[], start: number, end: number): number | null {
  const t = onlineTime(before, changes, start, end);
  return t === null ? null : t.onlineMs / t.observedMs;
}

export interface Distribution {
  readonly n: number;
  readonly medianS: number | null;
  readonly p95S: number | null;
}

/** How fast a class of alerts was acknowledged and resolved. */
export interface ResponseTimes {
  /** Alerts of the class raised in the month. */
  readonly alerts: number;
  readonly timeToAcknowledge: Distribution;
  readonly timeToResolve: Distribution;
}

export interface HomeStats {
  readonly homeId: string;
  /** Issue 15: `household` for an elder living at home (with its provider), else `care-home`. */
  readonly kind?: 'care-home' | 'household';
  readonly providerId?: string;
  readonly month: string;
  readonly alerts: number;
  readonly byClass: Readonly<Record<SignalClass, number>>;
  /** Fire alarm signals (category fire, class alarm). */
  readonly fireAlarms: number;
  readonly fireAlarmsConfirmed: number;
  readonly falseAlarms: number;
  /** false_alarm / confirmed fire alarms (unconfirmed ones are not counted either way). */
  readonly falseAlarmRate: number | null;
  /** All alerts. */
  readonly timeToAcknowledge: Distribution;
  readonly timeToResolve: Distribution;
  /** Fire alarms proper: category fire, class alarm, severity critical (the ones that run NFPA 72 PAS). */
  readonly fireEmergencies: ResponseTimes;
  /** Care emergencies: category care, severity critical (fall, NEWS2 ≥ 7, long bed exit). */
  readonly careEmergencies: ResponseTimes;
  /** Alerts escalated because an acknowledgement/confirmation deadline or the ladder passed. */
  readonly escalatedUnacknowledged: number;
  /** Alerts resolved (by a person or by the condition clearing) without ever being acknowledged. */
  readonly resolvedUnacknowledged: number;
  /** Distinct alerts in either of the two sets above. */
  readonly missedAlerts: number;
  readonly devicesReporting: number;
  /** Online device-time over observed device-time (status transitions; see docs/statistics.md). */
  readonly deviceOnlineRate: number | null;
  /** Residents with turn or bed-presence data this month. */
  readonly residentsWithTurnData: number;
  readonly turnsBySensor: number;
  readonly turnsByStaff: number;
  readonly turnsDue: number;
  readonly turnsOnTime: number;
  readonly turnsLate: number;
  /** turnsOnTime / turnsDue; null ("no data") when no turn was due. */
  readonly turnsOnTimeRate: number | null;
}

/** Fire alarm proper: the signals that run the NFPA 72 positive alarm sequence (alerts/escalation.ts). */
export function isFireEmergency(a: Pick<AlertMessage, 'category' | 'signal' | 'severity'>): boolean {
  return a.category === 'fire' && a.signal === 'alarm' && a.severity === 'critical';
}

/** Care emergency (issue 4: fall, NEWS2 ≥ 7, long bed exit): the care rules raise them as critical. */
export function isCareEmergency(a: Pick<AlertMessage, 'category' | 'severity'>): boolean {
  return a.category === 'care' && a.severity === 'critical';
}

/** Escalation reasons that mean nobody acted in time (alerts/escalation.ts EscalationReason). */
export const MISSED_ESCALATION_REASONS: ReadonlySet<string> = new Set(['ack_deadline', 'confirm_deadline', 'ladder']);

function distribution(valuesMs: readonly number[]): Distribution {
  const s = valuesMs.filter((v) => v >= 0).map((v) => v / 1000);
  const round = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);
  return { n: s.length, medianS: round(percentile(s, 50)), p95S: round(percentile(s, 95)) };
}

function responseTimes(alerts: readonly AlertMessage[]): ResponseTimes {
  return {
    alerts: alerts.length,
    timeToAcknowledge: distribution(alerts.flatMap((a) => (a.acknowledgedAt !== undefined ? [a.acknowledgedAt - a.raisedAt] : []))),
    timeToResolve: distribution(alerts.flatMap((a) => (a.resolvedAt !== undefined ? [a.resolvedAt - a.raisedAt] : []))),
  };
}

export interface HomeStatsInput {
  readonly homeId: string;
  readonly window: MonthWindow;
  /** Latest version of every alert of this home raised in the window. */
  readonly alerts: readonly AlertMessage[];
  /** Ids of alerts escalated for a reason in MISSED_ESCALATION_REASONS (any home; filtered here). */
  readonly escalatedByDeadline: ReadonlySet<string>;
  /** onlineTime of each device of the home (null = never reported). */
  readonly deviceOnline: readonly (OnlineTime | null)[];
  /** residentTurnTally of each resident of the home (null = no data). */
  readonly residentTurns: readonly (TurnTally | null)[];
  readonly turnsBySensor: number;
  readonly turnsByStaff: number;
}

/** Rates are rounded once here so the JSON and the CSV carry exactly the same numbers. */
function round4(v: number): number {
  return Math.round(v * 10_000) / 10_000;
}

export function computeHomeStats(input: HomeStatsInput): HomeStats {
  const { alerts } = input;
  const byClass = Object.fromEntries(SIGNAL_CLASSES.map((c) => [c, 0])) as Record<SignalClass, number>;
  for (const a of alerts) byClass[a.signal] += 1;
  const fire = alerts.filter((a) => a.category === 'fire' && a.signal === 'alarm');
  const confirmed = fire.filter((a) => a.confirmation !== undefined);
  const falseAlarms = confirmed.filter((a) => a.confirmation === 'false_alarm').length;
  const all = responseTimes(alerts);
  const escalated = new Set(alerts.filter((a) => input.escalatedByDeadline.has(a.id)).map((a) => a.id));
  const unacked = new Set(alerts.filter((a) => a.resolvedAt !== undefined && a.acknowledgedAt === undefined).map((a) => a.id));
  const missed = new Set([...escalated, ...unacked]);
  const reporting = input.deviceOnline.filter((f): f is OnlineTime => f !== null);
  const observed = reporting.reduce((s, f) => s + f.observedMs, 0);
  const tallies = input.residentTurns.filter((t): t is TurnTally => t !== null);
  const turnsDue = tallies.reduce((s, t) => s + t.due, 0);
  const turnsOnTime = tallies.reduce((s, t) => s + t.onTime, 0);
  return {
    homeId: input.homeId,
    month: input.window.month,
    alerts: alerts.length,
    byClass,
    fireAlarms: fire.length,
    fireAlarmsConfirmed: confirmed.length,
    falseAlarms,
    falseAlarmRate: confirmed.length > 0 ? round4(falseAlarms / confirmed.length) : null,
    timeToAcknowledge: all.timeToAcknowledge,
    timeToResolve: all.timeToResolve,
    fireEmergencies: responseTimes(alerts.filter(isFireEmergency)),
    careEmergencies: responseTimes(alerts.filter(isCareEmergency)),
    escalatedUnacknowledged: escalated.size,
    resolvedUnacknowledged: unacked.size,
    missedAlerts: missed.size,
    devicesReporting: reporting.length,
    deviceOnlineRate: observed > 0 ? round4(reporting.reduce((s, f) => s + f.onlineMs, 0) / observed) : null,
    residentsWithTurnData: tallies.length,
    turnsBySensor: input.turnsBySensor,
    turnsByStaff: input.turnsByStaff,
    turnsDue,
    turnsOnTime,
    turnsLate: tallies.reduce((s, t) => s + t.late, 0),
    // No turn due (nobody in bed long enough, or no data at all): no rate, not 100 %.
    turnsOnTimeRate: turnsDue > 0 ? round4(turnsOnTime / turnsDue) : null,
  };
}

type Cell = string | number | null;
const dist = (prefix: string, d: Distribution): Array<[string, Cell]> => [
  [`${prefix}_n`, d.n],
  [`${prefix}_median_s`, d.medianS],
  [`${prefix}_p95_s`, d.p95S],
];
const response = (prefix: string, r: ResponseTimes): Array<[string, Cell]> => [
  [`${prefix}_alerts`, r.alerts],
  ...dist(`${prefix}_ack`, r.timeToAcknowledge),
  ...dist(`${prefix}_resolve`, r.timeToResolve),
];

/** One CSV row as (column, value) pairs: the single place that maps the JSON to columns. */
function row(s: HomeStats): Array<[string, Cell]> {
  return [
    ['home', s.homeId], ['month', s.month], ['alerts', s.alerts],
    ...SIGNAL_CLASSES.map((c): [string, Cell] => [c, s.byClass[c]]),
    ['fire_alarms', s.fireAlarms], ['fire_alarms_confirmed', s.fireAlarmsConfirmed], ['false_alarms', s.falseAlarms], ['false_alarm_rate', s.falseAlarmRate],
    ...dist('ack', s.timeToAcknowledge), ...dist('resolve', s.timeToResolve),
    ...response('fire_emergency', s.fireEmergencies), ...response('care_emergency', s.careEmergencies),
    ['missed_alerts', s.missedAlerts], ['escalated_unacknowledged', s.escalatedUnacknowledged], ['resolved_unacknowledged', s.resolvedUnacknowledged],
    ['devices_reporting', s.devicesReporting], ['device_online_rate', s.deviceOnlineRate],
    ['residents_with_turn_data', s.residentsWithTurnData], ['turns_by_sensor', s.turnsBySensor], ['turns_by_staff', s.turnsByStaff],
    ['turns_due', s.turnsDue], ['turns_on_time', s.turnsOnTime], ['turns_late', s.turnsLate], ['turns_on_time_rate', s.turnsOnTimeRate],
    // Issue 15, appended so existing columns keep their positions.
    ['kind', s.kind ?? 'care-home'], ['provider', s.providerId ?? null],
  ];
}

const EMPTY_DIST: Distribution = { n: 0, medianS: null, p95S: null };
const EMPTY_RESPONSE: ResponseTimes = { alerts: 0, timeToAcknowledge: EMPTY_DIST, timeToResolve: EMPTY_DIST };
/** The header, derived from the row mapping so the two cannot drift apart. */
export const CSV_COLUMNS: readonly string[] = row({
  homeId: '', month: '', alerts: 0, byClass: { alarm: 0, supervisory: 0, trouble: 0, care: 0 }, fireAlarms: 0, fireAlarmsConfirmed: 0, falseAlarms: 0,
  falseAlarmRate: null, timeToAcknowledge: EMPTY_DIST, timeToResolve: EMPTY_DIST, fireEmergencies: EMPTY_RESPONSE, careEmergencies: EMPTY_RESPONSE,
  escalatedUnacknowledged: 0, resolvedUnacknowledged: 0, missedAlerts: 0, devicesReporting: 0, deviceOnlineRate: null, residentsWithTurnData: 0,
  turnsBySensor: 0, turnsByStaff: 0, turnsDue: 0, turnsOnTime: 0, turnsLate: 0, turnsOnTimeRate: null,
}).map(([c]) => c);

/** The same numbers as the JSON, one row per home; an empty cell is "no data" (null). */
export function statsCsv(stats: readonly HomeStats[]): string {
  const cell = (v: Cell): string => (v === null ? '' : String(v));
  const lines = [CSV_COLUMNS.join(',')];
  for (const s of stats) lines.push(row(s).map(([, v]) => cell(v)).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
