import { h, render, $ } from './dom.js';
import { createApi } from './api.js';
import { fmtTime, getLang, setLang, t, nm } from './i18n.js';
import { createAlertModel, soundClass } from './alert-model.js';
import { activeDisablements, createIncidentModel, waitingSoundClasses } from './incident-model.js';
import { connectLive } from './live-socket.js';
import { audioReady, onAudioState, setAlarm, unlockAudio } from './sound.js';
import { createStaffView } from './staff-view.js';
import { createBureauView } from './bureau-view.js';
import { createNotifier, focusIncident, linkedIncident, listenForFocus, notifyButton, registerServiceWorker, takeLinkedIncident } from './notify.js';
import { createRosterNames, createRosterScreen, w as rw } from './roster-view.js';
import { incidentCard } from './incident-card.js';

// Composition root of the page: session, alert model, live socket, and the view for the user's role.

const LIVE_POLL_MS = 10_000;
/** A poll not answered in this long failed (a link dead without a close never answers): the banner says so. */
const LIVE_POLL_TIMEOUT_MS = 8_000;
/**
 * start() failed (no network, or the server answered an error: 503 while it restarts, a proxy's
 * 502): it is tried again after 2 s, doubling up to 30 s (and at once on the `online` event).
 */
const START_RETRY_MS = 2_000;
const START_RETRY_MAX_MS = 30_000;
/**
 * start()'s first request (GET /api/homes) not answered in this long failed: it is retried as any
 * failed start (a server that accepts and never answers used to leave the page waiting for ever).
 */
const START_TIMEOUT_MS = 8_000;
/** A renewal that failed (network, server) is tried again after this long. */
const RENEW_RETRY_MS = 30_000;
/** The bureau's socket carries fire and escalated alerts only; other classes for the grid come by polling. */
const BUREAU_RESYNC_MS = 15_000;
/**
 * Which sound wins when several classes wait: a fire alarm, then a pre-alarm (it may become one),
 * then a resident who needs someone, then supervisory and trouble, the NFPA 72 order of priority
 * (alarm > supervisory > trouble) with carewatch's care class placed after the fire signals.
 */
const SOUND_ORDER = ['alarm', 'prealarm', 'care', 'supervisory', 'trouble'];

let clockOffset = 0;
const api = createApi(() => expire(), () => Date.now() + clockOffset);
let view = null;
let live = null;
let timers = [];
/** start() attempts failed in a row (the retry's back-off). */
let startFailures = 0;
/** The latest start() (a newer one makes an older one, still waiting for its data, give way). */
let startRun = 0;
/** A renewal under way, and when (page time) the last one failed. */
let renewing = false;
let renewFailedAt = -Infinity;
/** The last live poll failed (or timed out): the banner shows trouble even if the socket says connected. */
let pollFailed = false;
/** The session ended while the page was open: its alarms stay shown and sounding, with a sign-in in the banner. */
let signedOutForm = null;
/** The banner's "session ends at…" warning is shown. */
let sessionWarning = false;
const model = createAlertModel(() => changed());
/** Issue 11: the page shows one card per incident; its member alerts stay in `model`. */
const incidents = createIncidentModel(() => changed());
/** Issue 15: the roster screen (js/roster-view.js), beside the live view, and which one is shown. */
let rosterScreen = null;
let rosterNames = null;
/**
 * Issue 15: per open incident, the notification attempts from its audit (`notified` /
 * `notify_failed`, written by the alerts process's notifier), for the card's "notified …" line.
 * They are audit entries, not incident versions, so they come by REST, not over the socket.
 */
const notified = new Map();
let notifiedTimer;
/** The disablements the user may see (full list from the server on connect and on every change). */
let disablements = [];
let activeCount = 0;
/** The live socket's state ('online' / 'offline'), shown together with the browser's own navigator.onLine. */
let connState = null;
let connAgain = false;
/** Retry of start() while the network is down (the shell came from the service worker's cache). */
let retryTimer;
/** Issue 15: a system notification for an incident that arrives while nobody looks at the page. */
let notifier = null;
/** Points whose new-point sound a person silenced on this page (the incident itself stays acknowledged). */
const silenced = new Set();

/**
 * Server time (ms) as seen by the page: the live API reports it, and no alert change can be later
 * than the server's present, so a newer change moves the estimate forward. Countdowns use it.
 */
function observeServerTime(ts) {
  if (typeof ts === 'number' && ts > Date.now() + clockOffset) clockOffset = ts - Date.now();
}

function changed() {
  view?.renderAlerts();
  rosterScreen?.setWaiting(incidents.open().filter((i) => i.acknowledgedAt === undefined && i.state !== 'resolved').length);
  scheduleNotified();
}

/** Shows the live view or the roster screen; the other stays alive (hidden), alarms keep sounding. */
function showScreen(name) {
  const roster = name === 'roster' && rosterScreen !== null;
  document.body.dataset.screen = roster ? 'roster' : 'live';
  $('#view').hidden = roster;
  $('#roster').hidden = !roster;
  const b = $('[data-testid="roster-open"]');
  if (b) b.setAttribute('aria-pressed', roster ? 'true' : 'false');
  if (roster) {
    rosterScreen.show();
    window.scrollTo(0, 0);
  }
}

/** Soon after an incident appears or changes (several changes in a burst: one round of requests). */
function scheduleNotified() {
  if (!api.session || document.body.dataset.view === 'bureau') return;
  clearTimeout(notifiedTimer);
  notifiedTimer = setTimeout(() => void refreshNotified(), 400);
}

/** Reads the notification attempts of each open incident (one GET each; a handful at a time). */
async function refreshNotified() {
  const open = incidents.open();
  let any = false;
  await Promise.all(open.map(async (i) => {
    try {
      const full = await api.get(`/api/incidents/${encodeURIComponent(i.id)}`);
      const entries = (full.audit ?? []).filter((e) => e.action === 'notified' || e.action === 'notify_failed');
      const before = notified.get(i.id);
      if (before?.length !== entries.length) any = true;
      notified.set(i.id, entries);
      for (const e of entries) if (e.recipient && e.recipient !== 'group') rosterNames?.want(i.homeId, () => view?.renderAlerts());
    } catch {
      // The card keeps what it showed; the next round tries again.
    }
  }));
  for (const id of notified.keys()) if (!open.some((i) => i.id === id)) notified.delete(id);
  if (any) view?.renderAlerts();
}

/**
 * A link (message or notification) named an incident: focus its card once the page shows it; one
 * not in this view's lists (resolved, or the bureau's non-fire incident) is fetched and shown on top.
 */
function openLinkedIncident(id, ctx) {
  focusIncident(id, 40, async () => {
    try {
      const i = await api.get(`/api/incidents/${encodeURIComponent(id)}`);
      const panel = h('section', { class: 'panel linked', 'data-testid': 'linked-incident', 'data-incident-id': id },
        h('button', { class: 'btn ghost close', 'data-testid': 'linked-close', onclick: () => panel.remove() }, t('close')),
        incidentCard(i, { homes: ctx.homes, now: ctx.now(), actions, canAct: false, silenced, notified: i.audit.filter((e) => e.action === 'notified' || e.action === 'notify_failed'), personName: (homeId, pid) => rosterNames?.name(homeId, pid) }),
      );
      $('#view').prepend(panel);
      focusIncident(id, 0);
    } catch (err) {
      if (err.status !== 401) toast(`${t('error')}: ${err.code ?? ''} ${err.message}`, 'error');
    }
  });
}

function toast(msg, kind = 'info') {
  const el = h('div', { class: `toast ${kind}`, 'data-testid': 'toast', role: 'status' }, msg);
  $('#toasts').append(el);
  setTimeout(() => el.remove(), 5000);
}

/**
 * The connection banner. Offline when the socket is down OR the browser says it has no network:
 * then nothing can reach this page, and a nurse with a phone in her pocket must see at a glance
 * that the screen is not watching for her (issue 15). `state` null: leave the socket's state as is.
 */
function setConn(state, again) {
  if (state !== null && state !== undefined) {
    connState = state;
    connAgain = again === true;
  }
  const el = $('#conn');
  const signedOut = connState === 'signed-out';
  const offline = connState !== 'online' || !navigator.onLine;
  // The socket says connected but the server's REST polls fail: not "connected" (issue: a dead link).
  const trouble = !offline && pollFailed;
  // On the login form the banner shows only a dead network (the socket is not open yet by design).
  el.hidden = connState === null && navigator.onLine;
  el.dataset.state = signedOut ? 'signed-out' : offline ? 'offline' : trouble ? 'trouble' : 'online';
  el.dataset.network = navigator.onLine ? 'up' : 'down';
  el.className = `conn ${offline || trouble ? 'offline' : 'online'}${signedOut ? ' signed-out' : ''}`;
  document.body.classList.toggle('is-offline', (offline || trouble) && !el.hidden);
  const warning = sessionWarning && api.session
    ? h('span', { class: 'conn-detail session-warning', 'data-testid': 'session-warning' }, t('sessionEnding', { t: fmtTime(api.session.expiresAt) }))
    : null;
  if (signedOut) {
    render(el, h('strong', { class: 'conn-head', 'data-testid': 'signed-out-head' }, `⚠ ${t('signedOutHead')}`),
      h('span', { class: 'conn-detail', 'data-testid': 'session-expired' }, t('signedOutDetail')), signedOutForm);
  } else if (offline) render(el, h('strong', { class: 'conn-head', 'data-testid': 'offline-head' }, `⚠ ${t('offlineHead')}`), h('span', { class: 'conn-detail' }, t('disconnected')), warning);
  else if (trouble) render(el, h('strong', { class: 'conn-head', 'data-testid': 'poll-failed-head' }, `⚠ ${t('pollHead')}`), h('span', { class: 'conn-detail' }, t('pollDetail')), warning);
  else render(el, connAgain ? t('resynced') : t('connected'), warning);
}

/** A live poll's outcome (the views' refreshLive): a failure shows in the banner until one succeeds. */
function pollDone(ok) {
  if (pollFailed === !ok) return;
  pollFailed = !ok;
  setConn(null);
}
window.addEventListener('online', () => {
  setConn(null);
  // The shell was drawn from the cache while the network was down: start for real now.
  if (api.session && !live) retryStart();
});
window.addEventListener('offline', () => setConn(null));

/**
 * Sound for the most urgent class that still waits for someone: an unacknowledged incident, an
 * alarm point that joined an acknowledged incident (a panel resounds for a subsequent alarm), or
 * an unacknowledged alert that has no incident (an older server). Never once per member alert.
 */
function setSound(alerts, openIncidents = []) {
  const waiting = new Set(alerts.filter((a) => a.acknowledgedAt === undefined && a.state !== 'resolved').map(soundClass));
  for (const i of openIncidents) for (const c of waitingSoundClasses(i, silenced)) waiting.add(c);
  setAlarm(SOUND_ORDER.find((c) => waiting.has(c)) ?? null);
}

function silence(alertIds) {
  for (const id of alertIds) silenced.add(id);
  view?.renderAlerts();
}

function setDisablements(list) {
  disablements = list;
  activeCount = activeDisablements(list, Date.now() + clockOffset).length;
  view?.renderDisablements?.();
}

/**
 * An action failed. A 401 while the page shows its alarms signed out (expire(): the action was sent
 * without a token, or it is what ended the session) did nothing: the person is told so and taken to
 * the banner's sign-in (it used to be silent, the button seeming broken during an alarm). A 401 on
 * the plain login form (no view) needs no word: the form is all there is.
 */
function actFailed(err) {
  if (err?.status !== 401) return toast(`${t('error')}: ${err?.code ?? ''} ${err?.message ?? ''}`, 'error');
  if (!signedOutForm) return;
  toast(`⚠ ${t('signedOutAct')}`, 'error');
  signedOutForm.querySelector('[name="username"]')?.focus();
}

/** An alert action over REST; true when it was done. */
async function act(promise) {
  try {
    const r = await promise;
    if (r && typeof r === 'object' && 'id' in r && 'version' in r) {
      observeServerTime(r.ts);
      model.apply(r);
    }
    else if (r?.alert) model.apply(r.alert);
    return true;
  } catch (err) {
    actFailed(err);
    return false;
  }
}

/**
 * An incident or disablement action over the socket (contract/socket-events.ts), or over REST
 * while the socket is down, so a person can always act. The reply's incident is applied at once.
 */
async function socketAct(event, args, rest) {
  try {
    const r = live?.connected ? await live.request(event, ...args) : { ok: true, ...(await rest()) };
    if (!r.ok) return toast(`${t('error')}: ${r.code ?? ''} ${r.error ?? ''}`, 'error');
    if (r.incident) {
      observeServerTime(r.incident.ts);
      incidents.apply(r.incident);
    }
    return r;
  } catch (err) {
    actFailed(err);
  }
}

const restIncident = (i, verb, body) => async () => {
  const r = await api.post(`/api/incidents/${encodeURIComponent(i.id)}/${verb}`, body);
  return { incident: r.incident ?? r };
};

const actions = {
  ackIncident: (i) => socketAct('ackIncident', [i.id], restIncident(i, 'ack', {})),
  confirmIncident: (i, confirmation, comment) => socketAct('confirmIncident', [i.id, confirmation, comment ?? ''], restIncident(i, 'confirm', { confirmation, comment: comment ?? '' })),
  resolveIncident: (i, comment) => socketAct('resolveIncident', [i.id, comment ?? ''], restIncident(i, 'resolve', comment ? { comment } : {})),
  disable: async (request) => {
    const r = await socketAct('disable', [withoutHome(request)], async () => ({ disablement: await api.post(`/api/homes/${encodeURIComponent(request.homeId)}/disablements`, withoutHome(request)) }));
    if (r?.ok) {
      toast(`${t('disabledOk')} ✓`);
      void resyncDisablements();
    }
    return r;
  },
  enable: async (d) => {
    const r = await socketAct('enable', [d.id], async () => ({ disablement: await api.del(`/api/disablements/${encodeURIComponent(d.id)}`) }));
    if (r?.ok) {
      toast(`${t('enabledOk')} ✓`);
      void resyncDisablements();
    }
    return r;
  },
  ack: (a) => act(api.post(`/api/alerts/${encodeURIComponent(a.id)}/ack`, {})),
  confirm: (a, confirmation, comment) => act(api.post(`/api/alerts/${encodeURIComponent(a.id)}/confirm`, { confirmation, comment: comment ?? '' })),
  resolve: (a, comment) => act(api.post(`/api/alerts/${encodeURIComponent(a.id)}/resolve`, comment ? { comment } : {})),
  care: async (a, action, comment) => {
    if (!(await act(api.post(`/api/residents/${encodeURIComponent(a.residentId)}/actions`, { action, ...(comment ? { comment } : {}) })))) return;
    toast(`${t(action === 'called_doctor' ? 'calledDoctor' : action)} ✓`);
  },
};

/** The socket's `disable` takes a DisablementRequest; the home is the acting director's (the server checks). */
function withoutHome({ homeId, ...rest }) {
  return rest;
}

/** A server without the endpoint (older alerts process) answers 404: the page carries on with alerts. */
const missing = (err) => err?.status === 404;

/**
 * Issue 14: a list missing some homes (their owner did not answer) must not wipe what the page shows
 * for those homes; it keeps them until their next change or a complete re-sync.
 */
const keepMissing = (missingHomes) => (x) => missingHomes.includes('*') || missingHomes.includes(x.homeId);

async function resyncDisablements() {
  try {
    const { data, missingHomes } = await api.list('/api/disablements');
    setDisablements(missingHomes.length === 0 ? data : [...data, ...disablements.filter((d) => keepMissing(missingHomes)(d) && !data.some((x) => x.id === d.id))]);
  } catch (err) {
    if (!missing(err)) throw err;
  }
}

async function resync() {
  // What comes live while the lists are on their way is newer than them (alert-model.js mark()).
  const alertsMark = model.mark();
  const { data: list, missingHomes } = await api.list('/api/alerts');
  for (const a of list) observeServerTime(a.ts);
  model.replaceOpen(list, keepMissing(missingHomes), alertsMark);
  try {
    const incidentsMark = incidents.mark();
    const { data: open, missingHomes: missingIncidents } = await api.list('/api/incidents');
    for (const i of open) observeServerTime(i.ts);
    incidents.replaceOpen(open, keepMissing(missingIncidents), incidentsMark);
  } catch (err) {
    if (!missing(err)) throw err;
  }
  await resyncDisablements();
}

function header(user, homes) {
  const home = user.homeId ? homes.get(user.homeId) : null;
  // A home-care provider's caregiver works for the provider, not the bureau (issue 15).
  const provider = user.providerId ? [...homes.values()].find((x) => x.provider?.id === user.providerId)?.provider : null;
  // Shown while the AudioContext does not run (no gesture yet, or suspended later), whatever was clicked.
  const sound = h('button', { class: 'btn ghost', 'data-testid': 'sound-toggle', hidden: audioReady(), onclick: () => { unlockAudio(); view?.renderAlerts(); } }, `♪ ${t('enableSound')}`);
  render($('#header'),
    h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '✚'), h('span', {}, t('title'))),
    h('div', { class: 'who', 'data-testid': 'who' }, home ? nm(home) : provider ? nm(provider) : t('bureau'), ' · ', user.displayName),
    h('div', { class: 'tools' },
      sound,
      notifyButton(() => unlockAudio()),
      h('button', { class: 'btn ghost', 'data-testid': 'roster-open', 'aria-pressed': 'false', onclick: () => showScreen(document.body.dataset.screen === 'roster' ? 'live' : 'roster') }, `☎ ${rw('roster')}`),
      h('button', { class: 'btn ghost', 'data-testid': 'lang-toggle', onclick: () => { setLang(getLang() === 'zh' ? 'en' : 'zh'); relang(); } }, t('lang')),
      h('button', { class: 'btn ghost', 'data-testid': 'logout', onclick: () => logout() }, t('logout')),
    ),
  );
}

/** The language changed: the page is drawn again (signed out: its banner and header only, its alarms kept). */
function relang() {
  if (signedOutForm) {
    signedOutForm = reloginForm();
    setConn(null);
    return;
  }
  retryStart();
}

/**
 * Ends the running page's timers and socket. The sound is left as it is: a restart (the language,
 * a sign-in again, a retry) keeps the alarms sounding until the new start has its data and its view
 * sets the sound from the same models; only logout() silences the page.
 */
function stop() {
  clearTimeout(retryTimer);
  clearTimeout(notifiedTimer);
  for (const id of timers) clearInterval(id);
  timers = [];
  live?.close();
  live = null;
}

function logout(notice) {
  signedOutForm = null;
  startRun++;
  stop();
  setAlarm(null);
  api.logout();
  model.clear();
  incidents.clear();
  disablements = [];
  silenced.clear();
  notifier?.clear();
  notified.clear();
  view = null;
  rosterScreen = null;
  rosterNames = null;
  render($('#roster'));
  showScreen('live');
  delete document.body.dataset.view;
  showLogin(undefined, notice);
}

/**
 * The session ended while the page was open (its token expired: the server unreachable for hours
 * while it should have been renewed; the user disabled or moved; signed out elsewhere). The page
 * must not go blank and silent with alarms open (it used to drop back to an empty login form): it
 * keeps showing and SOUNDING the alarms it has, says prominently that new ones no longer reach it,
 * and offers the sign-in in its banner. Nothing is fetched meanwhile (every request would be refused).
 */
function expire() {
  if (!api.session) return;
  stop();
  api.forget();
  sessionWarning = false;
  pollFailed = false;
  if (!view) return showLogin(undefined, t('sessionExpired'));
  signedOutForm = reloginForm();
  setConn('signed-out');
  // The countdowns keep running; the sound is the model's, as before.
  view.renderAlerts();
  timers.push(setInterval(() => view?.tick(), 1000));
}

/** The sign-in in the banner of a signed-out page: on success the page starts again with its alarms. */
/** The username and password fields of both sign-in forms (the login screen's and the signed-out banner's). */
function credentialInputs() {
  return {
    user: h('input', { name: 'username', autocomplete: 'username', required: true, 'data-testid': 'login-username' }),
    pass: h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'login-password' }),
  };
}

function reloginForm() {
  const { user, pass } = credentialInputs();
  const error = h('span', { class: 'error', 'data-testid': 'login-error', hidden: true }, t('loginFailed'));
  const form = h('form', { class: 'relogin', 'data-testid': 'login-form' },
    h('label', {}, t('username'), user), h('label', {}, t('password'), pass),
    h('button', { class: 'btn primary', type: 'submit', 'data-testid': 'login-submit' }, t('login')), error);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    unlockAudio();
    try {
      await api.login(user.value.trim(), pass.value);
    } catch {
      error.hidden = false;
      return;
    }
    signedOutForm = null;
    retryStart();
  });
  return form;
}

function showLogin(error, notice) {
  render($('#header'), h('div', { class: 'brand' }, h('span', { class: 'logo' }, '✚'), h('span', {}, t('title'))),
    h('div', { class: 'tools' }, h('button', { class: 'btn ghost', 'data-testid': 'lang-toggle', onclick: () => { setLang(getLang() === 'zh' ? 'en' : 'zh'); showLogin(); } }, t('lang'))));
  connState = null;
  setConn(null);
  const { user, pass } = credentialInputs();
  const target = linkedIncident();
  const form = h('form', { class: 'login panel', 'data-testid': 'login-form' },
    h('h1', {}, t('login')),
    notice ? h('p', { class: 'notice', 'data-testid': 'session-expired', role: 'alert' }, notice) : null,
    // A message's link: the incident opens right after the login (js/notify.js keeps it).
    target ? h('p', { class: 'notice link-target', 'data-testid': 'login-link-target', 'data-incident-id': target }, rw('linkTarget')) : null,
    h('label', {}, t('username'), user),
    h('label', {}, t('password'), pass),
    error ? h('p', { class: 'error', 'data-testid': 'login-error' }, error) : null,
    h('button', { class: 'btn primary', type: 'submit', 'data-testid': 'login-submit' }, t('login')),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    // The click is the user gesture browsers require before audio may play.
    unlockAudio();
    try {
      await api.login(user.value.trim(), pass.value);
    } catch {
      return showLogin(t('loginFailed'), notice);
    }
    // Signed in: a server that fails to answer now (a restart) is tried again, not called a wrong password.
    retryStart();
  });
  render($('#view'), form);
  user.focus();
}

async function start() {
  const run = ++startRun;
  const session = api.session;
  if (!session) {
    stop();
    return showLogin();
  }
  document.title = t('title');
  // Audio set up at once (it runs if the browser allows it; else the "enable sound" prompt shows).
  unlockAudio();
  // The running page (its socket, timers, alarms and their sound) carries on while this is on its way:
  // a restart used to silence an open alarm first, and for as long as the server took to answer.
  let homesList;
  try {
    homesList = await api.poll('/api/homes', START_TIMEOUT_MS);
  } catch (err) {
    // A newer start (or a sign-out) took over meanwhile: its outcome is the one that counts.
    if (run !== startRun) return;
    throw err;
  }
  if (run !== startRun || api.session !== session) return;
  stop();
  const homes = new Map(homesList.map((x) => [x.id, x]));
  header(session.user, homes);
  pollFailed = false;
  sessionWarning = false;
  setConn('offline');
  rosterNames = createRosterNames(api);
  const ctx = {
    api, user: session.user, homes, model, incidents, actions, setSound, silence, silenced, pollDone, pollTimeoutMs: LIVE_POLL_TIMEOUT_MS,
    notifiedOf: (id) => notified.get(id),
    personName: (homeId, personId) => rosterNames?.name(homeId, personId),
    disablements: () => activeDisablements(disablements, Date.now() + clockOffset),
    now: () => Date.now() + clockOffset,
    syncClock: (serverNow) => (clockOffset = serverNow - Date.now()),
  };
  const bureau = session.user.role === 'bureau' || session.user.role === 'admin';
  notifier = createNotifier({ homes });
  document.body.dataset.view = bureau ? 'bureau' : 'staff';
  view = bureau ? createBureauView($('#view'), ctx) : createStaffView($('#view'), ctx);
  rosterScreen = createRosterScreen($('#roster'), { api, user: session.user, homes, toast, onBack: () => showScreen('live'), onSaved: () => rosterNames?.forget() });
  showScreen(document.body.dataset.screen === 'roster' ? 'roster' : 'live');
  view.renderAlerts();
  view.renderDisablements?.();
  void view.refreshLive();
  live = connectLive({
    token: session.token,
    onAlert: (a) => {
      observeServerTime(a.ts);
      model.apply(a);
    },
    // A snapshot older than what came live since the connect does not undo it (mark); a partial one
    // (a web node did not answer) removes nothing.
    mark: () => ({ alerts: model.mark(), incidents: incidents.mark() }),
    onSnapshot: (list, meta, mark) => model.replaceOpen(list, (a) => meta.partial === true || (bureau && !(a.category === 'fire' || (a.escalationLevel ?? 0) >= 2)), mark?.alerts),
    onIncident: (i) => {
      observeServerTime(i.ts);
      incidents.apply(i);
      void notifier.consider(incidents.get(i.id) ?? i);
    },
    // The bureau's stream carries fire and escalated incidents (as its alerts); the rest come by polling.
    onIncidents: (list, meta, mark) => {
      incidents.replaceOpen(list, (i) => meta.partial === true || (bureau && !(i.kind === 'fire' || (i.escalationLevel ?? 0) >= 2)), mark?.incidents);
      // Raised while the socket was down and the page in a pocket: notified now (seen ones are not repeated).
      for (const i of list) void notifier.consider(incidents.get(i.id) ?? i);
    },
    onDisablements: setDisablements,
    onStatus: setConn,
    onAuthFailed: expire,
    resync,
  });
  window.__carewatch = Object.assign(window.__carewatch ?? {}, {
    refreshLive: () => view?.refreshLive(),
    resync: () => resync(),
    // What the page believes is open, for a test that fails to say why (nothing the user cannot see).
    openAlerts: () => model.open().map((a) => ({ id: a.id, homeId: a.homeId, rule: a.rule, signal: a.signal, state: a.state, confirmation: a.confirmation, escalationLevel: a.escalationLevel, version: a.version })),
  });
  timers.push(setInterval(() => {
    // The token's expiry is in server time; ctx.now() is the page's estimate of it.
    if (api.session && api.session.expiresAt <= ctx.now()) return expire();
    maybeRenew(ctx.now());
    view?.tick();
    // A disablement that ran out by itself leaves the page at its end time, not at the next change.
    const n = activeDisablements(disablements, ctx.now()).length;
    if (n !== activeCount) {
      activeCount = n;
      view?.renderDisablements?.();
    }
  }, 1000));
  timers.push(setInterval(() => void view?.refreshLive(), LIVE_POLL_MS));
  if (!bureau) timers.push(setInterval(() => void refreshNotified(), LIVE_POLL_MS));
  const linked = takeLinkedIncident();
  if (linked) {
    showScreen('live');
    openLinkedIncident(linked, ctx);
  }
  if (bureau) timers.push(setInterval(() => void resync().catch(() => {}), BUREAU_RESYNC_MS));
  startFailures = 0;
}

/**
 * Renewal (docs/alerts.md "Sessions and logins"): once half the token's lifetime has passed the
 * page swaps it for a fresh one (POST /api/token/renew) and hands it to the open socket, so a night
 * shift is not cut off at the token's expiry; a failure is tried again every 30 s, so hours of the
 * server being unreachable are covered by the half left. In its last quarter (renewals failing, or
 * the session's absolute limit reached) the banner says when it ends.
 */
function maybeRenew(now) {
  const s = api.session;
  if (!s) return;
  const issued = Math.min(issuedAt(s, now), s.expiresAt);
  const life = s.expiresAt - issued;
  const warn = s.expiresAt - now < life / 4;
  if (warn !== sessionWarning) {
    sessionWarning = warn;
    setConn(null);
  }
  // The absolute limit reached: no renewal can give more (the warning shows instead).
  if (s.sessionEndsAt !== undefined && s.expiresAt >= s.sessionEndsAt) return;
  if (renewing || now < issued + life / 2 || Date.now() - renewFailedAt < RENEW_RETRY_MS) return;
  renewing = true;
  api.renew().then(
    (next) => {
      if (next) live?.renew(next.token);
    },
    // A 401 has already ended the session (expire()); anything else is tried again.
    () => (renewFailedAt = Date.now()),
  ).finally(() => {
    renewing = false;
  });
}

/** Claims of a token (base64url JSON before its first '.'), or null. */
function tokenClaims(token) {
  try {
    const body = String(token).split('.')[0].replace(/-/g, '+').replace(/_/g, '/');
    const c = JSON.parse(atob(body + '='.repeat((4 - (body.length % 4)) % 4)));
    return c && typeof c === 'object' ? c : null;
  } catch {
    return null;
  }
}

/** For a session kept without `issuedAt`: the time assumed, per token (see issuedAt()). */
let assumedIssue = { token: null, at: 0 };

/**
 * When the session's token was issued (server time). A session stored by the page before it renewed
 * tokens has no `issuedAt` (a desk open across the upgrade): it used to count as issued "now" at every
 * tick, so its renewal never came and it was cut off at the old token's expiry. Such a page never
 * renewed, so its token is its login's: the token's `auth` claim (the login time) is when it was
 * issued. A token without one (issued before renewal existed) is taken as at half its life now: it
 * is renewed at once, and warned of in the last half of what was left.
 */
function issuedAt(s, now) {
  if (typeof s.issuedAt === 'number') return s.issuedAt;
  const auth = tokenClaims(s.token)?.auth;
  if (typeof auth === 'number' && auth < s.expiresAt) return auth;
  if (assumedIssue.token !== s.token) assumedIssue = { token: s.token, at: 2 * now - s.expiresAt };
  return assumedIssue.at;
}

/**
 * start() failed. No answer at all (a fetch TypeError, no HTTP status): the network is down and the
 * page was drawn from the service worker's cache, so it says it is offline and tries again.
 */
function startFailed(err) {
  // A 401 has already shown the login form with the reason (expire()).
  if (err?.status === 401 || !api.session) return;
  // An HTTP error (503 while the server restarts, a proxy's 502) used to be toasted and never tried
  // again: the page stayed dead, its banner still saying "connected". Now every failure is retried.
  if (err?.status !== undefined) toast(`${t('error')}: ${err.message}`, 'error');
  const delay = Math.min(START_RETRY_MAX_MS, START_RETRY_MS * 2 ** startFailures);
  startFailures++;
  stop();
  setConn('offline');
  if (view) {
    // The page was running (a language change, a restart): its alarms stay shown and sounding.
    view.renderAlerts();
  } else {
    render($('#header'), h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '✚'), h('span', {}, t('title'))));
    render($('#view'), h('p', { class: 'panel offline-wait', 'data-testid': 'offline-wait', role: 'alert' }, t('offlineWait')));
  }
  retryTimer = setTimeout(retryStart, delay);
}

function retryStart() {
  clearTimeout(retryTimer);
  void start().catch(startFailed);
}

setLang(getLang());
// The "enable sound" prompt follows the AudioContext: shown whenever it does not run.
onAudioState((state) => {
  const b = $('[data-testid="sound-toggle"]');
  if (b) b.hidden = state === 'running';
});
listenForFocus((id) => {
  showScreen('live');
  focusIncident(id);
});
void registerServiceWorker();
void start().catch(startFailed);
