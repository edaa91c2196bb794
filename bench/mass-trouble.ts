import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createLifecycle } from '../alerts/lifecycle.ts';
import type { Signal } from '../alerts/rules/types.ts';
import { createManualClock } from '../common/clock.ts';
import { parseRegistry } from '../common/registry-file.ts';
import type { BenchContext, BenchResult, Benchmark, Row } from './lib/context.ts';
import { benchRegistry } from './lib/registry.ts';
import { median } from './lib/stats.ts';

/**
 * 10. A mass device trouble in the alerts lifecycle (issue 14): a broker node dies under 100,000
 * devices and ~14,000 of them go silent at once; alerts raises a trouble alert (and an incident) for
 * each. Until session 12 every raise looked at every open alert and incident of the site (the home's
 * inhibitions, the incident grouping), so the burst cost grew with the square of its size and alerts
 * stood still for minutes with fire alarms waiting (a profile of the 100,000-device run: 100 % of
 * alerts' CPU in `raise` → `book.place`). Raises one `no_heartbeat` trouble per device of the
 * 102,000-device bench registry (1,000 homes), in the lifecycle alone (no I/O), and times each block
 * of 1,000 raises. The reference, in the same run, is the first block (few alerts open): a raise
 * that does not depend on how many are open costs the same in the last block (ratio ≈ 1).
 */
function troubleSignal(d: { id: string; homeId: string; roomId?: string | undefined }, now: number): Signal {
  return {
    key: `no_heartbeat:${d.id}`,
    rule: 'no_heartbeat',
    category: 'device',
    signal: 'trouble',
    severity: 'medium',
    homeId: d.homeId,
    deviceId: d.id,
    ...(d.roomId !== undefined ? { roomId: d.roomId } : {}),
    active: true,
    sourceTs: now,
    message: { zh: '设备失联', en: 'device silent' },
  };
}

export const massTroubleBenchmark: Benchmark = {
  name: 'masstrouble',
  title: 'Alerts lifecycle: cost of one raise while thousands of device troubles are open (mass trouble)',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const reg = benchRegistry(ctx.root, 102_000, 1_000);
    const registry = parseRegistry(readFileSync(reg.path, 'utf8'), reg.path);
    const total = ctx.quick ? 5_000 : 20_000;
    const BLOCK = 1_000;
    // Every 5th device, so the troubles spread over every home as a dead node's devices do.
    const devices = registry.site.devices.filter((_, i) => i % 5 === 0).slice(0, total);
    const rounds = ctx.quick ? 1 : 3;
    const first: number[] = [];
    const last: number[] = [];
    let open = 0;
    for (let r = 0; r < rounds; r++) {
      const clock = createManualClock();
      const lc = createLifecycle({ clock, registry, onChange: () => undefined, onIncidentChange: () => undefined });
      const blocks: number[] = [];
      for (let b = 0; b < devices.length; b += BLOCK) {
        const t0 = performance.now();
        for (const d of devices.slice(b, b + BLOCK)) lc.applySignals([troubleSignal(d, clock.now())]);
        blocks.push((performance.now() - t0) / BLOCK);
      }
      open = lc.open().length;
      if (open !== devices.length) throw new Error(`expected ${devices.length} open troubles, got ${open}`);
      first.push(blocks[0] ?? Number.NaN);
      last.push(blocks.at(-1) ?? Number.NaN);
      lc.close();
    }
    const f = median(first) * 1000;
    const l = median(last) * 1000;
    ctx.log(`masstrouble: ${devices.length} troubles over ${new Set(devices.map((d) => d.homeId)).size} homes, ${rounds} rounds: ${f.toFixed(1)} µs a raise in the first ${BLOCK}, ${l.toFixed(1)} µs in the last ${BLOCK} (${open} open)`);
    const rows: Row[] = [
      { bench: 'masstrouble', metric: `one raise with ${devices.length - BLOCK}–${devices.length} troubles open (median of ${rounds})`, value: l, unit: 'µs', reference: { name: `the same with 0–${BLOCK} open`, value: f }, ratio: l / f },
    ];
    return { rows, detail: { first, last, open } };
  },
};
