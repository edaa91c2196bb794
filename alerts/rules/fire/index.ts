import type { Rule } from '../types.ts';
import { deviceTroubleRule } from './device-trouble.ts';
import { electricalRule } from './electrical.ts';
import { fireDetectionRule } from './fire-detection.ts';
import { gasRule } from './gas.ts';
import { supervisionRule } from './supervision.ts';
import { waterPressureRule } from './water-pressure.ts';

export { deviceTroubleRule } from './device-trouble.ts';
export { electricalRule } from './electrical.ts';
export { fireDetectionRule } from './fire-detection.ts';
export { gasRule } from './gas.ts';
export { supervisionRule } from './supervision.ts';
export { waterPressureRule } from './water-pressure.ts';
export { FIRE_DEFAULTS, threshold, type FireThreshold } from './thresholds.ts';

/**
 * The fire, supervisory and trouble rules, in evaluation order. Each is a pure
 * `evaluate(input, state, ctx)`; states are plain JSON. docs/rules.md describes them.
 */
export function fireRules(): Rule[] {
  return [fireDetectionRule, electricalRule, gasRule, waterPressureRule, deviceTroubleRule, supervisionRule];
}
