import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import { DEFAULT_AUTH_THROTTLE, addressKey, backoffDelay, createAuthThrottle } from '../../broker/auth-throttle.ts';

/** The broker's wrong-password throttle alone (broker/auth-throttle.ts), on a manual clock. */
describe('auth throttle', () => {
  it('doubles the delay per failure of one (address, username), capped, and forgets after a quiet time', () => {
    const clock = createManualClock();
    const t = createAuthThrottle(clock);
    const delays = Array.from({ length: 10 }, () => t.failure('10.0.0.1', 'd1'));
    expect(delays).toEqual([0, 250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    expect(t.failure('10.0.0.2', 'd1')).toBe(0); // another address: its own record
    clock.advance(DEFAULT_AUTH_THROTTLE.forgetAfterMs + 1);
    expect(t.failuresOf('10.0.0.1', 'd1')).toBe(0);
    expect(t.failure('10.0.0.1', 'd1')).toBe(0);
  });

  it('holds a refusal until the clock reaches its delay, and bounds held refusals per address', () => {
    const clock = createManualClock();
    const t = createAuthThrottle(clock, { maxHeldPerAddress: 1 });
    const answered: string[] = [];
    t.hold('10.0.0.1', 500, () => answered.push('a'));
    expect(t.admit('10.0.0.1')).toBe(false);
    expect(t.admit('10.0.0.9')).toBe(true);
    clock.advance(499);
    expect(answered).toEqual([]);
    clock.advance(1);
    expect(answered).toEqual(['a']);
    expect(t.admit('10.0.0.1')).toBe(true);
    expect(t.stats()).toMatchObject({ held: 0, throttled: 1 });
  });

  it('is quiet (every address admitted, success a no-op) only with nothing recorded and nothing held', () => {
    const clock = createManualClock();
    const t = createAuthThrottle(clock);
    expect(t.quiet()).toBe(true);
    expect(t.admit('10.0.0.1')).toBe(true);
    t.failure('10.0.0.1', 'd1');
    // A wrong password recorded: the broker must read the client's address again.
    expect(t.quiet()).toBe(false);
    t.success('10.0.0.1', 'd1');
    expect(t.quiet()).toBe(true);
    t.hold('10.0.0.1', 500, () => undefined);
    expect(t.quiet()).toBe(false);
    clock.advance(500);
    expect(t.quiet()).toBe(true);
    // A limit of 0 held refusals admits nobody: never quiet.
    expect(createAuthThrottle(clock, { maxHeldPerAddress: 0 }).quiet()).toBe(false);
  });

  it('close() cancels every held refusal', () => {
    const clock = createManualClock();
    const t = createAuthThrottle(clock);
    t.hold('10.0.0.1', 500, () => {
      throw new Error('answered after close');
    });
    t.close();
    expect(clock.pending()).toBe(0);
  });

  it('counts IPv6 per /64 and IPv4-mapped addresses as IPv4', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe(addressKey('2001:0db8:1:2:ffff:1:2:3'));
    expect(addressKey('2001:db8:1:2::1')).not.toBe(addressKey('2001:db8:1:3::1'));
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
  });

  it('backoffDelay is 0 up to the free failures', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, 2, { baseDelayMs: 100, maxDelayMs: 150 }))).toEqual([0, 0, 100, 150]);
  });
});
