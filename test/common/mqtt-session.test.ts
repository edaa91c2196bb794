import { createServer, type AddressInfo } from 'node:net';
import mqtt from 'mqtt';
import { generate, parser as createParser, type Packet } from 'mqtt-packet';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.ts';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import { createMqttSession, type MqttSession, type ReceivedMessage } from '../../common/mqtt-session.ts';
import { INGEST_PASSWORD, INGEST_USER, startTestBroker, type TestBroker } from '../ingest/support/aedes.ts';
import { captureLogger, waitFor } from '../ingest/support/wait.ts';

const silent = createLogger('test', 'silent');
let broker: TestBroker;
let publisher: mqtt.MqttClient;
const sessions: MqttSession[] = [];

function session(received: ReceivedMessage[], password = INGEST_PASSWORD, logger = silent): MqttSession {
  const s = createMqttSession({
    url: broker.url,
    clientId: 'svc-ingest-t',
    username: INGEST_USER,
    password,
    filters: [FILTERS.telemetry],
    logger,
    onMessages: (m) => received.push(...m),
    reconnectMinMs: 20,
    reconnectMaxMs: 200,
    codePrefix: 'INGEST',
  });
  sessions.push(s);
  s.start();
  return s;
}

async function publish(n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++) await publisher.publishAsync(deviceTopic('h01', 'h01-sd-r101', 'telemetry'), `m${i}`, { qos: 1 });
}

const bodies = (ms: ReceivedMessage[]): string[] => ms.map((m) => m.payload.toString());

beforeEach(async () => {
  broker = await startTestBroker();
  publisher = await mqtt.connectAsync(broker.url, { clientId: 'pub', protocolVersion: 4 });
});
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.close();
  await publisher.endAsync();
  await broker.close();
});

describe('mqtt session', () => {
  it('receives QoS 1 messages and, without acks, gets them again after reconnecting (persistent session)', async () => {
    const got: ReceivedMessage[] = [];
    const s = session(got);
    await s.whenSubscribed();
    await publish(5);
    await waitFor('5 messages', () => got.length >= 5);
    expect(bodies(got)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(got.every((m) => m.qos === 1 && m.messageId > 0)).toBe(true);
    // Die before committing: nothing acknowledged.
    await s.close();
    const again: ReceivedMessage[] = [];
    const s2 = session(again);
    await waitFor('redelivery', () => again.length >= 5);
    expect(bodies(again)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    // [MQTT-3.3.1-1] asks for DUP=1 here, but aedes 1.2 redelivers with DUP=0; ingest does not rely on it.
    s2.ack(again[0]?.connection ?? 0, again.map((m) => m.messageId));
    expect(s2.stats().acked).toBe(5);
  });

  it('does not get acknowledged messages again, and queues messages published while it was away', async () => {
    const got: ReceivedMessage[] = [];
    const s = session(got);
    await s.whenSubscribed();
    await publish(3);
    await waitFor('3 messages', () => got.length >= 3);
    s.ack(got[0]?.connection ?? 0, got.map((m) => m.messageId));
    // A PINGREQ round trip would also do; closing flushes the acks before DISCONNECT.
    await s.close();
    await publish(2, 3);
    const again: ReceivedMessage[] = [];
    session(again);
    await waitFor('queued messages', () => again.length >= 2);
    await new Promise((r) => setTimeout(r, 200));
    expect(bodies(again)).toEqual(['m3', 'm4']);
  });

  it('drops acks for a connection that is gone (its ids mean nothing on the new one)', async () => {
    const got: ReceivedMessage[] = [];
    const s = session(got);
    await s.whenSubscribed();
    s.ack(12345, [1, 2]);
    expect(s.stats().staleAcks).toBe(2);
    expect(s.stats().acked).toBe(0);
  });

  it('stops reading while paused and gets everything after resume', async () => {
    const got: ReceivedMessage[] = [];
    const s = session(got);
    await s.whenSubscribed();
    s.pause();
    const pub = publish(20);
    await new Promise((r) => setTimeout(r, 200));
    expect(got.length).toBe(0);
    s.resume();
    await waitFor('20 messages', () => got.length >= 20);
    s.ack(got[0]?.connection ?? 0, got.map((m) => m.messageId));
    await pub;
    expect(bodies(got)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
  });

  it('logs a refused CONNACK with its return code and keeps retrying', async () => {
    const { logger, lines } = captureLogger();
    const s = session([], 'wrong', logger);
    await waitFor('two refusals', () => s.stats().refusals >= 2, 20_000);
    const refused = lines.find((l) => l.code === 'INGEST_MQTT_REFUSED');
    expect(refused?.returnCode).toBe(4);
    expect(refused?.meaning).toBe('bad user name or password');
    expect(s.stats().connected).toBe(false);
  });

  it('reconnects after the broker restarts on the same port', async () => {
    const got: ReceivedMessage[] = [];
    const s = session(got);
    await s.whenSubscribed();
    const port = broker.port;
    await publisher.endAsync();
    await broker.close();
    await waitFor('disconnect noticed', () => !s.stats().connected);
    broker = await startTestBroker(port);
    publisher = await mqtt.connectAsync(broker.url, { clientId: 'pub', protocolVersion: 4 });
    await waitFor('reconnected', () => s.stats().connected && s.stats().connections >= 2);
    // The new broker has no session for us: the session resubscribes on every CONNACK.
    await waitFor('message after reconnect', async () => {
      await publish(1, 99);
      return got.some((m) => m.payload.toString() === 'm99');
    });
  });

  it('does not reconnect while paused (it could not read the CONNACK) and reconnects on resume', async () => {
    const got: ReceivedMessage[] = [];
    const s = session(got);
    await s.whenSubscribed();
    s.pause();
    // The broker drops a client that stopped reading (aedes drainTimeout); simulate it.
    broker.drop('svc-ingest-t');
    await waitFor('disconnect noticed', () => !s.stats().connected);
    await new Promise((r) => setTimeout(r, 300));
    expect(s.stats().connections).toBe(1);
    s.resume();
    await waitFor('reconnected after resume', () => s.stats().connected && s.stats().connections === 2);
    await publish(1, 7);
    await waitFor('message after resume', () => got.some((m) => m.payload.toString() === 'm7'));
  });
});

describe('keepalive under load', () => {
  it('stays connected while deliveries flow, even when the PINGRESP is late', async () => {
    // Fault injection: a broker (mqtt-packet over TCP) that keeps delivering but never answers a
    // PINGREQ, as a loaded aedes whose PINGRESP waits behind seconds of queued deliveries.
    const socks = new Set<import('node:net').Socket>();
    const server = createServer((sock) => {
      socks.add(sock);
      const parser = createParser({ protocolVersion: 4 });
      let timer: NodeJS.Timeout | undefined;
      parser.on('packet', (p: Packet) => {
        if (p.cmd === 'connect') sock.write(generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }));
        if (p.cmd === 'subscribe') {
          sock.write(generate({ cmd: 'suback', messageId: p.messageId, granted: [1] }));
          let n = 0;
          timer = setInterval(() => sock.write(generate({ cmd: 'publish', topic: deviceTopic('h01', 'd1', 'telemetry'), payload: Buffer.from(`m${n++}`), qos: 0, retain: false, dup: false })), 50);
        }
      });
      sock.on('data', (d) => parser.parse(d));
      sock.on('close', () => clearInterval(timer));
      sock.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const got: ReceivedMessage[] = [];
    const s = createMqttSession({ url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, clientId: 'svc-ingest-ka', username: INGEST_USER, password: 'x', filters: [FILTERS.telemetry], logger: silent, onMessages: (m) => got.push(...m), keepaliveS: 1, reconnectMinMs: 20, codePrefix: 'INGEST' });
    try {
      s.start();
      await s.whenSubscribed();
      // Five keepalive periods (a PINGREQ every 0.5 s, none answered) while messages keep coming.
      await waitFor('messages over 2.5 s', () => got.length >= 50);
      expect(s.stats().connections).toBe(1);
      expect(s.stats().connected).toBe(true);
    } finally {
      await s.close();
      for (const x of socks) x.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});
