import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { benchRegistry } from '../../bench/lib/registry.ts';

/** The benchmarks' generated site (bench/lib/registry.ts): every home asked for, the devices spread evenly. */
describe('bench registry', () => {
  const root = mkdtempSync(join(tmpdir(), 'bench-registry-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('spreads devices that do not divide evenly over every home, alarm devices only in the alarm homes', () => {
    // connections100k at 5,000: the held detectors plus a call point and a monitor in 40 probe homes.
    const reg = benchRegistry(root, 5_000 + 80, 50, 40);
    expect(reg.homes).toHaveLength(50);
    expect(reg.loadDevices).toHaveLength(5_000);
    expect(reg.callPoints.map((d) => d.homeId)).toEqual(reg.homes.slice(0, 40));
    expect(reg.vitalMonitors).toHaveLength(40);
    const perHome = new Map<string, number>();
    for (const d of reg.all) perHome.set(d.homeId, (perHome.get(d.homeId) ?? 0) + 1);
    expect(Math.max(...perHome.values()) - Math.min(...perHome.values())).toBeLessThanOrEqual(1);
  });

  it('keeps at least three devices a home, leaving the last homes out when there are too few', () => {
    const reg = benchRegistry(root, 10, 5);
    expect(reg.homes).toHaveLength(4);
    expect(reg.all).toHaveLength(10);
  });
});
