import { describe, expect, it } from 'vitest';
import { createContinenceRule } from '../../../../alerts/rules/care/continence-rule.ts';
import { DAY, MIN, action, active, cleared, merge, run, stream, ticks } from './streams.ts';

const rule = createContinenceRule();
const WET = 'h01-wet-p01';

/** One reading every 30 s (the wetness sensor's period), following `levels` (one per minute). */
function wetness(levels: number[]) {
  return stream(WET, DAY, DAY + levels.length * MIN, (o) => ({ wetness_pct: levels[Math.floor(o / MIN)] as number }), 30_000);
}

describe('continence', () => {
  it('wetness above 30 % raises a low-severity, non-latching change task; staff recording the change closes it', () => {
    const { log, state } = run(rule, wetness([2, 2, 45, 50]));
    const a = active(log.map((l) => l.signal));
    expect(a).toHaveLength(1);
    expect(a[0]).toMatchObject({ key: 'continence:h01-p01', rule: 'continence_change', category: 'care', signal: 'care', severity: 'low', value: 45, deviceId: WET });
    expect(a[0]?.latching).not.toBe(true);
    const done = run(rule, [action('h01-p01', 'changed', DAY + 5 * MIN)], { state });
    expect(cleared(done.signals)).toHaveLength(1);
    expect(done.signals[0]?.message.en).toContain('changed (by staff-h01)');
  });

  it('closes when the sensor reads dry (below 10 %), not merely below 30 % (hysteresis)', () => {
    const { signals } = run(rule, wetness([2, 40, 25, 20, 15, 8, 8]));
    expect(signals.map((s) => [s.active, s.value])).toEqual([[true, 40], [false, 8]]);
  });

  it('a task not done within an hour becomes medium', () => {
    const inputs = merge(wetness([40]), ticks(DAY + MIN, DAY + 62 * MIN, MIN));
    const { log } = run(rule, inputs, { persist: true });
    expect(log.map((l) => [l.now - DAY, l.signal.severity])).toEqual([[0, 'low'], [60 * MIN, 'medium']]);
  });

  it('after a change recorded while the sensor still reads wet, no new task until it has read dry', () => {
    const first = run(rule, wetness([40]));
    const changed = run(rule, [action('h01-p01', 'changed', DAY + 2 * MIN)], { state: first.state });
    const stillWet = run(rule, stream(WET, DAY + 3 * MIN, DAY + 10 * MIN, () => ({ wetness_pct: 40 }), 30_000), { state: changed.state });
    expect(stillWet.signals).toEqual([]);
    const dryThenWet = run(rule, stream(WET, DAY + 10 * MIN, DAY + 12 * MIN, (o) => ({ wetness_pct: o < MIN ? 5 : 60 }), 30_000), { state: stillWet.state });
    expect(active(dryThenWet.signals).map((s) => s.value)).toEqual([60]);
  });
});
