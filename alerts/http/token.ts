import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { USER_ROLES, type UserRole } from '../../contract/registry.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import type { Actor } from '../access.ts';

/**
 * Login tokens: base64url(JSON claims) "." base64url(HMAC-SHA256(secret, claims)). Stateless and
 * expiring; the role and home come from the registry at login, so a token can never widen them.
 */
export interface TokenClaims {
  readonly sub: string;
  readonly role: UserRole;
  readonly homeId?: string;
  /** Role `provider` (issue 15). */
  readonly providerId?: string;
  /** Expiry, ms since the epoch (platform clock). */
  readonly exp: number;
}

export interface TokenService {
  issue(actor: Actor, now: number): { token: string; expiresAt: number };
  verify(token: string, now: number): Actor | undefined;
  /** verify() plus the expiry, for sessions that outlive one request (socket.io). */
  session(token: string, now: number): { actor: Actor; expiresAt: number } | undefined;
}

/**
 * With a registry, a token is honoured only while its user still exists with the same role and
 * home: deleting or moving a user cuts off their tokens at once, without waiting for expiry.
 */
export function createTokenService(secret: string | undefined, ttlS: number, registry?: Pick<RegistryIndex, 'user'> & Partial<Pick<RegistryIndex, 'householdsOfProvider'>>): TokenService {
  // Without a configured secret (development only) a random one per start: old tokens die with the process.
  const key = secret ?? randomBytes(32).toString('base64');
  const sign = (body: string): string => createHmac('sha256', key).update(body).digest('base64url');
  return {
    issue(actor, now) {
      const exp = now + ttlS * 1000;
      const claims: TokenClaims = {
        sub: actor.username,
        role: actor.role,
        ...(actor.homeId !== undefined ? { homeId: actor.homeId } : {}),
        ...(actor.providerId !== undefined ? { providerId: actor.providerId } : {}),
        exp,
      };
      const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
      return { token: `${body}.${sign(body)}`, expiresAt: exp };
    },
    verify: (token, now) => session(token, now)?.actor,
    session,
  };
  function session(token: string, now: number): { actor: Actor; expiresAt: number } | undefined {
    if (typeof token !== 'string' || token.length > 4096) return undefined;
    const [body, mac, extra] = token.split('.');
    if (body === undefined || mac === undefined || extra !== undefined) return undefined;
    const expected = Buffer.from(sign(body));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
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
