import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { AckRequest } from '../../contract/api.ts';
import { CONFIRMATIONS, type AlertMessage } from '../../contract/payloads.ts';
import { canSeeAlert, canSeeHome } from '../access.ts';
import { AlertsError, unwrap } from '../errors.ts';
import { optionalBody } from './route-support.ts';
import { ALERT_ID_PATTERN, type AuditEntry } from '../lifecycle.ts';
import type { RouteContext } from './app.ts';
import { registerIncidentRoutes } from './incident-routes.ts';
import { newestOf, peerPart, performRest } from './peer-rest.ts';

/** An alert id must look like one before anything is looked up (a malformed id is a 400, not a query). */
const IdParams = Type.Object({ id: Type.String({ pattern: ALERT_ID_PATTERN }) });
type IdParams = Static<typeof IdParams>;
const HomeParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
type HomeParams = Static<typeof HomeParams>;
const ListQuery = Type.Object(
  {
    homeId: Type.Optional(Type.String({ maxLength: 64 })),
    /** Issue 14, operations: only what this node holds (which instance has which alert, e.g. during a home move). */
    node: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const ConfirmRequest = Type.Object(
  { confirmation: Type.Union(CONFIRMATIONS.map((c) => Type.Literal(c))), comment: Type.Optional(Type.String({ maxLength: 1000 })) },
  { additionalProperties: false },
);
type ConfirmRequest = Static<typeof ConfirmRequest>;
const ResolveRequest = Type.Object({ comment: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false });

/** GB 50440-2007 / GB 26875 (urban fire remote monitoring): a fire alarm reaches the centre within 10 s. */
export const ALARM_DELIVERY_TARGET_MS = 10_000;

/**
 * Per-alert delivery timing, so the bureau can check the 10 s requirement: device time → broker
 * receive (the broker's stamp) → alerts process receive → raised → first pushed to a client. Durations from `sourceTs` use the
 * device's clock and include any clock skew; the others are all on the platform clock.
 */
export interface AlertTiming {
  readonly sourceTs: number;
  readonly brokerTs?: number;
  readonly receivedTs?: number;
  readonly raisedAt: number;
  readonly pushedAt?: number;
  /** Fire alarms: first delivery to a non-empty bureau room; the 10 s target is measured to it. */
  readonly bureauPushedAt?: number;
  readonly sourceToBrokerMs?: number;
  readonly brokerToReceivedMs?: number;
  readonly sourceToReceivedMs?: number;
  readonly receivedToRaisedMs?: number;
  readonly raisedToPushedMs?: number;
  readonly sourceToPushedMs?: number;
  readonly targetMs: number;
  /** Whether device time → pushed met the target; absent until pushed. */
  readonly withinTarget?: boolean;
}

export function alertTiming(a: AlertMessage): AlertTiming {
  const t: Record<string, number | boolean> = { sourceTs: a.sourceTs, raisedAt: a.raisedAt, targetMs: ALARM_DELIVERY_TARGET_MS };
  if (a.brokerTs !== undefined) {
    t.brokerTs = a.brokerTs;
    t.sourceToBrokerMs = a.brokerTs - a.sourceTs;
    if (a.receivedTs !== undefined) t.brokerToReceivedMs = a.receivedTs - a.brokerTs;
  }
  if (a.receivedTs !== undefined) {
    t.receivedTs = a.receivedTs;
    t.sourceToReceivedMs = a.receivedTs - a.sourceTs;
    t.receivedToRaisedMs = a.raisedAt - a.receivedTs;
  }
  if (a.pushedAt !== undefined) t.pushedAt = a.pushedAt;
  if (a.bureauPushedAt !== undefined) t.bureauPushedAt = a.bureauPushedAt;
  // GB 50440 / GB 26875: a fire alarm must reach the monitoring centre (the bureau), not just any client.
  const delivered = a.category === 'fire' ? a.bureauPushedAt : a.pushedAt;
  if (delivered !== undefined) {
    t.raisedToPushedMs = delivered - a.raisedAt;
    t.sourceToPushedMs = delivered - a.sourceTs;
    t.withinTarget = delivered - a.sourceTs <= ALARM_DELIVERY_TARGET_MS;
  }
  return t as unknown as AlertTiming;
}

export function registerAlertRoutes(app: FastifyInstance, ctx: RouteContext): void {
  // Issue 11: incidents live beside the alerts they group (same context, same error handling).
  registerIncidentRoutes(app, ctx);
  app.get<{ Querystring: Static<typeof ListQuery> }>('/api/alerts', { schema: { querystring: ListQuery } }, async (req, reply) => {
    const actor = ctx.actor(req);
    const home = req.query.homeId;
    // Issue 14: the owners' open alerts of the homes this node does not own (http/peer-rest.ts).
    const peers = req.query.node === true ? undefined : await peerPart(ctx.peers, ctx.registry, actor, req, reply, home);
    return newestOf([...ctx.lifecycle.open(), ...(peers?.alerts ?? [])])
      .filter((a) => canSeeAlert(actor, a) && (home === undefined || a.homeId === home))
      .sort((a, b) => b.raisedAt - a.raisedAt);
  });

  async function findVisible(id: string, req: Parameters<RouteContext['actor']>[0]): Promise<AlertMessage> {
    const actor = ctx.actor(req);
    const alert = ctx.lifecycle.get(id) ?? (await ctx.store?.latest(id));
    // Another home's alert is reported as not found: its existence is not disclosed.
    if (alert === undefined || !canSeeAlert(actor, alert)) throw new AlertsError('ALERT_NOT_FOUND');
    return alert;
  }

  /** The alert plus its delivery timing (issue 3 "Timing"). */
  app.get<{ Params: IdParams }>('/api/alerts/:id', { schema: { params: IdParams } }, async (req): Promise<AlertMessage & { timing: AlertTiming }> => {
    const alert = await findVisible(req.params.id, req);
    return { ...alert, timing: alertTiming(alert) };
  });

  app.get<{ Params: IdParams }>('/api/alerts/:id/audit', { schema: { params: IdParams } }, async (req): Promise<readonly AuditEntry[]> => {
    await findVisible(req.params.id, req);
    return ctx.lifecycle.audit(req.params.id) ?? (await ctx.store?.audit({ alertId: req.params.id })) ?? [];
  });

  app.post<{ Params: IdParams }>('/api/alerts/:id/ack', { schema: { params: IdParams } }, async (req) => {
    const actor = ctx.actor(req);
    const body = optionalBody<AckRequest>(AckRequest, req.body);
    const c = body.comment !== undefined ? { comment: body.comment } : {};
    return performRest(ctx.peers, ctx.lifecycle, req, { op: 'ack', id: req.params.id, ...c }, () => ctx.lifecycle.ack(req.params.id, actor, body.comment));
  });

  app.post<{ Params: IdParams; Body: ConfirmRequest }>('/api/alerts/:id/confirm', { schema: { params: IdParams, body: ConfirmRequest } }, async (req) => {
    const actor = ctx.actor(req);
    const c = req.body.comment !== undefined ? { comment: req.body.comment } : {};
    return performRest(ctx.peers, ctx.lifecycle, req, { op: 'confirm', id: req.params.id, confirmation: req.body.confirmation, ...c }, () =>
      ctx.lifecycle.confirm(req.params.id, actor, req.body.confirmation, req.body.comment),
    );
  });

  app.post<{ Params: IdParams }>('/api/alerts/:id/resolve', { schema: { params: IdParams } }, async (req) => {
    const actor = ctx.actor(req);
    const body = optionalBody<Static<typeof ResolveRequest>>(ResolveRequest, req.body);
    const c = body.comment !== undefined ? { comment: body.comment } : {};
    return performRest(ctx.peers, ctx.lifecycle, req, { op: 'resolve', id: req.params.id, ...c }, () => ctx.lifecycle.resolve(req.params.id, actor, body.comment));
  });

  /** Issue 3: the audit trail is queryable per home too. */
  app.get<{ Params: HomeParams }>('/api/homes/:id/audit', { schema: { params: HomeParams } }, async (req) => {
    const actor = ctx.actor(req);
    if (ctx.registry.home(req.params.id) === undefined || !canSeeHome(actor, req.params.id)) throw new AlertsError('HOME_NOT_FOUND');
    if (ctx.store === undefined) return [];
    return ctx.store.audit({ homeId: req.params.id });
  });
}
