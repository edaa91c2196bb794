import type { AlertMessage, SignalClass } from '../../contract/payloads.ts';
import { SIGNAL_CLASSES } from '../../contract/payloads.ts';

/**
 * Monthly per-home statistics for the bureau, computed from stored alert changes, device status
 * transitions and recorded care actions.
 *
 * Repositioning on time: the turns a month required (each resident's elapsed time in the month
 * divided by their turning interval, issue 4: 1–4 h, default 2 h) minus the overdue-turn alerts the
 * care rules raised, over the turns required. Each overdue alert is one turn not done on time. Pure: the adapter (stats.ts) queries InfluxDB and passes the rows in.
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

/**
 * Fraction of [start, end) a device was online, from its state before the window and its status
 * changes inside it, counted from its first report if it was unknown before the window. Null when
 * nothing at all is known about the device (never reported).
 */
export function onlineFraction(before: boolean | undefined, changes: readonly StatusChange[], start: number, end: number): number | null {
  if (end <= start) return null;
  const sorted = [...changes].filter((c) => c.ts >= start && c.ts < end).sort((a, b) => a.ts - b.ts);
  if (before === undefined && sorted.length === 0) return null;
  // A device first heard of inside the window was not installed before: its rate counts from its
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
  return end > from ? online / (end - from) : null;
}

export interface Distribution {
  readonly n: number;
  readonly medianS: number | null;
  readonly p95S: number | null;
}

export interface HomeStats {
  readonly homeId: string;
  readonly month: string;
  readonly alerts: number;
  readonly byClass: Readonly<Record<SignalClass, number>>;
  /** Fire alarm signals (category fire, class alarm). */
  readonly fireAlarms: number;
  readonly fireAlarmsConfirmed: number;
  readonly falseAlarms: number;
  /** false_alarm / confirmed fire alarms (unconfirmed ones are not counted either way). */
  readonly falseAlarmRate: number | null;
  readonly timeToAcknowledge: Distribution;
  readonly timeToResolve: Distribution;
  readonly devicesReporting: number;
  readonly deviceOnlineRate: number | null;
  readonly turnsExpected: number;
  /** Turns staff recorded (care action `turned`); turns detected from bed movement are not in it. */
  readonly turnsRecorded: number;
  readonly turnsOverdue: number;
  readonly turnsOnTimeRate: number | null;
}

/** Repositioning alerts of the care rules (issue 4): an overdue turn. */
export function isTurnOverdue(alert: Pick<AlertMessage, 'rule' | 'category'>): boolean {
  return alert.category === 'care' && /turn|reposition/i.test(alert.rule);
}

function distribution(valuesMs: readonly number[]): Distribution {
  const s = valuesMs.filter((v) => v >= 0).map((v) => v / 1000);
  const round = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);
  return { n: s.length, medianS: round(percentile(s, 50)), p95S: round(percentile(s, 95)) };
}

export interface HomeStatsInput {
  readonly homeId: string;
  readonly window: MonthWindow;
  /** Latest version of every alert of this home raised in the window. */
  readonly alerts: readonly AlertMessage[];
  /** onlineFraction of each device of the home (null = never reported). */
  readonly deviceOnline: readonly (number | null)[];
  /** Turning intervals (minutes) of the home's residents. */
  readonly turnIntervalsMin: readonly number[];
  readonly turnsRecorded: number;
  /** Platform clock: a month in progress counts only its elapsed part. */
  readonly now: number;
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
  const ack = alerts.flatMap((a) => (a.acknowledgedAt !== undefined ? [a.acknowledgedAt - a.raisedAt] : []));
  const res = alerts.flatMap((a) => (a.resolvedAt !== undefined ? [a.resolvedAt - a.raisedAt] : []));
  const reporting = input.deviceOnline.filter((f): f is number => f !== null);
  const elapsed = Math.max(0, Math.min(input.window.end, input.now) - input.window.start);
  const turnsExpected = input.turnIntervalsMin.reduce((sum, min) => sum + Math.floor(elapsed / (min * 60_000)), 0);
  const turnsOverdue = alerts.filter(isTurnOverdue).length;
  return {
    homeId: input.homeId,
    month: input.window.month,
    alerts: alerts.length,
    byClass,
    fireAlarms: fire.length,
    fireAlarmsConfirmed: confirmed.length,
    falseAlarms,
    falseAlarmRate: confirmed.length > 0 ? round4(falseAlarms / confirmed.length) : null,
    timeToAcknowledge: distribution(ack),
    timeToResolve: distribution(res),
    devicesReporting: reporting.length,
    deviceOnlineRate: reporting.length > 0 ? round4(reporting.reduce((s, f) => s + f, 0) / reporting.length) : null,
    turnsExpected,
    turnsRecorded: input.turnsRecorded,
    turnsOverdue,
    // A home that sent nothing at all this month has no evidence either way: no rate, not 100 %.
    turnsOnTimeRate: turnsExpected > 0 && reporting.length > 0 ? round4(Math.max(0, turnsExpected - turnsOverdue) / turnsExpected) : null,
  };
}

export const CSV_COLUMNS = [
  'home', 'month', 'alerts', 'alarm', 'supervisory', 'trouble', 'care', 'fire_alarms', 'fire_alarms_confirmed', 'false_alarms',
  'false_alarm_rate', 'ack_n', 'ack_median_s', 'ack_p95_s', 'resolve_n', 'resolve_median_s', 'resolve_p95_s',
  'devices_reporting', 'device_online_rate', 'turns_expected', 'turns_recorded', 'turns_overdue', 'turns_on_time_rate',
] as const;

/** The same numbers as the JSON, one row per home; an empty cell is "no data" (null). */
export function statsCsv(stats: readonly HomeStats[]): string {
  const cell = (v: string | number | null): string => (v === null ? '' : String(v));
  const lines = [CSV_COLUMNS.join(',')];
  for (const s of stats) {
    lines.push(
      [
        s.homeId, s.month, s.alerts, s.byClass.alarm, s.byClass.supervisory, s.byClass.trouble, s.byClass.care, s.fireAlarms,
        s.fireAlarmsConfirmed, s.falseAlarms, s.falseAlarmRate, s.timeToAcknowledge.n, s.timeToAcknowledge.medianS,
        s.timeToAcknowledge.p95S, s.timeToResolve.n, s.timeToResolve.medianS, s.timeToResolve.p95S, s.devicesReporting,
        s.deviceOnlineRate, s.turnsExpected, s.turnsRecorded, s.turnsOverdue, s.turnsOnTimeRate,
      ].map(cell).join(','),
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}
