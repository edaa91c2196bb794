import type { Rule } from '../types.ts';
import { createBedRule } from './bed-rule.ts';
import type { BedRuleConfig, ContinenceRuleConfig, News2RuleConfig, NoDataRuleConfig, RepositionRuleConfig } from './config.ts';
import { createContinenceRule } from './continence-rule.ts';
import { createNews2Rule } from './news2-rule.ts';
import { createNoDataRule } from './no-data-rule.ts';
import { createRepositionRule } from './reposition-rule.ts';
import { createSosRule } from './sos-rule.ts';
import { createVitalsRule, type VitalsRuleOptions } from './vitals-rule.ts';

/**
 * The care rules of issue 4 (docs/rules.md). Pure: the engine feeds each rule the device messages,
 * care actions and ticks its `accepts` names, persists each rule's JSON state, and may pass a
 * `CareRuleContext` (a RuleContext with learned `baselines`) as the context.
 */

export interface CareRulesOptions {
  readonly news2?: Partial<News2RuleConfig>;
  readonly vitals?: VitalsRuleOptions;
  readonly bed?: Partial<BedRuleConfig>;
  readonly continence?: Partial<ContinenceRuleConfig>;
  readonly reposition?: Partial<RepositionRuleConfig>;
  readonly noData?: Partial<NoDataRuleConfig>;
}

export function careRules(opts: CareRulesOptions = {}): Rule[] {
  // Each rule is typed by its own state; the engine treats state as opaque JSON.
  return [
    // First: a call for help is the most urgent care input.
    createSosRule(),
    createNews2Rule(opts.news2),
    createVitalsRule(opts.vitals),
    createBedRule(opts.bed),
    createContinenceRule(opts.continence),
    createRepositionRule(opts.reposition),
    createNoDataRule(opts.noData),
  ] as Rule[];
}

export * from './news2.ts';
export * from './config.ts';
export { type CareRuleContext, type LearnedLimit, localMinuteOfDay, inLocalWindow } from './care-context.ts';
export { DEFAULT_VITAL_CHECKS, IMPLAUSIBLE, IMPLAUSIBLE_MS, resolveCheck, type VitalCheck, type VitalMetric } from './vital-checks.ts';
export { createNews2Rule, news2Scores, NEWS2_RULE_ID, NEWS2_SIGNAL_RULE, type News2Score, type News2State } from './news2-rule.ts';
export { createVitalsRule, VITALS_RULE_ID, IMPLAUSIBLE_RULE, type VitalsState, type VitalsRuleOptions } from './vitals-rule.ts';
export { createBedRule, BED_RULE_ID, type BedRuleState } from './bed-rule.ts';
export { createContinenceRule, CONTINENCE_RULE_ID, CONTINENCE_SIGNAL_RULE, type ContinenceState } from './continence-rule.ts';
export { createRepositionRule, REPOSITION_RULE_ID, TURN_SIGNAL_RULE, type RepositionState } from './reposition-rule.ts';
export { createNoDataRule, NO_DATA_RULE_ID, type NoDataState } from './no-data-rule.ts';
export { createSosRule, sosSignals, SOS_RULE_ID, SOS_SIGNAL_RULE, SOS_KINDS, type SosState } from './sos-rule.ts';
