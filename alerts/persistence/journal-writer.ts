import { mkdir, open, readFile, rename, rm, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock, ClockTimer } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import type { InfluxDatabase } from '../../common/influx/database.ts';
import { InfluxError } from '../../common/influx/errors.ts';
import { createDeadLetterFile, rejectionReason, writeIsolatingRejects, type DeadLetter } from '../../common/influx/dead-letter.ts';
import { createRejectionLog } from '../../common/rejection-log.ts';
import { syncDirectoryOf } from '../state-file.ts';

/**
 * A writer that never drops: every record is appended (and fdatasync'ed) to a local journal file
 * before it is sent, and stays there until InfluxDB has acknowledged it (HTTP 204). If InfluxDB is
 * down the writer retries with capped exponential backoff; after a crash the journal is replayed.
 * Writes are idempotent (same series + timestamp), so a record sent twice overwrites itself.
 *
 * A failing journal file (disk full, EIO) is not swallowed: it is counted, logged with its code,
 * reported in stats().problems (→ /health `degraded`) and retried with backoff; the unwritten lines
 * stay in memory meanwhile (a retried append may duplicate a line; replay is idempotent). Memory and
 * file are bounded (maxPending records, maxFileBytes): at the bound, non-essential records (care
 * actions) are dropped or kept out of the file first and counted; essential ones (alert changes and
 * their audit) are never dropped — the bound is exceeded instead and reported as a problem.
 *
 * A point InfluxDB refuses for good (400: field type conflict, unparsable; 413 alone) is not retried:
 * the batch is halved until the refused points are found (common/influx/dead-letter.ts), the others
 * are written, and the refused ones are appended (fsynced) to the dead-letter file next to the
 * journal before they leave it; counted by reason (stats().rejected) and logged rate-limited
 * (ALERTS_POINT_REJECTED). Retryable failures (down, 5xx, timeout) are retried as before.
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
  /**
   * With `cover` (JournalWriterDeps): how many essential records have been appended so far (those
   * replayed at start included). Taken when a snapshot's state is cut; given to `covered` once that
   * snapshot is durable.
   */
  coverMark(): number;
  /** A durable snapshot holds the state of every essential record up to `mark`: what InfluxDB also has may leave the file. */
  covered(mark: number): void;
  /**
   * Undefined when every journaled record appended so far is on disk (fsynced); otherwise a
   * promise that resolves once it is. Cheap on the hot path: no promise when nothing is pending.
   */
  synced(): Promise<void> | undefined;
  stats(): JournalStats;
  close(): Promise<void>;
}

export interface JournalStats {
  pending: number;
  written: number;
  /** Failed InfluxDB writes. */
  failures: number;
  /** Failed journal file appends/syncs. */
  ioFailures: number;
  lastIoError?: string;
  /** Non-essential records dropped from memory at the maxPending bound. */
  dropped: number;
  /** Non-essential records kept out of the file at the maxFileBytes bound (still sent). */
  notJournaled: number;
  /** Points InfluxDB refused for good, by reason (type_conflict, unparsable, too_large, rejected), since start. */
  rejected: Record<string, number>;
  /** Refused points kept in the dead-letter file, since start. */
  deadLettered: number;
  /** Refused points the full dead-letter file could not take (logged with their line protocol), since start. */
  deadLetterLost: number;
  /** Times the file was rewritten to the records it still needs (compactBytes), since start. */
  compactions: number;
  /** Stable codes of what is wrong now; empty when healthy. */
  problems: string[];
}

/** Where a journal's refused points go: next to it, `alert-journal.jsonl` → `alert-journal.dead-letter.jsonl`. */
export function deadLetterPathFor(journalPath: string): string {
  return journalPath.endsWith('.jsonl') ? `${journalPath.slice(0, -'.jsonl'.length)}.dead-letter.jsonl` : `${journalPath}.dead-letter.jsonl`;
}

/** The file operations the writer needs; a test injects a failing one (a disk fault a real disk cannot make on demand). */
export interface JournalFile {
  appendFile(text: string): Promise<void>;
  datasync(): Promise<void>;
  truncate(len: number): Promise<void>;
  close(): Promise<void>;
}

export interface JournalWriterDeps<M = unknown> {
  readonly path: string;
  /** common/influx/database.ts: written through its writer; created (if missing) on a 404. */
  readonly influx: InfluxDatabase;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly batchMax?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** In-memory bound, records (default 200,000). */
  readonly maxPending?: number;
  /** Journal file bound, bytes (default 256 MiB). */
  readonly maxFileBytes?: number;
  /** Records that must never be dropped (default: all). */
  readonly essential?: (r: JournalRecord<M>) => boolean;
  readonly openFile?: (path: string) => Promise<JournalFile>;
  /** Dead-letter file for refused points (default: deadLetterPathFor(path)). */
  readonly deadLetterPath?: string;
  /** Its bound, bytes (default 64 MiB). */
  readonly deadLetterMaxBytes?: number;
  /**
   * Empty the file only of what a durable snapshot also holds (`covered`), not as soon as InfluxDB has
   * everything. A restart while InfluxDB is down reads the open alerts from this file and the
   * snapshot alone: an alarm written to InfluxDB and emptied from the file before any snapshot held
   * it was gone from the page until InfluxDB came back (found by the fault suite, session 15).
   * `request()` is called when only the cover keeps the file from being emptied.
   */
  readonly cover?: { request(): void };
  /**
   * With `cover`: once the file is this large (bytes; default 1 MiB) and at least half of it is
   * records both InfluxDB and a snapshot have, it is rewritten to the rest. Under alert changes in
   * every snapshot interval the file is never empty and sent at once, so emptying alone let it grow
   * without end (to maxFileBytes), and every start replayed all of it.
   */
  readonly compactBytes?: number;
}

export function createJournalWriter<M>(deps: JournalWriterDeps<M>): JournalWriter<M> {
  const batchMax = deps.batchMax ?? 2000;
  const retryMin = deps.retryMinMs ?? 250;
  const retryMax = deps.retryMaxMs ?? 10_000;
  const maxPending = deps.maxPending ?? 200_000;
  const maxFileBytes = deps.maxFileBytes ?? 256 * 1024 * 1024;
  const essential = deps.essential ?? ((): boolean => true);
  const compactBytes = deps.compactBytes ?? 1024 * 1024;
  const openFile = deps.openFile ?? ((path: string): Promise<JournalFile> => open(path, 'a'));
  const queue: JournalRecord<M>[] = [];
  let fh: JournalFile | undefined;
  /** Lines not yet durably in the file (kept for retry after an I/O error). */
  let unwritten: string[] = [];
  let fileBytes = 0;
  let fileRetryTimer: ClockTimer | undefined;
  let fileBackoff = retryMin;
  let ioFailures = 0;
  let ioFailing = false;
  let lastIoError: string | undefined;
  let dropped = 0;
  let notJournaled = 0;
  let overBoundLogged = false;
  /** Records at the head of the queue being sent now (not to be dropped under them). */
  let inFlight = 0;
  /** Journal file operations run one after another in this chain. */
  let fileChain: Promise<void> = Promise.resolve();
  let flushing: Promise<void> | undefined;
  let retryTimer: ClockTimer | undefined;
  let backoff = retryMin;
  let written = 0;
  let failures = 0;
  let closed = false;
  let waiters: Array<() => void> = [];
  const deadLetterPath = deps.deadLetterPath ?? deadLetterPathFor(deps.path);
  const deadLetters = createDeadLetterFile({ path: deadLetterPath, logger: deps.logger, fullCode: 'ALERTS_DEAD_LETTER_FULL', ...(deps.deadLetterMaxBytes !== undefined ? { maxBytes: deps.deadLetterMaxBytes } : {}) });
  const rejectionLog = createRejectionLog<'ALERTS_POINT_REJECTED'>(deps.logger, () => deps.clock.now(), 10, 60_000, `InfluxDB refused a point for good; set aside in ${deadLetterPath}`, deps.clock);
  const rejected: Record<string, number> = {};
  let deadLettered = 0;
  let deadLetterLost = 0;
  /** Essential records appended (replayed ones included) and the most of them a durable snapshot holds (deps.cover). */
  let essentialAppended = 0;
  let essentialCovered = 0;
  const uncovered = (): boolean => deps.cover !== undefined && essentialCovered < essentialAppended;
  /** Essential records InfluxDB has (in append order: the queue is sent from its head). */
  let essentialSent = 0;
  /** Their lines while no durable snapshot holds them (number > essentialCovered): what a compacted file keeps. */
  let uncoveredSent: Array<{ readonly n: number; readonly line: string; readonly bytes: number }> = [];
  let uncoveredSentBytes = 0;
  /**
   * Set when uncoveredSent passed its bound (snapshots failing for long: a full disk): the list is
   * dropped and the file not compacted until a snapshot holds everything sent; the file keeps it all.
   */
  let uncoveredOverflow = false;
  const maxUncoveredBytes = Math.max(compactBytes, 16 * 1024 * 1024);
  let compactions = 0;
  /** A compaction renamed the file but its directory is not synced yet: appends wait for that sync. */
  let dirUnsynced = false;
  /** An append or its sync failed: the file may hold part of its text past `fileBytes`. */
  let mayBeTorn = false;

  /** Everything is in InfluxDB: empties the file, unless a snapshot must hold it first (deps.cover). */
  function emptyFileIfSent(): void {
    if (queue.length !== 0) return;
    if (uncovered()) {
      deps.cover?.request();
      if (!uncoveredOverflow && fileBytes >= compactBytes && uncoveredSentBytes * 2 <= fileBytes) compact();
      return;
    }
    // Appends queued later land after this.
    onFile(async (h) => {
      if (queue.length !== 0 || uncovered()) return;
      // Lines still unwritten now belong to records InfluxDB already has; lines appended while the
      // truncate runs are new records' and must stay for their write (clearing them all here
      // reported a record appended meanwhile as on disk: its PUBACK went, the line never did).
      const sent = unwritten.length;
      await h.truncate(0);
      unwritten.splice(0, sent);
      fileBytes = 0;
      mayBeTorn = false;
      ioFailing = false;
    });
  }

  /**
   * Everything is in InfluxDB and a snapshot holds all but the last records: the file is replaced by
   * one holding only those (written and synced beside it, then renamed over it, so a crash leaves
   * the old file or the new one, never less). Appends wait in the file chain meanwhile and go to
   * the new file.
   */
  function compact(): void {
    onFile(async (h) => {
      if (queue.length !== 0 || !uncovered() || uncoveredOverflow || fileBytes < compactBytes || uncoveredSentBytes * 2 > fileBytes) return;
      // As in the truncate: lines still unwritten now are of records InfluxDB has; those a snapshot
      // does not hold yet are in uncoveredSent, written below.
      const sent = unwritten.length;
      const live = uncoveredSent.map((e) => e.line).join('');
      const tmp = `${deps.path}.compact.tmp`;
      await rm(tmp, { force: true }); // left by a crash mid-compaction: never appended to
      const next = await openFile(tmp);
      try {
        await next.appendFile(live);
        await next.datasync();
        await rename(tmp, deps.path);
      } catch (err) {
        await next.close().catch(() => undefined);
        throw err;
      }
      fh = next;
      dirUnsynced = true;
      unwritten.splice(0, sent);
      fileBytes = Buffer.byteLength(live);
      mayBeTorn = false;
      compactions++;
      await h.close().catch(() => undefined);
      await syncDir();
      ioFailing = false;
    });
  }

  /** The rename is durable once the directory is; until then no append counts as on disk. */
  async function syncDir(): Promise<void> {
    await syncDirectoryOf(deps.path);
    dirUnsynced = false;
  }

  function onFile(op: (h: JournalFile) => Promise<void>): void {
    fileChain = fileChain
      .then(async () => {
        if (fh) await op(fh);
      })
      .catch((err: unknown) => ioFailed(err));
  }

  function ioFailed(err: unknown): void {
    ioFailures++;
    ioFailing = true;
    lastIoError = (err as NodeJS.ErrnoException | undefined)?.code ?? 'UNKNOWN';
    deps.logger.error({ err, code: 'ALERTS_JOURNAL_IO', errno: lastIoError, path: deps.path, unwritten: unwritten.length, retryInMs: fileBackoff }, 'journal file write failed; will retry');
    if (closed || fileRetryTimer) return;
    fileRetryTimer = deps.clock.setTimeout(() => {
      fileRetryTimer = undefined;
      writeUnwritten();
      // A failed compaction (or emptying) is tried again when its conditions still hold.
      emptyFileIfSent();
    }, fileBackoff);
    fileBackoff = Math.min(retryMax, fileBackoff * 2);
  }

  /** Appends and syncs every unwritten line; on failure they stay for the retry. */
  function writeUnwritten(): void {
    onFile(async (h) => {
      if (dirUnsynced) await syncDir();
      if (unwritten.length === 0) return;
      const lines = unwritten.slice();
      const text = lines.join('');
      // A failed append may have written part of its text (a full disk takes what fits, then says
      // ENOSPC): cut the file back to what is known whole before writing the lines again, or the
      // retried first line runs into that part and both read as one unreadable line (session 21).
      if (mayBeTorn) await h.truncate(fileBytes);
      mayBeTorn = true;
      await h.appendFile(text);
      await h.datasync();
      mayBeTorn = false;
      unwritten.splice(0, lines.length);
      fileBytes += Buffer.byteLength(text);
      ioFailing = false;
      fileBackoff = retryMin;
    });
  }

  /** Memory bound: drop the oldest non-essential records not being sent; never essential ones. */
  function enforceBound(): void {
    if (queue.length <= maxPending) return;
    for (let i = queue.length - 1; i >= inFlight && queue.length > maxPending; i--) {
      const r = queue[i];
      if (r !== undefined && !essential(r)) {
        queue.splice(i, 1);
        dropped++;
      }
    }
    if (queue.length > maxPending && !overBoundLogged) {
      overBoundLogged = true;
      deps.logger.error({ code: 'ALERTS_JOURNAL_FULL', pending: queue.length, maxPending }, 'journal over its bound with alert records only; keeping them all');
    } else if (queue.length <= maxPending) overBoundLogged = false;
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
      // A record appended after the flush loop ended but before this ran found `flushing` set and
      // did not kick: without this it waited for the next append (found by the retention test).
      if (queue.length > 0) kick();
    });
  }

  /** One part of a batch to the database's default policy (records); resolves once InfluxDB has it. */
  async function writePart(lines: readonly string[]): Promise<void> {
    try {
      try {
        await deps.influx.writer.write(lines);
      } catch (err) {
        if (!(err instanceof InfluxError && err.code === 'INFLUX_DATABASE_NOT_FOUND')) throw err;
        // Dropped under us, or never created because InfluxDB was down at start: create, resend.
        await deps.influx.ensureDatabase();
        await deps.influx.writer.write(lines);
      }
    } catch (err) {
      // InfluxDB 1.x wrote every other point and refused only those older than the retention policy
      // (common/influx-schema.ts): they can never be stored, so retrying would wedge the journal behind them.
      if (err instanceof InfluxError && err.code === 'INFLUX_BEYOND_RETENTION') return;
      throw err;
    }
  }

  /**
   * One batch; resolves once InfluxDB has every point it will ever take and the refused ones are in
   * the dead-letter file. Throws (→ retry with backoff) on a retryable error or a dead-letter I/O error.
   */
  async function send(lines: string[]): Promise<number> {
    const refused = await writeIsolatingRejects(deps.influx.writer, lines, undefined, writePart);
    if (refused.length === 0) return 0;
    const t = deps.clock.now();
    const entries: DeadLetter[] = refused.map(({ lp, err }) => ({ t, lp, code: err.code, reason: rejectionReason(err), error: err.message }));
    const lost = await deadLetters.append(entries);
    deadLetterLost += lost;
    deadLettered += entries.length - lost;
    for (const e of entries) {
      rejected[e.reason] = (rejected[e.reason] ?? 0) + 1;
      rejectionLog.record('ALERTS_POINT_REJECTED', e.lp.slice(0, 200), `${e.reason}: ${e.error}`);
    }
    return refused.length;
  }

  async function flush(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.slice(0, batchMax);
      inFlight = batch.length;
      let refusedInBatch = 0;
      try {
        await fileChain; // the batch is on disk before it is sent
        refusedInBatch = await send(batch.map((r) => r.lp));
      } catch (err) {
        failures++;
        inFlight = 0;
        deps.logger.warn({ err, code: 'ALERTS_INFLUX_WRITE', influxCode: err instanceof InfluxError ? err.code : undefined, pending: queue.length, retryInMs: backoff }, 'InfluxDB write failed; kept in the journal, will retry');
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
      for (const r of batch) {
        if (!essential(r)) continue;
        essentialSent++;
        if (deps.cover !== undefined && essentialSent > essentialCovered && !uncoveredOverflow) {
          const line = `${JSON.stringify(r)}\n`;
          const bytes = Buffer.byteLength(line);
          uncoveredSent.push({ n: essentialSent, line, bytes });
          uncoveredSentBytes += bytes;
          if (uncoveredSentBytes > maxUncoveredBytes) {
            uncoveredOverflow = true;
            uncoveredSent = [];
            uncoveredSentBytes = 0;
          }
        }
      }
      inFlight = 0;
      written += batch.length - refusedInBatch;
      // Everything acknowledged: the journal can be emptied.
      emptyFileIfSent();
    }
    settleWaiters();
  }

  return {
    async start() {
      await mkdir(dirname(deps.path), { recursive: true });
      let bytes = Buffer.alloc(0);
      try {
        bytes = await readFile(deps.path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      // A line is a record once its newline is on disk (its PUBACK waits for the datasync after it):
      // what follows the last newline is an append a crash cut short. Cut it off, or the first line
      // appended now would run into it and be lost with it on the next replay.
      const whole = bytes.lastIndexOf(0x0a) + 1;
      if (whole < bytes.length) {
        await truncate(deps.path, whole);
        deps.logger.warn({ code: 'ALERTS_JOURNAL_TORN', bytes: bytes.length - whole }, 'cut an unfinished last line off the journal (a crash mid-append)');
      }
      fileBytes = whole;
      let bad = 0;
      for (const line of bytes.subarray(0, whole).toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        try {
          queue.push(JSON.parse(line) as JournalRecord<M>);
        } catch {
          bad++; // a line torn by a version before the truncate-before-retry above
        }
      }
      if (bad > 0) deps.logger.warn({ bad, code: 'ALERTS_JOURNAL_TORN' }, 'skipped unreadable journal lines');
      // Replayed records are held by no snapshot of this process yet.
      essentialAppended = queue.filter(essential).length;
      if (queue.length > 0) deps.logger.info({ pending: queue.length }, 'replaying the alert journal into InfluxDB');
      fh = await openFile(deps.path);
      await deadLetters.start();
      kick();
    },
    append(records) {
      if (records.length === 0) return;
      queue.push(...records);
      for (const r of records) if (essential(r)) essentialAppended++;
      enforceBound();
      for (const r of records) {
        const line = `${JSON.stringify(r)}\n`;
        // File bound: non-essential records go to InfluxDB without the journal's protection.
        if (fileBytes + Buffer.byteLength(line) > maxFileBytes && !essential(r)) {
          notJournaled++;
          continue;
        }
        unwritten.push(line);
      }
      if (!fileRetryTimer) writeUnwritten();
      kick();
    },
    pending: () => queue,
    synced() {
      if (unwritten.length === 0) return undefined;
      return (async () => {
        // The lines leave `unwritten` only after their datasync; a failed sync keeps them for the
        // retry timer, so wait (polling the chain) rather than report them durable.
        while (unwritten.length > 0 && !closed) {
          await fileChain;
          if (unwritten.length > 0) await new Promise((r) => setTimeout(r, 20));
        }
      })();
    },
    coverMark: () => essentialAppended,
    covered(mark) {
      if (mark <= essentialCovered) return;
      essentialCovered = Math.min(mark, essentialAppended);
      const firstUncovered = uncoveredSent.findIndex((e) => e.n > essentialCovered);
      const held = firstUncovered === -1 ? uncoveredSent.length : firstUncovered;
      for (const e of uncoveredSent.slice(0, held)) uncoveredSentBytes -= e.bytes;
      if (held > 0) uncoveredSent = uncoveredSent.slice(held);
      if (uncoveredOverflow && essentialCovered >= essentialSent) uncoveredOverflow = false;
      if (!closed) emptyFileIfSent();
    },
    drained() {
      if (queue.length === 0) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
    stats: () => {
      const problems: string[] = [];
      if (ioFailing) problems.push('ALERTS_JOURNAL_IO');
      if (queue.length >= maxPending) problems.push('ALERTS_JOURNAL_FULL');
      if (fileBytes >= maxFileBytes) problems.push('ALERTS_JOURNAL_FILE_FULL');
      if (deadLetters.stats().full) problems.push('ALERTS_DEAD_LETTER_FULL');
      return { pending: queue.length, written, failures, ioFailures, ...(lastIoError !== undefined ? { lastIoError } : {}), dropped, notJournaled, rejected: { ...rejected }, deadLettered, deadLetterLost, compactions, problems };
    },
    async close() {
      closed = true;
      if (retryTimer) deps.clock.clearTimeout(retryTimer);
      retryTimer = undefined;
      if (fileRetryTimer) deps.clock.clearTimeout(fileRetryTimer);
      fileRetryTimer = undefined;
      const failuresBefore = failures;
      await flushing;
      // One last attempt, so a clean shutdown leaves an empty journal when InfluxDB is up; not when
      // the write just awaited failed: InfluxDB is failing (a stalled one costs a whole write
      // deadline per attempt), and the records wait in the journal file for the next start.
      if (queue.length > 0 && failures === failuresBefore) await flush();
      // A last try for lines an I/O error held back (ioFailed schedules no timer once closed).
      if (unwritten.length > 0) writeUnwritten();
      await fileChain;
      await fh?.close();
      fh = undefined;
      rejectionLog.close();
      await deadLetters.close();
    },
  };
}
