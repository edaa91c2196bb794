import { HomeIndexedMap } from '../home-index.ts';
import { compact } from '../compact.ts';
import { randomUUID } from 'node:crypto';
import type { Clock, ClockTimer } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import type { IncidentMessage, IncidentPoint } from '../../contract/incidents.ts';
import { CONFIRMATIONS, type AlertCategory, type AlertMessage, type AlertState, type Confirmation } from '../../contract/payloads.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { BUREAU_LEVEL, canSeeHome, type Actor } from '../access.ts';
import { fail, type Outcome } from '../errors.ts';
import { DEFAULT_POLICY, nextDue, usesPositiveAlarmSequence, type EscalationPolicy, type EscalationReason, type EscalationSubject, type DueAction } from '../escalation.ts';
import { adjacencyOf, place, reAlertOf, severityRank, signalRank, type Adjacency, type GroupSubject, type NewGroup, type ReAlertReason } from './grouping.ts';

/**
 * The incident book (issue 11): the incidents' state machine, one countdown per incident, their
 * append-only audit. Same states as an alert (raised → acknowledged → confirmed → resolved, any open
 * state → escalated), acting through the member alerts it holds:
 *
 * - acknowledging the incident acknowledges every open member; confirming confirms them;
 *   resolving resolves them (each member's own audit records it, with the incident id);
 * - the escalation ladder (alerts/escalation.ts) runs on the incident, not on its members: the
 *   incident escalates once and its members record the level it reached;
 * - a point joining an acknowledged incident re-alerts it when it is a new fire alarm point or
 *   outranks the incident (grouping.ts reAlertOf); the acknowledgement is then cleared (it stays
 *   in the audit) and the countdown runs again from that moment (`alertedAt`); on an unacknowledged
 *   incident the countdown goes on from when it was raised, with the higher severity's steps;
 * - an incident whose members have all resolved resolves itself;
 * - an incident whose open members are all inhibited has no countdown of its own.
 *
 * The book does not own alerts: `members` is the lifecycle's port to act on them, and the lifecycle
 * tells the book when a member changed (`memberChanged`). Operations on the incident run as one
 * batch: the member changes they cause give one new incident version, not one per member.
 */

export const INCIDENT_AUDIT_ACTIONS = ['opened', 'point_added', 'point_updated', 'pushed', 'pushed_bureau', 'acknowledged', 'confirmed', 'escalated', 'reminder', 'realerted', 'resolved', 'notified', 'notify_failed', 'notify_receipt'] as const;
export type IncidentAuditAction = (typeof INCIDENT_AUDIT_ACTIONS)[number];

export interface IncidentAuditEntry {
  readonly incidentId: string;
  readonly homeId: string;
  /** 1, 2, 3… per incident: the trail is append-only. */
  readonly seq: number;
  readonly ts: number;
  readonly action: IncidentAuditAction;
  readonly by: string;
  readonly fromState: AlertState;
  readonly toState: AlertState;
  readonly version: number;
  readonly escalationLevel?: number;
  readonly confirmation?: Confirmation;
  readonly comment?: string;
  readonly reason?: string;
  /** The member alert a point entry is about. */
  readonly alertId?: string;
  /** Issue 15 (additive): a notification attempt (`notified` / `notify_failed`): channel, recipient, attempt number, outcome. */
  readonly channel?: string;
  readonly recipient?: string;
  readonly attempt?: number;
  readonly status?: string;
}

/** What persistence stores and restores: the message plus the facts it does not carry. */
export interface StoredIncident {
  readonly incident: IncidentMessage;
  /** Group key (grouping.ts groupOf) of a care or device incident; fire incidents group by rooms. */
  readonly key: string;
  /** When the current unacknowledged period began (opened, or re-alerted): the countdown runs from it. */
  readonly alertedAt: number;
}

export interface IncidentChange extends StoredIncident {
  readonly audit: IncidentAuditEntry;
  /** False for audit-only entries (first push): no new version. */
  readonly changed: boolean;
}

/** What the book needs to know about a member alert. */
export interface MemberInfo {
  readonly alert: AlertMessage;
  readonly latching: boolean;
}

/** The lifecycle's side: member alerts, and the transitions the incident applies to them. */
export interface MemberPort {
  info(alertId: string): MemberInfo | undefined;
  ack(alertId: string, by: string, incidentId: string, comment?: string): void;
  confirm(alertId: string, by: string, confirmation: Confirmation, incidentId: string, comment?: string): void;
  resolve(alertId: string, by: string, incidentId: string, comment?: string): void;
  escalate(alertId: string, level: number, reason: EscalationReason, by: string, incidentId: string): void;
}

export interface IncidentBookDeps {
  readonly clock: Clock;
  readonly registry: RegistryIndex;
  readonly members: MemberPort;
  readonly onChange?: (change: IncidentChange) => void;
  readonly policy?: EscalationPolicy;
  readonly newId?: () => string;
  readonly logger?: Logger;
  /** How many resolved incidents stay in memory for GET /api/incidents/:id. */
  readonly keepResolved?: number;
}

export interface Target {
  readonly id: string;
  /** Set when the alert opens a new incident. */
  readonly open?: NewGroup;
}

export interface IncidentBook {
  /** Which incident an alert goes into (an open one, or a new id); changes nothing. */
  place(subject: GroupSubject): Target;
  /**
   * Adds a raised member alert to its incident (opening it if new); emits the incident. A point
   * joining an escalated incident records the incident's level at once (`catchUp`, default true),
   * with the reason of the incident's last escalation.
   */
  join(target: Target, alert: AlertMessage, opts?: { readonly catchUp?: boolean }): void;
  /**
   * Restart only: an open alert stored before incidents existed goes into an incident dated from the
   * alert (its acknowledgement and level carried over), so its deadlines continue, not restart.
   */
  adopt(target: Target, alert: AlertMessage): void;
  /** A member changed by itself (cleared, updated, inhibited): its point follows. */
  /** `returned`: the member's condition came back (lifecycle.ts reactivation), not a change by a person. */
  memberChanged(alert: AlertMessage, reason: string, returned?: boolean): void;
  escalate(id: string, level: number, reason: EscalationReason, by: string): void;
  ack(id: string, actor: Actor, comment?: string): Outcome<IncidentMessage>;
  confirm(id: string, actor: Actor, confirmation: Confirmation, comment?: string): Outcome<IncidentMessage>;
  resolve(id: string, actor: Actor, comment?: string): Outcome<IncidentMessage>;
  notePushed(id: string, reason: string): void;
  noteBureauPushed(id: string, reason: string): void;
  /** Issue 15: records a notification attempt or a gateway's delivery receipt in the incident's audit (no new version), open or recently resolved. */
  noteNotification(id: string, action: 'notified' | 'notify_failed' | 'notify_receipt', facts: Pick<IncidentAuditEntry, 'channel' | 'recipient' | 'attempt' | 'status' | 'reason' | 'escalationLevel'>): void;
  get(id: string): IncidentMessage | undefined;
  stored(id: string): StoredIncident | undefined;
  open(): IncidentMessage[];
  audit(id: string): readonly IncidentAuditEntry[] | undefined;
  /** Re-installs open incidents after a restart and re-arms their countdowns; emits nothing. */
  restore(incidents: readonly StoredIncident[], audit?: readonly IncidentAuditEntry[]): void;
  close(): void;
}

interface Rec {
  incident: IncidentMessage;
  readonly key: string;
  alertedAt: number;
  readonly audit: IncidentAuditEntry[];
  timer?: ClockTimer;
  /** The step the timer was armed for (onDue acts on it whatever the wall clock says then). */
  armed?: DueAction;
  /**
   * The incident's `ts` and `acknowledgedAt` as the countdown takes them when they were found in the
   * future (`reanchor`), each for the value it replaces; the message itself keeps the true times.
   */
  anchors?: { readonly ts?: { readonly of: number; readonly at: number }; readonly ack?: { readonly of: number; readonly at: number } };
}

const MAX_COMMENT = 1000;
const SYSTEM = 'system';

export function pointOf(a: AlertMessage): IncidentPoint {
  return compact<IncidentPoint>({
    alertId: a.id,
    rule: a.rule,
    signal: a.signal,
    severity: a.severity,
    state: a.state,
    deviceId: a.deviceId,
    roomId: a.roomId,
    residentId: a.residentId,
    joinedAt: a.raisedAt,
    sourceTs: a.sourceTs,
    message: { zh: a.message.zh, en: a.message.en },
    inhibited: a.inhibited,
  });
}

/** Severity, signal, rooms and headline follow from the points (the worst condition shows, as on a panel). */
function derive(points: readonly IncidentPoint[], prior?: IncidentMessage): Pick<IncidentMessage, 'severity' | 'signal' | 'roomIds' | 'message'> {
  const first = points[0];
  let worst = first;
  for (const p of points) if (worst === undefined || severityRank(p.severity) > severityRank(worst.severity)) worst = p;
  // The incident keeps the highest severity it reached: a member clearing does not make it milder.
  const severity = prior !== undefined && worst !== undefined && severityRank(prior.severity) > severityRank(worst.severity) ? prior.severity : (worst?.severity ?? 'low');
  const live = points.filter((p) => p.inhibited === undefined);
  let signal = (live[0] ?? first)?.signal ?? 'trouble';
  for (const p of live) if (signalRank(p.signal) > signalRank(signal)) signal = p.signal;
  const roomIds: string[] = [];
  for (const p of points) if (p.roomId !== undefined && !roomIds.includes(p.roomId)) roomIds.push(p.roomId);
  const headline = worst !== undefined && first !== undefined && severityRank(worst.severity) > severityRank(first.severity) ? worst : first;
  return { severity, signal, roomIds, message: headline ? { ...headline.message } : { zh: '', en: '' } };
}

export function createIncidentBook(deps: IncidentBookDeps): IncidentBook {
  const { clock, registry, members } = deps;
  const policy = deps.policy ?? DEFAULT_POLICY;
  const newId = deps.newId ?? randomUUID;
  const keepResolved = deps.keepResolved ?? 1000;
  const adjacency: Adjacency = adjacencyOf(registry);
  const byId = new Map<string, Rec>();
  const openById = new HomeIndexedMap<string, Rec>((r) => r.incident.homeId);
  const resolvedOrder: string[] = [];
  /** Incidents inside an operation: member changes update points without a version of their own. */
  const inBatch = new Set<string>();
  let closed = false;

  function emit(rec: Rec, audit: IncidentAuditEntry, changed: boolean): void {
    try {
      deps.onChange?.({ incident: rec.incident, key: rec.key, alertedAt: rec.alertedAt, audit, changed });
    } catch (err) {
      deps.logger?.error({ err, incidentId: rec.incident.id, code: 'ALERTS_SINK_FAILED' }, 'incident change sink failed');
    }
  }

  function appendAudit(rec: Rec, action: IncidentAuditAction, by: string, fromState: AlertState, extra: Partial<IncidentAuditEntry> = {}): IncidentAuditEntry {
    const entry = compact<IncidentAuditEntry>({
      incidentId: rec.incident.id,
      homeId: rec.incident.homeId,
      seq: (rec.audit.at(-1)?.seq ?? 0) + 1,
      ts: clock.now(),
      action,
      by,
      fromState,
      toState: rec.incident.state,
      version: rec.incident.version,
      escalationLevel: rec.incident.escalationLevel,
      ...extra,
    });
    rec.audit.push(entry);
    return entry;
  }

  function commit(rec: Rec, patch: Partial<IncidentMessage>, action: IncidentAuditAction, by: string, extra: Partial<IncidentAuditEntry> = {}): IncidentMessage {
    const from = rec.incident.state;
    rec.incident = compact<IncidentMessage>({ ...rec.incident, ...patch, version: rec.incident.version + 1, ts: clock.now() });
    const entry = appendAudit(rec, action, by, from, extra);
    if (rec.incident.state === 'resolved') retire(rec);
    else schedule(rec);
    emit(rec, entry, true);
    return rec.incident;
  }

  function retire(rec: Rec): void {
    if (rec.timer) clock.clearTimeout(rec.timer);
    rec.timer = undefined;
    openById.delete(rec.incident.id);
    resolvedOrder.push(rec.incident.id);
    while (resolvedOrder.length > keepResolved) byId.delete(resolvedOrder.shift() ?? '');
  }

  /** The incident as the escalation policy sees it: its kind is its category, its countdown starts at alertedAt. */
  function subject(rec: Rec): EscalationSubject {
    const inc = rec.incident;
    const ts = rec.anchors?.ts?.of === inc.ts ? rec.anchors.ts.at : inc.ts;
    const ack = inc.acknowledgedAt !== undefined && rec.anchors?.ack?.of === inc.acknowledgedAt ? rec.anchors.ack.at : inc.acknowledgedAt;
    return { ...inc, category: inc.kind as AlertCategory, raisedAt: rec.alertedAt, ts, ...(ack !== undefined ? { acknowledgedAt: ack } : {}) };
  }

  /**
   * Anchors in the future: the wall clock was stepped back since they were taken (NTP, an operator).
   * The countdown takes each as taken now, so a deadline scheduled from them is at most its own
   * period late, not the size of the step: until session 23 an incident that changed after a 1 h
   * backward step (a second detector joining) had its 15 s acknowledgement deadline an hour away
   * again (test/alerts/incidents/clock-step.test.ts). A step armed before the change is kept by
   * `onDue`. Only the countdown's copy changes (`rec.anchors`): the incident keeps the times things
   * happened at. Were the step corrected later, deadlines from these come early by it, never late.
   */
  function reanchor(rec: Rec): void {
    const now = clock.now();
    if (rec.alertedAt > now) rec.alertedAt = now;
    const inc = rec.incident;
    const s = subject(rec);
    if (s.ts > now) rec.anchors = { ...rec.anchors, ts: { of: inc.ts, at: now } };
    if (inc.acknowledgedAt !== undefined && (s.acknowledgedAt ?? 0) > now) rec.anchors = { ...rec.anchors, ack: { of: inc.acknowledgedAt, at: now } };
  }

  function schedule(rec: Rec): void {
    const running = rec.timer;
    rec.timer = undefined;
    // Inhibited points raise no countdown: an incident of nothing but held-back points waits for its source.
    const counts = !closed && rec.incident.points.some((p) => p.state !== 'resolved' && p.inhibited === undefined);
    // A change that leaves the armed step as it was keeps its timer: it counts down on elapsed time,
    // right through a step of the wall clock (re-armed from the wall clock it would be late by the
    // time between its anchor and the step).
    if (counts && running !== undefined) {
      const same = nextDue(subject(rec), policy, registry.home(rec.incident.homeId));
      if (same !== undefined && sameStep(rec.armed, same)) {
        rec.timer = running;
        return;
      }
    }
    if (running !== undefined) clock.clearTimeout(running);
    if (!counts) return;
    reanchor(rec);
    const due = nextDue(subject(rec), policy, registry.home(rec.incident.homeId));
    if (due === undefined) return;
    rec.armed = due;
    rec.timer = clock.setTimeout(() => onDue(rec), Math.max(0, due.at - clock.now()));
  }

  /** The same step of the ladder: what changes the incident changes its next step or its time. */
  const sameStep = (a: DueAction | undefined, b: DueAction): boolean => a !== undefined && a.kind === b.kind && a.at === b.at && (a.kind !== 'escalate' || (b.kind === 'escalate' && a.level === b.level));

  function onDue(rec: Rec): void {
    rec.timer = undefined;
    const armed = rec.armed;
    rec.armed = undefined;
    if (closed || rec.incident.state === 'resolved') return;
    const due = nextDue(subject(rec), policy, registry.home(rec.incident.homeId));
    if (due === undefined) return;
    // The timer runs on elapsed time, deadlines on the wall clock: a step armed for is due when its
    // timer fires, even if the wall clock was stepped back meanwhile (NTP). Re-armed on the wall
    // clock, a backward step of an hour held a fire's 15 s acknowledgement deadline for an hour
    // (a helper's hunt, session 22; test/alerts/incidents/clock-step.test.ts).
    if (due.at > clock.now() && !sameStep(armed, due)) return schedule(rec);
    if (due.kind === 'escalate') escalate(rec, due.level, due.reason, SYSTEM);
    else if (due.kind === 'resound') resound(rec);
    else commit(rec, {}, 'reminder', SYSTEM);
  }

  /**
   * An acknowledged trouble still open a day later sounds again (escalation.ts TROUBLE_RESOUND_S):
   * re-alerted as a new point on an acknowledged panel would be (the acknowledgement cleared, the duty
   * staff paged), so someone acknowledges it again or the ladder takes it up.
   */
  function resound(rec: Rec): void {
    const point = rec.incident.points.find((p) => p.state !== 'resolved' && p.inhibited === undefined);
    if (point === undefined) return;
    const inc = rec.incident;
    rec.alertedAt = clock.now();
    // Unlike a new point (reAlert), the verdict stands (a fault confirmed as one is still one); only
    // the acknowledgement goes, as ack() keeps the state of a confirmed incident.
    rec.incident = compact<IncidentMessage>({ ...inc, state: inc.confirmation !== undefined ? inc.state : 'raised', acknowledgedAt: undefined, acknowledgedBy: undefined });
    emit(rec, appendAudit(rec, 'realerted', SYSTEM, inc.state, { reason: 'trouble_resound', alertId: point.alertId }), false);
    commit(rec, refreshed(rec), 'reminder', SYSTEM, { reason: 'trouble_resound' });
  }

  /** Runs an operation on the incident's members as one batch; the caller commits the incident after. */
  function batch(rec: Rec, fn: () => void): void {
    const id = rec.incident.id;
    const nested = inBatch.has(id);
    inBatch.add(id);
    try {
      fn();
    } finally {
      if (!nested) inBatch.delete(id);
    }
  }

  function openMembers(rec: Rec): MemberInfo[] {
    const out: MemberInfo[] = [];
    for (const p of rec.incident.points) {
      if (p.state === 'resolved') continue;
      const m = members.info(p.alertId);
      if (m !== undefined && m.alert.state !== 'resolved') out.push(m);
    }
    return out;
  }

  /** Refreshes the points from the member alerts (after a batch). */
  function refreshed(rec: Rec): Pick<IncidentMessage, 'points' | 'severity' | 'signal' | 'roomIds' | 'message'> {
    const points = rec.incident.points.map((p) => {
      const m = members.info(p.alertId);
      return m === undefined ? p : { ...pointOf(m.alert), joinedAt: p.joinedAt };
    });
    return { points, ...derive(points, rec.incident) };
  }

  function escalate(rec: Rec, level: number, reason: EscalationReason, by: string): void {
    const raise = (rec.incident.escalationLevel ?? 0) < level;
    // Members record the level their incident reached; inhibited ones get no escalation at all.
    const behind = openMembers(rec).filter((m) => (m.alert.escalationLevel ?? 0) < level && m.alert.inhibited === undefined);
    if (!raise && behind.length === 0) return;
    if (raise) deps.logger?.warn({ incidentId: rec.incident.id, homeId: rec.incident.homeId, level, reason }, 'incident escalated');
    batch(rec, () => {
      for (const m of behind) members.escalate(m.alert.id, level, reason, by, rec.incident.id);
    });
    if (raise) commit(rec, { ...refreshed(rec), state: 'escalated', escalationLevel: level }, 'escalated', by, { reason });
    else commit(rec, refreshed(rec), 'point_updated', by, { reason });
  }

  function visible(id: string, actor: Actor): Outcome<Rec> {
    const rec = byId.get(id);
    // Another home's incident is "not found", not "forbidden": its existence is not disclosed.
    if (rec === undefined || !canSeeHome(actor, rec.incident.homeId)) return fail('INCIDENT_NOT_FOUND');
    if (rec.incident.state === 'resolved') return fail('INCIDENT_RESOLVED');
    return { ok: true, value: rec };
  }

  const cut = (c: string | undefined): string | undefined => (c === undefined || c === '' ? undefined : c.slice(0, MAX_COMMENT));

  function reAlert(rec: Rec, why: ReAlertReason, alertId: string, point: Pick<IncidentPoint, 'signal' | 'severity'>): void {
    const inc = rec.incident;
    if (inc.acknowledgedAt === undefined) {
      // Except where the point starts the positive alarm sequence (a pre-alarm or supervisory fire
      // incident that now has a fire alarm point): its 15 s acknowledgement window runs from the alarm
      // (NFPA 72 §23.8.1.3), shorter than any step of the ladder it was on.
      const category = inc.kind as AlertCategory;
      if (usesPositiveAlarmSequence({ category, ...point }) && !usesPositiveAlarmSequence({ category, signal: inc.signal, severity: inc.severity })) rec.alertedAt = clock.now();
      // Not acknowledged yet: the countdown keeps running from when it was first raised, now with the
      // higher severity's (shorter) steps. Until session 26 it restarted here, so a medium care
      // incident unanswered for 59 min that worsened to high reached the bureau at 74 min instead of
      // 60: a worse condition must not reach the bureau later than the milder one would have.
      // Audit-only (the version comes with the point's own commit), but journaled like every entry.
      emit(rec, appendAudit(rec, 'realerted', SYSTEM, inc.state, { reason: why, alertId }), false);
      return;
    }
    rec.alertedAt = clock.now();
    // A new alarm point on an acknowledged panel sounds again: someone must acknowledge it. A fire
    // already confirmed real stays confirmed (the bureau has it); any other verdict is reopened.
    const keepConfirmation = inc.confirmation === 'real_fire';
    const reopened: IncidentMessage = compact<IncidentMessage>({
      ...inc,
      state: keepConfirmation ? 'escalated' : 'raised',
      acknowledgedAt: undefined,
      acknowledgedBy: undefined,
      ...(keepConfirmation ? {} : { confirmation: undefined, confirmedAt: undefined, confirmedBy: undefined }),
    });
    rec.incident = reopened;
    emit(rec, appendAudit(rec, 'realerted', SYSTEM, inc.state, { reason: why, alertId }), false);
  }

  function memberPoint(rec: Rec, alert: AlertMessage): void {
    const points = rec.incident.points.map((p) => (p.alertId === alert.id ? { ...pointOf(alert), joinedAt: p.joinedAt } : p));
    rec.incident = { ...rec.incident, points };
  }

  const book: IncidentBook = {
    place(s) {
      const open = [...openById.ofHome(s.homeId)].map((r) => ({ id: r.incident.id, homeId: r.incident.homeId, kind: r.incident.kind, key: r.key, roomIds: r.incident.roomIds, openedAt: r.incident.openedAt }));
      const p = place(s, open, adjacency);
      return 'join' in p ? { id: p.join } : { id: newId(), open: p.open };
    },
    adopt(target, alert) {
      if (openById.has(target.id)) return book.join(target, alert);
      const g = target.open;
      if (g === undefined) return;
      const point = pointOf(alert);
      const incident = compact<IncidentMessage>({
        id: target.id,
        homeId: alert.homeId,
        kind: g.kind,
        residentId: g.residentId,
        deviceId: g.deviceId,
        ...derive([point]),
        state: alert.state,
        version: 1,
        ts: clock.now(),
        openedAt: alert.raisedAt,
        firstAlertId: alert.id,
        points: [point],
        escalationLevel: alert.escalationLevel ?? 0,
        acknowledgedAt: alert.acknowledgedAt,
        acknowledgedBy: alert.acknowledgedBy,
        confirmation: alert.confirmation,
        confirmedAt: alert.confirmedAt,
        confirmedBy: alert.confirmedBy,
        pushedAt: alert.pushedAt,
        bureauPushedAt: alert.bureauPushedAt,
      });
      const rec: Rec = { incident, key: g.key, alertedAt: alert.raisedAt, audit: [] };
      byId.set(incident.id, rec);
      openById.set(incident.id, rec);
      const entry = appendAudit(rec, 'opened', SYSTEM, incident.state, { alertId: alert.id, reason: 'restored_alert' });
      schedule(rec);
      emit(rec, entry, true);
    },
    join(target, alert, opts = {}) {
      const now = clock.now();
      const point = pointOf(alert);
      const existing = openById.get(target.id);
      if (existing === undefined) {
        const g = target.open;
        if (g === undefined) throw new Error(`incident ${target.id} is not open`);
        const incident = compact<IncidentMessage>({
          id: target.id,
          homeId: alert.homeId,
          kind: g.kind,
          residentId: g.residentId,
          deviceId: g.deviceId,
          ...derive([point]),
          state: 'raised',
          version: 1,
          ts: now,
          openedAt: now,
          firstAlertId: alert.id,
          points: [point],
          escalationLevel: 0,
        });
        const rec: Rec = { incident, key: g.key, alertedAt: now, audit: [] };
        byId.set(incident.id, rec);
        openById.set(incident.id, rec);
        const entry = appendAudit(rec, 'opened', SYSTEM, 'raised', { alertId: alert.id, reason: alert.rule });
        schedule(rec);
        emit(rec, entry, true);
        return;
      }
      const rec = existing;
      const why = reAlertOf(rec.incident, { ...point, category: rec.incident.kind }, true);
      if (why !== undefined) reAlert(rec, why, alert.id, point);
      const points = [...rec.incident.points, point];
      commit(rec, { points, ...derive(points, rec.incident) }, 'point_added', SYSTEM, { alertId: alert.id, reason: alert.rule });
      const level = rec.incident.escalationLevel ?? 0;
      if (opts.catchUp !== false && level > 0 && rec.incident.state !== 'resolved') {
        const last = [...rec.audit].reverse().find((e) => e.action === 'escalated')?.reason as EscalationReason | undefined;
        escalate(rec, level, last ?? 'ladder', SYSTEM);
      }
    },
    memberChanged(alert, reason, returned = false) {
      const id = alert.incidentId;
      const rec = id === undefined ? undefined : byId.get(id);
      if (rec === undefined || !rec.incident.points.some((p) => p.alertId === alert.id)) return;
      if (inBatch.has(rec.incident.id)) return memberPoint(rec, alert);
      if (rec.incident.state === 'resolved') return;
      const before = rec.incident.points.find((p) => p.alertId === alert.id);
      // A member whose condition came back after it was acknowledged (lifecycle.ts): the incident sounds again.
      const cameBack = returned && rec.incident.acknowledgedAt !== undefined && alert.acknowledgedAt === undefined;
      const why = before === undefined ? undefined : cameBack ? 'condition_returned' : reAlertOf(rec.incident, { ...pointOf(alert), category: rec.incident.kind }, false);
      if (why !== undefined) reAlert(rec, why, alert.id, pointOf(alert));
      memberPoint(rec, alert);
      const points = rec.incident.points;
      commit(rec, { ...derive(points, rec.incident) }, 'point_updated', SYSTEM, { alertId: alert.id, reason });
      if (points.every((p) => p.state === 'resolved')) {
        commit(rec, { state: 'resolved', resolvedAt: clock.now(), resolvedBy: SYSTEM }, 'resolved', SYSTEM, { reason: 'all_points_resolved' });
      }
    },
    escalate(id, level, reason, by) {
      const rec = openById.get(id);
      if (rec !== undefined) escalate(rec, level, reason, by);
    },
    ack(id, actor, comment) {
      const r = visible(id, actor);
      if (!r.ok) return r;
      const rec = r.value;
      if (rec.incident.acknowledgedAt !== undefined) return fail('INCIDENT_ALREADY_ACKNOWLEDGED', `already acknowledged by ${rec.incident.acknowledgedBy ?? '?'}`);
      const c = cut(comment);
      batch(rec, () => {
        for (const m of openMembers(rec)) if (m.alert.acknowledgedAt === undefined) members.ack(m.alert.id, actor.username, id, c);
      });
      const state: AlertState = rec.incident.confirmation !== undefined ? rec.incident.state : 'acknowledged';
      const inc = commit(rec, { ...refreshed(rec), state, acknowledgedBy: actor.username, acknowledgedAt: clock.now(), comment: c ?? rec.incident.comment }, 'acknowledged', actor.username, { comment: c });
      return { ok: true, value: inc };
    },
    confirm(id, actor, confirmation, comment) {
      const r = visible(id, actor);
      if (!r.ok) return r;
      if (!(CONFIRMATIONS as readonly string[]).includes(confirmation)) return fail('API_BAD_REQUEST', `confirmation must be one of ${CONFIRMATIONS.join(', ')}`);
      const rec = r.value;
      if (rec.incident.acknowledgedAt === undefined) return fail('INCIDENT_NOT_ACKNOWLEDGED');
      if (rec.incident.confirmation !== undefined) return fail('INCIDENT_ALREADY_CONFIRMED', `already confirmed as ${rec.incident.confirmation} by ${rec.incident.confirmedBy ?? '?'}`);
      const c = cut(comment);
      batch(rec, () => {
        for (const m of openMembers(rec)) {
          if (m.alert.acknowledgedAt === undefined) members.ack(m.alert.id, actor.username, id);
          if (m.alert.confirmation === undefined) members.confirm(m.alert.id, actor.username, confirmation, id, c);
        }
      });
      commit(rec, { ...refreshed(rec), state: 'confirmed', confirmation, confirmedBy: actor.username, confirmedAt: clock.now(), comment: c ?? rec.incident.comment }, 'confirmed', actor.username, { confirmation, comment: c });
      // NFPA 72 positive alarm sequence: a fire verified as real goes to the bureau (call 119) at once.
      if (confirmation === 'real_fire') escalate(rec, BUREAU_LEVEL, 'real_fire', actor.username);
      return { ok: true, value: rec.incident };
    },
    resolve(id, actor, comment) {
      const r = visible(id, actor);
      if (!r.ok) return r;
      const rec = r.value;
      const open = openMembers(rec);
      const c = cut(comment?.trim()) === undefined ? undefined : cut(comment);
      // The per-alert rules, over the whole incident (docs/alerts.md "Resolving").
      if (open.some((m) => m.latching && m.alert.category === 'fire') && rec.incident.confirmation === undefined) return fail('INCIDENT_NOT_CONFIRMED');
      if (open.some((m) => m.latching && m.alert.category !== 'fire')) {
        if (rec.incident.acknowledgedAt === undefined) return fail('INCIDENT_NOT_ACKNOWLEDGED', 'acknowledge the incident before resolving it');
        if (c === undefined) return fail('INCIDENT_COMMENT_REQUIRED');
      }
      const verdict = rec.incident.confirmation;
      batch(rec, () => {
        for (const m of open) {
          // A point that joined after the verdict takes it, so its own record says what it was.
          if (verdict !== undefined && m.alert.confirmation === undefined) {
            if (m.alert.acknowledgedAt === undefined) members.ack(m.alert.id, actor.username, id);
            members.confirm(m.alert.id, actor.username, verdict, id);
          }
          members.resolve(m.alert.id, actor.username, id, comment !== undefined && comment !== '' ? comment.slice(0, MAX_COMMENT) : undefined);
        }
      });
      const inc = commit(
        rec,
        { ...refreshed(rec), state: 'resolved', resolvedBy: actor.username, resolvedAt: clock.now(), comment: cut(comment) ?? rec.incident.comment },
        'resolved',
        actor.username,
        { comment: cut(comment) },
      );
      return { ok: true, value: inc };
    },
    notePushed(id, reason) {
      const rec = byId.get(id);
      if (rec === undefined || rec.incident.pushedAt !== undefined || closed) return;
      rec.incident = { ...rec.incident, pushedAt: clock.now() };
      emit(rec, appendAudit(rec, 'pushed', SYSTEM, rec.incident.state, { reason: reason.slice(0, 200) }), false);
    },
    noteBureauPushed(id, reason) {
      const rec = byId.get(id);
      if (rec === undefined || rec.incident.bureauPushedAt !== undefined || closed) return;
      rec.incident = { ...rec.incident, bureauPushedAt: clock.now() };
      emit(rec, appendAudit(rec, 'pushed_bureau', SYSTEM, rec.incident.state, { reason: reason.slice(0, 200) }), false);
    },
    noteNotification(id, action, facts) {
      const rec = byId.get(id);
      if (rec === undefined || closed) return;
      emit(rec, appendAudit(rec, action, SYSTEM, rec.incident.state, { ...facts, ...(facts.reason !== undefined ? { reason: facts.reason.slice(0, 200) } : {}) }), false);
    },
    get: (id) => byId.get(id)?.incident,
    stored(id) {
      const rec = byId.get(id);
      return rec && { incident: rec.incident, key: rec.key, alertedAt: rec.alertedAt };
    },
    open: () => [...openById.values()].map((r) => r.incident),
    audit: (id) => byId.get(id)?.audit,
    restore(incidents, audit = []) {
      const trail = new Map<string, IncidentAuditEntry[]>();
      for (const e of audit) (trail.get(e.incidentId) ?? trail.set(e.incidentId, []).get(e.incidentId))?.push(e);
      for (const s of incidents) {
        if (s.incident.state === 'resolved' || byId.has(s.incident.id)) continue;
        const entries = (trail.get(s.incident.id) ?? []).sort((a, b) => a.seq - b.seq);
        // pushedAt is set without a new version; its audit entry carries it across the restart.
        const pushed = s.incident.pushedAt ?? entries.find((e) => e.action === 'pushed')?.ts;
        const bureauPushed = s.incident.bureauPushedAt ?? entries.find((e) => e.action === 'pushed_bureau')?.ts;
        // The members were restored first: points show their latest versions.
        const points = s.incident.points.map((p) => {
          const m = members.info(p.alertId);
          return m === undefined ? p : { ...pointOf(m.alert), joinedAt: p.joinedAt };
        });
        const incident = compact<IncidentMessage>({ ...s.incident, points, pushedAt: pushed, bureauPushedAt: bureauPushed });
        const rec: Rec = { incident, key: s.key, alertedAt: s.alertedAt, audit: entries };
        byId.set(incident.id, rec);
        openById.set(incident.id, rec);
        schedule(rec);
      }
    },
    close() {
      closed = true;
      for (const rec of byId.values()) if (rec.timer) clock.clearTimeout(rec.timer);
    },
  };
  return book;
}
