import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { connect, type MqttClient } from 'mqtt';

/**
 * A plain aedes broker in-process on port 0 for the simulator's tests (the real broker is broker/;
 * this one accepts any login and records who logged in, so tests can check credentials).
 */
export interface TestBroker {
  readonly url: string;
  /** username → password of every CONNECT seen. */
  readonly logins: Map<string, { password: string; clientId: string; keepalive: number; will?: { topic: string; payload: string; qos: number; retain: boolean } }>;
  close(): Promise<void>;
}

export async function startAedes(): Promise<TestBroker> {
  const logins: TestBroker['logins'] = new Map();
  const aedes = await Aedes.createBroker({
    preConnect(client, packet, done) {
      const p = packet as unknown as { username?: string; password?: Buffer; clientId: string; keepalive: number; will?: { topic: string; payload: Buffer; qos: number; retain: boolean } };
      if (p.username !== undefined) {
        logins.set(p.username, {
          password: p.password?.toString() ?? '',
          clientId: p.clientId,
          keepalive: p.keepalive,
          ...(p.will ? { will: { topic: p.will.topic, payload: p.will.payload.toString(), qos: p.will.qos, retain: p.will.retain } } : {}),
        });
      }
      done(null, true);
    },
  });
  const server: Server = createServer({ noDelay: true }, aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    logins,
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface Captured {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: number;
  readonly retain: boolean;
}

/** An mqtt.js observer subscribed to everything under carewatch/v1/#, recording every message. */
export async function observe(url: string): Promise<{ messages: Captured[]; client: MqttClient; waitFor(pred: (m: Captured) => boolean, what: string, timeoutMs?: number): Promise<Captured>; close(): Promise<void> }> {
  const client = connect(url, { clientId: `observer-${process.pid}-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 0 });
  const messages: Captured[] = [];
  const waiters = new Set<() => void>();
  client.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload, qos: packet.qos, retain: packet.retain });
    for (const w of waiters) w();
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  await client.subscribeAsync('carewatch/v1/#', { qos: 1 });
  return {
    messages,
    client,
    waitFor(pred, what, timeoutMs = 10_000) {
      const found = messages.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = messages.find(pred);
          if (m) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what} (${messages.length} messages seen)`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    close: () => client.endAsync(true),
  };
}
