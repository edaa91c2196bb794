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
 * A web node that was down while a user signed out elsewhere does not learn of it from the others
 * (each keeps only what it heard): that token works on it until its expiry (docs/alerts.md "Sign-out").
 */
export type SignOutOrigin = 'here' | 'peer';

export interface SignOut {
  /** Reads the kept list (a missing file is an empty one). */
  start(): Promise<void>;
  /**
   * Ends this token's session; false when it was not valid (expired, unknown, signed out already).
   * `origin` 'peer': another web node said so (this node then tells no one else).
   */
  end(token: string, origin: SignOutOrigin): boolean;
  /** Called after each end, with its origin (the socket hub disconnects pages; 'here' goes to peers). */
  onEnded(listener: (token: string, origin: SignOutOrigin) => void): void;
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
  const listeners: Array<(token: string, origin: SignOutOrigin) => void> = [];
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
      const valid = Array.isArray(list) ? list.filter((r): r is Revocation => typeof r === 'object' && r !== null && typeof (r as Revocation).id === 'string' && typeof (r as Revocation).exp === 'number') : [];
      deps.tokens.restore(valid, deps.now());
    },
    end(token, origin) {
      const r = deps.tokens.revoke(token, deps.now());
      if (r === undefined) return false;
      if (r.evicted > 0) log.warn({ evicted: r.evicted, code: 'ALERTS_SIGN_OUT_EVICTED' }, 'too many signed-out tokens kept: the soonest to expire were forgotten');
      save();
      for (const l of listeners) l(token, origin);
      return true;
    },
    onEnded(listener) {
      listeners.push(listener);
    },
    close: () => writing,
  };
}
