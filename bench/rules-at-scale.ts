import { readFileSync } from 'node:fs';
import { createEngine } from '../alerts/engine.ts';
import { defaultRules } from '../alerts/rules/index.ts';
import type { RuleInput } from '../alerts/rules/types.ts';
import { parseRegistry } from '../common/registry-file.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import type { Device } from '../contract/registry.ts';
import type { BenchContext, BenchResult, Benchmark, Row } from './lib/context.ts';
import { benchRegistry } from './lib/registry.ts';
import { median, percentiles } from './lib/stats.ts';

/**
 * 11. The rules at province size (issue 14): the 1 s tick, and a call point press (`press` below).
 * How long one `engine.tick` holds the event loop with the 102,000-device
 * bench registry (1,000 homes), every device reporting once a minute as in `connections100k`, in the
 * engine alone (no I/O). Two sites in the same run:
 *  - the reference: every device reports;
 *  - the measured one: every 12th device never connected (8 %, spread over every home, as the
 *    ~8,600 of session 12's run that the 900 s bound left unconnected), so nearly every home holds a
 *    raised device trouble.
 * Until session 13 supervision skipped only homes at rest, so the second site cost a visit of every
 * device every tick (session 12's profile of the live run: the tick was 15 % of alerts). A tick that
 * does not depend on how many homes hold a standing trouble costs about the same in both (ratio ≈ 1).
 * Wall-clock time of the synchronous tick (`heldMs`): run it on a quiet machine.
 */
const SECONDS = 240;
/** Ticks measured: the last minute, when every never-connected device's trouble has been raised (budgets ≤ 200 s). */
const MEASURED = 60;

function telemetry(d: Device, now: number): RuleInput {
  const metrics = d.kind === 'smoke_detector' ? { smoke_obscuration_pct_per_m: 0.01, temperature_c: 21, battery_pct: 90, rssi_dbm: -60 } : d.kind === 'vital_signs_monitor' ? { heart_rate_bpm: 70, systolic_bp_mmhg: 120, resp_rate_bpm: 16, spo2_pct: 97, body_temp_c: 36.8 } : { battery_pct: 90 };
  return { type: 'telemetry', device: d, ts: now, receivedTs: now, brokerTs: now, now, metrics } as RuleInput;
}

/**
 * Wall-clock ms of one synchronous call: the time the event loop is held, which is what delays an
 * alarm. process.cpuUsage() would also count V8's helper threads (concurrent marking of the
 * evaluations' garbage runs beside the tick on the second core), and swamped the tick with it.
 */
function heldMs(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

/** Runs the site for SECONDS of engine time; returns how long each of the last MEASURED ticks held the loop (ms) and the troubles raised. */
function site(devices: readonly Device[], silent: (i: number) => boolean, registry: RegistryIndex): { ticks: number[]; raised: number } {
  const engine = createEngine({ rules: defaultRules(), registry });
  const t0 = Date.UTC(2026, 11, 6, 10);
  const ticks: number[] = [];
  let raised = 0;
  for (let s = 0; s < SECONDS; s++) {
    const now = t0 + s * 1000;
    // One minute's reports spread evenly: device i reports in second i mod 60 of each minute.
    for (let i = s % 60; i < devices.length; i += 60) if (!silent(i)) engine.evaluate(telemetry(devices[i] as Device, now + (i % 997)));
    let signals: ReturnType<typeof engine.tick> = [];
    const ms = heldMs(() => void (signals = engine.tick(now + 999)));
    raised += signals.filter((x) => x.active && x.signal === 'trouble').length;
    if (s >= SECONDS - MEASURED) ticks.push(ms);
  }
  return { ticks, raised };
}

/**
 * The same engine's cost of one call point press (the fire path) against one detector reading, at
 * the site's size: every detector has reported once, so `fire_detection` holds a point per detector.
 * Until session 13 a press copied that whole map twice (the event, then the confirmed fire): in the
 * 100,000-device run a fire alarm spent 0.6–1.3 s in alerts, a care alarm 1–15 ms. Milliseconds
 * the evaluation holds the loop (median of PRESSES), the reading's in the same run as reference.
 */
const PRESSES = 40;
function press(devices: readonly Device[], registry: RegistryIndex): { press: number; reading: number } {
  const engine = createEngine({ rules: defaultRules(), registry });
  const t0 = Date.UTC(2026, 11, 6, 10);
  for (const [i, d] of devices.entries()) engine.evaluate(telemetry(d, t0 + (i % 60_000)));
  const callPoints = devices.filter((d) => d.kind === 'manual_call_point').slice(0, PRESSES);
  const detectors = devices.filter((d) => d.kind === 'smoke_detector').slice(0, PRESSES);
  const presses: number[] = [];
  const readings: number[] = [];
  for (const [i, cp] of callPoints.entries()) {
    const now = t0 + 60_000 + i * 1000;
    const fired = { n: 0 };
    presses.push(heldMs(() => void (fired.n = engine.evaluate({ type: 'event', device: cp, ts: now, receivedTs: now, brokerTs: now, now, event: { ts: now, seq: 1, type: 'manual_call_point' } } as RuleInput).length)));
    if (fired.n === 0) throw new Error(`the press of ${cp.id} raised nothing`);
    const det = detectors[i];
    if (det !== undefined) readings.push(heldMs(() => void engine.evaluate(telemetry(det, now))));
  }
  return { press: median(presses), reading: median(readings) };
}

export const rulesAtScaleBenchmark: Benchmark = {
  name: 'rulesatscale',
  title: 'Alerts rules at 102,000 devices: the 1 s tick with 8 % never connected vs all reporting; a call point press vs a reading',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const size = ctx.quick ? 20_400 : 102_000;
    const reg = benchRegistry(ctx.root, size, size / 102);
    const registry = parseRegistry(readFileSync(reg.path, 'utf8'), reg.path);
    const devices = registry.site.devices;
    // Each round is 2 × 240 s of a province's reports (~816,000 evaluations, about 2 minutes here):
    // one full-size round gives 60 ticks per site; --runs asks for more.
    const rounds = ctx.quick ? 1 : ctx.runs;
    const all: number[] = [];
    const troubled: number[] = [];
    const p99s: Array<{ all: number; troubled: number }> = [];
    let raised = 0;
    for (let r = 0; r < rounds; r++) {
      const a = site(devices, () => false, registry);
      const b = site(devices, (i) => i % 12 === 0, registry);
      all.push(median(a.ticks));
      troubled.push(median(b.ticks));
      p99s.push({ all: percentiles(a.ticks).p99, troubled: percentiles(b.ticks).p99 });
      raised = b.raised;
    }
    const ref = median(all);
    const val = median(troubled);
    const silentCount = Math.ceil(devices.length / 12);
    ctx.log(`rulesatscale: ${devices.length} devices, ${registry.site.homes.length} homes, ${rounds} rounds: tick ${ref.toFixed(2)} ms all reporting, ${val.toFixed(2)} ms with ${silentCount} never connected (${raised} troubles raised); p99 per round ${JSON.stringify(p99s)}`);
    const fire = press(devices, registry);
    ctx.log(`rulesatscale: one call point press ${fire.press.toFixed(3)} ms, one detector reading ${fire.reading.toFixed(3)} ms (median of ${PRESSES}, every detector reported once)`);
    const rows: Row[] = [
      {
        bench: 'rulesatscale',
        metric: `one call point press through the rules, ${devices.length} devices (event loop held, median of ${PRESSES})`,
        value: fire.press,
        unit: 'ms',
        reference: { name: 'one detector reading, same engine', value: fire.reading },
        ratio: fire.press / fire.reading,
      },
      {
        bench: 'rulesatscale',
        metric: `one 1 s rules tick, ${devices.length} devices, ${silentCount} never connected (event loop held, median of ${MEASURED} ticks${rounds > 1 ? `, median of ${rounds} rounds` : ''})`,
        value: val,
        unit: 'ms',
        reference: { name: 'the same site with every device reporting', value: ref },
        ratio: val / ref,
      },
    ];
    return { rows, detail: { all, troubled, p99s, raised, fire } };
  },
};
