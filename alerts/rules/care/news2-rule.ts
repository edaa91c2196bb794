import type { Resident } from '../../../contract/registry.ts';
import type { Severity } from '../../../contract/payloads.ts';
import type { Fact, News2Fact } from '../facts.ts';
import type { Rule, RuleInput, RuleResult, Signal } from '../types.ts';
import { residentLabel, trackBed, type BedState, type Bilingual, type CareRuleContext } from './care-context.ts';
import { NEWS2_RULE_DEFAULTS, type News2RuleConfig } from './config.ts';
import { roundTo, scoreNews2, type Acvpu, type News2Component, type News2Parameter, type News2Result, type News2Risk } from './news2.ts';
import { isImplausible, type VitalMetric } from './vital-checks.ts';

/**
 * NEWS2 per resident, continuously, from the latest values of the resident's vital-signs monitor and
 * bed sensor plus the oxygen / consciousness observations staff record (care_action). Each device
 * value is the median of the last `smoothingMs` of readings, so a movement artefact of a few seconds
 * cannot change the score. Triggers are NEWS2 Chart 2 (RCP 2017): aggregate ≥7 emergency
 * (critical), 5–6 urgent (high), a 3 in any one parameter urgent ward review (medium).
 *
 * One alert per resident (`news2:<residentId>`). It is raised or upgraded when the trigger level
 * rises, keeps its highest severity while the score stays at any trigger level, and clears when the
 * score falls below every trigger, but never merely because a parameter that contributed to it
 * stopped arriving (the no-data rule reports the silence).
 *
 * A `news2` fact (alerts/rules/facts.ts) carries each new score: the NEWS2 history and the
 * dashboard's tile are built from them.
 */

export const NEWS2_RULE_ID = 'care_news2';
export const NEWS2_SIGNAL_RULE = 'news2';

type Level = 0 | 1 | 2 | 3;
const LEVEL_OF: Readonly<Record<News2Risk, Level>> = { low: 0, low_medium: 1, medium: 2, high: 3 };
const SEVERITY_OF: Readonly<Record<1 | 2 | 3, Severity>> = { 1: 'medium', 2: 'high', 3: 'critical' };

/** What the dashboard shows per resident. */
export interface News2Score {
  readonly components: Partial<Record<News2Parameter, News2Component>>;
  readonly aggregate: number;
  readonly partial: boolean;
  readonly missing: readonly News2Parameter[];
  readonly risk: News2Risk;
  readonly response: News2Result['response'];
  readonly spo2Scale: 1 | 2;
  /** Newest device / observation time among the values used (0 if none). */
  readonly ts: number;
  /** Platform time the score last changed (a quiet tick that finds the same score leaves it). */
  readonly computedAt: number;
}

/** [device ts, value] */
type Sample = [number, number];

export interface News2State {
  beds: Record<string, BedState>;
  readings: Record<string, Partial<Record<VitalMetric, Sample[]>>>;
  observations: Record<string, { onOxygen?: { value: boolean; ts: number }; consciousness?: { value: Acvpu; ts: number } }>;
  scores: Record<string, News2Score>;
  /** The level of the open alert per resident and the parameters that scored when it was raised. */
  alerts: Record<string, { level: 1 | 2 | 3; contributing: News2Parameter[] }>;
}

const METRIC_PARAM: ReadonlyArray<[VitalMetric, News2Parameter]> = [
  ['resp_rate_bpm', 'resp_rate'],
  ['spo2_pct', 'spo2'],
  ['systolic_bp_mmhg', 'systolic_bp'],
  ['heart_rate_bpm', 'pulse'],
  ['body_temp_c', 'temperature'],
];

export const NEWS2_PARAM_NAMES: Readonly<Record<News2Parameter, Bilingual>> = {
  resp_rate: { zh: '呼吸', en: 'RR' },
  spo2: { zh: '血氧', en: 'SpO2' },
  air_or_oxygen: { zh: '吸氧', en: 'O2' },
  systolic_bp: { zh: '收缩压', en: 'SBP' },
  pulse: { zh: '心率', en: 'pulse' },
  consciousness: { zh: '意识', en: 'ACVPU' },
  temperature: { zh: '体温', en: 'temp' },
};

export function createNews2Rule(config: Partial<News2RuleConfig> = {}): Rule<News2State> {
  const cfg = { ...NEWS2_RULE_DEFAULTS, ...config };
  return {
    id: NEWS2_RULE_ID,
    accepts: { types: ['telemetry', 'event', 'care_action', 'tick'], kinds: ['vital_signs_monitor', 'bed_sensor'] },
    initialState: () => ({ beds: {}, readings: {}, observations: {}, scores: {}, alerts: {} }),
    standingFacts(state: News2State, ctx: CareRuleContext): Fact[] {
      const out: Fact[] = [];
      for (const [id, score] of Object.entries(state.scores)) {
        const resident = ctx.registry.resident(id);
        if (resident !== undefined) out.push(scoreFact(resident, score));
      }
      return out;
    },
    evaluate(input: RuleInput, state: News2State, ctx: CareRuleContext): RuleResult<News2State> {
      const next: News2State = { ...state, scores: { ...state.scores }, alerts: { ...state.alerts } };
      const signals: Signal[] = [];
      if (input.type === 'tick') {
        let facts: Fact[] | undefined;
        for (const id of Object.keys(next.scores)) {
          const resident = ctx.registry.resident(id);
          if (resident === undefined) continue;
          const fact = rescore(resident, next, input.now, input.now, undefined, cfg, ctx, signals);
          if (fact !== undefined) (facts ??= []).push(fact);
        }
        return { state: facts !== undefined || signals.length > 0 ? next : state, signals, facts };
      }
      if (input.type === 'care_action') {
        const obs = input.observation;
        const resident = ctx.registry.resident(input.residentId);
        if (obs === undefined || resident === undefined) return { state, signals: [] };
        const prev = next.observations[resident.id] ?? {};
        const o = { ...prev };
        if (obs.onOxygen !== undefined && (prev.onOxygen === undefined || input.ts >= prev.onOxygen.ts)) o.onOxygen = { value: obs.onOxygen, ts: input.ts };
        if (obs.consciousness !== undefined && (prev.consciousness === undefined || input.ts >= prev.consciousness.ts)) o.consciousness = { value: obs.consciousness, ts: input.ts };
        next.observations = { ...next.observations, [resident.id]: o };
        const fact = rescore(resident, next, input.now, input.ts, undefined, cfg, ctx, signals);
        return { state: next, signals, facts: fact === undefined ? undefined : [fact] };
      }
      if (input.type === 'status') return { state, signals: [] };
      const device = input.device;
      if ((device.kind !== 'vital_signs_monitor' && device.kind !== 'bed_sensor') || device.residentId === undefined) return { state, signals: [] };
      const resident = ctx.registry.resident(device.residentId);
      if (resident === undefined) return { state, signals: [] };
      next.beds = { ...next.beds };
      trackBed(next.beds, input);
      if (input.type === 'telemetry' && !(device.kind === 'bed_sensor' && next.beds[resident.id]?.inBed === false)) {
        const series = { ...(next.readings[resident.id] ?? {}) };
        for (const [metric] of METRIC_PARAM) {
          const v = input.metrics[metric];
          // Implausible readings (probe off) are missing values, not clinical ones.
          if (typeof v !== 'number' || isImplausible(metric, v)) continue;
          series[metric] = addSample(series[metric] ?? [], [input.ts, v], cfg);
        }
        next.readings = { ...next.readings, [resident.id]: series };
      }
      const fact = rescore(resident, next, input.now, input.ts, device.id, cfg, ctx, signals);
      return { state: next, signals, facts: fact === undefined ? undefined : [fact] };
    },
  };
}

/**
 * Inserts in time order (ignoring a duplicate timestamp) and keeps the readings of the smoothing
 * window of the newest, and at least the last `minReadings` not older than `staleMs` (a slow
 * reporter's median still has three readings to outvote one artefact).
 */
function addSample(samples: readonly Sample[], s: Sample, cfg: News2RuleConfig): Sample[] {
  if (samples.some((x) => x[0] === s[0])) return [...samples];
  const all = [...samples, s].sort((a, b) => a[0] - b[0]);
  const newest = all[all.length - 1]?.[0] ?? s[0];
  const keepFrom = all.length - cfg.minReadings;
  return all.filter((x, i) => x[0] >= newest - cfg.smoothingMs || (i >= keepFrom && x[0] >= newest - cfg.staleMs));
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

export function news2Observations(residentId: string, state: News2State, now: number, cfg: News2RuleConfig): { obs: Parameters<typeof scoreNews2>[0]; ts: number } {
  const series = state.readings[residentId] ?? {};
  let ts = 0;
  const value = (metric: VitalMetric): number | undefined => {
    const s = series[metric];
    const last = s?.[s.length - 1];
    if (s === undefined || last === undefined) return undefined;
    if (now - last[0] > (metric === 'systolic_bp_mmhg' ? cfg.bpStaleMs : cfg.staleMs)) return undefined;
    if (metric !== 'systolic_bp_mmhg' && (last[0] - (s[0]?.[0] ?? last[0]) < cfg.minSpanMs || s.length < cfg.minReadings)) return undefined;
    ts = Math.max(ts, last[0]);
    // A blood-pressure cuff reading is a single measurement: use the latest, not a median.
    // Rounded to the chart's precision so the value shown is the value scored.
    return roundTo(metric === 'systolic_bp_mmhg' ? last[1] : median(s.map((x) => x[1])), metric === 'body_temp_c' ? 1 : 0);
  };
  const o = state.observations[residentId];
  const fresh = <T>(x: { value: T; ts: number } | undefined): T | undefined => {
    if (x === undefined || now - x.ts > cfg.observationStaleMs) return undefined;
    ts = Math.max(ts, x.ts);
    return x.value;
  };
  return {
    obs: {
      respRate: value('resp_rate_bpm'),
      spo2: value('spo2_pct'),
      systolicBp: value('systolic_bp_mmhg'),
      pulse: value('heart_rate_bpm'),
      temperature: value('body_temp_c'),
      onOxygen: fresh(o?.onOxygen),
      consciousness: fresh(o?.consciousness),
    },
    ts,
  };
}

function scoreFact(resident: Resident, score: News2Score): News2Fact {
  return { kind: 'news2', homeId: resident.homeId, residentId: resident.id, score };
}

/** Rescores one resident, pushing the signals; returns a fact when the score changed. */
function rescore(resident: Resident, next: News2State, now: number, sourceTs: number, deviceId: string | undefined, cfg: News2RuleConfig, ctx: CareRuleContext, signals: Signal[]): News2Fact | undefined {
  const { obs, ts } = news2Observations(resident.id, next, now, cfg);
  const r = scoreNews2(obs, { scale2: resident.hypercapnic });
  const prev = next.scores[resident.id];
  const score = { components: r.components, aggregate: r.aggregate, partial: r.partial, missing: r.missing, risk: r.risk, response: r.response, spo2Scale: r.spo2Scale, ts };
  let fact: News2Fact | undefined;
  // Keep the previous object when nothing but the time changed, so a quiet tick leaves the state as it was.
  if (prev === undefined || JSON.stringify({ ...prev, computedAt: 0 }) !== JSON.stringify({ ...score, computedAt: 0 })) {
    const changed = { ...score, computedAt: now };
    next.scores[resident.id] = changed;
    fact = scoreFact(resident, changed);
  }
  const level = LEVEL_OF[r.risk];
  const open = next.alerts[resident.id];
  const label = residentLabel(resident, ctx);
  const base = {
    key: `${NEWS2_SIGNAL_RULE}:${resident.id}`,
    rule: NEWS2_SIGNAL_RULE,
    category: 'care' as const,
    signal: 'care' as const,
    homeId: resident.homeId,
    roomId: resident.roomId,
    residentId: resident.id,
    sourceTs,
    value: r.aggregate,
    ...(deviceId !== undefined ? { deviceId } : {}),
  };
  if (level > 0 && (open === undefined || level > open.level)) {
    const lv = level as 1 | 2 | 3;
    next.alerts[resident.id] = { level: lv, contributing: (Object.keys(r.components) as News2Parameter[]).filter((p) => (r.components[p]?.score ?? 0) > 0) };
    // Emergency is severity critical; the escalation ladder starts with the duty staff (escalateNow false).
    signals.push({ ...base, severity: SEVERITY_OF[lv], active: true, escalateNow: false, message: news2Message(label, r) });
    return fact;
  }
  if (level === 0 && open !== undefined) {
    // A score that fell only because a value that raised it stopped arriving is not a recovery.
    if (open.contributing.some((p) => r.missing.includes(p))) return fact;
    delete next.alerts[resident.id];
    signals.push({
      ...base,
      severity: SEVERITY_OF[open.level],
      active: false,
      message: { zh: `${label.zh}：NEWS2 ${r.aggregate}分，已低于触发阈值`, en: `${label.en}: NEWS2 now ${r.aggregate}, below the trigger levels` },
    });
  }
  return fact;
}

const RISK_TEXT: Readonly<Record<News2Risk, Bilingual>> = {
  high: { zh: '高危，需紧急应对', en: 'high risk: emergency response' },
  medium: { zh: '中危，需紧急评估', en: 'medium risk: urgent response' },
  low_medium: { zh: '单项3分，需紧急床旁评估', en: 'a single parameter scores 3: urgent ward-based review' },
  low: { zh: '低危', en: 'low risk' },
};

export function news2Message(label: Bilingual, r: News2Result): Bilingual {
  const parts = (Object.keys(r.components) as News2Parameter[]).map((p) => {
    const c = r.components[p] as News2Component;
    const v = typeof c.value === 'boolean' ? (c.value ? 'O2' : 'air') : String(c.value);
    return { zh: `${NEWS2_PARAM_NAMES[p].zh} ${v}(${c.score})`, en: `${NEWS2_PARAM_NAMES[p].en} ${v} (${c.score})` };
  });
  const risk = RISK_TEXT[r.risk];
  const partial = r.partial
    ? {
        zh: `；部分评分，缺：${r.missing.map((p) => NEWS2_PARAM_NAMES[p].zh).join('、')}`,
        en: `; partial score, missing: ${r.missing.map((p) => NEWS2_PARAM_NAMES[p].en).join(', ')}`,
      }
    : { zh: '', en: '' };
  const scale = r.spo2Scale === 2 ? { zh: '（血氧按量表2）', en: ' (SpO2 Scale 2)' } : { zh: '', en: '' };
  return {
    zh: `${label.zh}：NEWS2 ${r.aggregate}分（${risk.zh}）${scale.zh} — ${parts.map((p) => p.zh).join('、')}${partial.zh}`,
    en: `${label.en}: NEWS2 ${r.aggregate} (${risk.en})${scale.en}: ${parts.map((p) => p.en).join(', ')}${partial.en}`,
  };
}

/** The current score of every resident the rule has seen, for the dashboard. */
export function news2Scores(state: News2State): Readonly<Record<string, News2Score>> {
  return state.scores;
}
