import { createServer, type Server } from 'node:http';
import { systemClock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import type { MetricName } from '../contract/metrics.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import { sharedFilter } from '../contract/topics.ts';
import { deviceFilters, homeSessionId } from '../common/homes.ts';

const CHANNELS = ['telemetry', 'event', 'status'] as const;
import type { ReceiveStamp } from '../contract/device-message.ts';
import type { RetentionConfig } from '../common/influx-schema.ts';
import { openInfluxDatabase } from '../common/influx/database.ts';
import { createInfluxWriter, type InfluxWriter } from './influx-writer.ts';
import { createMqttSession, type MqttSession, type ReceivedMessage } from '../common/mqtt-session.ts';
import type { IngestRejectCode } from './points.ts';
import { createRejectionLog } from './rejections.ts';
import { MAX_SPOOL_TOPIC_BYTES, createSpool, type Spool } from './spool.ts';
import type { Registry } from 'prom-client';
import { handleOpsRequest, refuseMetrics, type MetricsAccess } from '../common/metrics.ts';
import { createIngestMetrics, ingestProblems } from './metrics.ts';

/**
 * The ingest process: MQTT (persistent QoS 1 session) → WAL spool → InfluxDB. A message is
 * acknowledged to the broker only after it is fdatasync'ed in the spool; many messages share one
 * write, one fdatasync and one socket write of PUBACKs (group commit).
 */

export interface IngestConfig {
  readonly mqttUrl: string;
  /** CA of the broker's certificate for an mqtts:// URL (default: the system's roots). */
  readonly mqttCa?: Buffer | undefined;
  readonly username: string;
  readonly password: string;
  readonly clientId: string;
  readonly influxUrl: string;
  readonly influxDb: string;
  readonly spoolDir: string;
  readonly spoolMaxBytes: number;
  readonly spoolSegmentBytes?: number;
  /**
   * Bytes received and not yet written to the spool (held in memory) past which ingest stops reading
   * from the broker, as at the spool's bound (default 16 MiB). A group commit writes what arrived in
   * a few milliseconds; only a spool disk that fails (full) or stalls lets them pile up. Before this
   * bound a full disk let ingest read on into memory up to spoolMaxBytes (512 MiB by default).
   */
  readonly spoolMaxUnwrittenBytes?: number;
  /** Health and metrics endpoint port (/health, /stats, /healthz, /metrics); 0 picks a free one, undefined disables it. */
  readonly httpPort?: number;
  /** Interface of that endpoint (default 127.0.0.1; 0.0.0.0 for a Prometheus in another container). */
  readonly httpHost?: string;
  /** Who may read /metrics, /health and /stats (common/metrics.ts MetricsAccess); undefined: anyone. */
  readonly metricsAccess?: MetricsAccess | undefined;
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
   * Issue 14 (docs/scaling.md "Services partitioned by home"): store these homes' devices only; unset: every home on one
   * session (`clientId`). Owned homes each get a persistent session of their own,
   * `{username}-home-{homeId}` (contract/topics.ts homeDeviceFilter): the session belongs to the
   * home, not to the instance, so while a home moves the broker keeps queueing its messages for
   * that session until the new owner connects it. Nothing is lost between the two restarts.
   */
  readonly homes?: readonly string[];
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
  readonly influx: { readonly failures: number; readonly failingSince: number | null; readonly lastError: string | null; readonly diskFull: boolean; readonly batches: number };
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
  const maxUnwritten = config.spoolMaxUnwrittenBytes ?? 16 * 1024 * 1024;
  let spool: Spool | undefined;
  let sessions: MqttSession[] = [];
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
  /** Per session, per connection: the message ids to acknowledge once the spool is synced. */
  let toAck = new Map<MqttSession, Map<number, number[]>>();

  function onMessages(from: MqttSession, msgs: ReceivedMessage[]): void {
    const s = spool;
    if (s === undefined || closing) return;
    const t = now();
    for (const m of msgs) {
      // Stamping on receipt, a retained copy re-sent at each SUBSCRIBE (a will has no ts of its own)
      // would be stored again at a new time; our persistent session already had the live one.
      if (m.retain === true && config.receiveStamp === 'service') retainedSkipped++;
      // No device topic comes near the bound; this one can only be junk (bytes that are not UTF-8, each
      // decoded as three: a broker that does not check them). Spooling it threw out of the socket's
      // reader, a crash at every redelivery of the unacknowledged message. Acknowledged, not stored.
      else if (Buffer.byteLength(m.topic) > MAX_SPOOL_TOPIC_BYTES) rejections.record('BAD_TOPIC', m.topic, `topic of ${Buffer.byteLength(m.topic)} bytes once decoded (not UTF-8?): over the ${MAX_SPOOL_TOPIC_BYTES}-byte bound, not stored`);
      else s.append(m.topic, m.payload, t);
      if (m.qos === 1) {
        let byConn = toAck.get(from);
        if (byConn === undefined) toAck.set(from, (byConn = new Map()));
        const list = byConn.get(m.connection);
        if (list === undefined) byConn.set(m.connection, [m.messageId]);
        else list.push(m.messageId);
      }
    }
    received += msgs.length;
    const unwritten = s.stats().unwritten;
    if ((s.isFull() || unwritten >= maxUnwritten) && sessions.length > 0 && !sessions.every((x) => x.stats().paused)) {
      for (const x of sessions) x.pause();
      if (s.isFull()) logger.warn({ code: 'INGEST_BACKPRESSURE', spoolBytes: s.stats().bytes, maxBytes: config.spoolMaxBytes }, 'spool full: stopped reading from the broker, which keeps the messages in our session');
      else logger.warn({ code: 'INGEST_BACKPRESSURE', unwrittenBytes: unwritten, maxUnwrittenBytes: maxUnwritten }, 'spool writes behind (disk full or stalled): stopped reading from the broker, which keeps the messages in our session');
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
          for (const [from, byConn] of acks) for (const [conn, ids] of byConn) from.ack(conn, ids);
          // The writes caught up (a full disk has room again): reading may resume.
          onProgress();
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
    const st = s?.stats();
    if (s !== undefined && st !== undefined && !closing && sessions.some((x) => x.stats().paused) && st.bytes < config.spoolMaxBytes * RESUME_RATIO && st.unwritten < maxUnwritten * RESUME_RATIO) {
      for (const x of sessions) x.resume();
      logger.info({ spoolBytes: s.stats().bytes }, 'spool has room again: resumed reading from the broker');
    }
  }

  function stats(): IngestStats {
    const sp = spool?.stats();
    const all = sessions.map((x) => x.stats());
    const ms =
      all.length === 0
        ? undefined
        : {
            acked: all.reduce((n, x) => n + x.acked, 0),
            connected: all.every((x) => x.connected),
            subscribed: all.every((x) => x.subscribed),
            paused: all.some((x) => x.paused),
            connections: all.reduce((n, x) => n + x.connections, 0),
          };
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
      influx: { failures: ws?.failures ?? 0, failingSince: ws?.failingSince ?? null, lastError: ws?.lastError ?? null, diskFull: ws?.diskFull ?? false, batches: ws?.batches ?? 0 },
    };
  }

  function problems(s: IngestStats): string[] {
    return ingestProblems(s, now(), config.influxUnhealthyMs ?? 60_000);
  }
  function healthy(s: IngestStats): boolean {
    return problems(s).length === 0;
  }

  const metrics = createIngestMetrics(stats, now);
  const ops = { registry: metrics.registry, problems: () => problems(stats()), access: config.metricsAccess };

  async function startHttp(port: number): Promise<void> {
    const srv = createServer((req, res) => {
      if (handleOpsRequest(req, res, ops, logger)) return;
      if (req.method === 'GET' && (req.url === '/health' || req.url === '/stats')) {
        // What /healthz does not say (counts, the spool, the last errors) is the metrics' to guard.
        if (refuseMetrics(req, res, config.metricsAccess)) return;
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
      const share = (f: string): string => (config.shareGroup === undefined ? f : sharedFilter(config.shareGroup, f));
      const plan: Array<{ clientId: string; filters: string[]; home?: string }> =
        config.homes === undefined
          ? [{ clientId: config.clientId, filters: deviceFilters(CHANNELS, undefined).map(share) }]
          : config.homes.map((h) => ({ clientId: homeSessionId(config.username, h), filters: deviceFilters(CHANNELS, [h]).map(share), home: h }));
      sessions = plan.map((p) => {
        const session: MqttSession = createMqttSession({
          url: config.mqttUrl,
          ca: config.mqttCa,
          clientId: p.clientId,
          username: config.username,
          password: config.password,
          keepaliveS: config.keepaliveS,
          filters: p.filters,
          logger: logger.child({ component: 'mqtt', ...(p.home !== undefined ? { home: p.home } : {}) }),
          onMessages: (msgs) => onMessages(session, msgs),
          codePrefix: 'INGEST',
        });
        return session;
      });
      for (const x of sessions) {
        if (spool.isFull()) x.pause();
        x.start();
      }
      if (config.httpPort !== undefined) await startHttp(config.httpPort);
    },
    async close() {
      // Stop taking new messages, make what arrived durable and acknowledge it, then leave.
      closing = true;
      for (const x of sessions) x.pause();
      while (committing !== undefined) await committing;
      await Promise.all(sessions.map((x) => x.close()));
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
    subscribed: () => (sessions.length > 0 ? Promise.all(sessions.map((x) => x.whenSubscribed())).then(() => undefined) : Promise.reject(new Error('ingest not started'))),
    httpPort() {
      const a = server?.address();
      return typeof a === 'object' && a !== null ? a.port : undefined;
    },
  };
  return ingest;
}
