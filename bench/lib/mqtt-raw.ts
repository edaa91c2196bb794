import { connect as netConnect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';

/**
 * A minimal MQTT 3.1.1 client for the load generator: one socket, CONNECT/CONNACK, PUBLISH at
 * QoS 0/1 with PUBACK counting, SUBSCRIBE, PUBLISH receipt with PUBACK, PINGREQ. It exists because
 * mqtt.js costs far more CPU and memory per connection than the brokers under test, and the load
 * generator must not be the bottleneck. Frames are split by hand [MQTT-2.2]; only the packet types a
 * device or a plain subscriber can receive are handled.
 */
export interface RawClientOptions {
  readonly host: string;
  readonly port: number;
  readonly localAddress?: string;
  readonly clientId: string;
  readonly username?: string;
  readonly password?: string;
  readonly keepaliveS: number;
  readonly clean?: boolean;
  readonly connectTimeoutMs?: number;
  /** Last will [MQTT-3.1.2-9], e.g. a device's offline status. */
  readonly will?: { readonly topic: string; readonly payload: Buffer; readonly qos: 0 | 1; readonly retain: boolean };
}

export type MessageHandler = (topic: string, payload: Buffer) => void;

const PUBLISH = 3;
const CONNACK = 2;
const PUBACK = 4;
const SUBACK = 9;
const PINGRESP = 13;

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** Encodes a PUBLISH packet [MQTT-3.3]; packetId only for QoS 1; RETAIN is bit 0 of the fixed header [MQTT-3.3.1-5]. */
export function encodePublish(topic: Buffer, payload: Buffer, qos: 0 | 1, packetId: number, retain = false): Buffer {
  const remaining = 2 + topic.length + (qos > 0 ? 2 : 0) + payload.length;
  const lenBytes = varint(remaining);
  const buf = Buffer.allocUnsafe(1 + lenBytes.length + remaining);
  let o = 0;
  buf[o++] = 0x30 | (qos << 1) | (retain ? 1 : 0);
  for (const b of lenBytes) buf[o++] = b;
  buf.writeUInt16BE(topic.length, o);
  o += 2;
  topic.copy(buf, o);
  o += topic.length;
  if (qos > 0) {
    buf.writeUInt16BE(packetId, o);
    o += 2;
  }
  payload.copy(buf, o);
  return buf;
}

const PINGREQ = Buffer.from([0xc0, 0x00]);
const DISCONNECT = Buffer.from([0xe0, 0x00]);

export class RawClient {
  socket: Socket | undefined;
  inflight = 0;
  acked = 0;
  sent = 0;
  received = 0;
  lastSendAt = 0;
  closed = false;
  onMessage: MessageHandler | undefined;
  onClose: (() => void) | undefined;
  private nextId = 1;
  private pending: Buffer | undefined;
  private connack: ((rc: number) => void) | undefined;
  private suback: (() => void) | undefined;

  constructor(readonly opts: RawClientOptions) {}

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const o = this.opts;
      const sock = netConnect({ host: o.host, port: o.port, localAddress: o.localAddress, noDelay: true });
      this.socket = sock;
      const timer = setTimeout(() => fail(new Error(`CONNACK timeout after ${o.connectTimeoutMs ?? 30_000} ms`)), o.connectTimeoutMs ?? 30_000);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        this.connack = undefined;
        sock.destroy();
        reject(err);
      };
      sock.once('error', fail);
      sock.on('data', (d: Buffer) => this.onData(d));
      sock.once('close', () => {
        this.closed = true;
        clearTimeout(timer);
        if (this.connack) fail(new Error('socket closed before CONNACK'));
        this.onClose?.();
      });
      this.connack = (rc) => {
        clearTimeout(timer);
        this.connack = undefined;
        sock.removeListener('error', fail);
        sock.on('error', () => undefined); // a reset after connect surfaces as 'close'
        if (rc === 0) resolve();
        else {
          sock.destroy();
          reject(new Error(`CONNACK return code ${rc}`));
        }
      };
      sock.once('connect', () => {
        const packet = mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: o.clientId,
          clean: o.clean ?? true,
          keepalive: o.keepaliveS,
          ...(o.username !== undefined ? { username: o.username } : {}),
          ...(o.password !== undefined ? { password: Buffer.from(o.password) } : {}),
          ...(o.will !== undefined ? { will: { topic: o.will.topic, payload: o.will.payload, qos: o.will.qos, retain: o.will.retain } } : {}),
        });
        sock.write(packet);
        this.lastSendAt = Date.now();
      });
    });
  }

  /** Writes one PUBLISH; returns false when the socket buffer is full (back off until 'drain'). */
  publish(topic: Buffer, payload: Buffer, qos: 0 | 1, retain = false): boolean {
    const s = this.socket;
    if (s === undefined || this.closed) return false;
    let id = 0;
    if (qos === 1) {
      id = this.nextId;
      this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
      this.inflight++;
    }
    this.sent++;
    this.lastSendAt = Date.now();
    return s.write(encodePublish(topic, payload, qos, id, retain));
  }

  subscribe(filter: string, qos: 0 | 1): Promise<void> {
    return new Promise((resolve) => {
      this.suback = resolve;
      this.socket?.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }] }));
    });
  }

  ping(): void {
    if (this.closed || this.socket === undefined) return;
    this.lastSendAt = Date.now();
    this.socket.write(PINGREQ);
  }

  close(): void {
    if (this.socket && !this.closed) {
      this.socket.end(DISCONNECT);
      this.socket.destroySoon();
    }
  }

  destroy(): void {
    this.socket?.destroy();
  }

  private onData(chunk: Buffer): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let o = 0;
    while (o < buf.length) {
      if (buf.length - o < 2) break;
      let mult = 1;
      let len = 0;
      let i = o + 1;
      let complete = false;
      for (let k = 0; k < 4 && i < buf.length; k++) {
        const b = buf[i++] as number;
        len += (b & 0x7f) * mult;
        mult *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || i + len > buf.length) break;
      this.onFrame(buf, o, i, len);
      o = i + len;
    }
    if (o < buf.length) this.pending = Buffer.from(buf.subarray(o));
    buf = Buffer.alloc(0);
  }

  private onFrame(buf: Buffer, start: number, body: number, len: number): void {
    const header = buf[start] as number;
    const type = header >> 4;
    switch (type) {
      case PUBACK:
        this.inflight--;
        this.acked++;
        return;
      case PUBLISH: {
        const qos = (header >> 1) & 3;
        const tlen = buf.readUInt16BE(body);
        const topic = buf.toString('utf8', body + 2, body + 2 + tlen);
        let p = body + 2 + tlen;
        if (qos > 0) {
          const id = buf.readUInt16BE(p);
          p += 2;
          // [MQTT-3.3.4-1]: QoS 1 receipt is answered with PUBACK carrying the same packet id.
          const ack = Buffer.from([0x40, 0x02, id >> 8, id & 0xff]);
          this.socket?.write(ack);
        }
        this.received++;
        this.onMessage?.(topic, buf.subarray(p, body + len));
        return;
      }
      case CONNACK:
        this.connack?.(buf[body + 1] as number);
        return;
      case SUBACK: {
        const s = this.suback;
        this.suback = undefined;
        s?.();
        return;
      }
      case PINGRESP:
        return;
      default:
        return;
    }
  }
}
