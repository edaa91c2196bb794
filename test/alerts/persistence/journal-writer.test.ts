import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { freePort } from '../../../common/influxd.ts';
import { createInfluxHttp } from '../../../alerts/persistence/influx-http.ts';
import { createJournalWriter } from '../../../alerts/persistence/journal-writer.ts';
import { influxQuery, testInflux } from '../../support/influx-db.ts';
import { tempDir } from '../support/harness.ts';

const logger = pino({ level: 'silent' });
const influx = testInflux('alerts_journal');
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
afterAll(async () => Promise.all(dirs.map((d) => d.remove())));

describe('journal writer', () => {
  it('keeps every record in the journal while InfluxDB is unreachable and delivers them after a restart', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'journal.jsonl');
    const clock = createManualClock();
    const down = createInfluxHttp(`http://127.0.0.1:${await freePort()}`, influx.database);
    const w1 = createJournalWriter<{ n: number }>({ path, influx: down, clock, logger, retryMinMs: 100 });
    await w1.start();
    w1.append([{ lp: 'probe,home=h01 n=1i 1000000000', meta: { n: 1 } }]);
    w1.append([{ lp: 'probe,home=h01 n=2i 2000000000', meta: { n: 2 } }, { lp: 'probe,home=h02 n=3i 3000000000', meta: { n: 3 } }]);
    // Retries follow the injected clock; each fails while InfluxDB is away.
    for (let i = 0; i < 3; i++) {
      clock.advance(10_000);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(w1.stats()).toMatchObject({ pending: 3, written: 0 });
    expect(w1.stats().failures).toBeGreaterThan(1);
    await w1.close();
    expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(3);

    const up = createInfluxHttp(influx.url, influx.database);
    const w2 = createJournalWriter<{ n: number }>({ path, influx: up, clock, logger });
    await w2.start();
    expect(w2.pending().map((r) => r.meta?.n)).toEqual([1, 2, 3]);
    await w2.drained();
    await w2.close();
    const series = await influxQuery(influx.url, influx.database, 'SELECT "n" FROM "probe"');
    expect(series.flatMap((s) => s.values.map((v) => v[1])).sort()).toEqual([1, 2, 3]);
    expect(await readFile(path, 'utf8')).toBe('');
  });
});
