import { describe, expect, it } from 'vitest';
import { newDeviceClock, ruleTime, SETTLE_MS } from '../../alerts/device-clock.ts';
import { createEngine } from '../../alerts/engine.ts';
import { defaultRules } from '../../alerts/rules/index.ts';
import type { RuleInput, Signal } from '../../alerts/rules/types.ts';
import type { MetricName } from '../../contract/metrics.ts';
import type { EventType } from '../../contract/payloads.ts';
import { demoRegistry } from '../support/registry.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

describe('device clock (pure)', () => {
  it('takes a reading stamped after its receipt at the receipt, and leaves the clock alone for one glitch', () => {
    const c = newDeviceClock(1_000, 1_010);
    expect(ruleTime(c, 2_000, 2_010, true).ts).toBe(2_000);
    expect(ruleTime(c, 3_000 + 55 * MIN, 3_010, true).ts).toBe(3_010);
    expect(ruleTime(c, 4_000, 4_010, true).ts).toBe(4_000);
    expect(c.correction).toBe(0);
  });

  it('moves a clock steadily behind by its offset once it held for SETTLE_MS, keeping its own spacing', () => {
    const behind = 2 * DAY;
    const c = newDeviceClock(0 - behind, 0);
    let last = 0;
    for (let b = 1_000; b < SETTLE_MS; b += 1_000) last = ruleTime(c, b - behind, b + 3, true).ts;
    expect(last).toBe(SETTLE_MS - 1_000 - behind); // not believed yet
    const at = ruleTime(c, SETTLE_MS - behind, SETTLE_MS + 3, true);
    expect(at.changed).toBe(true);
    expect(at.ts).toBe(SETTLE_MS + 3);
    // Its spacing is its own: 1,000 ms later on its clock is 1,000 ms later for the rules.
    expect(ruleTime(c, SETTLE_MS + 1_000 - behind, SETTLE_MS + 1_500, true).ts).toBe(SETTLE_MS + 1_003);
    // An event is moved by what the readings taught.
    expect(ruleTime(c, SETTLE_MS + 1_200 - behind, SETTLE_MS + 1_600, false).ts).toBe(SETTLE_MS + 1_203);
  });

  it('stops moving a clock that is right again, without holding its readings back meanwhile', () => {
    const c = newDeviceClock(-10 * MIN, 0);
    for (let b = 0; b <= SETTLE_MS; b += 5_000) ruleTime(c, b - 10 * MIN, b, true);
    expect(c.correction).toBe(10 * MIN);
    // NTP fixes it: the moved times would be 10 min ahead, so they are taken at receipt until believed.
    const start = SETTLE_MS + 5_000;
    expect(ruleTime(c, start, start + 2, true).ts).toBe(start + 2);
    for (let b = start; b <= start + SETTLE_MS; b += 5_000) ruleTime(c, b, b + 2, true);
    expect(c.correction).toBe(0);
    expect(ruleTime(c, start + SETTLE_MS + 5_000, start + SETTLE_MS + 5_002, true).ts).toBe(start + SETTLE_MS + 5_000);
  });

  it('leaves a flushed buffer at its own times: its offset shrinks, it is never steady', () => {
    const c = newDeviceClock(0, 2);
    // Offline for an hour; back, it sends what it buffered (one reading a minute) in a 6 s burst.
    const back = HOUR;
    for (let i = 0; i < 60; i++) {
      const ts = i * MIN + MIN;
      expect(ruleTime(c, ts, back + i * 100, true).ts).toBe(ts);
    }
    expect(c.correction).toBe(0);
  });
});

/** The engine with the default rules over the demo site, fed as the alerts process feeds it. */
function site() {
  const reg = demoRegistry();
  const engine = createEngine({ rules: defaultRules(), registry: reg });
  const raised: Array<{ at: number; key: string }> = [];
  const keep = (now: number, signals: Signal[]): void => {
    for (const s of signals) if (s.active) raised.push({ at: now, key: s.key });
  };
  const device = (id: string) => {
    const d = reg.device(id);
    if (d === undefined) throw new Error(`no device ${id}`);
    return d;
  };
  return {
    engine,
    raised,
    keys: (re: RegExp) => [...new Set(raised.filter((r) => re.test(r.key)).map((r) => r.key.split(':')[0] ?? r.key))],
    reading(id: string, now: number, ts: number, metrics: Partial<Record<MetricName, number | boolean>>) {
      const input: RuleInput = { type: 'telemetry', now, brokerTs: now, device: device(id), ts, receivedTs: now, metrics };
      keep(now, engine.evaluate(input));
    },
    event(id: string, now: number, ts: number, type: EventType, seq: number) {
      const input: RuleInput = { type: 'event', now, brokerTs: now, device: device(id), ts, receivedTs: now, event: { ts, seq, type } };
      keep(now, engine.evaluate(input));
    },
    tick(now: number) {
      keep(now, engine.tick(now));
    },
  };
}

// 23:00 China Standard Time: night for the bed rule.
const T0 = Date.UTC(2026, 0, 1, 15, 0, 0);

describe('the rules with a device clock that jumps (session 26)', () => {
  /** A heat detector reporting every 10 s, then a rise of 10 °C a minute; `skew(now)` is its clock error. */
  function heatRise(skew: (now: number) => number): string[] {
    const s = site();
    const id = 'h01-hd-f1-bath';
    let now = T0;
    for (; now < T0 + 5 * MIN; now += 10_000) {
      s.reading(id, now, now + skew(now), { temperature_c: 22 });
      s.tick(now);
    }
    const rise = now;
    for (; now < rise + 3 * MIN; now += 10_000) {
      s.reading(id, now, now + skew(now), { temperature_c: 22 + ((now - rise) / MIN) * 10 });
      s.tick(now);
    }
    return s.keys(/^heat_/).filter((k) => s.raised.some((r) => r.key.startsWith(k) && r.at < rise + 2 * MIN));
  }

  it('raises a rate-of-rise heat alarm after one reading stamped 55 min ahead (ignored for 55 min before)', () => {
    expect(heatRise(() => 0)).toContain('heat_ror');
    const glitchAt = T0 + 5 * MIN - 10_000;
    expect(heatRise((now) => (now === glitchAt ? 55 * MIN : 0))).toContain('heat_ror');
  });

  it('raises it after the clock stepped back two days, once the offset held a minute (ignored for two days before)', () => {
    const stepAt = T0 + 2 * MIN;
    expect(heatRise((now) => (now >= stepAt ? -2 * DAY : 0))).toContain('heat_ror');
  });

  it("says in a signal when the device measured it (its own ts), though the rules timed it at its receipt", () => {
    const reg = demoRegistry();
    const engine = createEngine({ rules: defaultRules(), registry: reg });
    const device = reg.device('h01-mcp-f1-corridor');
    if (device === undefined) throw new Error('no call point');
    const ts = T0 + 10 * MIN; // the call point's clock 10 min ahead
    const signals = engine.evaluate({ type: 'event', now: T0, brokerTs: T0, device, ts, receivedTs: T0, event: { ts, seq: 1, type: 'manual_call_point' } });
    const alarm = signals.find((x) => x.active && x.deviceId === device.id);
    // alerts.ts recognises the signals of this very message by it (and stamps brokerTs/receivedTs on them).
    expect(alarm?.sourceTs).toBe(ts);
  });

  it('keeps a correction across a restart: the restored rules do not ignore the device for a minute', () => {
    const reg = demoRegistry();
    const device = reg.device('h01-hd-f1-bath');
    if (device === undefined) throw new Error('no heat detector');
    const behind = 2 * DAY;
    const reading = (e: ReturnType<typeof createEngine>, now: number, temperature: number): Signal[] =>
      e.evaluate({ type: 'telemetry', now, brokerTs: now, device, ts: now - behind, receivedTs: now, metrics: { temperature_c: temperature } });
    const first = createEngine({ rules: defaultRules(), registry: reg });
    let now = T0;
    for (; now <= T0 + 5 * MIN; now += 10_000) reading(first, now, 22);
    expect(first.deviceClocks().corrected).toBe(1);
    const saved = JSON.parse(first.snapshotJson()) as Record<string, unknown>;
    // Restarted: a rise of 10 °C a minute from the first reading after it.
    const second = createEngine({ rules: defaultRules(), registry: reg });
    second.restore(saved);
    expect(second.deviceClocks().corrected).toBe(1);
    const rise = now;
    const raisedAt: number[] = [];
    for (; now < rise + 3 * MIN; now += 10_000) {
      for (const s of reading(second, now, 22 + ((now - rise) / MIN) * 10)) if (s.active && s.key.startsWith('heat_ror')) raisedAt.push(now - rise);
      second.tick(now);
    }
    // At the end of its 60 s window, as on a device whose clock is right. Without the saved correction
    // its readings, 2 days older than the restored ones, were ignored until the offset was believed
    // again (SETTLE_MS), and then the 2-day jump restarted the window: no alarm in 3 minutes.
    expect(raisedAt[0]).toBeDefined();
    expect(raisedAt[0]).toBeLessThanOrEqual(60_000);
  });

  it('counts the devices it moves (/health, /metrics), and lets one go once its clock is right again', () => {
    const s = site();
    let now = T0;
    for (; now <= T0 + 70_000; now += 10_000) s.reading('h01-hd-f1-bath', now, now - 2 * DAY, { temperature_c: 22 });
    expect(s.engine.deviceClocks()).toEqual({ corrected: 1, changes: 1 });
    for (const end = now + 70_000; now <= end; now += 10_000) s.reading('h01-hd-f1-bath', now, now, { temperature_c: 22 });
    expect(s.engine.deviceClocks()).toEqual({ corrected: 0, changes: 2 });
  });

  it('scores NEWS2 from a monitor whose clock is 6 min slow (every value was stale before)', () => {
    const run = (skew: number): string[] => {
      const s = site();
      for (let now = T0; now < T0 + 5 * MIN; now += 5_000) {
        s.reading('h01-vs-p03', now, now + skew, { resp_rate_bpm: 24, spo2_pct: 92, heart_rate_bpm: 125, body_temp_c: 38.0 });
        if (now % 10_000 === 0) s.tick(now);
      }
      return s.keys(/^news2/);
    };
    expect(run(0)).toEqual(['news2']);
    expect(run(-6 * MIN)).toEqual(['news2']);
  });

  it('raises a long night bed exit after one bed report stamped 50 min ahead (nothing at all before)', () => {
    const s = site();
    const id = 'h01-bed-p01';
    let now = T0;
    for (; now < T0 + 2 * MIN; now += 5_000) s.reading(id, now, now, { bed_occupied: true, movement_index: 5 });
    s.reading(id, now, now + 50 * MIN, { bed_occupied: true, movement_index: 5 });
    const exit = now + 5_000;
    s.event(id, exit, exit, 'bed_exit', 1);
    for (now = exit + 5_000; now < exit + 45 * MIN; now += 5_000) {
      s.reading(id, now, now, { bed_occupied: false, movement_index: 0 });
      if (now % 30_000 === 0) s.tick(now);
    }
    expect(s.keys(/^bed_exit/).sort()).toEqual(['bed_exit', 'bed_exit_long']);
    expect(s.engine.deviceClocks().corrected).toBe(0);
  });
});
