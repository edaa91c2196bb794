import { describe, expect, it } from 'vitest';
import { careRules } from '../../../../alerts/rules/care/index.ts';
import { DAY, MIN, NORMAL_VITALS, S, ctx, merge, run, stream, tick } from './streams.ts';

describe('careRules()', () => {
  it('lists each care rule once, with plain-JSON initial states', () => {
    const rules = careRules();
    expect(rules.map((r) => r.id)).toEqual(['care_sos', 'care_news2', 'care_vitals', 'care_bed', 'care_continence', 'care_reposition', 'care_no_data']);
    for (const r of rules) expect(JSON.parse(JSON.stringify(r.initialState()))).toEqual(r.initialState());
  });

  it('a quiet tick returns the very same state object, so the engine has nothing new to persist', () => {
    // Every monitor of every demo resident reporting normally, in bed, dry.
    const registry = ctx().registry;
    const inputs = merge(
      // Each resident's own monitors (a household's elder has no wetness sensor in the demo site).
      ...registry.site.residents.flatMap((r) =>
        registry.devicesOfResident(r.id).flatMap((d) =>
          d.kind === 'vital_signs_monitor' ? [stream(d.id, DAY, DAY + 20 * S, () => NORMAL_VITALS)]
          : d.kind === 'bed_sensor' ? [stream(d.id, DAY, DAY + 20 * S, () => ({ bed_occupied: true, movement_index: 5 }))]
          : d.kind === 'wetness_sensor' ? [stream(d.id, DAY, DAY + 20 * S, () => ({ wetness_pct: 2 }))]
          : [],
        ),
      ),
    );
    for (const rule of careRules()) {
      const { state } = run(rule, [...inputs, tick(DAY + 20 * S)]);
      const after = rule.evaluate(tick(DAY + 21 * S), state, ctx());
      expect(after.signals, rule.id).toEqual([]);
      expect(after.state, rule.id).toBe(state);
    }
    // And a tick long after does change things (turns overdue, monitors silent): the check above can fail.
    const later = careRules().map((rule) => rule.evaluate(tick(DAY + 200 * MIN), run(rule, inputs).state, ctx()).signals.length);
    expect(later.some((n) => n > 0)).toBe(true);
  });
});
