import { h, render, $ } from './dom.js';
import { createApi } from './api.js';
import { getLang, setLang, t, nm } from './i18n.js';
import { createAlertModel, soundClass } from './alert-model.js';
import { connectLive } from './live-socket.js';
import { audioReady, setAlarm, unlockAudio } from './sound.js';
import { createStaffView } from './staff-view.js';
import { createBureauView } from './bureau-view.js';

// Composition root of the page: session, alert model, live socket, and the view for the user's role.

const LIVE_POLL_MS = 10_000;
/** The bureau's socket carries fire and escalated alerts only; other classes for the grid come by polling. */
const BUREAU_RESYNC_MS = 15_000;
/**
 * Which sound wins when several classes wait: a fire alarm, then a pre-alarm (it may become one),
 * then a resident who needs someone, then supervisory and trouble, the NFPA 72 order of priority
 * (alarm > supervisory > trouble) with carewatch's care class placed after the fire signals.
 */
const SOUND_ORDER = ['alarm', 'prealarm', 'care', 'supervisory', 'trouble'];

const api = createApi(() => expire());
let view = null;
let live = null;
let timers = [];
let clockOffset = 0;
const model = createAlertModel(() => view?.renderAlerts());

/**
 * Server time (ms) as seen by the page: the live API reports it, and no alert change can be later
 * than the server's present, so a newer change moves the estimate forward. Countdowns use it.
 */
function observeServerTime(ts) {
  if (typeof ts === 'number' && ts > Date.now() + clockOffset) clockOffset = ts - Date.now();
}

function toast(msg, kind = 'info') {
  const el = h('div', { class: `toast ${kind}`, 'data-testid': 'toast', role: 'status' }, msg);
  $('#toasts').append(el);
  setTimeout(() => el.remove(), 5000);
}

function setConn(state, again) {
  const el = $('#conn');
  el.dataset.state = state;
  el.textContent = state === 'online' ? (again ? t('resynced') : t('connected')) : t('disconnected');
  el.className = `conn ${state}`;
}

/** Sound for the most urgent class that still waits for someone (unacknowledged). */
function setSound(alerts) {
  const waiting = new Set(alerts.filter((a) => a.acknowledgedAt === undefined && a.state !== 'resolved').map(soundClass));
  setAlarm(SOUND_ORDER.find((c) => waiting.has(c)) ?? null);
}

async function act(promise) {
  try {
    const r = await promise;
    if (r && typeof r === 'object' && 'id' in r && 'version' in r) {
      observeServerTime(r.ts);
      model.apply(r);
    }
    else if (r?.alert) model.apply(r.alert);
  } catch (err) {
    // A 401 has already taken the page back to the login form (expire()).
    if (err.status !== 401) toast(`${t('error')}: ${err.code ?? ''} ${err.message}`, 'error');
  }
}

const actions = {
  ack: (a) => act(api.post(`/api/alerts/${encodeURIComponent(a.id)}/ack`, {})),
  confirm: (a, confirmation, comment) => act(api.post(`/api/alerts/${encodeURIComponent(a.id)}/confirm`, { confirmation, comment: comment ?? '' })),
  resolve: (a, comment) => act(api.post(`/api/alerts/${encodeURIComponent(a.id)}/resolve`, comment ? { comment } : {})),
  care: async (a, action, comment) => {
    await act(api.post(`/api/residents/${encodeURIComponent(a.residentId)}/actions`, { action, ...(comment ? { comment } : {}) }));
    toast(`${t(action === 'called_doctor' ? 'calledDoctor' : action)} ✓`);
  },
};

async function resync() {
  const list = await api.get('/api/alerts');
  for (const a of list) observeServerTime(a.ts);
  model.replaceOpen(list);
}

function header(user, homes) {
  const home = user.homeId ? homes.get(user.homeId) : null;
  const sound = h('button', { class: 'btn ghost', 'data-testid': 'sound-toggle', hidden: audioReady(), onclick: (e) => { unlockAudio(); e.currentTarget.hidden = true; view?.renderAlerts(); } }, `♪ ${t('enableSound')}`);
  render($('#header'),
    h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '✚'), h('span', {}, t('title'))),
    h('div', { class: 'who', 'data-testid': 'who' }, home ? nm(home) : t('bureau'), ' · ', user.displayName),
    h('div', { class: 'tools' },
      sound,
      h('button', { class: 'btn ghost', 'data-testid': 'lang-toggle', onclick: () => { setLang(getLang() === 'zh' ? 'en' : 'zh'); void start(); } }, t('lang')),
      h('button', { class: 'btn ghost', 'data-testid': 'logout', onclick: () => logout() }, t('logout')),
    ),
  );
}

function stop() {
  for (const id of timers) clearInterval(id);
  timers = [];
  live?.close();
  live = null;
  setAlarm(null);
}

function logout(notice) {
  stop();
  api.logout();
  model.clear();
  view = null;
  delete document.body.dataset.view;
  showLogin(undefined, notice);
}

/**
 * The session ended while the page was open (token expired, or the server no longer accepts it):
 * back to the login form with a message saying why, not just an offline banner that would leave
 * duty staff looking at a frozen page (issue 5: sessions expire).
 */
function expire() {
  if (!api.session) return;
  logout(t('sessionExpired'));
}

function showLogin(error, notice) {
  render($('#header'), h('div', { class: 'brand' }, h('span', { class: 'logo' }, '✚'), h('span', {}, t('title'))),
    h('div', { class: 'tools' }, h('button', { class: 'btn ghost', 'data-testid': 'lang-toggle', onclick: () => { setLang(getLang() === 'zh' ? 'en' : 'zh'); showLogin(); } }, t('lang'))));
  $('#conn').hidden = true;
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, 'data-testid': 'login-username' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'login-password' });
  const form = h('form', { class: 'login panel', 'data-testid': 'login-form' },
    h('h1', {}, t('login')),
    notice ? h('p', { class: 'notice', 'data-testid': 'session-expired', role: 'alert' }, notice) : null,
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
      await start();
    } catch {
      showLogin(t('loginFailed'), notice);
    }
  });
  render($('#view'), form);
  user.focus();
}

async function start() {
  stop();
  const session = api.session;
  if (!session) return showLogin();
  document.title = t('title');
  const homesList = await api.get('/api/homes');
  const homes = new Map(homesList.map((x) => [x.id, x]));
  header(session.user, homes);
  $('#conn').hidden = false;
  setConn('offline');
  const ctx = {
    api, user: session.user, homes, model, actions, setSound,
    now: () => Date.now() + clockOffset,
    syncClock: (serverNow) => (clockOffset = serverNow - Date.now()),
  };
  const bureau = session.user.role === 'bureau' || session.user.role === 'admin';
  document.body.dataset.view = bureau ? 'bureau' : 'staff';
  view = bureau ? createBureauView($('#view'), ctx) : createStaffView($('#view'), ctx);
  view.renderAlerts();
  void view.refreshLive();
  live = connectLive({
    token: session.token,
    onAlert: (a) => {
      observeServerTime(a.ts);
      model.apply(a);
    },
    onSnapshot: (list) => model.replaceOpen(list, (a) => bureau && !(a.category === 'fire' || (a.escalationLevel ?? 0) >= 2)),
    onStatus: setConn,
    onAuthFailed: expire,
    resync,
  });
  window.__carewatch = Object.assign(window.__carewatch ?? {}, { refreshLive: () => view?.refreshLive() });
  timers.push(setInterval(() => {
    // The token's expiry is in server time; ctx.now() is the page's estimate of it.
    if (api.session && api.session.expiresAt <= ctx.now()) return expire();
    view?.tick();
  }, 1000));
  timers.push(setInterval(() => void view?.refreshLive(), LIVE_POLL_MS));
  if (bureau) timers.push(setInterval(() => void resync().catch(() => {}), BUREAU_RESYNC_MS));
}

setLang(getLang());
void start().catch((err) => {
  // A 401 has already shown the login form with the reason (expire()).
  if (err?.status !== 401) toast(`${t('error')}: ${err.message}`, 'error');
});
