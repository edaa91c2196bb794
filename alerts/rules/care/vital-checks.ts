import type { Resident } from '../../../contract/registry.ts';
import type { Severity } from '../../../contract/payloads.ts';
import type { Bilingual, CareRuleContext } from './care-context.ts';

/**
 * Vital-sign thresholds with a duration. Defaults sit on NEWS2 band edges (RCP 2017, Chart 1): each
 * default alert band is the band that scores 3 for that parameter (temperature: the 1- and 2-point
 * fever bands), so a threshold alert and the NEWS2 score never disagree about what is abnormal.
 * Values are compared after rounding to the chart's precision (whole numbers; temperature 0.1 °C).
 */

export const VITAL_METRICS = ['spo2_pct', 'heart_rate_bpm', 'resp_rate_bpm', 'body_temp_c', 'systolic_bp_mmhg'] as const;
export type VitalMetric = (typeof VITAL_METRICS)[number];

/** `le`/`ge`: the default band edge is itself abnormal (NEWS2 "≤40"); `lt`/`gt`: a personal limit is the last acceptable value. */
export type Comparison = 'lt' | 'le' | 'gt' | 'ge';

export interface VitalCheck {
  /** Also the signal's `rule` name. */
  readonly id: string;
  readonly metric: VitalMetric;
  readonly side: 'low' | 'high';
  readonly op: Comparison;
  readonly threshold: number;
  /** Used instead of `op`/`threshold` for residents on NEWS2 SpO2 Scale 2. */
  readonly scale2?: { readonly op: Comparison; readonly threshold: number };
  /** How long the value must stay in the alert band before the alert is raised. */
  readonly durationMs: number;
  /** How long it must stay out of the band before the alert clears. */
  readonly clearMs: number;
  readonly severity: Severity;
  /** Registry `Resident.limits` key (and learned-baseline side) that overrides this check, if any. */
  readonly overridable: boolean;
  readonly name: Bilingual;
}

export const DEFAULT_VITAL_CHECKS: readonly VitalCheck[] = [
  // Issue 4: "60 s below 90 % is not [an artefact]"; 90 % is below NEWS2 Scale 1's 3-point band (≤91).
  // Scale 2 (target 88–92 %): its 3-point band is ≤83.
  { id: 'spo2_low', metric: 'spo2_pct', side: 'low', op: 'lt', threshold: 90, scale2: { op: 'le', threshold: 83 }, durationMs: 60_000, clearMs: 30_000, severity: 'high', overridable: true, name: { zh: '血氧饱和度过低', en: 'Low SpO2' } },
  // NEWS2 pulse ≤40 scores 3.
  { id: 'heart_rate_low', metric: 'heart_rate_bpm', side: 'low', op: 'le', threshold: 40, durationMs: 30_000, clearMs: 30_000, severity: 'high', overridable: true, name: { zh: '心动过缓', en: 'Bradycardia' } },
  // NEWS2 pulse ≥131 scores 3.
  { id: 'heart_rate_high', metric: 'heart_rate_bpm', side: 'high', op: 'ge', threshold: 131, durationMs: 60_000, clearMs: 30_000, severity: 'high', overridable: true, name: { zh: '心动过速', en: 'Tachycardia' } },
  // NEWS2 respiration ≤8 scores 3.
  { id: 'resp_rate_low', metric: 'resp_rate_bpm', side: 'low', op: 'le', threshold: 8, durationMs: 60_000, clearMs: 30_000, severity: 'high', overridable: true, name: { zh: '呼吸过缓', en: 'Slow breathing' } },
  // NEWS2 respiration ≥25 scores 3.
  { id: 'resp_rate_high', metric: 'resp_rate_bpm', side: 'high', op: 'ge', threshold: 25, durationMs: 60_000, clearMs: 30_000, severity: 'high', overridable: true, name: { zh: '呼吸过速', en: 'Fast breathing' } },
  // NEWS2 temperature 38.1–39.0 scores 1: fever. Temperature changes slowly, so two minutes filters a probe being moved.
  { id: 'fever', metric: 'body_temp_c', side: 'high', op: 'ge', threshold: 38.1, durationMs: 120_000, clearMs: 120_000, severity: 'medium', overridable: true, name: { zh: '发热', en: 'Fever' } },
  // NEWS2 temperature ≥39.1 scores 2: high fever.
  { id: 'fever_high', metric: 'body_temp_c', side: 'high', op: 'ge', threshold: 39.1, durationMs: 120_000, clearMs: 120_000, severity: 'high', overridable: false, name: { zh: '高热', en: 'High fever' } },
  // NEWS2 temperature ≤35.0 scores 3.
  { id: 'hypothermia', metric: 'body_temp_c', side: 'low', op: 'le', threshold: 35.0, durationMs: 120_000, clearMs: 120_000, severity: 'high', overridable: true, name: { zh: '体温过低', en: 'Hypothermia' } },
  // NEWS2 systolic ≤90 and ≥220 score 3. A cuff reading is already a measurement, not a stream: no duration.
  { id: 'systolic_bp_low', metric: 'systolic_bp_mmhg', side: 'low', op: 'le', threshold: 90, durationMs: 0, clearMs: 0, severity: 'high', overridable: true, name: { zh: '收缩压过低', en: 'Low systolic blood pressure' } },
  { id: 'systolic_bp_high', metric: 'systolic_bp_mmhg', side: 'high', op: 'ge', threshold: 220, durationMs: 0, clearMs: 0, severity: 'high', overridable: true, name: { zh: '收缩压过高', en: 'High systolic blood pressure' } },
];

/**
 * Readings no living resident lying in bed produces: the sensor is off the skin, misplaced or
 * faulty. They never feed the medical checks or NEWS2; held for `IMPLAUSIBLE_MS` they raise a
 * device (placement) alert instead.
 */
export const IMPLAUSIBLE: Readonly<Record<VitalMetric, { readonly below?: number; readonly above?: number }>> = {
  // SpO2 0 is the classic probe-off reading; below 50 % a pulse oximeter is outside its calibrated range (ISO 80601-2-61 accuracy is specified from 70 %).
  spo2_pct: { below: 50 },
  // HR 0 (or a few beats) with SpO2 and respiration present is a lost contact, not an arrest.
  heart_rate_bpm: { below: 20, above: 250 },
  resp_rate_bpm: { below: 3 },
  // A probe off the skin drifts to room temperature.
  body_temp_c: { below: 30, above: 43 },
  systolic_bp_mmhg: {},
};
export const IMPLAUSIBLE_MS = 30_000;

export const METRIC_NAMES: Readonly<Record<VitalMetric, Bilingual & { unit: string; decimals: 0 | 1 }>> = {
  spo2_pct: { zh: '血氧', en: 'SpO2', unit: '%', decimals: 0 },
  heart_rate_bpm: { zh: '心率', en: 'heart rate', unit: '/min', decimals: 0 },
  resp_rate_bpm: { zh: '呼吸', en: 'respiration', unit: '/min', decimals: 0 },
  body_temp_c: { zh: '体温', en: 'temperature', unit: '°C', decimals: 1 },
  systolic_bp_mmhg: { zh: '收缩压', en: 'systolic BP', unit: 'mmHg', decimals: 0 },
};

export type LimitSource = 'default' | 'personal' | 'baseline';

export interface ResolvedCheck {
  readonly op: Comparison;
  readonly threshold: number;
  readonly source: LimitSource;
}

/**
 * The band a check uses for one resident: staff-set `Resident.limits` (`<metric>_low` /
 * `<metric>_high`, the limit itself acceptable) win over a learned baseline, which wins over the
 * default (Scale 2 default for hypercapnic residents).
 */
export function resolveCheck(check: VitalCheck, resident: Resident, ctx: CareRuleContext): ResolvedCheck {
  const strict: Comparison = check.side === 'low' ? 'lt' : 'gt';
  if (check.overridable) {
    const personal = resident.limits?.[`${check.metric}_${check.side}`];
    if (personal !== undefined) return { op: strict, threshold: personal, source: 'personal' };
    const learned = ctx.baselines?.[resident.id]?.[check.metric]?.[check.side];
    if (learned !== undefined) return { op: strict, threshold: learned, source: 'baseline' };
  }
  if (resident.hypercapnic && check.scale2 !== undefined) return { ...check.scale2, source: 'default' };
  return { op: check.op, threshold: check.threshold, source: 'default' };
}

export function compare(value: number, op: Comparison, threshold: number): boolean {
  switch (op) {
    case 'lt':
      return value < threshold;
    case 'le':
      return value <= threshold;
    case 'gt':
      return value > threshold;
    case 'ge':
      return value >= threshold;
  }
}

export function describeBand(op: Comparison, threshold: number, unit: string): Bilingual {
  const zh = { lt: '低于', le: '≤', gt: '高于', ge: '≥' }[op];
  const en = { lt: 'below', le: 'at or below', gt: 'above', ge: 'at or above' }[op];
  return { zh: `${zh}${threshold}${unit}`, en: `${en} ${threshold} ${unit}` };
}

export function isImplausible(metric: VitalMetric, value: number): boolean {
  const b = IMPLAUSIBLE[metric];
  return (b.below !== undefined && value < b.below) || (b.above !== undefined && value > b.above);
}
