import { DEVICE_KINDS } from '../../../contract/device-kinds.ts';
import type { Device, Resident } from '../../../contract/registry.ts';
import type { Rule, RuleInput, RuleResult, Signal } from '../types.ts';
import { residentLabel, trackBed, type BedState, type CareRuleContext } from './care-context.ts';
import { stepWindow, type DurationWindow } from './duration-window.ts';
import { roundTo } from './news2.ts';
import {
  DEFAULT_VITAL_CHECKS,
  IMPLAUSIBLE_MS,
  METRIC_NAMES,
  VITAL_METRICS,
  compare,
  describeBand,
  isImplausible,
  resolveCheck,
  type VitalCheck,
  type VitalMetric,
} from './vital-checks.ts';

/**
 * Vital-sign thresholds held for a duration (care alerts) and implausible readings (device /
 * placement alerts). One alert per resident and check (`spo2_low:h01-p01`), whichever of the
 * resident's devices measured it; each device keeps its own window so two sensors that disagree
 * cannot make or break each other's run. One placement alert per device (`sensor_implausible:<device>`).
 */

export const VITALS_RULE_ID = 'care_vitals';
export const IMPLAUSIBLE_RULE = 'sensor_implausible';

export interface VitalsState {
  beds: Record<string, BedState>;
  /** `<deviceId>|<checkId>` and `<deviceId>|implausible:<metric>`. */
  windows: Record<string, DurationWindow>;
  /** Signal keys currently asserted. */
  open: Record<string, true>;
}

export interface VitalsRuleOptions {
  readonly checks?: readonly VitalCheck[];
}

/** Longest gap inside one run of readings: a 60 s reporting interval with 50 % jitter. */
const MAX_RUN_GAP_MS = 90_000;

const VITAL_KINDS = new Set<Device['kind']>(['vital_signs_monitor', 'bed_sensor']);

export function createVitalsRule(opts: VitalsRuleOptions = {}): Rule<VitalsState> {
  const checks = opts.checks ?? DEFAULT_VITAL_CHECKS;
  return {
    id: VITALS_RULE_ID,
    accepts: { types: ['telemetry', 'event'], kinds: [...VITAL_KINDS] },
    initialState: () => ({ beds: {}, windows: {}, open: {} }),
    evaluate(input: RuleInput, state: VitalsState, ctx: CareRuleContext): RuleResult<VitalsState> {
      if (input.type !== 'telemetry' && input.type !== 'event') return { state, signals: [] };
      if (!VITAL_KINDS.has(input.device.kind) || input.device.residentId === undefined) return { state, signals: [] };
      const resident = ctx.registry.resident(input.device.residentId);
      if (resident === undefined) return { state, signals: [] };
      const next: VitalsState = { beds: { ...state.beds }, windows: { ...state.windows }, open: { ...state.open } };
      trackBed(next.beds, input);
      const signals: Signal[] = [];
      if (input.type === 'telemetry') stepReadings(input, resident, checks, next, ctx, signals);
      implausibleSignals(input, resident, next, ctx, signals);
      return { state: next, signals };
    },
  };
}

type Telemetry = Extract<RuleInput, { type: 'telemetry' }>;

function stepReadings(input: Telemetry, resident: Resident, checks: readonly VitalCheck[], next: VitalsState, ctx: CareRuleContext, signals: Signal[]): void {
  const device = input.device;
  // An empty bed sensor reads noise; its pulse and respiration mean something only with someone on it.
  if (device.kind === 'bed_sensor' && next.beds[resident.id]?.inBed === false) return;
  // Readings up to the longest reporting interval a monitor may use (60 s, plus jitter) apart make
  // one run: with the 30 s heartbeat budget as the limit a monitor reporting every 45 s could never
  // hold a run, and 60 s below 90 % SpO2 would never alert. A longer silence is rule 6's (no data).
  const maxGapMs = Math.max(DEVICE_KINDS[device.kind].heartbeatBudgetS * 1000, MAX_RUN_GAP_MS);
  const label = residentLabel(resident, ctx);
  for (const metric of VITAL_METRICS) {
    const raw = input.metrics[metric];
    if (typeof raw !== 'number') continue;
    const implausible = isImplausible(metric, raw);
    const iKey = `${device.id}|implausible:${metric}`;
    next.windows[iKey] = stepWindow(next.windows[iKey], input.ts, implausible, { durationMs: IMPLAUSIBLE_MS, clearMs: 0, maxGapMs });
    if (implausible) continue;
    const spec = METRIC_NAMES[metric];
    const value = roundTo(raw, spec.decimals);
    for (const check of checks) {
      if (check.metric !== metric) continue;
      const band = resolveCheck(check, resident, ctx);
      const wKey = `${device.id}|${check.id}`;
      next.windows[wKey] = stepWindow(next.windows[wKey], input.ts, compare(value, band.op, band.threshold), { ...check, maxGapMs });
      const key = `${check.id}:${resident.id}`;
      const active = ctx.registry.devicesOfResident(resident.id).some((d) => next.windows[`${d.id}|${check.id}`]?.active === true);
      if (active === (next.open[key] === true)) continue;
      const base = {
        key,
        rule: check.id,
        category: 'care' as const,
        signal: 'care' as const,
        severity: check.severity,
        homeId: resident.homeId,
        deviceId: device.id,
        roomId: resident.roomId,
        residentId: resident.id,
        sourceTs: input.ts,
        receivedTs: input.receivedTs,
        value,
      };
      const now = `${value}${spec.unit}`;
      if (active) {
        next.open[key] = true;
        const b = describeBand(band.op, band.threshold, spec.unit);
        const secs = Math.round(check.durationMs / 1000);
        const tag = band.source === 'personal' ? { zh: '，个人限值', en: ', personal limit' } : band.source === 'baseline' ? { zh: '，个人基线', en: ', learned baseline' } : { zh: '', en: '' };
        signals.push({
          ...base,
          active: true,
          message: {
            zh: `${label.zh}：${check.name.zh}，${spec.zh}${b.zh}${secs > 0 ? `已持续${secs}秒` : ''}（当前${now}${tag.zh}）`,
            en: `${label.en}: ${check.name.en}, ${spec.en} ${b.en}${secs > 0 ? ` for ${secs} s` : ''} (now ${value} ${spec.unit}${tag.en})`,
          },
        });
      } else {
        delete next.open[key];
        signals.push({
          ...base,
          active: false,
          message: { zh: `${label.zh}：${check.name.zh}已恢复（${spec.zh}${now}）`, en: `${label.en}: ${check.name.en} resolved (${spec.en} now ${value} ${spec.unit})` },
        });
      }
    }
  }
}

/**
 * A placement alert needs an implausible run on one of the resident's devices while the resident
 * is in bed (or the bed state is unknown): a wearable left on the bedside table while the resident
 * is up is not a fault. Re-evaluated for every device of the resident, so leaving the bed clears it.
 */
function implausibleSignals(input: Exclude<RuleInput, { type: 'tick' | 'care_action' | 'status' }>, resident: Resident, next: VitalsState, ctx: CareRuleContext, signals: Signal[]): void {
  const inBed = next.beds[resident.id]?.inBed !== false;
  const label = residentLabel(resident, ctx);
  for (const d of ctx.registry.devicesOfResident(resident.id)) {
    if (!VITAL_KINDS.has(d.kind)) continue;
    const bad = VITAL_METRICS.filter((m) => next.windows[`${d.id}|implausible:${m}`]?.active === true);
    const active = inBed && bad.length > 0;
    const key = `${IMPLAUSIBLE_RULE}:${d.id}`;
    if (active === (next.open[key] === true)) continue;
    const fromThis = d.id === input.device.id;
    const first = bad[0];
    const raw = fromThis && input.type === 'telemetry' && first !== undefined ? input.metrics[first] : undefined;
    const value = typeof raw === 'number' ? raw : undefined;
    const what = bad.map((m) => METRIC_NAMES[m]);
    const base = {
      key,
      rule: IMPLAUSIBLE_RULE,
      category: 'device' as const,
      signal: 'trouble' as const,
      // A monitor that cannot see a bedridden resident is itself a care risk.
      severity: 'high' as const,
      homeId: resident.homeId,
      deviceId: d.id,
      roomId: resident.roomId,
      residentId: resident.id,
      sourceTs: input.ts,
      receivedTs: input.receivedTs,
      ...(value !== undefined ? { value } : {}),
    };
    if (active) {
      next.open[key] = true;
      signals.push({
        ...base,
        active: true,
        message: {
          zh: `${label.zh}：设备${d.id}读数不可信（${what.map((w) => w.zh).join('、')}${value !== undefined ? ` ${value}` : ''}），请检查传感器佩戴位置并查看住户`,
          en: `${label.en}: implausible reading from ${d.id} (${what.map((w) => w.en).join(', ')}${value !== undefined ? ` ${value}` : ''}): check the sensor's placement and look at the resident`,
        },
      });
    } else {
      delete next.open[key];
      signals.push({
        ...base,
        active: false,
        message: { zh: `${label.zh}：设备${d.id}读数已恢复正常`, en: `${label.en}: readings from ${d.id} are plausible again` },
      });
    }
  }
}
