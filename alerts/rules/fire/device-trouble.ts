import { DEVICE_KINDS } from '../../../contract/device-kinds.ts';
import { METRICS, type MetricName, type MetricSpec } from '../../../contract/metrics.ts';
import type { Device } from '../../../contract/registry.ts';
import type { Severity } from '../../../contract/payloads.ts';
import { outOfRangeOf } from '../input-range.ts';
import type { Rule, RuleContext, RuleInput, RuleResult, Signal } from '../types.ts';
import { newLatch, stepAbove, stepBelow, type Latch } from './latch.ts';
import { fmt, troubleSignal, type Text } from './signals.ts';
import { threshold } from './thresholds.ts';

/**
 * Trouble signals (NFPA 72 §3.3 trouble signal: a fault in a monitored circuit or component),
 * category `device`, never latching: each clears itself when the fault is gone. Covers every
 * device kind: low battery, tamper, reported faults, failed self-test, a dirty smoke detector
 * (clean-air baseline drifted up), a sensor stuck at one value, and a sensor that keeps reporting
 * values outside its plausible range (contract/metrics.ts).
 * Loss of communication is in supervision.ts.
 */
export interface TroubleState {
  /** Low-battery latch. */
  b?: Latch;
  /** Tamper / fault / failed self-test currently raised. */
  t?: 1;
  f?: 1;
  st?: 1;
  /** Clean-air baseline estimate `[value %/m, platform ms of last update]`. */
  db?: [number, number];
  /** Dirty-detector latch. */
  dl?: Latch;
  /** Stuck sensors: metric → `[last value, platform ms it was first seen, raised 0|1]`. */
  sk?: Record<string, [number, number, number]>;
  /** Out-of-range readings: metric → `[platform ms of the latest ones within the window (at most OOR_COUNT), raised 0|1]`. */
  or?: Record<string, [number[], number]>;
}
export type DeviceTroubleState = Record<string, TroubleState>;

/** A fault of a fire device leaves a part of the building unprotected: high; others medium. */
function faultSeverity(d: Device): Severity {
  return DEVICE_KINDS[d.kind].category === 'fire' ? 'high' : 'medium';
}

// Clean-air baseline: follows a falling reading within minutes (clean air is the floor, and a
// cleaned detector must clear its trouble soon) but a rising one only over hours, so smoke —
// which comes and goes within minutes — barely moves it while dust build-up over days does.
const BASELINE_UP_TAU_MS = 2 * 3600_000;
const BASELINE_DOWN_TAU_MS = 5 * 60_000;
/** The drifted baseline must stay over the level 10 min before the trouble is raised or cleared. */
const DIRTY_HOLD_MS = 10 * 60_000;

/** Metrics whose value never sits still in a working sensor (see thresholds.ts `stuck_s`). */
const STUCK_METRICS: readonly MetricName[] = ['temperature_c', 'cable_temp_c', 'smoke_obscuration_pct_per_m'];
/** A clean-air smoke reading of 0.0 is legitimately constant; a frozen non-clean reading is not. */
const SMOKE_STUCK_MIN = 0.5;

/**
 * A sensor reporting outside its plausible range OOR_COUNT times within OOR_WINDOW_MS is faulty
 * (or saturated) and needs a person: EN 54-2 §8 requires a fault that affects detection to be
 * signalled, within 100 s of its occurrence (§8.2.1). Three readings are 20 s of a 10 s fire
 * detector and 10 s of a 5 s care monitor, inside those 100 s, while one stray value (a radio or
 * ADC glitch) raises nothing; the 10 min window still catches a sensor that fails only now and
 * then, and a 60 s device (three reports in 2 min). Each single reading is already taken at its
 * limit where that can mean danger, and counted at ingest. Clears once the metric reads inside
 * its range again after a whole window without an out-of-range value.
 */
export const OOR_COUNT = 3;
export const OOR_WINDOW_MS = 10 * 60_000;

function rangeText(metric: MetricName): string {
  const spec: MetricSpec = METRICS[metric];
  return `${spec.min ?? ''}…${spec.max ?? ''} ${spec.unit}`.trim();
}

function outOfRangeTrouble(input: Extract<RuleInput, { type: 'telemetry' }>, prev: TroubleState, st: TroubleState, c: { device: Device; ctx: RuleContext; sourceTs: number; receivedTs: number }, signals: Signal[]): void {
  const d = input.device;
  const flagged = outOfRangeOf(input);
  if (flagged.length === 0 && prev.or === undefined) return;
  const or: Record<string, [number[], number]> = { ...(prev.or ?? {}) };
  const seen = new Set<string>();
  for (const o of flagged) {
    seen.add(o.metric);
    const [times, on] = or[o.metric] ?? [[], 0];
    const recent = [...times.filter((t) => input.now - t < OOR_WINDOW_MS), input.now].slice(-OOR_COUNT);
    let raised = on;
    if (on === 0 && recent.length >= OOR_COUNT) {
      raised = 1;
      const unit = METRICS[o.metric].unit;
      const taken = o.atLimit ? { zh: `按 ${o.limit} ${unit} 处理`, en: `taken as ${o.limit} ${unit}` } : { zh: '读数未采用', en: 'readings not used' };
      signals.push(
        troubleSignal(
          'out_of_range',
          faultSeverity(d),
          { ...c, active: true, value: o.value },
          {
            zh: `设备 ${d.id} 读数超出量程：${o.metric}=${o.value}（量程 ${rangeText(o.metric)}），${OOR_WINDOW_MS / 60_000} 分钟内 ${OOR_COUNT} 次，${taken.zh}；疑似传感器故障`,
            en: `device ${d.id} reading out of range: ${o.metric} = ${o.value} (range ${rangeText(o.metric)}), ${OOR_COUNT} times within ${OOR_WINDOW_MS / 60_000} min, ${taken.en}; sensor suspect`,
          },
          `:${o.metric}`,
        ),
      );
    }
    or[o.metric] = [recent, raised];
  }
  for (const [metric, [times, on]] of Object.entries(prev.or ?? {})) {
    // Cleared only by the metric reading inside its range after a quiet window.
    if (seen.has(metric) || input.metrics[metric as MetricName] === undefined) continue;
    if (input.now - (times.at(-1) ?? 0) < OOR_WINDOW_MS) continue;
    delete or[metric];
    if (on === 1) {
      signals.push(troubleSignal('out_of_range', faultSeverity(d), { ...c, active: false }, { zh: `设备 ${d.id} 读数 ${metric} 恢复正常量程`, en: `device ${d.id} reading ${metric} back in range` }, `:${metric}`));
    }
  }
  if (Object.keys(or).length > 0) st.or = or;
  else delete st.or;
}

function updateBaseline(prev: [number, number] | undefined, x: number, now: number): [number, number] {
  if (prev === undefined) return [x, now];
  const [b, t] = prev;
  const dt = Math.max(0, now - t);
  const tau = x < b ? BASELINE_DOWN_TAU_MS : BASELINE_UP_TAU_MS;
  const a = 1 - Math.exp(-dt / tau);
  return [b + a * (x - b), now];
}

function telemetry(input: Extract<RuleInput, { type: 'telemetry' }>, prev: TroubleState, ctx: RuleContext): { st: TroubleState; signals: Signal[] } {
  const d = input.device;
  const st: TroubleState = { ...prev };
  const signals: Signal[] = [];
  const c = { device: d, ctx, sourceTs: input.ts, receivedTs: input.receivedTs };

  const battery = input.metrics.battery_pct;
  if (typeof battery === 'number') {
    // NFPA 72 §23.16 (low-power radio): report low battery while ≥ 7 days of operation remain.
    const step = stepBelow(prev.b ?? newLatch(), battery, threshold(d, 'battery_low_pct', ctx), threshold(d, 'battery_clear_pct', ctx), input.now, { setCount: 2 });
    st.b = step.latch;
    if (step.edge !== undefined) {
      signals.push(troubleSignal('low_battery', 'low', { ...c, active: step.edge === 'set', value: battery }, { zh: `电池电量低 ${fmt(battery, 0)}%`, en: `low battery ${fmt(battery, 0)} %` }));
    }
  }

  const smoke = input.metrics.smoke_obscuration_pct_per_m;
  if (typeof smoke === 'number' && d.kind === 'smoke_detector') {
    const preClear = threshold(d, 'smoke_prealarm_clear_pct_per_m', ctx);
    // Readings in the pre-alarm region are smoke (or a fault shown elsewhere), not clean air.
    if (smoke < preClear) st.db = updateBaseline(prev.db, smoke, input.now);
    const base = st.db?.[0];
    if (base !== undefined) {
      const step = stepAbove(prev.dl ?? newLatch(), base, threshold(d, 'smoke_dirty_pct_per_m', ctx), threshold(d, 'smoke_dirty_clear_pct_per_m', ctx), input.now, {
        setHoldMs: DIRTY_HOLD_MS,
        clearHoldMs: DIRTY_HOLD_MS,
      });
      st.dl = step.latch;
      if (step.edge !== undefined) {
        signals.push(
          troubleSignal('dirty_detector', 'medium', { ...c, active: step.edge === 'set', value: base }, { zh: `探测器污染，洁净空气基线升至 ${fmt(base, 2)} %/m，需清洁`, en: `dirty detector: clean-air baseline up to ${fmt(base, 2)} %/m, needs cleaning` }),
        );
      }
    }
  }

  const stuckMs = threshold(d, 'stuck_s', ctx) * 1000;
  for (const metric of STUCK_METRICS) {
    const v = input.metrics[metric];
    if (typeof v !== 'number') continue;
    const sk = { ...(st.sk ?? {}) };
    const entry = sk[metric];
    const watch = metric !== 'smoke_obscuration_pct_per_m' || v >= SMOKE_STUCK_MIN;
    if (entry !== undefined && entry[0] === v) {
      if (entry[2] === 0 && watch && input.now - entry[1] >= stuckMs) {
        sk[metric] = [v, entry[1], 1];
        const mins = Math.round((input.now - entry[1]) / 60_000);
        signals.push(troubleSignal('stuck_sensor', faultSeverity(d), { ...c, active: true, value: v }, { zh: `传感器读数 ${metric}=${v} 已 ${mins} 分钟不变，疑似故障`, en: `sensor ${metric} stuck at ${v} for ${mins} min` }, `:${metric}`));
      }
    } else {
      if (entry !== undefined && entry[2] === 1) {
        signals.push(troubleSignal('stuck_sensor', faultSeverity(d), { ...c, active: false, value: v }, { zh: `传感器读数 ${metric} 恢复变化`, en: `sensor ${metric} moving again` }, `:${metric}`));
      }
      sk[metric] = [v, input.now, 0];
    }
    st.sk = sk;
  }
  outOfRangeTrouble(input, prev, st, c, signals);
  return { st, signals };
}

type Flag = 't' | 'f' | 'st';
function eventTrouble(input: Extract<RuleInput, { type: 'event' }>, prev: TroubleState, ctx: RuleContext): { st: TroubleState; signals: Signal[] } {
  const d = input.device;
  const ev = input.event;
  let flag: Flag;
  let rule: string;
  let text: Text;
  let on: boolean;
  const detail = [ev.code, ev.detail].filter((x) => x !== undefined).join(' ');
  switch (ev.type) {
    case 'tamper':
      [flag, rule, on] = ['t', 'tamper', ev.ok !== true];
      text = { zh: '设备被拆动', en: 'device tampered with' };
      break;
    case 'fault':
      [flag, rule, on] = ['f', 'device_fault', ev.ok !== true];
      text = { zh: `设备故障 ${detail}`.trim(), en: `device fault ${detail}`.trim() };
      break;
    case 'self_test':
      if (ev.ok === undefined) return { st: prev, signals: [] };
      [flag, rule, on] = ['st', 'self_test_failed', !ev.ok];
      text = { zh: `自检失败 ${detail}`.trim(), en: `self-test failed ${detail}`.trim() };
      break;
    default:
      return { st: prev, signals: [] };
  }
  const was = prev[flag] === 1;
  if (was === on) return { st: prev, signals: [] };
  const st: TroubleState = { ...prev };
  if (on) st[flag] = 1;
  else delete st[flag];
  const sev = ev.type === 'tamper' ? 'medium' : faultSeverity(d);
  return { st, signals: [troubleSignal(rule, sev, { device: d, ctx, active: on, sourceTs: input.ts, receivedTs: input.receivedTs }, text)] };
}

export const deviceTroubleRule: Rule<DeviceTroubleState> = {
  id: 'device_trouble',
  // The state is the per-device map; each device's record is replaced, never changed in place (Rule.snapshotMaps).
  snapshotMaps: [''],
  accepts: { types: ['telemetry', 'event'] },
  initialState: () => ({}),
  evaluate(input, state, ctx): RuleResult<DeviceTroubleState> {
    if (input.type !== 'telemetry' && input.type !== 'event') return { state, signals: [] };
    const prev = state[input.device.id] ?? {};
    const { st, signals } = input.type === 'telemetry' ? telemetry(input, prev, ctx) : eventTrouble(input, prev, ctx);
    if (st === prev) return { state, signals };
    if (ctx.inPlace === true) {
      state[input.device.id] = st;
      return { state, signals, mutated: true };
    }
    return { state: { ...state, [input.device.id]: st }, signals };
  },
};
