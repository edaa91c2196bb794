import type { FastifyReply, FastifyRequest } from 'fastify';
import { bearerToken } from '../../common/bearer.ts';
import type { Disablement, IncidentMessage } from '../../contract/incidents.ts';
import type { AlertMessage } from '../../contract/payloads.ts';
import { canSeeHome, type Actor } from '../access.ts';
import { AlertsError, type AlertErrorCode, ALERT_ERRORS, type Outcome } from '../errors.ts';
import type { Lifecycle } from '../lifecycle.ts';
import { holds, type ActionResult, type PeerAction, type PeerLists } from '../socket-cluster.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';

/**
 * The REST API across alerts nodes partitioned by home (issue 14, docs/scaling.md "REST across
 * nodes"). Every node serves the page, and the page re-syncs over REST (GET /api/alerts, incidents,
 * disablements) and acts over REST, so a node must answer for the homes it does not own: lists are
 * merged with the owners' answers, actions are run by the owner. Both go over the socket cluster's
 * Redis request path (alerts/socket-cluster.ts), with its timeout.
 *
 * A list that lacks a home the caller may see (its owner did not answer in time, or no running node
 * owns it) is never presented as complete: the reply carries `x-carewatch-partial: true` and
 * `x-carewatch-missing-homes: h02,h04`, and the page keeps what it shows for those homes.
 */

/** The socket cluster as the REST routes use it; absent in one-instance mode. */
export interface RestPeers {
  /** Whether this node owns the home (its lifecycle and stores hold it). */
  readonly owns: (homeId: string) => boolean;
  readonly homes: readonly string[];
  lists(token: string): Promise<PeerLists>;
  act(token: string, action: PeerAction): Promise<ActionResult | undefined>;
}

export const PARTIAL_HEADER = 'x-carewatch-partial';
export const MISSING_HOMES_HEADER = 'x-carewatch-missing-homes';

export function bearerOf(req: FastifyRequest): string {
  return bearerToken(req.headers.authorization) ?? '';
}

/** The newest version of each id (two nodes may both hold an alert for a moment while a home moves). */
export function newestOf<T extends { id: string; version: number }>(items: readonly T[]): T[] {
  const by = new Map<string, T>();
  for (const x of items) {
    const prior = by.get(x.id);
    if (prior === undefined || prior.version < x.version) by.set(x.id, x);
  }
  return [...by.values()];
}

/**
 * The other nodes' part of a list, or undefined in one-instance mode (or when this node owns every
 * home the caller may see: nothing to ask). Marks the reply partial for the homes nobody answered for.
 */
export async function peerPart(
  peers: RestPeers | undefined,
  registry: RegistryIndex,
  actor: Actor,
  req: FastifyRequest,
  reply: FastifyReply,
  homeId?: string,
): Promise<Pick<PeerLists, 'alerts' | 'incidents' | 'disablements'> | undefined> {
  if (peers === undefined) return undefined;
  const wanted = registry.site.homes.map((h) => h.id).filter((h) => canSeeHome(actor, h) && (homeId === undefined || h === homeId) && !peers.owns(h));
  if (wanted.length === 0) return undefined;
  const got = await peers.lists(bearerOf(req));
  const answered = new Set(got.homes);
  const missing = wanted.filter((h) => !answered.has(h));
  if (missing.length > 0) void reply.header(PARTIAL_HEADER, 'true').header(MISSING_HOMES_HEADER, missing.join(','));
  return got;
}

function refused(code: string, message: string): never {
  // The owner's catalogue is ours (same code base); an unknown code is still an error, never a success.
  const known = (Object.keys(ALERT_ERRORS) as AlertErrorCode[]).find((c) => c === code);
  throw new AlertsError(known ?? 'API_INTERNAL', message);
}

/**
 * Runs an action here when this node holds the alert or incident, else on the node that does; with
 * no peers (one instance) or nobody holding it, the local lifecycle answers (ALERT_NOT_FOUND etc.).
 */
export async function performRest<T extends AlertMessage | IncidentMessage>(
  peers: RestPeers | undefined,
  lifecycle: Lifecycle,
  req: FastifyRequest,
  action: PeerAction,
  local: () => Outcome<T>,
): Promise<T> {
  if (peers !== undefined && !holds(lifecycle, action)) {
    const r = await peers.act(bearerOf(req), action);
    if (r !== undefined) {
      if (!r.ok) refused(r.code, r.error);
      return ('alert' in r ? r.alert : r.incident) as T;
    }
  }
  const o = local();
  if (!o.ok) throw new AlertsError(o.code, o.message);
  return o.value;
}

export type { Disablement };
