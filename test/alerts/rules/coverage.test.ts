import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { METRIC_NAMES, type MetricName } from '../../../contract/metrics.ts';
import { EVENT_TYPES, type EventPayload, type EventType } from '../../../contract/payloads.ts';
import { defaultRules } from '../../../alerts/rules/index.ts';
import type { RuleInput, Signal } from '../../../alerts/rules/types.ts';
import { demoRegistry } from '../../support/registry.ts';

/**
 * Issue 11: every input that can mean danger is handled. Every event type and every metric of the
 * contract either drives a rule of the default rule set (fed through it here, its signal seen) or
 * is listed in docs/rules.md "Informational inputs" with why it raises nothing (and feeding it
 * here raises nothing). A new event type or metric with neither fails this test.
 */

const registry = demoRegistry();
const DOC = fileURLToPath(new URL('../../../docs/rules.md', import.meta.url));
/** 2026-01-10 23:00 China Standard Time: night, for the bed-exit rule. */
const NIGHT = Date.UTC(2026, 0, 10, 15, 0, 0);
const S = 1000;
const MIN = 60_000;

function dev(id: string) {
  const d = registry.device(id);
  if (d === undefined) throw new Error(`no device ${id}`);
  return d;
}
const tel = (id: string, ts: number, metrics: Partial<Record<MetricName, number | boolean>>): RuleInput => ({ type: 'telemetry', now: ts, device: dev(id), ts, receivedTs: ts, metrics });
const ev = (id: string, ts: number, type: EventType, extra: Partial<EventPayload> = {}): RuleInput => ({ type: 'event', now: ts, device: dev(id), ts, receivedTs: ts, event: { ts, seq: 1, type, ...extra } });
const tick = (now: number): RuleInput => ({ type: 'tick', now });
const series = (id: string, from: number, n: number, periodMs: number, metrics: Partial<Record<MetricName, number | boolean>>): RuleInput[] =>
  Array.from({ length: n }, (_, i) => tel(id, from + i * periodMs, metrics));

interface Drive {
  /** Inputs that set the scene (a resident in bed, an overdue turn). */
  readonly setup?: readonly RuleInput[];
  /** Inputs carrying only the event or metric under test. */
  readonly probe: readonly RuleInput[];
  /** The signal it must produce: raised, or (for an input whose job is to end a condition) cleared. */
  readonly rule: string;
  readonly active: boolean;
}

const T = NIGHT;
const inBed = series('h01-bed-p01', T - 60 * S, 12, 5 * S, { bed_occupied: true, movement_index: 5 });

const EVENTS: Partial<Record<EventType, Drive>> = {
  manual_call_point: { probe: [ev('h01-mcp-f1-corridor', T, 'manual_call_point')], rule: 'fire_confirmed', active: true },
  detector_alarm: { probe: [ev('h01-sd-r101', T, 'detector_alarm')], rule: 'fire_confirmed', active: true },
  sos_button: { probe: [ev('h01-nc-p01', T, 'sos_button')], rule: 'sos', active: true },
  fall: { probe: [ev('h01-bed-p01', T, 'fall')], rule: 'fall', active: true },
  bed_exit: { setup: inBed, probe: [ev('h01-bed-p01', T, 'bed_exit')], rule: 'bed_exit', active: true },
  bed_return: { setup: [...inBed, ev('h01-bed-p01', T, 'bed_exit')], probe: [ev('h01-bed-p01', T + MIN, 'bed_return')], rule: 'bed_exit', active: false },
  tamper: { probe: [ev('h01-sd-r101', T, 'tamper')], rule: 'tamper', active: true },
  fault: { probe: [ev('h01-sd-r101', T, 'fault', { ok: false, code: 'E1' })], rule: 'device_fault', active: true },
  self_test: { probe: [ev('h01-sd-r101', T, 'self_test', { ok: false })], rule: 'self_test_failed', active: true },
};

const METRIC_DRIVES: Partial<Record<MetricName, Drive>> = {
  temperature_c: { probe: series('h01-hd-kitchen', T, 3, 10 * S, { temperature_c: 90 }), rule: 'heat_fixed', active: true },
  smoke_obscuration_pct_per_m: { probe: series('h01-sd-r203', T, 3, 10 * S, { smoke_obscuration_pct_per_m: 2.5 }), rule: 'smoke_prealarm', active: true },
  battery_pct: { probe: series('h01-sd-r203', T, 3, 10 * S, { battery_pct: 5 }), rule: 'low_battery', active: true },
  heart_rate_bpm: { probe: series('h01-vs-p01', T, 15, 5 * S, { heart_rate_bpm: 150 }), rule: 'heart_rate_high', active: true },
  resp_rate_bpm: { probe: series('h01-vs-p01', T, 15, 5 * S, { resp_rate_bpm: 30 }), rule: 'resp_rate_high', active: true },
  spo2_pct: { probe: series('h01-vs-p01', T, 15, 5 * S, { spo2_pct: 85 }), rule: 'spo2_low', active: true },
  body_temp_c: { probe: series('h01-vs-p01', T, 30, 5 * S, { body_temp_c: 39.6 }), rule: 'fever_high', active: true },
  systolic_bp_mmhg: { probe: [tel('h01-vs-p01', T, { systolic_bp_mmhg: 230 })], rule: 'systolic_bp_high', active: true },
  bed_occupied: { setup: inBed, probe: [tel('h01-bed-p01', T, { bed_occupied: false })], rule: 'bed_exit', active: true },
  // A turn (a movement burst) ends an overdue-turn alert.
  movement_index: { setup: [...inBed, tick(T + 121 * MIN)], probe: series('h01-bed-p01', T + 122 * MIN, 4, 5 * S, { movement_index: 80 }), rule: 'turn_overdue', active: false },
  wetness_pct: { probe: [tel('h01-wet-p01', T, { wetness_pct: 80 })], rule: 'continence_change', active: true },
  residual_current_ma: { probe: series('h01-ef-plant', T, 3, 10 * S, { residual_current_ma: 600 }), rule: 'residual_current', active: true },
  cable_temp_c: { probe: series('h01-ef-plant', T, 3, 10 * S, { cable_temp_c: 95 }), rule: 'cable_temperature', active: true },
  gas_lel_pct: { probe: series('h01-gd-kitchen', T, 3, 10 * S, { gas_lel_pct: 30 }), rule: 'gas_low', active: true },
  water_pressure_mpa: { probe: series('h01-wp-plant', T, 3, 30 * S, { water_pressure_mpa: 0.05 }), rule: 'water_pressure_low', active: true },
};

/** Probes for the inputs docs/rules.md lists as informational: they must raise nothing. */
const INFORMATIONAL_PROBES: Partial<Record<string, readonly RuleInput[]>> = {
  rssi_dbm: series('h01-sd-r203', T, 10, 10 * S, { rssi_dbm: -139 }),
};

/** The backquoted names in the first column of the table under "## Informational inputs". */
function informational(): Map<string, string> {
  const text = readFileSync(DOC, 'utf8');
  const start = text.indexOf('\n## Informational inputs');
  if (start < 0) throw new Error('docs/rules.md has no "## Informational inputs" section');
  const end = text.indexOf('\n## ', start + 1);
  const section = text.slice(start, end < 0 ? undefined : end);
  const out = new Map<string, string>();
  for (const line of section.split('\n')) {
    const m = /^\|\s*`([a-z0-9_]+)`\s*\|\s*(.*?)\s*\|\s*$/.exec(line);
    if (m?.[1] !== undefined) out.set(m[1], m[2] ?? '');
  }
  return out;
}

function signalsOf(d: Drive): Signal[] {
  const rules = defaultRules();
  const states = rules.map((r) => r.initialState());
  const ctx = { registry };
  const out: Signal[] = [];
  const feed = (inputs: readonly RuleInput[], keep: boolean): void => {
    for (const input of inputs) {
      rules.forEach((rule, i) => {
        const res = rule.evaluate(input, states[i], ctx);
        states[i] = res.state;
        if (keep) out.push(...res.signals);
      });
    }
  };
  feed(d.setup ?? [], false);
  feed(d.probe, true);
  return out;
}

const ALL: Array<[kind: 'event' | 'metric', name: string, drive: Drive | undefined]> = [
  ...EVENT_TYPES.map((e) => ['event', e, EVENTS[e]] as ['event', string, Drive | undefined]),
  ...METRIC_NAMES.map((m) => ['metric', m, METRIC_DRIVES[m]] as ['metric', string, Drive | undefined]),
];

describe('every contract input either drives a rule or is documented as informational', () => {
  const info = informational();

  it.each(ALL)('%s %s', (kind, name, drive) => {
    if (drive === undefined) {
      const why = info.get(name);
      expect(why, `${kind} "${name}" drives no rule in this test and is not listed in docs/rules.md "Informational inputs"`).toBeDefined();
      expect((why ?? '').length, `docs/rules.md must say why ${name} raises nothing`).toBeGreaterThan(20);
      const probe = INFORMATIONAL_PROBES[name];
      expect(probe, `no probe showing that ${name} raises nothing`).toBeDefined();
      expect(signalsOf({ probe: probe ?? [], rule: '', active: true })).toEqual([]);
      return;
    }
    const seen = signalsOf(drive).filter((s) => s.rule === drive.rule && s.active === drive.active);
    expect(seen.length, `${kind} "${name}" should ${drive.active ? 'raise' : 'clear'} ${drive.rule}`).toBeGreaterThan(0);
    expect(info.has(name), `${name} drives a rule; remove it from "Informational inputs"`).toBe(false);
  });

  it('lists no name that is not an input of the contract', () => {
    const known = new Set<string>([...EVENT_TYPES, ...METRIC_NAMES]);
    expect([...info.keys()].filter((n) => !known.has(n))).toEqual([]);
  });
});
