// socket.io served by the alerts process itself (no CDN). The page shows a drop at once and, on
// every (re)connect, re-syncs the full open set from GET /api/alerts, so nothing raised during the
// gap is missed even if the snapshot event were lost (issue 5).
import { io } from '/socket.io/socket.io.esm.min.js';

/** How long an action over the socket may take before the page says it failed (and nothing is assumed done). */
const ACTION_TIMEOUT_MS = 8000;

export function connectLive({ token, onAlert, onSnapshot, onIncident, onIncidents, onDisablements, onStatus, onAuthFailed, resync }) {
  const socket = io({ auth: { token }, reconnectionDelay: 500, reconnectionDelayMax: 3000 });
  let everConnected = false;
  socket.on('connect', async () => {
    const again = everConnected;
    everConnected = true;
    onStatus('online', again);
    try {
      await resync();
    } catch {
      // The next reconnect or poll tries again; the banner already says what is known.
    }
  });
  socket.on('disconnect', (reason) => {
    onStatus('offline');
    // The server ends a session only when its token no longer holds (expired, the user changed,
    // signed out: alerts/socket.ts); socket.io does not reconnect after it, and neither may the page.
    if (reason === 'io server disconnect') onAuthFailed?.();
  });
  socket.on('connect_error', (err) => {
    onStatus('offline');
    // The server refuses the token (alerts/socket.ts AUTH_REQUIRED): retrying cannot help, the
    // session is over. Any other error is the network, and socket.io keeps retrying.
    if (err?.message === 'AUTH_REQUIRED' || err?.data?.code === 'AUTH_REQUIRED') onAuthFailed?.();
  });
  socket.on('alert', onAlert);
  socket.on('snapshot', onSnapshot);
  // Issue 11: incidents (one card per incident) and the disablements in force.
  if (onIncident) socket.on('incident', onIncident);
  if (onIncidents) socket.on('incidents', onIncidents);
  if (onDisablements) socket.on('disablements', onDisablements);

  // Hooks for browser tests to cut and restore the live connection without touching the server.
  window.__carewatch = Object.assign(window.__carewatch ?? {}, {
    socket,
    dropSocket: () => socket.disconnect(),
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
    close: () => {
      socket.removeAllListeners();
      socket.disconnect();
    },
  };
}
