import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll } from 'vitest';
import type { AlertMessage } from '../../../contract/payloads.ts';
import { alertsTopic } from '../../../contract/topics.ts';

/**
 * A plain in-process aedes on 127.0.0.1:0 for the alerts tests (the real broker is broker/'s
 * business). It accepts svc-alerts with its demo password and the test publishers, and refuses
 * anything else, so a wrong password in the alerts config still fails as it would in production.
 */
export interface TestBroker {
  readonly url: string;
  readonly port: number;
  readonly broker: Aedes;
  close(): Promise<void>;
}

export async function startTestBroker(accounts: Record<string, string> = { 'svc-alerts': 'demo-svc-alerts', publisher: 'pw' }): Promise<TestBroker> {
  const broker = await Aedes.createBroker({
    authenticate: (_client, username, password, done) => {
      const ok = username !== undefined && accounts[username] !== undefined && password?.toString() === accounts[username];
      if (ok) return done(null, true);
      const err = Object.assign(new Error('Bad username or password'), { returnCode: 4 });
      done(err as Parameters<typeof done>[0], false);
    },
  });
  const server: Server = createServer(broker.handle as (s: import('node:net').Socket) => void);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    broker,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * For the calling file (registers its hooks): a test broker, a device publisher and a watcher of
 * one home's alerts topic, whose messages collect in `published`. Read the getters inside tests.
 */
export function useBrokerAndWatcher(homeId: string): { readonly broker: TestBroker; readonly device: MqttClient; readonly published: AlertMessage[] } {
  let broker: TestBroker | undefined;
  let device: MqttClient | undefined;
  let watcher: MqttClient | undefined;
  const published: AlertMessage[] = [];
  beforeAll(async () => {
    broker = await startTestBroker();
    device = await mqtt.connectAsync(broker.url, { username: 'publisher', password: 'pw', clientId: 'publisher', protocolVersion: 4 });
    watcher = await mqtt.connectAsync(broker.url, { username: 'publisher', password: 'pw', clientId: 'publisher-watch', protocolVersion: 4 });
    await watcher.subscribeAsync(alertsTopic(homeId), { qos: 1 });
    watcher.on('message', (_t, p) => published.push(JSON.parse(p.toString()) as AlertMessage));
  });
  afterAll(async () => {
    await device?.endAsync();
    await watcher?.endAsync();
    await broker?.close();
  });
  const started = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('useBrokerAndWatcher(): read it inside a test, after beforeAll');
    return v;
  };
  return {
    get broker() {
      return started(broker);
    },
    get device() {
      return started(device);
    },
    published,
  };
}
