// socket.io served by the alerts process itself (no CDN). The page shows a drop at once and, on
// every (re)connect, re-syncs the full open set from GET /api/alerts, so nothing raised during the
// gap is missed even if the snapshot event were lost (issue 5).
import { io } from '/socket.io/socket.io.esm.min.js';

/** How long an action over the socket may take before the page says it failed (and nothing is assumed done). */
const ACTION_TIMEOUT_MS = 8000;

/**
 * `mark()` is taken at each connect and handed back with that connection's `snapshot` / `incidents`
 * (with the server's `{ partial }`): what came live after it is newer than the snapshot.
 */
export function connectLive({ token, onAlert, onSnapshot, onIncident, onIncidents, onDisablements, onStatus, onAuthFailed, resync, mark }) {
  const socket = io({ auth: { token }, reconnectionDelay: 500, reconnectionDelayMax: 3000 });
  let everConnected = false;
  /** The token the server holds for this socket (the handshake's, or the last one renewed over it). */
  let serverToken = token;
  let connMark;
  socket.on('connect', async () => {
    const again = everConnected;
    everConnected = true;
    serverToken = socket.auth.token;
    connMark = mark?.();
    onStatus('online', false);
    try {
      await resync();
      // Said only once it is true: the alerts raised during the gap are on the page now.
      if (again && socket.connected) onStatus('online', true);
    } catch {
      // The next reconnect or poll tries again; the banner already says what is known.
    }
  });
  socket.on('disconnect', (reason) => {
    onStatus('offline');
    // The server ends a session only when its token no longer holds (expired, the user changed,
    // signed out: alerts/socket.ts); socket.io does not reconnect after it, and neither may the page,
    // unless the page has renewed its token since (the server cut the old one): then it reconnects with it.
    if (reason !== 'io server disconnect') return;
    if (socket.auth.token !== serverToken) socket.connect();
    else onAuthFailed?.();
  });
  socket.on('connect_error', (err) => {
    onStatus('offline');
    // The server refuses the token (alerts/socket.ts AUTH_REQUIRED): retrying cannot help, the
    // session is over. Any other error is the network, and socket.io keeps retrying.
    if (err?.message === 'AUTH_REQUIRED' || err?.data?.code === 'AUTH_REQUIRED') onAuthFailed?.();
  });
  socket.on('alert', onAlert);
  socket.on('snapshot', (list, meta) => onSnapshot(list, meta ?? {}, connMark));
  // Issue 11: incidents (one card per incident) and the disablements in force.
  if (onIncident) socket.on('incident', onIncident);
  if (onIncidents) socket.on('incidents', (list, meta) => onIncidents(list, meta ?? {}, connMark));
  if (onDisablements) socket.on('disablements', onDisablements);

  // Hooks for browser tests to cut and restore the live connection without touching the server.
  window.__carewatch = Object.assign(window.__carewatch ?? {}, {
    socket,
    dropSocket: () => socket.disconnect(),
    /** The token the server holds for this socket (changes when a renewal reached it). */
    socketToken: () => serverToken,
    restoreSocket: () => socket.connect(),
  });
  return {
    get connected() {
      return socket.connected;
    },
    /**
     * A client event with its reply (contract/socket-events.ts ClientToServerEvents). Refused at
     * once while disconnected: socket.io would buffer the emit and send it on reconnect, and an
     * acknowledgement sent minutes late is worse than a clear error now.
     */
    async request(event, ...args) {
      if (!socket.connected) throw Object.assign(new Error('not connected'), { code: 'OFFLINE' });
      return socket.timeout(ACTION_TIMEOUT_MS).emitWithAck(event, ...args);
    },
    /**
     * The page renewed its token: the next handshake uses it, and the open socket is told at once
     * (alerts/socket.ts `renew`), so the server does not cut it at the old token's expiry.
     */
    renew(next) {
      socket.auth = { ...socket.auth, token: next };
      if (!socket.connected) return;
      socket.timeout(ACTION_TIMEOUT_MS).emitWithAck('renew', next).then((r) => {
        if (r?.ok && socket.auth.token === next) serverToken = next;
      }, () => undefined);
    },
    close: () => {
      // Said before the listeners go: otherwise the banner kept saying "connected" for a closed socket.
      onStatus('offline');
      socket.removeAllListeners();
      socket.disconnect();
    },
  };
}
