import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../alerts/engine.ts';
import type { RuleInput } from '../../alerts/rules/types.ts';
import { readJson, writeJsonAtomic } from '../../alerts/state-file.ts';
import { demoRegistry } from '../support/registry.ts';
import { brokenRule, counterRule, smokeRule } from './support/test-rules.ts';
import { defaultRules } from '../../alerts/rules/index.ts';
import { METRICS, METRIC_NAMES, type MetricName } from '../../contract/metrics.ts';
import { EVENT_TYPES } from '../../contract/payloads.ts';
import { run } from './rules/fire/harness.ts';

const registry = demoRegistry();
const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 0, 1);

function smoke(deviceId: string, value: number, now = T0): RuleInput {
  const device = registry.device(deviceId)!;
  return { type: 'telemetry', now, device, ts: now, receivedTs: now, metrics: { smoke_obscuration_pct_per_m: value } };
}

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('engine', () => {
  it('isolates a failing rule: the others still signal, the failure is counted', () => {
    const engine = createEngine({ rules: [brokenRule, smokeRule, counterRule], registry, logger });
    const signals = engine.evaluate(smoke('h01-sd-r101', 15));
    // The failing rule is a trouble signal of its home (NFPA 72: a control-unit fault is trouble).
    expect(signals.map((s) => [s.key, s.active])).toEqual([
      ['rule_failure:test_broken:h01', true],
      ['test_smoke:h01-sd-r101', true],
    ]);
    expect(signals[0]).toMatchObject({ category: 'device', signal: 'trouble', severity: 'high' });
    // A tick concerns every home; h01's trouble is already raised and is not repeated.
    const onTick = engine.tick(T0 + 1000);
    expect(onTick.filter((s) => s.rule === 'rule_failure').map((s) => s.homeId)).toEqual(registry.site.homes.map((h) => h.id).filter((h) => h !== 'h01'));
    expect(engine.failures()).toEqual({ test_broken: 2 });
    expect(engine.snapshot()).toMatchObject({ test_smoke: { readings: 1 }, test_counter: { ticks: 1 } });
  });

  it("a rule failing on one detector's readings stays in trouble through ticks and other devices' readings, until that detector's readings pass", () => {
    // Until session 23 the next tick (a success for every home) cleared the trouble within a second,
    // and the detector's next reading raised it again: 360 troubles an hour, none open long enough
    // to be seen (a helper's hunt, session 22).
    let broken = true;
    const picky = {
      id: 'test_picky',
      initialState: () => ({}),
      evaluate: (input: RuleInput, state: object) => {
        if (broken && 'device' in input && input.device.id === 'h01-sd-r101') throw new Error('cannot read this detector');
        return { state, signals: [] };
      },
    };
    const e = createEngine({ rules: [picky], registry, logger });
    const troubles = (signals: readonly { rule: string; homeId: string; active: boolean }[]) => signals.filter((x) => x.rule === 'rule_failure').map((x) => [x.homeId, x.active]);
    expect(troubles(e.evaluate(smoke('h01-sd-r101', 1)))).toEqual([['h01', true]]);
    expect(troubles(e.tick(T0 + 1000))).toEqual([]);
    expect(troubles(e.evaluate(smoke('h01-sd-r102', 1)))).toEqual([]);
    expect(troubles(e.evaluate(smoke('h01-sd-r101', 1, T0 + 2000)))).toEqual([]);
    expect(troubles(e.tick(T0 + 3000))).toEqual([]);
    broken = false;
    expect(troubles(e.evaluate(smoke('h01-sd-r101', 1, T0 + 4000)))).toEqual([['h01', false]]);
  });

  it("a rule failing on a detector's events is not cleared by the same detector's readings", () => {
    // The review's case (session 23): the fire rules take telemetry, events and ticks.
    const onEvents = {
      id: 'test_events',
      initialState: () => ({}),
      evaluate: (input: RuleInput, state: object) => {
        if (input.type === 'event') throw new Error('cannot read this event');
        return { state, signals: [] };
      },
    };
    const e = createEngine({ rules: [onEvents], registry, logger });
    const device = registry.device('h01-sd-r101')!;
    const event = (now: number): RuleInput => ({ type: 'event', now, device, ts: now, receivedTs: now, event: { ts: now, seq: 1, type: 'self_test', ok: true } });
    const troubles = (signals: readonly { rule: string; active: boolean }[]) => signals.filter((x) => x.rule === 'rule_failure').map((x) => x.active);
    const seen = [event(T0), smoke('h01-sd-r101', 1, T0 + 1), event(T0 + 2), smoke('h01-sd-r101', 1, T0 + 3)].flatMap((i) => troubles(e.evaluate(i)));
    expect(seen).toEqual([true]);
  });

  it('refuses two rules with the same id', () => {
    expect(() => createEngine({ rules: [smokeRule, smokeRule], registry })).toThrow(/duplicate rule id/);
  });

  it('rule states survive a snapshot written to disk and restored into a new engine', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alerts-engine-'));
    dirs.push(dir);
    const a = createEngine({ rules: [smokeRule, counterRule], registry, logger });
    a.evaluate(smoke('h01-sd-r101', 15));
    a.evaluate(smoke('h01-sd-r102', 12));
    a.tick(T0 + 1000);
    expect(a.dirty()).toBe(true);
    await writeJsonAtomic(join(dir, 's.json'), a.snapshot());
    expect(a.dirty()).toBe(false);

    const b = createEngine({ rules: [smokeRule, counterRule], registry, logger });
    b.restore((await readJson(join(dir, 's.json'))) as Record<string, unknown>);
    expect(b.snapshot()).toEqual({ test_smoke: { readings: 2, over: ['h01-sd-r101', 'h01-sd-r102'] }, test_counter: { ticks: 1, actions: [] } });
    b.evaluate(smoke('h01-sd-r101', 1));
    expect(b.snapshot()).toMatchObject({ test_smoke: { readings: 3, over: ['h01-sd-r102'] } });
  });

  it('a restored state that breaks its rule is replaced by the initial state', () => {
    const e = createEngine({ rules: [smokeRule], registry, logger });
    e.restore({ test_smoke: { readings: 'x', over: 42 } });
    expect(e.evaluate(smoke('h01-sd-r101', 15)).map((x) => [x.key, x.active])).toEqual([['rule_failure:test_smoke:h01', true]]);
    expect(e.failures()).toEqual({ test_smoke: 1 });
    // Working again: the smoke signal, and the trouble clears.
    expect(e.evaluate(smoke('h01-sd-r101', 15)).map((x) => [x.key, x.active])).toEqual([
      ['test_smoke:h01-sd-r101', true],
      ['rule_failure:test_smoke:h01', false],
    ]);
    expect(e.snapshot()).toEqual({ test_smoke: { readings: 1, over: ['h01-sd-r101'] } });
  });

  it('a rule that keeps failing on a state it cannot digest starts afresh after three failures in a row', () => {
    let poisoned = true;
    const fragile = {
      id: 'test_fragile',
      initialState: () => ({ n: 0 }),
      evaluate: (input: RuleInput, state: { n: number }) => {
        if (poisoned && state.n === 1) throw new Error('cannot digest');
        return { state: { n: state.n + 1 }, signals: [] };
      },
    };
    const e = createEngine({ rules: [fragile], registry, logger });
    e.evaluate(smoke('h01-sd-r101', 0)); // n = 1: from now on it throws
    for (let i = 0; i < 3; i++) e.evaluate(smoke('h01-sd-r101', 0));
    expect(e.failures()).toEqual({ test_fragile: 3 });
    expect(e.view()).toEqual({ test_fragile: { n: 0 } });
    poisoned = false;
    expect(e.evaluate(smoke('h01-sd-r101', 0)).map((x) => [x.key, x.active])).toEqual([['rule_failure:test_fragile:h01', false]]);
  });
});

/** A deterministic mixed stream over every demo device: telemetry (normal and alarming), events, status, care actions, ticks. */
function mixedStream(n: number): RuleInput[] {
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const devices = registry.site.devices;
  const residents = registry.site.residents;
  const out: RuleInput[] = [];
  for (let i = 0; i < n; i++) {
    const now = T0 + i * 2_000;
    const r = rnd();
    const device = devices[Math.floor(rnd() * devices.length)]!;
    const hot = rnd() < 0.2;
    if (r < 0.6) {
      const metrics: Partial<Record<MetricName, number | boolean>> = {};
      for (const m of METRIC_NAMES) {
        const spec = METRICS[m];
        if (spec.type === 'boolean') metrics[m] = rnd() < 0.5;
        else metrics[m] = hot ? (spec.max ?? 100) * 0.9 : Math.max(spec.min ?? 0, Math.min(spec.max ?? 100, ((spec.max ?? 100) - (spec.min ?? 0)) * 0.4 + (spec.min ?? 0)));
      }
      out.push({ type: 'telemetry', now, device, ts: now, receivedTs: now, metrics });
    } else if (r < 0.75) {
      const type = EVENT_TYPES[Math.floor(rnd() * EVENT_TYPES.length)]!;
      out.push({ type: 'event', now, device, ts: now, receivedTs: now, event: { ts: now, seq: i, type, ...(rnd() < 0.3 ? { ok: true } : {}) } });
    } else if (r < 0.85) {
      out.push({ type: 'status', now, device, ts: now, receivedTs: now, online: rnd() < 0.7 });
    } else if (r < 0.92) {
      const res = residents[Math.floor(rnd() * residents.length)]!;
      const action = (['turned', 'changed', 'checked', 'called_doctor'] as const)[Math.floor(rnd() * 4)]!;
      out.push({ type: 'care_action', now, residentId: res.id, homeId: res.homeId, action, by: 'staff-a', ts: now, observation: { onOxygen: rnd() < 0.2, consciousness: rnd() < 0.1 ? 'V' : 'A' } });
    } else out.push({ type: 'tick', now });
  }
  return out;
}

describe('engine routing and in-place updates (issue 6)', () => {
  const stream = mixedStream(3_000);

  it("every default rule's `accepts` is exact: any other input leaves its state and signals untouched", () => {
    const ctx = { registry };
    for (const rule of defaultRules()) {
      if (rule.accepts === undefined) continue;
      let state = rule.initialState();
      let skipped = 0;
      for (const input of stream) {
        const accepted = rule.accepts.types.includes(input.type) && (!('device' in input) || rule.accepts.kinds === undefined || rule.accepts.kinds.includes(input.device.kind));
        const res = rule.evaluate(input, state, ctx);
        if (!accepted) {
          skipped++;
          expect(res.state, `${rule.id} changed its state on a ${input.type} it does not accept`).toBe(state);
          expect(res.signals, `${rule.id} signalled on a ${input.type} it does not accept`).toEqual([]);
        }
        state = res.state;
      }
      expect(skipped, rule.id).toBeGreaterThan(0);
    }
  });

  it('the engine (indexed, in place) gives the same signals and states as every rule copying over every input', () => {
    const rules = defaultRules();
    const engine = createEngine({ rules, registry, logger });
    const reference = run(rules, stream, { ctx: { registry } });
    const signals = stream.flatMap((input) => (input.type === 'tick' ? engine.tick(input.now) : engine.evaluate(input)));
    expect(engine.failures()).toEqual({});
    expect(reference.signals.length).toBeGreaterThan(10);
    expect(signals).toEqual(reference.signals);
    expect(engine.snapshot()).toEqual(JSON.parse(JSON.stringify(Object.fromEntries(rules.map((r, i) => [r.id, reference.states[i]])))));
    // 11 s alone; 50-70 s on a machine shared with other suites, so its own bound (no wall-clock assertion).
  }, 240_000);

  it('an in-place update still marks the engine dirty, and the snapshot is a copy', () => {
    const engine = createEngine({ rules: defaultRules(), registry, logger });
    engine.evaluate(smoke('h01-sd-r101', 0.5, T0));
    const snap = engine.snapshot();
    expect(engine.dirty()).toBe(false);
    engine.evaluate(smoke('h01-sd-r101', 0.6, T0 + 10_000));
    expect(engine.dirty()).toBe(true);
    const again = engine.snapshot() as Record<string, { p: Record<string, unknown> }>;
    expect(again).not.toEqual(snap);
    expect((snap as Record<string, { p: Record<string, unknown> }>).fire_detection!.p['h01-sd-r101']).not.toEqual(again.fire_detection!.p['h01-sd-r101']);
  });
});

it('view() copies the named states without clearing dirty(), so a reader cannot make the periodic save skip', () => {
  const engine = createEngine({ rules: [smokeRule, counterRule], registry, logger });
  engine.snapshot();
  engine.evaluate(smoke('h01-sd-r101', 15));
  const v = engine.view(['test_smoke']);
  expect(Object.keys(v)).toEqual(['test_smoke']);
  expect(engine.dirty()).toBe(true);
  (v.test_smoke as { readings: number }).readings = 99;
  expect(engine.view().test_smoke).toMatchObject({ readings: 1 });
});

it('snapshotJson() is the saved text of snapshot(): one serialisation, and it clears dirty() too', () => {
  const engine = createEngine({ rules: [smokeRule, counterRule], registry, logger });
  engine.evaluate(smoke('h01-sd-r101', 15));
  expect(engine.dirty()).toBe(true);
  const text = engine.snapshotJson();
  expect(engine.dirty()).toBe(false);
  expect(JSON.parse(text)).toEqual(engine.snapshot());
  expect(JSON.parse(text)).toMatchObject({ test_smoke: { readings: 1 } });
});
