import type { RuleStates } from '../engine.ts';
import type { News2State } from '../rules/care/news2-rule.ts';
import type { RepositionState } from '../rules/care/reposition-rule.ts';
import { NEWS2_RULE_ID } from '../rules/care/news2-rule.ts';
import { REPOSITION_RULE_ID } from '../rules/care/reposition-rule.ts';
import type { ResidentCareState, ResidentCareStateOf } from './live.ts';

/**
 * Adapts the care rules' state (NEWS2 scores, next turn due) to the live plugin's
 * `residentCareState` dep. `snapshot` is the engine's `snapshot()` (a JSON copy of every rule
 * state), so it is taken at most once per `maxAgeMs` however many residents a request asks about.
 */
export function careStateFromRules(snapshot: () => RuleStates, now: () => number, maxAgeMs = 1000): ResidentCareStateOf {
  let cached: { at: number; news2?: Partial<News2State>; turns?: Partial<RepositionState> } | undefined;
  return (residentId) => {
    const t = now();
    if (cached === undefined || t - cached.at > maxAgeMs || t < cached.at) {
      const states = snapshot();
      cached = { at: t, news2: states[NEWS2_RULE_ID] as Partial<News2State> | undefined, turns: states[REPOSITION_RULE_ID] as Partial<RepositionState> | undefined };
    }
    const score = cached.news2?.scores?.[residentId];
    const next = cached.turns?.nextTurnDue?.[residentId];
    const lastTurn = cached.turns?.residents?.[residentId]?.lastTurn;
    if (score === undefined && next === undefined) return undefined;
    const out: ResidentCareState = {
      ...(score !== undefined ? { news2: { aggregate: score.aggregate, partial: score.partial, missing: score.missing, risk: score.risk } } : {}),
      ...(next !== undefined ? { nextTurnDueAt: next } : {}),
      ...(lastTurn !== undefined ? { lastTurnAt: lastTurn } : {}),
    };
    return out;
  };
}
