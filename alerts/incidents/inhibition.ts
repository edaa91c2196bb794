import type { AlertCategory, InhibitionReason, SignalClass } from '../../contract/payloads.ts';

/**
 * Inhibition (issue 11), shaped as Alertmanager's `inhibit_rules` (prometheus/alertmanager
 * inhibit/inhibit.go): a rule is data — source matchers, target matchers and the attributes that
 * must be equal on both. An inhibited alert is not hidden: it is still raised, journaled and
 * listed in REST and in its incident, with the reason kept (`AlertMessage.inhibited`), but it gets
 * no notification, no card and no countdown of its own (docs/alerts.md "Inhibition").
 *
 * Pure: no clock, no I/O; the lifecycle hands in the open alerts of a home.
 */

/** The alert attributes a rule matches on (the alert's "labels"). */
export interface InhibitionSubject {
  readonly id: string;
  readonly homeId: string;
  readonly category: AlertCategory;
  readonly signal: SignalClass;
  readonly rule: string;
  readonly roomId?: string;
  readonly deviceId?: string;
  readonly residentId?: string;
}

export interface Matcher {
  readonly category?: readonly AlertCategory[];
  readonly signal?: readonly SignalClass[];
  readonly rule?: readonly string[];
  readonly notRule?: readonly string[];
}

export type EqualLabel = 'homeId' | 'roomId' | 'deviceId' | 'residentId';

export interface InhibitionRule {
  readonly reason: InhibitionReason;
  readonly source: Matcher;
  readonly target: Matcher;
  /** Attributes that must be present and equal on source and target (Alertmanager `equal`). */
  readonly equal: readonly EqualLabel[];
}

/**
 * Fire pre-alarm rules: an early warning before alarm verification (smoke above the pre-alarm
 * level, alerts/rules/fire/fire-detection.ts). A pre-alarm is alarm-class but not a fire alarm point.
 */
export const PREALARM_RULES: readonly string[] = ['smoke_prealarm'];

/** A fire alarm point: an alarm-class fire signal that is not a pre-alarm (detector alarm, confirmed fire, smoke, heat, gas alarm). */
export function isFireAlarmPoint(a: Pick<InhibitionSubject, 'category' | 'signal' | 'rule'>): boolean {
  return a.category === 'fire' && a.signal === 'alarm' && !PREALARM_RULES.includes(a.rule);
}

export const INHIBITION_RULES: readonly InhibitionRule[] = [
  {
    // A whole home silent (its gateway or network died) explains each of its devices being silent:
    // the one home alert stands for them (alerts/rules/fire/supervision.ts).
    reason: 'home_comm_loss',
    source: { rule: ['home_comm_loss'] },
    target: { rule: ['device_offline'] },
    equal: ['homeId'],
  },
  {
    // A panel in alarm for a room does not also announce that room's pre-alarms: the alarm says more.
    reason: 'fire_in_room',
    source: { category: ['fire'], signal: ['alarm'], notRule: PREALARM_RULES },
    target: { rule: PREALARM_RULES },
    equal: ['homeId', 'roomId'],
  },
];

export function matches(m: Matcher, a: InhibitionSubject): boolean {
  return (
    (m.category === undefined || m.category.includes(a.category)) &&
    (m.signal === undefined || m.signal.includes(a.signal)) &&
    (m.rule === undefined || m.rule.includes(a.rule)) &&
    (m.notRule === undefined || !m.notRule.includes(a.rule))
  );
}

export interface Inhibition {
  readonly reason: InhibitionReason;
  /** The alerts that hold this one back (Alertmanager keeps their fingerprints the same way). */
  readonly by: readonly string[];
}

/**
 * Whether `target` is held back by one of the open `sources` (the target itself and other
 * inhibited alerts never count as sources, so two alerts cannot hold each other back). The first
 * rule that applies wins; its reason is what the screen shows.
 */
export function inhibitionOf(target: InhibitionSubject, sources: readonly (InhibitionSubject & { readonly inhibited?: unknown })[], rules: readonly InhibitionRule[] = INHIBITION_RULES): Inhibition | undefined {
  for (const rule of rules) {
    if (!matches(rule.target, target)) continue;
    const by: string[] = [];
    for (const s of sources) {
      if (s.id === target.id || s.inhibited !== undefined || !matches(rule.source, s)) continue;
      if (rule.equal.every((l) => target[l] !== undefined && target[l] === s[l])) by.push(s.id);
    }
    if (by.length > 0) return { reason: rule.reason, by };
  }
  return undefined;
}
