import type { IncomingMessage } from 'node:http';

/**
 * A bound on socket.io connections that have not (yet) authenticated (issue 12: the alerts process
 * grew under hostile HTTP). Each engine.io handshake (`GET /socket.io/?EIO=4&transport=polling`)
 * costs a session on the heap that lives until socket.io's connect timeout (default 45 s) or
 * engine.io's ping timeout ends it, so a client sending handshakes and nothing else holds
 * rate × 45 s sessions: measured, heap 35 → 64 MB after 40 s of garbage handshakes from one
 * address, falling back only after the flood stopped (test/hostile/alerts-rss.ts).
 *
 * Bounded three ways:
 * - a real page sends its CONNECT with the token right after the handshake (milliseconds), so the
 *   connect timeout is 10 s, not 45 s;
 * - at most `perAddress` sessions from one client address may wait for their CONNECT; a further
 *   handshake from that address is refused (403, engine.io "Forbidden") until one authenticates or
 *   times out. A flood is then bounded at its source without touching other addresses: the duty
 *   desk, a home's NAT address or the bureau is not the attacker's address;
 * - at most `total` in all (many addresses): past that the OLDEST waiting session is closed, never
 *   the new one, so a distributed flood cannot keep a real page out (it authenticates long before
 *   it becomes the oldest). A closed polling session still lingers up to engine.io's 30 s close
 *   timeout, waiting to tell its client; it holds no CONNECT slot meanwhile.
 * Authenticated sockets are never touched. No standard sets the numbers: 64 waiting per address
 * covers every page of a home behind one NAT address connecting at once; 2,048 in all is about
 * 10 MB of heap.
 */
export const HANDSHAKE_LIMITS = { perAddress: 64, total: 2048, connectTimeoutMs: 10_000 } as const;

export interface HandshakeLimits {
  readonly perAddress: number;
  readonly total: number;
}

/** What this module needs of an engine.io connection (socket.io's `socket.conn`). */
export interface EngineConnection {
  readonly remoteAddress: string;
  close(): unknown;
  once(event: 'close', listener: () => void): unknown;
}

/** What this module needs of socket.io's engine (`io.engine`). */
export interface Engine {
  on(event: 'connection', listener: (conn: EngineConnection) => void): unknown;
}

export interface HandshakeBound {
  /** engine.io's `allowRequest` option: called for each new handshake. */
  allowRequest(req: IncomingMessage, callback: (err: string | null | undefined, success: boolean) => void): void;
  /** Counts the engine's connections from now on. */
  attach(engine: Engine): void;
  /** The connection authenticated (socket.io `connection` event): no longer counted. */
  settle(conn: EngineConnection): void;
  /** Sessions waiting for their authenticated CONNECT, in all. */
  size(): number;
  /** Handshakes refused because their address had `perAddress` waiting. */
  refused(): number;
  /** Sessions closed because `total` was reached. */
  evicted(): number;
}

export function createHandshakeBound(limits: HandshakeLimits = HANDSHAKE_LIMITS): HandshakeBound {
  /** Waiting connections, oldest first (Set and Map keep insertion order). */
  const all = new Set<EngineConnection>();
  const byAddress = new Map<string, Set<EngineConnection>>();
  let refusals = 0;
  let evictions = 0;

  const settle = (conn: EngineConnection): void => {
    if (!all.delete(conn)) return;
    const mine = byAddress.get(conn.remoteAddress);
    mine?.delete(conn);
    if (mine !== undefined && mine.size === 0) byAddress.delete(conn.remoteAddress);
  };

  return {
    allowRequest(req, callback) {
      const waiting = byAddress.get(req.socket.remoteAddress ?? '')?.size ?? 0;
      if (waiting < limits.perAddress) return callback(null, true);
      refusals++;
      callback('too many unauthenticated connections from this address', false);
    },
    attach(engine) {
      engine.on('connection', (conn) => {
        const address = conn.remoteAddress ?? '';
        let mine = byAddress.get(address);
        if (mine === undefined) byAddress.set(address, (mine = new Set()));
        all.add(conn);
        mine.add(conn);
        conn.once('close', () => settle(conn));
        while (all.size > limits.total) {
          const oldest: EngineConnection | undefined = all.values().next().value;
          if (oldest === undefined) break;
          settle(oldest);
          evictions++;
          oldest.close();
        }
      });
    },
    settle,
    size: () => all.size,
    refused: () => refusals,
    evicted: () => evictions,
  };
}
