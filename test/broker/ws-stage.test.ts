import { connect as tcpConnect, type Socket } from 'node:net';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Broker } from '../../broker/broker.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { connect, record, startBroker, until } from './helpers.ts';

/**
 * MQTT over WebSocket before the upgrade: the HTTP stage is bounded by the CONNECT timeout like
 * every other stage (docs/broker.md "Limits"). With Node's defaults a peer that sent nothing, a
 * request line only, or headers a byte at a time held its socket 90 s (a helper's measurement,
 * session 22). Here the timeout is 1 s, so Node's 90 s is far past the wait; a live MQTT-over-WS
 * connection is untouched by it.
 */
const CONNECT_TIMEOUT_MS = 1_000;
let broker: Broker;
const sockets: Socket[] = [];
const clients: MqttClient[] = [];

beforeAll(async () => {
  broker = await startBroker({ config: { limits: { connectTimeoutMs: CONNECT_TIMEOUT_MS } } });
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  for (const c of clients) c.end(true);
  await broker.close();
});

function open(): Promise<{ socket: Socket; closed: () => boolean }> {
  return new Promise((resolve) => {
    const socket = tcpConnect(broker.wsPort, '127.0.0.1');
    sockets.push(socket);
    let closed = false;
    socket.on('error', () => undefined);
    socket.on('close', () => (closed = true));
    // Read what comes (a 408): a socket nobody reads never sees the broker's FIN.
    socket.resume();
    socket.once('connect', () => resolve({ socket, closed: () => closed }));
  });
}

it.each([
  ['sends nothing', (_s: Socket) => undefined],
  ['sends only a request line', (s: Socket) => s.write('GET /mqtt HTTP/1.1\r\n')],
  [
    'trickles its headers a byte at a time',
    (s: Socket) => {
      const text = 'GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Pad: ' + 'a'.repeat(200);
      let i = 0;
      const timer = setInterval(() => (i < text.length && !s.destroyed ? s.write(text[i++] ?? '') : clearInterval(timer)), 100);
      s.once('close', () => clearInterval(timer));
    },
  ],
])('closes a WebSocket peer that %s within the CONNECT timeout, not Node’s 90 s', async (_what, behave) => {
  const { socket, closed } = await open();
  behave(socket);
  await until('the broker to close it', closed, 20_000);
  expect(closed()).toBe(true);
});

it('leaves a live MQTT-over-WebSocket connection alone past that timeout', async () => {
  const device = await connect(broker, 'h01-sd-r101', { ws: true });
  clients.push(device);
  const svc = await connect(broker, 'svc-ingest', { clientId: 'svc-ingest-ws-stage' });
  clients.push(svc);
  const got = record(svc);
  await svc.subscribeAsync('carewatch/v1/+/+/telemetry', { qos: 1 });
  // Three timeouts and the checks between them pass.
  await new Promise((r) => setTimeout(r, 3 * CONNECT_TIMEOUT_MS + 500));
  expect(device.connected).toBe(true);
  await device.publishAsync(deviceTopic('h01', 'h01-sd-r101', 'telemetry'), JSON.stringify({ ts: Date.now(), seq: 1, metrics: { temperature_c: 21 } }), { qos: 1 });
  await until('the reading over WebSocket', () => got.length === 1);
});
