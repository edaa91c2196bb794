import type { AlertMessage } from '../contract/payloads.ts';
import type { UserRole } from '../contract/registry.ts';

/** Who is acting: taken from a verified token, never from the request body. */
export interface Actor {
  readonly username: string;
  readonly role: UserRole;
  readonly homeId?: string;
  /** Role `provider` (issue 15): the home-care provider the user works for. */
  readonly providerId?: string;
  /**
   * Role `provider`: the households of that provider, resolved from the registry when the token is
   * verified (never from the token itself), so a household moved to another provider is cut off at once.
   */
  readonly homeIds?: readonly string[];
}

/** Bureau officers and admins oversee every home; staff and directors only their own; a provider's users only its households. */
export function seesAllHomes(actor: Actor): boolean {
  return actor.role === 'bureau' || actor.role === 'admin';
}

export function canSeeHome(actor: Actor, homeId: string): boolean {
  if (seesAllHomes(actor)) return true;
  if (actor.role === 'provider') return actor.homeIds?.includes(homeId) === true;
  return actor.homeId === homeId;
}

/** The homes an actor that does not see all homes may see (its own home, or its provider's households). */
export function ownHomes(actor: Actor): readonly string[] {
  if (actor.role === 'provider') return actor.homeIds ?? [];
  return actor.homeId !== undefined ? [actor.homeId] : [];
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
