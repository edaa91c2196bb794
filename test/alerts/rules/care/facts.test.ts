import { describe, expect, it } from 'vitest';
import { createBedRule } from '../../../../alerts/rules/care/bed-rule.ts';
import { createNews2Rule } from '../../../../alerts/rules/care/news2-rule.ts';
import { createRepositionRule } from '../../../../alerts/rules/care/reposition-rule.ts';
import type { Fact } from '../../../../alerts/rules/facts.ts';
import type { Rule, RuleInput } from '../../../../alerts/rules/types.ts';
import { DAY, MIN, NORMAL_VITALS, S, action, ctx, event, merge, stream, telemetry, tick, ticks } from './streams.ts';

/**
 * The facts each care rule reports (alerts/rules/facts.ts): what the histories and the dashboard's
 * care view are built from, so they must say exactly what the rule's state says, and only on change.
 */

interface Step<S> {
  readonly input: RuleInput;
  readonly state: S;
  readonly facts: readonly Fact[] | undefined;
}

/** Feeds inputs to a rule, keeping every step's facts (the state round-trips through JSON, as after a restart). */
function steps<S>(rule: Rule<S>, inputs: readonly RuleInput[], from?: S): Step<S>[] {
  let state = from ?? rule.initialState();
  const c = ctx();
  return inputs.map((input) => {
    const r = rule.evaluate(input, state, c);
    state = JSON.parse(JSON.stringify(r.state)) as S;
    return { input, state, facts: r.facts };
  });
}
const allFacts = (s: readonly Step<unknown>[]): Fact[] => s.flatMap((x) => x.facts ?? []);
const BED = 'h01-bed-p01';
const VS = 'h01-vs-p01';

describe('NEWS2 rule facts', () => {
  const rule = createNews2Rule();

  it("reports each new score of a resident as the state's score, and nothing when the score stays as it was", () => {
    // Readings for 2 min, then ticks until the values are stale (5 min): a tick that finds them gone changes the score.
    const run = steps(rule, merge(stream(VS, DAY, DAY + 2 * MIN, () => NORMAL_VITALS), ticks(DAY + 2 * MIN, DAY + 9 * MIN, 10 * S)));
    const scored = run.filter((s) => s.facts !== undefined);
    expect(scored.length).toBeGreaterThan(0);
    for (const s of scored) {
      expect(s.facts).toEqual([{ kind: 'news2', homeId: 'h01', residentId: 'h01-p01', score: s.state.scores['h01-p01'] }]);
    }
    // Every change of the state's score is reported, and only those.
    let before: unknown;
    for (const s of run) {
      const now = JSON.stringify(s.state.scores['h01-p01']);
      expect(s.facts !== undefined, `${s.input.type} at +${s.input.now - DAY} ms`).toBe(now !== before);
      before = now;
    }
    // The ticks after the readings stop find the same score until the readings go stale: no facts.
    const quietTicks = run.filter((s) => s.input.type === 'tick' && s.input.now < DAY + 2 * MIN + 30 * S);
    expect(quietTicks.every((s) => s.facts === undefined)).toBe(true);
    const staleTicks = run.filter((s) => s.input.type === 'tick' && s.facts !== undefined);
    expect(staleTicks.length).toBeGreaterThan(0);
    expect(run[run.length - 1]!.state.scores['h01-p01']?.missing).toContain('pulse');
  });

  it('reports the score a staff observation changes, and its standing facts list every score held', () => {
    const warm = steps(rule, stream(VS, DAY, DAY + 2 * MIN, () => NORMAL_VITALS));
    const state = warm[warm.length - 1]!.state;
    const [obs] = steps(rule, [action('h01-p01', 'observed', DAY + 2 * MIN, { onOxygen: true })], state);
    expect(obs!.facts).toEqual([{ kind: 'news2', homeId: 'h01', residentId: 'h01-p01', score: obs!.state.scores['h01-p01'] }]);
    expect(obs!.state.scores['h01-p01']?.components.air_or_oxygen?.score).toBe(2);
    expect(rule.standingFacts?.(obs!.state, ctx())).toEqual([{ kind: 'news2', homeId: 'h01', residentId: 'h01-p01', score: obs!.state.scores['h01-p01'] }]);
  });
});

describe('reposition rule facts', () => {
  const rule = createRepositionRule();

  it('lying down, a sensed turn, a staff turn and leaving the bed, each as a fact with the schedule after it', () => {
    const burst = (t: number): RuleInput => telemetry(BED, t, { bed_occupied: true, movement_index: 80 });
    const inputs: RuleInput[] = [
      telemetry(BED, DAY, { bed_occupied: true, movement_index: 0 }),
      telemetry(BED, DAY + 30 * MIN, { bed_occupied: true, movement_index: 0 }),
      burst(DAY + 60 * MIN),
      burst(DAY + 60 * MIN + 5 * S),
      burst(DAY + 60 * MIN + 10 * S),
      burst(DAY + 60 * MIN + 15 * S),
      tick(DAY + 61 * MIN),
      // Recorded at 100 min, received 10 s later: counted at the recorded time.
      { ...action('h01-p01', 'turned', DAY + 100 * MIN), now: DAY + 100 * MIN + 10 * S },
      action('h01-p01', 'changed', DAY + 101 * MIN),
      event(BED, DAY + 150 * MIN, 'bed_exit'),
    ];
    const run = steps(rule, inputs);
    const sensed = DAY + 60 * MIN + 10 * S;
    expect(run.map((s) => s.facts)).toEqual([
      [
        { kind: 'bed', homeId: 'h01', residentId: 'h01-p01', deviceId: BED, inBed: true, ts: DAY },
        { kind: 'turn_schedule', homeId: 'h01', residentId: 'h01-p01', lastTurnAt: DAY, nextTurnDueAt: DAY + 120 * MIN },
      ],
      undefined,
      undefined,
      undefined,
      [{ kind: 'turn', homeId: 'h01', residentId: 'h01-p01', source: 'sensor', ts: sensed, intervalMin: 120, lastTurnAt: sensed, nextTurnDueAt: sensed + 120 * MIN }],
      // The same burst goes on: not a second turn.
      undefined,
      undefined,
      [{ kind: 'turn', homeId: 'h01', residentId: 'h01-p01', source: 'staff', ts: DAY + 100 * MIN, intervalMin: 120, lastTurnAt: DAY + 100 * MIN, nextTurnDueAt: DAY + 220 * MIN }],
      undefined,
      [
        { kind: 'bed', homeId: 'h01', residentId: 'h01-p01', deviceId: BED, inBed: false, ts: DAY + 150 * MIN },
        { kind: 'turn_schedule', homeId: 'h01', residentId: 'h01-p01', lastTurnAt: DAY + 100 * MIN },
      ],
    ]);
    // The facts say what the state says.
    const after = run[7]!.state;
    expect([after.residents['h01-p01']?.lastTurn, after.nextTurnDue['h01-p01']]).toEqual([DAY + 100 * MIN, DAY + 220 * MIN]);
  });

  it("carries the resident's own interval, and its standing facts give every schedule held", () => {
    const run = steps(rule, [telemetry('h01-bed-p04', DAY, { bed_occupied: true }), action('h01-p04', 'turned', DAY + 30 * MIN)]);
    expect(allFacts(run).filter((f) => f.kind === 'turn')).toMatchObject([{ residentId: 'h01-p04', intervalMin: 90, nextTurnDueAt: DAY + 120 * MIN }]);
    expect(rule.standingFacts?.(run[1]!.state, ctx())).toEqual([{ kind: 'turn_schedule', homeId: 'h01', residentId: 'h01-p04', lastTurnAt: DAY + 30 * MIN, nextTurnDueAt: DAY + 120 * MIN }]);
  });

  it('a staff turn of a resident the rule never saw in bed is still a turn', () => {
    const [s] = steps(rule, [action('h01-p02', 'turned', DAY)]);
    expect(s!.facts).toEqual([{ kind: 'turn', homeId: 'h01', residentId: 'h01-p02', source: 'staff', ts: DAY, intervalMin: 120, lastTurnAt: DAY, nextTurnDueAt: DAY + 120 * MIN }]);
  });
});

describe('bed rule facts', () => {
  const rule = createBedRule();

  it('reports the presence when first known and when it changes, not a repeat, an older report or a fall', () => {
    const run = steps(rule, [
      telemetry(BED, DAY, { bed_occupied: true }),
      telemetry(BED, DAY + 5 * S, { bed_occupied: true }),
      event(BED, DAY + 10 * S, 'bed_exit'),
      // Redelivered older report: must not undo the exit.
      telemetry(BED, DAY + 7 * S, { bed_occupied: true }),
      event(BED, DAY + 20 * S, 'fall'),
      event(BED, DAY + 30 * S, 'bed_return'),
      tick(DAY + 40 * S),
    ]);
    expect(run.map((s) => s.facts)).toEqual([
      [{ kind: 'bed', homeId: 'h01', residentId: 'h01-p01', deviceId: BED, inBed: true, ts: DAY }],
      undefined,
      [{ kind: 'bed', homeId: 'h01', residentId: 'h01-p01', deviceId: BED, inBed: false, ts: DAY + 10 * S }],
      undefined,
      undefined,
      [{ kind: 'bed', homeId: 'h01', residentId: 'h01-p01', deviceId: BED, inBed: true, ts: DAY + 30 * S }],
      undefined,
    ]);
  });
});
