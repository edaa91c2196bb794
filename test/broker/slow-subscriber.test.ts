import type { Socket } from 'node:net';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Broker } from '../../broker/broker.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { captureLogger } from '../ingest/support/wait.ts';
import { connect, rawSubscriber, startBroker, tcpStates, until } from './helpers.ts';

/**
 * A subscriber that stops reading is closed after `drainTimeoutMs` (aedes' drain timeout; 500 ms
 * here): one log line with a code of its own (BROKER_SLOW_SUBSCRIBER) and one count, not one per
 * write that was waiting (12 to 339 lines per drop in a helper's run, session 22).
 */
const { logger, lines } = captureLogger('info');
let broker: Broker;
const clients: MqttClient[] = [];
let frozen: Socket | undefined;

beforeAll(async () => {
  broker = await startBroker({ config: { limits: { drainTimeoutMs: 500 } }, logger });
});
afterAll(async () => {
  frozen?.destroy();
  for (const c of clients) c.end(true);
  await broker.close();
});

it('closes a subscriber that reads nothing with one line and one count', async () => {
  // A raw subscriber: CONNECT, SUBSCRIBE, then it never reads again.
  const s = await rawSubscriber(broker, 'svc-alerts', ['carewatch/v1/+/+/telemetry'], { qos: 0, clientId: 'svc-alerts-frozen' });
  frozen = s;
  let closed = false;
  s.on('close', () => (closed = true));
  // Read the CONNACK and SUBACK (9 bytes), then nothing more.
  await new Promise<void>((r) => {
    let got = 0;
    const onData = (d: Buffer): void => {
      got += d.length;
      if (got >= 9) {
        s.off('data', onData);
        s.pause();
        r();
      }
    };
    s.on('data', onData);
  });
  const before = broker.stats();
  const device = await connect(broker, 'h01-sd-r101');
  clients.push(device);
  const pad = 'x'.repeat(3_000);
  const topic = deviceTopic('h01', 'h01-sd-r101', 'telemetry');
  let seq = 0;
  // QoS 0 floods until the broker drops the frozen reader (its buffers fill, then the timeout).
  const flood = setInterval(() => {
    for (let i = 0; i < 50; i++) device.publish(topic, JSON.stringify({ ts: Date.now(), seq: ++seq, pad }), { qos: 0 });
  }, 5);
  try {
    await until('the frozen subscriber dropped', () => broker.stats().slowSubscribersDropped > before.slowSubscribersDropped, 30_000);
  } finally {
    clearInterval(flood);
  }
  // Its other waiting writes fail after it (setImmediate): they must add nothing.
  await new Promise((r) => setTimeout(r, 300));
  expect(broker.stats().slowSubscribersDropped).toBe(before.slowSubscribersDropped + 1);
  expect(broker.stats().clientErrors).toBe(before.clientErrors + 1);
  const about = lines.filter((l) => l.clientId === 'svc-alerts-frozen' && typeof l.code === 'string' && l.code.startsWith('BROKER_'));
  expect(about.map((l) => l.code)).toEqual(['BROKER_SLOW_SUBSCRIBER']);
  // Reset (session 23): the broker's side is gone at once, not in FIN-WAIT-1 ('04') behind the
  // megabytes the reader never took.
  expect(tcpStates(broker.tcpPort, s.localPort ?? 0)).toEqual([]);
  s.resume();
  await until('its socket closed', () => closed);
  // The device kept its connection.
  expect(device.connected).toBe(true);
});
