import type { MetricName } from './metrics.ts';
import type { EventType } from './payloads.ts';

/**
 * What each kind of device may send. Ingest rejects a metric or event the device's kind does not
 * declare. `heartbeatBudgetS` is how long the platform waits for any message before it treats the
 * device as silent: NFPA 72 §23.16.2 requires loss of a low-power radio fire device to be reported
 * within 200 s, so fire devices use well under that; care monitors use less because a silent
 * vital-signs monitor on a resident in bed is itself a care risk.
 */
export interface DeviceKindSpec {
  readonly category: 'fire' | 'care' | 'infrastructure';
  readonly metrics: readonly MetricName[];
  readonly events: readonly EventType[];
  /** Nominal telemetry period of a healthy device, seconds. */
  readonly telemetryIntervalS: number;
  readonly heartbeatBudgetS: number;
  readonly description: string;
}

const RADIO: readonly MetricName[] = ['battery_pct', 'rssi_dbm'];
const DEVICE_EVENTS: readonly EventType[] = ['tamper', 'fault', 'self_test'];

export const DEVICE_KINDS = {
  smoke_detector: {
    category: 'fire',
    metrics: ['smoke_obscuration_pct_per_m', 'temperature_c', ...RADIO],
    events: ['detector_alarm', ...DEVICE_EVENTS],
    telemetryIntervalS: 10,
    heartbeatBudgetS: 90,
    description: 'Optical smoke detector with a temperature element (multi-sensor)',
  },
  heat_detector: {
    category: 'fire',
    metrics: ['temperature_c', ...RADIO],
    events: ['detector_alarm', ...DEVICE_EVENTS],
    telemetryIntervalS: 10,
    heartbeatBudgetS: 90,
    description: 'Heat detector, EN 54-5 class A1R (fixed temperature and rate of rise)',
  },
  manual_call_point: {
    category: 'fire',
    metrics: [...RADIO],
    events: ['manual_call_point', ...DEVICE_EVENTS],
    telemetryIntervalS: 60,
    heartbeatBudgetS: 190,
    description: 'Break-glass manual call point',
  },
  electrical_fire_monitor: {
    category: 'fire',
    metrics: ['residual_current_ma', 'cable_temp_c'],
    events: ['detector_alarm', ...DEVICE_EVENTS],
    telemetryIntervalS: 10,
    heartbeatBudgetS: 90,
    description: 'Electrical fire monitoring detector (GB 14287): residual current and cable temperature',
  },
  gas_detector: {
    category: 'fire',
    metrics: ['gas_lel_pct', ...RADIO],
    events: ['detector_alarm', ...DEVICE_EVENTS],
    telemetryIntervalS: 10,
    heartbeatBudgetS: 90,
    description: 'Combustible gas detector (kitchen)',
  },
  water_pressure_sensor: {
    category: 'fire',
    metrics: ['water_pressure_mpa'],
    events: [...DEVICE_EVENTS],
    telemetryIntervalS: 30,
    heartbeatBudgetS: 190,
    description: 'Fire-water main / sprinkler riser pressure',
  },
  vital_signs_monitor: {
    category: 'care',
    metrics: ['heart_rate_bpm', 'resp_rate_bpm', 'spo2_pct', 'body_temp_c', 'systolic_bp_mmhg', ...RADIO],
    events: ['sos_button', ...DEVICE_EVENTS],
    telemetryIntervalS: 5,
    heartbeatBudgetS: 30,
    description: 'Wearable / bedside vital-signs monitor',
  },
  bed_sensor: {
    category: 'care',
    metrics: ['bed_occupied', 'movement_index', 'heart_rate_bpm', 'resp_rate_bpm', ...RADIO],
    events: ['bed_exit', 'bed_return', 'fall', 'sos_button', ...DEVICE_EVENTS],
    telemetryIntervalS: 5,
    heartbeatBudgetS: 30,
    description: 'Under-mattress bed sensor: occupancy, movement, ballistocardiographic pulse and respiration',
  },
  nurse_call: {
    category: 'care',
    metrics: [...RADIO],
    events: ['sos_button', ...DEVICE_EVENTS],
    // A call button is a manual call point for care (呼叫器): it sends nothing until pressed, so
    // only its supervision reports show it can still call. Same period and budget as the manual
    // call point: NFPA 72 §23.16.2 wants a lost low-power radio device reported within 200 s, and
    // 190 s is three missed 60 s reports. A shorter period would drain a pull cord's battery for
    // no gain: the press itself is an event, sent at once.
    telemetryIntervalS: 60,
    heartbeatBudgetS: 190,
    description: 'Nurse call (呼叫器): bedside call button or pull cord, bathroom pull cord, pendant',
  },
  wetness_sensor: {
    category: 'care',
    metrics: ['wetness_pct', ...RADIO],
    events: [...DEVICE_EVENTS],
    telemetryIntervalS: 30,
    heartbeatBudgetS: 120,
    description: 'Continence sensor in the pad or under-sheet',
  },
} as const satisfies Record<string, DeviceKindSpec>;

export type DeviceKind = keyof typeof DEVICE_KINDS;
export const DEVICE_KIND_NAMES = Object.keys(DEVICE_KINDS) as DeviceKind[];

export function deviceKindSpec(kind: DeviceKind): DeviceKindSpec {
  return DEVICE_KINDS[kind];
}
