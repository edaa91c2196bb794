/**
 * The metric catalogue of protocol v1. A metric's name carries its unit. `min`/`max` are the
 * physically plausible range a sensor can report; clinical or fire thresholds live in the alert
 * rules. A value outside the range is a saturated or faulty sensor, but it is never simply
 * dropped where it can mean danger (issue 11): on a side named in `danger` it is evaluated and
 * stored at the limit (a heat element past 200 °C in a fire reads "at least 200 °C"), flagged as
 * out of range; on the other side it is kept out of the reading (stored only as its raw value,
 * flagged). Either way it is counted, and repeated ones raise a device trouble (docs/protocol.md
 * "Out-of-range readings").
 */
export interface MetricSpec {
  readonly type: 'number' | 'boolean';
  readonly unit: string;
  readonly min?: number;
  readonly max?: number;
  /** Which side of the range can mean danger: readings past it are taken at the limit. */
  readonly danger?: 'above' | 'below' | 'both';
  readonly description: string;
}

export const METRICS = {
  // Fire: only heat past the top can mean fire; a reading below −40 °C is a broken element.
  temperature_c: { type: 'number', unit: '°C', min: -40, max: 200, danger: 'above', description: 'Air temperature at the detector' },
  smoke_obscuration_pct_per_m: { type: 'number', unit: '%/m', min: 0, max: 100, danger: 'above', description: 'Optical smoke obscuration' },
  // Below 0 % the battery is flat (low-battery trouble); above 100 % means nothing.
  battery_pct: { type: 'number', unit: '%', min: 0, max: 100, danger: 'below', description: 'Battery charge' },
  // Link quality is informational (loss of the link is supervised by heartbeats instead).
  rssi_dbm: { type: 'number', unit: 'dBm', min: -140, max: 0, description: 'Radio signal strength' },
  // Vital signs: both extremes are either an emergency or a sensor off the body; both need a person.
  heart_rate_bpm: { type: 'number', unit: 'bpm', min: 0, max: 300, danger: 'both', description: 'Pulse rate' },
  resp_rate_bpm: { type: 'number', unit: 'breaths/min', min: 0, max: 80, danger: 'both', description: 'Respiration rate' },
  // Hypoxia is low; a saturation above 100 % is impossible and harmless.
  spo2_pct: { type: 'number', unit: '%', min: 0, max: 100, danger: 'below', description: 'Peripheral oxygen saturation' },
  body_temp_c: { type: 'number', unit: '°C', min: 25, max: 45, danger: 'both', description: 'Body temperature' },
  systolic_bp_mmhg: { type: 'number', unit: 'mmHg', min: 30, max: 300, danger: 'both', description: 'Systolic blood pressure' },
  bed_occupied: { type: 'boolean', unit: '', description: 'Someone is lying on the bed' },
  // Movement marks a turn: taking a wild value at a limit could fake one, so neither side is kept.
  movement_index: { type: 'number', unit: '0-100', min: 0, max: 100, description: 'Body movement on the bed sensor' },
  wetness_pct: { type: 'number', unit: '%', min: 0, max: 100, danger: 'above', description: 'Continence pad / sheet wetness' },
  residual_current_ma: { type: 'number', unit: 'mA', min: 0, max: 10000, danger: 'above', description: 'Residual (leakage) current of a circuit' },
  cable_temp_c: { type: 'number', unit: '°C', min: -40, max: 250, danger: 'above', description: 'Cable / terminal temperature' },
  gas_lel_pct: { type: 'number', unit: '%LEL', min: 0, max: 100, danger: 'above', description: 'Combustible gas, percent of lower explosive limit' },
  // A main below 0 MPa (gauge) is empty or its transducer loop broken: both read as no pressure.
  water_pressure_mpa: { type: 'number', unit: 'MPa', min: 0, max: 5, danger: 'both', description: 'Fire-water main pressure' },
} as const satisfies Record<string, MetricSpec>;

export type MetricName = keyof typeof METRICS;
export const METRIC_NAMES = Object.keys(METRICS) as MetricName[];

export function isMetricName(name: string): name is MetricName {
  return Object.prototype.hasOwnProperty.call(METRICS, name);
}

/** A reading outside its metric's plausible range, and what the platform does with it. */
export interface OutOfRange {
  readonly metric: MetricName;
  /** What the device sent. */
  readonly value: number;
  readonly side: 'above' | 'below';
  /** The range limit it passed. */
  readonly limit: number;
  /** True: evaluated and stored as `limit` (the danger side); false: kept out of the reading. */
  readonly atLimit: boolean;
}

/**
 * Pure mapping of one finite numeric reading against its metric's range: undefined when inside,
 * otherwise the side it left by and whether it is taken at the limit (docs/protocol.md table).
 */
export function outOfRange(metric: MetricName, value: number): OutOfRange | undefined {
  const spec: MetricSpec = METRICS[metric];
  let side: 'above' | 'below';
  let limit: number;
  if (spec.max !== undefined && value > spec.max) [side, limit] = ['above', spec.max];
  else if (spec.min !== undefined && value < spec.min) [side, limit] = ['below', spec.min];
  else return undefined;
  const atLimit = spec.danger === 'both' || spec.danger === side;
  return { metric, value, side, limit, atLimit };
}
