import type { Logger } from '../common/logger.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import type { Rule, RuleContext, RuleInput, Signal } from './rules/types.ts';

/**
 * Runs every rule over every input and collects their signals. Pure apart from logging: no clock,
 * no I/O. Each rule is isolated (issue 3; zigbee2mqtt's event bus does the same) so one failing
 * rule is counted and logged and the others go on; a rule that throws keeps its previous state.
 * Rule states are plain JSON, so `snapshot()`/`restore()` carry verification and rate-of-rise
 * windows across a restart.
 */

export type RuleStates = Record<string, unknown>;

export interface EngineDeps {
  readonly rules: readonly Rule[];
  readonly registry: RegistryIndex;
  readonly logger?: Logger;
}

export interface Engine {
  evaluate(input: RuleInput): Signal[];
  tick(now: number): Signal[];
  snapshot(): RuleStates;
  restore(states: RuleStates): void;
  /** Failures per rule id since start. */
  failures(): Readonly<Record<string, number>>;
  /** True when a state changed since the last `snapshot()`. */
  dirty(): boolean;
}

export function createEngine(deps: EngineDeps): Engine {
  const ctx: RuleContext = { registry: deps.registry };
  const states = new Map<string, unknown>();
  const failures: Record<string, number> = {};
  /** Rules whose state came from a snapshot and has not yet gone through a successful evaluation. */
  const restored = new Set<string>();
  let changed = false;
  const ids = new Set<string>();
  for (const rule of deps.rules) {
    if (ids.has(rule.id)) throw new Error(`duplicate rule id "${rule.id}"`);
    ids.add(rule.id);
    states.set(rule.id, rule.initialState());
  }

  function run(input: RuleInput): Signal[] {
    const out: Signal[] = [];
    for (const rule of deps.rules) {
      const before = states.get(rule.id);
      try {
        const result = rule.evaluate(input, before, ctx);
        if (result.state !== before) changed = true;
        states.set(rule.id, result.state);
        restored.delete(rule.id);
        out.push(...result.signals);
      } catch (err) {
        failures[rule.id] = (failures[rule.id] ?? 0) + 1;
        deps.logger?.error({ err, rule: rule.id, input: input.type, code: 'ALERTS_RULE_FAILED' }, 'rule failed; its state is kept');
        if (restored.has(rule.id)) {
          // A snapshot from an older rule version may not fit: start that rule afresh rather than fail forever.
          restored.delete(rule.id);
          states.set(rule.id, rule.initialState());
          changed = true;
        }
      }
    }
    return out;
  }

  return {
    evaluate: run,
    tick: (now) => run({ type: 'tick', now }),
    snapshot() {
      changed = false;
      // A JSON round trip both copies and proves the states are plain JSON.
      return JSON.parse(JSON.stringify(Object.fromEntries(states))) as RuleStates;
    },
    restore(saved) {
      for (const rule of deps.rules) {
        if (!Object.hasOwn(saved, rule.id)) continue;
        states.set(rule.id, structuredClone(saved[rule.id]));
        restored.add(rule.id);
      }
    },
    failures: () => ({ ...failures }),
    dirty: () => changed,
  };
}
