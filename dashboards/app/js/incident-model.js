// Client-side incident state (issue 11): one entry per incident id, highest `version` wins
// (contract/incidents.ts), so a stale copy arriving late (socket after a REST re-sync, or the
// reverse) never undoes a newer one. An incident groups the alerts of one event, as a fire-alarm
// control panel shows one fire with its first alarm point and the points that joined it.
// Pure functions and a small store: no DOM, no clock reads (the caller passes `now`).

import { BUREAU_LEVEL, PAS_ACK_S, PAS_CONFIRM_S } from './alert-model.js';

const SEVERITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };

export function createIncidentModel(onChange) {
  const byId = new Map();

  function upsert(i) {
    const prev = byId.get(i.id);
    if (prev && prev.version >= i.version) return false;
    byId.set(i.id, i);
    return true;
  }

  return {
    /** One change from the socket or an action's reply. */
    apply(i) {
      if (upsert(i)) onChange();
    },
    /**
     * The full open set from the server (`incidents` snapshot or GET /api/incidents). Anything open
     * locally but absent from it was resolved while we were away; anything new is added. `keep`
     * spares incidents the given list cannot contain (the bureau's stream is narrower than its REST).
     */
    replaceOpen(list, keep = () => false) {
      const ids = new Set(list.map((i) => i.id));
      for (const [id, i] of byId) if (!ids.has(id) && i.state !== 'resolved' && !keep(i)) byId.delete(id);
      for (const i of list) upsert(i);
      onChange();
    },
    get: (id) => byId.get(id),
    all: () => [...byId.values()],
    open: () => [...byId.values()].filter((i) => i.state !== 'resolved'),
    clear() {
      byId.clear();
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

/**
 * When the incident's positive alarm sequence started: it became a fire alarm proper. For an
 * incident opened by a fire alarm that is `openedAt`; one opened by a pre-alarm starts its NFPA 72
 * §23.8.1.3 acknowledgement time when the first critical alarm point joined.
 */
export function pasStart(i) {
  const first = firstPoint(i);
  if (first && pointSoundClass(first) === 'alarm') return i.openedAt;
  const critical = i.points.find((p) => pointSoundClass(p) === 'alarm');
  return critical ? critical.joinedAt : i.openedAt;
}

/** The incident's one countdown (alert-model.js pasPhase, on the incident's fields); `home` is its /api/homes entry. */
export function incidentPasPhase(i, now, home) {
  if (!isFireIncident(i) || i.state === 'resolved') return undefined;
  const ackS = home?.ackDeadlineS ?? PAS_ACK_S;
  const confirmS = home?.confirmDeadlineS ?? PAS_CONFIRM_S;
  if (i.acknowledgedAt === undefined) return { phase: 'ack', remainingMs: pasStart(i) + ackS * 1000 - now, totalS: ackS };
  if (i.confirmation === undefined) return { phase: 'confirm', remainingMs: i.acknowledgedAt + confirmS * 1000 - now, totalS: confirmS };
  return undefined;
}

/**
 * Points that joined after the incident was acknowledged and that a person has not silenced on
 * this page: a panel's sounder resounds for a subsequent alarm (GB 4717 / EN 54-2 §7.2: a new
 * alarm re-activates silenced sounders). Held-back (inhibited) points never sound.
 */
export function newPointsAfterAck(i, silenced = new Set()) {
  if (i.acknowledgedAt === undefined || i.state === 'resolved') return [];
  return i.points.filter((p) => p.inhibited === undefined && p.joinedAt > i.acknowledgedAt && p.state !== 'resolved' && !silenced.has(p.alertId));
}

/** The sound classes an incident waits with: its own while unacknowledged, else those of new points. */
export function waitingSoundClasses(i, silenced) {
  if (i.state === 'resolved') return [];
  if (i.acknowledgedAt === undefined) return [incidentSoundClass(i)];
  return newPointsAfterAck(i, silenced).map(pointSoundClass);
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
