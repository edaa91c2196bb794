import { createHash } from 'node:crypto';
import { verifySecret } from '../common/secrets.ts';

/**
 * scrypt verification with a bounded in-memory cache of successes, so a reconnect storm (every
 * device of a province reconnecting after a broker restart) does not redo scrypt per device.
 * The key is username + SHA-256(password): the cache never holds a password, and a cached entry is
 * valid only for the same stored hash. Failures are not cached (a wrong password costs a scrypt
 * every time, which is the point). Concurrent checks of the same key share one scrypt.
 */
export interface CredentialVerifier {
  verify(username: string, password: string, secretHash: string): Promise<boolean>;
  readonly size: number;
  readonly hits: number;
  readonly misses: number;
}

export function createCredentialVerifier(maxEntries: number, verify: (secret: string, stored: string) => Promise<boolean> = verifySecret): CredentialVerifier {
  // Map keeps insertion order: the first key is the oldest, evicted when full (FIFO bound).
  const cache = new Map<string, string>();
  const inflight = new Map<string, Promise<boolean>>();
  let hits = 0;
  let misses = 0;
  return {
    async verify(username, password, secretHash) {
      const key = `${username}\u0000${createHash('sha256').update(password).digest('base64')}`;
      if (cache.get(key) === secretHash) {
        hits++;
        return true;
      }
      misses++;
      const pending = inflight.get(key);
      if (pending !== undefined) return pending;
      const p = verify(password, secretHash)
        .then((ok) => {
          if (ok && maxEntries > 0) {
            if (cache.size >= maxEntries) {
              const oldest = cache.keys().next();
              if (oldest.done !== true) cache.delete(oldest.value);
            }
            cache.set(key, secretHash);
          }
          return ok;
        })
        .finally(() => inflight.delete(key));
      inflight.set(key, p);
      return p;
    },
    get size() {
      return cache.size;
    },
    get hits() {
      return hits;
    },
    get misses() {
      return misses;
    },
  };
}
