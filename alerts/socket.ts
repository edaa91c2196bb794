import type { Server as HttpServer } from 'node:http';
import { Server, type Socket } from 'socket.io';
import type { Clock, ClockTimer } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import { CONFIRMATIONS, type AlertMessage, type Confirmation } from '../contract/payloads.ts';
import type { IncidentMessage } from '../contract/incidents.ts';
import { BUREAU_ROOM, homeRoom, type AckResult, type ClientToServerEvents, type IncidentResult, type ServerToClientEvents, type SocketData } from '../contract/socket-events.ts';
import { USER_ROLES, type UserRole } from '../contract/registry.ts';
import { canSeeAlert, goesToBureau, ownHomes, seesAllHomes, type Actor } from './access.ts';
import { fail, type Outcome } from './errors.ts';
import type { Lifecycle } from './lifecycle.ts';
import { revocationId, type Revocation, type TokenService } from './http/token.ts';
import { attachDisablementHandlers } from './disablements/socket-handlers.ts';
import type { DisablementStore } from './disablements/store.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import { HANDSHAKE_LIMITS, createHandshakeBound, type Engine, type EngineConnection } from './socket-handshakes.ts';
import { holds, runAction, type ActionResult, type PeerAction, type SocketCluster } from './socket-cluster.ts';

/**
 * socket.io attached by hand to fastify's HTTP server. The token from POST /api/login is verified
 * at the handshake; rooms follow from it (there is no join event, so a staff socket can never get
 * into another home's room): `home:{id}` for staff and directors, `bureau` for bureau and admin.
 * A session lives no longer than its token: the socket is disconnected at the token's expiry (one
 * clock timer per socket), and every event handler re-checks the expiry and the user (still in the
 * registry with the same role and home) before acting.
 */
type IoServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type IoSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

export interface SocketHubDeps {
  readonly server: HttpServer;
  readonly tokens: TokenService;
  readonly lifecycle: Lifecycle;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Test and maintenance mode (issue 11): the `disablements` list and the `disable`/`enable` handlers. */
  readonly disablements?: { readonly store: DisablementStore; readonly registry: RegistryIndex; readonly owns?: (homeId: string) => boolean };
  /**
   * Issue 14: the other alerts nodes, over Redis (alerts/socket-cluster.ts). Room broadcasts reach
   * every node's sockets; a page's action on an alert this node does not hold goes to the node that
   * does; the snapshot on connect includes what the other nodes hold.
   */
  readonly cluster?: SocketCluster;
  /** Another web node ended a token's session (sign-out.ts); this node refuses it too. */
  readonly onPeerSignOut?: (token: string) => void;
  /** The sign-outs the web nodes keep in Redis (socket-cluster.ts), read at start and after a loss of the subscriber. */
  readonly onSignedOutList?: (list: Revocation[]) => void;
}

export interface SocketHub {
  readonly io: IoServer;
  /** Sends one alert change to its home room, and to the bureau room for fire and escalated alerts. */
  publish(alert: AlertMessage): void;
  /** After a disablement of `homeId` changed: its home room gets the home's list, the bureau room all of them. */
  publishDisablements(homeId: string): void;
  /** Sends one incident change to its home room, and to the bureau room for fire and bureau-level incidents. */
  publishIncident(incident: IncidentMessage): void;
  connections(): number;
  /** Disconnects this node's pages connected with the token of this revocation id (it was signed out); how many. */
  endSession(revocation: string): number;
  /** Pages closed because they did not read what they were sent (MAX_SOCKET_BACKLOG_PACKETS), since start. */
  backlogClosed(): number;
  /** socket.io sessions still waiting for their authenticated CONNECT (bounded: socket-handshakes.ts). */
  pendingHandshakes(): number;
  close(): Promise<void>;
}

function actorOf(data: SocketData): Actor {
  return {
    username: data.username,
    role: data.role as UserRole,
    ...(data.homeId !== undefined ? { homeId: data.homeId } : {}),
    ...(data.providerId !== undefined ? { providerId: data.providerId } : {}),
    ...(data.homeIds !== undefined ? { homeIds: data.homeIds } : {}),
  };
}

/** What this socket's live stream carries, so that the snapshot matches it. */
function inStream(actor: Actor, alert: AlertMessage): boolean {
  // An inhibited alert is no card of its own: its incident shows it.
  if (alert.inhibited !== undefined) return false;
  return seesAllHomes(actor) ? goesToBureau(alert) : canSeeAlert(actor, alert);
}

/** An incident reaches the bureau as an alert would: every fire, and anything escalated to the bureau. */
function incidentGoesToBureau(i: IncidentMessage): boolean {
  return goesToBureau({ category: i.kind, ...(i.escalationLevel !== undefined ? { escalationLevel: i.escalationLevel } : {}) });
}

function incidentInStream(actor: Actor, i: IncidentMessage): boolean {
  return seesAllHomes(actor) ? incidentGoesToBureau(i) : canSeeAlert(actor, i);
}

/**
 * A page whose connection stays open but which stops reading (a phone in a lift, or a client that
 * does it on purpose) has every alert change queued for it in engine.io's write buffer, without
 * bound: ~6.7 KB per change, and a client that keeps answering pings is never timed out (found in
 * session 21: 57 MB for two such sockets over 15,000 changes, still growing). Past this many packets
 * waiting the transport is closed with its buffer discarded; a real page reconnects and gets the
 * open alerts in its snapshot. A page that reads keeps a handful at most, even in an alarm storm.
 */
export const MAX_SOCKET_BACKLOG_PACKETS = 1_000;
/** How often the backlogs are looked at. */
const BACKLOG_CHECK_MS = 2_000;

/**
 * engine.io's heartbeat (docs/alerts.md "Sessions and logins", heartbeat). A link that dies without
 * a close (Wi-Fi gone, a NAT mapping dropped) is noticed only by a missing ping: the page gives up
 * `pingInterval + pingTimeout` after the last ping it got, the server `pingTimeout` after a ping not
 * answered. socket.io's defaults (25 s + 20 s) left a page saying "connected" for ~45 s while no
 * alarm could reach it; GB 50440 / GB 26875 ask for an alarm at the monitoring centre within 10 s,
 * so the person at the screen must learn within that time that this screen cannot get one. 4 s + 4 s:
 * at most 8 s. Cost: one ping and one pong (a few bytes each, one websocket frame) per socket every
 * 4 s, ~30 B/s per page with TCP/IP headers: 1,000 pages ~30 KB/s and 250 timer firings a second.
 */
export const HEARTBEAT = { pingIntervalMs: 4_000, pingTimeoutMs: 4_000 } as const;

/** A client's renewed token for its open socket (the page's POST /api/token/renew, then this event). */
const RENEW_EVENT = 'renew';

/** engine.io's per-connection write buffer (a private field of engine.io 6's Socket: read defensively). */
function backlogOf(conn: unknown): number {
  const buffered = (conn as { writeBuffer?: unknown }).writeBuffer;
  return Array.isArray(buffered) ? buffered.length : 0;
}

export function createSocketHub(deps: SocketHubDeps): SocketHub {
  const log = deps.logger.child({ component: 'socket' });
  // Sessions that never authenticate are bounded (issue 12: hostile handshakes grew the heap).
  const handshakes = createHandshakeBound();
  const io: IoServer = new Server(deps.server, {
    serveClient: true,
    cors: { origin: false },
    maxHttpBufferSize: 16 * 1024,
    connectTimeout: HANDSHAKE_LIMITS.connectTimeoutMs,
    allowRequest: handshakes.allowRequest,
    pingInterval: HEARTBEAT.pingIntervalMs,
    pingTimeout: HEARTBEAT.pingTimeoutMs,
  });
  handshakes.attach(io.engine as unknown as Engine);
  let backlogClosed = 0;
  let backlogTimer: ClockTimer | undefined;
  const checkBacklogs = (): void => {
    for (const socket of io.of('/').sockets.values()) {
      const packets = backlogOf(socket.conn);
      if (packets <= MAX_SOCKET_BACKLOG_PACKETS) continue;
      backlogClosed++;
      log.warn({ code: 'ALERTS_SOCKET_BACKLOG', user: socket.data.username, packets }, 'closing a page that does not read what it is sent; it reconnects and gets the open alerts again');
      socket.conn.close(true);
      // A websocket's close waits for the page's close frame, which a page that does not read never
      // sends (ws gives up after 30 s, the backlog held meanwhile): cut it now. Polling has no socket.
      const ws = (socket.conn as unknown as { transport?: { socket?: { terminate?: unknown } } }).transport?.socket;
      if (typeof ws?.terminate === 'function') (ws.terminate as () => void).call(ws);
    }
    backlogTimer = deps.clock.setTimeout(checkBacklogs, BACKLOG_CHECK_MS);
  };
  backlogTimer = deps.clock.setTimeout(checkBacklogs, BACKLOG_CHECK_MS);
  /**
   * The token of each socket's handshake. contract/socket-events.ts SocketData has no expiry field
   * (the contract is not this folder's), so it is kept beside socket.data, keyed by the socket.
   */
  const tokenOf = new WeakMap<IoSocket, string>();

  /** The open alerts and incidents this node holds that the actor's stream carries, noted as pushed to them. */
  function localOpen(actor: Actor, to: string): { alerts: AlertMessage[]; incidents: IncidentMessage[] } {
    const alerts = deps.lifecycle.open().filter((a) => inStream(actor, a));
    // An alert raised while nobody was connected reaches its first client here.
    for (const a of alerts) if (a.pushedAt === undefined) deps.lifecycle.notePushed(a.id, `snapshot to ${to}`);
    if (seesAllHomes(actor)) for (const a of alerts) if (a.category === 'fire' && a.bureauPushedAt === undefined) deps.lifecycle.noteBureauPushed(a.id, `snapshot to ${to}`);
    // Issue 11: the open incidents after the alerts, with the same delivery facts.
    const incidents = deps.lifecycle.openIncidents().filter((i) => incidentInStream(actor, i));
    for (const i of incidents) if (i.pushedAt === undefined) deps.lifecycle.noteIncidentPushed(i.id, `snapshot to ${to}`);
    if (seesAllHomes(actor)) for (const i of incidents) if (i.kind === 'fire' && i.bureauPushedAt === undefined) deps.lifecycle.noteIncidentBureauPushed(i.id, `snapshot to ${to}`);
    return { alerts, incidents };
  }

  if (deps.cluster !== undefined) {
    io.adapter(deps.cluster.adapter);
    deps.cluster.attach(io, {
      lifecycle: deps.lifecycle,
      verify: (token) => deps.tokens.verify(token, deps.clock.now()),
      openFor: (actor) => localOpen(actor, `${actor.username} on another node`),
      ...(deps.onPeerSignOut !== undefined ? { signedOut: deps.onPeerSignOut } : {}),
      ...(deps.onSignedOutList !== undefined ? { signedOutList: deps.onSignedOutList } : {}),
    });
  }

  io.use((socket, next) => {
    const auth: unknown = socket.handshake.auth;
    const token = typeof auth === 'object' && auth !== null && 'token' in auth ? (auth as { token: unknown }).token : undefined;
    const actor = typeof token === 'string' ? deps.tokens.verify(token, deps.clock.now()) : undefined;
    if (typeof token === 'string') tokenOf.set(socket, token);
    if (actor === undefined || !(USER_ROLES as readonly string[]).includes(actor.role)) {
      const err = new Error('AUTH_REQUIRED') as Error & { data?: unknown };
      err.data = { code: 'AUTH_REQUIRED' };
      return next(err);
    }
    socket.data = {
      username: actor.username,
      role: actor.role,
      ...(actor.homeId !== undefined ? { homeId: actor.homeId } : {}),
      ...(actor.providerId !== undefined ? { providerId: actor.providerId } : {}),
      ...(actor.homeIds !== undefined ? { homeIds: [...actor.homeIds] } : {}),
    };
    next();
  });

  function replyWith(reply: unknown, r: Outcome<AlertMessage>): void {
    if (typeof reply !== 'function') return;
    const result: AckResult = r.ok ? { ok: true, alert: r.value } : { ok: false, code: r.code, error: r.message };
    (reply as (x: AckResult) => void)(result);
  }

  function replyIncident(reply: unknown, r: Outcome<IncidentMessage>): void {
    if (typeof reply !== 'function') return;
    const result: IncidentResult = r.ok ? { ok: true, incident: r.value } : { ok: false, code: r.code, error: r.message };
    (reply as (x: IncidentResult) => void)(result);
  }

  const bad = (message: string): Outcome<AlertMessage> => ({ ok: false, code: 'API_BAD_REQUEST', message });
  const badIncident = (message: string): Outcome<IncidentMessage> => ({ ok: false, code: 'API_BAD_REQUEST', message });
  const str = (v: unknown, max: number): string | undefined => (typeof v === 'string' && v.length <= max ? v : undefined);

  io.on('connection', (socket: IoSocket) => {
    handshakes.settle(socket.conn as unknown as EngineConnection);
    const actor = actorOf(socket.data);
    // Replaced when the page renews its token over this socket (RENEW_EVENT).
    let token = tokenOf.get(socket) ?? '';
    /** Still valid now: not expired, and the user unchanged in the registry. */
    const live = (): boolean => deps.tokens.session(token, deps.clock.now()) !== undefined;
    let expiryTimer: ClockTimer | undefined;
    /**
     * Arms the timer for the token's expiry; at it, the token is checked again (the clock may have
     * been stepped since): still valid, armed again; not, the socket is cut. False when cut now.
     */
    const arm = (): boolean => {
      expiryTimer = undefined;
      const expiresAt = deps.tokens.session(token, deps.clock.now())?.expiresAt;
      if (expiresAt === undefined) {
        log.info({ username: actor.username, code: 'AUTH_REQUIRED' }, 'socket session expired; disconnecting');
        socket.disconnect(true);
        return false;
      }
      expiryTimer = deps.clock.setTimeout(arm, expiresAt - deps.clock.now());
      return true;
    };
    if (!arm()) return;
    socket.on('disconnect', () => {
      if (expiryTimer) deps.clock.clearTimeout(expiryTimer);
      expiryTimer = undefined;
    });
    if (seesAllHomes(actor)) void socket.join(BUREAU_ROOM);
    // A home's staff its home's room; a provider's users the room of each of its households.
    else for (const h of ownHomes(actor)) void socket.join(homeRoom(h));
    // The page renewed its token (POST /api/token/renew): the socket carries on with the new one, its
    // expiry timer moved, no reconnect and no alarm lost. Only a valid token of the same user, role
    // and home is taken (the rooms were chosen by the first); anything else leaves the socket as it is.
    (socket as unknown as { on(ev: string, fn: (t: unknown, reply: unknown) => void): void }).on(RENEW_EVENT, (t: unknown, reply: unknown) => {
      const answer = (x: { ok: boolean; expiresAt?: number; code?: string }): void => {
        if (typeof reply === 'function') (reply as (x: unknown) => void)(x);
      };
      const s = typeof t === 'string' ? deps.tokens.session(t, deps.clock.now()) : undefined;
      const same = s !== undefined && s.actor.username === actor.username && s.actor.role === actor.role && s.actor.homeId === actor.homeId && s.actor.providerId === actor.providerId;
      if (!same || typeof t !== 'string') return answer({ ok: false, code: 'AUTH_REQUIRED' });
      token = t;
      tokenOf.set(socket, t);
      if (expiryTimer) deps.clock.clearTimeout(expiryTimer);
      if (arm()) answer({ ok: true, expiresAt: s.expiresAt });
    });
    const cluster = deps.cluster;
    if (cluster === undefined) {
      const mine = localOpen(actor, actor.username);
      socket.emit('snapshot', mine.alerts);
      socket.emit('incidents', mine.incidents);
    } else {
      // The other nodes' part comes over Redis; one snapshot with both (the newest version of an id
      // wins, should two nodes hold it while a home moves). This node's part is read when the
      // snapshot is sent, not at connect: an alarm raised while the peers were asked (up to 3.5 s)
      // went out live before the snapshot and the snapshot, older, then took it off the page. A
      // snapshot without some peer's answer says so (`partial`): the page then removes nothing.
      void cluster.openElsewhere(io, token).then((other) => {
        if (!socket.connected) return;
        const mine = localOpen(actor, actor.username);
        const meta = { partial: !other.complete };
        const emit = socket.emit.bind(socket) as unknown as (ev: string, ...args: unknown[]) => void;
        emit('snapshot', newestById([...mine.alerts, ...other.alerts]), meta);
        emit('incidents', newestById([...mine.incidents, ...other.incidents]), meta);
      });
    }
    if (deps.disablements !== undefined) attachDisablementHandlers(socket, actor, live, deps.disablements);
    log.debug({ username: actor.username, role: actor.role }, 'socket connected');

    // Each handler checks its arguments itself: a socket client is outside input.
    const send = (reply: unknown, r: ActionResult): void => {
      if (typeof reply === 'function') (reply as (x: ActionResult) => void)(r);
    };
    /** On this node's lifecycle when it holds the alert or incident, else on the node that does (issue 14). */
    const perform = (a: PeerAction, reply: unknown): void => {
      const cluster = deps.cluster;
      if (cluster === undefined || holds(deps.lifecycle, a)) return send(reply, runAction(deps.lifecycle, a, actor));
      // No node holds it: the local lifecycle gives the usual not-found answer.
      void cluster.forward(io, token, a).then((r) => send(reply, r ?? runAction(deps.lifecycle, a, actor)));
    };
    const expired = (reply: unknown): boolean => {
      if (live()) return false;
      replyWith(reply, fail('AUTH_REQUIRED', 'the session has expired or the user changed; log in again'));
      socket.disconnect(true);
      return true;
    };
    socket.on('ack', (id: unknown, reply: unknown) => {
      if (expired(reply)) return;
      const alertId = str(id, 128);
      if (alertId === undefined) return replyWith(reply, bad('alertId must be a string'));
      perform({ op: 'ack', id: alertId }, reply);
    });
    socket.on('confirm', (id: unknown, confirmation: unknown, comment: unknown, reply: unknown) => {
      if (expired(reply)) return;
      const alertId = str(id, 128);
      if (alertId === undefined || !(CONFIRMATIONS as readonly unknown[]).includes(confirmation)) {
        return replyWith(reply, bad(`confirm(alertId, one of ${CONFIRMATIONS.join('|')}, comment)`));
      }
      perform(withComment({ op: 'confirm', id: alertId, confirmation: confirmation as Confirmation }, str(comment, 1000)), reply);
    });
    socket.on('resolve', (id: unknown, comment: unknown, reply: unknown) => {
      if (expired(reply)) return;
      const alertId = str(id, 128);
      if (alertId === undefined) return replyWith(reply, bad('alertId must be a string'));
      perform(withComment({ op: 'resolve', id: alertId }, str(comment, 1000)), reply);
    });
    // The same checks for incidents (token still valid, arguments of the right shape, role-scoped in the lifecycle).
    const expiredIncident = (reply: unknown): boolean => {
      if (live()) return false;
      replyIncident(reply, fail('AUTH_REQUIRED', 'the session has expired or the user changed; log in again'));
      socket.disconnect(true);
      return true;
    };
    socket.on('ackIncident', (id: unknown, reply: unknown) => {
      if (expiredIncident(reply)) return;
      const incidentId = str(id, 128);
      if (incidentId === undefined) return replyIncident(reply, badIncident('incidentId must be a string'));
      perform({ op: 'ackIncident', id: incidentId }, reply);
    });
    socket.on('confirmIncident', (id: unknown, confirmation: unknown, comment: unknown, reply: unknown) => {
      if (expiredIncident(reply)) return;
      const incidentId = str(id, 128);
      if (incidentId === undefined || !(CONFIRMATIONS as readonly unknown[]).includes(confirmation)) {
        return replyIncident(reply, badIncident(`confirmIncident(incidentId, one of ${CONFIRMATIONS.join('|')}, comment)`));
      }
      perform(withComment({ op: 'confirmIncident', id: incidentId, confirmation: confirmation as Confirmation }, str(comment, 1000)), reply);
    });
    socket.on('resolveIncident', (id: unknown, comment: unknown, reply: unknown) => {
      if (expiredIncident(reply)) return;
      const incidentId = str(id, 128);
      if (incidentId === undefined) return replyIncident(reply, badIncident('incidentId must be a string'));
      perform(withComment({ op: 'resolveIncident', id: incidentId }, str(comment, 1000)), reply);
    });
  });

  /**
   * With other nodes, the broadcast may have reached sockets there only: count them (a Redis round
   * trip, only for the first delivery of an alert that no local socket took) before noting it pushed.
   */
  function onOtherNodes(rooms: string[], note: (n: number) => void): void {
    io.in(rooms)
      .fetchSockets()
      .then(
        (sockets) => {
          if (sockets.length > 0) note(sockets.length);
        },
        (err: unknown) => log.warn({ err, code: 'ALERTS_CLUSTER_TIMEOUT' }, 'could not count the sockets on other nodes'),
      );
  }

  return {
    io,
    publish(alert) {
      const rooms = goesToBureau(alert) ? [homeRoom(alert.homeId), BUREAU_ROOM] : [homeRoom(alert.homeId)];
      io.to(rooms).emit('alert', alert);
      // GB 50440 / GB 26875 ask for the alarm at the monitoring centre within 10 s: record when it
      // first went out to at least one connected client (emit hands it to the sockets' transports).
      if (alert.pushedAt === undefined && alert.state !== 'resolved') {
        const reached = rooms.reduce((n, room) => n + (io.sockets.adapter.rooms.get(room)?.size ?? 0), 0);
        if (reached > 0) deps.lifecycle.notePushed(alert.id, `live to ${reached} socket(s) in ${rooms.join(', ')}`);
        else if (deps.cluster !== undefined) onOtherNodes(rooms, (n) => deps.lifecycle.notePushed(alert.id, `live to ${n} socket(s) in ${rooms.join(', ')} on other nodes`));
      }
      // For a fire alarm the 10 s is to the monitoring centre: only a non-empty bureau room counts.
      if (alert.category === 'fire' && alert.bureauPushedAt === undefined && alert.state !== 'resolved') {
        const bureau = io.sockets.adapter.rooms.get(BUREAU_ROOM)?.size ?? 0;
        if (bureau > 0) deps.lifecycle.noteBureauPushed(alert.id, `live to ${bureau} socket(s) in ${BUREAU_ROOM}`);
        else if (deps.cluster !== undefined) onOtherNodes([BUREAU_ROOM], (n) => deps.lifecycle.noteBureauPushed(alert.id, `live to ${n} socket(s) in ${BUREAU_ROOM} on other nodes`));
      }
    },
    publishDisablements(homeId) {
      const store = deps.disablements?.store;
      if (store === undefined) return;
      io.to(homeRoom(homeId)).emit('disablements', store.inForce(homeId));
      io.to(BUREAU_ROOM).emit('disablements', store.inForce());
    },
    publishIncident(incident) {
      const rooms = incidentGoesToBureau(incident) ? [homeRoom(incident.homeId), BUREAU_ROOM] : [homeRoom(incident.homeId)];
      io.to(rooms).emit('incident', incident);
      // GB 50440 / GB 26875 timing, as for alerts: first delivery to any client, and for a fire to the bureau.
      if (incident.pushedAt === undefined && incident.state !== 'resolved') {
        const reached = rooms.reduce((n, room) => n + (io.sockets.adapter.rooms.get(room)?.size ?? 0), 0);
        if (reached > 0) deps.lifecycle.noteIncidentPushed(incident.id, `live to ${reached} socket(s) in ${rooms.join(', ')}`);
        else if (deps.cluster !== undefined) onOtherNodes(rooms, (n) => deps.lifecycle.noteIncidentPushed(incident.id, `live to ${n} socket(s) in ${rooms.join(', ')} on other nodes`));
      }
      if (incident.kind === 'fire' && incident.bureauPushedAt === undefined && incident.state !== 'resolved') {
        const bureau = io.sockets.adapter.rooms.get(BUREAU_ROOM)?.size ?? 0;
        if (bureau > 0) deps.lifecycle.noteIncidentBureauPushed(incident.id, `live to ${bureau} socket(s) in ${BUREAU_ROOM}`);
        else if (deps.cluster !== undefined) onOtherNodes([BUREAU_ROOM], (n) => deps.lifecycle.noteIncidentBureauPushed(incident.id, `live to ${n} socket(s) in ${BUREAU_ROOM} on other nodes`));
      }
    },
    connections: () => io.engine.clientsCount,
    endSession(revocation) {
      let n = 0;
      for (const socket of io.of('/').sockets.values()) {
        const token = tokenOf.get(socket);
        if (token === undefined || revocationId(token) !== revocation) continue;
        // As at the token's expiry (arm): the page is told, and goes back to its login form.
        socket.disconnect(true);
        n++;
      }
      return n;
    },
    backlogClosed: () => backlogClosed,
    pendingHandshakes: () => handshakes.size(),
    async close() {
      // Transports closed, no socket.io DISCONNECT sent: the pages see "transport close" and
      // reconnect by themselves (to this node once restarted, or to another web node). Not
      // io.disconnectSockets(true): its DISCONNECT ("io server disconnect") makes socket.io clients
      // give up reconnecting, so every page stayed offline after a graceful restart, and with the
      // Redis adapter it is a cluster-wide broadcast that cut every page of EVERY web node
      // (test/cluster/all-nodes.test.ts, moving a home restarts web nodes gracefully).
      // io.close() would also close fastify's server; fastify closes that itself.
      if (backlogTimer !== undefined) deps.clock.clearTimeout(backlogTimer);
      backlogTimer = undefined;
      io.engine.close();
    },
  };
}

/** One per id, the highest version (alerts and incidents both carry id and version). */
function newestById<T extends { readonly id: string; readonly version: number }>(items: readonly T[]): T[] {
  const best = new Map<string, T>();
  for (const x of items) {
    const prior = best.get(x.id);
    if (prior === undefined || prior.version < x.version) best.set(x.id, x);
  }
  return [...best.values()];
}

function withComment<A extends PeerAction>(a: A, comment: string | undefined): A {
  return comment === undefined ? a : { ...a, comment };
}
