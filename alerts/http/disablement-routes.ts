import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../contract/api.ts';
import { Disablement, DisablementRequest } from '../../contract/incidents.ts';
import { SIGNAL_CLASSES } from '../../contract/payloads.ts';
import { ID_PATTERN } from '../../contract/topics.ts';
import { canSeeHome, type Actor } from '../access.ts';
import { DISABLEMENT_AUDIT_ACTIONS } from '../disablements/core.ts';
import type { DisablementStore } from '../disablements/store.ts';
import { AlertsError, unwrap } from '../errors.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { peerPart, type RestPeers } from './peer-rest.ts';

/**
 * Test and maintenance mode over REST (issue 11). Directors put a point of their home (admins: of
 * any home) in `test` or `disabled` mode for a bounded time with a reason, and may end it early;
 * staff see their home's, bureau and admin every home's. Another home's disablement answers 404,
 * as one that does not exist. Errors are the alerts catalogue's `{ code, message }` (the root
 * error handler of http/app.ts maps AlertsError).
 */

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' }) });
type IdParams = Static<typeof IdParams>;
const HomeParams = Type.Object({ homeId: Type.String({ pattern: ID_PATTERN }) });
type HomeParams = Static<typeof HomeParams>;
const ListQuery = Type.Object(
  {
    /** Also those ended in the last 7 days. */
    all: Type.Optional(Type.Boolean({ description: 'also the disablements ended in the last 7 days' })),
    homeId: Type.Optional(Type.String({ pattern: ID_PATTERN, description: 'only this home' })),
  },
  { additionalProperties: false },
);
type ListQuery = Static<typeof ListQuery>;

export const DisablementAudit = Type.Object({
  disablementId: Type.String(),
  homeId: Type.String(),
  seq: Type.Integer({ minimum: 1 }),
  ts: Type.Integer(),
  action: Type.Union(DISABLEMENT_AUDIT_ACTIONS.map((a) => Type.Literal(a))),
  by: Type.String(),
  key: Type.Optional(Type.String()),
  rule: Type.Optional(Type.String()),
  signal: Type.Optional(Type.Union(SIGNAL_CLASSES.map((c) => Type.Literal(c)))),
  deviceId: Type.Optional(Type.String()),
  roomId: Type.Optional(Type.String()),
  sourceTs: Type.Optional(Type.Integer()),
  reason: Type.Optional(Type.String()),
});
const DisablementWithAudit = Type.Composite([Disablement, Type.Object({ audit: Type.Array(DisablementAudit) })]);

export interface DisablementRoutesOptions {
  readonly store: DisablementStore;
  /** The verified actor of a request, or undefined (→ 401). */
  readonly actorOf: (req: FastifyRequest) => Actor | undefined;
  /**
   * Issue 14, partitioned by home: the list merges the owners' disablements; creating one for a home
   * this node does not own is refused (CLUSTER_NOT_OWNER): this node's copy would suppress nothing.
   */
  readonly peers?: RestPeers | undefined;
  readonly registry?: RegistryIndex;
}

export async function disablementRoutes(app: FastifyInstance, opts: DisablementRoutesOptions): Promise<void> {
  const actor = (req: FastifyRequest): Actor => {
    const a = opts.actorOf(req);
    if (a === undefined) throw new AlertsError('AUTH_REQUIRED');
    return a;
  };
  const errors = { 400: ApiError, 401: ApiError, 403: ApiError, 404: ApiError, 409: ApiError, 421: ApiError };

  app.get<{ Querystring: ListQuery }>(
    '/api/disablements',
    { schema: { summary: 'Points in test or disabled mode that you may see (in force; ?all=true adds those ended in the last 7 days)', querystring: ListQuery, response: { 200: Type.Array(Disablement), 401: ApiError } } },
    async (req, reply) => {
      const who = actor(req);
      const homeId = req.query.homeId;
      const mine = opts.store.visibleTo(who, { includeEnded: req.query.all === true, ...(homeId !== undefined ? { homeId } : {}) });
      if (opts.registry === undefined) return mine;
      // The owners answer with what is in force (the ended ones of ?all=true are this node's only).
      const peers = await peerPart(opts.peers, opts.registry, who, req, reply, homeId);
      if (peers === undefined) return mine;
      const theirs = peers.disablements.filter((d) => canSeeHome(who, d.homeId) && (homeId === undefined || d.homeId === homeId));
      const ids = new Set(mine.map((d) => d.id));
      return [...mine, ...theirs.filter((d) => !ids.has(d.id))].sort((a, b) => b.startedAt - a.startedAt);
    },
  );

  app.get<{ Params: IdParams }>(
    '/api/disablements/:id',
    { schema: { summary: 'One disablement with its audit trail (created, signals suppressed, released, ended)', params: IdParams, response: { 200: DisablementWithAudit, 401: ApiError, 404: ApiError } } },
    async (req) => {
      const found = unwrap(await opts.store.find(actor(req), req.params.id));
      return { ...found.disablement, audit: found.audit };
    },
  );

  app.post<{ Params: HomeParams; Body: DisablementRequest }>(
    '/api/homes/:homeId/disablements',
    {
      schema: {
        summary: 'Put a device, a room or the whole home in test or disabled mode for up to 24 h (home director or admin)',
        params: HomeParams,
        body: DisablementRequest,
        response: { 201: Disablement, ...errors },
      },
    },
    async (req, reply) => {
      const who = actor(req);
      // Another home's stays a 404 (the store's answer), as in one-instance mode.
      if (opts.peers !== undefined && canSeeHome(who, req.params.homeId) && !opts.peers.owns(req.params.homeId)) throw new AlertsError('CLUSTER_NOT_OWNER');
      return reply.status(201).send(unwrap(opts.store.create(who, req.params.homeId, req.body)));
    },
  );

  app.delete<{ Params: IdParams }>(
    '/api/disablements/:id',
    { schema: { summary: 'End a disablement early (home director or admin)', params: IdParams, response: { 200: Disablement, ...errors } } },
    async (req) => unwrap(opts.store.end(actor(req), req.params.id)),
  );
}
