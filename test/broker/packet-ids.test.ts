import { mkdtempSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../broker/broker.ts';
import type { BrokerConfig } from '../../broker/config.ts';
import type { Device } from '../../contract/registry.ts';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import { demoRegistry } from '../support/registry.ts';
import { useRedisServer } from '../support/redis-server.ts';
import { connect, rawSubscriber, startBroker, until } from './helpers.ts';

/**
 * Two messages in flight to one session never share a packet id [MQTT-2.3.1-2] (review of session
 * 25: an acknowledged reading lost on the disk and memory stores). aedes numbers deliveries from a
 * per-connection counter that starts at a random id, wraps at 65,535 and skips nothing in use
 * (lib/qos-packet.js), and resent a reconnecting session's queue with the ids its messages had on the
 * dead connection. When a new message got an id a message in flight held, svc-ingest's PUBACK for
 * the older cleared the newer from the queue (and journalled the clear): lost if ingest died before
 * storing it. Real broker, each store; the one fault injected is aedes' counter (random, or wrapped
 * after 65,535 deliveries) set to the id that clashes. On the code before the fix, memory and disk:
 * both went out with one id and, after the PUBACK for seq 1, seq 1 was still queued and seq 2 gone;
 * and a retained copy sent at SUBSCRIBE got the id of the resent message, whose PUBACK cleared it.
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

/** The PUBLISHes a raw subscriber receives: packet id and reading seq, in order. */
function deliveries(s: Socket): Array<{ id: number; seq?: number; topic: string }> {
  const got: Array<{ id: number; seq?: number; topic: string }> = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (p) => {
    if (p.cmd === 'publish') got.push({ id: p.messageId as number, seq: (JSON.parse(p.payload.toString()) as { seq?: number }).seq, topic: p.topic });
  });
  s.on('data', (d: Buffer) => parser.parse(d));
  return got;
}

function clientOf(b: Broker, clientId: string): { subscriptions: Record<string, unknown> } | undefined {
  return (b.aedes as unknown as { clients: Record<string, { subscriptions: Record<string, unknown> }> }).clients[clientId];
}

async function queuedSeqs(b: Broker, clientId: string): Promise<number[]> {
  const store = (b.aedes as unknown as { persistence: { outgoingPackets(id: string): object[] | Promise<object[]> } }).persistence;
  const packets = await store.outgoingPackets(clientId);
  return packets.map((p) => (JSON.parse((p as { payload: Buffer }).payload.toString()) as { seq: number }).seq);
}

const stores: Array<[string, () => Partial<BrokerConfig>]> = [
  ['memory', () => ({})],
  ['disk', () => ({ storeDir: mkdtempSync(join(tmpdir(), 'cw-packet-ids-')) })],
  ['redis', () => ({ redisUrl: `${redis.url}/3` })],
];

describe('packet ids of one session connection', () => {
  for (const [name, storeConfig] of stores) {
    it(`${name}: a message resent at reconnect and a new one get different ids, and each PUBACK clears its own`, async () => {
      const config = storeConfig();
      const clientId = `svc-ingest-ids-${name}`;
      const b = await startBroker({ config });
      brokers.push(b);
      const s1 = await rawSubscriber(b, 'svc-ingest', [FILTERS.telemetry], { clean: false, clientId });
      sockets.push(s1);
      const got1 = deliveries(s1);
      await until('the subscription', () => clientOf(b, clientId)?.subscriptions[FILTERS.telemetry] !== undefined);
      const dev = await connect(b, device.id);
      await dev.publishAsync(topic, reading(1), { qos: 1 });
      await until('seq 1 on the first connection', () => got1.length >= 1);
      s1.destroy(); // seq 1 never acknowledged: resent at the next connection
      await until('the first connection gone', () => clientOf(b, clientId) === undefined);

      const s2 = await rawSubscriber(b, 'svc-ingest', [FILTERS.telemetry], { clean: false, clientId });
      sockets.push(s2);
      const got2 = deliveries(s2);
      await until('seq 1 resent', () => got2.length >= 1);
      const x = (got2[0] as { id: number }).id;
      // The counter comes round to the id seq 1 is in flight with (aedes: random start, or a wrap).
      (clientOf(b, clientId) as unknown as { _nextId: number })._nextId = x;
      await dev.publishAsync(topic, reading(2), { qos: 1 });
      await until('seq 2 live', () => got2.length >= 2);
      await dev.endAsync();

      expect(got2[0]?.seq).toBe(1);
      const y = (got2[1] as { id: number }).id;
      expect(got2[1]?.seq).toBe(2);
      expect(y, `both in flight as ${x}: ${JSON.stringify(got2)}`).not.toBe(x);

      // svc-ingest stored seq 1 and acknowledges it: seq 2 stays queued until its own PUBACK.
      s2.write(mqttPacket.generate({ cmd: 'puback', messageId: x }));
      await until('a queue entry cleared', async () => (await queuedSeqs(b, clientId)).length < 2);
      expect(await queuedSeqs(b, clientId)).toEqual([2]);

      if (config.storeDir !== undefined) {
        // What the journal holds agrees: a broker on the same directory resends seq 2, not seq 1.
        s2.destroy();
        await b.close();
        brokers.splice(brokers.indexOf(b), 1);
        const again = await startBroker({ config });
        brokers.push(again);
        expect(await queuedSeqs(again, clientId)).toEqual([2]);
        return;
      }
      s2.write(mqttPacket.generate({ cmd: 'puback', messageId: y }));
      await until('seq 2 cleared', async () => (await queuedSeqs(b, clientId)).length === 0);
    });

    it(`${name}: a retained copy sent at SUBSCRIBE does not get the id of a message resent at reconnect`, async () => {
      const clientId = `svc-ingest-retained-${name}`;
      const b = await startBroker({ config: storeConfig() });
      brokers.push(b);
      const s1 = await rawSubscriber(b, 'svc-ingest', [FILTERS.telemetry], { clean: false, clientId });
      sockets.push(s1);
      const got1 = deliveries(s1);
      await until('the subscription', () => clientOf(b, clientId)?.subscriptions[FILTERS.telemetry] !== undefined);
      const dev = await connect(b, device.id);
      await dev.publishAsync(topic, reading(1), { qos: 1 });
      await until('seq 1 on the first connection', () => got1.length >= 1);
      const x = (got1[0] as { id: number }).id;
      s1.destroy(); // seq 1 never acknowledged
      await until('the first connection gone', () => clientOf(b, clientId) === undefined);
      // The device's retained online status: not queued for the session (no status filter yet). The
      // device stays connected (a disconnect publishes its offline status, which would be queued).
      await dev.publishAsync(deviceTopic(device.homeId, device.id, 'status'), JSON.stringify({ ts: 1, online: true }), { qos: 1, retain: true });

      // The session comes back and subscribes to statuses too (ingest or alerts after a restart);
      // its counter happens to start at the id seq 1 had.
      const startAtX = (c: { id: string; _nextId: number }): void => {
        if (c.id === clientId) c._nextId = x;
      };
      b.aedes.on('client', startAtX as never);
      const s2 = await rawSubscriber(b, 'svc-ingest', [FILTERS.telemetry, FILTERS.status], { clean: false, clientId });
      sockets.push(s2);
      const got2 = deliveries(s2);
      await until('seq 1 resent and the retained status', () => got2.length >= 2);
      b.aedes.removeListener('client', startAtX as never);
      const resent = got2.find((d) => d.topic === topic);
      const status = got2.find((d) => d.topic !== topic);
      expect(resent?.seq).toBe(1);
      expect(status?.id, `both in flight as one id: ${JSON.stringify(got2)}`).not.toBe(resent?.id);

      // The status is handled first and acknowledged: seq 1 stays queued until its own PUBACK.
      s2.write(mqttPacket.generate({ cmd: 'puback', messageId: status?.id as number }));
      s2.write(mqttPacket.generate({ cmd: 'pingreq' }));
      await new Promise<void>((r) => s2.once('data', () => r()));
      expect(await queuedSeqs(b, clientId)).toEqual([1]);
      dev.end(true);
    });
  }
});
