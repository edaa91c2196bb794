import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { openInfluxDatabase } from '../../../common/influx/database.ts';
import { createEngine } from '../../../alerts/engine.ts';
import { bedLine, createTurnHistory, turnLine, turnRecords, type BedRecord, type TurnRecord } from '../../../alerts/persistence/turn-history.ts';
import { createBedRule } from '../../../alerts/rules/care/bed-rule.ts';
import { createRepositionRule } from '../../../alerts/rules/care/reposition-rule.ts';
import type { Fact, Rule, RuleInput } from '../../../alerts/rules/types.ts';
import { influxQuery, testInflux } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { loginToken, startAlerts, tempDir } from '../support/harness.ts';
import type { StatsResponse } from '../../../alerts/http/stats.ts';

/** Turn history: turns and bed changes from the care rules' facts, journaled to InfluxDB. */
const influx = testInflux('turn_hist');
const registry = demoRegistry();
const logger = pino({ level: 'silent' });
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
afterAll(async () => {
  for (const d of dirs) await d.remove();
});

const T0 = Date.UTC(2026, 10, 3, 0, 0, 0);
const H = 3_600_000;
const bed = registry.device('h01-bed-p01')!;

function reading(ts: number, occupied: boolean, movement = 0): RuleInput {
  return { type: 'telemetry', now: ts, device: bed, ts, receivedTs: ts, metrics: { bed_occupied: occupied, movement_index: movement } };
}
function turnedByStaff(ts: number): RuleInput {
  return { type: 'care_action', now: ts + 1000, residentId: 'h01-p01', homeId: 'h01', action: 'turned', by: 'staff-h01', ts };
}
/** Lying down at T0, a 10-s movement burst at 1 h (a turn), staff turn at 2 h, out of bed at 3 h. */
const STREAM: RuleInput[] = [
  reading(T0, true),
  reading(T0 + H, true, 80),
  reading(T0 + H + 5000, true, 80),
  reading(T0 + H + 10_000, true, 80),
  reading(T0 + H + 15_000, true, 0),
  turnedByStaff(T0 + 2 * H),
  reading(T0 + 3 * H, false),
];

/** Runs the stream through the real reposition rule, handing on each evaluation's facts as the engine does. */
function drive(onFacts: (facts: readonly Fact[]) => void, inputs = STREAM, from?: unknown): unknown {
  const rule = createRepositionRule() as Rule;
  let state = from ?? rule.initialState();
  for (const input of inputs) {
    const res = rule.evaluate(input, state, { registry });
    state = res.state;
    if (res.facts !== undefined && res.facts.length > 0) onFacts(res.facts);
  }
  return state;
}

describe('turn history', () => {
  it("sees lying down, a sensor turn, a staff turn and leaving the bed through the reposition rule's facts", () => {
    const turns: TurnRecord[] = [];
    const beds: BedRecord[] = [];
    drive((facts) => {
      const c = turnRecords(facts);
      turns.push(...c.turns);
      beds.push(...c.beds);
    });
    expect(turns).toEqual([
      { homeId: 'h01', residentId: 'h01-p01', source: 'sensor', ts: T0 + H + 10_000, intervalMin: 120 },
      { homeId: 'h01', residentId: 'h01-p01', source: 'staff', ts: T0 + 2 * H, intervalMin: 120 },
    ]);
    expect(beds).toEqual([
      { homeId: 'h01', residentId: 'h01-p01', inBed: true, ts: T0 },
      { homeId: 'h01', residentId: 'h01-p01', inBed: false, ts: T0 + 3 * H },
    ]);
  });

  it('does not write a restored state again, only what happens after it', () => {
    // Restored as after a restart: through JSON, as the snapshot file holds it.
    const restored = JSON.parse(JSON.stringify(drive(() => {}, STREAM.slice(0, 5)))) as unknown;
    const out: TurnRecord[] = [];
    const later = [reading(T0 + 1.5 * H, true), reading(T0 + 2.5 * H, true, 80), reading(T0 + 2.5 * H + 10_000, true, 80)];
    drive((facts) => out.push(...turnRecords(facts).turns), later, restored);
    expect(out.map((t) => [t.source, t.ts])).toEqual([['sensor', T0 + 2.5 * H + 10_000]]);
  });

  it('writes lines with the tags and fields of the schema', () => {
    expect(turnLine({ homeId: 'h01', residentId: 'h01-p01', source: 'sensor', ts: 1_700_000_000_000, intervalMin: 90 })).toMatch(
      /^turn,home=h01,resident=h01-p01,source=sensor interval_min=90i 1700000000000\d{6}$/,
    );
    expect(bedLine({ homeId: 'h01', residentId: 'h01-p01', inBed: false, ts: 1_700_000_000_000 })).toMatch(/^bed_presence,home=h01,resident=h01-p01 in_bed=false 1700000000000\d{6}$/);
  });

  it('keeps turns in the journal while InfluxDB is down and writes them when it is back', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const clock = createManualClock();
    const journalPath = join(dir.path, 'turn.jsonl');
    const down = createTurnHistory({ influx: openInfluxDatabase({ url: 'http://127.0.0.1:1', database: influx.database }), journalPath, clock, logger });
    await down.start();
    drive((facts) => down.onFacts(facts));
    expect(down.stats()).toMatchObject({ turns: 2, bedChanges: 2, pending: 4, written: 0 });
    await down.close();

    const up = createTurnHistory({ influx: openInfluxDatabase({ url: influx.url, database: influx.database }), journalPath, clock, logger });
    await up.start();
    await up.drained();
    const turns = await influxQuery(influx.url, influx.database, `SELECT interval_min FROM turn GROUP BY source`);
    expect(Object.fromEntries(turns.map((s) => [s.tags?.source, s.values.map((v) => v[0])]))).toEqual({ sensor: [T0 + H + 10_000], staff: [T0 + 2 * H] });
    const presence = await influxQuery(influx.url, influx.database, `SELECT in_bed FROM bed_presence WHERE resident = 'h01-p01'`);
    expect(presence[0]?.values).toEqual([
      [T0, true],
      [T0 + 3 * H, false],
    ]);
    await up.close();
  });

  it('a turn recorded by staff and one sensed by the bed sensor reach the turn history as facts through the engine; a bed change seen by two rules is written once', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const db = testInflux('turn_facts');
    const clock = createManualClock(T0);
    const history = createTurnHistory({ influx: openInfluxDatabase({ url: db.url, database: db.database }), journalPath: join(dir.path, 'turn.jsonl'), clock, logger });
    await history.start();
    // The bed rule and the reposition rule both watch the bed and both report its changes.
    const engine = createEngine({ rules: [createBedRule() as Rule, createRepositionRule() as Rule], registry, logger, onFacts: (f) => history.onFacts(f) });
    try {
      for (const input of STREAM) engine.evaluate(input);
      expect(history.stats()).toMatchObject({ turns: 2, bedChanges: 2 });
      await history.drained();
      const turns = await influxQuery(db.url, db.database, `SELECT interval_min FROM turn WHERE resident = 'h01-p01' GROUP BY source`);
      expect(Object.fromEntries(turns.map((s) => [s.tags?.source, s.values]))).toEqual({ sensor: [[T0 + H + 10_000, 120]], staff: [[T0 + 2 * H, 120]] });
      const presence = await influxQuery(db.url, db.database, `SELECT in_bed FROM bed_presence WHERE resident = 'h01-p01'`);
      expect(presence[0]?.values).toEqual([
        [T0, true],
        [T0 + 3 * H, false],
      ]);
    } finally {
      await history.close();
    }
  });

  it('reaches the monthly statistics from a running alerts process', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const db = testInflux('turn_e2e');
    // The month runs to "now": put the clock after the stream, still in November 2026.
    const clock = createManualClock(T0 + 4 * H);
    const alerts = await startAlerts({ influx: db, stateDir: dir.path, clock, rules: [createRepositionRule() as Rule] });
    try {
      for (const input of STREAM) alerts.handleInput(input);
      await alerts.drained();
      const token = await loginToken(alerts, 'staff-h01');
      const res = await alerts.app.inject({ url: '/api/stats?month=2026-11', headers: { authorization: `Bearer ${token}` } });
      expect(res.statusCode).toBe(200);
      // In bed 0–3 h on a 2-h interval: the sensor turn at 1 h and the staff turn at 2 h are both on time.
      expect((res.json() as StatsResponse).homes[0]).toMatchObject({
        homeId: 'h01', residentsWithTurnData: 1, turnsBySensor: 1, turnsByStaff: 1, turnsDue: 2, turnsOnTime: 2, turnsLate: 0, turnsOnTimeRate: 1,
      });
    } finally {
      await alerts.close();
    }
  });
});
