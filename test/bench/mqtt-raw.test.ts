import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { encodePublish } from '../../bench/lib/mqtt-raw.ts';

/** The bench's hand-encoded PUBLISH against mqtt-packet's, byte for byte. */
describe('bench raw PUBLISH', () => {
  it('encodes QoS 0/1, retained or not, as mqtt-packet does (a device status is retained QoS 1)', () => {
    const topic = 'carewatch/v1/h01/h01-sd-f1-corridor/status';
    const payload = Buffer.from('{"online":true}');
    for (const qos of [0, 1] as const) {
      for (const retain of [false, true]) {
        const ours = encodePublish(Buffer.from(topic), payload, qos, qos === 1 ? 7 : 0, retain);
        const ref = mqttPacket.generate({ cmd: 'publish', topic, payload, qos, retain, dup: false, ...(qos === 1 ? { messageId: 7 } : {}) });
        expect(ours.equals(ref)).toBe(true);
      }
    }
  });
});
