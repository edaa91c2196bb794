import { createServer, type Server, type Socket } from 'node:net';

/**
 * The broker's MQTT/TCP listener, opened by broker/main.ts before the broker's modules load, so
 * that devices reconnecting after a broker restart are queued, not refused (issue 12).
 *
 * Why: a broker process spends most of its start-up loading modules (aedes, ws, prom-client …:
 * 2–4 s of the ~4 s from spawn to ready on this 2-core machine under load, measured with a CPU
 * profile). Every CONNECT tried in that window used to get ECONNREFUSED, and a device answers a
 * refusal with exponential back-off (device SDKs double their delay per failed attempt), so a
 * fleet that kept retrying through a 4 s start-up was asleep for up to another 4–8 s when the broker
 * became ready: 19 s from listening to the last device with 2,000 devices (bench `reconnect`).
 * Listening first is what systemd socket activation does for a restarting daemon: connections
 * wait in the kernel's accept queue (backlog) or here, and are served as soon as the broker is up.
 *
 * Sockets accepted before the broker takes over are paused (nothing is read, so nothing of theirs is
 * processed before authentication exists) and held in arrival order. A peer that gives up meanwhile
 * is noticed when the broker first reads its socket (EOF) and is closed then, like any connection
 * that ends before CONNECT. The broker's CONNECT timeout starts when it takes a socket over.
 */
export interface EarlyListener {
  readonly server: Server;
  /** From now on every connection goes to `onSocket`; the held ones in arrival order, 500 per event-loop turn. */
  takeOver(onSocket: (socket: Socket) => void): void;
  /** Sockets held now (not yet taken over). */
  readonly held: number;
}

/**
 * Accept queue of the MQTT/TCP listener (listen(2) backlog; Linux caps it at net.core.somaxconn,
 * 4096 by default since 5.4). Node's default is 511: when a fleet reconnects at once and the event
 * loop is busy with CONNECTs, a full queue makes Linux drop SYNs, and each dropped SYN costs that
 * device a TCP retransmission (1 s, then 3 s, 7 s …: RFC 6298's initial RTO of 1 s, doubled).
 */
export const LISTEN_BACKLOG = 4096;

/** Held sockets handed to the broker per event-loop turn (see takeOver). */
const TAKEOVER_BATCH = 500;

/**
 * Listens on host:port with `backlog` (the kernel caps it at net.core.somaxconn). Rejects on a
 * listen error (port in use): main.ts then leaves listening to broker.start(), which reports it.
 */
export function listenEarly(port: number, host: string, backlog: number): Promise<EarlyListener> {
  /** Held socket → removes the listeners it got while held. */
  const held = new Map<Socket, () => void>();
  let handler: ((socket: Socket) => void) | undefined;
  // Nagle off as for every broker socket (broker.ts); paused until the broker reads it.
  const server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) => {
    if (handler !== undefined) {
      handler(socket);
      return;
    }
    const onClose = (): void => {
      held.delete(socket);
    };
    // A reset while held must not be an uncaught 'error'.
    const onError = (): void => {
      socket.destroy();
    };
    socket.once('close', onClose);
    socket.on('error', onError);
    held.set(socket, () => {
      socket.off('close', onClose);
      socket.off('error', onError);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog }, () => {
      server.off('error', reject);
      resolve({
        server,
        get held() {
          return held.size;
        },
        takeOver(onSocket) {
          handler = onSocket;
          // In batches, one per event-loop turn: aedes starts a socket's 10 s CONNECT timeout when it
          // gets it, so handing 20,000 over at once let the last ones time out (reset) while a
          // CPU-starved broker was still reading the first ones' CONNECTs.
          const drain = (): void => {
            let n = 0;
            for (const [s, release] of held) {
              if (n++ >= TAKEOVER_BATCH) {
                setImmediate(drain);
                return;
              }
              held.delete(s);
              release();
              if (!s.destroyed) onSocket(s);
            }
          };
          drain();
        },
      });
    });
  });
}

/**
 * The listen address from the broker's environment, read without the config schema (whose
 * TypeBox import alone took 1.3 s of a loaded machine's start-up): CAREWATCH_BROKER_PORT (default
 * 1883) and CAREWATCH_BROKER_HOST (default 127.0.0.1), the defaults of BrokerEnv (broker/config.ts).
 * Undefined when either is not plainly valid: the broker then listens once started, and a bad
 * variable is reported by the schema check as usual. main.ts checks the result against the parsed
 * config before using the listener.
 */
export function earlyAddress(env: Readonly<Record<string, string | undefined>>): { port: number; host: string } | undefined {
  const portText = env.CAREWATCH_BROKER_PORT ?? '1883';
  const host = env.CAREWATCH_BROKER_HOST ?? '127.0.0.1';
  if (!/^\d{1,5}$/.test(portText) || host.length === 0) return undefined;
  const port = Number(portText);
  return port <= 65535 ? { port, host } : undefined;
}
