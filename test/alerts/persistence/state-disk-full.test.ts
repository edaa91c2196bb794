import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { freePort } from '../../../common/influxd.ts';
import { openInfluxDatabase } from '../../../common/influx/database.ts';
import { createJournalWriter } from '../../../alerts/persistence/journal-writer.ts';
import { writeTextAtomic } from '../../../alerts/state-file.ts';
import { testInflux } from '../../support/influx-db.ts';
import { fillDisk, tinyDiskForFile } from '../../support/tiny-disk.ts';
import { tempDir, until } from '../support/harness.ts';

/**
 * The alerts process's state files on a disk that fills up: a real tmpfs (root only; the tests that
 * need it skip elsewhere). Found by a helper's hunt in session 21: a full disk takes what fits of an
 * append and then says ENOSPC; the journal wrote the whole text again after that part, so the retried
 * first line ran into it and both read as one unreadable line (its record's only copy); a snapshot
 * that failed left its temporary file, holding the very space the journal's retry needed.
 */
const logger = pino({ level: 'silent' });
const disk = tinyDiskForFile('256k');
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
afterAll(async () => Promise.all(dirs.map((d) => d.remove())));
const T = BigInt(Date.now()) * 1_000_000n;

/** Every line of the journal file, parsed; a line that is not JSON fails the test. */
async function journalRecords(path: string): Promise<Array<{ meta?: { n: number } }>> {
  return (await readFile(path, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { meta?: { n: number } });
}

describe('journal on a disk that fills up', () => {
  it('an append the full disk took only part of is written again whole, after cutting that part off', async (ctx) => {
    const d = disk();
    if (d === undefined) return ctx.skip();
    const path = join(d.path, 'journal.jsonl');
    const clock = createManualClock();
    const down = openInfluxDatabase({ url: `http://127.0.0.1:${await freePort()}`, database: testInflux('torn').database });
    const w = createJournalWriter<{ n: number }>({ path, influx: down, clock, logger, retryMinMs: 100 });
    await w.start();
    w.append([{ lp: `probe,home=h01 n=1i ${T + 1n}`, meta: { n: 1 } }]);
    await w.synced();
    const filler = fillDisk(d.path, 4096);
    // Larger than the page left: the disk takes part of it, then ENOSPC.
    w.append([{ lp: `probe,home=h01 n=2i,pad="${'p'.repeat(9000)}" ${T + 2n}`, meta: { n: 2 } }]);
    await until(() => w.stats().problems.includes('ALERTS_JOURNAL_IO') || undefined, 'the append failed');
    expect((await readFile(path)).length).toBeGreaterThan(Buffer.byteLength(`${JSON.stringify({ lp: `probe,home=h01 n=1i ${T + 1n}`, meta: { n: 1 } })}\n`));
    await rm(filler);
    clock.advance(100);
    await until(() => !w.stats().problems.includes('ALERTS_JOURNAL_IO') || undefined, 'the retry written');
    await w.close();
    down.close();
    expect((await journalRecords(path)).map((r) => r.meta?.n)).toEqual([1, 2]);
  });
});

describe('journal start', () => {
  it('cuts an unfinished last line off (a crash mid-append), so the first line appended after it is whole', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'journal.jsonl');
    const whole = `${JSON.stringify({ lp: `probe,home=h01 n=1i ${T + 1n}`, meta: { n: 1 } })}\n`;
    await writeFile(path, `${whole}{"lp":"probe,home=h01 n=2i`);
    const down = openInfluxDatabase({ url: `http://127.0.0.1:${await freePort()}`, database: testInflux('torn').database });
    const w = createJournalWriter<{ n: number }>({ path, influx: down, clock: createManualClock(), logger });
    await w.start();
    w.append([{ lp: `probe,home=h01 n=3i ${T + 3n}`, meta: { n: 3 } }]);
    await w.synced();
    await w.close();
    down.close();
    expect((await journalRecords(path)).map((r) => r.meta?.n)).toEqual([1, 3]);
  });
});

describe('snapshot files on a full disk', () => {
  it('a failed write leaves no temporary file behind, and removes one a killed process left', async (ctx) => {
    const d = disk();
    if (d === undefined) return ctx.skip();
    const path = join(d.path, 'rule-states.json');
    // A process of this host killed mid-write left its part (pid 2^22 + 1: above Linux's PID_MAX_LIMIT,
    // so never alive); another host's (a container sharing the volume) cannot be judged and stays.
    await writeFile(`${path}.${hostname()}.4194305.0badf00d.tmp`, 'x'.repeat(8192));
    await writeFile(`${path}.other-host.4194305.0badf00d.tmp`, 'x');
    const filler = fillDisk(d.path, 4096);
    await expect(writeTextAtomic(path, 'y'.repeat(64 * 1024))).rejects.toMatchObject({ code: 'ENOSPC' });
    expect((await readdir(d.path)).filter((f) => f.endsWith('.tmp'))).toEqual([`rule-states.json.other-host.4194305.0badf00d.tmp`]);
    await rm(filler);
  });
});

describe('state files written twice at once', () => {
  it('two overlapping writes of one file both succeed and leave one whole text (two instances on one volume while a home moves)', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'h01.json');
    async function* slowly(c: string): AsyncIterable<string> {
      for (let i = 0; i < 20; i++) {
        yield c.repeat(1000);
        await new Promise((r) => setImmediate(r));
      }
    }
    // A shared temporary name let the second open empty the first's file mid-write, and the first
    // rename take the second's away (ENOENT): seen as ALERTS_SNAPSHOT_FAILED in the coverage test.
    await Promise.all([writeTextAtomic(path, slowly('a')), writeTextAtomic(path, slowly('b'))]);
    const text = await readFile(path, 'utf8');
    expect([('a'.repeat(1000)).repeat(20), ('b'.repeat(1000)).repeat(20)]).toContain(text);
    expect((await readdir(dir.path)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
