import { afterAll, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import type { Rule, RuleInput } from '../../alerts/rules/types.ts';
import { testInflux } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { startAlerts, tempDir } from './support/harness.ts';

/**
 * A rule failure's trouble open across a restart clears when the rule next succeeds. The engine
 * keeps what failed in memory only: until session 23 a restarted process never cleared a trouble
 * raised before it (the restored alert stayed open for good, telling the home a rule was broken).
 */
const influx = testInflux('alerts_rule_failure_restart');
const registry = demoRegistry();
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
afterAll(async () => Promise.all(dirs.map((d) => d.remove())));

/** Throws on the readings of h01-sd-r101 while `broken`. */
function picky(broken: boolean): Rule<object> {
  return {
    id: 'test_picky',
    initialState: () => ({}),
    evaluate: (input: RuleInput, state: object) => {
      if (broken && 'device' in input && input.device.id === 'h01-sd-r101') throw new Error('cannot read this detector');
      return { state, signals: [] };
    },
  };
}

it("clears after a restart once the rule succeeds: the trouble raised before it does not stay open", async () => {
  const clock = createManualClock();
  const dir = await tempDir();
  dirs.push(dir);
  const a = await startAlerts({ influx, stateDir: dir.path, clock, rules: [picky(true)] });
  const now = clock.now();
  a.handleInput({ type: 'telemetry', now, device: registry.device('h01-sd-r101')!, ts: now, receivedTs: now, metrics: { smoke_obscuration_pct_per_m: 1 } });
  const trouble = a.lifecycle.open().find((x) => x.rule === 'rule_failure');
  expect(trouble).toMatchObject({ homeId: 'h01', signal: 'trouble' });
  await a.drained();
  await a.close();

  // The fixed rule after the restart.
  clock.advance(10_000);
  const b = await startAlerts({ influx, stateDir: dir.path, clock, rules: [picky(false)] });
  expect(b.lifecycle.open().map((x) => x.id)).toContain(trouble?.id);
  const later = clock.now();
  b.handleInput({ type: 'telemetry', now: later, device: registry.device('h01-sd-r101')!, ts: later, receivedTs: later, metrics: { smoke_obscuration_pct_per_m: 1 } });
  expect(b.lifecycle.open().filter((x) => x.rule === 'rule_failure')).toEqual([]);
  await b.drained();
  await b.close();
});
