import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { AckRequest } from '../../contract/api.ts';
import { INCIDENT_KINDS, type IncidentMessage } from '../../contract/incidents.ts';
import { ALERT_STATES, CONFIRMATIONS, type AlertMessage } from '../../contract/payloads.ts';
import { canSeeHome } from '../access.ts';
import { AlertsError, unwrap } from '../errors.ts';
import { optionalBody } from './route-support.ts';
import type { IncidentAuditEntry } from '../incidents/book.ts';
import { ALARM_DELIVERY_TARGET_MS } from './alert-routes.ts';
import type { RouteContext } from './app.ts';
import { newestOf, peerPart, performRest } from './peer-rest.ts';

/**
 * Incidents over REST (issue 11), role-scoped like the alerts: staff and directors see their own
 * home, bureau and admin all; another home's incident is a 404 (its existence is not disclosed).
 *
 *   GET  /api/incidents               open incidents, filterable by homeId, kind and state
 *   GET  /api/incidents/:id           the incident, its audit trail, its member alerts and timing
 *   POST /api/incidents/:id/ack       acknowledges it and every open member
 *   POST /api/incidents/:id/confirm   confirms it and every open member
 *   POST /api/incidents/:id/resolve   resolves it and every open member (the per-alert preconditions apply)
 */

/** Incident ids are UUIDs in production, short ids in tests. */
export const INCIDENT_ID_PATTERN = '^[A-Za-z0-9-]{1,64}$';

const IdParams = Type.Object({ id: Type.String({ pattern: INCIDENT_ID_PATTERN }) });
type IdParams = Static<typeof IdParams>;
const ListQuery = Type.Object(
  {
    homeId: Type.Optional(Type.String({ maxLength: 64 })),
    kind: Type.Optional(Type.Union(INCIDENT_KINDS.map((k) => Type.Literal(k)))),
    state: Type.Optional(Type.Union(ALERT_STATES.filter((s) => s !== 'resolved').map((s) => Type.Literal(s)))),
  },
  { additionalProperties: false },
);
type ListQuery = Static<typeof ListQuery>;
const ConfirmRequest = Type.Object(
  { confirmation: Type.Union(CONFIRMATIONS.map((c) => Type.Literal(c))), comment: Type.Optional(Type.String({ maxLength: 1000 })) },
  { additionalProperties: false },
);
type ConfirmRequest = Static<typeof ConfirmRequest>;
const ResolveRequest = Type.Object({ comment: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false });

/** GB 50440 timing of an incident: first alarm point's device time → first push (bureau push for fire). */
export interface IncidentTiming {
  readonly openedAt: number;
  readonly sourceTs?: number;
  readonly pushedAt?: number;
  readonly bureauPushedAt?: number;
  readonly openedToPushedMs?: number;
  readonly sourceToPushedMs?: number;
  readonly targetMs: number;
  readonly withinTarget?: boolean;
}

export function incidentTiming(i: IncidentMessage): IncidentTiming {
  const first = i.points.find((p) => p.alertId === i.firstAlertId) ?? i.points[0];
  const t: Record<string, number | boolean> = { openedAt: i.openedAt, targetMs: ALARM_DELIVERY_TARGET_MS };
  if (first !== undefined) t.sourceTs = first.sourceTs;
  if (i.pushedAt !== undefined) t.pushedAt = i.pushedAt;
  if (i.bureauPushedAt !== undefined) t.bureauPushedAt = i.bureauPushedAt;
  // As for alerts: a fire must reach the monitoring centre (the bureau), not just any client.
  const delivered = i.kind === 'fire' ? i.bureauPushedAt : i.pushedAt;
  if (delivered !== undefined) {
    t.openedToPushedMs = delivered - i.openedAt;
    if (first !== undefined) {
      t.sourceToPushedMs = delivered - first.sourceTs;
      t.withinTarget = delivered - first.sourceTs <= ALARM_DELIVERY_TARGET_MS;
    }
  }
  return t as unknown as IncidentTiming;
}

export function registerIncidentRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get<{ Querystring: ListQuery }>('/api/incidents', { schema: { summary: 'Open incidents the caller may see (issue 11)', querystring: ListQuery } }, async (req, reply) => {
    const actor = ctx.actor(req);
    const q = req.query;
    // Issue 14: the owners' open incidents of the homes this node does not own (http/peer-rest.ts).
    const peers = await peerPart(ctx.peers, ctx.registry, actor, req, reply, q.homeId);
    return newestOf([...ctx.lifecycle.openIncidents(), ...(peers?.incidents ?? [])])
      .filter((i) => canSeeHome(actor, i.homeId) && (q.homeId === undefined || i.homeId === q.homeId) && (q.kind === undefined || i.kind === q.kind) && (q.state === undefined || i.state === q.state))
      .sort((a, b) => b.openedAt - a.openedAt);
  });

  app.get<{ Params: IdParams }>(
    '/api/incidents/:id',
    { schema: { summary: 'One incident with its audit trail, member alerts and delivery timing', params: IdParams } },
    async (req): Promise<IncidentMessage & { audit: readonly IncidentAuditEntry[]; alerts: AlertMessage[]; timing: IncidentTiming }> => {
      const actor = ctx.actor(req);
      let incident = ctx.lifecycle.incident(req.params.id);
      let audit = ctx.lifecycle.incidentAudit(req.params.id);
      if (incident === undefined) {
        const stored = await ctx.store?.latestIncident?.(req.params.id);
        incident = stored?.incident;
        audit = stored?.audit;
      }
      if (incident === undefined || !canSeeHome(actor, incident.homeId)) throw new AlertsError('INCIDENT_NOT_FOUND');
      const alerts: AlertMessage[] = [];
      for (const p of incident.points) {
        const a = ctx.lifecycle.get(p.alertId) ?? (await ctx.store?.latest(p.alertId));
        if (a !== undefined) alerts.push(a);
      }
      return { ...incident, audit: audit ?? [], alerts, timing: incidentTiming(incident) };
    },
  );

  app.post<{ Params: IdParams }>('/api/incidents/:id/ack', { schema: { summary: 'Acknowledge an incident and its members', params: IdParams } }, async (req) => {
    const body = optionalBody<AckRequest>(AckRequest, req.body);
    const actor = ctx.actor(req);
    const c = body.comment !== undefined ? { comment: body.comment } : {};
    return performRest(ctx.peers, ctx.lifecycle, req, { op: 'ackIncident', id: req.params.id, ...c }, () => ctx.lifecycle.ackIncident(req.params.id, actor, body.comment));
  });

  app.post<{ Params: IdParams; Body: ConfirmRequest }>(
    '/api/incidents/:id/confirm',
    { schema: { summary: 'Confirm an incident (real_fire, false_alarm, test, fault) and its members', params: IdParams, body: ConfirmRequest } },
    async (req) => {
      const actor = ctx.actor(req);
      const c = req.body.comment !== undefined ? { comment: req.body.comment } : {};
      return performRest(ctx.peers, ctx.lifecycle, req, { op: 'confirmIncident', id: req.params.id, confirmation: req.body.confirmation, ...c }, () =>
        ctx.lifecycle.confirmIncident(req.params.id, actor, req.body.confirmation, req.body.comment),
      );
    },
  );

  app.post<{ Params: IdParams }>('/api/incidents/:id/resolve', { schema: { summary: 'Resolve an incident and its members', params: IdParams } }, async (req) => {
    const body = optionalBody<Static<typeof ResolveRequest>>(ResolveRequest, req.body);
    const actor = ctx.actor(req);
    const c = body.comment !== undefined ? { comment: body.comment } : {};
    return performRest(ctx.peers, ctx.lifecycle, req, { op: 'resolveIncident', id: req.params.id, ...c }, () => ctx.lifecycle.resolveIncident(req.params.id, actor, body.comment));
  });
}
