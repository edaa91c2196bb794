import type { Resident } from '../../../contract/registry.ts';
import type { Severity } from '../../../contract/payloads.ts';
import type { Rule, RuleInput, RuleResult, Signal } from '../types.ts';
import { residentLabel, type CareRuleContext } from './care-context.ts';
import { CONTINENCE_RULE_DEFAULTS, type ContinenceRuleConfig } from './config.ts';

/**
 * Continence: a change-needed task (`continence:<residentId>`, care, non-latching). Raised when the
 * wetness sensor reads above `raisePct`; closed when staff record `changed` or the sensor reads
 * below `clearPct` (two levels, so a reading wobbling around one level cannot open and close the task
 * over and over). Low severity, medium once it has waited `upgradeAfterMs`: prolonged wetness is
 * what causes incontinence-associated dermatitis and pressure damage.
 */

export const CONTINENCE_RULE_ID = 'care_continence';
export const CONTINENCE_SIGNAL_RULE = 'continence_change';

export interface ContinenceEntry {
  deviceId: string;
  lastPct: number;
  lastTs: number;
  /** The task is open since (platform time). */
  openSince?: number;
  severity?: Severity;
  /** Staff recorded a change while the sensor still read wet: wait for dry (or `rearmAfterMs`) before a new task. */
  changedAt?: number;
}

export interface ContinenceState {
  residents: Record<string, ContinenceEntry>;
}

export function createContinenceRule(config: Partial<ContinenceRuleConfig> = {}): Rule<ContinenceState> {
  const cfg = { ...CONTINENCE_RULE_DEFAULTS, ...config };
  return {
    id: CONTINENCE_RULE_ID,
    accepts: { types: ['telemetry', 'care_action', 'tick'], kinds: ['wetness_sensor'] },
    initialState: () => ({ residents: {} }),
    evaluate(input: RuleInput, state: ContinenceState, ctx: CareRuleContext): RuleResult<ContinenceState> {
      const signals: Signal[] = [];
      const residents = { ...state.residents };
      if (input.type === 'tick') {
        let changed = false;
        for (const [id, e] of Object.entries(state.residents)) {
          const r = ctx.registry.resident(id);
          if (r === undefined) continue;
          const after = onTime(r, e, input.now, input.now, cfg, ctx, signals);
          if (after !== e) changed = true;
          residents[id] = after;
        }
        // Same object when nothing changed, so the engine need not persist after every tick.
        return { state: changed ? { residents } : state, signals };
      }
      if (input.type === 'care_action') {
        const e = state.residents[input.residentId];
        const r = ctx.registry.resident(input.residentId);
        if (input.action !== 'changed' || e === undefined || r === undefined) return { state, signals };
        const label = residentLabel(r, ctx);
        const stillWet = e.lastPct >= cfg.clearPct;
        const { openSince: _o, severity, changedAt: _c, ...rest } = e;
        residents[r.id] = stillWet ? { ...rest, changedAt: Math.min(input.ts, input.now) } : rest;
        if (e.openSince !== undefined) {
          signals.push(signal(r, e, false, severity ?? 'low', input.ts, { zh: `${label.zh}：已更换（${input.by}）`, en: `${label.en}: changed (by ${input.by})` }));
        }
        return { state: { residents }, signals };
      }
      if (input.type !== 'telemetry' || input.device.kind !== 'wetness_sensor' || input.device.residentId === undefined) return { state, signals };
      const pct = input.metrics.wetness_pct;
      const r = ctx.registry.resident(input.device.residentId);
      const prev = state.residents[input.device.residentId];
      if (typeof pct !== 'number' || r === undefined || (prev !== undefined && input.ts <= prev.lastTs)) return { state, signals };
      const label = residentLabel(r, ctx);
      let e: ContinenceEntry = { ...(prev ?? {}), deviceId: input.device.id, lastPct: pct, lastTs: input.ts };
      if (pct < cfg.clearPct) {
        const { openSince, severity, changedAt: _c, ...rest } = e;
        e = rest;
        if (openSince !== undefined) signals.push(signal(r, e, false, severity ?? 'low', input.ts, { zh: `${label.zh}：传感器已显示干燥（${pct}%）`, en: `${label.en}: the sensor reads dry (${pct} %)` }));
      } else if (pct > cfg.raisePct && e.openSince === undefined && e.changedAt === undefined) {
        e = { ...e, openSince: input.now, severity: 'low' };
        signals.push(signal(r, e, true, 'low', input.ts, { zh: `${label.zh}：尿湿${pct}%，需更换`, en: `${label.en}: wet (${pct} %), change needed` }));
      }
      residents[r.id] = onTime(r, e, input.now, input.ts, cfg, ctx, signals);
      return { state: { residents }, signals };
    },
  };
}

/** Time-driven steps: upgrade a waiting task; re-open one after a change the sensor never confirmed. */
function onTime(r: Resident, e: ContinenceEntry, now: number, sourceTs: number, cfg: ContinenceRuleConfig, ctx: CareRuleContext, signals: Signal[]): ContinenceEntry {
  const label = residentLabel(r, ctx);
  if (e.openSince !== undefined && e.severity === 'low' && now - e.openSince >= cfg.upgradeAfterMs) {
    const min = Math.round(cfg.upgradeAfterMs / 60_000);
    signals.push(signal(r, e, true, 'medium', sourceTs, { zh: `${label.zh}：尿湿${e.lastPct}%，已超过${min}分钟未更换`, en: `${label.en}: wet (${e.lastPct} %) and not changed for over ${min} min` }));
    return { ...e, severity: 'medium' };
  }
  if (e.openSince === undefined && e.changedAt !== undefined && now - e.changedAt >= cfg.rearmAfterMs) {
    const { changedAt: _c, ...rest } = e;
    if (e.lastPct <= cfg.raisePct) return rest;
    signals.push(signal(r, e, true, 'low', sourceTs, { zh: `${label.zh}：更换后仍显示尿湿${e.lastPct}%，请检查`, en: `${label.en}: still reads wet (${e.lastPct} %) after the change: check pad and sensor` }));
    return { ...rest, openSince: now, severity: 'low' };
  }
  return e;
}

function signal(r: Resident, e: ContinenceEntry, active: boolean, severity: Severity, sourceTs: number, message: { zh: string; en: string }): Signal {
  return {
    key: `continence:${r.id}`,
    rule: CONTINENCE_SIGNAL_RULE,
    category: 'care',
    signal: 'care',
    severity,
    homeId: r.homeId,
    deviceId: e.deviceId,
    roomId: r.roomId,
    residentId: r.id,
    active,
    sourceTs,
    value: e.lastPct,
    message,
  };
}
