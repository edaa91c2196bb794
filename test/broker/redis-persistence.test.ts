import { connect as tcpConnect } from 'node:net';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import type { Device } from '../../contract/registry.ts';
import type { Broker } from '../../broker/broker.ts';
import { redisOptions } from '../../broker/redis-persistence.ts';
import { demoRegistry } from '../support/registry.ts';
import { connect, connectRecording, record, startBroker, until } from './helpers.ts';

/** Only this file uses database 5 of the run's private Redis; it is flushed first. */
const DB = 5;
const redisUrl = `${inject('redisUrl')}/${DB}`;

function flushDb(): Promise<void> {
  const { host, port } = redisOptions(redisUrl);
  return new Promise((resolve, reject) => {
    const s = tcpConnect(port, host, () => s.write(`SELECT ${DB}\r\nFLUSHDB\r\n`));
    let reply = '';
    s.on('data', (d) => {
      reply += d.toString();
      if (reply.split('\r\n').filter((l) => l.startsWith('+OK')).length >= 2) {
        s.end();
        resolve();
      }
    });
    s.once('error', reject);
  });
}

const brokers: Broker[] = [];
const clients: MqttClient[] = [];
async function start(): Promise<Broker> {
  const b = await startBroker({ config: { redisUrl } });
  brokers.push(b);
  return b;
}

beforeAll(flushDb);
afterAll(async () => {
  for (const c of clients) c.end(true);
  for (const b of brokers) await b.close();
});

it('keeps a persistent session, its queued QoS 1 messages and retained statuses across a broker restart', async () => {
  const device = demoRegistry().site.devices[0] as Device;
  const telemetryTopic = deviceTopic(device.homeId, device.id, 'telemetry');
  const statusTopic = deviceTopic(device.homeId, device.id, 'status');
  const first = await start();

  const ingest1 = await connect(first, 'svc-ingest', { clientId: 'svc-ingest-persist', clean: false });
  await ingest1.subscribeAsync([FILTERS.telemetry], { qos: 1 });
  await ingest1.endAsync(); // offline now; its session and subscription stay in Redis

  const dev = await connect(first, device.id);
  clients.push(dev);
  await dev.publishAsync(statusTopic, JSON.stringify({ ts: 1, online: true }), { qos: 1, retain: true });
  for (let seq = 1; seq <= 5; seq++) {
    await dev.publishAsync(telemetryTopic, JSON.stringify({ ts: 1_767_225_600_000 + seq, seq, metrics: { temperature_c: 20 + seq } }), { qos: 1 });
  }
  await first.close(); // graceful: the connected device is not marked offline

  const second = await start();
  const { client: ingest2, received: got } = await connectRecording(second, 'svc-ingest', { clientId: 'svc-ingest-persist', clean: false });
  clients.push(ingest2);
  await until('5 queued messages', () => got.filter((m) => m.topic === telemetryTopic).length >= 5);
  expect(got.filter((m) => m.topic === telemetryTopic).map((m) => (JSON.parse(m.payload.toString()) as { seq: number }).seq)).toEqual([1, 2, 3, 4, 5]);

  const alerts = await connect(second, 'svc-alerts', { clientId: 'svc-alerts-persist' });
  clients.push(alerts);
  const retained = record(alerts);
  await alerts.subscribeAsync(statusTopic, { qos: 1 });
  await until('retained status', () => retained.some((m) => m.topic === statusTopic));
  const status = retained.find((m) => m.topic === statusTopic);
  expect(status?.retain).toBe(true);
  expect(JSON.parse(status?.payload.toString() ?? '{}')).toMatchObject({ online: true });
});
