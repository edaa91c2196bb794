import type { Rule, RuleInput, Signal } from '../../../alerts/rules/types.ts';

/**
 * Small rules of the tests' own (the real fire and care rules are others' work): enough to drive
 * every path of the engine and the lifecycle through real inputs.
 */

/** Smoke over 10 %/m: a latching fire alarm per detector; counts readings in its JSON state. */
export const smokeRule: Rule<{ readings: number; over: string[] }> = {
  id: 'test_smoke',
  initialState: () => ({ readings: 0, over: [] }),
  evaluate(input: RuleInput, state) {
    if (input.type !== 'telemetry') return { state, signals: [] };
    const v = input.metrics.smoke_obscuration_pct_per_m;
    if (typeof v !== 'number') return { state, signals: [] };
    const d = input.device;
    const active = v > 10;
    const over = active ? [...new Set([...state.over, d.id])] : state.over.filter((x) => x !== d.id);
    const sig: Signal = {
      key: `test_smoke:${d.id}`,
      rule: 'test_smoke',
      category: 'fire',
      signal: 'alarm',
      severity: 'critical',
      homeId: d.homeId,
      deviceId: d.id,
      roomId: d.roomId,
      active,
      sourceTs: input.ts,
      receivedTs: input.receivedTs,
      value: v,
      latching: true,
      message: { zh: `烟雾报警 ${d.id}`, en: `Smoke alarm ${d.id}` },
    };
    return { state: { readings: state.readings + 1, over }, signals: [sig] };
  },
};

/** SpO2 below 90 %: a non-latching care alert per resident. */
export const spo2Rule: Rule<null> = {
  id: 'test_spo2',
  initialState: () => null,
  evaluate(input, state) {
    if (input.type !== 'telemetry') return { state, signals: [] };
    const v = input.metrics.spo2_pct;
    if (typeof v !== 'number' || input.device.residentId === undefined) return { state, signals: [] };
    const d = input.device;
    return {
      state,
      signals: [
        {
          key: `test_spo2:${d.residentId}`,
          rule: 'test_spo2',
          category: 'care',
          signal: 'care',
          severity: 'high',
          homeId: d.homeId,
          deviceId: d.id,
          roomId: d.roomId,
          residentId: d.residentId,
          active: v < 90,
          sourceTs: input.ts,
          receivedTs: input.receivedTs,
          value: v,
          message: { zh: `血氧偏低 ${v}%`, en: `Low SpO2 ${v}%` },
        },
      ],
    };
  },
};

/** A rule that always throws: the engine must isolate it. */
export const brokenRule: Rule<null> = {
  id: 'test_broken',
  initialState: () => null,
  evaluate() {
    throw new Error('deliberately broken');
  },
};

/** Counts ticks and care actions in its state (snapshot/restore and the care-action route). */
export const counterRule: Rule<{ ticks: number; actions: string[] }> = {
  id: 'test_counter',
  initialState: () => ({ ticks: 0, actions: [] }),
  evaluate(input, state) {
    if (input.type === 'tick') return { state: { ...state, ticks: state.ticks + 1 }, signals: [] };
    if (input.type === 'care_action') return { state: { ...state, actions: [...state.actions, `${input.residentId}:${input.action}:${input.by}`] }, signals: [] };
    return { state, signals: [] };
  },
};

export const testRules = (): Rule[] => [smokeRule as Rule, spo2Rule as Rule, counterRule as Rule];
