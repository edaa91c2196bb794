import { describe, expect, it } from 'vitest';
import { SimError } from '../../device-sim/errors.ts';
import { SCENARIO_NAMES, planScenario } from '../../device-sim/scenarios.ts';
import { demoRegistry } from '../support/registry.ts';
import { T0, decodeAll, model, num, run, shapesOf, type Step } from './helpers.ts';

const registry = demoRegistry();
const S = 1000;
const MIN = 60 * S;

/** Runs one device of a scenario from its start. */
function scenario(name: string, target: string, deviceId: string, durationMs: number, everyMs = 2 * S, options = {}, speed = 1): Step[] {
  const m = model(registry, deviceId);
  const shapes = shapesOf(registry, name, target, deviceId, T0, options, speed);
  // One healthy reading before the scenario starts, so edges (bed exit) have a "before".
  const steps = run(m, (t) => (t < T0 ? [] : shapes), T0 - everyMs, T0 + durationMs, everyMs);
  expect(decodeAll(registry, m, steps)).toEqual([]);
  return steps;
}
const firstAt = (steps: Step[], pred: (s: Step) => boolean): number | undefined => {
  const s = steps.find(pred);
  return s === undefined ? undefined : (s.t - T0) / S;
};
const events = (steps: Step[]): string[] => steps.flatMap((s) => s.events.map((e) => e.type));

describe('fire shapes', () => {
  it('a flaming fire drives the room detector past 4 %/m and 58 °C within 4 minutes, rising at 8–20 °C/min, and the detector alarms', () => {
    const steps = scenario('fire', 'h01/r101', 'h01-sd-r101', 5 * MIN);
    const smoke4 = firstAt(steps, (s) => num(s.s, 'smoke_obscuration_pct_per_m') >= 4);
    const smoke10 = firstAt(steps, (s) => num(s.s, 'smoke_obscuration_pct_per_m') > 10);
    const heat58 = firstAt(steps, (s) => num(s.s, 'temperature_c') >= 58);
    expect(smoke4).toBeLessThanOrEqual(60);
    expect(smoke10).toBeLessThanOrEqual(120);
    expect(heat58).toBeLessThanOrEqual(240);
    // Sustained rate of rise over the minute before crossing 58 °C (EN 54-5 A1R order of magnitude).
    const at = (sec: number): number => num((steps.find((s) => s.t - T0 >= sec * S) as Step).s, 'temperature_c');
    const rate = at(heat58 ?? 0) - at((heat58 ?? 0) - 60);
    expect(rate).toBeGreaterThanOrEqual(8);
    expect(rate).toBeLessThanOrEqual(22);
    expect(events(steps)).toEqual(['detector_alarm']);
    // Alarm-level readings travel at QoS 1.
    expect(steps.filter((s) => num(s.s, 'smoke_obscuration_pct_per_m') >= 4).every((s) => s.qos === 1)).toBe(true);
    expect(steps[0]?.qos).toBe(0); // the healthy reading before the fire
  });

  it('smoke from a fire reaches the adjoining corridor later and thinner', () => {
    const room = scenario('fire', 'h01/r101', 'h01-sd-r101', 3 * MIN);
    const corridor = scenario('fire', 'h01/r101', 'h01-sd-f1-corridor', 3 * MIN);
    const t4room = firstAt(room, (s) => num(s.s, 'smoke_obscuration_pct_per_m') >= 4) ?? Infinity;
    const t4corr = firstAt(corridor, (s) => num(s.s, 'smoke_obscuration_pct_per_m') >= 4) ?? Infinity;
    expect(t4corr).toBeGreaterThan(t4room + 30);
    expect(t4corr).toBeLessThan(180);
    expect(Math.max(...corridor.map((s) => num(s.s, 'temperature_c')))).toBeLessThan(35);
  });

  it('a smouldering fire: slow smoke, little heat', () => {
    const steps = scenario('fire', 'h01/r101', 'h01-sd-r101', 20 * MIN, 10 * S, { kind: 'smouldering' });
    const smoke4 = firstAt(steps, (s) => num(s.s, 'smoke_obscuration_pct_per_m') >= 4) ?? Infinity;
    expect(smoke4).toBeGreaterThan(5 * 60);
    expect(smoke4).toBeLessThan(20 * 60);
    const temps = steps.map((s) => num(s.s, 'temperature_c'));
    expect(Math.max(...temps) - (temps[0] ?? 0)).toBeLessThan(8);
  });

  it('cooking smoke crosses the alarm level briefly and clears within 60 s, without the detector deciding "fire"', () => {
    // The kitchen has no smoke detector: the smoke drifts to the dining room's.
    const plan = planScenario(registry, 'cooking-smoke', 'h01/kitchen');
    expect(plan.devices.map((d) => d.deviceId)).toContain('h01-sd-dining');
    const steps = scenario('cooking-smoke', 'h01/kitchen', 'h01-sd-dining', 90 * S, S);
    expect(Math.max(...steps.map((s) => num(s.s, 'smoke_obscuration_pct_per_m')))).toBeGreaterThanOrEqual(4);
    const after60 = steps.filter((s) => s.t - T0 >= 60 * S).map((s) => num(s.s, 'smoke_obscuration_pct_per_m'));
    expect(Math.max(...after60)).toBeLessThan(0.5);
    const above4 = steps.filter((s) => num(s.s, 'smoke_obscuration_pct_per_m') >= 4);
    expect(((above4.at(-1)?.t ?? 0) - (above4[0]?.t ?? 0)) / S).toBeLessThan(60);
    expect(events(steps)).toEqual([]);
    expect(plan.durationMs).toBeLessThanOrEqual(90 * S);
  });

  it('steam spikes and clears', () => {
    const steps = scenario('steam', 'h01/r102', 'h01-sd-r102', 60 * S, S);
    expect(Math.max(...steps.map((s) => num(s.s, 'smoke_obscuration_pct_per_m')))).toBeGreaterThan(4);
    expect(num((steps.at(-1) as Step).s, 'smoke_obscuration_pct_per_m')).toBeLessThan(0.5);
    expect(events(steps)).toEqual([]);
  });

  it('a dirty detector drifts up over hours, compressible with the speed factor, and stays below alarm', () => {
    const slow = scenario('dirty-detector', 'h01-sd-r103', 'h01-sd-r103', 6 * 60 * MIN, 30 * MIN);
    const fast = scenario('dirty-detector', 'h01-sd-r103', 'h01-sd-r103', 6 * MIN, 30 * S, {}, 60);
    const v = (steps: Step[]): number[] => steps.map((s) => num(s.s, 'smoke_obscuration_pct_per_m'));
    expect(v(slow).at(-1) ?? 0).toBeGreaterThan(2.5);
    expect(Math.max(...v(slow))).toBeLessThan(4);
    expect(v(slow)[2] ?? 0).toBeLessThan(v(slow)[8] ?? 0);
    expect(Math.abs((v(fast).at(-1) ?? 0) - (v(slow).at(-1) ?? 0))).toBeLessThan(0.2);
  });

  it('a stuck sensor repeats the same reading', () => {
    const steps = scenario('stuck', 'h01-sd-r104', 'h01-sd-r104', 30 * MIN, MIN).filter((s) => s.t >= T0);
    const temps = new Set(steps.map((s) => num(s.s, 'temperature_c')));
    const smokes = new Set(steps.map((s) => num(s.s, 'smoke_obscuration_pct_per_m')));
    expect(temps.size).toBe(1);
    expect(smokes.size).toBe(1);
  });

  it('a value hovering at a threshold crosses it again and again', () => {
    const steps = scenario('hover', 'h01-sd-r105', 'h01-sd-r105', 10 * MIN, S);
    let crossings = 0;
    for (let i = 1; i < steps.length; i++) {
      const a = num((steps[i - 1] as Step).s, 'smoke_obscuration_pct_per_m');
      const b = num((steps[i] as Step).s, 'smoke_obscuration_pct_per_m');
      if (a < 4 && b >= 4) crossings++;
    }
    expect(crossings).toBeGreaterThan(10);
    expect(events(steps)).toEqual([]);
  });

  it('a detector fault stops the sensed metric and raises a fault event; clearing it reports the fault cleared', () => {
    const m = model(registry, 'h01-sd-r201');
    const shapes = shapesOf(registry, 'detector-fault', 'h01-sd-r201', 'h01-sd-r201', T0);
    const steps = run(m, (t) => (t < T0 + MIN ? shapes : []), T0, T0 + 2 * MIN, 10 * S);
    expect(decodeAll(registry, m, steps)).toEqual([]);
    expect(steps[0]?.s.metrics.smoke_obscuration_pct_per_m).toBeUndefined();
    expect(steps[0]?.events).toEqual([{ type: 'fault', code: 'E_SENSOR', ok: false }]);
    const cleared = steps.find((s) => s.t >= T0 + MIN);
    expect(cleared?.events[0]).toMatchObject({ type: 'fault', ok: true });
    expect(cleared?.s.metrics.smoke_obscuration_pct_per_m).toBeTypeOf('number');
  });

  it('a manual call point sends manual_call_point once', () => {
    const plan = planScenario(registry, 'manual-call-point', 'h01/r101');
    expect(plan.devices.map((d) => d.deviceId)).toEqual(['h01-mcp-f1-corridor']);
    const steps = scenario('manual-call-point', 'h01/r101', 'h01-mcp-f1-corridor', 3 * MIN, MIN);
    expect(events(steps)).toEqual(['manual_call_point']);
  });

  it("a call presses one button: the resident's nurse call, or the room's own pull cord; sos_button once", () => {
    expect(planScenario(registry, 'call', 'h01-p01').devices.map((d) => d.deviceId)).toEqual(['h01-nc-p01']);
    expect(planScenario(registry, 'call', 'h01/f1-bath').devices.map((d) => d.deviceId)).toEqual(['h01-nc-f1-bath']);
    // h02 room 103: the free bed's room-level button before the resident's own.
    expect(planScenario(registry, 'call', 'h02/r103').devices.map((d) => d.deviceId)).toEqual(['h02-nc-r103-b']);
    expect(planScenario(registry, 'call', 'h01-p01').durationMs).toBe(5 * S);
    expect(() => planScenario(registry, 'call', 'h01/kitchen')).toThrow(/no call button/);
    const steps = scenario('call', 'h01-p01', 'h01-nc-p01', 3 * MIN, MIN);
    expect(events(steps)).toEqual(['sos_button']);
  });

  it('an electrical fault drives residual current past 400 mA; a gas leak past 25 %LEL; the water main below 0.15 MPa', () => {
    const ef = scenario('electrical-fault', 'h01', 'h01-ef-plant', 3 * MIN);
    expect(firstAt(ef, (s) => num(s.s, 'residual_current_ma') >= 400)).toBeLessThanOrEqual(120);
    expect(events(ef)).toEqual(['detector_alarm']);
    const gas = scenario('gas-leak', 'h01/kitchen', 'h01-gd-kitchen', 4 * MIN);
    expect(firstAt(gas, (s) => num(s.s, 'gas_lel_pct') >= 25)).toBeLessThanOrEqual(180);
    const wp = scenario('water-pressure-drop', 'h01-wp-plant', 'h01-wp-plant', 2 * MIN, 10 * S);
    expect(firstAt(wp, (s) => num(s.s, 'water_pressure_mpa') < 0.15)).toBeLessThanOrEqual(60);
  });
});

describe('care shapes', () => {
  it('desaturation goes below 90 % and stays there', () => {
    const steps = scenario('desaturation', 'h01-p01', 'h01-vs-p01', 15 * MIN, 5 * S);
    const below = firstAt(steps, (s) => num(s.s, 'spo2_pct') < 90) ?? Infinity;
    expect(below).toBeLessThanOrEqual(60);
    const after = steps.filter((s) => s.t - T0 >= 70 * S).map((s) => num(s.s, 'spo2_pct'));
    expect(Math.max(...after)).toBeLessThan(90);
    expect(Math.min(...after)).toBeGreaterThan(80);
  });

  it('an artefact dip lasts no more than 5 s', () => {
    const steps = scenario('artefact-dip', 'h01-p01', 'h01-vs-p01', 20 * S, 250);
    const low = steps.filter((s) => num(s.s, 'spo2_pct') < 90);
    expect(low.length).toBeGreaterThan(0);
    expect(((low.at(-1)?.t ?? 0) - (low[0]?.t ?? 0)) / S).toBeLessThanOrEqual(5);
    expect(num((steps.at(-1) as Step).s, 'spo2_pct')).toBeGreaterThanOrEqual(94);
  });

  it('bradycardia, tachycardia and fever reach their levels on the monitor (and the bed sensor pulse follows)', () => {
    const brady = scenario('bradycardia', 'h01-p02', 'h01-vs-p02', 2 * MIN);
    expect(Math.max(...brady.filter((s) => s.t - T0 >= 40 * S).map((s) => num(s.s, 'heart_rate_bpm')))).toBeLessThanOrEqual(42);
    const bradyBed = scenario('bradycardia', 'h01-p02', 'h01-bed-p02', 2 * MIN);
    expect(num((bradyBed.at(-1) as Step).s, 'heart_rate_bpm')).toBeLessThanOrEqual(45);
    const tachy = scenario('tachycardia', 'h01-p02', 'h01-vs-p02', 2 * MIN);
    expect(Math.min(...tachy.filter((s) => s.t - T0 >= 40 * S).map((s) => num(s.s, 'heart_rate_bpm')))).toBeGreaterThanOrEqual(131);
    const fever = scenario('fever', 'h01-p02', 'h01-vs-p02', 12 * MIN, 30 * S);
    expect(num((fever.at(-1) as Step).s, 'body_temp_c')).toBeGreaterThanOrEqual(39.1);
  });

  it('a bed exit with return sends bed_exit then bed_return; without return the bed stays empty', () => {
    const back = scenario('bed-exit', 'h01-p03', 'h01-bed-p03', 5 * MIN, 5 * S, { returnAfterMs: 2 * MIN });
    expect(events(back)).toEqual(['bed_exit', 'bed_return']);
    expect(back.find((s) => s.t === T0 + MIN)?.s.metrics.bed_occupied).toBe(false);
    expect(back.at(-1)?.s.metrics.bed_occupied).toBe(true);
    const gone = scenario('bed-exit', 'h01-p03', 'h01-bed-p03', 45 * MIN, 5 * S);
    expect(events(gone)).toEqual(['bed_exit']);
    expect(gone.every((s) => s.t < T0 || s.s.metrics.bed_occupied === false)).toBe(true);
    // The bed sensor cannot measure pulse with nobody on it.
    expect(gone.at(-1)?.s.metrics.heart_rate_bpm).toBeUndefined();
  });

  it('a fall is reported by the bed sensor only', () => {
    expect(events(scenario('fall', 'h01-p04', 'h01-bed-p04', MIN, 5 * S))).toEqual(['fall', 'bed_exit']);
    expect(events(scenario('fall', 'h01-p04', 'h01-vs-p04', MIN, 5 * S))).toEqual([]);
  });

  it('wetness rises to a change-needed level; a missed turn shows no movement burst', () => {
    const wet = scenario('wetness', 'h01-p05', 'h01-wet-p05', 5 * MIN, 30 * S);
    expect(num((wet.at(-1) as Step).s, 'wetness_pct')).toBeGreaterThanOrEqual(80);
    const still = scenario('missed-turn', 'h01-p05', 'h01-bed-p05', 8 * 60 * MIN, 10 * S);
    expect(Math.max(...still.map((s) => num(s.s, 'movement_index')))).toBeLessThan(10);
  });

  it('every scenario on a suitable target produces only messages the contract accepts', () => {
    const targets: Record<string, string> = {
      fire: 'h02/r101', 'cooking-smoke': 'h02/kitchen', steam: 'h02/r102', 'manual-call-point': 'h02/f1-corridor', 'dirty-detector': 'h02-sd-r101',
      stuck: 'h02-vs-p01', hover: 'h02-vs-p01', 'detector-fault': 'h02-ef-plant', 'low-battery': 'h02-wet-p01', silent: 'h02-bed-p01', offline: 'h02-sd-r101',
      'home-offline': 'h02', 'electrical-fault': 'h02', 'gas-leak': 'h02', 'water-pressure-drop': 'h02', desaturation: 'h02-p01', 'artefact-dip': 'h02-p01',
      bradycardia: 'h02-p01', tachycardia: 'h02-p01', fever: 'h02-p01', 'bed-exit': 'h02-p01', fall: 'h02-p01', wetness: 'h02-p01', 'missed-turn': 'h02-p01',
      call: 'h02-p01',
    };
    expect(Object.keys(targets).sort()).toEqual([...SCENARIO_NAMES].sort());
    for (const name of SCENARIO_NAMES) {
      const plan = planScenario(registry, name, targets[name] as string);
      expect(plan.devices.length, name).toBeGreaterThan(0);
      for (const d of plan.devices) {
        if (!d.shape) continue;
        const m = model(registry, d.deviceId);
        const shape = d.shape;
        const steps = run(m, () => [{ shape, startedAt: T0, speed: 1 }], T0, T0 + 15 * MIN, 7 * S);
        expect(decodeAll(registry, m, steps), `${name} on ${d.deviceId}`).toEqual([]);
      }
    }
  });

  it('refuses unknown scenarios, targets and bad options with stable codes', () => {
    const code = (f: () => unknown): string => {
      try {
        f();
      } catch (err) {
        return err instanceof SimError ? err.code : 'other';
      }
      return 'none';
    };
    expect(code(() => planScenario(registry, 'meteor', 'h01'))).toBe('SIM_UNKNOWN_SCENARIO');
    expect(code(() => planScenario(registry, 'fire', 'h01/r999'))).toBe('SIM_UNKNOWN_TARGET');
    expect(code(() => planScenario(registry, 'desaturation', 'h01-sd-r101'))).toBe('SIM_UNKNOWN_TARGET');
    expect(code(() => planScenario(registry, 'fire', 'h01/r101', { kind: 'explosive' }))).toBe('SIM_BAD_OPTIONS');
    expect(code(() => planScenario(registry, 'desaturation', 'h01-p01', { targetPct: 'low' }))).toBe('SIM_BAD_OPTIONS');
    expect(code(() => planScenario(registry, 'dirty-detector', 'h01-vs-p01'))).toBe('SIM_NO_DEVICE');
  });
});
