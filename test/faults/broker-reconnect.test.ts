import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../common/influxd.ts';
import { createLogger } from '../../common/logger.ts';
import { generateMachineSecret, hashMachineSecret } from '../../common/secrets.ts';
import { createBroker, type Broker } from '../../broker/broker.ts';
import { listenEarly, type EarlyListener } from '../../broker/early-listener.ts';
import { indexRegistry } from '../../contract/registry-index.ts';
import type { Device, SiteRegistry } from '../../contract/registry.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { eventually, startProcess, type TestProcess } from '../support/process.ts';
import { demoRegistry } from '../support/registry.ts';

/**
 * Issue 12: after a broker crash, every device is back, and each costs the restarted broker one
 * fast password check. A real broker process (durable store on disk, as `npm start` runs it) with
 * 2,000 devices, each its own random 128-bit secret, over real TCP; the broker is SIGKILLed and
 * started again on the same port while the devices retry with jittered back-off. Counted, never
 * timed: every device gets CONNACK 0 again, and the new process computed exactly one HMAC per device
 * (its /metrics), no scrypt, no refusal.
 */
const N = 2_000;
const base = demoRegistry().site;
const home = base.homes[0];
const room = home?.floors[0]?.rooms[0];
if (home === undefined || room === undefined) throw new Error('demo site without rooms');

interface Fleet {
  readonly site: SiteRegistry;
  readonly devices: ReadonlyArray<{ readonly id: string; readonly secret: string }>;
}

function fleet(n: number): Fleet {
  const devices: Array<{ id: string; secret: string }> = [];
  const entries: Device[] = [];
  for (let i = 0; i < n; i++) {
    const id = `rc-${String(i).padStart(4, '0')}`;
    const secret = generateMachineSecret();
    devices.push({ id, secret });
    entries.push({ id, homeId: home!.id, roomId: room!.id, kind: 'heat_detector', secretHash: hashMachineSecret(secret) });
  }
  return { site: { ...base, homes: [home!], residents: [], users: [], devices: entries, rosters: (base.rosters ?? []).filter((r) => r.homeId === home!.id) }, devices };
}

/**
 * A device as a load tester writes one: raw MQTT 3.1.1 over one socket, a last will on its status
 * topic as carewatch devices set, keepalive 60 s; when the connection drops it reconnects after a
 * jittered, doubling delay (0–50 ms, capped at 800 ms: short, as this test is not a benchmark).
 */
class TestDevice {
  connacks = 0;
  connected = false;
  private socket: Socket | undefined;
  private failures = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    private readonly secret: string,
    private readonly port: number,
  ) {}

  connect(): void {
    if (this.stopped) return;
    const socket = createConnection({ port: this.port, host: '127.0.0.1' });
    this.socket = socket;
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (p) => {
      if (p.cmd !== 'connack') return;
      if (p.returnCode === 0) {
        this.connacks++;
        this.connected = true;
        this.failures = 0;
      } else socket.destroy();
    });
    socket.on('data', (chunk) => parser.parse(chunk));
    socket.on('error', () => undefined); // surfaces as 'close'
    socket.once('close', () => {
      const was = this.connected;
      this.connected = false;
      if (!was) this.failures++;
      this.retry();
    });
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        clientId: this.id,
        keepalive: 60,
        username: this.id,
        password: Buffer.from(this.secret),
        will: { topic: deviceTopic(home!.id, this.id, 'status'), payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
      }),
    );
  }

  private retry(): void {
    if (this.stopped) return;
    const delay = Math.random() * Math.min(800, 50 * 2 ** this.failures);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.destroy();
  }
}

async function metric(httpPort: number, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const key = labels === '' ? `carewatch_${name} ` : `carewatch_${name}{${labels}} `;
  const line = text.split('\n').find((l) => l.startsWith(key));
  if (line === undefined) throw new Error(`no ${name}{${labels}} in /metrics`);
  return Number(line.split(' ').pop());
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('devices after a broker crash (issue 12)', () => {
  it(`brings all ${N} devices back after a SIGKILL + restart, one HMAC each and no scrypt`, async () => {
    const f = fleet(N);
    const work = await mkdtemp(join(tmpdir(), 'carewatch-reconnect-'));
    cleanups.push(() => rm(work, { recursive: true, force: true }));
    const registryPath = join(work, 'registry.json');
    await writeFile(registryPath, JSON.stringify(f.site));
    const [port, httpPort] = [await freePort(), await freePort()];
    const env = {
      CAREWATCH_REGISTRY: registryPath,
      CAREWATCH_BROKER_PORT: String(port),
      CAREWATCH_BROKER_WS_PORT: '0',
      CAREWATCH_BROKER_HTTP_PORT: String(httpPort),
      CAREWATCH_BROKER_STORE_DIR: join(work, 'store'),
      CAREWATCH_LOG_LEVEL: 'warn',
    };
    const procs: TestProcess[] = [];
    cleanups.push(async () => {
      for (const p of procs) await p.kill('SIGKILL');
    });
    let broker = startProcess('broker-reconnect', 'broker/main.ts', env);
    procs.push(broker);
    await broker.waitForOutput(/broker listening/);

    const devices = f.devices.map((d) => new TestDevice(d.id, d.secret, port));
    cleanups.push(() => devices.forEach((d) => d.stop()));
    // In waves of 200, as a fleet powering up would: 2,000 at once would only test the backlog.
    for (let i = 0; i < devices.length; i += 200) {
      for (const d of devices.slice(i, i + 200)) d.connect();
      await eventually(`devices ${i}..${i + 199} connected`, () => (devices.slice(i, i + 200).every((d) => d.connected) ? true : undefined), 60_000, 20);
    }
    expect(await metric(httpPort, 'broker_password_verifications_total', 'algorithm="hmac"')).toBe(N);

    // Crash: no DISCONNECT, no close of the store. Every device sees its socket drop and retries.
    await broker.kill('SIGKILL');
    await eventually('every device saw the crash', () => (devices.every((d) => !d.connected) ? true : undefined), 30_000, 20);
    const before = devices.map((d) => d.connacks);
    broker = startProcess('broker-reconnect-restarted', 'broker/main.ts', env);
    procs.push(broker);
    await eventually(
      `all ${N} devices reconnected`,
      () => (devices.every((d, i) => d.connected && d.connacks > (before[i] as number)) ? true : undefined),
      120_000,
      50,
    );

    // Exactly one password check per device on the new broker: nothing checked twice, nothing refused.
    expect(devices.reduce((s, d, i) => s + d.connacks - (before[i] as number), 0)).toBe(N);
    expect(await metric(httpPort, 'broker_password_verifications_total', 'algorithm="hmac"')).toBe(N);
    expect(await metric(httpPort, 'broker_password_verifications_total', 'algorithm="scrypt"')).toBe(0);
    expect(await metric(httpPort, 'broker_auth_failures_total', '')).toBe(0);
    expect(await metric(httpPort, 'broker_clients_connected', '')).toBe(N);
  }, 240_000);
});

describe('early listener (broker/early-listener.ts)', () => {
  let broker: Broker | undefined;
  let listener: EarlyListener | undefined;
  afterEach(async () => {
    await broker?.close();
    listener?.server.close();
    broker = undefined;
    listener = undefined;
  });

  it('holds a CONNECT sent before the broker exists and answers it once the broker starts', async () => {
    const f = fleet(2);
    const [a, b] = f.devices;
    if (a === undefined || b === undefined) throw new Error('fleet too small');
    listener = await listenEarly(0, '127.0.0.1', 64);
    const port = (listener.server.address() as { port: number }).port;
    // Device a connects and sends CONNECT while only the listener exists (as during module loading).
    const connack = new Promise<number>((resolve, reject) => {
      const s = createConnection({ port, host: '127.0.0.1' });
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      parser.on('packet', (p) => {
        if (p.cmd === 'connack') {
          s.destroy();
          resolve(p.returnCode ?? -1);
        }
      });
      s.on('data', (c) => parser.parse(c));
      s.on('error', reject);
      s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: a.id, keepalive: 60, username: a.id, password: Buffer.from(a.secret) }));
    });
    // Device b connects and gives up while held (nothing is read from a held socket, so its EOF is
    // seen only once the broker reads it): it must not trouble the broker or device a.
    const gaveUp = createConnection({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve) => gaveUp.once('connect', () => resolve()));
    await eventually('both connections held', () => (listener!.held === 2 ? true : undefined), 10_000, 10);
    gaveUp.destroy();

    const registry = indexRegistry(f.site);
    broker = createBroker({ config: { host: '127.0.0.1', port, wsPort: 0, production: false }, registry, logger: createLogger('early-listener-test', 'silent'), listener });
    await broker.start();
    expect(broker.tcpPort).toBe(port);
    expect(await connack).toBe(0);
    expect(listener.held).toBe(0);
    expect(broker.stats().hashComputations).toEqual({ hmac: 1, scrypt: 0 });
    expect(broker.stats().refusals.BROKER_BAD_PASSWORD).toBe(0);
  });
});
