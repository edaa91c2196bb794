import type { Resident } from '../../../contract/registry.ts';
import type { Fact, TurnScheduleFact } from '../facts.ts';
import type { Rule, RuleInput, RuleResult, Signal } from '../types.ts';
import { formatLocalTime, residentLabel, trackBed, type BedState, type CareRuleContext } from './care-context.ts';
import { REPOSITION_RULE_DEFAULTS, type RepositionRuleConfig } from './config.ts';

/**
 * Repositioning of bedridden residents against pressure injuries (NPIAP/EPUAP 2019 guideline:
 * individualised repositioning schedule). Each resident has `turnIntervalMin` (60–240, default 120).
 * A turn is either recorded by staff (care_action `turned`) or detected by the bed sensor: a
 * movement burst, `movement_index` ≥ `turnMovementIndex` held for `turnBurstMs`. While the
 * resident is in bed, a turn not done by `lastTurn + interval` is a care alert
 * (`turn_overdue:<residentId>`, medium) at the next tick; a turn or leaving the bed clears it.
 * Getting back into bed starts a new interval.
 * Facts (alerts/rules/facts.ts): a `turn` for every turn (staff or sensor) with the schedule after it,
 * a `turn_schedule` when lying down starts an interval or leaving the bed stops it, and a `bed` when
 * the presence changes: the turn history and the dashboard's next-turn time are built from them.
 */

export const REPOSITION_RULE_ID = 'care_reposition';
export const TURN_SIGNAL_RULE = 'turn_overdue';

export interface TurnEntry {
  lastTurn: number;
  by: 'movement' | 'staff' | 'in_bed';
  /** Start (device time) of the current movement burst, and its last reading. */
  burstSince?: number;
  burstLastTs?: number;
  /** The current burst has already counted as a turn. */
  burstCounted?: boolean;
  overdue: boolean;
  deviceId?: string;
}

export interface RepositionState {
  beds: Record<string, BedState>;
  residents: Record<string, TurnEntry>;
  /** When the next turn is due (ms), per resident in bed. */
  nextTurnDue: Record<string, number>;
}

export function createRepositionRule(config: Partial<RepositionRuleConfig> = {}): Rule<RepositionState> {
  const cfg = { ...REPOSITION_RULE_DEFAULTS, ...config };
  const intervalMs = (r: Resident): number => (r.turnIntervalMin ?? cfg.defaultIntervalMin) * 60_000;
  return {
    id: REPOSITION_RULE_ID,
    accepts: { types: ['telemetry', 'event', 'care_action', 'tick'], kinds: ['bed_sensor'] },
    initialState: () => ({ beds: {}, residents: {}, nextTurnDue: {} }),
    standingFacts(state: RepositionState, ctx: CareRuleContext): Fact[] {
      const out: Fact[] = [];
      for (const id of new Set([...Object.keys(state.residents), ...Object.keys(state.nextTurnDue)])) {
        const r = ctx.registry.resident(id);
        if (r !== undefined) out.push(schedule(r, state.residents[id]?.lastTurn, state.nextTurnDue[id]));
      }
      return out;
    },
    evaluate(input: RuleInput, state: RepositionState, ctx: CareRuleContext): RuleResult<RepositionState> {
      const signals: Signal[] = [];
      /** Allocated only when something is found: most readings find nothing. */
      let facts: Fact[] | undefined;
      const next: RepositionState = { beds: { ...state.beds }, residents: { ...state.residents }, nextTurnDue: { ...state.nextTurnDue } };
      const turned = (r: Resident, e: TurnEntry, at: number, by: 'staff' | 'movement', sourceTs: number, who?: string): TurnEntry => {
        if (e.overdue) {
          const label = residentLabel(r, ctx);
          const how = by === 'staff' ? { zh: `已翻身（${who ?? ''}）`, en: `turned (by ${who ?? 'staff'})` } : { zh: '床垫传感器检测到翻身', en: 'turn detected by the bed sensor' };
          signals.push(turnSignal(r, e, false, sourceTs, { zh: `${label.zh}：${how.zh}`, en: `${label.en}: ${how.en}` }));
        }
        const due = at + intervalMs(r);
        const lastTurn = Math.max(e.lastTurn, at);
        next.nextTurnDue[r.id] = due;
        (facts ??= []).push({
          kind: 'turn',
          homeId: r.homeId,
          residentId: r.id,
          source: by === 'staff' ? 'staff' : 'sensor',
          ts: at,
          intervalMin: Math.round(intervalMs(r) / 60_000),
          lastTurnAt: lastTurn,
          nextTurnDueAt: due,
        });
        return { ...e, lastTurn, by, overdue: false };
      };
      if (input.type === 'tick') {
        for (const [id, e] of Object.entries(state.residents)) {
          const r = ctx.registry.resident(id);
          if (r === undefined || next.beds[id]?.inBed !== true || e.overdue) continue;
          const due = e.lastTurn + intervalMs(r);
          if (input.now <= due) continue;
          const label = residentLabel(r, ctx);
          const min = Math.round(intervalMs(r) / 60_000);
          const last = formatLocalTime(e.lastTurn, cfg.utcOffsetMin);
          next.residents[id] = { ...e, overdue: true };
          signals.push(
            turnSignal(r, e, true, input.now, {
              zh: `${label.zh}：翻身已逾期（每${min}分钟一次，上次${last}）`,
              en: `${label.en}: turn overdue (every ${min} min; last turn ${last})`,
            }),
          );
        }
        return { state: signals.length > 0 ? next : state, signals };
      }
      if (input.type === 'care_action') {
        const r = ctx.registry.resident(input.residentId);
        const e = next.residents[input.residentId];
        if (input.action !== 'turned' || r === undefined) return { state, signals };
        const at = Math.min(input.ts, input.now);
        next.residents[r.id] = turned(r, e ?? { lastTurn: at, by: 'staff', overdue: false }, at, 'staff', input.ts, input.by);
        return { state: next, signals, facts };
      }
      if ((input.type !== 'telemetry' && input.type !== 'event') || input.device.kind !== 'bed_sensor' || input.device.residentId === undefined) return { state, signals };
      const r = ctx.registry.resident(input.device.residentId);
      if (r === undefined) return { state, signals };
      const t = trackBed(next.beds, input);
      if (t?.fact !== undefined) (facts ??= []).push(t.fact);
      let e = next.residents[r.id];
      const inBed = next.beds[r.id]?.inBed === true;
      if (t?.transition === 'exit') {
        if (e?.overdue === true) {
          const label = residentLabel(r, ctx);
          signals.push(turnSignal(r, e, false, input.ts, { zh: `${label.zh}：已离床`, en: `${label.en}: out of bed` }));
        }
        delete next.nextTurnDue[r.id];
        if (e !== undefined) next.residents[r.id] = { ...e, overdue: false, deviceId: input.device.id };
        (facts ??= []).push(schedule(r, e?.lastTurn, undefined));
        return { state: next, signals, facts };
      }
      if (inBed && (e === undefined || t?.transition === 'return')) {
        // Lying down (or first seen lying) starts a new interval.
        const at = Math.min(input.ts, input.now);
        e = { lastTurn: at, by: 'in_bed', overdue: false, deviceId: input.device.id };
        next.nextTurnDue[r.id] = at + intervalMs(r);
        (facts ??= []).push(schedule(r, at, at + intervalMs(r)));
      }
      if (e === undefined) return { state: next, signals, facts };
      const mv = input.type === 'telemetry' ? input.metrics.movement_index : undefined;
      if (typeof mv === 'number' && inBed && (e.burstLastTs === undefined || input.ts > e.burstLastTs)) {
        if (mv >= cfg.turnMovementIndex) {
          const fresh = e.burstSince === undefined || e.burstLastTs === undefined || input.ts - e.burstLastTs > cfg.maxGapMs;
          const since = fresh ? input.ts : (e.burstSince as number);
          e = { ...e, burstSince: since, burstLastTs: input.ts, burstCounted: fresh ? false : e.burstCounted === true, deviceId: input.device.id };
          if (!e.burstCounted && input.ts - since >= cfg.turnBurstMs) e = { ...turned(r, e, input.ts, 'movement', input.ts), burstCounted: true };
        } else {
          const { burstSince: _s, burstCounted: _c, ...rest } = e;
          e = { ...rest, burstLastTs: input.ts };
        }
      }
      next.residents[r.id] = e;
      return { state: next, signals, facts };
    },
  };
}

function schedule(r: Resident, lastTurnAt: number | undefined, nextTurnDueAt: number | undefined): TurnScheduleFact {
  return {
    kind: 'turn_schedule',
    homeId: r.homeId,
    residentId: r.id,
    ...(lastTurnAt !== undefined ? { lastTurnAt } : {}),
    ...(nextTurnDueAt !== undefined ? { nextTurnDueAt } : {}),
  };
}

function turnSignal(r: Resident, e: TurnEntry, active: boolean, sourceTs: number, message: { zh: string; en: string }): Signal {
  return {
    key: `${TURN_SIGNAL_RULE}:${r.id}`,
    rule: TURN_SIGNAL_RULE,
    category: 'care',
    signal: 'care',
    severity: 'medium',
    homeId: r.homeId,
    ...(e.deviceId !== undefined ? { deviceId: e.deviceId } : {}),
    roomId: r.roomId,
    residentId: r.id,
    active,
    sourceTs,
    message,
  };
}
