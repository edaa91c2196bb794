import type { Logger } from '../common/logger.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import type { Rule, RuleContext, RuleInput, Signal } from './rules/types.ts';

/**
 * Runs each rule over the inputs it accepts (`Rule.accepts`, indexed once per input type and
 * device kind, in rule order) and collects their signals. Pure apart from logging: no clock,
 * no I/O. Each rule is isolated (issue 3; zigbee2mqtt's event bus does the same) so one failing
 * rule is counted and logged and the others go on; a rule that throws keeps its previous state.
 * Rule states are plain JSON, so `snapshot()`/`restore()` carry verification and rate-of-rise
 * windows across a restart. The engine owns its states (snapshot() copies, restore() clones), so it
 * lets rules update them in place (`ctx.inPlace`): copying a 10,000-device map per message was most
 * of the engine's cost (issue 6).
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
  /** A JSON copy of every state, taken to be saved: clears `dirty()`. */
  snapshot(): RuleStates;
  /**
   * A JSON copy of the named rules' states (all when omitted) for reading, e.g. by an HTTP view:
   * leaves `dirty()` alone, so a read between a change and the periodic save cannot skip the save.
   */
  view(ruleIds?: readonly string[]): RuleStates;
  restore(states: RuleStates): void;
  /** Failures per rule id since start. */
  failures(): Readonly<Record<string, number>>;
  /** True when a state changed since the last `snapshot()`. */
  dirty(): boolean;
}

export function createEngine(deps: EngineDeps): Engine {
  const ctx: RuleContext = { registry: deps.registry, inPlace: true };
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

  /** Rules per input type and device kind (`type` or `type\u0000kind`), in rule order, built on first use. */
  const index = new Map<string, readonly Rule[]>();
  function rulesFor(input: RuleInput): readonly Rule[] {
    const kind = 'device' in input ? input.device.kind : undefined;
    const key = kind === undefined ? input.type : `${input.type}\u0000${kind}`;
    let list = index.get(key);
    if (list === undefined) {
      list = deps.rules.filter((r) => r.accepts === undefined || (r.accepts.types.includes(input.type) && (kind === undefined || r.accepts.kinds === undefined || r.accepts.kinds.includes(kind))));
      index.set(key, list);
    }
    return list;
  }

  function run(input: RuleInput): Signal[] {
    const out: Signal[] = [];
    for (const rule of rulesFor(input)) {
      const before = states.get(rule.id);
      try {
        const result = rule.evaluate(input, before, ctx);
        if (result.state !== before || result.mutated === true) changed = true;
        if (result.state !== before) states.set(rule.id, result.state);
        restored.delete(rule.id);
        for (const s of result.signals) out.push(s);
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
    view(ruleIds) {
      const picked = ruleIds === undefined ? Object.fromEntries(states) : Object.fromEntries(ruleIds.filter((id) => states.has(id)).map((id) => [id, states.get(id)]));
      return JSON.parse(JSON.stringify(picked)) as RuleStates;
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
