// The page on a phone (issue 15): the service worker (installable, shell offline) and a system
// notification when an incident arrives while nobody is looking at the page. Notifications go
// through the service worker registration (`registration.showNotification`): Chrome on Android
// has no `new Notification()`, and the worker's `notificationclick` can focus the page afterwards.
// Both need a secure context (HTTPS, or http://localhost): on plain HTTP over a LAN the button says
// so, and the page still sounds and shows alarms while it is open.

import { h } from './dom.js';
import { t } from './i18n.js';

const SEVERITY_RANK = { low: 1, medium: 2, high: 3, critical: 4 };
const KIND_ZH = { fire: '火警', care: '护理呼叫', device: '设备故障' };
const KIND_EN = { fire: 'Fire', care: 'Care call', device: 'Device trouble' };
/** Android vibration, the temporal-3 rhythm of sound.js's alarm pattern (NFPA 72 §18.4.2): 3 × 0.5 s. */
const VIBRATE_ALARM = [500, 500, 500, 500, 500];
const VIBRATE_OTHER = [300, 200, 300];

/** Test probe: what was shown and why (the browser's own list is registration.getNotifications()). */
const probe = { shown: [], closed: [], errors: [] };
window.__carewatchNotify = probe;

let registration = null;

/** Registers /sw.js for the whole origin; resolves to the registration or null (no support, insecure context). */
export async function registerServiceWorker() {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return null;
  try {
    await navigator.serviceWorker.register('/sw.js', { scope: '/' });
    registration = await navigator.serviceWorker.ready;
    // The worker's activate claims open pages, but Chromium does not always hand this page over
    // (seen under CI load: worker active, page uncontrolled for over a minute), and an uncontrolled
    // page has no offline shell until a reload. Asking the active worker to claim again is harmless
    // when it already did.
    if (!navigator.serviceWorker.controller) registration.active?.postMessage({ type: 'carewatch:claim' });
    return registration;
  } catch (err) {
    probe.errors.push(`register: ${err?.message ?? err}`);
    return null;
  }
}

/** `granted`, `denied`, `default`, or `unavailable` (no API, no worker, or not a secure context). */
export function notifyPermission() {
  if (!('Notification' in window) || !('serviceWorker' in navigator) || !window.isSecureContext) return 'unavailable';
  return Notification.permission;
}

/**
 * The "开启通知" button. Permission is asked only from this tap, never on load (browsers refuse or
 * penalise prompts without a gesture, and a prompt at login hides the page a nurse needs).
 * `onGesture` lets the caller unlock audio on the same tap.
 */
export function notifyButton(onGesture) {
  const p = notifyPermission();
  if (p === 'granted') return h('span', { class: 'notify-state on', 'data-testid': 'notify-state', 'data-permission': p, title: t('notifyOn') }, `✓ ${t('notifyOnShort')}`);
  if (p === 'denied' || p === 'unavailable') {
    return h('span', { class: 'notify-state off', 'data-testid': 'notify-state', 'data-permission': p, title: t(p === 'denied' ? 'notifyBlocked' : 'notifyUnavailable') }, `✕ ${t(p === 'denied' ? 'notifyBlockedShort' : 'notifyUnavailableShort')}`);
  }
  const b = h('button', { class: 'btn ghost notify-btn', 'data-testid': 'notify-enable' }, `⚑ ${t('enableNotify')}`);
  b.addEventListener('click', async () => {
    onGesture?.();
    const r = await Notification.requestPermission();
    b.replaceWith(notifyButton(onGesture));
    if (r === 'granted') void registerServiceWorker();
  });
  return b;
}

/** Whether the person is looking at the page right now (visible and focused). */
export function pageWatched() {
  return document.visibilityState === 'visible' && document.hasFocus();
}

const isOpenUnacked = (i) => i.state !== 'resolved' && i.acknowledgedAt === undefined;

/** Chinese first (zh-CN staff), English after: kind, home, where and what, for the lock screen. */
export function notificationText(i, homes) {
  const home = homes.get(i.homeId);
  const first = i.points.find((p) => p.alertId === i.firstAlertId) ?? i.points[0];
  const floor = home?.floors.find((f) => f.rooms.some((r) => r.id === first?.roomId));
  const room = floor?.rooms.find((r) => r.id === first?.roomId);
  const resident = home?.residents.find((r) => r.id === (i.residentId ?? first?.residentId));
  const whereZh = [floor?.name, room?.name, resident ? `${resident.bed}床 ${resident.name}` : null].filter(Boolean).join(' · ');
  const whereEn = [floor?.nameEn ?? floor?.name, room?.nameEn ?? room?.name, resident ? `bed ${resident.bed}` : null].filter(Boolean).join(' · ');
  const more = i.points.length > 1 ? `（共 ${i.points.length} 个报警点 / ${i.points.length} points）` : '';
  const sevZh = { critical: '危急', high: '高', medium: '中', low: '低' }[i.severity] ?? i.severity;
  return {
    title: `${i.kind === 'fire' && i.severity === 'critical' ? '🔥 ' : ''}${KIND_ZH[i.kind] ?? i.kind}·${sevZh} — ${home?.name ?? i.homeId}`,
    body: [
      `${whereZh || first?.deviceId || ''}：${first?.message?.zh ?? ''}${more}`,
      `${KIND_EN[i.kind] ?? i.kind} (${i.severity}) — ${home?.nameEn ?? home?.name ?? i.homeId}${whereEn ? `, ${whereEn}` : ''}: ${first?.message?.en ?? ''}`,
    ].join('\n'),
  };
}

/**
 * Decides which incident changes become a notification. One incident is one notification (tag =
 * incident id): while the page is watched an incident is only noted as seen; while it is not, an
 * incident not yet seen in this state is shown, a rise in severity or a new point re-alerts
 * (`renotify`: sound and vibration again, as a fire panel resounds for a subsequent alarm,
 * GB 4717 / EN 54-2), any other change updates the text silently. Acknowledged or resolved, its
 * notification is closed: someone has it.
 */
export function createNotifier({ homes, watched = pageWatched, onShow }) {
  const seen = new Map();
  return {
    async consider(i) {
      const prev = seen.get(i.id);
      const rank = SEVERITY_RANK[i.severity] ?? 0;
      if (!isOpenUnacked(i)) {
        seen.delete(i.id);
        if (prev) await close(i.id);
        return;
      }
      const mine = { rank, points: i.points.length };
      seen.set(i.id, mine);
      if (watched()) return;
      const rise = prev !== undefined && (rank > prev.rank || i.points.length > prev.points);
      if (prev !== undefined && !rise) return;
      if (await show(i, homes, rise)) {
        // Acknowledged or resolved while it was being shown (a worker still installing): close it.
        if (!seen.has(i.id)) await close(i.id);
        else onShow?.(i);
        return;
      }
      // Not shown (no permission, no active worker yet, the browser refused): not seen either, so the
      // incident's next change tries again rather than being taken as already notified. Only if no
      // later change of it was noted meanwhile.
      if (seen.get(i.id) !== mine) return;
      if (prev === undefined) seen.delete(i.id);
      else seen.set(i.id, prev);
    },
    clear() {
      seen.clear();
    },
  };
}

/** How long a notification waits for a worker still installing (the page's first minute, a slow phone). */
const ACTIVE_WAIT_MS = 10_000;

/** The registration with an active worker (showNotification needs one), waiting a while for one installing; null if none. */
async function activeRegistration() {
  const reg = registration ?? (await navigator.serviceWorker.getRegistration('/'));
  if (reg?.active) return reg;
  let timer;
  const ready = await Promise.race([navigator.serviceWorker.ready, new Promise((r) => (timer = setTimeout(() => r(null), ACTIVE_WAIT_MS)))]);
  clearTimeout(timer);
  return ready?.active ? ready : null;
}

/** Shows an incident's notification; false if it could not be shown. */
async function show(i, homes, renotify) {
  if (notifyPermission() !== 'granted') return false;
  const reg = await activeRegistration();
  if (!reg) {
    probe.errors.push(`show ${i.id}: no active service worker`);
    return false;
  }
  const { title, body } = notificationText(i, homes);
  const critical = i.severity === 'critical';
  const options = {
    body,
    tag: i.id,
    renotify,
    // A critical incident stays on screen until someone acts on it (it does not time out into the tray).
    requireInteraction: critical,
    silent: false,
    lang: 'zh-CN',
    dir: 'ltr',
    icon: '/icons/icon-192.png',
    badge: '/icons/icon-192.png',
    vibrate: critical ? VIBRATE_ALARM : VIBRATE_OTHER,
    timestamp: i.alertedAt ?? i.openedAt,
    data: { incidentId: i.id, homeId: i.homeId },
  };
  try {
    await reg.showNotification(title, options);
    probe.shown.push({ tag: i.id, title, renotify, requireInteraction: critical, severity: i.severity, points: i.points.length });
    return true;
  } catch (err) {
    probe.errors.push(`show ${i.id}: ${err?.message ?? err}`);
    return false;
  }
}

async function close(tag) {
  const reg = registration ?? (await navigator.serviceWorker?.getRegistration('/'));
  for (const n of (await reg?.getNotifications({ tag })) ?? []) n.close();
  probe.closed.push(tag);
}

/**
 * Brings an incident's card (staff) or row (bureau) into view and marks it, after a notification
 * click or a message link. The incident may not be drawn yet (a page still loading): retried for a
 * while; `onMissing` runs if it never appears (e.g. already resolved, or not in this view's lists).
 */
export function focusIncident(id, tries = 40, onMissing) {
  const el = document.querySelector(`[data-testid="pinned-fire"][data-incident-id="${CSS.escape(id)}"], [data-testid="incident-card"][data-incident-id="${CSS.escape(id)}"], [data-testid="incident-row"][data-incident-id="${CSS.escape(id)}"], [data-testid="linked-incident"][data-incident-id="${CSS.escape(id)}"]`);
  if (!el) {
    if (tries > 0) setTimeout(() => focusIncident(id, tries - 1, onMissing), 250);
    else onMissing?.(id);
    return;
  }
  for (const old of document.querySelectorAll('.focused-incident')) old.classList.remove('focused-incident');
  el.classList.add('focused-incident');
  el.setAttribute('tabindex', '-1');
  el.scrollIntoView({ block: 'start' });
  el.focus({ preventScroll: true });
  document.body.dataset.focusedIncident = id;
}

const PENDING_KEY = 'cw.focusIncident';

/**
 * The incident a link asked for (`/?incident=<id>` from a notification click or an SMS / WeCom /
 * DingTalk message; `/#incident=<id>` from messages sent before the query form), kept in
 * sessionStorage until the page has started with a session: a link opened on a phone that must log
 * in first still lands on its incident after the login form (and after a reload in between).
 */
export function takeLinkedIncident() {
  const id = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  return id;
}

export function linkedIncident() {
  return sessionStorage.getItem(PENDING_KEY);
}

/**
 * Listens for the worker's "focus this incident" (an open page), and takes the incident of a link
 * the page was opened with out of the address (it is kept as above, for after the login).
 */
export function listenForFocus(onFocus = focusIncident) {
  navigator.serviceWorker?.addEventListener('message', (e) => {
    if (e.data?.type === 'carewatch:focus-incident' && typeof e.data.incidentId === 'string') onFocus(e.data.incidentId);
  });
  const fromHash = new URLSearchParams(location.hash.replace(/^#/, '')).get('incident');
  const id = new URLSearchParams(location.search).get('incident') ?? fromHash;
  if (id) {
    sessionStorage.setItem(PENDING_KEY, id);
    history.replaceState(null, '', '/');
  }
}
