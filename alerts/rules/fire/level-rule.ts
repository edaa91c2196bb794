import type { DeviceKind } from '../../../contract/device-kinds.ts';
import type { MetricName } from '../../../contract/metrics.ts';
import type { Device } from '../../../contract/registry.ts';
import type { Severity } from '../../../contract/payloads.ts';
import type { Rule, RuleContext, Signal } from '../types.ts';
import { newLatch, stepAbove, stepBelow, stepLatch, type Latch, type LatchHold } from './latch.ts';
import { alarmSignal, supervisorySignal, type Text } from './signals.ts';
import { threshold, type FireThreshold } from './thresholds.ts';

/**
 * A threshold rule over one metric of some device kinds, with set/clear levels and hold times
 * (see latch.ts), declared as data. Electrical fire, combustible gas and fire-water pressure are
 * all this shape; they differ in levels, hold times and signal class.
 */
export interface LevelSpec {
  /** Signal rule name and key prefix, e.g. `residual_current` → `residual_current:h01-ef-plant`. */
  readonly rule: string;
  readonly metric: MetricName;
  readonly direction: 'above' | 'below';
  readonly set: FireThreshold;
  readonly clear: FireThreshold;
  /** The clear threshold is a distance from the set level rather than a level. */
  readonly clearIsDelta?: boolean;
  /**
   * For `above`: the set level itself is still normal (a standard's "greater than"): set only past
   * it (`value > set`) and clear at or below the clear level (`value <= clear`). Default: set at
   * the level (`>=`), clear below the clear level (`<`).
   */
  readonly strict?: boolean;
  readonly signal: 'alarm' | 'supervisory';
  readonly severity: Severity;
  readonly latching?: boolean;
  readonly hold: LatchHold;
  readonly text: (value: number, setAt: number) => Text;
}

/** The device's own alarm event (`detector_alarm`), mapped to a signal; `ok: true` restores it. */
export interface EventSpec {
  readonly rule: string;
  readonly signal: 'alarm' | 'supervisory';
  readonly severity: Severity;
  readonly latching?: boolean;
  readonly text: Text;
}

/** Per device, per level rule name: its latch. */
export type LevelState = Record<string, Record<string, Latch>>;

function signalOf(spec: { rule: string; signal: 'alarm' | 'supervisory'; severity: Severity; latching?: boolean }, c: Parameters<typeof alarmSignal>[2], text: Text): Signal {
  return spec.signal === 'alarm'
    ? alarmSignal(spec.rule, spec.severity, c, text, { latching: spec.latching === true })
    : supervisorySignal(spec.rule, spec.severity, c, text);
}

function levels(d: Device, spec: LevelSpec, ctx: RuleContext): { setAt: number; clearAt: number } {
  const setAt = threshold(d, spec.set, ctx);
  const clear = threshold(d, spec.clear, ctx);
  const clearAt = spec.clearIsDelta === true ? (spec.direction === 'above' ? setAt - clear : setAt + clear) : clear;
  return { setAt, clearAt };
}

export function levelRule(id: string, kinds: readonly DeviceKind[], specs: readonly LevelSpec[], event?: EventSpec): Rule<LevelState> {
  const kindSet = new Set<string>(kinds);
  return {
    id,
    accepts: { types: ['telemetry', 'event'], kinds },
    // The state is the per-device map; each device's latches are replaced, never changed in place (Rule.snapshotMaps).
    snapshotMaps: [''],
    initialState: () => ({}),
    evaluate(input, state, ctx) {
      if (input.type === 'event' && event !== undefined && kindSet.has(input.device.kind) && input.event.type === 'detector_alarm') {
        const d = input.device;
        const was = state[d.id]?.[event.rule]?.on === true;
        const on = input.event.ok !== true;
        const c = { device: d, ctx, active: on, sourceTs: input.ts, receivedTs: input.receivedTs };
        // The event itself, by the device's own time and seq: the same alarm redelivered (after a
        // restart of this process the adapter's duplicate memory is gone, the saved latch is not) is
        // not a new one, and must not re-sound an alarm staff acknowledged.
        const k = `${input.event.ts}:${input.event.seq}`;
        if (was && on && state[d.id]?.[event.rule]?.k === k) return { state, signals: [] };
        if (was && on) {
          // The device alarms again without an `ok: true` between (its restore not sent or lost; a
          // device that sends its alarm on each crossing, as device-sim does, never sends one). A panel
          // re-sounds a subsequent alarm once silenced (alerts/lifecycle.ts): the signal is cleared
          // and asserted again, so the lifecycle takes it as the condition returning (a
          // latched alert is reactivated and must be acknowledged again; a self-restoring one is
          // resolved and raised anew), never as a second open alert. It was ignored.
          const again: Latch = { on, n: 0, p: -1, k };
          return { state: { ...state, [d.id]: { ...state[d.id], [event.rule]: again } }, signals: [signalOf(event, { ...c, active: false }, event.text), signalOf(event, c, event.text)] };
        }
        if (was === on) return { state, signals: [] };
        const latch: Latch = on ? { on, n: 0, p: -1, k } : { on, n: 0, p: -1 };
        return { state: { ...state, [d.id]: { ...state[d.id], [event.rule]: latch } }, signals: [signalOf(event, c, event.text)] };
      }
      if (input.type !== 'telemetry' || !kindSet.has(input.device.kind)) return { state, signals: [] };
      const d = input.device;
      const prev = state[d.id] ?? {};
      let next: Record<string, Latch> | undefined;
      const signals: Signal[] = [];
      for (const spec of specs) {
        const value = input.metrics[spec.metric];
        if (typeof value !== 'number') continue;
        const { setAt, clearAt } = levels(d, spec, ctx);
        const latch = prev[spec.rule] ?? newLatch();
        const step =
          spec.strict === true && spec.direction === 'above'
            ? stepLatch(latch, value > setAt, value <= Math.min(clearAt, setAt), input.now, spec.hold)
            : (spec.direction === 'above' ? stepAbove : stepBelow)(latch, value, setAt, clearAt, input.now, spec.hold);
        if (step.latch !== latch) (next ??= { ...prev })[spec.rule] = step.latch;
        if (step.edge !== undefined) {
          const c = { device: d, ctx, active: step.edge === 'set', sourceTs: input.ts, receivedTs: input.receivedTs, value };
          signals.push(signalOf(spec, c, spec.text(value, setAt)));
        }
      }
      if (next === undefined) return { state, signals };
      if (ctx.inPlace === true) {
        state[d.id] = next;
        return { state, signals, mutated: true };
      }
      return { state: { ...state, [d.id]: next }, signals };
    },
  };
}
