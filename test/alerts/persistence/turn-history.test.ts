import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { withCareContext } from '../../../alerts/alerts.ts';
import { createInfluxHttp } from '../../../alerts/persistence/influx-http.ts';
import { bedLine, createTurnHistory, detectTurnChanges, emptySeen, seedSeen, turnLine, type BedRecord, type TurnRecord } from '../../../alerts/persistence/turn-history.ts';
import { createRepositionRule } from '../../../alerts/rules/care/reposition-rule.ts';
import type { Rule, RuleInput } from '../../../alerts/rules/types.ts';
import { influxQuery, testInflux } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { loginToken, startAlerts, tempDir } from '../support/harness.ts';
import type { StatsResponse } from '../../../alerts/http/stats.ts';

/** Turn history: turns and bed changes read from the reposition rule's state, journaled to InfluxDB. */
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

/** Runs the stream through the real reposition rule, wrapped as alerts/alerts.ts wraps it. */
function drive(onReposition: (input: RuleInput, state: unknown) => void, inputs = STREAM): unknown {
  const [rule] = withCareContext([createRepositionRule() as Rule], () => undefined, () => {}, onReposition);
  let state = rule!.initialState();
  for (const input of inputs) state = rule!.evaluate(input, state, { registry }).state;
  return state;
}

describe('turn history', () => {
  it('sees lying down, a sensor turn, a staff turn and leaving the bed through the reposition rule hook', () => {
    const seen = emptySeen();
    const turns: TurnRecord[] = [];
    const beds: BedRecord[] = [];
    drive((input, state) => {
      const c = detectTurnChanges(input, state, seen, registry);
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
    const seen = emptySeen();
    const restored = drive(() => {}, STREAM.slice(0, 5));
    seedSeen(restored, seen);
    const [rule] = withCareContext([createRepositionRule() as Rule], () => undefined, () => {}, (input, s) => out.push(...detectTurnChanges(input, s, seen, registry).turns));
    const out: TurnRecord[] = [];
    let state = restored;
    const later = [reading(T0 + 1.5 * H, true), reading(T0 + 2.5 * H, true, 80), reading(T0 + 2.5 * H + 10_000, true, 80)];
    for (const input of later) state = rule!.evaluate(input, state, { registry }).state;
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
    const down = createTurnHistory({ influx: createInfluxHttp('http://127.0.0.1:1', influx.database), journalPath, registry, clock, logger });
    await down.start();
    drive((input, state) => down.observe(input, state));
    expect(down.stats()).toMatchObject({ turns: 2, bedChanges: 2, pending: 4, written: 0 });
    await down.close();

    const up = createTurnHistory({ influx: createInfluxHttp(influx.url, influx.database), journalPath, registry, clock, logger });
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
