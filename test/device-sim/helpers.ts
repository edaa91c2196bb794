import { decodeDeviceMessage } from '../../contract/device-message.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { INITIAL_STATE, createDeviceModel, sample, step, type ActiveShape, type DeviceModel, type EventDraft, type Sample } from '../../device-sim/model.ts';
import { planScenario, type ScenarioOptions } from '../../device-sim/scenarios.ts';

export const T0 = Date.UTC(2026, 0, 1, 2, 0, 0); // 10:00 local in the demo site's UTC+8

export function model(registry: RegistryIndex, deviceId: string, seed = 7): DeviceModel {
  const d = registry.device(deviceId);
  if (!d) throw new Error(`no device ${deviceId}`);
  return createDeviceModel(d, registry, { seed, t0: T0, spontaneous: false });
}

/** Shapes a scenario puts on one device, started at `startedAt`. */
export function shapesOf(registry: RegistryIndex, name: string, target: string, deviceId: string, startedAt: number, options: ScenarioOptions = {}, speed = 1): ActiveShape[] {
  const plan = planScenario(registry, name, target, options);
  const entry = plan.devices.find((d) => d.deviceId === deviceId);
  if (!entry?.shape) throw new Error(`${name} on ${target} has no shape for ${deviceId}`);
  return [{ shape: entry.shape, startedAt, speed }];
}

export interface Step {
  readonly t: number;
  readonly s: Sample;
  readonly events: EventDraft[];
  readonly qos: 0 | 1;
}

/** Runs a device from `from` to `to` every `everyMs`, as the device adapter would. */
export function run(m: DeviceModel, shapes: (t: number) => readonly ActiveShape[], from: number, to: number, everyMs: number): Step[] {
  const out: Step[] = [];
  let state = INITIAL_STATE;
  for (let t = from; t <= to; t += everyMs) {
    const s = sample(m, t, shapes(t));
    const r = step(m, state, s);
    state = r.state;
    out.push({ t, s, events: r.events, qos: r.qos });
  }
  return out;
}

/** Builds the messages a device would publish for these steps and decodes each with the contract. */
export function decodeAll(registry: RegistryIndex, m: DeviceModel, steps: readonly Step[]): string[] {
  const problems: string[] = [];
  let seq = 0;
  const d = m.device;
  for (const st of steps) {
    for (const e of st.events) {
      const r = decodeDeviceMessage(deviceTopic(d.homeId, d.id, 'event'), Buffer.from(JSON.stringify({ ts: st.t, seq: seq++, ...e })), registry);
      if (!r.ok) problems.push(`${d.id} event ${e.type}: ${r.code} ${r.reason}`);
    }
    const r = decodeDeviceMessage(deviceTopic(d.homeId, d.id, 'telemetry'), Buffer.from(JSON.stringify({ ts: st.t, seq: seq++, metrics: st.s.metrics })), registry);
    if (!r.ok) problems.push(`${d.id} telemetry at ${st.t}: ${r.code} ${r.reason}`);
  }
  return problems;
}

export function num(s: Sample, name: string): number {
  const v = (s.metrics as Record<string, unknown>)[name];
  if (typeof v !== 'number') throw new Error(`metric ${name} missing: ${JSON.stringify(s.metrics)}`);
  return v;
}
