import type { Resident } from '../../../contract/registry.ts';
import type { Rule, RuleInput, RuleResult, Signal } from '../types.ts';
import { formatLocalTime, inLocalWindow, residentLabel, trackBed, type BedState, type CareRuleContext } from './care-context.ts';
import { BED_RULE_DEFAULTS, type BedRuleConfig } from './config.ts';
import { roomLabel, roomResidentsText } from './sos-rule.ts';

/**
 * Bed exit at night, not back in bed, and falls.
 * - A resident marked `fallRisk` who leaves the bed during the night window is a care alert at
 *   once (`bed_exit:<residentId>`, high).
 * - Anyone still out of bed `returnWithinMs` after leaving, when the exit or the present moment is
 *   in the night window, is an emergency (`bed_exit_long:<residentId>`, critical): unacknowledged,
 *   it climbs the escalation ladder.
 * - `bed_return` or `bed_occupied: true` clears both.
 * - A `fall` event is an emergency at any hour (`fall:<residentId>`, critical, escalate at once),
 *   latching: a person must resolve it after seeing the resident. From a bed sensor of no resident
 *   it is raised for the room (`fall:<homeId>/<roomId>`), as a room-level SOS is.
 * Facts (alerts/rules/facts.ts): a `bed` fact when the presence changes or is first known.
 */

export const BED_RULE_ID = 'care_bed';

export interface BedExit {
  /** When the resident left the bed (device time, never later than the platform clock). */
  at: number;
  deviceId: string;
  night: boolean;
  alerted: boolean;
  escalated: boolean;
}

export interface BedRuleState {
  beds: Record<string, BedState>;
  exits: Record<string, BedExit>;
}

export function createBedRule(config: Partial<BedRuleConfig> = {}): Rule<BedRuleState> {
  const cfg = { ...BED_RULE_DEFAULTS, ...config };
  const isNight = (ms: number): boolean => inLocalWindow(ms, cfg.nightStartMin, cfg.nightEndMin, cfg.utcOffsetMin);
  return {
    id: BED_RULE_ID,
    accepts: { types: ['telemetry', 'event', 'tick'], kinds: ['bed_sensor'] },
    initialState: () => ({ beds: {}, exits: {} }),
    evaluate(input: RuleInput, state: BedRuleState, ctx: CareRuleContext): RuleResult<BedRuleState> {
      const signals: Signal[] = [];
      if (input.type === 'tick') {
        let next: BedRuleState | undefined;
        for (const [id, exit] of Object.entries(state.exits)) {
          const resident = ctx.registry.resident(id);
          if (resident === undefined || exit.escalated) continue;
          next ??= { ...state, exits: { ...state.exits } };
          checkLong(resident, exit, next, input.now, input.now, cfg, isNight, ctx, signals);
        }
        return { state: next ?? state, signals };
      }
      if ((input.type !== 'telemetry' && input.type !== 'event') || input.device.kind !== 'bed_sensor') return { state, signals };
      const resident = input.device.residentId === undefined ? undefined : ctx.registry.resident(input.device.residentId);
      // A bed sensor of no resident (a free bed, a resident not yet registered) still reports a
      // fall: raised at room level, as a room-level call button's SOS is (sos-rule.ts). Its bed
      // presence is not tracked: the exit alerts are a resident's (their fallRisk, their night).
      if (resident === undefined) {
        if (input.type === 'event' && input.event.type === 'fall') signals.push(...roomFall(input, ctx));
        return { state, signals };
      }
      const next: BedRuleState = { beds: { ...state.beds }, exits: { ...state.exits } };
      const label = residentLabel(resident, ctx);
      const base = {
        category: 'care' as const,
        signal: 'care' as const,
        homeId: resident.homeId,
        deviceId: input.device.id,
        roomId: resident.roomId,
        residentId: resident.id,
        sourceTs: input.ts,
        receivedTs: input.receivedTs,
      };
      if (input.type === 'event' && input.event.type === 'fall') {
        const fall = {
          ...base,
          key: `fall:${resident.id}`,
          rule: 'fall',
          severity: 'critical' as const,
          latching: true,
          escalateNow: true,
          message: { zh: `${label.zh}：检测到跌倒，请立即前往`, en: `${label.en}: fall detected, go now` },
        };
        // A fall is an event, not a lasting condition: asserted and cleared at once, so the alert
        // latches until a person resolves it, and a resolved fall is not raised again by the
        // lifecycle's re-raise hold, which is for conditions that are still active (as for SOS).
        signals.push({ ...fall, active: true }, { ...fall, active: false });
      }
      const t = trackBed(next.beds, input);
      const facts = t?.fact !== undefined ? [t.fact] : undefined;
      if (t?.transition === 'exit') {
        const at = Math.min(input.ts, input.now);
        const night = isNight(at);
        const alert = night && resident.fallRisk;
        next.exits[resident.id] = { at, deviceId: input.device.id, night, alerted: alert, escalated: false };
        if (alert) {
          const hhmm = formatLocalTime(at, cfg.utcOffsetMin);
          signals.push({
            ...base,
            key: `bed_exit:${resident.id}`,
            rule: 'bed_exit',
            severity: 'high',
            active: true,
            message: { zh: `${label.zh}：夜间离床（${hhmm}），有跌倒风险，请立即查看`, en: `${label.en}: out of bed at night (${hhmm}), at risk of falls: check now` },
          });
        }
      } else if (t?.transition === 'return') {
        const exit = next.exits[resident.id];
        delete next.exits[resident.id];
        const back = { zh: `${label.zh}：已回到床上`, en: `${label.en}: back in bed` };
        if (exit?.alerted === true) signals.push({ ...base, key: `bed_exit:${resident.id}`, rule: 'bed_exit', severity: 'high', active: false, message: back });
        if (exit?.escalated === true) signals.push({ ...base, key: `bed_exit_long:${resident.id}`, rule: 'bed_exit_long', severity: 'critical', active: false, message: back });
      }
      const exit = next.exits[resident.id];
      if (exit !== undefined && !exit.escalated) checkLong(resident, exit, next, input.now, input.ts, cfg, isNight, ctx, signals);
      return { state: next, signals, facts };
    },
  };
}

/**
 * A fall from a bed sensor attached to no resident: `fall:<homeId>/<roomId>`, naming the room and
 * the residents registered in it, with a resident's fall's severity, escalation and latch.
 */
function roomFall(input: Extract<RuleInput, { type: 'event' }>, ctx: CareRuleContext): Signal[] {
  const d = input.device;
  const where = roomLabel(d, ctx);
  const people = roomResidentsText(d, ctx);
  const fall = {
    key: `fall:${d.homeId}/${d.roomId}`,
    rule: 'fall',
    category: 'care' as const,
    signal: 'care' as const,
    severity: 'critical' as const,
    homeId: d.homeId,
    deviceId: d.id,
    roomId: d.roomId,
    sourceTs: input.ts,
    receivedTs: input.receivedTs,
    latching: true,
    escalateNow: true,
    message: {
      zh: `${where.zh}：床垫传感器 ${d.id} 检测到跌倒${people.zh}，请立即前往`,
      en: `${where.en}: fall detected (bed sensor ${d.id})${people.en}; go now`,
    },
  };
  // Asserted and cleared at once, as a resident's fall (above).
  return [{ ...fall, active: true }, { ...fall, active: false }];
}

function checkLong(
  resident: Resident,
  exit: BedExit,
  next: BedRuleState,
  now: number,
  sourceTs: number,
  cfg: BedRuleConfig,
  isNight: (ms: number) => boolean,
  ctx: CareRuleContext,
  signals: Signal[],
): void {
  if (now - exit.at < cfg.returnWithinMs || !(exit.night || isNight(now))) return;
  next.exits[resident.id] = { ...exit, escalated: true };
  const label = residentLabel(resident, ctx);
  const min = Math.round(cfg.returnWithinMs / 60_000);
  const hhmm = formatLocalTime(exit.at, cfg.utcOffsetMin);
  signals.push({
    key: `bed_exit_long:${resident.id}`,
    rule: 'bed_exit_long',
    category: 'care',
    signal: 'care',
    severity: 'critical',
    homeId: resident.homeId,
    deviceId: exit.deviceId,
    roomId: resident.roomId,
    residentId: resident.id,
    active: true,
    sourceTs,
    // Critical, so an unacknowledged one climbs the escalation ladder (duty staff → director →
    // bureau); not escalateNow, which the engine sends straight to the bureau.
    escalateNow: false,
    message: {
      zh: `${label.zh}：${hhmm}离床，超过${min}分钟未回床，请立即查找`,
      en: `${label.en}: left the bed at ${hhmm} and not back after ${min} min: find the resident now`,
    },
  });
}
