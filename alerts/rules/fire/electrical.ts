import { fmt } from './signals.ts';
import { levelRule } from './level-rule.ts';

/**
 * Electrical fire monitoring (GB 50116-2013 ch. 9, detectors per GB 14287). Its alarms are
 * supervisory signals: GB 50116 keeps the electrical fire monitoring system apart from the fire
 * alarm system and GB 4717 shows such inputs as 监管报警 (supervisory), because a leaking or hot
 * circuit is a fire risk to be fixed, not a fire to evacuate for.
 */
// GB 14287.2-2014: a residual-current detector must alarm within 30 s of reaching its setting;
// two consecutive readings at least 10 s apart (two readings at the 10 s telemetry period) meet
// that at intervals up to 10 s and ignore a switching spike at any interval: timed as well as
// counted, so a detector reporting every 0.5 s does not alarm on a 1 s spike that a 10 s one misses.
const SET = { setCount: 2, setHoldMs: 10_000, clearHoldMs: 60_000 } as const;

export const electricalRule = levelRule(
  'electrical_fire',
  ['electrical_fire_monitor'],
  [
    {
      rule: 'residual_current',
      metric: 'residual_current_ma',
      direction: 'above',
      set: 'residual_current_ma', // GB 50116-2013 §9.2.3: 300–500 mA
      clear: 'residual_current_clear_ma',
      signal: 'supervisory',
      severity: 'high',
      hold: SET,
      text: (v, at) => ({ zh: `剩余电流 ${fmt(v, 0)} mA 超过报警值 ${fmt(at, 0)} mA`, en: `residual current ${fmt(v, 0)} mA above the ${fmt(at, 0)} mA alarm setting` }),
    },
    {
      rule: 'cable_temperature',
      metric: 'cable_temp_c',
      direction: 'above',
      set: 'cable_temp_c', // GB 50116-2013 §9.3: 70–80 % of the cable's rated temperature
      clear: 'cable_temp_clear_delta_c',
      clearIsDelta: true,
      signal: 'supervisory',
      severity: 'high',
      hold: SET,
      text: (v, at) => ({ zh: `线缆温度 ${fmt(v)} °C 超过报警值 ${fmt(at, 0)} °C`, en: `cable temperature ${fmt(v)} °C above the ${fmt(at, 0)} °C alarm setting` }),
    },
  ],
  {
    rule: 'electrical_alarm',
    signal: 'supervisory',
    severity: 'high',
    text: { zh: '电气火灾监控探测器报警', en: 'electrical fire monitor alarm' },
  },
);
