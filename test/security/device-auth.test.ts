import { createConnection } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { DEVICE_COST, generateMachineSecret, hashMachineSecret, hashSecret, verifyMachineSecret, verifySecret } from '../../common/secrets.ts';
import { parseRegistry } from '../../common/registry-file.ts';
import { indexRegistry, type RegistryIndex } from '../../contract/registry-index.ts';
import type { Device, SiteRegistry } from '../../contract/registry.ts';
import type { Broker } from '../../broker/broker.ts';
import { demoRegistry } from '../support/registry.ts';
import { startBroker } from '../broker/helpers.ts';

/**
 * Issue 12 part 1: a device's CONNECT costs one HMAC-SHA-256, not one scrypt, so a broker restart
 * does not keep 20,000 devices waiting on key derivation. Shown by counting the hash computations
 * of the real broker's authenticate path over real TCP connections (no wall clock involved).
 */
const base = demoRegistry().site;
const home = base.homes[0];
const room = home?.floors[0]?.rooms[0];
if (home === undefined || room === undefined) throw new Error('demo site without rooms');

interface Fleet {
  readonly registry: RegistryIndex;
  readonly secrets: ReadonlyMap<string, string>;
}

/** `n` devices, each with its own random 128-bit secret, hashed as `hash` says. */
function fleet(n: number, prefix: string, hash: (secret: string) => string): Fleet {
  const secrets = new Map<string, string>();
  const devices: Device[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${prefix}-${i}`;
    const secret = generateMachineSecret();
    secrets.set(id, secret);
    devices.push({ id, homeId: home!.id, roomId: room!.id, kind: 'heat_detector', secretHash: hash(secret) });
  }
  const site: SiteRegistry = { ...base, homes: [home!], residents: [], users: [], devices };
  return { registry: indexRegistry(site), secrets };
}

/** One raw MQTT 3.1.1 CONNECT over TCP; resolves with the CONNACK return code, then closes. */
function connackOf(port: number, username: string, password: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (p) => {
      if (p.cmd === 'connack') {
        socket.destroy();
        resolve(p.returnCode ?? -1);
      }
    });
    socket.on('data', (chunk) => parser.parse(chunk));
    socket.on('error', reject);
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: username, keepalive: 60, username, password: Buffer.from(password) }));
  });
}

/** Connects every device of the fleet, `parallel` at a time; returns how many were accepted. */
async function connectAll(broker: Broker, f: Fleet, parallel = 100): Promise<number> {
  const entries = [...f.secrets];
  let accepted = 0;
  for (let i = 0; i < entries.length; i += parallel) {
    const codes = await Promise.all(entries.slice(i, i + parallel).map(([id, secret]) => connackOf(broker.tcpPort, id, secret)));
    accepted += codes.filter((c) => c === 0).length;
  }
  return accepted;
}

let broker: Broker | undefined;
afterEach(async () => {
  await broker?.close();
  broker = undefined;
});

describe('device authentication cost', () => {
  it('authenticates 2,000 devices with one HMAC each and no scrypt, before and after a broker restart', async () => {
    const f = fleet(2_000, 'fast', (s) => hashMachineSecret(s));
    broker = await startBroker({ registry: f.registry });
    expect(await connectAll(broker, f)).toBe(2_000);
    expect(broker.stats().hashComputations).toEqual({ hmac: 2_000, scrypt: 0 });
    expect(broker.stats().credentialCache.misses).toBe(0); // the scrypt cache is not even consulted
    // Restart: a new broker process has nothing cached, and needs nothing cached.
    await broker.close();
    broker = await startBroker({ registry: f.registry });
    expect(await connectAll(broker, f)).toBe(2_000);
    expect(broker.stats().hashComputations).toEqual({ hmac: 2_000, scrypt: 0 });
  }, 120_000);

  it('still accepts scrypt hashes of older registries (one scrypt per device, then cached)', async () => {
    const f = fleet(20, 'legacy', (s) => hashSecret(s, DEVICE_COST));
    broker = await startBroker({ registry: f.registry });
    expect(await connectAll(broker, f)).toBe(20);
    expect(await connectAll(broker, f)).toBe(20);
    expect(broker.stats().hashComputations).toEqual({ hmac: 0, scrypt: 20 });
    expect(broker.stats().credentialCache.hits).toBe(20);
  });

  it('refuses a wrong secret under either format', async () => {
    const fast = fleet(1, 'fast-w', (s) => hashMachineSecret(s));
    broker = await startBroker({ registry: fast.registry });
    expect(await connackOf(broker.tcpPort, 'fast-w-0', generateMachineSecret())).toBe(4);
    await broker.close();
    const legacy = fleet(1, 'legacy-w', (s) => hashSecret(s, DEVICE_COST));
    broker = await startBroker({ registry: legacy.registry });
    expect(await connackOf(broker.tcpPort, 'legacy-w-0', generateMachineSecret())).toBe(4);
  });

  it('refuses demo secrets in production mode, HMAC-hashed as in the demo site', async () => {
    const d = demoRegistry().site.devices[0];
    if (d === undefined) throw new Error('no demo device');
    expect(d.secretHash.startsWith('hmac-sha256$')).toBe(true);
    broker = await startBroker({ config: { production: true } });
    expect(await connackOf(broker.tcpPort, d.id, `demo-${d.id}`)).toBe(5);
    expect(broker.stats().refusals.BROKER_DEMO_SECRET_IN_PRODUCTION).toBe(1);
    expect(broker.stats().hashComputations).toEqual({ hmac: 0, scrypt: 0 });
  });
});

describe('secret formats', () => {
  it('hashes machine secrets with a salted HMAC and verifies only the right one', async () => {
    const secret = generateMachineSecret();
    expect(Buffer.from(secret, 'base64url')).toHaveLength(16); // 128 bits
    const stored = hashMachineSecret(secret);
    expect(stored).toMatch(/^hmac-sha256\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/]{43}=$/);
    expect(stored).not.toContain(secret);
    expect(hashMachineSecret(secret)).not.toBe(stored); // a fresh salt each time
    expect(verifyMachineSecret(secret, stored)).toBe(true);
    expect(await verifySecret(secret, stored)).toBe(true);
    expect(verifyMachineSecret(`${secret}x`, stored)).toBe(false);
    for (const bad of ['hmac-sha256$$', 'hmac-sha256$AAAA$AAAA', `${stored}$x`, stored.replace('hmac-sha256', 'hmac-md5')]) expect(verifyMachineSecret(secret, bad)).toBe(false);
  });

  it('lets a registry give machines either format but people scrypt only', () => {
    const site = structuredClone(demoRegistry().site);
    const text = (s: SiteRegistry): string => JSON.stringify(s);
    const dev = site.devices[0];
    const user = site.users[0];
    if (dev === undefined || user === undefined) throw new Error('demo site incomplete');
    dev.secretHash = hashSecret('old-style', 16);
    expect(() => parseRegistry(text(site), 'legacy device')).not.toThrow();
    user.passwordHash = hashMachineSecret('demo-staff-h01');
    expect(() => parseRegistry(text(site), 'fast user hash')).toThrow(/passwordHash/);
  });
});
