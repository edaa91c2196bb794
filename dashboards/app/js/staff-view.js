import { h, render } from './dom.js';
import { nm, t } from './i18n.js';
import { alertCard, countdown } from './alert-card.js';
import { bySeverityThenNewest, deviceState, isFireAlarm } from './alert-model.js';
import { lineChart } from './chart.js';

const FIRE_KINDS = ['smoke_detector', 'heat_detector', 'manual_call_point', 'electrical_fire_monitor', 'gas_detector', 'water_pressure_sensor'];
const KIND_ICON = { smoke_detector: '◎', heat_detector: '℃', manual_call_point: '☎', electrical_fire_monitor: '⚡', gas_detector: '◇', water_pressure_sensor: '≈' };
const STATE_ICON = { normal: '✓', prealarm: '!', alarm: '▲', supervisory: '⚠', trouble: '⚒', offline: '✕', unknown: '?' };
const METRIC_LABEL = { heart_rate_bpm: 'hr', spo2_pct: 'spo2', resp_rate_bpm: 'rr', body_temp_c: 'temp' };
const MAIN_METRIC = { smoke_detector: 'smoke_obscuration_pct_per_m', heat_detector: 'temperature_c', electrical_fire_monitor: 'residual_current_ma', gas_detector: 'gas_lel_pct', water_pressure_sensor: 'water_pressure_mpa' };

/**
 * Duty staff view of one home: pinned fire alarms, the active alert list, floors with each fire
 * sensor's state (colour AND icon AND text, not colour alone), resident tiles, and a history chart.
 */
export function createStaffView(root, ctx) {
  const homeId = ctx.user.homeId ?? [...ctx.homes.keys()][0];
  let live = null;
  const pinned = h('section', { class: 'pinned', 'data-testid': 'pinned-zone', 'aria-live': 'assertive' });
  const alertList = h('div', { class: 'alert-list', 'data-testid': 'alert-list' });
  const plan = h('div', { class: 'plan', 'data-testid': 'floor-plan' });
  const residents = h('div', { class: 'residents', 'data-testid': 'resident-tiles' });
  const chart = h('section', { class: 'panel chart-panel', 'data-testid': 'chart-panel', hidden: true });

  render(root,
    pinned,
    h('div', { class: 'staff-grid' },
      h('section', { class: 'panel alerts-panel' }, h('h2', {}, t('alerts')), alertList),
      h('div', { class: 'side' },
        h('section', { class: 'panel' }, h('h2', {}, `${t('floors')} · ${nm(ctx.homes.get(homeId))}`), plan),
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

  function renderAlerts() {
    const now = ctx.now();
    const open = ctx.model.open().filter((a) => a.homeId === homeId).sort(bySeverityThenNewest);
    const opts = { homes: ctx.homes, now, actions: ctx.actions, canAct: true };
    // Unacknowledged fire alarms stay pinned (sticky) until someone acknowledges them.
    const pins = open.filter((a) => isFireAlarm(a) && a.acknowledgedAt === undefined);
    pinned.hidden = pins.length === 0;
    render(pinned, pins.map((a) => h('div', { class: 'pin', 'data-testid': 'pinned-fire', 'data-alert-id': a.id }, alertCard(a, opts))));
    const rest = open.filter((a) => !pins.includes(a));
    render(alertList, rest.length ? rest.map((a) => alertCard(a, opts)) : (open.length ? h('p', { class: 'empty' }, t('noOtherAlerts')) : h('p', { class: 'empty', 'data-testid': 'no-alerts' }, t('noAlerts'))));
    ctx.setSound(open);
  }

  function renderPlan() {
    const home = ctx.homes.get(homeId);
    if (!home) return;
    const open = ctx.model.open();
    const devices = live?.devices ?? [];
    render(plan, home.floors.map((f) =>
      h('div', { class: 'floor' }, h('h3', {}, nm(f)),
        h('div', { class: 'rooms' }, f.rooms.map((r) => {
          const ds = devices.filter((d) => d.roomId === r.id && FIRE_KINDS.includes(d.kind));
          const states = ds.map((d) => deviceState(d.id, open, d));
          const worst = ['alarm', 'prealarm', 'supervisory', 'trouble', 'offline'].find((s) => states.includes(s)) ?? 'normal';
          return h('div', { class: `room st-${worst}`, 'data-testid': `room-${r.id}`, 'data-state': worst },
            h('div', { class: 'room-name' }, nm(r)),
            h('div', { class: 'devices' }, ds.map((d, i) =>
              h('button', { class: `dev st-${states[i]}`, 'data-testid': `device-${d.id}`, 'data-state': states[i], title: d.id, onclick: () => MAIN_METRIC[d.kind] && showChart(d.id, `device=${encodeURIComponent(d.id)}&metric=${MAIN_METRIC[d.kind]}`) },
                h('span', { class: 'k', 'aria-hidden': 'true' }, KIND_ICON[d.kind] ?? '•'),
                h('span', { class: 's', 'aria-hidden': 'true' }, STATE_ICON[states[i]]),
                h('span', { class: 'txt' }, t(`dev_${states[i]}`)),
              ))),
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
    const careOpen = ctx.model.open().filter((a) => a.category === 'care');
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
    try {
      live = await ctx.api.get(`/api/live/home/${encodeURIComponent(homeId)}`);
      ctx.syncClock(live.now);
    } catch {
      // Live tiles are a convenience: alerts keep flowing over socket.io without them.
    }
    renderPlan();
    renderResidents();
  }

  return {
    homeId,
    renderAlerts() {
      renderAlerts();
      renderPlan();
    },
    refreshLive,
    /** Once a second: countdowns only, so a comment being typed is not wiped out. */
    tick() {
      const now = ctx.now();
      for (const el of root.querySelectorAll('[data-testid="countdown"]')) {
        const card = el.closest('[data-alert-id]');
        const a = card && ctx.model.get(card.dataset.alertId);
        const next = a && countdown(a, now, ctx.homes.get(a.homeId));
        if (next) el.replaceWith(next);
      }
    },
  };
}
