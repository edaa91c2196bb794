import type { MetricName } from '../../../../contract/metrics.ts';
import type { EventType } from '../../../../contract/payloads.ts';
import { indexRegistry, type RegistryIndex } from '../../../../contract/registry-index.ts';
import type { Resident } from '../../../../contract/registry.ts';
import type { Rule, RuleInput, Signal } from '../../../../alerts/rules/types.ts';
import type { CareRuleContext } from '../../../../alerts/rules/care/care-context.ts';
import { demoRegistry } from '../../../support/registry.ts';

/**
 * Simulated input streams for the care rules, on the demo site's real residents and devices.
 * Times are fixed epoch values; nothing here reads a clock.
 */

/** 2026-01-10 23:00 China Standard Time (night) and 10:00 (day). */
export const NIGHT = Date.UTC(2026, 0, 10, 15, 0, 0);
export const DAY = Date.UTC(2026, 0, 10, 2, 0, 0);
export const S = 1000;
export const MIN = 60_000;

export function ctx(extra: Partial<CareRuleContext> = {}): CareRuleContext {
  return { registry: demoRegistry(), ...extra };
}

/** The demo registry with some residents changed (e.g. personal limits). */
export function registryWith(changes: Record<string, Partial<Resident>>): RegistryIndex {
  const site = structuredClone(demoRegistry().site);
  site.residents = site.residents.map((r) => ({ ...r, ...(changes[r.id] ?? {}) }));
  return indexRegistry(site);
}

function device(id: string) {
  const d = demoRegistry().device(id);
  if (d === undefined) throw new Error(`no device ${id} in the demo site`);
  return d;
}

export function telemetry(deviceId: string, ts: number, metrics: Partial<Record<MetricName, number | boolean>>, now = ts): RuleInput {
  return { type: 'telemetry', now, device: device(deviceId), ts, receivedTs: now, metrics };
}

export function event(deviceId: string, ts: number, type: EventType, now = ts): RuleInput {
  return { type: 'event', now, device: device(deviceId), ts, receivedTs: now, event: { ts, seq: 0, type } };
}

export function status(deviceId: string, ts: number, online: boolean, now = ts): RuleInput {
  return { type: 'status', now, device: device(deviceId), ts, receivedTs: now, online };
}

export function tick(now: number): RuleInput {
  return { type: 'tick', now };
}

export function action(
  residentId: string,
  what: string,
  ts: number,
  observation?: { onOxygen?: boolean; consciousness?: 'A' | 'C' | 'V' | 'P' | 'U' },
): RuleInput {
  const r = demoRegistry().resident(residentId);
  if (r === undefined) throw new Error(`no resident ${residentId}`);
  return { type: 'care_action', now: ts, residentId, homeId: r.homeId, action: what, by: `staff-${r.homeId}`, ts, ...(observation ? { observation } : {}) };
}

/** Readings every `periodMs` in [from, to), with metrics computed from the time offset since `from`. */
export function stream(
  deviceId: string,
  from: number,
  to: number,
  metrics: (offsetMs: number) => Partial<Record<MetricName, number | boolean>>,
  periodMs = 5 * S,
): RuleInput[] {
  const out: RuleInput[] = [];
  for (let t = from; t < to; t += periodMs) out.push(telemetry(deviceId, t, metrics(t - from)));
  return out;
}

/** Ticks every `periodMs` in [from, to). */
export function ticks(from: number, to: number, periodMs = 5 * S): RuleInput[] {
  const out: RuleInput[] = [];
  for (let t = from; t < to; t += periodMs) out.push(tick(t));
  return out;
}

/** Merges streams by platform time (stable: inputs at the same time keep their stream order). */
export function merge(...streams: RuleInput[][]): RuleInput[] {
  return streams.flat().map((x, i) => [x, i] as const).sort((a, b) => a[0].now - b[0].now || a[1] - b[1]).map((x) => x[0]);
}

export const NORMAL_VITALS = { heart_rate_bpm: 72, resp_rate_bpm: 16, spo2_pct: 97, body_temp_c: 36.6 } as const;

export interface Run<S> {
  state: S;
  signals: Signal[];
  /** Every signal with the platform time of the input that produced it. */
  log: Array<{ now: number; signal: Signal }>;
}

/**
 * Feeds inputs to a rule. `persist` round-trips the state through JSON after every step, as the
 * engine does when it persists and restores state, so any non-JSON state fails here.
 */
export function run<S>(rule: Rule<S>, inputs: readonly RuleInput[], opts: { state?: S; ctx?: CareRuleContext; persist?: boolean } = {}): Run<S> {
  let state = opts.state ?? rule.initialState();
  const c = opts.ctx ?? ctx();
  const log: Run<S>['log'] = [];
  for (const input of inputs) {
    const r = rule.evaluate(input, state, c);
    state = opts.persist === true ? (JSON.parse(JSON.stringify(r.state)) as S) : r.state;
    for (const s of r.signals) log.push({ now: input.now, signal: s });
  }
  return { state, signals: log.map((l) => l.signal), log };
}

export function active(signals: readonly Signal[], rule?: string): Signal[] {
  return signals.filter((s) => s.active && (rule === undefined || s.rule === rule));
}
export function cleared(signals: readonly Signal[], rule?: string): Signal[] {
  return signals.filter((s) => !s.active && (rule === undefined || s.rule === rule));
}
