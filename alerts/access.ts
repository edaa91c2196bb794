import type { AlertMessage } from '../contract/payloads.ts';
import type { UserRole } from '../contract/registry.ts';

/** Who is acting: taken from a verified token, never from the request body. */
export interface Actor {
  readonly username: string;
  readonly role: UserRole;
  readonly homeId?: string;
}

/** Bureau officers and admins oversee every home; staff and directors only their own. */
export function seesAllHomes(actor: Actor): boolean {
  return actor.role === 'bureau' || actor.role === 'admin';
}

export function canSeeHome(actor: Actor, homeId: string): boolean {
  return seesAllHomes(actor) || actor.homeId === homeId;
}

export function canSeeAlert(actor: Actor, alert: Pick<AlertMessage, 'homeId'>): boolean {
  return canSeeHome(actor, alert.homeId);
}

/** Escalation level at which an alert is handed to the bureau (ladder: 0 duty staff, 1 home director, 2 bureau). */
export const BUREAU_LEVEL = 2;

/**
 * Whether the bureau's live stream carries this alert: every fire alert (issue 2: the bureau room
 * receives fire alerts of every home) and anything escalated to the bureau.
 */
export function goesToBureau(alert: Pick<AlertMessage, 'category' | 'escalationLevel'>): boolean {
  return alert.category === 'fire' || (alert.escalationLevel ?? 0) >= BUREAU_LEVEL;
}
