import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../alerts/engine.ts';
import { createHomeEngines } from '../../alerts/partition.ts';
import { defaultRules } from '../../alerts/rules/index.ts';
import type { Rule, RuleInput, Signal } from '../../alerts/rules/types.ts';
import { cutText, sliceCut, type SliceBudget } from '../../alerts/snapshot-text.ts';
import { readJson, writeTextAtomic } from '../../alerts/state-file.ts';
import { METRICS, METRIC_NAMES, type MetricName } from '../../contract/metrics.ts';
import { EVENT_TYPES } from '../../contract/payloads.ts';
import { demoRegistry } from '../support/registry.ts';

/**
 * Issue 11: rule-state snapshots are built from per-entry texts cached by entry identity and sliced
 * across event-loop turns (alerts/snapshot-text.ts). These check that the text is exactly what one
 * JSON.stringify of the states gives (so old and new files read alike), that an unchanged entry is
 * not serialised again, that each rule's state in a file sliced while inputs kept arriving is a
 * state that rule had, and that an engine restored from such a file decides like the original.
 */

const registry = demoRegistry();
const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 0, 1);
const devices = registry.site.devices;
const residents = registry.site.residents;

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** One input: telemetry (normal, alarming or out of range), an event, a status, a care action or a tick. */
type Op = { kind: 'telemetry' | 'event' | 'status' | 'care' | 'tick'; d: number; level: number; pick: number; flag: boolean; dt: number };
const opArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom('telemetry', 'telemetry', 'telemetry', 'event', 'status', 'care', 'tick'),
  d: fc.nat(),
  level: fc.double({ min: 0, max: 1.2, noNaN: true }),
  pick: fc.nat(),
  flag: fc.boolean(),
  dt: fc.integer({ min: 0, max: 40_000 }),
});

function toInput(op: Op, now: number, seq: number): RuleInput {
  const device = devices[op.d % devices.length]!;
  switch (op.kind) {
    case 'telemetry': {
      const metrics: Partial<Record<MetricName, number | boolean>> = {};
      for (const m of METRIC_NAMES) {
        const spec = METRICS[m];
        if (spec.type === 'boolean') metrics[m] = op.flag;
        else {
          const lo = spec.min ?? 0;
          const hi = spec.max ?? 100;
          metrics[m] = lo + (hi - lo) * op.level;
        }
      }
      return { type: 'telemetry', now, device, ts: now, receivedTs: now, metrics };
    }
    case 'event': {
      const type = EVENT_TYPES[op.pick % EVENT_TYPES.length]!;
      return { type: 'event', now, device, ts: now, receivedTs: now, event: { ts: now, seq, type, ...(op.flag ? { ok: true } : {}) } };
    }
    case 'status':
      return { type: 'status', now, device, ts: now, receivedTs: now, online: op.flag };
    case 'care': {
      const res = residents[op.pick % residents.length]!;
      const action = (['turned', 'changed', 'checked', 'called_doctor'] as const)[op.d % 4]!;
      return { type: 'care_action', now, residentId: res.id, homeId: res.homeId, action, by: 'staff-a', ts: now };
    }
    case 'tick':
      return { type: 'tick', now };
  }
}

/** Feeds ops from `now`, returns the clock after them. */
function feed(engine: Engine, ops: readonly Op[], now: number, out?: Signal[]): number {
  let t = now;
  ops.forEach((op, i) => {
    t += op.dt;
    const s = engine.evaluate(toInput(op, t, i));
    out?.push(...s);
  });
  return t;
}

const budgetArb: fc.Arbitrary<SliceBudget> = fc.record({ chars: fc.integer({ min: 1, max: 4000 }), entries: fc.integer({ min: 1, max: 20 }) });

describe('rule-state snapshot text', () => {
  it('the default rules keep the snapshotMaps contract: sliced, cached text is exactly JSON.stringify of the states, after any inputs', () => {
    fc.assert(
      fc.property(fc.array(fc.array(opArb, { maxLength: 25 }), { minLength: 1, maxLength: 8 }), budgetArb, (batches, budget) => {
        const engine = createEngine({ rules: defaultRules(), registry, logger });
        let now = T0;
        for (const batch of batches) {
          now = feed(engine, batch, now);
          // view() is a JSON round trip of the states: its text is JSON.stringify of the states.
          const expected = JSON.stringify(engine.view());
          const chunks = [...sliceCut(engine.snapshotCut(), budget)];
          expect(chunks.join('')).toBe(expected);
          expect(engine.dirty()).toBe(false);
        }
      }),
      { numRuns: 60, endOnFailure: true },
    );
  }, 300_000);

  it('each rule in a file sliced while inputs keep arriving is a state that rule had (a consistent cut per rule)', () => {
    fc.assert(
      // Slices of a few entries: each turn records every rule's state, so not one entry per slice.
      fc.property(fc.array(opArb, { minLength: 5, maxLength: 40 }), fc.array(fc.array(opArb, { maxLength: 3 }), { minLength: 1, maxLength: 30 }), fc.record({ chars: fc.integer({ min: 200, max: 4000 }), entries: fc.integer({ min: 3, max: 20 }) }), (before, between, budget) => {
        const engine = createEngine({ rules: defaultRules(), registry, logger });
        let now = feed(engine, before, T0);
        const had = new Map<string, Set<string>>();
        const note = (): void => {
          for (const [id, state] of Object.entries(engine.view())) {
            const seen = had.get(id) ?? new Set<string>();
            seen.add(JSON.stringify(state));
            had.set(id, seen);
          }
        };
        const gen = sliceCut(engine.snapshotCut(), budget);
        const chunks: string[] = [];
        let turn = 0;
        for (;;) {
          // What each rule holds in the turn a slice runs (a rule is captured within one slice).
          note();
          const r = gen.next();
          if (r.done === true) break;
          chunks.push(r.value);
          // Inputs handled between two slices (the event loop runs them): entries are replaced and
          // the maps change in place while the rest of the file is still being made.
          now = feed(engine, between[turn++ % between.length] ?? [], now);
        }
        const saved = JSON.parse(chunks.join('')) as Record<string, unknown>;
        expect(Object.keys(saved)).toEqual([...had.keys()]);
        for (const [id, state] of Object.entries(saved)) expect(had.get(id)?.has(JSON.stringify(state)), `rule ${id}`).toBe(true);
      }),
      { numRuns: 30, endOnFailure: true },
    );
  }, 300_000);

  it('an entry that did not change is not serialised again; a changed one is', () => {
    let calls = 0;
    // A per-device map counted by how often its entries are turned into JSON.
    const counted: Rule<Record<string, { n: number; toJSON(): unknown }>> = {
      id: 'test_counted',
      snapshotMaps: [''],
      accepts: { types: ['telemetry'] },
      initialState: () => ({}),
      evaluate(input, state, ctx) {
        if (input.type !== 'telemetry') return { state, signals: [] };
        const n = (state[input.device.id]?.n ?? 0) + 1;
        // A new entry object per change (copy-on-write); toJSON counts serialisations.
        const entry = {
          n,
          toJSON: () => {
            calls++;
            return { n };
          },
        };
        if (ctx.inPlace === true) {
          state[input.device.id] = entry;
          return { state, signals: [], mutated: true };
        }
        return { state: { ...state, [input.device.id]: entry }, signals: [] };
      },
    };
    const engine = createEngine({ rules: [counted, ...defaultRules()], registry, logger });
    const smoke = devices.filter((d) => d.kind === 'smoke_detector').slice(0, 5);
    expect(smoke).toHaveLength(5);
    const telemetry = (id: number, now: number): RuleInput => ({
      type: 'telemetry',
      now,
      device: smoke[id]!,
      ts: now,
      receivedTs: now,
      metrics: { smoke_obscuration_pct_per_m: 0.02, temperature_c: 21, battery_pct: 90 },
    });
    smoke.forEach((_, i) => engine.evaluate(telemetry(i, T0 + i)));
    const first = engine.snapshotJson();
    expect(calls).toBe(5);
    expect(JSON.parse(first).test_counted).toEqual({ [smoke[0]!.id]: { n: 1 }, [smoke[1]!.id]: { n: 1 }, [smoke[2]!.id]: { n: 1 }, [smoke[3]!.id]: { n: 1 }, [smoke[4]!.id]: { n: 1 } });
    const f1 = engine.snapshotFragments();

    // One device reports again: only its entries are serialised, in each per-device map it is in
    // (test_counted, fire_detection.p, device_trouble, supervision.d); every other entry is reused.
    engine.evaluate(telemetry(2, T0 + 1000));
    const second = engine.snapshotJson();
    expect(calls).toBe(6);
    const f2 = engine.snapshotFragments();
    expect(f2.serialised - f1.serialised).toBe(4);
    expect(f2.reused - f1.reused).toBe(4 * 4);
    expect(JSON.parse(second).test_counted[smoke[2]!.id]).toEqual({ n: 2 });

    // Nothing changed: nothing is serialised.
    const third = engine.snapshotJson();
    expect(calls).toBe(6);
    expect(engine.snapshotFragments().serialised).toBe(f2.serialised);
    expect(third).toBe(second);
    expect(second).toBe(JSON.stringify(engine.view()));
  });

  it('an engine restored from a file written in slices decides like the one that wrote it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alerts-snapshot-'));
    dirs.push(dir);
    let file = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), fc.array(opArb, { minLength: 1, maxLength: 60 }), budgetArb, async (prefix, suffix, budget) => {
        const a = createEngine({ rules: defaultRules(), registry, logger });
        const now = feed(a, prefix, T0);
        const path = join(dir, `s${file++}.json`);
        // As alerts.ts writes it: the cut's chunks, written as they come.
        await writeTextAtomic(path, sliceCut(a.snapshotCut(), budget));
        const b = createEngine({ rules: defaultRules(), registry, logger });
        b.restore((await readJson(path)) as Record<string, unknown>);
        expect(JSON.stringify(b.view())).toBe(JSON.stringify(a.view()));
        const fromA: Signal[] = [];
        const fromB: Signal[] = [];
        feed(a, suffix, now, fromA);
        feed(b, suffix, now, fromB);
        expect(fromB).toEqual(fromA);
        expect(b.failures()).toEqual(a.failures());
      }),
      { numRuns: 40, endOnFailure: true },
    );
  }, 300_000);

  it('partitioned (one engine per home): the nested text and each home file are the states as JSON.stringify gives them', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), budgetArb, (ops, budget) => {
        const homes = registry.site.homes.map((h) => h.id);
        const engines = createHomeEngines({ homes, registry, rulesFor: () => defaultRules(), logger });
        feed(engines, ops, T0);
        const view = engines.view();
        expect([...sliceCut(engines.snapshotCut(), budget)].join('')).toBe(JSON.stringify(view));
        for (const h of homes) expect([...sliceCut(engines.snapshotHomeCut(h), budget)].join('')).toBe(JSON.stringify(view[h]));
        expect(engines.dirtyHomes()).toEqual([]);
      }),
      { numRuns: 20, endOnFailure: true },
    );
  }, 300_000);

  it('states without snapshotMaps, odd values and empty maps serialise as JSON.stringify does', () => {
    const odd: Rule<Record<string, unknown>> = {
      id: 'test_odd',
      snapshotMaps: ['m', 'n', 'missing'],
      initialState: () => ({ a: 1, m: { x: [1, null], y: undefined, '1': { z: 'é"\\' } }, u: undefined, n: {}, s: 'text' }),
      evaluate: (_input, state) => ({ state, signals: [] }),
    };
    const root: Rule<Record<string, unknown>> = { id: 'test_root', snapshotMaps: [''], initialState: () => ({}), evaluate: (_i, state) => ({ state, signals: [] }) };
    const plain: Rule<unknown> = { id: 'test_plain', initialState: () => [1, { b: 2 }], evaluate: (_i, state) => ({ state, signals: [] }) };
    const engine = createEngine({ rules: [odd, root, plain], registry, logger });
    const expected = JSON.stringify({ test_odd: odd.initialState(), test_root: {}, test_plain: [1, { b: 2 }] });
    expect(engine.snapshotJson()).toBe(expected);
    expect(cutText(engine.snapshotCut())).toBe(expected);
    expect([...sliceCut(engine.snapshotCut(), { chars: 1, entries: 1 })].join('')).toBe(expected);
  });
});
