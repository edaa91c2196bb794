import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../contract/api.ts';
import type { AlertMessage } from '../../contract/payloads.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { ID_PATTERN } from '../../contract/topics.ts';
import { canSeeHome } from '../access.ts';
import { AlertsError } from '../errors.ts';
import { ident, rows, str, type InfluxReader } from '../../common/influx/reader.ts';
import { installErrorHandler, requireActor, RouteError, type ActorOf, type CountError } from './route-support.ts';

/**
 * GET /api/residents/:id/history?from&to — one resident's care history (issue 4, "Per-resident
 * history"): NEWS2 scores (measurement `news2`), the alerts about the resident with every version
 * they went through (measurement `alert`, plus the open ones still in memory, which may be newer
 * than InfluxDB), and the care actions staff recorded (measurement `care_action`). Staff and
 * directors see only residents of their own home; any other resident answers 404, exactly as one
 * that does not exist, so ids of other homes cannot be probed. from/to are epoch ms; the default is
 * the last 24 h and a request may span at most 93 days (a calendar quarter of monthly reports).
 */

const DAY_MS = 86_400_000;
export const MAX_SPAN_MS = 93 * DAY_MS;
/** Rows per measurement: ample for 93 days of one resident, bounded so a request cannot exhaust memory. */
const ROW_LIMIT = 20_000;

const Params = Type.Object({ id: Type.String({ pattern: ID_PATTERN }) });
export const ResidentHistoryQuery = Type.Object(
  {
    from: Type.Optional(Type.Integer({ minimum: 0 })),
    to: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type ResidentHistoryQuery = Static<typeof ResidentHistoryQuery>;

const ScorePoint = Type.Object({
  t: Type.Number(),
  aggregate: Type.Integer(),
  partial: Type.Boolean(),
  missing: Type.Array(Type.String()),
  risk: Type.String(),
  spo2Scale: Type.Optional(Type.Integer()),
  /** Parameter → its NEWS2 score, for the parameters that were available. */
  components: Type.Record(Type.String(), Type.Integer()),
});
const AlertVersion = Type.Object({
  version: Type.Integer(),
  ts: Type.Number(),
  state: Type.String(),
  severity: Type.String(),
  escalationLevel: Type.Integer(),
});
const AlertHistory = Type.Object({
  id: Type.String(),
  rule: Type.String(),
  category: Type.String(),
  signal: Type.String(),
  severity: Type.String(),
  state: Type.String(),
  raisedAt: Type.Number(),
  acknowledgedAt: Type.Optional(Type.Number()),
  acknowledgedBy: Type.Optional(Type.String()),
  resolvedAt: Type.Optional(Type.Number()),
  resolvedBy: Type.Optional(Type.String()),
  escalationLevel: Type.Integer(),
  message: Type.Object({ zh: Type.String(), en: Type.String() }),
  /** Every stored version, oldest first: the alert's lifecycle. */
  versions: Type.Array(AlertVersion),
});
const CareActionPoint = Type.Object({
  t: Type.Number(),
  action: Type.String(),
  by: Type.String(),
  comment: Type.Optional(Type.String()),
  observation: Type.Optional(Type.Object({ onOxygen: Type.Optional(Type.Boolean()), consciousness: Type.Optional(Type.String()) })),
});
export const ResidentHistoryResponse = Type.Object({
  residentId: Type.String(),
  homeId: Type.String(),
  from: Type.Number(),
  to: Type.Number(),
  scores: Type.Array(ScorePoint),
  alerts: Type.Array(AlertHistory),
  actions: Type.Array(CareActionPoint),
});
export type ResidentHistoryResponse = Static<typeof ResidentHistoryResponse>;
type AlertHistory = Static<typeof AlertHistory>;

export interface ResidentRoutesDeps {
  readonly registry: RegistryIndex;
  readonly influx: InfluxReader;
  readonly actorOf: ActorOf;
  readonly now: () => number;
  /** Open alerts in memory (the lifecycle's), newer than InfluxDB while the journal catches up. */
  readonly openAlerts?: () => readonly AlertMessage[];
  readonly countError?: CountError;
}

function parseJson(v: unknown): unknown {
  if (typeof v !== 'string') return undefined;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return undefined;
  }
}

function isAlert(v: unknown): v is AlertMessage {
  const a = v as Partial<AlertMessage> | undefined;
  return typeof a === 'object' && a !== null && typeof a.id === 'string' && typeof a.version === 'number' && typeof a.homeId === 'string';
}

/** Groups alert versions by id into one lifecycle each, newest version's fields on top. */
export function alertLifecycles(versions: readonly AlertMessage[]): AlertHistory[] {
  const byId = new Map<string, Map<number, AlertMessage>>();
  for (const a of versions) {
    const m = byId.get(a.id) ?? new Map<number, AlertMessage>();
    m.set(a.version, a);
    byId.set(a.id, m);
  }
  const out: AlertHistory[] = [];
  for (const [id, m] of byId) {
    const sorted = [...m.values()].sort((x, y) => x.version - y.version);
    const last = sorted[sorted.length - 1] as AlertMessage;
    out.push({
      id,
      rule: last.rule,
      category: last.category,
      signal: last.signal,
      severity: last.severity,
      state: last.state,
      raisedAt: last.raisedAt,
      ...(last.acknowledgedAt !== undefined ? { acknowledgedAt: last.acknowledgedAt } : {}),
      ...(last.acknowledgedBy !== undefined ? { acknowledgedBy: last.acknowledgedBy } : {}),
      ...(last.resolvedAt !== undefined ? { resolvedAt: last.resolvedAt } : {}),
      ...(last.resolvedBy !== undefined ? { resolvedBy: last.resolvedBy } : {}),
      escalationLevel: last.escalationLevel ?? 0,
      message: last.message,
      versions: sorted.map((a) => ({ version: a.version, ts: a.ts, state: a.state, severity: a.severity, escalationLevel: a.escalationLevel ?? 0 })),
    });
  }
  return out.sort((x, y) => x.raisedAt - y.raisedAt || (x.id < y.id ? -1 : 1));
}

export async function residentRoutes(app: FastifyInstance, opts: ResidentRoutesDeps): Promise<void> {
  installErrorHandler(app, opts.countError);
  app.get<{ Params: Static<typeof Params>; Querystring: ResidentHistoryQuery }>(
    '/api/residents/:id/history',
    {
      schema: {
        summary: "One resident's NEWS2 scores, alerts with their lifecycle, and care actions",
        params: Params,
        querystring: ResidentHistoryQuery,
        response: { 200: ResidentHistoryResponse, 400: ApiError, 401: ApiError, 404: ApiError, 503: ApiError },
      },
    },
    async (request) => {
      const actor = await requireActor(opts.actorOf, request);
      const resident = opts.registry.resident(request.params.id);
      // Another home's resident is indistinguishable from a missing one.
      if (resident === undefined || !canSeeHome(actor, resident.homeId)) throw new AlertsError('RESIDENT_NOT_FOUND');
      const to = request.query.to ?? opts.now();
      const from = request.query.from ?? to - DAY_MS;
      if (from > to) throw new RouteError(400, 'API_BAD_REQUEST', 'from must not be after to');
      if (to - from > MAX_SPAN_MS) throw new RouteError(400, 'API_BAD_REQUEST', `a history may span at most ${MAX_SPAN_MS / DAY_MS} days`);
      const time = `time >= ${from}ms AND time <= ${to}ms`;
      const who = `"home" = ${str(resident.homeId)} AND "resident" = ${str(resident.id)}`;
      // Alerts are tagged by home, not resident (docs/architecture.md): the resident is in the JSON.
      const [scoreSeries, alertSeries, actionSeries] = await opts.influx.query(
        [
          `SELECT * FROM "news2" WHERE ${who} AND ${time} ORDER BY time ASC LIMIT ${ROW_LIMIT}`,
          `SELECT ${ident('json')} FROM "alert" WHERE "home" = ${str(resident.homeId)} AND ${time} ORDER BY time ASC LIMIT ${ROW_LIMIT}`,
          `SELECT * FROM "care_action" WHERE ${who} AND ${time} ORDER BY time ASC LIMIT ${ROW_LIMIT}`,
        ].join('; '),
      );

      const scores = (scoreSeries ?? []).flatMap(rows).map((r) => {
        const components: Record<string, number> = {};
        for (const [k, v] of Object.entries(r)) if (k.startsWith('score_') && typeof v === 'number') components[k.slice(6)] = v;
        return {
          t: Number(r.time),
          aggregate: Number(r.aggregate),
          partial: r.partial === true,
          missing: typeof r.missing === 'string' && r.missing !== '' ? r.missing.split(',') : [],
          risk: String(r.risk),
          ...(typeof r.spo2_scale === 'number' ? { spo2Scale: r.spo2_scale } : {}),
          components,
        };
      });

      const versions: AlertMessage[] = [];
      for (const r of (alertSeries ?? []).flatMap(rows)) {
        const a = parseJson(r.json);
        if (isAlert(a) && a.residentId === resident.id) versions.push(a);
      }
      for (const a of opts.openAlerts?.() ?? []) if (a.residentId === resident.id && a.ts >= from && a.ts <= to) versions.push(a);

      const actions = (actionSeries ?? []).flatMap(rows).map((r) => {
        const j = parseJson(r.json) as { comment?: unknown; observation?: { onOxygen?: unknown; consciousness?: unknown } } | undefined;
        const obs = j?.observation;
        return {
          t: Number(r.time),
          action: String(r.action),
          by: String(r.by),
          ...(typeof j?.comment === 'string' ? { comment: j.comment } : {}),
          ...(obs !== undefined && typeof obs === 'object'
            ? {
                observation: {
                  ...(typeof obs.onOxygen === 'boolean' ? { onOxygen: obs.onOxygen } : {}),
                  ...(typeof obs.consciousness === 'string' ? { consciousness: obs.consciousness } : {}),
                },
              }
            : {}),
        };
      });
      return { residentId: resident.id, homeId: resident.homeId, from, to, scores, alerts: alertLifecycles(versions), actions };
    },
  );
}
