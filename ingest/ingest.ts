import { createServer, type Server } from 'node:http';
import { systemClock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import type { MetricName } from '../contract/metrics.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import { sharedFilter } from '../contract/topics.ts';
import { deviceFilters, staleFilters } from '../common/homes.ts';

const CHANNELS = ['telemetry', 'event', 'status'] as const;
import type { ReceiveStamp } from '../contract/device-message.ts';
import type { RetentionConfig } from '../common/influx-schema.ts';
import { openInfluxDatabase } from '../common/influx/database.ts';
import { createInfluxWriter, type InfluxWriter } from './influx-writer.ts';
import { createMqttSession, type MqttSession, type ReceivedMessage } from '../common/mqtt-session.ts';
import type { IngestRejectCode } from './points.ts';
import { createRejectionLog } from './rejections.ts';
import { createSpool, type Spool } from './spool.ts';
import type { Registry } from 'prom-client';
import { handleOpsRequest } from '../common/metrics.ts';
import { createIngestMetrics, ingestProblems } from './metrics.ts';

/**
 * The ingest process: MQTT (persistent QoS 1 session) → WAL spool → InfluxDB. A message is
 * acknowledged to the broker only after it is fdatasync'ed in the spool; many messages share one
 * write, one fdatasync and one socket write of PUBACKs (group commit).
 */

export interface IngestConfig {
  readonly mqttUrl: string;
  readonly username: string;
  readonly password: string;
  readonly clientId: string;
  readonly influxUrl: string;
  readonly influxDb: string;
  readonly spoolDir: string;
  readonly spoolMaxBytes: number;
  readonly spoolSegmentBytes?: number;
  /** Health and metrics endpoint port (/health, /stats, /healthz, /metrics); 0 picks a free one, undefined disables it. */
  readonly httpPort?: number;
  /** Interface of that endpoint (default 127.0.0.1; 0.0.0.0 for a Prometheus in another container). */
  readonly httpHost?: string;
  /** How long InfluxDB keeps raw readings, their aggregates and the records (common/influx-schema.ts). */
  readonly retention?: RetentionConfig;
  readonly keepaliveS?: number;
  /** Who stamps the receive time (contract/device-message.ts ReceiveStamp): `broker` (default, carewatch's broker) or `service` (Mosquitto). */
  readonly receiveStamp?: ReceiveStamp;
  /**
   * Subscribe as a member of the shared subscription `$share/{shareGroup}/…` (contract/topics.ts
   * sharedFilter): the broker gives each message to one member, so instances split the telemetry.
   * Needs a broker that has shared subscriptions (Mosquitto 2, not aedes 1.x) and a distinct
   * `clientId` per instance. Unset (default): every message to this instance.
   */
  readonly shareGroup?: string;
  /**
   * Issue 14 (docs/scaling-services.md): subscribe to these homes' devices only; unset: every home.
   * Give each instance its own `clientId` (its persistent session).
   */
  readonly homes?: readonly string[];
  /** Every home of the registry: filters of homes no longer owned are dropped from the session. */
  readonly allHomes?: readonly string[];
  /** /health turns 503 after InfluxDB writes have failed this long. */
  readonly influxUnhealthyMs?: number;
  readonly batchMaxPoints?: number;
  readonly batchLingerMs?: number;
  readonly retryMaxMs?: number;
}

export interface IngestDeps {
  readonly config: IngestConfig;
  readonly registry: RegistryIndex;
  readonly logger: Logger;
  readonly now?: () => number;
}

export interface IngestStats {
  readonly received: number;
  /** Retained copies re-sent on SUBSCRIBE, not stored when ingest stamps the receive time (receiveStamp `service`). */
  readonly retainedSkipped: number;
  readonly acked: number;
  readonly written: number;
  readonly rejected: Readonly<Partial<Record<IngestRejectCode, number>>>;
  readonly rejectedTotal: number;
  /** Out-of-range readings stored with their flag, per metric (docs/protocol.md "Out-of-range readings"). */
  readonly outOfRange: Readonly<Partial<Record<MetricName, number>>>;
  readonly outOfRangeTotal: number;
  /** Events and statuses stored at the broker's time because the device clock was off, per channel (docs/protocol.md "Device clock"). */
  readonly clockSkew: Readonly<Partial<Record<'event' | 'status', number>>>;
  readonly spool: { readonly bytes: number; readonly segments: number; readonly checkpoint: number; readonly end: number; readonly commits: number; readonly truncatedTailBytes: number; readonly corruptSkipped: number };
  readonly mqtt: { readonly connected: boolean; readonly subscribed: boolean; readonly paused: boolean; readonly connections: number };
  readonly influx: { readonly failures: number; readonly failingSince: number | null; readonly lastError: string | null; readonly batches: number };
}

export interface Ingest {
  start(): Promise<void>;
  close(): Promise<void>;
  stats(): IngestStats;
  /** Resolves when the broker has confirmed the first subscription. */
  subscribed(): Promise<void>;
  /** The health endpoint's port, once started. */
  httpPort(): number | undefined;
  /** Prometheus metrics (GET /metrics on the health port). */
  readonly metrics: Registry;
}

/** Reading resumes once the spool is below this share of its bound (hysteresis against flapping). */
const RESUME_RATIO = 0.9;

export function createIngest(deps: IngestDeps): Ingest {
  const { config, registry } = deps;
  const logger = deps.logger;
  const now = deps.now ?? Date.now;
  let spool: Spool | undefined;
  let session: MqttSession | undefined;
  let writer: InfluxWriter | undefined;
  let server: Server | undefined;
  // Timers write a window's "suppressed N more" line when it ends, so a flood that stopped is summed up too.
  const rejections = createRejectionLog(logger.child({ component: 'rejections' }), now, 10, 10_000, 'rejected message', systemClock);
  const outOfRange = createRejectionLog<MetricName>(logger.child({ component: 'out-of-range' }), now, 10, 10_000, 'out-of-range reading stored, flagged', systemClock);
  const clockSkew = createRejectionLog<'event' | 'status'>(logger.child({ component: 'clock-skew' }), now, 10, 10_000, 'device clock outside the window: stored at the broker time, flagged', systemClock);
  let received = 0;
  let retainedSkipped = 0;
  let closing = false;
  let committing: Promise<void> | undefined;
  let commitAgain = false;
  let toAck = new Map<number, number[]>();

  function onMessages(msgs: ReceivedMessage[]): void {
    const s = spool;
    if (s === undefined || closing) return;
    const t = now();
    for (const m of msgs) {
      // Stamping on receipt, a retained copy re-sent at each SUBSCRIBE (a will has no ts of its own)
      // would be stored again at a new time; our persistent session already had the live one.
      if (m.retain === true && config.receiveStamp === 'service') retainedSkipped++;
      else s.append(m.topic, m.payload, t);
      if (m.qos === 1) {
        const list = toAck.get(m.connection);
        if (list === undefined) toAck.set(m.connection, [m.messageId]);
        else list.push(m.messageId);
      }
    }
    received += msgs.length;
    if (s.isFull() && session !== undefined && !session.stats().paused) {
      session.pause();
      logger.warn({ code: 'INGEST_BACKPRESSURE', spoolBytes: s.stats().bytes, maxBytes: config.spoolMaxBytes }, 'spool full: stopped reading from the broker, which keeps the messages in our session');
    }
    groupCommit();
  }

  /** One commit at a time; whatever arrives meanwhile goes into the next one. */
  function groupCommit(): void {
    if (committing !== undefined) {
      commitAgain = true;
      return;
    }
    const acks = toAck;
    toAck = new Map();
    committing = (spool as Spool)
      .commit()
      .then(
        () => {
          for (const [conn, ids] of acks) session?.ack(conn, ids);
        },
        (err: unknown) => logger.error({ err, code: 'INGEST_SPOOL_IO' }, 'spool commit failed; messages stay unacknowledged and will be redelivered'),
      )
      .finally(() => {
        committing = undefined;
        if (commitAgain) {
          commitAgain = false;
          groupCommit();
        }
      });
  }

  function onProgress(): void {
    const s = spool;
    if (s !== undefined && !closing && session?.stats().paused && s.stats().bytes < config.spoolMaxBytes * RESUME_RATIO) {
      session.resume();
      logger.info({ spoolBytes: s.stats().bytes }, 'spool has room again: resumed reading from the broker');
    }
  }

  function stats(): IngestStats {
    const sp = spool?.stats();
    const ms = session?.stats();
    const ws = writer?.stats();
    return {
      received,
      retainedSkipped,
      acked: ms?.acked ?? 0,
      written: ws?.written ?? 0,
      rejected: rejections.counts(),
      rejectedTotal: rejections.total(),
      outOfRange: outOfRange.counts(),
      outOfRangeTotal: outOfRange.total(),
      clockSkew: clockSkew.counts(),
      spool: {
        bytes: sp?.bytes ?? 0,
        segments: sp?.segments ?? 0,
        checkpoint: sp?.checkpoint ?? 0,
        end: sp?.end ?? 0,
        commits: sp?.commits ?? 0,
        truncatedTailBytes: sp?.truncatedTailBytes ?? 0,
        corruptSkipped: sp?.corruptSkipped ?? 0,
      },
      mqtt: { connected: ms?.connected ?? false, subscribed: ms?.subscribed ?? false, paused: ms?.paused ?? false, connections: ms?.connections ?? 0 },
      influx: { failures: ws?.failures ?? 0, failingSince: ws?.failingSince ?? null, lastError: ws?.lastError ?? null, batches: ws?.batches ?? 0 },
    };
  }

  function problems(s: IngestStats): string[] {
    return ingestProblems(s, now(), config.influxUnhealthyMs ?? 60_000);
  }
  function healthy(s: IngestStats): boolean {
    return problems(s).length === 0;
  }

  const metrics = createIngestMetrics(stats, now);
  const ops = { registry: metrics.registry, problems: () => problems(stats()) };

  async function startHttp(port: number): Promise<void> {
    const srv = createServer((req, res) => {
      if (handleOpsRequest(req, res, ops, logger)) return;
      if (req.method === 'GET' && (req.url === '/health' || req.url === '/stats')) {
        const s = stats();
        res.writeHead(healthy(s) ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify(s));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not found"}');
    });
    server = srv;
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, config.httpHost ?? '127.0.0.1', () => resolve());
    });
  }

  const ingest: Ingest = {
    async start() {
      spool = createSpool({ dir: config.spoolDir, maxBytes: config.spoolMaxBytes, segmentBytes: config.spoolSegmentBytes, logger: logger.child({ component: 'spool' }) });
      await spool.open();
      const db = openInfluxDatabase({ url: config.influxUrl, database: config.influxDb, enforce: true, ...(config.retention !== undefined ? { retention: config.retention } : {}) });
      writer = createInfluxWriter({
        spool,
        writer: db.writer,
        async ensureDatabase() {
          const report = await db.ensureDatabase();
          for (const change of [...report.created, ...report.altered]) logger.info({ database: config.influxDb, change }, 'InfluxDB schema');
        },
        registry,
        rejections,
        outOfRange,
        clockSkew,
        logger: logger.child({ component: 'influx-writer' }),
        now,
        ...(config.receiveStamp !== undefined ? { receiveStamp: config.receiveStamp } : {}),
        onProgress,
        maxPoints: config.batchMaxPoints,
        lingerMs: config.batchLingerMs,
        retryMaxMs: config.retryMaxMs,
        timeWrite: metrics.timeWrite,
      });
      writer.start();
      session = createMqttSession({
        url: config.mqttUrl,
        clientId: config.clientId,
        username: config.username,
        password: config.password,
        keepaliveS: config.keepaliveS,
        filters: deviceFilters(CHANNELS, config.homes).map((f) => (config.shareGroup === undefined ? f : sharedFilter(config.shareGroup, f))),
        ...(config.homes !== undefined ? { unsubscribe: staleFilters(CHANNELS, config.homes, config.allHomes ?? config.homes) } : {}),
        logger: logger.child({ component: 'mqtt' }),
        onMessages,
        codePrefix: 'INGEST',
      });
      if (spool.isFull()) session.pause();
      session.start();
      if (config.httpPort !== undefined) await startHttp(config.httpPort);
    },
    async close() {
      // Stop taking new messages, make what arrived durable and acknowledge it, then leave.
      closing = true;
      session?.pause();
      while (committing !== undefined) await committing;
      await session?.close();
      await writer?.close();
      await spool?.close();
      // The last window's "suppressed N more" lines, so a flood that ended is still summed up.
      rejections.close();
      outOfRange.close();
      clockSkew.close();
      const srv = server;
      if (srv !== undefined) {
        srv.closeAllConnections();
        await new Promise<void>((r) => srv.close(() => r()));
      }
    },
    stats,
    metrics: metrics.registry,
    subscribed: () => session?.whenSubscribed() ?? Promise.reject(new Error('ingest not started')),
    httpPort() {
      const a = server?.address();
      return typeof a === 'object' && a !== null ? a.port : undefined;
    },
  };
  return ingest;
}
