// socket.io served by the alerts process itself (no CDN). The page shows a drop at once and, on
// every (re)connect, re-syncs the full open set from GET /api/alerts, so nothing raised during the
// gap is missed even if the snapshot event were lost (issue 5).
import { io } from '/socket.io/socket.io.esm.min.js';

export function connectLive({ token, onAlert, onSnapshot, onStatus, onAuthFailed, resync }) {
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
  socket.on('disconnect', () => onStatus('offline'));
  socket.on('connect_error', (err) => {
    onStatus('offline');
    // The server refuses the token (alerts/socket.ts AUTH_REQUIRED): retrying cannot help, the
    // session is over. Any other error is the network, and socket.io keeps retrying.
    if (err?.message === 'AUTH_REQUIRED' || err?.data?.code === 'AUTH_REQUIRED') onAuthFailed?.();
  });
  socket.on('alert', onAlert);
  socket.on('snapshot', onSnapshot);

  // Hooks for browser tests to cut and restore the live connection without touching the server.
  window.__carewatch = Object.assign(window.__carewatch ?? {}, {
    socket,
    dropSocket: () => socket.disconnect(),
    restoreSocket: () => socket.connect(),
  });
  return {
    close: () => {
      socket.removeAllListeners();
      socket.disconnect();
    },
  };
}
