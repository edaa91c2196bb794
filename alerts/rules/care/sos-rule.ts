import { DEVICE_KINDS, DEVICE_KIND_NAMES, type DeviceKind } from '../../../contract/device-kinds.ts';
import type { Device, Resident } from '../../../contract/registry.ts';
import type { Rule, RuleContext, RuleInput, RuleResult, Signal } from '../types.ts';
import { residentLabel, type Bilingual } from './care-context.ts';

/**
 * A pressed call button (呼叫器), pull cord or pendant: the most common alarm of a care home, and a
 * person asking for help now. `sos_button` from any device kind that may send it (nurse_call,
 * bed_sensor, vital_signs_monitor) raises a critical care alert at once, escalated at once and
 * latching, like a fall (bed-rule.ts):
 * - a device attached to a resident: `sos:<residentId>`, naming the resident, room and bed, and the
 *   device; every device of that resident shares the key (one call, one alert);
 * - a room-level device (a bathroom pull cord, a bedside button of an unassigned bed):
 *   `sos:<homeId>/<roomId>`, naming the room and the residents registered in it, if any.
 *
 * Nurse-call practice (VDE 0834-1) cancels a call only at the bedside, by the person who came. Here
 * the press is a momentary event: the rule asserts the signal and clears it at once, so the alert
 * latches and stays open until staff acknowledge it and resolve it with a comment saying what they
 * found and did (alerts/lifecycle.ts, latching care alerts); a resolve then does not re-raise it.
 * A second press while the alert is open folds into it (same key) and is put on its audit trail
 * (`reactivated`). `ok: true` (a device reporting its call cancelled at the device) raises nothing
 * and resolves nothing: only a person resolves the alert. The rule keeps no state.
 */

export const SOS_RULE_ID = 'care_sos';
export const SOS_SIGNAL_RULE = 'sos';

/** The device kinds that may send `sos_button` (contract/device-kinds.ts). */
export const SOS_KINDS: readonly DeviceKind[] = DEVICE_KIND_NAMES.filter((k) => (DEVICE_KINDS[k].events as readonly string[]).includes('sos_button'));

export type SosState = Record<string, never>;

const DEVICE_NAMES: Partial<Record<DeviceKind, Bilingual>> = {
  nurse_call: { zh: '呼叫器', en: 'call button' },
  bed_sensor: { zh: '床垫传感器呼叫键', en: 'bed sensor call button' },
  vital_signs_monitor: { zh: '生命体征监测仪呼叫键', en: 'vital-signs monitor call button' },
};

function deviceName(d: Device): Bilingual {
  const n = DEVICE_NAMES[d.kind] ?? { zh: '设备', en: 'device' };
  return { zh: `${n.zh} ${d.id}`, en: `${n.en} ${d.id}` };
}

/** The home and room of a room-level device (no resident): also the room-level fall (bed-rule.ts). */
export function roomLabel(d: Device, ctx: RuleContext): Bilingual {
  const home = ctx.registry.home(d.homeId);
  const room = ctx.registry.room(d.homeId, d.roomId);
  return { zh: `${home?.name ?? d.homeId} ${room?.name ?? d.roomId}`, en: `${home?.nameEn ?? d.homeId}, ${room?.nameEn ?? d.roomId}` };
}

/** The residents registered in a device's room, by bed. */
export function roomResidents(d: Device, ctx: RuleContext): Resident[] {
  return ctx.registry
    .residentsOfHome(d.homeId)
    .filter((r) => r.roomId === d.roomId)
    .sort((a, b) => a.bed.localeCompare(b.bed));
}

/** "; residents of this room: …" for a room-level message, empty when nobody is registered there. */
export function roomResidentsText(d: Device, ctx: RuleContext): Bilingual {
  const people = roomResidents(d, ctx);
  if (people.length === 0) return { zh: '', en: '' };
  return {
    zh: `，本室住户：${people.map((r) => `${r.name}（${r.bed}床）`).join('、')}`,
    en: `; residents of this room: ${people.map((r) => `${r.name} (bed ${r.bed})`).join(', ')}`,
  };
}

export function sosSignals(input: Extract<RuleInput, { type: 'event' }>, ctx: RuleContext): Signal[] {
  const d = input.device;
  const dev = deviceName(d);
  const resident = d.residentId === undefined ? undefined : ctx.registry.resident(d.residentId);
  let key: string;
  let message: Bilingual;
  let who: { residentId?: string; roomId: string };
  if (resident !== undefined) {
    const label = residentLabel(resident, ctx);
    key = `${SOS_SIGNAL_RULE}:${resident.id}`;
    who = { residentId: resident.id, roomId: resident.roomId };
    message = { zh: `${label.zh}：紧急呼叫（${dev.zh}），请立即前往`, en: `${label.en}: emergency call (${dev.en}), go now` };
  } else {
    const where = roomLabel(d, ctx);
    const people = roomResidentsText(d, ctx);
    key = `${SOS_SIGNAL_RULE}:${d.homeId}/${d.roomId}`;
    who = { roomId: d.roomId };
    message = { zh: `${where.zh}：紧急呼叫（${dev.zh}）${people.zh}，请立即前往`, en: `${where.en}: emergency call (${dev.en})${people.en}; go now` };
  }
  const base = {
    key,
    rule: SOS_SIGNAL_RULE,
    category: 'care' as const,
    signal: 'care' as const,
    severity: 'critical' as const,
    homeId: d.homeId,
    deviceId: d.id,
    ...who,
    sourceTs: input.ts,
    receivedTs: input.receivedTs,
    latching: true,
  };
  return [
    { ...base, active: true, escalateNow: true, message },
    // The press is over at once; the alert stays latched until a person resolves it.
    { ...base, active: false, message: { zh: `${message.zh}（按键已松开，待人工处理）`, en: `${message.en} (button released; a person must resolve)` } },
  ];
}

export function createSosRule(): Rule<SosState> {
  return {
    id: SOS_RULE_ID,
    accepts: { types: ['event'], kinds: [...SOS_KINDS] },
    initialState: () => ({}),
    evaluate(input: RuleInput, state: SosState, ctx: RuleContext): RuleResult<SosState> {
      if (input.type !== 'event' || input.event.type !== 'sos_button' || input.event.ok === true) return { state, signals: [] };
      if (!SOS_KINDS.includes(input.device.kind)) return { state, signals: [] };
      return { state, signals: sosSignals(input, ctx) };
    },
  };
}
