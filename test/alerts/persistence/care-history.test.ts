import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { createNews2History, news2Line } from '../../../alerts/persistence/care-history.ts';
import { openInfluxDatabase } from '../../../common/influx/database.ts';
import type { News2Score } from '../../../alerts/rules/care/news2-rule.ts';
import type { News2Fact } from '../../../alerts/rules/facts.ts';
import { influxQuery, testInflux } from '../../support/influx-db.ts';
import { tempDir } from '../support/harness.ts';

/** NEWS2 history: written on change, throttled per resident, journaled while InfluxDB is down. */
const influx = testInflux('news2_hist');
const logger = pino({ level: 'silent' });
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
afterAll(async () => {
  for (const d of dirs) await d.remove();
});

function score(aggregate: number, computedAt: number): News2Score {
  return {
    components: { pulse: { value: 100, score: 1 }, spo2: { value: 97, score: 0 } },
    aggregate,
    partial: true,
    missing: ['consciousness', 'air_or_oxygen'],
    risk: aggregate >= 7 ? 'high' : 'low',
    response: 'ward',
    spo2Scale: 1,
    ts: computedAt,
    computedAt,
  };
}

/** The NEWS2 rule's fact for a new score of an h01 resident. */
function fact(residentId: string, s: News2Score): News2Fact {
  return { kind: 'news2', homeId: 'h01', residentId, score: s };
}

async function points(resident: string): Promise<Array<Record<string, unknown>>> {
  const series = await influxQuery(influx.url, influx.database, `SELECT * FROM "news2" WHERE "resident" = '${resident}'`);
  return series.flatMap((s) => s.values.map((v) => Object.fromEntries(s.columns.map((c, i) => [c, v[i]]))));
}

describe('NEWS2 history', () => {
  it('writes a line with the tags and fields of the schema', () => {
    const lp = news2Line('h01', 'h01-p01', score(3, 1_700_000_000_000));
    expect(lp).toMatch(/^news2,home=h01,resident=h01-p01 aggregate=3i,partial=true,missing="consciousness,air_or_oxygen",risk="low",spo2_scale=1i,score_spo2=0i,score_pulse=1i 1700000000000\d{6}$/);
  });

  it('writes on change, at most once per interval per resident, and keeps unsent scores in the journal while InfluxDB is down', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const clock = createManualClock();
    const journalPath = join(dir.path, 'care.jsonl');
    // InfluxDB unreachable: everything stays in the journal.
    const down = createNews2History({ influx: openInfluxDatabase({ url: 'http://127.0.0.1:1', database: influx.database }), journalPath, clock, logger, minIntervalMs: 60_000 });
    await down.start();
    const t0 = clock.now();
    down.onFacts([fact('h01-p01', score(1, t0))]);
    down.onFacts([fact('h01-p01', score(1, t0 + 1))]); // same score, new object: nothing new
    clock.advance(10_000);
    down.onFacts([fact('h01-p01', score(4, t0 + 10_000))]); // changed, but within the interval: waits
    expect(down.stats().points).toBe(1);
    clock.advance(60_000);
    expect(down.stats().points).toBe(2);
    expect(down.stats().pending).toBe(2);
    await down.close();

    // A new instance on the same journal with InfluxDB up replays both.
    const up = createNews2History({ influx: openInfluxDatabase({ url: influx.url, database: influx.database }), journalPath, clock, logger });
    await up.start();
    await up.drained();
    const rows = await points('h01-p01');
    expect(rows.map((r) => r.aggregate)).toEqual([1, 4]);
    expect(rows[0]).toMatchObject({ home: 'h01', partial: true, risk: 'low', score_pulse: 1 });
    await up.close();
  });
});
