import { connect, type Socket } from 'node:net';
import { generate, parser as createParser, type Packet } from 'mqtt-packet';
import type { Logger } from './logger.ts';

/**
 * A minimal MQTT 3.1.1 subscriber with a persistent session whose QoS 1 acknowledgements the
 * caller sends, in batches, once the messages are durable. mqtt.js cannot do this on 3.1.1 (it
 * ignores `customHandleAcks` and acks `handleMessage` one message at a time), which would force one
 * fsync per message.
 */

export interface ReceivedMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1;
  /** Packet identifier of a QoS 1 message; to be passed back to `ack`. */
  readonly messageId: number;
  readonly dup: boolean;
  /** Which connection delivered it: ids are only meaningful on that connection. */
  readonly connection: number;
  /**
   * Set on a retained message the broker sends because of a SUBSCRIBE [MQTT-3.3.1-8], not on a live
   * delivery nor on one queued in our persistent session [MQTT-3.3.1-9]: a copy of one we had.
   */
  readonly retain?: boolean;
}

export interface MqttSessionOptions {
  /** `mqtt://host:port` */
  readonly url: string;
  readonly clientId: string;
  readonly username: string;
  readonly password: string;
  readonly filters: readonly string[];
  readonly logger: Logger;
  /** Called with every message of one socket read, in order. */
  readonly onMessages: (messages: ReceivedMessage[]) => void;
  readonly keepaliveS?: number;
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  readonly connectTimeoutMs?: number;
  /** Prefix of the log codes (`INGEST` → `INGEST_MQTT_REFUSED`), so each process's logs say whose session it is. */
  readonly codePrefix: string;
  /**
   * A live feed instead of a persistent session: clean session, QoS 0 subscription. The broker
   * queues nothing while we are away and keeps no per-message state (no stored copy, no PUBACK),
   * which costs it far less per message. Default false: persistent, QoS 1.
   */
  readonly live?: boolean;
}

export interface MqttSessionStats {
  readonly connected: boolean;
  readonly subscribed: boolean;
  readonly paused: boolean;
  readonly connections: number;
  readonly received: number;
  readonly acked: number;
  readonly staleAcks: number;
  readonly refusals: number;
}

export interface MqttSession {
  start(): void;
  close(): Promise<void>;
  /** Sends PUBACKs for `ids` received on `connection`, in one socket write. */
  ack(connection: number, ids: readonly number[]): void;
  /** Stops reading from the broker (backpressure); the broker keeps the messages in our session. */
  pause(): void;
  resume(): void;
  /** Resolves once the first SUBACK has arrived. */
  whenSubscribed(): Promise<void>;
  stats(): MqttSessionStats;
}

/** CONNACK return codes of MQTT 3.1.1 (table 3.1). */
export const CONNACK_CODES: Readonly<Record<number, string>> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

const PUBACK_TYPE = 0x40;
const SUBACK_FAILURE = 0x80;

export function parseMqttUrl(url: string): { host: string; port: number } {
  const u = new URL(url);
  if (u.protocol !== 'mqtt:' && u.protocol !== 'tcp:') throw new Error(`unsupported MQTT URL ${url}: expected mqtt://host:port`);
  return { host: u.hostname || '127.0.0.1', port: u.port === '' ? 1883 : Number(u.port) };
}

export function createMqttSession(opts: MqttSessionOptions): MqttSession {
  const log = opts.logger;
  const code = (suffix: string): string => `${opts.codePrefix}_MQTT_${suffix}`;
  const { host, port } = parseMqttUrl(opts.url);
  const keepaliveMs = (opts.keepaliveS ?? 30) * 1000;
  const minDelay = opts.reconnectMinMs ?? 100;
  const maxDelay = opts.reconnectMaxMs ?? 5_000;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;

  let socket: Socket | undefined;
  let connection = 0;
  let connected = false;
  let subscribed = false;
  let paused = false;
  let closed = false;
  let started = false;
  let attempt = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let pingTimer: NodeJS.Timeout | undefined;
  let connectTimer: NodeJS.Timeout | undefined;
  let awaitingPong = false;
  let nextPacketId = 1;
  const counters = { received: 0, acked: 0, staleAcks: 0, refusals: 0 };
  let subscribedResolve: (() => void) | undefined;
  const subscribedPromise = new Promise<void>((r) => (subscribedResolve = r));

  function clearTimers(): void {
    clearInterval(pingTimer);
    clearTimeout(connectTimer);
    pingTimer = undefined;
    connectTimer = undefined;
  }

  function scheduleReconnect(): void {
    if (closed || reconnectTimer !== undefined) return;
    const delay = Math.min(maxDelay, minDelay * 2 ** Math.min(attempt, 16));
    attempt++;
    // Jitter so that many service replicas do not reconnect in lockstep after a broker restart.
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      // While paused we could not even read the CONNACK; `resume()` reconnects.
      if (!paused) open();
    }, delay / 2 + Math.random() * (delay / 2));
  }

  function send(packet: Packet): void {
    socket?.write(generate(packet, { protocolVersion: 4 }));
  }

  function onPacket(packet: Packet, batch: ReceivedMessage[], conn: number): void {
    switch (packet.cmd) {
      case 'connack': {
        clearTimeout(connectTimer);
        const rc = packet.returnCode ?? 0;
        if (rc !== 0) {
          counters.refusals++;
          log.error({ code: code('REFUSED'), returnCode: rc, meaning: CONNACK_CODES[rc] ?? 'unknown', clientId: opts.clientId, username: opts.username }, `broker refused the connection: ${CONNACK_CODES[rc] ?? `code ${rc}`}`);
          // [MQTT-3.2.2-5] the server closes the connection after a refusal; back off at full delay.
          attempt = Math.max(attempt, 16);
          socket?.destroy();
          return;
        }
        connected = true;
        attempt = 0;
        log.info({ sessionPresent: packet.sessionPresent, connection: conn }, 'connected to broker');
        // Always (re)subscribe: cheap, and covers a broker that lost our session.
        send({ cmd: 'subscribe', messageId: nextId(), subscriptions: opts.filters.map((topic) => ({ topic, qos: opts.live === true ? 0 : 1 })) });
        pingTimer = setInterval(ping, keepaliveMs / 2);
        return;
      }
      case 'suback': {
        const granted = (packet as { granted?: number[] }).granted ?? [];
        const refused = opts.filters.filter((_, i) => granted[i] === SUBACK_FAILURE);
        if (refused.length > 0) log.error({ code: code('SUBSCRIBE_REFUSED'), filters: refused }, 'broker refused subscriptions: check the service account ACL');
        subscribed = true;
        subscribedResolve?.();
        return;
      }
      case 'publish': {
        counters.received++;
        if (packet.qos === 2) {
          // Never granted: we subscribe at QoS 1 and [MQTT-3.8.4-6] caps delivery at the granted QoS.
          log.error({ code: code('PROTOCOL'), topic: packet.topic }, 'broker sent QoS 2 on a QoS 1 subscription; reconnecting');
          socket?.destroy();
          return;
        }
        const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
        batch.push({ topic: packet.topic, payload, qos: packet.qos, messageId: packet.messageId ?? 0, dup: packet.dup, connection: conn, retain: packet.retain });
        return;
      }
      case 'pingresp':
        awaitingPong = false;
        return;
      default:
        return;
    }
  }

  function nextId(): number {
    const id = nextPacketId;
    nextPacketId = nextPacketId >= 0xffff ? 1 : nextPacketId + 1;
    return id;
  }

  function ping(): void {
    if (awaitingPong && !paused) {
      log.warn({ code: code('KEEPALIVE') }, 'no PINGRESP within the keepalive; reconnecting');
      socket?.destroy();
      return;
    }
    // While paused we cannot read the PINGRESP, but the PINGREQ still keeps the broker from
    // dropping us [MQTT-3.1.2-24].
    awaitingPong = !paused;
    send({ cmd: 'pingreq' });
  }

  function open(): void {
    if (closed) return;
    const conn = ++connection;
    const parser = createParser({ protocolVersion: 4 });
    const s = connect({ host, port, noDelay: true });
    socket = s;
    connected = false;
    awaitingPong = false;
    let batch: ReceivedMessage[] = [];
    let yielding = false;
    parser.on('packet', (p: Packet) => onPacket(p, batch, conn));
    parser.on('error', (err: Error) => {
      log.error({ err, code: code('PROTOCOL') }, 'cannot parse data from the broker; reconnecting');
      s.destroy();
    });
    s.on('connect', () => {
      send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId: opts.clientId,
        // Persistent session: the broker keeps our subscription and unacknowledged QoS 1 messages
        // while we are away and redelivers them [MQTT-3.1.2-4], [MQTT-4.4.0-1]. A live feed connects
        // clean, which also discards a persistent session left under its id [MQTT-3.1.2-6].
        clean: opts.live === true,
        keepalive: keepaliveMs / 1000,
        username: opts.username,
        password: Buffer.from(opts.password),
      });
      connectTimer = setTimeout(() => {
        log.warn({ code: code('TIMEOUT') }, 'no CONNACK in time; reconnecting');
        s.destroy();
      }, connectTimeoutMs);
    });
    s.on('data', (chunk: Buffer) => {
      // Anything from the broker proves the connection alive, not only a PINGRESP: under load a
      // PINGRESP queues behind seconds of deliveries, and dropping a busy persistent session makes
      // the broker replay its whole backlog on the next connection — more load, more late PINGRESPs
      // (the keepalive is the client's duty to send [MQTT-3.1.2-23]; a reply is only a liveness hint).
      awaitingPong = false;
      parser.parse(chunk);
      if (batch.length > 0) {
        const out = batch;
        batch = [];
        opts.onMessages(out);
      }
      // Fair reading: libuv reads a busy socket up to 32 times per poll (64 KB each, ~13,000
      // telemetry messages) before it serves another, so a fire alarm on the alerts' signals session
      // waited behind a telemetry backlog (issue 6, ~300 ms at a load step). One chunk, then yield.
      if (!yielding && !paused) {
        yielding = true;
        s.pause();
        setImmediate(() => {
          yielding = false;
          if (!paused && socket === s && !s.destroyed) s.resume();
        });
      }
    });
    s.on('error', (err) => {
      if (!closed) log.warn({ err: err.message, code: code('SOCKET') }, 'broker connection error');
    });
    s.on('close', () => {
      clearTimers();
      if (socket === s) {
        socket = undefined;
        if (connected) log.warn({ code: code('DISCONNECTED') }, 'broker connection closed; reconnecting');
        connected = false;
        scheduleReconnect();
      }
    });
    if (paused) s.pause();
  }

  return {
    start() {
      if (started) return;
      started = true;
      open();
    },
    async close() {
      closed = true;
      clearTimeout(reconnectTimer);
      clearTimers();
      const s = socket;
      if (s === undefined || s.destroyed) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => s.destroy(), 1_000);
        s.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        if (connected) s.write(generate({ cmd: 'disconnect' }, { protocolVersion: 4 }));
        s.resume();
        s.end();
      });
      socket = undefined;
      connected = false;
    },
    ack(conn, ids) {
      if (ids.length === 0) return;
      const s = socket;
      if (conn !== connection || !connected || s === undefined || s.destroyed) {
        // The connection that delivered them is gone; the broker redelivers them on the new one.
        counters.staleAcks += ids.length;
        return;
      }
      const buf = Buffer.allocUnsafe(ids.length * 4);
      let o = 0;
      for (const id of ids) {
        buf[o] = PUBACK_TYPE;
        buf[o + 1] = 2;
        buf.writeUInt16BE(id, o + 2);
        o += 4;
      }
      s.write(buf);
      counters.acked += ids.length;
    },
    pause() {
      if (paused) return;
      paused = true;
      socket?.pause();
    },
    resume() {
      if (!paused) return;
      paused = false;
      awaitingPong = false;
      if (socket !== undefined) socket.resume();
      // The broker may have dropped a connection that stopped reading (aedes `drainTimeout`).
      else if (started && !closed && reconnectTimer === undefined) open();
    },
    whenSubscribed: () => subscribedPromise,
    stats: () => ({ connected, subscribed, paused, connections: connection, ...counters }),
  };
}
