import { describe, expect, it } from 'vitest';
import { createHomeEngines, restrictRegistry } from '../../alerts/partition.ts';
import type { RuleInput } from '../../alerts/rules/types.ts';
import { demoRegistry } from '../support/registry.ts';
import { smokeRule } from './support/test-rules.ts';

/** Issue 14: one engine per owned home, each with its own state (alerts/partition.ts), pure. */
describe('home engines', () => {
  const registry = demoRegistry();
  const reading = (deviceId: string, smoke: number, now = 1000): RuleInput => {
    const device = registry.device(deviceId);
    if (device === undefined) throw new Error(deviceId);
    return { type: 'telemetry', now, device, ts: now, receivedTs: now, metrics: { smoke_obscuration_pct_per_m: smoke } };
  };

  it('restricts the registry to the owned homes, keeping every user', () => {
    const r = restrictRegistry(registry, ['h02']);
    expect(r.site.homes.map((h) => h.id)).toEqual(['h02']);
    expect(r.site.devices.every((d) => d.homeId === 'h02')).toBe(true);
    expect(r.device('h01-sd-r101')).toBeUndefined();
    expect(r.device('h02-sd-r101')?.homeId).toBe('h02');
    expect(r.user('staff-h01')).toBeDefined();
  });

  it("routes each input to its home's engine and drops a home it does not own", () => {
    const engines = createHomeEngines({ homes: ['h01', 'h02'], registry, rulesFor: () => [smokeRule] });
    expect(engines.evaluate(reading('h01-sd-r101', 20)).map((s) => s.key)).toEqual(['test_smoke:h01-sd-r101']);
    expect(engines.evaluate(reading('h03-sd-r101', 20))).toEqual([]);
    expect(engines.notOwned()).toBe(1);
    // Each home has its own state: h02's engine saw nothing of h01's reading.
    expect(JSON.parse(engines.snapshotHomeJson('h01'))).toEqual({ test_smoke: { readings: 1, over: ['h01-sd-r101'] } });
    expect(JSON.parse(engines.snapshotHomeJson('h02'))).toEqual({ test_smoke: { readings: 0, over: [] } });
  });

  it("moves a home's state to another set of engines through its own snapshot", () => {
    const a = createHomeEngines({ homes: ['h01', 'h02'], registry, rulesFor: () => [smokeRule] });
    a.evaluate(reading('h02-sd-r101', 20));
    expect(a.dirtyHomes()).toEqual(['h02']);
    const saved = a.snapshotHomeJson('h02');
    expect(a.dirtyHomes()).toEqual([]);
    const b = createHomeEngines({ homes: ['h02', 'h04'], registry, rulesFor: () => [smokeRule] });
    b.restoreHome('h02', JSON.parse(saved) as Record<string, unknown>);
    // The restored state carries on: the latch's device list and the reading count.
    b.evaluate(reading('h02-sd-r102', 20));
    expect(JSON.parse(b.snapshotHomeJson('h02'))).toEqual({ test_smoke: { readings: 2, over: ['h02-sd-r101', 'h02-sd-r102'] } });
    expect(() => b.snapshotHomeJson('h01')).toThrow(/not owned/);
  });
});
