import { RP_RAW } from '../common/influx-schema.ts';
import type { Logger } from '../common/logger.ts';
import { decodeDeviceMessage, type ReceiveStamp } from '../contract/device-message.ts';
import type { MetricName } from '../contract/metrics.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import { InfluxError } from '../common/influx/errors.ts';
import type { LineWriter } from '../common/influx/writer.ts';
import { INFLUX_REJECTED, messageLine, rejectedLine, type IngestRejectCode, type LineResult } from './points.ts';
import type { RejectionLog } from './rejections.ts';
import type { Spool, SpoolRecord } from './spool.ts';

/**
 * Drains the spool into InfluxDB: reads records after the checkpoint, decodes and validates them,
 * writes one line-protocol body per batch, and advances the checkpoint on success. InfluxDB being
 * down only delays the drain (capped exponential backoff); a point InfluxDB refuses (400) is
 * isolated by bisecting the batch and stored as `rejected` with code INFLUX_REJECTED.
 * Readings and rejections go to the short `raw` retention policy, events and statuses to the
 * database's default (`records`, kept for years: common/influx-schema.ts): a batch is one write per
 * policy, and the checkpoint advances only when both are stored.
 */

/** How one write request ended, for the latency histogram's `outcome` label. */
export type WriteOutcome = 'ok' | 'rejected' | 'too-large' | 'retry';

export function writeOutcome(err: InfluxError | undefined): WriteOutcome {
  if (err === undefined) return 'ok';
  if (err.retryable) return 'retry';
  return err.code === 'INFLUX_TOO_LARGE' ? 'too-large' : 'rejected';
}

export interface InfluxWriterDeps {
  readonly spool: Spool;
  /** common/influx/writer.ts; closed by close(). */
  readonly writer: LineWriter;
  /**
   * Creates the database, its retention policies and the downsampling (common/influx-schema.ts
   * ensureInfluxSchema); called before the first write and again when InfluxDB says the database is
   * missing. Rejects while InfluxDB is unreachable.
   */
  readonly ensureDatabase: () => Promise<void>;
  readonly registry: RegistryIndex;
  readonly rejections: RejectionLog;
  /** Counts and logs out-of-range readings (stored, flagged) per metric. */
  readonly outOfRange?: RejectionLog<MetricName>;
  /** Counts and logs events and statuses stored at the broker's time because the device's clock was off. */
  readonly clockSkew?: RejectionLog<'event' | 'status'>;
  readonly logger: Logger;
  readonly now: () => number;
  /**
   * `service`: the broker stamps nothing (Mosquitto), so each message is judged and stored with the
   * time ingest received it, kept in its spool record (contract/device-message.ts ReceiveStamp).
   * Default `broker`.
   */
  readonly receiveStamp?: ReceiveStamp;
  /** Called after every checkpoint advance (ingest resumes MQTT reading if the spool has room). */
  readonly onProgress?: () => void;
  readonly maxPoints?: number;
  /**
   * Batches written at once (default 2): the next batch is decoded and formatted while the previous
   * one is on the wire, and InfluxDB gets two requests to work on. The checkpoint still advances
   * strictly in spool order.
   */
  readonly concurrency?: number;
  readonly lingerMs?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /**
   * Times one write request (the metrics' latency histogram): called as the request leaves, and the
   * function it returns when the answer is in. The writer reads no clock for it.
   */
  readonly timeWrite?: () => (outcome: WriteOutcome) => void;
}

export interface InfluxWriterStats {
  /** Points InfluxDB accepted (device points and rejected-measurement points). */
  readonly written: number;
  readonly batches: number;
  /** Failed write attempts that will be retried. */
  readonly failures: number;
  /** Since when writes have been failing (platform ms), or null. */
  readonly failingSince: number | null;
  readonly lastError: string | null;
  /** The last failure was InfluxDB's disk being full (INFLUX_DISK_FULL): it needs room and a restart. */
  readonly diskFull: boolean;
}

export interface InfluxWriter {
  start(): void;
  close(): Promise<void>;
  stats(): InfluxWriterStats;
}

interface Item {
  readonly line: string;
  readonly rec: SpoolRecord;
  readonly homeId?: string;
  readonly deviceId?: string;
  /** A `rejected` point itself: if InfluxDB refuses it, log and drop instead of recursing. */
  readonly isRejection: boolean;
  /** RP_RAW, or undefined for the database's default policy. */
  readonly rp: string | undefined;
}

export function createInfluxWriter(deps: InfluxWriterDeps): InfluxWriter {
  const { spool, writer, registry, rejections, logger, now } = deps;
  const maxPoints = deps.maxPoints ?? 5_000;
  const lingerMs = deps.lingerMs ?? 50;
  const concurrency = Math.max(1, deps.concurrency ?? 2);
  const retryMin = deps.retryMinMs ?? 100;
  // 1 s cap: a failed write to a down InfluxDB costs next to nothing, while every second of
  // back-off after it is back is a second of backlog not drained (issue 6, drain benchmark).
  const retryMax = deps.retryMaxMs ?? 1_000;

  let closed = false;
  let loop: Promise<void> | undefined;
  /** Every pending sleep (a linger and each in-flight batch's retry back-off): close wakes them all. */
  const wakers = new Set<() => void>();
  let closedResolve: () => void = () => undefined;
  const closedPromise = new Promise<void>((r) => (closedResolve = r));
  let dbReady = false;
  let lastFailureLog = -Infinity;
  const st = { written: 0, batches: 0, failures: 0, failingSince: null as number | null, lastError: null as string | null, diskFull: false };

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        wakers.delete(done);
        resolve();
      }
      wakers.add(done);
    });
  }

  function reject(code: IngestRejectCode, reason: string, rec: SpoolRecord, ids: { homeId?: string; deviceId?: string }, out: Item[]): void {
    rejections.record(code, rec.topic, reason);
    const { homeId, deviceId } = ids;
    out.push({
      line: rejectedLine({ code, reason, homeId, deviceId, topic: rec.topic, payload: rec.payload, receivedMs: rec.receivedMs, uniq: rec.position }),
      rec,
      homeId,
      deviceId,
      isRejection: true,
      rp: RP_RAW,
    });
  }

  function toItems(records: readonly SpoolRecord[]): Item[] {
    const out: Item[] = [];
    for (const rec of records) {
      const msg = decodeDeviceMessage(rec.topic, rec.payload, registry, deps.receiveStamp === 'service' ? rec.receivedMs : undefined);
      if (!msg.ok) {
        reject(msg.code, msg.reason, rec, msg, out);
        continue;
      }
      // Metrics refused one by one (the rest of the reading is kept) are rejections of their own.
      if (msg.channel === 'telemetry') {
        for (const d of msg.dropped) reject(d.code, d.reason, rec, d, out);
        for (const o of msg.outOfRange) {
          const taken = o.atLimit ? `stored and evaluated at the limit ${o.limit}` : 'kept out of the reading, raw value stored';
          deps.outOfRange?.record(o.metric, rec.topic, `${msg.device.id}: ${o.metric}=${o.value} ${o.side} the range limit ${o.limit}; ${taken}`);
        }
      }
      if (msg.channel !== 'telemetry' && msg.clockSkew !== undefined) {
        deps.clockSkew?.record(msg.channel, rec.topic, `${msg.device.id}: ${msg.clockSkew.reason}; stored at the broker time, flagged`);
      }
      let r: LineResult;
      try {
        r = messageLine(msg);
      } catch (err) {
        // A value the line protocol cannot carry (common/influx/line-protocol.ts): refused like a 400.
        if (!(err instanceof InfluxError)) throw err;
        reject(INFLUX_REJECTED, err.message, rec, { homeId: msg.device.homeId, deviceId: msg.device.id }, out);
        continue;
      }
      if (r.ok) out.push({ line: r.line, rec, homeId: msg.device.homeId, deviceId: msg.device.id, isRejection: false, rp: msg.channel === 'telemetry' ? RP_RAW : undefined });
      else reject(r.rejection.code, r.rejection.reason, rec, r.rejection, out);
    }
    return out;
  }

  function failed(error: string, code?: InfluxError['code']): void {
    st.failures++;
    st.lastError = error;
    const wasDiskFull = st.diskFull;
    st.diskFull = code === 'INFLUX_DISK_FULL';
    const t = now();
    st.failingSince ??= t;
    // One line when the outage starts, then one every 30 s: an outage of hours stays readable. A
    // full disk is said at once, even within an outage that began otherwise.
    if (t - lastFailureLog >= 30_000 || (st.diskFull && !wasDiskFull)) {
      lastFailureLog = t;
      const at = { error, failingForMs: t - st.failingSince, spoolBytes: spool.stats().bytes };
      if (st.diskFull) logger.error({ code: 'INGEST_INFLUX_DISK_FULL', ...at }, "InfluxDB's disk is full: free space on it, then restart InfluxDB (1.6 went on refusing writes to that shard, even with room, until restarted); spooling and retrying");
      else logger.error({ code: 'INGEST_INFLUX_UNAVAILABLE', ...at }, 'InfluxDB write failed; spooling and retrying');
    }
  }

  function recovered(): void {
    if (st.failingSince !== null) logger.info({ downForMs: now() - st.failingSince }, 'InfluxDB writes succeed again; draining the spool');
    st.failingSince = null;
    st.diskFull = false;
    lastFailureLog = -Infinity;
  }

  async function ensureDatabase(): Promise<boolean> {
    let delay = retryMin;
    while (!closed) {
      try {
        await deps.ensureDatabase();
        dbReady = true;
        return true;
      } catch (err) {
        failed((err as Error).message, err instanceof InfluxError ? err.code : undefined);
        await sleep(delay);
        delay = Math.min(delay * 2, retryMax);
      }
    }
    return false;
  }

  /** Writes `items` (all of one retention policy) until stored or refused; false only when closing interrupted it. */
  async function writeItems(items: readonly Item[], influxRejected: Item[]): Promise<boolean> {
    if (items.length === 0) return true;
    let delay = retryMin;
    const body = items.map((i) => i.line).join('\n');
    const rp = items[0]?.rp;
    while (!closed) {
      if (!dbReady && !(await ensureDatabase())) return false;
      const timed = deps.timeWrite?.();
      let error: InfluxError | undefined;
      try {
        await writer.write(body, rp === undefined ? undefined : { rp });
      } catch (err) {
        // Anything but an InfluxError is a bug: let it stop the drain loudly (INGEST_WRITER_STOPPED).
        if (!(err instanceof InfluxError)) throw err;
        error = err;
      }
      timed?.(writeOutcome(error));
      if (error === undefined) {
        recovered();
        st.written += items.length;
        return true;
      }
      if (error.retryable) {
        if (error.code === 'INFLUX_DATABASE_NOT_FOUND') dbReady = false;
        failed(error.message, error.code);
        await sleep(delay);
        delay = Math.min(delay * 2, retryMax);
        continue;
      }
      recovered();
      if (items.length > 1) {
        // InfluxDB 1.x wrote the valid points already; bisect to find the refused ones (rewriting
        // the valid ones is harmless: same series and timestamp).
        const mid = items.length >> 1;
        return (await writeItems(items.slice(0, mid), influxRejected)) && (await writeItems(items.slice(mid), influxRejected));
      }
      const item = items[0] as Item;
      if (item.isRejection) {
        logger.error({ code: INFLUX_REJECTED, error: error.message, topic: item.rec.topic }, 'InfluxDB refused a rejected-message point; dropping it');
        return true;
      }
      const reason = `InfluxDB refused the point: ${error.message}`.slice(0, 1000);
      reject(INFLUX_REJECTED, reason, item.rec, item, influxRejected);
      return true;
    }
    return false;
  }

  async function run(): Promise<void> {
    // Create the database before the first message, so readers can query it at once; retried until
    // InfluxDB answers (the spool keeps accepting meanwhile).
    if (!(await ensureDatabase())) return;
    let pos = spool.checkpoint();
    /** Batches on the wire, oldest first; each resolves false only when closing cut it short. */
    const inFlight: Array<{ end: number; done: Promise<boolean> }> = [];
    /** Waits for the oldest batch and advances the checkpoint past it (in spool order). */
    const finishOldest = async (): Promise<boolean> => {
      const b = inFlight.shift();
      if (b === undefined || !(await b.done)) return false;
      st.batches++;
      await spool.advance(b.end);
      deps.onProgress?.();
      return true;
    };
    while (!closed) {
      if (inFlight.length >= concurrency) {
        if (!(await finishOldest())) break;
        continue;
      }
      const batch = await spool.read(pos, maxPoints);
      if (batch.records.length === 0) {
        if (batch.end !== pos) pos = batch.end;
        else if (inFlight.length > 0) {
          if (!(await finishOldest())) break;
        } else {
          await Promise.race([spool.waitForData(), closedPromise]);
          // Let a batch build up: up to `maxPoints` or `lingerMs`, whichever first.
          if (!closed && lingerMs > 0 && spool.end() - pos < maxPoints * 64) await sleep(lingerMs);
        }
        continue;
      }
      const items = toItems(batch.records);
      inFlight.push({ end: batch.end, done: writeBatch(items) });
      pos = batch.end;
    }
    // Closing: let the batches on the wire finish (or be cut by close), keeping the checkpoint exact.
    while (inFlight.length > 0) if (!(await finishOldest())) break;
    await Promise.all(inFlight.map((b) => b.done));
  }

  /** One batch and the rejected points InfluxDB refused in it; false only when closing interrupted it. */
  async function writeBatch(items: readonly Item[]): Promise<boolean> {
    const influxRejected: Item[] = [];
    const raw = items.filter((i) => i.rp === RP_RAW);
    const records = raw.length === items.length ? [] : items.filter((i) => i.rp !== RP_RAW);
    if (!(await writeItems(raw, influxRejected)) || !(await writeItems(records, influxRejected))) return false;
    return writeItems(influxRejected, []);
  }

  return {
    start() {
      if (loop !== undefined) return;
      loop = run().catch((err: unknown) => {
        // A bug or a dead disk: say so loudly; the process's health endpoint turns 503.
        st.lastError = (err as Error).message;
        st.failingSince ??= now();
        logger.fatal({ err, code: 'INGEST_WRITER_STOPPED' }, 'spool drain stopped');
      });
    },
    async close() {
      closed = true;
      closedResolve();
      for (const w of [...wakers]) w();
      if (loop === undefined) return;
      // Give an in-flight write a moment to finish so its checkpoint is kept; then cut it.
      const grace = new Promise<void>((r) => setTimeout(r, 2_000).unref());
      await Promise.race([loop, grace]);
      writer.close();
      await loop;
    },
    stats: () => ({ ...st }),
  };
}
