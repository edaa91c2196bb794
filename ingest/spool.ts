import { open, readdir, rename, stat, unlink, mkdir, writeFile, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../common/logger.ts';

/**
 * Write-ahead spool: every received message is appended to a segment file and fdatasync'ed before
 * the broker gets its PUBACK, so a crash loses nothing the broker thinks we have. The InfluxDB writer
 * reads from the checkpoint onwards and advances it; fully written segments are deleted.
 *
 * Positions are global byte offsets: a segment file is named after the position of its first byte,
 * so (segment, offset) never needs a separate index.
 *
 * Record: u32 bodyLength | u32 crc32(body) | body, body = f64 receivedMs | u16 topicLength | topic | payload.
 * A torn tail (crash in the middle of a write) fails the length or CRC check on open and is cut off.
 */

const HEADER = 8;
const BODY_FIXED = 10;
const SEGMENT_RE = /^seg-(\d{16})\.wal$/;
const CHECKPOINT = 'checkpoint.json';

export interface SpoolRecord {
  readonly topic: string;
  readonly payload: Buffer;
  readonly receivedMs: number;
  /** Global position of the record's first byte; stable across restarts. */
  readonly position: number;
}

export interface SpoolBatch {
  readonly records: SpoolRecord[];
  /** Position just past the last record: the checkpoint once the batch is stored. */
  readonly end: number;
}

export interface SpoolOptions {
  readonly dir: string;
  /** Bound on records not yet written to InfluxDB (plus the ones being appended). */
  readonly maxBytes: number;
  /** Segment files are rolled past this size. */
  readonly segmentBytes?: number;
  readonly logger: Logger;
}

export interface SpoolStats {
  /** Bytes appended but not yet checkpointed (durable or pending). */
  readonly bytes: number;
  readonly segments: number;
  readonly checkpoint: number;
  readonly end: number;
  readonly corruptSkipped: number;
  readonly truncatedTailBytes: number;
  readonly commits: number;
  /** Bytes appended and not yet written: only a failing or stalled disk lets them pile up (in memory). */
  readonly unwritten: number;
}

export interface Spool {
  open(): Promise<void>;
  /** Buffers one record in memory; durable only once a later `commit()` resolves. */
  append(topic: string, payload: Uint8Array, receivedMs: number): void;
  /** Writes everything appended so far with one write and one fdatasync (group commit). */
  commit(): Promise<void>;
  /** Durable records from `position`, up to `maxRecords`, within one segment. */
  read(position: number, maxRecords: number): Promise<SpoolBatch>;
  /** Durable end: what `read` can reach. */
  end(): number;
  checkpoint(): number;
  /** Records everything before `position` as stored; deletes fully stored segments. */
  advance(position: number): Promise<void>;
  /** Resolves on the next commit that makes new records readable (or on close). */
  waitForData(): Promise<void>;
  isFull(): boolean;
  stats(): SpoolStats;
  close(): Promise<void>;
}

interface Segment {
  base: number;
  /** Durable size in bytes. */
  size: number;
  path: string;
}

export class SpoolError extends Error {
  readonly code = 'INGEST_SPOOL_IO';
}

function segmentName(base: number): string {
  return `seg-${String(base).padStart(16, '0')}.wal`;
}

/**
 * A record's topic is at most this many UTF-8 bytes (its length field is 16 bits, as MQTT's own
 * [MQTT-1.5.3]). A topic MQTT carried can still be longer here: a parser turns each byte that is not
 * UTF-8 into U+FFFD, three bytes. ingest.ts rejects such a topic before it reaches the spool.
 */
export const MAX_SPOOL_TOPIC_BYTES = 0xffff;

export function encodeRecord(topic: string, payload: Uint8Array, receivedMs: number): Buffer {
  const topicLen = Buffer.byteLength(topic);
  const bodyLen = BODY_FIXED + topicLen + payload.byteLength;
  const buf = Buffer.allocUnsafe(HEADER + bodyLen);
  buf.writeUInt32LE(bodyLen, 0);
  buf.writeDoubleLE(receivedMs, HEADER);
  buf.writeUInt16LE(topicLen, HEADER + 8);
  buf.write(topic, HEADER + BODY_FIXED, 'utf8');
  buf.set(payload, HEADER + BODY_FIXED + topicLen);
  buf.writeUInt32LE(crc32(buf.subarray(HEADER)), 4);
  return buf;
}

type Decoded = { ok: true; record: SpoolRecord; length: number } | { ok: false; need: number } | { ok: false; corrupt: true };

/** Decodes the record at `off` of `buf`; `need` when the buffer ends inside it. */
function decodeAt(buf: Buffer, off: number, position: number): Decoded {
  if (buf.length - off < HEADER) return { ok: false, need: HEADER };
  const bodyLen = buf.readUInt32LE(off);
  if (bodyLen < BODY_FIXED) return { ok: false, corrupt: true };
  if (buf.length - off < HEADER + bodyLen) return { ok: false, need: HEADER + bodyLen };
  const body = buf.subarray(off + HEADER, off + HEADER + bodyLen);
  if (crc32(body) !== buf.readUInt32LE(off + 4)) return { ok: false, corrupt: true };
  const topicLen = body.readUInt16LE(8);
  if (BODY_FIXED + topicLen > bodyLen) return { ok: false, corrupt: true };
  return {
    ok: true,
    length: HEADER + bodyLen,
    record: {
      receivedMs: body.readDoubleLE(0),
      topic: body.toString('utf8', BODY_FIXED, BODY_FIXED + topicLen),
      payload: body.subarray(BODY_FIXED + topicLen),
      position,
    },
  };
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

const READ_CHUNK = 1 << 20;
const RETRY_MAX_MS = 5_000;

export function createSpool(opts: SpoolOptions): Spool {
  const { dir, maxBytes, logger } = opts;
  const segmentBytes = opts.segmentBytes ?? 16 * 1024 * 1024;
  const segments: Segment[] = [];
  let writeHandle: FileHandle | undefined;
  let readHandle: { seg: Segment; h: FileHandle } | undefined;
  let checkpointPos = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let chain: Promise<void> = Promise.resolve();
  let dataWaiters: Array<() => void> = [];
  let closed = false;
  let corruptSkipped = 0;
  let truncatedTailBytes = 0;
  let commits = 0;

  const last = (): Segment => {
    const s = segments[segments.length - 1];
    if (s === undefined) throw new SpoolError('spool is not open');
    return s;
  };
  const durableEnd = (): number => {
    const s = last();
    return s.base + s.size;
  };

  async function readCheckpoint(): Promise<number> {
    try {
      const json: unknown = JSON.parse(await readFile(join(dir, CHECKPOINT), 'utf8'));
      const pos = (json as { position?: unknown }).position;
      if (typeof pos === 'number' && Number.isSafeInteger(pos) && pos >= 0) return pos;
      logger.error({ code: 'INGEST_SPOOL_CHECKPOINT' }, 'checkpoint file has no valid position; replaying the whole spool');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger.error({ err, code: 'INGEST_SPOOL_CHECKPOINT' }, 'cannot read checkpoint; replaying the whole spool');
    }
    return 0;
  }

  /** Scans the last segment and cuts it at the first torn or corrupt record. */
  async function recoverTail(seg: Segment): Promise<void> {
    const buf = await readFile(seg.path);
    let off = 0;
    for (;;) {
      const d = decodeAt(buf, off, seg.base + off);
      if (!d.ok) break;
      off += d.length;
    }
    if (off < buf.length) {
      truncatedTailBytes += buf.length - off;
      logger.warn({ code: 'INGEST_SPOOL_TORN_TAIL', segment: seg.path, cutBytes: buf.length - off }, 'spool tail was torn by a crash; cutting it (those messages were never acknowledged)');
      const h = await open(seg.path, 'r+');
      try {
        await h.truncate(off);
        await h.datasync();
      } finally {
        await h.close();
      }
    }
    seg.size = off;
  }

  async function newSegment(base: number): Promise<void> {
    const seg: Segment = { base, size: 0, path: join(dir, segmentName(base)) };
    const h = await open(seg.path, 'a');
    // The new file's directory entry must be durable before records in it are acknowledged.
    await fsyncDir(dir);
    await writeHandle?.close();
    writeHandle = h;
    segments.push(seg);
  }

  async function deleteStored(): Promise<void> {
    while (segments.length > 1) {
      const s = segments[0];
      if (s === undefined || s.base + s.size > checkpointPos) break;
      segments.shift();
      if (readHandle?.seg === s) {
        await readHandle.h.close();
        readHandle = undefined;
      }
      await unlink(s.path).catch((err: unknown) => logger.warn({ err, segment: s.path, code: 'INGEST_SPOOL_IO' }, 'cannot delete stored spool segment'));
    }
  }

  async function writeOnce(buf: Buffer): Promise<void> {
    const seg = last();
    if (seg.size >= segmentBytes) await newSegment(seg.base + seg.size);
    const cur = last();
    const h = writeHandle;
    if (h === undefined) throw new SpoolError('spool is not open');
    try {
      let off = 0;
      while (off < buf.length) {
        const { bytesWritten } = await h.write(buf, off, buf.length - off);
        off += bytesWritten;
      }
      await h.datasync();
    } catch (err) {
      // Leave the file as it was so that a retry does not leave half a record in the middle.
      await h.truncate(cur.size).catch(() => undefined);
      throw err;
    }
    cur.size += buf.length;
  }

  async function flushPending(): Promise<void> {
    if (pending.length === 0) return;
    const buf = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
    pending = [];
    let delay = 50;
    for (;;) {
      try {
        await writeOnce(buf);
        break;
      } catch (err) {
        if (closed) throw new SpoolError(`spool write failed while closing: ${(err as Error).message}`);
        logger.error({ err, code: 'INGEST_SPOOL_IO', retryMs: delay }, 'spool write failed; retrying (messages stay unacknowledged)');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
    pendingBytes -= buf.length;
    commits++;
    const waiters = dataWaiters;
    dataWaiters = [];
    for (const w of waiters) w();
  }

  async function segmentAt(position: number): Promise<{ seg: Segment; h: FileHandle } | undefined> {
    let seg = segments.find((s) => position >= s.base && position < s.base + s.size);
    if (seg === undefined) return undefined;
    if (readHandle?.seg !== seg) {
      await readHandle?.h.close();
      readHandle = { seg, h: await open(seg.path, 'r') };
    }
    return readHandle;
  }

  const spool: Spool = {
    async open() {
      await mkdir(dir, { recursive: true });
      checkpointPos = await readCheckpoint();
      const names = (await readdir(dir)).filter((n) => SEGMENT_RE.test(n)).sort();
      for (const name of names) {
        const base = Number(SEGMENT_RE.exec(name)?.[1]);
        const path = join(dir, name);
        segments.push({ base, size: (await stat(path)).size, path });
      }
      const tail = segments[segments.length - 1];
      if (tail !== undefined) {
        await recoverTail(tail);
        writeHandle = await open(tail.path, 'a');
        const first = segments[0] as Segment;
        if (checkpointPos < first.base) checkpointPos = first.base;
        if (checkpointPos > durableEnd()) {
          logger.error({ code: 'INGEST_SPOOL_CHECKPOINT', checkpoint: checkpointPos, end: durableEnd() }, 'checkpoint lies past the spool end; ignoring it');
          checkpointPos = first.base;
        }
        await deleteStored();
      } else {
        await newSegment(checkpointPos);
      }
      logger.info({ checkpoint: checkpointPos, end: durableEnd(), segments: segments.length }, 'spool opened');
    },

    append(topic, payload, receivedMs) {
      const rec = encodeRecord(topic, payload, receivedMs);
      pending.push(rec);
      pendingBytes += rec.length;
    },

    commit() {
      chain = chain.then(flushPending);
      return chain;
    },

    async read(position, maxRecords) {
      const at = await segmentAt(position);
      if (at === undefined) {
        // A gap (a corrupt segment was skipped): continue at the next segment.
        const next = segments.find((s) => s.base > position && s.size > 0);
        if (next === undefined || next.base >= durableEnd()) return { records: [], end: position };
        return spool.read(next.base, maxRecords);
      }
      const { seg, h } = at;
      const segEnd = seg.base + seg.size;
      let off = position - seg.base;
      const records: SpoolRecord[] = [];
      let pos = position;
      while (records.length < maxRecords && pos < segEnd) {
        const len = Math.min(READ_CHUNK, segEnd - pos);
        let buf = Buffer.allocUnsafe(len);
        const { bytesRead } = await h.read(buf, 0, len, off);
        buf = buf.subarray(0, bytesRead);
        let o = 0;
        while (records.length < maxRecords && pos + o < segEnd) {
          const d = decodeAt(buf, o, pos + o);
          if (d.ok) {
            records.push(d.record);
            o += d.length;
            continue;
          }
          if ('corrupt' in d || ('need' in d && pos + o + d.need > segEnd)) {
            // Durable bytes that fail their checksum: the disk corrupted them. Skip the rest of this
            // segment rather than wedge the pipeline; the log says how much was lost.
            corruptSkipped += segEnd - (pos + o);
            logger.error({ code: 'INGEST_SPOOL_CORRUPT', segment: seg.path, offset: pos + o - seg.base, skippedBytes: segEnd - (pos + o) }, 'corrupt spool record; skipping the rest of the segment');
            return { records, end: segEnd };
          }
          if (o === 0) {
            // One record larger than the read chunk: read exactly its size next time round.
            const big = Buffer.allocUnsafe(d.need);
            await h.read(big, 0, d.need, off);
            const dd = decodeAt(big, 0, pos);
            if (!dd.ok) {
              corruptSkipped += segEnd - pos;
              logger.error({ code: 'INGEST_SPOOL_CORRUPT', segment: seg.path }, 'corrupt spool record; skipping the rest of the segment');
              return { records, end: segEnd };
            }
            records.push(dd.record);
            o = dd.length;
          }
          break;
        }
        pos += o;
        off += o;
      }
      return { records, end: pos };
    },

    end: () => durableEnd(),
    checkpoint: () => checkpointPos,

    async advance(position) {
      if (position <= checkpointPos) return;
      checkpointPos = position;
      const tmp = join(dir, `${CHECKPOINT}.tmp`);
      await writeFile(tmp, JSON.stringify({ position }), { flush: true });
      await rename(tmp, join(dir, CHECKPOINT));
      await deleteStored();
    },

    waitForData() {
      if (closed) return Promise.resolve();
      return new Promise((resolve) => dataWaiters.push(resolve));
    },

    isFull: () => segments.length > 0 && durableEnd() + pendingBytes - checkpointPos >= maxBytes,

    stats: () => ({
      bytes: segments.length > 0 ? durableEnd() + pendingBytes - checkpointPos : pendingBytes,
      segments: segments.length,
      checkpoint: checkpointPos,
      end: segments.length > 0 ? durableEnd() : 0,
      corruptSkipped,
      truncatedTailBytes,
      commits,
      unwritten: pendingBytes,
    }),

    async close() {
      if (closed) return;
      await spool.commit().catch((err: unknown) => logger.error({ err, code: 'INGEST_SPOOL_IO' }, 'final spool commit failed'));
      closed = true;
      for (const w of dataWaiters) w();
      dataWaiters = [];
      await readHandle?.h.close();
      readHandle = undefined;
      await writeHandle?.close();
      writeHandle = undefined;
    },
  };
  return spool;
}
