import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planRegistry, plan } from '../../bench/connections100k.ts';
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

  it('gives connections100k exactly the devices it holds, in every home of its plan (no registered device left unconnected)', () => {
    for (const devices of [5_000, 50_000]) {
      const p = plan({ devices, fdLimit: 20_000, quick: false });
      const reg = planRegistry(root, p);
      expect(reg.loadDevices).toHaveLength(p.devices);
      expect(reg.homes).toHaveLength(p.homes);
      expect(reg.callPoints.length + reg.vitalMonitors.length).toBe(2 * Math.min(40, p.homes));
    }
  });

  it('fills homes three devices at a time when there are fewer than three a home, leaving the last homes out', () => {
    const reg = benchRegistry(root, 10, 5);
    expect(reg.homes).toHaveLength(4);
    expect(reg.all).toHaveLength(10);
  });
});
