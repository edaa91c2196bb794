import type { Socket } from 'node:net';

/**
 * Batches a connection's writes per event-loop turn: the first write of a turn corks the socket,
 * a setImmediate uncorks it, so every packet written meanwhile leaves in one writev.
 *
 * Why: aedes delivers each QoS 1 message from its own setImmediate and writes it after a persistence
 * promise, and mqtt-packet's own cork is released on the next tick, i.e. after that one packet. A
 * service subscriber (svc-ingest, svc-alerts) receiving 12,000 msg/s therefore cost one syscall per
 * message; `writev` was the broker's largest self time in the issue 6 profile. The added delay is
 * at most one loop iteration; end() flushes a corked socket, destroy() is unaffected.
 */
export function corkPerTurn(socket: Socket): void {
  let corked = false;
  const uncork = (): void => {
    corked = false;
    if (!socket.destroyed) socket.uncork();
  };
  const write = socket.write;
  socket.write = function corkedWrite(this: Socket, ...args: Parameters<Socket['write']>): boolean {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      setImmediate(uncork);
    }
    return write.apply(this, args);
  } as Socket['write'];
}
