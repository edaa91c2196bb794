import { open, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock, systemClock } from '../../../common/clock.ts';
import { freePort } from '../../../common/influxd.ts';
import { openInfluxDatabase } from '../../../common/influx/database.ts';
import { createJournalWriter, type JournalFile } from '../../../alerts/persistence/journal-writer.ts';
import { influxQuery, testInflux } from '../../support/influx-db.ts';
import { tempDir, until } from '../support/harness.ts';

const logger = pino({ level: 'silent' });
const influx = testInflux('alerts_journal');
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
afterAll(async () => Promise.all(dirs.map((d) => d.remove())));

/** Recent timestamps (ns): the records retention policy keeps two years. */
const T = BigInt(Date.now()) * 1_000_000n;

describe('journal writer', () => {
  it('keeps every record in the journal while InfluxDB is unreachable and delivers them after a restart', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'journal.jsonl');
    const clock = createManualClock();
    const down = openInfluxDatabase({ url: `http://127.0.0.1:${await freePort()}`, database: influx.database });
    const w1 = createJournalWriter<{ n: number }>({ path, influx: down, clock, logger, retryMinMs: 100 });
    await w1.start();
    w1.append([{ lp: `probe,home=h01 n=1i ${T + 1n}`, meta: { n: 1 } }]);
    w1.append([{ lp: `probe,home=h01 n=2i ${T + 2n}`, meta: { n: 2 } }, { lp: `probe,home=h02 n=3i ${T + 3n}`, meta: { n: 3 } }]);
    // Retries follow the injected clock; each fails while InfluxDB is away. Wait for each failure
    // rather than a fixed 50 ms: on a loaded machine a refused connection can take longer.
    for (let i = 0; i < 3; i++) {
      clock.advance(10_000);
      for (let t = 0; t < 200 && w1.stats().failures <= i; t++) await new Promise((r) => setTimeout(r, 25));
    }
    expect(w1.stats()).toMatchObject({ pending: 3, written: 0 });
    expect(w1.stats().failures).toBeGreaterThan(1);
    await w1.close();
    expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(3);

    const up = openInfluxDatabase({ url: influx.url, database: influx.database });
    const w2 = createJournalWriter<{ n: number }>({ path, influx: up, clock, logger });
    await w2.start();
    expect(w2.pending().map((r) => r.meta?.n)).toEqual([1, 2, 3]);
    await w2.drained();
    await w2.close();
    const series = await influxQuery(influx.url, influx.database, 'SELECT "n" FROM "probe"');
    expect(series.flatMap((s) => s.values.map((v) => v[1])).sort()).toEqual([1, 2, 3]);
    expect(await readFile(path, 'utf8')).toBe('');
  });

  it('closes after one write deadline when InfluxDB stalls: the write in flight is not tried again, the records stay in the journal', async () => {
    // A stall a real InfluxDB cannot be made to produce on demand: answers 500 a byte at a time, for ever.
    let requests = 0;
    const stalled = createServer((req, res) => {
      requests++;
      req.resume();
      res.writeHead(500);
      const t = setInterval(() => res.write(' '), 50);
      res.on('close', () => clearInterval(t));
    });
    await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
    const dir = await tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'journal.jsonl');
    const db = openInfluxDatabase({ url: `http://127.0.0.1:${(stalled.address() as AddressInfo).port}`, database: influx.database, writeTimeoutMs: 300 });
    const w = createJournalWriter<{ n: number }>({ path, influx: db, clock: createManualClock(), logger });
    try {
      await w.start();
      w.append([{ lp: `probe,home=h01 n=1i ${T + 10n}`, meta: { n: 1 } }]);
      await until(() => requests === 1 || undefined, 'the write in flight');
      await w.close();
      expect(requests).toBe(1);
      expect(w.stats()).toMatchObject({ pending: 1, written: 0, failures: 1 });
      expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(1);
    } finally {
      db.close();
      stalled.closeAllConnections();
      await new Promise<void>((r) => stalled.close(() => r()));
    }
  });

  it('is not wedged by a point older than the retention policy: InfluxDB drops it, the rest is written', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'journal.jsonl');
    const w = createJournalWriter<{ n: number }>({ path, influx: openInfluxDatabase({ url: influx.url, database: influx.database }), clock: systemClock, logger });
    await w.start();
    // 1970: beyond the records policy's two years (common/influx-schema.ts); InfluxDB answers 400 "partial write".
    w.append([{ lp: 'aged,home=h01 n=1i 1000000000', meta: { n: 1 } }, { lp: `aged,home=h01 n=2i ${T + 10n}`, meta: { n: 2 } }]);
    await w.drained();
    w.append([{ lp: `aged,home=h01 n=3i ${T + 11n}`, meta: { n: 3 } }]);
    await w.drained();
    expect(w.stats()).toMatchObject({ pending: 0 });
    await w.close();
    const series = await influxQuery(influx.url, influx.database, 'SELECT "n" FROM "aged"');
    expect(series.flatMap((s) => s.values.map((v) => v[1])).sort()).toEqual([2, 3]);
  });
});

describe('journal writer cover (a snapshot must hold what leaves the file)', () => {
  it('keeps records InfluxDB has until a durable snapshot holds them, asks for one, then empties the file', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'journal.jsonl');
    let requests = 0;
    const up = openInfluxDatabase({ url: influx.url, database: influx.database });
    const w = createJournalWriter<{ n: number }>({ path, influx: up, clock: systemClock, logger, cover: { request: () => requests++ } });
    await w.start();
    const mark0 = w.coverMark();
    w.append([{ lp: `covered,home=h01 n=1i ${T + 21n}`, meta: { n: 1 } }]);
    const mark1 = w.coverMark();
    expect(mark1).toBe(mark0 + 1);
    await w.drained();
    // InfluxDB has it; no snapshot does: a restart with InfluxDB down would still find it here.
    await until(() => requests > 0, 'a cover requested');
    expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(1);
    // A snapshot cut before the record does not cover it.
    w.covered(mark0);
    await new Promise((r) => setTimeout(r, 50));
    expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(1);
    w.covered(mark1);
    await until(async () => (await readFile(path, 'utf8')) === '', 'the file emptied');
    await w.close();

    // Replayed at a start, records are held by no snapshot of the new process yet.
    const w2path = join(dir.path, 'journal2.jsonl');
    const down = openInfluxDatabase({ url: `http://127.0.0.1:${await freePort()}`, database: influx.database });
    const w2 = createJournalWriter<{ n: number }>({ path: w2path, influx: down, clock: createManualClock(), logger });
    await w2.start();
    w2.append([{ lp: `covered,home=h01 n=2i ${T + 22n}`, meta: { n: 2 } }]);
    await w2.close();
    let requests3 = 0;
    const w3 = createJournalWriter<{ n: number }>({ path: w2path, influx: up, clock: systemClock, logger, cover: { request: () => requests3++ } });
    await w3.start();
    expect(w3.coverMark()).toBe(1);
    await w3.drained();
    await until(() => requests3 > 0, 'a cover requested');
    expect((await readFile(w2path, 'utf8')).trim().split('\n')).toHaveLength(1);
    w3.covered(w3.coverMark());
    await until(async () => (await readFile(w2path, 'utf8')) === '', 'the file emptied');
    await w3.close();
  });
});

describe('journal writer compaction (changes in every snapshot interval)', () => {
  const meta = (text: string): number[] => text.trim().split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { meta: { n: number } }).meta.n);

  it('keeps the file to what no snapshot holds yet, and a restart with InfluxDB down replays exactly that', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'journal.jsonl');
    const up = openInfluxDatabase({ url: influx.url, database: influx.database });
    const w = createJournalWriter<{ n: number }>({ path, influx: up, clock: systemClock, logger, cover: { request: () => undefined }, compactBytes: 2_000 });
    await w.start();
    // Every snapshot is cut just before the next change: the file is never all sent AND all held.
    let mark = w.coverMark();
    for (let n = 1; n <= 120; n++) {
      w.append([{ lp: `churn,home=h01 n=${n}i ${T + 100n + BigInt(n)}`, meta: { n } }]);
      await w.drained();
      w.covered(mark);
      mark = w.coverMark() - 1;
    }
    await w.synced();
    await w.close();
    const text = await readFile(path, 'utf8');
    // 120 lines (~90 B each) without compaction; bounded by compactBytes with it.
    expect(Buffer.byteLength(text)).toBeLessThan(2_000 + 200);
    expect(w.stats().compactions).toBeGreaterThanOrEqual(3);
    const kept = meta(text);
    // What is left is a run of the last records, the two no snapshot holds (119, 120) among them.
    expect(kept.slice(-2)).toEqual([119, 120]);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 120 - kept.length + 1 + i));
    const down = openInfluxDatabase({ url: `http://127.0.0.1:${await freePort()}`, database: influx.database });
    const w2 = createJournalWriter<{ n: number }>({ path, influx: down, clock: createManualClock(), logger });
    await w2.start();
    expect(w2.pending().map((r) => r.meta?.n)).toEqual(kept);
    await w2.close();
  });

  it('writes a record appended during the rewrite to the new file, after what it keeps', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'journal.jsonl');
    // The rewrite's write is held open (a slow disk: the timing a real file will not make on demand).
    let rewriting = false;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const openFile = async (p: string): Promise<JournalFile> => {
      const h = await open(p, 'a');
      const held = p.endsWith('.compact.tmp');
      return {
        appendFile: async (text) => {
          if (held) {
            rewriting = true;
            await gate;
          }
          await h.appendFile(text);
        },
        datasync: () => h.datasync(),
        truncate: (len) => h.truncate(len),
        close: () => h.close(),
      };
    };
    const up = openInfluxDatabase({ url: influx.url, database: influx.database });
    const w = createJournalWriter<{ n: number }>({ path, influx: up, clock: systemClock, logger, openFile, cover: { request: () => undefined }, compactBytes: 200 });
    await w.start();
    for (const n of [1, 2, 3, 4]) w.append([{ lp: `rewritten,home=h01 n=${n}i ${T + 200n + BigInt(n)}`, meta: { n } }]);
    const mark = w.coverMark() - 1; // a snapshot holds 1–3, not 4
    await w.drained();
    w.covered(mark);
    await until(() => rewriting, 'the rewrite started');
    w.append([{ lp: `rewritten,home=h01 n=5i ${T + 205n}`, meta: { n: 5 } }]);
    release();
    await w.synced();
    await w.drained();
    await w.close();
    expect(w.stats().compactions).toBe(1);
    expect(meta(await readFile(path, 'utf8'))).toEqual([4, 5]);
  });
});

describe('journal writer: a record appended while the file is emptied', () => {
  it('is written after the truncate, not taken for one InfluxDB already has', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'journal.jsonl');
    // The truncate is held open (a slow disk: the one timing a real file will not make on demand).
    let truncating = false;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const openFile = async (p: string): Promise<JournalFile> => {
      const h = await open(p, 'a');
      return {
        appendFile: (text) => h.appendFile(text),
        datasync: () => h.datasync(),
        truncate: async (len) => {
          truncating = true;
          await gate;
          await h.truncate(len);
        },
        close: () => h.close(),
      };
    };
    const up = openInfluxDatabase({ url: influx.url, database: influx.database });
    const w = createJournalWriter<{ n: number }>({ path, influx: up, clock: systemClock, logger, openFile, cover: { request: () => undefined } });
    await w.start();
    w.append([{ lp: `raced,home=h01 n=1i ${T + 31n}`, meta: { n: 1 } }]);
    const mark = w.coverMark();
    await w.drained();
    w.covered(mark); // InfluxDB and a snapshot have record 1: the file empties…
    await until(() => truncating, 'the truncate started');
    w.append([{ lp: `raced,home=h01 n=2i ${T + 32n}`, meta: { n: 2 } }]); // … while record 2 arrives
    release();
    await w.synced();
    await w.drained();
    await w.close();
    const lines = (await readFile(path, 'utf8')).trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { meta: { n: number } }).meta.n)).toEqual([2]);
  });
});

describe('journal writer faults and bounds', () => {
  /** A real journal file whose datasync fails `failures` times with EIO (a disk fault on demand). */
  function failingFile(failures: number): { openFile: (p: string) => Promise<JournalFile>; calls: () => number } {
    let left = failures;
    let calls = 0;
    return {
      calls: () => calls,
      openFile: async (p) => {
        const h = await open(p, 'a');
        return {
          appendFile: (t) => h.appendFile(t),
          datasync: async () => {
            calls++;
            if (left-- > 0) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
            await h.datasync();
          },
          truncate: (n) => h.truncate(n),
          close: () => h.close(),
        };
      },
    };
  }

  it('reports a failing journal file (stats, problems) and retries until the records are on disk', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'journal.jsonl');
    const clock = createManualClock();
    const down = openInfluxDatabase({ url: `http://127.0.0.1:${await freePort()}`, database: influx.database });
    const file = failingFile(2);
    const w = createJournalWriter<{ n: number }>({ path, influx: down, clock, logger, retryMinMs: 100, openFile: file.openFile });
    await w.start();
    w.append([{ lp: `probe,home=h01 n=1i ${T + 1n}`, meta: { n: 1 } }]);
    await until(() => w.stats().ioFailures === 1, 'first I/O failure');
    expect(w.stats()).toMatchObject({ lastIoError: 'EIO', problems: ['ALERTS_JOURNAL_IO'] });
    clock.advance(100); // retry 1 fails too
    await until(() => w.stats().ioFailures === 2, 'second I/O failure');
    clock.advance(200); // retry 2 succeeds
    await until(() => w.stats().problems.length === 0, 'recovered');
    expect((await readFile(path, 'utf8')).split('\n').filter((l) => l.includes('"n":1')).length).toBeGreaterThan(0);
    await w.close();
  });

  it('at its bound drops other records first and keeps every alert record, saying so', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const clock = createManualClock();
    const down = openInfluxDatabase({ url: `http://127.0.0.1:${await freePort()}`, database: influx.database });
    const w = createJournalWriter<{ kind: string }>({
      path: join(dir.path, 'journal.jsonl'),
      influx: down,
      clock,
      logger,
      maxPending: 3,
      essential: (r) => r.meta?.kind === 'alert',
    });
    await w.start();
    w.append([{ lp: 'x a=1i 1', meta: { kind: 'care' } }, { lp: 'x a=2i 2', meta: { kind: 'care' } }]);
    await until(() => w.stats().failures >= 1, 'InfluxDB write failed'); // nothing in flight now: the retry waits on the clock
    w.append([{ lp: 'x a=3i 3', meta: { kind: 'alert' } }, { lp: 'x a=4i 4', meta: { kind: 'alert' } }, { lp: 'x a=5i 5', meta: { kind: 'alert' } }]);
    w.append([{ lp: 'x a=6i 6', meta: { kind: 'alert' } }]);
    const kinds = w.pending().map((r) => r.meta?.kind);
    expect(kinds.filter((k) => k === 'alert')).toHaveLength(4);
    expect(kinds).not.toContain('care');
    expect(w.stats().dropped).toBe(2);
    expect(w.stats().problems).toContain('ALERTS_JOURNAL_FULL');
    await w.close();
  });
});
