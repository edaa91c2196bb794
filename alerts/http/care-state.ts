import type { Fact } from '../rules/facts.ts';
import type { ResidentCareState, ResidentCareStateOf } from './live.ts';

/**
 * What the dashboard shows of each resident's care (NEWS2 tile, last and next turn), kept from the
 * facts the care rules report (alerts/rules/facts.ts) instead of read from their state: the live
 * plugin's `residentCareState` dep. A pure reducer per resident, and a small view holding its result.
 */

/** What the facts have said about one resident so far. */
export interface CareRecord {
  readonly news2?: NonNullable<ResidentCareState['news2']>;
  readonly lastTurnAt?: number;
  /** Absent while out of bed (no turn due). */
  readonly nextTurnDueAt?: number;
}

/** The record after `fact`. Pure: returns `prev` itself when the fact changes nothing shown. */
export function reduceCare(prev: CareRecord | undefined, fact: Fact): CareRecord | undefined {
  switch (fact.kind) {
    case 'news2': {
      const s = fact.score;
      return { ...prev, news2: { aggregate: s.aggregate, partial: s.partial, missing: s.missing, risk: s.risk } };
    }
    case 'turn':
      return { ...prev, lastTurnAt: fact.lastTurnAt, nextTurnDueAt: fact.nextTurnDueAt };
    case 'turn_schedule': {
      const { nextTurnDueAt: _dropped, ...rest } = prev ?? {};
      return {
        ...rest,
        ...(fact.lastTurnAt !== undefined ? { lastTurnAt: fact.lastTurnAt } : {}),
        ...(fact.nextTurnDueAt !== undefined ? { nextTurnDueAt: fact.nextTurnDueAt } : {}),
      };
    }
    case 'bed':
      return prev;
  }
}

/**
 * What the live API returns for a record: nothing until there is a score or a turn due (a last
 * turn alone, out of bed and unscored, is not shown).
 */
export function careStateOf(rec: CareRecord | undefined): ResidentCareState | undefined {
  if (rec === undefined || (rec.news2 === undefined && rec.nextTurnDueAt === undefined)) return undefined;
  return {
    ...(rec.news2 !== undefined ? { news2: rec.news2 } : {}),
    ...(rec.nextTurnDueAt !== undefined ? { nextTurnDueAt: rec.nextTurnDueAt } : {}),
    ...(rec.lastTurnAt !== undefined ? { lastTurnAt: rec.lastTurnAt } : {}),
  };
}

export interface CareStateView {
  /** The facts of one evaluation (the engine's `onFacts`), or the engine's standing facts after a restore. */
  onFacts(facts: readonly Fact[]): void;
  readonly residentCareState: ResidentCareStateOf;
}

export function createCareStateView(): CareStateView {
  const records = new Map<string, CareRecord>();
  return {
    onFacts(facts) {
      for (const f of facts) {
        const prev = records.get(f.residentId);
        const next = reduceCare(prev, f);
        if (next === prev) continue;
        if (next === undefined) records.delete(f.residentId);
        else records.set(f.residentId, next);
      }
    },
    residentCareState: (residentId) => careStateOf(records.get(residentId)),
  };
}
