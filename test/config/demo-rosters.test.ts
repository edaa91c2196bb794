import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import { registryProblems } from '../../contract/registry-index.ts';
import { homeKind } from '../../contract/registry.ts';
import { onDuty, rosterProblems } from '../../alerts/notify/roster.ts';
import { createRosterStore, type RosterStore } from '../../alerts/notify/roster-store.ts';
import { demoRegistry } from '../support/registry.ts';
import { tempDir } from '../alerts/support/harness.ts';

/**
 * Issue 15, audit gap 3: in the demo every alarm of every home and household reaches a person. Each
 * of the 9 care homes has a roster (day, evening and night shifts in Asia/Shanghai, named nurses
 * with phones, a director), the bureau has contacts, and — the property — the roster the notifier
 * uses (the roster store's, a household's being its provider's) has someone on duty at every minute
 * of the week.
 */

const MIN = 60_000;
// Monday 2026-01-05 00:00 in Asia/Shanghai (UTC+8, no daylight saving) = Sunday 16:00 UTC.
const MONDAY = Date.UTC(2026, 0, 4, 16, 0);
const WEEK = 7 * 24 * 60 * MIN;

let store: RosterStore;
let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir('demo-rosters-');
  store = createRosterStore({ registry: demoRegistry(), stateDir: dir.path, clock: createManualClock(MONDAY), logger: pino({ level: 'silent' }) });
  await store.start();
});
afterAll(async () => {
  await store.close();
  await dir.remove();
});

const site = () => demoRegistry().site;
const homeIds = () => site().homes.map((h) => h.id);

describe('demo site rosters', () => {
  it('every care home has its own roster on Asia/Shanghai with named nurses and a director, all with phones; the bureau has contacts', () => {
    const care = site().homes.filter((h) => homeKind(h) === 'care-home').map((h) => h.id);
    expect(care).toHaveLength(9);
    expect((site().rosters ?? []).map((r) => r.homeId).sort()).toEqual(care);
    for (const r of site().rosters ?? []) {
      expect(r.timezone).toBe('Asia/Shanghai');
      expect(rosterProblems(r)).toEqual([]);
      expect(r.directors.length).toBeGreaterThan(0);
      for (const p of [...r.people, ...r.directors]) {
        expect(p.name).toMatch(/[\u4e00-\u9fff]/);
        expect(p.phone).toMatch(/^1\d{10}$/);
      }
      // Three shifts a day: day, evening (小夜班) and night (大夜班).
      expect(new Set(r.shifts.map((s) => s.start))).toEqual(new Set(['08:00', '16:00', '00:00']));
    }
    const bureau = site().contacts?.bureau ?? [];
    expect(bureau.length).toBeGreaterThan(0);
    for (const b of bureau) expect(b.phone).toMatch(/^1\d{10}$/);
    expect(registryProblems(site())).toEqual([]);
  });

  it('every home and household has someone on duty at every minute of the week, and someone at levels 1 and 2', () => {
    for (const homeId of homeIds()) {
      const roster = store.roster(homeId);
      expect(roster, homeId).toBeDefined();
      if (roster === undefined) continue;
      expect(roster.directors.length, `${homeId} level 1`).toBeGreaterThan(0);
      const uncovered: string[] = [];
      for (let t = MONDAY; t < MONDAY + WEEK; t += MIN) if (onDuty(roster, t, 'Asia/Shanghai').length === 0) uncovered.push(new Date(t).toISOString());
      expect(uncovered.slice(0, 3), `${homeId}: nobody on duty`).toEqual([]);
    }
    expect(store.bureau().length).toBeGreaterThan(0);
  });

  it('property: at any instant of any week (2020-2040, to the millisecond), each home has someone on duty who has a phone', () => {
    const ids = homeIds();
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2040, 0, 1) }), fc.constantFrom(...ids), (at, homeId) => {
        const roster = store.roster(homeId);
        if (roster === undefined) return false;
        const duty = onDuty(roster, at, 'Asia/Shanghai');
        return duty.length > 0 && duty.every((p) => p.phone !== undefined);
      }),
      { numRuns: 2000 },
    );
  });

  it('nobody works two shifts back to back (a nurse alone at night is not at the end of a 16-hour day)', () => {
    for (const r of site().rosters ?? []) {
      for (let t = MONDAY; t < MONDAY + WEEK; t += 60 * MIN) {
        const now = new Set(onDuty(r, t, 'Asia/Shanghai').map((p) => p.id));
        const eightHoursLater = onDuty(r, t + 8 * 60 * MIN, 'Asia/Shanghai').map((p) => p.id);
        expect(eightHoursLater.filter((id) => now.has(id)), `${r.homeId} ${new Date(t).toISOString()}`).toEqual([]);
      }
    }
  });
});
