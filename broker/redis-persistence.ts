import AsyncRedisPersistence from 'aedes-persistence-redis/asyncPersistence.js';

/**
 * aedes 1.x needs an async persistence (`setup` must be an AsyncFunction). aedes-persistence-redis
 * 11's main export wraps the async class in a callback adapter for aedes 0.x, so we construct its
 * async class directly. With one broker node the mqemitter stays in memory (aedes' default); the
 * persistence keeps sessions, their queued QoS 1 messages, retained statuses and wills in Redis,
 * so a broker restart loses none of them.
 */
export interface ClosablePersistence {
  destroy(): Promise<void>;
}

/** redis://[user:password@]host[:port][/db] → the ioredis options the persistence passes on. */
export function redisOptions(url: string): { host: string; port: number; db: number; username?: string; password?: string; tls?: object } {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`redis url ${url}: database must be a non-negative integer`);
  return {
    host: u.hostname,
    port: u.port === '' ? 6379 : Number(u.port),
    db,
    ...(u.username !== '' ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password !== '' ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

export function createRedisPersistence(url: string): ClosablePersistence {
  return new AsyncRedisPersistence({ ...redisOptions(url), maxRetriesPerRequest: 20 });
}
