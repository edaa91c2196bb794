import { readFile } from 'node:fs/promises';
import type { Logger } from '../common/logger.ts';
import type { Revocation, TokenService } from './http/token.ts';
import { writeJsonAtomic } from './state-file.ts';

/**
 * Server-side sign-out. Before it, "Sign out" only forgot the token in the page: the token itself
 * stayed good for the rest of its 12 h, on whatever had copied it (a shared duty-desk PC's session
 * storage, a proxy's log, a screenshot), and a page open elsewhere with it stayed live. Now a
 * sign-out (POST /api/logout) ends that one token, and no other session of the same user (a home's
 * staff account is open at several desks at once, and signing out at one must not blank the page of
 * the nurse at another during a fire):
 * - the token service refuses it from then on (REST, socket.io handshakes, actions, peer requests);
 * - the pages connected with it are disconnected, on this node and, through the socket.io cluster,
 *   on every other web node, which also refuse it from then on;
 * - the list is kept in the state directory (atomic JSON, written after every sign-out) and read at
 *   start, so a restart does not bring a signed-out token back. Entries are dropped at their expiry.
 * A web node that did not hear the broadcast (it was down, or its Redis subscriber connection was
 * lost meanwhile) reads the sign-outs the others keep in Redis when it starts and when that
 * connection comes back (socket-cluster.ts), and learns them (learn()).
 */
export type SignOutOrigin = 'here' | 'peer';

/** A session ended: its revocation, and the token itself when this node had it (not from Redis' list). */
export interface Ended {
  readonly revocation: Revocation;
  readonly token?: string;
}

export interface SignOut {
  /** Reads the kept list (a missing file is an empty one). */
  start(): Promise<void>;
  /**
   * Ends this token's session; false when it was not valid (expired, unknown, signed out already).
   * `origin` 'peer': another web node said so (this node then tells no one else).
   */
  end(token: string, origin: SignOutOrigin): boolean;
  /** Takes the other nodes' sign-outs kept in Redis (socket-cluster.ts); each new one is an end from a peer. */
  learn(list: readonly Revocation[]): void;
  /** Called after each end, with its origin (the socket hub disconnects pages; 'here' goes to peers). */
  onEnded(listener: (ended: Ended, origin: SignOutOrigin) => void): void;
  /** Waits for the list's last write. */
  close(): Promise<void>;
}

export interface SignOutDeps {
  readonly tokens: TokenService;
  readonly now: () => number;
  readonly logger: Logger;
  /** The kept list (state directory). */
  readonly path: string;
}

export function createSignOut(deps: SignOutDeps): SignOut {
  const log = deps.logger.child({ component: 'sign-out' });
  const listeners: Array<(ended: Ended, origin: SignOutOrigin) => void> = [];
  const evictedLog = (evicted: number): void => {
    if (evicted > 0) log.warn({ evicted, code: 'ALERTS_SIGN_OUT_EVICTED' }, 'too many signed-out tokens kept: the soonest to expire were forgotten');
  };
  // Writes one at a time, each with the list as it is when it starts (a burst of sign-outs coalesces).
  let writing: Promise<void> = Promise.resolve();
  let dirty = false;
  const save = (): void => {
    if (dirty) return;
    dirty = true;
    writing = writing.then(async () => {
      dirty = false;
      await writeJsonAtomic(deps.path, deps.tokens.revocations(deps.now())).catch((err: unknown) =>
        // The sign-out holds in memory; only a restart before the next successful write would forget it.
        log.error({ err, code: 'ALERTS_SIGN_OUT_SAVE_FAILED' }, 'signed-out tokens not saved; a restart would accept them again until they expire'),
      );
    });
  };
  return {
    async start() {
      let list: unknown;
      try {
        list = JSON.parse(await readFile(deps.path, 'utf8'));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        log.error({ err, code: 'ALERTS_SIGN_OUT_LOAD_FAILED' }, 'signed-out tokens file unreadable; starting without it');
        return;
      }
      if (!Array.isArray(list)) {
        log.error({ code: 'ALERTS_SIGN_OUT_LOAD_FAILED' }, 'signed-out tokens file is not a list; starting without it');
        return;
      }
      // restore() checks each entry's fields and skips what is not a revocation.
      evictedLog(deps.tokens.restore(list as Revocation[], deps.now()).evicted);
    },
    end(token, origin) {
      const r = deps.tokens.revoke(token, deps.now());
      if (r === undefined) return false;
      evictedLog(r.evicted);
      save();
      for (const l of listeners) l({ revocation: r.revocation, token }, origin);
      return true;
    },
    learn(list) {
      const { added, evicted } = deps.tokens.restore(list, deps.now());
      if (added.length === 0) return;
      evictedLog(evicted);
      save();
      for (const revocation of added) for (const l of listeners) l({ revocation }, 'peer');
    },
    onEnded(listener) {
      listeners.push(listener);
    },
    close: () => writing,
  };
}
