import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Roster, Shift } from '../../../contract/registry.ts';
import { hhmmToMin, minuteOfWeek, onDuty, rosterProblems, shiftCovers } from '../../../alerts/notify/roster.ts';
import { rosterChanges } from '../../../alerts/notify/roster-store.ts';

/** Issue 15: who is on duty, a pure function of roster, instant and time zone. */

const DAY = 1440;
const WEEK = 7 * DAY;
const hhmm = (m: number): string => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
const ZONES = ['Asia/Shanghai', 'UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata'] as const;

function person(id: string): Roster['people'][number] {
  return { id, name: id, role: 'nurse' };
}

/** Reference: the minutes of the week a shift covers, expanded one by one. */
function coveredMinutes(s: Pick<Shift, 'days' | 'start' | 'end'>): Set<number> {
  const start = hhmmToMin(s.start);
  const end = hhmmToMin(s.end);
  const len = end > start ? end - start : end + DAY - start;
  const out = new Set<number>();
  for (const d of s.days) for (let i = 0; i < len; i++) out.add(((d - 1) * DAY + start + i) % WEEK);
  return out;
}

const shiftArb = fc.record({
  days: fc.uniqueArray(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 7 }),
  start: fc.integer({ min: 0, max: DAY - 1 }).map(hhmm),
  end: fc.integer({ min: 0, max: DAY - 1 }).map(hhmm),
});

describe('onDuty', () => {
  it('someone is always on duty when the shifts cover the whole week, in any zone, at any instant', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: DAY - 1 }), { minLength: 1, maxLength: 6 }),
        fc.constantFrom(...ZONES),
        fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2035, 0, 1) }),
        (cutsRaw, zone, at) => {
          const cuts = [...cutsRaw].sort((a, b) => a - b);
          // Consecutive shifts between the cut points, the last wrapping past midnight to the first.
          const shifts: Shift[] = cuts.map((c, i) => ({ id: `s${i}`, name: `s${i}`, days: [1, 2, 3, 4, 5, 6, 7], start: hhmm(c), end: hhmm(cuts[(i + 1) % cuts.length] ?? c), people: [`p${i}`] }));
          const roster = { people: cuts.map((_, i) => person(`p${i}`)), shifts };
          expect(onDuty(roster, at, zone).length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a night shift 22:00-06:00 covers 03:00 the next day and nothing past 06:00', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 8 * 60 - 1 }), (day, into) => {
        const night = { days: [day], start: '22:00', end: '06:00' };
        const startMin = (day - 1) * DAY + 22 * 60;
        expect(shiftCovers(night, (startMin + into) % WEEK)).toBe(true);
        // 03:00 the next day (Sunday's night runs into Monday).
        expect(shiftCovers(night, (day * DAY + 3 * 60) % WEEK)).toBe(true);
        expect(shiftCovers(night, (day * DAY + 6 * 60) % WEEK)).toBe(false);
        expect(shiftCovers(night, (startMin - 1 + WEEK) % WEEK)).toBe(false);
      }),
    );
  });

  it('agrees with a minute-by-minute expansion of every shift', () => {
    fc.assert(
      fc.property(shiftArb, fc.integer({ min: 0, max: WEEK - 1 }), (s, m) => {
        expect(shiftCovers(s, m)).toBe(coveredMinutes(s).has(m));
      }),
      { numRuns: 500 },
    );
  });

  it('reads local wall-clock time in the roster zone: Monday 22:00-06:00 in Shanghai covers Tuesday 03:00 CST', () => {
    const roster = {
      people: [person('wang'), person('li')],
      shifts: [
        { id: 'night', name: '夜班', days: [1], start: '22:00', end: '06:00', people: ['wang'] },
        { id: 'day', name: '白班', days: [2], start: '06:00', end: '22:00', people: ['li'] },
      ],
    };
    // Tuesday 2026-01-06 03:00 China Standard Time (UTC+8) = Monday 19:00 UTC.
    const tue0300 = Date.UTC(2026, 0, 5, 19, 0);
    expect(minuteOfWeek(tue0300, 'Asia/Shanghai')).toBe(DAY + 180);
    expect(onDuty(roster, tue0300, 'Asia/Shanghai').map((p) => p.id)).toEqual(['wang']);
    // In UTC the same instant is Monday 19:00: nobody's shift.
    expect(onDuty(roster, tue0300, 'UTC')).toEqual([]);
    // Tuesday 06:00 CST: the night nurse is off, the day nurse on.
    expect(onDuty(roster, Date.UTC(2026, 0, 5, 22, 0), 'Asia/Shanghai').map((p) => p.id)).toEqual(['li']);
  });
});

describe('roster checks and audit diff', () => {
  const base: Roster = {
    homeId: 'h01',
    timezone: 'Asia/Shanghai',
    people: [person('a'), person('b')],
    shifts: [{ id: 'n', name: 'night', days: [1], start: '22:00', end: '06:00', people: ['a'] }],
    directors: [],
  };
  it('names unknown people, duplicate ids and unknown zones', () => {
    expect(rosterProblems(base)).toEqual([]);
    expect(rosterProblems({ ...base, timezone: 'Mars/Olympus' })).toEqual(['unknown time zone Mars/Olympus']);
    expect(rosterProblems({ ...base, shifts: [{ ...base.shifts[0]!, people: ['zz'] }] })).toEqual(['shift n names unknown person zz']);
    expect(rosterProblems({ ...base, people: [person('a'), person('a')] })).toContain('person a appears twice');
  });
  it('says what changed', () => {
    const after: Roster = { ...base, people: [person('a'), person('c')], shifts: [{ ...base.shifts[0]!, start: '21:00' }] };
    expect(rosterChanges(base, after)).toEqual(['person c added: c (nurse)', 'person b removed', 'shift n: night 22:00-06:00 days 1 [a] → night 21:00-06:00 days 1 [a]']);
    expect(rosterChanges(undefined, base)).toEqual(['roster created']);
  });
});
