import { DEVICE_KINDS } from '../../contract/device-kinds.ts';
import { MAX_DISABLEMENT_MS, type Disablement, type DisablementMode, type DisablementRequest } from '../../contract/incidents.ts';
import type { SignalClass } from '../../contract/payloads.ts';
import type { Device } from '../../contract/registry.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { canSeeHome, type Actor } from '../access.ts';
import { fail, type Outcome } from '../errors.ts';
import type { Signal } from '../rules/types.ts';

/**
 * Test and maintenance mode (issue 11; GB 4717 屏蔽 "disablement"; EN 54-2 §9 disablement and §10
 * test condition; NFPA 72 ch. 14 testing), as a pure core: no I/O, no clock reads (`now` is passed).
 *
 * A disablement matches points the way an Alertmanager silence matches alerts: matchers over
 * home / room / device, a start and an end. Room scope covers every device in that room, home
 * scope every device of the home. What it suppresses (an *active* signal of a covered point):
 *
 * | signal of a covered fire-system device            | `test` | `disabled` |
 * |---------------------------------------------------|--------|------------|
 * | alarm (fire, pre-alarm, gas, confirmed fire)      | yes    | yes        |
 * | supervisory (water pressure, electrical fire)     | yes    | yes        |
 * | trouble the test itself makes: tamper, device_fault, device_offline | yes | yes |
 * | trouble that is a finding: self_test_failed, low_battery, dirty_detector, stuck_sensor | no | yes |
 * | care signals (SOS, fall, vital signs, bed, wetness), care devices' trouble | never | never |
 * | home-level signals without a device (home_comm_loss) | never | never |
 * | a clear (`active: false`)                         | never  | never      |
 *
 * Why: a technician testing a detector makes smoke and heat, opens its cover and takes its head off
 * the base, so in `test` its alarms and that handling trouble are expected and recorded, not
 * annunciated (EN 54-2 §10: a zone in test does not route fire alarms). A failed self-test, a low
 * battery or a dirty chamber found during the test are what the test is for (NFPA 72 ch. 14:
 * deficiencies found are reported for correction), so they reach a person. `disabled` is out of
 * service: GB 4717 / EN 54-2 §9 — a disabled component's fire alarm and fault signals are not
 * annunciated; the standing disablement (page, bureau list) is the indication instead.
 *
 * A resident's call always gets through: care devices are never covered, whatever the scope, and a
 * home-level communication loss also cuts off care devices. Clears always pass, so an alarm raised
 * before the disablement can still clear. A suppressed condition is *held*; if it is still active
 * when its disablement ends it is raised then (a detector left in alarm, offline or open after a
 * test is no longer expected), as an expired silence lets a still-firing alert notify.
 */

/** Trouble a test of the device causes by itself (cover opened, head off its base, power cycled). */
export const TEST_HANDLING_TROUBLE: ReadonlySet<string> = new Set(['tamper', 'device_fault', 'device_offline']);

export const DISABLEMENT_AUDIT_ACTIONS = ['created', 'signal_suppressed', 'signal_released', 'ended_by_person', 'expired'] as const;
export type DisablementAuditAction = (typeof DISABLEMENT_AUDIT_ACTIONS)[number];

/** One step of a disablement's life, kept with it (REST) and in InfluxDB `disablement_audit`. */
export interface DisablementAuditEntry {
  readonly disablementId: string;
  readonly homeId: string;
  /** 1, 2, … per disablement. */
  readonly seq: number;
  /** Platform clock, ms. */
  readonly ts: number;
  readonly action: DisablementAuditAction;
  /** Username, or `system` for a suppression, a release or an expiry. */
  readonly by: string;
  /** signal_suppressed / signal_released: the condition and where it came from. */
  readonly key?: string;
  readonly rule?: string;
  readonly signal?: SignalClass;
  readonly deviceId?: string;
  readonly roomId?: string;
  /** Device timestamp of what raised the signal. */
  readonly sourceTs?: number;
  /** created: the reason given; others: what happened. */
  readonly reason?: string;
}

/** A suppressed condition, kept until it clears or its disablement ends. */
export interface HeldSignal {
  readonly disablementId: string;
  readonly signal: Signal;
}

export function isInForce(d: Disablement, now: number): boolean {
  return d.endedAt === undefined && d.startedAt <= now && now < d.until;
}

/** Whether the disablement's matchers cover this device (home, room or device scope). */
export function covers(d: Pick<Disablement, 'homeId' | 'scope' | 'targetId'>, device: Pick<Device, 'homeId' | 'roomId' | 'id'>): boolean {
  if (device.homeId !== d.homeId) return false;
  switch (d.scope) {
    case 'home':
      return true;
    case 'room':
      return device.roomId === d.targetId;
    case 'device':
      return device.id === d.targetId;
  }
}

/** A device whose signals a disablement may hold back: never a care device. */
export function isFireSystemDevice(device: Pick<Device, 'kind'>): boolean {
  return DEVICE_KINDS[device.kind].category !== 'care';
}

/** Whether a mode suppresses this (active, fire-system) signal; see the table above. */
export function modeSuppresses(mode: DisablementMode, signal: Pick<Signal, 'category' | 'rule'>): boolean {
  if (signal.category === 'fire') return true;
  if (signal.category !== 'device') return false;
  return mode === 'disabled' || TEST_HANDLING_TROUBLE.has(signal.rule);
}

const SCOPE_RANK = { device: 0, room: 1, home: 2 } as const;

/**
 * The disablement that suppresses this signal now, or undefined when it must go through. With
 * several matching, the most specific (device, then room, then home), then the earliest started,
 * is named, so the audit has one owner per suppression.
 */
export function suppressionOf(signal: Signal, disablements: readonly Disablement[], registry: RegistryIndex, now: number): Disablement | undefined {
  if (!signal.active || signal.category === 'care' || signal.deviceId === undefined) return undefined;
  const device = registry.device(signal.deviceId);
  // An unknown device, or one of another home than the signal says: fail open (the alarm goes through).
  if (device === undefined || device.homeId !== signal.homeId || !isFireSystemDevice(device)) return undefined;
  let best: Disablement | undefined;
  for (const d of disablements) {
    if (!isInForce(d, now) || !covers(d, device) || !modeSuppresses(d.mode, signal)) continue;
    if (best === undefined || SCOPE_RANK[d.scope] < SCOPE_RANK[best.scope] || (SCOPE_RANK[d.scope] === SCOPE_RANK[best.scope] && d.startedAt < best.startedAt)) best = d;
  }
  if (best === undefined) return undefined;
  // A signal that stands for other devices' alarms (a confirmed fire ended their verification) is
  // held back only if every one of them is held back too: a detector under test next to a real fire
  // hid that fire until session 22 (its confirmation cancelled the fire's own alarm check, and then
  // was held back itself; a helper's hunt).
  for (const id of signal.standsFor ?? []) {
    const other = registry.device(id);
    if (other === undefined || other.homeId !== signal.homeId) return undefined;
    if (!disablements.some((d) => isInForce(d, now) && covers(d, other) && modeSuppresses(d.mode, signal))) return undefined;
  }
  return best;
}

export interface Suppressed {
  readonly signal: Signal;
  readonly by: Disablement;
  /** The condition was not held before: a new suppression (audited and counted once). */
  readonly onset: boolean;
}

export interface FilterResult {
  /** What goes on to the lifecycle, in order. */
  readonly pass: readonly Signal[];
  readonly suppressed: readonly Suppressed[];
  /** Conditions held after this batch (new or updated with their latest signal). */
  readonly hold: ReadonlyMap<string, HeldSignal>;
  /** Conditions no longer held after this batch: their clear (or an unsuppressed signal) passed. */
  readonly forget: ReadonlySet<string>;
}

/**
 * Splits the signals of one evaluation into those that go on and those held back. Pure: `held` is
 * read, not changed; the caller applies `hold` and `forget` (each key is in at most one of them).
 */
export function filterSignals(signals: readonly Signal[], disablements: readonly Disablement[], held: ReadonlyMap<string, HeldSignal>, registry: RegistryIndex, now: number): FilterResult {
  const pass: Signal[] = [];
  const suppressed: Suppressed[] = [];
  const hold = new Map<string, HeldSignal>();
  const forget = new Set<string>();
  const isHeld = (key: string): boolean => hold.has(key) || (!forget.has(key) && held.has(key));
  for (const s of signals) {
    const by = suppressionOf(s, disablements, registry, now);
    if (by === undefined) {
      pass.push(s);
      if (isHeld(s.key)) {
        hold.delete(s.key);
        forget.add(s.key);
      }
      continue;
    }
    suppressed.push({ signal: s, by, onset: !isHeld(s.key) });
    forget.delete(s.key);
    hold.set(s.key, { disablementId: by.id, signal: s });
  }
  return { pass, suppressed, hold, forget };
}

/**
 * After disablements ended: each held condition whose disablement is no longer in force (or, for a
 * signal standing for other devices, one of whose devices is no longer held back) is either taken
 * over by another one still in force, or released (raised now).
 */
export function releaseHeld(held: ReadonlyMap<string, HeldSignal>, disablements: readonly Disablement[], registry: RegistryIndex, now: number): { release: HeldSignal[]; reassign: Map<string, HeldSignal> } {
  const release: HeldSignal[] = [];
  const reassign = new Map<string, HeldSignal>();
  const live = new Set(disablements.filter((d) => isInForce(d, now)).map((d) => d.id));
  for (const [key, h] of held) {
    // A signal that stands for other devices' alarms (a confirmed fire) is held only while all of
    // them are held back too (suppressionOf): the end of one of *their* disablements releases it,
    // not only the end of its own (until session 23 it stayed held with its neighbour back in service).
    if (live.has(h.disablementId) && (h.signal.standsFor ?? []).length === 0) continue;
    const other = suppressionOf(h.signal, disablements, registry, now);
    if (other === undefined) release.push(h);
    else if (other.id !== h.disablementId) reassign.set(key, { disablementId: other.id, signal: h.signal });
  }
  return { release, reassign };
}

/** The fire-system devices a disablement takes out of alarming (for the bureau's count of disabled points). */
export function coveredDevices(d: Pick<Disablement, 'homeId' | 'scope' | 'targetId'>, registry: RegistryIndex): Device[] {
  const candidates = d.scope === 'device' ? [registry.device(d.targetId)].flatMap((x) => x ?? []) : d.scope === 'room' ? registry.devicesOfRoom(d.homeId, d.targetId) : registry.devicesOfHome(d.homeId);
  return candidates.filter((x) => covers(d, x) && isFireSystemDevice(x));
}

/** Who may put a point of `homeId` in test or disabled mode, or end one: directors of that home, admins. */
export function mayManage(actor: Actor, homeId: string): Outcome<true> {
  // Another home is "not found", as elsewhere: its existence is not disclosed to staff or directors.
  if (!canSeeHome(actor, homeId)) return fail('HOME_NOT_FOUND');
  if (actor.role === 'admin' || (actor.role === 'director' && actor.homeId === homeId)) return { ok: true, value: true };
  return fail('AUTH_FORBIDDEN', 'only the home director or an admin may put a point in test or disabled mode, or end it');
}

/** Checks a request against the registry: the target must exist in that home and have fire-system devices. */
export function checkRequest(req: DisablementRequest, homeId: string, registry: RegistryIndex): Outcome<true> {
  if (registry.home(homeId) === undefined) return fail('HOME_NOT_FOUND');
  if (!Number.isInteger(req.durationMin) || req.durationMin < 1 || req.durationMin * 60_000 > MAX_DISABLEMENT_MS) return fail('DISABLEMENT_TOO_LONG');
  if (req.reason.trim() === '') return fail('API_BAD_REQUEST', 'give a reason');
  switch (req.scope) {
    case 'home':
      if (req.targetId !== homeId) return fail('DISABLEMENT_TARGET_NOT_FOUND', `a home disablement names the home itself (${homeId})`);
      break;
    case 'room':
      if (registry.room(homeId, req.targetId) === undefined) return fail('DISABLEMENT_TARGET_NOT_FOUND', `no room ${req.targetId} in home ${homeId}`);
      break;
    case 'device': {
      const device = registry.device(req.targetId);
      if (device === undefined || device.homeId !== homeId) return fail('DISABLEMENT_TARGET_NOT_FOUND', `no device ${req.targetId} in home ${homeId}`);
      if (!isFireSystemDevice(device)) return fail('DISABLEMENT_CARE_DEVICE');
      break;
    }
  }
  if (coveredDevices({ homeId, scope: req.scope, targetId: req.targetId }, registry).length === 0) return fail('DISABLEMENT_NOTHING_TO_DISABLE');
  return { ok: true, value: true };
}

/**
 * The home a socket `disable` request is about (the REST route has it in its path): a home names
 * itself, a device its home; room ids repeat across homes, so a room is taken in the actor's own
 * home (directors; an admin uses the REST route for a room).
 */
export function homeOfRequest(req: Pick<DisablementRequest, 'scope' | 'targetId'>, actor: Actor, registry: RegistryIndex): Outcome<string> {
  if (req.scope === 'home') return { ok: true, value: req.targetId };
  if (req.scope === 'device') {
    const device = registry.device(req.targetId);
    // Another home's device answers like an unknown one (REST does the same: checkRequest).
    return device === undefined || !canSeeHome(actor, device.homeId) ? fail('DISABLEMENT_TARGET_NOT_FOUND', `no device ${req.targetId}`) : { ok: true, value: device.homeId };
  }
  if (actor.homeId !== undefined) return { ok: true, value: actor.homeId };
  return fail('API_BAD_REQUEST', 'room ids repeat across homes: disable a room with POST /api/homes/{homeId}/disablements');
}
