import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createManualClock, type ManualClock } from '../../common/clock.ts';
import { createLogger } from '../../common/logger.ts';
import { createBroker, type Broker } from '../../broker/broker.ts';
import type { AuthThrottleLimits } from '../../broker/auth-throttle.ts';
import { demoRegistry, demoSecret } from '../support/registry.ts';
import { until } from '../broker/helpers.ts';
import { attempt, type Attempt } from './mqtt-client.ts';

/**
 * Issue 12 part 2: repeated wrong MQTT passwords are throttled, through the real broker and real
 * MQTT clients over TCP. The broker's throttle runs on a manual clock: a held refusal is answered
 * only when the test advances it, so "answered later" is measured in clock time, never wall time.
 */
const ATTACKER = '127.0.0.5';
const DEVICE_HOME = '127.0.0.6';
const device = demoRegistry().site.devices[0];
if (device === undefined) throw new Error('demo site without devices');

let broker: Broker | undefined;
let clock: ManualClock;
const open: Attempt[] = [];

async function start(authThrottle: Partial<AuthThrottleLimits> = {}): Promise<Broker> {
  clock = createManualClock();
  broker = createBroker({
    config: { host: '127.0.0.1', port: 0, wsPort: 0, production: false, limits: { authThrottle } },
    registry: demoRegistry(),
    logger: createLogger('mqtt-auth-test', 'silent'),
    clock,
  });
  await broker.start();
  return broker;
}

function tryConnect(b: Broker, from: string, username: string, password: string): Attempt {
  const a = attempt(b.tcpPort, from, username, password);
  open.push(a);
  return a;
}

/** Advances the manual clock in steps until `a` is answered; returns the clock time it took. */
async function answeredAfter(b: Broker, a: Attempt, heldBefore: number): Promise<number> {
  // The attempt has reached the broker once it is answered or held.
  await until('attempt reached the broker', () => a.settled() || b.stats().authThrottle.held > heldBefore);
  let waited = 0;
  while (b.stats().authThrottle.held > heldBefore) {
    clock.advance(50);
    waited += 50;
  }
  await a.outcome;
  return waited;
}

afterEach(async () => {
  for (const a of open.splice(0)) a.client.end(true);
  await broker?.close();
  broker = undefined;
});
afterAll(async () => {
  await broker?.close();
});

describe('wrong MQTT passwords', () => {
  it('are answered later and later per (address, username), while the real device connects at once', async () => {
    const b = await start();
    const delays: number[] = [];
    for (let i = 1; i <= 10; i++) {
      const a = tryConnect(b, ATTACKER, device.id, `wrong-${i}`);
      if (i === 10) {
        // The 10th refusal is being held: the attack is going on.
        await until('10th attempt held', () => b.stats().authThrottle.held === 1);
        expect(a.settled()).toBe(false);
        // The real device, with its right secret, from its home's address: connected at once,
        // no clock advance needed.
        const real = tryConnect(b, DEVICE_HOME, device.id, demoSecret(device.id));
        expect(await real.outcome).toBe(0);
        real.client.end(true);
        await until('real device gone', () => b.stats().connectedClients === 0);
        // Even from the attacker's own address a right password is not held (only wrong ones are).
        const sameAddress = tryConnect(b, ATTACKER, device.id, demoSecret(device.id));
        expect(await sameAddress.outcome).toBe(0);
        sameAddress.client.end(true);
        expect(a.settled()).toBe(false);
      }
      delays.push(await answeredAfter(b, a, 0));
      expect(await a.outcome).toBe(4); // CONNACK 4: bad user name or password
    }
    // Doubling from 250 ms after the first free answer, capped at 30 s (DEFAULT_AUTH_THROTTLE).
    expect(delays).toEqual([0, 250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    // The right password from the attacker's address cleared that pair's record.
    expect(b.authFailures(ATTACKER, device.id)).toBe(0);
    expect(b.stats().refusals.BROKER_BAD_PASSWORD).toBe(10);
    expect(b.stats().authThrottle.failures).toBe(10);
  });

  it('serves the 10th wrong attempt later than the first, in clock time', async () => {
    const b = await start();
    const delays: number[] = [];
    for (let i = 1; i <= 10; i++) delays.push(await answeredAfter(b, tryConnect(b, ATTACKER, device.id, `wrong-${i}`), 0));
    expect(delays[0]).toBe(0);
    expect(delays[9]).toBeGreaterThan(delays[0] ?? 0);
    expect(delays[9]).toBe(30_000); // the cap
    expect(b.authFailures(ATTACKER, device.id)).toBe(10);
    expect(b.authFailures(DEVICE_HOME, device.id)).toBe(0);
  });

  it('throttles an address spraying device ids beyond its budget, not its neighbours with right secrets', async () => {
    const b = await start({ addressBudget: 5 });
    const devices = demoRegistry().site.devices.slice(1, 8);
    const delays: number[] = [];
    for (const d of devices) delays.push(await answeredAfter(b, tryConnect(b, ATTACKER, d.id, 'guess'), 0));
    // Each (address, device) fails once only, so it is the address budget that bites from the 6th on.
    expect(delays).toEqual([0, 0, 0, 0, 0, 250, 500]);
    const neighbour = devices[0];
    if (neighbour === undefined) throw new Error('unreachable');
    expect(await tryConnect(b, ATTACKER, neighbour.id, demoSecret(neighbour.id)).outcome).toBe(0);
  });

  it('refuses unchecked (CONNACK 3) when an address already has its quota of held refusals; other addresses are unaffected', async () => {
    const b = await start({ maxHeldPerAddress: 2, freeFailures: 0 });
    const held = [tryConnect(b, ATTACKER, device.id, 'w1'), tryConnect(b, ATTACKER, device.id, 'w2')];
    await until('two refusals held', () => b.stats().authThrottle.held === 2);
    // Over the quota even the right password is not checked: an answer would be an oracle.
    const over = tryConnect(b, ATTACKER, device.id, demoSecret(device.id));
    expect(await over.outcome).toBe(3);
    expect(b.stats().refusals.BROKER_AUTH_THROTTLED).toBe(1);
    expect(b.stats().authThrottle.throttled).toBe(1);
    expect(await tryConnect(b, DEVICE_HOME, device.id, demoSecret(device.id)).outcome).toBe(0);
    clock.advance(60_000);
    expect(await Promise.all(held.map((a) => a.outcome))).toEqual([4, 4]);
  });

  it('treats an unknown account like a wrong password (no fast answer tells which names exist)', async () => {
    const b = await start();
    expect(await answeredAfter(b, tryConnect(b, ATTACKER, 'no-such-device', 'x'), 0)).toBe(0);
    expect(await answeredAfter(b, tryConnect(b, ATTACKER, 'no-such-device', 'x'), 0)).toBe(250);
    expect(b.stats().refusals.BROKER_UNKNOWN_ACCOUNT).toBe(2);
  });
});
