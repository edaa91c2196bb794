import { createHmac, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

/**
 * Secret hashing, two formats (docs/broker.md "Device secrets"):
 *
 *   scrypt$N$r$p$<salt base64>$<hash base64>     people's passwords (scrypt, RFC 7914)
 *   hmac-sha256$<salt base64>$<mac base64>        machine secrets: devices and service accounts
 *
 * A person's password is memorised and low-entropy, so a stolen hash must be costly to attack:
 * NIST SP 800-63B §5.1.1.2 requires a salted, costly key derivation for memorised secrets, and
 * users' passwords keep scrypt at N=2^14 (OWASP Password Storage Cheat Sheet minimum).
 * A machine secret is 128 random bits (`generateMachineSecret`). No dictionary holds it and 2^128
 * guesses cannot be made at any cost per guess, so a costly KDF adds no protection and only makes
 * every CONNECT expensive: after a broker restart 20,000 devices spent 36 s in scrypt (issue 12).
 * HMAC-SHA-256 keyed with a per-secret salt (RFC 2104) is one microsecond and, being salted, still
 * shows no two equal secrets as equal hashes. The `scrypt$` format stays verifiable for every
 * account, so registries written before issue 12 keep working.
 */
export const USER_COST = 16384;
/** scrypt cost of machine secrets in registries written before issue 12 (still verified). */
export const DEVICE_COST = 1024;
const KEY_LEN = 32;
/** 128 bits: the entropy a machine secret must have for a fast hash to be adequate. */
export const MACHINE_SECRET_BYTES = 16;

/** Demo secrets start with this prefix; they are refused in production mode. */
export const DEMO_SECRET_PREFIX = 'demo-';

export type SecretAlgorithm = 'scrypt' | 'hmac-sha256';

/** scrypt hash for a person's password (or, in old registries, a machine secret). */
export function hashSecret(secret: string, cost = USER_COST, salt: Buffer = randomBytes(16)): string {
  const r = 8;
  const p = 1;
  const hash = scryptSync(secret, salt, KEY_LEN, { N: cost, r, p });
  return `scrypt$${cost}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Fast salted hash of a machine secret (device, service account). Only for 128-bit random secrets. */
export function hashMachineSecret(secret: string, salt: Buffer = randomBytes(16)): string {
  return `hmac-sha256$${salt.toString('base64')}$${hmac(salt, secret).toString('base64')}`;
}

/** A new machine secret: 128 random bits, base64url (22 characters). */
export function generateMachineSecret(): string {
  return randomBytes(MACHINE_SECRET_BYTES).toString('base64url');
}

function hmac(salt: Buffer, secret: string): Buffer {
  return createHmac('sha256', salt).update(secret, 'utf8').digest();
}

/** Which algorithm a stored hash needs, or undefined when it is not a hash we know. */
export function secretAlgorithm(stored: string): SecretAlgorithm | undefined {
  if (stored.startsWith('hmac-sha256$')) return 'hmac-sha256';
  if (stored.startsWith('scrypt$')) return 'scrypt';
  return undefined;
}

/** Constant-time comparison; false (not a throw) on a length mismatch. */
function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}

/** Synchronous check of a `hmac-sha256$` hash; false for any other format. */
export function verifyMachineSecret(secret: string, stored: string): boolean {
  const parts = stored.split('$');
  if (parts.length !== 3 || parts[0] !== 'hmac-sha256') return false;
  const salt = Buffer.from(parts[1] ?? '', 'base64');
  const expected = Buffer.from(parts[2] ?? '', 'base64');
  if (salt.length === 0 || expected.length !== 32) return false;
  return sameBytes(hmac(salt, secret), expected);
}

/** Checks a secret against either stored format. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  if (secretAlgorithm(stored) === 'hmac-sha256') return verifyMachineSecret(secret, stored);
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const salt = Buffer.from(parts[4] ?? '', 'base64');
  const expected = Buffer.from(parts[5] ?? '', 'base64');
  if (!Number.isInteger(N) || !Number.isInteger(r) || !Number.isInteger(p) || expected.length === 0) return false;
  const actual = await new Promise<Buffer>((resolve, reject) => {
    scrypt(secret, salt, expected.length, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
  return sameBytes(actual, expected);
}

export function isDemoSecret(secret: string): boolean {
  return secret.startsWith(DEMO_SECRET_PREFIX);
}

/**
 * Whether a redis:// URL carries a demo password (docker-compose's "demo-redis" default): refused in
 * production mode, as every demo secret is. An unparsable URL is the config schema's to refuse.
 */
export function hasDemoRedisPassword(url: string | undefined): boolean {
  if (url === undefined) return false;
  try {
    return isDemoSecret(decodeURIComponent(new URL(url).password));
  } catch {
    return false;
  }
}
