import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { careStateOf, createCareStateView, reduceCare, type CareRecord } from '../../../alerts/http/care-state.ts';
import type { HomeLive, ResidentCareState } from '../../../alerts/http/live.ts';
import { createEngine } from '../../../alerts/engine.ts';
import { careRules } from '../../../alerts/rules/care/index.ts';
import { NEWS2_RULE_ID, type News2Score, type News2State } from '../../../alerts/rules/care/news2-rule.ts';
import { REPOSITION_RULE_ID, type RepositionState } from '../../../alerts/rules/care/reposition-rule.ts';
import type { Fact } from '../../../alerts/rules/facts.ts';
import type { RuleInput } from '../../../alerts/rules/types.ts';
import { testInflux } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { loginToken, startAlerts, tempDir } from '../support/harness.ts';

/** The dashboard's care state per resident, kept from the care rules' facts (alerts/http/care-state.ts). */
const registry = demoRegistry();
const T0 = Date.UTC(2026, 0, 10, 2, 0, 0);
const MIN = 60_000;
const who = { homeId: 'h01', residentId: 'h01-p01' } as const;

function score(aggregate: number): News2Score {
  return { components: { pulse: { value: 95, score: 1 } }, aggregate, partial: true, missing: ['systolic_bp'], risk: 'low', response: 'ward', spo2Scale: 1, ts: T0, computedAt: T0 };
}

describe('reduceCare', () => {
  it('keeps the latest score, the schedule of the latest turn, and drops the next turn when the resident leaves the bed', () => {
    const facts: Fact[] = [
      { kind: 'news2', ...who, score: score(3) },
      { kind: 'turn_schedule', ...who, lastTurnAt: T0, nextTurnDueAt: T0 + 120 * MIN },
      { kind: 'turn', ...who, source: 'sensor', ts: T0 + 60 * MIN, intervalMin: 120, lastTurnAt: T0 + 60 * MIN, nextTurnDueAt: T0 + 180 * MIN },
      { kind: 'news2', ...who, score: score(5) },
      { kind: 'turn_schedule', ...who, lastTurnAt: T0 + 60 * MIN },
    ];
    const records: Array<CareRecord | undefined> = [];
    let rec: CareRecord | undefined;
    for (const f of facts) records.push((rec = reduceCare(rec, f)));
    expect(records).toEqual([
      { news2: { aggregate: 3, partial: true, missing: ['systolic_bp'], risk: 'low' } },
      { news2: { aggregate: 3, partial: true, missing: ['systolic_bp'], risk: 'low' }, lastTurnAt: T0, nextTurnDueAt: T0 + 120 * MIN },
      { news2: { aggregate: 3, partial: true, missing: ['systolic_bp'], risk: 'low' }, lastTurnAt: T0 + 60 * MIN, nextTurnDueAt: T0 + 180 * MIN },
      { news2: { aggregate: 5, partial: true, missing: ['systolic_bp'], risk: 'low' }, lastTurnAt: T0 + 60 * MIN, nextTurnDueAt: T0 + 180 * MIN },
      { news2: { aggregate: 5, partial: true, missing: ['systolic_bp'], risk: 'low' }, lastTurnAt: T0 + 60 * MIN },
    ]);
  });

  it('is pure: the previous record is never changed, and a fact that changes nothing shown returns it as it was', () => {
    const prev: CareRecord = Object.freeze({ lastTurnAt: T0, nextTurnDueAt: T0 + 120 * MIN });
    const next = reduceCare(prev, { kind: 'turn_schedule', ...who });
    expect(next).toEqual({ lastTurnAt: T0 });
    expect(prev).toEqual({ lastTurnAt: T0, nextTurnDueAt: T0 + 120 * MIN });
    expect(reduceCare(prev, { kind: 'bed', ...who, deviceId: 'h01-bed-p01', inBed: false, ts: T0 })).toBe(prev);
    expect(reduceCare(undefined, { kind: 'bed', ...who, deviceId: 'h01-bed-p01', inBed: true, ts: T0 })).toBeUndefined();
  });

  it('shows nothing until there is a score or a turn due', () => {
    expect(careStateOf(undefined)).toBeUndefined();
    expect(careStateOf({ lastTurnAt: T0 })).toBeUndefined();
    expect(careStateOf({ lastTurnAt: T0, nextTurnDueAt: T0 + 1 })).toEqual({ lastTurnAt: T0, nextTurnDueAt: T0 + 1 });
    expect(careStateOf({ news2: { aggregate: 0, partial: false, missing: [] } })).toEqual({ news2: { aggregate: 0, partial: false, missing: [] } });
  });
});

/** What http/care-state.ts showed before issue 11, read from the rules' state: the reference the facts must match. */
function fromRuleState(states: Record<string, unknown>, residentId: string): ResidentCareState | undefined {
  const news2 = states[NEWS2_RULE_ID] as News2State;
  const turns = states[REPOSITION_RULE_ID] as RepositionState;
  const s = news2.scores[residentId];
  const next = turns.nextTurnDue[residentId];
  const lastTurn = turns.residents[residentId]?.lastTurn;
  if (s === undefined && next === undefined) return undefined;
  return {
    ...(s !== undefined ? { news2: { aggregate: s.aggregate, partial: s.partial, missing: s.missing, risk: s.risk } } : {}),
    ...(next !== undefined ? { nextTurnDueAt: next } : {}),
    ...(lastTurn !== undefined ? { lastTurnAt: lastTurn } : {}),
  };
}

/**
 * Six hours of the h01 care devices: vitals every 30 s (some high), bed sensors with movement
 * bursts, exits and returns, staff turns and observations, ticks. Deterministic.
 */
function careStream(): RuleInput[] {
  let seed = 4242;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const residents = registry.site.residents.filter((r) => r.homeId === 'h01');
  const devices = registry.site.devices.filter((d) => d.homeId === 'h01' && (d.kind === 'bed_sensor' || d.kind === 'vital_signs_monitor') && d.residentId !== undefined);
  const out: RuleInput[] = [];
  const inBed = new Map<string, boolean>();
  for (let now = T0; now < T0 + 6 * 60 * MIN; now += 30_000) {
    for (const device of devices) {
      if (device.kind === 'vital_signs_monitor') {
        const high = rnd() < 0.1;
        out.push({ type: 'telemetry', now, device, ts: now, receivedTs: now, metrics: { heart_rate_bpm: high ? 125 : 70 + Math.round(rnd() * 10), resp_rate_bpm: 16, spo2_pct: high ? 91 : 97, body_temp_c: 36.8 } });
      } else {
        const r = rnd();
        let occupied = inBed.get(device.id) ?? true;
        if (r < 0.01) occupied = !occupied;
        inBed.set(device.id, occupied);
        out.push({ type: 'telemetry', now, device, ts: now, receivedTs: now, metrics: { bed_occupied: occupied, movement_index: occupied && rnd() < 0.05 ? 80 : 5 } });
        if (r > 0.995) out.push({ type: 'event', now, device, ts: now, receivedTs: now, event: { ts: now, seq: 0, type: occupied ? 'bed_return' : 'bed_exit' } });
      }
    }
    if (rnd() < 0.05) {
      const res = residents[Math.floor(rnd() * residents.length)]!;
      out.push({ type: 'care_action', now, residentId: res.id, homeId: res.homeId, action: rnd() < 0.5 ? 'turned' : 'checked', by: 'staff-h01', ts: now - 5000, ...(rnd() < 0.3 ? { observation: { onOxygen: rnd() < 0.5 } } : {}) });
    }
    if (now % (5 * MIN) === 0) out.push({ type: 'tick', now });
  }
  return out;
}

describe('the care-state view', () => {
  it('shows, from facts alone, what the rules hold in their state: at every step, and again after a restore from standing facts', () => {
    const view = createCareStateView();
    const engine = createEngine({ rules: careRules(), registry, onFacts: (f) => view.onFacts(f) });
    const residents = registry.site.residents.map((r) => r.id);
    let checked = 0;
    let shown = 0;
    const stream = careStream();
    stream.forEach((input, i) => {
      if (input.type === 'tick') engine.tick(input.now);
      else engine.evaluate(input);
      // Compared every 100 inputs (every resident each time), and at the end.
      if (i % 100 !== 0 && i !== stream.length - 1) return;
      const states = engine.view([NEWS2_RULE_ID, REPOSITION_RULE_ID]);
      for (const id of residents) {
        const want = fromRuleState(states, id);
        expect(view.residentCareState(id), `${id} after input ${i}`).toEqual(want);
        checked++;
        if (want?.nextTurnDueAt !== undefined && want.news2 !== undefined) shown++;
      }
    });
    expect(checked).toBeGreaterThan(500);
    expect(shown).toBeGreaterThan(50);

    // A restart: the states come back from the snapshot, and the view from their standing facts.
    const restarted = createEngine({ rules: careRules(), registry });
    restarted.restore(engine.snapshot());
    const seeded = createCareStateView();
    seeded.onFacts(restarted.standingFacts());
    for (const id of residents) expect(seeded.residentCareState(id), id).toEqual(view.residentCareState(id));
  });
});

describe('the care state on the live API', () => {
  const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
  afterAll(async () => {
    for (const d of dirs) await d.remove();
  });

  it('shows the NEWS2 score and the next turn from the rules\' facts, and the same again after a restart', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const influx = testInflux('care_view');
    const clock = createManualClock(T0);
    const vs = registry.device('h01-vs-p01')!;
    const bedSensor = registry.device('h01-bed-p01')!;
    const live = async (alerts: Awaited<ReturnType<typeof startAlerts>>): Promise<HomeLive['residents'][number] | undefined> => {
      const token = await loginToken(alerts, 'staff-h01');
      const res = await alerts.app.inject({ url: '/api/live/home/h01', headers: { authorization: `Bearer ${token}` } });
      expect(res.statusCode).toBe(200);
      return (res.json() as HomeLive).residents.find((r) => r.id === 'h01-p01');
    };
    const first = await startAlerts({ influx, stateDir: dir.path, clock, rules: careRules() });
    let before: HomeLive['residents'][number] | undefined;
    try {
      first.handleInput({ type: 'telemetry', now: T0, device: bedSensor, ts: T0, receivedTs: T0, metrics: { bed_occupied: true, movement_index: 3 } });
      // HR 95 → 1, RR 21 → 2: NEWS2 3 once the 30-s span of readings is there.
      for (let t = T0; t <= T0 + 60_000; t += 5000) {
        clock.set(t);
        first.handleInput({ type: 'telemetry', now: t, device: vs, ts: t, receivedTs: t, metrics: { heart_rate_bpm: 95, resp_rate_bpm: 21, spo2_pct: 97, body_temp_c: 37 } });
      }
      before = await live(first);
      expect(before).toMatchObject({ news2: { aggregate: 3, partial: true }, nextTurnDueAt: T0 + 120 * MIN });
    } finally {
      await first.close();
    }
    const second = await startAlerts({ influx, stateDir: dir.path, clock, rules: careRules() });
    try {
      expect(await live(second)).toEqual(before);
    } finally {
      await second.close();
    }
  });
});
