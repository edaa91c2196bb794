import { HomeIndexedMap } from './home-index.ts';
import { compact } from './compact.ts';
import { randomUUID } from 'node:crypto';
import type { Clock, ClockTimer } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import type { IncidentMessage } from '../contract/incidents.ts';
import { CONFIRMATIONS, SEVERITIES, type AlertMessage, type AlertState, type Confirmation } from '../contract/payloads.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import type { Signal } from './rules/types.ts';
import { BUREAU_LEVEL, canSeeAlert, type Actor } from './access.ts';
import type { EscalationPolicy, EscalationReason } from './escalation.ts';
import { ALERT_ERRORS, fail, type AlertErrorCode, type Outcome } from './errors.ts';
import { createIncidentBook, type IncidentAuditEntry, type IncidentBook, type IncidentChange, type MemberPort, type StoredIncident } from './incidents/book.ts';
import { inhibitionOf, isInhibitionSource } from './incidents/inhibition.ts';

/**
 * The alert store and state machine (issue 2 "alerts", issue 3 "Handling"):
 *
 *   raised → acknowledged (who, when) → confirmed (real_fire | false_alarm | test | fault) → resolved
 *   any open state → escalated (level 0 duty staff, 1 home director, 2 bureau / call 119)
 *
 * At most one open alert per signal key (dedup). A cleared condition resolves a non-latching alert;
 * a latching one (a fire alarm, latched as a fire-alarm control panel latches it; a fall) waits for
 * a person. Every change bumps `version` by one, is appended to the audit trail and handed to
 * `onChange` (MQTT, socket.io, InfluxDB). Deadlines run on the injected Clock.
 *
 * Issue 11: every alert is a point of an incident (alerts/incidents/: grouping and inhibition are
 * pure modules, the incident book holds the incidents' state machine). The incident has the one
 * acknowledgement, confirmation, countdown and escalation; a member alert has no countdown of its
 * own and records what its incident did to it. Acting on a member through the alert operations
 * acts on its incident (docs/alerts.md "Incidents"). An inhibited alert (inhibition.ts) is raised
 * and recorded as any other, but is not notified (`AlertChange.notify`).
 *
 * Resolving by hand (docs/alerts.md "Resolving"):
 * - a latching fire alarm needs a confirmation first (real_fire / false_alarm / test / fault);
 * - a latching care alert (a fall) needs an acknowledgement and a comment saying what was done;
 * - if the condition is still active when a person resolves (the rule has not reported it clear),
 *   the alert is re-raised as a new alert after `reraiseAfterMs` unless the rule clears it first:
 *   a panel reset with a detector still in alarm re-alarms, and nothing is silently dropped.
 */

export const AUDIT_ACTIONS = ['raised', 'pushed', 'pushed_bureau', 'acknowledged', 'confirmed', 'escalated', 'reminder', 'updated', 'resolved', 'condition_cleared', 'reactivated'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEntry {
  readonly alertId: string;
  readonly homeId: string;
  /** 1, 2, 3… per alert: the trail is append-only. */
  readonly seq: number;
  readonly ts: number;
  readonly action: AuditAction;
  /** Username, or `system` for the platform's own transitions. */
  readonly by: string;
  readonly fromState: AlertState;
  readonly toState: AlertState;
  readonly version: number;
  readonly escalationLevel?: number;
  readonly confirmation?: Confirmation;
  readonly comment?: string;
  readonly reason?: string;
  /** Set when the change came through the alert's incident (its acknowledgement, escalation, …). */
  readonly incidentId?: string;
}

/** What persistence stores and restores: the message plus the two facts it does not carry. */
export interface StoredAlert {
  readonly alert: AlertMessage;
  readonly key: string;
  readonly latching: boolean;
}

export interface AlertChange extends StoredAlert {
  readonly audit: AuditEntry;
  /** False for audit-only entries (a latched alarm whose condition cleared): no new message version. */
  readonly changed: boolean;
  /**
   * Whether this change goes out as the alert's own notification (socket.io card, MQTT): a changed,
   * not inhibited alert, or the change that holds it back (so a client showing it can drop it).
   */
  readonly notify: boolean;
}

export const SYSTEM_ACTOR = 'system';
const MAX_COMMENT = 1000;
/**
 * How long a condition that is still active after a person resolved its alert is left alone before
 * it is raised again as a new alert. Long enough to change a pad or air out a room, short enough
 * that a real condition is not forgotten. No standard sets it; 5 min is a carewatch choice.
 */
export const REARM_AFTER_MS = 5 * 60_000;
/** Audit reason of an alert raised again because its condition outlived a manual resolve. */
export const STILL_ACTIVE_REASON = 'still_active_after_manual_resolve';

export interface LifecycleDeps {
  readonly clock: Clock;
  readonly registry: RegistryIndex;
  readonly onChange: (change: AlertChange) => void;
  readonly logger?: Logger;
  readonly policy?: EscalationPolicy;
  readonly newId?: () => string;
  /** How many resolved alerts stay in memory for GET /api/alerts/:id and its audit. */
  readonly keepResolved?: number;
  /** See REARM_AFTER_MS. */
  readonly reraiseAfterMs?: number;
  /**
   * Called when the set of held conditions changes (a resolve while still active, a clear, a
   * re-raise), so the composition root can persist `held()` at once: a restart inside the hold must
   * not forget a condition the rules will never signal again (they signal on edges only).
   */
  readonly onHeldChange?: () => void;
  /** Every incident change (persistence, socket.io, MQTT), as onChange for alerts. */
  readonly onIncidentChange?: (change: IncidentChange) => void;
  readonly newIncidentId?: () => string;
}

/** A condition still active after a manual resolve, as persisted across restarts. */
export interface HeldCondition {
  readonly key: string;
  readonly signal: Signal;
  /** When it is raised again unless it clears first (platform clock, ms). */
  readonly dueAt: number;
}

/** Alert ids: UUIDs from randomUUID in production; tests inject short ids. Route schemas check this. */
export const ALERT_ID_PATTERN = '^[A-Za-z0-9-]{1,64}$';

export interface Lifecycle {
  applySignals(signals: readonly Signal[]): void;
  ack(id: string, actor: Actor, comment?: string): Outcome<AlertMessage>;
  confirm(id: string, actor: Actor, confirmation: Confirmation, comment?: string): Outcome<AlertMessage>;
  resolve(id: string, actor: Actor, comment?: string): Outcome<AlertMessage>;
  /**
   * Records when an alert was first delivered to at least one client (GB 50440 / GB 26875 10 s
   * timing). Sets `pushedAt` once, without a new version (a delivery fact, not a state change),
   * and appends a `pushed` audit entry so it survives restarts; later calls do nothing.
   */
  notePushed(id: string, reason: string): void;
  /**
   * Records when a fire alarm first reached a non-empty bureau (monitoring-centre) room: the
   * GB 50440 / GB 26875 10 s check is about the centre, not any client. Same rules as notePushed.
   */
  noteBureauPushed(id: string, reason: string): void;
  /** Conditions held after a manual resolve (see REARM_AFTER_MS), for the snapshot. */
  held(): HeldCondition[];
  get(id: string): AlertMessage | undefined;
  stored(id: string): StoredAlert | undefined;
  open(): AlertMessage[];
  audit(id: string): readonly AuditEntry[] | undefined;
  /** Incidents (issue 11): acting on one acts on all its open members. */
  ackIncident(id: string, actor: Actor, comment?: string): Outcome<IncidentMessage>;
  confirmIncident(id: string, actor: Actor, confirmation: Confirmation, comment?: string): Outcome<IncidentMessage>;
  resolveIncident(id: string, actor: Actor, comment?: string): Outcome<IncidentMessage>;
  /** GB 50440 delivery facts of an incident, as notePushed / noteBureauPushed of an alert. */
  noteIncidentPushed(id: string, reason: string): void;
  noteIncidentBureauPushed(id: string, reason: string): void;
  /** Issue 15: a notification attempt, in the incident's audit (alerts/notify/notifier.ts). */
  noteIncidentNotification: IncidentBook['noteNotification'];
  incident(id: string): IncidentMessage | undefined;
  storedIncident(id: string): StoredIncident | undefined;
  openIncidents(): IncidentMessage[];
  incidentAudit(id: string): readonly IncidentAuditEntry[] | undefined;
  /**
   * Re-installs open alerts and incidents after a restart and re-arms the incidents' countdowns;
   * emits no alert change. An open alert without an open incident (stored before incidents existed)
   * is grouped afresh, its incident dated from the alert so deadlines continue.
   */
  restore(alerts: readonly StoredAlert[], audit?: readonly AuditEntry[], held?: readonly HeldCondition[], incidents?: RestoredIncidents): void;
  close(): void;
}

export interface RestoredIncidents {
  readonly incidents: readonly StoredIncident[];
  readonly audit?: readonly IncidentAuditEntry[];
}

interface Rec {
  alert: AlertMessage;
  readonly key: string;
  readonly latching: boolean;
  readonly audit: AuditEntry[];
  conditionCleared: boolean;
  /** The latest active signal for this alert's key (what a re-raise repeats). */
  last?: Signal;
}

/** A condition still active after a person resolved its alert: raised again at `timer` unless it clears. */
interface Held {
  signal: Signal;
  timer: ClockTimer;
  dueAt: number;
}

/** The signal an alert was raised from, rebuilt from the stored message (restored alerts). */
function signalOf(rec: { alert: AlertMessage; key: string; latching: boolean }): Signal {
  const a = rec.alert;
  return compact<Signal>({
    key: rec.key,
    rule: a.rule,
    category: a.category,
    signal: a.signal,
    severity: a.severity,
    homeId: a.homeId,
    deviceId: a.deviceId,
    roomId: a.roomId,
    residentId: a.residentId,
    active: true,
    sourceTs: a.sourceTs,
    receivedTs: a.receivedTs,
    value: a.value,
    message: a.message,
    latching: rec.latching,
  });
}

const severityRank = (s: string): number => SEVERITIES.length - SEVERITIES.indexOf(s as (typeof SEVERITIES)[number]);

export function createLifecycle(deps: LifecycleDeps): Lifecycle {
  const { clock, registry } = deps;
  const newId = deps.newId ?? randomUUID;
  const keepResolved = deps.keepResolved ?? 1000;
  const byId = new Map<string, Rec>();
  const openByKey = new HomeIndexedMap<string, Rec>((r) => r.alert.homeId);
  const resolvedOrder: string[] = [];
  const held = new Map<string, Held>();
  const reraiseAfterMs = deps.reraiseAfterMs ?? REARM_AFTER_MS;
  let closed = false;

  function emit(rec: Rec, audit: AuditEntry, changed: boolean, notify = changed && rec.alert.inhibited === undefined): void {
    try {
      deps.onChange({ alert: rec.alert, key: rec.key, latching: rec.latching, audit, changed, notify });
    } catch (err) {
      deps.logger?.error({ err, alertId: rec.alert.id, code: 'ALERTS_SINK_FAILED' }, 'alert change sink failed');
    }
  }

  function appendAudit(rec: Rec, action: AuditAction, by: string, fromState: AlertState, extra: Partial<AuditEntry> = {}): AuditEntry {
    const entry = compact<AuditEntry>({
      alertId: rec.alert.id,
      homeId: rec.alert.homeId,
      seq: (rec.audit.at(-1)?.seq ?? 0) + 1,
      ts: clock.now(),
      action,
      by,
      fromState,
      toState: rec.alert.state,
      version: rec.alert.version,
      escalationLevel: rec.alert.escalationLevel,
      ...extra,
    });
    rec.audit.push(entry);
    return entry;
  }

  /** Applies one change: new version, audit entry, emission; the alert's incident follows. */
  function commit(rec: Rec, patch: Partial<AlertMessage>, action: AuditAction, by: string, extra: Partial<AuditEntry> = {}, notify?: boolean): AlertMessage {
    const from = rec.alert.state;
    rec.alert = compact<AlertMessage>({ ...rec.alert, ...patch, version: rec.alert.version + 1, ts: clock.now() });
    const entry = appendAudit(rec, action, by, from, extra);
    if (rec.alert.state === 'resolved') retire(rec);
    emit(rec, entry, true, notify);
    book.memberChanged(rec.alert, extra.reason !== undefined ? `${action}: ${extra.reason}` : action, action === 'reactivated');
    return rec.alert;
  }

  function retire(rec: Rec): void {
    if (openByKey.get(rec.key) === rec) openByKey.delete(rec.key);
    resolvedOrder.push(rec.alert.id);
    while (resolvedOrder.length > keepResolved) byId.delete(resolvedOrder.shift() ?? '');
  }

  const cut = (c: string | undefined): string | undefined => (c === undefined || c === '' ? undefined : c.slice(0, MAX_COMMENT));

  /** What the incident book does to its members: each change is the member's own, audited with the incident id. */
  const port: MemberPort = {
    info(id) {
      const rec = byId.get(id);
      return rec && { alert: rec.alert, latching: rec.latching };
    },
    ack(id, by, incidentId, comment) {
      const rec = byId.get(id);
      if (rec === undefined || rec.alert.state === 'resolved' || rec.alert.acknowledgedAt !== undefined) return;
      const state: AlertState = rec.alert.confirmation !== undefined ? rec.alert.state : 'acknowledged';
      commit(rec, { state, acknowledgedBy: by, acknowledgedAt: clock.now(), comment: cut(comment) ?? rec.alert.comment }, 'acknowledged', by, { comment: cut(comment), incidentId });
    },
    confirm(id, by, confirmation, incidentId, comment) {
      const rec = byId.get(id);
      if (rec === undefined || rec.alert.state === 'resolved' || rec.alert.confirmation !== undefined) return;
      commit(rec, { state: 'confirmed', confirmation, confirmedBy: by, confirmedAt: clock.now(), comment: cut(comment) ?? rec.alert.comment }, 'confirmed', by, {
        confirmation,
        comment: cut(comment),
        incidentId,
      });
    },
    resolve(id, by, incidentId, comment) {
      const rec = byId.get(id);
      if (rec === undefined || rec.alert.state === 'resolved') return;
      const stillActive = !rec.conditionCleared;
      commit(rec, { state: 'resolved', resolvedBy: by, resolvedAt: clock.now(), comment: cut(comment) ?? rec.alert.comment }, 'resolved', by, {
        comment: cut(comment),
        incidentId,
        ...(stillActive ? { reason: 'condition_still_active' } : {}),
      });
      if (stillActive) hold(rec);
    },
    escalate(id, level, reason, by, incidentId) {
      const rec = byId.get(id);
      if (rec === undefined || rec.alert.state === 'resolved' || (rec.alert.escalationLevel ?? 0) >= level) return;
      commit(rec, { state: 'escalated', escalationLevel: level }, 'escalated', by, { reason, incidentId });
    },
  };

  const book: IncidentBook = createIncidentBook({
    clock,
    registry,
    members: port,
    ...(deps.onIncidentChange !== undefined ? { onChange: deps.onIncidentChange } : {}),
    ...(deps.policy !== undefined ? { policy: deps.policy } : {}),
    ...(deps.newIncidentId !== undefined ? { newId: deps.newIncidentId } : {}),
    ...(deps.logger !== undefined ? { logger: deps.logger } : {}),
    ...(deps.keepResolved !== undefined ? { keepResolved: deps.keepResolved } : {}),
  });

  const openOfHome = (homeId: string): AlertMessage[] => [...openByKey.ofHome(homeId)].map((r) => r.alert);

  /**
   * Re-applies the inhibition rules to a home's open alerts after a change (a source raised or
   * resolved). Holding back or releasing an alert is a change of its own, audited with the reason.
   */
  function reinhibit(homeId: string, changed?: AlertMessage): void {
    // Only a possible source changes anything (a home going silent raises hundreds of device alerts at once).
    if (changed !== undefined && !isInhibitionSource(changed)) return;
    // Sources are judged on the alerts as they stand; an alert held back does not hold others back.
    const open = [...openByKey.ofHome(homeId)];
    const alerts = open.map((r) => r.alert);
    for (const rec of open) {
      if (rec.alert.state === 'resolved') continue;
      const inh = inhibitionOf(rec.alert, alerts.filter((a) => a.id !== rec.alert.id));
      if (inh?.reason === rec.alert.inhibited) continue;
      if (inh !== undefined) {
        commit(rec, { inhibited: inh.reason }, 'updated', SYSTEM_ACTOR, { reason: `inhibited ${inh.reason} by ${inh.by.join(', ')}` }, true);
      } else {
        commit(rec, { inhibited: undefined }, 'updated', SYSTEM_ACTOR, { reason: 'inhibition_lifted' }, true);
      }
    }
  }

  function raise(s: Signal, reason: string = s.rule): void {
    const now = clock.now();
    const alert = compact<AlertMessage>({
      id: newId(),
      homeId: s.homeId,
      deviceId: s.deviceId,
      residentId: s.residentId,
      roomId: s.roomId,
      rule: s.rule,
      category: s.category,
      signal: s.signal,
      severity: s.severity,
      state: 'raised',
      ts: now,
      sourceTs: s.sourceTs,
      brokerTs: s.brokerTs,
      receivedTs: s.receivedTs,
      raisedAt: now,
      message: { zh: s.message.zh, en: s.message.en },
      version: 1,
      value: s.value,
      escalationLevel: 0,
    });
    alert.inhibited = inhibitionOf(alert, openOfHome(s.homeId))?.reason;
    const target = book.place(alert);
    alert.incidentId = target.id;
    const rec: Rec = { alert: compact(alert), key: s.key, latching: s.latching === true, audit: [], conditionCleared: false, last: s };
    byId.set(alert.id, rec);
    openByKey.set(s.key, rec);
    const entry = appendAudit(rec, 'raised', SYSTEM_ACTOR, 'raised', { reason });
    emit(rec, entry, true);
    // A point joining an escalated incident records its level (one escalation for the event); a
    // confirmed fire or a fall records its own reason instead.
    book.join(target, rec.alert, { catchUp: s.escalateNow !== true });
    // A second detector / multi-criteria confirmation: NFPA 72 lets it skip the sequence. A care
    // emergency (a fall) goes straight to the bureau too. It is the incident that escalates.
    if (s.escalateNow === true) book.escalate(target.id, BUREAU_LEVEL, immediateReason(s), SYSTEM_ACTOR);
    reinhibit(s.homeId, rec.alert);
  }

  function immediateReason(s: Signal): EscalationReason {
    return s.category === 'fire' ? 'confirmed_fire' : 'emergency';
  }

  function heldChanged(): void {
    try {
      deps.onHeldChange?.();
    } catch (err) {
      deps.logger?.error({ err, code: 'ALERTS_SINK_FAILED' }, 'held-condition sink failed');
    }
  }

  function hold(rec: Rec): void {
    const signal = rec.last ?? signalOf(rec);
    if (signal === undefined || rec.conditionCleared || closed) return;
    armHold(rec.key, signal, clock.now() + reraiseAfterMs);
    heldChanged();
  }

  function armHold(key: string, signal: Signal, dueAt: number): void {
    const prior = held.get(key);
    if (prior) clock.clearTimeout(prior.timer);
    const timer = clock.setTimeout(() => {
      const h = held.get(key);
      held.delete(key);
      if (h === undefined || closed || openByKey.has(key)) return;
      deps.logger?.warn({ key, homeId: h.signal.homeId }, 'condition still active after a manual resolve; raising it again');
      raise(h.signal, STILL_ACTIVE_REASON);
      heldChanged();
    }, Math.max(0, dueAt - clock.now()));
    held.set(key, { signal, timer, dueAt });
  }

  function onSignal(s: Signal): void {
    const rec = openByKey.get(s.key);
    const h = held.get(s.key);
    if (h !== undefined) {
      // Resolved by a person while still active: wait for the hold, or forget it once it clears.
      if (s.active) h.signal = s;
      else {
        clock.clearTimeout(h.timer);
        held.delete(s.key);
        heldChanged();
      }
      if (rec === undefined) return;
    }
    if (s.active) {
      if (rec === undefined) return raise(s);
      // A latched alert whose condition comes back (a second press of a call button, smoke again)
      // stays one alert, and the return is on its record. If a person had acknowledged it, it sounds
      // again and must be acknowledged again (a panel re-sounds a subsequent alarm once silenced; a
      // call ends only at the bedside, VDE 0834-1); a verdict other than a real fire is reopened, as
      // the incident's is (book.ts reAlert). Until session 22 the return was only an audit entry:
      // a second pull of a call cord, or real smoke on a detector whose alarm was judged false and
      // left open, paged nobody (a helper's hunt).
      if (rec.conditionCleared) {
        const a = rec.alert;
        if (a.acknowledgedAt !== undefined) {
          const keep = a.confirmation === 'real_fire';
          commit(
            rec,
            {
              state: keep ? a.state : 'raised',
              acknowledgedAt: undefined,
              acknowledgedBy: undefined,
              ...(keep ? {} : { confirmation: undefined, confirmedAt: undefined, confirmedBy: undefined }),
            },
            'reactivated',
            SYSTEM_ACTOR,
            { reason: s.rule },
          );
        } else emit(rec, appendAudit(rec, 'reactivated', SYSTEM_ACTOR, rec.alert.state, { reason: s.rule }), false);
      }
      rec.conditionCleared = false;
      rec.last = s;
      if (s.escalateNow === true && rec.alert.incidentId !== undefined) return book.escalate(rec.alert.incidentId, BUREAU_LEVEL, immediateReason(s), SYSTEM_ACTOR);
      if (severityRank(s.severity) > severityRank(rec.alert.severity)) {
        commit(rec, { severity: s.severity, signal: s.signal, message: { zh: s.message.zh, en: s.message.en }, value: s.value }, 'updated', SYSTEM_ACTOR, {
          reason: `severity ${rec.alert.severity} → ${s.severity}`,
        });
        reinhibit(s.homeId, rec.alert);
      }
      return;
    }
    if (rec === undefined) return;
    if (!rec.latching) {
      // The clear's own text is kept: e.g. "unverified alarm (peak 5.5 %/m did not persist 60 s), not a fire".
      commit(rec, { state: 'resolved', resolvedAt: clock.now(), resolvedBy: SYSTEM_ACTOR, message: { zh: s.message.zh, en: s.message.en } }, 'resolved', SYSTEM_ACTOR, {
        reason: 'condition_cleared',
      });
      reinhibit(s.homeId, rec.alert);
    } else if (!rec.conditionCleared) {
      // A latched alarm stays until a person resolves it; the restoral is still on record.
      rec.conditionCleared = true;
      emit(rec, appendAudit(rec, 'condition_cleared', SYSTEM_ACTOR, rec.alert.state), false);
    }
  }

  function visible(id: string, actor: Actor): Outcome<Rec> {
    const rec = byId.get(id);
    // Another home's alert is "not found", not "forbidden": its existence is not disclosed.
    if (rec === undefined || !canSeeAlert(actor, rec.alert)) return fail('ALERT_NOT_FOUND');
    if (rec.alert.state === 'resolved') return fail('ALERT_RESOLVED');
    return { ok: true, value: rec };
  }

  /** The open incident of a member alert; every raised alert has one. */
  function incidentOf(rec: Rec): IncidentMessage | undefined {
    const inc = rec.alert.incidentId === undefined ? undefined : book.get(rec.alert.incidentId);
    return inc?.state === 'resolved' ? undefined : inc;
  }

  /** An incident refusal, as the alert endpoints have always named it (INCIDENT_X → ALERT_X). */
  function asAlertOutcome(r: Outcome<unknown>, rec: Rec): Outcome<AlertMessage> {
    if (r.ok) return { ok: true, value: rec.alert };
    const code = r.code.replace(/^INCIDENT_/, 'ALERT_');
    return code in ALERT_ERRORS ? { ok: false, code: code as AlertErrorCode, message: r.message } : { ok: false, code: r.code, message: r.message };
  }

  function afterResolve(homeId: string): void {
    reinhibit(homeId);
  }

  function adopt(rec: Rec): void {
    // An open alert without an open incident (stored before incidents existed): grouped afresh.
    const target = book.place(rec.alert);
    rec.alert = { ...rec.alert, incidentId: target.id };
    book.adopt(target, rec.alert);
  }

  return {
    applySignals(signals) {
      for (const s of signals) {
        try {
          onSignal(s);
        } catch (err) {
          deps.logger?.error({ err, key: s.key, code: 'ALERTS_SIGNAL_FAILED' }, 'could not apply a signal');
        }
      }
    },
    // Acting on a member acts on its incident (one acknowledgement for the whole event); a point that
    // joined after the incident was acknowledged (and did not re-alert it) is acknowledged alone.
    ack(id, actor, comment) {
      const r = visible(id, actor);
      if (!r.ok) return r;
      const rec = r.value;
      const inc = incidentOf(rec);
      if (inc !== undefined && inc.acknowledgedAt === undefined) return asAlertOutcome(book.ack(inc.id, actor, comment), rec);
      if (rec.alert.acknowledgedAt !== undefined) return fail('ALERT_ALREADY_ACKNOWLEDGED', `already acknowledged by ${rec.alert.acknowledgedBy ?? '?'}`);
      port.ack(rec.alert.id, actor.username, inc?.id ?? '', comment);
      return { ok: true, value: rec.alert };
    },
    confirm(id, actor, confirmation, comment) {
      const r = visible(id, actor);
      if (!r.ok) return r;
      if (!(CONFIRMATIONS as readonly string[]).includes(confirmation)) return fail('API_BAD_REQUEST', `confirmation must be one of ${CONFIRMATIONS.join(', ')}`);
      const rec = r.value;
      const inc = incidentOf(rec);
      if (inc !== undefined && inc.confirmation === undefined) return asAlertOutcome(book.confirm(inc.id, actor, confirmation, comment), rec);
      if (rec.alert.acknowledgedAt === undefined && inc?.acknowledgedAt === undefined) return fail('ALERT_NOT_ACKNOWLEDGED');
      if (rec.alert.confirmation !== undefined) return fail('ALERT_ALREADY_CONFIRMED', `already confirmed as ${rec.alert.confirmation} by ${rec.alert.confirmedBy ?? '?'}`);
      port.ack(rec.alert.id, actor.username, inc?.id ?? '');
      port.confirm(rec.alert.id, actor.username, confirmation, inc?.id ?? '', comment);
      return { ok: true, value: rec.alert };
    },
    resolve(id, actor, comment) {
      const r = visible(id, actor);
      if (!r.ok) return r;
      const rec = r.value;
      const inc = incidentOf(rec);
      if (inc === undefined) return fail('ALERT_NOT_FOUND', 'the alert has no open incident');
      const out = asAlertOutcome(book.resolve(inc.id, actor, comment), rec);
      afterResolve(rec.alert.homeId);
      return out;
    },
    ackIncident: (id, actor, comment) => book.ack(id, actor, comment),
    confirmIncident: (id, actor, confirmation, comment) => book.confirm(id, actor, confirmation, comment),
    resolveIncident(id, actor, comment) {
      const out = book.resolve(id, actor, comment);
      if (out.ok) afterResolve(out.value.homeId);
      return out;
    },
    notePushed(id, reason) {
      const rec = byId.get(id);
      if (rec === undefined || rec.alert.pushedAt !== undefined || closed) return;
      rec.alert = { ...rec.alert, pushedAt: clock.now() };
      emit(rec, appendAudit(rec, 'pushed', SYSTEM_ACTOR, rec.alert.state, { reason: reason.slice(0, 200) }), false);
    },
    noteBureauPushed(id, reason) {
      const rec = byId.get(id);
      if (rec === undefined || rec.alert.bureauPushedAt !== undefined || closed) return;
      rec.alert = { ...rec.alert, bureauPushedAt: clock.now() };
      emit(rec, appendAudit(rec, 'pushed_bureau', SYSTEM_ACTOR, rec.alert.state, { reason: reason.slice(0, 200) }), false);
    },
    noteIncidentPushed: (id, reason) => book.notePushed(id, reason),
    noteIncidentBureauPushed: (id, reason) => book.noteBureauPushed(id, reason),
    noteIncidentNotification: (id, action, facts) => book.noteNotification(id, action, facts),
    held: () => [...held.entries()].map(([key, h]) => ({ key, signal: h.signal, dueAt: h.dueAt })),
    get: (id) => byId.get(id)?.alert,
    stored(id) {
      const rec = byId.get(id);
      return rec && { alert: rec.alert, key: rec.key, latching: rec.latching };
    },
    open: () => [...openByKey.values()].map((r) => r.alert),
    audit: (id) => byId.get(id)?.audit,
    incident: (id) => book.get(id),
    storedIncident: (id) => book.stored(id),
    openIncidents: () => book.open(),
    incidentAudit: (id) => book.audit(id),
    restore(alerts, audit = [], heldConditions = [], incidents) {
      const trail = new Map<string, AuditEntry[]>();
      for (const e of audit) (trail.get(e.alertId) ?? trail.set(e.alertId, []).get(e.alertId))?.push(e);
      const restored: Rec[] = [];
      for (const s of alerts) {
        if (s.alert.state === 'resolved' || byId.has(s.alert.id)) continue;
        const prior = openByKey.get(s.key);
        if (prior !== undefined && prior.alert.raisedAt >= s.alert.raisedAt) continue;
        const entries = (trail.get(s.alert.id) ?? []).sort((a, b) => a.seq - b.seq);
        // pushedAt is set without a new version; its audit entry carries it across the restart.
        const pushed = s.alert.pushedAt ?? entries.find((e) => e.action === 'pushed')?.ts;
        const bureauPushed = s.alert.bureauPushedAt ?? entries.find((e) => e.action === 'pushed_bureau')?.ts;
        const alert = compact<AlertMessage>({ ...s.alert, pushedAt: pushed, bureauPushedAt: bureauPushed });
        // The latest of a clear and a return of the condition tells whether it is still active.
        const cleared = entries.filter((e) => e.action === 'condition_cleared' || e.action === 'reactivated').at(-1)?.action === 'condition_cleared';
        const rec: Rec = { alert, key: s.key, latching: s.latching, audit: entries, conditionCleared: cleared };
        byId.set(s.alert.id, rec);
        openByKey.set(s.key, rec);
        restored.push(rec);
      }
      // Incidents after their members, so that their points show the members' latest versions.
      book.restore(incidents?.incidents ?? [], incidents?.audit ?? []);
      for (const rec of restored.sort((a, b) => a.alert.raisedAt - b.alert.raisedAt)) if (incidentOf(rec) === undefined && openByKey.get(rec.key) === rec) adopt(rec);
      // Held conditions come back with their original due time (fired at once if it passed while down).
      for (const h of heldConditions) {
        if (closed || openByKey.has(h.key) || held.has(h.key) || typeof h.dueAt !== 'number' || h.signal?.key !== h.key) continue;
        armHold(h.key, h.signal, h.dueAt);
      }
    },
    close() {
      closed = true;
      book.close();
      // Timers stop; the entries stay so that the final snapshot (saved after this) still holds them.
      for (const h of held.values()) clock.clearTimeout(h.timer);
    },
  };
}
