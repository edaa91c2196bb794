import type { Roster, RosterPerson, Shift } from '../../contract/registry.ts';

/**
 * Who is on duty (issue 15): a pure function of the roster and an instant. No clock read: the
 * caller passes `at`. Local weekday and time come from Intl with the roster's IANA zone, so a home
 * in a zone with daylight saving still gets its shifts at local wall-clock times.
 */

const MIN_PER_DAY = 24 * 60;
const MIN_PER_WEEK = 7 * MIN_PER_DAY;
const WEEKDAYS: Readonly<Record<string, number>> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (f === undefined) {
    // Throws RangeError for an unknown zone: the roster route validates with validTimezone first.
    f = new Intl.DateTimeFormat('en-US', { timeZone: timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timezone, f);
  }
  return f;
}

export function validTimezone(timezone: string): boolean {
  try {
    formatter(timezone);
    return true;
  } catch {
    return false;
  }
}

/** Minute of the local week (Monday 00:00 = 0) at `at` in `timezone`. */
export function minuteOfWeek(at: number, timezone: string): number {
  let weekday = 1;
  let hour = 0;
  let minute = 0;
  for (const p of formatter(timezone).formatToParts(new Date(at))) {
    if (p.type === 'weekday') weekday = WEEKDAYS[p.value] ?? 1;
    else if (p.type === 'hour') hour = Number(p.value) % 24;
    else if (p.type === 'minute') minute = Number(p.value);
  }
  return (weekday - 1) * MIN_PER_DAY + hour * 60 + minute;
}

export function hhmmToMin(text: string): number {
  return Number(text.slice(0, 2)) * 60 + Number(text.slice(3, 5));
}

/** Whether the shift covers minute `m` of the week: it starts on one of its days and runs (end <= start) past midnight. */
export function shiftCovers(shift: Pick<Shift, 'days' | 'start' | 'end'>, m: number): boolean {
  const start = hhmmToMin(shift.start);
  const end = hhmmToMin(shift.end);
  // end == start: 24 h; end < start: crosses midnight into the next day.
  const length = end > start ? end - start : end + MIN_PER_DAY - start;
  for (const day of shift.days) {
    const from = (day - 1) * MIN_PER_DAY + start;
    // Sunday's night shift runs into Monday: measure the offset modulo the week.
    const offset = (((m - from) % MIN_PER_WEEK) + MIN_PER_WEEK) % MIN_PER_WEEK;
    if (offset < length) return true;
  }
  return false;
}

/** The shifts in force at `at`. */
export function shiftsAt(roster: Pick<Roster, 'shifts'>, at: number, timezone: string): Shift[] {
  const m = minuteOfWeek(at, timezone);
  return roster.shifts.filter((s) => shiftCovers(s, m));
}

/** The people on duty at `at` (each once, in roster order); empty when no shift covers the moment. */
export function onDuty(roster: Pick<Roster, 'shifts' | 'people'>, at: number, timezone: string): RosterPerson[] {
  const ids = new Set(shiftsAt(roster, at, timezone).flatMap((s) => s.people));
  return roster.people.filter((p) => ids.has(p.id));
}

/** Problems a schema cannot express: unknown people in shifts, duplicate ids, an unknown zone. */
export function rosterProblems(roster: Roster): string[] {
  const problems: string[] = [];
  if (!validTimezone(roster.timezone)) problems.push(`unknown time zone ${roster.timezone}`);
  const ids = new Set<string>();
  for (const p of roster.people) {
    if (ids.has(p.id)) problems.push(`person ${p.id} appears twice`);
    ids.add(p.id);
  }
  const shiftIds = new Set<string>();
  for (const s of roster.shifts) {
    if (shiftIds.has(s.id)) problems.push(`shift ${s.id} appears twice`);
    shiftIds.add(s.id);
    for (const id of s.people) if (!ids.has(id)) problems.push(`shift ${s.id} names unknown person ${id}`);
  }
  return problems;
}

/**
 * The next instant after `at` when a shift of the roster starts or ends (issue 15: an incident
 * still unacknowledged at a shift change is sent to the incoming people on duty), or undefined for
 * a roster without shifts. Boundaries are local wall-clock minutes of the week; the result is
 * measured from the start of `at`'s minute. Around a daylight-saving jump the local and elapsed
 * minutes differ by the jump: the caller re-reads `onDuty` when woken and simply waits again when
 * nothing changed, so an hour's skew costs a spare wake-up, never a missed page.
 */
export function nextShiftChange(roster: Pick<Roster, 'shifts'>, at: number, timezone: string): number | undefined {
  const m = minuteOfWeek(at, timezone);
  let best: number | undefined;
  for (const s of roster.shifts) {
    const start = hhmmToMin(s.start);
    const end = hhmmToMin(s.end);
    const length = end > start ? end - start : end + MIN_PER_DAY - start;
    for (const day of s.days) {
      for (const b of [(day - 1) * MIN_PER_DAY + start, (day - 1) * MIN_PER_DAY + start + length]) {
        // Strictly after the current minute: a boundary at this very minute has happened already.
        const ahead = ((((b - m) % MIN_PER_WEEK) + MIN_PER_WEEK) % MIN_PER_WEEK) || MIN_PER_WEEK;
        if (best === undefined || ahead < best) best = ahead;
      }
    }
  }
  return best === undefined ? undefined : at - (at % 60_000) + best * 60_000;
}
