import type { Clock, ClockTimer } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import type { IncidentMessage } from '../../contract/incidents.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { homeKind, type RosterPerson } from '../../contract/registry.ts';
import { BUREAU_LEVEL } from '../access.ts';
import type { IncidentAuditEntry, IncidentChange } from '../incidents/book.ts';
import type { AttemptRecord, DeliveryReceipt, Notification, NotificationChannel, Recipient } from './channel.ts';
import { buildChannels, routedChannels, routesAt, uncoveredHomes, type NotifyConfig, type NotifyTarget } from './config.ts';
import { renderIncident } from './message.ts';
import { decidePages, owedPages, resumeState, type DecideOptions, type Jump, type LevelView, type NotifyRecord, type Page, type PageState, type PageView } from './paging.ts';
import { nextShiftChange, onDuty } from './roster.ts';
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
 * - opened → level 0 (and every level up to the incident's); escalated → every level above the
 *   highest already paged (a fire that goes straight to the bureau after 15 s also tells the director
 *   it skipped); re-alerted (a new alarm point on an acknowledged incident) → level 0 and the current
 *   level again.
 * - Keep trying until someone answers (paging.ts decides, this file sends): while unacknowledged the
 *   current level is paged again every route's `repeat.everyS` (default by severity, config.ts
 *   DEFAULT_REPEAT_S), at the bureau too; a routed rung with nobody on duty is passed over at once
 *   (audited `no_recipient` "… notified at once"); at a shift change the incoming people are paged;
 *   at start every open incident resumes from its audit (a recent page waits for its repeat, a lost
 *   one is sent at once, a rung the incident reached while nobody followed it is paged). One clock
 *   timer per incident, and one per failed page waiting to be sent again.
 * - A page that failed (its attempts exhausted) is sent again, a new round of attempts after
 *   REDELIVER_BASE_MS doubling to REDELIVER_MAX_MS, until delivered or no longer owed.
 * - An acknowledgement or resolution cancels what is pending (retries, rate-limit waits, the next
 *   repeat, a failed page's next round). Only a later escalation (an acknowledged fire left
 *   unconfirmed past the 180 s investigation, NFPA 72 §23.8.1.3; a `real_fire` confirmation) or a
 *   re-alert pages again; such an escalation's pages are owed until delivered, the incident
 *   resolved or re-alerted: nobody is left to acknowledge them.
 * - Channels and routes may be scoped to homes/providers (config.ts): a home's chat group gets only
 *   that home's alarms.
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
  /** Issue 15: the open incidents at start (lifecycle.openIncidents), resumed from their audit; absent = none. */
  readonly openIncidents?: () => readonly IncidentMessage[];
  /** An incident's audit (lifecycle.incidentAudit): when each level was last paged. */
  readonly incidentAudit?: (incidentId: string) => readonly IncidentAuditEntry[] | undefined;
  /** Jitter source for the back-off (tests pass a fixed one). */
  readonly random?: () => number;
}

export interface NotifierStats {
  readonly sent: number;
  readonly delivered: number;
  readonly failed: number;
  readonly cancelled: number;
  readonly noRecipient: number;
  /** Issue 15 "keep trying": repeat pages, empty rungs passed over, shift-change pages, incidents resumed at start. */
  readonly repeats: number;
  /** Repeats not sent because the same page was still being delivered. */
  readonly repeatsCoalesced: number;
  readonly jumps: number;
  readonly shiftPages: number;
  readonly resumed: number;
  /** Failed pages sent again (a new round of attempts), and pages owed at start sent again. */
  readonly redeliveries: number;
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
  /** The incident as last seen: repeats render its current text. */
  incident: IncidentMessage;
  /** Paging state (paging.ts); undefined until the incident first pages (held-back points only). */
  state: PageState | undefined;
  /** Aborted by an acknowledgement, a resolution or close: cancels pending retries and rate-limit waits. */
  controller: AbortController;
  /** The one timer per incident: the next repeat or shift change. */
  timer: ClockTimer | undefined;
}

const isLive = (incident: IncidentMessage): boolean => incident.points.some((p) => p.state !== 'resolved' && p.inhibited === undefined);

/**
 * A failed page (every attempt of the channel's policy used) is sent again after 1 min, doubling to
 * 5 min: a bureau endpoint down for longer than one page's ~30 s of retries still hears of the
 * escalation once it is back. Until then an acknowledged incident's escalation page failed once
 * and was never sent again (the log only said so).
 */
export const REDELIVER_BASE_MS = 60_000;
export const REDELIVER_MAX_MS = 300_000;

const notifyRecords = (entries: readonly IncidentAuditEntry[]): NotifyRecord[] =>
  entries
    .filter((e) => e.action === 'notified' || e.action === 'notify_failed')
    .map((e) => ({ ts: e.ts, level: e.escalationLevel ?? 0, ...(e.channel !== undefined ? { channel: e.channel } : {}), ...(e.recipient !== undefined ? { recipient: e.recipient } : {}), ...(e.attempt !== undefined ? { attempt: e.attempt } : {}), ...(e.status !== undefined ? { status: e.status } : {}) }));

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
  /** Notification ids being delivered (attempting, backing off or waiting for the rate limit). */
  const pending = new Map<string, number>();
  /** Failed pages waiting for their next round (by notification id): `cancel` clears the timer. */
  const waiting = new Map<string, { cancel: () => void; round: number }>();
  const counts = { sent: 0, delivered: 0, failed: 0, cancelled: 0, noRecipient: 0, repeats: 0, repeatsCoalesced: 0, jumps: 0, shiftPages: 0, resumed: 0, redeliveries: 0 };
  let started = false;
  let closed = false;

  function audit(incidentId: string, action: 'notified' | 'notify_failed', facts: Parameters<NotifierDeps['audit']>[2]): void {
    try {
      deps.audit(incidentId, action, facts);
    } catch (err) {
      logger.error({ err, incidentId, code: 'ALERTS_NOTIFY_AUDIT_FAILED' }, 'could not record a notification attempt');
    }
  }

  function targetOf(incident: IncidentMessage): NotifyTarget {
    const home = registry.home(incident.homeId);
    return home?.providerId !== undefined ? { homeId: incident.homeId, providerId: home.providerId } : { homeId: incident.homeId };
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

  /**
   * Whether a page at this rung reaches a person: someone is on duty and a channel routed here can
   * reach them (a group robot posts to their group; a personal channel needs their address or
   * phone). Until session 22 a rung whose people had no address (a roster may have such people)
   * counted as staffed: `no_address` was audited and nothing went out until the ladder's deadline
   * (15 min for medium), instead of the next rung at once as for nobody on duty (a helper's hunt).
   */
  function reachableAt(incident: IncidentMessage, level: number): boolean {
    const people = recipientsAt(incident, level);
    if (people.length === 0) return false;
    return routedChannels(config, incident.severity, level, targetOf(incident)).some((id) => {
      const channel = channels.get(id);
      if (channel === undefined) return false;
      return channel.audience === 'group' || people.some((p) => (p.addresses?.[id] ?? p.phone) !== undefined);
    });
  }

  /** What paging.ts decides from: routes (scoped to the incident's home/provider), who is on duty, the next shift change. */
  function viewOf(incident: IncidentMessage): PageView {
    const now = clock.now();
    const target = targetOf(incident);
    const levels: LevelView[] = [];
    for (let l = 0; l <= BUREAU_LEVEL; l++) levels.push({ channels: routesAt(config, incident.severity, l, target), staffed: reachableAt(incident, l) });
    const roster = rosters.roster(incident.homeId);
    const shiftChangeAt = roster === undefined ? undefined : nextShiftChange(roster, now, roster.timezone);
    return {
      now,
      level: incident.escalationLevel ?? 0,
      acknowledged: incident.acknowledgedAt !== undefined,
      silent: incident.state === 'resolved' || !isLive(incident),
      levels,
      onDuty: recipientsAt(incident, 0).map((p) => p.id),
      ...(shiftChangeAt !== undefined ? { shiftChangeAt } : {}),
    };
  }

  function notifyLevel(incident: IncidentMessage, page: Page, signal: AbortSignal, jumped: Jump | undefined): void {
    const { level } = page;
    const routed = routedChannels(config, incident.severity, level, targetOf(incident));
    const channelIds = page.channels === undefined ? routed : routed.filter((c) => page.channels?.includes(c));
    if (channelIds.length === 0) return;
    const all = recipientsAt(incident, level);
    const people = page.people === undefined ? all : all.filter((p) => page.people?.includes(p.id));
    // Family contacts are told with the level's first page only: they cannot acknowledge, so a page
    // every two minutes would only alarm them; nor at a shift change (not theirs).
    const family = page.people === undefined && page.reason !== 'repeat' ? familyFor(incident, level) : [];
    const repeat = page.reason === 'repeat';
    if (all.length === 0) {
      // Nobody on the roster for this rung: loud, audited; group chats are still posted to, and
      // the next routed rung is paged at once (paging.ts) unless this is the bureau.
      counts.noRecipient++;
      logger.error({ incidentId: incident.id, homeId: incident.homeId, level, code: 'ALERTS_NOTIFY_NO_RECIPIENT' }, 'no person on the roster for this ladder level');
      const reason = jumped !== undefined ? `nobody on duty at level ${level}: level ${jumped.to} notified at once` : `nobody on the roster for level ${level}`;
      audit(incident.id, 'notify_failed', { status: 'no_recipient', escalationLevel: level, reason });
    }
    const text = renderIncident(incident, registry, config.baseUrl, level);
    for (const channelId of channelIds) {
      const channel = channels.get(channelId);
      if (channel === undefined) continue; // validated at start
      const base = { incidentId: incident.id, homeId: incident.homeId, severity: incident.severity, level, ...text };
      if (channel.audience === 'group') {
        if (page.people !== undefined && people.length === 0) continue;
        const recipients: Recipient[] = people.map((p) => ({ personId: p.id, name: p.name, ...(p.phone !== undefined ? { phone: p.phone } : {}) }));
        dispatch(channel, { ...base, id: `${incident.id}:${level}:${channelId}`, recipients }, 'group', signal, repeat);
        continue;
      }
      for (const p of [...people, ...family]) {
        const address = p.addresses?.[channelId] ?? p.phone;
        if (address === undefined) {
          audit(incident.id, 'notify_failed', { channel: channelId, recipient: p.id, status: 'no_address', escalationLevel: level });
          continue;
        }
        const recipient: Recipient = { personId: p.id, name: p.name, address, ...(p.phone !== undefined ? { phone: p.phone } : {}) };
        dispatch(channel, { ...base, id: `${incident.id}:${level}:${channelId}:${p.id}`, recipients: [recipient] }, p.id, signal, repeat);
      }
    }
  }

  function dispatch(channel: NotificationChannel, msg: Notification, recipient: string, signal: AbortSignal, repeat = false, round = 1): void {
    // A repeat is not stacked on the same page still retrying or queued behind the rate limit
    // (many open incidents on one 20-a-minute robot would otherwise grow its queue without end).
    if (repeat && (pending.get(msg.id) ?? 0) > 0) {
      counts.repeatsCoalesced++;
      return;
    }
    // The same page sent now (a repeat) replaces a failed one's next round; its back-off goes on.
    const next = waiting.get(msg.id);
    if (next !== undefined) {
      next.cancel();
      round = Math.max(round, next.round);
    }
    pending.set(msg.id, (pending.get(msg.id) ?? 0) + 1);
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
          again(channel, msg, recipient, signal, round);
        }
      },
      (err: unknown) => {
        counts.failed++;
        logger.error({ err, incidentId: msg.incidentId, channel: channel.id, code: 'ALERTS_NOTIFY_FAILED' }, 'notification channel threw');
        again(channel, msg, recipient, signal, round);
      },
    );
    inFlight.add(p);
    void p.finally(() => {
      inFlight.delete(p);
      const n = (pending.get(msg.id) ?? 1) - 1;
      if (n > 0) pending.set(msg.id, n);
      else pending.delete(msg.id);
    });
  }

  /**
   * A failed page's next round (REDELIVER_BASE_MS doubling to REDELIVER_MAX_MS), until one is
   * delivered or the page is no longer owed: its alerting period's signal aborted (acknowledged,
   * resolved, re-alerted, close; at the next start the audit's `failed` makes it due at once).
   */
  function again(channel: NotificationChannel, msg: Notification, recipient: string, signal: AbortSignal, round: number): void {
    if (closed || signal.aborted) return;
    waiting.get(msg.id)?.cancel();
    const delayMs = Math.min(REDELIVER_MAX_MS, REDELIVER_BASE_MS * 2 ** (round - 1));
    const cancel = (): void => {
      clock.clearTimeout(timer);
      signal.removeEventListener('abort', cancel);
      if (waiting.get(msg.id)?.cancel === cancel) waiting.delete(msg.id);
    };
    const timer = clock.setTimeout(() => {
      cancel();
      if (closed || signal.aborted) return;
      counts.redeliveries++;
      dispatch(channel, msg, recipient, signal, false, round + 1);
    }, delayMs);
    signal.addEventListener('abort', cancel, { once: true });
    waiting.set(msg.id, { cancel, round: round + 1 });
    logger.warn({ incidentId: msg.incidentId, channel: channel.id, recipient, level: msg.level, round, inMs: delayMs, code: 'ALERTS_NOTIFY_REDELIVER' }, 'notification not delivered: sending it again later');
  }

  function disarm(t: Track): void {
    if (t.timer !== undefined) clock.clearTimeout(t.timer);
    t.timer = undefined;
  }

  /** Cancels what is pending for an incident (retries, rate-limit waits, the next repeat); `why` goes into the audit of each cancelled delivery. */
  function stop(t: Track | undefined, why: string): void {
    if (t === undefined) return;
    disarm(t);
    t.controller.abort(why);
  }

  /** Decides (paging.ts), sends the pages, audits the jumps and arms the next wake-up. */
  function run(t: Track, opts: DecideOptions = {}): void {
    disarm(t);
    if (closed) return;
    const d = decidePages(t.state, viewOf(t.incident), opts);
    t.state = d.state;
    if (d.pages.length > 0 && t.controller.signal.aborted) t.controller = new AbortController(); // a new alerting period
    for (const j of d.jumps) {
      counts.jumps++;
      // The empty rung's own page (when it is paged now) records the jump; otherwise record it here.
      if (!d.pages.some((p) => p.level === j.from && p.people === undefined)) audit(t.incident.id, 'notify_failed', { status: 'no_recipient', escalationLevel: j.from, reason: `nobody on duty at level ${j.from}: level ${j.to} notified at once` });
    }
    for (const p of d.pages) {
      if (p.reason === 'repeat') counts.repeats++;
      if (p.reason === 'shift_change') counts.shiftPages++;
      notifyLevel(t.incident, p, t.controller.signal, d.jumps.find((j) => j.from === p.level));
    }
    if (d.wakeAt !== undefined) {
      t.timer = clock.setTimeout(() => {
        t.timer = undefined;
        try {
          run(t);
        } catch (err) {
          logger.error({ err, incidentId: t.incident.id, code: 'ALERTS_NOTIFY_FAILED' }, 'notifier failed on a repeat');
        }
      }, Math.max(0, d.wakeAt - clock.now()));
    }
  }

  function handle(change: IncidentChange): void {
    const { incident, audit: entry } = change;
    let t = tracks.get(incident.id);
    if (incident.state === 'resolved') {
      stop(t, 'resolved');
      tracks.delete(incident.id);
      realerted.delete(incident.id);
      return;
    }
    if (entry.action === 'realerted' && !change.changed) {
      stop(t, 'realerted');
      realerted.add(incident.id);
      return;
    }
    if (!change.changed) return;
    if (t === undefined) {
      // First seen since start and not resumed then (held-back points only at start). Nothing paged
      // for it yet (its hold was lifted): it pages as a new one, not as already told and due only at
      // its next repeat. Otherwise its audit says what was paged, as at start.
      const paged = (deps.incidentAudit?.(incident.id) ?? []).some((e) => e.action === 'notified' || e.action === 'notify_failed');
      if (entry.action === 'opened' || !paged) {
        t = { incident, state: undefined, controller: new AbortController(), timer: undefined };
        tracks.set(incident.id, t);
      } else t = adopt(incident);
    }
    t.incident = incident;
    if (entry.action === 'acknowledged') {
      stop(t, `acknowledged by ${incident.acknowledgedBy ?? 'someone'}`);
      return;
    }
    if (realerted.delete(incident.id) && incident.acknowledgedAt === undefined && isLive(incident)) {
      run(t, { realert: true });
      return;
    }
    run(t);
  }

  /**
   * A track for an incident met mid-life (at start: a restart, a home taken over; or first seen since),
   * its paging state rebuilt from its audit (paging.ts resumeState), and the pages its audit shows
   * cut short or failed in the current alerting period sent again (owedPages). An acknowledged
   * incident is adopted too: a rung it was escalated to after the acknowledgement (a missed confirm
   * deadline, `real_fire`), paged or not when alerts stopped, is still owed.
   */
  function adopt(incident: IncidentMessage): Track {
    const audit = deps.incidentAudit?.(incident.id) ?? [];
    const acknowledged = incident.acknowledgedAt !== undefined;
    // The current alerting period begins at the acknowledgement (everything paged up to its level was
    // answered then) or at the last re-alert.
    const from = audit.findLastIndex((e) => e.action === (acknowledged ? 'acknowledged' : 'realerted'));
    const answered = acknowledged ? (audit[from]?.escalationLevel ?? 0) : -1;
    const view = viewOf(incident);
    const state = resumeState(view, notifyRecords(audit), answered);
    const t: Track = { incident, state, controller: new AbortController(), timer: undefined };
    tracks.set(incident.id, t);
    for (const p of owedPages(view, state, notifyRecords(audit.slice(from + 1)), answered)) {
      counts.redeliveries++;
      notifyLevel(incident, p, t.controller.signal, undefined);
    }
    return t;
  }

  /** Issue 15: open incidents found at start (a restart, a home taken over) resume their paging from their audit. */
  function resume(): void {
    for (const incident of deps.openIncidents?.() ?? []) {
      if (tracks.has(incident.id) || incident.state === 'resolved' || !isLive(incident)) continue;
      const t = adopt(incident);
      counts.resumed++;
      run(t);
    }
  }

  return {
    async start() {
      started = true;
      for (const homeId of uncoveredHomes(config, registry.site.homes.map((h) => (h.providerId !== undefined ? { homeId: h.id, providerId: h.providerId } : { homeId: h.id })))) {
        logger.error({ homeId, code: 'ALERTS_NOTIFY_UNCOVERED' }, 'no level-0 route carries this home\'s critical alarms (channel/route scopes)');
      }
      resume();
      logger.info({ channels: [...channels.keys()], routes: config.routes.length, resumed: counts.resumed }, 'notifier started');
    },
    async close() {
      if (closed) return;
      closed = true;
      // Pending deliveries and repeats are cancelled (and audited so); start() resumes them from the audit.
      for (const t of tracks.values()) stop(t, 'shutdown');
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
