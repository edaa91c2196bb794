import type { IncidentKind } from '../../contract/incidents.ts';
import { SEVERITIES, type AlertCategory, type Severity, type SignalClass } from '../../contract/payloads.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { isFireAlarmPoint } from './inhibition.ts';

/**
 * Which incident an alert belongs to (issue 11 "one fire, one incident"). Pure: no clock, no I/O.
 * Like Alertmanager's aggregation groups (dispatch/dispatch.go, keyed by `group_by` labels), except
 * that a fire groups by *place*, as a fire-alarm control panel shows one fire with its first alarm
 * point and the points that joined it:
 *
 * - **fire** (category fire): joins the open fire incident of the home whose rooms include the
 *   alert's room or a room adjoining it (registry `Room.adjacent`, taken as symmetric); each point
 *   extends the incident's rooms, so a fire spreading bedroom → corridor → next room stays one
 *   incident. With several candidates the oldest wins (incidents are not merged: each keeps its
 *   own acknowledgement and trail). No open candidate: a new fire incident.
 * - **care** (category care): one per resident; a care signal without a resident, one per room.
 * - **device** (category device, trouble): one per device; the home-level communication loss
 *   (`home_comm_loss`) is one per home and takes in the per-device offline alerts it explains.
 */

/** What grouping looks at in an alert. */
export interface GroupSubject {
  readonly homeId: string;
  readonly category: AlertCategory;
  readonly rule: string;
  readonly roomId?: string;
  readonly deviceId?: string;
  readonly residentId?: string;
}

/** What grouping looks at in an open incident. */
export interface GroupView {
  readonly id: string;
  readonly homeId: string;
  readonly kind: IncidentKind;
  readonly key: string;
  readonly roomIds: readonly string[];
  readonly openedAt: number;
}

export interface NewGroup {
  readonly kind: IncidentKind;
  readonly key: string;
  readonly residentId?: string;
  readonly deviceId?: string;
}

export type Placement = { readonly join: string } | { readonly open: NewGroup };

/** Neighbouring rooms of a room, both directions of `Room.adjacent`. */
export type Adjacency = (homeId: string, roomId: string) => readonly string[];

/** The home-level communication loss rule (alerts/rules/fire/supervision.ts). */
export const HOME_COMM_LOSS_RULE = 'home_comm_loss';
/** Per-device alerts a home-level communication loss explains and takes into its incident. */
export const EXPLAINED_BY_HOME_LOSS: readonly string[] = ['device_offline'];

export function kindOf(category: AlertCategory): IncidentKind {
  return category;
}

/** The group key of an alert; fire keys name the first point's room, but fires group by place. */
export function groupOf(a: GroupSubject): NewGroup {
  const h = a.homeId;
  switch (a.category) {
    case 'fire':
      return { kind: 'fire', key: `fire:${h}:${a.roomId !== undefined ? `room:${a.roomId}` : `device:${a.deviceId ?? a.rule}`}` };
    case 'care':
      if (a.residentId !== undefined) return { kind: 'care', key: `care:${h}:resident:${a.residentId}`, residentId: a.residentId };
      if (a.roomId !== undefined) return { kind: 'care', key: `care:${h}:room:${a.roomId}` };
      return { kind: 'care', key: `care:${h}:device:${a.deviceId ?? a.rule}`, ...(a.deviceId !== undefined ? { deviceId: a.deviceId } : {}) };
    case 'device':
      if (a.rule === HOME_COMM_LOSS_RULE) return { kind: 'device', key: `device:${h}:home` };
      if (a.deviceId !== undefined) return { kind: 'device', key: `device:${h}:${a.deviceId}`, deviceId: a.deviceId };
      return { kind: 'device', key: `device:${h}:rule:${a.rule}` };
  }
}

/** Where an alert goes: into an open incident, or a new one. */
export function place(a: GroupSubject, open: readonly GroupView[], adjacency: Adjacency): Placement {
  const own = groupOf(a);
  const ofHome = open.filter((g) => g.homeId === a.homeId && g.kind === own.kind);
  const oldest = (gs: readonly GroupView[]): GroupView | undefined => gs.reduce<GroupView | undefined>((b, g) => (b === undefined || g.openedAt < b.openedAt ? g : b), undefined);
  if (own.kind === 'fire' && a.roomId !== undefined) {
    const near = new Set([a.roomId, ...adjacency(a.homeId, a.roomId)]);
    const hit = oldest(ofHome.filter((g) => g.roomIds.some((r) => near.has(r))));
    if (hit !== undefined) return { join: hit.id };
    return { open: own };
  }
  if (own.kind === 'device' && EXPLAINED_BY_HOME_LOSS.includes(a.rule)) {
    const home = ofHome.find((g) => g.key === `device:${a.homeId}:home`);
    if (home !== undefined) return { join: home.id };
  }
  const same = oldest(ofHome.filter((g) => g.key === own.key));
  return same !== undefined ? { join: same.id } : { open: own };
}

/** Symmetric room adjacency from the registry: A lists B, or B lists A. */
export function adjacencyOf(registry: Pick<RegistryIndex, 'site'>): Adjacency {
  const map = new Map<string, Set<string>>();
  const add = (home: string, a: string, b: string): void => {
    const k = `${home}/${a}`;
    (map.get(k) ?? map.set(k, new Set()).get(k))?.add(b);
  };
  for (const home of registry.site.homes) {
    for (const floor of home.floors) {
      for (const room of floor.rooms) {
        for (const other of room.adjacent) {
          if (other === room.id) continue;
          add(home.id, room.id, other);
          add(home.id, other, room.id);
        }
      }
    }
  }
  return (homeId, roomId) => [...(map.get(`${homeId}/${roomId}`) ?? [])];
}

export const severityRank = (s: Severity): number => SEVERITIES.length - SEVERITIES.indexOf(s);
/** NFPA 72 keeps the classes apart and ranks alarm above supervisory above trouble; care is carewatch's own. */
const SIGNAL_ORDER: readonly SignalClass[] = ['alarm', 'care', 'supervisory', 'trouble'];
export const signalRank = (s: SignalClass): number => SIGNAL_ORDER.length - SIGNAL_ORDER.indexOf(s);

/** What a point looks like to the re-alert decision. */
export interface PointSubject {
  readonly category: AlertCategory;
  readonly signal: SignalClass;
  readonly rule: string;
  readonly severity: Severity;
  readonly inhibited?: unknown;
}

export type ReAlertReason = 'new_alarm_point' | 'higher_severity' | 'condition_returned';

/**
 * Whether a point joining (or rising in) an incident makes it alert again, as a panel re-sounds
 * for a subsequent alarm once silenced (e.g. Mircom FA-1000 manual §8.5 "Subsequent alarms when
 * the panel is already in alarm … if signals have been silenced, they are resounded"; the same
 * practice for trouble signals, which must re-sound on a second fault). Here:
 * - an acknowledged incident needs acknowledging again when a new fire alarm point joins it or a
 *   point outranks the incident's severity;
 * - an unacknowledged incident restarts its countdown when a point outranks it (the higher
 *   severity's deadlines run from now, as a new alert's would);
 * - an inhibited point never re-alerts (it raises nothing of its own).
 */
export function reAlertOf(incident: { readonly severity: Severity; readonly acknowledgedAt?: number }, p: PointSubject, isNew: boolean): ReAlertReason | undefined {
  if (p.inhibited !== undefined) return undefined;
  if (severityRank(p.severity) > severityRank(incident.severity)) return 'higher_severity';
  if (incident.acknowledgedAt !== undefined && isNew && isFireAlarmPoint(p)) return 'new_alarm_point';
  return undefined;
}
