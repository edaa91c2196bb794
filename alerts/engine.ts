import type { Logger } from '../common/logger.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import type { FactSink } from './rules/facts.ts';
import type { Fact, Rule, RuleContext, RuleInput, Signal } from './rules/types.ts';
import { createFragmentCache, cutText, stateParts, type CutPart } from './snapshot-text.ts';
import { newDeviceClock, ruleTime, type DeviceClock } from './device-clock.ts';

/**
 * Runs each rule over the inputs it accepts (`Rule.accepts`, indexed once per input type and
 * device kind, in rule order) and collects their signals. Pure apart from logging: no clock,
 * no I/O. Each rule is isolated (issue 3; zigbee2mqtt's event bus does the same) so one failing
 * rule is counted, logged and raised as a trouble signal of the homes it concerns, and the others go
 * on. Rules update their state in place, so a rule that throws may leave it half-updated: after
 * RESET_AFTER_FAILURES failures in a row it starts afresh.
 * Rule states are plain JSON, so `snapshot()`/`restore()` carry verification and rate-of-rise
 * windows across a restart. The engine owns its states (snapshot() copies, restore() clones), so it
 * lets rules update them in place (`ctx.inPlace`): copying a 10,000-device map per message was most
 * of the engine's cost (issue 6).
 *
 * Facts (what rules found: a score, a turn, a bed change) go to one sink, `onFacts`, once per input
 * with every rule's facts of that input, after the rules ran and before the signals are returned.
 * A sink rather than a second return value: `evaluate` keeps returning just the signals, and an
 * input that finds nothing (nearly all of them) allocates nothing for facts. The sink is isolated
 * like a rule: if it throws, that is counted and logged, and neither the rules nor their states or
 * signals are touched.
 */

export type RuleStates = Record<string, unknown>;

export interface EngineDeps {
  readonly rules: readonly Rule[];
  readonly registry: RegistryIndex;
  readonly logger?: Logger;
  /** Receives the facts of each evaluation that found any (never called with none). */
  readonly onFacts?: FactSink;
}

export interface Engine {
  evaluate(input: RuleInput): Signal[];
  tick(now: number): Signal[];
  /** A JSON copy of every state, taken to be saved: clears `dirty()`. */
  snapshot(): RuleStates;
  /** The same as `snapshot()`, as the JSON text itself (what is saved: one serialisation, no copy). */
  snapshotJson(): string;
  /**
   * A consistent cut of every state, to be serialised later in slices (alerts/snapshot-text.ts
   * `sliceCut`; its text is `snapshotJson()`'s): cheap, taken in one turn, clears `dirty()`.
   */
  snapshotCut(): CutPart[];
  /** Map entries serialised for snapshots since start, and entries whose cached text was reused. */
  snapshotFragments(): { serialised: number; reused: number };
  /**
   * A JSON copy of the named rules' states (all when omitted) for reading, e.g. by an HTTP view:
   * leaves `dirty()` alone, so a read between a change and the periodic save cannot skip the save.
   */
  view(ruleIds?: readonly string[]): RuleStates;
  restore(states: RuleStates): void;
  /**
   * A rule failure found open at start (its trouble alert restored, `ruleFailureOf`): the engine
   * did not see what failed, so the rule's next success for the home, on any input, clears it.
   */
  resumeFailing(ruleId: string, homeId: string): void;
  /** Failures per rule id since start. */
  failures(): Readonly<Record<string, number>>;
  /** True when a state changed since the last `snapshot()`. */
  dirty(): boolean;
  /** The facts that hold in the current states (`Rule.standingFacts`): seeds views after `restore()`. */
  standingFacts(): Fact[];
  /** How often the `onFacts` sink threw since start. */
  factSinkFailures(): number;
  /**
   * Devices whose clock the engine currently moves for the rules (alerts/device-clock.ts: steadily
   * behind), and how often a device's correction changed since start.
   */
  deviceClocks(): { corrected: number; changes: number };
}

/** Where the saved states keep the device clocks the engine moves (not a rule id: rule ids have no '$'). */
export const DEVICE_CLOCKS = '$deviceClocks';

/** A rule failing this many times in a row starts afresh: a state it cannot digest must not blind it for good. */
export const RESET_AFTER_FAILURES = 3;

/** The key of a rule failure's trouble signal (`ruleTrouble`); `ruleFailureOf` reads it back. */
const troubleKey = (ruleId: string, homeId: string): string => `rule_failure:${ruleId}:${homeId}`;

/** The rule and home of a rule failure's trouble key (`troubleKey`), or undefined for any other key. */
export function ruleFailureOf(key: string): { ruleId: string; homeId: string } | undefined {
  const m = /^rule_failure:(.+):([^:]+)$/.exec(key);
  return m?.[1] !== undefined && m[2] !== undefined ? { ruleId: m[1], homeId: m[2] } : undefined;
}

/** What failed, for a failure restored at start (resumeFailing): any success clears it. */
const ANY_INPUT = '*';

/** A rule failing for a home, as `failing` keys it. */
const failKey = (ruleId: string, homeId: string): string => `${ruleId}\u0000${homeId}`;

/**
 * A rule that fails leaves its homes unprotected, and nobody would see it in a log. NFPA 72 treats
 * a fault of the control unit as a trouble signal: so does carewatch, per rule and home, cleared
 * when the rule next succeeds for that home.
 */
function ruleTrouble(ruleId: string, homeId: string, active: boolean, now: number): Signal {
  return {
    key: troubleKey(ruleId, homeId),
    rule: 'rule_failure',
    category: 'device',
    signal: 'trouble',
    severity: 'high',
    homeId,
    active,
    sourceTs: now,
    message: {
      zh: `系统故障：规则 ${ruleId} 处理失败，相关监测可能失效，请通知系统管理员`,
      en: `System trouble: rule ${ruleId} is failing; its monitoring may be impaired. Call the administrator.`,
    },
  };
}

export function createEngine(deps: EngineDeps): Engine {
  const ctx: RuleContext = { registry: deps.registry, inPlace: true };
  const states = new Map<string, unknown>();
  const failures: Record<string, number> = {};
  const consecutive: Record<string, number> = {};
  /**
   * `ruleId\u0000homeId` of rules currently failing for a home (their trouble signal is active), with
   * the inputs that failed: a device's input of one type (its readings, its events), or an input type
   * (ticks, care actions). Only a success on the same input clears it: until session 23 a rule that
   * threw on one detector's readings but not on ticks was "cleared" by the next tick within a second,
   * 360 troubles an hour, never open long enough to be seen or escalated (a helper's hunt, session 22).
   */
  const failing = new Map<string, Set<string>>();
  // A device's input of one type: a rule may throw on a detector's events and not on its telemetry.
  const sourceOf = (input: RuleInput): string => ('device' in input ? `${input.type}:${input.device.id}` : input.type);
  const allHomes = deps.registry.site.homes.map((h) => h.id);
  /** Rules whose state came from a snapshot and has not yet gone through a successful evaluation. */
  const restored = new Set<string>();
  let changed = false;
  let sinkFailures = 0;
  /** Per device, what its clock is known to be off by (alerts/device-clock.ts). */
  const clocks = new Map<string, DeviceClock>();
  /**
   * The corrected ones, saved with the rule states (under DEVICE_CLOCKS, present while any is): the
   * states hold their moved times, so a restart that forgot the correction would have the rules
   * ignore such a device's readings, older than the saved ones, until it was relearned a minute later.
   * Copy-on-write per entry (snapshot-text.ts caches entry texts by identity).
   */
  const corrections: Record<string, DeviceClock> = {};
  /** How many devices are moved now: the corrections' own count (read at a change or a scrape). */
  const correctedCount = (): number => Object.keys(corrections).length;
  let clockChanges = 0;
  const ids = new Set<string>();
  for (const rule of deps.rules) {
    if (ids.has(rule.id) || rule.id === DEVICE_CLOCKS) throw new Error(`duplicate rule id "${rule.id}"`);
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

  /** The homes an input concerns: its device's or resident's, or every home for a tick. */
  function homesOf(input: RuleInput): readonly string[] {
    if ('device' in input) return [input.device.homeId];
    if (input.type === 'care_action') return [input.homeId];
    return allHomes;
  }

  /** The input as the rules see it: a device's reading or event at its rule time (device-clock.ts). */
  function atRuleTime(input: RuleInput): RuleInput {
    if (input.type !== 'telemetry' && input.type !== 'event') return input;
    const reference = input.receivedTs;
    let clock = clocks.get(input.device.id);
    if (clock === undefined) clocks.set(input.device.id, (clock = newDeviceClock(input.ts, reference)));
    const step = ruleTime(clock, input.ts, reference, input.type === 'telemetry');
    if (step.changed) {
      clockChanges++;
      if (clock.correction !== 0) corrections[input.device.id] = { ...clock };
      else delete corrections[input.device.id];
      keepCorrections();
      changed = true;
      deps.logger?.info(
        { device: input.device.id, correctionMs: clock.correction, code: 'ALERTS_DEVICE_CLOCK' },
        clock.correction === 0 ? "device clock agrees with the receipt times again: the rules take its times as they are" : "device clock steadily behind: the rules move its times by the offset",
      );
    }
    return step.ts === input.ts ? input : { ...input, ts: step.ts };
  }

  /** The corrections among the saved states while there are any (no key, and no change, for a site whose clocks are right). */
  function keepCorrections(): void {
    if (correctedCount() > 0) states.set(DEVICE_CLOCKS, corrections);
    else states.delete(DEVICE_CLOCKS);
  }

  function run(given: RuleInput): Signal[] {
    const input = atRuleTime(given);
    const out = runAt(input);
    if (input === given) return out;
    // The rules timed the input by its rule time; a signal it raised says when the device measured it
    // (its own `ts`, what `sourceTs` means, docs/alerts.md), and the caller recognises the signals of
    // this very message by that time (alerts.ts stamps them with the broker's and its receive times).
    const moved = (input as { ts: number }).ts;
    const deviceTs = (given as { ts: number }).ts;
    for (let i = 0; i < out.length; i++) {
      const s = out[i] as Signal;
      if (s.sourceTs === moved) out[i] = { ...s, sourceTs: deviceTs };
    }
    return out;
  }

  function runAt(input: RuleInput): Signal[] {
    const out: Signal[] = [];
    /** Allocated by the first rule that found something. */
    let facts: Fact[] | undefined;
    for (const rule of rulesFor(input)) {
      const before = states.get(rule.id);
      try {
        const result = rule.evaluate(input, before, ctx);
        if (result.state !== before || result.mutated === true) changed = true;
        if (result.state !== before) states.set(rule.id, result.state);
        restored.delete(rule.id);
        consecutive[rule.id] = 0;
        for (const s of result.signals) out.push(s);
        const found = result.facts;
        if (found !== undefined && found.length > 0) {
          if (facts === undefined) facts = [];
          for (const f of found) facts.push(f);
        }
        if (failing.size > 0) {
          const source = sourceOf(input);
          for (const homeId of homesOf(input)) {
            const k = failKey(rule.id, homeId);
            const sources = failing.get(k);
            if (sources === undefined) continue;
            const passed = sources.delete(source);
            const resumed = sources.delete(ANY_INPUT);
            if ((passed || resumed) && sources.size === 0) {
              failing.delete(k);
              out.push(ruleTrouble(rule.id, homeId, false, input.now));
            }
          }
        }
      } catch (err) {
        failures[rule.id] = (failures[rule.id] ?? 0) + 1;
        consecutive[rule.id] = (consecutive[rule.id] ?? 0) + 1;
        deps.logger?.error({ err, rule: rule.id, input: input.type, code: 'ALERTS_RULE_FAILED' }, 'rule failed');
        const source = sourceOf(input);
        for (const homeId of homesOf(input)) {
          const k = failKey(rule.id, homeId);
          const sources = failing.get(k);
          if (sources !== undefined) sources.add(source);
          else {
            failing.set(k, new Set([source]));
            out.push(ruleTrouble(rule.id, homeId, true, input.now));
          }
        }
        // A snapshot from an older rule version may not fit, and a state a bug has corrupted may keep
        // failing: start that rule afresh rather than fail forever.
        if (restored.has(rule.id) || (consecutive[rule.id] ?? 0) >= RESET_AFTER_FAILURES) {
          restored.delete(rule.id);
          consecutive[rule.id] = 0;
          states.set(rule.id, rule.initialState());
          changed = true;
          deps.logger?.warn({ rule: rule.id, code: 'ALERTS_RULE_RESET' }, 'rule state reset after repeated failures');
        }
      }
    }
    if (facts !== undefined && deps.onFacts !== undefined) {
      try {
        deps.onFacts(facts);
      } catch (err) {
        sinkFailures++;
        deps.logger?.error({ err, input: input.type, facts: facts.length, code: 'ALERTS_FACT_SINK_FAILED' }, 'a fact consumer failed');
      }
    }
    return out;
  }

  /** Per-entry texts of the rules' `snapshotMaps`, reused while an entry is unchanged. */
  const fragments = createFragmentCache();
  const mapsOf = new Map<string, readonly string[] | undefined>([...deps.rules.map((r) => [r.id, r.snapshotMaps] as const), [DEVICE_CLOCKS, ['']]]);

  function snapshotCut(): CutPart[] {
    changed = false;
    // The text JSON.stringify(Object.fromEntries(states)) gives, but each rule's state is captured
    // when the slicer reaches it (one rule per turn) and its large per-device maps are serialised
    // later in slices from cached entry texts: with 10,000 devices one stringify of everything
    // stalled alerts 5–65 ms every 3 s (issue 11; bench/snapshot-cost.ts).
    const parts: CutPart[] = [];
    let open = '{';
    for (const id of states.keys()) {
      parts.push(`${open}${JSON.stringify(id)}:`, { capture: () => captureRule(id) });
      open = ',';
    }
    parts.push(open === '{' ? '{}' : '}');
    return parts;
  }

  function captureRule(id: string): CutPart[] {
    const own = stateParts(states.get(id), mapsOf.get(id), fragments);
    // A state is never undefined (initialState, restore); were it, null keeps the text JSON (the rule
    // then fails on restore and starts afresh, as for any state it cannot read).
    return own.length === 0 ? ['null'] : own;
  }

  function snapshotJson(): string {
    return cutText(snapshotCut());
  }

  return {
    evaluate: run,
    tick: (now) => run({ type: 'tick', now }),
    // A JSON round trip both copies and proves the states are plain JSON.
    snapshot: () => JSON.parse(snapshotJson()) as RuleStates,
    snapshotJson,
    snapshotCut,
    snapshotFragments: () => ({ serialised: fragments.serialised, reused: fragments.reused }),
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
      const kept = saved[DEVICE_CLOCKS];
      if (typeof kept === 'object' && kept !== null) {
        for (const [id, c] of Object.entries(kept as Record<string, Partial<DeviceClock>>)) {
          if (typeof c?.correction !== 'number' || typeof c.runOffset !== 'number' || typeof c.runSince !== 'number' || c.correction === 0) continue;
          const clock: DeviceClock = { runOffset: c.runOffset, runSince: c.runSince, correction: c.correction };
          clocks.set(id, clock);
          corrections[id] = { ...clock };
        }
        keepCorrections();
      }
    },
    resumeFailing(ruleId, homeId) {
      const k = failKey(ruleId, homeId);
      if (!failing.has(k)) failing.set(k, new Set([ANY_INPUT]));
    },
    failures: () => ({ ...failures }),
    dirty: () => changed,
    standingFacts() {
      const out: Fact[] = [];
      for (const rule of deps.rules) {
        if (rule.standingFacts === undefined) continue;
        try {
          for (const f of rule.standingFacts(states.get(rule.id), ctx)) out.push(f);
        } catch (err) {
          // A restored state the rule cannot read costs the view its seed, not the start.
          deps.logger?.error({ err, rule: rule.id, code: 'ALERTS_RULE_FAILED' }, 'could not read the standing facts of a rule state');
        }
      }
      return out;
    },
    factSinkFailures: () => sinkFailures,
    deviceClocks: () => ({ corrected: correctedCount(), changes: clockChanges }),
  };
}
