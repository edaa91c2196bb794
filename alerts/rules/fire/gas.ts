import { fmt } from './signals.ts';
import { levelRule } from './level-rule.ts';

/**
 * Combustible gas (GB 15322.1-2019 detectors; levels per GB 50493-2019 §5.5). Gas is an alarm
 * class signal (a hazard needing action now), shown apart from fire (GB 50116-2013 §8: gas alarm
 * information must be distinguishable from fire alarms), hence its own rule names.
 * Low alarm self-restores when the gas is gone; the high alarm latches: at half the lower
 * explosive limit a person must find and shut off the leak before it is reset.
 */
// Two readings at least 10 s apart (two readings at the 10 s nominal period): timed, not only
// counted, so a puff of a few seconds is rejected alike by a detector reporting every 0.5 s and
// one reporting every 10 s (the decision must not depend on the reporting interval).
const HOLD = { setCount: 2, setHoldMs: 10_000, clearHoldMs: 60_000 } as const;

export const gasRule = levelRule(
  'combustible_gas',
  ['gas_detector'],
  [
    {
      rule: 'gas_low',
      metric: 'gas_lel_pct',
      direction: 'above',
      set: 'gas_low_lel_pct', // first-level alarm ≤ 25 %LEL: 20 %LEL
      clear: 'gas_low_clear_lel_pct',
      signal: 'alarm',
      severity: 'high',
      hold: HOLD,
      text: (v, at) => ({ zh: `可燃气体低限报警 ${fmt(v)} %LEL（设定 ${fmt(at, 0)}）`, en: `combustible gas low alarm ${fmt(v)} %LEL (set ${fmt(at, 0)})` }),
    },
    {
      rule: 'gas_high',
      metric: 'gas_lel_pct',
      direction: 'above',
      set: 'gas_high_lel_pct', // second-level alarm ≤ 50 %LEL: 50 %LEL
      clear: 'gas_high_clear_lel_pct',
      signal: 'alarm',
      severity: 'critical',
      latching: true,
      hold: HOLD,
      text: (v, at) => ({ zh: `可燃气体高限报警 ${fmt(v)} %LEL（设定 ${fmt(at, 0)}）`, en: `combustible gas HIGH alarm ${fmt(v)} %LEL (set ${fmt(at, 0)})` }),
    },
  ],
  {
    rule: 'gas_detector_alarm',
    signal: 'alarm',
    severity: 'critical',
    latching: true,
    text: { zh: '可燃气体探测器报警', en: 'combustible gas detector alarm' },
  },
);
