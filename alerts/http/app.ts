import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Clock } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import type { CareActionInput } from '../care-action.ts';
import type { Actor } from '../access.ts';
import { ALERT_ERRORS, AlertsError } from '../errors.ts';
import type { Lifecycle } from '../lifecycle.ts';
import type { AlertStore } from '../persistence/alert-store.ts';
import { registerAlertRoutes } from './alert-routes.ts';
import { registerAuthRoutes } from './auth-routes.ts';
import { registerHomeRoutes } from './home-routes.ts';
import { registerStaticFiles } from './static-files.ts';
import type { TokenService } from './token.ts';

export interface AppDeps {
  readonly registry: RegistryIndex;
  readonly lifecycle: Lifecycle;
  readonly tokens: TokenService;
  readonly clock: Clock;
  readonly logger: Logger;
  /** NODE_ENV=production: demo credentials are refused. */
  readonly production: boolean;
  readonly dashboardDir: string;
  /** Stored history, for resolved alerts and per-home audit; optional in unit tests. */
  readonly store?: Pick<AlertStore, 'audit' | 'latest'>;
  readonly onCareAction: (input: CareActionInput) => void;
  readonly health?: () => Record<string, unknown>;
}

export interface RouteContext extends AppDeps {
  /** The verified actor of a request, or an AUTH_REQUIRED error. */
  actor(req: FastifyRequest): Actor;
}

/** Builds the fastify app (fastify's "build() returns the app" testing pattern); the caller listens. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024, return503OnClosing: true });
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
    actor(req) {
      const header = req.headers.authorization;
      const token = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
      const actor = token === undefined ? undefined : deps.tokens.verify(token, deps.clock.now());
      if (actor === undefined) throw new AlertsError('AUTH_REQUIRED');
      return actor;
    },
  };

  app.get('/health', async () => ({ status: 'ok', openAlerts: deps.lifecycle.open().length, ...deps.health?.() }));
  registerAuthRoutes(app, ctx);
  registerAlertRoutes(app, ctx);
  registerHomeRoutes(app, ctx);
  registerStaticFiles(app, deps.dashboardDir);
  return app;
}
