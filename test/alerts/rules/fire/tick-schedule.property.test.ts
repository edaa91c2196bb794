import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEVICE_KINDS } from '../../../../contract/device-kinds.ts';
import type { Device } from '../../../../contract/registry.ts';
import type { Rule, RuleContext, RuleInput, Signal } from '../../../../alerts/rules/types.ts';
import { fireDetectionRule } from '../../../../alerts/rules/fire/fire-detection.ts';
import { supervisionRule } from '../../../../alerts/rules/fire/supervision.ts';
import { demoSubRegistry } from '../../../support/registry.ts';
import { T0, event, status, telemetry, tick } from './shapes.ts';
import { RUNS, uniform } from '../sampling.ts';

/**
 * The ticks of `supervision` and `fire_detection` visit only what may be due (a schedule of quiet
 * homes, a set of pending detector points), kept beside the engine-owned map it describes, keyed by
 * that map. Given a copy of the map, a tick has no schedule and visits every home and every point, as
 * before: that is the reference (its state is copied before each tick). For any
 * stream of reports, silences, offline statuses, smoke episodes, detector and call-point events and
 * restart gaps, both must give the same signals at every input and the same state at the end. A
 * schedule that skipped a home or a point with something due would raise a trouble or a fire late,
 * or not at all, and differ here.
 */

/**
 * Two households of 6 devices, where one device's report decides when the home is next due, and a
 * care home of 60, alone in the registry. hh02 stays silent in some runs (never heard: budgets run
 * from the first tick).
 */
const HOMES = ['hh01', 'hh02', 'h02'];
const registry = demoSubRegistry(HOMES);
const DURATION_MS = 12 * 60_000;
const TICK_MS = 1_000;
/**
 * Smoke and fast episodes end in this much silence: then only a tick can finish a smoke verification
 * or an alarm's clear (a reading does it otherwise), or find that a device which had sped up has gone
 * quiet, which is what a schedule could miss. Longer than the 100 s a verification waits for an
 * overdue reading and than a smoke detector's 90 s budget.
 */
const TAIL_MS = 150_000;

interface Episode {
  /** Index into the devices the episode may concern (modulo their number). */
  readonly device: number;
  /** `home_silence`: every device of one home (its gateway or network died). */
  readonly kind: 'silence' | 'offline' | 'smoke' | 'alarm_event' | 'fast' | 'home_silence';
  /** Start and length, as fractions of the run. */
  readonly at: number;
  readonly length: number;
  readonly level: number;
}

const episodeArb: fc.Arbitrary<Episode> = fc.record({
  device: fc.nat(10_000),
  // Smoke and alarm events weigh more: they are what the fire rule's pending points are made of.
  kind: fc.constantFrom('silence', 'offline', 'smoke', 'smoke', 'smoke', 'alarm_event', 'alarm_event', 'fast', 'home_silence'),
  at: fc.double({ min: 0, max: 0.9, noNaN: true }),
  length: fc.double({ min: 0.005, max: 0.5, noNaN: true }),
  level: fc.double({ min: 0, max: 8, noNaN: true }),
});

const scenarioArb = fc.record({
  seed: fc.integer({ min: 0, max: 0x7fffffff }),
  /**
   * Every device reports at its kind's interval × this: mostly under 2 (a home at rest, which a schedule
   * skips), sometimes up to 6 (slower than two periods: devices down between reports, or slow reporters).
   */
  pace: fc.oneof({ arbitrary: fc.double({ min: 0.5, max: 1.8, noNaN: true }), weight: 3 }, { arbitrary: fc.double({ min: 0.5, max: 6, noNaN: true }), weight: 1 }),
  /** hh02's devices are silent from the start (never heard: budgets from the first tick). */
  silentHome: fc.boolean(),
  episodes: fc.array(episodeArb, { minLength: 1, maxLength: 12 }),
  /** A gap in the ticks and messages (alerts down), as a fraction of the run; longer than 60 s re-arms supervision. */
  /**
   * How far behind the broker alerts falls mid-run (ms; the broker's stamps say so): supervision then
   * judges on its clock less that lag, which moves back and forth.
   */
  behindMs: fc.oneof(fc.constant(0), fc.integer({ min: 1_000, max: 100_000 })),
  /**
   * A stall: for a tenth of the run alerts reads everything this much later at once, so the clock
   * supervision judges by jumps back (a schedule made on the later clock must not hold there).
   */
  stall: fc.option(fc.record({ at: fc.double({ min: 0.05, max: 0.85, noNaN: true }), ms: fc.integer({ min: 2_000, max: 90_000 }) }), { nil: undefined }),
  gap: fc.option(fc.record({ at: fc.double({ min: 0.1, max: 0.8, noNaN: true }), ms: fc.integer({ min: 5_000, max: 150_000 }) }), { nil: undefined }),
});

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer S> ? S : never;

function inputsOf(sc: Scenario): RuleInput[] {
  const u = uniform(sc.seed);
  const devices: Device[] = HOMES.flatMap((h) => registry.devicesOfHome(h));
  const homes = sc.silentHome ? HOMES.filter((h) => h !== 'hh02') : HOMES;
  const out: Array<{ t: number; i: number; input: RuleInput }> = [];
  /** The broker's stamp: alerts reads the message `behindMs` late in the middle third of the run, and `stall` more during a stall. */
  const stamped = (input: RuleInput, at: number): RuleInput => {
    const x = (at - T0) / DURATION_MS;
    const stalled = sc.stall !== undefined && x >= sc.stall.at && x < sc.stall.at + 0.1 ? sc.stall.ms : 0;
    const behind = sc.behindMs * Math.max(0, Math.min(1, 3 * x - 1, 3 - 3 * x)) + stalled;
    return { ...input, brokerTs: Math.round(at - 30 - behind) };
  };
  const push = (t: number, input: RuleInput): void => {
    out.push({ t, i: out.length, input });
  };
  // Smoke goes to smoke detectors, alarm events to detectors and call points, the rest to any device.
  const smokeDetectors = devices.filter((d) => d.kind === 'smoke_detector');
  const alarmDevices = devices.filter((d) => d.kind === 'smoke_detector' || d.kind === 'heat_detector' || d.kind === 'manual_call_point');
  const target = (e: Episode): Device => {
    const pool = e.kind === 'smoke' ? smokeDetectors : e.kind === 'alarm_event' ? alarmDevices : devices;
    return pool[e.device % pool.length] as Device;
  };
  /** The episode of this kind the device is in at `t`, or with `tail` in the silence after it. */
  const during = (d: Device, t: number, kind: Episode['kind'], tail = false): Episode | undefined =>
    sc.episodes.find((e) => {
      if (e.kind !== kind || (kind === 'home_silence' ? HOMES[e.device % HOMES.length] !== d.homeId : target(e) !== d)) return false;
      const from = T0 + e.at * DURATION_MS;
      const to = T0 + (e.at + e.length) * DURATION_MS;
      return tail ? t >= to && t < to + TAIL_MS : t >= from && t < to;
    });
  /** In a smoke episode: the smoke level in its first two thirds, clean air in the last third. */
  const smokeAt = (e: Episode, t: number): number => (t < T0 + (e.at + (e.length * 2) / 3) * DURATION_MS ? e.level * (0.8 + 0.2 * Math.abs(u())) : 0.1);
  for (const d of devices) {
    if (!homes.includes(d.homeId)) continue;
    const period = DEVICE_KINDS[d.kind].telemetryIntervalS * 1000 * sc.pace;
    for (let t = T0 + Math.abs(u()) * period; t < T0 + DURATION_MS; ) {
      const at = Math.round(t);
      const fast = during(d, at, 'fast') !== undefined;
      t += Math.max(500, (fast ? period / 8 : period) * (1 + 0.3 * u()));
      if (during(d, at, 'silence') !== undefined || during(d, at, 'home_silence') !== undefined || during(d, at, 'smoke', true) !== undefined || during(d, at, 'fast', true) !== undefined) continue;
      const off = during(d, at, 'offline');
      if (off !== undefined) {
        push(at, stamped(status(d, at, false), at));
        continue;
      }
      const smoke = during(d, at, 'smoke');
      const metrics = d.kind === 'smoke_detector' ? { smoke_obscuration_pct_per_m: smoke !== undefined ? smokeAt(smoke, at) : 0.1, temperature_c: 22 } : d.kind === 'heat_detector' ? { temperature_c: 22 } : { battery_pct: 90 };
      push(at, stamped(telemetry(d, at, metrics), at));
    }
  }
  for (const e of sc.episodes) {
    if (e.kind !== 'alarm_event') continue;
    const d = target(e);
    const at = Math.round(T0 + e.at * DURATION_MS);
    const type = d.kind === 'manual_call_point' ? 'manual_call_point' : 'detector_alarm';
    push(at, event(d, at, type));
    if (e.level > 4) push(Math.round(at + e.length * DURATION_MS), event(d, Math.round(at + e.length * DURATION_MS), type, { ok: true }));
  }
  for (let t = T0 + 500; t < T0 + DURATION_MS; t += TICK_MS) push(t, tick(t));
  // Alerts down for a while: nothing reaches the rules in the gap.
  const gap = sc.gap;
  const kept = gap === undefined ? out : out.filter((x) => x.t < T0 + gap.at * DURATION_MS || x.t >= T0 + gap.at * DURATION_MS + gap.ms);
  return kept.sort((a, b) => a.t - b.t || a.i - b.i).map((x) => x.input);
}

/** Signals of one input in a stable order (a pending set need not visit points in the map's order). */
function canonical(signals: readonly Signal[]): string[] {
  return signals.map((s) => JSON.stringify(s)).sort();
}

/** The state with each of its maps copied: a tick given it finds no schedule of its own. */
function copied(state: unknown): unknown {
  return Object.fromEntries(Object.entries(state as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'object' && v !== null ? { ...v } : v]));
}

function compare(rule: Rule, inputs: readonly RuleInput[]): { reference: number } {
  const ctx: RuleContext = { registry, inPlace: true };
  let a = rule.initialState();
  let b = rule.initialState();
  let signals = 0;
  for (const [n, input] of inputs.entries()) {
    const ra = rule.evaluate(input, input.type === 'tick' ? copied(a) : a, ctx);
    const rb = rule.evaluate(input, b, ctx);
    a = ra.state;
    b = rb.state;
    signals += ra.signals.length;
    expect(canonical(rb.signals), `${rule.id}, input ${n} (${input.type} at +${input.now - T0} ms)`).toEqual(canonical(ra.signals));
  }
  expect(JSON.parse(JSON.stringify(b))).toEqual(JSON.parse(JSON.stringify(a)));
  return { reference: signals };
}

describe('ticks that visit only what may be due decide as ticks that visit everything', () => {
  for (const rule of [supervisionRule, fireDetectionRule] as Rule[]) {
    it(`${rule.id}: the same signals at every input and the same state, for any stream`, () => {
      let withSignals = 0;
      fc.assert(
        fc.property(scenarioArb, (sc) => {
          if (compare(rule, inputsOf(sc)).reference > 0) withSignals++;
        }),
        { numRuns: RUNS * 4 },
      );
      // The streams must make the rule do something, or the comparison shows nothing.
      expect(withSignals).toBeGreaterThan(RUNS / 3);
      // 4× RUNS: a schedule that missed an offline status showed only at pace ≈ 1.7 (see the session 10
      // note); 8–16 s here, 90–120 s at 10× RUNS (no counterexample in 1,200 runs each).
    }, 600_000);
  }
});
