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
  /**
   * When the user typed the password (ms, platform clock): kept by every renewal, so a chain of
   * renewed tokens never outlives MAX_SESSION_MS from the login. Absent in tokens issued before
   * renewal existed (their login is taken as exp - ttl).
   */
  readonly auth?: number;
  /**
   * The login this token descends from (random at the login, kept by every renewal): signing one
   * token out ends them all (revocationId), so a copy renewed elsewhere does not outlive the sign-out.
   */
  readonly fam?: string;
}

/**
 * The absolute limit of a session (docs/alerts.md "Sessions and logins", renewal): a page renews its
 * token while in use (POST /api/token/renew), but never past this long after the password was typed.
 * A week: longer than any shift pattern, so a desk signed in at the start of a shift is never cut off
 * by it during that shift, yet a stolen token cannot be kept alive for ever by renewing it.
 */
export const MAX_SESSION_MS = 7 * 24 * 3600 * 1000;

/** A token ended before its expiry (sign-out): its MAC, refused until `exp`, when it would die anyway; whose it was. */
export interface Revocation {
  readonly id: string;
  readonly exp: number;
  readonly sub: string;
}

/** The revocation id of a token: its MAC (the part after the dot). */
export function revocationId(token: string): string {
  const dot = token.indexOf('.');
  const fam = familyOf(token.slice(0, dot));
  return fam !== undefined ? familyId(fam) : token.slice(dot + 1);
}

/** A login's revocation id: `f.` cannot begin a MAC (base64url has no '.'). */
const familyId = (fam: string): string => `f.${fam}`;

/** The `fam` claim of a token body, if it has one (tokens issued before renewal have none). */
function familyOf(body: string): string | undefined {
  try {
    const fam = (JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { fam?: unknown }).fam;
    return typeof fam === 'string' && fam !== '' ? fam : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Revocations kept at most, per user and in all. Each needs a successful login (scrypt, at most two
 * at once), so only a signed-in user looping login and logout gets there: past a user's share the
 * soonest to expire of that user's own is forgotten (its token works again for what is left of its
 * 12 h), so no account can push out anyone else's; past the total, the site's soonest (many accounts
 * at it together). Logged (ALERTS_SIGN_OUT_EVICTED).
 */
export const MAX_REVOCATIONS_PER_USER = 100;
export const MAX_REVOCATIONS = 10_000;

export interface TokenService {
  issue(actor: Actor, now: number): { token: string; expiresAt: number };
  /**
   * A fresh token for the same user, role and home as a valid (unexpired, not signed out, user
   * unchanged) one, expiring `ttl` from now but never past MAX_SESSION_MS after the login; the
   * old token is not ended (a tab copied from the page may still use it: it dies at its expiry).
   * Undefined when `token` is not valid.
   */
  renew(token: string, now: number): { token: string; expiresAt: number; issuedAt: number; sessionEndsAt: number } | undefined;
  verify(token: string, now: number): Actor | undefined;
  /** verify() plus the expiry, for sessions that outlive one request (socket.io). */
  session(token: string, now: number): { actor: Actor; expiresAt: number } | undefined;
  /**
   * Ends a valid token's session: verify() refuses it from now on (server-side sign-out). Undefined
   * when the token was not valid; `evicted` the revocations forgotten to stay within MAX_REVOCATIONS.
   */
  revoke(token: string, now: number): { revocation: Revocation; evicted: number } | undefined;
  /**
   * Takes revocations made before or elsewhere (the state file at start; the other web nodes', kept
   * in Redis); expired ones and ones already known are ignored. Returns those it took, and how many
   * were forgotten for the bounds.
   */
  restore(list: readonly Revocation[], now: number): { added: Revocation[]; evicted: number };
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
  /** MAC → its revocation; and how many each user has. */
  const revoked = new Map<string, Revocation>();
  const perUser = new Map<string, number>();
  const forget = (r: Revocation): void => {
    revoked.delete(r.id);
    const n = (perUser.get(r.sub) ?? 1) - 1;
    if (n > 0) perUser.set(r.sub, n);
    else perUser.delete(r.sub);
  };
  const prune = (now: number): void => {
    for (const r of revoked.values()) if (r.exp <= now) forget(r);
  };
  /** The soonest to expire of `list` beyond `keep`, forgotten; how many. */
  const forgetSoonest = (list: Revocation[], keep: number): number => {
    if (list.length <= keep) return 0;
    const over = list.sort((a, b) => a.exp - b.exp).slice(0, list.length - keep);
    for (const r of over) forget(r);
    return over.length;
  };
  /** Adds one (unless known: undefined); returns how many were forgotten for the bounds (MAX_REVOCATIONS_PER_USER, MAX_REVOCATIONS). */
  const add = (r: Revocation): number | undefined => {
    if (revoked.has(r.id)) return undefined;
    revoked.set(r.id, r);
    const n = (perUser.get(r.sub) ?? 0) + 1;
    perUser.set(r.sub, n);
    let evicted = 0;
    if (n > MAX_REVOCATIONS_PER_USER) evicted += forgetSoonest([...revoked.values()].filter((x) => x.sub === r.sub), MAX_REVOCATIONS_PER_USER);
    if (revoked.size > MAX_REVOCATIONS) evicted += forgetSoonest([...revoked.values()], MAX_REVOCATIONS);
    return evicted;
  };
  const mint = (actor: Actor, exp: number, auth: number, fam: string): string => {
    const claims: TokenClaims = {
      sub: actor.username,
      role: actor.role,
      ...(actor.homeId !== undefined ? { homeId: actor.homeId } : {}),
      ...(actor.providerId !== undefined ? { providerId: actor.providerId } : {}),
      exp,
      jti: randomBytes(12).toString('base64url'),
      auth,
      fam,
    };
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${body}.${sign(body)}`;
  };
  return {
    issue(actor, now) {
      const exp = now + ttlS * 1000;
      return { token: mint(actor, exp, now, randomBytes(12).toString('base64url')), expiresAt: exp };
    },
    renew(token, now) {
      const s = session(token, now);
      if (s === undefined) return undefined;
      const auth = s.auth ?? s.expiresAt - ttlS * 1000;
      const sessionEndsAt = auth + MAX_SESSION_MS;
      // Never shorter than the token it replaces (a clock stepped back), never past the session's end.
      const exp = Math.max(s.expiresAt, Math.min(now + ttlS * 1000, sessionEndsAt));
      // A token from before renewal has no family: its renewals start one (the page signs out both).
      return { token: mint(s.actor, exp, auth, s.fam ?? randomBytes(12).toString('base64url')), expiresAt: exp, issuedAt: now, sessionEndsAt };
    },
    verify: (token, now) => session(token, now)?.actor,
    session,
    revoke(token, now) {
      const s = session(token, now);
      if (s === undefined) return undefined;
      prune(now);
      // A login's tokens: any renewed before now expires by now + ttl (none is renewed after this), and
      // none past the session's end; a token without a family: its own expiry.
      const exp = s.fam !== undefined ? Math.max(s.expiresAt, Math.min(now + ttlS * 1000, (s.auth ?? s.expiresAt - ttlS * 1000) + MAX_SESSION_MS)) : s.expiresAt;
      const revocation: Revocation = { id: revocationId(token), exp, sub: s.actor.username };
      return { revocation, evicted: add(revocation) ?? 0 };
    },
    restore(list, now) {
      const added: Revocation[] = [];
      let evicted = 0;
      for (const r of list) {
        if (typeof r.id !== 'string' || typeof r.exp !== 'number' || typeof r.sub !== 'string' || r.exp <= now) continue;
        const revocation = { id: r.id, exp: r.exp, sub: r.sub };
        const n = add(revocation);
        if (n === undefined) continue;
        added.push(revocation);
        evicted += n;
      }
      return { added, evicted };
    },
    revocations(now) {
      prune(now);
      return [...revoked.values()].sort((a, b) => a.exp - b.exp);
    },
  };
  function session(token: string, now: number): { actor: Actor; expiresAt: number; auth?: number; fam?: string } | undefined {
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
    const fam = typeof claims.fam === 'string' && claims.fam !== '' ? claims.fam : undefined;
    if (fam !== undefined && revoked.has(familyId(fam))) return undefined;
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
      ...(typeof claims.auth === 'number' ? { auth: claims.auth } : {}),
      ...(fam !== undefined ? { fam } : {}),
    };
  }
}
