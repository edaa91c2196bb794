import type { FastifyInstance } from 'fastify';
import { LoginRequest, LoginResponse } from '../../contract/api.ts';
import { USER_COST, hashSecret, isDemoSecret, verifySecret } from '../../common/secrets.ts';
import { AlertsError } from '../errors.ts';
import type { RouteContext } from './app.ts';

export function registerAuthRoutes(app: FastifyInstance, ctx: RouteContext): void {
  // Unknown usernames are checked against a dummy hash so that response time does not reveal which names exist.
  let dummyHash: string | undefined;

  app.post<{ Body: LoginRequest; Reply: LoginResponse }>('/api/login', { schema: { body: LoginRequest } }, async (req) => {
    const { username, password } = req.body;
    const user = ctx.registry.user(username);
    if (ctx.production && (user?.demoSecret === true || isDemoSecret(password))) {
      ctx.logger.warn({ username, code: 'AUTH_DEMO_SECRET_REFUSED' }, 'demo credentials refused in production');
      throw new AlertsError('AUTH_DEMO_SECRET_REFUSED');
    }
    dummyHash ??= user === undefined ? hashSecret('not-a-user', USER_COST) : undefined;
    const ok = await verifySecret(password, user?.passwordHash ?? dummyHash ?? '');
    if (user === undefined || !ok) {
      ctx.logger.info({ username, code: 'AUTH_INVALID_CREDENTIALS' }, 'login refused');
      throw new AlertsError('AUTH_INVALID_CREDENTIALS');
    }
    const actor = { username: user.username, role: user.role, ...(user.homeId !== undefined ? { homeId: user.homeId } : {}) };
    const { token, expiresAt } = ctx.tokens.issue(actor, ctx.clock.now());
    return { token, expiresAt, user: { username: user.username, displayName: user.displayName, role: user.role, ...(user.homeId !== undefined ? { homeId: user.homeId } : {}) } };
  });

  app.get('/api/me', async (req) => {
    const actor = ctx.actor(req);
    const user = ctx.registry.user(actor.username);
    return { username: actor.username, displayName: user?.displayName ?? actor.username, role: actor.role, ...(actor.homeId !== undefined ? { homeId: actor.homeId } : {}) };
  });
}
