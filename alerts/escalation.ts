import type { AlertMessage, Severity } from '../contract/payloads.ts';
import type { Home } from '../contract/registry.ts';
import { BUREAU_LEVEL } from './access.ts';

/**
 * When an open alert next needs the platform to act, computed only from the alert itself (its
 * timestamps, level and acknowledgement) so that after a restart every deadline re-arms from the
 * stored message: nothing re-fires as new and nothing is forgotten (issue 3, "Restarts").
 */

/** NFPA 72 §23.8.1.3 positive alarm sequence: acknowledge within 15 s, investigate within 180 s. */
export const PAS_ACK_DEADLINE_S = 15;
export const PAS_CONFIRM_DEADLINE_S = 180;

export interface LadderStep {
  /** Seconds after raising an unacknowledged alert before it goes to the home director (level 1). */
  readonly directorAfterS?: number;
  /** Seconds after raising an unacknowledged alert before it goes to the bureau (level 2). */
  readonly bureauAfterS?: number;
  /** Reminder period while nobody has acknowledged; absent = no reminders. */
  readonly remindEveryS?: number;
}

export interface EscalationPolicy {
  readonly bySeverity: Readonly<Record<Severity, LadderStep>>;
}

/**
 * carewatch's defaults. Critical care emergencies (NEWS2 ≥ 7, a fall) reach the director within a
 * minute and the bureau within three, mirroring the fire timeline; lower severities climb slower.
 */
export const DEFAULT_POLICY: EscalationPolicy = {
  bySeverity: {
    critical: { directorAfterS: 60, bureauAfterS: 180, remindEveryS: 30 },
    high: { directorAfterS: 300, bureauAfterS: 900, remindEveryS: 60 },
    // Issue 3: *anything* unacknowledged climbs the whole ladder, only more slowly. An unverified
    // smoke pre-alarm or a supervisory signal (medium) reaches the bureau after an hour; a trouble
    // signal (low: a low battery) reaches the director after half a shift and the bureau after a day.
    medium: { directorAfterS: 900, bureauAfterS: 3600, remindEveryS: 300 },
    low: { directorAfterS: 4 * 3600, bureauAfterS: 24 * 3600, remindEveryS: 1800 },
  },
};

export type DueAction =
  | { readonly kind: 'escalate'; readonly at: number; readonly level: number; readonly reason: EscalationReason }
  | { readonly kind: 'remind'; readonly at: number }
  /** An acknowledged trouble that has not cleared sounds again (TROUBLE_RESOUND_S). */
  | { readonly kind: 'resound'; readonly at: number };

/**
 * A silenced trouble signal resounds: NFPA 72 §10.14.9.1 (2019) has a trouble signal that was
 * silenced sound again at intervals of 24 h or less while the fault lasts, so a dead detector or a
 * flat battery acknowledged on one night is not forgotten for a month. Acknowledged alarms and care
 * alerts do not resound (a person is on them and closes them); unacknowledged ones are reminded by
 * `remindEveryS`.
 */
export const TROUBLE_RESOUND_S = 24 * 3600;

export type EscalationReason = 'ack_deadline' | 'confirm_deadline' | 'ladder' | 'confirmed_fire' | 'emergency' | 'real_fire';

/** The NFPA 72 positive alarm sequence applies to fire alarm signals (not supervisory or trouble). */
export function usesPositiveAlarmSequence(alert: Pick<AlertMessage, 'category' | 'signal' | 'severity'>): boolean {
  // Only a fire alarm proper (verified smoke, heat, confirmed fire, high gas: severity critical)
  // runs the NFPA 72 positive alarm sequence to call 119. An unverified smoke pre-alarm (medium) or
  // a low gas alarm (high) climbs the ordinary ladder instead of reaching the bureau in 15 s.
  return alert.category === 'fire' && alert.signal === 'alarm' && alert.severity === 'critical';
}

export function homeDeadlines(home: Home | undefined): { ackS: number; confirmS: number } {
  return { ackS: home?.ackDeadlineS ?? PAS_ACK_DEADLINE_S, confirmS: home?.confirmDeadlineS ?? PAS_CONFIRM_DEADLINE_S };
}

/** What the countdown reads: an alert, or an incident (issue 11) seen as one (its kind is its category). */
export type EscalationSubject = Pick<AlertMessage, 'state' | 'escalationLevel' | 'acknowledgedAt' | 'confirmation' | 'severity' | 'category' | 'signal' | 'raisedAt' | 'ts'>;

/** The earliest action due for an open alert or incident, or undefined when nothing is pending. */
export function nextDue(alert: EscalationSubject, policy: EscalationPolicy, home: Home | undefined): DueAction | undefined {
  if (alert.state === 'resolved') return undefined;
  const level = alert.escalationLevel ?? 0;
  const acked = alert.acknowledgedAt !== undefined;
  const candidates: DueAction[] = [];
  const step = policy.bySeverity[alert.severity];
  if (usesPositiveAlarmSequence(alert)) {
    const { ackS, confirmS } = homeDeadlines(home);
    if (level < BUREAU_LEVEL) {
      if (!acked) candidates.push({ kind: 'escalate', at: alert.raisedAt + ackS * 1000, level: BUREAU_LEVEL, reason: 'ack_deadline' });
      else if (alert.confirmation === undefined) {
        // NFPA 72: the 180 s investigation phase starts at acknowledgement.
        candidates.push({ kind: 'escalate', at: (alert.acknowledgedAt ?? alert.raisedAt) + confirmS * 1000, level: BUREAU_LEVEL, reason: 'confirm_deadline' });
      }
    }
  } else if (!acked) {
    if (level < 1 && step.directorAfterS !== undefined) candidates.push({ kind: 'escalate', at: alert.raisedAt + step.directorAfterS * 1000, level: 1, reason: 'ladder' });
    else if (level < BUREAU_LEVEL && step.bureauAfterS !== undefined) {
      candidates.push({ kind: 'escalate', at: alert.raisedAt + step.bureauAfterS * 1000, level: BUREAU_LEVEL, reason: 'ladder' });
    }
  }
  // Reminders repeat until someone acts: the next one is due a period after the last change.
  const remindS = usesPositiveAlarmSequence(alert) ? (step.remindEveryS ?? PAS_ACK_DEADLINE_S) : step.remindEveryS;
  if (!acked && remindS !== undefined) candidates.push({ kind: 'remind', at: alert.ts + remindS * 1000 });
  if (acked && alert.signal === 'trouble') candidates.push({ kind: 'resound', at: (alert.acknowledgedAt ?? alert.ts) + TROUBLE_RESOUND_S * 1000 });
  let best: DueAction | undefined;
  for (const c of candidates) if (best === undefined || c.at < best.at || (c.at === best.at && c.kind === 'escalate')) best = c;
  return best;
}
