import type { EventEmitter } from 'node:events';

/** ioredis' events for a message on a subscribed channel or pattern (the Buffer forms libraries use). */
const MESSAGE_EVENTS = new Set<string | symbol>(['messageBuffer', 'pmessageBuffer', 'message', 'pmessage']);

/**
 * Runs every listener of an ioredis subscriber connection's message events guarded: a listener that
 * throws, or whose promise rejects, reports to `onFailed` and the other listeners still run.
 *
 * Why: the libraries that decode what arrives on Redis pub/sub (`@socket.io/redis-adapter` 8.3,
 * mqemitter-redis 7) do it unguarded inside these listeners. A throw there happens inside ioredis's
 * socket reader (an uncaught exception) and an async listener's rejection is handled by nobody; under
 * Node's defaults either one ends the process. Every node of a cluster reads the same channels, so
 * one message they cannot read (a node of another version during a rolling upgrade, another program
 * publishing on a Redis server it shares, anyone who can write to Redis) stopped them all at once
 * (test/alerts/socket-cluster-malformed.test.ts, test/broker/cluster-malformed.test.ts).
 *
 * The instance's `emit` is replaced (ioredis emits these from its reply parser with `this.emit`);
 * listeners added before or after are covered alike.
 */
export function guardSubscriberMessages(client: EventEmitter, onFailed: (event: string, channel: string, err: unknown) => void): void {
  const emit = client.emit.bind(client);
  Object.defineProperty(client, 'emit', {
    configurable: true,
    writable: true,
    value: (event: string | symbol, ...args: unknown[]): boolean => {
      if (!MESSAGE_EVENTS.has(event)) return emit(event, ...args);
      // rawListeners: a once() listener's own wrapper, which removes it when called.
      const listeners = client.rawListeners(event);
      // pmessage(Buffer) is (pattern, channel, message); message(Buffer) (channel, message).
      const raw = event === 'pmessageBuffer' || event === 'pmessage' ? args[1] : args[0];
      const channel = Buffer.isBuffer(raw) ? raw.toString() : String(raw);
      for (const listener of listeners) {
        try {
          const result: unknown = (listener as (...a: unknown[]) => unknown).apply(client, args);
          if (result instanceof Promise) result.catch((err: unknown) => onFailed(String(event), channel, err));
        } catch (err) {
          onFailed(String(event), channel, err);
        }
      }
      return listeners.length > 0;
    },
  });
}
