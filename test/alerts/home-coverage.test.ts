import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assessCoverage, EMPTY_COVERAGE, parseAnnouncement, type Announcement, type CoverageState } from '../../alerts/home-coverage.ts';

/** Issue 14, home coverage (alerts/home-coverage.ts): the pure core alone. */
const HOMES = ['h01', 'h02', 'h03', 'h04', 'h05', 'h06'];
const GRACE = 60_000;

/** A split of HOMES over 1-4 instances, every home exactly once. */
const split = fc.array(fc.integer({ min: 0, max: 3 }), { minLength: HOMES.length, maxLength: HOMES.length }).map((owner): Announcement[] => {
  const by = new Map<number, string[]>();
  HOMES.forEach((h, i) => by.set(owner[i] ?? 0, [...(by.get(owner[i] ?? 0) ?? []), h]));
  return [...by].map(([i, homes]) => ({ instance: `i${i}`, homes }));
});

/** Runs the assessment at each of the given times (ascending) with the same announcements. */
function over(times: readonly number[], anns: readonly Announcement[]): ReturnType<typeof assessCoverage>[] {
  let state: CoverageState = EMPTY_COVERAGE;
  return times.map((t) => {
    const r = assessCoverage(HOMES, anns, state, t, GRACE);
    state = r.state;
    return r;
  });
}

const times = fc.array(fc.integer({ min: 0, max: 10 * GRACE }), { minLength: 1, maxLength: 20 }).map((ts) => [...ts].sort((a, b) => a - b));

describe('assessCoverage', () => {
  it('a split owning every home exactly once is never a problem', () => {
    fc.assert(
      fc.property(split, times, (anns, ts) => {
        for (const r of over(ts, anns)) {
          expect(r.unowned).toEqual([]);
          expect(r.ownedTwice).toEqual([]);
        }
      }),
    );
  });

  it('a home left out is reported exactly when it has been unowned for the grace period, and only it', () => {
    fc.assert(
      fc.property(split, fc.constantFrom(...HOMES), times, (anns, missing, ts) => {
        const without = anns.map((a) => ({ ...a, homes: a.homes.filter((h) => h !== missing) }));
        const first = ts[0] ?? 0;
        over(ts, without).forEach((r, i) => {
          expect(r.unowned).toEqual((ts[i] ?? 0) - first >= GRACE ? [missing] : []);
          expect(r.ownedTwice).toEqual([]);
        });
      }),
    );
  });

  it('a home announced by two instances is reported after the grace period, with both owners', () => {
    fc.assert(
      fc.property(split, fc.constantFrom(...HOMES), (anns, twice) => {
        const extra: Announcement = { instance: 'zz', homes: [twice] };
        const [before, after] = over([0, GRACE], [...anns.map((a) => ({ ...a, homes: a.homes.filter((h) => h !== twice || a.instance !== 'zz') })), extra]);
        const owners = [...new Set([...anns.filter((a) => a.homes.includes(twice)).map((a) => a.instance), 'zz'])].sort();
        expect(before?.ownedTwice).toEqual([]);
        expect(after?.ownedTwice).toEqual([{ home: twice, instances: owners }]);
        expect(after?.unowned).toEqual([]);
      }),
    );
  });

  it('a restart shorter than the grace period is no alarm, and the grace starts again after it', () => {
    fc.assert(
      fc.property(split, fc.integer({ min: 0, max: GRACE - 1 }), (anns, gap) => {
        const gone = anns[0];
        if (gone === undefined) return;
        const rest = anns.slice(1);
        let state: CoverageState = EMPTY_COVERAGE;
        const at = (t: number, a: readonly Announcement[]): ReturnType<typeof assessCoverage> => {
          const r = assessCoverage(HOMES, a, state, t, GRACE);
          state = r.state;
          return r;
        };
        expect(at(0, rest).unowned).toEqual([]);
        expect(at(gap, rest).unowned).toEqual([]);
        expect(at(gap + 1, anns).unowned).toEqual([]);
        // Gone again: a fresh grace period, not the one of the first restart.
        expect(at(gap + 2, rest).unowned).toEqual([]);
        expect(at(gap + 1 + GRACE, rest).unowned).toEqual([]);
        expect(at(gap + 2 + GRACE, rest).unowned).toEqual([...gone.homes].sort());
      }),
    );
  });

  it('announced homes outside the registry are ignored', () => {
    const r = assessCoverage(['h01'], [{ instance: 'a', homes: ['h01', 'h99'] }, { instance: 'b', homes: ['h99'] }], EMPTY_COVERAGE, 0, 0);
    expect(r).toMatchObject({ unowned: [], ownedTwice: [] });
  });
});

describe('parseAnnouncement', () => {
  it('accepts a JSON list of home ids and nothing else', () => {
    expect(parseAnnouncement('a', '["h01","h02"]')).toEqual({ instance: 'a', homes: ['h01', 'h02'] });
    for (const bad of [null, '', 'nope', '{"homes":[]}', '[1]', `["${'x'.repeat(65)}"]`]) expect(parseAnnouncement('a', bad)).toBeUndefined();
  });
});
