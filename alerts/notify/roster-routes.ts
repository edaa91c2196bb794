import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../contract/api.ts';
import { Roster } from '../../contract/registry.ts';
import { ID_PATTERN } from '../../contract/topics.ts';
import { canSeeHome, type Actor } from '../access.ts';
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
  /** Issue 14, partitioned by home: whether this node owns the home (its notifier uses the roster); absent: one instance. */
  readonly owns?: (homeId: string) => boolean;
}

export async function rosterRoutes(app: FastifyInstance, opts: RosterRoutesOptions): Promise<void> {
  const actor = (req: FastifyRequest): Actor => {
    const a = opts.actorOf(req);
    if (a === undefined) throw new AlertsError('AUTH_REQUIRED');
    return a;
  };

  app.get<{ Params: HomeParams }>(
    '/api/homes/:homeId/roster',
    { schema: { summary: "A home's on-call roster (shifts, people, directors) and who changed it when", params: HomeParams, response: { 200: RosterView, 401: ApiError, 404: ApiError, 421: ApiError } } },
    async (req) => {
      const who = actor(req);
      const v = unwrap(opts.store.view(who, req.params.homeId));
      // After the store's own checks: another home's stays a 404.
      if (opts.owns !== undefined && !opts.owns(req.params.homeId)) throw new AlertsError('CLUSTER_NOT_OWNER');
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
        response: { 200: Roster, 400: ApiError, 401: ApiError, 403: ApiError, 404: ApiError, 421: ApiError },
      },
    },
    async (req) => {
      const who = actor(req);
      // Another node's copy would page nobody: the owner's notifier reads its own roster store.
      if (opts.owns !== undefined && canSeeHome(who, req.params.homeId) && !opts.owns(req.params.homeId)) throw new AlertsError('CLUSTER_NOT_OWNER');
      return unwrap(await opts.store.put(who, req.params.homeId, req.body));
    },
  );
}
