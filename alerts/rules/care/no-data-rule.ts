import { DEVICE_KINDS } from '../../../contract/device-kinds.ts';
import type { Device } from '../../../contract/registry.ts';
import type { Rule, RuleInput, RuleResult, Signal } from '../types.ts';
import { residentLabel, trackBed, type BedState, type CareRuleContext } from './care-context.ts';
import { NO_DATA_RULE_DEFAULTS, type NoDataRuleConfig } from './config.ts';

/**
 * A care monitor (vital signs, bed, wetness) attached to a resident that sends nothing while the
 * resident is in bed (or not known to be out of it) is a device alert (`care_no_data:<deviceId>`,
 * trouble, high: an unmonitored bedridden resident is a care risk). It is raised at a tick, at the
 * latest by the device kind's heartbeat budget (contract/device-kinds.ts `heartbeatBudgetS`), and
 * cleared by the next message from the device. Timed on the platform clock (`now`), since a silent
 * device has no timestamps of its own to offer.
 */

export const NO_DATA_RULE_ID = 'care_no_data';

export interface NoDataState {
  /** Platform time of the first input the rule saw: a device never heard from is silent since then. */
  startedAt?: number;
  /** Platform time / device time of each device's last message. */
  lastSeen: Record<string, number>;
  lastSourceTs: Record<string, number>;
  beds: Record<string, BedState>;
  open: Record<string, true>;
  /** Each device's recent reporting interval (platform ms, largest recent gap, decaying); absent in older state. */
  gap?: Record<string, number>;
  /** Gaps seen per device, counted up to LEARNED_GAPS; absent in older state (counted as learned). */
  gaps?: Record<string, number>;
}

/**
 * Silence is judged against the device's own cadence as well as its kind's budget: a monitor that
 * reports every 45 s is not silent at 30 s. 2.5 recent intervals (a late message with jitter is not
 * silence), never more than 150 s, never less than the budget.
 */
const CADENCE_FACTOR = 2.5;
const CADENCE_CAP_MS = 150_000;
/** Per message the remembered interval shrinks by this factor unless a longer gap renews it. */
const GAP_DECAY = 0.98;
/**
 * Until a device has shown this many gaps its largest one may be its shortest: a monitor whose gaps
 * vary by ±50 % around 17 s showed 9.7 s first and then 25.4 s, past 2.5 × 9.7 s and past the 30 s
 * budget less the 5 s check period, and was called silent while reporting (CI, seed -793716545).
 * Meanwhile the factor is 4: a gap of 1.5 × the interval stays under 4 × 0.5 × the interval less
 * one check period for any interval (and under the budget less one check period below 16.7 s).
 */
const LEARNED_GAPS = 4;
const CADENCE_FACTOR_EARLY = 4;

function silenceLimitMs(d: Device, state: NoDataState): number {
  const budget = DEVICE_KINDS[d.kind].heartbeatBudgetS * 1000;
  const g = state.gap?.[d.id];
  if (g === undefined) return budget;
  const learned = (state.gaps?.[d.id] ?? LEARNED_GAPS) >= LEARNED_GAPS;
  return Math.max(budget, Math.min(CADENCE_CAP_MS, (learned ? CADENCE_FACTOR : CADENCE_FACTOR_EARLY) * g));
}

const KIND_NAME: Readonly<Partial<Record<Device['kind'], { zh: string; en: string }>>> = {
  vital_signs_monitor: { zh: '生命体征监测仪', en: 'vital-signs monitor' },
  bed_sensor: { zh: '床垫传感器', en: 'bed sensor' },
  wetness_sensor: { zh: '尿湿传感器', en: 'wetness sensor' },
};

function isCareMonitor(d: Device): boolean {
  return DEVICE_KINDS[d.kind].category === 'care' && d.residentId !== undefined;
}

/** The device trouble signal of a silent care monitor, raised (active) or cleared. */
function noDataSignal(d: Device, active: boolean, sourceTs: number, message: { zh: string; en: string }): Signal {
  return {
    key: `${NO_DATA_RULE_ID}:${d.id}`,
    rule: NO_DATA_RULE_ID,
    category: 'device',
    signal: 'trouble',
    severity: 'high',
    homeId: d.homeId,
    deviceId: d.id,
    roomId: d.roomId,
    ...(d.residentId !== undefined ? { residentId: d.residentId } : {}),
    active,
    sourceTs,
    message,
  };
}

export function createNoDataRule(config: Partial<NoDataRuleConfig> = {}): Rule<NoDataState> {
  const cfg = { ...NO_DATA_RULE_DEFAULTS, ...config };
  return {
    id: NO_DATA_RULE_ID,
    // No `accepts`: its first input of any kind starts the silence clock (`startedAt`); for other
    // devices it returns at once without copying.
    initialState: () => ({ lastSeen: {}, lastSourceTs: {}, beds: {}, open: {} }),
    evaluate(input: RuleInput, state: NoDataState, ctx: CareRuleContext): RuleResult<NoDataState> {
      const signals: Signal[] = [];
      const startedAt = state.startedAt ?? input.now;
      if (input.type === 'tick') {
        const next: NoDataState = { ...state, startedAt, open: { ...state.open } };
        for (const d of ctx.registry.site.devices) {
          if (!isCareMonitor(d) || next.open[d.id] === true) continue;
          const resident = ctx.registry.resident(d.residentId as string);
          if (resident === undefined || state.beds[resident.id]?.inBed === false) continue;
          const last = state.lastSeen[d.id] ?? startedAt;
          // Raised once silence exceeds the budget less one tick, so it is out by the budget itself.
          if (input.now - last < silenceLimitMs(d, state) - cfg.tickMs) continue;
          next.open[d.id] = true;
          const label = residentLabel(resident, ctx);
          const kind = KIND_NAME[d.kind] ?? { zh: d.kind, en: d.kind };
          const secs = Math.round((input.now - last) / 1000);
          signals.push(
            noDataSignal(d, true, state.lastSourceTs[d.id] ?? input.now, {
              zh: `${label.zh}：${kind.zh}${d.id}已${secs}秒无数据，住户在床，请检查设备`,
              en: `${label.en}: no data from ${kind.en} ${d.id} for ${secs} s while the resident is in bed: check the device`,
            }),
          );
        }
        return { state: signals.length > 0 || state.startedAt === undefined ? next : state, signals };
      }
      const unchanged = state.startedAt === undefined ? { ...state, startedAt } : state;
      if (input.type === 'care_action') return { state: unchanged, signals };
      const d = input.device;
      // An offline status is the device saying it has gone; it does not count as hearing from it.
      if (!isCareMonitor(d) || (input.type === 'status' && !input.online)) return { state: unchanged, signals };
      // Under ctx.inPlace the engine owns the state: write this device's entries instead of copying
      // every care device's (issue 6).
      const next: NoDataState =
        ctx.inPlace === true
          ? Object.assign(state, { startedAt })
          : {
              ...state,
              startedAt,
              lastSeen: { ...state.lastSeen },
              lastSourceTs: { ...state.lastSourceTs },
              beds: { ...state.beds },
              open: { ...state.open },
              gap: { ...state.gap },
              gaps: { ...state.gaps },
            };
      const prevSeen = state.lastSeen[d.id];
      if (prevSeen !== undefined && input.now > prevSeen) {
        next.gap ??= {};
        next.gap[d.id] = Math.max(input.now - prevSeen, (state.gap?.[d.id] ?? 0) * GAP_DECAY);
        const seen = state.gaps?.[d.id] ?? 0;
        if (seen < LEARNED_GAPS) {
          next.gaps ??= {};
          next.gaps[d.id] = seen + 1;
        }
      }
      next.lastSeen[d.id] = input.now;
      next.lastSourceTs[d.id] = input.ts;
      trackBed(next.beds, input);
      if (next.open[d.id] === true) {
        delete next.open[d.id];
        const resident = ctx.registry.resident(d.residentId as string);
        const label = resident !== undefined ? residentLabel(resident, ctx) : { zh: d.id, en: d.id };
        signals.push({
          ...noDataSignal(d, false, input.ts, { zh: `${label.zh}：${d.id}已恢复数据`, en: `${label.en}: data from ${d.id} again` }),
          receivedTs: input.receivedTs,
        });
      }
      return { state: next, signals, ...(next === state ? { mutated: true } : {}) };
    },
  };
}
