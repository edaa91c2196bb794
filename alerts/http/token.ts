import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { USER_ROLES, type UserRole } from '../../contract/registry.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import type { Actor } from '../access.ts';

/**
 * Login tokens: base64url(JSON claims) "." base64url(HMAC-SHA256(secret, claims)). Expiring, and
 * stateless but for sign-outs: a token signed out is refused until its expiry (revoke; the alerts
 * process keeps the list in its state directory and tells the other web nodes: sign-out.ts). The
 * role and home come from the registry at login, so a token can never widen them.
 */
export interface TokenClaims {
  readonly sub: string;
  readonly role: UserRole;
  readonly homeId?: string;
  /** Role `provider` (issue 15). */
  readonly providerId?: string;
  /** Expiry, ms since the epoch (platform clock). */
  readonly exp: number;
  /** Random per token: two logins of one user in the same millisecond still get two tokens, each ended alone. */
  readonly jti?: string;
}

/** A token ended before its expiry (sign-out): its MAC, refused until `exp`, when it would die anyway. */
export interface Revocation {
  readonly id: string;
  readonly exp: number;
}

/**
 * Revocations kept at most. Each needs a successful login (scrypt, at most two at once), so only a
 * signed-in user looping login and logout reaches this; past it the soonest to expire is forgotten
 * (its token works again for what is left of its 12 h) and logged.
 */
export const MAX_REVOCATIONS = 10_000;

export interface TokenService {
  issue(actor: Actor, now: number): { token: string; expiresAt: number };
  verify(token: string, now: number): Actor | undefined;
  /** verify() plus the expiry, for sessions that outlive one request (socket.io). */
  session(token: string, now: number): { actor: Actor; expiresAt: number } | undefined;
  /**
   * Ends a valid token's session: verify() refuses it from now on (server-side sign-out). Undefined
   * when the token was not valid; `evicted` the revocations forgotten to stay within MAX_REVOCATIONS.
   */
  revoke(token: string, now: number): { revocation: Revocation; evicted: number } | undefined;
  /** Takes revocations made before (the state file at start); expired ones are ignored. */
  restore(list: readonly Revocation[], now: number): void;
  /** The revocations still in force, soonest to expire first (what the state file keeps). */
  revocations(now: number): Revocation[];
}

/**
 * With a registry, a token is honoured only while its user still exists with the same role and
 * home: deleting or moving a user cuts off their tokens at once, without waiting for expiry.
 */
export function createTokenService(secret: string | undefined, ttlS: number, registry?: Pick<RegistryIndex, 'user'> & Partial<Pick<RegistryIndex, 'householdsOfProvider'>>): TokenService {
  // Without a configured secret (development only) a random one per start: old tokens die with the process.
  const key = secret ?? randomBytes(32).toString('base64');
  const sign = (body: string): string => createHmac('sha256', key).update(body).digest('base64url');
  /** MAC → expiry. */
  const revoked = new Map<string, number>();
  const prune = (now: number): void => {
    for (const [id, exp] of revoked) if (exp <= now) revoked.delete(id);
  };
  /** Adds one; returns how many of the soonest to expire were forgotten for the bound. */
  const add = (id: string, exp: number): number => {
    revoked.set(id, exp);
    if (revoked.size <= MAX_REVOCATIONS) return 0;
    const over = [...revoked].sort((a, b) => a[1] - b[1]).slice(0, revoked.size - MAX_REVOCATIONS);
    for (const [old] of over) revoked.delete(old);
    return over.length;
  };
  return {
    issue(actor, now) {
      const exp = now + ttlS * 1000;
      const claims: TokenClaims = {
        sub: actor.username,
        role: actor.role,
        ...(actor.homeId !== undefined ? { homeId: actor.homeId } : {}),
        ...(actor.providerId !== undefined ? { providerId: actor.providerId } : {}),
        exp,
        jti: randomBytes(12).toString('base64url'),
      };
      const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
      return { token: `${body}.${sign(body)}`, expiresAt: exp };
    },
    verify: (token, now) => session(token, now)?.actor,
    session,
    revoke(token, now) {
      const s = session(token, now);
      if (s === undefined) return undefined;
      prune(now);
      const revocation = { id: token.slice(token.indexOf('.') + 1), exp: s.expiresAt };
      return { revocation, evicted: add(revocation.id, revocation.exp) };
    },
    restore(list, now) {
      for (const r of list) if (typeof r.id === 'string' && typeof r.exp === 'number' && r.exp > now) add(r.id, r.exp);
    },
    revocations(now) {
      prune(now);
      return [...revoked].map(([id, exp]) => ({ id, exp })).sort((a, b) => a.exp - b.exp);
    },
  };
  function session(token: string, now: number): { actor: Actor; expiresAt: number } | undefined {
    if (typeof token !== 'string' || token.length > 4096) return undefined;
    const [body, mac, extra] = token.split('.');
    if (body === undefined || mac === undefined || extra !== undefined) return undefined;
    const expected = Buffer.from(sign(body));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    // Signed out (revoke): refused until it would have expired anyway.
    if (revoked.has(mac)) return undefined;
    let claims: Partial<TokenClaims>;
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Partial<TokenClaims>;
    } catch {
      return undefined;
    }
    if (typeof claims.sub !== 'string' || typeof claims.exp !== 'number' || claims.exp <= now) return undefined;
    if (!(USER_ROLES as readonly string[]).includes(claims.role ?? '')) return undefined;
    const homeId = typeof claims.homeId === 'string' ? claims.homeId : undefined;
    const providerId = typeof claims.providerId === 'string' ? claims.providerId : undefined;
    if (registry !== undefined) {
      const user = registry.user(claims.sub);
      if (user === undefined || user.role !== claims.role || user.homeId !== homeId || user.providerId !== providerId) return undefined;
    }
    // A provider's households come from the registry now, not from the token: without a registry
    // (development) a provider token sees no household at all.
    const homeIds = claims.role === 'provider' ? [...(providerId !== undefined ? (registry?.householdsOfProvider?.(providerId) ?? []) : [])] : undefined;
    return {
      actor: {
        username: claims.sub,
        role: claims.role as UserRole,
        ...(homeId !== undefined ? { homeId } : {}),
        ...(providerId !== undefined ? { providerId } : {}),
        ...(homeIds !== undefined ? { homeIds } : {}),
      },
      expiresAt: claims.exp,
    };
  }
}
