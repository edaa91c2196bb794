import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { pubackBytes } from '../../broker/ack-after-publish.ts';
import type { Broker } from '../../broker/broker.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { watchProcessFaults } from '../support/process-faults.ts';
import { closedEvent, connect, startBroker } from './helpers.ts';

describe('PUBACK written as one buffer (ack-after-publish.ts)', () => {
  it("is byte for byte mqtt-packet's PUBACK for every packet id", () => {
    // Every id of the 16-bit space [MQTT-2.3.1]: 65,536 small buffers, a few ms.
    for (let id = 0; id <= 0xffff; id++) {
      const ours = pubackBytes(id);
      const theirs = mqttPacket.generate({ cmd: 'puback', messageId: id });
      if (!ours.equals(theirs)) expect(ours.toString('hex')).toBe(theirs.toString('hex'));
    }
  });
});

describe('a store that cannot keep a message (ack-after-publish.ts)', () => {
  const { unhandled } = watchProcessFaults();
  let broker: Broker | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await broker?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('closes that connection without a PUBACK, rejects nothing unhandled, and acknowledges the next connection', async () => {
    dir = await mkdtemp(join(tmpdir(), 'puback-fail-'));
    const b = (broker = await startBroker({ config: { storeDir: dir } }));
    const ingest = await connect(b, 'svc-ingest', { clientId: 'svc-ingest-puback-fail', clean: false });
    await ingest.subscribeAsync('carewatch/v1/+/+/telemetry', { qos: 1 });
    // The store's promise that the next commit is durable fails once (as a commit failing while the
    // store closes on a full disk does): injected, the one fault the real store makes only at close.
    const store = (b.aedes as unknown as { persistence: { whenDurable(): Promise<void> } }).persistence;
    const whenDurable = store.whenDurable.bind(store);
    let failOnce = true;
    store.whenDurable = () => {
      if (!failOnce) return whenDurable();
      failOnce = false;
      return Promise.reject(new Error('commit failed'));
    };
    const topic = deviceTopic('h01', 'h01-sd-r101', 'telemetry');
    const device = await connect(b, 'h01-sd-r101');
    const closed = closedEvent(device);
    let acked = false;
    device.publish(topic, JSON.stringify({ ts: Date.now(), seq: 1, metrics: { temperature_c: 21 } }), { qos: 1 }, (err) => (acked = err === undefined));
    await closed;
    expect(acked).toBe(false);
    const again = await connect(b, 'h01-sd-r101');
    await again.publishAsync(topic, JSON.stringify({ ts: Date.now(), seq: 2, metrics: { temperature_c: 21 } }), { qos: 1 });
    again.end(true);
    ingest.end(true);
    device.end(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(unhandled).toEqual([]);
  });
});
