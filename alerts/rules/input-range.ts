import type { OutOfRange } from '../../contract/metrics.ts';
import type { RuleInput } from './types.ts';

/**
 * Out-of-range readings on the way to the rules (issue 11). The decoder takes a reading past its
 * plausible range at the limit on its danger side and keeps it out on the other
 * (contract/metrics.ts `outOfRange`); every rule sees `metrics` as usual, and the telemetry input
 * also carries the flagged readings with their raw values for the rules that judge the sensor
 * (device-trouble.ts). Kept as an extension of the telemetry input here, as CareRuleContext
 * extends RuleContext, so the shared `RuleInput` interface stays as it is; absent means none.
 */
export type TelemetryInput = Extract<RuleInput, { type: 'telemetry' }>;
export type RangedTelemetryInput = TelemetryInput & { readonly outOfRange?: readonly OutOfRange[] };

export function outOfRangeOf(input: TelemetryInput): readonly OutOfRange[] {
  return (input as RangedTelemetryInput).outOfRange ?? [];
}
