import { mkdir, open, readdir, readFile, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../common/logger.ts';
import { processAlive } from '../common/process-alive.ts';

/**
 * Append-only journal with group commit, the disk half of the broker's default store
 * (broker/durable-persistence.ts). Every state change of the in-memory persistence is appended as
 * one record; `append(.., durable)` returns a promise that resolves once the record is on disk
 * (write + fdatasync). Records appended while an fdatasync runs leave together in the next write, so
 * one fdatasync covers all of them (ingest's spool does the same, ingest/spool.ts).
 *
 * Files are generations, `store-<16 digits>.log`. A generation starts with a snapshot of the whole
 * state, closed by a SNAPSHOT_END record, and continues with the changes made after it. Compaction
 * writes a new generation: the changes appended before the cut go to the old file (and their
 * waiters resolve once it is synced), the snapshot is taken at that same instant (JavaScript runs
 * one thing at a time, so it reflects exactly those changes), then later changes go to the new file
 * after the snapshot. The old file is deleted only when the new one's snapshot is synced. Recovery
 * reads the newest generation whose SNAPSHOT_END is present; a newer one without it was cut by a
 * crash before any change in it was acknowledged (its changes follow its snapshot in the same file,
 * so a synced change implies a synced snapshot).
 *
 * Record: u32 bodyLength | u32 crc32(body) | body, body = u32 headerLength | header JSON | payload.
 * A torn tail (crash in the middle of a write) fails the length or CRC check and is ignored.
 */

export interface JournalRecord {
  readonly h: Readonly<Record<string, unknown>> & { readonly op: string };
  /** Message payload, kept raw (not in the JSON header). */
  readonly p?: Buffer | undefined;
}

export interface JournalOptions {
  readonly dir: string;
  readonly logger: Logger;
  /** A new generation is written once the current one has grown past max(this, 2 × its snapshot). */
  readonly compactBytes?: number;
  /** Least time between the starts of two commits that someone waits for (see COMMIT_INTERVAL_MS). */
  readonly commitIntervalMs?: number;
  /** Records nobody waits for are written at the latest this long after they are appended. */
  readonly lazyCommitMs?: number;
  /** The first wait after a failed compaction before another is tried (see COMPACT_RETRY_MS). */
  readonly compactRetryMs?: number;
}

/**
 * After a failed compaction (a disk with room for appends but not for a new generation's snapshot),
 * the next one is tried only once the journal has grown by another quarter of its size at the
 * failure AND this long has passed, doubling per failure up to COMPACT_RETRY_MAX_MS. Before (review
 * of session 25), the size threshold stayed exceeded and every later commit encoded the whole state
 * synchronously, wrote it, failed and deleted it: 200 commits made 200 snapshots on a nearly full
 * disk, the broker's event loop held for each (3.4 s for those 200 on a 16 MiB tmpfs).
 */
const COMPACT_RETRY_MS = 1_000;
const COMPACT_RETRY_MAX_MS = 5 * 60_000;
const COMPACT_RETRY_GROWTH = 0.25;

/**
 * Commits that someone waits for (a PUBACK) start at most every 2 ms. Each fdatasync costs the
 * kernel a fixed amount of CPU whatever it carries, and a commit per few messages made that cost the
 * broker's largest at low rates (pipeline at 2,000 msg/s: 0.66 cores, of which the main thread
 * accounted for 0.41; the relay without a store: 0.28). The wait delays only the device's PUBACK:
 * live subscribers get the message before its commit (durable-persistence.ts). The same idea as
 * PostgreSQL's `commit_delay`.
 */
const COMMIT_INTERVAL_MS = 2;
/**
 * Records nobody waits for (subscriber acknowledgements, will removals) ride with the next commit,
 * or go alone after this long: losing them to a crash costs only a redelivery.
 */
const LAZY_COMMIT_MS = 100;

export interface JournalStats {
  readonly generation: number;
  readonly bytes: number;
  readonly snapshotBytes: number;
  readonly commits: number;
  readonly compactions: number;
  /** Compactions that failed (each logged once per episode; see COMPACT_RETRY_MS). */
  readonly compactionFailures: number;
  readonly tornTailBytes: number;
}

export class StoreIoError extends Error {
  readonly code = 'BROKER_STORE_IO';
}

const HEADER = 8;
const FILE_RE = /^store-(\d{16})\.log$/;
const SNAPSHOT_END = 'snapshot-end';
const LOCK = 'LOCK';

/**
 * One broker per store: two appending to the same journal would corrupt it. The lock file holds the
 * owner's pid; a lock left by a killed broker (its pid gone) is taken over.
 */
async function lockDir(dir: string): Promise<void> {
  const path = join(dir, LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, String(process.pid), { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
        throw new StoreIoError(`broker store ${dir} is in use by process ${owner} (one broker per store)`);
      }
      await unlink(path).catch(() => undefined);
    }
  }
  throw new StoreIoError(`cannot lock broker store ${dir}`);
}
const RETRY_MAX_MS = 5_000;

function fileName(gen: number): string {
  return `store-${String(gen).padStart(16, '0')}.log`;
}

export function encodeRecord(rec: JournalRecord): Buffer {
  // The header is written straight into the record (no intermediate Buffer of the JSON): this runs
  // for every journaled change, i.e. at least once per QoS 1 message.
  const header = JSON.stringify(rec.h);
  const headerLen = Buffer.byteLength(header);
  const payloadLen = rec.p?.length ?? 0;
  const bodyLen = 4 + headerLen + payloadLen;
  const buf = Buffer.allocUnsafe(HEADER + bodyLen);
  buf.writeUInt32LE(bodyLen, 0);
  buf.writeUInt32LE(headerLen, HEADER);
  buf.write(header, HEADER + 4, headerLen, 'utf8');
  if (rec.p !== undefined) rec.p.copy(buf, HEADER + 4 + headerLen);
  buf.writeUInt32LE(crc32(buf.subarray(HEADER)), 4);
  return buf;
}

/** Records of one file up to the first torn or corrupt one; `end` = bytes that decoded. */
export function decodeRecords(buf: Buffer): { records: JournalRecord[]; end: number } {
  const records: JournalRecord[] = [];
  let off = 0;
  while (buf.length - off >= HEADER) {
    const bodyLen = buf.readUInt32LE(off);
    if (bodyLen < 4 || buf.length - off < HEADER + bodyLen) break;
    const body = buf.subarray(off + HEADER, off + HEADER + bodyLen);
    if (crc32(body) !== buf.readUInt32LE(off + 4)) break;
    const headerLen = body.readUInt32LE(0);
    if (4 + headerLen > bodyLen) break;
    let h: unknown;
    try {
      h = JSON.parse(body.toString('utf8', 4, 4 + headerLen));
    } catch {
      break;
    }
    if (typeof h !== 'object' || h === null || typeof (h as { op?: unknown }).op !== 'string') break;
    const p = 4 + headerLen < bodyLen ? Buffer.from(body.subarray(4 + headerLen)) : undefined;
    records.push({ h: h as JournalRecord['h'], p });
    off += HEADER + bodyLen;
  }
  return { records, end: off };
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** The outcome of one commit, shared by every durable record in it. */
interface Commit {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

function newCommit(): Commit {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Callers that do not wait (durable-persistence.ts keeps the newest one for whenDurable()) must not
  // make a failed commit an unhandled rejection; those that wait still see it.
  promise.catch(noop);
  return { promise, resolve, reject };
}

function noop(): void {}

const RESOLVED: Promise<void> = Promise.resolve();

interface Batch {
  bufs: Buffer[];
  bytes: number;
  /** performance.now() of its first record: a lazy batch is due LAZY_COMMIT_MS after it. */
  since: number;
  /**
   * One promise per commit, not per record: at 10,000 msg/s a promise, its executor closure and a
   * waiter object per message were a visible share of the broker's allocations (GC).
   */
  commit: Commit | undefined;
}

export class StoreJournal {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #compactBytes: number;
  #gen = 0;
  #handle: FileHandle | undefined;
  #bytes = 0;
  #snapshotBytes = 0;
  #pending: Batch = { bufs: [], bytes: 0, commit: undefined, since: 0 };
  #writing: Promise<void> | undefined;
  readonly #commitIntervalMs: number;
  readonly #lazyCommitMs: number;
  #lastCommitAt = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;
  #timerDue = 0;
  #snapshot: (() => JournalRecord[]) | undefined;
  #closed = false;
  #closing = false;
  #locked = false;
  #commits = 0;
  #compactions = 0;
  #tornTailBytes = 0;
  readonly #compactRetryMs: number;
  #compactionFailures = 0;
  /** Failures since the last compaction that succeeded (an episode). */
  #failedInARow = 0;
  /** While in an episode: no compaction before the journal is this large and before this time. */
  #retryAtBytes = 0;
  #retryAfter = 0;

  constructor(opts: JournalOptions) {
    this.#dir = opts.dir;
    this.#log = opts.logger;
    this.#compactBytes = opts.compactBytes ?? 64 * 1024 * 1024;
    this.#commitIntervalMs = opts.commitIntervalMs ?? COMMIT_INTERVAL_MS;
    this.#lazyCommitMs = opts.lazyCommitMs ?? LAZY_COMMIT_MS;
    this.#compactRetryMs = opts.compactRetryMs ?? COMPACT_RETRY_MS;
  }

  /** Reads the newest complete generation: its snapshot, then the changes after it, in order. */
  async recover(): Promise<JournalRecord[]> {
    await mkdir(this.#dir, { recursive: true });
    await lockDir(this.#dir);
    this.#locked = true;
    const gens = (await readdir(this.#dir))
      .map((f) => FILE_RE.exec(f)?.[1])
      .filter((g): g is string => g !== undefined)
      .map(Number)
      .sort((a, b) => b - a);
    this.#gen = gens[0] ?? 0;
    for (const gen of gens) {
      const buf = await readFile(join(this.#dir, fileName(gen)));
      const { records, end } = decodeRecords(buf);
      const snapEnd = records.findIndex((r) => r.h.op === SNAPSHOT_END);
      if (snapEnd < 0) {
        this.#log.warn({ code: 'BROKER_STORE_INCOMPLETE_SNAPSHOT', file: fileName(gen) }, 'store generation without a complete snapshot (cut by a crash); using the previous one');
        continue;
      }
      if (end < buf.length) {
        this.#tornTailBytes += buf.length - end;
        this.#log.warn({ code: 'BROKER_STORE_TORN_TAIL', file: fileName(gen), cutBytes: buf.length - end }, 'store tail was torn by a crash; ignoring it (those changes were never acknowledged)');
      }
      return records.filter((_, i) => i !== snapEnd);
    }
    return [];
  }

  /**
   * Starts a new generation from `snapshot()` (the recovered state) and deletes the older files.
   * `snapshot` is kept for later compactions.
   */
  async start(snapshot: () => JournalRecord[]): Promise<void> {
    this.#snapshot = snapshot;
    await this.#newGeneration(this.#encodeSnapshot());
  }

  /**
   * Queues one record. `durable`: the promise resolves once the record is on disk; otherwise it
   * resolves at once (the record still goes to disk in order with the next commit).
   */
  append(rec: JournalRecord, durable: boolean): Promise<void> {
    if (this.#closed) {
      const closed = Promise.reject(new StoreIoError('broker store is closed'));
      closed.catch(noop);
      return closed;
    }
    const batch = this.#pending;
    const buf = encodeRecord(rec);
    if (batch.bufs.length === 0) batch.since = performance.now();
    batch.bufs.push(buf);
    batch.bytes += buf.length;
    let done = RESOLVED;
    if (durable) done = (batch.commit ??= newCommit()).promise;
    this.#kick();
    return done;
  }

  stats(): JournalStats {
    return { generation: this.#gen, bytes: this.#bytes, snapshotBytes: this.#snapshotBytes, commits: this.#commits, compactions: this.#compactions, compactionFailures: this.#compactionFailures, tornTailBytes: this.#tornTailBytes };
  }

  /** Writes what is queued, then closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closing = true;
    this.#clearTimer();
    for (;;) {
      if (this.#writing !== undefined) await this.#writing;
      else if (this.#pending.bufs.length > 0 && this.#handle !== undefined) this.#commitNow();
      else break;
    }
    this.#closed = true;
    await this.#handle?.close();
    this.#handle = undefined;
    if (this.#locked) await unlink(join(this.#dir, LOCK)).catch(() => undefined);
  }

  /** Starts the next commit now, or sets a timer for it (see COMMIT_INTERVAL_MS, LAZY_COMMIT_MS). */
  #kick(): void {
    if (this.#writing !== undefined || this.#handle === undefined || this.#closed || this.#pending.bufs.length === 0) return;
    const now = performance.now();
    // A batch nobody waits for is due lazyCommitMs after its first record, not after "now": computed
    // from now, each timer re-armed itself when it fired, and such records (wills, will removals,
    // subscriber acknowledgements) reached the disk only with the next durable record, never alone
    // (found in session 10: a broker whose devices sent no retained status had an empty journal).
    const due = this.#closing ? now : this.#pending.commit !== undefined ? this.#lastCommitAt + this.#commitIntervalMs : this.#pending.since + this.#lazyCommitMs;
    if (due <= now) {
      this.#clearTimer();
      this.#commitNow();
      return;
    }
    if (this.#timer !== undefined && this.#timerDue <= due) return;
    this.#clearTimer();
    this.#timerDue = due;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#kick();
    }, due - now);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #commitNow(): void {
    this.#lastCommitAt = performance.now();
    this.#writing = this.#drain().catch(() => undefined).finally(() => {
      this.#writing = undefined;
      this.#kick();
    });
  }

  /** Writes one batch: everything queued at this instant. */
  async #drain(): Promise<void> {
    const batch = this.#pending;
    this.#pending = { bufs: [], bytes: 0, commit: undefined, since: 0 };
    // The cut: taken in the same synchronous step as the batch, so the snapshot holds exactly
    // the changes up to this batch's last record.
    const size = this.#bytes + batch.bytes;
    const compact = size > Math.max(this.#compactBytes, 2 * this.#snapshotBytes) && (this.#failedInARow === 0 || (size >= this.#retryAtBytes && performance.now() >= this.#retryAfter));
    const snapshot = compact ? this.#encodeSnapshot() : undefined;
    try {
      await this.#writeWithRetry(batch);
    } catch (err) {
      batch.commit?.reject(err as Error);
      throw err;
    }
    this.#commits++;
    batch.commit?.resolve();
    if (snapshot !== undefined) await this.#compact(snapshot);
  }

  /** A new generation from `snapshot`; on failure the current one is kept and the next try backs off (COMPACT_RETRY_MS). */
  async #compact(snapshot: Buffer): Promise<void> {
    try {
      await this.#newGeneration(snapshot);
    } catch (err) {
      this.#compactionFailures++;
      this.#failedInARow++;
      this.#retryAtBytes = Math.ceil(this.#bytes * (1 + COMPACT_RETRY_GROWTH));
      const wait = Math.min(this.#compactRetryMs * 2 ** (this.#failedInARow - 1), COMPACT_RETRY_MAX_MS);
      this.#retryAfter = performance.now() + wait;
      // Once per episode: a nearly full disk fails every try.
      if (this.#failedInARow === 1) {
        this.#log.error({ err, code: 'BROKER_STORE_COMPACTION', journalBytes: this.#bytes, snapshotBytes: snapshot.length, retryAtBytes: this.#retryAtBytes, retryMs: wait }, 'store compaction failed; keeping the current generation, retrying once the journal has grown by a quarter (not logged again until one succeeds)');
      }
      return;
    }
    if (this.#failedInARow > 0) {
      this.#log.info({ code: 'BROKER_STORE_COMPACTION', failures: this.#failedInARow, generation: this.#gen }, 'store compaction succeeded after failing');
      this.#failedInARow = 0;
    }
  }

  async #writeWithRetry(batch: Batch): Promise<void> {
    const buf = batch.bufs.length === 1 ? (batch.bufs[0] as Buffer) : Buffer.concat(batch.bufs, batch.bytes);
    let delay = 50;
    for (;;) {
      const h = this.#handle;
      if (h === undefined) throw new StoreIoError('broker store is not open');
      try {
        let off = 0;
        while (off < buf.length) off += (await h.write(buf, off, buf.length - off, this.#bytes + off)).bytesWritten;
        await h.datasync();
        this.#bytes += buf.length;
        return;
      } catch (err) {
        if (this.#closing) throw new StoreIoError(`broker store write failed while closing: ${(err as Error).message}`);
        // Nothing after this.#bytes counts: the retry overwrites it (positional write).
        this.#log.error({ err, code: 'BROKER_STORE_IO', retryMs: delay }, 'broker store write failed; retrying (the publishes stay unacknowledged)');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  #encodeSnapshot(): Buffer {
    const records = this.#snapshot?.() ?? [];
    records.push({ h: { op: SNAPSHOT_END } });
    return Buffer.concat(records.map(encodeRecord));
  }

  async #newGeneration(snapshot: Buffer): Promise<void> {
    const gen = this.#gen + 1;
    const path = join(this.#dir, fileName(gen));
    const h = await open(path, 'w');
    try {
      let off = 0;
      while (off < snapshot.length) off += (await h.write(snapshot, off, snapshot.length - off, off)).bytesWritten;
      await h.datasync();
      // The new file's directory entry must be durable before changes in it are acknowledged.
      await fsyncDir(this.#dir);
    } catch (err) {
      await h.close().catch(() => undefined);
      await unlink(path).catch(() => undefined);
      throw err;
    }
    const old = this.#handle;
    this.#handle = h;
    this.#gen = gen;
    this.#bytes = snapshot.length;
    this.#snapshotBytes = snapshot.length;
    this.#compactions++;
    await old?.close();
    for (const f of await readdir(this.#dir)) {
      const g = FILE_RE.exec(f)?.[1];
      if (g !== undefined && Number(g) < gen) await unlink(join(this.#dir, f)).catch((err: unknown) => this.#log.warn({ err, file: f, code: 'BROKER_STORE_IO' }, 'cannot delete old store generation'));
    }
    this.#kick();
  }
}
