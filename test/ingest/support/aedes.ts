import { createServer, type Server, type Socket } from 'node:net';
import { Aedes, type AuthenticateError } from 'aedes';

/**
 * A plain in-process aedes broker on port 0 for ingest tests, independent of carewatch's broker/
 * (which ingest must not depend on). Accepts svc-ingest with its demo secret and every other client
 * without a password check; a wrong svc-ingest password is refused (return code 4).
 */
export interface TestBroker {
  readonly url: string;
  readonly port: number;
  readonly aedes: Aedes;
  /** Cuts the connection of a client, as a broker does to one that stopped reading. */
  drop(clientId: string): void;
  close(): Promise<void>;
}

export const INGEST_USER = 'svc-ingest';
export const INGEST_PASSWORD = 'demo-svc-ingest';

export async function startTestBroker(port = 0): Promise<TestBroker> {
  const aedes = await Aedes.createBroker({
    authenticate(client, username, password, done) {
      if (username === INGEST_USER && password?.toString() !== INGEST_PASSWORD) {
        const err = new Error('bad password') as AuthenticateError;
        err.returnCode = 4;
        done(err, false);
        return;
      }
      done(null, true);
    },
  });
  const sockets = new Set<Socket>();
  const byClient = new Map<string, Socket>();
  aedes.on('client', (client) => byClient.set(client.id, client.conn as Socket));
  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const addr = server.address();
  const actual = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    url: `mqtt://127.0.0.1:${actual}`,
    port: actual,
    aedes,
    drop(clientId) {
      byClient.get(clientId)?.destroy();
    },
    async close() {
      await new Promise<void>((r) => aedes.close(() => r()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
