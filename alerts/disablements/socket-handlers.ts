import { Value } from '@sinclair/typebox/value';
import type { Socket } from 'socket.io';
import { DisablementRequest, type Disablement } from '../../contract/incidents.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import type { ClientToServerEvents, DisablementResult, ServerToClientEvents, SocketData } from '../../contract/socket-events.ts';
import { canSeeHome, type Actor } from '../access.ts';
import { fail, type Outcome } from '../errors.ts';
import { homeOfRequest } from './core.ts';
import type { DisablementStore } from './store.ts';

type IoSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

export interface DisablementSocketDeps {
  readonly store: Pick<DisablementStore, 'create' | 'end' | 'visibleTo'>;
  readonly registry: RegistryIndex;
  /** Issue 14: whether this node owns the home (absent: one instance); as REST, another node's copy would suppress nothing. */
  readonly owns?: (homeId: string) => boolean;
}

function replyWith(reply: unknown, r: Outcome<Disablement>): void {
  if (typeof reply !== 'function') return;
  const result: DisablementResult = r.ok ? { ok: true, disablement: r.value } : { ok: false, code: r.code, error: r.message };
  (reply as (x: DisablementResult) => void)(result);
}

/**
 * The socket side of test and maintenance mode (issue 11): the `disablements` list the user may
 * see once on connect, and the `disable` / `enable` handlers, with the same checks as REST (the
 * store checks role and home; `live()` is the socket's token and registry check, as for `ack`).
 */
export function attachDisablementHandlers(socket: IoSocket, actor: Actor, live: () => boolean, deps: DisablementSocketDeps): void {
  socket.emit('disablements', deps.store.visibleTo(actor));
  const expired = (reply: unknown): boolean => {
    if (live()) return false;
    replyWith(reply, fail('AUTH_REQUIRED', 'the session has expired or the user changed; log in again'));
    socket.disconnect(true);
    return true;
  };
  socket.on('disable', (request: unknown, reply: unknown) => {
    if (expired(reply)) return;
    if (!Value.Check(DisablementRequest, request)) {
      const first = [...Value.Errors(DisablementRequest, request)][0];
      return replyWith(reply, fail('API_BAD_REQUEST', first === undefined ? 'disable(request)' : `${first.path || '/'} ${first.message}`));
    }
    const home = homeOfRequest(request, actor, deps.registry);
    if (home.ok && deps.owns !== undefined && canSeeHome(actor, home.value) && !deps.owns(home.value)) return replyWith(reply, fail('CLUSTER_NOT_OWNER'));
    replyWith(reply, home.ok ? deps.store.create(actor, home.value, request) : home);
  });
  socket.on('enable', (id: unknown, reply: unknown) => {
    if (expired(reply)) return;
    if (typeof id !== 'string' || id.length === 0 || id.length > 128) return replyWith(reply, fail('API_BAD_REQUEST', 'enable(disablementId)'));
    replyWith(reply, deps.store.end(actor, id));
  });
}
