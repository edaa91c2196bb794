import type { Clock } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import type { IncidentMessage } from '../../contract/incidents.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { homeKind, type RosterPerson } from '../../contract/registry.ts';
import { BUREAU_LEVEL } from '../access.ts';
import type { IncidentAuditEntry, IncidentChange } from '../incidents/book.ts';
import type { AttemptRecord, DeliveryReceipt, Notification, NotificationChannel, Recipient } from './channel.ts';
import { buildChannels, routedChannels, type NotifyConfig } from './config.ts';
import { renderIncident } from './message.ts';
import { onDuty } from './roster.ts';
import type { RosterStore } from './roster-store.ts';

/**
 * The notifier (issue 15): follows the incidents' change sink and reaches the people the
 * escalation ladder addresses now — the staff on duty by the roster at level 0, the home's
 * directors at 1, the bureau's contacts at 2; for a household (issue 15) the home-care provider's
 * caregiver on duty and the family contacts (per their severities) at 0, the provider's managers
 * at 1, the bureau at 2 — on the channels the routing configuration names for
 * the incident's severity at that level. Every attempt is written to the incident's audit
 * (`notified` when delivered, `notify_failed` with its status otherwise).
 *
 * - opened → level 0; escalated → every level above the highest already notified (a fire that goes
 *   straight to the bureau after 15 s also tells the director it skipped); re-alerted (a new alarm
 *   point on an acknowledged incident) → level 0 and the current level again.
 * - An acknowledgement or resolution cancels what is pending (retries, rate-limit waits) and nothing
 *   more is sent for that alerting period. Only a later escalation (an acknowledged fire left
 *   unconfirmed past the 180 s investigation, NFPA 72 §23.8.1.3) or a re-alert notifies again.
 * - Reminders are not sent as notifications: the retries already keep trying each person, and a
 *   chat group paged every 30 s would be muted by its members.
 */

export interface NotifierDeps {
  readonly config: NotifyConfig;
  readonly registry: RegistryIndex;
  readonly rosters: RosterStore;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Appends an attempt to the incident's audit (lifecycle.noteIncidentNotification). */
  readonly audit: (incidentId: string, action: 'notified' | 'notify_failed', facts: Pick<IncidentAuditEntry, 'channel' | 'recipient' | 'attempt' | 'status' | 'reason' | 'escalationLevel'>) => void;
  /** Built from config unless given (tests). */
  readonly channels?: ReadonlyMap<string, NotificationChannel>;
  /** Jitter source for the back-off (tests pass a fixed one). */
  readonly random?: () => number;
}

export interface NotifierStats {
  readonly sent: number;
  readonly delivered: number;
  readonly failed: number;
  readonly cancelled: number;
  readonly noRecipient: number;
}

export interface Notifier {
  start(): Promise<void>;
  close(): Promise<void>;
  /** The incidents' change sink. */
  onIncidentChange(change: IncidentChange): void;
  stats(): NotifierStats;
}

/** An attempt's outcome in words: `HTTP 500`, `errcode 93000 invalid webhook url`, `timeout after 10000 ms`. */
function reasonOf(a: AttemptRecord): string {
  const http = a.httpStatus !== undefined && a.httpStatus !== 200 ? `HTTP ${a.httpStatus}` : '';
  const parts = [a.errcode !== undefined && a.errcode !== 0 ? `errcode ${a.errcode}` : http, a.detail ?? ''];
  return [...new Set(parts.filter((x) => x !== ''))].join(' ');
}

interface Track {
  /** Highest ladder level notified in this alerting period. */
  level: number;
  controller: AbortController;
}

export function createNotifier(deps: NotifierDeps): Notifier {
  const { config, registry, rosters, clock } = deps;
  const logger = deps.logger.child({ component: 'notifier' });
  const channels = deps.channels ?? buildChannels(config, clock, deps.random);
  const tracks = new Map<string, Track>();
  /**
   * Incidents re-alerted whose point has not been committed yet: the book records `realerted`
   * (audit only) before the new point's own change, so the text names the new room only then.
   */
  const realerted = new Set<string>();
  const inFlight = new Set<Promise<unknown>>();
  const counts = { sent: 0, delivered: 0, failed: 0, cancelled: 0, noRecipient: 0 };
  let started = false;
  let closed = false;

  function audit(incidentId: string, action: 'notified' | 'notify_failed', facts: Parameters<NotifierDeps['audit']>[2]): void {
    try {
      deps.audit(incidentId, action, facts);
    } catch (err) {
      logger.error({ err, incidentId, code: 'ALERTS_NOTIFY_AUDIT_FAILED' }, 'could not record a notification attempt');
    }
  }

  function recipientsAt(incident: IncidentMessage, level: number): readonly RosterPerson[] {
    if (level >= BUREAU_LEVEL) return rosters.bureau();
    const roster = rosters.roster(incident.homeId);
    if (roster === undefined) return [];
    if (level === 1) return roster.directors;
    return onDuty(roster, clock.now(), roster.timezone);
  }

  /**
   * Issue 15: a household's family contacts who asked to hear of this severity. They are told at
   * level 0, beside the provider's caregiver on duty, on personal channels only (a group robot
   * posts into the provider's own chat group, where the family is not).
   */
  function familyFor(incident: IncidentMessage, level: number): readonly RosterPerson[] {
    if (level !== 0) return [];
    const home = registry.home(incident.homeId);
    if (home === undefined || homeKind(home) !== 'household') return [];
    return (home.familyContacts ?? [])
      .filter((c) => c.severities.includes(incident.severity))
      .map((c) => ({ id: c.id, name: c.name, role: `family: ${c.relation}`, ...(c.phone !== undefined ? { phone: c.phone } : {}), ...(c.addresses !== undefined ? { addresses: c.addresses } : {}) }));
  }

  function notifyLevel(incident: IncidentMessage, level: number, signal: AbortSignal): void {
    const channelIds = routedChannels(config, incident.severity, level);
    if (channelIds.length === 0) return;
    const people = recipientsAt(incident, level);
    const family = familyFor(incident, level);
    if (people.length === 0) {
      // Nobody on the roster for this rung: loud, audited; group chats are still posted to.
      counts.noRecipient++;
      logger.error({ incidentId: incident.id, homeId: incident.homeId, level, code: 'ALERTS_NOTIFY_NO_RECIPIENT' }, 'no person on the roster for this ladder level');
      audit(incident.id, 'notify_failed', { status: 'no_recipient', escalationLevel: level, reason: `nobody on the roster for level ${level}` });
    }
    const text = renderIncident(incident, registry, config.baseUrl, level);
    for (const channelId of channelIds) {
      const channel = channels.get(channelId);
      if (channel === undefined) continue; // validated at start
      const base = { incidentId: incident.id, homeId: incident.homeId, severity: incident.severity, level, ...text };
      if (channel.audience === 'group') {
        const recipients: Recipient[] = people.map((p) => ({ personId: p.id, name: p.name, ...(p.phone !== undefined ? { phone: p.phone } : {}) }));
        dispatch(channel, { ...base, id: `${incident.id}:${level}:${channelId}`, recipients }, 'group', signal);
        continue;
      }
      for (const p of [...people, ...family]) {
        const address = p.addresses?.[channelId] ?? p.phone;
        if (address === undefined) {
          audit(incident.id, 'notify_failed', { channel: channelId, recipient: p.id, status: 'no_address', escalationLevel: level });
          continue;
        }
        const recipient: Recipient = { personId: p.id, name: p.name, address, ...(p.phone !== undefined ? { phone: p.phone } : {}) };
        dispatch(channel, { ...base, id: `${incident.id}:${level}:${channelId}:${p.id}`, recipients: [recipient] }, p.id, signal);
      }
    }
  }

  function dispatch(channel: NotificationChannel, msg: Notification, recipient: string, signal: AbortSignal): void {
    counts.sent++;
    let lastStatus: AttemptRecord['status'] | undefined;
    const onAttempt = (a: AttemptRecord): void => {
      lastStatus = a.status;
      audit(msg.incidentId, a.status === 'delivered' ? 'notified' : 'notify_failed', {
        channel: channel.id,
        recipient,
        attempt: a.attempt,
        status: a.status,
        escalationLevel: msg.level,
        ...(reasonOf(a) !== '' ? { reason: reasonOf(a) } : {}),
      });
    };
    const p = channel.send(msg, { signal, onAttempt }).then(
      (r: DeliveryReceipt) => {
        if (r.status === 'delivered') counts.delivered++;
        else if (r.status === 'cancelled') {
          counts.cancelled++;
          // Cancelled while waiting (back-off or rate limit): the receipt is the only record of it.
          if (lastStatus !== 'cancelled') audit(msg.incidentId, 'notify_failed', { channel: channel.id, recipient, attempt: r.attempts, status: 'cancelled', escalationLevel: msg.level, reason: typeof signal.reason === 'string' ? signal.reason : 'cancelled' });
        } else {
          counts.failed++;
          logger.error({ incidentId: msg.incidentId, channel: channel.id, recipient, attempts: r.attempts, detail: r.detail, code: 'ALERTS_NOTIFY_FAILED' }, 'notification not delivered');
        }
      },
      (err: unknown) => {
        counts.failed++;
        logger.error({ err, incidentId: msg.incidentId, channel: channel.id, code: 'ALERTS_NOTIFY_FAILED' }, 'notification channel threw');
      },
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }

  /** Cancels what is pending for an incident; `why` goes into the audit of each cancelled delivery. */
  function stop(id: string, why: string): void {
    tracks.get(id)?.controller.abort(why);
  }

  function handle(change: IncidentChange): void {
    const { incident, audit: entry } = change;
    const live = incident.points.some((p) => p.state !== 'resolved' && p.inhibited === undefined);
    if (incident.state === 'resolved') {
      stop(incident.id, 'resolved');
      tracks.delete(incident.id);
      realerted.delete(incident.id);
      return;
    }
    if (entry.action === 'realerted' && !change.changed) {
      stop(incident.id, 'realerted');
      realerted.add(incident.id);
      return;
    }
    if (!change.changed) return;
    if (realerted.delete(incident.id) && incident.acknowledgedAt === undefined && live) {
      const level = incident.escalationLevel ?? 0;
      const t: Track = { level, controller: new AbortController() };
      tracks.set(incident.id, t);
      notifyLevel(incident, 0, t.controller.signal);
      if (level > 0) notifyLevel(incident, level, t.controller.signal);
      return;
    }
    switch (entry.action) {
      case 'opened': {
        const t: Track = { level: incident.escalationLevel ?? 0, controller: new AbortController() };
        tracks.set(incident.id, t);
        // An incident of held-back points only (inhibited) raises no notification of its own.
        if (!live) return;
        for (let l = 0; l <= t.level; l++) notifyLevel(incident, l, t.controller.signal);
        return;
      }
      case 'acknowledged':
        stop(incident.id, `acknowledged by ${incident.acknowledgedBy ?? 'someone'}`);
        return;
      case 'escalated': {
        const level = incident.escalationLevel ?? 0;
        let t = tracks.get(incident.id);
        if (t === undefined || t.controller.signal.aborted) {
          // First seen since a restart, or acknowledged before: a new escalation is a new alerting period.
          const from = t === undefined ? level - 1 : t.level;
          t = { level: from, controller: new AbortController() };
          tracks.set(incident.id, t);
        }
        if (level <= t.level || !live) return;
        for (let l = t.level + 1; l <= level; l++) notifyLevel(incident, l, t.controller.signal);
        t.level = level;
        return;
      }
      default:
        return;
    }
  }

  return {
    async start() {
      started = true;
      logger.info({ channels: [...channels.keys()], routes: config.routes.length }, 'notifier started');
    },
    async close() {
      if (closed) return;
      closed = true;
      // Pending deliveries are cancelled (and audited so); they are not resumed after a restart.
      for (const t of tracks.values()) t.controller.abort('shutdown');
      await Promise.allSettled([...inFlight]);
    },
    onIncidentChange(change) {
      if (!started || closed) return;
      try {
        handle(change);
      } catch (err) {
        logger.error({ err, incidentId: change.incident.id, code: 'ALERTS_NOTIFY_FAILED' }, 'notifier failed on an incident change');
      }
    },
    stats: () => ({ ...counts }),
  };
}
