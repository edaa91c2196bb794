import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../contract/api.ts';
import { Roster, RosterPerson } from '../../contract/registry.ts';
import { ID_PATTERN } from '../../contract/topics.ts';
import { canSeeHome, type Actor } from '../access.ts';
import { AlertsError, unwrap } from '../errors.ts';
import { ProviderRoster, type DutyView, type RosterStore } from './roster-store.ts';

/**
 * On-call rosters over REST (issue 15). Anyone who may see a home reads its roster, who is on duty
 * now and next, the bureau's contacts and the change history; its director (or an admin) replaces
 * it. Another home's roster answers 404, as for alerts. A home-care provider's roster likewise:
 * its users, the bureau and admins read it; its managers (or an admin) replace it.
 */

const HomeParams = Type.Object({ homeId: Type.String({ pattern: ID_PATTERN }) });
type HomeParams = Static<typeof HomeParams>;
const ProviderParams = Type.Object({ providerId: Type.String({ pattern: ID_PATTERN }) });
type ProviderParams = Static<typeof ProviderParams>;

const Duty = Type.Object({
  at: Type.Integer(),
  now: Type.Array(Type.Object({ shiftId: Type.String(), people: Type.Array(Type.String()) })),
  next: Type.Union([Type.Object({ shiftId: Type.String(), startsAt: Type.Integer(), people: Type.Array(Type.String()) }), Type.Null()]),
});
/** Read by the page's roster screen (dashboards/app/js/roster-view.js). */
const ViewExtras = {
  /** Whether the caller may replace this roster (the page shows its edit form only then). */
  canEdit: Type.Boolean(),
  /** Who is on duty at the server's present, and the next shift. */
  duty: Type.Union([Duty, Type.Null()]),
  /** The bureau's contacts (ladder level 2). */
  bureau: Type.Array(RosterPerson),
};

export const RosterAuditSchema = Type.Object({
  homeId: Type.String(),
  seq: Type.Integer({ minimum: 1 }),
  ts: Type.Integer(),
  action: Type.Literal('roster_updated'),
  by: Type.String(),
  changes: Type.Array(Type.String()),
  roster: Roster,
});
const RosterView = Type.Object({ roster: Type.Union([Roster, Type.Null()]), audit: Type.Array(RosterAuditSchema), ...ViewExtras });

export const ProviderRosterAuditSchema = Type.Object({
  providerId: Type.String(),
  seq: Type.Integer({ minimum: 1 }),
  ts: Type.Integer(),
  action: Type.Literal('provider_roster_updated'),
  by: Type.String(),
  changes: Type.Array(Type.String()),
  roster: ProviderRoster,
});
const ProviderRosterView = Type.Object({ roster: Type.Union([ProviderRoster, Type.Null()]), audit: Type.Array(ProviderRosterAuditSchema), ...ViewExtras });

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
      return { roster: v.roster ?? null, audit: v.audit, canEdit: v.canEdit, duty: dutyOut(v.duty), bureau: [...opts.store.bureau()] };
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

  /**
   * A provider's roster serves all its households: with homes partitioned (issue 14) this node must
   * own every one of them, or another node's notifier would keep paging from its own copy.
   */
  const ownsProvider = (providerId: string): boolean => opts.owns === undefined || opts.store.providerHouseholds(providerId).every((h) => opts.owns?.(h) === true);

  app.get<{ Params: ProviderParams }>(
    '/api/providers/:providerId/roster',
    { schema: { summary: "A home-care provider's on-call roster (caregivers' shifts, managers), who is on duty, and who changed it when", params: ProviderParams, response: { 200: ProviderRosterView, 401: ApiError, 404: ApiError, 421: ApiError } } },
    async (req) => {
      const who = actor(req);
      const v = unwrap(opts.store.viewProvider(who, req.params.providerId));
      if (!ownsProvider(req.params.providerId)) throw new AlertsError('CLUSTER_NOT_OWNER');
      return { roster: v.roster ?? null, audit: v.audit, canEdit: v.canEdit, duty: dutyOut(v.duty), bureau: [...opts.store.bureau()] };
    },
  );

  app.put<{ Params: ProviderParams; Body: ProviderRoster }>(
    '/api/providers/:providerId/roster',
    {
      schema: {
        summary: "Replace a home-care provider's on-call roster (its managers, or an admin); audited",
        params: ProviderParams,
        body: ProviderRoster,
        response: { 200: ProviderRoster, 400: ApiError, 401: ApiError, 403: ApiError, 404: ApiError, 421: ApiError },
      },
    },
    async (req) => {
      const who = actor(req);
      // Another provider's stays a 404 (the store's answer); one this node may not edit for is refused before anything changes.
      if (opts.store.viewProvider(who, req.params.providerId).ok && !ownsProvider(req.params.providerId)) throw new AlertsError('CLUSTER_NOT_OWNER');
      return unwrap(await opts.store.putProvider(who, req.params.providerId, req.body));
    },
  );
}

function dutyOut(d: DutyView | null): Static<typeof Duty> | null {
  return d === null ? null : { at: d.at, now: d.now.map((n) => ({ shiftId: n.shiftId, people: [...n.people] })), next: d.next === null ? null : { shiftId: d.next.shiftId, startsAt: d.next.startsAt, people: [...d.next.people] } };
}
