import { h, render } from './dom.js';
import { bi, fmtDuration, fmtTime, getLang, nm, t } from './i18n.js';
import { whereText } from './alert-card.js';
import { homeState, isCall119, isFireAlarm, BUREAU_LEVEL } from './alert-model.js';
import { deviceText, roomName, roomText } from './incident-card.js';
import { firstPoint, incidentSoundClass, isCall119Incident, isFireIncident, standaloneAlerts } from './incident-model.js';

const HOME_ICON = { normal: '✓', fire: '▲', escalated: '☎', trouble: '⚒', comm: '✕' };
const CLASSES = ['alarm', 'supervisory', 'trouble', 'care'];
/** Statistics headings added with docs/statistics.md (kept here: i18n.js belongs to the page's owners). */
const STATS_LABELS = {
  fireAck: ['火警确认 中位/P95', 'Fire ack median/p95'],
  fireResolve: ['火警解除 中位/P95', 'Fire resolve median/p95'],
  careAck: ['护理急症确认 中位/P95', 'Care emergency ack median/p95'],
  careResolve: ['护理急症解除 中位/P95', 'Care emergency resolve median/p95'],
  missed: ['漏处理警报', 'Missed alerts'],
  missedTip: ['超时升级或未确认即解除的警报', 'Escalated for a passed deadline, or resolved without acknowledgement'],
  onlineTip: ['设备在线时长 ÷ 设备统计时长（按状态变化，自首次上报起计）', 'Online device-time over device-time, from status changes, each device from its first report'],
  turnsTip: ['按时翻身 / 应翻身次数（间隔 + 15 分钟宽限）', 'Turns on time / turns due (interval + 15 min grace)'],
};
const sl = (key) => STATS_LABELS[key][getLang() === 'en' ? 1 : 0];
/** Issue 15 "elders who live at home": the households section's words (kept here, as above). */
const HH_LABELS = {
  households: ['居家老人', 'Elders living at home'],
  household: ['住户', 'Household'],
  address: ['地址', 'Address'],
  provider: ['服务机构', 'Home-care provider'],
  residents: ['老人', 'Resident'],
  kindHousehold: ['居家', 'at home'],
};
const hl = (key) => HH_LABELS[key][getLang() === 'en' ? 1 : 0];
const isHousehold = (home) => home?.kind === 'household';

/**
 * Bureau view: the nine homes at a glance, the elders living at home with their home-care provider
 * (issue 15), every fire alarm with its escalation and step timings (call-119 on top), and monthly
 * statistics with a CSV download.
 */
export function createBureauView(root, ctx) {
  let summary = null;
  const grid = h('div', { class: 'home-grid', 'data-testid': 'home-grid' });
  const households = h('div', { class: 'table-wrap', 'data-testid': 'households' });
  const fires = h('div', { class: 'fire-list', 'data-testid': 'fire-list' });
  const disabled = h('div', { class: 'table-wrap', 'data-testid': 'bureau-disablements' });
  const statsBody = h('div', { class: 'stats', 'data-testid': 'stats' });
  const now = new Date(ctx.now() + 8 * 3_600_000);
  const month = h('input', { type: 'month', 'data-testid': 'stats-month', value: `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}` });

  render(root,
    h('section', { class: 'panel' }, h('h2', {}, t('homes')), grid),
    h('section', { class: 'panel', 'data-testid': 'households-panel' }, h('h2', {}, hl('households')), households),
    h('section', { class: 'panel' }, h('h2', {}, t('fireAlerts')), fires),
    h('section', { class: 'panel' }, h('h2', {}, `⊘ ${t('disablements')}`), disabled),
    h('section', { class: 'panel' },
      h('h2', {}, t('statistics')),
      h('div', { class: 'stats-bar' },
        h('label', {}, `${t('month')} `, month),
        h('button', { class: 'btn', 'data-testid': 'stats-load', title: t('refresh'), onclick: () => void loadStats() }, `↻ ${t('refresh')}`),
        h('button', { class: 'btn primary', 'data-testid': 'stats-csv', onclick: () => void ctx.api.download(`/api/stats.csv?month=${month.value}`, `carewatch-stats-${month.value}.csv`) }, `⬇ ${t('downloadCsv')}`),
      ),
      statsBody,
    ),
  );
  const statsAt = h('span', { class: 'dim', 'data-testid': 'stats-at' });
  root.querySelector('.stats-bar').append(statsAt);
  month.addEventListener('change', () => void loadStats());

  /** Open incidents and lone alerts of a home, per signal class (one fire through three rooms is one). */
  const openOf = (homeId, mine, c) => ctx.incidents.open().filter((i) => i.homeId === homeId && i.signal === c).length + standaloneAlerts(mine, ctx.incidents).filter((a) => a.signal === c).length;

  /** Households apart from the care homes: one row each, with its provider and its state. */
  function renderHouseholds(all) {
    const list = [...ctx.homes.values()].filter(isHousehold);
    households.closest('section').hidden = list.length === 0;
    if (list.length === 0) return render(households);
    render(households, h('table', { class: 'households' },
      h('thead', {}, h('tr', {}, [hl('household'), hl('address'), hl('provider'), hl('residents'), t('state'), ...CLASSES.map((c) => t(`cls_${c}`)), t('devicesOnline')].map((x) => h('th', {}, x)))),
      h('tbody', {}, list.map((home) => {
        const mine = all.filter((a) => a.homeId === home.id);
        const s = summary?.homes.find((x) => x.homeId === home.id);
        let state = homeState(mine);
        if (state === 'normal' && s && s.devicesTotal > 0 && s.devicesOnline === 0) state = 'comm';
        return h('tr', { class: `hs-${state}`, 'data-testid': `household-row-${home.id}`, 'data-state': state, 'data-provider': home.provider?.id ?? '' },
          h('td', { class: 'c-home' }, h('strong', {}, nm(home))),
          h('td', { 'data-label': hl('address') }, home.address ?? ''),
          h('td', { 'data-testid': 'household-provider', 'data-label': hl('provider') }, home.provider ? nm(home.provider) : '—', home.provider?.phone ? h('div', { class: 'dim' }, home.provider.phone) : null),
          h('td', { 'data-label': hl('residents') }, (home.residents ?? []).map((r) => r.name).join('、') || '—'),
          h('td', { 'data-testid': 'home-state', 'data-label': t('state') }, `${HOME_ICON[state]} ${t(`home_${state}`)}`),
          CLASSES.map((c) => {
            const n = openOf(home.id, mine, c);
            return h('td', { class: `cls c-${c}${n ? ' on' : ''}`, 'data-testid': `open-${c}`, 'data-label': t(`cls_${c}`) }, String(n));
          }),
          h('td', { 'data-testid': 'devices-online', 'data-label': t('devicesOnline') }, s ? `${s.devicesOnline}/${s.devicesTotal}` : `—/${home.devices}`),
        );
      })),
    ));
  }

  function renderGrid() {
    const all = ctx.model.open();
    renderHouseholds(all);
    render(grid, [...ctx.homes.values()].filter((home) => !isHousehold(home)).map((home) => {
      const mine = all.filter((a) => a.homeId === home.id);
      const s = summary?.homes.find((x) => x.homeId === home.id);
      let state = homeState(mine);
      // No device of the home reporting at all is a communication loss even before an alert says so.
      if (state === 'normal' && s && s.devicesTotal > 0 && s.devicesOnline === 0) state = 'comm';
      return h('div', { class: `home-card hs-${state}`, 'data-testid': `home-card-${home.id}`, 'data-state': state },
        h('div', { class: 'hc-head' }, h('strong', {}, nm(home)), h('span', { class: 'hc-state', 'data-testid': 'home-state' }, `${HOME_ICON[state]} ${t(`home_${state}`)}`)),
        h('div', { class: 'hc-classes' }, CLASSES.map((c) => {
          // Counted per incident: one fire through three rooms is one fire (issue 11).
          const n = openOf(home.id, mine, c);
          return h('span', { class: `cls c-${c}${n ? ' on' : ''}`, 'data-testid': `open-${c}` }, `${t(`cls_${c}`)} ${n}`);
        })),
        h('div', { class: 'hc-foot' },
          h('span', { 'data-testid': 'devices-online', class: s && s.devicesOnline < s.devicesTotal ? 'warn' : '' }, `${t('devicesOnline')} ${s ? `${s.devicesOnline}/${s.devicesTotal}` : `—/${home.devices}`}`),
          h('span', { 'data-testid': 'news2-high' }, `${t('news2High')} ${s ? s.residentsNews2AtLeast5 : '—'}`),
        ),
      );
    }));
  }

  const confText = (c) => t({ real_fire: 'realFire', false_alarm: 'falseAlarm', test: 'test', fault: 'fault' }[c] ?? '');

  /** One row per incident (issue 11): a fire spreading through three rooms is one row, not three. */
  function incidentRow(i, n) {
    const p = firstPoint(i);
    const cls = incidentSoundClass(i);
    const call = isCall119Incident(i);
    return h('tr', { class: `${call ? 'row119' : ''} st-${i.state}`, 'data-testid': 'incident-row', 'data-incident-id': i.id, 'data-first-alert-id': i.firstAlertId, 'data-alert-ids': i.points.map((p) => p.alertId).join(' '), 'data-state': i.state, 'data-confirmation': i.confirmation ?? '', 'data-kind': i.kind, 'data-points': i.points.length },
      h('td', { class: 'c-home' }, nm(ctx.homes.get(i.homeId)) || i.homeId),
      h('td', { 'data-testid': 'incident-kind', 'data-label': t('kind') }, t(`kind_${i.kind}`), h('div', {}, h('span', { class: `badge cls-${cls}` }, t(`cls_${cls}`)))),
      h('td', { class: 'c-where', 'data-testid': 'incident-first-point', 'data-label': t('firstPoint') },
        p ? [h('strong', {}, p.roomId ? roomText(ctx.homes, i.homeId, p.roomId) : deviceText(p.deviceId) || t('scope_home')), h('div', { class: 'dim' }, `${bi(p.message)}${p.deviceId ? ` · ${p.deviceId}` : ''}`)] : bi(i.message)),
      h('td', { 'data-testid': 'incident-rooms', 'data-label': t('rooms') }, i.roomIds.map((r) => roomName(ctx.homes, i.homeId, r)).join('、') || '—', h('div', { class: 'dim' }, t('points', { n: i.points.length }))),
      h('td', { 'data-testid': 'incident-severity', 'data-label': t('severity') }, h('span', { class: `badge sev sev-${i.severity}` }, t(`sev_${i.severity}`))),
      h('td', { 'data-label': t('since') }, fmtTime(i.openedAt)),
      h('td', { 'data-testid': 'fire-escalation', 'data-label': t('level') }, call ? h('span', { class: 'badge call119' }, t('escalated119')) : `L${i.escalationLevel ?? 0}`),
      h('td', { 'data-testid': 'fire-ack', 'data-label': t('raisedToAck') }, i.acknowledgedAt ? `${fmtDuration(i.acknowledgedAt - i.openedAt)} ${i.acknowledgedBy ?? ''}` : i.state === 'resolved' ? '—' : `… ${fmtDuration(n - i.openedAt)}`),
      h('td', { 'data-testid': 'fire-confirm', 'data-label': t('ackToConfirm') }, i.confirmedAt ? `${fmtDuration(i.confirmedAt - (i.acknowledgedAt ?? i.openedAt))} ${confText(i.confirmation)}` : '—'),
      h('td', { 'data-label': t('toResolve') }, i.resolvedAt ? fmtDuration(i.resolvedAt - i.openedAt) : '—'),
      h('td', { 'data-testid': 'incident-state', 'data-label': t('state') }, h('span', { class: `badge state-${i.state}` }, t(`state_${i.state}`))),
    );
  }

  /** A fire alarm from a server without incidents: its own row, as before issue 11. */
  function alertRow(a, n) {
    return h('tr', { class: `${isCall119(a) ? 'row119' : ''} st-${a.state}`, 'data-testid': 'fire-row', 'data-alert-id': a.id, 'data-state': a.state, 'data-confirmation': a.confirmation ?? '' },
      h('td', { class: 'c-home' }, nm(ctx.homes.get(a.homeId)) || a.homeId),
      h('td', { 'data-label': t('kind') }, t('kind_fire')),
      h('td', { class: 'c-where' }, whereText(a, ctx.homes, { withHome: false }), h('div', { class: 'dim' }, bi(a.message))),
      h('td', { 'data-label': t('rooms') }, a.roomId ? roomName(ctx.homes, a.homeId, a.roomId) : '—'),
      h('td', { 'data-label': t('severity') }, h('span', { class: `badge sev sev-${a.severity}` }, t(`sev_${a.severity}`))),
      h('td', { 'data-label': t('since') }, fmtTime(a.raisedAt)),
      h('td', { 'data-testid': 'fire-escalation', 'data-label': t('level') }, isCall119(a) ? h('span', { class: 'badge call119' }, t('escalated119')) : `L${a.escalationLevel ?? 0}`),
      h('td', { 'data-testid': 'fire-ack', 'data-label': t('raisedToAck') }, a.acknowledgedAt ? `${fmtDuration(a.acknowledgedAt - a.raisedAt)} ${a.acknowledgedBy ?? ''}` : a.state === 'resolved' ? '—' : `… ${fmtDuration(n - a.raisedAt)}`),
      h('td', { 'data-testid': 'fire-confirm', 'data-label': t('ackToConfirm') }, a.confirmedAt ? `${fmtDuration(a.confirmedAt - (a.acknowledgedAt ?? a.raisedAt))} ${confText(a.confirmation)}` : '—'),
      h('td', { 'data-label': t('toResolve') }, a.resolvedAt ? fmtDuration(a.resolvedAt - a.raisedAt) : '—'),
      h('td', { 'data-label': t('state') }, h('span', { class: `badge state-${a.state}` }, t(`state_${a.state}`))),
    );
  }

  /** Fire incidents and anything escalated to the bureau, call-119 first, open before resolved, newest first. */
  function renderFires() {
    const n = ctx.now();
    const incs = ctx.incidents.all().filter((i) => i.kind === 'fire' || (i.escalationLevel ?? 0) >= BUREAU_LEVEL)
      .map((i) => ({ call: isCall119Incident(i), resolved: i.state === 'resolved', ts: i.openedAt, el: () => incidentRow(i, n) }));
    const lone = ctx.model.all().filter((a) => isFireAlarm(a) && (a.incidentId === undefined || ctx.incidents.get(a.incidentId) === undefined))
      .map((a) => ({ call: isCall119(a), resolved: a.state === 'resolved', ts: a.raisedAt, el: () => alertRow(a, n) }));
    const list = [...incs, ...lone].sort((a, b) => Number(b.call) - Number(a.call) || Number(a.resolved) - Number(b.resolved) || b.ts - a.ts);
    if (list.length === 0) return render(fires, h('p', { class: 'empty' }, t('noAlerts')));
    render(fires, h('table', { class: 'fires' },
      h('thead', {}, h('tr', {}, [t('home'), t('kind'), t('firstPoint'), t('rooms'), t('severity'), t('since'), t('level'), t('raisedToAck'), t('ackToConfirm'), t('toResolve'), t('state')].map((x) => h('th', {}, x)))),
      h('tbody', {}, list.map((x) => x.el())),
    ));
  }

  /** Every point out of fire alarming across the homes: what, mode, reason, who, until when. */
  function renderDisablements() {
    const list = ctx.disablements().sort((a, b) => a.homeId.localeCompare(b.homeId) || a.until - b.until);
    if (list.length === 0) return render(disabled, h('p', { class: 'empty', 'data-testid': 'no-disablements' }, t('noDisablements')));
    const target = (d) => (d.scope === 'home' ? t('scope_home') : d.scope === 'room' ? roomText(ctx.homes, d.homeId, d.targetId) : d.targetId);
    render(disabled, h('table', { class: 'dis-table' },
      h('thead', {}, h('tr', {}, [t('home'), t('scope'), t('target'), t('modeCol'), t('reason'), t('by'), t('startedAt'), t('endsAt'), t('suppressed')].map((x) => h('th', {}, x)))),
      h('tbody', {}, list.map((d) => h('tr', { class: `mode-${d.mode}`, 'data-testid': 'disablement-row', 'data-disablement-id': d.id, 'data-home-id': d.homeId, 'data-target-id': d.targetId, 'data-mode': d.mode, 'data-until': d.until },
        h('td', { class: 'c-home' }, nm(ctx.homes.get(d.homeId)) || d.homeId),
        h('td', { 'data-label': t('scope') }, t(`scope_${d.scope}`)),
        h('td', { 'data-label': t('target') }, target(d)),
        h('td', { 'data-label': t('modeCol') }, h('span', { class: `badge dis-${d.mode}`, 'data-testid': 'disablement-mode' }, `⊘ ${t(`mode_${d.mode}`)}`)),
        h('td', { 'data-label': t('reason') }, d.reason),
        h('td', { 'data-label': t('by') }, d.by),
        h('td', { 'data-label': t('startedAt') }, fmtTime(d.startedAt)),
        h('td', { 'data-testid': 'disablement-until', 'data-label': t('endsAt') }, h('strong', {}, fmtTime(d.until))),
        h('td', { 'data-label': t('suppressed') }, d.suppressedSignals),
      ))),
    ));
  }

  async function loadStats() {
    render(statsBody, h('p', {}, t('loading')));
    try {
      const r = await ctx.api.get(`/api/stats?month=${month.value}`);
      // Statistics are a report, not live: say when they were taken.
      statsAt.textContent = `${t('updatedAt')} ${fmtTime(ctx.now())}`;
      const pct = (v) => (v === null ? '—' : `${(v * 100).toFixed(1)}%`);
      const sec = (v) => (v === null ? '—' : `${v} ${t('sec')}`);
      const pair = (d) => (d.n === 0 ? '—' : `${d.medianS} / ${d.p95S} ${t('sec')}`);
      const heads = [
        [t('home')], [t('alertsCount')], ...CLASSES.map((c) => [t(`cls_${c}`)]), [t('falseAlarmRate')], [t('ackMedian')], [t('ackP95')], [t('resolveMedian')], [t('resolveP95')],
        [sl('fireAck')], [sl('fireResolve')], [sl('careAck')], [sl('careResolve')], [sl('missed'), sl('missedTip')], [t('onlineRate'), sl('onlineTip')], [t('turnsOnTime'), sl('turnsTip')],
      ];
      render(statsBody, h('div', { class: 'table-wrap' }, h('table', { class: 'stats-table', 'data-testid': 'stats-table' },
        h('thead', {}, h('tr', {}, heads.map(([x, tip]) => h('th', tip ? { title: tip } : {}, x)))),
        h('tbody', {}, r.homes.map((s) => h('tr', { 'data-testid': `stats-row-${s.homeId}`, 'data-kind': s.kind ?? 'care-home' },
          h('td', {}, nm(ctx.homes.get(s.homeId)) || s.homeId, s.kind === 'household' ? h('span', { class: 'badge', title: nm(ctx.homes.get(s.homeId)?.provider) || s.providerId || '' }, ` ${hl('kindHousehold')}`) : null), h('td', { 'data-col': 'alerts' }, s.alerts), CLASSES.map((c) => h('td', { 'data-col': c }, s.byClass[c])),
          h('td', { 'data-col': 'false_alarm_rate' }, pct(s.falseAlarmRate)), h('td', { 'data-col': 'ack_median_s' }, sec(s.timeToAcknowledge.medianS)), h('td', {}, sec(s.timeToAcknowledge.p95S)),
          h('td', {}, sec(s.timeToResolve.medianS)), h('td', {}, sec(s.timeToResolve.p95S)),
          h('td', { 'data-col': 'fire_emergency_ack' }, pair(s.fireEmergencies.timeToAcknowledge)), h('td', {}, pair(s.fireEmergencies.timeToResolve)),
          h('td', { 'data-col': 'care_emergency_ack' }, pair(s.careEmergencies.timeToAcknowledge)), h('td', {}, pair(s.careEmergencies.timeToResolve)),
          h('td', { 'data-col': 'missed_alerts', title: `${s.escalatedUnacknowledged} / ${s.resolvedUnacknowledged}` }, s.missedAlerts),
          h('td', { 'data-col': 'device_online_rate' }, pct(s.deviceOnlineRate)),
          h('td', { 'data-col': 'turns_on_time_rate' }, s.turnsDue === 0 ? '—' : `${pct(s.turnsOnTimeRate)} (${s.turnsOnTime}/${s.turnsDue})`),
        ))),
      )));
    } catch (err) {
      render(statsBody, h('p', { class: 'error' }, `${t('error')}: ${err.message}`));
    }
  }

  async function refreshLive() {
    try {
      summary = await ctx.api.poll('/api/live/homes', ctx.pollTimeoutMs);
      ctx.syncClock(summary.now);
      ctx.pollDone?.(true);
    } catch (err) {
      // The grid still shows alert-derived state without the live summary; the banner shows the failure.
      if (err?.status === undefined || err.status >= 500) ctx.pollDone?.(false);
      else if (err.status !== 401) ctx.pollDone?.(true);
    }
    renderGrid();
  }

  void loadStats();
  return {
    renderAlerts() {
      renderGrid();
      renderFires();
      // The bureau hears fire incidents waiting for someone (and lone fire alarms of an older server).
      ctx.setSound(
        ctx.model.open().filter((a) => isFireAlarm(a) && a.acknowledgedAt === undefined && (a.incidentId === undefined || ctx.incidents.get(a.incidentId) === undefined)),
        ctx.incidents.open().filter((i) => isFireIncident(i) && i.acknowledgedAt === undefined),
      );
    },
    renderDisablements,
    refreshLive,
    tick() {},
  };
}
