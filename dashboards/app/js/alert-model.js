// Client-side alert state: one entry per alert id, highest `version` wins (contract/payloads.ts),
// so a stale copy arriving late (socket after a REST re-sync, or the reverse) never undoes a newer one.

const SEVERITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
/**
 * NFPA 72 positive alarm sequence defaults: acknowledge within 15 s, investigate within 180 s.
 * A home's own deadlines (registry ackDeadlineS / confirmDeadlineS, sent by GET /api/homes) win.
 */
export const PAS_ACK_S = 15;
export const PAS_CONFIRM_S = 180;
/** Ladder level at which an alert is with the bureau (alerts/access.ts BUREAU_LEVEL). */
export const BUREAU_LEVEL = 2;

export function createAlertModel(onChange) {
  const byId = new Map();
  /**
   * When each id last came live (a socket change or an action's reply), on a counter: a full list
   * asked for before that (mark()) is older than it and must not take it away (issue: a cluster
   * snapshot arriving seconds after its connect wiped an alarm raised meanwhile).
   */
  const liveAt = new Map();
  let seq = 0;

  function upsert(a) {
    const prev = byId.get(a.id);
    if (prev && prev.version >= a.version) return false;
    byId.set(a.id, a);
    return true;
  }

  return {
    /** One change from the socket. */
    apply(a) {
      liveAt.set(a.id, ++seq);
      if (upsert(a)) onChange();
    },
    /** Taken when a full list is asked for (socket connect, REST request); give it to replaceOpen. */
    mark: () => seq,
    /**
     * The full open set from the server (snapshot or GET /api/alerts). Anything open locally but
     * absent from it was resolved while we were away; anything new is added.
     */
    replaceOpen(list, keep = () => false, since = undefined) {
      const ids = new Set(list.map((a) => a.id));
      const newer = (id) => since !== undefined && (liveAt.get(id) ?? 0) > since;
      for (const [id, a] of byId) {
        if (ids.has(id) || a.state === 'resolved' || keep(a) || newer(id)) continue;
        byId.delete(id);
        liveAt.delete(id);
      }
      for (const a of list) upsert(a);
      onChange();
    },
    get: (id) => byId.get(id),
    all: () => [...byId.values()],
    open: () => [...byId.values()].filter((a) => a.state !== 'resolved'),
    clear() {
      byId.clear();
      liveAt.clear();
    },
  };
}

export function isFireAlarm(a) {
  return a.category === 'fire' && a.signal === 'alarm' && a.severity === 'critical';
}

/** A fire alarm with the bureau for a call to 119, until it is found false / a test / a fault, or resolved. */
export function isCall119(a) {
  if (!isFireAlarm(a) || a.state === 'resolved') return false;
  if (a.confirmation !== undefined && a.confirmation !== 'real_fire') return false;
  return (a.escalationLevel ?? 0) >= BUREAU_LEVEL || a.state === 'escalated' || a.confirmation === 'real_fire';
}

/** Most severe first, then newest first (issue 5). */
export function bySeverityThenNewest(a, b) {
  return (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) || b.raisedAt - a.raisedAt;
}

/** Where the alert is in its positive alarm sequence, for the countdown; `home` is its /api/homes entry. */
export function pasPhase(a, now, home) {
  if (!isFireAlarm(a) || a.state === 'resolved') return undefined;
  const ackS = home?.ackDeadlineS ?? PAS_ACK_S;
  const confirmS = home?.confirmDeadlineS ?? PAS_CONFIRM_S;
  if (a.acknowledgedAt === undefined) return { phase: 'ack', remainingMs: a.raisedAt + ackS * 1000 - now, totalS: ackS };
  if (a.confirmation === undefined) return { phase: 'confirm', remainingMs: a.acknowledgedAt + confirmS * 1000 - now, totalS: confirmS };
  return undefined;
}

/**
 * Which sound an alert calls for. A fire alarm proper (severity critical) sounds the evacuation
 * pattern; any other alarm-class signal (an unverified smoke pre-alarm, a low gas level) is a
 * pre-alarm and must never sound like a fire (issue 3). Supervisory, trouble and care keep their own.
 */
export function soundClass(a) {
  if (a.signal === 'alarm') return isFireAlarm(a) ? 'alarm' : 'prealarm';
  return a.signal;
}

/** A device's state on the floor plan from its open alerts and its live status. */
export function deviceState(deviceId, openAlerts, live) {
  const mine = openAlerts.filter((a) => a.deviceId === deviceId);
  if (mine.some(isFireAlarm)) return 'alarm';
  if (mine.some((a) => a.signal === 'alarm')) return 'prealarm';
  if (mine.some((a) => a.signal === 'supervisory')) return 'supervisory';
  if (live && live.online === false) return 'offline';
  if (mine.some((a) => /offline|silent|no_data|comm/.test(a.rule))) return 'offline';
  if (mine.some((a) => a.signal === 'trouble')) return 'trouble';
  if (!live || live.lastSeen === null) return live && live.online === true ? 'normal' : 'unknown';
  return 'normal';
}

/** A home's state on the bureau grid. */
export function homeState(homeAlerts) {
  const open = homeAlerts.filter((a) => a.state !== 'resolved');
  if (open.some(isCall119)) return 'escalated';
  // A fire alarm found false, a test or a fault waits for its reset but is no longer a fire.
  if (open.some((a) => isFireAlarm(a) && (a.confirmation === undefined || a.confirmation === 'real_fire'))) return 'fire';
  if (open.some((a) => /comm|home_offline|home_silent/.test(a.rule))) return 'comm';
  if (open.some((a) => a.signal === 'trouble' || a.signal === 'supervisory')) return 'trouble';
  return 'normal';
}
