// Client-side incident state (issue 11): one entry per incident id, highest `version` wins
// (contract/incidents.ts), so a stale copy arriving late (socket after a REST re-sync, or the
// reverse) never undoes a newer one. An incident groups the alerts of one event, as a fire-alarm
// control panel shows one fire with its first alarm point and the points that joined it.
// Pure functions and a small store: no DOM, no clock reads (the caller passes `now`).

import { BUREAU_LEVEL, PAS_ACK_S, PAS_CONFIRM_S } from './alert-model.js';

const SEVERITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };

export function createIncidentModel(onChange) {
  const byId = new Map();
  /**
   * When each id last came live (a socket change or an action's reply), on a counter: a full list
   * asked for before that (mark()) is older than it and must not take it away (issue: a cluster
   * snapshot arriving seconds after its connect wiped an alarm raised meanwhile).
   */
  const liveAt = new Map();
  let seq = 0;

  function upsert(i) {
    const prev = byId.get(i.id);
    if (prev && prev.version >= i.version) return false;
    byId.set(i.id, i);
    return true;
  }

  return {
    /** One change from the socket or an action's reply. */
    apply(i) {
      liveAt.set(i.id, ++seq);
      if (upsert(i)) onChange();
    },
    /** Taken when a full list is asked for (socket connect, REST request); give it to replaceOpen. */
    mark: () => seq,
    /**
     * The full open set from the server (`incidents` snapshot or GET /api/incidents). Anything open
     * locally but absent from it was resolved while we were away; anything new is added. `keep`
     * spares incidents the given list cannot contain (the bureau's stream is narrower than its REST).
     */
    replaceOpen(list, keep = () => false, since = undefined) {
      const ids = new Set(list.map((i) => i.id));
      const newer = (id) => since !== undefined && (liveAt.get(id) ?? 0) > since;
      for (const [id, i] of byId) {
        if (ids.has(id) || i.state === 'resolved' || keep(i) || newer(id)) continue;
        byId.delete(id);
        liveAt.delete(id);
      }
      for (const i of list) upsert(i);
      onChange();
    },
    get: (id) => byId.get(id),
    all: () => [...byId.values()],
    open: () => [...byId.values()].filter((i) => i.state !== 'resolved'),
    clear() {
      byId.clear();
      liveAt.clear();
    },
  };
}

/** A fire alarm proper (severity critical), the incident form of alert-model.js isFireAlarm. */
export function isFireIncident(i) {
  return i.kind === 'fire' && i.signal === 'alarm' && i.severity === 'critical';
}

/** With the bureau for a call to 119, until found false / a test / a fault, or resolved (as isCall119). */
export function isCall119Incident(i) {
  if (!isFireIncident(i) || i.state === 'resolved') return false;
  if (i.confirmation !== undefined && i.confirmation !== 'real_fire') return false;
  return (i.escalationLevel ?? 0) >= BUREAU_LEVEL || i.state === 'escalated' || i.confirmation === 'real_fire';
}

/** Which sound a point or an incident calls for: a fire alarm proper, else a pre-alarm, else its class. */
export function pointSoundClass(p) {
  if (p.signal === 'alarm') return p.severity === 'critical' ? 'alarm' : 'prealarm';
  return p.signal;
}

export function incidentSoundClass(i) {
  if (i.signal === 'alarm') return isFireIncident(i) ? 'alarm' : 'prealarm';
  return i.signal;
}

/** The first alarm point: the one that opened the incident (`firstAlertId`), else the first to join. */
export function firstPoint(i) {
  return i.points.find((p) => p.alertId === i.firstAlertId) ?? i.points[0];
}

/** The points after the first, in the order they joined (the server sends them in join order). */
export function laterPoints(i) {
  const first = firstPoint(i);
  return i.points.filter((p) => p !== first);
}

const ACKED = new Set(['acknowledged', 'confirmed']);
const rank = (sev) => SEVERITY_RANK[sev] ?? 9;

/**
 * When the incident was last acknowledged, even after a re-alert cleared its `acknowledgedAt`: the
 * latest acknowledgement of its members (`ackOf(alertId)`, from the page's alert model), else the
 * join time of the last point whose state says it was acknowledged (a lower bound).
 */
function lastAckAt(i, ackOf) {
  if (i.acknowledgedAt !== undefined) return i.acknowledgedAt;
  let last;
  for (const p of i.points) {
    const at = ackOf?.(p.alertId) ?? (ACKED.has(p.state) ? p.joinedAt : undefined);
    if (at !== undefined && (last === undefined || at > last)) last = at;
  }
  return last;
}

const isFireAlarmPoint = (p) => p.inhibited === undefined && pointSoundClass(p) === 'alarm';

/**
 * A point that joined the incident since its last acknowledgement `acked`: not acknowledged itself
 * (acknowledging an incident acknowledges every open member), joined at or after that time.
 */
const joinedSince = (p, acked, ackOf) => !ACKED.has(p.state) && ackOf?.(p.alertId) === undefined && p.joinedAt >= acked;

/**
 * When the incident's current unacknowledged period began, which its countdown runs from (the
 * alerts process's incident book: opened, or re-alerted). `alertedAt` when the server sends it;
 * else derived the way the book re-alerts (alerts/incidents/grouping.ts reAlertOf): a point more
 * severe than all before it restarts the period (a pre-alarm incident becomes a fire alarm), and
 * so does the first fire alarm point that joined after the incident was acknowledged.
 */
export function pasStart(i, ackOf) {
  if (typeof i.alertedAt === 'number') return i.alertedAt;
  const first = firstPoint(i);
  if (!first) return i.openedAt;
  let start = i.openedAt;
  let worst = rank(first.severity);
  for (const p of laterPoints(i)) {
    if (p.inhibited !== undefined) continue;
    if (rank(p.severity) < worst) {
      worst = rank(p.severity);
      start = Math.max(start, p.joinedAt);
    }
  }
  const acked = i.acknowledgedAt === undefined ? lastAckAt(i, ackOf) : undefined;
  if (acked !== undefined) {
    const realert = i.points.find((p) => isFireAlarmPoint(p) && joinedSince(p, acked, ackOf));
    if (realert) start = Math.max(start, realert.joinedAt);
  }
  return start;
}

/** The incident's one countdown (alert-model.js pasPhase, on the incident's fields); `home` is its /api/homes entry. */
export function incidentPasPhase(i, now, home, ackOf) {
  if (!isFireIncident(i) || i.state === 'resolved') return undefined;
  // An incident of nothing but held-back points has no countdown of its own (it waits for its source).
  if (!i.points.some((p) => p.state !== 'resolved' && p.inhibited === undefined)) return undefined;
  const ackS = home?.ackDeadlineS ?? PAS_ACK_S;
  const confirmS = home?.confirmDeadlineS ?? PAS_CONFIRM_S;
  if (i.acknowledgedAt === undefined) return { phase: 'ack', remainingMs: pasStart(i, ackOf) + ackS * 1000 - now, totalS: ackS };
  if (i.confirmation === undefined) return { phase: 'confirm', remainingMs: i.acknowledgedAt + confirmS * 1000 - now, totalS: confirmS };
  return undefined;
}

/**
 * Alarm points that joined after the incident's last acknowledgement, for the "new alarm point"
 * banner and the sound: a panel's sounder resounds for a subsequent alarm (EN 54-2 §7.2 / GB 4717).
 * - Unacknowledged incident (the server re-alerted it when the point joined): those points; the
 *   incident itself sounds, no silencing here. Never acknowledged: none (every point is new).
 * - Acknowledged incident (a server that does not re-alert): points that joined after the
 *   acknowledgement and that a person has not silenced on this page.
 * Held-back (inhibited) points and non-alarm signals never count.
 */
export function newPoints(i, silenced = new Set(), ackOf = undefined) {
  if (i.state === 'resolved') return [];
  const alarm = (p) => p.inhibited === undefined && p.signal === 'alarm' && p.state !== 'resolved';
  if (i.acknowledgedAt !== undefined) return i.points.filter((p) => alarm(p) && p.joinedAt > i.acknowledgedAt && !silenced.has(p.alertId));
  const acked = lastAckAt(i, ackOf);
  if (acked === undefined) return [];
  return i.points.filter((p) => alarm(p) && joinedSince(p, acked, ackOf));
}

/** The sound classes an incident waits with: its own while unacknowledged, else those of new points. */
export function waitingSoundClasses(i, silenced) {
  if (i.state === 'resolved') return [];
  if (i.acknowledgedAt === undefined) return [incidentSoundClass(i)];
  return newPoints(i, silenced).map(pointSoundClass);
}

/** Most severe first, then call-119 first, then newest first. */
export function incidentOrder(a, b) {
  return (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) || Number(isCall119Incident(b)) - Number(isCall119Incident(a)) || b.openedAt - a.openedAt;
}

/**
 * Which alerts still need a card of their own: those without an incident (an older server), and
 * those whose incident has not arrived yet (the alert came first) — never hidden in the gap.
 */
export function standaloneAlerts(alerts, incidents) {
  return alerts.filter((a) => {
    const i = a.incidentId === undefined ? undefined : incidents.get(a.incidentId);
    return i === undefined || i.state === 'resolved';
  });
}

/** Disablements still in force at `now`: not ended by a person, not past their end. */
export function activeDisablements(list, now) {
  return list.filter((d) => d.endedAt === undefined && d.until > now);
}

/**
 * The disablement that covers a device, if any: its own, else its room's, else its home's (the
 * narrowest first, so the page names what was actually switched off).
 */
export function disablementFor(list, { homeId, roomId, deviceId }) {
  return (
    list.find((d) => d.scope === 'device' && d.targetId === deviceId && d.homeId === homeId) ??
    list.find((d) => d.scope === 'room' && d.targetId === roomId && d.homeId === homeId) ??
    list.find((d) => d.scope === 'home' && d.homeId === homeId)
  );
}
