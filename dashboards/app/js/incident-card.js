import { h } from './dom.js';
import { bi, fmtDuration, fmtTime, nm, t } from './i18n.js';
import { w } from './roster-view.js';
import { firstPoint, incidentPasPhase, incidentSoundClass, isCall119Incident, isFireIncident, laterPoints, newPoints, pointSoundClass } from './incident-model.js';

/** Same look per class as alert-card.js: colour, icon and a word, never colour alone. */
const ICON = { alarm: '▲', prealarm: '!', supervisory: '⚠', trouble: '⚒', care: '✚' };
const CONFIRMATION_KEY = { real_fire: 'realFire', false_alarm: 'falseAlarm', test: 'test', fault: 'fault' };

/** A room's floor and name from the /api/homes summary: "1楼 · 101室". */
export function roomText(homes, homeId, roomId) {
  const home = homes.get(homeId);
  const floor = home?.floors.find((f) => f.rooms.some((r) => r.id === roomId));
  const room = floor?.rooms.find((r) => r.id === roomId);
  if (!room) return roomId ?? '';
  return `${nm(floor)} · ${nm(room)}`;
}

/** Just the room's name ("101室"), for lists of rooms. */
export function roomName(homes, homeId, roomId) {
  const room = homes.get(homeId)?.floors.flatMap((f) => f.rooms).find((r) => r.id === roomId);
  return room ? nm(room) : roomId;
}

/** "感烟探测器 h01-sd-r101" when the device's kind is known (the staff page's live list), else the id. */
export function deviceText(deviceId, devices) {
  if (!deviceId) return '';
  const kind = devices?.get(deviceId)?.kind;
  return kind ? `${t(`dkind_${kind}`)} ${deviceId}` : deviceId;
}

function residentText(homes, homeId, residentId) {
  const r = homes.get(homeId)?.residents.find((x) => x.id === residentId);
  return r ? `${t('bed', { b: r.bed })} ${r.name}` : residentId;
}

/** The incident's one countdown: acknowledge, then investigate and confirm (NFPA 72 positive alarm sequence). */
export function incidentCountdown(i, now, home, ackOf) {
  const p = incidentPasPhase(i, now, home, ackOf);
  if (!p) return null;
  const overdue = p.remainingMs <= 0;
  const text = overdue ? t('overdue') : p.phase === 'ack' ? t('ackIn', { s: Math.ceil(p.remainingMs / 1000) }) : t('confirmIn', { s: fmtDuration(p.remainingMs) });
  return h('div', { class: `countdown ${p.phase}${overdue ? ' overdue' : ''}`, 'data-testid': 'countdown', 'data-phase': p.phase, 'data-remaining-s': Math.max(0, Math.ceil(p.remainingMs / 1000)), 'data-deadline-s': p.totalS }, '⚑ ', text);
}

function pointState(p) {
  return h('span', { class: `badge state-${p.state}`, 'data-testid': 'point-state' }, t(`state_${p.state}`));
}

function inhibitedTag(p) {
  if (p.inhibited === undefined) return null;
  return h('span', { class: 'inhibited', 'data-testid': 'point-inhibited', title: t(`inh_${p.inhibited}`) }, `⊘ ${t('inhibited')}：${t(`inh_${p.inhibited}`)}`);
}

/** Where a point is: room (with floor), resident, device. */
function pointWhere(i, p, homes, devices) {
  // A home-level point (a communication loss) has no room or device: the home itself is where.
  return [p.roomId ? roomText(homes, i.homeId, p.roomId) : null, p.residentId ? residentText(homes, i.homeId, p.residentId) : null].filter(Boolean).join(' · ') || deviceText(p.deviceId, devices) || nm(homes.get(i.homeId)) || i.homeId;
}

/**
 * One incident as a fire-alarm control panel shows one fire (GB 4717 / EN 54-2: the first alarm
 * point is displayed prominently, later points below it in order): kind and severity, the first
 * alarm point large, the points that joined with their times, held-back points marked with the
 * reason, one countdown and one set of buttons acting on the whole incident.
 */
export function incidentCard(i, { homes, now, actions, canAct, devices, silenced, onSilence, ackOf, notified, notifiedOf, personName }) {
  const fire = isFireIncident(i);
  const cls = incidentSoundClass(i);
  const comment = h('input', { class: 'comment', placeholder: t('comment'), 'data-testid': 'alert-comment', 'data-draft-key': `comment:incident:${i.id}`, maxlength: 1000 });
  const btn = (label, testid, fn, extra = '') => {
    const b = h('button', { class: `btn big ${extra}`, 'data-testid': testid }, label);
    b.addEventListener('click', () => {
      b.disabled = true;
      void fn().finally(() => (b.disabled = false));
    });
    return b;
  };
  const buttons = [];
  if (canAct && i.state !== 'resolved') {
    if (i.acknowledgedAt === undefined) buttons.push(btn(t('ack'), 'btn-ack', () => actions.ackIncident(i), 'primary'));
    if (i.acknowledgedAt !== undefined && i.confirmation === undefined && i.kind === 'fire') {
      buttons.push(
        btn(t('realFire'), 'btn-confirm-real_fire', () => actions.confirmIncident(i, 'real_fire', comment.value), 'danger'),
        btn(t('falseAlarm'), 'btn-confirm-false_alarm', () => actions.confirmIncident(i, 'false_alarm', comment.value)),
        btn(t('test'), 'btn-confirm-test', () => actions.confirmIncident(i, 'test', comment.value)),
        btn(t('fault'), 'btn-confirm-fault', () => actions.confirmIncident(i, 'fault', comment.value)),
      );
    }
    if (i.kind === 'care' && i.residentId) {
      for (const [act, key] of [['turned', 'turned'], ['changed', 'changed'], ['checked', 'checked'], ['called_doctor', 'calledDoctor']]) {
        buttons.push(btn(t(key), `btn-care-${act}`, () => actions.care(i, act, comment.value), 'ghost'));
      }
    }
    if (i.acknowledgedAt !== undefined && (!fire || i.confirmation !== undefined)) buttons.push(btn(t('resolve'), 'btn-resolve', () => actions.resolveIncident(i, comment.value)));
  }

  const call119 = isCall119Incident(i);
  const badges = [
    h('span', { class: `badge cls-${cls}`, 'data-testid': 'alert-class' }, t(`cls_${cls}`)),
    h('span', { class: `badge sev sev-${i.severity}`, 'data-testid': 'incident-severity' }, `${t('severity')} ${t(`sev_${i.severity}`)}`),
    h('span', { class: `badge state-${i.state}`, 'data-testid': 'alert-state', hidden: call119 && i.state === 'escalated' }, t(`state_${i.state}`)),
  ];
  if (i.confirmation) badges.push(h('span', { class: `badge conf-${i.confirmation}`, 'data-testid': 'alert-confirmation' }, t(CONFIRMATION_KEY[i.confirmation])));
  if (call119) badges.push(h('span', { class: 'badge call119', 'data-testid': 'badge-119' }, t('escalated119')));
  else if ((i.escalationLevel ?? 0) > 0) badges.push(h('span', { class: 'badge esc', 'data-testid': 'incident-escalation' }, `${t('escalated')} L${i.escalationLevel}`));

  const first = firstPoint(i);
  const later = laterPoints(i);
  const fresh = newPoints(i, silenced, ackOf);
  const freshIds = new Set(fresh.map((p) => p.alertId));

  const firstBlock = first
    ? h('div', { class: `first-point sig-${pointSoundClass(first)}`, 'data-testid': 'first-point', 'data-point': 1, 'data-alert-id': first.alertId, 'data-room-id': first.roomId ?? '', 'data-inhibited': first.inhibited ?? '' },
        h('div', { class: 'fp-label' }, t('firstPoint'), pointState(first)),
        h('div', { class: 'fp-where', 'data-testid': 'first-point-where' }, '⌂ ', pointWhere(i, first, homes, devices)),
        h('div', { class: 'fp-what', 'data-testid': 'first-point-what' }, bi(first.message)),
        h('div', { class: 'fp-meta' },
          first.deviceId ? h('span', { 'data-testid': 'first-point-device' }, deviceText(first.deviceId, devices)) : null,
          h('span', { class: 'fp-time', 'data-testid': 'first-point-time' }, `${fmtTime(first.joinedAt)}（${fmtDuration(now - first.joinedAt)}）`),
        ),
        inhibitedTag(first),
      )
    : null;

  const pointList = later.length
    ? h('div', { class: 'later-points' },
        h('div', { class: 'lp-label' }, `${t('laterPoints')} · ${t('points', { n: i.points.length })}`),
        h('ol', { class: 'points', 'data-testid': 'incident-points', start: 2 }, later.map((p, k) =>
          h('li', {
            class: `point sig-${pointSoundClass(p)}${p.inhibited ? ' held' : ''}${freshIds.has(p.alertId) ? ' fresh' : ''}`,
            'data-testid': 'incident-point', 'data-point': k + 2, 'data-alert-id': p.alertId, 'data-room-id': p.roomId ?? '', 'data-inhibited': p.inhibited ?? '', 'data-state': p.state,
          },
            h('span', { class: 'p-time' }, fmtTime(p.joinedAt), first ? h('span', { class: 'dim' }, ` ${t('joinedAfter', { d: fmtDuration(p.joinedAt - first.joinedAt) })}`) : null),
            h('span', { class: 'p-where' }, pointWhere(i, p, homes, devices)),
            h('span', { class: 'p-what' }, bi(p.message), p.deviceId && p.roomId ? h('span', { class: 'dim' }, ` · ${deviceText(p.deviceId, devices)}`) : null),
            pointState(p),
            inhibitedTag(p),
          ))),
      )
    : null;

  const freshBanner = fresh.length
    ? h('div', { class: 'new-point', 'data-testid': 'new-point', role: 'alert' }, `▲ ${t('newPoint')}：`, fresh.map((p) => roomName(homes, i.homeId, p.roomId) ?? p.deviceId).join('、'),
        onSilence && i.acknowledgedAt !== undefined ? h('button', { class: 'btn', 'data-testid': 'btn-silence', onclick: () => onSilence(fresh.map((p) => p.alertId)) }, `♪✕ ${t('silence')}`) : null)
    : null;

  const subject = i.kind === 'care' && i.residentId ? residentText(homes, i.homeId, i.residentId) : null;
  return h('article', {
    class: `alert incident sev-${i.severity} sig-${cls}`,
    'data-testid': 'incident-card', 'data-incident-id': i.id, 'data-alert-ids': i.points.map((p) => p.alertId).join(' '), 'data-kind': i.kind, 'data-class': cls, 'data-state': i.state, 'data-points': i.points.length,
  },
    h('div', { class: 'alert-head' },
      h('span', { class: 'sig-icon', 'aria-hidden': 'true' }, ICON[cls] ?? '•'),
      h('strong', { class: 'incident-kind', 'data-testid': 'incident-kind' }, t(`kind_${i.kind}`), subject ? ` · ${subject}` : ''),
      h('span', { class: 'badges' }, badges),
    ),
    firstBlock,
    incidentCountdown(i, now, homes.get(i.homeId), ackOf),
    freshBanner,
    pointList,
    h('div', { class: 'alert-meta' },
      i.roomIds.length > 1 ? h('span', { 'data-testid': 'incident-rooms' }, `${t('rooms')}：${i.roomIds.map((r) => roomName(homes, i.homeId, r)).join('、')}`) : null,
      i.acknowledgedBy ? h('span', { 'data-testid': 'incident-acked-by' }, `✓ ${i.acknowledgedBy} ${fmtTime(i.acknowledgedAt)}`) : null,
      i.confirmedBy ? h('span', {}, `✓✓ ${i.confirmedBy} ${fmtTime(i.confirmedAt)}`) : null,
    ),
    notifiedLine(i, notified ?? notifiedOf?.(i.id), personName),
    buttons.length ? h('div', { class: 'alert-actions' }, i.acknowledgedAt !== undefined ? comment : null, buttons) : null,
  );
}

/**
 * Issue 15: who was notified and when, from the incident's audit (the notifier's `notified` /
 * `notify_failed` entries): one item per person (or group chat) and channel, its latest outcome.
 * Read-only and small: the card's business is the fire, this only says who else knows.
 */
export function notifiedLine(i, entries, personName) {
  if (!entries || entries.length === 0) return null;
  const latest = new Map();
  const nobody = new Set();
  for (const e of [...entries].sort((a, b) => a.seq - b.seq)) {
    if (e.status === 'no_recipient') nobody.add(e.escalationLevel ?? 0);
    else if (e.recipient) latest.set(`${e.recipient} ${e.channel ?? ''}`, e);
  }
  const items = [...latest.values()].map((e) => {
    const ok = e.action === 'notified';
    const who = e.recipient === 'group' ? `${w('group')}` : (personName?.(i.homeId, e.recipient) ?? e.recipient);
    return h('li', { class: `sent ${ok ? 'ok' : 'failed'}`, 'data-testid': 'notified-item', 'data-recipient': e.recipient, 'data-channel': e.channel ?? '', 'data-status': ok ? 'delivered' : (e.status ?? 'failed'), 'data-ts': e.ts },
      ok ? '✓ ' : '✕ ', h('strong', {}, who), h('span', { class: 'dim' }, ` · ${e.channel ?? ''} ${fmtTime(e.ts)}${ok ? '' : ` · ${w('notifyFailed')}${e.status ? ` (${e.status})` : ''}`}`));
  });
  for (const l of nobody) items.push(h('li', { class: 'sent failed', 'data-testid': 'notified-nobody', 'data-level': l }, `⚠ ${w('noRecipient', { l })}`));
  return h('div', { class: 'notified', 'data-testid': 'incident-notified' }, h('span', { class: 'notified-label' }, `✉ ${w('notified')}：`), h('ul', {}, items));
}
