import type { MetricName } from '../../../contract/metrics.ts';
import type { Device, Resident } from '../../../contract/registry.ts';
import type { BedFact } from '../facts.ts';
import type { RuleContext, RuleInput } from '../types.ts';

/**
 * Helpers shared by the care rules: resident lookup, bilingual labels, bed occupancy tracking and
 * local time of day. Pure.
 */

/** A personal band learned from a resident's own history: alert below `low` / above `high`. */
export interface LearnedLimit {
  readonly low?: number;
  readonly high?: number;
}

/**
 * The engine may pass a richer context to the care rules. `baselines` are the personal bands it has
 * learned from each resident's history in InfluxDB (the engine does the querying; rules do no I/O),
 * keyed by resident id, then metric. Staff limits in the registry win over them; both win over the
 * defaults. Absent means "no baseline learned yet".
 */
export interface CareRuleContext extends RuleContext {
  readonly baselines?: Readonly<Record<string, Readonly<Partial<Record<MetricName, LearnedLimit>>>>>;
}

export interface Bilingual {
  readonly zh: string;
  readonly en: string;
}

export function residentOf(device: Device, ctx: RuleContext): Resident | undefined {
  return device.residentId === undefined ? undefined : ctx.registry.resident(device.residentId);
}

export function residentLabel(resident: Resident, ctx: RuleContext): Bilingual {
  const home = ctx.registry.home(resident.homeId);
  const room = ctx.registry.room(resident.homeId, resident.roomId);
  return {
    zh: `${home?.name ?? resident.homeId} ${room?.name ?? resident.roomId} ${resident.bed}床 ${resident.name}`,
    en: `${home?.nameEn ?? resident.homeId}, ${room?.nameEn ?? resident.roomId}, bed ${resident.bed} (${resident.name})`,
  };
}

/** Where the resident is, as the bed sensor last said; `ts` is the device time of that report. */
export interface BedState {
  inBed: boolean;
  ts: number;
}

export type BedTransition = 'exit' | 'return' | 'none';

/**
 * Updates the bed record from a bed sensor's `bed_occupied` telemetry or `bed_exit` / `bed_return`
 * event. Returns the resident and the transition (a first-ever report is not a transition: we do
 * not know when it happened), and `fact`, the presence, when it changed or is first known (what the
 * bed-presence history records). Other inputs return undefined.
 */
export function trackBed(
  beds: Record<string, BedState>,
  input: RuleInput,
): { residentId: string; transition: BedTransition; fact?: BedFact } | undefined {
  if ((input.type !== 'telemetry' && input.type !== 'event') || input.device.kind !== 'bed_sensor') return undefined;
  const residentId = input.device.residentId;
  if (residentId === undefined) return undefined;
  let occupied: boolean | undefined;
  if (input.type === 'telemetry') {
    const v = input.metrics.bed_occupied;
    if (typeof v === 'boolean') occupied = v;
  } else if (input.event.type === 'bed_exit') occupied = false;
  else if (input.event.type === 'bed_return') occupied = true;
  if (occupied === undefined) return undefined;
  const prev = beds[residentId];
  // An older report (redelivery, reordering) must not undo a newer one.
  if (prev !== undefined && input.ts < prev.ts) return { residentId, transition: 'none' };
  beds[residentId] = { inBed: occupied, ts: input.ts };
  if (prev !== undefined && prev.inBed === occupied) return { residentId, transition: 'none' };
  const fact: BedFact = { kind: 'bed', homeId: input.device.homeId, residentId, deviceId: input.device.id, inBed: occupied, ts: input.ts };
  return { residentId, transition: prev === undefined ? 'none' : occupied ? 'return' : 'exit', fact };
}

/** Minutes since local midnight at `ms`, for a fixed UTC offset (China Standard Time is +480, no DST). */
export function localMinuteOfDay(ms: number, utcOffsetMin: number): number {
  const m = Math.floor((ms + utcOffsetMin * 60_000) / 60_000);
  return ((m % 1440) + 1440) % 1440;
}

/** True when the local time is inside [start, end), a window that may wrap midnight (21:00–06:00). */
export function inLocalWindow(ms: number, startMin: number, endMin: number, utcOffsetMin: number): boolean {
  const t = localMinuteOfDay(ms, utcOffsetMin);
  return startMin <= endMin ? t >= startMin && t < endMin : t >= startMin || t < endMin;
}

export function formatLocalTime(ms: number, utcOffsetMin: number): string {
  const t = localMinuteOfDay(ms, utcOffsetMin);
  return `${String(Math.floor(t / 60)).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}`;
}

/** Copies a plain-JSON state so a rule never mutates the state object it was given. */
export function cloneState<S>(state: S): S {
  return structuredClone(state);
}
