/**
 * NEWS2, the National Early Warning Score 2 (Royal College of Physicians, London, 2017:
 * "National Early Warning Score (NEWS) 2. Standardising the assessment of acute-illness severity
 * in the NHS", Chart 1 "The NEWS scoring system" and Chart 2 "NEWS thresholds and triggers").
 *
 * Pure scoring: no clock, no I/O. Every band below is copied from Chart 1; the chart records
 * respiration, SpO2, blood pressure and pulse as whole numbers and temperature to one decimal, so a
 * device value is first rounded to that precision (half away from zero) and then looked up.
 */

export const NEWS2_PARAMETERS = ['resp_rate', 'spo2', 'air_or_oxygen', 'systolic_bp', 'pulse', 'consciousness', 'temperature'] as const;
export type News2Parameter = (typeof NEWS2_PARAMETERS)[number];

/** ACVPU: Alert, new Confusion, responds to Voice, responds to Pain, Unresponsive. */
export type Acvpu = 'A' | 'C' | 'V' | 'P' | 'U';

export interface News2Observations {
  readonly respRate?: number;
  readonly spo2?: number;
  readonly onOxygen?: boolean;
  readonly systolicBp?: number;
  readonly pulse?: number;
  readonly consciousness?: Acvpu;
  readonly temperature?: number;
}

/** Chart 2 clinical risk. `low_medium` is "a score of 3 in any individual parameter". */
export type News2Risk = 'low' | 'low_medium' | 'medium' | 'high';

export interface News2Component {
  readonly value: number | boolean | string;
  readonly score: number;
}

export interface News2Result {
  /** Scores of the parameters that were available. */
  readonly components: Partial<Record<News2Parameter, News2Component>>;
  readonly aggregate: number;
  /** True when any parameter is missing: the aggregate then under-states the true score. */
  readonly partial: boolean;
  readonly missing: readonly News2Parameter[];
  /** Scale 2 was used for SpO2 (hypercapnic respiratory failure). */
  readonly spo2Scale: 1 | 2;
  readonly risk: News2Risk;
  /** Chart 2 response: routine ward-based, urgent ward-based review, urgent response, emergency response. */
  readonly response: 'ward' | 'urgent_review' | 'urgent' | 'emergency';
}

/** A band `min ≤ value ≤ max` (either end open) scoring `score`, as printed in Chart 1. */
export interface Band {
  readonly min?: number;
  readonly max?: number;
  readonly score: number;
}

// Chart 1, "Respiration rate (per minute)": ≤8 → 3, 9–11 → 1, 12–20 → 0, 21–24 → 2, ≥25 → 3.
export const RESP_RATE_BANDS: readonly Band[] = [
  { max: 8, score: 3 },
  { min: 9, max: 11, score: 1 },
  { min: 12, max: 20, score: 0 },
  { min: 21, max: 24, score: 2 },
  { min: 25, score: 3 },
];

// Chart 1, "SpO2 Scale 1 (%)": ≤91 → 3, 92–93 → 2, 94–95 → 1, ≥96 → 0.
export const SPO2_SCALE1_BANDS: readonly Band[] = [
  { max: 91, score: 3 },
  { min: 92, max: 93, score: 2 },
  { min: 94, max: 95, score: 1 },
  { min: 96, score: 0 },
];

// Chart 1, "SpO2 Scale 2 (%)", for patients with a prescribed target of 88–92 % (hypercapnic
// respiratory failure): ≤83 → 3, 84–85 → 2, 86–87 → 1, 88–92 and ≥93 on air → 0,
// 93–94 on oxygen → 1, 95–96 on oxygen → 2, ≥97 on oxygen → 3.
export const SPO2_SCALE2_BANDS: readonly Band[] = [
  { max: 83, score: 3 },
  { min: 84, max: 85, score: 2 },
  { min: 86, max: 87, score: 1 },
  { min: 88, max: 92, score: 0 },
];
export const SPO2_SCALE2_ON_AIR_ABOVE_92: readonly Band[] = [{ min: 93, score: 0 }];
export const SPO2_SCALE2_ON_OXYGEN_ABOVE_92: readonly Band[] = [
  { min: 93, max: 94, score: 1 },
  { min: 95, max: 96, score: 2 },
  { min: 97, score: 3 },
];

// Chart 1, "Air or oxygen?": Oxygen → 2, Air → 0.
export const OXYGEN_SCORE = 2;

// Chart 1, "Systolic blood pressure (mmHg)": ≤90 → 3, 91–100 → 2, 101–110 → 1, 111–219 → 0, ≥220 → 3.
export const SYSTOLIC_BP_BANDS: readonly Band[] = [
  { max: 90, score: 3 },
  { min: 91, max: 100, score: 2 },
  { min: 101, max: 110, score: 1 },
  { min: 111, max: 219, score: 0 },
  { min: 220, score: 3 },
];

// Chart 1, "Pulse (per minute)": ≤40 → 3, 41–50 → 1, 51–90 → 0, 91–110 → 1, 111–130 → 2, ≥131 → 3.
export const PULSE_BANDS: readonly Band[] = [
  { max: 40, score: 3 },
  { min: 41, max: 50, score: 1 },
  { min: 51, max: 90, score: 0 },
  { min: 91, max: 110, score: 1 },
  { min: 111, max: 130, score: 2 },
  { min: 131, score: 3 },
];

// Chart 1, "Consciousness": Alert → 0; new-onset Confusion, Voice, Pain, Unresponsive → 3.
export const CONSCIOUSNESS_SCORE: Readonly<Record<Acvpu, number>> = { A: 0, C: 3, V: 3, P: 3, U: 3 };

// Chart 1, "Temperature (°C)": ≤35.0 → 3, 35.1–36.0 → 1, 36.1–38.0 → 0, 38.1–39.0 → 1, ≥39.1 → 2.
export const TEMPERATURE_BANDS: readonly Band[] = [
  { max: 35.0, score: 3 },
  { min: 35.1, max: 36.0, score: 1 },
  { min: 36.1, max: 38.0, score: 0 },
  { min: 38.1, max: 39.0, score: 1 },
  { min: 39.1, score: 2 },
];

/** Rounds to the chart's precision, half away from zero; toPrecision first removes binary noise (38.05*10 = 380.49999…). */
export function roundTo(value: number, decimals: 0 | 1): number {
  const f = decimals === 0 ? 1 : 10;
  const scaled = Number((value * f).toPrecision(12));
  return (Math.sign(scaled) * Math.round(Math.abs(scaled))) / f;
}

/** Looks a chart-precision value up in a band table; throws if the table has a gap (a programming error). */
export function bandScore(bands: readonly Band[], value: number): number {
  for (const b of bands) {
    if ((b.min === undefined || value >= b.min) && (b.max === undefined || value <= b.max)) return b.score;
  }
  throw new Error(`NEWS2: value ${value} falls in no band`);
}

export function scoreRespRate(rate: number): number {
  return bandScore(RESP_RATE_BANDS, roundTo(rate, 0));
}

export function scoreSpo2Scale1(spo2: number): number {
  return bandScore(SPO2_SCALE1_BANDS, roundTo(spo2, 0));
}

/** Scale 2; `onOxygen` undefined scores as air (and the caller marks the score partial). */
export function scoreSpo2Scale2(spo2: number, onOxygen: boolean | undefined): number {
  const v = roundTo(spo2, 0);
  if (v <= 92) return bandScore(SPO2_SCALE2_BANDS, v);
  return bandScore(onOxygen === true ? SPO2_SCALE2_ON_OXYGEN_ABOVE_92 : SPO2_SCALE2_ON_AIR_ABOVE_92, v);
}

export function scoreOxygen(onOxygen: boolean): number {
  return onOxygen ? OXYGEN_SCORE : 0;
}

export function scoreSystolicBp(bp: number): number {
  return bandScore(SYSTOLIC_BP_BANDS, roundTo(bp, 0));
}

export function scorePulse(pulse: number): number {
  return bandScore(PULSE_BANDS, roundTo(pulse, 0));
}

export function scoreConsciousness(c: Acvpu): number {
  return CONSCIOUSNESS_SCORE[c];
}

export function scoreTemperature(t: number): number {
  return bandScore(TEMPERATURE_BANDS, roundTo(t, 1));
}

/** Chart 2: aggregate ≥7 high (emergency), 5–6 medium (urgent), a 3 in any single parameter low-medium (urgent ward review), else low. */
export function news2Risk(aggregate: number, anySingleThree: boolean): Pick<News2Result, 'risk' | 'response'> {
  if (aggregate >= 7) return { risk: 'high', response: 'emergency' };
  if (aggregate >= 5) return { risk: 'medium', response: 'urgent' };
  if (anySingleThree) return { risk: 'low_medium', response: 'urgent_review' };
  return { risk: 'low', response: 'ward' };
}

export function scoreNews2(obs: News2Observations, opts: { readonly scale2?: boolean } = {}): News2Result {
  const scale2 = opts.scale2 === true;
  const components: Partial<Record<News2Parameter, News2Component>> = {};
  const missing: News2Parameter[] = [];
  const put = (p: News2Parameter, value: number | boolean | string | undefined, score: (v: never) => number): void => {
    if (value === undefined) missing.push(p);
    else components[p] = { value, score: score(value as never) };
  };
  put('resp_rate', obs.respRate, scoreRespRate);
  put('spo2', obs.spo2, (v: number) => (scale2 ? scoreSpo2Scale2(v, obs.onOxygen) : scoreSpo2Scale1(v)));
  put('air_or_oxygen', obs.onOxygen, scoreOxygen);
  put('systolic_bp', obs.systolicBp, scoreSystolicBp);
  put('pulse', obs.pulse, scorePulse);
  put('consciousness', obs.consciousness, scoreConsciousness);
  put('temperature', obs.temperature, scoreTemperature);
  let aggregate = 0;
  let anySingleThree = false;
  for (const c of Object.values(components)) {
    aggregate += c.score;
    if (c.score >= 3) anySingleThree = true;
  }
  return { components, aggregate, partial: missing.length > 0, missing, spo2Scale: scale2 ? 2 : 1, ...news2Risk(aggregate, anySingleThree) };
}
