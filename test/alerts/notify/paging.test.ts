import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decidePages, owedPages, resumeState, type LevelView, type Page, type PageState, type PageView } from '../../../alerts/notify/paging.ts';
import { nextShiftChange, onDuty } from '../../../alerts/notify/roster.ts';
import type { Roster } from '../../../contract/registry.ts';

/** Issue 15 "keep trying until someone answers": who to page now and when next, a pure function. */

const S = 1000;
const lv = (channels: Array<string | [string, number, number?]>, staffed = true): LevelView => ({
  staffed,
  channels: channels.map((c) => (typeof c === 'string' ? { channel: c } : { channel: c[0], repeat: { everyS: c[1], ...(c[2] !== undefined ? { max: c[2] } : {}) } })),
});
function view(over: Partial<PageView> = {}): PageView {
  return { now: 0, level: 0, acknowledged: false, silent: false, levels: [lv([['duty', 120]]), lv([['mgmt', 120]]), lv([['bureau', 120]])], onDuty: ['li'], ...over };
}
const levelsOf = (pages: readonly Page[]): number[] => pages.map((p) => p.level);

describe('decidePages', () => {
  it('opens at level 0 and repeats its channels every everyS until acknowledged; nothing after', () => {
    const d0 = decidePages(undefined, view());
    expect(d0.pages).toEqual([{ level: 0, reason: 'opened' }]);
    expect(d0.wakeAt).toBe(120 * S);
    const early = decidePages(d0.state, view({ now: 119 * S }));
    expect(early.pages).toEqual([]);
    const d1 = decidePages(d0.state, view({ now: 120 * S }));
    expect(d1.pages).toEqual([{ level: 0, reason: 'repeat', channels: ['duty'] }]);
    expect(d1.wakeAt).toBe(240 * S);
    const acked = decidePages(d1.state, view({ now: 240 * S, acknowledged: true }));
    expect(acked.pages).toEqual([]);
    expect(acked.wakeAt).toBeUndefined();
  });

  it('an escalation pages every rung above the highest paged and moves the repeats there; the bureau keeps repeating', () => {
    const d0 = decidePages(undefined, view());
    const d1 = decidePages(d0.state, view({ now: 15 * S, level: 2 }));
    expect(d1.pages).toEqual([
      { level: 1, reason: 'escalated' },
      { level: 2, reason: 'escalated' },
    ]);
    expect(d1.wakeAt).toBe(135 * S);
    let state = d1.state;
    for (let i = 1; i <= 5; i++) {
      const d = decidePages(state, view({ now: (15 + 120 * i) * S, level: 2 }));
      expect(d.pages).toEqual([{ level: 2, reason: 'repeat', channels: ['bureau'] }]);
      state = d.state;
    }
  });

  it('a routed rung with nobody on duty is passed over at once; at the bureau it stays', () => {
    const levels = [lv([['duty', 120]], false), lv([['mgmt', 120]], false), lv([['bureau', 120]], false)];
    const d = decidePages(undefined, view({ levels, onDuty: [] }));
    expect(levelsOf(d.pages)).toEqual([0, 1, 2]);
    expect(d.jumps).toEqual([
      { from: 0, to: 1 },
      { from: 1, to: 2 },
    ]);
    expect(d.state?.target).toBe(2);
    // A rung with no route for the severity is skipped on the way up.
    const d2 = decidePages(undefined, view({ levels: [lv([['duty', 120]], false), lv([]), lv([['bureau', 120]])], onDuty: [] }));
    expect(d2.jumps).toEqual([{ from: 0, to: 2 }]);
    // Nobody on duty at the next decision (the shift ended): jump then, not at the rung's deadline.
    const d3 = decidePages(decidePages(undefined, view()).state, view({ now: 60 * S, onDuty: [], levels: [lv([['duty', 120]], false), lv([['mgmt', 120]]), lv([['bureau', 120]])] }));
    expect(d3.pages).toEqual([{ level: 1, reason: 'empty_level' }]);
    expect(d3.jumps).toEqual([{ from: 0, to: 1 }]);
  });

  it('a shift change pages the incoming people on duty only, and wakes at the boundary', () => {
    const d0 = decidePages(undefined, view({ shiftChangeAt: 50 * S }));
    expect(d0.wakeAt).toBe(50 * S);
    const d1 = decidePages(d0.state, view({ now: 50 * S, onDuty: ['wang'] }));
    expect(d1.pages).toEqual([{ level: 0, reason: 'shift_change', people: ['wang'] }]);
    // Also when the incident is already with the bureau: the incoming nurse is the one in the building.
    const up = decidePages(decidePages(undefined, view({ level: 2 })).state, view({ now: 10 * S, level: 2, onDuty: ['wang'] }));
    expect(up.pages).toEqual([{ level: 0, reason: 'shift_change', people: ['wang'] }]);
  });

  it('repeat: false sends once; max caps the repeats; an acknowledged incident still pages a later escalation', () => {
    const once = decidePages(undefined, view({ levels: [lv(['duty']), lv(['mgmt']), lv(['bureau'])] }));
    expect(once.wakeAt).toBeUndefined();
    let state: PageState | undefined = decidePages(undefined, view({ levels: [lv([['duty', 60, 2]]), lv([]), lv([])] })).state;
    const seen: number[] = [];
    for (let t = 60; t <= 600; t += 60) {
      const d = decidePages(state, view({ now: t * S, levels: [lv([['duty', 60, 2]]), lv([]), lv([])] }));
      if (d.pages.length > 0) seen.push(t);
      state = d.state;
    }
    expect(seen).toEqual([60, 120]);
    const acked = decidePages(decidePages(undefined, view()).state, view({ now: 200 * S, level: 2, acknowledged: true }));
    expect(acked.pages.map((p) => p.reason)).toEqual(['escalated', 'escalated']);
    expect(acked.wakeAt).toBeUndefined();
  });

  it('re-alerting pages level 0 and the current level again; held-back points only page nobody', () => {
    const d0 = decidePages(undefined, view({ level: 2 }));
    const r = decidePages(d0.state, view({ now: 30 * S, level: 2 }), { realert: true });
    expect(levelsOf(r.pages)).toEqual([0, 2]);
    expect(decidePages(undefined, view({ silent: true }))).toEqual({ pages: [], jumps: [], state: undefined });
  });

  it('property: unacknowledged, no gap between pages longer than the longest repeat period; nothing after the acknowledgement but an escalation', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 30, max: 900 }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
        fc.integer({ min: 0, max: 2 }),
        fc.array(fc.integer({ min: 1, max: 7200 }), { minLength: 0, maxLength: 2 }),
        fc.option(fc.integer({ min: 1, max: 7200 }), { nil: undefined }),
        fc.array(fc.integer({ min: 1, max: 7200 }), { maxLength: 4 }),
        (every, staffedArr, startLevel, escalateAtS, ackAtS, shiftAtS) => {
          const horizon = 7200 * S;
          const escalations = [...escalateAtS].sort((a, b) => a - b).map((x) => x * S);
          const shifts = [...new Set(shiftAtS)].sort((a, b) => a - b).map((x) => x * S);
          const ackAt = ackAtS === undefined ? undefined : ackAtS * S;
          const names = ['li', 'wang', 'zhao', 'sun', 'zhou'];
          const onDutyAt = (t: number): string[] => (staffedArr[0] === true ? [names[shifts.filter((s) => s <= t).length % names.length]!] : []);
          const levels = every.map((e, i): LevelView => ({ channels: [{ channel: `c${i}`, repeat: { everyS: e } }], staffed: i === 0 ? staffedArr[0] === true : staffedArr[i] === true }));
          let level = startLevel;
          let acked = false;
          const mk = (now: number): PageView => {
            const next = shifts.find((s) => s > now);
            return { now, level, acknowledged: acked, silent: false, levels, onDuty: onDutyAt(now), ...(next !== undefined ? { shiftChangeAt: next } : {}) };
          };
          const log: Array<{ t: number; page: Page }> = [];
          let d = decidePages(undefined, mk(0));
          for (const page of d.pages) log.push({ t: 0, page });
          let now = 0;
          for (let guard = 0; guard < 10_000; guard++) {
            const candidates = [d.wakeAt, escalations.find((e) => e > now), ackAt !== undefined && ackAt > now ? ackAt : undefined].filter((x): x is number => x !== undefined && x <= horizon);
            if (candidates.length === 0) break;
            now = Math.min(...candidates);
            if (ackAt !== undefined && now >= ackAt) acked = true;
            for (const e of escalations) if (e === now) level = Math.min(2, level + 1);
            d = decidePages(d.state, mk(now));
            for (const page of d.pages) log.push({ t: now, page });
            if (acked) expect(d.wakeAt).toBeUndefined();
          }
          const until = ackAt ?? horizon;
          const before = log.filter((x) => x.t < until).map((x) => x.t);
          const longest = Math.max(...every) * S;
          expect(before[0]).toBe(0);
          for (let i = 1; i < before.length; i++) expect(before[i]! - before[i - 1]!).toBeLessThanOrEqual(longest);
          expect(until - before[before.length - 1]!).toBeLessThanOrEqual(longest);
          // Nothing after the acknowledgement but an escalation's first page.
          for (const x of log) if (ackAt !== undefined && x.t >= ackAt) expect(x.page.reason).toBe('escalated');
          // Repeats go to a rung with someone on duty, or to the last routed rung (the bureau).
          for (const x of log) if (x.page.reason === 'repeat') expect(levels[x.page.level]!.staffed || x.page.level === 2).toBe(true);
          // Everyone who comes on duty before the acknowledgement is paged at level 0 when their shift starts.
          for (const s of shifts) {
            if (s >= until || s > horizon) continue;
            const who = onDutyAt(s);
            for (const p of who) {
              const told = log.some((x) => x.t <= s && x.page.level === 0 && (x.page.people === undefined ? onDutyAt(x.t).includes(p) : x.page.people.includes(p)));
              expect(told).toBe(true);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('resumeState (restart, or a home taken over)', () => {
  const v = view({ now: 1000 * S });
  it('a recent page waits for its repeat; no page, or one cut short, is due at once', () => {
    const recent = resumeState(v, [{ ts: 950 * S, level: 0, channel: 'duty', recipient: 'li', attempt: 1, status: 'delivered' }]);
    const d = decidePages(recent, v);
    expect(d.pages).toEqual([]);
    expect(d.wakeAt).toBe(1070 * S);
    expect(decidePages(resumeState(v, []), v).pages).toEqual([{ level: 0, reason: 'opened' }]);
    const cut = resumeState(v, [
      { ts: 950 * S, level: 0, channel: 'duty', recipient: 'li', attempt: 1, status: 'retrying' },
      { ts: 990 * S, level: 0, channel: 'duty', recipient: 'li', attempt: 2, status: 'cancelled' },
    ]);
    expect(decidePages(cut, v).pages).toEqual([{ level: 0, reason: 'repeat', channels: ['duty'] }]);
    const overdue = resumeState(v, [{ ts: 700 * S, level: 0, channel: 'duty', recipient: 'li', attempt: 1, status: 'delivered' }]);
    expect(decidePages(overdue, v).pages).toHaveLength(1);
  });

  it('resumes at the highest level paged, and knows who was told at level 0', () => {
    const s = resumeState(view({ now: 1000 * S, level: 2 }), [
      { ts: 800 * S, level: 0, channel: 'duty', recipient: 'li', attempt: 1, status: 'delivered' },
      { ts: 815 * S, level: 2, channel: 'bureau', recipient: 'chen', attempt: 1, status: 'delivered' },
    ]);
    expect(s).toMatchObject({ target: 2, notified: 2, told: ['li'], marks: { bureau: { at: 815 * S, repeats: 0 } } });
    const d = decidePages(s, view({ now: 1000 * S, level: 2, onDuty: ['wang'] }));
    expect(d.pages).toEqual([
      { level: 2, reason: 'repeat', channels: ['bureau'] },
      { level: 0, reason: 'shift_change', people: ['wang'] },
    ]);
  });
});

describe('a restart catches up with what the incident did meanwhile', () => {
  const now = 1000 * S;
  const li = { ts: 800 * S, level: 0, channel: 'duty', recipient: 'li', attempt: 1, status: 'delivered' } as const;

  it('an escalation while nobody followed the incident pages every rung it skipped, acknowledged or not', () => {
    // Unacknowledged, the 15 s deadline passed while alerts was down: the director hears of it too.
    const v = view({ now, level: 2 });
    expect(levelsOf(decidePages(resumeState(v, [li]), v).pages)).toEqual([1, 2]);
    // Acknowledged at level 0, the 180 s investigation over meanwhile: the director and the bureau.
    const acked = view({ now, level: 2, acknowledged: true });
    expect(decidePages(resumeState(acked, [li], 0), acked).pages).toEqual([
      { level: 1, reason: 'escalated' },
      { level: 2, reason: 'escalated' },
    ]);
    // Opened at level 2 (a fall) and never paged: every rung from the duty staff up.
    expect(decidePages(resumeState(v, []), v).pages).toEqual([0, 1, 2].map((level) => ({ level, reason: 'opened' })));
    // Acknowledged at its level and nothing above it: nothing.
    expect(decidePages(resumeState(acked, [li], 2), acked).pages).toEqual([]);
  });

  it('an acknowledged incident owes its escalation pages until delivered: cut short or failed, sent again to those not reached', () => {
    const acked = view({ now, level: 2, acknowledged: true });
    const period = [
      { ts: 990 * S, level: 1, channel: 'mgmt', recipient: 'zhang', attempt: 1, status: 'delivered' },
      { ts: 990 * S, level: 2, channel: 'bureau', recipient: 'chen', attempt: 1, status: 'retrying' },
      { ts: 991 * S, level: 2, channel: 'bureau', recipient: 'chen', attempt: 2, status: 'cancelled' },
      { ts: 990 * S, level: 2, channel: 'bureau', recipient: 'wu', attempt: 1, status: 'delivered' },
    ];
    const state = resumeState(acked, [li, ...period], 0);
    expect(decidePages(state, acked).pages).toEqual([]);
    expect(owedPages(acked, state, period, 0)).toEqual([{ level: 2, reason: 'resumed', channels: ['bureau'], people: ['chen'] }]);
    const failed = [{ ts: 995 * S, level: 2, channel: 'bureau', recipient: 'group', attempt: 5, status: 'failed' }];
    expect(owedPages(acked, resumeState(acked, [li, ...failed], 0), failed, 0)).toEqual([{ level: 2, reason: 'resumed', channels: ['bureau'] }]);
    // Delivered in the end, or answered (the rungs up to the acknowledgement's): nothing owed.
    const done = [...period, { ts: 999 * S, level: 2, channel: 'bureau', recipient: 'chen', attempt: 1, status: 'delivered' }];
    expect(owedPages(acked, resumeState(acked, [li, ...done], 0), done, 0)).toEqual([]);
    expect(owedPages(acked, resumeState(acked, [li, ...period], 2), period, 2)).toEqual([]);
  });

  it('unacknowledged: a skipped rung cut short is owed, the repeated rung is left to its marks', () => {
    const v = view({ now, level: 2 });
    const records = [
      li,
      { ts: 815 * S, level: 1, channel: 'mgmt', recipient: 'zhang', attempt: 3, status: 'failed' },
      { ts: 815 * S, level: 2, channel: 'bureau', recipient: 'chen', attempt: 1, status: 'failed' },
    ];
    const state = resumeState(v, records);
    expect(owedPages(v, state, records)).toEqual([{ level: 1, reason: 'resumed', channels: ['mgmt'], people: ['zhang'] }]);
    // The bureau's failed page is due at once as a repeat.
    expect(decidePages(state, v).pages).toEqual([{ level: 2, reason: 'repeat', channels: ['bureau'] }]);
  });
});

describe('nextShiftChange', () => {
  const roster: Roster = {
    homeId: 'h01',
    timezone: 'Asia/Shanghai',
    people: [
      { id: 'li', name: '李', role: 'nurse' },
      { id: 'wang', name: '王', role: 'nurse' },
    ],
    shifts: [
      { id: 'day', name: '白班', days: [1, 2, 3, 4, 5, 6, 7], start: '08:00', end: '20:00', people: ['li'] },
      { id: 'night', name: '夜班', days: [1, 2, 3, 4, 5, 6, 7], start: '20:00', end: '08:00', people: ['wang'] },
    ],
    directors: [],
  };
  it('is the next local boundary, strictly after now, and who is on duty changes there', () => {
    const at = Date.UTC(2026, 0, 1, 1, 0, 30); // 09:00:30 Shanghai
    const next = nextShiftChange(roster, at, roster.timezone);
    expect(next).toBe(Date.UTC(2026, 0, 1, 12, 0)); // 20:00 Shanghai
    expect(onDuty(roster, next! - 1, roster.timezone).map((p) => p.id)).toEqual(['li']);
    expect(onDuty(roster, next!, roster.timezone).map((p) => p.id)).toEqual(['wang']);
    expect(nextShiftChange(roster, next!, roster.timezone)).toBe(Date.UTC(2026, 0, 2, 0, 0));
    expect(nextShiftChange({ shifts: [] }, at, 'UTC')).toBeUndefined();
  });
});
