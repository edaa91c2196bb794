import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { homeKind, type Home } from '../../contract/registry.ts';
import { canSeeHome } from '../access.ts';
import { CareActionRequest } from '../care-action.ts';
import { AlertsError } from '../errors.ts';
import { homeDeadlines } from '../escalation.ts';
import type { RouteContext } from './app.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
type IdParams = Static<typeof IdParams>;

function deadlinesOf(home: Parameters<typeof homeDeadlines>[0]): { ackDeadlineS: number; confirmDeadlineS: number } {
  const d = homeDeadlines(home);
  return { ackDeadlineS: d.ackS, confirmDeadlineS: d.confirmS };
}

export function registerHomeRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const providerOf = (h: Home): { provider?: { id: string; name: string; nameEn: string; phone?: string }; familyContacts?: number } => {
    const p = h.providerId !== undefined ? ctx.registry.provider(h.providerId) : undefined;
    return {
      ...(p !== undefined ? { provider: { id: p.id, name: p.name, nameEn: p.nameEn, ...(p.phone !== undefined ? { phone: p.phone } : {}) } } : {}),
      ...(h.familyContacts !== undefined ? { familyContacts: h.familyContacts.length } : {}),
    };
  };
  /**
   * A registry summary of the homes the user may see, with each home's NFPA 72 positive alarm
   * sequence deadlines (registry ackDeadlineS / confirmDeadlineS, else 15 s / 180 s) resolved the
   * same way the escalation timer resolves them, so the page's countdown ends when escalation fires.
   */
  app.get('/api/homes', async (req) => {
    const actor = ctx.actor(req);
    const open = ctx.lifecycle.open();
    return ctx.registry.site.homes
      .filter((h) => canSeeHome(actor, h.id))
      .map((h) => ({
        id: h.id,
        name: h.name,
        nameEn: h.nameEn,
        address: h.address,
        // Issue 15: care home or household (an elder at home), with its home-care provider.
        kind: homeKind(h),
        ...providerOf(h),
        floors: h.floors.map((f) => ({ id: f.id, name: f.name, nameEn: f.nameEn, level: f.level, rooms: f.rooms.map((r) => ({ id: r.id, name: r.name, nameEn: r.nameEn, kind: r.kind })) })),
        devices: ctx.registry.devicesOfHome(h.id).length,
        residents: ctx.registry.residentsOfHome(h.id).map((r) => ({ id: r.id, name: r.name, roomId: r.roomId, bed: r.bed })),
        openAlerts: open.filter((a) => a.homeId === h.id).length,
        ...deadlinesOf(h),
      }));
  });

  /** Issue 4 workflow: staff record what they did; the care rules see it as a `care_action` input. */
  app.post<{ Params: IdParams; Body: CareActionRequest }>('/api/residents/:id/actions', { schema: { params: IdParams, body: CareActionRequest } }, async (req, reply) => {
    const actor = ctx.actor(req);
    const resident = ctx.registry.resident(req.params.id);
    if (resident === undefined || !canSeeHome(actor, resident.homeId)) throw new AlertsError('RESIDENT_NOT_FOUND');
    // Issue 14: only the home's owner runs its care rules; a non-owner would accept and drop it (HomeEngines.notOwned).
    if (ctx.peers !== undefined && !ctx.peers.owns(resident.homeId)) throw new AlertsError('CLUSTER_NOT_OWNER');
    const ts = ctx.clock.now();
    ctx.onCareAction({
      residentId: resident.id,
      homeId: resident.homeId,
      action: req.body.action,
      by: actor.username,
      ts,
      ...(req.body.observation !== undefined ? { observation: req.body.observation } : {}),
      ...(req.body.comment !== undefined ? { comment: req.body.comment } : {}),
    });
    return reply.status(202).send({ accepted: true, residentId: resident.id, action: req.body.action, ts });
  });
}
