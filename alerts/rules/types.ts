import type { DeviceKind } from '../../contract/device-kinds.ts';
import type { Device } from '../../contract/registry.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import type { MetricName } from '../../contract/metrics.ts';
import type { AlertCategory, EventPayload, Severity, SignalClass } from '../../contract/payloads.ts';
import type { Fact } from './facts.ts';

export type { Fact } from './facts.ts';

/**
 * The interface between the rules (pure functions, no I/O, no clock reads) and the alerts
 * engine that feeds them and turns their signals into alerts.
 *
 * The engine calls `evaluate` for every valid device message and for a periodic `tick` (time-based
 * rules: verification windows, heartbeat budgets, overdue turns). A rule returns its new state and
 * the signals it asserts or clears, and the facts it found (alerts/rules/facts.ts: a score, a turn, a
 * bed change) for the histories and views. Rule state must be plain JSON (no Map, no class instances) so
 * the engine can persist it and restore it after a restart (issue 3: windows survive restarts).
 */

export interface InputBase {
  /** Platform clock when the engine evaluates (ms). Rules never read a clock themselves. */
  readonly now: number;
  /** When the broker received the device message (its stamp), for alert timing; rules ignore it. */
  readonly brokerTs?: number;
}

export type RuleInput =
  | (InputBase & {
      readonly type: 'telemetry';
      readonly device: Device;
      /** Device timestamp of the reading. */
      readonly ts: number;
      readonly receivedTs: number;
      readonly metrics: Readonly<Partial<Record<MetricName, number | boolean>>>;
    })
  | (InputBase & { readonly type: 'event'; readonly device: Device; readonly ts: number; readonly receivedTs: number; readonly event: EventPayload })
  | (InputBase & { readonly type: 'status'; readonly device: Device; readonly ts: number; readonly receivedTs: number; readonly online: boolean; readonly reason?: string })
  /** A care action recorded by staff (turned, changed, checked, called_doctor) or a staff-entered observation. */
  | (InputBase & {
      readonly type: 'care_action';
      readonly residentId: string;
      readonly homeId: string;
      readonly action: string;
      readonly by: string;
      readonly ts: number;
      /** Staff-recorded observations for NEWS2: supplemental oxygen, consciousness (ACVPU). */
      readonly observation?: { readonly onOxygen?: boolean; readonly consciousness?: 'A' | 'C' | 'V' | 'P' | 'U' };
    })
  | (InputBase & { readonly type: 'tick' });

export interface RuleContext {
  readonly registry: RegistryIndex;
  /**
   * True when the caller (the engine) owns the state it passes and keeps no other reference to it:
   * a rule may then update its per-device records in place instead of copying the whole map on
   * every message, and reports that with `RuleResult.mutated`. Absent or false: a rule must treat
   * its state as immutable (the rule tests call it that way).
   */
  readonly inPlace?: boolean;
}

/** A condition a rule asserts (`active: true`) or clears (`active: false`). */
export interface Signal {
  /** Identity of the condition: the engine keeps at most one open alert per key (e.g. `smoke_alarm:h01-sd-r101`). */
  readonly key: string;
  readonly rule: string;
  readonly category: AlertCategory;
  readonly signal: SignalClass;
  readonly severity: Severity;
  readonly homeId: string;
  readonly deviceId?: string;
  readonly roomId?: string;
  readonly residentId?: string;
  readonly active: boolean;
  /** Device timestamp of the reading/event that caused this signal. */
  readonly sourceTs: number;
  readonly receivedTs?: number;
  /** When the broker received the causing message; the engine's caller fills it in, rules need not. */
  readonly brokerTs?: number;
  readonly value?: number;
  readonly message: { readonly zh: string; readonly en: string };
  /**
   * Latching signals (fire alarms, as a fire-alarm control panel latches them) are not resolved
   * when the condition clears: a person must resolve them. Non-latching ones resolve automatically.
   */
  readonly latching?: boolean;
  /** Escalate at once (e.g. a confirmed multi-criteria fire goes straight to the bureau). */
  readonly escalateNow?: boolean;
  /**
   * Other devices whose own alarm this signal stands for (a confirmed fire ends the verification of
   * the room's and the adjacent rooms' detectors): a disablement holds it back only if it covers
   * them all too (disablements/core.ts suppressionOf; EN 54-2 §9: a disabled point must not hide
   * another point's alarm).
   */
  readonly standsFor?: readonly string[];
}

export interface RuleResult<S> {
  readonly state: S;
  readonly signals: readonly Signal[];
  /** The rule changed `state` in place (only allowed under `ctx.inPlace`): it must be persisted. */
  readonly mutated?: boolean;
  /**
   * What the rule found while evaluating this input (a NEWS2 score, a turn, a bed change), for the
   * histories and views. Absent (not an empty array) when nothing: most inputs find nothing, and
   * the engine then allocates nothing for them. Facts are not state: never persisted.
   */
  readonly facts?: readonly Fact[];
}

/**
 * Which inputs a rule acts on. The engine indexes rules by it, so a rule is never called for an
 * input outside it (smoke telemetry never reaches the care rules). It must be exact: for every
 * other input the rule returns its state unchanged, no signals and no facts (test/alerts/engine.test.ts
 * checks that for every default rule). `kinds` filters the inputs that carry a device.
 */
export interface RuleAccepts {
  readonly types: readonly RuleInput['type'][];
  readonly kinds?: readonly DeviceKind[];
}

export interface Rule<S = unknown> {
  readonly id: string;
  /** Absent: every input. */
  readonly accepts?: RuleAccepts;
  initialState(): S;
  evaluate(input: RuleInput, state: S, ctx: RuleContext): RuleResult<S>;
  /**
   * The facts that hold in `state` (current scores, repositioning schedules; never events such as a
   * turn), so a view built from facts is whole again after the engine restores a snapshot. Pure.
   */
  standingFacts?(state: S, ctx: RuleContext): readonly Fact[];
  /**
   * Fields of the state that are per-entry copy-on-write maps (`''`: the state itself is one): the
   * rule may add, replace or delete their entries in place, but never changes an entry object it has
   * stored (it writes a new one). The engine then snapshots such a map from per-entry texts cached by
   * entry identity, and slices the work across event-loop turns (alerts/snapshot-text.ts): with
   * 10,000 devices one `JSON.stringify` of the whole state blocked alerts for 5–65 ms every 3 s.
   * test/alerts/snapshot-text.test.ts checks the default rules keep the contract.
   */
  readonly snapshotMaps?: readonly string[];
}

/** Labels per registry (a new registry is a new index object, so a reload never sees stale names). */
const labelCache = new WeakMap<RegistryIndex, Map<string, { zh: string; en: string }>>();

export function deviceLabel(device: Device, ctx: RuleContext): { zh: string; en: string } {
  let byDevice = labelCache.get(ctx.registry);
  if (byDevice === undefined) labelCache.set(ctx.registry, (byDevice = new Map()));
  const key = `${device.homeId}\u0000${device.roomId}`;
  const hit = byDevice.get(key);
  if (hit !== undefined) return { ...hit };
  const room = ctx.registry.room(device.homeId, device.roomId);
  const home = ctx.registry.home(device.homeId);
  const label = {
    zh: `${home?.name ?? device.homeId} ${room?.name ?? device.roomId}`,
    en: `${home?.nameEn ?? device.homeId}, ${room?.nameEn ?? device.roomId}`,
  };
  byDevice.set(key, label);
  return { ...label };
}
