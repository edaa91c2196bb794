import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StoreJournal, type JournalRecord } from '../../broker/store-journal.ts';
import { captureLogger } from '../ingest/support/wait.ts';
import { fillDisk, tinyDiskForFile } from '../support/tiny-disk.ts';

/**
 * A compaction that fails (the disk has room for appends but not for a new generation's snapshot)
 * backs off (review of session 25). Before, the journal stayed past its size threshold and every
 * later commit encoded the whole state synchronously, wrote it, failed and deleted it: 200 commits
 * made 200 snapshots (3.4 s of the broker's event loop on this 16 MiB tmpfs), each logged. Counted
 * here in snapshot attempts, not time. A real tmpfs (root and a mount needed; skipped elsewhere).
 */
const disk = tinyDiskForFile('16M');

describe('store compaction on a nearly full disk', () => {
  it('tries again only once the journal has grown by a quarter, logs the episode once, and compacts once there is room', async (ctx) => {
    const d = disk();
    if (d === undefined) return ctx.skip();
    const dir = join(d.path, 'store');
    mkdirSync(dir);
    const { logger, lines } = captureLogger('info');
    // compactRetryMs 0: only the growth gates the next try, so nothing here depends on the clock.
    const journal = new StoreJournal({ dir, logger, compactBytes: 256 * 1024, compactRetryMs: 0 });
    await journal.recover();
    const state: JournalRecord[] = [];
    let snapshots = 0;
    await journal.start(() => {
      snapshots++;
      return [...state];
    });
    try {
      // The state a snapshot holds: 4 MB (a queue for an away session). Kept apart from what is
      // appended below, so when the journal crosses its threshold is the test's, not compaction history's.
      const payload = Buffer.alloc(1000, 0x61);
      for (let n = 0; n < 4000; n++) state.push({ h: { op: 'enq', c: ['svc-ingest'], n }, p: payload });
      // Room for appends (~3 MiB), not for a 4 MB snapshot.
      const filler = fillDisk(d.path, 3 * 1024 * 1024);
      const grow = async (n: number): Promise<void> => journal.append({ h: { op: 'ret', t: `t/${n}` }, p: payload }, true);
      let n = 0;
      snapshots = 0;
      while (snapshots === 0 && n < 1000) await grow(n++); // past compactBytes (256 KiB): the first try
      // A commit resolves before the compaction after it; the next commit starts once it is over.
      const settled = (): Promise<void> => journal.append({ h: { op: 'clr', c: 'svc-ingest', b: 'y', n } }, true);
      await settled();
      expect(snapshots).toBe(1);
      expect(journal.stats().compactionFailures).toBe(1);
      for (let i = 0; i < 200; i++) await journal.append({ h: { op: 'clr', c: 'svc-ingest', b: 'x', n: i } }, true);
      expect(snapshots, 'snapshots encoded for 200 more commits past the threshold').toBe(1);
      expect(journal.stats().compactionFailures).toBe(1);
      expect(lines.filter((l) => l.code === 'BROKER_STORE_COMPACTION' && l.level === 50)).toHaveLength(1);

      // The operator frees space; the journal grows by another quarter: the next try succeeds.
      rmSync(filler);
      const { generation, compactions, bytes } = journal.stats();
      while (snapshots === 1 && journal.stats().bytes < bytes * 1.25 + 10_000) await grow(n++);
      await settled();
      expect(snapshots).toBe(2);
      expect(journal.stats().compactions).toBe(compactions + 1);
      expect(journal.stats().generation).toBe(generation + 1);
      expect(journal.stats().compactionFailures).toBe(1);
      expect(lines.filter((l) => l.code === 'BROKER_STORE_COMPACTION' && l.level === 30)).toMatchObject([{ failures: 1 }]);
    } finally {
      await journal.close();
    }
  }, 120_000);
});
