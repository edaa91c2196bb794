import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { afterEach, expect, it } from 'vitest';
import { encodePublish } from '../../bench/lib/mqtt-raw.ts';
import { deviceTopic } from '../../contract/topics.ts';
import type { Ingest } from '../../ingest/ingest.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { watchProcessFaults } from '../support/process-faults.ts';
import { startIngest } from './support/ingest.ts';
import { captureLogger, waitFor } from './support/wait.ts';

/**
 * A topic that is valid MQTT on the wire but over the spool's 65,535-byte field once decoded: every
 * byte that is not UTF-8 becomes U+FFFD (three bytes), so 25,000 such bytes are 75,000. Neither
 * carewatch's broker (a device publishes only its own topics) nor Mosquitto 2 (it drops a publisher
 * whose topic is not UTF-8) passes one on, so the broker here is a raw one that does: a broker
 * without that check, or a tampered plain mqtt:// link. Before the bound, spooling it threw in the
 * socket's reader and ended ingest, and the unacknowledged QoS 1 message came back at every
 * reconnect (found by a helper's hunt, session 21).
 */
const faults = watchProcessFaults();
let ingest: Ingest | undefined;
let server: Server | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  await ingest?.close();
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
});

const DEV = { homeId: 'h01', deviceId: 'h01-sd-r101' };

it('a topic over the bound once decoded is rejected (BAD_TOPIC) and acknowledged; ingest goes on storing', async () => {
  const acked: number[] = [];
  const bad = Buffer.concat([Buffer.from(`carewatch/v1/${DEV.homeId}/`), Buffer.alloc(25_000, 0xff), Buffer.from('/telemetry')]);
  const good = Buffer.from(deviceTopic(DEV.homeId, DEV.deviceId, 'telemetry'));
  server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (p) => {
      if (p.cmd === 'connect') s.write(mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }));
      if (p.cmd === 'pingreq') s.write(mqttPacket.generate({ cmd: 'pingresp' }));
      if (p.cmd === 'puback' && p.messageId !== undefined) acked.push(p.messageId);
      if (p.cmd === 'subscribe') {
        s.write(mqttPacket.generate({ cmd: 'suback', messageId: p.messageId, granted: p.subscriptions.map(() => 1) }));
        s.write(encodePublish(bad, Buffer.from('{}'), 1, 7));
        s.write(encodePublish(good, Buffer.from(JSON.stringify({ ts: Date.now(), seq: 1, metrics: { temperature_c: 21 } })), 1, 8));
      }
    });
    s.on('data', (c) => parser.parse(c));
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  const { url, database } = testInflux('badtopic');
  const { logger, lines } = captureLogger('warn');
  ingest = await startIngest({ mqttUrl: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, influxUrl: url, influxDb: database, receiveStamp: 'service' }, logger);
  await waitFor('both acknowledged, or a crash', () => faults.uncaught.length > 0 || (acked.includes(7) && acked.includes(8)));
  expect(faults.uncaught.map(String)).toEqual([]);
  await waitFor('the good reading stored', async () => (await influxQuery(url, database, `SELECT count(seq) FROM "raw"."telemetry" WHERE device = '${DEV.deviceId}'`))[0]?.values[0]?.[1] === 1);
  expect(ingest.stats().rejected.BAD_TOPIC).toBe(1);
  expect(lines.filter((l) => l.code === 'BAD_TOPIC')).toHaveLength(1);
});
