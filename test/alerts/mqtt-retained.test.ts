import mqtt from 'mqtt';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import type { ReceiveStamp } from '../../contract/device-message.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { createMqttAdapter } from '../../alerts/mqtt.ts';
import type { RuleInput } from '../../alerts/rules/types.ts';
import { demoRegistry } from '../support/registry.ts';
import { startTestBroker } from './support/aedes.ts';
import { until } from './support/harness.ts';

/**
 * Behind a broker that stamps nothing (ReceiveStamp `service`, Mosquitto), a retained copy the broker
 * re-sends at SUBSCRIBE [MQTT-3.3.1-8] would reach the rules as news at a new time: a will
 * (`{"online":false}`, no ts) as a fresh offline, a retained event as a new alarm. The alerts process
 * leaves those copies out; its persistent signals session had the live message [MQTT-3.3.1-9].
 */
describe('retained copies re-sent at SUBSCRIBE', () => {
  for (const [stamp, expected] of [['service', false], ['broker', true]] as const) {
    it(`${expected ? 'reach' : 'do not reach'} the rules when the receive stamp is the ${stamp}'s`, async () => {
      const broker = await startTestBroker();
      const inputs: RuleInput[] = [];
      const publisher = await mqtt.connectAsync(broker.url, { username: 'publisher', password: 'pw', protocolVersion: 4, reconnectPeriod: 0 });
      const adapter = createMqttAdapter({
        url: broker.url,
        password: 'demo-svc-alerts',
        registry: demoRegistry(),
        clock: createManualClock(),
        logger: pino({ level: 'silent' }),
        onInput: (i) => inputs.push(i),
        receiveStamp: stamp as ReceiveStamp,
      });
      try {
        // The will of a device that went offline before this process subscribed, kept retained.
        await publisher.publishAsync(deviceTopic('h01', 'h01-sd-r101', 'status'), JSON.stringify({ ts: Date.now() - 60_000, online: false }), { qos: 1, retain: true });
        await adapter.start();
        // A live event after the SUBSCRIBE: once it is in, the retained copy (sent first) was handled or left out.
        await publisher.publishAsync(deviceTopic('h01', 'h01-mcp-f1-corridor', 'event'), JSON.stringify({ ts: Date.now(), seq: 1, type: 'manual_call_point' }), { qos: 1 });
        await until(() => inputs.some((i) => i.type === 'event'), 'the live event');
        expect(inputs.some((i) => i.type === 'status' && i.device.id === 'h01-sd-r101')).toBe(expected);
      } finally {
        await publisher.endAsync();
        await adapter.close();
        await broker.close();
      }
    });
  }
});
