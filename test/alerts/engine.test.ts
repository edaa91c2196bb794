import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../alerts/engine.ts';
import type { RuleInput } from '../../alerts/rules/types.ts';
import { readJson, writeJsonAtomic } from '../../alerts/state-file.ts';
import { demoRegistry } from '../support/registry.ts';
import { brokenRule, counterRule, smokeRule } from './support/test-rules.ts';

const registry = demoRegistry();
const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 0, 1);

function smoke(deviceId: string, value: number, now = T0): RuleInput {
  const device = registry.device(deviceId)!;
  return { type: 'telemetry', now, device, ts: now, receivedTs: now, metrics: { smoke_obscuration_pct_per_m: value } };
}

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('engine', () => {
  it('isolates a failing rule: the others still signal, the failure is counted', () => {
    const engine = createEngine({ rules: [brokenRule, smokeRule, counterRule], registry, logger });
    const signals = engine.evaluate(smoke('h01-sd-r101', 15));
    expect(signals.map((s) => [s.key, s.active])).toEqual([['test_smoke:h01-sd-r101', true]]);
    engine.tick(T0 + 1000);
    expect(engine.failures()).toEqual({ test_broken: 2 });
    expect(engine.snapshot()).toMatchObject({ test_smoke: { readings: 1 }, test_counter: { ticks: 1 } });
  });

  it('refuses two rules with the same id', () => {
    expect(() => createEngine({ rules: [smokeRule, smokeRule], registry })).toThrow(/duplicate rule id/);
  });

  it('rule states survive a snapshot written to disk and restored into a new engine', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alerts-engine-'));
    dirs.push(dir);
    const a = createEngine({ rules: [smokeRule, counterRule], registry, logger });
    a.evaluate(smoke('h01-sd-r101', 15));
    a.evaluate(smoke('h01-sd-r102', 12));
    a.tick(T0 + 1000);
    expect(a.dirty()).toBe(true);
    await writeJsonAtomic(join(dir, 's.json'), a.snapshot());
    expect(a.dirty()).toBe(false);

    const b = createEngine({ rules: [smokeRule, counterRule], registry, logger });
    b.restore((await readJson(join(dir, 's.json'))) as Record<string, unknown>);
    expect(b.snapshot()).toEqual({ test_smoke: { readings: 2, over: ['h01-sd-r101', 'h01-sd-r102'] }, test_counter: { ticks: 1, actions: [] } });
    b.evaluate(smoke('h01-sd-r101', 1));
    expect(b.snapshot()).toMatchObject({ test_smoke: { readings: 3, over: ['h01-sd-r102'] } });
  });

  it('a restored state that breaks its rule is replaced by the initial state', () => {
    const e = createEngine({ rules: [smokeRule], registry, logger });
    e.restore({ test_smoke: { readings: 'x', over: 42 } });
    e.evaluate(smoke('h01-sd-r101', 15));
    expect(e.failures()).toEqual({ test_smoke: 1 });
    e.evaluate(smoke('h01-sd-r101', 15));
    expect(e.snapshot()).toEqual({ test_smoke: { readings: 1, over: ['h01-sd-r101'] } });
  });
});
