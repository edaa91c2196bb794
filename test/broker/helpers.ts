import { readFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { createLogger, type Logger } from '../../common/logger.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { createBroker, type Broker } from '../../broker/broker.ts';
import type { BrokerConfig } from '../../broker/config.ts';
import { FILTERS } from '../../contract/topics.ts';
import { demoRegistry, demoSecret } from '../support/registry.ts';

/** A real broker on port 0 (TCP and WebSocket), silent logger unless one is given. */
export async function startBroker(opts: { registry?: RegistryIndex; config?: Partial<BrokerConfig>; logger?: Logger } = {}): Promise<Broker> {
  const broker = createBroker({
    config: { host: '127.0.0.1', port: 0, wsPort: 0, production: false, ...opts.config },
    registry: opts.registry ?? demoRegistry(),
    logger: opts.logger ?? createLogger('broker-test', 'silent'),
  });
  await broker.start();
  return broker;
}

/** A demo account's options (password demo-<username> unless given); never reconnects. */
function clientOptions(username: string, opts: IClientOptions): IClientOptions {
  return { clientId: username, username, password: demoSecret(username), protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ...opts };
}

/** Connects a real mqtt.js client as `username`. */
export function connect(broker: Broker, username: string, opts: IClientOptions & { ws?: boolean } = {}): Promise<MqttClient> {
  const { ws, ...rest } = opts;
  const url = ws === true ? `ws://127.0.0.1:${broker.wsPort}/mqtt` : `mqtt://127.0.0.1:${broker.tcpPort}`;
  return mqtt.connectAsync(url, clientOptions(username, rest));
}

export interface Received {
  topic: string;
  payload: Buffer;
  retain: boolean;
}

/**
 * Connects like `connect` but records messages from the first packet on: a persistent session's
 * queued messages can arrive in the same read as the CONNACK, before `connectAsync` resolves.
 */
export async function connectRecording(broker: Broker, username: string, opts: IClientOptions = {}): Promise<{ client: MqttClient; received: Received[] }> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${broker.tcpPort}`, clientOptions(username, opts));
  const received = record(client);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return { client, received };
}

/** Records every message a client receives. */
export function record(client: MqttClient): Received[] {
  const out: Received[] = [];
  client.on('message', (topic, payload, packet) => out.push({ topic, payload, retain: packet.retain }));
  return out;
}

/** Polls until `cond` holds; fails with `what` after the deadline (a bound on hanging, not a timing assertion). */
export async function until(what: string | (() => string), cond: () => boolean | Promise<boolean>, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function closedEvent(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (client.disconnected || !client.connected) {
      resolve();
      return;
    }
    client.once('close', () => resolve());
  });
}

export function json(r: Received): Record<string, unknown> {
  return JSON.parse(r.payload.toString('utf8')) as Record<string, unknown>;
}

/** The `seq` of every message received on `topic`, in arrival order. */
export function seqsOf(got: readonly Received[], topic: string): number[] {
  return got.filter((m) => m.topic === topic).map((m) => json(m).seq as number);
}

/** Opens svc-ingest's persistent session `clientId` with a QoS 1 subscription to every device's telemetry, and leaves it: what devices send next is queued for it. */
export async function leaveTelemetrySession(broker: Broker, clientId: string, filters: readonly string[] = [FILTERS.telemetry]): Promise<void> {
  const c = await connect(broker, 'svc-ingest', { clientId, clean: false });
  await c.subscribeAsync([...filters], { qos: 1 });
  await c.endAsync();
}

/**
 * Publishes QoS 1 readings (seq 1, 2, …, padded with `note`) on `topic` until one has no PUBACK
 * within 2 s (a bound on waiting, not a timing assertion) or `max` are sent. `acked`: the seqs
 * acknowledged (a later PUBACK still adds its seq); `held`: the first not acknowledged in time, and
 * whether its PUBACK came in the end.
 */
export async function publishUntilHeld(dev: MqttClient, topic: string, note: string, max: number): Promise<{ acked: number[]; held?: { seq: number; puback: Promise<boolean> } }> {
  const acked: number[] = [];
  for (let seq = 1; seq <= max; seq++) {
    const puback = dev.publishAsync(topic, JSON.stringify({ ts: Date.now(), seq, metrics: { temperature_c: 21 }, note }), { qos: 1 }).then(
      () => (acked.push(seq), true),
      () => false,
    );
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([puback, new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 2_000)))]);
    clearTimeout(timer);
    if (!ok) return { acked, held: { seq, puback } };
  }
  return { acked };
}

/** The kernel's TCP states (hex, /proc/net/tcp) of this machine's sockets from local port `local` to remote port `remote`. */
export function tcpStates(local: number, remote: number): string[] {
  const hex = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const [, localAddr, remoteAddr, state] = line.trim().split(/\s+/);
      if (localAddr?.endsWith(`:${hex(local)}`) && remoteAddr?.endsWith(`:${hex(remote)}`) && state !== undefined) out.push(state);
    }
  }
  return out;
}

/**
 * A raw TCP connection (no MQTT library) that has sent CONNECT as `username` (its demo password,
 * keepalive 0) and SUBSCRIBE to `filters`. Nothing is read until the caller listens or reads, so what
 * it takes, and when, is the test's. The caller destroys it.
 */
export async function rawSubscriber(broker: Broker, username: string, filters: readonly string[], opts: { clean?: boolean; qos?: 0 | 1; clientId?: string } = {}): Promise<Socket> {
  const s = tcpConnect(broker.tcpPort, '127.0.0.1');
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.once('connect', () => r()));
  const qos = opts.qos ?? 1;
  s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: opts.clean ?? true, clientId: opts.clientId ?? username, keepalive: 0, username, password: Buffer.from(demoSecret(username)) }));
  s.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: filters.map((topic) => ({ topic, qos })) }));
  return s;
}
