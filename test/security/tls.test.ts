import { execFile } from 'node:child_process';
import { request } from 'node:https';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect as tcpConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { io as connectSocketIo } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../broker/broker.ts';
import { createMqttSession, type ReceivedMessage } from '../../common/mqtt-session.ts';
import { readServerTls } from '../../common/tls.ts';
import type { Alerts } from '../../alerts/alerts.ts';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import type { Device } from '../../contract/registry.ts';
import { json, record, startBroker, until } from '../broker/helpers.ts';
import { startAlerts, tempDir } from '../alerts/support/harness.ts';
import { testInflux } from '../support/influx-db.ts';
import { demoRegistry, demoSecret } from '../support/registry.ts';
import { makeTestCerts, type TestCerts } from '../support/test-cert.ts';
import { eventually, startProcess, type TestProcess } from '../support/process.ts';

/**
 * Issue 13, TLS: the broker's MQTT-over-TLS and WSS ports and the alerts HTTPS port, with a
 * certificate made by openssl for this run (test/support/test-cert.ts). Clients verify the server
 * against the test CA exactly as a device or a browser would; plain text to a TLS port and a client
 * trusting another CA both fail.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
const devices = demoRegistry().site.devices;
let nextDevice = 0;
function takeDevice(): Device {
  const d = devices[nextDevice++];
  if (d === undefined) throw new Error('out of demo devices');
  return d;
}
const telemetry = (seq: number): string => JSON.stringify({ ts: 1_767_225_600_000 + seq, seq, metrics: { temperature_c: 21.5 } });

let certs: TestCerts;
let broker: Broker;
const clients: MqttClient[] = [];

function options(username: string, opts: IClientOptions = {}): IClientOptions {
  return { clientId: username, username, password: demoSecret(username), protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ca: certs.ca, ...opts };
}
async function connect(url: string, username: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, options(username, opts));
  clients.push(c);
  return c;
}
const mqtts = (b: Broker = broker): string => `mqtts://127.0.0.1:${b.tlsPort}`;
const wss = (b: Broker = broker): string => `wss://127.0.0.1:${b.wssPort}/mqtt`;

/** How a client that never gets a CONNACK ends: the error it reported, if any, once closed. */
function failedAttempt(url: string, username: string, opts: IClientOptions = {}): Promise<{ connected: boolean; error: (Error & { code?: unknown }) | undefined }> {
  const c = mqtt.connect(url, options(username, opts));
  clients.push(c);
  return new Promise((resolve) => {
    let error: (Error & { code?: unknown }) | undefined;
    c.on('error', (err) => (error ??= err));
    c.once('connect', () => resolve({ connected: true, error }));
    c.once('close', () => resolve({ connected: false, error }));
  });
}

function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}
function httpsRequest(port: number, method: string, path: string, body: unknown, ca: Buffer): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ host: '127.0.0.1', port, method, path, ca, headers: payload === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const socketClosed = (s: Socket): Promise<void> => new Promise((resolve) => (s.closed ? resolve() : s.once('close', () => resolve())));

beforeAll(async () => {
  certs = await makeTestCerts();
  broker = await startBroker({ config: { tls: { cert: certs.cert, key: certs.key, port: 0, wssPort: 0 } } });
});

afterAll(async () => {
  for (const c of clients) c.end(true);
  await broker?.close();
  await certs?.remove();
});

describe('broker: MQTT over TLS and WebSocket over TLS', () => {
  it('carries a device message over mqtts to a service that verified the broker against the test CA', async () => {
    const ingest = await connect(mqtts(), 'svc-ingest', { clientId: 'svc-ingest-tls' });
    const got = record(ingest);
    await ingest.subscribeAsync(FILTERS.telemetry, { qos: 1 });
    const d = takeDevice();
    const device = await connect(mqtts(), d.id);
    const topic = deviceTopic(d.homeId, d.id, 'telemetry');
    await device.publishAsync(topic, telemetry(1), { qos: 1 });
    await until('telemetry over mqtts', () => got.some((m) => m.topic === topic));
    const m = got.find((x) => x.topic === topic);
    // The broker's publish hook ran on the TLS connection: it stamped the receive time.
    expect(m !== undefined && typeof json(m).brokerTs === 'number').toBe(true);
    expect(broker.stats().connectedClients).toBeGreaterThanOrEqual(2);
  });

  it('carries a device message over wss (path /mqtt) likewise', async () => {
    const ingest = await connect(wss(), 'svc-ingest', { clientId: 'svc-ingest-wss' });
    const got = record(ingest);
    await ingest.subscribeAsync(FILTERS.telemetry, { qos: 1 });
    const d = takeDevice();
    const device = await connect(wss(), d.id);
    const topic = deviceTopic(d.homeId, d.id, 'telemetry');
    await device.publishAsync(topic, telemetry(2), { qos: 1 });
    await until('telemetry over wss', () => got.some((m) => m.topic === topic));
  });

  it('checks passwords on the TLS port as on the plain one, and counts the failure for the throttle', async () => {
    const d = takeDevice();
    const refused = await failedAttempt(mqtts(), d.id, { password: 'not-the-secret' });
    expect(refused.connected).toBe(false);
    expect(refused.error?.code).toBe(4); // CONNACK: bad user name or password [MQTT-3.2.2]
    expect(broker.stats().refusals.BROKER_BAD_PASSWORD).toBeGreaterThanOrEqual(1);
    expect(broker.authFailures('127.0.0.1', d.id)).toBe(1);
  });

  it('applies the packet-size guard on the TLS port', async () => {
    const before = broker.stats().refusals.BROKER_PACKET_TOO_LARGE;
    const c = await connect(mqtts(), 'svc-alerts', { clientId: 'svc-alerts-tls-big' });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.publish('carewatch/v1/alerts/h01/too-big', Buffer.alloc(200 * 1024, 0x41), { qos: 0 });
    await closed;
    await until('packet-too-large counted', () => broker.stats().refusals.BROKER_PACKET_TOO_LARGE > before);
  });

  it('refuses plain MQTT on the TLS port and plain ws on the WSS port, counting each failed handshake', async () => {
    const before = broker.stats().refusals.BROKER_TLS_HANDSHAKE_FAILED;
    const plain = await failedAttempt(`mqtt://127.0.0.1:${broker.tlsPort}`, takeDevice().id, { ca: undefined });
    expect(plain.connected).toBe(false);
    const plainWs = await failedAttempt(`ws://127.0.0.1:${broker.wssPort}/mqtt`, takeDevice().id, { ca: undefined });
    expect(plainWs.connected).toBe(false);
    await until('handshake failures counted', () => broker.stats().refusals.BROKER_TLS_HANDSHAKE_FAILED >= before + 2);
  });

  it('is refused by a client that trusts another CA (no silent fallback to an unverified connection)', async () => {
    for (const url of [mqtts(), wss()]) {
      const r = await failedAttempt(url, takeDevice().id, { ca: certs.otherCa });
      expect(r.connected).toBe(false);
      expect(String(r.error?.code)).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT/);
    }
  });

  it('drops a connection that never completes the handshake after the CONNECT timeout', async () => {
    const b = await startBroker({ config: { plain: false, tls: { cert: certs.cert, key: certs.key, port: 0, wssPort: 0 }, limits: { connectTimeoutMs: 200 } } });
    try {
      const silent = await rawSocket(b.tlsPort ?? 0);
      await socketClosed(silent);
      await until('handshake timeout counted', () => b.stats().refusals.BROKER_TLS_HANDSHAKE_FAILED === 1);
    } finally {
      await b.close();
    }
  });

  it('serves only the TLS ports when the plain ones are turned off, and close() releases them', async () => {
    // A handshake timeout far beyond the test's: only close() itself can end the silent socket below.
    const b = await startBroker({ config: { plain: false, tls: { cert: certs.cert, key: certs.key, port: 0, wssPort: 0 }, limits: { connectTimeoutMs: 600_000 } } });
    const { tlsPort, wssPort } = b;
    expect(b.tcpPort).toBe(0);
    expect(b.wsPort).toBe(0);
    const d = takeDevice();
    const device = await connect(mqtts(b), d.id);
    const deviceClosed = new Promise<void>((resolve) => device.once('close', () => resolve()));
    // A socket still in its handshake must not hold close() up.
    const silent = await rawSocket(tlsPort ?? 0);
    await b.close();
    await deviceClosed;
    await socketClosed(silent);
    for (const port of [tlsPort, wssPort]) {
      await expect(rawSocket(port ?? 0)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    }
  });

  it('refuses to start with no listener at all', async () => {
    await expect(startBroker({ config: { plain: false } })).rejects.toThrow(/no listener/);
  });
});

describe('service sessions (ingest, alerts subscribers) over mqtts', () => {
  function session(ca: Buffer, logger = pino({ level: 'silent' })) {
    const received: ReceivedMessage[] = [];
    const s = createMqttSession({
      url: mqtts(),
      ca,
      clientId: `svc-ingest-s${nextDevice}`,
      username: 'svc-ingest',
      password: demoSecret('svc-ingest'),
      filters: [FILTERS.telemetry],
      logger,
      codePrefix: 'INGEST',
      live: true,
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
      onMessages: (batch) => received.push(...batch),
    });
    return { s, received };
  }

  it('subscribes over TLS with the CA file and receives device messages', async () => {
    const { s, received } = session(certs.ca);
    s.start();
    try {
      await s.whenSubscribed();
      const d = takeDevice();
      const device = await connect(mqtts(), d.id);
      const topic = deviceTopic(d.homeId, d.id, 'telemetry');
      await device.publishAsync(topic, telemetry(3), { qos: 1 });
      await until('session message', () => received.some((m) => m.topic === topic));
    } finally {
      await s.close();
    }
  });

  it('gives up on a port that accepts but never completes the handshake, and reconnects', async () => {
    const accepted: Socket[] = [];
    const silent = createServer((sock) => {
      accepted.push(sock);
      sock.resume(); // read (and drop) the ClientHello, so the peer's close is seen
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const s = createMqttSession({
      url: `mqtts://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      ca: certs.ca,
      clientId: 'svc-ingest-silent',
      username: 'svc-ingest',
      password: demoSecret('svc-ingest'),
      filters: [FILTERS.telemetry],
      logger: pino({ level: 'silent' }),
      codePrefix: 'INGEST',
      connectTimeoutMs: 100,
      reconnectMinMs: 10,
      reconnectMaxMs: 20,
      onMessages: () => {},
    });
    s.start();
    try {
      // The first connection was dropped by the session (not by the server) and a second one came.
      await until('a second connection attempt', () => accepted.length >= 2 && accepted[0]?.closed === true);
    } finally {
      await s.close();
      for (const sock of accepted) sock.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('logs INGEST_MQTT_TLS as an error, never connects, when the broker is not signed by its CA', async () => {
    const lines: Array<{ code?: string; level: number }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString('utf8')) as { code?: string; level: number });
        done();
      },
    });
    const { s } = session(certs.otherCa, pino({ level: 'info' }, sink));
    s.start();
    try {
      await until('TLS error logged', () => lines.some((l) => l.code === 'INGEST_MQTT_TLS' && l.level === 50));
      expect(s.stats().connected).toBe(false);
      expect(s.stats().connections).toBeGreaterThanOrEqual(1);
    } finally {
      await s.close();
    }
  });
});

describe('alerts over HTTPS', () => {
  const influx = testInflux('alerts_tls');
  let alerts: Alerts;
  let dir: Awaited<ReturnType<typeof tempDir>>;

  beforeAll(async () => {
    dir = await tempDir();
    const https = readServerTls({ certFile: certs.files.cert, keyFile: certs.files.key }, { cert: 'CERT', key: 'KEY' });
    if (https === undefined) throw new Error('unreachable');
    // Its MQTT sessions connect to the broker's TLS port with the CA file, as in production.
    alerts = await startAlerts({ influx, stateDir: dir.path, https, mqttUrl: mqtts(), mqttCa: certs.ca });
  });
  afterAll(async () => {
    await alerts?.close();
    await dir?.remove();
  });

  const httpsCall = (method: string, path: string, body?: unknown, ca: Buffer = certs.ca) => httpsRequest(alerts.port, method, path, body, ca);

  it('answers /healthz over HTTPS (healthy: its MQTT sessions are up over mqtts)', async () => {
    const r = await httpsCall('GET', '/healthz');
    expect(r.status).toBe(200);
    // helmet's Strict-Transport-Security: a browser that once reached the page keeps to HTTPS.
    expect(String(r.headers['strict-transport-security'])).toMatch(/max-age=/);
  });

  it('logs a user in over HTTPS, and socket.io connects over wss with the token', async () => {
    const r = await httpsCall('POST', '/api/login', { username: 'staff-h01', password: 'demo-staff-h01' });
    expect(r.status).toBe(200);
    const token = (JSON.parse(r.body) as { token: string }).token;
    const socket = connectSocketIo(`https://127.0.0.1:${alerts.port}`, { auth: { token }, transports: ['websocket'], reconnection: false, ca: certs.ca.toString('utf8') });
    try {
      const snapshot = await new Promise<unknown>((resolve, reject) => {
        socket.once('snapshot', resolve);
        socket.once('connect_error', reject);
      });
      expect(Array.isArray(snapshot)).toBe(true);
    } finally {
      socket.close();
    }
  });

  it("passes the containers' health check given its http:// and https:// URLs, not the http:// one alone", async () => {
    const check = (...urls: string[]) => run('node', ['scripts/healthcheck.mjs', ...urls], { cwd: ROOT });
    const http = `http://127.0.0.1:${alerts.port}/healthz`;
    await expect(check(http, `https://127.0.0.1:${alerts.port}/healthz`)).resolves.toBeDefined();
    await expect(check(http)).rejects.toThrow();
  });

  it('refuses plain HTTP on its HTTPS port, and a client that trusts another CA', async () => {
    await expect(fetch(`http://127.0.0.1:${alerts.port}/healthz`)).rejects.toThrow();
    await expect(httpsCall('GET', '/healthz', undefined, certs.otherCa)).rejects.toMatchObject({ code: expect.stringMatching(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/) });
  });
});

describe('the processes, configured by their variables as in production', () => {
  const exitOf = (p: TestProcess): Promise<number | null> => new Promise((resolve) => (p.child.exitCode !== null ? resolve(p.child.exitCode) : p.child.once('exit', (code) => resolve(code))));

  it('broker, ingest and alerts: TLS only on the broker, services over mqtts with the CA file, alerts on HTTPS', async () => {
    const procs: TestProcess[] = [];
    const state = await tempDir('tls-procs-');
    try {
      const broker = startProcess('broker-tls', 'broker/main.ts', {
        CAREWATCH_BROKER_PLAIN: 'false',
        CAREWATCH_BROKER_TLS_CERT_FILE: certs.files.cert,
        CAREWATCH_BROKER_TLS_KEY_FILE: certs.files.key,
        CAREWATCH_BROKER_TLS_PORT: '0',
        CAREWATCH_BROKER_WSS_PORT: '0',
        CAREWATCH_BROKER_STORE_DIR: `${state.path}/broker`,
      });
      procs.push(broker);
      const [, tlsPort, wssPort] = (await broker.waitForOutput(/broker listening mqtts:\/\/127\.0\.0\.1:(\d+) wss:\/\/127\.0\.0\.1:(\d+)\/mqtt/)) as unknown as [string, string, string];
      expect(broker.output()).not.toMatch(/mqtt:\/\/127/);
      const url = `mqtts://127.0.0.1:${tlsPort}`;
      const influx = testInflux('tls_procs');
      const services = { CAREWATCH_MQTT_URL: url, CAREWATCH_MQTT_CA_FILE: certs.files.ca, CAREWATCH_INFLUX_URL: influx.url, CAREWATCH_INFLUX_DB: influx.database };
      const ingest = startProcess('ingest-tls', 'ingest/main.ts', { ...services, CAREWATCH_INGEST_PASSWORD: 'demo-svc-ingest', CAREWATCH_SPOOL_DIR: `${state.path}/spool`, CAREWATCH_INGEST_HTTP_PORT: '0' });
      procs.push(ingest);
      const alerts = startProcess('alerts-tls', 'alerts/main.ts', {
        ...services,
        CAREWATCH_HTTP_PORT: '0',
        CAREWATCH_STATE_DIR: `${state.path}/alerts`,
        CAREWATCH_ALERTS_TLS_CERT_FILE: certs.files.cert,
        CAREWATCH_ALERTS_TLS_KEY_FILE: certs.files.key,
        UV_THREADPOOL_SIZE: '4',
      });
      procs.push(alerts);
      const [, httpsPort] = (await alerts.waitForOutput(/alerts listening https:\/\/127\.0\.0\.1:(\d+)/)) as unknown as [string, string];
      // Healthy means its MQTT sessions are connected: over TLS, verified with the CA file.
      await eventually('alerts healthy over HTTPS', async () => ((await httpsRequest(Number(httpsPort), 'GET', '/healthz', undefined, certs.ca)).status === 200 ? true : undefined));
      // A device message over WSS reaches ingest over mqtts: it shows in ingest's received count.
      const [, healthPort] = (await ingest.waitForOutput(/health http:\/\/127\.0\.0\.1:(\d+)\/healthz/)) as unknown as [string, string];
      const d = takeDevice();
      const device = await connect(`wss://127.0.0.1:${wssPort}/mqtt`, d.id);
      await device.publishAsync(deviceTopic(d.homeId, d.id, 'telemetry'), telemetry(7), { qos: 1 });
      await eventually('ingest received over mqtts', async () => {
        const res = await fetch(`http://127.0.0.1:${healthPort}/stats`);
        const stats = (await res.json()) as { received?: number };
        return (stats.received ?? 0) >= 1 ? true : undefined;
      });
      for (const p of procs.reverse()) expect(await p.stop(), p.logPath).toBe(0);
    } finally {
      for (const p of procs) await p.kill('SIGKILL');
      await state.remove();
    }
  });

  it('stop at start, naming the variable, on a lone certificate, an unreadable CA, or no listener at all', async () => {
    const cases: Array<{ entry: string; env: Record<string, string>; variable: string }> = [
      { entry: 'broker/main.ts', env: { CAREWATCH_BROKER_TLS_CERT_FILE: certs.files.cert }, variable: 'CAREWATCH_BROKER_TLS_KEY_FILE' },
      { entry: 'broker/main.ts', env: { CAREWATCH_BROKER_PLAIN: 'false' }, variable: 'CAREWATCH_BROKER_PLAIN' },
      { entry: 'ingest/main.ts', env: { CAREWATCH_INGEST_PASSWORD: 'demo-svc-ingest', CAREWATCH_MQTT_CA_FILE: '/nonexistent/ca.pem' }, variable: 'CAREWATCH_MQTT_CA_FILE' },
      { entry: 'alerts/main.ts', env: { CAREWATCH_ALERTS_TLS_KEY_FILE: certs.files.key }, variable: 'CAREWATCH_ALERTS_TLS_CERT_FILE' },
    ];
    const started = cases.map((c) => ({ ...c, p: startProcess('tls-config', c.entry, c.env) }));
    for (const c of started) {
      expect(await exitOf(c.p), c.variable).toBe(1);
      expect(c.p.output()).toContain(c.variable);
    }
  });
});

describe('readServerTls (what main.ts reads from the *_FILE variables)', () => {
  const names = { cert: 'CAREWATCH_BROKER_TLS_CERT_FILE', key: 'CAREWATCH_BROKER_TLS_KEY_FILE' };
  it('is off when neither file is set, and names the variable that is missing or unreadable', () => {
    expect(readServerTls({}, names)).toBeUndefined();
    expect(() => readServerTls({ certFile: certs.files.cert }, names)).toThrow(/CAREWATCH_BROKER_TLS_KEY_FILE/);
    expect(() => readServerTls({ certFile: certs.files.cert, keyFile: '/nonexistent/key.pem' }, names)).toThrow(/CAREWATCH_BROKER_TLS_KEY_FILE="\/nonexistent\/key.pem" cannot be read: ENOENT/);
  });
  it('refuses a key that does not belong to the certificate', () => {
    // The other CA's certificate with the server's key: a pair that cannot serve.
    expect(() => readServerTls({ certFile: certs.files.otherCa, keyFile: certs.files.key }, names)).toThrow(/not a usable certificate and key/);
  });
});
