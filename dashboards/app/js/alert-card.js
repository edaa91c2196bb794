import { h } from './dom.js';
import { bi, fmtDuration, fmtTime, nm, t } from './i18n.js';
import { isCall119, isFireAlarm, pasPhase, soundClass } from './alert-model.js';

/** One look per NFPA 72 signal class (plus pre-alarm and care): colour, icon and a word, never colour alone. */
const ICON = { alarm: '▲', prealarm: '!', supervisory: '⚠', trouble: '⚒', care: '✚' };

/** "Home · floor · room · bed · resident" from the /api/homes summary. */
export function whereText(a, homes, { withHome = true } = {}) {
  const home = homes.get(a.homeId);
  const parts = withHome ? [nm(home) || a.homeId] : [];
  const floor = home?.floors.find((f) => f.rooms.some((r) => r.id === a.roomId));
  const room = floor?.rooms.find((r) => r.id === a.roomId);
  if (floor) parts.push(nm(floor));
  if (room) parts.push(nm(room));
  const resident = home?.residents.find((r) => r.id === a.residentId);
  if (resident) parts.push(`${t('bed', { b: resident.bed })} ${resident.name}`);
  else if (a.deviceId) parts.push(a.deviceId);
  return parts.join(' · ');
}

/** The positive-alarm-sequence countdown against the alert's home's own deadlines. */
export function countdown(a, now, home) {
  const p = pasPhase(a, now, home);
  if (!p) return null;
  const overdue = p.remainingMs <= 0;
  const text = overdue ? t('overdue') : p.phase === 'ack' ? t('ackIn', { s: Math.ceil(p.remainingMs / 1000) }) : t('confirmIn', { s: fmtDuration(p.remainingMs) });
  return h('div', { class: `countdown ${p.phase}${overdue ? ' overdue' : ''}`, 'data-testid': 'countdown', 'data-phase': p.phase, 'data-remaining-s': Math.max(0, Math.ceil(p.remainingMs / 1000)), 'data-deadline-s': p.totalS }, '⚑ ', text);
}

/**
 * One alert with the buttons of its lifecycle: acknowledge → confirm (fire: real fire / false
 * alarm / test / fault) → resolve; care alerts also record what staff did.
 */
export function alertCard(a, { homes, now, actions, canAct, compact = false }) {
  const fire = isFireAlarm(a);
  const comment = h('input', { class: 'comment', placeholder: t('comment'), 'data-testid': 'alert-comment', 'data-draft-key': `comment:alert:${a.id}`, maxlength: 1000 });
  const btn = (label, testid, fn, cls = '') => {
    const b = h('button', { class: `btn ${cls}`, 'data-testid': testid }, label);
    b.addEventListener('click', () => {
      b.disabled = true;
      void fn().finally(() => (b.disabled = false));
    });
    return b;
  };
  const buttons = [];
  if (canAct && a.state !== 'resolved') {
    if (a.acknowledgedAt === undefined) buttons.push(btn(t('ack'), 'btn-ack', () => actions.ack(a), 'primary'));
    if (a.acknowledgedAt !== undefined && a.confirmation === undefined && (fire || a.category === 'fire')) {
      buttons.push(
        btn(t('realFire'), 'btn-confirm-real_fire', () => actions.confirm(a, 'real_fire', comment.value), 'danger'),
        btn(t('falseAlarm'), 'btn-confirm-false_alarm', () => actions.confirm(a, 'false_alarm', comment.value)),
        btn(t('test'), 'btn-confirm-test', () => actions.confirm(a, 'test', comment.value)),
        btn(t('fault'), 'btn-confirm-fault', () => actions.confirm(a, 'fault', comment.value)),
      );
    }
    if (a.category === 'care' && a.residentId) {
      for (const [act, key] of [['turned', 'turned'], ['changed', 'changed'], ['checked', 'checked'], ['called_doctor', 'calledDoctor']]) {
        buttons.push(btn(t(key), `btn-care-${act}`, () => actions.care(a, act, comment.value), 'ghost'));
      }
    }
    if (a.acknowledgedAt !== undefined && (!fire || a.confirmation !== undefined)) buttons.push(btn(t('resolve'), 'btn-resolve', () => actions.resolve(a, comment.value)));
  }
  const call119 = isCall119(a);
  const cls = soundClass(a);
  const badges = [h('span', { class: `badge cls-${cls}`, 'data-testid': 'alert-class' }, t(`cls_${cls}`)),h('span', { class: `badge state-${a.state}`, 'data-testid': 'alert-state', hidden: call119 && a.state === 'escalated' }, t(`state_${a.state}`))];
  if (a.confirmation) badges.push(h('span', { class: `badge conf-${a.confirmation}`, 'data-testid': 'alert-confirmation' }, t({ real_fire: 'realFire', false_alarm: 'falseAlarm', test: 'test', fault: 'fault' }[a.confirmation])));
  if (call119) badges.push(h('span', { class: 'badge call119', 'data-testid': 'badge-119' }, t('escalated119')));
  else if ((a.escalationLevel ?? 0) > 0) badges.push(h('span', { class: 'badge esc' }, `${t('escalated')} L${a.escalationLevel}`));
  return h('article', { class: `alert sev-${a.severity} sig-${cls}${compact ? ' compact' : ''}`, 'data-testid': 'alert-card', 'data-alert-id': a.id, 'data-category': a.category, 'data-class': cls, 'data-state': a.state },
    h('div', { class: 'alert-head' },
      h('span', { class: 'sig-icon', 'aria-hidden': 'true' }, ICON[cls] ?? '•'),
      h('strong', { class: 'alert-what', 'data-testid': 'alert-what' }, bi(a.message)),
      h('span', { class: 'badges' }, badges),
    ),
    h('div', { class: 'alert-meta' },
      h('span', { 'data-testid': 'alert-where' }, '⌂ ', whereText(a, homes)),
      h('span', {}, `${t('since')} ${fmtTime(a.raisedAt)} (${fmtDuration(now - a.raisedAt)})`),
      a.acknowledgedBy ? h('span', {}, `✓ ${a.acknowledgedBy} ${fmtTime(a.acknowledgedAt)}`) : null,
    ),
    countdown(a, now, homes.get(a.homeId)),
    buttons.length ? h('div', { class: 'alert-actions' }, a.acknowledgedAt !== undefined ? comment : null, buttons) : null,
  );
}
