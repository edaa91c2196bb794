import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../broker/broker.ts';
import type { BrokerConfig } from '../../broker/config.ts';
import type { Device } from '../../contract/registry.ts';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import { demoRegistry, demoSecret } from '../support/registry.ts';
import { useRedisServer } from '../support/redis-server.ts';
import { connect, connectRecording, leaveTelemetrySession, seqsOf, startBroker, until } from './helpers.ts';

/**
 * A device may publish at QoS 2 (the policy does not look at the QoS), and PUBREC acknowledges the
 * message as PUBACK does at QoS 1: after it the device sends only PUBREL, which deletes the broker's
 * copy of the incoming packet and publishes nothing. aedes 1.2 sent PUBREC as soon as its publish
 * resolved, and the disk store's resolves before its fdatasync (review of session 25): a store
 * copied as PUBREC was written held nothing of the message ({ inCopy: 0 }). ack-after-publish.ts now
 * takes QoS 2 over as it does QoS 1.
 */

const brokers: Broker[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const b of brokers.splice(0)) await b.close();
});

const redis = useRedisServer();
const device = demoRegistry().site.devices[0] as Device;
const topic = deviceTopic(device.homeId, device.id, 'telemetry');
const reading = (seq: number): string => JSON.stringify({ ts: 1_767_225_600_000 + seq, seq, metrics: { temperature_c: 21 } });

describe('QoS 2 from a device', () => {
  for (const qos of [1, 2] as const) {
    it(`disk: a copy of the store taken as the ${qos === 1 ? 'PUBACK' : 'PUBREC'} is written holds the message`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cw-qos2-'));
      const copy = mkdtempSync(join(tmpdir(), 'cw-qos2-copy-'));
      const first = await startBroker({ config: { storeDir: dir } });
      brokers.push(first);
      await leaveTelemetrySession(first, 'svc-ingest-qos2');
      // The store as a crash at the acknowledgement's write would leave it (the LOCK aside).
      let copied = false;
      const ackByte = qos === 1 ? 0x40 : 0x50;
      first.aedes.on('client', (c) => {
        if (c.id !== device.id) return;
        const conn = c.conn as unknown as { write: (b: unknown, ...a: unknown[]) => boolean };
        const write = conn.write.bind(conn);
        conn.write = (b: unknown, ...a: unknown[]) => {
          if (!copied && Buffer.isBuffer(b) && b[0] === ackByte) {
            cpSync(dir, copy, { recursive: true });
            copied = true;
          }
          return write(b, ...a);
        };
      });
      const dev = await connect(first, device.id);
      await dev.publishAsync(topic, reading(1), { qos });
      await dev.endAsync();
      expect(copied).toBe(true);
      rmSync(join(copy, 'LOCK'), { force: true });

      const second = await startBroker({ config: { storeDir: copy } });
      brokers.push(second);
      const { client, received } = await connectRecording(second, 'svc-ingest', { clientId: 'svc-ingest-qos2', clean: false });
      await until('the acknowledged reading from the copied store', () => seqsOf(received, topic).length >= 1, 5_000).catch(() => undefined);
      await client.endAsync();
      expect(seqsOf(received, topic)).toEqual([1]);
    });
  }

  const stores: Array<[string, () => Partial<BrokerConfig>]> = [
    ['memory', () => ({})],
    ['disk', () => ({ storeDir: mkdtempSync(join(tmpdir(), 'cw-qos2-')) })],
    ['redis', () => ({ redisUrl: `${redis.url}/4` })],
  ];
  for (const [name, config] of stores) {
    it(`${name}: PUBREC, a resend of the same id acknowledged without a second publish, PUBREL, PUBCOMP`, async () => {
      const b = await startBroker({ config: config() });
      brokers.push(b);
      const { client: ingest, received } = await connectRecording(b, 'svc-ingest', { clientId: `svc-ingest-qos2-${name}`, clean: true });
      await ingest.subscribeAsync(FILTERS.telemetry, { qos: 1 });

      // The device, raw: what it is sent, and when, is the test's.
      const s = tcpConnect(b.tcpPort, '127.0.0.1');
      sockets.push(s);
      s.on('error', () => undefined);
      const got: Array<{ cmd: string; messageId?: number }> = [];
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      parser.on('packet', (p) => got.push({ cmd: p.cmd, ...('messageId' in p && p.messageId !== undefined ? { messageId: p.messageId } : {}) }));
      s.on('data', (d: Buffer) => parser.parse(d));
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: device.id, keepalive: 0, username: device.id, password: Buffer.from(demoSecret(device.id)) }));
      await until('CONNACK', () => got.some((p) => p.cmd === 'connack'));
      const publish = (seq: number, messageId: number, dup: boolean): Buffer => mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from(reading(seq)), qos: 2, dup, retain: false, messageId });
      const count = (cmd: string): number => got.filter((p) => p.cmd === cmd).length;
      s.write(publish(1, 7, false));
      await until('PUBREC', () => count('pubrec') >= 1);
      // The PUBREC lost on its way, as it were: the device sends the message again.
      s.write(publish(1, 7, true));
      await until('a second PUBREC', () => count('pubrec') >= 2);
      s.write(mqttPacket.generate({ cmd: 'pubrel', messageId: 7 }));
      await until('PUBCOMP', () => count('pubcomp') >= 1);
      // A resend while the first copy is still being stored (both in one read).
      s.write(Buffer.concat([publish(2, 9, false), publish(2, 9, true)]));
      await until('two PUBRECs for it', () => count('pubrec') >= 4);
      s.write(mqttPacket.generate({ cmd: 'pubrel', messageId: 9 }));
      await until('PUBCOMP', () => count('pubcomp') >= 2);
      // A later QoS 1 reading, delivered after them: had a resend been published, it would be in between.
      s.write(mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from(reading(3)), qos: 1, dup: false, retain: false, messageId: 8 }));
      await until('seq 3', () => seqsOf(received, topic).includes(3));
      expect(seqsOf(received, topic)).toEqual([1, 2, 3]);
      expect(got.filter((p) => p.cmd !== 'connack')).toEqual([
        { cmd: 'pubrec', messageId: 7 },
        { cmd: 'pubrec', messageId: 7 },
        { cmd: 'pubcomp', messageId: 7 },
        { cmd: 'pubrec', messageId: 9 },
        { cmd: 'pubrec', messageId: 9 },
        { cmd: 'pubcomp', messageId: 9 },
        { cmd: 'puback', messageId: 8 },
      ]);
      await ingest.endAsync();
    });
  }
});
