import { readFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { benchRegistry } from './lib/registry.ts';
import { indexRegistry } from '../contract/registry-index.ts';
import type { Device, SiteRegistry } from '../contract/registry.ts';
import { createEngine } from '../alerts/engine.ts';
import { defaultRules } from '../alerts/rules/index.ts';
import type { RuleInput } from '../alerts/rules/types.ts';
import { sliceCut } from '../alerts/snapshot-text.ts';

/**
 * CPU cost of one rule-state snapshot with the bench's 10,000 devices (issue 11, the idle p99 miss),
 * in CPU time (process.cpuUsage), which holds on a loaded machine where wall-clock time does not.
 * Not a benchmark of record: a tool to see what one event-loop turn of a snapshot costs.
 *   node --single-threaded --import tsx bench/snapshot-cost.ts [devices]
 * Prints, per scenario: one JSON.stringify of every state (what alerts did before: one turn), the
 * cut (the one synchronous turn now), each slice (each further turn) and the 1 s rule tick. Run it
 * with --single-threaded so the CPU counted is the event loop's (no GC or compiler helper threads).
 */
const devices = Number(process.argv[2] ?? 10_000);
const reg = benchRegistry(process.cwd(), devices, Math.max(1, Math.round(devices / 100)));
const site = JSON.parse(readFileSync(reg.path, 'utf8')) as SiteRegistry;
const engine = createEngine({ rules: defaultRules(), registry: indexRegistry(site) });
let now = Date.UTC(2026, 11, 5, 10);

/** Garbage collections (wall-clock spans): a slice they overlap is reported apart (GC runs whoever allocates). */
const gcs: Array<[number, number]> = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push([e.startTime, e.startTime + e.duration]);
}).observe({ entryTypes: ['gc'] });
const flushGcEntries = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

function cpuMs(fn: () => void): number {
  const a = process.cpuUsage();
  fn();
  const b = process.cpuUsage(a);
  return (b.user + b.system) / 1000;
}

function telemetry(d: Device, round: number): RuleInput {
  const metrics =
    d.kind === 'smoke_detector'
      ? { smoke_obscuration_pct_per_m: 0.01 + (round % 7) / 1000, temperature_c: 21 + (round % 5) / 10, battery_pct: 90, rssi_dbm: -60 }
      : d.kind === 'vital_signs_monitor'
        ? { heart_rate_bpm: 70, systolic_bp_mmhg: 120, resp_rate_bpm: 16, spo2_pct: 97, body_temp_c: 36.8 }
        : {};
  return { type: 'telemetry', device: d, ts: now, receivedTs: now, now, metrics } as RuleInput;
}

/** CPU of the engine's 1 s tick, per scenario: the other periodic turn of an idle alerts process. */
let ticks: number[] = [];
const tick = (): void => void ticks.push(cpuMs(() => void engine.tick(now)));

const pct = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] as number;

async function measure(label: string, change: (i: number) => void): Promise<void> {
  const whole: number[] = [];
  const cut: number[] = [];
  const slices: Array<{ ms: number; from: number; to: number }> = [];
  const totals: number[] = [];
  let size = 0;
  let count = 0;
  for (let i = 0; i < 9; i++) {
    change(i);
    const states = engine.view();
    whole.push(cpuMs(() => void JSON.stringify(states)));
    let parts: ReturnType<typeof engine.snapshotCut> = [];
    cut.push(cpuMs(() => void (parts = engine.snapshotCut())));
    const gen = sliceCut(parts);
    const first = slices.length;
    size = 0;
    count = 0;
    for (;;) {
      let r: IteratorResult<string> | undefined;
      const from = performance.now();
      const ms = cpuMs(() => void (r = gen.next()));
      slices.push({ ms, from, to: performance.now() });
      if (process.env.SLICE_DEBUG !== undefined && ms > 3) console.log(`  snapshot ${i} slice ${count}: ${ms.toFixed(1)} ms, ${r?.done === true ? '-' : r?.value.length} chars`);
      if (r === undefined || r.done === true) break;
      size += r.value.length;
      count++;
    }
    totals.push(slices.slice(first).reduce((n, x) => n + x.ms, 0));
  }
  await flushGcEntries();
  const clean = slices.filter((s) => !gcs.some(([a, b]) => a < s.to && b > s.from)).map((s) => s.ms);
  const all = slices.map((s) => s.ms);
  const f = engine.snapshotFragments();
  const fmt = (xs: number[]): string => `p50 ${pct(xs, 0.5).toFixed(2)} p90 ${pct(xs, 0.9).toFixed(2)} max ${Math.max(...xs).toFixed(1)}`;
  console.log(`${label}: ${(size / 1e6).toFixed(2)} MB in ${count} slices`);
  console.log(`  before, one JSON.stringify of every state in one turn: ${fmt(whole)} ms CPU`);
  console.log(`  now, the cut (one turn): ${fmt(cut)}; each slice without a GC in it (${clean.length}): ${fmt(clean)}; every slice (${all.length}, with GC): ${fmt(all)}`);
  console.log(`  the 1 s tick (one turn): ${fmt(ticks)}`);
  ticks = [];
  console.log(`  now, all slices of one snapshot together: ${fmt(totals)}`);
  console.log(`  entries serialised ${f.serialised}, reused ${f.reused} so far`);
}

for (const d of site.devices) engine.evaluate({ type: 'status', device: d, ts: now, receivedTs: now, now, online: true });
const probes = site.devices.filter((d) => d.kind !== 'smoke_detector');
// Idle as in bench/alerts.ts: one alarm trial (one device changed) and a tick between snapshots.
await measure(`${devices} devices, idle (one device changes between snapshots)`, (i) => {
  now += 1000;
  tick();
  engine.evaluate(telemetry(probes[i % probes.length] as Device, i));
});
for (let round = 0; round < 3; round++) {
  for (const d of site.devices) {
    now += 1;
    engine.evaluate(telemetry(d, round));
  }
}
await measure(`${devices} devices reporting, idle (one device changes)`, (i) => {
  now += 1000;
  tick();
  engine.evaluate(telemetry(probes[i % probes.length] as Device, i));
});
await measure(`${devices} devices reporting, loaded (every device changes between snapshots)`, (i) => {
  for (const d of site.devices) {
    now += 1;
    engine.evaluate(telemetry(d, i + 3));
  }
  tick();
});
