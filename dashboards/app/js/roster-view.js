// The on-call roster screen (issue 15): who is on duty now and next, the directors (a provider's
// managers) and the bureau's contacts, each with a number to call; for whoever may change it (the
// home's director, the provider's manager, an admin: the server says so in `canEdit`) a form that
// saves through the roster API; and the change history from the server's audit (who, what, when).
//
// Phone first: one column, every control at least 44 × 44 CSS px on a touch screen (style.css).

import { h, render } from './dom.js';
import { getLang, nm } from './i18n.js';

/** Issue 15's words (this screen, the login form's link note, the card's "notified" line), Chinese first; kept here as bureau-view.js does. */
const WORDS = {
  roster: ['值班表', 'On-call roster'],
  back: ['返回值班视图', 'Back to the live view'],
  onDuty: ['当前值班', 'On duty now'],
  next: ['下一班', 'Next shift'],
  nobody: ['当前无人值班 — 警报将直接升级', 'Nobody on duty now — alarms go straight up the ladder'],
  noRoster: ['尚无值班表', 'No roster yet'],
  directors: ['院长', 'Directors'],
  managers: ['服务机构负责人', "Provider's managers"],
  bureau: ['民政局联系人', 'Bureau contacts'],
  shifts: ['班次', 'Shifts'],
  people: ['人员', 'People'],
  history: ['变更记录', 'Change history'],
  noHistory: ['暂无变更', 'No changes yet'],
  edit: ['编辑值班表', 'Edit roster'],
  save: ['保存', 'Save'],
  cancel: ['取消', 'Cancel'],
  saved: ['值班表已保存', 'Roster saved'],
  addPerson: ['添加人员', 'Add person'],
  addShift: ['添加班次', 'Add shift'],
  addDirector: ['添加院长', 'Add director'],
  addManager: ['添加负责人', 'Add manager'],
  remove: ['删除', 'Remove'],
  id: ['编号', 'ID'],
  name: ['姓名', 'Name'],
  shiftName: ['班次名称', 'Shift name'],
  role: ['职务', 'Role'],
  phone: ['电话', 'Phone'],
  start: ['开始', 'Start'],
  end: ['结束', 'End'],
  days: ['日期', 'Days'],
  onShift: ['当班人员', 'On this shift'],
  timezone: ['时区', 'Time zone'],
  fixErrors: ['请更正以下问题：', 'Please fix:'],
  refused: ['服务器拒绝保存：', 'The server refused:'],
  waiting: ['{n} 个警报等待确认 — 点此返回', '{n} alarm(s) waiting — tap to go back'],
  crossesMidnight: ['跨夜', 'overnight'],
  allDay: ['24 小时', '24 h'],
  by: ['操作人', 'By'],
  view: ['查看', 'Show'],
  provider: ['服务机构', 'Provider'],
  call: ['拨打', 'Call'],
  readOnly: ['仅院长（或服务机构负责人）可修改值班表', 'Only the director (or the provider\'s manager) may change the roster'],
  errRequired: ['{what}：{field}不能为空', '{what}: {field} is required'],
  errId: ['{what}：编号只能用字母、数字、- 和 _', '{what}: the ID may use letters, digits, - and _ only'],
  errDup: ['编号 {id} 重复', 'ID {id} is used twice'],
  errPhone: ['{what}：电话号码格式不对（5–20 位数字，可带 +）', '{what}: the phone number must be 5–20 digits, optionally with +'],
  errTime: ['{what}：时间须为 HH:MM', '{what}: times must be HH:MM'],
  errDays: ['{what}：至少选一天', '{what}: choose at least one day'],
  errNoPeople: ['{what}：没有当班人员', '{what}: nobody is on this shift'],
  linkTarget: ['登录后将打开消息中的事件', 'The incident from your message opens after you sign in'],
  notified: ['已通知', 'Notified'],
  notifyFailed: ['未送达', 'not delivered'],
  noRecipient: ['第{l}级无人值班', 'nobody on the roster for level {l}'],
  group: ['群', 'group'],
};
const DAY_NAMES = [['一', 'Mon'], ['二', 'Tue'], ['三', 'Wed'], ['四', 'Thu'], ['五', 'Fri'], ['六', 'Sat'], ['日', 'Sun']];
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const PHONE_RE = /^\+?[0-9]{5,20}$/;
const HHMM_RE = /^(?:[01]\d|2[0-3]):[0-5]\d$/;

export function w(key, vars = {}) {
  const s = WORDS[key]?.[getLang() === 'en' ? 1 : 0] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
}
const dayName = (d) => DAY_NAMES[d - 1]?.[getLang() === 'en' ? 1 : 0] ?? String(d);

/** A date and time in the roster's zone (its shift times are in it), whatever zone the phone is set to. */
function fmtWhen(ms, timeZone) {
  const opts = { month: 'numeric', day: 'numeric', weekday: 'short', hour: '2-digit', minute: '2-digit', hour12: false };
  const locale = getLang() === 'en' ? 'en-GB' : 'zh-CN';
  try {
    return new Date(ms).toLocaleString(locale, { ...opts, timeZone });
  } catch {
    return new Date(ms).toLocaleString(locale, opts);
  }
}

function shiftTimes(s) {
  const tag = s.end === s.start ? ` (${w('allDay')})` : s.end < s.start ? ` (${w('crossesMidnight')})` : '';
  return `${s.start}–${s.end}${tag}`;
}

/**
 * Names of people on rosters, for the incident card's "notified …" line (the audit names a
 * recipient by their roster id). One GET per home, kept until the page starts again.
 */
export function createRosterNames(api) {
  const byHome = new Map();
  const loading = new Map();
  return {
    name(homeId, personId) {
      return byHome.get(homeId)?.get(personId);
    },
    /** Loads a home's names once; `onLoaded` runs when new names arrived. */
    want(homeId, onLoaded) {
      if (byHome.has(homeId) || loading.has(homeId)) return;
      loading.set(homeId, api.get(`/api/homes/${encodeURIComponent(homeId)}/roster`).then((v) => {
        const names = new Map();
        for (const p of [...(v.roster?.people ?? []), ...(v.roster?.directors ?? []), ...(v.bureau ?? [])]) names.set(p.id, p.name);
        byHome.set(homeId, names);
        onLoaded?.();
      }).catch(() => byHome.set(homeId, new Map())).finally(() => loading.delete(homeId)));
    },
    /** A roster was saved: its names are read again on next use. */
    forget(homeId) {
      if (homeId === undefined) byHome.clear();
      else byHome.delete(homeId);
    },
  };
}

/** The rosters this user may look at: their home, their provider, or (bureau, admin) any home or provider. */
function targetsFor(user, homes) {
  if (user.homeId) return [{ kind: 'home', id: user.homeId, label: nm(homes.get(user.homeId)) || user.homeId }];
  const providers = new Map();
  for (const x of homes.values()) if (x.provider) providers.set(x.provider.id, x.provider);
  if (user.role === 'provider') {
    const p = providers.get(user.providerId);
    return [{ kind: 'provider', id: user.providerId, label: p ? nm(p) : user.providerId }];
  }
  return [
    ...[...homes.values()].filter((x) => x.kind !== 'household').map((x) => ({ kind: 'home', id: x.id, label: nm(x) || x.id })),
    ...[...providers.values()].map((p) => ({ kind: 'provider', id: p.id, label: `${w('provider')} · ${nm(p)}` })),
  ];
}

const urlOf = (target) => target.kind === 'home' ? `/api/homes/${encodeURIComponent(target.id)}/roster` : `/api/providers/${encodeURIComponent(target.id)}/roster`;

/**
 * The roster screen in `root`. ctx: { api, user, homes, toast, onBack, onSaved }. Loaded when shown;
 * the live view stays alive beside it (alarms keep sounding and a bar leads back to them).
 */
export function createRosterScreen(root, ctx) {
  const targets = targetsFor(ctx.user, ctx.homes);
  let target = targets[0];
  let view = null;
  let editing = null;
  const waitingBar = h('button', { class: 'btn danger roster-waiting', 'data-testid': 'roster-alarm-waiting', hidden: true, onclick: () => ctx.onBack() });
  const body = h('div', { class: 'roster-body', 'data-testid': 'roster-body' });
  const picker = targets.length > 1
    ? h('select', { class: 'roster-pick', 'data-testid': 'roster-target', 'aria-label': w('view') }, targets.map((x, k) => h('option', { value: k }, x.label)))
    : null;
  picker?.addEventListener('change', () => {
    target = targets[Number(picker.value)];
    editing = null;
    void load();
  });
  render(root,
    waitingBar,
    h('div', { class: 'roster-top' },
      h('button', { class: 'btn', 'data-testid': 'roster-back', onclick: () => ctx.onBack() }, `← ${w('back')}`),
      picker,
    ),
    body,
  );

  async function load() {
    if (!target) return render(body, h('p', { class: 'empty' }, w('noRoster')));
    const asked = target;
    render(body, h('p', { class: 'loading' }, '…'));
    try {
      const v = await ctx.api.get(urlOf(asked));
      if (asked !== target) return;
      view = v;
      draw();
    } catch (err) {
      if (err.status !== 401) render(body, h('p', { class: 'error', 'data-testid': 'roster-load-error' }, `${err.code ?? ''} ${err.message}`));
    }
  }

  function draw() {
    if (editing) return render(body, editing.el);
    const r = view.roster;
    const isProvider = target.kind === 'provider';
    const leaders = r ? (isProvider ? r.managers : r.directors) : [];
    const people = new Map((r?.people ?? []).map((p) => [p.id, p]));
    const shifts = new Map((r?.shifts ?? []).map((s) => [s.id, s]));
    const duty = view.duty;
    const nowBlocks = (duty?.now ?? []).map((n) => {
      const s = shifts.get(n.shiftId);
      return h('div', { class: 'duty-shift', 'data-testid': 'duty-now-shift', 'data-shift-id': n.shiftId },
        h('div', { class: 'duty-shift-head' }, h('strong', {}, s?.name ?? n.shiftId), ' ', h('span', { class: 'dim' }, s ? shiftTimes(s) : '')),
        h('ul', { class: 'contacts' }, n.people.map((id) => contact(people.get(id) ?? { id, name: id, role: '' }, 'duty-now-person'))),
      );
    });
    const next = duty?.next;
    const nextShift = next ? shifts.get(next.shiftId) : null;
    render(body,
      h('h2', {}, `☎ ${w('roster')} · ${target.label}`),
      r === null || r === undefined ? h('p', { class: 'empty', 'data-testid': 'roster-none' }, w('noRoster')) : null,
      r ? h('section', { class: 'panel roster-duty', 'data-testid': 'roster-duty' },
        h('h3', {}, w('onDuty')),
        nowBlocks.length && nowBlocks.some((b) => b.querySelector('li')) ? nowBlocks : h('p', { class: 'duty-none', 'data-testid': 'duty-none', role: 'alert' }, `⚠ ${w('nobody')}`),
        next ? h('div', { class: 'duty-next', 'data-testid': 'duty-next', 'data-shift-id': next.shiftId, 'data-starts-at': next.startsAt },
          h('h3', {}, w('next')),
          h('div', { class: 'duty-shift-head' }, h('strong', {}, nextShift?.name ?? next.shiftId), ' ', h('span', { 'data-testid': 'duty-next-when' }, fmtWhen(next.startsAt, r.timezone)), ' ', h('span', { class: 'dim' }, nextShift ? shiftTimes(nextShift) : '')),
          h('ul', { class: 'contacts' }, next.people.map((id) => contact(people.get(id) ?? { id, name: id, role: '' }, 'duty-next-person'))),
        ) : null,
      ) : null,
      r ? h('section', { class: 'panel', 'data-testid': 'roster-directors' }, h('h3', {}, w(isProvider ? 'managers' : 'directors')), h('ul', { class: 'contacts' }, leaders.map((p) => contact(p, 'director-contact')))) : null,
      h('section', { class: 'panel', 'data-testid': 'roster-bureau' }, h('h3', {}, w('bureau')), h('ul', { class: 'contacts' }, (view.bureau ?? []).map((p) => contact(p, 'bureau-contact')))),
      r ? h('section', { class: 'panel', 'data-testid': 'roster-shifts' }, h('h3', {}, w('shifts')),
        h('ul', { class: 'shift-list' }, r.shifts.map((s) => h('li', { 'data-testid': 'roster-shift', 'data-shift-id': s.id },
          h('strong', {}, s.name), ` ${shiftTimes(s)} · `, s.days.map(dayName).join(' '), ' · ', s.people.map((id) => people.get(id)?.name ?? id).join('、'))))) : null,
      view.canEdit
        ? h('button', { class: 'btn primary roster-edit-btn', 'data-testid': 'roster-edit', onclick: () => startEdit() }, `✎ ${w('edit')}`)
        : h('p', { class: 'dim', 'data-testid': 'roster-read-only' }, w('readOnly')),
      historySection(view.audit, r?.timezone),
    );
  }

  function contact(p, testid) {
    return h('li', { class: 'contact', 'data-testid': testid, 'data-person-id': p.id },
      h('span', { class: 'contact-who' }, h('strong', {}, p.name), p.role ? h('span', { class: 'dim' }, ` · ${p.role}`) : null),
      p.phone ? h('a', { class: 'btn call', href: `tel:${p.phone}`, 'data-testid': 'call', 'aria-label': `${w('call')} ${p.name} ${p.phone}` }, `☎ ${p.phone}`) : null,
    );
  }

  function historySection(audit, timeZone) {
    const list = [...(audit ?? [])].sort((a, b) => b.seq - a.seq);
    return h('section', { class: 'panel', 'data-testid': 'roster-history' },
      h('h3', {}, w('history')),
      list.length === 0 ? h('p', { class: 'empty' }, w('noHistory')) : h('ol', { class: 'history' }, list.map((e) =>
        h('li', { 'data-testid': 'history-entry', 'data-seq': e.seq, 'data-by': e.by, 'data-ts': e.ts },
          h('div', { class: 'history-head' }, h('strong', {}, fmtWhen(e.ts, timeZone)), ` · ${w('by')} ${e.by}`),
          h('ul', { class: 'changes' }, e.changes.map((c) => h('li', { 'data-testid': 'history-change' }, c))),
        ))),
    );
  }

  function startEdit() {
    editing = editForm(structuredClone(view.roster ?? blankRoster()));
    draw();
  }

  function blankRoster() {
    const base = { timezone: 'Asia/Shanghai', people: [], shifts: [] };
    return target.kind === 'provider' ? { providerId: target.id, ...base, managers: [] } : { homeId: target.id, ...base, directors: [] };
  }

  /**
   * The edit form over a copy of the roster (`model`): inputs write into it as they change; adding
   * or removing a row draws the form again from it. Fields the form does not show (a person's
   * channel addresses) are kept as they were.
   */
  function editForm(model) {
    const isProvider = target.kind === 'provider';
    const leadersKey = isProvider ? 'managers' : 'directors';
    const el = h('form', { class: 'panel roster-form', 'data-testid': 'roster-form', novalidate: true });
    const errors = h('div', { class: 'form-errors', 'data-testid': 'roster-errors', role: 'alert', hidden: true });
    let seq = 0;
    const freshId = (prefix, taken) => {
      let id;
      do id = `${prefix}${++seq}`; while (taken.some((x) => x.id === id));
      return id;
    };

    const field = (label, attrs, get, set, testid) => {
      const input = h('input', { ...attrs, value: get() ?? '', 'data-testid': testid });
      input.addEventListener('input', () => set(input.value));
      return h('label', { class: 'f' }, label, input);
    };

    function personRows(list, kind, testid) {
      return list.map((p, k) => h('fieldset', { class: 'row person-row', 'data-testid': testid, 'data-index': k },
        field(w('id'), { autocomplete: 'off', maxlength: 64 }, () => p.id, (v) => {
          const old = p.id;
          p.id = v.trim();
          // A person renamed keeps their shifts.
          if (kind === 'people') for (const s of model.shifts) s.people = s.people.map((x) => (x === old ? p.id : x));
        }, `${testid}-id`),
        field(w('name'), { maxlength: 100 }, () => p.name, (v) => (p.name = v), `${testid}-name`),
        field(w('role'), { maxlength: 50 }, () => p.role, (v) => (p.role = v), `${testid}-role`),
        field(w('phone'), { type: 'tel', inputmode: 'tel', maxlength: 21 }, () => p.phone, (v) => { if (v.trim()) p.phone = v.trim(); else delete p.phone; }, `${testid}-phone`),
        h('button', { type: 'button', class: 'btn ghost', 'data-testid': `${testid}-remove`, onclick: () => { list.splice(k, 1); if (kind === 'people') for (const s of model.shifts) s.people = s.people.filter((id) => list.some((x) => x.id === id)); redraw(); } }, `✕ ${w('remove')}`),
      ));
    }

    function shiftRows() {
      return model.shifts.map((s, k) => h('fieldset', { class: 'row shift-row', 'data-testid': 'shift-row', 'data-index': k },
        field(w('id'), { autocomplete: 'off', maxlength: 64 }, () => s.id, (v) => (s.id = v.trim()), 'shift-id'),
        field(w('shiftName'), { maxlength: 100 }, () => s.name, (v) => (s.name = v), 'shift-name'),
        field(w('start'), { type: 'time', step: 60 }, () => s.start, (v) => (s.start = v), 'shift-start'),
        field(w('end'), { type: 'time', step: 60 }, () => s.end, (v) => (s.end = v), 'shift-end'),
        h('div', { class: 'f days', role: 'group', 'aria-label': w('days') }, h('span', { class: 'f-label' }, w('days')),
          h('div', { class: 'checks' }, [1, 2, 3, 4, 5, 6, 7].map((d) => check(dayName(d), s.days.includes(d), (on) => { s.days = on ? [...new Set([...s.days, d])].sort() : s.days.filter((x) => x !== d); }, `shift-day-${d}`)))),
        h('div', { class: 'f on-shift', role: 'group', 'aria-label': w('onShift') }, h('span', { class: 'f-label' }, w('onShift')),
          h('div', { class: 'checks', 'data-shift-checks': k }, peopleChecks(s))),
        h('button', { type: 'button', class: 'btn ghost', 'data-testid': 'shift-remove', onclick: () => { model.shifts.splice(k, 1); redraw(); } }, `✕ ${w('remove')}`),
      ));
    }

    function peopleChecks(s) {
      return model.people.map((p) => check(p.name || p.id, s.people.includes(p.id), (on) => { s.people = on ? [...s.people, p.id] : s.people.filter((x) => x !== p.id); }, `shift-person-${p.id}`));
    }

    /** The shifts' person check boxes follow the people's names and ids, without redrawing the field being typed in. */
    function refreshShiftPeople() {
      model.shifts.forEach((s, k) => {
        const box = el.querySelector(`[data-shift-checks="${k}"]`);
        if (box) render(box, peopleChecks(s));
      });
    }

    function check(label, on, set, testid) {
      const box = h('input', { type: 'checkbox', checked: on, 'data-testid': testid });
      box.addEventListener('change', () => set(box.checked));
      return h('label', { class: 'check' }, box, h('span', {}, label));
    }

    function redraw() {
      render(el,
        h('h2', {}, `✎ ${w('edit')} · ${target.label}`),
        errors,
        field(w('timezone'), { maxlength: 64, autocomplete: 'off' }, () => model.timezone, (v) => (model.timezone = v.trim()), 'roster-timezone'),
        h('h3', {}, w('people')),
        personRows(model.people, 'people', 'person-row'),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'person-add', onclick: () => { model.people.push({ id: freshId('p', model.people), name: '', role: isProvider ? '护理员' : '护士' }); redraw(); focusLast('person-row-name'); } }, `＋ ${w('addPerson')}`),
        h('h3', {}, w('shifts')),
        shiftRows(),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'shift-add', onclick: () => { model.shifts.push({ id: freshId('s', model.shifts), name: '', days: [1, 2, 3, 4, 5, 6, 7], start: '08:00', end: '20:00', people: [] }); redraw(); focusLast('shift-name'); } }, `＋ ${w('addShift')}`),
        h('h3', {}, w(isProvider ? 'managers' : 'directors')),
        personRows(model[leadersKey], 'leaders', 'leader-row'),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'leader-add', onclick: () => { model[leadersKey].push({ id: freshId(isProvider ? 'm' : 'd', model[leadersKey]), name: '', role: isProvider ? 'manager' : '院长' }); redraw(); focusLast('leader-row-name'); } }, `＋ ${w(isProvider ? 'addManager' : 'addDirector')}`),
        h('div', { class: 'form-actions' },
          h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'roster-save' }, `✓ ${w('save')}`),
          h('button', { type: 'button', class: 'btn', 'data-testid': 'roster-cancel', onclick: () => { editing = null; draw(); } }, w('cancel')),
        ),
      );
      // A person's name or id typed: the shifts' check boxes name them.
      for (const input of el.querySelectorAll('[data-testid="person-row-name"], [data-testid="person-row-id"]')) input.addEventListener('input', () => refreshShiftPeople());
    }

    function focusLast(testid) {
      const all = el.querySelectorAll(`[data-testid="${testid}"]`);
      all[all.length - 1]?.focus();
    }

    /** What the schema and the server would refuse, said in the person's words before a round trip. */
    function problems() {
      const out = [];
      const ids = new Set();
      const person = (p, k, what) => {
        const label = `${what} ${k + 1}${p.name ? `（${p.name}）` : ''}`;
        if (!p.id) out.push(w('errRequired', { what: label, field: w('id') }));
        else if (!ID_RE.test(p.id)) out.push(w('errId', { what: label }));
        else if (ids.has(p.id)) out.push(w('errDup', { id: p.id }));
        if (p.id) ids.add(p.id);
        if (!p.name?.trim()) out.push(w('errRequired', { what: label, field: w('name') }));
        if (!p.role?.trim()) out.push(w('errRequired', { what: label, field: w('role') }));
        if (p.phone !== undefined && !PHONE_RE.test(p.phone)) out.push(w('errPhone', { what: label }));
      };
      if (!model.timezone) out.push(w('errRequired', { what: w('timezone'), field: w('timezone') }));
      model.people.forEach((p, k) => person(p, k, w('people')));
      const peopleIds = new Set(ids);
      ids.clear();
      model[leadersKey].forEach((p, k) => person(p, k, w(isProvider ? 'managers' : 'directors')));
      const shiftIds = new Set();
      model.shifts.forEach((s, k) => {
        const label = `${w('shifts')} ${k + 1}${s.name ? `（${s.name}）` : ''}`;
        if (!s.id) out.push(w('errRequired', { what: label, field: w('id') }));
        else if (!ID_RE.test(s.id)) out.push(w('errId', { what: label }));
        else if (shiftIds.has(s.id)) out.push(w('errDup', { id: s.id }));
        shiftIds.add(s.id);
        if (!s.name?.trim()) out.push(w('errRequired', { what: label, field: w('shiftName') }));
        if (!HHMM_RE.test(s.start) || !HHMM_RE.test(s.end)) out.push(w('errTime', { what: label }));
        if (s.days.length === 0) out.push(w('errDays', { what: label }));
        if (s.people.filter((id) => peopleIds.has(id)).length === 0) out.push(w('errNoPeople', { what: label }));
      });
      return out;
    }

    function showErrors(head, list) {
      errors.hidden = false;
      render(errors, h('strong', {}, head), h('ul', {}, list.map((x) => h('li', { 'data-testid': 'roster-error' }, x))));
      errors.scrollIntoView({ block: 'start' });
    }

    el.addEventListener('submit', async (e) => {
      e.preventDefault();
      const list = problems();
      if (list.length > 0) return showErrors(w('fixErrors'), list);
      errors.hidden = true;
      const save = el.querySelector('[data-testid="roster-save"]');
      save.disabled = true;
      try {
        await ctx.api.put(urlOf(target), { ...model, shifts: model.shifts.map((s) => ({ ...s, name: s.name.trim(), people: s.people.filter((id) => model.people.some((p) => p.id === id)) })) });
        editing = null;
        ctx.toast(`${w('saved')} ✓`);
        ctx.onSaved?.(target);
        await load();
      } catch (err) {
        // A 401 has already taken the page to the login form.
        if (err.status !== 401) showErrors(w('refused'), [`${err.code ?? ''}: ${err.message}`]);
      } finally {
        save.disabled = false;
      }
    });

    redraw();
    return { el };
  }

  return {
    show() {
      if (!editing) void load();
    },
    /** Unacknowledged incidents wait meanwhile: a bar at the top leads back to them. */
    setWaiting(n) {
      waitingBar.hidden = n === 0;
      render(waitingBar, `▲ ${w('waiting', { n })}`);
    },
  };
}
