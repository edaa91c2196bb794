import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../contract/api.ts';
import { AlertMessage } from '../../contract/payloads.ts';
import { ID_PATTERN } from '../../contract/topics.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { HOME_KINDS, homeKind } from '../../contract/registry.ts';
import { canSeeHome, ownHomes, seesAllHomes } from '../access.ts';
import { str, type InfluxReader, type InfluxSeries } from '../../common/influx/reader.ts';
import { installErrorHandler, requireActor, RouteError, type ActorOf, type CountError } from './route-support.ts';
import {
  computeHomeStats, latestVersions, monthOf, monthWindow, onlineTime, statsCsv, MISSED_ESCALATION_REASONS, MONTH_PATTERN,
  type HomeStats, type MonthWindow, type StatusChange,
} from './stats-compute.ts';
import { residentTurnTally, type PresenceChange } from './stats-turns.ts';

/**
 * GET /api/stats?month=YYYY-MM[&home=h01]      per-home monthly statistics (JSON)
 * GET /api/stats.csv?month=YYYY-MM[&home=h01]  the same numbers as CSV
 *
 * From the `alert` measurement (alerts/persistence/alert-store.ts: each change's full AlertMessage in
 * the `json` field; the highest `version` per id is the alert's final state), `alert_audit`
 * (escalation reasons), `status`, and the repositioning history: `turn` and `bed_presence`
 * (alerts/persistence/turn-history.ts) plus `care_action` `turned` (staff turns recorded before the
 * turn history existed). Definitions: docs/statistics.md. Staff and directors get their own home
 * only; bureau and admin every home.
 */

export const StatsQuery = Type.Object(
  {
    month: Type.Optional(Type.String({ pattern: MONTH_PATTERN, description: 'YYYY-MM, local time (UTC+8); default the current month' })),
    home: Type.Optional(Type.String({ pattern: ID_PATTERN })),
    /** Issue 15: only care homes, or only households (elders living at home). */
    kind: Type.Optional(Type.Union(HOME_KINDS.map((k) => Type.Literal(k)))),
  },
  { additionalProperties: false },
);
export type StatsQuery = Static<typeof StatsQuery>;

const Nullable = (t: ReturnType<typeof Type.Number>) => Type.Union([t, Type.Null()]);
const Distribution = Type.Object({ n: Type.Integer(), medianS: Nullable(Type.Number()), p95S: Nullable(Type.Number()) });
const ResponseTimes = Type.Object({ alerts: Type.Integer(), timeToAcknowledge: Distribution, timeToResolve: Distribution });
export const HomeStatsSchema = Type.Object({
  homeId: Type.String(),
  kind: Type.Optional(Type.Union(HOME_KINDS.map((k) => Type.Literal(k)))),
  providerId: Type.Optional(Type.String()),
  month: Type.String(),
  alerts: Type.Integer(),
  byClass: Type.Object({ alarm: Type.Integer(), supervisory: Type.Integer(), trouble: Type.Integer(), care: Type.Integer() }),
  fireAlarms: Type.Integer(),
  fireAlarmsConfirmed: Type.Integer(),
  falseAlarms: Type.Integer(),
  falseAlarmRate: Nullable(Type.Number()),
  timeToAcknowledge: Distribution,
  timeToResolve: Distribution,
  fireEmergencies: ResponseTimes,
  careEmergencies: ResponseTimes,
  escalatedUnacknowledged: Type.Integer(),
  resolvedUnacknowledged: Type.Integer(),
  missedAlerts: Type.Integer(),
  devicesReporting: Type.Integer(),
  deviceOnlineRate: Nullable(Type.Number()),
  residentsWithTurnData: Type.Integer(),
  turnsBySensor: Type.Integer(),
  turnsByStaff: Type.Integer(),
  turnsDue: Type.Integer(),
  turnsOnTime: Type.Integer(),
  turnsLate: Type.Integer(),
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
  const ids = homesOf(q, actor, registry);
  if (q.kind === undefined) return ids;
  return ids.filter((id) => {
    const h = registry.home(id);
    return h !== undefined && homeKind(h) === q.kind;
  });
}

function homesOf(q: StatsQuery, actor: Parameters<typeof canSeeHome>[0], registry: RegistryIndex): string[] {
  if (q.home !== undefined) {
    // Another home's id answers exactly like an unknown one, so ids cannot be probed.
    if (registry.home(q.home) === undefined || !canSeeHome(actor, q.home)) throw new RouteError(404, 'API_NOT_FOUND', `no home ${q.home}`);
    return [q.home];
  }
  if (seesAllHomes(actor)) return registry.site.homes.map((h) => h.id);
  const own = ownHomes(actor);
  if (own.length === 0) throw new RouteError(403, 'AUTH_FORBIDDEN', `user ${actor.username} has no home`);
  return [...own];
}

/** Rows of `GROUP BY <tag>` series as (tag value → [time, first non-time column]). */
function byTag(series: readonly InfluxSeries[], tag: string): Map<string, Array<[number, unknown]>> {
  const out = new Map<string, Array<[number, unknown]>>();
  for (const s of series) {
    const key = s.tags?.[tag];
    if (key === undefined) continue;
    const i = s.columns.indexOf('time');
    const j = s.columns.findIndex((c) => c !== 'time');
    const rows = out.get(key) ?? [];
    for (const row of s.values) if (typeof row[i] === 'number') rows.push([row[i], row[j]]);
    out.set(key, rows);
  }
  return out;
}

function statusByDevice(series: readonly InfluxSeries[]): Map<string, StatusChange[]> {
  const out = new Map<string, StatusChange[]>();
  for (const [device, rows] of byTag(series, 'device')) out.set(device, rows.flatMap(([ts, v]) => (typeof v === 'boolean' ? [{ ts, online: v }] : [])));
  return out;
}

function presenceByResident(series: readonly InfluxSeries[]): Map<string, PresenceChange[]> {
  const out = new Map<string, PresenceChange[]>();
  for (const [resident, rows] of byTag(series, 'resident')) out.set(resident, rows.flatMap(([ts, v]) => (typeof v === 'boolean' ? [{ ts, inBed: v }] : [])));
  return out;
}

/** Turn times per resident (and source), each ms once: a staff turn is in `turn` and in `care_action`. */
function turnTimes(series: readonly InfluxSeries[], into: Map<string, Set<number>>): void {
  for (const [resident, rows] of byTag(series, 'resident')) {
    const set = into.get(resident) ?? new Set<number>();
    for (const [ts] of rows) set.add(ts);
    into.set(resident, set);
  }
}

/**
 * The parsed `json` field of every row. A damaged row is skipped: statistics must not fail on one
 * bad stored change.
 */
function* jsonRows(series: readonly InfluxSeries[]): Generator<unknown> {
  for (const s of series) {
    const col = s.columns.indexOf('json');
    for (const row of s.values) {
      const raw = row[col];
      if (typeof raw !== 'string') continue;
      try {
        yield JSON.parse(raw) as unknown;
      } catch {
        // skipped, as above
      }
    }
  }
}

function parseAlerts(series: readonly InfluxSeries[]): AlertMessage[] {
  const parsed: AlertMessage[] = [];
  for (const a of jsonRows(series)) if (checkAlert.Check(a)) parsed.push(a);
  return parsed;
}

/** Alert ids escalated because nobody acted in time (audit entries, alerts/lifecycle.ts AuditEntry). */
function escalatedByDeadline(series: readonly InfluxSeries[]): Set<string> {
  const out = new Set<string>();
  for (const row of jsonRows(series)) {
    const e = (typeof row === 'object' && row !== null ? row : {}) as { alertId?: unknown; reason?: unknown };
    if (typeof e.alertId === 'string' && typeof e.reason === 'string' && MISSED_ESCALATION_REASONS.has(e.reason)) out.add(e.alertId);
  }
  return out;
}

const DEFAULT_TURN_INTERVAL_MIN = 120;

export async function computeStats(deps: StatsDeps, window: MonthWindow, homeIds: readonly string[], now: number): Promise<HomeStats[]> {
  const homeFilter = homeIds.length === 1 ? ` AND home = ${str(homeIds[0] ?? '')}` : '';
  const end = Math.min(window.end, now);
  const inMonth = `time >= ${window.start}ms AND time < ${end}ms${homeFilter}`;
  const before = `time < ${window.start}ms${homeFilter}`;
  const [
    alertSeries = [], auditSeries = [], statusBefore = [], statusChanges = [],
    turnsIn = [], staffIn = [], turnBefore = [], staffBefore = [], bedBefore = [], bedIn = [],
  ] = await deps.influx.query(
    [
      `SELECT "json" FROM alert WHERE time >= ${window.start}ms AND time < ${window.end + SPILL_MS}ms${homeFilter}`,
      `SELECT "json" FROM alert_audit WHERE action = 'escalated' AND time >= ${window.start}ms AND time < ${window.end + SPILL_MS}ms${homeFilter}`,
      `SELECT LAST(online) FROM status WHERE ${before} GROUP BY device`,
      `SELECT online FROM status WHERE ${inMonth} GROUP BY device`,
      `SELECT interval_min FROM turn WHERE ${inMonth} GROUP BY resident, source`,
      `SELECT "by" FROM care_action WHERE action = 'turned' AND ${inMonth} GROUP BY resident`,
      `SELECT LAST(interval_min) FROM turn WHERE ${before} GROUP BY resident`,
      `SELECT LAST("by") FROM care_action WHERE action = 'turned' AND ${before} GROUP BY resident`,
      `SELECT LAST(in_bed) FROM bed_presence WHERE ${before} GROUP BY resident`,
      `SELECT in_bed FROM bed_presence WHERE ${inMonth} GROUP BY resident`,
    ].join('; '),
  );
  const alerts = latestVersions(parseAlerts(alertSeries)).filter((a) => a.raisedAt >= window.start && a.raisedAt < window.end);
  const escalated = escalatedByDeadline(auditSeries);
  const beforeBy = statusByDevice(statusBefore);
  const changesBy = statusByDevice(statusChanges);
  const sensorTurns = new Map<string, Set<number>>();
  const staffTurns = new Map<string, Set<number>>();
  turnTimes(turnsIn.filter((s) => s.tags?.source === 'sensor'), sensorTurns);
  turnTimes([...turnsIn.filter((s) => s.tags?.source === 'staff'), ...staffIn], staffTurns);
  const lastBefore = new Map<string, number>();
  for (const [resident, rows] of [...byTag(turnBefore, 'resident'), ...byTag(staffBefore, 'resident')]) {
    for (const [ts] of rows) lastBefore.set(resident, Math.max(ts, lastBefore.get(resident) ?? ts));
  }
  const presenceBefore = presenceByResident(bedBefore);
  const presence = presenceByResident(bedIn);
  return homeIds.map((homeId) => {
    const residents = deps.registry.residentsOfHome(homeId);
    let turnsBySensor = 0;
    let turnsByStaff = 0;
    const residentTurns = residents.map((r) => {
      const sensor = sensorTurns.get(r.id) ?? new Set<number>();
      const staff = staffTurns.get(r.id) ?? new Set<number>();
      turnsBySensor += sensor.size;
      turnsByStaff += staff.size;
      const pb = presenceBefore.get(r.id)?.at(-1);
      const tb = lastBefore.get(r.id);
      return residentTurnTally({
        intervalMs: (r.turnIntervalMin ?? DEFAULT_TURN_INTERVAL_MIN) * 60_000,
        start: window.start,
        end,
        ...(pb !== undefined ? { presenceBefore: pb } : {}),
        presence: presence.get(r.id) ?? [],
        ...(tb !== undefined ? { turnBefore: tb } : {}),
        turns: [...sensor, ...staff],
      });
    });
    const home = deps.registry.home(homeId);
    const kind = home !== undefined ? homeKind(home) : 'care-home';
    const stats = computeHomeStats({
      homeId,
      window,
      alerts: alerts.filter((a) => a.homeId === homeId),
      escalatedByDeadline: escalated,
      deviceOnline: deps.registry.devicesOfHome(homeId).map((d) => onlineTime(beforeBy.get(d.id)?.at(-1)?.online, changesBy.get(d.id) ?? [], window.start, end)),
      residentTurns,
      turnsBySensor,
      turnsByStaff,
    });
    return { ...stats, kind, ...(home?.providerId !== undefined ? { providerId: home.providerId } : {}) };
  });
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
        summary: 'Per-home statistics for a month: alerts by class, false-alarm rate, response times (all, fire and care emergencies), missed alerts, device online rate, turns on time (docs/statistics.md)',
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
