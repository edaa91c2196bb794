import { isIPv6 } from 'node:net';
import type { Clock, ClockTimer } from '../common/clock.ts';

/**
 * Throttling of wrong MQTT passwords (issue 12), after OWASP's Authentication Cheat Sheet
 * ("Protect against automated attacks": throttle, do not lock accounts out). The rules:
 *
 * 1. A right password is accepted at once, from any address, whatever happened before. Nobody
 *    can lock a device out by guessing its name, because nothing is locked: only wrong answers
 *    wait.
 * 2. A wrong password (or unknown account) is refused after a delay that doubles per consecutive
 *    failure of the same (client address, username): the first `freeFailures` at once, then
 *    base, 2·base, 4·base … up to `maxDelayMs`. A device with a stale secret is slowed, not cut off.
 * 3. Per address, failures beyond `addressBudget` (all usernames together) double the same way,
 *    so spraying many device ids from one address is throttled too. Only wrong answers wait, so a
 *    care home's other devices behind the same NAT address still connect at once.
 * 4. Waiting refusals hold a socket each; at most `maxHeldPerAddress` per address and
 *    `maxHeldTotal` in all. Beyond that, a new CONNECT from that address is refused **without
 *    checking its password** (CONNACK 3, BROKER_AUTH_THROTTLED): answering a wrong guess at once
 *    would hand out the fast oracle this throttle exists to remove, and an unchecked refusal
 *    tells nothing. This is the one case where a right password from the attacker's own address
 *    waits (until held refusals drain); from any other address it is unaffected.
 * A record is forgotten after `forgetAfterMs` without failures. IPv6 addresses count per /64,
 *  the block one subscriber gets (RFC 6177), or one host could rotate through 2^64 addresses.
 *
 * Why not the delay before checking (which would slow right answers too): with 128-bit random
 * device secrets no number of guesses finds one (docs/broker.md), so the throttle's job is to take
 * away the fast answer and bound what an attacker costs the broker, never to stand between a
 * device and its broker during a fire.
 */
export interface AuthThrottleLimits {
  readonly freeFailures: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly addressBudget: number;
  readonly maxHeldPerAddress: number;
  readonly maxHeldTotal: number;
  readonly forgetAfterMs: number;
  /** Records kept at most (oldest forgotten first): a spray of usernames cannot grow memory. */
  readonly maxTracked: number;
}

/** No standard sets these numbers; chosen so a sequential guesser reaches 30 s per answer by its 9th try. */
export const DEFAULT_AUTH_THROTTLE: AuthThrottleLimits = {
  freeFailures: 1,
  baseDelayMs: 250,
  maxDelayMs: 30_000,
  addressBudget: 20,
  maxHeldPerAddress: 32,
  maxHeldTotal: 10_000,
  forgetAfterMs: 15 * 60_000,
  maxTracked: 100_000,
};

export interface AuthThrottleStats {
  /** Wrong passwords and unknown accounts seen. */
  readonly failures: number;
  /** Of those, refusals that were held back (delay > 0). */
  readonly delayed: number;
  /** CONNECTs refused unchecked because too many refusals were already held. */
  readonly throttled: number;
  /** Refusals being held right now. */
  readonly held: number;
  /** Longest delay applied so far. */
  readonly maxDelayMs: number;
}

export interface AuthThrottle {
  /** False when `address` already has too many held refusals (or the broker in all): refuse unchecked. */
  admit(address: string): boolean;
  /** Records a wrong password; returns how long its refusal must be held. */
  failure(address: string, username: string): number;
  /** A right password: the (address, username) record is cleared (the address budget is not). */
  success(address: string, username: string): void;
  /** Runs `answer` after `delayMs` (at once for 0), counting it as held meanwhile. */
  hold(address: string, delayMs: number, answer: () => void): void;
  /** Consecutive failures recorded for (address, username), for tests and logs. */
  failuresOf(address: string, username: string): number;
  /**
   * Nothing recorded and nothing held: admit() is true and success() a no-op for every address, so
   * a right password needs no client address (broker.ts then skips its getpeername syscall).
   */
  quiet(): boolean;
  stats(): AuthThrottleStats;
  /** Cancels every held refusal without answering it (the broker is closing its sockets). */
  close(): void;
}

interface Failures {
  n: number;
  last: number;
}

/** The unit an address is counted in: IPv4 as is (mapped IPv6 unwrapped), IPv6 per /64. */
export function addressKey(address: string): string {
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

export function backoffDelay(failures: number, free: number, limits: Pick<AuthThrottleLimits, 'baseDelayMs' | 'maxDelayMs'>): number {
  if (failures <= free) return 0;
  return Math.min(limits.maxDelayMs, limits.baseDelayMs * 2 ** Math.min(30, failures - free - 1));
}

export function createAuthThrottle(clock: Clock, overrides: Partial<AuthThrottleLimits> = {}): AuthThrottle {
  const limits: AuthThrottleLimits = { ...DEFAULT_AUTH_THROTTLE, ...overrides };
  const byKey = new Map<string, Failures>();
  const byAddress = new Map<string, Failures>();
  const heldByAddress = new Map<string, number>();
  const timers = new Set<ClockTimer>();
  let failures = 0;
  let delayed = 0;
  let throttled = 0;
  let held = 0;
  let maxDelayMs = 0;

  const keyOf = (address: string, username: string): string => `${addressKey(address)}\u0000${username}`;
  const current = (map: Map<string, Failures>, key: string, now: number): Failures | undefined => {
    const f = map.get(key);
    if (f !== undefined && now - f.last > limits.forgetAfterMs) {
      map.delete(key);
      return undefined;
    }
    return f;
  };
  const bump = (map: Map<string, Failures>, key: string, now: number): number => {
    const n = (current(map, key, now)?.n ?? 0) + 1;
    map.delete(key); // re-insert: Map order is the eviction order
    map.set(key, { n, last: now });
    while (map.size > limits.maxTracked) map.delete(map.keys().next().value ?? '');
    return n;
  };

  return {
    admit(address) {
      const ok = held < limits.maxHeldTotal && (heldByAddress.get(addressKey(address)) ?? 0) < limits.maxHeldPerAddress;
      if (!ok) throttled++;
      return ok;
    },
    failure(address, username) {
      const now = clock.now();
      failures++;
      const nKey = bump(byKey, keyOf(address, username), now);
      const nAddress = bump(byAddress, addressKey(address), now);
      const delay = Math.max(backoffDelay(nKey, limits.freeFailures, limits), backoffDelay(nAddress, limits.addressBudget, limits));
      if (delay > 0) delayed++;
      maxDelayMs = Math.max(maxDelayMs, delay);
      return delay;
    },
    success(address, username) {
      byKey.delete(keyOf(address, username));
    },
    hold(address, delayMs, answer) {
      if (delayMs <= 0) {
        answer();
        return;
      }
      const a = addressKey(address);
      held++;
      heldByAddress.set(a, (heldByAddress.get(a) ?? 0) + 1);
      const timer = clock.setTimeout(() => {
        timers.delete(timer);
        held--;
        const left = (heldByAddress.get(a) ?? 1) - 1;
        if (left > 0) heldByAddress.set(a, left);
        else heldByAddress.delete(a);
        answer();
      }, delayMs);
      timers.add(timer);
    },
    failuresOf(address, username) {
      return current(byKey, keyOf(address, username), clock.now())?.n ?? 0;
    },
    quiet: () => byKey.size === 0 && held === 0 && limits.maxHeldTotal > 0 && limits.maxHeldPerAddress > 0,
    stats: () => ({ failures, delayed, throttled, held, maxDelayMs }),
    close() {
      for (const t of timers) clock.clearTimeout(t);
      timers.clear();
      heldByAddress.clear();
      held = 0;
    },
  };
}
