import { h, keepingDrafts, render, tapSafe } from './dom.js';
import { fmtTime, nm, t } from './i18n.js';
import { alertCard, countdown } from './alert-card.js';
import { bySeverityThenNewest, deviceState, isFireAlarm } from './alert-model.js';
import { incidentCard, incidentCountdown, roomName } from './incident-card.js';
import { disablementFor, incidentOrder, isFireIncident, standaloneAlerts } from './incident-model.js';
import { lineChart } from './chart.js';

const FIRE_KINDS = ['smoke_detector', 'heat_detector', 'manual_call_point', 'electrical_fire_monitor', 'gas_detector', 'water_pressure_sensor'];
const KIND_ICON = { smoke_detector: '◎', heat_detector: '℃', manual_call_point: '☎', electrical_fire_monitor: '⚡', gas_detector: '◇', water_pressure_sensor: '≈' };
const STATE_ICON = { normal: '✓', prealarm: '!', alarm: '▲', supervisory: '⚠', trouble: '⚒', offline: '✕', unknown: '?' };
const METRIC_LABEL = { heart_rate_bpm: 'hr', spo2_pct: 'spo2', resp_rate_bpm: 'rr', body_temp_c: 'temp' };
/** Durations offered for a disablement, minutes (contract MAX_DISABLEMENT_MS: at most 24 h). */
const DURATIONS_MIN = [15, 30, 60, 120, 240, 480, 720, 1440];
const SEVERITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
const MAIN_METRIC = { smoke_detector: 'smoke_obscuration_pct_per_m', heat_detector: 'temperature_c', electrical_fire_monitor: 'residual_current_ma', gas_detector: 'gas_lel_pct', water_pressure_sensor: 'water_pressure_mpa' };

/**
 * Duty staff view of one home: pinned fire alarms, the active alert list, floors with each fire
 * sensor's state (colour AND icon AND text, not colour alone), resident tiles, and a history chart.
 *
 * A home-care provider's caregiver (issue 15) looks after several households: the alert list and
 * the pinned fires cover all of them (each card names its household), so a call in one household is
 * never hidden behind another's floor plan; a strip of household tabs, each with its open count and
 * an alarm mark, chooses whose rooms, devices and residents are shown.
 */
export function createStaffView(root, ctx) {
  /** The homes this person is on duty for: their own home, or (a provider) every household the server lists. */
  const homeIds = ctx.user.homeId ? [ctx.user.homeId] : [...ctx.homes.keys()];
  const multi = homeIds.length > 1;
  const mine = new Set(homeIds);
  let homeId = homeIds[0];
  let live = null;
  const pinned = h('section', { class: 'pinned', 'data-testid': 'pinned-zone', 'aria-live': 'assertive' });
  const alertList = h('div', { class: 'alert-list', 'data-testid': 'alert-list' });
  const plan = h('div', { class: 'plan', 'data-testid': 'floor-plan' });
  const residents = h('div', { class: 'residents', 'data-testid': 'resident-tiles' });
  const chart = h('section', { class: 'panel chart-panel', 'data-testid': 'chart-panel', hidden: true });
  const homeBanner = h('div', { class: 'home-disabled', 'data-testid': 'home-disabled', role: 'status', hidden: true });
  const disList = h('div', { class: 'dis-list', 'data-testid': 'disablement-list' });
  const canDisable = ctx.user.role === 'director' || ctx.user.role === 'admin';
  const disForm = canDisable ? disablementForm() : null;
  const disPanel = h('section', { class: 'panel dis-panel', 'data-testid': 'disablement-panel' }, h('h2', {}, `⊘ ${t('disablements')}`), disList, disForm);

  const tabs = h('nav', { class: 'home-tabs', 'data-testid': 'home-tabs', hidden: !multi });
  const planTitle = h('h2', {}, `${t('floors')} · ${nm(ctx.homes.get(homeId))}`);

  render(root,
    pinned,
    tabs,
    homeBanner,
    h('div', { class: 'staff-grid' },
      h('section', { class: 'panel alerts-panel' }, h('h2', {}, t('alerts')), alertList),
      h('div', { class: 'side' },
        h('section', { class: 'panel' }, planTitle, plan),
        disPanel,
        h('section', { class: 'panel' }, h('h2', {}, t('residents')), residents),
        chart,
      ),
    ),
  );

  async function showChart(title, query) {
    chart.hidden = false;
    render(chart, h('h2', {}, `${t('history')} · ${title}`, h('button', { class: 'btn ghost close', onclick: () => (chart.hidden = true) }, t('close'))), h('p', {}, t('loading')));
    try {
      const r = await ctx.api.get(`/api/history?${query}&range=6h`);
      render(chart,
        h('h2', {}, `${t('history')} · ${title}`, h('button', { class: 'btn ghost close', onclick: () => (chart.hidden = true) }, t('close'))),
        h('div', { class: 'charts' }, r.series.slice(0, 4).map((s) => lineChart(s, { label: METRIC_LABEL[s.metric] ? t(METRIC_LABEL[s.metric]) : s.metric }))),
      );
    } catch (err) {
      render(chart, h('p', { class: 'error' }, `${t('error')}: ${err.message}`));
    }
  }

  /** A member alert's acknowledgement time: an incident re-alerted by a new point keeps it on its earlier members. */
  const ackOf = (alertId) => ctx.model.get(alertId)?.acknowledgedAt;

  /** Live devices by id (kind, room), for naming an incident's points ("感烟探测器 h01-sd-r101"). */
  function deviceMap() {
    return new Map((live?.devices ?? []).map((d) => [d.id, d]));
  }

  /**
   * One card per open incident (issue 11), its member alerts inside it; an alert without an incident
   * (an older server, or its incident not here yet) keeps a card of its own so nothing is hidden.
   */
  const whenTapDone = tapSafe(root);

  function renderAlerts() {
    whenTapDone(() => keepingDrafts(root, renderAlertsNow));
  }

  function renderAlertsNow() {
    const now = ctx.now();
    const openAlerts = ctx.model.open().filter((a) => mine.has(a.homeId));
    const openIncidents = ctx.incidents.open().filter((i) => mine.has(i.homeId)).sort(incidentOrder);
    const alone = standaloneAlerts(openAlerts, ctx.incidents).sort(bySeverityThenNewest);
    const devices = deviceMap();
    const aOpts = { homes: ctx.homes, now, actions: ctx.actions, canAct: true };
    const iOpts = { homes: ctx.homes, now, actions: ctx.actions, canAct: true, devices, silenced: ctx.silenced, onSilence: ctx.silence, ackOf, notifiedOf: ctx.notifiedOf, personName: ctx.personName };
    // Unacknowledged fire alarms stay pinned (sticky) until someone acknowledges them: one per incident.
    const pinI = openIncidents.filter((i) => isFireIncident(i) && i.acknowledgedAt === undefined);
    const pinA = alone.filter((a) => isFireAlarm(a) && a.acknowledgedAt === undefined);
    pinned.hidden = pinI.length + pinA.length === 0;
    render(pinned,
      pinI.map((i) => h('div', { class: 'pin', 'data-testid': 'pinned-fire', 'data-incident-id': i.id }, whose(i.homeId), incidentCard(i, iOpts))),
      pinA.map((a) => h('div', { class: 'pin', 'data-testid': 'pinned-fire', 'data-alert-id': a.id }, whose(a.homeId), alertCard(a, aOpts))),
    );
    // Incidents and lone alerts in one list, most severe first, then newest.
    const rest = [
      ...openIncidents.filter((i) => !pinI.includes(i)).map((i) => ({ sev: i.severity, ts: i.openedAt, el: () => withHome(i.homeId, incidentCard(i, iOpts)) })),
      ...alone.filter((a) => !pinA.includes(a)).map((a) => ({ sev: a.severity, ts: a.raisedAt, el: () => withHome(a.homeId, alertCard(a, aOpts)) })),
    ].sort((x, y) => (SEVERITY_RANK[x.sev] ?? 9) - (SEVERITY_RANK[y.sev] ?? 9) || y.ts - x.ts);
    const any = openIncidents.length + alone.length > 0;
    render(alertList, rest.length ? rest.map((x) => x.el()) : (any ? h('p', { class: 'empty' }, t('noOtherAlerts')) : h('p', { class: 'empty', 'data-testid': 'no-alerts' }, t('noAlerts'))));
    ctx.setSound(alone, openIncidents);
    renderTabs(openIncidents, alone);
    // The incident a link or a notification click asked for stays marked across re-renders (js/notify.js).
    const focused = document.body.dataset.focusedIncident;
    if (focused) root.querySelector(`[data-incident-id="${CSS.escape(focused)}"]`)?.classList.add('focused-incident');
  }

  /** With several households, every card says whose it is (nothing to add for one home's staff). */
  function whose(id) {
    return multi ? h('div', { class: 'card-home', 'data-testid': 'card-home', 'data-home-id': id }, `⌂ ${nm(ctx.homes.get(id)) || id}`) : null;
  }

  function withHome(id, card) {
    return multi ? h('div', { class: 'card-with-home', 'data-home-id': id }, whose(id), card) : card;
  }

  /** One tab per household: its name, its open count, and an alarm mark while any of it waits for someone. */
  function renderTabs(openIncidents, alone) {
    if (!multi) return;
    render(tabs, homeIds.map((id) => {
      const items = [...openIncidents.filter((i) => i.homeId === id), ...alone.filter((a) => a.homeId === id)];
      const waiting = items.some((x) => x.acknowledgedAt === undefined);
      return h('button', {
        class: `btn home-tab${id === homeId ? ' active' : ''}${waiting ? ' waiting' : ''}`,
        'data-testid': `home-tab-${id}`, 'data-open': items.length, 'data-waiting': waiting ? 'true' : 'false',
        'aria-current': id === homeId ? 'page' : undefined,
        onclick: () => selectHome(id),
      }, waiting ? '▲ ' : '', nm(ctx.homes.get(id)) || id, items.length ? h('span', { class: 'count' }, ` ${items.length}`) : null);
    }));
  }

  /** Show another household's rooms, devices and residents (the alert list already covers all of them). */
  function selectHome(id) {
    if (id === homeId || !mine.has(id)) return;
    homeId = id;
    live = null;
    render(planTitle, `${t('floors')} · ${nm(ctx.homes.get(homeId))}`);
    renderAlerts();
    renderDisablements();
    disForm?.fillTargets();
    void refreshLive();
  }

  /** "已屏蔽至 10:30" / "In test until 10:30". */
  function disNote(d) {
    return t('disabledNote', { m: t(`mode_${d.mode}`), t: fmtTime(d.until) });
  }

  function targetText(d) {
    if (d.scope === 'home') return nm(ctx.homes.get(d.homeId)) || d.homeId;
    if (d.scope === 'room') return roomName(ctx.homes, d.homeId, d.targetId);
    const dev = deviceMap().get(d.targetId);
    return dev ? `${t(`dkind_${dev.kind}`)} ${d.targetId}（${roomName(ctx.homes, d.homeId, dev.roomId)}）` : d.targetId;
  }

  /** Every point out of fire alarming in this home, with its end time; directors may end one early. */
  function renderDisablements() {
    const list = ctx.disablements().filter((d) => d.homeId === homeId).sort((a, b) => a.until - b.until);
    const home = list.find((d) => d.scope === 'home');
    homeBanner.hidden = !home;
    render(homeBanner, home ? [`⊘ ${t('wholeHomeDisabled', { m: t(`mode_${home.mode}`), t: fmtTime(home.until) })}`, h('span', { class: 'dim' }, ` · ${home.reason} · ${home.by}`)] : null);
    if (home) {
      homeBanner.dataset.mode = home.mode;
      homeBanner.dataset.until = String(home.until);
    }
    render(disList, list.length === 0 ? h('p', { class: 'empty', 'data-testid': 'no-disablements' }, t('noDisablements')) : h('ul', { class: 'dis-items' }, list.map((d) =>
      h('li', { class: `dis-item mode-${d.mode}`, 'data-testid': 'disablement-item', 'data-disablement-id': d.id, 'data-scope': d.scope, 'data-target-id': d.targetId, 'data-mode': d.mode, 'data-until': d.until },
        h('div', { class: 'dis-what' }, h('span', { class: `badge dis-${d.mode}` }, `⊘ ${t(`mode_${d.mode}`)}`), ' ', h('strong', {}, `${t(`scope_${d.scope}`)} · ${targetText(d)}`)),
        h('div', { class: 'dis-meta' },
          h('span', { class: 'dis-until', 'data-testid': 'disablement-until' }, `${t('until')} ${fmtTime(d.until)}`),
          h('span', {}, `${t('reason')}：${d.reason}`),
          h('span', {}, `${t('by')}：${d.by}`),
          d.suppressedSignals > 0 ? h('span', { 'data-testid': 'disablement-suppressed' }, `${t('suppressed')}：${d.suppressedSignals}`) : null,
        ),
        canDisable ? h('button', { class: 'btn', 'data-testid': 'btn-enable', onclick: (e) => { e.currentTarget.disabled = true; void ctx.actions.enable(d); } }, `↺ ${t('enableNow')}`) : null,
      ))));
    renderPlan();
  }

  /** A director puts a device, a room or the whole home in test or disabled mode, with a reason and a bounded duration. */
  function disablementForm() {
    const scope = h('select', { 'data-testid': 'dis-scope' }, ['device', 'room', 'home'].map((s) => h('option', { value: s }, t(`scope_${s}`))));
    const target = h('select', { 'data-testid': 'dis-target' });
    const mode = h('select', { 'data-testid': 'dis-mode' }, ['test', 'disabled'].map((m) => h('option', { value: m }, t(`mode_${m}`))));
    const reason = h('input', { 'data-testid': 'dis-reason', maxlength: 500, placeholder: t('reason'), required: true });
    const duration = h('select', { 'data-testid': 'dis-duration' }, DURATIONS_MIN.map((m) => h('option', { value: m, selected: m === 60 }, m < 60 ? t('minutes', { n: m }) : t('hours', { n: m / 60 }))));
    const fillTargets = () => {
      const keep = target.value;
      const home = ctx.homes.get(homeId);
      const opts = scope.value === 'home' ? [[homeId, nm(home)]]
        : scope.value === 'room' ? (home?.floors ?? []).flatMap((f) => f.rooms.map((r) => [r.id, `${nm(f)} · ${nm(r)}`]))
        : (live?.devices ?? []).filter((d) => FIRE_KINDS.includes(d.kind)).map((d) => [d.id, `${roomName(ctx.homes, homeId, d.roomId)} · ${t(`dkind_${d.kind}`)} ${d.id}`]);
      render(target, opts.map(([v, label]) => h('option', { value: v, selected: v === keep }, label)));
    };
    scope.addEventListener('change', fillTargets);
    const form = h('form', { class: 'dis-form', 'data-testid': 'disablement-form' },
      h('label', {}, t('scope'), scope), h('label', { class: 'wide' }, t('target'), target), h('label', {}, t('mode_test') + ' / ' + t('mode_disabled'), mode),
      h('label', {}, t('duration'), duration), h('label', { class: 'wide' }, t('reason'), reason),
      h('button', { class: 'btn danger', type: 'submit', 'data-testid': 'dis-submit' }, `⊘ ${t('disableSubmit')}`),
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!reason.value.trim()) return reason.focus();
      const submit = form.querySelector('[data-testid="dis-submit"]');
      submit.disabled = true;
      const r = await ctx.actions.disable({ homeId, scope: scope.value, targetId: target.value, mode: mode.value, reason: reason.value.trim(), durationMin: Number(duration.value) }).finally(() => (submit.disabled = false));
      if (r?.ok) reason.value = '';
    });
    form.fillTargets = fillTargets;
    fillTargets();
    return form;
  }

  function renderPlan() {
    const home = ctx.homes.get(homeId);
    if (!home) return;
    const open = ctx.model.open();
    const devices = live?.devices ?? [];
    const dis = ctx.disablements().filter((d) => d.homeId === homeId);
    render(plan, home.floors.map((f) =>
      h('div', { class: 'floor' }, h('h3', {}, nm(f)),
        h('div', { class: 'rooms' }, f.rooms.map((r) => {
          const ds = devices.filter((d) => d.roomId === r.id && FIRE_KINDS.includes(d.kind));
          const states = ds.map((d) => deviceState(d.id, open, d));
          const worst = ['alarm', 'prealarm', 'supervisory', 'trouble', 'offline'].find((s) => states.includes(s)) ?? 'normal';
          // A room (or the home) out of fire alarming says so, with its end time, on the room itself.
          const roomDis = dis.find((d) => d.scope === 'room' && d.targetId === r.id) ?? dis.find((d) => d.scope === 'home');
          return h('div', { class: `room st-${worst}${roomDis ? ` dis dis-${roomDis.mode}` : ''}`, 'data-testid': `room-${r.id}`, 'data-state': worst, 'data-disabled': roomDis?.mode, 'data-until': roomDis?.until },
            h('div', { class: 'room-name' }, nm(r)),
            roomDis ? h('div', { class: 'dis-note', 'data-testid': 'room-disabled' }, `⊘ ${disNote(roomDis)}`) : null,
            h('div', { class: 'devices' }, ds.map((d, i) => {
              const dd = disablementFor(dis, { homeId, roomId: d.roomId, deviceId: d.id });
              return h('button', { class: `dev st-${states[i]}${dd ? ` dis dis-${dd.mode}` : ''}`, 'data-testid': `device-${d.id}`, 'data-state': states[i], 'data-disabled': dd?.mode, 'data-until': dd?.until, title: dd ? `${d.id} · ${disNote(dd)} · ${dd.reason}` : d.id, onclick: () => MAIN_METRIC[d.kind] && showChart(d.id, `device=${encodeURIComponent(d.id)}&metric=${MAIN_METRIC[d.kind]}`) },
                h('span', { class: 'k', 'aria-hidden': 'true' }, KIND_ICON[d.kind] ?? '•'),
                // Out of fire alarming, a quiet detector is not "normal": the mode replaces the word (any other state stays shown).
                dd && ['normal', 'unknown'].includes(states[i]) ? null : h('span', { class: 's', 'aria-hidden': 'true' }, STATE_ICON[states[i]]),
                dd && ['normal', 'unknown'].includes(states[i]) ? null : h('span', { class: 'txt' }, t(`dev_${states[i]}`)),
                dd ? h('span', { class: 'dis-txt', 'data-testid': 'device-disabled' }, dd.scope === 'device' ? `⊘ ${disNote(dd)}` : `⊘ ${t(`mode_${dd.mode}`)}`) : null,
              );
            })),
          );
        }))),
    ));
  }

  function vital(label, v, unit, metric) {
    return h('div', { class: 'vital', 'data-testid': `vital-${metric}` }, h('span', { class: 'vl' }, label), h('span', { class: 'vv' }, v === undefined ? '—' : `${v}`), h('span', { class: 'vu' }, unit));
  }

  function renderResidents() {
    const home = ctx.homes.get(homeId);
    const now = ctx.now();
    const careOpen = ctx.model.open().filter((a) => a.category === 'care' && a.homeId === homeId);
    const byId = new Map((live?.residents ?? []).map((r) => [r.id, r]));
    render(residents, (home?.residents ?? []).map((base) => {
      const r = byId.get(base.id);
      const v = r?.vitals ?? {};
      const news = r?.news2;
      const alerting = careOpen.some((a) => a.residentId === base.id);
      const turnMs = r?.nextTurnDueAt != null ? r.nextTurnDueAt - now : null;
      const newsCls = news ? (news.aggregate >= 7 ? 'n-high' : news.aggregate >= 5 ? 'n-med' : 'n-low') : '';
      return h('div', { class: `resident${alerting ? ' alerting' : ''}`, 'data-testid': `resident-${base.id}`, onclick: () => showChart(base.name, `resident=${encodeURIComponent(base.id)}`) },
        h('div', { class: 'res-head' }, h('strong', {}, base.name), h('span', { class: 'dim' }, `${nm(home.floors.flatMap((f) => f.rooms).find((x) => x.id === base.roomId))} ${t('bed', { b: base.bed })}`)),
        h('div', { class: 'vitals' },
          vital(t('hr'), v.heart_rate_bpm, 'bpm', 'heart_rate_bpm'), vital(t('spo2'), v.spo2_pct, '%', 'spo2_pct'),
          vital(t('rr'), v.resp_rate_bpm, '/min', 'resp_rate_bpm'), vital(t('temp'), typeof v.body_temp_c === 'number' ? v.body_temp_c.toFixed(1) : undefined, '°C', 'body_temp_c'),
        ),
        h('div', { class: 'res-foot' },
          h('span', { class: `news ${newsCls}`, 'data-testid': 'news2' }, `${t('news2')} ${news ? news.aggregate : '—'}`, 
            // NEWS2 with parameters missing is a partial score (RCP 2017): marked, with what is missing.
            news?.partial ? h('span', { class: 'partial', 'data-testid': 'news2-partial', title: `${t('missing')}: ${(news.missing ?? []).join(', ')}` }, t('partial')) : null),
          h('span', { 'data-testid': 'bed' }, r?.bedOccupied === true ? `▭ ${t('inBed')}` : r?.bedOccupied === false ? `⚠ ${t('outOfBed')}` : t('bedUnknown')),
          h('span', { 'data-testid': 'wetness' }, `≈ ${t('wet')} ${r?.wetnessPct ?? '—'}%`),
          h('span', { 'data-testid': 'next-turn', class: turnMs !== null && turnMs < 0 ? 'late' : '', 'data-minutes': turnMs === null ? undefined : Math.max(0, Math.round(turnMs / 60000)), title: t('nextTurn') },
            `↻ ${turnMs === null ? `${t('nextTurn')} —` : turnMs < 0 ? t('turnOverdue') : `${t('nextTurn')} ${Math.round(turnMs / 60000)} ${t('min')}`}`),
        ),
      );
    }));
  }

  async function refreshLive() {
    const asked = homeId;
    try {
      const next = await ctx.api.poll(`/api/live/home/${encodeURIComponent(asked)}`, ctx.pollTimeoutMs);
      ctx.pollDone?.(true);
      // A tab chosen while the request was out: its own request draws it, not this stale answer.
      if (asked !== homeId) return;
      live = next;
      ctx.syncClock(live.now);
    } catch (err) {
      // Live tiles are a convenience: alerts keep flowing over socket.io without them. But a poll
      // that fails says the server is not reachable from here: the banner shows it (not "connected").
      if (err?.status === undefined || err.status >= 500) ctx.pollDone?.(false);
      else if (err.status !== 401) ctx.pollDone?.(true);
    }
    if (disForm && disForm.querySelector('[data-testid="dis-target"]').options.length === 0) disForm.fillTargets();
    renderPlan();
    renderResidents();
  }

  return {
    get homeId() {
      return homeId;
    },
    selectHome,
    renderAlerts() {
      renderAlerts();
      renderPlan();
    },
    renderDisablements,
    refreshLive,
    /** Once a second: countdowns only, so a comment being typed is not wiped out. */
    tick() {
      const now = ctx.now();
      for (const el of root.querySelectorAll('[data-testid="countdown"]')) {
        const card = el.closest('[data-incident-id], [data-alert-id]');
        let next = null;
        if (card?.dataset.incidentId) {
          const i = ctx.incidents.get(card.dataset.incidentId);
          next = i && incidentCountdown(i, now, ctx.homes.get(i.homeId), ackOf);
        } else if (card) {
          const a = ctx.model.get(card.dataset.alertId);
          next = a && countdown(a, now, ctx.homes.get(a.homeId));
        }
        if (next) el.replaceWith(next);
      }
    },
  };
}
