import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import helmet from '@fastify/helmet';
import type { Clock } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import { MIN_TLS_VERSION, type ServerTls } from '../../common/tls.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import type { CareActionInput } from '../care-action.ts';
import type { Actor } from '../access.ts';
import { ALERT_ERRORS, AlertsError } from '../errors.ts';
import type { Lifecycle } from '../lifecycle.ts';
import type { AlertStore } from '../persistence/alert-store.ts';
import { registerAlertRoutes } from './alert-routes.ts';
import type { RestPeers } from './peer-rest.ts';
import { registerAuthRoutes, type LoginLimits } from './auth-routes.ts';
import { registerHomeRoutes } from './home-routes.ts';
import { registerStaticFiles } from './static-files.ts';
import type { TokenService } from './token.ts';
import { openapiRoutes } from './openapi.ts';
import { liveRoutes, type ResidentCareStateOf } from './live.ts';
import { historyRoutes } from './history.ts';
import { statsRoutes } from './stats.ts';
import type { InfluxReader } from '../../common/influx/reader.ts';
import type { Registry } from 'prom-client';
import { deniedReply, healthzReply, metricsVerdict, type MetricsAccess } from '../../common/metrics.ts';
import type { SignOut } from '../sign-out.ts';
import { bearerToken } from '../../common/bearer.ts';

export interface AppDeps {
  readonly registry: RegistryIndex;
  readonly lifecycle: Lifecycle;
  readonly tokens: TokenService;
  readonly clock: Clock;
  readonly logger: Logger;
  /** NODE_ENV=production: demo credentials are refused. */
  readonly production: boolean;
  readonly dashboardDir: string;
  /** A request's time from its first byte, and a connection's with no byte either way (tests shorten them; HTTP_TIMEOUTS). */
  readonly httpTimeouts?: { readonly requestMs: number; readonly idleMs: number };
  /** Stored history, for resolved alerts and per-home audit; optional in unit tests. */
  readonly store?: Pick<AlertStore, 'audit' | 'latest'> & Partial<Pick<AlertStore, 'latestIncident'>>;
  readonly onCareAction: (input: CareActionInput) => void;
  readonly health?: () => Record<string, unknown>;
  /** Stored readings, for the dashboard's live tiles, history charts and monthly statistics. */
  readonly influx?: InfluxReader;
  /** NEWS2 score and next turn due per resident, from the care rules' state. */
  readonly residentCareState?: ResidentCareStateOf;
  /** Login throttling (auth-routes.ts DEFAULT_LOGIN_LIMITS). */
  readonly loginLimits?: Partial<LoginLimits>;
  /** Who may read /metrics and /health (common/metrics.ts MetricsAccess); undefined: anyone (unit tests). */
  readonly metricsAccess?: MetricsAccess | undefined;
  /** Prometheus metrics served on GET /metrics (alerts/metrics.ts); absent in unit tests. */
  readonly metrics?: Registry;
  /** Serve HTTPS (REST, the page, socket.io) with this certificate and key instead of plain HTTP. */
  readonly https?: ServerTls | undefined;
  /** Issue 14, partitioned by home: the other nodes, for lists and actions of homes this node does not own (http/peer-rest.ts). */
  readonly peers?: RestPeers | undefined;
  /** Server-side sign-out (alerts/sign-out.ts): kept and told to the other web nodes. Without it (unit tests) only this token service refuses the token. */
  readonly signOut?: SignOut;
}

export interface RouteContext extends AppDeps {
  /** The verified actor of a request, or an AUTH_REQUIRED error. */
  actor(req: FastifyRequest): Actor;
  /** The request's bearer token as sent (unverified), if any. */
  bearer(req: FastifyRequest): string | undefined;
}

const bearerOf = (req: FastifyRequest): string | undefined => bearerToken(req.headers.authorization);

/** The HTTP server's bounds on slow clients (buildApp says why). */
export const HTTP_TIMEOUTS = { requestMs: 30_000, idleMs: 60_000 } as const;

/** Builds the fastify app (fastify's "build() returns the app" testing pattern); the caller listens. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const requestTimeout = deps.httpTimeouts?.requestMs ?? HTTP_TIMEOUTS.requestMs;
  // Node checks the request deadlines this often (its default is 30 s).
  const serverTimeouts = { requestTimeout, connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(requestTimeout / 2))) };
  const options = {
    logger: false,
    bodyLimit: 64 * 1024,
    return503OnClosing: true,
    // fastify 5 leaves both at 0 (none): a body sent a byte at a time, or never, held its connection
    // for ever, and so did a client that sent requests and never read the answers (50 pipelined
    // GETs of the socket.io client: 6.5 MB each, held; session 21's hunt, 600 such connections, no
    // login needed). A request now has 30 s from its first byte, headers included (Node bounds
    // headersTimeout by it, checked every 15 s), and a connection that moves no byte either way for
    // 60 s is closed: socket.io's long polls answer within 25 s, and websockets, once upgraded, are
    // not this server's. A keep-alive connection serves at most 100 requests (pipelined ones included).
    // Given to the server at its creation (`http`, and the https options below): set only afterwards,
    // as fastify's own option does, a dripped body was not cut even after 40 s (a bare node:http
    // server set the same way; given at creation, 408 at 1.5 s).
    requestTimeout,
    http: serverTimeouts,
    connectionTimeout: deps.httpTimeouts?.idleMs ?? HTTP_TIMEOUTS.idleMs,
    maxRequestsPerSocket: 100,
    // Errors fastify answers before routing (a path parameter over 100 characters: 414, a malformed
    // URL: 400) get the catalogue's shape too, not fastify's own `{ error, code: FST_ERR_… }`
    // (found by test/hostile/api.property.test.ts).
    frameworkErrors: (err: FastifyError, _req: unknown, reply: unknown): void => {
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      void (reply as FastifyReply).status(status).send({ code: 'API_BAD_REQUEST', message: err.message.slice(0, 200) });
    },
  } as const;
  // fastify types an HTTPS app by its server (https.Server); requests and replies are the same
  // http.IncomingMessage/ServerResponse, and socket.io and address() work on either server, so the
  // rest of the process keeps one FastifyInstance type.
  const app: FastifyInstance =
    deps.https === undefined ? Fastify(options) : (Fastify({ ...options, https: { ...serverTimeouts, cert: deps.https.cert, key: deps.https.key, minVersion: MIN_TLS_VERSION } }) as unknown as FastifyInstance);
  const log = deps.logger.child({ component: 'http' });

  app.setErrorHandler((err: FastifyError | AlertsError, req, reply) => {
    if (err instanceof AlertsError) return reply.status(err.status).send({ code: err.code, message: err.message });
    if ('validation' in err && err.validation) return reply.status(400).send({ code: 'API_BAD_REQUEST', message: err.message });
    const status = 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status < 500) return reply.status(status).send({ code: 'API_BAD_REQUEST', message: err.message });
    log.error({ err, url: req.url, code: 'API_INTERNAL' }, 'request failed');
    return reply.status(500).send({ code: 'API_INTERNAL', message: ALERT_ERRORS.API_INTERNAL.message });
  });
  app.setNotFoundHandler((_req, reply) => reply.status(404).send({ code: 'API_NOT_FOUND', message: ALERT_ERRORS.API_NOT_FOUND.message }));

  const ctx: RouteContext = {
    ...deps,
    bearer: bearerOf,
    actor(req) {
      const token = bearerOf(req);
      const actor = token === undefined ? undefined : deps.tokens.verify(token, deps.clock.now());
      if (actor === undefined) throw new AlertsError('AUTH_REQUIRED');
      return actor;
    },
  };

  // Security headers on every reply fastify sends (pages, API, errors, 404), registered before
  // any route. The page loads only its own files and socket.io's client from this origin (no CDN,
  // no inline script or style: dashboards/app), so the CSP allows 'self' and nothing inline.
  // frame-ancestors 'none' (clickjacking: an acknowledge button must not be framed), no-referrer
  // (URLs carry home and resident ids), nosniff. No upgrade-insecure-requests: a home may reach
  // the service over plain HTTP on its LAN, and the directive would then break every request.
  void app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        fontSrc: ["'self'"],
        // socket.io: polling over https/http and its WebSocket, same origin ('self' covers ws/wss, CSP 3).
        connectSrc: ["'self'"],
        mediaSrc: ["'self'"],
        // Issue 15: the web app manifest and the service worker (dashboards/app/sw.js), own origin only.
        manifestSrc: ["'self'"],
        workerSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
    frameguard: { action: 'deny' },
  });
  // First, so that its onRoute hook sees every route registered after it (GET /api/openapi.json).
  void app.register(openapiRoutes, { title: 'carewatch alerts API', version: '1' });
  // Degraded (journal failing or full, broker away) answers 503 so a monitor notices; the body says why.
  // /health and /metrics say what the site is doing; on the page's own port they are the metrics
  // token's (common/metrics.ts MetricsAccess). /healthz stays open to health checks.
  const guard = (req: FastifyRequest, reply: FastifyReply): boolean => {
    const verdict = metricsVerdict(req.headers.authorization, deps.metricsAccess);
    if (verdict === 'ok') return false;
    const r = deniedReply(verdict);
    void reply.status(r.statusCode).headers({ ...r.headers, 'cache-control': 'no-store' }).send(r.body);
    return true;
  };
  app.get('/health', async (req, reply) => {
    if (guard(req, reply)) return reply;
    const extra = deps.health?.() ?? {};
    const problems = Array.isArray(extra.problems) ? extra.problems : [];
    if (problems.length > 0) void reply.status(503);
    return { status: problems.length > 0 ? 'degraded' : 'ok', openAlerts: deps.lifecycle.open().length, ...extra };
  });
  // The liveness/readiness path all processes share (common/metrics.ts): the same problems as /health,
  // in the common short form.
  app.get('/healthz', async (_req, reply) => {
    const extra = deps.health?.() ?? {};
    const r = healthzReply(Array.isArray(extra.problems) ? extra.problems.map(String) : []);
    return reply.status(r.statusCode).header('cache-control', 'no-store').send(r.body);
  });
  const metrics = deps.metrics;
  if (metrics !== undefined) {
    app.get('/metrics', async (req, reply) => {
      if (guard(req, reply)) return reply;
      const text = await metrics.metrics();
      return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
    });
  }
  void app.register(async (api) => {
    registerAuthRoutes(api, ctx);
    registerAlertRoutes(api, ctx);
    registerHomeRoutes(api, ctx);
  });
  if (deps.influx !== undefined) {
    const actorOf = (req: FastifyRequest): Actor | undefined => {
      try {
        return ctx.actor(req);
      } catch {
        return undefined;
      }
    };
    const readers = { registry: deps.registry, influx: deps.influx, actorOf, now: () => deps.clock.now() };
    void app.register(historyRoutes, readers);
    void app.register(statsRoutes, readers);
    if (deps.residentCareState !== undefined) void app.register(liveRoutes, { ...readers, residentCareState: deps.residentCareState });
  }
  registerStaticFiles(app, deps.dashboardDir);
  return app;
}
