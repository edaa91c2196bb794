import type { FastifyInstance } from 'fastify';
import { LoginRequest, LoginResponse } from '../../contract/api.ts';
import { USER_COST, hashSecret, isDemoSecret, verifySecret } from '../../common/secrets.ts';
import { AlertsError } from '../errors.ts';
import type { RouteContext } from './app.ts';

/**
 * Login is unauthenticated and scrypt (N=2^14, OWASP minimum) is deliberately expensive; it runs
 * in libuv's thread pool, which the alert journal's fsync shares. A flood of wrong passwords must
 * not starve the journal, and guessing must be slow, yet nobody may be able to keep a nurse off
 * the page during a fire by typing her user name wrongly (docs/alerts.md "Login limits"):
 * - at most `maxConcurrent` verifications run at once, `maxQueued` wait; beyond that 503 AUTH_BUSY;
 * - wrong passwords are counted per (username, client address): after `freeFailures` of them, that
 *   pair must wait `baseDelayMs`, doubling per further failure up to `maxDelayMs`, before its next
 *   attempt is checked (429 AUTH_RATE_LIMITED with Retry-After, password not checked). The same
 *   username from another address is not affected: the duty desk always gets in.
 * - per client address (all usernames), after `ipFreeFailures` the same back-off applies, so
 *   spraying user names from one address is slowed too. Higher: a home's staff share one NAT address.
 * There is deliberately no per-username lock: that is what let anyone lock staff out (issue 12).
 * OWASP Authentication Cheat Sheet: throttle per account and source, do not lock accounts.
 * No standard sets the numbers.
 */
export interface LoginLimits {
  readonly maxConcurrent: number;
  readonly maxQueued: number;
  /** Wrong passwords per (username, address) answered before the back-off starts (people mistype). */
  readonly freeFailures: number;
  /** Wrong passwords per address, all usernames, before the back-off starts. */
  readonly ipFreeFailures: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** A failure record is forgotten after this long without failures. */
  readonly forgetAfterMs: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  maxConcurrent: 2,
  maxQueued: 16,
  freeFailures: 5,
  ipFreeFailures: 20,
  baseDelayMs: 1_000,
  maxDelayMs: 15 * 60_000,
  forgetAfterMs: 60 * 60_000,
};
/** Failure records kept at most (oldest forgotten first), so a spray of usernames cannot grow memory. */
export const MAX_TRACKED = 10_000;

/**
 * Token renewals (POST /api/token/renew) per (username, client address) in one window. A page
 * renews once per half token lifetime (6 h by default), and a home's desks share one account and
 * one NAT address, so 10 a minute is never reached by pages; a script looping it is refused (429
 * AUTH_RATE_LIMITED, Retry-After) instead of minting tokens as fast as it can ask.
 */
export const RENEW_LIMIT = { perWindow: 10, windowMs: 60_000 } as const;

/** At most `perWindow` per key per fixed window; the wait (ms) when over, else 0. Bounded like backoffLog. */
function windowLimiter(perWindow: number, windowMs: number, maxTracked = MAX_TRACKED): (key: string, now: number) => number {
  const seen = new Map<string, { start: number; n: number }>();
  return (key, now) => {
    let w = seen.get(key);
    if (w === undefined || now - w.start >= windowMs) {
      seen.delete(key);
      w = { start: now, n: 0 };
      seen.set(key, w);
      while (seen.size > maxTracked) seen.delete(seen.keys().next().value ?? '');
    }
    if (w.n >= perWindow) return w.start + windowMs - now;
    w.n++;
    return 0;
  };
}

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

/** Consecutive failures per key with exponential back-off after `free` of them. */
export function backoffLog(limits: LoginLimits, maxTracked = MAX_TRACKED): {
  waitMs(key: string, free: number, now: number): number;
  add(key: string, now: number): number;
  clear(key: string): void;
  /** Failure records kept (bounded by maxTracked; test/hostile/bounds.test.ts). */
  size(): number;
} {
  const log = new Map<string, { n: number; last: number }>();
  const current = (key: string, now: number): { n: number; last: number } | undefined => {
    const f = log.get(key);
    if (f !== undefined && now - f.last > limits.forgetAfterMs) {
      log.delete(key);
      return undefined;
    }
    return f;
  };
  return {
    waitMs(key, free, now) {
      const f = current(key, now);
      if (f === undefined || f.n < free) return 0;
      const delay = Math.min(limits.maxDelayMs, limits.baseDelayMs * 2 ** Math.min(30, f.n - free));
      return Math.max(0, f.last + delay - now);
    },
    add(key, now) {
      const n = (current(key, now)?.n ?? 0) + 1;
      log.delete(key); // re-insert: Map order is the eviction order
      log.set(key, { n, last: now });
      while (log.size > maxTracked) log.delete(log.keys().next().value ?? '');
      return n;
    },
    clear: (key) => void log.delete(key),
    size: () => log.size,
  };
}

export function registerAuthRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const limits: LoginLimits = { ...DEFAULT_LOGIN_LIMITS, ...ctx.loginLimits };
  // Unknown usernames are checked against a dummy hash so that response time does not reveal which
  // names exist. Computed here, at startup, not synchronously inside the first unknown login.
  const dummyHash = hashSecret('not-a-user', USER_COST);
  const verifySlot = limiter(limits.maxConcurrent, limits.maxQueued);
  const failures = backoffLog(limits);

  app.post<{ Body: LoginRequest; Reply: LoginResponse }>('/api/login', { schema: { body: LoginRequest } }, async (req, reply) => {
    const { username, password } = req.body;
    // The pair, not the username alone: a per-username lock would let anyone lock a nurse out.
    const pairKey = `u:${username}\u0000${req.ip}`;
    const ipKey = `ip:${req.ip}`;
    const now = ctx.clock.now();
    const waitMs = Math.max(failures.waitMs(pairKey, limits.freeFailures, now), failures.waitMs(ipKey, limits.ipFreeFailures, now));
    if (waitMs > 0) {
      ctx.logger.warn({ username, ip: req.ip, waitMs, code: 'AUTH_RATE_LIMITED' }, 'login throttled');
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
      const n = failures.add(pairKey, at);
      failures.add(ipKey, at);
      ctx.logger.info({ username, ip: req.ip, failures: n, code: 'AUTH_INVALID_CREDENTIALS' }, 'login refused');
      throw new AlertsError('AUTH_INVALID_CREDENTIALS');
    }
    failures.clear(pairKey);
    const actor = { username: user.username, role: user.role, ...(user.homeId !== undefined ? { homeId: user.homeId } : {}), ...(user.providerId !== undefined ? { providerId: user.providerId } : {}) };
    const { token, expiresAt } = ctx.tokens.issue(actor, ctx.clock.now());
    const provider = user.providerId !== undefined ? { providerId: user.providerId, homeIds: [...ctx.registry.householdsOfProvider(user.providerId)] } : {};
    return { token, expiresAt, user: { username: user.username, displayName: user.displayName, role: user.role, ...(user.homeId !== undefined ? { homeId: user.homeId } : {}), ...provider } };
  });

  // Sign-out ends this token on the server (alerts/sign-out.ts), not only in the page: it is refused
  // from now on, here and on the other web nodes, and the pages open with it are disconnected. The
  // user's other sessions (the same staff account at another desk) are untouched.
  app.post('/api/logout', { schema: { summary: "Sign out: this token is refused from now on, and pages open with it are disconnected (the user's other sessions stay)" } }, async (req, reply) => {
    const actor = ctx.actor(req);
    const token = ctx.bearer(req) as string;
    if (ctx.signOut !== undefined) ctx.signOut.end(token, 'here');
    else ctx.tokens.revoke(token, ctx.clock.now());
    ctx.logger.info({ username: actor.username, code: 'AUTH_SIGNED_OUT' }, 'signed out');
    return reply.status(204).send();
  });

  // Renewal (docs/alerts.md "Sessions and logins"): a page in use swaps its token for a fresh one
  // before it expires, so a night shift is not cut off at the token's 12 h. Only a token that is
  // still valid (unexpired, not signed out, its user unchanged in the registry) is renewed, for the
  // same user, role and home; never past MAX_SESSION_MS after the login (token.ts).
  const renewals = windowLimiter(RENEW_LIMIT.perWindow, RENEW_LIMIT.windowMs);
  app.post('/api/token/renew', { schema: { summary: 'A fresh token for the same session, before this one expires (refused for an expired or signed-out token)' } }, async (req, reply) => {
    const actor = ctx.actor(req);
    const token = ctx.bearer(req) as string;
    const now = ctx.clock.now();
    const waitMs = renewals(`u:${actor.username}\u0000${req.ip}`, now);
    if (waitMs > 0) {
      ctx.logger.warn({ username: actor.username, ip: req.ip, waitMs, code: 'AUTH_RATE_LIMITED' }, 'token renewal throttled');
      void reply.header('Retry-After', String(Math.max(1, Math.ceil(waitMs / 1000))));
      throw new AlertsError('AUTH_RATE_LIMITED');
    }
    const renewed = ctx.tokens.renew(token, now);
    if (renewed === undefined) throw new AlertsError('AUTH_REQUIRED');
    ctx.logger.info({ username: actor.username, expiresAt: renewed.expiresAt, code: 'AUTH_RENEWED' }, 'token renewed');
    return renewed;
  });

  app.get('/api/me', async (req) => {
    const actor = ctx.actor(req);
    const user = ctx.registry.user(actor.username);
    return {
      username: actor.username,
      displayName: user?.displayName ?? actor.username,
      role: actor.role,
      ...(actor.homeId !== undefined ? { homeId: actor.homeId } : {}),
      ...(actor.providerId !== undefined ? { providerId: actor.providerId, homeIds: actor.homeIds ?? [] } : {}),
    };
  });
}
