import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../contract/api.ts';
import { AlertMessage } from '../../contract/payloads.ts';
import { ID_PATTERN } from '../../contract/topics.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { canSeeHome, seesAllHomes } from '../access.ts';
import { str, type InfluxReader, type InfluxSeries } from './influxql.ts';
import { installErrorHandler, requireActor, RouteError, type ActorOf, type CountError } from './route-support.ts';
import {
  computeHomeStats, latestVersions, monthOf, monthWindow, onlineFraction, statsCsv, MONTH_PATTERN,
  type HomeStats, type MonthWindow, type StatusChange,
} from './stats-compute.ts';

/**
 * GET /api/stats?month=YYYY-MM[&home=h01]      per-home monthly statistics (JSON)
 * GET /api/stats.csv?month=YYYY-MM[&home=h01]  the same numbers as CSV
 *
 * From the `alert` measurement (alerts/persistence/alert-store.ts) (each change's full AlertMessage in the `json` field; the highest
 * `version` per id is the alert's final state) the `status` measurement and
 * `care_action` (action tag `turned`). Staff and directors
 * get their own home only; bureau and admin every home.
 */

export const StatsQuery = Type.Object(
  {
    month: Type.Optional(Type.String({ pattern: MONTH_PATTERN, description: 'YYYY-MM, local time (UTC+8); default the current month' })),
    home: Type.Optional(Type.String({ pattern: ID_PATTERN })),
  },
  { additionalProperties: false },
);
export type StatsQuery = Static<typeof StatsQuery>;

const Nullable = (t: ReturnType<typeof Type.Number>) => Type.Union([t, Type.Null()]);
const Distribution = Type.Object({ n: Type.Integer(), medianS: Nullable(Type.Number()), p95S: Nullable(Type.Number()) });
export const HomeStatsSchema = Type.Object({
  homeId: Type.String(),
  month: Type.String(),
  alerts: Type.Integer(),
  byClass: Type.Object({ alarm: Type.Integer(), supervisory: Type.Integer(), trouble: Type.Integer(), care: Type.Integer() }),
  fireAlarms: Type.Integer(),
  fireAlarmsConfirmed: Type.Integer(),
  falseAlarms: Type.Integer(),
  falseAlarmRate: Nullable(Type.Number()),
  timeToAcknowledge: Distribution,
  timeToResolve: Distribution,
  devicesReporting: Type.Integer(),
  deviceOnlineRate: Nullable(Type.Number()),
  turnsExpected: Type.Integer(),
  turnsRecorded: Type.Integer(),
  turnsOverdue: Type.Integer(),
  turnsOnTimeRate: Nullable(Type.Number()),
});
export const StatsResponse = Type.Object({ month: Type.String(), from: Type.Number(), to: Type.Number(), homes: Type.Array(HomeStatsSchema) });
export type StatsResponse = Static<typeof StatsResponse>;

export interface StatsDeps {
  readonly registry: RegistryIndex;
  readonly influx: InfluxReader;
  readonly actorOf: ActorOf;
  readonly now?: () => number;
  /** Local time zone offset for month boundaries, minutes east of UTC (default 480, China). */
  readonly utcOffsetMin?: number;
  readonly countError?: CountError;
}

const checkAlert = TypeCompiler.Compile(AlertMessage);
/** An alert raised late in a month may be resolved early the next; look this far past the end. */
const SPILL_MS = 7 * 24 * 3_600_000;

function homesFor(q: StatsQuery, actor: Parameters<typeof canSeeHome>[0], registry: RegistryIndex): string[] {
  if (q.home !== undefined) {
    if (registry.home(q.home) === undefined) throw new RouteError(404, 'API_NOT_FOUND', `no home ${q.home}`);
    if (!canSeeHome(actor, q.home)) throw new RouteError(403, 'AUTH_FORBIDDEN', 'you may not see another home');
    return [q.home];
  }
  if (seesAllHomes(actor)) return registry.site.homes.map((h) => h.id);
  if (actor.homeId === undefined) throw new RouteError(403, 'AUTH_FORBIDDEN', `user ${actor.username} has no home`);
  return [actor.homeId];
}

function statusByDevice(series: readonly InfluxSeries[]): Map<string, StatusChange[]> {
  const out = new Map<string, StatusChange[]>();
  for (const s of series) {
    const device = s.tags?.device;
    if (device === undefined) continue;
    const i = s.columns.indexOf('time');
    const j = s.columns.findIndex((c) => c !== 'time');
    out.set(device, s.values.flatMap((row) => (typeof row[i] === 'number' && typeof row[j] === 'boolean' ? [{ ts: row[i], online: row[j] }] : [])));
  }
  return out;
}

export async function computeStats(deps: StatsDeps, window: MonthWindow, homeIds: readonly string[], now: number): Promise<HomeStats[]> {
  const homeFilter = homeIds.length === 1 ? ` AND home = ${str(homeIds[0] ?? '')}` : '';
  const [alertSeries = [], before = [], changes = [], turns = []] = await deps.influx.query(
    [
      `SELECT "json" FROM alert WHERE time >= ${window.start}ms AND time < ${window.end + SPILL_MS}ms${homeFilter}`,
      `SELECT LAST(online) FROM status WHERE time < ${window.start}ms${homeFilter} GROUP BY device`,
      `SELECT online FROM status WHERE time >= ${window.start}ms AND time < ${window.end}ms${homeFilter} GROUP BY device`,
      `SELECT COUNT("by") FROM care_action WHERE action = 'turned' AND time >= ${window.start}ms AND time < ${window.end}ms${homeFilter} GROUP BY home`,
    ].join('; '),
  );
  const parsed: AlertMessage[] = [];
  for (const s of alertSeries) {
    const col = s.columns.indexOf('json');
    for (const row of s.values) {
      const raw = row[col];
      if (typeof raw !== 'string') continue;
      try {
        const a: unknown = JSON.parse(raw);
        if (checkAlert.Check(a)) parsed.push(a);
      } catch {
        // A damaged row is skipped: statistics must not fail on one bad stored change.
      }
    }
  }
  const alerts = latestVersions(parsed).filter((a) => a.raisedAt >= window.start && a.raisedAt < window.end);
  const beforeBy = statusByDevice(before);
  const changesBy = statusByDevice(changes);
  const end = Math.min(window.end, now);
  return homeIds.map((homeId) =>
    computeHomeStats({
      homeId,
      window,
      now,
      alerts: alerts.filter((a) => a.homeId === homeId),
      deviceOnline: deps.registry.devicesOfHome(homeId).map((d) => {
        const b = beforeBy.get(d.id)?.at(-1)?.online;
        return onlineFraction(b, changesBy.get(d.id) ?? [], window.start, end);
      }),
      turnIntervalsMin: deps.registry.residentsOfHome(homeId).map((r) => r.turnIntervalMin),
      turnsRecorded: Number(turns.find((s) => s.tags?.home === homeId)?.values[0]?.[1] ?? 0),
    }),
  );
}

export async function statsRoutes(app: FastifyInstance, opts: StatsDeps): Promise<void> {
  installErrorHandler(app, opts.countError);
  const now = opts.now ?? Date.now;
  const offset = opts.utcOffsetMin ?? 480;

  async function handle(request: FastifyRequest<{ Querystring: StatsQuery }>): Promise<StatsResponse> {
    const actor = await requireActor(opts.actorOf, request);
    const t = now();
    const window = monthWindow(request.query.month ?? monthOf(t, offset), offset);
    const homes = homesFor(request.query, actor, opts.registry);
    return { month: window.month, from: window.start, to: window.end, homes: await computeStats(opts, window, homes, t) };
  }

  app.get<{ Querystring: StatsQuery }>(
    '/api/stats',
    {
      schema: {
        summary: 'Per-home statistics for a month: alerts by class, false-alarm rate, response times, device online rate, turns on time',
        querystring: StatsQuery,
        response: { 200: StatsResponse, 400: ApiError, 401: ApiError, 403: ApiError, 404: ApiError, 503: ApiError },
      },
    },
    handle,
  );

  app.get<{ Querystring: StatsQuery }>(
    '/api/stats.csv',
    {
      schema: {
        summary: 'The same statistics as CSV, one row per home',
        querystring: StatsQuery,
        produces: ['text/csv'],
        response: { 200: Type.String({ description: 'text/csv' }), 400: ApiError, 401: ApiError, 403: ApiError, 404: ApiError, 503: ApiError },
      },
    },
    async (request, reply) => {
      const body = await handle(request);
      void reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="carewatch-stats-${body.month}.csv"`);
      return statsCsv(body.homes);
    },
  );
}
