import { createHash } from 'node:crypto';
import { secretAlgorithm, verifyMachineSecret, verifySecret } from '../common/secrets.ts';

/**
 * Password checks for CONNECT. Two stored formats (common/secrets.ts):
 * - `hmac-sha256$`: machine secrets since issue 12. One HMAC per CONNECT, synchronous, about a
 *   microsecond: 20,000 devices reconnecting after a restart cost milliseconds, so no cache.
 * - `scrypt$`: registries written before issue 12. scrypt per CONNECT was the bound on reconnect
 *   storms (36 s for 20,000 devices), so successes are cached in memory, keyed by username +
 *   SHA-256(password) (the cache never holds a password, and an entry is valid only for the same
 *   stored hash); failures are never cached; concurrent checks of the same key share one scrypt.
 * `computations` counts each algorithm run, so tests and stats show which one a CONNECT cost.
 */
export interface CredentialVerifier {
  /** Synchronous result for fast hashes (no event-loop turn), a promise for scrypt. */
  verify(username: string, password: string, secretHash: string): boolean | Promise<boolean>;
  readonly size: number;
  readonly hits: number;
  readonly misses: number;
  readonly computations: { readonly hmac: number; readonly scrypt: number };
}

export function createCredentialVerifier(maxEntries: number, verifyScrypt: (secret: string, stored: string) => Promise<boolean> = verifySecret): CredentialVerifier {
  // Map keeps insertion order: the first key is the oldest, evicted when full (FIFO bound).
  const cache = new Map<string, string>();
  const inflight = new Map<string, Promise<boolean>>();
  let hits = 0;
  let misses = 0;
  let hmacs = 0;
  let scrypts = 0;
  return {
    verify(username, password, secretHash) {
      if (secretAlgorithm(secretHash) === 'hmac-sha256') {
        hmacs++;
        return verifyMachineSecret(password, secretHash);
      }
      const key = `${username}\u0000${createHash('sha256').update(password).digest('base64')}`;
      if (cache.get(key) === secretHash) {
        hits++;
        return true;
      }
      misses++;
      const pending = inflight.get(key);
      if (pending !== undefined) return pending;
      scrypts++;
      const p = verifyScrypt(password, secretHash)
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
    get computations() {
      return { hmac: hmacs, scrypt: scrypts };
    },
  };
}
