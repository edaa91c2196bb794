import { rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import mqttPacket from 'mqtt-packet';
import { expect, it } from 'vitest';
import type { Device } from '../../contract/registry.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { captureLogger } from '../ingest/support/wait.ts';
import { watchProcessFaults } from '../support/process-faults.ts';
import { demoRegistry, demoSecret } from '../support/registry.ts';
import { fillDisk, tinyDiskForFile } from '../support/tiny-disk.ts';
import { connect, connectRecording, leaveTelemetrySession, publishUntilHeld, seqsOf, startBroker, until } from './helpers.ts';

/**
 * The broker's default store (a journal on local disk, `npm start`) when the disk is full: a real
 * tmpfs of 1 MiB under the store (root only: skipped elsewhere), grown with a remount once full.
 * A QoS 1 message the disk cannot take is not acknowledged (MQTT-4.3.2: the sender keeps it until
 * PUBACK), the device stays connected, and the message is acknowledged once there is room; every
 * acknowledged message reaches the persistent session. A store that acknowledged before its write
 * was durable never stalls here.
 */
const { unhandled, uncaught } = watchProcessFaults();
const [device] = demoRegistry().site.devices.filter((d) => d.kind === 'smoke_detector') as [Device];
const tinyDisk = tinyDiskForFile('1m');
const alarmDisk = tinyDiskForFile('4m');
const telemetryTopic = deviceTopic(device.homeId, device.id, 'telemetry');

it('a full disk holds the PUBACK (the device stays connected) until there is room; every acknowledged reading reaches the persistent session', async (ctx) => {
  const disk = tinyDisk();
  if (disk === undefined) return ctx.skip();
  const { logger, lines } = captureLogger('warn');
  const b = await startBroker({ config: { storeDir: join(disk.path, 'store') }, logger });
  const session = 'svc-ingest-disk';
  await leaveTelemetrySession(b, session);
  const dev = await connect(b, device.id);
  try {
    // ~250 of these fill 1 MiB (each is journalled with its queue entry for the session).
    const { acked, held } = await publishUntilHeld(dev, telemetryTopic, 'x'.repeat(4_000), 1_000);
    expect(held).toBeDefined();
    expect(acked).not.toContain(held?.seq);
    expect(dev.connected).toBe(true);
    expect(lines.some((l) => l.code === 'BROKER_STORE_IO')).toBe(true);

    disk.grow('64m');
    expect(await held?.puback).toBe(true);
    expect(acked).toContain(held?.seq);
    dev.end(true);

    const { client: again, received } = await connectRecording(b, 'svc-ingest', { clientId: session, clean: false });
    const got = (): Set<number> => new Set(seqsOf(received, telemetryTopic));
    try {
      await until(() => `every acknowledged reading at the service; missing ${acked.filter((n) => !got().has(n)).length} of ${acked.length}`, () => acked.every((n) => got().has(n)));
    } finally {
      again.end(true);
    }
    expect(unhandled).toEqual([]);
    expect(uncaught).toEqual([]);
  } finally {
    dev.end(true);
    await b.close();
  }
}, 60_000);

it("an alarm sent after readings that wait for room is delivered at once, and the PUBACKs come in the order the messages came", async (ctx) => {
  // Before session 22 two QoS 1 readings in one read stopped the connection's reading until the
  // disk had room (aedes reads on once a read's packets are done; each waited for its PUBACK): the
  // alarm sent after them was not even read (a helper's run: not delivered in 4 s of full disk).
  const disk = alarmDisk();
  if (disk === undefined) return ctx.skip();
  const b = await startBroker({ config: { storeDir: join(disk.path, 'store') } });
  // Ingest's persistent session: the readings are journalled for it, so they meet the full disk.
  const ingest = await connectRecording(b, 'svc-ingest', { clientId: 'svc-ingest-disk-alarm', clean: false });
  await ingest.client.subscribeAsync(telemetryTopic, { qos: 1 });
  const alerts = await connectRecording(b, 'svc-alerts', { clientId: 'svc-alerts-disk-alarm' });
  const eventTopic = deviceTopic(device.homeId, device.id, 'event');
  await alerts.client.subscribeAsync(eventTopic, { qos: 1 });
  const sock = tcpConnect(b.tcpPort, '127.0.0.1');
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const pubacks: number[] = [];
  let connacked = false;
  parser.on('packet', (p) => {
    if (p.cmd === 'connack') connacked = true;
    if (p.cmd === 'puback' && p.messageId !== undefined) pubacks.push(p.messageId);
  });
  sock.on('data', (d) => parser.parse(d));
  sock.on('error', () => undefined);
  const send = (...packets: object[]): boolean => sock.write(Buffer.concat(packets.map((p) => mqttPacket.generate(p as mqttPacket.Packet))));
  const publish = (topic: string, body: object, messageId: number): object => ({ cmd: 'publish', topic, qos: 1, retain: false, dup: false, messageId, payload: Buffer.from(JSON.stringify(body)) });
  let filler: string | undefined;
  try {
    await new Promise<void>((r) => sock.once('connect', () => r()));
    send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: device.id, clean: true, keepalive: 0, username: device.id, password: Buffer.from(demoSecret(device.id)) });
    await until('CONNACK', () => connacked);
    // The device's connect records are on disk before it fills.
    await new Promise((r) => setTimeout(r, 300));
    filler = fillDisk(disk.path);
    const ts = Date.now();
    // Past one tmpfs page each, so they meet the full disk (a small record can still fit in the journal's last page).
    const pad = 'x'.repeat(3_950);
    send(publish(telemetryTopic, { ts, seq: 1, metrics: { temperature_c: 21 }, note: pad }, 1), publish(telemetryTopic, { ts: ts + 1, seq: 2, metrics: { temperature_c: 21 }, note: pad }, 2));
    await new Promise((r) => setTimeout(r, 300));
    expect(pubacks).toEqual([]);
    send(publish(eventTopic, { ts: ts + 2, seq: 3, type: 'detector_alarm' }, 3));
    await until('the alarm at svc-alerts while the disk is full', () => alerts.received.some((m) => m.topic === eventTopic));
    expect(pubacks).toEqual([]);
    rmSync(filler);
    filler = undefined;
    await until(() => `the three PUBACKs (${pubacks.join(',')})`, () => pubacks.length === 3);
    expect(pubacks).toEqual([1, 2, 3]);
  } finally {
    if (filler !== undefined) rmSync(filler);
    sock.destroy();
    alerts.client.end(true);
    ingest.client.end(true);
    await b.close();
  }
}, 60_000);
