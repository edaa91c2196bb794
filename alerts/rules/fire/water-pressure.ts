import { fmt } from './signals.ts';
import { levelRule } from './level-rule.ts';

/**
 * Fire-water main / sprinkler riser pressure: a protection system off-normal, so a supervisory
 * signal (NFPA 72 §3.3 supervisory signal; GB 50116-2013 监管报警), self-restoring.
 * Pressure dips for seconds when a pump starts or a valve is exercised, so the condition must
 * persist 30 s over two readings (telemetry every 30 s) and be normal 60 s before it clears.
 */
const HOLD = { setCount: 2, setHoldMs: 30_000, clearHoldMs: 60_000 } as const;

export const waterPressureRule = levelRule('fire_water_pressure', ['water_pressure_sensor'], [
  {
    rule: 'water_pressure_low',
    metric: 'water_pressure_mpa',
    direction: 'below',
    set: 'water_low_mpa', // 0.15 MPa, GB 50974-2014 §5.2.2
    clear: 'water_low_clear_mpa',
    signal: 'supervisory',
    severity: 'high',
    hold: HOLD,
    text: (v, at) => ({ zh: `消防水压过低 ${fmt(v, 3)} MPa（低于 ${fmt(at, 2)} MPa）`, en: `fire-water pressure low ${fmt(v, 3)} MPa (below ${fmt(at, 2)} MPa)` }),
  },
  {
    rule: 'water_pressure_high',
    metric: 'water_pressure_mpa',
    direction: 'above',
    set: 'water_high_mpa', // 1.2 MPa, GB 50974-2014 §6.2.1
    clear: 'water_high_clear_mpa',
    // §6.2.1 zones a system when the working pressure at the sprinklers is greater than (大于)
    // 1.20 MPa: 1.2 MPa itself is within the limit, so raised above it and cleared at or below
    // 1.1 MPa (docs/rules.md). It was raised at 1.2 and cleared only below 1.1.
    strict: true,
    signal: 'supervisory',
    severity: 'medium',
    hold: HOLD,
    text: (v, at) => ({ zh: `消防水压过高 ${fmt(v, 3)} MPa（高于 ${fmt(at, 2)} MPa）`, en: `fire-water pressure high ${fmt(v, 3)} MPa (above ${fmt(at, 2)} MPa)` }),
  },
]);
