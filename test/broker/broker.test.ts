import { connect as tcpConnect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILTERS, deviceCommandTopic, deviceTopic } from '../../contract/topics.ts';
import { MAX_DEVICE_PAYLOAD_BYTES } from '../../contract/payloads.ts';
import type { Device } from '../../contract/registry.ts';
import type { Broker } from '../../broker/broker.ts';
import { deviceTaker, demoSecret } from '../support/registry.ts';
import { closedEvent, connect, json, record, startBroker, until, type Received } from './helpers.ts';

/** Each test takes fresh devices so retained statuses of earlier tests never confuse it. */
const takeDevice = deviceTaker();

const telemetry = (seq: number): string => JSON.stringify({ ts: 1_767_225_600_000 + seq, seq, metrics: { temperature_c: 21.5 } });
const statusTopic = (d: Device): string => deviceTopic(d.homeId, d.id, 'status');
const WILL = '{"online":false}';

let broker: Broker;
let ingest: MqttClient;
let got: Received[];
const clients: MqttClient[] = [];

async function client(username: string, opts: Parameters<typeof connect>[2] = {}): Promise<MqttClient> {
  const c = await connect(broker, username, opts);
  clients.push(c);
  return c;
}

function rawSocket(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(broker.tcpPort, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

function socketClosed(s: Socket): Promise<void> {
  return new Promise((resolve) => (s.closed ? resolve() : s.once('close', () => resolve())));
}

beforeAll(async () => {
  broker = await startBroker();
  ingest = await connect(broker, 'svc-ingest', { clientId: 'svc-ingest-test' });
  got = record(ingest);
  const granted = await ingest.subscribeAsync([FILTERS.telemetry, FILTERS.event, FILTERS.status], { qos: 1 });
  expect(granted.map((g) => g.qos)).toEqual([1, 1, 1]);
});

afterAll(async () => {
  for (const c of [...clients, ingest]) c.end(true);
  await broker?.close();
});

/** Proves a stream of earlier messages is complete: publish a sentinel and wait for it. */
async function sentinel(): Promise<Received> {
  const d = takeDevice();
  const c = await client(d.id);
  const topic = deviceTopic(d.homeId, d.id, 'telemetry');
  await c.publishAsync(topic, telemetry(424242), { qos: 1 });
  await until('sentinel', () => got.some((m) => m.topic === topic));
  const m = got.find((x) => x.topic === topic);
  if (m === undefined) throw new Error('unreachable');
  return m;
}

describe('receive stamp', () => {
  it('forwards every device message with the moment the broker received it (GB 50440 timing)', async () => {
    const before = Date.now();
    const m = await sentinel();
    const body = json(m) as { ts: number; seq: number; brokerTs: number };
    expect(body.seq).toBe(424242);
    expect(body.brokerTs).toBeGreaterThanOrEqual(before);
  });
});

describe('authentication', () => {
  it('refuses a wrong password with CONNACK "bad user name or password"', async () => {
    const d = takeDevice();
    const err = await connect(broker, d.id, { password: 'demo-wrong' }).then(
      () => null,
      (e: unknown) => e as Error & { code?: number },
    );
    expect(err).not.toBeNull();
    expect(err?.code === 4 || err?.code === 5 || /bad user ?name or password|not authorized/i.test(err?.message ?? '')).toBe(true);
    expect(broker.stats().refusals.BROKER_BAD_PASSWORD).toBeGreaterThanOrEqual(1);
  });

  it('refuses a client id that is not the device id', async () => {
    const d = takeDevice();
    await expect(connect(broker, d.id, { clientId: `${d.id}-x` })).rejects.toThrow(/identifier rejected/i);
  });

  it('refuses demo secrets in production mode (CONNACK "not authorized")', async () => {
    const prod = await startBroker({ config: { production: true } });
    try {
      const d = takeDevice();
      await expect(connect(prod, d.id)).rejects.toThrow(/not authorized/i);
      await expect(connect(prod, 'svc-ingest')).rejects.toThrow(/not authorized/i);
      expect(prod.stats().refusals.BROKER_DEMO_SECRET_IN_PRODUCTION).toBe(2);
    } finally {
      await prod.close();
    }
  });
});

describe('ACL', () => {
  it('refuses a device publishing under another device and delivers nothing of it', async () => {
    const a = takeDevice();
    const b = takeDevice();
    const forger = await client(a.id);
    const forged = deviceTopic(b.homeId, b.id, 'telemetry');
    const before = broker.stats().refusals.BROKER_PUBLISH_DENIED;
    const closed = closedEvent(forger);
    forger.publish(forged, telemetry(1), { qos: 0 });
    await closed; // aedes closes the connection of a refused PUBLISH [MQTT-3.3.5-2]
    expect(broker.stats().refusals.BROKER_PUBLISH_DENIED).toBe(before + 1);
    await sentinel();
    expect(got.filter((m) => m.topic === forged)).toEqual([]);
  });

  it('refuses a device subscribing to another device topic (SUBACK 0x80) but grants its own command topic', async () => {
    const a = takeDevice();
    const b = takeDevice();
    const c = await client(a.id);
    // mqtt.js rejects a SUBACK that contains a failure code; the packet is on the error.
    const err = await c.subscribeAsync([deviceCommandTopic(b.homeId, b.id), deviceTopic(b.homeId, b.id, 'telemetry'), deviceCommandTopic(a.homeId, a.id)], { qos: 1 }).then(
      () => null,
      (e: unknown) => e as { packet?: { granted?: Array<number | object> } },
    );
    expect(err?.packet?.granted).toEqual([128, 128, 1]);
    expect(broker.stats().refusals.BROKER_SUBSCRIBE_DENIED).toBeGreaterThanOrEqual(2);
    expect(c.connected).toBe(true);
  });
});

describe('status and last will', () => {
  it('delivers the last will of a killed device (socket destroyed, no DISCONNECT), stamped with ts', async () => {
    const d = takeDevice();
    const c = await client(d.id, { will: { topic: statusTopic(d), payload: Buffer.from(WILL), qos: 1, retain: true } });
    await c.publishAsync(statusTopic(d), JSON.stringify({ ts: 1, online: true }), { qos: 1, retain: true });
    c.stream.destroy();
    await until('will', () => got.some((m) => m.topic === statusTopic(d) && json(m).online === false));
    const offline = got.filter((m) => m.topic === statusTopic(d) && json(m).online === false);
    expect(offline).toHaveLength(1);
    const status = json(offline[0] as Received);
    expect(typeof status.ts).toBe('number');
    expect(status.reason).toBe('connection_lost');
    expect(broker.stats().willsPublished).toBeGreaterThanOrEqual(1);
  });

  it('publishes connection_lost itself for a device that set no will', async () => {
    const d = takeDevice();
    const c = await client(d.id);
    c.stream.destroy();
    await until('broker offline status', () => got.some((m) => m.topic === statusTopic(d)));
    expect(json(got.find((m) => m.topic === statusTopic(d)) as Received)).toMatchObject({ online: false, reason: 'connection_lost' });
  });

  it('drops a will that is not the device own status topic and publishes its own offline status instead', async () => {
    const d = takeDevice();
    const victim = takeDevice();
    const c = await client(d.id, { will: { topic: statusTopic(victim), payload: Buffer.from(WILL), qos: 1, retain: true } });
    c.stream.destroy();
    await until('broker offline status', () => got.some((m) => m.topic === statusTopic(d)));
    await sentinel();
    expect(got.filter((m) => m.topic === statusTopic(victim))).toEqual([]);
    expect(broker.stats().refusals.BROKER_WILL_NOT_OWN_STATUS).toBeGreaterThanOrEqual(1);
  });

  it('marks a device offline with reason "disconnected" after a clean DISCONNECT', async () => {
    const d = takeDevice();
    const c = await client(d.id, { will: { topic: statusTopic(d), payload: Buffer.from(WILL), qos: 1, retain: true } });
    await c.endAsync();
    await until('disconnected status', () => got.some((m) => m.topic === statusTopic(d)));
    const all = got.filter((m) => m.topic === statusTopic(d));
    await sentinel();
    expect(all.map(json)).toMatchObject([{ online: false, reason: 'disconnected' }]);
  });

  it("publishes no will when a device with one reconnects before its old connection is closed, and keeps the new connection's will stored", async () => {
    // A device on flaky Wi-Fi reconnects while the broker still holds its half-open connection: the
    // broker closes that one [MQTT-3.1.4-2]. The device is online: its old will is stale.
    const d = takeDevice();
    const will = { topic: statusTopic(d), payload: Buffer.from(WILL), qos: 1 as const, retain: true };
    const first = await client(d.id, { will });
    const closed = closedEvent(first);
    const second = await client(d.id, { will });
    await closed;
    await sentinel();
    expect(got.filter((m) => m.topic === statusTopic(d))).toEqual([]);
    // The new connection's will is what a crash of the broker leaves to publish.
    const store = (broker.aedes as unknown as { persistence: { getWill(c: { id: string }): Promise<{ topic?: string } | null | undefined> } }).persistence;
    await until('will of the new connection stored', async () => (await store.getWill({ id: d.id }))?.topic === statusTopic(d));
    // And it is published when the new connection dies.
    (second as unknown as { stream: Socket }).stream.destroy();
    await until('will of the new connection', () => got.some((m) => m.topic === statusTopic(d) && json(m).online === false));
  });

  it("keeps a device's live connection, and its will, when a reconnect dies before the broker registered it", async () => {
    const d = takeDevice();
    const will = { topic: statusTopic(d), payload: Buffer.from(WILL), qos: 1 as const, retain: true };
    const first = await client(d.id, { will });
    const aedes = broker.aedes as unknown as { clients: Record<string, { closed: boolean } | undefined>; persistence: Record<string, unknown> };
    const live = aedes.clients[d.id];
    const connectedBefore = broker.stats().connectedClients;
    // A second CONNECT is authenticated, then held while its will is stored; its socket dies there.
    const store = aedes.persistence;
    const name = typeof store.replaceWill === 'function' ? 'replaceWill' : 'putWill';
    const original = store[name] as (this: unknown, client: { id: string }, packet: unknown) => Promise<unknown>;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let held = false;
    store[name] = function (this: unknown, c: { id: string }, packet: unknown) {
      if (c.id !== d.id) return original.call(this, c, packet);
      held = true;
      return gate.then(() => original.call(this, c, packet));
    };
    try {
      const raw = await rawSocket();
      raw.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: d.id, keepalive: 60, username: d.id, password: Buffer.from(demoSecret(d.id)), will: { topic: statusTopic(d), payload: Buffer.from(WILL), qos: 1, retain: true } }));
      await until('second CONNECT authenticated and held', () => held);
      raw.destroy();
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      store[name] = original;
      release();
    }
    await new Promise((r) => setTimeout(r, 100));
    // The dead attempt neither took the session over nor removed the live connection's registration.
    expect(aedes.clients[d.id]).toBe(live);
    expect(live?.closed).toBe(false);
    expect(broker.stats().connectedClients).toBe(connectedBefore);
    const telemetryTopic = deviceTopic(d.homeId, d.id, 'telemetry');
    await first.publishAsync(telemetryTopic, telemetry(7), { qos: 1 });
    await until('telemetry of the live connection', () => got.some((m) => m.topic === telemetryTopic));
    // When the live connection dies, its will is published.
    const offlineBefore = got.filter((m) => m.topic === statusTopic(d) && json(m).online === false).length;
    (first as unknown as { stream: Socket }).stream.destroy();
    await until('the live connection\'s will', () => got.filter((m) => m.topic === statusTopic(d) && json(m).online === false).length > offlineBefore);
  });

  it("still publishes a device's will after someone tried its client id with a wrong password", async () => {
    const d = takeDevice();
    const will = { topic: statusTopic(d), payload: Buffer.from(WILL), qos: 1 as const, retain: true };
    const real = await client(d.id, { will });
    await expect(connect(broker, d.id, { password: 'not-the-secret' })).rejects.toThrow(/bad user ?name or password/i);
    (real as unknown as { stream: Socket }).stream.destroy();
    await until('the real connection\'s will', () => got.some((m) => m.topic === statusTopic(d) && json(m).online === false));
  });

  it('does not mark a device offline when its session is taken over by a reconnect', async () => {
    const d = takeDevice();
    const first = await client(d.id);
    const closed = closedEvent(first);
    await client(d.id); // same client id: the broker closes the first connection [MQTT-3.1.4-2]
    await closed;
    await sentinel();
    expect(got.filter((m) => m.topic === statusTopic(d))).toEqual([]);
  });
});

describe('limits and bad input', () => {
  it('refuses an oversized device payload and keeps serving others', async () => {
    const d = takeDevice();
    const c = await client(d.id);
    const topic = deviceTopic(d.homeId, d.id, 'telemetry');
    const closed = closedEvent(c);
    c.publish(topic, Buffer.alloc(MAX_DEVICE_PAYLOAD_BYTES + 1, 0x20), { qos: 1 });
    await closed;
    expect(broker.stats().refusals.BROKER_PAYLOAD_TOO_LARGE).toBeGreaterThanOrEqual(1);
    await sentinel();
    expect(got.filter((m) => m.topic === topic)).toEqual([]);
  });

  it('closes a connection that declares a packet over the limit before buffering it', async () => {
    const s = await rawSocket();
    const closed = socketClosed(s);
    // PUBLISH fixed header with Remaining Length 200 MB (varint 0x80 0x80 0xe8 0x5f), then a trickle.
    s.write(Buffer.from([0x30, 0x80, 0x80, 0xe8, 0x5f, 0x00, 0x01, 0x61]));
    await closed;
    expect(broker.stats().refusals.BROKER_PACKET_TOO_LARGE).toBeGreaterThanOrEqual(1);
    await sentinel();
  });

  it('kills only the connection that sends garbage', async () => {
    const d = takeDevice();
    const bystander = await client(d.id);
    const s = await rawSocket();
    const closed = socketClosed(s);
    s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x13, 0x37, 0x00, 0x42, 0xde, 0xad]));
    await closed;
    const topic = deviceTopic(d.homeId, d.id, 'telemetry');
    await bystander.publishAsync(topic, telemetry(7), { qos: 1 });
    await until('bystander telemetry', () => got.some((m) => m.topic === topic));
    expect(bystander.connected).toBe(true);
  });

  it('kills a connection whose first packet is not CONNECT', async () => {
    const s = await rawSocket();
    const closed = socketClosed(s);
    s.write(Buffer.from([0xc0, 0x00])); // PINGREQ before CONNECT [MQTT-3.1.0-1]
    await closed;
    await sentinel();
  });
});

describe('WebSocket', () => {
  it('accepts MQTT over WebSocket on /mqtt and relays its publishes', async () => {
    const d = takeDevice();
    const c = await client(d.id, { ws: true });
    const topic = deviceTopic(d.homeId, d.id, 'telemetry');
    await c.publishAsync(topic, telemetry(3), { qos: 1 });
    await until('ws telemetry', () => got.some((m) => m.topic === topic));
    expect(json(got.find((m) => m.topic === topic) as Received)).toMatchObject({ seq: 3 });
  });
});
