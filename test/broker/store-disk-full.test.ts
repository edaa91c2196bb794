import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { Device } from '../../contract/registry.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { captureLogger } from '../ingest/support/wait.ts';
import { watchProcessFaults } from '../support/process-faults.ts';
import { demoRegistry } from '../support/registry.ts';
import { tinyDiskForFile } from '../support/tiny-disk.ts';
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
