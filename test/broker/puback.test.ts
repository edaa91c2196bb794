import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { pubackBytes } from '../../broker/ack-after-publish.ts';

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
