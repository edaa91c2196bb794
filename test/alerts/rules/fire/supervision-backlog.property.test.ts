import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEVICE_KINDS } from '../../../../contract/device-kinds.ts';
import type { Device } from '../../../../contract/registry.ts';
import type { RuleContext, RuleInput, Signal } from '../../../../alerts/rules/types.ts';
import { supervisionRule } from '../../../../alerts/rules/fire/supervision.ts';
import { demoSubRegistry } from '../../../support/registry.ts';
import { T0 } from './shapes.ts';
import { RUNS, uniform } from '../sampling.ts';

/**
 * Alerts' own backlog is not the devices' silence (issue 14; session 9's 100,000-device run: a
 * backlogged alerts raised 388 → 1,169 false device troubles, which added work). Devices report at
 * their kinds' intervals as the broker receives them (its stamp, `brokerTs`, on a clock up to 30 s off
 * alerts'); alerts reads them later by a lag that grows (it falls behind, up to 3 s per second) and
 * then shrinks (it catches up), ticking every second of its own clock. Every device reports all along:
 * nothing may be raised. One device that stops: its trouble is still raised, no later than NFPA 72's
 * 200 s plus how far behind alerts was.
 */

const HOMES = ['hh01', 'h02'];
const registry = demoSubRegistry(HOMES);
const ctx: RuleContext = { registry, inPlace: true };
const DURATION_MS = 15 * 60_000;
const REPORT_LIMIT_MS = 200_000;

const backlogArb = fc.record({
  seed: fc.integer({ min: 0, max: 0x7fffffff }),
  /** Broker clock minus alerts' clock. */
  skewMs: fc.integer({ min: -30_000, max: 30_000 }),
  /** Alerts falls behind from `from` (broker time, fraction of the run) at `slope` s per s, up to `peakMs`. */
  from: fc.double({ min: 0.2, max: 0.6, noNaN: true }),
  slope: fc.double({ min: 0.2, max: 3, noNaN: true }),
  peakMs: fc.integer({ min: 10_000, max: 110_000 }),
  /** Then catches up at this many s per s (below 1: reading order stays the broker's). */
  recover: fc.double({ min: 0.1, max: 0.9, noNaN: true }),
  /** Which device stops reporting, and when (fraction of the run), for the second property. */
  silent: fc.nat(1_000),
  silentAt: fc.double({ min: 0.1, max: 0.6, noNaN: true }),
});
type Backlog = typeof backlogArb extends fc.Arbitrary<infer B> ? B : never;

/** How far behind alerts reads a message the broker received at `b`: a ramp up, a plateau, a ramp down. */
function lagAt(s: Backlog, b: number): number {
  const start = T0 + s.from * DURATION_MS;
  if (b <= start) return 0;
  const rise = s.peakMs / s.slope;
  if (b <= start + rise) return (b - start) * s.slope;
  const hold = 60_000;
  if (b <= start + rise + hold) return s.peakMs;
  return Math.max(0, s.peakMs - (b - start - rise - hold) * s.recover);
}

function run(s: Backlog, silentDevice?: Device): { raised: Array<{ at: number; sig: Signal }>; silentFrom: number; lastReport: number; maxLag: number } {
  const u = uniform(s.seed);
  const devices = HOMES.flatMap((h) => registry.devicesOfHome(h));
  const silentFrom = T0 + s.silentAt * DURATION_MS;
  const out: Array<{ now: number; input: RuleInput }> = [];
  let maxLag = 0;
  /** When the broker last had a message of the silent device (alerts' clock). */
  let lastReport = T0;
  for (const d of devices) {
    const period = DEVICE_KINDS[d.kind].telemetryIntervalS * 1000;
    for (let b = T0 + Math.abs(u()) * period; b < T0 + DURATION_MS; b += period * (1 + 0.2 * u())) {
      if (d === silentDevice && b >= silentFrom) break;
      if (d === silentDevice) lastReport = b;
      const lag = lagAt(s, b);
      maxLag = Math.max(maxLag, lag);
      // Read 30 ms after the broker had it, plus the backlog; stamped on the broker's clock.
      const now = Math.round(b + 30 + lag);
      const brokerTs = Math.round(b + s.skewMs);
      out.push({ now, input: { type: 'telemetry', device: d, ts: brokerTs, receivedTs: now, brokerTs, now, metrics: { battery_pct: 90 } } });
    }
  }
  for (let t = T0 + 500; t < T0 + DURATION_MS + REPORT_LIMIT_MS; t += 1_000) out.push({ now: t, input: { type: 'tick', now: t } });
  out.sort((a, b) => a.now - b.now);
  let state = supervisionRule.initialState();
  const raised: Array<{ at: number; sig: Signal }> = [];
  for (const { input } of out) {
    const r = supervisionRule.evaluate(input, state, ctx);
    state = r.state;
    for (const sig of r.signals) if (sig.active) raised.push({ at: input.now, sig });
  }
  return { raised, silentFrom, lastReport, maxLag };
}

/** Every device has reported a few times and the start-up troubles (budgets from the first tick) are behind. */
const WARM_UP_MS = 3 * 60_000;

describe('supervision does not take alerts falling behind for devices falling silent', () => {
  it('every device reporting, alerts up to 110 s behind and catching up: nothing raised', () => {
    fc.assert(
      fc.property(backlogArb, (s) => {
        const { raised } = run(s);
        const after = raised.filter((r) => r.at > T0 + WARM_UP_MS && r.at < T0 + DURATION_MS);
        expect(after.map((r) => `${r.sig.key} at +${Math.round((r.at - T0) / 1000)} s`)).toEqual([]);
      }),
      // CI's counterexample (session 15): falling 12 s behind at 2.9 s per second, alerts read nothing
      // for seconds while its tick's excess decayed, and h02 looked silent (home_comm_loss at +268 s).
      { numRuns: RUNS, examples: [[{ seed: 17, skewMs: 0, from: 0.2792983432345921, slope: 2.9458674850310866, peakMs: 12022, recover: 0.1, silent: 0, silentAt: 0.1 }]] },
    );
  });

  it('a device that stops is still raised, within 200 s plus how far behind alerts was', () => {
    fc.assert(
      fc.property(backlogArb, (s) => {
        const devices = HOMES.flatMap((h) => registry.devicesOfHome(h));
        const d = devices[s.silent % devices.length] as Device;
        const { raised, silentFrom, lastReport, maxLag } = run(s, d);
        const mine = raised.find((r) => r.sig.deviceId === d.id && r.at > silentFrom);
        expect(mine, `${d.id} silent from +${Math.round((silentFrom - T0) / 1000)} s`).toBeDefined();
        // From its last report as the broker had it; the 1 s tick and the 30 ms transport as slack.
        expect((mine?.at ?? Infinity) - lastReport).toBeLessThanOrEqual(REPORT_LIMIT_MS + maxLag + 2_000);
      }),
      { numRuns: RUNS },
    );
  });
});
