import { RAW_TELEMETRY } from '../../common/influx-schema.ts';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../contract/api.ts';
import { DEVICE_KINDS } from '../../contract/device-kinds.ts';
import { ID_PATTERN } from '../../contract/topics.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { canSeeHome } from '../access.ts';
import { rows, str, type InfluxReader, type InfluxSeries } from '../../common/influx/reader.ts';
import { installErrorHandler, requireActor, RouteError, type ActorOf, type CountError } from './route-support.ts';

/**
 * Live state behind the dashboard's tiles: each device's latest readings and online status (from
 * InfluxDB), each resident's latest vitals, bed, wetness, NEWS2 and next turn (the last two from
 * the care rules' state, passed in as `residentCareState`). The page loads this once and after each
 * reconnect, then polls it; alerts themselves come over socket.io.
 *
 *   GET /api/live/homes          one summary row per home the user may see (bureau grid)
 *   GET /api/live/home/:homeId   devices and residents of one home
 */

/** What the care rules know about a resident right now (the alerts engine supplies it). */
export interface ResidentCareState {
  readonly news2?: {
    readonly aggregate: number;
    readonly partial: boolean;
    readonly missing: readonly string[];
    readonly risk?: string;
  };
  /** When the next repositioning is due (ms), from the resident's turning interval. */
  readonly nextTurnDueAt?: number;
  readonly lastTurnAt?: number;
}

export type ResidentCareStateOf = (residentId: string) => ResidentCareState | undefined;

const Value = Type.Union([Type.Number(), Type.Boolean()]);
export const DeviceLive = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  roomId: Type.String(),
  residentId: Type.Optional(Type.String()),
  /** Last status message (retained/last will); null when the device never reported one. */
  online: Type.Union([Type.Boolean(), Type.Null()]),
  /** Device time of the last telemetry, ms; null when none within the look-back window. */
  lastSeen: Type.Union([Type.Number(), Type.Null()]),
  /** Nothing received for longer than the kind's heartbeat budget. */
  silent: Type.Boolean(),
  values: Type.Record(Type.String(), Value),
});
export const ResidentLive = Type.Object({
  id: Type.String(),
  name: Type.String(),
  roomId: Type.String(),
  bed: Type.String(),
  vitals: Type.Record(Type.String(), Value),
  bedOccupied: Type.Union([Type.Boolean(), Type.Null()]),
  wetnessPct: Type.Union([Type.Number(), Type.Null()]),
  news2: Type.Union([
    Type.Object({ aggregate: Type.Number(), partial: Type.Boolean(), missing: Type.Array(Type.String()), risk: Type.Optional(Type.String()) }),
    Type.Null(),
  ]),
  nextTurnDueAt: Type.Union([Type.Number(), Type.Null()]),
});
export const HomeLive = Type.Object({ homeId: Type.String(), now: Type.Number(), devices: Type.Array(DeviceLive), residents: Type.Array(ResidentLive) });
export type HomeLive = Static<typeof HomeLive>;
export const HomeSummary = Type.Object({
  homeId: Type.String(),
  name: Type.String(),
  nameEn: Type.String(),
  devicesTotal: Type.Integer(),
  devicesOnline: Type.Integer(),
  residents: Type.Integer(),
  residentsNews2AtLeast5: Type.Integer(),
});
export const HomesSummary = Type.Object({ now: Type.Number(), homes: Type.Array(HomeSummary) });
export type HomesSummary = Static<typeof HomesSummary>;

export interface LiveDeps {
  readonly registry: RegistryIndex;
  readonly influx: InfluxReader;
  readonly actorOf: ActorOf;
  readonly residentCareState: ResidentCareStateOf;
  readonly now?: () => number;
  /** How far back to look for a device's latest telemetry (default 24 h). */
  readonly lookBackMs?: number;
  readonly countError?: CountError;
}

const VITALS = ['heart_rate_bpm', 'spo2_pct', 'resp_rate_bpm', 'body_temp_c', 'systolic_bp_mmhg'] as const;
/** NEWS2 aggregate 5 or more calls for an urgent response (RCP 2017, Chart 2). */
const NEWS2_URGENT = 5;

function byDevice(series: readonly InfluxSeries[]): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const s of series) {
    const device = s.tags?.device;
    const row = rows(s)[0];
    if (device !== undefined && row !== undefined) out.set(device, row);
  }
  return out;
}

export async function liveRoutes(app: FastifyInstance, opts: LiveDeps): Promise<void> {
  installErrorHandler(app, opts.countError);
  const now = opts.now ?? Date.now;
  const lookBack = opts.lookBackMs ?? 24 * 3_600_000;

  app.get<{ Params: { homeId: string } }>(
    '/api/live/home/:homeId',
    {
      schema: {
        summary: "Latest readings, online status, vitals, NEWS2 and next turn of one home's devices and residents",
        params: Type.Object({ homeId: Type.String({ pattern: ID_PATTERN }) }),
        response: { 200: HomeLive, 400: ApiError, 401: ApiError, 403: ApiError, 404: ApiError, 503: ApiError },
      },
    },
    async (request): Promise<HomeLive> => {
      const actor = await requireActor(opts.actorOf, request);
      const { homeId } = request.params;
      // Another home's id answers exactly like an unknown one, so ids cannot be probed.
      if (opts.registry.home(homeId) === undefined || !canSeeHome(actor, homeId)) throw new RouteError(404, 'API_NOT_FOUND', `no home ${homeId}`);
      const t = now();
      const since = t - lookBack;
      const home = str(homeId);
      const [latest = [], seen = [], status = []] = await opts.influx.query(
        [
          `SELECT LAST(*) FROM ${RAW_TELEMETRY} WHERE home = ${home} AND time >= ${since}ms GROUP BY device`,
          // LAST(*) reports epoch 0 as its time (several selectors); one selector gives the real time.
          `SELECT LAST(seq) FROM ${RAW_TELEMETRY} WHERE home = ${home} AND time >= ${since}ms GROUP BY device`,
          `SELECT LAST(online) FROM status WHERE home = ${home} GROUP BY device`,
        ].join('; '),
      );
      const latestBy = byDevice(latest);
      const seenBy = byDevice(seen);
      const statusBy = byDevice(status);
      const devices = opts.registry.devicesOfHome(homeId).map((d) => {
        const values: Record<string, number | boolean> = {};
        for (const [col, v] of Object.entries(latestBy.get(d.id) ?? {})) {
          if (!col.startsWith('last_') || col === 'last_seq') continue;
          if (typeof v === 'number' || typeof v === 'boolean') values[col.slice(5)] = v;
        }
        const ts = seenBy.get(d.id)?.time;
        const lastSeen = typeof ts === 'number' ? ts : null;
        const online = statusBy.get(d.id)?.last;
        const budgetMs = DEVICE_KINDS[d.kind].heartbeatBudgetS * 1000;
        return {
          id: d.id,
          kind: d.kind,
          roomId: d.roomId,
          ...(d.residentId !== undefined ? { residentId: d.residentId } : {}),
          online: typeof online === 'boolean' ? online : null,
          lastSeen,
          silent: lastSeen === null || t - lastSeen > budgetMs,
          values,
        };
      });
      const residents = opts.registry.residentsOfHome(homeId).map((r) => {
        const own = devices.filter((d) => d.residentId === r.id);
        // The vital-signs monitor is the reference for vitals; the bed sensor fills gaps (pulse, respiration).
        const ordered = [...own.filter((d) => d.kind === 'vital_signs_monitor'), ...own.filter((d) => d.kind !== 'vital_signs_monitor')];
        const vitals: Record<string, number | boolean> = {};
        for (const m of VITALS) {
          const v = ordered.find((d) => d.values[m] !== undefined)?.values[m];
          if (v !== undefined) vitals[m] = v;
        }
        const bed = own.find((d) => d.kind === 'bed_sensor')?.values.bed_occupied;
        const wet = own.find((d) => d.kind === 'wetness_sensor')?.values.wetness_pct;
        const care = opts.residentCareState(r.id);
        return {
          id: r.id,
          name: r.name,
          roomId: r.roomId,
          bed: r.bed,
          vitals,
          bedOccupied: typeof bed === 'boolean' ? bed : null,
          wetnessPct: typeof wet === 'number' ? wet : null,
          news2: care?.news2 !== undefined ? { ...care.news2, missing: [...care.news2.missing] } : null,
          nextTurnDueAt: care?.nextTurnDueAt ?? null,
        };
      });
      return { homeId, now: t, devices, residents };
    },
  );

  app.get(
    '/api/live/homes',
    {
      schema: {
        summary: 'Per-home summary for the bureau grid: devices online, residents at NEWS2 ≥ 5',
        response: { 200: HomesSummary, 401: ApiError, 503: ApiError },
      },
    },
    async (request): Promise<HomesSummary> => {
      const actor = await requireActor(opts.actorOf, request);
      const homes = opts.registry.site.homes.filter((h) => canSeeHome(actor, h.id));
      const [status = []] = await opts.influx.query('SELECT LAST(online) FROM status GROUP BY device');
      const statusBy = byDevice(status);
      return {
        now: now(),
        homes: homes.map((h) => {
          const devices = opts.registry.devicesOfHome(h.id);
          const residents = opts.registry.residentsOfHome(h.id);
          return {
            homeId: h.id,
            name: h.name,
            nameEn: h.nameEn,
            devicesTotal: devices.length,
            devicesOnline: devices.filter((d) => statusBy.get(d.id)?.last === true).length,
            residents: residents.length,
            residentsNews2AtLeast5: residents.filter((r) => (opts.residentCareState(r.id)?.news2?.aggregate ?? 0) >= NEWS2_URGENT).length,
          };
        }),
      };
    },
  );
}
