import { isMetricName, type MetricName } from '../contract/metrics.ts';
import { DEVICE_KINDS, type DeviceKind } from '../contract/device-kinds.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import type { Device } from '../contract/registry.ts';
import * as care from './care-shapes.ts';
import { SimError } from './errors.ts';
import * as fire from './fire-shapes.ts';
import type { Shape } from './shape.ts';

/**
 * The scenario catalogue: which devices a named scenario touches and how. Pure: resolves a target
 * against the registry and returns a plan; the simulator applies it. Targets are strings:
 * a device id, a resident id, a home id, or `homeId/roomId` for a room.
 */

export type ScenarioOptions = Readonly<Record<string, unknown>>;

export interface ScenarioPlan {
  readonly name: ScenarioName;
  readonly target: string;
  readonly options: ScenarioOptions;
  readonly devices: ReadonlyArray<{ readonly deviceId: string; readonly shape?: Shape }>;
  /** While active, the devices are cut off abruptly (no DISCONNECT, so their last will fires). */
  readonly offline?: boolean;
  /** Simulated ms after which the scenario ends by itself (cooking smoke clears, a resident returns). */
  readonly durationMs?: number;
}

type TargetKind = 'room' | 'device' | 'resident' | 'home' | 'device-room-or-home' | 'resident-or-room';

interface ScenarioDef {
  readonly target: TargetKind;
  readonly summary: string;
  plan(t: Resolved, options: ScenarioOptions, registry: RegistryIndex): Omit<ScenarioPlan, 'name' | 'target' | 'options'>;
}

interface Resolved {
  readonly homeId: string;
  readonly roomId?: string;
  readonly residentId?: string;
  readonly devices: readonly Device[];
}

function METRICS_OF(d: Device): readonly MetricName[] {
  return DEVICE_KINDS[d.kind].metrics;
}

const FIRE_KINDS: readonly DeviceKind[] = ['smoke_detector', 'heat_detector'];

function ofKind(devices: readonly Device[], kinds: readonly DeviceKind[]): Device[] {
  return devices.filter((d) => kinds.includes(d.kind));
}

function adjacentDevices(r: Resolved, registry: RegistryIndex): Device[] {
  const room = r.roomId === undefined ? undefined : registry.room(r.homeId, r.roomId);
  return (room?.adjacent ?? []).flatMap((id) => registry.devicesOfRoom(r.homeId, id));
}

function need<T>(items: readonly T[], what: string, where: string): readonly T[] {
  if (items.length === 0) throw new SimError('SIM_NO_DEVICE', `no ${what} at ${where}`);
  return items;
}

function num(options: ScenarioOptions, key: string, min: number, max: number): number | undefined {
  const v = options[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new SimError('SIM_BAD_OPTIONS', `option "${key}" must be a number in ${min}..${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function each(devices: readonly Device[], shape: Shape): Array<{ deviceId: string; shape: Shape }> {
  return devices.map((d) => ({ deviceId: d.id, shape }));
}

/** A nuisance (cooking, steam) reaches the room's own detectors, or drifts to the adjoining ones if the room has none (a kitchen). */
function nuisance(shape: Shape, durationMs: number): ScenarioDef['plan'] {
  return (r, _o, registry) => {
    const here = ofKind(r.devices, FIRE_KINDS);
    const smokeHere = ofKind(here, ['smoke_detector']);
    const reached = smokeHere.length > 0 ? here : [...here, ...ofKind(adjacentDevices(r, registry), ['smoke_detector'])];
    return { devices: each(need(reached, 'smoke or heat detector', `${r.homeId}/${r.roomId}`), shape), durationMs };
  };
}

function residentShape(make: (o: ScenarioOptions) => Shape, durationMs?: (o: ScenarioOptions) => number | undefined): ScenarioDef {
  return {
    target: 'resident',
    summary: '',
    plan: (r, o) => {
      const d = durationMs?.(o);
      return { devices: each(need(r.devices, 'device', 'resident'), make(o)), ...(d !== undefined ? { durationMs: d } : {}) };
    },
  };
}

function kindShape(kinds: readonly DeviceKind[], shape: () => Shape, summary: string): ScenarioDef {
  return {
    target: 'device-room-or-home',
    summary,
    plan: (r) => ({ devices: each(need(ofKind(r.devices, kinds), kinds.join(' or '), r.roomId ? `${r.homeId}/${r.roomId}` : r.homeId), shape()) }),
  };
}

const DEFS = {
  fire: {
    target: 'room',
    summary: 'fire in a room (options.kind flaming|smouldering); smoke spreads to adjoining rooms',
    plan: (r, o, registry) => {
      const kind = o['kind'] ?? 'flaming';
      if (kind !== 'flaming' && kind !== 'smouldering') throw new SimError('SIM_BAD_OPTIONS', `option "kind" must be "flaming" or "smouldering"`);
      const here = each(ofKind(r.devices, FIRE_KINDS), fire.fire(kind, fire.ORIGIN, fire.ORIGIN));
      const near = ofKind(adjacentDevices(r, registry), FIRE_KINDS).map((d) => ({
        deviceId: d.id,
        shape: fire.fire(kind, d.kind === 'smoke_detector' ? fire.ADJACENT_SMOKE : { delayS: 0, factor: 0 }, fire.ADJACENT_HEAT),
      }));
      return { devices: need([...here, ...near], 'smoke or heat detector', `${r.homeId}/${r.roomId}`) };
    },
  },
  'cooking-smoke': { target: 'room', summary: 'cooking smoke that clears within 60 s', plan: nuisance(fire.cookingSmoke(), fire.COOKING_DURATION_MS) },
  steam: { target: 'room', summary: 'steam spike that clears in about 30 s', plan: nuisance(fire.steam(), fire.STEAM_DURATION_MS) },
  'manual-call-point': {
    target: 'room',
    summary: "break the glass of the room's call point (or the nearest one in an adjoining room)",
    plan: (r, _o, registry) => {
      const own = ofKind(r.devices, ['manual_call_point']);
      const mcp = own.length > 0 ? own : ofKind(adjacentDevices(r, registry), ['manual_call_point']);
      const first = need(mcp, 'manual call point', `${r.homeId}/${r.roomId} or next to it`)[0] as Device;
      return { devices: [{ deviceId: first.id, shape: fire.callPoint() }] };
    },
  },
  'dirty-detector': {
    target: 'device',
    summary: 'clean-air baseline drifting up over hours (options.ratePctPerHour, maxPct)',
    plan: (r, o) => ({
      devices: each(need(ofKind(r.devices, ['smoke_detector']), 'smoke detector', 'target'), fire.dirtyDetector({ ratePctPerHour: num(o, 'ratePctPerHour', 0, 100), maxPct: num(o, 'maxPct', 0, 100) })),
    }),
  },
  stuck: { target: 'device', summary: 'sensor frozen at its current value (options.value)', plan: (r, o) => ({ devices: each(r.devices, fire.stuck({ value: num(o, 'value', -1e4, 1e4) })) }) },
  hover: {
    target: 'device',
    summary: 'a metric oscillating around a threshold (options.metric, level, amplitude)',
    plan: (r, o) => {
      const d = r.devices[0] as Device;
      const metricOpt = o['metric'];
      if (metricOpt !== undefined && (typeof metricOpt !== 'string' || !isMetricName(metricOpt))) throw new SimError('SIM_BAD_OPTIONS', `option "metric" must be a metric name`);
      // Default: the first metric of the device that has a usual threshold (smoke before temperature).
      const metric = metricOpt ?? (Object.keys(fire.HOVER_LEVELS) as MetricName[]).find((m) => METRICS_OF(d).includes(m));
      if (metric === undefined || !METRICS_OF(d).includes(metric)) throw new SimError('SIM_BAD_OPTIONS', `device ${d.id} has no metric to hover${metric ? ` named ${metric}` : ''}`);
      const level = num(o, 'level', -1e4, 1e4) ?? fire.HOVER_LEVELS[metric];
      if (level === undefined) throw new SimError('SIM_BAD_OPTIONS', `option "level" is required for ${metric}`);
      const amplitude = num(o, 'amplitude', 0, 1e4) ?? Math.abs(level) * 0.05;
      return { devices: each(r.devices, fire.hover(metric, level, amplitude)) };
    },
  },
  'detector-fault': {
    target: 'device',
    summary: 'sensing element fails: fault event, sensed metrics stop (options.code)',
    plan: (r, o) => {
      const code = o['code'] ?? 'E_SENSOR';
      if (typeof code !== 'string' || code.length > 64) throw new SimError('SIM_BAD_OPTIONS', 'option "code" must be a string of at most 64 characters');
      return { devices: each(r.devices, fire.detectorFault(code)) };
    },
  },
  'low-battery': { target: 'device', summary: 'battery nearly flat', plan: (r) => ({ devices: each(need(r.devices.filter((d) => METRICS_OF(d).includes('battery_pct')), 'battery-powered device', 'target'), fire.lowBattery()) }) },
  silent: { target: 'device', summary: 'stays connected but stops sending (hung firmware)', plan: (r) => ({ devices: each(r.devices, fire.silent()) }) },
  offline: { target: 'device', summary: 'network lost abruptly: the last will marks it offline', plan: (r) => ({ devices: r.devices.map((d) => ({ deviceId: d.id })), offline: true }) },
  'home-offline': { target: 'home', summary: "the home's gateway dies: every device drops at once", plan: (r) => ({ devices: need(r.devices, 'device', r.homeId).map((d) => ({ deviceId: d.id })), offline: true }) },
  'electrical-fault': kindShape(['electrical_fire_monitor'], fire.electricalFault, 'residual current rising past 400 mA, cable heating'),
  'gas-leak': kindShape(['gas_detector'], fire.gasLeak, 'combustible gas rising toward 35 %LEL'),
  'water-pressure-drop': kindShape(['water_pressure_sensor'], fire.waterPressureDrop, 'fire-water main pressure falling to 0.08 MPa'),
  desaturation: { ...residentShape((o) => care.desaturation(num(o, 'targetPct', 50, 100))), summary: 'SpO2 falling to ~85 % and staying (options.targetPct)' },
  'artefact-dip': { ...residentShape(() => care.artefactDip(), () => care.ARTEFACT_DURATION_MS), summary: 'SpO2 probe artefact: a dip shorter than 5 s' },
  bradycardia: { ...residentShape(() => care.bradycardia()), summary: 'pulse falling to ~38 bpm' },
  tachycardia: { ...residentShape(() => care.tachycardia()), summary: 'pulse rising to ~138 bpm' },
  fever: { ...residentShape((o) => care.fever(num(o, 'targetC', 37, 43))), summary: 'body temperature climbing to ~39.3 °C over 10 min (options.targetC)' },
  'bed-exit': {
    ...residentShape(
      (o) => care.bedExit(num(o, 'returnAfterMs', 0, 7 * 86_400_000)),
      (o) => {
        const back = num(o, 'returnAfterMs', 0, 7 * 86_400_000);
        return back === undefined ? undefined : back + care.BED_RETURN_TAIL_MS;
      },
    ),
    summary: 'resident leaves the bed (options.returnAfterMs: comes back then)',
  },
  fall: { ...residentShape(() => care.fall()), summary: 'resident falls out of bed' },
  wetness: { ...residentShape((o) => care.wetnessEpisode(num(o, 'peakPct', 10, 100))), summary: 'pad wetness rising to ~85 % until changed (clear the scenario)' },
  call: {
    target: 'resident-or-room',
    summary: "press a call button: a resident's own (bedside nurse call, else a bed sensor or monitor), or a room's pull cord",
    plan: (r) => {
      const canCall = r.devices.filter((d) => (DEVICE_KINDS[d.kind].events as readonly string[]).includes('sos_button'));
      // A room's own (room-level) pull cord or button first; a resident's nurse call before their monitors.
      const order = (d: Device): number => (d.kind === 'nurse_call' ? 0 : 2) + (r.residentId === undefined && d.residentId !== undefined ? 1 : 0);
      const button = [...need(canCall, 'call button', r.residentId ?? `${r.homeId}/${r.roomId}`)].sort((a, b) => order(a) - order(b))[0] as Device;
      return { devices: [{ deviceId: button.id, shape: care.callButton() }], durationMs: care.CALL_PRESS_MS };
    },
  },
  'missed-turn': { ...residentShape(() => care.missedTurn()), summary: 'nobody turns the resident: no movement bursts' },
} as const satisfies Record<string, ScenarioDef>;


export type ScenarioName = keyof typeof DEFS;
export const SCENARIO_NAMES = Object.keys(DEFS) as ScenarioName[];

export function isScenarioName(name: string): name is ScenarioName {
  return Object.prototype.hasOwnProperty.call(DEFS, name);
}

export function scenarioCatalogue(): Array<{ name: ScenarioName; target: TargetKind; summary: string }> {
  return SCENARIO_NAMES.map((name) => ({ name, target: DEFS[name].target, summary: DEFS[name].summary }));
}

function resolveTarget(kind: TargetKind, target: string, registry: RegistryIndex): Resolved {
  const slash = target.indexOf('/');
  if (slash >= 0) {
    const homeId = target.slice(0, slash);
    const roomId = target.slice(slash + 1);
    if (kind !== 'room' && kind !== 'device-room-or-home' && kind !== 'resident-or-room') throw new SimError('SIM_UNKNOWN_TARGET', `this scenario targets a ${kind}, not a room ("${target}")`);
    if (registry.room(homeId, roomId) === undefined) throw new SimError('SIM_UNKNOWN_TARGET', `no room "${roomId}" in home "${homeId}"`);
    return { homeId, roomId, devices: registry.devicesOfRoom(homeId, roomId) };
  }
  const device = registry.device(target);
  if (device && (kind === 'device' || kind === 'device-room-or-home')) return { homeId: device.homeId, roomId: device.roomId, devices: [device] };
  const resident = registry.resident(target);
  if (resident && (kind === 'resident' || kind === 'resident-or-room')) return { homeId: resident.homeId, roomId: resident.roomId, residentId: resident.id, devices: registry.devicesOfResident(resident.id) };
  const home = registry.home(target);
  if (home && (kind === 'home' || kind === 'device-room-or-home')) return { homeId: home.id, devices: registry.devicesOfHome(home.id) };
  const what = kind === 'room' ? 'room as homeId/roomId' : kind === 'device-room-or-home' ? 'device, homeId/roomId or home' : kind === 'resident-or-room' ? 'resident or homeId/roomId' : kind;
  throw new SimError('SIM_UNKNOWN_TARGET', `"${target}" is not a ${what} of the registry`);
}

/** Resolves a scenario request into a plan, or throws SimError with a stable code. */
export function planScenario(registry: RegistryIndex, name: string, target: string, options: ScenarioOptions = {}): ScenarioPlan {
  if (!isScenarioName(name)) throw new SimError('SIM_UNKNOWN_SCENARIO', `unknown scenario "${name}"; known: ${SCENARIO_NAMES.join(', ')}`);
  const def: ScenarioDef = DEFS[name];
  const resolved = resolveTarget(def.target, target, registry);
  return { name, target, options, ...def.plan(resolved, options, registry) };
}
