import { describe, expect, it } from 'vitest';
import { createRepositionRule } from '../../../../alerts/rules/care/reposition-rule.ts';
import { DAY, MIN, S, action, active, cleared, merge, run, stream, ticks } from './streams.ts';

const rule = createRepositionRule();
// h01-p01 turns every 120 min, h01-p04 every 90 min (config/demo-site.json).
const BED = 'h01-bed-p01';

/** Bed sensor readings every 5 s for `minutes`, still, with movement bursts of `burstS` seconds at the given minutes. */
function lying(device: string, minutes: number, bursts: Array<[atMin: number, burstS: number]> = []) {
  return stream(device, DAY, DAY + minutes * MIN, (o) => {
    const moving = bursts.some(([m, s]) => o >= m * MIN && o < m * MIN + s * S);
    return { bed_occupied: true, movement_index: moving ? 75 : 4 };
  });
}

describe('repositioning', () => {
  it('a missed turn is a care alert at the first tick after the interval; nextTurnDue is in state', () => {
    const inputs = merge(lying(BED, 125), ticks(DAY, DAY + 125 * MIN, MIN));
    const { log, state } = run(rule, inputs, { persist: true });
    expect(state.nextTurnDue['h01-p01']).toBe(DAY + 120 * MIN);
    expect(log.map((l) => [l.now - DAY, l.signal.key, l.signal.active])).toEqual([[121 * MIN, 'turn_overdue:h01-p01', true]]);
    expect(log[0]?.signal).toMatchObject({ category: 'care', signal: 'care', severity: 'medium', residentId: 'h01-p01' });
    expect(log[0]?.signal.message.en).toContain('every 120 min');
  });

  it('uses the resident\'s own interval (90 min for h01-p04)', () => {
    const { log } = run(rule, merge(lying('h01-bed-p04', 95), ticks(DAY, DAY + 95 * MIN, MIN)));
    expect(log.map((l) => l.now - DAY)).toEqual([91 * MIN]);
  });

  it('a movement burst held for 10 s is a turn: it moves the next due time', () => {
    const inputs = merge(lying(BED, 185, [[60, 15]]), ticks(DAY, DAY + 185 * MIN, MIN));
    const { log, state } = run(rule, inputs);
    // The burst starts at 60 min and spans 10 s at its third reading.
    expect(state.nextTurnDue['h01-p01']).toBe(DAY + 60 * MIN + 10 * S + 120 * MIN);
    expect(log.map((l) => l.now - DAY)).toEqual([181 * MIN]);
    expect(state.residents['h01-p01']?.by).toBe('movement');
  });

  it('a twitch spanning 5 s (two readings) is not a turn', () => {
    const { log } = run(rule, merge(lying(BED, 125, [[60, 10]]), ticks(DAY, DAY + 125 * MIN, MIN)));
    expect(log.map((l) => l.now - DAY)).toEqual([121 * MIN]);
  });

  it('a turn recorded by staff clears the overdue alert and restarts the interval', () => {
    const overdue = run(rule, merge(lying(BED, 125), ticks(DAY, DAY + 125 * MIN, MIN)));
    expect(active(overdue.signals)).toHaveLength(1);
    const turned = run(rule, [action('h01-p01', 'turned', DAY + 126 * MIN)], { state: overdue.state });
    expect(cleared(turned.signals).map((s) => s.key)).toEqual(['turn_overdue:h01-p01']);
    expect(turned.state.nextTurnDue['h01-p01']).toBe(DAY + 246 * MIN);
  });

  it('no alert while the resident is out of bed', () => {
    const inputs = merge(stream(BED, DAY, DAY + 125 * MIN, () => ({ bed_occupied: false, movement_index: 0 })), ticks(DAY, DAY + 125 * MIN, MIN));
    expect(run(rule, inputs).signals).toEqual([]);
  });
});
