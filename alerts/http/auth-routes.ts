import type { FastifyInstance } from 'fastify';
import { LoginRequest, LoginResponse } from '../../contract/api.ts';
import { USER_COST, hashSecret, isDemoSecret, verifySecret } from '../../common/secrets.ts';
import { AlertsError } from '../errors.ts';
import type { RouteContext } from './app.ts';

/**
 * Login is unauthenticated and scrypt (N=2^14, OWASP minimum) is deliberately expensive; it runs
 * in libuv's thread pool, which the alert journal's fsync shares. A flood of wrong passwords must
 * not starve the journal, so (docs/alerts.md "Login limits"):
 * - at most `maxConcurrent` verifications run at once, `maxQueued` wait; beyond that 503 AUTH_BUSY;
 * - `maxFailures` wrong passwords per username, and `ipMaxFailures` per client address, within
 *   `windowMs` lock further attempts (even with the right password) with 429 AUTH_RATE_LIMITED and
 *   Retry-After. The per-address limit is higher: a care home's staff share one NAT address.
 * No standard sets these numbers; they follow OWASP's authentication cheat sheet (throttle per
 * account and per source).
 */
export interface LoginLimits {
  readonly maxConcurrent: number;
  readonly maxQueued: number;
  readonly maxFailures: number;
  readonly ipMaxFailures: number;
  readonly windowMs: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = { maxConcurrent: 2, maxQueued: 16, maxFailures: 5, ipMaxFailures: 20, windowMs: 60_000 };
/** Failure records kept at most (oldest forgotten first), so a spray of usernames cannot grow memory. */
const MAX_TRACKED = 10_000;

/** At most `max` tasks at once, `queued` waiting; undefined when full. */
function limiter(max: number, queued: number): <T>(task: () => Promise<T>) => Promise<T> | undefined {
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };
  return (task) => {
    if (active >= max && waiting.length >= queued) return undefined;
    const slot = active < max ? (active++, Promise.resolve()) : new Promise<void>((r) => waiting.push(r));
    return slot.then(task).finally(release);
  };
}

/** Failure timestamps per key within a sliding window. */
function failureLog(windowMs: number): { count(key: string, now: number): { n: number; retryAfterMs: number }; add(key: string, now: number): void; clear(key: string): void } {
  const log = new Map<string, number[]>();
  const recent = (key: string, now: number): number[] => {
    const list = (log.get(key) ?? []).filter((t) => t > now - windowMs);
    if (list.length === 0) log.delete(key);
    else log.set(key, list);
    return list;
  };
  return {
    count(key, now) {
      const list = recent(key, now);
      return { n: list.length, retryAfterMs: list.length === 0 ? 0 : (list[0] ?? now) + windowMs - now };
    },
    add(key, now) {
      const list = recent(key, now);
      log.delete(key); // re-insert: Map order is the eviction order
      log.set(key, [...list, now]);
      while (log.size > MAX_TRACKED) log.delete(log.keys().next().value ?? '');
    },
    clear: (key) => void log.delete(key),
  };
}

export function registerAuthRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const limits: LoginLimits = { ...DEFAULT_LOGIN_LIMITS, ...ctx.loginLimits };
  // Unknown usernames are checked against a dummy hash so that response time does not reveal which
  // names exist. Computed here, at startup, not synchronously inside the first unknown login.
  const dummyHash = hashSecret('not-a-user', USER_COST);
  const verifySlot = limiter(limits.maxConcurrent, limits.maxQueued);
  const failures = failureLog(limits.windowMs);

  app.post<{ Body: LoginRequest; Reply: LoginResponse }>('/api/login', { schema: { body: LoginRequest } }, async (req, reply) => {
    const { username, password } = req.body;
    const userKey = `u:${username}`;
    const ipKey = `ip:${req.ip}`;
    const now = ctx.clock.now();
    const byUser = failures.count(userKey, now);
    const byIp = failures.count(ipKey, now);
    if (byUser.n >= limits.maxFailures || byIp.n >= limits.ipMaxFailures) {
      const waitMs = Math.max(byUser.n >= limits.maxFailures ? byUser.retryAfterMs : 0, byIp.n >= limits.ipMaxFailures ? byIp.retryAfterMs : 0);
      ctx.logger.warn({ username, ip: req.ip, code: 'AUTH_RATE_LIMITED' }, 'login rate limited');
      void reply.header('Retry-After', String(Math.max(1, Math.ceil(waitMs / 1000))));
      throw new AlertsError('AUTH_RATE_LIMITED');
    }
    const user = ctx.registry.user(username);
    if (ctx.production && (user?.demoSecret === true || isDemoSecret(password))) {
      ctx.logger.warn({ username, code: 'AUTH_DEMO_SECRET_REFUSED' }, 'demo credentials refused in production');
      throw new AlertsError('AUTH_DEMO_SECRET_REFUSED');
    }
    const verifying = verifySlot(() => verifySecret(password, user?.passwordHash ?? dummyHash));
    if (verifying === undefined) {
      ctx.logger.warn({ username, ip: req.ip, code: 'AUTH_BUSY' }, 'too many logins at once');
      void reply.header('Retry-After', '1');
      throw new AlertsError('AUTH_BUSY');
    }
    const ok = await verifying;
    if (user === undefined || !ok) {
      const at = ctx.clock.now();
      failures.add(userKey, at);
      failures.add(ipKey, at);
      ctx.logger.info({ username, ip: req.ip, code: 'AUTH_INVALID_CREDENTIALS' }, 'login refused');
      throw new AlertsError('AUTH_INVALID_CREDENTIALS');
    }
    failures.clear(userKey);
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
