import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

/**
 * Secret hashing with scrypt (RFC 7914) from node:crypto. Stored format:
 *   scrypt$N$r$p$<salt base64>$<hash base64>
 * Users' passwords use N=2^14 (OWASP minimum for scrypt). Device and service secrets are random
 * 128-bit values, not human-chosen, so a lower cost (N=2^10) keeps a reconnect storm of 100,000
 * devices affordable without making a stolen hash brute-forceable.
 */
export const USER_COST = 16384;
export const DEVICE_COST = 1024;
const KEY_LEN = 32;

/** Demo secrets start with this prefix; they are refused in production mode. */
export const DEMO_SECRET_PREFIX = 'demo-';

export function hashSecret(secret: string, cost = USER_COST, salt: Buffer = randomBytes(16)): string {
  const r = 8;
  const p = 1;
  const hash = scryptSync(secret, salt, KEY_LEN, { N: cost, r, p });
  return `scrypt$${cost}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const salt = Buffer.from(parts[4] ?? '', 'base64');
  const expected = Buffer.from(parts[5] ?? '', 'base64');
  if (!Number.isInteger(N) || !Number.isInteger(r) || !Number.isInteger(p) || expected.length === 0) return false;
  const actual = await new Promise<Buffer>((resolve, reject) => {
    scrypt(secret, salt, expected.length, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export function isDemoSecret(secret: string): boolean {
  return secret.startsWith(DEMO_SECRET_PREFIX);
}
