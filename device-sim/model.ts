import { DEVICE_KINDS, type DeviceKindSpec } from '../contract/device-kinds.ts';
import { METRICS, type MetricName, type MetricSpec } from '../contract/metrics.ts';
import type { EventType } from '../contract/payloads.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import type { Device } from '../contract/registry.ts';
import { between, gauss, hashString, hash32, mulberry32, smoothNoise, uniform } from './prng.ts';
import type { Flags, Metrics, Shape } from './shape.ts';
import * as W from './waveforms.ts';

/**
 * One simulated device as pure data and functions: its drawn profile (`createDeviceModel`), its
 * baseline reading at any instant (`baseline`), the reading with scenario shapes applied
 * (`sample`), and the events and QoS that follow from the previous reading (`step`). The MQTT
 * adapter (device.ts) only adds seq, ts and the socket.
 */

export interface ModelOptions {
  /** Seed of the whole simulation; each device derives its own from it and its id. */
  readonly seed: number;
  /** When the simulation started (battery drain starts here), ms. */
  readonly t0: number;
  /** Let wet episodes happen by themselves (demo); off for tests that want a quiet baseline. */
  readonly spontaneous: boolean;
}

export interface DeviceModel {
  readonly device: Device;
  readonly spec: DeviceKindSpec;
  readonly seed: number;
  /** Nominal telemetry period, ms. */
  readonly intervalMs: number;
  /** Start offset within the period, so 350 devices do not publish in lockstep. */
  readonly offsetMs: number;
  readonly room: W.RoomClimate;
  readonly chamber: W.SmokeChamber;
  readonly battery: W.BatteryProfile;
  readonly radio: W.RadioProfile;
  readonly circuit: W.CircuitProfile;
  readonly mains: W.MainsProfile;
  readonly vitals?: W.VitalProfile;
  readonly turns?: W.TurnSchedule;
  readonly continence?: W.ContinenceProfile;
  /** The device's own alarm decision levels (what makes it send `detector_alarm`). */
  readonly ownAlarm: Partial<Record<MetricName, number>>;
  /** SpO2 below this is off-normal for this resident (lower for NEWS2 Scale 2, hypercapnic, residents). */
  readonly spo2OffNormalBelow: number;
}

const MEAN_C_BY_ROOM_KIND: Record<string, [number, number]> = {
  kitchen: [24, 27],
  plant: [22, 26],
  corridor: [19, 21],
  stairwell: [17, 20],
};

export function createDeviceModel(device: Device, registry: RegistryIndex, opts: ModelOptions): DeviceModel {
  const spec = DEVICE_KINDS[device.kind];
  const seed = hash32(opts.seed, hashString(device.id));
  const rng = mulberry32(seed);
  const room = registry.room(device.homeId, device.roomId);
  const roomSeed = hash32(opts.seed, hashString(`${device.homeId}/${device.roomId}`));
  const roomRng = mulberry32(roomSeed);
  const [lo, hi] = MEAN_C_BY_ROOM_KIND[room?.kind ?? ''] ?? [20.5, 23.5];
  const intervalMs = spec.telemetryIntervalS * 1000;
  const model: DeviceModel = {
    device,
    spec,
    seed,
    intervalMs,
    offsetMs: Math.floor(uniform(seed, 3) * intervalMs),
    room: { seed: roomSeed, meanC: between(roomRng, lo, hi), diurnalAmpC: between(roomRng, 0.6, 1.4) },
    chamber: { seed: seed ^ 0x1, baselinePct: between(rng, 0.05, 0.2) },
    battery: { startPct: between(rng, 55, 100), drainPctPerDay: between(rng, 0.05, 0.3), t0: opts.t0 },
    radio: { seed: seed ^ 0x2, meanDbm: between(rng, -85, -55) },
    circuit: { seed: seed ^ 0x3, residualMa: between(rng, 15, 60), cableRiseC: between(rng, 5, 12) },
    mains: { seed: seed ^ 0x4, meanMpa: between(rng, 0.3, 0.45) },
    ownAlarm: ownAlarmLevels(device, room?.thresholds),
    spo2OffNormalBelow: 92,
  };
  const resident = device.residentId === undefined ? undefined : registry.resident(device.residentId);
  if (resident === undefined) return model;
  // Vitals are seeded by the resident, so the vital-signs monitor and the bed sensor agree.
  const rSeed = hash32(opts.seed, hashString(resident.id));
  const r = mulberry32(rSeed);
  return {
    ...model,
    // NEWS2 Scale 2: 88–92 % is this resident's target range, not a finding.
    spo2OffNormalBelow: resident.hypercapnic ? 86 : 92,
    vitals: {
      seed: rSeed,
      heartRateBpm: between(r, 62, 80),
      respRateBpm: between(r, 14, 17.5),
      // Hypercapnic residents (NEWS2 Scale 2) live at a target of 88–92 %.
      spo2Pct: resident.hypercapnic ? between(r, 89, 91.5) : between(r, 96.5, 98),
      bodyTempC: between(r, 36.4, 36.9),
      systolicMmHg: between(r, 118, 145),
    },
    turns: { seed: rSeed ^ 0x5, intervalMs: resident.turnIntervalMin * 60_000, offsetMs: Math.floor(uniform(rSeed, 5) * resident.turnIntervalMin * 60_000) },
    continence: { seed: rSeed ^ 0x6, spontaneous: opts.spontaneous },
  };
}

/**
 * The device's own alarm decision (it sends `detector_alarm` when crossed). A multi-sensor smoke
 * detector alarms at a dense 8 %/m so cooking smoke and steam (≤ 7 %/m) never make it decide
 * "fire" by itself: those are the nuisance cases the platform's verification must handle. Heat at
 * 60 °C sits in the EN 54-5 class A1 static response range (54–65 °C); a room override
 * (`heat_fixed_c`, e.g. the kitchen's 65) raises it. Residual current 300 mA is the low end of the
 * GB 50116 recommended 300–500 mA setting; gas at 25 %LEL is a common high-alarm setting.
 */
function ownAlarmLevels(device: Device, thresholds: Record<string, number> | undefined): Partial<Record<MetricName, number>> {
  const heat = Math.max(60, thresholds?.['heat_fixed_c'] ?? 0);
  switch (device.kind) {
    case 'smoke_detector':
      return { smoke_obscuration_pct_per_m: 8, temperature_c: heat };
    case 'heat_detector':
      return { temperature_c: heat };
    case 'gas_detector':
      return { gas_lel_pct: 25 };
    case 'electrical_fire_monitor':
      return { residual_current_ma: 300, cable_temp_c: 90 };
    default:
      return {};
  }
}

/** Raw (unrounded) healthy reading of every metric the device's kind sends. */
export function baseline(model: DeviceModel, t: number): Metrics {
  const out: Metrics = {};
  const air = W.roomTemperature(model.room, t);
  const v = model.vitals ? W.vitals(model.vitals, t) : undefined;
  for (const name of model.spec.metrics) {
    switch (name) {
      case 'temperature_c':
        out[name] = air;
        break;
      case 'smoke_obscuration_pct_per_m':
        out[name] = W.smokeBaseline(model.chamber, t);
        break;
      case 'battery_pct':
        out[name] = W.battery(model.battery, t);
        break;
      case 'rssi_dbm':
        out[name] = W.rssi(model.radio, t);
        break;
      case 'heart_rate_bpm':
      case 'resp_rate_bpm':
        // The bed sensor's ballistocardiogram is a noisier view of the same body.
        if (v) out[name] = v[name] + (model.device.kind === 'bed_sensor' ? smoothNoise(model.seed ^ 0x7, t, 60_000) + 0.5 * gauss(model.seed ^ 0x9, Math.floor(t / 1000)) : 0);
        break;
      case 'spo2_pct':
      case 'body_temp_c':
        if (v) out[name] = v[name];
        break;
      case 'systolic_bp_mmhg':
        if (v && W.hasBpReading(t, model.offsetMs, model.intervalMs)) out[name] = v[name];
        break;
      case 'bed_occupied':
        out[name] = true;
        break;
      case 'movement_index':
        if (model.turns) out[name] = W.movementIndex(model.turns, t);
        break;
      case 'wetness_pct':
        if (model.continence) out[name] = W.wetness(model.continence, t);
        break;
      case 'residual_current_ma':
      case 'cable_temp_c':
        out[name] = W.circuit(model.circuit, t, air)[name];
        break;
      case 'gas_lel_pct':
        out[name] = W.gasLevel(model.seed ^ 0x8, t);
        break;
      case 'water_pressure_mpa':
        out[name] = W.waterPressure(model.mains, t);
        break;
    }
  }
  return out;
}

/** Resolution each metric is reported at (what a real sensor's firmware would send). */
const DECIMALS: Record<MetricName, number> = {
  temperature_c: 1,
  smoke_obscuration_pct_per_m: 3,
  battery_pct: 0,
  rssi_dbm: 0,
  heart_rate_bpm: 0,
  resp_rate_bpm: 0,
  spo2_pct: 0,
  body_temp_c: 1,
  systolic_bp_mmhg: 0,
  bed_occupied: 0,
  movement_index: 0,
  wetness_pct: 0,
  residual_current_ma: 0,
  cable_temp_c: 1,
  gas_lel_pct: 1,
  water_pressure_mpa: 3,
};

/** Rounds to the metric's resolution and clamps to its physical range in contract/metrics.ts. */
export function finish(m: Metrics): Metrics {
  const out: Metrics = {};
  for (const [k, v] of Object.entries(m) as [MetricName, number | boolean][]) {
    if (typeof v !== 'number') {
      out[k] = v;
      continue;
    }
    const spec: MetricSpec = METRICS[k];
    const f = 10 ** DECIMALS[k];
    let x = Math.round(v * f) / f;
    if (spec.min !== undefined) x = Math.max(spec.min, x);
    if (spec.max !== undefined) x = Math.min(spec.max, x);
    out[k] = Object.is(x, -0) ? 0 : x;
  }
  return out;
}

export interface ActiveShape {
  readonly shape: Shape;
  /** Device time the scenario started, ms. */
  readonly startedAt: number;
  /** Simulated seconds per real second. */
  readonly speed: number;
}

export interface Sample {
  readonly metrics: Metrics;
  readonly flags: Flags;
}

/** The device's reading at `t` with every active scenario shape applied in the order they started. */
export function sample(model: DeviceModel, t: number, shapes: readonly ActiveShape[] = []): Sample {
  let metrics = baseline(model, t);
  let flags: Flags = {};
  for (const a of shapes) {
    const r = a.shape(metrics, {
      t,
      elapsedMs: Math.max(0, t - a.startedAt) * a.speed,
      seed: model.seed,
      metricsAtStart: () => finish(baseline(model, a.startedAt)),
    });
    metrics = r.metrics;
    if (r.flags) flags = { ...flags, ...r.flags };
  }
  return { metrics: finish(metrics), flags };
}

export interface DeviceState {
  readonly ownAlarm: boolean;
  readonly offNormal: boolean;
  readonly fault?: string;
  readonly fall: boolean;
  readonly callPoint: boolean;
  readonly call: boolean;
  readonly bedOccupied?: boolean;
}
export const INITIAL_STATE: DeviceState = { ownAlarm: false, offNormal: false, fall: false, callPoint: false, call: false };

export interface EventDraft {
  readonly type: EventType;
  readonly code?: string;
  readonly detail?: string;
  readonly ok?: boolean;
}

/**
 * Readings beyond these levels are "off-normal": the device sends them at QoS 1 (and the one
 * reading that returns to normal too), while routine readings go at QoS 0. Deliberately below the
 * platform's alarm thresholds so every reading a rule might alarm on is delivered at least once.
 */
export function isOffNormal(m: Metrics, spo2Below = 92): boolean {
  const n = (k: MetricName): number | undefined => (typeof m[k] === 'number' ? (m[k] as number) : undefined);
  const above = (k: MetricName, lvl: number): boolean => (n(k) ?? -Infinity) >= lvl;
  const below = (k: MetricName, lvl: number): boolean => (n(k) ?? Infinity) < lvl;
  return (
    above('smoke_obscuration_pct_per_m', 1.5) ||
    above('temperature_c', 45) ||
    above('cable_temp_c', 60) ||
    above('residual_current_ma', 150) ||
    above('gas_lel_pct', 5) ||
    below('water_pressure_mpa', 0.2) ||
    below('spo2_pct', spo2Below) ||
    below('heart_rate_bpm', 50) ||
    above('heart_rate_bpm', 110) ||
    below('resp_rate_bpm', 10) ||
    above('resp_rate_bpm', 24) ||
    above('body_temp_c', 38.3) ||
    below('body_temp_c', 35.5) ||
    above('wetness_pct', 50) ||
    below('battery_pct', 15) ||
    m.bed_occupied === false
  );
}

/** Own alarm with hysteresis: set at the level, cleared only below 80 % of it, so a hovering value alarms once. */
function ownAlarmNow(model: DeviceModel, m: Metrics, was: boolean): boolean {
  for (const [k, lvl] of Object.entries(model.ownAlarm) as [MetricName, number][]) {
    const v = m[k];
    if (typeof v !== 'number') continue;
    if (v >= lvl || (was && v >= 0.8 * lvl)) return true;
  }
  return false;
}

/** Events that follow from this reading given the previous state, and the QoS to send it at. */
export function step(model: DeviceModel, prev: DeviceState, s: Sample): { state: DeviceState; events: EventDraft[]; qos: 0 | 1 } {
  const events: EventDraft[] = [];
  const m = s.metrics;
  const ownAlarm = ownAlarmNow(model, m, prev.ownAlarm);
  if (ownAlarm && !prev.ownAlarm) events.push({ type: 'detector_alarm', detail: 'alarm threshold of the detector reached' });
  const fault = s.flags.fault;
  if (fault !== undefined && prev.fault === undefined) events.push({ type: 'fault', code: fault, ok: false });
  if (fault === undefined && prev.fault !== undefined) events.push({ type: 'fault', code: prev.fault, ok: true, detail: 'fault cleared' });
  const fall = s.flags.fall === true;
  if (fall && !prev.fall) events.push({ type: 'fall' });
  const callPoint = s.flags.callPoint === true;
  if (callPoint && !prev.callPoint) events.push({ type: 'manual_call_point' });
  const call = s.flags.call === true;
  if (call && !prev.call) events.push({ type: 'sos_button' });
  const bed = typeof m.bed_occupied === 'boolean' ? m.bed_occupied : undefined;
  if (bed === false && prev.bedOccupied === true) events.push({ type: 'bed_exit' });
  if (bed === true && prev.bedOccupied === false) events.push({ type: 'bed_return' });
  const offNormal = isOffNormal(m, model.spo2OffNormalBelow) || ownAlarm;
  const allowed = model.spec.events as readonly EventType[];
  const state: DeviceState = { ownAlarm, offNormal, fall, callPoint, call, ...(fault !== undefined ? { fault } : {}), ...(bed !== undefined ? { bedOccupied: bed } : {}) };
  return { state, events: events.filter((e) => allowed.includes(e.type)), qos: offNormal || prev.offNormal ? 1 : 0 };
}
