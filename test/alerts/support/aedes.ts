import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes } from 'aedes';

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
