import { randomUUID } from 'node:crypto';
import type { Clock, ClockTimer } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import { CONFIRMATIONS, SEVERITIES, type AlertMessage, type AlertState, type Confirmation } from '../contract/payloads.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import type { Signal } from './rules/types.ts';
import { BUREAU_LEVEL, canSeeAlert, type Actor } from './access.ts';
import { DEFAULT_POLICY, nextDue, type EscalationPolicy, type EscalationReason } from './escalation.ts';
import { fail, type Outcome } from './errors.ts';

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
  /** Re-installs open alerts after a restart and re-arms their deadlines; emits nothing. */
  restore(alerts: readonly StoredAlert[], audit?: readonly AuditEntry[], held?: readonly HeldCondition[]): void;
  close(): void;
}

interface Rec {
  alert: AlertMessage;
  readonly key: string;
  readonly latching: boolean;
  readonly audit: AuditEntry[];
  timer?: ClockTimer;
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

function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
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
  const policy = deps.policy ?? DEFAULT_POLICY;
  const newId = deps.newId ?? randomUUID;
  const keepResolved = deps.keepResolved ?? 1000;
  const byId = new Map<string, Rec>();
  const openByKey = new Map<string, Rec>();
  const resolvedOrder: string[] = [];
  const held = new Map<string, Held>();
  const reraiseAfterMs = deps.reraiseAfterMs ?? REARM_AFTER_MS;
  let closed = false;

  function emit(rec: Rec, audit: AuditEntry, changed: boolean): void {
    try {
      deps.onChange({ alert: rec.alert, key: rec.key, latching: rec.latching, audit, changed });
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

  /** Applies one change: new version, audit entry, emission, re-armed deadline. */
  function commit(rec: Rec, patch: Partial<AlertMessage>, action: AuditAction, by: string, extra: Partial<AuditEntry> = {}): AlertMessage {
    const from = rec.alert.state;
    rec.alert = compact<AlertMessage>({ ...rec.alert, ...patch, version: rec.alert.version + 1, ts: clock.now() });
    const entry = appendAudit(rec, action, by, from, extra);
    if (rec.alert.state === 'resolved') retire(rec);
    else schedule(rec);
    emit(rec, entry, true);
    return rec.alert;
  }

  function retire(rec: Rec): void {
    if (rec.timer) clock.clearTimeout(rec.timer);
    rec.timer = undefined;
    if (openByKey.get(rec.key) === rec) openByKey.delete(rec.key);
    resolvedOrder.push(rec.alert.id);
    while (resolvedOrder.length > keepResolved) byId.delete(resolvedOrder.shift() ?? '');
  }

  function schedule(rec: Rec): void {
    if (rec.timer) clock.clearTimeout(rec.timer);
    rec.timer = undefined;
    if (closed) return;
    const due = nextDue(rec.alert, policy, registry.home(rec.alert.homeId));
    if (due === undefined) return;
    rec.timer = clock.setTimeout(() => onDue(rec), Math.max(0, due.at - clock.now()));
  }

  function onDue(rec: Rec): void {
    rec.timer = undefined;
    if (closed || rec.alert.state === 'resolved') return;
    const due = nextDue(rec.alert, policy, registry.home(rec.alert.homeId));
    if (due === undefined) return;
    if (due.at > clock.now()) return schedule(rec);
    if (due.kind === 'escalate') escalate(rec, due.level, due.reason, SYSTEM_ACTOR);
    else commit(rec, {}, 'reminder', SYSTEM_ACTOR);
  }

  function escalate(rec: Rec, level: number, reason: EscalationReason, by: string): void {
    if ((rec.alert.escalationLevel ?? 0) >= level) return;
    deps.logger?.warn({ alertId: rec.alert.id, homeId: rec.alert.homeId, level, reason }, 'alert escalated');
    commit(rec, { state: 'escalated', escalationLevel: level }, 'escalated', by, { reason });
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
    const rec: Rec = { alert, key: s.key, latching: s.latching === true, audit: [], conditionCleared: false, last: s };
    byId.set(alert.id, rec);
    openByKey.set(s.key, rec);
    const entry = appendAudit(rec, 'raised', SYSTEM_ACTOR, 'raised', { reason });
    schedule(rec);
    emit(rec, entry, true);
    // A second detector / multi-criteria confirmation: NFPA 72 lets it skip the sequence. A care
    // emergency (a fall) goes straight to the bureau too.
    if (s.escalateNow === true) escalate(rec, BUREAU_LEVEL, immediateReason(s), SYSTEM_ACTOR);
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
      // stays one alert, and the return is on its record.
      if (rec.conditionCleared) emit(rec, appendAudit(rec, 'reactivated', SYSTEM_ACTOR, rec.alert.state, { reason: s.rule }), false);
      rec.conditionCleared = false;
      rec.last = s;
      if (s.escalateNow === true) return escalate(rec, BUREAU_LEVEL, immediateReason(s), SYSTEM_ACTOR);
      if (severityRank(s.severity) > severityRank(rec.alert.severity)) {
        commit(rec, { severity: s.severity, signal: s.signal, message: { zh: s.message.zh, en: s.message.en }, value: s.value }, 'updated', SYSTEM_ACTOR, {
          reason: `severity ${rec.alert.severity} → ${s.severity}`,
        });
      }
      return;
    }
    if (rec === undefined) return;
    if (!rec.latching) {
      // The clear's own text is kept: e.g. "unverified alarm (peak 5.5 %/m did not persist 60 s), not a fire".
      commit(rec, { state: 'resolved', resolvedAt: clock.now(), resolvedBy: SYSTEM_ACTOR, message: { zh: s.message.zh, en: s.message.en } }, 'resolved', SYSTEM_ACTOR, {
        reason: 'condition_cleared',
      });
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

  const cut = (c: string | undefined): string | undefined => (c === undefined || c === '' ? undefined : c.slice(0, MAX_COMMENT));

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
    ack(id, actor, comment) {
      const r = visible(id, actor);
      if (!r.ok) return r;
      if (r.value.alert.acknowledgedAt !== undefined) return fail('ALERT_ALREADY_ACKNOWLEDGED', `already acknowledged by ${r.value.alert.acknowledgedBy ?? '?'}`);
      const now = clock.now();
      const alert = commit(r.value, { state: 'acknowledged', acknowledgedBy: actor.username, acknowledgedAt: now, comment: cut(comment) ?? r.value.alert.comment }, 'acknowledged', actor.username, {
        comment: cut(comment),
      });
      return { ok: true, value: alert };
    },
    confirm(id, actor, confirmation, comment) {
      const r = visible(id, actor);
      if (!r.ok) return r;
      if (!(CONFIRMATIONS as readonly string[]).includes(confirmation)) return fail('API_BAD_REQUEST', `confirmation must be one of ${CONFIRMATIONS.join(', ')}`);
      const rec = r.value;
      if (rec.alert.acknowledgedAt === undefined) return fail('ALERT_NOT_ACKNOWLEDGED');
      if (rec.alert.confirmation !== undefined) return fail('ALERT_ALREADY_CONFIRMED', `already confirmed as ${rec.alert.confirmation} by ${rec.alert.confirmedBy ?? '?'}`);
      commit(rec, { state: 'confirmed', confirmation, confirmedBy: actor.username, confirmedAt: clock.now(), comment: cut(comment) ?? rec.alert.comment }, 'confirmed', actor.username, {
        confirmation,
        comment: cut(comment),
      });
      // NFPA 72 positive alarm sequence: a fire verified as real goes to the bureau (call 119) at once.
      if (confirmation === 'real_fire') escalate(rec, BUREAU_LEVEL, 'real_fire', actor.username);
      return { ok: true, value: rec.alert };
    },
    resolve(id, actor, comment) {
      const r = visible(id, actor);
      if (!r.ok) return r;
      const rec = r.value;
      if (rec.latching && rec.alert.category === 'fire') {
        // A latched fire alarm is reset only once someone has said what it was (issue 3 "Handling").
        if (rec.alert.confirmation === undefined) return fail('ALERT_NOT_CONFIRMED');
      } else if (rec.latching) {
        // A latched care emergency (a fall): someone went, and says what they found and did (issue 4).
        if (rec.alert.acknowledgedAt === undefined) return fail('ALERT_NOT_ACKNOWLEDGED', 'acknowledge the alert before resolving it');
        if (cut(comment?.trim()) === undefined) return fail('ALERT_COMMENT_REQUIRED');
      }
      const stillActive = !rec.conditionCleared;
      const alert = commit(rec, { state: 'resolved', resolvedBy: actor.username, resolvedAt: clock.now(), comment: cut(comment) ?? rec.alert.comment }, 'resolved', actor.username, {
        comment: cut(comment),
        ...(stillActive ? { reason: 'condition_still_active' } : {}),
      });
      if (stillActive) hold(rec);
      return { ok: true, value: alert };
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
    held: () => [...held.entries()].map(([key, h]) => ({ key, signal: h.signal, dueAt: h.dueAt })),
    get: (id) => byId.get(id)?.alert,
    stored(id) {
      const rec = byId.get(id);
      return rec && { alert: rec.alert, key: rec.key, latching: rec.latching };
    },
    open: () => [...openByKey.values()].map((r) => r.alert),
    audit: (id) => byId.get(id)?.audit,
    restore(alerts, audit = [], heldConditions = []) {
      const trail = new Map<string, AuditEntry[]>();
      for (const e of audit) (trail.get(e.alertId) ?? trail.set(e.alertId, []).get(e.alertId))?.push(e);
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
        schedule(rec);
      }
      // Held conditions come back with their original due time (fired at once if it passed while down).
      for (const h of heldConditions) {
        if (closed || openByKey.has(h.key) || held.has(h.key) || typeof h.dueAt !== 'number' || h.signal?.key !== h.key) continue;
        armHold(h.key, h.signal, h.dueAt);
      }
    },
    close() {
      closed = true;
      for (const rec of byId.values()) if (rec.timer) clock.clearTimeout(rec.timer);
      // Timers stop; the entries stay so that the final snapshot (saved after this) still holds them.
      for (const h of held.values()) clock.clearTimeout(h.timer);
    },
  };
}
