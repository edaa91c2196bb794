/**
 * The metric catalogue of protocol v1. A metric's name carries its unit. `min`/`max` are the
 * physically plausible range a sensor can report; values outside it are rejected at ingest as
 * invalid (they are sensor faults, not readings), while clinical or fire thresholds live in the
 * alert rules.
 */
export interface MetricSpec {
  readonly type: 'number' | 'boolean';
  readonly unit: string;
  readonly min?: number;
  readonly max?: number;
  readonly description: string;
}

export const METRICS = {
  temperature_c: { type: 'number', unit: '°C', min: -40, max: 200, description: 'Air temperature at the detector' },
  smoke_obscuration_pct_per_m: { type: 'number', unit: '%/m', min: 0, max: 100, description: 'Optical smoke obscuration' },
  battery_pct: { type: 'number', unit: '%', min: 0, max: 100, description: 'Battery charge' },
  rssi_dbm: { type: 'number', unit: 'dBm', min: -140, max: 0, description: 'Radio signal strength' },
  heart_rate_bpm: { type: 'number', unit: 'bpm', min: 0, max: 300, description: 'Pulse rate' },
  resp_rate_bpm: { type: 'number', unit: 'breaths/min', min: 0, max: 80, description: 'Respiration rate' },
  spo2_pct: { type: 'number', unit: '%', min: 0, max: 100, description: 'Peripheral oxygen saturation' },
  body_temp_c: { type: 'number', unit: '°C', min: 25, max: 45, description: 'Body temperature' },
  systolic_bp_mmhg: { type: 'number', unit: 'mmHg', min: 30, max: 300, description: 'Systolic blood pressure' },
  bed_occupied: { type: 'boolean', unit: '', description: 'Someone is lying on the bed' },
  movement_index: { type: 'number', unit: '0-100', min: 0, max: 100, description: 'Body movement on the bed sensor' },
  wetness_pct: { type: 'number', unit: '%', min: 0, max: 100, description: 'Continence pad / sheet wetness' },
  residual_current_ma: { type: 'number', unit: 'mA', min: 0, max: 10000, description: 'Residual (leakage) current of a circuit' },
  cable_temp_c: { type: 'number', unit: '°C', min: -40, max: 250, description: 'Cable / terminal temperature' },
  gas_lel_pct: { type: 'number', unit: '%LEL', min: 0, max: 100, description: 'Combustible gas, percent of lower explosive limit' },
  water_pressure_mpa: { type: 'number', unit: 'MPa', min: 0, max: 5, description: 'Fire-water main pressure' },
} as const satisfies Record<string, MetricSpec>;

export type MetricName = keyof typeof METRICS;
export const METRIC_NAMES = Object.keys(METRICS) as MetricName[];

export function isMetricName(name: string): name is MetricName {
  return Object.prototype.hasOwnProperty.call(METRICS, name);
}
