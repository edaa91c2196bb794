import type { Logger } from 'pino';
import { systemClock, type Clock, type ClockTimer } from '../common/clock.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import type { Device } from '../contract/registry.ts';
import { createControlServer, type ControlServer } from './control-api.ts';
import { createSimDevice, type SimDevice, type SimDeviceInfo } from './device.ts';
import { SimError } from './errors.ts';
import { createDeviceModel, type ActiveShape } from './model.ts';
import { planScenario, type ScenarioName, type ScenarioOptions, type ScenarioPlan } from './scenarios.ts';
import type { Shape } from './shape.ts';

export interface SimulatorConfig {
  readonly mqttUrl: string;
  /** Simulate only these homes (default: every home of the registry). */
  readonly homes?: readonly string[];
  /** Simulated seconds per real second for scenario progress (demo: 10 makes a fire develop 10× faster). */
  readonly speed?: number;
  readonly seed?: number;
  /** Port of the localhost control API (0 = any free port); undefined = no control API. */
  readonly controlPort?: number;
  readonly controlHost?: string;
  /** Let wet episodes happen by themselves (demo). Default false: a quiet baseline for tests. */
  readonly spontaneous?: boolean;
  /** How many devices connect at the same time at start (a gentler storm for the broker's scrypt). */
  readonly connectConcurrency?: number;
}

export interface SimulatorDeps {
  readonly config: SimulatorConfig;
  readonly registry: RegistryIndex;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** A device's MQTT password; default the demo site's documented `demo-<id>`. */
  readonly secret?: (deviceId: string) => string;
}

export interface ScenarioInfo {
  readonly id: string;
  readonly name: ScenarioName;
  readonly target: string;
  readonly options: ScenarioOptions;
  readonly startedAt: number;
  readonly devices: readonly string[];
  readonly offline: boolean;
}

export interface ScenarioApi {
  /** Starts any catalogued scenario (device-sim/scenarios.ts) on a target; returns its id. */
  start(name: string, target: string, options?: ScenarioOptions): string;
  fire(homeId: string, roomId: string, kind?: 'flaming' | 'smouldering'): string;
  cookingSmoke(homeId: string, roomId: string): string;
  steam(homeId: string, roomId: string): string;
  manualCallPoint(homeId: string, roomId: string): string;
  dirtyDetector(deviceId: string, options?: { ratePctPerHour?: number; maxPct?: number }): string;
  stuckSensor(deviceId: string, options?: { value?: number }): string;
  hover(deviceId: string, options?: { metric?: string; level?: number; amplitude?: number }): string;
  detectorFault(deviceId: string, options?: { code?: string }): string;
  lowBattery(deviceId: string): string;
  silent(deviceId: string): string;
  deviceOffline(deviceId: string): string;
  /** Brings a device back (clears what cut it off); returns how many scenarios changed. */
  deviceOnline(deviceId: string): number;
  homeOffline(homeId: string): string;
  electricalFault(target: string): string;
  gasLeak(target: string): string;
  waterPressureDrop(target: string): string;
  desaturation(residentId: string, options?: { targetPct?: number }): string;
  artefactDip(residentId: string): string;
  bradycardia(residentId: string): string;
  tachycardia(residentId: string): string;
  fever(residentId: string, options?: { targetC?: number }): string;
  bedExit(residentId: string, options?: { returnAfterMs?: number }): string;
  fall(residentId: string): string;
  wetness(residentId: string, options?: { peakPct?: number }): string;
  missedTurn(residentId: string): string;
  /** Ends a scenario by id, or every scenario on a target; returns how many ended. */
  clear(idOrTarget: string): number;
  list(): ScenarioInfo[];
}

export interface Simulator {
  start(): Promise<void>;
  close(): Promise<void>;
  readonly scenario: ScenarioApi;
  device(id: string): SimDevice | undefined;
  devices(): SimDeviceInfo[];
  /** Base URL of the control API once started (undefined without one). */
  controlUrl(): string | undefined;
}

interface Running {
  readonly info: Omit<ScenarioInfo, 'devices'>;
  readonly devices: Set<string>;
  readonly shapes: ReadonlyMap<string, Shape>;
  timer?: ClockTimer;
}

async function limit<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async (): Promise<void> => {
    while (i < items.length) await fn(items[i++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

export function createSimulator(deps: SimulatorDeps): Simulator {
  const { config, registry } = deps;
  const clock = deps.clock ?? systemClock;
  const log = deps.logger.child({ component: 'device-sim' });
  const speed = config.speed ?? 1;
  const secret = deps.secret ?? ((id: string) => `demo-${id}`);
  const devices = new Map<string, SimDevice>();
  const running = new Map<string, Running>();
  let nextId = 1;
  let control: ControlServer | undefined;
  let started = false;

  function scope(): readonly Device[] {
    const homes = config.homes;
    if (homes === undefined || homes.length === 0) return registry.site.devices;
    for (const h of homes) if (registry.home(h) === undefined) throw new SimError('SIM_UNKNOWN_TARGET', `home "${h}" is not in the registry`);
    return homes.flatMap((h) => registry.devicesOfHome(h));
  }

  function shapesFor(deviceId: string): ActiveShape[] {
    const out: ActiveShape[] = [];
    for (const r of running.values()) {
      const shape = r.shapes.get(deviceId);
      if (shape && r.devices.has(deviceId)) out.push({ shape, startedAt: r.info.startedAt, speed });
    }
    return out;
  }

  function cutOff(deviceId: string): boolean {
    for (const r of running.values()) if (r.info.offline && r.devices.has(deviceId)) return true;
    return false;
  }

  /** After scenarios changed on these devices: reconnect the ones no longer cut off, re-sample the rest. */
  function refresh(ids: Iterable<string>): void {
    for (const id of ids) {
      const dev = devices.get(id);
      if (!dev) continue;
      if (cutOff(id)) dev.goOffline();
      else if (!dev.info().networkUp) dev.goOnline();
      else dev.publishNow();
    }
  }

  function end(id: string): void {
    const r = running.get(id);
    if (!r) return;
    running.delete(id);
    if (r.timer) clock.clearTimeout(r.timer);
    log.info({ scenario: id }, 'scenario ended');
    refresh(r.devices);
  }

  function startScenario(name: string, target: string, options: ScenarioOptions = {}): string {
    if (!started) throw new SimError('SIM_BAD_REQUEST', 'the simulator is not started');
    const plan: ScenarioPlan = planScenario(registry, name, target, options);
    const missing = plan.devices.filter((d) => !devices.has(d.deviceId));
    if (missing.length > 0) throw new SimError('SIM_NOT_SIMULATED', `device ${missing[0]?.deviceId} is not simulated here (CAREWATCH_SIM_HOMES)`);
    const id = `s${nextId++}-${plan.name}`;
    const shapes = new Map<string, Shape>();
    for (const d of plan.devices) if (d.shape) shapes.set(d.deviceId, d.shape);
    const r: Running = {
      info: { id, name: plan.name, target, options, startedAt: clock.now(), offline: plan.offline === true },
      devices: new Set(plan.devices.map((d) => d.deviceId)),
      shapes,
    };
    running.set(id, r);
    // durationMs is simulated time; the timer runs on the device clock.
    if (plan.durationMs !== undefined) r.timer = clock.setTimeout(() => end(id), plan.durationMs / speed);
    log.info({ scenario: id, target, devices: r.devices.size }, 'scenario started');
    refresh(r.devices);
    return id;
  }

  function clear(idOrTarget: string): number {
    if (running.has(idOrTarget)) {
      end(idOrTarget);
      return 1;
    }
    const ids = [...running.values()].filter((r) => r.info.target === idOrTarget).map((r) => r.info.id);
    for (const id of ids) end(id);
    return ids.length;
  }

  function deviceOnline(deviceId: string): number {
    if (registry.device(deviceId) === undefined) throw new SimError('SIM_UNKNOWN_TARGET', `"${deviceId}" is not a device of the registry`);
    let changed = 0;
    for (const r of [...running.values()]) {
      if (!r.info.offline || !r.devices.has(deviceId)) continue;
      changed++;
      r.devices.delete(deviceId);
      if (r.devices.size === 0) end(r.info.id);
    }
    refresh([deviceId]);
    return changed;
  }

  const room = (h: string, r: string): string => `${h}/${r}`;
  const scenario: ScenarioApi = {
    start: startScenario,
    fire: (h, r, kind = 'flaming') => startScenario('fire', room(h, r), { kind }),
    cookingSmoke: (h, r) => startScenario('cooking-smoke', room(h, r)),
    steam: (h, r) => startScenario('steam', room(h, r)),
    manualCallPoint: (h, r) => startScenario('manual-call-point', room(h, r)),
    dirtyDetector: (id, o = {}) => startScenario('dirty-detector', id, o),
    stuckSensor: (id, o = {}) => startScenario('stuck', id, o),
    hover: (id, o = {}) => startScenario('hover', id, o),
    detectorFault: (id, o = {}) => startScenario('detector-fault', id, o),
    lowBattery: (id) => startScenario('low-battery', id),
    silent: (id) => startScenario('silent', id),
    deviceOffline: (id) => startScenario('offline', id),
    deviceOnline,
    homeOffline: (h) => startScenario('home-offline', h),
    electricalFault: (t) => startScenario('electrical-fault', t),
    gasLeak: (t) => startScenario('gas-leak', t),
    waterPressureDrop: (t) => startScenario('water-pressure-drop', t),
    desaturation: (id, o = {}) => startScenario('desaturation', id, o),
    artefactDip: (id) => startScenario('artefact-dip', id),
    bradycardia: (id) => startScenario('bradycardia', id),
    tachycardia: (id) => startScenario('tachycardia', id),
    fever: (id, o = {}) => startScenario('fever', id, o),
    bedExit: (id, o = {}) => startScenario('bed-exit', id, o),
    fall: (id) => startScenario('fall', id),
    wetness: (id, o = {}) => startScenario('wetness', id, o),
    missedTurn: (id) => startScenario('missed-turn', id),
    clear,
    list: () => [...running.values()].map((r) => ({ ...r.info, devices: [...r.devices] })),
  };

  const sim: Simulator = {
    async start() {
      if (started) return;
      const list = scope();
      const t0 = clock.now();
      for (const d of list) {
        const model = createDeviceModel(d, registry, { seed: config.seed ?? 1, t0, spontaneous: config.spontaneous ?? false });
        devices.set(d.id, createSimDevice({ model, mqttUrl: config.mqttUrl, secret: secret(d.id), clock, logger: log, shapes: () => shapesFor(d.id) }));
      }
      started = true;
      log.info({ devices: devices.size, homes: config.homes ?? 'all', speed }, 'connecting simulated devices');
      await limit([...devices.values()], config.connectConcurrency ?? 25, (dev) => dev.start());
      if (config.controlPort !== undefined) {
        control = createControlServer({ simulator: sim, host: config.controlHost ?? '127.0.0.1', port: config.controlPort, logger: log });
        await control.start();
        log.info({ url: control.url() }, 'control API listening');
      }
      log.info({ devices: devices.size }, 'all simulated devices connected');
    },
    async close() {
      await control?.close();
      control = undefined;
      for (const r of running.values()) if (r.timer) clock.clearTimeout(r.timer);
      running.clear();
      started = false;
      await Promise.all([...devices.values()].map((d) => d.close()));
      devices.clear();
    },
    scenario,
    device: (id) => devices.get(id),
    devices: () => [...devices.values()].map((d) => d.info()),
    controlUrl: () => control?.url(),
  };
  return sim;
}
