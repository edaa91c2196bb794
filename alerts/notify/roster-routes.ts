import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../contract/api.ts';
import { Roster } from '../../contract/registry.ts';
import { ID_PATTERN } from '../../contract/topics.ts';
import type { Actor } from '../access.ts';
import { AlertsError, unwrap } from '../errors.ts';
import type { RosterStore } from './roster-store.ts';

/**
 * On-call rosters over REST (issue 15). Anyone who may see a home reads its roster and its change
 * history; its director (or an admin) replaces it. Another home's roster answers 404, as for alerts.
 */

const HomeParams = Type.Object({ homeId: Type.String({ pattern: ID_PATTERN }) });
type HomeParams = Static<typeof HomeParams>;

export const RosterAuditSchema = Type.Object({
  homeId: Type.String(),
  seq: Type.Integer({ minimum: 1 }),
  ts: Type.Integer(),
  action: Type.Literal('roster_updated'),
  by: Type.String(),
  changes: Type.Array(Type.String()),
  roster: Roster,
});
const RosterView = Type.Object({ roster: Type.Union([Roster, Type.Null()]), audit: Type.Array(RosterAuditSchema) });

export interface RosterRoutesOptions {
  readonly store: RosterStore;
  readonly actorOf: (req: FastifyRequest) => Actor | undefined;
}

export async function rosterRoutes(app: FastifyInstance, opts: RosterRoutesOptions): Promise<void> {
  const actor = (req: FastifyRequest): Actor => {
    const a = opts.actorOf(req);
    if (a === undefined) throw new AlertsError('AUTH_REQUIRED');
    return a;
  };

  app.get<{ Params: HomeParams }>(
    '/api/homes/:homeId/roster',
    { schema: { summary: "A home's on-call roster (shifts, people, directors) and who changed it when", params: HomeParams, response: { 200: RosterView, 401: ApiError, 404: ApiError } } },
    async (req) => {
      const v = unwrap(opts.store.view(actor(req), req.params.homeId));
      return { roster: v.roster ?? null, audit: v.audit };
    },
  );

  app.put<{ Params: HomeParams; Body: Roster }>(
    '/api/homes/:homeId/roster',
    {
      schema: {
        summary: "Replace a home's on-call roster (that home's director, or an admin); audited",
        params: HomeParams,
        body: Roster,
        response: { 200: Roster, 400: ApiError, 401: ApiError, 403: ApiError, 404: ApiError },
      },
    },
    async (req) => unwrap(await opts.store.put(actor(req), req.params.homeId, req.body)),
  );
}
