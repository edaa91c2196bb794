import type { Rule, RuleContext, RuleInput, Signal } from '../../../../alerts/rules/types.ts';
import { demoRegistry } from '../../../support/registry.ts';

export function demoCtx(): RuleContext {
  return { registry: demoRegistry() };
}

export interface Run {
  readonly signals: Signal[];
  readonly states: unknown[];
}

/**
 * Feeds inputs to rules as the engine does (every rule sees every input, states carried over).
 * With `roundTrip`, every state goes through JSON between inputs, as after a restart.
 */
export function run(rules: readonly Rule[], inputs: readonly RuleInput[], opts: { ctx?: RuleContext; roundTrip?: boolean; states?: unknown[] } = {}): Run {
  const ctx = opts.ctx ?? demoCtx();
  const states = opts.states ?? rules.map((r) => r.initialState());
  const signals: Signal[] = [];
  for (const input of inputs) {
    rules.forEach((rule, i) => {
      const res = rule.evaluate(input, states[i], ctx);
      states[i] = opts.roundTrip === true ? JSON.parse(JSON.stringify(res.state)) : res.state;
      signals.push(...res.signals);
    });
  }
  return { signals, states };
}

/** Signals as the engine would turn them into alert transitions: raises (inactive → active) per key. */
export function raises(signals: readonly Signal[], pred: (s: Signal) => boolean = () => true): Signal[] {
  const on = new Map<string, boolean>();
  const out: Signal[] = [];
  for (const s of signals) {
    if (s.active && on.get(s.key) !== true && pred(s)) out.push(s);
    on.set(s.key, s.active);
  }
  return out;
}

export function clears(signals: readonly Signal[], pred: (s: Signal) => boolean = () => true): Signal[] {
  const on = new Map<string, boolean>();
  const out: Signal[] = [];
  for (const s of signals) {
    if (!s.active && on.get(s.key) === true && pred(s)) out.push(s);
    on.set(s.key, s.active);
  }
  return out;
}

export const byRule = (rule: string) => (s: Signal): boolean => s.rule === rule;
export const fireAlarm = (s: Signal): boolean => s.category === 'fire' && s.signal === 'alarm' && s.severity === 'critical';
