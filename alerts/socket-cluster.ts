import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import type { Logger } from '../common/logger.ts';
import { guardSubscriberMessages } from '../common/redis-subscriber-guard.ts';
import { createRejectionLog } from '../common/rejection-log.ts';
import { settlesWithin } from '../common/settles-within.ts';
import type { Disablement, IncidentMessage } from '../contract/incidents.ts';
import { CONFIRMATIONS, type AlertMessage, type Confirmation } from '../contract/payloads.ts';
import type { AckResult, IncidentResult } from '../contract/socket-events.ts';
import type { Actor } from './access.ts';
import type { Revocation } from './http/token.ts';
import { ALERT_ERRORS, type Outcome } from './errors.ts';
import type { Lifecycle } from './lifecycle.ts';

/**
 * socket.io across alerts nodes (issue 14, docs/scaling.md "Services partitioned by home" "Web nodes").
 *
 * Every alerts instance serves the page; `@socket.io/redis-adapter` carries each room broadcast
 * (`home:{id}`, `bureau`) to the sockets of every node, so staff of a home see its alerts whichever
 * node their page reached. What a page asks (acknowledge, confirm, resolve an alert or incident; the
 * open alerts on connect) is answered by the node whose lifecycle holds the alert: a node that does
 * not hold it asks its peers with `serverSideEmit` (with an acknowledgement) over the same Redis, and the owner replies
 * with its lifecycle's own result (the page gets the owner's AckResult, errors included).
 *
 * Why this and not an MQTT command topic or HTTP to the owner: the adapter already knows every live
 * node and gives request/response with a timeout; no owner map has to be configured on the web side
 * (a moved home is found where it is now); no new topic, broker grant or listener address is needed.
 *
 * The page's token is forwarded, not the actor: the owner verifies it itself (every node has the same
 * CAREWATCH_TOKEN_SECRET), so a node never acts on a peer's word about who someone is.
 */

export type PeerAction =
  | { readonly op: 'ack' | 'ackIncident'; readonly id: string; readonly comment?: string }
  | { readonly op: 'resolve' | 'resolveIncident'; readonly id: string; readonly comment?: string }
  | { readonly op: 'confirm' | 'confirmIncident'; readonly id: string; readonly confirmation: Confirmation; readonly comment?: string };

export type ActionResult = AckResult | IncidentResult;

/** The inter-node event names (prefixed: the adapter's channel is shared with nothing else, but be clear). */
const ACT = 'carewatch:act';
/** A user signed out on one node: the others refuse the token too and disconnect its pages (sign-out.ts). */
const SIGN_OUT = 'carewatch:sign-out';
/**
 * The sign-outs are also kept in Redis, one key each until the token's expiry, for the nodes that
 * did not hear the broadcast (pub/sub is fire-and-forget): a node starting, or whose subscriber
 * connection came back after a loss, reads them (a signed-out token is revoked on the word of Redis,
 * which can only take access away).
 */
const SIGNED_OUT_PREFIX = 'carewatch:signed-out:';
const OPEN = 'carewatch:open';
const LIST = 'carewatch:list';

/** Whether this node's lifecycle holds the alert or incident the action names. */
export function holds(lifecycle: Lifecycle, a: PeerAction): boolean {
  return a.op.endsWith('Incident') ? lifecycle.storedIncident(a.id) !== undefined : lifecycle.stored(a.id) !== undefined;
}

function alertResult(r: Outcome<AlertMessage>): AckResult {
  return r.ok ? { ok: true, alert: r.value } : { ok: false, code: r.code, error: r.message };
}
function incidentResult(r: Outcome<IncidentMessage>): IncidentResult {
  return r.ok ? { ok: true, incident: r.value } : { ok: false, code: r.code, error: r.message };
}

/** Runs one action on this node's lifecycle (role scoping is the lifecycle's, as for a local page). */
export function runAction(lifecycle: Lifecycle, a: PeerAction, actor: Actor): ActionResult {
  switch (a.op) {
    case 'ack':
      return alertResult(lifecycle.ack(a.id, actor, a.comment));
    case 'confirm':
      return alertResult(lifecycle.confirm(a.id, actor, a.confirmation, a.comment));
    case 'resolve':
      return alertResult(lifecycle.resolve(a.id, actor, a.comment));
    case 'ackIncident':
      return incidentResult(lifecycle.ackIncident(a.id, actor, a.comment));
    case 'confirmIncident':
      return incidentResult(lifecycle.confirmIncident(a.id, actor, a.confirmation, a.comment));
    case 'resolveIncident':
      return incidentResult(lifecycle.resolveIncident(a.id, actor, a.comment));
  }
}

/** A peer's request is checked like any outside input before it reaches a lifecycle. */
function peerAction(v: unknown): PeerAction | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const id = typeof o.id === 'string' && o.id.length <= 128 ? o.id : undefined;
  const comment = typeof o.comment === 'string' && o.comment.length <= 1000 ? o.comment : undefined;
  if (id === undefined) return undefined;
  const c = comment !== undefined ? { comment } : {};
  switch (o.op) {
    case 'ack':
    case 'ackIncident':
    case 'resolve':
    case 'resolveIncident':
      return { op: o.op, id, ...c };
    case 'confirm':
    case 'confirmIncident':
      return (CONFIRMATIONS as readonly unknown[]).includes(o.confirmation) ? { op: o.op, id, confirmation: o.confirmation as Confirmation, ...c } : undefined;
    default:
      return undefined;
  }
}

type PeerActReply = { readonly handled: false } | { readonly handled: true; readonly result: ActionResult };
type PeerOpenReply = { readonly alerts: AlertMessage[]; readonly incidents: IncidentMessage[] };
/** The peers' open alerts and incidents; `complete` false when a node did not answer in time (or Redis is away). */
export type PeerOpen = PeerOpenReply & { readonly complete: boolean };

/**
 * What a node answers a REST list request with (GET /api/alerts, /api/incidents, /api/disablements
 * on a node that does not own every home): what the actor may see of the homes it owns, and which
 * homes those are, so the asking node can tell a home nobody answered for (owner down or late) from
 * a home with nothing open. Role scoping is the owner's (canSeeAlert/canSeeHome), as locally.
 */
export interface PeerListReply {
  readonly homes: string[];
  readonly alerts: AlertMessage[];
  readonly incidents: IncidentMessage[];
  readonly disablements: Disablement[];
}

/** The peers' lists merged; `complete` false when a node did not answer in time (or Redis is away). */
export interface PeerLists {
  readonly homes: string[];
  readonly alerts: AlertMessage[];
  readonly incidents: IncidentMessage[];
  readonly disablements: Disablement[];
  readonly complete: boolean;
}

/** The part of socket.io's Server this module uses, typed for its own inter-node events. */
interface PeerIo {
  on(ev: string, listener: (...args: unknown[]) => void): unknown;
  serverSideEmit(ev: string, ...args: unknown[]): unknown;
}

export interface PeerHandlers {
  readonly lifecycle: Lifecycle;
  /** The actor of a forwarded token, undefined when it is not (or no longer) valid. */
  readonly verify: (token: string) => Actor | undefined;
  /** What this node holds that the actor's live stream carries; notes the delivery (pushedAt) as a local snapshot does. */
  readonly openFor: (actor: Actor) => PeerOpenReply;
  /** Another node ended this token's session (its signature is checked here: a peer's word is not taken for it). */
  readonly signedOut?: (token: string) => void;
  /** The sign-outs kept in Redis, read at attach and after each return of the subscriber connection. */
  readonly signedOutList?: (list: Revocation[]) => void;
}

export interface SocketCluster {
  /** The adapter to give socket.io (`io.adapter(...)`). */
  readonly adapter: ReturnType<typeof createAdapter>;
  /** Answers peers' requests on this node's io. */
  attach(io: unknown, handlers: PeerHandlers): void;
  /** Asks the peers to act; the owner's result, or undefined when no peer holds it. */
  forward(io: unknown, token: string, action: PeerAction): Promise<ActionResult | undefined>;
  /** The open alerts and incidents the peers hold for this token's user; `complete` false when one did not answer. */
  openElsewhere(io: unknown, token: string): Promise<PeerOpen>;
  /** Answers peers' REST list requests with this (set before attach; alerts.ts). */
  serveLists(listFor: (actor: Actor) => PeerListReply): void;
  /** The other nodes' lists for this token's user (REST reads; the io given to attach). */
  lists(token: string): Promise<PeerLists>;
  /**
   * Tells the other nodes a token's session ended here (no answer awaited: each refuses it once it
   * hears), and keeps it in Redis until the token's expiry for those that do not hear it.
   */
  signOutElsewhere(token: string, revocation: Revocation, now: number): void;
  /** forward() on the io given to attach (REST actions); OWNER_UNREACHABLE before attach. */
  act(token: string, action: PeerAction): Promise<ActionResult | undefined>;
  close(): Promise<void>;
  /** Both Redis connections up: otherwise this node's broadcasts stay on this node (a /health problem). */
  connected(): boolean;
  /**
   * failedCommands: the adapter's commands that failed (Redis refused one, or the connection closed
   * for good with them queued: close() with Redis away or stalled); each is a broadcast or a
   * subscription the other nodes did not get. malformedMessages: messages on the adapter's channels
   * it could not read (dropped; guardSubscriberMessages).
   */
  stats(): { forwarded: number; forwardFailures: number; peerRequests: number; connected: boolean; failedCommands: number; malformedMessages: number };
}

export interface SocketClusterDeps {
  readonly redisUrl: string;
  readonly logger: Logger;
  /** How long a forwarded request waits for the peers (default 3 s). */
  readonly requestTimeoutMs?: number;
}

/** The commands `@socket.io/redis-adapter` 8.3 sends without waiting for (or handling) the reply. */
const UNWAITED = ['publish', 'subscribe', 'psubscribe', 'unsubscribe', 'punsubscribe'] as const;

/**
 * The adapter discards the promises of its PUBLISH and (P)(UN)SUBSCRIBE. While Redis is away or
 * stalled they wait in ioredis's queues (maxRetriesPerRequest: null); a connection closed for good
 * (our close() while it connects, or a Redis that is loading) rejects every one ("Connection is
 * closed"), and a Redis that refuses a command (an ACL, a full memory) rejects it at once.
 * Unhandled, each rejection ends the process under Node's default (--unhandled-rejections=throw):
 * during its close, before the snapshot is saved (seen as 89 at once in a test run), or at any time
 * (the same flaw is socketio/socket.io-redis-emitter#139). So each gets a handler here: the caller
 * still gets the same promise, and the failure is counted and logged.
 */
function handleUnwaited(client: Redis, onFailed: (err: unknown) => void): void {
  for (const name of UNWAITED) {
    const original = client[name] as (...args: unknown[]) => unknown;
    Object.defineProperty(client, name, {
      configurable: true,
      writable: true,
      value: (...args: unknown[]): unknown => {
        const result = original.apply(client, args);
        if (result instanceof Promise) result.catch(onFailed);
        return result;
      },
    });
  }
}

/** The page's answer when the owner did not reply in time (Redis away, or the owner down). */
const OWNER_UNREACHABLE: ActionResult = { ok: false, code: 'CLUSTER_OWNER_UNREACHABLE', error: ALERT_ERRORS.CLUSTER_OWNER_UNREACHABLE.message };

export function createSocketCluster(deps: SocketClusterDeps): SocketCluster {
  const log = deps.logger.child({ component: 'socket-cluster' });
  const timeoutMs = deps.requestTimeoutMs ?? 3000;
  // No request is ever dropped for Redis being away: commands wait in ioredis's offline queue
  // (maxRetriesPerRequest: null) and go out on reconnect; our own calls are bounded by timeoutMs.
  // Connects at once: the alerts create this in their start(), never in their constructor.
  const pub = new Redis(deps.redisUrl, { maxRetriesPerRequest: null });
  const sub = pub.duplicate();
  let failedCommands = 0;
  // A refused command repeats with every broadcast: 10 lines a minute, then a count.
  const failures = createRejectionLog<'ALERTS_REDIS_COMMAND_FAILED'>(log, Date.now, 10, 60_000, 'a Redis command of the socket.io adapter failed: a broadcast or subscription the other nodes did not get');
  for (const [name, c] of [['pub', pub], ['sub', sub]] as const) {
    c.on('error', (err: Error) => log.warn({ err, client: name, code: 'ALERTS_REDIS_ERROR' }, 'Redis connection error; retrying'));
    handleUnwaited(c, (err) => {
      failedCommands++;
      failures.record('ALERTS_REDIS_COMMAND_FAILED', name, err instanceof Error ? err.message : String(err));
    });
  }
  let malformedMessages = 0;
  const malformed = createRejectionLog<'ALERTS_REDIS_MESSAGE_MALFORMED'>(log, Date.now, 10, 60_000, 'a message on the socket.io adapter\'s Redis channels could not be read: dropped');
  // The adapter decodes other nodes' messages unguarded: one it cannot read (a nil request, a
  // broadcast without its options) ended the process, every node's at once (guardSubscriberMessages).
  guardSubscriberMessages(sub, (event, channel, err) => {
    malformedMessages++;
    malformed.record('ALERTS_REDIS_MESSAGE_MALFORMED', channel, `${event}: ${err instanceof Error ? err.message : String(err)}`);
  });
  const adapter = createAdapter(pub, sub, { key: 'carewatch-socket', requestsTimeout: timeoutMs });
  let forwarded = 0;
  let forwardFailures = 0;
  let peerRequests = 0;
  let attached: unknown;
  let listFor: ((actor: Actor) => PeerListReply) | undefined;

  /**
   * Asks every other node; their answers, with `complete` false when some did not answer within the
   * adapter's timeout (the answers that came are kept), or undefined when the request could not even
   * be sent in time (Redis away).
   */
  function ask(io: unknown, ev: string, ...args: unknown[]): Promise<{ responses: unknown[]; complete: boolean } | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        log.warn({ event: ev, code: 'ALERTS_CLUSTER_TIMEOUT' }, 'no answer from the other nodes (Redis unreachable?)');
        resolve(undefined);
      }, timeoutMs + 500);
      (io as PeerIo).serverSideEmit(ev, ...args, (err: Error | null, responses: unknown[] | undefined) => {
        clearTimeout(timer);
        if (err) log.warn({ err, event: ev, code: 'ALERTS_CLUSTER_TIMEOUT' }, 'a node did not answer in time');
        resolve({ responses: Array.isArray(responses) ? responses : [], complete: !err });
      });
    });
  }

  /** Every sign-out kept in Redis (SCAN, then the values). */
  async function readSignedOut(): Promise<Revocation[]> {
    const keys: string[] = [];
    for await (const batch of pub.scanStream({ match: `${SIGNED_OUT_PREFIX}*`, count: 1000 })) keys.push(...(batch as string[]));
    const out: Revocation[] = [];
    for (let i = 0; i < keys.length; i += 1000) {
      const part = keys.slice(i, i + 1000);
      const values = await pub.mget(...part);
      part.forEach((key, j) => {
        try {
          const v = JSON.parse(values[j] ?? 'null') as { exp?: unknown; sub?: unknown } | null;
          if (typeof v?.exp === 'number' && typeof v.sub === 'string') out.push({ id: key.slice(SIGNED_OUT_PREFIX.length), exp: v.exp, sub: v.sub });
        } catch {
          // Not ours to read: left out (it expires).
        }
      });
    }
    return out;
  }

  const cluster: SocketCluster = {
    adapter,
    attach(io, h) {
      attached = io;
      const peerIo = io as PeerIo;
      peerIo.on(LIST, (token: unknown, reply: unknown) => {
        peerRequests++;
        if (typeof reply !== 'function' || listFor === undefined) return;
        const actor = typeof token === 'string' ? h.verify(token) : undefined;
        // An invalid token sees nothing; the asking node verified it too, so this is a race with expiry.
        (reply as (x: PeerListReply) => void)(actor === undefined ? { homes: [], alerts: [], incidents: [], disablements: [] } : listFor(actor));
      });
      peerIo.on(ACT, (token: unknown, action: unknown, reply: unknown) => {
        peerRequests++;
        if (typeof reply !== 'function') return;
        const a = peerAction(action);
        const actor = typeof token === 'string' ? h.verify(token) : undefined;
        const answer = (r: PeerActReply): void => (reply as (x: PeerActReply) => void)(r);
        if (a === undefined || !holds(h.lifecycle, a)) return answer({ handled: false });
        if (actor === undefined) return answer({ handled: true, result: { ok: false, code: 'AUTH_REQUIRED', error: 'the session has expired or the user changed; log in again' } });
        answer({ handled: true, result: runAction(h.lifecycle, a, actor) });
      });
      peerIo.on(SIGN_OUT, (token: unknown) => {
        peerRequests++;
        if (typeof token === 'string') h.signedOut?.(token);
      });
      const take = h.signedOutList;
      if (take !== undefined) {
        const load = (): void => {
          void readSignedOut().then(take, (err: unknown) => log.warn({ err, code: 'ALERTS_REDIS_COMMAND_FAILED' }, 'sign-outs kept in Redis not read'));
        };
        load();
        // The subscriber back after a loss: broadcasts sent meanwhile were missed.
        let lost = false;
        sub.on('end', () => (lost = true));
        sub.on('close', () => (lost = true));
        sub.on('ready', () => {
          if (!lost) return;
          lost = false;
          load();
        });
      }
      peerIo.on(OPEN, (token: unknown, reply: unknown) => {
        peerRequests++;
        if (typeof reply !== 'function') return;
        const actor = typeof token === 'string' ? h.verify(token) : undefined;
        (reply as (x: PeerOpenReply) => void)(actor === undefined ? { alerts: [], incidents: [] } : h.openFor(actor));
      });
    },
    signOutElsewhere(token, revocation, now) {
      if (attached !== undefined) (attached as PeerIo).serverSideEmit(SIGN_OUT, token);
      const ttl = revocation.exp - now;
      if (ttl > 0) {
        pub.set(`${SIGNED_OUT_PREFIX}${revocation.id}`, JSON.stringify({ exp: revocation.exp, sub: revocation.sub }), 'PX', ttl).catch((err: unknown) =>
          log.warn({ err, code: 'ALERTS_REDIS_COMMAND_FAILED' }, 'sign-out not kept in Redis: a node that misses its broadcast accepts the token until it expires'),
        );
      }
    },
    async forward(io, token, action) {
      forwarded++;
      const replies = await ask(io, ACT, token, action);
      for (const r of replies?.responses ?? []) {
        if (typeof r === 'object' && r !== null && (r as PeerActReply).handled === true) return (r as { result: ActionResult }).result;
      }
      // Nobody had it, but someone did not answer: it may be the owner. Say so, act on nothing.
      if (replies === undefined || !replies.complete) {
        forwardFailures++;
        return OWNER_UNREACHABLE;
      }
      return undefined;
    },
    async openElsewhere(io, token) {
      // What answered is shown; a node that did not answer in time is logged (ask) and the snapshot
      // marked partial, so the page keeps what it shows of that node's homes (socket.ts).
      const asked = await ask(io, OPEN, token);
      const replies = asked?.responses ?? [];
      const alerts: AlertMessage[] = [];
      const incidents: IncidentMessage[] = [];
      for (const r of replies) {
        if (typeof r !== 'object' || r === null) continue;
        const o = r as Partial<PeerOpenReply>;
        if (Array.isArray(o.alerts)) alerts.push(...o.alerts);
        if (Array.isArray(o.incidents)) incidents.push(...o.incidents);
      }
      return { alerts, incidents, complete: asked?.complete === true };
    },
    serveLists(f) {
      listFor = f;
    },
    async lists(token) {
      if (attached === undefined) return { homes: [], alerts: [], incidents: [], disablements: [], complete: false };
      const replies = await ask(attached, LIST, token);
      const out = { homes: [] as string[], alerts: [] as AlertMessage[], incidents: [] as IncidentMessage[], disablements: [] as Disablement[] };
      for (const r of replies?.responses ?? []) {
        if (typeof r !== 'object' || r === null) continue;
        const o = r as Partial<PeerListReply>;
        if (Array.isArray(o.homes)) out.homes.push(...o.homes.filter((h): h is string => typeof h === 'string'));
        if (Array.isArray(o.alerts)) out.alerts.push(...o.alerts);
        if (Array.isArray(o.incidents)) out.incidents.push(...o.incidents);
        if (Array.isArray(o.disablements)) out.disablements.push(...o.disablements);
      }
      return { ...out, complete: replies?.complete === true };
    },
    act(token, action) {
      return attached === undefined ? Promise.resolve(OWNER_UNREACHABLE) : cluster.forward(attached, token, action);
    },
    async close() {
      // quit() sends what is queued, then closes; disconnect() if Redis is not there to answer.
      await Promise.all([pub, sub].map((c) => settlesWithin(c.quit(), 1000).finally(() => c.disconnect())));
      // What was still queued is counted now, or when Redis closes the connections (handleUnwaited);
      // the pages of this node reconnect to another one and get the open alerts in their snapshot.
      failures.close();
      malformed.close();
    },
    connected: () => pub.status === 'ready' && sub.status === 'ready',
    stats: () => ({ forwarded, forwardFailures, peerRequests, connected: pub.status === 'ready' && sub.status === 'ready', failedCommands, malformedMessages }),
  };
  return cluster;
}
