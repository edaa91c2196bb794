import { RAW_TELEMETRY, ROLLUP_TELEMETRY, rollupField } from '../../common/influx-schema.ts';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { METRICS, METRIC_NAMES, type MetricName } from '../../contract/metrics.ts';
import { DEVICE_KINDS } from '../../contract/device-kinds.ts';
import { ID_PATTERN } from '../../contract/topics.ts';
import { ApiError } from '../../contract/api.ts';
import type { Device } from '../../contract/registry.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { canSeeHome } from '../access.ts';
import { ident, str, type InfluxReader } from '../../common/influx/reader.ts';
import { installErrorHandler, requireActor, RouteError, type ActorOf, type CountError } from './route-support.ts';

/**
 * GET /api/history — a device's or a resident's recent readings for the dashboard's small charts.
 * Inputs are checked strictly: ids against the id pattern and the registry, metric names only from
 * the catalogue (contract/metrics.ts), ranges from a fixed list, so nothing from the request reaches
 * InfluxQL unchecked. Staff and directors see only their own home.
 */

export const HISTORY_RANGES = { '15m': 15 * 60_000, '1h': 3_600_000, '6h': 6 * 3_600_000, '24h': 24 * 3_600_000, '7d': 7 * 24 * 3_600_000, '30d': 30 * 24 * 3_600_000, '365d': 365 * 24 * 3_600_000 } as const;
/**
 * Ranges up to this long read raw readings (kept 30 days by default); longer ones read the per-minute
 * aggregates (kept two years), whose buckets are hours wide anyway (common/influx-schema.ts).
 */
export const RAW_RANGE_MAX_MS = HISTORY_RANGES['7d'];
export type HistoryRange = keyof typeof HISTORY_RANGES;
/** About this many points per series: enough for a small SVG chart, cheap to send. */
const TARGET_POINTS = 240;

export const HistoryQuery = Type.Object(
  {
    device: Type.Optional(Type.String({ pattern: ID_PATTERN })),
    resident: Type.Optional(Type.String({ pattern: ID_PATTERN })),
    metric: Type.Optional(Type.Union(METRIC_NAMES.map((m) => Type.Literal(m)))),
    range: Type.Union(
      (Object.keys(HISTORY_RANGES) as HistoryRange[]).map((r) => Type.Literal(r)),
      { default: '6h' },
    ),
  },
  { additionalProperties: false },
);
export type HistoryQuery = Static<typeof HistoryQuery>;

export const HistorySeries = Type.Object({
  deviceId: Type.String(),
  metric: Type.String(),
  unit: Type.String(),
  /** Bucket start (ms) and the bucket's mean (numbers) or last value (booleans). */
  points: Type.Array(Type.Object({ t: Type.Number(), v: Type.Union([Type.Number(), Type.Boolean()]) })),
});
export const HistoryResponse = Type.Object({
  from: Type.Number(),
  to: Type.Number(),
  bucketMs: Type.Number(),
  series: Type.Array(HistorySeries),
});
export type HistoryResponse = Static<typeof HistoryResponse>;

/** What a resident's chart shows when no metric is asked for. */
const RESIDENT_DEFAULT_METRICS: readonly MetricName[] = ['heart_rate_bpm', 'spo2_pct', 'resp_rate_bpm', 'body_temp_c'];
/** A resident's metric comes from the most specific device: the vital-signs monitor before the bed sensor. */
const KIND_PREFERENCE = ['vital_signs_monitor', 'bed_sensor', 'wetness_sensor'];

export interface HistoryDeps {
  readonly registry: RegistryIndex;
  readonly influx: InfluxReader;
  readonly actorOf: ActorOf;
  /** Platform clock (ms); the default is Date.now. */
  readonly now?: () => number;
  readonly countError?: CountError;
}

function metricsOf(device: Device): readonly MetricName[] {
  return DEVICE_KINDS[device.kind].metrics;
}

/** The (device, metric) pairs a request asks for, after checking the registry and access. */
export function resolveTargets(q: HistoryQuery, registry: RegistryIndex, visible: (homeId: string) => boolean): { homeId: string; targets: Array<{ device: Device; metric: MetricName }> } {
  if ((q.device === undefined) === (q.resident === undefined)) {
    throw new RouteError(400, 'API_BAD_REQUEST', 'give exactly one of device or resident');
  }
  if (q.device !== undefined) {
    const device = registry.device(q.device);
    // Another home's device answers like an unknown one, before anything about it (its kind) is said.
    if (device === undefined || !visible(device.homeId)) throw new RouteError(404, 'API_NOT_FOUND', `no device ${q.device}`);
    const declared = metricsOf(device);
    if (q.metric !== undefined && !declared.includes(q.metric)) {
      throw new RouteError(400, 'API_BAD_REQUEST', `a ${device.kind} does not report ${q.metric}`);
    }
    const metrics = q.metric !== undefined ? [q.metric] : declared;
    return { homeId: device.homeId, targets: metrics.map((metric) => ({ device, metric })) };
  }
  const resident = registry.resident(q.resident ?? '');
  if (resident === undefined || !visible(resident.homeId)) throw new RouteError(404, 'API_NOT_FOUND', `no resident ${q.resident}`);
  const devices = [...registry.devicesOfResident(resident.id)].sort((a, b) => KIND_PREFERENCE.indexOf(a.kind) - KIND_PREFERENCE.indexOf(b.kind));
  const wanted = q.metric !== undefined ? [q.metric] : RESIDENT_DEFAULT_METRICS;
  const targets: Array<{ device: Device; metric: MetricName }> = [];
  for (const metric of wanted) {
    const device = devices.find((d) => metricsOf(d).includes(metric));
    if (device !== undefined) targets.push({ device, metric });
  }
  if (q.metric !== undefined && targets.length === 0) {
    throw new RouteError(400, 'API_BAD_REQUEST', `no device of resident ${resident.id} reports ${q.metric}`);
  }
  return { homeId: resident.homeId, targets };
}

export function bucketFor(rangeMs: number): number {
  return Math.max(5_000, Math.ceil(rangeMs / TARGET_POINTS / 1000) * 1000);
}

export async function historyRoutes(app: FastifyInstance, opts: HistoryDeps): Promise<void> {
  installErrorHandler(app, opts.countError);
  const now = opts.now ?? Date.now;
  app.get<{ Querystring: HistoryQuery }>(
    '/api/history',
    {
      schema: {
        summary: "A device's or a resident's recent readings, bucketed for a chart",
        querystring: HistoryQuery,
        response: { 200: HistoryResponse, 400: ApiError, 401: ApiError, 403: ApiError, 404: ApiError, 503: ApiError },
      },
    },
    async (request) => {
      const actor = await requireActor(opts.actorOf, request);
      const { homeId, targets } = resolveTargets(request.query, opts.registry, (h) => canSeeHome(actor, h));
      // Another home's device or resident answers exactly like an unknown one.
      if (!canSeeHome(actor, homeId)) throw new RouteError(404, 'API_NOT_FOUND', request.query.device !== undefined ? `no device ${request.query.device}` : `no resident ${request.query.resident}`);
      const to = now();
      const rangeMs = HISTORY_RANGES[request.query.range];
      const from = to - rangeMs;
      const bucketMs = bucketFor(rangeMs);
      if (targets.length === 0) return { from, to, bucketMs, series: [] };
      const statements = targets.map(({ device, metric }) => {
        // InfluxQL 1.x cannot average booleans; the last value per bucket is what a chart needs.
        const agg = METRICS[metric].type === 'boolean' ? 'last' : 'mean';
        if (rangeMs > RAW_RANGE_MAX_MS) {
          return `SELECT ${agg}(${ident(rollupField(agg, metric))}) AS v FROM ${ROLLUP_TELEMETRY} WHERE device = ${str(device.id)} AND time >= ${from}ms AND time <= ${to}ms GROUP BY time(${bucketMs}ms) fill(none)`;
        }
        return `SELECT ${agg}(${ident(metric)}) AS v FROM ${RAW_TELEMETRY} WHERE device = ${str(device.id)} AND time >= ${from}ms AND time <= ${to}ms GROUP BY time(${bucketMs}ms) fill(none)`;
      });
      const results = await opts.influx.query(statements.join('; '));
      const series = targets.map(({ device, metric }, i) => {
        const s = results[i]?.[0];
        const points = (s?.values ?? [])
          .map((row) => ({ t: Number(row[0]), v: row[1] }))
          .filter((p): p is { t: number; v: number | boolean } => typeof p.v === 'number' || typeof p.v === 'boolean')
          .map((p) => (typeof p.v === 'number' ? { t: p.t, v: Math.round(p.v * 100) / 100 } : p));
        return { deviceId: device.id, metric, unit: METRICS[metric].unit, points };
      });
      return { from, to, bucketMs, series };
    },
  );
}
