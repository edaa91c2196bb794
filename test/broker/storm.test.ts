import { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import { afterAll, expect, it } from 'vitest';
import { hashSecret } from '../../common/secrets.ts';
import { indexRegistry } from '../../contract/registry-index.ts';
import type { Device, SiteRegistry } from '../../contract/registry.ts';
import { FILTERS, deviceCommandTopic, deviceTopic } from '../../contract/topics.ts';
import type { Broker } from '../../broker/broker.ts';
import { demoRegistry } from '../support/registry.ts';
import { connect, until } from './helpers.ts';
import { startBroker } from './helpers.ts';

/**
 * The mass-disconnect hazard (issue 6): aedes 1.2 was seen to die with `RangeError: Maximum call
 * stack size exceeded` when 10,000 devices dropped at once under a loaded subscriber. Reproduced
 * here without broker/mq-recursion-guard.ts (see there for the cause). The test must survive the
 * storm, deliver every device's offline status, and keep serving.
 *
 * Devices are in-memory duplex pairs handed to aedes (the aedes test-suite technique): 10,000
 * devices over loopback TCP would need 20,000 descriptors in this one process, at the limit of
 * the machine (ulimit -n 20000). svc-ingest is a real mqtt.js client over TCP.
 */
const N = 10_000;
const ROUNDS = 3;
const SECRET = 'storm-secret';
const base = demoRegistry().site;
const home = base.homes[0];
const room = home?.floors[0]?.rooms[0];
if (home === undefined || room === undefined) throw new Error('demo site without rooms');
// One shared hash at a low scrypt cost: this test is about routing, not about scrypt (the
// credential cache has its own tests); 10,000 hashes at DEVICE_COST would take most of a minute.
const hash = hashSecret(SECRET, 16, Buffer.alloc(16, 1));
const stormDevices: Device[] = Array.from({ length: N + 1 }, (_, i) => ({ id: `st-${i}`, homeId: home.id, roomId: room.id, kind: 'heat_detector', secretHash: hash }));
const site: SiteRegistry = { ...base, homes: [home], residents: [], users: [], devices: stormDevices, rosters: (base.rosters ?? []).filter((r) => r.homeId === home.id) };
const registry = indexRegistry(site);

function duplexPair(): [Duplex, Duplex] {
  const a: Duplex = new Duplex({
    read() {},
    write(chunk, _enc, cb) {
      b.push(chunk);
      cb();
    },
  });
  const b: Duplex = new Duplex({
    read() {},
    write(chunk, _enc, cb) {
      a.push(chunk);
      cb();
    },
  });
  a.on('error', () => undefined);
  b.on('error', () => undefined);
  return [a, b];
}

let broker: Broker | undefined;
afterAll(async () => {
  await broker?.close();
});

it('survives 10,000 devices dropping at once under load and publishes every offline status', async () => {
  broker = await startBroker({ registry });
  const b = broker;
  // A loaded in-process subscriber on the whole v1 tree (the '#'-style subscriber of the report).
  let routed = 0;
  await new Promise<void>((resolve) =>
    b.aedes.subscribe(
      FILTERS.everything,
      (_packet, done) => {
        routed++;
        done();
      },
      () => resolve(),
    ),
  );
  const ingest = await connect(b, 'svc-ingest', { clientId: 'svc-ingest-storm' });
  const offline = new Map<string, Record<string, unknown>>();
  ingest.on('message', (topic, payload) => {
    if (topic.endsWith('/status')) offline.set(topic, JSON.parse(payload.toString()) as Record<string, unknown>);
  });
  await ingest.subscribeAsync([FILTERS.telemetry, FILTERS.event, FILTERS.status], { qos: 1 });

  // Connect N devices; every other one sets the contract's last will.
  const serverEnds: Duplex[] = [];
  const deviceEnds: Duplex[] = [];
  let connacks = 0;
  for (let i = 0; i < N; i++) {
    const [server, device] = duplexPair();
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (p) => {
      if (p.cmd === 'connack' && p.returnCode === 0) connacks++;
    });
    device.on('data', (d: Buffer) => parser.parse(d));
    b.aedes.handle(server);
    const id = `st-${i}`;
    const will = i % 2 === 0 ? { will: { topic: deviceTopic(home.id, id, 'status'), payload: Buffer.from('{"online":false}'), qos: 1 as const, retain: true } } : {};
    device.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: id, keepalive: 60, username: id, password: Buffer.from(SECRET), ...will }));
    serverEnds.push(server);
    deviceEnds.push(device);
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  await until(() => `all CONNACKs (${connacks}, refused ${JSON.stringify(b.stats().refusals)})`, () => connacks === N, 20_000);

  // Load: every device sends ROUNDS telemetry messages; drop them all while the broker is still
  // routing (half the load seen by the in-process subscriber) and svc-ingest has a backlog.
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < N; i++) {
      const payload = JSON.stringify({ ts: 1_767_225_600_000 + r, seq: r, metrics: { temperature_c: 21 } });
      deviceEnds[i]?.write(mqttPacket.generate({ cmd: 'publish', topic: deviceTopic(home.id, `st-${i}`, 'telemetry'), payload, qos: 0, retain: false, dup: false }));
    }
  }
  await until('load under way', () => routed >= (N * ROUNDS) / 2, 20_000);
  for (const s of serverEnds) s.destroy(); // the connection is lost: no DISCONNECT

  await until('every offline status at svc-ingest', () => offline.size === N, 120_000);
  expect([...offline.values()].every((s) => s.online === false && typeof s.ts === 'number')).toBe(true);
  const stats = b.stats();
  expect(stats.willsPublished + stats.offlinePublished).toBeGreaterThanOrEqual(N);

  // Still serving: a new device connects, publishes, and receives a command from svc-alerts.
  const late = stormDevices[N] as Device;
  const device = await connect(b, late.id, { password: SECRET });
  const alerts = await connect(b, 'svc-alerts', { clientId: 'svc-alerts-storm' });
  const commands: string[] = [];
  device.on('message', (_t, p) => commands.push(p.toString()));
  await device.subscribeAsync(deviceCommandTopic(home.id, late.id), { qos: 1 });
  const telemetry = deviceTopic(home.id, late.id, 'telemetry');
  let lateSeen = false;
  ingest.on('message', (topic) => {
    if (topic === telemetry) lateSeen = true;
  });
  await device.publishAsync(telemetry, JSON.stringify({ ts: 1_767_225_600_000, seq: 9, metrics: { temperature_c: 20 } }), { qos: 1 });
  await alerts.publishAsync(deviceCommandTopic(home.id, late.id), '{"cmd":"self_test"}', { qos: 1 });
  await until('late device telemetry and command', () => lateSeen && commands.length === 1);
  for (const c of [device, alerts, ingest]) c.end(true);
}, 240_000);
