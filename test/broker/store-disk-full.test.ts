import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Device } from '../../contract/registry.ts';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import { captureLogger } from '../ingest/support/wait.ts';
import { watchProcessFaults } from '../support/process-faults.ts';
import { demoRegistry, demoSecret } from '../support/registry.ts';
import { mountTinyDisk, type TinyDisk } from '../support/tiny-disk.ts';
import { connect, startBroker, until } from './helpers.ts';

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
let disk: TinyDisk | undefined;

beforeAll(() => {
  disk = mountTinyDisk('1m');
});
afterAll(() => {
  disk?.close();
});

it('a full disk holds the PUBACK (the device stays connected) until there is room; every acknowledged reading reaches the persistent session', async (ctx) => {
  if (disk === undefined) return ctx.skip();
  const { logger, lines } = captureLogger('warn');
  const b = await startBroker({ config: { storeDir: join(disk.path, 'store') }, logger });
  const opts = { clientId: 'svc-ingest-disk', username: 'svc-ingest', password: demoSecret('svc-ingest'), clean: false, protocolVersion: 4 as const, reconnectPeriod: 0 };
  const first = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.tcpPort}`, opts);
  await first.subscribeAsync(FILTERS.telemetry, { qos: 1 });
  await first.endAsync();
  const dev = await connect(b, device.id);
  try {
    const note = 'x'.repeat(4_000);
    const acked: number[] = [];
    let held: { seq: number; puback: Promise<boolean> } | undefined;
    // ~250 of these fill 1 MiB (each is journalled with its queue entry for the session).
    for (let seq = 1; seq <= 1_000 && held === undefined; seq++) {
      const puback = dev.publishAsync(deviceTopic(device.homeId, device.id, 'telemetry'), JSON.stringify({ ts: Date.now(), seq, metrics: { temperature_c: 21 }, note }), { qos: 1 }).then(
        () => (acked.push(seq), true),
        () => false,
      );
      let timer: NodeJS.Timeout | undefined;
      // A bound on waiting, not a timing assertion: a PUBACK later than this only ends the filling.
      const ok = await Promise.race([puback, new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 2_000)))]);
      clearTimeout(timer);
      if (!ok) held = { seq, puback };
    }
    expect(held).toBeDefined();
    expect(acked).not.toContain(held?.seq);
    expect(dev.connected).toBe(true);
    expect(lines.some((l) => l.code === 'BROKER_STORE_IO')).toBe(true);

    disk.grow('64m');
    expect(await held?.puback).toBe(true);
    expect(acked).toContain(held?.seq);
    dev.end(true);

    const got = new Set<number>();
    const again = mqtt.connect(`mqtt://127.0.0.1:${b.tcpPort}`, opts);
    again.on('message', (_t, payload) => got.add((JSON.parse(payload.toString()) as { seq: number }).seq));
    try {
      await until(() => `every acknowledged reading at the service; missing ${acked.filter((n) => !got.has(n)).length} of ${acked.length}`, () => acked.every((n) => got.has(n)));
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
