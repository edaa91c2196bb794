import type { Device } from '../../../contract/registry.ts';
import { deviceLabel, type RuleContext, type Signal } from '../types.ts';
import { heatInAlarm, type HeatState } from './heat.ts';
import { smokeInAlarm, smokeSeen, type SmokeState } from './smoke.ts';

/**
 * Multi-criteria confirmation: what turns detector signals into a confirmed FIRE at once, without
 * waiting for alarm verification (NFPA 72 §23.8.5.4.1 lets verification be skipped when a second
 * detector confirms; EN 54-29 / GB 50116-2013 §4.1.6 "two independent alarm signals" logic).
 */
export interface Point {
  h?: HeatState;
  s?: SmokeState;
  /** Platform ms of the device's own alarm event (detector_alarm, manual_call_point), -1 none. */
  e?: number;
}

/** A detector_alarm or call-point event has no restore message of its own; it counts this long. */
export const EVENT_HOLD_MS = 5 * 60_000;

export function pointInAlarm(p: Point | undefined, now: number): boolean {
  if (p === undefined) return false;
  return smokeInAlarm(p.s) || heatInAlarm(p.h) || (p.e !== undefined && p.e >= 0 && now - p.e < EVENT_HOLD_MS);
}

export type ConfirmReason =
  | { readonly kind: 'two_detectors'; readonly other: Device }
  | { readonly kind: 'smoke_and_heat' }
  | { readonly kind: 'call_point' }
  | { readonly kind: 'detector_alarm' };

/** Both ways: the registry index adds every room that lists this one (contract/registry-index.ts). */
function adjacentRooms(device: Device, ctx: RuleContext): string[] {
  const room = ctx.registry.room(device.homeId, device.roomId);
  return room?.adjacent ?? [];
}

/** Rooms whose detectors confirm a detector in `device`'s room: the room itself and its neighbours. */
export function confirmingRooms(device: Device, ctx: RuleContext): string[] {
  return [device.roomId, ...adjacentRooms(device, ctx)];
}

/** Why a detector now in alarm confirms a fire, or undefined if it stands alone. */
export function confirmation(device: Device, points: Readonly<Record<string, Point>>, ctx: RuleContext, now: number): ConfirmReason | undefined {
  if (pointInAlarm(points[device.id], now)) for (const roomId of confirmingRooms(device, ctx)) {
    for (const other of ctx.registry.devicesOfRoom(device.homeId, roomId)) {
      if (other.id !== device.id && pointInAlarm(points[other.id], now)) return { kind: 'two_detectors', other };
    }
  }
  let smoke = false;
  let heat = false;
  for (const d of ctx.registry.devicesOfRoom(device.homeId, device.roomId)) {
    const p = points[d.id];
    if (p === undefined) continue;
    smoke ||= smokeSeen(p.s);
    heat ||= heatInAlarm(p.h);
  }
  return smoke && heat ? { kind: 'smoke_and_heat' } : undefined;
}

export function roomKey(homeId: string, roomId: string): string {
  return `${homeId}/${roomId}`;
}

function reasonText(r: ConfirmReason, ctx: RuleContext): { zh: string; en: string } {
  switch (r.kind) {
    case 'two_detectors': {
      const at = deviceLabel(r.other, ctx);
      return { zh: `两只探测器报警（另一只：${at.zh}）`, en: `two detectors in alarm (the other: ${at.en})` };
    }
    case 'smoke_and_heat':
      return { zh: '烟雾与温升同时报警', en: 'smoke and heat rise together' };
    case 'call_point':
      return { zh: '手动报警按钮启动', en: 'manual call point operated' };
    case 'detector_alarm':
      return { zh: '探测器自身火警', en: "the detector's own fire alarm" };
  }
}

/**
 * The confirmed-fire signal: one per room (`fire_confirmed:h01:r101`), alarm class, critical,
 * latching (only a person resolves it) and escalated to the bureau at once.
 */
export function confirmedSignal(device: Device, ctx: RuleContext, active: boolean, src: { sourceTs: number; receivedTs?: number }, reason?: ConfirmReason): Signal {
  const at = deviceLabel(device, ctx);
  const why = reason !== undefined ? reasonText(reason, ctx) : { zh: '各探测器已恢复正常（须人工复位）', en: 'all detectors back to normal (a person must reset)' };
  return {
    key: `fire_confirmed:${device.homeId}:${device.roomId}`,
    rule: 'fire_confirmed',
    category: 'fire',
    signal: 'alarm',
    severity: 'critical',
    homeId: device.homeId,
    deviceId: device.id,
    roomId: device.roomId,
    active,
    sourceTs: src.sourceTs,
    ...(src.receivedTs !== undefined ? { receivedTs: src.receivedTs } : {}),
    message: { zh: `确认火警：${at.zh}，${why.zh}`, en: `CONFIRMED FIRE: ${at.en}, ${why.en}` },
    latching: true,
    escalateNow: active,
  };
}
