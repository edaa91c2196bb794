import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock, ClockTimer } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import type { InfluxHttp } from './influx-http.ts';

/**
 * A writer that never drops: every record is appended (and fdatasync'ed) to a local journal file
 * before it is sent, and stays there until InfluxDB has acknowledged it (HTTP 204). If InfluxDB is
 * down the writer retries with capped exponential backoff; after a crash the journal is replayed.
 * Writes are idempotent (same series + timestamp), so a record sent twice overwrites itself.
 */
export interface JournalRecord<M = unknown> {
  /** One line-protocol point. */
  readonly lp: string;
  /** What the record means, for readers of the journal (restore reads alert changes from it). */
  readonly meta?: M;
}

export interface JournalWriter<M> {
  start(): Promise<void>;
  append(records: readonly JournalRecord<M>[]): void;
  /** Records not yet acknowledged by InfluxDB (including those replayed from the journal). */
  pending(): readonly JournalRecord<M>[];
  /** Resolves when everything appended so far is in InfluxDB. */
  drained(): Promise<void>;
  stats(): { pending: number; written: number; failures: number };
  close(): Promise<void>;
}

export interface JournalWriterDeps {
  readonly path: string;
  readonly influx: InfluxHttp;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly batchMax?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

export function createJournalWriter<M>(deps: JournalWriterDeps): JournalWriter<M> {
  const batchMax = deps.batchMax ?? 2000;
  const retryMin = deps.retryMinMs ?? 250;
  const retryMax = deps.retryMaxMs ?? 10_000;
  const queue: JournalRecord<M>[] = [];
  let fh: FileHandle | undefined;
  /** Journal file operations run one after another in this chain. */
  let fileChain: Promise<void> = Promise.resolve();
  let flushing: Promise<void> | undefined;
  let retryTimer: ClockTimer | undefined;
  let backoff = retryMin;
  let written = 0;
  let failures = 0;
  let closed = false;
  let waiters: Array<() => void> = [];

  function onFile(op: (h: FileHandle) => Promise<void>): void {
    fileChain = fileChain
      .then(async () => {
        if (fh) await op(fh);
      })
      .catch((err: unknown) => deps.logger.error({ err, code: 'ALERTS_JOURNAL_IO', path: deps.path }, 'journal file operation failed'));
  }

  function settleWaiters(): void {
    if (queue.length > 0) return;
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  }

  function kick(): void {
    if (closed || flushing || retryTimer) return;
    flushing = flush().finally(() => {
      flushing = undefined;
    });
  }

  async function flush(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.slice(0, batchMax);
      try {
        await fileChain; // the batch is on disk before it is sent
        await deps.influx.write(batch.map((r) => r.lp));
      } catch (err) {
        failures++;
        deps.logger.warn({ err, code: 'ALERTS_INFLUX_WRITE', pending: queue.length, retryInMs: backoff }, 'InfluxDB write failed; kept in the journal, will retry');
        if (!closed) {
          retryTimer = deps.clock.setTimeout(() => {
            retryTimer = undefined;
            kick();
          }, backoff);
          backoff = Math.min(retryMax, backoff * 2);
        }
        return;
      }
      backoff = retryMin;
      queue.splice(0, batch.length);
      written += batch.length;
      if (queue.length === 0) {
        // Everything acknowledged: the journal can be emptied (appends queued later land after this).
        onFile(async (h) => {
          if (queue.length === 0) await h.truncate(0);
        });
      }
    }
    settleWaiters();
  }

  return {
    async start() {
      await mkdir(dirname(deps.path), { recursive: true });
      let text = '';
      try {
        text = await readFile(deps.path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      let bad = 0;
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        try {
          queue.push(JSON.parse(line) as JournalRecord<M>);
        } catch {
          bad++; // a torn last line after a crash mid-append
        }
      }
      if (bad > 0) deps.logger.warn({ bad, code: 'ALERTS_JOURNAL_TORN' }, 'skipped unreadable journal lines');
      if (queue.length > 0) deps.logger.info({ pending: queue.length }, 'replaying the alert journal into InfluxDB');
      fh = await open(deps.path, 'a');
      kick();
    },
    append(records) {
      if (records.length === 0) return;
      queue.push(...records);
      const text = records.map((r) => `${JSON.stringify(r)}\n`).join('');
      onFile(async (h) => {
        await h.appendFile(text);
        await h.datasync();
      });
      kick();
    },
    pending: () => queue,
    drained() {
      if (queue.length === 0) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
    stats: () => ({ pending: queue.length, written, failures }),
    async close() {
      closed = true;
      if (retryTimer) deps.clock.clearTimeout(retryTimer);
      retryTimer = undefined;
      await flushing;
      // One last attempt, so a clean shutdown leaves an empty journal when InfluxDB is up.
      if (queue.length > 0) await flush();
      await fileChain;
      await fh?.close();
      fh = undefined;
    },
  };
}
