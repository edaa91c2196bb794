import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../logger.ts';
import type { InfluxError } from './errors.ts';
import type { LineWriter, WriteOptions } from './writer.ts';

/**
 * Points InfluxDB refuses for good (400: field type conflict, unparsable line; 413 for a single
 * line) are set aside here instead of being retried forever in front of the points behind them.
 * The file is the record of them: append-only JSON lines `{ t, lp, code, reason, error }`, each
 * fdatasync'ed before the point leaves the caller's journal, so nothing acknowledged is lost
 * silently. An operator replays a line after fixing its cause (docs/alerts.md "Dead letters").
 */
export interface DeadLetter {
  /** When it was set aside (ms since epoch, from the caller's clock). */
  readonly t: number;
  /** The line-protocol point exactly as it was sent. */
  readonly lp: string;
  /** The adapter's code (INFLUX_REJECTED, INFLUX_TOO_LARGE). */
  readonly code: string;
  /** Short stable reason, the metric label: type_conflict, unparsable, too_large, rejected. */
  readonly reason: string;
  /** InfluxDB's own error text. */
  readonly error: string;
  /** Retention policy it was written to, when not the default. */
  readonly rp?: string;
}

/** The metric label for a rejection: a few stable words from InfluxDB 1.x's error text. */
export function rejectionReason(err: InfluxError): string {
  if (err.code === 'INFLUX_TOO_LARGE') return 'too_large';
  if (err.message.includes('field type conflict')) return 'type_conflict';
  if (err.message.includes('unable to parse')) return 'unparsable';
  return 'rejected';
}

/** True for a write failure that resending the same points cannot fix (the adapter's classification). */
export function isPointRejection(err: unknown): err is InfluxError {
  const e = err as InfluxError | undefined;
  return e?.name === 'InfluxError' && (e.code === 'INFLUX_REJECTED' || e.code === 'INFLUX_TOO_LARGE');
}

/**
 * Writes `lines`; when InfluxDB refuses some of them for good, finds which by halving (InfluxDB 1.6
 * answers a batch with one bad point by writing the others and "partial write: … dropped=N", naming
 * only the first bad point, so the answer alone does not say which lines to set aside). Writes are
 * idempotent (same series and time), so resending the good half is harmless. Returns the refused
 * lines with their errors; throws any other (retryable) error, e.g. InfluxDB down mid-split.
 */
export async function writeIsolatingRejects(
  writer: Pick<LineWriter, 'write'>,
  lines: readonly string[],
  opts?: WriteOptions,
  write: (part: readonly string[]) => Promise<void> = (part) => writer.write(part, opts),
): Promise<Array<{ lp: string; err: InfluxError }>> {
  const rejected: Array<{ lp: string; err: InfluxError }> = [];
  async function go(part: readonly string[]): Promise<void> {
    if (part.length === 0) return;
    try {
      await write(part);
    } catch (err) {
      if (!isPointRejection(err)) throw err;
      if (part.length === 1) {
        rejected.push({ lp: part[0] as string, err });
        return;
      }
      const mid = Math.ceil(part.length / 2);
      await go(part.slice(0, mid));
      await go(part.slice(mid));
    }
  }
  await go(lines);
  return rejected;
}

export interface DeadLetterFile {
  start(): Promise<void>;
  /** Appends and syncs; resolves with how many were kept out at the size bound. Rejects on an I/O error (the caller retries). */
  append(entries: readonly DeadLetter[]): Promise<number>;
  stats(): { written: number; droppedAtBound: number; bytes: number; full: boolean };
  close(): Promise<void>;
}

export interface DeadLetterFileDeps {
  readonly path: string;
  readonly logger: Logger;
  /** Stable code for the log line when the bound is hit (the process's catalogue). */
  readonly fullCode: string;
  /** File bound, bytes (default 64 MiB: about 100,000 points at a few hundred bytes each). */
  readonly maxBytes?: number;
}

export function createDeadLetterFile(deps: DeadLetterFileDeps): DeadLetterFile {
  const maxBytes = deps.maxBytes ?? 64 * 1024 * 1024;
  let fh: FileHandle | undefined;
  let bytes = 0;
  let written = 0;
  let droppedAtBound = 0;
  let chain: Promise<unknown> = Promise.resolve();

  async function ensureOpen(): Promise<FileHandle> {
    if (fh) return fh;
    await mkdir(dirname(deps.path), { recursive: true });
    try {
      bytes = (await stat(deps.path)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      bytes = 0;
    }
    fh = await open(deps.path, 'a');
    return fh;
  }

  return {
    async start() {
      await ensureOpen();
    },
    append(entries) {
      const run = chain.then(async () => {
        const h = await ensureOpen();
        // From the file, not a running count: an operator who replayed and emptied it frees the room.
        bytes = (await h.stat()).size;
        let text = '';
        let kept = 0;
        const lost: DeadLetter[] = [];
        for (const e of entries) {
          const line = `${JSON.stringify(e)}\n`;
          const n = Buffer.byteLength(line);
          if (bytes + Buffer.byteLength(text) + n > maxBytes) {
            lost.push(e);
            continue;
          }
          text += line;
          kept++;
        }
        if (text !== '') {
          await h.appendFile(text);
          await h.datasync();
          bytes += Buffer.byteLength(text);
          written += kept;
        }
        const out = lost.length;
        if (out > 0) {
          droppedAtBound += out;
          // Every time, not rate-limited: each line here is a point lost for good, and it can only
          // happen after maxBytes of rejections, which an operator must already have been told of.
          deps.logger.error({ code: deps.fullCode, path: deps.path, maxBytes, lost: out, lostTotal: droppedAtBound, points: lost.slice(0, 20).map((e) => ({ lp: e.lp.slice(0, 1000), error: e.error.slice(0, 300) })) }, 'dead-letter file is full: these refused InfluxDB points are kept only in this log line; replay and empty the file');
        }
        return out;
      });
      chain = run.catch(() => undefined);
      return run;
    },
    stats: () => ({ written, droppedAtBound, bytes, full: bytes >= maxBytes || droppedAtBound > 0 }),
    async close() {
      await chain;
      await fh?.close();
      fh = undefined;
    },
  };
}
