import { Readable } from 'node:stream';
import AsyncRedisPersistence from 'aedes-persistence-redis/asyncPersistence.js';

/**
 * aedes 1.x needs an async persistence (`setup` must be an AsyncFunction). aedes-persistence-redis
 * 11's main export wraps the async class in a callback adapter for aedes 0.x, so we construct its
 * async class directly. With one broker node the mqemitter stays in memory (aedes' default); the
 * persistence keeps sessions, their queued QoS 1 messages, retained statuses and wills in Redis,
 * so a broker restart loses none of them.
 *
 * Version skew: aedes-persistence-redis 11.2 implements the aedes-persistence 10 interface, where
 * the retained-message "streams" are async generators; aedes 1.2 (aedes-persistence 11) calls
 * `.pipe()` on them and crashes with `stream.pipe is not a function` on the first SUBSCRIBE that
 * matches a retained message. The subclass below wraps them in Readable.from. (outgoingStream
 * also returns a generator, but aedes passes it to stream.pipeline, which accepts iterables.)
 */
class AedesOneRedisPersistence extends AsyncRedisPersistence {
  override createRetainedStreamCombi(patterns: string[]): Readable {
    const it = super.createRetainedStreamCombi(patterns);
    return it instanceof Readable ? it : Readable.from(it);
  }

  override createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern]);
  }
}
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
  return new AedesOneRedisPersistence({ ...redisOptions(url), maxRetriesPerRequest: 20 });
}
