import { describe, expect, it } from 'vitest';
import { METRICS, METRIC_NAMES, outOfRange, type MetricName, type MetricSpec } from '../../contract/metrics.ts';

describe('out-of-range mapping (contract/metrics.ts)', () => {
  it('is nothing inside the range, limits included', () => {
    for (const name of METRIC_NAMES) {
      const spec: MetricSpec = METRICS[name];
      if (spec.type !== 'number') continue;
      for (const v of [spec.min, spec.max].filter((x): x is number => x !== undefined)) expect(outOfRange(name, v), `${name}=${v}`).toBeUndefined();
    }
  });

  it('takes a reading at the limit on the side where it can mean danger, and keeps it out on the other', () => {
    const cases: Array<[MetricName, number, 'above' | 'below', number, boolean]> = [
      ['temperature_c', 450, 'above', 200, true],
      ['temperature_c', -41, 'below', -40, false],
      ['smoke_obscuration_pct_per_m', 130, 'above', 100, true],
      ['smoke_obscuration_pct_per_m', -0.5, 'below', 0, false],
      ['cable_temp_c', 300, 'above', 250, true],
      ['residual_current_ma', 20_000, 'above', 10_000, true],
      ['gas_lel_pct', 120, 'above', 100, true],
      ['gas_lel_pct', -2, 'below', 0, false],
      ['water_pressure_mpa', -0.1, 'below', 0, true],
      ['water_pressure_mpa', 7, 'above', 5, true],
      ['battery_pct', -1, 'below', 0, true],
      ['battery_pct', 104, 'above', 100, false],
      ['rssi_dbm', 3, 'above', 0, false],
      ['heart_rate_bpm', 320, 'above', 300, true],
      ['spo2_pct', 101, 'above', 100, false],
      ['spo2_pct', -1, 'below', 0, true],
      ['body_temp_c', 24, 'below', 25, true],
      ['systolic_bp_mmhg', 20, 'below', 30, true],
      ['movement_index', 140, 'above', 100, false],
      ['wetness_pct', 101, 'above', 100, true],
    ];
    for (const [metric, value, side, limit, atLimit] of cases) expect(outOfRange(metric, value), `${metric}=${value}`).toEqual({ metric, value, side, limit, atLimit });
  });

  it('names a danger side only on a side that has a limit', () => {
    for (const name of METRIC_NAMES) {
      const spec: MetricSpec = METRICS[name];
      if (spec.danger === 'above' || spec.danger === 'both') expect(spec.max, name).toBeTypeOf('number');
      if (spec.danger === 'below' || spec.danger === 'both') expect(spec.min, name).toBeTypeOf('number');
    }
  });
});
