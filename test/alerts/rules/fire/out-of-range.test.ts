import { describe, expect, it } from 'vitest';
import { decodeDeviceMessage } from '../../../../contract/device-message.ts';
import { deviceTopic } from '../../../../contract/topics.ts';
import { toRuleInput } from '../../../../alerts/mqtt.ts';
import { OOR_COUNT, OOR_WINDOW_MS } from '../../../../alerts/rules/fire/device-trouble.ts';
import { defaultRules } from '../../../../alerts/rules/index.ts';
import type { RuleInput } from '../../../../alerts/rules/types.ts';
import { demoRegistry } from '../../../support/registry.ts';
import { byRule, clears, raises, run } from './harness.ts';

const T0 = Date.UTC(2026, 0, 10, 2, 0, 0);
const S = 1000;
const registry = demoRegistry();

/** A reading as the alerts process gets it: through the contract decoder and toRuleInput. */
function reading(deviceId: string, ts: number, metrics: Record<string, number>): RuleInput {
  const d = registry.device(deviceId);
  if (d === undefined) throw new Error(`no device ${deviceId}`);
  const msg = decodeDeviceMessage(deviceTopic(d.homeId, d.id, 'telemetry'), Buffer.from(JSON.stringify({ ts, seq: ts % 1e6, metrics })), registry);
  if (!msg.ok) throw new Error(`rejected: ${msg.code} ${msg.reason}`);
  return toRuleInput(msg, ts);
}

const every = (deviceId: string, from: number, n: number, periodMs: number, metrics: (i: number) => Record<string, number>): RuleInput[] =>
  Array.from({ length: n }, (_, i) => reading(deviceId, from + i * periodMs, metrics(i)));

describe('out-of-range readings reach the rules (issue 11)', () => {
  it('a heat reading above range is an alarm-level reading: the fixed-temperature alarm, at the limit', () => {
    const inputs = [...every('h01-hd-kitchen', T0, 3, 10 * S, () => ({ temperature_c: 25 })), ...every('h01-hd-kitchen', T0 + 30 * S, 2, 10 * S, () => ({ temperature_c: 999 }))];
    const { signals } = run(defaultRules(), inputs);
    const heat = raises(signals, byRule('heat_fixed'));
    expect(heat).toHaveLength(1);
    expect(heat[0]).toMatchObject({ key: 'heat_fixed:h01-hd-kitchen', category: 'fire', signal: 'alarm', severity: 'critical', value: 200, latching: true });
  });

  it('smoke and gas above range alarm as their alarm levels do', () => {
    const gas = run(defaultRules(), every('h01-gd-kitchen', T0, 3, 10 * S, () => ({ gas_lel_pct: 180 }))).signals;
    expect(raises(gas, byRule('gas_high')).map((s) => s.value)).toEqual([100]);
    const smoke = run(defaultRules(), every('h01-sd-r203', T0, 3, 10 * S, () => ({ smoke_obscuration_pct_per_m: 150, temperature_c: 22 }))).signals;
    expect(raises(smoke, byRule('smoke_prealarm'))).toHaveLength(1);
  });

  it(`${OOR_COUNT} out-of-range values of one metric within ${OOR_WINDOW_MS / 60_000} min raise one device trouble naming device and metric; it clears once the metric reads in range after a quiet window`, () => {
    // One stray value, then another 6 min later: not yet.
    const stray = [reading('h01-sd-r203', T0, { temperature_c: -90, smoke_obscuration_pct_per_m: 0.1 }), reading('h01-sd-r203', T0 + 6 * 60 * S, { temperature_c: -90, smoke_obscuration_pct_per_m: 0.1 })];
    expect(raises(run(defaultRules(), stray).signals, byRule('out_of_range'))).toEqual([]);
    // Older than the window, the first no longer counts.
    const spread = [...stray, reading('h01-sd-r203', T0 + 11 * 60 * S, { temperature_c: -90, smoke_obscuration_pct_per_m: 0.1 })];
    expect(raises(run(defaultRules(), spread).signals, byRule('out_of_range'))).toEqual([]);

    const broken = every('h01-sd-r203', T0, 6, 10 * S, () => ({ temperature_c: -90, smoke_obscuration_pct_per_m: 0.1 }));
    const back = [reading('h01-sd-r203', T0 + 5 * 60 * S, { temperature_c: 21, smoke_obscuration_pct_per_m: 0.1 }), reading('h01-sd-r203', T0 + 11 * 60 * S, { temperature_c: 21, smoke_obscuration_pct_per_m: 0.1 })];
    const { signals } = run(defaultRules(), [...broken, ...back], { roundTrip: true });
    const trouble = raises(signals, byRule('out_of_range'));
    expect(trouble).toHaveLength(1);
    expect(trouble[0]).toMatchObject({ key: 'out_of_range:h01-sd-r203:temperature_c', category: 'device', signal: 'trouble', severity: 'high', deviceId: 'h01-sd-r203', value: -90, sourceTs: T0 + 20 * S });
    expect(trouble[0]?.message.en).toContain('device h01-sd-r203 reading out of range: temperature_c = -90 (range -40…200 °C), 3 times within 10 min, readings not used');
    expect(trouble[0]?.latching).toBeUndefined();
    // Below range is no fire.
    expect(signals.filter((s) => s.category === 'fire')).toEqual([]);
    // In range 4.5 min after the last bad value: still raised; after a whole quiet window: cleared.
    const cleared = clears(signals, byRule('out_of_range'));
    expect(cleared.map((s) => s.sourceTs)).toEqual([T0 + 11 * 60 * S]);
  });

  it('a care monitor out of range on its danger side: taken at the limit (the vitals rule sees an implausible reading), flagged as trouble', () => {
    const { signals } = run(defaultRules(), every('h01-vs-p01', T0, 8, 5 * S, () => ({ heart_rate_bpm: 400, resp_rate_bpm: 16, spo2_pct: 97, body_temp_c: 36.6 })));
    const trouble = raises(signals, byRule('out_of_range'));
    expect(trouble.map((s) => [s.key, s.severity])).toEqual([['out_of_range:h01-vs-p01:heart_rate_bpm', 'medium']]);
    expect(trouble[0]?.message.en).toContain('taken as 300 bpm');
    expect(raises(signals, byRule('sensor_implausible')).length).toBeGreaterThan(0);
  });
});
