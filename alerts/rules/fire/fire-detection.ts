import type { Device } from '../../../contract/registry.ts';
import type { Rule, RuleContext, RuleInput, RuleResult, Signal } from '../types.ts';
import { confirmation, confirmedSignal, EVENT_HOLD_MS, pointInAlarm, roomKey, type ConfirmReason, type Point } from './confirm.ts';
import { newHeatState, stepHeat, type HeatLimits } from './heat.ts';
import { alarmSignal, fmt, type Text } from './signals.ts';
import { newSmokeState, stepSmoke, stepSmokeTime, type SmokeEvent, type SmokeLimits, type SmokeState } from './smoke.ts';
import { threshold } from './thresholds.ts';

/**
 * Fire detection over smoke detectors, heat detectors and manual call points, in one rule because
 * multi-criteria confirmation needs every detector's state at once (one state, one truth).
 *
 * Signals (keys): `heat_fixed:<dev>`, `heat_ror:<dev>` (alarm, critical, latching);
 * `smoke_prealarm:<dev>` (alarm class, medium, non-latching: the unverified stage);
 * `smoke_alarm:<dev>` (verified, alarm, critical, latching);
 * `fire_confirmed:<home>:<room>` (alarm, critical, latching, escalateNow).
 * A latching signal is also sent with `active: false` when its condition is gone; the engine keeps
 * the alert open until a person resolves it, and the rule may raise it again after that.
 */
export interface FireDetectionState {
  /** Per device. */
  p: Record<string, Point>;
  /** Rooms with a confirmed fire (`home/room` → platform ms). */
  cf: Record<string, number>;
}

const FIRE_KINDS = new Set(['smoke_detector', 'heat_detector', 'manual_call_point']);
/** A confirmed room is reported normal once all its detectors have been out of alarm this long. */
const CONFIRMED_CLEAR_HOLD_MS = 60_000;

function heatLimits(d: Device, ctx: RuleContext): HeatLimits {
  const fixedC = threshold(d, 'heat_fixed_c', ctx);
  return {
    fixedC,
    fixedClearC: fixedC - threshold(d, 'heat_fixed_clear_delta_c', ctx),
    rorCPerMin: threshold(d, 'heat_ror_c_per_min', ctx),
    windowMs: threshold(d, 'heat_ror_window_s', ctx) * 1000,
  };
}

export function smokeLimits(d: Device, ctx: RuleContext): SmokeLimits {
  return {
    preAt: threshold(d, 'smoke_prealarm_pct_per_m', ctx),
    preClear: threshold(d, 'smoke_prealarm_clear_pct_per_m', ctx),
    alarmAt: threshold(d, 'smoke_alarm_pct_per_m', ctx),
    alarmClear: threshold(d, 'smoke_alarm_clear_pct_per_m', ctx),
    verifyMs: threshold(d, 'smoke_verify_s', ctx) * 1000,
  };
}

function smokeSignals(d: Device, ctx: RuleContext, s: SmokeState, events: readonly SmokeEvent[], verifyS: number): Signal[] {
  const out: Signal[] = [];
  const src = { device: d, ctx, sourceTs: s.t, receivedTs: s.rt, value: s.x };
  for (const ev of events) {
    switch (ev) {
      case 'pre_set': {
        const text: Text = s.lvl.on
          ? { zh: `烟雾浓度达报警值 ${fmt(s.x)} %/m，确认中（${verifyS} 秒）`, en: `smoke at alarm level ${fmt(s.x)} %/m, verifying (${verifyS} s)` }
          : { zh: `烟雾预警 ${fmt(s.x)} %/m`, en: `smoke pre-alarm ${fmt(s.x)} %/m` };
        out.push(alarmSignal('smoke_prealarm', 'medium', { ...src, active: true }, text, { latching: false }));
        break;
      }
      case 'pre_clear': {
        const text: Text =
          s.u >= 0
            ? { zh: `未经确认的报警（峰值 ${fmt(s.u)} %/m 未持续 ${verifyS} 秒），非火警`, en: `unverified alarm (peak ${fmt(s.u)} %/m did not persist ${verifyS} s), not a fire` }
            : { zh: '烟雾预警', en: 'smoke pre-alarm' };
        out.push(alarmSignal('smoke_prealarm', 'medium', { ...src, active: false }, text, { latching: false }));
        break;
      }
      case 'verified':
        out.push(
          alarmSignal('smoke_alarm', 'critical', { ...src, active: true }, { zh: `烟感火警（已确认 ${verifyS} 秒）${fmt(s.x)} %/m`, en: `smoke alarm, verified over ${verifyS} s, ${fmt(s.x)} %/m` }, { latching: true }),
        );
        break;
      case 'alarm_clear':
        out.push(alarmSignal('smoke_alarm', 'critical', { ...src, active: false }, { zh: '烟感火警，烟雾已消散（须人工复位）', en: 'smoke alarm, smoke gone (a person must reset)' }, { latching: true }));
        break;
      case 'verify_start':
      case 'unverified':
        break;
    }
  }
  return out;
}

/**
 * The devices whose point a tick may change (a smoke verification or off-delay running, or a device
 * event held): `evaluateTick` visits only these. Visiting every point with `for … in` cost 38 ms a tick
 * at 102,000 devices (session 9), almost all of it on points with nothing due.
 *
 * Derived, never persisted, and only under `ctx.inPlace`: kept beside the engine-owned map it
 * describes (keyed by that object). It may hold ids that are no longer pending (a tick drops them),
 * never miss one: every write of a point below goes through `notePoint`, and a map without a set (a
 * copy, a restored or reset state) is scanned whole once at its next tick. The rule without it is the
 * reference the tests compare against (test/alerts/rules/fire/tick-schedule.property.test.ts).
 */
const pendingSets = new WeakMap<FireDetectionState['p'], Set<string>>();

function isPending(point: Point): boolean {
  const s = point.s;
  return (s !== undefined && (s.v >= 0 || s.off >= 0)) || (point.e !== undefined && point.e >= 0);
}

/**
 * `p` with `point` at `id`: written in place under ctx.inPlace (the engine owns the map), else a copy.
 * A call point's press copied the whole map, twice with its confirmation (one entry per detector of
 * the site): 0.6–1.3 s between alerts' receipt of a fire alarm and its raise in the 100,000-device run
 * of session 13 (care alarms, which do not pass here, 1–15 ms).
 */
function withPoint(p: FireDetectionState['p'], id: string, point: Point, ctx: RuleContext): FireDetectionState['p'] {
  if (ctx.inPlace === true) {
    p[id] = point;
    notePoint(p, p, id, ctx);
    return p;
  }
  const copy = { ...p, [id]: point };
  notePoint(p, copy, id, ctx);
  return copy;
}

/** After `p[id]` was written: keep the pending set of `p` whole (a copy `to` of `from` inherits it). */
function notePoint(from: FireDetectionState['p'], to: FireDetectionState['p'], id: string, ctx: RuleContext): void {
  if (ctx.inPlace !== true) return;
  const set = pendingSets.get(from);
  if (set === undefined) return;
  if (to !== from) pendingSets.set(to, set);
  const point = to[id];
  if (point !== undefined && isPending(point)) set.add(id);
}

function evaluateTelemetry(input: Extract<RuleInput, { type: 'telemetry' }>, state: FireDetectionState, ctx: RuleContext): RuleResult<FireDetectionState> {
  const d = input.device;
  const temp = input.metrics.temperature_c;
  const smoke = input.metrics.smoke_obscuration_pct_per_m;
  const hasTemp = typeof temp === 'number' && (d.kind === 'heat_detector' || d.kind === 'smoke_detector');
  const hasSmoke = typeof smoke === 'number' && d.kind === 'smoke_detector';
  if (!hasTemp && !hasSmoke) return { state, signals: [] };

  const prev = state.p[d.id] ?? {};
  const wasInAlarm = pointInAlarm(prev, input.now);
  const point: Point = { ...prev };
  const signals: Signal[] = [];
  const src = { device: d, ctx, sourceTs: input.ts, receivedTs: input.receivedTs };

  if (hasTemp) {
    const lim = heatLimits(d, ctx);
    const step = stepHeat(prev.h ?? newHeatState(), input.ts, temp, input.now, lim);
    point.h = step.state;
    if (step.fixed !== undefined) {
      const on = step.fixed === 'set';
      signals.push(
        alarmSignal('heat_fixed', 'critical', { ...src, active: on, value: temp }, { zh: `定温火警 ${fmt(temp)} °C（设定 ${fmt(lim.fixedC, 0)} °C）`, en: `fixed-temperature alarm ${fmt(temp)} °C (set ${fmt(lim.fixedC, 0)} °C)` }, { latching: true }),
      );
    }
    if (step.ror !== undefined) {
      const rate = step.slope ?? 0;
      signals.push(
        alarmSignal('heat_ror', 'critical', { ...src, active: step.ror === 'set', value: rate }, { zh: `差温火警 ${fmt(rate)} °C/分钟`, en: `rate-of-rise alarm ${fmt(rate)} °C/min` }, { latching: true }),
      );
    }
  }
  if (hasSmoke) {
    const lim = smokeLimits(d, ctx);
    const step = stepSmoke(prev.s ?? newSmokeState(), input.ts, input.receivedTs, smoke, input.now, lim);
    point.s = step.state;
    signals.push(...smokeSignals(d, ctx, step.state, step.events, lim.verifyMs / 1000));
  }

  let next: FireDetectionState = { p: withPoint(state.p, d.id, point, ctx), cf: state.cf };
  // A detector entering alarm, or smoke seen next to a heat alarm, may confirm a fire.
  if (!wasInAlarm || signals.some((s) => s.active)) {
    const reason = pointInAlarm(point, input.now) || signals.some((s) => s.active) ? confirmation(d, next.p, ctx, input.now) : undefined;
    // A detector already in alarm confirms a room only by smoke joining heat: its pairing with a
    // neighbour was judged when it entered alarm (a pre-alarm that sets a reading later must not
    // make a second confirmed fire for the same pair).
    if (reason !== undefined && (!wasInAlarm || reason.kind === 'smoke_and_heat')) {
      const confirmed = confirm(next, d, ctx, input.now, { sourceTs: input.ts, receivedTs: input.receivedTs }, reason);
      next = confirmed.state;
      signals.push(...confirmed.signals);
    }
  }
  return { state: next, signals };
}

/** Raises the room's confirmed fire (once per episode) and ends the verification of its detectors. */
function confirm(state: FireDetectionState, d: Device, ctx: RuleContext, now: number, src: { sourceTs: number; receivedTs: number }, reason: ConfirmReason, always = false): RuleResult<FireDetectionState> {
  const key = roomKey(d.homeId, d.roomId);
  // Under ctx.inPlace the engine owns the map (withPoint): written in place, not copied.
  const p = ctx.inPlace === true ? state.p : { ...state.p };
  // Verification is skipped: the confirmed fire stands for these detectors' alarms.
  const standsFor: string[] = [];
  for (const roomId of [d.roomId, ...(ctx.registry.room(d.homeId, d.roomId)?.adjacent ?? [])]) {
    for (const other of ctx.registry.devicesOfRoom(d.homeId, roomId)) {
      const s = p[other.id]?.s;
      if (s !== undefined && s.v >= 0) {
        p[other.id] = { ...p[other.id], s: { ...s, v: -1, ok: 2, off: -1 } };
        if (other.id !== d.id) standsFor.push(other.id);
      }
    }
  }
  // Verification ended here, so nothing joins the pending set; the copy inherits it.
  notePoint(state.p, p, d.id, ctx);
  if (state.cf[key] !== undefined && !always) return { state: { p, cf: state.cf }, signals: [] };
  const signal = confirmedSignal(d, ctx, true, src, reason);
  return { state: { p, cf: { ...state.cf, [key]: now } }, signals: [standsFor.length > 0 ? { ...signal, standsFor } : signal] };
}

function evaluateEvent(input: Extract<RuleInput, { type: 'event' }>, state: FireDetectionState, ctx: RuleContext): RuleResult<FireDetectionState> {
  const d = input.device;
  const type = input.event.type;
  const isCallPoint = type === 'manual_call_point' && d.kind === 'manual_call_point';
  const isDetector = type === 'detector_alarm' && (d.kind === 'smoke_detector' || d.kind === 'heat_detector');
  if (!isCallPoint && !isDetector) return { state, signals: [] };
  const prev = state.p[d.id] ?? {};
  if (input.event.ok === true) {
    // The device reports its own alarm restored (call point reset, detector back to normal).
    const p = withPoint(state.p, d.id, { ...prev, e: -1 }, ctx);
    return { state: { p, cf: state.cf }, signals: [] };
  }
  const next: FireDetectionState = { p: withPoint(state.p, d.id, { ...prev, e: input.now }, ctx), cf: state.cf };
  // A call point is a person who has seen the fire; a detector's own alarm is its certified
  // decision. Either is a fire at once, every time (the engine folds repeats into the open alert).
  return confirm(next, d, ctx, input.now, { sourceTs: input.ts, receivedTs: input.receivedTs }, { kind: isCallPoint ? 'call_point' : 'detector_alarm' }, true);
}

function evaluateTick(now: number, state: FireDetectionState, ctx: RuleContext): RuleResult<FireDetectionState> {
  const signals: Signal[] = [];
  const inPlace = ctx.inPlace === true;
  let p = state.p;
  let mutated = false;
  const known = inPlace ? pendingSets.get(state.p) : undefined;
  const pending = known ?? new Set<string>();
  const visit = (id: string): void => {
    const point = state.p[id];
    if (point === undefined || !isPending(point)) {
      pending.delete(id);
      return;
    }
    const s = point.s;
    let changed: Point | undefined;
    if (s !== undefined && (s.v >= 0 || s.off >= 0)) {
      const d = ctx.registry.device(id);
      if (d === undefined) return;
      const lim = smokeLimits(d, ctx);
      const step = stepSmokeTime(s, now, lim);
      if (step.state !== s) {
        changed = { ...point, s: step.state };
        signals.push(...smokeSignals(d, ctx, step.state, step.events, lim.verifyMs / 1000));
      }
    }
    if (point.e !== undefined && point.e >= 0 && now - point.e >= EVENT_HOLD_MS) changed = { ...(changed ?? point), e: -1 };
    if (changed !== undefined) {
      // Under ctx.inPlace the engine owns the map: the point is replaced in it, the map not copied.
      if (inPlace) mutated = true;
      else if (p === state.p) p = { ...state.p };
      p[id] = changed;
    }
    if (!isPending(changed ?? point)) pending.delete(id);
  };
  if (known !== undefined) for (const id of known) visit(id);
  else {
    // for-in, not Object.entries: no pair per device (10,000 points: 4 ms of CPU vs 1.5 ms).
    for (const id in state.p) {
      visit(id);
      if (isPending(p[id] as Point)) pending.add(id);
    }
    if (inPlace) pendingSets.set(p, pending);
  }
  let cf = state.cf;
  for (const [key, since] of Object.entries(state.cf)) {
    if (now - since < CONFIRMED_CLEAR_HOLD_MS) continue;
    const [homeId, roomId] = key.split('/') as [string, string];
    const devices = ctx.registry.devicesOfRoom(homeId, roomId);
    if (devices.some((d) => pointInAlarm(p[d.id], now))) continue;
    if (cf === state.cf) cf = { ...state.cf };
    delete cf[key];
    const first = devices.find((d) => FIRE_KINDS.has(d.kind)) ?? devices[0];
    if (first !== undefined) signals.push(confirmedSignal(first, ctx, false, { sourceTs: now }));
  }
  return { state: p === state.p && cf === state.cf ? state : { p, cf }, signals, mutated };
}

export const fireDetectionRule: Rule<FireDetectionState> = {
  id: 'fire_detection',
  // Per-device points are replaced, never changed in place (Rule.snapshotMaps).
  snapshotMaps: ['p'],
  // The kinds filter device inputs only; a tick has no device.
  accepts: { types: ['telemetry', 'event', 'tick'], kinds: ['smoke_detector', 'heat_detector', 'manual_call_point'] },
  initialState: () => ({ p: {}, cf: {} }),
  evaluate(input, state, ctx) {
    switch (input.type) {
      case 'telemetry':
        return FIRE_KINDS.has(input.device.kind) ? evaluateTelemetry(input, state, ctx) : { state, signals: [] };
      case 'event':
        return evaluateEvent(input, state, ctx);
      case 'tick':
        return evaluateTick(input.now, state, ctx);
      default:
        return { state, signals: [] };
    }
  },
};
