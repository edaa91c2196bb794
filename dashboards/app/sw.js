// Service worker of the live page (issue 15, "the page on a phone"). Three jobs, nothing more:
// 1. Keep the app shell (html, css, js modules, the socket.io client, icons) so the page opens
//    without a network and can say "offline — alerts are NOT being received" instead of the
//    browser's error page. The network comes first (staff always run the newest code); the cache
//    answers only when the network fails or hangs.
// 2. Never touch alerts: /api/*, /socket.io/ transport, /health, /metrics go straight to the
//    network and are never stored, so an alert on screen is live or visibly absent, never replayed.
// 3. Show and focus notifications (registration.showNotification is called by the page, js/notify.js).
//
// Served from the root (alerts/http/static-files.ts: `Service-Worker-Allowed: /`, `no-cache`), so
// its scope is the whole page. Bump VERSION when the shell list changes: `activate` deletes every
// other carewatch cache.

const VERSION = 'v2';
const CACHE = `carewatch-shell-${VERSION}`;
const CACHE_PREFIX = 'carewatch-shell-';

/** Everything the page needs to start; test/e2e/phone.test.ts checks that every js/ module is here. */
const SHELL = [
  '/',
  '/index.html',
  '/style.css',
  '/manifest.webmanifest',
  '/icons/icon-192.png',
  '/icons/icon-512.png',
  '/socket.io/socket.io.esm.min.js',
  '/js/alert-card.js',
  '/js/alert-model.js',
  '/js/api.js',
  '/js/bureau-view.js',
  '/js/chart.js',
  '/js/dom.js',
  '/js/i18n.js',
  '/js/incident-card.js',
  '/js/incident-model.js',
  '/js/live-socket.js',
  '/js/main.js',
  '/js/notify.js',
  '/js/roster-view.js',
  '/js/sound.js',
  '/js/staff-view.js',
];

/**
 * How long a shell request may wait for the network before the cached copy answers: a phone on a
 * dead Wi-Fi often hangs rather than fails, and a blank page for a minute is worse than the shell
 * with its offline banner. The fresh copy still updates the cache when it arrives.
 */
const NETWORK_TIMEOUT_MS = 4000;

const shellPaths = new Set(SHELL);

self.addEventListener('install', (event) => {
  // `cache: 'reload'`: the shell is taken from the server, not from the HTTP cache.
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL.map((u) => new Request(u, { cache: 'reload' })))).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key.startsWith(CACHE_PREFIX) && key !== CACHE) await caches.delete(key);
    // The page that registered the worker is controlled at once, so its first reload offline works.
    await self.clients.claim();
  })());
});

// A page that found itself uncontrolled after `ready` asks again (js/notify.js registerServiceWorker).
self.addEventListener('message', (event) => {
  if (event.data?.type === 'carewatch:claim') event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  // The page (also as `/?incident=…` from a notification) and the shell's files, by exact path;
  // anything else (API, socket.io transport `/socket.io/?EIO=…`, health, metrics, even when opened
  // as a page) is not handled at all and goes to the network as if there were no worker.
  const page = url.pathname === '/' || url.pathname === '/index.html';
  const key = page && req.mode === 'navigate' ? '/' : url.search === '' && shellPaths.has(url.pathname) ? url.pathname : undefined;
  if (key === undefined) return;
  event.respondWith(shell(req, key));
});

async function shell(req, key) {
  const cache = await caches.open(CACHE);
  const network = fetch(req.mode === 'navigate' ? new Request('/', { cache: 'no-store' }) : req).then(async (res) => {
    if (res.ok) await cache.put(key, res.clone());
    return res;
  });
  network.catch(() => {}); // a late failure after the timeout answered is not an error
  const timeout = new Promise((resolve) => setTimeout(resolve, NETWORK_TIMEOUT_MS, undefined));
  let res;
  try {
    res = await Promise.race([network, timeout]);
    if (res?.ok) return res;
  } catch {
    // Network down: the cached copy below.
  }
  // Down, hanging, or an error status (a server shutting down answers 503): the cached copy.
  const cached = await cache.match(key);
  if (cached) return offlineCopy(cached);
  // Nothing cached yet (first visit offline): the network's own answer or error.
  return res ?? network;
}

/** The cached response, marked so the page and tests can tell it came from the cache. */
function offlineCopy(res) {
  const headers = new Headers(res.headers);
  headers.set('x-carewatch-shell', 'cache');
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

/**
 * A click on an alert notification brings the page forward on that incident: an open page is
 * focused and told which incident (js/notify.js scrolls to its card); with no page open, one is
 * opened on `/?incident=<id>`.
 */
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const incidentId = event.notification.data?.incidentId;
  event.waitUntil((async () => {
    const pages = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const page = pages.find((c) => 'focus' in c);
    if (page) {
      // Told first: focus() may be refused (it needs the click's user activation) and the page
      // must still show the incident when the person switches to it.
      page.postMessage({ type: 'carewatch:focus-incident', incidentId });
      await page.focus().catch(() => {});
      return;
    }
    await self.clients.openWindow(incidentId ? `/?incident=${encodeURIComponent(incidentId)}` : '/');
  })());
});
