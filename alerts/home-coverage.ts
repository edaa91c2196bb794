import { Redis } from 'ioredis';
import type { Clock, ClockTimer } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import { settlesWithin } from '../common/settles-within.ts';

/**
 * Home coverage across partitioned alerts instances (issue 14, docs/scaling.md "Home coverage").
 *
 * docs/scaling.md: every home of the registry must be owned by exactly one instance; an unowned home
 * is neither stored nor alarmed. A typo in one CAREWATCH_HOMES would leave a care home's fire alarms
 * with nobody evaluating them, and nothing else would notice. So each instance announces the homes it
 * owns in Redis (a key per instance, expiring after a few missed heartbeats), reads every instance's
 * announcement, and reports any home of the registry owned by nobody or by two instances.
 */

/** One instance's announcement: the homes it owns. */
export interface Announcement {
  readonly instance: string;
  readonly homes: readonly string[];
}

export interface CoverageState {
  /** Since when each home has been seen unowned (ms since epoch). */
  readonly unownedSince: ReadonlyMap<string, number>;
  /** Since when each home has been seen owned by two or more instances. */
  readonly twiceSince: ReadonlyMap<string, number>;
}

export const EMPTY_COVERAGE: CoverageState = { unownedSince: new Map(), twiceSince: new Map() };

export interface CoverageReport {
  readonly state: CoverageState;
  /** Homes owned by nobody for longer than the grace period, sorted. */
  readonly unowned: string[];
  /** Homes owned by two or more instances for longer than the grace period, with their owners (sorted). */
  readonly ownedTwice: { readonly home: string; readonly instances: string[] }[];
}

/**
 * Pure core: the registry's homes and the announcements seen now → the problems. A home becomes a
 * problem only after `graceMs` in the same condition, so a rolling restart (an instance's key gone
 * until it is back) or a move (old and new owner both announcing for a moment) is not an alarm.
 * Announced homes that are not in the registry are ignored (config parsing refuses them at start).
 */
export function assessCoverage(registryHomes: readonly string[], announcements: readonly Announcement[], previous: CoverageState, now: number, graceMs: number): CoverageReport {
  const owners = new Map<string, Set<string>>();
  for (const a of announcements) {
    for (const h of a.homes) {
      const s = owners.get(h) ?? new Set<string>();
      s.add(a.instance);
      owners.set(h, s);
    }
  }
  const unownedSince = new Map<string, number>();
  const twiceSince = new Map<string, number>();
  const unowned: string[] = [];
  const ownedTwice: { home: string; instances: string[] }[] = [];
  for (const home of [...new Set(registryHomes)].sort()) {
    const n = owners.get(home)?.size ?? 0;
    if (n === 0) {
      const since = Math.min(previous.unownedSince.get(home) ?? now, now);
      unownedSince.set(home, since);
      if (now - since >= graceMs) unowned.push(home);
    } else if (n > 1) {
      const since = Math.min(previous.twiceSince.get(home) ?? now, now);
      twiceSince.set(home, since);
      if (now - since >= graceMs) ownedTwice.push({ home, instances: [...(owners.get(home) ?? [])].sort() });
    }
  }
  return { state: { unownedSince, twiceSince }, unowned, ownedTwice };
}

/** An announcement read from Redis, checked like any outside input; undefined when malformed. */
export function parseAnnouncement(instance: string, text: string | null): Announcement | undefined {
  if (text === null) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v) || !v.every((h): h is string => typeof h === 'string' && h.length <= 64)) return undefined;
  return { instance, homes: v };
}

export interface CoverageSummary {
  readonly unowned: string[];
  readonly ownedTwice: { readonly home: string; readonly instances: string[] }[];
  /** The clock time of the last assessment; undefined before the first. */
  readonly checkedAt?: number;
}

export const OWNER_KEY_PREFIX = 'carewatch:alerts:owner:';

export interface Coverage {
  start(): Promise<void>;
  /** Announces, reads every announcement and assesses now (the periodic step; tests call it after advancing the clock). */
  check(): Promise<CoverageReport>;
  /** The last assessment's problems (nothing before the first), and when it was made (a stale time: Redis away). */
  report(): CoverageSummary;
  close(): Promise<void>;
}

export interface CoverageDeps {
  readonly redisUrl: string;
  readonly instance: string;
  /** The homes this instance owns. */
  readonly homes: readonly string[];
  /** Every home of the registry. */
  readonly registryHomes: readonly string[];
  readonly clock: Clock;
  readonly logger: Logger;
  /** Announce and check every this often (default 10 s). */
  readonly everyMs?: number;
  /** The announcement's lifetime: three heartbeats, so one slow or lost refresh is not a gap (default 30 s). */
  readonly ttlMs?: number;
  /** How long a home may stay unowned / owned twice before it is a problem: longer than an instance's restart (default 60 s). */
  readonly graceMs?: number;
  /** Repeat the error log of a standing problem at most this often (default 5 min). */
  readonly logEveryMs?: number;
}

export function createCoverage(deps: CoverageDeps): Coverage {
  const log = deps.logger.child({ component: 'coverage' });
  const everyMs = deps.everyMs ?? 10_000;
  const ttlMs = deps.ttlMs ?? 3 * everyMs;
  const graceMs = deps.graceMs ?? 60_000;
  const logEveryMs = deps.logEveryMs ?? 300_000;
  const key = `${OWNER_KEY_PREFIX}${deps.instance}`;
  const value = JSON.stringify([...deps.homes].sort());
  let redis: Redis | undefined;
  let timer: ClockTimer | undefined;
  let state: CoverageState = EMPTY_COVERAGE;
  let last: CoverageReport | undefined;
  let checkedAt: number | undefined;
  let running: Promise<CoverageReport> | undefined;
  let closed = false;
  const lastLogged = new Map<string, number>();

  async function readAnnouncements(r: Redis): Promise<Announcement[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await r.scan(cursor, 'MATCH', `${OWNER_KEY_PREFIX}*`, 'COUNT', 100);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    if (keys.length === 0) return [];
    const values = await r.mget(...keys);
    const out: Announcement[] = [];
    keys.forEach((k, i) => {
      const a = parseAnnouncement(k.slice(OWNER_KEY_PREFIX.length), values[i] ?? null);
      if (a !== undefined) out.push(a);
      else log.warn({ key: k, code: 'ALERTS_HOME_ANNOUNCEMENT_INVALID' }, 'ignoring a malformed owner announcement');
    });
    return out;
  }

  /** Rate-limited per problem: a standing problem is logged when it appears and every logEveryMs after. */
  function logProblems(r: CoverageReport, now: number): void {
    const seen = new Set<string>();
    const due = (id: string): boolean => {
      seen.add(id);
      const t = lastLogged.get(id);
      if (t !== undefined && now - t < logEveryMs) return false;
      lastLogged.set(id, now);
      return true;
    };
    for (const home of r.unowned) {
      if (due(`u:${home}`)) log.error({ home, code: 'ALERTS_HOME_UNOWNED' }, 'home owned by no alerts instance: nobody evaluates its alarms (check CAREWATCH_HOMES of every instance)');
    }
    for (const t of r.ownedTwice) {
      if (due(`t:${t.home}`)) log.error({ home: t.home, instances: t.instances, code: 'ALERTS_HOME_OWNED_TWICE' }, 'home owned by two alerts instances (check CAREWATCH_HOMES of every instance)');
    }
    for (const id of [...lastLogged.keys()]) if (!seen.has(id)) lastLogged.delete(id);
  }

  async function step(r: Redis): Promise<CoverageReport> {
    await r.set(key, value, 'PX', ttlMs);
    const announcements = await readAnnouncements(r);
    const now = deps.clock.now();
    const rep = assessCoverage(deps.registryHomes, announcements, state, now, graceMs);
    state = rep.state;
    last = rep;
    checkedAt = now;
    logProblems(rep, now);
    return rep;
  }

  function check(): Promise<CoverageReport> {
    const r = redis;
    if (r === undefined || closed) return Promise.reject(new Error('coverage is not running'));
    // One step at a time: a slow Redis must not pile steps up.
    running ??= step(r).finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(): void {
    timer = deps.clock.setTimeout(() => {
      if (closed) return;
      schedule();
      // Redis away: the socket cluster already reports ALERTS_REDIS_DISCONNECTED; the last assessment stands.
      check().catch((err: unknown) => log.warn({ err, code: 'ALERTS_REDIS_ERROR' }, 'home coverage check failed; retrying'));
    }, everyMs);
  }

  return {
    async start() {
      // Commands wait in ioredis's offline queue while Redis is away (as the socket cluster's do).
      redis = new Redis(deps.redisUrl, { maxRetriesPerRequest: null });
      redis.on('error', (err: Error) => log.warn({ err, code: 'ALERTS_REDIS_ERROR' }, 'Redis connection error; retrying'));
      check().catch((err: unknown) => log.warn({ err, code: 'ALERTS_REDIS_ERROR' }, 'home coverage check failed; retrying'));
      schedule();
    },
    check,
    report: () => ({ unowned: last?.unowned ?? [], ownedTwice: last?.ownedTwice ?? [], ...(checkedAt !== undefined ? { checkedAt } : {}) }),
    async close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) deps.clock.clearTimeout(timer);
      const r = redis;
      if (r === undefined) return;
      // A step waiting for an absent Redis would wait forever (offline queue): bounded, as the socket cluster's close.
      await settlesWithin(running ?? Promise.resolve(), 1000);
      // Our homes become unowned at once for the others (their grace period starts now), not after the TTL.
      await settlesWithin(r.del(key).then(() => r.quit()), 1000);
      r.disconnect();
    },
  };
}
