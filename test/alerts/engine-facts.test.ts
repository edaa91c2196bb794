import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../alerts/engine.ts';
import { careRules } from '../../alerts/rules/care/index.ts';
import { defaultRules } from '../../alerts/rules/index.ts';
import type { Fact } from '../../alerts/rules/facts.ts';
import type { Rule, RuleInput } from '../../alerts/rules/types.ts';
import { demoRegistry } from '../support/registry.ts';
import { smokeRule } from './support/test-rules.ts';

/** Facts through the engine (alerts/engine.ts): collected per input from every rule, sent to one sink, isolated. */
const registry = demoRegistry();
const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 0, 10, 2, 0, 0);
const bed = registry.device('h01-bed-p01')!;
const who = { homeId: 'h01', residentId: 'h01-p01' } as const;

function bedReading(ts: number, occupied: boolean, movement = 0): RuleInput {
  return { type: 'telemetry', now: ts, device: bed, ts, receivedTs: ts, metrics: { bed_occupied: occupied, movement_index: movement } };
}

/** A rule that reports one fact per telemetry naming itself, keeps a count, and can be made to throw. */
function factRule(id: string, opts: { throws?: () => boolean } = {}): Rule<{ n: number }> {
  return {
    id,
    initialState: () => ({ n: 0 }),
    evaluate(input, state) {
      if (input.type !== 'telemetry') return { state, signals: [] };
      if (opts.throws?.() === true) throw new Error(`${id} broke`);
      return { state: { n: state.n + 1 }, signals: [], facts: [{ kind: 'turn_schedule', ...who, lastTurnAt: input.ts, nextTurnDueAt: state.n }] };
    },
    standingFacts: (state) => [{ kind: 'turn_schedule', ...who, nextTurnDueAt: state.n }],
  };
}

describe('engine facts', () => {
  it('hands the facts of all rules for one input to the sink once, in rule order, and nothing for an input without facts', () => {
    const batches: Array<readonly Fact[]> = [];
    const engine = createEngine({ rules: [factRule('a') as Rule, smokeRule as Rule, factRule('b') as Rule], registry, logger, onFacts: (f) => batches.push(f) });
    engine.evaluate(bedReading(T0, true));
    expect(batches).toEqual([
      [
        { kind: 'turn_schedule', ...who, lastTurnAt: T0, nextTurnDueAt: 0 },
        { kind: 'turn_schedule', ...who, lastTurnAt: T0, nextTurnDueAt: 0 },
      ],
    ]);
    engine.tick(T0 + 1000);
    engine.evaluate({ type: 'status', now: T0, device: bed, ts: T0, receivedTs: T0, online: true });
    expect(batches).toHaveLength(1);
    // Facts are news, not state: the snapshot holds only the rules' states.
    expect(engine.snapshot()).toEqual({ a: { n: 1 }, test_smoke: { readings: 0, over: [] }, b: { n: 1 } });
  });

  it('a sink that throws breaks no rule: signals, states and later facts go on, and the failure is counted', () => {
    let calls = 0;
    const engine = createEngine({
      rules: [factRule('a') as Rule, smokeRule as Rule],
      registry,
      logger,
      onFacts: () => {
        calls++;
        throw new Error('sink down');
      },
    });
    const smoke = registry.device('h01-sd-r101')!;
    const signals = engine.evaluate({ type: 'telemetry', now: T0, device: smoke, ts: T0, receivedTs: T0, metrics: { smoke_obscuration_pct_per_m: 15 } });
    expect(signals.map((s) => [s.key, s.active])).toEqual([['test_smoke:h01-sd-r101', true]]);
    engine.evaluate(bedReading(T0 + 1000, true));
    expect(calls).toBe(2);
    expect(engine.factSinkFailures()).toBe(2);
    expect(engine.failures()).toEqual({});
    expect(engine.snapshot()).toMatchObject({ a: { n: 2 }, test_smoke: { readings: 1 } });
  });

  it("a failing rule's facts are not sent; the other rules' are", () => {
    let broken = true;
    const batches: Array<readonly Fact[]> = [];
    const engine = createEngine({ rules: [factRule('a', { throws: () => broken }) as Rule, factRule('b') as Rule], registry, logger, onFacts: (f) => batches.push(f) });
    engine.evaluate(bedReading(T0, true));
    broken = false;
    engine.evaluate(bedReading(T0 + 1000, true));
    expect(batches.map((b) => b.length)).toEqual([1, 2]);
    expect(engine.failures()).toEqual({ a: 1 });
  });

  it('standingFacts() reads what holds in the restored states, through each rule', () => {
    const a = createEngine({ rules: [factRule('a') as Rule, smokeRule as Rule], registry, logger });
    a.evaluate(bedReading(T0, true));
    a.evaluate(bedReading(T0 + 1000, true));
    const b = createEngine({ rules: [factRule('a') as Rule, smokeRule as Rule], registry, logger });
    expect(b.standingFacts()).toEqual([{ kind: 'turn_schedule', ...who, nextTurnDueAt: 0 }]);
    b.restore(a.snapshot());
    expect(b.standingFacts()).toEqual([{ kind: 'turn_schedule', ...who, nextTurnDueAt: 2 }]);
  });

  it('the engine (indexed, in place) reports the same facts as each rule evaluated alone on copies, and none for inputs a rule does not accept', () => {
    // The care rules are the ones with facts; the fire rules run alongside on the same inputs.
    const rules = defaultRules();
    expect(careRules().every((r) => rules.some((d) => d.id === r.id))).toBe(true);
    const inputs: RuleInput[] = [];
    let seed = 99;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const devices = registry.site.devices.filter((d) => d.homeId === 'h01');
    for (let i = 0; i < 3000; i++) {
      const now = T0 + i * 5000;
      const device = devices[Math.floor(rnd() * devices.length)]!;
      const r = rnd();
      if (r < 0.85) {
        const occupied = rnd() < 0.8;
        inputs.push({ type: 'telemetry', now, device, ts: now, receivedTs: now, metrics: { bed_occupied: occupied, movement_index: rnd() < 0.3 ? 80 : 5, heart_rate_bpm: rnd() < 0.1 ? 130 : 72, spo2_pct: 96, resp_rate_bpm: 18, body_temp_c: 36.9, smoke_obscuration_pct_per_m: 0.2 } });
      } else if (r < 0.9) inputs.push({ type: 'event', now, device, ts: now, receivedTs: now, event: { ts: now, seq: i, type: rnd() < 0.5 ? 'bed_exit' : 'bed_return' } });
      else if (r < 0.95) inputs.push({ type: 'care_action', now, residentId: 'h01-p01', homeId: 'h01', action: rnd() < 0.5 ? 'turned' : 'checked', by: 'staff-h01', ts: now, observation: { onOxygen: rnd() < 0.5 } });
      else inputs.push({ type: 'tick', now });
    }
    const got: Fact[] = [];
    const engine = createEngine({ rules, registry, logger, onFacts: (f) => got.push(...f) });
    for (const input of inputs) engine.evaluate(input);
    const want: Fact[] = [];
    const wrong: string[] = [];
    const states = rules.map((r) => r.initialState());
    const ctx = { registry };
    for (const input of inputs) {
      rules.forEach((rule, i) => {
        const res = rule.evaluate(input, states[i], ctx);
        const accepted = rule.accepts === undefined || (rule.accepts.types.includes(input.type) && (!('device' in input) || rule.accepts.kinds === undefined || rule.accepts.kinds.includes(input.device.kind)));
        if (!accepted && res.facts !== undefined) wrong.push(`${rule.id} found something in a ${input.type} it does not accept`);
        // Absent rather than empty, so the engine allocates nothing for an input that found nothing.
        if (res.facts?.length === 0) wrong.push(`${rule.id} returned an empty facts array`);
        states[i] = res.state;
        want.push(...(res.facts ?? []));
      });
    }
    expect(wrong).toEqual([]);
    expect(engine.failures()).toEqual({});
    expect(new Set(want.map((f) => f.kind))).toEqual(new Set(['news2', 'turn', 'turn_schedule', 'bed']));
    expect(got).toEqual(want);
  });
});
